"""The README's SQL cookbook gives the right answers, on a world whose answers are known.

The world starts with assets in every state (failed ones among them: a first sync must not count those as
failures of the week), then some processing assets fail, a new upload arrives failed, others become
ready; a second sync observes it. Each query of the README's ```sql block runs as written.
"""

import re
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

import roughy_dagster
from roughy_dagster import RoughyClient, sync_project
from roughy_dagster.emulator import Emulator, World
from roughy_dagster.emulator.world import STATES

from .conftest import CANARY_KEY

REPO = Path(__file__).resolve().parents[1]


def cookbook() -> dict[str, str]:
    """The README's cookbook queries by their comment's first line."""
    (block,) = re.findall(r"```sql\n(.*?)```", (REPO / "README.md").read_text(), flags=re.DOTALL)
    queries = {}
    for statement in filter(str.strip, block.split(";")):
        title = re.match(r"\s*-- (.*)", statement)
        assert title, statement
        queries[title.group(1)] = statement
    return queries


def test_cookbook_queries_answer_right(tmp_path):
    queries = cookbook()
    assert len(queries) == 5
    world = World.seeded(seed=23, projects=3, assets_per_project=120)
    database = tmp_path / "cookbook.duckdb"
    for index in range(6):
        world.add_asset(world.projects[index % 3], state="processing")
    with Emulator(world, api_key=CANARY_KEY) as emulator:
        with RoughyClient(CANARY_KEY, emulator.base_url) as client:
            for project in world.projects:
                sync_project(client, database, project)
            already_failed = world.count(state="failed")
            processing = [a["id"] for a in world.listing(state="processing")]
            assert already_failed > 0 and len(processing) >= 6
            failed_now = [world.advance(asset_id, "failed") for asset_id in processing[:4]]
            failed_now.append(world.add_asset(world.projects[2], state="failed"))
            became_ready = [world.advance(asset_id, "ready") for asset_id in processing[4:6]]
            for project in world.projects:
                sync_project(client, database, project)

    with roughy_dagster.connect(database) as connection:  # what the README tells readers to open

        def run(title: str) -> list[tuple]:
            (statement,) = [sql for name, sql in queries.items() if name.startswith(title)]
            return connection.execute(statement).fetchall()

        live = {(str(p), s): n for p, s, n in run("live assets per project and state")}
        assert live == {
            (p, s): world.count(p, s) for p in world.projects for s in STATES if world.count(p, s)
        }

        hours = {str(p): h for p, h in run("hours of ready media per project")}
        for project in world.projects:
            ready = world.listing(project, "ready")
            expected = sum(Decimal(str(a["duration_seconds"])) for a in ready) / 3600
            assert float(hours[project]) == pytest.approx(float(expected))

        failures = dict(run("failures by reason this week"))
        assert failures == dict(Counter(asset.error_code for asset in failed_now))

        timing = run("how long processing takes")
        assert sum(count for _, count, _ in timing) == len(became_ready)
        assert all(seconds >= 0 for _, _, seconds in timing)

        costs = run("what each sync cost")
        assert len(costs) == 2 * len(world.projects)

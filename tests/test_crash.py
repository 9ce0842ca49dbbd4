"""Crash safety: a sync process killed with SIGKILL at random points never leaves a broken database."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time

import pytest

from roughy_dagster.client import RoughyClient
from roughy_dagster.emulator import Emulator, World
from roughy_dagster.project_sync import sync_project

from .helpers import fingerprint, query, stored_listing, truth

SYNC_FOREVER = """
import sys
from roughy_dagster.client import RoughyClient
from roughy_dagster.project_sync import sync_project
base_url, key, database, project = sys.argv[1:5]
with RoughyClient(key, base_url) as client:
    print("ready", flush=True)
    round = 0
    while True:
        sync_project(client, database, project, full_refresh=round % 3 == 2)
        round += 1
"""


def check_consistent(database) -> None:
    """Each committed sync's counts match its events; no row is half-written."""
    runs = query(database, "SELECT sync_id, new_count, deleted_count FROM roughy.sync_runs")
    for sync_id, new_count, deleted_count in runs:
        kinds = dict(
            query(
                database,
                "SELECT kind, count(*) FROM roughy.asset_events WHERE sync_id = ? GROUP BY kind",
                [sync_id],
            )
        )
        new = kinds.get("appeared", 0) + kinds.get("initial", 0)
        assert new == new_count and kinds.get("deleted", 0) == deleted_count
    orphans = query(
        database,
        "SELECT count(*) FROM roughy.asset_events e WHERE NOT EXISTS "
        "(SELECT 1 FROM roughy.sync_runs r WHERE r.sync_id = e.sync_id)",
    )
    assert orphans == [(0,)], "events of a sync that never committed"
    nulls = query(database, "SELECT count(*) FROM roughy.assets WHERE state IS NULL OR created_at IS NULL")
    assert nulls == [(0,)]


@pytest.mark.parametrize("seed", range(20))
def test_sigkill_at_a_random_point_leaves_a_usable_database(tmp_path, seed: int):
    rng = random.Random(seed)
    world = World.seeded(seed=seed, projects=1, assets_per_project=3000)
    project = world.projects[0]
    database = tmp_path / "roughy.duckdb"
    with Emulator(world, life_interval=0.02, life_changes=2) as emulator:
        process = subprocess.Popen(
            [sys.executable, "-c", SYNC_FOREVER, emulator.base_url, emulator.api_key, str(database), project],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert process.stdout is not None and process.stdout.readline().strip() == "ready"
            time.sleep(rng.uniform(0.05, 2.5))  # lands in the first load, a write, or a later sync
        finally:
            process.send_signal(signal.SIGKILL)
            process.communicate(timeout=10)  # reaps it and closes its pipes
        assert process.returncode == -signal.SIGKILL
        emulator.stop_life()
        if fingerprint(database):  # a file killed while its schema was being created holds nothing yet
            check_consistent(database)
        with RoughyClient(emulator.api_key, emulator.base_url) as client:
            sync_project(client, database, project)
        check_consistent(database)
        assert stored_listing(database, project) == truth(world, project)

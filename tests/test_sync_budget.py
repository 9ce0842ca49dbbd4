"""Issue #14: every sync ends within a budget it can justify, whatever `total` and page lengths claim.

A walk's progress is ids it has never seen (a tie group served in rotation always looks new next to the
page before); the sync's budget grows with the stored rows and the assets pages show, never with a claimed
`total`; `max_requests` caps a whole sync. Real DuckDB files, the emulator over loopback HTTP (its
`rotating` and `total_for` options).
"""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from roughy_dagster import sync_account
from roughy_dagster.client import RetryPolicy, RoughyClient, RoughyProtocolError
from roughy_dagster.emulator import Emulator, World
from roughy_dagster.project_sync import sync_project
from roughy_dagster.store import AssetStore
from roughy_dagster.sync import SyncEngine

from .helpers import fingerprint, query, stored_listing, truth


def client_for(emulator: Emulator) -> RoughyClient:
    return RoughyClient(emulator.api_key, emulator.base_url, sleep=lambda _: None, retry=RetryPolicy())


def live_deleted(database, world: World) -> set[str]:
    gone = query(database, "SELECT id::VARCHAR FROM roughy.assets WHERE deleted_at IS NOT NULL")
    return {row[0] for row in gone} & set(world.assets)


@pytest.mark.parametrize("mode", ["first", "incremental", "full"])
@pytest.mark.parametrize("claimed", [10**9, 10**12])
def test_a_tie_group_served_in_rotation_with_a_huge_total_ends(tmp_path, mode, claimed):
    world = World.seeded(seed=3, projects=1, assets_per_project=0)
    project = world.projects[0]
    world.add_tie_group(project, 150, state="ready")
    database = tmp_path / "roughy.duckdb"
    with Emulator(world) as emulator, client_for(emulator) as client:
        if mode != "first":
            sync_project(client, database, project)
        emulator.app.rotating = True
        emulator.app.total_bias = {"*": claimed}
        report = sync_project(client, database, project, full_refresh=mode == "full")
        assert not report.verified
        assert report.requests < 800, report.requests  # was: endless (10,551 requests in 25 s)
        assert not live_deleted(database, world)
        emulator.app.rotating = False
        emulator.app.total_bias = {}
        again = sync_project(client, database, project, full_refresh=True)
        assert again.revived == 0
        assert stored_listing(database, project) == truth(world, project)


@pytest.mark.parametrize("cap", [1, 3, 10])
@pytest.mark.parametrize("account", [False, True])
def test_max_requests_caps_a_whole_sync(tmp_path, cap, account):
    world = World.seeded(seed=7, projects=2, assets_per_project=250)
    project = world.projects[0]
    database = tmp_path / "roughy.duckdb"
    with Emulator(world) as emulator, client_for(emulator) as client:
        if account:
            capped = sync_account(client, database, max_requests=cap)
            assert capped.requests <= cap
            reasons = [report.reason for report in capped.projects.values()]
        else:
            capped_project = sync_project(client, database, project, max_requests=cap)
            assert capped_project.requests <= cap and not capped_project.verified
            reasons = [capped_project.reason]
        assert all("max_requests" in reason for reason in reasons if reason), reasons
        world.random_changes(5, project_id=project)
        capped_again = sync_project(client, database, project, full_refresh=True, max_requests=cap)
        assert capped_again.requests <= cap and not capped_again.verified
        assert not live_deleted(database, world)
        good = sync_project(client, database, project, full_refresh=True)
        assert good.verified and good.revived == 0
        assert stored_listing(database, project) == truth(world, project)


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    seed=st.integers(0, 2**16),
    size=st.integers(0, 150),
    max_total=st.sampled_from([0, 10, 1000, 10**6, 10**12]),
    max_items=st.one_of(st.none(), st.integers(1, 100)),
    rotating=st.booleans(),
    changes=st.integers(0, 6),
    full=st.booleans(),
)
def test_any_total_per_request_and_any_page_length_end_within_a_justified_budget(
    tmp_path_factory, seed, size, max_total, max_items, rotating, changes, full
):
    world = World.seeded(seed=seed, projects=1, assets_per_project=size)
    project = world.projects[0]
    database = tmp_path_factory.mktemp("budget") / "roughy.duckdb"
    lies = random.Random(seed)
    with Emulator(world) as emulator, client_for(emulator) as client:
        sync_project(client, database, project)
        emulator.app.total_for = lambda _query, _true: lies.randint(0, max_total)
        emulator.app.max_page_items = max_items
        emulator.app.rotating = rotating
        world.random_changes(changes, project_id=project)
        store = AssetStore(database)
        before = fingerprint(database)
        try:
            if full:
                local = store.load_snapshot(project)
                engine = SyncEngine(client, project, local, full_refresh=True, max_extra_requests=200)
                observation = engine.run()
            else:
                with store.local_view(project) as view:
                    engine = SyncEngine(client, project, view, max_extra_requests=200)
                    observation = engine.run()
        except RoughyProtocolError as error:
            # a rotation that wraps past the oldest item puts the newest after it: refused, nothing written
            assert rotating and "newest-first" in str(error), error
            assert fingerprint(database) == before
            return
        assert observation.requests <= engine.budget.limit
        # the budget is what the sync can justify: the stored rows' pages and the pages showing new assets
        stored_pages = 5 + 5 * (size // 99 + 1)
        assert engine.budget.limit <= 200 + 2 * stored_pages + 2 * (size + changes + 1), engine.budget.limit
        store.write(observation)
        assert not live_deleted(database, world)

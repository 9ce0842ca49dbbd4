"""The count-mismatch search: what it costs and what it may conclude.

A list whose `total` disagrees with what the sync believes is bisected by positions: the believed offset
of an asset is a count the store answers (`LocalView.count_above`), adjusted by what the sync saw move,
so the search never loads a state's stored keys. Real DuckDB files, the emulator over loopback HTTP.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from operator import itemgetter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from roughy_dagster.client import RetryPolicy, RoughyClient
from roughy_dagster.emulator import Emulator, World
from roughy_dagster.project_sync import sync_project
from roughy_dagster.store import AssetStore
from roughy_dagster.sync import SyncEngine
from roughy_dagster.sync.spans import HIGHEST

from .helpers import query, stored_listing, truth


def client_for(emulator: Emulator) -> RoughyClient:
    return RoughyClient(emulator.api_key, emulator.base_url, sleep=lambda _: None, retry=RetryPolicy())


def test_deletions_deep_in_a_long_list_are_found_without_loading_its_stored_keys(tmp_path):
    """10 assets deleted from the middle of a ready list of thousands: the head shows nothing, only the
    count disagrees. The search finds all 10 with a few dozen requests and fetches the stored rows of
    the pages it reads only (the old search fetched every stored key of the list)."""
    world = World.seeded(seed=8, projects=1, assets_per_project=6000)
    project = world.projects[0]
    database = tmp_path / "roughy.duckdb"
    with Emulator(world) as emulator, client_for(emulator) as client:
        assert sync_project(client, database, project).verified
        ready = world.listing(project, "ready")
        assert len(ready) > 2000
        middle = ready[len(ready) // 4 : 3 * len(ready) // 4]
        victims = {str(item["id"]) for item in random.Random(3).sample(middle, 10)}
        for victim in victims:
            world.delete(victim)
        store = AssetStore(database)
        with store.local_view(project) as view:
            observation = SyncEngine(client, project, view).run()
            fetched = view.rows_fetched
        assert observation.verified, observation.reason
        assert set(observation.deletions) == victims
        assert observation.requests <= 100, observation.requests
        assert fetched <= 100 * observation.pages < len(ready) // 2, f"fetched {fetched} stored rows"
        store.write(observation)
        assert stored_listing(database, project) == truth(world, project)


def tie_world(newer: int, length: int, older: int, *, seed: int) -> tuple[World, str, list]:
    """A ready list of `older` assets an hour apart, a tie group of `length` (ordered by a hidden rank,
    not by id), then `newer` assets an hour apart: the group starts at offset `newer`."""
    world = World(seed=seed, ties_by_id=False)
    project = world.add_project()
    base = datetime(2025, 1, 1, tzinfo=UTC)
    for index in range(older):
        world.add_asset(project, state="ready", created_at=base + timedelta(hours=index))
    moment = base + timedelta(hours=older + 1)
    group = world.add_tie_group(project, length, created_at=moment)
    for index in range(newer):
        world.add_asset(project, state="ready", created_at=moment + timedelta(hours=index + 1))
    return world, project, group


def same_rows(database, world: World, project: str) -> bool:
    """The stored live rows equal the listing (ties compared as sets: the listing hides their order)."""
    by_id = itemgetter("id")
    return sorted(stored_listing(database, project), key=by_id) == sorted(truth(world, project), key=by_id)


def deleted_ids(database) -> set[str]:
    rows = query(database, "SELECT id::VARCHAR FROM roughy.assets WHERE deleted_at IS NOT NULL")
    return {row[0] for row in rows}


@pytest.mark.parametrize(
    ("newer", "length", "victim"), [(150, 60, 30), (200, 60, 59), (145, 98, 0), (120, 2, 1)]
)
def test_a_deletion_inside_a_tie_group_a_page_edge_cut_is_recorded(tmp_path, newer, length, victim):
    """The count-mismatch search cut a tie group with a page edge: the assets tied with an edge are never
    proven absent by that page, so the search re-centres a page on the group, which then proves it."""
    world, project, group = tie_world(newer, length, 200, seed=newer + length)
    database = tmp_path / "roughy.duckdb"
    with Emulator(world) as emulator, client_for(emulator) as client:
        assert sync_project(client, database, project).verified
        world.delete(group[victim].id)
        report = sync_project(client, database, project)
        assert report.verified, report.reason
        assert deleted_ids(database) == {group[victim].id}
        assert report.requests <= 20, report.requests
        assert same_rows(database, world, project)


@pytest.mark.parametrize("full", [False, True])
def test_a_deletion_inside_a_tie_group_longer_than_a_page_is_named_precisely(tmp_path, full):
    world, project, group = tie_world(150, 150, 200, seed=4)
    database = tmp_path / "roughy.duckdb"
    with Emulator(world) as emulator, client_for(emulator) as client:
        assert sync_project(client, database, project).verified
        world.delete(group[97].id)
        report = sync_project(client, database, project, full_refresh=full)
        assert not report.verified
        assert (
            "ready: 1 stored asset created at 2025-01-09T09:00:00+00:00 not seen in the list cannot be "
            "proven gone: its tie group (150 stored, 149 seen in the list) is too long for one page"
        ) in report.reason, report.reason
        assert not deleted_ids(database)
        by_id = itemgetter("id")
        stored = [row for row in stored_listing(database, project) if row["id"] != group[97].id]
        assert sorted(stored, key=by_id) == sorted(truth(world, project), key=by_id)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    newer=st.integers(0, 260),
    length=st.integers(2, 240),
    victim=st.integers(0, 10**6),
    max_items=st.one_of(st.none(), st.integers(20, 100)),
    bias=st.sampled_from([0, 0, 1, -1, 40]),
    full=st.booleans(),
)
def test_a_deletion_in_any_tie_group_is_recorded_or_named_never_guessed(
    tmp_path_factory, newer, length, victim, max_items, bias, full
):
    """Tie groups of any length at any place, a deletion inside, pages of any length, `total` honest or
    not: no live asset is ever marked deleted; a verified sync stores exactly the listing; with an honest
    server, a group that fits a page with a neighbour on each side has its deletion recorded."""
    world, project, group = tie_world(newer, length, 120, seed=newer * 1000 + length)
    database = tmp_path_factory.mktemp("ties") / "roughy.duckdb"
    gone = group[victim % length]
    with Emulator(world) as emulator, client_for(emulator) as client:
        sync_project(client, database, project)
        world.delete(gone.id)
        emulator.app.max_page_items = max_items
        emulator.app.total_bias = {"*": bias} if bias else {}
        report = sync_project(client, database, project, full_refresh=full)
        assert deleted_ids(database) <= {gone.id}, "a live asset was marked deleted"
        if report.verified:
            assert same_rows(database, world, project)
        page = max_items or 100
        if not bias and length - 1 <= page - 2:
            assert report.verified, report.reason
            assert deleted_ids(database) == {gone.id}
        if gone.id not in deleted_ids(database):
            assert not report.verified


def test_the_store_counts_positions_as_the_memory_view_does(tmp_path):
    """`LocalView.count_above` and `LocalView.tied` answered by SQL on the file equal the in-memory
    answers, ties and the bounds past every id included."""
    world = World.seeded(seed=12, projects=2, assets_per_project=400, tie_every=3)
    project = world.projects[0]
    database = tmp_path / "roughy.duckdb"
    with Emulator(world) as emulator, client_for(emulator) as client:
        assert sync_project(client, database, project).verified
    store = AssetStore(database)
    memory = store.load_snapshot(project)
    assets = list(memory.live.values())
    picks = random.Random(5).sample(assets, 60)
    keys = [(a.created_us, a.id) for a in picks]
    keys += [(a.created_us, HIGHEST[1]) for a in picks[:20]] + [(a.created_us - 1, "") for a in picks[:20]]
    with store.local_view(project) as view:
        for state in {a.state for a in assets}:
            for key in keys:
                assert view.count_above(state, key) == memory.count_above(state, key), (state, key)
            moments = [a.created_us for a in picks]
            excluding = [a.id for a in picks[::2]]
            by_id = sorted(a.id for a in view.tied(state, moments, excluding=excluding))
            assert by_id == sorted(a.id for a in memory.tied(state, moments, excluding=excluding))

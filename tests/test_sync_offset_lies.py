"""Issue #14: a deletion is committed only on proof the sync's own counts do not contradict.

A server answering `offset=N` with the items from `N+1` (or `N+2`, or `N-1`) shows every list without its
newest asset(s) while its `total` still counts them. Such a list cannot prove an asset gone: no live asset
is ever marked deleted, a real deletion met meanwhile is withheld (and named), and the next honest sync
records each change once (never a deleted/revived pair that did not happen). Real DuckDB files, the
emulator over loopback HTTP (its `offset_shift` world option).
"""

from __future__ import annotations

import pytest

from roughy_dagster.client import RetryPolicy, RoughyClient, RoughyProtocolError
from roughy_dagster.emulator import Emulator, World
from roughy_dagster.project_sync import sync_project

from .helpers import fingerprint, query, stored_listing, truth

STATES = ("pending_upload", "processing", "pending_payment", "ready", "failed")


def client_for(emulator: Emulator) -> RoughyClient:
    return RoughyClient(emulator.api_key, emulator.base_url, sleep=lambda _: None, retry=RetryPolicy())


def live_deleted(database, world: World) -> set[str]:
    gone = query(database, "SELECT id::VARCHAR FROM roughy.assets WHERE deleted_at IS NOT NULL")
    return {row[0] for row in gone} & set(world.assets)


def events(database, kind: str) -> list[str]:
    rows = query(database, "SELECT asset_id::VARCHAR FROM roughy.asset_events WHERE kind = ?", [kind])
    return [row[0] for row in rows]


def newest_of(world: World, project: str, state: str) -> str:
    return str(world.listing(project, state)[0]["id"])


@pytest.mark.parametrize("shift", [1, 2, -1])
@pytest.mark.parametrize("full_refresh", [False, True])
@pytest.mark.parametrize("victim_state", [None, *STATES])
def test_an_offset_off_by_one_never_deletes_a_live_asset(tmp_path, shift, full_refresh, victim_state):
    world = World.seeded(seed=5, projects=1, assets_per_project=100)
    project = world.projects[0]
    database = tmp_path / "roughy.duckdb"
    with Emulator(world) as emulator, client_for(emulator) as client:
        assert sync_project(client, database, project).verified  # an honest first load
        victims = []
        if victim_state is not None and world.count(project, victim_state) > 1:
            victims = [newest_of(world, project, victim_state)]
            world.delete(victims[0])  # a real deletion in the same sync as the lie
        emulator.app.offset_shift = shift
        report = sync_project(client, database, project, full_refresh=full_refresh)
        assert not live_deleted(database, world)
        if shift > 0:
            assert not report.verified
            if report.deleted < len(victims):
                assert "withheld" in report.reason
        emulator.app.offset_shift = 0
        honest = sync_project(client, database, project)
        assert honest.verified, honest.reason
        assert stored_listing(database, project) == truth(world, project)
        assert sorted(events(database, "deleted")) == sorted(victims), "each real deletion once"
        assert events(database, "revived") == []


@pytest.mark.parametrize("state", STATES)
def test_an_honest_deletion_is_recorded_at_once(tmp_path, state):
    world = World.seeded(seed=5, projects=1, assets_per_project=100)
    project = world.projects[0]
    database = tmp_path / "roughy.duckdb"
    with Emulator(world) as emulator, client_for(emulator) as client:
        sync_project(client, database, project)
        victim = newest_of(world, project, state)
        world.delete(victim)
        report = sync_project(client, database, project)
        assert report.verified and report.deleted == 1, report.reason
        assert events(database, "deleted") == [victim]


@pytest.mark.parametrize("total", [-1, -(10**12)])
def test_a_negative_total_is_refused_naming_the_request_and_writes_nothing(tmp_path, total):
    world = World.seeded(seed=5, projects=1, assets_per_project=30)
    project = world.projects[0]
    database = tmp_path / "roughy.duckdb"
    with Emulator(world) as emulator, client_for(emulator) as client:
        sync_project(client, database, project)
        before = fingerprint(database)
        world.random_changes(3, project_id=project)
        emulator.app.total_for = lambda _query, _true: total
        with pytest.raises(RoughyProtocolError) as raised:
            sync_project(client, database, project)
        assert raised.value.request_id and raised.value.request_id in str(raised.value)
        assert "total" in str(raised.value) and ">= 0" in str(raised.value)
        assert fingerprint(database) == before

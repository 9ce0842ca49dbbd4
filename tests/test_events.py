"""Events tell an initial load from observed changes; `state_changed_at` is an observed transition or NULL."""

from __future__ import annotations

import duckdb

from roughy_dagster import RoughyClient, sync_account, sync_project
from roughy_dagster.emulator import Emulator
from roughy_dagster.store import AssetStore
from roughy_dagster.store.schema import CURRENT_VERSION, EVENT_KINDS

from .helpers import query, stored_listing, truth


def kinds(database, sync_id: int | None = None) -> dict[str, int]:
    where = "" if sync_id is None else f"WHERE sync_id = {sync_id}"
    return dict(query(database, f"SELECT kind, count(*) FROM roughy.asset_events {where} GROUP BY kind"))


def test_an_initial_load_is_initial_and_later_changes_are_observed(
    emulator: Emulator, client: RoughyClient, tmp_path
):
    database = tmp_path / "roughy_assets.duckdb"
    world = emulator.world
    project = world.projects[0]
    first = sync_project(client, database, project)
    assert kinds(database, first.sync_id) == {"initial": world.count(project)}
    assert first.new == world.count(project)
    assert query(database, "SELECT count(*) FROM roughy.assets WHERE state_changed_at IS NOT NULL") == [(0,)]

    movable = [a["id"] for a in world.listing(project, "processing")][:3]
    for asset_id in movable:
        world.advance(asset_id, "ready")
    fresh = world.add_asset(project, state="failed")
    second = sync_project(client, database, project)
    assert kinds(database, second.sync_id) == {"state_changed": len(movable), "appeared": 1}
    assert second.new == 1 and second.changed == len(movable)
    changed = query(
        database,
        "SELECT CAST(a.id AS VARCHAR) FROM roughy.assets a JOIN roughy.asset_events e ON e.asset_id = a.id "
        "AND e.kind = 'state_changed' AND e.sync_id = ? AND e.observed_at = a.state_changed_at ORDER BY 1",
        [second.sync_id],
    )
    assert query(database, "SELECT count(*) FROM roughy.assets WHERE state_changed_at IS NOT NULL") == [
        (len(movable),)
    ]
    assert [row[0] for row in changed] == sorted(movable)
    assert query(database, "SELECT state_changed_at FROM roughy.assets WHERE id = ?", [fresh.id]) == [(None,)]
    # a second project's first sync is its own initial load
    other = sync_project(client, database, world.projects[1])
    assert kinds(database, other.sync_id) == {"initial": world.count(world.projects[1])}
    assert stored_listing(database, project) == truth(world, project)


def test_events_kinds_are_the_documented_ones(emulator: Emulator, client: RoughyClient, tmp_path):
    database = tmp_path / "roughy_assets.duckdb"
    sync_project(client, database, emulator.world.projects[0])
    connection = duckdb.connect()
    try:
        connection.execute(f"ATTACH '{database}' AS f (READ_ONLY)")
        (sql,) = connection.execute(
            "SELECT sql FROM duckdb_tables() WHERE database_name = 'f' AND table_name = 'asset_events'"
        ).fetchall()[0]
    finally:
        connection.close()
    for kind in EVENT_KINDS:
        assert f"'{kind}'" in sql


def test_the_migration_reclassifies_initial_loads_and_clears_unobserved_transitions(
    emulator: Emulator, client: RoughyClient, tmp_path
):
    """A file written before version 5 (first loads as `appeared`, `state_changed_at` = first sighting)."""
    database = tmp_path / "roughy_assets.duckdb"
    world = emulator.world
    project = world.projects[0]
    sync_project(client, database, project)
    moved = [a["id"] for a in world.listing(project, "processing")][:2]
    for asset_id in moved:
        world.advance(asset_id, "ready")
    world.add_asset(project, state="ready")
    sync_project(client, database, project)
    with AssetStore(database).connect() as connection:  # how version 4 had written the same history
        connection.execute("UPDATE roughy.asset_events SET kind = 'appeared' WHERE kind = 'initial'")
        connection.execute(
            "UPDATE roughy.assets SET state_changed_at = first_seen_at WHERE state_changed_at IS NULL"
        )
        connection.execute("ALTER TABLE roughy.asset_events ADD COLUMN reviewed BOOLEAN")
        connection.execute("UPDATE roughy.asset_events SET reviewed = true")
        connection.execute("CREATE INDEX events_by_asset ON roughy.asset_events (asset_id)")
        connection.execute("CREATE INDEX assets_by_state ON roughy.assets (state)")
        connection.execute("DELETE FROM roughy.schema_version WHERE version = ?", [CURRENT_VERSION])
        expected_initial = world.count(project) - 1
    sync_project(client, database, project)
    assert query(database, "SELECT max(version) FROM roughy.schema_version") == [(CURRENT_VERSION,)]
    assert kinds(database) == {"initial": expected_initial, "appeared": 1, "state_changed": len(moved)}
    changed = query(
        database, "SELECT CAST(id AS VARCHAR) FROM roughy.assets WHERE state_changed_at IS NOT NULL"
    )
    assert sorted(row[0] for row in changed) == sorted(moved)
    assert query(database, "SELECT count(*) FROM roughy.asset_events WHERE NOT reviewed") == [(0,)]
    indexes = query(database, "SELECT index_name FROM duckdb_indexes() ORDER BY 1")
    assert indexes == [("assets_by_state",), ("events_by_asset",)]
    assert stored_listing(database, project) == truth(world, project)


def test_an_account_sync_tells_a_new_project_from_known_ones(
    emulator: Emulator, client: RoughyClient, tmp_path
):
    database = tmp_path / "roughy_assets.duckdb"
    world = emulator.world
    known, new = world.projects[:2]
    sync_project(client, database, known)
    world.add_asset(known, state="processing")
    sync_account(client, database, project_ids=[known, new])
    by_project = dict(
        query(
            database,
            "SELECT CAST(project_id AS VARCHAR), list(DISTINCT kind ORDER BY kind) FROM roughy.asset_events "
            "WHERE sync_id > 1 GROUP BY 1",
        )
    )
    assert by_project == {known: ["appeared"], new: ["initial"]}
    for project in (known, new):
        assert stored_listing(database, project) == truth(world, project)

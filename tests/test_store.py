"""The DuckDB store: schema migration, the uniqueness of ids without a key index, and files not yet made."""

from __future__ import annotations

import duckdb
import pytest

from roughy_dagster import RoughyClient, sync_project
from roughy_dagster.emulator import Emulator
from roughy_dagster.store import AssetStore, RoughyStoreError
from roughy_dagster.store.schema import MIGRATIONS

from .helpers import fingerprint, query, stored_listing, truth

HAND_WRITTEN_ID = "0190a0a0-0000-7000-8000-000000000001"


def test_a_version_2_file_is_migrated_and_keeps_its_rows(emulator: Emulator, client: RoughyClient, tmp_path):
    database = tmp_path / "old.duckdb"
    connection = duckdb.connect(str(database))
    for version, migration in enumerate(MIGRATIONS[:2], start=1):
        connection.execute(migration)
        connection.execute("INSERT INTO roughy.schema_version (version) VALUES (?)", [version])
    connection.execute(
        "INSERT INTO roughy.assets VALUES (?, ?, 'audio', 'ready', 'mp3', 10, 'audio/mpeg', 1.5, 'en', "
        "NULL, NULL, now(), NULL, now(), now(), now(), NULL, 1)",
        [HAND_WRITTEN_ID, HAND_WRITTEN_ID],
    )
    connection.close()
    project = emulator.world.projects[0]
    sync_project(client, database, project)
    assert query(database, "SELECT max(version) FROM roughy.schema_version") == [(len(MIGRATIONS),)]
    assert query(
        database,
        "SELECT CAST(id AS VARCHAR), duration_seconds FROM roughy.assets WHERE id = ?",
        [HAND_WRITTEN_ID],
    )[0][1] == pytest.approx(1.5)
    assert stored_listing(database, project) == truth(emulator.world, project)
    keys = query(
        database,
        "SELECT count(*) FROM duckdb_constraints() "
        "WHERE table_name = 'assets' AND constraint_type = 'PRIMARY KEY'",
    )
    assert keys == [(0,)]


def test_a_first_load_of_an_id_already_stored_is_refused_untouched(
    emulator: Emulator, client: RoughyClient, tmp_path
):
    database = tmp_path / "roughy.duckdb"
    first, second = emulator.world.projects[:2]
    sync_project(client, database, first)
    taken = truth(emulator.world, second)[0]["id"]
    with AssetStore(database).connect() as connection:  # a row written by hand, under another project
        connection.execute(
            "INSERT INTO roughy.assets SELECT * REPLACE (CAST(? AS UUID) AS id) FROM roughy.assets LIMIT 1",
            [taken],
        )
    before = fingerprint(database)
    with pytest.raises(RoughyStoreError, match=rf"asset {taken} on 2 rows.*nothing was written"):
        sync_project(client, database, second)
    assert fingerprint(database) == before


def test_an_incremental_sync_refuses_to_keep_a_duplicated_row(
    emulator: Emulator, client: RoughyClient, tmp_path
):
    database = tmp_path / "roughy.duckdb"
    project = emulator.world.projects[0]
    sync_project(client, database, project)
    doubled = truth(emulator.world, project)[0]["id"]
    with AssetStore(database).connect() as connection:
        connection.execute("INSERT INTO roughy.assets SELECT * FROM roughy.assets WHERE id = ?", [doubled])
    before = fingerprint(database)
    with pytest.raises(RoughyStoreError, match=rf"asset {doubled} on 2 rows"):
        sync_project(client, database, project)
    assert fingerprint(database) == before


def test_the_snapshot_of_a_file_not_yet_made_creates_nothing(tmp_path):
    database = tmp_path / "later" / "roughy.duckdb"
    snapshot = AssetStore(database).load_snapshot("0190a0a0-0000-7000-8000-000000000002")
    assert snapshot.live == {} and snapshot.watermark_us is None
    assert not database.exists() and database.parent.is_dir()


def test_a_column_an_analyst_added_survives_every_sync(emulator: Emulator, client: RoughyClient, tmp_path):
    database = tmp_path / "roughy_assets.duckdb"
    project = emulator.world.projects[0]
    sync_project(client, database, project)
    noted = truth(emulator.world, project)[-1]["id"]
    with AssetStore(database).connect() as connection:
        connection.execute("ALTER TABLE roughy.assets ADD COLUMN note VARCHAR")
        connection.execute("CREATE INDEX by_note ON roughy.assets (note)")
        connection.execute("UPDATE roughy.assets SET note = 'keep me' WHERE id = ?", [noted])
    emulator.world.random_changes(40, project_id=project)
    sync_project(client, database, project)
    sync_project(client, database, emulator.world.projects[1])
    sync_project(client, database, project, full_refresh=True)
    assert stored_listing(database, project) == truth(emulator.world, project)
    noted_rows = query(database, "SELECT CAST(id AS VARCHAR) FROM roughy.assets WHERE note IS NOT NULL")
    assert noted_rows == [(noted,)]
    assert query(database, "SELECT index_name FROM duckdb_indexes() WHERE table_name = 'assets'") == [
        ("by_note",)
    ]


def test_a_migration_keeps_the_columns_and_indexes_analysts_added(
    emulator: Emulator, client: RoughyClient, tmp_path
):
    database = tmp_path / "old.duckdb"
    connection = duckdb.connect(str(database))
    for version, migration in enumerate(MIGRATIONS[:2], start=1):
        connection.execute(migration)
        connection.execute("INSERT INTO roughy.schema_version (version) VALUES (?)", [version])
    connection.execute(
        "INSERT INTO roughy.assets VALUES (?, ?, 'audio', 'ready', 'mp3', 10, 'audio/mpeg', 1.5, 'en', "
        "NULL, NULL, now(), NULL, now(), now(), now(), NULL, 1)",
        [HAND_WRITTEN_ID, HAND_WRITTEN_ID],
    )
    connection.execute("ALTER TABLE roughy.assets ADD COLUMN note VARCHAR DEFAULT 'none'")
    connection.execute("UPDATE roughy.assets SET note = 'hand written'")
    connection.execute("CREATE INDEX by_state ON roughy.assets (state, created_at)")
    connection.execute("CREATE TABLE roughy.my_notes AS SELECT 1 AS n")
    connection.close()
    project = emulator.world.projects[0]
    sync_project(client, database, project)
    assert query(database, "SELECT max(version) FROM roughy.schema_version") == [(len(MIGRATIONS),)]
    note = query(database, "SELECT note FROM roughy.assets WHERE id = ?", [HAND_WRITTEN_ID])
    assert note == [("hand written",)]
    assert query(database, "SELECT sql FROM duckdb_indexes() WHERE table_name = 'assets'") == [
        ("CREATE INDEX by_state ON roughy.assets(state, created_at);",)
    ]
    assert query(database, "SELECT n FROM roughy.my_notes") == [(1,)]
    assert stored_listing(database, project) == truth(emulator.world, project)

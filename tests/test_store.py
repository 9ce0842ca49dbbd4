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

"""Bad configuration and a busy DuckDB file: one clear message that says what to fix, and no data lost."""

from __future__ import annotations

import subprocess
import sys
import time

import dagster as dg
import pytest
from dagster_duckdb import DuckDBResource

from roughy_dagster import RoughyClient, RoughyResource, sync_project
from roughy_dagster.dagster_layer.assets import PROJECTS, roughy_sync_assets
from roughy_dagster.emulator import Emulator
from roughy_dagster.store import AssetStore, RoughySchemaError, RoughyStoreError, RoughyStoreLockedError

from .helpers import fingerprint, stored_listing, truth

HOLD_LOCK = """
import sys, time, duckdb
connection = duckdb.connect(sys.argv[1])
connection.execute("SELECT 1").fetchall()
print("holding", flush=True)
time.sleep(float(sys.argv[2]))
"""


def test_missing_api_key_is_named_at_run_time(emulator: Emulator, tmp_path, monkeypatch):
    monkeypatch.delenv("ROUGHY_API_KEY", raising=False)
    project = emulator.world.projects[0]
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(PROJECTS.name, [project])
        with pytest.raises(dg.DagsterInvalidConfigError) as caught:
            dg.materialize(
                [roughy_sync_assets],
                partition_key=project,
                instance=instance,
                resources={
                    "roughy": RoughyResource(api_key=dg.EnvVar("ROUGHY_API_KEY"), base_url=emulator.base_url),
                    "duckdb": DuckDBResource(database=str(tmp_path / "x.duckdb")),
                },
            )
    assert 'environment variable "ROUGHY_API_KEY" which is not set' in str(caught.value)
    assert emulator.list_requests == 0


def test_unwritable_path_is_named(emulator: Emulator, client: RoughyClient, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where a folder should be")
    with pytest.raises(RoughyStoreError) as caught:
        sync_project(client, blocker / "roughy.duckdb", emulator.world.projects[0])
    assert str(blocker) in str(caught.value) and "ROUGHY_DUCKDB_PATH" in str(caught.value)


def test_not_a_duckdb_file_is_named(emulator: Emulator, client: RoughyClient, tmp_path):
    bogus = tmp_path / "roughy.duckdb"
    bogus.write_bytes(b"this is not a database" * 100)
    with pytest.raises(RoughyStoreError, match=r"roughy\.duckdb"):
        sync_project(client, bogus, emulator.world.projects[0])


def test_file_from_a_newer_schema_is_refused_untouched(emulator: Emulator, client: RoughyClient, tmp_path):
    database = tmp_path / "roughy.duckdb"
    project = emulator.world.projects[0]
    sync_project(client, database, project)
    with AssetStore(database).connect() as connection:
        connection.execute("INSERT INTO roughy.schema_version (version) VALUES (99)")
    before = fingerprint(database)
    with pytest.raises(RoughySchemaError, match=r"schema version 99.*upgrade roughy-dagster"):
        sync_project(client, database, project)
    with pytest.raises(RoughySchemaError):
        AssetStore(database).connect(read_only=True).__enter__()
    assert fingerprint(database) == before


def test_a_foreign_lock_gives_a_clear_error_and_loses_nothing(
    emulator: Emulator, client: RoughyClient, tmp_path
):
    database = tmp_path / "roughy.duckdb"
    project = emulator.world.projects[0]
    sync_project(client, database, project)
    emulator.world.random_changes(5, project_id=project)
    before = fingerprint(database)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(database), "30"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        started = time.monotonic()
        with pytest.raises(RoughyStoreLockedError) as caught:
            sync_project(client, database, project, lock_wait_seconds=1.5)
        assert time.monotonic() - started < 25
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    message = str(caught.value)
    assert str(database) in message and "locked by another process" in message and "PID" in message
    assert "Traceback" not in message
    assert fingerprint(database) == before, "nothing written, nothing lost"
    sync_project(client, database, project)
    assert stored_listing(database, project) == truth(emulator.world, project)


def test_a_lock_released_while_waiting_is_waited_for(emulator: Emulator, client: RoughyClient, tmp_path):
    database = tmp_path / "roughy.duckdb"
    project = emulator.world.projects[0]
    sync_project(client, database, project)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(database), "1.5"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        report = sync_project(client, database, project, lock_wait_seconds=30)
    finally:
        holder.wait()
        holder.stdout.close()
    assert report.verified

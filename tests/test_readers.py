"""Readers and writers never block each other: readers open published copies, reactions their own log.

Real processes hold and open real DuckDB files while syncs and reactions run; no test measures time.
"""

from __future__ import annotations

import errno
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

import roughy_dagster
from roughy_dagster import sync_project
from roughy_dagster.store import AssetStore, RoughyStoreError, publish
from roughy_dagster.store.publish import KEPT_COPIES, copies_folder, latest_path
from roughy_dagster.store.reactions import ReactionLog, reactions_path

from .helpers import query

# A notebook: one connection opened on the readers' path, as the DuckDB CLI or a BI tool would, queried
# again and again for the whole test. It prints what it sees; any error is printed and ends it with 1.
HOLDER = """
import sys, time, duckdb
connection = duckdb.connect(sys.argv[1], read_only=True)
print("open", connection.execute("SELECT count(*) FROM roughy.assets").fetchall()[0][0], flush=True)
stop = sys.argv[2]
import os
while not os.path.exists(stop):
    sql = "SELECT count(*), count(DISTINCT id), max(last_sync_id) FROM roughy.assets"
    rows = connection.execute(sql).fetchall()
    print("rows", *rows[0], flush=True)
    time.sleep(0.02)
print("done", flush=True)
"""

# Readers coming and going: each loop opens a new connection (roughy_dagster.connect, then plain duckdb on
# the readers' path), reads, closes. Any error is printed and ends it with 1.
OPENER = """
import os, sys, time, duckdb, roughy_dagster
database, link, stop = sys.argv[1:4]
opens = 0
while not os.path.exists(stop):
    with roughy_dagster.connect(database) as connection:
        connection.execute("SELECT count(*) FROM roughy.assets").fetchall()
    connection = duckdb.connect(link, read_only=True)
    connection.execute("SELECT max(sync_id) FROM roughy.sync_runs").fetchall()
    connection.close()
    opens += 2
print("opens", opens, flush=True)
"""


def _start(code: str, *args: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_for_line(process: subprocess.Popen[str], prefix: str) -> str:
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith(prefix):
            return line
    raise AssertionError(f"process ended without printing {prefix!r} (exit {process.wait()})")


def _folder_bytes(folder: Path) -> int:
    return sum(entry.stat().st_size for entry in folder.iterdir())


def test_a_reader_holding_a_connection_and_readers_opening_never_fail_syncs_or_reactions(
    tmp_path, world, emulator, client
):
    database = tmp_path / "roughy_assets.duckdb"
    project = world.projects[0]
    first = sync_project(client, database, project)
    link = latest_path(database)
    stop = tmp_path / "stop"
    holder = _start(HOLDER, link, stop)
    opener = _start(OPENER, database, link, stop)
    try:
        held_count = int(_wait_for_line(holder, "open").split()[1])
        assert held_count == first.live_rows
        sizes = []
        for round_ in range(6):
            added = world.add_asset(project, state="processing")
            # a short lock wait: a reader holding the store would make this fail, not wait
            report = sync_project(client, database, project, lock_wait_seconds=1)
            assert report.new == 1
            ReactionLog(database, lock_wait_seconds=1).record(
                added.id, project, "processing", f"run-{round_}", "seen"
            )
            with roughy_dagster.connect(database) as fresh:  # a new connection sees the new rows
                assert fresh.execute(
                    "SELECT state FROM roughy.assets WHERE id = ?", [added.id]
                ).fetchall() == [("processing",)]
                assert fresh.execute(
                    "SELECT count(*) FROM roughy_reactions.reactions WHERE asset_id = ?", [added.id]
                ).fetchall() == [(1,)]
            sizes.append(_folder_bytes(copies_folder(database)))
            assert len(list(copies_folder(database).glob("*.duckdb"))) <= KEPT_COPIES
            assert len(list(copies_folder(reactions_path(database)).glob("*.duckdb"))) <= KEPT_COPIES
        # disk stays bounded: at most two copies, so the folder does not grow with the number of syncs
        assert sizes[-1] <= 1.5 * sizes[1]
    finally:
        stop.touch()
        held_out, _ = holder.communicate(timeout=60)
        opened_out, _ = opener.communicate(timeout=60)
    assert holder.returncode == 0, held_out
    assert opener.returncode == 0, opened_out
    # the held connection kept reading the copy it opened, unchanged, after that copy was deleted
    seen = {tuple(line.split()[1:]) for line in held_out.splitlines() if line.startswith("rows")}
    assert seen == {(str(held_count), str(held_count), str(first.sync_id))}
    assert int(opened_out.split()[-1]) > 0


def test_a_sync_that_changes_nothing_publishes_nothing(tmp_path, world, client):
    database = tmp_path / "roughy_assets.duckdb"
    project = world.projects[0]
    sync_project(client, database, project)
    copies = sorted(copies_folder(database).iterdir())
    assert sync_project(client, database, project).new == 0
    assert sorted(copies_folder(database).iterdir()) == copies
    world.advance(world.listing(project, "processing")[0]["id"], "ready")
    sync_project(client, database, project)
    assert len(sorted(copies_folder(database).iterdir())) == 2


def test_readers_get_a_copy_again_when_it_is_missing_or_a_publish_failed(
    tmp_path, world, client, monkeypatch
):
    database = tmp_path / "roughy_assets.duckdb"
    project = world.projects[0]
    sync_project(client, database, project)
    latest_path(database).unlink()  # e.g. an older roughy-dagster wrote the store
    sync_project(client, database, project)  # unchanged, but readers had no copy
    with roughy_dagster.connect(database) as connection:
        assert connection.execute("SELECT count(*) FROM roughy.assets").fetchall()[0][0] > 0

    def disk_full(source: Path, target: Path) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(target))

    world.advance(world.listing(project, "processing")[0]["id"], "ready")
    monkeypatch.setattr(publish, "_copy_file", disk_full)
    with pytest.raises(RoughyStoreError, match=r"reader copy could not be published.*No space left"):
        sync_project(client, database, project)
    monkeypatch.undo()
    with roughy_dagster.connect(database) as connection:  # readers still have the previous copy
        assert connection.execute("SELECT count(*) FROM roughy.assets WHERE state = 'ready'").fetchall()
    assert sync_project(client, database, project).changed == 0  # committed before the publish failed
    with roughy_dagster.connect(database) as connection:  # ... and this unchanged sync published it
        assert connection.execute(
            "SELECT count(*) FROM roughy.assets WHERE state = 'ready'"
        ).fetchall() == query(database, "SELECT count(*) FROM roughy.assets WHERE state = 'ready'")


def test_a_reader_opening_the_readers_path_in_one_process_sees_each_new_copy(tmp_path, world, client):
    """DuckDB caches a database per path in a process: each copy has its own path, so no stale reads."""
    database = tmp_path / "roughy_assets.duckdb"
    project = world.projects[0]
    sync_project(client, database, project)
    held = duckdb.connect(str(latest_path(database)), read_only=True)
    before = held.execute("SELECT count(*) FROM roughy.assets").fetchall()[0][0]
    added = world.add_asset(project)
    sync_project(client, database, project)
    again = duckdb.connect(str(latest_path(database)), read_only=True)
    assert again.execute("SELECT count(*) FROM roughy.assets").fetchall()[0][0] == before + 1
    assert again.execute("SELECT current_database()").fetchall() == [("roughy_assets",)]
    assert held.execute("SELECT count(*) FROM roughy.assets").fetchall()[0][0] == before
    assert again.execute("SELECT count(*) FROM roughy.assets WHERE id = ?", [added.id]).fetchall() == [(1,)]
    held.close()
    again.close()


def test_connect_before_any_sync_says_what_to_do(tmp_path):
    with pytest.raises(RoughyStoreError, match=r"no reader copy .* run a sync first"):
        roughy_dagster.connect(tmp_path / "roughy_assets.duckdb")


LOCKER = """
import sys, time
from roughy_dagster.store import AssetStore
with AssetStore(sys.argv[1]).connect() as connection:  # a sync writing, as far as anyone can tell
    print("locked", flush=True)
    sys.stdin.readline()
"""


def test_reaction_jobs_never_wait_for_the_store(tmp_path, world, client, monkeypatch):
    """The example reaction job records its reaction while another process holds the store's lock."""
    import dagster as dg
    from dagster_duckdb import DuckDBResource

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1]))
    from definitions import roughy_asset_ready_job

    database = tmp_path / "roughy_assets.duckdb"
    project = world.projects[0]
    sync_project(client, database, project)
    asset = world.listing(project, "ready")[0]
    locker = subprocess.Popen(
        [sys.executable, "-c", LOCKER, str(database)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert locker.stdout is not None and locker.stdout.readline().strip() == "locked"
        result = roughy_asset_ready_job.execute_in_process(
            run_config={
                "ops": {
                    "handle_roughy_asset": {
                        "config": {"id": asset["id"], "project_id": project, "state": "ready"}
                    }
                }
            },
            resources={"duckdb": DuckDBResource(database=str(database))},
            instance=dg.DagsterInstance.ephemeral(),
        )
        # had it opened the store, it would have waited for the lock, then failed: the locker never lets go
        assert result.success
    finally:
        locker.communicate("\n", timeout=30)
    with roughy_dagster.connect(database) as connection:
        assert connection.execute(
            "SELECT asset_id::VARCHAR, state FROM roughy_reactions.reactions"
        ).fetchall() == [(asset["id"], "ready")]
    with AssetStore(database).connect(read_only=True) as store:  # the store was not written
        assert store.execute("SELECT count(*) FROM roughy.reactions").fetchall() == [(0,)]


def test_the_command_line_runs_sql_on_the_latest_copy(tmp_path, world, client):
    database = tmp_path / "roughy_assets.duckdb"
    project = world.projects[0]
    report = sync_project(client, database, project)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "roughy_dagster.cli", *args, "--database", str(database)],
            capture_output=True,
            text=True,
        )

    counted = cli("sql", "SELECT count(*) AS live FROM roughy.assets WHERE deleted_at IS NULL")
    assert counted.returncode == 0, counted.stderr
    assert str(report.live_rows) in counted.stdout
    assert cli("path").stdout.strip() == str(latest_path(database))
    wrong = cli("sql", "SELECT nope FROM roughy.assets")
    assert wrong.returncode == 1 and "nope" in wrong.stderr


def test_the_materialization_names_what_readers_open(tmp_path, emulator, monkeypatch):
    import dagster as dg
    from dagster_duckdb import DuckDBResource

    from roughy_dagster import RoughyResource
    from roughy_dagster.dagster_layer.assets import PROJECTS, roughy_sync_assets

    from .conftest import CANARY_KEY

    monkeypatch.setenv("ROUGHY_API_KEY", CANARY_KEY)
    database = tmp_path / "roughy_assets.duckdb"
    project = emulator.world.projects[0]
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(PROJECTS.name, [project])
        result = dg.materialize(
            [roughy_sync_assets],
            partition_key=project,
            instance=instance,
            resources={
                "roughy": RoughyResource(api_key=dg.EnvVar("ROUGHY_API_KEY"), base_url=emulator.base_url),
                "duckdb": DuckDBResource(database=str(database)),
            },
        )
    materializations = result.asset_materializations_for_node("roughy_sync")
    assert {m.asset_key.path[-1] for m in materializations} == {"assets", "asset_events", "sync_runs"}
    for materialization in materializations:  # every table names the copy readers open
        assert materialization.metadata["query_database"].value == str(latest_path(database))
    (assets,) = [m for m in materializations if m.asset_key.path[-1] == "assets"]
    with duckdb.connect(str(latest_path(database)), read_only=True) as connection:
        live = connection.execute("SELECT count(*) FROM roughy.assets WHERE deleted_at IS NULL").fetchall()
    assert live == [(assets.metadata["dagster/row_count"].value,)]

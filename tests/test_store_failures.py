"""A DuckDB file that cannot be used gives `RoughyStoreError` naming the file, the cause and what to do.

Full disk, truncated or corrupt file, foreign schema, foreign WAL, connections of the same process; after
each failed sync the file is unchanged, and once the cause is gone the next sync equals the listing.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest

from roughy_dagster import RoughyClient, sync_account, sync_project
from roughy_dagster.emulator import Emulator
from roughy_dagster.store import RoughySchemaError, RoughyStoreError, RoughyStoreLockedError
from roughy_dagster.store.schema import MIGRATIONS

from .helpers import fingerprint, query, stored_listing, truth


def file_digest(database: Path) -> str:
    """The bytes of a file and its WAL: for files too damaged to fingerprint row by row."""
    digest = hashlib.sha256()
    for path in (database, Path(f"{database}.wal")):
        digest.update(path.read_bytes() if path.exists() else b"-")
    return digest.hexdigest()


def synced(client: RoughyClient, emulator: Emulator, database: Path) -> str:
    project = emulator.world.projects[0]
    sync_project(client, database, project)
    emulator.world.random_changes(30, project_id=project)
    return project


# -- a full disk ---------------------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path):
    """A 16 MiB tmpfs (needs root; skipped elsewhere, where the file-size limit test still runs)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    command = ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)]
    made = subprocess.run(command, capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(folder: Path) -> Path:
    """Fill the disk of `folder` to the last byte with one file, returned (delete it to free the space)."""
    filler = folder / "filler"
    descriptor = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        for chunk in (b"\0" * 65536, b"\0" * 512):
            try:
                while os.write(descriptor, chunk) == len(chunk):
                    pass
            except OSError:
                pass
    finally:
        os.close(descriptor)
    return filler


def test_a_full_disk_names_its_cause_and_loses_nothing(
    emulator: Emulator, client: RoughyClient, small_disk: Path
):
    database = small_disk / "roughy_assets.duckdb"
    project = synced(client, emulator, database)
    for _ in range(600):
        emulator.world.add_asset(project, state="ready")
    before = fingerprint(database)
    filler = fill(small_disk)
    with pytest.raises(RoughyStoreError) as caught:
        sync_project(client, database, project)
    message = str(caught.value)
    assert str(database) in message and "No space left on device" in message, message
    assert "Free space" in message and "cannot rollback" not in message
    filler.unlink()
    assert fingerprint(database) == before
    sync_project(client, database, project)
    assert stored_listing(database, project) == truth(emulator.world, project)


FILE_SIZE_LIMITED_SYNC = """
import resource, sys
from roughy_dagster import RoughyClient, sync_account, sync_project
from roughy_dagster.store import RoughyStoreError
resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))  # Python ignores SIGXFSZ: writes fail with EFBIG
with RoughyClient(sys.argv[1], sys.argv[2]) as client:
    try:
        sync_project(client, sys.argv[3], sys.argv[4])
    except RoughyStoreError as error:
        print(type(error).__name__, error)
"""


def test_a_write_the_file_system_refuses_names_its_cause(
    emulator: Emulator, client: RoughyClient, tmp_path: Path
):
    """The same as a full disk, without root: the file-size limit makes every write past 64 KiB fail."""
    database = tmp_path / "roughy_assets.duckdb"
    project = synced(client, emulator, database)
    for _ in range(600):
        emulator.world.add_asset(project, state="ready")
    before = fingerprint(database)
    arguments = [emulator.api_key, emulator.base_url, str(database), project]
    run = subprocess.run(
        [sys.executable, "-c", FILE_SIZE_LIMITED_SYNC, *arguments],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.stdout.startswith("RoughyStoreError"), run.stdout + run.stderr
    assert str(database) in run.stdout and "File too large" in run.stdout
    assert "cannot rollback" not in run.stdout
    assert fingerprint(database) == before
    sync_project(client, database, project)
    assert stored_listing(database, project) == truth(emulator.world, project)


# -- damaged files -------------------------------------------------------------------------------------------


def truncate_to_half(database: Path) -> None:
    os.truncate(database, database.stat().st_size // 2)


def truncate_to_header(database: Path) -> None:
    os.truncate(database, 5000)


def overwrite_a_block(database: Path) -> None:
    with database.open("r+b") as out:
        out.seek(8192)
        out.write(bytes(range(256)) * 16)


def overwrite_the_header(database: Path) -> None:
    with database.open("r+b") as out:
        out.write(b"not a database" * 300)


DAMAGES = [truncate_to_half, truncate_to_header, overwrite_a_block, overwrite_the_header]


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_file_is_named_and_left_as_it_was(
    emulator: Emulator, client: RoughyClient, tmp_path, damage
):
    database = tmp_path / "roughy_assets.duckdb"
    project = synced(client, emulator, database)
    damage(database)
    before = file_digest(database)
    with pytest.raises(RoughyStoreError) as caught:
        sync_project(client, database, project, lock_wait_seconds=1)
    message = str(caught.value)
    assert str(database) in message and "damaged" in message, message
    assert "Restore it from a backup" in message
    assert not isinstance(caught.value, RoughyStoreLockedError)
    assert file_digest(database) == before
    database.unlink()  # what the message advises: move it aside, sync again
    sync_project(client, database, project)
    assert stored_listing(database, project) == truth(emulator.world, project)


LEAVE_A_WAL = """
import os, sys, duckdb
connection = duckdb.connect(sys.argv[1])
connection.execute("SET checkpoint_threshold = '1TB'")
connection.execute("CREATE TABLE numbers AS SELECT range AS n FROM range(10)")
connection.execute("CHECKPOINT")
connection.execute("INSERT INTO numbers SELECT range FROM range(1000)")
os._exit(0)  # no checkpoint at exit: the insert stays in the WAL
"""


def test_a_wal_of_another_database_is_named(emulator: Emulator, client: RoughyClient, tmp_path):
    database = tmp_path / "roughy_assets.duckdb"
    project = synced(client, emulator, database)
    other = tmp_path / "other.duckdb"
    subprocess.run([sys.executable, "-c", LEAVE_A_WAL, str(other)], check=True, timeout=60)
    shutil.copy(f"{other}.wal", f"{database}.wal")
    before = file_digest(database)
    with pytest.raises(RoughyStoreError) as caught:
        sync_project(client, database, project, lock_wait_seconds=1)
    message = str(caught.value)
    assert f"{database}.wal" in message and "belongs to another database" in message and "aside" in message
    assert file_digest(database) == before
    Path(f"{database}.wal").rename(tmp_path / "set-aside.wal")
    sync_project(client, database, project)
    assert stored_listing(database, project) == truth(emulator.world, project)


# -- a foreign schema ----------------------------------------------------------------------------------------


def a_schema_of_another_tool(connection: duckdb.DuckDBPyConnection) -> None:
    connection.execute("CREATE SCHEMA roughy")
    connection.execute("CREATE TABLE roughy.assets (path VARCHAR, bytes BIGINT)")


def a_version_table_of_text(connection: duckdb.DuckDBPyConnection) -> None:
    connection.execute("CREATE SCHEMA roughy")
    connection.execute("CREATE TABLE roughy.schema_version (version VARCHAR)")
    connection.execute("INSERT INTO roughy.schema_version VALUES ('v2-beta')")


def a_current_version_of_another_shape(connection: duckdb.DuckDBPyConnection) -> None:
    for version, migration in enumerate(MIGRATIONS, start=1):
        if callable(migration):
            migration(connection)
        else:
            connection.execute(migration)
        connection.execute("INSERT INTO roughy.schema_version (version) VALUES (?)", [version])
    connection.execute("ALTER TABLE roughy.assets DROP COLUMN language")
    connection.execute("ALTER TABLE roughy.assets ALTER COLUMN size_bytes TYPE VARCHAR")


@pytest.mark.parametrize(
    ("make", "named"),
    [
        (a_schema_of_another_tool, "no roughy.schema_version"),
        (a_version_table_of_text, "unreadable"),
        (a_current_version_of_another_shape, "size_bytes is VARCHAR, not BIGINT; language is missing"),
    ],
)
def test_a_foreign_roughy_schema_is_refused_untouched(
    emulator: Emulator, client: RoughyClient, tmp_path, make, named
):
    database = tmp_path / "shared.duckdb"
    connection = duckdb.connect(str(database))
    make(connection)
    connection.close()
    before = fingerprint(database)
    for attempt in (
        lambda: sync_project(client, database, emulator.world.projects[0]),
        lambda: query(database, "SELECT 1"),
    ):
        with pytest.raises(RoughySchemaError) as caught:
            attempt()
        message = str(caught.value)
        assert str(database) in message and "did not make" in message and named in message, message
    assert fingerprint(database) == before


# -- connections of the same process -------------------------------------------------------------------------


def test_a_notebook_connection_in_the_same_process_is_waited_for(
    emulator: Emulator, client: RoughyClient, tmp_path
):
    database = tmp_path / "roughy_assets.duckdb"
    project = synced(client, emulator, database)
    notebook = duckdb.connect(str(database))
    notebook.execute("SELECT count(*) FROM roughy.assets").fetchall()
    closer = threading.Timer(1.0, notebook.close)
    closer.start()
    try:
        report = sync_project(client, database, project, lock_wait_seconds=60)
    finally:
        closer.join()
    assert report.verified
    assert stored_listing(database, project) == truth(emulator.world, project)


def test_a_notebook_connection_kept_open_is_named(emulator: Emulator, client: RoughyClient, tmp_path):
    database = tmp_path / "roughy_assets.duckdb"
    project = synced(client, emulator, database)
    before = fingerprint(database)
    notebook = duckdb.connect(str(database), read_only=True)
    try:
        started = time.monotonic()
        with pytest.raises(RoughyStoreLockedError) as caught:
            sync_project(client, database, project, lock_wait_seconds=1)
        assert time.monotonic() - started < 30
    finally:
        notebook.close()
    message = str(caught.value)
    assert str(database) in message and "in this process" in message and "close other connections" in message
    assert fingerprint(database) == before


def test_threads_syncing_projects_of_one_file_wait_for_each_other(emulator: Emulator, tmp_path):
    world = emulator.world
    for _ in range(2):
        world.add_project()
    for project in world.projects[2:]:
        for _ in range(40):
            world.add_asset(project, state="ready")
    database = tmp_path / "roughy_assets.duckdb"
    failures: list[BaseException] = []

    def sync(project: str) -> None:
        try:
            with RoughyClient(emulator.api_key, emulator.base_url) as own:
                sync_project(own, database, project, lock_wait_seconds=120)
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=sync, args=(project,)) for project in world.projects[:4]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures
    for project in world.projects[:4]:
        assert stored_listing(database, project) == truth(world, project)


# -- tampered version metadata --------------------------------------------------------------------------

NEXT = len(MIGRATIONS) + 1
TAMPERED_VERSIONS = {
    "emptied": (["DELETE FROM roughy.schema_version"], "is empty"),
    "minus_one": (["UPDATE roughy.schema_version SET version = -1 WHERE version = 1"], "holds version -1"),
    "only_zero": (
        ["DELETE FROM roughy.schema_version", "INSERT INTO roughy.schema_version (version) VALUES (0)"],
        "holds version 0",
    ),
    "text": (
        [
            "ALTER TABLE roughy.schema_version ALTER COLUMN version TYPE VARCHAR",
            "UPDATE roughy.schema_version SET version = 'six' WHERE version = '1'",
        ],
        "holds version as VARCHAR",
    ),
    "digits_as_text": (
        ["ALTER TABLE roughy.schema_version ALTER COLUMN version TYPE VARCHAR"],
        "holds version as VARCHAR",
    ),
    "column_renamed": (
        ["ALTER TABLE roughy.schema_version RENAME COLUMN version TO v"],
        "has no column version",
    ),
    "a_null": (
        [
            "ALTER TABLE roughy.schema_version ALTER COLUMN version DROP NOT NULL",
            "INSERT INTO roughy.schema_version (version) VALUES (NULL)",
        ],
        "holds a NULL version",
    ),
    "rows_duplicated": (
        ["INSERT INTO roughy.schema_version (version) SELECT version FROM roughy.schema_version"],
        "more than once",
    ),
    "a_gap": (["DELETE FROM roughy.schema_version WHERE version = 2"], "lacks versions"),
    "only_a_far_version": (
        ["DELETE FROM roughy.schema_version", "INSERT INTO roughy.schema_version (version) VALUES (99)"],
        "version 99, newer",
    ),
    "a_gap_then_newer": (
        [
            "DELETE FROM roughy.schema_version WHERE version = 2",
            f"INSERT INTO roughy.schema_version VALUES ({NEXT}, now())",
        ],
        f"version {NEXT}, newer",
    ),
    "newer": ([f"INSERT INTO roughy.schema_version (version) VALUES ({NEXT})"], f"version {NEXT}, newer"),
    "table_dropped": (["DROP TABLE roughy.schema_version"], "no roughy.schema_version"),
}


@pytest.mark.parametrize("name", sorted(TAMPERED_VERSIONS))
def test_tampered_version_metadata_is_refused_untouched(
    emulator: Emulator, client: RoughyClient, tmp_path, name: str
):
    statements, named = TAMPERED_VERSIONS[name]
    database = tmp_path / "roughy_assets.duckdb"
    project = synced(client, emulator, database)
    connection = duckdb.connect(str(database))
    for statement in statements:
        connection.execute(statement)
    connection.close()
    before, digest = fingerprint(database), file_digest(database)
    for attempt in (
        lambda: sync_project(client, database, project),
        lambda: sync_account(client, database),
        lambda: query(database, "SELECT 1"),
    ):
        with pytest.raises(RoughySchemaError) as caught:
            attempt()
        message = str(caught.value)
        assert str(database) in message and named in message, message
        assert "upgrade roughy-dagster" in message or "left as it was" in message, message
        assert "Binder Error" not in message and "Catalog Error" not in message
    assert fingerprint(database) == before and file_digest(database) == digest


# -- a file that is not a DuckDB database --------------------------------------------------------------------


def an_sqlite_database(path: Path) -> None:
    import sqlite3

    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE assets (id TEXT)")
    connection.close()


def a_parquet_file(path: Path) -> None:
    duckdb.connect().execute(f"COPY (SELECT 1 AS n) TO '{path}' (FORMAT parquet)")


def a_csv_file(path: Path) -> None:
    path.write_text("id,state\n1,ready\n")


def a_json_file(path: Path) -> None:
    path.write_text('{"items": []}\n')


def an_empty_file(path: Path) -> None:
    path.touch()


def a_gzip_file(path: Path) -> None:
    import gzip

    path.write_bytes(gzip.compress(b"id,state\n"))


def random_bytes(path: Path) -> None:
    path.write_bytes(bytes(range(256)) * 8)


def a_directory(path: Path) -> None:
    path.mkdir()


FOREIGN_FILES = [
    (an_sqlite_database, "looks like an SQLite database"),
    (a_parquet_file, "looks like a Parquet file"),
    (a_csv_file, "looks like text (e.g. CSV or JSON)"),
    (a_json_file, "looks like text (e.g. CSV or JSON)"),
    (an_empty_file, "is empty (0 bytes)"),
    (a_gzip_file, "looks like a gzip-compressed file"),
    (random_bytes, "has an unknown format (first bytes 00 01 02"),
    (a_directory, "it is a directory"),
]


@pytest.mark.parametrize(
    ("make", "looks_like"), FOREIGN_FILES, ids=[make.__name__ for make, _ in FOREIGN_FILES]
)
def test_a_file_that_is_not_a_duckdb_database_is_refused_untouched(
    emulator: Emulator, client: RoughyClient, tmp_path, make, looks_like
):
    """Refused before DuckDB opens it, saying what it looks like; DuckDB never fetches an extension."""
    database = tmp_path / "roughy_assets.duckdb"
    make(database)
    before = "directory" if database.is_dir() else file_digest(database)
    extensions = Path.home() / ".duckdb" / "extensions"
    installed = sorted(extensions.rglob("*")) if extensions.exists() else []
    project = emulator.world.projects[0]
    for sync in (
        lambda: sync_project(client, database, project, lock_wait_seconds=1),
        lambda: sync_account(client, database, lock_wait_seconds=1),
    ):
        with pytest.raises(RoughyStoreError) as caught:
            sync()
        message = str(caught.value)
        assert str(database) in message and looks_like in message, message
        assert "ROUGHY_DUCKDB_PATH" in message and "extension" not in message.lower(), message
        assert not isinstance(caught.value, RoughyStoreLockedError)
    assert ("directory" if database.is_dir() else file_digest(database)) == before
    assert not Path(f"{database}.wal").exists()
    assert (sorted(extensions.rglob("*")) if extensions.exists() else []) == installed


def test_connections_never_install_or_load_extensions(tmp_path):
    """Each connection the package makes refuses to fetch or load an extension by itself."""
    from roughy_dagster.store.connection import open_database

    sqlite_file = tmp_path / "other.sqlite"
    an_sqlite_database(sqlite_file)
    with open_database(str(tmp_path / "store.duckdb"), read_only=False, lock_wait_seconds=1) as connection:
        settings = connection.execute(
            "SELECT current_setting('autoinstall_known_extensions'), "
            "current_setting('autoload_known_extensions')"
        ).fetchone()
        assert settings == (False, False)
        with pytest.raises(duckdb.Error, match=r"(?i)not found|install"):
            connection.execute(f"SELECT * FROM sqlite_scan('{sqlite_file}', 'assets')")

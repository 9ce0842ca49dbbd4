"""Opening the DuckDB file: waiting for its lock (other processes, threads) and errors that say what to do.

DuckDB lets one process write a file, and within a process a file attached twice fails at once ("Unique
file handle conflict"). So every connection of this process to a file first takes that file's
in-process lock (threads queue like processes do), and a holder outside the code's reach (another
process, or a notebook's own `duckdb.connect` in this process) is waited for up to `lock_wait_seconds`,
then reported. DuckDB failures (a full disk, a truncated or corrupt file, a WAL of another database)
become `RoughyStoreError` naming the file and what to do.

No connection ever installs or loads a DuckDB extension by itself (`NO_EXTENSIONS`): given a file of
another kind (SQLite, Parquet), DuckDB would otherwise fetch a reader for it over the network in the middle
of a sync. A file that is not a DuckDB database (its header lacks DuckDB's magic bytes) is refused before
DuckDB opens it, saying what it looks like (`foreign_file`).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import duckdb

from .errors import RoughyStoreError, RoughyStoreLockedError

STORE_CATALOG = "roughy_store"
"""The catalog name the file is attached under, whatever the file is called."""

UNCHANGED = "Nothing was written; the stored data is unchanged."

NO_EXTENSIONS: dict[str, str | bool | int | float | list[str]] = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
}
"""DuckDB settings every connection of the package is made with: no extension is fetched or loaded by
itself (DuckDB would, to read an SQLite or Parquet file, or a remote path, named where a table is)."""

_MAGIC = b"DUCK"
_MAGIC_OFFSET = 8
"""A DuckDB database file starts with an 8-byte checksum, then `DUCK` (DuckDB's storage format: the
main header, `MainHeader::MAGIC_BYTES` at `MAGIC_BYTE_OFFSET`)."""

_FOREIGN_HEADERS: tuple[tuple[bytes, str], ...] = (
    (b"SQLite format 3\x00", "an SQLite database"),
    (b"PAR1", "a Parquet file"),
    (b"PK\x03\x04", "a ZIP archive (or a file format built on ZIP, e.g. XLSX)"),
    (b"\x1f\x8b", "a gzip-compressed file"),
    (b"ARROW1", "an Arrow IPC file"),
    (b"Obj\x01", "an Avro file"),
    (b"%PDF", "a PDF document"),
)

_FILE_LOCKS: dict[str, threading.RLock] = {}
_FILE_LOCKS_GUARD = threading.Lock()


def _file_lock(database: str) -> threading.RLock:
    """The in-process lock of one file (by its resolved path)."""
    key = os.path.realpath(os.path.expanduser(database))
    with _FILE_LOCKS_GUARD:
        lock = _FILE_LOCKS.get(key)
        if lock is None:
            lock = _FILE_LOCKS[key] = threading.RLock()
        return lock


@contextmanager
def open_database(
    database: str, *, read_only: bool, lock_wait_seconds: float, threads: int | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to `database` attached as `STORE_CATALOG`, closed after; DuckDB errors made clear.

    `threads`: DuckDB's threads, set when the instance is made (None: one per core). Starting worker
    threads costs a fresh instance tens of milliseconds on a busy machine, so a connection asking small
    questions is best made with one.

    Waits up to `lock_wait_seconds` for other threads of this process, then for other holders of the
    file; raises `RoughyStoreLockedError` when it stays locked, `RoughyStoreError` for a file that
    cannot be used (and, inside the block, for a full disk or a damaged file).
    """
    deadline = time.monotonic() + lock_wait_seconds
    lock = None if database == ":memory:" else _file_lock(database)
    if lock is not None and not lock.acquire(timeout=max(0.0, lock_wait_seconds)):
        raise _locked(database, "another thread of this process", lock_wait_seconds)
    try:
        connection = _open(database, read_only, deadline, lock_wait_seconds, threads)
        try:
            yield connection
        except duckdb.Error as error:
            raise store_error(database, error) from error
        finally:
            connection.close()
    finally:
        if lock is not None:
            lock.release()


def _open(
    database: str, read_only: bool, deadline: float, lock_wait_seconds: float, threads: int | None = None
) -> duckdb.DuckDBPyConnection:
    if read_only and not Path(database).exists():
        raise RoughyStoreError(
            f"DuckDB file {database} does not exist: materialize roughy/assets or run a sync first"
        )
    if database != ":memory:" and not read_only:
        prepare_folder(database)
    if database != ":memory:":
        refused = foreign_file(database)
        if refused is not None:
            raise refused
    wait = 0.05
    while True:
        try:
            return _attach(database, read_only, threads)
        except duckdb.Error as error:
            holder = _holder(str(error))
            if holder is None:
                raise store_error(database, error, opening=True) from None
            if time.monotonic() + wait > deadline:
                raise _locked(database, holder, lock_wait_seconds) from None
            time.sleep(wait)
            wait = min(wait * 2, 1.0)


def create_whole(database: str, initialize: Callable[[duckdb.DuckDBPyConnection], None]) -> None:
    """Create a file that does not exist yet whole or not at all: nobody ever sees it half-made.

    The file is made and `initialize`d (the schema) under a temporary name beside it, checkpointed, then
    linked into place; if another process made the file meanwhile, theirs is kept. A process killed
    midway leaves at most a `*.creating` file, never a file without its schema.
    """
    if database == ":memory:" or Path(database).exists():
        return
    prepare_folder(database)
    partial = f"{database}.{os.getpid()}-{threading.get_ident()}.creating"
    try:
        connection = _attach(partial, read_only=False)
        try:
            initialize(connection)
            connection.execute("CHECKPOINT")
        finally:
            connection.close()
        try:
            os.link(partial, database)
        except FileExistsError:
            pass  # another process made it first: theirs is used
        except OSError:  # a file system without hard links
            if not Path(database).exists():
                os.replace(partial, database)
    except duckdb.Error as error:
        raise store_error(database, error) from error
    finally:
        for leftover in (partial, f"{partial}.wal"):
            with suppress(FileNotFoundError):
                os.unlink(leftover)


def _attach(database: str, read_only: bool, threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """Open the file under a fixed catalog name so `roughy.<table>` is never ambiguous.

    DuckDB names a file's catalog after the file: in `roughy.duckdb`, `roughy.assets` would be ambiguous
    between that catalog and the `roughy` schema.
    """
    config = dict(NO_EXTENSIONS)
    if threads is not None:
        config["threads"] = threads
    connection = duckdb.connect(config=config)
    try:
        quoted = database.replace("'", "''")
        mode = " (READ_ONLY)" if read_only else ""
        connection.execute(f"ATTACH '{quoted}' AS {STORE_CATALOG}{mode}")
        connection.execute(f"USE {STORE_CATALOG}")
    except BaseException:
        connection.close()
        raise
    return connection


def foreign_file(database: str) -> RoughyStoreError | None:
    """The error to raise for an existing path that is not a DuckDB database file, else None.

    Reads the first bytes only (the file is never opened for writing): a directory, an empty file, or a
    header without DuckDB's magic bytes is refused, naming what the file looks like (SQLite, Parquet,
    text such as CSV or JSON, ...). A missing path, or a DuckDB header (even of a damaged file, which
    DuckDB itself then reports), returns None.
    """
    path = Path(database).expanduser()
    if path.is_dir():
        return RoughyStoreError(
            f"cannot use {database} as the DuckDB file: it is a directory. Set ROUGHY_DUCKDB_PATH (or the "
            "duckdb resource's database) to a file path, e.g. data/roughy_assets.duckdb. Nothing was written."
        )
    try:
        with path.open("rb") as file:
            head = file.read(64)
    except FileNotFoundError:
        return None
    except OSError as error:
        return RoughyStoreError(
            f"cannot read DuckDB file {database} ({error.strerror}): check its permissions, then retry. "
            f"{UNCHANGED}"
        )
    if head[_MAGIC_OFFSET : _MAGIC_OFFSET + len(_MAGIC)] == _MAGIC:
        return None
    elsewhere = (
        "point ROUGHY_DUCKDB_PATH (or the duckdb resource's database) at a DuckDB file, or at a path that "
        "does not exist yet (a sync creates the file there)"
    )
    for magic, kind in _FOREIGN_HEADERS:
        if head.startswith(magic):
            return RoughyStoreError(
                f"{database} is not a DuckDB database: it looks like {kind}. Keep that file and {elsewhere}. "
                "The file was left as it was."
            )
    return RoughyStoreError(
        f"{database} is not a DuckDB database: it {_looks_like(head)}. If it should hold the store, it is "
        "damaged: Restore it from a backup, or move it aside and sync again to rebuild it from the API (the "
        f"history in roughy.asset_events starts again); if it is another file, {elsewhere}. The file was "
        "left as it was."
    )


def _looks_like(head: bytes) -> str:
    """What a file's first bytes (of no known foreign format) look like, as a phrase after 'it'."""
    if not head:
        return "is empty (0 bytes)"
    if len(head) < _MAGIC_OFFSET + len(_MAGIC) and _MAGIC.startswith(head[_MAGIC_OFFSET:]):
        return f"is {len(head)} bytes long, too short for a DuckDB header (truncated?)"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and all(c.isprintable() or c in "\t\r\n" for c in text):
        return "looks like text (e.g. CSV or JSON)"
    return f"has an unknown format (first bytes {head[:16].hex(' ')})"


def _holder(text: str) -> str | None:
    """Who holds the file, when DuckDB's message says it is held (None for any other failure)."""
    if "unique file handle conflict" in text.lower():
        return "another connection in this process (e.g. a notebook's duckdb.connect to the same file)"
    if "could not set lock" not in text.lower() and "conflicting lock" not in text.lower():
        return None
    marker = text.find("PID")
    return f"another process ({text[marker:].split(')')[0].strip()})" if marker >= 0 else "another process"


def _locked(database: str, holder: str, waited: float) -> RoughyStoreLockedError:
    return RoughyStoreLockedError(
        f"DuckDB file {database} is locked by {holder} and stayed locked for {waited:.0f} s: close other "
        f"connections to it (DuckDB CLI, notebooks, a running sync), then retry. {UNCHANGED}"
    )


def prepare_folder(database: str) -> None:
    """Create the file's folder if needed, and refuse one that cannot be written, saying what to do."""
    parent = Path(database).expanduser().resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        problem = f"could not be created ({error.strerror})"
    else:
        if os.access(parent, os.W_OK):
            return
        problem = "is not writable"
    raise RoughyStoreError(
        f"cannot write DuckDB file {database}: its folder {parent} {problem}; "
        "set ROUGHY_DUCKDB_PATH to a writable location"
    )


_DISK_FULL = ("no space left on device", "disk full", "disk is full", "could not write", "file too large")
_DAMAGED = (
    "not a valid duckdb database file",
    "could not read enough bytes",
    "corrupt",
    "checksum",
    "block id",
    "invalid block",
    "serializ",
)


def store_error(database: str, error: BaseException, *, opening: bool = False) -> RoughyStoreError:
    """A DuckDB failure as a `RoughyStoreError` that names the file, the cause and what to do."""
    cause = " ".join(str(error).split())
    lowered = cause.lower()
    if "wal does not match" in lowered or ("replaying wal" in lowered and "corrupt" not in lowered):
        return RoughyStoreError(
            f"DuckDB file {database} cannot be opened: its write-ahead log {database}.wal belongs to another "
            f"database or is damaged ({cause}). Move {database}.wal aside (with it, DuckDB may lose the "
            f"last changes made to this file, which the next sync re-reads from the API), then retry. "
            f"{UNCHANGED}"
        )
    if any(marker in lowered for marker in _DISK_FULL):
        return RoughyStoreError(
            f"cannot write DuckDB file {database}: the disk is full or refuses the write ({cause}). Free "
            "space on that disk, or set ROUGHY_DUCKDB_PATH to a file on a larger one, then retry. "
            + UNCHANGED
        )
    if any(marker in lowered for marker in _DAMAGED):
        return RoughyStoreError(
            f"DuckDB file {database} is damaged (truncated, corrupt, or not a DuckDB file: {cause}). Restore "
            "it from a backup, or move it aside and sync again to rebuild it from the API (the history in "
            "roughy.asset_events and first_seen_at starts again). The file was left as it was."
        )
    if opening:
        return RoughyStoreError(
            f"cannot open DuckDB file {database}: {cause}; check that the path is writable and is a DuckDB "
            "database (ROUGHY_DUCKDB_PATH)"
        )
    return RoughyStoreError(f"DuckDB failed on file {database}: {cause}. {UNCHANGED}")


def rollback(connection: duckdb.DuckDBPyConnection) -> None:
    """Roll back the open transaction, if DuckDB has not already aborted it.

    After a failed COMMIT (e.g. a full disk) DuckDB has ended the transaction itself; a second error
    from ROLLBACK would hide the first, which is the one the caller must see.
    """
    with suppress(duckdb.Error):
        connection.execute("ROLLBACK")

"""Reader copies: after a commit that changed something, a read-only copy of the DuckDB file is published.

DuckDB lets one process write a file only while no other process has it open, readers included. So readers
never open the file a sync writes (the *store*); they open its latest *reader copy*:

    data/roughy_assets.duckdb                           the store: only syncs open it
    data/roughy_assets.latest.duckdb                    a symlink to the latest copy: what readers open
    data/roughy_assets.published/roughy_assets.7.duckdb the copies (the latest and the one before)

A copy is published by the writer while it still holds the store's lock, right after its `COMMIT`:
`CHECKPOINT` (the file then holds every committed change and the write-ahead log is empty), a kernel-side
copy of the file (`os.copy_file_range`: a reflink on filesystems that share extents, an in-kernel copy
elsewhere), `fsync`, then the symlink is replaced by an atomic rename. A reader keeps the copy it opened
(POSIX keeps an unlinked file's data until its last handle closes); every new open gets the latest one.
Each copy has its own path, so even inside one process a new `duckdb.connect` of the symlink gets the new
copy rather than DuckDB's cached instance of the old one. Copies older than the previous one are deleted,
so the folder holds at most two (the previous one stays for a reader that resolved the symlink just before
it moved).

Copies are named `<stem>.<n>.duckdb` so that DuckDB names their catalog `<stem>`, like the store's.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

import duckdb

from .errors import RoughyStoreError

LATEST_SUFFIX = ".latest.duckdb"
"""What follows the store's stem in the symlink readers open."""

FOLDER_SUFFIX = ".published"
"""What follows the store's stem in the folder holding the copies."""

KEPT_COPIES = 2
"""Copies kept in the folder: the latest and the one before (see the module docstring)."""

_TEMPORARY_PREFIX = ".publishing-"


def _republish_marker(database: str | os.PathLike[str]) -> Path:
    """Beside the store while a publish runs and after one failed: the next sync then publishes regardless."""
    path = Path(database)
    return path.with_name(f".{store_stem(path)}.republish")


def store_stem(database: str | os.PathLike[str]) -> str:
    """The name DuckDB gives the store's catalog: the file name up to its first dot."""
    name = Path(database).name
    return name.split(".", 1)[0] or name


def latest_path(database: str | os.PathLike[str]) -> Path:
    """The path readers open for the store `database`: `<folder>/<stem>.latest.duckdb` (a symlink)."""
    path = Path(database)
    return path.with_name(store_stem(path) + LATEST_SUFFIX)


def copies_folder(database: str | os.PathLike[str]) -> Path:
    """The folder of the store's published copies: `<folder>/<stem>.published/`."""
    path = Path(database)
    return path.with_name(store_stem(path) + FOLDER_SUFFIX)


def needs_publish(database: str | os.PathLike[str], changed: bool) -> bool:
    """Whether a commit must publish: it changed something, or readers have no up-to-date copy yet.

    Costs two `stat` calls when nothing changed.
    """
    if str(database) == ":memory:":
        return False
    if changed:
        return True
    return not latest_path(database).exists() or _republish_marker(database).exists()


def publish_after_commit(
    connection: duckdb.DuckDBPyConnection, database: str | os.PathLike[str], catalog: str, *, changed: bool
) -> Path | None:
    """Publish a reader copy if `needs_publish`; returns the new copy, or None when nothing was needed.

    `connection` must hold the store's write lock (no other process can write the file meanwhile) and have
    it attached as `catalog`, with no transaction open. Raises `RoughyStoreError` if the copy cannot be
    published (disk full, unwritable folder); the committed data is unaffected, and the next sync publishes
    again even if it changes nothing.
    """
    if not needs_publish(database, changed):
        return None
    return publish(connection, database, catalog)


def publish(connection: duckdb.DuckDBPyConnection, database: str | os.PathLike[str], catalog: str) -> Path:
    """Checkpoint the store, copy it, point the readers' symlink at the copy (see `publish_after_commit`)."""
    store = Path(database)
    folder = copies_folder(store)
    marker = _republish_marker(store)
    try:
        marker.touch()  # removed once published: a crash or failure before then makes the next sync publish
        _checkpoint(connection, catalog)
        folder.mkdir(exist_ok=True)
        copies = _copies(folder)
        copy = folder / f"{store_stem(store)}.{(copies[-1][0] + 1) if copies else 1}.duckdb"
        temporary = folder / f"{_TEMPORARY_PREFIX}{copy.name}"
        _copy_file(store, temporary)
        os.replace(temporary, copy)
        _point_latest(latest_path(store), copy)
        _fsync_folder(folder)
        _fsync_folder(store.parent)
        marker.unlink(missing_ok=True)
    except (OSError, duckdb.Error) as error:
        with contextlib.suppress(OSError):
            marker.touch()
        raise RoughyStoreError(
            f"the sync was committed to {store}, but its reader copy could not be published in {folder} "
            f"({error}): readers still see the previous copy. Free disk space or make the folder "
            "writable; the next sync publishes again"
        ) from error
    _remove_old_copies(folder, keep=copy)
    return copy


def _checkpoint(connection: duckdb.DuckDBPyConnection, catalog: str) -> None:
    """Write every committed change into the file and empty its write-ahead log (closing would, too)."""
    connection.execute(f"CHECKPOINT {catalog}")


def _copies(folder: Path) -> list[tuple[int, Path]]:
    """The published copies in `folder`, oldest first, with their numbers."""
    found = []
    for entry in folder.iterdir():
        match = re.fullmatch(r"[^.]*\.(\d+)\.duckdb", entry.name)
        if match:
            found.append((int(match.group(1)), entry))
    return sorted(found)


def _copy_file(source: Path, target: Path) -> None:
    """Copy in the kernel (a reflink where the filesystem shares extents), then flush to disk, read-only."""
    with open(source, "rb") as reader, open(target, "wb") as writer:
        size = os.fstat(reader.fileno()).st_size
        copied = 0
        while copied < size:
            sent = _copy_range(reader.fileno(), writer.fileno(), size - copied)
            if sent == 0:
                raise OSError(f"{source} ended after {copied} of {size} bytes while being copied")
            copied += sent
        os.fchmod(writer.fileno(), 0o444)
        os.fsync(writer.fileno())


def _copy_range(source: int, target: int, count: int) -> int:
    """Copy up to `count` bytes from the files' current offsets (else by sendfile, else read and write)."""
    try:
        return os.copy_file_range(source, target, count)
    except (AttributeError, OSError):  # not Linux, or a filesystem pair that refuses it
        pass
    try:
        offset = os.lseek(source, 0, os.SEEK_CUR)
        sent = os.sendfile(target, source, offset, count)
        os.lseek(source, offset + sent, os.SEEK_SET)
        return sent
    except (AttributeError, OSError):
        data = os.read(source, min(count, 1 << 24))
        return os.write(target, data)


def _point_latest(link: Path, copy: Path) -> None:
    """Replace the readers' symlink by an atomic rename, with a path relative to its folder."""
    temporary = link.with_name(f"{_TEMPORARY_PREFIX}{link.name}")
    temporary.unlink(missing_ok=True)
    os.symlink(os.path.relpath(copy, link.parent), temporary)
    os.replace(temporary, link)


def _fsync_folder(folder: Path) -> None:
    """Make renames in `folder` durable (a no-op where folders cannot be opened)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def _remove_old_copies(folder: Path, keep: Path) -> None:
    """Delete copies older than the previous one, and leftovers of interrupted publishes.

    A reader that has a deleted copy open keeps reading it: its data is freed when it closes.
    """
    stale = [path for _, path in _copies(folder) if path != keep][: -(KEPT_COPIES - 1) or None]
    stale += list(_leftovers(folder))
    for path in stale:
        for doomed in (path, path.with_name(path.name + ".wal")):
            with contextlib.suppress(OSError):
                doomed.unlink()


def _leftovers(folder: Path) -> Iterator[Path]:
    """Temporary files of publishes cut short by a crash (only the lock holder publishes: all are stale)."""
    return (entry for entry in folder.iterdir() if entry.name.startswith(_TEMPORARY_PREFIX))

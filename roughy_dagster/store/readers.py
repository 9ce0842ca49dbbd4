"""`connect`: a read-only DuckDB connection on the latest published copy of the synced data.

Readers never open the file syncs write (see `publish`): they open the latest copy, which a sync or a
reaction never waits for, and keep it, unchanged, for as long as the connection lives.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from .connection import NO_EXTENSIONS
from .errors import RoughyStoreError
from .publish import latest_path

ASSETS_CATALOG = "roughy_assets"
"""The catalog `connect` attaches the store's latest copy as, and makes the default."""

REACTIONS_CATALOG = "roughy_reactions"
"""The catalog `connect` attaches the reactions' latest copy as: query `roughy_reactions.reactions`."""

DEFAULT_DATABASE = "data/roughy_assets.duckdb"
"""The store path `connect` uses when neither its argument nor `ROUGHY_DUCKDB_PATH` names one."""

_OPEN_ATTEMPTS = 3


def connect(database: str | os.PathLike[str] | None = None) -> duckdb.DuckDBPyConnection:
    """A read-only connection on the latest published copy of the store `database` and its reactions.

    `database` is the store's path, as configured (default: `ROUGHY_DUCKDB_PATH`, else
    `data/roughy_assets.duckdb`). The copy is attached as catalog `roughy_assets`, whatever the file is
    called, and made the default, so `roughy.assets`, `roughy.asset_events` and `roughy.sync_runs` resolve;
    the reactions of the example jobs, if any were recorded, are attached as `roughy_reactions`
    (`roughy_reactions.reactions`). The connection sees the state of the last sync that changed something,
    as of when it was opened, and never blocks a sync: open a new one to see later syncs. Close it when done
    (or use it in a `with` block).

    Raises `RoughyStoreError` naming the path when no copy has been published yet (no sync has run).
    """
    from .reactions import reactions_path  # the reactions log lives beside the store

    store = store_path(database)
    connection = duckdb.connect(config=dict(NO_EXTENSIONS))
    try:
        _attach_latest(connection, store, ASSETS_CATALOG, required=True)
        connection.execute(f"USE {ASSETS_CATALOG}")
        _attach_latest(connection, reactions_path(store), REACTIONS_CATALOG, required=False)
    except BaseException:
        connection.close()
        raise
    return connection


def store_path(database: str | os.PathLike[str] | None = None) -> Path:
    """The store's path: `database`, else `ROUGHY_DUCKDB_PATH`, else `data/roughy_assets.duckdb`."""
    return Path(database or os.environ.get("ROUGHY_DUCKDB_PATH", "").strip() or DEFAULT_DATABASE)


def _attach_latest(
    connection: duckdb.DuckDBPyConnection, store: Path, catalog: str, *, required: bool
) -> None:
    """Attach the latest copy of `store` read-only as `catalog`, following the symlink once.

    A copy is deleted only two publishes after it stopped being the latest, so a copy the symlink named a
    moment ago is still there; the open is retried anyway if it vanished.
    """
    link = latest_path(store)
    for attempt in range(_OPEN_ATTEMPTS):
        try:
            copy = link.resolve(strict=True)
        except (FileNotFoundError, RuntimeError):
            if not required:
                return
            raise RoughyStoreError(
                f"no reader copy of {store} has been published yet ({link} does not exist): "
                "materialize roughy/assets or run a sync first; every sync that changes something "
                "publishes one"
            ) from None
        try:
            connection.execute(f"ATTACH {_literal(copy)} AS {_quoted(catalog)} (READ_ONLY)")
            return
        except duckdb.IOException as error:
            if attempt + 1 < _OPEN_ATTEMPTS and not copy.exists():
                continue
            raise RoughyStoreError(f"cannot open {copy} (the copy {link} points at): {error}") from None


def _literal(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'

"""`ReactionLog`: what reaction jobs did, kept in a DuckDB file of its own beside the store.

Reactions never open the store, so a reaction never waits for a sync's write lock and a sync never waits
for a reaction. The log is one table, `reactions`, in `<folder>/<stem>_reactions.duckdb`; like the store it
is published after each write as a read-only copy (`<stem>_reactions.latest.duckdb`), which is what readers
open (`roughy_dagster.connect` attaches it as `roughy_reactions`). Reaction runs wait for one another's
lock only for the few milliseconds of one insert and its publish.
"""

from __future__ import annotations

import os
from pathlib import Path

from .connection import STORE_CATALOG, open_database
from .publish import publish_after_commit, store_stem

REACTIONS_SUFFIX = "_reactions.duckdb"

_CREATE = """
CREATE TABLE IF NOT EXISTS reactions (
    asset_id UUID NOT NULL,
    project_id UUID NOT NULL,
    state VARCHAR NOT NULL,
    handled_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
    run_id VARCHAR NOT NULL,
    detail VARCHAR
)
"""


def reactions_path(database: str | os.PathLike[str]) -> Path:
    """The reactions log of the store `database`: `<folder>/<stem>_reactions.duckdb`."""
    path = Path(database)
    return path.with_name(store_stem(path) + REACTIONS_SUFFIX)


class ReactionLog:
    """The reactions log beside the store `database` (the store's path, not the log's)."""

    def __init__(self, database: str | os.PathLike[str], *, lock_wait_seconds: float = 30.0) -> None:
        self.path = reactions_path(database)
        self.lock_wait_seconds = lock_wait_seconds

    def record(self, asset_id: str, project_id: str, state: str, run_id: str, detail: str | None) -> None:
        """Append one reaction and publish the log's reader copy.

        Waits up to `lock_wait_seconds` for another reaction writing the log, then raises
        `RoughyStoreLockedError`; raises `RoughyStoreError` for an unwritable folder or a file that is not
        DuckDB. Never opens the store.
        """
        with open_database(
            str(self.path), read_only=False, lock_wait_seconds=self.lock_wait_seconds
        ) as connection:
            connection.execute(_CREATE)
            connection.execute(
                "INSERT INTO reactions (asset_id, project_id, state, run_id, detail) VALUES (?, ?, ?, ?, ?)",
                [asset_id, project_id, state, run_id, detail],
            )
            publish_after_commit(connection, self.path, STORE_CATALOG, changed=True)

"""The DuckDB schema `roughy`, created and migrated by version; a newer file is refused, never altered."""

from __future__ import annotations

from typing import Any

import duckdb

from .errors import RoughySchemaError

SCHEMA = "roughy"

_ASSET_COLUMNS = """\
        project_id UUID NOT NULL,
        type VARCHAR,
        state VARCHAR NOT NULL
            CHECK (state IN ('pending_upload', 'processing', 'pending_payment', 'ready', 'failed')),
        extension VARCHAR,
        size_bytes BIGINT,
        content_type VARCHAR,
        duration_seconds DECIMAL(38, 9),
        language VARCHAR,
        error_code VARCHAR,
        error_message VARCHAR,
        created_at TIMESTAMPTZ NOT NULL,
        upload_url VARCHAR,
        first_seen_at TIMESTAMPTZ NOT NULL,
        last_seen_at TIMESTAMPTZ NOT NULL,
        state_changed_at TIMESTAMPTZ NOT NULL,
        deleted_at TIMESTAMPTZ,
        last_sync_id BIGINT NOT NULL
"""
"""The columns of `roughy.assets` after `id` (unchanged since version 1)."""

MIGRATIONS: tuple[str, ...] = (
    # version 1
    """
    CREATE SCHEMA IF NOT EXISTS roughy;
    CREATE TABLE roughy.schema_version (
        version INTEGER NOT NULL,
        applied_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
    );
    CREATE SEQUENCE roughy.sync_id_seq START 1;
    CREATE TABLE roughy.assets (
        id UUID PRIMARY KEY,
{columns}    );
    CREATE TABLE roughy.asset_events (
        sync_id BIGINT NOT NULL,
        project_id UUID NOT NULL,
        asset_id UUID NOT NULL,
        kind VARCHAR NOT NULL CHECK (kind IN ('appeared', 'state_changed', 'updated', 'deleted', 'revived')),
        old_state VARCHAR,
        new_state VARCHAR,
        observed_at TIMESTAMPTZ NOT NULL
    );
    CREATE TABLE roughy.sync_runs (
        sync_id BIGINT PRIMARY KEY,
        project_id UUID NOT NULL,
        mode VARCHAR NOT NULL,
        started_at TIMESTAMPTZ NOT NULL,
        finished_at TIMESTAMPTZ NOT NULL,
        requests INTEGER NOT NULL,
        pages INTEGER NOT NULL,
        retries INTEGER NOT NULL,
        new_count INTEGER NOT NULL,
        changed_count INTEGER NOT NULL,
        deleted_count INTEGER NOT NULL,
        revived_count INTEGER NOT NULL,
        unchanged_count INTEGER NOT NULL,
        remote_pending_upload BIGINT,
        remote_processing BIGINT,
        remote_pending_payment BIGINT,
        remote_ready BIGINT,
        remote_failed BIGINT,
        live_rows BIGINT NOT NULL,
        verified BOOLEAN NOT NULL,
        unresolved INTEGER NOT NULL
    );
    """.replace("{columns}", _ASSET_COLUMNS),
    # version 2: what the example reaction jobs record
    """
    CREATE TABLE roughy.reactions (
        asset_id UUID NOT NULL,
        project_id UUID NOT NULL,
        state VARCHAR NOT NULL,
        handled_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
        run_id VARCHAR NOT NULL,
        detail VARCHAR
    );
    """,
    # version 3: `roughy.assets` without the primary-key index. Before every commit the sync checks that
    # each id it wrote is on one row (`store._check_ids_unique`); the ART index cost a first load about a
    # fifth of its write and is loaded in memory whenever the table is written. DuckDB cannot drop a
    # constraint, so the table is rebuilt.
    """
    CREATE TABLE roughy.assets_v3 (
        id UUID NOT NULL,
{columns}    );
    INSERT INTO roughy.assets_v3 SELECT * FROM roughy.assets;
    DROP TABLE roughy.assets;
    ALTER TABLE roughy.assets_v3 RENAME TO assets;
    """.replace("{columns}", _ASSET_COLUMNS),
)

CURRENT_VERSION = len(MIGRATIONS)


def first_row(connection: duckdb.DuckDBPyConnection, sql: str, parameters: object = None) -> tuple[Any, ...]:
    """The first row of a query, fetched whole: duckdb 2 refuses other work while a result is unfinished."""
    rows = connection.execute(sql, parameters).fetchall()
    return tuple(rows[0]) if rows else ()


def schema_version(connection: duckdb.DuckDBPyConnection) -> int:
    """The schema version a file holds (0 for a file without the schema)."""
    (exists,) = first_row(
        connection,
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
        [SCHEMA, "schema_version"],
    )
    if not exists:
        return 0
    (version,) = first_row(connection, "SELECT max(version) FROM roughy.schema_version")
    return int(version) if version is not None else 0


def check_readable(connection: duckdb.DuckDBPyConnection, database: str) -> None:
    """Refuse to read a file whose schema is missing or from a newer version, saying what to do."""
    found = schema_version(connection)
    if found == 0:
        raise RoughySchemaError(f"{database} has no roughy schema yet: run a sync into it first")
    if found > CURRENT_VERSION:
        raise _newer_schema(database, found)


def _newer_schema(database: str, found: int) -> RoughySchemaError:
    return RoughySchemaError(
        f"{database} holds roughy schema version {found}, newer than version {CURRENT_VERSION} that this "
        "roughy-dagster knows: upgrade roughy-dagster, or point ROUGHY_DUCKDB_PATH at another file"
    )


def ensure_schema(connection: duckdb.DuckDBPyConnection, database: str) -> None:
    """Create or migrate the schema to the version this code knows; refuse a file from a newer version."""
    found = schema_version(connection)
    if found > CURRENT_VERSION:
        raise _newer_schema(database, found)
    if found == CURRENT_VERSION:
        return
    connection.execute("BEGIN TRANSACTION")
    try:
        for version in range(found + 1, CURRENT_VERSION + 1):
            connection.execute(MIGRATIONS[version - 1])
            connection.execute("INSERT INTO roughy.schema_version (version) VALUES (?)", [version])
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise

"""The DuckDB schema `roughy`, created and migrated by version; a newer file is refused, never altered."""

from __future__ import annotations

from typing import Any

import duckdb

from ..client import AssetState
from ..fields import ASSET_FIELDS, AssetField
from .errors import RoughySchemaError

SCHEMA = "roughy"

_CHECKS = {"state": f"CHECK (state IN ({', '.join(repr(state.value) for state in AssetState)}))"}
"""Column constraints beyond nullability, by column name."""


def column_definition(field: AssetField) -> str:
    """The DDL of one `roughy.assets` column, e.g. `size_bytes BIGINT`."""
    not_null = "" if field.nullable else " NOT NULL"
    check = f" {_CHECKS[field.name]}" if field.name in _CHECKS else ""
    return f"{field.name} {field.duckdb_type}{not_null}{check}"


def asset_columns(up_to_version: int, *, leave_out: tuple[str, ...] = ()) -> str:
    """The column definitions of `roughy.assets` as of a schema version (from `roughy_dagster.fields`)."""
    return (
        "".join(
            f"        {column_definition(f)},\n"
            for f in ASSET_FIELDS
            if f.since_version <= up_to_version and f.name not in leave_out
        ).removesuffix(",\n")
        + "\n"
    )


def _column_list(up_to_version: int) -> str:
    return ", ".join(f.name for f in ASSET_FIELDS if f.since_version <= up_to_version)


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
    """.replace("{columns}", asset_columns(1, leave_out=("id",))),
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
{columns}    );
    INSERT INTO roughy.assets_v3 ({names}) SELECT {names} FROM roughy.assets;
    DROP TABLE roughy.assets;
    ALTER TABLE roughy.assets_v3 RENAME TO assets;
    """.replace("{columns}", asset_columns(3)).replace("{names}", _column_list(3)),
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

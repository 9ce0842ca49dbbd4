"""The DuckDB schema `roughy`, created and migrated by version; a newer file is refused, never altered."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import duckdb

from ..client import AssetState
from ..fields import ASSET_FIELDS, AssetField
from .connection import rollback
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


def _user_indexes(connection: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    """(name, CREATE statement) of each index on `roughy.<table>` (all are users': the code makes none)."""
    return [
        (str(name), str(sql))
        for name, sql in connection.execute(
            "SELECT index_name, sql FROM duckdb_indexes() WHERE database_name = current_database() "
            "AND schema_name = ? AND table_name = ? AND sql IS NOT NULL",
            [SCHEMA, table],
        ).fetchall()
    ]


@contextmanager
def indexes_set_aside(connection: duckdb.DuckDBPyConnection, table: str) -> Iterator[None]:
    """Drop the users' indexes on `roughy.<table>` for the block and create them again after it.

    DuckDB refuses to alter a column of a table that has an index ("Cannot alter entry ... because there
    are entries that depend on it") and drops a table's indexes with it; a migration keeps them this way.
    """
    indexes = _user_indexes(connection, table)
    for name, _ in indexes:
        connection.execute(f'DROP INDEX {SCHEMA}."{name}"')
    yield
    for _, sql in indexes:
        connection.execute(sql)


def add_columns(connection: duckdb.DuckDBPyConnection, version: int) -> None:
    """Add the `roughy.assets` columns that `roughy_dagster.fields` says `version` added (at the end)."""
    for f in ASSET_FIELDS:
        if f.since_version == version:
            connection.execute(f"ALTER TABLE {SCHEMA}.assets ADD COLUMN {column_definition(f)}")


def rebuild_table(
    connection: duckdb.DuckDBPyConnection, table: str, columns: str, values: Mapping[str, str] | None = None
) -> None:
    """Replace `roughy.<table>` by one with the column definitions `columns`, keeping rows and user parts.

    Columns of the old table that `columns` does not define (an analyst's `ALTER TABLE ... ADD COLUMN`)
    are carried over with their type and values, after the defined ones; indexes are created again.
    `values` gives SQL for columns whose new value is computed from the old row (by column name).
    (DuckDB cannot drop or change a constraint in place, hence rebuilds.)
    """
    defined = [line.strip().split()[0] for line in columns.strip().rstrip(",").split(",\n")]
    existing = connection.execute(
        "SELECT column_name, data_type FROM duckdb_columns() "
        "WHERE database_name = current_database() AND schema_name = ? AND table_name = ? "
        "ORDER BY column_index",
        [SCHEMA, table],
    ).fetchall()
    kept = [name for name, _ in existing if name in defined]
    added = [(name, kind) for name, kind in existing if name not in defined]
    extra = "".join(f',\n        "{name}" {kind}' for name, kind in added)
    names = ", ".join(f'"{name}"' for name in [*kept, *(name for name, _ in added)])
    computed = ", ".join(
        f'{(values or {})[name]} AS "{name}"' if name in (values or {}) else f'"{name}"'
        for name in [*kept, *(name for name, _ in added)]
    )
    with indexes_set_aside(connection, table):
        connection.execute(f"CREATE TABLE {SCHEMA}.{table}_rebuilt (\n{columns.rstrip()}{extra}\n)")
        connection.execute(
            f"INSERT INTO {SCHEMA}.{table}_rebuilt ({names}) SELECT {computed} FROM {SCHEMA}.{table}"
        )
        connection.execute(f"DROP TABLE {SCHEMA}.{table}")
        connection.execute(f"ALTER TABLE {SCHEMA}.{table}_rebuilt RENAME TO {table}")


EVENT_KINDS = ("initial", "appeared", "state_changed", "updated", "deleted", "revived")
"""The kinds of `roughy.asset_events` rows (README, "The data in DuckDB", says what each means)."""


def _event_columns() -> str:
    kinds = ", ".join(f"'{kind}'" for kind in EVENT_KINDS)
    return f"""\
        sync_id BIGINT NOT NULL,
        project_id UUID NOT NULL,
        asset_id UUID NOT NULL,
        kind VARCHAR NOT NULL CHECK (kind IN ({kinds})),
        old_state VARCHAR,
        new_state VARCHAR,
        observed_at TIMESTAMPTZ NOT NULL
"""


def _observed_transitions(connection: duckdb.DuckDBPyConnection) -> None:
    """Version 6: `state_changed_at` only ever an observed transition, and `initial` events.

    `state_changed_at` was set to the first sighting of every asset, so it could not tell a transition
    seen by a sync from an asset first seen in that state. It becomes the time of the last observed
    transition into the current state (from the `state_changed` events), or NULL. The `appeared` events
    of each project's initial load (the first sync that stored its assets) become `initial`.
    """
    with indexes_set_aside(connection, "assets"):
        connection.execute(f"ALTER TABLE {SCHEMA}.assets ALTER COLUMN state_changed_at DROP NOT NULL")
    connection.execute(
        f"""
        UPDATE {SCHEMA}.assets AS a SET state_changed_at = (
            SELECT max(e.observed_at) FROM {SCHEMA}.asset_events AS e
            WHERE e.asset_id = a.id AND e.kind = 'state_changed' AND e.new_state = a.state
        )
        """
    )
    rebuild_table(
        connection,
        "asset_events",
        _event_columns(),
        values={
            "kind": "CASE WHEN kind = 'appeared' AND sync_id = min(sync_id) OVER (PARTITION BY project_id) "
            "THEN 'initial' ELSE kind END"
        },
    )


Migration = str | Callable[[duckdb.DuckDBPyConnection], None]
"""SQL, or a function given the connection (inside the migration's transaction)."""

MIGRATIONS: tuple[Migration, ...] = (
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
    lambda connection: rebuild_table(connection, "assets", asset_columns(3)),
    # version 4: `unfit_values`, the API's values that their typed column cannot hold exactly
    # (`roughy_dagster.sync.values`)
    lambda connection: add_columns(connection, 4),
    # version 5: why a sync could not prove the stored rows equal to the listing (NULL when verified)
    "ALTER TABLE roughy.sync_runs ADD COLUMN reason VARCHAR;",
    # version 6: `state_changed_at` only an observed transition (or NULL); `initial` events
    _observed_transitions,
)

CURRENT_VERSION = len(MIGRATIONS)


def first_row(connection: duckdb.DuckDBPyConnection, sql: str, parameters: object = None) -> tuple[Any, ...]:
    """The first row of a query, fetched whole: duckdb 2 refuses other work while a result is unfinished."""
    rows = connection.execute(sql, parameters).fetchall()
    return tuple(rows[0]) if rows else ()


def schema_version(connection: duckdb.DuckDBPyConnection, database: str = "") -> int:
    """The schema version a file holds (0 for a file without a `roughy` schema).

    Raises `RoughySchemaError`, naming the file, what was found and what to do, for a `roughy` schema
    this code did not make (tables but no `roughy.schema_version`) and for version metadata no
    roughy-dagster writes: a `version` column missing or not an integer, no row, a NULL, a version below
    1, a version twice, or a gap (every migration adds one row, so a file at version N holds exactly
    1..N). A version above `CURRENT_VERSION` is returned as is (its rows are a newer code's to judge; the
    callers refuse it as newer, saying to upgrade).
    """
    tables = _tables(connection)
    if not tables:
        return 0
    if "schema_version" not in tables:
        raise _foreign(database, f"it has tables {', '.join(sorted(tables))} but no roughy.schema_version")
    kind = dict(
        connection.execute(
            "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = current_database() "
            "AND schema_name = ? AND table_name = 'schema_version'",
            [SCHEMA],
        ).fetchall()
    ).get("version")
    if kind not in _INTEGER_TYPES:
        found = "has no column version" if kind is None else f"holds version as {kind}, not INTEGER"
        raise _tampered(database, f"its roughy.schema_version is unreadable: it {found}")
    low, high, rows, known, distinct = first_row(
        connection,
        "SELECT min(version), max(version), count(*), count(version), count(DISTINCT version) "
        "FROM roughy.schema_version",
    )
    problem = ""
    if rows == 0:
        problem = "is empty, though the schema has tables: the version they are at is unknown"
    elif known < rows:
        problem = f"holds a NULL version ({rows - known} of {rows} rows)"
    elif low < 1:
        problem = f"holds version {low}; versions start at 1"
    elif high > CURRENT_VERSION:
        return int(high)  # a newer roughy-dagster's file: its callers say to upgrade, whatever its rows
    elif distinct < rows:
        problem = f"holds a version more than once ({rows} rows for {distinct} versions)"
    elif distinct < high:
        problem = f"lacks versions: it holds {distinct} of the versions 1 to {high}, one row each"
    if problem:
        raise _tampered(database, f"its roughy.schema_version {problem}")
    return int(high)


_INTEGER_TYPES = frozenset({"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT"})


def _tables(connection: duckdb.DuckDBPyConnection) -> set[str]:
    return {
        str(name)
        for (name,) in connection.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() "
            "AND schema_name = ?",
            [SCHEMA],
        ).fetchall()
    }


def _foreign(database: str, what: str) -> RoughySchemaError:
    return RoughySchemaError(
        f"{database} holds a `roughy` schema that roughy-dagster did not make or cannot use: {what}. "
        "Point ROUGHY_DUCKDB_PATH at another file, or move that schema's tables out of the way "
        "(the file was left as it was)"
    )


def _tampered(database: str, what: str) -> RoughySchemaError:
    """Version metadata no roughy-dagster writes: the file was edited (or damaged) by hand."""
    return RoughySchemaError(
        f"{database} holds a `roughy` schema that roughy-dagster did not make or cannot use: {what}. "
        f"Each schema version adds one row to roughy.schema_version, so a file at version N holds exactly "
        f"the versions 1 to N (this roughy-dagster writes version {CURRENT_VERSION}). Restore the file "
        "from a backup; or, if you know which version its tables are at, make roughy.schema_version hold "
        "those rows again; or move the file aside and sync again to rebuild it from the API (the history "
        "in roughy.asset_events starts again). The file was left as it was"
    )


_STORE_TABLES = ("assets", "asset_events", "sync_runs")


def check_shape(connection: duckdb.DuckDBPyConnection, database: str) -> None:
    """Refuse a schema whose tables lack a column of `roughy_dagster.fields` or hold it as another type.

    Columns and indexes the users added are fine; they are kept (every INSERT names its columns).
    """
    missing_tables = [t for t in _STORE_TABLES if t not in _tables(connection)]
    if missing_tables:
        raise _foreign(database, f"it lacks table(s) {', '.join('roughy.' + t for t in missing_tables)}")
    found = dict(
        connection.execute(
            "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = current_database() "
            "AND schema_name = ? AND table_name = 'assets'",
            [SCHEMA],
        ).fetchall()
    )
    expected = _expected_types(connection)
    wrong = [
        f"{name} {'is missing' if name not in found else f'is {found[name]}, not {kind}'}"
        for name, kind in expected.items()
        if found.get(name) != kind
    ]
    if wrong:
        raise _foreign(database, "in roughy.assets, " + "; ".join(wrong))


_EXPECTED_TYPES: dict[str, str] = {}


def _expected_types(connection: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Each column's type as DuckDB names it (e.g. `TIMESTAMP WITH TIME ZONE`), asked once per process."""
    if not _EXPECTED_TYPES:
        casts = ", ".join(f"typeof(CAST(NULL AS {f.duckdb_type}))" for f in ASSET_FIELDS)
        names = first_row(connection, f"SELECT {casts}")
        _EXPECTED_TYPES.update({f.name: str(kind) for f, kind in zip(ASSET_FIELDS, names, strict=True)})
    return _EXPECTED_TYPES


def check_readable(connection: duckdb.DuckDBPyConnection, database: str) -> None:
    """Refuse to read a file whose schema is missing, foreign or from a newer version, saying what to do."""
    found = schema_version(connection, database)
    if found == 0:
        raise RoughySchemaError(f"{database} has no roughy schema yet: run a sync into it first")
    if found > CURRENT_VERSION:
        raise _newer_schema(database, found)
    check_shape(connection, database)


def _newer_schema(database: str, found: int) -> RoughySchemaError:
    return RoughySchemaError(
        f"{database} holds roughy schema version {found}, newer than version {CURRENT_VERSION} that this "
        "roughy-dagster knows: upgrade roughy-dagster, or point ROUGHY_DUCKDB_PATH at another file"
    )


def ensure_schema(connection: duckdb.DuckDBPyConnection, database: str) -> None:
    """Create or migrate the schema to the version this code knows; refuse a file from a newer version."""
    found = schema_version(connection, database)
    if found > CURRENT_VERSION:
        raise _newer_schema(database, found)
    if found == CURRENT_VERSION:
        check_shape(connection, database)
        return
    connection.execute("BEGIN TRANSACTION")
    try:
        for version in range(found + 1, CURRENT_VERSION + 1):
            migration = MIGRATIONS[version - 1]
            if callable(migration):
                migration(connection)
            else:
                connection.execute(migration)
            connection.execute("INSERT INTO roughy.schema_version (version) VALUES (?)", [version])
        check_shape(connection, database)
        connection.execute("COMMIT")
    except BaseException:
        rollback(connection)
        raise

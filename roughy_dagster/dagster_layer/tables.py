"""The three DuckDB tables a sync writes, as Dagster sees them: name, description and column schema.

`tests/test_dagster_layer.py` compares each column schema with the columns a fresh store creates, so a
change to the DDL that is not reflected here fails a test.
"""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg

from ..fields import ASSET_FIELDS


def _column(
    name: str, type_: str, description: str | None = None, *, nullable: bool = True
) -> dg.TableColumn:
    constraints = None if nullable else dg.TableColumnConstraints(nullable=False)
    return dg.TableColumn(name, type_, description=description, constraints=constraints)


COLUMN_SCHEMA = dg.TableSchema(
    columns=[
        dg.TableColumn(
            f.name,
            f.duckdb_type,
            description=f.description,
            constraints=dg.TableColumnConstraints(nullable=f.nullable, unique=f.name == "id"),
        )
        for f in ASSET_FIELDS
    ]
)
"""The column schema of `roughy.assets`, from `roughy_dagster.fields`."""

EVENTS_COLUMN_SCHEMA = dg.TableSchema(
    columns=[
        _column("sync_id", "BIGINT", "roughy.sync_runs.sync_id of the sync that observed it", nullable=False),
        _column("project_id", "UUID", "Owning project (the partition)", nullable=False),
        _column("asset_id", "UUID", "roughy.assets.id", nullable=False),
        _column(
            "kind",
            "VARCHAR",
            "initial (first seen at the project's initial load) | appeared (new since the sync before) | "
            "state_changed | updated (fields changed within a state) | deleted | revived",
            nullable=False,
        ),
        _column("old_state", "VARCHAR", "State before the change; null when initial or appeared"),
        _column("new_state", "VARCHAR", "State after the change; null when it was deleted"),
        _column("observed_at", "TIMESTAMPTZ", "When the sync observed the change", nullable=False),
    ]
)
"""The column schema of `roughy.asset_events`."""

_REMOTE = "The listing's total of {} assets, as the sync read it"

SYNC_RUNS_COLUMN_SCHEMA = dg.TableSchema(
    columns=[
        dg.TableColumn(
            "sync_id",
            "BIGINT",
            description="Increasing id of the sync",
            constraints=dg.TableColumnConstraints(nullable=False, unique=True),
        ),
        _column("project_id", "UUID", "The project synced (the partition)", nullable=False),
        _column("mode", "VARCHAR", "incremental | full", nullable=False),
        _column("started_at", "TIMESTAMPTZ", nullable=False),
        _column("finished_at", "TIMESTAMPTZ", nullable=False),
        _column("requests", "INTEGER", "HTTP requests made", nullable=False),
        _column("pages", "INTEGER", "Pages read", nullable=False),
        _column("retries", "INTEGER", "Requests retried", nullable=False),
        _column("new_count", "INTEGER", "Assets that appeared", nullable=False),
        _column("changed_count", "INTEGER", "Assets whose state or fields changed", nullable=False),
        _column("deleted_count", "INTEGER", "Assets that left the listing", nullable=False),
        _column("revived_count", "INTEGER", "Deleted assets seen again", nullable=False),
        _column("unchanged_count", "INTEGER", "Assets seen unchanged", nullable=False),
        _column("remote_pending_upload", "BIGINT", _REMOTE.format("pending_upload")),
        _column("remote_processing", "BIGINT", _REMOTE.format("processing")),
        _column("remote_pending_payment", "BIGINT", _REMOTE.format("pending_payment")),
        _column("remote_ready", "BIGINT", _REMOTE.format("ready")),
        _column("remote_failed", "BIGINT", _REMOTE.format("failed")),
        _column("live_rows", "BIGINT", "Live stored rows of the project after the sync", nullable=False),
        _column("verified", "BOOLEAN", "Stored rows proven equal to the listing", nullable=False),
        _column("unresolved", "INTEGER", "Differences the sync could not resolve", nullable=False),
        _column("reason", "VARCHAR", "Why the sync is not verified; null when it is"),
    ]
)
"""The column schema of `roughy.sync_runs`."""


@dataclass(frozen=True)
class RoughyTable:
    """One table a sync writes, as `DagsterRoughyTranslator.get_asset_spec` receives it.

    `name` is the table's name within schema `roughy` ("assets", "asset_events" or "sync_runs");
    `table_name` the qualified name (`roughy.assets`).
    """

    name: str
    description: str
    column_schema: dg.TableSchema

    @property
    def table_name(self) -> str:
        """The schema-qualified table name, e.g. `roughy.assets`."""
        return f"roughy.{self.name}"


ASSETS_TABLE = RoughyTable(
    "assets",
    "Every media asset of every synced Roughy project, current and soft-deleted (deleted_at), one row per "
    "asset id; written incrementally by the sync. One partition per project.",
    COLUMN_SCHEMA,
)
EVENTS_TABLE = RoughyTable(
    "asset_events",
    "Append-only log of what each sync observed: one row per asset that appeared, changed state, changed "
    "fields, was deleted or revived.",
    EVENTS_COLUMN_SCHEMA,
)
SYNC_RUNS_TABLE = RoughyTable(
    "sync_runs",
    "One row per project sync: mode, times, requests, counts, the listing's totals per state and whether "
    "the stored rows were proven equal to the listing.",
    SYNC_RUNS_COLUMN_SCHEMA,
)
TABLES: tuple[RoughyTable, ...] = (ASSETS_TABLE, EVENTS_TABLE, SYNC_RUNS_TABLE)
"""The tables one sync writes in one transaction, in the order their asset specs are listed."""

"""The fields of a Roughy asset and the columns of `roughy.assets`: the one list every layer derives from.

`GET /v1/assets` returns the `api` fields; the store adds its own bookkeeping (`store`). From this list
come the Arrow observation schema (`sync.rows`), the DDL of `roughy.assets` and its migrations
(`store.schema`), every INSERT/UPDATE column list and change comparison (`store.store`), the Dagster
column-schema metadata (`dagster_layer.tables.COLUMN_SCHEMA`); the msgspec model `AssetSummary` and the
run config `RoughyAssetEvent` are checked against it when imported (`check_fields`). Adding a field is
one line here (plus a migration that adds the column, see `store.schema`).

Imports nothing of the package: it is the leftmost layer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Origin = Literal["api", "sync", "store"]
ArrowKind = Literal["string", "int64", "timestamp"]


@dataclass(frozen=True)
class AssetField:
    """One column of `roughy.assets`: its DuckDB type, how the sync carries it, and what it means."""

    name: str
    duckdb_type: str
    """The column's type as DDL writes it, e.g. `DECIMAL(38, 9)`."""
    origin: Origin
    """`api`: a field of the listing; `sync`: derived by the sync from the listing's fields (both carried
    in the sync's Arrow rows); `store`: written by the store itself."""
    nullable: bool
    description: str
    arrow: ArrowKind | None = None
    """How the sync's Arrow rows carry an `api` or `sync` field (cast to `duckdb_type` when written)."""
    since_version: int = 1
    """The `roughy` schema version whose migration added the column."""


ASSET_FIELDS: tuple[AssetField, ...] = (
    AssetField("id", "UUID", "api", False, "Stable asset id (unique)", "string"),
    AssetField("project_id", "UUID", "api", False, "Owning project (the partition)", "string"),
    AssetField("type", "VARCHAR", "api", True, "audio | video; null before the first chunk", "string"),
    AssetField(
        "state",
        "VARCHAR",
        "api",
        False,
        "pending_upload | processing | pending_payment | ready | failed",
        "string",
    ),
    AssetField("extension", "VARCHAR", "api", True, "File extension without the dot, e.g. mp3", "string"),
    AssetField("size_bytes", "BIGINT", "api", True, "Stored size in bytes; null before upload", "int64"),
    AssetField("content_type", "VARCHAR", "api", True, "MIME type of the stored bytes", "string"),
    AssetField(
        "duration_seconds",
        "DECIMAL(38, 9)",
        "api",
        True,
        "Duration in seconds, exact; null until measured and on failed",
        "string",
    ),
    AssetField("language", "VARCHAR", "api", True, "ISO 639-1 hint; null = auto-detect", "string"),
    AssetField("error_code", "VARCHAR", "api", True, "Set only when failed", "string"),
    AssetField("error_message", "VARCHAR", "api", True, "Set only when failed", "string"),
    AssetField("created_at", "TIMESTAMPTZ", "api", False, "When the asset was created", "timestamp"),
    AssetField("upload_url", "VARCHAR", "api", True, "TUS URL, only while pending_upload", "string"),
    AssetField("first_seen_at", "TIMESTAMPTZ", "store", False, "When a sync first saw the asset"),
    AssetField("last_seen_at", "TIMESTAMPTZ", "store", False, "When a sync last saw the asset"),
    AssetField(
        "state_changed_at",
        "TIMESTAMPTZ",
        "store",
        True,
        "When a sync observed the asset enter its current state (the change happened since the sync "
        "before); null when no sync saw it change (first seen in that state)",
    ),
    AssetField("deleted_at", "TIMESTAMPTZ", "store", True, "Set when the asset left the listing"),
    AssetField("last_sync_id", "BIGINT", "store", False, "roughy.sync_runs.sync_id that last wrote the row"),
    AssetField(
        "unfit_values",
        "VARCHAR",
        "sync",
        True,
        "The API's values that their typed column cannot hold exactly (that column is then null), as a "
        'JSON object of text by field, e.g. {"duration_seconds": "0.0000000001"}; null when all fit',
        "string",
        since_version=4,
    ),
)
"""Every column of `roughy.assets`, in table order."""

FIELDS_BY_NAME: dict[str, AssetField] = {f.name: f for f in ASSET_FIELDS}
API_FIELDS: tuple[AssetField, ...] = tuple(f for f in ASSET_FIELDS if f.origin == "api")
"""The fields of an asset in `GET /v1/assets`, in the spec's order."""
API_FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in API_FIELDS)
OBSERVED_FIELDS: tuple[AssetField, ...] = tuple(f for f in ASSET_FIELDS if f.arrow is not None)
"""The fields the sync's Arrow rows carry: the API's, then those the sync derives from them."""
COLUMN_NAMES: tuple[str, ...] = tuple(f.name for f in ASSET_FIELDS)


def check_fields(owner: str, names: Iterable[str], *, leave_out: Iterable[str] = ()) -> None:
    """Raise `TypeError` unless `names` are exactly the API fields (less `leave_out`), in any order.

    Called where a class restates the fields for a library's sake (a msgspec struct, a Dagster config),
    so that a field added here and forgotten there fails at import, naming both sides.
    """
    expected = set(API_FIELD_NAMES) - set(leave_out)
    found = set(names)
    if found != expected:
        raise TypeError(
            f"{owner} does not match roughy_dagster.fields: missing {sorted(expected - found)}, "
            f"extra {sorted(found - expected)}"
        )

"""SQL column lists of `roughy.assets`, derived from `roughy_dagster.fields` (never written out by hand).

Every INSERT names its columns and every UPDATE sets named ones, so columns an analyst adds to the table
(`ALTER TABLE roughy.assets ADD COLUMN note VARCHAR`) are left alone by every sync.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..fields import ASSET_FIELDS, OBSERVED_FIELDS, ArrowKind

_ARROW_AS_DUCKDB: dict[ArrowKind, str] = {"string": "VARCHAR", "int64": "BIGINT", "timestamp": "TIMESTAMPTZ"}
"""The DuckDB type an Arrow column of the sync's rows arrives as."""

ALL_COLUMNS = ", ".join(f.name for f in ASSET_FIELDS)
"""Every column of `roughy.assets` this code writes, in table order."""

OBSERVED_COLUMNS = ", ".join(
    f.name
    if f.arrow is not None and _ARROW_AS_DUCKDB[f.arrow] == f.duckdb_type
    else f"CAST({f.name} AS {f.duckdb_type}) AS {f.name}"
    for f in OBSERVED_FIELDS
)
"""The fields of the sync's Arrow rows, typed as `roughy.assets` stores them."""

_FIELDS_THAT_CHANGE = [f.name for f in OBSERVED_FIELDS if f.name not in ("id", "state")]


def changed(stored: str, observed: str) -> str:
    """A condition true when any observed field but `id` and `state` differs between two row aliases."""
    return "\n            OR ".join(
        f"{stored}.{name} IS DISTINCT FROM {observed}.{name}" for name in _FIELDS_THAT_CHANGE
    )


def set_observed_fields(source: str) -> str:
    """The `SET` items of an UPDATE that copies every observed field but `id` from the row alias `source`."""
    return ", ".join(f"{f.name} = {source}.{f.name}" for f in OBSERVED_FIELDS if f.name != "id")


def insert_select(store_values: Mapping[str, str]) -> tuple[str, str]:
    """`(column list, select list)` of an INSERT of observed rows, given SQL for each store-written column.

    Raises `TypeError` unless `store_values` names exactly the columns the store writes itself.
    """
    expected = [f.name for f in ASSET_FIELDS if f.origin == "store"]
    if sorted(store_values) != sorted(expected):
        raise TypeError(f"store_values must name exactly {expected}, got {sorted(store_values)}")
    select = [f.name if f.origin != "store" else store_values[f.name] for f in ASSET_FIELDS]
    return ALL_COLUMNS, ", ".join(select)


def has_value(name: str) -> str:
    """A condition true when the API gave field `name` a value: in its column, or in `unfit_values`."""
    return f"({name} IS NOT NULL OR coalesce(unfit_values, '') LIKE '%\"{name}\"%')"

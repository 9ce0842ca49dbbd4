"""Test helpers: read a DuckDB file back into the API's shape, and fingerprint it to prove it unchanged."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path

import duckdb

from roughy_dagster.store import AssetStore

API_FIELDS = (
    "id",
    "project_id",
    "type",
    "state",
    "extension",
    "size_bytes",
    "content_type",
    "duration_seconds",
    "language",
    "error_code",
    "error_message",
    "created_at",
    "upload_url",
)


def normalized(item: dict) -> dict:
    """An API-shaped asset with values comparable across sources (ids as str, duration as Decimal)."""
    out = {name: item[name] for name in API_FIELDS}
    out["id"], out["project_id"] = str(out["id"]), str(out["project_id"])
    if out["duration_seconds"] is not None:
        out["duration_seconds"] = Decimal(str(out["duration_seconds"])).normalize()
    if isinstance(out["created_at"], str):  # zeros after the microseconds say the same instant
        out["created_at"] = _ZEROS_AFTER_MICROSECONDS.sub(r"\1", out["created_at"])
    return out


_ZEROS_AFTER_MICROSECONDS = re.compile(r"(\.[0-9]{6})0+(?=[Zz+-])")


def stored_listing(database: Path | str, project_id: str, *, state: str | None = None) -> list[dict]:
    """Live stored rows of a project, newest first, in the API's shape."""
    with AssetStore(database).connect(read_only=True) as connection:
        connection.execute("SET TimeZone = 'UTC'")
        sql = (
            "SELECT id, project_id, type, state, extension, size_bytes, content_type, duration_seconds, "
            "language, error_code, error_message, strftime(created_at, '%Y-%m-%dT%H:%M:%S.%fZ'), upload_url, "
            "unfit_values FROM roughy.assets WHERE project_id = ? AND deleted_at IS NULL"
        )
        parameters: list[object] = [project_id]
        if state:
            sql += " AND state = ?"
            parameters.append(state)
        rows = connection.execute(sql + " ORDER BY created_at DESC, id DESC", parameters).fetchall()
    return [normalized(exact(dict(zip((*API_FIELDS, "unfit_values"), row, strict=True)))) for row in rows]


def exact(row: dict) -> dict:
    """A stored row with the values its columns could not hold put back from `unfit_values`."""
    for name, text in json.loads(row.pop("unfit_values") or "{}").items():
        row[name] = int(text) if name == "size_bytes" else text
    return row


def truth(world, project_id: str, *, state: str | None = None) -> list[dict]:
    """The emulator's listing of a project, in the same shape."""
    return [normalized(item) for item in world.listing(project_id, state)]


def query(database: Path | str, sql: str, parameters: list | None = None) -> list[tuple]:
    """Run one read-only query on a DuckDB file."""
    with AssetStore(database).connect(read_only=True) as connection:
        return connection.execute(sql, parameters).fetchall()


def fingerprint(database: Path | str) -> dict[str, list[tuple]]:
    """Every row of every roughy table, sorted: equal fingerprints mean nothing was written."""
    if not Path(database).exists():
        return {}
    connection = duckdb.connect()
    try:  # attached raw, without the store's schema checks, so any file can be fingerprinted
        connection.execute(f"ATTACH '{database}' AS fingerprinted (READ_ONLY)")
        tables = [
            row[0]
            for row in connection.execute(
                "SELECT table_name FROM duckdb_tables() WHERE database_name = 'fingerprinted' ORDER BY 1"
            ).fetchall()
        ]
        return {
            table: sorted(
                map(repr, connection.execute(f"SELECT * FROM fingerprinted.roughy.{table}").fetchall())
            )
            for table in tables
        }
    finally:
        connection.close()

"""Building blocks for jobs that react to an asset entering a state: record the reaction in DuckDB."""

import dagster as dg

from ..store import AssetStore
from .assets import POOL
from .duckdb_resource import DuckDBDatabase
from .state_sensor import RoughyAssetEvent


def record_reaction(
    context: dg.OpExecutionContext, duckdb: DuckDBDatabase, event: RoughyAssetEvent, detail: str
) -> None:
    """Append a row to `roughy.reactions` (the DuckDB file's single writer is shared through the pool)."""
    with AssetStore(duckdb.database).connect() as connection:
        connection.execute(
            "INSERT INTO roughy.reactions (asset_id, project_id, state, run_id, detail) "
            "VALUES (?, ?, ?, ?, ?)",
            [event.id, event.project_id, event.state, context.run_id, detail],
        )


ROUGHY_POOL = POOL
"""The concurrency pool of every DuckDB writer: give it to the ops of your reaction jobs that write."""

__all__ = ["POOL", "ROUGHY_POOL", "RoughyAssetEvent", "record_reaction"]

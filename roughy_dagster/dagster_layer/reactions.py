"""Building blocks for jobs that react to an asset entering a state: record the reaction in DuckDB."""

import dagster as dg

from ..store.reactions import ReactionLog
from .assets import POOL
from .duckdb_resource import DuckDBDatabase
from .state_sensor import RoughyAssetEvent


def record_reaction(
    context: dg.OpExecutionContext, duckdb: DuckDBDatabase, event: RoughyAssetEvent, detail: str
) -> None:
    """Append a row to the reactions log beside the store (`<stem>_reactions.duckdb`, table `reactions`).

    It never opens the store `duckdb.database` names, so it never waits for a sync (nor a sync for it),
    and needs no concurrency pool. Readers query it as `roughy_reactions.reactions`
    (`roughy_dagster.connect`).
    """
    ReactionLog(duckdb.database).record(event.id, event.project_id, event.state, context.run_id, detail)


ROUGHY_POOL = POOL
"""The concurrency pool of the store's writers (the syncs, and assets of yours that write into the store).
Reaction jobs need not use it: `record_reaction` writes a log of its own."""

__all__ = ["POOL", "ROUGHY_POOL", "RoughyAssetEvent", "record_reaction"]

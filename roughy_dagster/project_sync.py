"""`sync_project`: the framework-free entry point that syncs one project's listing into a DuckDB file."""

from __future__ import annotations

import os
from uuid import UUID

from .client import RoughyClient
from .client.client import validate_project_id
from .store import AssetStore, SyncReport
from .sync import SyncEngine


def sync_project(
    client: RoughyClient,
    database: str | os.PathLike[str],
    project_id: UUID | str,
    *,
    full_refresh: bool = False,
    overlap_seconds: float = 600.0,
    max_extra_requests: int = 500,
    concurrency: int = 1,
    lock_wait_seconds: float = 30.0,
) -> SyncReport:
    """Sync one project: read the stored snapshot, do all network I/O, then write once in one transaction.

    `full_refresh` re-reads every list whole (the reconcile safety net); the first sync of a project is
    always a full read. `concurrency` > 1 keeps that many requests in flight while a list is read whole
    (faster against a distant server, more memory). Another process holding the file is waited for up to
    `lock_wait_seconds`. A failure anywhere before the commit leaves the stored data as it was.
    """
    project = validate_project_id(project_id)
    store = AssetStore(database, lock_wait_seconds=lock_wait_seconds)
    snapshot = store.load_snapshot(project)
    engine = SyncEngine(
        client,
        project,
        snapshot,
        full_refresh=full_refresh,
        overlap_seconds=overlap_seconds,
        max_extra_requests=max_extra_requests,
        concurrency=concurrency,
    )
    return store.write(engine.run())

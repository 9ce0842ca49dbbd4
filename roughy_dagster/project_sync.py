"""`sync_project`: the framework-free entry point that syncs one project's listing into a DuckDB file."""

from __future__ import annotations

import os
from uuid import UUID

from .client import RoughyClient
from .client.client import validate_project_id
from .store import AssetStore, SyncReport
from .sync import RemoteObservation, SyncEngine
from .sync.engine import DEFAULT_CONCURRENCY
from .sync.local import LocalView


def sync_project(
    client: RoughyClient,
    database: str | os.PathLike[str],
    project_id: UUID | str,
    *,
    full_refresh: bool = False,
    overlap_seconds: float = 600.0,
    young_seconds: float = 86_400.0,
    max_extra_requests: int = 500,
    max_requests: int | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    lock_wait_seconds: float = 30.0,
) -> SyncReport:
    """Sync one project: ask the stored side what it needs, do all network I/O, then write once.

    `full_refresh` re-reads every list whole (the reconcile safety net); the first sync of a project is
    always a full read. `concurrency` requests stay in flight while a list is read whole (halved after a
    window that met retries, e.g. 429s). `young_seconds`: non-terminal assets created more than this before
    the newest stored one are not re-read each sync (their fields may lag until the next full refresh;
    their state changes are still found by counts). Another process holding the file is waited for up to
    `lock_wait_seconds`. A failure anywhere before the commit leaves the stored data as it was.
    `max_requests` (None: no cap) caps the sync's listing requests; a sync that reaches it ends
    `verified=False` with that reason and writes only what it proved (otherwise the budget grows with what
    the pages show, never with a `total` the server claims).

    An asset whose values the contract refuses (Unicode digits in `duration_seconds`, an unknown `type`,
    a mistyped or missing field...) in a page otherwise well formed is *quarantined*: none of its rows is
    written (its stored row stays exactly as it was, and it is never marked deleted), the project's other
    assets are written as usual, and the report and `roughy.sync_runs` say `verified=False`, naming the
    asset, the field, the value and the request id. The next sync after the server sends it on contract
    records it once. A page malformed as a whole (not JSON, `items` or `total` missing, an item of another
    project or state, items out of order) raises `RoughyProtocolError` and writes nothing.
    """
    project = validate_project_id(project_id)
    store = AssetStore(database, lock_wait_seconds=lock_wait_seconds)
    observation = observe(
        client,
        store,
        project,
        full_refresh=full_refresh,
        overlap_seconds=overlap_seconds,
        young_seconds=young_seconds,
        max_extra_requests=max_extra_requests,
        max_requests=max_requests,
        concurrency=concurrency,
    )
    return store.write(observation)


def observe(
    client: RoughyClient,
    store: AssetStore,
    project_id: str | None,
    *,
    full_refresh: bool,
    overlap_seconds: float,
    young_seconds: float,
    max_extra_requests: int,
    concurrency: int,
    max_requests: int | None = None,
) -> RemoteObservation:
    """The network phase of a sync of one project (or the account, for None), nothing written.

    An incremental sync asks the stored side by SQL (`local_view`); a full refresh, which looks at every
    stored row anyway, loads them once (`load_snapshot`).
    """

    def run(local: LocalView) -> RemoteObservation:
        return SyncEngine(
            client,
            project_id,
            local,
            full_refresh=full_refresh,
            overlap_seconds=overlap_seconds,
            young_seconds=young_seconds,
            max_extra_requests=max_extra_requests,
            max_requests=max_requests,
            concurrency=concurrency,
        ).run()

    if full_refresh:
        return run(store.load_snapshot(project_id))
    with store.local_view(project_id) as view:
        return run(view)

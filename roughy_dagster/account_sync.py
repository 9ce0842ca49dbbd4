"""`sync_account`: the framework-free entry point that syncs every project of an account into DuckDB."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from uuid import UUID

from .client import RoughyClient
from .client.client import validate_project_id
from .project_sync import observe
from .store import AssetStore, SyncReport
from .sync.engine import DEFAULT_CONCURRENCY


@dataclass(frozen=True)
class AccountSyncReport:
    """What one account sync did: a `SyncReport` per project written, and the totals over them.

    `projects` maps each project id (lowercase UUID text) to its report (its own `sync_id` and
    `roughy.sync_runs` row; `requests`, `pages` and `retries` there are the whole sync's, which its
    projects share). `requests` counts every listing request of the sync; `verified` is true when the
    stored rows of every project were proven equal to the listing; `reason` says why not (empty when
    verified). `remote_totals` are the account-wide `total`s per state the sync read last.
    """

    projects: dict[str, SyncReport]
    requests: int
    verified: bool
    reason: str = ""
    mode: str = "incremental"
    duration_seconds: float = 0.0
    pages: int = 0
    retries: int = 0
    new: int = 0
    changed: int = 0
    deleted: int = 0
    revived: int = 0
    live_rows: int = 0
    remote_totals: dict[str, int] = field(default_factory=dict)


def sync_account(
    client: RoughyClient,
    database: str | os.PathLike[str],
    *,
    project_ids: Iterable[UUID | str] | None = None,
    full_refresh: bool = False,
    overlap_seconds: float = 600.0,
    young_seconds: float = 86_400.0,
    max_extra_requests: int = 500,
    max_requests: int | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    lock_wait_seconds: float = 30.0,
) -> AccountSyncReport:
    """Sync every project of the account (or only `project_ids`) into `database`, in one network phase
    over the account-wide lists and one transaction.

    Without `project_ids`, the projects written are those the lists showed plus those already stored
    (a project whose assets were all deleted still gets its deletions). With `project_ids`, only those are
    written (the lists are still read account-wide: pass every project, or None, for the cheap path).
    `full_refresh` re-reads every list whole; the settings are `sync_project`'s (`max_requests` caps the
    whole account sync's requests). Raises what
    `sync_project` raises; a failure anywhere before the commit leaves the stored data as it was.

    An asset whose values the contract refuses (in a page otherwise well formed) blocks nothing: its
    stored row is left as it was, its project's report and `sync_runs` row say `verified=False` naming
    it, and every other project is written and verified as usual (`sync_project` says more).
    """
    started = time.monotonic()
    store = AssetStore(database, lock_wait_seconds=lock_wait_seconds)
    selected = None if project_ids is None else sorted({validate_project_id(p) for p in project_ids})
    observation = observe(
        client,
        store,
        None,
        full_refresh=full_refresh,
        overlap_seconds=overlap_seconds,
        young_seconds=young_seconds,
        max_extra_requests=max_extra_requests,
        max_requests=max_requests,
        concurrency=concurrency,
    )
    reports = store.write_projects(observation, selected)
    refused = sorted(project for project, report in reports.items() if report.off_contract)
    reasons = [observation.reason] if observation.reason else []
    if refused:
        reasons.append(
            f"{len(refused)} project(s) hold assets with a value the API contract refuses, left as stored "
            f"(e.g. project {refused[0]}: {reports[refused[0]].off_contract[0]}); the other projects are "
            "written and verified as usual"
        )
    return AccountSyncReport(
        projects=reports,
        requests=observation.requests,
        verified=observation.verified and not refused,
        reason="; ".join(reasons),
        mode=observation.mode,
        duration_seconds=time.monotonic() - started,
        pages=observation.pages,
        retries=observation.retries,
        new=sum(r.new for r in reports.values()),
        changed=sum(r.changed for r in reports.values()),
        deleted=sum(r.deleted for r in reports.values()),
        revived=sum(r.revived for r in reports.values()),
        live_rows=sum(r.live_rows for r in reports.values()),
        remote_totals={state.value: total for state, total in observation.remote_totals.items()},
    )

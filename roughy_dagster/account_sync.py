"""`sync_account`: the framework-free entry point that syncs every project of an account into DuckDB."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from uuid import UUID

from .client import RoughyClient
from .client.client import validate_project_id
from .project_sync import sync_project
from .store import AssetStore, SyncReport


@dataclass(frozen=True)
class AccountSyncReport:
    """What one account sync did: a `SyncReport` per project synced, and the totals over them.

    `projects` maps each project id (lowercase UUID text) to its report; `requests` counts every listing
    request of the whole sync (shared account-wide reads included, so it can be less than the sum of the
    projects' own counts); `verified` is true when every project's stored rows were proven equal to the
    listing; `reason` says why not (empty when verified).
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
) -> AccountSyncReport:
    """Sync every project of the account (or only `project_ids`) into `database`.

    Without `project_ids`, the projects are those the account-wide listing shows plus those already
    stored (so that a project whose assets were all deleted still has its deletions recorded).
    `full_refresh` re-reads every list whole. Raises what `sync_project` raises; projects synced before
    a failure keep what they wrote.
    """
    requests_before = client.stats.requests
    pages_before, retries_before = client.stats.pages, client.stats.retries
    if project_ids is None:
        projects = sorted(_listed_projects(client) | _stored_projects(database))
    else:
        projects = sorted({validate_project_id(p) for p in project_ids})
    reports = {
        project: sync_project(client, database, project, full_refresh=full_refresh) for project in projects
    }
    unverified = sorted(p for p, r in reports.items() if not r.verified)
    return AccountSyncReport(
        projects=reports,
        requests=client.stats.requests - requests_before,
        verified=not unverified,
        reason=f"projects not verified: {', '.join(unverified)}" if unverified else "",
        mode="full" if full_refresh else "incremental",
        duration_seconds=sum(r.duration_seconds for r in reports.values()),
        pages=client.stats.pages - pages_before,
        retries=client.stats.retries - retries_before,
        new=sum(r.new for r in reports.values()),
        changed=sum(r.changed for r in reports.values()),
        deleted=sum(r.deleted for r in reports.values()),
        revived=sum(r.revived for r in reports.values()),
        live_rows=sum(r.live_rows for r in reports.values()),
        remote_totals=_sum_totals(reports.values()),
    )


def _listed_projects(client: RoughyClient) -> set[str]:
    return {asset.project_id for asset in client.iter_assets()}


def _stored_projects(database: str | os.PathLike[str]) -> set[str]:
    if str(database) == ":memory:" or not Path(database).expanduser().exists():
        return set()
    with AssetStore(database).connect(read_only=True) as connection:
        rows = connection.execute("SELECT DISTINCT CAST(project_id AS VARCHAR) FROM roughy.assets").fetchall()
    return {row[0] for row in rows}


def _sum_totals(reports: Iterable[SyncReport]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for report in reports:
        for state, total in report.remote_totals.items():
            totals[state] = totals.get(state, 0) + total
    return totals

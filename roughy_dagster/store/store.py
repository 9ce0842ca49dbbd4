"""`AssetStore`: the DuckDB file of synced assets; reads a project's snapshot, writes a sync at once.

DuckDB allows one writing process per file and a writer blocks readers elsewhere, so a connection is
opened only for one read or one write and closed in `finally` (opening, locks and errors:
`store.connection`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

from ..client import AssetState
from ..client.models import OffContractItem
from ..sync.local import LocalView, MemoryView
from ..sync.model import RemoteObservation
from .columns import OBSERVED_COLUMNS, changed, insert_select, set_observed_fields
from .connection import STORE_CATALOG, create_whole, open_database, prepare_folder, rollback
from .errors import RoughyStoreError
from .publish import publish, publish_after_commit
from .schema import CURRENT_VERSION, check_readable, ensure_schema, first_row, schema_version
from .view import DuckDBView

_GONE_SCHEMA = pa.schema([("id", pa.string()), ("observed_at", pa.timestamp("us", tz="UTC"))])

_OBSERVED = f"""(
    SELECT {OBSERVED_COLUMNS}, observed_at
    FROM roughy_observation_arrow
    WHERE NOT superseded
)"""
"""The observed rows that count (those no later sighting superseded), typed as `roughy.assets` stores them."""

_SYNC_IDS = """
CREATE OR REPLACE TEMP TABLE roughy_sync_ids AS
SELECT CAST(project AS UUID) AS project_id, nextval('roughy.sync_id_seq') AS sync_id
FROM (SELECT unnest($projects) AS project ORDER BY 1)
"""
"""One sync id per project written: an account sync writes every project in one transaction, each with
its own `sync_runs` row; observed rows of projects not written are left out by the joins below."""

_CLASSIFY = f"""
CREATE OR REPLACE TEMP TABLE roughy_classified AS
SELECT o.*, s.sync_id, a.state AS old_state,
    CASE
        WHEN a.id IS NULL THEN 'new'
        WHEN o.observed_at <= a.last_seen_at THEN 'stale'
        WHEN a.deleted_at IS NOT NULL
            THEN CASE WHEN o.observed_at > a.deleted_at THEN 'revived' ELSE 'stale' END
        WHEN a.state <> o.state THEN 'state_changed'
        WHEN {changed("a", "o")}
        THEN 'updated'
        ELSE 'unchanged'
    END AS kind
FROM {_OBSERVED} AS o
JOIN roughy_sync_ids AS s ON s.project_id = o.project_id
LEFT JOIN roughy.assets AS a ON a.id = o.id
"""
"""Each observed row of a project written, with its stored row (if any) and what the observation is to it.

Rows not stored yet are `new` here; `_NEW_KINDS` then tells `initial` from `appeared`."""

_NEW_KINDS = """
UPDATE roughy_classified SET kind = CASE WHEN project_id IN (
    SELECT DISTINCT a.project_id FROM roughy.assets AS a
    SEMI JOIN (SELECT project_id FROM roughy_classified WHERE kind = 'new') AS n
        ON a.project_id = n.project_id
) THEN 'appeared' ELSE 'initial' END
WHERE kind = 'new'
"""
"""A new row is `appeared` in a project with rows stored, `initial` in one without (its initial load).

Asked only when the sync saw new rows, and only about their projects: a quiet sync does not scan for it."""

_RECORD_EVENTS = """
INSERT INTO roughy.asset_events (sync_id, project_id, asset_id, kind, old_state, new_state, observed_at)
SELECT sync_id, project_id, id, kind,
    CASE WHEN kind IN ('initial', 'appeared') THEN NULL ELSE old_state END, state, observed_at
FROM roughy_classified WHERE kind IN ('initial', 'appeared', 'revived', 'state_changed', 'updated')
"""

_UPDATE_CHANGED = f"""
UPDATE roughy.assets AS a SET
    {set_observed_fields("c")}, last_seen_at = c.observed_at,
    state_changed_at = CASE WHEN c.kind = 'state_changed' THEN c.observed_at
                            WHEN c.kind = 'revived' AND c.state <> c.old_state THEN NULL
                            ELSE a.state_changed_at END,
    deleted_at = NULL, last_sync_id = c.sync_id
FROM roughy_classified AS c
WHERE a.id = c.id AND c.kind IN ('revived', 'state_changed', 'updated')
"""

_UPDATE_UNCHANGED = """
UPDATE roughy.assets AS a SET last_seen_at = c.observed_at, last_sync_id = c.sync_id
FROM roughy_classified AS c
WHERE a.id = c.id AND c.kind = 'unchanged'
"""
"""Rows seen again as stored: only when, and by which sync (their fields are equal, so they are left alone:
DuckDB then rewrites two columns of their row groups at the checkpoint, not every column)."""

_APPEARED_COLUMNS, _APPEARED_VALUES = insert_select(
    {
        "first_seen_at": "observed_at",
        "last_seen_at": "observed_at",
        "state_changed_at": "NULL",
        "deleted_at": "NULL",
        "last_sync_id": "sync_id",
    }
)
_INSERT_APPEARED = f"""
INSERT INTO roughy.assets ({_APPEARED_COLUMNS})
SELECT {_APPEARED_VALUES}
FROM {{source}}
"""
"""Insert rows seen for the first time (first and last seen at their observation; no state change seen)."""

_INSERT_NEW = _INSERT_APPEARED.format(source="roughy_classified WHERE kind IN ('initial', 'appeared')")

_STORED_ROWS = """
SELECT count(*) FROM (
    SELECT 1 FROM roughy.assets AS a SEMI JOIN roughy_sync_ids AS s ON a.project_id = s.project_id LIMIT 1
)
"""
"""1 when any project written has rows stored (the scan stops at the first), else 0."""

_INSERT_FIRST_LOAD = _INSERT_APPEARED.format(
    source=f"{_OBSERVED} AS o JOIN roughy_sync_ids USING (project_id)"
)

_LIVE_COUNTS = """
SELECT CAST(project_id AS VARCHAR), state, live
FROM (SELECT project_id, state, count(*) AS live FROM roughy.assets WHERE deleted_at IS NULL GROUP BY ALL)
SEMI JOIN roughy_sync_ids USING (project_id)
"""
"""Live rows per state of each project written. Counted for every project, then the written ones kept: a
filter on the scan (`project_id IN (...)`) costs DuckDB several times the aggregate itself."""

_WRITTEN = "last_sync_id IN (SELECT sync_id FROM roughy_sync_ids)"
"""The rows this write touched (each carries its project's sync id)."""

_RECORD_FIRST_LOAD_EVENTS = f"""
INSERT INTO roughy.asset_events (sync_id, project_id, asset_id, kind, old_state, new_state, observed_at)
SELECT last_sync_id, project_id, id, 'initial', NULL, state, first_seen_at
FROM roughy.assets WHERE {_WRITTEN}
"""

_IDS_WRITTEN_TWICE = f"""
SELECT CAST(a.id AS VARCHAR), count(*), CAST(any_value(a.project_id) AS VARCHAR)
FROM roughy.assets AS a
SEMI JOIN (SELECT id FROM roughy.assets WHERE {_WRITTEN}) AS written ON a.id = written.id
GROUP BY a.id HAVING count(*) > 1
LIMIT 1
"""

_GONE = """
CREATE OR REPLACE TEMP TABLE roughy_gone AS
SELECT a.id, a.project_id, a.state, g.observed_at, s.sync_id
FROM (SELECT CAST(id AS UUID) AS id, observed_at FROM roughy_gone_arrow) AS g
JOIN roughy.assets AS a ON a.id = g.id
JOIN roughy_sync_ids AS s ON s.project_id = a.project_id
WHERE a.deleted_at IS NULL AND a.last_seen_at < g.observed_at
"""

_RECORD_DELETIONS = """
INSERT INTO roughy.asset_events (sync_id, project_id, asset_id, kind, old_state, new_state, observed_at)
SELECT sync_id, project_id, id, 'deleted', state, NULL, observed_at FROM roughy_gone
"""

_MARK_DELETED = """
UPDATE roughy.assets AS a SET deleted_at = g.observed_at, last_sync_id = g.sync_id
FROM roughy_gone AS g WHERE a.id = g.id
"""


@dataclass(frozen=True)
class SyncReport:
    """What one sync did: its cost, what changed, and whether the stored rows provably equal the listing."""

    sync_id: int
    project_id: str
    mode: str
    database: str
    requests: int
    pages: int
    retries: int
    new: int
    changed: int
    deleted: int
    revived: int
    unchanged: int
    live_rows: int
    verified: bool
    unresolved: int
    duration_seconds: float
    counts_by_state: dict[str, int] = field(default_factory=dict)
    remote_totals: dict[str, int] = field(default_factory=dict)
    """The remote `total` per state (a one-project sync); empty for a project of an account sync, which
    reads account-wide lists (`AccountSyncReport.remote_totals` holds those)."""
    reason: str = ""
    """Why `verified` is false, in words (empty when verified)."""
    account_wide: bool = False
    """Whether this project was synced by an account sync (its request counts are the whole sync's)."""
    off_contract: tuple[str, ...] = ()
    """The project's assets this sync saw with a value the contract refuses, one line each (asset, field,
    value, request id): their stored rows were left as they were, and the sync is not verified."""


class AssetStore:
    """The DuckDB file holding schema `roughy`: `assets`, `asset_events` and `sync_runs`."""

    def __init__(self, database: str | os.PathLike[str], *, lock_wait_seconds: float = 30.0) -> None:
        self.database = str(database)
        self.lock_wait_seconds = lock_wait_seconds

    @contextmanager
    def connect(
        self, *, read_only: bool = False, threads: int | None = None
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection with the schema in place, waiting a while for another writer's lock; closed after.

        `threads`: DuckDB's threads (None: one per core). A read-only connection creates nothing: it
        needs a file that a sync has already written. Raises `RoughyStoreLockedError` when the file stays
        locked, `RoughySchemaError` for a schema it cannot use, `RoughyStoreError` for any other failure of
        DuckDB (a full disk, a damaged file), naming the file and what to do (`store.connection`).
        """
        if not read_only:
            create_whole(self.database, lambda connection: ensure_schema(connection, self.database))
        with open_database(
            self.database, read_only=read_only, lock_wait_seconds=self.lock_wait_seconds, threads=threads
        ) as connection:
            if read_only:
                check_readable(connection, self.database)
            else:
                ensure_schema(connection, self.database)
            yield connection

    def load_snapshot(self, project_id: str | None) -> MemoryView:
        """Every live stored asset of a project (or of every project, for None) in memory, as a `LocalView`.

        For reads that look at every row anyway (full refreshes); an incremental sync asks `local_view`.
        A file that does not exist yet holds nothing: it is created by the write, not opened twice.
        """
        with self.local_view(project_id) as view:
            if not isinstance(view, DuckDBView):
                return MemoryView(watermark_us=view.watermark_us)
            return MemoryView(view.all_live(), watermark_us=view.watermark_us)

    def stored_projects(self) -> set[str]:
        """Every project with a row in the file (lowercase UUID text); empty when there is no file yet."""
        if self.database != ":memory:" and not Path(self.database).expanduser().exists():
            return set()
        with self.connect() as connection:
            rows = connection.execute(
                "SELECT DISTINCT CAST(project_id AS VARCHAR) FROM roughy.assets"
            ).fetchall()
        return {row[0] for row in rows}

    @contextmanager
    def local_view(self, project_id: str | None) -> Iterator[LocalView]:
        """The stored side of a sync of one project (or the account, for None), answered by SQL on a
        read-only connection held until the block ends (close it before writing)."""
        if self.database != ":memory:" and not Path(self.database).expanduser().exists():
            prepare_folder(self.database)  # a folder that cannot be written fails now, before any request
            yield MemoryView()
            return
        # One DuckDB thread: the view's questions are small (a count, a page's range or ids), so worker
        # threads would only add a hand-off to each, which waits for a core on a busy machine (the read
        # phase of a quiet sync of 1,000,000 stored assets, load 11: 150 ms with two threads, 110 with one)
        with open_database(
            self.database, read_only=True, lock_wait_seconds=self.lock_wait_seconds, threads=1
        ) as connection:
            current = schema_version(connection, self.database) == CURRENT_VERSION
            if current:
                yield DuckDBView(connection, project_id)
        if not current:  # created or migrated first (a read-only connection cannot), then read
            with self.connect():
                pass
            with self.connect(read_only=True, threads=1) as connection:
                yield DuckDBView(connection, project_id)

    def publish(self, connection: duckdb.DuckDBPyConnection) -> None:
        """Publish the readers' copy now, from a connection of `connect()` with no transaction open.

        Syncs publish by themselves; this is for writes of your own into the store (a downstream table),
        which readers would otherwise see only after the next sync that changes an asset. Raises
        `RoughyStoreError` when the copy cannot be written (see `store.publish`).
        """
        publish(connection, self.database, STORE_CATALOG)

    def write(self, observation: RemoteObservation) -> SyncReport:
        """Apply a one-project sync's observations in one transaction: all of it is stored, or none of it."""
        if observation.project_id is None:
            raise ValueError("an account-wide observation is written by write_projects()")
        return self.write_projects(observation, [observation.project_id])[observation.project_id]

    def write_projects(
        self, observation: RemoteObservation, projects: Iterable[str] | None
    ) -> dict[str, SyncReport]:
        """Apply a sync's observations for `projects` in one transaction (one `sync_runs` row and sync id
        each; rows of other projects are left out): all of it is stored, or none of it. `projects=None`
        writes every project observed or already stored."""
        observed = observation.rows
        gone = pa.Table.from_pylist(
            [{"id": d.asset_id, "observed_at": d.observed_at} for d in observation.deletions.values()],
            schema=_GONE_SCHEMA,
        )
        with self.connect(threads=write_threads(observed.num_rows)) as connection:
            connection.register("roughy_observation_arrow", observed)
            connection.register("roughy_gone_arrow", gone)
            connection.execute("BEGIN TRANSACTION")
            try:
                if projects is None:  # every project observed or stored
                    projects = [
                        row[0]
                        for row in connection.execute(
                            "SELECT DISTINCT project_id FROM roughy_observation_arrow "
                            "WHERE project_id IS NOT NULL UNION SELECT CAST(project_id AS VARCHAR) "
                            "FROM (SELECT DISTINCT project_id FROM roughy.assets)"
                        ).fetchall()
                    ]
                project_list = sorted(set(projects))
                connection.execute(_SYNC_IDS, {"projects": project_list})
                sync_ids = dict(
                    connection.execute(
                        "SELECT CAST(project_id AS VARCHAR), sync_id FROM roughy_sync_ids"
                    ).fetchall()
                )
                stored = _scalar(connection, _STORED_ROWS)
                if not stored:
                    _bound_memory(connection, self.database)
                kinds = _merge(connection) if stored else _first_load(connection)
                deleted: dict[str, int] = {}
                if gone.num_rows:
                    connection.execute(_GONE)
                    deleted = _by_project(
                        connection, "SELECT CAST(project_id AS VARCHAR), count(*) FROM roughy_gone GROUP BY 1"
                    )
                    connection.execute(_RECORD_DELETIONS)
                    connection.execute(_MARK_DELETED)
                _check_ids_unique(connection)
                refused = _off_contract_by_project(connection, observation)
                counts: dict[str, dict[str, int]] = {}
                for project, state, count in connection.execute(_LIVE_COUNTS).fetchall():
                    counts.setdefault(project, {})[state] = count
                reports = {
                    project: _report(
                        observation,
                        sync_ids[project],
                        project,
                        self.database,
                        kinds.get(project, {}),
                        deleted.get(project, 0),
                        counts.get(project, {}),
                        [*refused.get(project, []), *refused.get(None, [])],
                    )
                    for project in project_list
                }
                _record_sync_runs(connection, list(reports.values()), observation)
                connection.execute("COMMIT")
            except BaseException:
                rollback(connection)  # never hides the failure: after a failed COMMIT, nothing to undo
                raise
            changed = any(report_changed(report) for report in reports.values())
            publish_after_commit(connection, self.database, STORE_CATALOG, changed=changed)
        return reports


def report_changed(report: SyncReport) -> bool:
    """Whether a sync changed any asset (readers' copy must then be republished)."""
    return bool(report.new or report.changed or report.deleted or report.revived)


ROW_GROUP_ROWS = 122_880
"""DuckDB's row group: the unit it writes and parallelizes by."""


def write_threads(rows: int) -> int:
    """DuckDB threads for a write of `rows` observed rows: one per row group, up to the machine's cores.

    A write is an indexed insert and a checkpoint; below a row group, extra threads only coordinate
    (measured on 2 cores: 100,000 rows write 15-20% faster with one thread, 1,000,000 rows twice as fast
    with two).
    """
    return max(1, min(os.cpu_count() or 1, -(-rows // ROW_GROUP_ROWS)))


def _merge(connection: duckdb.DuckDBPyConnection) -> dict[str, dict[str, int]]:
    """Classify each observed row against the stored one, record the events, update and insert."""
    connection.execute(_CLASSIFY)
    kinds = _kinds(connection, _KINDS)
    if _kinds_seen(kinds) & {"new"}:
        connection.execute(_NEW_KINDS)
        kinds = _kinds(connection, _KINDS)
    # each statement only when it has rows to work on: a quiet sync runs one of them
    seen = _kinds_seen(kinds)
    if seen & {"initial", "appeared", "revived", "state_changed", "updated"}:
        connection.execute(_RECORD_EVENTS)
    if seen & {"revived", "state_changed", "updated"}:
        connection.execute(_UPDATE_CHANGED)
    if seen & {"unchanged"}:
        connection.execute(_UPDATE_UNCHANGED)
    if seen & {"initial", "appeared"}:
        connection.execute(_INSERT_NEW)
    return kinds


_KINDS = "SELECT CAST(project_id AS VARCHAR), kind, count(*) FROM roughy_classified GROUP BY ALL"


def _kinds_seen(kinds: dict[str, dict[str, int]]) -> set[str]:
    return {kind for by_kind in kinds.values() for kind in by_kind}


FIRST_LOAD_MEMORY_LIMIT = "128MB"
"""DuckDB's memory limit for a write that inserts projects with nothing stored (see `_bound_memory`)."""


def _bound_memory(connection: duckdb.DuckDBPyConnection, database: str) -> None:
    """Bound the memory of this write's DuckDB instance, which inserts rows it will not read again.

    A large insert is written to the file as it goes (DuckDB writes whole row groups of an open
    transaction optimistically, and drops them if it rolls back), but the blocks written stay cached up
    to the memory limit, by default most of the machine's memory: a 1,000,000-asset first load held
    +234 MB there beside its Arrow rows. Under `FIRST_LOAD_MEMORY_LIMIT` DuckDB evicts them instead
    (+136 MB, no slower); what must exceed it (the check that no id is on two rows, for many millions
    of rows) spills to `<file>.tmp`, DuckDB's own place for a file's temporary data, not the caller's
    working directory. The instance is this write's own, so nothing else is bound.
    """
    if database == ":memory:":
        return
    spill = f"{database}.tmp".replace("'", "''")
    connection.execute(f"SET temp_directory = '{spill}'")
    connection.execute(f"SET memory_limit = '{FIRST_LOAD_MEMORY_LIMIT}'")


def _first_load(connection: duckdb.DuckDBPyConnection) -> dict[str, dict[str, int]]:
    """Projects with nothing stored: every observed row appears, so it is inserted without classifying.

    Its ids are still checked against the whole table before the commit (`_check_ids_unique`).
    """
    connection.execute(_INSERT_FIRST_LOAD)
    connection.execute(_RECORD_FIRST_LOAD_EVENTS)
    return _kinds(
        connection,
        "SELECT CAST(project_id AS VARCHAR), 'initial', count(*) FROM roughy.assets "
        f"WHERE {_WRITTEN} GROUP BY 1",
    )


def _kinds(connection: duckdb.DuckDBPyConnection, sql: str) -> dict[str, dict[str, int]]:
    kinds: dict[str, dict[str, int]] = {}
    for project, kind, count in connection.execute(sql).fetchall():
        kinds.setdefault(project, {})[kind] = int(count)
    return kinds


def _by_project(connection: duckdb.DuckDBPyConnection, sql: str) -> dict[str, int]:
    return {project: int(count) for project, count in connection.execute(sql).fetchall()}


def _check_ids_unique(connection: duckdb.DuckDBPyConnection) -> None:
    """Refuse to commit a sync that would leave an id it wrote on two rows (the table has no key index)."""
    twice = connection.execute(_IDS_WRITTEN_TWICE).fetchall()
    if twice:
        raise RoughyStoreError(
            f"this sync would store asset {twice[0][0]} on {twice[0][1]} rows of roughy.assets (project "
            f"{twice[0][2]}): nothing was written and the stored data is unchanged. This is a bug in "
            "roughy-dagster or a row written into the table by hand: please report it with this message"
        )


def _scalar(connection: duckdb.DuckDBPyConnection, sql: str, parameters: object = None) -> int:
    return int(first_row(connection, sql, parameters)[0])


MAX_OFF_CONTRACT_NAMED = 5
"""Off-contract assets a `sync_runs.reason` names (the others are counted)."""


def _off_contract_by_project(
    connection: duckdb.DuckDBPyConnection, observation: RemoteObservation
) -> dict[str | None, list[OffContractItem]]:
    """The off-contract items by the project they belong to: their own `project_id` when readable, else
    the project the sync read, else the stored row's project; None for an item no project can be told
    for (a new asset of an account-wide list whose `project_id` is unreadable: any project may hold it)."""
    by_project: dict[str | None, list[OffContractItem]] = {}
    unknown = [
        item.asset_id
        for item in observation.off_contract.values()
        if item.project_id is None and observation.project_id is None and item.asset_id is not None
    ]
    stored = (
        dict(
            connection.execute(
                "SELECT CAST(id AS VARCHAR), CAST(project_id AS VARCHAR) FROM roughy.assets "
                "WHERE id IN (SELECT CAST(unnest(?::VARCHAR[]) AS UUID))",
                [unknown],
            ).fetchall()
        )
        if unknown
        else {}
    )
    for item in observation.off_contract.values():
        project = item.project_id or observation.project_id or stored.get(item.asset_id or "")
        by_project.setdefault(project, []).append(item)
    return by_project


def _off_contract_reason(items: list[OffContractItem]) -> str:
    """Why a project with off-contract assets is not verified, naming the first few."""
    named = "; ".join(item.describe() for item in items[:MAX_OFF_CONTRACT_NAMED])
    more = f"; and {len(items) - MAX_OFF_CONTRACT_NAMED} more" if len(items) > MAX_OFF_CONTRACT_NAMED else ""
    return (
        f"{len(items)} asset(s) with a value the API contract refuses, left as stored (not written, "
        f"not deleted) until the server sends them on contract: {named}{more}"
    )


def _report(
    observation: RemoteObservation,
    sync_id: int,
    project_id: str,
    database: str,
    kinds: dict[str, int],
    deleted: int,
    counts: dict[str, int],
    off_contract: list[OffContractItem],
) -> SyncReport:
    account_wide = observation.project_id is None
    reasons = [observation.reason] if observation.reason else []
    if off_contract:
        reasons.append(_off_contract_reason(off_contract))
    return SyncReport(
        sync_id=sync_id,
        project_id=project_id,
        mode=observation.mode,
        database=database,
        requests=observation.requests,
        pages=observation.pages,
        retries=observation.retries,
        new=kinds.get("appeared", 0) + kinds.get("initial", 0),
        changed=kinds.get("state_changed", 0) + kinds.get("updated", 0),
        deleted=deleted,
        revived=kinds.get("revived", 0),
        unchanged=kinds.get("unchanged", 0),
        live_rows=sum(counts.values()),
        verified=observation.verified and not off_contract,
        unresolved=len(observation.unresolved),
        duration_seconds=(observation.finished_at - observation.started_at).total_seconds(),
        counts_by_state={state.value: counts.get(state.value, 0) for state in AssetState},
        remote_totals=(
            {} if account_wide else {state.value: total for state, total in observation.remote_totals.items()}
        ),
        reason="; ".join(reasons),
        account_wide=account_wide,
        off_contract=tuple(item.describe() for item in off_contract),
    )


_PER_PROJECT = pa.schema(
    [
        ("sync_id", pa.int64()),
        ("project_id", pa.string()),
        ("new_count", pa.int64()),
        ("changed_count", pa.int64()),
        ("deleted_count", pa.int64()),
        ("revived_count", pa.int64()),
        ("unchanged_count", pa.int64()),
        ("live_rows", pa.int64()),
        ("verified", pa.bool_()),
        ("unresolved", pa.int64()),
        ("reason", pa.string()),
    ]
)
"""The `roughy.sync_runs` columns that differ between the projects of one write, by `SyncReport` field."""

_REPORT_FIELD = {"new_count": "new", "changed_count": "changed", "deleted_count": "deleted"}
_REPORT_FIELD |= {"revived_count": "revived", "unchanged_count": "unchanged"}

_REMOTE_TOTALS = [f"remote_{state.value}" for state in AssetState]

_RECORD_SYNC_RUNS = f"""
INSERT INTO roughy.sync_runs (
    sync_id, project_id, mode, started_at, finished_at, requests, pages, retries, new_count, changed_count,
    deleted_count, revived_count, unchanged_count, {", ".join(_REMOTE_TOTALS)},
    live_rows, verified, unresolved, reason
)
SELECT sync_id, CAST(project_id AS UUID), $mode, $started_at, current_timestamp, $requests, $pages, $retries,
    new_count, changed_count, deleted_count, revived_count, unchanged_count,
    {", ".join(f"${column}" for column in _REMOTE_TOTALS)},
    live_rows, verified, unresolved, nullif(reason, '')
FROM roughy_sync_runs_arrow
"""
"""One row per project written: what differs per project from Arrow columns, what the sync shares (its
mode, start, requests and remote totals) as parameters."""


def _record_sync_runs(
    connection: duckdb.DuckDBPyConnection, reports: list[SyncReport], observation: RemoteObservation
) -> None:
    """One `roughy.sync_runs` row per project written, in one INSERT (an account sync's rows share its
    request counts; each project has its own counts, verification and reason)."""
    if not reports:
        return
    runs = pa.table(
        [
            [getattr(report, _REPORT_FIELD.get(name, name)) for report in reports]
            for name in _PER_PROJECT.names
        ],
        schema=_PER_PROJECT,
    )
    shared = reports[0].remote_totals  # the same in every report of one write
    connection.register("roughy_sync_runs_arrow", runs)
    connection.execute(
        _RECORD_SYNC_RUNS,
        {
            "mode": observation.mode,
            "started_at": observation.started_at,
            "requests": observation.requests,
            "pages": observation.pages,
            "retries": observation.retries,
            **{f"remote_{state.value}": shared.get(state.value) for state in AssetState},
        },
    )
    connection.unregister("roughy_sync_runs_arrow")

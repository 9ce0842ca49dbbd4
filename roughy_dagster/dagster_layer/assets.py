"""The synced tables as Dagster assets: one multi-asset, partitioned by project, with its checks.

`roughy/assets`, `roughy/asset_events` and `roughy/sync_runs` come from one op (`roughy_sync`), since one
DuckDB transaction writes all three. It has a single-run backfill policy: a run for any set of project
partitions (a schedule's cycle, a backfill, `--partition-range`) is one run doing one account sync, and
records a materialization, with that project's figures, for every partition of every table.
"""

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import dagster as dg

from ..account_sync import sync_account
from ..client import AssetState, RoughyClient
from ..project_sync import sync_project
from ..store import AssetStore, SyncReport
from ..store.columns import has_value
from ..store.publish import latest_path
from ..sync.engine import DEFAULT_CONCURRENCY
from .duckdb_resource import DuckDBDatabase
from .resource import RoughyResource
from .tables import ASSETS_TABLE, COLUMN_SCHEMA, EVENTS_TABLE, SYNC_RUNS_TABLE, TABLES, RoughyTable
from .translator import DagsterRoughyTranslator

try:  # where a step keeps the metadata `context.add_asset_metadata` adds (see `add_partition_metadata`)
    from dagster._core.execution.context.metadata_logging import AssetMetadataHandle as _AssetMetadataHandle
except ImportError:  # pragma: no cover - another Dagster release: the public call is used
    _AssetMetadataHandle = None  # type: ignore[assignment,misc]

ASSETS_KEY = dg.AssetKey(["roughy", "assets"])
PROJECTS_NAME = "roughy_projects"
PROJECTS = dg.DynamicPartitionsDefinition(name=PROJECTS_NAME)
"""The project partitions when projects are discovered: dynamic, named `roughy_projects`."""
roughy_projects_partitions_def = PROJECTS
"""Public name of `PROJECTS`: `DynamicPartitionsDefinition(name="roughy_projects")`."""
POOL = "roughy_duckdb"
TABLE_NAME = ASSETS_TABLE.table_name
SYNC_OP_NAME = "roughy_sync"
TABLE_METADATA_KEY = "roughy/table"
"""Definition metadata naming which table (`assets`, `asset_events`, `sync_runs`) an asset key holds."""

CHECK_UNIQUE_IDS = "unique_ids"
CHECK_MATCHES_REMOTE = "live_rows_match_remote_totals"
CHECK_FIELD_RULES = "per_state_field_rules"
CHECK_VALUES_FIT = "values_fit_columns"
CHECK_ON_CONTRACT = "values_on_contract"
ACCOUNT = "(whole table)"
"""Where the account-wide comparison is reported, among the projects of the check's metadata."""
MAX_LISTED_PROJECTS = 50
"""A check's metadata lists at most this many failing projects (and counts the others)."""

_SIZE = has_value("size_bytes")
_DURATION = has_value("duration_seconds")

# One expression per rule: a row breaking the spec's per-state field rules is counted under its rule's name.
# (A value its column cannot hold is in `unfit_values`: `has_value` counts it as present.)
FIELD_RULES: dict[str, str] = {
    "size_bytes null while pending_upload": f"state = 'pending_upload' AND {_SIZE}",
    "duration null while pending_upload": f"state = 'pending_upload' AND {_DURATION}",
    "duration present once ready or pending_payment": (
        f"state IN ('ready', 'pending_payment') AND NOT {_DURATION}"
    ),
    "duration null on failed": f"state = 'failed' AND {_DURATION}",
    "error_code set only on failed": "(state = 'failed') <> (error_code IS NOT NULL)",
    "error_message only on failed": "state <> 'failed' AND error_message IS NOT NULL",
    "upload_url only while pending_upload": "state <> 'pending_upload' AND upload_url IS NOT NULL",
    "size_bytes present after upload": f"state <> 'pending_upload' AND NOT {_SIZE}",
}

__all__ = ["COLUMN_SCHEMA", "DagsterRoughyTranslator"]


def roughy_project_partitions(project_ids: Sequence[str] = ()) -> dg.PartitionsDefinition:
    """The project partitions: static over `project_ids` when given, else the dynamic `roughy_projects`.

    Static partitions exist as soon as the code loads, so `dagster asset materialize --partition <id>` and
    `dg launch` work on a fresh instance without a daemon; dynamic ones are added by
    `roughy_project_discovery_sensor` (or `instance.add_dynamic_partitions("roughy_projects", [...])`).
    """
    return dg.StaticPartitionsDefinition(list(project_ids)) if project_ids else PROJECTS


class RoughySyncConfig(dg.Config):
    """Run configuration of a `roughy_sync` run."""

    full_refresh: bool = False
    """Re-read every list of the projects whole and confirm deletions (the reconcile safety net)."""


def check_specs(key: dg.AssetKey) -> list[dg.AssetCheckSpec]:
    """The checks on the synced-assets table, evaluated after each sync on what it stored."""
    return [
        dg.AssetCheckSpec(CHECK_UNIQUE_IDS, asset=key, description="One row per asset id."),
        dg.AssetCheckSpec(
            CHECK_MATCHES_REMOTE,
            asset=key,
            description="Live rows per state equal the listing's totals that the sync read.",
        ),
        dg.AssetCheckSpec(CHECK_FIELD_RULES, asset=key, description="The spec's per-state field rules hold."),
        dg.AssetCheckSpec(
            CHECK_VALUES_FIT,
            asset=key,
            description=(
                "Every value is held exactly by its typed column; one that cannot be (e.g. a duration with "
                "more than 9 decimals, a created_at finer than a microsecond) is stored exactly in "
                "unfit_values, and listed here."
            ),
        ),
        dg.AssetCheckSpec(
            CHECK_ON_CONTRACT,
            asset=key,
            description=(
                "The sync saw no asset whose values the API contract refuses; one it saw (e.g. Unicode "
                "digits in duration_seconds) was left as stored, and is listed here with its request id."
            ),
        ),
    ]


def table_specs(translator: DagsterRoughyTranslator | None = None) -> list[dg.AssetSpec]:
    """The three tables' specs as the translator makes them, each marked with its table's name."""
    translator = translator or DagsterRoughyTranslator()
    specs = [
        translator.get_asset_spec(table).merge_attributes(metadata={TABLE_METADATA_KEY: table.name})
        for table in TABLES
    ]
    keys = [spec.key for spec in specs]
    if len(set(keys)) != len(keys):
        raise ValueError(
            f"the translator gave the tables {', '.join(k.to_user_string() for k in keys)}: each table needs "
            "its own key (e.g. key=default.key.with_prefix(...) or key=[..., table.name])"
        )
    return specs


def _key_of(specs: Sequence[dg.AssetSpec], table: RoughyTable) -> dg.AssetKey:
    return next(spec.key for spec in specs if spec.metadata.get(TABLE_METADATA_KEY) == table.name)


def roughy_assets(
    *,
    name: str = SYNC_OP_NAME,
    translator: DagsterRoughyTranslator | None = None,
    partitions_def: dg.PartitionsDefinition | None = PROJECTS,
    pool: str | None = POOL,
    backfill_policy: dg.BackfillPolicy | None = None,
    op_tags: Mapping[str, Any] | None = None,
    retry_policy: dg.RetryPolicy | None = None,
) -> Callable[[Callable[..., Any]], dg.AssetsDefinition]:
    """Decorate a function that syncs Roughy into DuckDB as the multi-asset of the three tables.

    Like `@dlt_assets` and `@sling_assets`: the decorator sets the specs (from `translator`), the checks,
    the project partitions, the single-run backfill policy and the DuckDB pool; the body does the work,
    usually by delegating to the resource::

        @roughy_assets(name="media_sync", translator=MyTranslator())
        def media_sync(context: dg.AssetExecutionContext, roughy: RoughyResource, duckdb: DuckDBResource):
            yield from roughy.sync_and_materialize(context, duckdb.database)

    `partitions_def` is `roughy_project_partitions(...)` (the dynamic `roughy_projects` by default).
    `backfill_policy` defaults to `BackfillPolicy.single_run()`: any set of partitions is one run.
    """
    specs = table_specs(translator)

    def decorate(fn: Callable[..., Any]) -> dg.AssetsDefinition:
        return dg.multi_asset(
            name=name,
            specs=specs,
            check_specs=check_specs(_key_of(specs, ASSETS_TABLE)),
            partitions_def=partitions_def,
            backfill_policy=backfill_policy or dg.BackfillPolicy.single_run(),
            pool=pool,
            op_tags=op_tags,
            retry_policy=retry_policy,
            can_subset=True,
            description="Sync Roughy projects into roughy.assets, roughy.asset_events and roughy.sync_runs.",
        )(fn)

    return decorate


def build_roughy_assets(
    translator: DagsterRoughyTranslator | None = None,
    *,
    partitions_def: dg.PartitionsDefinition | None = PROJECTS,
    name: str = SYNC_OP_NAME,
) -> dg.AssetsDefinition:
    """The three synced tables as one multi-asset partitioned by project, with its checks.

    `translator` renames keys, groups or tags (see `DagsterRoughyTranslator`); `partitions_def` is
    `roughy_project_partitions(project_ids)`.
    """

    @roughy_assets(name=name, translator=translator, partitions_def=partitions_def)
    def roughy_sync(
        context: dg.AssetExecutionContext,
        config: RoughySyncConfig,
        roughy: RoughyResource,
        duckdb: dg.ResourceParam[DuckDBDatabase],
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:  # type: ignore[type-arg]
        """Sync the run's project partitions into DuckDB in one account sync, then check what was stored."""
        yield from sync_and_materialize(context, roughy, duckdb.database, full_refresh=config.full_refresh)

    return roughy_sync


roughy_sync_assets = build_roughy_assets()
"""The multi-asset with the default translator and the dynamic `roughy_projects` partitions."""


def _run_projects(context: dg.AssetExecutionContext) -> tuple[list[str], bool]:
    """The run's project partitions, and whether they are every partition of a discovered account."""
    if not context.has_partition_key and not context.has_partition_key_range:
        raise dg.Failure(
            "roughy_sync needs project partitions: launch it for one or more projects (a partition, a "
            "partition range or a backfill), or use the schedules"
        )
    projects = list(context.partition_keys)
    partitions_def = context.assets_def.partitions_def
    every = isinstance(partitions_def, dg.DynamicPartitionsDefinition) and set(projects) >= set(
        partitions_def.get_partition_keys(dynamic_partitions_store=context.instance)
    )
    return projects, every


@dataclass(frozen=True)
class RunSync:
    """What the sync of a run's partitions did: a report per project, and what it can be checked against.

    `account_totals` are the listing's account-wide totals per state, given when the run synced every
    project of the account (then the whole table is compared with them); otherwise each project's own
    `SyncReport.remote_totals` are used where the sync read them (a one-project sync does).
    """

    reports: dict[str, SyncReport]
    requests: int
    account_totals: dict[str, int] | None = None
    duration_seconds: float = 0.0


def sync_projects(
    client: RoughyClient,
    database: str,
    project_ids: Sequence[str],
    *,
    full_refresh: bool,
    every: bool = False,
    concurrency: int = DEFAULT_CONCURRENCY,
    max_requests: int | None = None,
) -> RunSync:
    """Sync the run's projects in one pass: `sync_project` for one, else one `sync_account`.

    `every`: the projects are every partition of a discovered account, so the account sync writes every
    project the listing shows (one created since discovery included) and its totals check the table.
    `concurrency` and `max_requests` are the syncs' own settings (`RoughyResource` carries them).
    """
    if len(project_ids) == 1:  # one partition, by hand or not: just that project
        report = sync_project(
            client,
            database,
            project_ids[0],
            full_refresh=full_refresh,
            concurrency=concurrency,
            max_requests=max_requests,
        )
        return RunSync({project_ids[0]: report}, report.requests, duration_seconds=report.duration_seconds)
    account = sync_account(
        client,
        database,
        project_ids=None if every else project_ids,
        full_refresh=full_refresh,
        concurrency=concurrency,
        max_requests=max_requests,
    )
    reports = {project: account.projects[project] for project in project_ids if project in account.projects}
    return RunSync(
        reports,
        account.requests,
        dict(account.remote_totals) if every else None,
        duration_seconds=account.duration_seconds,
    )


def sync_and_materialize(
    context: dg.AssetExecutionContext, roughy: RoughyResource, database: str, *, full_refresh: bool = False
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:  # type: ignore[type-arg]
    """Sync the run's project partitions and yield what Dagster records: materializations and checks.

    One run is one sync, whatever the number of partitions: `sync_project` for one partition, else one
    `sync_account` pass over the account-wide lists. All three tables are written (one transaction); the
    run records those it selected. Each partition of each recorded table gets its project's figures as
    metadata (`add_partition_metadata`), so the UI shows every project's status even when one run
    synced hundreds. The checks compare the stored rows with the totals the sync itself read: no request
    is made per project.
    """
    projects, every = _run_projects(context)
    with roughy.get_client() as client:
        synced = sync_projects(
            client,
            database,
            projects,
            full_refresh=full_refresh,
            every=every,
            concurrency=roughy.concurrency,
            max_requests=roughy.max_requests,
        )
    context.log.info(
        f"synced {len(synced.reports)} of {len(projects)} project partitions in one pass: {synced.requests} "
        f"requests, {sum(r.new for r in synced.reports.values())} new, "
        f"{sum(r.changed for r in synced.reports.values())} changed, "
        f"{sum(r.deleted for r in synced.reports.values())} deleted, in {synced.duration_seconds:.2f} s"
    )
    missing = sorted(set(projects) - set(synced.reports))
    if missing:
        context.log.warning(f"nothing listed or stored for {len(missing)} project(s), e.g. {missing[0]}")
    specs = list(context.assets_def.specs)
    keys = {table.name: _key_of(specs, table) for table in TABLES}
    # One transaction writes all three tables; a run that selected some records those.
    selected = {name: key for name, key in keys.items() if key in context.selected_asset_keys}
    store = AssetStore(database)
    metadata = materialization_metadata(store, synced.reports)
    for table_name, key in selected.items():
        add_partition_metadata(context, key, metadata.per_partition[table_name])
    for table_name, key in selected.items():
        yield dg.MaterializeResult(asset_key=key, metadata=metadata.per_table[table_name])
    checked = {key.name for key in context.selected_asset_check_keys}
    results = run_checks(
        store, synced.reports, asset_key=keys[ASSETS_TABLE.name], account_totals=synced.account_totals
    )
    for result in results:
        if result.check_name in checked:
            yield result


def _in_projects(column: str = "project_id") -> str:
    return f"{column} IN (SELECT CAST(unnest(?::VARCHAR[]) AS UUID))"


@dataclass(frozen=True)
class MaterializationMetadata:
    """What a run records with each table's materializations: the same for every partition, and per project.

    `per_table[table]` (whole-table row count, the database paths) goes once into the table's
    `MaterializeResult`; `per_partition[table][project]` (the project's row count and sync figures) into
    the project's partition. Each table's name and column schema are definition metadata (the translator's
    spec), not repeated in every partition's event.
    """

    per_table: dict[str, dict[str, Any]]
    per_partition: dict[str, dict[str, dict[str, Any]]]


def materialization_metadata(store: AssetStore, reports: Mapping[str, SyncReport]) -> MaterializationMetadata:
    """The metadata of the run's materializations: Dagster's row counts plus the sync's own figures."""
    projects = list(reports)
    with store.connect(read_only=True) as connection:
        (live_rows,) = connection.execute(
            "SELECT count(*) FROM roughy.assets WHERE deleted_at IS NULL"
        ).fetchall()[0]
        (event_rows,) = connection.execute("SELECT count(*) FROM roughy.asset_events").fetchall()[0]
        (sync_rows,) = connection.execute("SELECT count(*) FROM roughy.sync_runs").fetchall()[0]
        events_by_project = dict(
            connection.execute(
                f"SELECT CAST(project_id AS VARCHAR), count(*) FROM roughy.asset_events "
                f"WHERE {_in_projects()} GROUP BY ALL",
                [projects],
            ).fetchall()
        )
        syncs_by_project = dict(
            connection.execute(
                f"SELECT CAST(project_id AS VARCHAR), count(*) FROM roughy.sync_runs "
                f"WHERE {_in_projects()} GROUP BY ALL",
                [projects],
            ).fetchall()
        )
    files = {
        "database": dg.MetadataValue.path(store.database),
        # what readers open (read-only): the latest published copy, never the file syncs write
        "query_database": dg.MetadataValue.path(str(latest_path(store.database))),
    }
    return MaterializationMetadata(
        per_table={
            ASSETS_TABLE.name: {"dagster/row_count": int(live_rows), **files},
            EVENTS_TABLE.name: {"dagster/row_count": int(event_rows), **files},
            SYNC_RUNS_TABLE.name: {"dagster/row_count": int(sync_rows), **files},
        },
        per_partition={
            ASSETS_TABLE.name: {
                project: {"dagster/partition_row_count": report.live_rows, **sync_figures(report)}
                for project, report in reports.items()
            },
            EVENTS_TABLE.name: {
                project: {
                    "dagster/partition_row_count": int(events_by_project.get(project, 0)),
                    "sync_id": report.sync_id,
                }
                for project, report in reports.items()
            },
            SYNC_RUNS_TABLE.name: {
                project: {
                    "dagster/partition_row_count": int(syncs_by_project.get(project, 0)),
                    "sync_id": report.sync_id,
                }
                for project, report in reports.items()
            },
        },
    )


def add_partition_metadata(
    context: dg.AssetExecutionContext, key: dg.AssetKey, by_partition: Mapping[str, Mapping[str, Any]]
) -> None:
    """`context.add_asset_metadata(metadata, asset_key=key, partition_key=p)` for every partition, in O(N).

    Dagster checks each such call against the run's partition range by reading the dynamic partitions from
    the instance (three storage queries per call, each listing every partition), so N calls cost O(N²):
    minutes for 1,000 projects x 3 tables on a SQLite instance (`bench/cycle.py`). Here the partitions
    are checked once against `context.partition_keys`, and the metadata is added to the step's in one
    update. Should Dagster's internals differ (another release), the public call is made for each.
    """
    unknown = sorted(set(by_partition) - set(context.partition_keys))
    if unknown:
        raise dg.DagsterInvariantViolationError(
            f"metadata for {len(unknown)} partition(s) this run does not target, e.g. {unknown[0]!r}"
        )
    step: Any = getattr(context.op_execution_context, "_step_execution_context", None)
    accumulator: Any = getattr(step, "_metadata_accumulator", None)
    current = getattr(accumulator, "per_output_metadata", None)
    if _AssetMetadataHandle is None or not isinstance(current, Mapping) or key not in context.assets_def.keys:
        for partition, metadata in by_partition.items():
            context.add_asset_metadata(dict(metadata), asset_key=key, partition_key=partition)
        return
    merged = dict(current)
    for partition, metadata in by_partition.items():
        handle = _AssetMetadataHandle(asset_key=key, partition_key=partition)
        merged[handle] = {**merged.get(handle, {}), **metadata}
    step._metadata_accumulator = type(accumulator)(per_output_metadata=merged)


def sync_figures(report: SyncReport) -> dict[str, Any]:
    """One project's sync as metadata: what changed, what it cost, whether the rows were proven equal."""
    return {
        "counts_by_state": report.counts_by_state,
        "remote_totals": report.remote_totals,
        "new": report.new,
        "changed": report.changed,
        "deleted": report.deleted,
        "revived": report.revived,
        "unchanged": report.unchanged,
        "requests": report.requests,
        "pages": report.pages,
        "retries": report.retries,
        "duration_seconds": round(report.duration_seconds, 3),
        "mode": report.mode,
        "verified": report.verified,
        "unresolved": report.unresolved,
        "sync_id": report.sync_id,
    }


def _listed(failures: Mapping[str, Any]) -> dict[str, Any]:
    """At most `MAX_LISTED_PROJECTS` failing projects, and how many were left out."""
    listed = dict(list(failures.items())[:MAX_LISTED_PROJECTS])
    if len(failures) > MAX_LISTED_PROJECTS:
        listed["(more projects)"] = len(failures) - MAX_LISTED_PROJECTS
    return listed


def run_checks(
    store: AssetStore,
    reports: Mapping[str, SyncReport],
    *,
    asset_key: dg.AssetKey = ASSETS_KEY,
    account_totals: Mapping[str, int] | None = None,
) -> list[dg.AssetCheckResult]:
    """The checks over the synced projects: one query each, failing projects listed in metadata.

    `live_rows_match_remote_totals` compares with totals the sync read, so it makes no request: the
    account-wide `account_totals` against the whole table when given (a sync of every project), else
    each project's `SyncReport.remote_totals` (a one-project sync). A mismatch is a warning (the remote
    may have changed meanwhile).
    """
    projects = list(reports)
    states = [state.value for state in AssetState]
    with store.connect(read_only=True) as connection:
        duplicated = {
            project: {"rows": int(rows), "distinct_ids": int(distinct)}
            for project, rows, distinct in connection.execute(
                f"SELECT CAST(project_id AS VARCHAR), count(*), count(DISTINCT id) FROM roughy.assets "
                f"WHERE {_in_projects()} GROUP BY ALL HAVING count(*) <> count(DISTINCT id)",
                [projects],
            ).fetchall()
        }
        stored: dict[str, dict[str, int]] = {project: dict.fromkeys(states, 0) for project in projects}
        for project, state, count in connection.execute(
            f"SELECT CAST(project_id AS VARCHAR), state, count(*) FROM roughy.assets "
            f"WHERE {_in_projects()} AND deleted_at IS NULL GROUP BY ALL",
            [projects],
        ).fetchall():
            stored[project][state] = int(count)
        rule_counts = ", ".join(f"count(*) FILTER (WHERE {sql})" for sql in FIELD_RULES.values())
        violations: dict[str, dict[str, int]] = {}
        for project, *counts in connection.execute(
            f"SELECT CAST(project_id AS VARCHAR), {rule_counts} FROM roughy.assets "
            f"WHERE {_in_projects()} AND deleted_at IS NULL GROUP BY ALL",
            [projects],
        ).fetchall():
            broken = {rule: int(n) for rule, n in zip(FIELD_RULES, counts, strict=True) if n}
            if broken:
                violations[project] = broken
        unfit: dict[str, dict[str, Any]] = {}
        for project, rows, first in connection.execute(
            f"SELECT CAST(project_id AS VARCHAR), count(*), "
            f"map_from_entries(list((CAST(id AS VARCHAR), unfit_values) ORDER BY id)[:5]) "
            f"FROM roughy.assets WHERE {_in_projects()} AND deleted_at IS NULL AND unfit_values IS NOT NULL "
            f"GROUP BY ALL",
            [projects],
        ).fetchall():
            unfit[project] = {"rows": int(rows), "first_rows": dict(first)}
        if account_totals is not None:
            table = dict(
                connection.execute(
                    "SELECT state, count(*) FROM roughy.assets WHERE deleted_at IS NULL GROUP BY ALL"
                ).fetchall()
            )
            stored[ACCOUNT] = {state: int(table.get(state, 0)) for state in states}
    expected = {project: report.remote_totals for project, report in reports.items() if report.remote_totals}
    if account_totals is not None:
        expected[ACCOUNT] = dict(account_totals)
    mismatched: dict[str, dict[str, str]] = {}
    for project, totals in expected.items():
        differing = {
            state: f"stored {stored[project].get(state, 0)}, remote {total}"
            for state, total in totals.items()
            if stored[project].get(state, 0) != total
        }
        if differing:
            mismatched[project] = differing
    checked = {"projects_checked": len(projects)}
    compared = len(expected)
    refused = {project: list(r.off_contract) for project, r in reports.items() if r.off_contract}
    return [
        dg.AssetCheckResult(
            asset_key=asset_key,
            check_name=CHECK_UNIQUE_IDS,
            passed=not duplicated,
            metadata={**checked, "projects_failing": len(duplicated), "duplicated": _listed(duplicated)},
        ),
        dg.AssetCheckResult(
            asset_key=asset_key,
            check_name=CHECK_MATCHES_REMOTE,
            passed=not mismatched,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                **checked,
                "totals_compared": compared,
                "projects_failing": len(mismatched),
                "mismatched_states": _listed(mismatched),
            },
            description=(
                "The remote may have changed during the sync; the next one converges."
                if mismatched
                else None
                if compared
                else "Not compared: a sync of some projects over the account-wide lists has no "
                "per-project totals (the schedules sync every project and compare the whole table)."
            ),
        ),
        dg.AssetCheckResult(
            asset_key=asset_key,
            check_name=CHECK_FIELD_RULES,
            passed=not violations,
            metadata={**checked, "projects_failing": len(violations), "violations": _listed(violations)},
        ),
        dg.AssetCheckResult(
            asset_key=asset_key,
            check_name=CHECK_VALUES_FIT,
            passed=not unfit,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={**checked, "projects_failing": len(unfit), "unfit_values": _listed(unfit)},
            description=None
            if not unfit
            else (
                "Values their column cannot hold exactly: the column is null (created_at: truncated to the "
                "microsecond) and roughy.assets.unfit_values holds the exact value"
            ),
        ),
        dg.AssetCheckResult(
            asset_key=asset_key,
            check_name=CHECK_ON_CONTRACT,
            passed=not refused,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={**checked, "projects_failing": len(refused), "off_contract": _listed(refused)},
            description=None
            if not refused
            else (
                "Assets the API sent with a value its contract refuses were left as stored (not written, not "
                "deleted); their projects are unverified until the server sends them on contract. First: "
                f"project {next(iter(refused))}: {next(iter(refused.values()))[0]}"
            ),
        ),
    ]

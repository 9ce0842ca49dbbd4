"""The `roughy/assets` software-defined asset: one DuckDB sync per project partition, with its checks."""

from typing import Any

import dagster as dg
from dagster_duckdb import DuckDBResource

from ..client import AssetState, RoughyClient
from ..fields import ASSET_FIELDS
from ..project_sync import sync_project
from ..store import AssetStore, SyncReport
from .resource import RoughyResource

ASSETS_KEY = dg.AssetKey(["roughy", "assets"])
PROJECTS_NAME = "roughy_projects"
PROJECTS = dg.DynamicPartitionsDefinition(name=PROJECTS_NAME)
POOL = "roughy_duckdb"
TABLE_NAME = "roughy.assets"

CHECK_UNIQUE_IDS = "unique_ids"
CHECK_MATCHES_REMOTE = "live_rows_match_remote_totals"
CHECK_FIELD_RULES = "per_state_field_rules"

COLUMN_SCHEMA = dg.TableSchema(
    columns=[
        dg.TableColumn(
            f.name,
            f.duckdb_type,
            description=f.description,
            constraints=dg.TableColumnConstraints(nullable=f.nullable, unique=f.name == "id"),
        )
        for f in ASSET_FIELDS
    ]
)
"""The columns of `roughy.assets`, from `roughy_dagster.fields`."""

# One query per rule: a row breaking the spec's per-state field rules is counted under its rule's name.
FIELD_RULES: dict[str, str] = {
    "size_bytes null while pending_upload": "state = 'pending_upload' AND size_bytes IS NOT NULL",
    "duration null while pending_upload": "state = 'pending_upload' AND duration_seconds IS NOT NULL",
    "duration present once ready or pending_payment": (
        "state IN ('ready', 'pending_payment') AND duration_seconds IS NULL"
    ),
    "duration null on failed": "state = 'failed' AND duration_seconds IS NOT NULL",
    "error_code set only on failed": "(state = 'failed') <> (error_code IS NOT NULL)",
    "error_message only on failed": "state <> 'failed' AND error_message IS NOT NULL",
    "upload_url only while pending_upload": "state <> 'pending_upload' AND upload_url IS NOT NULL",
    "size_bytes present after upload": "state <> 'pending_upload' AND size_bytes IS NULL",
}


class RoughySyncConfig(dg.Config):
    """Run configuration of a `roughy/assets` materialization."""

    full_refresh: bool = False
    """Re-read every list of the project whole and confirm deletions (the reconcile safety net)."""


class DagsterRoughyTranslator:
    """Decides how the synced table appears in Dagster; subclass it to rename the key, group or tags.

    Like the translators of dagster-dlt, dagster-sling and dagster-fivetran: override `get_asset_spec`
    and return `default.replace_attributes(...)` (or `merge_attributes(...)`).
    """

    def get_asset_spec(self, default: dg.AssetSpec) -> dg.AssetSpec:
        """The spec of the synced-assets table; `default` is `roughy/assets` in group `roughy`."""
        return default


DEFAULT_ASSET_SPEC = dg.AssetSpec(
    key=ASSETS_KEY,
    group_name="roughy",
    kinds={"duckdb", "roughy"},
    description=(
        "Every asset of every Roughy project, current and deleted, synced incrementally into the DuckDB "
        "table roughy.assets (with roughy.asset_events and roughy.sync_runs). One partition per project."
    ),
)


def build_roughy_assets(translator: DagsterRoughyTranslator | None = None) -> dg.AssetsDefinition:
    """The synced-assets table as a software-defined asset partitioned by project, with its checks."""
    spec = (translator or DagsterRoughyTranslator()).get_asset_spec(DEFAULT_ASSET_SPEC)
    key = spec.key

    @dg.asset(
        key=key,
        partitions_def=PROJECTS,
        kinds=set(spec.kinds),
        tags={name: value for name, value in spec.tags.items() if not name.startswith("dagster/kind/")},
        metadata=dict(spec.metadata),
        owners=list(spec.owners),
        pool=POOL,
        group_name=spec.group_name,
        description=spec.description,
        check_specs=[
            dg.AssetCheckSpec(CHECK_UNIQUE_IDS, asset=key, description="One row per asset id."),
            dg.AssetCheckSpec(
                CHECK_MATCHES_REMOTE,
                asset=key,
                description="Live rows per state equal the listing's totals, read again after the write.",
            ),
            dg.AssetCheckSpec(
                CHECK_FIELD_RULES, asset=key, description="The spec's per-state field rules hold."
            ),
        ],
    )
    def roughy_assets(
        context: dg.AssetExecutionContext,
        config: RoughySyncConfig,
        roughy: RoughyResource,
        duckdb: DuckDBResource,
    ) -> dg.MaterializeResult:  # type: ignore[type-arg]  # Dagster reads this annotation at run time
        """Sync one project's listing into DuckDB, then check what was stored."""
        project_id = context.partition_key
        with roughy.get_client() as client:
            report = sync_project(client, duckdb.database, project_id, full_refresh=config.full_refresh)
            context.log.info(
                f"project {project_id}: {report.new} new, {report.changed} changed, "
                f"{report.deleted} deleted, {report.requests} requests "
                f"({report.mode}, verified={report.verified})"
            )
            remote_now = _remote_totals(client, project_id)
        checks = run_checks(AssetStore(duckdb.database), project_id, remote_now)
        return dg.MaterializeResult(
            metadata=materialization_metadata(report, duckdb.database), check_results=checks
        )

    return roughy_assets


roughy_assets = build_roughy_assets()
"""The asset with the default translator (key `roughy/assets`)."""


def _remote_totals(client: RoughyClient, project_id: str) -> dict[str, int]:
    """The listing's total per state, one cheap request each."""
    return {
        state.value: client.list_assets(project_id=project_id, state=state, limit=1).total
        for state in AssetState
    }


def run_checks(
    store: AssetStore, project_id: str, remote_totals: dict[str, int]
) -> list[dg.AssetCheckResult]:
    """The three partition checks, evaluated on the stored rows."""
    with store.connect(read_only=True) as connection:
        rows, distinct = connection.execute(
            "SELECT count(*), count(DISTINCT id) FROM roughy.assets WHERE project_id = ?", [project_id]
        ).fetchall()[0]
        stored = dict(
            connection.execute(
                "SELECT state, count(*) FROM roughy.assets WHERE project_id = ? AND deleted_at IS NULL "
                "GROUP BY state",
                [project_id],
            ).fetchall()
        )
        broken = {
            rule: connection.execute(
                f"SELECT count(*) FROM roughy.assets WHERE project_id = ? AND deleted_at IS NULL AND ({sql})",
                [project_id],
            ).fetchall()[0][0]
            for rule, sql in FIELD_RULES.items()
        }
    stored_counts = {state.value: int(stored.get(state.value, 0)) for state in AssetState}
    mismatched = {
        s: (stored_counts[s], remote_totals[s]) for s in remote_totals if stored_counts[s] != remote_totals[s]
    }
    violations = {rule: count for rule, count in broken.items() if count}
    return [
        dg.AssetCheckResult(
            check_name=CHECK_UNIQUE_IDS,
            passed=bool(rows == distinct),
            metadata={"rows": int(rows), "distinct_ids": int(distinct)},
        ),
        dg.AssetCheckResult(
            check_name=CHECK_MATCHES_REMOTE,
            passed=not mismatched,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "stored_live_by_state": stored_counts,
                "remote_totals_by_state": remote_totals,
                "mismatched_states": {s: f"stored {a}, remote {b}" for s, (a, b) in mismatched.items()},
            },
            description=None
            if not mismatched
            else "The remote may have changed since the sync; the next one converges.",
        ),
        dg.AssetCheckResult(
            check_name=CHECK_FIELD_RULES,
            passed=not violations,
            metadata={"violations": violations or {}},
        ),
    ]


def materialization_metadata(report: SyncReport, database: str) -> dict[str, Any]:
    """Dagster's table metadata plus the sync's own figures."""
    with AssetStore(database).connect(read_only=True) as connection:
        (total_rows,) = connection.execute(
            "SELECT count(*) FROM roughy.assets WHERE deleted_at IS NULL"
        ).fetchall()[0]
    return {
        "dagster/row_count": int(total_rows),
        "dagster/partition_row_count": report.live_rows,
        "dagster/table_name": TABLE_NAME,
        "dagster/column_schema": COLUMN_SCHEMA,
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
        "database": dg.MetadataValue.path(database),
    }

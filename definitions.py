"""The code location `dagster dev -w workspace.yaml` loads: the Roughy integration, set up from the env.

Besides the sync (the tables `roughy/assets`, `roughy/asset_events`, `roughy/sync_runs`, their job,
schedules and the project discovery sensor), two examples of building on it: a downstream asset (hours of
ready media per project per day), and two reactions to an asset that becomes ready or fails, launched by
`roughy_asset_state_sensor`.
"""

import dagster as dg
from dagster_duckdb import DuckDBResource

from roughy_dagster import ROUGHY_POOL, AssetStore, RoughyAssetEvent, build_roughy_defs, record_reaction


@dg.asset(
    key=["roughy_reports", "ready_media_hours_by_day"],
    deps=[dg.AssetKey(["roughy", "assets"])],
    group_name="roughy_reports",
    kinds={"duckdb"},
    pool=ROUGHY_POOL,
    description="Hours of ready media per project and upload day (UTC), from roughy.assets.",
)
def ready_media_hours_by_day(duckdb: DuckDBResource) -> dg.MaterializeResult:  # type: ignore[type-arg]
    """An example downstream asset: a table `roughy_reports.ready_media_hours_by_day` in the same file."""
    store = AssetStore(duckdb.database)
    with store.connect() as connection:
        connection.execute("SET TimeZone = 'UTC'")
        connection.execute("CREATE SCHEMA IF NOT EXISTS roughy_reports")
        connection.execute(
            "CREATE OR REPLACE TABLE roughy_reports.ready_media_hours_by_day AS "
            "SELECT project_id, CAST(created_at AS DATE) AS day, count(*) AS assets, "
            "CAST(sum(duration_seconds) / 3600 AS DOUBLE) AS hours FROM roughy.assets "
            "WHERE state = 'ready' AND deleted_at IS NULL GROUP BY ALL ORDER BY ALL"
        )
        (rows,) = connection.execute(
            "SELECT count(*) FROM roughy_reports.ready_media_hours_by_day"
        ).fetchall()[0]
        store.publish(connection)  # readers (roughy_dagster.connect) see the table now, not after a sync
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": int(rows),
            "dagster/table_name": "roughy_reports.ready_media_hours_by_day",
            "dagster/column_schema": dg.TableSchema(
                columns=[
                    dg.TableColumn("project_id", "UUID", description="The project"),
                    dg.TableColumn("day", "DATE", description="Upload day (UTC) of the assets"),
                    dg.TableColumn("assets", "BIGINT", description="Ready assets uploaded that day"),
                    dg.TableColumn("hours", "DOUBLE", description="Their total duration, in hours"),
                ]
            ),
            "dagster/column_lineage": dg.TableColumnLineage(
                deps_by_column={
                    "project_id": [dg.TableColumnDep(dg.AssetKey(["roughy", "assets"]), "project_id")],
                    "day": [dg.TableColumnDep(dg.AssetKey(["roughy", "assets"]), "created_at")],
                    "hours": [dg.TableColumnDep(dg.AssetKey(["roughy", "assets"]), "duration_seconds")],
                }
            ),
        }
    )


@dg.op
def handle_roughy_asset_ready(
    context: dg.OpExecutionContext, config: RoughyAssetEvent, duckdb: DuckDBResource
) -> None:
    """A newly ready asset: this is where a cut or a render would start. Here: log it and record it."""
    context.log.info(
        f"asset {config.id} of project {config.project_id} is ready: {config.type} {config.extension}, "
        f"{config.duration_seconds} s, {config.size_bytes} bytes"
    )
    record_reaction(context, duckdb, config, f"ready: {config.type} {config.duration_seconds} s")


@dg.op
def handle_roughy_asset_failed(
    context: dg.OpExecutionContext, config: RoughyAssetEvent, duckdb: DuckDBResource
) -> None:
    """A newly failed asset: this is where an alert or a re-upload would start. Here: report and record it."""
    context.log.warning(
        f"asset {config.id} of project {config.project_id} failed: "
        f"{config.error_code}: {config.error_message}"
    )
    record_reaction(context, duckdb, config, f"failed: {config.error_code}: {config.error_message}")


@dg.job(description="Reacts to a Roughy asset that became ready (launched by roughy_asset_state_sensor).")
def roughy_asset_ready_job() -> None:
    """One op, configured with the asset's fields by the sensor."""
    handle_roughy_asset_ready.alias("handle_roughy_asset")()


@dg.job(description="Reacts to a Roughy asset that failed (launched by roughy_asset_state_sensor).")
def roughy_asset_failed_job() -> None:
    """One op, configured with the asset's fields by the sensor."""
    handle_roughy_asset_failed.alias("handle_roughy_asset")()


defs = dg.Definitions.merge(
    build_roughy_defs(state_jobs={"ready": roughy_asset_ready_job, "failed": roughy_asset_failed_job}),
    dg.Definitions(assets=[ready_media_hours_by_day]),
)

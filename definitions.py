"""The code location `dagster dev -w workspace.yaml` loads: the Roughy integration, set up from the env.

Besides the sync (asset `roughy/assets`, its job, schedules and the project discovery sensor), two example
reactions show what to do when an asset becomes ready or fails; `roughy_asset_state_sensor` launches them.
"""

import dagster as dg
from dagster_duckdb import DuckDBResource

from roughy_dagster import ROUGHY_POOL, RoughyAssetEvent, build_roughy_defs, record_reaction


@dg.op(pool=ROUGHY_POOL)
def handle_roughy_asset_ready(
    context: dg.OpExecutionContext, config: RoughyAssetEvent, duckdb: DuckDBResource
) -> None:
    """A newly ready asset: this is where a cut or a render would start. Here: log it and record it."""
    context.log.info(
        f"asset {config.id} of project {config.project_id} is ready: {config.type} {config.extension}, "
        f"{config.duration_seconds} s, {config.size_bytes} bytes"
    )
    record_reaction(context, duckdb, config, f"ready: {config.type} {config.duration_seconds} s")


@dg.op(pool=ROUGHY_POOL)
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


defs = build_roughy_defs(state_jobs={"ready": roughy_asset_ready_job, "failed": roughy_asset_failed_job})

"""`build_roughy_defs`: the one place that wires the resource, asset, job, schedules and sensors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import dagster as dg
from dagster_duckdb import DuckDBResource

from .assets import roughy_assets
from .resource import RoughyResource
from .scheduling import build_project_discovery_sensor, build_sync_job, build_sync_schedules
from .settings import RoughySettings

if TYPE_CHECKING:
    from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition


def build_roughy_defs(
    settings: RoughySettings | None = None,
    *,
    extra_jobs: Sequence[dg.JobDefinition | UnresolvedAssetJobDefinition] = (),
    extra_sensors: Sequence[dg.SensorDefinition] = (),
    schedule_status: dg.DefaultScheduleStatus | None = None,
    discovery_status: dg.DefaultSensorStatus | None = None,
) -> dg.Definitions:
    """Definitions of the Roughy integration from settings (by default, from the environment).

    Nothing here calls the network: the API key is read from its environment variable at run time.
    """
    settings = settings or RoughySettings.from_env()
    running = settings.automation_running
    if schedule_status is None:
        schedule_status = dg.DefaultScheduleStatus.RUNNING if running else dg.DefaultScheduleStatus.STOPPED
    if discovery_status is None:
        discovery_status = dg.DefaultSensorStatus.RUNNING if running else dg.DefaultSensorStatus.STOPPED
    job = build_sync_job()
    return dg.Definitions(
        assets=[roughy_assets],
        jobs=[job, *extra_jobs],
        schedules=build_sync_schedules(
            job,
            configured_projects=settings.project_ids,
            sync_cron=settings.sync_cron,
            reconcile_cron=settings.reconcile_cron,
            default_status=schedule_status,
        ),
        sensors=[
            build_project_discovery_sensor(
                job, configured_projects=settings.project_ids, default_status=discovery_status
            ),
            *extra_sensors,
        ],
        resources={
            "roughy": RoughyResource(api_key=dg.EnvVar(settings.api_key_env_var), base_url=settings.base_url),
            "duckdb": DuckDBResource(database=settings.duckdb_path),
        },
    )

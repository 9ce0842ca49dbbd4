"""`build_roughy_defs`: the one place that wires the resource, asset, job, schedules and sensors."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import dagster as dg

from .assets import PROJECTS, build_roughy_assets, roughy_project_partitions, roughy_sync_assets
from .duckdb_resource import duckdb_resource
from .resource import RoughyResource
from .scheduling import build_roughy_project_discovery_sensor, build_sync_job, build_sync_schedules
from .settings import RoughySettings
from .state_sensor import build_roughy_state_sensor
from .translator import DagsterRoughyTranslator

if TYPE_CHECKING:
    from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition


def build_roughy_defs(
    settings: RoughySettings | None = None,
    *,
    state_jobs: Mapping[str, dg.JobDefinition] | None = None,
    extra_jobs: Sequence[dg.JobDefinition | UnresolvedAssetJobDefinition] = (),
    extra_sensors: Sequence[dg.SensorDefinition] = (),
    translator: DagsterRoughyTranslator | None = None,
    schedule_status: dg.DefaultScheduleStatus | None = None,
    discovery_status: dg.DefaultSensorStatus | None = None,
    state_sensor_status: dg.DefaultSensorStatus | None = None,
) -> dg.Definitions:
    """Definitions of the Roughy integration from settings (by default, from the environment).

    With `settings.project_ids` the project partitions are static (those projects, nothing discovered);
    without, they are the dynamic `roughy_projects`, filled by `roughy_project_discovery_sensor`.
    `translator` renames the tables' keys, group or tags (see `DagsterRoughyTranslator`).
    `state_jobs` maps lifecycle states to the jobs that react to an asset entering them (e.g.
    {"ready": render_job, "failed": alert_job}); it adds `roughy_asset_state_sensor`. Nothing here calls
    the network: the API key is read from its environment variable at run time.
    """
    settings = settings or RoughySettings.from_env()
    running = settings.automation_running
    if schedule_status is None:
        schedule_status = dg.DefaultScheduleStatus.RUNNING if running else dg.DefaultScheduleStatus.STOPPED
    sensor_default = dg.DefaultSensorStatus.RUNNING if running else dg.DefaultSensorStatus.STOPPED
    discovery_status = discovery_status or sensor_default
    state_sensor_status = state_sensor_status or sensor_default
    partitions_def = roughy_project_partitions(settings.project_ids)
    if translator is None and partitions_def is PROJECTS:
        assets = roughy_sync_assets
    else:
        assets = build_roughy_assets(translator, partitions_def=partitions_def)
    job = build_sync_job(assets)
    discovery = (
        [
            build_roughy_project_discovery_sensor(
                job,
                minimum_interval_seconds=settings.discovery_interval_seconds,
                default_status=discovery_status,
            )
        ]
        if partitions_def is PROJECTS
        else []
    )
    return dg.Definitions(
        assets=[assets],
        jobs=[job, *{id(j): j for j in (state_jobs or {}).values()}.values(), *extra_jobs],
        schedules=build_sync_schedules(
            job,
            partitions_def=partitions_def,
            sync_cron=settings.sync_cron,
            reconcile_cron=settings.reconcile_cron,
            default_status=schedule_status,
            op_name=assets.op.name,
        ),
        sensors=[
            *discovery,
            *(
                [
                    build_roughy_state_sensor(
                        jobs_by_state=state_jobs,
                        states=list(state_jobs),
                        project_ids=settings.project_ids or None,
                        minimum_interval_seconds=settings.state_sensor_interval_seconds,
                        default_status=state_sensor_status,
                    )
                ]
                if state_jobs
                else []
            ),
            *extra_sensors,
        ],
        resources={
            "roughy": RoughyResource(
                api_key=dg.EnvVar(settings.api_key_env_var),
                base_url=settings.base_url,
                concurrency=settings.concurrency,
                max_requests=settings.max_requests,
            ),
            "duckdb": duckdb_resource(settings.duckdb_path),
        },
    )

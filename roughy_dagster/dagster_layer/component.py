"""`RoughyComponent`: the integration configured from a `defs.yaml`, built by `build_roughy_defs`."""

import importlib
from dataclasses import replace
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field

from ..client import DEFAULT_BASE_URL
from ..client.client import validate_base_url
from .definitions import build_roughy_defs
from .settings import (
    DEFAULT_DUCKDB_PATH,
    DEFAULT_RECONCILE_CRON,
    DEFAULT_SYNC_CRON,
    RoughyConfigurationError,
    RoughySettings,
    parse_project_ids,
)

STARTER_ATTRIBUTES: dict[str, Any] = {
    "api_key_env_var": "ROUGHY_API_KEY",
    "base_url": DEFAULT_BASE_URL,
    "duckdb_path": DEFAULT_DUCKDB_PATH,
    "project_ids": [],
    "sync_cron": DEFAULT_SYNC_CRON,
    "reconcile_cron": DEFAULT_RECONCILE_CRON,
    "schedules_running": False,
    "discovery_sensor_running": False,
    "state_sensor_running": False,
    "state_jobs": {},
}


class RoughyScaffolder(dg.Scaffolder):
    """Writes a starter `defs.yaml` for `RoughyComponent` (`dg scaffold defs ... RoughyComponent`)."""

    def scaffold(self, request: dg.ScaffoldRequest) -> None:
        """Write the starter attributes, every one of them spelled out."""
        dg.scaffold_component(request, STARTER_ATTRIBUTES)


@dg.scaffold_with(RoughyScaffolder)
class RoughyComponent(dg.Component, dg.Model, dg.Resolvable):
    """Sync Roughy projects into DuckDB, and react to assets that become ready or fail.

    The API key itself never appears here: `api_key_env_var` names the environment variable that holds
    it, read at run time. `state_jobs` maps a state to a job, as `"package.module:job_name"`.
    """

    api_key_env_var: str = Field(
        default="ROUGHY_API_KEY", description="Name of the env var with the API key."
    )
    base_url: str = Field(default=DEFAULT_BASE_URL, description="Roughy API base URL.")
    duckdb_path: str = Field(default=DEFAULT_DUCKDB_PATH, description="The DuckDB file to sync into.")
    project_ids: list[str] = Field(default_factory=list, description="Project UUIDs to sync and watch.")
    sync_cron: str = Field(default=DEFAULT_SYNC_CRON, description="Cron of roughy_sync_schedule.")
    reconcile_cron: str = Field(default=DEFAULT_RECONCILE_CRON, description="Cron of the full reconcile.")
    schedules_running: bool = Field(default=False, description="Start the sync and reconcile schedules on.")
    discovery_sensor_running: bool = Field(default=False, description="Start project discovery on.")
    state_sensor_running: bool = Field(default=False, description="Start roughy_asset_state_sensor on.")
    state_jobs: dict[str, str] = Field(
        default_factory=dict,
        description='Jobs reacting to a state, e.g. {"ready": "my_pkg.jobs:render_job"}.',
    )

    def settings(self) -> RoughySettings:
        """The component's attributes as checked `RoughySettings`."""
        if self.api_key_env_var.startswith("sk_"):
            raise RoughyConfigurationError(
                "api_key_env_var must be the NAME of an environment variable (e.g. ROUGHY_API_KEY), "
                "not the key itself: remove the key from defs.yaml"
            )
        try:
            base_url = validate_base_url(self.base_url)
        except ValueError as error:
            raise RoughyConfigurationError(f"base_url: {error}") from None
        return RoughySettings(
            base_url=base_url,
            duckdb_path=self.duckdb_path,
            project_ids=parse_project_ids(",".join(self.project_ids)),
            sync_cron=self.sync_cron,
            reconcile_cron=self.reconcile_cron,
            api_key_env_var=self.api_key_env_var,
        )

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        """The same definitions as `definitions.py` builds, through `build_roughy_defs`."""
        settings = self.settings()
        jobs = {state: _load_job(reference) for state, reference in self.state_jobs.items()}
        if not Path(settings.duckdb_path).is_absolute():  # relative to the project, not to the cwd
            settings = replace(settings, duckdb_path=str(context.project_root / settings.duckdb_path))
        return build_roughy_defs(
            settings,
            state_jobs=jobs or None,
            schedule_status=_schedule_status(self.schedules_running),
            discovery_status=_sensor_status(self.discovery_sensor_running),
            state_sensor_status=_sensor_status(self.state_sensor_running),
        )


def _schedule_status(running: bool) -> dg.DefaultScheduleStatus:
    """Stated outright, like the sensors': a component reads its YAML, not `ROUGHY_AUTOMATION_RUNNING`."""
    return dg.DefaultScheduleStatus.RUNNING if running else dg.DefaultScheduleStatus.STOPPED


def _sensor_status(running: bool) -> dg.DefaultSensorStatus:
    return dg.DefaultSensorStatus.RUNNING if running else dg.DefaultSensorStatus.STOPPED


def _load_job(reference: str) -> dg.JobDefinition:
    """Import `"package.module:attribute"` and check that it is a job."""
    module_name, _, attribute = reference.partition(":")
    if not module_name or not attribute:
        raise RoughyConfigurationError(f"state_jobs: {reference!r} is not 'package.module:job_name'")
    try:
        job = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise RoughyConfigurationError(f"state_jobs: cannot load {reference!r}: {error}") from None
    if not isinstance(job, dg.JobDefinition):
        raise RoughyConfigurationError(f"state_jobs: {reference!r} is a {type(job).__name__}, not a job")
    return job

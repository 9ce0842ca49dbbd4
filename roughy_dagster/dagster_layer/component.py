"""`RoughyComponent`: the integration configured from a `defs.yaml`, built by `build_roughy_defs`."""

import importlib
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import dagster as dg
from dagster.components.utils.translation import TranslationFn, TranslationFnResolver

from ..client import DEFAULT_BASE_URL
from ..client.client import validate_base_url
from ..sync.engine import DEFAULT_CONCURRENCY
from .definitions import build_roughy_defs
from .settings import (
    DEFAULT_DUCKDB_PATH,
    DEFAULT_RECONCILE_CRON,
    DEFAULT_SYNC_CRON,
    RoughyConfigurationError,
    RoughySettings,
    parse_project_ids,
)
from .tables import RoughyTable
from .translator import TranslationFnTranslator

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


def _translation_resolver() -> TranslationFnResolver[RoughyTable]:
    """Dagster's `translation:` block, with the table as `{{ table }}` (`table.name`: assets, ...)."""
    resolver = TranslationFnResolver[RoughyTable](
        template_vars_for_translation_fn=lambda table: {"table": table}
    )
    resolver.description = (
        "Asset attributes applied to each table's spec (key, key_prefix, group_name, tags, owners, "
        "metadata, ...); `{{ table.name }}` is assets, asset_events or sync_runs, `{{ spec }}` the default."
    )
    return resolver


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

    api_key_env_var: Annotated[
        str,
        dg.Resolver.default(
            description="NAME of the environment variable holding the API key (the key never goes in YAML)."
        ),
    ] = "ROUGHY_API_KEY"
    base_url: Annotated[
        str, dg.Resolver.default(description="Roughy API base URL, without /v1 (e.g. staging, an emulator).")
    ] = DEFAULT_BASE_URL
    duckdb_path: Annotated[
        str,
        dg.Resolver.default(description="The DuckDB file to sync into (relative to the project root)."),
    ] = DEFAULT_DUCKDB_PATH
    project_ids: Annotated[
        list[str] | None,
        dg.Resolver.default(
            description="Project UUIDs to sync and watch, as static partitions (no discovery). "
            "Omit to discover every project of the account into the dynamic `roughy_projects` partitions."
        ),
    ] = None
    sync_cron: Annotated[
        str, dg.Resolver.default(description="Cron of roughy_sync_schedule (incremental, one run for all).")
    ] = DEFAULT_SYNC_CRON
    reconcile_cron: Annotated[
        str, dg.Resolver.default(description="Cron of roughy_reconcile_schedule (every list re-read whole).")
    ] = DEFAULT_RECONCILE_CRON
    schedules_running: Annotated[
        bool, dg.Resolver.default(description="Start the sync and reconcile schedules switched on.")
    ] = False
    discovery_sensor_running: Annotated[
        bool, dg.Resolver.default(description="Start roughy_project_discovery_sensor switched on.")
    ] = False
    state_sensor_running: Annotated[
        bool, dg.Resolver.default(description="Start roughy_asset_state_sensor switched on.")
    ] = False
    state_jobs: Annotated[
        dict[str, str] | None,
        dg.Resolver.default(
            description='Jobs reacting to an asset entering a state, e.g. {ready: "my_pkg.jobs:render_job"}.'
        ),
    ] = None
    concurrency: Annotated[
        int,
        dg.Resolver.default(
            description="Listing requests kept in flight while a sync reads a list whole (halved after 429s)."
        ),
    ] = DEFAULT_CONCURRENCY
    max_requests: Annotated[
        int | None,
        dg.Resolver.default(
            description="Cap on one sync's listing requests: reaching it ends the sync unverified."
        ),
    ] = None
    translation: Annotated[TranslationFn[RoughyTable] | None, _translation_resolver()] = None

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
            project_ids=parse_project_ids(",".join(self.project_ids or [])),
            sync_cron=self.sync_cron,
            reconcile_cron=self.reconcile_cron,
            api_key_env_var=self.api_key_env_var,
            concurrency=self.concurrency,
            max_requests=self.max_requests,
        )

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        """The same definitions as `definitions.py` builds, through `build_roughy_defs`."""
        settings = self.settings()
        jobs = {state: _load_job(reference) for state, reference in (self.state_jobs or {}).items()}
        if not Path(settings.duckdb_path).is_absolute():  # relative to the project, not to the cwd
            settings = replace(settings, duckdb_path=str(context.project_root / settings.duckdb_path))
        return build_roughy_defs(
            settings,
            state_jobs=jobs or None,
            translator=TranslationFnTranslator(self.translation) if self.translation else None,
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

"""Headless demo: discover the account's projects, sync each partition through Dagster, show DuckDB's view."""

from __future__ import annotations

import os

import dagster as dg

from .dagster_layer.assets import PROJECTS_NAME
from .dagster_layer.definitions import build_roughy_defs
from .dagster_layer.scheduling import partition_range_request
from .dagster_layer.settings import RoughySettings
from .store import AssetStore


def main() -> None:
    """Run a discovery tick and a sync run per project on the persistent instance; print a summary."""
    settings = RoughySettings.from_env()
    defs = build_roughy_defs(settings)
    with dg.DagsterInstance.get() as instance:
        sensor = defs.resolve_sensor_def("roughy_project_discovery_sensor")
        resources = defs.get_repository_def().get_top_level_resources()
        with dg.build_sensor_context(instance=instance, resources=resources, definitions=defs) as context:
            result = sensor(context)
        assert isinstance(result, dg.SensorResult)
        for request in result.dynamic_partitions_requests or []:
            instance.add_dynamic_partitions(PROJECTS_NAME, list(request.partition_keys or []))
        projects = instance.get_dynamic_partitions(PROJECTS_NAME)
        print(f"projects: {', '.join(projects)}")
        job = defs.resolve_job_def("roughy_sync_job")
        cycle = partition_range_request(projects, run_key=None)  # what a schedule tick launches
        run = job.execute_in_process(instance=instance, tags=cycle.tags)
        outcome = "ok" if run.success else "FAILED"
        print(f"synced {len(projects)} projects in one run: {outcome} (run {run.run_id})")
    with AssetStore(settings.duckdb_path).connect(read_only=True) as connection:
        rows = connection.execute(
            "SELECT project_id, state, count(*) FROM roughy.assets WHERE deleted_at IS NULL "
            "GROUP BY ALL ORDER BY 1, 2"
        ).fetchall()
    print(f"\nroughy.assets in {os.path.abspath(settings.duckdb_path)}:")
    for project_id, state, count in rows:
        print(f"  {project_id}  {state:<16} {count:>6}")


if __name__ == "__main__":
    main()

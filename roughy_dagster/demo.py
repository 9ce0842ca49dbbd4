"""Headless demo: discover the account's projects, sync each partition through Dagster, show DuckDB's view."""

from __future__ import annotations

import os

import dagster as dg

from .client import STATE_FLOW
from .dagster_layer.assets import PROJECTS_NAME
from .dagster_layer.definitions import build_roughy_defs
from .dagster_layer.scheduling import partition_range_request
from .dagster_layer.settings import RoughySettings
from .store.publish import latest_path
from .store.readers import connect


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
    print(
        f"\nroughy.assets in {os.path.abspath(latest_path(settings.duckdb_path))} (what readers open): "
        "live assets per project and state\n"
    )
    print(summary_table(settings.duckdb_path))


def summary_table(database: str) -> str:
    """Live assets per project (rows) and state (columns), with totals and each project's last sync."""
    states = [state.value for state in STATE_FLOW]
    with connect(database) as connection:  # the readers' copy: never in a sync's way
        counts = connection.execute(
            "SELECT CAST(project_id AS VARCHAR), state, count(*) FROM roughy.assets "
            "WHERE deleted_at IS NULL GROUP BY ALL"
        ).fetchall()
        last_sync = dict(
            connection.execute(
                "SELECT CAST(project_id AS VARCHAR), "
                "arg_max(mode || ', ' || requests || ' requests', sync_id) FROM roughy.sync_runs GROUP BY ALL"
            ).fetchall()
        )
    table: dict[str, dict[str, int]] = {}
    for project, state, count in counts:
        table.setdefault(project, dict.fromkeys(states, 0))[state] = int(count)
    header = ["project", *states, "total", "last sync"]
    rows = [
        [project, *map(str, by_state.values()), str(sum(by_state.values())), last_sync.get(project, "")]
        for project, by_state in sorted(table.items())
    ]
    totals = [sum(by_state[state] for by_state in table.values()) for state in states]
    rows.append(["all projects", *map(str, totals), str(sum(totals)), ""])
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(
            cell.ljust(width) if i in (0, len(cells) - 1) else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(header), rule, *map(line, rows[:-1]), rule, line(rows[-1])])


if __name__ == "__main__":
    main()

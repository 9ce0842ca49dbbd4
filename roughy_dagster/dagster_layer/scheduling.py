"""The sync job, its schedules (incremental sync and the periodic full reconcile) and project discovery."""

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import dagster as dg

from ..client import STATE_FLOW, RoughyClient
from ..client.client import MAX_PAGE_SIZE
from ..sync.model import created_us
from .assets import PROJECTS, PROJECTS_NAME, roughy_assets
from .resource import RoughyResource

if TYPE_CHECKING:
    from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

SYNC_JOB_NAME = "roughy_sync_job"
DISCOVERY_OVERLAP_US = 600 * 1_000_000
DISCOVERY_TICK_BUDGET_SECONDS = 40.0


def build_sync_job(assets: dg.AssetsDefinition = roughy_assets) -> "UnresolvedAssetJobDefinition":
    """A job that syncs the project partitions of the synced-assets table it is launched for."""
    return dg.define_asset_job(
        SYNC_JOB_NAME,
        selection=[assets],
        partitions_def=PROJECTS,
        description="Sync Roughy projects (one partition each) into DuckDB.",
    )


def known_projects(instance: dg.DagsterInstance, configured: Sequence[str]) -> list[str]:
    """Every project partition, after adding the configured ones the instance does not know yet."""
    present = instance.get_dynamic_partitions(PROJECTS_NAME)
    missing = [project for project in configured if project not in present]
    if missing:
        instance.add_dynamic_partitions(PROJECTS_NAME, missing)
    return [*present, *missing]


def build_sync_schedules(
    job: "UnresolvedAssetJobDefinition",
    *,
    configured_projects: Sequence[str],
    sync_cron: str,
    reconcile_cron: str,
    default_status: dg.DefaultScheduleStatus = dg.DefaultScheduleStatus.STOPPED,
    op_name: str = roughy_assets.op.name,
) -> list[dg.ScheduleDefinition]:
    """`roughy_sync_schedule` (incremental, every project) and `roughy_reconcile_schedule` (full re-read)."""

    def project_schedule(name: str, cron: str, full_refresh: bool, description: str) -> dg.ScheduleDefinition:
        mode = "full" if full_refresh else "incremental"

        @dg.schedule(
            name=name, cron_schedule=cron, job=job, default_status=default_status, description=description
        )
        def evaluate(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest]:
            stamp = (
                context.scheduled_execution_time.isoformat() if context.scheduled_execution_time else "now"
            )
            return [
                dg.RunRequest(
                    run_key=f"{name}:{project}:{stamp}",
                    partition_key=project,
                    run_config={"ops": {op_name: {"config": {"full_refresh": full_refresh}}}},
                    tags={"roughy/project_id": project, "roughy/mode": mode},
                )
                for project in known_projects(context.instance, configured_projects)
            ]

        return evaluate

    return [
        project_schedule(
            "roughy_sync_schedule",
            sync_cron,
            False,
            "Incrementally sync every known Roughy project into DuckDB.",
        ),
        project_schedule(
            "roughy_reconcile_schedule",
            reconcile_cron,
            True,
            "Safety net: re-read every project's listing whole and confirm deletions.",
        ),
    ]


@dataclass
class DiscoveryCursor:
    """Where project discovery stands: a first walk in progress, then a watermark of the newest asset seen."""

    watermark_us: int | None = None
    walk_state: int = 0
    walk_offset: int = 0
    walk_newest_us: int | None = None

    @classmethod
    def parse(cls, raw: str | None) -> "DiscoveryCursor":
        """Read a cursor; a missing or unreadable one starts over (run keys keep that from firing twice)."""
        if not raw:
            return cls()
        try:
            return cls(**json.loads(raw))
        except (TypeError, ValueError):
            return cls()

    def dump(self) -> str:
        """The cursor as JSON."""
        return json.dumps(asdict(self), sort_keys=True)


def build_project_discovery_sensor(
    job: "UnresolvedAssetJobDefinition",
    *,
    configured_projects: Sequence[str] = (),
    minimum_interval_seconds: int = 300,
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.STOPPED,
    tick_budget_seconds: float = DISCOVERY_TICK_BUDGET_SECONDS,
) -> dg.SensorDefinition:
    """`roughy_project_discovery_sensor`: add a partition (and run a first sync) for each new project.

    The first ticks walk every state list of the whole account (resuming across ticks within the tick
    deadline); later ticks read only the heads, down to the newest asset seen minus an overlap.
    """

    @dg.sensor(
        name="roughy_project_discovery_sensor",
        job=job,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status,
        description="Finds Roughy project ids in the listing and adds them as roughy_projects partitions.",
    )
    def roughy_project_discovery_sensor(
        context: dg.SensorEvaluationContext, roughy: RoughyResource
    ) -> dg.SensorResult:
        cursor = DiscoveryCursor.parse(context.cursor)
        found: set[str] = set(configured_projects)
        deadline = time.monotonic() + tick_budget_seconds
        with roughy.get_client() as client:
            if cursor.watermark_us is None:
                _walk(client, cursor, found, deadline)
            else:
                _read_heads(client, cursor, found)
        present = set(context.instance.get_dynamic_partitions(PROJECTS_NAME))
        new = sorted(found - present)
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(
                    run_key=f"discovered:{project}",
                    partition_key=project,
                    tags={"roughy/project_id": project},
                )
                for project in new
            ],
            dynamic_partitions_requests=[PROJECTS.build_add_request(new)] if new else [],
            cursor=cursor.dump(),
        )

    return roughy_project_discovery_sensor


def _walk(client: RoughyClient, cursor: DiscoveryCursor, found: set[str], deadline: float) -> None:
    """Page through every state list of the account, from where the cursor stands, until the deadline."""
    while cursor.walk_state < len(STATE_FLOW):
        if time.monotonic() > deadline:
            return
        page = client.list_assets(
            state=STATE_FLOW[cursor.walk_state], limit=MAX_PAGE_SIZE, offset=cursor.walk_offset
        )
        for item in page.items:
            found.add(str(item.project_id))
            moment = created_us(item.created_at)
            cursor.walk_newest_us = max(cursor.walk_newest_us or moment, moment)
        cursor.walk_offset += len(page.items)
        if not page.items or cursor.walk_offset >= page.total:
            cursor.walk_state, cursor.walk_offset = cursor.walk_state + 1, 0
    cursor.watermark_us = cursor.walk_newest_us or 0


def _read_heads(client: RoughyClient, cursor: DiscoveryCursor, found: set[str]) -> None:
    """Read each state list from the top down to the watermark minus an overlap."""
    assert cursor.watermark_us is not None
    stop_below = cursor.watermark_us - DISCOVERY_OVERLAP_US
    newest = cursor.watermark_us
    for state in STATE_FLOW:
        offset = 0
        while True:
            page = client.list_assets(state=state, limit=MAX_PAGE_SIZE, offset=offset)
            for item in page.items:
                found.add(str(item.project_id))
                newest = max(newest, created_us(item.created_at))
            offset += len(page.items)
            if not page.items or offset >= page.total or created_us(page.items[-1].created_at) < stop_below:
                break
    cursor.watermark_us = newest

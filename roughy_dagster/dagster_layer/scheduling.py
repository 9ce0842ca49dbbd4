"""The sync job, its schedules (incremental sync and the periodic full reconcile) and project discovery."""

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import dagster as dg

from ..client import STATE_FLOW, AssetPage, AssetState, RoughyAPIError, RoughyClient
from ..client.paging import Fetch, ListWalk, RequestBudget, WalkResult
from ..sync.model import created_us
from .assets import PROJECTS, PROJECTS_NAME, SYNC_OP_NAME, roughy_sync_assets
from .resource import RoughyResource

if TYPE_CHECKING:
    from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

SYNC_JOB_NAME = "roughy_sync_job"
DISCOVERY_OVERLAP_US = 600 * 1_000_000
DISCOVERY_TICK_BUDGET_SECONDS = 40.0
DISCOVERY_MAX_REQUESTS = 2_000
"""Listing requests one discovery tick may make, besides its time budget (resumed next tick)."""
PARTITION_RANGE_START_TAG = "dagster/asset_partition_range_start"
PARTITION_RANGE_END_TAG = "dagster/asset_partition_range_end"
"""Dagster's tags for a run over a range of partitions (what a single-run backfill launches)."""


def build_sync_job(assets: dg.AssetsDefinition = roughy_sync_assets) -> "UnresolvedAssetJobDefinition":
    """`roughy_sync_job`: the named job that syncs the project partitions it is launched for.

    Its one step runs in the run's own process (`in_process_executor`): a step process of its own (the
    default multiprocess executor) would only add a Python start and Dagster's imports to every cycle.
    """
    return dg.define_asset_job(
        SYNC_JOB_NAME,
        selection=dg.AssetSelection.assets(assets) | dg.AssetSelection.checks_for_assets(assets),
        description="Sync Roughy projects into DuckDB: any set of project partitions in one run.",
        executor_def=dg.in_process_executor,
    )


def partition_range_request(
    partition_keys: Sequence[str],
    *,
    run_key: str | None,
    run_config: dict[str, Any] | None = None,
    tags: dict[str, str] | None = None,
) -> dg.RunRequest:
    """One run request for the contiguous partitions `partition_keys` (in the definition's order)."""
    return dg.RunRequest(
        run_key=run_key,
        run_config=run_config or {},
        tags={
            **(tags or {}),
            PARTITION_RANGE_START_TAG: partition_keys[0],
            PARTITION_RANGE_END_TAG: partition_keys[-1],
        },
    )


def build_sync_schedules(
    job: "UnresolvedAssetJobDefinition",
    *,
    partitions_def: dg.PartitionsDefinition = PROJECTS,
    sync_cron: str,
    reconcile_cron: str,
    default_status: dg.DefaultScheduleStatus = dg.DefaultScheduleStatus.STOPPED,
    op_name: str = SYNC_OP_NAME,
) -> list[dg.ScheduleDefinition]:
    """`roughy_sync_schedule` (incremental) and `roughy_reconcile_schedule` (full re-read).

    Each tick launches ONE run over every project partition (a partition range): one account sync,
    and a materialization recorded per project partition.
    """

    def project_schedule(name: str, cron: str, full_refresh: bool, description: str) -> dg.ScheduleDefinition:
        mode = "full" if full_refresh else "incremental"

        @dg.schedule(
            name=name, cron_schedule=cron, job=job, default_status=default_status, description=description
        )
        def evaluate(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
            keys = partitions_def.get_partition_keys(dynamic_partitions_store=context.instance)
            if not keys:
                return dg.SkipReason(
                    "no project partitions yet: set ROUGHY_PROJECT_IDS or let "
                    "roughy_project_discovery_sensor add them"
                )
            stamp = (
                context.scheduled_execution_time.isoformat() if context.scheduled_execution_time else "now"
            )
            return partition_range_request(
                keys,
                run_key=f"{name}:{stamp}",
                run_config={"ops": {op_name: {"config": {"full_refresh": full_refresh}}}},
                tags={"roughy/mode": mode, "roughy/projects": str(len(keys))},
            )

        return evaluate

    return [
        project_schedule(
            "roughy_sync_schedule",
            sync_cron,
            False,
            "Incrementally sync every Roughy project partition into DuckDB, in one run.",
        ),
        project_schedule(
            "roughy_reconcile_schedule",
            reconcile_cron,
            True,
            "Safety net: re-read every project's listing whole and confirm deletions, in one run.",
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


def build_roughy_project_discovery_sensor(
    job: "UnresolvedAssetJobDefinition",
    *,
    minimum_interval_seconds: int = 300,
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.STOPPED,
    tick_budget_seconds: float = DISCOVERY_TICK_BUDGET_SECONDS,
) -> dg.SensorDefinition:
    """`roughy_project_discovery_sensor`: add a `roughy_projects` partition for each new project, and one
    run that syncs the projects found in a tick (they are the last partitions, hence one range).

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
        found: set[str] = set()
        # The client's deadline is the tick's: no call (retries and Retry-After waits included) outlives
        # it, and every loop below stops when it has passed. The cursor keeps what was done.
        budget = RequestBudget(DISCOVERY_MAX_REQUESTS)
        with roughy.get_client() as client, client.deadline(tick_budget_seconds):
            try:
                if cursor.watermark_us is None:
                    _walk(client, cursor, found, budget, context.log.warning)
                else:
                    _read_heads(client, cursor, found, budget, context.log.warning)
            except RoughyAPIError as error:
                if not error.out_of_time:
                    raise
                context.log.info(f"out of time ({error}); discovery continues next tick")
        present = set(context.instance.get_dynamic_partitions(PROJECTS_NAME))
        new = sorted(found - present)
        return dg.SensorResult(
            run_requests=[
                partition_range_request(
                    new,
                    run_key=f"discovered:{new[0]}:{new[-1]}:{len(new)}",
                    tags={"roughy/projects": str(len(new))},
                )
            ]
            if new
            else [],
            dynamic_partitions_requests=[PROJECTS.build_add_request(new)] if new else [],
            cursor=cursor.dump(),
        )

    return roughy_project_discovery_sensor


def _out_of_time(client: RoughyClient) -> bool:
    left = client.time_left()
    return left is not None and left <= 0


def _state_list(client: RoughyClient, state: AssetState) -> Fetch:
    """The paging primitive's `fetch` for one state list of the whole account."""

    def fetch(offset: int, limit: int) -> AssetPage:
        return client.list_assets(state=state, limit=limit, offset=offset)

    return fetch


def _doubt(warn: Callable[[str], None], state: AssetState, result: WalkResult) -> None:
    if result.reason:
        warn(f"project discovery, {state.value} list: {result.reason}")


def _walk(
    client: RoughyClient,
    cursor: DiscoveryCursor,
    found: set[str],
    budget: RequestBudget,
    warn: Callable[[str], None],
) -> None:
    """Walk every state list of the account (the paging primitive), from where the cursor stands.

    Stops at the tick's deadline or request budget. The cursor moves with each page (to its last item,
    which the next page overlaps), so a tick cut short resumes there next time."""
    while cursor.walk_state < len(STATE_FLOW):
        state = STATE_FLOW[cursor.walk_state]
        walk = ListWalk(_state_list(client, state), budget=budget, start=cursor.walk_offset)
        for read in walk:
            for item in read.items:
                found.add(str(item.project_id))
                moment = created_us(item.created_at)
                cursor.walk_newest_us = max(cursor.walk_newest_us or moment, moment)
            if read.items:
                cursor.walk_offset = read.offset + len(read.items) - 1
            if _out_of_time(client):
                return
        if budget.exhausted and not walk.result.reached_end:
            return  # resumed next tick from the cursor
        _doubt(warn, state, walk.result)
        cursor.walk_state, cursor.walk_offset = cursor.walk_state + 1, 0
    cursor.watermark_us = cursor.walk_newest_us or 0


def _read_heads(
    client: RoughyClient,
    cursor: DiscoveryCursor,
    found: set[str],
    budget: RequestBudget,
    warn: Callable[[str], None],
) -> None:
    """Read each state list (the paging primitive) from the top down to the watermark minus an overlap.

    The watermark moves only once every head was read, so a tick cut short by its deadline or request
    budget reads them again next time (the projects it found are kept)."""
    assert cursor.watermark_us is not None
    newest = cursor.watermark_us
    for state in STATE_FLOW:
        walk = ListWalk(
            _state_list(client, state),
            budget=budget,
            stop_below_us=cursor.watermark_us - DISCOVERY_OVERLAP_US,
        )
        for read in walk:
            for item in read.items:
                found.add(str(item.project_id))
                newest = max(newest, created_us(item.created_at))
            if _out_of_time(client):
                return
        if budget.exhausted and not walk.result.complete:
            return
        _doubt(warn, state, walk.result)
    cursor.watermark_us = newest


build_project_discovery_sensor = build_roughy_project_discovery_sensor
"""The former name of `build_roughy_project_discovery_sensor`, kept as an alias."""

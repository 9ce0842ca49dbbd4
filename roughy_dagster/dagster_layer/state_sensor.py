"""`build_roughy_state_sensor`: a run for each asset that newly becomes `ready` or `failed` (or other states).

The watching itself is `roughy_dagster.sync.watch`; where its memory lives is `sensor_memory`. This module
turns what entered a state into run requests: one per asset (capped per tick, the rest carried over), or
one per state and tick with the whole batch; every run tagged for Dagster's run retries.
"""

import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

import dagster as dg

from ..client import AssetSummary, RoughyAPIError
from ..fields import API_FIELD_NAMES, check_fields
from ..sync.model import created_us
from ..sync.watch import StateWatcher, WatchState, watched_states
from .resource import RoughyResource
from .sensor_memory import SensorMemory

ALL_PROJECTS = "*"
DEFAULT_HANDLER_OP = "handle_roughy_asset"
ACCOUNT_WIDE_ABOVE = 3
"""With more configured projects than this, the sensor watches the account-wide lists and filters by
project: a quiet tick then costs one request per state list whatever the number of projects."""
MAX_RETRIES_TAG = "dagster/max_retries"


class RoughyAssetEvent(dg.Config):
    """An asset that entered a watched state, as the state sensor passes it to the run it launches."""

    id: str
    project_id: str
    state: str
    type: str | None = None
    extension: str | None = None
    size_bytes: int | None = None
    content_type: str | None = None
    duration_seconds: str | None = None
    language: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    created_at: str = ""
    upload_url: str | None = None


check_fields("RoughyAssetEvent", RoughyAssetEvent.model_fields)


def asset_event(asset: AssetSummary) -> dict[str, Any]:
    """The run-config form of `RoughyAssetEvent` for an asset (every field of `roughy_dagster.fields`)."""
    return {name: _config_value(getattr(asset, name)) for name in API_FIELD_NAMES}


def _config_value(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, StrEnum):
        return value.value
    return value


class RoughyAssetBatch(dg.Config):
    """The assets that entered one state since the previous batch (oldest change first), for batch runs."""

    events: list[RoughyAssetEvent]


def build_roughy_state_sensor(
    *,
    job: dg.JobDefinition | None = None,
    jobs_by_state: Mapping[str, dg.JobDefinition] | None = None,
    states: Sequence[str] = ("ready", "failed"),
    project_ids: Sequence[str] | None = None,
    name: str = "roughy_asset_state_sensor",
    minimum_interval_seconds: int = 30,
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.STOPPED,
    handler_op: str = DEFAULT_HANDLER_OP,
    replay_since: datetime | None = None,
    tick_budget_seconds: float = 40.0,
    batch: bool = False,
    max_runs_per_tick: int = 100,
    max_batch_size: int = 1000,
    run_retries: int = 3,
    overlap_seconds: float = 600.0,
) -> dg.SensorDefinition:
    """A sensor that launches a run for the assets that newly enter one of `states`.

    Give one `job` for every state, or `jobs_by_state` (e.g. {"ready": render_job, "failed": alert_job}).

    - Per asset (default): one run per asset and state, run key `<asset id>:<state>` (so a restart, a code
      reload or a reset cursor never launches a second run for the same change); the op `handler_op` gets
      the asset as config (a `RoughyAssetEvent`) and the run gets `roughy/*` tags. At most
      `max_runs_per_tick` runs a tick; the rest is carried over to the next ticks, oldest first.
    - `batch=True`: at most one run per state and tick, whose `handler_op` gets a `RoughyAssetBatch`
      (up to `max_batch_size` events; more wait for the next tick). Run key `batch:<state>:<digest of ids>`.

    Every run is tagged `dagster/max_retries` = `run_retries`, which Dagster honours when the instance
    enables `run_retries` (the shipped `.dagster_home/dagster.yaml` does): a reaction that fails (a lock,
    a crash) is launched again. The first tick starts from the present: assets already in a watched state
    never fire, unless created at or after `replay_since`. With more than three `project_ids`, the
    account-wide lists are watched and filtered by project. A tick ends within `tick_budget_seconds` and
    fires what it found; the rest is found on the next tick. Never opens the DuckDB file. The cursor is a
    small pointer; the watcher's memory lives in the instance's key-value store (see `sensor_memory`).
    Raises `ValueError` when a state has no job, a state name is unknown or a limit is not positive.
    """
    watched = watched_states(states)
    targets = dict(jobs_by_state or {})
    if job is not None:
        targets = {state.value: job for state in watched} | targets
    missing = [state.value for state in watched if state.value not in targets]
    if missing:
        raise ValueError(f"no job to run for state(s) {', '.join(missing)}: pass job= or jobs_by_state=")
    for label, value in (("max_runs_per_tick", max_runs_per_tick), ("max_batch_size", max_batch_size)):
        if value < 1:
            raise ValueError(f"{label} is {value}: give a positive number")
    if run_retries < 0:
        raise ValueError(f"run_retries is {run_retries}: give 0 (no retry) or more")
    configured = [str(p) for p in project_ids] if project_ids else []
    if not configured:
        scopes: list[tuple[str, str | None, frozenset[str] | None]] = [(ALL_PROJECTS, None, None)]
    elif len(configured) > ACCOUNT_WIDE_ABOVE:
        scopes = [(ALL_PROJECTS, None, frozenset(configured))]
    else:
        scopes = [(project, project, None) for project in configured]
    replay_us = created_us(replay_since) if replay_since is not None else None

    @dg.sensor(
        name=name,
        jobs=list({id(j): j for j in targets.values()}.values()),
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status,
        description=f"Launches a run for each Roughy asset that newly becomes {' or '.join(states)}.",
    )
    def roughy_state_sensor(context: dg.SensorEvaluationContext, roughy: RoughyResource) -> dg.SensorResult:
        memory = SensorMemory(context, name)
        loaded = memory.load(context.cursor)
        if loaded.problem is not None:
            context.log.warning(
                f"{name}: {loaded.problem}; replaced by a safe start: "
                + (
                    "reporting what was created after each scope's last watermark"
                    if loaded.replay_since_us
                    else "starting from the present"
                )
            )
        states_now: dict[str, WatchState] = dict(loaded.scopes)
        queue = list(loaded.queue)
        queued = {(event["id"], event["state"]) for event in queue}
        # The client's deadline is the tick's: no call (retries and Retry-After waits included) outlives it.
        with roughy.get_client() as client, client.deadline(tick_budget_seconds):
            for scope, project_id, only in scopes:
                previous = states_now.get(scope)
                replay = replay_us
                if previous is None and scope in loaded.replay_since_us:
                    replay = loaded.replay_since_us[scope] + 1  # what was created after the last tick
                watcher = StateWatcher(
                    client,
                    project_id=project_id,
                    watched=watched,
                    budget_seconds=max(0.0, client.time_left() or 0.0),
                    replay_since_us=replay,
                    project_ids=only,
                    overlap_seconds=overlap_seconds,
                    clock=client.clock,
                )
                try:
                    result = watcher.tick(previous)
                except RoughyAPIError as error:
                    if not error.out_of_time:
                        raise
                    context.log.warning(f"scope {scope}: out of time ({error}); continuing next tick")
                    break
                states_now[scope] = result.state
                for asset in result.entered:
                    if (asset.id, asset.state.value) not in queued:
                        queued.add((asset.id, asset.state.value))
                        queue.append(asset_event(asset))
                context.log.info(
                    f"scope {scope}: {len(result.entered)} new entries, {result.requests} requests"
                    + ("" if result.complete else " (out of time: continuing next tick)")
                )
        if batch:
            run_requests, queue = _batch_requests(queue, targets, handler_op, max_batch_size, run_retries)
        else:
            now, queue = queue[:max_runs_per_tick], queue[max_runs_per_tick:]
            run_requests = [_run_request(event, targets, handler_op, run_retries) for event in now]
        if queue:
            context.log.info(f"{len(queue)} entries carried over to the next tick")
        stale = set(states_now) - {scope for scope, _, _ in scopes}
        for scope in stale:  # a scope no longer configured is forgotten
            del states_now[scope]
        return dg.SensorResult(run_requests=run_requests, cursor=memory.save(loaded, states_now, queue))

    return roughy_state_sensor


def _tags(run_retries: int) -> dict[str, str]:
    return {MAX_RETRIES_TAG: str(run_retries)} if run_retries else {}


def _run_request(
    event: Mapping[str, Any], targets: Mapping[str, dg.JobDefinition], handler_op: str, run_retries: int
) -> dg.RunRequest:
    tags = _tags(run_retries) | {
        f"roughy/{key}": str(value)
        for key, value in (
            ("asset_id", event["id"]),
            ("project_id", event["project_id"]),
            ("state", event["state"]),
            ("error_code", event["error_code"]),
        )
        if value is not None
    }
    return dg.RunRequest(
        run_key=f"{event['id']}:{event['state']}",
        job_name=targets[event["state"]].name,
        run_config={"ops": {handler_op: {"config": dict(event)}}},
        tags=tags,
    )


def _batch_requests(
    queue: list[dict[str, Any]],
    targets: Mapping[str, dg.JobDefinition],
    handler_op: str,
    max_batch_size: int,
    run_retries: int,
) -> tuple[list[dg.RunRequest], list[dict[str, Any]]]:
    """One run per state with up to `max_batch_size` of its events; the rest stays queued."""
    requests: list[dg.RunRequest] = []
    taken: set[int] = set()
    for state in dict.fromkeys(event["state"] for event in queue):
        chosen = [i for i, event in enumerate(queue) if event["state"] == state][:max_batch_size]
        taken.update(chosen)
        events = [queue[i] for i in chosen]
        digest = hashlib.sha256("\n".join(sorted(e["id"] for e in events)).encode()).hexdigest()[:20]
        requests.append(
            dg.RunRequest(
                run_key=f"batch:{state}:{digest}",
                job_name=targets[state].name,
                run_config={"ops": {handler_op: {"config": {"events": events}}}},
                tags=_tags(run_retries) | {"roughy/state": state, "roughy/batch_size": str(len(events))},
            )
        )
    return requests, [event for i, event in enumerate(queue) if i not in taken]

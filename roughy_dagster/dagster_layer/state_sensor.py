"""`build_roughy_state_sensor`: one run per asset that newly becomes `ready` or `failed` (or other states)."""

import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

import dagster as dg

from ..client import AssetState, AssetSummary
from ..fields import API_FIELD_NAMES, check_fields
from ..sync.model import created_us
from ..sync.watch import StateWatcher, WatchState, dumps, loads
from .resource import RoughyResource

ALL_PROJECTS = "*"
DEFAULT_HANDLER_OP = "handle_roughy_asset"


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
) -> dg.SensorDefinition:
    """A sensor that launches one run for each asset that newly enters one of `states`.

    Give one `job` for every state, or `jobs_by_state` (e.g. {"ready": render_job, "failed": alert_job}).
    The run key is `<asset id>:<state>`, so a restart, a code reload or a reset cursor never launches a
    second run for the same change. The asset's fields go to the run as config of the op `handler_op`
    (a `RoughyAssetEvent`) and as `roughy/*` tags. The first tick starts from the present; `replay_since`
    also fires for assets created since then. Never opens the DuckDB file.
    """
    watched = [AssetState(state) for state in states]
    targets = dict(jobs_by_state or {})
    if job is not None:
        targets = {state.value: job for state in watched} | targets
    missing = [state.value for state in watched if state.value not in targets]
    if missing:
        raise ValueError(f"no job to run for state(s) {', '.join(missing)}: pass job= or jobs_by_state=")
    scopes = [str(p) for p in project_ids] if project_ids else [ALL_PROJECTS]
    replay_us = created_us(replay_since) if replay_since is not None else None

    @dg.sensor(
        name=name,
        jobs=list({id(j): j for j in targets.values()}.values()),
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status,
        description=f"Launches a run for each Roughy asset that newly becomes {' or '.join(states)}.",
    )
    def roughy_state_sensor(context: dg.SensorEvaluationContext, roughy: RoughyResource) -> dg.SensorResult:
        cursor = loads(context.cursor)
        deadline = time.monotonic() + tick_budget_seconds
        run_requests: list[dg.RunRequest] = []
        with roughy.get_client() as client:
            for scope in scopes:
                watcher = StateWatcher(
                    client,
                    project_id=None if scope == ALL_PROJECTS else scope,
                    watched=watched,
                    budget_seconds=max(0.0, deadline - time.monotonic()),
                    replay_since_us=replay_us,
                )
                result = watcher.tick(cursor.get(scope) or WatchState())
                cursor[scope] = result.state
                context.log.info(
                    f"scope {scope}: {len(result.entered)} new entries, {result.requests} requests"
                    + ("" if result.complete else " (out of time: continuing next tick)")
                )
                run_requests += [_run_request(asset, targets, handler_op) for asset in result.entered]
        return dg.SensorResult(run_requests=run_requests, cursor=dumps(cursor))

    return roughy_state_sensor


def _run_request(
    asset: AssetSummary, targets: Mapping[str, dg.JobDefinition], handler_op: str
) -> dg.RunRequest:
    event = asset_event(asset)
    tags = {
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
        run_config={"ops": {handler_op: {"config": event}}},
        tags=tags,
    )

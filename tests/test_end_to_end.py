"""End to end: the emulator and `dagster dev` as real processes, driven through the GraphQL API."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from roughy_dagster.emulator import Emulator, World

from .conftest import CANARY_KEY
from .helpers import stored_listing, truth

REPO = Path(__file__).resolve().parents[1]
LOCATION = "roughy"
REPOSITORY = "__repository__"
TABLE_KEYS = [{"path": ["roughy", name]} for name in ("assets", "asset_events", "sync_runs")]

REPOSITORY_QUERY = """
{ repositoriesOrError { __typename ... on RepositoryConnection { nodes {
    name location { name }
    jobs { name } sensors { name sensorState { status } } schedules { name }
    assetNodes { assetKey { path } assetChecksOrError { ... on AssetChecks { checks { name } } } }
} } ... on PythonError { message } } }
"""

ADD_PARTITION = """
mutation($selector: RepositorySelector!, $name: String!, $key: String!) {
  addDynamicPartition(repositorySelector: $selector, partitionsDefName: $name, partitionKey: $key) {
    __typename ... on PythonError { message } ... on UnauthorizedError { message }
  }
}
"""

LAUNCH_RUN = """
mutation($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } } ... on InvalidSubsetError { message }
  }
}
"""

RUN_QUERY = """
query($runId: ID!) { runOrError(runId: $runId) { __typename ... on Run { status } } }
"""

RUNS_QUERY = """
query($filter: RunsFilter) { runsOrError(filter: $filter) { ... on Runs { results {
    runId jobName status tags { key value } } } } }
"""

BACKFILL = """
mutation($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
  __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message }
  ... on UnauthorizedError { message } } }
"""

BACKFILL_STATUS = """
query($id: String!) {
  partitionBackfillOrError(backfillId: $id) { __typename ... on PartitionBackfill { status } } }
"""

TICKS_QUERY = """
query($selector: SensorSelector!) { sensorOrError(sensorSelector: $selector) { __typename
  ... on Sensor { sensorState { ticks(limit: 5) { status } } } } }
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class DagsterDev:
    """`dagster dev` in its own process group, stopped (the whole group) even when a test fails."""

    def __init__(self, env: dict[str, str], port: int, log: Path) -> None:
        self.url = f"http://127.0.0.1:{port}/graphql"
        self.log = log
        self.log_file = log.open("w")  # closed by stop()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dagster",
                "dev",
                "-w",
                "workspace.yaml",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
            ],
            cwd=REPO,
            env=env,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def query(self, query: str, variables: dict | None = None) -> dict:
        response = httpx.post(self.url, json={"query": query, "variables": variables or {}}, timeout=30)
        response.raise_for_status()
        body = response.json()
        assert "errors" not in body, body
        return body["data"]

    def wait_until_loaded(self, timeout: float = 180) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            try:
                data = self.query(REPOSITORY_QUERY)["repositoriesOrError"]
                if data["__typename"] == "RepositoryConnection" and data["nodes"]:
                    return data["nodes"][0]
            except (httpx.HTTPError, AssertionError):
                pass
            time.sleep(1)
        raise AssertionError("dagster dev did not load the code location:\n" + self.log.read_text()[-3000:])

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # anything the group left behind
        self.log_file.close()


def wait_for(predicate, what: str, timeout: float = 180, every: float = 1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def running(tmp_path):
    world = World.seeded(seed=11, projects=8, assets_per_project=120)
    emulator = Emulator(world, api_key=CANARY_KEY).start()
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / ".dagster_home" / "dagster.yaml", home / "dagster.yaml")
    database = tmp_path / "roughy.duckdb"
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "ROUGHY_API_KEY": CANARY_KEY,
        "ROUGHY_BASE_URL": emulator.base_url,
        "ROUGHY_DUCKDB_PATH": str(database),
        "ROUGHY_AUTOMATION_RUNNING": "1",
        "ROUGHY_SENSOR_INTERVAL_SECONDS": "3",
        "ROUGHY_DISCOVERY_INTERVAL_SECONDS": "3600",
        "ROUGHY_SYNC_CRON": "0 0 1 1 *",
        "ROUGHY_RECONCILE_CRON": "0 0 1 1 *",
    }
    dagster = DagsterDev(env, free_port(), tmp_path / "dagster-dev.log")
    try:
        yield emulator, dagster, database, home
    finally:
        dagster.stop()
        emulator.stop()


def test_ui_materializes_partitions_and_sensors_fire(running):
    emulator, dagster, database, home = running
    world = emulator.world
    repository = dagster.wait_until_loaded()
    assert repository["location"]["name"] == LOCATION
    assert {"roughy_sync_job", "roughy_asset_ready_job", "roughy_asset_failed_job"} <= {
        j["name"] for j in repository["jobs"]
    }
    sensors = {s["name"]: s["sensorState"]["status"] for s in repository["sensors"]}
    assert sensors == {"roughy_project_discovery_sensor": "RUNNING", "roughy_asset_state_sensor": "RUNNING"}
    assert {s["name"] for s in repository["schedules"]} == {
        "roughy_sync_schedule",
        "roughy_reconcile_schedule",
    }
    (asset,) = [a for a in repository["assetNodes"] if a["assetKey"]["path"] == ["roughy", "assets"]]
    assert {c["name"] for c in asset["assetChecksOrError"]["checks"]} == {
        "unique_ids",
        "live_rows_match_remote_totals",
        "per_state_field_rules",
        "values_fit_columns",
        "values_on_contract",
    }

    # Materialize one project partition the way the UI's "Materialize" button does.
    project = world.projects[0]
    selector = {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY}
    added = dagster.query(ADD_PARTITION, {"selector": selector, "name": "roughy_projects", "key": project})
    # (the discovery sensor, running from the start, may have added it already)
    assert added["addDynamicPartition"]["__typename"] in (
        "AddDynamicPartitionSuccess",
        "DuplicateDynamicPartitionError",
    ), added
    launched = dagster.query(
        LAUNCH_RUN,
        {
            "params": {
                "selector": {
                    **selector,
                    "jobName": "roughy_sync_job",
                    "assetSelection": TABLE_KEYS,
                },
                "executionMetadata": {"tags": [{"key": "dagster/partition", "value": project}]},
            }
        },
    )["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]
    status = wait_for(
        lambda: (
            (s := dagster.query(RUN_QUERY, {"runId": run_id})["runOrError"]["status"])
            in ("SUCCESS", "FAILURE")
            and s
        ),
        "the partition run",
    )
    assert status == "SUCCESS", dagster.log.read_text()[-3000:]
    assert stored_listing(database, project) == truth(world, project)

    # The state sensor has looked once (quietly); now assets turn ready and fail.
    sensor_selector = {**selector, "sensorName": "roughy_asset_state_sensor"}
    wait_for(
        lambda: dagster.query(TICKS_QUERY, {"selector": sensor_selector})["sensorOrError"]["sensorState"][
            "ticks"
        ],
        "a first state-sensor tick",
    )
    time.sleep(4)  # let the first tick's baseline be stored
    became_ready = world.add_asset(project, state="ready")
    processing = world.listing(world.projects[1], "processing")[0]["id"]
    world.advance(processing, "failed")

    def reaction_runs():
        runs = dagster.query(
            RUNS_QUERY,
            {"filter": {"tags": [{"key": "dagster/sensor_name", "value": "roughy_asset_state_sensor"}]}},
        )
        results = runs["runsOrError"]["results"]
        done = [r for r in results if r["status"] in ("SUCCESS", "FAILURE")]
        return results if len(done) >= 2 else None

    runs = wait_for(reaction_runs, "two reaction runs")
    assert len(runs) == 2, runs
    by_asset = {next(t["value"] for t in r["tags"] if t["key"] == "roughy/asset_id"): r for r in runs}
    assert by_asset[became_ready.id]["jobName"] == "roughy_asset_ready_job"
    assert by_asset[processing]["jobName"] == "roughy_asset_failed_job"
    assert all(r["status"] == "SUCCESS" for r in runs), dagster.log.read_text()[-3000:]
    keys = sorted(next(t["value"] for t in r["tags"] if t["key"] == "dagster/run_key") for r in runs)
    assert keys == sorted([f"{became_ready.id}:ready", f"{processing}:failed"])
    # A backfill of all 8 project partitions at once: one run (single-run backfill policy), no failure.
    backfill = dagster.query(
        BACKFILL,
        {"params": {"assetSelection": TABLE_KEYS, "partitionNames": world.projects}},
    )["launchPartitionBackfill"]
    assert backfill["__typename"] == "LaunchBackfillSuccess", backfill
    status = wait_for(
        lambda: (
            (
                s := dagster.query(BACKFILL_STATUS, {"id": backfill["backfillId"]})[
                    "partitionBackfillOrError"
                ]["status"]
            )
            in ("COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED")
            and s
        ),
        "the 8-partition backfill",
        timeout=300,
    )
    assert status in ("COMPLETED", "COMPLETED_SUCCESS"), dagster.log.read_text()[-3000:]
    failed = dagster.query(RUNS_QUERY, {"filter": {"statuses": ["FAILURE"]}})["runsOrError"]["results"]
    assert failed == [], failed
    for project_id in world.projects:
        assert stored_listing(database, project_id) == truth(world, project_id)

    time.sleep(8)  # more ticks: nothing fires twice
    assert (
        len(
            dagster.query(
                RUNS_QUERY,
                {"filter": {"tags": [{"key": "dagster/sensor_name", "value": "roughy_asset_state_sensor"}]}},
            )["runsOrError"]["results"]
        )
        == 2
    )
    # The key never reached the logs, the instance's storage (event log, run config, compute logs) or DuckDB.
    assert CANARY_KEY not in dagster.log.read_text()
    for path in [*home.rglob("*"), database]:
        if path.is_file():
            assert CANARY_KEY.encode() not in path.read_bytes(), path

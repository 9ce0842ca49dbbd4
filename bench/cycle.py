"""Issue #13's cycle: from the sync schedule's tick to its run's success, under the real Dagster daemon.

Run: python bench/cycle.py [--projects 100 --assets 100]. Issue #13's target ("1,000 projects x 1,000
assets: a quiet cycle makes <= 10 requests and 1 Dagster run; schedule tick to run success <= 60 s") is
`--projects 1000 --assets 1000`; the defaults finish in a few minutes on a shared 2-core machine.

What runs, each a real process: the emulator (`roughy-emulator`, a seeded world); `dagster-daemon run -w
workspace.yaml` on a fresh temporary DAGSTER_HOME holding the shipped `.dagster_home/dagster.yaml`, with
the shipped `definitions.py` pointed at the emulator by the environment variables the demo sets
(`ROUGHY_BASE_URL`, `ROUGHY_API_KEY`, `ROUGHY_DUCKDB_PATH`). The project partitions are added to the
instance first (`instance.add_dynamic_partitions`, what discovery does). Each cycle starts a daemon with
`ROUGHY_SYNC_CRON` naming one minute ahead (a cron of every minute would let the daemon catch up on the
minutes a slow tick overran, launching more runs), starts the schedule (`dagster schedule start`), lets
the scheduler tick, follows the run to its end and stops the daemon. Then a bare `sync_account` of the
same account into the same file, in a fresh process (median of 3), is the floor the cycle is compared
with. `--planned-subset` sets `DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS=1` for the daemon, as
`scripts/demo` does (without it, 1,000 projects' run is failed by run monitoring before it starts).

Cycles: first load, quiet (nothing changed), and after `--changes` random changes. Where the time goes is
read from what Dagster itself recorded: the tick's scheduled time, the run's creation, its event log
(dequeued, starting, started, step start, the sync's log line, the materializations, the check
evaluations, success). Requests are the emulator's own count of listing requests during the cycle.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import dagster as dg
from _emulator import API_KEY, control, emulator_process
from dagster._core.scheduler.instigation import InstigatorType

REPO = Path(__file__).resolve().parents[1]
SCHEDULE = "roughy_sync_schedule"
DAGSTER = str(Path(sys.executable).with_name("dagster"))
LIST_PATH = "/v1/assets"
TERMINAL = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}

BARE_SYNC = """
import json, sys, time
from roughy_dagster import RoughyClient, sync_account
base, key, database = sys.argv[1:4]
started = time.perf_counter()
with RoughyClient(key, base) as client:
    report = sync_account(client, database)
print(json.dumps({"seconds": time.perf_counter() - started, "requests": report.requests,
                  "projects": len(report.projects), "verified": report.verified}))
"""


def requests_made(base_url: str) -> int:
    """Listing requests the emulator has answered so far."""
    return int(control(base_url, "stats")["requests"].get(LIST_PATH, 0))


class Daemon:
    """`dagster-daemon run -w workspace.yaml` in its own process group (with code server and run workers)."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log.open("w")  # closed by stop()
        self.process = subprocess.Popen(
            [str(Path(sys.executable).with_name("dagster-daemon")), "run", "-w", "workspace.yaml"],
            cwd=REPO,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def alive(self) -> bool:
        """True while the daemon runs; raises, pointing at its log, once it has stopped."""
        if self.process.poll() is not None:
            raise RuntimeError(f"dagster-daemon exited with {self.process.returncode}: see {self.log.name}")
        return True

    def stop(self) -> None:
        for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.process.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        with contextlib.suppress(ProcessLookupError):  # what the group left behind (run worker, code server)
            os.killpg(self.process.pid, signal.SIGKILL)
        self.log.close()


def wait_for(predicate: Any, what: str, timeout: float, every: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")


def schedule_runs(instance: dg.DagsterInstance) -> list[dg.DagsterRun]:
    return list(instance.get_runs(filters=dg.RunsFilter(tags={"dagster/schedule_name": SCHEDULE})))


def schedule_state(instance: dg.DagsterInstance) -> Any:
    states = instance.all_instigator_state(instigator_type=InstigatorType.SCHEDULE)
    return next(state for state in states if state.name == SCHEDULE)


def one_shot_cron(lead_seconds: float) -> tuple[str, float]:
    """A cron firing once, at the first minute at least `lead_seconds` from now (UTC); and that moment."""
    moment = (int(time.time() + lead_seconds) // 60 + 1) * 60
    at = time.gmtime(moment)
    return f"{at.tm_min} {at.tm_hour} {at.tm_mday} {at.tm_mon} *", float(moment)


def cycle(
    instance: dg.DagsterInstance, env: dict[str, str], base_url: str, folder: Path, name: str, timeout: float
) -> dict[str, Any]:
    """One cycle: a fresh daemon, the schedule started for one tick, the run followed to its end.

    The schedule's cron names a single minute ahead (a cron of every minute would make the daemon catch
    up on the minutes a slow tick overran, launching more runs). The daemon is stopped after the run.
    """
    known = {run.run_id for run in schedule_runs(instance)}
    cron, moment = one_shot_cron(lead_seconds=75)
    env = {**env, "ROUGHY_SYNC_CRON": cron}
    daemon = Daemon(env, folder / f"daemon-{name}.log")
    try:
        subprocess.run(
            [DAGSTER, "schedule", "start", SCHEDULE, "-w", "workspace.yaml"],
            cwd=REPO,
            env=env,
            check=True,
            capture_output=True,
            timeout=300,
        )
        if time.time() > moment:
            raise RuntimeError("the schedule was started after its tick's minute: raise the lead time")
        wait_for(lambda: time.time() >= moment - 5, "the tick's minute", timeout=moment - time.time() + 5)
        before = requests_made(base_url)
        (run,) = wait_for(
            lambda: daemon.alive() and [r for r in schedule_runs(instance) if r.run_id not in known],
            "the schedule's tick to create a run",
            timeout=timeout,
        )
        state = schedule_state(instance)
        instance.stop_schedule(state.instigator_origin_id, state.selector_id)
        run = wait_for(
            lambda: (
                daemon.alive()
                and (r := instance.get_run_by_id(run.run_id)) is not None
                and r.status in TERMINAL
                and r
            ),
            "the run to end",
            timeout=timeout,
        )
        requests = requests_made(base_url) - before
    finally:
        daemon.stop()
    record = instance.get_run_record_by_id(run.run_id)
    assert record is not None
    runs = len([r for r in schedule_runs(instance) if r.run_id not in known])
    return {
        "status": run.status.value,
        "requests": requests,
        "runs": runs,
        "phases": phases(instance, run.run_id, moment, record.create_timestamp.timestamp()),
    }


def phases(instance: dg.DagsterInstance, run_id: str, scheduled: float, created: float) -> dict[str, Any]:
    """Where the time went, from the run's own event log (timestamps in seconds)."""
    first: dict[str, float] = {}
    last: dict[str, float] = {}
    counts: dict[str, int] = {}
    synced_at = None
    sync_seconds = None
    failure = None
    for entry in instance.all_logs(run_id):
        if entry.dagster_event is None:
            if entry.user_message.startswith("synced ") and synced_at is None:
                synced_at = entry.timestamp
                sync_seconds = _sync_seconds(entry.user_message)
            continue
        kind = entry.dagster_event.event_type_value
        if kind == "PIPELINE_FAILURE":
            data = entry.dagster_event.event_specific_data
            reason = getattr(getattr(data, "failure_reason", None), "value", None)
            failure = f"{reason or 'failed'}: {entry.user_message}".strip(": ")
        first.setdefault(kind, entry.timestamp)
        last[kind] = entry.timestamp
        counts[kind] = counts.get(kind, 0) + 1
    end = last.get("PIPELINE_SUCCESS") or last.get("PIPELINE_FAILURE") or max(last.values())
    marks = {
        "scheduled": scheduled,
        "created": created,
        "enqueued": first.get("PIPELINE_ENQUEUED"),
        "starting": first.get("PIPELINE_STARTING"),
        "started": first.get("PIPELINE_START"),
        "step_worker": last.get("STEP_WORKER_STARTED", first.get("PIPELINE_START")),
        "step_start": first.get("STEP_START"),
        "synced": synced_at,
        "first_materialization": first.get("ASSET_MATERIALIZATION"),
        "last_materialization": last.get("ASSET_MATERIALIZATION"),
        "last_check": last.get("ASSET_CHECK_EVALUATION"),
        "step_success": last.get("STEP_SUCCESS"),
        "end": end,
    }
    return {"marks": marks, "counts": counts, "sync_seconds": sync_seconds, "failure": failure}


def _sync_seconds(message: str) -> float | None:
    """The sync's own seconds, from the run's "synced ... in N s" log line."""
    words = message.split()
    for index, word in enumerate(words[:-1]):
        if word == "in" and words[index + 1].replace(".", "", 1).isdigit():
            return float(words[index + 1])
    return None


def bare_sync(base_url: str, database: str) -> dict[str, Any]:
    """A bare `sync_account` in a fresh process: in-process seconds, and the process's whole wall time."""
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", BARE_SYNC, base_url, API_KEY, database],
        check=True,
        capture_output=True,
        text=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["process_seconds"] = time.perf_counter() - started
    return result


def span(marks: dict[str, float | None], start: str, end: str) -> float | None:
    if marks.get(start) is None or marks.get(end) is None:
        return None
    return marks[end] - marks[start]  # type: ignore[operator]


ROWS = [
    ("tick: scheduled time -> run created (daemon wakes, evaluates the schedule)", "scheduled", "created"),
    ("planned events: run created -> enqueued (one per partition and table)", "created", "enqueued"),
    ("queue: enqueued -> launching (run queue daemon)", "enqueued", "starting"),
    ("run worker: launching -> run started (process start, imports, load code)", "starting", "started"),
    ("step worker: run started -> step process started (multiprocess executor)", "started", "step_worker"),
    ("step setup: step process -> step started (resources, log capture)", "step_worker", "step_start"),
    ("sync: step started -> sync logged (client, sync_account)", "step_start", "synced"),
    ("metadata: sync logged -> first materialization recorded", "synced", "first_materialization"),
    ("materializations: first -> last recorded", "first_materialization", "last_materialization"),
    ("checks: last materialization -> last check recorded", "last_materialization", "last_check"),
    ("step end: last check -> step success", "last_check", "step_success"),
    ("teardown: step success -> run success", "step_success", "end"),
    ("whole cycle: scheduled time -> run success", "scheduled", "end"),
]


def report(name: str, result: dict[str, Any], floor: dict[str, Any] | None) -> None:
    marks = result["phases"]["marks"]
    counts = result["phases"]["counts"]
    print(
        f"\n{name}: run {result['status']}, {result['runs']} run(s), {result['requests']} listing requests, "
        f"{counts.get('ASSET_MATERIALIZATION', 0)} materializations, "
        f"{counts.get('ASSET_CHECK_EVALUATION', 0)} check evaluations, "
        f"{sum(counts.values())} Dagster events"
    )
    if result["phases"]["failure"]:
        print(f"  the run failed: {result['phases']['failure']}")
    total = span(marks, "scheduled", "end") or 0.0
    print(f"  {'phase':<80} {'seconds':>8} {'share':>6}" + (f" {'x bare':>7}" if floor else ""))
    for label, start, end in ROWS:
        seconds = span(marks, start, end)
        if seconds is None:
            print(f"  {label:<80} {'-':>8}")
            continue
        ratio = f" {seconds / floor['seconds']:>7.1f}" if floor else ""
        print(f"  {label:<80} {seconds:>8.2f} {seconds / total:>6.0%}{ratio}")
    sync = result["phases"]["sync_seconds"]
    if sync is not None:
        print(f"  {'  of which sync_account itself (its report)':<80} {sync:>8.2f} {sync / total:>6.0%}")
    if floor:
        print(
            f"  {'floor: bare sync_account, fresh process (in-process s; whole process s)':<80} "
            f"{floor['seconds']:>8.2f}        {floor['process_seconds']:.2f} s, {floor['requests']} requests"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--projects", type=int, default=100)
    parser.add_argument("--assets", type=int, default=100, help="assets per project")
    parser.add_argument("--changes", type=int, default=10, help="changes, then a third cycle")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds a run may take")
    parser.add_argument("--keep", action="store_true", help="keep the temporary DAGSTER_HOME and database")
    parser.add_argument(
        "--planned-subset",
        action="store_true",
        help="DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS=1: a planned event per table, not partition",
    )
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("stopped"))  # run the cleanups on `kill`

    folder = Path(tempfile.mkdtemp(prefix="roughy-cycle-"))
    home = folder / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / ".dagster_home" / "dagster.yaml", home / "dagster.yaml")
    database = str(folder / "roughy.duckdb")
    print(f"world: {args.projects} projects x {args.assets} assets; DAGSTER_HOME={home}", flush=True)
    settings = "planned events: " + (
        "one per table (DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS=1)"
        if args.planned_subset
        else "one per partition and table (Dagster's default)"
    )
    print(settings, flush=True)
    results, floors = measure(args, home, folder, database)
    print(f"\n{args.projects} projects x {args.assets} assets; {settings}")
    print(f"load average {os.getloadavg()[0]:.1f} (1 min) at the end")
    for name, result, against in results:
        report(name, result, against)
    times = ", ".join(f"{f['seconds']:.2f}" for f in floors)
    print(f"\nbare sync_account, 3 quiet runs (s): {times}")
    if args.keep:
        print(f"kept {folder}")
    else:
        shutil.rmtree(folder, ignore_errors=True)


def measure(args: argparse.Namespace, home: Path, folder: Path, database: str) -> tuple[list, list]:
    """The cycles, against one emulator: first load, quiet, and after random changes."""
    seeding = time.perf_counter()
    with emulator_process(projects=args.projects, assets=args.assets) as base_url:
        print(f"emulator up in {time.perf_counter() - seeding:.0f} s at {base_url}", flush=True)
        env = {
            **os.environ,
            "DAGSTER_HOME": str(home),
            "ROUGHY_API_KEY": API_KEY,
            "ROUGHY_BASE_URL": base_url,
            "ROUGHY_DUCKDB_PATH": database,
            "ROUGHY_RECONCILE_CRON": "0 0 1 1 *",
        }
        if args.planned_subset:
            env["DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"] = "1"
        env.pop("ROUGHY_AUTOMATION_RUNNING", None)  # schedules and sensors stay off; the bench starts one
        os.environ["DAGSTER_HOME"] = str(home)
        with dg.DagsterInstance.get() as instance:
            projects = control(base_url, "projects")["projects"]
            instance.add_dynamic_partitions("roughy_projects", projects)
            results: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = []
            first = cycle(instance, env, base_url, folder, "first", args.timeout)
            results.append(("first load", first, None))
            print(f"first load: {first['status']}, load average {os.getloadavg()[0]:.1f}", flush=True)
            quiet = cycle(instance, env, base_url, folder, "quiet", args.timeout)
            floors = [bare_sync(base_url, database) for _ in range(3)]
            floor = sorted(floors, key=lambda f: f["seconds"])[1]
            results.append(("quiet cycle", quiet, floor))
            print(f"quiet cycle: {quiet['status']}, load average {os.getloadavg()[0]:.1f}", flush=True)
            if args.changes:
                control(base_url, "changes", {"count": args.changes})
                changed = cycle(instance, env, base_url, folder, "changes", args.timeout)
                results.append((f"cycle after {args.changes} random changes", changed, floor))
    return results, floors


if __name__ == "__main__":
    main()

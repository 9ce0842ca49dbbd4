"""Bounded soak: a living emulator with latency, bursts and random faults; the state sensor and syncs.

The state sensor runs as Dagster runs it (`build_sensor_context` on a real instance, its cursor kept
between ticks, its memory in the instance's key-value store), capped at `--max-runs` runs a tick. Every
listing request waits `--latency-ms` (default 50). Every `--burst-every` rounds a burst lands at once:
hundreds of new assets already ready or failed, unpaid assets paid for, and old processing assets
finishing. The world also holds thousands of abandoned uploads.

Reports run requests, duplicates (must be 0), missed changes (must be 0), cursor and stored-memory sizes,
the requests of a quiet tick, and whether the stored rows equal the listing at the end. Exits non-zero
when any check fails. Run: python bench/soak.py [--rounds 40] [--latency-ms 50]
"""

import argparse
import json
import os
import random
import sys
import tempfile
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import dagster as dg

from roughy_dagster import RoughyClient, RoughyResource, sync_project
from roughy_dagster.client import RetryPolicy
from roughy_dagster.dagster_layer.sensor_memory import KEY_PREFIX
from roughy_dagster.dagster_layer.state_sensor import RoughyAssetEvent, build_roughy_state_sensor
from roughy_dagster.emulator import TRANSIENT_FAULT_KINDS, Emulator, World
from roughy_dagster.emulator.world import SEED_EPOCH
from roughy_dagster.store import AssetStore

WATCHED = ("ready", "failed")
API_KEY = "sk_soak_0123456789"


@dg.op(name="handle_roughy_asset")
def handle(config: RoughyAssetEvent) -> None:
    """Accept the event (the soak never launches runs; it counts the run requests)."""


@dg.job
def reaction_job() -> None:
    handle()


def burst(world: World, rng: random.Random) -> int:
    """Many changes at once: new ready/failed assets, unpaid ones paid, old processing ones finishing."""
    changes = 0
    with world.lock:
        for _ in range(300):
            project = rng.choice(world.projects)
            world.add_asset(project, state=rng.choice(("ready", "ready", "ready", "failed")))
            changes += 1
        for project in world.projects:
            changes += len(world.top_up(project, 10))
        processing = [str(a["id"]) for a in world.listing(None, "processing")]
        for asset_id in rng.sample(processing, min(40, len(processing))):
            world.advance(asset_id, rng.choice(("ready", "failed", "pending_payment")))
            changes += 1
    return changes


def main() -> int:
    """Run the soak and print its report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--projects", type=int, default=3)
    parser.add_argument("--assets", type=int, default=2000)
    parser.add_argument("--abandoned", type=int, default=5000, help="old pending_upload assets")
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--burst-every", type=int, default=8)
    parser.add_argument("--max-runs", type=int, default=100, help="the sensor's max_runs_per_tick")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--verbose", action="store_true", help="list missed and unexpected changes")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    world = World.seeded(seed=args.seed, projects=args.projects, assets_per_project=args.assets)
    for index in range(args.abandoned):
        moment = SEED_EPOCH - timedelta(days=60) + timedelta(seconds=index * 60 * 86_400 / args.abandoned)
        world.add_asset(world.projects[index % args.projects], state="pending_upload", created_at=moment)
    sensor = build_roughy_state_sensor(job=reaction_job, states=WATCHED, max_runs_per_tick=args.max_runs)
    requested: Counter[tuple[str, str]] = Counter()
    failures: Counter[str] = Counter()
    stats = {"ticks": 0, "cut_short": 0, "tick_failures": 0, "cursor_max": 0, "memory_max": 0, "bursts": 0}
    started = time.monotonic()
    os.environ["ROUGHY_SOAK_API_KEY"] = API_KEY
    with (
        Emulator(world, api_key=API_KEY, latency_ms=args.latency_ms) as emulator,
        RoughyClient(
            emulator.api_key, emulator.base_url, sleep=lambda _: None, retry=RetryPolicy()
        ) as client,
        tempfile.TemporaryDirectory() as folder,
        dg.instance_for_test(temp_dir=folder) as instance,
    ):
        database = Path(folder) / "soak.duckdb"
        resource = RoughyResource(api_key=dg.EnvVar("ROUGHY_SOAK_API_KEY"), base_url=emulator.base_url)
        cursor: str | None = None

        def tick() -> tuple[int, int]:
            """One sensor evaluation; returns the listing requests it made and the runs it requested."""
            nonlocal cursor
            before = emulator.list_requests
            with dg.build_sensor_context(
                instance=instance, cursor=cursor, resources={"roughy": resource}
            ) as context:
                try:
                    result = sensor.evaluate_tick(context)
                except Exception as error:  # a fault that outlived the retries: the cursor is kept
                    stats["tick_failures"] += 1
                    failures[f"tick {type(error).__name__}"] += 1
                    return emulator.list_requests - before, 0
            stats["ticks"] += 1
            cursor = result.cursor
            for request in result.run_requests or []:
                asset_id, _, state = str(request.run_key).partition(":")
                requested[(asset_id, state)] += 1
            stats["cursor_max"] = max(stats["cursor_max"], len((cursor or "").encode()))
            pointer = json.loads(cursor or "{}")
            key = f"{KEY_PREFIX}/{sensor.name}/{pointer.get('gen', 0) % 2}"
            stored = instance.daemon_cursor_storage.get_cursor_values({key}).get(key, "")
            stats["memory_max"] = max(stats["memory_max"], len(stored.encode()))
            return emulator.list_requests - before, len(result.run_requests or [])

        first_requests, _ = tick()
        baseline = len(world.history)
        emulator.start_life(0.05, 2)
        for round_number in range(args.rounds):
            for _ in range(rng.randint(0, 2)):
                emulator.inject(rng.choice(TRANSIENT_FAULT_KINDS), skip=rng.randint(0, 6))
            if args.burst_every and round_number % args.burst_every == args.burst_every - 1:
                burst(world, rng)
                stats["bursts"] += 1
            tick()
            project = world.projects[round_number % len(world.projects)]
            try:
                sync_project(client, database, project, full_refresh=round_number % 10 == 9)
            except Exception as error:  # counted and reported: a soak keeps going
                failures[f"sync {type(error).__name__}"] += 1
        emulator.stop_life()
        emulator.app.faults.clear()
        for _ in range(50):  # quiet now: tick until everything found and carried over is requested
            requests, runs = tick()
            if runs == 0 and requests <= 10 and not json.loads(cursor or "{}").get("queued"):
                break
        emulator.reset_counts()
        quiet_requests, _ = tick()
        quiet_by_list = Counter(query.get("state", "all") for query in emulator.request_log)
        equal = True
        for project in world.projects:
            for _ in range(3):  # a sync that could not verify everything goes on from there next time
                sync_project(client, database, project)
                with AssetStore(database).connect(read_only=True) as connection:
                    stored_ids = [
                        str(row[0])
                        for row in connection.execute(
                            "SELECT id FROM roughy.assets WHERE project_id = ? AND deleted_at IS NULL "
                            "ORDER BY created_at DESC, id DESC",
                            [project],
                        ).fetchall()
                    ]
                if stored_ids == [a["id"] for a in world.listing(project)]:
                    break
            else:
                equal = False
        history = world.history[baseline:]
        expected = {(a, s) for a, s in history if s in WATCHED and a in world.assets}
        duplicates = sum(count - 1 for count in requested.values() if count > 1)
        missed = expected - set(requested)
        unexpected = set(requested) - set(history)
        elapsed = time.monotonic() - started
        print(
            f"rounds {args.rounds}, projects {args.projects} x {args.assets} assets + {args.abandoned} "
            f"abandoned uploads, latency {args.latency_ms:.0f} ms, {stats['bursts']} bursts, {elapsed:.0f} s"
        )
        print(f"remote changes {len(history)}, faults injected {len(emulator.faults)}")
        print(
            f"run requests {sum(requested.values())}, duplicates {duplicates}, missed {len(missed)}, "
            f"unexpected {len(unexpected)}"
        )
        print(
            f"sensor ticks {stats['ticks']}, failed ticks {stats['tick_failures']}, first tick "
            f"{first_requests} requests, quiet tick {quiet_requests} requests {dict(quiet_by_list)}"
        )
        print(
            f"cursor max {stats['cursor_max']} bytes; memory in the instance key-value store max "
            f"{stats['memory_max'] / 1024:.0f} KiB"
        )
        if args.verbose:
            for asset_id, state in sorted(missed | unexpected):
                steps = [s for a, s in world.history if a == asset_id]
                kind = "missed" if (asset_id, state) in missed else "unexpected"
                print(f"  {kind} {asset_id} {state}: {steps}")
        print(f"failures after retries {dict(failures) or 0}, final equality {equal}")
        ok = duplicates == 0 and not missed and not unexpected and equal and quiet_requests <= 10
        return 0 if ok and stats["cursor_max"] <= 16 * 1024 else 1


if __name__ == "__main__":
    sys.exit(main())

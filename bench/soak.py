"""Bounded soak: a living emulator with random faults, sensor ticks and syncs for N rounds.

Reports runs fired, duplicates (must be 0), missed changes (must be 0) and whether the stored rows equal
the listing at the end. Exits non-zero when any of those fails. Run: python bench/soak.py [--rounds 40]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from roughy_dagster import RoughyClient, sync_project
from roughy_dagster.client import RetryPolicy
from roughy_dagster.emulator import TRANSIENT_FAULT_KINDS, Emulator, World
from roughy_dagster.store import AssetStore
from roughy_dagster.sync.watch import StateWatcher, WatchState

WATCHED = ("ready", "failed")


def main() -> int:
    """Run the soak and print its report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--projects", type=int, default=3)
    parser.add_argument("--assets", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--verbose", action="store_true", help="list missed and unexpected changes")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    world = World.seeded(seed=args.seed, projects=args.projects, assets_per_project=args.assets)
    fired: Counter[tuple[str, str]] = Counter()
    failures: Counter[str] = Counter()
    started = time.monotonic()
    with (
        Emulator(world) as emulator,
        RoughyClient(
            emulator.api_key, emulator.base_url, sleep=lambda _: None, retry=RetryPolicy()
        ) as client,
        tempfile.TemporaryDirectory() as folder,
    ):
        database = Path(folder) / "soak.duckdb"
        watch = StateWatcher(client, project_id=None, watched=WATCHED).tick(WatchState()).state
        baseline = len(world.history)
        emulator.start_life(0.02, 2)
        for round_number in range(args.rounds):
            for _ in range(rng.randint(0, 2)):
                emulator.inject(rng.choice(TRANSIENT_FAULT_KINDS), skip=rng.randint(0, 6))
            result = StateWatcher(client, project_id=None, watched=WATCHED).tick(watch)
            watch = result.state
            fired.update((str(a.id), a.state.value) for a in result.entered)
            project = world.projects[round_number % len(world.projects)]
            try:
                sync_project(client, database, project, full_refresh=round_number % 10 == 9)
            except Exception as error:  # counted and reported: a soak keeps going
                failures[type(error).__name__] += 1
        emulator.stop_life()
        emulator.app.faults.clear()
        final = StateWatcher(client, project_id=None, watched=WATCHED).tick(watch)
        fired.update((str(a.id), a.state.value) for a in final.entered)
        equal = True
        for project in world.projects:
            sync_project(client, database, project)
            with AssetStore(database).connect(read_only=True) as connection:
                stored = [
                    str(row[0])
                    for row in connection.execute(
                        "SELECT id FROM roughy.assets WHERE project_id = ? AND deleted_at IS NULL "
                        "ORDER BY created_at DESC, id DESC",
                        [project],
                    ).fetchall()
                ]
            equal &= stored == [a["id"] for a in world.listing(project)]
        expected = {
            (asset_id, state)
            for asset_id, state in world.history[baseline:]
            if state in WATCHED and asset_id in world.assets
        }
        duplicates = sum(count - 1 for count in fired.values() if count > 1)
        missed = expected - set(fired)
        unexpected = set(fired) - set(world.history[baseline:])
        elapsed = time.monotonic() - started
        print(f"rounds {args.rounds}, projects {args.projects} x {args.assets} assets, {elapsed:.0f} s")
        print(f"remote changes {len(world.history) - baseline}, faults injected {len(emulator.faults)}")
        print(
            f"runs fired {sum(fired.values())}, duplicates {duplicates}, missed {len(missed)}, "
            f"unexpected {len(unexpected)}"
        )
        if args.verbose:
            for asset_id, state in sorted(missed | unexpected):
                steps = [s for a, s in world.history if a == asset_id]
                kind = "missed" if (asset_id, state) in missed else "unexpected"
                print(f"  {kind} {asset_id} {state}: {steps}")
        print(f"syncs failed after retries {dict(failures) or 0}, final equality {equal}")
        return 0 if duplicates == 0 and not missed and not unexpected and equal else 1


if __name__ == "__main__":
    sys.exit(main())

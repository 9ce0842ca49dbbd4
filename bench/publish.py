"""What publishing readers' copies costs at 1M assets: per changed sync, per unchanged sync, per reader open.

Run: python bench/publish.py [--projects 4 --assets 250000 --rounds 7]. Syncs real projects from the
emulator (another process) into one store, then alternates rounds of 10 remote changes + a sync of one
project with a plain copy of the store (`shutil.copyfile`, the floor of any copy-based publish) in the same
run; prints the median publish time, its ratio to the copy, and how the alternatives compare
(`COPY FROM DATABASE`, `cp --reflink=auto`, the copy without fsync). Target (issue #16): publishing
<= 0.3 s per changed sync at 1M assets, nothing on a sync that changed nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _emulator import API_KEY, control, emulator_process

import roughy_dagster
from roughy_dagster import RoughyClient, sync_project
from roughy_dagster.store import publish as publishing
from roughy_dagster.store.publish import copies_folder, latest_path


class Timed:
    """Wraps a function of `publishing`, recording how long each call took."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.original: Callable[..., object] = getattr(publishing, name)
        self.seconds: list[float] = []
        setattr(publishing, name, self)

    def __call__(self, *args: object, **kwargs: object) -> object:
        started = time.perf_counter()
        try:
            return self.original(*args, **kwargs)
        finally:
            self.seconds.append(time.perf_counter() - started)


def _seconds(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def _copy_file_range_no_fsync(source: Path, target: Path) -> None:
    with open(source, "rb") as reader, open(target, "wb") as writer:
        size, copied = os.fstat(reader.fileno()).st_size, 0
        while copied < size:
            copied += os.copy_file_range(reader.fileno(), writer.fileno(), size - copied)


def _copy_from_database(source: Path, target: Path) -> None:
    connection = duckdb.connect()
    try:
        connection.execute(f"ATTACH '{source}' AS source (READ_ONLY)")
        connection.execute(f"ATTACH '{target}' AS target")
        connection.execute("COPY FROM DATABASE source TO target")
    finally:
        connection.close()


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--projects", type=int, default=4)
    parser.add_argument("--assets", type=int, default=250_000, help="assets per project")
    parser.add_argument("--rounds", type=int, default=7, help="changed syncs (median reported)")
    args = parser.parse_args()
    publish_calls = Timed("publish")
    copy_calls = Timed("_copy_file")
    checkpoint_calls = Timed("_checkpoint")
    with (
        emulator_process(projects=args.projects, assets=args.assets) as base_url,
        tempfile.TemporaryDirectory() as folder,
        RoughyClient(API_KEY, base_url) as client,
    ):
        database = Path(folder) / "roughy_assets.duckdb"
        projects = control(base_url, "projects")["projects"]
        started = time.perf_counter()
        for project in projects:
            sync_project(client, database, project)
        print(f"{len(projects)} first loads of {args.assets:,} assets: {time.perf_counter() - started:.1f} s")
        with roughy_dagster.connect(database) as connection:
            (assets,) = connection.execute("SELECT count(*) FROM roughy.assets").fetchall()[0]

        publish_calls.seconds.clear()
        copy_calls.seconds.clear()
        pairs, syncs = [], []
        for round_number in range(args.rounds):
            project = projects[round_number % len(projects)]
            control(base_url, "changes", {"count": 10, "project_id": project})
            syncs.append(_seconds(lambda project=project: sync_project(client, database, project)))
            published = publish_calls.seconds[-1]
            floor = _seconds(lambda: shutil.copyfile(database, Path(folder) / "floor.duckdb"))
            pairs.append(
                (published / floor, published, floor, copy_calls.seconds[-1], checkpoint_calls.seconds[-1])
            )
        assert len(publish_calls.seconds) == args.rounds, "every changed sync publishes once"

        unchanged_before = len(publish_calls.seconds)
        unchanged = [_seconds(lambda: sync_project(client, database, projects[0])) for _ in range(3)]
        published_unchanged = len(publish_calls.seconds) - unchanged_before
        check = [_seconds(lambda: publishing.needs_publish(database, False)) for _ in range(1000)]

        opens = []
        for _ in range(20):
            started = time.perf_counter()
            with roughy_dagster.connect(database) as connection:
                connection.execute("SELECT count(*) FROM roughy.assets").fetchall()
            opens.append(time.perf_counter() - started)

        store_mb = database.stat().st_size / 1e6
        copy = latest_path(database).resolve()
        alternatives = {
            "copy_file_range + fsync (what publish does)": lambda: publishing._copy_file(
                copy, Path(folder) / "a.duckdb"
            ),
            "copy_file_range, no fsync": lambda: _copy_file_range_no_fsync(copy, Path(folder) / "b.duckdb"),
            "cp --reflink=auto": lambda: subprocess.run(
                ["cp", "--reflink=auto", str(copy), str(Path(folder) / "c.duckdb")], check=True
            ),
            "shutil.copyfile (the floor)": lambda: shutil.copyfile(copy, Path(folder) / "d.duckdb"),
            "COPY FROM DATABASE (rewrites every row)": lambda: _copy_from_database(
                copy, Path(folder) / "e.duckdb"
            ),
        }
        measured = {}
        for name, action in alternatives.items():
            runs = 1 if "COPY FROM" in name else 5
            times = []
            for _ in range(runs):
                for leftover in Path(folder).glob("[a-e].duckdb*"):
                    leftover.unlink()
                times.append(_seconds(action))
            measured[name] = statistics.median(times)
        folder_mb = sum(p.stat().st_size for p in copies_folder(database).iterdir()) / 1e6

    pairs.sort()
    ratio, published, floor, copied, checkpointed = pairs[len(pairs) // 2]
    print(f"\nstore: {assets:,} assets, {store_mb:.0f} MB; published copies folder: {folder_mb:.0f} MB")
    print(f"publish / plain copy, each changed sync: {', '.join(f'{p[0]:.2f}' for p in pairs)}\n")
    print(f"{'measurement':<66} {'seconds':>9}")
    rows = [
        (f"publish per changed sync (median of {args.rounds})", published),
        ("  of which the CHECKPOINT (closing the store does it otherwise)", checkpointed),
        ("  of which the file copy + fsync", copied),
        ("  plain copy of the same file, same round (baseline)", floor),
        ("changed sync in all (10 changes, network + write + publish)", statistics.median(syncs)),
        ("unchanged sync in all (network + write, no publish)", statistics.median(unchanged)),
        ("publish check on an unchanged sync (2 stats)", statistics.median(check)),
        ("reader: roughy_dagster.connect + count(*) + close", statistics.median(opens)),
    ]
    for name, seconds in rows:
        print(f"{name:<66} {seconds:>9.6f}")
    print(f"\npublish / baseline copy (median pair): {ratio:.2f}x")
    print(f"unchanged syncs that published: {published_unchanged} of {len(unchanged)}")
    print("\nways to copy the store (median of 5; COPY FROM DATABASE once):")
    for name, seconds in measured.items():
        print(f"  {name:<64} {seconds:>9.3f}")
    target = "MET" if published <= 0.3 and published_unchanged == 0 else "MISSED"
    print(f"\ntarget <= 0.3 s per changed sync and nothing when unchanged: {target}")


if __name__ == "__main__":
    main()

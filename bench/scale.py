"""Issue #13's worlds: what a sync costs as the account grows, at loopback and at 50 ms per request.

Run: python bench/scale.py [--projects 300 --assets 300 --big 200000 --abandoned 20000]. Issue #13's targets
are stated for 1,000 projects x 1,000 assets and a project of 1,000,000; the defaults are scaled so the
script finishes in a few minutes on a shared 2-core machine (pass the full sizes to measure them).

Every world runs in its own emulator process; every measurement in a fresh process (its own peak RSS).
Times are also given as a ratio to a floor measured in the same run on the same emulator: a bare httpx loop
paging the same listing one request at a time, storing nothing (`bench/_floor.py`), at the same latency.
Requests are exact; they are what a real API charges for.

Building a full-size world's DuckDB file takes minutes: `--keep DIR` keeps each world's file as it was
right after its first load (`DIR/<world>.loaded.duckdb`, named after the world's size) and later runs
with the same `--keep` start from a copy of it instead of loading again (the emulator's worlds are
seeded, so the same sizes give the same listing). `--no-floors` skips the floors (ratios are then not
shown); `--slow-floor-pages N` reads only N pages for the floor at latency and scales its time to the whole
listing (at 50 ms, paging 1,000,000 assets takes minutes); `--quiet-runs N` reports the median of N quiet
syncs, each in a fresh process.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _emulator import API_KEY, control

WORLD = """
import sys, json, time, threading
from datetime import timedelta
from roughy_dagster.emulator import Emulator, World
spec = json.loads(sys.argv[1])
world = World.seeded(seed=spec["seed"], projects=spec["projects"], assets_per_project=spec["assets"])
if spec.get("abandoned"):
    # old uploads nobody finished, then a month of ordinary life on top
    project = world.projects[0]
    for index in range(spec["abandoned"]):
        world.add_asset(project, state="pending_upload" if index % 3 else "processing")
    world.clock += timedelta(days=30)
    for index in range(spec.get("recent", 200)):
        world.add_asset(project, state="ready")
emulator = Emulator(world, api_key=spec["key"]).start()
print("listening on", emulator.base_url, flush=True)
threading.Event().wait()
"""

FLOOR = """
import json, resource, sys, time
base, key, bench, project, most = sys.argv[1:6]
sys.path.insert(0, bench)
import httpx
started = time.perf_counter()
requests = offset = 0
with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}) as http:
    while True:
        parameters = {"limit": 100, "offset": offset}
        if project:
            parameters["project_id"] = project
        page = http.get("/v1/assets", params=parameters).json()
        requests += 1
        offset += len(page["items"])
        if not page["items"] or offset >= page["total"] or requests == int(most):
            break
seconds = time.perf_counter() - started
pages = -(-page["total"] // 100)
if requests < pages:  # stopped early: the rest of the listing at the same pace
    seconds, requests = seconds * pages / requests, pages
print(json.dumps({"seconds": seconds, "requests": requests,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

SYNC = """
import json, resource, sys, time
from roughy_dagster import RoughyClient, sync_account, sync_project
base, key, database, project, full, concurrency = sys.argv[1:7]
started = time.perf_counter()
options = {"full_refresh": full == "1"}
if concurrency:
    options["concurrency"] = int(concurrency)
with RoughyClient(key, base) as client:
    if project:
        report = sync_project(client, database, project, **options)
        projects = 1
    else:
        report = sync_account(client, database, **options)
        projects = len(report.projects)
    changes = report.new + report.changed + report.deleted + report.revived
print(json.dumps({"seconds": time.perf_counter() - started, "requests": report.requests,
                  "projects": projects, "changes": changes, "verified": report.verified,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


class _Skip(Exception):
    """A world not asked for."""


def run(code: str, *args: str) -> dict:
    """Run one measurement in a fresh process and parse its JSON line."""
    out = subprocess.run([sys.executable, "-c", code, *args], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


class World:
    """One emulator process serving a world built from `spec`."""

    def __init__(self, spec: dict) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", WORLD, json.dumps({**spec, "key": API_KEY})],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if "listening on" not in line:
            raise RuntimeError(f"emulator did not start: {line!r}")
        self.base_url = line.rsplit(" ", 1)[-1].strip()

    def latency(self, milliseconds: float) -> None:
        control(self.base_url, "settings", {"latency_ms": milliseconds})

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def floor(world: World, project: str = "", pages: int = 0) -> dict:
    """The floor's time to page the whole listing; with `pages`, only that many are read and the time is
    scaled to the whole listing (each page costs the same: a linear walk)."""
    return run(FLOOR, world.base_url, API_KEY, str(Path(__file__).resolve().parent), project, str(pages))


def sync(
    world: World, database: str, project: str = "", *, full: bool = False, concurrency: str = ""
) -> dict:
    return run(SYNC, world.base_url, API_KEY, database, project, "1" if full else "0", concurrency)


class Databases:
    """The DuckDB files of one run: fresh in a temporary folder, or kept in `--keep DIR` for reuse."""

    def __init__(self, keep: str | None) -> None:
        self.folder = Path(keep) if keep else Path(tempfile.mkdtemp())
        self.folder.mkdir(parents=True, exist_ok=True)
        self.keep = keep is not None

    def path(self, name: str) -> str:
        return str(self.folder / f"{name}.duckdb")

    def _loaded(self, name: str) -> Path:
        return self.folder / f"{name}.loaded.duckdb"

    def fresh(self, name: str) -> str:
        """The path of `name`, with nothing there yet."""
        for leftover in (Path(self.path(name)), Path(self.path(name) + ".wal")):
            leftover.unlink(missing_ok=True)
        return self.path(name)

    def reuse(self, name: str) -> bool:
        """Start `name` from its kept first load, when there is one (True), else from nothing."""
        self.fresh(name)
        if not self.keep or not self._loaded(name).exists():
            return False
        shutil.copyfile(self._loaded(name), self.path(name))
        return True

    def loaded(self, name: str) -> None:
        """Keep `name` as it is right after its first load."""
        if self.keep:
            shutil.copyfile(self.path(name), self._loaded(name))


def quiet(runs: int, measure: Callable[[], dict]) -> dict:
    """The median (by seconds) of `runs` quiet syncs, each in a fresh process."""
    results = sorted((measure() for _ in range(max(1, runs))), key=lambda row: row["seconds"])
    median = results[len(results) // 2]
    if runs > 1:
        median = {**median, "spread": (results[0]["seconds"], results[-1]["seconds"])}
    return median


def delete_in_the_middle(world: World, project: str, count: int, *, seed: int = 7) -> list[str]:
    """Delete `count` random assets from the middle half of the project's `ready` list (through the API
    to find them, the control API to delete): no `created_at` moves, only the list's count disagrees."""

    def page(offset: int) -> dict:
        parameters = {"project_id": project, "state": "ready", "limit": 1, "offset": offset}
        query = urllib.parse.urlencode(parameters)
        request = urllib.request.Request(
            f"{world.base_url}/v1/assets?{query}", headers={"Authorization": f"Bearer {API_KEY}"}
        )
        with urllib.request.urlopen(request) as response:
            return json.loads(response.read())

    total = page(0)["total"]
    offsets = random.Random(seed).sample(range(total // 4, 3 * total // 4), count)
    victims = [page(offset)["items"][0]["id"] for offset in offsets]
    for victim in victims:
        control(world.base_url, "delete", {"asset_id": victim})
    return victims


def main() -> None:
    """Measure every world and print one table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--projects", type=int, default=300)
    parser.add_argument("--assets", type=int, default=300, help="assets per project of the account world")
    parser.add_argument("--big", type=int, default=200_000, help="assets of the one large project")
    parser.add_argument("--abandoned", type=int, default=20_000)
    parser.add_argument("--latent", type=int, default=20_000, help="assets of the project read at 50 ms")
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument(
        "--worlds",
        default="account,big,latent,abandoned",
        help="which worlds to measure (comma-separated; also 'middle': 10 deletions deep in the big "
        "project's "
        "ready list)",
    )
    parser.add_argument("--keep", metavar="DIR", help="keep each world's first load in DIR and reuse it")
    parser.add_argument("--no-floors", action="store_true", help="skip the floors (no ratios)")
    parser.add_argument(
        "--slow-floor-pages",
        type=int,
        default=0,
        help="read only this many pages for a floor at latency, scaled to the whole listing (0: all)",
    )
    parser.add_argument("--quiet-runs", type=int, default=1, help="quiet syncs measured (median reported)")
    args = parser.parse_args()
    rows: list[tuple[str, dict, dict | None]] = []
    databases = Databases(args.keep)
    database = databases.path

    def measured_floor(world: World, project: str = "", pages: int = 0) -> dict | None:
        return None if args.no_floors else floor(world, project, pages)

    def first_load(name: str, label: str, world: World, project: str, against: dict | None) -> None:
        if databases.reuse(name):
            return
        rows.append((label, sync(world, database(name), project), against))
        databases.loaded(name)

    worlds = set(args.worlds.split(","))

    # -- an account of many projects -----------------------------------------------------------------------
    world = World({"seed": 1, "projects": args.projects, "assets": args.assets if "account" in worlds else 0})
    try:
        if "account" not in worlds:
            raise _Skip
        size = f"{args.projects} projects x {args.assets}"
        name = f"account-{args.projects}x{args.assets}"
        base = measured_floor(world)
        if base is not None:
            rows.append((f"floor: page the whole account ({size})", base, base))
        first_load(name, f"account first load ({size})", world, "", base)
        rows.append(
            (
                "account quiet cycle (sync_account)",
                quiet(args.quiet_runs, lambda: sync(world, database(name))),
                base,
            )
        )
        control(world.base_url, "changes", {"count": 10})
        rows.append(("account cycle after 10 random changes", sync(world, database(name)), base))
        rows.append(("account full reconcile", sync(world, database(name), full=True), base))
        world.latency(args.latency_ms)
        slow = measured_floor(world, pages=args.slow_floor_pages)
        if slow is not None:
            scaled = f" ({args.slow_floor_pages} pages, scaled)" if args.slow_floor_pages else ""
            rows.append((f"floor at {args.latency_ms:.0f} ms per request{scaled}", slow, slow))
        rows.append(
            (
                f"account quiet cycle at {args.latency_ms:.0f} ms",
                quiet(args.quiet_runs, lambda: sync(world, database(name))),
                slow,
            )
        )
        control(world.base_url, "changes", {"count": 10})
        rows.append((f"10 changes at {args.latency_ms:.0f} ms", sync(world, database(name)), slow))
    except _Skip:
        pass
    finally:
        world.close()

    # -- one large project ---------------------------------------------------------------------------------
    world = World({"seed": 2, "projects": 1, "assets": args.big if "big" in worlds else 0})
    try:
        if "big" not in worlds:
            raise _Skip
        project = control(world.base_url, "projects")["projects"][0]
        name = f"big-{args.big}"
        base = None
        if not args.no_floors:
            floor(world, project)  # warm-up: the emulator caches each asset's JSON once
            base = floor(world, project)
            rows.append((f"floor: one project of {args.big:,}", base, base))
        first_load(name, "first load (sync_project)", world, project, base)
        rows.append(
            ("quiet sync", quiet(args.quiet_runs, lambda: sync(world, database(name), project)), base)
        )
    except _Skip:
        pass
    finally:
        world.close()

    # -- deletions deep in the large project's ready list: only the count disagrees, the search bisects -----
    world = World({"seed": 2, "projects": 1, "assets": args.big if "middle" in worlds else 0})
    try:
        if "middle" not in worlds:
            raise _Skip
        project = control(world.base_url, "projects")["projects"][0]
        name = f"big-{args.big}"  # the same world as "big": a kept first load serves both
        base = None
        if not args.no_floors:
            floor(world, project)  # warm-up: the emulator caches each asset's JSON once
            base = floor(world, project)
            rows.append((f"floor: one project of {args.big:,}", base, base))
        first_load(name, "first load (sync_project)", world, project, base)
        delete_in_the_middle(world, project, 10)
        found = sync(world, database(name), project)
        rows.append(("10 deletions mid-ready (count mismatch)", found, base))
        rows.append(("quiet sync after", sync(world, database(name), project), base))
    except _Skip:
        pass
    finally:
        world.close()

    # -- a project read whole at 50 ms: several requests in flight against the sequential floor ------------
    world = World({"seed": 3, "projects": 1, "assets": args.latent if "latent" in worlds else 0})
    try:
        if "latent" not in worlds:
            raise _Skip
        project = control(world.base_url, "projects")["projects"][0]
        world.latency(args.latency_ms)
        slow = measured_floor(world, project)
        if slow is not None:
            rows.append((f"floor: {args.latent:,} at {args.latency_ms:.0f} ms, sequential", slow, slow))
        rows.append(("first load, default settings", sync(world, databases.fresh("latent"), project), slow))
        rows.append(
            (
                "first load, concurrency=1",
                sync(world, databases.fresh("latent1"), project, concurrency="1"),
                slow,
            )
        )
        rows.append(
            (
                "first load, concurrency=16",
                sync(world, databases.fresh("latent16"), project, concurrency="16"),
                slow,
            )
        )
    except _Skip:
        pass
    finally:
        world.close()

    # -- abandoned uploads ---------------------------------------------------------------------------------
    world = World(
        {"seed": 4, "projects": 1, "assets": 0, "abandoned": args.abandoned if "abandoned" in worlds else 0}
    )
    try:
        if "abandoned" not in worlds:
            raise _Skip
        project = control(world.base_url, "projects")["projects"][0]
        name = f"abandoned-{args.abandoned}"
        base = measured_floor(world, project)
        if base is not None:
            rows.append((f"floor: {args.abandoned:,} abandoned uploads + 200", base, base))
        first_load(name, "first load", world, project, base)
        rows.append(
            ("quiet sync", quiet(args.quiet_runs, lambda: sync(world, database(name), project)), base)
        )
        rows.append(("full reconcile", sync(world, database(name), project, full=True), base))
    except _Skip:
        pass
    finally:
        world.close()

    print("\ntimes as ratio to the floor measured in this run (bare httpx paging, one request at a time)\n")
    print(f"{'measurement':<52} {'requests':>9} {'seconds':>8} {'x floor':>8} {'peak MB':>8}  result")
    for label, row, against in rows:
        result = (
            f"{row['projects']} projects, {row['changes']} changes, verified {row['verified']}"
            if "verified" in row
            else ""
        )
        if "spread" in row:
            result += f"; median of {args.quiet_runs}: {row['spread'][0]:.2f}-{row['spread'][1]:.2f} s"
        ratio = f"{row['seconds'] / against['seconds']:>8.2f}" if against is not None else f"{'-':>8}"
        seconds, peak = f"{row['seconds']:>8.2f}", f"{row['peak_mb']:>8.0f}"
        print(f"{label:<52} {row['requests']:>9} {seconds} {ratio} {peak}  {result}")


if __name__ == "__main__":
    main()

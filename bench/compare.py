"""roughy-dagster against dlt's rest_api source, a naive loader and the bare paging floor, in one run.

For projects of 1,000, 10,000 and 100,000 assets on the same emulator world: a first full load, then a
re-sync after 10 random changes (new assets, state changes of old ones, deletions). Every contender runs
in its own process (peak memory is its own) against an emulator in another process. Prints a table with
each time as a ratio to roughy-dagster's in the same run and writes bench/results/compare.md.

Run: python bench/compare.py [--sizes 1000 10000 100000]. dlt is a benchmark-only dependency: the script
installs it into .venv-bench on first use (or give --dlt-python).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _emulator import API_KEY, control, emulator_process

REPO = Path(__file__).resolve().parents[1]

MEASURE = """
import json, resource, sys, time
sys.path.insert(0, "bench")  # run from the repository: the shared floor loop
base, project, database, key = sys.argv[1:5]
{setup}
started = time.perf_counter()  # imports are not timed: only the load itself (until `loaded`)
{body}
print(json.dumps({{"seconds": loaded - started, "ids": ids,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""

ROUGHY_SETUP = """
from roughy_dagster import RoughyClient, sync_project
from roughy_dagster.store import AssetStore
"""
ROUGHY = """
with RoughyClient(key, base) as client:
    sync_project(client, database, project)
loaded = time.perf_counter()  # reading the ids back, to check the result, is not timed
with AssetStore(database).connect(read_only=True) as connection:
    ids = [str(r[0]) for r in connection.execute(
        "SELECT id FROM roughy.assets WHERE deleted_at IS NULL").fetchall()]
"""

ROUGHY_DAGSTER_SETUP = """
import dagster as dg
from dagster_duckdb import DuckDBResource
from roughy_dagster import RoughyResource
from roughy_dagster.dagster_layer.assets import PROJECTS_NAME, roughy_sync_assets
from roughy_dagster.store import AssetStore
"""
ROUGHY_DAGSTER = """
with dg.instance_for_test() as instance:
    instance.add_dynamic_partitions(PROJECTS_NAME, [project])
    result = dg.materialize([roughy_sync_assets], partition_key=project, instance=instance, resources={
        "roughy": RoughyResource(api_key=key, base_url=base), "duckdb": DuckDBResource(database=database)})
    assert result.success
loaded = time.perf_counter()
with AssetStore(database).connect(read_only=True) as connection:
    ids = [str(r[0]) for r in connection.execute(
        "SELECT id FROM roughy.assets WHERE deleted_at IS NULL").fetchall()]
"""

DLT_SETUP = """
import os
os.environ["RUNTIME__LOG_LEVEL"] = "WARNING"
import dlt, duckdb
from dlt.sources.rest_api import rest_api_source
"""
DLT = """
source = rest_api_source({
    "client": {
        "base_url": base,
        "auth": {"type": "bearer", "token": key},
        "paginator": {"type": "offset", "limit": 100, "offset_param": "offset", "limit_param": "limit",
                      "total_path": "total"},
    },
    "resource_defaults": {"primary_key": "id", "write_disposition": "merge"},
    "resources": [{"name": "assets", "endpoint": {"path": "v1/assets", "params": {"project_id": project},
                                                  "data_selector": "items"}}],
})
pipeline = dlt.pipeline(pipeline_name="roughy_bench", destination=dlt.destinations.duckdb(database),
                        dataset_name="roughy", pipelines_dir=database + ".dlt")
pipeline.run(source)
loaded = time.perf_counter()
connection = duckdb.connect(database, read_only=True)
ids = [r[0] for r in connection.execute("SELECT id FROM roughy.assets").fetchall()]
connection.close()
"""

HTTPX_DUCKDB_SETUP = """
import duckdb, httpx
"""
NAIVE = """
connection = duckdb.connect(database)
connection.execute("CREATE TABLE IF NOT EXISTS assets (id VARCHAR PRIMARY KEY, project_id VARCHAR, "
                   "type VARCHAR, state VARCHAR, extension VARCHAR, size_bytes BIGINT, content_type VARCHAR, "
                   "duration_seconds VARCHAR, language VARCHAR, error_code VARCHAR, error_message VARCHAR, "
                   "created_at VARCHAR, upload_url VARCHAR)")
columns = ["id", "project_id", "type", "state", "extension", "size_bytes", "content_type", "duration_seconds",
           "language", "error_code", "error_message", "created_at", "upload_url"]
offset = 0
with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}) as http:
    while True:
        page = http.get("/v1/assets", params={"project_id": project, "limit": 100, "offset": offset}).json()
        for item in page["items"]:
            connection.execute("INSERT OR REPLACE INTO assets VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                               [item.get(c) for c in columns])
        offset += len(page["items"])
        if not page["items"] or offset >= page["total"]:
            break
loaded = time.perf_counter()
ids = [r[0] for r in connection.execute("SELECT id FROM assets").fetchall()]
connection.close()
"""

FLOOR_SETUP = """
from _floor import page_through
"""
FLOOR = """
ids = []
page_through(base, project, key, on_page=lambda page: ids.extend(item["id"] for item in page["items"]))
loaded = time.perf_counter()
"""

CONTENDERS = {  # name: (setup, untimed; the load, timed)
    "roughy-dagster (sync_project)": (ROUGHY_SETUP, ROUGHY),
    "roughy-dagster via dagster.materialize": (ROUGHY_DAGSTER_SETUP, ROUGHY_DAGSTER),
    "dlt rest_api, merge on id": (DLT_SETUP, DLT),
    "naive: httpx + row-by-row inserts": (HTTPX_DUCKDB_SETUP, NAIVE),
    "floor: bare httpx paging, no storage": (FLOOR_SETUP, FLOOR),
}


def run(python: str, setup: str, body: str, base: str, project: str, database: str) -> dict:
    """One contender in its own process; its JSON line, plus the requests the emulator served meanwhile."""
    before = control(base, "stats")["requests"].get("/v1/assets", 0)
    code = MEASURE.format(setup=setup, body=body)
    done = subprocess.run(
        [python, "-c", code, base, project, database, API_KEY], capture_output=True, text=True, cwd=REPO
    )
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr else f"exit {done.returncode}"}
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["requests"] = control(base, "stats")["requests"].get("/v1/assets", 0) - before
    return result


def ensure_dlt(python: str) -> bool:
    """Create the benchmark-only venv with dlt when it is missing (dlt is no runtime dependency)."""
    if Path(python).exists():
        return True
    venv = Path(python).parent.parent
    print(f"installing dlt into {venv} (benchmark-only)", flush=True)
    made = subprocess.run([sys.executable, "-m", "venv", str(venv)])
    if made.returncode != 0:
        return False
    pip = [python, "-m", "pip", "install", "--quiet", "dlt[duckdb]", "httpx"]
    return subprocess.run(pip).returncode == 0


def main() -> None:
    """Measure every contender at every size and print and write the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000])
    parser.add_argument("--dlt-python", default=str(REPO / ".venv-bench" / "bin" / "python"))
    parser.add_argument(
        "--naive-max",
        type=int,
        default=10_000,
        help="largest project the naive loader runs on (row-by-row inserts cost ~4 ms a row here)",
    )
    args = parser.parse_args()
    rows: list[dict] = []
    have_dlt = ensure_dlt(args.dlt_python)
    for size in args.sizes:
        with emulator_process(projects=1, assets=size) as base, tempfile.TemporaryDirectory() as folder:
            project = control(base, "projects")["projects"][0]
            run(sys.executable, FLOOR_SETUP, FLOOR, base, project, "")  # warms the JSON cache
            for phase in ("first load", "re-sync after 10 changes"):
                if phase != "first load":
                    control(base, "changes", {"count": 10, "project_id": project})
                truth = {item["id"] for item in control(base, f"listing?project_id={project}")["items"]}
                for index, (name, (setup, body)) in enumerate(CONTENDERS.items()):
                    python = args.dlt_python if name.startswith("dlt") else sys.executable
                    if name.startswith("naive") and size > args.naive_max:
                        rows.append(
                            {"size": size, "phase": phase, "name": name, "error": "skipped: --naive-max"}
                        )
                        continue
                    if name.startswith("dlt") and not have_dlt:
                        rows.append(
                            {"size": size, "phase": phase, "name": name, "error": "dlt not installed"}
                        )
                        continue
                    result = run(python, setup, body, base, project, str(Path(folder) / f"c{index}.duckdb"))
                    if "ids" in result:
                        ids = set(result.pop("ids"))
                        result["equal"] = (
                            "yes"
                            if ids == truth
                            else (f"no: {len(ids - truth)} extra, {len(truth - ids)} missing")
                        )
                    rows.append({"size": size, "phase": phase, "name": name, **result})
                    print(rows[-1], flush=True)
    write_report(rows)


def targets(rows: list[dict]) -> str:
    """Issue #6's targets at the largest size, each with the measured figure and whether it is met."""
    size = max(r["size"] for r in rows)
    by = {(r["phase"], r["name"].split(" ")[0]): r for r in rows if r["size"] == size and "seconds" in r}
    ours = {
        phase: rows_[0]
        for phase in ("first load", "re-sync after 10 changes")
        for rows_ in [
            [
                r
                for r in rows
                if r["size"] == size and r["phase"] == phase and r["name"].startswith("roughy-dagster (")
            ]
        ]
        if rows_
    }
    checks = []
    resync, first = ours.get("re-sync after 10 changes"), ours.get("first load")
    dlt_resync, dlt_first = by.get(("re-sync after 10 changes", "dlt")), by.get(("first load", "dlt"))
    floor_first = by.get(("first load", "floor:"))
    if resync and dlt_resync:
        checks.append(
            ("re-sync: >= 10x fewer requests than dlt", dlt_resync["requests"] / resync["requests"], 10)
        )
        checks.append(
            ("re-sync: >= 5x less wall time than dlt", dlt_resync["seconds"] / resync["seconds"], 5)
        )
    if first and dlt_first:
        checks.append(("first load: >= 2x faster than dlt", dlt_first["seconds"] / first["seconds"], 2))
        checks.append(
            ("peak memory below dlt's (ratio dlt/ours)", dlt_first["peak_mb"] / first["peak_mb"], 1)
        )
    if first and floor_first:
        checks.append(
            (
                "first load: within 1.3x of the floor (floor/ours)",
                floor_first["seconds"] / first["seconds"],
                1 / 1.3,
            )
        )
    lines = [f"Targets at {size:,} assets:", "", "| target | measured | met |", "|---|---:|---|"]
    lines += [
        f"| {name} | {value:.2f} | {'yes' if value >= bound else 'no'} |" for name, value, bound in checks
    ]
    return "\n".join(lines)


def write_report(rows: list[dict]) -> None:
    """The table: each figure, then its ratio to roughy-dagster's sync_project in the same run."""
    reference = {
        (r["size"], r["phase"]): r
        for r in rows
        if r["name"].startswith("roughy-dagster (") and "seconds" in r
    }
    lines = [
        "| assets | phase | contender | requests (x roughy) | seconds (x roughy) | rows/s (x roughy) "
        "| peak MB (x roughy) | equals the listing |",
        "|---:|---|---|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        ref = reference.get((r["size"], r["phase"]))
        if "error" in r:
            lines.append(f"| {r['size']:,} | {r['phase']} | {r['name']} | | | | | {r['error']} |")
            continue

        def cell(value: float, reference: float, fmt: str) -> str:
            return f"{value:{fmt}} ({value / reference:.2f})" if reference else f"{value:{fmt}}"

        rate, ref_rate = r["size"] / r["seconds"], (ref["size"] / ref["seconds"] if ref else 0)
        lines.append(
            f"| {r['size']:,} | {r['phase']} | {r['name']} "
            f"| {cell(r['requests'], ref['requests'] if ref else 0, 'd')} "
            f"| {cell(r['seconds'], ref['seconds'] if ref else 0, '.2f')} "
            f"| {cell(rate, ref_rate, ',.0f')} "
            f"| {cell(r['peak_mb'], ref['peak_mb'] if ref else 0, '.0f')} | {r['equal']} |"
        )
    table = "\n".join(lines) + "\n\n" + targets(rows)
    print("\n" + table)
    out = REPO / "bench" / "results" / "compare.md"
    out.write_text(
        "# roughy-dagster against dlt, a naive loader and the floor\n\n"
        "Written by `python bench/compare.py` (one run, one 2-core machine, the emulator in its own\n"
        "process; imports, and reading the ids back to check each result, are not timed).\n"
        "In brackets, each figure as a ratio to roughy-dagster's `sync_project` measured in the same run.\n\n"
        + table
        + "\n\n"
        "Why a target can be missed: against a local emulator a request costs about a millisecond, so time\n"
        "is local CPU, and on this shared machine one pair of runs varies by +-20%\n"
        "(bench/sync_bench.py reports the median of several alternating pairs). Beyond paging and decoding,\n"
        "which cost about what the floor's do, roughy-dagster validates every asset, records what each\n"
        "page proves and writes one DuckDB transaction (at 100,000 assets: the rows, 100,000 `appeared`\n"
        "events and a checkpoint, about a fifth of the floor's time). What it saves is requests, which is\n"
        "what costs time against the real API. dlt's merge keeps deleted assets (it never sees them leave\n"
        "the listing); the naive loader too.\n"
    )
    (REPO / "bench" / "results" / "compare.json").write_text(json.dumps(rows, indent=1))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()

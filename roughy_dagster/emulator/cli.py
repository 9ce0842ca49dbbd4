"""`roughy-emulator`: serve a seeded, optionally living, emulated Roughy listing on a local port."""

from __future__ import annotations

import argparse
import logging
import signal
import threading

from .server import DEFAULT_API_KEY, Emulator
from .world import World


def build_parser() -> argparse.ArgumentParser:
    """The command line of `roughy-emulator`."""
    parser = argparse.ArgumentParser(
        prog="roughy-emulator",
        description="Serve an emulated Roughy GET /v1/assets on localhost.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,  # --help shows every default
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the world (same seed, same world)")
    parser.add_argument("--projects", type=int, default=3, help="number of projects")
    parser.add_argument("--assets", type=int, default=200, help="assets per project")
    parser.add_argument("--api-key", default=DEFAULT_API_KEY, help="the bearer key the emulator accepts")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (loopback by default)")
    parser.add_argument("--port", type=int, default=8765, help="port to bind (0: any free port)")
    parser.add_argument(
        "--life", type=float, default=0.0, metavar="SECONDS", help="simulate life: change the world every N s"
    )
    parser.add_argument("--life-changes", type=int, default=1, help="changes per life step")
    parser.add_argument("--ties", type=int, default=0, help="every N-th seeded asset shares its created_at")
    parser.add_argument(
        "--edge-values",
        type=int,
        default=0,
        metavar="N",
        help="every N-th seeded asset gets a duration/size at the edge of what the spec allows",
    )
    parser.add_argument(
        "--tie-group", type=int, default=0, metavar="N", help="add a group of N assets sharing one created_at"
    )
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay every listing response (ms)")
    parser.add_argument(
        "--total-bias", type=int, default=0, help="lie about total: add N to every list's true count"
    )
    parser.add_argument(
        "--max-page-items", type=int, default=None, help="short pages: at most N items whatever limit asks"
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    """Start the emulator and serve until interrupted."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    world = World.seeded(
        seed=args.seed,
        projects=args.projects,
        assets_per_project=args.assets,
        tie_every=args.ties,
        edge_values_every=args.edge_values,
    )
    if args.tie_group:
        for project_id in world.projects:
            world.add_tie_group(project_id, args.tie_group)
    emulator = Emulator(
        world,
        api_key=args.api_key,
        host=args.host,
        port=args.port,
        life_interval=args.life or None,
        life_changes=args.life_changes,
        latency_ms=args.latency_ms,
        total_bias={"*": args.total_bias} if args.total_bias else None,
        max_page_items=args.max_page_items,
    )
    emulator.start()
    print(f"roughy-emulator listening on {emulator.base_url}", flush=True)
    for project_id in world.projects:
        print(f"project {project_id}: {world.count(project_id)} assets", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    emulator.stop()


if __name__ == "__main__":
    main()

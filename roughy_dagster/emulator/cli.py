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
    emulator = Emulator(
        world,
        api_key=args.api_key,
        host=args.host,
        port=args.port,
        life_interval=args.life or None,
        life_changes=args.life_changes,
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

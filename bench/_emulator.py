"""Start `roughy-emulator` in its own process for benchmarks, so the server never competes for our GIL."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

API_KEY = "sk_bench_key"


@contextmanager
def emulator_process(*, projects: int, assets: int, seed: int = 1) -> Iterator[str]:
    """Yield the base URL of an emulator serving a seeded world; stop it afterwards."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "roughy_dagster.emulator.cli",
            "--port",
            "0",
            "--seed",
            str(seed),
            "--projects",
            str(projects),
            "--assets",
            str(assets),
            "--api-key",
            API_KEY,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if "listening on" not in line:
            raise RuntimeError(f"emulator did not start: {line!r}")
        yield line.rsplit(" ", 1)[-1].strip()
    finally:
        process.terminate()
        process.wait(timeout=30)


def control(base_url: str, action: str, payload: dict | None = None) -> dict:
    """Call the emulator's control API (POST when there is a payload)."""
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(
        f"{base_url}/_emulator/{action}", data=data, method="POST" if data else "GET"
    )
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read())

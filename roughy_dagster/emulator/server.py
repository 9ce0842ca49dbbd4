"""Run the emulator in-process on a free loopback port (tests, benchmarks) with a small Python API."""

from __future__ import annotations

import logging
import socket
import threading
import time
from types import TracebackType
from typing import Self

import uvicorn

from .app import LIST_PATH, EmulatorApp
from .faults import Fault
from .world import World

DEFAULT_API_KEY = "sk_emulator_0123456789"

logger = logging.getLogger("roughy_dagster.emulator")


class _QuietDroppedConnections(logging.Filter):
    """Hide uvicorn's complaints about the connections the `drop` and `cut_short` faults close on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return "without starting response" not in message and "without completing response" not in message


logging.getLogger("uvicorn.error").addFilter(_QuietDroppedConnections())


class Emulator:
    """An emulator to `start()`, point a client at (`base_url`), mutate, break (`inject`) and `stop()`.

    Server behaviours a test may need (all settable later on `app` too): `latency_ms` delays every
    listing response (concurrent requests overlap, as on a distant server); `total_bias` lies about
    `total` (added to the true count, per state filter, `"*"` for every filter); `max_page_items`
    returns short pages (at most that many items whatever `limit` asks).
    """

    def __init__(
        self,
        world: World | None = None,
        *,
        api_key: str = DEFAULT_API_KEY,
        host: str = "127.0.0.1",
        port: int = 0,
        life_interval: float | None = None,
        life_changes: int = 1,
        latency_ms: float = 0.0,
        total_bias: dict[str | None, int] | None = None,
        max_page_items: int | None = None,
    ) -> None:
        self.world = world if world is not None else World.seeded()
        self.api_key = api_key
        self.app = EmulatorApp(self.world, api_key=api_key)
        self.app.latency_ms = latency_ms
        self.app.total_bias = dict(total_bias or {})
        self.app.max_page_items = max_page_items
        self.host = host
        self.port = port
        self.life_interval = life_interval
        self.life_changes = life_changes
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._life_thread: threading.Thread | None = None
        self._stopping = threading.Event()

    @property
    def base_url(self) -> str:
        """The URL to give `RoughyClient` (valid once started)."""
        return f"http://{self.host}:{self.port}"

    @property
    def faults(self) -> list[str]:
        """The kinds of the faults injected so far, in order."""
        return list(self.app.faults.injected)

    def start(self) -> Self:
        """Bind a port (a free one when `port` is 0), serve in a background thread, return when listening."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        self.world.upload_base_url = f"{self.base_url}/v1/uploads"
        config = uvicorn.Config(
            self.app, log_level="warning", access_log=False, lifespan="off", timeout_keep_alive=30
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="roughy-emulator", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the emulator did not start listening within 10 s")
            time.sleep(0.01)
        if self.life_interval:
            self.start_life(self.life_interval, self.life_changes)
        return self

    def start_life(self, interval: float, changes: int = 1) -> None:
        """Start simulating life: `changes` random changes every `interval` seconds, until stopped."""
        self.life_interval, self.life_changes = interval, changes
        self._stopping.clear()
        self._life_thread = threading.Thread(target=self._live, name="roughy-emulator-life", daemon=True)
        self._life_thread.start()

    def _live(self) -> None:
        assert self.life_interval is not None
        self.world.follow_real_time = True
        while not self._stopping.wait(self.life_interval):
            for change in self.world.random_changes(self.life_changes):
                logger.info("life: %s", change)

    def stop_life(self) -> None:
        """Stop the life simulation (the server keeps serving a now quiet world)."""
        self._stopping.set()
        if self._life_thread is not None:
            self._life_thread.join(timeout=10)

    def stop(self) -> None:
        """Stop serving and the life simulation; waits for the server thread."""
        self._stopping.set()
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._life_thread is not None:
            self._life_thread.join(timeout=10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- driving -------------------------------------------------------------------------------------------

    def inject(self, kind: str, **options: object) -> Fault:
        """Plan a fault (see `faults.FAULT_KINDS`); options are `Fault` fields (count, skip, match, ...)."""
        fault = Fault(kind=kind, **options)  # type: ignore[arg-type]
        self.app.faults.add(fault)
        return fault

    @property
    def list_requests(self) -> int:
        """How many `GET /v1/assets` requests arrived so far."""
        return self.app.request_counts[LIST_PATH]

    @property
    def request_log(self) -> list[dict[str, str]]:
        """The query of every listing request so far, in arrival order."""
        return list(self.app.requests_log)

    @property
    def most_in_flight(self) -> int:
        """The most listing requests the server was serving at once since the last `reset_counts`."""
        return self.app.most_in_flight

    def reset_counts(self) -> None:
        """Zero the request counters, the log and `most_in_flight`."""
        self.app.request_counts.clear()
        self.app.requests_log.clear()
        self.app.most_in_flight = self.app.in_flight

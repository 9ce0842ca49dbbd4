"""Shared fixtures: an in-process emulator on a free loopback port and clients pointed at it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from roughy_dagster.client import RetryPolicy, RoughyClient
from roughy_dagster.emulator import Emulator, World

SPEC_PATH = Path(__file__).parent / "spec" / "openapi-list-assets.yaml"
CANARY_KEY = "sk_canary_5f1d2c9e7a3b4d6f"


class RecordingSleep:
    """A `sleep` that records the requested waits instead of sleeping, so tests never depend on wall time."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


class VirtualClock:
    """A client clock that runs with real time plus every wait the client asked for, which it never sleeps.

    Give `now` as a client's `clock` and the clock itself as its `sleep`: deadlines are then measured on
    the client's own clock, and tests assert with it (never with wall time) while never waiting."""

    def __init__(self) -> None:
        self._origin = time.monotonic()
        self.slept = 0.0
        self.waits: list[float] = []

    def now(self) -> float:
        return time.monotonic() - self._origin + self.slept

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.slept += seconds


@pytest.fixture(scope="session")
def spec() -> dict:
    return yaml.safe_load(SPEC_PATH.read_text())


@pytest.fixture
def world() -> World:
    return World.seeded(seed=7, projects=2, assets_per_project=350)


@pytest.fixture
def emulator(world: World) -> Iterator[Emulator]:
    with Emulator(world, api_key=CANARY_KEY) as running:
        yield running


@pytest.fixture
def sleeps() -> RecordingSleep:
    return RecordingSleep()


@pytest.fixture
def client(emulator: Emulator, sleeps: RecordingSleep) -> Iterator[RoughyClient]:
    with RoughyClient(emulator.api_key, emulator.base_url, sleep=sleeps, retry=RetryPolicy()) as made:
        yield made


@pytest.fixture
def client_for(sleeps: RecordingSleep):
    """Make a client for any emulator (closed by the caller's `with`)."""

    def make(emulator: Emulator) -> RoughyClient:
        return RoughyClient(emulator.api_key, emulator.base_url, sleep=sleeps, retry=RetryPolicy())

    return make

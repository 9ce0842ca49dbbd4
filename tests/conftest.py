"""Shared fixtures: an in-process emulator on a free loopback port and clients pointed at it."""

from __future__ import annotations

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

"""The fault matrix: every fault the emulator injects, at the first, a middle and the last page of a sync
and of a sensor tick. Transient faults are retried to the same result; contract breaks fail cleanly."""

from __future__ import annotations

import dagster as dg
import pytest

from roughy_dagster import RoughyResource
from roughy_dagster.client import RetryPolicy, RoughyClient, RoughyProtocolError, Timeouts
from roughy_dagster.dagster_layer.scheduling import (
    DiscoveryCursor,
    build_roughy_project_discovery_sensor,
    build_sync_job,
)
from roughy_dagster.dagster_layer.state_sensor import build_roughy_state_sensor
from roughy_dagster.emulator import Emulator, World
from roughy_dagster.project_sync import sync_project
from roughy_dagster.sync.watch import StateWatcher, WatchState

from .conftest import CANARY_KEY, RecordingSleep, VirtualClock
from .helpers import fingerprint, stored_listing, truth

RETRIED = {
    "rate_limit_seconds": {"kind": "rate_limit", "retry_after": 3},
    "rate_limit_http_date": {"kind": "rate_limit", "retry_after": 20, "retry_after_date": True},
    "internal_500": {"kind": "internal"},
    "bad_gateway_502_html": {"kind": "bad_gateway_html"},
    "unavailable_503": {"kind": "unavailable"},
    "gateway_timeout_504_html": {"kind": "gateway_timeout_html"},
    "slow_past_read_timeout": {"kind": "slow", "delay": 1.0},
    "dropped_connection": {"kind": "drop"},
    "truncated_json": {"kind": "truncated"},
}
CONTRACT_BREAKS = {
    "missing_required_field": {"kind": "missing_field"},
    "unknown_state": {"kind": "unknown_state"},
    "malformed_duration": {"kind": "bad_duration"},
    "wrong_type": {"kind": "wrong_type"},
}
POSITIONS = ("first", "middle", "last")


@pytest.fixture(scope="module")
def world_and_emulator():
    world = World.seeded(seed=21, projects=1, assets_per_project=450)
    with Emulator(world, api_key=CANARY_KEY) as emulator:
        yield world, emulator


def make_client(emulator: Emulator) -> RoughyClient:
    return RoughyClient(
        emulator.api_key,
        emulator.base_url,
        timeouts=Timeouts(read=0.4),
        sleep=RecordingSleep(),
        retry=RetryPolicy(),
    )


def skip_for(position: str, requests: int) -> int:
    return {"first": 0, "middle": requests // 2, "last": requests - 1}[position]


def prepared_database(world: World, emulator: Emulator, tmp_path):
    """A file synced once, then remote changes for the next sync; returns (path, cost of a full read)."""
    project = world.projects[0]
    database = tmp_path / "roughy.duckdb"
    with make_client(emulator) as client:
        sync_project(client, database, project)
        world.random_changes(6, project_id=project)
        scratch = tmp_path / "scratch.duckdb"
        sync_project(client, scratch, project)  # first load of a scratch copy: a full read, many pages
        emulator.reset_counts()
        report = sync_project(client, scratch, project, full_refresh=True)
    return database, report.requests


@pytest.mark.parametrize("position", POSITIONS)
@pytest.mark.parametrize("name", sorted(RETRIED))
def test_sync_survives_a_transient_fault(world_and_emulator, tmp_path, name: str, position: str):
    world, emulator = world_and_emulator
    database, requests = prepared_database(world, emulator, tmp_path)
    emulator.app.faults.clear()
    emulator.inject(skip=skip_for(position, requests), **RETRIED[name])
    with make_client(emulator) as client:
        report = sync_project(client, database, world.projects[0], full_refresh=True)
    assert emulator.app.faults.pending() == 0, "the fault was injected"
    assert report.retries >= 1 and report.verified
    assert stored_listing(database, world.projects[0]) == truth(world, world.projects[0])


@pytest.mark.parametrize("position", POSITIONS)
@pytest.mark.parametrize("name", sorted(CONTRACT_BREAKS))
def test_sync_leaves_an_off_contract_item_as_stored(world_and_emulator, tmp_path, name: str, position: str):
    """An item breaking the contract is quarantined (tests/test_quarantine.py): the rest is written. On a
    page without items (an empty list, a list's proven end) the fault breaks the page as a whole."""
    world, emulator = world_and_emulator
    database, requests = prepared_database(world, emulator, tmp_path)
    before = fingerprint(database)
    emulator.app.faults.clear()
    emulator.inject(skip=skip_for(position, requests), **CONTRACT_BREAKS[name])
    with make_client(emulator) as client:
        try:
            report = sync_project(client, database, world.projects[0], full_refresh=True)
        except RoughyProtocolError as caught:
            assert caught.request_id and caught.request_id in str(caught)
            assert "breaks the API contract: Expected `int`, got `str` - at `$.total`" in str(caught)
            assert fingerprint(database) == before, "the tables are as they were"
            return
    assert position == "middle" or not report.verified  # the middle request always shows items
    assert not report.verified and len(report.off_contract) == 1
    assert "request id req_" in report.reason and "off-contract" in report.reason
    asset_id = report.off_contract[0].split()[1].rstrip(":")
    stored = [item for item in stored_listing(database, world.projects[0]) if item["id"] != asset_id]
    assert stored == [item for item in truth(world, world.projects[0]) if item["id"] != asset_id]


def sensor_tick(emulator: Emulator, state: WatchState):
    with make_client(emulator) as client:
        return StateWatcher(client, project_id=None, watched=["ready", "failed"]).tick(state)


def sensor_setup(world: World, emulator: Emulator):
    """A baseline tick, then changes; returns (baseline state, what a clean tick finds, its request count)."""
    emulator.app.faults.clear()
    baseline = sensor_tick(emulator, WatchState()).state
    world.top_up(world.projects[0], 2)
    world.add_asset(world.projects[0], state="failed")
    clean = sensor_tick(emulator, baseline)
    return baseline, sorted(str(a.id) for a in clean.entered), clean.requests


@pytest.mark.parametrize("position", POSITIONS)
@pytest.mark.parametrize("name", sorted(RETRIED))
def test_sensor_tick_survives_a_transient_fault(world_and_emulator, name: str, position: str):
    world, emulator = world_and_emulator
    baseline, expected, requests = sensor_setup(world, emulator)
    emulator.inject(skip=skip_for(position, requests), **RETRIED[name])
    result = sensor_tick(emulator, baseline)
    assert emulator.app.faults.pending() == 0
    assert result.complete and sorted(str(a.id) for a in result.entered) == expected and expected


@pytest.mark.parametrize("position", POSITIONS)
@pytest.mark.parametrize("name", sorted(CONTRACT_BREAKS))
def test_sensor_tick_fails_cleanly_on_a_contract_break(world_and_emulator, name: str, position: str):
    world, emulator = world_and_emulator
    baseline, expected, requests = sensor_setup(world, emulator)
    emulator.inject(skip=skip_for(position, requests), **CONTRACT_BREAKS[name])
    with pytest.raises(RoughyProtocolError) as caught:
        sensor_tick(emulator, baseline)
    assert caught.value.request_id in str(caught.value)
    # A failed tick leaves the cursor (the baseline) untouched: the next tick finds the same entries.
    assert sorted(str(a.id) for a in sensor_tick(emulator, baseline).entered) == expected


# -- sensor ticks end within their budget whatever the server does, and keep their progress -------------

TICK_CLOCK = VirtualClock()


class ClockedRoughyResource(RoughyResource):
    """`RoughyResource` whose clients measure and spend time on the test's `TICK_CLOCK` (never sleeping)."""

    def get_client(self) -> RoughyClient:
        return RoughyClient(
            self.api_key,
            self.base_url,
            timeouts=Timeouts(read=self.read_timeout_seconds),
            sleep=TICK_CLOCK,
            clock=TICK_CLOCK.now,
        )


@dg.op
def _noop() -> None:
    """Nothing to do: the tests look at the run requests only."""


@dg.job
def _tick_job() -> None:
    _noop()


@pytest.fixture
def tick_world():
    global TICK_CLOCK
    TICK_CLOCK = VirtualClock()
    world = World.seeded(seed=5, projects=4, assets_per_project=120)
    with Emulator(world, api_key=CANARY_KEY) as emulator, dg.instance_for_test() as instance:
        yield emulator, instance


def evaluate(sensor: dg.SensorDefinition, emulator: Emulator, instance, cursor: str | None, read: float = 30):
    resource = ClockedRoughyResource(
        api_key=CANARY_KEY, base_url=emulator.base_url, read_timeout_seconds=read
    )
    started = TICK_CLOCK.now()
    with dg.build_sensor_context(instance=instance, cursor=cursor, resources={"roughy": resource}) as context:
        result = sensor(context)
    return result, TICK_CLOCK.now() - started


def discovery_sensor(budget: float) -> dg.SensorDefinition:
    return build_roughy_project_discovery_sensor(build_sync_job(), tick_budget_seconds=budget)


def discovered(result: dg.SensorResult) -> set[str]:
    """The project partitions a discovery tick adds."""
    return {key for request in result.dynamic_partitions_requests or [] for key in request.partition_keys}


def test_discovery_tick_under_a_long_retry_after_ends_within_budget_and_keeps_progress(tick_world):
    emulator, instance = tick_world
    sensor = discovery_sensor(40)
    emulator.inject("rate_limit", retry_after=65, skip=2)
    first, elapsed = evaluate(sensor, emulator, instance, None)
    assert elapsed < 40 and TICK_CLOCK.waits == [], "the 65 s Retry-After was not waited"
    assert emulator.list_requests == 3
    cursor = DiscoveryCursor.parse(first.cursor)
    assert (cursor.walk_state, cursor.walk_offset) != (0, 0) and cursor.watermark_us is None
    found_first = discovered(first)
    assert found_first, "the projects of the pages read are kept"
    emulator.reset_counts()
    second, _ = evaluate(sensor, emulator, instance, first.cursor)
    assert emulator.request_log[0]["offset"] == str(cursor.walk_offset), "resumes where it stopped"
    found = found_first | discovered(second)
    assert found == set(emulator.world.projects)
    assert DiscoveryCursor.parse(second.cursor).watermark_us is not None


def test_discovery_head_reads_check_the_budget(tick_world):
    emulator, instance = tick_world
    sensor = discovery_sensor(40)
    done, _ = evaluate(sensor, emulator, instance, None)
    assert DiscoveryCursor.parse(done.cursor).watermark_us is not None
    project = emulator.world.add_project()
    emulator.world.add_asset(project, state="ready")
    emulator.inject("unavailable", retry_after=30, skip=1, count=5)
    emulator.reset_counts()
    cut, elapsed = evaluate(sensor, emulator, instance, done.cursor)
    assert elapsed < 40 and len(TICK_CLOCK.waits) == 1 and 30 <= TICK_CLOCK.waits[0] < 31
    assert emulator.list_requests == 3, "one head, a 503, its retry; the next wait would pass the budget"
    assert DiscoveryCursor.parse(cut.cursor).watermark_us == DiscoveryCursor.parse(done.cursor).watermark_us
    emulator.app.faults.clear()
    again, _ = evaluate(sensor, emulator, instance, cut.cursor)
    assert project in discovered(cut) | discovered(again)


def test_discovery_tick_against_a_slow_server_ends_within_budget(tick_world):
    emulator, instance = tick_world
    sensor = discovery_sensor(1.0)
    emulator.inject("slow", delay=0.35, count=50)
    first, _ = evaluate(sensor, emulator, instance, None, read=5)
    cursor = DiscoveryCursor.parse(first.cursor)
    assert cursor.watermark_us is None and (cursor.walk_state, cursor.walk_offset) != (0, 0)
    assert 2 <= emulator.list_requests <= 4 and TICK_CLOCK.waits == []


def test_state_sensor_tick_under_a_long_retry_after_ends_within_budget(tick_world):
    emulator, instance = tick_world
    sensor = build_roughy_state_sensor(job=_tick_job, tick_budget_seconds=40)
    baseline, _ = evaluate(sensor, emulator, instance, None)
    emulator.world.top_up(emulator.world.projects[0], 2)
    emulator.inject("rate_limit", retry_after=65)
    cut, elapsed = evaluate(sensor, emulator, instance, baseline.cursor)
    assert elapsed < 40 and TICK_CLOCK.waits == [] and not cut.run_requests
    after, _ = evaluate(sensor, emulator, instance, cut.cursor)
    assert len(after.run_requests) == 2, "the next tick finds what the cut one could not"


@pytest.mark.parametrize(
    "lie", [{"total_bias": {"*": -150}}, {"max_page_items": 40}, {"total_bias": {"*": 500}}]
)
def test_discovery_pages_through_the_primitive_whatever_the_server_says(lie):
    # Totals too low or too high, pages shorter than asked: the walk ends (ends are proven by an empty
    # page, never taken from `total`) and finds every project.
    world = World.seeded(seed=9, projects=6, assets_per_project=90)
    with Emulator(world, api_key=CANARY_KEY, **lie) as emulator, dg.instance_for_test() as instance:
        sensor = discovery_sensor(40)
        found: set[str] = set()
        cursor = None
        for _ in range(3):
            result, _ = evaluate(sensor, emulator, instance, cursor)
            found |= discovered(result)
            cursor = result.cursor
        assert found == set(world.projects)
        assert DiscoveryCursor.parse(cursor).watermark_us is not None

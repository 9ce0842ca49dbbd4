"""`roughy_asset_state_sensor` ticks against the emulator: quiet start, one run per change, never twice.

Latency is simulated, never waited for: `SimulatedLatency` is a clock the emulator advances by a fixed
amount per listing request it serves, and the watcher measures its budget on that clock.
"""

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
import yaml

from roughy_dagster import RoughyResource
from roughy_dagster.dagster_layer.definitions import build_roughy_defs
from roughy_dagster.dagster_layer.settings import RoughySettings
from roughy_dagster.dagster_layer.state_sensor import (
    RoughyAssetBatch,
    RoughyAssetEvent,
    build_roughy_state_sensor,
)
from roughy_dagster.emulator import Emulator, World
from roughy_dagster.emulator.world import SEED_EPOCH
from roughy_dagster.sync.model import created_us
from roughy_dagster.sync.watch import StateWatcher, WatchState

from .conftest import CANARY_KEY

REPO = Path(__file__).resolve().parent.parent


@dg.op(name="handle_roughy_asset")
def handle(config: RoughyAssetEvent) -> None:
    """Accept the event the sensor passes."""


@dg.job
def ready_job() -> None:
    handle()


@dg.job
def failed_job() -> None:
    handle()


class Ticker:
    """Evaluates the sensor like the daemon does, remembering every run key it was asked to launch."""

    def __init__(self, emulator: Emulator, instance, monkeypatch, project_ids=None, sensor=None):
        monkeypatch.setenv("ROUGHY_API_KEY", CANARY_KEY)
        self.emulator = emulator
        self.instance = instance
        self.defs = build_roughy_defs(
            RoughySettings(base_url=emulator.base_url, project_ids=tuple(project_ids or ())),
            state_jobs={"ready": ready_job, "failed": failed_job},
            extra_sensors=[sensor] if sensor is not None else (),
        )
        self.sensor = self.defs.resolve_sensor_def(sensor.name if sensor else "roughy_asset_state_sensor")
        self.cursor: str | None = None
        self.launched: list[str] = []

    def tick(self) -> list[dg.RunRequest]:
        self.emulator.reset_counts()
        with dg.build_sensor_context(
            instance=self.instance,
            instance_ref=self.instance.get_ref(),
            cursor=self.cursor,
            definitions=self.defs,
            resources={
                "roughy": RoughyResource(api_key=dg.EnvVar("ROUGHY_API_KEY"), base_url=self.emulator.base_url)
            },
        ) as context:
            result = self.sensor.evaluate_tick(context)
        self.cursor = result.cursor
        requests = list(result.run_requests or [])
        self.launched += [r.run_key for r in requests]
        return requests


@pytest.fixture
def instance(tmp_path):
    with dg.instance_for_test(temp_dir=str(tmp_path)) as test_instance:
        yield test_instance


def keys(requests) -> list[str]:
    return sorted(r.run_key for r in requests)


def test_first_tick_is_quiet_then_one_run_per_change(emulator: Emulator, instance, monkeypatch):
    world = emulator.world
    ticker = Ticker(emulator, instance, monkeypatch)
    assert ticker.tick() == []
    project = world.projects[0]
    fresh_ready = world.add_asset(project, state="ready")
    fresh_failed = world.add_asset(project, state="failed")
    processing = next(a for a in world.listing(project, "processing"))
    world.advance(processing["id"], "failed")
    uploading = world.add_asset(project, state="pending_upload")  # not watched: no run
    requests = ticker.tick()
    assert keys(requests) == sorted(
        [f"{fresh_ready.id}:ready", f"{fresh_failed.id}:failed", f"{processing['id']}:failed"]
    )
    by_key = {r.run_key: r for r in requests}
    failed = by_key[f"{fresh_failed.id}:failed"]
    assert failed.job_name == "failed_job" and by_key[f"{fresh_ready.id}:ready"].job_name == "ready_job"
    event = failed.run_config["ops"]["handle_roughy_asset"]["config"]
    assert event["error_code"] == fresh_failed.error_code and event["project_id"] == project
    assert failed.tags["roughy/asset_id"] == fresh_failed.id and failed.tags["roughy/state"] == "failed"
    assert ticker.tick() == [], "the same change never fires twice"
    world.advance(uploading.id, "processing")
    world.advance(uploading.id, "ready")
    assert keys(ticker.tick()) == [f"{uploading.id}:ready"]


def test_an_old_asset_turning_ready_late_is_caught(instance, monkeypatch):
    world = World.seeded(seed=3, projects=1, assets_per_project=20_000)
    assert world.count(world.projects[0], "pending_payment") > 100, "the unpaid list spans several pages"
    with Emulator(world, api_key=CANARY_KEY) as emulator:
        ticker = Ticker(emulator, instance, monkeypatch)
        ticker.tick()
        (paid,) = world.top_up(world.projects[0], 1)  # the oldest unpaid asset, far below every head
        assert keys(ticker.tick()) == [f"{paid.id}:ready"]
        assert ticker.tick() == []
        assert emulator.list_requests <= 5


def test_quiet_ticks_make_a_bounded_number_of_requests(emulator: Emulator, instance, monkeypatch):
    ticker = Ticker(emulator, instance, monkeypatch)
    ticker.tick()
    for _ in range(3):
        assert ticker.tick() == []
        assert emulator.list_requests <= 5


def test_per_project_scopes(emulator: Emulator, instance, monkeypatch):
    world = emulator.world
    ticker = Ticker(emulator, instance, monkeypatch, project_ids=[world.projects[0]])
    ticker.tick()
    watched = world.add_asset(world.projects[0], state="ready")
    world.add_asset(world.projects[1], state="ready")  # another project: not watched
    assert keys(ticker.tick()) == [f"{watched.id}:ready"]


def test_restart_and_reset_cursor_never_fire_twice(emulator: Emulator, tmp_path, monkeypatch):
    world = emulator.world
    home = str(tmp_path)
    with dg.instance_for_test(temp_dir=home) as instance:
        ticker = Ticker(emulator, instance, monkeypatch)
        ticker.tick()
        first = world.add_asset(world.projects[0], state="ready")
        assert keys(ticker.tick()) == [f"{first.id}:ready"]
        cursor = ticker.cursor
    with dg.instance_for_test(temp_dir=home) as restarted:  # a restarted daemon reads the stored cursor
        ticker = Ticker(emulator, restarted, monkeypatch)
        ticker.cursor = cursor
        assert ticker.tick() == []
        ticker.cursor = None  # a reset cursor starts from the present: no replay, no duplicates
        assert ticker.tick() == []
        second = world.add_asset(world.projects[0], state="failed")
        assert keys(ticker.tick()) == [f"{second.id}:failed"]


def test_garbage_cursor_starts_from_the_present(emulator: Emulator, instance, monkeypatch):
    ticker = Ticker(emulator, instance, monkeypatch)
    ticker.cursor = "{not json"
    assert ticker.tick() == []
    assert ticker.cursor and ticker.cursor.startswith("{")


def test_factory_refuses_a_state_without_a_job():
    with pytest.raises(ValueError, match="no job to run for state"):
        build_roughy_state_sensor(jobs_by_state={"ready": ready_job}, states=["ready", "failed"])


def test_a_tick_out_of_time_resumes_on_the_next(emulator: Emulator, client):
    world = emulator.world

    def watcher(budget: float) -> StateWatcher:
        return StateWatcher(client, project_id=None, watched=["ready", "failed"], budget_seconds=budget)

    baseline = watcher(40).tick(WatchState())
    assert baseline.complete and baseline.entered == []
    fresh = world.add_asset(world.projects[0], state="ready")
    starved = watcher(0).tick(baseline.state)
    assert not starved.complete and starved.entered == [] and starved.requests == 0
    assert starved.state.watermark_us == baseline.state.watermark_us
    resumed = watcher(40).tick(starved.state)
    assert resumed.complete and [str(a.id) for a in resumed.entered] == [fresh.id]


@pytest.mark.parametrize("seed", [7, 8])
def test_every_entry_is_fired_once_over_many_ticks(client_for, seed: int):
    """Random life between ticks, account-wide: the fired set equals the truth, tick after tick."""
    world = World.seeded(seed=seed, projects=3, assets_per_project=2000)
    world.follow_real_time = True
    with Emulator(world, api_key=CANARY_KEY) as emulator, client_for(emulator) as client:
        state = StateWatcher(client, project_id=None, watched=["ready", "failed"]).tick(WatchState()).state
        fired: list[tuple[str, str]] = []
        expected: set[tuple[str, str]] = set()
        for _ in range(40):
            start = len(world.history)
            world.random_changes(6)
            result = StateWatcher(client, project_id=None, watched=["ready", "failed"]).tick(state)
            state = result.state
            fired += [(str(a.id), a.state.value) for a in result.entered]
            expected |= {(a, s) for a, s in world.history[start:] if s in ("ready", "failed")}
    assert len(fired) == len(set(fired)), "never twice"
    live_expected = {(a, s) for a, s in expected if a in world.assets}
    assert live_expected <= set(fired) <= expected


# -- latency, budgets and scale (simulated latency: no test waits or asserts wall-clock time) -----------


class SimulatedLatency:
    """A monotonic clock (seconds) that the emulator advances by `seconds` per listing request served."""

    def __init__(self, emulator: Emulator, seconds: float) -> None:
        self.now = 0.0
        self.seconds = seconds
        emulator.app.before_listing = self._served

    def _served(self, query: dict[str, str]) -> None:
        self.now += self.seconds

    def __call__(self) -> float:
        return self.now


def spread_world(states: dict[str, int], *, days: int = 60, seed: int = 1) -> World:
    """One project whose assets (counts per state, shuffled) are spread evenly over `days` days."""
    world = World(seed=seed)
    project = world.add_project()
    rng = random.Random(seed)
    order = [state for state, count in states.items() for _ in range(count)]
    rng.shuffle(order)
    for index, state in enumerate(order):
        moment = SEED_EPOCH + timedelta(seconds=days * 86_400 * index / len(order))
        world.add_asset(project, state=state, created_at=moment)
    world.clock = SEED_EPOCH + timedelta(days=days, minutes=30)
    return world


def world_now(world: World):
    """The `now_us` of a world whose clock is the seeded one."""
    return lambda: created_us(world.clock)


def settle(client, world: World, clock, state=None, **options) -> WatchState:
    """Tick until a tick completes (the first snapshot may need several ticks on a slow API)."""
    for _ in range(500):
        result = StateWatcher(
            client,
            project_id=None,
            watched=["ready", "failed"],
            clock=clock,
            now_us=world_now(world),
            **options,
        ).tick(state)
        state = result.state
        if result.complete:
            return state
    raise AssertionError("the watcher never completed a tick")


@pytest.mark.parametrize("latency", [0.05, 1.0, 5.0])
def test_old_assets_turning_ready_all_fire_at_any_latency(client_for, latency: float):
    """Old processing assets spread among many ready ones turn ready: each tick fires what it found and
    keeps its progress, so all of them fire exactly once, whatever the latency (no livelock)."""
    world = spread_world({"ready": 5000, "processing": 500})
    with Emulator(world, api_key=CANARY_KEY) as emulator, client_for(emulator) as client:
        clock = SimulatedLatency(emulator, latency)
        state = settle(client, world, clock)
        turned = [a["id"] for a in world.listing(None, "processing")]
        for asset_id in turned:
            world.advance(asset_id, "ready")
        fired: list[str] = []
        for ticks in range(1, 400):  # noqa: B007 - counted
            result = StateWatcher(
                client, project_id=None, watched=["ready"], clock=clock, now_us=world_now(world)
            ).tick(state)
            state = result.state
            fired += [a.id for a in result.entered]
            if result.complete:
                break
        assert sorted(fired) == sorted(turned), "every one fired, none twice"
        if latency <= 0.05:
            assert ticks == 1, "at 50 ms a single 40 s tick finds them all"
        assert StateWatcher(client, project_id=None, watched=["ready"], clock=clock).tick(state).entered == []


def test_random_life_with_ticks_cut_short_fires_everything_once(client_for):
    """A budget of a few requests a tick (simulated 50 ms each) cuts most ticks short while the world
    changes: once it is quiet, the fired set equals the truth, and nothing fired twice."""
    world = World.seeded(seed=11, projects=2, assets_per_project=1500)
    world.follow_real_time = True
    with Emulator(world, api_key=CANARY_KEY) as emulator, client_for(emulator) as client:
        clock = SimulatedLatency(emulator, 0.05)

        def tick(state):
            return StateWatcher(
                client, project_id=None, watched=["ready", "failed"], clock=clock, budget_seconds=0.3
            ).tick(state)

        state = None
        while state is None or not state.started or state.owed:
            state = tick(state).state
        start = len(world.history)
        fired: list[tuple[str, str]] = []
        cut_short = 0
        for _ in range(30):
            world.random_changes(8)
            result = tick(state)
            state, cut_short = result.state, cut_short + (not result.complete)
            fired += [(a.id, a.state.value) for a in result.entered]
        for _ in range(200):  # quiet: the ticks catch up
            result = tick(state)
            state = result.state
            fired += [(a.id, a.state.value) for a in result.entered]
            if (
                result.complete
                and not state.suspect
                and not any(s.startswith("~") for s, _ in state.known.values())
            ):
                break
    assert cut_short > 5, "the budget did cut ticks short"
    assert len(fired) == len(set(fired)), "never twice"
    expected = {(a, s) for a, s in world.history[start:] if s in ("ready", "failed")}
    assert {(a, s) for a, s in expected if a in world.assets} <= set(fired) <= expected


def test_first_tick_starts_from_the_present_exactly(client):
    """2,000 assets became ready just before the sensor started: no tick fires them; `replay_since`
    fires exactly those created since then, once."""
    world = World(seed=5)
    project = world.add_project()
    now = SEED_EPOCH + timedelta(days=3)
    for index in range(2000):
        world.add_asset(project, state="ready", created_at=now - timedelta(milliseconds=150 * index))
    world.clock = now
    with Emulator(world, api_key=CANARY_KEY) as emulator, client_for_emulator(emulator) as client:
        clock = SimulatedLatency(emulator, 0.05)
        state = settle(client, world, clock)
        assert settle(client, world, clock, state) and _entered(client, world, clock, state) == []
        fresh = world.add_asset(project, state="ready")
        assert [a.id for a in _entered(client, world, clock, state)] == [fresh.id]
        since = now - timedelta(seconds=30)
        replayed = StateWatcher(
            client,
            project_id=None,
            watched=["ready"],
            clock=clock,
            now_us=world_now(world),
            replay_since_us=created_us(since),
        ).tick(None)
        expected = {a["id"] for a in world.listing(project, "ready") if _created(a) >= since}
        assert replayed.complete and {a.id for a in replayed.entered} == expected and len(expected) == 202
        assert _entered(client, world, clock, replayed.state) == []


def client_for_emulator(emulator: Emulator):
    from roughy_dagster.client import RetryPolicy, RoughyClient

    return RoughyClient(emulator.api_key, emulator.base_url, sleep=lambda _: None, retry=RetryPolicy())


def _created(item: dict) -> datetime:
    return datetime.strptime(str(item["created_at"]), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def _entered(client, world: World, clock, state: WatchState):
    return (
        StateWatcher(
            client, project_id=None, watched=["ready", "failed"], clock=clock, now_us=world_now(world)
        )
        .tick(state)
        .entered
    )


@pytest.mark.parametrize("removed", [False, True])
def test_a_created_at_in_the_future_never_hides_later_assets(client, emulator: Emulator, removed: bool):
    world = emulator.world
    project = world.projects[0]
    clock = SimulatedLatency(emulator, 0.05)
    state = settle(client, world, clock)
    future = world.add_asset(project, state="ready", created_at=datetime(2100, 1, 1, tzinfo=UTC))
    result = StateWatcher(
        client, project_id=None, watched=["ready"], clock=clock, now_us=world_now(world)
    ).tick(state)
    assert [a.id for a in result.entered] == [future.id]
    assert result.state.watermark_us is not None and result.state.watermark_us <= created_us(world.clock)
    state = result.state
    if removed:
        world.delete(future.id)
    later = [world.add_asset(project, state="ready") for _ in range(12)]
    found = _entered(client, world, clock, state)
    assert sorted(a.id for a in found) == sorted(a.id for a in later)


def test_quiet_tick_and_cursor_stay_small_with_20000_abandoned_uploads(instance, monkeypatch):
    world = spread_world({"pending_upload": 20_000, "ready": 2000}, seed=3)
    project = world.projects[0]
    with Emulator(world, api_key=CANARY_KEY) as emulator:
        ticker = Ticker(emulator, instance, monkeypatch)
        while ticker.tick() == [] and ticker.emulator.list_requests > 10:
            pass  # the first snapshot (about 200 requests)
        cursor = ticker.cursor
        for _ in range(3):
            assert ticker.tick() == []
            assert emulator.list_requests <= 10, "a quiet tick: one request per state list"
            assert ticker.cursor == cursor, "a quiet tick writes nothing new"
        assert cursor is not None and len(cursor.encode()) <= 16 * 1024
        stored = json.loads(cursor)
        assert stored["v"] == 2 and "known" not in cursor
        uploads = world.listing(project, "pending_upload")
        old = uploads[len(uploads) // 2]["id"]  # an abandoned upload deep in the list finishes at last
        world.advance(old, "processing")
        world.advance(old, "ready")
        assert keys(ticker.tick()) == [f"{old}:ready"]
        assert emulator.list_requests <= 40, "found by bisection, not by reading 200 pages"


BAD_CURSORS = {
    "not JSON": "{not json",
    "a JSON list": "[1, 2]",
    "version 1, watermark not a number": json.dumps({"*": {"watermark_us": "soon", "pending": {}}}),
    "version 1, unknown state": json.dumps({"*": {"watermark_us": None, "pending": {"x": ["archived", 1]}}}),
    "version 2, generation not a count": json.dumps({"v": 2, "gen": "x", "digest": "0"}),
    "version 2, nothing stored": json.dumps({"v": 2, "gen": 40, "digest": "0"}),
    "future version": json.dumps({"v": 9}),
}


@pytest.mark.parametrize("name", sorted(BAD_CURSORS))
def test_an_unreadable_cursor_is_logged_and_replaced_by_a_safe_start(
    emulator: Emulator, instance, monkeypatch, capsys, name: str
):
    ticker = Ticker(emulator, instance, monkeypatch)
    ticker.cursor = BAD_CURSORS[name]
    assert ticker.tick() == []
    assert "replaced by a safe start" in capsys.readouterr().err
    assert json.loads(ticker.cursor or "")["v"] == 2
    fresh = emulator.world.add_asset(emulator.world.projects[0], state="ready")
    assert keys(ticker.tick()) == [f"{fresh.id}:ready"]


def test_a_tampered_stored_state_is_detected(emulator: Emulator, instance, monkeypatch, capsys):
    ticker = Ticker(emulator, instance, monkeypatch)
    ticker.tick()
    emulator.world.add_asset(emulator.world.projects[0], state="ready")
    ticker.tick()
    pointer = json.loads(ticker.cursor or "")
    key = f"roughy_dagster/state_sensor/roughy_asset_state_sensor/{pointer['gen'] % 2}"
    instance.daemon_cursor_storage.set_cursor_values({key: "garbage"})
    launched = set(ticker.launched)
    assert set(keys(ticker.tick())) <= launched, "what was created after the last watermark: nothing"
    assert "does not match the cursor's digest" in capsys.readouterr().err


def test_an_old_cursor_replays_from_its_watermark(emulator: Emulator, instance, monkeypatch):
    """A cursor of the previous format: replay from its watermark; run keys make repeats harmless."""
    world = emulator.world
    ticker = Ticker(emulator, instance, monkeypatch)
    ticker.tick()
    mark = json.loads(ticker.cursor or "")["watermarks"]["*"]
    fresh = world.add_asset(world.projects[0], state="failed")
    ticker.cursor = json.dumps({"*": {"watermark_us": created_us(datetime.fromisoformat(mark))}})
    assert f"{fresh.id}:failed" in keys(ticker.tick())


def test_reaction_runs_are_tagged_for_run_retries_and_the_shipped_instance_retries(
    emulator: Emulator, instance, monkeypatch
):
    ticker = Ticker(emulator, instance, monkeypatch)
    ticker.tick()
    emulator.world.add_asset(emulator.world.projects[0], state="failed")
    (request,) = ticker.tick()
    assert request.tags["dagster/max_retries"] == "3"
    config = yaml.safe_load((REPO / ".dagster_home" / "dagster.yaml").read_text())
    assert config["run_retries"]["enabled"] is True
    from dagster._core.instance.config import dagster_instance_config

    loaded, _ = dagster_instance_config(str(REPO / ".dagster_home"))
    assert loaded["run_retries"]["enabled"] is True


def test_a_burst_is_capped_per_tick_and_carried_over(emulator: Emulator, instance, monkeypatch):
    sensor = build_roughy_state_sensor(
        jobs_by_state={"ready": ready_job, "failed": failed_job}, name="capped", max_runs_per_tick=100
    )
    ticker = Ticker(emulator, instance, monkeypatch, sensor=sensor)
    ticker.tick()
    burst = [emulator.world.add_asset(emulator.world.projects[0], state="ready") for _ in range(250)]
    sizes = [len(ticker.tick()) for _ in range(4)]
    assert sizes == [100, 100, 50, 0]
    assert sorted(ticker.launched) == sorted(f"{a.id}:ready" for a in burst)
    assert len(json.loads(ticker.cursor or "")) and len((ticker.cursor or "").encode()) < 1024


@dg.op(name="handle_roughy_asset")
def handle_batch(config: RoughyAssetBatch) -> int:
    return len(config.events)


@dg.job
def ready_batch_job() -> None:
    handle_batch()


@dg.job
def failed_batch_job() -> None:
    handle_batch()


def test_batch_mode_launches_one_run_per_state_with_the_batch(emulator: Emulator, instance, monkeypatch):
    sensor = build_roughy_state_sensor(
        jobs_by_state={"ready": ready_batch_job, "failed": failed_batch_job},
        name="batched",
        batch=True,
        max_batch_size=20,
    )
    ticker = Ticker(emulator, instance, monkeypatch, sensor=sensor)
    ticker.tick()
    project = emulator.world.projects[0]
    ready = [emulator.world.add_asset(project, state="ready") for _ in range(30)]
    failed = [emulator.world.add_asset(project, state="failed") for _ in range(3)]
    first = {r.job_name: r for r in ticker.tick()}
    assert sorted(first) == ["failed_batch_job", "ready_batch_job"]
    events = first["ready_batch_job"].run_config["ops"]["handle_roughy_asset"]["config"]["events"]
    assert len(events) == 20 and first["failed_batch_job"].tags["roughy/batch_size"] == "3"
    (second,) = ticker.tick()
    rest = second.run_config["ops"]["handle_roughy_asset"]["config"]["events"]
    assert sorted(e["id"] for e in events + rest) == sorted(a.id for a in ready)
    result = ready_batch_job.execute_in_process(run_config=second.run_config)
    assert result.output_for_node("handle_roughy_asset") == 10
    assert {
        e["id"]
        for e in first["failed_batch_job"].run_config["ops"]["handle_roughy_asset"]["config"]["events"]
    } == {a.id for a in failed}


def test_an_account_with_1000_configured_projects_is_watched_through_the_account_lists(instance, monkeypatch):
    world = World.seeded(seed=9, projects=1000, assets_per_project=3)
    configured = world.projects[:999]
    outsider = world.projects[999]
    with Emulator(world, api_key=CANARY_KEY) as emulator:
        ticker = Ticker(emulator, instance, monkeypatch, project_ids=configured)
        ticker.tick()
        assert ticker.tick() == [] and emulator.list_requests <= 10, "a quiet tick, not 5,000 requests"
        changed = [world.add_asset(p, state="ready") for p in configured[::100]]
        world.add_asset(outsider, state="ready")  # not configured: not reported
        assert keys(ticker.tick()) == sorted(f"{a.id}:ready" for a in changed)
        assert {q.get("project_id") for q in emulator.request_log} == {None}


def test_the_overlap_window_is_checked_not_read(client):
    """A late-published asset inside the overlap window below the watermark fires; a deleted remembered
    one is forgotten; a quiet tick after a busy minute stays at a few requests; a late asset hidden from
    the count by a deletion is found when the window page that holds it takes its turn."""
    world = World(seed=4)
    project = world.add_project()
    now = SEED_EPOCH + timedelta(days=1)
    for index in range(900):  # a busy last minute and a half: nine pages of ready assets in the window
        world.add_asset(project, state="ready", created_at=now - timedelta(milliseconds=100 * index))
    world.clock = now
    with Emulator(world, api_key=CANARY_KEY) as emulator, client_for_emulator(emulator) as client:
        clock = SimulatedLatency(emulator, 0.05)
        state = settle(client, world, clock)
        state = settle(client, world, clock, state)
        emulator.reset_counts()
        assert _entered(client, world, clock, state) == [] and emulator.list_requests <= 9
        late = world.add_asset(project, state="ready", created_at=now - timedelta(seconds=30, microseconds=7))
        result = StateWatcher(
            client, project_id=None, watched=["ready"], clock=clock, now_us=world_now(world)
        ).tick(state)
        assert [a.id for a in result.entered] == [late.id]
        gone = str(world.listing(project, "ready")[400]["id"])
        world.delete(gone)
        state = settle(client, world, clock, result.state)
        assert gone not in state.recent
        emulator.reset_counts()
        assert _entered(client, world, clock, state) == [] and emulator.list_requests <= 9
        # A late asset and a deletion in the same window and tick: found when its page's turn comes.
        late = world.add_asset(project, state="ready", created_at=now - timedelta(seconds=45, microseconds=3))
        world.delete(str(world.listing(project, "ready")[200]["id"]))
        found = []
        for _ in range(12):
            result = StateWatcher(
                client, project_id=None, watched=["ready"], clock=clock, now_us=world_now(world)
            ).tick(state)
            state = result.state
            found += [a.id for a in result.entered]
        assert found == [late.id]


def test_abandoned_uploads_deleted_anywhere_are_all_found_then_quiet(client):
    """Deletions spread through a long non-terminal list: the bisection's probes overlap by one item,
    so an asset between two probed pages is still bracketed; afterwards a tick is quiet again."""
    world = spread_world({"pending_upload": 3000, "ready": 1000}, seed=6)
    rng = random.Random(6)
    with Emulator(world, api_key=CANARY_KEY) as emulator, client_for_emulator(emulator) as client:
        clock = SimulatedLatency(emulator, 0.05)
        state = settle(client, world, clock)
        uploads = [str(a["id"]) for a in world.listing(None, "pending_upload")]
        for asset_id in rng.sample(uploads, 120):
            world.delete(asset_id)
        state = settle(client, world, clock, state)
        live = {a["id"] for a in world.listing(None, "pending_upload")}
        assert {k: v for k, v in state.known.items() if k not in live} == {}
        emulator.reset_counts()
        assert _entered(client, world, clock, state) == [] and emulator.list_requests <= 10


def test_a_request_cut_by_the_tick_deadline_keeps_the_tick_progress(emulator: Emulator, client):
    """The tick's client runs under the tick's deadline: when a slow answer outlives it, the watcher
    stops as if out of budget, reports what it found and keeps it (no livelock on a slow server)."""
    world = emulator.world
    state = StateWatcher(client, project_id=None, watched=["ready", "failed"]).tick(None).state
    fresh = world.add_asset(world.projects[0], state="ready")
    emulator.inject("slow", delay=3.0, match={"state": "failed"})  # the last head read of the tick
    with client.deadline(1.0):
        result = StateWatcher(
            client, project_id=None, watched=["ready", "failed"], budget_seconds=30, clock=client.clock
        ).tick(state)
    assert not result.complete and [a.id for a in result.entered] == [fresh.id]
    emulator.app.faults.clear()
    assert StateWatcher(client, project_id=None, watched=["ready", "failed"]).tick(result.state).entered == []

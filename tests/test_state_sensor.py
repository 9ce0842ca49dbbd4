"""`roughy_asset_state_sensor` ticks against the emulator: quiet start, one run per change, never twice."""

import dagster as dg
import pytest

from roughy_dagster import RoughyResource
from roughy_dagster.dagster_layer.definitions import build_roughy_defs
from roughy_dagster.dagster_layer.settings import RoughySettings
from roughy_dagster.dagster_layer.state_sensor import RoughyAssetEvent, build_roughy_state_sensor
from roughy_dagster.emulator import Emulator, World

from .conftest import CANARY_KEY


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

    def __init__(self, emulator: Emulator, instance, monkeypatch, project_ids=None):
        monkeypatch.setenv("ROUGHY_API_KEY", CANARY_KEY)
        self.emulator = emulator
        self.instance = instance
        self.defs = build_roughy_defs(
            RoughySettings(base_url=emulator.base_url, project_ids=tuple(project_ids or ())),
            state_jobs={"ready": ready_job, "failed": failed_job},
        )
        self.sensor = self.defs.resolve_sensor_def("roughy_asset_state_sensor")
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
    from roughy_dagster.sync.watch import StateWatcher, WatchState

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
    from roughy_dagster.sync.watch import StateWatcher, WatchState

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

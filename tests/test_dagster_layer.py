"""The Dagster layer against the emulator: materialize partitions, checks, schedules, discovery, settings."""

from datetime import UTC, datetime

import dagster as dg
import pytest
from dagster_duckdb import DuckDBResource

from roughy_dagster import RoughyResource, sync_project
from roughy_dagster.dagster_layer import assets as assets_module
from roughy_dagster.dagster_layer.assets import (
    PROJECTS,
    DagsterRoughyTranslator,
    build_roughy_assets,
    roughy_sync_assets,
)
from roughy_dagster.dagster_layer.definitions import build_roughy_defs
from roughy_dagster.dagster_layer.settings import RoughyConfigurationError, RoughySettings
from roughy_dagster.dagster_layer.tables import RoughyTable
from roughy_dagster.emulator import Emulator

from .conftest import CANARY_KEY
from .helpers import query, stored_listing, truth

TICK = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.fixture
def instance():
    with dg.instance_for_test() as test_instance:
        yield test_instance


@pytest.fixture
def resources(emulator: Emulator, tmp_path, monkeypatch):
    monkeypatch.setenv("ROUGHY_API_KEY", CANARY_KEY)
    return {
        "roughy": RoughyResource(api_key=dg.EnvVar("ROUGHY_API_KEY"), base_url=emulator.base_url),
        "duckdb": DuckDBResource(database=str(tmp_path / "roughy.duckdb")),
    }


ASSETS = dg.AssetKey(["roughy", "assets"])
EVENTS = dg.AssetKey(["roughy", "asset_events"])
SYNC_RUNS = dg.AssetKey(["roughy", "sync_runs"])


def materialize_project(instance, resources, project_id: str, *, full_refresh: bool = False):
    if project_id not in instance.get_dynamic_partitions(PROJECTS.name):
        instance.add_dynamic_partitions(PROJECTS.name, [project_id])
    return dg.materialize(
        [roughy_sync_assets],
        partition_key=project_id,
        instance=instance,
        resources=resources,
        run_config={"ops": {"roughy_sync": {"config": {"full_refresh": full_refresh}}}},
    )


def materializations(result, key: dg.AssetKey = ASSETS) -> dict[str, dg.AssetMaterialization]:
    """The run's materializations of one table, by partition."""
    return {
        m.partition: m for m in result.asset_materializations_for_node("roughy_sync") if m.asset_key == key
    }


def test_materializing_a_partition_syncs_the_project(emulator: Emulator, instance, resources):
    world = emulator.world
    project_id = world.projects[0]
    result = materialize_project(instance, resources, project_id)
    assert result.success
    database = resources["duckdb"].database
    assert stored_listing(database, project_id) == truth(world, project_id)
    assert {key: list(materializations(result, key)) for key in (ASSETS, EVENTS, SYNC_RUNS)} == {
        key: [project_id] for key in (ASSETS, EVENTS, SYNC_RUNS)
    }
    metadata = materializations(result)[project_id].metadata
    assert metadata["dagster/partition_row_count"].value == world.count(project_id)
    assert metadata["dagster/row_count"].value == world.count(project_id)
    # the table's name and column schema are definition metadata, not repeated in each partition's event
    assert "dagster/column_schema" not in metadata
    spec = next(s for s in roughy_sync_assets.specs if s.key == ASSETS)
    assert spec.metadata["dagster/table_name"] == "roughy.assets"
    assert "state" in [c.name for c in spec.metadata["dagster/column_schema"].columns]
    assert metadata["new"].value == world.count(project_id) and metadata["requests"].value > 0
    assert metadata["counts_by_state"].value["ready"] == world.count(project_id, "ready")
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert set(checks) == {
        "unique_ids",
        "live_rows_match_remote_totals",
        "per_state_field_rules",
        "values_fit_columns",
        "values_on_contract",
    }
    assert all(check.passed for check in checks.values())


def test_second_partition_and_incremental_resync(emulator: Emulator, instance, resources):
    world = emulator.world
    first, second = world.projects
    assert materialize_project(instance, resources, first).success
    assert materialize_project(instance, resources, second).success
    world.random_changes(6, project_id=second)
    result = materialize_project(instance, resources, second)
    (materialization,) = materializations(result).values()
    assert materialization.metadata["mode"].value == "incremental"
    assert materialization.metadata["dagster/row_count"].value == world.count()
    assert stored_listing(resources["duckdb"].database, second) == truth(world, second)
    full = materialize_project(instance, resources, second, full_refresh=True)
    (materialization,) = materializations(full).values()
    assert materialization.metadata["mode"].value == "full"


def test_checks_list_the_failing_projects_without_a_request(emulator: Emulator, client, tmp_path):
    from roughy_dagster.dagster_layer.assets import run_checks
    from roughy_dagster.store import AssetStore

    database = tmp_path / "checked.duckdb"
    first, second = emulator.world.projects
    reports = {project: sync_project(client, database, project) for project in (first, second)}
    store = AssetStore(database)
    with store.connect() as connection:
        connection.execute(
            "UPDATE roughy.assets SET duration_seconds = NULL WHERE id = "
            "(SELECT id FROM roughy.assets WHERE state = 'ready' AND project_id = ? LIMIT 1)",
            [second],
        )
    emulator.reset_counts()
    results = {r.check_name: r for r in run_checks(store, reports)}
    assert emulator.list_requests == 0  # the totals the syncs read are compared, nothing is read again
    rules = results["per_state_field_rules"]
    assert not rules.passed
    assert rules.metadata["violations"].value == {
        second: {"duration present once ready or pending_payment": 1}
    }
    assert rules.metadata["projects_checked"].value == 2 and rules.metadata["projects_failing"].value == 1
    assert results["unique_ids"].passed and results["live_rows_match_remote_totals"].passed
    reports[first].remote_totals["ready"] += 1  # as if the remote had changed during the sync
    remote = {r.check_name: r for r in run_checks(store, reports)}["live_rows_match_remote_totals"]
    assert not remote.passed and remote.severity == dg.AssetCheckSeverity.WARN
    assert list(remote.metadata["mismatched_states"].value) == [first]


def test_unknown_project_partition_fails_with_the_servers_message(emulator: Emulator, instance, resources):
    unknown = "00000000-0000-4000-8000-000000000000"
    instance.add_dynamic_partitions(PROJECTS.name, [unknown])
    result = dg.materialize(
        [roughy_sync_assets],
        partition_key=unknown,
        instance=instance,
        resources=resources,
        raise_on_error=False,
    )
    assert not result.success
    failure = result.failure_data_for_node("roughy_sync")
    assert "Project not found" in failure.error.to_string() and "req_" in failure.error.to_string()


def test_definitions_load_without_network_and_wire_everything():
    configured = "019de7f5-7e21-7402-92a8-1c0e1fa84411"
    for settings, discovering in [
        (RoughySettings(base_url="http://127.0.0.1:9"), True),
        (RoughySettings(base_url="http://127.0.0.1:9", project_ids=(configured,)), False),
    ]:
        defs = build_roughy_defs(settings)
        repository = defs.get_repository_def()
        assert repository.has_job("roughy_sync_job")
        assert {s.name for s in repository.schedule_defs} == {
            "roughy_sync_schedule",
            "roughy_reconcile_schedule",
        }
        sensors = {s.name for s in repository.sensor_defs}
        assert ("roughy_project_discovery_sensor" in sensors) == discovering
        assets = defs.resolve_assets_def(ASSETS)
        assert set(assets.keys) == {ASSETS, EVENTS, SYNC_RUNS} and assets.op.name == "roughy_sync"
        assert assets.backfill_policy == dg.BackfillPolicy.single_run()
        if discovering:
            assert assets.partitions_def == PROJECTS
        else:
            assert assets.partitions_def.get_partition_keys() == [configured]
        for key in (ASSETS, EVENTS, SYNC_RUNS):
            spec = assets.specs_by_key[key]
            assert {"duckdb", "roughy"} <= set(spec.kinds) and spec.group_name == "roughy"
            assert spec.metadata["dagster/table_name"] == "roughy." + key.path[-1]
            assert spec.metadata["dagster/column_schema"].columns
        assert assets.op.pool == "roughy_duckdb"


def test_column_schemas_match_the_tables_a_store_creates(tmp_path):
    from roughy_dagster.dagster_layer.tables import TABLES
    from roughy_dagster.store import AssetStore

    with AssetStore(tmp_path / "fresh.duckdb").connect() as connection:
        for table in TABLES:
            columns = connection.execute(
                "SELECT column_name, replace(data_type, 'TIMESTAMP WITH TIME ZONE', 'TIMESTAMPTZ'), "
                "is_nullable FROM duckdb_columns() "
                "WHERE schema_name = 'roughy' AND table_name = ? ORDER BY column_index",
                [table.name],
            ).fetchall()
            declared = [
                (c.name, c.type.replace(" ", ""), c.constraints is None or c.constraints.nullable)
                for c in table.column_schema.columns
            ]
            assert declared == columns, table.name


def run_tick(defs, instance, name: str):
    schedule = defs.resolve_schedule_def(name)
    with dg.build_schedule_context(
        instance=instance, scheduled_execution_time=TICK, repository_def=defs.get_repository_def()
    ) as context:
        return schedule.evaluate_tick(context).run_requests


def test_a_schedule_tick_is_one_run_for_every_project(emulator: Emulator, instance, resources):
    world = emulator.world
    third = world.add_project()
    world.add_asset(third, state="ready")
    instance.add_dynamic_partitions(PROJECTS.name, [*world.projects])
    defs = build_roughy_defs(
        RoughySettings(base_url=emulator.base_url, duckdb_path=resources["duckdb"].database)
    )
    (request,) = run_tick(defs, instance, "roughy_sync_schedule")
    assert request.partition_key_range == dg.PartitionKeyRange(world.projects[0], world.projects[-1])
    assert request.run_config["ops"]["roughy_sync"]["config"]["full_refresh"] is False
    (reconcile,) = run_tick(defs, instance, "roughy_reconcile_schedule")
    assert reconcile.run_config["ops"]["roughy_sync"]["config"]["full_refresh"] is True
    assert reconcile.partition_key_range == request.partition_key_range

    result = defs.resolve_job_def("roughy_sync_job").execute_in_process(
        instance=instance, tags=request.tags, run_config=request.run_config, resources=resources
    )
    assert result.success
    for key in (ASSETS, EVENTS, SYNC_RUNS):  # the UI shows each project partition materialized
        assert sorted(materializations(result, key)) == sorted(world.projects)
    by_project = materializations(result)
    for project in world.projects:
        assert by_project[project].metadata["dagster/partition_row_count"].value == world.count(project)
        assert stored_listing(resources["duckdb"].database, project) == truth(world, project)
    checks = result.get_asset_check_evaluations()
    assert len(checks) == 5 and all(c.passed for c in checks)
    assert all(c.metadata["projects_checked"].value == 3 for c in checks)
    assert len(instance.get_runs()) == 1


def test_per_partition_metadata_is_added_in_one_step(emulator: Emulator, instance, resources, monkeypatch):
    """Dagster's `add_asset_metadata` lists every dynamic partition on each call (O(N^2) over a run of N
    partitions); the layer adds a run's per-partition metadata in one step, with the same result as the
    public call it falls back to when Dagster's internals differ."""
    world = emulator.world
    instance.add_dynamic_partitions(PROJECTS.name, list(world.projects))
    calls: list[str | None] = []
    public = dg.AssetExecutionContext.add_asset_metadata

    def counted(self, metadata, asset_key=None, partition_key=None):
        calls.append(partition_key)
        return public(self, metadata, asset_key=asset_key, partition_key=partition_key)

    monkeypatch.setattr(dg.AssetExecutionContext, "add_asset_metadata", counted)
    tags = {
        "dagster/asset_partition_range_start": world.projects[0],
        "dagster/asset_partition_range_end": world.projects[-1],
    }

    def partition_row_counts() -> dict:
        result = dg.materialize([roughy_sync_assets], instance=instance, resources=resources, tags=tags)
        assert result.success
        return {
            key.path[-1]: {
                project: m.metadata["dagster/partition_row_count"].value
                for project, m in materializations(result, key).items()
            }
            for key in (ASSETS, EVENTS, SYNC_RUNS)
        }

    in_one_step = partition_row_counts()
    assert calls == []
    monkeypatch.setattr(assets_module, "_AssetMetadataHandle", None)
    one_call_each = partition_row_counts()
    assert sorted(calls) == sorted(world.projects * 3)
    live = {project: world.count(project) for project in world.projects}
    assert in_one_step["assets"] == one_call_each["assets"] == live
    assert in_one_step["sync_runs"] == dict.fromkeys(world.projects, 1)
    assert one_call_each["sync_runs"] == dict.fromkeys(world.projects, 2)
    assert in_one_step["asset_events"] == one_call_each["asset_events"]


def test_configured_projects_are_static_partitions_and_one_run(emulator: Emulator, instance):
    configured = tuple(emulator.world.projects)
    defs = build_roughy_defs(RoughySettings(base_url=emulator.base_url, project_ids=configured))
    (request,) = run_tick(defs, instance, "roughy_sync_schedule")
    assert request.partition_key_range == dg.PartitionKeyRange(configured[0], configured[-1])
    assert instance.get_dynamic_partitions(PROJECTS.name) == []


def test_a_schedule_without_projects_skips(instance):
    defs = build_roughy_defs(RoughySettings(base_url="http://127.0.0.1:9"))
    schedule = defs.resolve_schedule_def("roughy_sync_schedule")
    with dg.build_schedule_context(
        instance=instance, scheduled_execution_time=TICK, repository_def=defs.get_repository_def()
    ) as context:
        data = schedule.evaluate_tick(context)
    assert data.run_requests == [] and "ROUGHY_PROJECT_IDS" in (data.skip_message or "")


def test_a_partition_materialization_syncs_just_that_project(emulator: Emulator, instance, resources):
    first, second = emulator.world.projects
    instance.add_dynamic_partitions(PROJECTS.name, [first, second])
    assert materialize_project(instance, resources, second).success
    synced = query(
        resources["duckdb"].database, "SELECT DISTINCT CAST(project_id AS VARCHAR) FROM roughy.sync_runs"
    )
    assert synced == [(second,)]
    assert stored_listing(resources["duckdb"].database, first) == []


def test_discovery_sensor_finds_projects_once(emulator: Emulator, instance, monkeypatch):
    monkeypatch.setenv("ROUGHY_API_KEY", CANARY_KEY)
    defs = build_roughy_defs(RoughySettings(base_url=emulator.base_url))
    sensor = defs.resolve_sensor_def("roughy_project_discovery_sensor")
    resources = {"roughy": RoughyResource(api_key=dg.EnvVar("ROUGHY_API_KEY"), base_url=emulator.base_url)}

    def tick(cursor):
        with dg.build_sensor_context(
            instance=instance, cursor=cursor, resources=resources, definitions=defs
        ) as ctx:
            result = sensor(ctx)  # direct invocation: the daemon adds the partitions before the runs
        for request in result.dynamic_partitions_requests or []:
            instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        return result

    first = tick(None)
    (request,) = first.run_requests  # one run syncs every project found
    found = instance.get_dynamic_partitions(PROJECTS.name)
    assert sorted(found) == sorted(emulator.world.projects)
    assert request.partition_key_range == dg.PartitionKeyRange(found[0], found[-1])
    emulator.reset_counts()
    second = tick(first.cursor)
    assert second.run_requests == [] and emulator.list_requests == 5
    new_project = emulator.world.add_project()
    emulator.world.add_asset(new_project, state="processing")
    third = tick(second.cursor)
    assert [r.partition_key_range for r in third.run_requests] == [
        dg.PartitionKeyRange(new_project, new_project)
    ]


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("ROUGHY_PROJECT_IDS", "episode-1", "ROUGHY_PROJECT_IDS"),
        ("ROUGHY_BASE_URL", "api.roughy.ai", "ROUGHY_BASE_URL"),
    ],
)
def test_bad_settings_fail_at_load_saying_what_to_fix(variable, value, named):
    with pytest.raises(RoughyConfigurationError, match=named):
        RoughySettings.from_env({variable: value})


def test_project_ids_are_normalized():
    raw = (
        "019DE7F5-7E21-7402-92A8-1C0E1FA84411, 019de7f5-7e21-7402-92a8-1c0e1fa84411 "
        "019de7f5-7e21-7402-92a8-1c0e1fa84412"
    )
    assert RoughySettings.from_env({"ROUGHY_PROJECT_IDS": raw}).project_ids == (
        "019de7f5-7e21-7402-92a8-1c0e1fa84411",
        "019de7f5-7e21-7402-92a8-1c0e1fa84412",
    )


class MediaTranslator(DagsterRoughyTranslator):
    def get_asset_spec(self, table: RoughyTable) -> dg.AssetSpec:
        default = super().get_asset_spec(table)
        return default.replace_attributes(
            key=["media", f"roughy_{table.name}"], group_name="media"
        ).merge_attributes(tags={"team": "video"})


def test_translator_renames_keys_group_and_tags(emulator: Emulator, instance, resources):
    defs = build_roughy_defs(RoughySettings(base_url=emulator.base_url), translator=MediaTranslator())
    key = dg.AssetKey(["media", "roughy_assets"])
    assets = defs.resolve_assets_def(key)
    assert set(assets.keys) == {
        dg.AssetKey(["media", name]) for name in ("roughy_assets", "roughy_asset_events", "roughy_sync_runs")
    }
    spec = assets.specs_by_key[key]
    assert (
        spec.group_name == "media"
        and spec.tags["team"] == "video"
        and {"duckdb", "roughy"} <= set(spec.kinds)
    )
    assert {c.name for c in assets.check_specs} == {
        "unique_ids",
        "live_rows_match_remote_totals",
        "per_state_field_rules",
        "values_fit_columns",
        "values_on_contract",
    }
    assert {c.asset_key for c in assets.check_specs} == {key}
    project = emulator.world.projects[0]
    instance.add_dynamic_partitions(PROJECTS.name, [project])
    (request,) = run_tick(defs, instance, "roughy_sync_schedule")
    result = dg.materialize(
        [build_roughy_assets(MediaTranslator())],
        partition_key=project,
        instance=instance,
        resources=resources,
        run_config=request.run_config,
    )
    assert result.success
    assert materializations(result, key)
    assert stored_listing(resources["duckdb"].database, project) == truth(emulator.world, project)


def test_a_translator_giving_two_tables_one_key_is_refused():
    class OneKey(DagsterRoughyTranslator):
        def get_asset_spec(self, table: RoughyTable) -> dg.AssetSpec:
            return super().get_asset_spec(table).replace_attributes(key=["media", "roughy"])

    with pytest.raises(ValueError, match="each table needs its own key"):
        build_roughy_assets(OneKey())


def test_roughy_assets_decorator_with_a_body_of_ones_own(emulator: Emulator, instance, resources):
    from roughy_dagster import roughy_assets

    seen: list[list[str]] = []

    @roughy_assets(name="media_sync")
    def media_sync(context: dg.AssetExecutionContext, roughy: RoughyResource, duckdb: DuckDBResource):
        seen.append(list(context.partition_keys))
        yield from roughy.sync_and_materialize(context, duckdb.database)

    project = emulator.world.projects[1]
    instance.add_dynamic_partitions(PROJECTS.name, [project])
    result = dg.materialize([media_sync], partition_key=project, instance=instance, resources=resources)
    assert result.success and seen == [[project]]
    assert {m.asset_key for m in result.asset_materializations_for_node("media_sync")} == {
        ASSETS,
        EVENTS,
        SYNC_RUNS,
    }
    assert stored_listing(resources["duckdb"].database, project) == truth(emulator.world, project)


def test_the_example_downstream_asset_reads_the_synced_table(emulator: Emulator, instance, resources):
    import importlib.util
    from pathlib import Path

    location = Path(__file__).resolve().parents[1] / "definitions.py"
    spec = importlib.util.spec_from_file_location("roughy_example_definitions", location)
    assert spec and spec.loader
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    report = example.ready_media_hours_by_day
    assert report.asset_deps[report.key] == {ASSETS}
    for project in emulator.world.projects:
        assert materialize_project(instance, resources, project).success
    result = dg.materialize([report], instance=instance, resources={"duckdb": resources["duckdb"]})
    assert result.success
    database = resources["duckdb"].database
    hours = query(database, "SELECT sum(hours) FROM roughy_reports.ready_media_hours_by_day")[0][0]
    ready = sum(float(a["duration_seconds"]) for a in emulator.world.listing(state="ready")) / 3600
    assert hours == pytest.approx(ready)
    (materialization,) = result.asset_materializations_for_node(report.op.name)
    assert "dagster/column_lineage" in materialization.metadata


@pytest.mark.parametrize("concurrency", [1, 4])
def test_the_resource_sets_requests_in_flight(emulator: Emulator, instance, resources, concurrency):
    emulator.app.latency_ms = 20  # requests overlap only if the sync keeps several in flight
    resources["roughy"] = RoughyResource(
        api_key=dg.EnvVar("ROUGHY_API_KEY"), base_url=emulator.base_url, concurrency=concurrency
    )
    project_id = emulator.world.projects[0]
    assert materialize_project(instance, resources, project_id).success
    assert (emulator.most_in_flight > 1) == (concurrency > 1)
    assert emulator.most_in_flight <= concurrency


def test_the_resources_max_requests_caps_a_sync(emulator: Emulator, instance, resources):
    resources["roughy"] = RoughyResource(
        api_key=dg.EnvVar("ROUGHY_API_KEY"), base_url=emulator.base_url, max_requests=2
    )
    project_id = emulator.world.projects[0]
    result = materialize_project(instance, resources, project_id)
    assert result.success
    metadata = materializations(result)[project_id].metadata
    assert metadata["requests"].value <= 2 and metadata["verified"].value is False
    (reason,) = query(resources["duckdb"].database, "SELECT reason FROM roughy.sync_runs")[0]
    assert "max_requests (2)" in reason


def test_the_component_settings_reach_the_resource(emulator: Emulator):
    settings = RoughySettings(base_url=emulator.base_url, concurrency=3, max_requests=50)
    resource = build_roughy_defs(settings).resources["roughy"]
    assert (resource.concurrency, resource.max_requests) == (3, 50)

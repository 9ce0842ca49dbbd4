"""The Dagster layer against the emulator: materialize partitions, checks, schedules, discovery, settings."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import pytest
from dagster_duckdb import DuckDBResource

from roughy_dagster import RoughyResource
from roughy_dagster.dagster_layer.assets import (
    PROJECTS,
    DagsterRoughyTranslator,
    build_roughy_assets,
    roughy_assets,
)
from roughy_dagster.dagster_layer.definitions import build_roughy_defs
from roughy_dagster.dagster_layer.settings import RoughyConfigurationError, RoughySettings
from roughy_dagster.emulator import Emulator

from .conftest import CANARY_KEY
from .helpers import stored_listing, truth

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


def materialize_project(instance, resources, project_id: str, *, full_refresh: bool = False):
    instance.add_dynamic_partitions(PROJECTS.name, [project_id])
    return dg.materialize(
        [roughy_assets],
        partition_key=project_id,
        instance=instance,
        resources=resources,
        run_config={"ops": {"roughy__assets": {"config": {"full_refresh": full_refresh}}}},
    )


def test_materializing_a_partition_syncs_the_project(emulator: Emulator, instance, resources):
    world = emulator.world
    project_id = world.projects[0]
    result = materialize_project(instance, resources, project_id)
    assert result.success
    database = resources["duckdb"].database
    assert stored_listing(database, project_id) == truth(world, project_id)
    (materialization,) = result.asset_materializations_for_node("roughy__assets")
    metadata = materialization.metadata
    assert metadata["dagster/partition_row_count"].value == world.count(project_id)
    assert metadata["dagster/row_count"].value == world.count(project_id)
    assert metadata["dagster/table_name"].value == "roughy.assets"
    assert "state" in [c.name for c in metadata["dagster/column_schema"].schema.columns]
    assert metadata["new"].value == world.count(project_id) and metadata["requests"].value > 0
    assert metadata["counts_by_state"].value["ready"] == world.count(project_id, "ready")
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert set(checks) == {"unique_ids", "live_rows_match_remote_totals", "per_state_field_rules"}
    assert all(check.passed for check in checks.values())


def test_second_partition_and_incremental_resync(emulator: Emulator, instance, resources):
    world = emulator.world
    first, second = world.projects
    assert materialize_project(instance, resources, first).success
    assert materialize_project(instance, resources, second).success
    world.random_changes(6, project_id=second)
    result = materialize_project(instance, resources, second)
    (materialization,) = result.asset_materializations_for_node("roughy__assets")
    assert materialization.metadata["mode"].value == "incremental"
    assert materialization.metadata["dagster/row_count"].value == world.count()
    assert stored_listing(resources["duckdb"].database, second) == truth(world, second)
    full = materialize_project(instance, resources, second, full_refresh=True)
    (materialization,) = full.asset_materializations_for_node("roughy__assets")
    assert materialization.metadata["mode"].value == "full"


def test_field_rule_check_fails_on_a_broken_row(emulator: Emulator, instance, resources):
    project_id = emulator.world.projects[0]
    materialize_project(instance, resources, project_id)
    from roughy_dagster.dagster_layer.assets import run_checks
    from roughy_dagster.store import AssetStore

    store = AssetStore(resources["duckdb"].database)
    with store.connect() as connection:
        connection.execute(
            "UPDATE roughy.assets SET duration_seconds = NULL WHERE id = "
            "(SELECT id FROM roughy.assets WHERE state = 'ready' LIMIT 1)"
        )
    totals = {
        s: emulator.world.count(project_id, s) for s in ("pending_upload", "processing", "pending_payment")
    }
    totals |= {s: emulator.world.count(project_id, s) for s in ("ready", "failed")}
    results = {r.check_name: r for r in run_checks(store, project_id, totals)}
    assert not results["per_state_field_rules"].passed
    assert results["per_state_field_rules"].metadata["violations"].value == {
        "duration present once ready or pending_payment": 1
    }
    assert results["unique_ids"].passed and results["live_rows_match_remote_totals"].passed


def test_unknown_project_partition_fails_with_the_servers_message(emulator: Emulator, instance, resources):
    unknown = "00000000-0000-4000-8000-000000000000"
    instance.add_dynamic_partitions(PROJECTS.name, [unknown])
    result = dg.materialize(
        [roughy_assets], partition_key=unknown, instance=instance, resources=resources, raise_on_error=False
    )
    assert not result.success
    failure = result.failure_data_for_node("roughy__assets")
    assert "Project not found" in failure.error.to_string() and "req_" in failure.error.to_string()


def test_definitions_load_without_network_and_wire_everything():
    defs = build_roughy_defs(
        RoughySettings(base_url="http://127.0.0.1:9", project_ids=("019de7f5-7e21-7402-92a8-1c0e1fa84411",))
    )
    repository = defs.get_repository_def()
    assert repository.has_job("roughy_sync_job")
    assert {s.name for s in repository.schedule_defs} == {"roughy_sync_schedule", "roughy_reconcile_schedule"}
    assert "roughy_project_discovery_sensor" in {s.name for s in repository.sensor_defs}
    spec = defs.resolve_assets_def(dg.AssetKey(["roughy", "assets"]))
    assert spec.partitions_def == PROJECTS
    assert {"duckdb", "roughy"} <= set(spec.specs_by_key[dg.AssetKey(["roughy", "assets"])].kinds)
    assert (
        spec.get_pool_for_asset(dg.AssetKey(["roughy", "assets"]))
        if hasattr(spec, "get_pool_for_asset")
        else True
    )


def test_schedule_syncs_every_known_and_configured_project(emulator: Emulator, instance):
    configured = emulator.world.projects[1]
    instance.add_dynamic_partitions(PROJECTS.name, [emulator.world.projects[0]])
    defs = build_roughy_defs(RoughySettings(base_url=emulator.base_url, project_ids=(configured,)))
    schedule = defs.resolve_schedule_def("roughy_sync_schedule")
    with dg.build_schedule_context(
        instance=instance, scheduled_execution_time=TICK, repository_def=defs.get_repository_def()
    ) as context:
        requests = schedule.evaluate_tick(context).run_requests
    assert sorted(r.partition_key for r in requests) == sorted(emulator.world.projects)
    assert configured in instance.get_dynamic_partitions(PROJECTS.name)
    reconcile = defs.resolve_schedule_def("roughy_reconcile_schedule")
    with dg.build_schedule_context(
        instance=instance, scheduled_execution_time=TICK, repository_def=defs.get_repository_def()
    ) as context:
        requests = reconcile.evaluate_tick(context).run_requests
    assert all(r.run_config["ops"]["roughy__assets"]["config"]["full_refresh"] for r in requests)


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
    assert sorted(r.partition_key for r in first.run_requests) == sorted(emulator.world.projects)
    assert {r.run_key for r in first.run_requests} == {f"discovered:{p}" for p in emulator.world.projects}
    emulator.reset_counts()
    second = tick(first.cursor)
    assert second.run_requests == [] and emulator.list_requests == 5
    new_project = emulator.world.add_project()
    emulator.world.add_asset(new_project, state="processing")
    third = tick(second.cursor)
    assert [r.partition_key for r in third.run_requests] == [new_project]


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
    def get_asset_spec(self, default: dg.AssetSpec) -> dg.AssetSpec:
        return default.replace_attributes(
            key=["media", "roughy_assets"], group_name="media"
        ).merge_attributes(tags={"team": "video"})


def test_translator_renames_key_group_and_tags(emulator: Emulator, instance, resources):
    defs = build_roughy_defs(RoughySettings(base_url=emulator.base_url), translator=MediaTranslator())
    key = dg.AssetKey(["media", "roughy_assets"])
    assets = defs.resolve_assets_def(key)
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
    }
    project = emulator.world.projects[0]
    instance.add_dynamic_partitions(PROJECTS.name, [project])
    schedule = defs.resolve_schedule_def("roughy_sync_schedule")
    with dg.build_schedule_context(
        instance=instance, scheduled_execution_time=TICK, repository_def=defs.get_repository_def()
    ) as context:
        (request,) = schedule.evaluate_tick(context).run_requests
    assert "media__roughy_assets" in request.run_config["ops"]
    result = dg.materialize(
        [build_roughy_assets(MediaTranslator())],
        partition_key=project,
        instance=instance,
        resources=resources,
        run_config=request.run_config,
    )
    assert result.success
    assert stored_listing(resources["duckdb"].database, project) == truth(emulator.world, project)

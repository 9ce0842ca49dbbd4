"""`RoughyComponent` through Dagster's component test helpers: scaffold, load from YAML, build, run."""

import dagster as dg
import pytest
import yaml
from dagster.components.testing import create_defs_folder_sandbox

from roughy_dagster.components import RoughyComponent
from roughy_dagster.dagster_layer.assets import PROJECTS_NAME
from roughy_dagster.dagster_layer.settings import RoughyConfigurationError
from roughy_dagster.emulator import Emulator

from .conftest import CANARY_KEY
from .helpers import stored_listing, truth


def test_scaffolder_writes_a_starter_defs_yaml():
    with create_defs_folder_sandbox() as sandbox:
        path = sandbox.scaffold_component(component_cls=RoughyComponent)
        written = yaml.safe_load((path / "defs.yaml").read_text())
    assert written["type"].endswith("RoughyComponent")
    assert written["attributes"]["api_key_env_var"] == "ROUGHY_API_KEY"
    assert set(written["attributes"]) >= {"base_url", "duckdb_path", "project_ids", "sync_cron", "state_jobs"}


def test_component_from_yaml_builds_the_same_definitions_and_syncs(emulator: Emulator, tmp_path, monkeypatch):
    monkeypatch.setenv("ROUGHY_CANARY_KEY_VAR", CANARY_KEY)
    monkeypatch.setenv("ROUGHY_AUTOMATION_RUNNING", "1")  # the YAML's switches win over the environment
    project = emulator.world.projects[0]
    database = tmp_path / "component.duckdb"
    with create_defs_folder_sandbox() as sandbox:
        path = sandbox.scaffold_component(
            component_cls=RoughyComponent,
            defs_yaml_contents={
                "type": "roughy_dagster.components.RoughyComponent",
                "attributes": {
                    "api_key_env_var": "ROUGHY_CANARY_KEY_VAR",
                    "base_url": emulator.base_url,
                    "duckdb_path": str(database),
                    "project_ids": [project],
                    "state_sensor_running": True,
                    "state_jobs": {
                        "ready": "tests.test_state_sensor:ready_job",
                        "failed": "tests.test_state_sensor:failed_job",
                    },
                },
            },
        )
        with sandbox.load_component_and_build_defs(defs_path=path) as (component, defs):
            assert isinstance(component, RoughyComponent)
            repository = defs.get_repository_def()
            assert repository.has_job("roughy_sync_job") and repository.has_job("ready_job")
            status = {s.name: s.default_status for s in repository.sensor_defs}
            # configured projects are static partitions: nothing to discover
            assert status == {"roughy_asset_state_sensor": dg.DefaultSensorStatus.RUNNING}
            assert all(s.default_status == dg.DefaultScheduleStatus.STOPPED for s in repository.schedule_defs)
            with dg.instance_for_test() as instance:  # configured projects: static partitions
                result = defs.resolve_job_def("roughy_sync_job").execute_in_process(
                    partition_key=project, instance=instance
                )
                assert instance.get_dynamic_partitions(PROJECTS_NAME) == []
            assert result.success
    assert stored_listing(database, project) == truth(emulator.world, project)


@pytest.mark.parametrize(
    ("attributes", "message"),
    [
        ({"api_key_env_var": "sk_live_abc"}, "NAME of an environment variable"),
        ({"base_url": "api.roughy.ai"}, "base_url"),
        ({"project_ids": ["episode-1"]}, "ROUGHY_PROJECT_IDS"),
        ({"state_jobs": {"ready": "nowhere"}}, "package.module:job_name"),
    ],
)
def test_bad_attributes_fail_with_what_to_fix(attributes, message):
    component = RoughyComponent(**attributes)
    with pytest.raises(RoughyConfigurationError, match=message):
        component.build_defs(None)  # type: ignore[arg-type]


def test_translation_block_renames_the_tables(emulator: Emulator, tmp_path, monkeypatch):
    monkeypatch.setenv("ROUGHY_CANARY_KEY_VAR", CANARY_KEY)
    project = emulator.world.projects[1]
    database = tmp_path / "translated.duckdb"
    with create_defs_folder_sandbox() as sandbox:
        path = sandbox.scaffold_component(
            component_cls=RoughyComponent,
            defs_yaml_contents={
                "type": "roughy_dagster.components.RoughyComponent",
                "attributes": {
                    "api_key_env_var": "ROUGHY_CANARY_KEY_VAR",
                    "base_url": emulator.base_url,
                    "duckdb_path": str(database),
                    "project_ids": [project],
                    "translation": {
                        "key": "media/roughy_{{ table.name }}",
                        "group_name": "media",
                        "tags": {"team": "video"},
                    },
                },
            },
        )
        with sandbox.load_component_and_build_defs(defs_path=path) as (_, defs):
            keys = {
                dg.AssetKey(["media", f"roughy_{name}"]) for name in ("assets", "asset_events", "sync_runs")
            }
            assets = defs.resolve_assets_def(dg.AssetKey(["media", "roughy_assets"]))
            assert set(assets.keys) == keys
            assert {assets.specs_by_key[key].group_name for key in keys} == {"media"}
            assert all(assets.specs_by_key[key].tags["team"] == "video" for key in keys)
            assert {check.asset_key for check in assets.check_specs} == {
                dg.AssetKey(["media", "roughy_assets"])
            }
            with dg.instance_for_test() as instance:
                result = defs.resolve_job_def("roughy_sync_job").execute_in_process(
                    partition_key=project, instance=instance
                )
            assert result.success
            assert {e.asset_key for e in result.get_asset_materialization_events()} == keys
    assert stored_listing(database, project) == truth(emulator.world, project)


def test_every_field_is_documented_and_has_a_real_default():
    model = RoughyComponent.get_model_cls()
    assert model is not None
    schema = model.model_json_schema()  # what `dg utils inspect-component` prints
    for name, field in schema["properties"].items():
        assert field.get("description"), name
        assert field.get("default") != "__DAGSTER_UNSET_DEFAULT__", name

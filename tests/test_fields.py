"""The asset's field list has one source, `roughy_dagster.fields`; the rest derive or are checked."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest

import roughy_dagster
from roughy_dagster.client import AssetSummary
from roughy_dagster.dagster_layer.assets import COLUMN_SCHEMA
from roughy_dagster.dagster_layer.state_sensor import RoughyAssetEvent
from roughy_dagster.fields import API_FIELD_NAMES, ASSET_FIELDS, OBSERVED_FIELDS, check_fields
from roughy_dagster.store import AssetStore
from roughy_dagster.store.schema import MIGRATIONS, column_definition
from roughy_dagster.sync.rows import OBSERVATION_SCHEMA

PACKAGE = Path(roughy_dagster.__file__).parent
RESTATEMENTS_CHECKED = {"fields.py", "client/models.py", "dagster_layer/state_sensor.py"}
"""Modules allowed to spell the fields out: the list itself and the two classes checked against it."""


def describe(connection: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str, str]]:
    rows = connection.execute(f"DESCRIBE {table}").fetchall()
    return [(name, kind, null) for name, kind, null, *_ in rows]


def expected_table() -> list[tuple[str, str, str]]:
    connection = duckdb.connect()
    try:
        columns = ", ".join(column_definition(f) for f in ASSET_FIELDS)
        connection.execute(f"CREATE TABLE expected ({columns})")
        return describe(connection, "expected")
    finally:
        connection.close()


def test_the_msgspec_model_and_the_run_config_have_the_api_fields():
    assert set(AssetSummary.__struct_fields__) == set(API_FIELD_NAMES)
    assert set(RoughyAssetEvent.model_fields) == set(API_FIELD_NAMES)


def test_a_class_missing_a_field_fails_at_import_naming_it():
    with pytest.raises(TypeError, match=r"Model does not match.*missing \['upload_url'\].*extra \['note'\]"):
        check_fields("Model", [*API_FIELD_NAMES[:-1], "note"])


def test_the_arrow_rows_carry_the_observed_fields():
    observed = [f.name for f in OBSERVED_FIELDS]
    assert observed[: len(API_FIELD_NAMES)] == list(API_FIELD_NAMES)
    assert OBSERVATION_SCHEMA.names == [*observed, "observed_at", "superseded"]


def test_the_column_schema_metadata_is_the_table():
    assert [(c.name, c.type, c.constraints.nullable) for c in COLUMN_SCHEMA.columns] == [
        (f.name, f.duckdb_type, f.nullable) for f in ASSET_FIELDS
    ]


@pytest.mark.parametrize("start", [0, 1], ids=["fresh file", "version 1 file migrated"])
def test_the_table_created_and_migrated_is_the_field_list(tmp_path, start):
    database = tmp_path / "assets.duckdb"
    if start:
        connection = duckdb.connect(str(database))
        connection.execute(MIGRATIONS[0])
        connection.execute("INSERT INTO roughy.schema_version (version) VALUES (1)")
        connection.close()
    with AssetStore(database).connect() as connection:
        assert describe(connection, "roughy.assets") == expected_table()


PLAIN_FIELDS = {"extension", "content_type", "language"}
"""Fields that no rule or logic refers to one by one: a module naming them is spelling out the list."""


def test_no_other_module_restates_the_field_list():
    """Every module that needs the columns derives them from `fields`; none spells the list out.

    The emulator is exempt: it is an independent model of the API and imports nothing of the package.
    """
    restating = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative in RESTATEMENTS_CHECKED or relative.startswith("emulator/"):
            continue
        named = PLAIN_FIELDS & set(re.findall(r"[a-z_]+", path.read_text()))
        if len(named) >= 2:
            restating[relative] = sorted(named)
    assert not restating, f"these modules spell out the asset's fields: {restating}"

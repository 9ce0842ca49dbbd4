"""Values the spec allows at the edges of what a column holds are stored exactly, never altered or raised.

The policy (`roughy_dagster.sync.values`): a value its typed column cannot hold exactly leaves that
column NULL and is kept, as the API sent it, in `unfit_values`; values the spec does not allow are
refused by the client's validation, naming the field and the request id: that asset is left as stored,
and blocks neither the other assets nor other projects (`tests/test_quarantine.py`).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from decimal import Decimal, localcontext

import dagster as dg
import pytest
from dagster_duckdb import DuckDBResource
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from roughy_dagster import RoughyClient, RoughyResource, sync_project
from roughy_dagster.client.models import PAGE_DECODER
from roughy_dagster.dagster_layer.assets import CHECK_VALUES_FIT, PROJECTS, roughy_sync_assets
from roughy_dagster.emulator import Emulator, World
from roughy_dagster.emulator.world import EDGE_CREATED_AT_DIGITS, EDGE_DURATIONS, EDGE_SIZES
from roughy_dagster.sync.values import decimal_pattern, page_fits, unfit

from .conftest import CANARY_KEY
from .helpers import normalized, query, stored_listing, truth

FITS = {
    "000012.500000000000": Decimal("12.5"),
    "99999999999999999999999999999.999999999": Decimal("99999999999999999999999999999.999999999"),
    "-0": Decimal(0),
    "+.5": Decimal("0.5"),
    "5.": Decimal(5),
}


@pytest.fixture
def world() -> World:
    return World.seeded(seed=7, projects=2, assets_per_project=60)


def a_ready_asset(world: World, project: str, **fields: object) -> str:
    asset = world.add_asset(project, state="ready")
    world.set_fields(asset.id, **fields)
    return asset.id


def stored(database, asset_id: str) -> tuple:
    return query(
        database,
        "SELECT duration_seconds, size_bytes, unfit_values FROM roughy.assets WHERE id = ?",
        [asset_id],
    )[0]


@pytest.mark.parametrize("duration", EDGE_DURATIONS)
def test_an_edge_duration_is_stored_exactly(emulator: Emulator, client: RoughyClient, tmp_path, duration):
    database = tmp_path / "roughy_assets.duckdb"
    project = emulator.world.projects[0]
    sync_project(client, database, project)
    asset_id = a_ready_asset(emulator.world, project, duration_seconds=duration)
    report = sync_project(client, database, project)
    decimal, _, unfit = stored(database, asset_id)
    if duration in FITS:
        assert (decimal, unfit) == (FITS[duration], None)
    else:
        assert decimal is None and json.loads(unfit) == {"duration_seconds": duration}
    assert report.verified
    assert stored_listing(database, project) == truth(emulator.world, project)


@pytest.mark.parametrize("size", EDGE_SIZES)
def test_an_edge_size_is_stored_exactly(emulator: Emulator, client: RoughyClient, tmp_path, size):
    database = tmp_path / "roughy_assets.duckdb"
    project = emulator.world.projects[0]
    asset_id = a_ready_asset(emulator.world, project, size_bytes=size)
    sync_project(client, database, project)  # a first load
    _, stored_size, unfit = stored(database, asset_id)
    if -(2**63) <= size < 2**63:
        assert (stored_size, unfit) == (size, None)
    else:
        assert stored_size is None and json.loads(unfit) == {"size_bytes": str(size)}
    assert stored_listing(database, project) == truth(emulator.world, project)


def test_a_value_that_later_fits_clears_unfit_values_and_is_an_update(
    emulator: Emulator, client: RoughyClient, tmp_path
):
    database = tmp_path / "roughy_assets.duckdb"
    project = emulator.world.projects[0]
    asset_id = a_ready_asset(emulator.world, project, duration_seconds="324.41200000000003", size_bytes=2**63)
    sync_project(client, database, project)
    emulator.world.set_fields(asset_id, duration_seconds="324.412", size_bytes=10)
    report = sync_project(client, database, project, full_refresh=True)
    assert stored(database, asset_id) == (Decimal("324.412"), 10, None)
    assert report.changed == 1
    assert stored_listing(database, project) == truth(emulator.world, project)


def test_a_world_with_edge_values_everywhere_syncs_and_the_check_lists_them(tmp_path):
    world = World.seeded(seed=3, projects=2, assets_per_project=120, edge_values_every=5)
    database = tmp_path / "roughy_assets.duckdb"
    with Emulator(world, api_key=CANARY_KEY) as emulator, dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(PROJECTS.name, world.projects)
        resources = {
            "roughy": RoughyResource(api_key=CANARY_KEY, base_url=emulator.base_url),
            "duckdb": DuckDBResource(database=str(database)),
        }
        for project in world.projects:
            result = dg.materialize(
                [roughy_sync_assets], partition_key=project, instance=instance, resources=resources
            )
            assert result.success
            assert stored_listing(database, project) == truth(world, project)
            (check,) = [c for c in result.get_asset_check_evaluations() if c.check_name == CHECK_VALUES_FIT]
            unfit_rows = query(
                database,
                "SELECT count(*) FROM roughy.assets WHERE project_id = ? AND unfit_values IS NOT NULL",
                [project],
            )[0][0]
            assert unfit_rows > 0 and not check.passed
            assert check.metadata["unfit_values"].value[project]["rows"] == unfit_rows
            others = [c for c in result.get_asset_check_evaluations() if c.check_name != CHECK_VALUES_FIT]
            assert all(c.passed for c in others if c.check_name != "live_rows_match_remote_totals")


ARABIC_INDIC_12_5 = "\u0661\u0662.\u0665"
FULLWIDTH_12 = "\uff11\uff12"
OFF_CONTRACT = [ARABIC_INDIC_12_5, FULLWIDTH_12, "12.5\n", "12.5 ", "1e3", "", ".", "+", "0x1F", "12,5"]


@pytest.mark.parametrize("duration", OFF_CONTRACT)
def test_a_duration_the_spec_refuses_stops_only_its_asset(
    emulator: Emulator, client: RoughyClient, tmp_path, duration
):
    database = tmp_path / "roughy_assets.duckdb"
    bad, good = emulator.world.projects[:2]
    sync_project(client, database, bad)
    broken = a_ready_asset(emulator.world, bad, duration_seconds=duration)
    emulator.world.add_asset(good, state="ready")
    report = sync_project(client, database, bad)  # the asset is quarantined (tests/test_quarantine.py)
    assert not report.verified and "duration_seconds" in report.reason and "request id req_" in report.reason
    assert query(database, "SELECT count(*) FROM roughy.assets WHERE id = ?", [broken]) == [(0,)]
    listed = [normalized(item) for item in emulator.world.listing(bad) if item["id"] != broken]
    assert stored_listing(database, bad) == listed
    sync_project(client, database, good)
    assert stored_listing(database, good) == truth(emulator.world, good)
    emulator.world.set_fields(broken, duration_seconds="12.5")  # the server is fixed
    assert sync_project(client, database, bad).verified
    assert stored_listing(database, bad) == truth(emulator.world, bad)


def page_with(duration: str) -> bytes:
    item = {
        "id": "0190a0a0-0000-7000-8000-000000000001",
        "project_id": "0190a0a0-0000-7000-8000-000000000002",
        "type": "audio",
        "state": "ready",
        "extension": "mp3",
        "size_bytes": 1,
        "content_type": "audio/mpeg",
        "duration_seconds": duration,
        "language": None,
        "created_at": "2026-05-02T08:54:52.423000Z",
    }
    return json.dumps({"items": [item], "total": 1, "limit": 50, "offset": 0}).encode()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.from_regex(r"\A[+-]?0*[0-9]{0,40}\.?[0-9]{0,40}\Z").filter(lambda t: t.strip("+-.") != ""))
def test_every_duration_the_spec_allows_is_kept_exactly(text: str):
    """Whatever the spec allows decodes, and is held by DECIMAL(38, 9) exactly or kept as text."""
    (item,) = PAGE_DECODER.decode(page_with(text)).items
    assert item.duration_seconds == text
    fits = re.fullmatch(decimal_pattern(38, 9), text) is not None
    with localcontext(prec=200):
        value = Decimal(text)
        held = value == value.quantize(Decimal("1e-9")) and abs(value) < Decimal(10) ** 29
    assert fits == held
    assert page_fits([item]) == fits and unfit(item) == ({} if fits else {"duration_seconds": text})


# -- created_at finer than a microsecond -----------------------------------------------------------------


def stored_created_at(database, asset_id: str) -> tuple[str, str | None]:
    return query(
        database,
        "SELECT strftime(created_at AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%S.%f'), unfit_values "
        "FROM roughy.assets WHERE id = ?",
        [asset_id],
    )[0]


@pytest.mark.parametrize("digits", EDGE_CREATED_AT_DIGITS)
@pytest.mark.parametrize("sync", ["first load", "incremental", "full refresh"])
def test_a_created_at_finer_than_a_microsecond_is_kept_exactly(
    emulator: Emulator, client: RoughyClient, tmp_path, digits, sync
):
    """The column holds the instant truncated to the microsecond; `unfit_values` the exact text."""
    database = tmp_path / "roughy_assets.duckdb"
    world = emulator.world
    project = world.projects[0]
    if sync != "first load":
        sync_project(client, database, project)
    asset = world.listing(project)[7] if sync == "full refresh" else world.add_asset(project, state="ready")
    asset_id = str(asset["id"] if isinstance(asset, dict) else asset.id)
    world.assets[asset_id].created_at_digits = digits
    world.assets[asset_id]._json = None
    served = world.assets[asset_id].to_dict()["created_at"]
    report = sync_project(client, database, project, full_refresh=sync == "full refresh")
    column, unfit_values = stored_created_at(database, asset_id)
    assert column == served[:26]  # truncated, never rounded up
    if digits.strip("0"):
        assert json.loads(unfit_values) == {"created_at": served}
        assert report.changed == (1 if sync == "full refresh" else 0)
    else:
        assert unfit_values is None
    assert report.verified and not report.off_contract
    assert stored_listing(database, project) == truth(world, project)


def test_a_change_only_below_a_microsecond_is_a_change(emulator: Emulator, client: RoughyClient, tmp_path):
    database = tmp_path / "roughy_assets.duckdb"
    world = emulator.world
    project = world.projects[0]
    asset = world.add_asset(project, state="ready")
    asset.created_at_digits = "1"
    sync_project(client, database, project)
    for digits, changed in (("2", 1), ("2", 0), ("", 1), ("", 0), ("0009", 1)):
        asset.created_at_digits = digits
        asset._json = None
        report = sync_project(client, database, project, full_refresh=True)
        assert report.changed == changed, (digits, report)
        assert stored_listing(database, project) == truth(world, project)
    events = query(
        database,
        "SELECT count(*) FROM roughy.asset_events WHERE asset_id = ? AND kind = 'updated'",
        [asset.id],
    )
    assert events == [(3,)]


@pytest.mark.parametrize(
    ("text", "column"),
    [
        ("2026-01-01T00:37:58.2110009Z", "2026-01-01 00:37:58.211000"),
        ("2026-01-01T00:37:58.9999999Z", "2026-01-01 00:37:58.999999"),
        ("2026-01-01T02:37:58.2110009+02:00", "2026-01-01 00:37:58.211000"),
        ("2026-01-01t00:37:58.1234567891234z", "2026-01-01 00:37:58.123456"),
        ("2016-12-31T23:59:60Z", "2016-12-31 23:59:59.999999"),
        ("2016-12-31T23:59:60.5Z", "2016-12-31 23:59:59.999999"),
        ("2017-01-01T00:59:60+01:00", "2016-12-31 23:59:59.999999"),
    ],
)
def test_the_client_truncates_created_at_and_keeps_its_text(text: str, column: str):
    from roughy_dagster.client.models import ExactAssetSummary, held_leap_seconds, with_exact_times

    item = {
        "id": "019b76fe-38d5-77ea-a811-00a16ea330a1",
        "project_id": "6513270e-269e-4d37-b2a7-4de452e6b438",
        "type": None,
        "state": "processing",
        "extension": None,
        "size_bytes": None,
        "content_type": None,
        "duration_seconds": None,
        "language": None,
        "created_at": text,
    }
    body = json.dumps({"items": [item], "total": 1, "limit": 50, "offset": 0}).encode()
    (parsed,) = with_exact_times(PAGE_DECODER.decode(held_leap_seconds(body)), body).items
    assert isinstance(parsed, ExactAssetSummary) and parsed.created_at_text == text
    assert str(parsed.created_at.astimezone(UTC).replace(tzinfo=None)) == column
    assert unfit(parsed) == {"created_at": text} and not page_fits([parsed])


@settings(max_examples=200, deadline=None)
@given(st.datetimes(timezones=st.just(UTC)))
def test_the_order_key_is_duckdbs_epoch_us_for_any_created_at(moment):
    """Before 1970 too: the key the sync proves absence by equals what DuckDB stores."""
    import duckdb

    from roughy_dagster.client.paging import created_us

    (expected,) = duckdb.execute("SELECT epoch_us(?::TIMESTAMPTZ)", [moment]).fetchone()
    assert created_us(moment) == expected


@pytest.mark.parametrize("served", ["2016-12-31T23:59:60Z", "2016-12-31T23:59:60.25Z"])
def test_a_leap_second_is_kept_exactly(emulator: Emulator, client: RoughyClient, tmp_path, served):
    """RFC 3339 allows `23:59:60`; the column holds the microsecond before it, `unfit_values` the text."""
    database = tmp_path / "roughy_assets.duckdb"
    world = emulator.world
    project = world.projects[0]
    before = datetime(2016, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)  # where the listing orders it
    asset = world.add_asset(project, state="ready", created_at=before)
    world.serve_raw(asset.id, created_at=served)
    report = sync_project(client, database, project)  # a first load
    assert report.verified and not report.off_contract
    assert stored_created_at(database, asset.id) == (
        "2016-12-31T23:59:59.999999",
        json.dumps({"created_at": served}, separators=(",", ":")),
    )

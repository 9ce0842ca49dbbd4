"""One asset the API sends off-contract never blocks the others (issue 14, deliver 3).

The policy (`roughy_dagster.sync.quarantine`): an item whose values the contract refuses, inside a page
otherwise well formed, is reported by the client instead of failing the page. The sync counts it as seen
in its list (never deleted, no count mismatch) but writes none of its rows: its stored row stays as it
was, its project's `sync_runs` row says `verified=false` naming asset, field, value and request id, and
every other asset and project is written as usual. Once the server sends it on contract, the next sync
records it, once.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from roughy_dagster import RoughyClient, sync_account, sync_project
from roughy_dagster.client import RoughyProtocolError
from roughy_dagster.client.client import _parse_page
from roughy_dagster.emulator import Emulator, World
from roughy_dagster.emulator.world import OMIT

from .conftest import CANARY_KEY
from .helpers import fingerprint, query, stored_listing, truth

REQUEST_ID = re.compile(r"request id req_\d{8}_[0-9a-f]{8}")


@dataclass(frozen=True)
class Bad:
    """One way to serve an asset off-contract: `field` served as `value`."""

    field: str
    value: object
    identified: bool = True
    """Whether the item still names its asset (a readable id) and its project."""


BAD_VALUES = {
    "arabic_indic_duration": Bad("duration_seconds", "\u0661\u0662.\u0665"),
    "duration_with_newline": Bad("duration_seconds", "12.5\n"),
    "duration_as_number": Bad("duration_seconds", 12.5),
    "size_as_text": Bad("size_bytes", "4823572"),
    "size_as_float": Bad("size_bytes", 1.5),
    "unknown_type": Bad("type", "film"),
    "unknown_state": Bad("state", "archived"),
    "missing_state": Bad("state", OMIT),
    "extension_as_number": Bad("extension", 5),
    "upload_url_as_number": Bad("upload_url", 7),
    "created_at_not_a_time": Bad("created_at", "yesterday"),
    "created_at_naive": Bad("created_at", "2026-05-02T08:54:52"),
    "created_at_missing": Bad("created_at", OMIT),
    "upper_case_id": Bad("id", "UPPER"),
    "unreadable_id": Bad("id", "asset-1", identified=False),
    "unreadable_project_id": Bad("project_id", "nope", identified=False),
}


@pytest.fixture
def world() -> World:
    return World.seeded(seed=11, projects=3, assets_per_project=70)


def serve_bad(world: World, asset_id: str, bad: Bad) -> None:
    value = asset_id.upper() if bad.value == "UPPER" else bad.value
    world.serve_raw(asset_id, **{bad.field: value})


def row_of(database, asset_id: str) -> list[tuple]:
    return query(database, "SELECT * FROM roughy.assets WHERE id = ?", [asset_id])


def events_of(database, asset_id: str) -> list[str]:
    return [
        kind
        for (kind,) in query(
            database,
            "SELECT kind FROM roughy.asset_events WHERE asset_id = ? ORDER BY sync_id, observed_at",
            [asset_id],
        )
    ]


def last_run(database, project: str) -> tuple[bool, str]:
    return query(
        database,
        "SELECT verified, coalesce(reason, '') FROM roughy.sync_runs WHERE project_id = ? "
        "ORDER BY sync_id DESC LIMIT 1",
        [project],
    )[0]


def without(listing: list[dict], asset_id: str) -> list[dict]:
    return [item for item in listing if item["id"] != asset_id]


def assert_listed_stored(database, world: World, project: str, broken: str) -> None:
    """Every listed asset but `broken` is stored as listed; what else is stored is gone from the world."""
    stored = {item["id"]: item for item in stored_listing(database, project)}
    for item in without(truth(world, project), broken):
        assert stored.get(item["id"]) == item
    listed = {item["id"] for item in truth(world, project)}
    assert all(asset_id not in listed for asset_id in set(stored) - listed - {broken})


def a_moving_asset(world: World, project: str) -> str:
    """A stored `processing` asset of `project` that moves to `ready`."""
    asset = next(a for a in world.assets.values() if a.project_id == project and a.state == "processing")
    world.advance(asset.id, "ready")
    return asset.id


CASES = [(name, "moved") for name in sorted(BAD_VALUES)] + [
    (name, "new")
    for name in ("arabic_indic_duration", "unknown_state", "created_at_missing", "unreadable_project_id")
]


@pytest.mark.parametrize(("name", "change"), CASES)
def test_one_off_contract_asset_leaves_its_row_and_blocks_no_project(
    emulator: Emulator, client: RoughyClient, tmp_path, name: str, change: str
):
    world, bad = emulator.world, BAD_VALUES[name]
    database = tmp_path / "roughy_assets.duckdb"
    sync_account(client, database)
    quarantined, *others = world.projects
    for project in world.projects:
        world.random_changes(4, project_id=project)
    if change == "moved":
        broken = a_moving_asset(world, quarantined)
    else:
        broken = world.add_asset(quarantined, state="ready").id
    serve_bad(world, broken, bad)
    before = row_of(database, broken)

    report = sync_account(client, database)

    for project in others:
        if bad.identified:
            assert stored_listing(database, project) == truth(world, project)
            assert report.projects[project].verified, report.projects[project].reason
            assert last_run(database, project) == (True, "")
        else:  # its page proves nothing: a deletion near it may wait for a later sync, nothing else
            assert_listed_stored(database, world, project, broken)
    if bad.identified:
        listed = without(truth(world, quarantined), broken)
        assert without(stored_listing(database, quarantined), broken) == listed
    else:
        assert_listed_stored(database, world, quarantined, broken)
    assert row_of(database, broken) == before, "the stored row is left exactly as it was"
    assert "deleted" not in events_of(database, broken)
    verified, reason = last_run(database, quarantined)
    assert not verified and not report.verified and not report.projects[quarantined].verified
    assert bad.field in reason and REQUEST_ID.search(reason), reason
    if bad.identified:
        assert broken in reason
    assert report.projects[quarantined].off_contract
    events_before = events_of(database, broken)

    world.serve_raw(broken)  # the server is fixed
    report = sync_account(client, database, full_refresh=change == "moved" and not bad.identified)
    for project in world.projects:
        assert stored_listing(database, project) == truth(world, project)
    assert report.verified, report.reason
    recorded = events_of(database, broken)[len(events_before) :]
    assert recorded == (["state_changed"] if change == "moved" else ["appeared"])
    assert sync_account(client, database).verified
    assert events_of(database, broken)[len(events_before) :] == recorded, "recorded once"


@pytest.mark.parametrize("name", ["arabic_indic_duration", "created_at_missing", "unreadable_id"])
def test_a_one_project_sync_writes_the_other_assets_of_the_project(
    emulator: Emulator, client: RoughyClient, tmp_path, name: str
):
    world, bad = emulator.world, BAD_VALUES[name]
    database = tmp_path / "roughy_assets.duckdb"
    project = world.projects[0]
    sync_project(client, database, project)
    broken = a_moving_asset(world, project)
    world.random_changes(6, project_id=project)
    assert world.assets[broken].state == "ready"
    serve_bad(world, broken, bad)
    before = row_of(database, broken)
    report = sync_project(client, database, project)
    assert not report.verified and bad.field in report.reason and REQUEST_ID.search(report.reason)
    if bad.identified:
        assert without(stored_listing(database, project), broken) == without(truth(world, project), broken)
    else:
        assert_listed_stored(database, world, project, broken)
    assert row_of(database, broken) == before
    world.serve_raw(broken)
    report = sync_project(client, database, project, full_refresh=not bad.identified)
    assert report.verified, report.reason
    assert stored_listing(database, project) == truth(world, project)


def test_a_first_load_with_an_off_contract_asset_stores_the_rest(emulator: Emulator, client, tmp_path):
    world = emulator.world
    database = tmp_path / "roughy_assets.duckdb"
    broken = next(a.id for a in world.assets.values() if a.project_id == world.projects[1])
    world.serve_raw(broken, duration_seconds="\uff11\uff12")
    report = sync_account(client, database)
    assert not report.projects[world.projects[1]].verified
    assert [p for p, r in report.projects.items() if r.verified] == sorted(
        set(world.projects) - {world.projects[1]}
    )
    assert stored_listing(database, world.projects[1]) == without(truth(world, world.projects[1]), broken)
    assert row_of(database, broken) == []
    world.serve_raw(broken)
    assert sync_account(client, database, full_refresh=True).verified
    assert stored_listing(database, world.projects[1]) == truth(world, world.projects[1])


def test_a_page_malformed_as_a_whole_still_fails_and_writes_nothing(
    emulator: Emulator, client: RoughyClient, tmp_path
):
    database = tmp_path / "roughy_assets.duckdb"
    sync_account(client, database)
    emulator.world.random_changes(5)
    before = fingerprint(database)
    emulator.inject("not_json", skip=2)
    with pytest.raises(RoughyProtocolError) as caught:
        sync_account(client, database)
    assert caught.value.request_id
    assert fingerprint(database) == before


ITEM = {
    "id": "0190a0a0-0000-7000-8000-000000000001",
    "project_id": "0190a0a0-0000-7000-8000-000000000002",
    "type": "audio",
    "state": "ready",
    "extension": "mp3",
    "size_bytes": 1,
    "content_type": "audio/mpeg",
    "duration_seconds": "1.5",
    "language": None,
    "created_at": "2026-05-02T08:54:52.423000Z",
    "upload_url": None,
}
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=5,
)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(field=st.sampled_from(sorted(ITEM)), value=JSON_VALUES)
def test_any_value_in_one_item_is_kept_or_reported_never_raised(field: str, value: object):
    """Whatever one item holds, the page decodes: the item is valid, or reported naming its field."""
    import json

    other = dict(ITEM, id="0190a0a0-0000-7000-8000-000000000009")
    body = json.dumps(
        {"items": [other, dict(ITEM, **{field: value})], "total": 2, "limit": 50, "offset": 0}
    ).encode()
    page = _parse_page(body, "/v1/assets", "limit=50", "req_1", report_off_contract=True)
    assert page.items[0].id == other["id"]
    if len(page.items) == 2:
        assert not page.off_contract
    else:
        (refused,) = page.off_contract
        assert refused.index == 1 and refused.field == field and refused.request_id == "req_1"
        assert len(refused.value) <= 120 and field in refused.describe()
        if field == "upload_url":
            assert "not shown" in refused.value


def test_the_default_still_refuses_the_page():
    import json

    body = json.dumps({"items": [dict(ITEM, type="film")], "total": 1, "limit": 50, "offset": 0}).encode()
    with pytest.raises(RoughyProtocolError, match="type"):
        _parse_page(body, "/v1/assets", "limit=50", "req_1")


def test_the_emulator_serves_a_raw_value_in_place(tmp_path):
    world = World.seeded(seed=2, projects=1, assets_per_project=5)
    asset_id = next(iter(world.assets))
    with Emulator(world, api_key=CANARY_KEY):
        world.serve_raw(asset_id, id="nope", created_at=OMIT)
        served = world.assets[asset_id].to_json()
        assert b'"id":"nope"' in served and b"created_at" not in served
        with pytest.raises(ValueError, match="no field"):
            world.serve_raw(asset_id, colour="red")


def test_the_asset_check_names_the_quarantined_asset_for_its_partition(tmp_path):
    import dagster as dg
    from dagster_duckdb import DuckDBResource

    from roughy_dagster import RoughyResource
    from roughy_dagster.dagster_layer.assets import CHECK_ON_CONTRACT, PROJECTS, roughy_sync_assets

    world = World.seeded(seed=5, projects=2, assets_per_project=40)
    bad_project, good_project = world.projects
    broken = world.add_asset(bad_project, state="ready").id
    world.serve_raw(broken, duration_seconds="12.5\n")
    database = tmp_path / "roughy_assets.duckdb"
    with Emulator(world, api_key=CANARY_KEY) as emulator, dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(PROJECTS.name, world.projects)
        resources = {
            "roughy": RoughyResource(api_key=CANARY_KEY, base_url=emulator.base_url),
            "duckdb": DuckDBResource(database=str(database)),
        }
        checks = {}
        for project in world.projects:
            result = dg.materialize(
                [roughy_sync_assets], partition_key=project, instance=instance, resources=resources
            )
            assert result.success
            (checks[project],) = [
                c for c in result.get_asset_check_evaluations() if c.check_name == CHECK_ON_CONTRACT
            ]
        assert checks[good_project].passed
        assert not checks[bad_project].passed
        assert checks[bad_project].severity == dg.AssetCheckSeverity.WARN
        (line,) = checks[bad_project].metadata["off_contract"].value[bad_project]
        assert broken in line and "duration_seconds" in line and "'12.5\\n'" in line
        assert REQUEST_ID.search(line) and CANARY_KEY not in line
        assert stored_listing(database, good_project) == truth(world, good_project)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 1000),
    name=st.sampled_from(sorted(BAD_VALUES)),
    changes=st.integers(0, 12),
    pick=st.integers(0, 10_000),
)
def test_an_off_contract_asset_anywhere_never_deletes_a_live_asset(seed, name, changes, pick):
    """Whatever asset is served off-contract, amid remote changes: no live asset is marked deleted, its
    own row is left as it was, and once the server is fixed the store equals the listing."""
    world = World.seeded(seed=seed, projects=2, assets_per_project=60)
    with (
        Emulator(world, api_key=CANARY_KEY) as emulator,
        RoughyClient(CANARY_KEY, emulator.base_url) as client,
        tempfile.TemporaryDirectory() as folder,
    ):
        database = f"{folder}/roughy_assets.duckdb"
        sync_account(client, database)
        world.random_changes(changes)
        ids = sorted(world.assets)
        broken = ids[pick % len(ids)]
        serve_bad(world, broken, BAD_VALUES[name])
        before = row_of(database, broken)
        sync_account(client, database)
        live = {item["id"] for project in world.projects for item in world.listing(project)}
        deleted = {
            asset_id
            for (asset_id,) in query(
                database, "SELECT CAST(id AS VARCHAR) FROM roughy.assets WHERE deleted_at IS NOT NULL"
            )
        }
        assert not deleted & live, "a live asset was marked deleted"
        if broken in live:
            assert row_of(database, broken) == before
        world.serve_raw(broken)
        sync_account(client, database, full_refresh=True)
        for project in world.projects:
            assert stored_listing(database, project) == truth(world, project)

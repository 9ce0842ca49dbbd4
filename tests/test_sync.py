"""The incremental sync against the emulator with real DuckDB files: equality, events, cost, errors."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pyarrow.compute as pc
import pytest

from roughy_dagster.client import RoughyClient, RoughyNotFoundError, RoughyProtocolError, RoughyServerError
from roughy_dagster.client.paging import created_us
from roughy_dagster.emulator import Emulator
from roughy_dagster.project_sync import sync_project
from roughy_dagster.store import AssetStore
from roughy_dagster.sync.rows import OBSERVATION_SCHEMA, RowBuffer

from .helpers import fingerprint, query, stored_listing, truth

UNKNOWN_PROJECT = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
def database(tmp_path):
    return tmp_path / "roughy.duckdb"


def events(database, sync_id=None) -> list[tuple]:
    sql = "SELECT asset_id::VARCHAR, kind, old_state, new_state FROM roughy.asset_events"
    if sync_id is not None:
        return query(database, sql + " WHERE sync_id = ?", [sync_id])
    return query(database, sql)


def test_first_sync_equals_the_listing_field_by_field(emulator: Emulator, client: RoughyClient, database):
    for project_id in emulator.world.projects:
        report = sync_project(client, database, project_id)
        assert stored_listing(database, project_id) == truth(emulator.world, project_id)
        assert report.mode == "full" and report.verified and report.new == report.live_rows
        # each list: its pages (overlapping by one) plus one request past the last proving the end
        assert report.requests == sum(
            1 if n == 0 else 2 + -(-max(n - 100, 0) // 99) for n in report.remote_totals.values()
        )
    appeared = query(database, "SELECT count(*), count(DISTINCT asset_id) FROM roughy.asset_events")
    assert appeared == [(emulator.world.count(), emulator.world.count())]


def test_quiet_sync_writes_no_events_and_stays_cheap(emulator: Emulator, client: RoughyClient, database):
    project_id = emulator.world.projects[0]
    sync_project(client, database, project_id)
    emulator.reset_counts()
    report = sync_project(client, database, project_id)
    assert (report.new, report.changed, report.deleted, report.revived) == (0, 0, 0, 0)
    assert report.verified and report.requests == emulator.list_requests <= 8
    assert events(database, report.sync_id) == []
    runs = query(
        database, "SELECT count(*), max(requests) FROM roughy.sync_runs WHERE project_id = ?", [project_id]
    )
    assert runs[0][0] == 2


def test_every_kind_of_change_is_recorded_once(emulator: Emulator, client: RoughyClient, database):
    world = emulator.world
    project_id = world.projects[0]
    sync_project(client, database, project_id)
    listing = world.listing(project_id)
    oldest_ready = next(a for a in reversed(listing) if a["state"] == "ready")
    old_failed = next(a for a in reversed(listing) if a["state"] == "failed")
    old_unpaid = next(a for a in reversed(listing) if a["state"] == "pending_payment")
    uploading = next(a for a in listing if a["state"] == "pending_upload")
    processing = next(a for a in listing if a["state"] == "processing")
    world.delete(oldest_ready["id"])
    world.delete(old_failed["id"])
    world.advance(old_unpaid["id"], "ready")  # an old asset paid for late
    world.advance(processing["id"], "failed")
    world.receive_first_chunk(uploading["id"])
    fresh = world.add_asset(project_id, state="ready")
    report = sync_project(client, database, project_id)
    assert stored_listing(database, project_id) == truth(world, project_id)
    found = sorted(events(database, report.sync_id))
    expected = sorted(
        [
            (oldest_ready["id"], "deleted", "ready", None),
            (old_failed["id"], "deleted", "failed", None),
            (old_unpaid["id"], "state_changed", "pending_payment", "ready"),
            (processing["id"], "state_changed", "processing", "failed"),
            (fresh.id, "appeared", None, "ready"),
        ]
        + (
            [(uploading["id"], "updated", "pending_upload", "pending_upload")]
            if uploading["type"] is None
            else []
        )
    )
    assert found == expected
    assert report.verified and report.deleted == 2 and report.new == 1
    deleted_rows = query(
        database,
        "SELECT count(*) FROM roughy.assets WHERE deleted_at IS NOT NULL AND project_id = ?",
        [project_id],
    )
    assert deleted_rows == [(2,)]
    assert events(database, sync_project(client, database, project_id).sync_id) == []


def test_full_refresh_reconciles_and_revives(emulator: Emulator, client: RoughyClient, database):
    world = emulator.world
    project_id = world.projects[0]
    sync_project(client, database, project_id)
    victim = world.listing(project_id, "ready")[-1]["id"]
    # Make the store wrongly believe an asset is gone (as an outside edit might): a full refresh revives it.
    with AssetStore(database).connect() as connection:
        connection.execute(
            "UPDATE roughy.assets SET deleted_at = now() - INTERVAL 1 HOUR WHERE id = ?", [victim]
        )
    report = sync_project(client, database, project_id, full_refresh=True)
    assert report.mode == "full" and report.revived == 1
    assert events(database, report.sync_id) == [(victim, "revived", "ready", "ready")]
    assert stored_listing(database, project_id) == truth(world, project_id)


def test_unknown_project_fails_and_writes_nothing(emulator: Emulator, client: RoughyClient, database):
    sync_project(client, database, emulator.world.projects[0])
    before = fingerprint(database)
    with pytest.raises(RoughyNotFoundError, match="Project not found"):
        sync_project(client, database, UNKNOWN_PROJECT)
    assert fingerprint(database) == before


def test_bad_project_id_is_refused_before_any_request(emulator: Emulator, client: RoughyClient, database):
    with pytest.raises(ValueError, match="project_id must be a UUID"):
        sync_project(client, database, "episode-1")
    assert emulator.list_requests == 0


@pytest.mark.parametrize(("kind", "skip"), [("foreign_item", 1), ("unsorted", 3)])
def test_a_page_that_breaks_the_contract_fails_the_sync_cleanly(
    emulator: Emulator, client: RoughyClient, database, kind: str, skip: int
):
    world = emulator.world
    project_id = world.projects[0]
    sync_project(client, database, project_id)
    world.random_changes(5, project_id=project_id)
    before = fingerprint(database)
    emulator.inject(kind, skip=skip)
    with pytest.raises(RoughyProtocolError) as caught:
        sync_project(client, database, project_id)
    assert "breaks the API contract" in str(caught.value) and caught.value.request_id in str(caught.value)
    assert fingerprint(database) == before, "a failed sync leaves the tables as they were"
    sync_project(client, database, project_id)
    assert stored_listing(database, project_id) == truth(world, project_id)


@pytest.mark.parametrize(
    ("kind", "skip"),
    [("missing_field", 0), ("unknown_state", 1), ("bad_duration", 0), ("wrong_type", 1), ("bad_id", 0)],
)
def test_an_item_that_breaks_the_contract_is_left_as_stored(
    emulator: Emulator, client: RoughyClient, database, kind: str, skip: int
):
    world = emulator.world
    project_id = world.projects[0]
    sync_project(client, database, project_id)
    world.random_changes(5, project_id=project_id)
    # a page with items to break (a fault on an empty page breaks the page as a whole)
    emulator.inject(kind, skip=skip, match={"state": "ready"})
    report = sync_project(client, database, project_id)
    assert not report.verified and "off-contract" in report.reason and "request id req_" in report.reason
    (refused,) = report.off_contract
    asset_id = refused.split()[1].rstrip(":")
    listed = {item["id"]: item for item in truth(world, project_id)}
    stored = {item["id"]: item for item in stored_listing(database, project_id)}
    assert {k: v for k, v in stored.items() if k != asset_id} == {
        k: v for k, v in listed.items() if k != asset_id
    }
    assert sync_project(client, database, project_id).verified
    assert stored_listing(database, project_id) == truth(world, project_id)


def test_network_failure_after_retries_leaves_the_store_as_it_was(
    emulator: Emulator, client: RoughyClient, database
):
    world = emulator.world
    project_id = world.projects[0]
    sync_project(client, database, project_id)
    world.random_changes(8, project_id=project_id)
    before = fingerprint(database)
    emulator.inject("unavailable", skip=3, count=50)
    with pytest.raises(RoughyServerError):
        sync_project(client, database, project_id)
    assert fingerprint(database) == before
    emulator.app.faults.clear()
    sync_project(client, database, project_id)
    assert stored_listing(database, project_id) == truth(world, project_id)


def test_exception_before_commit_rolls_back(emulator: Emulator, client: RoughyClient, database, monkeypatch):
    world = emulator.world
    project_id = world.projects[0]
    sync_project(client, database, project_id)
    world.random_changes(8, project_id=project_id)
    before = fingerprint(database)
    from roughy_dagster.store import store as store_module

    def explode(*args, **kwargs):
        raise RuntimeError("boom before commit")

    monkeypatch.setattr(store_module, "_record_sync_runs", explode)
    with pytest.raises(RuntimeError, match="boom"):
        sync_project(client, database, project_id)
    assert fingerprint(database) == before
    monkeypatch.undo()
    sync_project(client, database, project_id)
    assert stored_listing(database, project_id) == truth(world, project_id)


def test_listing_that_shifts_during_the_first_load_is_handled(
    emulator: Emulator, client: RoughyClient, database
):
    """New assets arriving while the first load pages produce repeats across pages and a changing total."""
    world = emulator.world
    project_id = world.projects[1]
    arrivals = iter(range(6))

    def arrive(query):
        if (
            query.get("state") == "ready"
            and query.get("offset") in ("100", "200")
            and next(arrivals, None) is not None
        ):
            world.add_asset(project_id, state="ready")

    emulator.app.before_listing = arrive
    first = sync_project(client, database, project_id)
    emulator.app.before_listing = None
    rows = query(database, "SELECT count(*), count(DISTINCT id) FROM roughy.assets")
    assert rows[0][0] == rows[0][1], "one row per asset despite repeats across pages"
    assert first.live_rows <= world.count(project_id)
    sync_project(client, database, project_id)
    assert stored_listing(database, project_id) == truth(world, project_id)


def test_deleting_while_paging_never_marks_a_live_asset_deleted(
    emulator: Emulator, client: RoughyClient, database
):
    """Deletions above the read position shift later items up, so a walk skips some: none may be 'deleted'."""
    world = emulator.world
    project_id = world.projects[0]
    sync_project(client, database, project_id)
    world.random_changes(5, project_id=project_id)

    def delete_newest_ready(query):
        if query.get("state") == "ready" and query.get("offset") != "0":
            newest = world.listing(project_id, "ready")[:2]
            for asset in newest:
                world.delete(asset["id"])

    emulator.app.before_listing = delete_newest_ready
    sync_project(client, database, project_id, full_refresh=True)
    emulator.app.before_listing = None
    gone = {
        row[0]
        for row in query(database, "SELECT id::VARCHAR FROM roughy.assets WHERE deleted_at IS NOT NULL")
    }
    assert not gone & set(world.assets), "no live asset is marked deleted"
    sync_project(client, database, project_id)
    assert stored_listing(database, project_id) == truth(world, project_id)


def test_concurrent_page_reads_give_the_same_result(emulator: Emulator, client: RoughyClient, tmp_path):
    world = emulator.world
    project_id = world.projects[0]
    report = sync_project(client, tmp_path / "concurrent.duckdb", project_id, concurrency=4)
    assert report.verified and report.requests == sum(
        1 if n == 0 else 2 + -(-max(n - 100, 0) // 99) for n in report.remote_totals.values()
    )
    assert stored_listing(tmp_path / "concurrent.duckdb", project_id) == truth(world, project_id)
    world.random_changes(6, project_id=project_id)
    sync_project(client, tmp_path / "concurrent.duckdb", project_id, full_refresh=True, concurrency=4)
    assert stored_listing(tmp_path / "concurrent.duckdb", project_id) == truth(world, project_id)


@pytest.mark.parametrize("concurrency", [1, 4])
def test_a_deletion_above_the_walk_neither_hides_an_asset_nor_leaves_a_ghost(
    emulator: Emulator, client: RoughyClient, database, concurrency: int
):
    """Deleting an asset the walk already passed shifts the rest up by one: without care, the asset at
    the next page boundary is skipped and the deleted one stays stored, and the two cancel in the counts."""
    world = emulator.world
    project_id = world.projects[0]
    for _ in range(250):
        world.add_asset(project_id, state="ready")
    done = []

    def delete_behind_the_walk(query):
        if query.get("state") == "ready" and int(query.get("offset", 0)) >= 290 and not done:
            passed = world.listing(project_id, "ready")[200]["id"]  # passed, and below the next head read
            world.delete(passed)
            done.append(passed)

    emulator.app.before_listing = delete_behind_the_walk
    sync_project(client, database, project_id, concurrency=concurrency)
    emulator.app.before_listing = None
    assert done
    sync_project(client, database, project_id)
    assert stored_listing(database, project_id) == truth(world, project_id)


def test_row_buffer_parses_pages_in_chunks_and_flags_superseded_rows(
    emulator: Emulator, client: RoughyClient
):
    project_id = max(emulator.world.projects, key=lambda p: len(emulator.world.listing(p)))
    pages = []
    offset = 0
    while True:  # overlapping pages, as the engine reads them: each repeats the asset that ended the last
        page = client.list_assets(project_id=project_id, limit=40, offset=offset)
        pages.append(page)
        if offset + len(page.items) >= page.total:
            break
        offset += len(page.items) - 1
    assert len(pages) >= 3
    buffer = RowBuffer(chunk_rows=50)  # several chunks, parsed in the background thread
    first_rows = [
        buffer.add_page(page.items, datetime(2026, 1, 1, second=number, tzinfo=UTC))
        for number, page in enumerate(pages)
    ]
    # The asset ending each page is seen again first on the next one: its earlier row is superseded.
    superseded = [first_rows[n] + len(pages[n].items) - 1 for n in range(len(pages) - 1)]
    table = buffer.table(superseded=superseded)
    assert table.num_rows == sum(len(p.items) for p in pages) and table.schema == OBSERVATION_SCHEMA
    kept = table.filter(pc.invert(table["superseded"]))
    assert kept["id"].to_pylist() == [item["id"] for item in emulator.world.listing(project_id)]
    assert kept.drop_columns(["observed_at", "superseded", "unfit_values"]).to_pylist() == [
        dict(msgspec.to_builtins(item), created_at=item.created_at)
        for page in pages
        for item in page.items
        if item is not page.items[-1] or page is pages[-1]
    ]
    seen = table["observed_at"].to_pylist()
    assert seen[first_rows[-1]] == datetime(2026, 1, 1, second=len(pages) - 1, tzinfo=UTC)


def test_row_buffer_keeps_an_asset_whose_line_is_longer_than_any_parser_block(emulator: Emulator, client):
    item = client.list_assets(limit=1).items[0]
    huge = msgspec.structs.replace(item, error_message="x" * (9 << 20))  # far above pyarrow's default block
    buffer = RowBuffer(chunk_rows=2)
    buffer.add_page([huge, item, huge], datetime(2026, 1, 1, tzinfo=UTC))
    table = buffer.table()
    assert table["error_message"].to_pylist() == [huge.error_message, item.error_message, huge.error_message]


def test_row_buffer_gives_the_created_at_of_rows_by_number(emulator: Emulator, client):
    """The engine keeps one int per sighted asset (its row and state), not a model: the `created_at` a
    bisection needs is read back from the Arrow rows, whether parsed already or still buffered."""
    page = client.list_assets(limit=30)
    buffer = RowBuffer(chunk_rows=20)  # the first page is parsed in the background, the second buffered
    first = buffer.add_page(page.items, datetime(2026, 1, 1, tzinfo=UTC))
    second = buffer.add_page(page.items[:5], datetime(2026, 1, 1, tzinfo=UTC))
    rows = [second + 4, first, first + 29, second]
    expected = [page.items[4], page.items[0], page.items[29], page.items[0]]
    assert buffer.created_us(rows) == [created_us(item.created_at) for item in expected]
    assert buffer.created_us([]) == []
    assert buffer.table().num_rows == 35


def test_a_first_load_under_its_memory_bound_stores_everything_and_leaves_no_spill(
    emulator: Emulator, client, tmp_path
):
    database = tmp_path / "first.duckdb"
    project_id = emulator.world.projects[0]
    report = sync_project(client, database, project_id)
    assert report.verified and report.new == len(truth(emulator.world, project_id))
    assert stored_listing(database, project_id) == truth(emulator.world, project_id)
    assert sorted(path.name for path in tmp_path.iterdir() if "tmp" in path.name) == []
    again = sync_project(client, database, project_id)  # the next write runs without the bound
    assert (again.new, again.changed, again.deleted) == (0, 0, 0)

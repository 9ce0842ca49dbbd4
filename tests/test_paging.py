"""The paging primitive alone (`roughy_dagster.client.paging`), against an in-memory list that can lie.

The list is newest first; between requests it may lose or gain items; its server may report a wrong
`total` or return fewer items than asked. Whatever it does, a walk ends within its budget, and an item
listed throughout a walk that says it is `sure` is never skipped.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from roughy_dagster.client import AssetPage, AssetState, AssetSummary
from roughy_dagster.client.paging import RequestBudget, WalkPage, walk_list

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
PROJECT = "019de7f5-7e21-7402-92a8-1c0e1fa84411"


def asset(index: int, *, second: int | None = None) -> AssetSummary:
    return AssetSummary(
        id=str(uuid.UUID(int=index + 1)),
        project_id=PROJECT,
        type=None,
        state=AssetState.READY,
        extension=None,
        size_bytes=None,
        content_type=None,
        duration_seconds=None,
        language=None,
        created_at=EPOCH + timedelta(seconds=index if second is None else second),
    )


class FakeList:
    """A listing of one filter with knobs for the lies the primitive must survive."""

    def __init__(
        self, items: list[AssetSummary], *, total_bias: int = 0, max_items: int | None = None
    ) -> None:
        self.items = items  # oldest first
        self.total_bias = total_bias
        self.max_items = max_items
        self.requests: list[int] = []
        self.before: list = []  # callables run before the n-th request (index n)

    def newest_first(self) -> list[AssetSummary]:
        return sorted(self.items, key=lambda a: (a.created_at, a.id), reverse=True)

    def fetch(self, offset: int, limit: int) -> AssetPage:
        if len(self.requests) < len(self.before) and self.before[len(self.requests)] is not None:
            self.before[len(self.requests)](self)
        self.requests.append(offset)
        listing = self.newest_first()
        count = limit if self.max_items is None else min(limit, self.max_items)
        page = listing[offset : offset + count]
        return AssetPage(items=page, total=max(0, len(listing) + self.total_bias), limit=limit, offset=offset)


def walk(fake: FakeList, budget: int = 1000, **options) -> tuple[list[WalkPage], object]:
    pages: list[WalkPage] = []
    result = walk_list(fake.fetch, pages.append, budget=RequestBudget(budget), **options)
    return pages, result


def seen_ids(pages: list[WalkPage]) -> set[str]:
    return {item.id for page in pages for item in page.items}


@pytest.mark.parametrize("size", [0, 1, 99, 100, 101, 250, 1000])
def test_a_quiet_list_is_read_whole_and_its_end_proven(size):
    fake = FakeList([asset(i) for i in range(size)])
    pages, result = walk(fake)
    assert seen_ids(pages) == {a.id for a in fake.items}
    assert result.reached_end and result.sure and result.complete and result.reason == ""
    pages_needed = 1 if size <= 100 else 1 + -(-(size - 100) // 99)
    assert result.requests == pages_needed + (size > 0)  # one request past the last page proves the end


@pytest.mark.parametrize(
    "total_bias, max_items",
    [(1, None), (50, None), (10**6, None), (-1, None), (-150, None), (0, 1), (0, 7), (-40, 3), (30, 2)],
)
def test_a_lying_server_never_loops_and_never_hides_an_item(total_bias, max_items):
    fake = FakeList([asset(i) for i in range(430)], total_bias=total_bias, max_items=max_items)
    pages, result = walk(fake, budget=2000)
    assert result.requests <= 2000
    assert result.reached_end
    assert seen_ids(pages) == {a.id for a in fake.items}


def test_the_budget_is_a_hard_bound():
    fake = FakeList([asset(i) for i in range(1000)], max_items=1)
    _pages, result = walk(fake, budget=25)
    assert result.requests == 25 == len(fake.requests)
    assert not result.complete and "budget" in result.reason


def test_a_tie_group_longer_than_a_page_is_walked_through():
    items = [asset(i, second=500) for i in range(250)] + [asset(1000 + i) for i in range(30)]
    fake = FakeList(items)
    pages, result = walk(fake)
    assert result.reached_end and result.sure
    assert seen_ids(pages) == {a.id for a in items}


def test_a_deletion_above_the_walk_makes_it_step_back_and_skip_nothing():
    items = [asset(i) for i in range(300)]
    fake = FakeList(items)
    newest = fake.newest_first()
    fake.before = [None, lambda f: f.items.remove(newest[0]), None, None, None]
    pages, result = walk(fake)
    assert result.step_backs >= 1 and result.sure
    assert {a.id for a in items} <= seen_ids(pages)


def test_the_watermark_stops_the_walk():
    fake = FakeList([asset(i) for i in range(1000)])
    watermark = int((EPOCH + timedelta(seconds=800)).timestamp()) * 1_000_000
    _pages, result = walk(fake, stop_below_us=watermark)
    assert result.stopped_at_watermark and not result.reached_end and result.complete
    assert result.requests == 3


@pytest.mark.parametrize("concurrency", [2, 4, 8])
def test_several_in_flight_read_the_same_pages(concurrency):
    fake = FakeList([asset(i) for i in range(1234)])
    pages, result = walk(fake, concurrency=concurrency)
    assert result.reached_end and result.sure
    assert seen_ids(pages) == {a.id for a in fake.items}
    assert [p.offset for p in pages] == sorted(p.offset for p in pages)


def test_several_in_flight_with_short_pages_fall_back_and_skip_nothing():
    fake = FakeList([asset(i) for i in range(500)], max_items=40)
    pages, result = walk(fake, concurrency=4)
    assert result.reached_end
    assert seen_ids(pages) == {a.id for a in fake.items}


@settings(max_examples=60, deadline=None)
@given(
    size=st.integers(0, 400),
    total_bias=st.integers(-300, 300),
    max_items=st.one_of(st.none(), st.integers(1, 100)),
    concurrency=st.sampled_from([1, 3]),
    deletions=st.lists(st.tuples(st.integers(0, 12), st.integers(0, 10**6)), max_size=4),
    additions=st.lists(st.integers(0, 12), max_size=3),
    budget=st.integers(1, 600),
)
def test_any_lie_or_change_ends_within_budget_and_a_sure_walk_misses_nothing_listed_throughout(
    size, total_bias, max_items, concurrency, deletions, additions, budget
):
    fake = FakeList([asset(i) for i in range(size)], total_bias=total_bias, max_items=max_items)
    plan: list = [None] * 14
    fresh = iter(range(10_000, 10_100))

    def delete(pick: int):
        return lambda f: f.items.pop(pick % len(f.items)) if f.items else None

    for at, pick in deletions:
        plan[at] = delete(pick)
    for at in additions:
        plan[at] = lambda f: f.items.append(asset(next(fresh)))
    fake.before = plan
    original = {a.id for a in fake.items}
    pages, result = walk(fake, budget=budget, concurrency=concurrency)
    assert result.requests == len(fake.requests) <= budget
    listed_throughout = original & {a.id for a in fake.items}
    if result.sure and result.reached_end:
        assert listed_throughout <= seen_ids(pages)
    if not result.sure:
        assert result.reason


def test_iter_assets_never_silently_skips_an_asset_listed_throughout():
    """Issue #12's input: a ready asset near the top deleted and an old processing one turned ready
    between two pages (so `total` is unchanged): every asset listed throughout is still yielded."""
    from roughy_dagster.client import RoughyClient
    from roughy_dagster.emulator import Emulator, World

    world = World.seeded(seed=3, projects=1, assets_per_project=260)
    project = world.projects[0]
    old_processing = world.add_asset(project, state="processing", created_at=EPOCH - timedelta(days=30))
    served = iter(range(10**6))

    def between_pages(query: dict[str, str]) -> None:
        if next(served) == 1:
            ready = world.listing(project, "ready")
            world.delete(ready[2]["id"])
            world.advance(old_processing.id, "ready")

    with Emulator(world) as emulator, RoughyClient(emulator.api_key, emulator.base_url) as client:
        before = {a["id"] for a in world.listing(project, "ready")}
        emulator.app.before_listing = between_pages
        walk = client.iter_assets(project_id=project, state="ready")
        yielded = [item.id for item in walk]
        after = {a["id"] for a in world.listing(project, "ready")}
    assert len(yielded) == len(set(yielded))
    assert before & after <= set(yielded)
    assert walk.complete or walk.shifted

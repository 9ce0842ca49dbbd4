"""The paging primitive alone (`roughy_dagster.client.paging`), against an in-memory list that can lie.

The list is newest first; between requests it may lose or gain items; its server may report a wrong
`total` or return fewer items than asked. Whatever it does, a walk ends within its budget, and an item
listed throughout a walk that says it is `sure` is never skipped.
"""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from roughy_dagster.client import AssetPage, AssetState, AssetSummary
from roughy_dagster.client.paging import ListWalk, RequestBudget, WalkPage, walk_list, walk_together

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


class SharedLog:
    """Requests of several fake lists in the order they were answered, and the most in flight at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.answered: list[tuple[str, int, int]] = []  # (list name, offset, items)
        self.in_flight = self.most_in_flight = 0

    def fetching(self, name: str, fake: FakeList, pause: float = 0.002):
        def fetch(offset: int, limit: int) -> AssetPage:
            with self.lock:
                self.in_flight += 1
                self.most_in_flight = max(self.most_in_flight, self.in_flight)
            try:
                time.sleep(pause)  # a short wait, so that requests sent together overlap
                page = fake.fetch(offset, limit)
            finally:
                with self.lock:
                    self.in_flight -= 1
                    self.answered.append((name, offset, len(page.items)))
            return page

        return fetch


def lists_of(sizes: dict[str, int]) -> dict[str, FakeList]:
    return {
        name: FakeList([asset(10_000 * number + i) for i in range(size)])
        for number, (name, size) in enumerate(sizes.items())
    }


@pytest.mark.parametrize("concurrency", [1, 3, 8])
def test_several_lists_walked_together_are_each_read_whole_in_order(concurrency):
    fakes = lists_of({"a": 0, "b": 7, "c": 100, "d": 1234, "e": 301})
    log = SharedLog()
    budget = RequestBudget(1000)
    walks = [ListWalk(log.fetching(n, f), budget=budget, concurrency=concurrency) for n, f in fakes.items()]
    pages: dict[int, list[WalkPage]] = {index: [] for index in range(len(walks))}
    for index, read in walk_together(walks):
        pages[index].append(read)
    for index, (name, fake) in enumerate(fakes.items()):
        assert seen_ids(pages[index]) == {a.id for a in fake.items}, name
        offsets = [page.offset for page in pages[index]]
        assert offsets == sorted(offsets)
        assert walks[index].result.complete and walks[index].result.reached_end
        assert walks[index].result.requests == len(fake.requests)
    assert budget.spent == sum(len(f.requests) for f in fakes.values())
    assert log.most_in_flight <= concurrency
    if concurrency > 1:
        assert log.most_in_flight > 1


def test_lists_walked_together_prove_their_ends_after_every_page_of_every_list():
    """The end barrier: each list's empty page past its end is requested only once every list has read
    its pages, so that the `total`s it returns are taken after them all."""
    fakes = lists_of({"small": 5, "big": 800, "mid": 150})
    log = SharedLog()
    walks = [ListWalk(log.fetching(n, f), budget=RequestBudget(100), concurrency=4) for n, f in fakes.items()]
    list(walk_together(walks))
    ends = [at for at, (name, offset, items) in enumerate(log.answered) if items == 0]
    others = [at for at, (name, offset, items) in enumerate(log.answered) if items]
    assert len(ends) == 3
    assert min(ends) > max(others)


def test_small_lists_walked_together_keep_several_in_flight_across_lists():
    """Lists of one page each cannot overlap their own requests: several in flight means across lists."""
    fakes = lists_of({name: 40 for name in "abcde"})
    log = SharedLog()
    walks = [ListWalk(log.fetching(n, f), budget=RequestBudget(100), concurrency=8) for n, f in fakes.items()]
    list(walk_together(walks))
    assert log.most_in_flight > 1
    assert all(len(f.requests) == 2 for f in fakes.values())  # its page, and the empty one past it


def test_an_error_in_one_walk_stops_every_walk_and_leaves_no_thread():
    fakes = lists_of({"a": 900, "b": 900, "c": 900})
    log = SharedLog()

    def failing(offset: int, limit: int) -> AssetPage:
        if offset >= 297:
            raise RuntimeError("the server broke")
        return log.fetching("c", fakes["c"])(offset, limit)

    threads_before = threading.active_count()
    walks = [
        ListWalk(log.fetching("a", fakes["a"]), budget=RequestBudget(100), concurrency=4),
        ListWalk(log.fetching("b", fakes["b"]), budget=RequestBudget(100), concurrency=4),
        ListWalk(failing, budget=RequestBudget(100), concurrency=4),
    ]
    with pytest.raises(RuntimeError, match="the server broke"):
        list(walk_together(walks))
    assert threading.active_count() == threads_before
    answered = len(log.answered)
    time.sleep(0.02)
    assert len(log.answered) == answered  # nothing still in flight


def test_leaving_a_group_early_ends_every_walk():
    fakes = lists_of({"a": 2000, "b": 2000})
    log = SharedLog()
    walks = [ListWalk(log.fetching(n, f), budget=RequestBudget(100), concurrency=4) for n, f in fakes.items()]
    threads_before = threading.active_count()
    together = walk_together(walks)
    for count, _ in enumerate(together):
        if count == 3:
            break
    together.close()
    assert threading.active_count() == threads_before
    assert all(len(f.requests) < 30 for f in fakes.values())


def test_a_shared_budget_bounds_lists_walked_together():
    fakes = lists_of({"a": 3000, "b": 3000, "c": 3000})
    budget = RequestBudget(17)
    walks = [ListWalk(f.fetch, budget=budget, concurrency=8) for f in fakes.values()]
    list(walk_together(walks))
    assert sum(len(f.requests) for f in fakes.values()) == budget.spent <= 17
    assert all(not walk.result.complete and "budget" in walk.result.reason for walk in walks)


@pytest.mark.parametrize("concurrency", [1, 8])
def test_a_first_load_reads_its_lists_at_once_seen_at_the_emulator(tmp_path, concurrency):
    """Every list of this project fits one page, so a list alone has one request in flight at a time:
    more than one at the emulator means the lists were read at once (and `concurrency=1` never does)."""
    from roughy_dagster import sync_project
    from roughy_dagster.client import RoughyClient
    from roughy_dagster.emulator import Emulator, World

    world = World.seeded(seed=5, projects=1, assets_per_project=90)
    project = world.projects[0]
    with (
        Emulator(world, latency_ms=20) as emulator,
        RoughyClient(emulator.api_key, emulator.base_url) as client,
    ):
        report = sync_project(client, tmp_path / "first.duckdb", project, concurrency=concurrency)
        states = {query.get("state") for query in emulator.request_log}
        most = emulator.most_in_flight
    assert report.verified and report.new == 90
    assert len(states) == 5
    assert most == 1 if concurrency == 1 else most > 1

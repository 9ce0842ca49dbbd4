"""The one paging primitive: walk one list of the listing by offset, skip nothing unnoticed, always end.

The listing pages by offset, newest first, and may change between two requests; the contract lets a server
return fewer items than `limit` ("a maximum"), and nothing forces `total` to be right. `walk_list` reads one
list (one project or the whole account, one state or all) from `start` down:

- **Overlap.** Each request after the first starts at the last item of the page before (the *anchor*). When
  the anchor is missing from the next page (and that page does not start above it), items above were
  deleted and the list moved up under the walk: it steps back until it finds the anchor again (at most
  `max_step_backs` times, then it goes on and says it is unsure).
- **Ends are proven, never taken from `total`.** A page that looks like the last one (fewer items than
  asked, or reaching `total`) is confirmed by one request just past it: an empty page ends the walk
  (`reached_end`); items there mean the server miscounted or shortened the page, and the walk goes on.
- **Progress is new ids.** Every forward step moves the offset on by at least one; step-backs are
  bounded; a walk whose pages stop showing ids it has never seen (`MAX_STALE_PAGES` in a row, counted
  against every id of the walk, not only the page before: a server ignoring `offset`, or serving a tie
  group in rotation so every window looks new next to the last) stops, unsure; every request is taken
  from a `RequestBudget` shared by the whole sync (which grows with what pages show, never with a
  claimed `total`, and may have a hard `cap`). So a `total` too high or too low, one item per page,
  rotating pages, or a tie group longer than a page all end, within the budget.
- **Watermark.** With `stop_below_us`, the walk stops after the first page whose last item is older.
- **In flight.** With `concurrency` > 1 (whole-list reads only), up to that many pages are requested at
  predicted offsets (a pipeline: each page answered frees a slot), each still overlapping the one
  before; where a page does not join up the walk reads on one page at a time. Retries (429s) halve the
  requests kept in flight.
- **Several lists at once.** `walk_together` walks several lists in one `Pipeline`: `concurrency`
  requests in flight across all of them (first pages, windows and end proofs alike), each list's pages
  handed over in its own order. No list proves its end until every list of the group has read its
  pages (an end barrier), so the `total`s of those last requests are all taken after every page: an
  asset that moved between two lists while they were read, and so was seen in neither, still shows as
  a count the caller can check.

`ListWalk` yields every page, in list order, as a `WalkPage` (`walk_list` hands each to a callback,
`walk_together` yields the pages of several walks, each tagged with its walk); the caller records what
it proves. The walk's `WalkResult` says whether it could be sure that nothing
listed throughout was skipped (`sure`) and, if not, why (`reason`).
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from .models import AssetPage, AssetSummary

MAX_PAGE_SIZE = 100
"""The spec's largest `limit`."""

MAX_STEP_BACKS = 20
"""Step-backs one walk may make to find a lost anchor before it goes on unsure."""

MAX_STALE_PAGES = 3
"""Consecutive forward pages showing no id the walk had not seen (a server ignoring `offset`, or rotating
a window over the same items) before a walk stops, unsure: the walk's cost is bounded by what the data
shows, not by the `total` a server claims."""

Fetch = Callable[[int, int], AssetPage]
"""Fetches one page of one list: `(offset, limit) -> AssetPage` (may be called from several threads)."""


class RequestBudget:
    """A hard bound on the listing requests of one piece of work (a sync, a walk); safe across threads.

    `limit` requests may be taken; `grant(n)` raises the bound (e.g. for each page that showed new
    assets), never above `cap` (None: no cap), the hard bound a caller sets (`max_requests`).
    """

    def __init__(self, limit: int, *, cap: int | None = None) -> None:
        self.cap = cap
        self.limit = limit if cap is None else min(limit, cap)
        self.spent = 0
        self._lock = threading.Lock()

    def take(self) -> bool:
        """Take one request from the budget; False (nothing taken) when it is spent."""
        with self._lock:
            if self.spent >= self.limit:
                return False
            self.spent += 1
            return True

    def refund(self) -> None:
        """Give back one request taken but never sent."""
        with self._lock:
            self.spent = max(0, self.spent - 1)

    def grant(self, requests: int) -> None:
        """Allow `requests` more."""
        with self._lock:
            self.limit += max(0, requests)
            if self.cap is not None:
                self.limit = min(self.limit, self.cap)

    @property
    def capped(self) -> bool:
        """Whether the hard cap is what stops further requests."""
        return self.cap is not None and self.spent >= self.cap

    @property
    def remaining(self) -> int:
        """Requests still allowed."""
        return max(0, self.limit - self.spent)

    @property
    def exhausted(self) -> bool:
        """Whether no request is left."""
        return self.spent >= self.limit


@dataclass(frozen=True)
class WalkPage:
    """One page as a walk read it: the page, and the offset and limit it was asked with."""

    page: AssetPage
    offset: int
    limit: int
    re_read: bool = False
    """Read to find a lost anchor again or to confirm an end: it may show only assets read before, so
    it never counts as a page without progress (one showing a new asset still counts as progress)."""

    @property
    def items(self) -> list[AssetSummary]:
        """The page's items, newest first."""
        return self.page.items


@dataclass
class WalkResult:
    """How a walk ended.

    `reached_end`: an empty page just past `last` (or at offset 0) proved the list ended there.
    `stopped_at_watermark`: the walk stopped below `stop_below_us`. `sure`: every page boundary was
    joined by the overlap, so no item listed throughout the walk can have been skipped. `reason` says
    why the walk is unsure or incomplete (empty when it is neither). `lies` counts pages where the server
    said the list ended (short page or `total`) and it did not.
    """

    requests: int = 0
    reached_end: bool = False
    stopped_at_watermark: bool = False
    sure: bool = True
    reasons: list[str] = field(default_factory=list)
    lies: int = 0
    step_backs: int = 0
    last: WalkPage | None = None
    totals: list[int] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Whether the walk read what it set out to (to the end or the watermark) and is sure of it."""
        return self.sure and (self.reached_end or self.stopped_at_watermark)

    @property
    def reason(self) -> str:
        """Why the walk is unsure or incomplete, in words ('' when it is neither)."""
        return "; ".join(self.reasons)

    def doubt(self, reason: str) -> None:
        """Record why the walk cannot be sure (each distinct reason once)."""
        self.sure = False
        if reason not in self.reasons:
            self.reasons.append(reason)


class _OutOfBudget(Exception):
    pass


class _Stopped(Exception):
    """The group a walk belongs to was stopped (its consumer left or another walk failed)."""


_POLL_SECONDS = 0.05
"""How often a thread blocked on a group (a slot, the end barrier, a full hand-over queue) checks that
the group was not stopped meanwhile."""


class Pipeline:
    """The requests one or several walks keep in flight: at most `limit` at once, on a pool of threads.

    `limit` starts at `concurrency` and halves each time `retries()` (a counter of retried requests:
    429s, 503s) has grown since last looked (`note_retries`), down to one. Safe across threads.
    """

    def __init__(self, concurrency: int, retries: Callable[[], int] | None = None) -> None:
        self.concurrency = max(1, concurrency)
        self.limit = self.concurrency
        self.retries = retries
        self._retries_seen = retries() if retries is not None else 0
        self._active = 0
        self._changed = threading.Condition()
        self._stopped = False
        self._pool: ThreadPoolExecutor | None = None

    def _acquire(self) -> None:
        with self._changed:
            while self._active >= self.limit and not self._stopped:
                self._changed.wait(_POLL_SECONDS)
            if self._stopped:
                raise _Stopped
            self._active += 1

    def _release(self, _: object = None) -> None:
        with self._changed:
            self._active -= 1
            self._changed.notify_all()

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one slot while the block sends a request in the calling thread (waits for a free one)."""
        self._acquire()
        try:
            yield
        finally:
            self._release()

    def submit(self, fetch: Fetch, offset: int, limit: int) -> Future[AssetPage]:
        """Send `fetch(offset, limit)` on the pool once a slot is free; the slot frees when it is answered."""
        self._acquire()
        if self._pool is None:
            with self._changed:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="roughy-page")
        try:
            future = self._pool.submit(fetch, offset, limit)
        except BaseException:
            self._release()
            raise
        future.add_done_callback(self._release)
        return future

    def note_retries(self) -> None:
        """Halve `limit` when requests were retried since last looked."""
        if self.retries is None:
            return
        seen = self.retries()
        with self._changed:
            if seen > self._retries_seen:
                self.limit = max(1, self.limit // 2)
            self._retries_seen = max(seen, self._retries_seen)

    def stop(self) -> None:
        """Make every thread waiting for a slot raise `_Stopped`."""
        with self._changed:
            self._stopped = True
            self._changed.notify_all()

    def close(self) -> None:
        """Stop the pool's threads (requests already sent are waited for; queued ones are dropped)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


class _Group:
    """What the walks of one `walk_together` share: who is still reading pages (the end barrier) and
    whether the group was stopped."""

    def __init__(self, count: int) -> None:
        self.reading = set(range(count))
        self.stopped = False
        self._changed = threading.Condition()

    def end_turn(self, index: int) -> None:
        """Walk `index` is ready to prove its end: wait until no walk of the group still reads pages."""
        with self._changed:
            self.reading.discard(index)
            self._changed.notify_all()
            while self.reading and not self.stopped:
                self._changed.wait(_POLL_SECONDS)
            if self.stopped:
                raise _Stopped

    def resume(self, index: int) -> None:
        """Walk `index` reads pages again (the page past its end was not empty)."""
        with self._changed:
            self.reading.add(index)

    def leave(self, index: int) -> None:
        """Walk `index` ended."""
        with self._changed:
            self.reading.discard(index)
            self._changed.notify_all()

    def stop(self) -> None:
        with self._changed:
            self.stopped = True
            self._changed.notify_all()

    def hand_over(self, out: queue.Queue[_Handed], item: _Handed) -> None:
        """Put `item` on the consumer's queue, waiting while it is full (unless the group stops)."""
        while not self.stopped:
            try:
                out.put(item, timeout=_POLL_SECONDS)
                return
            except queue.Full:
                continue
        raise _Stopped

    def wait(self, event: threading.Event) -> None:
        """Wait for `event` (unless the group stops)."""
        while not event.wait(_POLL_SECONDS):
            if self.stopped:
                raise _Stopped


def created_us(moment: datetime) -> int:
    """A timestamp as integer microseconds since the epoch: the listing's order key (DuckDB's `epoch_us`).

    Exact integer arithmetic: `int(moment.timestamp())` rounds toward zero, which before 1970 put the
    microseconds on the wrong second and broke the order."""
    return (moment - _EPOCH) // _MICROSECOND


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def continues(page: AssetPage, last: AssetSummary) -> bool:
    """Whether `page`, read after a page ending with `last`, leaves no gap after `last`."""
    if not page.items:
        return False
    first = page.items[0]
    if first.id == last.id or first.created_at > last.created_at:
        return True  # the usual overlap of one item, or a list that moved down
    return any(item.id == last.id for item in page.items)


class ListWalk:
    """An iteration over the pages of one list, in list order, by the rules of the module doc.

    Iterate it once (or hand it to `walk_together`); `result` says how the walk ended (final once the
    iteration is over). Errors `fetch` raises propagate out of the iteration.
    """

    def __init__(
        self,
        fetch: Fetch,
        *,
        budget: RequestBudget,
        start: int = 0,
        stop_below_us: int | None = None,
        concurrency: int = 1,
        limit: int = MAX_PAGE_SIZE,
        retries: Callable[[], int] | None = None,
        max_step_backs: int = MAX_STEP_BACKS,
    ) -> None:
        self.fetch = fetch
        self.budget = budget
        self.start = start
        self.stop_below_us = stop_below_us
        self.concurrency = concurrency if stop_below_us is None else 1
        self.limit = limit
        self.retries = retries
        self.step_backs_left = max_step_backs
        self.result = WalkResult()
        self._pipeline: Pipeline | None = None  # set by walk_together, else made here when needed
        self._group: _Group | None = None
        self._index = 0

    def __iter__(self) -> Iterator[WalkPage]:
        own = self._pipeline is None and self.concurrency > 1
        if own:
            self._pipeline = Pipeline(self.concurrency, self.retries)
        pages = self._run()
        seen: set[str] = set()
        stale = 0
        try:
            for read in pages:
                yield read
                before = len(seen)
                seen.update(item.id for item in read.items)
                if len(seen) > before:
                    stale = 0
                elif read.items and not read.re_read:
                    stale += 1
                if stale >= MAX_STALE_PAGES:
                    self.result.doubt(
                        f"{stale} consecutive pages showed no asset the walk had not seen (the server "
                        f"seems to ignore offset, or to rotate its pages, at offset {read.offset}): "
                        "the walk stopped"
                    )
                    return
        except _OutOfBudget:
            self.result.doubt(f"the request budget ({self.budget.limit}) ran out before the list was read")
        finally:
            pages.close()
            if own and self._pipeline is not None:
                self._pipeline.close()
                self._pipeline = None

    def _get(self, offset: int, *, re_read: bool = False) -> Generator[WalkPage, None, WalkPage]:
        if not self.budget.take():
            raise _OutOfBudget
        self.result.requests += 1
        if self._pipeline is None:
            page = self.fetch(offset, self.limit)
        else:
            try:
                with self._pipeline.slot():
                    page = self.fetch(offset, self.limit)
            except _Stopped:
                self.result.requests -= 1
                self.budget.refund()
                raise
        read = WalkPage(page, offset, self.limit, re_read)
        self.result.totals.append(read.page.total)
        yield read
        return read

    def _run(self) -> Generator[WalkPage, None, None]:
        current = yield from self._get(self.start)
        while True:
            if not current.items:
                if current.offset == 0:
                    self.result.reached_end = True  # an empty list, proven by the page itself
                else:
                    self.result.doubt(
                        f"the list had no item at offset {current.offset} any more: the walk lost its place"
                    )
                return
            self.result.last = current
            if (
                self.stop_below_us is not None
                and created_us(current.items[-1].created_at) < self.stop_below_us
            ):
                self.result.stopped_at_watermark = True
                return
            if self._looks_like_end(current):
                if self._group is not None:
                    self._group.end_turn(self._index)  # prove ends only once every list is read
                after = yield from self._get(current.offset + len(current.items), re_read=True)
                if not after.items:
                    self.result.reached_end = True
                    return
                self.result.lies += 1  # the server said "last page" and it was not
                if self._group is not None:
                    self._group.resume(self._index)
                current = yield from self._step(current)
                continue
            if (
                self._pipeline is not None
                and self._pipeline.limit > 1
                and current.page.total > current.offset + len(current.items)
            ):
                current = yield from self._window(current)
                continue
            current = yield from self._step(current)

    def _looks_like_end(self, read: WalkPage) -> bool:
        return len(read.items) < read.limit or read.offset + len(read.items) >= read.page.total

    def _step(self, current: WalkPage) -> Generator[WalkPage, None, WalkPage]:
        """The next page after `current`, joined to it by the overlap (stepping back when it moved)."""
        count = len(current.items)
        if count < 2:
            # a one-item page cannot overlap and advance: go on without the overlap, unsure of the join
            self.result.doubt(
                "the server returned one-item pages: consecutive pages cannot overlap, so a change "
                "while the walk read them could skip an item"
            )
            return (yield from self._get(current.offset + count))
        anchor = current.items[-1]
        offset = current.offset + count - 1
        following = yield from self._get(offset)
        while not continues(following.page, anchor) and offset > 0:
            if self.step_backs_left <= 0:
                self.result.doubt(
                    f"the list kept moving above offset {offset}: gave up finding the last item read "
                    f"after {self.result.step_backs} step-backs"
                )
                break
            self.step_backs_left -= 1
            self.result.step_backs += 1
            offset = max(0, offset - (self.limit - 1))
            following = yield from self._get(offset, re_read=True)
        return following

    def _window(self, current: WalkPage) -> Generator[WalkPage, None, WalkPage]:
        """Keep up to the pipeline's `limit` pages in flight at predicted offsets, yielding them in order
        as long as each joins the one before; return the last page joined up (the caller reads on from
        there).

        A pipeline, not a barrier: each page answered frees a slot for the next offset (of this list or,
        in a group, of another), so a slow answer holds back only the pages behind it. Retries seen
        meanwhile (429s) halve the requests kept in flight.
        """
        pipeline = self._pipeline
        assert pipeline is not None
        step = self.limit - 1
        next_offset = current.offset + len(current.items) - 1
        end_by_total = current.page.total
        pending: deque[tuple[int, Future[AssetPage]]] = deque()
        previous = current
        try:
            while True:
                while len(pending) < pipeline.limit and next_offset < end_by_total:
                    if not self.budget.take():
                        break
                    self.result.requests += 1
                    try:
                        pending.append((next_offset, pipeline.submit(self.fetch, next_offset, self.limit)))
                    except BaseException:
                        self.result.requests -= 1
                        self.budget.refund()
                        raise
                    next_offset += step
                if not pending:
                    if self.budget.exhausted:
                        raise _OutOfBudget
                    return previous
                offset, future = pending.popleft()
                page = future.result()
                self.result.totals.append(page.total)
                if not continues(page, previous.items[-1]):
                    return (yield from self._step(previous))  # the list moved: read on one page at a time
                previous = WalkPage(page, offset, self.limit)
                yield previous
                if self._looks_like_end(previous):
                    return previous  # the caller confirms the end (or reads on) from here
                end_by_total = max(end_by_total, page.total)
                pipeline.note_retries()
        finally:
            for _, future in pending:
                future.cancel()
            wait_for([future for _, future in pending])  # none outlives the walk
            for _, future in pending:
                if future.cancelled():  # never sent: not spent
                    self.result.requests -= 1
                    self.budget.refund()


_Handed = tuple[int, WalkPage | BaseException | None, threading.Event | None]
"""What a walk's thread hands the consumer of `walk_together`: (walk index, a page, the walk's error, or
None once the walk ended; an event to set once the page was used, for a walk's first page)."""


def walk_together(walks: Sequence[ListWalk]) -> Iterator[tuple[int, WalkPage]]:
    """Walk several lists at once; yield `(index of the walk in walks, page)`, each list in its order.

    The walks share one `Pipeline` of the largest `concurrency` among them, so that many requests are in
    flight across all the lists (a 429 halves it for all). Each walk runs in its own thread; pages are
    handed over through a short queue, so the caller uses them in its own thread, one at a time. A
    walk's first page is used by the caller before the walk requests more (the caller may size the
    budget from its `total`). The end barrier (module doc) holds every list's end proof until each list
    of the group has read its pages. With a `concurrency` of 1 the walks simply run one after another.

    Leaving the iteration early, or an error of any walk (raised here, the others stopped), ends every
    walk before this returns: no request of theirs is left in flight.
    """
    concurrency = max((walk.concurrency for walk in walks), default=1)
    if concurrency <= 1 or len(walks) == 1:
        for index, walk in enumerate(walks):
            for read in walk:
                yield index, read
        return
    pipeline = Pipeline(concurrency, next((w.retries for w in walks if w.retries is not None), None))
    group = _Group(len(walks))
    out: queue.Queue[_Handed] = queue.Queue(maxsize=2 * concurrency)
    threads = []
    for index, walk in enumerate(walks):
        walk._pipeline, walk._group, walk._index = pipeline, group, index
        thread = threading.Thread(
            target=_produce, args=(walk, group, out), name=f"roughy-walk-{index}", daemon=True
        )
        threads.append(thread)
    for thread in threads:
        thread.start()
    running = len(walks)
    try:
        while running:
            index, handed, used = out.get()
            if handed is None:
                running -= 1
            elif isinstance(handed, BaseException):
                raise handed
            else:
                yield index, handed
                if used is not None:
                    used.set()
    finally:
        group.stop()
        pipeline.stop()
        for thread in threads:
            while thread.is_alive():
                with suppress(queue.Empty):
                    out.get_nowait()  # a walk waiting to hand over a page must not block its end
                thread.join(_POLL_SECONDS)
        pipeline.close()


def _produce(walk: ListWalk, group: _Group, out: queue.Queue[_Handed]) -> None:
    """Run one walk of a group in this thread, handing each page to the consumer."""
    pages = iter(walk)
    first = True
    try:
        for read in pages:
            used = threading.Event() if first else None
            group.hand_over(out, (walk._index, read, used))
            if used is not None:
                group.wait(used)
            first = False
    except _Stopped:
        return
    except BaseException as error:  # the consumer raises it in its thread
        group.leave(walk._index)
        with suppress(_Stopped):
            group.hand_over(out, (walk._index, error, None))
        return
    finally:
        close = getattr(pages, "close", None)
        if close is not None:
            close()
        group.leave(walk._index)
    with suppress(_Stopped):
        group.hand_over(out, (walk._index, None, None))


def walk_list(
    fetch: Fetch,
    on_page: Callable[[WalkPage], None],
    *,
    budget: RequestBudget,
    start: int = 0,
    stop_below_us: int | None = None,
    concurrency: int = 1,
    limit: int = MAX_PAGE_SIZE,
    retries: Callable[[], int] | None = None,
    max_step_backs: int = MAX_STEP_BACKS,
) -> WalkResult:
    """Walk one list and hand each page to `on_page`; the `ListWalk` of these arguments, run to its end.

    `fetch(offset, limit)` reads one page (errors it raises propagate; pages already passed to `on_page`
    stay recorded). `retries()`, when given, counts retries so far (a window that met some halves the
    next). Never raises for a misbehaving list: the result says what happened.
    """
    walk = ListWalk(
        fetch,
        budget=budget,
        start=start,
        stop_below_us=stop_below_us,
        concurrency=concurrency,
        limit=limit,
        retries=retries,
        max_step_backs=max_step_backs,
    )
    for read in walk:
        on_page(read)
    return walk.result

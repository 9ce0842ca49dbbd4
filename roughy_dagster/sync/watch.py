"""Watch the listing for assets that newly enter given states: few requests a tick, progress in any budget.

The state sensor's engine, framework-free and without DuckDB (a sensor must never open the file a run
may be writing). What it knows between ticks is a `WatchState` per scope (a project, or the account):

- `known`: every non-terminal asset (id -> state, `created_at`), the only ones that can still change state
  below the head of the lists. An asset whose departure from its list is proven but whose new place is not
  yet found is kept as "left <state>" until it is located.
- `recent`: the terminal assets seen in the head of the lists (created since `watermark - overlap`).
- `owed`: `created_at` intervals of a list still to read (a read cut short by the budget, or the first
  tick's snapshot), each silent (record, never fire) or not.

A tick reads the head of each list down to `watermark - overlap`. Below it, a non-terminal list only loses
assets (new ones are created at the head), so when its `total` equals the number of assets believed in it,
nothing left it: a quiet tick costs one request per state list, whatever the number of abandoned uploads.
When the counts disagree, a bisection by offset finds the assets that left (each probe compares the remote
count above a `created_at` with the believed one), and each is then located in the later lists where its
`created_at` puts it. A watched state entered is reported once. The watermark is the newest `created_at`
seen that is not in the future of the tick's clock, so an asset dated 2100 (listed or removed) never hides
later ones. When the budget runs out, what was found is kept and reported and the rest waits for the next
tick; the next tick starts with the phase that was skipped, so no phase starves at any latency.
"""

from __future__ import annotations

import bisect
import copy
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from uuid import UUID

from ..client import STATE_FLOW, AssetPage, AssetState, AssetSummary, RoughyAPIError, RoughyClient
from ..client.paging import MAX_PAGE_SIZE, ListWalk, RequestBudget
from .model import created_us
from .spans import PageSpan, span_of

NON_TERMINAL = (AssetState.PENDING_UPLOAD, AssetState.PROCESSING, AssetState.PENDING_PAYMENT)
TERMINAL = (AssetState.READY, AssetState.FAILED)
RANK = {state: rank for rank, state in enumerate(STATE_FLOW)}
LOCATE_IN: dict[AssetState, tuple[AssetState, ...]] = {
    AssetState.PENDING_UPLOAD: STATE_FLOW[1:],
    AssetState.PROCESSING: STATE_FLOW[2:],
    AssetState.PENDING_PAYMENT: (AssetState.READY,),
}
"""Where an asset that left a list can be, in an order where every transition goes forward."""
LEFT = "~"
"""Prefix of a `known` state meaning: proven gone from that list, new place not yet found."""
LOW = -(2**62)
HIGH = 2**62
PHASES = ("reads", "checks")
STATE_VERSION = 2


class OutOfBudget(Exception):
    """The tick's time budget ran out; what was found so far is kept, the rest waits for the next tick."""


class UnreadableState(ValueError):
    """A stored watcher state that cannot be understood (the message says what was wrong)."""


@dataclass
class Owed:
    """A `created_at` interval [low_us, high_us) of one list still to read; silent ones never fire."""

    low_us: int
    high_us: int
    silent: bool

    def holds(self, moment: int) -> bool:
        """Whether `moment` is inside the interval."""
        return self.low_us <= moment < self.high_us


@dataclass
class WatchState:
    """What the watcher remembers of one scope between ticks (see the module docstring)."""

    watermark_us: int | None = None
    known: dict[str, tuple[str, int]] = field(default_factory=dict)
    recent: dict[str, tuple[str, int]] = field(default_factory=dict)
    owed: dict[str, list[Owed]] = field(default_factory=dict)
    resume: str = PHASES[0]
    suspect: dict[str, list[int]] = field(default_factory=dict)
    """Per non-terminal list, the `created_at` window (low, high) a cut-short bisection had narrowed to."""
    hints: dict[str, list[list[int]]] = field(default_factory=dict)
    """Per terminal list, up to 64 `[created_us, offset]` pairs from the last tick's probes."""
    rotation: dict[str, int] = field(default_factory=dict)
    """Per terminal list, which page of the overlap window the next tick verifies."""

    @property
    def started(self) -> bool:
        """Whether a first tick has taken the snapshot of the present."""
        return self.watermark_us is not None

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict (`from_json` reads it back)."""
        return {
            "v": STATE_VERSION,
            "watermark_us": self.watermark_us,
            "known": {key: [s, c] for key, (s, c) in self.known.items()},
            "recent": {key: [s, c] for key, (s, c) in self.recent.items()},
            "owed": {
                s: [[o.low_us, o.high_us, o.silent] for o in owed] for s, owed in self.owed.items() if owed
            },
            "resume": self.resume,
            "suspect": self.suspect,
            "hints": self.hints,
            "rotation": self.rotation,
        }

    @classmethod
    def from_json(cls, data: object) -> WatchState:
        """Parse what `to_json` wrote; raises `UnreadableState` naming what is wrong with anything else."""
        if not isinstance(data, dict):
            raise UnreadableState(f"a scope's state is a {type(data).__name__}, not an object")
        if data.get("v") != STATE_VERSION:
            raise UnreadableState(f"state version {data.get('v')!r}, expected {STATE_VERSION}")
        watermark = data.get("watermark_us")
        if watermark is not None and (not isinstance(watermark, int) or isinstance(watermark, bool)):
            raise UnreadableState(f"watermark_us {watermark!r} is not an integer")
        names = {s.value for s in STATE_FLOW}

        def entries(name: str, allowed: set[str]) -> dict[str, tuple[str, int]]:
            raw = data.get(name, {})
            if not isinstance(raw, dict):
                raise UnreadableState(f"{name} is not an object")
            out: dict[str, tuple[str, int]] = {}
            for key, value in raw.items():
                if (
                    not isinstance(value, list)
                    or len(value) != 2
                    or value[0] not in allowed
                    or not isinstance(value[1], int)
                ):
                    raise UnreadableState(f"{name}[{key!r}] = {value!r} is not [state, created_us]")
                out[str(key)] = (value[0], value[1])
            return out

        non_terminal = {s.value for s in NON_TERMINAL}
        known = entries("known", non_terminal | {LEFT + s for s in non_terminal})
        recent = entries("recent", names)
        owed_raw = data.get("owed", {})
        owed: dict[str, list[Owed]] = {}
        if not isinstance(owed_raw, dict):
            raise UnreadableState("owed is not an object")
        for state, intervals in owed_raw.items():
            if state not in names or not isinstance(intervals, list):
                raise UnreadableState(f"owed[{state!r}] is not a list of a known state")
            for interval in intervals:
                if (
                    not isinstance(interval, list)
                    or len(interval) != 3
                    or not all(isinstance(v, int) for v in interval[:2])
                    or not isinstance(interval[2], bool)
                ):
                    raise UnreadableState(f"owed[{state!r}] holds {interval!r}, not [low, high, silent]")
                owed.setdefault(state, []).append(Owed(interval[0], interval[1], interval[2]))
        resume = data.get("resume", PHASES[0])
        if resume not in PHASES:
            raise UnreadableState(f"resume {resume!r} is not one of {PHASES}")
        suspect = data.get("suspect", {})
        hints = data.get("hints", {})
        if not isinstance(suspect, dict) or not all(
            s in names and isinstance(w, list) and len(w) == 2 and all(isinstance(v, int) for v in w)
            for s, w in suspect.items()
        ):
            raise UnreadableState(f"suspect {suspect!r} is not {{state: [low_us, high_us]}}")
        if not isinstance(hints, dict) or not all(
            s in names
            and isinstance(points, list)
            and all(
                isinstance(p, list) and len(p) == 2 and all(isinstance(v, int) for v in p) for p in points
            )
            for s, points in hints.items()
        ):
            raise UnreadableState("hints is not {state: [[created_us, offset], ...]}")
        rotation = data.get("rotation", {})
        if not isinstance(rotation, dict) or not all(
            s in names and isinstance(v, int) and v >= 0 for s, v in rotation.items()
        ):
            raise UnreadableState(f"rotation {rotation!r} is not {{state: page}}")
        return cls(watermark, known, recent, owed, resume, suspect, hints, rotation)


@dataclass
class TickResult:
    """Assets that newly entered a watched state (oldest change first), the next state, and the cost."""

    entered: list[AssetSummary]
    state: WatchState
    requests: int
    complete: bool


def wall_clock_us() -> int:
    """The current UTC time in microseconds since the epoch (the default `now_us`)."""
    return created_us(datetime.now(UTC))


class _Beliefs:
    """`known` plus, per non-terminal list, the sorted `created_at` of the assets believed in it."""

    def __init__(self, known: dict[str, tuple[str, int]]) -> None:
        self.known = known
        self.order: dict[str, list[tuple[int, str]]] = {s.value: [] for s in NON_TERMINAL}
        for asset_id, (state, moment) in known.items():
            if state in self.order:
                self.order[state].append((moment, asset_id))
        for entries in self.order.values():
            entries.sort()

    def put(self, asset_id: str, state: str | None, moment: int) -> None:
        """Believe `asset_id` is in `state` (a non-terminal state, a LEFT one, or None: not tracked)."""
        old = self.known.get(asset_id)
        if old is not None and old[0] in self.order:
            entries = self.order[old[0]]
            position = bisect.bisect_left(entries, (old[1], asset_id))
            if position < len(entries) and entries[position] == (old[1], asset_id):
                del entries[position]
        if state is None:
            self.known.pop(asset_id, None)
            return
        self.known[asset_id] = (state, moment)
        if state in self.order:
            bisect.insort(self.order[state], (moment, asset_id))

    def count(self, state: AssetState) -> int:
        """How many assets are believed in a non-terminal list."""
        return len(self.order[state.value])

    def count_above(self, state: AssetState, moment: int) -> int:
        """How many assets believed in the list have `created_at` > `moment`."""
        entries = self.order[state.value]
        return len(entries) - bisect.bisect_right(entries, (moment, "\uffff"))

    def between(self, state: AssetState, low: float, high: float) -> list[str]:
        """Ids believed in the list with low < `created_at` < high."""
        entries = self.order[state.value]
        start = bisect.bisect_right(entries, (low, "\uffff")) if low != float("-inf") else 0
        stop = bisect.bisect_left(entries, (high, "")) if high != float("inf") else len(entries)
        return [asset_id for _, asset_id in entries[start:stop]]


@dataclass
class _Probe:
    offset: int
    first_us: int
    last_us: int
    size: int


class StateWatcher:
    """Finds the assets of one scope (a project, or the whole account) that newly entered watched states.

    `budget_seconds` bounds the tick as measured by `clock` (seconds, monotonic; injectable for tests);
    `now_us` gives the present (epoch microseconds) that caps the watermark. `project_ids` restricts what
    is reported (an account-wide scope watched for several projects); the memory keeps every project.
    """

    def __init__(
        self,
        client: RoughyClient,
        *,
        project_id: UUID | str | None,
        watched: Iterable[AssetState | str],
        overlap_seconds: float = 600.0,
        budget_seconds: float = 40.0,
        replay_since_us: int | None = None,
        project_ids: Iterable[str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        now_us: Callable[[], int] = wall_clock_us,
    ) -> None:
        self.client = client
        self.project_id = project_id
        self.watched = frozenset(AssetState(s) for s in watched)
        self.overlap_us = int(overlap_seconds * 1_000_000)
        self.clock = clock
        self.deadline = clock() + budget_seconds
        self.now_us = now_us
        self.replay_since_us = replay_since_us
        self.project_ids = frozenset(project_ids) if project_ids is not None else None
        self.requests = 0
        self._seq = 0
        self._spans: dict[AssetState, list[PageSpan]] = {s: [] for s in STATE_FLOW}
        self._probes: dict[AssetState, list[_Probe]] = {s: [] for s in STATE_FLOW}
        self._pages: dict[AssetState, dict[int, AssetPage]] = {s: {} for s in STATE_FLOW}
        self._heads: set[int] = set()  # ids of this tick's head intervals (their window is checked)
        self._totals: dict[AssetState, int] = {}
        self._seen_in: dict[tuple[str, AssetState], int] = {}  # (id, list) -> seq of the last sighting
        self._entered: dict[tuple[str, str], AssetSummary] = {}
        self._newest_us: int | None = None
        self._left_at: dict[str, int] = {}  # id -> seq of the page that proved it gone from its list
        self._deferred: list[AssetSummary] | None = None  # sightings held back until the first tick is set

    # -- one tick --------------------------------------------------------------------------------------------

    def tick(self, previous: WatchState | None) -> TickResult:
        """One evaluation: read what changed since `previous` (not modified), return what entered a state."""
        state = copy.deepcopy(previous) if previous is not None else WatchState()
        self.state = state
        self.beliefs = _Beliefs(state.known)
        self.first = not state.started
        self.horizon_us = (state.watermark_us or 0) - self.overlap_us if not self.first else None
        self._silent = {AssetState(s): [o for o in owed if o.silent] for s, owed in state.owed.items()}
        self._loud = {AssetState(s): [o for o in owed if not o.silent] for s, owed in state.owed.items()}
        complete = True
        start = PHASES.index(state.resume)
        order = PHASES[start:] + PHASES[:start]
        try:
            for phase in order:
                if phase == "reads":
                    self._reads()
                else:
                    self._checks()
            state.resume = PHASES[0]
        except OutOfBudget:
            complete = False
            state.resume = order[1]  # the phase that got no time, or only what was left: first next time
        self._settle()
        entered = sorted(self._entered.values(), key=lambda a: created_us(a.created_at))
        return TickResult(entered, state, self.requests, complete)

    def _reads(self) -> None:
        """Read what is owed, then the head of every list down to the horizon, in flow order."""
        state = self.state
        if self.first:
            self._deferred = []
            for list_state in STATE_FLOW:  # the first page of each list fixes "the present"
                self._page(list_state, 0)
            deferred, self._deferred = self._deferred, None
            present = self._newest_us if self._newest_us is not None else self.now_us()
            state.watermark_us = present
            for list_state in STATE_FLOW:
                owed = state.owed.setdefault(list_state.value, [])
                if list_state in NON_TERMINAL:
                    owed.append(Owed(LOW, HIGH, silent=True))
                    continue
                floor = present - self.overlap_us
                if self.replay_since_us is not None and list_state in self.watched:
                    owed.append(Owed(self.replay_since_us, HIGH, silent=False))
                    self._loud.setdefault(list_state, []).append(owed[-1])
                    if floor < self.replay_since_us:
                        owed.append(Owed(floor, self.replay_since_us, silent=True))
                else:
                    owed.append(Owed(floor, HIGH, silent=True))
            for list_state in STATE_FLOW:
                owed = state.owed[list_state.value]
                self._silent.setdefault(list_state, []).extend(o for o in owed if o.silent)
            self.first = False  # the snapshot is now owed: later phases treat the tick as a normal one
            self.horizon_us = present - self.overlap_us
            now = self.now_us()
            for item in deferred or ():  # judged now that the silent and replayed intervals are known
                self._sight(item, now)
        else:
            top = state.watermark_us
            assert top is not None and self.horizon_us is not None
            for list_state in STATE_FLOW:  # the head: what was created since the last tick's newest
                owed = state.owed.setdefault(list_state.value, [])
                if not any(o.high_us >= HIGH and o.low_us <= top for o in owed):
                    owed.insert(0, Owed(top, HIGH, silent=False))
                    self._heads.add(id(owed[0]))
        for list_state in STATE_FLOW:
            owed = state.owed[list_state.value]
            index = 0
            while index < len(owed):
                interval = owed[index]
                head = id(interval) in self._heads
                if not self._read_interval(list_state, interval):
                    index += 1
                    continue
                owed.pop(index)
                top = interval.low_us
                if head and list_state in TERMINAL and not self._window_unchanged(list_state, top):
                    assert self.horizon_us is not None
                    owed.insert(index, Owed(self.horizon_us, top, silent=False))

    def _read_interval(self, list_state: AssetState, interval: Owed) -> bool:
        """Read one owed interval newest first through the paging primitive; False when the walk could
        not be sure it skipped nothing (the interval stays owed). When the budget runs out, the interval
        is shrunk to what is unread and `OutOfBudget` propagates."""
        low, high = interval.low_us, interval.high_us
        offset = 0 if interval.high_us >= HIGH else self._start_of(list_state, interval.high_us)
        walk = ListWalk(
            lambda at, _limit: self._page(list_state, at),
            budget=RequestBudget(1 << 40),  # the tick's budget is time: `_page` raises OutOfBudget
            start=offset,
            stop_below_us=None if low <= LOW else low,
        )
        for read in walk:
            if read.items:  # progress kept if the budget runs out: ties at the oldest are read again
                interval.high_us = min(interval.high_us, created_us(read.items[-1].created_at) + 1)
        if not walk.result.sure:  # the list moved under the walk: read the interval again next tick
            interval.high_us = high
            return False
        silent = self._silent.get(list_state, [])
        if interval in silent:
            silent.remove(interval)
        if list_state in TERMINAL:
            self._forget_absent(list_state, low, high)
        return True

    def _forget_absent(self, list_state: AssetState, low: int, high: int) -> None:
        """Forget remembered terminal assets in [low, high) that a page bracketing them proved deleted."""
        spans = self._spans[list_state]
        for asset_id, (state, moment) in list(self.state.recent.items()):
            if (
                state == list_state.value
                and low <= moment < high
                and (asset_id, list_state) not in self._seen_in
                and any(span.brackets(moment) for span in spans)
            ):
                del self.state.recent[asset_id]

    def _window_unchanged(self, list_state: AssetState, top_us: int) -> bool:
        """Whether a terminal list still holds exactly the assets remembered in [horizon, top).

        The overlap window below the head is where an asset published late would appear. Instead of
        reading it every tick, one position is checked: with `a` assets at or above `top` (from the head
        just read) and `n` remembered in the window, the asset at `a + n - 1` must be in the window and
        the one at `a + n` below it. Any count change there (late arrival, deletion) reads the window.
        """
        horizon = self.horizon_us
        assert horizon is not None
        remembered = sum(
            1
            for state, moment in self.state.recent.values()
            if state == list_state.value and horizon <= moment < top_us
        )
        above = self._count_at_or_above(list_state, top_us)
        if above is None:
            return False
        total = self._totals[list_state]
        inside = self._created_at(list_state, above + remembered - 1) if remembered else None
        below = self._created_at(list_state, above + remembered) if above + remembered < total else None
        if (remembered and inside is None) or (above + remembered < total and below is None):
            self._page(list_state, max(0, above + remembered - 1))
            total = self._totals[list_state]
            inside = self._created_at(list_state, above + remembered - 1) if remembered else None
            below = self._created_at(list_state, above + remembered) if above + remembered < total else None
        if remembered and (inside is None or inside < horizon):
            return False
        if not (above + remembered >= total or (below is not None and below < horizon)):
            return False
        self._rotate(list_state, above, remembered)
        return True

    def _rotate(self, list_state: AssetState, above: int, remembered: int) -> None:
        """Verify one more page of the window each tick, in turn: a late asset and a deletion in the same
        window balance the count, but not the page that holds them (found within a few ticks)."""
        pages = -(-remembered // (MAX_PAGE_SIZE - 1))
        if pages <= 1:
            return  # the window is on the pages already read
        turn = self.state.rotation.get(list_state.value, 0) % pages
        self.state.rotation[list_state.value] = turn + 1
        offset = above + turn * (MAX_PAGE_SIZE - 1)
        if offset in self._pages[list_state]:
            return
        page = self._page(list_state, offset)
        span = self._spans[list_state][-1] if page.items else None
        if span is not None:
            self._forget_absent(list_state, int(max(span.low_us, LOW)), int(min(span.high_us, HIGH)))

    def _count_at_or_above(self, list_state: AssetState, moment: int) -> int | None:
        """How many assets of the list have `created_at` >= `moment`, from this tick's head pages."""
        position = 0
        for offset, page in sorted(self._pages[list_state].items()):
            if offset > position:
                return None  # a gap: not read this tick
            for item in page.items[position - offset :]:
                if created_us(item.created_at) < moment:
                    return position
                position += 1
            if position >= page.total:
                return position
        return None

    def _created_at(self, list_state: AssetState, position: int) -> int | None:
        """The `created_at` of the asset at `position` if a page read this tick holds it."""
        for offset, page in self._pages[list_state].items():
            if offset <= position < offset + len(page.items):
                return created_us(page.items[position - offset].created_at)
        return None

    def _start_of(self, list_state: AssetState, high_us: int) -> int:
        """The offset of a page whose first item has `created_at` >= `high_us` (or 0)."""
        for _ in range(24):
            offset = self._seek_offset(list_state, high_us)
            if offset == 0:
                return 0
            page = self._page(list_state, offset)
            if page.items and created_us(page.items[0].created_at) >= high_us:
                return offset
        return 0

    def _checks(self) -> None:
        """Per non-terminal list in flow order: count check and bisection, then locate what left it."""
        for list_state in NON_TERMINAL:
            # a silent interval still owed means the snapshot is incomplete; unread head intervals do
            # not matter: the count check finds their assets too
            if not any(o.silent for o in self.state.owed.get(list_state.value, ())):
                self._check(list_state)
            self._locate_left(list_state)

    # -- count check and bisection --------------------------------------------------------------------------

    def _check(self, list_state: AssetState) -> None:
        """Find the assets that left (or unexpectedly joined) a non-terminal list whose count disagrees.

        Each probe resolves its own page (believed assets missing from it have left; unknown ones joined),
        then compares the remote count of assets created after a `created_at` on the page with the
        believed count: a difference means a change above the page, none means one below. The window
        narrowed so far is kept in `suspect` when the budget runs out, so the next tick goes on from it.
        """
        beliefs = self.beliefs
        if list_state not in self._totals:
            self._page(list_state, 0)
        window = self.state.suspect.pop(list_state.value, [LOW, HIGH])
        restarts, last_believed = 0, -1
        low, high = self._window_offsets(list_state, window)
        try:
            for _ in range(256):
                total = self._totals[list_state]
                if total == beliefs.count(list_state):
                    return
                high = min(high, total)
                if high <= low:  # an upper bound made stale by what later probes resolved: look below
                    high = total
                    if high <= low:  # nothing below either: the remote moved under the search
                        believed = beliefs.count(list_state)
                        restarts = restarts + 1 if believed == last_believed else 0
                        if restarts > 1:
                            return  # no progress: left for the next tick, whose counts still disagree
                        last_believed = believed
                        window = [LOW, HIGH]
                        low, high = 0, total
                offset = max(low, min((low + high) // 2 - MAX_PAGE_SIZE // 2, max(0, total - 1)))
                page = self._page(list_state, offset)
                boundary = _strict_boundary(page)
                if boundary is None:  # past the end, or one `created_at` on the whole page
                    if page.items:
                        low = offset + len(page.items) - 1
                    else:
                        high = min(high, offset)
                    continue
                index, moment = boundary
                # the next probe overlaps this page by one item, so that the two spans join: an asset
                # between the last item of one page and the first of the next is bracketed by neither
                if offset + index + 1 != beliefs.count_above(list_state, moment):
                    high = offset + 1
                    window[0] = max(window[0], moment)
                else:
                    low = offset + len(page.items) - 1
                    window[1] = min(window[1], created_us(page.items[-1].created_at) + 1)
        except OutOfBudget:
            self.state.suspect[list_state.value] = window
            raise

    def _window_offsets(self, list_state: AssetState, window: list[int]) -> tuple[int, int]:
        """Offsets between which a `created_at` window lies, from the beliefs (with a margin for drift)."""
        total = self._totals[list_state]
        if window == [LOW, HIGH]:
            return 0, total
        slack = abs(total - self.beliefs.count(list_state)) + MAX_PAGE_SIZE // 2
        low = max(0, self.beliefs.count_above(list_state, window[1]) - slack)
        high = min(total, self.beliefs.count_above(list_state, window[0]) + slack)
        return low, high

    # -- locating assets that left a list -------------------------------------------------------------------

    def _locate_left(self, list_state: AssetState) -> None:
        """Find the new place of every asset proven gone from `list_state` (or prove it deleted)."""
        mark = LEFT + list_state.value
        left = sorted(
            ((moment, asset_id) for asset_id, (s, moment) in self.beliefs.known.items() if s == mark),
            reverse=True,
        )
        for moment, asset_id in left:
            proof: int | None = self._left_at.get(asset_id, -1)
            for later in LOCATE_IN[list_state]:
                if self.beliefs.known.get(asset_id, ("",))[0] != mark:
                    break  # seen somewhere further along
                if (asset_id, later) in self._seen_in:
                    break
                proof = self._absent_since(later, moment, proof if proof is not None else -1)
                if proof is None:
                    break  # ties straddle pages: cannot prove this tick, try again next tick
            else:
                if self.beliefs.known.get(asset_id, ("",))[0] == mark:
                    self.beliefs.put(asset_id, None, moment)  # in no later list: deleted

    def _absent_since(self, list_state: AssetState, moment: int, after_seq: int) -> int | None:
        """Read `list_state` where `moment` is; the seq of a page proving the asset is not there, or None."""
        for _ in range(24):
            for span in reversed(self._spans[list_state]):
                if span.seq > after_seq and span.brackets(moment):
                    return span.seq
            self._page(list_state, self._seek_offset(list_state, moment))
        return None

    def _seek_offset(self, list_state: AssetState, moment: int) -> int:
        """The offset of a page likely to bracket `moment`: bounded by this tick's probes of the list,
        aimed by the beliefs (non-terminal lists) or by earlier ticks' probes (`hints`)."""
        total = self._totals.get(list_state)
        estimate = self._estimate(list_state, moment)
        if total is None:
            return max(0, estimate - MAX_PAGE_SIZE // 2) if estimate is not None else 0
        low, high = 0, total
        tried: set[int] = set()
        for probe in self._probes[list_state]:
            tried.add(probe.offset)
            if probe.last_us > moment:
                low = max(low, probe.offset + probe.size)
            elif probe.first_us < moment:
                high = min(high, probe.offset)
            elif probe.last_us == moment:
                low = max(low, probe.offset + probe.size - 1)
        if high <= low:
            offset = max(0, low - MAX_PAGE_SIZE // 2)
        elif high - low <= MAX_PAGE_SIZE:
            offset = max(0, low - (MAX_PAGE_SIZE - (high - low)) // 2)
        elif estimate is not None and low <= estimate <= high and max(low, estimate - 50) not in tried:
            offset = max(low, estimate - MAX_PAGE_SIZE // 2)
        else:
            offset = (low + high) // 2 - MAX_PAGE_SIZE // 2
        while offset in tried and offset > 0:
            offset = max(0, offset - MAX_PAGE_SIZE // 4)
        return offset

    def _estimate(self, list_state: AssetState, moment: int) -> int | None:
        """How many assets of the list were probably created after `moment` (None: no idea)."""
        if list_state in NON_TERMINAL:
            return self.beliefs.count_above(list_state, moment)
        points = self._samples(list_state)
        above = [(c, o) for c, o in points if c > moment]
        below = [(c, o) for c, o in points if c <= moment]
        if not above and not below:
            return None
        total = self._totals.get(list_state)
        if not below:  # bisect between the lowest sample above and the end, where the last tick stopped
            return None if total is None else (min(above)[1] + 1 + total) // 2
        if not above:
            return max(below)[1] // 2
        c1, o1 = min(above)
        c2, o2 = max(below)
        return o1 + round((o2 - o1) * (c1 - moment) / max(1, c1 - c2))

    def _samples(self, list_state: AssetState) -> list[tuple[int, int]]:
        """(created_us, offset) pairs from this tick's probes, then from the last tick's (`hints`).

        Offsets drift between ticks by what changed, so the last tick's pairs only aim the first probes;
        this tick's probes bound the search.
        """
        points = [(p.first_us, p.offset) for p in self._probes[list_state]]
        points += [(p.last_us, p.offset + p.size - 1) for p in self._probes[list_state]]
        mine = {c for c, _ in points}
        points += [(c, o) for c, o in self.state.hints.get(list_state.value, ()) if c not in mine]
        return points

    # -- requests and sightings ------------------------------------------------------------------------------

    def _page(self, list_state: AssetState, offset: int) -> AssetPage:
        if self.clock() > self.deadline:
            raise OutOfBudget
        self.requests += 1
        try:
            page = self.client.list_assets(
                project_id=self.project_id, state=list_state, limit=MAX_PAGE_SIZE, offset=offset
            )
        except RoughyAPIError as error:
            if error.out_of_time:  # the client's deadline (the tick's) ran out: keep what was found
                raise OutOfBudget from error
            raise
        self._seq += 1
        seq = self._seq
        self._totals[list_state] = page.total
        self._pages[list_state][offset] = page
        now = self.now_us()
        for item in page.items:
            self._seen_in[(item.id, list_state)] = seq
            if self._deferred is not None:
                self._deferred.append(item)
                if created_us(item.created_at) <= now:
                    self._newest_us = max(self._newest_us or LOW, created_us(item.created_at))
            else:
                self._sight(item, now)
        span = span_of(page, list_state, seq, offset)
        if page.items:
            self._probes[list_state].append(
                _Probe(
                    offset,
                    created_us(page.items[0].created_at),
                    created_us(page.items[-1].created_at),
                    len(page.items),
                )
            )
        if span is not None:
            self._spans[list_state].append(span)
            if list_state in NON_TERMINAL:
                self._departures(list_state, span, page)
        return page

    def _departures(self, list_state: AssetState, span: PageSpan, page: AssetPage) -> None:
        """Assets believed in the list within the page's span but not on it: proven gone at this seq."""
        on_page = {item.id for item in page.items}
        for asset_id in self.beliefs.between(list_state, span.low_us, span.high_us):
            if asset_id not in on_page:
                moment = self.beliefs.known[asset_id][1]
                self.beliefs.put(asset_id, LEFT + list_state.value, moment)
                self._left_at[asset_id] = span.seq

    def _sight(self, asset: AssetSummary, now: int) -> None:
        """Record one sighting: update the beliefs and report a watched state newly entered."""
        asset_id, state = asset.id, asset.state
        moment = created_us(asset.created_at)
        if moment <= now and (self._newest_us is None or moment > self._newest_us):
            self._newest_us = moment
        before = self.beliefs.known.get(asset_id) or self.state.recent.get(asset_id)
        if before is not None:
            old = AssetState(before[0].removeprefix(LEFT))
            if RANK[state] < RANK[old] or (state is old and not before[0].startswith(LEFT)):
                if state.is_terminal:
                    self.state.recent[asset_id] = (state.value, moment)
                return  # nothing new (or a sighting older than what is known)
            entered = state is not old
        else:
            entered = self._fresh(state, moment)
        if state.is_terminal:
            self.beliefs.put(asset_id, None, moment)
            self.state.recent[asset_id] = (state.value, moment)
        else:
            self.beliefs.put(asset_id, state.value, moment)
        reported = self.project_ids is None or asset.project_id in self.project_ids
        if entered and state in self.watched and reported:
            self._entered[(asset_id, state.value)] = asset

    def _fresh(self, list_state: AssetState, moment: int) -> bool:
        """Whether an asset never seen before, created at `moment`, is a change to report."""
        if any(o.holds(moment) for o in self._silent.get(list_state, ())):
            return False
        if self.horizon_us is not None and moment >= self.horizon_us:
            return True
        return any(o.holds(moment) for o in self._loud.get(list_state, ()))

    # -- end of tick -----------------------------------------------------------------------------------------

    def _settle(self) -> None:
        """Move the watermark (never into the future) and forget terminal sightings below every floor."""
        state = self.state
        if self._newest_us is not None and state.watermark_us is not None:
            state.watermark_us = max(state.watermark_us, self._newest_us)
        if state.watermark_us is None:
            return
        floor = state.watermark_us - self.overlap_us
        for list_state in TERMINAL:
            for interval in state.owed.get(list_state.value, ()):
                floor = min(floor, interval.low_us)
        state.recent = {k: v for k, v in state.recent.items() if v[1] >= floor}
        for list_state in TERMINAL:
            total = self._totals.get(list_state)
            if total is None or not self._probes[list_state]:
                continue
            mine = sorted({(p.first_us, p.offset) for p in self._probes[list_state]})
            step = max(1, len(mine) // 64)
            state.hints[list_state.value] = [[c, o] for c, o in mine[::step][:64]]
        state.owed = {s: owed for s, owed in state.owed.items() if owed}


def _int_pair(value: object) -> bool:
    return isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) for v in value)


def _strict_boundary(page: AssetPage) -> tuple[int, int] | None:
    """(i, t): the first item i whose successor is strictly older, and that successor's `created_at`."""
    items = page.items
    for index in range(len(items) - 1):
        later = created_us(items[index + 1].created_at)
        if created_us(items[index].created_at) > later:
            return index, later
    return None


def watched_states(states: Iterable[str]) -> list[AssetState]:
    """States as `AssetState`s, refusing an unknown name with the list of the valid ones."""
    out: list[AssetState] = []
    for state in states:
        try:
            out.append(AssetState(state))
        except ValueError:
            valid = ", ".join(s.value for s in STATE_FLOW)
            raise ValueError(f"unknown asset state {state!r}: use one of {valid}") from None
    return out

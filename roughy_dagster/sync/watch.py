"""Watch the listing for assets that newly enter given states, with a small memory and few requests a tick.

The state sensor's engine, framework-free and without DuckDB (a sensor must never open the file a run
may be writing). Between ticks it remembers only the non-terminal assets (they are the only ones that can
still change state) and the recent heads of the terminal lists. A quiet tick costs one request per state
list; an asset that moves on is found where its `created_at` says it must now be.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from uuid import UUID

from ..client import STATE_FLOW, AssetPage, AssetState, AssetSummary, RoughyClient
from ..client.client import MAX_PAGE_SIZE
from .model import created_us
from .spans import PageSpan, bracketed, span_of

WHOLE_LISTS = (AssetState.PENDING_UPLOAD, AssetState.PROCESSING)
LATER_STATES = {
    AssetState.PENDING_UPLOAD: STATE_FLOW[1:],
    AssetState.PROCESSING: STATE_FLOW[2:],
    AssetState.PENDING_PAYMENT: STATE_FLOW[3:],
}


class OutOfBudget(Exception):
    """The tick's time budget ran out; what was found so far is kept, the rest waits for the next tick."""


@dataclass
class WatchState:
    """What the watcher remembers between ticks; serialized as the sensor cursor."""

    watermark_us: int | None = None
    pending: dict[str, tuple[str, int]] = field(default_factory=dict)
    """Non-terminal assets: id -> (state, created_us)."""
    recent: dict[str, tuple[str, int]] = field(default_factory=dict)
    """Assets already seen in a head-read list whose `created_at` is within the overlap: id -> (state, us)."""

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict."""
        return {"watermark_us": self.watermark_us, "pending": self.pending, "recent": self.recent}

    @classmethod
    def from_json(cls, data: object) -> WatchState:
        """Parse what `to_json` wrote; anything else starts from the present."""
        if not isinstance(data, dict):
            return cls()
        try:
            return cls(
                watermark_us=data.get("watermark_us"),
                pending={k: (str(v[0]), int(v[1])) for k, v in dict(data.get("pending", {})).items()},
                recent={k: (str(v[0]), int(v[1])) for k, v in dict(data.get("recent", {})).items()},
            )
        except (TypeError, ValueError, IndexError):
            return cls()


@dataclass
class TickResult:
    """Assets that newly entered a watched state (oldest change first), the next state, and the cost."""

    entered: list[AssetSummary]
    state: WatchState
    requests: int
    complete: bool


class StateWatcher:
    """Finds the assets of one scope (a project, or the whole account) that newly entered watched states."""

    def __init__(
        self,
        client: RoughyClient,
        *,
        project_id: UUID | str | None,
        watched: Iterable[AssetState | str],
        overlap_seconds: float = 600.0,
        budget_seconds: float = 40.0,
        replay_since_us: int | None = None,
    ) -> None:
        self.client = client
        self.project_id = project_id
        self.watched = frozenset(AssetState(s) for s in watched)
        self.overlap_us = int(overlap_seconds * 1_000_000)
        self.deadline = time.monotonic() + budget_seconds
        self.replay_since_us = replay_since_us
        self.requests = 0
        self._spans: dict[AssetState, list[PageSpan]] = {s: [] for s in STATE_FLOW}
        self._seen: dict[str, AssetSummary] = {}  # every asset on every page read this tick
        self._last_total = 0

    def tick(self, previous: WatchState) -> TickResult:
        """One evaluation: read the lists, compare with `previous`, return what entered a watched state."""
        entered: dict[str, AssetSummary] = {}
        state = WatchState(previous.watermark_us, dict(previous.pending), dict(previous.recent))
        try:
            self._evaluate(previous, state, entered)
            complete = True
        except OutOfBudget:
            complete = False
            state.watermark_us = previous.watermark_us
        return TickResult(
            sorted(entered.values(), key=lambda a: created_us(a.created_at)), state, self.requests, complete
        )

    # -- one tick --------------------------------------------------------------------------------------------

    def _evaluate(self, previous: WatchState, state: WatchState, entered: dict[str, AssetSummary]) -> None:
        first_tick = previous.watermark_us is None
        if first_tick:  # start from the present: one page of each head, or down to the replay horizon
            stop_below: int | None = self.replay_since_us if self.replay_since_us is not None else 2**62
        else:
            stop_below = (previous.watermark_us or 0) - self.overlap_us
        seen = self._seen
        spans = self._spans

        def read(list_state: AssetState, stop: int | None) -> None:
            offset = 0
            while True:
                page = self._page(list_state, offset)
                offset += len(page.items)
                if not page.items or offset >= page.total:
                    return
                if stop is not None and created_us(page.items[-1].created_at) < stop:
                    return

        for list_state in WHOLE_LISTS:
            read(list_state, None)
        pp_stop = None if first_tick else stop_below
        read(AssetState.PENDING_PAYMENT, pp_stop)
        pp_total = self._last_total
        known_pp = {i for i, (s, _) in previous.pending.items() if s == AssetState.PENDING_PAYMENT.value}
        known_pp |= {i for i, a in seen.items() if a.state is AssetState.PENDING_PAYMENT}
        left = self._leavers(previous, seen)
        if not first_tick and (
            len(known_pp - set(left)) != pp_total
            or any(
                s != AssetState.PENDING_PAYMENT.value and not bracketed(spans[AssetState.PENDING_PAYMENT], c)
                for s, c in left.values()
            )
        ):
            read(AssetState.PENDING_PAYMENT, None)  # the unpaid list changed where its head does not show
            left = self._leavers(previous, seen)
        for list_state in (AssetState.READY, AssetState.FAILED):
            read(list_state, stop_below)
        for asset_id, (old_state, moment) in list(left.items()):
            if asset_id in seen:
                continue
            for later in LATER_STATES[AssetState(old_state)]:
                if later is AssetState.PENDING_PAYMENT or bracketed(spans[later], moment):
                    continue
                self._locate(later, moment)
                if asset_id in seen:
                    break
        newest = max([previous.watermark_us or 0, *(created_us(a.created_at) for a in seen.values())])
        self._settle(previous, state, seen, entered, first_tick, newest)

    def _leavers(self, previous: WatchState, seen: dict[str, AssetSummary]) -> dict[str, tuple[str, int]]:
        """Remembered non-terminal assets not seen in their list although a page covered their place."""
        return {
            asset_id: (old_state, moment)
            for asset_id, (old_state, moment) in previous.pending.items()
            if asset_id not in seen and bracketed(self._spans[AssetState(old_state)], moment)
        }

    def _settle(
        self,
        previous: WatchState,
        state: WatchState,
        seen: dict[str, AssetSummary],
        entered: dict[str, AssetSummary],
        first_tick: bool,
        newest: int,
    ) -> None:
        """Decide which sightings are entries into a watched state and write the next state."""
        horizon_before = (previous.watermark_us or 0) - self.overlap_us
        for asset_id, asset in seen.items():
            before = previous.pending.get(asset_id) or previous.recent.get(asset_id)
            moment = created_us(asset.created_at)
            if before is not None:
                entered_now = before[0] != asset.state.value
            else:
                # Unknown: new if created since the last look (older ones were seen before, or are history).
                entered_now = (
                    moment >= horizon_before
                    if not first_tick
                    else (self.replay_since_us is not None and moment >= self.replay_since_us)
                )
            if asset.state in self.watched and entered_now:
                entered[asset_id] = asset
            if asset.state.is_terminal or asset.state is AssetState.PENDING_PAYMENT:
                state.recent[asset_id] = (asset.state.value, moment)
            if asset.state.is_terminal:
                state.pending.pop(asset_id, None)
            else:
                state.pending[asset_id] = (asset.state.value, moment)
        for asset_id, (old_state, moment) in previous.pending.items():
            if asset_id not in seen and self._proven_gone(old_state, moment):
                state.pending.pop(asset_id, None)
        state.watermark_us = newest
        horizon = newest - self.overlap_us
        state.recent = {k: v for k, v in state.recent.items() if v[1] >= horizon}

    def _proven_gone(self, old_state: str, moment: int) -> bool:
        """Whether pages covering the asset's place showed it in none of the states it could be in."""
        reachable = [AssetState(old_state), *LATER_STATES.get(AssetState(old_state), ())]
        return all(bracketed(self._spans[s], moment) for s in reachable)

    # -- requests ------------------------------------------------------------------------------------------

    def _page(self, list_state: AssetState, offset: int, limit: int = MAX_PAGE_SIZE) -> AssetPage:
        if time.monotonic() > self.deadline:
            raise OutOfBudget
        self.requests += 1
        page = self.client.list_assets(
            project_id=self.project_id, state=list_state, limit=limit, offset=offset
        )
        self._last_total = page.total
        span = span_of(page, list_state, self.requests, offset)
        if span is not None:
            self._spans[list_state].append(span)
        for item in page.items:
            self._seen[item.id] = _later(self._seen.get(item.id), item)
        return page

    def _locate(self, list_state: AssetState, moment: int) -> AssetPage:
        """Binary-search a list by offset for the page whose `created_at` range holds `moment`."""
        low, high = 0, None
        offset = 0
        page = self._page(list_state, 0)
        while page.items and not bracketed(self._spans[list_state][-1:], moment):
            high = page.total if high is None else high
            if moment >= created_us(page.items[0].created_at):
                high = offset
            else:
                low = offset + len(page.items) - 1
            if high - low <= 1:
                break
            offset = max(low, (low + high) // 2 - MAX_PAGE_SIZE // 2)
            page = self._page(list_state, offset)
        return page


def _later(known: AssetSummary | None, item: AssetSummary) -> AssetSummary:
    """Of two sightings of one asset, the one further along the flow."""
    if known is None or STATE_FLOW.index(item.state) >= STATE_FLOW.index(known.state):
        return item
    return known


def dumps(states: dict[str, WatchState]) -> str:
    """The cursor of a watcher over several scopes."""
    return json.dumps({scope: s.to_json() for scope, s in states.items()}, separators=(",", ":"))


def loads(raw: str | None) -> dict[str, WatchState]:
    """Parse `dumps`; a missing or unreadable cursor starts from the present."""
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        return {}
    return {scope: WatchState.from_json(s) for scope, s in data.items()} if isinstance(data, dict) else {}

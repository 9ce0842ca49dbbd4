"""The incremental sync plan for one project, built on what the API guarantees.

The listing has no `updated_at` and pages by offset, newest first. Three facts make an incremental sync
possible: states only move forward, `ready`/`failed` are terminal, and `total` is exact per filter.

1. Read `pending_upload` and `processing` whole: their assets' fields still change (type, size, duration).
2. Read the heads of `pending_payment`, `ready` and `failed` (whose fields no longer change) down to the
   stored watermark minus an overlap: assets new to us that are already that far along are there.
3. A stored asset missing from where it should be (a fully read list, or a page that covers its
   `created_at`) moved on or was deleted: read the page of each later state where its `created_at` falls
   (predicted from the stored rows). Seen there: it moved. Absent, in flow order, from every state it could
   have reached: it was deleted (see `Evidence`).
4. Compare each state's `total` with the stored count after all that. A mismatch means assets left a
   head-read list (deleted, or paid and `ready`) or were missed: find them by bisecting that list
   against the stored rows, then resolve them as in 3.

Every page is a consistent snapshot of one list, so "asset X is not in list S at request n" is proven
when a page of S strictly brackets X's `created_at` and does not hold X. Deletions are only ever
concluded from such proofs, which stay valid however the remote changes while the sync pages.
"""

from __future__ import annotations

import bisect
import itertools
import logging
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import UTC, datetime
from operator import attrgetter

from ..client import STATE_FLOW, AssetPage, AssetState, AssetSummary, RoughyClient, RoughyProtocolError
from ..client.client import MAX_PAGE_SIZE
from ..client.models import STATE_RANK
from .model import (
    REACHABLE,
    Deletion,
    LocalAsset,
    LocalSnapshot,
    RemoteObservation,
    Sighting,
    created_us,
)
from .rows import RowBuffer
from .spans import INFINITY, PageSpan, span_of

logger = logging.getLogger("roughy_dagster.sync")

FULLY_READ = (AssetState.PENDING_UPLOAD, AssetState.PROCESSING)
HEAD_READ = (AssetState.PENDING_PAYMENT, AssetState.READY, AssetState.FAILED)
MAX_LOCATE_STEPS = 24
MAX_BISECT_ROUNDS = 3
MAX_STEP_BACKS = 20


class Evidence:
    """Page spans by state: the proofs of absence a sync has gathered so far."""

    def __init__(self) -> None:
        self.spans: dict[AssetState, list[PageSpan]] = {state: [] for state in STATE_FLOW}

    def add(self, span: PageSpan) -> None:
        """Record a page's span."""
        self.spans[span.state].append(span)

    def absent_since(self, state: AssetState, moment_us: int, after_seq: int) -> int | None:
        """The first request at or after `after_seq` proving an unseen asset absent from `state`."""
        found = [s.seq for s in self.spans[state] if s.seq >= after_seq and s.brackets(moment_us)]
        return min(found) if found else None


class SyncEngine:
    """Works out, with as few requests as it can, how one project's listing differs from the stored rows."""

    def __init__(
        self,
        client: RoughyClient,
        project_id: str,
        local: LocalSnapshot,
        *,
        full_refresh: bool = False,
        overlap_seconds: float = 600.0,
        max_extra_requests: int = 500,
        concurrency: int = 1,
    ) -> None:
        self.client = client
        self.concurrency = concurrency
        self.project_id = project_id
        self.local = local
        self.full_refresh = full_refresh or local.watermark_us is None
        self.overlap_us = int(overlap_seconds * 1_000_000)
        self.max_extra_requests = max_extra_requests
        self.evidence = Evidence()
        self.sightings: dict[str, Sighting] = {}
        self.deletions: dict[str, Deletion] = {}
        self.totals: dict[AssetState, int] = {}
        self._total_seq: dict[AssetState, int] = {}
        self._seq = 0
        self._extra_requests = 0
        self._suspects: set[str] = set()  # stored assets a page showed missing from their stored state
        self._rows = RowBuffer()
        self._superseded_rows: list[int] = []  # rows of sightings another sighting of the same asset replaced
        self._changes = 0  # bumped whenever what the sync believes changes; keys the cache below
        self._believed_cache: dict[AssetState, tuple[int, list[tuple[int, str]]]] = {}
        self._believed_counts_cache: tuple[int, dict[AssetState, int]] | None = None
        self._local_sorted: dict[AssetState, list[tuple[int, str]]] = {
            state: sorted((a.created_us, a.id) for a in local.live.values() if a.state is state)
            for state in STATE_FLOW
        }

    # -- the plan ----------------------------------------------------------------------------------------

    def run(self) -> RemoteObservation:
        """Read the listing as the plan says and return what was seen and what is proven deleted."""
        try:
            return self._run()
        finally:
            self._rows.close()

    def _run(self) -> RemoteObservation:
        started = datetime.now(UTC)
        stats_before = (self.client.stats.requests, self.client.stats.pages, self.client.stats.retries)
        for state in FULLY_READ:
            self._read_list(state, stop_below_us=None)
        stop_below = None if self.full_refresh else (self.local.watermark_us or 0) - self.overlap_us
        for state in HEAD_READ:
            self._read_list(state, stop_below_us=stop_below)
        unresolved = self._resolve_moved_assets()
        for _ in range(MAX_BISECT_ROUNDS):
            mismatched = self._mismatched_states()
            if not mismatched or self._budget_spent():
                break
            for state in mismatched:
                self._bisect(state)
            unresolved = self._resolve_moved_assets()
        verified = not self._mismatched_states() and not unresolved
        if not verified:
            logger.warning(
                "project %s: the listing could not be fully reconciled in this sync (remote totals %s, "
                "stored counts %s, %d unresolved); the next sync continues from here",
                self.project_id,
                {s.value: self.totals[s] for s in STATE_FLOW},
                {s.value: n for s, n in self._believed_counts().items()},
                len(unresolved),
            )
        stats = self.client.stats
        return RemoteObservation(
            project_id=self.project_id,
            mode="full" if self.full_refresh else "incremental",
            started_at=started,
            finished_at=datetime.now(UTC),
            sightings=self.sightings,
            rows=self._rows.table(superseded=self._superseded_rows),
            deletions=self.deletions,
            remote_totals=dict(self.totals),
            unresolved=unresolved,
            verified=verified,
            requests=stats.requests - stats_before[0],
            pages=stats.pages - stats_before[1],
            retries=stats.retries - stats_before[2],
        )

    def _read_list(self, state: AssetState, *, stop_below_us: int | None) -> None:
        """Page through one list from the top, to its end or until past `stop_below_us`, skipping nothing.

        Consecutive pages overlap by one asset. When the asset that ended a page is not on the next one
        (and that page does not start above it), assets above were deleted meanwhile and the list moved up
        under the walk: it steps back until it finds its place again. Without this, a deletion during a
        walk both hides one asset (skipped at a page boundary) and leaves the deleted one stored, and the
        two cancel out in the count check.
        """
        if stop_below_us is None and self.concurrency > 1 and self._read_concurrently(state):
            return
        page = self._fetch(state, 0)
        offset = 0
        while page.items and offset + len(page.items) < page.total:
            if stop_below_us is not None and created_us(page.items[-1].created_at) < stop_below_us:
                return
            last = page.items[-1]
            offset += len(page.items) - 1
            page = self._fetch(state, offset)
            for _ in range(MAX_STEP_BACKS):
                if _continues(page, last) or offset == 0:
                    break
                offset = max(0, offset - (MAX_PAGE_SIZE - 1))
                page = self._fetch(state, offset)

    def _read_concurrently(self, state: AssetState) -> bool:
        """Read a whole list with `concurrency` requests in flight; False when it moved (read it again).

        Pages are recorded one at a time and the next list is not started before this one is done, so the
        ordering of proofs across states (see `Evidence`) holds as for a sequential read.
        """
        first = self._fetch(state, 0)
        if not first.items or len(first.items) >= first.total:
            return True
        step = MAX_PAGE_SIZE - 1
        offsets = range(len(first.items) - 1, first.total, step)
        pages: dict[int, AssetPage] = {0: first}
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="roughy-page") as pool:
            futures = {pool.submit(self._request, state, offset, MAX_PAGE_SIZE): offset for offset in offsets}
            try:
                for future in as_completed(futures):
                    pages[futures[future]] = self._record(future.result(), state, futures[future])
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
        ordered = [pages[offset] for offset in sorted(pages)]
        return all(
            before.items and _continues(after, before.items[-1])
            for before, after in itertools.pairwise(ordered)
        )

    # -- one request ---------------------------------------------------------------------------------------

    def _fetch(self, state: AssetState, offset: int, limit: int = MAX_PAGE_SIZE) -> AssetPage:
        """Fetch one page and record what it proves."""
        return self._record(self._request(state, offset, limit), state, offset)

    def _request(self, state: AssetState, offset: int, limit: int) -> AssetPage:
        """One listing request of this project (safe to call from several threads)."""
        page = self.client.list_assets(project_id=self.project_id, state=state, limit=limit, offset=offset)
        _check_page(page, self.project_id, state)
        return page

    def _record(self, page: AssetPage, state: AssetState, offset: int) -> AssetPage:
        """Record what a page proves: sightings, its span, and stored assets missing from it."""
        self._seq += 1
        seq = self._seq
        observed_at = datetime.now(UTC)
        if seq >= self._total_seq.get(state, 0):
            self.totals[state], self._total_seq[state] = page.total, seq
        self._sight_page(page.items, state, seq, self._rows.add_page(page.items, observed_at))
        span = span_of(page, state, seq, offset)
        if span is not None:
            self.evidence.add(span)
            if self._local_sorted[state]:
                self._note_missing(span, set(map(_ID_OF, page.items)))
        return page

    def _sight_page(self, items: list[AssetSummary], state: AssetState, seq: int, first_row: int) -> None:
        """Keep, per asset, its most advanced state seen (the latest sighting among equals); the rows of
        sightings that lose are marked superseded, so they are not written.

        Every asset of the page is recorded in one C-level `update` (a first load runs this for each of
        its assets); only the few already sighted (the asset each page overlaps with the one before, or a
        re-read) are then compared one by one.
        """
        sightings, superseded = self.sightings, self._superseded_rows
        ids = list(map(_ID_OF, items))
        earlier = {asset_id: sightings[asset_id] for asset_id in sightings.keys() & ids}
        sightings.update(
            zip(
                ids,
                map(
                    Sighting,
                    ids,
                    itertools.repeat(state),
                    map(_CREATED_AT_OF, items),
                    itertools.repeat(seq),
                    itertools.count(first_row),
                ),
                strict=True,
            )
        )
        changes = len(ids) - len(earlier)
        rank = STATE_RANK[state]
        for asset_id, known in earlier.items():
            if rank < STATE_RANK[known.state]:  # seen further along already: this page's row loses
                superseded.append(sightings[asset_id].row)
                sightings[asset_id] = known
            else:
                changes += known.state is not state
                superseded.append(known.row)
        self._changes += changes
        if self.deletions:
            for asset_id in self.deletions.keys() & ids:
                del self.deletions[asset_id]
                self._changes += 1

    def _note_missing(self, span: PageSpan, on_page: set[str]) -> None:
        """Stored assets of this state inside the span but not on the page have left it: suspect them."""
        stored = self._local_sorted[span.state]
        low = bisect.bisect_right(stored, (int(span.low_us), _MAX_ID)) if span.low_us > -INFINITY else 0
        high = (
            bisect.bisect_left(stored, (int(span.high_us), _MIN_ID))
            if span.high_us < INFINITY
            else len(stored)
        )
        for moment, asset_id in stored[low:high]:
            if asset_id not in on_page and span.brackets(moment):
                self._suspects.add(asset_id)

    # -- stored assets that left their non-terminal list --------------------------------------------------

    def _resolve_moved_assets(self) -> set[str]:
        """Find each stored asset missing from its list in a later state, or prove it gone; return others."""
        pending = [
            asset
            for asset in self.local.live.values()
            if (asset.state in FULLY_READ or asset.id in self._suspects)
            and asset.id not in self.sightings
            and asset.id not in self.deletions
        ]
        for state in STATE_FLOW:
            waiting = [asset for asset in pending if self._next_unproven(asset) is state]
            if waiting and not self._budget_spent():
                self._read_around(state, waiting)
            pending = [a for a in pending if a.id not in self.sightings and a.id not in self.deletions]
        return {asset.id for asset in pending}

    def _next_unproven(self, asset: LocalAsset) -> AssetState | None:
        """Walk the asset's reachable states in flow order along the evidence; the first without proof.

        Returns None (and records the deletion) when every reachable state has a proof of absence,
        each taken at or after the one before, which rules out the asset having moved between them.
        """
        after_seq = 0
        for state in STATE_FLOW:
            if state not in REACHABLE[asset.state]:
                continue
            seq = self.evidence.absent_since(state, asset.created_us, after_seq)
            if seq is None:
                return state
            after_seq = seq
        self.deletions[asset.id] = Deletion(asset.id, after_seq, datetime.now(UTC))
        self._changes += 1
        return None

    def _read_around(self, state: AssetState, assets: Iterable[LocalAsset]) -> None:
        """Fetch pages of `state` that bracket each asset's `created_at` (or show the asset)."""
        first_seq = self._seq + 1
        for asset in sorted(assets, key=lambda a: -a.created_us):
            if asset.id in self.sightings or self.evidence.absent_since(state, asset.created_us, first_seq):
                continue
            self._locate(state, asset, first_seq)
            if self._budget_spent():
                return

    def _locate(self, state: AssetState, asset: LocalAsset, min_seq: int) -> None:
        """Search `state`'s list for the page holding `asset.created_us`, starting where stored rows say."""
        believed = self._believed_sorted(state)
        guess = len(believed) - bisect.bisect_right(believed, (asset.created_us, _MAX_ID))
        low, high = 0, max(self.totals.get(state, guess), guess) + 1
        offset = max(0, guess - 10)
        for _ in range(MAX_LOCATE_STEPS):
            self._extra_requests += 1
            page = self._fetch(state, offset)
            if asset.id in self.sightings or self.evidence.absent_since(state, asset.created_us, min_seq):
                return
            high = min(high, page.total)
            if not page.items or asset.created_us >= created_us(page.items[0].created_at):
                high = min(high, offset)  # the asset's place is above this page
                offset = (
                    max(low, high - MAX_PAGE_SIZE // 2) if high - low <= MAX_PAGE_SIZE else (low + high) // 2
                )
            else:
                low = max(low, offset + len(page.items) - 1)  # below this page
                offset = low if high - low <= MAX_PAGE_SIZE else (low + high) // 2
            if self._budget_spent():
                return

    # -- count mismatches ------------------------------------------------------------------------------------

    def _bisect(self, state: AssetState) -> None:
        """Find where the remote list and the stored one differ, reading only the regions that disagree."""
        believed = self._believed_sorted(state)[::-1]  # newest first, as the listing
        position = {asset_id: index for index, (_, asset_id) in enumerate(believed)}
        total = self.totals[state]
        regions = [((-1, -1), (total, len(believed)))]
        while regions and not self._budget_spent():
            (remote_top, local_top), (remote_bottom, local_bottom) = regions.pop()
            if remote_bottom - remote_top == local_bottom - local_top:
                continue  # the same number of assets between two shared anchors: nothing to find here
            start = max(remote_top, 0)
            self._extra_requests += 1
            if remote_bottom - start + 1 <= MAX_PAGE_SIZE:
                self._fetch(state, start, limit=min(MAX_PAGE_SIZE, max(1, remote_bottom - start + 1)))
                continue
            start = max(0, (remote_top + remote_bottom) // 2 - MAX_PAGE_SIZE // 2)
            page = self._fetch(state, start)
            anchors = [
                (start + index, position[item.id])
                for index, item in enumerate(page.items)
                if item.id in position
            ]
            if anchors:
                regions.append(((remote_top, local_top), anchors[0]))
                regions.append((anchors[-1], (remote_bottom, local_bottom)))

    # -- what the sync believes now --------------------------------------------------------------------------

    def _believed_state(self, asset_id: str) -> AssetState | None:
        if asset_id in self.deletions:
            return None
        sighting = self.sightings.get(asset_id)
        if sighting is not None:
            return sighting.state
        stored = self.local.live.get(asset_id)
        return stored.state if stored is not None else None

    def _believed_sorted(self, state: AssetState) -> list[tuple[int, str]]:
        """(created_us, id) ascending of every asset believed to be in `state` now (cached per change)."""
        cached = self._believed_cache.get(state)
        if cached is not None and cached[0] == self._changes:
            return cached[1]
        found = {
            asset_id: created
            for created, asset_id in self._local_sorted[state]
            if self._believed_state(asset_id) is state
        }
        for asset_id, sighting in self.sightings.items():
            if sighting.state is state and asset_id not in self.deletions:
                found[asset_id] = created_us(sighting.created_at)
        result = sorted((created, asset_id) for asset_id, created in found.items())
        self._believed_cache[state] = (self._changes, result)
        return result

    def _believed_counts(self) -> dict[AssetState, int]:
        """How many assets the sync believes are in each state now (cached until what it believes changes)."""
        if self._believed_counts_cache is not None and self._believed_counts_cache[0] == self._changes:
            return self._believed_counts_cache[1]
        counts = Counter(map(_STATE_OF, self.sightings.values()))
        for asset_id in self.deletions.keys() & self.sightings.keys():
            counts[self.sightings[asset_id].state] -= 1
        unseen = self.local.live.keys() - self.sightings.keys() - self.deletions.keys()
        counts.update(self.local.live[asset_id].state for asset_id in unseen)
        result = {state: counts[state] for state in STATE_FLOW}
        self._believed_counts_cache = (self._changes, result)
        return result

    def _mismatched_states(self) -> list[AssetState]:
        """States whose believed count differs from the latest remote total."""
        counts = self._believed_counts()
        return [state for state in STATE_FLOW if counts[state] != self.totals[state]]

    def _budget_spent(self) -> bool:
        return self._extra_requests >= self.max_extra_requests


_STATE_OF = attrgetter("state")
_ID_OF = attrgetter("id")
_PROJECT_OF = attrgetter("project_id")
_CREATED_AT_OF = attrgetter("created_at")
_MIN_ID = ""  # sorts before every id
_MAX_ID = "\uffff"  # sorts after every id (ids are ASCII)


def _check_page(page: AssetPage, project_id: str, state: AssetState) -> None:
    """Refuse a page the plan cannot trust: foreign items, wrong states, repeats, or not newest first."""
    problem = ""
    items = page.items
    moments = list(map(_CREATED_AT_OF, items))
    if set(map(_PROJECT_OF, items)) - {project_id}:
        problem = f"an item of another project in the listing of project {project_id}"
    elif set(map(_STATE_OF, items)) - {state}:
        problem = f"an item in another state in the list filtered by state={state.value}"
    elif len(set(map(_ID_OF, items))) != len(items):
        problem = "the same asset twice on one page"
    elif moments != sorted(moments, reverse=True):
        problem = "items not in newest-first order"
    if problem:
        raise RoughyProtocolError(
            f"the page breaks the API contract: {problem}",
            status=200,
            request_id=page.request_id,
            request=f"GET /v1/assets?project_id={project_id}&state={state.value}&offset={page.offset}",
        )


def _continues(page: AssetPage, last: AssetSummary) -> bool:
    """Whether `page`, read after a page ending with `last`, leaves no gap after `last`."""
    if not page.items:
        return False
    first = page.items[0]
    if first.id == last.id or first.created_at > last.created_at:
        return True  # the usual overlap of one asset, or a list that moved down
    return last.id in set(map(_ID_OF, page.items))

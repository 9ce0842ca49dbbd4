"""The incremental sync plan for one project or a whole account, built on what the API guarantees.

The listing has no `updated_at` and pages by offset, newest first. Three facts make an incremental sync
possible: states only move forward, `ready`/`failed` are terminal, and each page is a consistent snapshot
of one list. `total` is a hint: it sizes the request budget and points the count check at lists to look
at, but nothing is ever concluded from it alone (a server may miscount).

1. Read the young head of `pending_upload` and `processing` (their fields still change) down to the
   stored watermark minus `young_seconds`; the first sync and a full refresh read them whole.
2. Read the heads of `pending_payment`, `ready` and `failed` down to the watermark minus an overlap.
3. A stored asset missing from a page that covers its key moved on or was deleted: read the page of each
   later state where it would be (predicted from the stored rows). Seen there: it moved. Proven absent, in
   flow order, from every state it could have reached: it was deleted (see `Evidence`).
4. Compare each state's `total` with the count the sync believes. A mismatch means assets left a list
   unseen (deleted, paid, moved on from the old tail of a non-terminal list) or were missed: bisect that
   list by positions the store counts (`BelievedList`, never a copy of its keys), re-centre pages on the
   tie groups its page edges cut, then resolve what was found as in 3. A mismatch that stays (a wrong
   `total`, a moving list, a tie group too long for a page, the budget spent) leaves the sync
   `verified=False` with the reason.

Every list is read through the one paging primitive (`roughy_dagster.client.paging`), so every walk ends
within the sync's request budget, whatever the server does.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from operator import attrgetter

from ..client import STATE_FLOW, AssetPage, AssetState, AssetSummary, RoughyClient, RoughyProtocolError
from ..client.models import STATE_RANK, OffContractItem
from ..client.paging import MAX_PAGE_SIZE, ListWalk, RequestBudget, created_us, walk_together
from .local import LocalView
from .model import REACHABLE, Deletion, LocalAsset, RemoteObservation
from .quarantine import proves_order, with_placeholders
from .rows import RowBuffer
from .spans import HIGHEST, Key, KeySpan, key_span

logger = logging.getLogger("roughy_dagster.sync")

FULLY_READ = (AssetState.PENDING_UPLOAD, AssetState.PROCESSING)
HEAD_READ = (AssetState.PENDING_PAYMENT, AssetState.READY, AssetState.FAILED)
MAX_LOCATE_STEPS = 24
MAX_BISECT_ROUNDS = 3
MAX_TIE_READ_PAGES = 10
"""A tie group too long for a page is read through (to name precisely what stays unproven) up to this
many pages long."""
MASS_DELETION = 3
"""More deletions than this proven by one request (or any by an empty page) need a later request agreeing
(see `SyncEngine._confirm_mass_deletions`)."""
PAGE_STEP = MAX_PAGE_SIZE - 1
"""Assets a walk advances per full page (consecutive pages overlap by one)."""
DEFAULT_CONCURRENCY = 8
"""Requests in flight while a list is read whole (first loads, full refreshes); see `walk_list`."""


class Evidence:
    """Page spans by state: the proofs of absence a sync has gathered (by `created_at` only: no tie order
    is assumed, see `roughy_dagster.sync.spans`)."""

    def __init__(self) -> None:
        self.spans: dict[AssetState, list[KeySpan]] = {state: [] for state in STATE_FLOW}

    def add(self, span: KeySpan) -> None:
        """Record a page's span."""
        self.spans[span.state].append(span)

    def absent_since(self, state: AssetState, key: Key, after_seq: int) -> int | None:
        """The first request at or after `after_seq` proving an unseen asset absent from `state`."""
        found = [s.seq for s in self.spans[state] if s.seq >= after_seq and s.brackets(key)]
        return min(found) if found else None


@dataclass
class Belief:
    """What the sync believes each state holds now: the stored counts, moved as sightings and proofs come.

    `stored` caches the stored state of every id the sync has looked up (None: not stored, or deleted).
    """

    counts: dict[AssetState, int]
    stored: dict[str, LocalAsset | None] = field(default_factory=dict)

    def move(self, old: AssetState | None, new: AssetState | None, count: int = 1) -> None:
        """`count` assets believed in `old` (None: nowhere) are now believed in `new` (None: gone)."""
        if old is new:
            return
        if old is not None:
            self.counts[old] -= count
        if new is not None:
            self.counts[new] += count


@dataclass(frozen=True)
class BelievedList:
    """What the sync believes one state's list holds, as positions, never as a copy of its keys.

    The stored keys of `state` (counted by the `LocalView`, in SQL for a DuckDB file), less `left` (stored
    in `state`, seen in another state or proven deleted) plus `joined` (seen in `state`, stored elsewhere or
    not at all). Both come from the sync's own sightings, so its memory and work grow with the pages read,
    not with what is stored. Keys ascending, as `(created_us, id)`; ties ordered by id (a guess used only
    to aim requests: no proof rests on it).
    """

    state: AssetState
    local: LocalView | None
    """None when nothing is stored."""
    stored: dict[str, LocalAsset | None]
    left: list[Key]
    joined: list[Key]
    left_ids: frozenset[str]
    joined_ids: frozenset[str]
    size: int

    def position(self, key: Key) -> int:
        """How many believed assets come before `key` in the listing (newest first): the offset it has,
        or would have, in the list."""
        above = self.local.count_above(self.state, key) if self.local is not None else 0
        above -= len(self.left) - bisect.bisect_right(self.left, key)
        return above + len(self.joined) - bisect.bisect_right(self.joined, key)

    def holds(self, asset_id: str) -> bool:
        """Whether the asset is one of the believed list's."""
        if asset_id in self.joined_ids:
            return True
        stored = self.stored.get(asset_id)
        return stored is not None and stored.state is self.state and asset_id not in self.left_ids


class SyncEngine:
    """Works out, with as few requests as it can, how a listing differs from the stored rows.

    `project_id` is the project to read, or None for the whole account (the account-wide lists, no
    `project_id` filter). `local` answers questions about the stored rows of the same scope.
    `overlap_seconds`: how far below the watermark head reads go. `young_seconds`: how far below the
    watermark the non-terminal lists are re-read whole each sync (older ones are proven unchanged by
    counts, and refreshed by a full refresh). `max_extra_requests` bounds the requests spent locating moved
    assets and bisecting mismatches; every request of the sync is bounded by a budget of that plus what
    the sync can justify: two requests per page of the stored rows, and two more for every page that shows
    an asset this sync had not seen (never a claimed `total`: a server may claim any). `max_requests`
    (None: no cap) caps the whole sync; reaching it ends the sync `verified=False`, committing only what
    is proven. `concurrency`: requests in flight for whole-list reads.
    """

    def __init__(
        self,
        client: RoughyClient,
        project_id: str | None,
        local: LocalView,
        *,
        full_refresh: bool = False,
        overlap_seconds: float = 600.0,
        young_seconds: float = 86_400.0,
        max_extra_requests: int = 500,
        max_requests: int | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> None:
        self.client = client
        self.project_id = project_id
        self.local = local
        self.watermark_us = local.watermark_us
        self.full_refresh = full_refresh or self.watermark_us is None
        self.overlap_us = int(overlap_seconds * 1_000_000)
        self.young_us = int(young_seconds * 1_000_000)
        self.concurrency = max(1, concurrency)
        self.extra = RequestBudget(max_extra_requests)
        self.evidence = Evidence()
        self.sightings: dict[str, int] = {}
        """Per asset seen, its sighting that counts (the most advanced state seen, the latest among equals)
        as one int: `row * 8 + rank` (`_sighted`). Not a model: a first load keeps one per asset."""
        self.deletions: dict[str, Deletion] = {}
        self._proofs: dict[str, list[int]] = {}  # the requests proving each deletion, in flow order
        self._empty_seqs: set[int] = set()  # requests answered with an empty page
        self.totals: dict[AssetState, int] = {}
        self.reasons: list[str] = []
        self.stored_counts = local.counts()
        self.has_stored = any(self.stored_counts.values())
        stored_pages = sum(-(-count // PAGE_STEP) + 1 for count in self.stored_counts.values())
        self.budget = RequestBudget(max_extra_requests + 2 * stored_pages, cap=max_requests)
        self.belief = Belief(dict(self.stored_counts))
        self._total_seq: dict[AssetState, int] = {}
        self._seq = 0
        self._suspects: set[str] = set()  # stored assets a page showed missing from their stored state
        self._tie_doubts: dict[AssetState, dict[int, set[str]]] = {}  # ids by tie groups too long to prove
        self._edge_ties: dict[AssetState, dict[int, set[str]]] = {}  # ids seen at a page edge's created_at
        self._rows = RowBuffer()
        self._superseded_rows: list[int] = []  # rows of sightings another sighting of the same asset replaced
        self.off_contract: dict[str, OffContractItem] = {}  # by the id the sync knows each one as
        self._placeholder_rows: list[int] = []  # the rows standing in for off-contract items: never written

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
        watermark = self.watermark_us or 0
        if self.full_refresh and not self.has_stored:
            self._read_lists(STATE_FLOW)  # a first load: every list whole, all at once
        else:  # in flow order, one after another: proofs of absence chain by request order
            young = None if self.full_refresh else watermark - self.young_us
            for state in FULLY_READ:
                self._read_list(state, stop_below_us=young)
            head = None if self.full_refresh else watermark - self.overlap_us
            for state in HEAD_READ:
                self._read_list(state, stop_below_us=head)
        unresolved = self._resolve_moved_assets()
        for _ in range(MAX_BISECT_ROUNDS):
            mismatched = self._mismatched_states()
            if not mismatched or self._out_of_budget():
                break
            for state in mismatched:
                self._bisect(state)
                self._suspect_edge_ties(state)
            unresolved = self._resolve_moved_assets()
        unresolved |= self._confirm_mass_deletions()
        unresolved |= self._withhold_uncounted_deletions()
        mismatched = self._mismatched_states()
        for state in mismatched:
            long_ties = self._tie_doubts.get(state, {})  # named more precisely by `_report_long_ties`
            ties = [
                moment
                for moment, ids in self._edge_ties.get(state, {}).items()
                if len(ids) > 1 and moment not in long_ties
            ]
            self._doubt(
                f"{state.value}: the remote total ({self.totals.get(state)}) differs from the assets the "
                f"sync can account for ({self.belief.counts[state]})"
                + (
                    f"; tie groups met a page edge (created at {_moments(ties)}): the API gives ties no "
                    "order, so an asset deleted inside one can be proven gone only by a page that holds "
                    "the whole group"
                    if ties
                    else ""
                )
            )
        self._report_long_ties()
        if unresolved:
            self._doubt(
                f"{len(unresolved)} stored assets missing from their list could not be found or proven gone"
            )
        if self.budget.capped:
            self._doubt(f"max_requests ({self.budget.cap}) was reached: the sync stopped there")
        elif self.budget.exhausted or self.extra.exhausted:
            self._doubt(f"the request budget ran out ({self.budget.spent} requests)")
        verified = not self.reasons
        if not verified:
            logger.warning(
                "%s: the listing could not be fully reconciled in this sync (%s); the next sync continues "
                "from here",
                f"project {self.project_id}" if self.project_id else "account",
                "; ".join(self.reasons),
            )
        stats = self.client.stats
        self._quarantine()
        return RemoteObservation(
            project_id=self.project_id,
            mode="full" if self.full_refresh else "incremental",
            started_at=started,
            finished_at=datetime.now(UTC),
            rows=self._rows.table(superseded=self._superseded_rows),
            deletions=self.deletions,
            remote_totals=dict(self.totals),
            unresolved=unresolved,
            verified=verified,
            requests=stats.requests - stats_before[0],
            pages=stats.pages - stats_before[1],
            retries=stats.retries - stats_before[2],
            reason="; ".join(self.reasons),
            off_contract=self.off_contract,
        )

    def _quarantine(self) -> None:
        """Write nothing of an asset any page showed off-contract: its stored row stays as it was (it was
        seen, so it is never proven deleted; the store marks its project unverified)."""
        self._superseded_rows.extend(self._placeholder_rows)
        for asset_id in self.off_contract:
            self.deletions.pop(asset_id, None)
            sighted = self.sightings.get(asset_id)
            if sighted is not None:
                self._superseded_rows.append(sighted >> 3)  # its row (see `_sighted`)

    def _doubt(self, reason: str) -> None:
        if reason not in self.reasons:
            self.reasons.append(reason)

    def _read_list(self, state: AssetState, *, stop_below_us: int | None, start: int = 0) -> None:
        """Walk one list from `start` (see `ListWalk`), recording every page; a proven end extends the last
        page's proof down to the oldest key."""
        walk = self._walk(state, stop_below_us=stop_below_us, start=start)
        last_seq = 0
        for read in walk:
            seq = self._record(read.page, state, read.offset)
            if read.items:
                last_seq = seq
        self._walked(state, walk, last_seq)

    def _read_lists(self, states: tuple[AssetState, ...]) -> None:
        """Walk several lists whole at once (`walk_together`: `concurrency` requests in flight across them),
        recording every page as `_read_list` does.

        Only where nothing is stored: pages are recorded as they come, not in the order their requests
        were sent, so a request of one list may be answered before an earlier-numbered one of another,
        and proofs of absence chain by request order (`Evidence`). With nothing stored nothing is proven
        absent, and the end barrier of `walk_together` keeps the count check able to see an asset that
        moved between two lists while they were read.
        """
        walks = [self._walk(state, stop_below_us=None) for state in states]
        last_seqs = [0] * len(states)
        for index, read in walk_together(walks):
            seq = self._record(read.page, states[index], read.offset)
            if read.items:
                last_seqs[index] = seq
        for state, walk, last_seq in zip(states, walks, last_seqs, strict=True):
            self._walked(state, walk, last_seq)

    def _walk(self, state: AssetState, *, stop_below_us: int | None, start: int = 0) -> ListWalk:
        return ListWalk(
            partial(self._request, state),
            budget=self.budget,
            start=start,
            stop_below_us=stop_below_us,
            concurrency=self.concurrency if stop_below_us is None else 1,
            retries=self._retries,
        )

    def _walked(self, state: AssetState, walk: ListWalk, last_seq: int) -> None:
        """What a walk of `state` that ended proves: a proven end extends its last page's proof down to the
        oldest key; an unsure walk is a doubt."""
        result = walk.result
        if result.reached_end and result.last is not None and proves_order(result.last.page):
            end = key_span(result.last.page, state, last_seq, result.last.offset, ends_list=True)
            if end is not None:
                self._prove(end, {item.id for item in result.last.items})
        if not result.sure:
            self._doubt(f"{state.value} list: {result.reason}")

    def _retries(self) -> int:
        return self.client.stats.retries

    # -- one request ---------------------------------------------------------------------------------------

    def _request(self, state: AssetState, offset: int, limit: int) -> AssetPage:
        """One listing request (safe to call from several threads)."""
        page = self.client.list_assets(
            project_id=self.project_id, state=state, limit=limit, offset=offset, report_off_contract=True
        )
        if page.off_contract:
            page = with_placeholders(page, state, self.project_id)
        _check_page(page, self.project_id, state)
        return page

    def _fetch(self, state: AssetState, offset: int, limit: int = MAX_PAGE_SIZE) -> AssetPage | None:
        """Fetch one page outside a walk (locating, bisecting) and record it; None when out of budget."""
        if not self.extra.take():
            return None
        if not self.budget.take():
            return None
        page = self._request(state, offset, limit)
        self._record(page, state, offset)
        return page

    def _record(self, page: AssetPage, state: AssetState, offset: int) -> int:
        """Record what a page proves: sightings, its span, and stored assets missing from it."""
        self._seq += 1
        seq = self._seq
        observed_at = datetime.now(UTC)
        if any(item.id not in self.sightings for item in page.items):
            # a page showing an asset not seen before earns two more requests (its successor and a
            # step-back or end proof): the budget grows with what the listing shows, never with `total`
            self.budget.grant(2)
        if seq >= self._total_seq.get(state, 0):
            self.totals[state], self._total_seq[state] = page.total, seq
        first_row = self._rows.add_page(page.items, observed_at)
        self._sight_page(page.items, state, seq, first_row)
        for item in page.off_contract:
            self.off_contract[page.items[item.index].id] = item
            self._placeholder_rows.append(first_row + item.index)
        if not page.items:
            self._empty_seqs.add(seq)
        else:
            edges = self._edge_ties.setdefault(state, {})
            for edge in {page.items[0].created_at, page.items[-1].created_at}:
                tied = [item.id for item in page.items if item.created_at == edge]
                edges.setdefault(created_us(edge), set()).update(tied)
        span = key_span(page, state, seq, offset, ends_list=False) if proves_order(page) else None
        if span is not None:
            self._prove(span, set(map(_ID_OF, page.items)))
        return seq

    def _prove(self, span: KeySpan, on_page: set[str]) -> None:
        """Record a span; stored assets of its state inside it but not on the page have left: suspect them."""
        self.evidence.add(span)
        if not self.has_stored:
            return
        for asset in self.local.between(span.state, span.low, span.high, ties_by_id=False, excluding=on_page):
            self.belief.stored.setdefault(asset.id, asset)
            self._suspects.add(asset.id)

    def _sight_page(self, items: list[AssetSummary], state: AssetState, seq: int, first_row: int) -> None:
        """Keep, per asset, its most advanced state seen (the latest sighting among equals); the rows of
        sightings that lose are marked superseded, so they are not written.

        Every asset of the page is recorded in one C-level `update` (a first load runs this for each of
        its assets); only the few already sighted (the asset each page overlaps with the one before, or a
        re-read) are then compared one by one.
        """
        sightings, superseded, belief = self.sightings, self._superseded_rows, self.belief
        ids = list(map(_ID_OF, items))
        earlier = {asset_id: sightings[asset_id] for asset_id in sightings.keys() & ids}
        rank = STATE_RANK[state]
        if self.has_stored:
            unknown = [asset_id for asset_id in ids if asset_id not in belief.stored]
            if unknown:
                found = self.local.lookup(unknown)
                belief.stored.update((asset_id, found.get(asset_id)) for asset_id in unknown)
        rows = range(_sighted(first_row, rank), _sighted(first_row + len(ids), 0), 8)  # one per item
        sightings.update(zip(ids, rows, strict=True))
        if self.has_stored or self.deletions:
            for asset_id in ids:
                if asset_id in earlier:
                    continue
                if asset_id in self.deletions:
                    del self.deletions[asset_id]
                    belief.move(None, state)
                    continue
                stored = belief.stored.get(asset_id)
                belief.move(stored.state if stored is not None else None, state)
        else:
            belief.move(None, state, len(ids) - len(earlier))
        for asset_id, known in earlier.items():
            if rank < known & 7:  # seen further along already: this page's row loses
                superseded.append(sightings[asset_id] >> 3)
                sightings[asset_id] = known
            else:
                belief.move(STATE_FLOW[known & 7], state)
                superseded.append(known >> 3)

    # -- stored assets that left their list ----------------------------------------------------------------

    def _resolve_moved_assets(self) -> set[str]:
        """Find each stored asset missing from its list in a later state, or prove it gone; return others."""
        pending = [
            asset
            for asset_id in self._suspects
            if asset_id not in self.sightings
            and asset_id not in self.deletions
            and (asset := self.belief.stored.get(asset_id)) is not None
        ]
        for state in STATE_FLOW:
            waiting = [asset for asset in pending if self._next_unproven(asset) is state]
            if waiting and not self._out_of_budget():
                self._read_around(state, waiting)
            pending = [a for a in pending if a.id not in self.sightings and a.id not in self.deletions]
        return {asset.id for asset in pending}

    def _next_unproven(self, asset: LocalAsset) -> AssetState | None:
        """Walk the asset's reachable states in flow order along the evidence; the first without proof.

        Returns None (and records the deletion) when every reachable state has a proof of absence,
        each taken at or after the one before, which rules out the asset having moved between them.
        """
        chain = self._proof_chain(asset, 0)
        if isinstance(chain, AssetState):
            return chain
        self.deletions[asset.id] = Deletion(asset.id, chain[-1], datetime.now(UTC))
        self._proofs[asset.id] = chain
        self.belief.move(asset.state, None)
        return None

    def _proof_chain(self, asset: LocalAsset, after_seq: int) -> list[int] | AssetState:
        """The requests (at or after `after_seq`, in flow order) proving the asset absent from every state
        it could have reached, or the first reachable state without such a proof."""
        chain = []
        key = (asset.created_us, asset.id)
        for state in STATE_FLOW:
            if state not in REACHABLE[asset.state]:
                continue
            seq = self.evidence.absent_since(state, key, after_seq)
            if seq is None:
                return state
            chain.append(seq)
            after_seq = seq
        return chain

    def _confirm_mass_deletions(self) -> set[str]:
        """Confirm, by later requests, deletions proven by a request that proved more than `MASS_DELETION`,
        or by an empty page.

        One answer can be wrong in a way no page check sees (a replica or cache returning an empty list
        once): alone, it would delete every asset of a list. Each such asset is looked for again (the same
        search, counting only pages read from now on); a deletion no later request confirms is withdrawn
        (the asset stays stored as it was) and the sync is unverified. Returns the withdrawn ids.
        """
        by_request: dict[int, list[str]] = {}
        for asset_id, chain in self._proofs.items():
            if asset_id in self.deletions:
                for seq in set(chain):
                    by_request.setdefault(seq, []).append(asset_id)
        doubtful = {
            asset_id
            for seq, ids in by_request.items()
            if len(ids) > MASS_DELETION or seq in self._empty_seqs
            for asset_id in ids
        }
        if not doubtful:
            return set()
        first_seq = self._seq + 1
        assets = [asset for asset_id in doubtful if (asset := self.belief.stored.get(asset_id)) is not None]
        for state in STATE_FLOW:
            waiting = [
                asset
                for asset in assets
                if asset.id in self.deletions and self._proof_chain(asset, first_seq) is state
            ]
            if waiting and not self._out_of_budget():
                self._read_around(state, waiting)
        withdrawn = set()
        for asset in assets:
            if asset.id not in self.deletions:
                withdrawn.add(asset.id)  # seen again: the first answer was wrong
            elif isinstance(self._proof_chain(asset, first_seq), AssetState):
                del self.deletions[asset.id]
                self.belief.move(None, asset.state)
                withdrawn.add(asset.id)
        if withdrawn:
            self._doubt(
                f"{len(withdrawn)} deletions proven by a single request were not confirmed by a later "
                "request (the server answered inconsistently); those assets stay stored as they were"
            )
        return {asset_id for asset_id in withdrawn if asset_id not in self.sightings}

    def _withhold_uncounted_deletions(self) -> set[str]:
        """Withhold every deletion proven by a list whose remote `total` exceeds what the sync can account
        for; return the withheld ids.

        Such a list claims assets the sync could not place, and a deleted-looking asset may be one of them:
        a server answering `offset=N` with the items from `N+1` shows a list whose newest asset is "gone"
        while its `total` still counts it. A proof of absence is only as good as the list it comes from, so
        no deletion rests on a list the sync's own count contradicts; it stays stored as it was (the next
        sync, from a list that adds up, records it) and the report names the list and how many were held.
        """
        uncounted = [
            state
            for state in STATE_FLOW
            if state in self.totals and self.totals[state] > self.belief.counts[state]
        ]
        if not uncounted:
            return set()
        withheld: dict[AssetState, int] = {}
        held: set[str] = set()
        for asset_id in list(self.deletions):
            asset = self.belief.stored.get(asset_id)
            if asset is None:
                continue
            proving = [state for state in uncounted if state in REACHABLE[asset.state]]
            if not proving:
                continue
            del self.deletions[asset_id]
            self._proofs.pop(asset_id, None)
            self.belief.move(None, asset.state)
            held.add(asset_id)
            withheld[proving[0]] = withheld.get(proving[0], 0) + 1
        for state, count in withheld.items():
            self._doubt(
                f"{state.value}: {count} deletion{'' if count == 1 else 's'} withheld: the list's remote "
                f"total ({self.totals[state]}) is more than the assets the sync can account for, so its "
                "pages cannot prove an asset gone (the next sync records a real deletion)"
            )
        return held

    def _read_around(self, state: AssetState, assets: Iterable[LocalAsset]) -> None:
        """Fetch pages of `state` that bracket each asset's key (or show the asset)."""
        first_seq = self._seq + 1
        believed = self._believed(state)
        for asset in sorted(assets, key=lambda a: (-a.created_us, a.id)):
            key = (asset.created_us, asset.id)
            if asset.id in self.sightings or self.evidence.absent_since(state, key, first_seq):
                continue
            long_tie = self._tie_doubts.get(state, {}).get(asset.created_us)
            if long_tie is not None:
                long_tie.add(asset.id)  # its tie group was read through already: nothing more to learn
                continue
            self._locate(state, asset, first_seq, believed)
            if self._out_of_budget():
                return

    def _locate(self, state: AssetState, asset: LocalAsset, min_seq: int, believed: BelievedList) -> None:
        """Search `state`'s list for a page holding the asset's `created_at` strictly inside (or showing the
        asset), starting where stored rows say. Ties have no documented order, so the search moves by
        `created_at` alone; a tie group at a page's edge is re-centred on the next page, and one that fills
        a whole page can never be proven: the asset stays unresolved, with that reason."""
        moment = asset.created_us
        guess = believed.position((moment, HIGHEST[1]))  # the first of its tie group
        low, high = 0, max(self.totals.get(state, guess), guess) + 1
        offset = max(0, guess - 10)
        for _ in range(MAX_LOCATE_STEPS):
            page = self._fetch(state, offset)
            if page is None:
                return
            seq = self._seq
            if asset.id in self.sightings or self.evidence.absent_since(state, (moment, asset.id), min_seq):
                return
            high = min(high, page.total)
            moments = [created_us(item.created_at) for item in page.items]
            if (
                moments
                and moment <= moments[-1]
                and self._ends_list(state, page, offset, seq)
                and self.evidence.absent_since(state, (moment, asset.id), min_seq)
            ):
                return  # the list ends with this page: proven absent below its newest key
            if moment in moments[:1] + moments[-1:] and moments.count(moment) >= len(moments) - 1:
                # a tie group at least as long as the page less one: no page of this length can hold it
                # with a neighbour on each side, which is what proves who is in it
                self._tie_doubts.setdefault(state, {}).setdefault(moment, set()).add(asset.id)
                self._read_tie_group(state, moment, believed)
                return
            if moments and moment == moments[0] and offset > 0:
                # tied with the page's first item (the group goes on above): end the next page with the
                # first older item, so the group's upper part and its newer neighbour fit above it
                offset = max(0, offset + moments.count(moment) - (len(moments) - 1))
            elif moments and moment == moments[-1]:
                # tied with the page's last item (the group goes on below): start the next page with the
                # group's newer neighbour, so the group and its older neighbour fit below it
                offset = offset + moments.index(moment) - 1
            elif not moments or moment > moments[0]:
                high = min(high, offset)  # the asset's place is above this page
                offset = (
                    max(low, high - MAX_PAGE_SIZE // 2) if high - low <= MAX_PAGE_SIZE else (low + high) // 2
                )
            else:
                low = max(low, offset + len(page.items) - 1)  # below this page
                if low >= high:
                    high = low + MAX_PAGE_SIZE  # `total` was too low: look past it
                offset = low if high - low <= MAX_PAGE_SIZE else (low + high) // 2

    def _read_tie_group(self, state: AssetState, moment: int, believed: BelievedList) -> None:
        """Read a tie group too long for a page through, from just above where it is believed to start
        to its first older asset: every asset of the group listed throughout is seen, so what stays
        unseen is what the report names (`_report_long_ties`). Only a group of at most
        `MAX_TIE_READ_PAGES` pages: for a longer one the report counts its unread members too."""
        start = max(0, believed.position((moment, HIGHEST[1])) - 1)
        if believed.position((moment - 1, HIGHEST[1])) - start <= MAX_TIE_READ_PAGES * (MAX_PAGE_SIZE - 1):
            self._read_list(state, stop_below_us=moment, start=start)

    def _ends_list(self, state: AssetState, page: AssetPage, offset: int, seq: int) -> bool:
        """Whether `page` (request `seq`) is the list's last, proven by an empty page just past it (one
        request, made only when the page looks like the last: short, or reaching `total`); the proof then
        reaches down to the lowest key, as a walk's proven end does."""
        count = len(page.items)
        if count >= MAX_PAGE_SIZE and offset + count < page.total:
            return False
        after = self._fetch(state, offset + count)
        if after is None or after.items:
            return False
        end = key_span(page, state, seq, offset, ends_list=True) if proves_order(page) else None
        if end is not None:
            self._prove(end, set(map(_ID_OF, page.items)))
        return True

    # -- count mismatches ------------------------------------------------------------------------------------

    def _suspect_edge_ties(self, state: AssetState) -> None:
        """Suspect the stored assets of `state` tied with a page edge that no page showed in `state`.

        A page proves nothing about the assets tied with its edges (`KeySpan`), so an asset deleted inside a
        tie group that a page edge cut is never suspected by `_prove`, and the count stays off. Each becomes
        a suspect: `_locate` re-centres a page on its tie group, which then proves who is in it, or says
        why it cannot (a group too long for a page). Asked only while counts disagree: on a quiet sync the
        rest of an edge's tie group simply sits on the next, unread page.
        """
        edges = self._edge_ties.get(state, {})
        if not self.has_stored or not edges:
            return
        seen: set[str] = set().union(*edges.values())
        for asset in self.local.tied(state, list(edges), excluding=seen):
            if asset.id not in self.sightings and asset.id not in self.deletions:
                self.belief.stored.setdefault(asset.id, asset)
                self._suspects.add(asset.id)

    def _report_long_ties(self) -> None:
        """Say, for each tie group too long to prove, which stored assets stay unresolved and why."""
        for state, groups in self._tie_doubts.items():
            for moment, ids in sorted(groups.items()):
                missing = ids - self.sightings.keys() - self.deletions.keys()
                if not missing:
                    continue
                stored = self.local.count_above(state, (moment - 1, HIGHEST[1])) - self.local.count_above(
                    state, (moment, HIGHEST[1])
                )
                listed = len(self._edge_ties.get(state, {}).get(moment, ()))
                one = len(missing) == 1
                self._doubt(
                    f"{state.value}: {len(missing)} stored asset{'' if one else 's'} created at "
                    f"{_moments([moment])} not seen in the list cannot be proven gone: "
                    f"{'its' if one else 'their'} tie group ({stored} stored, {listed} seen in the list) "
                    f"is too long for one page (at most {MAX_PAGE_SIZE}) to hold with a neighbour on each "
                    "side, the only proof of who is in a tie group (the API gives ties no order, a server "
                    "may order them differently on each request, and the list may change between "
                    f"requests), so {'it stays' if one else 'they stay'} stored as "
                    f"{'it was' if one else 'they were'}"
                )

    def _bisect(self, state: AssetState) -> None:
        """Find where the remote list and the believed one differ, reading only the regions that disagree.

        A region lies between two anchors, assets at a known offset in both lists (remote, believed); one
        whose two sizes agree holds nothing to find. A believed offset is a count (`BelievedList.position`),
        so the search never loads the stored keys of the list.
        """
        believed = self._believed(state)
        total = self.totals[state]
        regions = [((-1, -1), (total, believed.size))]
        while regions and not self._out_of_budget():
            (remote_top, local_top), (remote_bottom, local_bottom) = regions.pop()
            if remote_bottom - remote_top == local_bottom - local_top:
                continue  # the same number of assets between two shared anchors: nothing to find here
            start = max(remote_top, 0)
            if remote_bottom - start + 1 <= MAX_PAGE_SIZE:
                if remote_bottom >= total:
                    self._read_list(state, stop_below_us=None, start=start)  # to the proven end
                else:
                    self._fetch(state, start, limit=min(MAX_PAGE_SIZE, max(1, remote_bottom - start + 1)))
                continue
            start = max(0, (remote_top + remote_bottom) // 2 - MAX_PAGE_SIZE // 2)
            page = self._fetch(state, start)
            if page is None:
                return
            anchors = [
                (start + index, item) for index, item in enumerate(page.items) if believed.holds(item.id)
            ]
            if anchors:
                (first_offset, first), (last_offset, last) = anchors[0], anchors[-1]
                first_key = (created_us(first.created_at), first.id)
                regions.append(((remote_top, local_top), (first_offset, believed.position(first_key))))
                last_key = (created_us(last.created_at), last.id)
                regions.append(((last_offset, believed.position(last_key)), (remote_bottom, local_bottom)))

    # -- what the sync believes now --------------------------------------------------------------------------

    def _stored_state(self, asset_id: str) -> AssetState | None:
        stored = self.belief.stored.get(asset_id)
        return stored.state if stored is not None else None

    def _believed(self, state: AssetState) -> BelievedList:
        """The list the sync believes `state` holds now (see `BelievedList`); built from the sightings and
        deletions so far, without reading the stored keys."""
        stored = self.belief.stored
        rank = STATE_RANK[state]
        left: list[Key] = []
        joined_rows: list[tuple[int, str]] = []  # (row, id): created_at is read back from the rows
        for asset_id, sighted in self.sightings.items():
            was = stored.get(asset_id)
            if sighted & 7 == rank:
                if was is None or was.state is not state:
                    joined_rows.append((sighted >> 3, asset_id))
            elif was is not None and was.state is state:
                left.append((was.created_us, asset_id))
        moments = self._rows.created_us([row for row, _ in joined_rows])
        joined: list[Key] = list(zip(moments, (asset_id for _, asset_id in joined_rows), strict=True))
        for asset_id in self.deletions:
            was = stored.get(asset_id)
            if was is not None and was.state is state and asset_id not in self.sightings:
                left.append((was.created_us, asset_id))
        left.sort()
        joined.sort()
        stored_count = self.stored_counts[state]
        return BelievedList(
            state=state,
            local=self.local if self.has_stored else None,
            stored=stored,
            left=left,
            joined=joined,
            left_ids=frozenset(asset_id for _, asset_id in left),
            joined_ids=frozenset(asset_id for _, asset_id in joined),
            size=stored_count - len(left) + len(joined),
        )

    def _mismatched_states(self) -> list[AssetState]:
        """States whose believed count differs from the latest remote total."""
        counts = self.belief.counts
        return [state for state in STATE_FLOW if counts[state] != self.totals.get(state, counts[state])]

    def _out_of_budget(self) -> bool:
        return self.extra.exhausted or self.budget.exhausted


def _sighted(row: int, rank: int) -> int:
    """A sighting as `SyncEngine.sightings` keeps it: its row (`RowBuffer`) and state (`STATE_RANK`)."""
    return row << 3 | rank


def _moments(moments: Iterable[int]) -> str:
    """`created_us` values as ISO 8601 text, ascending."""
    return ", ".join(datetime.fromtimestamp(m / 1_000_000, UTC).isoformat() for m in sorted(moments))


_ID_OF = attrgetter("id")
_PROJECT_OF = attrgetter("project_id")
_STATE_OF = attrgetter("state")
_CREATED_AT_OF = attrgetter("created_at")


def _check_page(page: AssetPage, project_id: str | None, state: AssetState) -> None:
    """Refuse a page the plan cannot trust: foreign items, wrong states, repeats, or not newest first."""
    problem = ""
    items = page.items
    moments = list(map(_CREATED_AT_OF, items))
    if project_id is not None and set(map(_PROJECT_OF, items)) - {project_id}:
        problem = f"an item of another project in the listing of project {project_id}"
    elif set(map(_STATE_OF, items)) - {state}:
        problem = f"an item in another state in the list filtered by state={state.value}"
    elif len(set(map(_ID_OF, items))) != len(items):
        problem = "the same asset twice on one page"
    elif moments != sorted(moments, reverse=True):
        problem = "items not in newest-first order"
    if problem:
        scope = f"project_id={project_id}&" if project_id is not None else ""
        raise RoughyProtocolError(
            f"the page breaks the API contract: {problem}",
            status=200,
            request_id=page.request_id,
            request=f"GET /v1/assets?{scope}state={state.value}&offset={page.offset}",
        )

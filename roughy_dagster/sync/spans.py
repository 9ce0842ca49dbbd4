"""What one page of a list proves: the range of the listing's order it covers completely.

The listing is ordered newest first by `created_at`; ties have no documented second key, and a server
may order them by anything (its insertion order, a hidden key, differently on each request). A `KeySpan`
holds the keys `(created_us, id)` of a page's first and last items, but it proves only by `created_us`,
with exclusive bounds: every asset of the list created strictly between the two edges' `created_at` was
on the page, at that request. An asset tied with a page's edge is never proven absent by that page, however
the page orders its ties; a tie group is proven only by a page that holds it whole with older and newer
items around it (a tie group longer than a page can never be, and a sync that needs it says so).

`PageSpan`/`span_of` are the older, `created_at`-only form the state watcher still uses.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..client import AssetPage, AssetState
from ..client.paging import created_us

INFINITY = float("inf")

Key = tuple[int, str]
"""An asset's place in the listing's order: `(created_us, id)`; the listing is in descending key order."""

LOWEST: Key = (-(2**63), "")
HIGHEST: Key = (2**63 - 1, "\uffff")


@dataclass(frozen=True)
class KeySpan:
    """The keys (exclusive bounds) one page of one list covers completely, at request `seq`."""

    state: AssetState
    seq: int
    low: Key
    high: Key

    def brackets(self, key: Key) -> bool:
        """Whether every asset of this list with `key` was on the page: by `created_us` alone (module doc)."""
        return self.low[0] < key[0] < self.high[0]


def key_span(page: AssetPage, state: AssetState, seq: int, offset: int, *, ends_list: bool) -> KeySpan | None:
    """The keys a page proves complete, or None when it proves nothing.

    `ends_list`: the walk proved that nothing follows this page (an empty page right after it); only then
    does the span reach down to the lowest key. `total` is never trusted for that.
    """
    if not page.items:
        return KeySpan(state, seq, LOWEST, HIGHEST) if offset == 0 else None
    first, last = page.items[0], page.items[-1]
    high = HIGHEST if offset == 0 else (created_us(first.created_at), first.id)
    low = LOWEST if ends_list else (created_us(last.created_at), last.id)
    return KeySpan(state, seq, low, high)


@dataclass(frozen=True)
class PageSpan:
    """The `created_at` range (exclusive bounds) one page of one list covers completely, at request `seq`."""

    state: AssetState
    seq: int
    low_us: float
    high_us: float

    def brackets(self, moment_us: int) -> bool:
        """Whether every asset of this list created at `moment_us` was on the page."""
        return self.low_us < moment_us < self.high_us


def span_of(page: AssetPage, state: AssetState, seq: int, offset: int) -> PageSpan | None:
    """The `created_at` range a page proves complete, or None when it proves nothing (past the end)."""
    reaches_end = offset + len(page.items) >= page.total
    if not page.items:
        return PageSpan(state, seq, -INFINITY, INFINITY) if offset == 0 else None
    high = INFINITY if offset == 0 else float(created_us(page.items[0].created_at))
    low = -INFINITY if reaches_end else float(created_us(page.items[-1].created_at))
    return PageSpan(state, seq, low, high)


def bracketed(spans: Iterable[PageSpan], moment_us: int) -> bool:
    """Whether any of the spans covers `moment_us`."""
    return any(span.brackets(moment_us) for span in spans)

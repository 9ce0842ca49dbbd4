"""What one page of a list proves: the `created_at` range it covers completely, shared by sync and sensor."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..client import AssetPage, AssetState
from .model import created_us

INFINITY = float("inf")


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

"""The stored side as the sync engine asks about it: a small interface, never a copy of every stored row.

A quiet sync must not grow with what is stored, so the engine never loads the stored rows: it asks
counts, the stored assets inside the key range a page covers, and the stored state of the ids a page
shows; a count mismatch is searched by positions (`count_above`), never by listing a state's keys. The
store answers with SQL against the DuckDB file (`roughy_dagster.store.view.DuckDBView`); `MemoryView`
answers from a dict (tests, and full reads that look at every row anyway).
"""

from __future__ import annotations

import bisect
from collections.abc import Collection, Iterable
from typing import Protocol

from ..client import STATE_FLOW, AssetState
from .model import LocalAsset
from .spans import Key


class LocalView(Protocol):
    """What the engine asks of the stored, live (not deleted) assets of the sync's scope.

    `rows_fetched` counts the stored asset rows answers carried (tests show a quiet sync reads few).
    """

    rows_fetched: int

    @property
    def watermark_us(self) -> int | None:
        """The newest `created_at` ever stored in the scope (deleted rows included), or None when empty."""
        ...

    def counts(self) -> dict[AssetState, int]:
        """How many live assets are stored per state."""
        ...

    def between(
        self, state: AssetState, low: Key, high: Key, *, ties_by_id: bool, excluding: Collection[str] = ()
    ) -> list[LocalAsset]:
        """Live stored assets of `state` whose key lies strictly between `low` and `high` (by `created_us`
        alone unless `ties_by_id`), leaving out the ids in `excluding` (those a page showed)."""
        ...

    def lookup(self, ids: Collection[str]) -> dict[str, LocalAsset]:
        """The live stored assets among `ids`."""
        ...

    def tied(
        self, state: AssetState, moments: Collection[int], *, excluding: Collection[str] = ()
    ) -> list[LocalAsset]:
        """Live stored assets of `state` created at one of `moments` (`created_us`), leaving out the ids in
        `excluding` (those pages showed): the rest of the tie groups that page edges cut."""
        ...

    def count_above(self, state: AssetState, key: Key) -> int:
        """How many live stored assets of `state` have a key `(created_us, id)` above `key`: the offset
        `key` would have in the stored list, newest first (ties ordered by id). A count: no row is fetched."""
        ...


class MemoryView:
    """A `LocalView` over live assets held in a dict."""

    def __init__(self, live: Iterable[LocalAsset] = (), *, watermark_us: int | None = None) -> None:
        self.live = {asset.id: asset for asset in live}
        self._watermark_us = watermark_us
        self.rows_fetched = 0
        self._sorted: dict[AssetState, tuple[list[Key], list[LocalAsset]]] = {}

    @property
    def watermark_us(self) -> int | None:
        """See `LocalView.watermark_us`."""
        return self._watermark_us

    def counts(self) -> dict[AssetState, int]:
        """See `LocalView.counts`."""
        counts = dict.fromkeys(STATE_FLOW, 0)
        for asset in self.live.values():
            counts[asset.state] += 1
        return counts

    def _by_state(self, state: AssetState) -> tuple[list[Key], list[LocalAsset]]:
        found = self._sorted.get(state)
        if found is None:
            assets = sorted((a for a in self.live.values() if a.state is state), key=_key_of)
            found = self._sorted[state] = ([_key_of(a) for a in assets], assets)
        return found

    def between(
        self, state: AssetState, low: Key, high: Key, *, ties_by_id: bool, excluding: Collection[str] = ()
    ) -> list[LocalAsset]:
        """See `LocalView.between`."""
        keys, assets = self._by_state(state)
        if ties_by_id:
            start, stop = bisect.bisect_right(keys, low), bisect.bisect_left(keys, high)
        else:
            start = bisect.bisect_right(keys, (low[0], _MAX_ID))
            stop = bisect.bisect_left(keys, (high[0], ""))
        found = [asset for asset in assets[start:stop] if asset.id not in excluding]
        self.rows_fetched += len(found)
        return found

    def lookup(self, ids: Collection[str]) -> dict[str, LocalAsset]:
        """See `LocalView.lookup`."""
        found = {asset_id: self.live[asset_id] for asset_id in ids if asset_id in self.live}
        self.rows_fetched += len(found)
        return found

    def tied(
        self, state: AssetState, moments: Collection[int], *, excluding: Collection[str] = ()
    ) -> list[LocalAsset]:
        """See `LocalView.tied`."""
        keys, assets = self._by_state(state)
        found: list[LocalAsset] = []
        for moment in set(moments):
            start, stop = bisect.bisect_left(keys, (moment, "")), bisect.bisect_right(keys, (moment, _MAX_ID))
            found.extend(asset for asset in assets[start:stop] if asset.id not in excluding)
        self.rows_fetched += len(found)
        return found

    def count_above(self, state: AssetState, key: Key) -> int:
        """See `LocalView.count_above`."""
        keys = self._by_state(state)[0]
        return len(keys) - bisect.bisect_right(keys, key)


def _key_of(asset: LocalAsset) -> Key:
    return (asset.created_us, asset.id)


_MAX_ID = "\uffff"

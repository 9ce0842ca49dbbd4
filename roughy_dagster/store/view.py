"""`DuckDBView`: the sync engine's `LocalView`, answered by SQL on the DuckDB file, one question at a time.

A quiet sync asks a handful of questions (counts per state, the stored assets inside the range each head
page covers, the stored state of the ids a page shows), so its cost grows with what changed, not with
what is stored; `rows_fetched` counts the asset rows the answers carried.
"""

from __future__ import annotations

from collections.abc import Collection

import duckdb

from ..client import STATE_FLOW, AssetState
from ..sync.model import LocalAsset
from ..sync.spans import Key

_LIVE = "deleted_at IS NULL"


class DuckDBView:
    """A `LocalView` of the live assets of one project (or every project when `project_id` is None)."""

    def __init__(self, connection: duckdb.DuckDBPyConnection, project_id: str | None) -> None:
        self._connection = connection
        self._scope = "project_id = CAST($project AS UUID)" if project_id is not None else "TRUE"
        self._parameters: dict[str, object] = {"project": project_id} if project_id is not None else {}
        self.rows_fetched = 0
        row = connection.execute(
            f"SELECT epoch_us(max(created_at)) FROM roughy.assets WHERE {self._scope}", self._parameters
        ).fetchall()
        self._watermark_us: int | None = None if not row or row[0][0] is None else int(row[0][0])

    @property
    def watermark_us(self) -> int | None:
        """See `LocalView.watermark_us`."""
        return self._watermark_us

    def counts(self) -> dict[AssetState, int]:
        """See `LocalView.counts`."""
        rows = self._connection.execute(
            f"SELECT state, count(*) FROM roughy.assets WHERE {self._scope} AND {_LIVE} GROUP BY state",
            self._parameters,
        ).fetchall()
        counts = dict.fromkeys(STATE_FLOW, 0)
        counts.update((AssetState(state), int(count)) for state, count in rows)
        return counts

    def _assets(self, where: str, parameters: dict[str, object], join: str = "") -> list[LocalAsset]:
        rows = self._connection.execute(
            f"SELECT CAST(id AS VARCHAR), state, epoch_us(created_at) FROM roughy.assets {join} "
            f"WHERE {self._scope} AND {_LIVE} AND {where}",
            {**self._parameters, **parameters},
        ).fetchall()
        self.rows_fetched += len(rows)
        return [LocalAsset(row[0], AssetState(row[1]), int(row[2])) for row in rows]

    def between(
        self, state: AssetState, low: Key, high: Key, *, ties_by_id: bool, excluding: Collection[str] = ()
    ) -> list[LocalAsset]:
        """See `LocalView.between`."""
        moment = "epoch_us(created_at)"
        if ties_by_id:
            text = "CAST(id AS VARCHAR)"
            where = (
                f"state = $state AND ({moment} > $low_us OR ({moment} = $low_us AND {text} > $low_id))"
                f" AND ({moment} < $high_us OR ({moment} = $high_us AND {text} < $high_id))"
            )
            parameters: dict[str, object] = {
                "state": state.value,
                "low_us": low[0],
                "low_id": low[1],
                "high_us": high[0],
                "high_id": high[1],
            }
        else:
            where = f"state = $state AND {moment} > $low_us AND {moment} < $high_us"
            parameters = {"state": state.value, "low_us": low[0], "high_us": high[0]}
        if excluding:
            where += " AND id NOT IN (SELECT CAST(unnest($excluding) AS UUID))"
            parameters["excluding"] = list(excluding)
        return self._assets(where, parameters)

    def lookup(self, ids: Collection[str]) -> dict[str, LocalAsset]:
        """See `LocalView.lookup`."""
        if not ids:
            return {}
        # a semi join, not `id IN (...)`: DuckDB then skips row groups whose ids lie outside the ids'
        # range (stored rows keep the listing's order, so ids that grow with time are found in a few)
        found = self._assets(
            "TRUE",
            {"ids": list(ids)},
            join="SEMI JOIN (SELECT CAST(unnest($ids) AS UUID) AS asked) ON id = asked",
        )
        return {asset.id: asset for asset in found}

    def tied(
        self, state: AssetState, moments: Collection[int], *, excluding: Collection[str] = ()
    ) -> list[LocalAsset]:
        """See `LocalView.tied`."""
        if not moments:
            return []
        where = "state = $state AND epoch_us(created_at) IN (SELECT unnest($moments))"
        parameters: dict[str, object] = {"state": state.value, "moments": list(moments)}
        if excluding:
            where += " AND id NOT IN (SELECT CAST(unnest($excluding) AS UUID))"
            parameters["excluding"] = list(excluding)
        return self._assets(where, parameters)

    def count_above(self, state: AssetState, key: Key) -> int:
        """See `LocalView.count_above`."""
        # two plain scans (~6 ms each at 1,000,000 rows), not one predicate with an `OR` or two subqueries
        # in one statement (20-50 ms); ids compare as UUIDs, whose order is their text's
        where = f"{self._scope} AND {_LIVE} AND state = $state"
        parameters = {**self._parameters, "state": state.value, "us": key[0]}
        newer = self._connection.execute(
            f"SELECT count(*) FROM roughy.assets WHERE {where} AND epoch_us(created_at) > $us", parameters
        ).fetchall()
        tied = self._connection.execute(
            f"SELECT count(*) FROM roughy.assets WHERE {where} AND epoch_us(created_at) = $us "
            "AND id > CAST($id AS UUID)",
            {**parameters, "id": _as_uuid(key[1])},
        ).fetchall()
        return int(newer[0][0]) + int(tied[0][0])

    def all_live(self) -> list[LocalAsset]:
        """Every live stored asset of the scope (for reads that look at every row anyway)."""
        return self._assets("TRUE", {})


def _as_uuid(text: str) -> str:
    """`text` as a UUID bound to compare with (`count_above`): the listing's ids are UUIDs; the bounds the
    engine uses past every id (`spans.HIGHEST`) or below all (`""`) become the largest or smallest UUID."""
    if text == "":
        return "00000000-0000-0000-0000-000000000000"
    if text >= "g":
        return "ffffffff-ffff-ffff-ffff-ffffffffffff"
    return text

"""Values the contract allows but their column cannot hold exactly: stored exactly elsewhere, never altered.

The spec's `duration_seconds` is a decimal string of any length and precision
(`^(?!^[-+.]*$)[+-]?0*\\d*\\.?\\d*$`), and `size_bytes` an integer without bounds; their columns are
`DECIMAL(38, 9)` and `BIGINT`. A value such as `324.41200000000003`, `0.0000000001`, a 30-digit
duration or a size of 2^63 would be rounded, truncated or refused by DuckDB or Arrow. The policy: such a
value is never rounded and never raises. Its typed column is NULL and the column `unfit_values` holds
the value exactly as the API sent it, as text by field name (a JSON object, e.g.
`{"duration_seconds": "0.0000000001"}`); `unfit_values` is NULL when every value fits. The asset is
otherwise stored like any other (no project is ever blocked by it), and the `values_fit_columns` asset
check lists such rows. Values the spec does not allow (e.g. Unicode digits) never get here: the client's
validation reports their asset as off-contract, and the sync leaves it as stored (`sync.quarantine`).

`created_at` (RFC 3339: any number of fractional digits; `TIMESTAMPTZ` holds microseconds) follows the
same policy, except that its column, NOT NULL and the listing's order, keeps the instant truncated to the
microsecond (`client.models.ExactAssetSummary`) while `unfit_values` holds the exact text.

Which values fit is derived from each column's type in `roughy_dagster.fields`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import partial
from operator import attrgetter, is_not
from typing import Any

import msgspec

from ..client import AssetSummary
from ..client.models import ExactAssetSummary
from ..fields import API_FIELDS, FIELDS_BY_NAME

UNFIT_COLUMN = FIELDS_BY_NAME["unfit_values"].name

_INTEGER_BITS = {
    "TINYINT": 8,
    "SMALLINT": 16,
    "INTEGER": 32,
    "BIGINT": 64,
    "HUGEINT": 128,
}


def decimal_pattern(precision: int, scale: int) -> str:
    """A regex for decimal text that `DECIMAL(precision, scale)` holds exactly (leading and trailing zeros
    aside): at most `precision - scale` digits before the point and `scale` after it."""
    return rf"[+-]?0*[0-9]{{0,{precision - scale}}}(?:\.[0-9]{{0,{scale}}}0*)?"


class _Fit(msgspec.Struct, frozen=True):
    """Whether a value fits a column exactly: one value at a time, or a page's values at once (in C)."""

    one: Callable[[Any], bool]
    many: Callable[[list[Any]], bool]
    """Given the non-null values of a page."""


def _fit(duckdb_type: str) -> _Fit | None:
    """How to test that values fit a column type exactly (None for types that hold any value)."""
    decimal = re.fullmatch(r"DECIMAL\((\d+),\s*(\d+)\)", duckdb_type)
    if decimal:
        precision, scale = int(decimal[1]), int(decimal[2])
        one = re.compile(decimal_pattern(precision, scale))
        lines = re.compile(rf"(?:{one.pattern}\n)*")
        # Text the spec allows that is this short cannot have too many digits on either side of the point.
        short = min(scale + 1, precision - scale)
        return _Fit(
            one=lambda text: one.fullmatch(text) is not None,
            many=lambda texts: (
                max(map(len, texts)) <= short or lines.fullmatch("\n".join(texts) + "\n") is not None
            ),
        )
    if duckdb_type in _INTEGER_BITS:
        bits = _INTEGER_BITS[duckdb_type]
        low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
        return _Fit(
            one=lambda number: low <= number <= high,
            many=lambda numbers: low <= min(numbers) and max(numbers) <= high,
        )
    return None


CHECKED: dict[str, _Fit] = {f.name: fit for f in API_FIELDS if (fit := _fit(f.duckdb_type)) is not None}
"""Field name -> how to test that its (non-null) values fit its column exactly."""


def unfit(item: AssetSummary) -> dict[str, str]:
    """The item's values that their column cannot hold exactly, as text by field name."""
    found = {}
    for name, fit in CHECKED.items():
        value = getattr(item, name)
        if value is not None and not fit.one(value):
            found[name] = str(value)
    if isinstance(item, ExactAssetSummary):
        found[CREATED_AT] = item.created_at_text
    return found


CREATED_AT = FIELDS_BY_NAME["created_at"].name
KEPT_ROUNDED = frozenset({CREATED_AT})
"""Fields whose column keeps the value rounded to what it holds when `unfit_values` holds it exactly,
instead of NULL: `created_at` is NOT NULL and the listing's order (the client truncates it to the
microsecond, which keeps that order, ties aside, which the sync handles)."""


def page_fits(items: Sequence[AssetSummary]) -> bool:
    """Whether every value on a page fits its column: the common case, one C-level test per field."""
    if len(set(map(type, items))) > 1 or (items and type(items[0]) is not AssetSummary):
        return False  # an `ExactAssetSummary`: a created_at finer than a microsecond
    for getter, fit in _PAGE_CHECKS:
        values = list(filter(_NOT_NONE, map(getter, items)))
        if values and not fit.many(values):
            return False
    return True


_NOT_NONE = partial(is_not, None)
_PAGE_CHECKS = [(attrgetter(name), fit) for name, fit in CHECKED.items()]


def fitted(item: AssetSummary) -> AssetSummary | dict[str, Any]:
    """The item as the store writes it: itself, or a dict with unfit values moved to `unfit_values`."""
    moved = unfit(item)
    if not moved:
        return item
    values = msgspec.structs.asdict(item)
    values.pop("created_at_text", None)
    values.update(dict.fromkeys(name for name in moved if name not in KEPT_ROUNDED))
    values[UNFIT_COLUMN] = msgspec.json.encode(moved).decode()
    return values

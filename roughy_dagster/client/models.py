"""Typed models of the `GET /v1/assets` contract (openapi-list-assets.yaml), decoded by msgspec.

msgspec validates the JSON bytes straight into frozen structs (types, enums, nullability, required
fields, time zones and the duration pattern); `misshapen_ids` adds the one rule a struct cannot say
cheaply: ids are canonical lowercase UUID text. Ids stay strings: they are compared, hashed and stored far
more often than parsed, and `str` does all three several times faster than `uuid.UUID`.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

import msgspec

from ..fields import check_fields


class AssetState(StrEnum):
    """Lifecycle state of an asset; the order of the members is the order of the flow."""

    PENDING_UPLOAD = "pending_upload"
    PROCESSING = "processing"
    PENDING_PAYMENT = "pending_payment"
    READY = "ready"
    FAILED = "failed"

    @property
    def is_terminal(self) -> bool:
        """Whether an asset in this state can never change state again."""
        return self in (AssetState.READY, AssetState.FAILED)


STATE_FLOW: tuple[AssetState, ...] = tuple(AssetState)
"""The states in flow order: every transition goes from an earlier to a later member."""

STATE_RANK: dict[AssetState, int] = {state: rank for rank, state in enumerate(STATE_FLOW)}


class AssetType(StrEnum):
    """What kind of media an asset holds."""

    AUDIO = "audio"
    VIDEO = "video"


DURATION_PATTERN = r"^(?![-+.]*\Z)[+-]?0*[0-9]*\.?[0-9]*\Z"
"""The spec's `^(?!^[-+.]*$)[+-]?0*\\d*\\.?\\d*$` with the meaning JSON Schema gives it (ECMA-262):
`\\d` is an ASCII digit (Python's also matches Arabic-Indic and other digits) and `$` the end of the
text (Python's also matches before a final newline, so `"12.5\\n"` would pass)."""

DurationText = Annotated[str, msgspec.Meta(pattern=DURATION_PATTERN)]
"""The spec's decimal string (e.g. '324.412'), kept as text so it is stored exactly, never via a float.

Any length and precision passes, as the spec allows; `roughy_dagster.sync.values` says how a value that
`DECIMAL(38, 9)` cannot hold is stored."""

AwareDatetime = Annotated[datetime, msgspec.Meta(tz=True)]
"""A date-time that carries its UTC offset (a naive one is refused)."""

UUID_TEXT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
"""Canonical lowercase UUID text: the form ids are compared and stored in."""

_UUID_LINES = re.compile(rf"(?:{UUID_TEXT.pattern}\n)*")


class AssetSummary(msgspec.Struct, frozen=True, gc=False):
    """One asset as the listing returns it; unknown extra fields are tolerated and dropped."""

    id: str
    project_id: str
    type: AssetType | None
    state: AssetState
    extension: str | None
    size_bytes: int | None
    content_type: str | None
    duration_seconds: DurationText | None
    language: str | None
    created_at: AwareDatetime
    error_code: str | None = None
    error_message: str | None = None
    upload_url: str | None = None


check_fields("AssetSummary", AssetSummary.__struct_fields__)


class ExactAssetSummary(AssetSummary, frozen=True, gc=False):
    """An asset whose `created_at` has more than 6 fractional digits of seconds, or falls in a leap second
    (`23:59:60`, held as `23:59:59.999999`): `created_at` is the
    instant truncated to the microsecond (what Python and DuckDB hold), `created_at_text` the exact text
    the server sent (RFC 3339 allows any number of digits). Made by the client, never decoded.

    Truncated, not rounded (msgspec rounds): truncation keeps the listing's order whether the server
    sorts by the exact instant or by its microseconds (values of one microsecond become a tie, which
    the sync handles), and never moves an asset into a later microsecond than the server's."""

    created_at_text: str = ""


_SUB_MICROSECOND = re.compile(rb'"created_at"\s*:\s*"[^"]*?:[0-9]{2}\.[0-9]{7}')
_LEAP_SECOND = re.compile(
    rb'("created_at"\s*:\s*"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}):60(?:\.[0-9]+)?'
)
_LEAP_SECOND_TEXT = re.compile(r"[Tt ][0-9]{2}:[0-9]{2}:60")


def held_leap_seconds(body: bytes) -> bytes:
    """The body with each `created_at` in a leap second (`23:59:60`, which RFC 3339 allows and Python's
    `datetime` cannot hold) as the last microsecond before it (`23:59:59.999999`): the truncation
    `ExactAssetSummary` makes, which keeps the order; `with_exact_times` then keeps the exact text."""
    if b":60" not in body:
        return body
    return _LEAP_SECOND.sub(rb"\1:59.999999", body)


"""A body that may hold a `created_at` finer than a microsecond (one C-level search a page)."""


class _CreatedAt(msgspec.Struct, frozen=True):
    id: Any = None
    created_at: Any = None


class _CreatedAtPage(msgspec.Struct, frozen=True):
    items: list[_CreatedAt]


_CREATED_AT_DECODER = msgspec.json.Decoder(_CreatedAtPage)
_FRACTION = re.compile(r"\.([0-9]+)")


def exact_created_at(text: str) -> bool:
    """Whether an RFC 3339 date-time text is held exactly at microseconds (digits past 6 all zero)."""
    if _LEAP_SECOND_TEXT.search(text):
        return False
    fraction = _FRACTION.search(text)
    return fraction is None or not fraction[1][6:].strip("0")


def with_exact_times(page: AssetPage, body: bytes) -> AssetPage:
    """The page with each item whose `created_at` is finer than a microsecond as `ExactAssetSummary`.

    The common page (no such value) costs one regex search of the body and is returned as it is."""
    if not _SUB_MICROSECOND.search(body) and not (b":60" in body and _LEAP_SECOND.search(body)):
        return page
    try:
        loose = _CREATED_AT_DECODER.decode(body)
    except (msgspec.ValidationError, msgspec.DecodeError):  # pragma: no cover - the page decoded before
        return page
    texts = {
        item.id: item.created_at
        for item in loose.items
        if isinstance(item.created_at, str) and not exact_created_at(item.created_at)
    }
    if not texts:
        return page
    items = [_exact(item, texts[item.id]) if item.id in texts else item for item in page.items]
    return msgspec.structs.replace(page, items=items)


def _exact(item: AssetSummary, text: str) -> ExactAssetSummary:
    values = msgspec.structs.asdict(item)
    if not _LEAP_SECOND_TEXT.search(text):  # a leap second was decoded as its last microsecond before
        values["created_at"] = msgspec.convert(_FRACTION.sub(_microseconds, text, count=1), AwareDatetime)
    return ExactAssetSummary(**values, created_at_text=text)


def _microseconds(fraction: re.Match[str]) -> str:
    return "." + fraction[1][:6]


class OffContractItem(msgspec.Struct, frozen=True, gc=False):
    """One item of an otherwise well-formed page that breaks the contract, read as far as it can be.

    `index` is its position on the page. `asset_id` and `project_id` are canonical lowercase UUID text when
    the item's value parses as a UUID at all (an upper-case id still names its asset), else None; `state`
    and `created_at` are set when they decode, else None. `field` names the first value found
    off-contract (`duration_seconds`, or `$` when the item is not even an object), `value` shows it as
    the server sent it, escaped and cut short (`shown_value`: never an `upload_url`, which can hold a
    signed URL), `problem` says which rule it breaks, and `request_id` is the response's `X-Request-Id`.
    """

    index: int
    asset_id: str | None
    project_id: str | None
    state: AssetState | None
    created_at: datetime | None
    field: str
    value: str
    problem: str
    request_id: str | None = None
    digest: str = ""
    """A hash of the item's bytes: tells one unreadable item from another without quoting it."""

    def describe(self) -> str:
        """One line naming the asset, the field, the value and the request id (no secret)."""
        asset = self.asset_id if self.asset_id is not None else f"(unreadable id, item {self.index})"
        return (
            f"asset {asset}: {self.field} = {self.value} is off-contract ({self.problem}; "
            f"request id {self.request_id or 'none'})"
        )


Count = Annotated[int, msgspec.Meta(ge=0)]
"""A number of assets: `total` counts the matches of a filter, so a negative one is off-contract (the page
is refused as malformed, naming the request id)."""


class AssetPage(msgspec.Struct, frozen=True, gc=False):
    """One page of the listing, newest first; `total` counts every match across all pages."""

    items: list[AssetSummary]
    total: Count
    limit: int
    offset: int
    request_id: str | None = None
    """The server's `X-Request-Id` for the response this page came from (set by the client, not the body)."""
    off_contract: tuple[OffContractItem, ...] = ()
    """Items the contract refuses, left out of `items` (set by the client when asked to report them rather
    than refuse the page; never read from the body)."""


class ErrorFieldDetail(msgspec.Struct, frozen=True):
    """Per-field validation failure on a single request field."""

    field: str
    message: str


class ErrorBody(msgspec.Struct, frozen=True):
    """The inner `error` object of every error response."""

    code: str
    message: str
    fields: list[ErrorFieldDetail] | None = None


class ErrorResponse(msgspec.Struct, frozen=True):
    """The envelope every error response returns."""

    error: ErrorBody


PAGE_DECODER = msgspec.json.Decoder(AssetPage)
ERROR_DECODER = msgspec.json.Decoder(ErrorResponse)


class _LoosePage(msgspec.Struct, frozen=True):
    """A page whose items are kept undecoded: its shape is checked, each item's contract later."""

    items: list[msgspec.Raw]
    total: Count
    limit: int
    offset: int


_LOOSE_PAGE_DECODER = msgspec.json.Decoder(_LoosePage)
_ITEM_DECODER = msgspec.json.Decoder(AssetSummary)
_SHOWN_CHARACTERS = 80
_NOT_SHOWN = {"upload_url": "(not shown: it can hold a signed URL)"}
_PATH = re.compile(r" - at `\$(?:\.([^`]*))?`$")
_MISSING = re.compile(r"missing required field `([^`]*)`")
_REGEX = re.compile(r"matching regex '.*'", re.DOTALL)


def split_off_contract(body: bytes, request_id: str | None) -> AssetPage:
    """Decode a page item by item: the items the contract allows, and those it refuses as `off_contract`.

    For a page the strict decoder refused. Raises `msgspec.ValidationError` or `msgspec.DecodeError` when
    the page itself is malformed (not JSON, `items` or `total` missing or mistyped), and the first
    problem when every item is on contract (the problem lies outside the items).
    """
    loose = _LOOSE_PAGE_DECODER.decode(body)
    items: list[AssetSummary] = []
    refused: list[OffContractItem] = []
    for index, raw in enumerate(loose.items):
        try:
            item = _ITEM_DECODER.decode(raw)
        except (msgspec.ValidationError, msgspec.DecodeError) as error:
            refused.append(_off_contract(index, raw, str(error), request_id))
            continue
        misshapen = [name for name in ("id", "project_id") if not UUID_TEXT.fullmatch(getattr(item, name))]
        if misshapen:
            refused.append(
                _off_contract(
                    index, raw, f"not a lowercase UUID - at `$.{misshapen[0]}`", request_id, item=item
                )
            )
            continue
        items.append(item)
    return AssetPage(
        items, loose.total, loose.limit, loose.offset, request_id=request_id, off_contract=tuple(refused)
    )


def shown_value(field: str, value: object) -> str:
    """A value as errors show it: `repr` (control and invisible characters escaped), cut to 80 characters;
    fields that can hold a secret are never shown."""
    if field in _NOT_SHOWN:
        return _NOT_SHOWN[field]
    text = repr(value)
    if len(text) > _SHOWN_CHARACTERS:
        text = f"{text[: _SHOWN_CHARACTERS - 3]}... ({len(text)} characters)"
    return text


def _off_contract(
    index: int, raw: msgspec.Raw, message: str, request_id: str | None, item: AssetSummary | None = None
) -> OffContractItem:
    """What can be read of a refused item, and which of its values broke which rule."""
    try:
        values: Any = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        values = None
    fields: dict[str, Any] = values if isinstance(values, dict) else {}
    missing = _MISSING.search(message)
    located = _PATH.search(message)
    if missing:
        field, value = missing[1], "(missing)"
    elif located and located[1]:
        field = located[1]
        top = field.split(".")[0].split("[")[0]
        value = shown_value(top, fields.get(top)) if top in fields else "(missing)"
    else:
        field = "$"
        value = shown_value("$", values if values is not None else bytes(raw).decode("utf-8", "replace"))
    problem = _REGEX.sub("matching the spec's pattern", _PATH.sub("", message))
    if len(problem) > 2 * _SHOWN_CHARACTERS:
        problem = problem[: 2 * _SHOWN_CHARACTERS - 3] + "..."
    return OffContractItem(
        index=index,
        asset_id=_uuid_text(fields.get("id")),
        project_id=_uuid_text(fields.get("project_id")),
        state=_state(fields.get("state")),
        created_at=item.created_at if item is not None else _created_at(fields.get("created_at")),
        field=field,
        value=value,
        problem=problem,
        request_id=request_id,
        digest=hashlib.blake2b(bytes(raw), digest_size=16).hexdigest(),
    )


def _uuid_text(value: object) -> str | None:
    """`value` as canonical UUID text when it is a UUID in any form `uuid.UUID` reads, else None."""
    if not isinstance(value, str):
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


def _state(value: object) -> AssetState | None:
    return AssetState(value) if isinstance(value, str) and value in _STATES else None


_STATES = frozenset(state.value for state in AssetState)


def _created_at(value: object) -> datetime | None:
    try:
        return msgspec.convert(value, AwareDatetime)
    except msgspec.ValidationError:
        return None


def misshapen_ids(page: AssetPage) -> str | None:
    """The first id on the page that is not canonical lowercase UUID text (with its JSON path), or None."""
    values = [item.id for item in page.items]
    values.extend({item.project_id for item in page.items})
    lines = "\n".join(values) + "\n"
    if len(lines) == 37 * len(values) and _UUID_LINES.fullmatch(lines):
        return None  # one regex pass per page: the common case stays cheap
    for index, item in enumerate(page.items):
        for name, value in (("id", item.id), ("project_id", item.project_id)):
            if not UUID_TEXT.fullmatch(value):
                return f"$.items[{index}].{name} = {value!r}"
    return None  # pragma: no cover - the fast check and this loop test the same rule

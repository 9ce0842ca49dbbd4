"""Typed models of the `GET /v1/assets` contract (openapi-list-assets.yaml), decoded by msgspec.

msgspec validates the JSON bytes straight into frozen structs (types, enums, nullability, required
fields, time zones and the duration pattern); `misshapen_ids` adds the one rule a struct cannot say
cheaply: ids are canonical lowercase UUID text. Ids stay strings: they are compared, hashed and stored far
more often than parsed, and `str` does all three several times faster than `uuid.UUID`.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated

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


class AssetPage(msgspec.Struct, frozen=True, gc=False):
    """One page of the listing, newest first; `total` counts every match across all pages."""

    items: list[AssetSummary]
    total: int
    limit: int
    offset: int
    request_id: str | None = None
    """The server's `X-Request-Id` for the response this page came from (set by the client, not the body)."""


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

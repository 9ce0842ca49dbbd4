"""Typed models of the `GET /v1/assets` contract (openapi-list-assets.yaml), pydantic v2."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Annotated
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictInt, StrictStr


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


DurationSeconds = Annotated[Decimal | None, Field(allow_inf_nan=False)]
"""A decimal string in the spec (e.g. '324.412'); parsed exactly from the JSON text, never via a float."""


class AssetSummary(BaseModel):
    """One asset as the listing returns it; unknown extra fields are tolerated and dropped."""

    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)

    id: UUID
    project_id: UUID
    type: AssetType | None
    state: AssetState
    extension: StrictStr | None
    size_bytes: StrictInt | None
    content_type: StrictStr | None
    duration_seconds: DurationSeconds = Field(...)
    language: StrictStr | None
    error_code: StrictStr | None = None
    error_message: StrictStr | None = None
    created_at: AwareDatetime
    upload_url: StrictStr | None = None


class AssetPage(BaseModel):
    """One page of the listing, newest first; `total` counts every match across all pages."""

    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)

    items: list[AssetSummary]
    total: StrictInt
    limit: StrictInt
    offset: StrictInt
    request_id: str | None = Field(default=None, exclude=True)
    """The server's `X-Request-Id` for the response this page came from (not part of the body)."""


class ErrorFieldDetail(BaseModel):
    """Per-field validation failure on a single request field."""

    model_config = ConfigDict(extra="ignore")

    field: str
    message: str


class ErrorBody(BaseModel):
    """The inner `error` object of every error response."""

    model_config = ConfigDict(extra="ignore")

    code: str
    message: str
    fields: list[ErrorFieldDetail] | None = None


class ErrorResponse(BaseModel):
    """The envelope every error response returns."""

    model_config = ConfigDict(extra="ignore")

    error: ErrorBody

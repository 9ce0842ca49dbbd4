"""The Roughy HTTP client: transport, retries, typed models and errors; no Dagster, no DuckDB."""

from .client import DEFAULT_BASE_URL, AssetWalk, ClientStats, RoughyClient, Timeouts
from .errors import (
    FieldError,
    RoughyAPIError,
    RoughyAuthError,
    RoughyConnectionError,
    RoughyDeadlineError,
    RoughyError,
    RoughyNotFoundError,
    RoughyProtocolError,
    RoughyRateLimitError,
    RoughyServerError,
    RoughyValidationError,
)
from .models import STATE_FLOW, AssetPage, AssetState, AssetSummary, AssetType
from .retry import RetryPolicy

__all__ = [
    "DEFAULT_BASE_URL",
    "STATE_FLOW",
    "AssetPage",
    "AssetState",
    "AssetSummary",
    "AssetType",
    "AssetWalk",
    "ClientStats",
    "FieldError",
    "RetryPolicy",
    "RoughyAPIError",
    "RoughyAuthError",
    "RoughyClient",
    "RoughyConnectionError",
    "RoughyDeadlineError",
    "RoughyError",
    "RoughyNotFoundError",
    "RoughyProtocolError",
    "RoughyRateLimitError",
    "RoughyServerError",
    "RoughyValidationError",
    "Timeouts",
]

"""roughy-dagster: sync Roughy's media-asset listing into DuckDB with Dagster, and react to state changes."""

from ._version import __version__
from .client import (
    AssetPage,
    AssetState,
    AssetSummary,
    AssetType,
    AssetWalk,
    RetryPolicy,
    RoughyAPIError,
    RoughyAuthError,
    RoughyClient,
    RoughyConnectionError,
    RoughyError,
    RoughyNotFoundError,
    RoughyProtocolError,
    RoughyRateLimitError,
    RoughyServerError,
    RoughyValidationError,
    Timeouts,
)
from .dagster_layer.resource import RoughyResource

__all__ = [
    "AssetPage",
    "AssetState",
    "AssetSummary",
    "AssetType",
    "AssetWalk",
    "RetryPolicy",
    "RoughyAPIError",
    "RoughyAuthError",
    "RoughyClient",
    "RoughyConnectionError",
    "RoughyError",
    "RoughyNotFoundError",
    "RoughyProtocolError",
    "RoughyRateLimitError",
    "RoughyResource",
    "RoughyServerError",
    "RoughyValidationError",
    "Timeouts",
    "__version__",
]

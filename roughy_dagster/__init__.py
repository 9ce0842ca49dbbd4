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
from .project_sync import sync_project
from .store import AssetStore, SyncReport

__all__ = [
    "AssetPage",
    "AssetState",
    "AssetStore",
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
    "SyncReport",
    "Timeouts",
    "__version__",
    "sync_project",
]


def __getattr__(name: str) -> object:
    """Import the Dagster layer only when asked for, so plain scripts need not load Dagster."""
    if name == "RoughyResource":
        from .dagster_layer.resource import RoughyResource

        return RoughyResource
    raise AttributeError(f"module 'roughy_dagster' has no attribute {name!r}")

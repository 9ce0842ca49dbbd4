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
    "DagsterRoughyTranslator",
    "RetryPolicy",
    "RoughyAPIError",
    "RoughyAssetEvent",
    "RoughyAuthError",
    "RoughyClient",
    "RoughyComponent",
    "RoughyConfigurationError",
    "RoughyConnectionError",
    "RoughyError",
    "RoughyNotFoundError",
    "RoughyProtocolError",
    "RoughyRateLimitError",
    "RoughyResource",
    "RoughyServerError",
    "RoughySettings",
    "RoughySyncConfig",
    "RoughyValidationError",
    "SyncReport",
    "Timeouts",
    "__version__",
    "build_project_discovery_sensor",
    "build_roughy_assets",
    "build_roughy_defs",
    "build_roughy_state_sensor",
    "sync_project",
]


_DAGSTER_NAMES = {
    "RoughyResource": "resource",
    "RoughyComponent": "component",
    "DagsterRoughyTranslator": "assets",
    "build_roughy_assets": "assets",
    "RoughySyncConfig": "assets",
    "build_roughy_defs": "definitions",
    "RoughySettings": "settings",
    "RoughyConfigurationError": "settings",
    "build_roughy_state_sensor": "state_sensor",
    "RoughyAssetEvent": "state_sensor",
    "build_project_discovery_sensor": "scheduling",
}


def __getattr__(name: str) -> object:
    """Import the Dagster layer only when one of its names is asked for: plain scripts need no Dagster."""
    module = _DAGSTER_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'roughy_dagster' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f".dagster_layer.{module}", __name__), name)

"""roughy-dagster: sync Roughy's media-asset listing into DuckDB with Dagster, and react to state changes.

The public API is exactly the names in `__all__`, importable from here. The modules beneath
(`client`, `sync`, `store`, `dagster_layer`) are private: their layout may change without notice.
`roughy_dagster.components` (the dg registry module) and `roughy_dagster.emulator` (a test tool) are the
two modules meant to be named directly.
"""

from typing import TYPE_CHECKING

from ._version import __version__
from .account_sync import AccountSyncReport, sync_account
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
    RoughyDeadlineError,
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
from .store.readers import connect

__all__ = [
    "ROUGHY_POOL",
    "AccountSyncReport",
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
    "RoughyDeadlineError",
    "RoughyError",
    "RoughyNotFoundError",
    "RoughyProtocolError",
    "RoughyRateLimitError",
    "RoughyResource",
    "RoughyServerError",
    "RoughySettings",
    "RoughySyncConfig",
    "RoughyTable",
    "RoughyValidationError",
    "SyncReport",
    "Timeouts",
    "__version__",
    "build_project_discovery_sensor",
    "build_roughy_assets",
    "build_roughy_defs",
    "build_roughy_project_discovery_sensor",
    "build_roughy_state_sensor",
    "connect",
    "record_reaction",
    "roughy_assets",
    "roughy_project_partitions",
    "roughy_projects_partitions_def",
    "sync_account",
    "sync_project",
]


if TYPE_CHECKING:  # what the lazily imported names are, for type checkers
    from .dagster_layer.assets import (
        RoughySyncConfig,
        build_roughy_assets,
        roughy_assets,
        roughy_project_partitions,
        roughy_projects_partitions_def,
    )
    from .dagster_layer.component import RoughyComponent
    from .dagster_layer.definitions import build_roughy_defs
    from .dagster_layer.reactions import ROUGHY_POOL, record_reaction
    from .dagster_layer.resource import RoughyResource
    from .dagster_layer.scheduling import (
        build_project_discovery_sensor,
        build_roughy_project_discovery_sensor,
    )
    from .dagster_layer.settings import RoughyConfigurationError, RoughySettings
    from .dagster_layer.state_sensor import RoughyAssetEvent, build_roughy_state_sensor
    from .dagster_layer.tables import RoughyTable
    from .dagster_layer.translator import DagsterRoughyTranslator

_DAGSTER_NAMES = {
    "RoughyResource": "resource",
    "RoughyComponent": "component",
    "DagsterRoughyTranslator": "translator",
    "RoughyTable": "tables",
    "build_roughy_assets": "assets",
    "roughy_assets": "assets",
    "roughy_project_partitions": "assets",
    "roughy_projects_partitions_def": "assets",
    "build_roughy_project_discovery_sensor": "scheduling",
    "RoughySyncConfig": "assets",
    "build_roughy_defs": "definitions",
    "RoughySettings": "settings",
    "RoughyConfigurationError": "settings",
    "build_roughy_state_sensor": "state_sensor",
    "RoughyAssetEvent": "state_sensor",
    "build_project_discovery_sensor": "scheduling",
    "record_reaction": "reactions",
    "ROUGHY_POOL": "reactions",
}


def __getattr__(name: str) -> object:
    """Import the Dagster layer only when one of its names is asked for: plain scripts need no Dagster."""
    module = _DAGSTER_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'roughy_dagster' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f".dagster_layer.{module}", __name__), name)

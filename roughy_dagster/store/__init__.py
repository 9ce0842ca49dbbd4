"""The DuckDB store of synced assets: schema, migrations, snapshot reads and one-transaction writes."""

from .errors import RoughySchemaError, RoughyStoreError, RoughyStoreLockedError
from .schema import CURRENT_VERSION
from .store import AssetStore, SyncReport

__all__ = [
    "CURRENT_VERSION",
    "AssetStore",
    "RoughySchemaError",
    "RoughyStoreError",
    "RoughyStoreLockedError",
    "SyncReport",
]

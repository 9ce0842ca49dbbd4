"""The sync engine: plans listing requests and works out what changed remotely; no DuckDB, no Dagster."""

from .engine import SyncEngine
from .model import Deletion, LocalAsset, LocalSnapshot, RemoteObservation

__all__ = ["Deletion", "LocalAsset", "LocalSnapshot", "RemoteObservation", "SyncEngine"]

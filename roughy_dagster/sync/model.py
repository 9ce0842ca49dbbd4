"""Plain data the sync engine reads (the local snapshot) and produces (what it observed remotely)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

import pyarrow as pa

from ..client import AssetState

REACHABLE: dict[AssetState, frozenset[AssetState]] = {
    AssetState.PENDING_UPLOAD: frozenset(AssetState),
    AssetState.PROCESSING: frozenset(AssetState) - {AssetState.PENDING_UPLOAD},
    # The docs draw only pending_payment -> ready; failed is kept reachable so that a surprise there can
    # never make a live asset look deleted.
    AssetState.PENDING_PAYMENT: frozenset({AssetState.PENDING_PAYMENT, AssetState.READY, AssetState.FAILED}),
    AssetState.READY: frozenset({AssetState.READY}),
    AssetState.FAILED: frozenset({AssetState.FAILED}),
}
"""The states an asset in a given state can be in later (itself included)."""


def created_us(moment: datetime) -> int:
    """A timestamp as integer microseconds since the epoch: the order key of the listing."""
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond


@dataclass(frozen=True)
class LocalAsset:
    """What the engine needs of a live stored asset: its id, last known state and creation time."""

    id: UUID
    state: AssetState
    created_us: int


@dataclass
class LocalSnapshot:
    """The stored view of one project at the start of a sync."""

    live: dict[UUID, LocalAsset] = field(default_factory=dict)
    watermark_us: int | None = None
    """The newest `created_at` ever stored for the project (deleted rows included); None when empty."""


@dataclass(frozen=True, slots=True)
class Sighting:
    """An asset as one page showed it; `seq` orders the requests of one sync, `row` finds its fields."""

    asset_id: UUID
    state: AssetState
    created_us: int
    seq: int
    row: int


@dataclass(frozen=True)
class Deletion:
    """A proof that an asset is gone: absent, in flow order, from every state it could have reached."""

    asset_id: UUID
    seq: int
    observed_at: datetime


@dataclass
class RemoteObservation:
    """Everything one sync learned from the API, ready to be written in one transaction."""

    project_id: UUID
    mode: str
    started_at: datetime
    finished_at: datetime
    sightings: dict[UUID, Sighting]
    rows: pa.Table
    """One row per sighting (its fields, `OBSERVATION_SCHEMA`): what the store writes."""
    deletions: dict[UUID, Deletion]
    remote_totals: dict[AssetState, int]
    unresolved: set[UUID]
    verified: bool
    requests: int
    pages: int
    retries: int

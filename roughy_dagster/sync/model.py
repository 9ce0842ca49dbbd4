"""Plain data the sync engine reads (the local snapshot) and produces (what it observed remotely)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import msgspec
import pyarrow as pa

from ..client import AssetState
from ..client.models import OffContractItem
from ..client.paging import created_us as created_us  # re-exported: the listing's order key

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


class LocalAsset(msgspec.Struct, frozen=True, gc=False):
    """What the engine needs of a live stored asset: its id, last known state and creation time.

    A msgspec struct without garbage-collector tracking (it holds no references that could form a
    cycle): a sync keeps one per stored asset, and tracked objects by the hundred thousand make every
    full collection pass over them.
    """

    id: str
    state: AssetState
    created_us: int


@dataclass
class LocalSnapshot:
    """The stored view of one project at the start of a sync."""

    live: dict[str, LocalAsset] = field(default_factory=dict)
    watermark_us: int | None = None
    """The newest `created_at` ever stored for the project (deleted rows included); None when empty."""


@dataclass(frozen=True)
class Deletion:
    """A proof that an asset is gone: absent, in flow order, from every state it could have reached."""

    asset_id: str
    seq: int
    observed_at: datetime


@dataclass
class RemoteObservation:
    """Everything one sync learned from the API, ready to be written in one transaction."""

    project_id: str | None
    """The project read, or None when the account-wide lists were read."""
    mode: str
    started_at: datetime
    finished_at: datetime
    rows: pa.Table
    """Every asset row of every page read (`OBSERVATION_SCHEMA`); the store writes those not `superseded`
    (which also mark each asset's sighting that counts: nothing else per asset outlives the network phase)."""
    deletions: dict[str, Deletion]
    remote_totals: dict[AssetState, int]
    unresolved: set[str]
    verified: bool
    requests: int
    pages: int
    retries: int
    reason: str = ""
    """Why `verified` is false, in words (empty when verified)."""
    off_contract: dict[str, OffContractItem] = field(default_factory=dict)
    """Assets some page showed with a value the contract refuses, by the id the sync knew each by: none
    of their rows is written (see `sync.quarantine`); the store marks their projects unverified.
    `verified` above is about the rest."""

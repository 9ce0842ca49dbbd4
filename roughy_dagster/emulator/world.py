"""The emulator's world: projects and assets with per-filter sorted indexes, mutated under one lock.

Imports nothing of the rest of the package: the emulator must stay an independent model of the API.
"""

from __future__ import annotations

import bisect
import json
import random
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

STATES = ("pending_upload", "processing", "pending_payment", "ready", "failed")
FORWARD = {
    "pending_upload": ("processing",),
    "processing": ("pending_payment", "ready", "failed"),
    "pending_payment": ("ready",),
    "ready": (),
    "failed": (),
}
MEDIA = (
    ("audio", "mp3", "audio/mpeg"),
    ("audio", "m4a", "audio/mp4"),
    ("audio", "wav", "audio/wav"),
    ("video", "mp4", "video/mp4"),
    ("video", "mov", "video/quicktime"),
)
LANGUAGES = (None, None, "en", "de", "fr", "es", "ja")
FAILURES = (
    ("unreadable_media", "ffprobe could not read the uploaded bytes."),
    ("unsupported_codec", "The media uses a codec Roughy cannot decode."),
    ("empty_media", "The media has no audio or video stream."),
)
SEED_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
EDGE_DURATIONS = (
    "324.41200000000003",  # a float's repr: more digits than DECIMAL(38, 9) keeps
    "0.0000000001",  # below the 9 decimals: DuckDB would store 0
    "123456789012345678901234567890",  # 30 digits: more than DECIMAL(38, 9) holds
    "99999999999999999999999999999.999999999",  # the largest that fits
    "000012.500000000000",  # leading and trailing zeros: fits
    "-0",
    "+.5",
    "5.",
)
"""`duration_seconds` values the spec's pattern allows, at and beyond what a DECIMAL(38, 9) column holds."""
EDGE_SIZES = (2**63, 2**64, 10**40, 2**63 - 1, -(2**63), -1, 0)
"""`size_bytes` values the spec allows (an integer, unbounded), at and beyond a BIGINT's range."""
EDGE_CREATED_AT_DIGITS = ("9", "0001", "5", "4999999", "999999999999", "000")
"""Digits served after `created_at`'s microseconds: finer than a TIMESTAMPTZ holds (`000`: exact)."""

SortKey = tuple[int, str]


class _Omit:
    def __repr__(self) -> str:
        return "OMIT"


OMIT: object = _Omit()
"""For `World.serve_raw`: leave the field out of the served asset."""


@dataclass
class Asset:
    """One emulated asset; `sort_key` orders the listing (newest first = descending key)."""

    id: str
    project_id: str
    created_at: datetime
    state: str = "pending_upload"
    type: str | None = None
    extension: str | None = None
    content_type: str | None = None
    size_bytes: int | None = None
    duration_seconds: str | None = None
    language: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    upload_url: str | None = None
    created_at_digits: str = ""
    """Fractional digits of `created_at` served after its microseconds (RFC 3339 allows any number);
    the listing's order stays by microseconds (`World.put_edge_values`)."""
    tie_rank: str = field(default="", repr=False)
    """Orders ties in place of the id when set (a `World(ties_by_id=False)`): never serialized."""
    wire: dict[str, object] = field(default_factory=dict, repr=False)
    """Values served in place of the asset's own, as given (`OMIT`: the field left out); the asset keeps
    its place in the listing (`World.serve_raw`)."""
    _json: bytes | None = field(default=None, repr=False)

    @property
    def sort_key(self) -> SortKey:
        """`created_at` in microseconds, then the tie-break (id, or a hidden rank): a stable total order."""
        return (int(self.created_at.timestamp() * 1_000_000), self.tie_rank or self.id)

    def to_dict(self) -> dict[str, object]:
        """The asset as the API serializes it (its own values: `wire` aside)."""
        return {
            "id": self.id,
            "project_id": self.project_id,
            "type": self.type,
            "state": self.state,
            "extension": self.extension,
            "size_bytes": self.size_bytes,
            "content_type": self.content_type,
            "duration_seconds": self.duration_seconds,
            "language": self.language,
            "error_code": self.error_code,
            "error_message": self.error_message,
            "created_at": self.created_at.strftime("%Y-%m-%dT%H:%M:%S.%f") + self.created_at_digits + "Z",
            "upload_url": self.upload_url,
        }

    def to_json(self) -> bytes:
        """The serialized asset, cached until the asset changes."""
        if self._json is None:
            values = self.to_dict() | self.wire
            served = {name: value for name, value in values.items() if value is not OMIT}
            self._json = json.dumps(served, separators=(",", ":")).encode()
        return self._json


class SortedIndex:
    """Asset sort keys of one filter (project and/or state), ascending; pages are read from the end."""

    def __init__(self) -> None:
        self.keys: list[SortKey] = []

    def add(self, key: SortKey) -> None:
        """Insert a key in order."""
        bisect.insort(self.keys, key)

    def remove(self, key: SortKey) -> None:
        """Remove a key that is present."""
        position = bisect.bisect_left(self.keys, key)
        if position < len(self.keys) and self.keys[position] == key:
            del self.keys[position]

    def page_desc(self, offset: int, limit: int) -> list[SortKey]:
        """The keys at `offset`..`offset+limit` of the newest-first order."""
        total = len(self.keys)
        stop = total - offset
        if stop <= 0:
            return []
        start = max(0, stop - limit)
        return self.keys[start:stop][::-1]


class World:
    """Every project and asset of one emulated account, safe to read and mutate from several threads."""

    def __init__(
        self,
        *,
        seed: int = 0,
        upload_base_url: str = "http://127.0.0.1/v1/uploads",
        ties_by_id: bool = True,
    ) -> None:
        self.rng = random.Random(seed)
        self.ties_by_id = ties_by_id
        """False: ties are ordered by a hidden random rank, not by id (the spec names no second key)."""
        self.lock = threading.RLock()
        self.upload_base_url = upload_base_url
        self.projects: list[str] = []
        self.assets: dict[str, Asset] = {}
        self._by_key: dict[SortKey, Asset] = {}
        self._indexes: dict[tuple[str | None, str | None], SortedIndex] = {}
        self.clock = SEED_EPOCH
        self.follow_real_time = False
        """When set, new assets get the wall-clock time, as on a live server, not the seeded clock."""
        self.deleted_ids: set[str] = set()
        self.history: list[tuple[str, str]] = []
        """Every (asset id, state) an asset entered, in order: the truth soak tests compare sensors with."""

    # -- building ----------------------------------------------------------------------------------------

    @classmethod
    def seeded(
        cls,
        *,
        seed: int = 0,
        projects: int = 3,
        assets_per_project: int = 200,
        tie_every: int = 0,
        edge_values_every: int = 0,
        ties_by_id: bool = True,
    ) -> World:
        """A reproducible world: the same arguments always give the same ids, times, states and fields.

        `tie_every` > 0 gives every n-th asset the `created_at` of the one before it, so ties occur.
        `edge_values_every` > 0 gives every n-th asset that has a duration or size the next of
        `EDGE_DURATIONS` / `EDGE_SIZES` (values the spec allows at the edges of what columns hold), and
        every n-th asset `created_at` digits beyond microseconds (`EDGE_CREATED_AT_DIGITS`).
        `ties_by_id=False` orders ties by a hidden rank instead of the id.
        """
        world = cls(seed=seed, ties_by_id=ties_by_id)
        with world.lock:
            for _ in range(projects):
                project_id = world.add_project()
                for index in range(assets_per_project):
                    recent = index >= assets_per_project - min(40, max(5, assets_per_project // 50))
                    state = STATES[index % len(STATES)] if recent else world._seed_state()
                    tie = tie_every > 0 and index > 0 and index % tie_every == 0
                    world.add_asset(project_id, state=state, same_time_as_previous=tie)
            if edge_values_every > 0:
                world.put_edge_values(edge_values_every)
        return world

    def put_edge_values(self, every: int) -> list[Asset]:
        """Give every `every`-th asset (in creation order) edge values of duration and size, and
        `created_at` digits beyond microseconds (`EDGE_CREATED_AT_DIGITS`); returns those given a duration
        or size."""
        changed = []
        with self.lock:
            for index, asset in enumerate(list(self.assets.values())[::every]):
                fields: dict[str, object] = {}
                if asset.duration_seconds is not None:
                    fields["duration_seconds"] = EDGE_DURATIONS[index % len(EDGE_DURATIONS)]
                if asset.size_bytes is not None:
                    fields["size_bytes"] = EDGE_SIZES[index % len(EDGE_SIZES)]
                asset.created_at_digits = EDGE_CREATED_AT_DIGITS[index % len(EDGE_CREATED_AT_DIGITS)]
                asset._json = None
                if fields:
                    changed.append(self.set_fields(asset.id, **fields))
        return changed

    def set_fields(self, asset_id: str, **fields: object) -> Asset:
        """Set fields of an asset to any values, as a server would send them (no rule is checked).

        For values at and beyond the edges of the contract (e.g. Arabic-Indic digits in a duration); the
        id, project, state and `created_at` (which index the asset) cannot be set this way.
        """
        fixed = {"id", "project_id", "state", "created_at"} & set(fields)
        if fixed:
            raise ValueError(f"set_fields cannot change {', '.join(sorted(fixed))}")
        with self.lock:
            asset = self.assets[asset_id]
            for name, value in fields.items():
                if not hasattr(asset, name) or name.startswith("_"):
                    raise ValueError(f"an asset has no field {name!r}")
                setattr(asset, name, value)
            asset._json = None
            return asset

    def serve_raw(self, asset_id: str, **fields: object) -> Asset:
        """Serve fields of an asset as any JSON values, any field included (`id`, `created_at`...), while
        the asset keeps its place in the listing: `duration_seconds="12.5\\n"`, `id="nope"`, or `OMIT` to
        leave a field out. `None` for a field serves `null`. `serve_raw(asset_id)` with no field serves
        the asset as it is again. What a broken server sends for one asset, on every page showing it."""
        with self.lock:
            asset = self.assets[asset_id]
            unknown = set(fields) - set(asset.to_dict())
            if unknown:
                raise ValueError(f"an asset has no field {', '.join(sorted(unknown))}")
            asset.wire = dict(fields)
            asset._json = None
            return asset

    def _seed_state(self) -> str:
        return self.rng.choices(("ready", "failed", "pending_payment"), weights=(92, 7, 1))[0]

    def new_id(self) -> str:
        """A UUIDv7-shaped id whose leading bits follow the world clock, drawn from the seeded generator."""
        millis = int(self.clock.timestamp() * 1000)
        random_bits = self.rng.getrandbits(74)
        value = (millis & ((1 << 48) - 1)) << 80 | 0x7 << 76 | (random_bits >> 62) << 64
        value |= 0b10 << 62 | (random_bits & ((1 << 62) - 1))
        return str(uuid.UUID(int=value))

    def add_project(self) -> str:
        """Create an empty project and return its id."""
        with self.lock:
            project_id = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
            self.projects.append(project_id)
            return project_id

    def tick_clock(self) -> datetime:
        """Advance the world clock by a random few seconds and return it."""
        if self.follow_real_time:
            self.clock = max(self.clock + timedelta(milliseconds=1), datetime.now(UTC))
        else:
            self.clock += timedelta(milliseconds=self.rng.randint(1, 90_000))
        return self.clock

    def add_asset(
        self,
        project_id: str,
        *,
        state: str = "pending_upload",
        created_at: datetime | None = None,
        same_time_as_previous: bool = False,
    ) -> Asset:
        """Create an asset (as if uploaded and moved on to `state`) and index it."""
        with self.lock:
            if project_id not in self.projects:
                raise KeyError(f"unknown project {project_id}")
            if created_at is None:
                created_at = self.clock if same_time_as_previous else self.tick_clock()
            asset = Asset(
                id=self.new_id(),
                project_id=project_id,
                created_at=created_at,
                language=self.rng.choice(LANGUAGES),
            )
            if not self.ties_by_id:
                asset.tie_rank = f"{self.rng.getrandbits(64):016x}"
            asset.upload_url = f"{self.upload_base_url}/{asset.id}"
            if state == "pending_upload" and self.rng.random() < 0.5:
                self._receive_first_chunk(asset)
            for step in _path_to(state):
                self._apply_transition(asset, step)
            self.assets[asset.id] = asset
            self._index(asset)
            self.history.append((asset.id, asset.state))
            return asset

    def add_tie_group(
        self, project_id: str, count: int, *, state: str = "ready", created_at: datetime | None = None
    ) -> list[Asset]:
        """Add `count` assets in `state` sharing one `created_at` (a tie group; longer than a page when
        `count` > 100). The listing orders ties by id, newest first (by a hidden rank unless `ties_by_id`)."""
        with self.lock:
            moment = created_at if created_at is not None else self.tick_clock()
            return [self.add_asset(project_id, state=state, created_at=moment) for _ in range(count)]

    # -- transitions -------------------------------------------------------------------------------------

    def _receive_first_chunk(self, asset: Asset) -> None:
        asset.type, asset.extension, asset.content_type = self.rng.choice(MEDIA)

    def _apply_transition(self, asset: Asset, new_state: str) -> None:
        """Set the fields the spec ties to `new_state`."""
        if new_state == "processing":
            if asset.type is None:
                self._receive_first_chunk(asset)
            asset.size_bytes = self.rng.randint(64, 4_000_000_000)
            asset.upload_url = None
            if self.rng.random() < 0.5:
                asset.duration_seconds = self._duration()
        elif new_state in ("pending_payment", "ready"):
            if asset.duration_seconds is None:
                asset.duration_seconds = self._duration()
        elif new_state == "failed":
            asset.duration_seconds = None
            asset.error_code, asset.error_message = self.rng.choice(FAILURES)
        asset.state = new_state
        asset._json = None

    def _duration(self) -> str:
        return f"{self.rng.randint(1, 14_400_000) / 1000:.3f}"

    def advance(self, asset_id: str, new_state: str | None = None) -> Asset:
        """Move an asset one step forward (to `new_state`, or a random allowed next state)."""
        with self.lock:
            asset = self.assets[asset_id]
            allowed = FORWARD[asset.state]
            if new_state is None:
                if not allowed:
                    raise ValueError(f"asset {asset_id} is {asset.state}: terminal")
                new_state = self.rng.choice(allowed)
            if new_state not in allowed:
                raise ValueError(f"{asset.state} -> {new_state} is not a forward transition")
            self._unindex(asset, states_only=True)
            self._apply_transition(asset, new_state)
            self._index(asset, states_only=True)
            self.history.append((asset.id, new_state))
            return asset

    def receive_first_chunk(self, asset_id: str) -> Asset:
        """Fill `type`/`extension`/`content_type` of a `pending_upload` asset, as the first chunk does."""
        with self.lock:
            asset = self.assets[asset_id]
            if asset.state == "pending_upload" and asset.type is None:
                self._receive_first_chunk(asset)
                asset._json = None
            return asset

    def delete(self, asset_id: str) -> Asset:
        """Hard-delete an asset: it simply disappears from every listing."""
        with self.lock:
            asset = self.assets.pop(asset_id)
            self._unindex(asset)
            self.deleted_ids.add(asset_id)
            return asset

    def top_up(self, project_id: str | None = None, count: int = 1) -> list[Asset]:
        """Turn the oldest `pending_payment` assets `ready`, as a credit top-up does."""
        with self.lock:
            keys = self._index_for(project_id, "pending_payment").keys[:count]
            assets = [self._by_key[key] for key in keys]
            for asset in assets:
                self.advance(asset.id, "ready")
            return assets

    def random_changes(self, count: int, *, project_id: str | None = None) -> list[str]:
        """Apply `count` random realistic changes; returns a line describing each."""
        done: list[str] = []
        with self.lock:
            for _ in range(count):
                done.append(self._random_change(project_id))
        return done

    def _random_change(self, project_id: str | None) -> str:
        project = project_id or self.rng.choice(self.projects)
        roll = self.rng.random()
        index = self._index_for(project, None)
        if roll < 0.3 or not index.keys:
            asset = self.add_asset(project, state=self.rng.choice(STATES))
            return f"new {asset.id} {asset.state}"
        if roll < 0.65:
            movable = [
                self._by_key[k]
                for state in ("pending_upload", "processing", "pending_payment")
                for k in self._index_for(project, state).keys
            ]
            if movable:
                asset = self.rng.choice(movable)
                old = asset.state
                self.advance(asset.id)
                return f"advance {asset.id} {old}->{asset.state}"
        key = index.keys[self.rng.randrange(len(index.keys))]
        asset = self.delete(self._by_key[key].id)
        return f"delete {asset.id} {asset.state}"

    # -- indexes -----------------------------------------------------------------------------------------

    def _index_for(self, project_id: str | None, state: str | None) -> SortedIndex:
        index = self._indexes.get((project_id, state))
        if index is None:
            index = self._indexes[(project_id, state)] = SortedIndex()
        return index

    def _filters(self, asset: Asset, states_only: bool) -> Iterable[tuple[str | None, str | None]]:
        yield (asset.project_id, asset.state)
        yield (None, asset.state)
        if not states_only:
            yield (asset.project_id, None)
            yield (None, None)

    def _index(self, asset: Asset, states_only: bool = False) -> None:
        key = asset.sort_key
        self._by_key[key] = asset
        for filter_key in self._filters(asset, states_only):
            self._index_for(*filter_key).add(key)

    def _unindex(self, asset: Asset, states_only: bool = False) -> None:
        key = asset.sort_key
        for filter_key in self._filters(asset, states_only):
            self._index_for(*filter_key).remove(key)
        if not states_only:
            del self._by_key[key]

    # -- reading -----------------------------------------------------------------------------------------

    def page(
        self, project_id: str | None, state: str | None, limit: int, offset: int
    ) -> tuple[list[bytes], int]:
        """Serialized items of one page and the filter's total, as of one instant."""
        with self.lock:
            index = self._index_for(project_id, state)
            keys = index.page_desc(offset, limit)
            return [self._by_key[key].to_json() for key in keys], len(index.keys)

    def listing(self, project_id: str | None = None, state: str | None = None) -> list[dict[str, object]]:
        """The whole listing of a filter, newest first, as dicts: the truth tests compare against."""
        with self.lock:
            keys = self._index_for(project_id, state).keys
            return [self._by_key[key].to_dict() for key in reversed(keys)]

    def has_project(self, project_id: str) -> bool:
        """Whether the project exists."""
        return project_id in self.projects

    def count(self, project_id: str | None = None, state: str | None = None) -> int:
        """How many assets match a filter."""
        with self.lock:
            return len(self._index_for(project_id, state).keys)


def _path_to(state: str) -> list[str]:
    """The transitions that lead from `pending_upload` to `state`."""
    paths = {
        "pending_upload": [],
        "processing": ["processing"],
        "pending_payment": ["processing", "pending_payment"],
        "ready": ["processing", "ready"],
        "failed": ["processing", "failed"],
    }
    if state not in paths:
        raise ValueError(f"unknown state {state!r}")
    return paths[state]

"""Where the state sensor keeps what it remembers: a small cursor, and the bulky part in the instance.

Dagster stores a sensor's cursor with every tick, so a cursor that grows with the account grows the
instance every tick. The state sensor's cursor is therefore a pointer of a few hundred bytes
(`{"v", "gen", "digest", "watermarks", "queued"}`), and the watcher's memory (the non-terminal assets, the
recent heads, the carried-over events) is one zlib-compressed JSON value in the Dagster instance's
key-value store (`instance.daemon_cursor_storage`, the table Dagster's own daemons keep their cursors in),
under `roughy_dagster/state_sensor/<sensor name>/<gen % 2>`. It is written only when it changed, into the
slot the cursor does not point at, so a tick whose cursor Dagster never stored leaves the stored state
intact. Without an instance (a bare `build_sensor_context()`), the memory travels inline in the cursor.

Anything that cannot be understood (hand-edited cursor, missing or mismatched value, older format) is
reported as a `Loaded.problem` and replaced by a safe start: each scope restarts from the present, and
when the cursor still names its last watermark, also reports the assets created after it (so the assets
created between the last good tick and now are not lost; run keys make any repeat harmless).
"""

from __future__ import annotations

import base64
import hashlib
import json
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
from dagster._core.storage.daemon_cursor import DaemonCursorStorage

from ..client.paging import created_us
from ..sync.watch import UnreadableState, WatchState

CURSOR_VERSION = 2
KEY_PREFIX = "roughy_dagster/state_sensor"


@dataclass
class Loaded:
    """What a tick starts from: each scope's state, the carried-over events, and what was wrong."""

    scopes: dict[str, WatchState] = field(default_factory=dict)
    queue: list[dict[str, Any]] = field(default_factory=list)
    replay_since_us: dict[str, int] = field(default_factory=dict)
    """Per scope, where a safe start replays from (its last known watermark)."""
    problem: str | None = None
    generation: int = 0
    digest: str | None = None


def _encode(body: dict[str, Any]) -> str:
    raw = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
    return base64.b64encode(zlib.compress(raw, 6)).decode("ascii")


def _decode(text: str) -> Any:
    return json.loads(zlib.decompress(base64.b64decode(text.encode("ascii"), validate=True)))


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("ascii")).hexdigest()[:16]


class SensorMemory:
    """Loads and saves the state sensor's memory for one sensor (by name) through its cursor."""

    def __init__(self, context: dg.SensorEvaluationContext, sensor_name: str) -> None:
        self.sensor_name = sensor_name
        self._storage: DaemonCursorStorage | None = None
        try:
            self._storage = context.instance.daemon_cursor_storage
        except dg.DagsterInvariantViolationError:
            self._storage = None  # a test context without an instance: keep the memory inline

    @property
    def where(self) -> str:
        """A phrase saying where the bulky state lives (for logs and docs)."""
        if self._storage is None:
            return "inline in the cursor"
        return f"the instance key-value store under {KEY_PREFIX}/{self.sensor_name}/"

    def _key(self, generation: int) -> str:
        return f"{KEY_PREFIX}/{self.sensor_name}/{generation % 2}"

    def load(self, cursor: str | None) -> Loaded:
        """Parse the cursor and fetch the memory it points at; never raises (see `Loaded.problem`)."""
        if not cursor:
            return Loaded()
        try:
            pointer = json.loads(cursor)
        except ValueError as error:
            return Loaded(problem=f"the cursor is not JSON ({error})")
        if not isinstance(pointer, dict):
            return Loaded(problem=f"the cursor is a JSON {type(pointer).__name__}, not an object")
        replay = _watermarks(pointer)
        if pointer.get("v") != CURSOR_VERSION:
            return Loaded(
                replay_since_us=replay,
                problem=f"the cursor has version {pointer.get('v')!r}, not {CURSOR_VERSION} (older format?)",
            )
        generation = pointer.get("gen")
        if not isinstance(generation, int) or isinstance(generation, bool) or generation < 0:
            return Loaded(replay_since_us=replay, problem=f"the cursor's gen {generation!r} is not a count")
        try:
            text = pointer["inline"] if "inline" in pointer else self._fetch(generation)
            if text is None:
                return Loaded(
                    replay_since_us=replay,
                    problem=f"no stored state for generation {generation} under {self._key(generation)}",
                )
            if pointer.get("digest") != _digest(text):
                return Loaded(
                    replay_since_us=replay,
                    problem=f"the stored state of generation {generation} does not match the cursor's digest",
                )
            body = _decode(text)
            if not isinstance(body, dict) or body.get("gen") != generation:
                raise UnreadableState("the stored state names another generation")
            scopes_raw = body.get("scopes")
            queue = body.get("queue", [])
            if not isinstance(scopes_raw, dict) or not isinstance(queue, list):
                raise UnreadableState("the stored state has no scopes object or no queue list")
            scopes = {str(scope): WatchState.from_json(value) for scope, value in scopes_raw.items()}
            if not all(isinstance(event, dict) and "id" in event and "state" in event for event in queue):
                raise UnreadableState("a queued event has no id or state")
        except (UnreadableState, ValueError, TypeError, zlib.error, KeyError) as error:
            return Loaded(replay_since_us=replay, problem=f"the stored state is unreadable: {error}")
        return Loaded(scopes=scopes, queue=queue, generation=generation, digest=pointer.get("digest"))

    def _fetch(self, generation: int) -> str | None:
        if self._storage is None:
            return None
        return self._storage.get_cursor_values({self._key(generation)}).get(self._key(generation))

    def save(self, loaded: Loaded, scopes: Mapping[str, WatchState], queue: list[dict[str, Any]]) -> str:
        """Store the memory if it changed and return the cursor pointing at it."""
        generation = loaded.generation + 1
        saved_scopes = {scope: state.to_json() for scope, state in scopes.items()}

        def body_for(gen: int) -> dict[str, Any]:
            return {"gen": gen, "scopes": saved_scopes, "queue": queue}

        if loaded.digest is not None:
            unchanged = _encode(body_for(loaded.generation))
            if _digest(unchanged) == loaded.digest:
                generation = loaded.generation  # a quiet tick writes nothing
        text = _encode(body_for(generation))
        pointer: dict[str, Any] = {
            "v": CURSOR_VERSION,
            "gen": generation,
            "digest": _digest(text),
            "watermarks": {
                scope: _iso(state.watermark_us) for scope, state in scopes.items() if state.watermark_us
            },
            "queued": len(queue),
        }
        if self._storage is None:
            pointer["inline"] = text
        elif generation != loaded.generation or loaded.digest is None:
            self._storage.set_cursor_values({self._key(generation): text})
        return json.dumps(pointer, separators=(",", ":"))


def _iso(moment_us: int) -> str:
    """Epoch microseconds as ISO 8601 text, exactly (no float on the way: it can be 1 us off)."""
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=moment_us)).isoformat(
        timespec="microseconds"
    )


def _watermarks(pointer: dict[str, Any]) -> dict[str, int]:
    """Per scope, the last watermark a cursor of this or the previous format names (best effort)."""
    found: dict[str, int] = {}
    marks = pointer.get("watermarks")
    if isinstance(marks, dict):
        for scope, value in marks.items():
            try:
                moment = datetime.fromisoformat(str(value))
            except ValueError:
                continue
            if moment.tzinfo is not None:
                found[str(scope)] = created_us(moment)
        return found
    for scope, value in pointer.items():  # version 1: {scope: {"watermark_us": int, ...}}
        if isinstance(value, dict) and isinstance(value.get("watermark_us"), int):
            found[str(scope)] = value["watermark_us"]
    return found

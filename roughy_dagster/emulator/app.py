"""The emulator's ASGI application: `GET /v1/assets` as the spec describes it, plus a control API.

A plain ASGI callable (no framework routing) so that a page is served in well under a millisecond of
Python and so that a fault can close the connection under uvicorn without an answer.
"""

from __future__ import annotations

import asyncio
import gzip
import itertools
import json
import threading
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qsl

from .faults import Fault, FaultPlan
from .world import STATES, World

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

LIST_PATH = "/v1/assets"
CONTROL_PREFIX = "/_emulator/"
HTML_ERROR = (
    b"<html><head><title>{status} {reason}</title></head><body><center><h1>{status} {reason}</h1>"
    b"</center><hr><center>proxy</center></body></html>"
)


class EmulatorApp:
    """Serves one `World` over HTTP, counting requests and applying planned faults."""

    def __init__(self, world: World, *, api_key: str) -> None:
        self.world = world
        self.api_key = api_key
        self.faults = FaultPlan()
        self.request_counts: Counter[str] = Counter()
        self.requests_log: list[dict[str, str]] = []
        self._counter = itertools.count(1)
        self._stats_lock = threading.Lock()
        self.before_listing: Callable[[dict[str, str]], None] | None = None
        """Called with the query before a listing is served, so tests can change the world mid-sync."""
        self.latency_ms: float = 0.0
        """Added to every listing response (awaited, so concurrent requests overlap as on a real server)."""
        self.total_bias: dict[str | None, int] = {}
        """A lie about `total`: added to the true count, per state filter (None: the unfiltered listing;
        the key "*" applies to every filter)."""
        self.ignore_offset = False
        """A broken server: every page is served from offset 0, whatever `offset` asks."""
        self.max_page_items: int | None = None
        """Short pages: at most this many items per page whatever `limit` asks (the spec allows it)."""
        self.offset_shift = 0
        """A broken server: `offset=N` is served from `max(0, N + offset_shift)` (off by one, or two)."""
        self.rotating = False
        """A broken server: the offset is taken modulo the filter's count and pages wrap around to the
        newest item, so every offset shows items (a tie group served in rotation never ends)."""
        self.total_for: Callable[[dict[str, str], int], int] | None = None
        """A per-request lie about `total`: called with the query and the true count, it returns the
        `total` sent, any integer (negative too: `total_bias` never sends one below 0)."""
        self.in_flight = 0
        """Listing requests being served right now (received, not yet answered)."""
        self.most_in_flight = 0
        """The most listing requests served at once so far (what a client kept in flight)."""

    # -- ASGI ----------------------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection event: the listing, the control API, or a 404."""
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        request_id = f"req_{next(self._counter):08d}_{uuid.uuid4().hex[:8]}"
        path: str = scope["path"]
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))
        if path.startswith(CONTROL_PREFIX):
            await self._control(scope, receive, send, path[len(CONTROL_PREFIX) :], query, request_id)
            return
        with self._stats_lock:
            self.request_counts[path] += 1
            if path == LIST_PATH:
                self.requests_log.append(query)
        if path != LIST_PATH:
            await _send_error(send, 404, "not_found", "No such route.", request_id)
            return
        with self._stats_lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await self._serve_listing(scope, send, query, request_id)
        finally:
            with self._stats_lock:
                self.in_flight -= 1

    async def _serve_listing(self, scope: Scope, send: Send, query: dict[str, str], request_id: str) -> None:
        if self.latency_ms > 0:
            await asyncio.sleep(self.latency_ms / 1000)
        if self.before_listing is not None:
            self.before_listing(query)
        fault = self.faults.take(query)
        if fault is not None and await self._inject(fault, send, request_id):
            return
        if scope["method"] != "GET":
            await _send_error(send, 405, "bad_request", "Method not allowed.", request_id)
            return
        if not self._authorized(scope):
            await _send_error(send, 401, "unauthenticated", "Missing or invalid API key.", request_id)
            return
        await self._list_assets(send, query, request_id, fault)

    def _authorized(self, scope: Scope) -> bool:
        for name, value in scope["headers"]:
            if name == b"authorization":
                return bool(value == f"Bearer {self.api_key}".encode())
        return False

    async def _list_assets(
        self, send: Send, query: dict[str, str], request_id: str, fault: Fault | None
    ) -> None:
        fields: list[dict[str, str]] = []
        project_id = query.get("project_id")
        if project_id is not None:
            try:
                project_id = str(uuid.UUID(project_id))
            except ValueError:
                fields.append({"field": "query.project_id", "message": "Input should be a valid UUID"})
        state = query.get("state")
        if state is not None and state not in STATES:
            allowed = ", ".join(f"'{s}'" for s in STATES)
            fields.append({"field": "query.state", "message": f"Input should be {allowed}"})
        limit = _parse_int(query, "limit", 20, 1, 100, fields)
        offset = _parse_int(query, "offset", 0, 0, None, fields)
        if fields:
            await _send_error(send, 422, "validation_error", "Request validation failed.", request_id, fields)
            return
        if project_id is not None and not self.world.has_project(project_id):
            await _send_error(send, 404, "not_found", "Project not found.", request_id)
            return
        served = limit if self.max_page_items is None else max(0, min(limit, self.max_page_items))
        items, total = self._page(project_id, state, served, offset)
        if fault is not None and fault.kind == "empty_page":
            items, total = [], 0
        bias = self.total_bias.get(state, self.total_bias.get("*", 0))
        total = max(0, total + bias)
        if self.total_for is not None:
            total = self.total_for(query, total)
        body = (
            b'{"items":['
            + b",".join(items)
            + b'],"total":%d,"limit":%d,"offset":%d}'
            % (
                total,
                limit,
                offset,
            )
        )
        if fault is not None and fault.kind == "encoded":
            await _send(send, 200, _encoded(fault, body), request_id, extra=[_content_encoding(fault)])
            return
        if fault is not None and fault.kind == "cut_short":
            await _send_cut_short(send, body, request_id)
            return
        if fault is not None and fault.kind in COMPRESSIONS:
            encoding = fault.kind.encode()
            await _send(
                send, 200, COMPRESSIONS[fault.kind](body), request_id, extra=[(b"content-encoding", encoding)]
            )
            return
        if fault is not None and fault.kind not in ("slow", "empty_page"):  # answers that parse as given
            body = _break_body(fault.kind, body)
        await _send(send, 200, body, request_id)

    def _page(
        self, project_id: str | None, state: str | None, limit: int, offset: int
    ) -> tuple[list[bytes], int]:
        """The items served for one request and the true count, with the offset as the server's bugs
        (`ignore_offset`, `offset_shift`, `rotating`) take it."""
        if self.ignore_offset:
            offset = 0
        offset = max(0, offset + self.offset_shift)
        if not self.rotating:
            return self.world.page(project_id, state, limit, offset)
        count = self.world.count(project_id, state)
        if count == 0:
            return [], 0
        items, total = self.world.page(project_id, state, limit, offset % count)
        while len(items) < min(limit, count):
            more, total = self.world.page(project_id, state, min(limit, count) - len(items), 0)
            items += more
        return items, total

    async def _inject(self, fault: Fault, send: Send, request_id: str) -> bool:
        """Apply a fault; True when the response was sent (or the connection dropped) here."""
        headers: list[tuple[bytes, bytes]] = []
        if fault.retry_after is not None:
            value = (
                formatdate(time.time() + fault.retry_after, usegmt=True)
                if fault.retry_after_date
                else str(int(fault.retry_after))
            )
            headers.append((b"retry-after", value.encode()))
        kind = fault.kind
        if kind == "rate_limit":
            await _send_error(send, 429, "rate_limited", "Too many requests.", request_id, headers=headers)
        elif kind == "internal":
            await _send_error(send, 500, "internal_error", "Internal server error.", request_id)
        elif kind == "unavailable":
            message = "Upstream temporarily unavailable."
            await _send_error(send, 503, "upstream_unavailable", message, request_id, headers=headers)
        elif kind in ("bad_gateway_html", "gateway_timeout_html"):
            status, reason = (
                (502, b"Bad Gateway") if kind == "bad_gateway_html" else (504, b"Gateway Timeout")
            )
            body = HTML_ERROR.replace(b"{status}", str(status).encode()).replace(b"{reason}", reason)
            await _send(send, status, body, request_id, content_type=b"text/html", extra=headers)
        elif kind == "encoded" and fault.status != 200:
            code, message = ENCODED_ERRORS.get(fault.status, ("internal_error", "Internal server error."))
            envelope = json.dumps({"error": {"code": code, "message": message}}).encode()
            headers.append(_content_encoding(fault))
            await _send(send, fault.status, _encoded(fault, envelope), request_id, extra=headers)
        elif kind == "not_json":
            await _send(send, 200, b"<html><body>Down for maintenance</body></html>", request_id)
        elif kind == "drop":
            _drop_connection(send)
        elif kind == "slow":
            await asyncio.sleep(fault.delay)
            return False
        else:
            return False  # a body fault: the page is built, then broken
        return True

    # -- control -------------------------------------------------------------------------------------------

    async def _control(
        self, scope: Scope, receive: Receive, send: Send, action: str, query: dict[str, str], request_id: str
    ) -> None:
        """A small JSON API for other processes: stats, faults, life changes and the truth."""
        payload: dict[str, Any] = {}
        if scope["method"] == "POST":
            raw = await _read_body(receive)
            payload = json.loads(raw) if raw else {}
        world = self.world
        result: Any
        try:
            if action == "stats":
                result = {"requests": dict(self.request_counts), "faults_pending": self.faults.pending()}
            elif action == "projects":
                result = {"projects": list(world.projects)}
            elif action == "listing":
                result = {"items": world.listing(query.get("project_id"), query.get("state"))}
            elif action == "faults" and scope["method"] == "POST":
                self.faults.add(Fault(**payload))
                result = {"pending": self.faults.pending()}
            elif action == "changes" and scope["method"] == "POST":
                result = {
                    "changes": world.random_changes(
                        int(payload.get("count", 1)), project_id=payload.get("project_id")
                    )
                }
            elif action == "add_asset" and scope["method"] == "POST":
                result = world.add_asset(
                    payload["project_id"], state=payload.get("state", "pending_upload")
                ).to_dict()
            elif action == "advance" and scope["method"] == "POST":
                result = world.advance(payload["asset_id"], payload.get("state")).to_dict()
            elif action == "delete" and scope["method"] == "POST":
                result = world.delete(payload["asset_id"]).to_dict()
            elif action == "settings" and scope["method"] == "POST":
                if "latency_ms" in payload:
                    self.latency_ms = float(payload["latency_ms"])
                if "total_bias" in payload:
                    self.total_bias = {
                        k if k != "" else None: int(v) for k, v in payload["total_bias"].items()
                    }
                if "max_page_items" in payload:
                    items = payload["max_page_items"]
                    self.max_page_items = None if items is None else int(items)
                result = {"latency_ms": self.latency_ms, "max_page_items": self.max_page_items}
            elif action == "add_project" and scope["method"] == "POST":
                result = {"project_id": world.add_project()}
            else:
                await _send_error(send, 404, "not_found", f"Unknown control action {action!r}.", request_id)
                return
        except (KeyError, ValueError, TypeError) as error:
            await _send_error(send, 400, "bad_request", f"{type(error).__name__}: {error}", request_id)
            return
        await _send(send, 200, json.dumps(result).encode(), request_id)


def _parse_int(
    query: dict[str, str], name: str, default: int, low: int, high: int | None, fields: list[dict[str, str]]
) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        fields.append({"field": f"query.{name}", "message": "Input should be a valid integer"})
        return default
    if value < low:
        fields.append(
            {"field": f"query.{name}", "message": f"Input should be greater than or equal to {low}"}
        )
    elif high is not None and value > high:
        fields.append({"field": f"query.{name}", "message": f"Input should be less than or equal to {high}"})
    return value


COMPRESSIONS: dict[str, Callable[[bytes], bytes]] = {"gzip": gzip.compress, "deflate": zlib.compress}
"""The `Content-Encoding`s the emulator can answer with (scripted like faults, one response each)."""


ENCODED_ERRORS = {
    429: ("rate_limited", "Too many requests."),
    503: ("upstream_unavailable", "Upstream temporarily unavailable."),
}
"""The error envelope an `encoded` fault sends for a status (others send `internal_error`)."""


def _content_encoding(fault: Fault) -> tuple[bytes, bytes]:
    return (b"content-encoding", fault.encoding.encode("latin-1"))


def _encoded(fault: Fault, body: bytes) -> bytes:
    """The body an `encoded` fault sends: compressed as its encoding names (any case), empty, or garbage."""
    if fault.body == "empty":
        return b""
    if fault.body == "garbage":
        return b"\x00\xffnot compressed at all\xfe" * 4
    compress = COMPRESSIONS.get(fault.encoding.strip().lower().removeprefix("x-"))
    return compress(body) if compress is not None else body


async def _send_cut_short(send: Send, body: bytes, request_id: str) -> None:
    """Promise the whole body (Content-Length), send half of it, then close the connection."""
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-request-id", request_id.encode()),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
    _drop_connection(send)


def _break_body(kind: str, body: bytes) -> bytes:
    """Turn a valid page body into the contract-breaking body a fault asks for."""
    if kind == "truncated":
        return body[: max(1, len(body) // 2)]
    page = json.loads(body)
    if not page["items"]:
        page["total"] = "many"  # no item to break: break the page itself
        return json.dumps(page).encode()
    first = page["items"][0]
    if kind == "missing_field":
        del first["state"]
    elif kind == "unknown_state":
        first["state"] = "archived"
    elif kind == "bad_duration":
        first["duration_seconds"] = "12.3.4"
    elif kind == "wrong_type":
        first["size_bytes"] = "4823572"
    elif kind == "bad_id":
        first["id"] = first["id"].upper()
    elif kind == "foreign_item":
        first["project_id"] = str(uuid.uuid4())
    elif kind == "unsorted":
        page["items"].reverse()
    elif kind == "bad_escape":
        first["language"] = "\udcff"  # json.dumps writes it as the escape "\udcff"
    return json.dumps(page).encode()


def _drop_connection(send: Send) -> None:
    """Close the TCP connection without answering (uvicorn exposes its transport on the send callable)."""
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        raise ConnectionAbortedError("emulated dropped connection")
    transport.close()


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _send(
    send: Send,
    status: int,
    body: bytes,
    request_id: str,
    *,
    content_type: bytes = b"application/json",
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        (b"x-request-id", request_id.encode()),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _send_error(
    send: Send,
    status: int,
    code: str,
    message: str,
    request_id: str,
    fields: list[dict[str, str]] | None = None,
    *,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    error: dict[str, Any] = {"code": code, "message": message}
    if fields:
        error["fields"] = fields
    await _send(send, status, json.dumps({"error": error}).encode(), request_id, extra=headers)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return

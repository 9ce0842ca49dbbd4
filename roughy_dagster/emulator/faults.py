"""Scripted faults the emulator injects into `GET /v1/assets` responses, in the order they were planned."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

FAULT_KINDS = frozenset(
    {
        "rate_limit",  # 429 rate_limited with Retry-After (seconds, or an HTTP date with retry_after_date)
        "internal",  # 500 internal_error
        "bad_gateway_html",  # 502 with an HTML body, as a proxy answers
        "unavailable",  # 503 upstream_unavailable (Retry-After when retry_after is set)
        "gateway_timeout_html",  # 504 with an HTML body
        "slow",  # answer correctly after `delay` seconds
        "drop",  # close the connection without an answer
        "truncated",  # 200 whose JSON body is cut in half
        "missing_field",  # 200 whose first item lacks `state`
        "unknown_state",  # 200 whose first item has a state outside the enum
        "bad_duration",  # 200 whose first item has a malformed `duration_seconds`
        "wrong_type",  # 200 whose first item has `size_bytes` as a string
        "bad_id",  # 200 whose first item's id is not UUID text
        "foreign_item",  # 200 whose first item belongs to another project
        "unsorted",  # 200 whose items are oldest first
        "gzip",  # a correct 200, sent with Content-Encoding: gzip (not a fault: a server that compresses)
        "deflate",  # a correct 200, sent with Content-Encoding: deflate
        "encoded",  # an answer of `status` labelled Content-Encoding `encoding`, its body as `body` says
        "not_json",  # 200 whose body is not JSON at all (an HTML maintenance page)
        "bad_escape",  # 200 whose first item holds a lone surrogate escape ("\udcff"): JSON, but not text
        "cut_short",  # 200 whose body stops halfway, the connection closed before Content-Length is met
        "empty_page",  # 200 {items: [], total: 0}: a replica or cache that answers an empty list once
    }
)

TRANSIENT_FAULT_KINDS = (
    "rate_limit",
    "internal",
    "bad_gateway_html",
    "unavailable",
    "gateway_timeout_html",
    "drop",
    "truncated",
    "cut_short",
)
"""Faults a client should retry through (all but `slow`, which needs a short read timeout to matter)."""


@dataclass
class Fault:
    """One planned fault: applies to `count` matching requests after letting `skip` matching ones through."""

    kind: str
    count: int = 1
    skip: int = 0
    retry_after: float | None = None
    retry_after_date: bool = False
    delay: float = 0.0
    status: int = 200
    """For `encoded`: the status to answer with (200 gives the page, others Roughy's error envelope)."""
    encoding: str = "gzip"
    """For `encoded`: the Content-Encoding header value, sent as given (any case; "" sends it empty)."""
    body: str = "valid"
    """For `encoded`: "valid" (the body compressed as the encoding says), "empty", or "garbage"."""
    match: dict[str, str] = field(default_factory=dict)
    """Query parameters a request must carry (as strings) for the fault to apply, e.g. {"offset": "200"}."""

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; known: {', '.join(sorted(FAULT_KINDS))}")
        if self.body not in ("valid", "empty", "garbage"):
            raise ValueError(f"body must be valid, empty or garbage, not {self.body!r}")
        if self.count < 1 or self.skip < 0:
            raise ValueError("count must be at least 1 and skip not negative")

    def matches(self, query: dict[str, str]) -> bool:
        """Whether a request with this query is one this fault targets."""
        return all(query.get(name) == value for name, value in self.match.items())


class FaultPlan:
    """The queue of planned faults; each request consumes at most one."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self.injected: list[str] = []

    def add(self, fault: Fault) -> None:
        """Plan a fault after those already planned."""
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        """Forget every planned fault."""
        with self._lock:
            self._faults.clear()

    def pending(self) -> int:
        """How many planned faults have not been used up yet."""
        with self._lock:
            return len(self._faults)

    def take(self, query: dict[str, str]) -> Fault | None:
        """The fault this request gets, if any, consuming one use of it."""
        with self._lock:
            for fault in self._faults:
                if not fault.matches(query):
                    continue
                if fault.skip > 0:
                    fault.skip -= 1
                    return None
                fault.count -= 1
                if fault.count == 0:
                    self._faults.remove(fault)
                self.injected.append(fault.kind)
                return fault
            return None

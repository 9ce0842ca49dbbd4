"""Retry classification and waits for Roughy calls (tenacity), as DESIGN.md's retry table says."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from tenacity import RetryCallState, Retrying, retry_if_exception

from .errors import (
    RoughyAPIError,
    RoughyConnectionError,
    RoughyProtocolError,
    RoughyRateLimitError,
    RoughyServerError,
)

logger = logging.getLogger("roughy_dagster.client")

RETRYABLE_SERVER_STATUSES = frozenset({500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """How hard one call tries before it gives up; every field is a documented knob of the resource."""

    max_attempts: int = 6
    """Attempts in all (first try included) for connection failures, 429 and 502/503/504."""
    max_internal_error_attempts: int = 3
    """Attempts in all for 500 `internal_error`, which may fail deterministically."""
    backoff_initial_seconds: float = 0.5
    """Upper bound of the first full-jitter backoff; it doubles each attempt."""
    backoff_max_seconds: float = 30.0
    """Cap of one backoff wait."""
    max_retry_after_seconds: float = 120.0
    """A `Retry-After` longer than this is not waited out: the call fails with a clear error instead."""
    deadline_seconds: float = 300.0
    """Overall budget of one call, waits included; no retry is started that would end past it."""

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.max_internal_error_attempts < 1:
            raise ValueError("retry attempts must be at least 1")
        if min(self.backoff_initial_seconds, self.backoff_max_seconds, self.deadline_seconds) < 0:
            raise ValueError("retry waits and deadline must not be negative")


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header given as seconds or as an HTTP date; None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = datetime.fromtimestamp(time.time() if now is None else now, UTC)
    return max(0.0, (when - current).total_seconds())


def is_retryable(error: BaseException) -> bool:
    """Whether an error is worth another attempt (transport failures, 429, 5xx, unreadable 2xx)."""
    if isinstance(error, RoughyConnectionError | RoughyRateLimitError):
        return True
    if isinstance(error, RoughyServerError):
        return error.status in RETRYABLE_SERVER_STATUSES
    if isinstance(error, RoughyProtocolError):
        return error.transient
    return False


class RetryBudget:
    """Tenacity wait/stop policy for one call, with the reason it gave up kept for the final error."""

    def __init__(self, policy: RetryPolicy, rng: random.Random, started: float) -> None:
        self.policy = policy
        self.rng = rng
        self.started = started
        """`time.monotonic()` when the call's first attempt began: the deadline runs from there."""
        self.gave_up_because = ""

    def wait(self, state: RetryCallState) -> float:
        """`Retry-After` plus a little jitter when the server gives one, else full-jitter backoff."""
        error = _error_of(state)
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            return float(retry_after) + self.rng.uniform(0, min(1.0, 0.1 * float(retry_after) + 0.05))
        ceiling = min(
            self.policy.backoff_max_seconds,
            self.policy.backoff_initial_seconds * 2 ** (state.attempt_number - 1),
        )
        return self.rng.uniform(0, ceiling)

    def stop(self, state: RetryCallState) -> bool:
        """Stop on attempt limits, a `Retry-After` above the cap, or a wait that would pass the deadline."""
        error = _error_of(state)
        is_internal = isinstance(error, RoughyServerError) and error.status == 500
        limit = self.policy.max_internal_error_attempts if is_internal else self.policy.max_attempts
        retry_after = getattr(error, "retry_after", None)
        upcoming = state.upcoming_sleep or 0.0
        if state.attempt_number >= limit:
            self.gave_up_because = f"gave up after {state.attempt_number} attempts"
        elif retry_after is not None and retry_after > self.policy.max_retry_after_seconds:
            self.gave_up_because = (
                f"the server asked to wait {retry_after:.0f} s (Retry-After), above the cap of "
                f"{self.policy.max_retry_after_seconds:.0f} s (raise max_retry_after_seconds to wait it out)"
            )
        elif time.monotonic() - self.started + upcoming > self.policy.deadline_seconds:
            self.gave_up_because = (
                f"gave up after {state.attempt_number} attempts: the next wait would pass the "
                f"{self.policy.deadline_seconds:.0f} s deadline"
            )
        else:
            return False
        return True


def _error_of(state: RetryCallState) -> BaseException | None:
    return state.outcome.exception() if state.outcome is not None else None


def _log_retry(state: RetryCallState) -> None:
    error = _error_of(state)
    logger.warning(
        "Roughy request failed (status=%s code=%s request_id=%s): %s; retry attempt %d after waiting %.2f s",
        getattr(error, "status", None),
        getattr(error, "code", None),
        getattr(error, "request_id", None),
        getattr(error, "message", error),
        state.attempt_number + 1,
        state.upcoming_sleep,
        extra={
            "roughy_attempt": state.attempt_number + 1,
            "roughy_wait_seconds": state.upcoming_sleep,
            "roughy_status": getattr(error, "status", None),
            "roughy_code": getattr(error, "code", None),
            "roughy_request_id": getattr(error, "request_id", None),
        },
    )


def build_retrying(
    policy: RetryPolicy,
    *,
    sleep: Callable[[float], None],
    rng: random.Random,
    on_retry: Callable[[], None],
    started: float,
) -> Retrying:
    """A tenacity `Retrying` that re-raises the last error, annotated with why it stopped.

    `started` is `time.monotonic()` when the call's first attempt began (the deadline runs from there)."""
    budget = RetryBudget(policy, rng, started)

    def before_sleep(state: RetryCallState) -> None:
        on_retry()
        _log_retry(state)

    def give_up(state: RetryCallState) -> Any:
        error = _error_of(state)
        assert error is not None
        if isinstance(error, RoughyAPIError) and budget.gave_up_because:
            error.args = (f"{error.args[0]}; {budget.gave_up_because}",)
        raise error

    return Retrying(
        retry=retry_if_exception(is_retryable),
        wait=budget.wait,
        stop=budget.stop,
        sleep=sleep,
        before_sleep=before_sleep,
        retry_error_callback=give_up,
    )

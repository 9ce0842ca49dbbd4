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
    """Attempts in all (first try included) for connection failures, 429, 502/503/504 and cut-short bodies."""
    max_internal_error_attempts: int = 3
    """500 `internal_error` answers one call accepts: the call fails at this many (other answers do not
    count against it), since a 500 may fail deterministically."""
    backoff_initial_seconds: float = 0.5
    """Upper bound of the first full-jitter backoff; it doubles each attempt."""
    backoff_max_seconds: float = 30.0
    """Cap of one backoff wait."""
    max_retry_after_seconds: float = 120.0
    """A `Retry-After` longer than this is not waited out: the call fails with a clear error instead."""
    deadline_seconds: float = 300.0
    """Hard bound of one call, attempts and waits included: each attempt's timeouts are cut to what remains,
    and no wait is started that would leave no time for another attempt (a longer `Retry-After` fails the
    call at once, saying so)."""

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
    """Whether an error is worth another attempt (transport failures of a sent request, 429, 500/502/503/504,
    a 200 body cut short)."""
    if isinstance(error, RoughyConnectionError):
        return error.transient
    if isinstance(error, RoughyRateLimitError):
        return True
    if isinstance(error, RoughyServerError):
        return error.status in RETRYABLE_SERVER_STATUSES
    if isinstance(error, RoughyProtocolError):
        return error.transient
    return False


class RetryBudget:
    """Tenacity wait/stop policy for one call, on the client's clock, with why it gave up kept.

    `deadline_at` is the moment (on `clock`) by which the call must be over: the policy's
    `deadline_seconds` from the first attempt's start, or the caller's deadline when that comes first
    (`deadline_owner` names which, for messages).
    """

    def __init__(
        self,
        policy: RetryPolicy,
        rng: random.Random,
        clock: Callable[[], float],
        deadline_at: float,
        deadline_owner: str,
    ) -> None:
        self.policy = policy
        self.rng = rng
        self.clock = clock
        self.deadline_at = deadline_at
        self.deadline_owner = deadline_owner
        self.internal_errors = 0
        self.gave_up_because = ""
        self.out_of_time = False

    def remaining(self) -> float:
        """Seconds left before the deadline (negative once it passed)."""
        return self.deadline_at - self.clock()

    def wait(self, state: RetryCallState) -> float:
        """`Retry-After` plus a little jitter when the server gives one, else full-jitter backoff.

        The jitter after a `Retry-After` is kept within the time that remains, so a wait the server asked
        for and the deadline allows is not refused because of our own jitter."""
        error = _error_of(state)
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            jitter = self.rng.uniform(0, min(1.0, 0.1 * float(retry_after) + 0.05))
            spare = self.remaining() - float(retry_after)
            if spare > 0:
                jitter = min(jitter, spare / 2)
            return float(retry_after) + jitter
        ceiling = min(
            self.policy.backoff_max_seconds,
            self.policy.backoff_initial_seconds * 2 ** (state.attempt_number - 1),
        )
        return self.rng.uniform(0, ceiling)

    def stop(self, state: RetryCallState) -> bool:
        """Stop on the attempt limit, the 500 limit, a `Retry-After` above the cap or past the deadline,
        or a wait that would leave no time for another attempt."""
        error = _error_of(state)
        if isinstance(error, RoughyServerError) and error.status == 500:
            self.internal_errors += 1
        retry_after = getattr(error, "retry_after", None)
        upcoming = state.upcoming_sleep or 0.0
        remaining = self.remaining()
        attempts = state.attempt_number
        if self.internal_errors >= self.policy.max_internal_error_attempts:
            self.gave_up_because = (
                f"gave up after {self.internal_errors} answers of 500 ({attempts} attempts; "
                f"max_internal_error_attempts is {self.policy.max_internal_error_attempts})"
            )
        elif attempts >= self.policy.max_attempts:
            self.gave_up_because = f"gave up after {attempts} attempts"
        elif retry_after is not None and retry_after > self.policy.max_retry_after_seconds:
            self.gave_up_because = (
                f"the server asked to wait {retry_after:.0f} s (Retry-After), above the cap of "
                f"{self.policy.max_retry_after_seconds:.0f} s (raise max_retry_after_seconds to wait it out)"
            )
        elif retry_after is not None and retry_after >= remaining:
            self.out_of_time = True
            self.gave_up_because = (
                f"the server asked to wait {retry_after:.1f} s (Retry-After) but only "
                f"{max(0.0, remaining):.1f} s remain of {self.deadline_owner}; failed at once "
                f"after {attempts} attempt{'s' if attempts > 1 else ''}"
            )
        elif upcoming >= remaining:
            self.out_of_time = True
            self.gave_up_because = (
                f"gave up after {attempts} attempt{'s' if attempts > 1 else ''}: "
                f"{max(0.0, remaining):.1f} s remain of {self.deadline_owner}, "
                f"too little for another wait and attempt"
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
    budget: RetryBudget, *, sleep: Callable[[float], None], on_retry: Callable[[], None]
) -> Retrying:
    """A tenacity `Retrying` that re-raises the last error, annotated with why it stopped."""

    def before_sleep(state: RetryCallState) -> None:
        on_retry()
        _log_retry(state)

    def give_up(state: RetryCallState) -> Any:
        error = _error_of(state)
        assert error is not None
        if isinstance(error, RoughyAPIError) and budget.gave_up_because:
            error.args = (f"{error.args[0]}; {budget.gave_up_because}",)
            error.out_of_time = error.out_of_time or budget.out_of_time
        raise error

    return Retrying(
        retry=retry_if_exception(is_retryable),
        wait=budget.wait,
        stop=budget.stop,
        sleep=sleep,
        before_sleep=before_sleep,
        retry_error_callback=give_up,
    )

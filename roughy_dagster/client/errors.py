"""Typed errors raised by the Roughy client; each carries the server's request id where there is one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    """One per-field validation failure reported by the server (`fields[]`)."""

    field: str
    message: str


class RoughyError(Exception):
    """Base class of every error this package raises on purpose."""


class RoughyAPIError(RoughyError):
    """A call to the Roughy API failed; `status`, `code`, `message`, `fields` and `request_id` say how."""

    advice: str = ""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        fields: Sequence[FieldError] = (),
        request_id: str | None = None,
        request: str | None = None,
        retry_after: float | None = None,
        transient: bool = False,
        out_of_time: bool = False,
        advice: str | None = None,
    ) -> None:
        self.status = status
        self.retry_after = retry_after
        """Seconds the server asked to wait (`Retry-After`), when it said."""
        self.transient = transient
        """Whether the same request may well succeed if sent again (e.g. a truncated body)."""
        self.out_of_time = out_of_time
        """Whether the call stopped because its deadline left no time for what it needed next (another
        attempt, a `Retry-After` wait, or a first attempt): worth trying again later, not sooner."""
        if advice is not None:
            self.advice = advice
        self.code = code
        self.message = message
        self.fields = tuple(fields)
        self.request_id = request_id
        self.request = request
        super().__init__(self._describe())

    def _describe(self) -> str:
        head = "Roughy API error"
        if self.status is not None:
            head += f" {self.status}"
        if self.code:
            head += f" {self.code}"
        text = f"{head}: {self.message}"
        if self.fields:
            text += " [" + "; ".join(f"{f.field}: {f.message}" for f in self.fields) + "]"
        if self.request:
            text += f" (request: {self.request})"
        text += f" (request id: {self.request_id or 'none'})"
        if self.advice:
            text += f". {self.advice}"
        return text


class RoughyAuthError(RoughyAPIError):
    """401/403: the API key is missing, wrong, revoked or lacks access."""

    advice = "Check that ROUGHY_API_KEY holds a valid key for this base URL."


class RoughyNotFoundError(RoughyAPIError):
    """404: the project (or path) does not exist for this account."""

    advice = "Check the project id; it must belong to the account of the API key."


class RoughyValidationError(RoughyAPIError):
    """400/422: the server rejected the request's arguments; `fields` names them."""


class RoughyRateLimitError(RoughyAPIError):
    """429: rate limited, and the retry budget or the wait cap was exhausted."""


class RoughyServerError(RoughyAPIError):
    """5xx: the server or a proxy in front of it failed, and retries did not help."""


class RoughyConnectionError(RoughyAPIError):
    """The request never got a complete answer (connect/read timeout, dropped connection)."""


class RoughyDeadlineError(RoughyAPIError):
    """The call was not made: its deadline (see `RoughyClient.deadline`) had already passed."""

    advice = "The caller's time budget ran out; the work continues on its next run."


class RoughyProtocolError(RoughyAPIError):
    """A response that breaks the contract: a 2xx body that is not JSON or not the spec's shape."""

    advice = "The API answered outside its contract; retry later or report it with the request id."


def error_class_for_status(status: int) -> type[RoughyAPIError]:
    """Pick the error subclass callers branch on for an HTTP status."""
    if status in (401, 403):
        return RoughyAuthError
    if status == 404:
        return RoughyNotFoundError
    if status in (400, 422):
        return RoughyValidationError
    if status == 429:
        return RoughyRateLimitError
    if status >= 500:
        return RoughyServerError
    return RoughyAPIError

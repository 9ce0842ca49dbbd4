"""`RoughyClient`: authenticated, retried, typed access to Roughy's `GET /v1/assets` listing."""

from __future__ import annotations

import logging
import random
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self
from urllib.parse import urlencode, urlsplit, urlunsplit
from uuid import UUID

import httpx
import msgspec

from .._version import __version__
from .errors import (
    FieldError,
    RoughyAPIError,
    RoughyConnectionError,
    RoughyDeadlineError,
    RoughyError,
    RoughyNotFoundError,
    RoughyProtocolError,
    error_class_for_status,
)
from .models import (
    ERROR_DECODER,
    PAGE_DECODER,
    AssetPage,
    AssetState,
    AssetSummary,
    held_leap_seconds,
    misshapen_ids,
    split_off_contract,
    with_exact_times,
)
from .paging import MAX_PAGE_SIZE as MAX_PAGE_SIZE  # re-exported: the spec's largest `limit`
from .paging import ListWalk, RequestBudget
from .retry import RetryBudget, RetryPolicy, build_retrying, is_retryable, parse_retry_after
from .wire import NoCookies, Reply, Wire, WireError, alias_content_codings

logger = logging.getLogger("roughy_dagster.client")

DEFAULT_BASE_URL = "https://api.roughy.ai"
API_VERSION_PREFIX = "/v1"
LIST_ASSETS_PATH = f"{API_VERSION_PREFIX}/assets"


@dataclass(frozen=True)
class Timeouts:
    """HTTP timeouts in seconds for one request."""

    connect: float = 10.0
    read: float = 30.0
    write: float = 30.0
    pool: float = 10.0


@dataclass
class ClientStats:
    """Counters a caller can read to report what a piece of work cost (safe across threads)."""

    requests: int = 0
    retries: int = 0
    pages: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def count(self, name: str) -> None:
        """Add one to a counter."""
        with self._lock:
            setattr(self, name, getattr(self, name) + 1)


def validate_base_url(base_url: str) -> str:
    """The API root: `base_url` without a trailing slash or `/v1` (the client adds `/v1/assets`).

    Raises `ValueError` showing a valid one for a URL that is not http(s), holds credentials, a query or
    a fragment, or already names the listing (`…/v1/assets`).
    """
    text = base_url.strip() if isinstance(base_url, str) else ""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"base_url must be an http(s) URL such as {DEFAULT_BASE_URL!r}, got {base_url!r}")
    if "@" in parts.netloc:
        raise ValueError("base_url must not hold credentials (user:password@): the API key is a header")
    if parts.query or parts.fragment:
        raise ValueError(
            f"base_url must be the API root, without a query or fragment, such as {DEFAULT_BASE_URL!r}"
        )
    path = parts.path.rstrip("/")
    if path.lower().endswith(LIST_ASSETS_PATH):
        raise ValueError(
            f"base_url must be the API root, such as {DEFAULT_BASE_URL!r}, not the listing's URL: "
            f"drop {LIST_ASSETS_PATH!r} (the client adds it)"
        )
    if path.lower().endswith(API_VERSION_PREFIX):
        path = path[: -len(API_VERSION_PREFIX)]
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def validate_api_key(api_key: object) -> str:
    """The API key unchanged if it can be sent as a bearer token, else `ValueError` that never shows it.

    Refused: a non-string, an empty key, surrounding or inner whitespace, control characters and
    non-ASCII characters. The message names the problem and its position, and shows at most the key's
    kind prefix (such as `sk_live_…`).
    """
    if not isinstance(api_key, str) or not api_key:
        raise ValueError("api_key is empty: set ROUGHY_API_KEY to a key minted on Roughy's API-keys page")
    shown = _key_prefix(api_key)
    problem: str | None = None
    if api_key != api_key.strip():
        problem = "surrounding whitespace (a newline or space copied with it?)"
    else:
        for position, character in enumerate(api_key):
            if character.isspace() or unicodedata.category(character) in ("Cc", "Cf"):
                problem = f"a whitespace or control character (U+{ord(character):04X}) at position {position}"
            elif not character.isascii():
                problem = f"a non-ASCII character at position {position}"
            if problem:
                break
    if problem is None:
        return api_key
    raise ValueError(
        f"api_key {shown} ({len(api_key)} characters) holds {problem}: an API key is printable ASCII "
        "only; copy it again from Roughy's API-keys page into ROUGHY_API_KEY"
    )


def _key_prefix(api_key: str) -> str:
    """The kind prefix of a key (`sk_live_…`), or `…` when it has none: all of a key an error may show."""
    head, separator, rest = api_key.partition("_")
    kind, second, _ = rest.partition("_")
    if separator and head.isalpha() and head.isascii() and len(head) <= 4:
        if second and kind.isalpha() and kind.isascii() and len(kind) <= 8:
            return f"{head}_{kind}_…"
        return f"{head}_…"
    return "…"


def validate_project_id(project_id: UUID | str) -> str:
    """A project id as canonical lowercase UUID text, or `ValueError` naming the argument."""
    if isinstance(project_id, UUID):
        return str(project_id)
    try:
        return str(UUID(str(project_id).strip()))
    except ValueError:
        raise ValueError(f"project_id must be a UUID, got {project_id!r}") from None


def validate_state(state: AssetState | str) -> AssetState:
    """Parse a lifecycle state, or raise `ValueError` naming the allowed ones."""
    try:
        return AssetState(state)
    except ValueError:
        allowed = ", ".join(s.value for s in AssetState)
        raise ValueError(f"state must be one of {allowed}; got {state!r}") from None


def _validate_int(name: str, value: int, low: int, high: int | None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return value


class RoughyClient:
    """A framework-free client of the Roughy listing; one `httpx.Client` per object, closed by `close()`.

    `api_key` is checked here (see `validate_api_key`) and `base_url` normalised (`validate_base_url`);
    both raise `ValueError`. `clock` (seconds, monotonic) and `sleep` are what every deadline and wait is
    measured and spent with; tests pass their own. Use `deadline(seconds)` to bound every call made
    within a block, e.g. a sensor tick.
    """

    def __init__(
        self,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        timeouts: Timeouts | None = None,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        api_key = validate_api_key(api_key)
        self.base_url = validate_base_url(base_url)
        self.timeouts = timeouts or Timeouts()
        self.retry_policy = retry or RetryPolicy()
        self.stats = ClientStats()
        self.clock = clock
        """The clock (seconds) deadlines are measured with."""
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._deadline_at: float | None = None
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={
                "Authorization": f"Bearer {api_key}",
                "User-Agent": f"roughy-dagster/{__version__}",
                "Accept": "application/json",
            },
            timeout=httpx.Timeout(
                connect=self.timeouts.connect,
                read=self.timeouts.read,
                write=self.timeouts.write,
                pool=self.timeouts.pool,
            ),
            transport=transport,
            follow_redirects=False,
            cookies=NoCookies(),
            event_hooks={"response": [alias_content_codings]},
        )
        self._timeout = self._http.timeout.as_dict()
        self._longest_timeout = max(value for value in self._timeout.values() if value is not None)
        self._listing_url = f"{self.base_url}{LIST_ASSETS_PATH}"
        self._listing_path = urlsplit(self._listing_url).path
        self._wire = Wire(self._http, self._listing_url)

    def __repr__(self) -> str:
        return f"RoughyClient(base_url={self.base_url!r}, api_key=<redacted>)"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the underlying connection pool."""
        self._http.close()

    # -- deadlines -----------------------------------------------------------------------------------------

    @contextmanager
    def deadline(self, seconds: float) -> Iterator[Self]:
        """Within the block, every call ends within `seconds` from now (on `clock`), retries included.

        A call then runs to the earlier of its own `deadline_seconds` and this deadline: each attempt's
        timeouts are cut to what remains, a `Retry-After` longer than what remains fails at once, and a
        call begun after the deadline raises `RoughyDeadlineError` without sending anything. Errors that
        stop for lack of time have `out_of_time` set. Nested blocks keep the earlier deadline.
        """
        previous = self._deadline_at
        until = self.clock() + max(0.0, seconds)
        self._deadline_at = until if previous is None else min(previous, until)
        try:
            yield self
        finally:
            self._deadline_at = previous

    def time_left(self) -> float | None:
        """Seconds left before the `deadline()` in force (negative once passed), or None without one."""
        if self._deadline_at is None:
            return None
        return self._deadline_at - self.clock()

    # -- the listing -------------------------------------------------------------------------------------

    def list_assets(
        self,
        *,
        project_id: UUID | str | None = None,
        state: AssetState | str | None = None,
        limit: int = 20,
        offset: int = 0,
        report_off_contract: bool = False,
    ) -> AssetPage:
        """Fetch one page of the listing (newest first); arguments are checked before anything is sent.

        Raises a `RoughyAPIError` subclass once the retry policy gives up (see `RetryPolicy`), or
        `RoughyDeadlineError` if the `deadline()` in force passed before the call. A page holding an item
        that breaks the contract raises `RoughyProtocolError`, unless `report_off_contract`: such items are
        then left out of `items` and listed in `off_contract` (a page malformed as a whole still raises)."""
        params: dict[str, str] = {}
        if project_id is not None:
            params["project_id"] = str(validate_project_id(project_id))
        if state is not None:
            params["state"] = validate_state(state).value
        params["limit"] = str(_validate_int("limit", limit, 1, MAX_PAGE_SIZE))
        params["offset"] = str(_validate_int("offset", offset, 0, None))
        started = self.clock()
        deadline_at = started + self.retry_policy.deadline_seconds
        caller_deadline = self._deadline_at
        if caller_deadline is not None and caller_deadline < deadline_at:
            deadline_at = caller_deadline
            if deadline_at <= started:
                raise RoughyDeadlineError(
                    f"not sent: the deadline set with RoughyClient.deadline() passed "
                    f"{started - deadline_at:.1f} s ago",
                    request=self._describe(params),
                    out_of_time=True,
                )
        try:
            page = self._get_page(params, deadline_at - started, report_off_contract)
        except RoughyError as error:
            if not is_retryable(error):
                raise
            page = self._retry_page(params, error, deadline_at, report_off_contract)
        self.stats.count("pages")
        return page

    def _retry_page(
        self, params: dict[str, str], first_error: RoughyError, deadline_at: float, report_off_contract: bool
    ) -> AssetPage:
        """Retry a failed first attempt with tenacity, as if tenacity had made that attempt too.

        The first attempt runs outside tenacity because nearly every page needs only one, and setting up a
        retry loop costs more CPU than decoding the page; the policy still counts it as attempt one, and
        the deadline runs from when it started.
        """
        failures = [first_error]
        owner = (
            "the caller's deadline (RoughyClient.deadline())"
            if self._deadline_at is not None and deadline_at == self._deadline_at
            else f"the call's {self.retry_policy.deadline_seconds:g} s deadline (deadline_seconds)"
        )
        budget = RetryBudget(self.retry_policy, self._rng, self.clock, deadline_at, owner)

        def attempt() -> AssetPage:
            if failures:
                raise failures.pop()
            return self._get_page(params, budget.remaining(), report_off_contract)

        retrying = build_retrying(budget, sleep=self._sleep, on_retry=self._count_retry)
        page: AssetPage = retrying(attempt)
        return page

    def iter_assets(
        self,
        *,
        project_id: UUID | str | None = None,
        state: AssetState | str | None = None,
    ) -> AssetWalk:
        """Walk every page (limit 100), de-duplicating by id; the walk records whether the listing shifted."""
        return AssetWalk(self, project_id=project_id, state=state)

    # -- transport ---------------------------------------------------------------------------------------

    def _count_retry(self) -> None:
        self.stats.count("retries")

    def _describe(self, params: dict[str, str]) -> str:
        """The request as errors name it: method, the URL's real path (base URL prefix included), query."""
        return f"GET {self._listing_path}?{urlencode(params)}"

    def _timeouts_within(self, remaining: float) -> dict[str, float | None]:
        """httpx timeouts for one attempt: the configured ones, each cut to the `remaining` seconds."""
        if remaining >= self._longest_timeout:
            return self._timeout
        remaining = max(remaining, 0.001)
        return {
            phase: remaining if value is None else min(value, remaining)
            for phase, value in self._timeout.items()
        }

    def _get_page(
        self, params: dict[str, str], remaining: float, report_off_contract: bool = False
    ) -> AssetPage:
        query = urlencode(params)
        self.stats.count("requests")
        try:
            reply = self._wire.get(f"{self._listing_url}?{query}", self._timeouts_within(remaining))
        except WireError as error:
            if not error.sendable:
                happened = f"{error}; not retried, as sending it again cannot help"
            elif error.timed_out:
                happened = f"timed out ({error}); the server did not answer in time"
            else:
                happened = f"connection failed ({error})"
            raise RoughyConnectionError(
                happened,
                request=f"GET {self._listing_path}?{query}",
                request_id=error.request_id,
                transient=error.sendable,
            ) from None
        if reply.status == 200 and reply.body is not None:
            return _parse_page(reply.body, self._listing_path, query, reply.request_id, report_off_contract)
        described = f"GET {self._listing_path}?{query}"
        if reply.status >= 400:
            raise self._error_from_reply(reply, described, params)
        if reply.status == 200:
            raise RoughyProtocolError(
                f"the body does not decode as its Content-Encoding ({reply.content_coding}) says "
                f"({reply.undecodable})",
                status=200,
                request_id=reply.request_id,
                request=described,
            )
        raise RoughyProtocolError(
            f"unexpected status {reply.status} for a listing",
            status=reply.status,
            request_id=reply.request_id,
            request=described,
        )

    def _error_from_reply(self, reply: Reply, described: str, params: dict[str, str]) -> RoughyAPIError:
        """The typed error of a 4xx/5xx: its status and `Retry-After` count even if the body is unreadable."""
        status = reply.status
        error_class = error_class_for_status(status)
        code: str | None = None
        fields: list[FieldError] = []
        if reply.body is None:
            message = (
                f"HTTP {status} whose body does not decode as its Content-Encoding "
                f"({reply.content_coding}) says ({reply.undecodable})"
            )
        else:
            try:
                envelope = ERROR_DECODER.decode(reply.body)
            except ValueError:  # msgspec.DecodeError, or UnicodeDecodeError for invalid UTF-8
                content_type = reply.headers.get("content-type", "unknown content type")
                body = "an empty body" if not reply.body else "a body that is not Roughy's error envelope"
                message = f"HTTP {status} with {body} ({content_type})"
            else:
                code = envelope.error.code
                message = envelope.error.message
                fields = [FieldError(f.field, f.message) for f in envelope.error.fields or ()]
        advice: str | None = None
        if error_class is RoughyNotFoundError and "project_id" not in params:
            advice = (
                f"Check base_url ({self.base_url}): {self._listing_path} was not found there; "
                "it must be the API root, such as https://api.roughy.ai"
            )
        return error_class(
            message,
            status=status,
            code=code,
            fields=fields,
            request_id=reply.request_id,
            request=described,
            retry_after=parse_retry_after(reply.headers.get("retry-after")),
            advice=advice,
        )


def _parse_page(
    body: bytes, path: str, query: str, request_id: str | None, report_off_contract: bool = False
) -> AssetPage:
    """Parse a 200 body into a page; an unreadable or off-spec body becomes a `RoughyProtocolError`.

    Only a body cut short (the JSON ends before its last value does) is marked transient (retried); a body
    that is not JSON because of what it holds (garbage, invalid UTF-8, a lone surrogate escape) fails at
    once, as sending the request again would get the same. With `report_off_contract`, items that break
    the contract in a page otherwise well formed are reported in `off_contract` instead
    (`models.split_off_contract`); the fast path stays one strict decode."""
    problem: str | None
    exact_body, body = body, held_leap_seconds(body)
    try:
        page = PAGE_DECODER.decode(body)
    except msgspec.ValidationError as error:
        problem = str(error)
        if report_off_contract:
            split = _split(body, request_id)
            if split is not None:
                return with_exact_times(split, exact_body)
    except ValueError as error:  # msgspec.DecodeError, or UnicodeDecodeError for invalid UTF-8
        cut_short = isinstance(error, msgspec.DecodeError) and str(error).startswith(TRUNCATED)
        raise RoughyProtocolError(
            f"the body ends before its JSON does ({len(body)} bytes): cut short"
            if cut_short
            else f"the body is not JSON ({len(body)} bytes; {error})",
            status=200,
            request_id=request_id,
            request=f"GET {path}?{query}",
            transient=cut_short,
        ) from None
    else:
        problem = misshapen_ids(page)
        if problem is not None:
            problem = f"an id is not a lowercase UUID: {problem}"
            if report_off_contract:
                split = _split(body, request_id)
                if split is not None:
                    return with_exact_times(split, exact_body)
    if problem is not None:
        raise RoughyProtocolError(
            f"the page breaks the API contract: {problem}",
            status=200,
            request_id=request_id,
            request=f"GET {path}?{query}",
        )
    return with_exact_times(msgspec.structs.replace(page, request_id=request_id, off_contract=()), exact_body)


def _split(body: bytes, request_id: str | None) -> AssetPage | None:
    """The page with its off-contract items set apart, or None when the problem is not in the items."""
    try:
        page = split_off_contract(body, request_id)
    except ValueError:  # msgspec's errors: the page itself is malformed
        return None
    return page if page.off_contract else None


TRUNCATED = "Input data was truncated"
"""How msgspec starts the message of a JSON document that ends too early."""


class AssetWalk:
    """An iteration over every asset of one listing, de-duplicated by id, through the paging primitive.

    Pages overlap by one asset and the walk steps back when the listing moved up under it (see
    `roughy_dagster.client.paging`), so an asset listed throughout the walk is never skipped when
    `complete` is true at the end. `shifted` is set (and a warning logged) when the listing changed
    while it was paged (`total` moved) or the walk could not be sure it skipped nothing (`reason` says
    why): assets added or moved meanwhile may be missing; walk again or run a sync to converge.
    The walk makes at most `max_requests` requests (default: twice the pages the first `total` implies at
    the first page's length, plus 20), so a server whose `total` or pages lie cannot keep it going.
    """

    def __init__(
        self,
        client: RoughyClient,
        *,
        project_id: UUID | str | None,
        state: AssetState | str | None,
        max_requests: int | None = None,
    ) -> None:
        self._client = client
        self.project_id = validate_project_id(project_id) if project_id is not None else None
        self.state = validate_state(state) if state is not None else None
        self.max_requests = max_requests
        self.shifted = False
        self.complete = False
        self.reason = ""
        self.first_total: int | None = None
        self.last_total: int | None = None
        self.pages = 0
        self.duplicates = 0

    def _fetch(self, offset: int, limit: int) -> AssetPage:
        return self._client.list_assets(
            project_id=self.project_id, state=self.state, limit=limit, offset=offset
        )

    def __iter__(self) -> Iterator[AssetSummary]:
        seen: set[str] = set()
        # without `max_requests`, the budget grows with what pages show (two requests for each page that
        # shows a new asset), never with the `total` a server claims
        budget = RequestBudget(self.max_requests if self.max_requests is not None else 20)
        walk = ListWalk(self._fetch, budget=budget)
        end_of_previous = 0
        for read in walk:
            page = read.page
            self.pages += 1
            if self.first_total is None:
                self.first_total = page.total
            elif page.total != self.last_total:
                self.shifted = True
            self.last_total = page.total
            repeats = 0
            new = False
            for item in page.items:
                if item.id in seen:
                    repeats += 1
                    continue
                seen.add(item.id)
                new = True
                yield item
            if new and self.max_requests is None:
                budget.grant(2)
            self.duplicates += max(0, repeats - max(0, end_of_previous - read.offset))
            end_of_previous = read.offset + len(page.items)
        result = walk.result
        self.complete = result.sure and result.reached_end
        self.reason = result.reason
        if not self.complete:
            self.shifted = True
        if self.shifted:
            logger.warning(
                "the listing changed while it was paged (total %s -> %s)%s; assets may be missing: walk "
                "again or run a sync to converge",
                self.first_total,
                self.last_total,
                f", and the walk is not sure it skipped nothing: {self.reason}" if self.reason else "",
            )

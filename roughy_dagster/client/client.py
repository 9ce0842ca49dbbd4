"""`RoughyClient`: authenticated, retried, typed access to Roughy's `GET /v1/assets` listing."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self
from urllib.parse import urlencode, urlsplit
from uuid import UUID

import httpx
import msgspec

from .._version import __version__
from .errors import (
    FieldError,
    RoughyAPIError,
    RoughyConnectionError,
    RoughyError,
    RoughyProtocolError,
    error_class_for_status,
)
from .models import ERROR_DECODER, PAGE_DECODER, AssetPage, AssetState, AssetSummary, misshapen_ids
from .paging import MAX_PAGE_SIZE as MAX_PAGE_SIZE  # re-exported: the spec's largest `limit`
from .paging import ListWalk, RequestBudget
from .retry import RetryPolicy, build_retrying, is_retryable, parse_retry_after
from .wire import ACCEPT_ENCODING, Reply, Wire, WireError

logger = logging.getLogger("roughy_dagster.client")

DEFAULT_BASE_URL = "https://api.roughy.ai"
LIST_ASSETS_PATH = "/v1/assets"


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
    """Return `base_url` without a trailing slash, or raise `ValueError` showing a valid one."""
    parts = urlsplit(base_url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"base_url must be an http(s) URL such as {DEFAULT_BASE_URL!r}, got {base_url!r}")
    return base_url.strip().rstrip("/")


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
    """A framework-free client of the Roughy listing; one `httpx.Client` per object, closed by `close()`."""

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
    ) -> None:
        if not isinstance(api_key, str) or not api_key.strip():
            raise ValueError("api_key is empty: set ROUGHY_API_KEY to a key minted on Roughy's API-keys page")
        self.base_url = validate_base_url(base_url)
        self.timeouts = timeouts or Timeouts()
        self.retry_policy = retry or RetryPolicy()
        self.stats = ClientStats()
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={
                "Authorization": f"Bearer {api_key.strip()}",
                "User-Agent": f"roughy-dagster/{__version__}",
                "Accept": "application/json",
                "Accept-Encoding": ACCEPT_ENCODING,
            },
            timeout=httpx.Timeout(
                connect=self.timeouts.connect,
                read=self.timeouts.read,
                write=self.timeouts.write,
                pool=self.timeouts.pool,
            ),
            transport=transport,
            follow_redirects=False,
        )
        self._listing_url = f"{self.base_url}{LIST_ASSETS_PATH}"
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

    # -- the listing -------------------------------------------------------------------------------------

    def list_assets(
        self,
        *,
        project_id: UUID | str | None = None,
        state: AssetState | str | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> AssetPage:
        """Fetch one page of the listing (newest first); arguments are checked before anything is sent."""
        params: dict[str, str] = {}
        if project_id is not None:
            params["project_id"] = str(validate_project_id(project_id))
        if state is not None:
            params["state"] = validate_state(state).value
        params["limit"] = str(_validate_int("limit", limit, 1, MAX_PAGE_SIZE))
        params["offset"] = str(_validate_int("offset", offset, 0, None))
        started = time.monotonic()
        try:
            page = self._get_page(params)
        except RoughyError as error:
            if not is_retryable(error):
                raise
            page = self._retry_page(params, error, started)
        self.stats.count("pages")
        return page

    def _retry_page(self, params: dict[str, str], first_error: RoughyError, started: float) -> AssetPage:
        """Retry a failed first attempt with tenacity, as if tenacity had made that attempt too.

        The first attempt runs outside tenacity because nearly every page needs only one, and setting up a
        retry loop costs more CPU than decoding the page; the policy still counts it as attempt one, and
        the deadline runs from when it started.
        """
        failures = [first_error]

        def attempt() -> AssetPage:
            if failures:
                raise failures.pop()
            return self._get_page(params)

        retrying = build_retrying(
            self.retry_policy, sleep=self._sleep, rng=self._rng, on_retry=self._count_retry, started=started
        )
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

    def _get_page(self, params: dict[str, str]) -> AssetPage:
        query = urlencode(params)
        described = f"GET {LIST_ASSETS_PATH}?{query}"
        self.stats.count("requests")
        try:
            reply = self._wire.get(f"{self._listing_url}?{query}")
        except WireError as error:
            happened = (
                f"timed out ({error}); the server did not answer in time"
                if error.timed_out
                else f"connection failed ({error})"
            )
            raise RoughyConnectionError(happened, request=described) from None
        request_id = reply.headers.get("x-request-id")
        if reply.status >= 400:
            raise self._error_from_reply(reply, described, request_id)
        if reply.status != 200:
            raise RoughyProtocolError(
                f"unexpected status {reply.status} for a listing",
                status=reply.status,
                request_id=request_id,
                request=described,
            )
        return _parse_page(reply.body, described, request_id)

    @staticmethod
    def _error_from_reply(reply: Reply, described: str, request_id: str | None) -> RoughyAPIError:
        status = reply.status
        error_class = error_class_for_status(status)
        code: str | None = None
        fields: list[FieldError] = []
        try:
            envelope = ERROR_DECODER.decode(reply.body)
        except msgspec.DecodeError:
            content_type = reply.headers.get("content-type", "unknown content type")
            message = f"HTTP {status} with a body that is not Roughy's error envelope ({content_type})"
        else:
            code = envelope.error.code
            message = envelope.error.message
            fields = [FieldError(f.field, f.message) for f in envelope.error.fields or ()]
        return error_class(
            message,
            status=status,
            code=code,
            fields=fields,
            request_id=request_id,
            request=described,
            retry_after=parse_retry_after(reply.headers.get("retry-after")),
        )


def _parse_page(body: bytes, described: str, request_id: str | None) -> AssetPage:
    """Parse a 200 body into a page; an unreadable or off-spec body becomes a `RoughyProtocolError`."""
    problem: str | None
    try:
        page = PAGE_DECODER.decode(body)
    except msgspec.ValidationError as error:
        problem = str(error)
    except msgspec.DecodeError:
        raise RoughyProtocolError(
            f"the body is not valid JSON ({len(body)} bytes; truncated?)",
            status=200,
            request_id=request_id,
            request=described,
            transient=True,
        ) from None
    else:
        problem = misshapen_ids(page)
        if problem is not None:
            problem = f"an id is not a lowercase UUID: {problem}"
    if problem is not None:
        raise RoughyProtocolError(
            f"the page breaks the API contract: {problem}",
            status=200,
            request_id=request_id,
            request=described,
        )
    return msgspec.structs.replace(page, request_id=request_id)


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
        budget = RequestBudget(self.max_requests if self.max_requests is not None else 1)
        walk = ListWalk(self._fetch, budget=budget)
        end_of_previous = 0
        for read in walk:
            page = read.page
            self.pages += 1
            if self.first_total is None:
                self.first_total = page.total
                if self.max_requests is None:  # twice the pages, at the page length the server gives
                    step = (
                        max(1, min(len(page.items), MAX_PAGE_SIZE) - 1)
                        if len(page.items) < page.total
                        else 99
                    )
                    budget.grant(2 * -(-page.total // step) + 20)
            elif page.total != self.last_total:
                self.shifted = True
            self.last_total = page.total
            repeats = 0
            for item in page.items:
                if item.id in seen:
                    repeats += 1
                    continue
                seen.add(item.id)
                yield item
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

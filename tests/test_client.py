"""`RoughyClient` against the emulator over real HTTP: paging, retries, fail-fast errors, secrets."""

from __future__ import annotations

import logging

import httpx
import msgspec
import pytest

from roughy_dagster import RoughyResource
from roughy_dagster.client import (
    AssetState,
    RetryPolicy,
    RoughyAuthError,
    RoughyClient,
    RoughyConnectionError,
    RoughyDeadlineError,
    RoughyNotFoundError,
    RoughyProtocolError,
    RoughyRateLimitError,
    RoughyServerError,
    RoughyValidationError,
    Timeouts,
)
from roughy_dagster.emulator import TRANSIENT_FAULT_KINDS, Emulator

from .conftest import CANARY_KEY, RecordingSleep, VirtualClock

UNKNOWN_PROJECT = "00000000-0000-4000-8000-000000000000"


def as_listing_dicts(items) -> list[dict]:
    """Client models rendered back into the API's JSON shape, to compare with the emulator's truth."""
    rendered = []
    for item in items:
        data = msgspec.to_builtins(item)
        data["created_at"] = item.created_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        rendered.append(data)
    return rendered


def test_full_iteration_equals_the_truth(emulator: Emulator, client: RoughyClient):
    for project_id in emulator.world.projects:
        walk = client.iter_assets(project_id=project_id)
        items = list(walk)
        assert as_listing_dicts(items) == emulator.world.listing(project_id)
        assert walk.complete and not walk.shifted
    ready = list(client.iter_assets(state="ready"))
    assert [str(a.id) for a in ready] == [a["id"] for a in emulator.world.listing(None, "ready")]


def test_one_page_is_typed_and_echoes_paging(emulator: Emulator, client: RoughyClient):
    project_id = emulator.world.projects[0]
    page = client.list_assets(project_id=project_id, state=AssetState.READY, limit=7, offset=5)
    assert (page.limit, page.offset, len(page.items)) == (7, 5, 7)
    assert page.total == emulator.world.count(project_id, "ready")
    assert page.request_id and page.request_id.startswith("req_")
    assert all(item.state is AssetState.READY and item.duration_seconds is not None for item in page.items)
    created = [item.created_at for item in page.items]
    assert created == sorted(created, reverse=True), "newest first"


def test_walk_notices_a_listing_that_shifts(emulator: Emulator, client: RoughyClient):
    project_id = emulator.world.projects[0]
    walk = client.iter_assets(project_id=project_id)
    iterator = iter(walk)
    first_page = [next(iterator) for _ in range(100)]
    for _ in range(3):
        emulator.world.add_asset(project_id, state="ready")
    rest = list(iterator)
    ids = [item.id for item in first_page + rest]
    assert len(ids) == len(set(ids)), "repeats are dropped"
    assert walk.shifted and walk.duplicates == 3


@pytest.mark.parametrize("kind", TRANSIENT_FAULT_KINDS)
def test_transient_faults_are_retried(
    emulator: Emulator, client: RoughyClient, sleeps: RecordingSleep, kind: str
):
    emulator.inject(kind)
    page = client.list_assets(project_id=emulator.world.projects[0])
    assert len(page.items) == 20
    assert emulator.faults == [kind]
    assert emulator.list_requests == 2 and client.stats.retries == 1 and len(sleeps.waits) == 1


def test_slow_response_past_the_read_timeout_is_retried(emulator: Emulator, sleeps: RecordingSleep):
    emulator.inject("slow", delay=1.0)
    with RoughyClient(
        emulator.api_key, emulator.base_url, timeouts=Timeouts(read=0.2), sleep=sleeps
    ) as client:
        assert client.list_assets().total == emulator.world.count()
    assert client.stats.retries == 1


def test_retry_after_in_seconds_is_honoured(emulator: Emulator, client: RoughyClient, sleeps: RecordingSleep):
    emulator.inject("rate_limit", retry_after=7)
    emulator.inject("unavailable", retry_after=11)
    client.list_assets()
    assert 7 <= sleeps.waits[0] <= 8
    assert 11 <= sleeps.waits[1] <= 12.2


def test_retry_after_as_http_date_is_honoured(
    emulator: Emulator, client: RoughyClient, sleeps: RecordingSleep
):
    emulator.inject("rate_limit", retry_after=30, retry_after_date=True)
    client.list_assets()
    assert 27 <= sleeps.waits[0] <= 31.1


def test_retry_after_above_the_cap_fails_clearly(emulator: Emulator, sleeps: RecordingSleep):
    emulator.inject("rate_limit", retry_after=600)
    policy = RetryPolicy(max_retry_after_seconds=120)
    with RoughyClient(emulator.api_key, emulator.base_url, retry=policy, sleep=sleeps) as client:
        with pytest.raises(RoughyRateLimitError) as caught:
            client.list_assets()
    assert sleeps.waits == []
    assert caught.value.retry_after == 600
    assert "above the cap of 120 s" in str(caught.value) and "req_" in str(caught.value)


def test_internal_errors_are_retried_a_few_times_only(emulator: Emulator, client: RoughyClient):
    emulator.inject("internal", count=10)
    with pytest.raises(RoughyServerError) as caught:
        client.list_assets()
    assert emulator.list_requests == client.retry_policy.max_internal_error_attempts == 3
    assert caught.value.code == "internal_error" and "gave up after 3 answers of 500" in str(caught.value)


def test_persistent_outage_gives_up_after_max_attempts(emulator: Emulator, client: RoughyClient):
    emulator.inject("bad_gateway_html", count=50)
    with pytest.raises(RoughyServerError) as caught:
        client.list_assets()
    assert emulator.list_requests == 6
    assert caught.value.status == 502 and "not Roughy's error envelope" in str(caught.value)


def test_deadline_stops_retrying(emulator: Emulator, sleeps: RecordingSleep):
    emulator.inject("unavailable", retry_after=5, count=5)
    with (
        RoughyClient(
            emulator.api_key, emulator.base_url, retry=RetryPolicy(deadline_seconds=2), sleep=sleeps
        ) as client,
        pytest.raises(RoughyServerError, match="deadline"),
    ):
        client.list_assets()
    assert sleeps.waits == []


def test_backoff_waits_grow_with_full_jitter(
    emulator: Emulator, client: RoughyClient, sleeps: RecordingSleep
):
    emulator.inject("drop", count=4)
    client.list_assets()
    ceilings = [0.5, 1.0, 2.0, 4.0]
    assert len(sleeps.waits) == 4
    assert all(0 <= wait <= ceiling for wait, ceiling in zip(sleeps.waits, ceilings, strict=True))


def test_wrong_key_fails_fast_with_message_and_request_id(emulator: Emulator, sleeps: RecordingSleep):
    with RoughyClient("sk_not_the_key", emulator.base_url, sleep=sleeps) as client:
        with pytest.raises(RoughyAuthError) as caught:
            client.list_assets()
    error = caught.value
    assert (error.status, error.code, error.message) == (
        401,
        "unauthenticated",
        "Missing or invalid API key.",
    )
    assert error.request_id and error.request_id in str(error)
    assert "ROUGHY_API_KEY" in str(error)
    assert emulator.list_requests == 1 and sleeps.waits == []


def test_unknown_project_fails_fast(emulator: Emulator, client: RoughyClient):
    with pytest.raises(RoughyNotFoundError) as caught:
        client.list_assets(project_id=UNKNOWN_PROJECT)
    assert caught.value.message == "Project not found." and caught.value.request_id in str(caught.value)
    assert emulator.list_requests == 1


def test_server_side_validation_error_fails_fast_with_fields(emulator: Emulator, client: RoughyClient):
    # The client checks its arguments before sending, so send a bad query below that check to see
    # how a 422 from the server is surfaced.
    with pytest.raises(RoughyValidationError) as caught:
        client._get_page({"limit": "500", "state": "archived"}, 30.0)
    fields = {f.field for f in caught.value.fields}
    assert fields == {"query.limit", "query.state"}
    assert "query.limit" in str(caught.value) and caught.value.request_id in str(caught.value)
    assert emulator.list_requests == 1


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_a_compressed_page_reads_as_the_plain_one(emulator: Emulator, client: RoughyClient, encoding: str):
    plain = client.list_assets(limit=100)
    emulator.inject(encoding)
    compressed = client.list_assets(limit=100)
    assert emulator.list_requests == 2 and emulator.faults == [encoding]
    assert compressed.items == plain.items and compressed.total == plain.total


@pytest.mark.parametrize("kind", ["missing_field", "unknown_state", "bad_duration", "wrong_type", "bad_id"])
def test_off_spec_body_is_a_protocol_error_naming_the_request(
    emulator: Emulator, client: RoughyClient, kind: str
):
    emulator.inject(kind)
    with pytest.raises(RoughyProtocolError) as caught:
        client.list_assets()
    assert "breaks the API contract" in str(caught.value) and "$.items[0]" in str(caught.value)
    assert caught.value.request_id and caught.value.request_id in str(caught.value)
    assert emulator.list_requests == 1, "a contract break is not retried"


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"project_id": "not-a-uuid"}, "project_id"),
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"limit": True}, "limit"),
        ({"offset": -1}, "offset"),
        ({"state": "archived"}, "state"),
    ],
)
def test_bad_arguments_are_refused_before_sending(emulator: Emulator, client: RoughyClient, kwargs, named):
    with pytest.raises(ValueError, match=named):
        client.list_assets(**kwargs)
    assert emulator.list_requests == 0


def test_bad_construction_is_refused():
    with pytest.raises(ValueError, match="ROUGHY_API_KEY"):
        RoughyClient("  ")
    with pytest.raises(ValueError, match="base_url"):
        RoughyClient("sk_x", "api.roughy.ai")


SECRET = "Zq9SECRETpart7"
BAD_KEYS = {
    "empty": "",
    "leading space": f" sk_live_{SECRET}",
    "trailing newline": f"sk_live_{SECRET}\n",
    "trailing CRLF": f"sk_live_{SECRET}\r\n",
    "inner newline": f"sk_live_{SECRET}\nX-Injected: 1",
    "NUL byte": f"sk_live_{SECRET}\x00",
    "tab inside": f"sk_live_{SECRET[:4]}\t{SECRET[4:]}",
    "space inside": f"sk_live_{SECRET[:4]} {SECRET[4:]}",
    "DEL": f"sk_live_{SECRET}\x7f",
    "non-ASCII letter": f"sk_live_{SECRET}\u00e9",
    "zero-width space": f"sk_live_{SECRET}\u200b",
    "line separator": f"sk_live_{SECRET}\u2028",
    "non-breaking space": f"sk_live_{SECRET}\u00a0",
    "smart quote": f"\u201csk_live_{SECRET}\u201d",
}


@pytest.mark.parametrize("name", sorted(BAD_KEYS))
def test_a_key_that_cannot_be_sent_is_refused_at_construction_without_showing_it(name: str):
    key = BAD_KEYS[name]
    with pytest.raises(ValueError) as caught:
        RoughyClient(key, "http://127.0.0.1:9")
    text = str(caught.value)
    assert SECRET not in text and SECRET[:4] not in text and "ROUGHY_API_KEY" in text
    if key.startswith("sk_live_"):
        assert "sk_live_…" in text
    with pytest.raises(ValueError) as caught_resource:
        RoughyResource(api_key=key, base_url="http://127.0.0.1:9")
    assert SECRET not in str(caught_resource.value) and SECRET[:4] not in str(caught_resource.value)


@pytest.mark.parametrize("key", ["sk_live_0123456789abcdef", "sk_test_A-b.c~d+e/f=", "k", "x" * 300])
def test_printable_ascii_keys_are_accepted(key: str):
    RoughyClient(key, "http://127.0.0.1:9").close()
    RoughyResource(api_key=key, base_url="http://127.0.0.1:9").get_client().close()


class _UnsendableTransport(httpx.BaseTransport):
    """A transport that refuses every request the way h11 refuses an illegal header value."""

    def __init__(self) -> None:
        self.calls = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        raise httpx.LocalProtocolError(f"Illegal header value b'Bearer sk_live_{SECRET}'")


def test_a_request_that_cannot_be_sent_is_never_retried_nor_quoted(
    sleeps: RecordingSleep, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.DEBUG)
    transport = _UnsendableTransport()
    with RoughyClient(f"sk_live_{SECRET}", "http://127.0.0.1:9", transport=transport, sleep=sleeps) as c:
        with pytest.raises(RoughyConnectionError) as caught:
            c.list_assets()
    assert transport.calls == 1 and sleeps.waits == [] and c.stats.retries == 0
    assert "could not be sent" in str(caught.value) and "LocalProtocolError" in str(caught.value)
    assert SECRET not in str(caught.value) + repr(caught.value) + caplog.text


@pytest.mark.parametrize(
    ("given", "root"),
    [
        ("http://h:1", "http://h:1"),
        ("http://h:1/", "http://h:1"),
        ("http://h:1/v1", "http://h:1"),
        ("http://h:1/v1/", "http://h:1"),
        ("http://h:1/V1", "http://h:1"),
        ("  http://h:1/gateway/roughy/v1/ ", "http://h:1/gateway/roughy"),
        ("https://api.roughy.ai/v1", "https://api.roughy.ai"),
    ],
)
def test_base_url_is_normalised_to_the_api_root(given: str, root: str):
    with RoughyClient("sk_x", given) as made:
        assert made.base_url == root
    assert RoughyResource(api_key="sk_x", base_url=given).base_url == root


@pytest.mark.parametrize(
    "given",
    ["api.roughy.ai", "ftp://h/", "http://h:1/v1/assets", "http://h:1/?x=1", "http://u:p@h:1", "http://h#f"],
)
def test_a_base_url_that_is_not_an_api_root_is_refused(given: str):
    with pytest.raises(ValueError, match="base_url"):
        RoughyClient("sk_x", given)


def test_a_base_url_ending_in_v1_reaches_the_listing(emulator: Emulator, sleeps: RecordingSleep):
    with RoughyClient(emulator.api_key, emulator.base_url + "/v1/", sleep=sleeps) as made:
        assert made.list_assets().total == emulator.world.count()
    counts = emulator.app.request_counts
    assert counts["/v1/assets"] == 1 and "/v1/v1/assets" not in counts


def test_a_wrong_path_prefix_is_named_with_its_real_path(emulator: Emulator, sleeps: RecordingSleep):
    with RoughyClient(emulator.api_key, emulator.base_url + "/roughy", sleep=sleeps) as made:
        with pytest.raises(RoughyNotFoundError) as caught:
            made.list_assets()
    text = str(caught.value)
    assert "GET /roughy/v1/assets?" in text and "Check base_url" in text and "project id" not in text
    assert caught.value.request_id and caught.value.request_id in text


def test_connection_refused_becomes_a_connection_error(sleeps: RecordingSleep):
    with (
        RoughyClient("sk_x", "http://127.0.0.1:9", sleep=sleeps, retry=RetryPolicy(max_attempts=2)) as client,
        pytest.raises(RoughyConnectionError, match="connection failed"),
    ):
        client.list_assets()


def test_canary_key_never_appears_in_logs_errors_or_repr(
    emulator: Emulator, sleeps: RecordingSleep, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.DEBUG)
    texts = []
    with RoughyClient(CANARY_KEY, emulator.base_url, sleep=sleeps) as client:
        texts.append(repr(client))
        for kind in ["internal", "rate_limit", "drop", "truncated", "bad_gateway_html"]:
            emulator.inject(kind)
        client.list_assets()
        for kind in ["missing_field"]:
            emulator.inject(kind)
            with pytest.raises(RoughyProtocolError) as caught:
                client.list_assets()
            texts += [str(caught.value), repr(caught.value)]
        with pytest.raises(RoughyNotFoundError) as caught_404:
            client.list_assets(project_id=UNKNOWN_PROJECT)
        texts += [str(caught_404.value), repr(caught_404.value)]
    with RoughyClient(CANARY_KEY + "x", emulator.base_url, sleep=sleeps) as wrong:
        with pytest.raises(RoughyAuthError) as caught_auth:
            wrong.list_assets()
        texts += [str(caught_auth.value), repr(caught_auth.value), repr(wrong)]
    assert "retry attempt" in caplog.text
    for text in [caplog.text, *texts]:
        assert CANARY_KEY not in text


def test_retry_logs_say_attempt_wait_status_code_and_request_id(
    emulator: Emulator, client: RoughyClient, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.WARNING, logger="roughy_dagster.client")
    emulator.inject("rate_limit", retry_after=2)
    client.list_assets()
    (record,) = [r for r in caplog.records if r.name == "roughy_dagster.client"]
    assert record.roughy_attempt == 2 and 2 <= record.roughy_wait_seconds <= 2.5
    assert record.roughy_status == 429 and record.roughy_code == "rate_limited"
    assert record.roughy_request_id.startswith("req_") and record.roughy_request_id in record.getMessage()


class _RecordingTransport(httpx.BaseTransport):
    """A user's own transport: real HTTP through `httpx.HTTPTransport`, noting every request it carries."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.seen: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def test_a_custom_transport_carries_every_request_with_the_client_headers(emulator: Emulator, sleeps):
    transport = _RecordingTransport()
    with RoughyClient(emulator.api_key, emulator.base_url, sleep=sleeps, transport=transport) as custom:
        items = list(custom.iter_assets(project_id=emulator.world.projects[0]))
        emulator.inject("gzip")
        compressed = custom.list_assets(limit=5)
        emulator.inject("drop")
        after_a_drop = custom.list_assets(limit=5)
        assert custom.stats.retries == 1 and after_a_drop.items == compressed.items
    assert as_listing_dicts(items) == emulator.world.listing(emulator.world.projects[0])
    assert compressed.items and len(transport.seen) == emulator.list_requests
    sent = transport.seen[0].headers
    assert sent["authorization"] == f"Bearer {emulator.api_key}" and sent["user-agent"].startswith(
        "roughy-dagster/"
    )


# -- budgets: fault sequences x policies, on the client's own clock -------------------------------------

UNAVAILABLE = {"kind": "unavailable"}
GATEWAY = {"kind": "bad_gateway_html"}
INTERNAL = {"kind": "internal"}
BUDGET_CASES = {
    # name: (faults in order, policy, attempts, waits, error class or None, out_of_time)
    "503, 502, 500: one 500 is within the 500 budget": (
        [UNAVAILABLE, GATEWAY, INTERNAL],
        {},
        4,
        3,
        None,
        False,
    ),
    "500 x3 exhausts the 500 budget": ([INTERNAL] * 3, {}, 3, 2, RoughyServerError, False),
    "500s among 503s: the third 500 stops": (
        [INTERNAL, UNAVAILABLE, INTERNAL, UNAVAILABLE, INTERNAL],
        {},
        5,
        4,
        RoughyServerError,
        False,
    ),
    "503 x10 exhausts max_attempts": ([UNAVAILABLE] * 10, {}, 6, 5, RoughyServerError, False),
    "two 503s within max_attempts=3": ([UNAVAILABLE] * 2, {"max_attempts": 3}, 3, 2, None, False),
    "Retry-After 8 with 5 s left fails at once": (
        [{"kind": "rate_limit", "retry_after": 8}],
        {"deadline_seconds": 5},
        1,
        0,
        RoughyRateLimitError,
        True,
    ),
    "Retry-After 8 with 20 s left is waited": (
        [{"kind": "rate_limit", "retry_after": 8}],
        {"deadline_seconds": 20},
        2,
        1,
        None,
        False,
    ),
    "503 Retry-After 2 until the deadline": (
        [{"kind": "unavailable", "retry_after": 2}] * 6,
        {"deadline_seconds": 7},
        4,
        3,
        RoughyServerError,
        True,
    ),
    "three Retry-After 3 within 10 s": (
        [{"kind": "rate_limit", "retry_after": 3}] * 3,
        {"deadline_seconds": 10},
        4,
        3,
        None,
        False,
    ),
    "Retry-After above the cap": (
        [{"kind": "rate_limit", "retry_after": 600}],
        {"max_retry_after_seconds": 120},
        1,
        0,
        RoughyRateLimitError,
        False,
    ),
}


@pytest.mark.parametrize("name", list(BUDGET_CASES))
def test_fault_sequences_against_budgets(emulator: Emulator, name: str):
    faults, policy, attempts, waits, error_class, out_of_time = BUDGET_CASES[name]
    for fault in faults:
        emulator.inject(**fault)
    clock = VirtualClock()
    policy_made = RetryPolicy(**policy)
    with RoughyClient(
        emulator.api_key, emulator.base_url, retry=policy_made, sleep=clock, clock=clock.now
    ) as made:
        started = clock.now()
        if error_class is None:
            made.list_assets()
        else:
            with pytest.raises(error_class) as caught:
                made.list_assets()
            assert caught.value.out_of_time is out_of_time
            assert caught.value.request_id and caught.value.request_id in str(caught.value)
        elapsed = clock.now() - started
    assert emulator.list_requests == attempts, "attempts"
    assert len(clock.waits) == waits == made.stats.retries, "recorded waits"
    assert elapsed <= policy_made.deadline_seconds, "the call ended within its deadline, on its own clock"
    for fault, wait in zip(faults, clock.waits, strict=False):
        if fault.get("retry_after"):
            assert fault["retry_after"] <= wait <= fault["retry_after"] + 1.0


class _TimedTransport(httpx.BaseTransport):
    """Real HTTP through `httpx.HTTPTransport`, noting the client clock and read timeout of each attempt."""

    def __init__(self, clock: VirtualClock) -> None:
        self.inner = httpx.HTTPTransport()
        self.clock = clock
        self.attempts: list[tuple[float, float]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.attempts.append((self.clock.now(), request.extensions["timeout"]["read"]))
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def test_the_deadline_bounds_attempts_too(emulator: Emulator):
    # The case, scaled down: deadline 3 s, read timeout 2 s, a server answering after 2.5 s.
    emulator.inject("slow", delay=0.75, count=10)
    clock = VirtualClock()
    transport = _TimedTransport(clock)
    with RoughyClient(
        emulator.api_key,
        emulator.base_url,
        timeouts=Timeouts(read=0.6),
        retry=RetryPolicy(deadline_seconds=0.9),
        transport=transport,
        sleep=clock,
        clock=clock.now,
    ) as made:
        started = clock.now()
        with pytest.raises(RoughyConnectionError) as caught:
            made.list_assets()
    assert caught.value.out_of_time and "deadline" in str(caught.value)
    assert 1 <= len(transport.attempts) <= 3
    assert transport.attempts[0][1] == 0.6
    # Each attempt's timeout is what remained when it was computed, a few statements before the transport
    # notes the clock (a thread switch at most): allow 50 ms, well below the 600 ms timeout.
    for sent_at, read_timeout in transport.attempts:
        assert sent_at + read_timeout <= started + 0.9 + 0.05, "no attempt may outlive the deadline"


def test_a_caller_deadline_bounds_every_call_in_its_block(emulator: Emulator):
    emulator.inject("rate_limit", retry_after=30)
    clock = VirtualClock()
    with RoughyClient(emulator.api_key, emulator.base_url, sleep=clock, clock=clock.now) as made:
        assert made.time_left() is None
        with made.deadline(20):
            assert 19 < (made.time_left() or 0) <= 20
            with pytest.raises(RoughyRateLimitError) as caught:
                made.list_assets()
            assert caught.value.out_of_time and "Retry-After" in str(caught.value)
            assert "RoughyClient.deadline()" in str(caught.value)
            clock(25)  # time passes
            with pytest.raises(RoughyDeadlineError) as late:
                made.list_assets()
            assert late.value.out_of_time and "not sent" in str(late.value)
        assert made.time_left() is None
        made.list_assets()
    assert clock.waits == [25] and emulator.list_requests == 2


# -- content codings and bodies x statuses, over the wire ------------------------------------------------

CODINGS = {
    # name: (Content-Encoding as sent, body)
    "gzip": ("gzip", "valid"),
    "x-gzip": ("x-gzip", "valid"),
    "upper case GZIP": ("GZIP", "valid"),
    "mixed case X-Gzip": ("X-Gzip", "valid"),
    "deflate": ("deflate", "valid"),
    "empty header value": ("", "valid"),
    "gzip, empty body": ("gzip", "empty"),
    "x-gzip, empty body": ("x-gzip", "empty"),
    "GZIP, empty body": ("GZIP", "empty"),
    "gzip, garbage body": ("gzip", "garbage"),
    "x-gzip, garbage body": ("x-gzip", "garbage"),
    "deflate, garbage body": ("deflate", "garbage"),
    "identity, garbage body": ("identity", "garbage"),
}


@pytest.mark.parametrize("status", [200, 429, 503])
@pytest.mark.parametrize("name", list(CODINGS))
def test_content_codings_and_bodies_by_status(emulator: Emulator, name: str, status: int):
    encoding, body = CODINGS[name]
    clock = VirtualClock()
    policy = RetryPolicy(max_attempts=2)
    with RoughyClient(
        emulator.api_key, emulator.base_url, retry=policy, sleep=clock, clock=clock.now
    ) as made:
        plain = made.list_assets(limit=100)
        emulator.reset_counts()
        if status != 200:
            # Handled by status and Retry-After whatever the body: waited, retried, and the last error
            # still says what the server said.
            emulator.inject("encoded", status=status, encoding=encoding, body=body, retry_after=8, count=2)
            error_class = RoughyRateLimitError if status == 429 else RoughyServerError
            with pytest.raises(error_class) as caught:
                made.list_assets(limit=100)
            assert emulator.list_requests == 2 and len(clock.waits) == 1 and 8 <= clock.waits[0] <= 9
            assert caught.value.status == status and caught.value.retry_after == 8
            assert caught.value.request_id and caught.value.request_id in str(caught.value)
            return
        emulator.inject("encoded", encoding=encoding, body=body)
        if body == "valid":
            page = made.list_assets(limit=100)
            assert page.items == plain.items and emulator.list_requests == 1
        elif body == "empty":  # an empty 200 is a body cut short: retried
            page = made.list_assets(limit=100)
            assert page.items == plain.items and emulator.list_requests == 2
        else:  # garbage: sending again would get the same
            with pytest.raises(RoughyProtocolError) as caught:
                made.list_assets(limit=100)
            assert emulator.list_requests == 1 and clock.waits == []
            assert caught.value.request_id and caught.value.request_id in str(caught.value)
            assert "GET /v1/assets?limit=100" in str(caught.value)


@pytest.mark.parametrize(
    ("kind", "retried"),
    [
        ("bad_escape", False),  # the lone surrogate escape
        ("not_json", False),
        ("truncated", True),  # JSON cut short, the transfer complete
        ("cut_short", True),  # the transfer itself cut short (Content-Length unmet)
    ],
)
def test_only_a_body_cut_short_is_retried(
    emulator: Emulator, client: RoughyClient, sleeps: RecordingSleep, kind: str, retried: bool
):
    emulator.inject(kind)
    if retried:
        assert client.list_assets().items
        assert emulator.list_requests == 2 and len(sleeps.waits) == 1
        return
    with pytest.raises(RoughyProtocolError) as caught:
        client.list_assets()
    assert emulator.list_requests == 1 and sleeps.waits == []
    assert "not JSON" in str(caught.value) and "cut short" not in str(caught.value)
    assert caught.value.request_id and caught.value.request_id in str(caught.value)

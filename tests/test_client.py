"""`RoughyClient` against the emulator over real HTTP: paging, retries, fail-fast errors, secrets."""

from __future__ import annotations

import logging

import httpx
import msgspec
import pytest

from roughy_dagster.client import (
    AssetState,
    RetryPolicy,
    RoughyAuthError,
    RoughyClient,
    RoughyConnectionError,
    RoughyNotFoundError,
    RoughyProtocolError,
    RoughyRateLimitError,
    RoughyServerError,
    RoughyValidationError,
    Timeouts,
)
from roughy_dagster.emulator import TRANSIENT_FAULT_KINDS, Emulator

from .conftest import CANARY_KEY, RecordingSleep

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
    assert caught.value.code == "internal_error" and "gave up after 3 attempts" in str(caught.value)


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
        client._get_page({"limit": "500", "state": "archived"})
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

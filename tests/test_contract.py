"""Every emulator response shape against the OpenAPI contract, and the client's parsing of its examples."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import msgspec
import pytest
from openapi_schema_validator import OAS31Validator

from roughy_dagster.client import AssetPage, AssetState, AssetSummary
from roughy_dagster.client.models import ErrorResponse
from roughy_dagster.emulator import Emulator

from .conftest import SPEC_PATH


def validator_for(spec: dict, schema_name: str) -> OAS31Validator:
    schema = {"$ref": f"#/components/schemas/{schema_name}", "components": spec["components"]}
    return OAS31Validator(schema, format_checker=OAS31Validator.FORMAT_CHECKER)


def get(emulator: Emulator, query: str, key: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key or emulator.api_key}"}
    return httpx.get(f"{emulator.base_url}/v1/assets?{query}", headers=headers)


def test_vendored_spec_matches_shared_copy():
    shared = Path(__file__).resolve().parents[2] / "shared" / "roughy" / "openapi-list-assets.yaml"
    if not shared.exists():
        pytest.skip("no ../shared beside the checkout")
    assert shared.read_text() == SPEC_PATH.read_text()


@pytest.mark.parametrize(
    "query",
    ["", "limit=100", "limit=1&offset=3", "offset=100000", "state=ready&limit=100", "state=pending_upload"]
    + [f"state={state.value}&limit=100" for state in AssetState],
)
def test_pages_match_the_spec(emulator: Emulator, spec: dict, query: str):
    validator = validator_for(spec, "AssetListResponse")
    for project_id in [*emulator.world.projects, None]:
        full_query = f"{query}&project_id={project_id}" if project_id else query
        response = get(emulator, full_query)
        assert response.status_code == 200
        assert response.headers["x-request-id"]
        body = response.json()
        validator.validate(body)
        assert body["limit"] == int(
            dict(p.split("=") for p in f"limit=20&{query}".split("&") if p).get("limit")
        )


def test_pages_cover_every_state_and_field_rule(emulator: Emulator, spec: dict):
    """The seeded world has every state, so the shapes above exercised each per-state rule."""
    project_id = emulator.world.projects[0]
    for state in AssetState:
        assert emulator.world.count(project_id, state.value) > 0, state


@pytest.mark.parametrize(
    ("query", "key", "status", "code"),
    [
        ("", "sk_wrong", 401, "unauthenticated"),
        ("project_id=00000000-0000-4000-8000-000000000000", None, 404, "not_found"),
        ("project_id=nope", None, 422, "validation_error"),
        ("limit=0", None, 422, "validation_error"),
        ("limit=101", None, 422, "validation_error"),
        ("offset=-1", None, 422, "validation_error"),
        ("state=archived", None, 422, "validation_error"),
        ("limit=ten", None, 422, "validation_error"),
    ],
)
def test_errors_match_the_spec(
    emulator: Emulator, spec: dict, query: str, key: str | None, status: int, code: str
):
    response = get(emulator, query, key)
    assert response.status_code == status
    assert response.headers["x-request-id"]
    body = response.json()
    validator_for(spec, "ErrorResponse").validate(body)
    assert body["error"]["code"] == code
    assert code in spec["components"]["schemas"]["ErrorCode"]["enum"]
    if code == "validation_error":
        assert body["error"]["fields"], "a validation error names its fields"
        assert all(f["field"].startswith("query.") for f in body["error"]["fields"])


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [("rate_limit", 429, "rate_limited"), ("internal", 500, "internal_error"), ("unavailable", 503, None)],
)
def test_injected_json_errors_match_the_spec(
    emulator: Emulator, spec: dict, kind: str, status: int, code: str | None
):
    emulator.inject(kind, retry_after=3)
    response = get(emulator, "")
    assert response.status_code == status
    body = response.json()
    validator_for(spec, "ErrorResponse").validate(body)
    if code:
        assert body["error"]["code"] == code
    if kind in ("rate_limit", "unavailable"):
        assert response.headers["retry-after"] == "3"


def test_client_parses_the_spec_examples(spec: dict):
    schemas = spec["components"]["schemas"]
    page = msgspec.json.decode(json.dumps(schemas["AssetListResponse"]["example"]), type=AssetPage)
    assert page.total == 1 and page.items[0].state is AssetState.READY
    assert page.items[0].duration_seconds == "324.412"
    assert page.items[0].created_at.utcoffset() is not None
    summary = msgspec.json.decode(json.dumps(schemas["AssetSummary"]["example"]), type=AssetSummary)
    assert summary == msgspec.structs.replace(
        page.items[0], error_code=None, error_message=None, upload_url=None
    )
    error = msgspec.convert(schemas["ErrorResponse"]["example"], ErrorResponse)
    assert error.error.code == "validation_error" and error.error.fields[0].field == "body.name"


def test_client_tolerates_unknown_extra_fields(spec: dict):
    example = dict(
        spec["components"]["schemas"]["AssetSummary"]["example"], thumbnail_url="x", new_field={"a": 1}
    )
    assert msgspec.json.decode(json.dumps(example), type=AssetSummary).id

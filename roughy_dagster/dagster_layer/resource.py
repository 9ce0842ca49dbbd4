"""`RoughyResource`: Dagster configuration for `RoughyClient`, with the API key kept out of sight."""

from __future__ import annotations

from collections.abc import Iterator

import dagster as dg
from pydantic import ConfigDict, Field, field_validator

from ..client import DEFAULT_BASE_URL, RetryPolicy, RoughyClient, Timeouts
from ..client.client import validate_api_key, validate_base_url
from ..sync.engine import DEFAULT_CONCURRENCY


class RoughyResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """Authenticated, retried access to Roughy's listing; set the key with `EnvVar("ROUGHY_API_KEY")`.

    Dagster shows an `EnvVar` by name only, so the key never reaches the UI or the run config; it is also
    left out of `repr`. The key is checked when the resource is built with its value (for an `EnvVar`, when
    Dagster resolves it at run time): a key that cannot be sent as a header fails with a message that never
    shows it. Nothing here touches the network until `get_client()` is used.
    """

    model_config = ConfigDict(hide_input_in_errors=True)  # a rejected api_key is never echoed back

    api_key: str = Field(
        repr=False,
        description="Roughy API key (`sk_…`). Pass dg.EnvVar('ROUGHY_API_KEY'): the UI shows its name only.",
    )
    base_url: str = Field(
        default=DEFAULT_BASE_URL, description="Roughy API root URL (a trailing `/v1` is dropped)."
    )
    connect_timeout_seconds: float = Field(default=10.0, gt=0, description="TCP/TLS connect timeout.")
    read_timeout_seconds: float = Field(default=30.0, gt=0, description="Timeout waiting for a response.")
    max_attempts: int = Field(
        default=6, ge=1, description="Attempts in all for connection failures, 429 and 502/503/504."
    )
    max_internal_error_attempts: int = Field(
        default=3, ge=1, description="Attempts in all for 500 internal_error."
    )
    max_retry_after_seconds: float = Field(
        default=120.0, ge=0, description="A Retry-After above this fails the call instead of waiting."
    )
    deadline_seconds: float = Field(
        default=300.0, gt=0, description="Overall budget of one API call, retries and waits included."
    )

    concurrency: int = Field(
        default=DEFAULT_CONCURRENCY,
        ge=1,
        le=64,
        description=(
            "Listing requests kept in flight while a sync reads a list whole (halved after 429s). "
            "Raise it for a remote API with high latency; 1 reads one page at a time."
        ),
    )
    max_requests: int | None = Field(
        default=None,
        ge=1,
        description=(
            "Cap on one sync's listing requests (None: only the budget the sync derives from what it "
            "reads). A sync that reaches it commits only what it proved and reports verified=false."
        ),
    )

    @field_validator("api_key")
    @classmethod
    def _check_api_key(cls, value: str) -> str:
        if isinstance(value, dg.EnvVar):
            return value  # resolved at run time, then checked again
        return validate_api_key(value)

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        if isinstance(value, dg.EnvVar):
            return value  # resolved at run time; checked by get_client()
        return validate_base_url(value)

    def get_client(self) -> RoughyClient:
        """A new `RoughyClient` configured from this resource; close it (or use `with`) when done."""
        return RoughyClient(
            self.api_key,
            self.base_url,
            timeouts=Timeouts(connect=self.connect_timeout_seconds, read=self.read_timeout_seconds),
            retry=RetryPolicy(
                max_attempts=self.max_attempts,
                max_internal_error_attempts=self.max_internal_error_attempts,
                max_retry_after_seconds=self.max_retry_after_seconds,
                deadline_seconds=self.deadline_seconds,
            ),
        )

    def sync_and_materialize(
        self, context: dg.AssetExecutionContext, database: str, *, full_refresh: bool = False
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:  # type: ignore[type-arg]
        """Sync the run's project partitions into `database`; yield the tables' materializations and checks.

        For the body of a `@roughy_assets` function (as `dlt.run(context=context)` for `@dlt_assets`).
        """
        from .assets import sync_and_materialize

        yield from sync_and_materialize(context, self, database, full_refresh=full_refresh)

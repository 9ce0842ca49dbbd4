"""Settings the Dagster layer reads from the environment, checked once with messages that say what to fix."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from ..client.client import DEFAULT_BASE_URL, validate_base_url, validate_project_id
from ..store.readers import DEFAULT_DATABASE
from ..sync.engine import DEFAULT_CONCURRENCY

DEFAULT_DUCKDB_PATH = DEFAULT_DATABASE
DEFAULT_SYNC_CRON = "*/15 * * * *"
DEFAULT_RECONCILE_CRON = "30 3 * * *"


class RoughyConfigurationError(ValueError):
    """A setting is missing or malformed; the message names the variable and what a good value is."""


@dataclass(frozen=True)
class RoughySettings:
    """Where to read (base URL, which projects), where to write (DuckDB path) and how often."""

    base_url: str = DEFAULT_BASE_URL
    duckdb_path: str = DEFAULT_DUCKDB_PATH
    project_ids: tuple[str, ...] = ()
    sync_cron: str = DEFAULT_SYNC_CRON
    reconcile_cron: str = DEFAULT_RECONCILE_CRON
    api_key_env_var: str = "ROUGHY_API_KEY"
    state_sensor_interval_seconds: int = 30
    discovery_interval_seconds: int = 300
    automation_running: bool = False
    """Start sensors and schedules on by default (`ROUGHY_AUTOMATION_RUNNING=1`, as the demo does)."""
    concurrency: int = DEFAULT_CONCURRENCY
    """`RoughyResource.concurrency`: listing requests in flight while a list is read whole."""
    max_requests: int | None = None
    """`RoughyResource.max_requests`: a cap on one sync's listing requests (None: no cap)."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RoughySettings:
        """Read `ROUGHY_BASE_URL`, `ROUGHY_DUCKDB_PATH`, `ROUGHY_PROJECT_IDS` and the two cron variables."""
        env = os.environ if environ is None else environ
        base_url = env.get("ROUGHY_BASE_URL", "").strip() or DEFAULT_BASE_URL
        try:
            base_url = validate_base_url(base_url)
        except ValueError as error:
            raise RoughyConfigurationError(f"ROUGHY_BASE_URL: {error}") from None
        return cls(
            base_url=base_url,
            duckdb_path=env.get("ROUGHY_DUCKDB_PATH", "").strip() or DEFAULT_DUCKDB_PATH,
            project_ids=parse_project_ids(env.get("ROUGHY_PROJECT_IDS", "")),
            sync_cron=env.get("ROUGHY_SYNC_CRON", "").strip() or DEFAULT_SYNC_CRON,
            reconcile_cron=env.get("ROUGHY_RECONCILE_CRON", "").strip() or DEFAULT_RECONCILE_CRON,
            state_sensor_interval_seconds=_positive_int(env, "ROUGHY_SENSOR_INTERVAL_SECONDS", 30),
            discovery_interval_seconds=_positive_int(env, "ROUGHY_DISCOVERY_INTERVAL_SECONDS", 300),
            automation_running=env.get("ROUGHY_AUTOMATION_RUNNING", "").strip().lower()
            in ("1", "true", "yes"),
        )


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise RoughyConfigurationError(f"{name}: expected a whole number of seconds (1 or more), got {raw!r}")
    return int(raw)


def parse_project_ids(raw: str) -> tuple[str, ...]:
    """Comma- or space-separated project UUIDs, normalized and de-duplicated in order."""
    found: list[str] = []
    for token in raw.replace(",", " ").split():
        try:
            project_id = str(validate_project_id(token))
        except ValueError:
            raise RoughyConfigurationError(
                f"ROUGHY_PROJECT_IDS: {token!r} is not a project id; give UUIDs separated by commas, "
                "e.g. 019de7f5-7e21-7402-92a8-1c0e1fa84411,019de7f5-7e21-7402-92a8-1c0e1fa84412"
            ) from None
        if project_id not in found:
            found.append(project_id)
    return tuple(found)

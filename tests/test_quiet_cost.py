"""A quiet sync's DuckDB work does not grow with the account: the same statements whatever the number of
projects, and no stored asset rows fetched beyond the ids on the pages read (issue #13, "quiet is cheap").

Shown by the code path: every statement the store runs is counted through a wrapped connection.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from roughy_dagster import sync_account
from roughy_dagster.emulator import Emulator, World
from roughy_dagster.store import store as store_module


class _Counted:
    """A DuckDB connection that records each statement it runs (everything else passes through)."""

    def __init__(self, connection: Any, statements: list[str]) -> None:
        self._connection = connection
        self._statements = statements

    def execute(self, sql: str, *args: Any, **kwargs: Any) -> Any:
        self._statements.append(" ".join(str(sql).split()))
        return self._connection.execute(sql, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The statements every store connection of the test runs, in order."""
    seen: list[str] = []
    opened = store_module.open_database

    @contextmanager
    def counting(*args: Any, **kwargs: Any) -> Iterator[Any]:
        with opened(*args, **kwargs) as connection:
            yield _Counted(connection, seen)

    monkeypatch.setattr(store_module, "open_database", counting)
    return seen


def _quiet_account_sync(tmp_path, client_for, statements: list[str], projects: int) -> list[str]:
    world = World.seeded(seed=11, projects=projects, assets_per_project=40)
    database = tmp_path / f"{projects}.duckdb"
    with Emulator(world) as emulator, client_for(emulator) as client:
        sync_account(client, database)
        statements.clear()
        report = sync_account(client, database)
    assert report.verified and (report.new, report.changed, report.deleted, report.revived) == (0, 0, 0, 0)
    assert len(report.projects) == projects
    return list(statements)


def test_a_quiet_account_sync_runs_the_same_statements_for_3_or_24_projects(tmp_path, client_for, statements):
    few = _quiet_account_sync(tmp_path, client_for, statements, 3)
    many = _quiet_account_sync(tmp_path, client_for, statements, 24)
    # no statement per project (or per stored row): the same plan, set-based, whatever the account holds
    assert "COMMIT" in many and any("roughy_classified" in sql for sql in many)  # both phases counted
    assert len(many) == len(few), "\n".join(sorted(set(many) ^ set(few)))
    # and a quiet sync never asks which projects of new rows had rows stored (there are none)
    assert not any("kind = 'new'" in sql and sql.startswith("UPDATE") for sql in many)

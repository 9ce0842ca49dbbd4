"""`sync_account`: every project of an account synced at once, with per-project reports."""

from __future__ import annotations

import pytest

from roughy_dagster import AccountSyncReport, sync_account
from roughy_dagster.client import RoughyClient
from roughy_dagster.emulator import Emulator

from .helpers import stored_listing, truth


@pytest.fixture
def database(tmp_path):
    return tmp_path / "roughy.duckdb"


def test_every_project_equals_its_listing(emulator: Emulator, client: RoughyClient, database):
    world = emulator.world
    report = sync_account(client, database)
    assert isinstance(report, AccountSyncReport)
    assert sorted(report.projects) == sorted(world.projects)
    assert report.verified and report.reason == ""
    for project_id in world.projects:
        assert stored_listing(database, project_id) == truth(world, project_id)
        assert report.projects[project_id].new == len(truth(world, project_id))
    assert report.new == world.count()


def test_given_projects_only(emulator: Emulator, client: RoughyClient, database):
    first = emulator.world.projects[0]
    report = sync_account(client, database, project_ids=[first])
    assert list(report.projects) == [first]
    assert stored_listing(database, emulator.world.projects[1]) == []


def test_a_quiet_account_sync_changes_nothing(emulator: Emulator, client: RoughyClient, database):
    sync_account(client, database)
    again = sync_account(client, database)
    assert again.verified
    assert (again.new, again.changed, again.deleted, again.revived) == (0, 0, 0, 0)


def test_whole_lists_in_flight_survive_429s(emulator: Emulator, client: RoughyClient, sleeps, database):
    """A first load keeps several requests in flight; 429s among them are waited out as the server asks."""
    emulator.inject("rate_limit", count=3, retry_after=2, skip=3)
    report = sync_account(client, database)
    assert report.verified and report.retries == 3
    assert sleeps.waits and all(wait >= 2 for wait in sleeps.waits)
    for project_id in emulator.world.projects:
        assert stored_listing(database, project_id) == truth(emulator.world, project_id)


def test_one_project_given_syncs_that_project_only(emulator: Emulator, client: RoughyClient, database):
    first, second = emulator.world.projects[:2]
    sync_account(client, database, project_ids=[first, second])
    emulator.world.random_changes(6, project_id=second)
    report = sync_account(client, database, project_ids=[first])
    assert list(report.projects) == [first]
    assert stored_listing(database, first) == truth(emulator.world, first)

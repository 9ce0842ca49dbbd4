"""Hypothesis stateful test: random life in several projects at once, synced by `sync_account`.

After any mix of changes (some made while the account sync pages), one account sync against a quiet
emulator makes every project's live rows equal its listing field by field; no asset is ever marked
deleted while it exists; every change is recorded once; a sync that finds nothing writes no events.
Real DuckDB files, the emulator over loopback HTTP.
"""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule

from roughy_dagster import sync_account
from roughy_dagster.client import STATE_FLOW, RetryPolicy, RoughyClient
from roughy_dagster.emulator import STATES, Emulator, World

from .helpers import query, stored_listing, truth

RANK = {state.value: rank for rank, state in enumerate(STATE_FLOW)}
PROJECTS = 3


class AccountLifeAndSyncs(RuleBasedStateMachine):
    """Drives the emulator's world across several projects and syncs the whole account."""

    @initialize(seed=st.integers(0, 2**16), size=st.integers(0, 120), ties=st.sampled_from([0, 0, 4]))
    def start(self, seed: int, size: int, ties: int) -> None:
        self.world = World.seeded(seed=seed, projects=PROJECTS, assets_per_project=size, tie_every=ties)
        self.emulator = Emulator(self.world).start()
        self.client = RoughyClient(
            self.emulator.api_key, self.emulator.base_url, sleep=lambda _: None, retry=RetryPolicy()
        )
        self.folder = tempfile.TemporaryDirectory()
        self.database = Path(self.folder.name) / "roughy.duckdb"
        self.synced = False

    def teardown(self) -> None:
        if hasattr(self, "emulator"):
            self.client.close()
            self.emulator.stop()
            self.folder.cleanup()

    def project(self, pick: int) -> str:
        return self.world.projects[pick % PROJECTS]

    # -- remote life --------------------------------------------------------------------------------------

    @rule(pick=st.integers(0, 2), state=st.sampled_from(STATES), count=st.integers(1, 3), tie=st.booleans())
    def upload(self, pick: int, state: str, count: int, tie: bool) -> None:
        for index in range(count):
            self.world.add_asset(self.project(pick), state=state, same_time_as_previous=tie and index > 0)

    @rule(pick=st.integers(0, 10**9))
    def advance(self, pick: int) -> None:
        movable = [a for a in self.world.listing() if a["state"] not in ("ready", "failed")]
        if movable:
            self.world.advance(str(movable[pick % len(movable)]["id"]))

    @rule(pick=st.integers(0, 2), count=st.integers(1, 3))
    def top_up(self, pick: int, count: int) -> None:
        self.world.top_up(self.project(pick), count)

    @rule(pick=st.integers(0, 10**9), count=st.integers(1, 4))
    def delete(self, pick: int, count: int) -> None:
        for _ in range(count):
            listing = self.world.listing()
            if listing:
                self.world.delete(str(listing[pick % len(listing)]["id"]))

    # -- syncs ---------------------------------------------------------------------------------------------

    @rule(
        interference=st.lists(st.tuples(st.integers(1, 14), st.integers(1, 4)), max_size=3),
        full=st.booleans(),
    )
    def sync_while_the_remote_changes(self, interference: list[tuple[int, int]], full: bool) -> None:
        plan = dict(interference)
        served = iter(range(1, 10**6))

        def change_mid_sync(query: dict[str, str]) -> None:
            changes = plan.get(next(served), 0)
            if changes:
                self.world.random_changes(changes)

        self.emulator.app.before_listing = change_mid_sync
        try:
            sync_account(self.client, self.database, full_refresh=full)
        finally:
            self.emulator.app.before_listing = None
        self.synced = True
        self.check_nothing_live_is_deleted()
        self.check_each_change_recorded_once()

    @rule(full=st.booleans())
    def quiet_sync(self, full: bool) -> None:
        report = sync_account(self.client, self.database, full_refresh=full)
        self.synced = True
        for project in self.world.projects:
            assert stored_listing(self.database, project) == truth(self.world, project), project
        assert report.verified, report.reason
        self.check_nothing_live_is_deleted()
        self.check_each_change_recorded_once()
        again = sync_account(self.client, self.database)
        assert again.verified, again.reason
        sync_ids = [r.sync_id for r in again.projects.values()]
        if sync_ids:
            placeholders = ", ".join("?" * len(sync_ids))
            written = query(
                self.database,
                f"SELECT count(*) FROM roughy.asset_events WHERE sync_id IN ({placeholders})",
                sync_ids,
            )
            assert written == [(0,)], "a sync that finds nothing writes no events"

    # -- invariants ----------------------------------------------------------------------------------------

    @precondition(lambda self: self.synced)
    @rule()
    def check_nothing_live_is_deleted(self) -> None:
        gone = query(self.database, "SELECT id::VARCHAR FROM roughy.assets WHERE deleted_at IS NOT NULL")
        assert not {row[0] for row in gone} & set(self.world.assets)

    def check_each_change_recorded_once(self) -> None:
        rows = query(
            self.database,
            "SELECT asset_id::VARCHAR, kind, old_state, new_state FROM roughy.asset_events "
            "ORDER BY sync_id, rowid",
        )
        history: dict[str, list[tuple[str, str | None, str | None]]] = {}
        for asset_id, kind, old, new in rows:
            history.setdefault(asset_id, []).append((kind, old, new))
        for asset_id, steps in history.items():
            assert steps[0][0] in ("initial", "appeared"), (asset_id, steps)
            firsts = [kind for kind, _, _ in steps if kind in ("initial", "appeared")]
            assert len(firsts) == 1, (asset_id, steps)
            for (_, _, before), (kind, old, new) in itertools.pairwise(steps):
                assert old == before, f"events of {asset_id} do not chain: {steps}"
                if kind == "state_changed":
                    assert RANK[new] > RANK[old], f"a backward or repeated transition of {asset_id}: {steps}"
                if kind == "updated":
                    assert new == old


AccountLifeAndSyncs.TestCase.settings = settings(
    max_examples=10,
    stateful_step_count=8,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestAccountLifeAndSyncs = AccountLifeAndSyncs.TestCase

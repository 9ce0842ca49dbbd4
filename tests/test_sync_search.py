"""The count-mismatch search: what it costs and what it may conclude.

A list whose `total` disagrees with what the sync believes is bisected by positions: the believed offset
of an asset is a count the store answers (`LocalView.count_above`), adjusted by what the sync saw move,
so the search never loads a state's stored keys. Real DuckDB files, the emulator over loopback HTTP.
"""

from __future__ import annotations

import random

from roughy_dagster.client import RetryPolicy, RoughyClient
from roughy_dagster.emulator import Emulator, World
from roughy_dagster.project_sync import sync_project
from roughy_dagster.store import AssetStore
from roughy_dagster.sync import SyncEngine

from .helpers import stored_listing, truth


def client_for(emulator: Emulator) -> RoughyClient:
    return RoughyClient(emulator.api_key, emulator.base_url, sleep=lambda _: None, retry=RetryPolicy())


def test_deletions_deep_in_a_long_list_are_found_without_loading_its_stored_keys(tmp_path):
    """10 assets deleted from the middle of a ready list of thousands: the head shows nothing, only the
    count disagrees. The search finds all 10 with a few dozen requests and fetches the stored rows of
    the pages it reads only (the old search fetched every stored key of the list)."""
    world = World.seeded(seed=8, projects=1, assets_per_project=6000)
    project = world.projects[0]
    database = tmp_path / "roughy.duckdb"
    with Emulator(world) as emulator, client_for(emulator) as client:
        assert sync_project(client, database, project).verified
        ready = world.listing(project, "ready")
        assert len(ready) > 2000
        middle = ready[len(ready) // 4 : 3 * len(ready) // 4]
        victims = {str(item["id"]) for item in random.Random(3).sample(middle, 10)}
        for victim in victims:
            world.delete(victim)
        store = AssetStore(database)
        with store.local_view(project) as view:
            observation = SyncEngine(client, project, view).run()
            fetched = view.rows_fetched
        assert observation.verified, observation.reason
        assert set(observation.deletions) == victims
        assert observation.requests <= 100, observation.requests
        assert fetched <= 100 * observation.pages < len(ready) // 2, f"fetched {fetched} stored rows"
        store.write(observation)
        assert stored_listing(database, project) == truth(world, project)

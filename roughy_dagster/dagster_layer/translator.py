"""`DagsterRoughyTranslator`: how the tables a sync writes appear in Dagster (keys, group, tags, ...)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import dagster as dg

from .tables import RoughyTable

KEY_PREFIX = "roughy"
GROUP_NAME = "roughy"


class DagsterRoughyTranslator:
    """Decides the `AssetSpec` of each table the sync writes; subclass it to rename keys, groups or tags.

    Like the translators of dagster-fivetran, dagster-sling and dagster-dlt: `get_asset_spec` receives the
    table (`RoughyTable`: `name`, `table_name`, `description`, `column_schema`) and returns its spec.
    Override it, call `super().get_asset_spec(table)` and return
    `spec.replace_attributes(...)` or `spec.merge_attributes(...)`. The default keys are
    `roughy/assets`, `roughy/asset_events` and `roughy/sync_runs`, in group `roughy`. Each key must stay
    distinct; partitions, the pool and the checks are set by the integration, not here.
    """

    def get_asset_spec(self, table: RoughyTable) -> dg.AssetSpec:
        """The spec of one table; the default key is `roughy/<table.name>`."""
        return dg.AssetSpec(
            key=dg.AssetKey([KEY_PREFIX, table.name]),
            group_name=GROUP_NAME,
            kinds={"duckdb", "roughy"},
            description=table.description,
            metadata=table_metadata(table),
        )


def table_metadata(table: RoughyTable) -> Mapping[str, Any]:
    """Dagster's definition metadata of a table: its qualified name and column schema."""
    return {
        "dagster/table_name": table.table_name,
        "dagster/column_schema": table.column_schema,
    }


class TranslationFnTranslator(DagsterRoughyTranslator):
    """Applies a function `(default spec, table) -> spec` over another translator's specs.

    This is how `RoughyComponent`'s `translation:` block (Dagster's `ResolvedTranslationFn`) is applied.
    """

    def __init__(
        self,
        translation: Callable[[dg.AssetSpec, RoughyTable], dg.AssetSpec],
        base: DagsterRoughyTranslator | None = None,
    ) -> None:
        self.translation = translation
        self.base = base or DagsterRoughyTranslator()

    def get_asset_spec(self, table: RoughyTable) -> dg.AssetSpec:
        """The base translator's spec, passed through the translation function."""
        return self.translation(self.base.get_asset_spec(table), table)

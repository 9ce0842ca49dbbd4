"""The code location `dagster dev -w workspace.yaml` loads: the Roughy integration, set up from the env."""

from __future__ import annotations

from roughy_dagster.dagster_layer.definitions import build_roughy_defs

defs = build_roughy_defs()

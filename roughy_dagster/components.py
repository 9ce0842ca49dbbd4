"""The Dagster components this package registers (entry point `dagster_dg_cli.registry_modules`)."""

from .dagster_layer.component import RoughyComponent

__all__ = ["RoughyComponent"]

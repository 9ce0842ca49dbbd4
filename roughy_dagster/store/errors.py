"""Errors of the DuckDB store, each saying which file and what to do."""

from __future__ import annotations

from ..client.errors import RoughyError


class RoughyStoreError(RoughyError):
    """The DuckDB file cannot be used (unwritable path, corrupt file, ...)."""


class RoughyStoreLockedError(RoughyStoreError):
    """Another process holds DuckDB's single-writer lock on the file."""


class RoughySchemaError(RoughyStoreError):
    """The file's `roughy` schema is not one this version can use."""

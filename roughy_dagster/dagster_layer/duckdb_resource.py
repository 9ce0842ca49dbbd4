"""The `duckdb` resource: dagster-duckdb's `DuckDBResource` when installed, else a same-shaped fallback.

dagster-duckdb pins one Dagster patch release per release (0.29.27 needs dagster 1.13.27), so requiring
it would pin the Dagster of every project that installs roughy-dagster. It is an optional extra
(`roughy-dagster[duckdb]`); the sync only needs the file's path (`database`).
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

import dagster as dg
import duckdb
from pydantic import Field

from ..store.connection import NO_EXTENSIONS


class DuckDBDatabase(Protocol):
    """What the sync needs of the `duckdb` resource: the DuckDB file's path."""

    @property
    def database(self) -> str:
        """Path of the DuckDB file."""
        ...


class RoughyDuckDBResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """A DuckDB file, shaped like dagster-duckdb's `DuckDBResource` (`database`, `get_connection()`)."""

    database: str = Field(description="Path of the DuckDB file.")

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection to the file, closed on exit."""
        connection = duckdb.connect(self.database, config=dict(NO_EXTENSIONS))
        try:
            yield connection
        finally:
            connection.close()


def duckdb_resource(database: str) -> dg.ConfigurableResource:  # type: ignore[type-arg]
    """`DuckDBResource(database=...)` if dagster-duckdb is installed, else `RoughyDuckDBResource`."""
    try:
        from dagster_duckdb import DuckDBResource
    except ImportError:
        return RoughyDuckDBResource(database=database)
    return DuckDBResource(database=database)

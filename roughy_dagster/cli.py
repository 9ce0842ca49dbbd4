"""`roughy-dagster`: query the synced data from a shell, on the latest published copy (never the syncs' file).

roughy-dagster sql "SELECT state, count(*) FROM roughy.assets GROUP BY ALL"
roughy-dagster sql < report.sql
roughy-dagster path          # the file to give the DuckDB CLI or a BI tool (read-only)
"""

from __future__ import annotations

import argparse
import sys

from .store.errors import RoughyStoreError
from .store.publish import latest_path
from .store.readers import DEFAULT_DATABASE, connect, store_path


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 for a usage error, 1 for a failed query)."""
    parser = argparse.ArgumentParser(prog="roughy-dagster", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    sql = commands.add_parser("sql", help="run SQL on the latest published copy and print the result")
    sql.add_argument("query", nargs="?", help="the SQL to run (default: read it from standard input)")
    path = commands.add_parser("path", help="print the path readers open (the latest published copy)")
    for command in (sql, path):
        command.add_argument(
            "--database",
            help=f"the store's path, as configured (default: ROUGHY_DUCKDB_PATH, else {DEFAULT_DATABASE})",
        )
    arguments = parser.parse_args(argv)
    if arguments.command == "path":
        print(latest_path(store_path(arguments.database)))
        return 0
    query = arguments.query if arguments.query is not None else sys.stdin.read()
    try:
        with connect(arguments.database) as connection:
            result = connection.sql(query)
            if result is not None:
                result.show(max_rows=1_000_000, max_width=1_000_000)
    except RoughyStoreError as error:
        print(f"roughy-dagster: {error}", file=sys.stderr)
        return 1
    except Exception as error:  # a DuckDB error in the user's SQL: its message is the answer
        print(f"roughy-dagster: {str(error).splitlines()[0]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

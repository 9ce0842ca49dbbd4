"""The public names: every one importable from `roughy_dagster`, and plain scripts do not load Dagster."""

import subprocess
import sys

import roughy_dagster


def test_every_public_name_resolves():
    for name in roughy_dagster.__all__:
        assert getattr(roughy_dagster, name) is not None, name


def test_the_client_and_sync_load_without_dagster():
    code = (
        "import sys, roughy_dagster; from roughy_dagster import RoughyClient, sync_project; "
        "sys.exit(1 if 'dagster' in sys.modules else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0

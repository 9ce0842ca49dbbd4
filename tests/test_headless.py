"""Headless: the `dagster` and `dg` CLIs materialize a project partition on a fresh instance, no daemon.

With `ROUGHY_PROJECT_IDS` set the project partitions are static, so they exist as soon as the code loads:
nothing has to run first to add them.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from roughy_dagster.emulator import Emulator

from .conftest import CANARY_KEY
from .helpers import query, stored_listing, truth

REPO = Path(__file__).resolve().parents[1]
DG_PYPROJECT = """\
[project]
name = "my-project"
version = "0.0.1"

[tool.dg]
directory_type = "project"

[tool.dg.project]
root_module = "my_project"
code_location_target_module = "my_project.definitions"
"""


def cli(args: list[str], env: dict[str, str], cwd: Path) -> None:
    done = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert CANARY_KEY not in done.stdout + done.stderr


def test_cli_materializes_a_partition_on_a_fresh_instance(emulator: Emulator, tmp_path):
    first, second = emulator.world.projects
    database = tmp_path / "headless.duckdb"
    env = {
        **os.environ,
        "DAGSTER_HOME": str(tmp_path / "home"),
        "ROUGHY_PROJECT_IDS": f"{first},{second}",
        "ROUGHY_API_KEY": CANARY_KEY,
        "ROUGHY_BASE_URL": emulator.base_url,
        "ROUGHY_DUCKDB_PATH": str(database),
    }
    (tmp_path / "home").mkdir()
    dagster = str(Path(sys.executable).with_name("dagster"))
    materialize = [dagster, "asset", "materialize", "-f", str(REPO / "definitions.py")]
    cli([*materialize, "--select", "roughy/assets", "--partition", first], env, tmp_path)
    assert stored_listing(database, first) == truth(emulator.world, first)
    assert query(database, "SELECT count(*) FROM roughy.sync_runs WHERE project_id = ?", [second]) == [(0,)]

    # The same from a dg project, with `dg launch`, on another fresh instance.
    project = tmp_path / "my_project"
    (project / "src" / "my_project").mkdir(parents=True)
    (project / "pyproject.toml").write_text(DG_PYPROJECT)
    (project / "src" / "my_project" / "__init__.py").write_text("")
    shutil.copy(REPO / "definitions.py", project / "src" / "my_project" / "definitions.py")
    (tmp_path / "home2").mkdir()
    env |= {"DAGSTER_HOME": str(tmp_path / "home2"), "PYTHONPATH": str(project / "src")}
    dg = str(Path(sys.executable).with_name("dg"))
    cli([dg, "launch", "--assets", "roughy/assets", "--partition", second], env, project)
    assert stored_listing(database, second) == truth(emulator.world, second)

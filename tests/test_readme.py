"""README examples run as written: every ```python block, in a fresh interpreter, against the emulator.

Blocks that define `defs` are also validated the way `dagster definitions validate` does it (jobs
resolved, ops unique, resources bound). The SQL cookbook is run by `tests/test_cookbook.py`.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from roughy_dagster.emulator import Emulator

from .conftest import CANARY_KEY

REPO = Path(__file__).resolve().parents[1]
BLOCKS = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), flags=re.DOTALL)
VALIDATE = """
if "defs" in globals():
    import dagster as _dg

    _dg.Definitions.validate_loadable(defs)
    print("validated", len(list(defs.get_repository_def().get_all_jobs())), "jobs")
"""


def test_the_readme_has_python_examples():
    assert len(BLOCKS) >= 4


@pytest.mark.parametrize("block", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_example_runs_as_written(block: str, emulator: Emulator, tmp_path):
    script = tmp_path / "example.py"
    script.write_text(block + VALIDATE)
    env = {key: value for key, value in os.environ.items() if not key.startswith("ROUGHY_")}
    env |= {"ROUGHY_API_KEY": CANARY_KEY, "ROUGHY_BASE_URL": emulator.base_url}
    done = subprocess.run(
        [sys.executable, "-W", "error::DeprecationWarning", str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, f"{block}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    assert CANARY_KEY not in done.stdout + done.stderr

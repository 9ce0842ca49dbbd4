"""The built wheel installs into another project's environment, on another Dagster 1.13 patch release.

A new user installs roughy-dagster next to the Dagster their project already has. This builds the wheel,
installs it into a separate virtual environment together with a Dagster patch release other than the
one `constraints.txt` pins, and validates the README's first Python example there with that
environment's `dagster definitions validate`.

The environment is kept between runs (`ROUGHY_WHEEL_VENV`, by default under ~/.cache) and only the
wheel is reinstalled, so a rerun costs the build and one no-deps install; pip's cache serves a first run.
"""

import os
import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OTHER_DAGSTER = "1.13.28" if version("dagster") != "1.13.28" else "1.13.27"
VENV = Path(
    os.environ.get(
        "ROUGHY_WHEEL_VENV", Path.home() / ".cache" / "roughy-dagster" / f"wheel-venv-dagster-{OTHER_DAGSTER}"
    )
)
PIP = ["-m", "pip", "--disable-pip-version-check", "--quiet"]


def readme_python_blocks() -> list[str]:
    """The ```python blocks of README.md, in order."""
    return re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), flags=re.DOTALL)


def run(*args: str | Path, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, **kwargs)
    assert done.returncode == 0, f"{args}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def test_the_wheel_installs_on_another_dagster_patch_and_loads_the_readme_example(tmp_path):
    run(sys.executable, *PIP, "wheel", "--no-deps", "--wheel-dir", tmp_path / "dist", REPO)
    (wheel,) = (tmp_path / "dist").glob("roughy_dagster-*.whl")
    python = VENV / "bin" / "python"
    if not python.exists():
        run(sys.executable, "-m", "venv", VENV)
    run(python, *PIP, "install", wheel, f"dagster=={OTHER_DAGSTER}")  # resolves the wheel's ranges
    run(python, *PIP, "install", "--force-reinstall", "--no-deps", wheel)  # this build, not a cached one
    installed = run(python, "-c", "import dagster, roughy_dagster; print(dagster.__version__)").stdout
    assert installed.strip() == OTHER_DAGSTER != version("dagster")

    project = tmp_path / "my_project"
    project.mkdir()
    (project / "definitions.py").write_text(readme_python_blocks()[0])
    env = {key: value for key, value in os.environ.items() if not key.startswith(("ROUGHY_", "DAGSTER_HOME"))}
    env["PATH"] = f"{VENV / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    validated = run(
        VENV / "bin" / "dagster", "definitions", "validate", "-f", "definitions.py", cwd=project, env=env
    )
    assert "Validation successful" in validated.stdout + validated.stderr

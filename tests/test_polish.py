"""Small promises of a finished package: documented defaults, a license, a README that stays in the repo."""

import re
import subprocess
import sys
from pathlib import Path

from roughy_dagster.emulator.server import DEFAULT_API_KEY

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def test_emulator_help_shows_its_defaults():
    done = subprocess.run(
        [sys.executable, "-m", "roughy_dagster.emulator.cli", "--help"], capture_output=True, text=True
    )
    assert done.returncode == 0
    text = " ".join(done.stdout.split())
    assert f"(default: {DEFAULT_API_KEY})" in text and "(default: 8765)" in text


def test_the_license_is_the_one_pyproject_declares():
    assert "Apache License" in (REPO / "LICENSE").read_text()
    assert 'license = { text = "Apache-2.0" }' in (REPO / "pyproject.toml").read_text()


def test_readme_refers_only_to_files_in_the_repository():
    assert "../" not in README
    links = re.findall(r"\]\(([^)#]+)\)", README)
    paths = re.findall(r"`((?:bench|tests|docs|scripts|roughy_dagster)/[\w./-]+)`", README)
    local = [p for p in links if not p.startswith(("http://", "https://"))] + paths
    assert local
    missing = [p for p in local if not (REPO / p).exists()]
    assert missing == []

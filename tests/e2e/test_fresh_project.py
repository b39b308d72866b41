"""The pytest plugin from a fresh project: a new virtualenv that `pip install`s openwaba
with its `testing` extra, a project holding only the example bot and its tests, and
`pytest` run there. Nothing of this repository's test set-up is involved."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .support import pip_install

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "menu_bot"

pytestmark = pytest.mark.e2e


def test_the_example_bot_passes_in_a_fresh_project(tmp_path: Path) -> None:
    source = tmp_path / "openwaba-src"  # built from a copy: the build leaves nothing in the working tree
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "*.egg-info", "__pycache__", "build", "dist", "tests", "bench", ".ruff_cache",
        ".mypy_cache", ".pytest_cache", ".hypothesis", "openwaba-data", "examples"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120, capture_output=True)
    python = venv / "bin" / "python"
    pip_install(python, f"{source}[testing]")

    project = tmp_path / "my-bot"
    project.mkdir()
    for name in ("bot.py", "test_bot.py"):
        shutil.copy(EXAMPLE / name, project / name)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "OPENWABA_"))}
    done = subprocess.run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=project, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "4 passed" in done.stdout

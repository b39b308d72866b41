"""The base install (`pip install openwaba`: httpx only) is enough for the client and
the receiver toolkit: importing them loads none of the server's or the CLI's packages.

Each check runs in a fresh interpreter, so what other tests imported does not count.
(The fresh-venv install from the repository is an e2e test: tests/e2e/test_client.py.)
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap

import pytest

HEAVY = ["starlette", "msgspec", "aiohttp", "uvicorn", "typer", "rich"]

# Loaded modules of the HEAVY packages, before and after importing the module under test;
# httpx itself is imported first (it pulls in `rich` for its own CLI when rich is installed).
PROBE = textwrap.dedent("""
    import importlib, json, sys
    heavy = set(sys.argv[2].split(","))
    def loaded():
        return sorted(name for name in sys.modules if name.split(".")[0] in heavy)
    import httpx
    before = loaded()
    importlib.import_module(sys.argv[1])
    print(json.dumps({"before": before, "after": loaded()}))
""")

# The same, with the HEAVY packages made uninstallable: the import must still work.
BLOCKED = textwrap.dedent("""
    import importlib, importlib.abc, sys
    heavy = set(sys.argv[2].split(","))
    class Absent(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in heavy:
                raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)", name=name)
            return None
    sys.meta_path.insert(0, Absent())
    importlib.import_module(sys.argv[1])
    if sys.argv[1] == "openwaba.client":
        from openwaba.client import AsyncClient, Client, messages
        Client.openwaba("key", "http://127.0.0.1:1").close()
        AsyncClient.d360("key")
        messages.text("15551230001", "hi").body()
    print("ok")
""")


def _modules() -> list[str]:
    names = ["openwaba.client"]
    if importlib.util.find_spec("openwaba.receiver") is not None:
        names.append("openwaba.receiver")
    return names


def _run(script: str, module: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", script, module, ",".join(HEAVY)], capture_output=True, text=True,
                          timeout=60, check=False)


@pytest.mark.parametrize("module", ["openwaba.client", "openwaba.receiver"])
def test_importing_loads_no_server_or_cli_package(module: str) -> None:
    if module not in _modules():
        pytest.skip(f"{module} does not exist yet")
    done = _run(PROBE, module)
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout)
    added = sorted(set(loaded["after"]) - set(loaded["before"]))
    assert added == [], f"import {module} loaded {added}"


@pytest.mark.parametrize("module", ["openwaba.client", "openwaba.receiver"])
def test_importing_works_without_the_extras_installed(module: str) -> None:
    if module not in _modules():
        pytest.skip(f"{module} does not exist yet")
    done = _run(BLOCKED, module)
    assert (done.returncode, done.stdout.strip()) == (0, "ok"), done.stderr

"""The `openwaba` command line. It needs the `[cli]` extra (typer, rich, uvicorn);
on a base install it says so instead of failing with a traceback."""

from __future__ import annotations

import sys

INSTALL_HINT = "openwaba's command line needs: pip install 'openwaba[cli]'"
_CLI_PACKAGES = frozenset({"typer", "rich", "click"})


def main(argv: list[str] | None = None) -> None:
    """The console script `openwaba`; `argv` defaults to the process's arguments."""
    try:
        from openwaba.cli.app import run
    except ImportError as exc:
        if (exc.name or "").partition(".")[0] not in _CLI_PACKAGES:
            raise
        print(INSTALL_HINT, file=sys.stderr)
        sys.exit(2)
    run(argv)

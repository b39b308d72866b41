"""Named SQL queries, read from `.sql` files shipped with the package."""

from __future__ import annotations

import re
from importlib import resources

_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)


def load_queries(dialect: str) -> dict[str, str]:
    """Parse `sql/<dialect>/queries.sql` into {name: statement}."""
    text = resources.files("openwaba.storage").joinpath("sql", dialect, "queries.sql").read_text()
    parts = _NAME.split(text)
    # parts = [preamble, name1, body1, name2, body2, ...]
    return {name: body.strip() for name, body in zip(parts[1::2], parts[2::2])}


def load_migrations(dialect: str) -> list[tuple[int, str]]:
    """The numbered migration scripts of a dialect, in order: [(version, sql)]."""
    folder = resources.files("openwaba.storage").joinpath("sql", dialect, "migrations")
    scripts = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            scripts.append((int(entry.name.split("_", 1)[0]), entry.read_text()))
    return sorted(scripts)

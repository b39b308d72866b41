"""The README documents every scenario switch and shows the example bot's tests as they are."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from openwaba.domain.errors import RequestError
from openwaba.domain.scenarios import parse_scenario

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()
SECTION = README.split("## Testing a bot:", 1)[1].split("\n## ", 1)[0]


def scenario_fields() -> list[str]:
    """The fields parse_scenario knows, read from its own error message."""
    with pytest.raises(RequestError) as refused:
        parse_scenario({"no such field": 1})
    return refused.value.details.split("known fields: ", 1)[1].split(", ")


def test_every_scenario_field_has_a_row_in_the_readme() -> None:
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", SECTION, re.M))
    assert set(scenario_fields()) <= documented


def test_the_readme_shows_the_example_bots_tests_as_they_are() -> None:
    shown = re.search(r"```python\n(.*?)```", SECTION.split("### The pytest plugin", 1)[1], re.S)
    assert shown, "the README lost the plugin example"
    assert shown.group(1).strip() in (REPO / "examples" / "menu_bot" / "test_bot.py").read_text()

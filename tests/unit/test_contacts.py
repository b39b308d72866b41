"""On-Premise `POST /v1/contacts`: the check and its errors."""

from __future__ import annotations

from typing import Any

import pytest

from openwaba.domain.contacts import check_contacts
from openwaba.domain.errors import RequestError


def test_valid_and_invalid_numbers() -> None:
    result = check_contacts({"blocking": "wait", "contacts": ["+1 555-000 1234", "abc"], "force_check": True})
    assert result == [
        {"input": "+1 555-000 1234", "status": "valid", "wa_id": "15550001234"},
        {"input": "abc", "status": "invalid"},
    ]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, 131008),
        ({"contacts": []}, 131009),
        ({"contacts": "+15550001234"}, 100),
        ({"contacts": [15550001234]}, 100),
        ({"contacts": ["+1555"], "blocking": "soon"}, 131009),
        ({"contacts": ["+1555"], "force_check": "yes"}, 100),
        ({"contacts": ["+1555"], "extra": 1}, 100),
    ],
    ids=["missing", "empty", "not-a-list", "numbers-not-strings", "blocking", "force-check", "unknown-key"],
)
def test_refused(body: dict[str, Any], code: int) -> None:
    with pytest.raises(RequestError) as caught:
        check_contacts(body)
    assert caught.value.code == code

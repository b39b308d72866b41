"""On-Premise `POST /v1/contacts`: which inputs are WhatsApp users.

Since On-Premise 2.43 every well-formed number checks as `valid` and gets a
`wa_id`, whether or not it has WhatsApp (delivery decides); a number that
cannot be one is `invalid`.
"""

from __future__ import annotations

from typing import Any

from openwaba.domain.errors import RequestError
from openwaba.domain.messages import normalise_phone

_KEYS = {"blocking", "contacts", "force_check"}
MAX_CONTACTS = 10_000


def check_contacts(document: dict[str, Any]) -> list[dict[str, str]]:
    unknown = sorted(set(document) - _KEYS)
    if unknown:
        raise RequestError(100, f"Unexpected key '{unknown[0]}'; allowed: blocking, contacts, force_check")
    if document.get("blocking", "no_wait") not in ("wait", "no_wait"):
        raise RequestError(131009, "'blocking' must be 'wait' or 'no_wait'")
    if not isinstance(document.get("force_check", False), bool):
        raise RequestError(100, "'force_check' must be true or false")
    contacts = document.get("contacts")
    if contacts is None:
        raise RequestError(131008, "Required parameter 'contacts' is missing")
    if not isinstance(contacts, list) or not all(isinstance(c, str) for c in contacts):
        raise RequestError(100, "'contacts' must be an array of phone numbers (strings)")
    if not 1 <= len(contacts) <= MAX_CONTACTS:
        raise RequestError(131009, f"'contacts' must hold 1 to {MAX_CONTACTS} numbers")
    return [_check(c) for c in contacts]


def _check(raw: str) -> dict[str, str]:
    try:
        return {"input": raw, "status": "valid", "wa_id": normalise_phone(raw)}
    except RequestError:
        return {"input": raw, "status": "invalid"}

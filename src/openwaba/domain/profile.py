"""The business profile: update rules and the full view.

Two request dialects reach :func:`parse_profile_update`:

* Cloud, `POST /whatsapp_business_profile`: `messaging_product` is required
  and `about` and `profile_picture_handle` may be set here;
* On-Premise, `POST /v1/settings/business/profile`: no `messaging_product`;
  `about` has its own endpoint there, so it is not accepted here.

Error codes follow :mod:`openwaba.domain.messages`: an unknown key or a wrong
JSON type is 100, a missing `messaging_product` 131008, and a value outside its
limits 131009. Meta answers some profile limit errors with 100 instead; 131009
is kept so one rule ("the value is wrong") has one code across openwaba.

An empty string clears `address`, `description` and `email`, and an empty list
clears `websites`, as on WhatsApp; `about` (at least one character) and
`vertical` (cannot be reset to empty) cannot be cleared.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from openwaba.domain.errors import RequestError

VERTICALS = (
    "UNDEFINED",
    "OTHER",
    "AUTO",
    "BEAUTY",
    "APPAREL",
    "EDU",
    "ENTERTAIN",
    "EVENT_PLAN",
    "FINANCE",
    "GROCERY",
    "GOVT",
    "HOTEL",
    "HEALTH",
    "NONPROFIT",
    "PROF_SERVICES",
    "RETAIL",
    "TRAVEL",
    "RESTAURANT",
    "NOT_A_BIZ",
)
DEFAULT_ABOUT = "Hey there! I am using WhatsApp."
ABOUT_LIMIT = 139
ADDRESS_LIMIT = 256
DESCRIPTION_LIMIT = 512
EMAIL_LIMIT = 128
WEBSITES_LIMIT = 2
WEBSITE_LIMIT = 256

# Deliberately loose: one @, something on each side, a dot in the domain.
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_WEBSITE = re.compile(r"https?://\S+", re.IGNORECASE)


def _string(value: Any, key: str) -> str:
    if not isinstance(value, str):
        raise RequestError(100, f"Param '{key}' must be a string")
    return value


def _bounded(key: str, limit: int, shortest: int = 0) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        text = _string(value, key)
        if not shortest <= len(text) <= limit:
            raise RequestError(131009, f"Parameter '{key}' must have length between {shortest} and {limit}")
        return text

    return check


def _email(value: Any) -> str:
    email = _bounded("email", EMAIL_LIMIT)(value)
    if email and not _EMAIL.fullmatch(email):
        raise RequestError(131009, "Parameter 'email' is not a valid email address")
    return email


def _websites(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise RequestError(100, "Param 'websites' must be an array of strings")
    if len(value) > WEBSITES_LIMIT:
        raise RequestError(131009, f"Parameter 'websites' can hold at most {WEBSITES_LIMIT} websites")
    for index, site in enumerate(value):
        where = f"websites[{index}]"
        if len(_string(site, where)) > WEBSITE_LIMIT:
            raise RequestError(131009, f"Parameter '{where}' must have length <={WEBSITE_LIMIT}")
        if not _WEBSITE.fullmatch(site):
            raise RequestError(131009, f"Parameter '{where}' must start with http:// or https://")
    return list(value)


def _vertical(value: Any) -> str:
    vertical = _string(value, "vertical")
    if not vertical:
        raise RequestError(131009, "Parameter 'vertical' cannot be reset to empty")
    if vertical not in VERTICALS:
        raise RequestError(131009, f"Parameter 'vertical' must be one of {', '.join(VERTICALS)}; got '{vertical}'")
    return vertical


def _handle(value: Any) -> str:
    handle = _string(value, "profile_picture_handle")
    if not handle:
        raise RequestError(131008, "Required parameter 'profile_picture_handle' is empty")
    return handle


_ON_PREMISE_FIELDS: dict[str, Callable[[Any], Any]] = {
    "address": _bounded("address", ADDRESS_LIMIT),
    "description": _bounded("description", DESCRIPTION_LIMIT),
    "email": _email,
    "websites": _websites,
    "vertical": _vertical,
}
_CLOUD_FIELDS: dict[str, Callable[[Any], Any]] = {
    **_ON_PREMISE_FIELDS,
    "about": _bounded("about", ABOUT_LIMIT, shortest=1),
    "profile_picture_handle": _handle,
}


def _messaging_product(document: dict[str, Any]) -> None:
    value = document.get("messaging_product")
    if value is None:
        raise RequestError(131008, "Required parameter 'messaging_product' is missing; it must be 'whatsapp'")
    if value != "whatsapp":
        raise RequestError(131009, f"Parameter 'messaging_product' must be 'whatsapp'; got {value!r}")


def parse_profile_update(document: dict[str, Any], on_premise: bool) -> dict[str, Any]:
    """The fields a profile update changes, validated; raise :class:`RequestError` naming the field."""
    if not isinstance(document, dict):
        raise RequestError(100, "Request body must be a JSON object")
    fields = _ON_PREMISE_FIELDS if on_premise else _CLOUD_FIELDS
    for key in document:
        if key not in fields and (on_premise or key != "messaging_product"):
            raise RequestError(100, f"Unexpected key '{key}'; remove it")
    if not on_premise:
        _messaging_product(document)
    return {key: check(document[key]) for key, check in fields.items() if key in document}


_DEFAULTS: dict[str, Any] = {
    "about": DEFAULT_ABOUT,
    "address": "",
    "description": "",
    "email": "",
    "profile_picture_url": "",
    "websites": [],
    "vertical": "UNDEFINED",
}


def profile_view(stored: dict[str, Any]) -> dict[str, Any]:
    """The whole profile as WhatsApp shows it: stored values over defaults, plus `messaging_product`."""
    view: dict[str, Any] = {}
    for key, default in _DEFAULTS.items():
        value = stored.get(key)
        view[key] = default if value is None else value
    view["websites"] = list(view["websites"])  # never hand out the shared default list
    view["messaging_product"] = "whatsapp"
    return view

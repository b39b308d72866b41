"""Webhook payloads: splitting Meta's notifications into events, and rendering
events in the format a channel's receivers expect.

Everything that happens (a status, an inbound message, an out-of-band error)
enters openwaba as Meta's `whatsapp_business_account` notification. Ingest
splits it into one event per item so every item is delivered, retried and
de-duplicated on its own; each event keeps a complete `value` (metadata and
the contacts that belong to its item) so it renders without further lookups.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

EventKind = Literal["message", "status", "error", "template_status"]

# WABA-level changes openwaba passes on besides `messages`: they name no phone
# number, only the WABA (`entry[].id`).
TEMPLATE_FIELD = "message_template_status_update"

_ITEM_KEYS: tuple[tuple[str, EventKind], ...] = (
    ("messages", "message"),
    ("statuses", "status"),
    ("errors", "error"),
)


@dataclass(frozen=True, slots=True)
class EventItem:
    """One item of a Meta notification, with the `value` it renders from."""

    kind: EventKind
    phone_number_id: str  # "" for WABA-level changes
    value: dict[str, Any]  # messaging_product, metadata, contacts?, and one item list
    field: str = "messages"
    waba_id: str = ""

    @property
    def item(self) -> dict[str, Any]:
        if self.kind == "template_status":
            return self.value
        key = {"message": "messages", "status": "statuses", "error": "errors"}[self.kind]
        item: dict[str, Any] = self.value[key][0]
        return item

    @property
    def wa_id(self) -> str | None:
        return _user_of(self.item)


def split_notification(notification: dict[str, Any]) -> list[EventItem]:
    """Meta's `{object, entry[].changes[].value}` -> one EventItem per message/status/error."""
    items: list[EventItem] = []
    for entry in notification.get("entry") or ():
        for change in entry.get("changes") or ():
            field = change.get("field", "messages")
            value = change.get("value") or {}
            if field == TEMPLATE_FIELD:
                items.append(EventItem("template_status", "", value, field, str(entry.get("id", ""))))
            if field != "messages":
                continue
            metadata = value.get("metadata") or {}
            phone_number_id = str(metadata.get("phone_number_id", ""))
            contacts = value.get("contacts")
            for key, kind in _ITEM_KEYS:
                for item in value.get(key) or ():
                    single: dict[str, Any] = {
                        "messaging_product": value.get("messaging_product", "whatsapp"),
                        "metadata": dict(metadata),
                    }
                    own = _contacts_for(contacts, item)
                    if own:
                        single["contacts"] = own
                    single[key] = [item]
                    items.append(EventItem(kind, phone_number_id, single))
    return items


def _contacts_for(contacts: list[dict[str, Any]] | None, item: dict[str, Any]) -> list[dict[str, Any]]:
    if not contacts:
        return []
    wa_id = _user_of(item)
    return [c for c in contacts if c.get("wa_id") == wa_id]


def _user_of(item: dict[str, Any]) -> str | None:
    """The user a message (`from`) or a status (`recipient_id`) is about."""
    user: str | None = item.get("from") or item.get("recipient_id")
    return user


# Cloud error codes and their On-Premise equivalents.
_ON_PREMISE_CODES = {131047: 470, 131026: 1013, 131051: 501, 130429: 429, 131000: 500}


def render(format_name: str, waba_id: str, value: dict[str, Any], field: str = "messages") -> bytes:
    """The webhook body for a channel of the given format (`cloud` or `on_premise`).

    WABA-level changes (template status) have no On-Premise form; every channel
    gets them in the Cloud envelope.
    """
    if format_name == "on_premise" and field == "messages":
        return render_on_premise(value)
    return render_cloud(waba_id, value, field)


def render_on_premise(value: dict[str, Any]) -> bytes:
    """The On-Premise format: flat `contacts`/`messages`/`statuses`/`errors`, no envelope."""
    flat: dict[str, Any] = {}
    if "contacts" in value:
        flat["contacts"] = [{"profile": c.get("profile", {}), "wa_id": c.get("wa_id")} for c in value["contacts"]]
    if "messages" in value:
        flat["messages"] = [_on_premise_item(m) for m in value["messages"]]
    if "statuses" in value:
        flat["statuses"] = [_on_premise_status(s) for s in value["statuses"]]
    if "errors" in value:
        flat["errors"] = [_on_premise_error(e) for e in value["errors"]]
    return _dump(flat)


def _on_premise_status(status: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in status.items() if k not in ("errors", "pricing")}
    out["type"] = "message"
    # On-Premise v2.45 moved recipient_id under `message`; receivers read either.
    out["message"] = {"recipient_id": status.get("recipient_id")}
    if "pricing" in status:
        pricing = status["pricing"]
        out["pricing"] = {
            "billable": pricing.get("billable", False),
            "pricing_model": pricing.get("pricing_model"),
            "category": pricing.get("category"),
        }
    if "errors" in status:
        out["errors"] = [_on_premise_error(e) for e in status["errors"]]
    return out


def _on_premise_item(message: dict[str, Any]) -> dict[str, Any]:
    out = dict(message)
    if "errors" in out:
        out["errors"] = [_on_premise_error(e) for e in out["errors"]]
    return out


def _on_premise_error(error: dict[str, Any]) -> dict[str, Any]:
    code = int(error.get("code", 0))
    details = (error.get("error_data") or {}).get("details") or error.get("title", "")
    out = {"code": _ON_PREMISE_CODES.get(code, code), "title": details or error.get("title", ""), "details": details}
    if "href" in error:
        out["href"] = error["href"]
    return out


def _dump(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=True).encode()


def render_cloud(waba_id: str, value: dict[str, Any], field: str = "messages") -> bytes:
    """The Cloud API envelope, serialised once so the exact bytes can be signed.

    Compact separators and `\\uXXXX` escapes match what Meta posts.
    """
    envelope = {
        "object": "whatsapp_business_account",
        "entry": [{"id": waba_id, "changes": [{"value": value, "field": field}]}],
    }
    return _dump(envelope)

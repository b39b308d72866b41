"""Webhook bodies -> typed items, for both formats openwaba and 360dialog post:

- Cloud: `{"object": "whatsapp_business_account", "entry": [{"id", "changes": [{"field", "value"}]}]}`
  with `metadata`, `contacts`, `messages`, `statuses`, `errors` in each `value`;
- On-Premise: `contacts`, `messages`, `statuses`, `errors` at the top level.

Parsing is lenient on purpose: a webhook that was acknowledged must still be
handled, so a field of an unexpected type becomes a default instead of an
exception, and every object keeps its source as `raw`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypedDict

from openwaba.receiver.events import (
    ButtonReply,
    Context,
    Conversation,
    ErrorDetail,
    Event,
    InteractiveReply,
    Location,
    Media,
    Message,
    Phone,
    Pricing,
    Reaction,
    SharedContact,
    Status,
    TemplateStatus,
    Unknown,
    WebhookError,
)

TEMPLATE_FIELD = "message_template_status_update"
_MEDIA_TYPES = ("image", "audio", "video", "document", "sticker", "voice")


class _Origin(TypedDict, total=False):
    format: str
    phone_number_id: str
    display_phone_number: str
    waba_id: str


class BodyError(ValueError):
    """The body is not a JSON object."""


def parse_body(body: bytes) -> list[Event]:
    """Every item of a webhook body, in the order they appear."""
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise BodyError(f"not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise BodyError("not a JSON object")
    return parse_document(document)


def parse_document(document: dict[str, Any]) -> list[Event]:
    if "entry" in document or document.get("object") == "whatsapp_business_account":
        return _cloud(document)
    return _items({"format": "on_premise"}, document)


def _cloud(document: dict[str, Any]) -> list[Event]:
    events: list[Event] = []
    for entry in _dicts(document.get("entry")):
        waba_id = _str(entry.get("id"))
        for change in _dicts(entry.get("changes")):
            field = _str(change.get("field")) or "messages"
            value = change.get("value")
            value = value if isinstance(value, dict) else {}
            origin: _Origin = {"format": "cloud", "waba_id": waba_id}
            if field == "messages":
                metadata = _dict(value.get("metadata"))
                origin["phone_number_id"] = _str(metadata.get("phone_number_id"))
                origin["display_phone_number"] = _str(metadata.get("display_phone_number"))
                events.extend(_items(origin, value))
            elif field == TEMPLATE_FIELD:
                events.append(_template_status(origin, value))
            else:
                events.append(Unknown(kind="unknown", raw=value, field=field, **origin))
    return events


def _items(origin: _Origin, value: dict[str, Any]) -> list[Event]:
    """The messages, statuses and errors of one Cloud `value` or one On-Premise body."""
    names = {}
    for contact in _dicts(value.get("contacts")):
        profile = _dict(contact.get("profile"))
        names[_str(contact.get("wa_id"))] = (_opt(profile.get("name")), _opt(contact.get("user_id")))
    events: list[Event] = []
    if "messages" in value:
        events.extend(_message(origin, item, names) for item in _dicts(value["messages"]))
    if "statuses" in value:
        events.extend(_status(origin, item) for item in _dicts(value["statuses"]))
    if "errors" in value:
        events.extend(_webhook_error(origin, item) for item in _dicts(value["errors"]))
    return events


def _message(origin: _Origin, item: dict[str, Any], names: dict[str, tuple[str | None, str | None]]) -> Message:
    sender = _str(item.get("from"))
    # A value normally carries the contact of its own sender; match on wa_id, and
    # fall back to a lone contact for payloads that leave `from` out (BSUID users).
    name, user_id = names.get(sender) or (next(iter(names.values())) if len(names) == 1 else (None, None))
    kind = _str(item.get("type"))
    # Only what this message has is built: parsing runs for every item before any handler.
    content = _CONTENT.get(kind)
    fields = content(item.get(kind), item) if content else {}
    if "context" in item:
        fields["context"] = _context(item["context"])
    if "errors" in item:
        fields["errors"] = _errors(item["errors"])
    return Message(
        kind="message",
        raw=item,
        **origin,
        id=_str(item.get("id")),
        from_=sender,
        timestamp=_int(item.get("timestamp")),
        type=kind,
        profile_name=name,
        user_id=user_id or _opt(item.get("from_user_id")),
        **fields,
    )


def _media(content: dict[str, Any]) -> Media:
    return Media(
        id=_str(content.get("id")),
        mime_type=_str(content.get("mime_type")),
        sha256=_str(content.get("sha256")),
        caption=_opt(content.get("caption")),
        filename=_opt(content.get("filename")),
        url=_opt(content.get("url") or content.get("link")),
        voice=content.get("voice") is True,
        animated=content.get("animated") is True,
    )


def _location(content: dict[str, Any]) -> Location:
    return Location(
        latitude=_float(content.get("latitude")),
        longitude=_float(content.get("longitude")),
        name=_opt(content.get("name")),
        address=_opt(content.get("address")),
        url=_opt(content.get("url")),
    )


def _shared_contact(card: dict[str, Any]) -> SharedContact:
    name = _dict(card.get("name"))
    phones = tuple(
        Phone(phone=_str(p.get("phone")), wa_id=_opt(p.get("wa_id")), type=_opt(p.get("type")))
        for p in _dicts(card.get("phones"))
    )
    return SharedContact(
        formatted_name=_str(name.get("formatted_name")),
        first_name=_opt(name.get("first_name")),
        last_name=_opt(name.get("last_name")),
        phones=phones,
        raw=card,
    )


def _interactive(content: dict[str, Any]) -> InteractiveReply:
    kind = _str(content.get("type"))
    reply = _dict(content.get(kind))
    response = None
    if isinstance(reply.get("response_json"), str):
        try:
            decoded = json.loads(reply["response_json"])
        except ValueError:
            decoded = None
        response = decoded if isinstance(decoded, dict) else None
    return InteractiveReply(
        type=kind,
        id=_str(reply.get("id")),
        title=_str(reply.get("title") or reply.get("name")),
        description=_opt(reply.get("description")),
        response=response,
    )


def _button(content: dict[str, Any]) -> ButtonReply:
    return ButtonReply(payload=_str(content.get("payload")), text=_str(content.get("text")))


def _reaction(content: dict[str, Any]) -> Reaction:
    # A removed reaction arrives with `emoji` empty or missing.
    return Reaction(message_id=_str(content.get("message_id")), emoji=_opt(content.get("emoji")) or None)


def _context(value: object) -> Context | None:
    if not isinstance(value, dict):
        return None
    return Context(
        id=_opt(value.get("id") or value.get("message_id")),
        from_=_opt(value.get("from")),
        forwarded=value.get("forwarded") is True,
        frequently_forwarded=value.get("frequently_forwarded") is True,
    )


_Fields = dict[str, Any]
_CONTENT: dict[str, Callable[[Any, dict[str, Any]], _Fields]] = {
    "text": lambda c, _: {"text": _opt(_dict(c).get("body"))},
    **{kind: (lambda c, _: {"media": _media(_dict(c))}) for kind in _MEDIA_TYPES},
    "location": lambda c, _: {"location": _location(_dict(c))},
    "contacts": lambda c, _: {"contacts": tuple(_shared_contact(card) for card in _dicts(c))},
    "interactive": lambda c, _: {"interactive": _interactive(c)} if isinstance(c, dict) and c else {},
    "button": lambda c, _: {"button": _button(c)} if isinstance(c, dict) and c else {},
    "reaction": lambda c, _: {"reaction": _reaction(_dict(c))},
}


def _status(origin: _Origin, item: dict[str, Any]) -> Status:
    # On-Premise v2.45 moved recipient_id under `message`.
    recipient = item.get("recipient_id") or _dict(item.get("message")).get("recipient_id")
    return Status(
        kind="status",
        raw=item,
        **origin,
        id=_str(item.get("id")),
        status=_str(item.get("status")),
        recipient_id=_str(recipient),
        timestamp=_int(item.get("timestamp")),
        conversation=_conversation(item.get("conversation")),
        pricing=_pricing(item.get("pricing")),
        errors=_errors(item.get("errors")),
        biz_opaque_callback_data=_opt(item.get("biz_opaque_callback_data")),
    )


def _conversation(value: object) -> Conversation | None:
    if not isinstance(value, dict):
        return None
    expiration = value.get("expiration_timestamp")
    return Conversation(
        id=_str(value.get("id")),
        origin_type=_opt(_dict(value.get("origin")).get("type")),
        expiration_timestamp=_int(expiration) if expiration is not None else None,
    )


def _pricing(value: object) -> Pricing | None:
    if not isinstance(value, dict):
        return None
    billable = value.get("billable")
    return Pricing(
        billable=billable if isinstance(billable, bool) else None,
        pricing_model=_opt(value.get("pricing_model")),
        category=_opt(value.get("category")),
        type=_opt(value.get("type")),
    )


def _errors(value: object) -> tuple[ErrorDetail, ...]:
    return tuple(_error_detail(e) for e in _dicts(value))


def _error_detail(error: dict[str, Any]) -> ErrorDetail:
    details = _dict(error.get("error_data")).get("details") or error.get("details")
    return ErrorDetail(
        code=_int(error.get("code")),
        title=_str(error.get("title")),
        message=_str(error.get("message")),
        details=_str(details),
        href=_str(error.get("href")),
    )


def _webhook_error(origin: _Origin, item: dict[str, Any]) -> WebhookError:
    detail = _error_detail(item)
    return WebhookError(
        kind="error",
        raw=item,
        **origin,
        code=detail.code,
        title=detail.title,
        message=detail.message,
        details=detail.details,
        href=detail.href,
    )


def _template_status(origin: _Origin, value: dict[str, Any]) -> TemplateStatus:
    return TemplateStatus(
        kind="template_status",
        raw=value,
        **origin,
        event=_str(value.get("event")),
        message_template_id=_str(value.get("message_template_id")),
        message_template_name=_str(value.get("message_template_name")),
        message_template_language=_str(value.get("message_template_language")),
        reason=_opt(value.get("reason")),
    )


# --- lenient field access ------------------------------------------------------------


def _dicts(value: object) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: object) -> str:
    return "" if value is None or isinstance(value, (dict, list)) else str(value)


def _opt(value: object) -> str | None:
    return None if value is None or isinstance(value, (dict, list)) else str(value)


def _int(value: object) -> int:
    # Timestamps and codes arrive as strings (Cloud, On-Premise) or as numbers.
    if isinstance(value, (int, float, str)):
        try:
            return int(value)
        except ValueError:
            try:
                return int(float(value))
            except ValueError:
                return 0
    return 0


def _float(value: object) -> float:
    if isinstance(value, (int, float, str)):
        try:
            return float(value)
        except ValueError:
            return 0.0
    return 0.0

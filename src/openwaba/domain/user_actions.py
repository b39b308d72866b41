"""What a simulated user can do, and the inbound message WhatsApp makes of it.

Besides writing text and sending files, a user shares a location or contacts,
reacts, taps a reply button or picks a list row of an interactive message they
received, or taps a quick-reply button of a template. The taps produce the
`interactive` (`button_reply`, `list_reply`) and `button` messages WhatsApp
posts, quoting the business message in `context`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from openwaba.domain.errors import RequestError

TAPS = ("button_reply", "list_reply", "button")


@dataclass(frozen=True, slots=True)
class UserAction:
    """A parsed action: the inbound type and its object, or a tap on the business message `message_id`."""

    type: str
    content: Any  # the type's object (a list for contacts); for taps: the chosen id or button index
    reply_to: str | None = None


def parse_user_action(body: Any) -> UserAction:
    if not isinstance(body, dict):
        raise RequestError(100, 'Send a JSON object, e.g. {"text": "hello"}')
    kind = body.get("type", "text")
    if kind == "text":
        return UserAction("text", {"body": _text(body)}, _context(body))
    if kind in TAPS:
        return _tap(kind, body)
    if kind == "location":
        return UserAction("location", _location(body.get("location")), _context(body))
    if kind == "contacts":
        cards = body.get("contacts")
        if not isinstance(cards, list) or not cards or not all(_card(c) for c in cards):
            raise RequestError(100, "'contacts' is a list of cards, each with name.formatted_name")
        return UserAction("contacts", cards, _context(body))
    if kind == "reaction":
        reaction = body.get("reaction")
        if not isinstance(reaction, dict) or not isinstance(reaction.get("message_id"), str):
            raise RequestError(100, "'reaction' needs message_id (the message reacted to) and emoji")
        emoji = reaction.get("emoji", "")
        if not isinstance(emoji, str):
            raise RequestError(100, "'reaction.emoji' must be a string (empty removes the reaction)")
        return UserAction("reaction", {"message_id": reaction["message_id"], "emoji": emoji})
    kinds = "text, location, contacts, reaction, button_reply, list_reply, button"
    raise RequestError(131051, f"A simulated user sends {kinds}; files as multipart/form-data")


def tapped_reply(action: UserAction, business_type: str, content: dict[str, Any]) -> dict[str, Any]:
    """The `interactive` object of a reply-button tap or a list pick on the business message `content`."""
    kind = content.get("type") if business_type == "interactive" else None
    expected = "button" if action.type == "button_reply" else "list"
    if kind != expected:
        what = "reply buttons" if expected == "button" else "list"
        raise RequestError(100, f"Message {action.reply_to} has no {what} to tap")
    choices = _buttons(content) if expected == "button" else _rows(content)
    chosen = choices.get(str(action.content))
    if chosen is None:
        known = ", ".join(choices)
        raise RequestError(100, f"Message {action.reply_to} has no choice with id '{action.content}' (ids: {known})")
    return {"type": action.type, action.type: chosen}


def tapped_template_button(action: UserAction, sent: dict[str, Any], buttons: list[dict[str, Any]]) -> dict[str, Any]:
    """The `button` object of a tap on the template's quick-reply button `index`.

    `buttons` are the template's BUTTONS component entries; the payload is the one
    the business gave that button when sending, or the button's text.
    """
    index = action.content
    if not isinstance(index, int) or not 0 <= index < len(buttons) or buttons[index].get("type") != "QUICK_REPLY":
        quick = [i for i, b in enumerate(buttons) if b.get("type") == "QUICK_REPLY"]
        raise RequestError(100, f"Template of {action.reply_to} has quick-reply buttons at indexes {quick}")
    text = str(buttons[index].get("text", ""))
    payload = text
    for component in sent.get("components") or []:
        if component.get("type") == "button" and str(component.get("index")) == str(index):
            parameters = component.get("parameters") or [{}]
            payload = str(parameters[0].get("payload", text))
    return {"payload": payload, "text": text}


def _tap(kind: str, body: dict[str, Any]) -> UserAction:
    message_id = body.get("message_id")
    if not isinstance(message_id, str):
        raise RequestError(100, f"A {kind} tap needs message_id: the business message tapped")
    choice = body.get("index") if kind == "button" else body.get("id")
    if kind == "button" and (not isinstance(choice, int) or isinstance(choice, bool)):
        raise RequestError(100, "A template button tap needs index: the button's position (0 for the first)")
    if kind != "button" and not isinstance(choice, str):
        raise RequestError(100, f"A {kind} tap needs id: the button or row id")
    return UserAction(kind, choice, message_id)


def _buttons(content: dict[str, Any]) -> dict[str, dict[str, Any]]:
    buttons = (content.get("action") or {}).get("buttons") or []
    return {str(b["reply"]["id"]): {"id": b["reply"]["id"], "title": b["reply"]["title"]} for b in buttons}


def _rows(content: dict[str, Any]) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    for section in (content.get("action") or {}).get("sections") or []:
        for row in section.get("rows") or []:
            rows[str(row["id"])] = {k: row[k] for k in ("id", "title", "description") if k in row}
    return rows


def _text(body: dict[str, Any]) -> str:
    """`{"text": "hi"}` or the WhatsApp form `{"type": "text", "text": {"body": "hi"}}`."""
    text = body.get("text")
    if isinstance(text, dict):
        text = text.get("body")
    if not isinstance(text, str) or not text:
        raise RequestError(131008, 'Send {"text": "..."} or {"type": "text", "text": {"body": "..."}}')
    return text


def _context(body: dict[str, Any]) -> str | None:
    context = body.get("context")
    reply_to = context.get("message_id") if isinstance(context, dict) else None
    if reply_to is not None and not isinstance(reply_to, str):
        raise RequestError(100, "'context.message_id' must be a string")
    return reply_to


def _location(raw: Any) -> dict[str, Any]:
    ok = isinstance(raw, dict) and all(
        isinstance(raw.get(k), int | float) and not isinstance(raw.get(k), bool) for k in ("latitude", "longitude")
    )
    if not ok or not -90 <= raw["latitude"] <= 90 or not -180 <= raw["longitude"] <= 180:
        raise RequestError(100, "'location' needs latitude (-90..90) and longitude (-180..180); name, address optional")
    return {k: raw[k] for k in ("latitude", "longitude", "name", "address", "url") if k in raw}


def _card(card: Any) -> bool:
    return isinstance(card, dict) and isinstance(card.get("name"), dict) and bool(card["name"].get("formatted_name"))

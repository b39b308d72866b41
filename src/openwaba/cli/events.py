"""One-line summaries of webhook items (messages, statuses, errors, template changes),
shared by `tail` (from the delivery log's payloads) and `receive` (as they arrive)."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

from rich.text import Text

# The submodules, not the package: `openwaba.receiver` also loads its server side (asyncio, sqlite3),
# which only `openwaba receive` needs.
from openwaba.receiver.events import Event, Message, Status, TemplateStatus, WebhookError
from openwaba.receiver.parsing import parse_document

Handler = Callable[[Event], Awaitable[None]]
STATUS_STYLES = {"sent": "cyan", "delivered": "green", "read": "bold blue", "played": "bold blue", "failed": "bold red"}


def items(payload: Any) -> list[Event]:
    """The typed items of a webhook body (Cloud envelope or On-Premise); none if it is not one."""
    return parse_document(payload) if isinstance(payload, dict) else []


def summary(event: Event) -> str:
    if isinstance(event, Status):
        text = f"{event.status} → {event.recipient_id}  {event.id}"
        return text + "".join(f"  #{e.code} {e.title or e.message}" for e in event.errors)
    if isinstance(event, Message):
        who = event.from_ + (f" ({event.profile_name})" if event.profile_name else "")
        content = _content(event)
        return f"{event.type} from {who}" + (f": {content}" if content else "")
    if isinstance(event, WebhookError):
        return f"#{event.code} {event.title or event.message}" + (f": {event.details}" if event.details else "")
    if isinstance(event, TemplateStatus):
        name = f"{event.message_template_name} ({event.message_template_language})"
        return f"{name} {event.event.lower()}" + (f": {event.reason}" if event.reason else "")
    return f"{event.kind} {getattr(event, 'field', '')}".strip()


def styled(event: Event) -> Text:
    """The summary, coloured by what it says."""
    if isinstance(event, Status):
        return Text(summary(event), style=STATUS_STYLES.get(event.status, ""))
    if isinstance(event, WebhookError):
        return Text(summary(event), style="red")
    if isinstance(event, Message):
        return Text(summary(event), style="green")
    return Text(summary(event), style="magenta")


def as_json(event: Event) -> dict[str, Any]:
    """Every field of the item (`from_` as `from`), its summary, and the raw item."""
    fields: dict[str, Any] = {}
    for field in dataclasses.fields(event):
        if field.name != "raw":
            value = getattr(event, field.name)
            fields[field.name.rstrip("_")] = _plain(value)
    return {**fields, "summary": summary(event), "raw": event.raw}


def _content(message: Message) -> str:
    if message.text is not None:
        return message.text
    if message.media is not None:
        return message.media.caption or message.media.filename or message.media.mime_type
    if message.interactive is not None:
        return message.interactive.title or message.interactive.id
    if message.button is not None:
        return message.button.text
    if message.reaction is not None:
        return message.reaction.emoji or "(removed)"
    if message.location is not None:
        return f"{message.location.latitude}, {message.location.longitude}"
    if message.contacts:
        return ", ".join(c.formatted_name for c in message.contacts)
    return ""


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name.rstrip("_"): _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value

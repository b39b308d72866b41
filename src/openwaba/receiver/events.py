"""The typed items a webhook carries: one frozen object per message, status,
error or template change, whatever format (Cloud envelope or On-Premise flat)
it arrived in.

Every object keeps the item it was built from as `raw`, so fields this module
does not model (new message types, new status fields) are never lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Outbound statuses in the order a message moves through them. `failed` ends a
# message's life: nothing after it advances the state. Statuses missing here
# (On-Premise `deleted`, `warning`, future ones) are passed on once each and
# leave the merged state alone.
STATUS_RANK: dict[str, int] = {"sent": 1, "delivered": 2, "read": 3, "played": 4, "failed": 100}


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """What every item has: where it came from, and the item itself."""

    kind: str  # "message", "status", "error", "template_status" or "unknown"
    format: str  # "cloud" or "on_premise"
    phone_number_id: str = ""  # "" when the format does not say (On-Premise, WABA-level changes)
    display_phone_number: str = ""
    waba_id: str = ""  # entry[].id of a Cloud envelope
    raw: dict[str, Any]

    @property
    def key(self) -> str | None:
        """The identity duplicates share, when the item has a natural one."""
        return None

    @property
    def wa_id(self) -> str | None:
        """The user the item is about (its conversation), when it is about one."""
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorDetail:
    """An error object as Meta (code, title, message, error_data.details, href) or On-Premise sends it."""

    code: int
    title: str = ""
    message: str = ""
    details: str = ""
    href: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Media:
    """image, audio, video, document or sticker."""

    id: str
    mime_type: str = ""
    sha256: str = ""
    caption: str | None = None
    filename: str | None = None
    url: str | None = None
    voice: bool = False
    animated: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Location:
    latitude: float
    longitude: float
    name: str | None = None
    address: str | None = None
    url: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Phone:
    phone: str
    wa_id: str | None = None
    type: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SharedContact:
    """One contact card of a `contacts` message."""

    formatted_name: str
    first_name: str | None = None
    last_name: str | None = None
    phones: tuple[Phone, ...] = ()
    raw: dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class InteractiveReply:
    """The user's answer to an interactive message: a reply button, a list row or a Flow."""

    type: str  # "button_reply", "list_reply", "nfm_reply", …
    id: str = ""
    title: str = ""
    description: str | None = None
    response: dict[str, Any] | None = None  # nfm_reply: `response_json`, decoded


@dataclass(frozen=True, slots=True, kw_only=True)
class ButtonReply:
    """A template's quick-reply button."""

    payload: str
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Reaction:
    message_id: str
    emoji: str | None  # None: the reaction was removed


@dataclass(frozen=True, slots=True, kw_only=True)
class Context:
    """What a message replies to (or was forwarded as)."""

    id: str | None = None
    from_: str | None = None
    forwarded: bool = False
    frequently_forwarded: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Message(Event):
    """An inbound message from a user."""

    id: str
    from_: str
    timestamp: int
    type: str
    profile_name: str | None = None
    user_id: str | None = None  # business-scoped user id, when Meta sends one
    text: str | None = None
    media: Media | None = None
    location: Location | None = None
    contacts: tuple[SharedContact, ...] = ()
    interactive: InteractiveReply | None = None
    button: ButtonReply | None = None
    reaction: Reaction | None = None
    context: Context | None = None
    errors: tuple[ErrorDetail, ...] = ()

    @property
    def key(self) -> str:
        return "message:" + self.id

    @property
    def wa_id(self) -> str:
        return self.from_

    @property
    def reply_to(self) -> str | None:
        """The wamid this message quotes or answers."""
        return self.context.id if self.context else None


@dataclass(frozen=True, slots=True, kw_only=True)
class Conversation:
    id: str
    origin_type: str | None = None
    expiration_timestamp: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Pricing:
    billable: bool | None = None
    pricing_model: str | None = None
    category: str | None = None
    type: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Status(Event):
    """A status of a message the business sent."""

    id: str
    status: str
    recipient_id: str
    timestamp: int
    conversation: Conversation | None = None
    pricing: Pricing | None = None
    errors: tuple[ErrorDetail, ...] = ()
    biz_opaque_callback_data: str | None = None

    @property
    def key(self) -> str:
        return f"status:{self.id}:{self.status}"

    @property
    def wa_id(self) -> str:
        return self.recipient_id

    @property
    def rank(self) -> int | None:
        return STATUS_RANK.get(self.status)


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookError(Event):
    """An error that concerns no single message (value-level `errors[]`)."""

    code: int
    title: str = ""
    message: str = ""
    details: str = ""
    href: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class TemplateStatus(Event):
    """A `message_template_status_update`: a template was approved, rejected, paused, …"""

    event: str
    message_template_id: str = ""
    message_template_name: str = ""
    message_template_language: str = ""
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Unknown(Event):
    """A change this module does not model (another webhook `field`); `raw` is its `value`."""

    field: str = ""

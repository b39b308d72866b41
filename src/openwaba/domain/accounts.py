"""The account model: WABAs, their phone numbers (channels), simulated users."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class ChannelFormat(enum.Enum):
    """Which API generation a channel belongs to; decides its webhook format."""

    CLOUD = "cloud"
    ON_PREMISE = "on_premise"


class ChannelMode(enum.Enum):
    """Sandbox numbers accept any webhook URL; production numbers follow Cloud API rules."""

    SANDBOX = "sandbox"
    PRODUCTION = "production"


@dataclass(frozen=True, slots=True)
class Waba:
    id: str  # Meta-style numeric string; rendered as `entry[].id`
    name: str


@dataclass(frozen=True, slots=True)
class Channel:
    """One business phone number and everything that is configured per number."""

    id: int
    waba_id: str
    phone_number: str  # display number, digits only
    phone_number_id: str
    format: ChannelFormat
    connector: str  # "sandbox" or "meta"
    mode: ChannelMode


@dataclass(frozen=True, slots=True)
class MetaLink:
    """Where a channel lives on Meta's Cloud API, and the credentials to use it."""

    channel_id: int
    phone_number_id: str  # Meta's id of the number: the Graph path and webhooks' `metadata`
    waba_id: str | None  # Meta's WABA id: `entry[].id` of its webhooks, templates
    access_token: str  # a system-user token with whatsapp_business_messaging
    app_secret: str  # signs Meta's webhook posts (X-Hub-Signature-256)

    def __repr__(self) -> str:  # never print the secrets
        return f"MetaLink(channel_id={self.channel_id}, phone_number_id={self.phone_number_id!r})"


@dataclass(frozen=True, slots=True)
class SandboxUser:
    """A simulated WhatsApp user of the sandbox connector."""

    wa_id: str
    name: str
    user_id: str  # business-scoped user id (BSUID) shown in webhooks

    def contact(self) -> dict[str, object]:
        """The `contacts[]` entry WhatsApp puts beside this user's messages and statuses."""
        return {"profile": {"name": self.name}, "wa_id": self.wa_id, "user_id": self.user_id}

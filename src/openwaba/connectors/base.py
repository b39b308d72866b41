"""The connector seam: where accepted messages leave openwaba for WhatsApp.

A connector takes messages that are already committed and hands them to a
WhatsApp network: the built-in sandbox, or Meta's Cloud API. Everything that
comes back (statuses, inbound messages, errors) enters through the
:class:`EventSink` as Meta-shaped notifications, whatever the connector.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any, Protocol

from openwaba.domain.accounts import Channel
from openwaba.domain.errors import OpenwabaError
from openwaba.domain.messages import OutgoingMessage
from openwaba.storage.base import QueuedMessage


class ConnectorError(OpenwabaError):
    """The connector could not hand a message over; the message stays queued."""


class EventSink(Protocol):
    async def ingest(
        self, notifications: Sequence[tuple[dict[str, Any], float]], injected: Sequence[tuple[str, ...]] = ()
    ) -> None:
        """Take Meta `whatsapp_business_account` notifications, each with the
        time it happened, and commit them together. `injected` (parallel to
        `notifications`, when given) labels what a sandbox scenario made up."""


class Connector(abc.ABC):
    name: str
    # A synchronous connector hands a message over while its sender waits, and the
    # network's id for it is the one the sender gets (Meta's wamid); otherwise the
    # message is handed over after the send was answered.
    synchronous: bool = False

    async def check(self, channel: Channel, message: OutgoingMessage) -> None:  # noqa: B027  (optional hook)
        """Refuse, before it is accepted, a message the network would answer with an
        error at once (e.g. unknown media id, unapproved template): raise RequestError."""

    async def resolve(self, channel: Channel, message: OutgoingMessage) -> OutgoingMessage:
        """The message with the user's wa_id filled in when it names a BSUID (`recipient`);
        a network that resolves BSUIDs itself leaves it as it is."""
        return message

    async def mark_read(self, channel: Channel, message_id: str, wa_id: str, typing: bool) -> None:  # noqa: B027
        """Tell the network a received message was read (and maybe show "typing…")."""

    @abc.abstractmethod
    async def send(self, channel: Channel, queued: QueuedMessage) -> str | None:
        """Hand one accepted message over. Raise ConnectorError to have it tried again.

        A synchronous connector returns the network's id for the message; raising
        RequestError means the network refused it (final: the sender gets the error)."""

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

    async def check(self, channel: Channel, message: OutgoingMessage) -> None:  # noqa: B027  (optional hook)
        """Refuse, before it is accepted, a message the network would answer with an
        error at once (e.g. unknown media id, unapproved template): raise RequestError."""

    def typing(self, channel: Channel, wa_id: str) -> None:  # noqa: B027  (optional hook)
        """Show the user that the business is typing (the network's own indicator)."""

    @abc.abstractmethod
    async def send(self, channel: Channel, queued: QueuedMessage) -> None:
        """Hand one accepted message over. Raise ConnectorError to have it tried again."""

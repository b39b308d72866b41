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
from openwaba.storage.base import QueuedMessage


class ConnectorError(OpenwabaError):
    """The connector could not hand a message over; the message stays queued."""


class EventSink(Protocol):
    async def ingest(self, notifications: Sequence[tuple[dict[str, Any], float]]) -> None:
        """Take Meta `whatsapp_business_account` notifications, each with the
        time it happened, and commit them together."""


class Connector(abc.ABC):
    name: str

    @abc.abstractmethod
    async def send(self, channel: Channel, queued: QueuedMessage) -> None:
        """Hand one accepted message over. Raise ConnectorError to have it tried again."""

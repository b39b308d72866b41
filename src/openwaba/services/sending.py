"""Sending: validate, commit, answer, then hand over to the channel's connector.

A send is acknowledged once the message row is committed. Hand-over to the
connector happens afterwards, from an in-process queue that is refilled from
storage at start-up, so a crash between the two loses nothing.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from openwaba.clock import Clock
from openwaba.connectors.base import Connector, ConnectorError
from openwaba.domain import ids
from openwaba.domain.accounts import Channel
from openwaba.domain.errors import RequestError
from openwaba.domain.messages import Dialect, OutgoingMessage, ReadRequest, parse_messages_body
from openwaba.services.accounts import Accounts
from openwaba.services.limits import Limits
from openwaba.storage.base import QueuedMessage, Storage

log = logging.getLogger("openwaba.sending")

_HANDOVER_BATCH = 256
_RETRY_PAUSE = 1.0


@dataclass(frozen=True, slots=True)
class Accepted:
    wamid: str
    input: str
    wa_id: str


@dataclass(frozen=True, slots=True)
class Read:
    """A mark-as-read (and maybe typing indicator) that was carried out."""

    message_id: str
    wa_id: str


class Sending:
    def __init__(
        self, storage: Storage, accounts: Accounts, connectors: dict[str, Connector], limits: Limits, clock: Clock
    ):
        self._storage = storage
        self._accounts = accounts
        self._connectors = connectors
        self._limits = limits
        self._clock = clock
        self._handover: asyncio.Queue[QueuedMessage] = asyncio.Queue()

    async def post(self, channel: Channel, body: bytes, dialect: Dialect) -> Accepted | Read:
        """`POST /messages`: a message to send, or a mark-as-read of a received one."""
        request = parse_messages_body(body, dialect)
        if isinstance(request, ReadRequest):
            return await self.mark_read(channel, request.message_id, typing=request.typing)
        return await self.send(channel, request)

    async def send(self, channel: Channel, message: OutgoingMessage) -> Accepted:
        await self._connectors[channel.connector].check(channel, message)
        now = self._clock.now()
        await self._limits.admit(channel, message.wa_id, now)
        queued = QueuedMessage(ids.wamid(message.wa_id, outbound=True), channel.id, message, now)
        await self._storage.insert_outbound(queued)
        self._handover.put_nowait(queued)
        return Accepted(queued.wamid, message.input, message.wa_id)

    async def mark_read(self, channel: Channel, message_id: str, *, typing: bool = False) -> Read:
        """Mark a received message (and the user's earlier ones) read; optionally show "typing…"."""
        wa_id = await self._storage.mark_read(channel.id, message_id)
        if wa_id is None:
            raise RequestError(
                100,
                f"message_id '{message_id}' is not a message this number received; "
                "only incoming messages can be marked read",
            )
        if typing:
            self._connectors[channel.connector].typing(channel, wa_id)
        return Read(message_id, wa_id)

    async def recover(self) -> int:
        """Queue again what was accepted but not handed over before the last stop."""
        pending = await self._storage.undispatched(limit=1_000_000)
        for queued in pending:
            self._handover.put_nowait(queued)
        return len(pending)

    async def run_handover(self) -> None:
        """Forever: take accepted messages in batches and give them to their connectors."""
        while True:
            batch = [await self._handover.get()]
            while len(batch) < _HANDOVER_BATCH and not self._handover.empty():
                batch.append(self._handover.get_nowait())
            done = await asyncio.gather(*(self._hand_over(q) for q in batch))
            handed = [q.wamid for q, ok in zip(batch, done) if ok]
            if handed:
                await self._storage.mark_dispatched(handed)
            failed = [q for q, ok in zip(batch, done) if not ok]
            if failed:
                await asyncio.sleep(_RETRY_PAUSE)
                for queued in failed:
                    self._handover.put_nowait(queued)

    async def _hand_over(self, queued: QueuedMessage) -> bool:
        try:
            channel = await self._accounts.by_id(queued.channel_id)
            await self._connectors[channel.connector].send(channel, queued)
        except ConnectorError as exc:
            log.warning("hand-over of %s failed, will retry: %s", queued.wamid, exc)
            return False
        return True

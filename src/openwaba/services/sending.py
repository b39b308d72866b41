"""Sending: validate, commit, answer, then hand over to the channel's connector.

A send is acknowledged once the message row is committed. Hand-over to the
connector happens afterwards, from an in-process queue. The accepting process
holds the message's hand-over lease; messages whose lease expired (their
process stopped before handing them over) are claimed again at start-up and
every little while, by whichever process sharing the store gets there first,
so a crash between the two loses nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from openwaba.batches import drain
from openwaba.clock import Clock
from openwaba.connectors.base import Connector, ConnectorError
from openwaba.domain import ids
from openwaba.domain.accounts import Channel
from openwaba.domain.errors import RequestError, StateError
from openwaba.domain.messages import Dialect, OutgoingMessage, ReadRequest, parse_messages_body
from openwaba.services.accounts import Accounts
from openwaba.services.limits import Limits
from openwaba.storage.base import QueuedMessage, Storage

log = logging.getLogger("openwaba.sending")

_HANDOVER_BATCH = 256
_RETRY_PAUSE = 1.0
_RECLAIM_BATCH = 1000


@dataclass(frozen=True, slots=True)
class Accepted:
    wamid: str
    input: str
    wa_id: str
    user_id: str | None = None  # the BSUID, when the client addressed the user by it


@dataclass(frozen=True, slots=True)
class Read:
    """A mark-as-read (and maybe typing indicator) that was carried out."""

    message_id: str
    wa_id: str


class Sending:
    def __init__(
        self,
        storage: Storage,
        accounts: Accounts,
        connectors: dict[str, Connector],
        limits: Limits,
        clock: Clock,
        lease: float = 30.0,
        on_change: Callable[[int, str, str | None], None] = lambda channel_id, what, wa_id: None,
    ):
        self._on_change = on_change  # (channel id, "messages", wa_id): e.g. the console's live view
        self._storage = storage
        self._accounts = accounts
        self._connectors = connectors
        self._limits = limits
        self._clock = clock
        self._lease = lease  # how long another process leaves this one's accepted messages alone
        self._handover: asyncio.Queue[QueuedMessage] = asyncio.Queue()
        self._queued: set[str] = set()  # wamids in the queue: a reclaim must not queue them twice

    async def post(self, channel: Channel, body: bytes, dialect: Dialect) -> Accepted | Read:
        """`POST /messages`: a message to send, or a mark-as-read of a received one."""
        request = parse_messages_body(body, dialect)
        if isinstance(request, ReadRequest):
            return await self.mark_read(channel, request.message_id, typing=request.typing)
        return await self.send(channel, request)

    async def send(self, channel: Channel, message: OutgoingMessage) -> Accepted:
        connector = self._connector(channel)
        message = await connector.resolve(channel, message)
        await connector.check(channel, message)
        now = self._clock.now()
        await self._limits.admit(channel, message.wa_id, now)
        queued = QueuedMessage(ids.wamid(message.wa_id, outbound=True), channel.id, message, now)
        if connector.synchronous:
            return await self._send_now(connector, channel, queued)
        await self._storage.insert_outbound(queued, now + self._lease)
        self._on_change(channel.id, "messages", message.wa_id)
        self._queue(queued)
        return Accepted(queued.wamid, message.input, message.wa_id, message.recipient)

    async def _send_now(self, connector: Connector, channel: Channel, queued: QueuedMessage) -> Accepted:
        """Hand over while the sender waits; answer with the network's id.

        The row committed first is the message's idempotency record, keyed by our
        id: it is never reclaimed, so whatever happens to this process the message
        is handed over by this call only, and never twice."""
        await self._storage.insert_outbound(queued, None)
        try:
            remote = await connector.send(channel, queued)
        except RequestError:
            await self._storage.settle_outbound(queued.wamid, None)  # refused: nothing was sent
            raise
        except ConnectorError as exc:  # no answer: it may have gone out, so it is not tried again
            log.warning("hand-over of %s has an unknown outcome: %s", queued.wamid, exc)
            raise RequestError(131000, f"{exc}; the message may have been sent", http_status=504) from None
        wamid = remote or queued.wamid
        await self._storage.settle_outbound(queued.wamid, wamid)
        self._on_change(channel.id, "messages", queued.message.wa_id)
        return Accepted(wamid, queued.message.input, queued.message.wa_id, queued.message.recipient)

    def _connector(self, channel: Channel) -> Connector:
        connector = self._connectors.get(channel.connector)
        if connector is None:
            raise StateError(f"the number's connector {channel.connector!r} is not available on this server")
        return connector

    def _queue(self, queued: QueuedMessage) -> None:
        if queued.wamid not in self._queued:
            self._queued.add(queued.wamid)
            self._handover.put_nowait(queued)

    async def mark_read(self, channel: Channel, message_id: str, *, typing: bool = False) -> Read:
        """Mark a received message (and the user's earlier ones) read; optionally show "typing…"."""
        wa_id = await self._storage.mark_read(channel.id, message_id)
        if wa_id is None:
            raise RequestError(
                100,
                f"message_id '{message_id}' is not a message this number received; "
                "only incoming messages can be marked read",
            )
        await self._connector(channel).mark_read(channel, message_id, wa_id, typing)
        self._on_change(channel.id, "messages", wa_id)
        return Read(message_id, wa_id)

    async def recover(self) -> int:
        """Queue what was accepted but not handed over by a process that stopped."""
        count = 0
        while True:
            now = self._clock.now()
            claimed = await self._storage.claim_undispatched(now, _RECLAIM_BATCH, now + self._lease)
            for queued in claimed:
                self._queue(queued)
            count += len(claimed)
            if len(claimed) < _RECLAIM_BATCH:
                return count

    async def run_reclaim(self) -> None:
        """Forever: pick up messages another process accepted and then died holding."""
        while True:
            await asyncio.sleep(self._lease / 2)
            recovered = await self.recover()
            if recovered:
                log.info("claimed %d accepted messages whose hand-over lease had expired", recovered)

    async def run_handover(self) -> None:
        """Forever: take accepted messages in batches and give them to their connectors."""
        while True:
            batch = await drain(self._handover, _HANDOVER_BATCH)
            # Conversations are handed over side by side, each in acceptance order: what the
            # network decides per message (a scenario's "the next two fail") follows that order.
            conversations: dict[tuple[int, str], list[QueuedMessage]] = {}
            for queued in batch:
                conversations.setdefault((queued.channel_id, queued.message.wa_id), []).append(queued)
            outcomes = await asyncio.gather(*(self._hand_over_in_order(c) for c in conversations.values()))
            done = {wamid: ok for outcome in outcomes for wamid, ok in outcome}
            handed = [q.wamid for q in batch if done[q.wamid]]
            if handed:
                await self._storage.mark_dispatched(handed)
                self._queued.difference_update(handed)
            failed = [q for q in batch if not done[q.wamid]]
            if failed:
                await asyncio.sleep(_RETRY_PAUSE)
                for queued in failed:
                    self._handover.put_nowait(queued)

    async def _hand_over_in_order(self, conversation: list[QueuedMessage]) -> list[tuple[str, bool]]:
        return [(queued.wamid, await self._hand_over(queued)) for queued in conversation]

    async def _hand_over(self, queued: QueuedMessage) -> bool:
        try:
            channel = await self._accounts.by_id(queued.channel_id)
            await self._connector(channel).send(channel, queued)
        except (ConnectorError, StateError) as exc:
            log.warning("hand-over of %s failed, will retry: %s", queued.wamid, exc)
            return False
        return True

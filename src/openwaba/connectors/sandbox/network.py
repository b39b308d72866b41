"""The sandbox connector: simulated users who receive, read and write.

An outbound message to a simulated user produces `sent`, `delivered` and
`read` at the configured delays after acceptance; to anyone else, a `failed`
status with 131026. The statuses are ingested at once, each dated at the
moment it happens, so they are durable immediately and the delivery engine
posts each when its time comes (a crash cannot lose a pending status).
"""

from __future__ import annotations

from openwaba.clock import Clock
from openwaba.connectors.base import Connector, EventSink
from openwaba.connectors.sandbox.notifications import inbound_item, notification, status_item
from openwaba.domain import ids
from openwaba.domain.accounts import Channel, SandboxUser
from openwaba.domain.errors import NotFoundError, webhook_error
from openwaba.storage.base import QueuedMessage, Storage

_UNDELIVERABLE = (
    "Message failed to send because the recipient is not a WhatsApp user of this sandbox "
    "(not one of its simulated users)."
)


class SandboxConnector(Connector):
    name = "sandbox"

    def __init__(self, storage: Storage, sink: EventSink, clock: Clock, status_delays: tuple[float, float, float]):
        self._storage = storage
        self._sink = sink
        self._clock = clock
        self._delays = status_delays
        self._users: dict[int, dict[str, SandboxUser]] = {}
        self._conversations: dict[tuple[int, str], str] = {}

    async def users(self, channel: Channel) -> dict[str, SandboxUser]:
        users = self._users.get(channel.id)
        if users is None:
            users = {u.wa_id: u for u in await self._storage.sandbox_users(channel.id)}
            self._users[channel.id] = users
        return users

    async def send(self, channel: Channel, queued: QueuedMessage) -> None:
        message = queued.message
        user = (await self.users(channel)).get(message.wa_id)
        start = queued.created_at
        callback = message.biz_opaque_callback_data
        if user is None:
            failed = status_item(
                queued.wamid,
                "failed",
                start + self._delays[0],
                message.wa_id,
                errors=[webhook_error(131026, _UNDELIVERABLE)],
                biz_opaque_callback_data=callback,
            )
            await self._sink.ingest([(notification(channel, {"statuses": [failed]}, []), start + self._delays[0])])
            return
        conversation_id = self._conversations.setdefault((channel.id, user.wa_id), ids.conversation_id())
        batch = []
        for index, status in enumerate(("sent", "delivered", "read")):
            at = start + self._delays[index]
            conversation: dict[str, object] = {"id": conversation_id, "origin": {"type": "service"}}
            if status == "sent":
                conversation["expiration_timestamp"] = str(int(at + 24 * 3600))
            item = status_item(
                queued.wamid, status, at, user.wa_id, conversation=conversation, biz_opaque_callback_data=callback
            )
            batch.append((notification(channel, {"statuses": [item]}, [user.contact()]), at))
        await self._sink.ingest(batch)

    async def user_says(self, channel: Channel, wa_id: str, text: str) -> str:
        """A simulated user writes a text message to the business number; returns its wamid."""
        user = (await self.users(channel)).get(wa_id)
        if user is None:
            raise NotFoundError(f"{wa_id} is not a simulated user of this sandbox number")
        now = self._clock.now()
        wamid = ids.wamid(wa_id, outbound=False)
        item = inbound_item(user, wamid, now, "text", {"body": text})
        await self._sink.ingest([(notification(channel, {"messages": [item]}, [user.contact()]), now)])
        return wamid

"""The one way events enter openwaba: Meta-shaped notifications, from the
sandbox today and from Meta's webhooks with the Meta connector.

Each item becomes an event, rendered once in its channel's webhook format,
stored together with one delivery per destination in a single transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from openwaba.domain import ids
from openwaba.domain.deliveries import order_key
from openwaba.domain.errors import NotFoundError
from openwaba.domain.payloads import EventItem, render, split_notification
from openwaba.services.accounts import Accounts
from openwaba.services.webhooks import Webhooks
from openwaba.storage.base import InboundMessage, NewEvent, Storage

log = logging.getLogger("openwaba.ingest")


class Ingest:
    def __init__(
        self,
        storage: Storage,
        accounts: Accounts,
        webhooks: Webhooks,
        on_new_work: Callable[[], None],
        default_horizon: float,
        on_ingested: Callable[[Sequence[NewEvent]], None] = lambda events: None,
    ):
        self._on_ingested = on_ingested  # e.g. the console's live view
        self._default_horizon = default_horizon
        self._storage = storage
        self._accounts = accounts
        self._webhooks = webhooks
        self._on_new_work = on_new_work

    async def ingest(
        self,
        notifications: Sequence[tuple[dict[str, Any], float]],
        injected: Sequence[tuple[str, ...]] = (),
        *,
        reposted: bool = False,
    ) -> None:
        """`reposted`: the sender may post the same notification again (Meta does);
        then even items without an id (errors) are ingested once."""
        events: list[NewEvent] = []
        inbound: list[InboundMessage] = []
        labels = list(injected) or [()] * len(notifications)
        for (notification, at), made_up in zip(notifications, labels):
            for item in split_notification(notification):
                event = await self._event(item, at, made_up, reposted)
                if event is None:
                    continue
                events.append(event)
                if item.kind == "message":
                    inbound.append(_inbound(event.channel_id, item, at))
        if events:
            await self._storage.ingest(events, inbound)
            self._on_new_work()
            self._on_ingested(events)

    async def _event(self, item: EventItem, at: float, injected: tuple[str, ...], reposted: bool) -> NewEvent | None:
        try:
            if item.phone_number_id:
                channel = await self._accounts.by_phone_number_id(item.phone_number_id)
            else:  # a WABA-level change goes to the WABA's first number and its webhooks
                channel = await self._accounts.first_of_waba(item.waba_id)
        except NotFoundError:
            log.warning("dropping a notification for unknown number %r", item.phone_number_id or item.waba_id)
            return None
        wamid = item.item.get("id") if item.kind in ("message", "status") else None
        status = item.item.get("status") if item.kind == "status" else None
        if item.kind == "template_status":
            event_id = ids.template_status_event_id(
                channel.id, str(item.item.get("message_template_id")), str(item.item.get("event"))
            )
        elif wamid is None and reposted:  # known by its content alone
            event_id = ids.stable_event_id(channel.id, item.kind, msgspec.json.encode(item.value, order="sorted"))
        elif wamid is None or "duplicate" in injected:  # a duplicate is a second event with the same payload
            event_id = ids.event_id()
        else:
            event_id = ids.stable_event_id(channel.id, item.kind, wamid, status)
        return NewEvent(
            id=event_id,
            channel_id=channel.id,
            kind=item.kind,
            wamid=wamid,
            created_at=at,
            body=render(channel.format.value, channel.waba_id, item.value, item.field),
            fanout=await self._webhooks.fan_out(channel),
            deadline=at + (await self._webhooks.retry_horizon(channel) or self._default_horizon),
            order_key=order_key(channel.id, item.wa_id),
            message_status=status,
            injected=injected,
        )


def _inbound(channel_id: int, item: EventItem, at: float) -> InboundMessage:
    message = item.item
    type_name = message.get("type", "unknown")
    return InboundMessage(
        wamid=message["id"],
        channel_id=channel_id,
        wa_id=message.get("from", ""),
        type=type_name,
        content=message.get(type_name) or {},
        created_at=at,
        context_message_id=(message.get("context") or {}).get("id"),
    )

"""The delivery log of a channel: what was posted where, every attempt, and replay."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import msgspec

from openwaba.clock import Clock
from openwaba.domain.accounts import Channel
from openwaba.domain.deliveries import AttemptView, DeliveryFilter, DeliveryView
from openwaba.domain.errors import NotFoundError, RequestError
from openwaba.services.webhooks import Webhooks
from openwaba.storage.base import Storage

_STATES = ("held", "pending", "delivered", "dead")
MAX_PAGE = 500


@dataclass(frozen=True, slots=True)
class DeliveryDetail:
    delivery: DeliveryView
    attempts: list[AttemptView]
    payload: object


class DeliveryLog:
    def __init__(
        self,
        storage: Storage,
        clock: Clock,
        webhooks: Webhooks,
        default_horizon: float,
        on_new_work: Callable[[], None],
    ):
        self._storage = storage
        self._clock = clock
        self._webhooks = webhooks
        self._default_horizon = default_horizon
        self._on_new_work = on_new_work

    async def page(
        self, channel: Channel, where: DeliveryFilter, limit: int = 100, before_id: int | None = None
    ) -> list[DeliveryView]:
        _check(where)
        if not 1 <= limit <= MAX_PAGE:
            raise RequestError(100, f"'limit' must be between 1 and {MAX_PAGE}")
        return await self._storage.deliveries(channel.id, where, limit, before_id)

    async def detail(self, channel: Channel, delivery_id: int) -> DeliveryDetail:
        found = await self._storage.deliveries(channel.id, DeliveryFilter(delivery_id=delivery_id), 1, None)
        if not found:
            raise NotFoundError(f"no delivery {delivery_id} for this number")
        delivery = found[0]
        body = await self._storage.event_body(delivery.event_id)
        payload = msgspec.json.decode(body) if body else None
        return DeliveryDetail(delivery, await self._storage.attempts(delivery_id), payload)

    async def notices(self, channel: Channel, limit: int = 100) -> list[tuple[float, str, str]]:
        """Operational events of the number, newest first (e.g. a destination disabled by 410 Gone)."""
        return await self._storage.notices(channel.id, limit)

    async def queue_gauges(self) -> tuple[int, float]:
        """Pending deliveries, and how long the oldest has waited (seconds; 0 when none)."""
        depth, oldest = await self._storage.queue_stats()
        return depth, max(0.0, self._clock.now() - oldest) if oldest is not None else 0.0

    async def replay(self, channel: Channel, where: DeliveryFilter) -> int:
        """Make matching deliveries due now, on the same event ids, with a fresh horizon."""
        _check(where)
        if where.state == "pending":
            raise RequestError(100, "pending deliveries are already going to be attempted")
        now = self._clock.now()
        horizon = await self._webhooks.retry_horizon(channel) or self._default_horizon
        count = await self._storage.replay(channel.id, where, now, now + horizon)
        if count:
            self._on_new_work()
        return count


def _check(where: DeliveryFilter) -> None:
    if where.state is not None and where.state not in _STATES:
        raise RequestError(100, f"'state' must be one of {', '.join(_STATES)}")

"""Per-number throughput (130429) and the per-user pair rate limit (131056).

The counters live in the store (`Storage.admit`), so processes sharing one
database share the limits; with SQLite, one process, they are in its memory.
"""

from __future__ import annotations

from typing import Any

from openwaba.domain.accounts import Channel
from openwaba.domain.errors import RequestError
from openwaba.domain.throttle import PAIR_RATE, Rate
from openwaba.storage.base import ChannelLimits, Storage


def check_limits(limits: ChannelLimits) -> None:
    if limits.throughput is not None and not 1 <= limits.throughput <= 100_000:
        raise RequestError(100, "'throughput' must be between 1 and 100000 messages per second, or null")


class Limits:
    def __init__(self, storage: Storage, throughput: float, enabled: bool) -> None:
        self._storage = storage
        self._default_throughput = throughput
        self._default_enabled = enabled
        # Effective settings per channel, with the number's rate built once.
        self._effective: dict[int, tuple[ChannelLimits, Rate]] = {}

    def forget(self) -> None:
        """Drop cached settings (changed by another process)."""
        self._effective.clear()

    async def settings(self, channel: Channel) -> ChannelLimits:
        """The channel's effective limits: its own, else the deployment's."""
        return (await self._settings_and_rate(channel))[0]

    async def _settings_and_rate(self, channel: Channel) -> tuple[ChannelLimits, Rate]:
        cached = self._effective.get(channel.id)
        if cached is None:
            own = await self._storage.channel_limits(channel.id)
            limits = ChannelLimits(
                throughput=own.throughput if own.throughput is not None else self._default_throughput,
                rate_limits=own.rate_limits if own.rate_limits is not None else self._default_enabled,
            )
            cached = self._effective[channel.id] = (limits, Rate.per_second(limits.throughput or 1.0))
        return cached

    async def merged(self, channel: Channel, changes: dict[str, Any]) -> ChannelLimits:
        """The channel's own limits with `changes` (`throughput`, `rate_limits`; null
        means the default) applied and checked, not yet stored."""
        own = await self._storage.channel_limits(channel.id)
        throughput, flag = own.throughput, own.rate_limits
        if "throughput" in changes:
            throughput = changes["throughput"]
            if throughput is not None and (isinstance(throughput, bool) or not isinstance(throughput, int | float)):
                raise RequestError(100, "'throughput' must be a number or null")
        if "rate_limits" in changes:
            flag = changes["rate_limits"]
            if flag is not None and not isinstance(flag, bool):
                raise RequestError(100, "'rate_limits' must be true, false or null")
        limits = ChannelLimits(None if throughput is None else float(throughput), flag)
        check_limits(limits)
        return limits

    async def configure(self, channel: Channel, limits: ChannelLimits) -> None:
        check_limits(limits)
        await self._storage.set_channel_limits(channel.id, limits)
        self._effective.pop(channel.id, None)

    async def admit(self, channel: Channel, wa_id: str, now: float) -> None:
        """Count one outgoing message, or raise the error WhatsApp gives when over a limit."""
        limits, number_rate = await self._settings_and_rate(channel)
        if not limits.rate_limits:
            return
        buckets = [(f"number:{channel.id}", number_rate), (f"pair:{channel.id}:{wa_id}", PAIR_RATE)]
        refused = await self._storage.admit(buckets, now)
        if refused is None:
            return
        index, due = refused
        if index == 0:
            raise RequestError(
                130429, f"Cloud API message throughput ({limits.throughput:g} messages/s) has been reached."
            )
        wait = PAIR_RATE.retry_after(due, now)
        raise RequestError(
            131056,
            "Message failed to send because there were too many messages sent from this phone number to the "
            f"same phone number in a short period of time. Retry in {wait:.0f} s.",
        )

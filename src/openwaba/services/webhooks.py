"""Webhook configuration of a channel, and which destinations an event goes to."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from openwaba.domain.accounts import Channel
from openwaba.domain.deliveries import Destination
from openwaba.domain.errors import RequestError
from openwaba.storage.base import Storage

MAIN = "main"  # the phone-number webhook set through /v1/configs/webhook


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    url: str
    headers: dict[str, str]


class Webhooks:
    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        self._destinations: dict[int, list[Destination]] = {}

    async def destinations(self, channel: Channel) -> list[Destination]:
        cached = self._destinations.get(channel.id)
        if cached is None:
            cached = await self._storage.destinations(channel.id)
            self._destinations[channel.id] = cached
        return cached

    async def get_main(self, channel: Channel) -> WebhookConfig | None:
        for destination in await self.destinations(channel):
            if destination.name == MAIN:
                return WebhookConfig(destination.url, destination.headers)
        return None

    async def set_main(self, channel: Channel, url: str, headers: dict[str, str]) -> WebhookConfig | None:
        """Set the phone-number webhook; an empty URL removes it."""
        if not url:
            await self._storage.remove_destination(channel.id, MAIN)
            self._destinations.pop(channel.id, None)
            return None
        check_url(url)
        await self._storage.set_destination(channel.id, MAIN, url, headers)
        self._destinations.pop(channel.id, None)
        return WebhookConfig(url, headers)

    async def destination_ids(self, channel: Channel) -> list[int]:
        return [d.id for d in await self.destinations(channel)]


def check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RequestError(100, f"Webhook url '{url}' must be an absolute http(s) URL")

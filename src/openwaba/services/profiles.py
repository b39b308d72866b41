"""The business profile a number shows its users (about, address, websites...)."""

from __future__ import annotations

from typing import Any

import msgspec

from openwaba.domain.accounts import Channel
from openwaba.domain.profile import parse_profile_update, profile_view
from openwaba.storage.base import Storage


class Profiles:
    def __init__(self, storage: Storage) -> None:
        self._storage = storage

    async def get(self, channel: Channel) -> dict[str, Any]:
        return profile_view(await self._stored(channel))

    async def update(self, channel: Channel, document: dict[str, Any], *, on_premise: bool = False) -> dict[str, Any]:
        """Apply the fields the request gives; the others keep their values."""
        changes = parse_profile_update(document, on_premise)
        stored = {**await self._stored(channel), **changes}
        await self._storage.set_value(_key(channel), msgspec.json.encode(stored).decode())
        return profile_view(stored)

    async def _stored(self, channel: Channel) -> dict[str, Any]:
        raw = await self._storage.get_value(_key(channel))
        stored: dict[str, Any] = msgspec.json.decode(raw) if raw else {}
        return stored


def _key(channel: Channel) -> str:
    return f"profile.{channel.id}"

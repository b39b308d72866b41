"""WABAs, channels, API keys and the sandbox's first-start seed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from openwaba.clock import Clock
from openwaba.domain import ids
from openwaba.domain.accounts import Channel, ChannelFormat, ChannelMode, MetaLink, SandboxUser, Waba
from openwaba.domain.errors import AuthError, ConflictError, NotFoundError, StateError
from openwaba.domain.messages import normalise_phone
from openwaba.services.templates import starter_templates
from openwaba.storage.base import ApiKeyInfo, Storage

_DEFAULT_USERS = (
    ("15551230001", "Alice Example"),
    ("15551230002", "Bruno Example"),
    ("15551230003", "Chen Example"),
)
_SEEDED = "sandbox.seeded"


@dataclass(frozen=True, slots=True)
class SandboxSeed:
    """What the first start created, for the start-up summary."""

    channel: Channel
    api_key: str | None  # None when the key was made on an earlier start and is not known any more
    users: list[SandboxUser]


class Accounts:
    def __init__(self, storage: Storage, clock: Clock, on_webhook_removed: Callable[[], None]) -> None:
        self._storage = storage
        self._clock = clock
        self._on_webhook_removed = on_webhook_removed
        self._by_key: dict[str, Channel | None] = {}
        self._by_phone_number_id: dict[str, Channel] = {}
        self._meta_links: dict[int, MetaLink] | None = None  # by channel id

    def forget(self) -> None:
        """Drop cached keys and numbers (changed by another process sharing the store)."""
        self._by_key.clear()
        self._by_phone_number_id.clear()
        self._meta_links = None

    async def meta_links(self) -> dict[int, MetaLink]:
        """Every channel's link to Meta's Cloud API, by channel id."""
        if self._meta_links is None:
            self._meta_links = {link.channel_id: link for link in await self._storage.meta_links()}
        return self._meta_links

    async def meta_link(self, channel: Channel) -> MetaLink:
        link = (await self.meta_links()).get(channel.id)
        if link is None:
            raise StateError(f"channel {channel.id} has no Meta phone-number id and credentials")
        return link

    async def set_connector(self, channel: Channel, connector: str, link: MetaLink | None = None) -> Channel:
        """Move a number between the sandbox and Meta; Meta needs a link (given, or saved earlier)."""
        if connector == "meta" and link is None:
            await self.meta_link(channel)
        try:
            await self._storage.set_connector(channel.id, connector, link)
        except ConflictError:
            raise StateError("another channel is already linked to that Meta phone-number id") from None
        self.forget()
        return await self.by_id(channel.id)

    async def authenticate(self, api_key: str | None) -> Channel:
        """The channel an API key belongs to; AuthError for a missing or unknown key."""
        if not api_key:
            raise AuthError("Missing D360-API-KEY header")
        # Lookup is by SHA-256 digest, so response time does not depend on how
        # much of a guessed key matches a real one.
        digest = ids.hash_api_key(api_key)
        if digest in self._by_key:
            channel = self._by_key[digest]
        else:
            channel = await self._storage.channel_for_key(digest)
            if len(self._by_key) > 10_000:
                self._by_key.clear()  # bounded: unknown keys must not grow memory
            self._by_key[digest] = channel
        if channel is None:
            raise AuthError("Invalid API key")
        return channel

    async def by_phone_number_id(self, phone_number_id: str) -> Channel:
        channel = self._by_phone_number_id.get(phone_number_id)
        if channel is None:
            for known in await self._storage.channels():
                self._by_phone_number_id[known.phone_number_id] = known
            channel = self._by_phone_number_id.get(phone_number_id)
        if channel is None:
            raise NotFoundError(f"no channel has phone_number_id {phone_number_id}")
        return channel

    async def first_of_waba(self, waba_id: str) -> Channel:
        """The WABA's oldest number: where WABA-level events (template status) are routed."""
        numbers = sorted((c for c in await self._storage.channels() if c.waba_id == waba_id), key=lambda c: c.id)
        if not numbers:
            raise NotFoundError(f"no WABA with id {waba_id} has a number")
        return numbers[0]

    async def by_id(self, channel_id: int) -> Channel:
        for channel in self._by_phone_number_id.values():
            if channel.id == channel_id:
                return channel
        for channel in await self._storage.channels():
            self._by_phone_number_id[channel.phone_number_id] = channel
            if channel.id == channel_id:
                return channel
        raise NotFoundError(f"no channel with id {channel_id}")

    async def set_api_key(self, channel: Channel, api_key: str, *, drop_webhook: bool = False) -> None:
        hint = api_key[:4]
        await self._storage.replace_api_key(
            channel.id, ids.hash_api_key(api_key), hint, self._clock.now(), drop_webhook
        )
        self._by_key.clear()
        if drop_webhook:
            self._on_webhook_removed()

    async def rotate_api_key(self, channel: Channel) -> str:
        """A new key for the channel. As on 360dialog, every earlier key stops
        working and the number's webhook URL is removed: set it again with the new key."""
        key = ids.new_api_key()
        await self.set_api_key(channel, key, drop_webhook=True)
        return key

    async def wabas(self) -> list[Waba]:
        return await self._storage.wabas()

    async def create_waba(self, name: str) -> Waba:
        waba = Waba(ids.numeric_id(), name)
        now = self._clock.now()
        await self._storage.create_waba(waba, now, starter_templates(now))
        return waba

    async def create_channel(
        self,
        waba_id: str,
        phone_number: str,
        fmt: ChannelFormat,
        mode: ChannelMode,
        connector: str = "sandbox",
        sandbox_users: tuple[str, ...] = (),
    ) -> Channel:
        """A new number; a sandbox number gets the simulated users given (wa_ids)."""
        if waba_id not in {w.id for w in await self._storage.wabas()}:
            raise NotFoundError(f"no WABA with id {waba_id}")
        number = normalise_phone(phone_number)
        users = [normalise_phone(u) for u in sandbox_users]
        try:
            channel = await self._storage.create_channel(
                waba_id, number, ids.numeric_id(), fmt, connector, mode, self._clock.now()
            )
        except ConflictError:
            raise StateError(f"the phone number {number} is already a channel") from None
        if users:
            await self._storage.add_sandbox_users(channel.id, _seed_users(tuple(users)))
        self._by_phone_number_id[channel.phone_number_id] = channel
        return channel

    async def channels(self) -> list[Channel]:
        return await self._storage.channels()

    async def api_keys(self, channel: Channel) -> list[ApiKeyInfo]:
        return await self._storage.api_keys(channel.id)

    async def seed_sandbox(self, api_key: str | None, phone_number: str, user_ids: tuple[str, ...]) -> SandboxSeed:
        """On first start create a demo WABA, number, key and users; later, load them.

        A key fixed in settings is (re)applied on every start, so scripts can rely on it.
        """
        channels = await self._storage.channels()
        if await self._storage.get_value(_SEEDED) and channels:
            channel = channels[0]
            if api_key:
                await self.set_api_key(channel, api_key)
            return SandboxSeed(channel, api_key, await self._storage.sandbox_users(channel.id))
        # Each step below is idempotent, and "seeded" is written last, so a first
        # start that was killed half-way is completed by the next one.
        channel = channels[0] if channels else await self._create_sandbox_channel(phone_number)
        key = api_key or ids.new_api_key()
        await self.set_api_key(channel, key)
        await self._storage.add_sandbox_users(channel.id, _seed_users(user_ids))
        await self._storage.set_value(_SEEDED, "1")
        return SandboxSeed(channel, key, await self._storage.sandbox_users(channel.id))

    async def _create_sandbox_channel(self, phone_number: str) -> Channel:
        now = self._clock.now()
        waba = next(iter(await self._storage.wabas()), None)
        if waba is None:
            waba = Waba(ids.numeric_id(), "openwaba sandbox")
            await self._storage.create_waba(waba, now, starter_templates(now))
        return await self._storage.create_channel(
            waba.id, phone_number, ids.numeric_id(), ChannelFormat.CLOUD, "sandbox", ChannelMode.SANDBOX, now
        )


def _seed_users(user_ids: tuple[str, ...]) -> list[SandboxUser]:
    if user_ids:
        names = [f"Sandbox User {i + 1}" for i in range(len(user_ids))]
        pairs = list(zip(user_ids, names))
    else:
        pairs = list(_DEFAULT_USERS)
    return [SandboxUser(wa_id, name, ids.business_scoped_user_id()) for wa_id, name in pairs]

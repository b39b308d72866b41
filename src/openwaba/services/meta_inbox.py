"""Meta's webhook posts for channels on the Meta connector.

A post is accepted once its `X-Hub-Signature-256` matches one of the linked
channels' app secrets and its raw bytes are committed; Meta gets its 200 then,
before anything else happens to it. A background task then takes posts in
order and ingests them through the same path as the sandbox's notifications:

- Meta's ids become the channel's (`entry[].id`, `metadata`), so a number's
  webhooks look the same whether the sandbox or Meta is behind it;
- files users sent are fetched from Meta first and served by openwaba's media
  endpoints under Meta's media id; a post whose file cannot be fetched yet is
  tried again later, for up to an hour, and then ingested without the file;
- Meta posts at least once: messages and statuses are known by their ids,
  errors by their content, so a post Meta repeats is ingested once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from typing import Any

import msgspec

from openwaba.clock import Clock
from openwaba.connectors.base import ConnectorError
from openwaba.connectors.meta import MetaConnector
from openwaba.domain.accounts import Channel, MetaLink
from openwaba.domain.errors import AuthError, NotFoundError, RequestError
from openwaba.domain.signing import meta_signature
from openwaba.services.accounts import Accounts
from openwaba.services.ingest import Ingest
from openwaba.services.media import Media
from openwaba.storage.base import InboxPost, Storage

log = logging.getLogger("openwaba.meta")

# Posts per ingest transaction. Ingesting is CPU work on the event loop that also answers
# Meta: small batches, with a yield between posts, keep those answers quick.
_BATCH = 16
_POLL = 2.0  # seconds: posts another node committed, or ones waiting for a file
_MEDIA_PATIENCE = 3600.0  # seconds a post waits for its files before it goes without them
_MEDIA_TYPES = frozenset({"image", "audio", "video", "document", "sticker", "voice"})


class MetaInbox:
    def __init__(
        self, storage: Storage, accounts: Accounts, connector: MetaConnector, media: Media, ingest: Ingest, clock: Clock
    ) -> None:
        self._storage = storage
        self._accounts = accounts
        self._connector = connector
        self._media = media
        self._ingest = ingest
        self._clock = clock
        self._wake = asyncio.Event()

    async def receive(self, body: bytes, signature: str | None) -> None:
        """Commit a post whose signature is genuine; AuthError otherwise."""
        secrets = {link.app_secret for link in (await self._accounts.meta_links()).values()}
        given = (signature or "").encode()
        # Every secret is compared, in constant time, whichever matches.
        matches = [hmac.compare_digest(meta_signature(secret, body).encode(), given) for secret in secrets]
        if not any(matches):
            raise AuthError("X-Hub-Signature-256 does not match the app secret of any number linked to Meta")
        await self._storage.insert_meta_inbox(body, self._clock.now())
        self._wake.set()

    async def run(self) -> None:
        """Forever: ingest committed posts, oldest first."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), _POLL)
            self._wake.clear()
            while await self.drain() == _BATCH:
                pass

    async def drain(self) -> int:
        """Ingest one batch of posts, in one transaction; how many were taken."""
        async with self._storage.meta_inbox(_BATCH) as posts:
            notifications: list[tuple[dict[str, Any], float]] = []
            for post in posts:
                await asyncio.sleep(0)  # let waiting requests be answered first
                taken = await self._notifications(post)
                if taken is None:
                    continue  # a file to wait for; the others need not wait with it
                notifications.extend(taken)
                post.done = True
            if notifications:
                await self._ingest.ingest(notifications, reposted=True)
        return len(posts)

    async def _notifications(self, post: InboxPost) -> list[tuple[dict[str, Any], float]] | None:
        """A post's changes as the channels' own notifications; None to leave it for a later pass."""
        try:
            payload = msgspec.json.decode(post.body)
            changes = [(entry, change) for entry in payload["entry"] for change in entry["changes"]]
        except (msgspec.DecodeError, KeyError, TypeError) as exc:
            log.warning("dropping a Meta post that is not a notification (%s): %r", exc, post.body[:200])
            return []
        notifications: list[tuple[dict[str, Any], float]] = []
        for entry, change in changes:
            found = await self._channel(entry, change)
            if found is None:
                continue
            channel, link = found
            value = change.get("value") or {}
            patient = self._clock.now() - post.received_at < _MEDIA_PATIENCE
            if not await self._fetch_files(channel, link, value) and patient:
                return None
            notifications.append((_as_channel(channel, str(change.get("field", "messages")), value), post.received_at))
        return notifications

    async def _channel(self, entry: dict[str, Any], change: dict[str, Any]) -> tuple[Channel, MetaLink] | None:
        """The linked channel a change is about: by its number, else (WABA-level changes) its WABA."""
        value = change.get("value") or {}
        number = str((value.get("metadata") or {}).get("phone_number_id", ""))
        links = (await self._accounts.meta_links()).values()
        if number:
            link = next((x for x in links if x.phone_number_id == number), None)
        else:
            waba = str(entry.get("id", ""))
            link = min((x for x in links if x.waba_id == waba), key=lambda x: x.channel_id, default=None)
        if link is None:
            log.warning("dropping a Meta change for a number or WABA not linked here: %r", number or entry.get("id"))
            return None
        try:
            return await self._accounts.by_id(link.channel_id), link
        except NotFoundError:
            return None

    async def _fetch_files(self, channel: Channel, link: MetaLink, value: dict[str, Any]) -> bool:
        """Keep every file the change's messages carry; False if one could not be fetched."""
        for message in value.get("messages") or ():
            kind = message.get("type")
            media = message.get(kind) if kind in _MEDIA_TYPES else None
            if not isinstance(media, dict) or not isinstance(media.get("id"), str):
                continue
            try:
                file = await self._connector.download(link, media["id"])
                await self._media.receive(channel, media["id"], file.mime_type, file.data, media.get("filename"))
            except (ConnectorError, RequestError, msgspec.DecodeError) as exc:
                log.warning("cannot fetch media %s from Meta yet: %s", media["id"], exc)
                return False
        return True


def _as_channel(channel: Channel, field: str, value: dict[str, Any]) -> dict[str, Any]:
    """The change as the channel's own notification: Meta's ids replaced by the channel's."""
    value = dict(value)
    if "metadata" in value:
        value["metadata"] = {"display_phone_number": channel.phone_number, "phone_number_id": channel.phone_number_id}
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": channel.waba_id, "changes": [{"value": value, "field": field}]}],
    }

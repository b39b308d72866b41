"""Media: uploads and received files, stored on disk by content.

Bytes go to `<data_dir>/media/<sha256[:2]>/<sha256>`, written to a temporary
file, fsynced and renamed before the metadata row is committed, so a media id
that was answered always has its bytes. Identical files share one copy; the
copy is removed when the last media id using it is deleted.

Download URLs imitate Meta's lookaside URLs: they name the media id, an
expiry and an HMAC over both, and still need the channel's API key.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import secrets
from collections.abc import AsyncIterable, AsyncIterator, Callable
from pathlib import Path
from urllib.parse import urlencode

from openwaba.clock import Clock
from openwaba.domain import ids
from openwaba.domain.accounts import Channel
from openwaba.domain.errors import NotFoundError, RequestError
from openwaba.domain.media import UPLOAD_LIMIT, MediaKind, check_upload
from openwaba.storage.base import MediaFile, Storage

URL_LIFETIME = 300.0  # seconds; Meta's download URLs last about five minutes
_HEAD = 64  # bytes kept to recognise a file's format
_SECRET_KEY = "media.url_secret"


class Media:
    def __init__(self, storage: Storage, clock: Clock, root: Path) -> None:
        self._storage = storage
        self._clock = clock
        self._root = root
        self._secret = b""
        # Keeping a file and deleting the last id that uses it must not interleave,
        # or an upload could end up pointing at bytes a delete just removed.
        self._files = asyncio.Lock()

    async def start(self) -> None:
        stored = await self._storage.get_value(_SECRET_KEY)
        if stored is None:
            stored = secrets.token_hex(32)
            await self._storage.set_value(_SECRET_KEY, stored)
        self._secret = bytes.fromhex(stored)
        await asyncio.to_thread(lambda: (self._root / "tmp").mkdir(parents=True, exist_ok=True))

    async def upload(
        self, channel: Channel, mime_type: str, chunks: AsyncIterable[bytes], filename: str | None = None
    ) -> tuple[MediaFile, MediaKind]:
        """Store a file for the channel; RequestError 131053 when WhatsApp would refuse it."""
        kinds: list[MediaKind] = []

        def check(size: int, head: bytes) -> None:
            kinds.append(check_upload(mime_type, size, head))

        media = await self._store(channel, ids.numeric_id(), mime_type, chunks, filename, check)
        return media, kinds[0]

    async def receive(
        self, channel: Channel, media_id: str, mime_type: str, data: bytes, filename: str | None = None
    ) -> MediaFile:
        """Keep a file a user sent through the network, under the network's media id.
        Users may send what businesses may not upload: no format check."""
        known = await self._storage.media(channel.id, media_id)
        if known is not None:  # the same message posted again
            return known

        async def one_chunk() -> AsyncIterator[bytes]:
            yield data

        return await self._store(channel, media_id, mime_type, one_chunk(), filename, None)

    async def _store(
        self,
        channel: Channel,
        media_id: str,
        mime_type: str,
        chunks: AsyncIterable[bytes],
        filename: str | None,
        check: Callable[[int, bytes], None] | None,
    ) -> MediaFile:
        temp = self._root / "tmp" / secrets.token_hex(8)
        try:
            digest, size, head = await self._receive(temp, chunks)
            if check is not None:
                check(size, head)
            media = MediaFile(media_id, channel.id, digest, mime_type, size, filename, self._clock.now())
            async with self._files:
                await asyncio.to_thread(self._keep, temp, digest)
                await self._storage.insert_media(media)
        finally:
            await asyncio.to_thread(temp.unlink, True)
        return media

    async def get(self, channel: Channel, media_id: str) -> MediaFile:
        media = await self._storage.media(channel.id, media_id) if media_id.isdigit() else None
        if media is None:
            raise NotFoundError(f"Media {media_id} does not exist or does not belong to this number")
        return media

    def path(self, media: MediaFile) -> Path:
        return self._root / media.sha256[:2] / media.sha256

    async def delete(self, channel: Channel, media_id: str) -> None:
        if not media_id.isdigit():
            raise NotFoundError(f"Media {media_id} does not exist or does not belong to this number")
        async with self._files:
            deleted, orphan = await self._storage.delete_media(channel.id, media_id)
            if orphan is not None:
                await asyncio.to_thread((self._root / orphan[:2] / orphan).unlink, True)
        if not deleted:
            raise NotFoundError(f"Media {media_id} does not exist or does not belong to this number")

    async def missing(self, channel: Channel, media_ids: list[str]) -> list[str]:
        """The ids among `media_ids` that are not this channel's media."""
        if not media_ids:  # most messages carry none: spare the send path an async comprehension
            return []
        return [m for m in media_ids if not m.isdigit() or await self._storage.media(channel.id, m) is None]

    def download_url(self, base_url: str, media: MediaFile) -> str:
        expires = int(self._clock.now() + URL_LIFETIME)
        query = urlencode({"mid": media.id, "ext": expires, "hash": self._sign(media.id, expires)})
        return f"{base_url.rstrip('/')}/whatsapp_business/attachments/?{query}"

    async def by_download_url(self, channel: Channel, mid: str, ext: str, signature: str) -> MediaFile:
        """The media a download URL names, if the URL is genuine and not expired."""
        expires = int(ext) if ext.isascii() and ext.isdigit() and len(ext) <= 18 else None
        if expires is None or not hmac.compare_digest(signature.encode(), self._sign(mid, expires).encode()):
            raise RequestError(100, "The download URL is not valid; get a new one from GET /{media_id}")
        if expires < self._clock.now():
            raise RequestError(100, "The download URL has expired; get a new one from GET /{media_id}")
        return await self.get(channel, mid)

    def _sign(self, media_id: str, expires: int) -> str:
        return hmac.new(self._secret, f"{media_id}:{expires}".encode(), hashlib.sha256).hexdigest()

    async def _receive(self, temp: Path, chunks: AsyncIterable[bytes]) -> tuple[str, int, bytes]:
        sha = hashlib.sha256()
        size = 0
        head = b""
        with await asyncio.to_thread(open, temp, "wb") as file:
            async for chunk in chunks:
                size += len(chunk)
                if size > UPLOAD_LIMIT:
                    raise RequestError(131053, f"The file is over the {UPLOAD_LIMIT} bytes WhatsApp accepts")
                if len(head) < _HEAD:
                    head += chunk[: _HEAD - len(head)]
                sha.update(chunk)
                await asyncio.to_thread(file.write, chunk)
            await asyncio.to_thread(_flush, file.fileno())
        return sha.hexdigest(), size, head

    def _keep(self, temp: Path, digest: str) -> None:
        folder = self._root / digest[:2]
        folder.mkdir(exist_ok=True)
        target = folder / digest
        if not target.exists():
            os.replace(temp, target)
            _flush_dir(folder)


def _flush(fd: int) -> None:
    os.fsync(fd)


def _flush_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

"""The Meta connector: channels whose messages go out through Meta's Cloud API.

Sending is synchronous: the sender waits for Graph's answer, gets Meta's
wamid, and Graph's refusals come back with Meta's code (see
:mod:`openwaba.domain.graph`). Throttling and 5xx answers are tried again after
growing pauses; an answer that never came is not, since Meta may have taken
the message and it must not go out twice.

Media the business uploaded to openwaba is uploaded to Meta on first use (Meta
only sends its own media ids); the Meta id is remembered, for a while short of
the 30 days Meta keeps uploads. Files users send are fetched from Meta by the
inbox (:mod:`openwaba.services.meta_inbox`) through :meth:`MetaConnector.download`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
import msgspec

from openwaba.clock import Clock
from openwaba.connectors.base import Connector, ConnectorError
from openwaba.domain import graph
from openwaba.domain.accounts import Channel, MetaLink
from openwaba.domain.errors import RequestError
from openwaba.domain.messages import OutgoingMessage, media_references
from openwaba.services.accounts import Accounts
from openwaba.services.media import Media
from openwaba.storage.base import QueuedMessage, Storage

log = logging.getLogger("openwaba.meta")

_UPLOAD_LIFETIME = 25 * 24 * 3600.0  # seconds a Meta media id is reused (Meta keeps uploads 30 days)
_MEDIA_KEY = "meta.media.{channel}.{media}"  # -> "<meta media id> <uploaded at>"


@dataclass(frozen=True, slots=True)
class GraphSettings:
    url: str = "https://graph.facebook.com"
    version: str = "v25.0"
    timeout: float = 20.0  # seconds for one Graph call
    retry_delays: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0)  # pauses before the 2nd, 3rd, ... try


@dataclass(frozen=True, slots=True)
class Downloaded:
    data: bytes
    mime_type: str


class MetaConnector(Connector):
    name = "meta"
    synchronous = True

    def __init__(
        self,
        settings: GraphSettings,
        accounts: Accounts,
        media: Media,
        storage: Storage,
        clock: Clock,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._settings = settings
        self._accounts = accounts
        self._media = media
        self._storage = storage
        self._clock = clock
        self._sleep = sleep  # tests pass one that returns at once and records the pauses
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def check(self, channel: Channel, message: OutgoingMessage) -> None:
        await self._accounts.meta_link(channel)
        missing = await self._media.missing(channel, media_references(message))
        if missing:
            raise RequestError(100, f"Param id '{missing[0]}' is not a valid media id of this phone number")

    async def send(self, channel: Channel, queued: QueuedMessage) -> str | None:
        link = await self._accounts.meta_link(channel)
        media_ids = {m: await self._meta_media_id(channel, link, m) for m in media_references(queued.message)}
        body = msgspec.json.encode(graph.message_body(queued.message, media_ids))
        raw = await self._call(link, "POST", f"{link.phone_number_id}/messages", data=body, json_body=True)
        wamid = graph.sent_wamid(raw)
        if wamid is None:
            raise ConnectorError(f"Meta's answer to sending {queued.wamid} holds no message id: {raw[:200]!r}")
        return wamid

    async def mark_read(self, channel: Channel, message_id: str, wa_id: str, typing: bool) -> None:
        link = await self._accounts.meta_link(channel)
        body = msgspec.json.encode(graph.read_body(message_id, typing))
        await self._call(link, "POST", f"{link.phone_number_id}/messages", data=body, json_body=True)

    async def download(self, link: MetaLink, media_id: str) -> Downloaded:
        """A file a user sent: its metadata from Graph, then its bytes from the URL Meta gives."""
        info = msgspec.json.decode(await self._call(link, "GET", media_id))
        url, mime_type = info.get("url"), info.get("mime_type")
        if not isinstance(url, str) or not isinstance(mime_type, str):
            raise ConnectorError(f"Meta's metadata for media {media_id} has no url or mime_type")
        return Downloaded(await self._call(link, "GET", url), mime_type)

    async def _meta_media_id(self, channel: Channel, link: MetaLink, media_id: str) -> str:
        key = _MEDIA_KEY.format(channel=channel.id, media=media_id)
        remembered = await self._storage.get_value(key)
        if remembered is not None:
            meta_id, uploaded_at = remembered.split(" ")
            if self._clock.now() - float(uploaded_at) < _UPLOAD_LIFETIME:
                return meta_id
        media = await self._media.get(channel, media_id)
        data = await asyncio.to_thread(self._media.path(media).read_bytes)

        def form() -> aiohttp.FormData:  # a form is spent once sent: one per try
            built = aiohttp.FormData()
            built.add_field("messaging_product", "whatsapp")
            built.add_field("type", media.mime_type)
            built.add_field("file", data, filename=media.filename or media.id, content_type=media.mime_type)
            return built

        raw = await self._call(link, "POST", f"{link.phone_number_id}/media", form=form)
        meta_id = msgspec.json.decode(raw).get("id")
        if not isinstance(meta_id, str):
            raise ConnectorError(f"Meta's answer to uploading media {media_id} holds no id")
        await self._storage.set_value(key, f"{meta_id} {self._clock.now()!r}")
        return meta_id

    async def _call(
        self,
        link: MetaLink,
        method: str,
        path: str,
        *,
        data: bytes | None = None,
        json_body: bool = False,
        form: Callable[[], aiohttp.FormData] | None = None,
    ) -> bytes:
        """One Graph call, tried again while Meta says "not now"; its body on success.
        RequestError for Meta's final refusals, ConnectorError when no answer came."""
        url = path if path.startswith(("http://", "https://")) else self._url(path)
        headers = {"Authorization": f"Bearer {link.access_token}"}
        if json_body:
            headers["Content-Type"] = "application/json"
        delays: Sequence[float] = self._settings.retry_delays
        for attempt in range(len(delays) + 1):
            answer = await self._request(method, url, headers, form() if form is not None else data)
            if isinstance(answer, bytes):
                return answer
            if not answer.retryable or attempt == len(delays):
                raise answer.as_request_error()
            log.info(
                "Meta answered %s (#%d) to %s %s; trying again in %ss",
                answer.http_status,
                answer.code,
                method,
                path,
                delays[attempt],
            )
            await self._sleep(delays[attempt])
        raise AssertionError("unreachable")

    async def _request(self, method: str, url: str, headers: dict[str, str], data: Any) -> bytes | graph.GraphFailure:
        """The body of a 200, else what went wrong; ConnectorError when no answer came."""
        try:
            async with self._client().request(method, url, headers=headers, data=data) as response:
                raw = await response.read()
                return raw if response.status == 200 else graph.failure(response.status, raw)
        except aiohttp.ClientConnectorError as exc:
            # Not connected, so nothing was sent: as safe to try again as a 503.
            return graph.GraphFailure(503, 131016, "Service unavailable", f"cannot reach Meta: {exc}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ConnectorError(f"no answer from Meta to {method} {url.split('?')[0]}: {exc!r}") from None

    def _url(self, path: str) -> str:
        return f"{self._settings.url.rstrip('/')}/{self._settings.version}/{path}"

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=self._settings.timeout)
            self._session = aiohttp.ClientSession(timeout=timeout, raise_for_status=False)
        return self._session

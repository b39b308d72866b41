"""The web console's server side: the page and its static files (package data,
no build step), `GET /console/session` (who the key is) and `GET /console/stream`
(live "something changed" events). Everything else the page needs is the JSON API.

Access: the number's `D360-API-KEY`, or the partner key (`X-API-Key`) alone (to
list channels) or with `X-Openwaba-Channel: <channel id>` (to act as that channel).
The page sends these as headers on `fetch`, which is why the stream is read with
fetch + ReadableStream rather than EventSource (which cannot send headers).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable

import msgspec
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from openwaba.domain.accounts import Channel
from openwaba.domain.errors import AuthError, RequestError
from openwaba.http.cloud import (
    API_KEY_HEADER,
    CHANNEL_HEADER,
    PARTNER_KEY_HEADER,
    channel_of,
    gateway,
    partner_key_matches,
)
from openwaba.http.partner import channel_fields
from openwaba.http.responses import flat_error, flat_face, json_response
from openwaba.services.changes import Changes, Subscription

KEEP_ALIVE_SECONDS = 15.0

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
}
# The page only talks to this origin; media previews are blob: URLs of fetched bytes.
_CSP = (
    "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
_PAGE_HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff", "Content-Security-Policy": _CSP}


# --- access -----------------------------------------------------------------------------------


async def console_channel(request: Request) -> Channel | None:
    """The channel the request may see: the one of its `D360-API-KEY`, or with the
    partner key the one `X-Openwaba-Channel` names (None: the partner key alone).
    AuthError for anything else."""
    if not is_partner(request) or CHANNEL_HEADER in request.headers:
        return await channel_of(request)
    if not partner_key_matches(request):
        raise AuthError("Invalid partner key")
    return None


def is_partner(request: Request) -> bool:
    """Whether the request came with the partner key (checked by console_channel first)."""
    return not request.headers.get(API_KEY_HEADER) and bool(request.headers.get(PARTNER_KEY_HEADER))


@flat_face
async def session(request: Request) -> Response:
    """Who the key is: the channel (None for the partner key alone) and the partner id
    (only for the partner key: a number's key does not reach the partner API)."""
    channel = await console_channel(request)
    partner_id = gateway(request).settings.partner_id if is_partner(request) else None
    return json_response({"channel": None if channel is None else _channel(channel), "partner_id": partner_id})


def _channel(channel: Channel) -> dict[str, object]:
    # As the partner API lists it, and whether it has simulated users (only the sandbox does).
    return {**channel_fields(channel), "sandbox": channel.connector == "sandbox"}


# --- the live stream --------------------------------------------------------------------------


@flat_face
async def stream(request: Request) -> Response:
    channel = await console_channel(request)
    if channel is None:
        raise RequestError(100, f"Name the channel to follow in {CHANNEL_HEADER}")
    return ChangeStream(gateway(request).changes, channel.id)


class ChangeStream(Response):
    """`text/event-stream` of one channel's changes: `event: change` + `data: {...}`,
    and a `: keep-alive` comment when nothing happened for KEEP_ALIVE_SECONDS (so
    proxies keep the connection). Ends when the client goes away or when the
    server stops (`Changes.close()`): uvicorn waits for open responses before it
    shuts the application down, so a stream must not outlive the server."""

    media_type = "text/event-stream"

    def __init__(self, changes: Changes, channel_id: int, keep_alive: float = KEEP_ALIVE_SECONDS) -> None:
        # Not Response.__init__: it would announce a Content-Length for an empty body.
        self.status_code = 200
        self.background = None
        self.init_headers({"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})  # nginx: do not buffer events
        self._changes = changes
        self._channel_id = channel_id
        self._keep_alive = keep_alive

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async with self._changes.subscribe(self._channel_id) as subscription:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            # A first comment right away: the page's fetch() resolves and it knows the stream is live.
            writer = asyncio.create_task(self._write(subscription, send, first=b": keep-alive\n\n"))
            gone = asyncio.create_task(_disconnected(receive))
            try:
                await asyncio.wait((writer, gone), return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (writer, gone):
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, OSError):
                        await task
            if gone.cancelled():  # the server ended it (not the client): finish the response properly
                with contextlib.suppress(OSError):
                    await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _write(self, subscription: Subscription, send: Send, first: bytes) -> None:
        chunk = first
        while True:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            batch = await subscription.next_batch(self._keep_alive)
            if batch is None:
                return  # the server is stopping
            chunk = b"".join(_event(change) for change in batch) if batch else b": keep-alive\n\n"


def _event(change: object) -> bytes:
    return b"event: change\ndata: " + msgspec.json.encode(change) + b"\n\n"


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


# --- the page ---------------------------------------------------------------------------------


@cache
def _static_dir() -> Traversable:
    return resources.files("openwaba").joinpath("console").joinpath("static")


def _asset(name: str) -> bytes | None:
    """A file of the console's static directory, by its plain name (nothing else is served)."""
    if name.startswith(".") or "/" in name or "\\" in name:
        return None
    try:
        entries = {entry.name: entry for entry in _static_dir().iterdir() if entry.is_file()}
    except (FileNotFoundError, NotADirectoryError):
        return None
    entry = entries.get(name)
    return None if entry is None else entry.read_bytes()


def _file_response(request: Request, name: str) -> Response:
    content = _asset(name)
    suffix = name[name.rfind(".") :] if "." in name else ""
    if content is None or suffix not in _TYPES:
        return flat_error(f"No console file {name!r}", 404)
    etag = '"' + hashlib.sha256(content).hexdigest()[:32] + '"'
    headers = {**_PAGE_HEADERS, "ETag": etag}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(content, media_type=_TYPES[suffix], headers=headers)


async def index(request: Request) -> Response:
    return _file_response(request, "index.html")


async def _to_index(request: Request) -> Response:
    # The page's relative URLs resolve against /console, not /console/.
    return RedirectResponse("/console", status_code=308)


async def static_file(request: Request) -> Response:
    return _file_response(request, request.path_params["name"])


routes = [
    Route("/console", index, methods=["GET"]),
    Route("/console/", _to_index, methods=["GET"]),
    Route("/console/static/{name}", static_file, methods=["GET"]),
    Route("/console/session", session, methods=["GET"]),
    Route("/console/stream", stream, methods=["GET"]),
]

"""`Receiver`: the raw ASGI 3 app that acknowledges webhooks, and the handle on
everything behind it (handlers, lifecycle, dead letters).

The ack path does as little as it can: read the body, verify credentials and
signatures on the raw bytes, check it looks like a JSON object, hand it to the
journal's writer thread, and answer 200 once the commit that holds it is done.
Parsing into typed items, de-duplication and handling happen afterwards, in
the dispatcher.
"""

from __future__ import annotations

import asyncio
import gc
import hmac
import logging
import os
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qs

from openwaba.receiver.dispatcher import Dispatcher, Handler, Handlers
from openwaba.receiver.events import Event, Status
from openwaba.receiver.journal import Journal, counts, dead_rows, revive
from openwaba.receiver.parsing import BodyError, parse_body
from openwaba.receiver.signatures import Verifier

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
H = TypeVar("H", bound=Handler)

log = logging.getLogger("openwaba.receiver")

MAX_BODY = 4 * 1024 * 1024  # Meta's payloads stay under about 3 MB
_STOP_GRACE = 10.0
_JSON = [(b"content-type", b"application/json")]
_OK = b'{"ok":true}'
_OK_HEADERS = [*_JSON, (b"content-length", str(len(_OK)).encode())]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """An item whose handlers kept failing (or that could not be parsed); `retry_dead` revives it."""

    id: int
    kind: str
    key: str
    attempts: int
    error: str | None
    failed_at: float
    event: Event | None


class Receiver:
    """A WhatsApp webhook receiver: `await receiver(scope, receive, send)` is the ASGI app.

    - `path`: the SQLite file of the durable queue (one process per file);
    - `secret`: a `whsec_…` secret, or several during a rotation: require Standard Webhooks
      signatures, timestamps within 5 minutes; `app_secret`: require `X-Hub-Signature-256`;
      `basic_auth`: require `Authorization: Basic` with this (user, password). All configured
      checks must pass (401 otherwise);
    - `verify_token`: answer Meta's `GET ?hub.mode=subscribe&hub.verify_token=…` with the challenge;
    - `workers`: handler calls in flight at once; `ordered`: one user's items are handled one at
      a time, in arrival order, a retry holding up the ones behind it;
    - `retry_delays`: seconds to wait after the 1st, 2nd, … failure (the last one repeats);
      `max_attempts`: then the item is dead-lettered (`dead_letters`, `retry_dead`);
    - `clock`: the time source (`time.time`), for tests that move time instead of waiting.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] = "./webhooks.db",
        *,
        secret: str | Sequence[str] | None = None,
        app_secret: str | None = None,
        basic_auth: tuple[str, str] | None = None,
        verify_token: str | None = None,
        workers: int = 4,
        ordered: bool = False,
        retry_delays: Sequence[float] = (1, 5, 30, 120, 600, 1800),
        max_attempts: int = 8,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._clock = clock or time.time
        self._verifier = Verifier(secret, app_secret, basic_auth)
        self._header_names = self._verifier.header_names
        self._verify_token = verify_token
        self._handlers = Handlers()
        self._journal = Journal(path, _conversation_lane if ordered else _message_lane)
        self._dispatcher = Dispatcher(
            self._journal, self._handlers, self._clock, workers, ordered, retry_delays, max_attempts
        )
        self._journal.on_append = self._dispatcher.appended
        self._opened = False
        self._starting = asyncio.Lock()

    # --- handlers ------------------------------------------------------------------------

    def on_message(self, handler: H) -> H:
        """Register `handler(message: Message)`, called once per inbound wamid."""
        self._handlers.add("message", handler)
        return handler

    def on_status(self, handler: H) -> H:
        """Register `handler(status: Status)`, called for statuses that advance a message's state."""
        self._handlers.add("status", handler)
        return handler

    def on_error(self, handler: H) -> H:
        """Register `handler(error: WebhookError)` for errors that concern no single message."""
        self._handlers.add("error", handler)
        return handler

    def on_template_status(self, handler: H) -> H:
        """Register `handler(change: TemplateStatus)`."""
        self._handlers.add("template_status", handler)
        return handler

    def on_event(self, handler: H) -> H:
        """Register `handler(event: Event)`, called once for every item, whatever its kind."""
        self._handlers.add(None, handler)
        return handler

    # --- lifecycle -----------------------------------------------------------------------

    async def open(self) -> None:
        """Open the queue without starting the workers (tests then call `run_pending`)."""
        if not self._opened:
            await self._journal.open()
            self._opened = True

    async def start(self) -> None:
        """Open the queue and start handling, including whatever a previous run left."""
        async with self._starting:
            await self.open()
            self._dispatcher.start()

    async def stop(self) -> None:
        """Stop handling (running handlers get a grace period) and close the queue."""
        await self._dispatcher.stop(_STOP_GRACE)
        if self._opened:
            await self._journal.close()
        self._opened = False

    async def run_pending(self) -> int:
        """Handle everything due by the clock now, waiting for it; returns the number of attempts."""
        await self.open()
        return await self._dispatcher.run_pending()

    def wake(self) -> None:
        """Look for due work at once, e.g. after moving an injected clock forward."""
        self._dispatcher.wake()

    # --- inspection ------------------------------------------------------------------------

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """The dead-lettered items, oldest first, each with its last error and (if it parses) its item."""
        await self.open()
        rows = await self._journal.run(lambda conn: dead_rows(conn, limit))
        return [DeadLetter(r.id, r.kind, r.key, r.attempts, r.error, r.failed_at, _event(r.body, r.item)) for r in rows]

    async def retry_dead(self, ids: Sequence[int] | None = None) -> int:
        """Make dead letters (all, or those with these ids) pending again; returns how many."""
        await self.open()
        now = self._clock()
        revived = await self._journal.run(lambda conn: revive(conn, ids, now))
        self._dispatcher.wake()
        return revived

    async def counts(self) -> dict[str, int]:
        """Work items by state (`pending`, `done`, `dead`) and envelopes not yet split (`unexpanded`)."""
        await self.open()
        return await self._journal.run(counts)

    # --- ASGI -------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if not self._opened:
                await self.start()  # mounted without lifespan: start with the first request
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"]
        if method == "POST":
            await self._post(scope, receive, send)
        elif method == "GET":
            await self._handshake(scope, send)
        else:
            await _answer(send, 405, b'{"error":"method not allowed"}', [(b"allow", b"GET, POST")])

    async def _post(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await _read_body(receive)
        if body is None:
            await _answer(send, 413, b'{"error":"body too large"}')
            return
        wanted = self._header_names
        headers = {name: value for name, value in scope["headers"] if name in wanted}
        now = self._clock()
        problem = self._verifier.check(headers, body, now)
        if problem is not None:
            await _answer(send, 401, b'{"error":"%s"}' % problem.encode())
            return
        if not _looks_like_object(body):
            await _answer(send, 400, b'{"error":"the body must be a JSON object"}')
            return
        webhook_id = headers.get(b"webhook-id")
        try:
            await self._journal.append(body, webhook_id.decode("latin-1") if webhook_id else None, now)
        except Exception:
            log.exception("receiver: could not store a webhook")
            await _answer(send, 500, b'{"error":"could not store the webhook"}')
            return
        # The common answer, prebuilt; the header list is copied since middleware may edit it in place.
        await send({"type": "http.response.start", "status": 200, "headers": list(_OK_HEADERS)})
        await send({"type": "http.response.body", "body": _OK})

    async def _handshake(self, scope: Scope, send: Send) -> None:
        """Meta's GET ?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…: echo the challenge."""
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        token = query.get("hub.verify_token", [""])[0]
        if (
            self._verify_token is not None
            and query.get("hub.mode", [""])[0] == "subscribe"
            and hmac.compare_digest(token.encode(), self._verify_token.encode())
        ):
            challenge = query.get("hub.challenge", [""])[0].encode()
            await _answer(send, 200, challenge, content_type=b"text/plain; charset=utf-8")
            return
        await _answer(send, 403, b'{"error":"verification failed"}')

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.start()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                # Lifespan reaches us only as the top-level app, i.e. when we own the process: keep what
                # start-up created out of full collections, which would otherwise stall acks for tens of ms.
                gc.freeze()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return


def _conversation_lane(event: Event) -> str | None:
    return "user:" + event.wa_id if event.wa_id else None


def _message_lane(event: Event) -> str | None:
    return "wamid:" + event.id if isinstance(event, Status) else None


def _looks_like_object(body: bytes) -> bool:
    # Deliberately not json.loads: the ack path parses nothing. A body that looks
    # like an object but is not JSON is kept and shows up among the dead letters.
    stripped = body.strip()
    return stripped[:1] == b"{" and stripped[-1:] == b"}"


async def _read_body(receive: Receive) -> bytes | None:
    """The request body; None when it is larger than MAX_BODY or the client left before sending it all."""
    message = await receive()
    body: bytes = message.get("body", b"")
    if not message.get("more_body"):
        return body
    chunks, size = [body], len(body)
    while message.get("more_body"):
        message = await receive()
        if message["type"] == "http.disconnect":
            return None  # whatever is answered then goes nowhere
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def _answer(
    send: Send,
    status: int,
    body: bytes,
    extra: list[tuple[bytes, bytes]] | None = None,
    content_type: bytes | None = None,
) -> None:
    headers = [(b"content-type", content_type)] if content_type else list(_JSON)
    headers.append((b"content-length", str(len(body)).encode()))
    if extra:
        headers.extend(extra)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _event(body: bytes, item: int) -> Event | None:
    try:
        return parse_body(body)[item]
    except (BodyError, IndexError):
        return None

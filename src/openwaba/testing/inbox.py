"""`Inbox`: a webhook receiver for tests that records every delivery and waits for events.

It runs on the standard library's threading HTTP server, so it answers while a
test blocks, and parses bodies with the receiver toolkit's parser into the same
typed events a bot gets (`Message`, `Status`, `WebhookError`, `TemplateStatus`).
Every POST is kept, duplicates included: a test of duplicate deliveries sees them.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from openwaba.receiver.events import Event, Message, Status
from openwaba.receiver.parsing import BodyError, parse_body

DEFAULT_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class Delivery:
    """One POST as it arrived: headers (lower-case names), raw body and the events in it."""

    headers: dict[str, str]
    body: bytes
    events: tuple[Event, ...]


class Inbox:
    """`inbox.url` takes webhooks; `inbox.wait_for(status="read", message_id=…)` (or `await
    inbox.expect(…)`) returns the first matching event not returned before.

    `fail_next(n, status)` answers the next n deliveries with an error status, to test retries.
    """

    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
        self._taken: set[int] = set()  # positions in `events` already returned by wait_for/expect
        self._events: list[Event] = []
        self._failures: list[int] = []
        self._changed = threading.Condition()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="openwaba-inbox", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/webhook"

    @property
    def events(self) -> list[Event]:
        with self._changed:
            return list(self._events)

    def start(self) -> Inbox:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def fail_next(self, count: int = 1, status: int = 500) -> None:
        with self._changed:
            self._failures.extend([status] * count)

    def statuses(self, message_id: str) -> list[str]:
        """The statuses of one message in the order their webhooks arrived (duplicates included)."""
        return [e.status for e in self.events if isinstance(e, Status) and e.id == message_id]

    def wait_for(self, *, timeout: float = DEFAULT_TIMEOUT, where: Callable[[Event], bool] | None = None,
                 **fields: Any) -> Event:
        """The first event not returned before whose attributes equal `fields` (`from_`, `type`, `status`,
        `id`, `text`, … and `message_id` for a status's or message's id) and that `where` accepts."""
        match = _matcher(fields, where)
        with self._changed:
            found = self._changed.wait_for(lambda: self._first(match), timeout)
            if not found:
                raise AssertionError(f"no webhook event with {fields} within {timeout:g} s; got:\n{self._summary()}")
            self._taken.add(found[0])
            return self._events[found[0]]

    async def expect(self, *, timeout: float = DEFAULT_TIMEOUT, where: Callable[[Event], bool] | None = None,
                     **fields: Any) -> Event:
        """`wait_for` for async tests: waits in a thread, so the event loop keeps running."""
        return await asyncio.to_thread(lambda: self.wait_for(timeout=timeout, where=where, **fields))

    def _first(self, match: Callable[[Event], bool]) -> tuple[int] | None:
        """(position,) of the first untaken match: a tuple, because position 0 is falsy to wait_for."""
        return next(((i,) for i, e in enumerate(self._events) if i not in self._taken and match(e)), None)

    def _summary(self) -> str:
        lines = [f"  {type(e).__name__} {_describe(e)}" for e in self._events[-20:]]
        return "\n".join(lines) or "  (nothing)"

    def _record(self, headers: dict[str, str], body: bytes) -> int:
        try:
            events = tuple(parse_body(body))
        except BodyError:
            events = ()
        with self._changed:
            self.deliveries.append(Delivery(headers, body, events))
            self._events.extend(events)
            status = self._failures.pop(0) if self._failures else 200
            self._changed.notify_all()
        return status


def _matcher(fields: dict[str, Any], where: Callable[[Event], bool] | None) -> Callable[[Event], bool]:
    wanted = dict(fields)
    if "message_id" in wanted:
        wanted["id"] = wanted.pop("message_id")

    def match(event: Event) -> bool:
        missing = object()
        if any(getattr(event, name, missing) != value for name, value in wanted.items()):
            return False
        return where is None or where(event)

    return match


def _describe(event: Event) -> str:
    if isinstance(event, Status):
        return f"id={event.id} status={event.status}"
    if isinstance(event, Message):
        return f"id={event.id} from_={event.from_} type={event.type} text={event.text!r}"
    return event.kind


def _handler(inbox: Inbox) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            status = inbox._record({k.lower(): v for k, v in self.headers.items()}, body)
            answer = b'{"ok":true}' if status < 300 else b'{"error":"failing on purpose (Inbox.fail_next)"}'
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
            pass  # a test's output is not the place for an access log

    return Handler

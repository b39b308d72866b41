"""Helpers for the multi-node test: a receiver that times every attempt and
finds overlapping ones, paced senders spread over several nodes, and a small
synchronous window on the shared PostgreSQL database."""

from __future__ import annotations

import asyncio
import collections
import http.client
import json
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import asyncpg

from .support import HOST, KEY_HEADER, Server, free_port, text_message


@dataclass(frozen=True)
class Attempt:
    """One request the receiver got, timed with the wall clock (the gateway's leases are wall-clock times)."""

    webhook_id: str
    wamid: str | None
    status: str | None
    start: float  # time.time() once the request line and headers were read
    end: float  # time.time() once the handler was done (answer written, or writing it failed)
    answered: bool  # a 200 was written completely
    held: bool  # answered slowly (the receiver was in hold mode when it arrived)

    def short(self) -> str:
        how = "200" if self.answered else "no answer"
        return f"{self.webhook_id} ({self.wamid} {self.status}) [{self.start:.3f}, {self.end:.3f}] {how}"


class TimingReceiver:
    """A real threaded HTTP/1.0 server that answers 200 after `fast_delay` seconds
    (or `hold_delay` while in hold mode) and records the start and end of every
    request, so that attempts of one event that overlap in time can be found."""

    def __init__(self, fast_delay: tuple[float, float], hold_delay: float, seed: int) -> None:
        self.port = free_port()
        self.fast_delay = fast_delay
        self.hold_delay = hold_delay
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._holding = False
        self._attempts: list[Attempt] = []
        self._open: dict[int, tuple[str, float]] = {}  # request token -> (webhook-id, start): in progress
        self._tokens = 0
        self.malformed = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # one request per connection: the end of an attempt is clear

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                receiver._handle(self)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep test output quiet
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 512  # three nodes open dozens of connections at once

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # connections cut by the SIGKILLed node: expected

        self._httpd = Server((HOST, self.port), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="timing-receiver", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/hook"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def hold(self, on: bool) -> None:
        """While on, requests that arrive are answered only after `hold_delay` seconds."""
        with self._lock:
            self._holding = on

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        start = time.time()
        webhook_id = handler.headers.get("webhook-id") or ""
        with self._lock:
            self._tokens += 1
            token = self._tokens
            self._open[token] = (webhook_id, start)
            held = self._holding
            delay = self.hold_delay if held else self._rng.uniform(*self.fast_delay)
        answered = False
        wamid = status = None
        try:
            body = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
            try:
                item = json.loads(body)["entry"][0]["changes"][0]["value"]["statuses"][0]
                wamid, status = str(item["id"]), str(item["status"])
            except (ValueError, KeyError, IndexError, TypeError):
                with self._lock:
                    self.malformed += 1
            time.sleep(delay)  # a slow receiver, not the test waiting for something
            handler.wfile.write(b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
            handler.wfile.flush()
            answered = True
        except OSError:
            pass  # the node died (or gave up) while we were answering
        finally:
            end = time.time()
            with self._lock:
                del self._open[token]
                self._attempts.append(Attempt(webhook_id, wamid, status, start, end, answered, held))

    @property
    def attempts(self) -> list[Attempt]:
        with self._lock:
            return list(self._attempts)

    def in_progress(self) -> dict[str, float]:
        """webhook-id -> start of the requests being answered right now."""
        with self._lock:
            return {webhook_id: start for webhook_id, start in self._open.values()}

    def delivered(self) -> set[tuple[str, str]]:
        """(wamid, status) of every event answered 200 at least once."""
        return {(a.wamid, a.status) for a in self.attempts if a.answered and a.wamid and a.status}

    def overlaps(self) -> list[tuple[Attempt, Attempt]]:
        """Pairs of attempts of one event whose [start, end] intervals intersect."""
        by_id: dict[str, list[Attempt]] = collections.defaultdict(list)
        for attempt in self.attempts:
            by_id[attempt.webhook_id].append(attempt)
        found = []
        for attempts in by_id.values():
            attempts.sort(key=lambda a: a.start)
            for i, first in enumerate(attempts):
                for later in attempts[i + 1:]:
                    if later.start >= first.end:
                        break
                    found.append((first, later))
        return found


class Senders:
    """`threads` clients sending `total` text messages, paced at `rate` messages a
    second, round-robin over the nodes in `live` (which the test may shrink). A
    request cut off by a dead node is sent again to the next live node; a message
    counts as accepted only when a node answered 200.

    Messages from index `gate` on wait until `proceed` is set, so some of the load
    is certainly sent after the test has done something (killed a node)."""

    def __init__(self, live: Sequence[Server], users: Sequence[str], total: int, rate: float, threads: int,
                 gate: int, proceed: threading.Event) -> None:
        self.users = tuple(users)
        self.total = total
        self.rate = rate
        self.gate = gate
        self.proceed = proceed
        self._lock = threading.Lock()
        self._live = list(live)
        self._next = 0
        self._t0 = 0.0
        self.accepted: dict[str, tuple[int, Server]] = {}  # wamid -> (message index, node that answered)
        self.resent = 0
        self.problems: list[str] = []
        self.stopped = threading.Event()
        self._threads = [threading.Thread(target=self._run, name=f"sender-{i}", daemon=True) for i in range(threads)]

    def start(self) -> None:
        self._t0 = time.monotonic()
        for thread in self._threads:
            thread.start()

    def join(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self._threads)

    def stop(self) -> None:
        self.stopped.set()
        self.proceed.set()  # let senders waiting at the gate see that they are stopped
        self.join(5)

    def drop(self, node: Server) -> None:
        """Stop sending to `node`."""
        with self._lock:
            self._live.remove(node)

    def accepted_by(self, node: Server) -> list[str]:
        with self._lock:
            return [wamid for wamid, (_, by) in self.accepted.items() if by is node]

    @property
    def accepted_count(self) -> int:
        with self._lock:
            return len(self.accepted)

    def _take(self) -> int | None:
        with self._lock:
            if self._next >= self.total or self.stopped.is_set():
                return None
            self._next += 1
            return self._next - 1

    def _target(self, index: int, tries: int) -> Server:
        with self._lock:
            return self._live[(index + tries) % len(self._live)]

    def _run(self) -> None:
        while (index := self._take()) is not None:
            pause = self._t0 + index / self.rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)  # pacing the load, not waiting for an outcome
            if index >= self.gate and not self.proceed.wait(30):
                with self._lock:
                    self.problems.append(f"message {index}: the test never let the rest of the load go")
                return
            self._send(index)

    def _send(self, index: int) -> None:
        body = json.dumps(text_message(self.users[index % len(self.users)], f"multi-node #{index}")).encode()
        for tries in range(20):
            if self.stopped.is_set():
                return
            node = self._target(index, tries)
            conn = http.client.HTTPConnection(HOST, node.port, timeout=10)
            try:
                conn.request("POST", "/messages", body=body,
                             headers={KEY_HEADER: node.api_key or "", "Content-Type": "application/json"})
                response = conn.getresponse()
                answer = response.read()
            except (OSError, http.client.HTTPException):
                with self._lock:
                    self.resent += 1  # the node died under us: send it again, to the next live node
                continue
            finally:
                conn.close()
            if response.status == 200:
                wamid = str(json.loads(answer)["messages"][0]["id"])
                with self._lock:
                    self.accepted[wamid] = (index, node)
                return
            with self._lock:
                self.problems.append(f"message {index} to {node.url}: {response.status} {answer[:300]!r}")
            if response.status < 500:
                return  # our request is wrong: sending it again cannot help
        with self._lock:
            self.problems.append(f"message {index}: no node accepted it in 20 tries")


class Database:
    """A synchronous window on the shared database (one asyncpg connection on a private event loop)."""

    def __init__(self, url: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._conn: asyncpg.Connection[asyncpg.Record] = self._loop.run_until_complete(asyncpg.connect(url))

    def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        rows = self._loop.run_until_complete(self._conn.fetch(sql, *args))
        return [dict(row) for row in rows]

    def value(self, sql: str, *args: Any) -> Any:
        return self._loop.run_until_complete(self._conn.fetchval(sql, *args))

    def close(self) -> None:
        try:
            self._loop.run_until_complete(self._conn.close())
        finally:
            self._loop.close()


def leased_by(port: int) -> str:
    """A LIKE pattern for `deliveries.lease_owner` of the node listening on this port (node id 'host:port')."""
    return f"%:{port}"


def metric_total(text: str, name: str) -> float:
    """The sum of every sample of a Prometheus counter in /metrics output."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total

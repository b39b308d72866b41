#!/usr/bin/env python3
"""A small open-loop (or closed-loop) HTTP/1.1 load generator for the benchmark.

    python bench/loadgen.py --url http://127.0.0.1:8080 --api-key KEY --mode send \
        --users 15551230001,15551230002 --rate 1000 --duration 10 --connections 64 --out sends.json

`--mode send` posts `POST /messages` (a ≈600-byte text message, `to` cycling over
`--users`); `--mode inbound` posts `POST /sandbox/users/{wa_id}/messages` (a
simulated user writes, cycling over `--users`).

With `--rate R > 0` request i is scheduled at t0 + i/R (open loop) whatever the
answers do; it is written on the first idle keep-alive connection, or queued
until one frees up (the queueing shows as `t_start - t_sched`). With `--rate 0`
every connection sends its next request as soon as the previous is answered
(closed loop). Either way nothing new is started after `--duration` seconds, and
requests still in flight get `--grace` more seconds.

Writes `--out` as JSON: `{"t0", "t_stop", "requests": [[t_sched, t_start, t_end, code, id], ...]}`
with times from time.monotonic() (CLOCK_MONOTONIC, comparable with the receiver's),
code 0 for a request whose connection failed, and id the message's wamid from the
answer (`messages[0].id`), or null.

The client is a bare asyncio.Protocol (Content-Length responses only, as uvicorn
answers), so it costs the shared CPUs far less than aiohttp or httpx would.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import sys
import time

TEXT = (
    "Hello Jane, your order #A-10293 has shipped and is on its way. It contains 3 items: a blue cotton shirt "
    "(size M), a pair of running shoes (size 42) and a water bottle. The parcel is handled by our delivery "
    "partner and should arrive within 2-3 business days. You can follow it with the tracking link in your "
    "account, or simply reply to this message if anything is wrong. Thank you for shopping with us, and have "
    "a great day!"
)


def send_body(to: str, i: int) -> bytes:
    return json.dumps(
        {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": to,
            "type": "text",
            "text": {"body": TEXT, "preview_url": False},
            "biz_opaque_callback_data": f"order-{i:08d}",
        },
        separators=(",", ":"),
    ).encode()


class Pool:
    def __init__(self, host: str, port: int, size: int, make_request) -> None:  # noqa: ANN001
        self.host, self.port, self.size = host, port, size
        self.make_request = make_request
        self.idle: list[Conn] = []
        self.alive = 0
        self.pending: collections.deque[tuple[int, float]] = collections.deque()
        self.results: list[list[object] | None] = []
        self.outstanding = 0
        self.all_done = asyncio.Event()
        self.all_done.set()
        self.on_complete = None  # closed loop: called after each answer

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(self.size):
            _, conn = await loop.create_connection(lambda: Conn(self), self.host, self.port)
            self.alive += 1
            self.idle.append(conn)

    def dispatch(self, index: int, t_sched: float) -> None:
        while len(self.results) <= index:
            self.results.append(None)
        self.outstanding += 1
        self.all_done.clear()
        if self.idle:
            self.idle.pop().send(index, t_sched)
        else:
            self.pending.append((index, t_sched))
            if self.alive < self.size:
                asyncio.get_running_loop().create_task(self._replace())

    async def _replace(self) -> None:
        self.alive += 1
        try:
            _, conn = await asyncio.get_running_loop().create_connection(lambda: Conn(self), self.host, self.port)
        except OSError:
            self.alive -= 1
            return
        self.free(conn)

    def free(self, conn: Conn) -> None:
        if self.pending:
            conn.send(*self.pending.popleft())
        else:
            self.idle.append(conn)

    def completed(self, index: int, record: list[object]) -> None:
        self.results[index] = record
        self.outstanding -= 1
        if self.outstanding == 0:
            self.all_done.set()
        if self.on_complete is not None:
            self.on_complete()

    def lost(self, conn: Conn) -> None:
        self.alive -= 1
        if conn in self.idle:
            self.idle.remove(conn)


class Conn(asyncio.Protocol):
    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.current: tuple[int, float, float] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, index: int, t_sched: float) -> None:
        assert self.transport is not None
        request = self.pool.make_request(index)
        self.current = (index, t_sched, time.monotonic())
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0 or self.current is None:
            return
        head = bytes(self.buffer[:end])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if len(self.buffer) < end + 4 + length:
            return
        body = bytes(self.buffer[end + 4 : end + 4 + length])
        del self.buffer[: end + 4 + length]
        t_end = time.monotonic()
        code = int(head.split(b" ", 2)[1])
        index, t_sched, t_start = self.current
        self.current = None
        self.pool.completed(index, [t_sched, t_start, t_end, code, body])
        self.pool.free(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.pool.lost(self)
        if self.current is not None:
            index, t_sched, t_start = self.current
            self.current = None
            self.pool.completed(index, [t_sched, t_start, time.monotonic(), 0, b""])


def _wamid(body: bytes) -> str | None:
    try:
        return str(json.loads(body)["messages"][0]["id"])
    except (ValueError, KeyError, IndexError, TypeError):
        return None


async def run(args: argparse.Namespace) -> dict[str, object]:
    host, _, port = args.url.removeprefix("http://").rstrip("/").partition(":")
    users = [u for u in args.users.split(",") if u]
    host_header = f"{host}:{port}".encode()
    key = args.api_key.encode()

    def make_request(i: int) -> bytes:
        user = users[i % len(users)]
        if args.mode == "send":
            path, body = b"/messages", send_body(user, i)
        else:
            path = f"/sandbox/users/{user}/messages".encode()
            body = json.dumps({"text": f"inbound message {i}"}).encode()
        return (
            b"POST "
            + path
            + b" HTTP/1.1\r\nHost: "
            + host_header
            + b"\r\nD360-API-KEY: "
            + key
            + b"\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )

    pool = Pool(host, int(port), args.connections, make_request)
    await pool.open()
    loop = asyncio.get_running_loop()
    t0 = time.monotonic()
    deadline = t0 + args.duration
    limit = args.count or 10**9
    sent = 0
    if args.rate > 0:
        while sent < limit:
            now = time.monotonic()
            if now >= deadline:
                break
            due = min(limit, int((now - t0) * args.rate) + 1)
            while sent < due:
                pool.dispatch(sent, t0 + sent / args.rate)
                sent += 1
            await asyncio.sleep(max(0.0, t0 + sent / args.rate - time.monotonic()))
    else:
        stopped = asyncio.Event()

        def next_one() -> None:
            nonlocal sent
            if sent < limit and time.monotonic() < deadline:
                pool.dispatch(sent, time.monotonic())
                sent += 1
            elif pool.outstanding == 0:
                stopped.set()

        pool.on_complete = next_one
        for _ in range(args.connections):
            next_one()
        with_deadline = max(0.0, deadline - time.monotonic())
        await asyncio.sleep(with_deadline)
    t_stop = time.monotonic()
    try:
        await asyncio.wait_for(pool.all_done.wait(), args.grace)
    except TimeoutError:
        print(f"loadgen: {pool.outstanding} requests still unanswered after {args.grace} s", file=sys.stderr)
    del loop
    requests = []
    for record in pool.results:
        if record is None:
            continue
        t_sched, t_start, t_end, code, body = record
        requests.append([t_sched, t_start, t_end, code, _wamid(body) if code == 200 else None])
    return {"t0": t0, "t_stop": t_stop, "requests": requests}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--mode", choices=("send", "inbound"), default="send")
    parser.add_argument("--users", required=True, help="comma-separated wa_ids")
    parser.add_argument("--rate", type=float, default=0.0, help="requests/s (open loop); 0 = closed loop")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--count", type=int, default=0, help="at most this many requests (0 = no limit)")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--grace", type=float, default=30.0)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    result = asyncio.run(run(args))
    with open(args.out, "w") as f:
        json.dump(result, f)
    codes = collections.Counter(r[3] for r in result["requests"])  # type: ignore[index,union-attr]
    print(f"loadgen: {len(result['requests'])} requests, codes {dict(codes)}", file=sys.stderr)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()

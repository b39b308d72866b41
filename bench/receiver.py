#!/usr/bin/env python3
"""A fast webhook receiver for the benchmark: a raw asyncio (uvloop) HTTP/1.1 server.

    python bench/receiver.py --port 9001 --out arrivals.json [--fail-ratio 0.5 --seed 1]

It answers every POST with 200 `ok` (or, with `--fail-ratio p`, with 500 for a
random fraction p of the attempts, seeded), keeps connections alive, and records
for each request the arrival time (time.monotonic(), which is CLOCK_MONOTONIC and
so comparable between processes of one machine), the path, the status it answered
and the body. Bodies are parsed only when it stops, so the hot path stays cheap.

`GET /__stats` answers `{"requests": n, "ok": n}` at once (the harness polls it to
know when every event has arrived; these requests are not recorded).
On SIGTERM or SIGINT it writes the records to `--out` as one JSON object and exits:
`{"records": [[t, path, code, webhook_id, kind, wamid, status], ...]}` where kind is
`status`, `message` or `other`, wamid the status' or message's id and status the
status name (`sent`, `delivered`, `read`, `failed`) or null.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import sys
import time

_OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"
_FAIL = b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\nContent-Type: text/plain\r\n\r\nfail"


class State:
    def __init__(self, fail_ratio: float, seed: int) -> None:
        self.fail_ratio = fail_ratio
        self.random = random.Random(seed)
        # (t, path, code, webhook-id, body)
        self.records: list[tuple[float, bytes, int, bytes, bytes]] = []
        self.ok = 0


class Receiver(asyncio.Protocol):
    def __init__(self, state: State) -> None:
        self.state = state
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end])
            length = 0
            webhook_id = b""
            lines = head.split(b"\r\n")
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                lname = name.strip().lower()
                if lname == b"content-length":
                    length = int(value)
                elif lname == b"webhook-id":
                    webhook_id = value.strip()
            if len(self.buffer) < end + 4 + length:
                return
            body = bytes(self.buffer[end + 4 : end + 4 + length])
            del self.buffer[: end + 4 + length]
            now = time.monotonic()
            parts = lines[0].split(b" ")
            path = parts[1] if len(parts) > 1 else b""
            assert self.transport is not None
            if path == b"/__stats":
                answer = json.dumps({"requests": len(self.state.records), "ok": self.state.ok}).encode()
                self.transport.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                    + str(len(answer)).encode()
                    + b"\r\n\r\n"
                    + answer
                )
                continue
            state = self.state
            if state.fail_ratio > 0 and state.random.random() < state.fail_ratio:
                code = 500
                self.transport.write(_FAIL)
            else:
                code = 200
                state.ok += 1
                self.transport.write(_OK)
            state.records.append((now, path, code, webhook_id, body))


def _describe(body: bytes) -> tuple[str, str | None, str | None]:
    """(kind, wamid, status) of a Cloud-format webhook body."""
    try:
        value = json.loads(body)["entry"][0]["changes"][0]["value"]
    except (ValueError, KeyError, IndexError, TypeError):
        return "other", None, None
    if value.get("statuses"):
        item = value["statuses"][0]
        return "status", item.get("id"), item.get("status")
    if value.get("messages"):
        return "message", value["messages"][0].get("id"), None
    return "other", None, None


def dump(state: State, out: str) -> None:
    records = []
    for t, path, code, webhook_id, body in state.records:
        kind, wamid, status = _describe(body)
        records.append([t, path.decode(), code, webhook_id.decode(), kind, wamid, status])
    with open(out + ".tmp", "w") as f:
        json.dump({"records": records}, f)
    import os

    os.replace(out + ".tmp", out)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--fail-ratio", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    state = State(args.fail_ratio, args.seed)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(
        loop.create_server(lambda: Receiver(state), args.host, args.port, backlog=1024, reuse_address=True)
    )
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"receiver listening on {args.host}:{args.port}", file=sys.stderr, flush=True)
    loop.run_until_complete(stop.wait())
    server.close()
    dump(state, args.out)


if __name__ == "__main__":
    main()

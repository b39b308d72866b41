"""The receiver as a real server: uvicorn in a subprocess (through `serve()`), real sockets on
127.0.0.1, concurrency, retries on an injected clock, SIGKILL between the 200 and the handling."""

from __future__ import annotations

import asyncio
import collections
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from openwaba.domain.signing import meta_signature

from .support import cloud, message, status, wait_until

pytestmark = pytest.mark.e2e
APP = Path(__file__).with_name("server_app.py")


class Server:
    """server_app.py in its own session; stopped (or killed) through its process group."""

    def __init__(self, workdir: Path, *options: str) -> None:
        self.workdir = workdir
        self.record = workdir / "record.jsonl"
        self.options = options
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0

    def start(self, *extra: str) -> Server:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        command = [
            sys.executable,
            str(APP),
            "--db",
            str(self.workdir / "q.db"),
            "--record",
            str(self.record),
            "--clock",
            str(self.workdir / "clock"),
            "--port",
            str(self.port),
            *self.options,
            *extra,
        ]
        log = open(self.workdir / "server.log", "ab")  # noqa: SIM115  (handed to the child)
        self.process = subprocess.Popen(command, stdout=log, stderr=log, start_new_session=True)
        wait_until(self._listening, 20, "the receiver to listen")
        return self

    def _listening(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"receiver exited: {(self.workdir / 'server.log').read_text()}")
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        self.process = None

    def lines(self) -> list[dict[str, Any]]:
        if not self.record.exists():
            return []
        return [json.loads(line) for line in self.record.read_text().splitlines() if line.endswith("}")]

    def handled(self, kind: str = "") -> list[dict[str, Any]]:
        return [line for line in self.lines() if not line.get("failed") and (not kind or line["kind"] == kind)]

    def advance_clock(self, seconds: float) -> None:
        path = self.workdir / "clock"
        current = float(path.read_text()) if path.exists() else 0.0
        path.write_text(str(current + seconds))


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for server in started:
        server.stop(signal.SIGKILL)


def post_many(port: int, requests: list[tuple[bytes, dict[str, str]]], connections: int = 64) -> list[int]:
    """POST every (body, headers) over `connections` keep-alive connections; the answers' status codes."""

    async def worker(queue: collections.deque[int], statuses: list[int]) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while queue:
            index = queue.popleft()
            body, headers = requests[index]
            head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            writer.write(
                f"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{head}"
                f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            status_line = await reader.readline()
            length = 0
            while (line := await reader.readline()) != b"\r\n":
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            await reader.readexactly(length)
            statuses[index] = int(status_line.split()[1])
        writer.close()

    async def main() -> list[int]:
        queue = collections.deque(range(len(requests)))
        statuses = [0] * len(requests)
        await asyncio.wait_for(asyncio.gather(*(worker(queue, statuses) for _ in range(connections))), 60)
        return statuses

    return asyncio.run(main())


def test_concurrent_posts_are_all_acked_and_every_item_handled_once(tmp_path: Path, servers: list[Server]) -> None:
    server = Server(tmp_path).start()
    servers.append(server)
    requests = [(cloud({"messages": [message(f"wamid.c{i}")]}), {}) for i in range(1500)]
    requests += [
        (cloud({"statuses": [status(f"wamid.s{i}", "delivered")]}), {"webhook-id": f"evt_{i}"}) for i in range(500)
    ]
    assert collections.Counter(post_many(server.port, requests)) == {200: 2000}
    wait_until(lambda: len(server.handled("message")) + len(server.handled("status")) >= 2000, 30, "2000 handled items")
    ids = [line["id"] for line in server.handled() if line["kind"] in ("message", "status")]
    assert len(ids) == len(set(ids)) == 2000
    server.stop()
    assert len(server.handled("message")) + len(server.handled("status")) == 2000  # nothing more after the drain


def test_a_raising_handler_is_retried_and_not_lost(tmp_path: Path, servers: list[Server]) -> None:
    server = Server(tmp_path, "--fail-first", "2").start()
    servers.append(server)
    requests = [(cloud({"messages": [message(f"wamid.r{i}")]}), {}) for i in range(20)]
    assert set(post_many(server.port, requests, connections=4)) == {200}
    for attempt in (1, 2):
        wait_until(
            lambda n=attempt: len([x for x in server.lines() if x.get("failed")]) >= 20 * n,
            15,
            f"attempt {attempt} of every item",
        )
        assert not server.handled("message")  # the next attempt waits for the clock, not for real time
        server.advance_clock(30)
    wait_until(lambda: len(server.handled("message")) >= 20, 15, "the third attempts")
    assert sorted(x["id"] for x in server.handled("message")) == sorted(f"wamid.r{i}" for i in range(20))


def test_sigkill_between_the_200_and_the_handling_loses_nothing(tmp_path: Path, servers: list[Server]) -> None:
    marker = tmp_path / "go"
    server = Server(tmp_path).start("--block-until", str(marker))
    servers.append(server)
    requests = [
        (cloud({"messages": [message(f"wamid.k{i}")], "statuses": [status(f"wamid.o{i}", "sent")]}), {})
        for i in range(300)
    ]
    assert set(post_many(server.port, requests, connections=16)) == {200}
    assert server.handled() == []
    server.stop(signal.SIGKILL)
    server.start()  # same queue file, handlers no longer blocked
    wait_until(lambda: len(server.handled("message")) + len(server.handled("status")) >= 600, 30, "600 items")
    ids = [x["id"] for x in server.handled() if x["kind"] in ("message", "status")]
    assert sorted(ids) == sorted([f"wamid.k{i}" for i in range(300)] + [f"wamid.o{i}" for i in range(300)])


def test_duplicates_out_of_order_statuses_and_bad_requests_over_the_wire(tmp_path: Path, servers: list[Server]) -> None:
    server = Server(tmp_path, "--app-secret", "app-secret").start()
    servers.append(server)

    def signed(body: bytes, **headers: str) -> tuple[bytes, dict[str, str]]:
        return body, {"X-Hub-Signature-256": meta_signature("app-secret", body), **headers}

    hello = cloud({"messages": [message("wamid.dup")]})
    sequence = [
        signed(cloud({"statuses": [status("wamid.out", "read")]})),
        signed(cloud({"statuses": [status("wamid.out", "delivered")]})),
        signed(hello, **{"webhook-id": "evt-dup"}),
        signed(hello, **{"webhook-id": "evt-dup"}),
        signed(hello),
        (hello, {"X-Hub-Signature-256": meta_signature("wrong", hello)}),
        signed(b"[1, 2, 3]"),
    ]
    assert post_many(server.port, sequence, connections=1) == [200, 200, 200, 200, 200, 401, 400]
    wait_until(lambda: len(server.handled("status")) >= 2 and server.handled("message"), 15, "the items")
    server.stop()  # a clean stop: whatever was due has been handled
    assert [x["id"] for x in server.handled("message")] == ["wamid.dup"]
    assert [x["status"] for x in server.handled("on_status")] == ["read"]
    assert sorted(x["status"] for x in server.handled("status")) == ["delivered", "read"]


def test_importing_the_package_imports_only_the_standard_library() -> None:
    code = (
        "import sys; before = set(sys.modules); import openwaba.receiver; "
        "print(sorted(m for m in set(sys.modules) - before "
        "if m.split('.')[0] not in sys.stdlib_module_names and m.split('.')[0] != 'openwaba'))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True)
    assert result.stdout.strip() == "[]"

"""Helpers for the end-to-end tests: the real `openwaba serve` process, a real
webhook receiver, and bounded waiting.

Nothing here sleeps to let time pass for the server: retries are reached by
moving the server's manual clock (`POST /sandbox/clock`); the only polling is
for things to *arrive* (a webhook, a row in the database), always bounded.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import errno
import itertools
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import pytest

HOST = "127.0.0.1"
API_KEY = "e2e-fixed-key-4f9c2a7d1b"
KEY_HEADER = "D360-API-KEY"
START_TIMEOUT = 20.0
DEFAULT_WAIT = 15.0
MAX_WAIT = 20.0

# The simulated users seeded when OPENWABA_SANDBOX_USERS is not set.
ALICE, BRUNO, CHEN = "15551230001", "15551230002", "15551230003"
USER_NAMES = {ALICE: "Alice Example", BRUNO: "Bruno Example", CHEN: "Chen Example"}

T = TypeVar("T")


def openwaba_executable() -> str:
    """The `openwaba` console script of the interpreter running the tests."""
    beside = Path(sys.executable).parent / "openwaba"
    if beside.exists():
        return str(beside)
    found = shutil.which("openwaba")
    if found is None:
        raise RuntimeError(f"no `openwaba` script next to {sys.executable} or on PATH; pip install -e .")
    return found


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


# What pip prints when no package index is reachable (an offline machine, not a failure of ours).
INDEX_TROUBLE = ("Could not find a version", "No matching distribution", "Failed to establish a new connection",
                 "Temporary failure in name resolution", "Network is unreachable", "ConnectTimeout",
                 "Max retries exceeded", "ProxyError", "SSLError")


def pip_install(venv_python: Path, *args: str) -> None:
    """`pip install ARGS` into a virtualenv; skips the test when no package index can be reached."""
    done = subprocess.run([str(venv_python), "-m", "pip", "install", "--disable-pip-version-check",
                           "--no-input", *args], capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        output = done.stdout[-1500:] + done.stderr[-1500:]
        if any(sign in output for sign in INDEX_TROUBLE):
            pytest.skip(f"pip could not reach a package index for `pip install {' '.join(args)}`:\n{output}")
        raise AssertionError(f"pip install {' '.join(args)} failed:\n{output}")


def clean_env(overrides: dict[str, str | None] | None = None) -> dict[str, str]:
    """The test process's environment without any OPENWABA_* setting, plus `overrides`
    (a value of None removes the variable)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENWABA_")}
    for name, value in (overrides or {}).items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def wait_until(check: Callable[[], T | None], timeout: float = DEFAULT_WAIT, what: str = "condition",
               describe: Callable[[], str] | None = None) -> T:
    """Poll `check()` (every 20 ms) until it returns something truthy; return that.

    Raises AssertionError after `timeout` seconds (capped at MAX_WAIT).
    """
    deadline = time.monotonic() + min(timeout, MAX_WAIT)
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() >= deadline:
            extra = f"\n{describe()}" if describe is not None else ""
            raise AssertionError(f"timed out after {min(timeout, MAX_WAIT):g} s waiting for {what}{extra}")
        time.sleep(0.02)


# --- a tiny HTTP client ------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.body)


def http(method: str, url: str, *, json_body: Any = None, data: bytes | None = None,
         headers: dict[str, str] | None = None, timeout: float = 10.0) -> Reply:
    if json_body is not None:
        data = json.dumps(json_body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Reply(response.status, response.read(), {k.lower(): v for k, v in response.headers.items()})
    except urllib.error.HTTPError as exc:
        return Reply(exc.code, exc.read(), {k.lower(): v for k, v in exc.headers.items()})


# --- the webhook receiver --------------------------------------------------------------


@dataclass
class Received:
    """One request the receiver got."""

    index: int
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes
    json: Any
    at: float  # time.monotonic() once answered (or the client hung up)
    answered: int  # the HTTP status the receiver answered with

    @property
    def webhook_id(self) -> str | None:
        return self.headers.get("webhook-id")

    @property
    def value(self) -> dict[str, Any]:
        """`entry[0].changes[0].value` of a Cloud API envelope."""
        value: dict[str, Any] = self.json["entry"][0]["changes"][0]["value"]
        return value

    @property
    def status(self) -> dict[str, Any] | None:
        try:
            item: dict[str, Any] = self.value["statuses"][0]
        except (KeyError, IndexError, TypeError):
            return None
        return item

    @property
    def message(self) -> dict[str, Any] | None:
        try:
            item: dict[str, Any] = self.value["messages"][0]
        except (KeyError, IndexError, TypeError):
            return None
        return item

    def short(self) -> str:
        item = self.status or self.message or {}
        label = item.get("status") or item.get("type") or "?"
        where = f"#{self.index} {self.method} {self.path} -> {self.answered}"
        return f"{where} [{label} {item.get('id', '')}] id={self.webhook_id}"


class Receiver:
    """A real HTTP server in a thread that records every request.

    `respond_with(500, 500)` scripts the next answers (then 200 again);
    `respond_with((200, 2.0))` answers 200 after two seconds. It can be
    stopped (port closed) and started again on the same port.
    """

    def __init__(self, port: int | None = None, path: str = "/webhook") -> None:
        self._auto_port = port is None
        self._started_once = False
        self._placeholder: socket.socket | None = None  # holds the port while stopped
        self.port = port or free_port()
        self.path = path
        self._lock = threading.Lock()
        self._requests: list[Received] = []
        self._arrivals: list[str | None] = []  # webhook-id of each request, recorded on arrival
        self._script: collections.deque[tuple[int, float]] = collections.deque()
        self.default_status = 200
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}{self.path}"

    @property
    def running(self) -> bool:
        return self._httpd is not None

    def respond_with(self, *answers: int | tuple[int, float]) -> None:
        """Script the next answers: a status, or (status, seconds to wait before answering)."""
        with self._lock:
            self._script.extend(a if isinstance(a, tuple) else (a, 0.0) for a in answers)

    def _next_answer(self) -> tuple[int, float]:
        with self._lock:
            return self._script.popleft() if self._script else (self.default_status, 0.0)

    def _record(self, **fields: Any) -> None:
        with self._lock:
            self._requests.append(Received(index=len(self._requests), **fields))

    def _arrived(self, webhook_id: str | None) -> None:
        with self._lock:
            self._arrivals.append(webhook_id)

    @property
    def arrivals(self) -> list[str | None]:
        """webhook-id of every request as soon as its headers were read (before answering)."""
        with self._lock:
            return list(self._arrivals)

    @property
    def requests(self) -> list[Received]:
        with self._lock:
            return list(self._requests)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        """The request handler class; subclasses answer differently by overriding this."""
        return _handler_for(self)

    def start(self) -> None:
        if self._httpd is not None:
            return
        if self._placeholder is not None:
            self._placeholder.close()
            self._placeholder = None
        handler = self._handler()
        deadline = time.monotonic() + 5
        while True:
            try:
                httpd = ThreadingHTTPServer((HOST, self.port), handler)
                break
            except OSError as exc:  # the port may linger for a moment after stop()
                if exc.errno != errno.EADDRINUSE or time.monotonic() > deadline:
                    raise
                if self._auto_port and not self._started_once:
                    self.port = free_port()  # taken by someone else since we picked it: pick again
                else:
                    time.sleep(0.05)
        self._started_once = True
        httpd.daemon_threads = True
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"receiver-{self.port}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        httpd, thread = self._httpd, self._thread
        self._httpd = self._thread = None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
            self._placeholder = _hold_port(self.port)
        if thread is not None:
            thread.join(timeout=5)

    def wait_for(self, predicate: Callable[[list[Received]], T | None], timeout: float = DEFAULT_WAIT,
                 what: str = "webhook requests") -> T:
        """Poll the recorded requests until `predicate(requests)` is truthy; return its value."""
        return wait_until(lambda: predicate(self.requests), timeout, what, self.describe)

    def wait_for_count(self, match: Callable[[Received], bool], count: int, timeout: float = DEFAULT_WAIT,
                       what: str = "webhook requests") -> list[Received]:
        """Wait until at least `count` recorded requests satisfy `match`; return those."""
        def enough(requests: list[Received]) -> list[Received] | None:
            found = [r for r in requests if match(r)]
            return found if len(found) >= count else None
        return self.wait_for(enough, timeout, f"{count} x {what}")

    def statuses_of(self, wamid: str) -> list[Received]:
        return [r for r in self.requests if r.status is not None and r.status.get("id") == wamid]

    def describe(self) -> str:
        lines = [r.short() for r in self.requests]
        return "receiver got:\n  " + ("\n  ".join(lines) if lines else "(nothing)")


def _hold_port(port: int) -> socket.socket | None:
    """Bind (without listening) the port of a stopped receiver: connections are refused, as
    when the receiver is down, and no other server of the session can take the port meanwhile."""
    deadline = time.monotonic() + 1
    while True:
        sock = socket.socket()
        try:
            sock.bind((HOST, port))
            return sock
        except OSError:
            sock.close()
            if time.monotonic() > deadline:
                return None  # lingering connections: go without (the old behaviour)
            time.sleep(0.02)


def _handler_for(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # one request per connection: no keep-alive surprises

        def _handle(self) -> None:
            receiver._arrived(self.headers.get("webhook-id"))
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            try:
                parsed = json.loads(body) if body else None
            except ValueError:
                parsed = None
            status, delay = receiver._next_answer()
            try:
                if delay:
                    time.sleep(delay)  # a slow receiver (scripted), not the test waiting
                answer = b'{"ok":true}' if status == 200 else b'{"error":"scripted failure"}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
                self.wfile.flush()
            except OSError:
                pass  # the client gave up (timeout) and closed the connection
            finally:
                receiver._record(
                    method=self.command, path=self.path,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body, json=parsed, at=time.monotonic(), answered=status,
                )

        do_POST = do_PUT = do_GET = _handle

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep test output quiet
            pass

    return Handler


# --- the server process ----------------------------------------------------------------


@dataclass
class Server:
    """One `openwaba serve` process on a fixed data directory and port; can be
    killed and started again on both."""

    data_dir: Path
    port: int
    env: dict[str, str | None]
    logs: Path
    api_key: str | None = None
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    log_files: list[tuple[Path, Path]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def db_path(self) -> Path:
        return self.data_dir / "openwaba.db"

    # lifecycle ------------------------------------------------------------------------
    def start(self, env: dict[str, str | None] | None = None, timeout: float = START_TIMEOUT) -> Server:
        """Start the process (optionally with changed settings) and wait until it answers."""
        assert self.process is None or self.process.poll() is not None, "already running"
        if env is not None:
            self.env = {**self.env, **env}
        if "OPENWABA_SANDBOX_API_KEY" in self.env and self.env["OPENWABA_SANDBOX_API_KEY"]:
            self.api_key = self.env["OPENWABA_SANDBOX_API_KEY"]
        self.starts += 1
        out = self.logs / f"start{self.starts}.stdout"
        err = self.logs / f"start{self.starts}.stderr"
        self.log_files.append((out, err))
        command = [openwaba_executable(), "serve", "--host", HOST, "--port", str(self.port),
                   "--data-dir", str(self.data_dir)]
        with open(out, "wb") as stdout, open(err, "wb") as stderr:
            self.process = subprocess.Popen(command, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL,
                                            env=clean_env(self.env), start_new_session=True)
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"openwaba exited with {self.process.returncode} while starting\n{self.log_tail()}")
            try:
                headers = {KEY_HEADER: self.api_key} if self.api_key else {}
                reply = http("GET", self.url + "/health_status", headers=headers, timeout=2)
                # Without a known key any answer (401) proves the app is up: uvicorn
                # only listens once the lifespan start-up (seeding etc.) is complete.
                if reply.status == 200 or not self.api_key:
                    return
                raise RuntimeError(f"GET /health_status answered {reply.status}: {reply.body!r}")
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"openwaba did not answer on {self.url} within {timeout:g} s\n{self.log_tail()}")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a crash or power loss."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        if self.process is not None:
            self.process.wait(timeout=10)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (graceful), then SIGKILL if it does not exit in time."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def restart(self, env: dict[str, str | None] | None = None, *, kill: bool = False) -> Server:
        if kill:
            self.kill()
        else:
            self.stop()
        return self.start(env)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    # output ---------------------------------------------------------------------------
    def stdout(self, start: int | None = None) -> str:
        """What the process printed on stdout (of the latest start by default)."""
        out, _ = self.log_files[(start or self.starts) - 1]
        return out.read_text(errors="replace")

    def log_tail(self, chars: int = 4000) -> str:
        parts = []
        for number, (out, err) in enumerate(self.log_files, 1):
            for label, path in (("stdout", out), ("stderr", err)):
                text = path.read_text(errors="replace") if path.exists() else ""
                if text:
                    parts.append(f"--- start {number} {label} ---\n{text[-chars:]}")
        return "\n".join(parts) or "(no output)"

    # API ------------------------------------------------------------------------------
    def call(self, method: str, path: str, body: Any = None, *, key: str | None = "", data: bytes | None = None,
             headers: dict[str, str] | None = None) -> Reply:
        """An API call with the server's key (key="" means "the server's key", None means no key)."""
        all_headers = dict(headers or {})
        use_key = self.api_key if key == "" else key
        if use_key is not None:
            all_headers[KEY_HEADER] = use_key
        return http(method, self.url + path, json_body=body, data=data, headers=all_headers)

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        reply = self.call(method, path, body)
        assert reply.status == 200, f"{method} {path} answered {reply.status}: {reply.body!r}"
        return reply.json()

    def send_text(self, to: str, text: str) -> str:
        """Send a text message; return its wamid."""
        result = self.ok("POST", "/messages", text_message(to, text))
        return str(result["messages"][0]["id"])

    def set_webhook(self, url: str, headers: dict[str, str] | None = None) -> Any:
        return self.ok("POST", "/v1/configs/webhook", {"url": url, "headers": headers or {}})

    def user_says(self, wa_id: str, text: str) -> str:
        """A simulated user writes to the business; return the inbound wamid."""
        return str(self.ok("POST", f"/sandbox/users/{wa_id}/messages", {"text": text})["messages"][0]["id"])

    def advance_clock(self, seconds: float) -> float:
        return float(self.ok("POST", "/sandbox/clock", {"advance_seconds": seconds})["now"])

    # the database, read-only ----------------------------------------------------------
    def query(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        """Run a read-only query against the server's SQLite file (or its PostgreSQL
        database: the SQL must suit both, with `?` placeholders)."""
        url = self.env.get("OPENWABA_DATABASE_URL")
        if url:
            return _postgres_query(url, sql, params)
        conn = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=5)
        conn.row_factory = sqlite3.Row
        try:
            return [dict(row) for row in conn.execute(sql, params).fetchall()]
        finally:
            conn.close()

    def execute(self, *statements: str) -> None:
        """Change the database behind the server's back, in one transaction (the server is stopped)."""
        url = self.env.get("OPENWABA_DATABASE_URL")
        if url:
            _postgres_query(url, ";\n".join(statements), (), many=True)
            return
        conn = sqlite3.connect(self.db_path)
        try:
            with conn:
                for statement in statements:
                    conn.execute(statement)
        finally:
            conn.close()

    def deliveries(self, where: str = "1 = 1", *params: Any) -> list[dict[str, Any]]:
        """Deliveries joined with their events (event_id, kind, wamid, state, attempts, ...)."""
        return self.query(
            "SELECT d.id, d.event_id, e.kind, e.wamid, d.state, d.attempts, d.next_attempt_at, "
            "d.last_status, d.last_error FROM deliveries d JOIN events e ON e.id = d.event_id "
            f"WHERE {where} ORDER BY d.id",
            *params,
        )

    def wait_for_deliveries(
        self, check: Callable[[list[dict[str, Any]]], bool], where: str = "1 = 1", *params: Any,
        timeout: float = DEFAULT_WAIT, what: str = "deliveries",
    ) -> list[dict[str, Any]]:
        def probe() -> list[dict[str, Any]] | None:
            rows = self.deliveries(where, *params)
            return rows if rows and check(rows) else None
        return wait_until(probe, timeout, what, lambda: f"deliveries now: {self.deliveries(where, *params)}")


def text_message(to: str, body: str) -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp", "recipient_type": "individual",
        "to": to, "type": "text", "text": {"body": body},
    }


def _postgres_query(url: str, sql: str, params: tuple[Any, ...], many: bool = False) -> list[dict[str, Any]]:
    import asyncpg  # the PostgreSQL runs only

    numbers = itertools.count(1)  # the tests write SQL both stores read, with sqlite3's `?` placeholders
    sql = re.sub(r"\?", lambda _: f"${next(numbers)}", sql)

    async def run() -> list[dict[str, Any]]:
        conn = await asyncpg.connect(url)
        try:
            if many:  # several statements, no parameters: one implicit transaction
                await conn.execute(sql)
                return []
            return [dict(row) for row in await conn.fetch(sql, *params)]
        finally:
            await conn.close()

    return asyncio.run(run())


class ServerFactory:
    """Creates servers in a base directory and stops them all at the end."""

    def __init__(self, base: Path, default_env: dict[str, str | None],
                 database: Callable[[], str] | None = None) -> None:
        self.base = base
        self.default_env = default_env
        self.database = database  # a fresh PostgreSQL database per server, instead of SQLite
        self.servers: list[Server] = []

    def __call__(self, env: dict[str, str | None] | None = None, *, start: bool = True) -> Server:
        number = len(self.servers) + 1
        data_dir = self.base / f"server{number}" / "data"
        logs = self.base / f"server{number}" / "logs"
        logs.mkdir(parents=True)
        merged = {**self.default_env, **(env or {})}
        if self.database is not None and "OPENWABA_DATABASE_URL" not in merged:
            merged["OPENWABA_DATABASE_URL"] = self.database()
        server = Server(data_dir=data_dir, port=free_port(), env=merged, logs=logs,
                        api_key=merged.get("OPENWABA_SANDBOX_API_KEY") or None)
        self.servers.append(server)
        if start:
            for attempt in range(3):
                try:
                    server.start()
                    break
                except RuntimeError as exc:  # the port was taken since we picked it: pick again
                    if "address already in use" not in str(exc).lower() or attempt == 2:
                        raise
                    server.port = free_port()
        return server

    def close(self) -> None:
        for server in self.servers:
            with contextlib.suppress(Exception):
                server.stop()

    def report(self) -> str:
        return "\n".join(f"=== server {i} ({s.url}, {s.data_dir}) ===\n{s.log_tail()}"
                         for i, s in enumerate(self.servers, 1))


def by_status(requests: Iterable[Received]) -> dict[str, list[Received]]:
    grouped: dict[str, list[Received]] = collections.defaultdict(list)
    for r in requests:
        if r.status is not None:
            grouped[r.status["status"]].append(r)
    return grouped

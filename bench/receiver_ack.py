#!/usr/bin/env python3
"""Webhook receiver ack benchmark: openwaba.receiver next to pywa's own webhook server, and the
gateway's own intake of Meta's webhooks (`openwaba serve`, POST /meta/webhook).

    .venv/bin/python bench/receiver_ack.py [--rate 2000] [--duration 10] [--runs 3] [--out -]

Starts, side by side on free ports of 127.0.0.1, each in its own session:
  - openwaba.receiver (a Receiver with `app_secret`, one async on_message handler that counts) under
    uvicorn (uvloop, httptools), its queue in a fresh temporary SQLite file;
  - pywa_async's server (pywa's Starlette integration, `app_secret` set so it verifies too, the same
    counting handler) under the same uvicorn flags; pywa[server] is installed into this interpreter
    at the pinned version when missing (it is not a test dependency);
  - `openwaba serve` with its number on the Meta connector (unless --no-gateway): the same signed posts
    go to /meta/webhook, where each is committed before its 200 and ingested afterwards;
then, alternating A/B for --runs rounds, drives each with bench/loadgen.py's connection pool in a
separate process: open loop at --rate requests/s for --duration s over 64 keep-alive connections,
each request a distinct Cloud-format inbound text message signed with X-Hub-Signature-256.

Reports per server (median and range over the runs): acks/s, ack latency p50/p99 from the scheduled
send time (so client-side queueing counts) and from the actual write, errors, server CPU, handled/s and
the time until every acked message was handled; and the ratio openwaba/pywa. Appends a dated section
to bench/RESULTS.md unless --out -.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import hmac
import importlib.metadata
import importlib.util
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
import run as harness  # noqa: E402  (bench/run.py: process and CPU helpers)

PYWA = "pywa[server]==4.5.0"
APP_SECRET = "bench-app-secret"
PHONE_ID = "106540352242922"
TARGET_P99_MS = 5.0
CONNECTIONS = 64


# --- the servers (run in their own processes: `receiver_ack.py serve-openwaba|serve-pywa`) -------


def serve_openwaba(port: int, db: str) -> None:
    from openwaba.receiver import Message, Receiver, serve

    receiver = Receiver(db, app_secret=APP_SECRET, verify_token="verify-me")
    handled = [0]

    @receiver.on_message
    async def count(message: Message) -> None:
        handled[0] += 1

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/stats":
            await _stats(send, handled[0])
        else:
            await receiver(scope, receive, send)

    serve(app, harness.HOST, port)  # what `openwaba receive` runs: uvicorn, uvloop, httptools, lifespan on


def serve_pywa(port: int) -> None:
    import uvicorn
    from pywa_async import WhatsApp  # type: ignore[import-not-found]
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse

    app = Starlette()
    wa = WhatsApp(
        phone_id=PHONE_ID,
        token="not-used",
        server=app,
        webhook_endpoint="/webhook",
        verify_token="verify-me",
        app_secret=APP_SECRET,
        validate_updates=True,
        skip_duplicate_updates=False,
    )
    handled = [0]

    @wa.on_message()
    async def count(_: Any, message: Any) -> None:
        handled[0] += 1

    async def stats(_: Request) -> JSONResponse:
        return JSONResponse({"handled": handled[0]})

    app.add_route("/stats", stats, methods=["GET"])
    uvicorn.run(
        app,
        host=harness.HOST,
        port=port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level="warning",
    )


async def _stats(send: Any, handled: int) -> None:
    body = json.dumps({"handled": handled}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


class ScriptServer(harness.Server):
    path = "/webhook"

    def __init__(self, workdir: Path, name: str, extra: list[str] | None = None) -> None:
        self.name = name
        super().__init__(workdir)
        self.extra = extra or []

    def command(self) -> list[str]:
        return [
            sys.executable,
            str(Path(__file__).resolve()),
            f"serve-{self.name}",
            "--port",
            str(self.port),
            *self.extra,
        ]

    def handled(self) -> int:
        with urllib.request.urlopen(f"{self.url}/stats", timeout=5) as response:
            return int(json.loads(response.read())["handled"])


class GatewayServer(harness.Server):
    """`openwaba serve` with its number on the Meta connector: Meta's posts arrive at /meta/webhook,
    are committed, answered, then ingested (nothing listens for the resulting webhooks)."""

    name = "gateway"
    path = "/meta/webhook"

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.data = workdir / "gateway-data"

    def command(self) -> list[str]:
        return [harness.openwaba_executable(), "serve", "--host", harness.HOST, "--port", str(self.port),
                "--data-dir", str(self.data)]

    def env(self) -> dict[str, str]:
        return {
            **super().env(),
            "OPENWABA_CONNECTOR": "meta",
            "OPENWABA_META_PHONE_NUMBER_ID": PHONE_ID,
            "OPENWABA_META_ACCESS_TOKEN": "bench-token",
            "OPENWABA_META_APP_SECRET": APP_SECRET,
            "OPENWABA_META_GRAPH_URL": "http://127.0.0.1:9",  # text messages need nothing from Graph
            "OPENWABA_LOG_LEVEL": "warning",
        }

    def handled(self) -> int:
        import sqlite3

        conn = sqlite3.connect(f"file:{self.data / 'openwaba.db'}?mode=ro", uri=True, timeout=5)
        try:
            return int(conn.execute("SELECT count(*) FROM events WHERE kind = 'message'").fetchone()[0])
        finally:
            conn.close()


# --- the load (run in its own process: `receiver_ack.py load`) -----------------------------------


def webhook_body(i: int) -> bytes:
    from openwaba.domain.payloads import render_cloud

    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_ID},
        "contacts": [
            {"profile": {"name": "Sheena Nelson"}, "wa_id": "16505551234", "user_id": "US.1349120865530274191"}
        ],
        "messages": [
            {
                "from": "16505551234",
                "id": f"wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdF{i:010d}=",
                "timestamp": "1749416383",
                "type": "text",
                "text": {"body": "Does it come in another color?"},
            }
        ],
    }
    return render_cloud("102290129340398", value)


def load(url: str, rate: float, duration: float, first: int, out: str, path: str = "/webhook") -> None:
    import loadgen

    host, _, port = url.removeprefix("http://").partition(":")
    count = int(rate * duration) + 1
    requests = []
    for i in range(first, first + count):  # prepared up front: signing is not part of the timed loop
        body = webhook_body(i)
        signature = "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
        requests.append(
            f"POST {path} HTTP/1.1\r\nHost: ".encode()
            + f"{host}:{port}".encode()
            + b"\r\nContent-Type: application/json\r\nX-Hub-Signature-256: "
            + signature.encode()
            + b"\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )

    async def drive() -> dict[str, Any]:
        pool = loadgen.Pool(host, int(port), CONNECTIONS, lambda i: requests[i])
        await pool.open()
        t0 = time.monotonic()
        sent = 0
        while sent < count and time.monotonic() < t0 + duration:
            due = min(count, int((time.monotonic() - t0) * rate) + 1)
            while sent < due:
                pool.dispatch(sent, t0 + sent / rate)
                sent += 1
            await asyncio.sleep(max(0.0, t0 + sent / rate - time.monotonic()))
        t_stop = time.monotonic()
        try:
            await asyncio.wait_for(pool.all_done.wait(), 30)
        except TimeoutError:
            print(f"load: {pool.outstanding} requests unanswered after 30 s", file=sys.stderr)
        records = [r[:4] for r in pool.results if r is not None]
        return {"t0": t0, "t_stop": t_stop, "requests": records}

    import uvloop

    result = uvloop.run(drive())
    Path(out).write_text(json.dumps(result))


# --- the harness ------------------------------------------------------------------------------


def ensure_pywa() -> str:
    if importlib.util.find_spec("pywa") is None:
        harness.log(f"installing {PYWA} into {sys.prefix} (benchmark only)")
        command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", PYWA]
        subprocess.run(command, check=True, timeout=600)
    return importlib.metadata.version("pywa")


def measure(
    server: ScriptServer | GatewayServer, workdir: Path, args: argparse.Namespace, first: int
) -> dict[str, float]:
    out = workdir / f"load-{server.name}-{first}.json"
    handled0 = server.handled()
    harness.wait_quiet(server.name)
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "load",
        "--url",
        server.url,
        "--rate",
        str(args.rate),
        "--duration",
        str(args.duration),
        "--first",
        str(first),
        "--out",
        str(out),
        "--path",
        server.path,
    ]
    with harness.Meter(server.pids()) as meter:
        subprocess.run(command, check=True, timeout=args.duration + 60)
    data = json.loads(out.read_text())
    acked = [r for r in data["requests"] if r[3] == 200]
    window = data["t_stop"] - data["t0"]
    from_sched = sorted((r[2] - r[0]) * 1000 for r in acked) or [0.0]
    from_write = sorted((r[2] - r[1]) * 1000 for r in acked) or [0.0]
    t_done = time.monotonic()
    deadline = t_done + 60
    while (handled := server.handled() - handled0) < len(acked) and time.monotonic() < deadline:
        time.sleep(0.05)
    return {
        "acks_per_s": len(acked) / window,
        "p50_ms": _pct(from_sched, 50),
        "p99_ms": _pct(from_sched, 99),
        "write_p50_ms": _pct(from_write, 50),
        "write_p99_ms": _pct(from_write, 99),
        "errors": len(data["requests"]) - len(acked),
        "cpu_pct": meter.pct,
        "cpu_us_per_ack": meter.cpu / len(acked) * 1e6 if acked else 0.0,
        "other_pct": meter.other_pct,
        "steal_pct": meter.steal_pct,
        "handled_all": float(handled >= len(acked)),
        "drain_s": time.monotonic() - t_done,
        "handled_per_s": handled / (window + time.monotonic() - t_done) if handled else 0.0,
    }


def commit_floor(workdir: Path, commits: int = 400) -> dict[str, float]:
    """Latency of a bare SQLite commit (WAL, synchronous=FULL, 8 rows) on the queue's disk: the floor under
    any durable ack. Measured between runs, at about the commit rate the receiver sees at 2,000/s."""
    import sqlite3

    conn = sqlite3.connect(workdir / "floor.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("CREATE TABLE IF NOT EXISTS t (body BLOB)")
    times = []
    for _ in range(commits):
        t0 = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO t VALUES (?)", [(b"x" * 540,)] * 8)
        conn.execute("COMMIT")
        times.append((time.perf_counter() - t0) * 1000)
        time.sleep(0.002)
    conn.close()
    times.sort()
    return {"commit_p50_ms": _pct(times, 50), "commit_p99_ms": _pct(times, 99)}


def _pct(values: list[float], p: float) -> float:
    return values[min(len(values) - 1, int(len(values) * p / 100))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", nargs="?", default="bench", choices=("bench", "serve-openwaba", "serve-pywa", "load"))
    parser.add_argument("--rate", type=float, default=2000.0)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", default=str(BENCH / "RESULTS.md"), help="'-': print only")
    parser.add_argument("--no-pywa", action="store_true", help="measure openwaba.receiver alone")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--quiet-wait", type=float, default=15.0, help="s to wait per run for a quiet machine")
    parser.add_argument("--quiet-budget", type=float, default=120.0, help="s of such waiting in all")
    parser.add_argument("--quiet-limit", type=float, default=25.0, help="%% of a core busy that counts as quiet")
    parser.add_argument("--port", type=int)
    parser.add_argument("--db")
    parser.add_argument("--url")
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--path", default="/webhook")
    parser.add_argument("--no-gateway", action="store_true", help="leave out openwaba serve's /meta/webhook")
    args = parser.parse_args()
    if args.mode == "serve-openwaba":
        serve_openwaba(args.port, args.db)
    elif args.mode == "serve-pywa":
        serve_pywa(args.port)
    elif args.mode == "load":
        load(args.url, args.rate, args.duration, args.first, args.out, args.path)
    else:
        bench(args)


def bench(args: argparse.Namespace) -> None:
    harness.QUIET.update(wait=args.quiet_wait, budget=args.quiet_budget, limit=args.quiet_limit)
    pywa_version = None if args.no_pywa else ensure_pywa()
    workdir = Path(tempfile.mkdtemp(prefix="receiver-ack-"))
    servers: list[ScriptServer | GatewayServer] = []
    results: dict[str, list[dict[str, float]]] = {}
    floors: list[dict[str, float]] = []
    first = 0
    try:
        servers.append(ScriptServer(workdir, "openwaba", ["--db", str(workdir / "webhooks.db")]))
        if pywa_version:
            servers.append(ScriptServer(workdir, "pywa"))
        if not args.no_gateway:
            servers.append(GatewayServer(workdir))
        results.update({s.name: [] for s in servers})
        for server in servers:
            server.start()
        for server in servers:  # warm-up, not reported
            measure(server, workdir, argparse.Namespace(rate=args.rate, duration=2.0), first)
            first += int(args.rate * 2) + 1
        for run in range(args.runs):
            floors.append(commit_floor(workdir))
            harness.log(f"run {run + 1} disk: " + ", ".join(f"{k} {v:.2f}" for k, v in floors[-1].items()))
            for server in servers:
                figures = measure(server, workdir, args, first)
                first += int(args.rate * args.duration) + 1
                results[server.name].append(figures)
                harness.log(f"run {run + 1} {server.name}: " + ", ".join(f"{k} {v:.2f}" for k, v in figures.items()))
    finally:
        for server in servers:
            server.stop()
        if not args.keep:
            subprocess.run(["rm", "-rf", str(workdir)], check=False)
    report(results, floors, args, pywa_version)


def report(
    results: dict[str, list[dict[str, float]]],
    floors: list[dict[str, float]],
    args: argparse.Namespace,
    pywa_version: str | None,
) -> None:
    import uvicorn
    import uvloop

    def cell(name: str, key: str, fmt: str = "{:,.1f}") -> str:
        values = [r[key] for r in results[name]]
        return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}–{fmt.format(max(values))})"

    command = " ".join(["python", "bench/receiver_ack.py", *sys.argv[1:]])
    lines = [
        f"\n## Receiver ack: openwaba.receiver vs pywa ({dt.datetime.now().strftime('%Y-%m-%d %H:%M')})\n",
        f"`{command}`: open loop {args.rate:,.0f} req/s for {args.duration:g} s over {CONNECTIONS} connections, "
        f"{args.runs} runs per server (A/B alternating), median (min–max).",
        f"Machine: {platform.node()}, {_cpu_model()}, {harness.os.cpu_count()} cores, kernel {platform.release()}, "
        f"Python {platform.python_version()}, uvicorn {uvicorn.__version__}, uvloop {uvloop.__version__}"
        + (f", pywa {pywa_version}" if pywa_version else "")
        + ".\n",
        "| server | acks/s | p50 ms | p99 ms | p99 ms from write | errors | CPU % | CPU µs/ack | handled/s "
        "| drain s | other load % |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in results:
        lines.append(
            f"| {name} | {cell(name, 'acks_per_s', '{:,.0f}')} | {cell(name, 'p50_ms', '{:.2f}')} | "
            f"{cell(name, 'p99_ms', '{:.2f}')} | {cell(name, 'write_p99_ms', '{:.2f}')} | "
            f"{cell(name, 'errors', '{:.0f}')} | {cell(name, 'cpu_pct', '{:.0f}')} | "
            f"{cell(name, 'cpu_us_per_ack', '{:.0f}')} | "
            f"{cell(name, 'handled_per_s', '{:,.0f}')} | {cell(name, 'drain_s', '{:.2f}')} | "
            f"{cell(name, 'other_pct', '{:.0f}')} |"
        )
    if "pywa" in results:

        def median(name: str, key: str) -> float:
            return statistics.median(r[key] for r in results[name])

        lines.append(
            f"\nRatio openwaba/pywa: acks/s {median('openwaba', 'acks_per_s') / median('pywa', 'acks_per_s'):.2f}×, "
            f"p99 {median('openwaba', 'p99_ms') / median('pywa', 'p99_ms'):.2f}× "
            f"(lower is better), CPU {median('openwaba', 'cpu_pct') / median('pywa', 'cpu_pct'):.2f}×."
        )
    floor = ", ".join(f"{statistics.median(f[k] for f in floors):.2f}" for k in ("commit_p50_ms", "commit_p99_ms"))
    lines.append(
        f"Disk floor (a bare SQLite WAL `synchronous=FULL` commit on the same disk, measured before each round; "
        f"median p50, p99 ms): {floor}."
    )
    for name, what in (("openwaba", "openwaba.receiver ack"), ("gateway", "openwaba serve /meta/webhook 200")):
        if name not in results:
            continue
        p99 = statistics.median(r["p99_ms"] for r in results[name])
        lines.append(
            f"Target: {what} p99 < {TARGET_P99_MS:g} ms: {'met' if p99 < TARGET_P99_MS else 'MISSED'}"
            f" ({p99:.2f} ms at {args.rate:,.0f}/s)."
        )
    lines.append("")
    text = "\n".join(lines)
    print(text)
    if args.out != "-":
        with open(args.out, "a") as f:
            f.write(text)


def _cpu_model() -> str:
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


if __name__ == "__main__":
    main()

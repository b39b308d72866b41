#!/usr/bin/env python3
"""Idle cost of a large backlog: RSS and CPU of `openwaba serve` with N pending deliveries.

    .venv/bin/python bench/pending_memory.py --pending 1000000

1. creates a data directory and starts openwaba once, so that it creates the schema
   and seeds the sandbox number; one message is sent before any webhook is set, so
   its three status events are stored without deliveries and one of their bodies
   serves as a realistic payload; the webhook is then set to a URL on a port where
   nothing listens (every attempt is refused), and openwaba is stopped (SIGTERM);
2. bulk-inserts N events and N deliveries into the real schema (tables `events` and
   `deliveries`, as in storage/sql/sqlite/migrations/0001_initial.sql), all pending
   for that destination: most with `next_attempt_at` an hour ahead (pending, not
   due), a fraction (`--due-fraction`) due now;
3. starts `openwaba serve` again, times until it answers, waits until every due
   delivery has had its first (refused) attempt, then samples VmRSS
   (/proc/<pid>/status) and utime+stime (/proc/<pid>/stat) for `--rest` seconds,
   then times GET /metrics, and a POST /messages alone and while a /metrics
   request is being answered;
4. prints a Markdown row for bench/RESULTS.md.

Peak RSS is the kernel's high-water mark (VmHWM) of the server process over the
whole run (start-up, due burst, rest, /metrics). "CPU % at rest" is the server's
CPU time during the rest window divided by its length (100 % = one core). The rest
window runs with the default retry schedule, so it includes the first retry
(after 5 s) of the due deliveries.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from run import HOST, Openwaba, cpu_seconds, free_port, machine  # noqa: E402  (bench/run.py: servers started by the harness)
from run import http as request  # noqa: E402

USER = "15551230001"
BATCH = 50_000


def time_send(server: Openwaba) -> float:
    """Milliseconds for one POST /messages (answered once its row is committed)."""
    t = time.perf_counter()
    status, body = request(
        "POST",
        server.url + "/messages",
        {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": USER,
            "type": "text",
            "text": {"body": "timed"},
        },
        timeout=120,
    )
    assert status == 200, (status, body)
    return (time.perf_counter() - t) * 1000


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM in kB."""
    values = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                values[name] = int(rest.split()[0])
    return values


def described_machine() -> str:
    info = machine()
    return f"{info['nproc']} × {info['cpu']}"


def db(path: Path, readonly: bool = False) -> sqlite3.Connection:
    if readonly:
        return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    return sqlite3.connect(path, timeout=30, isolation_level=None)


def prepare(server: Openwaba, refused_url: str) -> tuple[int, int, bytes]:
    """First start: schema, seed, a sample status body, the webhook. Returns (channel, destination, body)."""
    server.start(timeout=60)
    try:
        status, body = request(
            "POST",
            server.url + "/messages",
            {
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": USER,
                "type": "text",
                "text": {"body": "a sample for the payload"},
            },
        )
        assert status == 200, (status, body)
        path = server.data_dir / "openwaba.db"
        deadline = time.monotonic() + 30
        while True:  # its statuses are stored a moment after the answer
            with db(path, readonly=True) as conn:
                rows = conn.execute("SELECT channel_id, body FROM events WHERE kind = 'status' LIMIT 1").fetchall()
            if rows:
                break
            if time.monotonic() > deadline:
                sys.exit("the sample message's status events never appeared")
            time.sleep(0.05)
        status, body = request("POST", server.url + "/v1/configs/webhook", {"url": refused_url})
        assert status == 200, (status, body)
    finally:
        server.stop()
    with db(path, readonly=True) as conn:
        channel_id, sample = conn.execute(
            "SELECT channel_id, body FROM events WHERE kind = 'status' LIMIT 1"
        ).fetchone()
        (destination_id,) = conn.execute(
            "SELECT id FROM destinations WHERE scope = ? AND kind = 'main' AND removed = 0", (f"channel:{channel_id}",)
        ).fetchone()
        assert conn.execute("SELECT count(*) FROM deliveries").fetchone()[0] == 0
    return channel_id, destination_id, bytes(sample)


def bulk_insert(path: Path, n: int, due_every: int, channel_id: int, destination_id: int, body: bytes) -> int:
    """N events + N pending deliveries; every `due_every`-th one due now. Returns how many are due."""
    now = time.time()
    conn = db(path)
    conn.execute("PRAGMA synchronous=OFF")  # a bulk load; openwaba is not running
    due = 0
    t0 = time.monotonic()
    for start in range(0, n, BATCH):
        events, deliveries = [], []
        for i in range(start, min(n, start + BATCH)):
            event_id = f"evt_bench{i:021d}"
            created = now - 600 + (i % 600)  # happened in the last ten minutes
            order_key = f"{channel_id}:1555{i % 200_000:07d}"  # 200,000 conversations
            if due_every and i % due_every == 0:
                next_at = now - 1
                due += 1
            else:
                next_at = now + 3600 + (i % 600)  # pending, not due for an hour
            events.append((event_id, channel_id, "status", f"wamid.bench{i}", order_key, created, body))
            deliveries.append((event_id, destination_id, "pending", 0, created, next_at, created + 86_400, order_key))
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO events (id, channel_id, kind, wamid, order_key, created_at, body)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            events,
        )
        conn.executemany(
            "INSERT INTO deliveries (event_id, destination_id, state, attempts, created_at, next_attempt_at, deadline,"
            " order_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            deliveries,
        )
        conn.execute("COMMIT")
        done = min(n, start + BATCH)
        print(f"\r  inserted {done:,}/{n:,} ({time.monotonic() - t0:.0f} s)", end="", file=sys.stderr, flush=True)
    if n:
        print(file=sys.stderr)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return due


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pending", type=int, default=1_000_000, help="pending deliveries to insert")
    parser.add_argument("--due-fraction", type=float, default=0.001, help="fraction of them due now")
    parser.add_argument("--rest", type=float, default=20.0, help="seconds of sampling at rest")
    parser.add_argument("--workdir", type=Path, default=None, help="where to create the data directory")
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    args = parser.parse_args()

    base = Path(tempfile.mkdtemp(prefix="openwaba-bench-", dir=args.workdir))
    data_dir = base / "data"
    refused_url = f"http://{HOST}:{free_port()}/hook"  # nothing listens there: every attempt is refused
    server = Openwaba(base, data_dir=data_dir)
    try:
        print(f"data directory {data_dir}; webhook {refused_url} (refuses connections)", file=sys.stderr)
        channel_id, destination_id, body = prepare(server, refused_url)
        due_every = round(1 / args.due_fraction) if args.due_fraction > 0 else 0
        t0 = time.monotonic()
        due = bulk_insert(data_dir / "openwaba.db", args.pending, due_every, channel_id, destination_id, body)
        insert_s = time.monotonic() - t0
        size_mb = sum(p.stat().st_size for p in data_dir.glob("openwaba.db*")) / 1e6
        print(
            f"  {args.pending:,} pending ({due:,} due now) in {insert_s:.0f} s; database {size_mb:,.0f} MB",
            file=sys.stderr,
        )

        startup_s = server.start(timeout=600)
        pid = server.pid
        print(f"  openwaba answers after {startup_s:.2f} s", file=sys.stderr)

        # The due ones: wait (bounded) until each has had its first, refused, attempt.
        t0 = time.monotonic()
        with db(data_dir / "openwaba.db", readonly=True) as conn:
            while conn.execute("SELECT count(*) FROM attempts").fetchone()[0] < due:
                if time.monotonic() - t0 > 600:
                    sys.exit("the due deliveries were not attempted within 600 s")
                time.sleep(0.2)
        burst_s = time.monotonic() - t0
        print(f"  {due:,} due deliveries attempted after {burst_s:.1f} s more", file=sys.stderr)

        # At rest.
        rss: list[int] = []
        cpu0, w0 = cpu_seconds([pid]), time.monotonic()
        while time.monotonic() - w0 < args.rest:
            rss.append(proc_status(pid)["VmRSS"])
            time.sleep(0.5)
        cpu_pct = 100 * (cpu_seconds([pid]) - cpu0) / (time.monotonic() - w0)
        rest_rss_mb = statistics.median(rss) / 1024

        # GET /metrics (no key needed): what a Prometheus scrape costs.
        timings, pending_gauge = [], None
        for _ in range(5):
            t = time.perf_counter()
            status, text = request("GET", server.url + "/metrics", timeout=120)
            timings.append((time.perf_counter() - t) * 1000)
            assert status == 200, status
            for line in text.decode().splitlines():
                if line.startswith("openwaba_deliveries_pending "):
                    pending_gauge = float(line.split()[1])
        # A send while a scrape is running: /metrics and commits share one SQLite thread.
        send_alone_ms = time_send(server)
        scrape = threading.Thread(target=request, args=("GET", server.url + "/metrics"), kwargs={"timeout": 120})
        scrape.start()
        time.sleep(statistics.median(timings) / 1000 / 3)  # a third into the scrape
        send_during_ms = time_send(server)
        scrape.join()
        peak_mb = proc_status(pid)["VmHWM"] / 1024
        attempts = 0
        with db(data_dir / "openwaba.db", readonly=True) as conn:
            attempts = conn.execute("SELECT count(*) FROM attempts").fetchone()[0]
        print(
            f"  rest: CPU {cpu_pct:.1f} %, RSS median {rest_rss_mb:.0f} MB, max {max(rss) / 1024:.0f} MB; "
            f"peak (VmHWM) {peak_mb:.0f} MB; /metrics {', '.join(f'{t:.0f}' for t in timings)} ms "
            f"(pending gauge {pending_gauge:,.0f}); {attempts:,} attempts recorded in all; "
            f"POST /messages {send_alone_ms:.0f} ms alone, {send_during_ms:.0f} ms during a /metrics scrape",
            file=sys.stderr,
        )
    finally:
        server.stop()
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)

    print(
        "| date | machine | pending (due now) | start-up | due attempted after | peak RSS | RSS at rest "
        "| CPU at rest | GET /metrics (median / max) | POST /messages alone / during a scrape |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    print(
        f"| {dt.date.today().isoformat()} | {described_machine()} | {args.pending:,} ({due:,}) | {startup_s:.2f} s "
        f"| {burst_s:.1f} s | {peak_mb:.0f} MB | {rest_rss_mb:.0f} MB | {cpu_pct:.1f} % "
        f"| {statistics.median(timings):.0f} / {max(timings):.0f} ms | {send_alone_ms:.0f} / {send_during_ms:.0f} ms |"
    )


if __name__ == "__main__":
    main()

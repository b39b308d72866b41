#!/usr/bin/env python3
"""The openwaba benchmark, one command:

    .venv/bin/python bench/run.py [--scenario a,b,c,d,e,f] [--duration 10] [--runs 3] [--out bench/RESULTS.md]

For each scenario it starts a real `openwaba serve` on 127.0.0.1 (fresh temporary
data directory, fixed API key, rate limits off), a load generator in a separate
process (wrk for (a), bench/loadgen.py otherwise) and, where webhooks are involved,
a separate-process receiver (bench/receiver.py); every load run is bounded in time.
It prints, per run and as medians: throughput, p50/p99 latency, the gateway's CPU
(utime+stime from /proc/<pid>/stat over the run, as % of one core) and its peak RSS
(VmHWM), and appends a dated section to bench/RESULTS.md.

Scenarios (see bench/README.md for what each measures and what is approximate):
  a  send path: wrk -t2 -c64 POST /messages to a number that is not a simulated user,
     side by side with Stoplight Prism mocking the same operation and nginx answering 200
  b  end to end: sends to simulated users at a fixed rate; all three status webhooks
  c  fan-out: inbound events to 4 destinations (main + 3 multi-webhook, fanout independent)
  d  inbound: simulated users' messages -> main webhook
  e  retry storm: a receiver answering 500 to half of the attempts, short retry delays
  f  idle cost with 1,000,000 pending deliveries (runs bench/pending_memory.py)
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
HOST = "127.0.0.1"
API_KEY = "bench-run-key"
NON_USER = "15559990000"  # not a simulated user: the sandbox answers with one `failed` status (131026)
FIRST_USER = "15551230001"  # the first simulated user a fresh openwaba seeds (its window is open)
# (a) runs openwaba as one process and as two workers, side by side
A_VARIANTS = (("openwaba", {}), ("openwaba, 2 workers", {"OPENWABA_WORKERS": "2"}))
QUIET_SANDBOX = {"OPENWABA_SANDBOX_STATUSES": "false"}  # (a): status simulation off
USERS = [f"1555200{i:04d}" for i in range(256)]  # simulated users for (b)-(e): 256 conversations
PRISM_PACKAGE = "@stoplight/prism-cli@5.14.2"
WARMUP_S = 3.0
TICK = os.sysconf("SC_CLK_TCK")
EXTRA_ENV: dict[str, str] = {}  # --env: applied to every openwaba started
DATABASE: dict[str, Any] = {"name": "sqlite", "fresh": None}  # --database postgres: a database per openwaba

TARGETS = {
    "a_rps": 8000.0,  # accepted sends/s at 64 connections
    "a_p99_ms": 20.0,
    "b_mps": 1000.0,  # messages/s end to end (all three statuses delivered)
    "b_sent_p50_ms": 10.0,
    "c_dps": 10000.0,  # webhook deliveries/s
    "f_rss_mb": 300.0,  # with 1,000,000 pending
}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def group_members(pgid: int) -> list[int]:
    """Every live process of a process group (each server runs in its own session)."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields[0] is state (field 3), so pgrp (5) is 2
            members.append(int(entry))
    return members


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime (all threads) summed over the processes, in seconds."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime (14), stime (15)
    return total / TICK


def main_thread_seconds(pid: int) -> float:
    """utime + stime of the process' main thread alone (the event loop, for openwaba)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def vm_hwm_mb(pids: list[int]) -> float:
    """Peak resident set (VmHWM) summed over the processes, in MB (MiB)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def http(method: str, url: str, body: object = None, timeout: float = 10.0) -> tuple[int, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"D360-API-KEY": API_KEY})
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


class Server:
    """A child process in its own session; stopped by signalling its process group (by id)."""

    name = "server"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.log_path = workdir / f"{self.name}-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        return dict(os.environ)

    def ready(self) -> bool:
        try:
            with socket.create_connection((HOST, self.port), timeout=1):
                return True
        except OSError:
            return False

    def start(self, timeout: float = 60.0) -> float:
        t0 = time.monotonic()
        with open(self.log_path, "ab") as out:
            self.process = subprocess.Popen(
                self.command(),
                stdout=out,
                stderr=out,
                stdin=subprocess.DEVNULL,
                env=self.env(),
                cwd=self.workdir,
                start_new_session=True,
            )
        while not self.ready():
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}; see {self.log_path}")
            if time.monotonic() - t0 > timeout:
                self.stop()
                raise RuntimeError(f"{self.name} did not answer within {timeout:g} s; see {self.log_path}")
            time.sleep(0.05)
        return time.monotonic() - t0

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def pids(self) -> list[int]:
        return group_members(self.pid)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, sig)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
            self.process.wait()

    def __enter__(self) -> Server:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def openwaba_executable() -> str:
    beside = Path(sys.executable).parent / "openwaba"
    if beside.exists():
        return str(beside)
    found = shutil.which("openwaba")
    if found is None:
        sys.exit("no `openwaba` script next to this interpreter or on PATH (pip install -e .)")
    return found


class Openwaba(Server):
    name = "openwaba"

    def __init__(
        self,
        workdir: Path,
        extra_env: dict[str, str] | None = None,
        users: list[str] | None = None,
        data_dir: Path | None = None,
    ):
        super().__init__(workdir)
        # A data directory given by the caller outlives restarts; a fresh one is removed at stop.
        self.owns_data = data_dir is None
        self.data_dir = data_dir or Path(tempfile.mkdtemp(prefix="openwaba-data-", dir=workdir))
        self.extra_env = extra_env or {}
        self.users = users
        fresh = DATABASE["fresh"]
        self.database_url: str | None = fresh() if fresh is not None else None

    def command(self) -> list[str]:
        return [
            openwaba_executable(),
            "serve",
            "--host",
            HOST,
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
        ]

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPENWABA_")}
        env.update(OPENWABA_SANDBOX_API_KEY=API_KEY, OPENWABA_RATE_LIMITS="false", OPENWABA_LOG_LEVEL="warning")
        if self.users:
            env["OPENWABA_SANDBOX_USERS"] = ",".join(self.users)
        env.update(self.extra_env)
        env.update(EXTRA_ENV)
        if self.database_url is not None:
            env["OPENWABA_DATABASE_URL"] = self.database_url
        return env

    def gateway_pids(self) -> list[int]:
        """The serving process first, then (with OPENWABA_WORKERS) its workers: CPU and RSS count them all."""
        return [self.pid, *(pid for pid in self.pids() if pid != self.pid)]

    def ready(self) -> bool:
        try:
            return http("GET", self.url + "/health_status", timeout=2)[0] == 200
        except OSError:
            return False

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> None:
        super().stop(sig, timeout)
        if self.owns_data:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def configure(self, path: str, body: object) -> None:
        status, answer = http("POST", self.url + path, body)
        if status != 200:
            raise RuntimeError(f"POST {path} answered {status}: {answer[:300]!r}")


class Nginx(Server):
    name = "nginx"

    def __init__(self, workdir: Path, workers: int = 1) -> None:
        super().__init__(workdir)
        self.prefix = Path(tempfile.mkdtemp(prefix="nginx-", dir=workdir))
        (self.prefix / "tmp").mkdir()
        conf = (BENCH / "nginx.conf").read_text()
        conf = conf.replace("__PORT__", str(self.port)).replace("__WORKERS__", str(workers))
        (self.prefix / "nginx.conf").write_text(conf)

    def command(self) -> list[str]:
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        return [nginx, "-p", str(self.prefix), "-c", str(self.prefix / "nginx.conf"), "-g", "daemon off;"]


class Prism(Server):
    name = "prism"

    def __init__(self, workdir: Path, document: Path) -> None:
        super().__init__(workdir)
        self.document = document

    def command(self) -> list[str]:
        return ["npx", "-y", PRISM_PACKAGE, "mock", "-h", HOST, "-p", str(self.port), str(self.document)]


class Receiver(Server):
    name = "receiver"

    def __init__(self, workdir: Path, fail_ratio: float = 0.0) -> None:
        super().__init__(workdir)
        self.fail_ratio = fail_ratio
        self.out = workdir / f"arrivals-{self.port}.json"

    def command(self) -> list[str]:
        return [
            sys.executable,
            str(BENCH / "receiver.py"),
            "--port",
            str(self.port),
            "--out",
            str(self.out),
            "--fail-ratio",
            str(self.fail_ratio),
        ]

    def stats(self) -> dict[str, int]:
        with urllib.request.urlopen(self.url + "/__stats", timeout=5) as response:
            return dict(json.loads(response.read()))

    def finish(self) -> list[list[Any]]:
        """Stop it and return its records: [t, path, code, webhook_id, kind, wamid, status]."""
        self.stop(timeout=120)
        records: list[list[Any]] = json.loads(self.out.read_text())["records"]
        return records


def system_jiffies() -> tuple[int, int]:
    """(busy, steal) jiffies of the whole machine from /proc/stat (busy = user+nice+system+irq+softirq)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return user + nice + system + irq + softirq, steal


def children_and_self_cpu() -> float:
    """CPU seconds of this harness plus every child it has reaped (wrk, loadgen.py)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


@dataclass
class Meter:
    """CPU seconds and peak RSS of the measured processes over a window, and what else the machine did.

    `other_pct` is the machine's busy CPU (from /proc/stat) minus the gateway, the `also` processes
    (receiver), this harness and the children it reaped inside the window (wrk, loadgen.py):
    other engineers' work, the kernel's loopback work not charged to a process, and so on.
    """

    pids: list[int]
    also: list[int] = field(default_factory=list)
    t0: float = 0.0
    cpu0: float = 0.0
    wall: float = 0.0
    cpu: float = 0.0
    hwm_mb: float = 0.0
    also_cpu: float = 0.0
    helpers_cpu: float = 0.0
    busy_pct: float = 0.0
    steal_pct: float = 0.0
    other_pct: float = 0.0
    main_cpu: float = 0.0

    def __enter__(self) -> Meter:
        self._sys0 = system_jiffies()
        self._helpers0 = children_and_self_cpu()
        self._also0 = cpu_seconds(self.also)
        self._main0 = main_thread_seconds(self.pids[0]) if self.pids else 0.0
        self.t0, self.cpu0 = time.monotonic(), cpu_seconds(self.pids)
        return self

    def __exit__(self, *exc: object) -> None:
        self.cpu = cpu_seconds(self.pids) - self.cpu0
        self.main_cpu = (main_thread_seconds(self.pids[0]) if self.pids else 0.0) - self._main0
        self.wall = time.monotonic() - self.t0
        self.also_cpu = cpu_seconds(self.also) - self._also0
        self.helpers_cpu = children_and_self_cpu() - self._helpers0
        busy, steal = system_jiffies()
        self.busy_pct = 100 * (busy - self._sys0[0]) / TICK / self.wall
        self.steal_pct = 100 * (steal - self._sys0[1]) / TICK / self.wall
        ours = self.cpu + self.also_cpu + self.helpers_cpu
        self.other_pct = max(0.0, self.busy_pct - 100 * ours / self.wall)
        self.hwm_mb = vm_hwm_mb(self.pids)

    @property
    def pct(self) -> float:
        return 100 * self.cpu / self.wall if self.wall else 0.0

    @property
    def main_pct(self) -> float:
        return 100 * self.main_cpu / self.wall if self.wall else 0.0


QUIET = {"wait": 15.0, "limit": 25.0, "budget": 120.0}  # --quiet-wait, --quiet-limit, --quiet-budget


def wait_quiet(label: str) -> float:
    """Wait (at most QUIET["wait"] s per run, QUIET["budget"] s in all) until the machine's busy CPU over
    1 s is below QUIET["limit"] % of one core (our idle servers included). Returns the last busy %."""
    deadline = time.monotonic() + min(QUIET["wait"], QUIET["budget"])
    t_start = time.monotonic()
    while True:
        b0, t0 = system_jiffies()[0], time.monotonic()
        time.sleep(1.0)
        busy = 100 * (system_jiffies()[0] - b0) / TICK / (time.monotonic() - t0)
        if busy < QUIET["limit"]:
            break
        if time.monotonic() >= deadline:
            log(
                f"{label}: the machine stays busy ({busy:.0f} % of a core besides this benchmark's idle "
                f"servers); measuring anyway ({max(0.0, QUIET['budget'] - (time.monotonic() - t_start)):.0f} s "
                "of waiting budget left)"
            )
            break
        time.sleep(2.0)
    QUIET["budget"] = max(0.0, QUIET["budget"] - (time.monotonic() - t_start))
    return busy


# --------------------------------------------------------------------------- load generators


def wrk(url: str, body_file: Path, duration: float, connections: int = 64) -> dict[str, Any]:
    command = [
        "timeout",
        str(int(duration + 30)),
        "wrk",
        "-t2",
        f"-c{connections}",
        f"-d{duration:g}s",
        "--latency",
        "-s",
        str(BENCH / "post.lua"),
        url,
        "--",
        API_KEY,
        str(body_file),
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    for line in done.stdout.splitlines():
        if line.startswith("WRK_JSON "):
            result: dict[str, Any] = json.loads(line[len("WRK_JSON ") :])
            secs = result["duration_us"] / 1e6
            result["errors"] = sum(result[k] for k in ("connect", "read", "write", "status", "timeout"))
            result["ok_rps"] = (result["requests"] - result["status"]) / secs
            result["p50_ms"], result["p99_ms"] = result["p50_us"] / 1000, result["p99_us"] / 1000
            return result
    raise RuntimeError(f"wrk gave no summary (exit {done.returncode}): {done.stdout[-500:]} {done.stderr[-500:]}")


def loadgen(
    workdir: Path,
    url: str,
    mode: str,
    rate: float,
    duration: float,
    users: list[str],
    connections: int = 64,
    grace: float = 30.0,
) -> tuple[subprocess.Popen[bytes], Path]:
    out = workdir / f"loadgen-{time.monotonic_ns()}.json"
    command = [
        sys.executable,
        str(BENCH / "loadgen.py"),
        "--url",
        url,
        "--api-key",
        API_KEY,
        "--mode",
        mode,
        "--users",
        ",".join(users),
        "--rate",
        str(rate),
        "--duration",
        str(duration),
        "--connections",
        str(connections),
        "--grace",
        str(grace),
        "--out",
        str(out),
    ]
    return subprocess.Popen(command, stdin=subprocess.DEVNULL, start_new_session=True), out


# --------------------------------------------------------------------------- statistics


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); nan for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[rank]


def med(values: list[float]) -> float:
    clean = [v for v in values if v == v]
    return statistics.median(clean) if clean else float("nan")


def fmt(value: float, digits: int = 0) -> str:
    if value != value:
        return "–"
    return f"{value:,.{digits}f}"


# --------------------------------------------------------------------------- profiling


_WRITER_JOBS = (
    "ingest.<locals>.op",
    "record_attempts",
    "claim_due",
    "insert_outbound",
    "mark_dispatched",
    "last_inbound_at",
    "next_due_at",
    "channel_for_key",
    "queue_stats",
)


def _activity(thread: str, frames: list[str]) -> str | None:
    """What one sample of openwaba's event-loop thread or SQLite writer thread was doing."""
    if thread == "MainThread":
        runner = [i for i, f in enumerate(frames) if f.startswith("Runner.run ")]
        below = frames[runner[-1] + 1 :] if runner else frames
        text = ";".join(below)
        if not below:
            return "event loop itself (uvloop C code: epoll, socket I/O, GIL re-acquisition)"
        if "openwaba/http/" in text:
            return "HTTP: openwaba handler (auth, validation, wamid, commit wait, JSON answer)"
        if any(x in text for x in ("Sending._hand_over", "run_handover", "SandboxConnector.send", "Ingest.")):
            return "hand-over: sandbox statuses → Ingest (render, ids, notification)"
        if "services/delivery.py" in text or "aiohttp/" in text:
            return "dispatcher + aiohttp client (webhook POSTs)"
        handler = (
            "services/sending.py",
            "services/limits.py",
            "services/accounts.py",
            "services/media.py",
            "domain/messages.py",
            "SandboxConnector.check",
        )
        if any(x in text for x in handler):
            return "HTTP: openwaba handler (auth, validation, wamid, commit wait, JSON answer)"
        if "openwaba/" not in text and ("starlette/" in text or "uvicorn/" in text):
            return "HTTP: uvicorn + Starlette only (parsing, middleware, routing, Request, writing)"
        return "other callbacks (storage futures, json, …)"
    if "sqlite" in thread:
        text = ";".join(frames)
        for job in _WRITER_JOBS:
            if job in text:
                return f"writer: {job.split('.')[0]}"
        if frames and frames[-1].startswith("_run_batch "):
            return "writer: _run_batch itself (BEGIN IMMEDIATE, SAVEPOINT/RELEASE per job, COMMIT + fsync)"
        if frames and frames[-1].startswith("SQLiteStorage._serve "):
            return "writer: _serve (queue hand-off)"
        return "writer: other"
    return None


def profile_summary(raw: Path, duration: float, rate: int, top: int = 14) -> dict[str, Any]:
    """Aggregate py-spy's raw (collapsed) output: per thread, self and inclusive time per function,
    and what the event-loop and writer threads spent their samples on."""
    per_thread: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    activities: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = stack.split(";")
        thread = frames[0].split(": ", 1)[-1]
        if thread.startswith("uvloop_") or thread.startswith("ThreadPoolExecutor"):
            continue  # idle executor threads (py-spy counts their queue wait as active)
        per_thread[thread] += count
        total += count
        activity = _activity(thread, frames[1:])
        if activity is not None:
            activities[activity] += count
        names = []
        for frame in frames[1:]:
            func, _, where = frame.partition(" (")
            file = where.rsplit(":", 1)[0]
            names.append(f"{func} ({file})")
        if names:
            self_time[names[-1]] += count
        for name in set(names):
            inclusive[name] += count
    boring = (
        "<module>",
        "main (openwaba/cli.py",
        "Typer",
        "Command.",
        "TyperGroup",
        "Context.invoke",
        "_main (",
        "get_callback",
        "serve (openwaba/cli.py",
        "Server.run",
        "asyncio_run",
        "Runner.run",
        "Thread._bootstrap",
        "Thread.run",
        "run_until_complete",
        "run_forever",
        "_run_once",
        "Handle._run",
        "wrapper (typer",
    )
    return {
        "samples": total,
        "expected_per_thread": duration * rate,
        "activities": sorted(activities.items(), key=lambda kv: (kv[0].startswith("writer:"), -kv[1])),
        "threads": per_thread.most_common(),
        "self": self_time.most_common(top),
        "inclusive": [(n, c) for n, c in inclusive.most_common() if "(openwaba/" in n and not n.startswith(boring)][
            :top
        ],
    }


def run_profiled(pid: int, duration: float, out: Path, rate: int = 200) -> subprocess.Popen[bytes] | None:
    spy = Path(sys.executable).parent / "py-spy"
    if not spy.exists() and shutil.which("py-spy") is None:
        log(f"py-spy not found: {sys.executable} -m pip install py-spy")
        return None
    command = [
        str(spy) if spy.exists() else "py-spy",
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(int(duration)),
        "--rate",
        str(rate),
        "--format",
        "raw",
        "--threads",
        "--nonblocking",
        "-o",
        str(out),
    ]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# --------------------------------------------------------------------------- scenarios


@dataclass
class Section:
    key: str
    title: str
    lines: list[str] = field(default_factory=list)
    targets: list[tuple[str, str, str, str]] = field(default_factory=list)  # what, target, measured, verdict

    def table(self, header: list[str], rows: list[list[str]]) -> None:
        self.lines.append("| " + " | ".join(header) + " |")
        self.lines.append("|" + "---|" * len(header))
        for row in rows:
            self.lines.append("| " + " | ".join(row) + " |")
        self.lines.append("")

    def say(self, text: str = "") -> None:
        self.lines.append(text)


OTHER_NOTE = (
    "*other load* = the machine's busy CPU over the run (/proc/stat) minus the gateway, receiver, load "
    "generator and this harness, in % of one core: work of other processes on the machine (and kernel work "
    "charged to none); *steal* = CPU the hypervisor gave to other guests. Before each measured run the harness "
    "waits (`--quiet-wait`, 15 s at most per run, `--quiet-budget` 120 s in all) for the machine to be quiet "
    "(`--quiet-limit`, < 25 % of a core busy)."
)


def verdict(measured: float, target: float, higher_is_better: bool) -> str:
    if measured != measured:
        return "not measured"
    met = measured >= target if higher_is_better else measured < target
    if met:
        return "**met**"
    if higher_is_better:
        return f"**not met**: {measured / target:.2f}× the target ({fmt(target - measured)} short)"
    return f"**not met**: {measured / target:.1f}× the limit"


@dataclass
class Context:
    workdir: Path
    duration: float
    runs: int
    profile: str
    compare: bool
    rates: dict[str, float]
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def body_file(workdir: Path, to: str) -> Path:
    sys.path.insert(0, str(BENCH))
    import loadgen as lg  # the same ≈600-byte text message the Python load generator sends

    path = workdir / f"body-{to}.json"
    path.write_bytes(lg.send_body(to, 1))
    return path


def _meter_fields(meter: Meter) -> dict[str, float]:
    return {
        "cpu_pct": meter.pct,
        "cpu_s": meter.cpu,
        "hwm": meter.hwm_mb,
        "other": meter.other_pct,
        "steal": meter.steal_pct,
        "main_pct": meter.main_pct,
    }


def _cpu_cell(name: str, total: float, main: float) -> str:
    """openwaba: 'total (event loop thread + other threads)'."""
    if name != "openwaba":
        return fmt(total)
    return f"{fmt(total)} ({fmt(main)} + {fmt(total - main)})"


def scenario_a(ctx: Context) -> Section:
    section = Section("a", "(a) Send path: `POST /messages`, wrk -t2 -c64, side by side with Prism and nginx")
    body = body_file(ctx.workdir, FIRST_USER)
    d = ctx.duration
    rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    others: list[Server] = []
    if ctx.compare:
        if shutil.which("nginx") or Path("/usr/sbin/nginx").exists():
            others.append(Nginx(ctx.workdir))
        else:
            log("nginx missing: apt-get install -y nginx  (its row is skipped)")
        if shutil.which("npx"):
            others.insert(0, Prism(ctx.workdir, ROOT / "src" / "openwaba" / "openapi.json"))
        else:
            log("npx missing: apt-get install -y nodejs npm  (the Prism row is skipped)")
    started: list[Server] = []
    try:
        for server in others:
            log(f"(a) starting {server.name} on port {server.port}")
            try:
                secs = server.start(timeout=180)
            except RuntimeError as exc:
                log(f"(a) {server.name} could not start, its row is skipped: {exc}")
                continue
            started.append(server)
            log(f"(a) {server.name} answers after {secs:.1f} s; warm-up {WARMUP_S:g} s")
            wrk(server.url + "/messages", body, WARMUP_S)
        for run in range(1, ctx.runs + 1):
            for label, variant in A_VARIANTS:
                _send_path_run(ctx, rows, run, label, QUIET_SANDBOX | variant, body)
            for server in started:
                wait_quiet(f"(a) run {run} {server.name}")
                with Meter(server.pids()) as meter:
                    result = wrk(server.url + "/messages", body, d)
                rows[server.name].append(result | _meter_fields(meter))
                log(
                    f"(a) run {run} {server.name}: {result['ok_rps']:,.0f} req/s, p99 {result['p99_ms']:.1f} ms, "
                    f"other load {meter.other_pct:.0f} %"
                )
    finally:
        for server in started:
            server.stop()

    table = []
    medians: dict[str, dict[str, float]] = {}
    for name, results in rows.items():
        for i, r in enumerate(results, 1):
            table.append(
                [
                    name,
                    str(i),
                    fmt(r["ok_rps"]),
                    fmt(r["p50_ms"], 2),
                    fmt(r["p99_ms"], 2),
                    str(r["errors"]),
                    _cpu_cell(name, r["cpu_pct"], r["main_pct"]),
                    fmt(1e6 * r["cpu_s"] / max(1, r["requests"]), 0),
                    fmt(r["hwm"]),
                    fmt(r["other"]),
                    fmt(r["steal"]),
                ]
            )
        m = {
            k: med([r[k] for r in results])
            for k in ("ok_rps", "p50_ms", "p99_ms", "cpu_pct", "hwm", "other", "steal", "main_pct")
        }
        m["cpu_us"] = med([1e6 * r["cpu_s"] / max(1, r["requests"]) for r in results])
        medians[name] = m
        rps = [r["ok_rps"] for r in results]
        table.append(
            [
                f"**{name} median**",
                f"{len(results)} runs",
                f"**{fmt(m['ok_rps'])}** ({fmt(min(rps))}–{fmt(max(rps))})",
                fmt(m["p50_ms"], 2),
                fmt(m["p99_ms"], 2),
                str(sum(r["errors"] for r in results)),
                _cpu_cell(name, m["cpu_pct"], m["main_pct"]),
                fmt(m["cpu_us"]),
                fmt(m["hwm"]),
                fmt(m["other"]),
                fmt(m["steal"]),
            ]
        )
    section.say(
        f"`timeout {int(d + 30)} wrk -t2 -c64 -d{d:g}s --latency -s bench/post.lua <url>/messages -- <key> <body>`, "
        f"the ≈600-byte text message of perf-baseline.md to the simulated user `{FIRST_USER}`, with the "
        "sandbox's status simulation off (`OPENWABA_SANDBOX_STATUSES=false`: each message is validated, "
        "committed, answered and handed over, and no status follows). openwaba runs as one process and as two "
        "(`--workers 2`, one port, one SQLite file). Rows are interleaved (openwaba, openwaba ×2, Prism, "
        f"nginx, then again), a fresh openwaba (new data directory) per run, a {WARMUP_S:g} s "
        "wrk warm-up before each measured openwaba run and once per other server. req/s counts answers below "
        "400 only; errors = wrk's connect+read+write+timeout+status (≥400) counters. CPU = utime+stime of the "
        "server's process group over the run (100 % = one core; for openwaba split as event-loop thread + other "
        "threads, i.e. mainly the SQLite writer thread); peak RSS = VmHWM summed over that group. " + OTHER_NOTE
    )
    section.say()
    section.table(
        [
            "server",
            "run",
            "req/s",
            "p50 ms",
            "p99 ms",
            "errors",
            "CPU %",
            "CPU µs/req",
            "peak RSS MB",
            "other load %",
            "steal %",
        ],
        table,
    )
    for label, _ in A_VARIANTS:
        ow = medians.get(label)
        if not ow:
            continue
        ratios = []
        for other in ("prism", "nginx"):
            if other in medians and medians[other]["ok_rps"] > 0:
                ratios.append(
                    f"{label}/{other} = **{ow['ok_rps'] / medians[other]['ok_rps']:.3g}×** req/s "
                    f"(p99 {ow['p99_ms']:.1f} vs {medians[other]['p99_ms']:.1f} ms)"
                )
        if ratios:
            section.say("Ratios of the medians: " + "; ".join(ratios) + ".")
            section.say()
        section.targets.append(
            (
                f"(a) accepted sends/s at 64 connections ({label})",
                f"≥ {fmt(TARGETS['a_rps'])}",
                fmt(ow["ok_rps"]),
                verdict(ow["ok_rps"], TARGETS["a_rps"], True),
            )
        )
        section.targets.append(
            (
                f"(a) p99 at 64 connections ({label})",
                f"< {TARGETS['a_p99_ms']:g} ms",
                f"{ow['p99_ms']:.1f} ms",
                verdict(ow["p99_ms"], TARGETS["a_p99_ms"], False),
            )
        )
    return section


def _send_path_run(
    ctx: Context, rows: dict[str, list[dict[str, Any]]], run: int, label: str, env: dict[str, str], body: Path
) -> None:
    """One measured wrk run against a fresh openwaba (after a warm-up)."""
    d = ctx.duration
    with Openwaba(ctx.workdir, extra_env=env) as ow:
        wrk(ow.url + "/messages", body, WARMUP_S)
        wait_quiet(f"(a) run {run} {label}")
        with Meter(ow.gateway_pids()) as meter:
            result = wrk(ow.url + "/messages", body, d)
        rows[label].append(result | _meter_fields(meter))
        log(
            f"(a) run {run} {label}: {result['ok_rps']:,.0f} req/s, p99 {result['p99_ms']:.1f} ms, "
            f"CPU {meter.pct:.0f} %, other load {meter.other_pct:.0f} %"
        )
        if run == ctx.runs and label == "openwaba" and ctx.profile != "never":
            rps, p99 = (
                med([r["ok_rps"] for r in rows[label]]),
                med([r["p99_ms"] for r in rows[label]]),
            )
            if ctx.profile == "always" or rps < TARGETS["a_rps"] or p99 >= TARGETS["a_p99_ms"]:
                raw = ctx.workdir / "profile-a.txt"
                spy = run_profiled(ow.pid, d - 1, raw)
                profiled = wrk(ow.url + "/messages", body, d)
                if spy is not None:
                    spy.wait(timeout=60)
                    if raw.exists():
                        ctx.profiles["a"] = profile_summary(raw, d - 1, 200) | {
                            "raw": str(raw),
                            "rps": profiled["ok_rps"],
                        }


@dataclass
class FlowResult:
    """One webhook-flow run: what the load generator sent and what the receiver got."""

    sent: list[list[Any]]
    t0: float
    t_stop: float
    records: list[list[Any]]
    cpu: Meter
    receiver_cpu: float
    loadgen_cpu: float
    drained: bool
    waited: float

    def costs(self, items: int) -> dict[str, Any]:
        """The gateway's CPU and memory (per item too), and the receiver's and load generator's share."""
        return {
            **_meter_fields(self.cpu),
            "cpu_us": 1e6 * self.cpu.cpu / max(1, items),
            "rcv_pct": 100 * self.receiver_cpu / self.cpu.wall,
            "lg_pct": 100 * self.loadgen_cpu / self.cpu.wall,
            "drained": self.drained,
        }


def webhook_flow(
    ctx: Context,
    *,
    mode: str,
    rate: float,
    expected_per_request: int,
    paths: list[str],
    multi: bool = False,
    fail_ratio: float = 0.0,
    extra_env: dict[str, str] | None = None,
    drain_timeout: float = 30.0,
    profile_as: str | None = None,
) -> FlowResult:
    receiver = Receiver(ctx.workdir, fail_ratio)
    receiver.start()
    env = {"OPENWABA_RETRY_JITTER": "0"} | (extra_env or {})
    ow = Openwaba(ctx.workdir, env, USERS)
    try:
        ow.start(timeout=120)
        ow.configure("/v1/configs/webhook", {"url": receiver.url + paths[0]})
        if multi:
            ow.configure(
                "/multi_webhook",
                {
                    "enabled": True,
                    "fanout": "independent",
                    "destinations": [{"name": p.strip("/"), "url": receiver.url + p} for p in paths[1:]],
                },
            )
        wait_quiet(f"({profile_as or 'flow'}) {mode} at {rate:g}/s")
        spy = None
        if profile_as:
            spy = run_profiled(ow.pid, ctx.duration - 1, ctx.workdir / f"profile-{profile_as}.txt")
        with Meter(ow.gateway_pids(), also=[receiver.pid]) as meter:
            process, out = loadgen(ctx.workdir, ow.url, mode, rate, ctx.duration, USERS)
            while True:  # reap it ourselves to get its rusage
                pid, status, usage = os.wait4(process.pid, os.WNOHANG)
                if pid:
                    process.returncode = os.waitstatus_to_exitcode(status)
                    lg_cpu = usage.ru_utime + usage.ru_stime
                    break
                time.sleep(0.1)
            if process.returncode != 0:
                raise RuntimeError(f"loadgen.py exited with {process.returncode}")
            result = json.loads(out.read_text())
            accepted = sum(1 for r in result["requests"] if r[3] == 200)
            expected = accepted * expected_per_request
            t_wait, last_seen, last_change, drained = time.monotonic(), -1, time.monotonic(), False
            while time.monotonic() - t_wait < drain_timeout:
                stats = receiver.stats()
                if stats["ok"] >= expected:
                    drained = True
                    break
                if stats["requests"] != last_seen:  # attempts, failed ones included, are progress
                    last_seen, last_change = stats["requests"], time.monotonic()
                elif time.monotonic() - last_change > 10:
                    break  # no attempt at all for 10 s
                time.sleep(0.1)
            waited = time.monotonic() - t_wait
        if spy is not None:
            spy.wait(timeout=60)
            raw = ctx.workdir / f"profile-{profile_as}.txt"
            if raw.exists():
                ctx.profiles[profile_as] = profile_summary(raw, ctx.duration - 1, 200)
        t = time.monotonic()
        records = receiver.finish()  # first: what arrives while openwaba stops does not count
        t_finish = time.monotonic() - t
    finally:
        receiver.stop()
        t = time.monotonic()
        ow.stop(timeout=15)  # then SIGKILL: its data directory is thrown away
        t_stop = time.monotonic() - t
    if t_stop > 5 or t_finish > 10:
        log(f"receiver dump {t_finish:.1f} s, openwaba stop (SIGTERM, SIGKILL after 15 s) {t_stop:.1f} s")
    return FlowResult(
        result["requests"], result["t0"], result["t_stop"], records, meter, meter.also_cpu, lg_cpu, drained, waited
    )


def _arrivals(records: list[list[Any]]) -> tuple[dict[tuple[str, str | None], float], list[float]]:
    """First successful arrival per (wamid, status), and every successful arrival time."""
    first: dict[tuple[str, str | None], float] = {}
    times = []
    for t, _path, code, _wid, _kind, wamid, status in records:
        if code != 200:
            continue
        times.append(t)
        if wamid is not None:
            key = (wamid, status)
            if key not in first or t < first[key]:
                first[key] = t
    return first, sorted(times)


def _rate_after(times: list[float], t_stop: float) -> float:
    """Arrivals after the load generator stopped ÷ the time they took (nan for 100 or fewer)."""
    after = [t for t in times if t > t_stop]
    return len(after) / (after[-1] - t_stop) if len(after) > 100 else float("nan")


def _b_run(ctx: Context, rate: float, profile_as: str | None = None) -> dict[str, Any]:
    flow = webhook_flow(ctx, mode="send", rate=rate, expected_per_request=3, paths=["/main"], profile_as=profile_as)
    first, times = _arrivals(flow.records)
    accepted = [r for r in flow.sent if r[3] == 200]
    sent_lat, read_lat, answer, completions = [], [], [], []
    for _t_sched, t_start, t_end, _code, wamid in accepted:
        answer.append((t_end - t_start) * 1000)
        s = first.get((wamid, "sent"))
        if s is not None:
            sent_lat.append((s - t_start) * 1000)
        stamps = [first.get((wamid, k)) for k in ("sent", "delivered", "read")]
        if all(x is not None for x in stamps):
            completions.append(max(stamps))  # type: ignore[type-var]
            read_lat.append((stamps[2] - t_start) * 1000)  # type: ignore[operator]
    completions.sort()
    span = (completions[-1] - flow.t0) if completions else float("nan")
    return {
        "offered": len(flow.sent),
        "accepted": len(accepted),
        "accepted_ps": len(accepted) / (flow.t_stop - flow.t0),
        "answer_p50": pct(answer, 50),
        "answer_p99": pct(answer, 99),
        "completed": len(completions),
        "mps": len(completions) / span if completions else 0.0,
        "sent_p50": pct(sent_lat, 50),
        "sent_p99": pct(sent_lat, 99),
        "read_p50": pct(read_lat, 50),
        "deliveries_ps": len(times) / (times[-1] - times[0]) if len(times) > 1 else 0.0,
        "during_ps": sum(1 for t in times if t <= flow.t_stop) / (flow.t_stop - flow.t0),
        "after_ps": _rate_after(times, flow.t_stop),
        "lag": (completions[-1] - flow.t_stop) if completions else float("nan"),
        **flow.costs(len(accepted)),
    }


def scenario_b(ctx: Context) -> Section:
    rate, light = ctx.rates["b"], ctx.rates["b_light"]
    section = Section("b", f"(b) End to end: sends to simulated users at {fmt(rate)}/s, webhook to a local receiver")
    runs = []
    for run in range(1, ctx.runs + 1):
        r = _b_run(ctx, rate)
        runs.append(r)
        log(
            f"(b) run {run}: {r['accepted_ps']:,.0f} accepted/s, {r['mps']:,.0f} completed msg/s, "
            f"send→sent p50 {r['sent_p50']:.1f} ms p99 {r['sent_p99']:.1f} ms, CPU {r['cpu_pct']:.0f} %"
        )
    light_run = None
    if light > 0:
        light_run = _b_run(ctx, light)
        log(
            f"(b) light load {light:g}/s: send→sent p50 {light_run['sent_p50']:.1f} ms "
            f"p99 {light_run['sent_p99']:.1f} ms, CPU {light_run['cpu_pct']:.0f} %"
        )
    missed = (
        med([r["mps"] for r in runs]) < TARGETS["b_mps"]
        or med([r["sent_p50"] for r in runs]) >= TARGETS["b_sent_p50_ms"]
    )
    if ctx.profile == "always" or (ctx.profile == "auto" and missed):
        profiled = _b_run(ctx, rate, profile_as="b")
        log(f"(b) profiled run: {profiled['mps']:,.0f} msg/s completed")
    cols = [
        "accepted_ps",
        "answer_p50",
        "answer_p99",
        "mps",
        "sent_p50",
        "sent_p99",
        "read_p50",
        "deliveries_ps",
        "during_ps",
        "after_ps",
        "lag",
        "cpu_pct",
        "main_pct",
        "cpu_us",
        "hwm",
        "rcv_pct",
        "lg_pct",
        "other",
        "steal",
    ]
    digits = {"answer_p50": 1, "answer_p99": 1, "sent_p50": 1, "sent_p99": 1, "read_p50": 0, "lag": 1}
    table = []
    for i, r in enumerate(runs, 1):
        table.append(
            [str(i), f"{r['completed']:,}/{r['accepted']:,}" + ("" if r["drained"] else " (not drained)")]
            + [fmt(r[c], digits.get(c, 0)) for c in cols]
        )
    m = {c: med([r[c] for r in runs]) for c in cols}
    table.append(
        ["**median**", ""]
        + [
            ("**" + fmt(m[c], digits.get(c, 0)) + "**") if c in ("mps", "sent_p50") else fmt(m[c], digits.get(c, 0))
            for c in cols
        ]
    )
    if light_run is not None:
        table.append(
            [f"light load: {fmt(light)}/s", f"{light_run['completed']:,}/{light_run['accepted']:,}"]
            + [fmt(light_run[c], digits.get(c, 0)) for c in cols]
        )
    section.say(
        f"bench/loadgen.py, open loop: `POST /messages` (the ≈600-byte text) at {fmt(rate)}/s for {ctx.duration:g} s "
        f"over 64 keep-alive connections, `to` cycling over {len(USERS)} simulated users (so {len(USERS)} "
        "conversations: deliveries of one conversation are posted one at a time); status delays at their default "
        "(sent 0, delivered 0.05, read 0.1 s after acceptance); the webhook is a separate-process raw asyncio "
        "receiver answering 200 at once. A message is *completed* when its `sent`, `delivered` and `read` "
        "webhooks have all been answered 200; completed msg/s = completed ÷ (last completion − first send). "
        "send→sent = the `sent` webhook's arrival − the moment the send request was written "
        "(both CLOCK_MONOTONIC); send→read includes the designed 100 ms. lag = last completion − end of the "
        "sending; webhooks/s while sending = status webhooks that arrived while the load generator ran ÷ its run "
        "time, after sending stopped = the rest ÷ the time they took. CPU = the gateway process over the whole "
        "window (sending + drain); CPU µs per accepted message; receiver/loadgen CPU = the receiver's and load "
        "generator's share of one core. The last row is "
        f"one more run at {fmt(light)}/s (`--rate-b-light`): the pipeline's latency without a backlog. " + OTHER_NOTE
    )
    section.say()
    section.table(
        [
            "run",
            "completed/accepted",
            "accepted/s",
            "answer p50 ms",
            "answer p99 ms",
            "completed msg/s",
            "send→sent p50 ms",
            "send→sent p99 ms",
            "send→read p50 ms",
            "webhooks/s",
            "webhooks/s while sending",
            "webhooks/s after sending stopped",
            "lag s",
            "CPU %",
            "of which event loop %",
            "CPU µs/msg",
            "peak RSS MB",
            "receiver CPU %",
            "loadgen CPU %",
            "other load %",
            "steal %",
        ],
        table,
    )
    section.targets.append(
        (
            "(b) messages/s end to end",
            f"≥ {fmt(TARGETS['b_mps'])}",
            fmt(m["mps"]),
            verdict(m["mps"], TARGETS["b_mps"], True)
            + (f" (offered only {fmt(rate)}/s)" if rate < TARGETS["b_mps"] else ""),
        )
    )
    section.targets.append(
        (
            "(b) send→sent p50",
            f"< {TARGETS['b_sent_p50_ms']:g} ms",
            f"{m['sent_p50']:.1f} ms",
            verdict(m["sent_p50"], TARGETS["b_sent_p50_ms"], False),
        )
    )
    if light_run is not None:
        section.targets.append(
            (
                f"(b) send→sent p50 at light load ({fmt(light)}/s)",
                f"< {TARGETS['b_sent_p50_ms']:g} ms",
                f"{light_run['sent_p50']:.1f} ms (p99 {light_run['sent_p99']:.1f} ms)",
                verdict(light_run["sent_p50"], TARGETS["b_sent_p50_ms"], False),
            )
        )
    return section


def _delivery_runs(
    ctx: Context,
    key: str,
    rate: float,
    paths: list[str],
    multi: bool,
    fail_ratio: float = 0.0,
    extra_env: dict[str, str] | None = None,
    drain_timeout: float = 30.0,
    runs: int | None = None,
) -> list[dict[str, Any]]:
    out = []
    for run in range(1, (runs or ctx.runs) + 1):
        flow = webhook_flow(
            ctx,
            mode="inbound",
            rate=rate,
            expected_per_request=len(paths),
            paths=paths,
            multi=multi,
            fail_ratio=fail_ratio,
            extra_env=extra_env,
            drain_timeout=drain_timeout,
        )
        accepted = {r[4]: r for r in flow.sent if r[3] == 200}
        first, times = _arrivals(flow.records)
        per_path: dict[tuple[str, str], float] = {}
        attempts_per_event: Counter[str] = Counter()
        successes: Counter[tuple[str, str]] = Counter()
        for t, path, code, wid, _kind, wamid, _status in flow.records:
            attempts_per_event[wid] += 1
            if code == 200 and wamid is not None:
                successes[(wamid, path)] += 1
                if (wamid, path) not in per_path or t < per_path[(wamid, path)]:
                    per_path[(wamid, path)] = t
        latency = [(t - accepted[w][1]) * 1000 for (w, _p), t in per_path.items() if w in accepted]
        missing = sum(1 for w in accepted for p in paths if (w, p) not in per_path)
        r = {
            "accepted": len(accepted),
            "accepted_ps": len(accepted) / (flow.t_stop - flow.t0),
            "deliveries": len(times),
            "dps": len(times) / (times[-1] - times[0]) if len(times) > 1 else 0.0,
            "drain_dps": _rate_after(times, flow.t_stop),
            "during_dps": sum(1 for t in times if t <= flow.t_stop) / (flow.t_stop - flow.t0),
            "p50": pct(latency, 50),
            "p99": pct(latency, 99),
            "attempts": len(flow.records),
            "attempts_ps": len(flow.records) / (flow.records[-1][0] - flow.records[0][0])
            if len(flow.records) > 1
            else 0.0,
            "missing": missing,
            "dup": sum(c - 1 for c in successes.values() if c > 1),
            "last_after": (times[-1] - flow.t_stop) if times else float("nan"),
            **flow.costs(len(times)),
            "waited": flow.waited,
        }
        out.append(r)
        log(
            f"({key}) run {run}: {r['accepted_ps']:,.0f} events accepted/s, {r['dps']:,.0f} deliveries/s "
            f"(drain {fmt(r['drain_dps'])}/s), latency p50 {r['p50']:.0f} ms p99 {r['p99']:.0f} ms, "
            f"missing {missing}, CPU {r['cpu_pct']:.0f} %"
        )
    return out


_DCOLS = [
    "accepted_ps",
    "dps",
    "during_dps",
    "drain_dps",
    "p50",
    "p99",
    "last_after",
    "cpu_pct",
    "main_pct",
    "cpu_us",
    "hwm",
    "rcv_pct",
    "lg_pct",
    "other",
    "steal",
]
_DHEAD = [
    "accepted events/s",
    "deliveries/s",
    "deliveries/s while sending",
    "deliveries/s after sending stopped",
    "event→webhook p50 ms",
    "event→webhook p99 ms",
    "last arrival after sending stopped s",
    "CPU %",
    "of which event loop %",
    "CPU µs/delivery",
    "peak RSS MB",
    "receiver CPU %",
    "loadgen CPU %",
    "other load %",
    "steal %",
]


def _delivery_table(section: Section, runs: list[dict[str, Any]], bold: str) -> dict[str, float]:
    table = []
    for i, r in enumerate(runs, 1):
        table.append(
            [str(i), f"{r['deliveries']:,} ({r['missing']:,} missing)" + ("" if r["drained"] else ", not drained")]
            + [fmt(r[c], 1 if c == "last_after" else 0) for c in _DCOLS]
        )
    m = {c: med([r[c] for r in runs]) for c in _DCOLS}
    table.append(
        ["**median**", ""]
        + [("**" + fmt(m[c]) + "**") if c == bold else fmt(m[c], 1 if c == "last_after" else 0) for c in _DCOLS]
    )
    section.table(["run", "delivered"] + _DHEAD, table)
    return m


_DNOTE = (
    "deliveries/s = successful webhook deliveries ÷ (last − first arrival); *while sending* = those that "
    "arrived while the load generator ran ÷ its run time; *after sending stopped* = the rest ÷ the time they "
    "took (the delivery engine draining its backlog without ingest competing), shown when more than 100 "
    "arrived then. event→webhook = the webhook's arrival − the moment the "
    "`POST /sandbox/users/{wa_id}/messages` request was written. CPU µs per delivery = gateway CPU ÷ deliveries. "
    + OTHER_NOTE
)


def scenario_c(ctx: Context) -> Section:
    rate = ctx.rates["c"]
    paths = ["/main", "/d1", "/d2", "/d3"]
    section = Section("c", "(c) Fan-out: one event to 4 destinations (main + 3 multi-webhook, fanout independent)")
    runs = _delivery_runs(ctx, "c", rate, paths, multi=True, drain_timeout=20.0)
    section.say(
        f"bench/loadgen.py, open loop: simulated users' messages (`POST /sandbox/users/{{wa_id}}/messages`, cycling "
        f"over {len(USERS)} users) at {fmt(rate)}/s for {ctx.duration:g} s, i.e. {fmt(4 * rate)} deliveries/s "
        "offered; main webhook plus `POST /multi_webhook` with 3 destinations and `fanout: independent`, all four "
        "on one local receiver (paths /main, /d1, /d2, /d3). The drain is cut after 20 s. " + _DNOTE
    )
    section.say()
    m = _delivery_table(section, runs, "dps")
    best = max(m["dps"], m["drain_dps"]) if m["drain_dps"] == m["drain_dps"] else m["dps"]
    section.targets.append(
        (
            "(c) webhook deliveries/s (fan-out to 4)",
            f"≥ {fmt(TARGETS['c_dps'])}",
            f"{fmt(m['dps'])} (drain only: {fmt(m['drain_dps'])})",
            verdict(best, TARGETS["c_dps"], True),
        )
    )
    return section


def scenario_d(ctx: Context) -> Section:
    rate = ctx.rates["d"]
    section = Section("d", f"(d) Inbound: simulated users' messages at {fmt(rate)}/s → main webhook")
    runs = _delivery_runs(ctx, "d", rate, ["/main"], multi=False, drain_timeout=20.0)
    section.say(
        f"bench/loadgen.py, open loop: `POST /sandbox/users/{{wa_id}}/messages` at {fmt(rate)}/s for "
        f"{ctx.duration:g} s (cycling over {len(USERS)} users), one destination (the number's webhook). " + _DNOTE
    )
    section.say()
    _delivery_table(section, runs, "dps")
    return section


def scenario_e(ctx: Context) -> Section:
    rate = ctx.rates["e"]
    delays = "0.1,0.2,0.4,0.8,1.6"
    section = Section("e", "(e) Retry storm: the receiver answers 500 to 50 % of the attempts")
    runs = _delivery_runs(
        ctx,
        "e",
        rate,
        ["/main"],
        multi=False,
        fail_ratio=0.5,
        extra_env={"OPENWABA_RETRY_DELAYS": delays, "OPENWABA_RETRY_JITTER": "0"},
        drain_timeout=90.0,
        runs=1,
    )
    section.say(
        f"As (d) at {fmt(rate)} events/s for {ctx.duration:g} s, with `OPENWABA_RETRY_DELAYS={delays}` (the last "
        "repeats) and `OPENWABA_RETRY_JITTER=0`; the receiver answers 500 to each attempt with probability 0.5 "
        "(seeded), so an event needs 2 attempts on average and about 1 in 1,000 needs more than 10. One run; "
        "the wait for the last events is cut after 90 s. " + _DNOTE
    )
    section.say()
    _delivery_table(section, runs, "dps")
    table = []
    for r in runs:
        table.append(
            [
                f"{r['accepted']:,}",
                f"{r['deliveries']:,}",
                f"{r['attempts']:,}",
                f"{r['attempts'] / max(1, r['accepted']):.2f}",
                fmt(r["attempts_ps"]),
                str(r["missing"]),
                str(r["dup"]),
                "yes" if r["missing"] == 0 else f"**no: {r['missing']} missing**",
            ]
        )
    section.table(
        [
            "events accepted",
            "delivered (200)",
            "attempts",
            "attempts/event",
            "attempts/s",
            "missing",
            "duplicates (200 twice)",
            "every event arrived",
        ],
        table,
    )
    return section


def scenario_f(ctx: Context) -> Section:
    section = Section("f", "(f) Idle cost with 1,000,000 pending deliveries (bench/pending_memory.py)")
    command = [sys.executable, str(BENCH / "pending_memory.py"), "--pending", "1000000", "--workdir", str(ctx.workdir)]
    log("(f) " + " ".join(command[1:]) + "  (bulk insert ≈ 1 min)")
    done = subprocess.run(command, capture_output=True, text=True, timeout=1200)
    rows = [line for line in done.stdout.splitlines() if line.startswith("|")]
    if done.returncode != 0 or len(rows) < 3:
        section.say(f"pending_memory.py failed (exit {done.returncode}): `{done.stderr[-800:]}`")
        return section
    details = [
        line.strip()
        for line in done.stderr.splitlines()
        if line.strip().startswith(("rest:", "1,000,000", "openwaba answers", "1,000 due"))
    ]
    section.say(
        "`.venv/bin/python bench/pending_memory.py --pending 1000000` (0.1 % due now; see its section above "
        "for the method):"
    )
    section.say()
    section.lines.extend(rows)
    section.say()
    if details:
        section.say("Its log: " + "; ".join(f"`{d}`" for d in details))
        section.say()
    cells = [c.strip() for c in rows[2].strip("|").split("|")]
    peak = float(cells[5].split()[0].replace(",", ""))
    section.targets.append(
        (
            "(f) peak RSS with 1,000,000 pending",
            f"< {TARGETS['f_rss_mb']:g} MB",
            f"{peak:g} MB",
            verdict(peak, TARGETS["f_rss_mb"], False),
        )
    )
    return section


SCENARIOS = {"a": scenario_a, "b": scenario_b, "c": scenario_c, "d": scenario_d, "e": scenario_e, "f": scenario_f}


# --------------------------------------------------------------------------- report


def machine() -> dict[str, str]:
    model = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break

    def version(command: list[str]) -> str:
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return "missing"
        text = (done.stdout + done.stderr).strip().splitlines()
        return text[0] if text else "?"

    return {
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "wrk": version(["wrk", "--version"]).split(" Copyright")[0],
        "nginx": version(["nginx", "-v"]).replace("nginx version: ", ""),
        "node": version(["node", "--version"]),
    }


def commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout

    head = git("rev-parse", "--short", "HEAD").strip()
    dirty = [line[3:] for line in git("status", "--porcelain", "--", "src").splitlines() if line.strip()]
    if dirty:
        return f"`{head}` with uncommitted changes in {', '.join(f'`{p}`' for p in dirty[:8])}" + (
            " …" if len(dirty) > 8 else ""
        )
    return f"`{head}`"


def render_profiles(ctx: Context) -> list[str]:
    lines = []
    for key, label in (("a", "(a) send path under wrk"), ("b", "(b) end to end")):
        p = ctx.profiles.get(key)
        if not p or not p.get("samples"):
            continue
        lines.append(f"#### py-spy, {label}")
        lines.append("")
        expected = p["expected_per_thread"]
        threads = ", ".join(
            f"{name} {count:,} samples ({100 * count / expected:.0f} % of the time on CPU)"
            for name, count in p["threads"]
        )
        lines.append(
            f"`py-spy record --rate 200 --threads --nonblocking --format raw` for {expected / 200:.0f} s "
            f"during an extra run; {p['samples']:,} non-idle samples: {threads}. "
            "Percentages below are of all non-idle samples."
        )
        lines.append("")
        per_thread = dict(p["threads"])
        lines.append("| thread: activity | % of the thread's samples |")
        lines.append("|---|---|")
        for activity, count in p.get("activities", []):
            thread = "MainThread" if not activity.startswith("writer:") else "openwaba-sqlite"
            share = 100 * count / max(1, per_thread.get(thread, 0))
            label = ("event loop: " if thread == "MainThread" else "") + activity
            lines.append(f"| {label} | {share:.1f} |")
        lines.append("")
        lines.append(
            "| self (leaf frame; C code counts in its Python caller) | % | inclusive, openwaba's own functions | % |"
        )
        lines.append("|---|---|---|---|")
        for i in range(max(len(p["self"]), len(p["inclusive"]))):
            s = p["self"][i] if i < len(p["self"]) else ("", 0)
            n = p["inclusive"][i] if i < len(p["inclusive"]) else ("", 0)
            lines.append(f"| `{s[0]}` | {100 * s[1] / p['samples']:.1f} | `{n[0]}` | {100 * n[1] / p['samples']:.1f} |")
        lines.append("")
    return lines


def render(sections: list[Section], ctx: Context, argv: list[str], started: float, info: dict[str, str]) -> str:
    now = dt.datetime.now(dt.UTC)
    lines = [
        f"## Benchmark run {now:%Y-%m-%d %H:%M} UTC (`bench/run.py`)",
        "",
        f"Command: `{' '.join(['.venv/bin/python', 'bench/run.py', *argv])}`"
        + f" ({(time.monotonic() - started) / 60:.1f} min)",
        "",
        f"Database: {DATABASE['name']}. "
        + ("Extra settings: " + ", ".join(f"`{k}={v}`" for k, v in EXTRA_ENV.items()) + ". " if EXTRA_ENV else "")
        + f"Measured: {commit()}. Machine: nproc {info['nproc']}, {info['cpu']}, Python {info['python']}, "
        f"Linux {info['kernel']}; {info['wrk']}, nginx {info['nginx']}, node {info['node']}, Prism {PRISM_PACKAGE}. "
        "Load generators, receivers and the gateway share the 2 cores (as in perf-baseline.md), so every "
        "figure is pessimistic; medians of the runs shown.",
        "",
    ]
    targets = [t for s in sections for t in s.targets]
    if targets:
        lines += ["| target | wanted | measured (median) | verdict |", "|---|---|---|---|"]
        lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in targets]
        lines.append("")
    for s in sections:
        lines += [f"### {s.title}", "", *s.lines]
    profiles = render_profiles(ctx)
    if profiles:
        lines += ["### Profiles (targets missed)", "", *profiles]
    return "\n".join(lines).rstrip() + "\n"


def check_tools(scenarios: list[str], compare: bool) -> None:
    missing = []
    if "a" in scenarios and not shutil.which("wrk"):
        missing.append("wrk")
    if "a" in scenarios and compare and not (shutil.which("nginx") or Path("/usr/sbin/nginx").exists()):
        missing.append("nginx")
    if missing:
        command = ["apt-get", "install", "-y", *missing]
        if os.geteuid() == 0 and shutil.which("apt-get"):
            log("installing " + " ".join(missing) + ": " + " ".join(command))
            subprocess.run(["apt-get", "update", "-qq"], check=False)
            subprocess.run(command, check=False, stdout=subprocess.DEVNULL)
        if "wrk" in missing and not shutil.which("wrk"):
            sys.exit("wrk is missing; install it with: sudo " + " ".join(command))


def start_postgres() -> Any:
    """The test suite's throwaway PostgreSQL launcher, durable this time: fsync and
    synchronous commit on, data on disk, as a production database would be."""
    sys.path.insert(0, str(ROOT / "tests"))
    from pgcluster import Cluster, find_bindir

    bindir = find_bindir()
    if bindir is None:
        raise SystemExit("no PostgreSQL server binaries: run scripts/test once (it installs them)")
    cluster = Cluster(bindir, durable=True, parent=Path(tempfile.gettempdir()))
    cluster.start()
    numbers = iter(range(1, 1_000_000))

    def fresh() -> str:
        name = f"bench_{next(numbers)}"
        cluster.create_database(name)
        return str(cluster.url(name))

    DATABASE.update(name=f"PostgreSQL {cluster.server_version} (fsync on, data on disk, unix socket)", fresh=fresh)
    log(f"PostgreSQL {cluster.server_version} on port {cluster.port}")
    return cluster


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    parser.add_argument("--scenario", default="a,b,c,d,e,f", help="comma-separated subset of a,b,c,d,e,f")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load per run (default 10)")
    parser.add_argument("--runs", type=int, default=3, help="runs per row; medians are reported (default 3)")
    parser.add_argument("--out", default=str(BENCH / "RESULTS.md"), help="file to append the section to; '-' = none")
    parser.add_argument(
        "--profile",
        choices=("auto", "always", "never"),
        default="auto",
        help="py-spy profile of (a) and (b) in an extra run: when a target is missed (auto)",
    )
    parser.add_argument("--no-compare", action="store_true", help="skip the Prism and nginx rows of (a)")
    parser.add_argument("--rate-b", type=float, default=1000.0, help="sends/s offered in (b)")
    parser.add_argument(
        "--rate-b-light", type=float, default=100.0, help="sends/s of the extra light-load run of (b); 0 = none"
    )
    parser.add_argument("--rate-c", type=float, default=2500.0, help="events/s offered in (c) (×4 deliveries)")
    parser.add_argument("--rate-d", type=float, default=1000.0, help="inbound events/s offered in (d)")
    parser.add_argument("--rate-e", type=float, default=500.0, help="inbound events/s offered in (e)")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="OPENWABA_X=VALUE",
        help="an extra setting for every openwaba started (repeatable), e.g. to try a tuning",
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=15.0,
        help="before each measured run, wait at most this long for the machine to be quiet (default 15 s)",
    )
    parser.add_argument(
        "--quiet-budget",
        type=float,
        default=120.0,
        help="at most this much waiting for quiet in the whole invocation (default 120 s)",
    )
    parser.add_argument(
        "--quiet-limit", type=float, default=25.0, help="quiet = busy CPU below this %% of one core over 1 s"
    )
    parser.add_argument("--workdir", type=Path, default=None, help="where temporary files go (default /tmp)")
    parser.add_argument(
        "--database",
        choices=("sqlite", "postgres"),
        default="sqlite",
        help="postgres: start a throwaway PostgreSQL (fsync on, data on disk) and give every openwaba its own database",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, arrivals, profiles)")
    args = parser.parse_args()
    scenarios = [s.strip() for s in args.scenario.split(",") if s.strip()]
    unknown = [s for s in scenarios if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {unknown}; choose from {','.join(SCENARIOS)}")
    for item in args.env:
        name, sep, value = item.partition("=")
        if not sep or not name.startswith("OPENWABA_"):
            parser.error(f"--env wants OPENWABA_NAME=VALUE, got {item!r}")
        EXTRA_ENV[name] = value
    QUIET.update(wait=args.quiet_wait, limit=args.quiet_limit, budget=args.quiet_budget)
    check_tools(scenarios, not args.no_compare)
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="openwaba-bench-", dir=args.workdir))
    ctx = Context(
        workdir,
        args.duration,
        args.runs,
        args.profile,
        not args.no_compare,
        {"b": args.rate_b, "b_light": args.rate_b_light, "c": args.rate_c, "d": args.rate_d, "e": args.rate_e},
    )
    info = machine()
    log(f"workdir {workdir}; nproc {info['nproc']}, {info['cpu']}, Python {info['python']}")
    sections = []
    cluster = start_postgres() if args.database == "postgres" else None
    try:
        for key in scenarios:
            t = time.monotonic()
            log(f"scenario {key}")
            sections.append(SCENARIOS[key](ctx))
            log(f"scenario {key} took {time.monotonic() - t:.0f} s")
    finally:
        if cluster is not None:
            cluster.stop()
        report = render(sections, ctx, sys.argv[1:], started, info) if sections else ""
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            log(f"kept {workdir}")
    print(report)
    if args.out != "-" and report:
        with open(args.out, "a") as f:
            f.write("\n" + report)
        log(f"appended to {args.out}")


if __name__ == "__main__":
    main()

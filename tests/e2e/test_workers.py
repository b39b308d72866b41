"""`openwaba serve --workers N`: N processes on one port and one database.

A real `openwaba serve` with two workers (SQLite file and PostgreSQL) takes paced
sends from several clients; one worker is SIGKILLed halfway. What is checked:

* both workers answer requests and hand over and deliver work (each one's CPU time
  grows), and uvicorn's supervisor replaces the killed worker;
* every status of every accepted message reaches the receiver, and no event is
  attempted twice at the same time (the workers never hold the same delivery);
* a webhook changed through one worker is used by all of them (the others drop
  their cached configuration: SQLite workers poll a counter, PostgreSQL NOTIFYs);
* what one process alone allows and refuses: a manual clock needs one process, and
  a data directory in use by a `--workers` server is refused to a second server.
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from .multinode_support import Senders, TimingReceiver
from .support import Server, ServerFactory, clean_env, openwaba_executable, wait_until

pytestmark = pytest.mark.e2e

WORKERS = 2
MESSAGES = 200
RATE = 100.0  # messages a second, from all clients together
CLIENTS = 6
STATUSES = ("sent", "delivered", "read")
USERS = tuple(f"1555123{n:04d}" for n in range(1, 21))
ENV: dict[str, str | None] = {
    "OPENWABA_WORKERS": str(WORKERS),
    "OPENWABA_CLOCK": None,  # a manual clock is per process: the workers use the system clock
    "OPENWABA_LEASE_SECONDS": "3",
    "OPENWABA_WEBHOOK_TIMEOUT": "2",
    "OPENWABA_RETRY_DELAYS": "0.5,1,2",
    "OPENWABA_SANDBOX_USERS": ",".join(USERS),
    "OPENWABA_SANDBOX_STATUS_DELAYS": "0,0.05,0.1",
}


@pytest.fixture
def receivers() -> Iterator[tuple[TimingReceiver, TimingReceiver]]:
    pair = (TimingReceiver((0.0, 0.01), 0.5, 1), TimingReceiver((0.0, 0.01), 0.5, 2))
    for receiver in pair:
        receiver.start()
    try:
        yield pair
    finally:
        for receiver in pair:
            receiver.stop()


def workers_of(server: Server) -> list[int]:
    """The pids of the server's worker processes (the supervisor's children that serve)."""
    assert server.process is not None
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == server.process.pid and b"spawn_main" in cmdline:
            found.append(int(entry.name))
    return sorted(found)


def worker_pids(server: Server, gone: int | None = None) -> list[int] | None:
    """All WORKERS worker pids once they run (and `gone` is not one of them)."""
    pids = workers_of(server)
    return pids if len(pids) == WORKERS and gone not in pids else None


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def webhook_everywhere(server: Server, url: str, asks: int = 12) -> bool:
    """Every one of `asks` fresh connections (spread by the kernel over the workers) sees the URL."""
    return all(server.ok("GET", "/v1/configs/webhook")["url"] == url for _ in range(asks))


def test_two_workers_share_the_work_and_the_configuration(
    server: ServerFactory, receivers: tuple[TimingReceiver, TimingReceiver]
) -> None:
    first, second = receivers
    srv = server(ENV)
    pids = wait_until(functools.partial(worker_pids, srv), 10, f"{WORKERS} workers")
    busy_before = {pid: cpu_seconds(pid) for pid in pids}
    srv.set_webhook(first.url)
    wait_until(functools.partial(webhook_everywhere, srv, first.url), 5, "the webhook seen by every worker")

    proceed = threading.Event()
    senders = Senders([srv], USERS, MESSAGES, RATE, CLIENTS, MESSAGES // 2, proceed)
    senders.start()
    try:
        wait_until(lambda: senders.accepted_count >= MESSAGES // 2 or senders.problems, 15, "half the messages")
        busy = {pid: cpu_seconds(pid) - busy_before[pid] for pid in pids}
        assert all(seconds > 0.05 for seconds in busy.values()), f"CPU seconds per worker: {busy}"
        os.kill(pids[0], signal.SIGKILL)  # uvicorn's supervisor starts another one
        proceed.set()
        assert senders.join(30), "the senders did not finish"
    finally:
        senders.stop()
    assert not senders.problems, senders.problems[:5]
    assert len(senders.accepted) == MESSAGES

    expected = {(wamid, status) for wamid in senders.accepted for status in STATUSES}
    wait_until(lambda: expected <= first.delivered(), 30, "every status delivered",
               lambda: f"missing: {sorted(expected - first.delivered())[:5]}")
    assert first.overlaps() == []
    replaced = wait_until(functools.partial(worker_pids, srv, pids[0]), 10, "the killed worker replaced")
    assert pids[1] in replaced

    # A webhook changed through one worker: every worker uses the new one.
    srv.set_webhook(second.url)
    wait_until(functools.partial(webhook_everywhere, srv, second.url), 5, "the new webhook seen by every worker")
    later = [srv.send_text(USERS[i % len(USERS)], f"after the change #{i}") for i in range(20)]
    expected_later = {(wamid, status) for wamid in later for status in STATUSES}
    wait_until(lambda: expected_later <= second.delivered(), 20, "statuses at the new webhook")
    assert not {wamid for wamid, _ in first.delivered()} & set(later)


def test_a_manual_clock_needs_one_process(tmp_path: Path) -> None:
    env = clean_env({"OPENWABA_CLOCK": "manual", "OPENWABA_SANDBOX_API_KEY": "k"})
    done = subprocess.run([openwaba_executable(), "serve", "--workers", "2", "--port", "1",
                           "--data-dir", str(tmp_path / "data")],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "OPENWABA_CLOCK=manual needs one process" in done.stderr


def test_a_data_directory_in_use_by_workers_is_refused(tmp_path: Path) -> None:
    factory = ServerFactory(tmp_path, {"OPENWABA_SANDBOX_API_KEY": "k", "OPENWABA_WORKERS": "2"})
    try:
        srv = factory()
        env = clean_env({"OPENWABA_SANDBOX_API_KEY": "k"})
        done = subprocess.run([openwaba_executable(), "serve", "--port", "1", "--data-dir", str(srv.data_dir)],
                              env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode != 0
        assert "in use by another openwaba process" in done.stdout + done.stderr
        pids = workers_of(srv)
        assert len(pids) == WORKERS
        srv.stop()
        assert srv.process is not None and srv.process.returncode == 0
        assert not [pid for pid in pids if Path(f"/proc/{pid}").exists()], "the supervisor left workers running"
    finally:
        factory.close()

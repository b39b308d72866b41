"""Fixtures for the command line's tests: `main(argv)` run in-process with its output
captured, the `openwaba` script as a subprocess, and one real gateway for the session
(the e2e harness's), on which tests that change a number's settings create their own."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from e2e.conftest import DEFAULT_ENV
from e2e.routing_support import PARTNER_ENV, Number, new_number
from e2e.support import Receiver, Server, ServerFactory, clean_env, openwaba_executable
from openwaba.cli import main

MAX_WAIT = 15.0


@dataclass
class Run:
    """What one command did: its exit code, stdout and stderr."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    def json_lines(self) -> list[Any]:
        return [json.loads(line) for line in self.out.splitlines() if line.strip()]

    def __str__(self) -> str:
        return f"exit {self.code}\n--- stdout ---\n{self.out}\n--- stderr ---\n{self.err}"


Cli = Callable[..., Run]


@pytest.fixture(autouse=True)
def no_openwaba_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Commands see only what a test gives them, never the developer's OPENWABA_* settings."""
    for name in list(os.environ):
        if name.startswith("OPENWABA_") or name in ("NO_COLOR", "FORCE_COLOR", "COLUMNS"):
            monkeypatch.delenv(name)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    """`cli("send", "1555…", "hi", ...)`: run `main(argv)` in this process and capture what it printed."""

    def run(*args: str) -> Run:
        capsys.readouterr()
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


def script(*args: str, env: dict[str, str | None] | None = None, timeout: float = 30.0) -> Run:
    """The installed `openwaba` script, as a user runs it (not a terminal: output goes to pipes)."""
    done = subprocess.run([openwaba_executable(), *args], capture_output=True, text=True, timeout=timeout,
                          env=clean_env(env), stdin=subprocess.DEVNULL)
    return Run(done.returncode, done.stdout, done.stderr)


@dataclass
class Background:
    """A long-running `openwaba` process whose output lines are collected as they come."""

    process: subprocess.Popen[str]
    lines: dict[str, queue.Queue[str]] = field(default_factory=dict)
    seen: dict[str, list[str]] = field(default_factory=dict)

    def wait_for_line(self, stream: str, predicate: Callable[[str], bool], timeout: float = MAX_WAIT) -> str:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no matching line on {stream} within {timeout:g} s; got {self.seen}")
            try:
                line = self.lines[stream].get(timeout=remaining)
            except queue.Empty:
                continue
            self.seen[stream].append(line)
            if predicate(line):
                return line

    def stop(self, timeout: float = MAX_WAIT) -> int:
        """SIGINT (what Ctrl-C sends), then wait; the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(2)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
            raise


@pytest.fixture
def background() -> Iterator[Callable[..., Background]]:
    """`background("receive", "--port", ...)`: start `openwaba` in the background; killed at teardown."""
    started: list[Background] = []

    def start(*args: str, cwd: Path | None = None, env: dict[str, str | None] | None = None) -> Background:
        process = subprocess.Popen([openwaba_executable(), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   stdin=subprocess.DEVNULL, text=True, cwd=cwd, env=clean_env(env))
        job = Background(process)
        for name, stream in (("out", process.stdout), ("err", process.stderr)):
            job.lines[name], job.seen[name] = queue.Queue(), []
            assert stream is not None
            threading.Thread(target=_pump, args=(stream, job.lines[name]), daemon=True).start()
        started.append(job)
        return job

    yield start
    for job in started:
        if job.process.poll() is None:
            job.process.kill()
            job.process.wait(timeout=5)


def _pump(stream: Any, into: queue.Queue[str]) -> None:
    for line in stream:
        into.put(line.rstrip("\n"))


@pytest.fixture(scope="session")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One `openwaba serve` for the session: manual clock, partner API on, rate limits off."""
    factory = ServerFactory(tmp_path_factory.mktemp("cli-gateway"), {**DEFAULT_ENV, **PARTNER_ENV})
    try:
        yield factory()
    finally:
        factory.close()


@pytest.fixture
def number(gateway: Server) -> Number:
    """A number of its own (partner API), so a test's webhook and deliveries are only its own."""
    return new_number(gateway)


@pytest.fixture
def hook() -> Iterator[Receiver]:
    """A webhook receiver that records every request."""
    receiver = Receiver()
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()

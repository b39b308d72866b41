"""`GatewayProcess`: a throwaway `openwaba serve` for a test session.

It runs as a child process (its own event loop and writer thread, nothing shared
with the tests' interpreter) on a free port of 127.0.0.1, with a temporary data
directory, the manual clock, and random sandbox and partner keys.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

START_TIMEOUT = 30.0
_PORT_ATTEMPTS = 3  # another process can take the free port between choosing and binding it


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class GatewayProcess:
    """`with GatewayProcess(tmp_dir) as gw: gw.url, gw.api_key, gw.partner_key`.

    `env` adds or overrides `OPENWABA_*` settings (see the README's configuration table);
    the process's output goes to `data_dir/openwaba.log`.
    """

    def __init__(self, data_dir: Path, env: Mapping[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.api_key = secrets.token_hex(16)
        self.partner_key = secrets.token_hex(16)
        self.partner_id = "openwaba"
        self.port = 0
        self._env = {
            "OPENWABA_CLOCK": "manual",
            "OPENWABA_SANDBOX_API_KEY": self.api_key,
            "OPENWABA_PARTNER_API_KEY": self.partner_key,
            "OPENWABA_PARTNER_ID": self.partner_id,
            "OPENWABA_LOG_LEVEL": "warning",
            **(env or {}),
        }
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "openwaba.log"

    def start(self) -> GatewayProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for attempt in range(_PORT_ATTEMPTS):
            self.port = free_port()
            self._spawn()
            try:
                self._wait_ready()
                return self
            except RuntimeError:
                if "address already in use" not in self.log_tail().lower() or attempt == _PORT_ATTEMPTS - 1:
                    raise
        return self

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def __enter__(self) -> GatewayProcess:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def _spawn(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPENWABA_")}
        env.update(self._env)
        command = [sys.executable, "-m", "openwaba", "serve", "--host", "127.0.0.1", "--port", str(self.port),
                   "--data-dir", str(self.data_dir)]
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                             env=env, start_new_session=True)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        request = urllib.request.Request(self.url + "/health_status", headers={"D360-API-KEY": self.api_key})
        while True:
            if self._process is None or self._process.poll() is not None:
                raise RuntimeError(f"openwaba exited while starting:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(request, timeout=2):
                    return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                waited = f"{START_TIMEOUT:g} s"
                raise RuntimeError(f"openwaba did not answer on {self.url} within {waited}:\n{self.log_tail()}")
            time.sleep(0.05)

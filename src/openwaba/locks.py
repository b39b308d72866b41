"""File locks (flock): one process per data directory, held for the life of the
process, and named locks that processes sharing a database take in turn."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import AsyncIterator
from pathlib import Path


def hold_exclusively(path: Path, mode: int = 0o600) -> int | None:
    """Lock `path` (created if missing) for this process; the file descriptor to keep
    open, or None when another process holds the lock. The kernel releases it when
    the process dies, however it dies."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, mode)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def wait_exclusively(path: Path, mode: int = 0o600) -> int:
    """Lock `path` (created if missing), waiting while another holder has it; the
    file descriptor, whose closing releases the lock."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, mode)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except BaseException:
        os.close(fd)
        raise
    return fd


@contextlib.asynccontextmanager
async def held(path: Path) -> AsyncIterator[None]:
    """`wait_exclusively` for asyncio code: waited for in a thread, so the event loop
    runs on. A waiter cancelled before it gets the lock lets go of it as soon as its
    thread does get it."""
    waiting = asyncio.get_running_loop().run_in_executor(None, wait_exclusively, path)
    try:
        fd = await asyncio.shield(waiting)
    except asyncio.CancelledError:
        waiting.add_done_callback(_let_go)
        raise
    try:
        yield
    finally:
        os.close(fd)


def _let_go(taken: asyncio.Future[int]) -> None:
    if not taken.cancelled() and taken.exception() is None:
        os.close(taken.result())

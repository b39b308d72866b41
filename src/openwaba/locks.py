"""One process per file: an advisory lock held for the life of the process."""

from __future__ import annotations

import fcntl
import os
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

"""File locks: a named lock excludes other holders, and a waiter that gives up does not keep it."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from openwaba import locks


def test_a_cancelled_waiter_lets_go_of_the_lock_once_it_gets_it(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"

    async def scenario() -> None:
        holder = locks.wait_exclusively(path)  # another holder: the waiter below must wait
        entered = asyncio.Event()

        async def wait() -> None:
            async with locks.held(path):
                entered.set()

        waiter = asyncio.ensure_future(wait())
        await asyncio.sleep(0)  # the waiter starts: its thread waits for the lock
        waiter.cancel()
        await asyncio.gather(waiter, return_exceptions=True)
        os.close(holder)  # the cancelled waiter's thread takes the lock, then must let go of it
        deadline = time.monotonic() + 5
        while (fd := locks.hold_exclusively(path)) is None:  # bounded polling, never blocking
            assert time.monotonic() < deadline, "the cancelled waiter kept the lock"
            await asyncio.sleep(0.01)
        os.close(fd)
        assert not entered.is_set()

    asyncio.run(scenario())


def test_the_lock_is_free_again_after_the_block(tmp_path: Path) -> None:
    path = tmp_path / "y.lock"

    async def scenario() -> None:
        async with locks.held(path):
            assert locks.hold_exclusively(path) is None  # held: a non-blocking attempt fails
        fd = locks.hold_exclusively(path)
        assert fd is not None
        os.close(fd)

    asyncio.run(scenario())

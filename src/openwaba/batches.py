"""Group commit's intake: a writer takes every job that queued up while it was
busy, so one transaction (and one fsync) serves them all."""

from __future__ import annotations

import asyncio
import queue
from collections.abc import Iterable
from typing import Any, TypeVar

T = TypeVar("T")
# A caller's future, and what its job gave: a result, or an error.
Outcome = tuple["asyncio.Future[Any]", Any, BaseException | None]


def next_batch(jobs: queue.SimpleQueue[T | None], limit: int) -> list[T] | None:
    """Block for one job, then take what else is queued, up to `limit`.

    None once the queue holds the stop marker (None) at its head; a marker found
    behind jobs is put back, so the jobs before it still form a batch.
    """
    first = jobs.get()
    if first is None:
        return None
    batch = [first]
    while len(batch) < limit:
        try:
            job = jobs.get_nowait()
        except queue.Empty:
            break
        if job is None:
            jobs.put(None)
            break
        batch.append(job)
    return batch


async def drain(jobs: asyncio.Queue[T], limit: int) -> list[T]:
    """Wait for one job, then take what else is queued, up to `limit` (the asyncio twin of next_batch)."""
    batch = [await jobs.get()]
    while len(batch) < limit and not jobs.empty():
        batch.append(jobs.get_nowait())
    return batch


def settle(outcomes: Iterable[Outcome]) -> None:
    """Resolve each caller's future with its job's result or error. A caller that
    went away (its request was cancelled) is skipped: the write happened all the same."""
    for future, result, error in outcomes:
        if future.done():
            continue
        if error is None:
            future.set_result(result)
        else:
            future.set_exception(error)

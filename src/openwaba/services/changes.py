"""`Changes`: an in-process broadcast of "something of channel N changed", for the
web console's live updates (`GET /console/stream`).

`notify()` is called from hot paths (ingest, delivery outcomes, configuration
writes), so it never blocks and never allocates more than a few entries per
subscriber: each subscriber has a small bounded set of pending changes; the same
change twice is kept once, and a full set collapses into one change per kind with
no `wa_id` ("reload all of them") instead of growing. A slow or stalled console
therefore costs a constant amount of memory.

Process-local by design: with several nodes sharing a PostgreSQL database a
change made on another node is not heard here; the console shows it on its next
re-fetch (after the next local change, or when its stream reconnects).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator, Callable
from typing import TypedDict

PENDING_MAX = 32  # distinct pending changes per subscriber before they collapse per kind
TIMER_GRAIN = 0.1  # seconds: notify_later's due times are rounded up to this
TIMERS_MAX = 10_000  # notify_later's timers in flight at most


class Change(TypedDict):
    what: str  # "messages" | "deliveries" | "config"
    wa_id: str | None  # the simulated user concerned, or None: any / all of them


class Subscription:
    """One listener's pending changes; iterate it (`async for change in subscription`)
    or call `next_batch(timeout)` to also wake up for keep-alives."""

    def __init__(self, loop: asyncio.AbstractEventLoop, limit: int) -> None:
        self._loop = loop
        self._limit = limit
        self._pending: dict[tuple[str, str | None], None] = {}  # ordered set
        self._ready = asyncio.Event()
        self.closed = False

    # --- the producer side (any thread; called through Changes.notify) --------------------

    def _offer(self, what: str, wa_id: str | None) -> None:
        self._in_loop(self._add, what, wa_id)

    def _end(self) -> None:
        self._in_loop(self._close)

    def _in_loop(self, action: Callable[..., None], *args: str | None) -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            action(*args)
        elif not self._loop.is_closed():
            # asyncio.Event is not thread-safe: hand the call to the subscriber's loop.
            self._loop.call_soon_threadsafe(action, *args)

    def _add(self, what: str, wa_id: str | None) -> None:
        if self.closed or (what, None) in self._pending or (what, wa_id) in self._pending:
            return  # already announced (a kind-wide change covers every user)
        if len(self._pending) >= self._limit:
            self._collapse(what)
        else:
            self._pending[(what, wa_id)] = None
        self._ready.set()

    def _collapse(self, what: str) -> None:
        """Full: one change per kind, for all users (at most a handful of kinds exist)."""
        kinds = dict.fromkeys([kind for kind, _ in self._pending] + [what])
        self._pending = {(kind, None): None for kind in kinds}

    def _close(self) -> None:
        self.closed = True
        self._ready.set()

    # --- the consumer side (the subscriber's loop) ------------------------------------------

    async def next_batch(self, timeout: float | None = None) -> list[Change] | None:
        """The changes pending now, waiting up to `timeout` seconds for one: `[]` when
        none came in time, None once the broadcast is closed."""
        if not self._pending and not self.closed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ready.wait(), timeout)
        if self.closed:
            return None
        self._ready.clear()
        batch = [Change(what=what, wa_id=wa_id) for what, wa_id in self._pending]
        self._pending.clear()
        return batch

    def __aiter__(self) -> AsyncIterator[Change]:
        return self._changes()

    async def _changes(self) -> AsyncIterator[Change]:
        while (batch := await self.next_batch()) is not None:
            for change in batch:
                yield change


class Changes:
    def __init__(self, pending_max: int = PENDING_MAX) -> None:
        self._pending_max = pending_max
        self._subscribers: dict[int, set[Subscription]] = {}
        self._timers: dict[tuple[int, str, str | None, float], asyncio.TimerHandle] = {}
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def notify(self, channel_id: int, what: str, wa_id: str | None = None) -> None:
        """Channel `channel_id`'s `what` ("messages", "deliveries", "config") changed,
        for user `wa_id` or for all. Cheap and non-blocking; a no-op without listeners."""
        listeners = self._subscribers.get(channel_id)
        if not listeners:
            return
        for subscription in tuple(listeners):  # a copy: another thread may (un)subscribe meanwhile
            subscription._offer(what, wa_id)

    def notify_all(self, what: str) -> None:
        """Every channel's `what` changed (e.g. the manual clock jumped: scheduled statuses came due)."""
        for channel_id in tuple(self._subscribers):
            self.notify(channel_id, what)

    def notify_later(self, delay: float, channel_id: int, what: str, wa_id: str | None = None) -> None:
        """`notify()` in `delay` seconds, for a change that takes effect then (a status the
        sandbox scheduled). Only while someone listens to the channel; due times are rounded
        up to TIMER_GRAIN and the same change due in the same grain shares one timer, so a
        burst of sends costs a handful of timers (and never more than TIMERS_MAX).
        Call it from the event loop."""
        if delay <= 0:
            self.notify(channel_id, what, wa_id)
            return
        if self._closed or not self._subscribers.get(channel_id):
            return  # nobody watches: a console opened later fetches the state as it is then
        loop = asyncio.get_running_loop()
        due = math.ceil((loop.time() + delay) / TIMER_GRAIN) * TIMER_GRAIN
        key = (channel_id, what, wa_id, due)
        if key not in self._timers and len(self._timers) < TIMERS_MAX:
            self._timers[key] = loop.call_at(due, self._fire, key)

    def _fire(self, key: tuple[int, str, str | None, float]) -> None:
        self._timers.pop(key, None)
        self.notify(key[0], key[1], key[2])

    @contextlib.asynccontextmanager
    async def subscribe(self, channel_id: int) -> AsyncIterator[Subscription]:
        """Listen to channel `channel_id` until the block exits (or `close()`)."""
        subscription = Subscription(asyncio.get_running_loop(), self._pending_max)
        if self._closed:
            subscription._close()
        listeners = self._subscribers.setdefault(channel_id, set())
        listeners.add(subscription)
        try:
            yield subscription
        finally:
            listeners.discard(subscription)
            if not listeners and self._subscribers.get(channel_id) is listeners:
                del self._subscribers[channel_id]

    def subscribers(self, channel_id: int) -> int:
        return len(self._subscribers.get(channel_id, ()))

    def close(self) -> None:
        """The server is stopping: every subscription ends (and new ones end at once), so
        open event streams finish and the HTTP server can shut down."""
        self._closed = True
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for listeners in tuple(self._subscribers.values()):
            for subscription in tuple(listeners):
                subscription._end()

"""Handling what was acknowledged: workers, retries, ordering and the status merge.

One coroutine (the pump) does the bookkeeping in rounds, at most every
`_ROUND_EVERY` seconds: it reads newly committed bodies, parses them here in the
event loop (the writer thread only runs SQL, so acks never queue behind parsing),
then in one writer-thread transaction records the outcomes of finished attempts,
turns the parsed items into work rows and claims due rows for idle workers. Rows
are claimed in arrival order; rows sharing a *lane* never run at the same time:

- `ordered=True`: a lane is a conversation (the user's wa_id), strictly: the next
  item waits until the previous one is done or dead-lettered, retries included;
- `ordered=False`: only the statuses of one message share a lane, and a status
  waiting for its retry holds nothing up.

A status reaches `on_status` only if it advanced the message's merged state
when it arrived, and no higher status has been handed to `on_status` since (so
a retried `delivered` never follows a handled `read`). `on_event` sees every
item once. Each handler of an item succeeds at most once: the handlers that
succeeded are remembered, and a retry runs only the ones that failed.
"""

from __future__ import annotations

import asyncio
import collections
import heapq
import inspect
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from openwaba.receiver.events import Event, Status
from openwaba.receiver.journal import (
    DEAD,
    DONE,
    PENDING,
    Claimed,
    Cycle,
    Journal,
    Outcome,
    envelope_body,
    prune,
    split,
    unexpanded,
)
from openwaba.receiver.parsing import BodyError, parse_body

log = logging.getLogger("openwaba.receiver")

Handler = Callable[[Any], Awaitable[None] | None]
_EXPAND_LIMIT = 64  # envelopes split per round (parsed in the event loop; the writer only inserts their items)
_SPLIT_SLICE = 8  # envelopes parsed between two chances for the event loop to serve requests
_CACHE_LIMIT = 10_000  # items parsed when split, kept for their first attempt
_PREFETCH = 16  # rows held per worker (running or ready): a freed worker starts at once, and a round
# claims as many rows as it can split envelopes (_EXPAND_LIMIT with the default 4 workers)
_ROUND_EVERY = 0.005  # seconds: at most this often a round (handling starts at most this much later; acks never wait)
_IDLE_WAKE = 1.0  # seconds: look for due retries at least this often even if nobody wakes the pump
_PRUNE_EVERY = 3600.0
RETENTION_SECONDS = 8 * 86400  # longer than any sender retries (Meta: 7 days), so de-duplication holds


@dataclass(frozen=True, slots=True)
class Registered:
    function: Handler
    is_async: bool
    gated: bool  # an on_status handler: skipped for statuses that do not advance the state


class Handlers:
    """The functions registered per kind of item; on_event ones see every kind."""

    def __init__(self) -> None:
        self._by_kind: dict[str, list[Registered]] = {}
        self._every: list[Registered] = []

    def add(self, kind: str | None, function: Handler) -> None:
        registered = Registered(function, inspect.iscoroutinefunction(function), kind == "status")
        (self._every if kind is None else self._by_kind.setdefault(kind, [])).append(registered)

    def for_kind(self, kind: str) -> list[Registered]:
        # Positions in this list are the bits of a row's done_mask: kind handlers first, then on_event.
        return self._by_kind.get(kind, []) + self._every


class Dispatcher:
    def __init__(
        self,
        journal: Journal,
        handlers: Handlers,
        clock: Callable[[], float],
        workers: int,
        ordered: bool,
        retry_delays: Sequence[float],
        max_attempts: int,
    ) -> None:
        if workers < 1 or max_attempts < 1 or not retry_delays:
            raise ValueError("workers and max_attempts must be at least 1, retry_delays not empty")
        self._journal = journal
        self._handlers = handlers
        self._clock = clock
        self._workers = workers
        self._strict = ordered
        self._delays = tuple(retry_delays)
        self._max_attempts = max_attempts
        self._claimed: dict[int, str | None] = {}  # work id -> lane: ready, running, or its outcome not yet committed
        self._ready: collections.deque[Claimed] = collections.deque()
        self._running = 0
        self._outcomes: list[Outcome] = []
        self._cache: dict[int, Event] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._round = asyncio.Lock()
        self._pump_task: asyncio.Task[None] | None = None
        self._last_prune = -math.inf
        self._retries: list[float] = []  # due times of scheduled retries (a heap), so the pump sleeps until one
        self._scan_due = True  # until the first round has looked up retries left by an earlier process
        self._appended = True  # bodies were committed since the last look at the queue
        self._expanded_all = False  # the last look found every committed body split already

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        if self._pump_task is None:
            self._pump_task = asyncio.get_running_loop().create_task(self._pump(), name="receiver-pump")

    async def stop(self, grace: float) -> None:
        """Stop claiming, give running handlers `grace` seconds, record what finished."""
        if self._pump_task is not None:
            self._pump_task.cancel()
            await asyncio.gather(self._pump_task, return_exceptions=True)
            self._pump_task = None
        for row in self._ready:  # still pending in the queue: claimed again after the restart
            self._claimed.pop(row.id, None)
        self._ready.clear()
        if self._tasks:
            _, running = await asyncio.wait(set(self._tasks), timeout=grace)
            for task in running:
                task.cancel()  # still pending in the queue: handled again after the restart
            await asyncio.gather(*running, return_exceptions=True)
        if self._outcomes:
            await self._round_trip(claim=False)
        # Whatever was cancelled is still pending in the queue; a later start claims it afresh.
        self._claimed.clear()
        self._cache.clear()
        self._running = 0
        self._retries.clear()
        self._scan_due = self._appended = True
        self._expanded_all = False

    def wake(self) -> None:
        """Look for due work now (retries after the clock moved, revived dead letters)."""
        self._wake.set()

    def appended(self) -> None:
        """Bodies were committed: split them into work at the next round."""
        self._appended = True
        self._wake.set()

    async def run_pending(self) -> int:
        """Handle everything due now, including retries that come due meanwhile with a zero delay.

        Returns the number of attempts made.
        """
        attempts = 0
        while True:
            started, expanded_all = await self._round_trip(claim=True)
            attempts += started
            if self._tasks:
                await asyncio.gather(*set(self._tasks))
            elif not started and not self._ready and expanded_all and not self._outcomes:
                return attempts

    # --- the pump ------------------------------------------------------------------------

    async def _pump(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._wake.clear()
            began = loop.time()
            try:
                _, expanded_all = await self._round_trip(claim=True)
                await self._prune_now_and_then()
            except Exception:
                log.exception("receiver: bookkeeping failed; trying again shortly")
                await asyncio.sleep(_IDLE_WAKE)
                continue
            if not expanded_all:
                continue
            wait = self._until_next_retry()
            try:
                async with asyncio.timeout(min(_IDLE_WAKE, max(0.0, wait))):
                    await self._wake.wait()
            except TimeoutError:
                pass
            # Paced: every round is a commit writing whole pages, so what arrives meanwhile shares the next one.
            await asyncio.sleep(max(0.0, began + _ROUND_EVERY - loop.time()))

    async def _round_trip(self, claim: bool) -> tuple[int, bool]:
        """Record finished attempts, turn new envelopes into work rows and claim due rows.

        Returns how many rows it claimed, and whether every committed envelope has been split.
        """
        async with self._round:
            fresh: list[tuple[int, str | None, bytes]] = []
            if self._appended or not self._expanded_all:
                self._appended = False
                fresh = await self._journal.run(lambda conn: unexpanded(conn, _EXPAND_LIMIT))
            envelopes = []
            for index, row in enumerate(fresh, 1):
                envelopes.append(split(*row))
                if index % _SPLIT_SLICE == 0:
                    await asyncio.sleep(0)  # let requests in between: acks must not wait for parsing
            outcomes, self._outcomes = self._outcomes, []
            finished = {o.id for o in outcomes}
            held = [work_id for work_id in self._claimed if work_id not in finished]
            limit = max(0, self._workers * _PREFETCH - len(held)) if claim else 0
            cycle = Cycle(outcomes, self._clock(), self._strict, limit, held, envelopes, self._scan_due)
            try:
                result = await self._journal.run(lambda conn: self._journal.cycle(conn, cycle))
            except BaseException:
                self._outcomes[:0] = outcomes  # recorded next time
                self._expanded_all = False  # and the envelopes read again
                raise
            self._expanded_all = len(fresh) < _EXPAND_LIMIT
            for work_id in finished:
                self._claimed.pop(work_id, None)
            if result.next_due is not None:
                heapq.heappush(self._retries, result.next_due)
            self._scan_due = False
            if len(self._cache) < _CACHE_LIMIT:
                self._cache.update(result.parsed)
            return self._hold(result.claimed), self._expanded_all

    def _hold(self, rows: list[Claimed]) -> int:
        """Keep newly claimed rows (at most one per lane) ready, and start as many as there are idle workers."""
        busy = {lane for lane in self._claimed.values() if lane is not None}
        held = 0
        for row in rows:
            if len(self._claimed) >= self._workers * _PREFETCH:
                break
            if row.id in self._claimed or (row.lane is not None and row.lane in busy):
                continue
            self._claimed[row.id] = row.lane
            if row.lane is not None:
                busy.add(row.lane)
            self._ready.append(row)
            held += 1
        self._fill()
        return held

    def _fill(self) -> None:
        while self._ready and self._running < self._workers:
            self._running += 1
            task = asyncio.get_running_loop().create_task(self._attempt(self._ready.popleft()))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _until_next_retry(self) -> float:
        """Seconds until the next known retry (0: one came due since the last round). Retries left by an
        earlier process are looked up once at start; later ones surface within _IDLE_WAKE."""
        now = self._clock()
        came_due = False
        while self._retries and self._retries[0] <= now:
            heapq.heappop(self._retries)
            came_due = True
        if came_due:
            return 0.0
        return self._retries[0] - now if self._retries else _IDLE_WAKE

    async def _prune_now_and_then(self) -> None:
        now = self._clock()
        if now - self._last_prune >= _PRUNE_EVERY:
            self._last_prune = now
            await self._journal.run(lambda conn: prune(conn, now - RETENTION_SECONDS))

    # --- one attempt -----------------------------------------------------------------------

    async def _attempt(self, row: Claimed) -> None:
        event = self._cache.pop(row.id, None)
        if event is None:  # a retry, or work left by an earlier process
            try:
                body = await self._journal.run(lambda conn: envelope_body(conn, row.envelope))
                event = parse_body(body)[row.item]
            except (BodyError, IndexError) as exc:
                self._finish(Outcome(row.id, DEAD, row.attempts, row.done_mask, self._clock(), f"unparseable: {exc}"))
                return
        # A status that did not advance the state when it arrived, or was overtaken
        # by a higher one handed to on_status since, skips the on_status handlers.
        advancing = bool(row.advances) and (row.rank is None or row.rank > row.handled_rank)
        mask, error = row.done_mask, None
        for bit, handler in enumerate(self._handlers.for_kind(event.kind)):
            if mask >> bit & 1 or (handler.gated and not advancing):
                continue
            try:
                await self._call(handler, event)
            except Exception as exc:
                log.warning("receiver: handler %s failed on %s: %r", _name(handler.function), event.kind, exc)
                error = f"{type(exc).__name__}: {exc}"
            else:
                mask |= 1 << bit
        self._finish(self._outcome(row, event, mask, error, advancing))

    @staticmethod
    async def _call(handler: Registered, event: Event) -> None:
        if handler.is_async:
            await cast(Awaitable[None], handler.function(event))
        else:
            await asyncio.to_thread(handler.function, event)  # a sync handler must not block the acks

    def _outcome(self, row: Claimed, event: Event, mask: int, error: str | None, advancing: bool) -> Outcome:
        attempts = row.attempts + 1
        now = self._clock()
        if error is None:
            handled = row.rank if advancing and isinstance(event, Status) else None
            return Outcome(row.id, DONE, attempts, mask, now, None, row.wamid, handled)
        if attempts >= self._max_attempts:
            return Outcome(row.id, DEAD, attempts, mask, now, error)
        due = now + self._delays[min(attempts, len(self._delays)) - 1]
        heapq.heappush(self._retries, due)
        return Outcome(row.id, PENDING, attempts, mask, due, error)

    def _finish(self, outcome: Outcome) -> None:
        self._outcomes.append(outcome)
        self._running -= 1
        self._fill()
        self._wake.set()


def _name(function: Handler) -> str:
    return getattr(function, "__qualname__", repr(function))

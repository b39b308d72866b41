"""The dispatcher: posts due deliveries to their destinations and records
every attempt.

Deliveries are claimed from storage with a lease, posted concurrently (up to
the concurrency limit), and their outcomes committed before anything else is
decided. While this process holds deliveries (in flight, or queued behind
their conversation) it renews their leases; if it dies, the leases expire and
any process sharing the store takes the work over. Deliveries of one conversation to one destination are posted one at
a time, in the order they became due, so `sent`, `delivered` and `read` of a
message never overtake each other unless a retry intervenes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

import aiohttp

from openwaba import metrics
from openwaba.clock import Clock
from openwaba.domain.deliveries import AttemptOutcome, DeliveryState, DueDelivery
from openwaba.domain.errors import StorageError
from openwaba.domain.retry import RetryPolicy, honour_retry_after, parse_retry_after
from openwaba.domain.signing import meta_signature, standard_signature
from openwaba.storage.base import AttemptRecord, Storage

log = logging.getLogger("openwaba.delivery")

_CLAIM_BATCH = 256
_IDLE_POLL = 5.0  # a safety net; new work and clock jumps wake the dispatcher at once
_EXCERPT = 512
_USER_AGENT = "openwaba-webhooks/0.1"


class CircuitBreaker:
    """Pauses a destination that has failed without a break for `open_after`
    seconds: its due deliveries are postponed, not attempted, except one probe
    every `probe_every` seconds. The first success closes the circuit.

    State is per process and rebuilt from live traffic after a restart.
    """

    def __init__(self, open_after: float = 1800.0, probe_every: float = 60.0) -> None:
        self._open_after = open_after
        self._probe_every = probe_every
        self._failing_since: dict[int, float] = {}
        self._next_probe: dict[int, float] = {}

    def is_open(self, destination_id: int, now: float) -> bool:
        since = self._failing_since.get(destination_id)
        return since is not None and now - since >= self._open_after

    def admit(self, destination_id: int, now: float) -> float | None:
        """None: attempt it now. Otherwise the time to postpone the delivery to."""
        if not self.is_open(destination_id, now):
            return None
        probe_at = self._next_probe.get(destination_id, now)
        if now >= probe_at:
            self._next_probe[destination_id] = now + self._probe_every  # this one is the probe
            return None
        return probe_at

    def record(self, destination_id: int, succeeded: bool, now: float) -> bool:
        """Note an outcome; True when this success closed an open circuit."""
        if not succeeded:
            self._failing_since.setdefault(destination_id, now)
            return False
        was_open = self.is_open(destination_id, now)
        self._failing_since.pop(destination_id, None)
        self._next_probe.pop(destination_id, None)
        return was_open


class Dispatcher:
    def __init__(
        self,
        storage: Storage,
        clock: Clock,
        policy: RetryPolicy,
        timeout: float,
        concurrency: int,
        per_destination: int = 16,
        breaker: CircuitBreaker | None = None,
        lease: float = 30.0,
        on_recorded: Callable[[DueDelivery], None] = lambda delivery: None,
    ):
        self._on_recorded = on_recorded  # e.g. the console's live view
        self._storage = storage
        self._clock = clock
        self._policy = policy
        self._timeout = timeout
        self._concurrency = concurrency
        self._per_destination = per_destination
        self._destination_slots: dict[int, asyncio.Semaphore] = {}
        self._breaker = breaker or CircuitBreaker()
        self._lease = max(lease, timeout + 1.0)
        self._in_flight = 0
        self._wake = asyncio.Event()
        self._tails: dict[tuple[str, str], asyncio.Task[None]] = {}
        # Ids being attempted (or queued behind their conversation) by this process.
        # The lease starts at claim time, so a delivery waiting behind slow earlier
        # events, or a jump of the manual clock, can outlive it: never claim those twice.
        self._active: set[int] = set()
        self._session: aiohttp.ClientSession | None = None

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        connector = aiohttp.TCPConnector(limit=self._concurrency, ttl_dns_cache=60)
        timeout = aiohttp.ClientTimeout(total=self._timeout)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=False) as session:
            self._session = session
            renewing = asyncio.create_task(self._renew_leases(), name="lease-renewal")
            try:
                while True:
                    self._wake.clear()
                    claimed = await self._claim()
                    if claimed and self._in_flight < self._concurrency:
                        continue  # there may be more due right now
                    await self._sleep()
            finally:
                renewing.cancel()

    async def _renew_leases(self) -> None:
        """Keep what this process holds its own, however long it waits behind its conversation."""
        while True:
            await asyncio.sleep(self._lease / 3)
            if self._active:
                try:
                    await self._storage.renew_leases(sorted(self._active), self._clock.now() + self._lease)
                except StorageError as exc:
                    log.warning("renewing delivery leases failed: %s", exc)

    async def _claim(self) -> int:
        free = self._concurrency - self._in_flight
        if free <= 0:
            return 0
        now = self._clock.now()
        due = await self._storage.claim_due(now, min(free, _CLAIM_BATCH), now + self._lease)
        postponed: dict[float, list[int]] = {}
        for delivery in due:
            if delivery.id in self._active:
                continue
            resume_at = self._breaker.admit(delivery.destination_id, now)
            if resume_at is None:
                self._start(delivery)
            else:
                postponed.setdefault(resume_at, []).append(delivery.id)
        for resume_at, ids in postponed.items():
            await self._storage.defer(ids, resume_at)
        return len(due)

    async def _sleep(self) -> None:
        delay = _IDLE_POLL
        if self._in_flight < self._concurrency:
            now = self._clock.now()
            next_due = await self._storage.next_due_at(now)
            if next_due is not None:
                delay = min(delay, max(0.0, next_due - now))
        if delay <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), delay)

    def _start(self, delivery: DueDelivery) -> None:
        self._in_flight += 1
        self._active.add(delivery.id)
        key = (delivery.url, delivery.order_key)
        previous = self._tails.get(key)
        task = asyncio.create_task(self._deliver_after(previous, delivery))
        self._tails[key] = task
        task.add_done_callback(lambda t: self._finished(key, delivery.id, t))

    def _finished(self, key: tuple[str, str], delivery_id: int, task: asyncio.Task[None]) -> None:
        self._in_flight -= 1
        self._active.discard(delivery_id)
        if self._tails.get(key) is task:
            del self._tails[key]
        if not task.cancelled() and task.exception() is not None:
            log.error("delivery task failed", exc_info=task.exception())
        self._wake.set()

    async def _deliver_after(self, previous: asyncio.Task[None] | None, delivery: DueDelivery) -> None:
        if previous is not None:
            await asyncio.wait([previous])  # keep the conversation's order; its outcome does not matter
        slots = self._destination_slots.setdefault(delivery.destination_id, asyncio.Semaphore(self._per_destination))
        async with slots:
            outcome = await self._attempt(delivery)
        label = str(delivery.destination_id)
        metrics.attempts.labels(label, "succeeded" if outcome.succeeded else "failed").inc()
        metrics.latency.labels(label).observe(outcome.duration_ms / 1000)
        now = self._clock.now()
        await self._storage.record_attempts([self._decide(delivery, outcome)], now)
        self._on_recorded(delivery)
        if self._breaker.record(delivery.destination_id, outcome.succeeded, now):
            log.info("destination %s answers again: resuming its paused deliveries", delivery.url)
            await self._storage.undefer(delivery.destination_id, now)

    async def _attempt(self, delivery: DueDelivery) -> AttemptOutcome:
        assert self._session is not None
        started_at = self._clock.now()
        # Signatures carry wall-clock time: receivers compare it with their own clock.
        headers = _headers(delivery, int(time.time()))
        status: int | None = None
        retry_after: float | None = None
        error: str | None = None
        excerpt = ""
        t0 = time.perf_counter()
        try:
            # Redirects are not followed: a 3xx is a failed attempt (and following one
            # could lead a production webhook to an address the SSRF guard refused).
            post = self._session.post(delivery.url, data=delivery.body, headers=headers, allow_redirects=False)
            async with post as response:
                status = response.status
                if status in (429, 503):
                    # an HTTP date in Retry-After is the receiver's wall clock, not ours
                    retry_after = parse_retry_after(response.headers.get("Retry-After"), time.time())
                excerpt = (await response.content.read(_EXCERPT)).decode("utf-8", "replace")
        except TimeoutError:
            error = f"timeout: no answer within {self._timeout:g} s"
        except (aiohttp.ClientError, ValueError) as exc:  # ValueError: a URL or header aiohttp refuses
            error = f"{type(exc).__name__}: {exc}"
        duration_ms = (time.perf_counter() - t0) * 1000
        if status is not None and status != 200:
            error = f"HTTP {status}"
        return AttemptOutcome(delivery.id, started_at, duration_ms, status, error, excerpt, retry_after, headers)

    def _decide(self, delivery: DueDelivery, outcome: AttemptOutcome) -> AttemptRecord:
        destination = delivery.destination_id
        if outcome.succeeded:
            return AttemptRecord(outcome, DeliveryState.DELIVERED, None, destination)
        if outcome.status_code == 410:
            log.warning("destination %s answered 410 Gone: disabling it", delivery.url)
            return AttemptRecord(outcome, DeliveryState.DEAD, None, destination, disable_destination=True)
        now = self._clock.now()
        failures = delivery.attempts + 1
        next_at = self._policy.next_attempt_at(delivery.created_at, failures, now, delivery.deadline)
        if outcome.retry_after is not None:
            next_at = honour_retry_after(next_at, now, outcome.retry_after, delivery.deadline)
        if next_at is None:
            log.warning(
                "delivery %s of event %s dead-lettered after %d attempts", delivery.id, delivery.event_id, failures
            )
            return AttemptRecord(outcome, DeliveryState.DEAD, None, destination)
        return AttemptRecord(outcome, DeliveryState.PENDING, next_at, destination)


def _headers(delivery: DueDelivery, timestamp: int) -> dict[str, str]:
    headers = {
        "Content-Type": "application/json",
        "User-Agent": _USER_AGENT,
        "webhook-id": delivery.event_id,
        "webhook-timestamp": str(timestamp),
        **delivery.headers,
    }
    if delivery.secrets:
        headers["webhook-signature"] = standard_signature(delivery.secrets, delivery.event_id, timestamp, delivery.body)
    if delivery.app_secret:
        headers["X-Hub-Signature-256"] = meta_signature(delivery.app_secret, delivery.body)
    return headers

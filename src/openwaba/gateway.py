"""The composition root: builds storage, clock, connectors and services from
Settings, and runs the background workers for the lifetime of the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import socket
from collections.abc import Sequence
from dataclasses import replace

from openwaba.clock import Clock, ManualClock
from openwaba.config import Settings
from openwaba.connectors.base import Connector
from openwaba.connectors.meta import GraphSettings, MetaConnector
from openwaba.connectors.sandbox import SandboxConnector
from openwaba.domain.accounts import Channel, MetaLink
from openwaba.domain.deliveries import DueDelivery, conversation_of
from openwaba.domain.errors import StateError
from openwaba.services.accounts import Accounts, SandboxSeed
from openwaba.services.changes import Changes
from openwaba.services.delivery import CircuitBreaker, Dispatcher
from openwaba.services.delivery_log import DeliveryLog
from openwaba.services.ingest import Ingest
from openwaba.services.limits import Limits
from openwaba.services.media import Media
from openwaba.services.meta_inbox import MetaInbox
from openwaba.services.profiles import Profiles
from openwaba.services.scenarios import Scenarios
from openwaba.services.sending import Sending
from openwaba.services.templates import Templates
from openwaba.services.webhooks import Webhooks
from openwaba.storage.base import NewEvent, Storage
from openwaba.storage.sqlite import SQLiteStorage

log = logging.getLogger("openwaba")

_CLOCK_OFFSET = "clock.offset"
_GREETED = "sandbox.greeted"


class Gateway:
    def __init__(self, settings: Settings, worker: bool = False) -> None:
        """`worker`: one of the processes of `openwaba serve --workers N`, which share
        the database; their parent has run `prepare()` before starting them."""
        self.settings = settings
        self.worker = worker
        self.clock: Clock = ManualClock() if settings.clock == "manual" else Clock()
        self.storage = _storage(settings, worker)
        self.changes = Changes()  # what the console's live view follows
        self.webhooks = Webhooks(self.storage, multi_max=settings.multi_webhook_max, ssrf_guard=settings.ssrf_guard)
        self.accounts = Accounts(self.storage, self.clock, on_webhook_removed=self.webhooks.forget)
        self.dispatcher = Dispatcher(
            self.storage,
            self.clock,
            settings.retry_policy(),
            settings.webhook_timeout,
            settings.delivery_concurrency,
            settings.destination_concurrency,
            CircuitBreaker(settings.circuit_open_after, settings.circuit_probe_every),
            settings.lease_seconds,
            on_recorded=self._attempted,
        )
        self.ingest = Ingest(
            self.storage, self.accounts, self.webhooks, self.dispatcher.wake, settings.retry_horizon, self._ingested
        )
        self.delivery_log = DeliveryLog(
            self.storage, self.clock, self.webhooks, settings.retry_horizon, self.dispatcher.wake
        )
        self.media = Media(self.storage, self.clock, settings.data_dir / "media")
        self.templates = Templates(
            self.storage,
            self.accounts,
            self.clock,
            self.ingest,
            settings.sandbox_template_review_seconds,
            re.compile(settings.sandbox_template_reject) if settings.sandbox_template_reject else None,
        )
        self.scenarios = Scenarios(self.storage)
        self.sandbox = SandboxConnector(
            self.storage,
            self.ingest,
            self.clock,
            settings.sandbox_status_delays,
            self.media,
            self.templates,
            self.scenarios,
            settings.sandbox_statuses,
        )
        graph = GraphSettings(
            settings.meta_graph_url, settings.meta_api_version, settings.meta_timeout, settings.meta_retry_delays
        )
        self.meta = MetaConnector(graph, self.accounts, self.media, self.storage, self.clock)
        self.meta_inbox = MetaInbox(self.storage, self.accounts, self.meta, self.media, self.ingest, self.clock)
        connectors: dict[str, Connector] = {self.sandbox.name: self.sandbox, self.meta.name: self.meta}
        self.profiles = Profiles(self.storage)
        self.limits = Limits(self.storage, settings.throughput, settings.rate_limits)
        self.sending = Sending(
            self.storage,
            self.accounts,
            connectors,
            self.limits,
            self.clock,
            settings.lease_seconds,
            self.changes.notify,
        )
        self.clock.on_change(self.dispatcher.wake)
        self.clock.on_change(self._clock_moved)
        self.storage.listen(self.dispatcher.wake, self._forget_configuration)
        self.seed: SandboxSeed | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def prepare(self) -> None:
        """What the parent of several workers does once before starting them: the
        schema, the seed, and no leases left by a killed predecessor. The storage is
        closed again."""
        await self.storage.open()
        try:
            await self.storage.release_leases()
            await self._seed()
        finally:
            await self.storage.close()

    async def start(self) -> None:
        await self.storage.open()
        # With SQLite this process owns the data directory (the storage holds a lock
        # on it), so leases left by a killed predecessor are dropped at once; a
        # shared database keeps other nodes' leases. SQLite workers share the file
        # with each other: their parent released the stale leases before they started.
        if not self.worker or self.settings.database_url is not None:
            await self.storage.release_leases()
        await self._seed()
        recovered = await self.sending.recover()
        if recovered:
            log.info("re-queued %d accepted messages for hand-over", recovered)
        self._tasks = [
            asyncio.create_task(self.sending.run_handover(), name="handover"),
            asyncio.create_task(self.sending.run_reclaim(), name="reclaim"),
            asyncio.create_task(self.dispatcher.run(), name="dispatcher"),
            asyncio.create_task(self.meta_inbox.run(), name="meta-inbox"),
        ]
        for task in self._tasks:
            task.add_done_callback(_crash_loudly)

    async def _seed(self) -> None:
        if isinstance(self.clock, ManualClock):
            self.clock.offset = float(await self.storage.get_value(_CLOCK_OFFSET) or 0)
        s = self.settings
        async with self.storage.lock("start-up"):  # nodes starting together seed once
            await self.templates.backfill_starters()
            self.seed = await self.accounts.seed_sandbox(s.sandbox_api_key, s.sandbox_phone_number, s.sandbox_users)
            if s.sandbox_scenario is not None:
                await self.scenarios.load_file(self.seed.channel, s.sandbox_scenario)
            await self._greet(self.seed)
            await self._apply_connector(self.seed.channel)
            await self.media.start()  # the download-URL secret: one for every node

    async def _apply_connector(self, channel: Channel) -> None:
        """OPENWABA_CONNECTOR: the demo number talks to the sandbox or to Meta."""
        s = self.settings
        if s.connector is None:
            return
        link = None
        if s.connector == "meta":
            # check() made sure these are set
            link = MetaLink(
                channel.id,
                str(s.meta_phone_number_id),
                s.meta_waba_id,
                str(s.meta_access_token),
                str(s.meta_app_secret),
            )
        channel = await self.accounts.set_connector(channel, s.connector, link)
        self.seed = replace(self.seed, channel=channel) if self.seed else None

    def _ingested(self, events: Sequence[NewEvent]) -> None:
        """Tell the console what changed, when it takes effect (statuses are dated ahead)."""
        now = self.clock.now()
        for event in events:
            _, wa_id = conversation_of(event.order_key)
            if event.kind in ("message", "status"):
                self.changes.notify_later(event.created_at - now, event.channel_id, "messages", wa_id)
            self.changes.notify_later(event.created_at - now, event.channel_id, "deliveries")

    def _attempted(self, delivery: DueDelivery) -> None:
        channel_id, _ = conversation_of(delivery.order_key)
        if channel_id is not None:
            self.changes.notify(channel_id, "deliveries")

    def _clock_moved(self) -> None:
        self.changes.notify_all("messages")  # statuses dated in the skipped time are due now
        self.changes.notify_all("deliveries")

    def describe_storage(self) -> str:
        """Where the data lives, for the start-up summary (no password)."""
        if self.settings.database_url is None:
            return str(self.settings.data_dir.resolve())
        from openwaba.storage.postgres import redacted

        return f"{redacted(self.settings.database_url)}, media in {self.settings.data_dir.resolve()}"

    def _forget_configuration(self) -> None:
        """Another process changed configuration: drop every cache of it."""
        self.accounts.forget()
        self.webhooks.forget()
        self.limits.forget()
        self.scenarios.forget()
        self.sandbox.forget()

    async def _greet(self, seed: SandboxSeed) -> None:
        """On first start every simulated user says hello, which opens their
        customer-service windows: the printed quickstart works at once."""
        if await self.storage.get_value(_GREETED):
            return
        for user in seed.users:
            await self.sandbox.user_says(seed.channel, user.wa_id, "Hi! 👋")
        await self.storage.set_value(_GREETED, "1")

    async def advance_clock(self, seconds: float) -> float:
        if not isinstance(self.clock, ManualClock):
            raise StateError("the clock is the system clock; start openwaba with OPENWABA_CLOCK=manual to move it")
        self.clock.advance(seconds)
        await self.storage.set_value(_CLOCK_OFFSET, repr(self.clock.offset))
        return self.clock.now()

    async def stop(self) -> None:
        self.changes.close()  # open console streams end, so the HTTP server can stop
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.meta.close()
        await self.storage.close()


def _storage(settings: Settings, worker: bool) -> Storage:
    if settings.database_url is None:
        return SQLiteStorage(settings.database_path, shared=worker)
    from openwaba.storage.postgres import PostgresStorage  # asyncpg is the `postgres` extra

    node = settings.node_id or f"{socket.gethostname()}:{settings.port}"
    if worker:
        node = f"{node}/{os.getpid()}"  # the workers of one serve are nodes of their own
    return PostgresStorage(settings.database_url, settings.database_pool, node)


def _crash_loudly(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.critical("background worker %s stopped", task.get_name(), exc_info=task.exception())

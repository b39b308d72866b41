"""PostgreSQL storage: several openwaba nodes share one database.

- Writes on the hot paths (accepting a message, ingesting events, recording
  attempts) go through group commit: concurrent calls are queued and a writer
  task runs a whole batch in one transaction, so a burst of sends costs one
  commit, and consecutive calls of the same statement go out pipelined as one
  `executemany`. If the batch fails, each call is run again on its own, so one
  bad call gets its own error and the others still commit.
- Deliveries are claimed with `FOR UPDATE SKIP LOCKED` and a lease owned by this
  node; a node that dies loses its leases when they expire.
- New due work and configuration changes are announced with `NOTIFY`; every
  node listens on a dedicated connection, so idle nodes wake without polling.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

import asyncpg
import msgspec

from openwaba.batches import drain, settle
from openwaba.domain.accounts import Channel, ChannelFormat, ChannelMode, MetaLink, SandboxUser, Waba
from openwaba.domain.deliveries import (
    AttemptView,
    DeliveryFilter,
    DeliveryState,
    DeliveryView,
    Destination,
    DueDelivery,
)
from openwaba.domain.errors import ConfigError, ConflictError, StorageError
from openwaba.domain.throttle import SLACK, Rate
from openwaba.storage import mapping
from openwaba.storage.base import (
    ApiKeyInfo,
    AttemptRecord,
    ChannelLimits,
    ConversationEntry,
    InboundMessage,
    InboxPost,
    MediaFile,
    NewEvent,
    QueuedMessage,
    Storage,
    StoredTemplate,
)
from openwaba.storage.queries import load_migrations, load_queries

log = logging.getLogger("openwaba.postgres")

T = TypeVar("T")
if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    Connection: TypeAlias = asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]
Operation: TypeAlias = Callable[["Connection"], Awaitable[Any]]

_Q = load_queries("postgres")
_DUE = "openwaba_due"  # NOTIFY channel: deliveries became due
_CONFIG = "openwaba_config"  # NOTIFY channel: cached configuration is stale
_BATCH_LIMIT = 256
_WRITERS = 4  # batches in flight at once: one waits for its commit while the next is built
_NOTIFY_COALESCE = 0.005  # seconds: a burst of ingests wakes the other nodes once
_LATE_GRACE = 1.0  # as SQLite's: the final attempt may be claimed this much after the horizon
_PRUNE_EVERY = 600.0  # seconds between clean-ups of rate buckets at rest
_RETRYABLE = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)


@dataclass(frozen=True, slots=True)
class _Statement:
    """A write that is one statement with no result: batched as `executemany`."""

    query: str
    args: tuple[Any, ...]


_Write = _Statement | Operation


async def migrate(url: str) -> list[int]:
    """Apply the pending numbered migrations; the versions applied."""
    conn = await _connect(url)
    try:
        return await _migrate(conn)
    finally:
        await conn.close()


class PostgresStorage(Storage):
    def __init__(self, url: str, pool_size: int = 10, node: str | None = None) -> None:
        self._url = url
        self._pool_size = pool_size
        # Who holds leases. The gateway passes an id that is stable across restarts
        # (host:port), so a restarted node frees what its killed predecessor held at
        # once; the default suits one-off users (migrate, tests).
        self._node = node or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._node_lock: Connection | None = None
        self._pool: asyncpg.Pool[asyncpg.Record] | None = None
        self._writes: asyncio.Queue[tuple[_Write, asyncio.Future[Any]]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._on_due: Callable[[], None] = _nothing
        self._on_config: Callable[[], None] = _nothing
        self._due_pending = False
        self._notifying: set[asyncio.Task[None]] = set()

    # lifecycle ---------------------------------------------------------------
    async def open(self) -> None:
        try:
            await migrate(self._url)
            self._node_lock = await _connect(self._url)
            if not await self._node_lock.fetchval(_Q["try_lock_node"], self._node):
                await self._node_lock.close()
                raise ConfigError(f"node id {self._node!r} is in use by another running openwaba process")
            self._pool = await asyncpg.create_pool(self._url, min_size=1, max_size=self._pool_size)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            if self._node_lock is not None:
                await self._node_lock.close()
                self._node_lock = None
            raise StorageError(f"cannot open {redacted(self._url)}: {exc}") from None
        self._writes = asyncio.Queue()
        self._tasks = [asyncio.create_task(self._write_batches(), name="pg-writer") for _ in range(_WRITERS)]
        self._tasks.append(asyncio.create_task(self._listen(), name="pg-listener"))
        self._tasks.append(asyncio.create_task(self._prune(), name="pg-prune"))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
        if self._node_lock is not None:
            await self._node_lock.close()
            self._node_lock = None

    def listen(self, on_due: Callable[[], None], on_config: Callable[[], None]) -> None:
        self._on_due, self._on_config = on_due, on_config

    @contextlib.asynccontextmanager
    async def lock(self, name: str) -> AsyncIterator[None]:
        async with self._connection() as c:
            await c.execute(_Q["lock_named"], name)
            try:
                yield
            finally:
                await c.execute(_Q["unlock_named"], name)

    # plumbing ------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[Connection]:
        if self._pool is None:
            raise StorageError("storage is not open")
        try:
            async with self._pool.acquire() as conn:
                yield conn
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            raise _translate(exc) from exc  # _tx retries deadlocks by this cause

    async def _fetch(self, name: str, *args: Any) -> list[asyncpg.Record]:
        async with self._connection() as c:
            return list(await c.fetch(_Q[name], *args))

    async def _fetchrow(self, name: str, *args: Any) -> asyncpg.Record | None:
        async with self._connection() as c:
            return await c.fetchrow(_Q[name], *args)

    async def _tx(self, operation: Callable[[Connection], Awaitable[T]]) -> T:
        """Run one operation in its own transaction (retried after a deadlock)."""
        for attempt in range(3):
            try:
                async with self._connection() as c, c.transaction():
                    return await operation(c)
            except StorageError as exc:
                if not isinstance(exc.__cause__, _RETRYABLE) or attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _write(self, write: _Write) -> Any:
        """Queue a write for group commit; returns once it is committed."""
        if self._pool is None:
            raise StorageError("storage is not open")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._writes.put_nowait((write, future))
        return await future

    async def _write_batches(self) -> None:
        while True:
            batch = await drain(self._writes, _BATCH_LIMIT)
            writes = [write for write, _ in batch]
            try:
                results = await self._tx(functools.partial(_run_batch, writes=writes))
            except Exception as exc:
                if len(batch) == 1:
                    settle([(batch[0][1], None, exc)])
                    continue
                # Find out which call failed: each again on its own.
                await asyncio.gather(*(self._write_alone(write, future) for write, future in batch))
                continue
            settle((future, result, None) for (_, future), result in zip(batch, results))

    async def _write_alone(self, write: _Write, future: asyncio.Future[Any]) -> None:
        try:
            result = (await self._tx(lambda c: _run_batch(c, [write])))[0]
        except Exception as exc:
            settle([(future, None, exc)])
        else:
            settle([(future, result, None)])

    def _poke_due(self) -> None:
        """Tell the other nodes that work is due; a burst of calls sends one NOTIFY."""
        if self._due_pending or self._pool is None:
            return
        self._due_pending = True
        asyncio.get_running_loop().call_later(_NOTIFY_COALESCE, self._send_due)

    def _send_due(self) -> None:
        self._due_pending = False
        task = asyncio.create_task(self._notify(_DUE))
        self._notifying.add(task)  # a task nobody references may be collected before it runs
        task.add_done_callback(self._notified)

    def _notified(self, task: asyncio.Task[None]) -> None:
        self._notifying.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("NOTIFY to the other nodes failed: %s", task.exception())

    async def _notify(self, channel: str) -> None:
        async with self._connection() as c:
            await c.execute(_Q["notify"], channel)

    async def _listen(self) -> None:
        """Forever: hold a LISTEN connection; after a reconnect, assume everything changed."""
        while True:
            try:
                conn = await _connect(self._url)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("cannot listen for other nodes' changes, retrying: %s", exc)
                await asyncio.sleep(1.0)
                continue
            try:
                await self._listen_on(conn)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("lost the LISTEN connection, reconnecting: %s", exc)
            finally:
                with contextlib.suppress(Exception):
                    await conn.close()

    async def _listen_on(self, conn: Connection) -> None:
        lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def on_lost(_: object) -> None:
            if not lost.done():
                lost.set_result(None)

        conn.add_termination_listener(on_lost)
        await conn.add_listener(_DUE, lambda *_: self._on_due())
        await conn.add_listener(_CONFIG, lambda *_: self._on_config())
        self._on_config()  # anything may have changed while nobody listened
        self._on_due()
        await lost

    async def _prune(self) -> None:
        while True:
            await asyncio.sleep(_PRUNE_EVERY)
            try:
                async with self._connection() as c:
                    # A bucket due in the past means the same as no bucket. Senders use
                    # the gateway clock, which may run ahead of wall time, never behind.
                    await c.execute(_Q["prune_rate_buckets"], time.time() - 3600)
            except StorageError as exc:
                log.warning("pruning rate buckets failed: %s", exc)

    # accounts -----------------------------------------------------------------
    async def create_waba(self, waba: Waba, now: float, templates: Sequence[StoredTemplate] = ()) -> None:
        async def op(c: Connection) -> None:
            await c.execute(_Q["insert_waba"], waba.id, waba.name, now)
            if templates:
                await c.executemany(_Q["insert_template"], [mapping.template_row(waba.id, t) for t in templates])
            await _config_changed(c)

        await self._tx(op)

    async def wabas(self) -> list[Waba]:
        return [Waba(r[0], r[1]) for r in await self._fetch("select_wabas")]

    async def create_channel(
        self,
        waba_id: str,
        phone_number: str,
        phone_number_id: str,
        fmt: ChannelFormat,
        connector: str,
        mode: ChannelMode,
        now: float,
    ) -> Channel:
        async def op(c: Connection) -> Channel:
            args = (waba_id, phone_number, phone_number_id, fmt.value, connector, mode.value, now)
            channel_id = await c.fetchval(_Q["insert_channel"], *args)
            await _config_changed(c)
            return Channel(channel_id, waba_id, phone_number, phone_number_id, fmt, connector, mode)

        return await self._tx(op)

    async def channels(self) -> list[Channel]:
        return [mapping.channel(r) for r in await self._fetch("select_channels")]

    async def channel_for_key(self, key_hash: str) -> Channel | None:
        row = await self._fetchrow("select_channel_by_key", key_hash)
        return mapping.channel(row) if row else None

    async def replace_api_key(self, channel_id: int, key_hash: str, hint: str, now: float, drop_webhook: bool) -> None:
        async def op(c: Connection) -> None:
            await c.execute(_Q["delete_api_keys"], channel_id)
            await c.execute(_Q["insert_api_key"], key_hash, channel_id, hint, now)
            if drop_webhook:
                await _remove_destination(c, f"channel:{channel_id}", "main", "main")
            await _config_changed(c)

        await self._tx(op)

    async def api_keys(self, channel_id: int) -> list[ApiKeyInfo]:
        return [ApiKeyInfo(r[0], r[1]) for r in await self._fetch("select_api_keys", channel_id)]

    async def add_sandbox_users(self, channel_id: int, users: Sequence[SandboxUser]) -> None:
        rows = [(channel_id, u.wa_id, u.name, u.user_id) for u in users]

        async def op(c: Connection) -> None:
            await c.executemany(_Q["insert_sandbox_user"], rows)
            await _config_changed(c)

        await self._tx(op)

    async def sandbox_users(self, channel_id: int) -> list[SandboxUser]:
        return [SandboxUser(r[0], r[1], r[2]) for r in await self._fetch("select_sandbox_users", channel_id)]

    # destinations -------------------------------------------------------------
    async def set_destination(
        self,
        scope: str,
        kind: str,
        name: str,
        url: str,
        headers: dict[str, str],
        override_all: bool = False,
        secrets: Sequence[str] = (),
        app_secret: str | None = None,
        fifo: bool = False,
    ) -> None:
        args = (scope, kind, name, url, json.dumps(headers), override_all, json.dumps(list(secrets)), app_secret, fifo)

        async def op(c: Connection) -> None:
            await c.execute(_Q["lock_destination_scope"], scope)
            await c.execute(_Q["upsert_destination"], *args)
            await _config_changed(c)

        await self._tx(op)

    async def update_destination(
        self,
        scope: str,
        kind: str,
        name: str,
        url: str | None,
        headers: dict[str, str] | None,
        secrets: Sequence[str] | None = None,
        app_secret: str | None = None,
        fifo: bool | None = None,
    ) -> bool:
        args = (
            scope,
            kind,
            name,
            url,
            json.dumps(headers) if headers is not None else None,
            json.dumps(list(secrets)) if secrets is not None else None,
            app_secret,
            fifo,
        )

        async def op(c: Connection) -> bool:
            status = await c.execute(_Q["update_destination"], *args)
            await _config_changed(c)
            return _count(status) > 0

        return await self._tx(op)

    async def remove_destination(self, scope: str, kind: str, name: str) -> bool:
        async def op(c: Connection) -> bool:
            removed = await _remove_destination(c, scope, kind, name)
            await _config_changed(c)
            return removed

        return await self._tx(op)

    async def destinations(self, scope: str) -> list[Destination]:
        return [mapping.destination(r) for r in await self._fetch("select_destinations", scope)]

    async def channel_webhook_flags(self, channel_id: int) -> tuple[bool, str]:
        row = await self._fetchrow("select_channel_flags", channel_id)
        return (bool(row[0]), row[1]) if row else (False, "after_main")

    async def set_channel_webhook_flags(self, channel_id: int, multi_enabled: bool | None, fanout: str | None) -> None:
        async def op(c: Connection) -> None:
            await c.execute(_Q["update_webhook_flags"], multi_enabled, fanout, channel_id)
            await _config_changed(c)

        await self._tx(op)

    # messages and events ------------------------------------------------------
    async def insert_outbound(self, queued: QueuedMessage, lease_until: float | None) -> None:
        m = queued.message
        args = (
            queued.wamid,
            queued.channel_id,
            m.wa_id,
            m.type,
            msgspec.json.encode(m.content).decode(),
            m.context_message_id,
            m.biz_opaque_callback_data,
            queued.created_at,
        )
        if lease_until is None:  # the caller hands it over itself: never reclaimed
            await self._write(_Statement(_Q["insert_message_handed_over"], args))
        else:
            await self._write(_Statement(_Q["insert_message"], (*args, lease_until, self._node)))

    async def settle_outbound(self, wamid: str, remote_wamid: str | None) -> None:
        if remote_wamid is None:
            await self._write(_Statement(_Q["delete_outbound"], (wamid,)))
        else:
            await self._write(_Statement(_Q["settle_outbound"], (wamid, remote_wamid)))

    async def claim_undispatched(self, now: float, limit: int, lease_until: float) -> list[QueuedMessage]:
        rows = await self._tx(lambda c: c.fetch(_Q["claim_undispatched"], now, limit, lease_until, self._node))
        return [mapping.queued_message(r) for r in sorted(rows, key=lambda r: r[7])]

    async def mark_dispatched(self, wamids: Sequence[str]) -> None:
        await self._write(_Statement(_Q["mark_dispatched"], (list(wamids),)))

    async def ingest(self, events: Sequence[NewEvent], inbound: Sequence[InboundMessage]) -> None:
        async def op(c: Connection) -> None:
            if inbound:
                rows = [
                    (m.wamid, m.channel_id, m.wa_id, m.type, json.dumps(m.content), m.context_message_id, m.created_at)
                    for m in inbound
                ]
                await c.executemany(_Q["insert_inbound_message"], rows)
            for e in events:
                injected = ",".join(e.injected) or None
                args = (e.id, e.channel_id, e.kind, e.wamid, e.order_key, e.created_at, e.body, injected)
                if not _count(await c.execute(_Q["insert_event"], *args)):
                    continue  # already ingested: a duplicate notification
                await _insert_deliveries(c, e)
                if e.message_status is not None and e.wamid is not None:
                    await c.execute(_Q["update_message_status"], e.message_status, e.created_at, e.wamid)

        await self._write(op)
        self._poke_due()

    # deliveries ---------------------------------------------------------------
    async def claim_due(self, now: float, limit: int, lease_until: float) -> list[DueDelivery]:
        async def op(c: Connection) -> list[asyncpg.Record]:
            await c.execute(_Q["commit_without_waiting"])
            expired = await c.fetch(_Q["expire_overdue"], now, now - _LATE_GRACE)
            if expired:
                await c.execute(_Q["dead_letter_children_of"], [r[0] for r in expired])
            return list(await c.fetch(_Q["claim_due"], now, limit, lease_until, self._node))

        rows = await self._tx(op)
        # RETURNING gives no order; the dispatcher chains a conversation's deliveries in this one.
        rows.sort(key=lambda r: (r[12], r[0]))
        return [mapping.due_delivery(r) for r in rows]

    async def renew_leases(self, delivery_ids: Sequence[int], lease_until: float) -> None:
        async with self._connection() as c:
            await c.execute(_Q["renew_leases"], list(delivery_ids), lease_until, self._node)

    async def defer(self, delivery_ids: Sequence[int], until: float) -> None:
        async with self._connection() as c:
            await c.execute(_Q["defer_delivery"], until, list(delivery_ids))

    async def undefer(self, destination_id: int, now: float) -> None:
        async with self._connection() as c:
            await c.execute(_Q["undefer_destination"], now, destination_id)
        self._poke_due()

    async def next_due_at(self, now: float) -> float | None:
        row = await self._fetchrow("next_due_at", now)
        return row[0] if row else None

    async def record_attempts(self, records: Sequence[AttemptRecord], now: float) -> None:
        if await self._write(lambda c: _record_attempts(c, records, now, self._node)):
            self._poke_due()  # deliveries held for a main webhook's 200 are due now

    async def deliveries(
        self, channel_id: int, where: DeliveryFilter, limit: int, before_id: int | None
    ) -> list[DeliveryView]:
        rows = await self._fetch("select_deliveries", *_filter_args(channel_id, where), before_id, limit)
        return [DeliveryView(*r) for r in rows]

    async def attempts(self, delivery_id: int) -> list[AttemptView]:
        return [mapping.attempt_view(r) for r in await self._fetch("select_attempts", delivery_id)]

    async def event_body(self, event_id: str) -> bytes | None:
        row = await self._fetchrow("select_event_body", event_id)
        return bytes(row[0]) if row else None

    async def replay(self, channel_id: int, where: DeliveryFilter, now: float, deadline: float) -> int:
        async with self._connection() as c:
            status = await c.execute(_Q["replay_deliveries"], *_filter_args(channel_id, where), now, deadline)
        self._poke_due()
        return _count(status)

    async def queue_stats(self) -> tuple[int, float | None]:
        row = await self._fetchrow("queue_stats")
        assert row is not None
        return int(row[0]), row[1]

    async def notices(self, channel_id: int, limit: int) -> list[tuple[float, str, str]]:
        return [(r[0], r[1], r[2]) for r in await self._fetch("select_notices", channel_id, limit)]

    async def channel_retry_horizon(self, channel_id: int) -> float | None:
        row = await self._fetchrow("select_channel_horizon", channel_id)
        return row[0] if row else None

    async def set_channel_retry_horizon(self, channel_id: int, horizon: float | None) -> None:
        async def op(c: Connection) -> None:
            await c.execute(_Q["update_channel_horizon"], horizon, channel_id)
            await _config_changed(c)

        await self._tx(op)

    async def release_leases(self) -> None:
        """Only this node's own (a predecessor with the same node id died holding them);
        other nodes' leases stay, and expire if those nodes are gone."""
        async with self._connection() as c:
            await c.execute(_Q["release_own_leases"], self._node)

    # settings -------------------------------------------------------------------
    async def get_value(self, key: str) -> str | None:
        row = await self._fetchrow("get_kv", key)
        return row[0] if row else None

    async def set_value(self, key: str, value: str) -> None:
        async def op(c: Connection) -> None:
            await c.execute(_Q["set_kv"], key, value)
            await _config_changed(c)

        await self._tx(op)

    # per-number limits -----------------------------------------------------------
    async def channel_limits(self, channel_id: int) -> ChannelLimits:
        row = await self._fetchrow("select_channel_limits", channel_id)
        return ChannelLimits() if row is None else ChannelLimits(row[0], row[1])

    async def set_channel_limits(self, channel_id: int, limits: ChannelLimits) -> None:
        async def op(c: Connection) -> None:
            await c.execute(_Q["update_channel_limits"], limits.throughput, limits.rate_limits, channel_id)
            await _config_changed(c)

        await self._tx(op)

    async def admit(self, buckets: Sequence[tuple[str, Rate]], now: float) -> tuple[int, float] | None:
        keys = [key for key, _ in buckets]
        intervals = [rate.interval for _, rate in buckets]
        bursts = [rate.burst for _, rate in buckets]
        row = await self._fetchrow("admit", keys, intervals, bursts, now, SLACK)
        assert row is not None
        return None if row[0] < 0 else (int(row[0]), float(row[1]))

    # conversations ---------------------------------------------------------------
    async def last_inbound_at(self, channel_id: int, wa_id: str) -> float | None:
        row = await self._fetchrow("last_inbound_at", channel_id, wa_id)
        return None if row is None else row[0]

    async def mark_read(self, channel_id: int, wamid: str) -> str | None:
        async def op(c: Connection) -> str | None:
            row = await c.fetchrow(_Q["select_inbound"], wamid, channel_id)
            if row is None:
                return None
            await c.execute(_Q["mark_read_until"], channel_id, row[0], row[1])
            wa_id: str = row[0]
            return wa_id

        return await self._tx(op)

    async def conversation(
        self, channel_id: int, wa_id: str, limit: int, now: float | None = None
    ) -> list[ConversationEntry]:
        rows = await self._fetch("select_conversation", channel_id, wa_id, limit, now)
        return [mapping.conversation_entry(r) for r in rows]

    async def conversation_message(self, channel_id: int, wa_id: str, wamid: str) -> ConversationEntry | None:
        row = await self._fetchrow("select_conversation_message", channel_id, wa_id, wamid)
        return mapping.conversation_entry(row) if row else None

    # media -----------------------------------------------------------------------
    async def insert_media(self, media: MediaFile) -> None:
        m = media
        async with self._connection() as c:
            await c.execute(
                _Q["insert_media"], m.id, m.channel_id, m.sha256, m.mime_type, m.file_size, m.filename, m.created_at
            )

    async def media(self, channel_id: int, media_id: str) -> MediaFile | None:
        row = await self._fetchrow("select_media", media_id, channel_id)
        return None if row is None else MediaFile(*row)

    async def delete_media(self, channel_id: int, media_id: str) -> tuple[bool, str | None]:
        async def op(c: Connection) -> tuple[bool, str | None]:
            sha256 = await c.fetchval(_Q["delete_media"], media_id, channel_id)
            if sha256 is None:
                return False, None
            still_used = await c.fetchval(_Q["count_media_sha256"], sha256)
            return True, None if still_used else sha256

        return await self._tx(op)

    # templates -------------------------------------------------------------------
    async def insert_template(self, waba_id: str, template: StoredTemplate) -> None:
        async with self._connection() as c:
            await c.execute(_Q["insert_template"], *mapping.template_row(waba_id, template))

    async def templates(self, waba_id: str) -> list[StoredTemplate]:
        return [mapping.template(r) for r in await self._fetch("select_templates", waba_id)]

    async def template(self, waba_id: str, name: str, language: str) -> StoredTemplate | None:
        row = await self._fetchrow("select_template", waba_id, name, language)
        return None if row is None else mapping.template(row)

    async def delete_templates(self, waba_id: str, name: str) -> list[StoredTemplate]:
        return [mapping.template(r) for r in await self._tx(lambda c: c.fetch(_Q["delete_templates"], waba_id, name))]

    # Meta's Cloud API -----------------------------------------------------------
    async def meta_links(self) -> list[MetaLink]:
        return [MetaLink(*row) for row in await self._fetch("select_meta_links")]

    async def set_connector(self, channel_id: int, connector: str, link: MetaLink | None) -> None:
        async def op(c: Connection) -> None:
            if link is not None:
                row = (channel_id, link.phone_number_id, link.waba_id, link.access_token, link.app_secret)
                await c.execute(_Q["upsert_meta_link"], *row)
            await c.execute(_Q["update_channel_connector"], connector, channel_id)
            await _config_changed(c)

        await self._tx(op)

    async def insert_meta_inbox(self, body: bytes, received_at: float) -> None:
        await self._write(_Statement(_Q["insert_meta_inbox"], (received_at, body)))

    @contextlib.asynccontextmanager
    async def meta_inbox(self, limit: int) -> AsyncIterator[list[InboxPost]]:
        # The rows stay locked by this transaction while the caller ingests them.
        async with self._connection() as c, c.transaction():
            rows = await c.fetch(_Q["claim_meta_inbox"], limit)
            posts = [InboxPost(row[0], bytes(row[1]), row[2]) for row in rows]
            yield posts
            done = [post.id for post in posts if post.done]
            if done:
                await c.execute(_Q["delete_meta_inbox"], done)

    async def withdraw_event(self, event_id: str) -> bool:
        async def op(c: Connection) -> bool:
            await c.execute(_Q["withdraw_deliveries"], event_id)
            return _count(await c.execute(_Q["withdraw_event"], event_id)) > 0

        return await self._tx(op)


# --- module helpers ---------------------------------------------------------------


async def _connect(url: str) -> Connection:
    conn: Connection = await asyncpg.connect(url)
    return conn


async def _migrate(conn: Connection) -> list[int]:
    await conn.execute(_Q["lock_migrations"])
    try:
        await conn.execute(_Q["create_migrations_table"])
        done = {r[0] for r in await conn.fetch(_Q["applied_migrations"])}
        applied = []
        for version, script in load_migrations("postgres"):
            if version in done:
                continue
            async with conn.transaction():
                await conn.execute(script)
                await conn.execute(_Q["record_migration"], version)
            applied.append(version)
        return applied
    finally:
        await conn.execute(_Q["unlock_migrations"])


async def _run_batch(c: Connection, writes: Sequence[_Write]) -> list[Any]:
    """Run writes in order; runs of one statement go out as a single pipelined executemany."""
    results: list[Any] = []
    run: list[_Statement] = []

    async def flush() -> None:
        if run:
            await c.executemany(run[0].query, [w.args for w in run])
            run.clear()

    for write in writes:
        if isinstance(write, _Statement):
            if run and run[0].query != write.query:
                await flush()
            run.append(write)
            results.append(None)
        else:
            await flush()
            results.append(await write(c))
    await flush()
    return results


async def _config_changed(c: Connection) -> None:
    """Every node drops its cached configuration when this transaction commits."""
    await c.execute(_Q["notify"], _CONFIG)


async def _remove_destination(c: Connection, scope: str, kind: str, name: str) -> bool:
    destination_id = await c.fetchval(_Q["select_destination_id"], scope, kind, name)
    if destination_id is None:
        return False
    await c.execute(_Q["dead_letter_destination"], destination_id)
    await c.execute(_Q["dead_letter_orphans"], destination_id)
    await c.execute(_Q["delete_destination"], destination_id)
    return True


async def _record_attempts(c: Connection, records: Sequence[AttemptRecord], now: float, node: str) -> bool:
    """Store outcomes and what they decide; True when held deliveries were released."""
    released = False
    for r in records:
        o = r.outcome
        await c.execute(_Q["insert_attempt"], *mapping.attempt_row(o))
        args = (r.state.value, r.next_attempt_at, o.status_code, o.error, o.delivery_id, node)
        if not _count(await c.execute(_Q["finish_attempt"], *args)):
            continue  # dead-lettered while in flight (destination removed or gone), or the lease was lost
        if r.state is DeliveryState.DELIVERED:
            released |= _count(await c.execute(_Q["release_children"], now, o.delivery_id)) > 0
        elif r.state is DeliveryState.DEAD:
            await c.execute(_Q["dead_letter_children_of"], [o.delivery_id])
        if r.disable_destination:
            await _disable_destination(c, r.destination_id, o.delivery_id, now)
    return released


async def _disable_destination(c: Connection, destination_id: int, delivery_id: int, now: float) -> None:
    """A 410 Gone: stop posting there, dead-letter what waits for it, tell the operator."""
    await c.execute(_Q["disable_destination"], destination_id)
    await c.execute(_Q["dead_letter_disabled"], destination_id, delivery_id)
    await c.execute(_Q["dead_letter_orphans"], destination_id)
    row = await c.fetchrow(_Q["select_destination_scope"], destination_id)
    if row:
        scope, name, url = row
        channel_id = int(scope.split(":", 1)[1]) if scope.startswith("channel:") else None
        detail = f"destination '{name}' ({url}) answered 410 Gone: disabled, its pending deliveries dead-lettered"
        await c.execute(_Q["insert_notice"], now, channel_id, "destination_disabled", detail)
    await _config_changed(c)


async def _insert_deliveries(c: Connection, event: NewEvent) -> None:
    """The primary destination's delivery, then the others: held for the primary's 200, or due now."""

    async def insert(destination_id: int, state: str, due: float | None, parent_id: int | None) -> int | None:
        args = (event.id, state, event.created_at, due, event.deadline, parent_id, event.order_key, destination_id)
        delivery_id: int | None = await c.fetchval(_Q["insert_delivery"], *args)
        return delivery_id

    fanout = event.fanout
    parent_id = None
    if fanout.primary is not None:
        parent_id = await insert(fanout.primary, "pending", event.created_at, None)
    wait = fanout.extras_wait_for_primary and parent_id is not None
    for destination_id in fanout.extras:
        if wait:
            await insert(destination_id, "held", None, parent_id)
        else:
            await insert(destination_id, "pending", event.created_at, None)


def _filter_args(channel_id: int, where: DeliveryFilter) -> tuple[Any, ...]:
    return (
        channel_id,
        where.state,
        where.destination,
        where.event_id,
        where.delivery_id,
        where.since,
        where.until,
    )


def _count(status: str) -> int:
    """Rows affected, from a command status such as 'UPDATE 3' or 'INSERT 0 1'."""
    return int(status.rsplit(" ", 1)[-1])


def _translate(exc: BaseException) -> StorageError | ConflictError:
    if isinstance(exc, asyncpg.IntegrityConstraintViolationError):
        error: StorageError | ConflictError = ConflictError(str(exc))
    else:
        error = StorageError(f"{type(exc).__name__}: {exc}")
    return error


def _nothing() -> None:
    pass


def redacted(url: str) -> str:
    """The URL without its password, for messages."""
    head, sep, tail = url.partition("@")
    if not sep or ":" not in head.split("//", 1)[-1]:
        return url
    scheme, _, credentials = head.partition("//")
    return f"{scheme}//{credentials.split(':', 1)[0]}:***@{tail}"

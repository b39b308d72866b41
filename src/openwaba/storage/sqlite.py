"""SQLite storage: one connection, owned by one thread, with group commit.

Every operation is a small function run on the writer thread. The thread takes
whatever operations have queued up while it was busy and runs them in a single
transaction (each inside its own SAVEPOINT, so one failing operation does not
undo the others), commits once with `synchronous=FULL`, and only then resolves
the callers' futures. Under load, hundreds of requests share one fsync; at rest,
an operation commits alone with no added delay.

A file normally belongs to one process. `shared=True` is for the worker processes
of one `openwaba serve --workers N`: each has its own connection and writer thread,
and SQLite's file lock takes their transactions one at a time. The parent process
holds the directory's lock and has released stale leases before the workers start;
a configuration counter moved by triggers tells the workers to drop their caches,
rate-limit counters live in the file, and named locks are file locks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import queue
import sqlite3
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from openwaba import locks
from openwaba.batches import Outcome, next_batch, settle
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
from openwaba.domain.throttle import Buckets, Rate, admit_all
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

T = TypeVar("T")
Operation = Callable[[sqlite3.Connection], Any]

log = logging.getLogger("openwaba.storage")

_BATCH_LIMIT = 512
_GENERATION = "config.generation"
_BUSY_TIMEOUT = 5.0  # seconds a worker waits for another's transaction before it reports an error
_INBOX_HOLD = 120.0  # seconds a Meta post stays taken by a process that does not put it back
# The final attempt is scheduled at the horizon itself; it may be claimed this
# much later (dispatcher wake-up latency) and still count as on time.
_LATE_GRACE = 1.0
_Q = load_queries("sqlite")
_POLL = 0.1  # seconds: how often a shared file's workers look for each other's changes


class SQLiteStorage(Storage):
    def __init__(self, path: Path, shared: bool = False) -> None:
        self._path = path
        self._shared = shared
        self._owner = uuid.uuid4().hex  # whose leases: workers sharing the file renew only their own
        self._jobs: queue.SimpleQueue[tuple[Operation, asyncio.Future[Any]] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock_file: int | None = None
        self._buckets = Buckets()
        self._migrated: list[int] = []
        self._on_due: Callable[[], None] = _nothing
        self._on_config: Callable[[], None] = _nothing
        self._poller: asyncio.Task[None] | None = None

    # lifecycle ---------------------------------------------------------------
    async def open(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        if not self._shared:
            self._lock_file = _lock_exclusively(self._path.with_suffix(".lock"))
        self._jobs = queue.SimpleQueue()
        self._loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = self._loop.create_future()
        self._thread = threading.Thread(
            target=self._serve, args=(self._loop, ready), name="openwaba-sqlite", daemon=True
        )
        self._thread.start()
        try:
            await ready
        except StorageError:
            await self.close()
            raise
        if self._shared:
            self._poller = asyncio.create_task(self._poll(), name="sqlite-poll")

    async def close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
            self._poller = None
        self._loop = None  # from now on, _run() refuses work instead of queueing it forever
        if self._thread is not None:
            if self._thread.is_alive():
                self._jobs.put(None)
            await asyncio.get_running_loop().run_in_executor(None, self._thread.join)
            self._thread = None
        if self._lock_file is not None:
            os.close(self._lock_file)
            self._lock_file = None

    def _serve(self, loop: asyncio.AbstractEventLoop, ready: asyncio.Future[None]) -> None:
        try:
            conn = _connect(self._path)
            self._migrated = _migrate(conn)
            conn.execute("PRAGMA busy_timeout=0")  # from now on _begin() waits for the write lock
        except Exception as exc:  # start-up failure: report it to open()
            loop.call_soon_threadsafe(ready.set_exception, StorageError(f"cannot open {self._path}: {exc}"))
            return
        loop.call_soon_threadsafe(ready.set_result, None)
        try:
            while (batch := next_batch(self._jobs, _BATCH_LIMIT)) is not None:
                loop.call_soon_threadsafe(settle, _run_batch(conn, batch))
        finally:
            conn.close()

    async def migrated(self) -> list[int]:
        """The migrations open() applied."""
        return self._migrated

    def listen(self, on_due: Callable[[], None], on_config: Callable[[], None]) -> None:
        """Only called back when the file is shared: alone, nobody else changes anything."""
        self._on_due = on_due
        self._on_config = on_config

    async def _poll(self) -> None:
        """Forever, for a shared file: another worker's configuration change drops this
        one's caches, and its new work may be due (a cheap claim finds out)."""
        seen = await self.get_value(_GENERATION)
        while True:
            await asyncio.sleep(_POLL)
            try:
                generation = await self.get_value(_GENERATION)
            except StorageError as exc:
                log.warning("cannot read the configuration counter: %s", exc)
                continue
            if generation != seen:
                seen = generation
                self._on_config()
            self._on_due()

    def lock(self, name: str) -> contextlib.AbstractAsyncContextManager[None]:
        if not self._shared:
            return contextlib.nullcontext()  # one process owns the file
        return locks.held(self._path.with_name(f"{self._path.name}.{name}.lock"))

    async def _run(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        if self._loop is None:
            raise StorageError("storage is not open")
        future: asyncio.Future[T] = self._loop.create_future()
        self._jobs.put((operation, future))
        return await future

    # accounts -----------------------------------------------------------------
    async def create_waba(self, waba: Waba, now: float, templates: Sequence[StoredTemplate] = ()) -> None:
        def op(c: sqlite3.Connection) -> None:
            c.execute(_Q["insert_waba"], (waba.id, waba.name, now))
            c.executemany(_Q["insert_template"], [mapping.template_row(waba.id, t) for t in templates])

        await self._run(op)

    async def wabas(self) -> list[Waba]:
        rows = await self._run(lambda c: c.execute(_Q["select_wabas"]).fetchall())
        return [Waba(*row) for row in rows]

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
        def op(c: sqlite3.Connection) -> Channel:
            params = (waba_id, phone_number, phone_number_id, fmt.value, connector, mode.value, now)
            (channel_id,) = c.execute(_Q["insert_channel"], params).fetchone()
            return Channel(channel_id, waba_id, phone_number, phone_number_id, fmt, connector, mode)

        return await self._run(op)

    async def channels(self) -> list[Channel]:
        rows = await self._run(lambda c: c.execute(_Q["select_channels"]).fetchall())
        return [mapping.channel(row) for row in rows]

    async def channel_for_key(self, key_hash: str) -> Channel | None:
        row = await self._run(lambda c: c.execute(_Q["select_channel_by_key"], (key_hash,)).fetchone())
        return mapping.channel(row) if row else None

    async def replace_api_key(self, channel_id: int, key_hash: str, hint: str, now: float, drop_webhook: bool) -> None:
        def op(c: sqlite3.Connection) -> None:
            c.execute(_Q["delete_api_keys"], (channel_id,))
            c.execute(_Q["insert_api_key"], (key_hash, channel_id, hint, now))
            if drop_webhook:
                _remove_destination(c, f"channel:{channel_id}", "main", "main")

        await self._run(op)

    async def api_keys(self, channel_id: int) -> list[ApiKeyInfo]:
        rows = await self._run(lambda c: c.execute(_Q["select_api_keys"], (channel_id,)).fetchall())
        return [ApiKeyInfo(*row) for row in rows]

    async def add_sandbox_users(self, channel_id: int, users: Sequence[SandboxUser]) -> None:
        rows = [(channel_id, u.wa_id, u.name, u.user_id) for u in users]
        await self._run(lambda c: c.executemany(_Q["insert_sandbox_user"], rows))

    async def sandbox_users(self, channel_id: int) -> list[SandboxUser]:
        rows = await self._run(lambda c: c.execute(_Q["select_sandbox_users"], (channel_id,)).fetchall())
        return [SandboxUser(*row) for row in rows]

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
        params = {
            "scope": scope,
            "kind": kind,
            "name": name,
            "url": url,
            "headers": json.dumps(headers),
            "override_all": int(override_all),
            "secrets": json.dumps(list(secrets)),
            "app_secret": app_secret,
            "fifo": int(fifo),
        }
        await self._run(lambda c: c.execute(_Q["upsert_destination"], params))

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
        params = {
            "scope": scope,
            "kind": kind,
            "name": name,
            "url": url,
            "headers": json.dumps(headers) if headers is not None else None,
            "secrets": json.dumps(list(secrets)) if secrets is not None else None,
            "app_secret": app_secret,
            "fifo": int(fifo) if fifo is not None else None,
        }
        cursor = await self._run(lambda c: c.execute(_Q["update_destination"], params))
        return bool(cursor.rowcount)

    async def remove_destination(self, scope: str, kind: str, name: str) -> bool:
        return await self._run(lambda c: _remove_destination(c, scope, kind, name))

    async def destinations(self, scope: str) -> list[Destination]:
        rows = await self._run(lambda c: c.execute(_Q["select_destinations"], (scope,)).fetchall())
        return [mapping.destination(r) for r in rows]

    async def channel_webhook_flags(self, channel_id: int) -> tuple[bool, str]:
        row = await self._run(lambda c: c.execute(_Q["select_channel_flags"], (channel_id,)).fetchone())
        return (bool(row[0]), row[1]) if row else (False, "after_main")

    async def set_channel_webhook_flags(self, channel_id: int, multi_enabled: bool | None, fanout: str | None) -> None:
        def op(c: sqlite3.Connection) -> None:
            if multi_enabled is not None:
                c.execute(_Q["update_multi_webhook"], (int(multi_enabled), channel_id))
            if fanout is not None:
                c.execute(_Q["update_fanout"], (fanout, channel_id))

        await self._run(op)

    # messages and events ------------------------------------------------------
    async def insert_outbound(self, queued: QueuedMessage, lease_until: float | None) -> None:
        m = queued.message
        handed_over = lease_until is None  # the caller hands it over itself: never reclaimed
        params = (
            queued.wamid,
            queued.channel_id,
            "out",
            m.wa_id,
            m.type,
            msgspec.json.encode(m.content).decode(),
            m.context_message_id,
            m.biz_opaque_callback_data,
            "sending" if handed_over else "accepted",
            queued.created_at,
            int(handed_over),
            lease_until,
        )
        await self._run(lambda c: c.execute(_Q["insert_message"], params))

    async def settle_outbound(self, wamid: str, remote_wamid: str | None) -> None:
        if remote_wamid is None:
            await self._run(lambda c: c.execute(_Q["delete_outbound"], (wamid,)))
        else:
            await self._run(lambda c: c.execute(_Q["settle_outbound"], {"wamid": wamid, "remote": remote_wamid}))

    async def claim_undispatched(self, now: float, limit: int, lease_until: float) -> list[QueuedMessage]:
        params = {"now": now, "limit": limit, "lease_until": lease_until}
        rows = await self._run(lambda c: c.execute(_Q["claim_undispatched"], params).fetchall())
        rows.sort(key=lambda r: r[7])  # RETURNING gives no order; hand over oldest first
        return [mapping.queued_message(r) for r in rows]

    async def mark_dispatched(self, wamids: Sequence[str]) -> None:
        rows = [(w,) for w in wamids]
        await self._run(lambda c: c.executemany(_Q["mark_dispatched"], rows))

    async def ingest(self, events: Sequence[NewEvent], inbound: Sequence[InboundMessage]) -> None:
        def op(c: sqlite3.Connection) -> None:
            for m in inbound:
                row = (
                    m.wamid,
                    m.channel_id,
                    m.wa_id,
                    m.type,
                    json.dumps(m.content),
                    m.context_message_id,
                    m.created_at,
                )
                c.execute(_Q["insert_inbound_message"], row)
            for e in events:
                injected = ",".join(e.injected) or None
                params = (e.id, e.channel_id, e.kind, e.wamid, e.order_key, e.created_at, e.body, injected)
                if not c.execute(_Q["insert_event"], params).rowcount:
                    continue  # already ingested: a duplicate notification
                _insert_deliveries(c, e)
                if e.message_status is not None and e.wamid is not None:
                    status = {"status": e.message_status, "at": e.created_at, "wamid": e.wamid}
                    c.execute(_Q["update_message_status"], status)

        await self._run(op)

    # deliveries ---------------------------------------------------------------
    async def claim_due(self, now: float, limit: int, lease_until: float) -> list[DueDelivery]:
        def op(c: sqlite3.Connection) -> list[DueDelivery]:
            expired = c.execute(_Q["expire_overdue"], {"now": now, "limit_time": now - _LATE_GRACE}).fetchall()
            c.executemany(_Q["dead_letter_children_of"], expired)
            params = {"now": now, "limit": limit, "lease_until": lease_until, "owner": self._owner}
            ids = [delivery_id for (delivery_id,) in c.execute(_Q["claim_due"], params)]
            if not ids:
                return []
            rows = c.execute(_Q["select_claimed"], (json.dumps(ids),))
            return [mapping.due_delivery(row) for row in rows]

        return await self._run(op)

    async def defer(self, delivery_ids: Sequence[int], until: float) -> None:
        rows = [(until, delivery_id) for delivery_id in delivery_ids]
        await self._run(lambda c: c.executemany(_Q["defer_delivery"], rows))

    async def undefer(self, destination_id: int, now: float) -> None:
        await self._run(lambda c: c.execute(_Q["undefer_destination"], (now, destination_id, now)))

    async def renew_leases(self, delivery_ids: Sequence[int], lease_until: float) -> None:
        params = (lease_until, json.dumps(list(delivery_ids)), self._owner)
        await self._run(lambda c: c.execute(_Q["renew_leases"], params))

    async def next_due_at(self, now: float) -> float | None:
        row = await self._run(lambda c: c.execute(_Q["next_due_at"], (now,)).fetchone())
        return row[0] if row else None

    async def record_attempts(self, records: Sequence[AttemptRecord], now: float) -> None:
        def op(c: sqlite3.Connection) -> None:
            for r in records:
                o = r.outcome
                c.execute(_Q["insert_attempt"], mapping.attempt_row(o))
                params = (r.state.value, r.next_attempt_at, o.status_code, o.error, o.delivery_id)
                if not c.execute(_Q["finish_attempt"], params).rowcount:
                    continue  # dead-lettered while in flight (destination removed or gone)
                if r.state is DeliveryState.DELIVERED:
                    c.execute(_Q["release_children"], (now, o.delivery_id))
                elif r.state is DeliveryState.DEAD:
                    c.execute(_Q["dead_letter_children"], (o.delivery_id,))
                if r.disable_destination:
                    _disable_destination(c, r.destination_id, o.delivery_id, now)

        await self._run(op)

    async def deliveries(
        self, channel_id: int, where: DeliveryFilter, limit: int, before_id: int | None
    ) -> list[DeliveryView]:
        params = {**_filter_params(channel_id, where), "limit": limit, "before_id": before_id}
        rows = await self._run(lambda c: c.execute(_Q["select_deliveries"], params).fetchall())
        return [DeliveryView(*row) for row in rows]

    async def attempts(self, delivery_id: int) -> list[AttemptView]:
        rows = await self._run(lambda c: c.execute(_Q["select_attempts"], (delivery_id,)).fetchall())
        return [mapping.attempt_view(row) for row in rows]

    async def event_body(self, event_id: str) -> bytes | None:
        row = await self._run(lambda c: c.execute(_Q["select_event_body"], (event_id,)).fetchone())
        return bytes(row[0]) if row else None

    async def replay(self, channel_id: int, where: DeliveryFilter, now: float, deadline: float) -> int:
        params = {**_filter_params(channel_id, where), "now": now, "deadline": deadline}
        cursor = await self._run(lambda c: c.execute(_Q["replay_deliveries"], params))
        return int(cursor.rowcount)

    async def queue_stats(self) -> tuple[int, float | None]:
        row = await self._run(lambda c: c.execute(_Q["queue_stats"]).fetchone())
        return int(row[0]), row[1]

    async def notices(self, channel_id: int, limit: int) -> list[tuple[float, str, str]]:
        rows = await self._run(lambda c: c.execute(_Q["select_notices"], (channel_id, limit)).fetchall())
        return [tuple(row) for row in rows]

    async def channel_retry_horizon(self, channel_id: int) -> float | None:
        row = await self._run(lambda c: c.execute(_Q["select_channel_horizon"], (channel_id,)).fetchone())
        return row[0] if row else None

    async def set_channel_retry_horizon(self, channel_id: int, horizon: float | None) -> None:
        await self._run(lambda c: c.execute(_Q["update_channel_horizon"], (horizon, channel_id)))

    async def release_leases(self) -> None:
        def op(c: sqlite3.Connection) -> None:
            c.execute(_Q["release_leases"])
            c.execute(_Q["release_handover_leases"])
            c.execute(_Q["release_meta_inbox"])

        await self._run(op)

    # settings -------------------------------------------------------------------
    async def get_value(self, key: str) -> str | None:
        row = await self._run(lambda c: c.execute(_Q["get_kv"], (key,)).fetchone())
        return row[0] if row else None

    async def set_value(self, key: str, value: str) -> None:
        await self._run(lambda c: c.execute(_Q["set_kv"], (key, value)))

    # per-number limits -----------------------------------------------------------
    async def channel_limits(self, channel_id: int) -> ChannelLimits:
        row = await self._run(lambda c: c.execute(_Q["select_channel_limits"], (channel_id,)).fetchone())
        if row is None:
            return ChannelLimits()
        return ChannelLimits(row[0], None if row[1] is None else bool(row[1]))

    async def set_channel_limits(self, channel_id: int, limits: ChannelLimits) -> None:
        flag = None if limits.rate_limits is None else int(limits.rate_limits)
        params = (limits.throughput, flag, channel_id)
        await self._run(lambda c: c.execute(_Q["update_channel_limits"], params))

    async def admit(self, buckets: Sequence[tuple[str, Rate]], now: float) -> tuple[int, float] | None:
        if not self._shared:
            # This process owns the file, so it is the only sender: the counters live
            # in memory (a restart forgets them and only ever lets a little more through).
            return self._buckets.admit(buckets, now)

        def op(c: sqlite3.Connection) -> tuple[int, float] | None:
            keys = json.dumps([key for key, _ in buckets])
            dues = dict(c.execute(_Q["select_rate_buckets"], (keys,)).fetchall())
            refused, new = admit_all(buckets, dues, now)
            c.executemany(_Q["set_rate_bucket"], new.items())
            return refused

        return await self._run(op)

    # conversations ---------------------------------------------------------------
    async def last_inbound_at(self, channel_id: int, wa_id: str) -> float | None:
        row = await self._run(lambda c: c.execute(_Q["last_inbound_at"], (channel_id, wa_id)).fetchone())
        return None if row is None else row[0]

    async def mark_read(self, channel_id: int, wamid: str) -> str | None:
        def op(c: sqlite3.Connection) -> str | None:
            row = c.execute(_Q["select_inbound"], (wamid, channel_id)).fetchone()
            if row is None:
                return None
            c.execute(_Q["mark_read_until"], (channel_id, row[0], row[1]))
            wa_id: str = row[0]
            return wa_id

        return await self._run(op)

    async def conversation(
        self, channel_id: int, wa_id: str, limit: int, now: float | None = None
    ) -> list[ConversationEntry]:
        params = {"channel_id": channel_id, "wa_id": wa_id, "limit": limit, "now": now}
        rows = await self._run(lambda c: c.execute(_Q["select_conversation"], params).fetchall())
        return [mapping.conversation_entry(r) for r in rows]

    async def conversation_message(self, channel_id: int, wa_id: str, wamid: str) -> ConversationEntry | None:
        params = (channel_id, wa_id, wamid)
        row = await self._run(lambda c: c.execute(_Q["select_conversation_message"], params).fetchone())
        return mapping.conversation_entry(row) if row else None

    # media -----------------------------------------------------------------------
    async def insert_media(self, media: MediaFile) -> None:
        m = media
        params = (m.id, m.channel_id, m.sha256, m.mime_type, m.file_size, m.filename, m.created_at)
        await self._run(lambda c: c.execute(_Q["insert_media"], params))

    async def media(self, channel_id: int, media_id: str) -> MediaFile | None:
        row = await self._run(lambda c: c.execute(_Q["select_media"], (media_id, channel_id)).fetchone())
        return None if row is None else MediaFile(*row)

    async def delete_media(self, channel_id: int, media_id: str) -> tuple[bool, str | None]:
        def op(c: sqlite3.Connection) -> tuple[bool, str | None]:
            row = c.execute(_Q["delete_media"], (media_id, channel_id)).fetchone()
            if row is None:
                return False, None
            (still_used,) = c.execute(_Q["count_media_sha256"], (row[0],)).fetchone()
            return True, None if still_used else row[0]

        return await self._run(op)

    # templates -------------------------------------------------------------------
    async def insert_template(self, waba_id: str, template: StoredTemplate) -> None:
        row = mapping.template_row(waba_id, template)
        await self._run(lambda c: c.execute(_Q["insert_template"], row))

    async def templates(self, waba_id: str) -> list[StoredTemplate]:
        rows = await self._run(lambda c: c.execute(_Q["select_templates"], (waba_id,)).fetchall())
        return [mapping.template(r) for r in rows]

    async def template(self, waba_id: str, name: str, language: str) -> StoredTemplate | None:
        params = (waba_id, name, language)
        row = await self._run(lambda c: c.execute(_Q["select_template"], params).fetchone())
        return None if row is None else mapping.template(row)

    async def delete_templates(self, waba_id: str, name: str) -> list[StoredTemplate]:
        rows = await self._run(lambda c: c.execute(_Q["delete_templates"], (waba_id, name)).fetchall())
        return [mapping.template(r) for r in rows]

    # Meta's Cloud API -----------------------------------------------------------
    async def meta_links(self) -> list[MetaLink]:
        rows = await self._run(lambda c: c.execute(_Q["select_meta_links"]).fetchall())
        return [MetaLink(*row) for row in rows]

    async def set_connector(self, channel_id: int, connector: str, link: MetaLink | None) -> None:
        def op(c: sqlite3.Connection) -> None:
            if link is not None:
                row = (channel_id, link.phone_number_id, link.waba_id, link.access_token, link.app_secret)
                c.execute(_Q["upsert_meta_link"], row)
            c.execute(_Q["update_channel_connector"], (connector, channel_id))

        await self._run(op)

    async def insert_meta_inbox(self, body: bytes, received_at: float) -> None:
        await self._run(lambda c: c.execute(_Q["insert_meta_inbox"], (received_at, body)))

    @contextlib.asynccontextmanager
    async def meta_inbox(self, limit: int) -> AsyncIterator[list[InboxPost]]:
        # Posts are taken for a while, so workers sharing the file never take one twice;
        # what is not done is put back (a killed process's posts come back after _INBOX_HOLD).
        now = time.time()
        params = {"now": now, "until": now + _INBOX_HOLD, "limit": limit}
        rows = await self._run(lambda c: c.execute(_Q["take_meta_inbox"], params).fetchall())
        posts = sorted((InboxPost(row[0], bytes(row[1]), row[2]) for row in rows), key=lambda post: post.id)
        try:
            yield posts
        finally:
            done = [(post.id,) for post in posts if post.done]
            undone = [(post.id,) for post in posts if not post.done]

            def op(c: sqlite3.Connection) -> None:
                c.executemany(_Q["delete_meta_inbox"], done)
                c.executemany(_Q["put_back_meta_inbox"], undone)

            if posts:
                await self._run(op)

    async def withdraw_event(self, event_id: str) -> bool:
        def op(c: sqlite3.Connection) -> bool:
            c.execute(_Q["withdraw_deliveries"], {"event": event_id})
            return bool(c.execute(_Q["withdraw_event"], {"event": event_id}).rowcount)

        return await self._run(op)


def _run_batch(conn: sqlite3.Connection, batch: list[tuple[Operation, asyncio.Future[Any]]]) -> list[Outcome]:
    """Run queued operations in one transaction; each in a savepoint of its own."""
    outcomes: list[Outcome] = []
    try:
        _begin(conn)
        for operation, future in batch:
            conn.execute("SAVEPOINT op")
            try:
                result = operation(conn)
            except Exception as exc:
                conn.execute("ROLLBACK TO op")
                outcomes.append((future, None, _translate(exc)))
            else:
                outcomes.append((future, result, None))
            conn.execute("RELEASE op")
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        if conn.in_transaction:
            conn.rollback()
        error = StorageError(f"transaction failed: {exc}")
        outcomes = [(future, None, error) for _, future in batch]
    return outcomes


def _begin(conn: sqlite3.Connection) -> None:
    """Take the write lock. Workers sharing the file wait for each other here: by
    polling every 0.2 ms rather than with SQLite's busy handler, whose sleeps grow
    to 100 ms and let one busy writer starve the others."""
    deadline = time.monotonic() + _BUSY_TIMEOUT
    while True:
        try:
            conn.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                raise
        time.sleep(0.0002)


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=_BUSY_TIMEOUT)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")  # durable before we answer; group commit pays for it
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def _migrate(conn: sqlite3.Connection) -> list[int]:
    (current,) = conn.execute("PRAGMA user_version").fetchone()
    applied = []
    for version, script in load_migrations("sqlite"):
        if version > current:
            conn.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {version};\nCOMMIT;")
            applied.append(version)
    return applied


def _nothing() -> None:
    pass


def _lock_exclusively(path: Path) -> int:
    """A data directory belongs to one openwaba process; refuse a second one clearly."""
    fd = locks.hold_exclusively(path)
    if fd is None:
        raise ConfigError(f"{path.parent} is in use by another openwaba process")
    return fd


def _remove_destination(c: sqlite3.Connection, scope: str, kind: str, name: str) -> bool:
    row = c.execute(_Q["select_destination_id"], (scope, kind, name)).fetchone()
    if row is None:
        return False
    c.execute(_Q["dead_letter_destination"], row)
    c.execute(_Q["dead_letter_orphans"], row)
    c.execute(_Q["delete_destination"], row)
    return True


def _filter_params(channel_id: int, where: DeliveryFilter) -> dict[str, Any]:
    return {
        "channel_id": channel_id,
        "state": where.state,
        "destination": where.destination,
        "event_id": where.event_id,
        "since": where.since,
        "until": where.until,
        "delivery_id": where.delivery_id,
    }


def _disable_destination(c: sqlite3.Connection, destination_id: int, delivery_id: int, now: float) -> None:
    """A 410 Gone: stop posting there, dead-letter what waits for it, tell the operator."""
    c.execute(_Q["disable_destination"], (destination_id,))
    c.execute(_Q["dead_letter_disabled"], (destination_id, delivery_id))
    c.execute(_Q["dead_letter_orphans"], (destination_id,))
    row = c.execute(_Q["select_destination_scope"], (destination_id,)).fetchone()
    if row:
        scope, name, url = row
        channel_id = int(scope.split(":", 1)[1]) if scope.startswith("channel:") else None
        detail = f"destination '{name}' ({url}) answered 410 Gone: disabled, its pending deliveries dead-lettered"
        c.execute(_Q["insert_notice"], (now, channel_id, "destination_disabled", detail))


def _insert_deliveries(c: sqlite3.Connection, event: NewEvent) -> None:
    fanout = event.fanout
    base = {
        "event_id": event.id,
        "created_at": event.created_at,
        "deadline": event.deadline,
        "order_key": event.order_key,
    }
    parent_id = None
    if fanout.primary is not None:
        row = c.execute(
            _Q["insert_delivery"],
            {
                **base,
                "destination_id": fanout.primary,
                "state": "pending",
                "next_attempt_at": event.created_at,
                "parent_id": None,
            },
        ).fetchone()
        parent_id = row[0] if row else None
    wait = fanout.extras_wait_for_primary and parent_id is not None
    for destination_id in fanout.extras:
        c.execute(
            _Q["insert_delivery"],
            {
                **base,
                "destination_id": destination_id,
                "state": "held" if wait else "pending",
                "next_attempt_at": None if wait else event.created_at,
                "parent_id": parent_id if wait else None,
            },
        ).fetchall()


def _translate(exc: Exception) -> BaseException:
    if isinstance(exc, sqlite3.IntegrityError):
        return ConflictError(str(exc))
    if isinstance(exc, sqlite3.Error):
        return StorageError(str(exc))
    return exc

"""SQLite storage: lifecycle, accounts, destinations, deliveries, group commit.

Tests drive the async API with `asyncio.run` (no pytest-asyncio). State that
the storage API does not expose (delivery rows) is read through a separate,
read-only sqlite3 connection after the writes have committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from openwaba.domain import ids
from openwaba.domain.accounts import Channel, ChannelFormat, ChannelMode, SandboxUser, Waba
from openwaba.domain.deliveries import AttemptOutcome, DeliveryState, Destination
from openwaba.domain.errors import ConfigError, ConflictError, StorageError
from openwaba.domain.messages import OutgoingMessage
from openwaba.domain.routing import FanOut
from openwaba.storage import sqlite as sqlite_module
from openwaba.storage.base import AttemptRecord, InboundMessage, NewEvent, QueuedMessage
from openwaba.storage.sqlite import SQLiteStorage

T0 = 1_700_000_000.0
WABA = Waba("102290129340398", "Acme")


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(test())


@contextlib.asynccontextmanager
async def opened(path: Path) -> AsyncIterator[SQLiteStorage]:
    storage = SQLiteStorage(path)
    await storage.open()
    try:
        yield storage
    finally:
        await storage.close()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "x.db"


def rows(path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Read committed state through an independent, read-only connection."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def delivery_states(path: Path) -> dict[int, tuple[str, int, float | None]]:
    return {r[0]: (r[1], r[2], r[3]) for r in rows(path, "SELECT id, state, attempts, next_attempt_at FROM deliveries")}


# --- fixtures as helpers --------------------------------------------------------------------


async def make_channel(s: SQLiteStorage, number: str = "15550001234", pnid: str = "106540352242922") -> Channel:
    if not any(w.id == WABA.id for w in await s.wabas()):
        await s.create_waba(WABA, T0)
    return await s.create_channel(WABA.id, number, pnid, ChannelFormat.CLOUD, "sandbox", ChannelMode.SANDBOX, T0)


def scope(channel: Channel) -> str:
    return f"channel:{channel.id}"


async def make_destination(
    s: SQLiteStorage, channel: Channel, url: str = "https://hooks.example/main", kind: str = "main", name: str = "main"
) -> Destination:
    await s.set_destination(scope(channel), kind, name, url, {"X-Token": "t"})
    (dest,) = [d for d in await s.destinations(scope(channel)) if d.kind == kind and d.name == name]
    return dest


def event(
    channel: Channel,
    created_at: float,
    *destinations: Destination,
    wamid: str | None = None,
    status: str | None = None,
    wait: bool = False,
) -> NewEvent:
    primary = destinations[0].id if destinations else None
    extras = tuple(d.id for d in destinations[1:])
    return NewEvent(
        id=ids.event_id(),
        channel_id=channel.id,
        kind="status" if status else "message",
        wamid=wamid,
        created_at=created_at,
        body=b'{"object":"whatsapp_business_account"}',
        fanout=FanOut(primary, extras, wait),
        deadline=created_at + 86_400,
        order_key=f"{channel.id}:4915112345678",
        message_status=status,
    )


def outgoing(to: str = "4915112345678", body: str = "hello") -> OutgoingMessage:
    return OutgoingMessage(
        input=to,
        wa_id=to,
        type="text",
        content={"body": body, "preview_url": False},
        context_message_id=None,
        biz_opaque_callback_data=None,
    )


def outcome(delivery_id: int, status: int | None, at: float) -> AttemptOutcome:
    return AttemptOutcome(delivery_id, at, 12.5, status, None if status == 200 else f"HTTP {status}", "ok")


# --- lifecycle ------------------------------------------------------------------------------


def test_open_and_close(db: Path) -> None:
    async def test() -> None:
        storage = SQLiteStorage(db)
        await storage.open()
        assert await storage.channels() == []
        assert await storage.get_value("k") is None
        await storage.set_value("k", "v1")
        await storage.set_value("k", "v2")
        assert await storage.get_value("k") == "v2"
        await storage.close()
        await storage.close()  # idempotent

    run(test)
    assert db.exists()
    assert rows(db, "PRAGMA journal_mode") == [("wal",)]


def test_operations_before_open_raise_storage_error(db: Path) -> None:
    async def test() -> None:
        with pytest.raises(StorageError):
            await SQLiteStorage(db).channels()

    run(test)


def test_second_open_of_the_same_path_is_refused(db: Path) -> None:
    async def test() -> None:
        async with opened(db):
            second = SQLiteStorage(db)
            with pytest.raises(ConfigError, match="in use"):
                await second.open()
            await second.close()  # harmless after a refused open
        # once the first has closed, the data directory is free again
        async with opened(db) as third:
            assert await third.channels() == []

    run(test)


def test_failed_open_releases_the_lock(tmp_path: Path) -> None:
    """A failed open must not keep the data-dir lock: a retry reports the real error, not 'in use'."""
    bad = tmp_path / "x.db"
    bad.mkdir()  # a directory cannot be opened as a database

    async def test() -> None:
        with pytest.raises(StorageError):
            await SQLiteStorage(bad).open()
        with pytest.raises(StorageError):  # not ConfigError("in use")
            await SQLiteStorage(bad).open()

    run(test)


def test_operations_after_close_raise_storage_error(db: Path) -> None:
    """After close() work is refused, not queued for a thread that is gone (which waited forever)."""

    async def test() -> None:
        async with opened(db) as storage:
            pass
        with pytest.raises(StorageError):
            await asyncio.wait_for(storage.channels(), 1.0)

    run(test)


# --- accounts --------------------------------------------------------------------------------


def test_create_waba_and_channel(db: Path) -> None:
    async def test() -> None:
        async with opened(db) as s:
            channel = await make_channel(s)
            assert channel.waba_id == WABA.id
            assert channel.format is ChannelFormat.CLOUD
            assert channel.mode is ChannelMode.SANDBOX
            assert await s.channels() == [channel]
            assert await s.wabas() == [WABA]
            with pytest.raises(ConflictError):  # phone numbers are unique
                await make_channel(s, pnid="999")
            with pytest.raises(ConflictError):  # so are phone number ids
                await make_channel(s, number="15559999999")
            with pytest.raises(ConflictError):  # the WABA must exist
                await s.create_channel("nope", "1", "2", ChannelFormat.CLOUD, "sandbox", ChannelMode.SANDBOX, T0)
            assert await s.channels() == [channel]

    run(test)


def test_replace_api_key_makes_the_old_key_unknown(db: Path) -> None:
    async def test() -> None:
        async with opened(db) as s:
            channel = await make_channel(s)
            old, new = ids.hash_api_key("old-key"), ids.hash_api_key("new-key")
            assert await s.channel_for_key(old) is None
            await s.replace_api_key(channel.id, old, "old-", T0, False)
            assert await s.channel_for_key(old) == channel
            await s.replace_api_key(channel.id, new, "new-", T0 + 1, False)
            assert await s.channel_for_key(old) is None
            assert await s.channel_for_key(new) == channel
            keys = await s.api_keys(channel.id)
            assert [(k.hint, k.created_at) for k in keys] == [("new-", T0 + 1)]

    run(test)


def test_replace_api_key_can_drop_an_unused_webhook(db: Path) -> None:
    async def test() -> None:
        async with opened(db) as s:
            channel = await make_channel(s)
            await make_destination(s, channel)
            await s.replace_api_key(channel.id, ids.hash_api_key("k"), "k", T0, True)
            assert await s.destinations(scope(channel)) == []
            assert await s.channel_for_key(ids.hash_api_key("k")) == channel

    run(test)


def test_replace_api_key_drops_a_used_webhook(db: Path) -> None:
    """Deliveries reference their destination: removing one that was used must still work."""

    async def test() -> None:
        async with opened(db) as s:
            channel = await make_channel(s)
            dest = await make_destination(s, channel)
            await s.ingest([event(channel, T0, dest)], [])
            await s.replace_api_key(channel.id, ids.hash_api_key("k"), "k", T0, True)
            assert await s.destinations(scope(channel)) == []
            assert await s.channel_for_key(ids.hash_api_key("k")) == channel

    run(test)


def test_sandbox_users(db: Path) -> None:
    async def test() -> None:
        async with opened(db) as s:
            channel = await make_channel(s)
            bob = SandboxUser("491522222222", "Bob", "DE.2")
            alice = SandboxUser("491511111111", "Alice", "DE.1")
            await s.add_sandbox_users(channel.id, [bob, alice])
            await s.add_sandbox_users(channel.id, [alice])  # ignored, no error
            assert await s.sandbox_users(channel.id) == [alice, bob]

    run(test)


# --- destinations ----------------------------------------------------------------------------


def test_set_update_and_list_destinations(db: Path) -> None:
    async def test() -> None:
        async with opened(db) as s:
            channel = await make_channel(s)
            main = await make_destination(s, channel)
            assert main.url == "https://hooks.example/main"
            assert main.headers == {"X-Token": "t"}
            assert main.override_all is False
            extra = await make_destination(s, channel, "https://hooks.example/crm", kind="multi", name="crm")
            # replacing keeps the id and the position
            again = await make_destination(s, channel, "https://hooks.example/main2")
            assert again.id == main.id
            listed = await s.destinations(scope(channel))
            assert [(d.id, d.url) for d in listed] == [
                (main.id, "https://hooks.example/main2"),
                (extra.id, "https://hooks.example/crm"),
            ]
            assert await s.update_destination(scope(channel), "multi", "crm", None, {"A": "b"})
            assert not await s.update_destination(scope(channel), "multi", "nope", "https://x", None)
            (_, crm) = await s.destinations(scope(channel))
            assert (crm.url, crm.headers) == ("https://hooks.example/crm", {"A": "b"})
            assert await s.destinations("channel:999") == []

    run(test)


def test_remove_unused_destination(db: Path) -> None:
    async def test() -> None:
        async with opened(db) as s:
            channel = await make_channel(s)
            await make_destination(s, channel)
            assert await s.remove_destination(scope(channel), "main", "main") is True
            assert await s.remove_destination(scope(channel), "main", "main") is False
            assert await s.destinations(scope(channel)) == []

    run(test)


def test_remove_destination_dead_letters_pending_deliveries(db: Path) -> None:
    """Pending deliveries of a removed destination die; others are untouched; the log keeps its rows."""

    async def test() -> None:
        async with opened(db) as s:
            channel = await make_channel(s)
            main = await make_destination(s, channel)
            other = await make_destination(s, channel, "https://hooks.example/crm", kind="multi", name="crm")
            await s.ingest([event(channel, T0, main, other), event(channel, T0 + 1, main, other)], [])
            assert await s.remove_destination(scope(channel), "main", "main") is True
            assert [d.id for d in await s.destinations(scope(channel))] == [other.id]
            due = await s.claim_due(T0 + 10, 100, T0 + 60)
            assert {d.url for d in due} == {"https://hooks.example/crm"}

    run(test)
    states = rows(db, "SELECT destination_id, state, last_error FROM deliveries ORDER BY id")
    assert [state for _, state, _ in states] == ["dead", "pending", "dead", "pending"]


def test_remove_destination_failure_leaves_everything_as_it_was(db: Path) -> None:
    """Whatever remove_destination does, it is atomic: it never half-applies."""

    async def test() -> None:
        async with opened(db) as s:
            channel = await make_channel(s)
            main = await make_destination(s, channel)
            await s.ingest([event(channel, T0, main)], [])
            try:
                removed = await s.remove_destination(scope(channel), "main", "main")
            except ConflictError:
                removed = False
            listed = await s.destinations(scope(channel))
            due = await s.claim_due(T0, 10, T0 + 60)
            if removed:
                assert listed == [] and due == []
            else:
                assert listed == [main] and len(due) == 1

    run(test)


# --- events and deliveries --------------------------------------------------------------------


def test_ingest_creates_pending_deliveries_per_destination(db: Path) -> None:
    async def test() -> None:
        async with opened(db) as s:
            channel = await make_channel(s)
            main = await make_destination(s, channel)
            crm = await make_destination(s, channel, "https://hooks.example/crm", kind="multi", name="crm")
            first = event(channel, T0, main, crm)
            second = event(channel, T0 + 5, main)
            nowhere = event(channel, T0 + 6)  # no destination: stored, nothing to deliver
            await s.ingest([first, second, nowhere], [])
            due = await s.claim_due(T0 + 10, 100, T0 + 60)
            assert sorted((d.event_id, d.url) for d in due) == sorted(
                [
                    (first.id, main.url),
                    (first.id, crm.url),
                    (second.id, main.url),
                ]
            )
            for d in due:
                assert d.attempts == 0
                assert d.headers == {"X-Token": "t"}
                assert d.body == first.body
                assert d.order_key == first.order_key
                assert d.created_at in (T0, T0 + 5)

    run(test)
    assert len(rows(db, "SELECT id FROM events")) == 3
    assert {r[0] for r in rows(db, "SELECT state FROM deliveries")} == {"pending"}


def test_ingest_stores_inbound_messages_and_status_updates(db: Path) -> None:
    async def test() -> None:
        async with opened(db) as s:
            channel = await make_channel(s)
            main = await make_destination(s, channel)
            await s.insert_outbound(QueuedMessage("wamid.OUT", channel.id, outgoing(), T0), T0)
            inbound = InboundMessage("wamid.IN", channel.id, "4915112345678", "text", {"body": "hi"}, T0 + 1)
            await s.ingest(
                [
                    event(channel, T0 + 1, main, wamid="wamid.IN"),
                    event(channel, T0 + 2, main, wamid="wamid.OUT", status="delivered"),
                ],
                [inbound],
            )

    run(test)
    assert dict(rows(db, "SELECT wamid, status FROM messages")) == {"wamid.OUT": "delivered", "wamid.IN": "received"}
    assert rows(db, "SELECT direction, dispatched FROM messages WHERE wamid = 'wamid.IN'") == [("in", 1)]


def test_ingest_is_atomic(db: Path) -> None:
    async def test() -> None:
        async with opened(db) as s:
            channel = await make_channel(s)
            main = await make_destination(s, channel)
            good = event(channel, T0, main)
            orphan = dataclasses.replace(good, id="evt_orphan", channel_id=9999)  # no such channel
            inbound = InboundMessage("wamid.IN", channel.id, "4915112345678", "text", {"body": "hi"}, T0)
            with pytest.raises(ConflictError):
                await s.ingest([good, orphan], [inbound])
            assert await s.claim_due(T0, 10, T0 + 60) == []

    run(test)
    assert rows(db, "SELECT count(*) FROM events") == [(0,)]
    assert rows(db, "SELECT count(*) FROM messages") == [(0,)]


def test_a_duplicate_notification_is_stored_and_delivered_once(db: Path) -> None:
    async def test() -> None:
        async with opened(db) as s:
            channel = await make_channel(s)
            main = await make_destination(s, channel)
            first = event(channel, T0, main)
            again = dataclasses.replace(first, created_at=T0 + 1)  # same event id: Meta re-posted it
            inbound = InboundMessage("wamid.IN", channel.id, "4915112345678", "text", {"body": "hi"}, T0)
            await s.ingest([first], [inbound])
            await s.ingest([again], [inbound])
            assert len(await s.claim_due(T0 + 5, 10, T0 + 60)) == 1

    run(test)
    assert rows(db, "SELECT count(*) FROM events") == [(1,)]
    assert rows(db, "SELECT count(*) FROM messages") == [(1,)]
    assert rows(db, "SELECT count(*) FROM deliveries") == [(1,)]


def test_claimed_deliveries_come_in_due_order_not_insertion_order(db: Path) -> None:
    """The dispatcher chains one conversation's deliveries in the order claim_due returns."""

    async def test() -> None:
        async with opened(db) as s:
            channel = await make_channel(s)
            main = await make_destination(s, channel)
            events = [event(channel, T0 + offset, main) for offset in (5, 4, 3, 2, 1)]
            await s.ingest(events, [])  # inserted latest-due first
            due = await s.claim_due(T0 + 10, 10, T0 + 60)
            assert [d.event_id for d in due] == [e.id for e in reversed(events)]

    run(test)


def test_claim_due_respects_next_attempt_at(db: Path) -> None:
    async def test() -> None:
        async with opened(db) as s:
            channel = await make_channel(s)
            main = await make_destination(s, channel)
            early, late = event(channel, T0, main), event(channel, T0 + 100, main)
            await s.ingest([late, early], [])
            assert await s.next_due_at(T0 - 1) == T0
            assert await s.claim_due(T0 - 1, 10, T0 + 60) == []
            (due,) = await s.claim_due(T0, 10, T0 + 1000)  # leased past the second one's due time
            assert due.event_id == early.id
            assert await s.next_due_at(T0) == T0 + 100
            (due,) = await s.claim_due(T0 + 100, 10, T0 + 160)
            assert due.event_id == late.id
            assert await s.next_due_at(T0 + 100) is None

    run(test)


def test_claim_due_orders_by_due_time_and_honours_limit(db: Path) -> None:
    async def test() -> None:
        async with opened(db) as s:
            channel = await make_channel(s)
            main = await make_destination(s, channel)
            events = [event(channel, T0 + i, main) for i in (4, 2, 0, 3, 1)]
            await s.ingest(events, [])
            by_time = [e.id for e in sorted(events, key=lambda e: e.created_at)]
            first = await s.claim_due(T0 + 10, 2, T0 + 60)
            second = await s.claim_due(T0 + 10, 2, T0 + 60)
            third = await s.claim_due(T0 + 10, 2, T0 + 60)
            assert [d.event_id for d in first + second + third] == by_time
            assert [len(first), len(second), len(third)] == [2, 2, 1]
            assert await s.claim_due(T0 + 10, 2, T0 + 60) == []

    run(test)


def test_claimed_delivery_is_not_claimed_again_until_its_lease_expires(db: Path) -> None:
    async def test() -> None:
        async with opened(db) as s:
            channel = await make_channel(s)
            main = await make_destination(s, channel)
            await s.ingest([event(channel, T0, main)], [])
            (due,) = await s.claim_due(T0, 10, lease_until=T0 + 60)
            assert await s.claim_due(T0 + 1, 10, T0 + 61) == []
            assert await s.claim_due(T0 + 60, 10, T0 + 120) == []  # still leased at the lease's last instant
            assert await s.next_due_at(T0 + 30) is None  # leased deliveries are not due
            (again,) = await s.claim_due(T0 + 60.5, 10, T0 + 120)
            assert again.id == due.id
            assert again.attempts == 0
            # release_leases (start-up of the only process) makes it claimable at once
            await s.release_leases()
            (third,) = await s.claim_due(T0 + 61, 10, T0 + 200)
            assert third.id == due.id

    run(test)


def test_record_attempts_moves_state(db: Path) -> None:
    async def test() -> None:
        async with opened(db) as s:
            channel = await make_channel(s)
            main = await make_destination(s, channel)
            a, b, c = (event(channel, T0, main) for _ in range(3))
            await s.ingest([a, b, c], [])
            claimed = {d.event_id: d for d in await s.claim_due(T0, 10, T0 + 60)}
            await s.record_attempts(
                [
                    AttemptRecord(outcome(claimed[a.id].id, 500, T0), DeliveryState.PENDING, T0 + 5),
                    AttemptRecord(outcome(claimed[b.id].id, 200, T0), DeliveryState.DELIVERED, None),
                    AttemptRecord(outcome(claimed[c.id].id, None, T0), DeliveryState.DEAD, None),
                ],
                T0 + 1,
            )
            # the failed one is due again at its next attempt, lease cleared, attempt counted
            assert await s.next_due_at(T0 + 1) == T0 + 5
            assert await s.claim_due(T0 + 4, 10, T0 + 60) == []
            (retry,) = await s.claim_due(T0 + 5, 10, T0 + 65)
            assert retry.event_id == a.id
            assert retry.attempts == 1
            await s.record_attempts(
                [AttemptRecord(outcome(retry.id, 200, T0 + 5), DeliveryState.DELIVERED, None)], T0 + 6
            )
            assert await s.claim_due(T0 + 1000, 10, T0 + 2000) == []
            assert await s.next_due_at(T0 + 1000) is None
            return claimed[a.id].id, claimed[b.id].id, claimed[c.id].id

    ids_ = asyncio.run(test())
    states = delivery_states(db)
    assert states[ids_[0]] == ("delivered", 2, None)
    assert states[ids_[1]] == ("delivered", 1, None)
    assert states[ids_[2]] == ("dead", 1, None)
    attempts = rows(db, "SELECT delivery_id, status_code, error FROM attempts ORDER BY id")
    assert attempts == [
        (ids_[0], 500, "HTTP 500"),
        (ids_[1], 200, None),
        (ids_[2], None, "HTTP None"),
        (ids_[0], 200, None),
    ]
    assert rows(db, "SELECT count(*) FROM deliveries WHERE lease_until IS NOT NULL") == [(0,)]


def test_held_deliveries_follow_their_primary(db: Path) -> None:
    async def test() -> tuple[int, int]:
        async with opened(db) as s:
            channel = await make_channel(s)
            main = await make_destination(s, channel)
            crm = await make_destination(s, channel, "https://hooks.example/crm", kind="multi", name="crm")
            ok, failing = event(channel, T0, main, crm, wait=True), event(channel, T0, main, crm, wait=True)
            await s.ingest([ok, failing], [])
            claimed = await s.claim_due(T0 + 10, 10, T0 + 60)
            assert {d.url for d in claimed} == {main.url}  # extras wait for the main webhook
            primary = {d.event_id: d.id for d in claimed}
            await s.record_attempts(
                [
                    AttemptRecord(outcome(primary[ok.id], 200, T0 + 10), DeliveryState.DELIVERED, None),
                    AttemptRecord(outcome(primary[failing.id], 503, T0 + 10), DeliveryState.DEAD, None),
                ],
                T0 + 11,
            )
            (released,) = await s.claim_due(T0 + 11, 10, T0 + 70)
            assert (released.event_id, released.url) == (ok.id, crm.url)
            assert await s.claim_due(T0 + 12, 10, T0 + 70) == []
            return primary[ok.id], primary[failing.id]

    ok_id, failing_id = asyncio.run(test())
    children = dict(rows(db, "SELECT parent_id, state FROM deliveries WHERE parent_id IS NOT NULL"))
    assert children == {ok_id: "pending", failing_id: "dead"}


# --- outbound messages and group commit --------------------------------------------------------


def test_outbound_queue(db: Path) -> None:
    async def test() -> None:
        async with opened(db) as s:
            channel = await make_channel(s)
            for i in range(3):
                await s.insert_outbound(QueuedMessage(f"wamid.{i}", channel.id, outgoing(body=f"m{i}"), T0 + i), T0 + 30)
            assert await s.claim_undispatched(T0 + 10, 10, T0 + 60) == []  # the accepting process holds them
            queued = await s.claim_undispatched(T0 + 31, 2, T0 + 90)
            assert [q.wamid for q in queued] == ["wamid.0", "wamid.1"]
            assert queued[1].message.content == {"body": "m1", "preview_url": False}
            assert queued[1].message.wa_id == "4915112345678"
            assert queued[1].created_at == T0 + 1
            assert [q.wamid for q in await s.claim_undispatched(T0 + 31, 10, T0 + 90)] == ["wamid.2"]
            await s.mark_dispatched(["wamid.0", "wamid.2"])
            assert [q.wamid for q in await s.claim_undispatched(T0 + 91, 10, T0 + 150)] == ["wamid.1"]

    run(test)


def test_group_commit_isolates_a_failing_operation(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    batch_sizes: list[int] = []
    hold = threading.Event()

    original = sqlite_module._run_batch

    def instrumented(conn: sqlite3.Connection, batch: list[Any]) -> Any:
        if hold.is_set():
            batch_sizes.append(len(batch))
            if len(batch_sizes) == 1:
                time.sleep(0.2)  # a slow fsync: the concurrent calls below queue up meanwhile
        return original(conn, batch)

    monkeypatch.setattr(sqlite_module, "_run_batch", instrumented)

    async def test() -> None:
        async with opened(db) as s:
            channel = await make_channel(s)
            hold.set()
            messages = [QueuedMessage(f"wamid.{i:03d}", channel.id, outgoing(body=str(i)), T0 + i) for i in range(200)]
            duplicate = QueuedMessage("wamid.199", channel.id, outgoing(body="dup"), T0 + 500)
            results = await asyncio.gather(
                *(s.insert_outbound(m, T0) for m in [*messages, duplicate]), return_exceptions=True
            )
            assert results[:200] == [None] * 200
            assert isinstance(results[200], ConflictError)
            hold.clear()
            stored = await s.claim_undispatched(T0 + 1, 1000, T0 + 2)
            assert [q.wamid for q in stored] == [m.wamid for m in messages]
            assert stored[-1].message.content["body"] == "199"  # the first write won

    run(test)
    assert max(batch_sizes) > 1, "the concurrent writes should have shared a transaction"
    assert sum(batch_sizes) >= 201
    assert rows(db, "SELECT count(*) FROM messages") == [(200,)]


def test_group_commit_many_concurrent_writers_without_help(db: Path) -> None:
    """No instrumentation: 200 concurrent writers and one duplicate, batched however they fall."""

    async def test() -> None:
        async with opened(db) as s:
            channel = await make_channel(s)
            calls = [s.insert_outbound(QueuedMessage(f"wamid.{i}", channel.id, outgoing(), T0), T0) for i in range(200)]
            calls.insert(100, s.insert_outbound(QueuedMessage("wamid.7", channel.id, outgoing(), T0), T0))
            results = await asyncio.gather(*calls, return_exceptions=True)
            failures = [r for r in results if r is not None]
            assert len(failures) == 1 and isinstance(failures[0], ConflictError)
            assert len(await s.claim_undispatched(T0 + 1, 1000, T0 + 2)) == 200

    run(test)


# --- durability ----------------------------------------------------------------------------------


def test_data_survives_close_and_reopen(db: Path) -> None:
    async def write() -> tuple[Channel, Destination]:
        async with opened(db) as s:
            channel = await make_channel(s)
            await s.replace_api_key(channel.id, ids.hash_api_key("key"), "key", T0, False)
            dest = await make_destination(s, channel)
            await s.set_value("setting", "on")
            await s.insert_outbound(QueuedMessage("wamid.OUT", channel.id, outgoing(), T0), T0)
            await s.ingest([event(channel, T0, dest)], [])
            (claimed,) = await s.claim_due(T0, 10, T0 + 60)  # leased when the process stops
            return channel, dest

    channel, dest = asyncio.run(write())

    async def read() -> None:
        async with opened(db) as s:
            assert await s.channels() == [channel]
            assert await s.channel_for_key(ids.hash_api_key("key")) == channel
            assert await s.destinations(scope(channel)) == [dest]
            assert await s.get_value("setting") == "on"
            assert [q.wamid for q in await s.claim_undispatched(T0 + 1, 10, T0 + 2)] == ["wamid.OUT"]
            assert await s.claim_due(T0 + 1, 10, T0 + 60) == []  # the lease survived too
            await s.release_leases()
            assert len(await s.claim_due(T0 + 1, 10, T0 + 60)) == 1

    asyncio.run(read())
    assert rows(db, "PRAGMA user_version")[0][0] >= 1


# --- removal races ---------------------------------------------------------------------------------


def test_removing_the_primary_does_not_strand_held_deliveries(db: Path) -> None:
    """Extras held for a primary whose destination is removed must not stay 'held' forever."""

    async def test() -> None:
        async with opened(db) as s:
            channel = await make_channel(s)
            main = await make_destination(s, channel)
            crm = await make_destination(s, channel, "https://hooks.example/crm", kind="multi", name="crm")
            await s.ingest([event(channel, T0, main, crm, wait=True)], [])
            assert await s.remove_destination(scope(channel), "main", "main")

    run(test)
    states = dict(rows(db, "SELECT destination_id, state FROM deliveries"))
    assert states[1] == "dead"
    assert states[2] != "held", "the extra delivery waits for a primary that can never answer"


def test_an_attempt_in_flight_does_not_revive_a_removed_destination(db: Path) -> None:
    """The dispatcher may finish an attempt after the destination was removed; the delivery stays dead."""

    async def test() -> None:
        async with opened(db) as s:
            channel = await make_channel(s)
            main = await make_destination(s, channel)
            await s.ingest([event(channel, T0, main)], [])
            (due,) = await s.claim_due(T0, 10, T0 + 60)
            assert await s.remove_destination(scope(channel), "main", "main")
            # the attempt that was in flight failed; the policy says: try again at T0 + 5
            await s.record_attempts([AttemptRecord(outcome(due.id, 503, T0), DeliveryState.PENDING, T0 + 5)], T0 + 1)
            assert await s.claim_due(T0 + 5, 10, T0 + 65) == [], "posting to a removed webhook"
            assert await s.next_due_at(T0 + 5) is None

    run(test)
    assert rows(db, "SELECT state FROM deliveries") == [("dead",)]


def test_an_instance_can_be_opened_again_after_a_failed_open(tmp_path: Path) -> None:
    """close() after a failed open once left its stop marker queued: the next writer thread stopped at once."""
    path = tmp_path / "x.db"
    path.mkdir()

    async def test() -> None:
        storage = SQLiteStorage(path)
        with pytest.raises(StorageError):
            await storage.open()
        path.rmdir()  # the operator fixes the problem and the same instance retries
        await storage.open()
        try:
            assert await asyncio.wait_for(storage.channels(), 2.0) == []
        finally:
            await storage.close()

    run(test)


def test_an_instance_can_be_opened_again_after_close(db: Path) -> None:
    async def test() -> None:
        storage = SQLiteStorage(db)
        await storage.open()
        await storage.set_value("k", "v")
        await storage.close()
        await storage.open()
        try:
            assert await asyncio.wait_for(storage.get_value("k"), 2.0) == "v"
        finally:
            await storage.close()

    run(test)


def test_a_410_does_not_strand_held_deliveries(db: Path) -> None:
    """A 410 Gone dead-letters the destination's deliveries, and with them the extras held for them."""

    async def test() -> None:
        async with opened(db) as s:
            channel = await make_channel(s)
            main = await make_destination(s, channel)
            crm = await make_destination(s, channel, "https://hooks.example/crm", kind="multi", name="crm")
            await s.ingest([event(channel, T0, main, crm, wait=True), event(channel, T0 + 1, main, crm, wait=True)], [])
            (gone,) = await s.claim_due(T0 + 1, 1, T0 + 60)  # the first event's main delivery
            await s.record_attempts(
                [
                    AttemptRecord(
                        outcome(gone.id, 410, T0 + 1),
                        DeliveryState.DEAD,
                        None,
                        main.id,
                        disable_destination=True,
                    )
                ],
                T0 + 2,
            )

    run(test)
    states = rows(db, "SELECT destination_id, state FROM deliveries ORDER BY id")
    assert [state for dest, state in states if dest == 1] == ["dead", "dead"]
    assert "held" not in [state for dest, state in states if dest == 2]

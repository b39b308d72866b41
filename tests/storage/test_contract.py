"""The `Storage` contract, run against SQLite and PostgreSQL alike.

Only the public seam API is used (no SQL), so every assertion here is something
the services may rely on whichever database a deployment runs on. State the API
does not return directly is observed the way the services observe it: deliveries
through `deliveries()` / `claim_due()`, message statuses through
`conversation_message()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TypeVar

import pytest

from openwaba.domain import ids
from openwaba.domain.accounts import Channel, ChannelFormat, ChannelMode, MetaLink, SandboxUser, Waba
from openwaba.domain.deliveries import (
    AttemptOutcome,
    AttemptView,
    DeliveryFilter,
    DeliveryState,
    DeliveryView,
    Destination,
    DueDelivery,
)
from openwaba.domain.errors import ConflictError
from openwaba.domain.messages import OutgoingMessage
from openwaba.domain.routing import FanOut
from openwaba.domain.throttle import Rate
from openwaba.storage.base import (
    AttemptRecord,
    ChannelLimits,
    InboundMessage,
    MediaFile,
    NewEvent,
    QueuedMessage,
    Storage,
    StoredTemplate,
)

from .conftest import StorageFactory

T = TypeVar("T")

# Fractional (and exactly representable) so that a lossy timestamp column shows.
T0 = 1_700_000_000.25
WABA = Waba("102290129340398", "Acme")
OTHER_WABA = Waba("102290129340399", "Globex")
USER = "4915112345678"
OTHER_USER = "4915187654321"
LEASE = 60.0
EVERYTHING = DeliveryFilter()


# --- helpers -----------------------------------------------------------------------------------


async def make_channel(s: Storage, number: str = "15550001234", pnid: str = "106540352242922") -> Channel:
    if not any(w.id == WABA.id for w in await s.wabas()):
        await s.create_waba(WABA, T0)
    return await s.create_channel(WABA.id, number, pnid, ChannelFormat.CLOUD, "sandbox", ChannelMode.SANDBOX, T0)


def scope(channel: Channel) -> str:
    return f"channel:{channel.id}"


async def make_destination(
    s: Storage,
    channel: Channel,
    name: str = "main",
    kind: str = "main",
    url: str | None = None,
    fifo: bool = False,
) -> Destination:
    url = url or f"https://hooks.example/{name}"
    await s.set_destination(scope(channel), kind, name, url, {"X-Token": "t"}, fifo=fifo)
    (dest,) = [d for d in await s.destinations(scope(channel)) if (d.kind, d.name) == (kind, name)]
    return dest


def event(
    channel: Channel,
    created_at: float,
    *destinations: Destination,
    wamid: str | None = None,
    status: str | None = None,
    wait: bool = False,
    user: str = USER,
    deadline: float | None = None,
    injected: tuple[str, ...] = (),
    body: bytes = b'{"object":"whatsapp_business_account"}',
) -> NewEvent:
    primary = destinations[0].id if destinations else None
    extras = tuple(d.id for d in destinations[1:])
    return NewEvent(
        id=ids.event_id(),
        channel_id=channel.id,
        kind="status" if status else "message",
        wamid=wamid,
        created_at=created_at,
        body=body,
        fanout=FanOut(primary, extras, wait),
        deadline=created_at + 86_400 if deadline is None else deadline,
        order_key=f"{channel.id}:{user}",
        message_status=status,
        injected=injected,
    )


def outgoing(to: str = USER, body: str = "hello") -> OutgoingMessage:
    return OutgoingMessage(
        input=to,
        wa_id=to,
        type="text",
        content={"body": body, "preview_url": False},
        context_message_id=None,
        biz_opaque_callback_data=None,
    )


def inbound(channel: Channel, wamid: str, at: float, text: str = "hi", user: str = USER) -> InboundMessage:
    return InboundMessage(wamid, channel.id, user, "text", {"body": text}, at)


def outcome(delivery_id: int, status: int | None, at: float) -> AttemptOutcome:
    return AttemptOutcome(delivery_id, at, 12.5, status, None if status == 200 else f"HTTP {status}", "ok")


def attempt(
    delivery_id: int, status: int | None, at: float, state: DeliveryState, next_at: float | None = None
) -> AttemptRecord:
    return AttemptRecord(outcome(delivery_id, status, at), state, next_at)


async def views(s: Storage, channel: Channel, where: DeliveryFilter = EVERYTHING) -> dict[int, DeliveryView]:
    return {v.id: v for v in await s.deliveries(channel.id, where, 1000, None)}


async def states(s: Storage, channel: Channel) -> dict[int, str]:
    return {i: v.state for i, v in (await views(s, channel)).items()}


async def claim_all(s: Storage, now: float, lease: float = LEASE) -> list[DueDelivery]:
    return await s.claim_due(now, 1000, now + lease)


def template(name: str, language: str = "en_US", decision: str = "APPROVED") -> StoredTemplate:
    return StoredTemplate(
        id=f"tpl_{name}_{language}",
        name=name,
        language=language,
        category="UTILITY",
        components=[{"type": "BODY", "text": "Hello {{1}} — ✓"}],
        decision=decision,
        rejected_reason=None if decision != "REJECTED" else "INVALID_FORMAT",
        decided_at=T0 + 5,
        created_at=T0,
    )


# --- lifecycle, settings ------------------------------------------------------------------------


def test_a_fresh_store_is_empty(storage: Storage, runner: asyncio.Runner) -> None:
    async def test() -> None:
        s = storage
        assert await s.wabas() == []
        assert await s.channels() == []
        assert await s.get_value("anything") is None
        assert await s.queue_stats() == (0, None)
        assert await s.next_due_at(T0) is None
        assert await s.claim_due(T0, 10, T0 + LEASE) == []
        assert await s.claim_undispatched(T0, 10, T0 + LEASE) == []
        assert await s.event_body("evt_nope") is None
        assert await s.channel_for_key(ids.hash_api_key("nope")) is None

    runner.run(test())


def test_values_are_set_and_overwritten(storage: Storage, runner: asyncio.Runner) -> None:
    async def test() -> None:
        s = storage
        await s.set_value("k", "v1")
        await s.set_value("other", "ö ✓ 'quoted' \"double\"")
        await s.set_value("k", "v2")
        assert await s.get_value("k") == "v2"
        assert await s.get_value("other") == "ö ✓ 'quoted' \"double\""
        await s.set_value("k", "")
        assert await s.get_value("k") == ""

    runner.run(test())


def test_data_survives_close_and_reopen(storage_factory: StorageFactory, runner: asyncio.Runner) -> None:
    async def test() -> None:
        first = storage_factory()
        await first.open()
        try:
            channel = await make_channel(first)
            dest = await make_destination(first, channel)
            await first.set_value("setting", "on")
            await first.ingest([event(channel, T0, dest)], [])
            (claimed,) = await claim_all(first, T0)  # leased when the process stops
        finally:
            await first.close()
        second = storage_factory()
        await second.open()  # open() again on a migrated database: nothing to apply, nothing lost
        try:
            assert await second.channels() == [channel]
            assert await second.destinations(scope(channel)) == [dest]
            assert await second.get_value("setting") == "on"
            assert await second.claim_due(T0 + 1, 10, T0 + LEASE) == []  # the lease survived too
            (again,) = await claim_all(second, T0 + LEASE + 1)  # and expires as it would have
            assert again.id == claimed.id
        finally:
            await second.close()

    runner.run(test())


# --- accounts ------------------------------------------------------------------------------------


def test_wabas_and_channels(storage: Storage, runner: asyncio.Runner) -> None:
    async def test() -> None:
        s = storage
        channel = await make_channel(s)
        await s.create_waba(OTHER_WABA, T0 + 1)
        second = await s.create_channel(
            OTHER_WABA.id, "15550009999", "106540352242999", ChannelFormat.ON_PREMISE, "sandbox",
            ChannelMode.PRODUCTION, T0 + 1,
        )  # fmt: skip
        assert (channel.waba_id, channel.phone_number, channel.phone_number_id) == (
            WABA.id,
            "15550001234",
            "106540352242922",
        )
        assert (channel.format, channel.mode, channel.connector) == (
            ChannelFormat.CLOUD,
            ChannelMode.SANDBOX,
            "sandbox",
        )
        assert (second.format, second.mode) == (ChannelFormat.ON_PREMISE, ChannelMode.PRODUCTION)
        assert channel.id != second.id
        assert await s.wabas() == [WABA, OTHER_WABA]  # in creation order
        assert await s.channels() == [channel, second]  # in creation order
        assert all(isinstance(c.id, int) for c in await s.channels())

    runner.run(test())


CONFLICTS: dict[str, Callable[[Storage], Awaitable[object]]] = {
    "same phone number": lambda s: make_channel(s, pnid="999"),
    "same phone number id": lambda s: make_channel(s, number="15559999999"),
    "unknown waba": lambda s: s.create_channel(
        "nope", "1", "2", ChannelFormat.CLOUD, "sandbox", ChannelMode.SANDBOX, T0
    ),
    "same waba id": lambda s: s.create_waba(Waba(WABA.id, "Again"), T0),
}


@pytest.mark.parametrize("case", list(CONFLICTS))
def test_account_uniqueness_rules_raise_conflict_error(storage: Storage, runner: asyncio.Runner, case: str) -> None:
    async def test() -> None:
        channel = await make_channel(storage)
        with pytest.raises(ConflictError):
            await CONFLICTS[case](storage)
        # the failed write changed nothing, and the store still works afterwards
        assert await storage.channels() == [channel]
        assert await storage.wabas() == [WABA]
        await storage.set_value("after", "ok")
        assert await storage.get_value("after") == "ok"

    runner.run(test())


def test_a_waba_is_created_with_its_templates(storage: Storage, runner: asyncio.Runner) -> None:
    async def test() -> None:
        await storage.create_waba(WABA, T0, [template("welcome"), template("order", "de")])
        assert await storage.templates(WABA.id) == [template("order", "de"), template("welcome")]

    runner.run(test())


def test_replacing_the_api_key_makes_the_old_one_unknown(storage: Storage, runner: asyncio.Runner) -> None:
    async def test() -> None:
        s = storage
        channel = await make_channel(s)
        other = await make_channel(s, "15550002222", "106540352242000")
        old, new = ids.hash_api_key("old-key"), ids.hash_api_key("new-key")
        await s.replace_api_key(channel.id, old, "old-", T0, False)
        await s.replace_api_key(other.id, ids.hash_api_key("other"), "oth-", T0, False)
        assert await s.channel_for_key(old) == channel
        await s.replace_api_key(channel.id, new, "new-", T0 + 1, False)
        assert await s.channel_for_key(old) is None
        assert await s.channel_for_key(new) == channel
        assert [(k.hint, k.created_at) for k in await s.api_keys(channel.id)] == [("new-", T0 + 1)]
        assert await s.channel_for_key(ids.hash_api_key("other")) == other  # another number's key is untouched

    runner.run(test())


def test_replacing_the_key_can_drop_a_used_webhook(storage: Storage, runner: asyncio.Runner) -> None:
    async def test() -> None:
        s = storage
        channel = await make_channel(s)
        dest = await make_destination(s, channel)
        await s.ingest([event(channel, T0, dest)], [])
        await s.replace_api_key(channel.id, ids.hash_api_key("k"), "k", T0, True)
        assert await s.destinations(scope(channel)) == []
        assert await s.channel_for_key(ids.hash_api_key("k")) == channel
        assert list((await states(s, channel)).values()) == ["dead"]

    runner.run(test())


def test_sandbox_users_are_added_once(storage: Storage, runner: asyncio.Runner) -> None:
    async def test() -> None:
        s = storage
        channel = await make_channel(s)
        other = await make_channel(s, "15550002222", "106540352242000")
        bob = SandboxUser("491522222222", "Bob", "DE.2")
        alice = SandboxUser("491511111111", "Alice", "DE.1")
        await s.add_sandbox_users(channel.id, [bob, alice])
        await s.add_sandbox_users(channel.id, [alice, SandboxUser(bob.wa_id, "Robert", "DE.9")])  # ignored
        await s.add_sandbox_users(channel.id, [])
        await s.add_sandbox_users(other.id, [bob])  # the same user may talk to another number
        assert await s.sandbox_users(channel.id) == [alice, bob]  # by wa_id
        assert await s.sandbox_users(other.id) == [bob]

    runner.run(test())


def test_channel_webhook_flags(storage: Storage, runner: asyncio.Runner) -> None:
    async def test() -> None:
        s = storage
        channel = await make_channel(s)
        assert await s.channel_webhook_flags(channel.id) == (False, "after_main")
        await s.set_channel_webhook_flags(channel.id, True, None)
        assert await s.channel_webhook_flags(channel.id) == (True, "after_main")
        await s.set_channel_webhook_flags(channel.id, None, "independent")
        assert await s.channel_webhook_flags(channel.id) == (True, "independent")
        await s.set_channel_webhook_flags(channel.id, False, "after_main")
        assert await s.channel_webhook_flags(channel.id) == (False, "after_main")

    runner.run(test())


@pytest.mark.parametrize(
    "limits",
    [ChannelLimits(), ChannelLimits(80.0, None), ChannelLimits(None, False), ChannelLimits(2.5, True)],
    ids=["defaults", "throughput", "limits-off", "both"],
)
def test_channel_limits_round_trip(storage: Storage, runner: asyncio.Runner, limits: ChannelLimits) -> None:
    async def test() -> None:
        channel = await make_channel(storage)
        assert await storage.channel_limits(channel.id) == ChannelLimits()
        await storage.set_channel_limits(channel.id, ChannelLimits(1.0, True))
        await storage.set_channel_limits(channel.id, limits)  # replaces both fields
        assert await storage.channel_limits(channel.id) == limits

    runner.run(test())


def test_channel_retry_horizon(storage: Storage, runner: asyncio.Runner) -> None:
    async def test() -> None:
        channel = await make_channel(storage)
        assert await storage.channel_retry_horizon(channel.id) is None
        await storage.set_channel_retry_horizon(channel.id, 3600.5)
        assert await storage.channel_retry_horizon(channel.id) == 3600.5
        await storage.set_channel_retry_horizon(channel.id, None)
        assert await storage.channel_retry_horizon(channel.id) is None

    runner.run(test())


# --- destinations --------------------------------------------------------------------------------


def test_destinations_are_set_updated_and_listed_in_position_order(storage: Storage, runner: asyncio.Runner) -> None:
    async def test() -> None:
        s = storage
        channel = await make_channel(s)
        main = await make_destination(s, channel)
        assert (main.kind, main.name, main.url, main.headers) == ("main", "main", "https://hooks.example/main",
                                                                  {"X-Token": "t"})
        assert (main.override_all, main.secrets, main.app_secret, main.fifo) == (False, (), None, False)
        crm = await make_destination(s, channel, "crm", "multi")
        # replacing keeps the id and the position
        await s.set_destination(scope(channel), "main", "main", "https://hooks.example/main2", {})
        assert [(d.id, d.url) for d in await s.destinations(scope(channel))] == [
            (main.id, "https://hooks.example/main2"),
            (crm.id, crm.url),
        ]
        # update changes only what is given
        assert await s.update_destination(scope(channel), "multi", "crm", None, {"A": "b"})
        assert await s.update_destination(scope(channel), "multi", "crm", None, None, ["whsec_2", "whsec_1"],
                                          "app-secret", True)
        (_, updated) = await s.destinations(scope(channel))
        assert updated == Destination(crm.id, "multi", "crm", crm.url, {"A": "b"}, False, ("whsec_2", "whsec_1"),
                                      "app-secret", True)
        assert not await s.update_destination(scope(channel), "multi", "nope", "https://x", None)
        assert await s.destinations("channel:999999") == []

    runner.run(test())


def test_destination_settings_round_trip(storage: Storage, runner: asyncio.Runner) -> None:
    async def test() -> None:
        s = storage
        await s.create_waba(WABA, T0)
        waba_scope = f"waba:{WABA.id}"
        headers = {"Authorization": "Bearer ö✓", "X-Empty": ""}
        await s.set_destination(waba_scope, "waba", "waba", "https://hooks.example/waba?x=1", headers,
                                override_all=True, secrets=["whsec_a"], app_secret="s3cret", fifo=True)
        (dest,) = await s.destinations(waba_scope)
        assert dest == Destination(dest.id, "waba", "waba", "https://hooks.example/waba?x=1", headers, True,
                                   ("whsec_a",), "s3cret", True)

    runner.run(test())


def test_a_removed_destination_comes_back_at_the_end(storage: Storage, runner: asyncio.Runner) -> None:
    async def test() -> None:
        s = storage
        channel = await make_channel(s)
        await make_destination(s, channel, "a", "multi")
        await make_destination(s, channel, "b", "multi")
        assert await s.remove_destination(scope(channel), "multi", "a")
        assert await s.remove_destination(scope(channel), "multi", "a") is False
        assert not await s.update_destination(scope(channel), "multi", "a", "https://x", None)
        await make_destination(s, channel, "a", "multi")
        assert [d.name for d in await s.destinations(scope(channel))] == ["b", "a"]

    runner.run(test())


def test_removing_a_destination_dead_letters_its_pending_deliveries(storage: Storage, runner: asyncio.Runner) -> None:
    async def test() -> None:
        s = storage
        channel = await make_channel(s)
        main = await make_destination(s, channel)
        crm = await make_destination(s, channel, "crm", "multi")
        log = await make_destination(s, channel, "log", "multi")
        held = event(channel, T0, main, log, wait=True)  # log's delivery waits for main's
        await s.ingest([event(channel, T0, main, crm), event(channel, T0 + 1, main, crm), held], [])
        assert await s.remove_destination(scope(channel), "main", "main") is True
        assert [d.id for d in await s.destinations(scope(channel))] == [crm.id, log.id]
        by_destination = sorted((v.destination_name, v.state) for v in (await views(s, channel)).values())
        # the main webhook's deliveries died, and with them the delivery held for one of them
        assert by_destination == [("crm", "pending"), ("crm", "pending"), ("log", "dead"),
                                  ("main", "dead"), ("main", "dead"), ("main", "dead")]
        assert {v.last_error for v in (await views(s, channel)).values() if v.destination_name == "main"} == {
            "destination removed"
        }
        assert {d.url for d in await claim_all(s, T0 + 10)} == {crm.url}
        # an event routed to the removed destination before it went gets no delivery there
        late = event(channel, T0 + 2, main, crm)
        await s.ingest([late], [])
        assert [v.destination_name for v in await s.deliveries(channel.id, DeliveryFilter(event_id=late.id), 10,
                                                                 None)] == ["crm"]

    runner.run(test())


# --- outbound messages ---------------------------------------------------------------------------


def test_outbound_queue(storage: Storage, runner: asyncio.Runner) -> None:
    async def test() -> None:
        s = storage
        channel = await make_channel(s)
        for i in (2, 0, 1, 3):
            # the accepting process hands each message over itself, unless it is gone after 30 s
            await s.insert_outbound(QueuedMessage(f"wamid.{i}", channel.id, outgoing(body=f"m{i}"), T0 + i), T0 + 30)
        await s.mark_dispatched(["wamid.3"])  # handed over in time
        assert await s.claim_undispatched(T0 + 10, 10, T0 + 100) == []  # still the accepting process's
        assert await s.claim_undispatched(T0 + 30, 10, T0 + 100) == []  # at the lease's last instant too
        first = await s.claim_undispatched(T0 + 31, 2, T0 + 100)
        assert [q.wamid for q in first] == ["wamid.0", "wamid.1"]  # oldest first, at most `limit`
        assert first[1] == QueuedMessage("wamid.1", channel.id, outgoing(body="m1"), T0 + 1)
        assert [q.wamid for q in await s.claim_undispatched(T0 + 31, 10, T0 + 100)] == ["wamid.2"]
        assert await s.claim_undispatched(T0 + 99, 10, T0 + 200) == []  # all leased again
        await s.mark_dispatched(["wamid.0", "wamid.2"])
        await s.mark_dispatched([])
        await s.mark_dispatched(["wamid.unknown"])
        assert [q.wamid for q in await s.claim_undispatched(T0 + 101, 10, T0 + 200)] == ["wamid.1"]
        with pytest.raises(ConflictError):
            await s.insert_outbound(QueuedMessage("wamid.0", channel.id, outgoing(body="again"), T0 + 9), T0)
        assert [q.wamid for q in await s.claim_undispatched(T0 + 201, 10, T0 + 300)] == ["wamid.1"]

    runner.run(test())


def test_a_synchronous_hand_over_is_never_reclaimed_and_settles_once(storage: Storage, runner: asyncio.Runner) -> None:
    async def test() -> None:
        s = storage
        channel = await make_channel(s)
        for name in ("ours.sent", "ours.refused", "ours.unknown"):
            await s.insert_outbound(QueuedMessage(name, channel.id, outgoing(body=name), T0), None)
        assert await s.claim_undispatched(T0 + 10_000, 10, T0 + 20_000) == []  # never anyone else's to send
        await s.settle_outbound("ours.sent", "wamid.FROM_META")
        await s.settle_outbound("ours.refused", None)
        # ours.unknown stays unsettled: the record that a hand-over began, outcome unknown
        shown = {e.wamid: e.status for e in await s.conversation(channel.id, USER, 10)}
        assert shown == {"wamid.FROM_META": "accepted", "ours.unknown": "sending"}
        assert await s.claim_undispatched(T0 + 20_000, 10, T0 + 30_000) == []

    runner.run(test())


def test_meta_links_and_the_connector_switch(storage: Storage, runner: asyncio.Runner) -> None:
    async def test() -> None:
        s = storage
        channel = await make_channel(s)
        other = await make_channel(s, "15550009999", "106540352242999")
        link = MetaLink(channel.id, "111222333444555", "999888777666555", "EAAtoken", "secret")
        await s.set_connector(channel.id, "meta", link)
        assert await s.meta_links() == [link]
        assert [c.connector for c in await s.channels()] == ["meta", "sandbox"]
        await s.set_connector(channel.id, "sandbox", None)  # the link stays for the next switch
        assert await s.meta_links() == [link]
        assert [c.connector for c in await s.channels()] == ["sandbox", "sandbox"]
        new_token = dataclasses.replace(link, access_token="EAAnew")
        await s.set_connector(channel.id, "meta", new_token)
        assert await s.meta_links() == [new_token]
        with pytest.raises(ConflictError):  # one Meta number, one channel
            await s.set_connector(other.id, "meta", dataclasses.replace(link, channel_id=other.id))
        assert [c.connector for c in await s.channels()] == ["meta", "sandbox"]  # the refused switch changed nothing

    runner.run(test())


def test_the_meta_inbox_keeps_posts_until_they_are_done(storage: Storage, runner: asyncio.Runner) -> None:
    async def test() -> None:
        s = storage
        for i in range(3):
            await s.insert_meta_inbox(f'{{"n":{i}}}'.encode() + b"\xff", T0 + i)
        async with s.meta_inbox(2) as posts:
            assert [(p.body, p.received_at) for p in posts] == [(b'{"n":0}\xff', T0), (b'{"n":1}\xff', T0 + 1)]
            posts[1].done = True
        async with s.meta_inbox(10) as posts:
            assert [p.body for p in posts] == [b'{"n":0}\xff', b'{"n":2}\xff']  # oldest first, done ones gone
            for post in posts:
                post.done = True
        async with s.meta_inbox(10) as posts:
            assert posts == []

    runner.run(test())


def test_outbound_message_fields_round_trip(storage: Storage, runner: asyncio.Runner) -> None:
    async def test() -> None:
        channel = await make_channel(storage)
        message = OutgoingMessage(
            input=USER,
            wa_id=USER,
            type="interactive",
            content={"type": "button", "body": {"text": "Ünïcödé ✓ \"q\" \\ \n"}, "action": {"buttons": [
                {"type": "reply", "reply": {"id": "1", "title": "Yes"}}]}, "n": 1.5, "flag": True, "none": None},
            context_message_id="wamid.CONTEXT",
            biz_opaque_callback_data="opaque",
        )
        await storage.insert_outbound(QueuedMessage("wamid.X", channel.id, message, T0), T0)
        (queued,) = await storage.claim_undispatched(T0 + 1, 10, T0 + LEASE)
        assert queued == QueuedMessage("wamid.X", channel.id, message, T0)
        entry = await storage.conversation_message(channel.id, USER, "wamid.X")
        assert entry is not None
        assert (entry.direction, entry.type, entry.content, entry.context_message_id, entry.status) == (
            "out", "interactive", message.content, "wamid.CONTEXT", "accepted")

    runner.run(test())


# --- ingest ------------------------------------------------------------------------------------------


def test_ingest_creates_a_delivery_per_destination(storage: Storage, runner: asyncio.Runner) -> None:
    async def test() -> None:
        s = storage
        channel = await make_channel(s)
        main = await make_destination(s, channel)
        crm = await make_destination(s, channel, "crm", "multi")
        first = event(channel, T0, main, crm, injected=("duplicate", "delayed"))
        second = event(channel, T0 + 5, main, body=bytes(range(256)))  # any bytes, not only UTF-8
        nowhere = event(channel, T0 + 6)  # no destination: stored, nothing to deliver
        await s.ingest([first, second, nowhere], [])
        due = await claim_all(s, T0 + 10)
        assert sorted((d.event_id, d.url) for d in due) == sorted(
            [(first.id, main.url), (first.id, crm.url), (second.id, main.url)]
        )
        for d in due:
            e = first if d.event_id == first.id else second
            assert (d.attempts, d.order_key, d.created_at, d.deadline, d.body) == (
                0, e.order_key, e.created_at, e.deadline, e.body)
            assert (d.headers, d.secrets, d.app_secret) == ({"X-Token": "t"}, (), None)
            assert d.destination_id == (main.id if d.url == main.url else crm.id)
            assert type(d.created_at) is float and type(d.deadline) is float and type(d.body) is bytes
        assert await s.event_body(nowhere.id) == nowhere.body
        assert await s.event_body(second.id) == bytes(range(256))
        listed = await s.deliveries(channel.id, DeliveryFilter(event_id=first.id), 10, None)
        assert {v.injected_labels == ["duplicate", "delayed"] for v in listed} == {True}
        assert {(v.event_kind, v.state, v.attempts) for v in listed} == {("message", "pending", 0)}

    runner.run(test())


def test_a_duplicate_event_is_stored_and_delivered_once(storage: Storage, runner: asyncio.Runner) -> None:
    async def test() -> None:
        s = storage
        channel = await make_channel(s)
        main = await make_destination(s, channel)
        first = event(channel, T0, main)
        again = dataclasses.replace(first, created_at=T0 + 1, body=b"{}")  # same event id: Meta re-posted it
        await s.ingest([first], [inbound(channel, "wamid.IN", T0)])
        await s.ingest([again], [inbound(channel, "wamid.IN", T0 + 1, "changed")])
        await s.ingest([first, first], [])  # twice in one batch
        (due,) = await claim_all(s, T0 + 5)
        assert due.body == first.body
        # the inbound message's first copy wins
        entry = await s.conversation_message(channel.id, USER, "wamid.IN")
        assert entry is not None and (entry.content, entry.created_at) == ({"body": "hi"}, T0)
        assert len(await s.conversation(channel.id, USER, 10)) == 1

    runner.run(test())


def test_ingest_stores_inbound_messages(storage: Storage, runner: asyncio.Runner) -> None:
    async def test() -> None:
        s = storage
        channel = await make_channel(s)
        message = InboundMessage("wamid.IN", channel.id, USER, "text", {"body": "hi ✓"}, T0 + 1, "wamid.OUT")
        await s.ingest([], [message])
        entry = await s.conversation_message(channel.id, USER, "wamid.IN")
        assert entry is not None
        assert (entry.direction, entry.type, entry.content, entry.context_message_id, entry.status,
                entry.created_at) == ("in", "text", {"body": "hi ✓"}, "wamid.OUT", "received", T0 + 1)
        assert await s.claim_undispatched(T0 + 10, 10, T0 + LEASE) == []  # inbound messages are not for sending

    runner.run(test())


def test_ingest_is_atomic(storage: Storage, runner: asyncio.Runner) -> None:
    async def test() -> None:
        s = storage
        channel = await make_channel(s)
        main = await make_destination(s, channel)
        good = event(channel, T0, main)
        orphan = dataclasses.replace(good, id="evt_orphan", channel_id=999_999)  # no such channel
        with pytest.raises(ConflictError):
            await s.ingest([good, orphan], [inbound(channel, "wamid.IN", T0)])
        assert await claim_all(s, T0) == []
        assert await s.event_body(good.id) is None
        assert await s.conversation(channel.id, USER, 10) == []
        await s.ingest([good], [])  # and the store is usable afterwards
        assert len(await claim_all(s, T0)) == 1

    runner.run(test())


STATUS_SEQUENCES: list[tuple[list[str], str]] = [
    (["sent"], "sent"),
    (["sent", "delivered", "read"], "read"),
    (["read", "delivered", "sent"], "read"),  # out of order: a late 'delivered' does not undo 'read'
    (["delivered", "sent"], "delivered"),
    (["sent", "failed"], "failed"),
    (["failed", "read"], "failed"),
    (["read", "failed"], "failed"),
]


@pytest.mark.parametrize(("sequence", "final"), STATUS_SEQUENCES, ids=["-".join(s) for s, _ in STATUS_SEQUENCES])
def test_message_status_only_moves_forward(
    storage: Storage, runner: asyncio.Runner, sequence: list[str], final: str
) -> None:
    async def test() -> None:
        s = storage
        channel = await make_channel(s)
        main = await make_destination(s, channel)
        await s.insert_outbound(QueuedMessage("wamid.OUT", channel.id, outgoing(), T0), T0 + LEASE)
        await s.insert_outbound(QueuedMessage("wamid.OTHER", channel.id, outgoing(), T0), T0 + LEASE)
        for i, status in enumerate(sequence):
            await s.ingest([event(channel, T0 + 1 + i, main, wamid="wamid.OUT", status=status)], [])
        entry = await s.conversation_message(channel.id, USER, "wamid.OUT")
        assert entry is not None and entry.status == final
        other = await s.conversation_message(channel.id, USER, "wamid.OTHER")
        assert other is not None and other.status == "accepted"
        assert len(await s.deliveries(channel.id, EVERYTHING, 100, None)) == len(sequence)

    runner.run(test())


def test_withdraw_event(storage: Storage, runner: asyncio.Runner) -> None:
    async def test() -> None:
        s = storage
        channel = await make_channel(s)
        main = await make_destination(s, channel)
        crm = await make_destination(s, channel, "crm", "multi")
        untouched, tried = event(channel, T0 + 5, main, crm, wait=True), event(channel, T0 + 1, main)
        await s.ingest([untouched, tried], [])
        (claimed,) = await s.claim_due(T0 + 1, 10, T0 + LEASE)
        assert claimed.event_id == tried.id
        await s.record_attempts([attempt(claimed.id, 500, T0 + 1, DeliveryState.PENDING, T0 + 5)], T0 + 2)
        assert await s.withdraw_event(untouched.id) is True
        assert await s.event_body(untouched.id) is None
        assert await s.deliveries(channel.id, DeliveryFilter(event_id=untouched.id), 10, None) == []
        assert await s.withdraw_event(tried.id) is False  # a receiver may have seen it
        assert await s.event_body(tried.id) == tried.body
        assert await s.withdraw_event("evt_unknown") is False
        assert await s.withdraw_event(untouched.id) is False

    runner.run(test())


# --- claiming ----------------------------------------------------------------------------------------


def test_claim_due_takes_only_due_deliveries_in_due_order(storage: Storage, runner: asyncio.Runner) -> None:
    async def test() -> None:
        s = storage
        channel = await make_channel(s)
        main = await make_destination(s, channel)
        events = [event(channel, T0 + offset, main) for offset in (5, 4, 3, 2, 1, 100)]
        await s.ingest(events, [])  # inserted latest-due first
        assert await s.next_due_at(T0) == T0 + 1
        assert await s.claim_due(T0, 10, T0 + LEASE) == []
        due = await s.claim_due(T0 + 10, 10, T0 + 1000)  # leased past the last one's due time
        assert [d.event_id for d in due] == [e.id for e in reversed(events[:5])]
        assert await s.next_due_at(T0 + 10) == T0 + 100
        (late,) = await s.claim_due(T0 + 100, 10, T0 + 160)
        assert late.event_id == events[5].id
        assert await s.next_due_at(T0 + 100) is None

    runner.run(test())


def test_claim_due_honours_the_limit(storage: Storage, runner: asyncio.Runner) -> None:
    async def test() -> None:
        s = storage
        channel = await make_channel(s)
        main = await make_destination(s, channel)
        events = [event(channel, T0 + i, main) for i in (4, 2, 0, 3, 1)]
        await s.ingest(events, [])
        batches = [await s.claim_due(T0 + 10, 2, T0 + LEASE) for _ in range(4)]
        assert [len(b) for b in batches] == [2, 2, 1, 0]
        assert [d.event_id for b in batches for d in b] == [e.id for e in sorted(events, key=lambda e: e.created_at)]

    runner.run(test())


def test_a_leased_delivery_is_not_claimed_again_before_its_lease_expires(
    storage: Storage, runner: asyncio.Runner
) -> None:
    async def test() -> None:
        s = storage
        channel = await make_channel(s)
        main = await make_destination(s, channel)
        await s.ingest([event(channel, T0, main)], [])
        (due,) = await s.claim_due(T0, 10, lease_until=T0 + 60)
        assert await s.claim_due(T0 + 1, 10, T0 + 61) == []
        assert await s.claim_due(T0 + 60, 10, T0 + 120) == []  # still leased at the lease's last instant
        assert await s.next_due_at(T0 + 30) is None  # leased deliveries are not due
        (again,) = await s.claim_due(T0 + 60.5, 10, T0 + 120)
        assert (again.id, again.attempts) == (due.id, 0)
        assert await s.claim_due(T0 + 61, 10, T0 + 200) == []  # the new lease holds

    runner.run(test())


def test_release_leases_at_start_up(storage: Storage, runner: asyncio.Runner) -> None:
    """A process (node id) restarted after a crash frees at once what its predecessor held."""

    async def test() -> None:
        s = storage
        channel = await make_channel(s)
        main = await make_destination(s, channel)
        await s.ingest([event(channel, T0, main)], [])
        await s.insert_outbound(QueuedMessage("wamid.OUT", channel.id, outgoing(), T0), T0 + LEASE)
        (due,) = await s.claim_due(T0, 10, T0 + LEASE)
        await s.release_leases()
        assert [d.id for d in await s.claim_due(T0 + 1, 10, T0 + LEASE)] == [due.id]
        handed = await s.claim_undispatched(T0 + 1, 10, T0 + LEASE)
        assert [q.wamid for q in handed] == ["wamid.OUT"]

    runner.run(test())


def test_release_leases_keeps_other_nodes_leases(pg_url: str, runner: asyncio.Runner) -> None:
    """On a shared database only the node's own leases are freed; other nodes' expire."""
    from openwaba.storage.postgres import PostgresStorage

    async def test() -> None:
        mine, theirs = PostgresStorage(pg_url, node="host:1"), PostgresStorage(pg_url, node="host:2")
        await mine.open()
        await theirs.open()
        try:
            channel = await make_channel(theirs)
            main = await make_destination(theirs, channel)
            await theirs.ingest([event(channel, T0, main)], [])
            await theirs.insert_outbound(QueuedMessage("wamid.OUT", channel.id, outgoing(), T0), T0 + LEASE)
            (due,) = await theirs.claim_due(T0, 10, T0 + LEASE)
            await mine.release_leases()
            assert await mine.claim_due(T0 + 1, 10, T0 + LEASE) == []
            assert await mine.claim_undispatched(T0 + 1, 10, T0 + LEASE) == []
            assert [d.id for d in await mine.claim_due(T0 + LEASE + 1, 10, T0 + 2 * LEASE)] == [due.id]
        finally:
            await mine.close()
            await theirs.close()

    runner.run(test())


def test_a_node_id_runs_once(pg_url: str, runner: asyncio.Runner) -> None:
    from openwaba.domain.errors import ConfigError
    from openwaba.storage.postgres import PostgresStorage

    async def test() -> None:
        first = PostgresStorage(pg_url, node="host:8080")
        await first.open()
        try:
            with pytest.raises(ConfigError, match="in use"):
                await PostgresStorage(pg_url, node="host:8080").open()
        finally:
            await first.close()
        second = PostgresStorage(pg_url, node="host:8080")  # free again once the first has stopped
        await second.open()
        await second.close()

    runner.run(test())


def test_renew_leases(storage: Storage, runner: asyncio.Runner) -> None:
    async def test() -> None:
        s = storage
        channel = await make_channel(s)
        main = await make_destination(s, channel)
        await s.ingest([event(channel, T0, main), event(channel, T0, main), event(channel, T0 + 500, main)], [])
        claimed = await s.claim_due(T0, 10, T0 + LEASE)
        assert len(claimed) == 2
        (kept, finished) = claimed
        await s.record_attempts([attempt(finished.id, 200, T0 + 1, DeliveryState.DELIVERED)], T0 + 1)
        (unclaimed,) = [v.id for v in (await views(s, channel)).values() if v.id not in (kept.id, finished.id)]
        await s.renew_leases([kept.id, finished.id, unclaimed], T0 + 2 * LEASE)
        await s.renew_leases([], T0 + 3 * LEASE)
        assert await s.claim_due(T0 + LEASE + 1, 10, T0 + 1000) == []  # the renewed lease holds
        (again,) = await s.claim_due(T0 + 2 * LEASE + 1, 10, T0 + 1000)
        assert again.id == kept.id
        # renewing took no lease on a delivery nobody claimed, and revived no finished one
        (later,) = await s.claim_due(T0 + 500, 10, T0 + 1000)
        assert later.id == unclaimed
        assert (await views(s, channel))[finished.id].state == "delivered"

    runner.run(test())


def test_a_fifo_destination_gets_one_conversation_event_at_a_time(storage: Storage, runner: asyncio.Runner) -> None:
    async def test() -> None:
        s = storage
        channel = await make_channel(s)
        fifo = await make_destination(s, channel, "main", fifo=True)
        free = await make_destination(s, channel, "crm", "multi")
        a1, a2, a3 = (event(channel, T0 + i, fifo, free) for i in range(3))
        b1 = event(channel, T0 + 1.5, fifo, user=OTHER_USER)
        await s.ingest([a1, a2, a3, b1], [])

        def at(d: DueDelivery) -> tuple[str, str]:
            return (d.event_id, d.url)

        first = await claim_all(s, T0 + 10)
        # the FIFO destination: the oldest of each conversation; the other destination: everything
        assert sorted(map(at, first)) == sorted(
            [(a1.id, fifo.url), (b1.id, fifo.url), (a1.id, free.url), (a2.id, free.url), (a3.id, free.url)]
        )
        assert await claim_all(s, T0 + 11) == []
        fifo_a1 = next(d for d in first if at(d) == (a1.id, fifo.url))
        # a retry keeps the conversation's next event waiting
        await s.record_attempts([attempt(fifo_a1.id, 500, T0 + 11, DeliveryState.PENDING, T0 + 20)], T0 + 11)
        assert await s.claim_due(T0 + 15, 10, T0 + 15 + LEASE) == []
        (retry,) = await s.claim_due(T0 + 20, 10, T0 + 20 + LEASE)
        assert retry.id == fifo_a1.id
        # delivered: the next one of that conversation is due
        await s.record_attempts([attempt(retry.id, 200, T0 + 20, DeliveryState.DELIVERED)], T0 + 21)
        (second,) = await claim_all(s, T0 + 21)
        assert at(second) == (a2.id, fifo.url)
        # dead also lets the conversation go on
        await s.record_attempts([attempt(second.id, 400, T0 + 21, DeliveryState.DEAD)], T0 + 22)
        (third,) = await claim_all(s, T0 + 22)
        assert at(third) == (a3.id, fifo.url)

    runner.run(test())


def test_a_retry_horizon_that_passed_dead_letters_without_an_attempt(storage: Storage, runner: asyncio.Runner) -> None:
    async def test() -> None:
        s = storage
        channel = await make_channel(s)
        main = await make_destination(s, channel)
        crm = await make_destination(s, channel, "crm", "multi")
        overdue = event(channel, T0, main, crm, wait=True, deadline=T0 + 10)
        just_late = event(channel, T0, main, deadline=T0 + 19.5)  # within a second of its horizon: still on time
        fine = event(channel, T0, main, deadline=T0 + 100)
        await s.ingest([overdue, just_late, fine], [])
        due = await claim_all(s, T0 + 20)
        assert sorted(d.event_id for d in due) == sorted([just_late.id, fine.id])
        listed = await s.deliveries(channel.id, DeliveryFilter(event_id=overdue.id), 10, None)
        assert {(v.destination_name, v.state, v.attempts) for v in listed} == {("main", "dead", 0),
                                                                              ("crm", "dead", 0)}
        main_view = next(v for v in listed if v.destination_name == "main")
        assert main_view.last_error is not None and "retry horizon" in main_view.last_error
        assert await s.attempts(main_view.id) == []
        # a delivery in flight is not expired under its worker's feet
        await s.ingest([event(channel, T0 + 30, main, deadline=T0 + 31)], [])
        (leased,) = await s.claim_due(T0 + 30, 10, T0 + 100)
        assert await s.claim_due(T0 + 50, 10, T0 + 110) == []
        (view,) = await s.deliveries(channel.id, DeliveryFilter(delivery_id=leased.id), 10, None)
        assert view.state == "pending"

    runner.run(test())


# --- attempts ---------------------------------------------------------------------------------------


def test_record_attempts_moves_deliveries_on(storage: Storage, runner: asyncio.Runner) -> None:
    async def test() -> None:
        s = storage
        channel = await make_channel(s)
        main = await make_destination(s, channel)
        a, b, c = (event(channel, T0, main) for _ in range(3))
        await s.ingest([a, b, c], [])
        claimed = {d.event_id: d.id for d in await claim_all(s, T0)}
        await s.record_attempts(
            [
                attempt(claimed[a.id], 500, T0, DeliveryState.PENDING, T0 + 5),
                attempt(claimed[b.id], 200, T0, DeliveryState.DELIVERED),
                attempt(claimed[c.id], None, T0, DeliveryState.DEAD),
            ],
            T0 + 1,
        )
        assert await s.next_due_at(T0 + 1) == T0 + 5  # the failed one: lease cleared, due at its next attempt
        assert await s.claim_due(T0 + 4, 10, T0 + LEASE) == []
        (retry,) = await s.claim_due(T0 + 5, 10, T0 + 65)
        assert (retry.event_id, retry.attempts) == (a.id, 1)
        # The headers an attempt sent are kept as they were (the delivery log shows them).
        sent = {"webhook-id": a.id, "X-Hub-Signature-256": "sha256=ab", "Authorization": "Basic ✓"}
        retried = dataclasses.replace(outcome(retry.id, 200, T0 + 5), headers=sent)
        await s.record_attempts([AttemptRecord(retried, DeliveryState.DELIVERED, None)], T0 + 6)
        assert await claim_all(s, T0 + 1000) == []
        assert await s.next_due_at(T0 + 1000) is None
        listed = await views(s, channel)
        summary = {i: (v.state, v.attempts, v.next_attempt_at, v.last_status, v.last_error) for i, v in listed.items()}
        assert summary == {
            claimed[a.id]: ("delivered", 2, None, 200, None),
            claimed[b.id]: ("delivered", 1, None, 200, None),
            claimed[c.id]: ("dead", 1, None, None, "HTTP None"),
        }
        assert await s.attempts(claimed[a.id]) == [
            AttemptView(T0, 12.5, 500, "HTTP 500", "ok"),
            AttemptView(T0 + 5, 12.5, 200, None, "ok", sent),
        ]
        assert await s.attempts(claimed[c.id]) == [AttemptView(T0, 12.5, None, "HTTP None", "ok")]
        assert await s.attempts(999_999) == []

    runner.run(test())


def test_held_deliveries_follow_their_primary(storage: Storage, runner: asyncio.Runner) -> None:
    async def test() -> None:
        s = storage
        channel = await make_channel(s)
        main = await make_destination(s, channel)
        crm = await make_destination(s, channel, "crm", "multi")
        ok, failing = event(channel, T0, main, crm, wait=True), event(channel, T0, main, crm, wait=True)
        retried = event(channel, T0, main, crm, wait=True)
        await s.ingest([ok, failing, retried], [])
        assert {v.state for v in (await views(s, channel)).values() if v.destination_name == "crm"} == {"held"}
        claimed = await claim_all(s, T0 + 10)
        assert {d.url for d in claimed} == {main.url}  # extras wait for the main webhook
        primary = {d.event_id: d.id for d in claimed}
        await s.record_attempts(
            [
                attempt(primary[ok.id], 200, T0 + 10, DeliveryState.DELIVERED),
                attempt(primary[failing.id], 503, T0 + 10, DeliveryState.DEAD),
                attempt(primary[retried.id], 503, T0 + 10, DeliveryState.PENDING, T0 + 100),
            ],
            T0 + 11,
        )
        assert await s.next_due_at(T0 + 11) == T0 + 11  # released: due at `now` of record_attempts
        (released,) = await claim_all(s, T0 + 11)
        assert (released.event_id, released.url) == (ok.id, crm.url)
        assert await claim_all(s, T0 + 12) == []
        crm_states = {v.event_id: v.state for v in (await views(s, channel)).values() if v.destination_name == "crm"}
        assert crm_states == {ok.id: "pending", failing.id: "dead", retried.id: "held"}

    runner.run(test())


def test_independent_extras_are_due_at_once(storage: Storage, runner: asyncio.Runner) -> None:
    async def test() -> None:
        s = storage
        channel = await make_channel(s)
        main = await make_destination(s, channel)
        crm = await make_destination(s, channel, "crm", "multi")
        await s.ingest([event(channel, T0, main, crm, wait=False), event(channel, T0, crm)], [])
        assert sorted(d.url for d in await claim_all(s, T0)) == [crm.url, crm.url, main.url]

    runner.run(test())


def test_a_410_disables_the_destination(storage: Storage, runner: asyncio.Runner) -> None:
    async def test() -> None:
        s = storage
        channel = await make_channel(s)
        main = await make_destination(s, channel)
        crm = await make_destination(s, channel, "crm", "multi")
        first, second = event(channel, T0, main, crm, wait=True), event(channel, T0 + 1, main, crm, wait=True)
        await s.ingest([first, second], [])
        (gone,) = await s.claim_due(T0 + 1, 1, T0 + LEASE)  # the first event's main delivery
        await s.record_attempts(
            [AttemptRecord(outcome(gone.id, 410, T0 + 1), DeliveryState.DEAD, None, main.id, disable_destination=True)],
            T0 + 2,
        )
        listed = (await views(s, channel)).values()
        assert sorted((v.event_id == first.id, v.destination_name, v.state) for v in listed) == sorted(
            [(True, "main", "dead"), (True, "crm", "dead"), (False, "main", "dead"), (False, "crm", "dead")]
        )
        other = next(v for v in listed if v.destination_name == "main" and v.event_id == second.id)
        assert other.last_error is not None and "410" in other.last_error and other.attempts == 0
        ((at, kind, detail),) = await s.notices(channel.id, 10)
        assert (at, kind) == (T0 + 2, "destination_disabled")
        assert main.url in detail and "410" in detail
        assert await claim_all(s, T0 + 5) == []
        # a disabled destination gets no new deliveries until it is changed again
        third = event(channel, T0 + 3, main)
        await s.ingest([third], [])
        assert await s.deliveries(channel.id, DeliveryFilter(event_id=third.id), 10, None) == []
        assert await s.update_destination(scope(channel), "main", "main", "https://hooks.example/fixed", None)
        fourth = event(channel, T0 + 4, main)
        await s.ingest([fourth], [])
        (due,) = await claim_all(s, T0 + 5)
        assert (due.event_id, due.url) == (fourth.id, "https://hooks.example/fixed")

    runner.run(test())


def test_notices_are_listed_newest_first(storage: Storage, runner: asyncio.Runner) -> None:
    async def test() -> None:
        s = storage
        channel = await make_channel(s)
        other = await make_channel(s, "15550002222", "106540352242000")
        for i, c in enumerate((channel, channel, other, channel)):
            dest = await make_destination(s, c, f"d{i}", "multi")
            await s.ingest([event(c, T0 + i, dest)], [])
            (due,) = await claim_all(s, T0 + i)
            record = AttemptRecord(outcome(due.id, 410, T0 + i), DeliveryState.DEAD, None, dest.id, True)
            await s.record_attempts([record], T0 + i)
        assert [at for at, _, _ in await s.notices(channel.id, 10)] == [T0 + 3, T0 + 1, T0]
        assert [at for at, _, _ in await s.notices(channel.id, 2)] == [T0 + 3, T0 + 1]
        assert [at for at, _, _ in await s.notices(other.id, 10)] == [T0 + 2]

    runner.run(test())


def test_an_attempt_in_flight_does_not_revive_a_removed_destination(storage: Storage, runner: asyncio.Runner) -> None:
    async def test() -> None:
        s = storage
        channel = await make_channel(s)
        main = await make_destination(s, channel)
        await s.ingest([event(channel, T0, main)], [])
        (due,) = await claim_all(s, T0)
        assert await s.remove_destination(scope(channel), "main", "main")
        await s.record_attempts([attempt(due.id, 503, T0, DeliveryState.PENDING, T0 + 5)], T0 + 1)
        assert await claim_all(s, T0 + 5) == []
        assert await s.next_due_at(T0 + 5) is None
        assert list((await states(s, channel)).values()) == ["dead"]

    runner.run(test())


# --- pausing ----------------------------------------------------------------------------------------


def test_defer_and_undefer(storage: Storage, runner: asyncio.Runner) -> None:
    async def test() -> None:
        s = storage
        channel = await make_channel(s)
        main = await make_destination(s, channel)
        crm = await make_destination(s, channel, "crm", "multi")
        await s.ingest([event(channel, T0, main), event(channel, T0, main), event(channel, T0, crm)], [])
        claimed = await claim_all(s, T0)
        paused = [d.id for d in claimed if d.destination_id == main.id]
        (crm_delivery,) = [d.id for d in claimed if d.destination_id == crm.id]
        await s.defer(paused, T0 + 100)  # the breaker postponed main's deliveries
        # crm's receiver asked to come back later (Retry-After): an attempt, not a pause
        await s.record_attempts([attempt(crm_delivery, 429, T0, DeliveryState.PENDING, T0 + 200)], T0 + 1)
        assert await s.next_due_at(T0 + 1) == T0 + 100
        assert await claim_all(s, T0 + 50) == []
        listed = await views(s, channel)
        assert {listed[i].attempts for i in paused} == {0}  # deferring is no attempt
        await s.undefer(main.id, T0 + 50)
        assert sorted(d.id for d in await claim_all(s, T0 + 50)) == sorted(paused)
        await s.undefer(crm.id, T0 + 60)  # only what was deferred is brought forward
        assert await s.next_due_at(T0 + 60) == T0 + 200

    runner.run(test())


def test_a_delivery_deferred_past_its_horizon_dies_without_an_attempt(storage: Storage, runner: asyncio.Runner) -> None:
    async def test() -> None:
        s = storage
        channel = await make_channel(s)
        main = await make_destination(s, channel)
        await s.ingest([event(channel, T0, main, deadline=T0 + 30)], [])
        (due,) = await claim_all(s, T0)
        await s.defer([due.id], T0 + 100)
        assert await claim_all(s, T0 + 100) == []
        (view,) = (await views(s, channel)).values()
        assert (view.state, view.attempts) == ("dead", 0)

    runner.run(test())


# --- the delivery log ---------------------------------------------------------------------------------


@pytest.fixture
def log_channel(storage: Storage, runner: asyncio.Runner) -> tuple[Channel, list[NewEvent]]:
    """Six events to main (and the first three to crm too) at T0..T0+5; event 0 delivered, 1 dead."""

    async def setup() -> tuple[Channel, list[NewEvent]]:
        s = storage
        channel = await make_channel(s)
        main = await make_destination(s, channel)
        crm = await make_destination(s, channel, "crm", "multi")
        events = [event(channel, T0 + i, *((main, crm) if i < 3 else (main,))) for i in range(6)]
        for e in events:  # one by one: delivery ids grow with time
            await s.ingest([e], [])
        (d0, d1) = [d for d in await s.claim_due(T0 + 1, 10, T0 + LEASE) if d.destination_id == main.id]
        await s.record_attempts(
            [attempt(d0.id, 200, T0 + 1, DeliveryState.DELIVERED), attempt(d1.id, 500, T0 + 1, DeliveryState.DEAD)],
            T0 + 2,
        )
        other = await make_channel(s, "15550002222", "106540352242000")  # another number's log stays apart
        other_dest = await make_destination(s, other)
        await s.ingest([event(other, T0, other_dest)], [])
        return channel, events

    return runner.run(setup())


def _log_filters(events: list[NewEvent]) -> dict[str, tuple[DeliveryFilter, list[tuple[int, str]]]]:
    """filter -> expected (event number, destination name), newest first."""
    everything = [(5, "main"), (4, "main"), (3, "main"), (2, "crm"), (2, "main"), (1, "crm"), (1, "main"),
                  (0, "crm"), (0, "main")]
    return {
        "everything": (EVERYTHING, everything),
        "state": (DeliveryFilter(state="dead"), [(1, "main")]),
        "pending crm": (DeliveryFilter(state="pending", destination="crm"), [(2, "crm"), (1, "crm"), (0, "crm")]),
        "event": (DeliveryFilter(event_id=events[2].id), [(2, "crm"), (2, "main")]),
        "since": (DeliveryFilter(since=T0 + 4), [(5, "main"), (4, "main")]),
        "until": (DeliveryFilter(until=T0 + 1), [(0, "crm"), (0, "main")]),
        "window": (DeliveryFilter(destination="main", since=T0 + 1, until=T0 + 3), [(2, "main"), (1, "main")]),
        "nothing": (DeliveryFilter(state="held"), []),
    }


@pytest.mark.parametrize("case", ["everything", "state", "pending crm", "event", "since", "until", "window", "nothing"])
def test_the_delivery_log_filters(
    storage: Storage, runner: asyncio.Runner, log_channel: tuple[Channel, list[NewEvent]], case: str
) -> None:
    channel, events = log_channel
    where, expected = _log_filters(events)[case]
    number = {e.id: i for i, e in enumerate(events)}

    async def test() -> None:
        listed = await storage.deliveries(channel.id, where, 100, None)
        assert [(number[v.event_id], v.destination_name) for v in listed] == expected
        assert [v.id for v in listed] == sorted((v.id for v in listed), reverse=True)  # newest first

    runner.run(test())


def test_the_delivery_log_pages_and_looks_up_one(
    storage: Storage, runner: asyncio.Runner, log_channel: tuple[Channel, list[NewEvent]]
) -> None:
    channel, events = log_channel

    async def test() -> None:
        s = storage
        everything = await s.deliveries(channel.id, EVERYTHING, 100, None)
        pages: list[list[DeliveryView]] = []
        before: int | None = None
        while page := await s.deliveries(channel.id, EVERYTHING, 4, before):
            pages.append(page)
            before = page[-1].id
        assert [len(p) for p in pages] == [4, 4, 1]
        assert [v for p in pages for v in p] == everything
        one = everything[3]
        assert await s.deliveries(channel.id, DeliveryFilter(delivery_id=one.id), 10, None) == [one]
        assert await s.deliveries(channel.id + 1000, EVERYTHING, 10, None) == []
        delivered = next(v for v in everything if v.state == "delivered")
        assert (delivered.event_id, delivered.event_kind, delivered.wamid, delivered.destination_kind,
                delivered.url, delivered.attempts, delivered.last_status, delivered.created_at,
                delivered.deadline, delivered.injected) == (
            events[0].id, "message", None, "main", "https://hooks.example/main", 1, 200, T0, T0 + 86_400, None)

    runner.run(test())


def test_replay(storage: Storage, runner: asyncio.Runner, log_channel: tuple[Channel, list[NewEvent]]) -> None:
    channel, events = log_channel

    async def test() -> None:
        s = storage
        # pending deliveries are not replayed; the delivered and the dead one are
        assert await s.replay(channel.id, DeliveryFilter(state="pending"), T0 + 10, T0 + 1000) == 0
        assert await s.replay(channel.id, DeliveryFilter(destination="main", until=T0 + 2), T0 + 10, T0 + 1000) == 2
        replayed = await s.deliveries(channel.id, DeliveryFilter(destination="main", until=T0 + 2), 10, None)
        assert {(v.state, v.next_attempt_at, v.deadline, v.attempts) for v in replayed} == {
            ("pending", T0 + 10, T0 + 1000, 1)  # the log keeps counting attempts
        }
        due = [d for d in await claim_all(s, T0 + 10)
               if d.event_id in (events[0].id, events[1].id) and d.url == "https://hooks.example/main"]
        assert sorted((d.attempts, d.deadline) for d in due) == [(0, T0 + 1000), (0, T0 + 1000)]  # schedule restarts
        assert await s.replay(channel.id, EVERYTHING, T0 + 20, T0 + 2000) == 0  # nothing but pending ones

    runner.run(test())


def test_replay_skips_removed_destinations(storage: Storage, runner: asyncio.Runner) -> None:
    async def test() -> None:
        s = storage
        channel = await make_channel(s)
        main = await make_destination(s, channel)
        await s.ingest([event(channel, T0, main)], [])
        assert await s.remove_destination(scope(channel), "main", "main")
        assert await s.replay(channel.id, EVERYTHING, T0 + 10, T0 + 1000) == 0
        assert await claim_all(s, T0 + 10) == []

    runner.run(test())


def test_queue_stats(storage: Storage, runner: asyncio.Runner) -> None:
    async def test() -> None:
        s = storage
        channel = await make_channel(s)
        main = await make_destination(s, channel)
        crm = await make_destination(s, channel, "crm", "multi")
        await s.ingest([event(channel, T0 + 3, main), event(channel, T0 + 1, main, crm, wait=True)], [])
        assert await s.queue_stats() == (2, T0 + 1)  # held deliveries are not pending yet
        due = await claim_all(s, T0 + 5)
        assert await s.queue_stats() == (2, T0 + 1)  # claimed ones are still pending
        await s.record_attempts([attempt(d.id, 200, T0 + 5, DeliveryState.DELIVERED) for d in due], T0 + 6)
        assert await s.queue_stats() == (1, T0 + 1)  # the released one
        (released,) = await claim_all(s, T0 + 6)
        await s.record_attempts([attempt(released.id, 200, T0 + 6, DeliveryState.DELIVERED)], T0 + 7)
        assert await s.queue_stats() == (0, None)

    runner.run(test())


# --- rate limits ---------------------------------------------------------------------------------------


def test_admit_is_a_steady_rate_with_a_burst(storage: Storage, runner: asyncio.Runner) -> None:
    rate = Rate(1.0, 3)  # one a second, three back to back

    async def test() -> None:
        s = storage
        bucket = [("pair:1:4915112345678", rate)]
        assert [await s.admit(bucket, T0) for _ in range(3)] == [None, None, None]
        assert await s.admit(bucket, T0) == (0, T0 + 3)  # refused: the index and the bucket's due time
        assert await s.admit(bucket, T0 + 0.5) == (0, T0 + 3)  # refusals do not count
        assert await s.admit(bucket, T0 + 1) is None  # one more a second later
        assert await s.admit(bucket, T0 + 1) == (0, T0 + 4)
        assert await s.admit([("pair:1:other", rate)], T0 + 1) is None  # buckets are independent
        assert [await s.admit(bucket, T0 + 100) for _ in range(3)] == [None, None, None]  # rested: a full burst

    runner.run(test())


def test_admit_counts_against_every_bucket_or_none(storage: Storage, runner: asyncio.Runner) -> None:
    number, pair = ("number:1", Rate(1.0, 10)), ("pair:1:4915112345678", Rate(6.0, 1))

    async def test() -> None:
        s = storage
        assert await s.admit([number, pair], T0) is None
        assert await s.admit([number, pair], T0) == (1, T0 + 6)  # the pair is over its limit ...
        # ... and the number's bucket was not charged for the refused message: 9 more fit, not 8
        assert [await s.admit([number], T0) for _ in range(9)] == [None] * 9
        assert await s.admit([number], T0) == (0, T0 + 10)
        assert await s.admit([number, pair], T0) == (0, T0 + 10)  # the first bucket over its limit
        assert await s.admit([], T0) is None

    runner.run(test())


# --- conversations ------------------------------------------------------------------------------------


def test_conversations(storage: Storage, runner: asyncio.Runner) -> None:
    async def test() -> None:
        s = storage
        channel = await make_channel(s)
        other = await make_channel(s, "15550002222", "106540352242000")
        assert await s.last_inbound_at(channel.id, USER) is None
        await s.ingest([], [inbound(channel, "wamid.IN1", T0 + 1, "one"), inbound(channel, "wamid.IN2", T0 + 3, "two"),
                            inbound(channel, "wamid.ELSE", T0 + 4, "else", user=OTHER_USER),
                            inbound(other, "wamid.OTHERNUM", T0 + 5)])
        await s.insert_outbound(QueuedMessage("wamid.OUT", channel.id, outgoing(body="reply"), T0 + 2), T0 + LEASE)
        await s.insert_outbound(QueuedMessage("wamid.LATE", channel.id, outgoing(body="late"), T0 + 9), T0 + LEASE)
        assert await s.last_inbound_at(channel.id, USER) == T0 + 3  # outbound messages do not count
        assert await s.last_inbound_at(other.id, USER) == T0 + 5
        assert await s.last_inbound_at(channel.id, "49000") is None
        entries = await s.conversation(channel.id, USER, 10)
        assert [(e.wamid, e.direction, e.created_at) for e in entries] == [
            ("wamid.LATE", "out", T0 + 9),
            ("wamid.IN2", "in", T0 + 3),
            ("wamid.OUT", "out", T0 + 2),
            ("wamid.IN1", "in", T0 + 1),
        ]
        assert [e.wamid for e in await s.conversation(channel.id, USER, 2)] == ["wamid.LATE", "wamid.IN2"]
        assert entries[2].content == {"body": "reply", "preview_url": False}
        assert await s.conversation_message(channel.id, USER, "wamid.IN2") == entries[1]
        assert await s.conversation_message(channel.id, OTHER_USER, "wamid.IN2") is None  # another user's
        assert await s.conversation_message(other.id, USER, "wamid.IN2") is None  # another number's
        assert await s.conversation(other.id, OTHER_USER, 10) == []

    runner.run(test())


def test_mark_read_reads_the_message_and_the_earlier_ones(storage: Storage, runner: asyncio.Runner) -> None:
    async def test() -> None:
        s = storage
        channel = await make_channel(s)
        other = await make_channel(s, "15550002222", "106540352242000")
        await s.ingest([], [inbound(channel, f"wamid.IN{i}", T0 + i) for i in range(1, 4)]
                       + [inbound(channel, "wamid.ELSE", T0, user=OTHER_USER)])
        await s.insert_outbound(QueuedMessage("wamid.OUT", channel.id, outgoing(), T0 + 1.5), T0 + LEASE)
        assert await s.mark_read(channel.id, "wamid.IN2") == USER
        status = {e.wamid: e.status for e in await s.conversation(channel.id, USER, 10)}
        assert status == {"wamid.IN1": "read", "wamid.IN2": "read", "wamid.IN3": "received", "wamid.OUT": "accepted"}
        (else_entry,) = await s.conversation(channel.id, OTHER_USER, 10)
        assert else_entry.status == "received"  # another user's messages stay unread
        assert await s.mark_read(channel.id, "wamid.IN2") == USER  # again: harmless
        assert await s.mark_read(channel.id, "wamid.OUT") is None  # not a message the user sent
        assert await s.mark_read(other.id, "wamid.IN3") is None  # not sent to this number
        assert await s.mark_read(channel.id, "wamid.unknown") is None

    runner.run(test())


def test_the_conversation_shows_statuses_once_they_have_happened(storage: Storage, runner: asyncio.Runner) -> None:
    async def test() -> None:
        s = storage
        channel = await make_channel(s)
        await s.insert_outbound(QueuedMessage("wamid.OUT", channel.id, outgoing(), T0), T0 + LEASE)
        # The sandbox stores every status at once, each dated when it happens; one comes out of order.
        await s.ingest([event(channel, T0 + t, wamid="wamid.OUT", status=st)
                        for t, st in ((1, "sent"), (20, "read"), (10, "delivered"))], [])

        def as_of(now: float | None) -> Awaitable[list[str]]:
            async def statuses() -> list[str]:
                return [e.status for e in await s.conversation(channel.id, USER, 10, now)]
            return statuses()

        assert [await as_of(T0 + t) for t in (0.5, 1, 15, 20)] == [["accepted"], ["sent"], ["delivered"], ["read"]]
        assert await as_of(None) == ["read"]  # without a time: the latest known

    runner.run(test())


# --- media --------------------------------------------------------------------------------------------


def test_media_rows_share_their_bytes(storage: Storage, runner: asyncio.Runner) -> None:
    async def test() -> None:
        s = storage
        channel = await make_channel(s)
        other = await make_channel(s, "15550002222", "106540352242000")
        sha = "ab" * 32
        first = MediaFile("100001", channel.id, sha, "image/jpeg", 12_345, "cat ✓.jpg", T0)
        second = MediaFile("100002", channel.id, sha, "image/jpeg", 12_345, None, T0 + 1)
        elsewhere = MediaFile("100003", other.id, "cd" * 32, "audio/ogg", 7, None, T0 + 2)
        for m in (first, second, elsewhere):
            await s.insert_media(m)
        with pytest.raises(ConflictError):
            await s.insert_media(dataclasses.replace(first, sha256="ef" * 32))
        assert await s.media(channel.id, "100001") == first
        assert await s.media(channel.id, "100002") == second
        assert await s.media(channel.id, "100003") is None  # another number's
        assert await s.media(other.id, "100003") == elsewhere
        assert await s.delete_media(other.id, "100001") == (False, None)
        assert await s.delete_media(channel.id, "100001") == (True, None)  # the bytes are still used
        assert await s.media(channel.id, "100001") is None
        assert await s.delete_media(channel.id, "100001") == (False, None)
        assert await s.delete_media(channel.id, "100002") == (True, sha)  # the last user: delete the bytes
        assert await s.delete_media(other.id, "100003") == (True, "cd" * 32)

    runner.run(test())


# --- templates ------------------------------------------------------------------------------------------


def test_templates(storage: Storage, runner: asyncio.Runner) -> None:
    async def test() -> None:
        s = storage
        await s.create_waba(WABA, T0)
        await s.create_waba(OTHER_WABA, T0)
        welcome_en, welcome_de = template("welcome"), template("welcome", "de")
        order = template("order", decision="REJECTED")
        for t in (welcome_en, order, welcome_de):
            await s.insert_template(WABA.id, t)
        await s.insert_template(OTHER_WABA.id, dataclasses.replace(welcome_en, id="tpl_other"))  # another WABA
        with pytest.raises(ConflictError):  # the same name and language again
            await s.insert_template(WABA.id, dataclasses.replace(welcome_en, id="tpl_again"))
        assert await s.templates(WABA.id) == [order, welcome_de, welcome_en]  # by name, then language
        assert await s.template(WABA.id, "welcome", "de") == welcome_de
        assert await s.template(WABA.id, "welcome", "fr") is None
        assert await s.template(OTHER_WABA.id, "order", "en_US") is None
        deleted = await s.delete_templates(WABA.id, "welcome")
        assert sorted(deleted, key=lambda t: t.language) == [welcome_de, welcome_en]
        assert await s.delete_templates(WABA.id, "welcome") == []
        assert await s.templates(WABA.id) == [order]
        assert [t.id for t in await s.templates(OTHER_WABA.id)] == ["tpl_other"]

    runner.run(test())


# --- several nodes on one database ---------------------------------------------------------------------
# Several gateway processes share a PostgreSQL database, or the workers of one `openwaba serve --workers N` share
# a SQLite file; here each node is a node with connections (and, for SQLite, a writer thread) of its own.


@contextlib.asynccontextmanager
async def other_nodes(factory: StorageFactory, count: int) -> AsyncIterator[list[Storage]]:
    opened: list[Storage] = []
    try:
        for _ in range(count):
            node = factory()
            await node.open()
            opened.append(node)
        yield opened
    finally:
        for node in opened:
            await node.close()



async def all_at_once(calls: Sequence[Callable[[], Awaitable[T]]]) -> list[T]:
    """Start every call at the same moment (as far as one event loop can)."""
    start = asyncio.Event()

    async def run(call: Callable[[], Awaitable[T]]) -> T:
        await start.wait()
        return await call()

    tasks = [asyncio.ensure_future(run(call)) for call in calls]
    start.set()
    return list(await asyncio.gather(*tasks))


async def signalled(event: asyncio.Event, poke: Callable[[], Awaitable[object]] | None = None) -> None:
    """Wait (10 s at most) for `event`; with `poke`, repeat it until the event comes."""
    deadline = asyncio.get_running_loop().time() + 10.0
    while True:
        if poke is not None:
            await poke()
        remaining = deadline - asyncio.get_running_loop().time()
        try:
            await asyncio.wait_for(event.wait(), min(remaining, 0.25) if poke is not None else remaining)
            return
        except TimeoutError:
            if asyncio.get_running_loop().time() >= deadline:
                raise AssertionError("the other node was not told within 10 s") from None


def test_concurrent_claims_never_hand_out_a_delivery_twice(
    node: Storage, node_factory: StorageFactory, runner: asyncio.Runner
) -> None:
    total, per_claim = 300, 7

    async def test() -> None:
        channel = await make_channel(node)
        main = await make_destination(node, channel)
        crm = await make_destination(node, channel, "crm", "multi")
        await node.ingest([event(channel, T0 + i / 100, main, crm, user=str(i)) for i in range(total // 2)], [])

        async def drain(s: Storage) -> list[int]:
            got: list[int] = []
            while batch := await s.claim_due(T0 + 10, per_claim, T0 + 10_000):
                got.extend(d.id for d in batch)
            return got

        async with other_nodes(node_factory, 5) as others:
            results = await all_at_once([functools.partial(drain, s) for s in [node, *others]])
        claimed = [i for r in results for i in r]
        assert len(claimed) == len(set(claimed)), "a delivery was handed to two nodes"
        assert len(claimed) == total
        assert sum(1 for r in results if r) > 1, "only one node got anything: no concurrency was exercised"

    runner.run(test())


def test_fifo_order_holds_across_nodes(
    node: Storage, node_factory: StorageFactory, runner: asyncio.Runner
) -> None:
    """Nodes claim and deliver concurrently; a FIFO destination still sees each conversation in order,
    never two events of one conversation in flight at once."""
    conversations, per_conversation = 12, 5

    async def test() -> None:
        channel = await make_channel(node)
        fifo = await make_destination(node, channel, fifo=True)
        events = [event(channel, T0 + n + c / 100, fifo, user=f"user{c}")
                  for n in range(per_conversation) for c in range(conversations)]
        await node.ingest(events, [])
        position = {e.id: i for i, e in enumerate(events)}
        in_flight: set[str] = set()
        seen: dict[str, list[int]] = {}
        problems: list[str] = []
        done = 0

        async def work(s: Storage) -> None:
            nonlocal done
            while done < len(events):
                for d in await s.claim_due(T0 + 100, 3, T0 + 10_000):
                    if d.order_key in in_flight:
                        problems.append(f"two events of {d.order_key} in flight")
                    in_flight.add(d.order_key)
                    seen.setdefault(d.order_key, []).append(position[d.event_id])
                    await s.get_value("x")  # the attempt: a round trip in which others claim
                    in_flight.discard(d.order_key)  # before the outcome commits: no false alarms
                    await s.record_attempts([attempt(d.id, 200, T0 + 100, DeliveryState.DELIVERED)], T0 + 100)
                    done += 1

        async with other_nodes(node_factory, 3) as others:
            await asyncio.wait_for(all_at_once([functools.partial(work, s) for s in [node, *others]]), 60)
        assert problems == []
        assert len(seen) == conversations
        assert all(order == sorted(order) and len(order) == per_conversation for order in seen.values()), seen

    runner.run(test())


def test_concurrent_handover_claims_never_hand_out_a_message_twice(
    node: Storage, node_factory: StorageFactory, runner: asyncio.Runner
) -> None:
    total = 120

    async def test() -> None:
        channel = await make_channel(node)
        for i in range(total):  # accepted by nodes that died before handing them over
            await node.insert_outbound(QueuedMessage(f"wamid.{i:04d}", channel.id, outgoing(), T0 + i / 100), T0)

        async def drain(s: Storage) -> list[str]:
            got: list[str] = []
            while batch := await s.claim_undispatched(T0 + 10, 5, T0 + 10_000):
                got.extend(q.wamid for q in batch)
            return got

        async with other_nodes(node_factory, 4) as others:
            results = await all_at_once([functools.partial(drain, s) for s in [node, *others]])
        claimed = [w for r in results for w in r]
        assert len(claimed) == len(set(claimed)), "a message was handed to two nodes"
        assert sorted(claimed) == [f"wamid.{i:04d}" for i in range(total)]

    runner.run(test())


def test_rate_buckets_are_shared_by_every_node(
    node: Storage, node_factory: StorageFactory, runner: asyncio.Runner
) -> None:
    bucket = [("number:1", Rate(1.0, 10))]

    async def test() -> None:
        async with other_nodes(node_factory, 4) as others:
            nodes = [node, *others]
            calls = [functools.partial(s.admit, bucket, T0) for s in nodes for _ in range(8)]
            results = await all_at_once(calls)
            assert sum(1 for r in results if r is None) == 10  # exactly the burst, over all nodes together
            assert {r for r in results if r is not None} == {(0, T0 + 10)}
            assert await others[0].admit(bucket, T0 + 1) is None  # one more a second later, on any node
            assert await node.admit(bucket, T0 + 1) == (0, T0 + 11)

    runner.run(test())


def test_a_node_renews_only_its_own_leases(
    node: Storage, node_factory: StorageFactory, runner: asyncio.Runner
) -> None:

    async def test() -> None:
        channel = await make_channel(node)
        main = await make_destination(node, channel)
        await node.ingest([event(channel, T0, main)], [])
        async with other_nodes(node_factory, 1) as (other,):
            (mine,) = await node.claim_due(T0, 10, T0 + LEASE)
            assert await other.claim_due(T0 + 1, 10, T0 + LEASE) == []
            await other.renew_leases([mine.id], T0 + 1000)  # not its lease: nothing happens
            (taken_over,) = await other.claim_due(T0 + LEASE + 1, 10, T0 + 2 * LEASE)  # the first node died
            assert taken_over.id == mine.id
            await node.renew_leases([mine.id], T0 + 1000)  # the first node's lease is gone
            assert await node.claim_due(T0 + 2 * LEASE + 1, 10, T0 + 3 * LEASE) != []

    runner.run(test())


def test_nodes_share_the_meta_inbox_without_taking_a_post_twice(
    node: Storage, node_factory: StorageFactory, runner: asyncio.Runner
) -> None:

    async def test() -> None:
        for i in range(4):
            await node.insert_meta_inbox(f"post {i}".encode(), T0 + i)
        async with other_nodes(node_factory, 1) as (other,):
            async with node.meta_inbox(2) as mine:
                async with other.meta_inbox(10) as theirs:  # the held posts are skipped, not waited for
                    assert [p.body for p in theirs] == [b"post 2", b"post 3"]
                    for post in theirs:
                        post.done = True
                mine[0].done = True
            async with other.meta_inbox(10) as left:
                assert [p.body for p in left] == [b"post 1"]  # released undone: still there

    runner.run(test())


def test_a_named_lock_excludes_the_other_nodes(
    node: Storage, node_factory: StorageFactory, runner: asyncio.Runner
) -> None:

    async def test() -> None:
        order: list[str] = []
        async with other_nodes(node_factory, 1) as (other,):

            async def second() -> None:
                async with other.lock("seed"):
                    order.append("second node in")

            async with node.lock("seed"):
                waiting = asyncio.ensure_future(second())
                async with other.lock("another name"):  # other names are not held up
                    pass
                for _ in range(20):  # round trips in which the second node could (wrongly) get in
                    await node.get_value("x")
                order.append("first node out")
            await asyncio.wait_for(waiting, 10.0)
            assert order == ["first node out", "second node in"]
            async with node.lock("seed"):  # released by the second node too
                pass

    runner.run(test())


def test_other_nodes_are_told_of_due_work_and_configuration_changes(
    node: Storage, node_factory: StorageFactory, runner: asyncio.Runner
) -> None:

    async def test() -> None:
        due, config = asyncio.Event(), asyncio.Event()
        node.listen(due.set, config.set)
        channel = await make_channel(node)
        main = await make_destination(node, channel)
        async with other_nodes(node_factory, 1) as (other,):
            await signalled(config, lambda: other.set_value("warm-up", "1"))  # the listener is live now
            due.clear()
            config.clear()
            await other.ingest([event(channel, T0, main)], [])
            await signalled(due)
            config.clear()
            await other.set_destination(scope(channel), "multi", "crm", "https://hooks.example/crm", {})
            await signalled(config)
            config.clear()
            await other.set_channel_limits(channel.id, ChannelLimits(5.0, None))
            await signalled(config)
            # a delivered primary releases the deliveries held for it: they are due now
            (crm,) = [d for d in await other.destinations(scope(channel)) if d.name == "crm"]
            await other.ingest([event(channel, T0 + 1, main, crm, wait=True)], [])
            primaries = await other.claim_due(T0 + 1, 10, T0 + LEASE)
            due.clear()
            delivered = [attempt(d.id, 200, T0 + 1, DeliveryState.DELIVERED) for d in primaries]
            await other.record_attempts(delivered, T0 + 2)
            await signalled(due)

    runner.run(test())

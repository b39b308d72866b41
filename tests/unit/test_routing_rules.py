"""Routing rules: domain.routing.fan_out (which destinations an event gets, and
whether multi-webhook extras wait for the primary), and the routing cache of
services.webhooks.Webhooks over an in-memory storage."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from openwaba.domain.accounts import Channel, ChannelFormat, ChannelMode
from openwaba.domain.deliveries import Destination
from openwaba.domain.routing import FanOut, FanoutMode, WebhookSetup, fan_out
from openwaba.services.webhooks import WebhookConfigError, Webhooks

MAIN = Destination(1, "main", "main", "https://phone.example.com/hook", {})
WABA = Destination(2, "waba", "waba", "https://waba.example.com/hook", {})
WABA_ALL = Destination(2, "waba", "waba", "https://waba.example.com/hook", {}, override_all=True)
EXTRAS = (
    Destination(3, "multi", "A", "https://a.example.com/hook", {}),
    Destination(4, "multi", "a", "https://a2.example.com/hook", {}),
    Destination(5, "multi", "B", "https://b.example.com/hook", {}),
)
AFTER, INDEPENDENT = FanoutMode.AFTER_MAIN, FanoutMode.INDEPENDENT

# (id, setup, primary, extras, extras wait for the primary)
CASES: list[tuple[str, WebhookSetup, int | None, tuple[int, ...], bool]] = [
    ("nothing", WebhookSetup(), None, (), False),
    ("phone-only", WebhookSetup(main=MAIN), 1, (), False),
    ("waba-only", WebhookSetup(waba=WABA), 2, (), False),
    ("phone-beats-waba", WebhookSetup(main=MAIN, waba=WABA), 1, (), False),
    ("override-all-beats-phone", WebhookSetup(main=MAIN, waba=WABA_ALL, waba_override_all=True), 2, (), False),
    ("override-all-without-phone", WebhookSetup(waba=WABA_ALL, waba_override_all=True), 2, (), False),
    ("override-flag-without-waba", WebhookSetup(main=MAIN, waba_override_all=True), 1, (), False),
    ("multi-waits-for-phone", WebhookSetup(main=MAIN, multi_enabled=True, multi=EXTRAS), 1, (3, 4, 5), True),
    ("multi-waits-for-waba", WebhookSetup(waba=WABA, multi_enabled=True, multi=EXTRAS), 2, (3, 4, 5), True),
    ("multi-waits-for-override", WebhookSetup(main=MAIN, waba=WABA_ALL, waba_override_all=True, multi_enabled=True,
                                              multi=EXTRAS[:1]), 2, (3,), True),
    ("multi-without-primary-goes-at-once", WebhookSetup(multi_enabled=True, multi=EXTRAS), None, (3, 4, 5), False),
    ("multi-independent", WebhookSetup(main=MAIN, multi_enabled=True, multi=EXTRAS, fanout=INDEPENDENT),
     1, (3, 4, 5), False),
    ("multi-disabled-ignores-destinations", WebhookSetup(main=MAIN, multi_enabled=False, multi=EXTRAS), 1, (), False),
    ("multi-enabled-but-empty", WebhookSetup(main=MAIN, multi_enabled=True), 1, (), False),
]


@pytest.mark.parametrize(("setup", "primary", "extras", "wait"), [pytest.param(*c[1:], id=c[0]) for c in CASES])
def test_fan_out(setup: WebhookSetup, primary: int | None, extras: tuple[int, ...], wait: bool) -> None:
    result = fan_out(setup)
    assert result == FanOut(primary, extras, wait)
    destination_ids = ((result.primary,) if result.primary is not None else ()) + result.extras
    assert destination_ids == ((primary,) if primary is not None else ()) + extras
    assert len(set(destination_ids)) == len(destination_ids), "no destination twice"


def test_extras_keep_their_configured_order() -> None:
    reversed_extras = tuple(reversed(EXTRAS))
    assert fan_out(WebhookSetup(main=MAIN, multi_enabled=True, multi=reversed_extras)).extras == (5, 4, 3)


def test_the_default_fanout_is_after_main() -> None:
    assert WebhookSetup().fanout is FanoutMode.AFTER_MAIN
    assert FanoutMode("after_main") is AFTER and FanoutMode("independent") is INDEPENDENT


# --- Webhooks over an in-memory storage -----------------------------------------------------


class MemoryStorage:
    """The destination part of the Storage seam, in memory; `gate` can hold a read."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str, str], Destination] = {}
        self.flags: dict[int, tuple[bool, str]] = {}
        self.next_id = 1
        self.gate: asyncio.Event | None = None
        self.read_started = asyncio.Event()

    async def destinations(self, scope: str) -> list[Destination]:
        found = [d for (s, _, _), d in self.rows.items() if s == scope]  # read now ...
        if self.gate is not None:
            gate, self.gate = self.gate, None
            self.read_started.set()
            await gate.wait()  # ... answer later
        return found

    async def channel_webhook_flags(self, channel_id: int) -> tuple[bool, str]:
        return self.flags.get(channel_id, (False, "after_main"))

    async def set_channel_webhook_flags(self, channel_id: int, enabled: bool | None, fanout: str | None) -> None:
        old_enabled, old_fanout = await self.channel_webhook_flags(channel_id)
        self.flags[channel_id] = (old_enabled if enabled is None else enabled, fanout or old_fanout)

    async def set_destination(self, scope: str, kind: str, name: str, url: str, headers: dict[str, str],
                              override_all: bool = False, **_: Any) -> None:
        old = self.rows.get((scope, kind, name))
        ident = old.id if old else self.next_id
        self.next_id += old is None
        self.rows[(scope, kind, name)] = Destination(ident, kind, name, url, headers, override_all)

    async def remove_destination(self, scope: str, kind: str, name: str) -> bool:
        return self.rows.pop((scope, kind, name), None) is not None


def channel(ident: int = 1, fmt: ChannelFormat = ChannelFormat.CLOUD, waba: str = "100") -> Channel:
    return Channel(ident, waba, f"1555000{ident:04d}", f"90000{ident}", fmt, "sandbox", ChannelMode.SANDBOX)


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


def test_webhooks_route_by_the_rules() -> None:
    async def scenario() -> None:
        storage = MemoryStorage()
        hooks = Webhooks(storage)  # type: ignore[arg-type]
        one, two = channel(1), channel(2)
        assert (await hooks.fan_out(one)).primary is None
        await hooks.set_main(one, "http://127.0.0.1:9/one", {})
        await hooks.set_waba(one, "http://127.0.0.1:9/waba", {}, override_all=False)
        main_one = storage.rows[("channel:1", "main", "main")].id
        waba = storage.rows[("waba:100", "waba", "waba")].id
        assert (await hooks.fan_out(one)).primary == main_one
        assert (await hooks.fan_out(two)).primary == waba, "a number without a webhook uses its WABA's"
        await hooks.set_waba(two, "http://127.0.0.1:9/waba", {}, override_all=True)  # set by another number
        assert (await hooks.fan_out(one)).primary == waba, "a change made through another number applies"
        await hooks.set_waba(one, "", {}, override_all=False)
        assert (await hooks.fan_out(one)).primary == main_one
        assert (await hooks.fan_out(two)).primary is None

    run(scenario())


def test_on_premise_numbers_use_only_their_own_webhook() -> None:
    async def scenario() -> None:
        storage = MemoryStorage()
        hooks = Webhooks(storage)  # type: ignore[arg-type]
        cloud, legacy = channel(1), channel(2, ChannelFormat.ON_PREMISE)
        await hooks.set_waba(cloud, "http://127.0.0.1:9/waba", {}, override_all=True)
        await storage.set_destination("channel:2", "multi", "x", "http://127.0.0.1:9/x", {})
        storage.flags[2] = (True, "after_main")
        assert await hooks.fan_out(legacy) == FanOut()
        await hooks.set_main(legacy, "http://127.0.0.1:9/legacy", {})
        assert await hooks.fan_out(legacy) == FanOut(storage.rows[("channel:2", "main", "main")].id)
        for call in (hooks.get_waba(legacy), hooks.get_multi(legacy),
                     hooks.set_waba(legacy, "http://127.0.0.1:9/w", {}, override_all=False)):
            with pytest.raises(WebhookConfigError) as raised:
                await call
            assert raised.value.status == 400

    run(scenario())


def test_a_change_during_a_routing_lookup_is_not_lost() -> None:
    async def scenario() -> None:
        storage = MemoryStorage()
        hooks = Webhooks(storage)  # type: ignore[arg-type]
        number = channel(1)
        gate = storage.gate = asyncio.Event()
        lookup = asyncio.create_task(hooks.fan_out(number))  # an event being ingested ...
        await storage.read_started.wait()  # ... has read "no webhook" ...
        await hooks.set_main(number, "http://127.0.0.1:9/hook", {})  # ... when a webhook is set
        gate.set()
        assert (await lookup).primary is None  # that event was routed before the change: fine
        # Every later event must see the webhook.
        assert (await hooks.fan_out(number)).primary == storage.rows[("channel:1", "main", "main")].id

    run(scenario())

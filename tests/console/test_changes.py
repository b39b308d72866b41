"""`Changes` (the in-process "channel N changed" broadcast) and the console's event
stream built on it (`ChangeStream`, driven as an ASGI app with a fake client).

No test waits for time to pass: every wait is bounded by a timeout that only
matters when the code is wrong, except the keep-alive test, which sets the
keep-alive interval to a few milliseconds.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import msgspec

from openwaba.http.console import ChangeStream
from openwaba.services.changes import Changes

BOUND = 5.0  # seconds: only reached when the code under test is broken


def run(scenario: Callable[[], Awaitable[Any]]) -> Any:
    async def bounded() -> Any:
        return await asyncio.wait_for(scenario(), BOUND)

    return asyncio.run(bounded())


# --- Changes ------------------------------------------------------------------------------------


def test_a_subscriber_gets_its_channels_changes_in_order() -> None:
    async def scenario() -> list[Any]:
        changes = Changes()
        async with changes.subscribe(1) as subscription:
            changes.notify(1, "messages", "15551230001")
            changes.notify(1, "deliveries")
            changes.notify(1, "config")
            return await subscription.next_batch(1.0) or []

    assert run(scenario) == [
        {"what": "messages", "wa_id": "15551230001"},
        {"what": "deliveries", "wa_id": None},
        {"what": "config", "wa_id": None},
    ]


def test_another_channels_changes_never_reach_a_subscriber() -> None:
    async def scenario() -> tuple[list[Any] | None, list[Any] | None]:
        changes = Changes()
        async with changes.subscribe(1) as mine, changes.subscribe(2) as theirs:
            changes.notify(2, "messages", "15551230002")
            return await mine.next_batch(0.01), await theirs.next_batch(1.0)

    mine, theirs = run(scenario)
    assert mine == []
    assert theirs == [{"what": "messages", "wa_id": "15551230002"}]


def test_every_subscriber_of_a_channel_gets_each_change() -> None:
    async def scenario() -> list[Any]:
        changes = Changes()
        async with changes.subscribe(7) as a, changes.subscribe(7) as b:
            changes.notify(7, "deliveries")
            return [await a.next_batch(1.0), await b.next_batch(1.0)]

    assert run(scenario) == [[{"what": "deliveries", "wa_id": None}]] * 2


def test_the_same_change_twice_is_announced_once() -> None:
    async def scenario() -> list[Any]:
        changes = Changes()
        async with changes.subscribe(1) as subscription:
            for _ in range(3):
                changes.notify(1, "messages", "15551230001")
            changes.notify(1, "messages")  # all users: covers the one above from now on
            changes.notify(1, "messages", "15551230002")
            return await subscription.next_batch(1.0) or []

    assert run(scenario) == [{"what": "messages", "wa_id": "15551230001"}, {"what": "messages", "wa_id": None}]


def test_a_full_queue_collapses_into_one_change_per_kind_instead_of_growing() -> None:
    async def scenario() -> list[Any]:
        changes = Changes(pending_max=4)
        async with changes.subscribe(1) as subscription:
            changes.notify(1, "config")
            for n in range(10_000):  # a stalled console: nothing is read meanwhile
                changes.notify(1, "messages", f"1555{n:07d}")
            changes.notify(1, "deliveries", "15551230001")  # collapsing made room again
            return await subscription.next_batch(1.0) or []

    batch = run(scenario)
    assert len(batch) <= 4
    assert [(c["what"], c["wa_id"]) for c in batch] == [
        ("config", None), ("messages", None), ("deliveries", "15551230001")
    ]


def test_next_batch_answers_an_empty_list_when_nothing_happened_in_time() -> None:
    async def scenario() -> list[Any] | None:
        changes = Changes()
        async with changes.subscribe(1) as subscription:
            return await subscription.next_batch(0.01)

    assert run(scenario) == []


def test_a_waiting_subscriber_wakes_up_on_a_change() -> None:
    async def scenario() -> list[Any] | None:
        changes = Changes()
        async with changes.subscribe(1) as subscription:
            waiter = asyncio.create_task(subscription.next_batch(BOUND))
            await asyncio.sleep(0)  # let it start waiting
            changes.notify(1, "messages", "15551230001")
            return await waiter

    assert run(scenario) == [{"what": "messages", "wa_id": "15551230001"}]


def test_notify_without_subscribers_is_a_no_op_and_leaving_unsubscribes() -> None:
    async def scenario() -> tuple[int, int]:
        changes = Changes()
        changes.notify(1, "messages")  # nobody listens: nothing kept
        async with changes.subscribe(1):
            during = changes.subscribers(1)
        return during, changes.subscribers(1)

    assert run(scenario) == (1, 0)


def test_a_subscriber_cancelled_while_waiting_is_removed() -> None:
    async def scenario() -> int:
        changes = Changes()
        entered = asyncio.Event()

        async def listen() -> None:
            async with changes.subscribe(1) as subscription:
                entered.set()
                await subscription.next_batch(None)

        task = asyncio.create_task(listen())
        await entered.wait()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return changes.subscribers(1)

    assert run(scenario) == 0


def test_notify_from_another_thread_reaches_the_subscribers_loop() -> None:
    async def scenario() -> list[Any] | None:
        changes = Changes()
        async with changes.subscribe(1) as subscription:
            thread = threading.Thread(target=changes.notify, args=(1, "deliveries"))
            thread.start()
            thread.join()
            return await subscription.next_batch(BOUND)

    assert run(scenario) == [{"what": "deliveries", "wa_id": None}]


def test_close_ends_every_subscription_and_new_ones_end_at_once() -> None:
    async def scenario() -> tuple[list[Any] | None, list[Any]]:
        changes = Changes()
        async with changes.subscribe(1) as subscription:
            waiter = asyncio.create_task(subscription.next_batch(None))
            await asyncio.sleep(0)
            changes.close()
            ended = await waiter
        async with changes.subscribe(1) as late:
            seen = [change async for change in late]
        return ended, seen

    ended, seen = run(scenario)
    assert ended is None and seen == []


def test_a_subscription_can_be_iterated_until_close() -> None:
    async def scenario() -> list[Any]:
        changes = Changes()
        seen: list[Any] = []
        async with changes.subscribe(1) as subscription:
            changes.notify(1, "messages", "15551230001")
            changes.notify(1, "config")
            async for change in subscription:
                seen.append(change)
                if len(seen) == 2:
                    changes.close()
        return seen

    assert run(scenario) == [{"what": "messages", "wa_id": "15551230001"}, {"what": "config", "wa_id": None}]


def test_notify_all_reaches_every_channel_watched() -> None:
    async def scenario() -> list[Any]:
        changes = Changes()
        async with changes.subscribe(1) as a, changes.subscribe(2) as b:
            changes.notify_all("messages")  # e.g. the manual clock jumped
            return [await a.next_batch(1.0), await b.next_batch(1.0)]

    assert run(scenario) == [[{"what": "messages", "wa_id": None}]] * 2


def test_notify_later_announces_each_change_when_it_takes_effect() -> None:
    async def scenario() -> tuple[list[Any] | None, list[Any] | None, list[Any] | None]:
        changes = Changes()
        async with changes.subscribe(1) as subscription:
            changes.notify_later(0.05, 1, "messages", "15551230001")  # delivered, say
            changes.notify_later(0.05, 1, "messages", "15551230001")  # the same: one timer
            changes.notify_later(0.3, 1, "messages", "15551230001")  # read, later
            before = await subscription.next_batch(0.0)
            first = await subscription.next_batch(BOUND)
            second = await subscription.next_batch(BOUND)
        return before, first, second

    before, first, second = run(scenario)
    assert before == []
    assert first == second == [{"what": "messages", "wa_id": "15551230001"}]


def test_notify_later_keeps_no_timer_without_listeners_and_close_cancels_them() -> None:
    async def scenario() -> tuple[int, int, int]:
        changes = Changes()
        changes.notify_later(60, 1, "messages")  # nobody watches channel 1
        unwatched = len(changes._timers)
        async with changes.subscribe(1):
            changes.notify_later(60, 1, "messages")
            changes.notify_later(120, 1, "messages")
            watched = len(changes._timers)
            changes.close()
        return unwatched, watched, len(changes._timers)

    assert run(scenario) == (0, 2, 0)


# --- the event stream ---------------------------------------------------------------------------


class FakeClient:
    """An ASGI client: records what the response sends, and can hang up."""

    def __init__(self) -> None:
        self.sent: list[MutableMapping[str, Any]] = []
        self.body = bytearray()
        self.arrived = asyncio.Event()
        self._gone = asyncio.Event()
        self._asked = False

    async def receive(self) -> dict[str, Any]:
        if not self._asked:
            self._asked = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await self._gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: MutableMapping[str, Any]) -> None:
        self.sent.append(message)
        self.body += message.get("body", b"")
        self.arrived.set()

    def hang_up(self) -> None:
        self._gone.set()

    async def wait_for(self, text: bytes) -> None:
        while text not in self.body:
            self.arrived.clear()
            await self.arrived.wait()

    def headers(self) -> dict[bytes, bytes]:
        return dict(self.sent[0]["headers"])

    def events(self) -> list[Any]:
        chunks = [c for c in bytes(self.body).split(b"\n\n") if c.startswith(b"event: change\n")]
        return [msgspec.json.decode(c.split(b"\ndata: ", 1)[1]) for c in chunks]


SCOPE = {"type": "http", "method": "GET", "path": "/console/stream", "headers": []}


def stream_scenario(
    drive: Callable[[Changes, FakeClient, asyncio.Task[None]], Awaitable[None]], keep_alive: float = 15.0
) -> FakeClient:
    async def scenario() -> FakeClient:
        changes, client = Changes(), FakeClient()
        response = ChangeStream(changes, 1, keep_alive=keep_alive)
        task = asyncio.create_task(response(SCOPE, client.receive, client.send))
        await client.wait_for(b": keep-alive\n\n")  # the first comment: the stream is open
        await drive(changes, client, task)
        await task
        assert changes.subscribers(1) == 0
        return client

    result: FakeClient = run(scenario)
    return result


def test_the_stream_sends_each_change_as_an_event_and_ends_with_the_server() -> None:
    async def drive(changes: Changes, client: FakeClient, task: asyncio.Task[None]) -> None:
        changes.notify(1, "messages", "15551230001")
        changes.notify(2, "messages", "15551230002")  # another channel's: never sent
        await client.wait_for(b"15551230001")
        changes.notify(1, "deliveries")
        await client.wait_for(b"deliveries")
        changes.close()  # the server stops: the response ends, so uvicorn can shut down

    client = stream_scenario(drive)
    assert client.sent[0]["status"] == 200
    headers = client.headers()
    assert headers[b"content-type"].startswith(b"text/event-stream")
    assert headers[b"cache-control"] == b"no-cache"
    assert b"content-length" not in headers  # a stream has no length
    assert client.events() == [{"what": "messages", "wa_id": "15551230001"}, {"what": "deliveries", "wa_id": None}]
    assert client.sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}


def test_the_stream_ends_when_the_client_goes_away() -> None:
    async def drive(changes: Changes, client: FakeClient, task: asyncio.Task[None]) -> None:
        client.hang_up()

    client = stream_scenario(drive)
    assert client.events() == []


def test_the_stream_sends_a_keep_alive_comment_when_nothing_happens() -> None:
    async def drive(changes: Changes, client: FakeClient, task: asyncio.Task[None]) -> None:
        while client.body.count(b": keep-alive\n\n") < 3:
            client.arrived.clear()
            await client.arrived.wait()
        client.hang_up()

    client = stream_scenario(drive, keep_alive=0.01)
    assert client.events() == []
    assert bytes(client.body).startswith(b": keep-alive\n\n: keep-alive\n\n: keep-alive\n\n")

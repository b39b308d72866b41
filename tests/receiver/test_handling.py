"""What happens after the 200, in process and on an injected clock: de-duplication,
the status merge, retries, dead letters, ordering, lifecycle. Nothing here sleeps:
`run_pending()` handles whatever is due, and retries come due by moving the clock."""

from __future__ import annotations

import asyncio
import tempfile
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from openwaba.receiver import Event, Message, Receiver, Status, TemplateStatus, WebhookError

from .support import FakeClock, call, cloud, message, on_premise, status

Scenario = Callable[[Receiver, FakeClock, list[Any]], Awaitable[Any]]


def run(path: Path, scenario: Scenario, **options: Any) -> list[Any]:
    """A receiver whose handlers record into one list, its queue open and no background workers."""
    clock = FakeClock()
    calls: list[Any] = []

    async def main() -> list[Any]:
        receiver = Receiver(path, clock=clock, **options)

        @receiver.on_message
        async def on_message(m: Message) -> None:
            calls.append(("message", m.id))

        @receiver.on_status
        async def on_status(s: Status) -> None:
            calls.append(("status", s.id, s.status))

        await receiver.open()
        try:
            await scenario(receiver, clock, calls)
        finally:
            await receiver.stop()
        return calls

    return asyncio.run(main())


async def post(receiver: Receiver, body: bytes, webhook_id: str | None = None) -> None:
    reply = await call(receiver, body=body, headers={"webhook-id": webhook_id} if webhook_id else None)
    assert reply.status == 200, reply


def test_the_same_envelope_twice_is_handled_once(tmp_path: Path) -> None:
    async def scenario(receiver: Receiver, clock: FakeClock, calls: list[Any]) -> None:
        body = cloud({"messages": [message("wamid.1"), message("wamid.2")], "statuses": [status("wamid.0", "sent")]})
        await post(receiver, body)
        await post(receiver, body)  # no webhook-id: de-duplicated per item
        await post(receiver, body, "evt-1")
        await post(receiver, body, "evt-1")  # same webhook-id: not even queued again
        await post(receiver, on_premise({"messages": [message("wamid.1")]}))  # same wamid, other format
        await receiver.run_pending()
        assert await receiver.counts() == {"pending": 0, "done": 3, "dead": 0, "unexpanded": 0}

    calls = run(tmp_path / "q.db", scenario)
    assert sorted(calls) == [("message", "wamid.1"), ("message", "wamid.2"), ("status", "wamid.0", "sent")]


def test_items_without_an_id_are_deduplicated_by_envelope(tmp_path: Path) -> None:
    errors: list[int] = []

    async def scenario(receiver: Receiver, clock: FakeClock, calls: list[Any]) -> None:
        receiver.on_error(lambda e: errors.append(e.code))
        body = cloud({"errors": [{"code": 130429, "title": "Rate limit hit"}]}, contacts=())
        await post(receiver, body)
        await post(receiver, body)  # a redelivery of the same bytes
        await post(receiver, body, "evt-a")  # the same error again, as a new event
        await post(receiver, body, "evt-b")
        await post(receiver, body, "evt-b")
        await receiver.run_pending()

    run(tmp_path / "q.db", scenario)
    assert errors == [130429, 130429, 130429]


def test_a_late_delivered_never_downgrades_a_read(tmp_path: Path) -> None:
    seen: list[tuple[str, str]] = []

    async def scenario(receiver: Receiver, clock: FakeClock, calls: list[Any]) -> None:
        receiver.on_event(lambda e: seen.append((e.kind, getattr(e, "status", ""))))
        for name in ("read", "delivered", "sent"):
            await post(receiver, cloud({"statuses": [status("wamid.A", name)]}))
        for name in ("sent", "delivered", "read", "played", "read"):
            await post(receiver, cloud({"statuses": [status("wamid.B", name)]}))
        for name in ("sent", "failed", "delivered", "read"):
            await post(receiver, cloud({"statuses": [status("wamid.C", name)]}))
        await receiver.run_pending()

    calls = run(tmp_path / "q.db", scenario)
    assert [c for c in calls if c[1] == "wamid.A"] == [("status", "wamid.A", "read")]
    assert [c[2] for c in calls if c[1] == "wamid.B"] == ["sent", "delivered", "read", "played"]
    assert [c[2] for c in calls if c[1] == "wamid.C"] == ["sent", "failed"]
    assert len(seen) == 11  # on_event sees every distinct item, advancing or not


def test_a_failing_handler_is_retried_on_the_schedule(tmp_path: Path) -> None:
    failures = {"wamid.R": 3}

    async def scenario(receiver: Receiver, clock: FakeClock, calls: list[Any]) -> None:
        @receiver.on_message
        async def flaky(m: Message) -> None:
            if failures.get(m.id, 0) > 0:
                failures[m.id] -= 1
                raise RuntimeError("database down")

        await post(receiver, cloud({"messages": [message("wamid.R")]}))
        assert await receiver.run_pending() == 1
        clock.advance(0.9)
        assert await receiver.run_pending() == 0  # the first retry is due after 1 s
        for delay in (0.1, 5, 30):
            clock.advance(delay)
            assert await receiver.run_pending() == 1
        assert await receiver.counts() == {"pending": 0, "done": 1, "dead": 0, "unexpanded": 0}

    calls = run(tmp_path / "q.db", scenario, retry_delays=(1, 5, 30))
    # The recording handler succeeded on the first attempt and is not run again by the retries.
    assert calls == [("message", "wamid.R")]


def test_dead_letters_are_kept_and_can_be_retried(tmp_path: Path) -> None:
    broken = [True]

    async def scenario(receiver: Receiver, clock: FakeClock, calls: list[Any]) -> None:
        @receiver.on_message
        def needs_fix(m: Message) -> None:
            if broken[0]:
                raise ValueError(f"cannot handle {m.id}")

        await post(receiver, cloud({"messages": [message("wamid.D")]}))
        await post(receiver, b'{"this is": not json}')
        for _ in range(3):
            await receiver.run_pending()
            clock.advance(10)
        dead = await receiver.dead_letters()
        assert [(d.kind, d.attempts) for d in dead] == [("message", 3), ("invalid", 0)]
        assert dead[0].error == "ValueError: cannot handle wamid.D" and isinstance(dead[0].event, Message)
        assert dead[1].event is None and dead[1].error is not None and dead[1].error.startswith("not JSON")
        broken[0] = False
        assert await receiver.retry_dead([dead[0].id]) == 1
        await receiver.run_pending()
        assert [d.kind for d in await receiver.dead_letters()] == ["invalid"]

    calls = run(tmp_path / "q.db", scenario, retry_delays=(1,), max_attempts=3)
    assert calls == [("message", "wamid.D")]


def test_a_retried_status_is_skipped_once_a_higher_one_was_handled(tmp_path: Path) -> None:
    attempts: list[str] = []

    async def scenario(receiver: Receiver, clock: FakeClock, calls: list[Any]) -> None:
        @receiver.on_status
        async def fails_on_delivered_once(s: Status) -> None:
            attempts.append(s.status)
            if s.status == "delivered" and attempts.count("delivered") == 1:
                raise RuntimeError("flaky")

        await post(receiver, cloud({"statuses": [status("wamid.S", "delivered")]}))
        await receiver.run_pending()
        await post(receiver, cloud({"statuses": [status("wamid.S", "read")]}))
        await receiver.run_pending()  # unordered: read does not wait for delivered's retry
        clock.advance(60)
        await receiver.run_pending()

    calls = run(tmp_path / "q.db", scenario)
    assert attempts == ["delivered", "read"]
    assert calls == [("status", "wamid.S", "delivered"), ("status", "wamid.S", "read")]


def test_ordered_conversations_wait_for_a_retry(tmp_path: Path) -> None:
    handled: list[str] = []
    fail = {"wamid.a1"}

    async def scenario(receiver: Receiver, clock: FakeClock, calls: list[Any]) -> None:
        @receiver.on_message
        async def strict(m: Message) -> None:
            if m.id in fail:
                fail.discard(m.id)
                raise RuntimeError("not yet")
            handled.append(m.id)

        await post(receiver, cloud({"messages": [message("wamid.a1", sender="1"), message("wamid.b1", sender="2")]}))
        await post(receiver, cloud({"messages": [message("wamid.a2", sender="1"), message("wamid.b2", sender="2")]}))
        await receiver.run_pending()
        assert handled == ["wamid.b1", "wamid.b2"]  # user 2 is not held up by user 1
        clock.advance(1)
        await receiver.run_pending()

    run(tmp_path / "q.db", scenario, ordered=True)
    assert handled == ["wamid.b1", "wamid.b2", "wamid.a1", "wamid.a2"]


def test_ordered_handlers_of_one_conversation_never_overlap(tmp_path: Path) -> None:
    active: dict[str, int] = {}
    overlaps: list[str] = []
    order: list[str] = []

    async def scenario(receiver: Receiver, clock: FakeClock, calls: list[Any]) -> None:
        @receiver.on_event
        async def slow(e: Event) -> None:
            user = e.wa_id or ""
            active[user] = active.get(user, 0) + 1
            if active[user] > 1:
                overlaps.append(user)
            await asyncio.sleep(0)  # let any other worker run meanwhile
            order.append(f"{user}:{getattr(e, 'id', '')}")
            active[user] -= 1

        for i in range(12):
            await post(receiver, cloud({"messages": [message(f"wamid.{i}", sender=str(i % 3))]}))
        await receiver.run_pending()

    run(tmp_path / "q.db", scenario, ordered=True, workers=8)
    assert not overlaps
    for user in "012":
        assert [o for o in order if o.startswith(user + ":")] == [
            f"{user}:wamid.{i}" for i in range(12) if str(i % 3) == user
        ]


def test_handlers_of_every_kind(tmp_path: Path) -> None:
    threads: list[str] = []
    got: list[Any] = []

    async def scenario(receiver: Receiver, clock: FakeClock, calls: list[Any]) -> None:
        @receiver.on_template_status
        def sync_handler(t: TemplateStatus) -> None:  # sync handlers run in a thread
            threads.append(threading.current_thread().name)
            got.append((t.event, t.message_template_name))

        @receiver.on_error
        async def errors(e: WebhookError) -> None:
            got.append(("error", e.code))

        template = (
            b'{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":'
            b'"message_template_status_update","value":{"event":"APPROVED","message_template_name":"hi"}}]}]}'
        )
        await post(receiver, template)
        await post(receiver, on_premise({"errors": [{"code": 1014, "title": "Internal error"}]}, contacts=()))
        await receiver.run_pending()

    run(tmp_path / "q.db", scenario)
    assert sorted(got, key=str) == [("APPROVED", "hi"), ("error", 1014)]
    assert threads and threads[0] != threading.main_thread().name


def test_lazy_start_without_lifespan_and_lifespan_messages(tmp_path: Path) -> None:
    async def main() -> None:
        receiver = Receiver(tmp_path / "q.db")
        handled = asyncio.Event()
        receiver.on_message(lambda m: handled.set())
        assert (await call(receiver, body=cloud({"messages": [message("wamid.L")]}))).status == 200
        await asyncio.wait_for(handled.wait(), 10)  # the first request started the workers
        await receiver.stop()

        lifespan = Receiver(tmp_path / "q2.db")
        inbox = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
        sent: list[str] = []

        async def receive() -> dict[str, Any]:
            return inbox.pop(0)

        async def send(message_: Any) -> None:
            sent.append(message_["type"])

        await lifespan({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)
        assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]

    asyncio.run(main())


def test_mounted_in_starlette(tmp_path: Path) -> None:
    from starlette.applications import Starlette
    from starlette.routing import Mount

    receiver = Receiver(tmp_path / "q.db", verify_token="t")
    app = Starlette(routes=[Mount("/webhook", app=receiver)])

    async def main() -> tuple[int, bytes, int]:
        messages = [{"type": "http.request", "body": cloud({"messages": [message("wamid.M")]}), "more_body": False}]
        sent: list[Any] = []

        async def receive() -> dict[str, Any]:
            return messages.pop(0) if messages else {"type": "http.disconnect"}

        async def send(message_: Any) -> None:
            sent.append(message_)

        base = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "scheme": "http",
            "server": ("127.0.0.1", 80),
            "root_path": "",
            "headers": [],
        }
        await app(
            {**base, "method": "POST", "path": "/webhook/", "raw_path": b"/webhook/", "query_string": b""},
            receive,
            send,
        )
        await app(
            {
                **base,
                "method": "GET",
                "path": "/webhook/",
                "raw_path": b"/webhook/",
                "query_string": b"hub.mode=subscribe&hub.verify_token=t&hub.challenge=42",
            },
            receive,
            send,
        )
        counts = await receiver.counts()
        await receiver.stop()
        return sent[0]["status"], sent[3]["body"], counts["done"] + counts["pending"] + counts["unexpanded"]

    assert asyncio.run(main()) == (200, b"42", 1)


def test_work_left_by_a_previous_process_is_handled_on_start(tmp_path: Path) -> None:
    async def first(receiver: Receiver, clock: FakeClock, calls: list[Any]) -> None:
        await post(receiver, cloud({"messages": [message("wamid.K1"), message("wamid.K2")]}))  # acked, never handled

    async def second(receiver: Receiver, clock: FakeClock, calls: list[Any]) -> None:
        await receiver.run_pending()

    assert run(tmp_path / "q.db", first) == []
    assert sorted(run(tmp_path / "q.db", second)) == [("message", "wamid.K1"), ("message", "wamid.K2")]


STATUS_NAMES = ["sent", "delivered", "read", "played", "failed"]
RANK = {name: i for i, name in enumerate(STATUS_NAMES)}


@settings(max_examples=40, deadline=None)
@given(
    deliveries=st.lists(st.tuples(st.sampled_from(STATUS_NAMES), st.booleans()), min_size=1, max_size=12),
    ordered=st.booleans(),
)
def test_any_order_and_duplication_of_statuses_ends_in_the_highest(
    deliveries: list[tuple[str, bool]], ordered: bool
) -> None:
    """Statuses of one message posted in any order, any number of times (with or without a webhook-id):
    on_status sees ranks only rising, each status at most once, the last one the highest posted."""
    seen_events: list[str] = []

    async def scenario(receiver: Receiver, clock: FakeClock, calls: list[Any]) -> None:
        receiver.on_event(lambda e: seen_events.append(e.status if isinstance(e, Status) else "?"))
        for name, with_id in deliveries:
            await post(receiver, cloud({"statuses": [status("wamid.P", name)]}), f"evt-{name}" if with_id else None)
        await receiver.run_pending()

    with tempfile.TemporaryDirectory() as directory:
        calls = run(Path(directory) / "q.db", scenario, ordered=ordered)
    handed = [c[2] for c in calls]
    assert handed == sorted(set(handed), key=RANK.__getitem__)  # strictly rising, no repeats
    assert handed[-1] == max((name for name, _ in deliveries), key=RANK.__getitem__)
    assert sorted(seen_events) == sorted({name for name, _ in deliveries})  # every item once


def test_a_handler_cut_short_by_stop_runs_again_after_a_restart(tmp_path: Path) -> None:
    release = asyncio.Event()
    calls: list[str] = []

    async def main() -> None:
        receiver = Receiver(tmp_path / "q.db")

        @receiver.on_message
        async def slow(m: Message) -> None:
            calls.append(m.id)
            await release.wait()

        await receiver.start()
        assert (await call(receiver, body=cloud({"messages": [message("wamid.cut")]}))).status == 200
        for _ in range(500):  # bounded: until the handler has started
            if calls:
                break
            await asyncio.sleep(0.01)
        dispatcher = receiver._dispatcher
        await dispatcher.stop(grace=0.05)  # the handler is cancelled mid-way
        release.set()
        dispatcher.start()  # same process, same queue: the item is claimed again
        for _ in range(500):
            if (await receiver.counts())["done"] == 1:
                break
            await asyncio.sleep(0.01)
        await receiver.stop()

    asyncio.run(main())
    assert calls == ["wamid.cut", "wamid.cut"]


def test_a_failing_bookkeeping_operation_loses_nothing_else(tmp_path: Path) -> None:
    from openwaba.receiver.journal import Journal, counts

    async def main() -> tuple[dict[str, int], str]:
        journal = Journal(tmp_path / "q.db", lambda event: None)
        await journal.open()

        def half_done_then_fails(conn: Any) -> None:
            conn.execute("INSERT INTO envelopes (body, received_at) VALUES (x'7b7d', 0)")
            raise RuntimeError("bug in an operation")

        try:
            results = await asyncio.gather(
                journal.append(b"{}", None, 0.0),
                journal.run(half_done_then_fails),
                journal.run(counts),
                return_exceptions=True,
            )
            assert isinstance(results[1], RuntimeError)
            alone = await asyncio.gather(journal.run(half_done_then_fails), return_exceptions=True)
            assert isinstance(alone[0], RuntimeError)
            after = await journal.run(counts)  # the connection is usable, and only the acked body is there
            return after, str(results[1])
        finally:
            await journal.close()

    after, error = asyncio.run(main())
    assert after["unexpanded"] == 1 and error == "bug in an operation"

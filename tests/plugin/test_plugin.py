"""openwaba's pytest plugin, used as a project would use it: the fixtures come from the
`pytest11` entry point (nothing here imports or declares them)."""

from __future__ import annotations

import importlib.metadata
import struct
import time
import zlib
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from openwaba.client import ClientError, Row, Section, messages
from openwaba.receiver import Message, Status
from openwaba.testing import Gateway, Inbox, SimulatedUser, TestClock

pytestmark = pytest.mark.e2e



def _png() -> bytes:
    """A 1x1 PNG: real image bytes for the user's photo."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", 1, 1, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0\0\0\0\0")) \
        + chunk(b"IEND", b"")


PNG = _png()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_the_plugin_is_registered_through_the_pytest11_entry_point() -> None:
    entry = [e for e in importlib.metadata.entry_points(group="pytest11") if e.name == "openwaba"]
    assert [e.value for e in entry] == ["openwaba.testing.plugin"]


def test_each_test_gets_a_number_of_its_own(gateway: Gateway, user: SimulatedUser) -> None:
    assert gateway.client.phone_number()["phone_number"] == gateway.phone_number
    assert user is gateway.users[0] and len({u.wa_id for u in gateway.users}) == 3


def test_the_inbox_sees_each_status_of_a_message(gateway: Gateway, user: SimulatedUser, inbox: Inbox) -> None:
    user.say("hi")
    hi = inbox.wait_for(type="text", from_=user.wa_id)
    assert isinstance(hi, Message) and hi.text == "hi"
    wamid = gateway.send(messages.text(user.wa_id, "hello").replying_to(hi.id)).message_id
    for status in ("sent", "delivered", "read"):  # posted in this order; without FIFO mode they may overtake
        inbox.wait_for(status=status, message_id=wamid)
    assert sorted(inbox.statuses(wamid)) == ["delivered", "read", "sent"]  # each once
    assert user.wait_for_message(contains="hello")["context"]["id"] == hi.id


@pytest.mark.anyio
async def test_the_waits_have_awaitable_twins(gateway: Gateway, user: SimulatedUser, inbox: Inbox) -> None:
    user.say("async hi")
    message = await inbox.expect(type="text", text="async hi")
    gateway.send_text(user.wa_id, "async hello")
    shown = await user.expect_message(contains="async hello")
    status = await inbox.expect(status="delivered", message_id=shown["id"])
    assert isinstance(message, Message) and isinstance(status, Status)


def test_a_wait_that_times_out_says_what_arrived(user: SimulatedUser, inbox: Inbox) -> None:
    user.say("something else")
    with pytest.raises(AssertionError, match="something else"):
        inbox.wait_for(type="text", text="never sent", timeout=1)  # the summary lists what did arrive


def test_each_event_is_returned_once(user: SimulatedUser, inbox: Inbox) -> None:
    user.say("one")
    user.say("two")
    first, second = inbox.wait_for(type="text"), inbox.wait_for(type="text")
    assert isinstance(first, Message) and isinstance(second, Message)
    assert {first.text, second.text} == {"one", "two"}


def test_the_clock_closes_the_window_a_day_later(gateway: Gateway, user: SimulatedUser, inbox: Inbox,
                                                 clock: TestClock) -> None:
    user.say("hi")
    before = clock.now()
    assert clock.advance(hours=25) >= before + 25 * 3600
    late = gateway.send_text(user.wa_id, "too late").message_id
    failed = inbox.wait_for(status="failed", message_id=late)
    assert isinstance(failed, Status) and failed.errors[0].code == 131047


def test_the_clock_jumps_to_a_moment_and_never_back(clock: TestClock) -> None:
    later = datetime.fromtimestamp(clock.now() + 3 * 86400, UTC)
    assert clock.set(later) == pytest.approx(later.timestamp(), abs=1)
    with pytest.raises(ClientError, match="forward"):
        clock.set(later.timestamp() - 3600)


def test_a_failing_receiver_is_retried_when_the_clock_moves(gateway: Gateway, user: SimulatedUser, inbox: Inbox,
                                                            clock: TestClock) -> None:
    inbox.fail_next(1)
    user.say("retry me")
    first = inbox.wait_for(type="text", text="retry me")
    # The retry is scheduled when the gateway records the failed attempt, just after the inbox answered.
    until(lambda: [(d["state"], d["attempts_made"]) for d in gateway.deliveries()] == [("pending", 1)])
    clock.advance(seconds=10)  # past the first retry delay (5 s)
    again = inbox.wait_for(type="text", text="retry me")
    assert isinstance(first, Message) and isinstance(again, Message) and first.id == again.id
    until(lambda: [(d["state"], d["attempts_made"]) for d in gateway.deliveries()] == [("delivered", 2)])


def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll a condition that becomes true right away (no timer involved), with a bound."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_users_act_through_the_plugin(gateway: Gateway, user: SimulatedUser, inbox: Inbox) -> None:
    sent = gateway.send(messages.buttons(user.wa_id, "Pick one", [("a", "A"), ("b", "B")])).message_id
    user.tap(sent, "b")
    user.react(sent, "👍")
    user.share_location(52.52, 13.405, name="Berlin")
    user.send_file(PNG, "image/png", caption="a dot")
    tap = inbox.wait_for(type="interactive")
    reaction = inbox.wait_for(type="reaction")
    place = inbox.wait_for(type="location")
    image = inbox.wait_for(type="image")
    assert isinstance(tap, Message) and tap.interactive is not None and tap.interactive.id == "b"
    assert isinstance(reaction, Message) and reaction.reaction is not None and reaction.reaction.emoji == "👍"
    assert isinstance(place, Message) and place.location is not None and place.location.name == "Berlin"
    assert isinstance(image, Message) and image.media is not None
    assert gateway.client.download_media(image.media.id) == PNG


def test_users_pick_rows_and_tap_template_buttons(gateway: Gateway, user: SimulatedUser, inbox: Inbox,
                                                   clock: TestClock) -> None:
    components = [{"type": "BODY", "text": "Your order is on its way."},
                  {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Stop updates"}]}]
    gateway.client.create_template("plugin_order", "en_US", "utility", components)
    clock.advance(minutes=1)  # past the sandbox's template review
    until(lambda: [t.status for t in gateway.client.templates() if t.name == "plugin_order"] == ["approved"])
    user.say("hi")
    rows = [Section("Drinks", rows=[Row("tea", "Tea"), Row("juice", "Juice")])]
    listed = gateway.send(messages.list_message(user.wa_id, "Choose", "Options", rows)).message_id
    order = gateway.send(messages.template(user.wa_id, "plugin_order", "en_US", components=[
        messages.button(0, "quick_reply", "STOP-1")])).message_id
    user.pick(listed, "juice")
    user.tap_template_button(order, 0)
    picked, tapped = inbox.wait_for(type="interactive"), inbox.wait_for(type="button")
    assert isinstance(picked, Message) and picked.interactive is not None and picked.interactive.id == "juice"
    assert isinstance(tapped, Message) and tapped.button is not None
    assert (tapped.button.payload, tapped.button.text, tapped.reply_to) == ("STOP-1", "Stop updates", order)


def test_scenarios_through_the_plugin(gateway: Gateway, user: SimulatedUser, inbox: Inbox) -> None:
    user.say("hi")
    gateway.scenario(fail={"code": 131026, "next": 1})
    user.scenario(never_reads=True)
    failed = gateway.send_text(user.wa_id, "first").message_id
    kept = gateway.send_text(user.wa_id, "second").message_id
    status = inbox.wait_for(status="failed", message_id=failed)
    inbox.wait_for(status="delivered", message_id=kept)
    assert isinstance(status, Status) and status.errors[0].code == 131026
    labels = {tuple(d["injected"]) for d in gateway.deliveries() if d["event"]["wamid"] == failed}
    assert labels == {("failure",)}
    other = gateway.users[1]  # reads as usual: once its later read is in, the first user's would be too
    other.say("hi")
    inbox.wait_for(status="read", message_id=gateway.send_text(other.wa_id, "third").message_id)
    assert sorted(inbox.statuses(kept)) == ["delivered", "sent"]

"""End-to-end: WhatsApp's 24-hour customer-service window, undeliverable
numbers, and the throughput (130429) and pair (131056) rate limits, through the
real server. Time is moved with the manual clock; the clock still flows with
wall time, so every count of "admitted in one instant" is bounded by the time
the burst really took.
"""

from __future__ import annotations

import math
import time
from typing import Any

import pytest

from .messaging_support import (
    HELLO_WORLD,
    UNKNOWN_RECIPIENT,
    assert_graph_error,
    cloud,
    status_events,
    stored_counts,
    wait_flat,
    wait_for_status_events,
    wait_statuses,
)
from .routing_support import PARTNER_ENV, demo_number, new_number, partner, partner_ok
from .support import ALICE, BRUNO, CHEN, Receiver, Server, ServerFactory, text_message

pytestmark = pytest.mark.e2e

HOUR = 3600.0
WINDOW = 24 * HOUR
ALL_THREE = {"sent", "delivered", "read"}


# --- the 24-hour window -----------------------------------------------------------------------


def send(srv: Server, body: dict[str, Any]) -> str:
    reply = srv.call("POST", "/messages", body)
    assert reply.status == 200, f"a send outside the window is still accepted: {reply.body!r}"
    return str(reply.json()["messages"][0]["id"])


def assert_only_failed(srv: Server, receiver: Receiver, wamid: str, code: int, title: str) -> dict[str, Any]:
    """`wamid` got one `failed` status with `code`, and never anything else; return the status."""
    [failed] = wait_statuses(receiver, wamid, {"failed"}).values()
    [error] = failed["errors"]
    assert error["code"] == code, failed
    assert error["title"] == title and error["message"] == title, error
    assert isinstance(error["error_data"]["details"], str) and error["error_data"]["details"], error
    assert error["href"].startswith("https://"), error
    assert "conversation" not in failed and "pricing" not in failed, "a failed status is not billed"
    # The sandbox stores every status of a message at once: this is all it will ever get.
    assert len(status_events(srv, wamid)) == 1, status_events(srv, wamid)
    assert [r.status["status"] for r in receiver.statuses_of(wamid)] == ["failed"]  # type: ignore[index]
    return failed


def assert_delivered(srv: Server, receiver: Receiver, wamid: str) -> None:
    got = wait_statuses(receiver, wamid, ALL_THREE)
    assert all("errors" not in s for s in got.values())
    assert len(status_events(srv, wamid)) == 3


def test_free_form_after_24_hours_fails_with_131047_but_a_template_goes(
    server: ServerFactory, receiver: Receiver
) -> None:
    srv = server()
    srv.set_webhook(receiver.url)
    srv.advance_clock(WINDOW + 1)  # since the users' first-start "Hi! 👋"

    wamid = send(srv, cloud(ALICE, "text", {"body": "are you still there?"}, biz_opaque_callback_data="late"))
    failed = assert_only_failed(srv, receiver, wamid, 131047, "Re-engagement message")
    assert failed["recipient_id"] == ALICE and failed["biz_opaque_callback_data"] == "late"
    [request] = receiver.statuses_of(wamid)
    assert request.value["contacts"][0]["wa_id"] == ALICE, "the user is known: the failed status names them"

    # Every free-form type is held to the window, not only text.
    image = send(srv, cloud(ALICE, "image", {"link": "https://example.com/a.jpg"}))
    assert_only_failed(srv, receiver, image, 131047, "Re-engagement message")

    # A template still goes.
    template = send(srv, cloud(ALICE, "template", HELLO_WORLD))
    assert_delivered(srv, receiver, template)

    # Once the user writes again, free-form works again (for that user only).
    srv.user_says(ALICE, "I'm back")
    again = send(srv, text_message(ALICE, "welcome back"))
    assert_delivered(srv, receiver, again)
    other = send(srv, text_message(BRUNO, "Bruno has not written"))
    assert_only_failed(srv, receiver, other, 131047, "Re-engagement message")


def test_the_window_moves_with_each_inbound_message(server: ServerFactory, receiver: Receiver) -> None:
    srv = server()
    srv.set_webhook(receiver.url)
    srv.advance_clock(WINDOW + 1)
    srv.user_says(ALICE, "first")
    srv.advance_clock(23 * HOUR)
    srv.user_says(ALICE, "second")
    srv.advance_clock(23 * HOUR)  # 46 h after the first message, 23 h after the second
    assert_delivered(srv, receiver, send(srv, text_message(ALICE, "inside the moved window")))

    srv.advance_clock(HOUR - 30)  # 30 s before the window closes
    assert_delivered(srv, receiver, send(srv, text_message(ALICE, "just in time")))

    srv.advance_clock(31)  # 24 h + 1 s after the last message
    late = send(srv, text_message(ALICE, "too late"))
    assert_only_failed(srv, receiver, late, 131047, "Re-engagement message")


def test_on_premise_number_reports_a_closed_window_as_470(server: ServerFactory, receiver: Receiver) -> None:
    srv = server(PARTNER_ENV)
    legacy = new_number(srv, type="on_premise", sandbox_users=[ALICE])
    legacy.set_webhook(receiver.url)
    legacy.user_says(ALICE, "hello")  # opens the window ...
    srv.advance_clock(WINDOW + 1)  # ... which then closes
    [alice] = legacy.ok("GET", "/sandbox/users")["users"]

    reply = legacy.call("POST", "/v1/messages", {"to": ALICE, "text": {"body": "are you still there?"}})
    assert reply.status == 201, reply.body
    wamid = reply.json()["messages"][0]["id"]
    got = wait_flat(receiver, "statuses", lambda s: s.get("id") == wamid, f"the flat status of {wamid}")
    assert "entry" not in got.json
    [status] = got.json["statuses"]
    assert status["status"] == "failed" and status["type"] == "message"
    [error] = status["errors"]
    assert error["code"] == 470, error
    assert "24 hours" in error["title"], error
    assert got.json["contacts"] == [{"profile": {"name": alice["name"]}, "wa_id": ALICE}]
    assert len(status_events(srv, wamid)) == 1


def test_a_number_that_is_not_a_user_gets_131026(server: ServerFactory, receiver: Receiver) -> None:
    srv = server()
    srv.set_webhook(receiver.url)
    for body in (text_message(UNKNOWN_RECIPIENT, "hello?"), cloud(UNKNOWN_RECIPIENT, "template", HELLO_WORLD)):
        wamid = send(srv, {**body, "biz_opaque_callback_data": "nobody"})
        failed = assert_only_failed(srv, receiver, wamid, 131026, "Message Undeliverable")
        assert failed["recipient_id"] == UNKNOWN_RECIPIENT and failed["biz_opaque_callback_data"] == "nobody"
        [request] = receiver.statuses_of(wamid)
        # Only the number is known, but the recipient is named: SDKs (pywa) read contacts[0] of every status.
        [contact] = request.value["contacts"]
        assert contact["wa_id"] == UNKNOWN_RECIPIENT and contact["user_id"].startswith("US.") and "profile" not in contact


# --- rate limits --------------------------------------------------------------------------------

LIMITED = {"OPENWABA_RATE_LIMITS": "true", "OPENWABA_THROUGHPUT": "5"}


def burst(srv: Server, recipients: list[str], count: int) -> tuple[list[int], float]:
    """Send `count` texts as fast as possible, round-robin over `recipients`.

    Returns each answer (200, or the Graph error code) and the seconds the burst took.
    """
    outcomes: list[int] = []
    started = time.monotonic()
    for index in range(count):
        reply = srv.call("POST", "/messages", text_message(recipients[index % len(recipients)], f"burst {index}"))
        if reply.status == 200:
            outcomes.append(200)
        else:
            outcomes.append(reply.json()["error"]["code"])
            assert_graph_error(reply, outcomes[-1])
    return outcomes, time.monotonic() - started


def assert_throughput(outcomes: list[int], took: float, rate: float) -> int:
    """GCRA with a burst of rate x 1 s: the first `burst` are admitted, then one per 1/rate s
    of real time the burst took; everything else gets 130429. Returns the admitted count."""
    allowed = max(1, int(rate))
    admitted = outcomes.count(200)
    assert outcomes[:allowed] == [200] * allowed, f"the first {allowed} of a burst are admitted: {outcomes}"
    most = allowed + math.ceil(took * rate) + 1
    assert admitted <= most, f"{admitted} admitted in {took:.3f} s at {rate}/s: {outcomes}"
    assert set(outcomes) <= {200, 130429}, outcomes
    return admitted


def test_throughput_over_the_limit_gets_130429(server: ServerFactory) -> None:
    srv = server(LIMITED)
    users = [ALICE, BRUNO, CHEN]
    before = stored_counts(srv)
    outcomes, took = burst(srv, users, 20)
    admitted = assert_throughput(outcomes, took, 5)
    assert 130429 in outcomes, f"20 sends in {took:.3f} s were all admitted at 5/s: {outcomes}"
    assert stored_counts(srv)[0] == before[0] + admitted, "refused sends are not stored"
    reply = srv.call("POST", "/messages", text_message(ALICE, "one more"))
    if reply.status != 200:
        assert "throughput" in assert_graph_error(reply, 130429)

    # A second later the burst is available again.
    srv.advance_clock(10)
    outcomes, took = burst(srv, users, 20)
    assert_throughput(outcomes, took, 5)


def _channel_settings(srv: Server, body: dict[str, Any]) -> dict[str, Any]:
    number = demo_number(srv)
    return dict(partner_ok(srv, "PATCH", f"/channels/{number.id}", body))


def test_throughput_and_the_off_switch_per_number(server: ServerFactory) -> None:
    srv = server({**LIMITED, **PARTNER_ENV})
    users = [ALICE, BRUNO, CHEN]

    changed = _channel_settings(srv, {"throughput": 2})
    assert changed["throughput"] == 2 and changed["rate_limits"] is True
    outcomes, took = burst(srv, users, 12)
    assert assert_throughput(outcomes, took, 2) < 12

    srv.advance_clock(10)
    changed = _channel_settings(srv, {"throughput": 12})
    assert changed["throughput"] == 12
    outcomes, took = burst(srv, users, 30)
    assert assert_throughput(outcomes, took, 12) >= 12

    # Off: a burst far over both limits goes through (60 to one user is over the pair limit too).
    changed = _channel_settings(srv, {"rate_limits": False})
    assert changed["rate_limits"] is False
    outcomes, _ = burst(srv, [ALICE], 60)
    assert outcomes == [200] * 60

    # null restores the deployment's defaults: limits on, OPENWABA_THROUGHPUT=5.
    srv.advance_clock(10)
    changed = _channel_settings(srv, {"rate_limits": None, "throughput": None})
    assert changed["rate_limits"] is True and changed["throughput"] == 5
    outcomes, took = burst(srv, [BRUNO, CHEN], 20)
    assert assert_throughput(outcomes, took, 5) < 20

    for bad in ({"throughput": 0}, {"throughput": "fast"}, {"rate_limits": "no"}, {"speed": 1}, {}):
        reply = partner(srv, "PATCH", f"/channels/{demo_number(srv).id}", bad)
        assert reply.status == 400, f"{bad}: {reply.body!r}"


def test_pair_rate_limit_after_45_messages_to_one_user(server: ServerFactory, receiver: Receiver) -> None:
    srv = server({"OPENWABA_RATE_LIMITS": "true", "OPENWABA_THROUGHPUT": "1000"})
    srv.set_webhook(receiver.url)
    before = stored_counts(srv)
    outcomes, took = burst(srv, [ALICE], 46)
    assert took < 6, "the burst must be faster than one message per 6 s for this test to mean anything"
    assert outcomes == [200] * 45 + [131056], outcomes
    reply = srv.call("POST", "/messages", text_message(ALICE, "and another"))
    details = assert_graph_error(reply, 131056)
    assert "too many messages" in details
    assert reply.json()["error"]["message"] == "(#131056) (Business Account, Consumer Account) pair rate limit hit"
    assert stored_counts(srv)[0] == before[0] + 45

    # The limit is per user: the number can still write to others.
    assert srv.call("POST", "/messages", text_message(BRUNO, "hi Bruno")).status == 200

    # One message per 6 s comes back ...
    srv.advance_clock(6)
    outcomes, took = burst(srv, [ALICE], 3)
    assert outcomes[0] == 200 and outcomes.count(200) <= 1 + math.ceil(took / 6), outcomes
    assert 131056 in outcomes
    # ... and after a quiet spell as long as the burst, a whole burst.
    srv.advance_clock(46 * 6)
    outcomes, took = burst(srv, [ALICE], 46)
    assert outcomes[:45] == [200] * 45 and outcomes.count(200) <= 45 + math.ceil(took / 6), outcomes

    # Admitted messages are delivered as usual.
    wamid = srv.call("POST", "/messages", text_message(CHEN, "delivered")).json()["messages"][0]["id"]
    wait_for_status_events(srv, wamid, 3)


def test_a_refused_channel_patch_changes_nothing(server: ServerFactory) -> None:
    srv = server({**LIMITED, **PARTNER_ENV})
    path = f"/channels/{demo_number(srv).id}"
    before = partner_ok(srv, "PATCH", path, {"rate_limits": None})
    for bad in ({"retry_horizon_seconds": 600, "throughput": 0},
                {"retry_horizon_seconds": 900, "rate_limits": "no"}):
        reply = partner(srv, "PATCH", path, bad)
        assert reply.status == 400, f"{bad}: {reply.body!r}"
    assert partner_ok(srv, "PATCH", path, {"rate_limits": None}) == before


def test_a_template_outside_the_window_is_priced_as_its_category(server: ServerFactory, receiver: Receiver) -> None:
    srv = server()
    srv.set_webhook(receiver.url)
    srv.advance_clock(WINDOW + 1)
    wamid = send(srv, cloud(ALICE, "template", HELLO_WORLD))
    got = wait_statuses(receiver, wamid, ALL_THREE)
    for status in got.values():
        assert status["pricing"]["pricing_model"] == "PMP"
        assert (status["pricing"]["category"], status["pricing"]["type"]) == ("utility", "regular"), status
        assert status["conversation"]["origin"]["type"] == "utility", status

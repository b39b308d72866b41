"""End-to-end: sandbox scenarios, scripted users and the manual clock, through
the real `openwaba serve` process and a real webhook receiver on 127.0.0.1.

Each test that changes the number's scenario gets its own server; the tests
of simulated users (each on its own user and user layer) share one, and so do
the validation tables. Time only moves when a test moves the manual clock
(`POST /sandbox/clock`); absence is proven from the delivery log (see
scenarios_support), never by sleeping. The numbered sections follow the list
of behaviours the scenarios promise (7, the seed, is proven with 1 and 5).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from .assets_support import JPEG, PDF, FilePart, assert_graph_error, post_form
from .conftest import DEFAULT_ENV
from .messaging_support import CONTACT_CARD, MP4, OGG, cloud, interactive_examples
from .scenarios_support import (
    act,
    arrived,
    clock_now,
    labels_by_status,
    put_scenario,
    scenario_path,
    send,
    status_log,
    wait_all_delivered,
    wait_failed,
    wait_inbound,
    wait_message,
    wait_statuses,
)
from .support import (
    ALICE,
    BRUNO,
    CHEN,
    KEY_HEADER,
    Receiver,
    Reply,
    Server,
    ServerFactory,
    http,
    text_message,
    wait_until,
)

pytestmark = pytest.mark.e2e

DAY = 86400.0
ALL_THREE = ["sent", "delivered", "read"]
INJECTED_NOTE = "injected by the sandbox scenario"


def hooked(server: ServerFactory, receiver: Receiver, env: dict[str, str | None] | None = None) -> Server:
    """A fresh server posting its webhooks to `receiver`."""
    srv = server(env)
    srv.set_webhook(receiver.url)
    return srv


def timestamps(receiver: Receiver, wamid: str) -> dict[str, int]:
    return {r.status["status"]: int(r.status["timestamp"]) for r in receiver.statuses_of(wamid) if r.status}


# --- 1 and 7. status timing and seeds -----------------------------------------------------------------


def test_fixed_delays_hold_each_status_until_the_clock_passes_it(server: ServerFactory, receiver: Receiver) -> None:
    srv = hooked(server, receiver)
    assert put_scenario(srv, {"delays": {"delivered": 100, "read": 200}}) == {
        "delays": {"delivered": 100.0, "read": 200.0}}
    wamid = srv.send_text(ALICE, "slow network")

    wait_statuses(receiver, wamid, 1)
    sent, delivered, read = status_log(srv, wamid)
    assert [sent.status, delivered.status, read.status] == ALL_THREE
    assert abs(delivered.at - sent.at - 100) < 1e-3 and abs(read.at - sent.at - 200) < 1e-3, (sent, delivered, read)
    for waiting in (delivered, read):  # stored, due in the (manual) future, never tried
        assert waiting.delivery["state"] == "pending" and waiting.delivery["attempts_made"] == 0, waiting
        assert waiting.delivery["next_attempt_at"] > clock_now(srv)

    srv.advance_clock(150)
    wait_statuses(receiver, wamid, 2)
    [*_, still_waiting] = status_log(srv, wamid)
    assert still_waiting.status == "read" and still_waiting.delivery["attempts_made"] == 0, still_waiting
    assert arrived(receiver, wamid) == ["sent", "delivered"]

    srv.advance_clock(100)
    wait_statuses(receiver, wamid, 3)
    assert arrived(receiver, wamid) == ALL_THREE
    at = timestamps(receiver, wamid)
    assert (at["delivered"] - at["sent"], at["read"] - at["sent"]) == (100, 200)
    # Only the statuses the scenario moved are labelled.
    assert labels_by_status(wait_all_delivered(srv, wamid, 3)) == {
        "sent": [()], "delivered": [("delay",)], "read": [("delay",)]}


RANDOM_DELAYS = {"delivered": [30, 60], "read": [90, 120]}


def seeded_offsets(srv: Server, receiver: Receiver, seed: int, count: int) -> list[tuple[float, float]]:
    """Send `count` texts under a seeded random-delay scenario; each one's (delivered, read) seconds after sent."""
    put_scenario(srv, {"seed": seed, "delays": RANDOM_DELAYS})
    offsets = []
    for n in range(count):
        wamid = srv.send_text(BRUNO, f"random {n}")
        wait_statuses(receiver, wamid, 1)  # handed over in order: the draws happen in this order
        sent, delivered, read = status_log(srv, wamid)
        offsets.append((delivered.at - sent.at, read.at - sent.at))
    return offsets


def test_random_delays_stay_in_bounds_and_a_seed_repeats_them(server: ServerFactory, receiver: Receiver) -> None:
    first = hooked(server, receiver)
    offsets = seeded_offsets(first, receiver, 2024, 3)
    for delivered, read in offsets:
        assert 30 <= delivered <= 60 and 90 <= read <= 120, offsets
    assert len({round(d, 3) for d, _ in offsets}) == len(offsets), f"no randomness: {offsets}"

    first.advance_clock(121)
    wamids = [r.status["id"] for r in receiver.requests if r.status and r.status["status"] == "sent"]
    for wamid in wamids:
        wait_statuses(receiver, wamid, 3)
        at = timestamps(receiver, wamid)
        # Timestamps are whole seconds, so each bound can be off by the sent time's fraction.
        assert 30 - 1 <= at["delivered"] - at["sent"] <= 60 + 1, at
        assert 90 - 1 <= at["read"] - at["sent"] <= 120 + 1, at
        assert arrived(receiver, wamid) == ALL_THREE

    # The same seed on a fresh server draws the same delays; another seed does not.
    other_receiver = Receiver()
    other_receiver.start()
    try:
        second = hooked(server, other_receiver)
        again = seeded_offsets(second, other_receiver, 2024, 3)
        gaps = [abs(a - b) for x, y in zip(again, offsets, strict=True) for a, b in zip(x, y, strict=True)]
        assert max(gaps) < 1e-3, (again, offsets)
        different = seeded_offsets(second, other_receiver, 2025, 3)
        assert [round(d, 3) for d, _ in different] != [round(d, 3) for d, _ in offsets]
    finally:
        other_receiver.stop()


# --- 2. missing statuses ------------------------------------------------------------------------------

DROPS: list[tuple[str, str, dict[str, Any], list[str]]] = [
    ("skip_delivered", ALICE, {"skip_delivered": True}, ["sent", "read"]),
    ("never_reads", BRUNO, {"never_reads": True}, ["sent", "delivered"]),
    ("drop both", CHEN, {"drop": ["delivered", "read"]}, ["sent"]),
]


def test_dropped_statuses_never_come(server: ServerFactory, receiver: Receiver) -> None:
    srv = hooked(server, receiver)
    wamids = {}
    for case, user, layer, _ in DROPS:
        put_scenario(srv, layer, user)
        wamids[case] = srv.send_text(user, case)
    for case, _, _, expected in DROPS:
        wait_statuses(receiver, wamids[case], len(expected))
        wait_all_delivered(srv, wamids[case], len(expected))
        assert arrived(receiver, wamids[case]) == expected, case

    srv.advance_clock(DAY)  # a day later the log still holds nothing more to post
    for case, _, _, expected in DROPS:
        log = wait_all_delivered(srv, wamids[case], len(expected))
        assert [x.status for x in log] == expected, case
        assert arrived(receiver, wamids[case]) == expected, case


def test_with_statuses_off_the_sandbox_takes_messages_and_reports_nothing(
    server: ServerFactory, receiver: Receiver
) -> None:
    srv = hooked(server, receiver, {"OPENWABA_SANDBOX_STATUSES": "false"})
    sent = [srv.send_text(user, "quiet") for user in (ALICE, "15559990000")]  # a user, and not a user
    srv.advance_clock(DAY)
    hello = srv.user_says(ALICE, "still there?")  # the webhook works: inbound messages come
    receiver.wait_for_count(lambda r: r.message is not None and r.message["id"] == hello, 1, what="the inbound")
    assert [r.short() for r in receiver.requests if r.status is not None] == []
    wait_until(lambda: all(row["dispatched"] for row in srv.query(
        "SELECT dispatched FROM messages WHERE direction = 'out'")), what="the messages handed over")
    assert {row["wamid"] for row in srv.query("SELECT wamid FROM messages WHERE direction = 'out'")} == set(sent)


# --- 3. out of order ----------------------------------------------------------------------------------


def test_out_of_order_posts_read_before_delivered(server: ServerFactory, receiver: Receiver) -> None:
    srv = hooked(server, receiver)
    put_scenario(srv, {"out_of_order": True})
    wamid = srv.send_text(ALICE, "which came first?")
    wait_statuses(receiver, wamid, 3)
    assert arrived(receiver, wamid) == ["sent", "read", "delivered"]
    assert labels_by_status(wait_all_delivered(srv, wamid, 3)) == {
        "sent": [()], "read": [("out_of_order",)], "delivered": [("out_of_order",)]}


# --- 4. duplicates ------------------------------------------------------------------------------------


def test_duplicates_post_each_status_again_as_separate_deliveries(server: ServerFactory, receiver: Receiver) -> None:
    srv = hooked(server, receiver)
    put_scenario(srv, {"duplicates": 2})
    wamid = srv.send_text(ALICE, "say it thrice")
    got = wait_statuses(receiver, wamid, 9)
    assert len({r.webhook_id for r in got}) == 9, "every copy is its own webhook delivery"
    for status in ALL_THREE:
        copies = [r for r in got if r.status is not None and r.status["status"] == status]
        assert len(copies) == 3, status
        assert all(r.json == copies[0].json for r in copies), f"the copies of {status} differ"
    assert labels_by_status(wait_all_delivered(srv, wamid, 9)) == {
        status: [(), ("duplicate",), ("duplicate",)] for status in ALL_THREE}


# --- 5. failures --------------------------------------------------------------------------------------

ASYNC_CODES = [131026, 131047, 131049, 131050, 130472, 131053, 132018, 130403]
# code -> the HTTP status WhatsApp answers it with (three are server-side errors, as Meta documents).
SYNC_CODES = {130429: 400, 131056: 400, 131048: 400, 131031: 403, 131042: 400, 131000: 500, 131016: 503,
              131057: 500, 368: 403}


def test_asynchronous_failure_codes_arrive_as_a_failed_status(server: ServerFactory, receiver: Receiver) -> None:
    srv = hooked(server, receiver)
    for code in ASYNC_CODES:
        put_scenario(srv, {"fail": {"code": code}})
        wamid = send(srv, {**text_message(ALICE, f"fails with {code}"), "biz_opaque_callback_data": str(code)})
        failed = wait_failed(receiver, wamid)
        [error] = failed["errors"]
        assert error["code"] == code and error["title"] == error["message"], error
        assert INJECTED_NOTE in error["error_data"]["details"], error
        assert failed["biz_opaque_callback_data"] == str(code)
        [logged] = wait_all_delivered(srv, wamid, 1)
        assert (logged.status, logged.labels) == ("failed", ("failure",)), code

    # `next: 2`: exactly the next two fail, then messages are delivered again.
    assert put_scenario(srv, {"fail": {"code": 131049, "next": 2}})["fail"]["next"] == 2
    wamids = [srv.send_text(ALICE, f"message {n}") for n in range(3)]
    for wamid in wamids[:2]:
        assert wait_failed(receiver, wamid)["errors"][0]["code"] == 131049
    wait_statuses(receiver, wamids[2], 3)
    assert arrived(receiver, wamids[2]) == ALL_THREE
    assert srv.ok("GET", scenario_path())["scenario"] == {}, "a used-up count leaves nothing behind"


def test_synchronous_failure_codes_refuse_the_send(server: ServerFactory) -> None:
    srv = server()
    for code, status in SYNC_CODES.items():
        put_scenario(srv, {"fail": {"code": code}})
        reply = srv.call("POST", "/messages", text_message(ALICE, f"refused with {code}"))
        error = assert_graph_error(reply, code, status)
        assert INJECTED_NOTE in error["error_data"]["details"], error

    # `next: 3`: exactly the next three are refused, then sends go through again.
    put_scenario(srv, {"fail": {"code": 131048, "next": 3}})
    outcomes = [srv.call("POST", "/messages", text_message(ALICE, f"n {n}")).status for n in range(5)]
    assert outcomes == [400, 400, 400, 200, 200]
    assert srv.ok("GET", scenario_path())["scenario"] == {}


def failure_sequence(srv: Server, seed: int, sends: int = 40) -> list[int]:
    """1 for each refused send, 0 for each accepted one, under a 30 % failure with `seed`."""
    put_scenario(srv, {"seed": seed, "fail": {"code": 131000, "probability": 0.3}})
    outcomes = []
    for n in range(sends):
        reply = srv.call("POST", "/messages", text_message(CHEN, f"maybe {n}"))
        assert reply.status in (200, 500), reply.body
        outcomes.append(int(reply.status == 500))
    return outcomes


def test_a_failure_probability_with_a_seed_repeats_across_servers(server: ServerFactory) -> None:
    first = failure_sequence(server(), 42)
    second_server = server()
    assert failure_sequence(second_server, 42) == first
    assert 0.15 <= sum(first) / len(first) <= 0.45, first
    assert failure_sequence(second_server, 43) != first, "another seed, another sequence"


# --- 6. layers ----------------------------------------------------------------------------------------


def test_a_users_layer_wins_field_by_field_until_deleted(server: ServerFactory, receiver: Receiver) -> None:
    srv = hooked(server, receiver)
    number = put_scenario(srv, {"never_reads": True, "duplicates": 1})
    assert number == {"drop": ["read"], "duplicates": 1}
    assert put_scenario(srv, {"drop": []}, ALICE) == {"drop": []}
    assert srv.ok("GET", scenario_path(ALICE)) == {"scenario": {"drop": []},
                                                   "effective": {"drop": [], "duplicates": 1}}

    alice, bruno = srv.send_text(ALICE, "you read"), srv.send_text(BRUNO, "you do not")
    assert sorted(x.status for x in wait_all_delivered(srv, alice, 6)) == sorted(ALL_THREE * 2)
    assert sorted(x.status for x in wait_all_delivered(srv, bruno, 4)) == sorted(["sent", "delivered"] * 2)

    assert srv.ok("DELETE", scenario_path(ALICE)) == {"scenario": {}}
    assert srv.ok("GET", scenario_path(ALICE)) == {"scenario": {}, "effective": number}
    again = srv.send_text(ALICE, "now you do not either")
    assert sorted(x.status for x in wait_all_delivered(srv, again, 4)) == sorted(["sent", "delivered"] * 2)

    # The user's failure wins over the number's.
    put_scenario(srv, {"fail": {"code": 131050}})
    put_scenario(srv, {"fail": {"code": 131049}}, ALICE)
    assert wait_failed(receiver, srv.send_text(ALICE, "a"))["errors"][0]["code"] == 131049
    assert wait_failed(receiver, srv.send_text(BRUNO, "b"))["errors"][0]["code"] == 131050


# --- 8. users acting (with 9 and 10 on the same server) -----------------------------------------------


@dataclass
class Phone:
    """A server whose simulated users act, the receiver of its webhooks, and a business message to Alice."""

    srv: Server
    receiver: Receiver
    business_wamid: str


# Two more users for the rule and script tests, which share the module's server: each
# touches only its own user (and that user's scenario layer), so the tests stay independent.
DANA, EVAN = "15551230004", "15551230005"


@pytest.fixture(scope="module")
def phone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Phone]:
    factory = ServerFactory(tmp_path_factory.mktemp("acting"), DEFAULT_ENV)
    rx = Receiver()
    rx.start()
    try:
        srv = factory({"OPENWABA_SANDBOX_USERS": ",".join((ALICE, BRUNO, CHEN, DANA, EVAN))})
        srv.set_webhook(rx.url)
        yield Phone(srv, rx, srv.send_text(ALICE, "hello from the business"))
    finally:
        rx.stop()
        factory.close()


LOCATION = {"latitude": 52.516275, "longitude": 13.377704, "name": "Brandenburger Tor", "address": "Pariser Platz"}
# case -> (action body given the business wamid, expected type, expected content, whether it quotes the business)
ACTIONS: list[tuple[str, Callable[[str], dict[str, Any]], str, Callable[[str], Any], bool]] = [
    ("text", lambda w: {"text": "hello there"}, "text", lambda w: {"body": "hello there"}, False),
    ("location", lambda w: {"type": "location", "location": LOCATION}, "location", lambda w: LOCATION, False),
    ("contacts", lambda w: {"type": "contacts", "contacts": [CONTACT_CARD]}, "contacts", lambda w: [CONTACT_CARD],
     False),
    ("reaction", lambda w: {"type": "reaction", "reaction": {"message_id": w, "emoji": "\U0001f44d"}}, "reaction",
     lambda w: {"message_id": w, "emoji": "\U0001f44d"}, False),
    ("reply with context", lambda w: {"text": "replying to you", "context": {"message_id": w}}, "text",
     lambda w: {"body": "replying to you"}, True),
]


@pytest.mark.parametrize(("case", "body", "kind", "content", "quotes"), ACTIONS, ids=[a[0] for a in ACTIONS])
def test_a_user_action_arrives_as_its_webhook(
    phone: Phone, case: str, body: Callable[[str], dict[str, Any]], kind: str, content: Callable[[str], Any],
    quotes: bool,
) -> None:
    wamid = act(phone.srv, ALICE, body(phone.business_wamid))
    message = wait_inbound(phone.receiver, wamid)
    assert message["from"] == ALICE and message["type"] == kind, message
    assert message[kind] == content(phone.business_wamid), message
    if quotes:
        assert message["context"]["id"] == phone.business_wamid, message
    else:
        assert "context" not in message, message


def test_the_phone_view_shows_what_a_users_reply_quotes(phone: Phone) -> None:
    wamid = act(phone.srv, ALICE, {"text": "quoting you", "context": {"message_id": phone.business_wamid}})
    assert wait_inbound(phone.receiver, wamid)["context"]["id"] == phone.business_wamid  # the webhook has it
    chat = {m["id"]: m for m in phone.srv.ok("GET", f"/sandbox/users/{ALICE}/messages")["messages"]}
    assert chat[wamid].get("context") == {"id": phone.business_wamid}, chat[wamid]


FILES = [("image", FilePart(JPEG, "image/jpeg", "photo.jpg")), ("document", FilePart(PDF, "application/pdf", "a.pdf")),
         ("audio", FilePart(OGG, "audio/ogg", "voice.ogg")), ("video", FilePart(MP4, "video/mp4", "clip.mp4"))]


@pytest.mark.parametrize(("kind", "part"), FILES, ids=[f[0] for f in FILES])
def test_a_user_sends_a_file_the_business_can_download(phone: Phone, kind: str, part: FilePart) -> None:
    reply = post_form(phone.srv, f"/sandbox/users/{BRUNO}/messages", {"caption": "for you"}, part)
    assert reply.status == 200, reply.body
    message = wait_inbound(phone.receiver, reply.json()["messages"][0]["id"])
    assert message["type"] == kind and message[kind]["mime_type"] == part.content_type, message
    meta = phone.srv.ok("GET", f"/{message[kind]['id']}")
    downloaded = http("GET", meta["url"], headers={KEY_HEADER: phone.srv.api_key or ""})
    assert downloaded.status == 200 and downloaded.body == part.content


TAPS = [("button_reply", "button", "no-1", {"id": "no-1", "title": "No"}),
        ("list_reply", "list", "cake", {"id": "cake", "title": "Cake"})]


@pytest.mark.parametrize(("tap", "interactive", "choice", "expected"), TAPS, ids=[t[0] for t in TAPS])
def test_a_tap_on_an_interactive_message_arrives_with_its_choice(
    phone: Phone, tap: str, interactive: str, choice: str, expected: dict[str, str]
) -> None:
    tapped = send(phone.srv, cloud(CHEN, "interactive", interactive_examples()[interactive]))
    message = wait_inbound(phone.receiver, act(phone.srv, CHEN, {"type": tap, "message_id": tapped, "id": choice}))
    assert message["type"] == "interactive", message
    assert message["interactive"] == {"type": tap, tap: expected}, message
    assert message["context"]["id"] == tapped, message


QUICK_REPLY_TEMPLATE = {
    "name": "delivery_slot", "language": "en_US", "category": "UTILITY",
    "components": [{"type": "BODY", "text": "Your parcel arrives tomorrow. Does that suit you?"},
                   {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Yes"},
                                                   {"type": "QUICK_REPLY", "text": "Another day"}]}],
}


def approved_quick_reply_template(srv: Server) -> str:
    """The name of an approved template with quick-reply buttons (created and reviewed if needed)."""
    def find() -> str | None:
        for template in srv.ok("GET", "/v1/configs/templates")["waba_templates"]:
            buttons = [b for c in template["components"] if c["type"] == "BUTTONS" for b in c["buttons"]]
            if template["status"] == "approved" and [b["type"] for b in buttons][:2] == ["QUICK_REPLY"] * 2:
                return str(template["name"])
        return None
    if find() is None:
        created = srv.call("POST", "/v1/configs/templates", QUICK_REPLY_TEMPLATE)
        assert created.status == 201, created.body
        srv.advance_clock(3)  # past the sandbox's review (2 s by default)
    return wait_until(find, what="an approved quick-reply template")


def test_a_template_quick_reply_tap_carries_the_payload(phone: Phone) -> None:
    name = approved_quick_reply_template(phone.srv)
    button = {"type": "button", "sub_type": "quick_reply", "index": "1",
              "parameters": [{"type": "payload", "payload": "RESCHEDULE-42"}]}
    sent = send(phone.srv, cloud(BRUNO, "template", {"name": name, "language": {"code": "en_US"},
                                                     "components": [button]}))
    for index, expected in ((1, {"payload": "RESCHEDULE-42", "text": "Another day"}),
                            (0, {"payload": "Yes", "text": "Yes"})):  # no payload given: the button's text
        message = wait_inbound(phone.receiver, act(phone.srv, BRUNO, {"type": "button", "message_id": sent,
                                                                     "index": index}))
        assert message["type"] == "button" and message["button"] == expected, message
        assert message["context"]["id"] == sent, message


# --- 9. rules -----------------------------------------------------------------------------------------


def test_a_rule_answers_a_matching_business_message(phone: Phone) -> None:
    srv, receiver = phone.srv, phone.receiver
    put_scenario(srv, {"rules": [{"contains": "price", "reply": "How much is it?"}]}, DANA)
    ignored = srv.send_text(DANA, "Good morning")
    wait_statuses(receiver, ignored, 1)  # handed over: had a rule matched, its answer would be stored now
    asked = srv.send_text(DANA, "Our PRICE list is ready")
    srv.advance_clock(1)  # the user answers half a second after the last status
    answer = wait_message(receiver, lambda m: m.get("text", {}).get("body") == "How much is it?", "the rule's answer")
    assert answer.message is not None and answer.message["context"]["id"] == asked, answer.message
    assert answer.message["from"] == DANA
    chat = srv.ok("GET", f"/sandbox/users/{DANA}/messages")["messages"]
    said = [m["text"]["body"] for m in reversed(chat) if m["direction"] == "inbound"]
    assert said == ["Hi! \U0001f44b", "How much is it?"], "only the message with the word gets an answer"


# --- 10. scripts --------------------------------------------------------------------------------------

SCRIPT = [
    {"expect": "welcome", "reply": "show me the menu"},
    {"expect": {"type": "interactive", "contains": "pick"}, "reply": {"type": "button_reply", "id": "yes-1"}},
    {"expect": "thanks"},
]


def script_progress(srv: Server, wa_id: str) -> dict[str, Any]:
    progress: dict[str, Any] = srv.ok("GET", f"/sandbox/users/{wa_id}/script")
    return progress


def test_a_script_runs_a_conversation_and_records_a_mismatch(phone: Phone) -> None:
    srv, receiver = phone.srv, phone.receiver
    put_scenario(srv, {"script": SCRIPT}, EVAN)
    assert script_progress(srv, EVAN) == {"steps": 3, "done": 0, "finished": False, "mismatches": []}

    srv.send_text(EVAN, "Welcome to the shop!")
    srv.advance_clock(1)
    wait_message(receiver, lambda m: m["from"] == EVAN and m.get("text", {}).get("body") == "show me the menu",
                 "the scripted text")

    wrong = srv.send_text(EVAN, "Something else entirely")
    progress = wait_until(lambda: (p := script_progress(srv, EVAN))["mismatches"] and p, what="a mismatch")
    assert progress["done"] == 1 and not progress["finished"]
    assert progress["mismatches"] == [{"step": 1, "expected": {"type": "interactive", "contains": "pick"},
                                       "got": {"id": wrong, "type": "text", "text": "Something else entirely"}}]

    menu = send(srv, cloud(EVAN, "interactive", interactive_examples()["button"]))  # body: "Pick one"
    srv.advance_clock(1)
    tap = wait_message(receiver, lambda m: m["from"] == EVAN and m["type"] == "interactive", "the scripted tap")
    assert tap.message is not None and tap.message["context"]["id"] == menu, "no message_id: the matched one is tapped"
    assert tap.message["interactive"] == {"type": "button_reply", "button_reply": {"id": "yes-1", "title": "Yes"}}

    srv.send_text(EVAN, "Thanks for your order")
    finished = wait_until(lambda: (p := script_progress(srv, EVAN))["finished"] and p, what="the script's end")
    assert finished["done"] == 3 and len(finished["mismatches"]) == 1


# --- 11. the clock ------------------------------------------------------------------------------------


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_the_clock_moves_the_retry_schedule_and_the_window(server: ServerFactory, receiver: Receiver) -> None:
    srv = hooked(server, receiver)
    # A failing receiver: the next attempt waits for the schedule's first delay (5 s, no jitter) on the clock.
    receiver.respond_with(500)
    retried = srv.user_says(BRUNO, "retry me")
    [first] = receiver.wait_for_count(lambda r: r.message is not None and r.message["id"] == retried, 1)
    assert first.answered == 500

    def failed_once() -> dict[str, Any] | None:
        rows = [d for d in srv.ok("GET", "/deliveries")["deliveries"] if d["event"]["wamid"] == retried]
        return rows[0] if rows and rows[0]["attempts_made"] == 1 and rows[0]["last_status"] == 500 else None
    row = wait_until(failed_once, what="the failed attempt recorded")
    [attempt] = srv.ok("GET", f"/deliveries/{row['id']}")["attempts"]
    assert row["state"] == "pending" and abs(row["next_attempt_at"] - attempt["at"] - 5) < 0.5, (row, attempt)
    assert len(receiver.requests) == 1
    srv.advance_clock(5)
    [_, second] = receiver.wait_for_count(lambda r: r.message is not None and r.message["id"] == retried, 2)
    assert second.webhook_id == first.webhook_id and second.answered == 200

    # `set` (ISO 8601) 25 h ahead: Alice's hello from the start is too old for a free-form message.
    target = int(clock_now(srv) + 25 * 3600)
    assert target <= srv.ok("POST", "/sandbox/clock", {"set": iso(target)})["now"] < target + 5
    late = srv.send_text(ALICE, "25 hours after your hello")
    assert wait_failed(receiver, late)["errors"][0]["code"] == 131047
    [logged] = wait_all_delivered(srv, late, 1)
    assert logged.labels == (), "WhatsApp's own rule, not an injected fault"

    # The user writes again: 23 h later the window is still open ...
    srv.user_says(ALICE, "back again")
    srv.advance_clock(23 * 3600)
    inside = srv.send_text(ALICE, "23 hours later")
    wait_statuses(receiver, inside, 3)
    assert arrived(receiver, inside) == ALL_THREE
    # ... and `set` (Unix seconds) 1 h 10 s further closes it.
    target = int(clock_now(srv) + 3610)
    assert target <= srv.ok("POST", "/sandbox/clock", {"set": target})["now"] < target + 5
    closed = srv.send_text(ALICE, "24 hours and ten seconds later")
    assert wait_failed(receiver, closed)["errors"][0]["code"] == 131047


# --- 12. the scenario file ----------------------------------------------------------------------------


def test_the_scenario_file_is_applied_at_start(server: ServerFactory, receiver: Receiver, tmp_path: Path) -> None:
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps({"scenario": {"never_reads": True, "seed": 7},
                                "users": {BRUNO: {"fail": {"code": 131050}}}}))
    srv = hooked(server, receiver, {"OPENWABA_SANDBOX_SCENARIO": str(path)})
    assert srv.ok("GET", scenario_path()) == {"scenario": {"drop": ["read"], "seed": 7}}
    assert srv.ok("GET", scenario_path(BRUNO))["scenario"] == {"fail": {"code": 131050, "probability": 1.0}}

    alice = srv.send_text(ALICE, "no read for you")
    assert [x.status for x in wait_all_delivered(srv, alice, 2)] == ["sent", "delivered"]
    assert wait_failed(receiver, srv.send_text(BRUNO, "fails"))["errors"][0]["code"] == 131050


def test_a_bad_scenario_file_stops_the_start_naming_the_field(server: ServerFactory, tmp_path: Path) -> None:
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps({"scenario": {"duplicates": 9}}))
    srv = server({"OPENWABA_SANDBOX_SCENARIO": str(path)}, start=False)
    with pytest.raises(RuntimeError, match="exited") as failure:
        srv.start()
    assert "duplicates" in str(failure.value)


# --- 13. every injected fault is labelled -------------------------------------------------------------


def test_every_injected_fault_is_labelled_in_the_delivery_log(server: ServerFactory, receiver: Receiver) -> None:
    srv = hooked(server, receiver)
    put_scenario(srv, {"out_of_order": True, "duplicates": 1}, ALICE)
    put_scenario(srv, {"fail": {"code": 131026}}, BRUNO)
    put_scenario(srv, {"delays": {"read": 10}}, CHEN)
    shuffled, failed, late = (srv.send_text(user, "labelled") for user in (ALICE, BRUNO, CHEN))
    wait_statuses(receiver, late, 1)  # scenarios apply at hand-over: only then may Chen's layer go
    srv.advance_clock(11)
    srv.ok("DELETE", scenario_path(CHEN))
    plain = srv.send_text(CHEN, "nothing injected")
    inbound = srv.user_says(CHEN, "nor here")

    expected: list[tuple[str, int, dict[str, list[tuple[str, ...]]]]] = [
        (shuffled, 6, {"sent": [(), ("duplicate",)], "delivered": [("out_of_order",), ("out_of_order", "duplicate")],
                       "read": [("out_of_order",), ("out_of_order", "duplicate")]}),
        (failed, 1, {"failed": [("failure",)]}),
        (late, 3, {"sent": [()], "delivered": [()], "read": [("delay",)]}),
        (plain, 3, {"sent": [()], "delivered": [()], "read": [()]}),
    ]
    for wamid, count, labels in expected:
        assert labels_by_status(wait_all_delivered(srv, wamid, count)) == labels, wamid
    [message] = wait_until(lambda: [d for d in srv.ok("GET", "/deliveries")["deliveries"]
                                    if d["event"]["wamid"] == inbound] or None, what="the inbound delivery")
    assert message["event"]["kind"] == "message" and message["injected"] == []


# --- 14. bad documents --------------------------------------------------------------------------------

BAD_SCENARIOS: list[tuple[str, Any, str]] = [
    ("unknown field", {"speed": 1}, "speed"),
    ("delays not an object", {"delays": 5}, "delays"),
    ("delays of an unknown status", {"delays": {"seen": 1}}, "delays"),
    ("negative delay", {"delays": {"sent": -1}}, "delays.sent"),
    ("delay over a week", {"delays": {"read": 604801}}, "delays.read"),
    ("low above high", {"delays": {"delivered": [5, 1]}}, "delays.delivered"),
    ("drop sent", {"drop": ["sent"]}, "drop"),
    ("never_reads not a flag", {"never_reads": "yes"}, "never_reads"),
    ("skip_delivered not a flag", {"skip_delivered": 1}, "skip_delivered"),
    ("out_of_order not a flag", {"out_of_order": "true"}, "out_of_order"),
    ("too many duplicates", {"duplicates": 6}, "duplicates"),
    ("duplicates a flag", {"duplicates": True}, "duplicates"),
    ("fail without a code", {"fail": {}}, "fail.code"),
    ("fail with a code it cannot inject", {"fail": {"code": 131051}}, "fail.code"),
    ("fail probability above 1", {"fail": {"code": 131026, "probability": 1.5}}, "fail.probability"),
    ("fail next 0", {"fail": {"code": 131026, "next": 0}}, "next"),
    ("fail with an unknown key", {"fail": {"code": 131026, "after": 2}}, "fail"),
    ("negative seed", {"seed": -1}, "seed"),
    ("rule without a reply", {"rules": [{"contains": "x"}]}, "rules"),
    ("rule with an empty reply", {"rules": [{"contains": "x", "reply": ""}]}, "reply"),
    ("script not a list", {"script": "hi"}, "script"),
    ("script step without expect", {"script": [{"reply": "hi"}]}, "expect"),
    ("script expect a number", {"script": [{"expect": 5}]}, "script[0].expect"),
    ("script tap without an id", {"script": [{"expect": "menu", "reply": {"type": "button_reply"}}]},
     "script[0].reply"),
    ("not an object", [], "JSON object"),
]


def assert_refused(reply: Reply, names: str, status: int = 400) -> None:
    assert reply.status == status, f"expected {status}, got {reply.status}: {reply.body!r}"
    body = reply.json()
    assert set(body) == {"error"} and isinstance(body["error"], str), body
    assert names in body["error"], body


@pytest.mark.parametrize("wa_id", [None, ALICE], ids=["number", "user"])
@pytest.mark.parametrize(("case", "document", "names"), BAD_SCENARIOS, ids=[c[0] for c in BAD_SCENARIOS])
def test_a_bad_scenario_is_refused_naming_the_field(
    shared_server: Server, wa_id: str | None, case: str, document: Any, names: str
) -> None:
    assert_refused(shared_server.call("PUT", scenario_path(wa_id), document), names)
    assert shared_server.ok("GET", scenario_path(wa_id))["scenario"] == {}, "a refused scenario changes nothing"


def test_seed_is_for_the_number_and_users_must_exist(shared_server: Server) -> None:
    assert_refused(shared_server.call("PUT", scenario_path(ALICE), {"seed": 1}), "seed")
    assert_refused(shared_server.call("PUT", scenario_path("15559990000"), {}), "15559990000", 404)


BAD_CLOCK: list[tuple[str, Any, str]] = [
    ("neither", {}, "advance_seconds"),
    ("both", {"advance_seconds": 1, "set": 1}, "advance_seconds"),
    ("backwards", {"advance_seconds": -5}, "advance_seconds"),
    ("seconds as text", {"advance_seconds": "10"}, "advance_seconds"),
    ("set in the past", {"set": "2000-01-01T00:00:00Z"}, "set"),
    ("set without an offset", {"set": "2099-01-01T00:00:00"}, "set"),
]


@pytest.mark.parametrize(("case", "body", "names"), BAD_CLOCK, ids=[c[0] for c in BAD_CLOCK])
def test_a_bad_clock_move_is_refused(shared_server: Server, case: str, body: Any, names: str) -> None:
    before = clock_now(shared_server)
    assert_refused(shared_server.call("POST", "/sandbox/clock", body), names)
    assert clock_now(shared_server) - before < 5, "a refused move leaves the clock alone"

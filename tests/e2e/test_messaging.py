"""End-to-end: sending every message type through `POST /messages` (Cloud) and
`POST /v1/messages` (On-Premise), their status webhooks, validation errors as
clients see them, mark-as-read and the typing indicator, and the On-Premise
webhook format. Validation rules one by one are the unit tests' job; here each
rule family is exercised once through the real HTTP path.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import DEFAULT_ENV
from .messaging_support import (
    HELLO_WORLD,
    MEDIA_FILES,
    UNKNOWN_RECIPIENT,
    assert_graph_error,
    assert_on_premise_error,
    assert_on_premise_meta,
    cloud,
    flat_items,
    inbound_ids,
    interactive_examples,
    make_seeded_number_on_premise,
    status_events,
    stored_counts,
    upload_media,
    user_view,
    valid_examples,
    wait_flat,
    wait_for_status_events,
    wait_statuses,
)
from .routing_support import PARTNER_ENV, new_number
from .support import (
    ALICE,
    BRUNO,
    CHEN,
    USER_NAMES,
    Receiver,
    Reply,
    Server,
    ServerFactory,
    text_message,
    wait_until,
)

pytestmark = pytest.mark.e2e

ALL_THREE = {"sent", "delivered", "read"}


@dataclass
class Stage:
    """One server with its webhook at one receiver, for the tests that only send
    (the clock is never moved on it)."""

    srv: Server
    receiver: Receiver
    greetings: dict[str, str]  # wa_id -> the wamid of the user's first-start "Hi! 👋"
    media: dict[str, str]  # message type -> an uploaded media id


@pytest.fixture(scope="module")
def stage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stage]:
    factory = ServerFactory(tmp_path_factory.mktemp("messaging"), DEFAULT_ENV)
    receiver = Receiver()
    receiver.start()
    try:
        srv = factory()
        srv.set_webhook(receiver.url)
        greetings = {wa_id: inbound_ids(srv, wa_id)[0] for wa_id in (ALICE, BRUNO, CHEN)}
        media = {kind: upload_media(srv, kind) for kind in MEDIA_FILES}
        yield Stage(srv, receiver, greetings, media)
    finally:
        receiver.stop()
        factory.close()


def assert_nothing_stored(srv: Server, before: tuple[int, int], reply: Reply) -> None:
    """A rejected send stored no message and no event (so nothing will ever be posted for it)."""
    assert stored_counts(srv) == before, f"a rejected request stored something: {reply.body!r}"


# --- every message type is accepted and reported ------------------------------------------------

EXAMPLE_IDS = list(valid_examples(ALICE, "wamid.x", {kind: "1" for kind in MEDIA_FILES}))


@pytest.mark.parametrize("example", EXAMPLE_IDS)
def test_every_message_type_is_accepted_and_gets_its_status_webhooks(stage: Stage, example: str) -> None:
    srv, receiver = stage.srv, stage.receiver
    body = valid_examples(ALICE, stage.greetings[ALICE], stage.media)[example]
    callback = f"cb-{example}-\u00e9"
    body["biz_opaque_callback_data"] = callback

    reply = srv.call("POST", "/messages", body)
    assert reply.status == 200, reply.body
    answer = reply.json()
    assert set(answer) == {"messaging_product", "contacts", "messages"}, answer
    assert answer["messaging_product"] == "whatsapp"
    assert answer["contacts"] == [{"input": ALICE, "wa_id": ALICE}]
    [message] = answer["messages"]
    wamid = message["id"]
    assert isinstance(wamid, str) and wamid.startswith("wamid."), answer

    # A reaction is only ever `sent` (360dialog documents this); everything else sent, delivered, read.
    expected = {"sent"} if body["type"] == "reaction" else ALL_THREE
    got = wait_statuses(receiver, wamid, expected)
    # The sandbox stores all statuses of a message at once: this is all it will ever get.
    assert len(status_events(srv, wamid)) == len(expected), status_events(srv, wamid)
    arrived = [r.status["status"] for r in receiver.statuses_of(wamid)]  # type: ignore[index]
    assert arrived == [s for s in ("sent", "delivered", "read") if s in expected], arrived
    for status in got.values():
        assert status["recipient_id"] == ALICE
        assert status["biz_opaque_callback_data"] == callback, status
        assert "errors" not in status

    # The user's phone shows it, with the type that was sent.
    [shown] = [m for m in user_view(srv, ALICE)["messages"] if m["id"] == wamid]
    assert shown["direction"] == "outbound" and shown["type"] == body["type"], shown
    if "context" in body:
        assert shown["context"] == {"id": stage.greetings[ALICE]}


def test_uploaded_media_of_another_number_cannot_be_sent(server: ServerFactory) -> None:
    srv = server(PARTNER_ENV)
    other = new_number(srv)
    foreign = upload_media(srv, "image", key=other.key)
    reply = srv.call("POST", "/messages", cloud(ALICE, "image", {"id": foreign}))
    assert "media id" in assert_graph_error(reply, 100)
    own = upload_media(srv, "image")
    assert srv.call("POST", "/messages", cloud(ALICE, "image", {"id": own})).status == 200


# --- broken bodies ------------------------------------------------------------------------------


def _text(**extra: Any) -> dict[str, Any]:
    return cloud(ALICE, "text", {"body": "hi"}, **extra)


def _without(body: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != key}


_BUTTON = interactive_examples()["button"]
_LIST = interactive_examples()["list"]
_FLOW = interactive_examples()["flow"]
_REPLY = {"type": "reply", "reply": {"id": "a", "title": "A"}}

# (id, body, code, HTTP status). Bodies are JSON values; bytes are sent as they are.
BROKEN: list[tuple[str, Any, int, int]] = [
    # the envelope
    ("not-json", b'{"messaging_product": "whatsapp", "to":', 100, 400),
    ("json-array", [_text()], 100, 400),
    ("no-messaging_product", _without(_text(), "messaging_product"), 131008, 400),
    ("messaging_product-sms", {**_text(), "messaging_product": "sms"}, 131009, 400),
    ("no-to", _without(_text(), "to"), 131008, 400),
    ("to-letters", {**_text(), "to": "alice"}, 131009, 400),
    ("to-too-short", {**_text(), "to": "+1 23"}, 131009, 400),
    ("to-a-number", {**_text(), "to": int(ALICE)}, 100, 400),
    ("type-unknown", cloud(ALICE, "hologram", {"body": "hi"}), 131051, 400),
    ("type-not-a-string", {**_text(), "type": 5}, 100, 400),
    ("recipient_type-group", {**_text(), "recipient_type": "group"}, 131009, 400),
    ("unknown-top-level-key", {**_text(), "priority": "high"}, 100, 400),
    ("second-type-object", {**_text(), "image": {"link": "https://example.com/a.jpg"}}, 100, 400),
    ("preview_url-at-top-level", {**_text(), "preview_url": True}, 100, 400),
    ("callback-data-over-512", {**_text(), "biz_opaque_callback_data": "x" * 513}, 131009, 400),
    ("context-without-message_id", {**_text(), "context": {}}, 131008, 400),
    # text
    ("text-missing", _without(_text(), "text"), 131008, 400),
    ("text-body-empty", cloud(ALICE, "text", {"body": ""}), 131008, 400),
    ("text-body-over-4096", cloud(ALICE, "text", {"body": "x" * 4097}), 131009, 400),
    ("text-body-a-number", cloud(ALICE, "text", {"body": 5}), 100, 400),
    ("text-a-string", cloud(ALICE, "text", "hi"), 100, 400),
    ("text-preview_url-a-string", cloud(ALICE, "text", {"body": "hi", "preview_url": "yes"}), 100, 400),
    ("text-unknown-key", cloud(ALICE, "text", {"body": "hi", "bold": True}), 100, 400),
    # media
    ("image-id-and-link", cloud(ALICE, "image", {"id": "1", "link": "https://example.com/a.jpg"}), 131009, 400),
    ("image-neither-id-nor-link", cloud(ALICE, "image", {"caption": "?"}), 131009, 400),
    ("image-link-ftp", cloud(ALICE, "image", {"link": "ftp://example.com/a.jpg"}), 131009, 400),
    ("image-caption-over-1024", cloud(ALICE, "image", {"link": "https://e.com/a", "caption": "x" * 1025}),
     131009, 400),
    ("image-unknown-media-id", cloud(ALICE, "image", {"id": "424242424242"}), 100, 400),
    ("image-provider-is-on-premise-only", cloud(ALICE, "image", {"link": "https://e.com/a", "provider": {"name": "p"}}),
     100, 400),
    ("sticker-caption", cloud(ALICE, "sticker", {"link": "https://e.com/a.webp", "caption": "no"}), 100, 400),
    ("audio-caption", cloud(ALICE, "audio", {"link": "https://e.com/a.ogg", "caption": "no"}), 100, 400),
    ("document-missing", _without(cloud(ALICE, "document", {}), "document"), 131008, 400),
    # location
    ("location-no-latitude", cloud(ALICE, "location", {"longitude": 2.0}), 131008, 400),
    ("location-latitude-91", cloud(ALICE, "location", {"latitude": 91, "longitude": 2}), 131009, 400),
    ("location-latitude-a-word", cloud(ALICE, "location", {"latitude": "north", "longitude": 2}), 100, 400),
    # contacts
    ("contacts-empty", cloud(ALICE, "contacts", []), 131009, 400),
    ("contacts-an-object", cloud(ALICE, "contacts", {"name": {"formatted_name": "J"}}), 100, 400),
    ("contacts-no-name", cloud(ALICE, "contacts", [{"phones": [{"phone": "+1 555"}]}]), 131008, 400),
    ("contacts-bad-birthday", cloud(ALICE, "contacts", [{"name": {"formatted_name": "J"}, "birthday": "1990-02-30"}]),
     131009, 400),
    ("contacts-ims-is-on-premise-only", cloud(ALICE, "contacts", [{"name": {"formatted_name": "J"}, "ims": []}]),
     100, 400),
    # interactive
    ("interactive-type-carousel", cloud(ALICE, "interactive", {**_BUTTON, "type": "carousel"}), 131009, 400),
    ("interactive-no-type", cloud(ALICE, "interactive", _without(_BUTTON, "type")), 131008, 400),
    ("button-four-buttons", cloud(ALICE, "interactive", {**_BUTTON, "action": {"buttons": [
        {"type": "reply", "reply": {"id": str(i), "title": f"B{i}"}} for i in range(4)]}}), 131009, 400),
    ("button-title-over-20", cloud(ALICE, "interactive", {**_BUTTON, "action": {"buttons": [
        {"type": "reply", "reply": {"id": "a", "title": "x" * 21}}]}}), 131009, 400),
    ("button-duplicate-ids", cloud(ALICE, "interactive", {**_BUTTON, "action": {"buttons": [
        _REPLY, {"type": "reply", "reply": {"id": "a", "title": "B"}}]}}), 131009, 400),
    ("button-no-body", cloud(ALICE, "interactive", _without(_BUTTON, "body")), 131008, 400),
    ("list-eleven-rows", cloud(ALICE, "interactive", {**_LIST, "action": {"button": "Go", "sections": [
        {"rows": [{"id": str(i), "title": f"R{i}"} for i in range(11)]}]}}), 131009, 400),
    ("list-image-header", cloud(ALICE, "interactive", {**_LIST, "header": {"type": "image",
                                                                           "image": {"link": "https://e.com/a"}}}),
     131009, 400),
    ("product-with-header", cloud(ALICE, "interactive", {**interactive_examples()["product"],
                                                         "header": {"type": "text", "text": "no"}}), 131009, 400),
    ("product_list-no-header", cloud(ALICE, "interactive", _without(interactive_examples()["product_list"], "header")),
     131008, 400),
    ("cta_url-not-a-url", cloud(ALICE, "interactive", {**interactive_examples()["cta_url"], "action": {
        "name": "cta_url", "parameters": {"display_text": "Go", "url": "example.com"}}}), 131009, 400),
    ("flow-id-and-name", cloud(ALICE, "interactive", {**_FLOW, "action": {"name": "flow", "parameters": {
        **_FLOW["action"]["parameters"], "flow_name": "booking"}}}), 131009, 400),
    ("flow-version-2", cloud(ALICE, "interactive", {**_FLOW, "action": {"name": "flow", "parameters": {
        **_FLOW["action"]["parameters"], "flow_message_version": "2"}}}), 131009, 400),
    # template
    ("template-no-name", cloud(ALICE, "template", {"language": {"code": "en_US"}}), 131008, 400),
    ("template-no-language", cloud(ALICE, "template", {"name": "hello_world"}), 131008, 400),
    ("template-component-type-footer", cloud(ALICE, "template", {**HELLO_WORLD, "components": [
        {"type": "footer", "parameters": []}]}), 131009, 400),
    ("template-namespace-is-on-premise-only", cloud(ALICE, "template", {**HELLO_WORLD, "namespace": "ns"}), 100, 400),
    # reaction
    ("reaction-no-message_id", cloud(ALICE, "reaction", {"emoji": "\U0001f44d"}), 131008, 400),
    ("reaction-emoji-a-word", cloud(ALICE, "reaction", {"message_id": "wamid.x", "emoji": "like"}), 131009, 400),
    ("reaction-two-emoji", cloud(ALICE, "reaction", {"message_id": "wamid.x", "emoji": "\U0001f44d\U0001f44d"}),
     131009, 400),
]


@pytest.mark.parametrize(("body", "code", "status"), [case[1:] for case in BROKEN], ids=[case[0] for case in BROKEN])
def test_broken_bodies_get_a_graph_error_and_change_nothing(stage: Stage, body: Any, code: int, status: int) -> None:
    srv = stage.srv
    before = stored_counts(srv)
    if isinstance(body, bytes):
        reply = srv.call("POST", "/messages", data=body)
    else:
        reply = srv.call("POST", "/messages", copy.deepcopy(body))
    assert_graph_error(reply, code, status)
    assert_nothing_stored(srv, before, reply)


# (id, body, code, HTTP status): the template is checked against the stored one at once.
TEMPLATE_MISMATCH: list[tuple[str, dict[str, Any], int, int]] = [
    ("unknown-name", {"name": "no_such_template", "language": {"code": "en_US"}}, 132001, 404),
    ("unknown-language", {"name": "hello_world", "language": {"code": "de"}}, 132001, 404),
    ("a-parameter-too-many", {**HELLO_WORLD, "components": [
        {"type": "body", "parameters": [{"type": "text", "text": "extra"}]}]}, 132000, 400),
]


@pytest.mark.parametrize(("template", "code", "status"), [c[1:] for c in TEMPLATE_MISMATCH],
                         ids=[c[0] for c in TEMPLATE_MISMATCH])
def test_template_that_does_not_match_the_stored_one_is_refused(
    stage: Stage, template: dict[str, Any], code: int, status: int
) -> None:
    before = stored_counts(stage.srv)
    reply = stage.srv.call("POST", "/messages", cloud(ALICE, "template", template))
    assert_graph_error(reply, code, status)
    assert_nothing_stored(stage.srv, before, reply)


def test_a_wrong_key_sends_nothing(stage: Stage) -> None:
    before = stored_counts(stage.srv)
    for key in (None, "not-a-key"):
        reply = stage.srv.call("POST", "/messages", text_message(ALICE, "hi"), key=key)
        assert reply.status == 401, reply.body
    assert stored_counts(stage.srv) == before


# --- mark as read and the typing indicator --------------------------------------------------------


def _read(message_id: str, **extra: Any) -> dict[str, Any]:
    return {"messaging_product": "whatsapp", "status": "read", "message_id": message_id, **extra}


def _statuses_in_view(srv: Server, wa_id: str) -> dict[str, str]:
    return {m["id"]: m["status"] for m in user_view(srv, wa_id)["messages"] if m["direction"] == "inbound"}


def test_mark_as_read_reads_the_message_and_the_earlier_ones(server: ServerFactory) -> None:
    srv = server()
    [greeting] = inbound_ids(srv, ALICE)
    second = srv.user_says(ALICE, "second")
    third = srv.user_says(ALICE, "third")
    bruno = inbound_ids(srv, BRUNO)
    assert set(_statuses_in_view(srv, ALICE).values()) == {"received"}

    reply = srv.call("POST", "/messages", _read(second))
    assert reply.status == 200, reply.body
    assert reply.json() == {"success": True}
    assert _statuses_in_view(srv, ALICE) == {greeting: "read", second: "read", third: "received"}
    assert set(_statuses_in_view(srv, BRUNO).values()) == {"received"}, "another user's messages are untouched"

    assert srv.call("POST", "/messages", _read(third)).json() == {"success": True}
    assert set(_statuses_in_view(srv, ALICE).values()) == {"read"}
    assert srv.call("POST", "/messages", _read(third)).json() == {"success": True}, "reading twice is fine"

    # Only received messages can be marked read.
    before = stored_counts(srv)
    outbound = srv.send_text(ALICE, "mine")
    for message_id in (outbound, "wamid.HBgLMTU1NTk5OTAwMDAVAgASGBQzQUZGRkZGRkZGRkZGRkZGRkYA", "x"):
        assert "message_id" in assert_graph_error(srv.call("POST", "/messages", _read(message_id)), 100)
    # A broken read body.
    assert_graph_error(srv.call("POST", "/messages", _without(_read(third), "messaging_product")), 131008)
    assert_graph_error(srv.call("POST", "/messages", _without(_read(third), "message_id")), 131008)
    assert_graph_error(srv.call("POST", "/messages", _read(third, status="delivered")), 131009)
    assert_graph_error(srv.call("POST", "/messages", _read(third, to=ALICE)), 100)
    assert stored_counts(srv)[0] == before[0] + 1, "mark-as-read stores no outbound message"
    assert _statuses_in_view(srv, BRUNO) == dict.fromkeys(bruno, "received")


def _typing(srv: Server, wa_id: str) -> bool:
    return bool(user_view(srv, wa_id)["business_typing"])


def test_typing_indicator_shows_until_the_reply_or_25_seconds(server: ServerFactory) -> None:
    srv = server()
    [greeting] = inbound_ids(srv, ALICE)
    assert not _typing(srv, ALICE)

    reply = srv.call("POST", "/messages", _read(greeting, typing_indicator={"type": "text"}))
    assert reply.status == 200, reply.body
    assert reply.json() == {"success": True}
    assert _typing(srv, ALICE)
    assert _statuses_in_view(srv, ALICE) == {greeting: "read"}, "the typing indicator also marks read"
    assert not _typing(srv, BRUNO)

    # A message to someone else does not end it; the reply to Alice does.
    to_bruno = srv.send_text(BRUNO, "not to Alice")
    wait_for_status_events(srv, to_bruno)
    assert _typing(srv, ALICE)
    srv.send_text(ALICE, "here is my answer")
    wait_until(lambda: not _typing(srv, ALICE), what="the reply to end typing")

    # Without a reply it disappears after 25 seconds.
    assert srv.call("POST", "/messages", _read(greeting, typing_indicator={"type": "text"})).status == 200
    assert _typing(srv, ALICE)
    srv.advance_clock(20)
    assert _typing(srv, ALICE)
    srv.advance_clock(5.5)
    assert not _typing(srv, ALICE)

    assert_graph_error(srv.call("POST", "/messages", _read(greeting, typing_indicator={"type": "audio"})), 131009)
    assert_graph_error(srv.call("POST", "/messages", _read(greeting, typing_indicator={})), 131008)
    assert not _typing(srv, ALICE), "a refused typing request shows nothing"


# --- no request makes the server fail -------------------------------------------------------------

_KEYS = st.sampled_from([
    "messaging_product", "recipient_type", "to", "type", "text", "body", "preview_url", "image", "link", "id",
    "caption", "context", "message_id", "status", "typing_indicator", "interactive", "action", "buttons", "reply",
    "title", "sections", "rows", "template", "name", "language", "code", "components", "parameters", "reaction",
    "emoji", "contacts", "location", "latitude", "longitude", "biz_opaque_callback_data", "header", "sub_type",
    "index", "flow_action_payload", "catalog_id", "product_retailer_id", "provider", "filename",
])
_SCALARS = (st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False)
            | st.text(max_size=12) | st.sampled_from([ALICE, "wamid.x", "whatsapp", "text", "image", "https://e.com/a",
                                                       "interactive", "button", "template", "hello_world", "en_US",
                                                       "\U0001f44d", "read", ""]))
_JSON = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(_KEYS | st.text(max_size=6), inner, max_size=5), max_leaves=25)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a node of a JSON value (the root is the empty path)."""
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


@st.composite
def _mutated(draw: st.DrawFn, bases: list[dict[str, Any]]) -> Any:
    """A valid body with one node replaced, removed, or given an extra key."""
    body = copy.deepcopy(draw(st.sampled_from(bases)))
    path = draw(st.sampled_from(_paths(body)))
    if not path:
        return draw(_JSON)
    parent = body
    for step in path[:-1]:
        parent = parent[step]
    action = draw(st.sampled_from(["replace", "remove", "add"]))
    if action == "replace":
        parent[path[-1]] = draw(_JSON)
    elif action == "remove":
        del parent[path[-1]]
    elif isinstance(parent[path[-1]], dict):
        parent[path[-1]][draw(_KEYS | st.text(max_size=6))] = draw(_JSON)
    else:
        parent[path[-1]] = [parent[path[-1]], draw(_JSON)]
    return body


def _on_premise(body: dict[str, Any]) -> dict[str, Any]:
    moved = {k: v for k, v in body.items() if k != "messaging_product"}
    if body.get("type") == "text" and isinstance(body.get("text"), dict) and "preview_url" in body["text"]:
        moved["text"] = {k: v for k, v in body["text"].items() if k != "preview_url"}
        moved["preview_url"] = body["text"]["preview_url"]
    return moved


def test_no_body_makes_the_messages_endpoints_fail(server: ServerFactory) -> None:
    srv = server()
    greeting = inbound_ids(srv, ALICE)[0]
    cloud_bases = [*valid_examples(ALICE, greeting).values(), _read(greeting)]
    on_premise_bases = [_on_premise(b) for b in cloud_bases]
    seen: dict[tuple[str, int], int] = {}

    def check(path: str, body: Any) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        reply = srv.call("POST", path, data=data)
        assert reply.status < 500, f"POST {path} {data!r} answered {reply.status}: {reply.body!r}"
        assert isinstance(reply.json(), dict)
        seen[(path, reply.status)] = seen.get((path, reply.status), 0) + 1

    @settings(max_examples=100, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(cloud_body=_mutated(cloud_bases) | _JSON | st.binary(max_size=40),
           on_premise_body=_mutated(on_premise_bases) | _JSON | st.binary(max_size=40))
    def never_a_5xx(cloud_body: Any, on_premise_body: Any) -> None:
        check("/messages", cloud_body)
        check("/v1/messages", on_premise_body)

    never_a_5xx()
    assert seen.get(("/messages", 400)) and seen.get(("/v1/messages", 400)), seen

    # The server is still whole: everything accepted was handed over, and a new send is reported.
    wamid = srv.send_text(ALICE, "still here")
    wait_for_status_events(srv, wamid, 3)
    wait_until(lambda: srv.query("SELECT count(*) AS n FROM messages WHERE NOT dispatched")[0]["n"] == 0,
               what="every accepted message to be handed over")
    assert "Traceback" not in srv.log_tail(100_000), srv.log_tail()


# --- the On-Premise dialect on /v1 ----------------------------------------------------------------


def test_on_premise_send_answers_201_with_meta(stage: Stage) -> None:
    srv = stage.srv
    reply = srv.call("POST", "/v1/messages", {"to": ALICE, "text": {"body": "see https://example.com"},
                                              "preview_url": True})
    assert reply.status == 201, reply.body
    answer = reply.json()
    assert set(answer) == {"messages", "contacts", "meta"}, answer
    assert answer["contacts"] == [{"input": ALICE, "wa_id": ALICE}]
    wamid = answer["messages"][0]["id"]
    assert_on_premise_meta(answer)
    wait_statuses(stage.receiver, wamid, ALL_THREE)
    [shown] = [m for m in user_view(srv, ALICE)["messages"] if m["id"] == wamid]
    assert shown["type"] == "text"
    assert shown["text"] == {"body": "see https://example.com", "preview_url": True}, "top-level preview_url is kept"

    # Full form, a formatted number, an explicit type, a reply, and other types.
    explicit = {"recipient_type": "individual", "to": "+1 555-123-0002", "type": "text", "text": {"body": "hi"},
                "context": {"message_id": stage.greetings[BRUNO]}}
    reply = srv.call("POST", "/v1/messages", explicit)
    assert reply.status == 201, reply.body
    assert reply.json()["contacts"] == [{"input": "+1 555-123-0002", "wa_id": BRUNO}]
    for body in (
        {"to": CHEN, "type": "image", "image": {"link": "https://example.com/a.jpg", "provider": {"name": "cdn"}}},
        {"to": CHEN, "type": "image", "image": {"id": stage.media["image"]}},
        {"to": CHEN, "type": "template", "template": {**HELLO_WORLD, "namespace": "e2e_ns",
                                                      "language": {"policy": "deterministic", "code": "en_US"}}},
        {"to": CHEN, "type": "contacts", "contacts": [{"name": {"formatted_name": "J"},
                                                       "ims": [{"service": "AIM", "user_id": "j"}]}]},
        {"to": CHEN, "messaging_product": "whatsapp", "text": {"body": "the Cloud field is tolerated"}},
    ):
        reply = srv.call("POST", "/v1/messages", body)
        assert reply.status == 201, f"{body}: {reply.body!r}"
        wait_statuses(stage.receiver, reply.json()["messages"][0]["id"], ALL_THREE)


ON_PREMISE_BROKEN: list[tuple[str, Any, int]] = [
    ("not-json", b"{", 100),
    ("no-to", {"text": {"body": "hi"}}, 131008),
    ("no-text", {"to": ALICE}, 131008),
    ("to-letters", {"to": "alice", "text": {"body": "hi"}}, 131009),
    ("type-unknown", {"to": ALICE, "type": "hologram", "hologram": {}}, 131051),
    ("preview_url-on-an-image", {"to": ALICE, "type": "image", "image": {"link": "https://e.com/a"},
                                 "preview_url": True}, 100),
    ("preview_url-a-string", {"to": ALICE, "text": {"body": "hi"}, "preview_url": "yes"}, 100),
    ("text-body-empty", {"to": ALICE, "text": {"body": ""}}, 131008),
    ("unknown-key", {"to": ALICE, "text": {"body": "hi"}, "ttl": 5}, 100),
    ("button-index-out-of-range", {"to": ALICE, "type": "template", "template": {**HELLO_WORLD, "components": [
        {"type": "button", "sub_type": "quick_reply", "index": 12}]}}, 131009),
]


@pytest.mark.parametrize(("body", "code"), [c[1:] for c in ON_PREMISE_BROKEN], ids=[c[0] for c in ON_PREMISE_BROKEN])
def test_on_premise_broken_bodies_get_the_errors_envelope(stage: Stage, body: Any, code: int) -> None:
    before = stored_counts(stage.srv)
    if isinstance(body, bytes):
        reply = stage.srv.call("POST", "/v1/messages", data=body)
    else:
        reply = stage.srv.call("POST", "/v1/messages", body)
    assert reply.status == 400, reply.body
    assert_on_premise_error(reply, code)
    assert_nothing_stored(stage.srv, before, reply)


def test_on_premise_mark_as_read(stage: Stage) -> None:
    srv = stage.srv
    greeting = stage.greetings[CHEN]
    later = srv.user_says(CHEN, "are you open?")
    reply = srv.call("PUT", f"/v1/messages/{later}", {"status": "read"})
    assert reply.status == 200, reply.body
    assert set(reply.json()) == {"meta"}, reply.json()
    assert_on_premise_meta(reply.json())
    assert _statuses_in_view(srv, CHEN) == {greeting: "read", later: "read"}

    outbound = srv.call("POST", "/v1/messages", {"to": CHEN, "text": {"body": "yes"}}).json()["messages"][0]["id"]
    wait_statuses(stage.receiver, outbound, ALL_THREE)
    for message_id, body, code in (
        (later, {}, 131008),
        (later, {"status": "delivered"}, 131009),
        (later, {"status": "read", "messaging_product": "whatsapp"}, 100),
        (later, b"read", 100),
        (outbound, {"status": "read"}, 100),
        ("gBGGhSlIRoQvAgkGNTcduk8W2CQ", {"status": "read"}, 100),
    ):
        if isinstance(body, bytes):
            reply = srv.call("PUT", f"/v1/messages/{message_id}", data=body)
        else:
            reply = srv.call("PUT", f"/v1/messages/{message_id}", body)
        assert_on_premise_error(reply, code)


def test_on_premise_contacts_and_health(stage: Stage) -> None:
    srv = stage.srv
    reply = srv.call("POST", "/v1/contacts", {"blocking": "wait", "contacts": ["+1 555-123-0001", "15559990000",
                                                                               "not a number", "+12"],
                                              "force_check": True})
    assert reply.status == 200, reply.body
    body = reply.json()
    assert set(body) == {"contacts", "meta"}
    assert_on_premise_meta(body)
    assert body["contacts"] == [
        {"input": "+1 555-123-0001", "status": "valid", "wa_id": ALICE},
        {"input": "15559990000", "status": "valid", "wa_id": "15559990000"},  # since 2.43 every number is valid
        {"input": "not a number", "status": "invalid"},
        {"input": "+12", "status": "invalid"},
    ]
    assert srv.call("POST", "/v1/contacts", {"contacts": [CHEN]}).json()["contacts"] == [
        {"input": CHEN, "status": "valid", "wa_id": CHEN}]

    for bad, code in (({}, 131008), ({"contacts": CHEN}, 100), ({"contacts": [5]}, 100), ({"contacts": []}, 131009),
                      ({"contacts": [CHEN], "blocking": "later"}, 131009), ({"contacts": [CHEN], "extra": 1}, 100),
                      (b"[", 100)):
        reply = (srv.call("POST", "/v1/contacts", data=bad) if isinstance(bad, bytes)
                 else srv.call("POST", "/v1/contacts", bad))
        assert_on_premise_error(reply, code)

    reply = srv.call("GET", "/v1/health")
    assert reply.status == 200, reply.body
    health = reply.json()
    assert set(health) == {"health", "meta"}
    assert_on_premise_meta(health)
    assert isinstance(health["health"], dict) and health["health"]
    assert srv.call("GET", "/v1/health", key="wrong").status == 401


# --- On-Premise channels get On-Premise webhooks ----------------------------------------------------


def _assert_flat(payload: Any) -> None:
    """The On-Premise format: no `object`/`entry` envelope, only the flat lists."""
    assert isinstance(payload, dict)
    assert "entry" not in payload and "object" not in payload, payload
    assert set(payload) <= {"contacts", "messages", "statuses", "errors"}, payload


def test_on_premise_channel_gets_flat_status_webhooks(server: ServerFactory, receiver: Receiver) -> None:
    srv = server(PARTNER_ENV)
    legacy = new_number(srv, type="on_premise")
    legacy.set_webhook(receiver.url)

    reply = legacy.call("POST", "/v1/messages", {"to": UNKNOWN_RECIPIENT, "text": {"body": "hi"}})
    assert reply.status == 201, reply.body
    wamid = reply.json()["messages"][0]["id"]
    got = wait_flat(receiver, "statuses", lambda s: s.get("id") == wamid, f"the flat status of {wamid}")
    _assert_flat(got.json)
    [status] = got.json["statuses"]
    assert status["status"] == "failed" and status["recipient_id"] == UNKNOWN_RECIPIENT
    assert status["type"] == "message" and status["message"] == {"recipient_id": UNKNOWN_RECIPIENT}
    assert status["timestamp"].isdigit()
    [error] = status["errors"]
    assert error["code"] == 1013, "131026 (undeliverable) is 1013 on On-Premise"
    assert isinstance(error["title"], str) and error["title"]
    assert "pricing" not in status and "conversation" not in status

    # The Cloud face of the same number is rendered the same way.
    reply = legacy.call("POST", "/messages", cloud(UNKNOWN_RECIPIENT, "text", {"body": "hi"},
                                                   biz_opaque_callback_data="cb-legacy"))
    assert reply.status == 200, reply.body
    wamid = reply.json()["messages"][0]["id"]
    got = wait_flat(receiver, "statuses", lambda s: s.get("id") == wamid, f"the flat status of {wamid}")
    _assert_flat(got.json)
    assert got.json["statuses"][0]["biz_opaque_callback_data"] == "cb-legacy"
    assert all(r.json is not None and "entry" not in r.json for r in receiver.requests)


def test_on_premise_channel_gets_flat_inbound_webhooks(server: ServerFactory, receiver: Receiver) -> None:
    srv = server(PARTNER_ENV)
    legacy = new_number(srv, type="on_premise", sandbox_users=[ALICE])
    legacy.set_webhook(receiver.url)
    reply = legacy.call("POST", f"/sandbox/users/{ALICE}/messages", {"text": "hello On-Premise"})
    assert reply.status == 200, reply.body
    wamid = reply.json()["messages"][0]["id"]
    got = wait_flat(receiver, "messages", lambda m: m.get("id") == wamid, "the flat inbound message")
    _assert_flat(got.json)
    assert got.json["messages"][0]["text"] == {"body": "hello On-Premise"}


def test_on_premise_number_posts_flat_messages_and_statuses(server: ServerFactory, receiver: Receiver) -> None:
    srv = server()
    make_seeded_number_on_premise(srv)
    srv.set_webhook(receiver.url)

    inbound = srv.user_says(ALICE, "hello On-Premise")
    got = wait_flat(receiver, "messages", lambda m: m.get("id") == inbound, "the flat inbound message")
    _assert_flat(got.json)
    assert got.json["contacts"] == [{"profile": {"name": USER_NAMES[ALICE]}, "wa_id": ALICE}]
    [message] = got.json["messages"]
    assert message["from"] == ALICE and message["type"] == "text" and message["timestamp"].isdigit()
    assert message["text"] == {"body": "hello On-Premise"}

    reply = srv.call("POST", "/v1/messages", {"to": ALICE, "text": {"body": "hi Alice"}})
    assert reply.status == 201, reply.body
    wamid = reply.json()["messages"][0]["id"]

    def all_three(_: Any) -> list[Any] | None:
        found = flat_items(receiver, "statuses", lambda s: s.get("id") == wamid)
        return found if len(found) >= 3 else None

    posted = receiver.wait_for(all_three, what=f"three flat statuses of {wamid}")
    assert [r.json["statuses"][0]["status"] for r in posted] == ["sent", "delivered", "read"]
    for r in posted:
        _assert_flat(r.json)
        [status] = r.json["statuses"]
        assert status["recipient_id"] == ALICE and status["message"] == {"recipient_id": ALICE}
        assert status["type"] == "message" and "id" in status["conversation"]
        assert set(status["pricing"]) == {"billable", "pricing_model", "category"}
        assert r.json["contacts"] == [{"profile": {"name": USER_NAMES[ALICE]}, "wa_id": ALICE}]

    assert srv.call("PUT", f"/v1/messages/{inbound}", {"status": "read"}).status == 200
    assert _statuses_in_view(srv, ALICE)[inbound] == "read"

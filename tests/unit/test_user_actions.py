"""What a simulated user does (`openwaba.domain.user_actions`): parsing the action, and the inbound
`interactive` / `button` object a tap on a business message makes.

Table-driven: each action type's parsed content, every refused form with its
WhatsApp error code and a message naming the field, taps on messages without
buttons or lists, unknown ids, template button indexes out of range or not quick
replies, and the payload taken from the button parameter the business sent.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openwaba.domain.errors import RequestError
from openwaba.domain.user_actions import UserAction, parse_user_action, tapped_reply, tapped_template_button

CARD = {"name": {"formatted_name": "Ada Lovelace", "first_name": "Ada"}, "phones": [{"phone": "+441234"}]}


# --- parsing ---------------------------------------------------------------------------------------

VALID: list[tuple[str, dict[str, Any], UserAction]] = [
    ("text-short-form", {"text": "hi"}, UserAction("text", {"body": "hi"})),
    ("text-whatsapp-form", {"type": "text", "text": {"body": "hi"}}, UserAction("text", {"body": "hi"})),
    ("text-reply", {"text": "yes", "context": {"message_id": "wamid.B"}},
     UserAction("text", {"body": "yes"}, "wamid.B")),
    ("text-context-without-id", {"text": "yes", "context": {}}, UserAction("text", {"body": "yes"})),
    ("location", {"type": "location", "location": {"latitude": 52.5, "longitude": 13.4}},
     UserAction("location", {"latitude": 52.5, "longitude": 13.4})),
    ("location-full", {"type": "location", "location": {
        "latitude": -90, "longitude": 180, "name": "HQ", "address": "1 Main St", "url": "https://x.example", "x": 1}},
     UserAction("location", {"latitude": -90, "longitude": 180, "name": "HQ", "address": "1 Main St",
                             "url": "https://x.example"})),
    ("location-reply", {"type": "location", "location": {"latitude": 0, "longitude": 0},
                        "context": {"message_id": "wamid.B"}},
     UserAction("location", {"latitude": 0, "longitude": 0}, "wamid.B")),
    ("contacts", {"type": "contacts", "contacts": [CARD]}, UserAction("contacts", [CARD])),
    ("contacts-two", {"type": "contacts", "contacts": [CARD, CARD]}, UserAction("contacts", [CARD, CARD])),
    ("reaction", {"type": "reaction", "reaction": {"message_id": "wamid.B", "emoji": "👍"}},
     UserAction("reaction", {"message_id": "wamid.B", "emoji": "👍"})),
    ("reaction-removed", {"type": "reaction", "reaction": {"message_id": "wamid.B"}},
     UserAction("reaction", {"message_id": "wamid.B", "emoji": ""})),
    ("button-reply", {"type": "button_reply", "message_id": "wamid.B", "id": "yes"},
     UserAction("button_reply", "yes", "wamid.B")),
    ("list-reply", {"type": "list_reply", "message_id": "wamid.B", "id": "row-2"},
     UserAction("list_reply", "row-2", "wamid.B")),
    ("template-button", {"type": "button", "message_id": "wamid.B", "index": 0}, UserAction("button", 0, "wamid.B")),
]


@pytest.mark.parametrize(("body", "expected"), [pytest.param(b, e, id=i) for i, b, e in VALID])
def test_accepted_actions(body: dict[str, Any], expected: UserAction) -> None:
    assert parse_user_action(body) == expected


# (id, body, WhatsApp error code, text the message must contain)
INVALID: list[tuple[str, Any, int, str]] = [
    ("not-an-object", ["hi"], 100, "JSON object"),
    ("a-string", "hi", 100, "JSON object"),
    ("no-text", {}, 131008, "text"),
    ("empty-text", {"text": ""}, 131008, "text"),
    ("text-number", {"text": 5}, 131008, "text"),
    ("whatsapp-form-without-body", {"type": "text", "text": {}}, 131008, "text"),
    ("whatsapp-form-empty-body", {"type": "text", "text": {"body": ""}}, 131008, "text"),
    ("context-id-number", {"text": "hi", "context": {"message_id": 5}}, 100, "'context.message_id'"),
    ("unsupported-type", {"type": "sticker"}, 131051, "text, location, contacts, reaction"),
    ("file-as-json", {"type": "image", "image": {"link": "https://x.example/a.png"}}, 131051, "multipart/form-data"),
    ("location-missing", {"type": "location"}, 100, "'location'"),
    ("location-not-object", {"type": "location", "location": "52.5,13.4"}, 100, "'location'"),
    ("location-no-longitude", {"type": "location", "location": {"latitude": 1}}, 100, "longitude"),
    ("location-latitude-91", {"type": "location", "location": {"latitude": 91, "longitude": 0}}, 100, "latitude"),
    ("location-latitude--91", {"type": "location", "location": {"latitude": -91, "longitude": 0}}, 100, "latitude"),
    ("location-longitude-181", {"type": "location", "location": {"latitude": 0, "longitude": 181}}, 100, "longitude"),
    ("location-string", {"type": "location", "location": {"latitude": "1", "longitude": 2}}, 100, "latitude"),
    ("location-bool", {"type": "location", "location": {"latitude": True, "longitude": 2}}, 100, "latitude"),
    ("contacts-missing", {"type": "contacts"}, 100, "'contacts'"),
    ("contacts-empty", {"type": "contacts", "contacts": []}, 100, "'contacts'"),
    ("contacts-object", {"type": "contacts", "contacts": CARD}, 100, "'contacts'"),
    ("contact-without-name", {"type": "contacts", "contacts": [{"phones": []}]}, 100, "formatted_name"),
    ("contact-empty-name", {"type": "contacts", "contacts": [{"name": {"formatted_name": ""}}]}, 100,
     "formatted_name"),
    ("one-bad-contact", {"type": "contacts", "contacts": [CARD, {"name": "Bob"}]}, 100, "formatted_name"),
    ("reaction-missing", {"type": "reaction"}, 100, "'reaction'"),
    ("reaction-no-message-id", {"type": "reaction", "reaction": {"emoji": "👍"}}, 100, "message_id"),
    ("reaction-emoji-number", {"type": "reaction", "reaction": {"message_id": "wamid.B", "emoji": 1}}, 100,
     "'reaction.emoji'"),
    ("button-reply-no-message-id", {"type": "button_reply", "id": "yes"}, 100, "message_id"),
    ("button-reply-message-id-number", {"type": "button_reply", "message_id": 1, "id": "yes"}, 100, "message_id"),
    ("button-reply-no-id", {"type": "button_reply", "message_id": "wamid.B"}, 100, "needs id"),
    ("button-reply-id-number", {"type": "button_reply", "message_id": "wamid.B", "id": 1}, 100, "needs id"),
    ("list-reply-no-id", {"type": "list_reply", "message_id": "wamid.B"}, 100, "needs id"),
    ("list-reply-no-message-id", {"type": "list_reply", "id": "r"}, 100, "message_id"),
    ("button-no-index", {"type": "button", "message_id": "wamid.B"}, 100, "index"),
    ("button-index-string", {"type": "button", "message_id": "wamid.B", "index": "0"}, 100, "index"),
    ("button-index-bool", {"type": "button", "message_id": "wamid.B", "index": False}, 100, "index"),
    ("button-index-float", {"type": "button", "message_id": "wamid.B", "index": 0.0}, 100, "index"),
    ("button-no-message-id", {"type": "button", "index": 0}, 100, "message_id"),
]


@pytest.mark.parametrize(("body", "code", "names"), [pytest.param(b, c, n, id=i) for i, b, c, n in INVALID])
def test_refused_actions(body: Any, code: int, names: str) -> None:
    with pytest.raises(RequestError) as info:
        parse_user_action(body)
    assert info.value.code == code
    assert names in info.value.details


@given(st.text(min_size=1), st.one_of(st.none(), st.text()))
def test_any_text_is_sent_as_written(text: str, reply_to: str | None) -> None:
    body: dict[str, Any] = {"text": text} if reply_to is None else {"text": text, "context": {"message_id": reply_to}}
    assert parse_user_action(body) == UserAction("text", {"body": text}, reply_to)
    assert parse_user_action({"type": "text", "text": {"body": text}}) == UserAction("text", {"body": text})


@given(st.floats(-90, 90), st.floats(-180, 180))
def test_any_coordinates_on_earth_are_accepted(latitude: float, longitude: float) -> None:
    action = parse_user_action({"type": "location", "location": {"latitude": latitude, "longitude": longitude}})
    assert action.content == {"latitude": latitude, "longitude": longitude}


# --- taps on interactive messages ------------------------------------------------------------------

BUTTONS = {
    "type": "button",
    "body": {"text": "Shall we?"},
    "action": {"buttons": [
        {"type": "reply", "reply": {"id": "yes", "title": "Yes"}},
        {"type": "reply", "reply": {"id": "no", "title": "No"}},
    ]},
}
LIST = {
    "type": "list",
    "body": {"text": "Pick a size"},
    "action": {"button": "Sizes", "sections": [
        {"title": "Small", "rows": [{"id": "s", "title": "S", "description": "Fits most"}]},
        {"title": "Large", "rows": [{"id": "l", "title": "L"}, {"id": "xl", "title": "XL", "description": "Roomy"}]},
    ]},
}


def tap(kind: str, choice: str) -> UserAction:
    return parse_user_action({"type": kind, "message_id": "wamid.B", "id": choice})


@pytest.mark.parametrize(("action", "content", "expected"), [
    pytest.param(tap("button_reply", "yes"), BUTTONS,
                 {"type": "button_reply", "button_reply": {"id": "yes", "title": "Yes"}}, id="first-button"),
    pytest.param(tap("button_reply", "no"), BUTTONS,
                 {"type": "button_reply", "button_reply": {"id": "no", "title": "No"}}, id="second-button"),
    pytest.param(tap("list_reply", "s"), LIST,
                 {"type": "list_reply", "list_reply": {"id": "s", "title": "S", "description": "Fits most"}},
                 id="row-with-description"),
    pytest.param(tap("list_reply", "l"), LIST, {"type": "list_reply", "list_reply": {"id": "l", "title": "L"}},
                 id="row-without-description"),
    pytest.param(tap("list_reply", "xl"), LIST,
                 {"type": "list_reply", "list_reply": {"id": "xl", "title": "XL", "description": "Roomy"}},
                 id="row-of-second-section"),
])
def test_tapped_reply(action: UserAction, content: dict[str, Any], expected: dict[str, Any]) -> None:
    assert tapped_reply(action, "interactive", content) == expected


@pytest.mark.parametrize(("action", "business_type", "content", "names"), [
    pytest.param(tap("button_reply", "yes"), "text", {"body": "Shall we?"}, "no reply buttons", id="button-on-text"),
    pytest.param(tap("list_reply", "s"), "text", {"body": "hi"}, "no list", id="row-on-text"),
    pytest.param(tap("button_reply", "yes"), "interactive", LIST, "no reply buttons", id="button-on-list"),
    pytest.param(tap("list_reply", "s"), "interactive", BUTTONS, "no list", id="row-on-buttons"),
    pytest.param(tap("button_reply", "yes"), "template", BUTTONS, "no reply buttons", id="button-on-template"),
    pytest.param(tap("button_reply", "yes"), "interactive", {"type": "cta_url", "action": {}}, "no reply buttons",
                 id="button-on-cta-url"),
    pytest.param(tap("button_reply", "maybe"), "interactive", BUTTONS, "'maybe' (ids: yes, no)", id="unknown-button"),
    pytest.param(tap("list_reply", "xxl"), "interactive", LIST, "'xxl' (ids: s, l, xl)", id="unknown-row"),
    pytest.param(tap("button_reply", "Yes"), "interactive", BUTTONS, "'Yes'", id="title-is-not-an-id"),
    pytest.param(tap("list_reply", "s"), "interactive", {"type": "list", "action": {}}, "'s' (ids: )",
                 id="list-without-rows"),
])
def test_refused_taps(action: UserAction, business_type: str, content: dict[str, Any], names: str) -> None:
    with pytest.raises(RequestError) as info:
        tapped_reply(action, business_type, content)
    assert info.value.code == 100
    assert "wamid.B" in info.value.details  # which message the tap was on
    assert names in info.value.details


# --- taps on template quick-reply buttons ----------------------------------------------------------

TEMPLATE_BUTTONS = [
    {"type": "QUICK_REPLY", "text": "Yes"},
    {"type": "URL", "text": "Track", "url": "https://x.example/{{1}}"},
    {"type": "QUICK_REPLY", "text": "Stop"},
    {"type": "PHONE_NUMBER", "text": "Call", "phone_number": "+15550100"},
]


def sent(*components: dict[str, Any]) -> dict[str, Any]:
    return {"name": "order_update", "language": {"code": "en"}, "components": list(components)}


def quick_reply(index: Any, *parameters: dict[str, Any]) -> dict[str, Any]:
    return {"type": "button", "sub_type": "quick_reply", "index": index, "parameters": list(parameters)}


def press(index: int) -> UserAction:
    return parse_user_action({"type": "button", "message_id": "wamid.T", "index": index})


@pytest.mark.parametrize(("index", "content", "expected"), [
    pytest.param(0, sent(), {"payload": "Yes", "text": "Yes"}, id="no-parameter-payload-is-text"),
    pytest.param(0, {"name": "t"}, {"payload": "Yes", "text": "Yes"}, id="no-components"),
    pytest.param(2, sent(quick_reply("2", {"type": "payload", "payload": "STOP_ALL"})),
                 {"payload": "STOP_ALL", "text": "Stop"}, id="payload-from-parameter"),
    pytest.param(2, sent(quick_reply(2, {"type": "payload", "payload": "STOP_ALL"})),
                 {"payload": "STOP_ALL", "text": "Stop"}, id="index-as-number"),
    pytest.param(0, sent(quick_reply("2", {"type": "payload", "payload": "STOP_ALL"})),
                 {"payload": "Yes", "text": "Yes"}, id="parameter-of-another-button"),
    pytest.param(0, sent({"type": "body", "parameters": [{"type": "text", "text": "42"}]},
                         quick_reply("0", {"type": "payload", "payload": "YES_42"}),
                         quick_reply("2", {"type": "payload", "payload": "STOP"})),
                 {"payload": "YES_42", "text": "Yes"}, id="among-other-components"),
    pytest.param(0, sent(quick_reply("0")), {"payload": "Yes", "text": "Yes"}, id="empty-parameters"),
    pytest.param(0, sent(quick_reply("0", {"type": "text", "text": "x"})), {"payload": "Yes", "text": "Yes"},
                 id="parameter-without-payload"),
])
def test_tapped_template_button(index: int, content: dict[str, Any], expected: dict[str, str]) -> None:
    assert tapped_template_button(press(index), content, TEMPLATE_BUTTONS) == expected


@pytest.mark.parametrize(("index", "buttons"), [
    pytest.param(1, TEMPLATE_BUTTONS, id="url-button"),
    pytest.param(3, TEMPLATE_BUTTONS, id="phone-button"),
    pytest.param(4, TEMPLATE_BUTTONS, id="past-the-end"),
    pytest.param(-1, TEMPLATE_BUTTONS, id="negative"),
    pytest.param(0, [], id="template-without-buttons"),
])
def test_refused_template_button_taps(index: int, buttons: list[dict[str, Any]]) -> None:
    with pytest.raises(RequestError) as info:
        tapped_template_button(press(index), sent(), buttons)
    assert info.value.code == 100
    assert "wamid.T" in info.value.details
    quick = [i for i, b in enumerate(buttons) if b["type"] == "QUICK_REPLY"]
    assert f"indexes {quick}" in info.value.details  # the taps that would work

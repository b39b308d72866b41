"""The client's message builders (`openwaba.client.messages`).

Every builder is checked against the exact Cloud API body it must produce
(table-driven), against the mistakes it refuses before anything goes over the
wire (ValueError), and against openwaba's own request validator
(`openwaba.domain.messages.parse_messages_body`): whatever a builder produces,
the gateway accepts as is.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from openwaba.client import Message, Row, Section
from openwaba.client import messages as m
from openwaba.domain.messages import Dialect, OutgoingMessage, ReadRequest, parse_messages_body

TO = "15551230001"
WAMID = "wamid.HBgLMTU1NTEyMzAwMDEVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA="
MEDIA_ID = "1013859600285441"
LINK = "https://example.com/files/a"


def envelope(type_name: str, content: Any, **extra: Any) -> dict[str, Any]:
    """The Cloud API body of a message to TO."""
    return {"messaging_product": "whatsapp", "recipient_type": "individual", "to": TO, "type": type_name,
            type_name: content, **extra}


def interactive(content: dict[str, Any]) -> dict[str, Any]:
    return envelope("interactive", content)


# id -> (message built by the client, the exact wire body it must produce)
CASES: dict[str, tuple[Message, dict[str, Any]]] = {
    "text": (m.text(TO, "hello"), envelope("text", {"body": "hello"})),
    "text-preview_url": (
        m.text(TO, "see https://example.com", preview_url=True),
        envelope("text", {"body": "see https://example.com", "preview_url": True}),
    ),
    "text-reply": (
        m.text(TO, "replying").replying_to(WAMID),
        envelope("text", {"body": "replying"}, context={"message_id": WAMID}),
    ),
    "text-tracked": (
        m.text(TO, "tracked").tracked("order-42"),
        envelope("text", {"body": "tracked"}, biz_opaque_callback_data="order-42"),
    ),
    "text-reply-and-tracked": (
        m.text(TO, "both").tracked("").replying_to(WAMID),
        envelope("text", {"body": "both"}, context={"message_id": WAMID}, biz_opaque_callback_data=""),
    ),
    "image-id": (m.image(TO, id=MEDIA_ID), envelope("image", {"id": MEDIA_ID})),
    "image-link-caption": (
        m.image(TO, link=LINK + ".jpg", caption="a picture"),
        envelope("image", {"link": LINK + ".jpg", "caption": "a picture"}),
    ),
    "video-id-caption": (
        m.video(TO, id=MEDIA_ID, caption="a film"),
        envelope("video", {"id": MEDIA_ID, "caption": "a film"}),
    ),
    "video-link": (m.video(TO, link=LINK + ".mp4"), envelope("video", {"link": LINK + ".mp4"})),
    "audio-id": (m.audio(TO, id=MEDIA_ID), envelope("audio", {"id": MEDIA_ID})),
    "audio-voice": (
        m.audio(TO, link=LINK + ".ogg", voice=True), envelope("audio", {"link": LINK + ".ogg", "voice": True}),
    ),
    "document-id": (
        m.document(TO, id=MEDIA_ID, caption="the invoice", filename="invoice.pdf"),
        envelope("document", {"id": MEDIA_ID, "caption": "the invoice", "filename": "invoice.pdf"}),
    ),
    "document-link": (m.document(TO, link=LINK + ".pdf"), envelope("document", {"link": LINK + ".pdf"})),
    "sticker-id": (m.sticker(TO, id=MEDIA_ID), envelope("sticker", {"id": MEDIA_ID})),
    "sticker-link": (m.sticker(TO, link=LINK + ".webp"), envelope("sticker", {"link": LINK + ".webp"})),
    "media-generic": (
        m.media(TO, "document", link=LINK + ".pdf", filename="a.pdf"),
        envelope("document", {"link": LINK + ".pdf", "filename": "a.pdf"}),
    ),
    "location": (
        m.location(TO, 37.483307, -122.148981, name="Meta HQ", address="1 Hacker Way"),
        envelope("location", {"latitude": 37.483307, "longitude": -122.148981, "name": "Meta HQ",
                              "address": "1 Hacker Way"}),
    ),
    "location-bare": (m.location(TO, 0.0, 0.0), envelope("location", {"latitude": 0.0, "longitude": 0.0})),
    "contacts": (
        m.contacts(TO, [
            m.contact("Jane Doe", phones=["+15550100"], first_name="Jane", last_name="Doe",
                      emails=["jane@example.com"], company="Example Inc"),
            m.contact("Bob"),
        ]),
        envelope("contacts", [
            {
                "name": {"formatted_name": "Jane Doe", "first_name": "Jane", "last_name": "Doe"},
                "phones": [{"phone": "+15550100", "type": "CELL", "wa_id": "15550100"}],
                "emails": [{"email": "jane@example.com", "type": "WORK"}],
                "org": {"company": "Example Inc"},
            },
            {"name": {"formatted_name": "Bob"}},
        ]),
    ),
    "contacts-reply-tracked": (
        m.contacts(TO, [m.contact("Bob")]).replying_to(WAMID).tracked("card"),
        envelope("contacts", [{"name": {"formatted_name": "Bob"}}], context={"message_id": WAMID},
                 biz_opaque_callback_data="card"),
    ),
    "reaction": (
        m.reaction(TO, WAMID, "\U0001f44d"),
        envelope("reaction", {"message_id": WAMID, "emoji": "\U0001f44d"}),
    ),
    "reaction-removed": (m.reaction(TO, WAMID, ""), envelope("reaction", {"message_id": WAMID, "emoji": ""})),
    "buttons": (
        m.buttons(TO, "Pick one", [("yes-1", "Yes"), ("no-1", "No")], header="Question", footer="e2e"),
        interactive({
            "type": "button",
            "header": {"type": "text", "text": "Question"},
            "body": {"text": "Pick one"},
            "footer": {"text": "e2e"},
            "action": {"buttons": [{"type": "reply", "reply": {"id": "yes-1", "title": "Yes"}},
                                   {"type": "reply", "reply": {"id": "no-1", "title": "No"}}]},
        }),
    ),
    "buttons-media-header": (
        m.buttons(TO, "Pick", [("a", "A"), ("b", "B"), ("c", "C")],
                  header={"type": "image", "image": {"id": MEDIA_ID}}),
        interactive({
            "type": "button",
            "header": {"type": "image", "image": {"id": MEDIA_ID}},
            "body": {"text": "Pick"},
            "action": {"buttons": [{"type": "reply", "reply": {"id": i, "title": t}}
                                   for i, t in (("a", "A"), ("b", "B"), ("c", "C"))]},
        }),
    ),
    "list": (
        m.list_message(TO, "Choose", "Options", [
            Section("Drinks", rows=[Row("tea", "Tea", "Hot"), Row("juice", "Juice")]),
            Section("Food", rows=[Row("cake", "Cake")]),
        ], header="Menu", footer="Thanks"),
        interactive({
            "type": "list",
            "header": {"type": "text", "text": "Menu"},
            "body": {"text": "Choose"},
            "footer": {"text": "Thanks"},
            "action": {"button": "Options", "sections": [
                {"title": "Drinks", "rows": [{"id": "tea", "title": "Tea", "description": "Hot"},
                                             {"id": "juice", "title": "Juice"}]},
                {"title": "Food", "rows": [{"id": "cake", "title": "Cake"}]},
            ]},
        }),
    ),
    "list-untitled-section": (
        m.list_message(TO, "Choose", "Options", [Section(None, rows=[Row("tea", "Tea")])]),
        interactive({
            "type": "list",
            "body": {"text": "Choose"},
            "action": {"button": "Options", "sections": [{"rows": [{"id": "tea", "title": "Tea"}]}]},
        }),
    ),
    "cta_url": (
        m.cta_url(TO, "Tap to see dates", "See Dates", "https://example.com/dates", header="Tour", footer="2026"),
        interactive({
            "type": "cta_url",
            "header": {"type": "text", "text": "Tour"},
            "body": {"text": "Tap to see dates"},
            "footer": {"text": "2026"},
            "action": {"name": "cta_url", "parameters": {"display_text": "See Dates",
                                                          "url": "https://example.com/dates"}},
        }),
    ),
    "flow-navigate": (
        m.flow(TO, "Book a table", "Start", flow_id="1234", flow_token="AQAAAA-token", screen="FIRST_SCREEN",
               data={"party": 2}, mode="published", header="Booking", footer="e2e"),
        interactive({
            "type": "flow",
            "header": {"type": "text", "text": "Booking"},
            "body": {"text": "Book a table"},
            "footer": {"text": "e2e"},
            "action": {"name": "flow", "parameters": {
                "flow_message_version": "3", "flow_id": "1234", "flow_cta": "Start", "flow_token": "AQAAAA-token",
                "mode": "published", "flow_action": "navigate",
                "flow_action_payload": {"screen": "FIRST_SCREEN", "data": {"party": 2}},
            }},
        }),
    ),
    "flow-by-name-data-exchange": (
        m.flow(TO, "Sign up", "Go", flow_name="signup", mode="draft"),
        interactive({
            "type": "flow",
            "body": {"text": "Sign up"},
            "action": {"name": "flow", "parameters": {
                "flow_message_version": "3", "flow_name": "signup", "flow_cta": "Go", "mode": "draft",
                "flow_action": "data_exchange",
            }},
        }),
    ),
    "flow-screen-without-data": (
        m.flow(TO, "Sign up", "Go", flow_id="9", screen="WELCOME"),
        interactive({
            "type": "flow",
            "body": {"text": "Sign up"},
            "action": {"name": "flow", "parameters": {
                "flow_message_version": "3", "flow_id": "9", "flow_cta": "Go", "flow_action": "navigate",
                "flow_action_payload": {"screen": "WELCOME"},
            }},
        }),
    ),
    "product": (
        m.product(TO, "cat-1", "SKU1"),
        interactive({"type": "product", "action": {"catalog_id": "cat-1", "product_retailer_id": "SKU1"}}),
    ),
    "product-body-footer": (
        m.product(TO, "cat-1", "SKU1", body="Our best", footer="Fresh"),
        interactive({"type": "product", "body": {"text": "Our best"}, "footer": {"text": "Fresh"},
                     "action": {"catalog_id": "cat-1", "product_retailer_id": "SKU1"}}),
    ),
    "product_list": (
        m.product_list(TO, "cat-1", "Our picks", "Have a look", [
            Section("Fruit", product_ids=["SKU1", "SKU2"]), Section("Veg", product_ids=["SKU3"]),
        ], footer="Fresh"),
        interactive({
            "type": "product_list",
            "header": {"type": "text", "text": "Our picks"},
            "body": {"text": "Have a look"},
            "footer": {"text": "Fresh"},
            "action": {"catalog_id": "cat-1", "sections": [
                {"title": "Fruit", "product_items": [{"product_retailer_id": "SKU1"},
                                                     {"product_retailer_id": "SKU2"}]},
                {"title": "Veg", "product_items": [{"product_retailer_id": "SKU3"}]},
            ]},
        }),
    ),
    "catalog": (
        m.catalog(TO, "Browse our catalog", thumbnail_product_id="SKU1", footer="Fresh"),
        interactive({
            "type": "catalog_message",
            "body": {"text": "Browse our catalog"},
            "footer": {"text": "Fresh"},
            "action": {"name": "catalog_message", "parameters": {"thumbnail_product_retailer_id": "SKU1"}},
        }),
    ),
    "catalog-no-thumbnail": (
        m.catalog(TO, "Browse"),
        interactive({"type": "catalog_message", "body": {"text": "Browse"},
                     "action": {"name": "catalog_message", "parameters": {}}}),
    ),
    "template-bare": (
        m.template(TO, "hello_world"),
        envelope("template", {"name": "hello_world", "language": {"code": "en_US"}}),
    ),
    "template-components": (
        m.template(TO, "order_update", "de", [
            m.header(m.media_parameter("image", link=LINK + ".jpg")),
            m.body("Ann", m.currency("$10.50", "USD", 10500), m.date_time("June 9, 2026")),
            m.button(0, "quick_reply", "STOP"),
            m.button(1, "url", "order/123"),
            m.button(2, "copy_code", "SAVE10"),
        ]),
        envelope("template", {"name": "order_update", "language": {"code": "de"}, "components": [
            {"type": "header", "parameters": [{"type": "image", "image": {"link": LINK + ".jpg"}}]},
            {"type": "body", "parameters": [
                {"type": "text", "text": "Ann"},
                {"type": "currency", "currency": {"fallback_value": "$10.50", "code": "USD", "amount_1000": 10500}},
                {"type": "date_time", "date_time": {"fallback_value": "June 9, 2026"}},
            ]},
            {"type": "button", "sub_type": "quick_reply", "index": "0",
             "parameters": [{"type": "payload", "payload": "STOP"}]},
            {"type": "button", "sub_type": "url", "index": "1", "parameters": [{"type": "text", "text": "order/123"}]},
            {"type": "button", "sub_type": "copy_code", "index": "2",
             "parameters": [{"type": "coupon_code", "coupon_code": "SAVE10"}]},
        ]}),
    ),
    "template-text-header-media-id": (
        m.template(TO, "receipt", components=[m.header("A-17"), m.header(m.media_parameter("document", id=MEDIA_ID))]),
        envelope("template", {"name": "receipt", "language": {"code": "en_US"}, "components": [
            {"type": "header", "parameters": [{"type": "text", "text": "A-17"}]},
            {"type": "header", "parameters": [{"type": "document", "document": {"id": MEDIA_ID}}]},
        ]}),
    ),
}

# Bodies the gateway's validator cannot take as built: the template with two headers is a
# wire-format check only (a real template has one header).
NOT_SENDABLE = {"template-text-header-media-id"}


@pytest.mark.parametrize("case", list(CASES))
def test_builder_wire_body(case: str) -> None:
    message, expected = CASES[case]
    assert message.body() == expected
    # The body is plain JSON: it survives a round trip unchanged.
    assert json.loads(json.dumps(message.body())) == expected


@pytest.mark.parametrize("case", [c for c in CASES if c not in NOT_SENDABLE])
def test_openwabas_validator_accepts_every_builder(case: str) -> None:
    message, expected = CASES[case]
    parsed = parse_messages_body(json.dumps(message.body()).encode(), Dialect.CLOUD)
    assert isinstance(parsed, OutgoingMessage)
    assert parsed.type == message.type
    assert parsed.wa_id == TO and parsed.input == TO
    # The validator keeps the content as built (contacts, an array, under one key), filling in
    # only the defaults of optional fields (a text's preview_url).
    content = {"contacts": expected["contacts"]} if message.type == "contacts" else expected[message.type]
    if message.type == "text":
        content = {"preview_url": False, **content}
    assert parsed.content == content
    assert parsed.context_message_id == (WAMID if "context" in expected else None)
    assert parsed.biz_opaque_callback_data == expected.get("biz_opaque_callback_data")


def test_replying_to_and_tracked_return_new_messages_of_the_same_type() -> None:
    original = m.contacts(TO, [m.contact("Bob")])
    reply = original.replying_to(WAMID)
    tracked = reply.tracked("x")
    assert original.reply_to is None and original.biz_opaque_callback_data is None
    assert reply.reply_to == WAMID and reply.biz_opaque_callback_data is None
    assert (tracked.reply_to, tracked.biz_opaque_callback_data) == (WAMID, "x")
    assert type(reply) is type(original) and type(tracked) is type(original)
    assert tracked.body()["contacts"] == [{"name": {"formatted_name": "Bob"}}]


@pytest.mark.parametrize("case", ["contacts", "buttons", "template-components"])
def test_body_is_independent_of_the_message(case: str) -> None:
    message, expected = CASES[case]
    body = message.body()
    content = body[message.type]
    if isinstance(content, list):
        content.append({"name": {"formatted_name": "Eve"}})
    elif message.type == "interactive":
        content["action"]["buttons"].pop()
    else:
        content["components"].clear()
    assert message.body() == expected


# --- mistakes the builders refuse ---------------------------------------------------------------

REFUSED = {
    "media-id-and-link": lambda: m.image(TO, id=MEDIA_ID, link=LINK),
    "media-neither": lambda: m.document(TO),
    "audio-neither": lambda: m.audio(TO, voice=True),
    "sticker-both": lambda: m.sticker(TO, id=MEDIA_ID, link=LINK),
    "media-generic-both": lambda: m.media(TO, "video", id=MEDIA_ID, link=LINK),
    "media-parameter-both": lambda: m.media_parameter("image", id=MEDIA_ID, link=LINK),
    "media-parameter-neither": lambda: m.media_parameter("video"),
    "buttons-none": lambda: m.buttons(TO, "Pick", []),
    "buttons-four": lambda: m.buttons(TO, "Pick", [(str(i), f"B{i}") for i in range(4)]),
    "flow-id-and-name": lambda: m.flow(TO, "Book", "Start", flow_id="1", flow_name="booking"),
    "flow-neither": lambda: m.flow(TO, "Book", "Start"),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_builder_refuses(case: str) -> None:
    with pytest.raises(ValueError) as excinfo:
        REFUSED[case]()
    assert str(excinfo.value)


def test_refusal_messages_name_the_rule() -> None:
    with pytest.raises(ValueError, match="exactly one of id .* or link"):
        m.image(TO)
    with pytest.raises(ValueError, match="1 to 3 buttons"):
        m.buttons(TO, "Pick", [])
    with pytest.raises(ValueError, match="flow_id or flow_name"):
        m.flow(TO, "Book", "Start")


@pytest.mark.parametrize("count", [1, 2, 3])
def test_one_to_three_buttons_are_built(count: int) -> None:
    built = m.buttons(TO, "Pick", [(str(i), f"B{i}") for i in range(count)]).body()
    assert [b["reply"]["id"] for b in built["interactive"]["action"]["buttons"]] == [str(i) for i in range(count)]


def test_mark_read_body_is_a_read_request_for_the_validator() -> None:
    """What `Client.mark_read(..., typing=True)` posts is the gateway's read request with a typing indicator."""
    body = {"messaging_product": "whatsapp", "status": "read", "message_id": WAMID,
            "typing_indicator": {"type": "text"}}
    parsed = parse_messages_body(json.dumps(body).encode(), Dialect.CLOUD)
    assert parsed == ReadRequest(message_id=WAMID, typing=True)


@pytest.mark.parametrize("phone", ["+1 (940) 555-1234", "+1 940-555-1234", "1 940 555 1234"])
def test_contact_wa_id_is_digits_only(phone: str) -> None:
    card = m.contact("Jane Doe", phones=[phone])
    assert card["phones"] == [{"phone": phone, "type": "CELL", "wa_id": "19405551234"}]

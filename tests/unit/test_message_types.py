"""Every outgoing message type, mark-as-read and the typing indicator.

One valid example per type (and per interesting variant) checks the normalised
content; then each rule is broken once, with everything else valid, and the
RequestError is checked for its code and for the exact path it names.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openwaba.domain.errors import RequestError
from openwaba.domain.messages import (
    Dialect,
    OutgoingMessage,
    ReadRequest,
    media_references,
    parse_messages_body,
    parse_read_body,
    parse_send_request,
)

CLOUD = Dialect.CLOUD
ON_PREMISE = Dialect.ON_PREMISE
DELETE = object()  # marker: remove the key


def edit(base: Any, path: str, value: Any) -> Any:
    """A deep copy of `base` with the value at `path` (`a.b[1].c`) replaced, or removed with DELETE."""
    document = copy.deepcopy(base)
    steps: list[str | int] = [int(t[1:-1]) if t.startswith("[") else t for t in re.findall(r"\[\d+\]|[^.\[\]]+", path)]
    parent = document
    for step in steps[:-1]:
        parent = parent[step]
    if value is DELETE:
        del parent[steps[-1]]
    else:
        parent[steps[-1]] = value
    return document


def request(type_name: str, content: Any, dialect: Dialect = CLOUD, **top: Any) -> bytes:
    body: dict[str, Any] = {"to": "4915112345678", "type": type_name, type_name: content}
    if dialect is CLOUD:
        body = {"messaging_product": "whatsapp", "recipient_type": "individual", **body}
    body.update(top)
    return json.dumps(body).encode()


def send(type_name: str, content: Any, dialect: Dialect = CLOUD, **top: Any) -> OutgoingMessage:
    return parse_send_request(request(type_name, content, dialect, **top), dialect)


def error_of(type_name: str, content: Any, dialect: Dialect = CLOUD) -> RequestError:
    with pytest.raises(RequestError) as info:
        send(type_name, content, dialect)
    return info.value


# --- valid examples, one per type and variant ----------------------------------------

TEXT = {"body": "hello", "preview_url": False}
IMAGE = {"id": "1013859600285441", "caption": "The best succulent ever?"}
AUDIO = {"link": "https://example.org/voice.ogg", "voice": True}
VIDEO = {"id": "1166846181421424", "caption": "A clip"}
DOCUMENT = {"link": "https://example.org/report.pdf", "caption": "Q3", "filename": "report.pdf"}
STICKER = {"id": "798882015472548"}
LOCATION = {"latitude": 37.483307, "longitude": -122.148981, "name": "Meta HQ", "address": "1 Hacker Way"}
CONTACT = {
    "name": {"formatted_name": "Ann Lee", "first_name": "Ann", "last_name": "Lee"},
    "addresses": [{"street": "Main St 1", "city": "Berlin", "country_code": "DE", "type": "HOME"}],
    "birthday": "1990-05-17",
    "emails": [{"email": "ann@example.org", "type": "WORK"}],
    "org": {"company": "Example", "department": "Sales", "title": "Lead"},
    "phones": [{"phone": "+49 151 1234", "type": "CELL", "wa_id": "491511234"}],
    "urls": [{"url": "https://example.org", "type": "WORK"}],
}
REACTION = {"message_id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA=", "emoji": "\U0001f600"}


def reply(index: int, title: str | None = None) -> dict[str, Any]:
    return {"type": "reply", "reply": {"id": f"id-{index}", "title": title or f"Option {index}"}}


BUTTON = {"type": "button", "body": {"text": "Pick one"}, "action": {"buttons": [reply(0), reply(1)]}}
LIST = {
    "type": "list",
    "header": {"type": "text", "text": "Menu"},
    "body": {"text": "Choose"},
    "footer": {"text": "Served 12-14h"},
    "action": {
        "button": "Options",
        "sections": [
            {"title": "Drinks", "rows": [{"id": "tea", "title": "Tea", "description": "Hot"}]},
            {"title": "Food", "rows": [{"id": "soup", "title": "Soup"}]},
        ],
    },
}
CTA_URL = {
    "type": "cta_url",
    "header": {"type": "image", "image": {"link": "https://example.org/dates.jpg"}},
    "body": {"text": "Tap to see dates"},
    "action": {"name": "cta_url", "parameters": {"display_text": "See Dates", "url": "https://example.com/x"}},
}
FLOW = {
    "type": "flow",
    "body": {"text": "Book now"},
    "action": {
        "name": "flow",
        "parameters": {
            "flow_message_version": "3",
            "flow_token": "AQAAAAACS5FpgQ_cAAAAAD0QI3s.",
            "flow_id": "1",
            "flow_cta": "Book!",
            "flow_action": "navigate",
            "flow_action_payload": {"screen": "FIRST_SCREEN", "data": {"product_name": "name"}},
            "mode": "published",
        },
    },
}
FLOW_DATA_EXCHANGE = {
    "type": "flow",
    "body": {"text": "Book now"},
    "action": {
        "name": "flow",
        "parameters": {
            "flow_message_version": "3",
            "flow_name": "booking",
            "flow_cta": "Book!",
            "flow_action": "data_exchange",
            "mode": "draft",
        },
    },
}
PRODUCT = {"type": "product", "action": {"catalog_id": "367025965434465", "product_retailer_id": "SKU1"}}
PRODUCT_LIST = {
    "type": "product_list",
    "header": {"type": "text", "text": "Our picks"},
    "body": {"text": "Have a look"},
    "action": {
        "catalog_id": "367025965434465",
        "sections": [
            {"title": "Tea", "product_items": [{"product_retailer_id": "SKU1"}, {"product_retailer_id": "SKU2"}]},
            {"title": "Cups", "product_items": [{"product_retailer_id": "SKU3"}]},
        ],
    },
}
CATALOG = {
    "type": "catalog_message",
    "body": {"text": "Browse our catalog"},
    "footer": {"text": "Free shipping"},
    "action": {"name": "catalog_message", "parameters": {"thumbnail_product_retailer_id": "SKU1"}},
}
TEMPLATE = {
    "name": "order_update",
    "language": {"code": "en_US", "policy": "deterministic"},
    "components": [
        {"type": "header", "parameters": [{"type": "image", "image": {"id": "55501"}}]},
        {
            "type": "body",
            "parameters": [
                {"type": "text", "text": "Sheena"},
                {"type": "currency", "currency": {"fallback_value": "$10.50", "code": "USD", "amount_1000": 10500}},
                {"type": "date_time", "date_time": {"fallback_value": "June 9, 2025"}},
            ],
        },
        {
            "type": "button",
            "sub_type": "quick_reply",
            "index": "0",
            "parameters": [{"type": "payload", "payload": "STOP"}],
        },
        {"type": "button", "sub_type": "url", "index": "1", "parameters": [{"type": "text", "text": "order/123"}]},
    ],
}
TEMPLATE_NAMED = {
    "name": "order_named",
    "language": {"code": "en"},
    "components": [
        {"type": "header", "parameters": [{"type": "text", "parameter_name": "shop", "text": "Tea & Co"}]},
        {"type": "body", "parameters": [{"type": "text", "parameter_name": "order_id", "text": "A-17"}]},
        {
            "type": "button",
            "sub_type": "copy_code",
            "index": "0",
            "parameters": [{"type": "coupon_code", "coupon_code": "SAVE10"}],
        },
        {
            "type": "button",
            "sub_type": "flow",
            "index": "1",
            "parameters": [{"type": "action", "action": {"flow_token": "t", "flow_action_data": {"a": 1}}}],
        },
        {
            "type": "button",
            "sub_type": "mpm",
            "index": "2",
            "parameters": [
                {
                    "type": "action",
                    "action": {
                        "thumbnail_product_retailer_id": "SKU1",
                        "sections": [{"title": "Tea", "product_items": [{"product_retailer_id": "SKU1"}]}],
                    },
                }
            ],
        },
    ],
}
TEMPLATE_LOCATION = {
    "name": "store_location",
    "language": {"code": "de"},
    "components": [
        {
            "type": "header",
            "parameters": [{"type": "location", "location": {"latitude": "52.52", "longitude": 13.40, "name": "Shop"}}],
        },
        {
            "type": "button",
            "sub_type": "catalog",
            "index": "9",
            "parameters": [{"type": "action", "action": {"thumbnail_product_retailer_id": "SKU1"}}],
        },
    ],
}

# (type, request object, expected content); content equal to the object unless given.
VALID = [
    pytest.param("text", {"body": "hello"}, TEXT, id="text"),
    pytest.param("image", IMAGE, None, id="image-id-caption"),
    pytest.param("image", {"link": "http://example.org/a.jpg"}, None, id="image-http-link"),
    pytest.param("image", {"id": "1", "caption": "x" * 1024}, None, id="image-caption-1024"),
    pytest.param("image", {"id": "1", "caption": None, "link": None}, {"id": "1"}, id="image-nulls-dropped"),
    pytest.param("audio", AUDIO, None, id="audio-voice"),
    pytest.param("audio", {"id": "1"}, None, id="audio-plain"),
    pytest.param("video", VIDEO, None, id="video"),
    pytest.param("document", DOCUMENT, None, id="document-filename"),
    pytest.param("sticker", STICKER, None, id="sticker"),
    pytest.param("location", LOCATION, None, id="location"),
    pytest.param(
        "location", {"latitude": -90, "longitude": 180}, {"latitude": -90.0, "longitude": 180.0}, id="loc-edge"
    ),
    pytest.param("contacts", [CONTACT], {"contacts": [CONTACT]}, id="contacts-full"),
    pytest.param(
        "contacts",
        [{"name": {"formatted_name": "A"}}, {"name": {"formatted_name": "B"}}],
        {"contacts": [{"name": {"formatted_name": "A"}}, {"name": {"formatted_name": "B"}}]},
        id="contacts-two-minimal",
    ),
    pytest.param("interactive", BUTTON, None, id="button"),
    pytest.param(
        "interactive",
        edit(BUTTON, "action.buttons", [reply(0, "x" * 20), reply(1), reply(2)]),
        None,
        id="button-three-title-20",
    ),
    pytest.param("interactive", edit(BUTTON, "action.buttons[0].reply.id", "i" * 256), None, id="button-id-256"),
    pytest.param(
        "interactive",
        edit(BUTTON, "header", {"type": "document", "document": {"id": "9", "filename": "a.pdf"}}),
        None,
        id="button-document-header",
    ),
    pytest.param(
        "interactive", edit(BUTTON, "header", {"type": "video", "video": {"id": "9"}}), None, id="button-video-header"
    ),
    pytest.param("interactive", LIST, None, id="list"),
    pytest.param(
        "interactive",
        edit(
            LIST,
            "action.sections",
            [{"rows": [{"id": f"r{i}", "title": "t" * 24, "description": "d" * 72} for i in range(10)]}],
        ),
        None,
        id="list-one-untitled-section-10-rows",
    ),
    pytest.param("interactive", CTA_URL, None, id="cta-url-image-header"),
    pytest.param("interactive", FLOW, None, id="flow-navigate"),
    pytest.param("interactive", FLOW_DATA_EXCHANGE, None, id="flow-data-exchange-by-name"),
    pytest.param(
        "interactive",
        edit(FLOW, "action.parameters.flow_action", DELETE),
        edit(FLOW, "action.parameters.flow_action", DELETE),
        id="flow-default-navigate",
    ),
    pytest.param("interactive", PRODUCT, None, id="product-no-body"),
    pytest.param("interactive", edit(PRODUCT, "body", {"text": "Nice"}), None, id="product-body"),
    pytest.param("interactive", PRODUCT_LIST, None, id="product-list"),
    pytest.param(
        "interactive",
        edit(
            PRODUCT_LIST,
            "action.sections",
            [{"title": "A", "product_items": [{"product_retailer_id": f"S{i}"} for i in range(15)]}] * 2,
        ),
        None,
        id="product-list-30-products",
    ),
    pytest.param("interactive", CATALOG, None, id="catalog-message"),
    pytest.param("interactive", edit(CATALOG, "action.parameters", DELETE), None, id="catalog-no-thumbnail"),
    pytest.param("template", TEMPLATE, None, id="template-positional"),
    pytest.param("template", TEMPLATE_NAMED, None, id="template-named"),
    pytest.param("template", TEMPLATE_LOCATION, None, id="template-location-string-coordinates"),
    pytest.param("template", {"name": "hello_world", "language": {"code": "en_US"}}, None, id="template-minimal"),
    pytest.param("reaction", REACTION, None, id="reaction"),
    pytest.param("reaction", {"message_id": "wamid.x", "emoji": ""}, None, id="reaction-remove"),
    pytest.param("reaction", {"message_id": "wamid.x", "emoji": "\U0001f44d\U0001f3fd"}, None, id="reaction-skin"),
    pytest.param("reaction", {"message_id": "wamid.x", "emoji": "\U0001f1e9\U0001f1ea"}, None, id="reaction-flag"),
    pytest.param("reaction", {"message_id": "wamid.x", "emoji": "1\ufe0f\u20e3"}, None, id="reaction-keycap"),
    pytest.param("reaction", {"message_id": "wamid.x", "emoji": "\u2764\ufe0f"}, None, id="reaction-heart-vs16"),
    pytest.param(
        "reaction",
        {"message_id": "wamid.x", "emoji": "\U0001f468\u200d\U0001f469\u200d\U0001f467"},
        None,
        id="reaction-zwj-family",
    ),
]


@pytest.mark.parametrize("dialect", [CLOUD, ON_PREMISE], ids=["cloud", "on-premise"])
@pytest.mark.parametrize(("type_name", "content", "expected"), VALID)
def test_valid_examples(type_name: str, content: Any, expected: Any, dialect: Dialect) -> None:
    message = send(type_name, content, dialect)
    assert message.type == type_name
    assert message.wa_id == "4915112345678"
    assert message.content == (content if expected is None else expected)
    assert json.loads(json.dumps(message.content)) == message.content  # plain JSON, no Structs


def test_absent_optional_fields_are_left_out_not_null() -> None:
    content = send("interactive", PRODUCT).content
    assert "header" not in content and "body" not in content and "footer" not in content
    assert None not in send("template", TEMPLATE).content.values()


def test_context_and_callback_data_apply_to_every_type() -> None:
    message = send("interactive", BUTTON, context={"message_id": "wamid.q"}, biz_opaque_callback_data="t-1")
    assert message.context_message_id == "wamid.q"
    assert message.biz_opaque_callback_data == "t-1"


# --- each rule broken once ---------------------------------------------------------

ITEMS = [{"product_retailer_id": f"S{i}"} for i in range(16)]
TOO_MANY_ROWS = [{"title": f"S{s}", "rows": [{"id": f"{s}-{r}", "title": "t"} for r in range(4)]} for s in range(3)]

# (type, object, code, path named in details, rule wording)
INVALID = [
    # media
    pytest.param("image", {"id": "1", "link": "https://x.org/a"}, 131009, "image", "not both", id="media-id-and-link"),
    pytest.param("image", {"caption": "x"}, 131009, "image", "'id' or 'link'", id="media-neither-id-nor-link"),
    pytest.param("image", {"link": "ftp://x.org/a.jpg"}, 131009, "image.link", "http", id="media-link-ftp"),
    pytest.param("video", {"link": "/relative.mp4"}, 131009, "video.link", "http", id="media-link-relative"),
    pytest.param("document", {"link": "http://[::1"}, 131009, "document.link", "http", id="media-link-malformed"),
    pytest.param("image", {"id": ""}, 131008, "image.id", "empty", id="media-id-empty"),
    pytest.param("image", {"id": 12}, 100, "image.id", "str", id="media-id-number"),
    pytest.param("image", {"id": "1", "caption": "x" * 1025}, 131009, "image.caption", "1024", id="caption-1025"),
    pytest.param("image", {"id": "1", "filename": "a.jpg"}, 100, "image.filename", "Unexpected", id="image-filename"),
    pytest.param("video", {"id": "1", "filename": "a.mp4"}, 100, "video.filename", "Unexpected", id="video-filename"),
    pytest.param("audio", {"id": "1", "caption": "x"}, 100, "audio.caption", "Unexpected", id="audio-caption"),
    pytest.param("audio", {"id": "1", "voice": "yes"}, 100, "audio.voice", "bool", id="audio-voice-not-bool"),
    pytest.param("sticker", {"id": "1", "caption": "x"}, 100, "sticker.caption", "Unexpected", id="sticker-caption"),
    pytest.param("image", "1013859600285441", 100, "image", "object", id="media-not-object"),
    pytest.param("image", {"link": "https://x.org/a", "provider": {"name": "p"}}, 100, "image.provider", "", id="prov"),
    # location
    pytest.param("location", edit(LOCATION, "latitude", 90.5), 131009, "location.latitude", "90", id="latitude-90.5"),
    pytest.param("location", edit(LOCATION, "longitude", -181), 131009, "location.longitude", "180", id="lon-181"),
    pytest.param("location", edit(LOCATION, "latitude", DELETE), 131008, "location.latitude", "", id="latitude-gone"),
    pytest.param("location", edit(LOCATION, "latitude", "37.4"), 100, "location.latitude", "", id="latitude-string"),
    pytest.param("location", edit(LOCATION, "latitude", True), 100, "location.latitude", "", id="latitude-bool"),
    pytest.param("location", edit(LOCATION, "name", 7), 100, "location.name", "", id="location-name-number"),
    # contacts
    pytest.param("contacts", [], 131009, "contacts", "at least 1", id="contacts-empty"),
    pytest.param("contacts", CONTACT, 100, "contacts", "array", id="contacts-not-array"),
    pytest.param("contacts", [edit(CONTACT, "name", DELETE)], 131008, "contacts[0].name", "", id="contact-no-name"),
    pytest.param(
        "contacts",
        [CONTACT, edit(CONTACT, "name.formatted_name", DELETE)],
        131008,
        "contacts[1].name.formatted_name",
        "",
        id="contact-no-formatted-name",
    ),
    pytest.param(
        "contacts", [edit(CONTACT, "name.formatted_name", "")], 131008, "contacts[0].name.formatted_name", "", id="fn-0"
    ),
    pytest.param(
        "contacts", [edit(CONTACT, "phones[0].type", "FAX")], 131009, "contacts[0].phones[0].type", "FAX", id="phone"
    ),
    pytest.param(
        "contacts",
        [edit(CONTACT, "addresses[0].type", "OFFICE")],
        131009,
        "contacts[0].addresses[0].type",
        "",
        id="adr",
    ),
    pytest.param(
        "contacts", [edit(CONTACT, "emails[0].type", "home")], 131009, "contacts[0].emails[0].type", "", id="email-type"
    ),
    pytest.param(
        "contacts", [edit(CONTACT, "urls[0].type", "CELL")], 131009, "contacts[0].urls[0].type", "", id="url-type"
    ),
    pytest.param(
        "contacts", [edit(CONTACT, "birthday", "17.05.1990")], 131009, "contacts[0].birthday", "YYYY", id="bday-format"
    ),
    pytest.param(
        "contacts", [edit(CONTACT, "birthday", "1990-02-30")], 131009, "contacts[0].birthday", "YYYY", id="bday-date"
    ),
    pytest.param("contacts", [edit(CONTACT, "nick", "A")], 100, "contacts[0].nick", "Unexpected", id="contact-unknown"),
    pytest.param(
        "contacts", [edit(CONTACT, "ims", [{"service": "AIM"}])], 100, "contacts[0].ims", "Unexpected", id="ims-cloud"
    ),
    # interactive: shared rules
    pytest.param("interactive", edit(BUTTON, "type", DELETE), 131008, "interactive.type", "", id="ia-type-missing"),
    pytest.param("interactive", edit(BUTTON, "type", "carousel"), 131009, "interactive.type", "", id="ia-type-unknown"),
    pytest.param("interactive", edit(BUTTON, "type", 3), 100, "interactive.type", "", id="ia-type-number"),
    pytest.param("interactive", edit(BUTTON, "action", DELETE), 131008, "interactive.action", "", id="ia-no-action"),
    pytest.param("interactive", edit(BUTTON, "colour", "red"), 100, "interactive.colour", "", id="ia-unknown-key"),
    pytest.param("interactive", edit(BUTTON, "body", DELETE), 131008, "interactive.body", "", id="body-missing"),
    pytest.param("interactive", edit(BUTTON, "body.text", ""), 131008, "interactive.body.text", "", id="body-empty"),
    pytest.param(
        "interactive", edit(BUTTON, "body.text", "x" * 1025), 131009, "interactive.body.text", "1024", id="body-1025"
    ),
    pytest.param(
        "interactive", edit(BUTTON, "footer", {"text": "x" * 61}), 131009, "interactive.footer.text", "60", id="foot-61"
    ),
    pytest.param(
        "interactive",
        edit(BUTTON, "header", {"type": "text", "text": "x" * 61}),
        131009,
        "interactive.header.text",
        "60",
        id="header-text-61",
    ),
    pytest.param(
        "interactive",
        edit(BUTTON, "header", {"type": "text"}),
        131008,
        "interactive.header.text",
        "",
        id="header-text-missing",
    ),
    pytest.param(
        "interactive",
        edit(BUTTON, "header", {"type": "image", "text": "x"}),
        131008,
        "interactive.header.image",
        "",
        id="header-image-missing",
    ),
    pytest.param(
        "interactive",
        edit(BUTTON, "header", {"type": "image", "image": {"id": "1"}, "text": "x"}),
        131009,
        "interactive.header.text",
        "Not allowed",
        id="header-two-kinds",
    ),
    pytest.param(
        "interactive",
        edit(BUTTON, "header", {"type": "image", "image": {"id": "1", "caption": "c"}}),
        100,
        "interactive.header.image.caption",
        "",
        id="header-media-caption",
    ),
    pytest.param(
        "interactive",
        edit(BUTTON, "header", {"type": "image", "image": {"id": "1", "link": "https://x.org/a"}}),
        131009,
        "interactive.header.image",
        "not both",
        id="header-media-id-and-link",
    ),
    pytest.param(
        "interactive",
        edit(BUTTON, "header", {"type": "audio", "audio": {"id": "1"}}),
        131009,
        "interactive.header.type",
        "",
        id="header-audio",
    ),
    # interactive button
    pytest.param(
        "interactive",
        edit(BUTTON, "action.buttons", []),
        131009,
        "interactive.action.buttons",
        "Invalid buttons count. Min allowed buttons: 1, Max allowed buttons: 3",
        id="buttons-0",
    ),
    pytest.param(
        "interactive",
        edit(BUTTON, "action.buttons", [reply(i) for i in range(4)]),
        131009,
        "interactive.action.buttons",
        "Invalid buttons count",
        id="buttons-4",
    ),
    pytest.param(
        "interactive",
        edit(BUTTON, "action.buttons[1].reply.title", "x" * 21),
        131009,
        "interactive.action.buttons[1].reply.title",
        "Button title exceeds 20 characters",
        id="button-title-21",
    ),
    pytest.param(
        "interactive",
        edit(BUTTON, "action.buttons[0].reply.title", ""),
        131008,
        "interactive.action.buttons[0].reply.title",
        "",
        id="button-title-empty",
    ),
    pytest.param(
        "interactive",
        edit(BUTTON, "action.buttons[1].reply.title", "Option 0"),
        131009,
        "interactive.action.buttons[1].reply.title",
        "unique",
        id="button-title-duplicate",
    ),
    pytest.param(
        "interactive",
        edit(BUTTON, "action.buttons[1].reply.id", "id-0"),
        131009,
        "interactive.action.buttons[1].reply.id",
        "unique",
        id="button-id-duplicate",
    ),
    pytest.param(
        "interactive",
        edit(BUTTON, "action.buttons[0].reply.id", "i" * 257),
        131009,
        "interactive.action.buttons[0].reply.id",
        "256",
        id="button-id-257",
    ),
    pytest.param(
        "interactive",
        edit(BUTTON, "action.buttons[0].reply.id", " yes"),
        131009,
        "interactive.action.buttons[0].reply.id",
        "spaces",
        id="button-id-leading-space",
    ),
    pytest.param(
        "interactive",
        edit(BUTTON, "action.buttons[0].type", "url"),
        131009,
        "interactive.action.buttons[0].type",
        "",
        id="button-type-not-reply",
    ),
    pytest.param(
        "interactive",
        edit(BUTTON, "action.buttons[0].reply", DELETE),
        131008,
        "interactive.action.buttons[0].reply",
        "",
        id="button-reply-missing",
    ),
    # interactive list
    pytest.param(
        "interactive",
        edit(LIST, "header", {"type": "image", "image": {"id": "1"}}),
        131009,
        "interactive.header.type",
        "text",
        id="list-image-header",
    ),
    pytest.param(
        "interactive",
        edit(LIST, "action.button", "x" * 21),
        131009,
        "interactive.action.button",
        "Button label is too long. Max length is 20",
        id="list-button-21",
    ),
    pytest.param(
        "interactive", edit(LIST, "action.button", DELETE), 131008, "interactive.action.button", "", id="list-no-button"
    ),
    pytest.param(
        "interactive", edit(LIST, "action.sections", []), 131009, "interactive.action.sections", "", id="sections-0"
    ),
    pytest.param(
        "interactive",
        edit(LIST, "action.sections", [{"title": f"S{i}", "rows": [{"id": f"r{i}", "title": "t"}]} for i in range(11)]),
        131009,
        "interactive.action.sections",
        "10",
        id="sections-11",
    ),
    pytest.param(
        "interactive",
        edit(LIST, "action.sections[1].title", DELETE),
        131008,
        "interactive.action.sections[1].title",
        "more than one section",
        id="section-title-missing",
    ),
    pytest.param(
        "interactive",
        edit(LIST, "action.sections[0].title", "x" * 25),
        131009,
        "interactive.action.sections[0].title",
        "24",
        id="section-title-25",
    ),
    pytest.param(
        "interactive",
        edit(LIST, "action.sections", TOO_MANY_ROWS),
        131009,
        "interactive.action.sections",
        "Total rows",
        id="rows-12-in-total",
    ),
    pytest.param(
        "interactive",
        edit(LIST, "action.sections[0].rows", []),
        131009,
        "interactive.action.sections[0].rows",
        "",
        id="rows-empty",
    ),
    pytest.param(
        "interactive",
        edit(LIST, "action.sections[0].rows[0].id", "x" * 201),
        131009,
        "interactive.action.sections[0].rows[0].id",
        "200",
        id="row-id-201",
    ),
    pytest.param(
        "interactive",
        edit(LIST, "action.sections[0].rows[0].title", "x" * 25),
        131009,
        "interactive.action.sections[0].rows[0].title",
        "24",
        id="row-title-25",
    ),
    pytest.param(
        "interactive",
        edit(LIST, "action.sections[0].rows[0].title", DELETE),
        131008,
        "interactive.action.sections[0].rows[0].title",
        "",
        id="row-title-missing",
    ),
    pytest.param(
        "interactive",
        edit(LIST, "action.sections[0].rows[0].description", "x" * 73),
        131009,
        "interactive.action.sections[0].rows[0].description",
        "72",
        id="row-description-73",
    ),
    pytest.param(
        "interactive",
        edit(LIST, "action.sections[1].rows[0].id", "tea"),
        131009,
        "interactive.action.sections[1].rows[0].id",
        "unique",
        id="row-id-duplicate",
    ),
    # interactive cta_url
    pytest.param(
        "interactive",
        edit(CTA_URL, "action.parameters.display_text", "x" * 21),
        131009,
        "interactive.action.parameters.display_text",
        "20",
        id="cta-display-text-21",
    ),
    pytest.param(
        "interactive",
        edit(CTA_URL, "action.parameters.url", DELETE),
        131008,
        "interactive.action.parameters.url",
        "",
        id="cta-url-missing",
    ),
    pytest.param(
        "interactive",
        edit(CTA_URL, "action.parameters.url", "example.com/x"),
        131009,
        "interactive.action.parameters.url",
        "http",
        id="cta-url-no-scheme",
    ),
    pytest.param(
        "interactive", edit(CTA_URL, "action.name", "url"), 131009, "interactive.action.name", "", id="cta-name-wrong"
    ),
    pytest.param("interactive", edit(CTA_URL, "body", DELETE), 131008, "interactive.body", "", id="cta-no-body"),
    # interactive flow
    pytest.param(
        "interactive",
        edit(FLOW, "action.parameters.flow_message_version", "2"),
        131009,
        "interactive.action.parameters.flow_message_version",
        "",
        id="flow-version-2",
    ),
    pytest.param(
        "interactive",
        edit(FLOW, "action.parameters.flow_message_version", 3),
        100,
        "interactive.action.parameters.flow_message_version",
        "",
        id="flow-version-number",
    ),
    pytest.param(
        "interactive",
        edit(FLOW, "action.parameters.flow_name", "booking"),
        131009,
        "interactive.action.parameters",
        "exactly one of 'flow_id' or 'flow_name'",
        id="flow-id-and-name",
    ),
    pytest.param(
        "interactive",
        edit(FLOW, "action.parameters.flow_id", DELETE),
        131009,
        "interactive.action.parameters",
        "exactly one",
        id="flow-neither-id-nor-name",
    ),
    pytest.param(
        "interactive",
        edit(FLOW, "action.parameters.flow_cta", "x" * 21),
        131009,
        "interactive.action.parameters.flow_cta",
        "20",
        id="flow-cta-21",
    ),
    pytest.param(
        "interactive",
        edit(FLOW, "action.parameters.flow_cta", "Go \U0001f680"),
        131009,
        "interactive.action.parameters.flow_cta",
        "emoji",
        id="flow-cta-emoji",
    ),
    pytest.param(
        "interactive",
        edit(FLOW, "action.parameters.flow_action", "open"),
        131009,
        "interactive.action.parameters.flow_action",
        "",
        id="flow-action-unknown",
    ),
    pytest.param(
        "interactive",
        edit(FLOW, "action.parameters.flow_action_payload", DELETE),
        131008,
        "interactive.action.parameters.flow_action_payload",
        "navigate",
        id="flow-navigate-no-payload",
    ),
    pytest.param(
        "interactive",
        edit(FLOW, "action.parameters.flow_action_payload.screen", DELETE),
        131008,
        "interactive.action.parameters.flow_action_payload.screen",
        "",
        id="flow-payload-no-screen",
    ),
    pytest.param(
        "interactive",
        edit(FLOW, "action.parameters.flow_action_payload.data", {}),
        131009,
        "interactive.action.parameters.flow_action_payload.data",
        "empty",
        id="flow-data-empty",
    ),
    pytest.param(
        "interactive",
        edit(FLOW_DATA_EXCHANGE, "action.parameters.flow_action_payload", {"screen": "A"}),
        131009,
        "interactive.action.parameters.flow_action_payload",
        "data_exchange",
        id="flow-data-exchange-with-payload",
    ),
    pytest.param(
        "interactive",
        edit(FLOW, "action.parameters.mode", "live"),
        131009,
        "interactive.action.parameters.mode",
        "",
        id="flow-mode-unknown",
    ),
    # interactive product, product_list, catalog_message
    pytest.param(
        "interactive",
        edit(PRODUCT, "header", {"type": "text", "text": "x"}),
        131009,
        "interactive.header",
        "does not take a header",
        id="product-header",
    ),
    pytest.param(
        "interactive",
        edit(PRODUCT, "action.catalog_id", DELETE),
        131008,
        "interactive.action.catalog_id",
        "",
        id="product-no-catalog",
    ),
    pytest.param(
        "interactive", edit(PRODUCT_LIST, "header", DELETE), 131008, "interactive.header", "text", id="mpm-no-header"
    ),
    pytest.param(
        "interactive",
        edit(PRODUCT_LIST, "header", {"type": "video", "video": {"id": "1"}}),
        131009,
        "interactive.header.type",
        "",
        id="mpm-video-header",
    ),
    pytest.param("interactive", edit(PRODUCT_LIST, "body", DELETE), 131008, "interactive.body", "", id="mpm-no-body"),
    pytest.param(
        "interactive", edit(PRODUCT_LIST, "action.sections", []), 131009, "interactive.action.sections", "", id="mpm-s0"
    ),
    pytest.param(
        "interactive",
        edit(PRODUCT_LIST, "action.sections", [{"title": f"S{i}", "product_items": ITEMS[:1]} for i in range(11)]),
        131009,
        "interactive.action.sections",
        "10",
        id="mpm-sections-11",
    ),
    pytest.param(
        "interactive",
        edit(
            PRODUCT_LIST,
            "action.sections",
            [{"title": "A", "product_items": ITEMS}, {"title": "B", "product_items": ITEMS}],
        ),
        131009,
        "interactive.action.sections",
        "Total products",
        id="mpm-32-products",
    ),
    pytest.param(
        "interactive",
        edit(PRODUCT_LIST, "action.sections[1].title", DELETE),
        131008,
        "interactive.action.sections[1].title",
        "",
        id="mpm-section-title-missing",
    ),
    pytest.param(
        "interactive",
        edit(PRODUCT_LIST, "action.sections[0].product_items", []),
        131009,
        "interactive.action.sections[0].product_items",
        "",
        id="mpm-items-empty",
    ),
    pytest.param(
        "interactive",
        edit(CATALOG, "header", {"type": "text", "text": "x"}),
        131009,
        "interactive.header",
        "",
        id="catalog-header",
    ),
    pytest.param(
        "interactive", edit(CATALOG, "action.name", "catalog"), 131009, "interactive.action.name", "", id="catalog-name"
    ),
    pytest.param("interactive", edit(CATALOG, "body", DELETE), 131008, "interactive.body", "", id="catalog-no-body"),
    pytest.param(
        "interactive",
        edit(CATALOG, "action.parameters.thumbnail_product_retailer_id", ""),
        131008,
        "interactive.action.parameters.thumbnail_product_retailer_id",
        "",
        id="catalog-thumbnail-empty",
    ),
    # template
    pytest.param("template", edit(TEMPLATE, "name", DELETE), 131008, "template.name", "", id="tpl-no-name"),
    pytest.param("template", edit(TEMPLATE, "language", DELETE), 131008, "template.language", "", id="tpl-no-lang"),
    pytest.param(
        "template", edit(TEMPLATE, "language.code", DELETE), 131008, "template.language.code", "", id="tpl-no-code"
    ),
    pytest.param(
        "template", edit(TEMPLATE, "language.policy", "fallback"), 131009, "template.language.policy", "", id="policy"
    ),
    pytest.param("template", edit(TEMPLATE, "namespace", "ns"), 100, "template.namespace", "", id="tpl-namespace"),
    pytest.param("template", edit(TEMPLATE, "components", {}), 100, "template.components", "", id="tpl-components"),
    pytest.param(
        "template",
        edit(TEMPLATE, "components[0].type", "footer"),
        131009,
        "template.components[0].type",
        "",
        id="component-type-unknown",
    ),
    pytest.param(
        "template",
        edit(TEMPLATE, "components[0].type", DELETE),
        131008,
        "template.components[0].type",
        "",
        id="component-type-missing",
    ),
    pytest.param(
        "template",
        edit(TEMPLATE, "components[3]", TEMPLATE["components"][1]),
        131009,
        "template.components[3]",
        "one body",
        id="two-body-components",
    ),
    pytest.param(
        "template",
        edit(TEMPLATE, "components[1].parameters[0]", {"type": "image", "image": {"id": "1"}}),
        131009,
        "template.components[1].parameters[0].type",
        "body",
        id="body-image-parameter",
    ),
    pytest.param(
        "template",
        edit(TEMPLATE, "components[0].parameters[0]", {"type": "payload", "payload": "x"}),
        131009,
        "template.components[0].parameters[0].type",
        "header",
        id="header-payload-parameter",
    ),
    pytest.param(
        "template",
        edit(TEMPLATE, "components[3].parameters[0]", {"type": "payload", "payload": "x"}),
        131009,
        "template.components[3].parameters[0].type",
        "url button",
        id="url-button-payload",
    ),
    pytest.param(
        "template",
        edit(TEMPLATE, "components[1].parameters[0].type", "emoji"),
        131009,
        "template.components[1].parameters[0].type",
        "",
        id="parameter-type-unknown",
    ),
    pytest.param(
        "template",
        edit(TEMPLATE, "components[1].parameters[0].text", DELETE),
        131008,
        "template.components[1].parameters[0].text",
        "",
        id="text-parameter-no-text",
    ),
    pytest.param(
        "template",
        edit(TEMPLATE, "components[1].parameters[0].text", ""),
        131008,
        "template.components[1].parameters[0].text",
        "",
        id="text-parameter-empty",
    ),
    pytest.param(
        "template",
        edit(TEMPLATE, "components[1].parameters[1].currency.code", "usd"),
        131009,
        "template.components[1].parameters[1].currency.code",
        "ISO 4217",
        id="currency-code",
    ),
    pytest.param(
        "template",
        edit(TEMPLATE, "components[1].parameters[1].currency.amount_1000", "10500"),
        100,
        "template.components[1].parameters[1].currency.amount_1000",
        "",
        id="currency-amount-string",
    ),
    pytest.param(
        "template",
        edit(TEMPLATE, "components[1].parameters[2].date_time.fallback_value", DELETE),
        131008,
        "template.components[1].parameters[2].date_time.fallback_value",
        "",
        id="date-time-no-fallback",
    ),
    pytest.param(
        "template",
        edit(TEMPLATE, "components[0].parameters[0].image", {"id": "1", "link": "https://x.org/a"}),
        131009,
        "template.components[0].parameters[0].image",
        "not both",
        id="header-image-id-and-link",
    ),
    pytest.param(
        "template",
        edit(TEMPLATE, "components[0].parameters[0].image.caption", "c"),
        100,
        "template.components[0].parameters[0].image.caption",
        "",
        id="header-image-caption",
    ),
    pytest.param(
        "template",
        edit(TEMPLATE, "components[2].sub_type", DELETE),
        131008,
        "template.components[2].sub_type",
        "",
        id="button-no-sub-type",
    ),
    pytest.param(
        "template",
        edit(TEMPLATE, "components[2].sub_type", "call"),
        131009,
        "template.components[2].sub_type",
        "",
        id="button-sub-type-unknown",
    ),
    pytest.param(
        "template",
        edit(TEMPLATE, "components[2].index", DELETE),
        131008,
        "template.components[2].index",
        "",
        id="button-no-index",
    ),
    pytest.param(
        "template",
        edit(TEMPLATE, "components[2].index", 0),
        100,
        "template.components[2].index",
        "str",
        id="button-index-integer-cloud",
    ),
    pytest.param(
        "template",
        edit(TEMPLATE, "components[2].index", "first"),
        131009,
        "template.components[2].index",
        "0 to 9",
        id="button-index-word",
    ),
    pytest.param(
        "template",
        edit(TEMPLATE, "components[2].index", "10"),
        131009,
        "template.components[2].index",
        "0 to 9",
        id="button-index-10",
    ),
    pytest.param(
        "template",
        edit(TEMPLATE_NAMED, "components[0].parameters[0].parameter_name", "Shop"),
        131009,
        "template.components[0].parameters[0].parameter_name",
        "lowercase",
        id="parameter-name-uppercase",
    ),
    pytest.param(
        "template",
        edit(TEMPLATE_NAMED, "components[1].parameters[0].parameter_name", "x" * 21),
        131009,
        "template.components[1].parameters[0].parameter_name",
        "20",
        id="parameter-name-21",
    ),
    pytest.param(
        "template",
        edit(TEMPLATE_NAMED, "components[1].parameters[0].parameter_name", DELETE),
        131009,
        "template.components[1].parameters[0]",
        "all have a 'parameter_name' or none",
        id="named-and-positional-mixed",
    ),
    pytest.param(
        "template",
        edit(TEMPLATE_LOCATION, "components[0].parameters[0].location.latitude", "north"),
        131009,
        "template.components[0].parameters[0].location.latitude",
        "number",
        id="template-latitude-word",
    ),
    pytest.param(
        "template",
        edit(TEMPLATE_LOCATION, "components[0].parameters[0].location.longitude", 180.5),
        131009,
        "template.components[0].parameters[0].location.longitude",
        "180",
        id="template-longitude-180.5",
    ),
    # reaction
    pytest.param("reaction", edit(REACTION, "message_id", DELETE), 131008, "reaction.message_id", "", id="react-no-id"),
    pytest.param("reaction", edit(REACTION, "emoji", DELETE), 131008, "reaction.emoji", "", id="react-no-emoji"),
    pytest.param("reaction", edit(REACTION, "emoji", "ok"), 131009, "reaction.emoji", "single emoji", id="react-text"),
    pytest.param(
        "reaction", edit(REACTION, "emoji", "\U0001f600\U0001f600"), 131009, "reaction.emoji", "", id="react-two-emoji"
    ),
    pytest.param("reaction", edit(REACTION, "emoji", "1"), 131009, "reaction.emoji", "", id="react-digit"),
    pytest.param("reaction", edit(REACTION, "emoji", 1), 100, "reaction.emoji", "", id="react-emoji-number"),
]


@pytest.mark.parametrize(("type_name", "content", "code", "path", "rule"), INVALID)
def test_each_rule_broken_once(type_name: str, content: Any, code: int, path: str, rule: str) -> None:
    error = error_of(type_name, content)
    assert error.code == code, error.details
    assert error.http_status == 400
    assert f"'{path}'" in error.details
    assert rule in error.details


@pytest.mark.parametrize("type_name", ["hsm", "carousel", "order", "button"])
def test_unknown_message_type_is_131051(type_name: str) -> None:
    assert error_of(type_name, {}).code == 131051


# --- dialects -----------------------------------------------------------------------

ON_PREMISE_ONLY = [
    pytest.param("template", edit(TEMPLATE, "namespace", "c8ae5f90_307a_ca4c_b8f6_d1e2a2573574"), id="namespace"),
    pytest.param("template", edit(TEMPLATE, "components[2].index", 0), id="integer-index"),
    pytest.param("contacts", [edit(CONTACT, "ims", [{"service": "AIM", "user_id": "ann"}])], id="contact-ims"),
    pytest.param(
        "image",
        {"link": "https://example.org/a.jpg", "provider": {"name": "cdn", "config": {"bearer": {"bearer": "t"}}}},
        id="media-provider",
    ),
    pytest.param(
        "document",
        {
            "link": "https://example.org/a.pdf",
            "provider": {"name": "cdn", "config": {"basic": {"username": "u", "password": "p"}}},
        },
        id="media-provider-basic",
    ),
]


@pytest.mark.parametrize(("type_name", "content"), ON_PREMISE_ONLY)
def test_on_premise_extensions(type_name: str, content: Any) -> None:
    message = send(type_name, content, ON_PREMISE)
    expected = {"contacts": content} if type_name == "contacts" else content
    assert message.content == expected
    error = error_of(type_name, content, CLOUD)
    assert error.code == 100


def test_on_premise_defaults_type_to_text_and_tolerates_messaging_product() -> None:
    raw = json.dumps({"to": "4915112345678", "messaging_product": "whatsapp", "text": {"body": "hi"}}).encode()
    message = parse_send_request(raw, ON_PREMISE)
    assert (message.type, message.content) == ("text", {"body": "hi", "preview_url": False})


def test_on_premise_integer_index_still_checked() -> None:
    error = error_of("template", edit(TEMPLATE, "components[2].index", 12), ON_PREMISE)
    assert error.code == 131009
    assert "'template.components[2].index'" in error.details


def test_on_premise_provider_is_checked() -> None:
    error = error_of("image", {"link": "https://x.org/a.jpg", "provider": {"type": "www"}}, ON_PREMISE)
    assert (error.code, "'image.provider.name'" in error.details) == (131008, True)


# --- mark as read and the typing indicator ---------------------------------------------

READ = {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFE"}


@pytest.mark.parametrize(
    ("body", "dialect", "expected"),
    [
        pytest.param(READ, CLOUD, ReadRequest(READ["message_id"], typing=False), id="read"),
        pytest.param(
            {**READ, "typing_indicator": {"type": "text"}},
            CLOUD,
            ReadRequest(READ["message_id"], typing=True),
            id="read-and-typing",
        ),
        pytest.param(
            edit(READ, "messaging_product", DELETE),
            ON_PREMISE,
            ReadRequest(READ["message_id"], typing=False),
            id="on-premise-without-product",
        ),
        pytest.param(READ, ON_PREMISE, ReadRequest(READ["message_id"], typing=False), id="on-premise-with-product"),
    ],
)
def test_read_requests(body: dict[str, Any], dialect: Dialect, expected: ReadRequest) -> None:
    assert parse_messages_body(json.dumps(body).encode(), dialect) == expected


@pytest.mark.parametrize(
    ("body", "code", "path"),
    [
        pytest.param(edit(READ, "messaging_product", DELETE), 131008, "messaging_product", id="cloud-no-product"),
        pytest.param(edit(READ, "status", "delivered"), 131009, "status", id="status-delivered"),
        pytest.param(edit(READ, "status", 1), 100, "status", id="status-number"),
        pytest.param(edit(READ, "message_id", DELETE), 131008, "message_id", id="no-message-id"),
        pytest.param(edit(READ, "message_id", ""), 131008, "message_id", id="message-id-empty"),
        pytest.param(edit(READ, "message_id", 5), 100, "message_id", id="message-id-number"),
        pytest.param(
            {**READ, "typing_indicator": {"type": "audio"}}, 131009, "typing_indicator.type", id="typing-audio"
        ),
        pytest.param({**READ, "typing_indicator": {}}, 131008, "typing_indicator.type", id="typing-no-type"),
        pytest.param({**READ, "typing_indicator": True}, 100, "typing_indicator", id="typing-not-object"),
        pytest.param(
            {**READ, "typing_indicator": {"type": "text", "for": 25}}, 100, "typing_indicator.for", id="typing-unknown"
        ),
        pytest.param({**READ, "to": "4915112345678"}, 100, "to", id="unknown-key"),
    ],
)
def test_invalid_read_requests(body: dict[str, Any], code: int, path: str) -> None:
    with pytest.raises(RequestError) as info:
        parse_messages_body(json.dumps(body).encode(), CLOUD)
    assert info.value.code == code, info.value.details
    assert f"'{path}'" in info.value.details


def test_messages_body_without_status_is_a_send() -> None:
    message = parse_messages_body(request("interactive", BUTTON), CLOUD)
    assert isinstance(message, OutgoingMessage)
    assert message.type == "interactive"


def test_on_premise_put_read_body() -> None:
    assert parse_read_body(b'{"status": "read"}') is None


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        pytest.param(b"", 100, id="empty"),
        pytest.param(b"[]", 100, id="array"),
        pytest.param(b"{}", 131008, id="no-status"),
        pytest.param(b'{"status": "deleted"}', 131009, id="other-status"),
        pytest.param(b'{"status": true}', 100, id="status-bool"),
        pytest.param(b'{"status": "read", "message_id": "x"}', 100, id="extra-key"),
    ],
)
def test_invalid_on_premise_put_read_body(raw: bytes, code: int) -> None:
    with pytest.raises(RequestError) as info:
        parse_read_body(raw)
    assert info.value.code == code
    assert info.value.details


# --- media references ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("type_name", "content", "ids"),
    [
        pytest.param("image", IMAGE, [IMAGE["id"]], id="image-id"),
        pytest.param("document", DOCUMENT, [], id="document-link"),
        pytest.param("sticker", STICKER, [STICKER["id"]], id="sticker"),
        pytest.param("text", {"body": "hi"}, [], id="text"),
        pytest.param("interactive", edit(BUTTON, "header", {"type": "video", "video": {"id": "v7"}}), ["v7"], id="hdr"),
        pytest.param("interactive", LIST, [], id="text-header"),
        pytest.param("interactive", edit(LIST, "header.text", "id"), [], id="text-header-reading-id"),
        pytest.param("interactive", PRODUCT, [], id="no-header"),
        pytest.param("template", TEMPLATE, ["55501"], id="template-image"),
        pytest.param(
            "template",
            edit(TEMPLATE, "components[0].parameters[0]", {"type": "document", "document": {"id": "d1"}}),
            ["d1"],
            id="template-document",
        ),
        pytest.param("template", TEMPLATE_LOCATION, [], id="template-location"),
        pytest.param("contacts", [CONTACT], [], id="contacts"),
    ],
)
def test_media_references(type_name: str, content: Any, ids: list[str]) -> None:
    assert media_references(send(type_name, content)) == ids


# --- never anything but a result or a RequestError -----------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
# Values and keys that sit on the edges of the rules, so mutations reach past the first check.
_edge_values = st.sampled_from(
    [
        "",
        " x ",
        "x" * 21,
        "x" * 1025,
        "https://x.org/a",
        "ftp://x",
        "text",
        "image",
        "reply",
        "read",
        "3",
        "0",
        "10",
        "USD",
        "\U0001f600",
        0,
        -1,
        91,
        181,
        1.5,
        True,
        None,
        [],
        {},
        [{}],
        {"text": "x"},
        {"id": "1"},
    ]
)
_keys = st.sampled_from(
    [
        "id",
        "link",
        "caption",
        "filename",
        "provider",
        "type",
        "text",
        "header",
        "body",
        "footer",
        "title",
        "rows",
        "namespace",
        "ims",
        "index",
        "parameter_name",
        "status",
        "typing_indicator",
        "flow_name",
        "flow_action_payload",
    ]
)
_BASES = [
    json.loads(request(type_name, content))
    for type_name, content in [
        ("text", TEXT),
        ("image", IMAGE),
        ("audio", AUDIO),
        ("video", VIDEO),
        ("document", DOCUMENT),
        ("sticker", STICKER),
        ("location", LOCATION),
        ("contacts", [CONTACT]),
        ("interactive", BUTTON),
        ("interactive", LIST),
        ("interactive", CTA_URL),
        ("interactive", FLOW),
        ("interactive", FLOW_DATA_EXCHANGE),
        ("interactive", PRODUCT),
        ("interactive", PRODUCT_LIST),
        ("interactive", CATALOG),
        ("template", TEMPLATE),
        ("template", TEMPLATE_NAMED),
        ("template", TEMPLATE_LOCATION),
        ("reaction", REACTION),
    ]
] + [{**READ, "typing_indicator": {"type": "text"}}]


def _containers(node: Any) -> list[Any]:
    """Every object and array inside `node`, `node` included."""
    if isinstance(node, dict):
        return [node, *(c for value in node.values() for c in _containers(value))]
    if isinstance(node, list):
        return [node, *(c for value in node for c in _containers(value))]
    return []


@st.composite
def mutated_requests(draw: st.DrawFn) -> Any:
    document = copy.deepcopy(draw(st.sampled_from(_BASES)))
    for _ in range(draw(st.integers(1, 3))):
        target = draw(st.sampled_from(_containers(document)))
        value = copy.deepcopy(draw(st.one_of(json_values, _edge_values)))  # drawn values must stay unchanged
        operation = draw(st.sampled_from(["drop", "replace", "add"]))
        if operation == "add" or not target:
            if isinstance(target, dict):
                target[draw(st.one_of(_keys, st.text(max_size=8)))] = value
            else:
                target.append(value)
            continue
        slot = draw(st.sampled_from(sorted(target) if isinstance(target, dict) else range(len(target))))
        if operation == "drop":
            del target[slot]
        else:
            target[slot] = value
    return document


def _check_total(document: Any, dialect: Dialect) -> None:
    try:
        result = parse_messages_body(json.dumps(document).encode(), dialect)
    except RequestError as error:
        assert error.http_status == 400
        assert error.details
        return
    if isinstance(result, OutgoingMessage):
        assert result.wa_id.isdigit()
        assert json.loads(json.dumps(result.content)) == result.content
        assert all(isinstance(media_id, str) for media_id in media_references(result))
    else:
        assert isinstance(result, ReadRequest)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=mutated_requests(), dialect=st.sampled_from(Dialect))
def test_mutated_requests_yield_result_or_request_error(document: Any, dialect: Dialect) -> None:
    _check_total(document, dialect)


@settings(max_examples=200, deadline=None)
@given(document=json_values, dialect=st.sampled_from(Dialect))
def test_any_json_yields_result_or_request_error(document: Any, dialect: Dialect) -> None:
    _check_total(document, dialect)

"""Every inbound message type and status shape of the references, in both formats,
parsed into the typed objects (payloads rendered by openwaba's own renderers, plus
literal examples from Meta's and 360dialog's documentation)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from openwaba.receiver import (
    Event,
    Message,
    Status,
    TemplateStatus,
    Unknown,
    WebhookError,
    parse_body,
    parse_document,
)
from openwaba.receiver.parsing import BodyError

from .support import DISPLAY, PHONE_NUMBER_ID, USER, USER_NAME, WABA_ID, cloud, message, on_premise, status

FORMATS = {"cloud": cloud, "on_premise": on_premise}
Check = Callable[[Message], Any]

# (case, messages[0] item, what must hold of the parsed Message)
INBOUND: list[tuple[str, dict[str, Any], Check]] = [
    (
        "text",
        message("wamid.T", "text", {"body": "Does it come in another color?"}),
        lambda m: m.text == "Does it come in another color?",
    ),
    (
        "image with url",
        message(
            "wamid.I",
            "image",
            {
                "mime_type": "image/jpeg",
                "sha256": "4654+8g=",
                "id": "65463453",
                "caption": "optional",
                "url": "https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=65463453",
            },
        ),
        lambda m: (
            m.media is not None
            and (m.media.id, m.media.caption, m.media.mime_type) == ("65463453", "optional", "image/jpeg")
            and m.media.url is not None
            and m.text is None
        ),
    ),
    (
        "video",
        message("wamid.V", "video", {"caption": "caption", "mime_type": "video/mp4", "sha256": "x", "id": "765756756"}),
        lambda m: m.media is not None and m.media.id == "765756756",
    ),
    (
        "document",
        message(
            "wamid.D",
            "document",
            {
                "caption": "caption",
                "filename": "filename.pdf",
                "mime_type": "application/pdf",
                "sha256": "x",
                "id": "123",
            },
        ),
        lambda m: m.media is not None and m.media.filename == "filename.pdf",
    ),
    (
        "voice note",
        message("wamid.A", "audio", {"mime_type": "audio/ogg; codecs=opus", "sha256": "x", "id": "123", "voice": True}),
        lambda m: m.media is not None and m.media.voice and not m.media.animated,
    ),
    (
        "animated sticker",
        message("wamid.S", "sticker", {"mime_type": "image/webp", "sha256": "x", "id": "123", "animated": True}),
        lambda m: m.media is not None and m.media.animated,
    ),
    (
        "location",
        message(
            "wamid.L",
            "location",
            {
                "latitude": 37.4611978,
                "longitude": -122.2164385,
                "name": "Facebook HQ",
                "address": "1 Hacker Way, Menlo Park, CA 94025",
                "url": "https://maps.google.com/?cid=1",
            },
        ),
        lambda m: m.location is not None and m.location.latitude == 37.4611978 and m.location.name == "Facebook HQ",
    ),
    (
        "current location",
        message("wamid.L2", "location", {"latitude": 1.5, "longitude": 2.5}),
        lambda m: m.location is not None and (m.location.longitude, m.location.name) == (2.5, None),
    ),
    (
        "contacts",
        message(
            "wamid.C",
            "contacts",
            [
                {
                    "name": {"first_name": "Chandler", "last_name": "Bing", "formatted_name": "Chandler Bing"},
                    "phones": [{"phone": "+1 555-555-5555", "wa_id": "15555555555", "type": "CELL"}],
                }
            ],
        ),
        lambda m: m.contacts[0].formatted_name == "Chandler Bing" and m.contacts[0].phones[0].wa_id == "15555555555",
    ),
    (
        "button_reply",
        message(
            "wamid.B",
            "interactive",
            {"type": "button_reply", "button_reply": {"id": "callback_data", "title": "title"}},
            context={"from": DISPLAY, "id": "wamid.business"},
        ),
        lambda m: (
            m.interactive is not None
            and (m.interactive.type, m.interactive.id, m.interactive.title)
            == ("button_reply", "callback_data", "title")
            and m.reply_to == "wamid.business"
        ),
    ),
    (
        "list_reply",
        message(
            "wamid.LR",
            "interactive",
            {"type": "list_reply", "list_reply": {"id": "row-id", "title": "Row title", "description": "optional"}},
        ),
        lambda m: m.interactive is not None and m.interactive.description == "optional",
    ),
    (
        "nfm_reply (Flow)",
        message(
            "wamid.N",
            "interactive",
            {
                "type": "nfm_reply",
                "nfm_reply": {
                    "response_json": '{"flow_token":"AQAAAA","field":"value"}',
                    "body": "Sent",
                    "name": "flow",
                },
            },
        ),
        lambda m: m.interactive is not None and m.interactive.response == {"flow_token": "AQAAAA", "field": "value"},
    ),
    (
        "template quick reply",
        message(
            "wamid.QR",
            "button",
            {"payload": "callback_data", "text": "title"},
            context={"from": DISPLAY, "id": "wamid.template"},
        ),
        lambda m: (
            m.button is not None
            and (m.button.payload, m.button.text) == ("callback_data", "title")
            and m.reply_to == "wamid.template"
        ),
    ),
    (
        "reaction",
        message("wamid.R", "reaction", {"message_id": "wamid.reacted", "emoji": "\U0001f62e"}),
        lambda m: (
            m.reaction is not None and (m.reaction.message_id, m.reaction.emoji) == ("wamid.reacted", "\U0001f62e")
        ),
    ),
    (
        "reaction removed (empty)",
        message("wamid.R2", "reaction", {"message_id": "wamid.reacted", "emoji": ""}),
        lambda m: m.reaction is not None and m.reaction.emoji is None,
    ),
    (
        "reaction removed (missing)",
        message("wamid.R3", "reaction", {"message_id": "wamid.reacted"}),
        lambda m: m.reaction is not None and m.reaction.emoji is None,
    ),
    (
        "order",
        message(
            "wamid.O",
            "order",
            {
                "catalog_id": "354160437058781",
                "text": "",
                "product_items": [
                    {"product_retailer_id": "HAMBURGER", "quantity": 3, "item_price": 30, "currency": "ILS"}
                ],
            },
        ),
        lambda m: m.raw["order"]["product_items"][0]["quantity"] == 3,
    ),
    (
        "system",
        message(
            "wamid.SY",
            "system",
            {
                "body": "User A changed from \u200e16505551234 to 16505550000\u200e",
                "wa_id": "16505550000",
                "type": "user_changed_number",
            },
        ),
        lambda m: m.raw["system"]["wa_id"] == "16505550000",
    ),
    (
        "unsupported",
        message(
            "wamid.U",
            "unsupported",
            {"type": "poll"},
            errors=[
                {
                    "code": 131051,
                    "title": "Message type unknown",
                    "message": "Message type unknown",
                    "error_data": {"details": "Message type is currently not supported."},
                }
            ],
        ),
        lambda m: (
            m.errors[0].code in (131051, 501) and m.errors[0].details == "Message type is currently not supported."
        ),
    ),
    (
        "unknown (older name)",
        {
            "from": USER,
            "id": "wamid.UK",
            "timestamp": "1",
            "type": "unknown",
            "errors": [{"code": 131051, "title": "Unsupported message type"}],
        },
        lambda m: m.type == "unknown" and m.errors[0].title == "Unsupported message type",
    ),
    (
        "interactive with error, no content",
        {"from": USER, "id": "wamid.IE", "timestamp": "1", "type": "interactive"},
        lambda m: m.interactive is None,
    ),
    (
        "forwarded, with referral",
        message(
            "wamid.F",
            context={"forwarded": True, "frequently_forwarded": True},
            referral={"source_url": "https://fb.me/x", "ctwa_clid": "abc"},
        ),
        lambda m: (
            m.context is not None
            and m.context.forwarded
            and m.context.frequently_forwarded
            and m.reply_to is None
            and m.raw["referral"]["ctwa_clid"] == "abc"
        ),
    ),
    (
        "a type from the future",
        message("wamid.NEW", "request_welcome", {}),
        lambda m: m.type == "request_welcome" and m.raw["request_welcome"] == {},
    ),
]


def only(events: list[Event]) -> Event:
    assert len(events) == 1, events
    return events[0]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(("case", "item", "check"), INBOUND, ids=[case for case, _, _ in INBOUND])
def test_every_inbound_type_parses(fmt: str, case: str, item: dict[str, Any], check: Check) -> None:
    body = FORMATS[fmt]({"messages": [item]})
    parsed = only(parse_body(body))
    assert isinstance(parsed, Message)
    assert (parsed.id, parsed.from_, parsed.wa_id, parsed.type) == (item["id"], USER, USER, item["type"])
    assert parsed.timestamp == int(item["timestamp"]) and parsed.format == fmt
    assert parsed.profile_name == USER_NAME
    posted = json.loads(body)
    assert parsed.raw == (posted["entry"][0]["changes"][0]["value"] if fmt == "cloud" else posted)["messages"][0]
    assert parsed.key == "message:" + item["id"]
    if fmt == "cloud":
        assert (parsed.phone_number_id, parsed.display_phone_number, parsed.waba_id) == (
            PHONE_NUMBER_ID,
            DISPLAY,
            WABA_ID,
        )
    else:
        assert (parsed.phone_number_id, parsed.waba_id) == ("", "")
    assert check(parsed), case


CONVERSATION = {
    "id": "a75d17ad06104c51166f948319b03c6a",
    "expiration_timestamp": "1750943820",
    "origin": {"type": "service"},
}
PMP = {"billable": True, "pricing_model": "PMP", "type": "regular", "category": "marketing"}
FAILED_131047 = {
    "code": 131047,
    "title": "Re-engagement message",
    "message": "Re-engagement message",
    "error_data": {"details": "Message failed to send because more than 24 hours have passed."},
    "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
}
STATUSES: list[tuple[str, dict[str, Any], Callable[[Status, str], Any]]] = [
    (
        "sent, first of a conversation (PMP)",
        status("wamid.S1", "sent", conversation=CONVERSATION, pricing=PMP, biz_opaque_callback_data="order-7"),
        lambda s, fmt: (
            s.conversation is not None
            and s.conversation.id == CONVERSATION["id"]
            and s.conversation.origin_type == "service"
            and s.conversation.expiration_timestamp == 1750943820
            and s.pricing is not None
            and s.pricing.pricing_model == "PMP"
            and s.pricing.category == "marketing"
            and s.biz_opaque_callback_data == "order-7"
            and s.rank == 1
        ),
    ),
    (
        "delivered (CBP, no expiration)",
        status(
            "wamid.S2",
            "delivered",
            conversation={"id": "c", "origin": {"type": "utility"}},
            pricing={"billable": True, "pricing_model": "CBP", "category": "utility"},
        ),
        lambda s, fmt: (
            s.conversation is not None
            and s.conversation.expiration_timestamp is None
            and s.pricing is not None
            and s.pricing.billable is True
            and s.rank == 2
        ),
    ),
    ("read", status("wamid.S3", "read"), lambda s, fmt: s.rank == 3 and s.conversation is None and s.pricing is None),
    ("played", status("wamid.S4", "played"), lambda s, fmt: s.rank == 4),
    (
        "failed (131047; 470 On-Premise)",
        status("wamid.S5", "failed", errors=[FAILED_131047]),
        lambda s, fmt: (
            s.errors[0].code == (131047 if fmt == "cloud" else 470)
            and "24 hours" in s.errors[0].details
            and s.rank == 100
        ),
    ),
]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(("case", "item", "check"), STATUSES, ids=[case for case, _, _ in STATUSES])
def test_every_status_shape_parses(
    fmt: str, case: str, item: dict[str, Any], check: Callable[[Status, str], Any]
) -> None:
    parsed = only(parse_body(FORMATS[fmt]({"statuses": [item]})))
    assert isinstance(parsed, Status)
    assert (parsed.id, parsed.status, parsed.recipient_id, parsed.timestamp) == (
        item["id"],
        item["status"],
        USER,
        1750857384,
    )
    assert parsed.key == f"status:{item['id']}:{item['status']}" and parsed.wa_id == USER
    assert check(parsed, fmt), case


def test_cloud_value_level_error_from_metas_reference() -> None:
    body = json.dumps(
        {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": WABA_ID,
                    "changes": [
                        {
                            "field": "messages",
                            "value": {
                                "messaging_product": "whatsapp",
                                "metadata": {"display_phone_number": DISPLAY, "phone_number_id": PHONE_NUMBER_ID},
                                "errors": [
                                    {
                                        "code": 130429,
                                        "title": "Rate limit hit",
                                        "message": "Rate limit hit",
                                        "error_data": {
                                            "details": "Message failed to send because there were too many messages"
                                        },
                                        "href": "/documentation/business-messaging/whatsapp/support/error-codes",
                                    }
                                ],
                            },
                        }
                    ],
                }
            ],
        }
    ).encode()
    error = only(parse_body(body))
    assert isinstance(error, WebhookError)
    assert (error.code, error.title, error.message, error.phone_number_id) == (
        130429,
        "Rate limit hit",
        "Rate limit hit",
        PHONE_NUMBER_ID,
    )
    assert error.details.startswith("Message failed") and error.href.endswith("error-codes") and error.key is None


def test_on_premise_literals_from_360dialogs_reference() -> None:
    inbound = {
        "contacts": [{"profile": {"name": "Jane Doe"}, "wa_id": "60173526233"}],
        "messages": [
            {
                "from": "60173526233",
                "id": "ABGGFlA5Fpa",
                "timestamp": "1504902988",
                "type": "text",
                "text": {"body": "Hi"},
            }
        ],
    }
    parsed = only(parse_document(inbound))
    assert isinstance(parsed, Message) and (parsed.text, parsed.profile_name, parsed.timestamp) == (
        "Hi",
        "Jane Doe",
        1504902988,
    )
    delivered = {
        "statuses": [
            {
                "id": "gBGGhSlIRoQvAgkGNTcduk8W2CQ",
                "status": "delivered",
                "timestamp": "1649812397",
                "type": "message",
                "message": {"recipient_id": "85256872847"},
                "conversation": {"id": "061ce662fd6f2580cee660e12d5db606", "origin": {"type": "user_initiated"}},
                "pricing": {"pricing_model": "CBP", "category": "user_initiated", "billable": True},
            }
        ]
    }
    status_ = only(parse_document(delivered))  # v2.45: recipient_id only under `message`
    assert isinstance(status_, Status) and status_.recipient_id == "85256872847" and status_.format == "on_premise"
    failed = {
        "statuses": [
            {
                "id": "gB",
                "recipient_id": "85256872847",
                "status": "failed",
                "timestamp": "1",
                "errors": [{"code": 470, "title": "Message failed to send because more than 24 hours"}],
            }
        ]
    }
    failure = only(parse_document(failed))
    assert isinstance(failure, Status) and failure.errors[0].code == 470
    error = only(parse_document({"errors": [{"code": 1014, "title": "Internal error", "details": "try later"}]}))
    assert isinstance(error, WebhookError) and (error.code, error.details) == (1014, "try later")


def test_template_status_and_other_fields() -> None:
    body = json.dumps(
        {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": WABA_ID,
                    "changes": [
                        {
                            "field": "message_template_status_update",
                            "value": {
                                "event": "REJECTED",
                                "message_template_id": 1234,
                                "message_template_name": "order_update",
                                "message_template_language": "en_US",
                                "reason": "INVALID_FORMAT",
                            },
                        },
                        {
                            "field": "account_update",
                            "value": {"phone_number": "15550783881", "event": "VERIFIED_ACCOUNT"},
                        },
                    ],
                }
            ],
        }
    ).encode()
    template, other = parse_body(body)
    assert isinstance(template, TemplateStatus)
    assert (
        template.event,
        template.message_template_id,
        template.message_template_name,
        template.reason,
        template.waba_id,
    ) == ("REJECTED", "1234", "order_update", "INVALID_FORMAT", WABA_ID)
    assert isinstance(other, Unknown) and other.field == "account_update" and other.raw["event"] == "VERIFIED_ACCOUNT"


def test_every_entry_and_change_is_read_in_order() -> None:
    first = json.loads(
        cloud({"messages": [message("wamid.1"), message("wamid.2")], "statuses": [status("wamid.0", "read")]})
    )
    second = json.loads(cloud({"statuses": [status("wamid.9", "sent")]}))
    first["entry"].append(second["entry"][0])
    first["entry"][0]["changes"].append(second["entry"][0]["changes"][0])
    kinds = [(e.kind, getattr(e, "id", None)) for e in parse_document(first)]
    assert kinds == [
        ("message", "wamid.1"),
        ("message", "wamid.2"),
        ("status", "wamid.0"),
        ("status", "wamid.9"),
        ("status", "wamid.9"),
    ]


def test_contacts_match_their_own_sender() -> None:
    body = cloud(
        {"messages": [message("wamid.a", sender="111"), message("wamid.b", sender="222")]},
        contacts=[("222", "Bea"), ("111", "Al")],
    )
    names = [(e.wa_id, e.profile_name) for e in parse_body(body) if isinstance(e, Message)]
    assert names == [("111", "Al"), ("222", "Bea")]


@pytest.mark.parametrize("body", [b"{", b"[1, 2]", b'"text"', b"\xff\xfe"])
def test_bodies_that_are_not_json_objects_are_refused(body: bytes) -> None:
    with pytest.raises(BodyError):
        parse_body(body)


@pytest.mark.parametrize(
    "document",
    [
        {"messages": "not a list"},
        {"messages": [{"id": "wamid.x", "timestamp": "soon", "type": "text", "text": "not an object"}]},
        {"object": "whatsapp_business_account", "entry": [{"changes": [{"value": None}]}, "junk"]},
        {"statuses": [{"id": "wamid.y", "status": "read", "conversation": [], "pricing": "free", "errors": {}}]},
    ],
)
def test_odd_shapes_never_raise(document: dict[str, Any]) -> None:
    for event in parse_document(document):
        assert event.raw is not None


def test_events_are_frozen() -> None:
    parsed = only(parse_body(cloud({"messages": [message("wamid.T")]})))
    with pytest.raises(AttributeError):
        parsed.id = "other"  # type: ignore[misc]

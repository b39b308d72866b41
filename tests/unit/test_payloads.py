"""Webhook payloads: splitting Meta notifications, rendering the Cloud envelope."""

from __future__ import annotations

import copy
import json
from typing import Any

from openwaba.domain.payloads import EventItem, render_cloud, split_notification

METADATA = {"display_phone_number": "15550001234", "phone_number_id": "106540352242922"}
ALICE = {"profile": {"name": "Alice"}, "wa_id": "491511111111", "user_id": "DE.1111"}
BOB = {"profile": {"name": "Bob"}, "wa_id": "491522222222", "user_id": "DE.2222"}
CAROL = {"profile": {"name": "Carol"}, "wa_id": "491533333333", "user_id": "DE.3333"}

STATUS_ALICE = {
    "id": "wamid.A",
    "status": "delivered",
    "timestamp": "1700000000",
    "recipient_id": ALICE["wa_id"],
}
STATUS_BOB = {
    "id": "wamid.B",
    "status": "read",
    "timestamp": "1700000001",
    "recipient_id": BOB["wa_id"],
}
MESSAGE_CAROL = {
    "from": CAROL["wa_id"],
    "id": "wamid.C",
    "timestamp": "1700000002",
    "type": "text",
    "text": {"body": "hi 😀"},
}
ERROR = {
    "code": 131000,
    "title": "Something went wrong",
    "message": "Something went wrong",
    "error_data": {"details": "unknown"},
}


def notification(value: dict[str, Any], *, field: str = "messages") -> dict[str, Any]:
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"value": value, "field": field}]}],
    }


MIXED = notification(
    {
        "messaging_product": "whatsapp",
        "metadata": METADATA,
        "contacts": [ALICE, BOB, CAROL],
        "statuses": [STATUS_ALICE, STATUS_BOB],
        "messages": [MESSAGE_CAROL],
        "errors": [ERROR],
    }
)


def by_item_id(items: list[EventItem]) -> dict[str, EventItem]:
    return {item.item.get("id", "error"): item for item in items}


def test_split_yields_one_event_per_item() -> None:
    items = split_notification(copy.deepcopy(MIXED))
    assert len(items) == 4
    assert sorted(item.kind for item in items) == ["error", "message", "status", "status"]
    assert all(item.phone_number_id == METADATA["phone_number_id"] for item in items)


def test_each_value_has_metadata_and_only_its_item() -> None:
    for item in split_notification(copy.deepcopy(MIXED)):
        value = item.value
        assert value["messaging_product"] == "whatsapp"
        assert value["metadata"] == METADATA
        item_keys = {"messages", "statuses", "errors"} & value.keys()
        assert len(item_keys) == 1
        (key,) = item_keys
        assert len(value[key]) == 1
        assert value[key][0] is item.item


def test_message_and_status_events_carry_only_their_own_contact() -> None:
    events = by_item_id(split_notification(copy.deepcopy(MIXED)))
    assert events["wamid.A"].kind == "status"
    assert events["wamid.A"].value["contacts"] == [ALICE]
    assert events["wamid.A"].wa_id == ALICE["wa_id"]
    assert events["wamid.B"].value["contacts"] == [BOB]
    assert events["wamid.B"].wa_id == BOB["wa_id"]
    assert events["wamid.C"].kind == "message"
    assert events["wamid.C"].value["contacts"] == [CAROL]
    assert events["wamid.C"].value["messages"] == [MESSAGE_CAROL]
    assert events["wamid.C"].wa_id == CAROL["wa_id"]


def test_error_event_carries_no_contacts() -> None:
    """An item matching no contact (an error has no user) gets none, not every user's contact."""
    events = by_item_id(split_notification(copy.deepcopy(MIXED)))
    error = events["error"]
    assert error.kind == "error"
    assert error.wa_id is None
    assert "contacts" not in error.value


def test_error_event_content() -> None:
    events = by_item_id(split_notification(copy.deepcopy(MIXED)))
    error = events["error"]
    assert error.kind == "error"
    assert error.value["errors"] == [ERROR]
    assert error.value["metadata"] == METADATA
    assert error.wa_id is None


def test_statuses_without_contacts_get_none() -> None:
    items = split_notification(
        notification(
            {
                "messaging_product": "whatsapp",
                "metadata": METADATA,
                "statuses": [STATUS_ALICE],
            }
        )
    )
    assert len(items) == 1
    assert "contacts" not in items[0].value


def test_other_fields_and_empty_notifications_are_ignored() -> None:
    assert split_notification({}) == []
    assert split_notification({"object": "whatsapp_business_account", "entry": []}) == []
    assert split_notification(notification({"metadata": METADATA}, field="account_update")) == []
    assert (
        split_notification(
            notification({"metadata": METADATA, "statuses": [STATUS_ALICE]}, field="template_category_update")
        )
        == []
    )


def test_several_entries_and_changes() -> None:
    doc = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "1",
                "changes": [
                    {"field": "messages", "value": {"metadata": {"phone_number_id": "11"}, "statuses": [STATUS_ALICE]}},
                    {"field": "messages", "value": {"metadata": {"phone_number_id": "12"}, "statuses": [STATUS_BOB]}},
                ],
            },
            {
                "id": "2",
                "changes": [
                    {"field": "messages", "value": {"metadata": {"phone_number_id": 13}, "messages": [MESSAGE_CAROL]}},
                ],
            },
        ],
    }
    items = split_notification(doc)
    assert [(i.kind, i.phone_number_id) for i in items] == [("status", "11"), ("status", "12"), ("message", "13")]
    assert all(i.value["messaging_product"] == "whatsapp" for i in items)


# --- rendering -------------------------------------------------------------------------------


def test_render_cloud_envelope() -> None:
    (event,) = [i for i in split_notification(copy.deepcopy(MIXED)) if i.kind == "message"]
    raw = render_cloud("102290129340398", event.value)
    doc = json.loads(raw)
    assert doc["object"] == "whatsapp_business_account"
    assert len(doc["entry"]) == 1
    entry = doc["entry"][0]
    assert entry["id"] == "102290129340398"
    assert len(entry["changes"]) == 1
    change = entry["changes"][0]
    assert change["field"] == "messages"
    assert change["value"] == event.value
    assert list(doc) == ["object", "entry"]


def test_render_cloud_is_compact_ascii_with_unicode_escapes() -> None:
    value = {
        "messaging_product": "whatsapp",
        "metadata": METADATA,
        "messages": [{"from": "1", "text": {"body": 'héllo 😀 / "q"'}}],
    }
    raw = render_cloud("7", value)
    assert isinstance(raw, bytes)
    assert raw.isascii()
    text = raw.decode("ascii")
    assert ", " not in text and ": " not in text
    assert "\\u00e9" in text  # é
    assert "\\ud83d\\ude00" in text  # 😀 as a UTF-16 surrogate pair, as Meta sends it
    assert "😀" not in text
    assert text.startswith('{"object":"whatsapp_business_account","entry":[{"id":"7","changes":[{"value":')
    assert text.endswith(',"field":"messages"}]}]}')
    assert json.loads(raw)["entry"][0]["changes"][0]["value"]["messages"][0]["text"]["body"] == 'héllo 😀 / "q"'


def test_render_cloud_is_deterministic() -> None:
    value = {"messaging_product": "whatsapp", "metadata": METADATA, "statuses": [STATUS_ALICE]}
    assert render_cloud("1", value) == render_cloud("1", copy.deepcopy(value))

"""On-Premise rendering of webhook events, against the On-Premise examples of
../shared/reference/360dialog-api.md §6.3 (SDK `WABA360DialogWebhookPayload`)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from openwaba.domain.payloads import render, render_cloud, render_on_premise

WABA_ID = "102290129340398"
METADATA = {"display_phone_number": "15550001234", "phone_number_id": "106540352242922"}
DOCS_HREF = "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"

# --- §6.3, verbatim ---------------------------------------------------------------------

REFERENCE_INBOUND_TEXT = {
    "contacts": [{"profile": {"name": "Jane Doe"}, "wa_id": "60173526233"}],
    "messages": [{"from": "60173526233", "id": "ABGGFlA5Fpa", "timestamp": "1504902988",
                  "type": "text", "text": {"body": "Hi"}}],
}
REFERENCE_DELIVERED = {
    "statuses": [{"id": "gBGGhSlIRoQvAgkGNTcduk8W2CQ", "recipient_id": "85256872847", "status": "delivered",
                  "timestamp": "1649812397", "type": "message",
                  "conversation": {"id": "061ce662fd6f2580cee660e12d5db606", "origin": {"type": "user_initiated"}},
                  "pricing": {"pricing_model": "CBP", "category": "user_initiated", "billable": True}}],
}
REFERENCE_470_TITLE = ("Message failed to send because more than 24 hours have passed since the customer last "
                       "replied to this number")

# --- the same events as Cloud `value`s (what ingest stores) ------------------------------


def cloud_value(**items: Any) -> dict[str, Any]:
    return {"messaging_product": "whatsapp", "metadata": dict(METADATA), **items}


CLOUD_INBOUND_TEXT = cloud_value(
    contacts=[{"profile": {"name": "Jane Doe"}, "wa_id": "60173526233", "user_id": "MY.1234567890"}],
    messages=[{"from": "60173526233", "id": "ABGGFlA5Fpa", "timestamp": "1504902988",
               "type": "text", "text": {"body": "Hi"}}],
)
CLOUD_DELIVERED = cloud_value(statuses=[{
    "id": "gBGGhSlIRoQvAgkGNTcduk8W2CQ", "status": "delivered", "timestamp": "1649812397",
    "recipient_id": "85256872847",
    "conversation": {"id": "061ce662fd6f2580cee660e12d5db606", "origin": {"type": "user_initiated"}},
    "pricing": {"billable": True, "pricing_model": "CBP", "category": "user_initiated"},
}])
CLOUD_FAILED_131047 = cloud_value(statuses=[{
    "id": "wamid.HBgLNjAxNzM1MjYyMzMVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA", "status": "failed",
    "timestamp": "1694492600", "recipient_id": "60173526233",
    "errors": [{"code": 131047, "title": "Re-engagement message", "message": "Re-engagement message",
                "error_data": {"details": REFERENCE_470_TITLE + "."}, "href": DOCS_HREF}],
}])


def on_premise(value: dict[str, Any]) -> dict[str, Any]:
    body = render_on_premise(value)
    assert isinstance(body, bytes)
    document = json.loads(body)
    assert isinstance(document, dict)
    return document


def test_inbound_text_matches_the_reference() -> None:
    assert on_premise(CLOUD_INBOUND_TEXT) == REFERENCE_INBOUND_TEXT


def test_delivered_status_matches_the_reference_plus_message_recipient() -> None:
    expected = copy.deepcopy(REFERENCE_DELIVERED)
    # §6.3: top-level recipient_id moved under `message` in v2.45: "Emit both for compatibility."
    expected["statuses"][0]["message"] = {"recipient_id": "85256872847"}
    assert on_premise(CLOUD_DELIVERED) == expected


def test_failed_131047_becomes_470() -> None:
    document = on_premise(CLOUD_FAILED_131047)
    assert set(document) == {"statuses"}
    [status] = document["statuses"]
    assert status["status"] == "failed" and status["type"] == "message"
    assert status["id"] == CLOUD_FAILED_131047["statuses"][0]["id"]
    assert status["recipient_id"] == "60173526233"
    assert status["message"] == {"recipient_id": "60173526233"}
    assert "conversation" not in status and "pricing" not in status
    [error] = status["errors"]
    assert error["code"] == 470
    assert error["title"].rstrip(".") == REFERENCE_470_TITLE
    assert set(error) <= {"code", "title", "details", "href"}, "On-Premise ErrorObject: code, title, details, href"
    assert "message" not in error and "error_data" not in error


def test_on_premise_has_no_cloud_envelope() -> None:
    for value in (CLOUD_INBOUND_TEXT, CLOUD_DELIVERED, CLOUD_FAILED_131047):
        document = on_premise(value)
        assert not {"object", "entry", "messaging_product", "metadata"} & set(document), document


def test_render_dispatches_on_the_channel_format() -> None:
    for value in (CLOUD_INBOUND_TEXT, CLOUD_DELIVERED, CLOUD_FAILED_131047):
        assert render("on_premise", WABA_ID, value) == render_on_premise(value)
        assert render("cloud", WABA_ID, value) == render_cloud(WABA_ID, value)
        cloud = json.loads(render("cloud", WABA_ID, value))
        assert cloud["object"] == "whatsapp_business_account"
        assert cloud["entry"][0]["id"] == WABA_ID
        assert cloud["entry"][0]["changes"][0]["value"] == value


@pytest.mark.parametrize(("cloud_code", "on_premise_code"), [
    (131047, 470),  # re-engagement: §6.3
    (131026, 1013),  # undeliverable / user is not valid
    (131051, 501),  # unsupported message type
    (130429, 429),  # rate limit
])
def test_error_codes_are_translated(cloud_code: int, on_premise_code: int) -> None:
    value = cloud_value(statuses=[{
        "id": "wamid.X", "status": "failed", "timestamp": "1700000000", "recipient_id": "15551230001",
        "errors": [{"code": cloud_code, "title": "t", "message": "t", "error_data": {"details": "why"}}],
    }])
    [error] = on_premise(value)["statuses"][0]["errors"]
    assert error == {"code": on_premise_code, "title": "why", "details": "why"}


def test_a_code_without_an_on_premise_equivalent_is_kept() -> None:
    value = cloud_value(errors=[{"code": 131999, "title": "Something new", "message": "Something new"}])
    assert on_premise(value) == {"errors": [{"code": 131999, "title": "Something new", "details": "Something new"}]}


def test_out_of_band_error_is_flat() -> None:
    value = cloud_value(errors=[{"code": 131000, "title": "Something went wrong", "message": "Something went wrong",
                                 "error_data": {"details": "the sandbox hiccuped"}}])
    document = on_premise(value)
    assert set(document) == {"errors"}
    [error] = document["errors"]
    assert isinstance(error["code"], int) and error["code"] != 131000
    assert error["title"] and error["details"] == "the sandbox hiccuped"


def test_unknown_inbound_message_keeps_its_fields_and_translates_its_errors() -> None:
    value = cloud_value(
        contacts=[{"profile": {"name": "Jane Doe"}, "wa_id": "60173526233"}],
        messages=[{"from": "60173526233", "id": "wamid.U", "timestamp": "1700000000", "type": "unknown",
                   "errors": [{"code": 131051, "title": "Unsupported message type",
                               "message": "Unsupported message type",
                               "error_data": {"details": "Message type is not currently supported"}}]}],
    )
    [message] = on_premise(value)["messages"]
    assert {k: message[k] for k in ("from", "id", "timestamp", "type")} == {
        "from": "60173526233", "id": "wamid.U", "timestamp": "1700000000", "type": "unknown"}
    assert message["errors"] == [{"code": 501, "title": "Message type is not currently supported",
                                  "details": "Message type is not currently supported"}]


def test_pricing_keeps_only_on_premise_fields() -> None:
    value = copy.deepcopy(CLOUD_DELIVERED)
    value["statuses"][0]["pricing"] = {"billable": False, "pricing_model": "PMP", "type": "free_customer_service",
                                       "category": "service"}
    [status] = on_premise(value)["statuses"]
    assert status["pricing"] == {"billable": False, "pricing_model": "PMP", "category": "service"}


def test_contacts_keep_only_profile_and_wa_id() -> None:
    [contact] = on_premise(CLOUD_INBOUND_TEXT)["contacts"]
    assert contact == {"profile": {"name": "Jane Doe"}, "wa_id": "60173526233"}


def test_rendering_is_compact_ascii_and_leaves_its_input_alone() -> None:
    value = copy.deepcopy(CLOUD_INBOUND_TEXT)
    value["messages"][0]["text"]["body"] = "Olá 😀"
    before = copy.deepcopy(value)
    body = render_on_premise(value)
    assert value == before
    assert body.isascii() and b"\\ud83d\\ude00" in body
    assert b": " not in body and b", " not in body
    assert render_on_premise(value) == body, "deterministic"

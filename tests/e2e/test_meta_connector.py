"""The Meta connector end to end: a real `openwaba serve` whose number is on
Meta's Cloud API, played by a fake Graph API server on 127.0.0.1 that records
what it is sent, answers with Meta's documented bodies and errors, and posts
signed webhooks back to `/meta/webhook`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from tests.meta import fake_graph
from tests.meta.fake_graph import DEFAULT_DISPLAY_NUMBER, DEFAULT_PNID, DEFAULT_WABA, FakeGraph

from .assets_support import PNG, FilePart, post_form
from .routing_support import PARTNER_ENV, partner_ok
from .support import Receiver, Server, ServerFactory, http, text_message

TOKEN = "EAAe2e-system-user-token"
APP_SECRET = "e2e-app-secret-5f1c"
VERIFY_TOKEN = "e2e-verify-token"
USER = "16505551234"


def meta_env(graph: FakeGraph, **extra: str) -> dict[str, str | None]:
    return {
        "OPENWABA_CONNECTOR": "meta",
        "OPENWABA_META_PHONE_NUMBER_ID": DEFAULT_PNID,
        "OPENWABA_META_WABA_ID": DEFAULT_WABA,
        "OPENWABA_META_ACCESS_TOKEN": TOKEN,
        "OPENWABA_META_APP_SECRET": APP_SECRET,
        "OPENWABA_META_VERIFY_TOKEN": VERIFY_TOKEN,
        "OPENWABA_META_GRAPH_URL": graph.url,
        # Short pauses between tries: the schedule itself is a unit test with an injected sleep.
        "OPENWABA_META_RETRY_DELAYS": "0.01,0.01,0.01",
        "OPENWABA_META_TIMEOUT": "1",
        **extra,
    }


@pytest.fixture
def graph() -> Iterator[FakeGraph]:
    with FakeGraph(token=TOKEN, app_secret=APP_SECRET) as fake:
        yield fake


@pytest.fixture
def meta(server: ServerFactory, graph: FakeGraph, receiver: Receiver) -> Server:
    """openwaba with its demo number on (fake) Meta, its webhook at `receiver`."""
    srv = server(meta_env(graph))
    srv.set_webhook(receiver.url)
    return srv


def channel_ids(srv: Server) -> dict[str, str]:
    return dict(srv.ok("GET", "/phone_number"))


def post_to_meta_webhook(graph: FakeGraph, srv: Server, value_items: dict[str, Any], **kwargs: Any) -> int:
    payload = fake_graph.notification(DEFAULT_WABA, DEFAULT_PNID, DEFAULT_DISPLAY_NUMBER, value_items, **kwargs)
    status, _ = graph.post_webhook(srv.url + "/meta/webhook", payload)
    return status


def test_a_send_goes_through_graph_and_answers_with_metas_wamid(meta: Server, graph: FakeGraph) -> None:
    body = {**text_message("+" + USER, "hello from openwaba"), "biz_opaque_callback_data": "order-7",
            "context": {"message_id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA="}}
    answer = meta.ok("POST", "/messages", body)

    (request,) = [r for r in graph.requests if r.method == "POST"]
    assert request.path == f"/v25.0/{DEFAULT_PNID}/messages"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.json == {
        "messaging_product": "whatsapp", "recipient_type": "individual", "to": "+" + USER, "type": "text",
        "text": {"body": "hello from openwaba", "preview_url": False}, "biz_opaque_callback_data": "order-7",
        "context": {"message_id": body["context"]["message_id"]},
    }
    assert answer["contacts"] == [{"input": "+" + USER, "wa_id": USER}]
    meta_wamid = answer["messages"][0]["id"]
    assert meta_wamid.startswith("wamid.")
    # The On-Premise face sends through Meta too, and answers in its own shape.
    reply = meta.call("POST", "/v1/messages", {"to": USER, "type": "text", "text": {"body": "v1"}})
    assert reply.status == 201, reply.body
    on_premise_wamid = reply.json()["messages"][0]["id"]
    # Each answer names the message by the id Meta gave it, and openwaba stores it under that id.
    assert graph.answered() == [meta_wamid, on_premise_wamid]
    stored = meta.query("SELECT wamid, status FROM messages WHERE direction = 'out' ORDER BY created_at")
    assert stored == [{"wamid": meta_wamid, "status": "accepted"}, {"wamid": on_premise_wamid, "status": "accepted"}]
    assert [m["text"]["body"] for m in graph.sent_messages()] == ["hello from openwaba", "v1"]


# (HTTP status Meta answers, code): each comes back with Meta's code, in each face's envelope.
REFUSALS = [(400, 131009), (400, 131047), (400, 132001), (401, 190), (403, 10), (400, 131056)]


@pytest.mark.parametrize(("status", "code"), REFUSALS)
def test_graph_refusals_keep_their_code_on_every_face(meta: Server, graph: FakeGraph, status: int, code: int) -> None:
    graph.fail_next(2, status=status, code=code, details=f"details of {code}")
    cloud = meta.call("POST", "/messages", text_message(USER, "refused"))
    assert cloud.status == status, cloud.body
    error = cloud.json()["error"]
    assert (error["code"], error["error_data"]["details"]) == (code, f"details of {code}")
    assert error["message"].startswith(f"(#{code}) ")
    on_premise = meta.call("POST", "/v1/messages", {"to": USER, "type": "text", "text": {"body": "refused"}})
    assert on_premise.status == status, on_premise.body
    assert on_premise.json()["errors"][0]["code"] == code
    assert len(graph.sent_messages()) == 2  # a refusal is final: not tried again
    assert meta.query("SELECT wamid FROM messages WHERE direction = 'out'") == []  # nothing was accepted


def test_throttling_and_5xx_are_retried_and_a_missing_answer_is_not(meta: Server, graph: FakeGraph) -> None:
    graph.fail_next(2, status=500, code=131000)
    graph.fail_next(1, status=429, code=130429)
    answer = meta.ok("POST", "/messages", text_message(USER, "third time lucky"))
    assert len(graph.sent_messages()) == 4
    assert meta.query("SELECT wamid FROM messages WHERE direction = 'out'") == [
        {"wamid": answer["messages"][0]["id"]}
    ]

    graph.fail_next(4, status=400, code=130429, details="Cloud API message throughput has been reached.")
    throttled = meta.call("POST", "/messages", text_message(USER, "still throttled"))
    assert (throttled.status, throttled.json()["error"]["code"]) == (400, 130429)
    assert len(graph.sent_messages()) == 8  # the first try and three more, then the client hears Meta

    # No answer at all: Meta may have the message, so it is not sent again, and the
    # record of the hand-over stays (status `sending`) instead of a second copy.
    graph.hang_next(1, seconds=3)
    hung = meta.call("POST", "/messages", text_message(USER, "into the void"))
    assert (hung.status, hung.json()["error"]["code"]) == (504, 131000)
    graph.drop_next(1)
    dropped = meta.call("POST", "/messages", text_message(USER, "cut off"))
    assert (dropped.status, dropped.json()["error"]["code"]) == (504, 131000)
    assert len(graph.sent_messages()) == 10
    rows = meta.query("SELECT status FROM messages WHERE direction = 'out' ORDER BY created_at")
    assert [r["status"] for r in rows] == ["accepted", "sending", "sending"]


def test_metas_webhooks_are_checked_committed_and_ingested_once(
    meta: Server, graph: FakeGraph, receiver: Receiver
) -> None:
    ok = graph.verify_webhook(meta.url + "/meta/webhook", VERIFY_TOKEN, challenge="1158201444")
    assert ok == (200, b"1158201444")
    assert graph.verify_webhook(meta.url + "/meta/webhook", "wrong")[0] == 403
    unsigned = http("POST", meta.url + "/meta/webhook", data=b'{"object":"whatsapp_business_account"}')
    assert unsigned.status == 401
    forged = fake_graph.notification(DEFAULT_WABA, DEFAULT_PNID, DEFAULT_DISPLAY_NUMBER, {"statuses": []})
    assert graph.post_webhook(meta.url + "/meta/webhook", forged, app_secret="not-the-secret")[0] == 401

    wamid = meta.ok("POST", "/messages", text_message(USER, "tracked"))["messages"][0]["id"]
    ours = channel_ids(meta)
    for _ in range(2):  # Meta posts at least once: the second copy changes nothing
        assert post_to_meta_webhook(graph, meta, {"statuses": [fake_graph.status(wamid, "delivered", USER)]}) == 200
        error = fake_graph.value_error(131000, "Something went wrong", "a system problem")
        assert post_to_meta_webhook(graph, meta, {"errors": [error]}) == 200
    inbound = fake_graph.inbound_text(USER, "hi from a real phone")
    contacts = [fake_graph.contact(USER, "Real Person")]
    assert post_to_meta_webhook(graph, meta, {"messages": [inbound]}, contacts=contacts) == 200

    receiver.wait_for_count(lambda r: r.message is not None, 1)
    delivered = receiver.wait_for_count(lambda r: (r.status or {}).get("status") == "delivered", 1)
    errors = receiver.wait_for_count(lambda r: "errors" in r.value, 1)
    # openwaba's ids, not Meta's: the number's webhooks look the same with either connector behind it.
    for received in (*delivered, *errors):
        assert received.value["metadata"] == {"display_phone_number": ours["phone_number"],
                                              "phone_number_id": ours["phone_number_id"]}
    assert delivered[0].status is not None and delivered[0].status["id"] == wamid
    meta.wait_for_deliveries(lambda rows: all(r["state"] == "delivered" for r in rows) and len(rows) == 3)
    assert meta.query("SELECT status FROM messages WHERE wamid = ?", wamid) == [{"status": "delivered"}]

    # Read it back through Meta: mark-as-read (with typing) is posted to Graph.
    read = meta.ok("POST", "/messages", {"messaging_product": "whatsapp", "status": "read",
                                         "message_id": inbound["id"], "typing_indicator": {"type": "text"}})
    assert read == {"success": True}
    assert graph.marked_read() == [inbound["id"]]


def test_template_status_updates_reach_the_waba_webhook(meta: Server, graph: FakeGraph, receiver: Receiver) -> None:
    update = fake_graph.template_status(DEFAULT_WABA, "1234567890", "order_update", "en_US", "APPROVED")
    status, _ = graph.post_webhook(meta.url + "/meta/webhook", update)
    assert status == 200
    (received,) = receiver.wait_for_count(lambda r: r.json["entry"][0]["changes"][0].get("field")
                                          == "message_template_status_update", 1)
    entities = meta.ok("GET", "/health_status")["health_status"]["entities"]
    our_waba = next(e["id"] for e in entities if e["entity_type"] == "WABA")
    assert received.json["entry"][0]["id"] == our_waba != DEFAULT_WABA
    assert received.value["event"] == "APPROVED"


def test_media_goes_to_meta_once_and_users_files_are_served_by_openwaba(
    meta: Server, graph: FakeGraph, receiver: Receiver
) -> None:
    uploaded = post_form(meta, "/media", {"messaging_product": "whatsapp"}, FilePart(PNG, "image/png", "a.png"))
    media_id = uploaded.json()["id"]
    for caption in ("first", "second"):
        meta.ok("POST", "/messages", {"messaging_product": "whatsapp", "to": USER, "type": "image",
                                      "image": {"id": media_id, "caption": caption}})
    uploads = [r for r in graph.requests if r.path.endswith("/media")]
    assert len(uploads) == 1  # the Meta id is remembered
    assert uploads[0].form["file"] == PNG
    meta_media_id = next(iter(graph.media))
    assert [m["image"]["id"] for m in graph.sent_messages()] == [meta_media_id, meta_media_id]

    photo = PNG + b"\x00user's photo"
    incoming = graph.add_media(photo, "image/jpeg")
    item = fake_graph.inbound_media(USER, "image", incoming, "image/jpeg", graph.media[incoming].sha256, "look")
    assert post_to_meta_webhook(graph, meta, {"messages": [item]}) == 200
    (webhook,) = receiver.wait_for_count(lambda r: r.message is not None, 1)
    assert webhook.message is not None and webhook.message["image"]["id"] == incoming
    info = meta.ok("GET", f"/{incoming}")
    assert (info["id"], info["mime_type"], info["file_size"]) == (incoming, "image/jpeg", len(photo))
    download = http("GET", info["url"], headers={"D360-API-KEY": str(meta.api_key)})
    assert (download.status, download.body) == (200, photo)


def test_one_setting_switches_a_number_between_sandbox_and_meta(
    server: ServerFactory, graph: FakeGraph, receiver: Receiver
) -> None:
    srv = server(PARTNER_ENV)
    srv.set_webhook(receiver.url)
    (channel,) = partner_ok(srv, "GET", "/channels")["channels"]
    sandbox_user = srv.ok("GET", "/sandbox/users")["users"][0]["wa_id"]

    def send() -> str:
        return srv.send_text(sandbox_user, "which network?")

    before = send()
    assert graph.sent_messages() == []
    link = {"phone_number_id": DEFAULT_PNID, "waba_id": DEFAULT_WABA, "access_token": TOKEN, "app_secret": APP_SECRET}
    srv.restart({"OPENWABA_META_GRAPH_URL": graph.url})
    switched = partner_ok(srv, "PATCH", f"/channels/{channel['id']}", {"connector": "meta", "meta": link})
    assert switched["connector"] == "meta"
    assert switched["meta"] == {"phone_number_id": DEFAULT_PNID, "waba_id": DEFAULT_WABA}
    assert "access_token" not in str(switched)
    on_meta = send()
    assert len(graph.sent_messages()) == 1
    assert on_meta != before
    back = partner_ok(srv, "PATCH", f"/channels/{channel['id']}", {"connector": "sandbox"})
    assert back["connector"] == "sandbox"
    again = send()
    assert len(graph.sent_messages()) == 1
    # The sandbox answers again with its statuses; the link is kept for the next switch.
    receiver.wait_for_count(lambda r: (r.status or {}).get("id") == again, 1)
    assert partner_ok(srv, "PATCH", f"/channels/{channel['id']}", {"connector": "meta"})["connector"] == "meta"
    partner_ok(srv, "PATCH", f"/channels/{channel['id']}", {"connector": "carrier-pigeon"}, status=400)

"""End-to-end: `openwaba.client` against the real `openwaba serve`.

Every method of `Client` is called on a real server (one per module, with the
Partner API on), and what it did is checked where it lands: the simulated user's
phone (`user_phone`), the webhook receiver, the delivery log. Errors are checked
for their exception class, WhatsApp code, HTTP status and `retryable`. Most tests
run twice, once with `Client` and once with `AsyncClient` (driven on one event
loop by `client_support.Blocking`); tests that change a number's configuration use
a number of their own, made with the Partner API.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from openwaba.client import (
    ApiError,
    AsyncClient,
    AuthenticationError,
    Client,
    ConflictError,
    InvalidRequestError,
    Message,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    Row,
    Section,
    Sent,
    Target,
    TemplateError,
    TransportError,
    UnsupportedError,
)
from openwaba.client import messages as m
from openwaba.client.client import _Surface, operation

from .client_support import (
    FLAVOURS,
    Account,
    CappedLimit,
    assert_api_error,
    connect,
    open_account,
    running,
    shown,
    silent_server,
)
from .conftest import DEFAULT_ENV
from .messaging_support import MEDIA_FILES
from .routing_support import PARTNER_ENV, PARTNER_ID, PARTNER_KEY
from .support import (
    ALICE,
    API_KEY,
    BRUNO,
    CHEN,
    USER_NAMES,
    Received,
    Receiver,
    Server,
    ServerFactory,
    pip_install,
    wait_until,
)

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
LINK = "https://example.com/files/"
HELLO_WORLD_BODY = (
    "Welcome and congratulations!! This message demonstrates your ability to send a WhatsApp message "
    "notification from the Cloud API, hosted by Meta. Thank you for taking the time to test with us."
)
ORDER = "client_order_update"  # text header, three body parameters, quick reply / URL / copy-code buttons
RECEIPT = "client_receipt"  # image header, currency and date-time body parameters
REJECTED = "client_reject_me"  # the sandbox rejects names matching "reject"
# Template reviews are decided only when a test moves the clock past them, never by wall time.
REVIEW_SECONDS = 600
SLOW_REVIEW = {"OPENWABA_SANDBOX_TEMPLATE_REVIEW_SECONDS": str(REVIEW_SECONDS)}
TEMPLATES = {
    ORDER: ("utility", [
        {"type": "HEADER", "format": "TEXT", "text": "Order {{1}}", "example": {"header_text": ["A-1"]}},
        {"type": "BODY", "text": "Hi {{1}}, your order {{2}} ships on {{3}}.",
         "example": {"body_text": [["Ann", "A-1", "Monday"]]}},
        {"type": "FOOTER", "text": "Thanks for shopping"},
        {"type": "BUTTONS", "buttons": [
            {"type": "QUICK_REPLY", "text": "Stop"},
            {"type": "URL", "text": "Track", "url": "https://example.com/track/{{1}}",
             "example": ["https://example.com/track/A-1"]},
            {"type": "COPY_CODE", "example": "SAVE10"},
        ]},
    ]),
    RECEIPT: ("utility", [
        {"type": "HEADER", "format": "IMAGE", "example": {"header_handle": ["4::aW1hZ2U="]}},
        {"type": "BODY", "text": "Total {{1}} on {{2}}.", "example": {"body_text": [["$10", "Monday"]]}},
    ]),
    REJECTED: ("marketing", [{"type": "BODY", "text": "Hello there."}]),
}

# Every method of Client, and where it is called in this module.
OPERATIONS = {
    "send": "test_send_every_builder", "send_text": "test_send_text_with_preview_and_reply",
    "mark_read": "test_mark_read_and_typing", "upload_media": "test_media_round_trip",
    "media": "test_media_round_trip", "download_media": "test_media_round_trip",
    "delete_media": "test_media_round_trip", "templates": "test_template_list_and_filters",
    "create_template": "test_template_lifecycle", "delete_template": "test_template_lifecycle",
    "phone_number": "test_number_health_and_profile", "health": "test_number_health_and_profile",
    "business_profile": "test_number_health_and_profile",
    "update_business_profile": "test_number_health_and_profile",
    "webhook": "test_webhook_headers_reach_the_receiver", "set_webhook": "test_webhook_headers_reach_the_receiver",
    "waba_webhook": "test_waba_webhook", "set_waba_webhook": "test_waba_webhook",
    "multi_webhook": "test_multi_webhook_lifecycle", "enable_multi_webhook": "test_multi_webhook_lifecycle",
    "disable_multi_webhook": "test_multi_webhook_lifecycle",
    "add_webhook_destinations": "test_multi_webhook_lifecycle",
    "update_webhook_destination": "test_multi_webhook_lifecycle",
    "remove_webhook_destination": "test_multi_webhook_lifecycle",
    "deliveries": "test_delivery_log_and_replay", "delivery": "test_delivery_log_and_replay",
    "replay_delivery": "test_delivery_log_and_replay", "replay_deliveries": "test_delivery_log_and_replay",
    "notices": "test_notices_after_410_gone",
    "sandbox_users": "test_sandbox_users_and_clock", "user_says": "test_mark_read_and_typing",
    "user_sends_file": "test_user_sends_files", "user_phone": "test_send_every_builder",
    "clock": "test_sandbox_users_and_clock", "advance_clock": "test_sandbox_users_and_clock",
    "set_clock": "test_set_clock_to_a_time", "user_acts": "test_user_actions_arrive_as_webhooks",
    "user_taps": "test_user_actions_arrive_as_webhooks", "user_picks": "test_user_actions_arrive_as_webhooks",
    "user_taps_template_button": "test_user_actions_arrive_as_webhooks",
    "user_reacts": "test_user_actions_arrive_as_webhooks",
    "user_shares_location": "test_user_actions_arrive_as_webhooks",
    "scenario": "test_scenario_layers", "set_scenario": "test_scenario_layers",
    "clear_scenario": "test_scenario_layers", "script_progress": "test_scripted_user_and_its_progress",
    "wabas": "test_partner_operations", "create_waba": "test_partner_operations",
    "channels": "test_partner_operations", "create_channel": "test_partner_operations",
    "update_channel": "test_throughput_limit_is_a_retryable_rate_limit_error",
    "create_api_key": "test_partner_operations", "api_keys": "test_partner_operations",
}


# --- fixtures ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Server]:
    """One real server for the module: sandbox key API_KEY, manual clock, rate limits off, Partner API on."""
    factory = ServerFactory(tmp_path_factory.mktemp("client"), {**DEFAULT_ENV, **PARTNER_ENV, **SLOW_REVIEW})
    failed = request.session.testsfailed
    try:
        yield factory()
    finally:
        factory.close()
        if request.session.testsfailed > failed:
            print(factory.report())


@pytest.fixture(scope="module")
def hook() -> Iterator[Receiver]:
    """The demo number's webhook receiver, for the whole module."""
    with running(Receiver()) as receiver:
        yield receiver


@pytest.fixture(scope="module")
def demo(gw: Server, hook: Receiver) -> Iterator[Client]:
    """A Client for the seeded sandbox number, whose webhook is `hook`."""
    with Client.openwaba(API_KEY, gw.url, timeout=10) as client:
        assert client.set_webhook(hook.url) == {"url": hook.url, "headers": {}}
        yield client


@pytest.fixture(scope="module")
def partner(gw: Server) -> Iterator[Client]:
    with Client(Target.partner(PARTNER_KEY, PARTNER_ID, gw.url), timeout=10) as client:
        yield client


@pytest.fixture(params=FLAVOURS)
def flavour(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def client(flavour: str, gw: Server, demo: Client) -> Iterator[Any]:
    """The seeded number, through the Client or the AsyncClient."""
    connected = connect(flavour, Target.openwaba(API_KEY, gw.url))
    try:
        yield connected
    finally:
        connected.close()


@pytest.fixture
def account(flavour: str, gw: Server, partner: Client) -> Iterator[Account]:
    """A number of the test's own, with two simulated users, through the flavour's client."""
    acc = open_account(partner, gw.url, users=2)
    acc.client = connect(flavour, acc.target)
    try:
        yield acc
    finally:
        acc.client.close()


@pytest.fixture(scope="module")
def inbound(demo: Client) -> str:
    """A message Alice sent the business (reactions and replies point at it)."""
    return demo.user_says(ALICE, "Hello from Alice")


@pytest.fixture(scope="module")
def uploads(demo: Client) -> dict[str, str]:
    """A media id of the seeded number per media message type."""
    return {kind: demo.upload_media(data, mime, filename=name) for kind, (mime, data, name) in MEDIA_FILES.items()}


@pytest.fixture(scope="module")
def templates_ready(demo: Client) -> list[str]:
    """The module's templates, created, then reviewed by moving the clock past the review time."""
    for name, (category, components) in TEMPLATES.items():
        created = demo.create_template(name, "en_US", category, components)  # type: ignore[arg-type]
        assert (created["name"], created["status"], created["category"]) == (name, "pending", category.upper())
    demo.advance_clock(REVIEW_SECONDS + 1)
    wanted = {ORDER: "approved", RECEIPT: "approved", REJECTED: "rejected"}

    def reviewed() -> bool:
        return {t.name: t.status for t in demo.templates() if t.name in wanted} == wanted

    wait_until(reviewed, what="the sandbox's template review")
    return list(wanted)


@pytest.fixture(scope="module")
def foreign_media(gw: Server, partner: Client) -> str:
    """A media id uploaded by another number."""
    other = open_account(partner, gw.url)
    with Client(other.target) as client:
        mime, data, name = MEDIA_FILES["image"]
        return client.upload_media(data, mime, filename=name)


def status_webhooks(receiver: Receiver, wamid: str, wanted: set[str]) -> dict[str, dict[str, Any]]:
    """Wait for the status webhooks `wanted` of `wamid`; by status."""
    def found(requests: list[Received]) -> dict[str, dict[str, Any]] | None:
        by_status = {r.status["status"]: r.status for r in requests if r.status and r.status.get("id") == wamid}
        return by_status if wanted <= set(by_status) else None
    return receiver.wait_for(found, what=f"{sorted(wanted)} of {wamid}")


# --- the surface ---------------------------------------------------------------------------------------


def test_every_client_method_is_called_in_this_module() -> None:
    methods = {name for name, value in vars(_Surface).items() if isinstance(value, operation)}
    assert methods == set(OPERATIONS)
    tests = {name for name in globals() if name.startswith("test_")}
    assert set(OPERATIONS.values()) <= tests


# --- sending every builder ----------------------------------------------------------------------------


def builder_cases(inbound: str, uploads: dict[str, str]) -> dict[str, Message]:
    a = ALICE
    return {
        "text": m.text(a, "Hello from the client"),
        "text-preview_url": m.text(a, "See https://example.com", preview_url=True),
        "text-reply": m.text(a, "Replying to you").replying_to(inbound),
        "image-id": m.image(a, id=uploads["image"], caption="A photo"),
        "audio-id-voice": m.audio(a, id=uploads["audio"], voice=True),
        "video-id": m.video(a, id=uploads["video"], caption="A clip"),
        "document-id": m.document(a, id=uploads["document"], caption="Invoice", filename="invoice.pdf"),
        "sticker-id": m.sticker(a, id=uploads["sticker"]),
        "image-link": m.image(a, link=LINK + "a.jpg"),
        "audio-link": m.audio(a, link=LINK + "a.ogg"),
        "video-link": m.video(a, link=LINK + "a.mp4", caption="A film"),
        "document-link": m.document(a, link=LINK + "a.pdf", filename="a.pdf"),
        "sticker-link": m.sticker(a, link=LINK + "a.webp"),
        "media-generic": m.media(a, "image", link=LINK + "b.jpg", caption="generic"),
        "location": m.location(a, 37.483307, -122.148981, name="Meta HQ", address="1 Hacker Way, Menlo Park"),
        "contacts": m.contacts(a, [m.contact("Jane Doe", phones=["+15550100"], first_name="Jane", last_name="Doe",
                                             emails=["jane@example.com"], company="Example Inc"),
                                   m.contact("Bob")]),
        "reaction": m.reaction(a, inbound, "\U0001f44d"),
        "reaction-removed": m.reaction(a, inbound, ""),
        "buttons": m.buttons(a, "Pick one", [("yes-1", "Yes"), ("no-1", "No"), ("later", "Later")],
                             header={"type": "image", "image": {"id": uploads["image"]}}, footer="openwaba"),
        "buttons-text-header": m.buttons(a, "Pick", [("ok", "OK")], header="Question"),
        "list_message": m.list_message(a, "Choose", "Options", [
            Section("Drinks", rows=[Row("tea", "Tea", "Hot"), Row("juice", "Juice")]),
            Section("Food", rows=[Row("cake", "Cake")]),
        ], header="Menu", footer="Thanks"),
        "cta_url": m.cta_url(a, "Tap to see dates", "See Dates", "https://example.com/dates", header="Tour",
                             footer="2026"),
        "flow-navigate": m.flow(a, "Book a table", "Start", flow_id="1234", flow_token="AQAAAA-token",
                                screen="FIRST_SCREEN", data={"party": 2}, mode="published"),
        "flow-by-name": m.flow(a, "Sign up", "Go", flow_name="signup", mode="draft"),
        "product": m.product(a, "cat-1", "SKU1", body="Our best", footer="Fresh"),
        "product_list": m.product_list(a, "cat-1", "Our picks", "Have a look", [
            Section("Fruit", product_ids=["SKU1", "SKU2"]), Section("Veg", product_ids=["SKU3"])]),
        "catalog": m.catalog(a, "Browse our catalog", thumbnail_product_id="SKU1"),
        "template-hello_world": m.template(a, "hello_world"),
        "template-components": m.template(a, ORDER, components=[
            m.header("A-17"), m.body("Ann", "A-17", m.date_time("Monday")), m.button(0, "quick_reply", "STOP"),
            m.button(1, "url", "A-17"), m.button(2, "copy_code", "SAVE10")]),
        "template-media-header": m.template(a, RECEIPT, components=[
            m.header(m.media_parameter("image", id=uploads["image"])),
            m.body(m.currency("$10.50", "USD", 10500), m.date_time("Monday"))]),
        "tracked-reply-template": m.template(a, "hello_world").replying_to(inbound).tracked("campaign-7"),
    }


CASE_IDS = list(builder_cases("wamid.x", dict.fromkeys(MEDIA_FILES, "1")))
RENDERED = {  # what the user reads for a template
    "template-hello_world": HELLO_WORLD_BODY,
    "tracked-reply-template": HELLO_WORLD_BODY,
    "template-components": "Hi Ann, your order A-17 ships on Monday.",
    "template-media-header": "Total $10.50 on Monday.",
}


@pytest.mark.parametrize("case", CASE_IDS)
def test_send_every_builder(client: Any, demo: Client, hook: Receiver, case: str, inbound: str,
                            uploads: dict[str, str], templates_ready: list[str]) -> None:
    message = builder_cases(inbound, uploads)[case]
    sent = client.send(message)
    assert isinstance(sent, Sent)
    assert (sent.wa_id, sent.input, sent.message_status) == (ALICE, ALICE, None)
    assert sent.message_id.startswith("wamid.")

    # The user's phone shows exactly what the builder built.
    wire = message.body()
    on_phone = shown(demo, ALICE, sent.message_id)
    assert (on_phone["type"], on_phone["direction"], on_phone["from"]) == (message.type, "outbound", "15550001234")
    expected = {"contacts": wire["contacts"]} if message.type == "contacts" else wire[message.type]
    if message.type == "text":
        expected = {"preview_url": False, **expected}  # the gateway fills in the default
    assert on_phone[message.type] == expected
    assert on_phone.get("context") == ({"id": inbound} if message.reply_to else None)
    if message.type == "template":
        assert on_phone["text"] == RENDERED[case]  # the parameters filled in

    # And the business hears about it: a `sent` status webhook (a reaction gets nothing more).
    status = status_webhooks(hook, sent.message_id, {"sent"})["sent"]
    assert status["recipient_id"] == ALICE
    assert status.get("biz_opaque_callback_data") == message.biz_opaque_callback_data


def test_d360_sandbox_target_posts_to_v1_messages_and_reads_the_201(flavour: str, gw: Server, demo: Client) -> None:
    """`Target.d360_sandbox` speaks the On-Premise path; openwaba answers it 201 with `messages`,
    `contacts` and `meta`, and that answer parses."""
    sandbox = connect(flavour, Target.d360_sandbox(API_KEY, gw.url))
    try:
        sent = sandbox.send(m.text(CHEN, "Via /v1/messages"))
    finally:
        sandbox.close()
    assert (sent.wa_id, sent.input) == (CHEN, CHEN)
    assert shown(demo, CHEN, sent.message_id)["text"]["body"] == "Via /v1/messages"


def test_tracked_data_comes_back_in_every_status_webhook(client: Any, hook: Receiver) -> None:
    sent = client.send(m.text(BRUNO, "Your order shipped").tracked("order-42"))
    statuses = status_webhooks(hook, sent.message_id, {"sent", "delivered", "read"})
    assert {s: statuses[s]["biz_opaque_callback_data"] for s in statuses} == dict.fromkeys(
        ("sent", "delivered", "read"), "order-42")
    untracked = client.send(m.text(BRUNO, "No tracking"))
    assert "biz_opaque_callback_data" not in status_webhooks(hook, untracked.message_id, {"sent"})["sent"]


def test_send_text_with_preview_and_reply(client: Any, demo: Client, inbound: str) -> None:
    plain = client.send_text(CHEN, "Plain text")
    assert shown(demo, CHEN, plain.message_id)["text"] == {"body": "Plain text", "preview_url": False}
    reply = client.send_text(ALICE, "See https://example.com", preview_url=True, reply_to=inbound)
    on_phone = shown(demo, ALICE, reply.message_id)
    assert on_phone["text"] == {"body": "See https://example.com", "preview_url": True}
    assert on_phone["context"] == {"id": inbound}
    assert (reply.wa_id, reply.input) == (ALICE, ALICE)


def test_mark_read_and_typing(client: Any, demo: Client, hook: Receiver) -> None:
    first = client.user_says(BRUNO, "Are you there?")
    second = client.user_says(BRUNO, "Hello?", reply_to=first)
    webhook = hook.wait_for(lambda rs: next((r for r in rs if r.message and r.message["id"] == second), None),
                            what="the inbound message webhook")
    assert webhook.message is not None
    assert (webhook.message["from"], webhook.message["text"], webhook.message["context"]["id"]) == (
        BRUNO, {"body": "Hello?"}, first)
    assert shown(demo, BRUNO, first)["status"] == "received"

    assert client.mark_read(first) is True
    assert shown(demo, BRUNO, first)["status"] == "read"
    assert shown(demo, BRUNO, second)["status"] == "received"  # only up to the message marked
    assert client.mark_read(second, typing=True) is True
    view = demo.user_phone(BRUNO)
    assert view["business_typing"] is True
    assert next(i for i in view["messages"] if i["id"] == second)["status"] == "read"
    client.send_text(BRUNO, "Yes!")  # a reply ends "typing…"
    assert demo.user_phone(BRUNO)["business_typing"] is False


# --- media --------------------------------------------------------------------------------------------


def test_media_round_trip(client: Any, gw: Server, tmp_path: Path) -> None:
    jpeg_mime, jpeg, _ = MEDIA_FILES["image"]
    _, pdf, _ = MEDIA_FILES["document"]
    path = tmp_path / "invoice.pdf"
    path.write_bytes(pdf)
    uploaded = {
        client.upload_media(jpeg, jpeg_mime, filename="photo.jpg"): (jpeg, "image/jpeg"),
        client.upload_media(path): (pdf, "application/pdf"),  # the type guessed from the name
    }
    assert len(uploaded) == 2
    for media_id, (data, mime) in uploaded.items():
        info = client.media(media_id)
        assert (info.id, info.mime_type, info.sha256, info.file_size) == (
            media_id, mime, hashlib.sha256(data).hexdigest(), len(data))
        assert info.url.startswith(gw.url + "/whatsapp_business/attachments/?")
        assert client.download_media(media_id) == data
        assert client.delete_media(media_id) is True
        for gone in (client.media, client.download_media, client.delete_media):
            with pytest.raises(ApiError) as excinfo:
                gone(media_id)
            assert_api_error(excinfo.value, NotFoundError, 100, 404, False)


def test_media_of_another_number_is_not_found(client: Any, foreign_media: str) -> None:
    for call in (client.media, client.download_media, client.delete_media):
        with pytest.raises(ApiError) as excinfo:
            call(foreign_media)
        assert_api_error(excinfo.value, NotFoundError, 100, 404, False)
    with pytest.raises(ApiError) as excinfo:
        client.send(m.image(ALICE, id=foreign_media))
    assert_api_error(excinfo.value, InvalidRequestError, 100, 400, False)


def test_user_sends_files(client: Any, demo: Client, hook: Receiver, tmp_path: Path) -> None:
    jpeg_mime, jpeg, _ = MEDIA_FILES["image"]
    _, pdf, _ = MEDIA_FILES["document"]
    path = tmp_path / "scan.pdf"
    path.write_bytes(pdf)
    sent = {
        client.user_sends_file(CHEN, jpeg, jpeg_mime, caption="Look at this"): ("image", jpeg, "Look at this"),
        client.user_sends_file(CHEN, path): ("document", pdf, None),
    }
    for wamid, (kind, data, caption) in sent.items():
        webhook = hook.wait_for(lambda rs, w=wamid: next((r for r in rs if r.message and r.message["id"] == w), None),
                                what=f"the {kind} webhook")
        assert webhook.message is not None and webhook.message["type"] == kind
        media = webhook.message[kind]
        assert media.get("caption") == caption
        assert media["sha256"] == hashlib.sha256(data).hexdigest()
        assert client.download_media(media["id"]) == data  # received media downloads with the number's key
    assert shown(demo, CHEN, next(iter(sent)))["direction"] == "inbound"


# --- templates -----------------------------------------------------------------------------------------


def test_template_list_and_filters(client: Any, templates_ready: list[str]) -> None:
    every = client.templates()
    by_name = {t.name: t for t in every}
    assert set(templates_ready) | {"hello_world"} <= set(by_name)
    hello = by_name["hello_world"]
    assert (hello.language, hello.status, hello.category) == ("en_US", "approved", "utility")
    assert {"type": "BODY", "text": HELLO_WORLD_BODY} in hello.components
    assert hello.id and hello.raw["name"] == "hello_world"
    assert (by_name[REJECTED].status, by_name[REJECTED].category) == ("rejected", "marketing")

    assert [t.name for t in client.templates(name="hello_world")] == ["hello_world"]
    approved = client.templates(status="approved")
    assert [t.name for t in approved] == [t.name for t in every if t.status == "approved"]
    assert [t.name for t in client.templates(status="rejected")] == [REJECTED]
    assert [t.name for t in client.templates(category="marketing", status="rejected")] == [REJECTED]
    assert client.templates(name="no_such_template") == []


def test_template_paging_across_pages(gw: Server, partner: Client) -> None:
    """With a page size of 2 the client reads every page by offset and gets what one page holds."""
    acc = open_account(partner, gw.url)
    with Client(acc.target) as plain:
        for index in range(4):
            plain.create_template(f"paged_{index}", "en_US", "marketing", [{"type": "BODY", "text": f"Ad {index}."}])
        everything = [(t.name, t.id) for t in plain.templates()]
    assert len(everything) == 5  # hello_world and the four
    transport = CappedLimit(2)
    with Client(acc.target, http=httpx.Client(transport=transport)) as paged:
        assert [(t.name, t.id) for t in paged.templates()] == everything
        assert [u.params["offset"] for u in transport.urls] == ["0", "2", "4"]
        assert {u.params["limit"] for u in transport.urls} == {"2"}
        transport.urls.clear()
        assert [t.name for t in paged.templates(category="marketing")] == [f"paged_{i}" for i in range(4)]
        assert [u.params["offset"] for u in transport.urls] == ["0", "2"]


def test_template_lifecycle(account: Account, flavour: str) -> None:
    client = account.client
    name = f"client_lifecycle_{flavour.lower()}"
    with running(Receiver()) as receiver:
        client.set_webhook(receiver.url)
        created = client.create_template(name, "en_US", "utility", [
            {"type": "BODY", "text": "Your code is {{1}}.", "example": {"body_text": [["123"]]}}])
        assert (created["name"], created["language"], created["status"], created["category"]) == (
            name, "en_US", "pending", "UTILITY")
        with pytest.raises(ApiError) as excinfo:  # not approved yet
            client.send(m.template(account.user, name, components=[m.body("123")]))
        assert_api_error(excinfo.value, TemplateError, 132001, 404, False)

        client.advance_clock(REVIEW_SECONDS + 1)
        update = receiver.wait_for(
            lambda rs: next((r for r in rs if r.json and r.json["entry"][0]["changes"][0]["field"]
                             == "message_template_status_update"), None), what="the template status webhook")
        value = update.json["entry"][0]["changes"][0]["value"]
        assert (value["event"], value["message_template_name"], value["message_template_language"]) == (
            "APPROVED", name, "en_US")
        [template] = client.templates(name=name)
        assert (template.status, template.id) == ("approved", str(value["message_template_id"]))

        sent = client.send(m.template(account.user, name, components=[m.body("123")]))
        assert shown(client, account.user, sent.message_id)["text"] == "Your code is 123."

        assert client.delete_template(name) is True
        assert client.templates(name=name) == []
        with pytest.raises(ApiError) as excinfo:
            client.send(m.template(account.user, name, components=[m.body("123")]))
        assert_api_error(excinfo.value, TemplateError, 132001, 404, False)


# --- the number ----------------------------------------------------------------------------------------


def test_number_health_and_profile(account: Account) -> None:
    client = account.client
    assert client.phone_number() == {"phone_number": account.phone_number, "phone_number_id": account.phone_number_id}
    health = client.health()
    assert health["id"] == account.phone_number_id
    assert health["health_status"]["can_send_message"] == "AVAILABLE"
    entities = {e["entity_type"]: e["id"] for e in health["health_status"]["entities"]}
    assert (entities["PHONE_NUMBER"], entities["WABA"]) == (account.phone_number_id, account.waba_id)

    before = client.business_profile()
    assert before["messaging_product"] == "whatsapp"
    assert client.update_business_profile(about="Open 9-5", websites=["https://example.com"]) is True
    after = client.business_profile()
    assert after == {**before, "about": "Open 9-5", "websites": ["https://example.com"]}
    assert client.update_business_profile(vertical="RETAIL", email="shop@example.com") is True
    assert client.business_profile() == {**after, "vertical": "RETAIL", "email": "shop@example.com"}
    with pytest.raises(ApiError) as excinfo:
        client.update_business_profile(vertical="SPACESHIPS")
    assert_api_error(excinfo.value, InvalidRequestError, excinfo.value.code, 400, False)
    assert excinfo.value.code in (100, 131009)


# --- webhook configuration -----------------------------------------------------------------------------

BASIC = {"Authorization": "Basic dXNlcjpwYXNz", "X-Tenant": "shop-1"}


def test_webhook_headers_reach_the_receiver(account: Account, receiver: Receiver) -> None:
    client = account.client
    assert client.webhook() == {"url": "", "headers": {}}
    assert client.set_webhook(receiver.url, BASIC) == {"url": receiver.url, "headers": BASIC}
    assert client.webhook() == {"url": receiver.url, "headers": BASIC}
    wamid = client.user_says(account.user, "knock knock")
    got = receiver.wait_for(lambda rs: next((r for r in rs if r.message and r.message["id"] == wamid), None),
                            what="the message webhook")
    assert (got.headers["authorization"], got.headers["x-tenant"]) == (BASIC["Authorization"], "shop-1")
    assert client.set_webhook("") == {"url": "", "headers": {}}
    assert client.webhook() == {"url": "", "headers": {}}


def test_waba_webhook(account: Account, receiver: Receiver) -> None:
    client = account.client
    answer = client.set_waba_webhook(receiver.url, {"X-Waba": "yes"}, override_all=False)
    assert answer == {"message": f"Webhook will be set for waba_id: {account.waba_id}"}
    assert client.waba_webhook() == {"url": receiver.url, "headers": {"X-Waba": "yes"}, "override_all": False,
                                     "waba_id": int(account.waba_id),
                                     "numbers_on_this_waba": [account.phone_number_id]}
    wamid = client.user_says(account.user, "to the WABA webhook")  # the number has no webhook of its own
    got = receiver.wait_for(lambda rs: next((r for r in rs if r.message and r.message["id"] == wamid), None),
                            what="the message webhook")
    assert got.headers["x-waba"] == "yes"
    assert got.json["entry"][0]["id"] == account.waba_id


def test_multi_webhook_lifecycle(account: Account, receiver: Receiver) -> None:
    client = account.client
    main = receiver
    with running(Receiver(path="/crm")) as crm, running(Receiver(path="/bi")) as bi:
        assert client.multi_webhook() == {"enabled": False, "fanout": "after_main", "destinations": []}
        client.set_webhook(main.url)
        client.enable_multi_webhook([{"name": "crm", "url": crm.url, "headers": {"X-Dest": "crm"}}],
                                    fanout="independent")
        with pytest.raises(ApiError) as excinfo:  # enabling again: PUT adds destinations
            client.enable_multi_webhook([{"name": "bi", "url": bi.url}])
        assert_api_error(excinfo.value, ConflictError, None, 409, False)
        assert "already enabled" in excinfo.value.title

        client.add_webhook_destinations([{"name": "bi", "url": main.url}])
        with pytest.raises(ApiError) as excinfo:
            client.add_webhook_destinations([{"name": "bi", "url": bi.url}])
        assert_api_error(excinfo.value, ConflictError, None, 409, False)
        client.update_webhook_destination("bi", url=bi.url, headers={"X-Dest": "bi"})
        assert client.multi_webhook() == {"enabled": True, "fanout": "independent", "destinations": [
            {"name": "crm", "url": crm.url, "headers": {"X-Dest": "crm"}},
            {"name": "bi", "url": bi.url, "headers": {"X-Dest": "bi"}}]}

        wamid = client.user_says(account.user, "to everyone")
        for destination, header in ((main, None), (crm, "crm"), (bi, "bi")):
            got = destination.wait_for(
                lambda rs: next((r for r in rs if r.message and r.message["id"] == wamid), None),
                what=f"the message at {destination.path}")
            assert got.headers.get("x-dest") == header

        client.remove_webhook_destination("bi")
        with pytest.raises(ApiError) as excinfo:
            client.remove_webhook_destination("bi")
        assert_api_error(excinfo.value, NotFoundError, None, 404, False)
        with pytest.raises(ApiError) as excinfo:
            client.update_webhook_destination("BI", url=bi.url)  # names are case-sensitive
        assert_api_error(excinfo.value, NotFoundError, None, 404, False)
        assert [d["name"] for d in client.multi_webhook()["destinations"]] == ["crm"]

        client.disable_multi_webhook()
        assert client.multi_webhook() == {"enabled": False, "fanout": "independent", "destinations": []}
        with pytest.raises(ApiError) as excinfo:
            client.add_webhook_destinations([{"name": "bi", "url": bi.url}])
        assert_api_error(excinfo.value, ConflictError, None, 409, False)


# --- the delivery log ----------------------------------------------------------------------------------


def test_delivery_log_and_replay(gw: Server, partner: Client) -> None:
    acc = open_account(partner, gw.url, retry_horizon_seconds=60)
    with Client(acc.target) as client, running(Receiver()) as flaky:
        flaky.default_status = 500
        client.set_webhook(flaky.url)

        def dead_letter(text: str) -> dict[str, Any]:
            wamid = client.user_says(acc.user, text)
            wait_until(lambda: [d for d in client.deliveries()["deliveries"]
                                if d["event"]["wamid"] == wamid and d["attempts_made"] >= 1], what="a first attempt")
            client.advance_clock(61)  # past the number's 60 s retry horizon
            return wait_until(lambda: next((d for d in client.deliveries(state="dead")["deliveries"]
                                            if d["event"]["wamid"] == wamid), None), what="the dead letter")

        first = dead_letter("first")
        assert (first["state"], first["last_status"], first["event"]["kind"]) == ("dead", 500, "message")
        assert first["destination"] == {"kind": "main", "name": "main", "url": flaky.url}
        detail = client.delivery(first["id"])
        assert [a["status_code"] for a in detail["attempts"]] == [500] * first["attempts_made"]
        assert detail["payload"]["entry"][0]["changes"][0]["value"]["messages"][0]["id"] == first["event"]["wamid"]

        flaky.default_status = 200
        assert client.replay_delivery(first["id"]) == 1
        wait_until(lambda: client.delivery(first["id"])["state"] == "delivered", what="the replayed delivery")
        assert {r.answered for r in flaky.requests if r.webhook_id == first["event_id"]} >= {500, 200}

        flaky.default_status = 500
        second = dead_letter("second")
        flaky.default_status = 200
        assert client.replay_deliveries(destination="main") == 1  # the dead one only
        wait_until(lambda: client.delivery(second["id"])["state"] == "delivered", what="the replayed delivery")
        assert client.replay_deliveries() == 0

        assert [d["id"] for d in client.deliveries(event_id=first["event_id"])["deliveries"]] == [first["id"]]
        newest = client.deliveries(limit=1)
        assert [d["id"] for d in newest["deliveries"]] == [second["id"]]
        older = client.deliveries(limit=1, before=newest["paging"]["before"])
        assert [d["id"] for d in older["deliveries"]] == [first["id"]]
        assert {d["id"] for d in client.deliveries(state="delivered", since=first["created_at"])["deliveries"]} == {
            first["id"], second["id"]}
        assert client.deliveries(state="dead")["deliveries"] == []


def test_notices_after_410_gone(gw: Server, partner: Client) -> None:
    acc = open_account(partner, gw.url)
    with Client(acc.target) as client, running(Receiver()) as gone:
        gone.default_status = 410
        assert client.notices() == {"notices": []}
        client.set_webhook(gone.url)
        client.user_says(acc.user, "anyone?")
        [notice] = wait_until(lambda: client.notices()["notices"], what="a notice")
        assert notice["kind"] == "destination_disabled"
        assert gone.url in notice["detail"] and "410" in notice["detail"]
        assert [d["state"] for d in client.deliveries()["deliveries"]] == ["dead"]


# --- the sandbox ------------------------------------------------------------------------------------------


def test_sandbox_users_and_clock(client: Any) -> None:
    users = client.sandbox_users()
    assert [(u["wa_id"], u["name"]) for u in users] == list(USER_NAMES.items())
    assert all(u["user_id"].startswith("US.") for u in users)
    now = client.clock()
    assert now >= time.time() - 5  # the manual clock starts at the system time and only moves forward
    later = client.advance_clock(1.5)
    assert later >= now + 1.5
    assert client.clock() >= later
    with pytest.raises(ApiError) as excinfo:
        client.advance_clock(-1)
    assert_api_error(excinfo.value, InvalidRequestError, None, 400, False)


def test_set_clock_to_a_time(client: Any) -> None:
    now = client.clock()
    assert client.set_clock(now + 30) == pytest.approx(now + 30, abs=1)
    aware = datetime.fromtimestamp(now + 60, tz=timezone(timedelta(hours=-5)))  # any offset names one instant
    assert client.set_clock(aware) == pytest.approx(now + 60, abs=1)
    with pytest.raises(ValueError, match="timezone-aware"):  # refused before anything is sent
        client.set_clock(datetime(2030, 1, 1))
    with pytest.raises(ApiError) as excinfo:
        client.set_clock(now)  # only forward
    assert "forward" in assert_api_error(excinfo.value, InvalidRequestError, None, 400, False).title


def inbound_message(receiver: Receiver, match: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
    """The first message webhook `match` accepts."""
    got = receiver.wait_for(lambda rs: next((r.message for r in rs if r.message and match(r.message)), None),
                            what=what)
    return dict(got)


def message_with_id(receiver: Receiver, wamid: str) -> dict[str, Any]:
    return inbound_message(receiver, lambda message: message["id"] == wamid, f"the webhook of {wamid}")


def test_user_actions_arrive_as_webhooks(client: Any, hook: Receiver, templates_ready: list[str]) -> None:
    user = CHEN
    client.user_says(user, "What can I do?")  # opens the 24-hour window for the interactive messages
    buttons = client.send(m.buttons(user, "Pick one", [("yes", "Yes"), ("no", "No")])).message_id
    tapped = message_with_id(hook, client.user_taps(user, buttons, "no"))
    assert tapped["interactive"] == {"type": "button_reply", "button_reply": {"id": "no", "title": "No"}}
    assert tapped["context"]["id"] == buttons

    rows = [Section("Drinks", rows=[Row("tea", "Tea", "Hot"), Row("juice", "Juice")])]
    listed = client.send(m.list_message(user, "Choose", "Options", rows)).message_id
    picked = message_with_id(hook, client.user_picks(user, listed, "tea"))
    tea = {"id": "tea", "title": "Tea", "description": "Hot"}
    assert picked["interactive"] == {"type": "list_reply", "list_reply": tea}
    assert picked["context"]["id"] == listed

    order = client.send(m.template(user, ORDER, components=[
        m.header("A-9"), m.body("Ann", "A-9", "Monday"), m.button(0, "quick_reply", "STOP-A-9"),
        m.button(1, "url", "A-9"), m.button(2, "copy_code", "SAVE10")])).message_id
    quick = message_with_id(hook, client.user_taps_template_button(user, order, 0))
    assert (quick["type"], quick["button"], quick["context"]["id"]) == (
        "button", {"payload": "STOP-A-9", "text": "Stop"}, order)

    reacted = message_with_id(hook, client.user_reacts(user, buttons, "\U0001f44d"))
    assert reacted["reaction"] == {"message_id": buttons, "emoji": "\U0001f44d"}
    located = message_with_id(hook, client.user_shares_location(user, 52.52, 13.405, name="Shop", address="Main St 1"))
    assert located["location"] == {"latitude": 52.52, "longitude": 13.405, "name": "Shop", "address": "Main St 1"}
    pin = message_with_id(hook, client.user_shares_location(user, -33.86, 151.21))
    assert pin["location"] == {"latitude": -33.86, "longitude": 151.21}
    card = {"name": {"formatted_name": "Jane Doe", "first_name": "Jane"}, "phones": [{"phone": "+15550100"}]}
    shared = message_with_id(hook, client.user_acts(user, {"type": "contacts", "contacts": [card]}))
    assert shared["contacts"] == [card]

    for refused in (lambda: client.user_taps(user, listed, "tea"),  # a list has no reply buttons
                    lambda: client.user_picks(user, listed, "coffee"),
                    lambda: client.user_taps_template_button(user, order, 1),  # a URL button, not a quick reply
                    lambda: client.user_acts(user, {"type": "poke"})):
        with pytest.raises(ApiError) as excinfo:
            refused()
        assert_api_error(excinfo.value, InvalidRequestError, None, 400, False)


def test_scenario_layers(account: Account) -> None:
    client, user, other = account.client, account.users[0], account.users[1]
    assert client.scenario() == {"scenario": {}}
    number_layer = client.set_scenario({"never_reads": True, "delays": {"delivered": [1, 2]}, "seed": 7})
    assert number_layer == {"delays": {"delivered": [1, 2]}, "drop": ["read"], "seed": 7}  # as stored
    assert client.scenario() == {"scenario": number_layer}

    user_layer = client.set_scenario({"delays": {"delivered": 0.5}, "duplicates": 1}, wa_id=user)
    assert user_layer == {"delays": {"delivered": 0.5}, "duplicates": 1}
    effective = {"delays": {"delivered": 0.5}, "drop": ["read"], "duplicates": 1, "seed": 7}  # the user's fields win
    assert client.scenario(user) == {"scenario": user_layer, "effective": effective}
    assert client.scenario(other) == {"scenario": {}, "effective": number_layer}
    with pytest.raises(ApiError) as excinfo:
        client.set_scenario({"seed": 1}, wa_id=user)  # one generator per number
    assert "seed" in assert_api_error(excinfo.value, InvalidRequestError, None, 400, False).title
    with pytest.raises(ApiError) as excinfo:
        client.set_scenario({"fail": {"code": 1}})
    assert "fail.code" in assert_api_error(excinfo.value, InvalidRequestError, None, 400, False).title
    with pytest.raises(ApiError) as excinfo:
        client.scenario("15550000000")
    assert_api_error(excinfo.value, NotFoundError, None, 404, False)

    assert client.clear_scenario(user) is None
    assert client.scenario(user) == {"scenario": {}, "effective": number_layer}
    assert client.clear_scenario() is None
    assert client.scenario() == {"scenario": {}}


def test_scenario_failures_reach_the_business(account: Account, receiver: Receiver) -> None:
    client, user = account.client, account.user
    client.set_webhook(receiver.url)
    client.user_says(user, "hi")
    client.set_scenario({"fail": {"code": 130429, "next": 1}})
    with pytest.raises(ApiError) as excinfo:  # a synchronous code refuses the send itself
        client.send_text(user, "refused")
    assert excinfo.value.code == 130429 and isinstance(excinfo.value, RateLimitError)

    client.set_scenario({"fail": {"code": 131026, "next": 1}}, wa_id=user)
    failing = client.send_text(user, "fails later").message_id
    failed = status_webhooks(receiver, failing, {"failed"})["failed"]
    assert failed["errors"][0]["code"] == 131026
    fine = client.send_text(user, "the count is used up").message_id
    assert set(status_webhooks(receiver, fine, {"sent", "delivered", "read"})) == {"sent", "delivered", "read"}
    logged = {d["event"]["wamid"]: d for d in client.deliveries()["deliveries"] if d["event"]["kind"] == "status"}
    assert "failure" in logged[failing]["injected"]


def test_scripted_user_and_its_progress(account: Account, receiver: Receiver) -> None:
    client, user = account.client, account.user
    client.set_webhook(receiver.url)
    client.user_says(user, "hi")
    script = [{"expect": {"type": "interactive", "contains": "menu"}, "reply": {"type": "button_reply", "id": "hours"}},
              {"expect": "9 to 5", "reply": "Thanks!"}]
    client.set_scenario({"script": script}, wa_id=user)
    assert client.script_progress(user) == {"steps": 2, "done": 0, "finished": False, "mismatches": []}

    menu = client.send(m.buttons(user, "Our menu", [("hours", "Opening hours"), ("prices", "Prices")])).message_id
    client.advance_clock(1)  # the user answers half a second after reading
    tapped = inbound_message(receiver, lambda msg: msg.get("context", {}).get("id") == menu, "the scripted tap")
    assert tapped["interactive"]["button_reply"] == {"id": "hours", "title": "Opening hours"}

    off_track = client.send_text(user, "Something else").message_id
    client.send_text(user, "We are open 9 to 5")
    client.advance_clock(1)
    inbound_message(receiver, lambda msg: msg.get("text") == {"body": "Thanks!"}, "the scripted answer")
    progress = client.script_progress(user)
    assert (progress["steps"], progress["done"], progress["finished"]) == (2, 2, True)
    assert progress["mismatches"] == [
        {"step": 1, "expected": "9 to 5", "got": {"id": off_track, "type": "text", "text": "Something else"}}]
    with pytest.raises(ApiError) as excinfo:
        client.script_progress("15550000000")
    assert_api_error(excinfo.value, NotFoundError, None, 404, False)


# --- the Partner API --------------------------------------------------------------------------------------


def test_partner_operations(gw: Server, partner: Client, receiver: Receiver) -> None:
    waba = partner.create_waba("Client Shop")
    assert {"id": waba["id"], "name": "Client Shop"} in partner.wabas()
    channel = partner.create_channel(waba["id"], "+15557401234", sandbox_users=["15558887777"])
    assert (channel["phone_number"], channel["type"], channel["mode"], channel["sandbox_users"]) == (
        "15557401234", "cloud", "sandbox", ["15558887777"])
    assert channel["id"] in [c["id"] for c in partner.channels()]
    on_premise = partner.create_channel(waba["id"], "+15557401235", type="on_premise")
    assert on_premise["type"] == "on_premise"

    first = partner.create_api_key(channel["id"])
    assert (first["id"], first["app_id"], first["address"]) == (channel["id"], channel["phone_number_id"], gw.url)
    listed = partner.api_keys(channel["id"])["api_keys"]
    assert [k["api_key"][:4] for k in listed] == [first["api_key"][:4]]
    assert listed[0]["api_key"] != first["api_key"] and listed[0]["api_key"].endswith("*" * 20)

    with Client.openwaba(first["api_key"], gw.url) as number:
        number.set_webhook(receiver.url)
        assert number.phone_number()["phone_number"] == "15557401234"
    second = partner.create_api_key(channel["id"])  # revokes the first and removes the webhook
    with Client.openwaba(first["api_key"], gw.url) as revoked:
        with pytest.raises(ApiError) as excinfo:
            revoked.phone_number()
        assert_api_error(excinfo.value, AuthenticationError, None, 401, False)
    with Client.openwaba(second["api_key"], gw.url) as number:
        assert number.webhook() == {"url": "", "headers": {}}
        assert [u["wa_id"] for u in number.sandbox_users()] == ["15558887777"]


PARTNER_ERRORS: dict[str, tuple[Callable[[Client], Any], Callable[[Server], Target], type[ApiError], int]] = {
    "wrong-key": (lambda c: c.wabas(), lambda s: Target.partner("wrong", PARTNER_ID, s.url), AuthenticationError,
                  401),
    "other-partner-id": (lambda c: c.channels(), lambda s: Target.partner(PARTNER_KEY, "someone-else", s.url),
                         PermissionDeniedError, 403),
    "unknown-setting": (lambda c: c.update_channel("1", speed=1), lambda s: Target.partner(PARTNER_KEY, PARTNER_ID,
                                                                                              s.url),
                        InvalidRequestError, 400),
    "horizon-too-short": (lambda c: c.update_channel("1", retry_horizon_seconds=5),
                          lambda s: Target.partner(PARTNER_KEY, PARTNER_ID, s.url), InvalidRequestError, 400),
    "unknown-channel": (lambda c: c.create_api_key("999999"), lambda s: Target.partner(PARTNER_KEY, PARTNER_ID,
                                                                                         s.url),
                        NotFoundError, 404),
    "empty-waba-name": (lambda c: c.create_waba(" "), lambda s: Target.partner(PARTNER_KEY, PARTNER_ID, s.url),
                        InvalidRequestError, 400),
}


@pytest.mark.parametrize("case", list(PARTNER_ERRORS))
def test_partner_errors(gw: Server, case: str) -> None:
    call, target, cls, status = PARTNER_ERRORS[case]
    with Client(target(gw)) as client, pytest.raises(ApiError) as excinfo:
        call(client)
    assert_api_error(excinfo.value, cls, None, status, False)
    assert excinfo.value.body["meta"]["success"] is False


def test_partner_and_number_keys_do_not_mix(gw: Server, partner: Client, demo: Client) -> None:
    with pytest.raises(UnsupportedError):
        partner.send(m.text(ALICE, "hi"))
    with pytest.raises(UnsupportedError):
        demo.channels()


# --- errors -----------------------------------------------------------------------------------------------

FOUR_BUTTONS = {"type": "button", "body": {"text": "Pick"}, "action": {"buttons": [
    {"type": "reply", "reply": {"id": str(i), "title": f"B{i}"}} for i in range(4)]}}

# id -> (call on the seeded number's client, class, code, HTTP status)
ERRORS: dict[str, tuple[Callable[[Any, str], Any], type[ApiError], int | None, int]] = {
    "missing-field-131008": (lambda c, _: c.send(Message(ALICE, "text", {})), InvalidRequestError, 131008, 400),
    "too-long-131009": (lambda c, _: c.send(m.text(ALICE, "x" * 4097)), InvalidRequestError, 131009, 400),
    "four-buttons-131009": (lambda c, _: c.send(Message(ALICE, "interactive", FOUR_BUTTONS)), InvalidRequestError,
                            131009, 400),
    "malformed-to-131009": (lambda c, _: c.send(m.text("12", "hi")), InvalidRequestError, 131009, 400),
    "wrong-json-type-100": (lambda c, _: c.send(Message(ALICE, "text", {"body": 5})), InvalidRequestError, 100, 400),
    "unknown-key-100": (lambda c, _: c.send(Message(ALICE, "text", {"body": "x", "colour": "red"})),
                        InvalidRequestError, 100, 400),
    "unsupported-type-131051": (lambda c, _: c.send(Message(ALICE, "hologram", {"x": 1})), InvalidRequestError,
                                131051, 400),
    "mark-read-without-id-131008": (lambda c, _: c.mark_read(""), InvalidRequestError, 131008, 400),
    "unknown-template-132001": (lambda c, _: c.send(m.template(ALICE, "no_such_template")), TemplateError, 132001,
                                404),
    "template-language-132001": (lambda c, _: c.send(m.template(ALICE, "hello_world", "de")), TemplateError, 132001,
                                 404),
    "rejected-template-132001": (lambda c, _: c.send(m.template(ALICE, REJECTED)), TemplateError, 132001, 404),
    "parameter-count-132000": (lambda c, _: c.send(m.template(ALICE, "hello_world", components=[m.body("x")])),
                               TemplateError, 132000, 400),
    "parameter-format-132012": (lambda c, _: c.send(m.template(ALICE, RECEIPT, components=[
        m.header("not an image"), m.body("$1", "Monday")])), TemplateError, 132012, 400),
    "foreign-media-send-100": (lambda c, f: c.send(m.image(ALICE, id=f)), InvalidRequestError, 100, 400),
    "foreign-media-404": (lambda c, f: c.media(f), NotFoundError, 100, 404),
    "unknown-media-404": (lambda c, _: c.delete_media("123456789"), NotFoundError, 100, 404),
    "template-filter-100": (lambda c, _: c.templates(colour="red"), InvalidRequestError, 100, 400),
    "template-name-131009": (lambda c, _: c.create_template("Bad Name!", "en_US", "utility",
                                                            [{"type": "BODY", "text": "x"}]),
                             InvalidRequestError, 131009, 400),
    "unknown-delivery-404": (lambda c, _: c.delivery(999_999_999), NotFoundError, None, 404),
    "replay-pending-400": (lambda c, _: c.replay_deliveries(state="pending"), InvalidRequestError, None, 400),
    "delivery-state-400": (lambda c, _: c.deliveries(state="bogus"), InvalidRequestError, None, 400),
    "multi-webhook-off-409": (lambda c, _: c.remove_webhook_destination("nope"), ConflictError, None, 409),
    "unknown-user-404": (lambda c, _: c.user_says("15550009999", "hi"), NotFoundError, None, 404),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_api_errors(client: Any, case: str, foreign_media: str, templates_ready: list[str]) -> None:
    call, cls, code, status = ERRORS[case]
    with pytest.raises(ApiError) as excinfo:
        call(client, foreign_media)
    error = assert_api_error(excinfo.value, cls, code, status, False)
    assert not error.title.startswith("(#")
    assert str(error).startswith(f"(#{code}) " if code is not None else f"HTTP {status}: ")


@pytest.mark.parametrize("call", ["send", "templates", "webhook", "media", "health", "sandbox_users"])
def test_a_wrong_key_is_an_authentication_error(gw: Server, flavour: str, call: str) -> None:
    calls: dict[str, Callable[[Any], Any]] = {
        "send": lambda c: c.send(m.text(ALICE, "hi")), "templates": lambda c: c.templates(),
        "webhook": lambda c: c.webhook(), "media": lambda c: c.media("123"), "health": lambda c: c.health(),
        "sandbox_users": lambda c: c.sandbox_users(),
    }
    wrong = connect(flavour, Target.openwaba("not-the-key", gw.url))
    try:
        with pytest.raises(ApiError) as excinfo:
            calls[call](wrong)
    finally:
        wrong.close()
    error = assert_api_error(excinfo.value, AuthenticationError, None, 401, False)
    assert error.title == "Invalid API key"


def test_throughput_limit_is_a_retryable_rate_limit_error(gw: Server, partner: Client, flavour: str) -> None:
    acc = open_account(partner, gw.url)
    settings = partner.update_channel(acc.channel_id, throughput=1, rate_limits=True)
    assert (settings["throughput"], settings["rate_limits"]) == (1, True)
    client = connect(flavour, acc.target)
    try:
        outcomes: list[Any] = []
        for _ in range(6):  # one second's worth (1) is admitted, the rest of an instant's burst is not
            try:
                outcomes.append(client.send(m.template(acc.user, "hello_world")))
            except RateLimitError as exc:
                outcomes.append(exc)
    finally:
        client.close()
    assert isinstance(outcomes[0], Sent)
    limited = [o for o in outcomes if isinstance(o, RateLimitError)]
    assert limited, f"6 sends at 1/s were all admitted: {outcomes}"
    for error in limited:
        assert_api_error(error, RateLimitError, 130429, 400, True)
        assert error.title == "Rate limit hit"
    back_to_default = partner.update_channel(acc.channel_id, throughput=None, rate_limits=None)
    assert back_to_default["rate_limits"] is False  # the deployment's setting (OPENWABA_RATE_LIMITS=false)


def test_no_server_is_a_transport_error(flavour: str) -> None:
    from .support import free_port

    url = f"http://127.0.0.1:{free_port()}"
    nobody = connect(flavour, Target.openwaba(API_KEY, url))
    try:
        with pytest.raises(TransportError) as excinfo:
            nobody.send_text(ALICE, "hello?")
    finally:
        nobody.close()
    assert excinfo.value.retryable is True
    assert str(excinfo.value).startswith(f"POST {url}/messages got no answer: ")
    assert isinstance(excinfo.value.__cause__, httpx.ConnectError)


def test_a_silent_server_is_a_transport_error_after_the_timeout(flavour: str) -> None:
    with silent_server() as url:
        silent = connect(flavour, Target.openwaba(API_KEY, url), timeout=0.3)
        started = time.monotonic()
        try:
            with pytest.raises(TransportError) as excinfo:
                silent.health()
        finally:
            silent.close()
    assert time.monotonic() - started < 5
    assert excinfo.value.retryable is True
    assert isinstance(excinfo.value.__cause__, httpx.TimeoutException)


# --- the asyncio client, concurrently -----------------------------------------------------------------------


def test_async_client_runs_calls_concurrently(gw: Server, demo: Client, hook: Receiver) -> None:
    async def main() -> tuple[list[Sent], list[Any], bytes]:
        async with AsyncClient.openwaba(API_KEY, gw.url, timeout=10) as client:
            sends = [client.send(m.text(user, f"async {i}").tracked(f"async-{i}"))
                     for i, user in enumerate([ALICE, BRUNO, CHEN] * 3)]
            sent = await asyncio.gather(*sends)
            mime, data, name = MEDIA_FILES["sticker"]
            media_id = await client.upload_media(data, mime, filename=name)
            mixed = await asyncio.gather(client.health(), client.templates(name="hello_world"),
                                         client.send(m.text(ALICE, "x" * 5000)), client.media(media_id),
                                         return_exceptions=True)
            return list(sent), list(mixed), await client.download_media(media_id)

    sent, mixed, sticker = asyncio.run(main())
    assert len({s.message_id for s in sent}) == 9
    for index, item in enumerate(sent):
        status = status_webhooks(hook, item.message_id, {"sent"})["sent"]
        assert status["biz_opaque_callback_data"] == f"async-{index}"
    health, templates, too_long, info = mixed
    assert health["health_status"]["can_send_message"] == "AVAILABLE"
    assert [t.name for t in templates] == ["hello_world"]
    assert_api_error(too_long, InvalidRequestError, 131009, 400, False)
    assert info.mime_type == "image/webp" and sticker == MEDIA_FILES["sticker"][1]


# --- the base install ---------------------------------------------------------------------------------------

SCRIPT = """\
import sys
from openwaba.client import Client, messages
with Client.openwaba(sys.argv[1], sys.argv[2]) as client:
    print(client.send(messages.text("15551230002", "Hello from a fresh venv")).message_id)
"""

def test_base_install_in_a_fresh_venv(gw: Server, demo: Client, tmp_path: Path) -> None:
    """`pip install --no-deps <repo>` + `pip install httpx` is all a client needs."""
    source = tmp_path / "src-copy"  # built from a copy: the build leaves nothing in the working tree
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "*.egg-info", "__pycache__", "build", "dist", "tests", "bench", ".ruff_cache",
        ".mypy_cache", ".pytest_cache", ".hypothesis", "openwaba-data"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120, capture_output=True)
    python = venv / "bin" / "python"
    pip_install(python, "--no-deps", str(source))
    pip_install(python, "httpx")

    absent = subprocess.run([str(python), "-c", textwrap.dedent("""
        import importlib.util
        print(",".join(n for n in ("starlette", "msgspec", "aiohttp", "uvicorn", "typer")
                       if importlib.util.find_spec(n) is not None))
    """)], capture_output=True, text=True, timeout=60, check=True)
    assert absent.stdout.strip() == "", f"the base install pulled in {absent.stdout}"

    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    done = subprocess.run([str(python), "-c", SCRIPT, API_KEY, gw.url], capture_output=True, text=True,
                          timeout=60, check=False, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    wamid = done.stdout.strip()
    assert wamid.startswith("wamid.")
    assert shown(demo, BRUNO, wamid)["text"] == {"body": "Hello from a fresh venv", "preview_url": False}

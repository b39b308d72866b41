"""The client against recorded answers of the real hosts: 360dialog (`waba-v2` and its
sandbox), Meta's Graph API and the Partner API. No network: every request goes to an
`httpx.MockTransport` that records it and answers with the host's documented body.

For each operation the exact method, URL, query, credentials and body are checked on
each host, and the host's answer must parse into the documented result; for each
documented error body, the exception class, code, title, details and `retryable`.
Facts from /work/shared/reference (360dialog-api.md, meta-cloud-api.md §0-§2).
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openwaba.client import (
    ApiError,
    AsyncClient,
    AuthenticationError,
    Client,
    ClientError,
    ConflictError,
    InvalidRequestError,
    MediaError,
    MediaInfo,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ReengagementError,
    Sent,
    ServerError,
    Target,
    TemplateError,
    TransportError,
    UndeliverableError,
    UnsupportedError,
    error_class,
)
from openwaba.client import messages as m
from openwaba.client.client import _Surface, operation
from openwaba.client.errors import error_from_response

PNID = "106540352242922"  # Meta's example phone number id
WABA = "102290129340398"  # Meta's example WABA id
MEDIA = "1013859600285441"
WAMID = "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJDQjZCMzlEQUE4OTJBMTE4RTUA"
INBOUND = "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA="
TO = "4915112345678"
LOOKASIDE_PATH = "/whatsapp_business/attachments/?mid=1013859600285441&ext=1700000000&hash=ATu1Zx9"
LOOKASIDE = "https://lookaside.fbsbx.com" + LOOKASIDE_PATH

D360 = Target.d360("d360-key")
SANDBOX = Target.d360_sandbox("sandbox-key")
META = Target.meta("meta-token", PNID, WABA)
PARTNER = Target.partner("partner-key", "pid-1", "https://hub.example")
GATEWAY = Target.openwaba("gw-key", "http://gw.example:8080")

V2 = "https://waba-v2.360dialog.io"
SBX = "https://waba-sandbox.360dialog.io"
GRAPH = "https://graph.facebook.com/v23.0"
HUB = "https://hub.example/api/v2/partners/pid-1"
GW = "http://gw.example:8080"

# The only credentials each target may send.
CREDENTIALS = {
    "d360": {"d360-api-key": "d360-key"},
    "sandbox": {"d360-api-key": "sandbox-key"},
    "meta": {"authorization": "Bearer meta-token"},
    "partner": {"x-api-key": "partner-key"},
    "gateway": {"d360-api-key": "gw-key"},
}
TARGETS = {"d360": D360, "sandbox": SANDBOX, "meta": META, "partner": PARTNER, "gateway": GATEWAY}
AUTH_HEADERS = {"d360-api-key", "authorization", "x-api-key"}

NO_BODY = object()  # the request has no body
MULTIPART = object()  # the request is a multipart form (checked by its own test)


# --- a recording fake host -----------------------------------------------------------------------


class FakeHost:
    """Answers requests in order with recorded responses, and records each request."""

    def __init__(self, answers: list[httpx.Response]) -> None:
        self.answers = deque(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        assert self.answers, f"unexpected request {request.method} {request.url}"
        return self.answers.popleft()


def answer(status: int, body: Any = None, **headers: str) -> httpx.Response:
    if isinstance(body, bytes):
        return httpx.Response(status, content=body, headers=headers)
    if body is None:
        return httpx.Response(status, content=b"", headers=headers)
    return httpx.Response(status, json=body, headers=headers)


def drive(flavour: str, target: Target, call: Callable[[Any], Any], answers: list[httpx.Response]) -> tuple[
        Any, list[httpx.Request]]:
    """Run `call(client)` on a Client or an AsyncClient whose HTTP goes to a FakeHost."""
    fake = FakeHost(answers)
    if flavour == "sync":
        with Client(target, http=httpx.Client(transport=httpx.MockTransport(fake))) as client:
            return call(client), fake.requests

    async def main() -> Any:
        async with AsyncClient(target, http=httpx.AsyncClient(transport=httpx.MockTransport(fake))) as client:
            return await call(client)

    return asyncio.run(main()), fake.requests


FLAVOURS = pytest.mark.parametrize("flavour", ["sync", "async"])


# --- every operation, on every host ----------------------------------------------------------------


@dataclass
class Exchange:
    """One request the client must send, and the host's answer to it."""

    method: str
    url: str  # without the query
    body: Any = NO_BODY  # JSON value, NO_BODY or MULTIPART
    params: dict[str, str] = field(default_factory=dict)
    status: int = 200
    reply: Any = None  # JSON value or bytes


@dataclass
class Case:
    target: str
    call: Callable[[Any], Any]
    exchanges: list[Exchange]
    result: Any
    post: Callable[[Any], Any] | None = None  # turns the result into something comparable


CLOUD_SENT = {"messaging_product": "whatsapp", "contacts": [{"input": "+" + TO, "wa_id": TO}],
              "messages": [{"id": WAMID, "message_status": "accepted"}]}
ON_PREMISE_SENT = {"messages": [{"id": "gBGHSRUUIXKJTwIJVQgXRR0rdXiv"}], "contacts": [{"input": TO, "wa_id": TO}],
                   "meta": {"api_status": "stable", "version": "2.31.5"}}
MEDIA_META = {"messaging_product": "whatsapp", "url": LOOKASIDE, "mime_type": "image/jpeg",
              "sha256": "81d3bd8a8db4868c9520ed47186e8b7c5789e61ff79f7f834be6950b808a90d3",
              "file_size": "303833", "id": MEDIA}
MEDIA_INFO = MediaInfo(MEDIA, LOOKASIDE, "image/jpeg", MEDIA_META["sha256"], 303833)
TEXT = m.text("+" + TO, "Hello")
TEXT_BODY = TEXT.body()
READ_BODY = {"messaging_product": "whatsapp", "status": "read", "message_id": INBOUND,
             "typing_indicator": {"type": "text"}}
D360_TEMPLATE = {"name": "order_update", "namespace": "c8ae5f90_307a", "language": "en_US", "category": "UTILITY",
                 "status": "approved", "rejected_reason": None, "id": "1749",
                 "components": [{"type": "BODY", "text": "Hi"}]}
D360_TEMPLATES = {"count": 1, "filters": {}, "sort": ["name"], "limit": 1000, "offset": 0, "total": 1,
                  "waba_templates": [D360_TEMPLATE]}
COMPONENTS = [{"type": "BODY", "text": "Hi {{1}}", "example": {"body_text": [["Ann"]]}}]
NEW_TEMPLATE = {"name": "order_update", "language": "en_US", "category": "MARKETING", "components": COMPONENTS}
PROFILE = {"about": "Hi", "address": "1 Hacker Way", "description": "", "email": "a@example.com",
           "websites": ["https://example.com"], "vertical": "RETAIL", "messaging_product": "whatsapp"}
HEALTH = {"health_status": {"can_send_message": "AVAILABLE", "entities": [
    {"entity_type": "PHONE_NUMBER", "id": PNID, "can_send_message": "AVAILABLE"}]}, "id": PNID}
PROFILE_FIELDS = "about,address,description,email,profile_picture_url,websites,vertical"
DESTINATION = {"name": "crm", "url": "https://crm.example.com/hook", "headers": {"Authorization": "Basic dTpw"}}


def _template_names(templates: list[Any]) -> list[tuple[str, str, str, str]]:
    return [(t.name, t.language, t.status, t.category) for t in templates]


CASES: dict[str, Case] = {
    # messages -----------------------------------------------------------------------------------
    "d360-send": Case("d360", lambda c: c.send(TEXT), [Exchange("POST", V2 + "/messages", TEXT_BODY,
                                                                reply=CLOUD_SENT)],
                      Sent(WAMID, TO, "+" + TO, "accepted")),
    "sandbox-send-201-on-premise": Case(
        "sandbox", lambda c: c.send(TEXT),
        [Exchange("POST", SBX + "/v1/messages", TEXT_BODY, status=201, reply=ON_PREMISE_SENT)],
        Sent("gBGHSRUUIXKJTwIJVQgXRR0rdXiv", TO, TO, None)),
    "meta-send": Case("meta", lambda c: c.send(TEXT), [Exchange("POST", f"{GRAPH}/{PNID}/messages", TEXT_BODY,
                                                                reply=CLOUD_SENT)],
                      Sent(WAMID, TO, "+" + TO, "accepted")),
    "meta-send_text-reply": Case(
        "meta", lambda c: c.send_text(TO, "see https://example.com", preview_url=True, reply_to=INBOUND),
        [Exchange("POST", f"{GRAPH}/{PNID}/messages",
                  {"messaging_product": "whatsapp", "recipient_type": "individual", "to": TO, "type": "text",
                   "text": {"body": "see https://example.com", "preview_url": True},
                   "context": {"message_id": INBOUND}}, reply=CLOUD_SENT)],
        Sent(WAMID, TO, "+" + TO, "accepted")),
    "d360-mark_read-typing": Case("d360", lambda c: c.mark_read(INBOUND, typing=True),
                                  [Exchange("POST", V2 + "/messages", READ_BODY, reply={"success": True})], True),
    "meta-mark_read": Case(
        "meta", lambda c: c.mark_read(INBOUND),
        [Exchange("POST", f"{GRAPH}/{PNID}/messages",
                  {"messaging_product": "whatsapp", "status": "read", "message_id": INBOUND},
                  reply={"success": True})], True),
    # media ---------------------------------------------------------------------------------------
    "d360-upload_media": Case("d360", lambda c: c.upload_media(b"\xff\xd8jpeg", "image/jpeg", filename="a.jpg"),
                              [Exchange("POST", V2 + "/media", MULTIPART, reply={"id": MEDIA})], MEDIA),
    "meta-upload_media": Case("meta", lambda c: c.upload_media(b"\xff\xd8jpeg", "image/jpeg", filename="a.jpg"),
                              [Exchange("POST", f"{GRAPH}/{PNID}/media", MULTIPART, reply={"id": MEDIA})], MEDIA),
    "d360-media": Case("d360", lambda c: c.media(MEDIA), [Exchange("GET", f"{V2}/{MEDIA}", reply=MEDIA_META)],
                       MEDIA_INFO),
    "meta-media": Case("meta", lambda c: c.media(MEDIA), [Exchange("GET", f"{GRAPH}/{MEDIA}", reply=MEDIA_META)],
                       MEDIA_INFO),
    "d360-delete_media": Case("d360", lambda c: c.delete_media(MEDIA),
                              [Exchange("DELETE", f"{V2}/{MEDIA}", reply={"success": True})], True),
    "meta-delete_media": Case("meta", lambda c: c.delete_media(MEDIA),
                              [Exchange("DELETE", f"{GRAPH}/{MEDIA}", reply={"success": True})], True),
    # templates -----------------------------------------------------------------------------------
    "d360-templates": Case(
        "d360", lambda c: c.templates(),
        [Exchange("GET", V2 + "/v1/configs/templates", params={"limit": "1000", "offset": "0"},
                  reply=D360_TEMPLATES)],
        [("order_update", "en_US", "approved", "utility")], _template_names),
    "d360-templates-filtered": Case(
        "d360", lambda c: c.templates(status="approved", name="order_update"),
        [Exchange("GET", V2 + "/v1/configs/templates",
                  params={"limit": "1000", "offset": "0",
                          "filters": json.dumps({"status": "approved", "name": "order_update"})},
                  reply=D360_TEMPLATES)],
        [("order_update", "en_US", "approved", "utility")], _template_names),
    "d360-create_template": Case(
        "d360", lambda c: c.create_template("order_update", "en_US", "marketing", COMPONENTS),
        [Exchange("POST", V2 + "/v1/configs/templates", NEW_TEMPLATE, status=201,
                  reply={**D360_TEMPLATE, "status": "submitted"})],
        {**D360_TEMPLATE, "status": "submitted"}),
    "meta-create_template": Case(
        "meta", lambda c: c.create_template("order_update", "en_US", "marketing", COMPONENTS),
        [Exchange("POST", f"{GRAPH}/{WABA}/message_templates", NEW_TEMPLATE,
                  reply={"id": "594425479261596", "status": "PENDING", "category": "MARKETING"})],
        {"id": "594425479261596", "status": "PENDING", "category": "MARKETING"}),
    "d360-delete_template-empty-answer": Case(
        "d360", lambda c: c.delete_template("order_update"),
        [Exchange("DELETE", V2 + "/v1/configs/templates/order_update", reply=b"")], True),
    "meta-delete_template-by-name": Case(
        "meta", lambda c: c.delete_template("order_update"),
        [Exchange("DELETE", f"{GRAPH}/{WABA}/message_templates", params={"name": "order_update"},
                  reply={"success": True})], True),
    # number, health, profile ---------------------------------------------------------------------
    "d360-phone_number": Case("d360", lambda c: c.phone_number(),
                              [Exchange("GET", V2 + "/phone_number", reply={"phone_number": "15550001234"})],
                              {"phone_number": "15550001234"}),
    "meta-phone_number": Case(
        "meta", lambda c: c.phone_number(),
        [Exchange("GET", f"{GRAPH}/{PNID}", reply={"display_phone_number": "15550783881", "id": PNID})],
        {"display_phone_number": "15550783881", "id": PNID}),
    "d360-health": Case("d360", lambda c: c.health(), [Exchange("GET", V2 + "/health_status", reply=HEALTH)], HEALTH),
    "meta-health-fields": Case("meta", lambda c: c.health(),
                               [Exchange("GET", f"{GRAPH}/{PNID}", params={"fields": "health_status"}, reply=HEALTH)],
                               HEALTH),
    "d360-business_profile": Case("d360", lambda c: c.business_profile(),
                                  [Exchange("GET", V2 + "/whatsapp_business_profile", reply={"data": [PROFILE]})],
                                  PROFILE),
    "d360-business_profile-unwrapped": Case("d360", lambda c: c.business_profile(),
                                            [Exchange("GET", V2 + "/whatsapp_business_profile", reply=PROFILE)],
                                            PROFILE),
    "meta-business_profile": Case(
        "meta", lambda c: c.business_profile(),
        [Exchange("GET", f"{GRAPH}/{PNID}/whatsapp_business_profile", params={"fields": PROFILE_FIELDS},
                  reply={"data": [PROFILE]})], PROFILE),
    "d360-update_business_profile": Case(
        "d360", lambda c: c.update_business_profile(about="Open 9-5", websites=["https://example.com"]),
        [Exchange("POST", V2 + "/whatsapp_business_profile",
                  {"messaging_product": "whatsapp", "about": "Open 9-5", "websites": ["https://example.com"]},
                  reply={"success": True})], True),
    "meta-update_business_profile": Case(
        "meta", lambda c: c.update_business_profile(vertical="RETAIL"),
        [Exchange("POST", f"{GRAPH}/{PNID}/whatsapp_business_profile",
                  {"messaging_product": "whatsapp", "vertical": "RETAIL"}, reply={"success": True})], True),
    # webhook configuration (360dialog only) ------------------------------------------------------
    "d360-webhook": Case("d360", lambda c: c.webhook(),
                         [Exchange("GET", V2 + "/v1/configs/webhook", reply={"url": "https://a.example/h",
                                                                              "headers": {}})],
                         {"url": "https://a.example/h", "headers": {}}),
    "d360-set_webhook-headers": Case(
        "d360", lambda c: c.set_webhook("https://a.example/h", {"Authorization": "Basic dTpw"}),
        [Exchange("POST", V2 + "/v1/configs/webhook",
                  {"url": "https://a.example/h", "headers": {"Authorization": "Basic dTpw"}},
                  reply={"url": "https://a.example/h", "headers": {"Authorization": "Basic dTpw"}})],
        {"url": "https://a.example/h", "headers": {"Authorization": "Basic dTpw"}}),
    "sandbox-set_webhook": Case("sandbox", lambda c: c.set_webhook("https://a.example/h"),
                                [Exchange("POST", SBX + "/v1/configs/webhook", {"url": "https://a.example/h"},
                                          reply={"url": "https://a.example/h"})],
                                {"url": "https://a.example/h"}),
    "gateway-set_webhook-extensions": Case(
        "gateway", lambda c: c.set_webhook("http://127.0.0.1:9000/hook", secret="whsec_abc", fifo=True),
        [Exchange("POST", GW + "/v1/configs/webhook",
                  {"url": "http://127.0.0.1:9000/hook", "secret": "whsec_abc", "fifo": True},
                  reply={"url": "http://127.0.0.1:9000/hook", "headers": {}})],
        {"url": "http://127.0.0.1:9000/hook", "headers": {}}),
    "d360-waba_webhook": Case(
        "d360", lambda c: c.waba_webhook(),
        [Exchange("GET", V2 + "/waba_webhook", reply={"url": "https://w.example", "waba_id": 1749448639704788,
                                                      "numbers_on_this_waba": [PNID]})],
        {"url": "https://w.example", "waba_id": 1749448639704788, "numbers_on_this_waba": [PNID]}),
    "d360-set_waba_webhook": Case(
        "d360", lambda c: c.set_waba_webhook("https://w.example", {"X-Token": "t"}, override_all=True),
        [Exchange("POST", V2 + "/waba_webhook",
                  {"url": "https://w.example", "headers": {"X-Token": "t"}, "override_all": True},
                  reply={"message": "Webhook config will be set"})], {"message": "Webhook config will be set"}),
    "d360-multi_webhook": Case("d360", lambda c: c.multi_webhook(),
                               [Exchange("GET", V2 + "/multi_webhook",
                                         reply={"enabled": True, "destinations": [DESTINATION]})],
                               {"enabled": True, "destinations": [DESTINATION]}),
    "d360-enable_multi_webhook": Case(
        "d360", lambda c: c.enable_multi_webhook([DESTINATION], fanout="independent"),
        [Exchange("POST", V2 + "/multi_webhook", {"enabled": True, "destinations": [DESTINATION],
                                                  "fanout": "independent"},
                  reply={"message": "Operation started successfully"})],
        {"message": "Operation started successfully"}),
    "d360-disable_multi_webhook": Case("d360", lambda c: c.disable_multi_webhook(),
                                       [Exchange("POST", V2 + "/multi_webhook", {"enabled": False},
                                                 reply={"message": "ok"})], {"message": "ok"}),
    "d360-add_webhook_destinations": Case(
        "d360", lambda c: c.add_webhook_destinations([DESTINATION]),
        [Exchange("PUT", V2 + "/multi_webhook", {"destinations": [DESTINATION]}, reply={"message": "ok"})],
        {"message": "ok"}),
    "d360-update_webhook_destination": Case(
        "d360", lambda c: c.update_webhook_destination("crm", url="https://crm2.example.com/hook"),
        [Exchange("PATCH", V2 + "/multi_webhook", {"name": "crm", "url": "https://crm2.example.com/hook"},
                  reply={"message": "ok"})], {"message": "ok"}),
    "d360-remove_webhook_destination-quoted": Case(
        "d360", lambda c: c.remove_webhook_destination("crm eu/1"),
        [Exchange("DELETE", V2 + "/multi_webhook/crm%20eu%2F1", reply={"message": "ok"})], {"message": "ok"}),
    # openwaba's delivery log and sandbox -----------------------------------------------------------
    "gateway-deliveries": Case(
        "gateway", lambda c: c.deliveries(state="dead", destination="main", since=1.5, limit=10, before=99),
        [Exchange("GET", GW + "/deliveries",
                  params={"state": "dead", "destination": "main", "since": "1.5", "before": "99", "limit": "10"},
                  reply={"deliveries": [], "paging": {}})], {"deliveries": [], "paging": {}}),
    "gateway-delivery": Case("gateway", lambda c: c.delivery(7),
                             [Exchange("GET", GW + "/deliveries/7", reply={"id": 7, "attempts": []})],
                             {"id": 7, "attempts": []}),
    "gateway-replay_delivery": Case("gateway", lambda c: c.replay_delivery(7),
                                    [Exchange("POST", GW + "/deliveries/7/replay", reply={"replayed": 1})], 1),
    "gateway-replay_deliveries": Case(
        "gateway", lambda c: c.replay_deliveries(destination="main", until=2.0),
        [Exchange("POST", GW + "/deliveries/replay",
                  {"state": "dead", "destination": "main", "since": None, "until": 2.0}, reply={"replayed": 3})], 3),
    "gateway-notices": Case("gateway", lambda c: c.notices(), [Exchange("GET", GW + "/notices",
                                                                        reply={"notices": []})], {"notices": []}),
    "gateway-sandbox_users": Case(
        "gateway", lambda c: c.sandbox_users(),
        [Exchange("GET", GW + "/sandbox/users", reply={"users": [{"wa_id": TO, "name": "Ann", "user_id": "US.1"}]})],
        [{"wa_id": TO, "name": "Ann", "user_id": "US.1"}]),
    "gateway-user_says-reply": Case(
        "gateway", lambda c: c.user_says(TO, "hello", reply_to=WAMID),
        [Exchange("POST", f"{GW}/sandbox/users/{TO}/messages", {"text": "hello", "context": {"message_id": WAMID}},
                  reply={"messages": [{"id": INBOUND}]})], INBOUND),
    "gateway-user_sends_file": Case(
        "gateway", lambda c: c.user_sends_file(TO, b"%PDF-1.4", "application/pdf", caption="invoice"),
        [Exchange("POST", f"{GW}/sandbox/users/{TO}/messages", MULTIPART, reply={"messages": [{"id": INBOUND}]})],
        INBOUND),
    "gateway-user_phone": Case("gateway", lambda c: c.user_phone(TO),
                               [Exchange("GET", f"{GW}/sandbox/users/{TO}/messages",
                                         reply={"wa_id": TO, "messages": []})], {"wa_id": TO, "messages": []}),
    "gateway-clock": Case("gateway", lambda c: c.clock(), [Exchange("GET", GW + "/sandbox/clock",
                                                                    reply={"now": 1700000000.5})], 1700000000.5),
    "gateway-advance_clock": Case("gateway", lambda c: c.advance_clock(60),
                                  [Exchange("POST", GW + "/sandbox/clock", {"advance_seconds": 60},
                                            reply={"now": 1700000060})], 1700000060.0),
    "gateway-set_clock": Case("gateway", lambda c: c.set_clock(datetime(2030, 1, 1, tzinfo=UTC)),
                              [Exchange("POST", GW + "/sandbox/clock", {"set": "2030-01-01T00:00:00+00:00"},
                                        reply={"now": 1893456000})], 1893456000.0),
    "gateway-user_acts": Case(
        "gateway", lambda c: c.user_acts(TO, {"type": "contacts", "contacts": [{"name": {"formatted_name": "A"}}]}),
        [Exchange("POST", f"{GW}/sandbox/users/{TO}/messages",
                  {"type": "contacts", "contacts": [{"name": {"formatted_name": "A"}}]},
                  reply={"messages": [{"id": INBOUND}]})], INBOUND),
    **{f"gateway-{name}": Case("gateway", call, [Exchange("POST", f"{GW}/sandbox/users/{TO}/messages", body,
                                                          reply={"messages": [{"id": INBOUND}]})], INBOUND)
       for name, call, body in [
           ("user_taps", lambda c: c.user_taps(TO, WAMID, "yes"),
            {"type": "button_reply", "message_id": WAMID, "id": "yes"}),
           ("user_picks", lambda c: c.user_picks(TO, WAMID, "tea"),
            {"type": "list_reply", "message_id": WAMID, "id": "tea"}),
           ("user_taps_template_button", lambda c: c.user_taps_template_button(TO, WAMID, 0),
            {"type": "button", "message_id": WAMID, "index": 0}),
           ("user_reacts", lambda c: c.user_reacts(TO, WAMID, "👍"),
            {"type": "reaction", "reaction": {"message_id": WAMID, "emoji": "👍"}}),
           ("user_shares_location", lambda c: c.user_shares_location(TO, 1.5, -2.5, name="Shop"),
            {"type": "location", "location": {"latitude": 1.5, "longitude": -2.5, "name": "Shop"}}),
       ]},
    "gateway-scenario": Case("gateway", lambda c: c.scenario(TO),
                             [Exchange("GET", f"{GW}/sandbox/users/{TO}/scenario",
                                       reply={"scenario": {}, "effective": {"seed": 1}})],
                             {"scenario": {}, "effective": {"seed": 1}}),
    "gateway-set_scenario": Case("gateway", lambda c: c.set_scenario({"never_reads": True}),
                                 [Exchange("PUT", GW + "/sandbox/scenario", {"never_reads": True},
                                           reply={"scenario": {"drop": ["read"]}})], {"drop": ["read"]}),
    "gateway-clear_scenario": Case("gateway", lambda c: c.clear_scenario(TO),
                                   [Exchange("DELETE", f"{GW}/sandbox/users/{TO}/scenario",
                                             reply={"scenario": {}})], None),
    "gateway-script_progress": Case(
        "gateway", lambda c: c.script_progress(TO),
        [Exchange("GET", f"{GW}/sandbox/users/{TO}/script",
                  reply={"steps": 1, "done": 0, "finished": False, "mismatches": []})],
        {"steps": 1, "done": 0, "finished": False, "mismatches": []}),
    # the Partner API -----------------------------------------------------------------------------
    "partner-wabas": Case("partner", lambda c: c.wabas(),
                          [Exchange("GET", HUB + "/wabas", reply={"count": 1, "wabas": [{"id": "1", "name": "A"}]})],
                          [{"id": "1", "name": "A"}]),
    "partner-create_waba": Case("partner", lambda c: c.create_waba("Shop"),
                                [Exchange("POST", HUB + "/wabas", {"name": "Shop"}, status=201,
                                          reply={"id": "2", "name": "Shop"})], {"id": "2", "name": "Shop"}),
    "partner-channels": Case("partner", lambda c: c.channels(),
                             [Exchange("GET", HUB + "/channels", reply={"count": 0, "channels": []})], []),
    "partner-create_channel": Case(
        "partner", lambda c: c.create_channel("2", "+15550001111", type="on_premise", sandbox_users=[TO]),
        [Exchange("POST", HUB + "/channels",
                  {"waba_id": "2", "phone_number": "+15550001111", "type": "on_premise", "mode": "sandbox",
                   "sandbox_users": [TO]}, status=201, reply={"id": "5"})], {"id": "5"}),
    "partner-update_channel": Case(
        "partner", lambda c: c.update_channel("5", throughput=10, rate_limits=None),
        [Exchange("PATCH", HUB + "/channels/5", {"throughput": 10, "rate_limits": None}, reply={"id": "5"})],
        {"id": "5"}),
    "partner-create_api_key": Case(
        "partner", lambda c: c.create_api_key("5"),
        [Exchange("POST", HUB + "/channels/5/api_keys", status=201,
                  reply={"id": "5", "address": V2, "api_key": "k", "app_id": PNID})],
        {"id": "5", "address": V2, "api_key": "k", "app_id": PNID}),
    "partner-api_keys": Case("partner", lambda c: c.api_keys("5"),
                             [Exchange("GET", HUB + "/channels/5/api_keys", reply={"api_keys": []})],
                             {"api_keys": []}),
}


def check_request(request: httpx.Request, expected: Exchange, target: str) -> None:
    where = f"{request.method} {request.url}"
    assert request.method == expected.method, where
    assert str(request.url.copy_with(query=None)) == expected.url, where
    assert dict(request.url.params) == expected.params, where
    sent_credentials = {k: v for k, v in request.headers.items() if k in AUTH_HEADERS}
    assert sent_credentials == CREDENTIALS[target], where
    if expected.body is NO_BODY:
        assert request.content == b"", where
    elif expected.body is MULTIPART:
        assert request.headers["content-type"].startswith("multipart/form-data; boundary="), where
    else:
        assert request.headers["content-type"] == "application/json", where
        assert json.loads(request.content) == expected.body, where


@FLAVOURS
@pytest.mark.parametrize("case", list(CASES))
def test_operation_on_host(case: str, flavour: str) -> None:
    spec = CASES[case]
    answers = [answer(e.status, e.reply) for e in spec.exchanges]
    result, requests = drive(flavour, TARGETS[spec.target], spec.call, answers)
    assert len(requests) == len(spec.exchanges)
    for request, expected in zip(requests, spec.exchanges):
        check_request(request, expected, spec.target)
    assert (spec.post(result) if spec.post else result) == spec.result


def test_every_operation_is_in_the_host_table() -> None:
    operations = {name for name, value in vars(_Surface).items() if isinstance(value, operation)}
    covered = {key.split("-")[1] for key in CASES} | {"download_media"}  # download: its own tests below
    assert operations == covered


def form_parts(request: httpx.Request) -> dict[str, tuple[str | None, str | None, bytes]]:
    """name -> (filename, content type, bytes) of a multipart/form-data request."""
    head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
    document = email.message_from_bytes(head + request.content, policy=email.policy.HTTP)
    parts: dict[str, tuple[str | None, str | None, bytes]] = {}
    for part in document.iter_parts():
        name = part.get_param("name", header="content-disposition")
        ctype = part.get_content_type() if part["content-type"] else None
        parts[str(name)] = (part.get_filename(), ctype, part.get_payload(decode=True))
    return parts


@FLAVOURS
@pytest.mark.parametrize("target", ["d360", "meta"])
def test_upload_is_the_documented_multipart_form(target: str, flavour: str) -> None:
    _, [request] = drive(flavour, TARGETS[target], lambda c: c.upload_media(b"\xff\xd8jpeg", "image/jpeg",
                                                                            filename="a.jpg"),
                         [answer(200, {"id": MEDIA})])
    assert form_parts(request) == {
        "messaging_product": (None, None, b"whatsapp"),
        "file": ("a.jpg", "image/jpeg", b"\xff\xd8jpeg"),
    }


def test_upload_of_a_path_names_the_file_and_guesses_its_type(tmp_path: Path) -> None:
    path = tmp_path / "invoice.pdf"
    path.write_bytes(b"%PDF-1.4 e2e")
    _, [request] = drive("sync", D360, lambda c: c.upload_media(path), [answer(200, {"id": MEDIA})])
    assert form_parts(request)["file"] == ("invoice.pdf", "application/pdf", b"%PDF-1.4 e2e")
    _, [request] = drive("sync", D360, lambda c: c.upload_media(str(path), "application/x-custom", filename="x.bin"),
                         [answer(200, {"id": MEDIA})])
    assert form_parts(request)["file"] == ("x.bin", "application/x-custom", b"%PDF-1.4 e2e")


def test_user_sends_file_form() -> None:
    _, [request] = drive("sync", GATEWAY, lambda c: c.user_sends_file(TO, b"%PDF-1.4", "application/pdf",
                                                                      caption="invoice"),
                         [answer(200, {"messages": [{"id": INBOUND}]})])
    assert form_parts(request) == {"caption": (None, None, b"invoice"),
                                   "file": ("file", "application/pdf", b"%PDF-1.4")}


# --- paging ------------------------------------------------------------------------------------------


def meta_template(name: str) -> dict[str, Any]:
    return {"name": name, "components": [], "language": "en_US", "status": "APPROVED", "category": "UTILITY",
            "id": name + "-id"}


@FLAVOURS
def test_meta_templates_follow_the_after_cursor(flavour: str) -> None:
    page_1 = {"data": [meta_template("a"), meta_template("b")],
              "paging": {"cursors": {"before": "QVFIUk1", "after": "QVFIUk2"},
                         "next": f"{GRAPH}/{WABA}/message_templates?limit=100&after=QVFIUk2"}}
    page_2 = {"data": [meta_template("c")], "paging": {"cursors": {"before": "QVFIUk3", "after": "QVFIUk4"}}}
    result, requests = drive(flavour, META, lambda c: c.templates(status="approved"),
                             [answer(200, page_1), answer(200, page_2)])
    assert [(t.name, t.status, t.category, t.id) for t in result] == [
        ("a", "approved", "utility", "a-id"),
        ("b", "approved", "utility", "b-id"),
        ("c", "approved", "utility", "c-id"),
    ]
    expected = [{"status": "APPROVED", "limit": "100"}, {"status": "APPROVED", "limit": "100", "after": "QVFIUk2"}]
    assert [dict(r.url.params) for r in requests] == expected
    for request in requests:
        check_request(request, Exchange("GET", f"{GRAPH}/{WABA}/message_templates", params=dict(request.url.params)),
                      "meta")


def test_meta_templates_stop_on_a_page_without_next_even_with_a_cursor() -> None:
    only = {"data": [meta_template("a")], "paging": {"cursors": {"before": "X", "after": "Y"}}}
    result, requests = drive("sync", META, lambda c: c.templates(), [answer(200, only)])
    assert [t.name for t in result] == ["a"] and len(requests) == 1
    result, requests = drive("sync", META, lambda c: c.templates(), [answer(200, {"data": []})])
    assert result == [] and len(requests) == 1


@FLAVOURS
def test_d360_templates_page_by_offset(flavour: str) -> None:
    """A host that answers fewer than `limit` per page is read to the end by `offset`."""
    def page(offset: int, names: list[str]) -> httpx.Response:
        return answer(200, {"count": len(names), "filters": {}, "limit": 2, "offset": offset, "total": 5,
                            "waba_templates": [{**D360_TEMPLATE, "name": n} for n in names]})

    result, requests = drive(flavour, D360, lambda c: c.templates(),
                             [page(0, ["a", "b"]), page(2, ["c", "d"]), page(4, ["e"])])
    assert [t.name for t in result] == ["a", "b", "c", "d", "e"]
    assert [r.url.params["offset"] for r in requests] == ["0", "2", "4"]


def test_d360_templates_stop_on_an_empty_page() -> None:
    empty = {"count": 0, "total": 7, "waba_templates": []}
    result, requests = drive("sync", D360, lambda c: c.templates(), [answer(200, empty)])
    assert result == [] and len(requests) == 1


# --- media download: where the credentials go ---------------------------------------------------------


@FLAVOURS
def test_meta_download_sends_the_token_to_lookaside(flavour: str) -> None:
    data, requests = drive(flavour, META, lambda c: c.download_media(MEDIA),
                           [answer(200, MEDIA_META), answer(200, b"JPEGBYTES", **{"Content-Type": "image/jpeg"})])
    assert data == b"JPEGBYTES"
    check_request(requests[0], Exchange("GET", f"{GRAPH}/{MEDIA}"), "meta")
    assert str(requests[1].url) == LOOKASIDE
    assert requests[1].headers["authorization"] == "Bearer meta-token"


@FLAVOURS
def test_d360_download_swaps_lookaside_for_its_own_host(flavour: str) -> None:
    data, requests = drive(flavour, D360, lambda c: c.download_media(MEDIA),
                           [answer(200, MEDIA_META), answer(200, b"JPEGBYTES")])
    assert data == b"JPEGBYTES"
    check_request(requests[0], Exchange("GET", f"{V2}/{MEDIA}"), "d360")
    assert str(requests[1].url) == V2 + LOOKASIDE_PATH
    assert requests[1].method == "GET"
    assert {k: v for k, v in requests[1].headers.items() if k in AUTH_HEADERS} == {"d360-api-key": "d360-key"}


def test_gateway_download_from_its_own_url_carries_the_key() -> None:
    own = GW + LOOKASIDE_PATH
    data, requests = drive("sync", GATEWAY, lambda c: c.download_media(MEDIA),
                           [answer(200, {**MEDIA_META, "url": own}), answer(200, b"X")])
    assert data == b"X" and str(requests[1].url) == own
    assert requests[1].headers["d360-api-key"] == "gw-key"


@pytest.mark.parametrize("target", ["d360", "meta", "gateway"])
def test_no_credentials_to_a_foreign_host(target: str) -> None:
    foreign = "https://cdn.example.net/files/a.jpg?sig=1"
    data, requests = drive("sync", TARGETS[target], lambda c: c.download_media(MEDIA),
                           [answer(200, {**MEDIA_META, "url": foreign}), answer(200, b"X")])
    assert data == b"X" and str(requests[1].url) == foreign
    assert not AUTH_HEADERS & set(requests[1].headers)


LOOK_ALIKES = [
    ("meta", "https://lookaside.fbsbx.com.attacker.example/whatsapp_business/attachments/?mid=1"),
    ("d360", "https://lookaside.fbsbx.com.attacker.example/whatsapp_business/attachments/?mid=1"),
    ("d360", "http://waba-v2.360dialog.io/whatsapp_business/attachments/?mid=1"),
]

@pytest.mark.parametrize(("target", "url"), LOOK_ALIKES)
def test_no_credentials_to_a_look_alike_host_or_over_http(target: str, url: str) -> None:
    _, requests = drive("sync", TARGETS[target], lambda c: c.download_media(MEDIA),
                        [answer(200, {**MEDIA_META, "url": url}), answer(200, b"X")])
    assert str(requests[1].url) == url  # fetched where the API said, not spliced onto another host
    assert not any(secret in value for value in requests[1].headers.values() for secret in ("meta-token", "d360-key"))


@pytest.mark.parametrize(("target", "url"), [
    *LOOK_ALIKES, ("meta", "https://lookaside.fbsbx.com@attacker.example/whatsapp_business/attachments/?mid=1")])
def test_download_url_gives_no_credentials_to_a_look_alike_host(target: str, url: str) -> None:
    """The sans-I/O decision itself (another driver than httpx would send what it returns)."""
    assert TARGETS[target].download_url(url) == (url, {})


def test_userinfo_in_a_media_url_does_not_carry_the_token() -> None:
    url = "https://lookaside.fbsbx.com@attacker.example/whatsapp_business/attachments/?mid=1"
    _, requests = drive("sync", META, lambda c: c.download_media(MEDIA),
                        [answer(200, {**MEDIA_META, "url": url}), answer(200, b"X")])
    assert requests[1].url.host == "attacker.example"
    # httpx turns the userinfo into Basic auth, which replaces the Bearer header download_url asked for
    assert "meta-token" not in requests[1].headers.get("authorization", "")


def test_a_failed_download_raises_the_api_error() -> None:
    gone = {"error": {"message": "(#100) Invalid parameter", "type": "OAuthException", "code": 100,
                      "error_data": {"messaging_product": "whatsapp", "details": "URL expired"}}}
    with pytest.raises(NotFoundError) as excinfo:
        drive("sync", META, lambda c: c.download_media(MEDIA), [answer(200, MEDIA_META), answer(404, gone)])
    assert (excinfo.value.code, excinfo.value.http_status, excinfo.value.details) == (100, 404, "URL expired")


# --- what a target does not have ------------------------------------------------------------------------

NO_META = {
    "webhook": lambda c: c.webhook(),
    "set_webhook": lambda c: c.set_webhook("https://a.example"),
    "waba_webhook": lambda c: c.waba_webhook(),
    "set_waba_webhook": lambda c: c.set_waba_webhook("https://a.example"),
    "multi_webhook": lambda c: c.multi_webhook(),
    "enable_multi_webhook": lambda c: c.enable_multi_webhook(),
    "disable_multi_webhook": lambda c: c.disable_multi_webhook(),
    "add_webhook_destinations": lambda c: c.add_webhook_destinations([DESTINATION]),
    "update_webhook_destination": lambda c: c.update_webhook_destination("crm", url="https://b.example"),
    "remove_webhook_destination": lambda c: c.remove_webhook_destination("crm"),
    "deliveries": lambda c: c.deliveries(),
    "delivery": lambda c: c.delivery(1),
    "replay_delivery": lambda c: c.replay_delivery(1),
    "replay_deliveries": lambda c: c.replay_deliveries(),
    "notices": lambda c: c.notices(),
    "sandbox_users": lambda c: c.sandbox_users(),
    "user_says": lambda c: c.user_says(TO, "hi"),
    "user_sends_file": lambda c: c.user_sends_file(TO, b"x", "image/jpeg"),
    "user_phone": lambda c: c.user_phone(TO),
    "clock": lambda c: c.clock(),
    "advance_clock": lambda c: c.advance_clock(1),
}


@FLAVOURS
@pytest.mark.parametrize("operation", list(NO_META))
def test_meta_has_no_360dialog_configuration_endpoints(operation: str, flavour: str) -> None:
    with pytest.raises(UnsupportedError) as excinfo:
        drive(flavour, META, NO_META[operation], [])
    assert "Meta Cloud API has no" in str(excinfo.value)
    assert excinfo.value.retryable is False


@pytest.mark.parametrize("operation", ["templates", "create_template", "delete_template"])
def test_meta_templates_need_the_waba_id(operation: str) -> None:
    calls = {"templates": lambda c: c.templates(), "delete_template": lambda c: c.delete_template("x"),
             "create_template": lambda c: c.create_template("x", "en_US", "utility", COMPONENTS)}
    with pytest.raises(UnsupportedError, match="waba_id"):
        drive("sync", Target.meta("meta-token", PNID), calls[operation], [])


def test_partner_key_and_number_key_do_not_mix() -> None:
    with pytest.raises(UnsupportedError, match="partner key"):
        drive("sync", PARTNER, lambda c: c.send(TEXT), [])
    for target in (D360, META, GATEWAY):
        with pytest.raises(UnsupportedError, match="Partner API"):
            drive("sync", target, lambda c: c.channels(), [])


def test_class_constructors_build_their_targets() -> None:
    assert Client.d360("k").target == Target.d360("k")
    assert Client.openwaba("k", "http://gw.example:8080/").target == Target.openwaba("k", "http://gw.example:8080")
    meta = Client.meta("t", PNID, WABA, version="v24.0", base_url="https://graph.example/")
    assert meta.target == Target.meta("t", PNID, WABA, "v24.0", "https://graph.example")
    assert meta.target.url("messages") == f"https://graph.example/v24.0/{PNID}/messages"
    assert AsyncClient.d360("k").target.url("media_item", media_id="1 2") == V2 + "/1%202"


# --- transport failures --------------------------------------------------------------------------------


@FLAVOURS
@pytest.mark.parametrize("failure", [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"),
                                     httpx.RemoteProtocolError("peer closed")])
def test_no_answer_is_a_transport_error(failure: Exception, flavour: str) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise failure

    with pytest.raises(TransportError) as excinfo:
        if flavour == "sync":
            Client(D360, http=httpx.Client(transport=httpx.MockTransport(fail))).send(TEXT)
        else:
            client = AsyncClient(D360, http=httpx.AsyncClient(transport=httpx.MockTransport(fail)))
            asyncio.run(client.send(TEXT))
    assert excinfo.value.retryable is True
    assert excinfo.value.__cause__ is failure
    assert str(excinfo.value).startswith(f"POST {V2}/messages got no answer: ")


def test_an_undecodable_answer_is_a_client_error() -> None:
    broken = httpx.Response(200, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
                            stream=httpx.ByteStream(b"not gzip at all"))  # decoded when the client reads it
    with pytest.raises(ClientError):
        drive("sync", D360, lambda c: c.send(TEXT), [broken])


@pytest.mark.parametrize("body", [b"<html><body>Sign in to the Wi-Fi</body></html>", b"", b'{"ok": true}'])
def test_an_unexpected_success_body_is_a_client_error(body: bytes) -> None:
    with pytest.raises(ClientError):
        drive("sync", D360, lambda c: c.send(TEXT), [answer(200, body)])


# --- error answers --------------------------------------------------------------------------------------


def graph_error(code: int, message: str, details: str | None = None, **extra: Any) -> dict[str, Any]:
    error: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code, **extra,
                             "fbtrace_id": "Az8or2yhqkZfEZ-_4Qn_Bam"}
    if details is not None:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    return {"error": error}


NGINX_502 = (b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1>"
             b"</center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")


@dataclass
class ErrorCase:
    status: int
    body: Any  # JSON value or raw bytes
    cls: type[ApiError]
    code: int | None
    title: str
    details: str
    retryable: bool
    target: str = "meta"


ERRORS: dict[str, ErrorCase] = {
    "130429-throughput": ErrorCase(
        400, graph_error(130429, "(#130429) Rate limit hit", "Cloud API message throughput has been reached.",
                         error_subcode=2494055),
        RateLimitError, 130429, "Rate limit hit", "Cloud API message throughput has been reached.", True),
    "131056-pair-rate": ErrorCase(
        400, graph_error(131056, "(#131056) (Business Account, Consumer Account) pair rate limit hit",
                         "Message failed to send because there were too many messages sent from this phone number "
                         "to the same phone number in a short period of time."),
        RateLimitError, 131056, "(Business Account, Consumer Account) pair rate limit hit",
        "Message failed to send because there were too many messages sent from this phone number to the same "
        "phone number in a short period of time.", True),
    "4-too-many-calls-429": ErrorCase(429, graph_error(4, "(#4) Application request limit reached"),
                                      RateLimitError, 4, "Application request limit reached", "", True),
    "131047-window": ErrorCase(
        400, graph_error(131047, "(#131047) Re-engagement message",
                         "Message failed to send because more than 24 hours have passed since the customer last "
                         "replied to this number."),
        ReengagementError, 131047, "Re-engagement message",
        "Message failed to send because more than 24 hours have passed since the customer last replied to this "
        "number.", False),
    "132000-param-count": ErrorCase(
        400, graph_error(132000, "(#132000) Number of parameters does not match the expected number of params",
                         "body: number of localizable_params (1) does not match the expected number of params (2)"),
        TemplateError, 132000, "Number of parameters does not match the expected number of params",
        "body: number of localizable_params (1) does not match the expected number of params (2)", False),
    "132001-no-template-404": ErrorCase(
        404, graph_error(132001, "(#132001) Template name does not exist in the translation",
                         "template name (order_update) does not exist in en_US"),
        TemplateError, 132001, "Template name does not exist in the translation",
        "template name (order_update) does not exist in en_US", False),
    "131026-undeliverable": ErrorCase(400, graph_error(131026, "(#131026) Message Undeliverable", "Not on WhatsApp"),
                                      UndeliverableError, 131026, "Message Undeliverable", "Not on WhatsApp", False),
    "131053-media": ErrorCase(400, graph_error(131053, "(#131053) Media upload error", "Unsupported MIME type"),
                              MediaError, 131053, "Media upload error", "Unsupported MIME type", False),
    "190-token-expired": ErrorCase(
        401, graph_error(190, "Error validating access token: Session has expired on Friday, 12-Jun-26.",
                         error_subcode=463),
        AuthenticationError, 190, "Error validating access token: Session has expired on Friday, 12-Jun-26.", "",
        False),
    "10-permission": ErrorCase(403, graph_error(10, "(#10) Application does not have permission for this action"),
                               PermissionDeniedError, 10, "Application does not have permission for this action", "",
                               False),
    "100-unknown-object-404": ErrorCase(
        404, graph_error(100, "(#100) Invalid parameter", "Media 1013859600285441 does not exist"),
        NotFoundError, 100, "Invalid parameter", "Media 1013859600285441 does not exist", False),
    "100-invalid-parameter-400": ErrorCase(
        400, graph_error(100, "(#100) Invalid parameter", "Unexpected key 'foo'"),
        InvalidRequestError, 100, "Invalid parameter", "Unexpected key 'foo'", False),
    "131008-missing": ErrorCase(400, graph_error(131008, "(#131008) Required parameter is missing",
                                                 "Required parameter 'text.body' is missing"),
                                InvalidRequestError, 131008, "Required parameter is missing",
                                "Required parameter 'text.body' is missing", False),
    "131009-invalid": ErrorCase(
        400, graph_error(131009, "(#131009) Parameter value is not valid",
                         "Invalid buttons count. Min allowed buttons: 1, Max allowed buttons: 3"),
        InvalidRequestError, 131009, "Parameter value is not valid",
        "Invalid buttons count. Min allowed buttons: 1, Max allowed buttons: 3", False),
    "131000-500": ErrorCase(500, graph_error(131000, "(#131000) Something went wrong", "Something went wrong"),
                            ServerError, 131000, "Something went wrong", "Something went wrong", True),
    "131016-503": ErrorCase(503, graph_error(131016, "(#131016) Service unavailable"), ServerError, 131016,
                            "Service unavailable", "", True),
    "unknown-code-400": ErrorCase(400, graph_error(133010, "(#133010) Phone number Not Registered"),
                                  InvalidRequestError, 133010, "Phone number Not Registered", "", False),
    "mm-lite-detail-wrapper": ErrorCase(
        400, {"detail": graph_error(131055, "(#131055) Method not allowed",
                                    "Only marketing template messages are supported")},
        InvalidRequestError, 131055, "Method not allowed", "Only marketing template messages are supported", False,
        "d360"),
    "on-premise-470": ErrorCase(
        400, {"errors": [{"code": 470, "title": "Message failed to send because more than 24 hours have passed since "
                                                "the customer last replied to this number",
                          "details": "Use a template", "href": "https://developers.facebook.com/docs/whatsapp"}],
              "meta": {"api_status": "stable", "version": "2.31.5"}},
        ReengagementError, 470, "Message failed to send because more than 24 hours have passed since the customer "
                                "last replied to this number", "Use a template", False, "sandbox"),
    "on-premise-1006-404": ErrorCase(
        404, {"errors": [{"code": 1006, "title": "Resource not found", "details": "unknown contact"}], "meta": {}},
        NotFoundError, 1006, "Resource not found", "unknown contact", False, "sandbox"),
    "d360-flat-401": ErrorCase(401, {"error": "Invalid API key"}, AuthenticationError, None, "Invalid API key", "",
                               False, "d360"),
    "d360-flat-400": ErrorCase(400, {"error": "Invalid request"}, InvalidRequestError, None, "Invalid request", "",
                               False, "d360"),
    "d360-flat-409": ErrorCase(409, {"error": "Multi-webhook is already enabled"}, ConflictError, None,
                               "Multi-webhook is already enabled", "", False, "d360"),
    "d360-flat-403": ErrorCase(403, {"error": "The endpoint is blocked"}, PermissionDeniedError, None,
                               "The endpoint is blocked", "", False, "d360"),
    "partner-meta-403": ErrorCase(
        403, {"meta": {"success": False, "http_code": 403, "developer_message": "Permission denied for partner x",
                       "details": []}},
        PermissionDeniedError, None, "Permission denied for partner x", "", False, "partner"),
    "partner-meta-401": ErrorCase(
        401, {"meta": {"success": False, "http_code": 401, "developer_message": "Invalid or missing X-API-Key",
                       "details": []}},
        AuthenticationError, None, "Invalid or missing X-API-Key", "", False, "partner"),
    "proxy-html-502": ErrorCase(502, NGINX_502, ServerError, None, NGINX_502.decode().strip(), "", True, "d360"),
    "proxy-429-text": ErrorCase(429, b"Too Many Requests", RateLimitError, None, "Too Many Requests", "", True,
                                "d360"),
    "json-but-no-envelope-418": ErrorCase(418, {"teapot": True}, InvalidRequestError, None, "HTTP 418", "", False,
                                          "d360"),
}


def failing_call(target: str) -> Callable[[Any], Any]:
    return (lambda c: c.wabas()) if target == "partner" else (lambda c: c.send(TEXT))


@FLAVOURS
@pytest.mark.parametrize("case", list(ERRORS))
def test_error_answer(case: str, flavour: str) -> None:
    spec = ERRORS[case]
    with pytest.raises(ApiError) as excinfo:
        drive(flavour, TARGETS[spec.target], failing_call(spec.target), [answer(spec.status, spec.body)])
    error = excinfo.value
    assert type(error) is spec.cls
    assert (error.http_status, error.code, error.title, error.details) == (spec.status, spec.code, spec.title,
                                                                            spec.details)
    assert error.retryable is spec.retryable
    assert error.body == (None if isinstance(spec.body, bytes) else spec.body)
    prefix = f"(#{spec.code}) " if spec.code is not None else f"HTTP {spec.status}: "
    suffix = f": {spec.details}" if spec.details and spec.details != spec.title else ""
    assert str(error) == prefix + spec.title + suffix


@pytest.mark.parametrize(("code", "status", "cls"), [
    (0, 401, AuthenticationError), (190, 401, AuthenticationError),
    (3, 500, PermissionDeniedError), (10, 403, PermissionDeniedError), (200, 403, PermissionDeniedError),
    (368, 403, PermissionDeniedError), (131005, 403, PermissionDeniedError), (131031, 403, PermissionDeniedError),
    (130497, 400, PermissionDeniedError), (131030, 400, PermissionDeniedError),
    (33, 400, InvalidRequestError), (100, 400, InvalidRequestError), (100, 404, NotFoundError),
    (131008, 400, InvalidRequestError), (131009, 400, InvalidRequestError), (131021, 400, InvalidRequestError),
    (131051, 400, InvalidRequestError), (135000, 400, InvalidRequestError),
    (4, 429, RateLimitError), (4, 400, RateLimitError), (80007, 400, RateLimitError),
    (130429, 400, RateLimitError), (131056, 400, RateLimitError), (131048, 400, RateLimitError),
    (131047, 400, ReengagementError), (470, 400, ReengagementError),
    (131026, 400, UndeliverableError), (130403, 400, UndeliverableError), (130472, 400, UndeliverableError),
    (131049, 400, UndeliverableError), (131050, 400, UndeliverableError),
    (132000, 400, TemplateError), (132001, 404, TemplateError), (132005, 400, TemplateError),
    (132007, 400, TemplateError), (132012, 400, TemplateError), (132015, 400, TemplateError),
    (132016, 400, TemplateError), (132018, 400, TemplateError), (132068, 400, TemplateError),
    (132069, 400, TemplateError),
    (131052, 400, MediaError), (131053, 400, MediaError),
    (1, 400, ServerError), (2, 503, ServerError), (131000, 500, ServerError), (131016, 503, ServerError),
    (131057, 500, ServerError),
    (None, 401, AuthenticationError), (None, 403, PermissionDeniedError), (None, 404, NotFoundError),
    (None, 409, ConflictError), (None, 429, RateLimitError), (None, 400, InvalidRequestError),
    (None, 422, InvalidRequestError), (None, 500, ServerError), (None, 503, ServerError),
    (999999, 400, InvalidRequestError), (999999, 502, ServerError),
])
def test_error_class_by_code_then_status(code: int | None, status: int, cls: type[ApiError]) -> None:
    assert error_class(code, status) is cls


def test_webhook_status_errors_can_be_classified_without_a_status() -> None:
    """`statuses[].errors[].code` of a webhook has no HTTP status: the default is a 400."""
    assert error_class(131047) is ReengagementError
    assert error_class(131026) is UndeliverableError
    assert error_class(132018) is TemplateError
    assert error_class(None) is InvalidRequestError


@pytest.mark.parametrize("content", [b"[" * 100_000 + b"]" * 100_000, b'{"error": {"code": 1e999}}',
                                     b'{"error": {"code": Infinity, "message": "x"}}',
                                     b'{"errors": [{"code": -Infinity, "title": "x"}]}'])
def test_hostile_error_bodies_still_give_an_api_error(content: bytes) -> None:
    error = error_from_response(502, content)
    assert isinstance(error, ServerError) and error.code is None


def test_an_empty_error_body_has_the_status_as_title() -> None:
    error = error_from_response(503, b"")
    assert (type(error), error.code, error.title) == (ServerError, None, "HTTP 503")


def test_partner_error_details_list_is_readable() -> None:
    body = {"meta": {"success": False, "http_code": 400, "developer_message": "Invalid request",
                     "details": ["'waba_id' is required", "'phone_number' is required"]}}
    error = error_from_response(400, json.dumps(body).encode())
    assert error.details == "'waba_id' is required; 'phone_number' is required"


# --- error_from_response never fails ------------------------------------------------------------------

STATUSES = st.integers(min_value=400, max_value=599)
JSON_LEAVES = st.none() | st.booleans() | st.integers() | st.floats(allow_infinity=False) | st.text(max_size=20)
JSON = st.recursive(JSON_LEAVES, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                               max_size=4),
                    max_leaves=20)


def _check(status: int, content: bytes) -> None:
    error = error_from_response(status, content)
    assert isinstance(error, ApiError)
    assert error.http_status == status
    assert isinstance(error.title, str) and isinstance(error.details, str)
    assert error.code is None or isinstance(error.code, int)
    assert error.retryable is (error_class(error.code, status).retryable)
    str(error)


@settings(max_examples=300, deadline=None)
@given(status=STATUSES, content=st.binary(max_size=300))
def test_any_bytes_give_an_api_error(status: int, content: bytes) -> None:
    _check(status, content)


@settings(max_examples=300, deadline=None)
@given(status=STATUSES, code=JSON, message=JSON, details=JSON, title=JSON, shape=st.sampled_from(
    ["graph", "mm-lite", "on-premise", "flat", "partner", "other"]))
def test_any_envelope_gives_an_api_error(status: int, code: Any, message: Any, details: Any, title: Any,
                                         shape: str) -> None:
    graph = {"error": {"message": message, "code": code, "error_data": {"details": details}}}
    document = {
        "graph": graph,
        "mm-lite": {"detail": graph},
        "on-premise": {"errors": [{"code": code, "title": title, "details": details}]},
        "flat": {"error": message},
        "partner": {"meta": {"success": False, "developer_message": message, "details": details}},
        "other": {"x": [code, message, details]},
    }[shape]
    _check(status, json.dumps(document).encode())

"""The OpenAPI document (`src/openwaba/openapi.json`, served at `GET /openapi.json`) is
the contract of openwaba's 360dialog dialect. These tests keep it honest:

* the served document is a valid OpenAPI 3.1 document whose `$ref`s all resolve;
* every route of the app is documented, and every documented operation is a route;
* deliberate flows reach the answers generated input rarely reaches (signed download
  URLs, a template after its review, multi-webhook conflicts, an On-Premise number's
  webhooks ...): each answer has a documented status, content type and body, and every
  webhook body conforms to the document's `webhooks`;
* schemathesis, loading the document from the live server, sends generated requests to
  every operation (examples, coverage, fuzzing and stateful phases) and checks that no
  answer is a 5xx, that every status code, content type, header and body is the one
  the document promises, and that every operation enforces its authentication.

The schemathesis run is bounded: a fixed number of examples per operation, a fixed seed
(CONTRACT_TEST_EXAMPLES and CONTRACT_TEST_SEED override them), a subprocess timeout.
Operations that would lock the run out are excluded: creating an API key revokes the
key every other request carries.

Webhook URLs are the one way generated input could make the server reach out: a
`before_call` hook (this module, loaded by schemathesis through SCHEMATHESIS_HOOKS)
replaces every URL the server would accept with the test's own loopback receiver,
and the test checks afterwards that no other URL was ever stored.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from .support import ALICE, API_KEY, KEY_HEADER, Receiver, Server, ServerFactory, http

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
PARTNER_KEY = "e2e-contract-partner-key-5d1e"
SERVER_ENV: dict[str, str | None] = {
    "OPENWABA_SANDBOX_API_KEY": API_KEY,
    "OPENWABA_CLOCK": "manual",
    "OPENWABA_RETRY_JITTER": "0",
    "OPENWABA_WEBHOOK_TIMEOUT": "5",
    "OPENWABA_RATE_LIMITS": "false",  # generated traffic is not a client to throttle
    "OPENWABA_PARTNER_API_KEY": PARTNER_KEY,
}

# Creating an API key revokes the key every other request of the run carries.
EXCLUDED_OPERATIONS = ("createApiKey", "consoleStream")  # the stream stays open until the client leaves
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    "ignored_auth",
)
MAX_EXAMPLES = int(os.environ.get("CONTRACT_TEST_EXAMPLES", "25"))
SEED = os.environ.get("CONTRACT_TEST_SEED", "20240611")
RUN_TIMEOUT = 420.0  # seconds: a hung run fails instead of eating CI's budget

# --- the schemathesis hook (runs inside the `schemathesis run` process) ---------------------------

RECEIVER_ENV = "E2E_CONTRACT_RECEIVER_URL"
WEBHOOK_OPERATIONS = {
    ("POST", "/v1/configs/webhook"),
    ("POST", "/waba_webhook"),
    ("POST", "/multi_webhook"),
    ("PUT", "/multi_webhook"),
    ("PATCH", "/multi_webhook"),
}
CLOCK_STEP_MAX = 315_360_000  # ten years: the document's `advance_seconds` maximum


def _acceptable_url(value: object) -> bool:
    """Whether openwaba would accept `value` as a sandbox webhook URL (mirrors check_webhook_url)."""
    if not isinstance(value, str):
        return False
    try:
        parts = urlsplit(value.strip())
        _ = parts.port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def localise_webhook_urls(method: str, path: str, body: Any, receiver: str) -> None:
    """Point every URL the server would accept at `receiver` (in place)."""
    if (method.upper(), path) not in WEBHOOK_OPERATIONS or not isinstance(body, dict):
        return
    if _acceptable_url(body.get("url")):
        body["url"] = receiver
    destinations = body.get("destinations")
    if isinstance(destinations, list):
        for destination in destinations:
            if isinstance(destination, dict) and _acceptable_url(destination.get("url")):
                destination["url"] = receiver


def bound_clock_step(method: str, path: str, body: Any) -> None:
    """Keep the manual clock finite whatever the server does with an oversized step: a clock at
    infinity would fail every later request for reasons of its own. Whether the server refuses such
    a step is test_clock_step_maximum_is_enforced's business."""
    if (method.upper(), path) != ("POST", "/sandbox/clock") or not isinstance(body, dict):
        return
    step = body.get("advance_seconds")
    if isinstance(step, int | float) and not isinstance(step, bool) and step > CLOCK_STEP_MAX:
        body["advance_seconds"] = CLOCK_STEP_MAX


# Injectable codes that WhatsApp answers with a 5xx: a generated scenario holding one would make every later
# send answer 5xx on purpose, which the run's "not a server error" check cannot tell from a bug.
SERVER_ERROR_CODES = frozenset({131000, 131016, 131057})


def keep_injected_failures_client_side(method: str, path: str, body: Any) -> None:
    if method.upper() != "PUT" or not path.endswith("/scenario") or not isinstance(body, dict):
        return
    fail = body.get("fail")
    if isinstance(fail, dict) and isinstance(fail.get("code"), int) and fail["code"] in SERVER_ERROR_CODES:
        fail["code"] = 131026


if os.environ.get(RECEIVER_ENV):  # imported by `schemathesis run` through SCHEMATHESIS_HOOKS
    import schemathesis

    @schemathesis.hook
    def before_call(context: Any, case: Any, kwargs: Any) -> None:
        method, path = case.operation.method, case.operation.path
        localise_webhook_urls(method, path, case.body, os.environ[RECEIVER_ENV])
        bound_clock_step(method, path, case.body)
        keep_injected_failures_client_side(method, path, case.body)


# --- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def contract_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    factory = ServerFactory(tmp_path_factory.mktemp("contract"), SERVER_ENV)
    try:
        yield factory()
    finally:
        factory.close()


def document() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((REPO / "src" / "openwaba" / "openapi.json").read_text())
    return loaded


def _operations(doc: dict[str, Any]) -> set[tuple[str, str]]:
    methods = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
    return {(method.upper(), path) for path, item in doc["paths"].items() for method in item if method in methods}


def _resolve(doc: dict[str, Any], pointer: str) -> Any:
    assert pointer.startswith("#/"), f"only local $refs are used: {pointer}"
    node: Any = doc
    for part in pointer[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


# --- the document ---------------------------------------------------------------------------------


def test_served_document_is_valid_openapi_31(contract_server: Server) -> None:
    import schemathesis

    reply = http("GET", contract_server.url + "/openapi.json")
    assert reply.status == 200
    assert reply.headers["content-type"].startswith("application/json")
    served = reply.json()
    assert served == document(), "GET /openapi.json must serve src/openwaba/openapi.json"
    assert served["openapi"].startswith("3.1.")
    schemathesis.openapi.from_dict(served).validate()  # the OpenAPI 3.1 meta-schema
    unresolved = sorted({r for r in _refs(served) if _try_resolve(served, r) is None})
    assert not unresolved, f"$refs that resolve to nothing: {unresolved}"
    for path, item in served["paths"].items():
        for method, operation in item.items():
            assert operation.get("responses"), f"{method.upper()} {path} documents no response"
            assert "security" in operation, f"{method.upper()} {path} does not say how it is authenticated"


def _try_resolve(doc: dict[str, Any], pointer: str) -> Any:
    try:
        return _resolve(doc, pointer)
    except (KeyError, AssertionError):
        return None


def test_every_route_is_documented(tmp_path: Path) -> None:
    from starlette.routing import Route

    from openwaba.config import Settings
    from openwaba.http.app import create_app

    app = create_app(Settings(data_dir=tmp_path / "data"))
    served: set[tuple[str, str]] = set()
    for route in app.routes:
        assert isinstance(route, Route), f"unexpected route type {route!r}"
        path = route.path_format  # `/{media_id:digits}` -> `/{media_id}`
        served |= {(method, path) for method in route.methods or () if method != "HEAD"}
    documented = _operations(document())
    assert not served - documented, f"routes missing from openapi.json: {sorted(served - documented)}"
    assert not documented - served, f"documented operations the app does not serve: {sorted(documented - served)}"


# --- every kind of answer, on purpose ------------------------------------------------------------
#
# Generated requests rarely reach some answers (a signed download URL, a template after its
# review, a 409 of the multi-webhook, ...). These flows reach them deliberately; every answer
# must have a documented status code and content type and a body that conforms.

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


class Contract:
    """Calls the live server and checks each answer against the document."""

    def __init__(self, srv: Server) -> None:
        import requests
        import schemathesis

        self.srv = srv
        self.doc = document()
        self.schema = schemathesis.openapi.from_dict(self.doc)
        self.session = requests.Session()

    def __call__(self, method: str, template: str, expect: int, *, key: str | None = API_KEY,
                 partner_key: str | None = None, path: dict[str, str] | None = None, **kwargs: Any) -> Any:
        from urllib.parse import quote

        url = self.srv.url + template.format(**{k: quote(v, safe="") for k, v in (path or {}).items()})
        headers = dict(kwargs.pop("headers", {}))
        if key is not None:
            headers[KEY_HEADER] = key
        if partner_key is not None:
            headers["X-API-Key"] = partner_key
        response = self.session.request(method, url, headers=headers, timeout=10, **kwargs)
        where = f"{method} {url} -> {response.status_code} {response.text[:400]!r}"
        assert response.status_code == expect, where
        documented = self.doc["paths"][template][method.lower()]["responses"]
        assert str(expect) in documented, f"undocumented status: {where}"
        content = _resolve_response(self.doc, documented[str(expect)]).get("content", {})
        media_type = response.headers.get("content-type", "").split(";")[0].strip()
        assert any(_media_match(t, media_type) for t in content), f"undocumented content type {media_type}: {where}"
        self.schema[template][method.upper()].validate_response(response)
        return response


def _resolve_response(doc: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    return _resolve(doc, response["$ref"]) if "$ref" in response else response


def _media_match(documented: str, actual: str) -> bool:
    kind, _, sub = documented.partition("/")
    a_kind, _, a_sub = actual.partition("/")
    return kind in ("*", a_kind) and sub in ("*", a_sub)


def test_every_kind_of_answer_conforms(contract_server: Server) -> None:
    from urllib.parse import parse_qsl

    api = Contract(contract_server)
    receiver = Receiver()
    receiver.start()
    try:
        # authentication, on every face
        api("GET", "/phone_number", 401, key=None)
        api("POST", "/messages", 401, key="wrong", json={})
        api("GET", "/v1/health", 401, key="wrong")
        api("GET", "/api/v2/partners/{partner_id}/wabas", 401, key=None, path={"partner_id": "openwaba"})
        api("GET", "/api/v2/partners/{partner_id}/wabas", 403, key=None, partner_key=PARTNER_KEY,
            path={"partner_id": "someone-else"})
        api("GET", "/phone_number", 200)
        api("GET", "/v1/configs/phone_number", 200)
        api("GET", "/health_status", 200)
        api("GET", "/v1/health", 200)

        # webhooks
        api("POST", "/v1/configs/webhook", 200, json={"url": receiver.url, "headers": {"X-Token": "t"}})
        api("GET", "/v1/configs/webhook", 200)
        api("POST", "/v1/configs/webhook", 400, json={"url": 5})
        api("POST", "/waba_webhook", 200, json={"url": receiver.url, "override_all": False})
        api("GET", "/waba_webhook", 200)
        api("POST", "/multi_webhook", 200, json={"enabled": True, "fanout": "independent",
                                                 "destinations": [{"name": "crm", "url": receiver.url}]})
        api("POST", "/multi_webhook", 409, json={"enabled": True, "destinations": [{"name": "x", "url": receiver.url}]})
        api("PUT", "/multi_webhook", 200, json={"destinations": [{"name": "bi", "url": receiver.url}]})
        api("PUT", "/multi_webhook", 409, json={"destinations": [{"name": "bi", "url": receiver.url}]})
        api("PATCH", "/multi_webhook", 200, json={"name": "bi", "headers": {"X-Bi": "1"}, "fifo": True})
        api("PATCH", "/multi_webhook", 404, json={"name": "nobody", "url": receiver.url})
        api("GET", "/multi_webhook", 200)
        api("DELETE", "/multi_webhook/{dest_name}", 200, path={"dest_name": "bi"})
        api("DELETE", "/multi_webhook/{dest_name}", 404, path={"dest_name": "bi"})
        api("POST", "/multi_webhook", 200, json={"enabled": False})
        api("DELETE", "/multi_webhook/{dest_name}", 409, path={"dest_name": "crm"})

        # messages, read receipts, the simulated user
        said = api("POST", "/sandbox/users/{wa_id}/messages", 200, path={"wa_id": ALICE},
                   json={"text": "hi", "context": {"message_id": "wamid.x"}}).json()["messages"][0]["id"]
        api("POST", "/sandbox/users/{wa_id}/messages", 404, path={"wa_id": "15559990001"}, json={"text": "hi"})
        api("POST", "/sandbox/users/{wa_id}/messages", 400, path={"wa_id": ALICE}, json={"text": ""})
        api("POST", "/sandbox/users/{wa_id}/messages", 200, path={"wa_id": ALICE},
            files={"file": ("note.txt", b"a note", "text/plain")}, data={"caption": "see"})
        api("POST", "/messages", 200, json={"messaging_product": "whatsapp", "status": "read", "message_id": said,
                                            "typing_indicator": {"type": "text"}})
        api("GET", "/sandbox/users/{wa_id}/messages", 200, path={"wa_id": ALICE})
        api("PUT", "/v1/messages/{message_id}", 200, path={"message_id": said}, json={"status": "read"})
        api("PUT", "/v1/messages/{message_id}", 400, path={"message_id": "wamid.unknown"}, json={"status": "read"})
        api("POST", "/v1/messages", 200, json={"status": "read", "message_id": said})
        api("POST", "/messages", 200, json={"messaging_product": "whatsapp", "to": ALICE, "type": "text",
                                            "text": {"body": "hello"}, "biz_opaque_callback_data": "c"})
        api("POST", "/messages", 200, json={"messaging_product": "whatsapp", "to": ALICE, "type": "template",
                                            "template": {"name": "hello_world", "language": {"code": "en_US"}}})
        api("POST", "/messages", 404, json={"messaging_product": "whatsapp", "to": ALICE, "type": "template",
                                            "template": {"name": "no_such", "language": {"code": "en_US"}}})
        api("POST", "/messages", 400, data=b"{not json")
        api("POST", "/messages", 400, json={"messaging_product": "whatsapp", "to": ALICE, "type": "sms"})
        api("POST", "/v1/messages", 201, json={"to": ALICE, "preview_url": False, "text": {"body": "hello"}})
        api("POST", "/v1/messages", 400, json={"to": ALICE, "type": "image", "image": {}})
        api("POST", "/v1/messages", 404, json={"to": ALICE, "type": "template",
                                               "template": {"name": "no_such", "language": {"code": "en"}}})
        api("POST", "/v1/contacts", 200, json={"blocking": "wait", "contacts": ["+1 555 123 0001", "12"]})
        api("POST", "/v1/contacts", 400, json={"contacts": []})

        # media on both faces
        media_id = api("POST", "/media", 200, data={"messaging_product": "whatsapp"},
                       files={"file": ("pixel.png", PNG, "image/png")}).json()["id"]
        api("POST", "/media", 400, data={"messaging_product": "whatsapp"},
            files={"file": ("pixel.png", b"not a png", "image/png")})
        meta = api("GET", "/{media_id}", 200, path={"media_id": media_id}).json()
        signed = dict(parse_qsl(urlsplit(meta["url"]).query))
        for method in ("GET", "POST"):
            api(method, "/whatsapp_business/attachments/", 200, params=signed)
        api("GET", "/whatsapp_business/attachments/", 400, params={**signed, "hash": "0" * 10})
        api("GET", "/v1/media/{media_id}", 200, path={"media_id": media_id})
        api("DELETE", "/{media_id}", 200, path={"media_id": media_id})
        api("GET", "/{media_id}", 404, path={"media_id": media_id})
        api("GET", "/whatsapp_business/attachments/", 404, params=signed)
        raw_id = api("POST", "/v1/media", 201, data=b"plain text", headers={"Content-Type": "text/plain"}
                     ).json()["media"][0]["id"]
        api("POST", "/v1/media", 400, data=b"", headers={"Content-Type": "text/plain"})
        api("DELETE", "/v1/media/{media_id}", 200, path={"media_id": raw_id})
        api("GET", "/v1/media/{media_id}", 404, path={"media_id": raw_id})
        api("DELETE", "/v1/media/{media_id}", 404, path={"media_id": raw_id})

        # templates, before and after the review
        created = {"name": "contract_order_update", "language": "en_US", "category": "utility",
                   "components": [{"type": "BODY", "text": "Hi {{1}}, your order {{2}} has shipped.",
                                   "example": {"body_text": [["Ann", "A-17"]]}},
                                  {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Thanks"}]}]}
        assert api("POST", "/v1/configs/templates", 201, json=created).json()["status"] == "pending"
        api("POST", "/v1/configs/templates", 400, json=created)
        api("GET", "/v1/configs/templates", 200, params={"filters": '{"name": "contract_order_update"}'})
        api("GET", "/v1/configs/templates", 400, params={"filters": "[]"})
        api("POST", "/sandbox/clock", 200, json={"advance_seconds": 60})
        api("GET", "/sandbox/clock", 200)
        api("POST", "/sandbox/clock", 400, json={"advance_seconds": -1})
        page = api("GET", "/message_templates", 200, params={"limit": 1}).json()
        api("GET", "/message_templates", 200, params={"after": page["paging"]["cursors"]["after"]})
        api("GET", "/message_templates", 400, params={"after": "%%%"})
        api("DELETE", "/v1/configs/templates/{name}", 200, path={"name": "contract_order_update"})
        api("DELETE", "/v1/configs/templates/{name}", 404, path={"name": "contract_order_update"})

        # the business profile, both faces
        api("POST", "/whatsapp_business_profile", 200, json={"messaging_product": "whatsapp", "about": "Open 9-17",
                                                             "websites": ["https://example.com"]})
        api("POST", "/whatsapp_business_profile", 400, json={"about": "no product"})
        api("GET", "/whatsapp_business_profile", 200, params={"fields": "about,websites"})
        api("POST", "/v1/settings/business/profile", 200, json={"address": "1 Main St", "vertical": "RETAIL"})
        api("POST", "/v1/settings/business/profile", 400, json={"about": "not here"})
        api("GET", "/v1/settings/business/profile", 200)
        api("PATCH", "/v1/settings/profile/about", 200, json={"text": "Closed on Sundays"})
        api("PATCH", "/v1/settings/profile/about", 400, json={})
        api("GET", "/v1/settings/profile/about", 200)

        # deliveries
        contract_server.wait_for_deliveries(lambda rows: any(row["state"] == "delivered" for row in rows))
        listed = api("GET", "/deliveries", 200, params={"limit": 1}).json()
        delivery = str(listed["deliveries"][0]["id"])
        api("GET", "/deliveries", 200, params={"before": listed["paging"]["before"], "state": "delivered"})
        api("GET", "/deliveries", 400, params={"state": "lost"})
        api("GET", "/deliveries/{delivery_id}", 200, path={"delivery_id": delivery})
        api("GET", "/deliveries/{delivery_id}", 404, path={"delivery_id": "999999"})
        api("POST", "/deliveries/{delivery_id}/replay", 200, path={"delivery_id": delivery})
        api("POST", "/deliveries/replay", 200, json={"state": "delivered"})
        api("POST", "/deliveries/replay", 400, json={"state": "pending"})
        api("GET", "/notices", 200)
        api("GET", "/metrics", 200, key=None)
        api("GET", "/openapi.json", 200, key=None)

        # the partner API
        partner = {"key": None, "partner_key": PARTNER_KEY}
        at = {"partner_id": "openwaba"}
        waba = api("POST", "/api/v2/partners/{partner_id}/wabas", 201, path=at, json={"name": "Acme"}, **partner)
        api("POST", "/api/v2/partners/{partner_id}/wabas", 400, path=at, json={"name": " "}, **partner)
        api("GET", "/api/v2/partners/{partner_id}/wabas", 200, path=at, **partner)
        number = {"waba_id": waba.json()["id"], "phone_number": "+1 555 000 7777", "mode": "production"}
        channel = api("POST", "/api/v2/partners/{partner_id}/channels", 201, path=at, json=number, **partner).json()
        api("POST", "/api/v2/partners/{partner_id}/channels", 409, path=at, json=number, **partner)
        api("POST", "/api/v2/partners/{partner_id}/channels", 404, path=at,
            json={**number, "waba_id": "1", "phone_number": "15550007778"}, **partner)
        api("GET", "/api/v2/partners/{partner_id}/channels", 200, path=at, **partner)
        on_channel = {**at, "channel_id": channel["id"]}
        api("PATCH", "/api/v2/partners/{partner_id}/channels/{channel_id}", 200, path=on_channel,
            json={"retry_horizon_seconds": 3600, "throughput": 10, "rate_limits": None}, **partner)
        api("PATCH", "/api/v2/partners/{partner_id}/channels/{channel_id}", 400, path=on_channel,
            json={"colour": "red"}, **partner)
        api("PATCH", "/api/v2/partners/{partner_id}/channels/{channel_id}", 404,
            path={**at, "channel_id": "424242"}, json={"throughput": 10}, **partner)
        api("GET", "/api/v2/partners/{partner_id}/channels/{channel_id}/api_keys", 200, path=on_channel, **partner)
        api("POST", "/api/v2/partners/{partner_id}/channels/{channel_id}/api_keys", 201, path=on_channel, **partner)
        api("POST", "/api/v2/partners/{partner_id}/channels/{channel_id}/api_keys", 404,
            path={**at, "channel_id": "424242"}, **partner)

        # an On-Premise number: its webhooks come in the flat On-Premise format
        legacy = {"waba_id": waba.json()["id"], "phone_number": "+1 555 000 7780", "type": "on_premise"}
        legacy_at = {**at, "channel_id": api("POST", "/api/v2/partners/{partner_id}/channels", 201, path=at,
                                             json=legacy, **partner).json()["id"]}
        legacy_key = api("POST", "/api/v2/partners/{partner_id}/channels/{channel_id}/api_keys", 201,
                         path=legacy_at, **partner).json()["api_key"]
        api("GET", "/waba_webhook", 400, key=legacy_key)
        api("POST", "/v1/configs/webhook", 200, key=legacy_key, json={"url": receiver.url})
        api("POST", "/v1/messages", 201, key=legacy_key, json={"to": "15559990001", "text": {"body": "hi"}})
        receiver.wait_for(lambda got: any(isinstance(r.json, dict) and "statuses" in r.json for r in got),
                          what="an On-Premise status webhook")
        _check_webhook_bodies(api.doc, [r.json for r in receiver.requests])
    finally:
        receiver.stop()


def _check_webhook_bodies(doc: dict[str, Any], bodies: list[Any]) -> None:
    """Every webhook body conforms to the document's `webhooks` (Cloud envelope or On-Premise format)."""
    import jsonschema_rs

    def validator(name: str) -> Any:
        return jsonschema_rs.Draft202012Validator({**doc, "$ref": f"#/components/schemas/{name}"})

    cloud, on_premise = validator("CloudNotification"), validator("OnPremiseNotification")
    kinds = set()
    for body in bodies:
        assert isinstance(body, dict), f"a webhook body is not a JSON object: {body!r}"
        kind = "cloud" if "object" in body else "on_premise"
        kinds.add(kind)
        validator_of_kind = cloud if kind == "cloud" else on_premise
        errors = [f"{e.instance_path}: {e.message}" for e in validator_of_kind.iter_errors(body)]
        assert not errors, f"webhook body does not conform ({kind}): {errors}\n{json.dumps(body)[:2000]}"
    assert kinds == {"cloud", "on_premise"}, f"expected both webhook formats, got {kinds}"


def test_clock_step_maximum_is_enforced(server: ServerFactory) -> None:
    """The document bounds one step of the manual clock; a bigger step would reach infinity."""
    api = Contract(server())
    maximum = api.doc["paths"]["/sandbox/clock"]["post"]["requestBody"]["content"]["application/json"]["schema"][
        "properties"]["advance_seconds"]["maximum"]
    api("POST", "/sandbox/clock", 400, json={"advance_seconds": maximum + 1})
    api("POST", "/sandbox/clock", 400, json={"advance_seconds": 1.7e308})
    before = api("GET", "/sandbox/clock", 200).json()["now"]
    moved = api("POST", "/sandbox/clock", 200, json={"advance_seconds": maximum}).json()["now"]
    assert before + maximum <= moved < before + maximum + 60

# --- the server against the document --------------------------------------------------------------


def test_server_conforms_to_document(contract_server: Server, tmp_path: Path) -> None:
    receiver = Receiver()
    receiver.start()
    try:
        _seed(contract_server, receiver)
        result, elapsed = _run_schemathesis(contract_server, receiver.url, tmp_path)
    finally:
        receiver.stop()
    output = result.stdout + result.stderr
    print(f"schemathesis ran {elapsed:.0f} s")
    assert result.returncode == 0, f"schemathesis found problems:\n{output[-30000:]}\n{contract_server.log_tail(6000)}"
    stored = contract_server.query("SELECT url FROM destinations")
    strays = [row["url"] for row in stored if urlsplit(row["url"]).hostname not in ("127.0.0.1", "localhost")]
    assert not strays, f"webhook URLs other than the loopback receiver were stored: {strays}"


def _seed(srv: Server, receiver: Receiver) -> None:
    """Give the run something to find: a webhook, an inbound message, a send, their deliveries
    (delivery ids start at 1, the document's example)."""
    srv.set_webhook(receiver.url)
    srv.user_says(ALICE, "hello from the contract test")
    srv.send_text(ALICE, "hello back")
    srv.wait_for_deliveries(lambda rows: any(row["state"] == "delivered" for row in rows), what="a delivered webhook")


def _run_schemathesis(
    srv: Server, receiver_url: str, workdir: Path
) -> tuple[subprocess.CompletedProcess[str], float]:
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "run",
        f"{srv.url}/openapi.json",
        "--url", srv.url,
        "--checks", ",".join(CHECKS),
        "--phases", "examples,coverage,fuzzing,stateful",
        "--max-examples", str(MAX_EXAMPLES),
        "--seed", SEED,
        "--workers", "2",
        "--request-timeout", "10",
        "--generation-database", "none",
        "--suppress-health-check", "all",
        "--header", f"{KEY_HEADER}: {API_KEY}",
        "--header", f"X-API-Key: {PARTNER_KEY}",
        "--no-color",
    ]
    for operation_id in EXCLUDED_OPERATIONS:
        command += ["--exclude-operation-id", operation_id]
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "e2e.test_openapi",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "tests"), os.environ.get("PYTHONPATH")])),
        RECEIVER_ENV: receiver_url,
    }
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=workdir, timeout=RUN_TIMEOUT,
                            stdin=subprocess.DEVNULL)
    return result, time.monotonic() - started

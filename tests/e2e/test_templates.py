"""End-to-end: message templates through the real server.

Management on the 360dialog face (`/v1/configs/templates`: create, list with
`filters`/`limit`/`offset`, delete by name) and Meta's `GET /message_templates`
(cursor paging); the sandbox's review (decided `OPENWABA_SANDBOX_TEMPLATE_REVIEW_SECONDS`
after creation, reached by moving the manual clock) and its
`message_template_status_update` webhook; sending templates and every error
WhatsApp answers a template send with (at once, or later in a `failed` status).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from .assets_support import JPEG, assert_graph_error, upload_id
from .conftest import DEFAULT_ENV
from .routing_support import PARTNER_ENV, new_number, partner_ok
from .support import (
    ALICE,
    BRUNO,
    KEY_HEADER,
    Received,
    Receiver,
    Reply,
    Server,
    ServerFactory,
    by_status,
    http,
)

pytestmark = pytest.mark.e2e

REVIEW_SECONDS = 3600
# A review that never decides by itself during a test: only the manual clock moves it.
SLOW_REVIEW: dict[str, str | None] = {"OPENWABA_SANDBOX_TEMPLATE_REVIEW_SECONDS": str(REVIEW_SECONDS)}
TEMPLATE_FIELD = "message_template_status_update"
HELLO_WORLD_BODY = (
    "Welcome and congratulations!! This message demonstrates your ability to send a WhatsApp message "
    "notification from the Cloud API, hosted by Meta. Thank you for taking the time to test with us."
)


# --- building requests ------------------------------------------------------------------


def body(text: str, *examples: str) -> dict[str, Any]:
    component: dict[str, Any] = {"type": "BODY", "text": text}
    if examples:
        component["example"] = {"body_text": [list(examples)]}
    return component


def template(name: str, *components: dict[str, Any], language: str = "en_US",
             category: str = "UTILITY") -> dict[str, Any]:
    return {"name": name, "language": language, "category": category,
            "components": list(components) or [body("Thanks for your order.")]}


def create(srv: Server, document: dict[str, Any]) -> dict[str, Any]:
    reply = srv.call("POST", "/v1/configs/templates", document)
    assert reply.status == 201, f"create {document.get('name')} answered {reply.status}: {reply.body!r}"
    created: dict[str, Any] = reply.json()
    return created


def listing(srv: Server, **query: Any) -> Reply:
    encoded = {k: json.dumps(v) if isinstance(v, dict) else v for k, v in query.items()}
    return srv.call("GET", "/v1/configs/templates" + (f"?{urlencode(encoded)}" if encoded else ""))


def listed(srv: Server, **query: Any) -> dict[str, Any]:
    reply = listing(srv, **query)
    assert reply.status == 200, reply.body
    result: dict[str, Any] = reply.json()
    return result


def statuses(srv: Server) -> dict[tuple[str, str], str]:
    """(name, language) -> status, as the 360dialog list shows them."""
    return {(t["name"], t["language"]): t["status"] for t in listed(srv)["waba_templates"]}


def template_message(to: str, name: str, language: str = "en_US",
                     components: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    content: dict[str, Any] = {"name": name, "language": {"code": language}}
    if components is not None:
        content["components"] = components
    return {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to,
            "type": "template", "template": content}


def texts(*values: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": v} for v in values]


def is_template_update(r: Received) -> bool:
    try:
        return bool(r.json["entry"][0]["changes"][0]["field"] == TEMPLATE_FIELD)
    except (KeyError, IndexError, TypeError):
        return False


def update_for(template_id: str) -> Callable[[Received], bool]:
    return lambda r: is_template_update(r) and str(r.value.get("message_template_id")) == template_id


def waba_id_of(srv: Server) -> str:
    health = srv.ok("GET", "/health_status")
    return str(next(e["id"] for e in health["health_status"]["entities"] if e["entity_type"] == "WABA"))


def wait_for_statuses(receiver: Receiver, wamid: str, wanted: set[str]) -> dict[str, list[Received]]:
    def check(requests: list[Received]) -> dict[str, list[Received]] | None:
        found = by_status(r for r in requests if r.status is not None and r.status["id"] == wamid)
        return found if wanted <= set(found) else None
    return receiver.wait_for(check, what=f"statuses {sorted(wanted)} of {wamid}")


# --- hello_world --------------------------------------------------------------------------


def test_hello_world_exists_and_is_approved_from_the_start(shared_server: Server) -> None:
    result = listed(shared_server, filters={"name": "hello_world"})
    [hello] = result["waba_templates"]
    assert hello["language"] == "en_US"
    assert hello["status"] == "approved"
    assert hello["category"] == "UTILITY"
    assert hello["rejected_reason"] is None
    assert hello["id"].isdigit()
    assert isinstance(hello["namespace"], str) and hello["namespace"]
    assert [c["type"] for c in hello["components"]] == ["HEADER", "BODY", "FOOTER"]
    assert hello["components"][1]["text"] == HELLO_WORLD_BODY

    meta = shared_server.ok("GET", "/message_templates?name=hello_world")
    [same] = meta["data"]
    assert same == {"name": "hello_world", "components": hello["components"], "language": "en_US",
                    "status": "APPROVED", "category": "UTILITY", "id": hello["id"]}


def test_hello_world_can_be_sent_at_once(server: ServerFactory, receiver: Receiver) -> None:
    srv = server()
    srv.set_webhook(receiver.url)
    srv.advance_clock(25 * 3600)  # past the 24-hour window of anything the simulated users wrote
    text = srv.send_text(BRUNO, "free-form outside the window")
    [failed] = wait_for_statuses(receiver, text, {"failed"})["failed"]
    assert failed.status is not None and failed.status["errors"][0]["code"] == 131047

    reply = srv.call("POST", "/messages", template_message(BRUNO, "hello_world"))  # a template always goes
    assert reply.status == 200, reply.body
    assert reply.json()["contacts"] == [{"input": BRUNO, "wa_id": BRUNO}]
    wamid = reply.json()["messages"][0]["id"]
    got = wait_for_statuses(receiver, wamid, {"sent", "delivered", "read"})
    assert "failed" not in got
    [shown] = [m for m in srv.ok("GET", f"/sandbox/users/{BRUNO}/messages")["messages"] if m["id"] == wamid]
    assert shown["type"] == "template" and shown["template"]["name"] == "hello_world"
    assert shown["text"] == HELLO_WORLD_BODY  # the phone shows the template as the user reads it


def test_hello_world_exists_before_anything_lists_it(server: ServerFactory) -> None:
    srv = server()
    duplicate = srv.call("POST", "/v1/configs/templates", template("hello_world"))
    assert_graph_error(duplicate, 100, 400)
    assert srv.call("DELETE", "/v1/configs/templates/hello_world").status == 200


def test_a_deleted_hello_world_stays_deleted_after_a_restart(server: ServerFactory) -> None:
    srv = server()
    assert ("hello_world", "en_US") in statuses(srv)
    assert srv.ok("DELETE", "/v1/configs/templates/hello_world") == {"success": True}
    assert ("hello_world", "en_US") not in statuses(srv)
    srv.restart()
    assert ("hello_world", "en_US") not in statuses(srv)


# --- create and review ----------------------------------------------------------------------


def test_create_is_pending_until_the_review_then_approved_with_a_webhook(
    server: ServerFactory, receiver: Receiver
) -> None:
    srv = server(SLOW_REVIEW)
    srv.set_webhook(receiver.url)
    waba_id = waba_id_of(srv)
    namespace = listed(srv)["waba_templates"][0]["namespace"]
    document = {
        "name": "order_shipped", "language": "en_US", "category": "utility",
        "components": [
            {"type": "header", "format": "text", "text": "Order {{1}}", "example": {"header_text": ["A-17"]}},
            {"type": "body", "text": "Hi {{1}}, your order {{2}} is on its way.",
             "example": {"body_text": [["Ann", "A-17"]]}},
            {"type": "footer", "text": "Reply STOP to opt out"},
            {"type": "buttons", "buttons": [{"type": "quick_reply", "text": "Stop"}]},
        ],
    }
    created = create(srv, document)
    assert created["id"].isdigit()
    assert {k: created[k] for k in ("name", "language", "category", "status", "rejected_reason", "namespace")} == {
        "name": "order_shipped", "language": "en_US", "category": "UTILITY", "status": "pending",
        "rejected_reason": None, "namespace": namespace,
    }
    assert [c["type"] for c in created["components"]] == ["HEADER", "BODY", "FOOTER", "BUTTONS"]
    assert created["components"][0]["format"] == "TEXT"
    assert created["components"][3]["buttons"] == [{"type": "QUICK_REPLY", "text": "Stop"}]
    assert statuses(srv)[("order_shipped", "en_US")] == "pending"
    assert srv.ok("GET", "/message_templates?name=order_shipped")["data"][0]["status"] == "PENDING"

    # Pending: not sendable yet, and the decision's webhook is stored but not due.
    params = [{"type": "header", "parameters": texts("A-1")}, {"type": "body", "parameters": texts("Ann", "A-1")}]
    assert_graph_error(srv.call("POST", "/messages", template_message(ALICE, "order_shipped", components=params)),
                       132001, 404)
    [event] = srv.query("SELECT id FROM events WHERE kind = 'template_status'")
    assert srv.deliveries("d.event_id = ?", event["id"])[0]["attempts"] == 0
    assert not [r for r in receiver.requests if is_template_update(r)]

    srv.advance_clock(REVIEW_SECONDS + 1)
    [update] = receiver.wait_for_count(update_for(created["id"]), 1, what="the approval webhook")
    assert update.webhook_id == event["id"]
    assert update.json["object"] == "whatsapp_business_account"
    [entry] = update.json["entry"]
    assert entry["id"] == waba_id
    [change] = entry["changes"]
    assert change["field"] == TEMPLATE_FIELD
    assert change["value"] == {
        "event": "APPROVED", "message_template_id": int(created["id"]),
        "message_template_name": "order_shipped", "message_template_language": "en_US", "reason": None,
    }
    assert statuses(srv)[("order_shipped", "en_US")] == "approved"

    reply = srv.call("POST", "/messages", template_message(ALICE, "order_shipped", components=params))
    assert reply.status == 200, reply.body
    wait_for_statuses(receiver, reply.json()["messages"][0]["id"], {"sent", "delivered", "read"})


REVIEWED: list[tuple[str, dict[str, Any], str, str | None]] = [
    ("plain", template("shipping_update", body("Your parcel left our warehouse today.")), "APPROVED", None),
    ("reject pattern in the name", template("please_reject_me", body("Nothing wrong with this text.")),
     "REJECTED", "TAG_CONTENT_MISMATCH"),
    ("body starts with a variable", template("starts_var", body("{{1}} ordered a parcel today.", "Ann")),
     "REJECTED", "INVALID_FORMAT"),
    ("body ends with a variable", template("ends_var", body("Your parcel is number {{1}}", "A-17")),
     "REJECTED", "INVALID_FORMAT"),
    ("variable at the edge behind white space", template("padded_var", body("  {{1}}, your order shipped.  ", "Ann")),
     "REJECTED", "INVALID_FORMAT"),
    ("variable inside", template("inner_var", body("Hi {{1}}, your parcel left.", "Ann")), "APPROVED", None),
    ("authentication wording starts with a variable", template("login_code", {"type": "BODY"},
                                                                category="AUTHENTICATION"), "APPROVED", None),
]


def test_review_approves_or_rejects_with_a_reason(server: ServerFactory, receiver: Receiver) -> None:
    srv = server(SLOW_REVIEW)
    srv.set_webhook(receiver.url)
    created = {case: create(srv, document) for case, document, _, _ in REVIEWED}
    assert all(c["status"] == "pending" and c["rejected_reason"] is None for c in created.values())

    srv.advance_clock(REVIEW_SECONDS + 1)
    receiver.wait_for_count(is_template_update, len(REVIEWED), what="one decision per template")
    updates = {r.value["message_template_id"]: r for r in receiver.requests if is_template_update(r)}
    assert len(updates) == len(REVIEWED), "one webhook per template"
    shown = {t["id"]: t for t in listed(srv)["waba_templates"]}
    for case, document, event, reason in REVIEWED:
        template_id = created[case]["id"]
        value = updates[int(template_id)].value
        assert value == {"event": event, "message_template_id": int(template_id),
                         "message_template_name": document["name"], "message_template_language": "en_US",
                         "reason": reason}, case
        assert shown[template_id]["status"] == event.lower(), case
        assert shown[template_id]["rejected_reason"] == reason, case
    rejected = srv.ok("GET", "/message_templates?status=REJECTED")["data"]
    assert {t["name"]: t["rejected_reason"] for t in rejected} == {
        d["name"]: r for _, d, e, r in REVIEWED if e == "REJECTED"
    }
    # A rejected template cannot be sent.
    reply = srv.call("POST", "/messages", template_message(ALICE, "please_reject_me"))
    assert_graph_error(reply, 132001, 404)


def test_the_review_follows_the_configured_delay_and_pattern(server: ServerFactory) -> None:
    srv = server({"OPENWABA_SANDBOX_TEMPLATE_REVIEW_SECONDS": None, "OPENWABA_SANDBOX_TEMPLATE_REJECT": "^nope_"})
    create(srv, template("nope_this_one"))
    create(srv, template("reject_is_fine_here"))
    srv.advance_clock(2.5)  # the default delay is 2 s
    found = statuses(srv)
    assert found[("nope_this_one", "en_US")] == "rejected"
    assert found[("reject_is_fine_here", "en_US")] == "approved"


def test_a_template_deleted_while_pending_is_not_announced(server: ServerFactory, receiver: Receiver) -> None:
    srv = server(SLOW_REVIEW)
    srv.set_webhook(receiver.url)
    gone = create(srv, template("short_lived"))
    assert srv.ok("DELETE", "/v1/configs/templates/short_lived") == {"success": True}
    kept = create(srv, template("barrier_template"))
    srv.advance_clock(REVIEW_SECONDS + 1)
    receiver.wait_for_count(update_for(kept["id"]), 1, what="the barrier's approval")
    assert not [r for r in receiver.requests if update_for(gone["id"])(r)], "a deleted template was announced"


# --- invalid creates ----------------------------------------------------------------------

LONG_NAME = "n" * 513
URL_BUTTON = {"type": "URL", "text": "Track", "url": "https://example.com/t/{{1}}"}

INVALID_CREATES: list[tuple[str, Any, int]] = [
    ("missing name", {k: v for k, v in template("x").items() if k != "name"}, 131008),
    ("empty name", template(""), 131008),
    ("name with capitals", template("Order_Update"), 131009),
    ("name with a space", template("order update"), 131009),
    ("name with a dash", template("order-update"), 131009),
    ("name over 512", template(LONG_NAME), 131009),
    ("name not a string", {**template("x"), "name": 7}, 100),
    ("missing category", {k: v for k, v in template("x").items() if k != "category"}, 131008),
    ("unknown category", template("x", category="PROMOTION"), 131009),
    ("missing language", {k: v for k, v in template("x").items() if k != "language"}, 131008),
    ("language as a word", template("x", language="english"), 131009),
    ("language with a dash", template("x", language="en-US"), 131009),
    ("language lower-case region", template("x", language="en_us"), 131009),
    ("missing components", {k: v for k, v in template("x").items() if k != "components"}, 131008),
    ("components not an array", {**template("x"), "components": {"type": "BODY"}}, 100),
    ("no body component", template("x", {"type": "FOOTER", "text": "Bye"}), 131008),
    ("body without text", template("x", {"type": "BODY"}), 131008),
    ("two bodies", template("x", body("One."), body("Two.")), 131009),
    ("unknown component type", template("x", body("Hi."), {"type": "SIDEBAR", "text": "x"}), 131009),
    ("body over 1024", template("x", body("b" * 1025)), 131009),
    ("header text over 60", template("x", {"type": "HEADER", "format": "TEXT", "text": "h" * 61}, body("Hi.")),
     131009),
    ("footer over 60", template("x", body("Hi."), {"type": "FOOTER", "text": "f" * 61}), 131009),
    ("button text over 25", template("x", body("Hi."), {"type": "BUTTONS", "buttons": [
        {"type": "QUICK_REPLY", "text": "q" * 26}]}), 131009),
    ("unknown header format", template("x", {"type": "HEADER", "format": "GIF"}, body("Hi.")), 131009),
    ("header with two variables", template("x", {"type": "HEADER", "format": "TEXT", "text": "{{1}} {{2}}",
                                                 "example": {"header_text": ["a", "b"]}}, body("Hi.")), 131009),
    ("footer with a variable", template("x", body("Hi."), {"type": "FOOTER", "text": "Bye {{1}}"}), 131009),
    ("mixed variables in the body", template("x", body("Hi {{1}}, see {{name}} now.", "Ann", "Bob")), 131009),
    ("mixed variables across header and body", template(
        "x", {"type": "HEADER", "format": "TEXT", "text": "For {{who}}",
              "example": {"header_text_named_params": [{"param_name": "who", "example": "Ann"}]}},
        body("Hi {{1}} there.", "Ann")), 131009),
    ("numbered variables with a gap", template("x", body("Hi {{1}} and {{3}} here.", "a", "b")), 131009),
    ("malformed variable", template("x", body("Hi {{ one }} here.")), 131009),
    ("body variable without example", template("x", body("Hi {{1}}, thanks.")), 131008),
    ("too few body examples", template("x", body("Hi {{1}} and {{2}} here.", "Ann")), 131009),
    ("named variable without its example", template("x", {
        "type": "BODY", "text": "Hi {{first_name}} there.",
        "example": {"body_text_named_params": [{"param_name": "other", "example": "Ann"}]}}), 131009),
    ("header variable without example", template("x", {"type": "HEADER", "format": "TEXT", "text": "Hi {{1}}"},
                                                 body("Thanks.")), 131008),
    ("url button variable without example", template("x", body("Hi."), {"type": "BUTTONS", "buttons": [URL_BUTTON]}),
     131008),
    ("url button not http", template("x", body("Hi."), {"type": "BUTTONS", "buttons": [
        {"type": "URL", "text": "Go", "url": "ftp://example.com"}]}), 131009),
    ("too many buttons", template("x", body("Hi."), {"type": "BUTTONS", "buttons": [
        {"type": "QUICK_REPLY", "text": f"b{i}"} for i in range(11)]}), 131009),
    ("otp button outside authentication", template("x", body("Hi."), {"type": "BUTTONS", "buttons": [
        {"type": "OTP", "otp_type": "COPY_CODE"}]}), 131009),
    ("unknown top-level key", {**template("x"), "colour": "red"}, 100),
    ("allow_category_change not a boolean", {**template("x"), "allow_category_change": "yes"}, 100),
    ("not JSON", b"{not json", 100),
    ("JSON array", b"[]", 100),
]


@pytest.mark.parametrize(("case", "document", "code"), INVALID_CREATES, ids=[c[0] for c in INVALID_CREATES])
def test_invalid_create_is_a_graph_error(shared_server: Server, case: str, document: Any, code: int) -> None:
    before = listed(shared_server)["total"]
    if isinstance(document, bytes):
        reply = shared_server.call("POST", "/v1/configs/templates", data=document)
    else:
        reply = shared_server.call("POST", "/v1/configs/templates", document)
    assert_graph_error(reply, code, 400)
    assert listed(shared_server)["total"] == before, "a refused create stores nothing"


def test_limits_are_inclusive(shared_server: Server) -> None:
    name = "l" * 512
    buttons = {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "q" * 25}]}
    created = create(shared_server, template(name, {"type": "HEADER", "format": "TEXT", "text": "h" * 60},
                                             body("b" * 1024), {"type": "FOOTER", "text": "f" * 60}, buttons,
                                             language="fil"))
    assert created["name"] == name and created["language"] == "fil"
    assert shared_server.ok("DELETE", f"/v1/configs/templates/{name}") == {"success": True}


def test_duplicates_and_delete_by_name(server: ServerFactory) -> None:
    srv = server(SLOW_REVIEW)
    first = create(srv, template("greeting", language="en_US"))
    for language in ("de", "pt_BR"):
        create(srv, template("greeting", language=language))
    create(srv, template("greeting_other"))

    duplicate = srv.call("POST", "/v1/configs/templates", template("greeting", body("Another text.")))
    assert_graph_error(duplicate, 100, 400)
    assert {k for k in statuses(srv) if k[0] == "greeting"} == {("greeting", "en_US"), ("greeting", "de"),
                                                              ("greeting", "pt_BR")}

    assert srv.ok("DELETE", "/v1/configs/templates/greeting") == {"success": True}
    left = statuses(srv)
    assert not [k for k in left if k[0] == "greeting"], "every language of the name is deleted"
    assert ("greeting_other", "en_US") in left and ("hello_world", "en_US") in left

    for name in ("greeting", "no_such_template"):
        assert_graph_error(srv.call("DELETE", f"/v1/configs/templates/{name}"), 100, 404)

    again = create(srv, template("greeting"))
    assert again["id"] != first["id"] and again["status"] == "pending"

    # A deleted approved template can no longer be sent.
    srv.advance_clock(REVIEW_SECONDS + 1)
    assert srv.call("POST", "/messages", template_message(ALICE, "greeting_other")).status == 200
    assert srv.ok("DELETE", "/v1/configs/templates/greeting_other") == {"success": True}
    assert_graph_error(srv.call("POST", "/messages", template_message(ALICE, "greeting_other")), 132001, 404)


# --- listing ------------------------------------------------------------------------------


@dataclass
class Catalogue:
    srv: Server
    order: list[tuple[str, str]]  # (name, language) in the list's sort order
    status: dict[tuple[str, str], str]


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Catalogue]:
    """One server with templates in every state, for the read-only list tests."""
    factory = ServerFactory(tmp_path_factory.mktemp("catalogue"), {**DEFAULT_ENV, **SLOW_REVIEW})
    try:
        srv = factory()
        create(srv, template("alpha_notice", language="en_US"))
        create(srv, template("alpha_notice", language="de"))
        create(srv, template("beta_offer", category="MARKETING"))
        create(srv, template("gamma_code", {"type": "BODY"}, category="AUTHENTICATION"))
        create(srv, template("reject_me"))
        srv.advance_clock(REVIEW_SECONDS + 1)
        create(srv, template("zeta_pending", language="pt_BR", category="MARKETING"))
        status = {
            ("alpha_notice", "de"): "approved", ("alpha_notice", "en_US"): "approved",
            ("beta_offer", "en_US"): "approved", ("gamma_code", "en_US"): "approved",
            ("hello_world", "en_US"): "approved", ("reject_me", "en_US"): "rejected",
            ("zeta_pending", "pt_BR"): "pending",
        }
        yield Catalogue(srv, sorted(status), status)
    finally:
        factory.close()


def test_list_shows_every_template_sorted(catalogue: Catalogue) -> None:
    result = listed(catalogue.srv)
    assert {k: result[k] for k in ("count", "total", "limit", "offset", "filters", "sort")} == {
        "count": 7, "total": 7, "limit": 1000, "offset": 0, "filters": {}, "sort": ["name", "language"],
    }
    items = result["waba_templates"]
    assert [(t["name"], t["language"]) for t in items] == catalogue.order
    assert {(t["name"], t["language"]): t["status"] for t in items} == catalogue.status
    assert len({t["id"] for t in items}) == 7
    assert len({t["namespace"] for t in items}) == 1, "one namespace per WABA"
    for t in items:
        assert set(t) == {"id", "name", "namespace", "language", "category", "status", "rejected_reason",
                          "components"}, t
        assert t["rejected_reason"] == ("TAG_CONTENT_MISMATCH" if t["status"] == "rejected" else None)
    [auth] = [t for t in items if t["name"] == "gamma_code"]
    assert auth["category"] == "AUTHENTICATION"
    assert auth["components"] == [{"type": "BODY", "text": "{{1}} is your verification code."}]


FILTERS: list[tuple[str, dict[str, str], list[tuple[str, str]]]] = [
    ("approved", {"status": "approved"}, [("alpha_notice", "de"), ("alpha_notice", "en_US"), ("beta_offer", "en_US"),
                                          ("gamma_code", "en_US"), ("hello_world", "en_US")]),
    ("REJECTED upper-case", {"status": "REJECTED"}, [("reject_me", "en_US")]),
    ("pending", {"status": "pending"}, [("zeta_pending", "pt_BR")]),
    ("category", {"category": "marketing"}, [("beta_offer", "en_US"), ("zeta_pending", "pt_BR")]),
    ("name", {"name": "alpha_notice"}, [("alpha_notice", "de"), ("alpha_notice", "en_US")]),
    ("language and category", {"language": "en_US", "category": "UTILITY"},
     [("alpha_notice", "en_US"), ("hello_world", "en_US"), ("reject_me", "en_US")]),
    ("nothing matches", {"name": "nobody"}, []),
]


@pytest.mark.parametrize(("case", "filters", "expected"), FILTERS, ids=[f[0] for f in FILTERS])
def test_list_filters(catalogue: Catalogue, case: str, filters: dict[str, str],
                      expected: list[tuple[str, str]]) -> None:
    result = listed(catalogue.srv, filters=filters)
    assert [(t["name"], t["language"]) for t in result["waba_templates"]] == expected
    assert result["count"] == result["total"] == len(expected)
    assert result["filters"] == filters


def test_list_pages_with_limit_and_offset(catalogue: Catalogue) -> None:
    seen: list[tuple[str, str]] = []
    for offset in (0, 2, 4, 6):
        page = listed(catalogue.srv, limit=2, offset=offset)
        assert page["limit"] == 2 and page["offset"] == offset and page["total"] == 7
        assert page["count"] == len(page["waba_templates"]) == (2 if offset < 6 else 1)
        seen += [(t["name"], t["language"]) for t in page["waba_templates"]]
    assert seen == catalogue.order
    beyond = listed(catalogue.srv, limit=5, offset=50)
    assert beyond["count"] == 0 and beyond["waba_templates"] == [] and beyond["total"] == 7
    filtered = listed(catalogue.srv, filters={"status": "approved"}, limit=3, offset=3)
    assert [t["name"] for t in filtered["waba_templates"]] == ["gamma_code", "hello_world"]
    assert filtered["total"] == 5 and filtered["count"] == 2


BAD_LIST_QUERIES: list[tuple[str, dict[str, str]]] = [
    ("filters not JSON", {"filters": "status=approved"}),
    ("filters an array", {"filters": "[1]"}),
    ("filters unknown key", {"filters": '{"colour": "red"}'}),
    ("limit 0", {"limit": "0"}),
    ("limit over 1000", {"limit": "1001"}),
    ("limit negative", {"limit": "-1"}),
    ("limit not a number", {"limit": "ten"}),
    ("offset not a number", {"offset": "x"}),
]


@pytest.mark.parametrize(("case", "query"), BAD_LIST_QUERIES, ids=[q[0] for q in BAD_LIST_QUERIES])
def test_list_rejects_bad_queries(catalogue: Catalogue, case: str, query: dict[str, str]) -> None:
    reply = catalogue.srv.call("GET", "/v1/configs/templates?" + urlencode(query))
    assert_graph_error(reply, 100, 400)


def _meta_page(srv: Server, url: str) -> dict[str, Any]:
    reply = http("GET", url, headers={KEY_HEADER: srv.api_key or ""})
    assert reply.status == 200, reply.body
    page: dict[str, Any] = reply.json()
    return page


def test_message_templates_pages_with_cursors(catalogue: Catalogue) -> None:
    srv = catalogue.srv
    url: str | None = f"{srv.url}/message_templates?limit=3"
    pages: list[dict[str, Any]] = []
    while url is not None:
        assert len(pages) < 10, "paging does not end"
        page = _meta_page(srv, url)
        pages.append(page)
        next_url = page["paging"].get("next")
        if next_url is not None:
            parts = urlsplit(next_url)
            assert (parts.hostname, parts.port) == ("127.0.0.1", srv.port)
            query = parse_qs(parts.query)
            assert query["limit"] == ["3"], "next keeps the page size"
            assert query["after"] == [page["paging"]["cursors"]["after"]]
        url = next_url
    assert [len(p["data"]) for p in pages] == [3, 3, 1]
    items = [t for p in pages for t in p["data"]]
    assert [(t["name"], t["language"]) for t in items] == catalogue.order
    assert {(t["name"], t["language"]): t["status"] for t in items} == {
        k: v.upper() for k, v in catalogue.status.items()}
    for t in items:
        assert {"name", "components", "language", "status", "category", "id"} <= set(t)
        assert ("rejected_reason" in t) == (t["status"] == "REJECTED")

    # The cursors work by hand too, both ways.
    second = pages[1]
    after = _meta_page(srv, f"{srv.url}/message_templates?limit=3&after={pages[0]['paging']['cursors']['after']}")
    assert after["data"] == second["data"]
    before = _meta_page(srv, f"{srv.url}/message_templates?limit=3&before={second['paging']['cursors']['before']}")
    assert before["data"] == pages[0]["data"]


def test_message_templates_default_page_filters_and_bad_cursor(catalogue: Catalogue) -> None:
    srv = catalogue.srv
    everything = srv.ok("GET", "/message_templates")
    assert len(everything["data"]) == 7, "the default page (25) holds them all"
    assert "next" not in everything["paging"]
    assert set(everything["paging"]["cursors"]) == {"before", "after"}

    approved = srv.ok("GET", "/message_templates?status=APPROVED&limit=2")
    assert [t["name"] for t in approved["data"]] == ["alpha_notice", "alpha_notice"]
    rest = _meta_page(srv, approved["paging"]["next"])
    assert [t["name"] for t in rest["data"]] == ["beta_offer", "gamma_code"]
    assert all(t["status"] == "APPROVED" for t in approved["data"] + rest["data"])
    last = _meta_page(srv, rest["paging"]["next"])
    assert [t["name"] for t in last["data"]] == ["hello_world"] and "next" not in last["paging"]

    assert srv.ok("GET", "/message_templates?language=pt_BR")["data"][0]["name"] == "zeta_pending"
    assert srv.ok("GET", "/message_templates?name=nobody") == {"data": []}
    for query in ("after=%21%21not-a-cursor", "limit=0", "limit=abc"):
        assert_graph_error(srv.call("GET", f"/message_templates?{query}"), 100, 400)


def test_templates_need_the_key(catalogue: Catalogue) -> None:
    for method, path, document in (("GET", "/v1/configs/templates", None), ("GET", "/message_templates", None),
                                   ("POST", "/v1/configs/templates", template("keyless")),
                                   ("DELETE", "/v1/configs/templates/alpha_notice", None)):
        for key in (None, "wrong-key"):
            reply = catalogue.srv.call(method, path, document, key=key)
            assert reply.status == 401, (method, path, reply.body)
            assert isinstance(reply.json()["error"], str)
    assert len(listed(catalogue.srv)["waba_templates"]) == 7


def test_templates_belong_to_the_waba(server: ServerFactory) -> None:
    srv = server({**PARTNER_ENV, **SLOW_REVIEW})
    create(srv, template("only_for_a"))
    srv.advance_clock(REVIEW_SECONDS + 1)
    other = new_number(srv)  # another WABA
    assert [t["name"] for t in other.ok("GET", "/v1/configs/templates")["waba_templates"]] == ["hello_world"]
    assert other.call("DELETE", "/v1/configs/templates/only_for_a").status == 404
    assert_graph_error(other.call("POST", "/messages", template_message(ALICE, "only_for_a")), 132001, 404)

    channel = partner_ok(srv, "GET", "/channels")["channels"][0]
    sibling = new_number(srv, waba_id=channel["waba_id"])  # a second number of the first WABA
    names = [t["name"] for t in sibling.ok("GET", "/v1/configs/templates")["waba_templates"]]
    assert names == ["hello_world", "only_for_a"]
    assert sibling.call("POST", "/messages", template_message(ALICE, "only_for_a")).status == 200
    assert ("only_for_a", "en_US") in statuses(srv)


# --- sending ------------------------------------------------------------------------------


@dataclass
class Sender:
    srv: Server
    receiver: Receiver
    image_id: str

    def send(self, message: dict[str, Any]) -> Reply:
        return self.srv.call("POST", "/messages", message)


ORDER_UPDATE = template(
    "order_update",
    {"type": "HEADER", "format": "TEXT", "text": "Order {{1}}", "example": {"header_text": ["A-17"]}},
    body("Hi {{1}}, your order {{2}} has shipped.", "Ann", "A-17"),
    {"type": "FOOTER", "text": "Thanks for shopping"},
    {"type": "BUTTONS", "buttons": [
        {"type": "QUICK_REPLY", "text": "Stop"},
        {"type": "URL", "text": "Track", "url": "https://example.com/track/{{1}}",
         "example": ["https://example.com/track/A-17"]},
    ]},
)
RECEIPT = template("receipt", {"type": "HEADER", "format": "IMAGE"}, body("Your receipt is attached. Thank you!"))
NAMED = template("greeting_named", {
    "type": "BODY", "text": "Hello {{first_name}}, welcome to {{shop}}!",
    "example": {"body_text_named_params": [{"param_name": "first_name", "example": "Ann"},
                                           {"param_name": "shop", "example": "Acme"}]},
})
COUPON = template("coupon", body("Use the code below at checkout."),
                  {"type": "BUTTONS", "buttons": [{"type": "COPY_CODE", "example": "SAVE10"}]}, category="MARKETING")


@pytest.fixture(scope="module")
def sender(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sender]:
    """A server with approved, rejected and pending templates and a webhook receiver.
    Its tests must not move the clock (`still_waiting` stays pending)."""
    factory = ServerFactory(tmp_path_factory.mktemp("sender"), {**DEFAULT_ENV, **SLOW_REVIEW})
    rx = Receiver()
    rx.start()
    try:
        srv = factory()
        srv.set_webhook(rx.url)
        for document in (ORDER_UPDATE, RECEIPT, NAMED, COUPON, template("reject_this"),
                         template("order_update", body("Hallo {{1}}, Bestellung {{2}} ist unterwegs.", "A", "B"),
                                  language="de")):
            create(srv, document)
        srv.advance_clock(REVIEW_SECONDS + 1)
        create(srv, template("still_waiting"))
        image_id = upload_id(srv, JPEG, "image/jpeg", "receipt.jpg")
        yield Sender(srv, rx, image_id)
    finally:
        rx.stop()
        factory.close()


def order_components(header: str = "A-17", name: str = "Ann", order: str = "A-17",
                     suffix: str = "A-17") -> list[dict[str, Any]]:
    return [
        {"type": "header", "parameters": texts(header)},
        {"type": "body", "parameters": texts(name, order)},
        {"type": "button", "sub_type": "url", "index": "1", "parameters": texts(suffix)},
    ]


GOOD_SENDS: list[tuple[str, str, str, Any]] = [
    ("every part filled", "order_update", "en_US", order_components()),
    ("with a quick-reply payload", "order_update", "en_US", [
        *order_components(), {"type": "button", "sub_type": "quick_reply", "index": "0",
                              "parameters": [{"type": "payload", "payload": "STOP-A17"}]}]),
    ("currency and date_time", "order_update", "en_US", [
        {"type": "header", "parameters": texts("A-17")},
        {"type": "body", "parameters": [
            {"type": "currency", "currency": {"fallback_value": "$10.50", "code": "USD", "amount_1000": 10500}},
            {"type": "date_time", "date_time": {"fallback_value": "June 9, 2025"}}]},
        {"type": "button", "sub_type": "url", "index": "1", "parameters": texts("A-17")}]),
    ("another language", "order_update", "de", [{"type": "body", "parameters": texts("Ann", "A-17")}]),
    ("image header by uploaded id", "receipt", "en_US", [
        {"type": "header", "parameters": [{"type": "image", "image": {"id": "{image_id}"}}]}]),
    ("image header by link", "receipt", "en_US", [
        {"type": "header", "parameters": [{"type": "image", "image": {"link": "https://example.com/r.jpg"}}]}]),
    ("named parameters in any order", "greeting_named", "en_US", [{"type": "body", "parameters": [
        {"type": "text", "parameter_name": "shop", "text": "Acme"},
        {"type": "text", "parameter_name": "first_name", "text": "Ann"}]}]),
    ("copy code", "coupon", "en_US", [{"type": "button", "sub_type": "copy_code", "index": "0",
                                       "parameters": [{"type": "coupon_code", "coupon_code": "SAVE10"}]}]),
    ("four spaces are still fine", "order_update", "en_US", order_components(name="Ann    Lee")),
    ("a long parameter in a body-only template", "greeting_named", "en_US", [{"type": "body", "parameters": [
        {"type": "text", "parameter_name": "first_name", "text": "A" * 5000},
        {"type": "text", "parameter_name": "shop", "text": "Acme"}]}]),
]


def _fill(components: Any, image_id: str) -> Any:
    return json.loads(json.dumps(components).replace("{image_id}", image_id))


@pytest.mark.parametrize(("case", "name", "language", "components"), GOOD_SENDS, ids=[g[0] for g in GOOD_SENDS])
def test_approved_template_with_the_right_parameters_is_sent(
    sender: Sender, case: str, name: str, language: str, components: Any
) -> None:
    reply = sender.send(template_message(ALICE, name, language, _fill(components, sender.image_id)))
    assert reply.status == 200, reply.body
    wamid = reply.json()["messages"][0]["id"]
    got = wait_for_statuses(sender.receiver, wamid, {"sent", "delivered", "read"})
    assert "failed" not in got


BAD_SENDS: list[tuple[str, str, str, Any, int]] = [
    ("unknown template", "no_such_template", "en_US", None, 132001),
    ("pending template", "still_waiting", "en_US", None, 132001),
    ("rejected template", "reject_this", "en_US", None, 132001),
    ("wrong language", "order_update", "pt_BR", order_components(), 132001),
    ("en instead of en_US", "hello_world", "en", None, 132001),
    ("name in another case", "Hello_World", "en_US", None, 132001),
    ("body parameters missing", "order_update", "en_US", [
        {"type": "header", "parameters": texts("A-17")},
        {"type": "button", "sub_type": "url", "index": "1", "parameters": texts("A-17")}], 132000),
    ("one body parameter too few", "order_update", "en_US", [
        {"type": "header", "parameters": texts("A-17")}, {"type": "body", "parameters": texts("Ann")},
        {"type": "button", "sub_type": "url", "index": "1", "parameters": texts("A-17")}], 132000),
    ("one body parameter too many", "order_update", "en_US", [
        {"type": "header", "parameters": texts("A-17")}, {"type": "body", "parameters": texts("Ann", "A", "B")},
        {"type": "button", "sub_type": "url", "index": "1", "parameters": texts("A-17")}], 132000),
    ("header variable not filled", "order_update", "en_US", order_components()[1:], 132000),
    ("parameters for a template without variables", "hello_world", "en_US",
     [{"type": "body", "parameters": texts("surplus")}], 132000),
    ("wrong parameter names", "greeting_named", "en_US", [{"type": "body", "parameters": [
        {"type": "text", "parameter_name": "first_name", "text": "Ann"},
        {"type": "text", "parameter_name": "city", "text": "Oslo"}]}], 132000),
    ("named template without names", "greeting_named", "en_US",
     [{"type": "body", "parameters": texts("Ann", "Acme")}], 131008),
    ("names for a numbered template", "order_update", "en_US", [
        {"type": "header", "parameters": texts("A-17")},
        {"type": "body", "parameters": [{"type": "text", "parameter_name": "name", "text": "Ann"},
                                        {"type": "text", "parameter_name": "order", "text": "A-17"}]},
        {"type": "button", "sub_type": "url", "index": "1", "parameters": texts("A-17")}], 131009),
    ("image header left out", "receipt", "en_US", None, 132012),
    ("text for an image header", "receipt", "en_US", [{"type": "header", "parameters": texts("receipt")}], 132012),
    ("document for an image header", "receipt", "en_US", [{"type": "header", "parameters": [
        {"type": "document", "document": {"link": "https://example.com/r.pdf"}}]}], 132012),
    ("image for a text header", "order_update", "en_US", [
        {"type": "header", "parameters": [{"type": "image", "image": {"link": "https://example.com/a.jpg"}}]},
        *order_components()[1:]], 132012),
    ("header text over 60", "order_update", "en_US", order_components(header="h" * 61), 131009),
    ("body parameter over 1024", "order_update", "en_US", order_components(name="n" * 1025), 131009),
    ("button index beyond the buttons", "order_update", "en_US", [
        *order_components(), {"type": "button", "sub_type": "quick_reply", "index": "2",
                              "parameters": [{"type": "payload", "payload": "x"}]}], 131009),
    ("button index not a number", "order_update", "en_US", [
        *order_components()[:2], {"type": "button", "sub_type": "url", "index": "one",
                                  "parameters": texts("A-17")}], 131009),
    ("url sub_type on the quick-reply button", "order_update", "en_US", [
        *order_components()[:2], {"type": "button", "sub_type": "url", "index": "0", "parameters": texts("A")}],
     131009),
    ("unknown sub_type", "order_update", "en_US", [
        *order_components()[:2], {"type": "button", "sub_type": "call_me", "index": "1",
                                  "parameters": texts("A-17")}], 131009),
    ("same button twice", "order_update", "en_US", [
        *order_components(), {"type": "button", "sub_type": "url", "index": "1", "parameters": texts("B")}], 131009),
    ("url button parameter left out", "order_update", "en_US", order_components()[:2], 131008),
    ("copy code left out", "coupon", "en_US", None, 131008),
    ("unknown media id in the header", "receipt", "en_US", [
        {"type": "header", "parameters": [{"type": "image", "image": {"id": "123456789"}}]}], 100),
]


@pytest.mark.parametrize(("case", "name", "language", "components", "code"), BAD_SENDS,
                         ids=[b[0] for b in BAD_SENDS])
def test_template_send_errors(sender: Sender, case: str, name: str, language: str, components: Any,
                              code: int) -> None:
    before = sender.srv.query("SELECT count(*) AS n FROM messages WHERE direction = 'out'")[0]["n"]
    reply = sender.send(template_message(ALICE, name, language, components))
    error = assert_graph_error(reply, code, 404 if code == 132001 else 400)
    if code == 132001:
        assert name in error["error_data"]["details"] and language in error["error_data"]["details"]
    after = sender.srv.query("SELECT count(*) AS n FROM messages WHERE direction = 'out'")[0]["n"]
    assert after == before, "a refused send stores nothing"


BAD_PARAMETER_TEXT: list[tuple[str, list[dict[str, Any]]]] = [
    ("newline in a body parameter", order_components(name="Ann\nLee")),
    ("tab in a body parameter", order_components(order="A\t17")),
    ("five spaces in a body parameter", order_components(name="Ann     Lee")),
    ("newline in the header parameter", order_components(header="A\n17")),
    ("tab in the url button parameter", order_components(suffix="A\t17")),
]


@pytest.mark.parametrize(("case", "components"), BAD_PARAMETER_TEXT, ids=[b[0] for b in BAD_PARAMETER_TEXT])
def test_bad_parameter_text_is_accepted_then_fails_with_132018(
    sender: Sender, case: str, components: list[dict[str, Any]]
) -> None:
    reply = sender.send(template_message(ALICE, "order_update", components=components))
    assert reply.status == 200, reply.body
    wamid = reply.json()["messages"][0]["id"]
    got = wait_for_statuses(sender.receiver, wamid, {"failed"})
    [failed] = got["failed"]
    status = failed.status
    assert status is not None and status["recipient_id"] == ALICE
    [error] = status["errors"]
    assert error["code"] == 132018
    assert error["title"] == error["message"] and error["title"]
    assert error["error_data"]["details"] == (
        "Param text cannot have new-line/tab characters or more than 4 consecutive spaces")
    assert "conversation" not in status and "pricing" not in status
    events = sender.srv.query("SELECT kind FROM events WHERE wamid = ?", wamid)
    assert events == [{"kind": "status"}], "a failed template gets no sent/delivered/read"


def test_on_premise_template_send_uses_namespace_and_integer_index(sender: Sender) -> None:
    namespace = listed(sender.srv, filters={"name": "order_update", "language": "en_US"})["waba_templates"][0][
        "namespace"]
    message: dict[str, Any] = {
        "to": ALICE, "type": "template",
        "template": {"namespace": namespace, "name": "order_update",
                     "language": {"policy": "deterministic", "code": "en_US"},
                     "components": [
                         {"type": "header", "parameters": texts("A-17")},
                         {"type": "body", "parameters": texts("Ann", "A-17")},
                         {"type": "button", "sub_type": "url", "index": 1, "parameters": texts("A-17")}]},
    }
    reply = sender.srv.call("POST", "/v1/messages", message)
    assert reply.status == 201, reply.body
    wamid = reply.json()["messages"][0]["id"]
    wait_for_statuses(sender.receiver, wamid, {"sent", "delivered", "read"})

    missing = {**message, "template": {**message["template"], "name": "no_such_template"}}
    reply = sender.srv.call("POST", "/v1/messages", missing)
    assert reply.status == 404, reply.body
    assert reply.json()["errors"][0]["code"] == 132001

"""End-to-end: the business profile and the health endpoints through the real server.

Cloud: `GET /whatsapp_business_profile` (`{"data": [{... "messaging_product"}]}`,
`fields=`), `POST` (only the given fields change). On-Premise: `GET`/`POST
/v1/settings/business/profile`, `GET`/`PATCH /v1/settings/profile/about`.
Health: `GET /health_status` (Cloud) and `GET /v1/health` (On-Premise).
"""

from __future__ import annotations

from typing import Any

import pytest

from .assets_support import assert_graph_error, assert_on_premise_error
from .routing_support import PARTNER_ENV, demo_number, new_number
from .support import Reply, Server, ServerFactory

pytestmark = pytest.mark.e2e

DEFAULT_PROFILE = {
    "about": "Hey there! I am using WhatsApp.",
    "address": "",
    "description": "",
    "email": "",
    "profile_picture_url": "",
    "websites": [],
    "vertical": "UNDEFINED",
    "messaging_product": "whatsapp",
}
VERTICALS = ("UNDEFINED", "OTHER", "AUTO", "BEAUTY", "APPAREL", "EDU", "ENTERTAIN", "EVENT_PLAN", "FINANCE",
             "GROCERY", "GOVT", "HOTEL", "HEALTH", "NONPROFIT", "PROF_SERVICES", "RETAIL", "TRAVEL", "RESTAURANT",
             "NOT_A_BIZ")


def profile(srv: Server, query: str = "") -> dict[str, Any]:
    result = srv.ok("GET", "/whatsapp_business_profile" + query)
    assert set(result) == {"data"}, result
    [item] = result["data"]
    return dict(item)


def update(srv: Server, **fields: Any) -> Reply:
    return srv.call("POST", "/whatsapp_business_profile", {"messaging_product": "whatsapp", **fields})


def on_premise_ok(srv: Server, method: str, path: str, body: Any = None, status: int = 200) -> dict[str, Any]:
    reply = srv.call(method, path, body)
    assert reply.status == status, f"{method} {path} answered {reply.status}: {reply.body!r}"
    result: dict[str, Any] = reply.json()
    assert result.pop("meta")["version"], "On-Premise answers carry meta"
    return result


# --- Cloud --------------------------------------------------------------------------------


def test_a_new_number_has_the_default_profile(shared_server: Server) -> None:
    assert profile(shared_server) == DEFAULT_PROFILE


FIELD_QUERIES: list[tuple[str, str, set[str]]] = [
    ("two fields", "?fields=about,email", {"about", "email", "messaging_product"}),
    ("spaces and a trailing comma", "?fields=%20websites%20,vertical,", {"websites", "vertical", "messaging_product"}),
    ("every field", "?fields=about,address,description,email,profile_picture_url,websites,vertical",
     set(DEFAULT_PROFILE)),
    ("an unknown field", "?fields=colour", {"messaging_product"}),
    ("empty", "?fields=", set(DEFAULT_PROFILE)),
]


@pytest.mark.parametrize(("case", "query", "keys"), FIELD_QUERIES, ids=[q[0] for q in FIELD_QUERIES])
def test_fields_selects_what_comes_back(shared_server: Server, case: str, query: str, keys: set[str]) -> None:
    got = profile(shared_server, query)
    assert set(got) == keys
    assert got == {k: v for k, v in profile(shared_server).items() if k in keys}


def test_an_update_changes_only_the_given_fields(server: ServerFactory) -> None:
    srv = server()
    reply = update(srv, about="Open 9-17", email="shop@example.com")
    assert reply.status == 200, reply.body
    assert reply.json() == {"success": True}
    assert profile(srv) == {**DEFAULT_PROFILE, "about": "Open 9-17", "email": "shop@example.com"}

    websites = ["https://example.com", "http://example.org/shop"]
    assert update(srv, websites=websites, vertical="RETAIL", address="1 Main St",
                  description="We sell things.").json() == {"success": True}
    changed = {**DEFAULT_PROFILE, "about": "Open 9-17", "email": "shop@example.com", "websites": websites,
               "vertical": "RETAIL", "address": "1 Main St", "description": "We sell things."}
    assert profile(srv) == changed

    assert update(srv).json() == {"success": True}, "nothing to change is fine"
    assert profile(srv) == changed

    # Empty values clear address, description, email and websites.
    assert update(srv, address="", description="", email="", websites=[]).status == 200
    assert profile(srv) == {**DEFAULT_PROFILE, "about": "Open 9-17", "vertical": "RETAIL"}

    srv.restart()
    assert profile(srv) == {**DEFAULT_PROFILE, "about": "Open 9-17", "vertical": "RETAIL"}, "kept over a restart"


def test_every_vertical_is_accepted(server: ServerFactory) -> None:
    srv = server()
    for vertical in VERTICALS:
        assert update(srv, vertical=vertical).status == 200, vertical
        assert profile(srv, "?fields=vertical")["vertical"] == vertical


def test_limits_are_inclusive(server: ServerFactory) -> None:
    srv = server()
    longest = {"about": "a" * 139, "address": "d" * 256, "description": "e" * 512,
               "email": "m" * 116 + "@example.com", "websites": ["https://" + "w" * 248, "http://x.io"]}
    assert len(longest["email"]) == 128 and len(longest["websites"][0]) == 256
    reply = update(srv, **longest)
    assert reply.status == 200, reply.body
    assert profile(srv) == {**DEFAULT_PROFILE, **longest}
    assert update(srv, about="a").status == 200
    assert profile(srv)["about"] == "a"


INVALID_UPDATES: list[tuple[str, dict[str, Any], int]] = [
    ("empty about", {"about": ""}, 131009),
    ("about over 139", {"about": "a" * 140}, 131009),
    ("about not a string", {"about": 5}, 100),
    ("address over 256", {"address": "d" * 257}, 131009),
    ("description over 512", {"description": "e" * 513}, 131009),
    ("email without @", {"email": "shop.example.com"}, 131009),
    ("email without a domain dot", {"email": "shop@example"}, 131009),
    ("email with a space", {"email": "sh op@example.com"}, 131009),
    ("email over 128", {"email": "m" * 117 + "@example.com"}, 131009),
    ("three websites", {"websites": ["https://a.io", "https://b.io", "https://c.io"]}, 131009),
    ("website without a scheme", {"websites": ["example.com"]}, 131009),
    ("website with ftp", {"websites": ["ftp://example.com"]}, 131009),
    ("website over 256", {"websites": ["https://" + "w" * 249]}, 131009),
    ("websites not a list", {"websites": "https://example.com"}, 100),
    ("website not a string", {"websites": [42]}, 100),
    ("unknown vertical", {"vertical": "SPACESHIPS"}, 131009),
    ("lower-case vertical", {"vertical": "retail"}, 131009),
    ("empty vertical", {"vertical": ""}, 131009),
    ("empty picture handle", {"profile_picture_handle": ""}, 131008),
    ("unknown field", {"colour": "red"}, 100),
    ("read-only profile_picture_url", {"profile_picture_url": "https://example.com/p.jpg"}, 100),
]


@pytest.mark.parametrize(("case", "fields", "code"), INVALID_UPDATES, ids=[c[0] for c in INVALID_UPDATES])
def test_invalid_updates_are_refused_and_change_nothing(shared_server: Server, case: str, fields: dict[str, Any],
                                                        code: int) -> None:
    before = profile(shared_server)
    # A valid field next to the invalid one must not be applied either.
    assert_graph_error(update(shared_server, **{"address": "changed?", **fields}), code, 400)
    assert profile(shared_server) == before


ENVELOPE_ERRORS: list[tuple[str, bytes, int]] = [
    ("missing messaging_product", b'{"about": "hi"}', 131008),
    ("messaging_product not whatsapp", b'{"messaging_product": "sms", "about": "hi"}', 131009),
    ("not JSON", b"{about", 100),
    ("JSON array", b"[]", 100),
]


@pytest.mark.parametrize(("case", "raw", "code"), ENVELOPE_ERRORS, ids=[c[0] for c in ENVELOPE_ERRORS])
def test_malformed_update_bodies(shared_server: Server, case: str, raw: bytes, code: int) -> None:
    before = profile(shared_server)
    reply = shared_server.call("POST", "/whatsapp_business_profile", data=raw)
    assert_graph_error(reply, code, 400)
    assert profile(shared_server) == before


def test_the_profile_needs_the_key(shared_server: Server) -> None:
    for method, path, body in (("GET", "/whatsapp_business_profile", None),
                               ("POST", "/whatsapp_business_profile", {"messaging_product": "whatsapp"}),
                               ("GET", "/v1/settings/business/profile", None),
                               ("POST", "/v1/settings/business/profile", {"address": "x"}),
                               ("GET", "/v1/settings/profile/about", None),
                               ("PATCH", "/v1/settings/profile/about", {"text": "x"}),
                               ("GET", "/v1/health", None),
                               ("GET", "/health_status", None)):
        for key in (None, "wrong-key"):
            reply = shared_server.call(method, path, body, key=key)
            assert reply.status == 401, (method, path, reply.body)
            assert isinstance(reply.json()["error"], str)


def test_each_number_has_its_own_profile(server: ServerFactory) -> None:
    srv = server(PARTNER_ENV)
    a, b = demo_number(srv), new_number(srv)
    assert a.ok("POST", "/whatsapp_business_profile", {"messaging_product": "whatsapp", "about": "I am A"}) == {
        "success": True}
    assert b.ok("GET", "/whatsapp_business_profile")["data"][0] == DEFAULT_PROFILE
    assert b.ok("POST", "/whatsapp_business_profile", {"messaging_product": "whatsapp", "vertical": "HOTEL"})
    assert a.ok("GET", "/whatsapp_business_profile")["data"][0] == {**DEFAULT_PROFILE, "about": "I am A"}
    assert b.ok("GET", "/whatsapp_business_profile")["data"][0] == {**DEFAULT_PROFILE, "vertical": "HOTEL"}


# --- On-Premise ---------------------------------------------------------------------------


def test_on_premise_business_profile(server: ServerFactory) -> None:
    srv = server()
    business = {k: v for k, v in DEFAULT_PROFILE.items() if k not in ("about", "messaging_product",
                                                                    "profile_picture_url")}
    assert on_premise_ok(srv, "GET", "/v1/settings/business/profile") == {
        "settings": {"business": {"profile": business}}}

    change = {"address": "2 Side St", "email": "hi@example.com", "websites": ["https://example.com"],
              "vertical": "HEALTH", "description": "A clinic."}
    assert on_premise_ok(srv, "POST", "/v1/settings/business/profile", change) == {}
    assert on_premise_ok(srv, "GET", "/v1/settings/business/profile") == {
        "settings": {"business": {"profile": {**business, **change}}}}
    assert profile(srv) == {**DEFAULT_PROFILE, **change}, "one profile behind both faces"

    assert on_premise_ok(srv, "POST", "/v1/settings/business/profile", {"email": ""}) == {}
    assert profile(srv)["email"] == "" and profile(srv)["address"] == "2 Side St"


ON_PREMISE_INVALID: list[tuple[str, dict[str, Any], int]] = [
    ("about belongs to its own endpoint", {"about": "hi"}, 100),
    ("messaging_product is Cloud only", {"messaging_product": "whatsapp"}, 100),
    ("three websites", {"websites": ["https://a.io", "https://b.io", "https://c.io"]}, 131009),
    ("website without a scheme", {"websites": ["example.com"]}, 131009),
    ("unknown vertical", {"vertical": "SPACESHIPS"}, 131009),
    ("bad email", {"email": "nobody"}, 131009),
    ("address over 256", {"address": "d" * 257}, 131009),
    ("unknown field", {"colour": "red"}, 100),
]


@pytest.mark.parametrize(("case", "fields", "code"), ON_PREMISE_INVALID, ids=[c[0] for c in ON_PREMISE_INVALID])
def test_on_premise_business_profile_errors(shared_server: Server, case: str, fields: dict[str, Any],
                                            code: int) -> None:
    before = profile(shared_server)
    reply = shared_server.call("POST", "/v1/settings/business/profile", {"description": "changed?", **fields})
    assert_on_premise_error(reply, code, 400)
    assert profile(shared_server) == before


def test_on_premise_about(server: ServerFactory) -> None:
    srv = server()
    assert on_premise_ok(srv, "GET", "/v1/settings/profile/about") == {
        "settings": {"profile": {"about": {"text": DEFAULT_PROFILE["about"]}}}}
    assert on_premise_ok(srv, "PATCH", "/v1/settings/profile/about", {"text": "Back on Monday"}) == {}
    assert on_premise_ok(srv, "GET", "/v1/settings/profile/about") == {
        "settings": {"profile": {"about": {"text": "Back on Monday"}}}}
    assert profile(srv)["about"] == "Back on Monday"

    assert update(srv, about="Set on Cloud").status == 200
    assert on_premise_ok(srv, "GET", "/v1/settings/profile/about")["settings"]["profile"]["about"] == {
        "text": "Set on Cloud"}
    assert "about" not in on_premise_ok(srv, "GET", "/v1/settings/business/profile")["settings"]["business"][
        "profile"]

    for body, code in (({"text": ""}, 131009), ({"text": "a" * 140}, 131009), ({}, 131008),
                       ({"about": "wrong key"}, 131008)):
        assert_on_premise_error(srv.call("PATCH", "/v1/settings/profile/about", body), code, 400)
    assert_on_premise_error(srv.call("PATCH", "/v1/settings/profile/about", data=b"{nope"), 100, 400)
    assert profile(srv)["about"] == "Set on Cloud"


ABOUT_TYPES: list[tuple[str, dict[str, Any]]] = [
    ("text not a string", {"text": 7}),
    ("an unknown key next to text", {"text": "{current}", "colour": "red"}),  # the current text: changes nothing
]


@pytest.mark.parametrize(("case", "body"), ABOUT_TYPES, ids=[c[0] for c in ABOUT_TYPES])
def test_on_premise_about_wrong_type_or_unknown_key_is_100(shared_server: Server, case: str,
                                                            body: dict[str, Any]) -> None:
    before = profile(shared_server)
    body = {k: before["about"] if v == "{current}" else v for k, v in body.items()}
    assert_on_premise_error(shared_server.call("PATCH", "/v1/settings/profile/about", body), 100, 400)
    assert profile(shared_server) == before


# --- health -------------------------------------------------------------------------------


def test_health_on_both_faces(shared_server: Server) -> None:
    number = shared_server.ok("GET", "/phone_number")
    health = shared_server.ok("GET", "/health_status")
    assert health["id"] == number["phone_number_id"]
    status = health["health_status"]
    assert status["can_send_message"] == "AVAILABLE"
    entities = {e["entity_type"]: e for e in status["entities"]}
    assert list(entities) == ["PHONE_NUMBER", "WABA", "BUSINESS", "APP"]
    assert entities["PHONE_NUMBER"]["id"] == number["phone_number_id"]
    assert all(e["can_send_message"] == "AVAILABLE" and e["id"] for e in entities.values())

    assert on_premise_ok(shared_server, "GET", "/v1/health") == {"health": {"gateway_status": "connected"}}

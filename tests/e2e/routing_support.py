"""Helpers for the routing, partner-API and key tests: numbers created through the
partner API, and questions to the server's database about where an event went.

Absence ("receiver X got nothing") is never proven by sleeping: every event's
deliveries are inserted in the same transaction as the event, so once an event
is stored its list of deliveries says exactly which URLs it will ever reach.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from .conftest import DEFAULT_ENV
from .support import Receiver, Reply, Server, ServerFactory, http, text_message, wait_until

PARTNER_KEY = "e2e-partner-key-3b8e91"
PARTNER_ID = "openwaba"
PARTNER_ENV: dict[str, str | None] = {"OPENWABA_PARTNER_API_KEY": PARTNER_KEY}
UNKNOWN_USER = "15559990001"  # no simulated user: a send to it ends in a `failed` status (131026)

_numbers = itertools.count(1000)


def fresh_phone() -> str:
    """A phone number no other test of this process used."""
    return f"+1555700{next(_numbers):04d}"


# --- the partner API --------------------------------------------------------------------


def partner(srv: Server, method: str, path: str, body: Any = None, *, key: str | None = PARTNER_KEY,
            partner_id: str = PARTNER_ID) -> Reply:
    headers = {"X-API-Key": key} if key is not None else {}
    return http(method, f"{srv.url}/api/v2/partners/{partner_id}{path}", json_body=body, headers=headers)


def partner_ok(srv: Server, method: str, path: str, body: Any = None, status: int = 200) -> Any:
    reply = partner(srv, method, path, body)
    assert reply.status == status, f"{method} {path} answered {reply.status}: {reply.body!r}"
    return reply.json()


def assert_meta_error(reply: Reply, status: int) -> dict[str, Any]:
    """A Partner API error: `{"meta": {"success": false, "http_code", "developer_message", "details"}}`."""
    assert reply.status == status, f"expected {status}, got {reply.status}: {reply.body!r}"
    meta: dict[str, Any] = reply.json()["meta"]
    assert meta["success"] is False
    assert meta["http_code"] == status
    assert isinstance(meta["developer_message"], str) and meta["developer_message"]
    assert isinstance(meta["details"], list)
    return meta


def assert_flat_error(reply: Reply, low: int = 400, high: int = 499) -> str:
    """A 360dialog-style error: 4xx with `{"error": "<non-empty string>"}` and nothing else."""
    assert low <= reply.status <= high, f"expected {low}..{high}, got {reply.status}: {reply.body!r}"
    body = reply.json()
    assert set(body) == {"error"}, body
    assert isinstance(body["error"], str) and body["error"], body
    return str(body["error"])


# --- numbers ------------------------------------------------------------------------------


@dataclass
class Number:
    """One channel (business number) and the key that acts as it."""

    srv: Server
    key: str
    id: str
    waba_id: str
    phone_number: str
    phone_number_id: str
    type: str = "cloud"
    mode: str = "sandbox"

    def call(self, method: str, path: str, body: Any = None) -> Reply:
        return self.srv.call(method, path, body, key=self.key)

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        reply = self.call(method, path, body)
        assert reply.status == 200, f"{method} {path} as +{self.phone_number} answered {reply.status}: {reply.body!r}"
        return reply.json()

    def set_webhook(self, url: str, headers: dict[str, str] | None = None) -> Any:
        return self.ok("POST", "/v1/configs/webhook", {"url": url, "headers": headers or {}})

    def set_waba_webhook(self, url: str, *, override_all: bool, headers: dict[str, str] | None = None) -> Any:
        return self.ok("POST", "/waba_webhook", {"url": url, "headers": headers or {}, "override_all": override_all})

    def send_text(self, to: str, text: str) -> str:
        return str(self.ok("POST", "/messages", text_message(to, text))["messages"][0]["id"])

    def user_says(self, wa_id: str, text: str) -> str:
        return str(self.ok("POST", f"/sandbox/users/{wa_id}/messages", {"text": text})["messages"][0]["id"])

    def snapshot(self) -> dict[str, Any]:
        """Everything this number's key can read about its webhook configuration."""
        result = {"webhook": self.ok("GET", "/v1/configs/webhook")}
        if self.type == "cloud":
            result["waba"] = self.ok("GET", "/waba_webhook")
            result["multi"] = self.ok("GET", "/multi_webhook")
        return result


def demo_number(srv: Server) -> Number:
    """The sandbox's seeded number (the one with simulated users), acting with `srv.api_key`."""
    assert srv.api_key
    number = srv.ok("GET", "/phone_number")
    health = srv.ok("GET", "/health_status")
    waba_id = next(e["id"] for e in health["health_status"]["entities"] if e["entity_type"] == "WABA")
    [row] = srv.query("SELECT id FROM channels WHERE phone_number_id = ?", number["phone_number_id"])
    return Number(srv, srv.api_key, str(row["id"]), str(waba_id), number["phone_number"], number["phone_number_id"])


def new_waba(srv: Server, name: str = "e2e WABA") -> str:
    waba = partner_ok(srv, "POST", "/wabas", {"name": name}, 201)
    assert waba["name"] == name
    return str(waba["id"])


def new_number(srv: Server, *, waba_id: str | None = None, phone: str | None = None, type: str = "cloud",
               mode: str = "sandbox", sandbox_users: list[str] | None = None) -> Number:
    """A channel created through the partner API, with its first API key."""
    waba_id = waba_id or new_waba(srv)
    phone = phone or fresh_phone()
    body: dict[str, Any] = {"waba_id": waba_id, "phone_number": phone, "type": type, "mode": mode}
    if sandbox_users is not None:
        body["sandbox_users"] = sandbox_users
    channel = partner_ok(srv, "POST", "/channels", body, 201)
    assert channel["waba_id"] == waba_id and channel["type"] == type and channel["mode"] == mode
    assert channel["phone_number"] == phone.lstrip("+")
    assert channel["connector"] == "sandbox"
    key = partner_ok(srv, "POST", f"/channels/{channel['id']}/api_keys", None, 201)
    assert key["id"] == channel["id"] and key["app_id"] == channel["phone_number_id"]
    return Number(srv, key["api_key"], channel["id"], waba_id, channel["phone_number"], channel["phone_number_id"],
                  type, mode)


# --- where events went ----------------------------------------------------------------------


def events_of(srv: Server, wamid: str) -> list[dict[str, Any]]:
    return srv.query("SELECT id, channel_id, kind, wamid FROM events WHERE wamid = ? ORDER BY created_at", wamid)


def wait_for_event(srv: Server, wamid: str, timeout: float = 10.0) -> str:
    """The id of the (single) event stored for `wamid` (a status or an inbound message)."""
    rows = wait_until(lambda: events_of(srv, wamid), timeout, f"an event for {wamid}")
    assert len(rows) == 1, rows
    return str(rows[0]["id"])


def routes_of(srv: Server, event_id: str) -> list[dict[str, Any]]:
    """The event's deliveries with their destination: kind, name, url, state, attempts, parent_id."""
    return srv.query(
        "SELECT d.id, d.state, d.attempts, d.parent_id, d.last_status, d.last_error, "
        "t.kind, t.name, t.url FROM deliveries d JOIN destinations t ON t.id = d.destination_id "
        "WHERE d.event_id = ? ORDER BY d.id", event_id,
    )


def urls_of(srv: Server, event_id: str) -> list[str]:
    return sorted(r["url"] for r in routes_of(srv, event_id))


def wait_for_routes(srv: Server, event_id: str, check: Any, what: str, timeout: float = 10.0) -> list[dict[str, Any]]:
    def probe() -> list[dict[str, Any]]:
        rows = routes_of(srv, event_id)
        return rows if check(rows) else []
    return wait_until(probe, timeout, what, lambda: f"deliveries now: {routes_of(srv, event_id)}")


def all_delivered(rows: list[dict[str, Any]]) -> bool:
    return bool(rows) and all(r["state"] == "delivered" for r in rows)


def got_event(receiver: Receiver, event_id: str) -> list[Any]:
    return [r for r in receiver.requests if r.webhook_id == event_id]


def wait_for_webhook(receiver: Receiver, event_id: str, count: int = 1, timeout: float = 10.0) -> list[Any]:
    return receiver.wait_for_count(lambda r: r.webhook_id == event_id, count, timeout, f"event {event_id}")


# --- a server for a whole module, with the partner API on ----------------------------------


def module_partner_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server (partner API enabled) for a module's tests that create their own numbers:
    the body of a module-scoped fixture (`yield from module_partner_server(tmp_path_factory)`)."""
    factory = ServerFactory(tmp_path_factory.mktemp("partner"), {**DEFAULT_ENV, **PARTNER_ENV})
    try:
        yield factory()
    finally:
        factory.close()

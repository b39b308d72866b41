"""End-to-end: which receivers an event reaches (phone-number webhook, WABA
webhook, `override_all`, multi-webhook fan-out), and the On-Premise format.

Every test runs the real server and real receivers on 127.0.0.1. Time only
moves through the manual clock (`POST /sandbox/clock`).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from .routing_support import (
    PARTNER_ENV,
    UNKNOWN_USER,
    Number,
    all_delivered,
    assert_flat_error,
    demo_number,
    got_event,
    module_partner_server,
    new_number,
    routes_of,
    urls_of,
    wait_for_event,
    wait_for_routes,
    wait_for_webhook,
)
from .support import ALICE, BRUNO, CHEN, HOST, KEY_HEADER, Receiver, Reply, Server, ServerFactory, free_port, http

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def partner_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from module_partner_server(tmp_path_factory)


def inbound(number: Number, wa_id: str, text: str) -> tuple[str, str]:
    """A simulated user writes to `number`; return (wamid, event id)."""
    wamid = number.user_says(wa_id, text)
    return wamid, wait_for_event(number.srv, wamid)


def failed_send(number: Number, text: str) -> tuple[str, str]:
    """`number` sends to someone who is not a simulated user: one `failed` status event."""
    wamid = number.send_text(UNKNOWN_USER, text)
    return wamid, wait_for_event(number.srv, wamid)


def delivered_only_to(srv: Server, event_id: str, *receivers: Receiver) -> None:
    """The event was delivered (200) to exactly these receivers, once each, and to nothing else."""
    rows = wait_for_routes(srv, event_id, all_delivered, f"event {event_id} delivered")
    assert sorted(r["url"] for r in rows) == sorted(rec.url for rec in receivers), rows
    for rec in receivers:
        assert len(got_event(rec, event_id)) == 1, rec.describe()


# 1. phone-number webhook, WABA webhook, override_all ------------------------------------------


def test_routing_between_phone_and_waba_webhooks(server: ServerFactory) -> None:
    srv = server(PARTNER_ENV)
    phone_rx, waba_rx = Receiver(path="/phone"), Receiver(path="/waba")
    phone_rx.start()
    waba_rx.start()
    try:
        demo = demo_number(srv)

        # (a) only a phone-number webhook: the event goes there.
        demo.set_webhook(phone_rx.url)
        _, event = inbound(demo, ALICE, "phone level only")
        delivered_only_to(srv, event, phone_rx)
        [got] = got_event(phone_rx, event)
        assert got.json["entry"][0]["id"] == demo.waba_id

        # (b) a WABA webhook without override_all does not take over a number that has its own.
        assert demo.ok("GET", "/waba_webhook")["url"] == ""
        answer = demo.set_waba_webhook(waba_rx.url, override_all=False, headers={"X-Waba": "yes"})
        assert answer == {"message": f"Webhook will be set for waba_id: {demo.waba_id}"}
        config = demo.ok("GET", "/waba_webhook")
        assert config["url"] == waba_rx.url and config["headers"] == {"X-Waba": "yes"}
        assert config["override_all"] is False
        assert config["waba_id"] == int(demo.waba_id) and isinstance(config["waba_id"], int)
        assert config["numbers_on_this_waba"] == [demo.phone_number_id]
        _, event = inbound(demo, BRUNO, "phone level still wins")
        delivered_only_to(srv, event, phone_rx)
        assert waba_rx.requests == []

        # (c) a second Cloud number of the same WABA, without a webhook of its own, uses the WABA's.
        second = new_number(srv, waba_id=demo.waba_id)
        config = second.ok("GET", "/waba_webhook")
        assert config["url"] == waba_rx.url and config["waba_id"] == int(demo.waba_id)
        assert sorted(config["numbers_on_this_waba"]) == sorted([demo.phone_number_id, second.phone_number_id])
        assert all(isinstance(n, str) for n in config["numbers_on_this_waba"])
        wamid, event = failed_send(second, "to the WABA webhook")
        delivered_only_to(srv, event, waba_rx)
        [got] = got_event(waba_rx, event)
        assert got.headers.get("x-waba") == "yes", "the WABA webhook's headers are sent"
        assert got.json["object"] == "whatsapp_business_account"
        assert got.json["entry"][0]["id"] == demo.waba_id
        assert got.value["metadata"]["phone_number_id"] == second.phone_number_id
        assert got.status is not None and got.status["id"] == wamid and got.status["status"] == "failed"
        assert got.status["errors"][0]["code"] == 131026

        # (d) override_all=true: the WABA webhook wins over the phone-number webhook.
        demo.set_waba_webhook(waba_rx.url, override_all=True)
        assert demo.ok("GET", "/waba_webhook")["override_all"] is True
        assert demo.ok("GET", "/v1/configs/webhook")["url"] == phone_rx.url, "the number's own webhook stays set"
        before = len(phone_rx.requests)
        _, event = inbound(demo, CHEN, "override all")
        delivered_only_to(srv, event, waba_rx)
        assert got_event(waba_rx, event)[0].json["entry"][0]["id"] == demo.waba_id
        _, event2 = failed_send(second, "still the WABA webhook")
        delivered_only_to(srv, event2, waba_rx)
        assert len(phone_rx.requests) == before

        # (e) removing the WABA webhook gives the number back its own webhook.
        demo.ok("POST", "/waba_webhook", {"url": ""})
        assert demo.ok("GET", "/waba_webhook")["url"] == ""
        _, event = inbound(demo, ALICE, "back to the phone webhook")
        delivered_only_to(srv, event, phone_rx)
        _, event = failed_send(second, "nowhere to go")
        assert routes_of(srv, event) == [], "no webhook at all: the event is stored but posted nowhere"
    finally:
        phone_rx.stop()
        waba_rx.stop()


def test_waba_webhook_does_not_reach_numbers_of_another_waba(server: ServerFactory, receiver: Receiver) -> None:
    srv = server(PARTNER_ENV)
    demo = demo_number(srv)
    other = new_number(srv)  # a WABA of its own
    assert other.waba_id != demo.waba_id
    demo.set_waba_webhook(receiver.url, override_all=True)
    assert other.ok("GET", "/waba_webhook")["url"] == ""
    _, event = failed_send(other, "not for the demo WABA")
    assert routes_of(srv, event) == []
    _, event = inbound(demo, ALICE, "for the demo WABA")
    delivered_only_to(srv, event, receiver)


def test_on_premise_number_ignores_the_waba_webhook(server: ServerFactory) -> None:
    """WABA webhooks are for Cloud numbers: an On-Premise number of the WABA keeps its own routing."""
    srv = server(PARTNER_ENV)
    waba_rx, own_rx = Receiver(path="/waba"), Receiver(path="/own")
    waba_rx.start()
    own_rx.start()
    try:
        demo = demo_number(srv)
        legacy = new_number(srv, waba_id=demo.waba_id, type="on_premise")
        demo.set_waba_webhook(waba_rx.url, override_all=True)
        _, event = failed_send(legacy, "no webhook of its own")
        assert routes_of(srv, event) == []
        legacy.set_webhook(own_rx.url)
        _, event = failed_send(legacy, "its own webhook")
        delivered_only_to(srv, event, own_rx)
        assert waba_rx.requests == []
    finally:
        waba_rx.stop()
        own_rx.stop()


# 2. multi-webhook fan-out ----------------------------------------------------------------------


def _receivers(count: int, prefix: str) -> list[Receiver]:
    found = [Receiver(path=f"/{prefix}{i}") for i in range(count)]
    for rec in found:
        rec.start()
    return found


def _destinations(receivers: list[Receiver]) -> list[dict[str, Any]]:
    return [{"name": f"dest-{i}", "url": rec.url, "headers": {"X-Dest": str(i)}} for i, rec in enumerate(receivers)]


def test_multi_webhook_extras_wait_for_the_main_webhook(server: ServerFactory, receiver: Receiver) -> None:
    srv = server()
    extras = _receivers(3, "extra")
    try:
        demo = demo_number(srv)
        demo.set_webhook(receiver.url)
        answer = demo.ok("POST", "/multi_webhook", {"enabled": True, "destinations": _destinations(extras)})
        assert isinstance(answer["message"], str)
        config = demo.ok("GET", "/multi_webhook")
        assert config["enabled"] is True and config["fanout"] == "after_main"
        assert config["destinations"] == _destinations(extras)

        receiver.respond_with(500)  # the main webhook fails once, then answers 200
        _, event = inbound(demo, ALICE, "fan me out")
        [first] = wait_for_webhook(receiver, event)
        assert first.answered == 500
        rows = wait_for_routes(srv, event, lambda rows: any(r["kind"] == "main" and r["attempts"] == 1 for r in rows),
                               "the failed main attempt to be recorded")
        main_row = next(r for r in rows if r["kind"] == "main")
        assert main_row["state"] == "pending" and main_row["last_status"] == 500
        held = [r for r in rows if r["kind"] == "multi"]
        assert len(held) == 3
        assert all(r["state"] == "held" and r["parent_id"] == main_row["id"] for r in held), rows
        time.sleep(0.5)  # give a wrong implementation a chance to post early
        assert [got_event(rec, event) for rec in extras] == [[], [], []]

        srv.advance_clock(5)
        rows = wait_for_routes(srv, event, lambda rows: len(rows) == 4 and all_delivered(rows), "all four delivered")
        assert all(r["attempts"] == 1 for r in rows if r["kind"] == "multi")
        main_requests = got_event(receiver, event)
        assert [r.answered for r in main_requests] == [500, 200]
        bodies = {r.body for r in main_requests}
        for i, rec in enumerate(extras):
            [got] = got_event(rec, event)  # exactly once
            assert got.webhook_id == event == first.webhook_id
            assert got.headers.get("x-dest") == str(i)
            assert got.body in bodies, "every destination gets the same payload"
            assert got.at >= main_requests[1].at, "an extra is posted only after the main webhook's 200"

        # A barrier event: nothing further arrives for the first one.
        _, barrier = inbound(demo, BRUNO, "barrier")
        wait_for_routes(srv, barrier, lambda rows: len(rows) == 4 and all_delivered(rows), "barrier delivered")
        assert [len(got_event(rec, event)) for rec in extras] == [1, 1, 1]
    finally:
        for rec in extras:
            rec.stop()


def test_multi_webhook_independent_fanout_does_not_wait(server: ServerFactory, receiver: Receiver) -> None:
    srv = server()
    extras = _receivers(3, "indep")
    try:
        demo = demo_number(srv)
        demo.set_webhook(receiver.url)
        demo.ok("POST", "/multi_webhook", {"enabled": True, "destinations": _destinations(extras)})
        # Already enabled: a POST without destinations may still change the fan-out mode.
        demo.ok("POST", "/multi_webhook", {"enabled": True, "fanout": "independent"})
        config = demo.ok("GET", "/multi_webhook")
        assert config["fanout"] == "independent" and len(config["destinations"]) == 3

        receiver.default_status = 500  # the main webhook keeps failing
        _, event = inbound(demo, ALICE, "independent")
        for rec in extras:
            [got] = wait_for_webhook(rec, event)
            assert got.answered == 200 and got.webhook_id == event
        rows = wait_for_routes(srv, event, lambda rows: sum(r["state"] == "delivered" for r in rows) == 3,
                               "the three extras delivered")
        main_row = next(r for r in rows if r["kind"] == "main")
        assert main_row["state"] == "pending" and main_row["last_status"] == 500
        assert all(r["parent_id"] is None for r in rows)
        assert all(got.answered == 500 for got in got_event(receiver, event))
    finally:
        for rec in extras:
            rec.stop()


def test_multi_webhook_extras_are_dead_lettered_when_the_main_webhook_never_succeeds(
    server: ServerFactory, receiver: Receiver
) -> None:
    srv = server({"OPENWABA_RETRY_HORIZON": "60"})
    extras = _receivers(2, "never")
    try:
        demo = demo_number(srv)
        demo.set_webhook(receiver.url)
        demo.ok("POST", "/multi_webhook", {"enabled": True, "destinations": _destinations(extras)})
        receiver.default_status = 503
        _, event = inbound(demo, ALICE, "main is down for good")
        wait_for_routes(srv, event, lambda rows: any(r["kind"] == "main" and r["attempts"] == 1 for r in rows),
                        "the first failed attempt")
        srv.advance_clock(61)  # past the retry horizon: one last attempt, then dead
        rows = wait_for_routes(srv, event, lambda rows: all(r["state"] == "dead" for r in rows), "all dead")
        assert len(rows) == 3
        assert [got_event(rec, event) for rec in extras] == [[], []]
    finally:
        for rec in extras:
            rec.stop()


@pytest.mark.parametrize("how", ["empty-url", "key-rotation"])
def test_removing_the_main_webhook_dead_letters_held_extras(server: ServerFactory, receiver: Receiver,
                                                           how: str) -> None:
    srv = server(PARTNER_ENV)
    extras = _receivers(2, "orphan")
    try:
        demo = demo_number(srv)
        demo.set_webhook(receiver.url)
        demo.ok("POST", "/multi_webhook", {"enabled": True, "destinations": _destinations(extras)})
        receiver.default_status = 500
        _, event = inbound(demo, ALICE, "held behind a failing main webhook")
        wait_for_routes(srv, event, lambda rows: any(r["kind"] == "main" and r["attempts"] == 1 for r in rows),
                        "the first failed attempt")
        if how == "empty-url":
            demo.set_webhook("")
        else:
            reply = http("POST", f"{srv.url}/api/v2/partners/openwaba/channels/{demo.id}/api_keys",
                         headers={"X-API-Key": PARTNER_ENV["OPENWABA_PARTNER_API_KEY"] or ""})
            assert reply.status == 201, reply.body
            demo.key = reply.json()["api_key"]
        # The main webhook can no longer answer 200, so the extras held for it are dead-lettered at once.
        rows = wait_for_routes(srv, event, lambda rows: all(r["state"] == "dead" for r in rows), "all dead",
                               timeout=3)
        assert len(rows) == 3
        demo.ok("POST", "/sandbox/clock", {"advance_seconds": 3600})
        _, barrier = inbound(demo, BRUNO, "barrier")
        # With no primary left, later events go to the extras at once; the held event never does.
        delivered_only_to(srv, barrier, *extras)
        assert [got_event(rec, event) for rec in extras] == [[], []]
    finally:
        for rec in extras:
            rec.stop()


# 8. On-Premise numbers get the flat format -----------------------------------------------------


def test_on_premise_number_receives_the_flat_format(server: ServerFactory, receiver: Receiver) -> None:
    srv = server(PARTNER_ENV)
    legacy = new_number(srv, type="on_premise")
    assert legacy.set_webhook(receiver.url, {"Authorization": "Basic b3A6cHc="})["url"] == receiver.url
    wamid, event = failed_send(legacy, "to nobody")
    [got] = wait_for_webhook(receiver, event)
    body = got.json
    assert "object" not in body and "entry" not in body, body
    assert set(body) == {"statuses"}, body
    [status] = body["statuses"]
    assert status["id"] == wamid and status["status"] == "failed"
    assert status["recipient_id"] == UNKNOWN_USER and status["message"] == {"recipient_id": UNKNOWN_USER}
    assert status["type"] == "message"
    assert isinstance(status["timestamp"], str) and status["timestamp"].isdigit()
    [error] = status["errors"]
    assert error["code"] == 1013, "131026 is rendered with its On-Premise code"
    assert isinstance(error["title"], str) and error["title"]
    assert set(error) <= {"code", "title", "details", "href"}
    assert got.headers.get("authorization") == "Basic b3A6cHc="
    assert got.webhook_id == event


def test_cloud_and_on_premise_numbers_of_one_waba_each_get_their_format(
    server: ServerFactory, receiver: Receiver
) -> None:
    srv = server(PARTNER_ENV)
    demo = demo_number(srv)
    cloud = new_number(srv, waba_id=demo.waba_id, type="cloud")
    legacy = new_number(srv, waba_id=demo.waba_id, type="on_premise")
    cloud.set_webhook(receiver.url)
    legacy.set_webhook(receiver.url)
    _, cloud_event = failed_send(cloud, "cloud")
    _, legacy_event = failed_send(legacy, "legacy")
    [cloud_got] = wait_for_webhook(receiver, cloud_event)
    [legacy_got] = wait_for_webhook(receiver, legacy_event)
    assert cloud_got.json["object"] == "whatsapp_business_account"
    assert cloud_got.status is not None and cloud_got.status["errors"][0]["code"] == 131026
    assert "entry" not in legacy_got.json and legacy_got.json["statuses"][0]["errors"][0]["code"] == 1013


# Delivery: a webhook answer other than 200 is a failure, redirects included ----------------------


class _Redirector:
    """Answers every POST with 307 to `target` (a redirect preserves method and body)."""

    def __init__(self, target: str) -> None:
        self.port = free_port()
        self.hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.hits += 1
                self.send_response(307)
                self.send_header("Location", target)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.httpd = ThreadingHTTPServer((HOST, self.port), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/hook"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_a_redirect_is_a_failed_attempt_and_is_not_followed(server: ServerFactory, receiver: Receiver) -> None:
    redirector = _Redirector(receiver.url)
    try:
        srv = server()
        demo = demo_number(srv)
        demo.set_webhook(redirector.url)
        _, event = inbound(demo, ALICE, "follow me")
        [row] = wait_for_routes(srv, event, lambda rows: rows[0]["attempts"] >= 1, "the first attempt")
        assert redirector.hits == 1
        assert row["state"] == "pending" and row["last_status"] == 307, row
        assert receiver.requests == [], "the redirect target must not receive the webhook"
    finally:
        redirector.close()


def test_each_event_is_posted_as_one_json_document(server: ServerFactory, receiver: Receiver) -> None:
    """Sanity for the helpers above: one event, one POST, JSON body, webhook-id header."""
    srv = server()
    demo = demo_number(srv)
    demo.set_webhook(receiver.url)
    wamid, event = inbound(demo, ALICE, "hello")
    [got] = wait_for_webhook(receiver, event)
    assert got.method == "POST" and got.path == "/webhook"
    assert got.headers["content-type"].startswith("application/json")
    assert json.loads(got.body) == got.json
    assert got.message is not None and got.message["id"] == wamid
    assert urls_of(srv, event) == [receiver.url]


# 3. every multi-webhook breach is a 4xx {"error": "..."} and changes nothing -------------------

U = "http://127.0.0.1:9/hook"  # sandbox numbers accept it; nothing is ever posted in these tests


def _dest(name: str, url: str = U, headers: Any = None) -> dict[str, Any]:
    return {"name": name, "url": url, "headers": headers if headers is not None else {"X-Name": name}}


SETUPS: dict[str, list[dict[str, Any]] | None] = {
    "fresh": None,  # multi-webhook never enabled
    "one": [_dest("A")],
    "full": [_dest("A"), _dest("a"), _dest("B")],  # "A" and "a" are different names
}

# (id, setup, method, path, body, status)
BREACHES: list[tuple[str, str, str, str, Any, int]] = [
    ("put-before-enabling", "fresh", "PUT", "/multi_webhook", {"destinations": [_dest("X")]}, 409),
    ("patch-before-enabling", "fresh", "PATCH", "/multi_webhook", {"name": "X", "url": U}, 409),
    ("delete-before-enabling", "fresh", "DELETE", "/multi_webhook/X", None, 409),
    ("patch-unknown-name", "one", "PATCH", "/multi_webhook", {"name": "nope", "url": U}, 404),
    ("patch-name-other-case", "one", "PATCH", "/multi_webhook", {"name": "a", "url": U}, 404),
    ("delete-unknown-name", "one", "DELETE", "/multi_webhook/nope", None, 404),
    ("delete-name-other-case", "one", "DELETE", "/multi_webhook/a", None, 404),
    ("duplicate-name", "one", "PUT", "/multi_webhook", {"destinations": [_dest("A")]}, 409),
    ("duplicate-in-one-put", "one", "PUT", "/multi_webhook", {"destinations": [_dest("B"), _dest("B")]}, 409),
    ("duplicate-in-enable", "fresh", "POST", "/multi_webhook",
     {"enabled": True, "destinations": [_dest("C"), _dest("C")]}, 409),
    ("enable-again-with-destinations", "one", "POST", "/multi_webhook",
     {"enabled": True, "destinations": [_dest("B")]}, 409),
    ("fourth-destination", "full", "PUT", "/multi_webhook", {"destinations": [_dest("C")]}, 400),
    ("four-at-once", "fresh", "POST", "/multi_webhook",
     {"enabled": True, "destinations": [_dest(n) for n in "WXYZ"]}, 400),
    ("two-over-the-limit", "one", "PUT", "/multi_webhook", {"destinations": [_dest(n) for n in "WXY"]}, 400),
    ("bad-url", "one", "PUT", "/multi_webhook", {"destinations": [_dest("B", "not a url")]}, 400),
    ("bad-url-scheme", "one", "PUT", "/multi_webhook", {"destinations": [_dest("B", "ftp://example.com/x")]}, 400),
    ("bad-url-in-enable", "fresh", "POST", "/multi_webhook",
     {"enabled": True, "destinations": [_dest("B", "example.com/hook")]}, 400),
    ("url-not-a-string", "one", "PUT", "/multi_webhook", {"destinations": [_dest("B", 42)]}, 400),  # type: ignore[arg-type]
    ("bad-url-patch", "one", "PATCH", "/multi_webhook", {"name": "A", "url": "mailto:ops@example.com"}, 400),
    ("empty-url-patch", "one", "PATCH", "/multi_webhook", {"name": "A", "url": ""}, 400),
    ("headers-a-list", "one", "PUT", "/multi_webhook", {"destinations": [_dest("B", headers=["X: 1"])]}, 400),
    ("headers-a-string", "one", "PUT", "/multi_webhook", {"destinations": [_dest("B", headers="X: 1")]}, 400),
    ("header-value-not-a-string", "one", "PUT", "/multi_webhook", {"destinations": [_dest("B", headers={"X": 1})]},
     400),
    ("headers-not-a-map-patch", "one", "PATCH", "/multi_webhook", {"name": "A", "headers": ["X: 1"]}, 400),
    ("headers-not-a-map-enable", "fresh", "POST", "/multi_webhook",
     {"enabled": True, "destinations": [_dest("B", headers=[])]}, 400),
    ("enabled-a-string", "fresh", "POST", "/multi_webhook", {"enabled": "true"}, 400),
    ("enabled-a-number", "fresh", "POST", "/multi_webhook", {"enabled": 1}, 400),
    ("enabled-missing", "fresh", "POST", "/multi_webhook", {"destinations": [_dest("B")]}, 400),
    ("enabled-null", "one", "POST", "/multi_webhook", {"enabled": None}, 400),
    ("destinations-an-object", "fresh", "POST", "/multi_webhook", {"enabled": True, "destinations": _dest("B")}, 400),
    ("destination-not-an-object", "one", "PUT", "/multi_webhook", {"destinations": ["http://example.com"]}, 400),
    ("destination-without-name", "one", "PUT", "/multi_webhook", {"destinations": [{"url": U}]}, 400),
    ("destination-blank-name", "one", "PUT", "/multi_webhook", {"destinations": [_dest("  ")]}, 400),
    ("put-nothing", "one", "PUT", "/multi_webhook", {"destinations": []}, 400),
    ("put-no-destinations-key", "one", "PUT", "/multi_webhook", {}, 400),
    ("patch-nothing-to-change", "one", "PATCH", "/multi_webhook", {"name": "A"}, 400),
    ("patch-without-name", "one", "PATCH", "/multi_webhook", {"url": U}, 400),
    ("bad-fanout", "one", "POST", "/multi_webhook", {"enabled": True, "fanout": "parallel"}, 400),
    ("body-not-json", "one", "PUT", "/multi_webhook", b'{"destinations": [', 400),
    ("body-not-an-object", "one", "PUT", "/multi_webhook", [_dest("B")], 400),
]


def _prepared(srv: Server, setup: str) -> Number:
    number = new_number(srv)
    destinations = SETUPS[setup]
    if destinations is not None:
        number.ok("POST", "/multi_webhook", {"enabled": True, "destinations": destinations})
    return number


@pytest.mark.parametrize(("setup", "method", "path", "body", "status"),
                         [pytest.param(*case[1:], id=case[0]) for case in BREACHES])
def test_multi_webhook_breach(partner_server: Server, setup: str, method: str, path: str, body: Any,
                              status: int) -> None:
    number = _prepared(partner_server, setup)
    before = number.snapshot()
    if isinstance(body, bytes):
        reply = http(method, partner_server.url + path, data=body,
                     headers={KEY_HEADER: number.key, "Content-Type": "application/json"})
    else:
        reply = number.call(method, path, body)
    message = assert_flat_error(reply)
    assert reply.status == status, f"{reply.status}: {message}"
    assert number.snapshot() == before, "a refused request changes nothing"


def test_enabling_again_with_destinations_says_to_use_put(partner_server: Server) -> None:
    number = _prepared(partner_server, "one")
    reply = number.call("POST", "/multi_webhook", {"enabled": True, "destinations": [_dest("B")]})
    assert "PUT" in assert_flat_error(reply)


def test_multi_webhook_limit_follows_the_setting(server: ServerFactory) -> None:
    srv = server({**PARTNER_ENV, "OPENWABA_MULTI_WEBHOOK_MAX": "1"})
    number = new_number(srv)
    number.ok("POST", "/multi_webhook", {"enabled": True, "destinations": [_dest("only")]})
    message = assert_flat_error(number.call("PUT", "/multi_webhook", {"destinations": [_dest("second")]}))
    assert "1" in message


def test_multi_webhook_names_are_case_sensitive(partner_server: Server) -> None:
    number = _prepared(partner_server, "one")
    number.ok("PUT", "/multi_webhook", {"destinations": [_dest("a", "http://127.0.0.1:9/lower")]})
    names = [d["name"] for d in number.ok("GET", "/multi_webhook")["destinations"]]
    assert names == ["A", "a"]

    number.ok("PATCH", "/multi_webhook", {"name": "a", "url": "http://127.0.0.1:9/lower-2", "headers": {"K": "v"}})
    by_name = {d["name"]: d for d in number.ok("GET", "/multi_webhook")["destinations"]}
    assert by_name["a"] == {"name": "a", "url": "http://127.0.0.1:9/lower-2", "headers": {"K": "v"}}
    assert by_name["A"] == _dest("A"), "PATCH changes only the destination of exactly that name"

    number.ok("PATCH", "/multi_webhook", {"name": "A", "headers": {}})  # headers only: url stays
    by_name = {d["name"]: d for d in number.ok("GET", "/multi_webhook")["destinations"]}
    assert by_name["A"] == {"name": "A", "url": U, "headers": {}}

    number.ok("DELETE", "/multi_webhook/A")
    assert [d["name"] for d in number.ok("GET", "/multi_webhook")["destinations"]] == ["a"]
    # A deleted name is free again, and a freed slot can be used.
    number.ok("PUT", "/multi_webhook", {"destinations": [_dest("A"), _dest("B")]})
    assert [d["name"] for d in number.ok("GET", "/multi_webhook")["destinations"]] == ["a", "A", "B"]

    # Disabling removes the destinations; enabling again starts empty.
    number.ok("POST", "/multi_webhook", {"enabled": False})
    assert number.ok("GET", "/multi_webhook") == {"enabled": False, "fanout": "after_main", "destinations": []}
    number.ok("POST", "/multi_webhook", {"enabled": True})
    assert number.ok("GET", "/multi_webhook")["destinations"] == []


ON_PREMISE_REFUSED = [
    ("GET", "/multi_webhook", None),
    ("POST", "/multi_webhook", {"enabled": True, "destinations": [_dest("A")]}),
    ("POST", "/multi_webhook", {"enabled": False}),
    ("PUT", "/multi_webhook", {"destinations": [_dest("A")]}),
    ("PATCH", "/multi_webhook", {"name": "A", "url": U}),
    ("DELETE", "/multi_webhook/A", None),
    ("GET", "/waba_webhook", None),
    ("POST", "/waba_webhook", {"url": U, "override_all": True}),
]


@pytest.mark.parametrize(("method", "path", "body"), ON_PREMISE_REFUSED,
                         ids=[f"{m} {p} {i}" for i, (m, p, _) in enumerate(ON_PREMISE_REFUSED)])
def test_waba_and_multi_webhooks_are_cloud_only(partner_server: Server, method: str, path: str, body: Any) -> None:
    legacy = new_number(partner_server, type="on_premise")
    before = legacy.snapshot()
    reply = legacy.call(method, path, body)
    assert reply.status == 400, reply.body
    assert "Cloud" in assert_flat_error(reply)
    assert legacy.snapshot() == before
    # The number's own webhook works as usual.
    assert legacy.set_webhook(U) == {"url": U, "headers": {}}


WEBHOOK_BREACHES = [
    ("url-not-a-string", "/v1/configs/webhook", {"url": 5}),
    ("headers-a-list", "/v1/configs/webhook", {"url": U, "headers": ["Authorization: x"]}),
    ("header-value-a-number", "/v1/configs/webhook", {"url": U, "headers": {"X": 1}}),
    ("relative-url", "/v1/configs/webhook", {"url": "/hook"}),
    ("waba-override-not-bool", "/waba_webhook", {"url": U, "override_all": "yes"}),
    ("waba-headers-a-string", "/waba_webhook", {"url": U, "headers": "x"}),
    ("waba-bad-url", "/waba_webhook", {"url": "gopher://x"}),
]


@pytest.mark.parametrize(("path", "body"), [pytest.param(*c[1:], id=c[0]) for c in WEBHOOK_BREACHES])
def test_webhook_config_breach(partner_server: Server, path: str, body: Any) -> None:
    number = new_number(partner_server)
    number.set_webhook("http://127.0.0.1:9/before", {"K": "v"})
    number.set_waba_webhook("http://127.0.0.1:9/waba-before", override_all=False)
    before = number.snapshot()
    assert_flat_error(number.call("POST", path, body), 400, 400)
    assert number.snapshot() == before


@pytest.mark.parametrize("headers", [{"X-Bad": "a\r\nX-Injected: 1"}, {"Bad Name": "v"}, {"": "v"}],
                         ids=["crlf-in-value", "space-in-name", "empty-name"])
def test_unsendable_headers_are_refused(partner_server: Server, headers: dict[str, str]) -> None:
    number = new_number(partner_server)
    assert_flat_error(number.call("POST", "/v1/configs/webhook", {"url": U, "headers": headers}), 400, 400)


# 6. webhook URL rules: production numbers follow Cloud rules and the SSRF guard ------------------

PUBLIC = "https://93.184.216.34/hook"

# (url, the rule a production number names when refusing it, or None: accepted)
URL_RULES: list[tuple[str, str | None]] = [
    ("http://93.184.216.34/hook", "https"),
    ("https://my_hook.example.com/hook", "underscore"),
    ("https://subdomain.your_webhook.example.com:3000/hook", "underscore"),
    ("https://93.184.216.34:8443/hook", "port"),
    ("https://93.184.216.34:443/hook", "port"),
    ("https://10.0.0.1/hook", "private"),
    ("https://192.168.1.20/hook", "private"),
    ("https://127.0.0.1/hook", "private"),
    ("https://localhost/hook", "private"),
    ("https://[::1]/hook", "private"),
    ("https://[::ffff:127.0.0.1]/hook", "private"),
    ("https://169.254.169.254/latest/meta-data", "private"),
    ("https://0.0.0.0/hook", "private"),
    ("https://nohost.invalid/hook", "resolved"),
    (PUBLIC, None),
    ("https://93.184.216.34/my_hook?token=a_b", None),  # '_' only matters in the host
    ("HTTPS://93.184.216.34/upper", None),
]

ENDPOINTS = ["main", "waba", "multi"]


def _set(number: Number, endpoint: str, url: str) -> Reply:
    if endpoint == "main":
        return number.call("POST", "/v1/configs/webhook", {"url": url})
    if endpoint == "waba":
        return number.call("POST", "/waba_webhook", {"url": url, "override_all": False})
    return number.call("PATCH", "/multi_webhook", {"name": "probe", "url": url})


def _current(number: Number, endpoint: str) -> str:
    if endpoint == "main":
        return str(number.ok("GET", "/v1/configs/webhook")["url"])
    if endpoint == "waba":
        return str(number.ok("GET", "/waba_webhook")["url"])
    [probe] = number.ok("GET", "/multi_webhook")["destinations"]
    return str(probe["url"])


@pytest.fixture(scope="module")
def url_numbers(partner_server: Server) -> dict[str, Number]:
    """A production and a sandbox Cloud number, each with every kind of webhook set to PUBLIC."""
    numbers = {mode: new_number(partner_server, mode=mode) for mode in ("production", "sandbox")}
    for number in numbers.values():
        number.set_webhook(PUBLIC)
        number.set_waba_webhook(PUBLIC, override_all=False)
        number.ok("POST", "/multi_webhook", {"enabled": True, "destinations": [_dest("probe", PUBLIC)]})
    return numbers


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize(("url", "rule"), URL_RULES, ids=[u for u, _ in URL_RULES])
def test_production_number_url_rules(url_numbers: dict[str, Number], endpoint: str, url: str,
                                     rule: str | None) -> None:
    number = url_numbers["production"]
    reply = _set(number, endpoint, url)
    try:
        if rule is None:
            assert reply.status == 200, reply.body
            assert _current(number, endpoint) == url
        else:
            message = assert_flat_error(reply, 400, 400)
            assert rule in message.lower(), message
            assert url in message, "the error names the refused URL"
            assert _current(number, endpoint) == PUBLIC, "a refused URL changes nothing"
    finally:
        _set(number, endpoint, PUBLIC)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("url", [u for u, _ in URL_RULES])
def test_sandbox_number_accepts_every_http_url(url_numbers: dict[str, Number], endpoint: str, url: str) -> None:
    number = url_numbers["sandbox"]
    reply = _set(number, endpoint, url)
    try:
        assert reply.status == 200, reply.body
        assert _current(number, endpoint) == url
    finally:
        _set(number, endpoint, PUBLIC)


def test_production_rules_apply_to_new_multi_destinations(url_numbers: dict[str, Number]) -> None:
    number = url_numbers["production"]
    for url in ("http://93.184.216.34/x", "https://10.0.0.1/x", "https://93.184.216.34:8080/x"):
        assert_flat_error(number.call("PUT", "/multi_webhook", {"destinations": [_dest("new", url)]}), 400, 400)
    assert [d["name"] for d in number.ok("GET", "/multi_webhook")["destinations"]] == ["probe"]


def test_ssrf_guard_can_be_switched_off(server: ServerFactory) -> None:
    srv = server({**PARTNER_ENV, "OPENWABA_SSRF_GUARD": "false"})
    number = new_number(srv, mode="production")
    for url in ("https://10.0.0.1/hook", "https://127.0.0.1/hook", "https://nohost.invalid/hook"):
        assert number.set_webhook(url)["url"] == url
    for url, rule in (("http://10.0.0.1/hook", "https"), ("https://a_b.example.com/", "underscore"),
                      ("https://10.0.0.1:8443/", "port")):
        assert rule in assert_flat_error(number.call("POST", "/v1/configs/webhook", {"url": url})).lower()


def test_sandbox_number_cannot_route_a_production_numbers_events_to_a_private_url(
    server: ServerFactory, receiver: Receiver
) -> None:
    srv = server(PARTNER_ENV)
    production = new_number(srv, mode="production")
    sandbox = new_number(srv, waba_id=production.waba_id, mode="sandbox")
    reply = sandbox.call("POST", "/waba_webhook", {"url": receiver.url, "override_all": True})
    if reply.status == 200:  # accepted: then at least the production number must not use it
        _, event = failed_send(production, "must not reach a loopback address")
        assert receiver.url not in urls_of(srv, event)
    else:
        assert_flat_error(reply, 400, 400)

"""The console's server side over real HTTP, without a browser: the page and its
static files, `GET /console/session` (who a key is) and `GET /console/stream`."""

from __future__ import annotations

import signal
import subprocess

import pytest

from e2e.routing_support import PARTNER_ID, PARTNER_KEY, Number
from e2e.support import KEY_HEADER, Reply, Server, http, text_message

from .support import EventStream, number_with_user

pytestmark = pytest.mark.e2e

CHANNEL_HEADER = "X-Openwaba-Channel"


def get(srv: Server, path: str, headers: dict[str, str] | None = None) -> Reply:
    return http("GET", srv.url + path, headers=headers or {})


# --- the page ---------------------------------------------------------------------------------


def test_the_page_is_served_without_caching(console_server: Server) -> None:
    page = get(console_server, "/console")
    assert page.status == 200, page.body
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-cache"
    assert b"/console/static/app.js" in page.body
    assert "script-src 'self'" in page.headers["content-security-policy"]
    slash = get(console_server, "/console/")
    assert slash.status == 200 and slash.body == page.body  # redirected to /console


@pytest.mark.parametrize(("name", "kind"), [("app.js", "text/javascript"), ("app.css", "text/css"),
                                            ("index.html", "text/html")])
def test_the_static_files_are_served_with_their_types(console_server: Server, name: str, kind: str) -> None:
    reply = get(console_server, f"/console/static/{name}")
    assert reply.status == 200, reply.body
    assert reply.headers["content-type"].startswith(kind)
    assert reply.headers["x-content-type-options"] == "nosniff"
    again = get(console_server, f"/console/static/{name}", {"If-None-Match": reply.headers["etag"]})
    assert again.status == 304


@pytest.mark.parametrize("path", [
    "/console/static/missing.js",
    "/console/static/..%2F..%2Fgateway.py",
    "/console/static/%2e%2e",
    "/console/static/..%5capp.py",
    "/console/static/.hidden",
    "/console/static/",
    "/console/static/app.js/x",
])
def test_nothing_else_is_served(console_server: Server, path: str) -> None:
    reply = get(console_server, path)
    assert reply.status == 404, (path, reply.status, reply.body[:200])
    assert b"import" not in reply.body


# --- who a key is ---------------------------------------------------------------------------


def test_a_numbers_key_is_that_number(console_server: Server) -> None:
    number, _ = number_with_user(console_server)
    reply = get(console_server, "/console/session", {KEY_HEADER: number.key})
    assert reply.status == 200, reply.body
    assert reply.json() == {
        "channel": {"id": number.id, "phone_number": number.phone_number, "phone_number_id": number.phone_number_id,
                    "waba_id": number.waba_id, "connector": "sandbox", "sandbox": True, "type": "cloud",
                    "mode": "sandbox"},
        "partner_id": None,  # a number's key does not reach the partner API
    }


def test_the_partner_key_alone_is_the_partner_and_with_a_channel_that_number(console_server: Server) -> None:
    number, _ = number_with_user(console_server)
    alone = get(console_server, "/console/session", {"X-API-Key": PARTNER_KEY})
    assert alone.status == 200 and alone.json() == {"channel": None, "partner_id": PARTNER_ID}
    scoped = get(console_server, "/console/session", {"X-API-Key": PARTNER_KEY, CHANNEL_HEADER: number.id})
    assert scoped.status == 200
    assert scoped.json()["channel"]["id"] == number.id and scoped.json()["partner_id"] == PARTNER_ID


@pytest.mark.parametrize("headers", [
    {},
    {KEY_HEADER: "not-a-key"},
    {"X-API-Key": "not-the-partner-key"},
    {"X-API-Key": "not-the-partner-key", CHANNEL_HEADER: "1"},
    {"X-API-Key": PARTNER_KEY, CHANNEL_HEADER: "999999"},
    {"X-API-Key": PARTNER_KEY, CHANNEL_HEADER: "one"},
])
def test_anything_else_is_refused(console_server: Server, headers: dict[str, str]) -> None:
    for path in ("/console/session", "/console/stream"):
        reply = get(console_server, path, headers)
        assert reply.status == 401, (path, headers, reply.status, reply.body)
        assert isinstance(reply.json()["error"], str) and reply.json()["error"]


def test_the_partner_api_endpoints_take_the_partner_key_with_a_channel(console_server: Server) -> None:
    """What the page calls as the partner: every channel-scoped endpoint, as that channel."""
    number, wa_id = number_with_user(console_server)
    number.user_says(wa_id, "Hi")
    as_partner = {"X-API-Key": PARTNER_KEY, CHANNEL_HEADER: number.id}
    for path in ("/phone_number", "/sandbox/users", f"/sandbox/users/{wa_id}/messages", "/deliveries",
                 "/v1/configs/webhook", "/multi_webhook", "/waba_webhook", "/sandbox/scenario", "/notices",
                 "/v1/configs/templates"):
        reply = get(console_server, path, as_partner)
        assert reply.status == 200, (path, reply.status, reply.body)
    users = get(console_server, "/sandbox/users", as_partner).json()["users"]
    assert [u["wa_id"] for u in users] == [wa_id]
    sent = http("POST", console_server.url + "/messages", json_body=text_message(wa_id, "as the partner"),
                headers=as_partner)
    assert sent.status == 200, sent.body
    refused = get(console_server, "/sandbox/users", {"X-API-Key": "wrong", CHANNEL_HEADER: number.id})
    assert refused.status == 401


# --- the live stream ------------------------------------------------------------------------


def _stream(number: Number) -> EventStream:
    stream = EventStream(number.srv, {KEY_HEADER: number.key})
    assert stream.response.status == 200
    assert stream.response.getheader("content-type", "").startswith("text/event-stream")
    assert stream.response.getheader("cache-control") == "no-cache"
    assert stream.first_comment() == ": keep-alive"  # sent at once: the page knows the stream is open
    return stream


def test_the_stream_says_what_changed(console_server: Server) -> None:
    number, wa_id = number_with_user(console_server)
    stream = _stream(number)
    try:
        number.user_says(wa_id, "Hello")
        stream.until({"what": "messages", "wa_id": wa_id})
        number.ok("POST", "/v1/configs/webhook", {"url": "http://127.0.0.1:9/hook"})
        stream.until({"what": "config", "wa_id": None})
    finally:
        stream.close()


def test_a_stream_never_carries_another_numbers_changes(console_server: Server) -> None:
    mine, my_user = number_with_user(console_server)
    theirs, their_user = number_with_user(console_server)
    stream = _stream(mine)
    try:
        theirs.user_says(their_user, "not for you")  # announced (synchronously) before the next line runs
        mine.user_says(my_user, "for you")
        first = stream.next_change()
        assert first["what"] in ("messages", "deliveries")
        assert first["wa_id"] in (my_user, None)
    finally:
        stream.close()


def test_the_stream_as_the_partner_needs_a_channel(console_server: Server) -> None:
    number, wa_id = number_with_user(console_server)
    unscoped = get(console_server, "/console/stream", {"X-API-Key": PARTNER_KEY})
    assert unscoped.status == 400 and "X-Openwaba-Channel" in unscoped.json()["error"]
    stream = EventStream(console_server, {"X-API-Key": PARTNER_KEY, CHANNEL_HEADER: number.id})
    try:
        assert stream.response.status == 200
        number.user_says(wa_id, "Hello partner")
        assert stream.next_change()["what"] in ("messages", "deliveries")
    finally:
        stream.close()


def test_the_server_stops_promptly_with_a_stream_open(console_server: Server) -> None:
    """uvicorn waits for open responses before it shuts the app down: the stream must end first.
    (Runs last in this module: it stops the module's server, then starts it again.)"""
    number, _ = number_with_user(console_server)
    stream = _stream(number)
    process = console_server.process
    assert process is not None
    try:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=8)
        except subprocess.TimeoutExpired:
            console_server.kill()
            raise AssertionError("openwaba did not stop within 8 s of SIGTERM with a console stream open\n"
                                 + console_server.log_tail()) from None
        stream.response.read()  # the stream was ended (a hang would time out here)
    finally:
        stream.close()
        console_server.start()

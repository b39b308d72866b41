"""The fake Graph API itself, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from .fake_graph import (
    DEFAULT_DISPLAY_NUMBER,
    DEFAULT_PNID,
    DEFAULT_WABA,
    FakeGraph,
    contact,
    inbound_media,
    inbound_text,
    notification,
    status,
    template_status,
    value_error,
)

TOKEN = "EAAtest"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
HTTP = httpx.Client(trust_env=False)  # one client: each costs ~0.1 s of TLS setup
TEXT = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": "+16505551234", "type": "text",
        "text": {"body": "hi"}}


@pytest.fixture(scope="module", autouse=True)
def _close_client() -> Iterator[None]:
    yield
    HTTP.close()


@pytest.fixture
def graph() -> Iterator[FakeGraph]:
    with FakeGraph(token=TOKEN, app_secret="appsecret") as fake:
        yield fake


def messages_url(graph: FakeGraph, pnid: str = DEFAULT_PNID) -> str:
    return f"{graph.url}/{graph.version}/{pnid}/messages"


def test_send_answers_like_meta_and_is_recorded(graph: FakeGraph) -> None:
    reply = HTTP.post(messages_url(graph), json=TEXT, headers=AUTH)
    assert reply.status_code == 200
    body = reply.json()
    assert body["messaging_product"] == "whatsapp"
    assert body["contacts"] == [{"input": "+16505551234", "wa_id": "16505551234"}]
    [message] = body["messages"]
    assert message["id"].startswith("wamid.") and b"16505551234" in base64.b64decode(message["id"][6:])
    read = HTTP.post(messages_url(graph), json={"messaging_product": "whatsapp", "status": "read",
                                                 "message_id": message["id"]}, headers=AUTH)
    assert read.json() == {"success": True}
    assert graph.sent_messages() == [TEXT] and graph.marked_read() == [message["id"]]
    assert graph.requests[0].headers["authorization"] == f"Bearer {TOKEN}"
    again = HTTP.post(messages_url(graph), json=TEXT, headers=AUTH).json()
    assert again["messages"][0]["id"] != message["id"]

    unknown = HTTP.post(messages_url(graph, "999"), json=TEXT, headers=AUTH)
    assert unknown.status_code == 400 and unknown.json()["error"]["code"] == 100
    assert "Object with ID '999' does not exist" in unknown.json()["error"]["message"]


def test_every_endpoint_needs_the_bearer_token(graph: FakeGraph) -> None:
    graph.fail_next(1)  # not consumed by the refused requests
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        reply = HTTP.post(messages_url(graph), json=TEXT, headers=headers)
        assert reply.status_code == 401
        error = reply.json()["error"]
        assert (error["code"], error["type"]) == (190, "OAuthException")
        assert error["message"] == "Invalid OAuth access token - Cannot parse access token"
    media_id = graph.add_media(b"x", "image/jpeg")
    assert HTTP.get(f"{graph.url}/download/{media_id}").status_code == 401
    assert HTTP.post(messages_url(graph), json=TEXT, headers=AUTH).status_code == 500


def test_fail_next_scripts_graph_errors_on_matching_paths(graph: FakeGraph) -> None:
    graph.fail_next(2, status=400, code=130429, details="Cloud API message throughput has been reached.")
    graph.fail_next(1, status=429, code=4, details="Application request limit reached", path_contains=None)
    media_id = graph.add_media(b"x", "image/png")
    # The first request off /messages takes the path-less fault, not the /messages ones.
    assert HTTP.get(f"{graph.url}/v21.0/{media_id}", headers=AUTH).status_code == 429
    for _ in range(2):
        reply = HTTP.post(messages_url(graph), json=TEXT, headers=AUTH)
        assert reply.status_code == 400
        error = reply.json()["error"]
        assert error["message"] == "(#130429) Rate limit hit" and error["code"] == 130429
        assert error["error_data"] == {"messaging_product": "whatsapp",
                                       "details": "Cloud API message throughput has been reached."}
        assert error["type"] == "OAuthException" and error["fbtrace_id"]
    assert HTTP.post(messages_url(graph), json=TEXT, headers=AUTH).status_code == 200
    assert len(graph.sent_messages()) == 3


def test_hang_and_drop(graph: FakeGraph) -> None:
    graph.hang_next(1, seconds=30)
    graph.drop_next(1)
    with pytest.raises(httpx.ReadTimeout):
        HTTP.post(messages_url(graph), json=TEXT, headers=AUTH, timeout=0.3)
    with pytest.raises(httpx.RemoteProtocolError):
        HTTP.post(messages_url(graph), json=TEXT, headers=AUTH)
    graph.hang_next(1, seconds=30)
    hanging = threading.Thread(target=lambda: _swallow(messages_url(graph)))
    hanging.start()
    graph.wait_for(lambda: len(graph.requests) == 3)
    started = time.monotonic()
    graph.stop()  # must not wait out the 30 s
    assert time.monotonic() - started < 3
    hanging.join(5)


def _swallow(url: str) -> None:
    with contextlib.suppress(httpx.HTTPError):
        HTTP.post(url, json=TEXT, headers=AUTH, timeout=10)


def test_media_upload_metadata_download_delete(graph: FakeGraph) -> None:
    data = b"\xff\xd8\r\n\x00jpeg\r\n--"
    files = {"file": ("a.jpg", data, "image/jpeg")}
    form = {"messaging_product": "whatsapp", "type": "image/jpeg"}
    upload = HTTP.post(f"{graph.url}/v25.0/{DEFAULT_PNID}/media", data=form, files=files, headers=AUTH)
    media_id = upload.json()["id"]
    assert upload.status_code == 200 and media_id.isdigit()
    assert graph.requests[-1].form == {**form, "file": data}

    info = HTTP.get(f"{graph.url}/v25.0/{media_id}", headers=AUTH).json()
    assert {k: v for k, v in info.items() if k != "url"} == {
        "messaging_product": "whatsapp", "mime_type": "image/jpeg", "sha256": hashlib.sha256(data).hexdigest(),
        "file_size": len(data), "id": media_id}
    assert info["url"].startswith(f"{graph.url}/download/{media_id}?")
    download = HTTP.get(info["url"], headers=AUTH)
    assert download.content == data and download.headers["content-type"] == "image/jpeg"

    assert HTTP.delete(f"{graph.url}/v25.0/{media_id}", headers=AUTH).json() == {"success": True}
    gone = HTTP.get(f"{graph.url}/v25.0/{media_id}", headers=AUTH)
    assert gone.status_code == 400 and gone.json()["error"]["code"] == 100


def test_templates_are_cursor_paged(graph: FakeGraph) -> None:
    graph.templates += [{**graph.templates[0], "name": f"t{i}", "id": str(i)} for i in range(3)]
    url = f"{graph.url}/v25.0/{DEFAULT_WABA}/message_templates"
    first = HTTP.get(url, params={"limit": 3, "status": "APPROVED"}, headers=AUTH).json()
    assert [t["name"] for t in first["data"]] == ["hello_world", "t0", "t1"]
    assert first["data"][0]["status"] == "APPROVED" and first["data"][0]["language"] == "en_US"
    second = HTTP.get(first["paging"]["next"], headers=AUTH).json()
    assert [t["name"] for t in second["data"]] == ["t2"] and "next" not in second["paging"]
    assert set(second["paging"]["cursors"]) == {"before", "after"}


def test_the_fake_serves_code_running_in_an_event_loop(graph: FakeGraph) -> None:
    async def send() -> Any:
        async with httpx.AsyncClient() as client:
            return (await client.post(messages_url(graph), json=TEXT, headers=AUTH)).json()

    assert asyncio.run(send())["contacts"][0]["wa_id"] == "16505551234"


class _Sink(BaseHTTPRequestHandler):
    got: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.got.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_post_webhook_signs_the_exact_bytes(graph: FakeGraph) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/meta/webhook"
    payload = notification(DEFAULT_WABA, DEFAULT_PNID, DEFAULT_DISPLAY_NUMBER,
                           {"messages": [inbound_text("16505551234", "Olá 👋")]},
                           contacts=[contact("16505551234", "Zoë")])
    try:
        assert graph.post_webhook(url, payload) == (200, b"ok")
        assert graph.post_webhook(url, payload, signature="sha256=00")[0] == 200
        assert graph.post_webhook(url, payload, app_secret=None)[0] == 200
    finally:
        server.shutdown()
        server.server_close()
    (headers, body), (wrong, _), (unsigned, _) = _Sink.got[-3:]
    assert body.isascii() and b"\\ud83d\\udc4b" in body and b": " not in body
    expected = hmac.new(b"appsecret", body, hashlib.sha256).hexdigest()
    assert headers["x-hub-signature-256"] == f"sha256={expected}"
    assert wrong["x-hub-signature-256"] == "sha256=00" and "x-hub-signature-256" not in unsigned
    assert json.loads(body)["entry"][0]["changes"][0]["value"]["messages"][0]["text"]["body"] == "Olá 👋"


def test_builders_have_metas_shapes() -> None:
    item = inbound_media("16505551234", "document", "123", "application/pdf", "c2hh", caption="c", filename="a.pdf")
    assert item["type"] == "document" and item["document"] == {"caption": "c", "filename": "a.pdf",
                                                               "mime_type": "application/pdf", "sha256": "c2hh",
                                                               "id": "123"}
    failed = status("wamid.X", "failed", "16505551234", 1700000000,
                    errors=[value_error(131047, "Re-engagement message", "More than 24 hours")])
    assert "pricing" not in failed and failed["timestamp"] == "1700000000"
    assert failed["errors"][0]["message"] == "Re-engagement message"
    sent = status("wamid.X", "sent", "16505551234")
    assert sent["pricing"]["pricing_model"] == "PMP" and "expiration_timestamp" in sent["conversation"]
    update = template_status(DEFAULT_WABA, "594425479261596", "hello_world", "en_US", "APPROVED")
    [change] = update["entry"][0]["changes"]
    assert update["entry"][0]["id"] == DEFAULT_WABA and change["field"] == "message_template_status_update"
    assert change["value"] == {"event": "APPROVED", "message_template_id": 594425479261596,
                               "message_template_name": "hello_world", "message_template_language": "en_US",
                               "reason": "NONE"}

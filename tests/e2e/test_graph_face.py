"""End-to-end: the Graph-compatible face (`/{version}/{phone_number_id}/messages`, media,
`/{version}/{waba_id}/message_templates`) with `Authorization: Bearer <API key>`, as
code written for graph.facebook.com calls it: answers in Meta's shapes, Meta's errors
for a bad token (190) and for another number's ids (100/33), and the 360dialog faces
left as they were.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from .messaging_support import JPEG, assert_graph_error, cloud, inbound_ids, multipart, wait_statuses
from .routing_support import PARTNER_ENV, new_number
from .support import ALICE, API_KEY, Receiver, Reply, Server, ServerFactory, http

pytestmark = pytest.mark.e2e

VERSION = "v21.0"
JSON = "application/json"
ALL_THREE = {"sent", "delivered", "read"}
BEARER = f"Bearer {API_KEY}"


def graph(
    srv: Server,
    method: str,
    path: str,
    body: Any = None,
    *,
    auth: str | None = BEARER,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    """A call on the Graph face: `path` is below the version; `auth` is the Authorization header."""
    all_headers = dict(headers or {})
    if auth is not None:
        all_headers["Authorization"] = auth
    return http(method, f"{srv.url}/{VERSION}{path}", json_body=body, data=data, headers=all_headers)


@dataclass(frozen=True)
class Ids:
    phone_number_id: str
    waba_id: str


def ids_of(srv: Server) -> Ids:
    """The sandbox number's phone-number id and WABA id, as 360dialog's health status tells them."""
    health = srv.ok("GET", "/health_status")
    waba = next(e["id"] for e in health["health_status"]["entities"] if e["entity_type"] == "WABA")
    return Ids(health["id"], waba)


def upload(srv: Server, phone_number_id: str, auth: str | None = BEARER) -> Reply:
    """pywa's upload: multipart `file`, `messaging_product` and `type`."""
    body, content_type = multipart(
        {"messaging_product": "whatsapp", "type": "image/jpeg"}, ("photo.jpg", "image/jpeg", JPEG)
    )
    return graph(srv, "POST", f"/{phone_number_id}/media", data=body, auth=auth, headers={"Content-Type": content_type})


def assert_meta_error(reply: Reply, status: int, code: int, subcode: int | None = None) -> str:
    """An error in Graph's envelope without `error_data` (OAuth, unknown object); returns its message."""
    assert reply.status == status, f"expected HTTP {status}, got {reply.status}: {reply.body!r}"
    error = reply.json()["error"]
    assert error["code"] == code and error.get("error_subcode") == subcode, error
    assert isinstance(error["fbtrace_id"], str) and error["fbtrace_id"], error
    return str(error["message"])


# --- what works -----------------------------------------------------------------------------------


def test_sending_reading_media_and_templates_through_graph_paths(server: ServerFactory, receiver: Receiver) -> None:
    srv = server()
    srv.set_webhook(receiver.url)
    me = ids_of(srv)

    sent = graph(srv, "POST", f"/{me.phone_number_id}/messages", cloud(ALICE, "text", {"body": "via Graph"}))
    assert sent.status == 200, sent.body
    answer = sent.json()
    assert set(answer) == {"messaging_product", "contacts", "messages"} and answer["messaging_product"] == "whatsapp"
    assert answer["contacts"] == [{"input": ALICE, "wa_id": ALICE}], answer
    wait_statuses(receiver, answer["messages"][0]["id"], ALL_THREE)

    read = {"messaging_product": "whatsapp", "status": "read", "message_id": inbound_ids(srv, ALICE)[0]}
    marked = graph(srv, "POST", f"/{me.phone_number_id}/messages", read)
    assert (marked.status, marked.json()) == (200, {"success": True}), marked.body

    # media: upload, metadata, download of its `url` with the same Bearer token (as pywa does), delete
    uploaded = upload(srv, me.phone_number_id)
    assert uploaded.status == 200, uploaded.body
    media_id = uploaded.json()["id"]
    meta = graph(srv, "GET", f"/{media_id}").json()
    assert set(meta) == {"messaging_product", "url", "mime_type", "sha256", "file_size", "id"}, meta
    assert (meta["id"], meta["mime_type"], meta["file_size"]) == (media_id, "image/jpeg", len(JPEG)), meta
    downloaded = http("GET", meta["url"], headers={"Authorization": BEARER})
    assert (downloaded.status, downloaded.body) == (200, JPEG), downloaded.status
    assert http("GET", meta["url"]).status == 401  # the URL alone is not enough
    deleted = graph(srv, "DELETE", f"/{media_id}")
    assert (deleted.status, deleted.json()) == (200, {"success": True}), deleted.body
    assert_graph_error(graph(srv, "GET", f"/{media_id}"), 100, 404)

    # templates, in Graph's shape, with Graph's query parameters
    listed = graph(srv, "GET", f"/{me.waba_id}/message_templates").json()
    [hello] = [t for t in listed["data"] if t["name"] == "hello_world"]
    assert {"name", "components", "language", "status", "category", "id"} <= set(hello), hello
    assert (hello["status"], hello["language"], hello["parameter_format"]) == ("APPROVED", "en_US", "POSITIONAL")
    narrowed = graph(srv, "GET", f"/{me.waba_id}/message_templates?fields=name,status&status=APPROVED&limit=1")
    assert narrowed.status == 200, narrowed.body
    page = narrowed.json()
    assert [set(t) for t in page["data"]] == [{"name", "status", "id"}], page
    assert set(page["paging"]["cursors"]) == {"before", "after"}, page
    assert graph(srv, "GET", f"/{me.waba_id}/message_templates?name=no_such_template").json()["data"] == []
    summary = graph(srv, "GET", f"/{me.waba_id}/message_templates?summary=total_count").json()["summary"]
    assert summary["total_count"] == summary["message_template_count"] == len(listed["data"]), summary
    # without an Authorization header the 360dialog key works here too
    assert srv.call("GET", f"/{VERSION}/{me.waba_id}/message_templates").json()["data"] == listed["data"]

    # the 360dialog faces are as they were (`/v1/...` is never a Graph version)
    legacy = srv.call("POST", "/v1/messages", {"to": ALICE, "text": {"body": "On-Premise"}})
    assert legacy.status == 201 and {"messages", "meta"} <= set(legacy.json()), legacy.body


# --- what is refused, and how -------------------------------------------------------------------------

# (case, method, path below the version with {pnid}/{waba}/{other_pnid}/{other_waba}, body, token, expected)
# where expected is (HTTP status, code, error_subcode); a token is "own", "other", "wrong", "basic" or None
# (no Authorization header). Bodies are JSON values; bytes are sent as they are.
TEXT = cloud(ALICE, "text", {"body": "hi"})
REFUSED: list[tuple[str, str, str, Any, str | None, tuple[int, int, int | None]]] = [
    ("no-token", "POST", "/{pnid}/messages", TEXT, None, (401, 190, None)),
    ("wrong-token", "POST", "/{pnid}/messages", TEXT, "wrong", (401, 190, None)),
    ("wrong-token-media", "GET", "/1234567890", None, "wrong", (401, 190, None)),
    ("not-a-bearer-token", "GET", "/{waba}/message_templates", None, "basic", (401, 190, None)),
    ("other-number-send", "POST", "/{other_pnid}/messages", TEXT, "own", (400, 100, 33)),
    ("other-key-on-my-number", "POST", "/{pnid}/messages", TEXT, "other", (400, 100, 33)),
    ("other-number-upload", "POST", "/{other_pnid}/media", None, "own", (400, 100, 33)),
    ("other-waba-templates", "GET", "/{other_waba}/message_templates", None, "own", (400, 100, 33)),
    ("a-number-is-no-waba", "GET", "/{pnid}/message_templates", None, "own", (400, 100, 33)),
    (
        "text-body-over-4096",
        "POST",
        "/{pnid}/messages",
        cloud(ALICE, "text", {"body": "x" * 4097}),
        "own",
        (400, 131009, None),
    ),
    (
        "an-edge-openwaba-does-not-serve",
        "POST",
        "/{pnid}/block_users",
        {"messaging_product": "whatsapp"},
        "own",
        (400, 100, 33),
    ),
    ("a-method-openwaba-does-not-serve", "GET", "/{pnid}/messages", None, "own", (400, 100, 33)),
    ("not-json", "POST", "/{pnid}/messages", b'{"messaging_product":', "own", (400, 100, None)),
    ("unknown-media", "GET", "/424242424242", None, "own", (404, 100, None)),
]


def test_refusals_are_metas(server: ServerFactory) -> None:
    srv = server(PARTNER_ENV)
    me, other = ids_of(srv), new_number(srv)
    tokens = {
        "own": BEARER,
        "other": f"Bearer {other.key}",
        "wrong": "Bearer not-a-key",
        "basic": f"Basic {API_KEY}",
        None: None,
    }
    where = {
        "pnid": me.phone_number_id,
        "waba": me.waba_id,
        "other_pnid": other.phone_number_id,
        "other_waba": other.waba_id,
    }
    for case, method, template, body, token, (status, code, subcode) in REFUSED:
        path = template.format(**where)
        if path.endswith("/media"):
            reply = upload(srv, path.split("/")[1], auth=tokens[token])
        elif isinstance(body, bytes):
            reply = graph(srv, method, path, data=body, auth=tokens[token], headers={"Content-Type": JSON})
        else:
            reply = graph(srv, method, path, body, auth=tokens[token])
        try:
            expect_refusal(reply, method, path, status, code, subcode)
        except AssertionError as exc:
            raise AssertionError(f"case {case}: {exc}") from None


def expect_refusal(reply: Reply, method: str, path: str, status: int, code: int, subcode: int | None) -> None:
    if code != 190 and subcode is None:
        assert_graph_error(reply, code, status)
        return
    message = assert_meta_error(reply, status, code, subcode)
    if code == 190:
        assert message == "Invalid OAuth access token - Cannot parse access token", message
    else:
        named = path.split("/")[1]
        assert message.startswith(f"Unsupported {method.lower()} request. Object with ID '{named}'"), message

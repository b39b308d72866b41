"""End-to-end: media on both faces through the real server.

Cloud: `POST /media` (multipart), `GET /{id}` (metadata and a signed download
URL that still needs the API key and expires after 300 s of the manual clock),
`DELETE /{id}`. On-Premise: `POST /v1/media` (raw body), `GET`/`DELETE
/v1/media/{id}`. WhatsApp's limits per kind, storage by content (one file on disk
per distinct content, removed with the last id using it), isolation between
numbers, sending an uploaded id, and files sent by simulated users.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from http.client import HTTPConnection
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from .assets_support import (
    JPEG,
    PDF,
    PNG,
    TEXT,
    WEBP,
    FilePart,
    animated_webp,
    assert_graph_error,
    assert_on_premise_error,
    multipart,
    padded,
    padded_webp,
    post_form,
    upload,
    upload_id,
)
from .conftest import DEFAULT_ENV
from .routing_support import PARTNER_ENV, Number, demo_number, new_number
from .support import (
    ALICE,
    BRUNO,
    CHEN,
    HOST,
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

KB = 1024
MB = 1024 * KB
URL_LIFETIME = 300
WHATSAPP = {"messaging_product": "whatsapp"}


# --- helpers --------------------------------------------------------------------------------


def sha(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def metadata(srv: Server, media_id: str, key: str | None = "") -> Reply:
    return srv.call("GET", f"/{media_id}", key=key)


def download(url: str, key: str | None, method: str = "GET") -> Reply:
    return http(method, url, headers={KEY_HEADER: key} if key is not None else {})


def download_url(srv: Server, media_id: str, key: str | None = "") -> str:
    reply = metadata(srv, media_id, key)
    assert reply.status == 200, reply.body
    return str(reply.json()["url"])


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query.update(changes)
    return parts._replace(query=urlencode(query)).geturl()


def stored_files(srv: Server) -> list[Path]:
    """Every media file on disk (the temporary folder aside)."""
    root = srv.data_dir / "media"
    return sorted(p for p in root.rglob("*") if p.is_file() and p.parent.name != "tmp")


def leftovers(srv: Server) -> list[Path]:
    tmp = srv.data_dir / "media" / "tmp"
    return sorted(tmp.iterdir()) if tmp.exists() else []


def media_message(to: str, kind: str, content: dict[str, Any]) -> dict[str, Any]:
    return {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to, "type": kind, kind: content}


def wait_for_statuses(receiver: Receiver, wamid: str, wanted: set[str]) -> dict[str, list[Received]]:
    def check(requests: list[Received]) -> dict[str, list[Received]] | None:
        found = by_status(r for r in requests if r.status is not None and r.status["id"] == wamid)
        return found if wanted <= set(found) else None
    return receiver.wait_for(check, what=f"statuses {sorted(wanted)} of {wamid}")


def raw_post_announcing(srv: Server, path: str, content_type: str, length: int) -> tuple[int, Any]:
    """POST that announces `length` bytes but sends only a few: the answer must not wait for the rest."""
    conn = HTTPConnection(HOST, srv.port, timeout=10)
    try:
        conn.putrequest("POST", path)
        conn.putheader(KEY_HEADER, srv.api_key or "")
        conn.putheader("Content-Type", content_type)
        conn.putheader("Content-Length", str(length))
        conn.endheaders()
        conn.send(PNG)
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


# --- Cloud: upload, metadata, download, delete ---------------------------------------------------


def test_upload_metadata_download_and_delete(server: ServerFactory) -> None:
    srv = server()
    reply = upload(srv, PNG, "image/png", "pixel.png")
    assert reply.status == 200, reply.body
    assert set(reply.json()) == {"id"}
    media_id = reply.json()["id"]
    assert media_id.isdigit()

    meta = srv.ok("GET", f"/{media_id}")
    assert set(meta) == {"messaging_product", "url", "mime_type", "sha256", "file_size", "id"}
    assert meta["messaging_product"] == "whatsapp"
    assert meta["id"] == media_id
    assert meta["mime_type"] == "image/png"
    assert meta["sha256"] == sha(PNG)
    assert int(meta["file_size"]) == len(PNG)
    url = urlsplit(meta["url"])
    assert (url.scheme, url.hostname, url.port) == ("http", HOST, srv.port)
    assert url.path == "/whatsapp_business/attachments/"
    query = parse_qs(url.query)
    assert query["mid"] == [media_id] and query["ext"][0].isdigit() and query["hash"][0]

    for method in ("GET", "POST"):  # the newer and the older 360dialog page
        got = download(meta["url"], srv.api_key, method)
        assert got.status == 200, (method, got.body)
        assert got.body == PNG
        assert got.headers["content-type"] == "image/png"
        assert "pixel.png" in got.headers.get("content-disposition", "")

    for key in (None, "not-the-key"):
        refused = download(meta["url"], key)
        assert refused.status == 401, refused.body
        assert isinstance(refused.json()["error"], str)
        assert metadata(srv, media_id, key).status == 401
        assert srv.call("DELETE", f"/{media_id}", key=key).status == 401

    other_id = upload_id(srv, JPEG, "image/jpeg")
    for forged in (with_query(meta["url"], hash="0" * 64),
                   with_query(meta["url"], ext=str(int(query["ext"][0]) + 3600)),  # a longer life, same hash
                   with_query(meta["url"], mid=other_id),  # another file, same hash
                   with_query(meta["url"], ext="soon")):
        assert_graph_error(download(forged, srv.api_key), 100, 400)
    assert download(download_url(srv, other_id), srv.api_key).body == JPEG

    assert srv.ok("DELETE", f"/{media_id}") == {"success": True}
    assert_graph_error(metadata(srv, media_id), 100, 404)
    assert_graph_error(download(meta["url"], srv.api_key), 100, 404)
    assert_graph_error(srv.call("DELETE", f"/{media_id}"), 100, 404)
    assert_graph_error(metadata(srv, "123456789012345"), 100, 404)
    assert download(download_url(srv, other_id), srv.api_key).body == JPEG, "the other file is untouched"


def test_download_urls_expire_after_five_minutes(server: ServerFactory) -> None:
    srv = server()
    media_id = upload_id(srv, PDF, "application/pdf", "terms.pdf")
    url = download_url(srv, media_id)
    ext = int(parse_qs(urlsplit(url).query)["ext"][0])
    now = srv.ok("GET", "/sandbox/clock")["now"]
    assert URL_LIFETIME - 5 <= ext - now <= URL_LIFETIME
    srv.advance_clock(URL_LIFETIME - 30)
    assert download(url, srv.api_key).body == PDF, "still valid before its expiry"
    srv.advance_clock(31)
    assert_graph_error(download(url, srv.api_key), 100, 400)
    assert_graph_error(download(url, srv.api_key, "POST"), 100, 400)
    fresh = download_url(srv, media_id)
    assert fresh != url
    got = download(fresh, srv.api_key)
    assert got.status == 200 and got.body == PDF
    assert got.headers["content-type"] == "application/pdf"


def test_identical_files_share_one_copy_until_the_last_id_is_deleted(server: ServerFactory) -> None:
    srv = server()
    first = upload_id(srv, JPEG, "image/jpeg", "first.jpg")
    second = upload_id(srv, JPEG, "image/jpeg", "second.jpg")
    reply = srv.call("POST", "/v1/media", data=JPEG, headers={"Content-Type": "image/jpeg"})
    assert reply.status == 201, reply.body
    third = reply.json()["media"][0]["id"]
    assert len({first, second, third}) == 3, "every upload gets its own id"
    other = upload_id(srv, PNG, "image/png")

    digest = sha(JPEG)
    path = srv.data_dir / "media" / digest[:2] / digest
    assert path.read_bytes() == JPEG
    png_path = srv.data_dir / "media" / sha(PNG)[:2] / sha(PNG)
    assert stored_files(srv) == sorted([path, png_path]), "one file per distinct content"
    assert {srv.ok("GET", f"/{m}")["sha256"] for m in (first, second, third)} == {digest}
    # Each id keeps its own name.
    assert "second.jpg" in download(download_url(srv, second), srv.api_key).headers["content-disposition"]

    assert srv.ok("DELETE", f"/{first}") == {"success": True}
    assert path.exists()
    assert download(download_url(srv, second), srv.api_key).body == JPEG
    assert srv.call("DELETE", f"/v1/media/{third}").status == 200
    assert path.exists()
    assert download(download_url(srv, second), srv.api_key).body == JPEG
    assert srv.ok("DELETE", f"/{second}") == {"success": True}
    assert not path.exists(), "the last id took the file with it"
    assert stored_files(srv) == [png_path]
    assert download(download_url(srv, other), srv.api_key).body == PNG

    # Uploading it again brings the file back.
    again = upload_id(srv, JPEG, "image/jpeg")
    assert path.read_bytes() == JPEG
    assert download(download_url(srv, again), srv.api_key).body == JPEG
    assert leftovers(srv) == []


# --- limits -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Upload:
    fields: dict[str, str]
    files: tuple[FilePart, ...] = ()
    raw: bytes | None = None  # a body sent as is, with `content_type`
    content_type: str | None = None


def _file(content: bytes, content_type: str | None, filename: str = "upload.bin") -> Upload:
    return Upload(WHATSAPP, (FilePart(content, content_type, filename),))


LIMITS: list[tuple[str, Upload, int]] = [
    ("unsupported type gif", _file(PNG, "image/gif", "a.gif"), 131053),
    ("unsupported type zip", _file(b"PK\x03\x04" + b"\x00" * 30, "application/zip", "a.zip"), 131053),
    ("no content type", _file(PNG, None, "a.png"), 131053),
    ("octet-stream without a type field", _file(PNG, "application/octet-stream"), 131053),
    ("png over 5 MB", _file(padded(PNG, 5 * MB + 1), "image/png"), 131053),
    ("jpeg over 5 MB", _file(padded(JPEG, 5 * MB + 1), "image/jpeg"), 131053),
    ("static sticker over 100 KB", _file(padded_webp(100 * KB + 2), "image/webp"), 131053),
    ("animated sticker over 500 KB", _file(animated_webp(500 * KB + 2), "image/webp"), 131053),
    ("text as image/jpeg", _file(TEXT, "image/jpeg", "fake.jpg"), 131053),
    ("png as image/jpeg", _file(PNG, "image/jpeg", "fake.jpg"), 131053),
    ("jpeg as image/png", _file(JPEG, "image/png", "fake.png"), 131053),
    ("text as application/pdf", _file(TEXT, "application/pdf", "fake.pdf"), 131053),
    ("png as image/webp", _file(PNG, "image/webp", "fake.webp"), 131053),
    ("empty image", _file(b"", "image/png"), 131053),
    ("empty text file", _file(b"", "text/plain"), 131053),
    ("missing file part", Upload(WHATSAPP), 131008),
    ("file as a plain field", Upload({**WHATSAPP, "file": "not a file"}), 131008),
    ("missing messaging_product", Upload({}, (FilePart(PNG, "image/png"),)), 131008),
    ("messaging_product not whatsapp", Upload({"messaging_product": "sms"}, (FilePart(PNG, "image/png"),)), 131008),
    ("two file parts", Upload(WHATSAPP, (FilePart(PNG, "image/png"), FilePart(JPEG, "image/jpeg"))), 100),
    ("multipart without a boundary", Upload({}, raw=b"garbage", content_type="multipart/form-data"), 100),
    ("multipart that is not multipart", Upload({}, raw=b"garbage", content_type="multipart/form-data; boundary=x"),
     100),
    ("JSON instead of a form", Upload({}, raw=b'{"messaging_product": "whatsapp"}', content_type="application/json"),
     131008),
]


@pytest.mark.parametrize(("case", "request_", "code"), LIMITS, ids=[c[0] for c in LIMITS])
def test_uploads_whatsapp_refuses(shared_server: Server, case: str, request_: Upload, code: int) -> None:
    srv = shared_server
    before = stored_files(srv)
    if request_.raw is not None:
        reply = srv.call("POST", "/media", data=request_.raw, headers={"Content-Type": request_.content_type or ""})
    else:
        reply = post_form(srv, "/media", request_.fields, *request_.files)
    assert_graph_error(reply, code, 400)
    assert stored_files(srv) == before, "a refused upload keeps nothing"
    assert leftovers(srv) == []


def test_an_announced_body_over_100_mb_is_refused_before_it_is_read(shared_server: Server) -> None:
    status, body = raw_post_announcing(shared_server, "/media", "multipart/form-data; boundary=x", 200 * MB)
    assert status == 400 and body["error"]["code"] == 131053, body
    status, body = raw_post_announcing(shared_server, "/v1/media", "image/png", 200 * MB)
    assert status == 400 and body["errors"][0]["code"] == 131053, body


ACCEPTED: list[tuple[str, Upload, str]] = [
    ("png of exactly 5 MB", _file(padded(PNG, 5 * MB), "image/png"), "image/png"),
    ("static sticker of exactly 100 KB", _file(padded_webp(100 * KB), "image/webp"), "image/webp"),
    ("animated sticker of 400 KB", _file(animated_webp(400 * KB), "image/webp"), "image/webp"),
    ("type given by the type field", Upload({**WHATSAPP, "type": "image/png"},
                                            (FilePart(PNG, "application/octet-stream"),)), "image/png"),
    ("content type with parameters", _file(JPEG, "Image/JPEG; charset=binary"), "image/jpeg"),
    ("pdf", _file(PDF, "application/pdf", "a.pdf"), "application/pdf"),
    ("plain text", _file(TEXT, "text/plain", "notes.txt"), "text/plain"),
    ("ogg audio", _file(b"OggS" + b"\x00" * 60, "audio/ogg", "voice.ogg"), "audio/ogg"),
    ("mp4 video", _file(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64, "video/mp4", "clip.mp4"), "video/mp4"),
]


@pytest.mark.parametrize(("case", "request_", "mime_type"), ACCEPTED, ids=[c[0] for c in ACCEPTED])
def test_uploads_within_the_limits(shared_server: Server, case: str, request_: Upload, mime_type: str) -> None:
    srv = shared_server
    reply = post_form(srv, "/media", request_.fields, *request_.files)
    assert reply.status == 200, reply.body
    media_id = reply.json()["id"]
    content = request_.files[0].content
    meta = srv.ok("GET", f"/{media_id}")
    assert meta["mime_type"] == mime_type
    assert int(meta["file_size"]) == len(content) and meta["sha256"] == sha(content)
    got = download(meta["url"], srv.api_key)
    assert got.status == 200 and got.body == content
    assert srv.ok("DELETE", f"/{media_id}") == {"success": True}


# --- isolation between numbers -------------------------------------------------------------------


def test_a_numbers_media_is_invisible_to_another_number(server: ServerFactory) -> None:
    srv = server(PARTNER_ENV)
    a: Number = demo_number(srv)
    b: Number = new_number(srv)
    media_id = upload_id(srv, JPEG, "image/jpeg", "mine.jpg", key=a.key)
    url = download_url(srv, media_id, key=a.key)

    assert_graph_error(metadata(srv, media_id, key=b.key), 100, 404)
    assert_graph_error(download(url, b.key), 100, 404)
    assert_graph_error(download(url, b.key, "POST"), 100, 404)
    assert_graph_error(b.call("DELETE", f"/{media_id}"), 100, 404)
    assert_on_premise_error(b.call("GET", f"/v1/media/{media_id}"), 1006, 404)
    assert_on_premise_error(b.call("DELETE", f"/v1/media/{media_id}"), 1006, 404)
    for kind, content in (("image", {"id": media_id}), ("document", {"id": media_id, "filename": "x.jpg"})):
        reply = b.call("POST", "/messages", media_message(ALICE, kind, content))
        error = assert_graph_error(reply, 100, 400)
        assert media_id in error["error_data"]["details"]
    assert b.srv.query("SELECT count(*) AS n FROM messages WHERE direction = 'out'")[0]["n"] == 0

    # The same bytes uploaded by B are B's own id; deleting it leaves A's file.
    theirs = upload_id(srv, JPEG, "image/jpeg", key=b.key)
    assert theirs != media_id
    assert_graph_error(metadata(srv, theirs, key=a.key), 100, 404)
    assert b.ok("DELETE", f"/{theirs}") == {"success": True}
    got = download(download_url(srv, media_id, key=a.key), a.key)
    assert got.status == 200 and got.body == JPEG


# --- On-Premise ---------------------------------------------------------------------------------


def test_on_premise_upload_download_delete(server: ServerFactory) -> None:
    srv = server()
    reply = srv.call("POST", "/v1/media", data=PDF, headers={"Content-Type": "application/pdf"})
    assert reply.status == 201, reply.body
    created = reply.json()
    assert set(created) == {"media", "meta"}
    [item] = created["media"]
    media_id = item["id"]
    assert media_id.isdigit() and set(item) == {"id"}
    assert created["meta"]["api_status"] and created["meta"]["version"]

    got = srv.call("GET", f"/v1/media/{media_id}")
    assert got.status == 200
    assert got.body == PDF
    assert got.headers["content-type"] == "application/pdf"
    assert int(got.headers["content-length"]) == len(PDF)
    assert "attachment" in got.headers.get("content-disposition", "")
    meta = srv.ok("GET", f"/{media_id}")  # one store behind both faces
    assert meta["sha256"] == sha(PDF) and meta["mime_type"] == "application/pdf"

    assert srv.call("GET", f"/v1/media/{media_id}", key=None).status == 401
    deleted = srv.call("DELETE", f"/v1/media/{media_id}")
    assert deleted.status == 200, deleted.body
    assert set(deleted.json()) == {"meta"}
    assert_on_premise_error(srv.call("GET", f"/v1/media/{media_id}"), 1006, 404)
    assert_on_premise_error(srv.call("DELETE", f"/v1/media/{media_id}"), 1006, 404)
    assert_graph_error(metadata(srv, media_id), 100, 404)
    assert stored_files(srv) == []


ON_PREMISE_REFUSED: list[tuple[str, bytes, str | None]] = [
    ("unsupported type", PNG, "image/gif"),
    ("no content type", PNG, None),
    ("empty body", b"", "image/png"),
    ("text as image/png", TEXT, "image/png"),
    ("static sticker over 100 KB", padded_webp(100 * KB + 2), "image/webp"),
]


@pytest.mark.parametrize(("case", "content", "content_type"), ON_PREMISE_REFUSED,
                         ids=[c[0] for c in ON_PREMISE_REFUSED])
def test_on_premise_upload_errors(shared_server: Server, case: str, content: bytes, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    conn = HTTPConnection(HOST, shared_server.port, timeout=10)
    try:  # urllib would add a Content-Type of its own
        conn.request("POST", "/v1/media", body=content,
                     headers={KEY_HEADER: shared_server.api_key or "", "Content-Length": str(len(content)), **headers})
        response = conn.getresponse()
        reply = Reply(response.status, response.read(), {k.lower(): v for k, v in response.getheaders()})
    finally:
        conn.close()
    assert_on_premise_error(reply, 131053, 400)


# --- sending an uploaded id ---------------------------------------------------------------------


def test_send_media_messages_by_uploaded_id(server: ServerFactory, receiver: Receiver) -> None:
    srv = server()
    srv.set_webhook(receiver.url)
    srv.user_says(ALICE, "please send the picture and the invoice")  # opens the 24-hour window
    image_id = upload_id(srv, JPEG, "image/jpeg", "photo.jpg")
    doc_id = upload_id(srv, PDF, "application/pdf", "invoice.pdf")
    sticker_id = upload_id(srv, WEBP, "image/webp", "s.webp")

    sent: dict[str, str] = {}
    for kind, content in (("image", {"id": image_id, "caption": "Here it is"}),
                          ("document", {"id": doc_id, "filename": "invoice.pdf", "caption": "Invoice"}),
                          ("sticker", {"id": sticker_id})):
        reply = srv.call("POST", "/messages", media_message(ALICE, kind, content))
        assert reply.status == 200, (kind, reply.body)
        sent[kind] = reply.json()["messages"][0]["id"]
    for kind, wamid in sent.items():
        got = wait_for_statuses(receiver, wamid, {"sent", "delivered", "read"})
        assert "failed" not in got, kind

    chat = {m["id"]: m for m in srv.ok("GET", f"/sandbox/users/{ALICE}/messages")["messages"]}
    assert chat[sent["image"]]["type"] == "image"
    assert chat[sent["image"]]["image"]["id"] == image_id
    assert chat[sent["image"]]["image"]["caption"] == "Here it is"
    assert chat[sent["document"]]["document"]["filename"] == "invoice.pdf"

    assert srv.ok("DELETE", f"/{image_id}") == {"success": True}
    for content in ({"id": image_id}, {"id": "999999999999"}):
        assert_graph_error(srv.call("POST", "/messages", media_message(ALICE, "image", content)), 100, 400)


# --- files sent by simulated users -------------------------------------------------------------


@dataclass
class Inbound:
    srv: Server
    receiver: Receiver


@pytest.fixture(scope="module")
def inbound(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Inbound]:
    factory = ServerFactory(tmp_path_factory.mktemp("inbound"), DEFAULT_ENV)
    rx = Receiver()
    rx.start()
    try:
        srv = factory()
        srv.set_webhook(rx.url)
        yield Inbound(srv, rx)
    finally:
        rx.stop()
        factory.close()


INBOUND: list[tuple[str, FilePart, str | None, str, dict[str, Any]]] = [
    ("image with caption", FilePart(JPEG, "image/jpeg", "photo.jpg"), "look at this", "image",
     {"caption": "look at this"}),
    ("image without caption", FilePart(PNG, "image/png", "pixel.png"), None, "image", {}),
    ("document with filename and caption", FilePart(PDF, "application/pdf", "invoice.pdf"), "May invoice",
     "document", {"filename": "invoice.pdf", "caption": "May invoice"}),
    ("text document", FilePart(TEXT, "text/plain", "notes.txt"), None, "document", {"filename": "notes.txt"}),
    ("video with caption", FilePart(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64, "video/mp4", "clip.mp4"), "clip",
     "video", {"caption": "clip"}),
    ("audio ignores a caption", FilePart(b"OggS" + b"\x00" * 60, "audio/ogg", "voice.ogg"), "ignored", "audio", {}),
    ("sticker", FilePart(WEBP, "image/webp", "sticker.webp"), None, "sticker", {"animated": False}),
]


@pytest.mark.parametrize(("case", "part", "caption", "kind", "extra"), INBOUND, ids=[c[0] for c in INBOUND])
def test_a_user_sends_a_file_and_the_business_downloads_it(
    inbound: Inbound, case: str, part: FilePart, caption: str | None, kind: str, extra: dict[str, Any]
) -> None:
    srv = inbound.srv
    fields = {"caption": caption} if caption is not None else {}
    reply = post_form(srv, f"/sandbox/users/{BRUNO}/messages", fields, part)
    assert reply.status == 200, reply.body
    wamid = reply.json()["messages"][0]["id"]
    assert wamid.startswith("wamid.")

    [got] = inbound.receiver.wait_for_count(lambda r: r.message is not None and r.message["id"] == wamid, 1,
                                            what=f"the {kind} from Bruno")
    message = got.message
    assert message is not None
    assert message["from"] == BRUNO and message["type"] == kind
    media = message[kind]
    assert set(media) == {"id", "mime_type", "sha256", *extra}, media
    assert {k: media[k] for k in extra} == extra
    assert media["mime_type"] == (part.content_type or "")
    assert got.value["contacts"][0]["wa_id"] == BRUNO

    meta = srv.ok("GET", f"/{media['id']}")
    assert meta["sha256"] == media["sha256"] == sha(part.content)
    assert meta["mime_type"] == media["mime_type"]
    assert int(meta["file_size"]) == len(part.content)
    downloaded = download(meta["url"], srv.api_key)
    assert downloaded.status == 200 and downloaded.body == part.content
    assert srv.call("GET", f"/v1/media/{media['id']}").body == part.content

    chat = {m["id"]: m for m in srv.ok("GET", f"/sandbox/users/{BRUNO}/messages")["messages"]}
    assert chat[wamid]["direction"] == "inbound" and chat[wamid]["type"] == kind
    assert chat[wamid][kind]["id"] == media["id"]


def test_an_animated_sticker_is_reported_as_animated(inbound: Inbound) -> None:
    reply = post_form(inbound.srv, f"/sandbox/users/{CHEN}/messages", {},
                      FilePart(animated_webp(4 * KB), "image/webp", "dance.webp"))
    assert reply.status == 200, reply.body
    wamid = reply.json()["messages"][0]["id"]
    [got] = inbound.receiver.wait_for_count(lambda r: r.message is not None and r.message["id"] == wamid, 1)
    assert got.message is not None and got.message["sticker"]["animated"] is True


USER_FILE_ERRORS: list[tuple[str, str, dict[str, str], tuple[FilePart, ...], int]] = [
    ("unsupported type", BRUNO, {}, (FilePart(PNG, "image/gif", "a.gif"),), 400),
    ("content not matching its type", BRUNO, {}, (FilePart(TEXT, "image/jpeg", "a.jpg"),), 400),
    ("empty file", BRUNO, {}, (FilePart(b"", "image/png", "a.png"),), 400),
    ("image over 5 MB", BRUNO, {}, (FilePart(padded(PNG, 5 * MB + 1), "image/png", "big.png"),), 400),
    ("no file part", BRUNO, {"caption": "where is it"}, (), 400),
    ("not a simulated user", "15559990000", {}, (FilePart(PNG, "image/png", "a.png"),), 404),
]


@pytest.mark.parametrize(("case", "wa_id", "fields", "files", "status"), USER_FILE_ERRORS,
                         ids=[c[0] for c in USER_FILE_ERRORS])
def test_a_file_whatsapp_would_refuse_is_refused_for_simulated_users_too(
    inbound: Inbound, case: str, wa_id: str, fields: dict[str, str], files: tuple[FilePart, ...], status: int
) -> None:
    srv = inbound.srv
    before = srv.query("SELECT count(*) AS n FROM media")[0]["n"]
    body, content_type = multipart(fields, *files)
    reply = srv.call("POST", f"/sandbox/users/{wa_id}/messages", data=body, headers={"Content-Type": content_type})
    assert reply.status == status, reply.body
    assert set(reply.json()) == {"error"} and isinstance(reply.json()["error"], str)
    assert srv.query("SELECT count(*) AS n FROM media")[0]["n"] == before
    assert leftovers(srv) == []

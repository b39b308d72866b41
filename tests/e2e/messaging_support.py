"""Helpers for the messaging and window/limit tests: message bodies of every type,
media uploads (multipart, by hand), the error envelopes of both faces, and
questions to the server's database about what a request stored.

Absence ("no delivered/read status came") is never proven by sleeping: the
sandbox ingests every status of a message in one transaction at hand-over, so
once one status event of a wamid is stored, the events table lists all it
will ever get.
"""

from __future__ import annotations

import secrets
import struct
from collections.abc import Callable
from typing import Any

from .support import Received, Receiver, Reply, Server, wait_until

UNKNOWN_RECIPIENT = "15559990000"  # a well-formed number that is no simulated user
LINK = "https://example.com/files/"
ON_PREMISE_META_KEYS = {"api_status", "version"}

# --- files the sandbox accepts (it checks the leading bytes of jpeg, png, pdf and webp) --------

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(200)
OGG = b"OggS\x00\x02" + bytes(200)
MP4 = b"\x00\x00\x00\x18ftypmp42" + bytes(200)
PDF = b"%PDF-1.4\n%e2e\n" + bytes(200)
_WEBP_CHUNK = b"VP8L" + struct.pack("<I", 10) + bytes(10)
WEBP = b"RIFF" + struct.pack("<I", 4 + len(_WEBP_CHUNK)) + b"WEBP" + _WEBP_CHUNK

# message type -> (MIME type, bytes, file name) of a file that can be sent as it
MEDIA_FILES: dict[str, tuple[str, bytes, str]] = {
    "image": ("image/jpeg", JPEG, "photo.jpg"),
    "audio": ("audio/ogg", OGG, "voice.ogg"),
    "video": ("video/mp4", MP4, "clip.mp4"),
    "document": ("application/pdf", PDF, "invoice.pdf"),
    "sticker": ("image/webp", WEBP, "sticker.webp"),
}


def multipart(fields: dict[str, str], file: tuple[str, str, bytes] | None) -> tuple[bytes, str]:
    """A multipart/form-data body: plain `fields` and one `file` part (filename, MIME type, bytes)."""
    boundary = "e2e" + secrets.token_hex(12)
    parts: list[bytes] = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    if file is not None:
        filename, mime_type, data = file
        head = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
                f"Content-Type: {mime_type}\r\n\r\n")
        parts.append(head.encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def upload_media(srv: Server, kind: str, key: str | None = "") -> str:
    """Upload the sample file for message type `kind` with `POST /media`; return its media id."""
    mime_type, data, filename = MEDIA_FILES[kind]
    body, content_type = multipart({"messaging_product": "whatsapp", "type": mime_type}, (filename, mime_type, data))
    reply = srv.call("POST", "/media", data=body, headers={"Content-Type": content_type}, key=key)
    assert reply.status == 200, f"POST /media ({mime_type}) answered {reply.status}: {reply.body!r}"
    media_id = reply.json()["id"]
    assert isinstance(media_id, str) and media_id.isdigit(), media_id
    return media_id


# --- message bodies -------------------------------------------------------------------------


def cloud(to: str, type_name: str, content: Any, **extra: Any) -> dict[str, Any]:
    """A Cloud API send body."""
    return {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to, "type": type_name,
            type_name: content, **extra}


def interactive_examples(media_id: str | None = None) -> dict[str, dict[str, Any]]:
    """One valid `interactive` object per interactive type."""
    image = {"id": media_id} if media_id else {"link": LINK + "header.jpg"}
    return {
        "button": {
            "type": "button", "header": {"type": "image", "image": image}, "body": {"text": "Pick one"},
            "footer": {"text": "e2e"},
            "action": {"buttons": [{"type": "reply", "reply": {"id": "yes-1", "title": "Yes"}},
                                   {"type": "reply", "reply": {"id": "no-1", "title": "No"}}]},
        },
        "list": {
            "type": "list", "header": {"type": "text", "text": "Menu"}, "body": {"text": "Choose"},
            "action": {"button": "Options", "sections": [
                {"title": "Drinks", "rows": [{"id": "tea", "title": "Tea", "description": "Hot"}]},
                {"title": "Food", "rows": [{"id": "cake", "title": "Cake"}]}]},
        },
        "cta_url": {
            "type": "cta_url", "body": {"text": "Tap to see dates"},
            "action": {"name": "cta_url", "parameters": {"display_text": "See Dates", "url": "https://example.com/x"}},
        },
        "flow": {
            "type": "flow", "body": {"text": "Book a table"},
            "action": {"name": "flow", "parameters": {
                "flow_message_version": "3", "flow_token": "AQAAAA-e2e", "flow_id": "123", "flow_cta": "Start",
                "flow_action": "navigate", "flow_action_payload": {"screen": "FIRST_SCREEN", "data": {"k": "v"}},
                "mode": "published"}},
        },
        "product": {"type": "product", "action": {"catalog_id": "123", "product_retailer_id": "SKU1"}},
        "product_list": {
            "type": "product_list", "header": {"type": "text", "text": "Our picks"}, "body": {"text": "Have a look"},
            "action": {"catalog_id": "123", "sections": [
                {"title": "Fruit", "product_items": [{"product_retailer_id": "SKU1"}, {"product_retailer_id": "SKU2"}]},
                {"title": "Veg", "product_items": [{"product_retailer_id": "SKU3"}]}]},
        },
    }


HELLO_WORLD = {"name": "hello_world", "language": {"code": "en_US"}}
CONTACT_CARD = {
    "name": {"formatted_name": "Jane Doe", "first_name": "Jane", "last_name": "Doe"},
    "birthday": "1990-02-28",
    "phones": [{"phone": "+1 555 0100", "type": "CELL", "wa_id": "15550100"}],
    "emails": [{"email": "jane@example.com", "type": "WORK"}],
    "addresses": [{"street": "1 Hacker Way", "city": "Menlo Park", "country_code": "US", "type": "WORK"}],
    "org": {"company": "Example Inc", "title": "Chef"},
    "urls": [{"url": "https://example.com", "type": "HOME"}],
}


def valid_examples(to: str, inbound_wamid: str, media: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """One valid Cloud body per message type (and per way of naming media), keyed by a test id.

    `inbound_wamid` is a message the user sent (reactions and replies point at it);
    `media` maps a media type to an uploaded id (by-id examples are left out without it).
    """
    examples: dict[str, dict[str, Any]] = {
        "text": cloud(to, "text", {"body": "hello"}),
        "text-preview": cloud(to, "text", {"body": "see https://example.com", "preview_url": True}),
        "image-link": cloud(to, "image", {"link": LINK + "a.jpg", "caption": "a picture"}),
        "audio-link": cloud(to, "audio", {"link": LINK + "a.ogg"}),
        "video-link": cloud(to, "video", {"link": LINK + "a.mp4", "caption": "a film"}),
        "document-link": cloud(to, "document", {"link": LINK + "a.pdf", "filename": "a.pdf", "caption": "a file"}),
        "sticker-link": cloud(to, "sticker", {"link": LINK + "a.webp"}),
    }
    for kind, media_id in (media or {}).items():
        content: dict[str, Any] = {"id": media_id}
        if kind == "document":
            content["filename"] = "invoice.pdf"
        if kind == "audio":
            content["voice"] = True
        examples[f"{kind}-id"] = cloud(to, kind, content)
    examples.update({
        "location": cloud(to, "location", {"latitude": 37.483307, "longitude": -122.148981, "name": "Meta HQ",
                                           "address": "1 Hacker Way, Menlo Park, CA 94025"}),
        "contacts": cloud(to, "contacts", [CONTACT_CARD]),
        **{f"interactive-{name}": cloud(to, "interactive", body)
           for name, body in interactive_examples((media or {}).get("image")).items()},
        "template-hello_world": cloud(to, "template", HELLO_WORLD),
        "reaction": cloud(to, "reaction", {"message_id": inbound_wamid, "emoji": "\U0001f44d"}),
        "reaction-removed": cloud(to, "reaction", {"message_id": inbound_wamid, "emoji": ""}),
        "reply-context": cloud(to, "text", {"body": "replying to you"}, context={"message_id": inbound_wamid}),
    })
    return examples


# --- answers ------------------------------------------------------------------------------


def assert_graph_error(reply: Reply, code: int, status: int = 400) -> str:
    """A Graph API error with `code`; returns its details."""
    assert reply.status == status, f"expected HTTP {status}, got {reply.status}: {reply.body!r}"
    assert reply.headers.get("content-type", "").startswith("application/json")
    body = reply.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert error["code"] == code, f"expected code {code}, got {error}"
    assert error["type"] == "OAuthException"
    assert isinstance(error["message"], str) and error["message"].startswith(f"(#{code}) "), error
    assert len(error["message"]) > len(f"(#{code}) ")
    assert error["error_data"]["messaging_product"] == "whatsapp"
    details = error["error_data"]["details"]
    assert isinstance(details, str) and details, error
    assert isinstance(error["fbtrace_id"], str) and error["fbtrace_id"], error
    return details


def assert_on_premise_meta(body: dict[str, Any]) -> None:
    meta = body["meta"]
    assert set(meta) == ON_PREMISE_META_KEYS, meta
    assert meta["api_status"] == "stable" and isinstance(meta["version"], str) and meta["version"], meta


def assert_on_premise_error(reply: Reply, code: int | None = None) -> dict[str, Any]:
    """An On-Premise error: 4xx with `{"errors": [{code, title, details, ...}], "meta": {...}}`."""
    assert 400 <= reply.status < 500, f"expected a 4xx, got {reply.status}: {reply.body!r}"
    body = reply.json()
    assert set(body) == {"errors", "meta"}, body
    assert_on_premise_meta(body)
    [error] = body["errors"]
    assert isinstance(error["code"], int), error
    assert isinstance(error["title"], str) and error["title"], error
    assert isinstance(error["details"], str) and error["details"], error
    if code is not None:
        assert error["code"] == code, error
    return dict(error)


# --- what the server stored and posted ------------------------------------------------------


def stored_counts(srv: Server) -> tuple[int, int]:
    """(outbound messages, events) in the database."""
    [messages] = srv.query("SELECT count(*) AS n FROM messages WHERE direction = 'out'")
    [events] = srv.query("SELECT count(*) AS n FROM events")
    return int(messages["n"]), int(events["n"])


def status_events(srv: Server, wamid: str) -> list[dict[str, Any]]:
    return srv.query("SELECT id, kind, wamid FROM events WHERE wamid = ? ORDER BY created_at", wamid)


def user_view(srv: Server, wa_id: str, key: str | None = "") -> dict[str, Any]:
    """What the simulated user's phone shows (`GET /sandbox/users/{wa_id}/messages`)."""
    reply = srv.call("GET", f"/sandbox/users/{wa_id}/messages", key=key)
    assert reply.status == 200, reply.body
    view: dict[str, Any] = reply.json()
    return view


def inbound_ids(srv: Server, wa_id: str, key: str | None = "") -> list[str]:
    """The wamids of what the user sent, oldest first."""
    messages = user_view(srv, wa_id, key)["messages"]
    return [m["id"] for m in reversed(messages) if m["direction"] == "inbound"]


def statuses(receiver: Receiver, wamid: str) -> list[dict[str, Any]]:
    """Status items for `wamid` in the Cloud envelope, in arrival order."""
    return [r.status for r in receiver.statuses_of(wamid) if r.status is not None]


def wait_statuses(receiver: Receiver, wamid: str, wanted: set[str]) -> dict[str, dict[str, Any]]:
    """Wait until the Cloud status webhooks of `wamid` include every status in `wanted`; by status name."""
    def check(requests: list[Received]) -> dict[str, dict[str, Any]] | None:
        found = {r.status["status"]: r.status for r in requests
                 if r.status is not None and r.status.get("id") == wamid}
        return found if wanted <= set(found) else None
    return receiver.wait_for(check, what=f"{sorted(wanted)} of {wamid}")


def flat_items(receiver: Receiver, key: str, match: Callable[[dict[str, Any]], bool]) -> list[Received]:
    """On-Premise (flat) webhooks whose top-level `key` list has an item matching `match`."""
    return [r for r in receiver.requests
            if isinstance(r.json, dict) and any(match(item) for item in r.json.get(key) or [])]


def wait_flat(receiver: Receiver, key: str, match: Callable[[dict[str, Any]], bool], what: str) -> Received:
    return receiver.wait_for(lambda _: next(iter(flat_items(receiver, key, match)), None), what=what)


def wait_for_status_events(srv: Server, wamid: str, count: int = 1) -> list[dict[str, Any]]:
    def probe() -> list[dict[str, Any]] | None:
        rows = status_events(srv, wamid)
        return rows if len(rows) >= count else None
    return wait_until(probe, what=f"{count} status event(s) for {wamid}")


def make_seeded_number_on_premise(srv: Server) -> None:
    """Turn the seeded sandbox number (the one with simulated users) into an On-Premise number.

    No API changes a number's format, so this changes the stored format while the
    server is stopped (everything else runs through the real server). New tests
    should create an On-Premise number with the partner API and `sandbox_users`.
    """
    srv.stop()
    srv.execute("UPDATE channels SET format = 'on_premise' WHERE id = (SELECT min(id) FROM channels)")
    assert srv.query("SELECT count(*) AS n FROM channels WHERE format = 'on_premise'")[0]["n"] == 1
    srv.start()

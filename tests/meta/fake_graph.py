"""A fake Meta Graph API (WhatsApp Cloud API) over real HTTP on 127.0.0.1, plus Meta's webhook payloads.

`FakeGraph` runs an aiohttp server on its own event loop in a background thread, so the same
instance serves a test's `asyncio.run(...)` code and a separate `openwaba serve` process.
It records every request, answers the Cloud API endpoints openwaba uses (send, mark-as-read,
media upload/metadata/download/delete, message templates) with Meta's documented bodies, and
can be scripted to fail, hang or drop the next requests. The module-level builders produce
Meta's webhook shapes (/work/shared/reference/meta-cloud-api.md §3), and `post_webhook` signs
and posts them the way Meta does (§4.2).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import email.message
import hashlib
import hmac
import itertools
import json
import re
import secrets
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar
from urllib.parse import parse_qsl, urlencode

from aiohttp import web

T = TypeVar("T")

DEFAULT_VERSION: Final = "v25.0"
DEFAULT_PNID: Final = "106540352242922"  # Meta's example phone number id
DEFAULT_WABA: Final = "102290129340398"  # Meta's example WABA id
DEFAULT_DISPLAY_NUMBER: Final = "15550783881"
ERROR_HREF: Final = "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"

# Titles Meta puts in "(#code) Title" (reference §2.3); other codes fall back to "Something went wrong".
TITLES: Final[dict[int, str]] = {
    1: "API Unknown", 2: "API Service", 4: "Application request limit reached", 10: "Permission Denied",
    100: "Invalid parameter", 190: "Access token has expired", 80007: "Rate limit issues",
    130429: "Rate limit hit", 131000: "Something went wrong", 131005: "Access denied",
    131008: "Required parameter is missing", 131009: "Parameter value is not valid",
    131016: "Service unavailable", 131026: "Message Undeliverable",
    131030: "Recipient phone number not in allowed list", 131047: "Re-engagement message",
    131053: "Media upload error", 131056: "(Business Account, Consumer Account) pair rate limit hit",
    131057: "Account in maintenance mode", 132000: "Number of parameters does not match the expected number of params",
    132001: "Template name does not exist in the translation",
}

# Meta's own sample template, as `GET /{waba}/message_templates` lists it.
HELLO_WORLD: Final[dict[str, Any]] = {
    "name": "hello_world",
    "parameter_format": "POSITIONAL",
    "components": [
        {"type": "HEADER", "format": "TEXT", "text": "Hello World"},
        {"type": "BODY", "text": "Welcome and congratulations!! This message demonstrates your ability to send a "
                                 "WhatsApp message notification from the Cloud API, hosted by Meta. Thank you for "
                                 "taking the time to test with us."},
        {"type": "FOOTER", "text": "WhatsApp Business Platform sample message"},
    ],
    "language": "en_US",
    "status": "APPROVED",
    "category": "UTILITY",
    "id": "1192339204654487",
}

_VERSION = r"(?:/(?P<version>v\d+\.\d+))?"  # Graph accepts an unversioned path too (reference §0)
_ROUTES: Final = [
    ("POST", re.compile(_VERSION + r"/(?P<node>\d+)/messages"), "_send"),
    ("POST", re.compile(_VERSION + r"/(?P<node>\d+)/media"), "_upload"),
    ("GET", re.compile(_VERSION + r"/(?P<node>\d+)/message_templates"), "_templates"),
    ("GET", re.compile(_VERSION + r"/(?P<node>\d+)"), "_media_info"),
    ("DELETE", re.compile(_VERSION + r"/(?P<node>\d+)"), "_media_delete"),
    ("GET", re.compile(r"/download/(?P<node>\d+)"), "_download"),
]


@dataclass(frozen=True)
class Recorded:
    """One request the fake received (before any scripted fault or auth check)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # names lower-cased
    body: bytes
    json: Any  # the parsed body when it is JSON, else None
    form: dict[str, str | bytes]  # multipart / urlencoded fields; file parts as bytes


@dataclass(frozen=True)
class StoredMedia:
    data: bytes
    mime_type: str
    sha256: str  # hex, as the metadata endpoint reports it


@dataclass
class _Fault:
    kind: str  # "fail" | "hang" | "drop"
    path_contains: str | None
    status: int = 500
    body: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


class _Default:
    """Marks "use the instance's app secret" in `post_webhook` (None means: send no signature)."""


_DEFAULT: Final = _Default()
_wamid_numbers = itertools.count(1)


# --- Graph wire formats ----------------------------------------------------------------------------------


def fbtrace_id() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(15)).decode()[:23]


def graph_error(code: int, details: str, title: str | None = None) -> dict[str, Any]:
    """Graph's error body for a Cloud API error (reference §2.1)."""
    return {"error": {"message": f"(#{code}) {title or TITLES.get(code, 'Something went wrong')}",
                      "type": "OAuthException", "code": code,
                      "error_data": {"messaging_product": "whatsapp", "details": details},
                      "fbtrace_id": fbtrace_id()}}


def _unknown_object(method: str, node: str) -> dict[str, Any]:
    # Graph's answer to an id that is not (visible as) a node; a GraphMethodException, not an OAuthException.
    return {"error": {"message": f"Unsupported {method.lower()} request. Object with ID '{node}' does not exist, "
                                 "cannot be loaded due to missing permissions, or does not support this operation. "
                                 "Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api",
                      "type": "GraphMethodException", "code": 100, "error_subcode": 33, "fbtrace_id": fbtrace_id()}}


def wamid(wa_id: str, *, outbound: bool = True) -> str:
    """A realistic, unique message id: "wamid." + padded base64 of the Thrift-like struct Meta uses (§6).

    Business-sent ids carry an 18-hex-digit key and flag true; user-sent ones 20 digits and flag false.
    """
    digits = re.sub(r"\D", "", wa_id).encode()
    number = next(_wamid_numbers)
    key = (secrets.token_hex(6) + f"{number:0{6 if outbound else 8}X}").upper().encode()
    raw = (b"\x1c\x18" + bytes([len(digits)]) + digits + b"\x15\x02\x00" + (b"\x11" if outbound else b"\x12")
           + b"\x18" + bytes([len(key)]) + key + b"\x00")
    return "wamid." + base64.b64encode(raw).decode()


def meta_json(payload: Any) -> bytes:
    """Serialise like Meta: compact, non-ASCII escaped as \\uXXXX (sign these exact bytes)."""
    return json.dumps(payload, ensure_ascii=True, separators=(",", ":")).encode()


def meta_signature(app_secret: str, body: bytes) -> str:
    """The X-Hub-Signature-256 header value for `body`."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def _header_params(value: str) -> email.message.Message:
    # The stdlib parses `type; a=b; c="d"` parameters (boundary, name, filename) correctly.
    message = email.message.Message()
    message["content-type"] = value
    return message


def parse_form(content_type: str, body: bytes) -> tuple[dict[str, str | bytes], dict[str, str]]:
    """(fields, content type of each file part) of a multipart or urlencoded body; empty for others."""
    if content_type.startswith("application/x-www-form-urlencoded"):
        return dict(parse_qsl(body.decode("latin-1"))), {}
    boundary = _header_params(content_type).get_param("boundary") if content_type.startswith("multipart/") else None
    if not isinstance(boundary, str):
        return {}, {}
    fields: dict[str, str | bytes] = {}
    types: dict[str, str] = {}
    # Split by hand rather than with email's parser, which may rewrite line endings inside binary parts.
    for chunk in body.split(b"--" + boundary.encode())[1:]:
        if chunk.startswith(b"--"):
            break
        head, _, data = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        headers = dict(line.split(":", 1) for line in head.decode("utf-8", "replace").split("\r\n") if ":" in line)
        headers = {k.strip().lower(): v.strip() for k, v in headers.items()}
        disposition = _header_params("form-data; " + headers.get("content-disposition", "").partition(";")[2])
        name, filename = disposition.get_param("name"), disposition.get_param("filename")
        if not isinstance(name, str):
            continue
        data = data.removesuffix(b"\r\n")
        if filename is not None:  # text fields may carry a Content-Type too (aiohttp sends one)
            fields[name] = data
            types[name] = headers.get("content-type", "application/octet-stream")
        else:
            fields[name] = data.decode("utf-8", "replace")
    return fields, types


# --- the server ------------------------------------------------------------------------------------------


class FakeGraph:
    """A Meta Graph API on 127.0.0.1 in a background thread. Use as a context manager."""

    def __init__(self, token: str = "EAAtest", app_secret: str = "appsecret", *, version: str = DEFAULT_VERSION,
                 phone_number_ids: set[str] | None = None) -> None:
        self.token = token
        self.app_secret = app_secret
        self.version = version  # what clients should use; any vNN.N is accepted
        self.phone_number_ids: set[str] = set(phone_number_ids or {DEFAULT_PNID})
        self.templates: list[dict[str, Any]] = [json.loads(json.dumps(HELLO_WORLD))]
        self.url = ""
        self._lock = threading.Lock()
        self._requests: list[Recorded] = []
        self._answered: list[str] = []  # the wamids sends were answered with, in order
        self._faults: list[_Fault] = []
        self._media: dict[str, StoredMedia] = {}
        self._media_ids = itertools.count(1013859600285441)  # Meta's example media id, counting up
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._stopping: asyncio.Event | None = None

    # --- lifecycle

    def __enter__(self) -> FakeGraph:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._serve())
            except BaseException as exc:  # reported to the starting thread below
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, name="fake-graph", daemon=True)
        self._thread.start()
        if not ready.wait(10) or failure:
            raise RuntimeError(f"the fake Graph API did not start: {failure}")

    async def _serve(self) -> None:
        self._stopping = asyncio.Event()
        app = web.Application(client_max_size=200 * 1024 * 1024)  # documents may be 100 MB
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # A short shutdown timeout: stop() must not wait for slow clients.
        self._runner = web.AppRunner(app, shutdown_timeout=0.5, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    def stop(self) -> None:
        loop, thread, runner = self._loop, self._thread, self._runner
        if loop is None or thread is None or runner is None or not thread.is_alive():
            return

        async def shutdown() -> None:
            assert self._stopping is not None
            self._stopping.set()  # releases hanging handlers at once
            await runner.cleanup()

        asyncio.run_coroutine_threadsafe(shutdown(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        self._thread = None

    # --- what was received

    @property
    def requests(self) -> list[Recorded]:
        """A snapshot of every request received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def clear(self) -> None:
        """Forget recorded requests and queued faults."""
        with self._lock:
            self._requests.clear()
            self._faults.clear()

    def sent_messages(self, phone_number_id: str | None = None) -> list[dict[str, Any]]:
        """The JSON bodies of every message POSTed to /{v}/{pnid}/messages (not mark-as-read), whatever was
        answered: a retried send appears once per attempt."""
        return [r.json for r in self._message_posts(phone_number_id) if "status" not in r.json]

    def marked_read(self, phone_number_id: str | None = None) -> list[str]:
        """The message ids of every mark-as-read (or typing indicator) POSTed."""
        return [str(r.json.get("message_id")) for r in self._message_posts(phone_number_id) if "status" in r.json]

    def _message_posts(self, phone_number_id: str | None) -> list[Recorded]:
        found = []
        for r in self.requests:
            match = _ROUTES[0][1].fullmatch(r.path)
            if r.method == "POST" and match and isinstance(r.json, dict) and (
                    phone_number_id is None or match["node"] == phone_number_id):
                found.append(r)
        return found

    def wait_for(self, predicate: Callable[[], T], timeout: float = 10.0) -> T:
        """Poll `predicate()` every 20 ms until it returns something truthy, and return that."""
        deadline = time.monotonic() + timeout
        while True:
            result = predicate()
            if result:
                return result
            if time.monotonic() >= deadline:
                seen = "\n".join(f"  {r.method} {r.path} {r.body[:200]!r}" for r in self.requests[-20:])
                raise AssertionError(f"timed out after {timeout:g} s; the fake Graph API received:\n{seen}")
            time.sleep(0.02)

    # --- scripting

    def fail_next(self, n: int = 1, status: int = 500, code: int = 131000, details: str = "Something went wrong",
                  path_contains: str | None = "/messages", *, title: str | None = None) -> None:
        """Answer the next `n` authenticated requests whose path contains `path_contains` (None: any) with a
        Graph error. Throttling: `fail_next(1, 400, 130429, ...)`, or status 429 with code 4 / 80007."""
        body = graph_error(code, details, title)
        with self._lock:
            self._faults.extend(_Fault("fail", path_contains, status, body) for _ in range(n))

    def hang_next(self, n: int = 1, seconds: float = 5.0, path_contains: str | None = "/messages") -> None:
        """Delay the next `n` matching answers by `seconds` (cut short when the server stops), then answer."""
        with self._lock:
            self._faults.extend(_Fault("hang", path_contains, seconds=seconds) for _ in range(n))

    def drop_next(self, n: int = 1, path_contains: str | None = "/messages") -> None:
        """Close the connection of the next `n` matching requests without answering."""
        with self._lock:
            self._faults.extend(_Fault("drop", path_contains) for _ in range(n))

    def _take_fault(self, path: str) -> _Fault | None:
        with self._lock:
            for index, fault in enumerate(self._faults):
                if fault.path_contains is None or fault.path_contains in path:
                    return self._faults.pop(index)
        return None

    # --- media Meta "has"

    def add_media(self, data: bytes, mime_type: str) -> str:
        """Store media (e.g. what a user sent) and return its numeric media id."""
        with self._lock:
            media_id = str(next(self._media_ids))
            self._media[media_id] = StoredMedia(data, mime_type, hashlib.sha256(data).hexdigest())
        return media_id

    @property
    def media(self) -> dict[str, StoredMedia]:
        """A snapshot of the stored media by id (uploaded or added)."""
        with self._lock:
            return dict(self._media)

    # --- request handling (event-loop thread)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        recorded = await self._record(request)
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return _auth_error()
        fault = self._take_fault(recorded.path)
        if fault is not None and fault.kind == "drop":
            if request.transport is not None:
                request.transport.abort()
            return web.Response()  # never reaches the client
        if fault is not None and fault.kind == "fail":
            return web.json_response(fault.body, status=fault.status)
        if fault is not None and fault.kind == "hang":
            assert self._stopping is not None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), fault.seconds)
        for method, pattern, handler in _ROUTES:
            match = pattern.fullmatch(recorded.path)
            if match and request.method == method:
                answer: web.StreamResponse = getattr(self, handler)(recorded, match["node"])
                return answer
        return web.json_response({"error": {"message": f"Unknown path components: {recorded.path}",
                                            "type": "OAuthException", "code": 2500,
                                            "fbtrace_id": fbtrace_id()}}, status=400)

    async def _record(self, request: web.Request) -> Recorded:
        body = await request.read()
        content_type = request.headers.get("Content-Type", "")
        parsed: Any = None
        if body[:1] in (b"{", b"[") or "json" in content_type:
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None
        recorded = Recorded(request.method, request.path, dict(request.query),
                            {k.lower(): v for k, v in request.headers.items()}, body, parsed,
                            parse_form(content_type, body)[0])
        with self._lock:
            self._requests.append(recorded)
        return recorded

    def _send(self, r: Recorded, pnid: str) -> web.Response:
        if pnid not in self.phone_number_ids:
            return web.json_response(_unknown_object("POST", pnid), status=400)
        body = r.json
        if not isinstance(body, dict) or body.get("messaging_product") != "whatsapp":
            return _bad_request(100, "The parameter messaging_product is required.")
        if body.get("status") == "read":
            return web.json_response({"success": True})
        to = body.get("to")
        if not isinstance(to, str) or not to:
            return _bad_request(100, "The parameter to is required.")
        digits = re.sub(r"\D", "", to)
        answered = wamid(digits)
        with self._lock:
            self._answered.append(answered)
        return web.json_response({"messaging_product": "whatsapp", "contacts": [{"input": to, "wa_id": digits}],
                                  "messages": [{"id": answered}]})

    def answered(self) -> list[str]:
        """The wamids sends were answered with, in order."""
        with self._lock:
            return list(self._answered)

    def _upload(self, r: Recorded, pnid: str) -> web.Response:
        if pnid not in self.phone_number_ids:
            return web.json_response(_unknown_object("POST", pnid), status=400)
        fields, types = parse_form(r.headers.get("content-type", ""), r.body)
        if fields.get("messaging_product") != "whatsapp":
            return _bad_request(100, "The parameter messaging_product is required.")
        data = fields.get("file")
        if not isinstance(data, bytes):
            return _bad_request(100, "The parameter file is required.")
        kind = fields.get("type")  # Meta takes the MIME type from `type`, the part's own type otherwise
        return web.json_response({"id": self.add_media(data, kind if isinstance(kind, str) else types["file"])})

    def _media_info(self, r: Recorded, media_id: str) -> web.Response:
        stored = self.media.get(media_id)
        if stored is None:
            return web.json_response(_unknown_object("GET", media_id), status=400)
        # Like lookaside.fbsbx.com: a per-media URL that still needs the Bearer token.
        url = f"{self.url}/download/{media_id}?" + urlencode({"token": secrets.token_urlsafe(12)})
        return web.json_response({"messaging_product": "whatsapp", "url": url, "mime_type": stored.mime_type,
                                  "sha256": stored.sha256, "file_size": len(stored.data), "id": media_id})

    def _media_delete(self, r: Recorded, media_id: str) -> web.Response:
        with self._lock:
            found = self._media.pop(media_id, None)
        if found is None:
            return web.json_response(_unknown_object("DELETE", media_id), status=400)
        return web.json_response({"success": True})

    def _download(self, r: Recorded, media_id: str) -> web.Response:
        stored = self.media.get(media_id)
        if stored is None:
            return web.json_response(_unknown_object("GET", media_id), status=404)
        return web.Response(body=stored.data, headers={"Content-Type": stored.mime_type})

    def _templates(self, r: Recorded, waba_id: str) -> web.Response:
        """One page of `self.templates` (optionally filtered by `status`), cursor-paged like Graph."""
        wanted = r.query.get("status", "").upper()
        rows = [t for t in self.templates if not wanted or str(t.get("status", "")).upper() == wanted]
        start = int(base64.b64decode(r.query["after"]).decode()) if r.query.get("after") else 0
        limit = int(r.query.get("limit") or 25)
        page = rows[start:start + limit]
        before, after = (base64.b64encode(str(i).encode()).decode() for i in (start, start + len(page)))
        paging: dict[str, Any] = {"cursors": {"before": before, "after": after}}
        if start + limit < len(rows):
            query = {**r.query, "after": after}
            paging["next"] = f"{self.url}{r.path}?{urlencode(query)}"
        answer: dict[str, Any] = {"data": page, "paging": paging}
        if r.query.get("summary"):  # e.g. summary=total_count,message_template_limit (pywa asks for it)
            known = {"total_count": len(rows), "message_template_count": len(self.templates),
                     "message_template_limit": 250, "are_translations_complete": True}
            answer["summary"] = {k: known[k] for k in r.query["summary"].split(",") if k in known}
        return web.json_response(answer)

    # --- webhooks (caller's thread)

    def post_webhook(self, target_url: str, payload: dict[str, Any] | bytes, *,
                     app_secret: str | None | _Default = _DEFAULT, signature: str | None = None,
                     timeout: float = 10.0) -> tuple[int, bytes]:
        """POST a webhook like Meta: compact JSON signed with X-Hub-Signature-256 (by the app secret given,
        the instance's by default; `app_secret=None` sends no signature; `signature` sends that exact value)."""
        body = payload if isinstance(payload, bytes) else meta_json(payload)
        secret = self.app_secret if isinstance(app_secret, _Default) else app_secret
        headers = {"Content-Type": "application/json", "User-Agent": "facebookexternalua"}
        if signature is not None:
            headers["X-Hub-Signature-256"] = signature
        elif secret is not None:
            headers["X-Hub-Signature-256"] = meta_signature(secret, body)
        return _http(urllib.request.Request(target_url, data=body, headers=headers, method="POST"), timeout)

    def verify_webhook(self, target_url: str, verify_token: str, challenge: str = "1158201444",
                       timeout: float = 10.0) -> tuple[int, bytes]:
        """Meta's subscription handshake: GET ?hub.mode=subscribe&hub.challenge=…&hub.verify_token=…"""
        params = {"hub.mode": "subscribe", "hub.challenge": challenge, "hub.verify_token": verify_token}
        return _http(urllib.request.Request(f"{target_url}?{urlencode(params)}"), timeout)


# No proxies from the environment: the targets are local. (urllib, not httpx: an httpx client costs ~0.1 s of
# TLS setup each time.)
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _http(request: urllib.request.Request, timeout: float) -> tuple[int, bytes]:
    try:
        with _opener.open(request, timeout=timeout) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _bad_request(code: int, details: str) -> web.Response:
    return web.json_response(graph_error(code, details), status=400)


def _auth_error() -> web.Response:
    message = "Invalid OAuth access token - Cannot parse access token"
    return web.json_response(
        {"error": {"message": message, "type": "OAuthException", "code": 190, "fbtrace_id": fbtrace_id()}},
        status=401, headers={"WWW-Authenticate": f'OAuth "Facebook Platform" "invalid_token" "{message}"'})


# --- webhook payload builders (reference §3) --------------------------------------------------------------


def _now() -> str:
    return str(int(time.time()))


def contact(wa_id: str, name: str) -> dict[str, Any]:
    """One `value.contacts[]` item."""
    return {"profile": {"name": name}, "wa_id": wa_id}


def notification(waba_id: str, phone_number_id: str, display_phone_number: str, value_items: dict[str, Any],
                 contacts: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The `messages` field envelope; `value_items` is e.g. {"messages": [...]}, {"statuses": [...]} or
    {"errors": [...]}, merged into `value` after metadata (and `contacts`, when given)."""
    value: dict[str, Any] = {"messaging_product": "whatsapp",
                             "metadata": {"display_phone_number": display_phone_number,
                                          "phone_number_id": phone_number_id}}
    if contacts is not None:
        value["contacts"] = contacts
    value.update(value_items)
    return {"object": "whatsapp_business_account",
            "entry": [{"id": waba_id, "changes": [{"value": value, "field": "messages"}]}]}


def inbound_text(wa_id: str, text: str, wamid: str | None = None, timestamp: str | int | None = None
                 ) -> dict[str, Any]:
    """A `messages[]` item of type text."""
    return {"from": wa_id, "id": wamid or _inbound_wamid(wa_id), "timestamp": str(timestamp or _now()),
            "text": {"body": text}, "type": "text"}


def inbound_media(wa_id: str, kind: str, media_id: str, mime_type: str, sha256: str, caption: str | None = None,
                  *, filename: str | None = None, wamid: str | None = None, timestamp: str | int | None = None
                  ) -> dict[str, Any]:
    """A `messages[]` item of type image/video/audio/document/sticker. Meta's webhooks carry `sha256` as
    base64 (observed), while the media metadata endpoint reports hex: pass whichever the test needs."""
    media: dict[str, Any] = {}
    if caption is not None:
        media["caption"] = caption
    if filename is not None:
        media["filename"] = filename
    media.update({"mime_type": mime_type, "sha256": sha256, "id": media_id})
    return {"from": wa_id, "id": wamid or _inbound_wamid(wa_id), "timestamp": str(timestamp or _now()),
            "type": kind, kind: media}


def status(wamid: str, status: str, recipient_id: str, timestamp: str | int | None = None,
           errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A `statuses[]` item. Non-failed ones carry conversation and PMP pricing; failed ones `errors`
    (build them with `value_error`) and neither of those (reference §3.4)."""
    item: dict[str, Any] = {"id": wamid, "status": status, "timestamp": str(timestamp or _now()),
                            "recipient_id": recipient_id}
    if status != "failed":
        conversation: dict[str, Any] = {"id": secrets.token_hex(16), "origin": {"type": "service"}}
        if status == "sent":
            conversation["expiration_timestamp"] = str(int(item["timestamp"]) + 86400)
        item["conversation"] = conversation
        item["pricing"] = {"billable": False, "pricing_model": "PMP", "category": "service",
                           "type": "free_customer_service"}
    if errors is not None:
        item["errors"] = errors
    return item


def value_error(code: int, title: str, details: str) -> dict[str, Any]:
    """An error object as webhooks carry it: title == message, no "(#code)", no type/fbtrace_id, an href."""
    return {"code": code, "title": title, "message": title, "error_data": {"details": details},
            "href": ERROR_HREF}


def template_status(waba_id: str, template_id: str | int, name: str, language: str, event: str,
                    reason: str | None = None) -> dict[str, Any]:
    """A `message_template_status_update` notification (event APPROVED/REJECTED/PAUSED/DISABLED/...)."""
    numeric = int(template_id) if str(template_id).isdigit() else template_id  # Meta sends a JSON number
    value = {"event": event, "message_template_id": numeric, "message_template_name": name,
             "message_template_language": language, "reason": reason or "NONE"}
    return {"object": "whatsapp_business_account",
            "entry": [{"id": waba_id, "time": int(time.time()),
                       "changes": [{"value": value, "field": "message_template_status_update"}]}]}


def _inbound_wamid(wa_id: str) -> str:
    return wamid(wa_id, outbound=False)

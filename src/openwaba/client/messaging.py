"""Operations on a number: messages, read receipts, media, templates, profile and health.

Each function takes the :class:`Target` first and returns an :data:`Operation`;
`Client` and `AsyncClient` expose them as methods without the target.
"""

from __future__ import annotations

import json
import mimetypes
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, cast

from openwaba.client import messages
from openwaba.client.exchange import Operation, Request, Upload
from openwaba.client.messages import Message
from openwaba.client.results import MediaInfo, Sent, Template
from openwaba.client.target import Target

Json = dict[str, Any]


def call(
    target: Target,
    /,
    method: str,
    route: str,
    *,
    json: Any = None,
    params: Mapping[str, str] | None = None,
    **ids: str,
) -> Operation[Json]:
    """One JSON request to a route of the number; the answer's JSON object."""
    reply = yield Request(method, target.url(route, **ids), target.headers, params=dict(params or {}), json=json)
    return cast(Json, reply.json() or {})


def send(target: Target, /, message: Message) -> Operation[Sent]:
    """Send a message built with `openwaba.client.messages` (text, media, interactive, template, …)."""
    return Sent.read((yield from call(target, "POST", "messages", json=message.body())))


def send_text(
    target: Target, /, to: str, body: str, *, preview_url: bool = False, reply_to: str | None = None
) -> Operation[Sent]:
    """Send a text message (optionally as a reply to `reply_to`)."""
    message = messages.text(to, body, preview_url=preview_url)
    return (yield from send(target, message.replying_to(reply_to) if reply_to else message))


def mark_read(target: Target, /, message_id: str, *, typing: bool = False) -> Operation[bool]:
    """Mark a received message (and the ones before it) read; `typing` also shows "typing…" to the user."""
    body: Json = {"messaging_product": "whatsapp", "status": "read", "message_id": message_id}
    if typing:
        body["typing_indicator"] = {"type": "text"}
    return bool((yield from call(target, "POST", "messages", json=body)).get("success"))


def upload_media(
    target: Target, /, file: bytes | str | Path, mime_type: str | None = None, *, filename: str | None = None
) -> Operation[str]:
    """Upload a file (bytes or a path); the media id to send it with."""
    if isinstance(file, bytes):
        content, name = file, filename or "upload"
    else:
        path = Path(file)
        content, name = path.read_bytes(), filename or path.name
    mime = mime_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
    request = Request(
        "POST",
        target.url("media"),
        target.headers,
        data={"messaging_product": "whatsapp"},
        upload=Upload("file", name, content, mime),
    )
    reply = yield request
    return str(reply.json()["id"])


def media(target: Target, /, media_id: str) -> Operation[MediaInfo]:
    """Metadata of a media id, with a short-lived download URL."""
    return MediaInfo.read((yield from call(target, "GET", "media_item", media_id=media_id)))


def download_media(target: Target, /, media_id: str) -> Operation[bytes]:
    """The bytes of a media id (uploaded by the business or received from a user)."""
    info = yield from media(target, media_id)
    url, headers = target.download_url(info.url)
    reply = yield Request("GET", url, headers)
    reply.raise_for_status()
    return reply.content


def delete_media(target: Target, /, media_id: str) -> Operation[bool]:
    return bool((yield from call(target, "DELETE", "media_item", media_id=media_id)).get("success"))


def templates(target: Target, /, **filters: str) -> Operation[list[Template]]:
    """Every template of the number's WABA, all pages; filters such as `status="approved"`, `name=...`."""
    found: list[Template] = []
    if target.is_graph:
        params: dict[str, str] = {**{k: v.upper() if k == "status" else v for k, v in filters.items()}}
        params["limit"] = "100"
        while True:
            page = yield from call(target, "GET", "templates", params=params)
            found += [Template.read(t) for t in page.get("data", [])]
            after = page.get("paging", {}).get("cursors", {}).get("after")
            if not page.get("paging", {}).get("next") or not after:
                return found
            params["after"] = after
    offset = 0
    while True:
        params = {"limit": "1000", "offset": str(offset)} | ({"filters": json.dumps(filters)} if filters else {})
        page = yield from call(target, "GET", "templates", params=params)
        found += [Template.read(t) for t in page.get("waba_templates", [])]
        offset += int(page.get("count", 0))
        if not page.get("count") or offset >= int(page.get("total", 0)):
            return found


def create_template(
    target: Target,
    /,
    name: str,
    language: str,
    category: Literal["marketing", "utility", "authentication"],
    components: Sequence[Mapping[str, Any]],
) -> Operation[Json]:
    """Submit a template for review; the answer (id, status). The outcome arrives as a template status webhook."""
    body = {"name": name, "language": language, "category": category.upper(), "components": list(components)}
    return (yield from call(target, "POST", "templates", json=body))


def delete_template(target: Target, /, name: str) -> Operation[bool]:
    """Delete every language of a template, by name."""
    params = {"name": name} if target.is_graph else None  # Meta deletes with ?name=, 360dialog by path
    return bool((yield from call(target, "DELETE", "template", params=params, name=name)).get("success", True))


def phone_number(target: Target, /) -> Operation[Json]:
    """The number the credentials belong to."""
    return (yield from call(target, "GET", "phone_number"))


def health(target: Target, /) -> Operation[Json]:
    """Whether the number can send (`health_status.can_send_message`)."""
    params = {"fields": "health_status"} if target.is_graph else None
    return (yield from call(target, "GET", "health", params=params))


def business_profile(target: Target, /) -> Operation[Json]:
    params = {"fields": "about,address,description,email,profile_picture_url,websites,vertical"}
    body = yield from call(target, "GET", "profile", params=params if target.is_graph else None)
    data = body.get("data")
    return cast(Json, data[0]) if isinstance(data, list) and data else body  # Meta wraps it in "data"


def update_business_profile(target: Target, /, **fields: Any) -> Operation[bool]:
    """Change the given profile fields only (about, address, description, email, websites, vertical)."""
    body = {"messaging_product": "whatsapp", **fields}
    return bool((yield from call(target, "POST", "profile", json=body)).get("success", True))

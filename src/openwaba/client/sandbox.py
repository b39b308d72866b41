"""Operations of openwaba's sandbox: act as a simulated WhatsApp user, move the clock."""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Any, cast

from openwaba.client.exchange import Operation, Request, Upload
from openwaba.client.messaging import Json, call
from openwaba.client.target import Target


def users(target: Target, /) -> Operation[list[Json]]:
    """The number's simulated users (`wa_id`, `name`, `user_id`)."""
    return cast(list[Json], (yield from call(target, "GET", "sandbox_users"))["users"])


def user_says(target: Target, /, wa_id: str, text: str, *, reply_to: str | None = None) -> Operation[str]:
    """A simulated user writes to the business; the inbound message's wamid (its webhook follows)."""
    body: Json = {"text": text}
    if reply_to:
        body["context"] = {"message_id": reply_to}
    answer = yield from call(target, "POST", "sandbox_user_messages", json=body, wa_id=wa_id)
    return str(answer["messages"][0]["id"])


def user_sends_file(
    target: Target, /, wa_id: str, file: bytes | str | Path, mime_type: str | None = None, *, caption: str | None = None
) -> Operation[str]:
    """A simulated user sends a file; it arrives as an image/audio/video/document/sticker webhook."""
    content, name = (file, "file") if isinstance(file, bytes) else (Path(file).read_bytes(), Path(file).name)
    mime = mime_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
    url = target.url("sandbox_user_messages", wa_id=wa_id)
    form = {"caption": caption} if caption else {}
    reply = yield Request("POST", url, target.headers, data=form, upload=Upload("file", name, content, mime))
    return str(reply.json()["messages"][0]["id"])


def user_phone(target: Target, /, wa_id: str) -> Operation[Json]:
    """What the user's phone shows: the conversation, newest first, with statuses."""
    return (yield from call(target, "GET", "sandbox_user_messages", wa_id=wa_id))


def clock(target: Target, /) -> Operation[float]:
    """The gateway's current time (Unix seconds)."""
    return float((yield from call(target, "GET", "sandbox_clock"))["now"])


def advance_clock(target: Target, /, seconds: float) -> Operation[float]:
    """Move a manual clock (`OPENWABA_CLOCK=manual`) forward; due retries and statuses run."""
    body: dict[str, Any] = {"advance_seconds": seconds}
    return float((yield from call(target, "POST", "sandbox_clock", json=body))["now"])

"""The sandbox control face: simulated users and the manual clock."""

from __future__ import annotations

import contextlib
from datetime import datetime

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from openwaba.domain.accounts import Channel
from openwaba.domain.errors import RequestError, StateError
from openwaba.domain.media import clean_mime_type
from openwaba.domain.user_actions import parse_user_action
from openwaba.http.cloud import channel_of, gateway
from openwaba.http.responses import flat_face, json_body, json_response
from openwaba.http.uploads import chunks, file_part, multipart_form

MAX_CLOCK_STEP = 10 * 365 * 86400  # one step; keeps the manual clock finite


async def sandbox_channel(request: Request) -> Channel:
    channel = await channel_of(request)
    if channel.connector != "sandbox":
        raise StateError("this number is not a sandbox number; its users are real WhatsApp users")
    return channel


@flat_face
async def list_users(request: Request) -> Response:
    channel = await sandbox_channel(request)
    users = await gateway(request).sandbox.users(channel)
    return json_response({"users": [{"wa_id": u.wa_id, "name": u.name, "user_id": u.user_id} for u in users.values()]})


@flat_face
async def user_message(request: Request) -> Response:
    """A simulated user acts: JSON (text, location, contacts, reaction, a button or
    list-row tap; see domain/user_actions), or a multipart `file` (+ `caption`) sent as media."""
    channel = await sandbox_channel(request)
    gw = gateway(request)
    wa_id = request.path_params["wa_id"]
    await gw.sandbox.user(channel, wa_id)
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        wamid = await _user_media(request, channel, wa_id)
    else:
        wamid = await gw.sandbox.user_acts(channel, wa_id, parse_user_action(await json_body(request)))
    return json_response({"messages": [{"id": wamid}]})


async def _user_media(request: Request, channel: Channel, wa_id: str) -> str:
    gw = gateway(request)
    async with multipart_form(request) as form:
        file = file_part(form)
        caption = form.get("caption")
        mime_type = clean_mime_type(file.content_type)
        media, kind = await gw.media.upload(channel, mime_type, chunks(file), file.filename)
    return await gw.sandbox.user_sends_media(
        channel, wa_id, media, kind, caption if isinstance(caption, str) else None
    )


@flat_face
async def conversation(request: Request) -> Response:
    """What the simulated user's phone shows: the chat, newest first, with ticks."""
    channel = await sandbox_channel(request)
    return json_response(await gateway(request).sandbox.phone_view(channel, request.path_params["wa_id"]))


@flat_face
async def get_clock(request: Request) -> Response:
    await sandbox_channel(request)
    return json_response({"now": gateway(request).clock.now()})


@flat_face
async def move_clock(request: Request) -> Response:
    """`{"advance_seconds": 90000}` or `{"set": "2026-12-01T09:00:00Z"}` (or Unix seconds); only forward."""
    await sandbox_channel(request)
    gw = gateway(request)
    body = await json_body(request)
    if ("advance_seconds" in body) == ("set" in body):
        raise RequestError(100, "Send either 'advance_seconds' (a number of seconds) or 'set' (a time to jump to)")
    seconds = body["advance_seconds"] if "advance_seconds" in body else parse_instant(body["set"]) - gw.clock.now()
    if not isinstance(seconds, int | float) or isinstance(seconds, bool) or not 0 <= seconds <= MAX_CLOCK_STEP:
        if "set" in body:
            raise RequestError(100, "'set' must be a time from now to ten years ahead: the clock only moves forward")
        raise RequestError(100, f"'advance_seconds' must be a number from 0 to {MAX_CLOCK_STEP} (ten years)")
    return json_response({"now": await gw.advance_clock(float(seconds))})


def parse_instant(raw: object) -> float:
    """Unix seconds, or an ISO-8601 time with its offset (`Z` for UTC)."""
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return float(raw)
    when = None
    if isinstance(raw, str):
        with contextlib.suppress(ValueError):
            when = datetime.fromisoformat(raw)
    if when is None or when.tzinfo is None:
        raise RequestError(100, "'set' is Unix seconds or an ISO-8601 time with an offset, e.g. 2026-12-01T09:00:00Z")
    return when.timestamp()


routes = [
    Route("/sandbox/users", list_users, methods=["GET"]),
    Route("/sandbox/users/{wa_id}/messages", user_message, methods=["POST"]),
    Route("/sandbox/users/{wa_id}/messages", conversation, methods=["GET"]),
    Route("/sandbox/clock", get_clock, methods=["GET"]),
    Route("/sandbox/clock", move_clock, methods=["POST"]),
]

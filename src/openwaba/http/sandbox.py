"""The sandbox control face: simulated users and the manual clock."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from openwaba.domain.accounts import Channel
from openwaba.domain.errors import RequestError, StateError
from openwaba.http.cloud import channel_of, gateway
from openwaba.http.responses import flat_face, json_body, json_response


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
    channel = await sandbox_channel(request)
    text = _text(await json_body(request))
    wamid = await gateway(request).sandbox.user_says(channel, request.path_params["wa_id"], text)
    return json_response({"messages": [{"id": wamid}]})


@flat_face
async def get_clock(request: Request) -> Response:
    await sandbox_channel(request)
    return json_response({"now": gateway(request).clock.now()})


@flat_face
async def move_clock(request: Request) -> Response:
    await sandbox_channel(request)
    seconds = (await json_body(request)).get("advance_seconds")
    if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
        raise RequestError(100, "'advance_seconds' must be a number >= 0")
    return json_response({"now": await gateway(request).advance_clock(float(seconds))})


def _text(body: dict[str, Any]) -> str:
    """Accept `{"text": "hi"}` and the WhatsApp form `{"type": "text", "text": {"body": "hi"}}`."""
    text = body.get("text")
    if isinstance(text, dict):
        text = text.get("body")
    if not isinstance(text, str) or not text:
        raise RequestError(131008, 'Send {"text": "..."} or {"type": "text", "text": {"body": "..."}}')
    if body.get("type", "text") != "text":
        raise RequestError(131051, "Simulated users can send text messages only, for now")
    return text


routes = [
    Route("/sandbox/users", list_users, methods=["GET"]),
    Route("/sandbox/users/{wa_id}/messages", user_message, methods=["POST"]),
    Route("/sandbox/clock", get_clock, methods=["GET"]),
    Route("/sandbox/clock", move_clock, methods=["POST"]),
]

"""The 360dialog Cloud face (waba-v2): sending, mark-as-read, number lookup,
health and the business profile."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from openwaba.domain.accounts import Channel
from openwaba.domain.errors import AuthError, NotFoundError
from openwaba.domain.messages import Dialect
from openwaba.gateway import Gateway
from openwaba.http.responses import flat_face, graph_face, json_body, json_response
from openwaba.services.sending import Accepted

API_KEY_HEADER = "D360-API-KEY"
PARTNER_KEY_HEADER = "X-API-Key"
CHANNEL_HEADER = "X-Openwaba-Channel"


def gateway(request: Request) -> Gateway:
    gw: Gateway = request.app.state.gateway
    return gw


async def channel_of(request: Request) -> Channel:
    """The channel of the request's key: `D360-API-KEY`, or else `Authorization: Bearer
    <key>` as Graph clients send it (pywa also downloads media URLs that way).
    Looked up once per request: the Graph face authenticates before its handler runs."""
    channel: Channel | None = getattr(request.state, "channel", None)
    if channel is None:
        api_key = request.headers.get(API_KEY_HEADER) or bearer_token(request)
        if api_key is None and PARTNER_KEY_HEADER in request.headers:
            request.state.channel = channel = await _partner_channel(request)
        else:
            channel = await authenticate(request, api_key)
    return channel


def partner_key_matches(request: Request) -> bool:
    """Whether `X-API-Key` is the partner key (compared in constant time; never, when none is set)."""
    expected = gateway(request).settings.partner_api_key
    given = request.headers.get(PARTNER_KEY_HEADER, "")
    return bool(expected) and hmac.compare_digest(given.encode(), str(expected).encode())


async def _partner_channel(request: Request) -> Channel:
    """The partner key reaches every number: the one `X-Openwaba-Channel` names (the web
    console sends both). AuthError for a wrong key or channel."""
    if not partner_key_matches(request):
        raise AuthError("Invalid partner key")
    raw_id = request.headers.get(CHANNEL_HEADER, "")
    try:
        return await gateway(request).accounts.by_id(int(raw_id))
    except (ValueError, NotFoundError):
        raise AuthError(f"{CHANNEL_HEADER} must name one of the partner's channels (got {raw_id!r})") from None


async def authenticate(request: Request, api_key: str | None) -> Channel:
    """The channel `api_key` belongs to, remembered for the rest of the request."""
    channel = await gateway(request).accounts.authenticate(api_key)
    request.state.channel = channel
    return channel


def announces_config(endpoint: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    """A configuration write: once it succeeded, the number's open consoles hear of it."""

    async def wrapped(request: Request) -> Response:
        response = await endpoint(request)
        channel: Channel | None = getattr(request.state, "channel", None)
        if channel is not None and response.status_code < 300:
            gateway(request).changes.notify(channel.id, "config")
        return response

    return wrapped


def bearer_token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


def requested_fields(request: Request) -> set[str]:
    """Graph's `?fields=a,b`: the fields the caller wants (empty: all)."""
    return {f.strip() for f in request.query_params.get("fields", "").split(",") if f.strip()}


@graph_face
async def send_message(request: Request) -> Response:
    channel = await channel_of(request)
    result = await gateway(request).sending.post(channel, await request.body(), Dialect.CLOUD)
    if not isinstance(result, Accepted):
        return json_response({"success": True})  # a mark-as-read / typing indicator
    contact = {"input": result.input, "wa_id": result.wa_id}
    if result.user_id is not None:  # addressed by BSUID: Meta names it back
        contact["user_id"] = result.user_id
    return json_response({"messaging_product": "whatsapp", "contacts": [contact], "messages": [{"id": result.wamid}]})


@graph_face
async def get_profile(request: Request) -> Response:
    profile = await gateway(request).profiles.get(await channel_of(request))
    wanted = requested_fields(request)
    if wanted:
        profile = {k: v for k, v in profile.items() if k in wanted or k == "messaging_product"}
    return json_response({"data": [profile]})


@graph_face
async def update_profile(request: Request) -> Response:
    channel = await channel_of(request)
    await gateway(request).profiles.update(channel, await json_body(request))
    return json_response({"success": True})


@flat_face
async def phone_number(request: Request) -> Response:
    channel = await channel_of(request)
    return json_response({"phone_number": channel.phone_number, "phone_number_id": channel.phone_number_id})


@flat_face
async def health_status(request: Request) -> Response:
    channel = await channel_of(request)
    entities = [
        ("PHONE_NUMBER", channel.phone_number_id),
        ("WABA", channel.waba_id),
        ("BUSINESS", channel.waba_id),
        ("APP", "openwaba"),
    ]
    return json_response(
        {
            "health_status": {
                "can_send_message": "AVAILABLE",
                "entities": [{"entity_type": t, "id": i, "can_send_message": "AVAILABLE"} for t, i in entities],
            },
            "id": channel.phone_number_id,
        }
    )


routes = [
    Route("/messages", send_message, methods=["POST"]),
    Route("/phone_number", phone_number, methods=["GET"]),
    Route("/v1/configs/phone_number", phone_number, methods=["GET"]),
    Route("/health_status", health_status, methods=["GET"]),
    Route("/whatsapp_business_profile", get_profile, methods=["GET"]),
    Route("/whatsapp_business_profile", update_profile, methods=["POST"]),
]

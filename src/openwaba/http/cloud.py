"""The 360dialog Cloud face (waba-v2): sending, number lookup, health."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from openwaba.domain.accounts import Channel
from openwaba.domain.messages import Dialect
from openwaba.gateway import Gateway
from openwaba.http.responses import flat_face, graph_face, json_response

API_KEY_HEADER = "D360-API-KEY"


def gateway(request: Request) -> Gateway:
    gw: Gateway = request.app.state.gateway
    return gw


async def channel_of(request: Request) -> Channel:
    return await gateway(request).accounts.authenticate(request.headers.get(API_KEY_HEADER))


@graph_face
async def send_message(request: Request) -> Response:
    channel = await channel_of(request)
    accepted = await gateway(request).sending.send(channel, await request.body(), Dialect.CLOUD)
    return json_response(
        {
            "messaging_product": "whatsapp",
            "contacts": [{"input": accepted.input, "wa_id": accepted.wa_id}],
            "messages": [{"id": accepted.wamid}],
        }
    )


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
]

"""The On-Premise face (`/v1/...`): its request dialect and its envelopes.

Success bodies carry `meta`; errors are `{"errors": [...], "meta": {...}}`.
A send answers 201 Created.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from openwaba.domain.contacts import check_contacts
from openwaba.domain.errors import RequestError
from openwaba.domain.messages import Dialect, parse_read_body
from openwaba.http.cloud import channel_of, gateway
from openwaba.http.responses import json_body, on_premise_face, on_premise_response
from openwaba.services.sending import Accepted


@on_premise_face
async def send_message(request: Request) -> Response:
    channel = await channel_of(request)
    result = await gateway(request).sending.post(channel, await request.body(), Dialect.ON_PREMISE)
    if not isinstance(result, Accepted):
        return on_premise_response({})
    return on_premise_response(
        {"contacts": [{"input": result.input, "wa_id": result.wa_id}], "messages": [{"id": result.wamid}]}, 201
    )


@on_premise_face
async def mark_read(request: Request) -> Response:
    channel = await channel_of(request)
    parse_read_body(await request.body())
    await gateway(request).sending.mark_read(channel, request.path_params["message_id"])
    return on_premise_response({})


@on_premise_face
async def contacts(request: Request) -> Response:
    await channel_of(request)
    return on_premise_response({"contacts": check_contacts(await json_body(request))})


@on_premise_face
async def health(request: Request) -> Response:
    await channel_of(request)
    return on_premise_response({"health": {"gateway_status": "connected"}})


@on_premise_face
async def get_business_profile(request: Request) -> Response:
    profile = await gateway(request).profiles.get(await channel_of(request))
    business = {k: v for k, v in profile.items() if k not in ("about", "messaging_product", "profile_picture_url")}
    return on_premise_response({"settings": {"business": {"profile": business}}})


@on_premise_face
async def update_business_profile(request: Request) -> Response:
    channel = await channel_of(request)
    await gateway(request).profiles.update(channel, await json_body(request), on_premise=True)
    return on_premise_response({})


@on_premise_face
async def get_about(request: Request) -> Response:
    profile = await gateway(request).profiles.get(await channel_of(request))
    return on_premise_response({"settings": {"profile": {"about": {"text": profile["about"]}}}})


@on_premise_face
async def update_about(request: Request) -> Response:
    channel = await channel_of(request)
    body = await json_body(request)
    if "text" not in body:
        raise RequestError(131008, "Required parameter 'text' is missing; send {\"text\": \"...\"}")
    text = body["text"]
    if not isinstance(text, str):
        raise RequestError(100, "Param 'text' must be a string")
    if set(body) - {"text"}:
        raise RequestError(100, f"Unexpected key '{sorted(set(body) - {'text'})[0]}'; only 'text' is accepted")
    await gateway(request).profiles.update(channel, {"messaging_product": "whatsapp", "about": text})
    return on_premise_response({})


routes = [
    Route("/v1/messages", send_message, methods=["POST"]),
    Route("/v1/messages/{message_id}", mark_read, methods=["PUT"]),
    Route("/v1/contacts", contacts, methods=["POST"]),
    Route("/v1/health", health, methods=["GET"]),
    Route("/v1/settings/business/profile", get_business_profile, methods=["GET"]),
    Route("/v1/settings/business/profile", update_business_profile, methods=["POST"]),
    Route("/v1/settings/profile/about", get_about, methods=["GET"]),
    Route("/v1/settings/profile/about", update_about, methods=["PATCH"]),
]

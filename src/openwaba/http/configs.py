"""Webhook configuration endpoints: `/v1/configs/webhook` (both API generations)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from openwaba.domain.errors import RequestError
from openwaba.http.cloud import channel_of, gateway
from openwaba.http.responses import flat_face, json_body, json_response


@flat_face
async def get_webhook(request: Request) -> Response:
    config = await gateway(request).webhooks.get_main(await channel_of(request))
    if config is None:
        return json_response({"url": "", "headers": {}})
    return json_response({"url": config.url, "headers": config.headers})


@flat_face
async def set_webhook(request: Request) -> Response:
    channel = await channel_of(request)
    body = await json_body(request)
    url, headers = _url(body), _headers(body)
    config = await gateway(request).webhooks.set_main(channel, url, headers)
    return json_response({"url": config.url if config else "", "headers": config.headers if config else {}})


def _url(body: dict[str, Any]) -> str:
    url = body.get("url", "")
    if not isinstance(url, str):
        raise RequestError(100, "'url' must be a string (an empty string removes the webhook)")
    return url.strip()


def _headers(body: dict[str, Any]) -> dict[str, str]:
    headers = body.get("headers") or {}
    if not isinstance(headers, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
        raise RequestError(100, "'headers' must be an object of string names to string values")
    return headers


routes = [
    Route("/v1/configs/webhook", get_webhook, methods=["GET"]),
    Route("/v1/configs/webhook", set_webhook, methods=["POST"]),
]

"""Webhook configuration: `/v1/configs/webhook` (phone number), `/waba_webhook`
and `/multi_webhook`, with 360dialog's bodies and `{"error": "..."}` failures."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from openwaba.domain.routing import FanoutMode
from openwaba.http.cloud import announces_config, channel_of, gateway
from openwaba.http.responses import flat_face, json_body, json_response
from openwaba.services.webhooks import WebhookConfigError, parse_destinations, parse_headers, parse_options


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
    webhooks = gateway(request).webhooks
    config = await webhooks.set_main(channel, _url(body), parse_headers(body.get("headers")), parse_options(body))
    return json_response({"url": config.url if config else "", "headers": config.headers if config else {}})


@flat_face
async def get_waba_webhook(request: Request) -> Response:
    gw = gateway(request)
    channel = await channel_of(request)
    config = await gw.webhooks.get_waba(channel)
    numbers = [c.phone_number_id for c in await gw.accounts.channels() if c.waba_id == channel.waba_id]
    return json_response(
        {
            "url": config.url if config else "",
            "headers": config.headers if config else {},
            "override_all": config.override_all if config else False,
            "waba_id": int(channel.waba_id),
            "numbers_on_this_waba": numbers,
        }
    )


@flat_face
async def set_waba_webhook(request: Request) -> Response:
    channel = await channel_of(request)
    body = await json_body(request)
    override_all = body.get("override_all", False)
    if not isinstance(override_all, bool):
        raise WebhookConfigError("'override_all' must be true or false")
    gw = gateway(request)
    numbers = await gw.accounts.channels()
    await gw.webhooks.set_waba(channel, _url(body), parse_headers(body.get("headers")), override_all, numbers)
    return json_response({"message": f"Webhook will be set for waba_id: {channel.waba_id}"})


@flat_face
async def get_multi_webhook(request: Request) -> Response:
    enabled, fanout, destinations = await gateway(request).webhooks.get_multi(await channel_of(request))
    return json_response(
        {
            "enabled": enabled,
            "fanout": fanout,
            "destinations": [{"name": d.name, "url": d.url, "headers": d.headers} for d in destinations],
        }
    )


@flat_face
async def enable_multi_webhook(request: Request) -> Response:
    channel = await channel_of(request)
    body = await json_body(request)
    enabled = body.get("enabled")
    if not isinstance(enabled, bool):
        raise WebhookConfigError("'enabled' must be true or false")
    specs = parse_destinations(body.get("destinations"))
    await gateway(request).webhooks.enable_multi(channel, enabled, specs, _fanout(body))
    return json_response({"message": f"Multi-webhook {'enabled' if enabled else 'disabled'}"})


@flat_face
async def append_multi_webhook(request: Request) -> Response:
    channel = await channel_of(request)
    specs = parse_destinations((await json_body(request)).get("destinations"))
    await gateway(request).webhooks.append_multi(channel, specs)
    return json_response({"message": f"{len(specs)} destination(s) added"})


@flat_face
async def update_multi_webhook(request: Request) -> Response:
    channel = await channel_of(request)
    body = await json_body(request)
    name, url = body.get("name"), body.get("url")
    if not isinstance(name, str) or not name:
        raise WebhookConfigError("'name' must name the destination to update")
    if url is not None and (not isinstance(url, str) or not url):
        raise WebhookConfigError("'url' must be a non-empty string")
    headers = parse_headers(body["headers"]) if "headers" in body else None
    await gateway(request).webhooks.update_multi(channel, name, url, headers, parse_options(body))
    return json_response({"message": f"Destination '{name}' updated"})


@flat_face
async def delete_multi_webhook(request: Request) -> Response:
    channel = await channel_of(request)
    name = request.path_params["dest_name"]
    await gateway(request).webhooks.delete_multi(channel, name)
    return json_response({"message": f"Destination '{name}' deleted"})


def _url(body: dict[str, Any]) -> str:
    url = body.get("url", "")
    if not isinstance(url, str):
        raise WebhookConfigError("'url' must be a string (an empty string removes the webhook)")
    return url.strip()


def _fanout(body: dict[str, Any]) -> FanoutMode | None:
    raw = body.get("fanout")
    if raw is None:
        return None
    try:
        return FanoutMode(raw)
    except ValueError:
        raise WebhookConfigError("'fanout' must be 'after_main' (default) or 'independent'") from None


routes = [
    Route("/v1/configs/webhook", get_webhook, methods=["GET"]),
    Route("/v1/configs/webhook", announces_config(set_webhook), methods=["POST"]),
    Route("/waba_webhook", get_waba_webhook, methods=["GET"]),
    Route("/waba_webhook", announces_config(set_waba_webhook), methods=["POST"]),
    Route("/multi_webhook", get_multi_webhook, methods=["GET"]),
    Route("/multi_webhook", announces_config(enable_multi_webhook), methods=["POST"]),
    Route("/multi_webhook", announces_config(append_multi_webhook), methods=["PUT"]),
    Route("/multi_webhook", announces_config(update_multi_webhook), methods=["PATCH"]),
    Route("/multi_webhook/{dest_name}", announces_config(delete_multi_webhook), methods=["DELETE"]),
]

"""The partner/admin face (modelled on 360dialog's Partner API, `/api/v2/partners/{partner_id}/…`).

Authenticated by the partner key (`X-API-Key`, from OPENWABA_PARTNER_API_KEY).
Errors use the Partner API envelope: `{"meta": {"success": false, "http_code",
"developer_message", "details"}}`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from openwaba.domain.accounts import Channel, ChannelFormat, ChannelMode, MetaLink
from openwaba.domain.errors import AuthError, NotFoundError, RequestError, StateError
from openwaba.gateway import Gateway
from openwaba.http.cloud import gateway, partner_key_matches
from openwaba.http.responses import json_body, json_response
from openwaba.services.webhooks import check_retry_horizon

PREFIX = "/api/v2/partners/{partner_id}"


def meta_error(message: str, status: int) -> Response:
    body = {"meta": {"success": False, "http_code": status, "developer_message": message, "details": []}}
    return json_response(body, status)


def partner_face(
    endpoint: Callable[[Request, Gateway], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    async def wrapped(request: Request) -> Response:
        gw = gateway(request)
        if not gw.settings.partner_api_key:
            return meta_error("The partner API is disabled: set OPENWABA_PARTNER_API_KEY to enable it", 403)
        if not partner_key_matches(request):
            return meta_error("Invalid or missing X-API-Key", 401)
        if request.path_params["partner_id"] != gw.settings.partner_id:
            return meta_error(f"Permission denied for partner {request.path_params['partner_id']}", 403)
        try:
            return await endpoint(request, gw)
        except RequestError as exc:
            return meta_error(exc.details, 400)
        except NotFoundError as exc:
            return meta_error(exc.message, 404)
        except StateError as exc:
            return meta_error(exc.message, 409)
        except AuthError as exc:
            return meta_error(exc.message, 401)

    return wrapped


@partner_face
async def list_wabas(request: Request, gw: Gateway) -> Response:
    wabas = await gw.accounts.wabas()
    return json_response({"count": len(wabas), "wabas": [{"id": w.id, "name": w.name} for w in wabas]})


@partner_face
async def create_waba(request: Request, gw: Gateway) -> Response:
    name = (await json_body(request)).get("name")
    if not isinstance(name, str) or not name.strip():
        raise RequestError(100, "'name' must be a non-empty string")
    waba = await gw.accounts.create_waba(name.strip())
    return json_response({"id": waba.id, "name": waba.name}, 201)


@partner_face
async def list_channels(request: Request, gw: Gateway) -> Response:
    channels = [await _described(gw, c) for c in await gw.accounts.channels()]
    return json_response({"count": len(channels), "total": len(channels), "channels": channels})


@partner_face
async def create_channel(request: Request, gw: Gateway) -> Response:
    body = await json_body(request)
    waba_id, number = body.get("waba_id"), body.get("phone_number")
    if not isinstance(waba_id, str) or not isinstance(number, str):
        raise RequestError(100, "'waba_id' and 'phone_number' are required strings")
    fmt = _choice(body, "type", ChannelFormat, ChannelFormat.CLOUD)
    mode = _choice(body, "mode", ChannelMode, ChannelMode.SANDBOX)
    users = body.get("sandbox_users", [])
    if not isinstance(users, list) or not all(isinstance(u, str) for u in users):
        raise RequestError(100, "'sandbox_users' must be a list of wa_ids (strings): the number's simulated users")
    channel = await gw.accounts.create_channel(waba_id, number, fmt, mode, sandbox_users=tuple(users))
    return json_response({**channel_fields(channel), "sandbox_users": users}, 201)


@partner_face
async def update_channel(request: Request, gw: Gateway) -> Response:
    """Per-number settings: `retry_horizon_seconds`, `throughput` (messages/s) and
    `rate_limits` (false switches 130429/131056 off, e.g. for load tests); null
    restores the deployment's default."""
    channel = await _path_channel(request, gw)
    body = await json_body(request)
    known = {"retry_horizon_seconds", "throughput", "rate_limits", "connector", "meta"}
    if not body or not set(body) <= known:
        raise RequestError(100, f"Give one or more of {', '.join(sorted(known))} (null restores the default)")
    # Check every field before storing any, so a refused PATCH changes nothing.
    horizon = _number(body, "retry_horizon_seconds") if "retry_horizon_seconds" in body else None
    if "retry_horizon_seconds" in body:
        check_retry_horizon(horizon)
    limit_changes: dict[str, Any] = {k: body[k] for k in ("throughput", "rate_limits") if k in body}
    limits = await gw.limits.merged(channel, limit_changes) if limit_changes else None
    connector = _connector_change(channel, body)
    if connector is not None:
        channel = await gw.accounts.set_connector(channel, *connector)
    if "retry_horizon_seconds" in body:
        await gw.webhooks.set_retry_horizon(channel, horizon)
    if limits is not None:
        await gw.limits.configure(channel, limits)
    return json_response({**await _described(gw, channel), **await _settings(gw, channel)})


_META_FIELDS = ("phone_number_id", "access_token", "app_secret")


def _connector_change(channel: Channel, body: dict[str, Any]) -> tuple[str, MetaLink | None] | None:
    """`connector` ("sandbox" or "meta") and/or `meta` (the number on Meta's Cloud API)."""
    if "connector" not in body and "meta" not in body:
        return None
    connector = body.get("connector", channel.connector)
    if connector not in ("sandbox", "meta"):
        raise RequestError(100, "'connector' must be 'sandbox' or 'meta'")
    meta = body.get("meta")
    if meta is None:
        return connector, None
    if not isinstance(meta, dict) or not all(isinstance(meta.get(k), str) and meta[k] for k in _META_FIELDS):
        raise RequestError(100, f"'meta' must be an object with the strings {', '.join(_META_FIELDS)} (and waba_id)")
    waba_id = meta.get("waba_id")
    if waba_id is not None and not isinstance(waba_id, str):
        raise RequestError(100, "'meta.waba_id' must be a string")
    return connector, MetaLink(channel.id, meta["phone_number_id"], waba_id, meta["access_token"], meta["app_secret"])


async def _described(gw: Gateway, channel: Channel) -> dict[str, Any]:
    """The channel, with where it lives on Meta when it is linked (never the credentials)."""
    described = channel_fields(channel)
    link = (await gw.accounts.meta_links()).get(channel.id)
    if link is not None:
        described["meta"] = {"phone_number_id": link.phone_number_id, "waba_id": link.waba_id}
    return described


async def _settings(gw: Gateway, channel: Channel) -> dict[str, Any]:
    limits = await gw.limits.settings(channel)
    return {
        "retry_horizon_seconds": await gw.webhooks.retry_horizon(channel),
        "throughput": limits.throughput,
        "rate_limits": limits.rate_limits,
    }


def _number(body: dict[str, Any], key: str) -> float | None:
    value = body[key]
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise RequestError(100, f"'{key}' must be a number or null")
    return None if value is None else float(value)


@partner_face
async def create_api_key(request: Request, gw: Gateway) -> Response:
    channel = await _path_channel(request, gw)
    key = await gw.accounts.rotate_api_key(channel)
    return json_response(_key_object(request, channel, key), 201)


@partner_face
async def list_api_keys(request: Request, gw: Gateway) -> Response:
    channel = await _path_channel(request, gw)
    keys = await gw.accounts.api_keys(channel)
    return json_response({"api_keys": [_key_object(request, channel, k.hint + "*" * 28) for k in keys]})


def _key_object(request: Request, channel: Channel, shown_key: str) -> dict[str, Any]:
    return {
        "id": f"{channel.id}",
        "address": str(request.base_url).rstrip("/"),
        "api_key": shown_key,
        "app_id": channel.phone_number_id,
    }


async def _path_channel(request: Request, gw: Gateway) -> Channel:
    raw = request.path_params["channel_id"]
    for channel in await gw.accounts.channels():
        if str(channel.id) == raw:
            return channel
    raise NotFoundError(f"no channel with id {raw}")


def _choice(body: dict[str, Any], key: str, enum_type: Any, default: Any) -> Any:
    raw = body.get(key, default.value)
    try:
        return enum_type(raw)
    except ValueError:
        allowed = ", ".join(repr(member.value) for member in enum_type)
        raise RequestError(100, f"'{key}' must be one of {allowed}") from None


def channel_fields(channel: Channel) -> dict[str, Any]:
    """A channel as the partner API (and the console) describe it."""
    return {
        "id": str(channel.id),
        "waba_id": channel.waba_id,
        "phone_number": channel.phone_number,
        "phone_number_id": channel.phone_number_id,
        "type": channel.format.value,
        "mode": channel.mode.value,
        "connector": channel.connector,
    }


routes = [
    Route(PREFIX + "/wabas", list_wabas, methods=["GET"]),
    Route(PREFIX + "/wabas", create_waba, methods=["POST"]),
    Route(PREFIX + "/channels", list_channels, methods=["GET"]),
    Route(PREFIX + "/channels", create_channel, methods=["POST"]),
    Route(PREFIX + "/channels/{channel_id}", update_channel, methods=["PATCH"]),
    Route(PREFIX + "/channels/{channel_id}/api_keys", create_api_key, methods=["POST"]),
    Route(PREFIX + "/channels/{channel_id}/api_keys", list_api_keys, methods=["GET"]),
]

"""Partner API operations: WABAs, numbers (channels) and their API keys (`X-API-Key`)."""

from __future__ import annotations

from typing import Any, Literal, cast

from openwaba.client.exchange import Operation, Request
from openwaba.client.messaging import Json
from openwaba.client.target import Target


def partner_call(target: Target, /, method: str, path: str, json: Any = None) -> Operation[Json]:
    reply = yield Request(method, target.partner_url(path), target.headers, json=json)
    return cast(Json, reply.json() or {})


def wabas(target: Target, /) -> Operation[list[Json]]:
    return cast(list[Json], (yield from partner_call(target, "GET", "/wabas"))["wabas"])


def create_waba(target: Target, /, name: str) -> Operation[Json]:
    return (yield from partner_call(target, "POST", "/wabas", {"name": name}))


def channels(target: Target, /) -> Operation[list[Json]]:
    """Every number: id, phone_number, phone_number_id, waba_id, type, mode."""
    return cast(list[Json], (yield from partner_call(target, "GET", "/channels"))["channels"])


def create_channel(
    target: Target,
    /,
    waba_id: str,
    phone_number: str,
    *,
    type: Literal["cloud", "on_premise"] = "cloud",  # noqa: A002 - the wire name
    mode: Literal["sandbox", "production"] = "sandbox",
    sandbox_users: list[str] | None = None,
) -> Operation[Json]:
    body: Json = {"waba_id": waba_id, "phone_number": phone_number, "type": type, "mode": mode}
    if sandbox_users is not None:
        body["sandbox_users"] = sandbox_users
    return (yield from partner_call(target, "POST", "/channels", body))


def update_channel(target: Target, /, channel_id: str, **settings: Any) -> Operation[Json]:
    """Per-number settings (`retry_horizon_seconds`, `throughput`, `rate_limits`); None restores the default."""
    return (yield from partner_call(target, "PATCH", f"/channels/{channel_id}", settings))


def create_api_key(target: Target, /, channel_id: str) -> Operation[Json]:
    """A new key (`api_key`, shown once). Earlier keys stop working and the webhook URL is removed."""
    return (yield from partner_call(target, "POST", f"/channels/{channel_id}/api_keys"))


def api_keys(target: Target, /, channel_id: str) -> Operation[Json]:
    return (yield from partner_call(target, "GET", f"/channels/{channel_id}/api_keys"))

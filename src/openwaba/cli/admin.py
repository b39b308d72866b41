"""Setting a number up: `channels` and `keys` (Partner API key), `webhooks` (the number's key)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from openwaba.cli import output
from openwaba.cli.connection import (
    DEFAULT_URL,
    ApiKeyOption,
    PartnerIdOption,
    PartnerKeyOption,
    UrlOption,
    number,
    partner,
)
from openwaba.cli.output import JsonOption

ChannelArgument = Annotated[
    str, typer.Argument(help="The channel id (see `openwaba channels list`).", show_default=False)
]


def channels_create(
    phone_number: Annotated[str, typer.Argument(help="The business number, e.g. +15550009999.", show_default=False)],
    waba: Annotated[str, typer.Option(help="WABA id; a new WABA is created when omitted.")] = "",
    type_: Annotated[str, typer.Option("--type", help="cloud or on_premise (webhook format).")] = "cloud",
    mode: Annotated[str, typer.Option(help="sandbox (any webhook URL) or production (Cloud URL rules).")] = "sandbox",
    url: UrlOption = DEFAULT_URL,
    partner_key: PartnerKeyOption = "",
    partner_id: PartnerIdOption = "openwaba",
    as_json: JsonOption = False,
) -> None:
    """Create a number (channel) and its first API key."""
    if type_ not in ("cloud", "on_premise") or mode not in ("sandbox", "production"):
        output.usage_error("--type is cloud or on_premise, --mode sandbox or production")
    with partner(url, partner_key, partner_id) as client:
        if not waba:
            waba = str(client.create_waba(f"WABA of +{phone_number.lstrip('+')}")["id"])
        channel = client.create_channel(waba, phone_number, type=type_, mode=mode)  # type: ignore[arg-type]
        key = client.create_api_key(str(channel["id"]))
    if as_json:
        output.data({**channel, "api_key": key["api_key"]})
        return
    output.line(
        f"channel {channel['id']}: +{channel['phone_number']} ({channel['type']}, {channel['mode']}) in WABA {waba}"
    )
    output.line(f"D360-API-KEY: {key['api_key']}  (shown once)")


def channels_list(
    url: UrlOption = DEFAULT_URL,
    partner_key: PartnerKeyOption = "",
    partner_id: PartnerIdOption = "openwaba",
    as_json: JsonOption = False,
) -> None:
    """List every number."""
    with partner(url, partner_key, partner_id) as client:
        channels = client.channels()
    if as_json:
        output.data({"channels": channels})
        return
    table = Table("id", "phone number", "phone_number_id", "waba", "type", "mode")
    for c in channels:
        row = (c["id"], "+" + str(c["phone_number"]), c["phone_number_id"], c["waba_id"], c["type"], c["mode"])
        table.add_row(*map(str, row))
    output.out().print(table)


def keys_rotate(
    channel: ChannelArgument,
    url: UrlOption = DEFAULT_URL,
    partner_key: PartnerKeyOption = "",
    partner_id: PartnerIdOption = "openwaba",
    as_json: JsonOption = False,
) -> None:
    """Generate a new API key. Earlier keys stop working and the number's webhook URL is removed."""
    with partner(url, partner_key, partner_id) as client:
        key = client.create_api_key(channel)
    if as_json:
        output.data(key)
    else:
        output.line(f"D360-API-KEY: {key['api_key']}  (shown once)")
    output.note("Earlier keys no longer work, and the webhook URL was removed: set it again with the new key.")


def keys_list(
    channel: ChannelArgument,
    url: UrlOption = DEFAULT_URL,
    partner_key: PartnerKeyOption = "",
    partner_id: PartnerIdOption = "openwaba",
    as_json: JsonOption = False,
) -> None:
    """The number's API keys, masked (only their SHA-256 digests are stored)."""
    with partner(url, partner_key, partner_id) as client:
        keys = client.api_keys(channel)
    if as_json:
        output.data(keys)
        return
    for key in keys.get("api_keys", []):
        output.line(f"{key.get('api_key', '')}  (channel {key.get('id', '')}, app {key.get('app_id', '')})")


def webhooks_get(url: UrlOption = DEFAULT_URL, api_key: ApiKeyOption = "", as_json: JsonOption = False) -> None:
    """Show the number's webhook (URL and headers)."""
    with number(url, api_key) as client:
        _print_webhook(client.webhook(), as_json)


def webhooks_set(
    webhook_url: Annotated[str, typer.Argument(help="Where events are posted; '' removes the webhook.")],
    header: Annotated[list[str] | None, typer.Option(help="Extra header 'Name: value' (repeatable).")] = None,
    secret: Annotated[
        str | None, typer.Option(help="Sign deliveries (Standard Webhooks) with this whsec_… secret.")
    ] = None,
    app_secret: Annotated[str | None, typer.Option(help="Sign deliveries with X-Hub-Signature-256 (Meta).")] = None,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = "",
    as_json: JsonOption = False,
) -> None:
    """Set the number's webhook URL, with optional headers (e.g. Authorization) and signing secrets."""
    headers = parse_headers(header or [])
    extensions = {k: v for k, v in {"secret": secret, "app_secret": app_secret}.items() if v is not None}
    with number(url, api_key) as client:
        _print_webhook(client.set_webhook(webhook_url, headers, **extensions), as_json)


def parse_headers(items: list[str]) -> dict[str, str]:
    headers = {}
    for item in items:
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            output.usage_error(f"header {item!r} must look like 'Name: value'")
        headers[name.strip()] = value.strip()
    return headers


def _print_webhook(config: dict[str, Any], as_json: bool) -> None:
    if as_json:
        output.data(config)
        return
    output.line(f"url: {config.get('url') or '(none)'}")
    for name, value in (config.get("headers") or {}).items():
        output.line(f"header: {name}: {value}")

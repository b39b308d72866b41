"""The `openwaba` command line."""

from __future__ import annotations

import json
import logging
import os
import shlex
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from openwaba.config import Settings
from openwaba.domain.errors import ConfigError, OpenwabaError

if TYPE_CHECKING:  # the server's dependencies load only for `serve`, so other commands start fast
    from openwaba.gateway import Gateway

app = typer.Typer(help="openwaba: a self-hostable WhatsApp Business API gateway (360dialog API).", no_args_is_help=True)
sandbox_app = typer.Typer(help="Act as the sandbox's simulated WhatsApp users.", no_args_is_help=True)
channels_app = typer.Typer(help="Create and list numbers (partner API key needed).", no_args_is_help=True)
keys_app = typer.Typer(help="Manage a number's API key (partner API key needed).", no_args_is_help=True)
webhooks_app = typer.Typer(help="Read or set a number's webhook (its D360-API-KEY needed).", no_args_is_help=True)
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(channels_app, name="channels")
app.add_typer(keys_app, name="keys")
deliveries_app = typer.Typer(
    help="The delivery log: list, inspect, replay (D360-API-KEY needed).", no_args_is_help=True
)
app.add_typer(webhooks_app, name="webhooks")
app.add_typer(deliveries_app, name="deliveries")

UrlOption = Annotated[str, typer.Option("--url", help="openwaba's base URL [env OPENWABA_URL].")]
KeyOption = Annotated[str, typer.Option("--api-key", help="The number's D360-API-KEY [env OPENWABA_API_KEY].")]
PartnerKeyOption = Annotated[
    str, typer.Option("--partner-key", help="The partner API key [env OPENWABA_PARTNER_API_KEY].")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the raw JSON answer.")]

err = Console(stderr=True)
out = Console()

_DEFAULT_URL = "http://127.0.0.1:8080"


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on [env OPENWABA_HOST].")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on [env OPENWABA_PORT].")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Where data is stored [env OPENWABA_DATA_DIR].")] = None,
) -> None:
    """Run the gateway (SQLite in the data directory, sandbox connector)."""
    import uvicorn

    from openwaba.gateway import Gateway
    from openwaba.http.app import create_app

    try:
        settings = Settings.from_env().with_overrides(host=host, port=port, data_dir=data_dir)
    except ConfigError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    gateway = Gateway(settings)
    application = create_app(settings, gateway, on_ready=lambda: _print_summary(gateway))
    config = uvicorn.Config(
        application,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    try:
        server.run()
    except ConfigError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    if not server.started:
        raise typer.Exit(1)


def _print_summary(gateway: Gateway) -> None:
    seed = gateway.seed
    if seed is None:
        return
    s = gateway.settings
    base = f"http://{s.host}:{s.port}"
    key = seed.api_key
    out.print(f"[bold green]openwaba[/bold green] listening on {base}  (data: {s.data_dir.resolve()})")
    out.print(f"  sandbox number : +{seed.channel.phone_number}  (phone_number_id {seed.channel.phone_number_id})")
    if key:
        out.print(f"  D360-API-KEY   : {key}")
    else:
        out.print("  D360-API-KEY   : the key printed on first start (or set OPENWABA_SANDBOX_API_KEY)")
        key = "<your-api-key>"
    out.print("  simulated users: " + ", ".join(f"{u.wa_id} ({u.name})" for u in seed.users), soft_wrap=True)
    if not seed.users:
        return
    user = seed.users[0].wa_id
    message = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": user,
        "type": "text",
        "text": {"preview_url": False, "body": "Hello from openwaba"},
    }
    out.print("\nSend a message:", highlight=False)
    out.print(
        f"  curl -sS -X POST {base}/messages -H 'D360-API-KEY: {key}' -H 'Content-Type: application/json' "
        f"-d {shlex.quote(json.dumps(message, separators=(',', ':')))}",
        highlight=False,
        soft_wrap=True,
    )
    out.print("Receive its webhooks (set your URL):", highlight=False)
    out.print(
        f"  curl -sS -X POST {base}/v1/configs/webhook -H 'D360-API-KEY: {key}' -H 'Content-Type: application/json' "
        '-d \'{"url":"http://127.0.0.1:9000/webhook"}\'',
        highlight=False,
        soft_wrap=True,
    )
    out.print(
        f"Reply as a user:\n  openwaba sandbox say --url {base} --from {user} --api-key {key} 'hello'",
        highlight=False,
        soft_wrap=True,
    )


@sandbox_app.command("say")
def say(
    text: Annotated[str, typer.Argument(help="What the user writes.")],
    from_: Annotated[str, typer.Option("--from", help="The simulated user's wa_id.")],
    url: UrlOption = "",
    api_key: KeyOption = "",
) -> None:
    """Send a text message from a simulated user to the business number."""
    result = _call("POST", f"/sandbox/users/{from_}/messages", {"text": text}, url, _number_auth(api_key))
    out.print(result["messages"][0]["id"], highlight=False)


@channels_app.command("create")
def channels_create(
    phone_number: Annotated[str, typer.Argument(help="The business number, e.g. +15550009999.")],
    waba: Annotated[str, typer.Option(help="WABA id; a new WABA is created when omitted.")] = "",
    type_: Annotated[str, typer.Option("--type", help="cloud or on_premise (webhook format).")] = "cloud",
    mode: Annotated[str, typer.Option(help="sandbox (any webhook URL) or production (Cloud URL rules).")] = "sandbox",
    url: UrlOption = "",
    partner_key: PartnerKeyOption = "",
    as_json: JsonOption = False,
) -> None:
    """Create a number (channel) and its first API key."""
    auth = _partner_auth(partner_key)
    if not waba:
        waba = _call("POST", _partner_path("/wabas"), {"name": f"WABA of +{phone_number.lstrip('+')}"}, url, auth)["id"]
    body = {"waba_id": waba, "phone_number": phone_number, "type": type_, "mode": mode}
    channel = _call("POST", _partner_path("/channels"), body, url, auth)
    key = _call("POST", _partner_path(f"/channels/{channel['id']}/api_keys"), None, url, auth)
    result = {**channel, "api_key": key["api_key"]}
    if as_json:
        out.print_json(data=result)
        return
    out.print(
        f"channel {channel['id']}: +{channel['phone_number']} ({channel['type']}, {channel['mode']}) in WABA {waba}"
    )
    out.print(f"D360-API-KEY: {key['api_key']}  (shown once)", highlight=False)


@channels_app.command("list")
def channels_list(url: UrlOption = "", partner_key: PartnerKeyOption = "", as_json: JsonOption = False) -> None:
    """List every number."""
    result = _call("GET", _partner_path("/channels"), None, url, _partner_auth(partner_key))
    if as_json:
        out.print_json(data=result)
        return
    from rich.table import Table

    table = Table("id", "phone number", "phone_number_id", "waba", "type", "mode")
    for c in result["channels"]:
        table.add_row(c["id"], "+" + c["phone_number"], c["phone_number_id"], c["waba_id"], c["type"], c["mode"])
    out.print(table)


@keys_app.command("rotate")
def keys_rotate(
    channel: Annotated[str, typer.Argument(help="The channel id (see `openwaba channels list`).")],
    url: UrlOption = "",
    partner_key: PartnerKeyOption = "",
    as_json: JsonOption = False,
) -> None:
    """Generate a new API key. Earlier keys stop working and the number's webhook URL is removed."""
    result = _call("POST", _partner_path(f"/channels/{channel}/api_keys"), None, url, _partner_auth(partner_key))
    if as_json:
        out.print_json(data=result)
        return
    out.print(f"D360-API-KEY: {result['api_key']}  (shown once)", highlight=False)
    err.print("Earlier keys no longer work, and the webhook URL was removed: set it again with the new key.")


@webhooks_app.command("get")
def webhooks_get(url: UrlOption = "", api_key: KeyOption = "") -> None:
    """Show the number's webhook (URL and headers)."""
    out.print_json(data=_call("GET", "/v1/configs/webhook", None, url, _number_auth(api_key)))


@webhooks_app.command("set")
def webhooks_set(
    webhook_url: Annotated[str, typer.Argument(help="Where events are posted; '' removes the webhook.")],
    header: Annotated[list[str] | None, typer.Option(help="Extra header 'Name: value' (repeatable).")] = None,
    url: UrlOption = "",
    api_key: KeyOption = "",
) -> None:
    """Set the number's webhook URL, with optional headers (e.g. Authorization)."""
    headers = {}
    for item in header or []:
        name, sep, value = item.partition(":")
        if not sep:
            err.print(f"[red]error:[/red] header {item!r} must look like 'Name: value'")
            raise typer.Exit(2)
        headers[name.strip()] = value.strip()
    body = {"url": webhook_url, "headers": headers}
    out.print_json(data=_call("POST", "/v1/configs/webhook", body, url, _number_auth(api_key)))


@deliveries_app.command("ls")
def deliveries_ls(
    state: Annotated[str, typer.Option(help="held, pending, delivered or dead.")] = "",
    destination: Annotated[str, typer.Option(help="Destination name (main, waba, or a multi-webhook name).")] = "",
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 50,
    url: UrlOption = "",
    api_key: KeyOption = "",
    as_json: JsonOption = False,
) -> None:
    """List the number's deliveries, newest first."""
    query = urllib.parse.urlencode({k: v for k, v in {"state": state, "destination": destination}.items() if v})
    path = f"/deliveries?limit={limit}" + (f"&{query}" if query else "")
    result = _call("GET", path, None, url, _number_auth(api_key))
    if as_json:
        out.print_json(data=result)
        return
    from rich.table import Table

    table = Table("id", "event", "kind", "destination", "state", "attempts", "last")
    for d in result["deliveries"]:
        last = str(d["last_status"] or d["last_error"] or "")
        table.add_row(
            str(d["id"]),
            d["event_id"],
            d["event"]["kind"],
            d["destination"]["name"],
            d["state"],
            str(d["attempts_made"]),
            last[:40],
        )
    out.print(table)


@deliveries_app.command("show")
def deliveries_show(
    delivery_id: Annotated[int, typer.Argument(help="The delivery id.")], url: UrlOption = "", api_key: KeyOption = ""
) -> None:
    """Show one delivery with every attempt and the payload."""
    out.print_json(data=_call("GET", f"/deliveries/{delivery_id}", None, url, _number_auth(api_key)))


@deliveries_app.command("replay")
def deliveries_replay(
    delivery_id: Annotated[int | None, typer.Argument(help="One delivery; omit to replay by filter.")] = None,
    destination: Annotated[str, typer.Option(help="Replay this destination's deliveries.")] = "",
    state: Annotated[str, typer.Option(help="Which state to replay (filter mode).")] = "dead",
    since: Annotated[float | None, typer.Option(help="Created at or after (Unix seconds).")] = None,
    until: Annotated[float | None, typer.Option(help="Created before (Unix seconds).")] = None,
    url: UrlOption = "",
    api_key: KeyOption = "",
) -> None:
    """Attempt deliveries again, on the same event ids (dead-lettered ones by default)."""
    auth = _number_auth(api_key)
    if delivery_id is not None:
        result = _call("POST", f"/deliveries/{delivery_id}/replay", None, url, auth)
    else:
        body = {"state": state, "destination": destination or None, "since": since, "until": until}
        result = _call("POST", "/deliveries/replay", body, url, auth)
    out.print(f"replayed {result['replayed']} deliveries")
    if not result["replayed"]:
        raise typer.Exit(1)


def _number_auth(api_key: str) -> dict[str, str]:
    key = api_key or os.environ.get("OPENWABA_API_KEY") or os.environ.get("OPENWABA_SANDBOX_API_KEY") or ""
    if not key:
        err.print("[red]error:[/red] no API key: pass --api-key or set OPENWABA_API_KEY")
        raise typer.Exit(2)
    return {"D360-API-KEY": key}


def _partner_auth(partner_key: str) -> dict[str, str]:
    key = partner_key or os.environ.get("OPENWABA_PARTNER_API_KEY") or ""
    if not key:
        err.print("[red]error:[/red] no partner key: pass --partner-key or set OPENWABA_PARTNER_API_KEY")
        raise typer.Exit(2)
    return {"X-API-Key": key}


def _partner_path(path: str) -> str:
    return f"/api/v2/partners/{os.environ.get('OPENWABA_PARTNER_ID') or 'openwaba'}{path}"


def _call(method: str, path: str, body: dict[str, Any] | None, url: str, auth: dict[str, str]) -> dict[str, Any]:
    base = (url or os.environ.get("OPENWABA_URL") or _DEFAULT_URL).rstrip("/")
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method, headers=auth)
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            result: dict[str, Any] = json.loads(response.read() or b"{}")
            return result
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")
        err.print(f"[red]error:[/red] {method} {path} answered {exc.code}: {detail}")
        raise typer.Exit(1) from None
    except urllib.error.URLError as exc:
        err.print(f"[red]error:[/red] cannot reach openwaba at {base}: {exc.reason}")
        raise typer.Exit(1) from None


def main(argv: list[str] | None = None) -> None:
    try:
        app(args=argv)
    except OpenwabaError as exc:
        err.print(f"[red]error:[/red] {exc}")
        sys.exit(2)

"""The `openwaba` command line."""

from __future__ import annotations

import json
import logging
import os
import shlex
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from openwaba.config import Settings
from openwaba.domain.errors import ConfigError, OpenwabaError
from openwaba.gateway import Gateway

app = typer.Typer(help="openwaba: a self-hostable WhatsApp Business API gateway (360dialog API).", no_args_is_help=True)
sandbox_app = typer.Typer(help="Act as the sandbox's simulated WhatsApp users.", no_args_is_help=True)
app.add_typer(sandbox_app, name="sandbox")

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
        application, host=settings.host, port=settings.port, loop="uvloop", http="httptools",
        log_level="warning", access_log=False, lifespan="on",
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
        "messaging_product": "whatsapp", "recipient_type": "individual", "to": user,
        "type": "text", "text": {"preview_url": False, "body": "Hello from openwaba"},
    }
    out.print("\nSend a message:", highlight=False)
    out.print(
        f"  curl -sS -X POST {base}/messages -H 'D360-API-KEY: {key}' -H 'Content-Type: application/json' "
        f"-d {shlex.quote(json.dumps(message, separators=(',', ':')))}",
        highlight=False, soft_wrap=True,
    )
    out.print("Receive its webhooks (set your URL):", highlight=False)
    out.print(
        f"  curl -sS -X POST {base}/v1/configs/webhook -H 'D360-API-KEY: {key}' -H 'Content-Type: application/json' "
        "-d '{\"url\":\"http://127.0.0.1:9000/webhook\"}'",
        highlight=False, soft_wrap=True,
    )
    out.print(f"Reply as a user:\n  openwaba sandbox say --from {user} --api-key {key} 'hello'", highlight=False, soft_wrap=True)


@sandbox_app.command("say")
def say(
    text: Annotated[str, typer.Argument(help="What the user writes.")],
    from_: Annotated[str, typer.Option("--from", help="The simulated user's wa_id.")],
    url: Annotated[str, typer.Option(help="openwaba's base URL [env OPENWABA_URL].")] = "",
    api_key: Annotated[str, typer.Option(help="The number's D360-API-KEY [env OPENWABA_API_KEY].")] = "",
) -> None:
    """Send a text message from a simulated user to the business number."""
    result = _call("POST", f"/sandbox/users/{from_}/messages", {"text": text}, url, api_key)
    out.print(result["messages"][0]["id"], highlight=False)


def _call(method: str, path: str, body: dict[str, Any] | None, url: str, api_key: str) -> dict[str, Any]:
    base = (url or os.environ.get("OPENWABA_URL") or _DEFAULT_URL).rstrip("/")
    key = api_key or os.environ.get("OPENWABA_API_KEY") or os.environ.get("OPENWABA_SANDBOX_API_KEY") or ""
    if not key:
        err.print("[red]error:[/red] no API key: pass --api-key or set OPENWABA_API_KEY")
        raise typer.Exit(2)
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method)
    request.add_header("D360-API-KEY", key)
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

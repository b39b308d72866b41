"""The `openwaba` Typer app: every command, grouped, wired to the module that implements it."""

from __future__ import annotations

import sys

import typer

from openwaba.cli import admin, bench, deliveries, messaging, output, receive, scenarios, serve, tail
from openwaba.domain.errors import OpenwabaError

app = typer.Typer(
    name="openwaba",
    help=(
        "openwaba: a self-hostable WhatsApp Business API gateway that speaks the 360dialog API.\n\n"
        "Start it with [bold]openwaba serve[/bold]; every other command talks to a running gateway "
        "at --url (OPENWABA_URL, default http://127.0.0.1:8080) with the number's --api-key "
        "(OPENWABA_API_KEY) or the --partner-key (OPENWABA_PARTNER_API_KEY). "
        "Commands that print data take --json."
    ),
    epilog=output.EXIT_CODES,
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_show_locals=False,
)

_GATEWAY, _MESSAGES, _WATCH, _SETUP = "Run", "Messages", "Watch", "Set up"


def _group(name: str, help_: str) -> typer.Typer:
    group = typer.Typer(help=help_, no_args_is_help=True, rich_markup_mode="rich", epilog=output.EXIT_CODES)
    app.add_typer(group, name=name, rich_help_panel=_SETUP if name != "sandbox" else _MESSAGES)
    return group


app.command(rich_help_panel=_GATEWAY)(serve.serve)
app.command(rich_help_panel=_GATEWAY)(serve.migrate)
app.command(rich_help_panel=_MESSAGES)(messaging.send)

sandbox = _group("sandbox", "Act as the sandbox's simulated WhatsApp users; set scenarios; move the clock.")
sandbox.command("say")(messaging.say)
sandbox.command("send-file")(messaging.send_file)
sandbox.command("users")(messaging.users)
sandbox.command("phone")(messaging.phone)
sandbox.command("tap")(messaging.tap)
sandbox.command("pick")(messaging.pick)
sandbox.command("react")(messaging.react)
sandbox.command("location")(messaging.location)
sandbox.command("clock")(messaging.clock)
sandbox.command("script")(scenarios.script)

scenario = typer.Typer(
    help="What the simulated network does to the number's messages: delays, drops, duplicates, failures, "
    "automatic answers (per number, or per user with --user).",
    no_args_is_help=True,
    rich_markup_mode="rich",
    epilog=output.EXIT_CODES,
)
sandbox.add_typer(scenario, name="scenario")
scenario.command("show")(scenarios.show)
scenario.command("set")(scenarios.set_)
scenario.command("clear")(scenarios.clear)

app.command(rich_help_panel=_WATCH)(tail.tail)
app.command(rich_help_panel=_WATCH)(receive.receive)
app.command(rich_help_panel=_WATCH)(bench.bench)

channels = _group("channels", "Create and list numbers (Partner API key).")
channels.command("create")(admin.channels_create)
channels.command("list")(admin.channels_list)

keys = _group("keys", "A number's API keys (Partner API key).")
keys.command("rotate")(admin.keys_rotate)
keys.command("list")(admin.keys_list)

webhooks = _group("webhooks", "Read or set the number's webhook (its D360-API-KEY).")
webhooks.command("get")(admin.webhooks_get)
webhooks.command("set")(admin.webhooks_set)

delivery_log = _group("deliveries", "The delivery log: list, inspect, replay (D360-API-KEY); live: openwaba tail.")
delivery_log.command("ls")(deliveries.ls)
delivery_log.command("show")(deliveries.show)
delivery_log.command("replay")(deliveries.replay)


def run(argv: list[str] | None = None) -> None:
    """Run the command line; always ends with SystemExit carrying the exit code."""
    output.reset()
    try:
        app(args=argv, prog_name="openwaba")
    except OpenwabaError as exc:  # a configuration problem found outside a command's own handling
        output.error(str(exc))
        sys.exit(output.ExitCode.USAGE)

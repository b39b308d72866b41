"""`openwaba receive`: a webhook receiver (`openwaba.receiver`) on a port.

Without `--app` it shows every item it handles; with `--app module:attr` it runs
the user's own `Receiver` (its handlers, its settings) instead.
"""

from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.text import Text

from openwaba.cli import events, output
from openwaba.cli.output import JsonOption
from openwaba.receiver.events import Event

if TYPE_CHECKING:  # the receiver's server side loads only when `receive` runs
    from openwaba.receiver import Receiver

DEFAULT_DB = Path("webhooks.db")
_UVICORN_STARTUP_FAILURE = 3


def receive(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 9000,
    db: Annotated[Path | None, typer.Option(help="The receiver's SQLite queue (default: ./webhooks.db).")] = None,
    secret: Annotated[
        list[str] | None, typer.Option(help="Check Standard Webhooks signatures (whsec_…); repeatable for rotation.")
    ] = None,
    app_secret: Annotated[str | None, typer.Option(help="Check X-Hub-Signature-256 (Meta) with this secret.")] = None,
    basic: Annotated[str | None, typer.Option(help="Require HTTP Basic auth 'user:pass'.")] = None,
    verify_token: Annotated[str | None, typer.Option(help="Answer Meta's GET verification with this token.")] = None,
    app: Annotated[
        str | None, typer.Option(help="Run your own Receiver instead: 'module:attribute' (e.g. bot:receiver).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Receive webhooks: acknowledge, de-duplicate and handle them, showing each item.

    Point the gateway at it with: openwaba webhooks set http://127.0.0.1:9000/webhook
    """
    from openwaba.receiver import Receiver, serve

    if app is not None:
        given = {"--db": db, "--secret": secret, "--app-secret": app_secret, "--basic": basic,
                 "--verify-token": verify_token, "--json": as_json}
        clashing = [name for name, value in given.items() if value]
        if clashing:
            output.usage_error(f"{', '.join(clashing)} cannot be used with --app", "configure your Receiver in code")
        receiver = load_app(app)
    else:
        receiver = Receiver(
            str(db or DEFAULT_DB),
            secret=secret or None,
            app_secret=app_secret,
            basic_auth=parse_basic(basic) if basic else None,
            verify_token=verify_token,
        )
        receiver.on_event(_printer(as_json))
    output.note(f"receiving webhooks on http://{host}:{port}/ (Ctrl-C to stop)")
    try:
        serve(receiver, host, port)
    except SystemExit as exc:
        if exc.code == _UVICORN_STARTUP_FAILURE:
            output.usage_error(f"could not listen on {host}:{port}")
        raise


def load_app(spec: str) -> Receiver:
    """The `Receiver` at 'module:attribute' (the module is found from the current directory too)."""
    from openwaba.receiver import Receiver

    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        output.usage_error(f"--app {spec!r} must look like 'module:attribute'")
    if "" not in sys.path:
        sys.path.insert(0, "")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        output.usage_error(f"cannot import {module_name!r}: {exc}")
    found: Any = module
    for part in attribute.split("."):
        found = getattr(found, part, None)
    if not isinstance(found, Receiver):
        output.usage_error(f"{spec} is not an openwaba.receiver.Receiver (got {type(found).__name__})")
    return found


def parse_basic(value: str) -> tuple[str, str]:
    user, sep, password = value.partition(":")
    if not sep or not user:
        output.usage_error("--basic must look like 'user:password'")
    return user, password


def _printer(as_json: bool) -> events.Handler:
    async def show(event: Event) -> None:
        if as_json:
            output.json_line({"handled_at": time.time(), **events.as_json(event)})
            return
        text = Text().append(output.clock(time.time()) + " ", style="dim")
        text.append(f"{event.kind:<15} ").append_text(events.styled(event))
        output.line(text)

    return show

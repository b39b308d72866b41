"""What the command line prints and how it ends.

Data goes to stdout, everything else (progress, notes, errors) to stderr, so
`openwaba … --json | jq` always reads clean JSON. Colour only reaches a
terminal: rich detects one and honours `NO_COLOR`. The exit code says what
went wrong, so scripts can react without parsing messages.
"""

from __future__ import annotations

import json
import os
import sys
import time
from enum import IntEnum
from http import HTTPStatus
from typing import Annotated, Any, NoReturn

import httpx
import typer
from rich.console import Console
from rich.text import Text

from openwaba.client import (
    ApiError,
    AuthenticationError,
    ClientError,
    ConflictError,
    MediaError,
    NotFoundError,
    RateLimitError,
    ReengagementError,
    ServerError,
    TemplateError,
    TransportError,
    UnsupportedError,
)


class ExitCode(IntEnum):
    OK = 0
    REFUSED = 1  # the API answered with an error
    USAGE = 2  # wrong options, missing key, bad configuration
    UNREACHABLE = 3  # no answer, or a temporary failure on the server's side


EXIT_CODES = (
    "Exit codes: 0 ok · 1 the API refused the request · 2 usage or configuration error · "
    "3 cannot reach the server, or it failed temporarily."
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts (on stdout).")]

PIPE_WIDTH = 200
_consoles: dict[bool, Console] = {}


def reset() -> None:
    """Forget the consoles, so the next output looks at the current streams and environment again."""
    _consoles.clear()


def out() -> Console:
    """The console for data (stdout). Into a pipe or file, tables are not squeezed to 80 columns."""
    if False not in _consoles:
        console = Console(highlight=False)
        if not console.is_terminal and "COLUMNS" not in os.environ:
            console.width = PIPE_WIDTH
        _consoles[False] = console
    return _consoles[False]


def err() -> Console:
    """The console for messages and errors (stderr)."""
    if True not in _consoles:
        _consoles[True] = Console(stderr=True, highlight=False)
    return _consoles[True]


def line(text: str | Text) -> None:
    """One line of data, never wrapped (long ids stay copyable)."""
    out().print(text, soft_wrap=True, markup=False)


def note(text: str | Text) -> None:
    """A message for the person at the terminal, on stderr."""
    err().print(text, soft_wrap=True, markup=False, style="dim" if isinstance(text, str) else None)


def data(value: Any) -> None:
    """A JSON document: coloured on a terminal, plain (and parseable at any width) otherwise."""
    console = out()
    if console.is_terminal:
        console.print_json(data=value)
    else:
        sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")
        sys.stdout.flush()


def json_line(value: Any) -> None:
    """One JSON object per line, flushed at once (for `tail` and `receive`)."""
    sys.stdout.write(json.dumps(value, ensure_ascii=False, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def error(message: str, hint: str | None = None) -> None:
    text = Text().append("error: ", style="bold red").append(message)
    if hint:
        text.append("\n  hint: ", style="yellow").append(hint)
    err().print(text, soft_wrap=True)


def usage_error(message: str, hint: str | None = None) -> NoReturn:
    error(message, hint)
    raise typer.Exit(ExitCode.USAGE)


def fail(exc: ClientError, url: str, key_hint: str) -> NoReturn:
    """Report what the client raised and exit with the code that says what kind of failure it was."""
    code = exit_code(exc)
    error(describe(exc, url), hint(exc, url, key_hint))
    raise typer.Exit(code)


def exit_code(exc: ClientError) -> ExitCode:
    if isinstance(exc, TransportError | ServerError):
        return ExitCode.UNREACHABLE
    if isinstance(exc, UnsupportedError):
        return ExitCode.USAGE
    return ExitCode.REFUSED


def describe(exc: ClientError, url: str) -> str:
    if isinstance(exc, TransportError):
        cause = exc.__cause__
        if cause is None:
            return f"no answer from openwaba at {url}: {exc}"
        what = "cannot reach" if isinstance(cause, httpx.ConnectError) else "no answer from"
        return f"{what} openwaba at {url}: {type(cause).__name__}" + (f": {cause}" if str(cause) else "")
    if not isinstance(exc, ApiError):
        return str(exc)
    code = f"#{exc.code}, " if exc.code is not None else ""
    message = f"{type(exc).__name__} ({code}HTTP {exc.http_status}): {exc.title or _phrase(exc.http_status)}"
    if exc.details and exc.details != exc.title:
        message += f"\n  details: {exc.details}"
    return message


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "(no details)"


_HINTS_BY_CODE = {
    131047: "the 24-hour window is closed: send a template (openwaba send TO --template NAME)",
    470: "the 24-hour window is closed: send a template (openwaba send TO --template NAME)",
    130429: "the number's throughput limit was reached: retry later (load tests: OPENWABA_RATE_LIMITS=false)",
    131056: "too many messages to this user in a short time: retry later",
    131026: "this recipient cannot receive messages (the sandbox knows only its users: openwaba sandbox users)",
}


def hint(exc: ClientError, url: str, key_hint: str) -> str | None:
    """What to try next, for the failures people run into."""
    if isinstance(exc, TransportError):
        return f"is `openwaba serve` running at {url}?"
    if isinstance(exc, ApiError) and exc.code in _HINTS_BY_CODE:
        return _HINTS_BY_CODE[exc.code]
    for kind, text in _HINTS_BY_CLASS:
        if isinstance(exc, kind):
            return text.format(url=url, key=key_hint)
    return None


_HINTS_BY_CLASS: tuple[tuple[type[ClientError], str], ...] = (
    (AuthenticationError, "check {key}"),
    (ReengagementError, "the 24-hour window is closed: send a template"),
    (RateLimitError, "retry later"),
    (ServerError, "the server failed temporarily: retry; is `openwaba serve` healthy at {url}?"),
    (TemplateError, "check the template's name, language and number of parameters"),
    (MediaError, "check the file's type and size (WhatsApp's limits)"),
    (NotFoundError, "nothing with that id is visible to this key"),
    (ConflictError, "the current state does not allow this"),
)


def clock(at: float | None) -> str:
    """`12:03:04.123`, local time."""
    if at is None:
        return "--:--:--.---"
    return time.strftime("%H:%M:%S", time.localtime(at)) + f".{int(at * 1000) % 1000:03d}"


def moment(at: float | None) -> str:
    """`2025-01-31 12:03:04`, local time."""
    return "" if at is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))

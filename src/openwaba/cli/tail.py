"""`openwaba tail`: every webhook delivery outcome, live, one line each.

The delivery log is read newest first every `--interval`. A cursor remembers,
per delivery still in sight, the outcome last seen (attempts made, state); a
line is printed when that changes and an attempt was made (or the delivery was
dead-lettered). Deliveries still pending or held are followed until they end,
so a retry that succeeds later is shown too, as long as it is within
`_MAX_PAGES` pages of the newest delivery.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any

import typer
from rich.text import Text

from openwaba.cli import events, output
from openwaba.cli.connection import DEFAULT_URL, ApiKeyOption, UrlOption, number
from openwaba.cli.deliveries import STATE_STYLES
from openwaba.cli.output import JsonOption
from openwaba.client import Client

_PAGE = 100
_MAX_PAGES = 10  # per poll: deliveries further down than this are no longer followed
_UNFINISHED = ("pending", "held")
_MARKS = {"delivered": "✓", "pending": "↻", "held": "…", "dead": "✗"}

Outcome = tuple[int, str]  # attempts made, state


@dataclass
class Cursor:
    """What has been shown: the outcome per delivery in sight, and the newest delivery id seen."""

    seen: dict[int, Outcome] = field(default_factory=dict)
    top: int = 0

    def floor(self) -> int:
        """Scan down to here: the oldest delivery still followed, or the newest seen."""
        unfinished = [i for i, (_, state) in self.seen.items() if state in _UNFINISHED]
        return min(unfinished, default=self.top)

    def changed(self, delivery: dict[str, Any]) -> bool:
        """Record the delivery's outcome; whether it is a new one worth a line."""
        outcome = (int(delivery["attempts_made"]), str(delivery["state"]))
        previous = self.seen.get(delivery["id"])
        self.seen[delivery["id"]] = outcome
        self.top = max(self.top, delivery["id"])
        return outcome != previous and (outcome[0] > 0 or outcome[1] == "dead")

    def forget_below(self, lowest: int) -> None:
        self.seen = {i: o for i, o in self.seen.items() if i >= lowest}


class Follower:
    """Reads the delivery log and yields the deliveries whose outcome changed, with their detail."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.cursor = Cursor()

    def start(self, last: int) -> list[dict[str, Any]]:
        """Take in the current log; the details of the `last` most recent outcomes, oldest first."""
        page = self.client.deliveries(limit=_PAGE)["deliveries"]
        recent = [d for d in page if self.cursor.changed(d)][:last]
        return self._details(recent)

    def poll(self) -> list[dict[str, Any]]:
        floor = self.cursor.floor()
        changed: list[dict[str, Any]] = []
        lowest = floor
        for delivery in self._down_to(floor):
            lowest = min(lowest, delivery["id"])
            if self.cursor.changed(delivery):
                changed.append(delivery)
        self.cursor.forget_below(lowest)
        return self._details(changed)

    def _down_to(self, floor: int) -> Iterator[dict[str, Any]]:
        before = None
        for _ in range(_MAX_PAGES):
            page = self.client.deliveries(limit=_PAGE, before=before)
            items = page["deliveries"]
            yield from items
            before = (page.get("paging") or {}).get("before")
            if not items or items[-1]["id"] <= floor or before is None:
                return

    def _details(self, deliveries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        details = [self.client.delivery(d["id"]) for d in deliveries]
        return sorted(details, key=lambda d: (_last_attempt(d).get("at") or 0.0, d["id"]))


def tail(
    interval: Annotated[float, typer.Option(min=0.05, help="Seconds between looks at the delivery log.")] = 0.5,
    last: Annotated[int, typer.Option("--last", "-n", min=0, help="First show the N most recent outcomes.")] = 0,
    max_events: Annotated[int | None, typer.Option(min=1, help="Stop after printing N lines.")] = None,
    timeout: Annotated[float | None, typer.Option(min=0, help="Stop after SECONDS.")] = None,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = "",
    as_json: JsonOption = False,
) -> None:
    """Watch every webhook delivery as it happens: time, destination, event, outcome.

    One line per delivery outcome (coloured by state: ✓ delivered, ↻ will retry, ✗ dead),
    or JSON lines with --json. Ctrl-C stops (exit 0).
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    shown = 0
    with number(url, api_key) as client:
        follower = Follower(client)
        try:
            batch = follower.start(last)
            output.note(f"watching the deliveries of {url} (Ctrl-C to stop)")
            while True:
                for detail in batch:
                    _print(detail, as_json)
                    shown += 1
                    if max_events is not None and shown >= max_events:
                        return
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return
                time.sleep(interval if remaining is None else min(interval, remaining))
                batch = follower.poll()
        except KeyboardInterrupt:
            output.note("stopped")


def record(detail: dict[str, Any]) -> dict[str, Any]:
    """The JSON line of one outcome."""
    attempt = _last_attempt(detail)
    items = events.items(detail.get("payload"))
    return {
        "at": attempt.get("at"),
        "delivery_id": detail["id"],
        "event_id": detail["event_id"],
        "event": detail["event"]["kind"],
        "wamid": detail["event"].get("wamid"),
        "destination": detail["destination"]["name"],
        "url": detail["destination"]["url"],
        "state": detail["state"],
        "attempts": detail["attempts_made"],
        "status_code": attempt.get("status_code"),
        "latency_ms": attempt.get("latency_ms"),
        "error": attempt.get("error"),
        "summary": "; ".join(events.summary(i) for i in items),
        "injected": detail.get("injected") or [],
    }


def _print(detail: dict[str, Any], as_json: bool) -> None:
    if as_json:
        output.json_line(record(detail))
        return
    attempt = _last_attempt(detail)
    state = str(detail["state"])
    style = STATE_STYLES.get(state, "")
    text = Text().append(output.clock(attempt.get("at")) + " ", style="dim")
    text.append(f"{_MARKS.get(state, '?')} {state:<9}", style=style)
    text.append(f" {detail['destination']['name']:<6} {detail['event']['kind']:<8} ")
    items = events.items(detail.get("payload"))
    for index, item in enumerate(items):
        text.append("; " if index else "").append_text(events.styled(item))
    text.append("  " + _answer(attempt), style=style)
    text.append(f"  #{detail['attempts_made']}", style="dim")
    if detail.get("injected"):  # a sandbox scenario made this up: say so, so nobody mistakes it for real
        text.append(f"  [injected: {', '.join(detail['injected'])}]", style="magenta")
    output.line(text)


def _answer(attempt: dict[str, Any]) -> str:
    if not attempt:
        return "no attempt"
    latency = f" · {attempt['latency_ms']:.1f} ms" if attempt.get("latency_ms") is not None else ""
    if attempt.get("status_code") is not None:
        return f"HTTP {attempt['status_code']}{latency}"
    return f"{attempt.get('error') or 'failed'}{latency}"


def _last_attempt(detail: dict[str, Any]) -> dict[str, Any]:
    attempts = detail.get("attempts") or []
    return dict(max(attempts, key=lambda a: a.get("at") or 0.0)) if attempts else {}

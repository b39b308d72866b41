"""The delivery log: `openwaba deliveries ls|show|replay` (the number's D360-API-KEY)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from openwaba.cli import events, output
from openwaba.cli.connection import DEFAULT_URL, ApiKeyOption, UrlOption, number
from openwaba.cli.output import JsonOption

STATE_STYLES = {"delivered": "green", "pending": "yellow", "held": "dim", "dead": "bold red"}
StateOption = Annotated[str | None, typer.Option(help="held, pending, delivered or dead.")]
DestinationOption = Annotated[
    str | None, typer.Option(help="Destination name (main, waba, or a multi-webhook name).")
]


def ls(
    state: StateOption = None,
    destination: DestinationOption = None,
    event_id: Annotated[str | None, typer.Option(help="The deliveries of one event.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="How many, newest first.")] = 50,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = "",
    as_json: JsonOption = False,
) -> None:
    """List the number's deliveries, newest first."""
    with number(url, api_key) as client:
        page = client.deliveries(state=state, destination=destination, event_id=event_id, limit=limit)
    if as_json:
        output.data(page)
        return
    table = Table("id", "created", "event", "kind", "destination", "state", "attempts", "last")
    for d in page["deliveries"]:
        last = str(d["last_status"] or d["last_error"] or "")
        table.add_row(
            str(d["id"]),
            output.moment(d["created_at"]),
            d["event_id"],
            d["event"]["kind"] + (f" (injected: {', '.join(d['injected'])})" if d.get("injected") else ""),
            d["destination"]["name"],
            state_text(d["state"]),
            str(d["attempts_made"]),
            last[:40],
        )
    output.out().print(table)


def show(
    delivery_id: Annotated[int, typer.Argument(help="The delivery id.", show_default=False)],
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = "",
    as_json: JsonOption = False,
) -> None:
    """Show one delivery with every attempt and the payload."""
    with number(url, api_key) as client:
        detail = client.delivery(delivery_id)
    if as_json:
        output.data(detail)
        return
    destination = detail["destination"]
    head = Text(f"delivery {detail['id']}  ")
    head.append_text(state_text(detail["state"]))
    output.line(head)
    output.line(f"event      {detail['event_id']}  ({detail['event']['kind']})")
    if detail.get("injected"):
        output.line(Text(f"injected   {', '.join(detail['injected'])} (by the sandbox scenario)", style="magenta"))
    for item in events.items(detail.get("payload")):
        output.line(Text("           ").append_text(events.styled(item)))
    output.line(f"to         {destination['name']}  {destination['url']}")
    output.line(f"created    {output.moment(detail['created_at'])}   deadline {output.moment(detail['deadline'])}")
    if detail.get("next_attempt_at") and detail["state"] == "pending":
        output.line(f"next       {output.moment(detail['next_attempt_at'])}")
    _print_attempts(detail.get("attempts") or [])
    output.out().print("payload", style="bold")
    output.data(detail.get("payload"))


def replay(
    delivery_id: Annotated[int | None, typer.Argument(help="One delivery; omit to replay by filter.")] = None,
    destination: DestinationOption = None,
    state: Annotated[str, typer.Option(help="Which state to replay (filter mode).")] = "dead",
    since: Annotated[float | None, typer.Option(help="Created at or after (Unix seconds).")] = None,
    until: Annotated[float | None, typer.Option(help="Created before (Unix seconds).")] = None,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = "",
    as_json: JsonOption = False,
) -> None:
    """Attempt deliveries again, on the same event ids (dead-lettered ones by default).

    Exits 1 when nothing matched.
    """
    with number(url, api_key) as client:
        if delivery_id is not None:
            count = client.replay_delivery(delivery_id)
        else:
            count = client.replay_deliveries(state=state, destination=destination, since=since, until=until)
    if as_json:
        output.data({"replayed": count})
    else:
        output.line(f"replayed {count} deliveries")
    if not count:
        raise typer.Exit(output.ExitCode.REFUSED)


def state_text(state: str) -> Text:
    return Text(state, style=STATE_STYLES.get(state, ""))


def _print_attempts(attempts: list[dict[str, Any]]) -> None:
    if not attempts:
        output.line("attempts   none yet")
        return
    table = Table("#", "at", "status", "latency", "error", "response", title="attempts", title_justify="left")
    for number_, attempt in enumerate(attempts, 1):
        table.add_row(
            str(number_),
            output.moment(attempt["at"]),
            str(attempt["status_code"] or ""),
            f"{attempt['latency_ms']:.1f} ms",
            str(attempt["error"] or ""),
            str(attempt["response_excerpt"] or "")[:60],
        )
    output.out().print(table)

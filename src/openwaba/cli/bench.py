"""`openwaba bench`: how fast a running gateway accepts messages, seen from the user's side.

The full benchmark suite (send path, webhook delivery, retries, memory, against
other servers) is `bench/run.py` in the repository.
"""

from __future__ import annotations

import asyncio
import functools
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

import httpx
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from openwaba.cli import output
from openwaba.cli.connection import (
    DEFAULT_URL,
    ApiKeyOption,
    UrlOption,
    async_number,
    handled,
    number,
    number_target,
)
from openwaba.cli.output import JsonOption
from openwaba.client import AsyncClient, ClientError

Connect = Callable[[], AsyncClient]


@dataclass
class Tally:
    """What the sends came to: latencies of the accepted ones, and the errors by kind."""

    latencies: list[float] = field(default_factory=list)  # seconds
    errors: Counter[str] = field(default_factory=Counter)
    first_error: ClientError | None = None
    elapsed: float = 0.0

    def failed(self, exc: ClientError) -> None:
        code = getattr(exc, "code", None)
        self.errors[type(exc).__name__ + (f" #{code}" if code is not None else "")] += 1
        self.first_error = self.first_error or exc

    def report(self) -> dict[str, Any]:
        ordered = sorted(self.latencies)
        return {
            "messages": len(ordered) + sum(self.errors.values()),
            "accepted": len(ordered),
            "errors": dict(self.errors),
            "seconds": round(self.elapsed, 3),
            "sends_per_second": round(len(ordered) / self.elapsed, 1) if self.elapsed else 0.0,
            "latency_ms": {name: _percentile(ordered, q) for name, q in (("p50", 50), ("p90", 90), ("p99", 99))},
        }


def bench(
    messages: Annotated[int, typer.Option(min=1, help="How many text messages to send.")] = 1000,
    concurrency: Annotated[int, typer.Option(min=1, max=1000, help="Sends in flight at once.")] = 32,
    to: Annotated[
        str | None, typer.Option(help="The recipient's wa_id (default: the first simulated user).")
    ] = None,
    text: Annotated[str, typer.Option(help="The message text.")] = "openwaba bench",
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = "",
    as_json: JsonOption = False,
) -> None:
    """Measure a running gateway: send text messages and report sends/s and latency (p50/p90/p99).

    The number's rate limits apply (130429 beyond its throughput): start the gateway with
    OPENWABA_RATE_LIMITS=false to measure the gateway rather than the limit. The full
    benchmark suite is bench/run.py in the openwaba repository.
    """
    to = to or _first_user(url, api_key)
    base_url = number_target(url, api_key).base_url
    connect = functools.partial(async_number, url, api_key, verify=httpx.create_ssl_context())
    show_progress = output.err().is_terminal and not as_json
    tally = Tally()
    with handled(base_url):
        try:
            _run(tally, connect, to, text, messages, min(concurrency, messages), show_progress)
        except KeyboardInterrupt:
            output.note("interrupted: what was measured so far")
        if not tally.latencies and tally.first_error is not None:
            raise tally.first_error
    _print(tally.report(), to, as_json)


def _first_user(url: str, api_key: str) -> str:
    with number(url, api_key) as client:
        users = client.sandbox_users()
    if not users:
        output.usage_error("this number has no simulated users", "pass --to WA_ID")
    return str(users[0]["wa_id"])


def _run(tally: Tally, connect: Connect, to: str, text: str, count: int, workers: int, progress: bool) -> None:
    if not progress:
        asyncio.run(_send_all(tally, connect, to, text, count, workers, lambda: None))
        return
    columns = (TextColumn("sending"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=output.err(), transient=True) as bar:
        task = bar.add_task("send", total=count)
        asyncio.run(_send_all(tally, connect, to, text, count, workers, lambda: bar.advance(task)))


async def _send_all(
    tally: Tally, connect: Connect, to: str, text: str, count: int, workers: int, advance: Callable[[], None]
) -> None:
    """`count` sends by `workers` workers, each over its own connection, as fast as answers come."""
    remaining = iter(range(count))

    async def worker() -> None:
        async with connect() as client:
            for _ in remaining:
                started = time.perf_counter()
                try:
                    await client.send_text(to, text)
                except ClientError as exc:
                    tally.failed(exc)
                else:
                    tally.latencies.append(time.perf_counter() - started)
                advance()

    started = time.perf_counter()
    try:
        await asyncio.gather(*(worker() for _ in range(workers)))
    finally:
        tally.elapsed = time.perf_counter() - started


def _print(report: dict[str, Any], to: str, as_json: bool) -> None:
    if as_json:
        output.data({**report, "to": to})
        return
    latency = report["latency_ms"]
    table = Table(show_header=False, box=None, padding=(0, 2))
    table.add_row("messages", f"{report['messages']} to {to}")
    table.add_row("accepted", f"{report['accepted']} in {report['seconds']:.2f} s")
    table.add_row("sends/s", f"[bold]{report['sends_per_second']:.1f}[/bold]")
    table.add_row("latency", "  ".join(f"{name} {value:.1f} ms" for name, value in latency.items()))
    errors = ", ".join(f"{count} × {kind}" for kind, count in report["errors"].items())
    table.add_row("errors", f"[red]{errors}[/red]" if errors else "none")
    output.out().print(table)


def _percentile(ordered: list[float], q: float) -> float:
    """The nearest-rank percentile, in milliseconds (0 without data)."""
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return round(ordered[rank - 1] * 1000, 3)

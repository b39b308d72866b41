"""Where commands talk to: the shared options (`--url`, `--api-key`, `--partner-key`)
and the clients built from them.

Every API call of a command runs inside `number(...)`, `partner(...)` or
`handled(...)`, so a failure is reported the same way everywhere (see `output`).
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from openwaba.cli import output
from openwaba.client import AsyncClient, Client, ClientError, Target
from openwaba.client.target import OPENWABA_URL

UrlOption = Annotated[
    str,
    typer.Option("--url", envvar="OPENWABA_URL", help="openwaba's base URL.", show_default=True),
]
ApiKeyOption = Annotated[
    str,
    typer.Option(
        "--api-key",
        envvar=["OPENWABA_API_KEY", "OPENWABA_SANDBOX_API_KEY"],
        help="The number's D360-API-KEY.",
        show_default=False,
    ),
]
PartnerKeyOption = Annotated[
    str,
    typer.Option(
        "--partner-key", envvar="OPENWABA_PARTNER_API_KEY", help="The partner API key.", show_default=False
    ),
]
PartnerIdOption = Annotated[
    str, typer.Option("--partner-id", envvar="OPENWABA_PARTNER_ID", help="The partner id in the Partner API paths.")
]

DEFAULT_URL = OPENWABA_URL
API_KEY_HINT = "--api-key / OPENWABA_API_KEY"
PARTNER_KEY_HINT = "--partner-key / OPENWABA_PARTNER_API_KEY"


@contextmanager
def handled(url: str, key_hint: str = API_KEY_HINT) -> Iterator[None]:
    """Report a client error raised inside, and exit with its code."""
    try:
        yield
    except ClientError as exc:
        output.fail(exc, url, key_hint)


def number_target(url: str, api_key: str) -> Target:
    if not api_key:
        output.usage_error("no API key", "pass --api-key or set OPENWABA_API_KEY")
    return Target.openwaba(api_key, url)


@contextmanager
def number(url: str, api_key: str) -> Iterator[Client]:
    """A client of the number `api_key` belongs to; client errors inside are reported."""
    target = number_target(url, api_key)
    with handled(target.base_url), Client(target) as client:
        yield client


def async_number(url: str, api_key: str, *, verify: ssl.SSLContext | None = None) -> AsyncClient:
    """An asyncio client of the number over one connection (`bench` gives each worker its own:
    httpx's pool does work proportional to its size on every request)."""
    import httpx

    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    http = httpx.AsyncClient(timeout=30.0, limits=limits, verify=verify or httpx.create_ssl_context())
    return AsyncClient(number_target(url, api_key), http=http)


@contextmanager
def partner(url: str, partner_key: str, partner_id: str = "openwaba") -> Iterator[Client]:
    """A Partner API client (WABAs, channels, keys); client errors inside are reported."""
    if not partner_key:
        output.usage_error("no partner key", "pass --partner-key or set OPENWABA_PARTNER_API_KEY")
    target = Target.partner(partner_key, partner_id or "openwaba", url)
    with handled(target.base_url, PARTNER_KEY_HINT), Client(target) as client:
        yield client

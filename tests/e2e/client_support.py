"""Helpers for the end-to-end tests of `openwaba.client`: one test body for both
clients, numbers of their own created through the Partner API (with the client),
and an HTTP transport that makes the real server page small.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from openwaba.client import ApiError, AsyncClient, Client, Target

from .routing_support import fresh_phone
from .support import HOST, Receiver

FLAVOURS = ["Client", "AsyncClient"]
_users = itertools.count(1)


class Blocking:
    """An AsyncClient behind Client's blocking interface: each call runs to completion on one
    event loop (`asyncio.Runner`, the machinery of `asyncio.run`) that lives as long as the
    client, so its connection pool stays valid. The same test body then drives both clients."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client
        self._runner = asyncio.Runner()

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._client, name)
        if not callable(value):
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._runner.run(value(*args, **kwargs))

        return call

    def close(self) -> None:
        try:
            self._runner.run(self._client.aclose())
        finally:
            self._runner.close()


def connect(flavour: str, target: Target, timeout: float = 10.0) -> Any:
    """A Client, or an AsyncClient driven through `Blocking`."""
    if flavour == "Client":
        return Client(target, timeout=timeout)
    return Blocking(AsyncClient(target, timeout=timeout))


def fresh_user() -> str:
    """A wa_id for a new number's simulated user."""
    return f"1555888{next(_users):04d}"


@dataclass
class Account:
    """A number of its own (a new WABA, a sandbox channel and its key), made with the Partner API."""

    target: Target
    key: str
    channel_id: str
    waba_id: str
    phone_number: str
    phone_number_id: str
    users: list[str]
    client: Any = None  # set by the fixture that hands the account to a test

    @property
    def user(self) -> str:
        return self.users[0]


def open_account(partner: Client, base_url: str, users: int = 1, **settings: Any) -> Account:
    waba = partner.create_waba("client e2e")
    wa_ids = [fresh_user() for _ in range(users)]
    channel = partner.create_channel(waba["id"], fresh_phone(), sandbox_users=wa_ids)
    key = partner.create_api_key(channel["id"])
    if settings:
        partner.update_channel(channel["id"], **settings)
    return Account(Target.openwaba(key["api_key"], base_url), key["api_key"], channel["id"], waba["id"],
                   channel["phone_number"], channel["phone_number_id"], wa_ids)


class CappedLimit(httpx.BaseTransport):
    """Forwards to the real server but asks for at most `cap` items per page, as a host with a
    smaller page size would answer; records every URL requested."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.urls: list[httpx.URL] = []
        self._inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if "limit" in request.url.params:
            wanted = int(request.url.params["limit"])
            request.url = request.url.copy_set_param("limit", str(min(wanted, self.cap)))
        self.urls.append(request.url)
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


@contextlib.contextmanager
def silent_server() -> Iterator[str]:
    """The URL of a port that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        sock.listen(16)
        yield f"http://{HOST}:{sock.getsockname()[1]}"


@contextlib.contextmanager
def running(receiver: Receiver) -> Iterator[Receiver]:
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()


def assert_api_error(error: BaseException, cls: type[ApiError], code: int | None, http_status: int,
                     retryable: bool) -> ApiError:
    """Exactly this class, code, HTTP status and retryability."""
    assert type(error) is cls, f"expected {cls.__name__}, got {type(error).__name__}: {error}"
    assert isinstance(error, ApiError)
    assert (error.code, error.http_status) == (code, http_status), str(error)
    assert error.retryable is retryable
    assert error.title, str(error)
    return error


def shown(client: Any, wa_id: str, wamid: str) -> dict[str, Any]:
    """The message `wamid` as the simulated user's phone shows it."""
    for item in client.user_phone(wa_id)["messages"]:
        if item["id"] == wamid:
            return dict(item)
    raise AssertionError(f"{wamid} is not on {wa_id}'s phone")

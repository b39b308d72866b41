"""`Client` and `AsyncClient`: one surface of operations, two ways to drive it.

The surface is declared once, in :class:`_Surface`, by binding each operation
function. Reading an attribute of a client gives a method whose result is the
operation's value (`Client`) or an awaitable of it (`AsyncClient`); the typing of
that is carried by the overloads of :class:`operation`, so both clients are fully
typed without a second copy of the method list.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Concatenate, Generic, ParamSpec, Self, TypeVar, overload

import httpx

from openwaba.client import messaging, partner, sandbox, webhooks
from openwaba.client.errors import ApiError, TransportError
from openwaba.client.exchange import Operation, Reply, Request
from openwaba.client.target import GRAPH_URL, GRAPH_VERSION, OPENWABA_URL, Target

P = ParamSpec("P")
T = TypeVar("T")


class operation(Generic[P, T]):  # noqa: N801 - used like `property`
    """Makes an operation function `f(target, ...)` a method of both clients."""

    def __init__(self, function: Callable[Concatenate[Target, P], Operation[T]]) -> None:
        self.function = function
        self.__doc__ = function.__doc__

    @overload
    def __get__(self, client: None, owner: type[Any]) -> Self: ...
    @overload
    def __get__(self, client: Client, owner: type[Any]) -> Callable[P, T]: ...
    @overload
    def __get__(self, client: AsyncClient, owner: type[Any]) -> Callable[P, Awaitable[T]]: ...

    def __get__(self, client: _Surface | None, owner: type[Any]) -> Any:
        if client is None:
            return self
        function = self.function

        @functools.wraps(function)
        def method(*args: P.args, **kwargs: P.kwargs) -> Any:
            return client._drive(function(client.target, *args, **kwargs))

        return method


class _Surface:
    """Every call of the client. The first argument of each function (the target) is filled in."""

    target: Target

    send = operation(messaging.send)
    send_text = operation(messaging.send_text)
    mark_read = operation(messaging.mark_read)
    upload_media = operation(messaging.upload_media)
    media = operation(messaging.media)
    download_media = operation(messaging.download_media)
    delete_media = operation(messaging.delete_media)
    templates = operation(messaging.templates)
    create_template = operation(messaging.create_template)
    delete_template = operation(messaging.delete_template)
    phone_number = operation(messaging.phone_number)
    health = operation(messaging.health)
    business_profile = operation(messaging.business_profile)
    update_business_profile = operation(messaging.update_business_profile)

    webhook = operation(webhooks.webhook)
    set_webhook = operation(webhooks.set_webhook)
    waba_webhook = operation(webhooks.waba_webhook)
    set_waba_webhook = operation(webhooks.set_waba_webhook)
    multi_webhook = operation(webhooks.multi_webhook)
    enable_multi_webhook = operation(webhooks.enable_multi_webhook)
    disable_multi_webhook = operation(webhooks.disable_multi_webhook)
    add_webhook_destinations = operation(webhooks.add_webhook_destinations)
    update_webhook_destination = operation(webhooks.update_webhook_destination)
    remove_webhook_destination = operation(webhooks.remove_webhook_destination)
    deliveries = operation(webhooks.deliveries)
    delivery = operation(webhooks.delivery)
    replay_delivery = operation(webhooks.replay_delivery)
    replay_deliveries = operation(webhooks.replay_deliveries)
    notices = operation(webhooks.notices)

    sandbox_users = operation(sandbox.users)
    user_acts = operation(sandbox.user_acts)
    user_says = operation(sandbox.user_says)
    user_taps = operation(sandbox.user_taps)
    user_picks = operation(sandbox.user_picks)
    user_taps_template_button = operation(sandbox.user_taps_template_button)
    user_reacts = operation(sandbox.user_reacts)
    user_shares_location = operation(sandbox.user_shares_location)
    user_sends_file = operation(sandbox.user_sends_file)
    user_phone = operation(sandbox.user_phone)
    scenario = operation(sandbox.scenario)
    set_scenario = operation(sandbox.set_scenario)
    clear_scenario = operation(sandbox.clear_scenario)
    script_progress = operation(sandbox.script_progress)
    clock = operation(sandbox.clock)
    advance_clock = operation(sandbox.advance_clock)
    set_clock = operation(sandbox.set_clock)

    wabas = operation(partner.wabas)
    create_waba = operation(partner.create_waba)
    channels = operation(partner.channels)
    create_channel = operation(partner.create_channel)
    update_channel = operation(partner.update_channel)
    create_api_key = operation(partner.create_api_key)
    api_keys = operation(partner.api_keys)

    def _drive(self, operation: Operation[Any]) -> Any:
        """Run an operation over this client's HTTP connection pool."""
        raise NotImplementedError

    @classmethod
    def openwaba(cls, api_key: str, base_url: str = OPENWABA_URL, **options: Any) -> Self:
        """An openwaba gateway, keyed by a number's `D360-API-KEY`."""
        return cls(Target.openwaba(api_key, base_url), **options)

    @classmethod
    def d360(cls, api_key: str, **options: Any) -> Self:
        """360dialog's Cloud API (`https://waba-v2.360dialog.io`)."""
        return cls(Target.d360(api_key), **options)

    @classmethod
    def meta(
        cls,
        access_token: str,
        phone_number_id: str,
        waba_id: str = "",
        *,
        version: str = GRAPH_VERSION,
        base_url: str = GRAPH_URL,
        **options: Any,
    ) -> Self:
        """Meta's Cloud API, with a system-user access token."""
        return cls(Target.meta(access_token, phone_number_id, waba_id, version, base_url), **options)

    def __init__(self, target: Target, **options: Any) -> None:
        self.target = target


def _arguments(request: Request) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "method": request.method,
        "url": request.url,
        "headers": dict(request.headers),
        "params": dict(request.params) or None,
    }
    if request.upload is not None:
        upload = request.upload
        arguments["data"] = dict(request.data or {})
        arguments["files"] = {upload.name: (upload.filename, upload.content, upload.mime_type)}
    elif request.json is not None:
        arguments["json"] = request.json
    elif request.content is not None:
        arguments["content"] = request.content
    return arguments


def _reply(response: httpx.Response) -> Reply:
    return Reply(response.status_code, response.headers, response.content)


def _transport_error(request: Request, exc: httpx.RequestError) -> TransportError:
    return TransportError(f"{request.method} {request.url} got no answer: {exc!r}")


def _advance(operation: Operation[T], response: httpx.Response) -> Request:
    """The operation's next request; a success answer it cannot read is an ApiError, not a KeyError."""
    try:
        return operation.send(_reply(response))
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        excerpt = response.content[:200].decode("utf-8", "replace")
        raise ApiError(response.status_code, None, "Unexpected answer", excerpt) from exc


class Client(_Surface):
    """The blocking client: `Client.openwaba(key).send_text("15551230001", "Hi")`."""

    def __init__(self, target: Target, *, timeout: float = 30.0, http: httpx.Client | None = None) -> None:
        self.target = target
        self._http = http or httpx.Client(timeout=timeout)

    def _drive(self, operation: Operation[T]) -> T:
        request = next(operation)
        while True:
            try:
                response = self._http.request(**_arguments(request))
            except httpx.RequestError as exc:  # no answer, or one that cannot be decoded
                raise _transport_error(request, exc) from exc
            try:
                request = _advance(operation, response)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()


class AsyncClient(_Surface):
    """The asyncio client: `await AsyncClient.openwaba(key).send_text("15551230001", "Hi")`."""

    def __init__(self, target: Target, *, timeout: float = 30.0, http: httpx.AsyncClient | None = None) -> None:
        self.target = target
        self._http = http or httpx.AsyncClient(timeout=timeout)

    async def _drive(self, operation: Operation[T]) -> T:
        request = next(operation)
        while True:
            try:
                response = await self._http.request(**_arguments(request))
            except httpx.RequestError as exc:  # no answer, or one that cannot be decoded
                raise _transport_error(request, exc) from exc
            try:
                request = _advance(operation, response)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        await self.aclose()

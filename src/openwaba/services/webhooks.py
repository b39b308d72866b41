"""Webhook configuration (phone number, WABA, multi-webhook) and routing.

Configuration errors are raised as :class:`WebhookConfigError` with the HTTP
status 360dialog's webhook endpoints use; the faces render them as
`{"error": "..."}`.
"""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from openwaba.domain.accounts import Channel, ChannelFormat, ChannelMode
from openwaba.domain.deliveries import Destination
from openwaba.domain.errors import OpenwabaError, RequestError
from openwaba.domain.routing import FanOut, FanoutMode, WebhookSetup, fan_out
from openwaba.domain.signing import secret_key
from openwaba.domain.webhook_urls import check_webhook_url, is_private_address
from openwaba.storage.base import Storage

MAIN = "main"  # kind and name of the phone-number webhook (/v1/configs/webhook)
WABA = "waba"
MULTI = "multi"


class WebhookConfigError(OpenwabaError):
    """A webhook configuration request that cannot be carried out."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    url: str
    headers: dict[str, str]
    override_all: bool = False


@dataclass(frozen=True, slots=True)
class DestinationOptions:
    """Requested changes to how a destination is signed and ordered. None keeps
    the current value; for secrets "" removes and a value sets (a new Standard
    Webhooks secret goes in front, the previous one stays valid: rotation)."""

    secret: str | None = None
    app_secret: str | None = None
    fifo: bool | None = None

    def secrets_after(self, current: tuple[str, ...]) -> tuple[str, ...]:
        if self.secret is None:
            return current
        if self.secret == "":
            return ()
        return (self.secret, *current[:1])


@dataclass(frozen=True, slots=True)
class DestinationSpec:
    name: str
    url: str
    headers: dict[str, str]
    options: DestinationOptions = DestinationOptions()


def channel_scope(channel: Channel) -> str:
    return f"channel:{channel.id}"


def waba_scope(channel: Channel) -> str:
    return f"waba:{channel.waba_id}"


def check_retry_horizon(horizon: float | None) -> None:
    if horizon is not None and not 60 <= horizon <= 30 * 86400:
        raise RequestError(100, "'retry_horizon_seconds' must be between 60 and 2592000 (30 days), or null")


class Webhooks:
    def __init__(self, storage: Storage, *, multi_max: int = 3, ssrf_guard: bool = True) -> None:
        self._storage = storage
        self._multi_max = multi_max
        self._ssrf_guard = ssrf_guard
        self._setups: dict[int, WebhookSetup] = {}
        self._generation = 0  # bumped on every configuration change
        self._horizons: dict[int, float | None] = {}

    # routing ------------------------------------------------------------------
    async def fan_out(self, channel: Channel) -> FanOut:
        setup = self._setups.get(channel.id)
        if setup is None:
            generation = self._generation
            setup = await self._load_setup(channel)
            if generation == self._generation:  # no change happened while loading: safe to cache
                self._setups[channel.id] = setup
        return fan_out(setup)

    async def _load_setup(self, channel: Channel) -> WebhookSetup:
        own = await self._storage.destinations(channel_scope(channel))
        main = next((d for d in own if d.kind == MAIN), None)
        if channel.format is not ChannelFormat.CLOUD:
            return WebhookSetup(main=main)  # WABA and multi-webhooks are for Cloud numbers only
        waba = next(iter(await self._storage.destinations(waba_scope(channel))), None)
        if waba is not None and channel.mode is ChannelMode.PRODUCTION and not _production_url(waba.url):
            waba = None  # set while the WABA had only sandbox numbers: not for a production number's events
        multi_enabled, fanout = await self._storage.channel_webhook_flags(channel.id)
        return WebhookSetup(
            main=main,
            waba=waba,
            waba_override_all=bool(waba and waba.override_all),
            multi_enabled=multi_enabled,
            multi=tuple(d for d in own if d.kind == MULTI),
            fanout=FanoutMode(fanout),
        )

    async def retry_horizon(self, channel: Channel) -> float | None:
        """The channel's own retry horizon in seconds, or None for the deployment's."""
        if channel.id not in self._horizons:
            self._horizons[channel.id] = await self._storage.channel_retry_horizon(channel.id)
        return self._horizons[channel.id]

    async def set_retry_horizon(self, channel: Channel, horizon: float | None) -> None:
        check_retry_horizon(horizon)
        await self._storage.set_channel_retry_horizon(channel.id, horizon)
        self._horizons.pop(channel.id, None)

    def forget(self) -> None:
        """Drop cached configuration (after a change made elsewhere, e.g. key rotation)."""
        self._changed()

    def _changed(self) -> None:
        self._generation += 1
        self._setups.clear()  # a WABA change touches every number of the WABA

    # phone-number webhook --------------------------------------------------------
    async def get_main(self, channel: Channel) -> WebhookConfig | None:
        return _config(await self._find(channel_scope(channel), MAIN))

    async def set_main(
        self, channel: Channel, url: str, headers: dict[str, str], options: DestinationOptions = DestinationOptions()
    ) -> WebhookConfig | None:
        """Set the phone-number webhook; an empty URL removes it."""
        if not url:
            await self._storage.remove_destination(channel_scope(channel), MAIN, MAIN)
            self._changed()
            return None
        await self._check_url(channel, url)
        current = await self._find(channel_scope(channel), MAIN)
        await self._storage.set_destination(
            channel_scope(channel), MAIN, MAIN, url, headers, **_options_after(options, current)
        )
        self._changed()
        return WebhookConfig(url, headers)

    # WABA webhook -------------------------------------------------------------------
    async def get_waba(self, channel: Channel) -> WebhookConfig | None:
        self._require_cloud(channel, "The WABA webhook")
        return _config(await self._find(waba_scope(channel), WABA))

    async def set_waba(
        self,
        channel: Channel,
        url: str,
        headers: dict[str, str],
        override_all: bool,
        waba_channels: Sequence[Channel] = (),
    ) -> None:
        """`waba_channels`: every number of the WABA; if one is in production, production rules apply."""
        self._require_cloud(channel, "The WABA webhook")
        if not url:
            await self._storage.remove_destination(waba_scope(channel), WABA, WABA)
        else:
            production = any(c.mode is ChannelMode.PRODUCTION for c in waba_channels if c.waba_id == channel.waba_id)
            await self._check_url(channel, url, production=production or channel.mode is ChannelMode.PRODUCTION)
            await self._storage.set_destination(waba_scope(channel), WABA, WABA, url, headers, override_all)
        self._changed()

    # multi-webhook ----------------------------------------------------------------------
    async def get_multi(self, channel: Channel) -> tuple[bool, str, list[Destination]]:
        self._require_cloud(channel, "Multi-webhook")
        enabled, fanout = await self._storage.channel_webhook_flags(channel.id)
        own = await self._storage.destinations(channel_scope(channel))
        return enabled, fanout, [d for d in own if d.kind == MULTI]

    async def enable_multi(
        self, channel: Channel, enabled: bool, specs: Sequence[DestinationSpec], fanout: FanoutMode | None
    ) -> None:
        was_enabled, _, existing = await self.get_multi(channel)
        if not enabled:
            for destination in existing:
                await self._storage.remove_destination(channel_scope(channel), MULTI, destination.name)
            await self._storage.set_channel_webhook_flags(channel.id, False, fanout.value if fanout else None)
            self._changed()
            return
        if was_enabled:
            if specs:
                raise WebhookConfigError(
                    "Multi-webhook is already enabled; use PUT /multi_webhook to add destinations", 409
                )
        else:
            await self._add(channel, [], specs)
        await self._storage.set_channel_webhook_flags(channel.id, True, fanout.value if fanout else None)
        self._changed()

    async def append_multi(self, channel: Channel, specs: Sequence[DestinationSpec]) -> None:
        existing = await self._enabled_destinations(channel)
        if not specs:
            raise WebhookConfigError("'destinations' must list at least one destination")
        await self._add(channel, existing, specs)
        self._changed()

    async def update_multi(
        self,
        channel: Channel,
        name: str,
        url: str | None,
        headers: dict[str, str] | None,
        options: DestinationOptions = DestinationOptions(),
    ) -> None:
        existing = await self._enabled_destinations(channel)
        current = next((d for d in existing if d.name == name), None)
        if current is None:
            raise WebhookConfigError(f"No destination named '{name}' (names are case-sensitive)", 404)
        if url is None and headers is None and options == DestinationOptions():
            raise WebhookConfigError("Give 'url', 'headers', 'secret', 'app_secret' or 'fifo' to change")
        if url is not None:
            await self._check_url(channel, url)
        await self._storage.update_destination(
            channel_scope(channel), MULTI, name, url, headers, **_options_after(options, current)
        )
        self._changed()

    async def delete_multi(self, channel: Channel, name: str) -> None:
        await self._enabled_destinations(channel)
        if not await self._storage.remove_destination(channel_scope(channel), MULTI, name):
            raise WebhookConfigError(f"No destination named '{name}' (names are case-sensitive)", 404)
        self._changed()

    async def _enabled_destinations(self, channel: Channel) -> list[Destination]:
        enabled, _, existing = await self.get_multi(channel)
        if not enabled:
            raise WebhookConfigError("Multi-webhook is not enabled; enable it first with POST /multi_webhook", 409)
        return existing

    async def _add(self, channel: Channel, existing: list[Destination], specs: Sequence[DestinationSpec]) -> None:
        taken = {d.name for d in existing}
        for spec in specs:
            if spec.name in taken:
                raise WebhookConfigError(f"A destination named '{spec.name}' already exists; names must be unique", 409)
            taken.add(spec.name)
        if len(taken) > self._multi_max:
            raise WebhookConfigError(
                f"Too many destinations: at most {self._multi_max} per number ({len(existing)} configured)"
            )
        for spec in specs:
            await self._check_url(channel, spec.url)
        for spec in specs:
            await self._storage.set_destination(
                channel_scope(channel), MULTI, spec.name, spec.url, spec.headers, **_options_after(spec.options, None)
            )

    # rules ---------------------------------------------------------------------------------
    async def _find(self, scope: str, kind: str) -> Destination | None:
        return next((d for d in await self._storage.destinations(scope) if d.kind == kind), None)

    def _require_cloud(self, channel: Channel, feature: str) -> None:
        if channel.format is not ChannelFormat.CLOUD:
            raise WebhookConfigError(f"{feature} is available for Cloud API numbers only")

    async def _check_url(self, channel: Channel, url: str, production: bool | None = None) -> None:
        if production is None:
            production = channel.mode is ChannelMode.PRODUCTION
        try:
            host = check_webhook_url(url, production=production)
        except RequestError as exc:
            raise WebhookConfigError(exc.details) from None
        if production and self._ssrf_guard:
            await _refuse_private(url, host)


async def _refuse_private(url: str, host: str) -> None:
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, 443, type=socket.SOCK_STREAM)
    except OSError:
        raise WebhookConfigError(f"Webhook url '{url}': host '{host}' cannot be resolved") from None
    for info in infos:
        if is_private_address(str(info[4][0])):
            raise WebhookConfigError(
                f"Webhook url '{url}' resolves to a private or loopback address ({info[4][0]}); "
                "production numbers may only post to public addresses"
            )


def _options_after(options: DestinationOptions, current: Destination | None) -> dict[str, Any]:
    """Storage keyword arguments for the destination after applying `options`."""
    secrets = options.secrets_after(current.secrets if current else ())
    if options.app_secret is None:
        app_secret = current.app_secret if current else None
    else:
        app_secret = options.app_secret or None
    fifo = options.fifo if options.fifo is not None else bool(current and current.fifo)
    return {"secrets": secrets, "app_secret": app_secret, "fifo": fifo}


def parse_options(body: dict[str, Any], where: str = "") -> DestinationOptions:
    """Optional `secret` (Standard Webhooks `whsec_…`) and `app_secret` (Meta) fields."""
    secret, app_secret, fifo = body.get("secret"), body.get("app_secret"), body.get("fifo")
    for key, value in (("secret", secret), ("app_secret", app_secret)):
        if value is not None and not isinstance(value, str):
            raise WebhookConfigError(f"'{where}{key}' must be a string (\"\" removes it)")
    if fifo is not None and not isinstance(fifo, bool):
        raise WebhookConfigError(f"'{where}fifo' must be true or false")
    if secret:
        try:
            secret_key(secret)
        except RequestError as exc:
            raise WebhookConfigError(f"'{where}secret': {exc.details}") from None
    return DestinationOptions(secret, app_secret, fifo)


def _production_url(url: str) -> bool:
    try:
        host = check_webhook_url(url, production=True)
    except RequestError:
        return False
    try:
        return not is_private_address(host)
    except ValueError:
        return True  # a host name: resolved and checked when the webhook was set


def _config(destination: Destination | None) -> WebhookConfig | None:
    if destination is None:
        return None
    return WebhookConfig(destination.url, destination.headers, destination.override_all)


def parse_destinations(raw: Any) -> list[DestinationSpec]:
    """`[{"name", "url", "headers"?}]` -> specs, or WebhookConfigError saying what is wrong."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise WebhookConfigError("'destinations' must be a list of {name, url, headers} objects")
    specs = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            raise WebhookConfigError(f"destinations[{index}] must be an object with name, url and headers")
        name, url = item.get("name"), item.get("url")
        if not isinstance(name, str) or not name.strip():
            raise WebhookConfigError(f"destinations[{index}].name must be a non-empty string")
        if not isinstance(url, str) or not url:
            raise WebhookConfigError(f"destinations[{index}].url must be a non-empty string")
        headers = parse_headers(item.get("headers"), f"destinations[{index}].headers")
        specs.append(DestinationSpec(name, url, headers, parse_options(item, f"destinations[{index}].")))
    return specs


_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Headers openwaba sets itself on every delivery; a configuration may not replace them.
_RESERVED = {
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "x-hub-signature-256",
}


def parse_headers(raw: Any, where: str = "headers") -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in raw.items()):
        raise WebhookConfigError(f"'{where}' must be an object of string names to string values")
    for name, value in raw.items():
        if not _TOKEN.fullmatch(name):
            raise WebhookConfigError(f"'{where}': {name!r} is not a valid header name")
        if name.lower() in _RESERVED:
            raise WebhookConfigError(
                f"'{where}': {name!r} is set by openwaba on every delivery and cannot be configured"
            )
        if any(ch in value for ch in "\r\n\0"):
            raise WebhookConfigError(f"'{where}': the value of {name!r} must not contain CR, LF or NUL")
    return raw

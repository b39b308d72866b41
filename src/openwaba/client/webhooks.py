"""Operations on where a number's webhooks go: its own webhook, the WABA webhook,
multi-webhook destinations, and (openwaba only) the delivery log."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from openwaba.client.exchange import Operation
from openwaba.client.messaging import Json, call
from openwaba.client.target import Target

Fanout = Literal["after_main", "independent"]


def webhook(target: Target, /) -> Operation[Json]:
    """The number's webhook: `url` and `headers`."""
    return (yield from call(target, "GET", "webhook"))


def set_webhook(
    target: Target, /, url: str, headers: Mapping[str, str] | None = None, **extensions: Any
) -> Operation[Json]:
    """Set (or with `url=""` remove) the number's webhook; openwaba also takes `secret`, `app_secret`, `fifo`."""
    body = {"url": url, **({"headers": dict(headers)} if headers else {}), **extensions}
    return (yield from call(target, "POST", "webhook", json=body))


def waba_webhook(target: Target, /) -> Operation[Json]:
    return (yield from call(target, "GET", "waba_webhook"))


def set_waba_webhook(
    target: Target, /, url: str, headers: Mapping[str, str] | None = None, *, override_all: bool | None = None
) -> Operation[Json]:
    """Set the webhook of the number's WABA; `override_all` makes it win over every number's own."""
    body: Json = {"url": url}
    if headers:
        body["headers"] = dict(headers)
    if override_all is not None:
        body["override_all"] = override_all
    return (yield from call(target, "POST", "waba_webhook", json=body))


def multi_webhook(target: Target, /) -> Operation[Json]:
    """`enabled`, `fanout` and the extra `destinations` (name, url, headers)."""
    return (yield from call(target, "GET", "multi_webhook"))


def enable_multi_webhook(
    target: Target, /, destinations: Sequence[Mapping[str, Any]] = (), *, fanout: Fanout | None = None
) -> Operation[Json]:
    body: Json = {"enabled": True, "destinations": [dict(d) for d in destinations]}
    if fanout is not None:
        body["fanout"] = fanout
    return (yield from call(target, "POST", "multi_webhook", json=body))


def disable_multi_webhook(target: Target, /) -> Operation[Json]:
    """Switch multi-webhook off; its destinations are removed."""
    return (yield from call(target, "POST", "multi_webhook", json={"enabled": False}))


def add_webhook_destinations(target: Target, /, destinations: Sequence[Mapping[str, Any]]) -> Operation[Json]:
    """Append destinations `{"name", "url", "headers"}`; names are unique."""
    body = {"destinations": [dict(d) for d in destinations]}
    return (yield from call(target, "PUT", "multi_webhook", json=body))


def update_webhook_destination(target: Target, /, name: str, **changes: Any) -> Operation[Json]:
    """Change `url`, `headers` (and on openwaba `secret`, `app_secret`, `fifo`) of one destination."""
    return (yield from call(target, "PATCH", "multi_webhook", json={"name": name, **changes}))


def remove_webhook_destination(target: Target, /, name: str) -> Operation[Json]:
    return (yield from call(target, "DELETE", "multi_webhook_destination", name=name))


def deliveries(
    target: Target,
    /,
    *,
    state: str | None = None,
    destination: str | None = None,
    event_id: str | None = None,
    since: float | None = None,
    until: float | None = None,
    limit: int = 100,
    before: int | None = None,
) -> Operation[Json]:
    """One page of the delivery log, newest first (`deliveries`, and `paging.before` for the next page)."""
    given = {"state": state, "destination": destination, "event_id": event_id, "since": since, "until": until}
    given["before"] = before
    params = {k: str(v) for k, v in given.items() if v is not None} | {"limit": str(limit)}
    return (yield from call(target, "GET", "deliveries", params=params))


def delivery(target: Target, /, delivery_id: int) -> Operation[Json]:
    """One delivery with every attempt and the payload."""
    return (yield from call(target, "GET", "delivery", delivery_id=str(delivery_id)))


def replay_delivery(target: Target, /, delivery_id: int) -> Operation[int]:
    """Attempt one delivery again (same event id); how many were replayed."""
    answer = yield from call(target, "POST", "delivery_replay", delivery_id=str(delivery_id))
    return int(answer.get("replayed", 0))


def replay_deliveries(
    target: Target,
    /,
    *,
    state: str = "dead",
    destination: str | None = None,
    since: float | None = None,
    until: float | None = None,
) -> Operation[int]:
    """Attempt again every delivery matching the filter (dead-lettered ones by default)."""
    body = {"state": state, "destination": destination, "since": since, "until": until}
    answer = yield from call(target, "POST", "deliveries_replay", json=body)
    return int(answer.get("replayed", 0))


def notices(target: Target, /) -> Operation[Json]:
    """Operational events of the number, e.g. a destination disabled after `410 Gone`."""
    return (yield from call(target, "GET", "notices"))

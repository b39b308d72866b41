"""The delivery log face: `/deliveries`, replay, and `/metrics`."""

from __future__ import annotations

from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from openwaba import metrics
from openwaba.domain.deliveries import AttemptView, DeliveryFilter, DeliveryView
from openwaba.domain.errors import RequestError
from openwaba.http.cloud import channel_of, gateway
from openwaba.http.responses import flat_face, json_body, json_response


@flat_face
async def list_deliveries(request: Request) -> Response:
    channel = await channel_of(request)
    query = request.query_params
    where = _filter(dict(query))
    given = _int(query.get("limit"), "limit")
    limit = 100 if given is None else given
    items = await gateway(request).delivery_log.page(channel, where, limit, _int(query.get("before"), "before"))
    paging = {"before": items[-1].id} if len(items) == limit else {}
    return json_response({"deliveries": [_delivery(d) for d in items], "paging": paging})


@flat_face
async def show_delivery(request: Request) -> Response:
    channel = await channel_of(request)
    detail = await gateway(request).delivery_log.detail(channel, _path_id(request))
    return json_response(
        {
            **_delivery(detail.delivery),
            "attempts": [_attempt(a) for a in detail.attempts],
            "payload": detail.payload,
        }
    )


@flat_face
async def replay_one(request: Request) -> Response:
    channel = await channel_of(request)
    count = await gateway(request).delivery_log.replay(channel, DeliveryFilter(delivery_id=_path_id(request)))
    return json_response({"replayed": count})


@flat_face
async def replay_many(request: Request) -> Response:
    channel = await channel_of(request)
    body = await json_body(request)
    where = _filter({"state": "dead", **{k: v for k, v in body.items() if v is not None}})
    return json_response({"replayed": await gateway(request).delivery_log.replay(channel, where)})


@flat_face
async def list_notices(request: Request) -> Response:
    channel = await channel_of(request)
    notices = await gateway(request).delivery_log.notices(channel)
    return json_response({"notices": [{"at": at, "kind": kind, "detail": detail} for at, kind, detail in notices]})


async def metrics_endpoint(request: Request) -> Response:
    depth, oldest_age = await gateway(request).delivery_log.queue_gauges()
    metrics.queue_depth.set(depth)
    metrics.oldest_pending.set(oldest_age)
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)


def _filter(raw: dict[str, Any]) -> DeliveryFilter:
    unknown = set(raw) - {"state", "destination", "event_id", "since", "until", "limit", "before"}
    if unknown:
        raise RequestError(100, f"Unknown filter(s): {', '.join(sorted(unknown))}")
    return DeliveryFilter(
        state=_text(raw.get("state"), "state"),
        destination=_text(raw.get("destination"), "destination"),
        event_id=_text(raw.get("event_id"), "event_id"),
        since=_float(raw.get("since"), "since"),
        until=_float(raw.get("until"), "until"),
    )


def _text(value: Any, name: str) -> str | None:
    if value is None or isinstance(value, str):
        return value or None
    raise RequestError(100, f"'{name}' must be a string")


_INT64 = 2**63 - 1  # SQLite stores 64-bit integers


def _int(value: Any, name: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise RequestError(100, f"'{name}' must be an integer") from None
    if not -_INT64 - 1 <= number <= _INT64:
        raise RequestError(100, f"'{name}' is out of range")
    return number


def _float(value: Any, name: str) -> float | None:
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise RequestError(100, f"'{name}' must be a number") from None


def _path_id(request: Request) -> int:
    delivery_id = _int(request.path_params["delivery_id"], "delivery id")
    assert delivery_id is not None  # the route only matches a non-empty segment
    return delivery_id


def _delivery(d: DeliveryView) -> dict[str, Any]:
    return {
        "id": d.id,
        "event_id": d.event_id,
        "event": {"kind": d.event_kind, "wamid": d.wamid},
        "destination": {"kind": d.destination_kind, "name": d.destination_name, "url": d.url},
        "state": d.state,
        "attempts_made": d.attempts,
        "created_at": d.created_at,
        "next_attempt_at": d.next_attempt_at,
        "deadline": d.deadline,
        "last_status": d.last_status,
        "last_error": d.last_error,
        "injected": d.injected_labels,
    }


def _attempt(a: AttemptView) -> dict[str, Any]:
    return {
        "at": a.started_at,
        "status_code": a.status_code,
        "latency_ms": round(a.duration_ms, 3),
        "error": a.error,
        "response_excerpt": a.response_excerpt,
        "headers": a.headers,
    }


routes = [
    Route("/deliveries", list_deliveries, methods=["GET"]),
    Route("/deliveries/replay", replay_many, methods=["POST"]),
    Route("/deliveries/{delivery_id}", show_delivery, methods=["GET"]),
    Route("/deliveries/{delivery_id}/replay", replay_one, methods=["POST"]),
    Route("/notices", list_notices, methods=["GET"]),
    Route("/metrics", metrics_endpoint, methods=["GET"]),
]

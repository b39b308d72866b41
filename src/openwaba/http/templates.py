"""Message templates on the 360dialog face (`/v1/configs/templates`, a
`waba_templates` list with count/limit/offset/total, delete by name) and the
Meta-style `GET /message_templates` with cursor paging. Errors are Graph's.
"""

from __future__ import annotations

import base64
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from openwaba.domain.errors import RequestError
from openwaba.domain.templates import Template
from openwaba.http.cloud import channel_of, gateway
from openwaba.http.responses import graph_face, json_body, json_response

_FILTERABLE = ("name", "status", "language", "category")
_MAX_LIMIT = 1000


@graph_face
async def list_templates(request: Request) -> Response:
    templates = await gateway(request).templates.list(await channel_of(request))
    q = request.query_params
    filters = _filters(q.get("filters"))
    limit = _integer(q.get("limit"), "limit", _MAX_LIMIT, 1, _MAX_LIMIT)
    offset = _integer(q.get("offset"), "offset", 0, 0, 10**9)
    chosen = [t for t in templates if _matches(t, filters)]
    page = chosen[offset : offset + limit]
    return json_response(
        {
            "count": len(page),
            "filters": filters,
            "sort": ["name", "language"],
            "limit": limit,
            "offset": offset,
            "total": len(chosen),
            "waba_templates": [_dialog360(t) for t in page],
        }
    )


@graph_face
async def create_template(request: Request) -> Response:
    template = await gateway(request).templates.create(await channel_of(request), await json_body(request))
    return json_response(_dialog360(template), 201)


@graph_face
async def delete_template(request: Request) -> Response:
    await gateway(request).templates.delete(await channel_of(request), request.path_params["name"])
    return json_response({"success": True})


@graph_face
async def message_templates(request: Request) -> Response:
    """Meta's `GET /{waba_id}/message_templates`: `data` plus `paging.cursors`."""
    templates = await gateway(request).templates.list(await channel_of(request))
    q = request.query_params
    filters = {k: q[k] for k in _FILTERABLE if k in q}
    chosen = [t for t in templates if _matches(t, filters)]
    limit = _integer(q.get("limit"), "limit", 25, 1, _MAX_LIMIT)
    start = 0
    if "after" in q:
        start = _cursor(q["after"])
    elif "before" in q:
        start = max(0, _cursor(q["before"]) - limit)
    page = chosen[start : start + limit]
    body: dict[str, Any] = {"data": [_meta(t) for t in page]}
    if page:
        body["paging"] = {"cursors": {"before": _encode(start), "after": _encode(start + len(page))}}
        if start + len(page) < len(chosen):
            body["paging"]["next"] = str(request.url.include_query_params(after=_encode(start + len(page))))
    return json_response(body)


def _dialog360(t: Template) -> dict[str, Any]:
    return {
        "id": t.id,
        "name": t.name,
        "namespace": t.namespace,
        "language": t.language,
        "category": t.category,
        "status": t.status.value.lower(),
        "rejected_reason": t.rejected_reason,
        "components": t.components,
    }


def _meta(t: Template) -> dict[str, Any]:
    body = {
        "name": t.name,
        "components": t.components,
        "language": t.language,
        "status": t.status.value,
        "category": t.category,
        "id": t.id,
    }
    if t.rejected_reason:
        body["rejected_reason"] = t.rejected_reason
    return body


def _matches(t: Template, filters: dict[str, Any]) -> bool:
    view = {"name": t.name, "status": t.status.value, "language": t.language, "category": t.category}
    return all(str(view[k]).lower() == str(v).lower() for k, v in filters.items())


def _filters(raw: str | None) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        filters = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        raise RequestError(100, "'filters' must be a JSON object, e.g. {\"status\": \"approved\"}") from None
    if not isinstance(filters, dict) or not set(filters) <= set(_FILTERABLE):
        raise RequestError(100, f"'filters' must be a JSON object with keys among {', '.join(_FILTERABLE)}")
    return filters


def _integer(raw: str | None, name: str, default: int, low: int, high: int) -> int:
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise RequestError(100, f"'{name}' must be a whole number from {low} to {high}")
    return int(raw)


def _encode(position: int) -> str:
    return base64.urlsafe_b64encode(str(position).encode()).decode().rstrip("=")


def _cursor(raw: str) -> int:
    try:
        position = int(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode())
    except (ValueError, UnicodeDecodeError):
        raise RequestError(100, "The paging cursor is not valid; use the cursors from the previous page") from None
    if position < 0:
        raise RequestError(100, "The paging cursor is not valid; use the cursors from the previous page")
    return position


routes = [
    Route("/v1/configs/templates", list_templates, methods=["GET"]),
    Route("/v1/configs/templates", create_template, methods=["POST"]),
    Route("/v1/configs/templates/{name}", delete_template, methods=["DELETE"]),
    Route("/message_templates", message_templates, methods=["GET"]),
]

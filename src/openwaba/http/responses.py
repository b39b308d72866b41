"""Responses and error envelopes, one per face.

- Graph (Cloud `/messages`): `{"error": {message, type, code, error_data, fbtrace_id}}`
- 360dialog flat (auth, config endpoints, sandbox): `{"error": "..."}`
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from openwaba.domain.errors import AuthError, NotFoundError, RequestError, StateError
from openwaba.services.webhooks import WebhookConfigError

Endpoint = Callable[[Request], Awaitable[Response]]


def json_response(content: Any, status: int = 200) -> Response:
    return Response(msgspec.json.encode(content), status_code=status, media_type="application/json")


def graph_error(error: RequestError) -> Response:
    body = {
        "error": {
            "message": f"(#{error.code}) {error.title}",
            "type": "OAuthException",
            "code": error.code,
            "error_data": {"messaging_product": "whatsapp", "details": error.details},
            "fbtrace_id": "A" + secrets.token_urlsafe(16),
        }
    }
    return json_response(body, error.http_status)


def flat_error(message: str, status: int) -> Response:
    return json_response({"error": message}, status)


def _render(exc: Exception, graph: bool) -> Response:
    if isinstance(exc, AuthError):
        return flat_error(exc.message, 401)
    if isinstance(exc, RequestError):
        return graph_error(exc) if graph else flat_error(exc.details, exc.http_status)
    if isinstance(exc, NotFoundError):
        return flat_error(exc.message, 404)
    if isinstance(exc, StateError):
        return flat_error(exc.message, 409)
    if isinstance(exc, WebhookConfigError):
        return flat_error(exc.message, exc.status)
    raise exc


_HANDLED = (AuthError, RequestError, NotFoundError, StateError, WebhookConfigError)


def _face(graph: bool) -> Callable[[Endpoint], Endpoint]:
    def decorate(endpoint: Endpoint) -> Endpoint:
        async def wrapped(request: Request) -> Response:
            try:
                return await endpoint(request)
            except _HANDLED as exc:
                return _render(exc, graph=graph)

        return wrapped

    return decorate


graph_face = _face(graph=True)  # the Graph API's error envelope (the Cloud send face)
flat_face = _face(graph=False)  # 360dialog's own endpoints: `{"error": "..."}`


async def json_body(request: Request) -> dict[str, Any]:
    """The request body as a JSON object, or a RequestError that says what is wrong."""
    raw = await request.body()
    try:
        document = msgspec.json.decode(raw) if raw else {}
    except msgspec.DecodeError as exc:
        raise RequestError(100, f"Request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise RequestError(100, "Request body is nested too deeply") from None
    if not isinstance(document, dict):
        raise RequestError(100, "Request body must be a JSON object")
    return document

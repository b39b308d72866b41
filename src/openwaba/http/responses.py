"""Responses and error envelopes, one per face.

- Graph (Cloud `/messages`, media, templates, profile):
  `{"error": {message, type, code, error_data, fbtrace_id}}`
- Meta's Graph paths (`/{version}/...`): Graph's, and a bad token or another
  number's id answer as Meta does (OAuth 190; 100 with subcode 33)
- On-Premise (`/v1/messages`, `/v1/media`, ...): `{"errors": [{code, title, details, href}], "meta": {...}}`
- 360dialog flat (auth, config endpoints, sandbox): `{"error": "..."}`
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from openwaba.domain.errors import (
    ERROR_DOCS_HREF,
    AuthError,
    NotFoundError,
    OpenwabaError,
    RequestError,
    StateError,
)
from openwaba.services.webhooks import WebhookConfigError

Endpoint = Callable[[Request], Awaitable[Response]]

# The On-Premise API level whose behaviour /v1 follows (2.39+: no contact check
# needed before sending; 2.43+: every contact checks as valid).
ON_PREMISE_META = {"api_status": "stable", "version": "2.53.0"}


class UnknownGraphObject(OpenwabaError):
    """A Graph path names an object (a number, a WABA) that is not the caller's."""

    def __init__(self, object_id: str, method: str) -> None:
        super().__init__(f"no object {object_id} for this key")
        self.object_id = object_id
        self.method = method


def json_response(content: Any, status: int = 200) -> Response:
    return Response(msgspec.json.encode(content), status_code=status, media_type="application/json")


def graph_error(error: RequestError) -> Response:
    return _graph_body(error.code, error.title, error.details, error.http_status)


def _graph_body(code: int, title: str, details: str, status: int) -> Response:
    body = {
        "error": {
            "message": f"(#{code}) {title}",
            "type": "OAuthException",
            "code": code,
            "error_data": {"messaging_product": "whatsapp", "details": details},
            "fbtrace_id": _trace_id(),
        }
    }
    return json_response(body, status)


def _trace_id() -> str:
    return "A" + secrets.token_urlsafe(16)


def _oauth_error() -> Response:
    """Meta's answer to a missing or unknown access token."""
    message = "Invalid OAuth access token - Cannot parse access token"
    error = {"message": message, "type": "OAuthException", "code": 190, "fbtrace_id": _trace_id()}
    return json_response({"error": error}, 401)


def unsupported_request(object_id: str, method: str) -> Response:
    """Meta's answer when the path's object is nothing the token may use, or does not
    support the operation (code 100, subcode 33)."""
    message = (
        f"Unsupported {method.lower()} request. Object with ID '{object_id}' does not exist, cannot be "
        "loaded due to missing permissions, or does not support this operation. Please read the Graph API "
        "documentation at https://developers.facebook.com/docs/graph-api"
    )
    error = {"message": message, "type": "GraphMethodException", "code": 100, "error_subcode": 33}
    return json_response({"error": {**error, "fbtrace_id": _trace_id()}}, 400)


def on_premise_response(content: dict[str, Any], status: int = 200) -> Response:
    return json_response({**content, "meta": ON_PREMISE_META}, status)


def _on_premise_error(code: int, title: str, details: str, status: int) -> Response:
    error = {"code": code, "title": title, "details": details, "href": ERROR_DOCS_HREF}
    return on_premise_response({"errors": [error]}, status)


def flat_error(message: str, status: int) -> Response:
    return json_response({"error": message}, status)


def _render(exc: Exception, face: str) -> Response:
    if face == "meta_graph":
        if isinstance(exc, AuthError):
            return _oauth_error()
        if isinstance(exc, UnknownGraphObject):
            return unsupported_request(exc.object_id, exc.method)
        face = "graph"  # everything else as on the 360dialog Cloud face
    if isinstance(exc, AuthError):
        return flat_error(exc.message, 401)  # 360dialog answers a bad key the same way on every face
    if isinstance(exc, RequestError):
        if face == "graph":
            return graph_error(exc)
        if face == "on_premise":
            return _on_premise_error(exc.code, exc.title, exc.details, exc.http_status)
        return flat_error(exc.details, exc.http_status)
    if isinstance(exc, NotFoundError):
        # Graph's "object does not exist" is code 100; On-Premise's is 1006.
        if face == "graph":
            return _graph_body(100, "Invalid parameter", exc.message, 404)
        if face == "on_premise":
            return _on_premise_error(1006, "Resource not found", exc.message, 404)
        return flat_error(exc.message, 404)
    if isinstance(exc, StateError):
        return flat_error(exc.message, 409)
    if isinstance(exc, WebhookConfigError):
        return flat_error(exc.message, exc.status)
    raise exc


_HANDLED = (AuthError, RequestError, NotFoundError, StateError, WebhookConfigError, UnknownGraphObject)


def _face(face: str) -> Callable[[Endpoint], Endpoint]:
    def decorate(endpoint: Endpoint) -> Endpoint:
        async def wrapped(request: Request) -> Response:
            try:
                return await endpoint(request)
            except _HANDLED as exc:
                return _render(exc, face)

        return wrapped

    return decorate


graph_face = _face("graph")  # the Graph API's error envelope (the Cloud faces)
meta_graph_face = _face("meta_graph")  # Meta's own paths: Graph's envelope, and Meta's auth/object errors
on_premise_face = _face("on_premise")  # the On-Premise API's `errors` + `meta` envelope
flat_face = _face("flat")  # 360dialog's own endpoints: `{"error": "..."}`


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

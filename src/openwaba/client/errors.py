"""Errors the client raises, chosen by WhatsApp error code.

Meta asks integrators to build logic on the error `code` (plus `details`), not on
the HTTP status, so the class is picked from the code first and from the status
only when the answer carries no code (360dialog's own endpoints, proxies). Every
class says whether sending the same request later may succeed (`retryable`).
"""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar

from openwaba.domain.errors import OpenwabaError


class ClientError(OpenwabaError):
    """Root of what `openwaba.client` raises."""

    retryable: ClassVar[bool] = False


class TransportError(ClientError):
    """No answer: the connection failed or timed out. The request may or may not have been carried out."""

    retryable = True


class UnsupportedError(ClientError):
    """The target has no such endpoint (e.g. webhook configuration on Meta's Cloud API)."""


class ApiError(ClientError):
    """The API answered with an error."""

    def __init__(self, http_status: int, code: int | None, title: str, details: str, body: Any = None) -> None:
        self.http_status = http_status
        self.code = code
        self.title = title
        self.details = details
        self.body = body
        prefix = f"(#{code}) " if code is not None else f"HTTP {http_status}: "
        super().__init__(prefix + title + (f": {details}" if details and details != title else ""))


class AuthenticationError(ApiError):
    """The key or token is missing, wrong or expired."""


class PermissionDeniedError(ApiError):
    """Authenticated, but not allowed (permission, policy block, locked account)."""


class NotFoundError(ApiError):
    """The addressed resource does not exist for this key."""


class ConflictError(ApiError):
    """The request does not fit the current state (e.g. multi-webhook already enabled)."""


class InvalidRequestError(ApiError):
    """The request is malformed or a parameter is invalid; fix it before sending again."""


class RateLimitError(ApiError):
    """Too many requests or messages: throughput (130429), pair rate (131056), API calls (4, 80007)."""

    retryable = True


class ReengagementError(ApiError):
    """The 24-hour customer-service window is closed (131047; 470 On-Premise): send a template instead."""


class UndeliverableError(ApiError):
    """WhatsApp will not deliver to this user (not on WhatsApp, blocked, marketing limits)."""


class TemplateError(ApiError):
    """The template does not exist, is not approved, or its parameters do not match (1320xx)."""


class MediaError(ApiError):
    """Media could not be uploaded or downloaded (131052, 131053)."""


class ServerError(ApiError):
    """A temporary problem on the API's side (5xx, 131000, 131016, 2)."""

    retryable = True


_BY_CODE: dict[int, type[ApiError]] = {
    **dict.fromkeys((0, 190), AuthenticationError),
    **dict.fromkeys((3, 10, 200, 368, 131005, 131031, 130497, 131030), PermissionDeniedError),
    **dict.fromkeys((33, 100, 131008, 131009, 131021, 131051, 135000), InvalidRequestError),
    **dict.fromkeys((4, 80007, 130429, 131056, 131048), RateLimitError),
    **dict.fromkeys((131047, 470), ReengagementError),
    **dict.fromkeys((131026, 130403, 130472, 131049, 131050), UndeliverableError),
    **dict.fromkeys((132000, 132001, 132005, 132007, 132012, 132015, 132016, 132018, 132068, 132069), TemplateError),
    **dict.fromkeys((131052, 131053), MediaError),
    **dict.fromkeys((1, 2, 131000, 131016, 131057), ServerError),
}

_CODE_PREFIX = re.compile(r"^\(#\d+\)\s*")

_BY_STATUS: dict[int, type[ApiError]] = {
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    429: RateLimitError,
}


def error_class(code: int | None, http_status: int = 400) -> type[ApiError]:
    """The exception class for a WhatsApp error code (also usable on `statuses[].errors` of webhooks)."""
    if code is not None and code in _BY_CODE:
        if code == 100 and http_status == 404:  # Graph answers an unknown object id with 100 and 404
            return NotFoundError
        return _BY_CODE[code]
    if http_status >= 500:
        return ServerError
    return _BY_STATUS.get(http_status, InvalidRequestError if 400 <= http_status < 500 else ApiError)


def error_from_response(http_status: int, content: bytes) -> ApiError:
    """Turn an error answer of any face (Graph, On-Premise, 360dialog flat, Partner API) into an ApiError."""
    try:
        body: Any = json.loads(content) if content else None
    except (ValueError, RecursionError):  # not JSON, or nested deeper than the parser goes
        body = None
    code, title, details = _fields(body)
    if not title:
        text = content[:200].decode("utf-8", "replace").strip() if body is None else ""
        title = text or f"HTTP {http_status}"
    return error_class(code, http_status)(http_status, code, title, details, body)


def _fields(body: Any) -> tuple[int | None, str, str]:
    """(code, title, details) of the envelopes the faces use; empty when the body is none of them."""
    if not isinstance(body, dict):
        return None, "", ""
    if isinstance(body.get("detail"), dict):  # MM Lite wraps the Graph envelope in "detail"
        body = body["detail"]
    error = body.get("error")
    if isinstance(error, dict):  # Graph: {"error": {"message", "code", "error_data": {"details"}}}
        data = error["error_data"] if isinstance(error.get("error_data"), dict) else {}
        title = _CODE_PREFIX.sub("", str(error.get("message", "")))  # "(#131009) Parameter value is not valid"
        return _int(error.get("code")), title, str(data.get("details", ""))
    if isinstance(error, str):  # 360dialog's own endpoints: {"error": "..."}
        return None, error, ""
    errors = body.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):  # On-Premise
        first = errors[0]
        return _int(first.get("code")), str(first.get("title", "")), str(first.get("details", ""))
    meta = body.get("meta")
    if isinstance(meta, dict) and meta.get("success") is False:  # Partner API
        details = meta.get("details") or ""
        if isinstance(details, list):
            details = "; ".join(str(d) for d in details)
        return None, str(meta.get("developer_message", "")), str(details)
    return None, "", ""


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: a code of 1e999 or Infinity
        return None

"""Outgoing message requests: parsing and WhatsApp's validation rules.

A send request is validated in two steps. The envelope (`to`, `type`,
`context`, ...) is checked here; the object named by `type` is converted into
the msgspec Struct registered for that type in :data:`CONTENT_SCHEMAS`. Adding
a message type means adding one Struct and one registry entry, nothing else.

msgspec's validation messages are translated into WhatsApp's error codes:
a missing field is 131008, a value outside its limits 131009, a wrong JSON
type or an unknown key 100, an unknown message type 131051.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import msgspec

from openwaba.domain.errors import RequestError

BODY_LIMIT = 4096
CALLBACK_DATA_LIMIT = 512
_MIN_PHONE_DIGITS = 5
_MAX_PHONE_DIGITS = 20


class Dialect(enum.Enum):
    """Which request format a face speaks."""

    CLOUD = "cloud"  # waba-v2: Meta Cloud API bodies, `messaging_product` required
    ON_PREMISE = "on_premise"  # waba /v1: no `messaging_product`, `type` defaults to text


class _Strict(msgspec.Struct, forbid_unknown_fields=True):
    """Base for request objects: unknown keys are errors, as on WhatsApp."""


class TextContent(_Strict):
    body: Annotated[str, msgspec.Meta(min_length=1, max_length=BODY_LIMIT)]
    preview_url: bool = False


class Context(_Strict):
    message_id: Annotated[str, msgspec.Meta(min_length=1)]


class _Envelope(_Strict):
    to: str
    type: str = "text"
    messaging_product: Literal["whatsapp"] | None = None
    recipient_type: Literal["individual"] = "individual"
    context: Context | None = None
    biz_opaque_callback_data: Annotated[str, msgspec.Meta(max_length=CALLBACK_DATA_LIMIT)] | None = None
    preview_url: bool | None = None  # On-Premise puts it at the top level


# The registry of sendable message types: `type` value -> Struct of its object.
CONTENT_SCHEMAS: dict[str, type[msgspec.Struct]] = {
    "text": TextContent,
}


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """A validated message, ready to be stored and handed to a connector."""

    input: str  # `to` exactly as the client sent it
    wa_id: str  # `to` normalised to digits
    type: str
    content: dict[str, Any]  # the type object, normalised (defaults filled in)
    context_message_id: str | None
    biz_opaque_callback_data: str | None


def parse_send_request(body: bytes, dialect: Dialect) -> OutgoingMessage:
    """Validate a send request body; raise :class:`RequestError` saying what to fix."""
    document = _decode_object(body)
    type_name = document.get("type", "text")
    if not isinstance(type_name, str):
        raise RequestError(100, "Param type must be a string")
    schema = CONTENT_SCHEMAS.get(type_name)
    if schema is None:
        supported = ", ".join(sorted(CONTENT_SCHEMAS))
        raise RequestError(131051, f"Message type '{type_name}' is not supported. Supported types: {supported}")
    raw_content = document.pop(type_name, None)
    envelope = _convert(document, _Envelope, "")
    _check_envelope(envelope, dialect, type_name)
    if raw_content is None:
        raise RequestError(131008, f"Required parameter '{type_name}' is missing for type '{type_name}'")
    content = msgspec.to_builtins(_convert(raw_content, schema, type_name))
    if dialect is Dialect.ON_PREMISE and type_name == "text" and envelope.preview_url is not None:
        content["preview_url"] = envelope.preview_url
    return OutgoingMessage(
        input=envelope.to,
        wa_id=normalise_phone(envelope.to),
        type=type_name,
        content=content,
        context_message_id=envelope.context.message_id if envelope.context else None,
        biz_opaque_callback_data=envelope.biz_opaque_callback_data,
    )


def normalise_phone(raw: str) -> str:
    """`+1 555-000 1234` -> `15550001234`; raise 131009 when it cannot be a number."""
    digits = raw.strip()
    if digits.startswith("+"):
        digits = digits[1:]
    digits = digits.replace(" ", "").replace("-", "")
    if not digits.isascii() or not digits.isdigit() or not _MIN_PHONE_DIGITS <= len(digits) <= _MAX_PHONE_DIGITS:
        raise RequestError(131009, "The phone number is malformed: Please use the format: +1234567890.")
    return digits


def _decode_object(body: bytes) -> dict[str, Any]:
    try:
        document = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise RequestError(100, f"Request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise RequestError(100, "Request body is nested too deeply") from None
    if not isinstance(document, dict):
        raise RequestError(100, "Request body must be a JSON object")
    return document


def _check_envelope(envelope: _Envelope, dialect: Dialect, type_name: str) -> None:
    if dialect is Dialect.CLOUD:
        if envelope.messaging_product is None:
            raise RequestError(131008, "Required parameter 'messaging_product' is missing; it must be 'whatsapp'")
        if envelope.preview_url is not None:
            raise RequestError(100, "Unexpected key 'preview_url' at the top level; put it in 'text.preview_url'")
    elif envelope.preview_url is not None and type_name != "text":
        raise RequestError(100, "'preview_url' applies to text messages only")


_MISSING = re.compile(r"Object missing required field `(?P<field>[^`]+)`")
_UNKNOWN = re.compile(r"Object contains unknown field `(?P<field>[^`]+)`")
_LIMIT = re.compile(r"Expected `\w+` of length (?P<rule>[<>]= ?\d+)")
_AT = re.compile(r" - at `\$(?P<path>[^`]*)`$")


def _convert(value: Any, schema: type[msgspec.Struct], prefix: str) -> Any:
    try:
        return msgspec.convert(value, schema)
    except msgspec.ValidationError as exc:
        raise _translate(str(exc), prefix) from None


def _translate(message: str, prefix: str) -> RequestError:
    """Turn a msgspec validation message into the WhatsApp error a client expects."""
    at = _AT.search(message)
    path = prefix + (at["path"] if at else "")
    where = path.lstrip(".")
    if missing := _MISSING.search(message):
        name = f"{where}.{missing['field']}" if where else missing["field"]
        return RequestError(131008, f"Required parameter '{name}' is missing")
    if unknown := _UNKNOWN.search(message):
        name = f"{where}.{unknown['field']}" if where else unknown["field"]
        return RequestError(100, f"Unexpected key '{name}'; remove it")
    if limit := _LIMIT.search(message):
        rule = limit["rule"].replace(" ", "")
        if rule == ">=1":
            return RequestError(131008, f"Required parameter '{where}' is empty")
        return RequestError(131009, f"Parameter '{where}' must have length {rule}")
    detail = message.split(" - at ")[0]
    if "Invalid enum value" in message:
        return RequestError(131009, f"Parameter '{where}' has an invalid value: {detail}")
    return RequestError(100, f"Invalid parameter '{where}': {detail}")

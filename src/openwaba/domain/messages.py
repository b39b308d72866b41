"""Outgoing message requests: parsing and WhatsApp's validation rules.

A send request is validated in two steps. The envelope (`to`, `type`,
`context`, ...) is checked here; the object named by `type` is converted into
the msgspec type registered for that type in :data:`CONTENT_SCHEMAS`, then the
rules msgspec cannot express are checked by :func:`check_tree`. Adding a
message type means adding one Struct and one registry entry, nothing else.

msgspec's validation messages are translated into WhatsApp's error codes:
a missing field is 131008, a value outside its limits 131009, a wrong JSON
type or an unknown key 100, an unknown message type 131051.

The same endpoint also takes mark-as-read requests (with an optional typing
indicator): :func:`parse_messages_body` tells the two apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import msgspec

from openwaba.domain.content import (
    BODY_LIMIT,
    AudioContent,
    ContactsContent,
    Dialect,
    DocumentContent,
    ImageContent,
    LocationContent,
    MediaRef,
    NonEmpty,
    ReactionContent,
    Strict,
    TemplateContent,
    TextContent,
    VideoContent,
    check_tree,
    empty,
    invalid,
    missing,
    unexpected,
    wrong_type,
)
from openwaba.domain.errors import RequestError
from openwaba.domain.interactive import InteractiveContent

__all__ = [
    "BODY_LIMIT",
    "CALLBACK_DATA_LIMIT",
    "CONTENT_SCHEMAS",
    "Dialect",
    "OutgoingMessage",
    "ReadRequest",
    "media_objects",
    "media_references",
    "normalise_phone",
    "parse_messages_body",
    "parse_read_body",
    "parse_send_request",
]

CALLBACK_DATA_LIMIT = 512
# Meta's business-scoped user ids: a country code, maybe `ENT`, and up to 128 letters and digits.
_BSUID = re.compile(r"[A-Z]{2}(\.ENT)?\.[A-Za-z0-9]{1,128}")
_MIN_PHONE_DIGITS = 5
_MAX_PHONE_DIGITS = 20


class Context(Strict):
    message_id: NonEmpty


class _Envelope(Strict):
    to: str | None = None
    recipient: str | None = None  # a business-scoped user id (BSUID), instead of `to`
    type: str = "text"
    messaging_product: Literal["whatsapp"] | None = None
    recipient_type: Literal["individual"] = "individual"
    context: Context | None = None
    biz_opaque_callback_data: Annotated[str, msgspec.Meta(max_length=CALLBACK_DATA_LIMIT)] | None = None
    preview_url: bool | None = None  # On-Premise puts it at the top level


# The registry of sendable message types: `type` value -> msgspec type of its object
# (a Struct, a list of Structs for contacts, a tagged union of Structs for interactive).
CONTENT_SCHEMAS: dict[str, Any] = {
    "text": TextContent,
    "image": ImageContent,
    "audio": AudioContent,
    "video": VideoContent,
    "document": DocumentContent,
    "sticker": MediaRef,
    "location": LocationContent,
    "contacts": ContactsContent,
    "interactive": InteractiveContent,
    "template": TemplateContent,
    "reaction": ReactionContent,
}
# Each content type wrapped in a one-field Struct named after it: msgspec caches what
# it learns about a Struct, but not about a bare union or list (converting to one
# costs ~10x more), and the error paths come out as `interactive.action...`.
_WRAPPERS: dict[str, type[msgspec.Struct]] = {
    name: msgspec.defstruct(f"_{name.title()}Request", [(name, schema)]) for name, schema in CONTENT_SCHEMAS.items()
}
_MEDIA_TYPES = frozenset({"image", "audio", "video", "document", "sticker"})
_HEADER_MEDIA = frozenset({"image", "video", "document"})  # media an interactive or template header can carry


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """A validated message, ready to be stored and handed to a connector."""

    input: str  # `to` exactly as the client sent it
    wa_id: str  # `to` normalised to digits
    type: str
    # The type object, normalised (absent optional fields left out). The contacts
    # object is an array, so its content is wrapped: `{"contacts": [...]}`.
    content: dict[str, Any]
    context_message_id: str | None
    biz_opaque_callback_data: str | None
    recipient: str | None = None  # the BSUID the client addressed, when it gave one instead of `to`


@dataclass(frozen=True, slots=True)
class ReadRequest:
    """Mark an inbound message as read, optionally showing the typing indicator."""

    message_id: str
    typing: bool


class _TypingIndicator(Strict):
    type: Literal["text"]


class _ReadBody(Strict):
    status: Literal["read"]
    message_id: NonEmpty
    messaging_product: Literal["whatsapp"] | None = None
    typing_indicator: _TypingIndicator | None = None


class _ReadStatus(Strict):
    status: Literal["read"]


def parse_messages_body(body: bytes, dialect: Dialect) -> OutgoingMessage | ReadRequest:
    """A body for the messages endpoint: a read request when it has a `status`, else a message."""
    document = _decode_object(body)
    if "status" in document:
        return _read_request(document, dialect)
    return _outgoing_message(document, dialect)


def parse_send_request(body: bytes, dialect: Dialect) -> OutgoingMessage:
    """Validate a send request body; raise :class:`RequestError` saying what to fix."""
    return _outgoing_message(_decode_object(body), dialect)


def parse_read_body(body: bytes) -> None:
    """On-Premise `PUT /v1/messages/{id}`: the body must be `{"status": "read"}`."""
    _convert(_decode_object(body), _ReadStatus)


def media_references(message: OutgoingMessage) -> list[str]:
    """Every media id the message refers to, in order, each once."""
    objects = media_objects(message.type, message.content)
    return list(dict.fromkeys(media["id"] for media in objects if "id" in media))


def media_objects(type_name: str, content: dict[str, Any]) -> list[dict[str, Any]]:
    """The media objects (`{"id"|"link", ...}`) inside a message's content, as
    references into it: a connector may rewrite them in a copy."""
    if type_name in _MEDIA_TYPES:
        return [content]
    if type_name == "interactive":
        header = content.get("header", {})
        return [header[header["type"]]] if header.get("type") in _HEADER_MEDIA else []
    if type_name == "template":
        return [
            parameter[parameter["type"]]
            for component in content.get("components", [])
            for parameter in component.get("parameters", [])
            if parameter["type"] in _HEADER_MEDIA
        ]
    return []


def _read_request(document: dict[str, Any], dialect: Dialect) -> ReadRequest:
    read = _convert(document, _ReadBody)
    if dialect is Dialect.CLOUD and read.messaging_product is None:
        raise missing("messaging_product", "; it must be 'whatsapp'")
    return ReadRequest(message_id=read.message_id, typing=read.typing_indicator is not None)


def _outgoing_message(document: dict[str, Any], dialect: Dialect) -> OutgoingMessage:
    type_name = document.get("type", "text")
    if not isinstance(type_name, str):
        raise wrong_type("type", "Expected `str`")
    if type_name not in CONTENT_SCHEMAS:
        supported = ", ".join(sorted(CONTENT_SCHEMAS))
        raise RequestError(131051, f"Message type '{type_name}' is not supported. Supported types: {supported}")
    raw_content = document.pop(type_name, None)
    envelope = _convert(document, _Envelope)
    _check_envelope(envelope, dialect, type_name)
    if raw_content is None:
        raise missing(type_name, f" for type '{type_name}'")
    wrapped = _convert({type_name: raw_content}, _WRAPPERS[type_name])
    converted = getattr(wrapped, type_name)
    check_tree(converted, type_name, dialect)
    # The contacts object is an array; keeping its wrapper keeps every content an object.
    content: dict[str, Any] = msgspec.to_builtins(wrapped if type_name == "contacts" else converted)
    if dialect is Dialect.ON_PREMISE and type_name == "text" and envelope.preview_url is not None:
        content["preview_url"] = envelope.preview_url
    return OutgoingMessage(
        input=envelope.to or str(envelope.recipient),
        # A BSUID's number is known only to the network: its connector fills it in.
        wa_id=normalise_phone(envelope.to) if envelope.to is not None else "",
        type=type_name,
        content=content,
        context_message_id=envelope.context.message_id if envelope.context else None,
        biz_opaque_callback_data=envelope.biz_opaque_callback_data,
        recipient=envelope.recipient,
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
    if (envelope.to is None) == (envelope.recipient is None):
        if envelope.to is None:
            raise missing("to", " (or 'recipient', a business-scoped user id)")
        raise RequestError(100, "Give 'to' (a phone number) or 'recipient' (a business-scoped user id), not both")
    if envelope.recipient is not None and not _BSUID.fullmatch(envelope.recipient):
        raise RequestError(131009, "'recipient' must be a business-scoped user id such as US.13491208655302741918")
    if dialect is Dialect.CLOUD:
        if envelope.messaging_product is None:
            raise missing("messaging_product", "; it must be 'whatsapp'")
        if envelope.preview_url is not None:
            raise RequestError(100, "Unexpected key 'preview_url' at the top level; put it in 'text.preview_url'")
    elif envelope.preview_url is not None and type_name != "text":
        raise RequestError(100, "'preview_url' applies to text messages only")


_MISSING = re.compile(r"Object missing required field `(?P<field>[^`]+)`")
_UNKNOWN = re.compile(r"Object contains unknown field `(?P<field>[^`]+)`")
_LENGTH = re.compile(r"Expected `(?P<kind>\w+)` of length (?P<op>[<>]=) ?(?P<n>\d+)")
_BOUND = re.compile(r"Expected `(?:int|float)` (?P<rule>[<>]=? ?-?[\d.]+)")
_AT = re.compile(r" - at `\$(?P<path>[^`]*)`$")


def _convert(value: Any, schema: type[msgspec.Struct]) -> Any:
    try:
        return msgspec.convert(value, schema)
    except msgspec.ValidationError as exc:
        raise _translate(str(exc)) from None


def _translate(message: str) -> RequestError:
    """Turn a msgspec validation message into the WhatsApp error a client expects."""
    at = _AT.search(message)
    where = at["path"].lstrip(".") if at else ""
    if found := _MISSING.search(message):
        return missing(f"{where}.{found['field']}" if where else found["field"])
    if found := _UNKNOWN.search(message):
        return unexpected(f"{where}.{found['field']}" if where else found["field"])
    if found := _LENGTH.search(message):
        return _length_error(where, found["kind"], found["op"], int(found["n"]))
    if found := _BOUND.search(message):
        return invalid(where, f"It must be {found['rule'].replace(' ', '')}")
    detail = message.split(" - at ")[0]
    # "Invalid enum value" is a Literal mismatch; "Invalid value" an unknown tag of a
    # tagged union (`interactive.type`, a template component or parameter `type`).
    if detail.startswith(("Invalid enum value", "Invalid value")):
        return invalid(where, detail)
    return wrong_type(where, detail)


def _length_error(where: str, kind: str, op: str, limit: int) -> RequestError:
    if kind == "str":
        if op == ">=":  # every minimum on a string is 1: an empty string stands for a missing value
            return empty(where)
        return invalid(where, f"It exceeds {limit} characters")
    if kind == "object":  # the only minimum on an object: flow data must not be {}
        return invalid(where, "It must not be an empty object")
    items = "item" if limit == 1 else "items"
    return invalid(where, f"It must have {'at least' if op == '>=' else 'at most'} {limit} {items}")

"""Meta's Graph API as the Meta connector speaks it: request bodies, answers
and errors (pure: the connector does the I/O).

Graph errors carry WhatsApp's codes (reference §2): the connector turns them
into :class:`RequestError` with the same code, title and HTTP status, so each
face renders Meta's answer in its own envelope. Some answers mean Meta did not
take the message and will take it later (throttling, a service having a bad
moment): those are retried; every other error is final.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import msgspec

from openwaba.domain.errors import RequestError
from openwaba.domain.messages import OutgoingMessage, media_objects

# Codes Meta answers when it did not take the request for now: throttling (4, 80007,
# 130429), temporary failures (1, 2, 131000, 131016, 131057). 131056 (the pair rate)
# is left to the client: retrying it at once only hits the limit again.
RETRYABLE_CODES = frozenset({1, 2, 4, 80007, 130429, 131000, 131016, 131057})

# Fields the On-Premise dialect allows that the Cloud API does not know.
_MEDIA_ONLY_ON_PREMISE = ("provider",)


@dataclass(frozen=True, slots=True)
class GraphFailure:
    """An error answer from Graph."""

    http_status: int
    code: int
    title: str
    details: str

    @property
    def retryable(self) -> bool:
        return self.http_status >= 500 or self.http_status == 429 or self.code in RETRYABLE_CODES

    def as_request_error(self) -> RequestError:
        # Meta's 5xx reach the client as 503: the gateway is fine, its upstream is not.
        status = 503 if self.http_status >= 500 else self.http_status
        return RequestError(self.code, self.details, title=self.title, http_status=status)


def message_body(message: OutgoingMessage, media_ids: dict[str, str]) -> dict[str, Any]:
    """The Cloud API request for a validated message; our media ids replaced by Meta's."""
    content = copy.deepcopy(message.content)
    for media in media_objects(message.type, content):
        if "id" in media:
            media["id"] = media_ids[media["id"]]
        for name in _MEDIA_ONLY_ON_PREMISE:
            media.pop(name, None)
    if message.type == "template":
        content.pop("namespace", None)
    body: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "type": message.type,
    }
    if message.recipient is not None:
        body["recipient"] = message.recipient
    else:
        body["to"] = message.input
    # The contacts object is an array; it is kept wrapped in the stored content.
    body[message.type] = content["contacts"] if message.type == "contacts" else content
    if message.context_message_id:
        body["context"] = {"message_id": message.context_message_id}
    if message.biz_opaque_callback_data is not None:
        body["biz_opaque_callback_data"] = message.biz_opaque_callback_data
    return body


def read_body(message_id: str, typing: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"messaging_product": "whatsapp", "status": "read", "message_id": message_id}
    if typing:
        body["typing_indicator"] = {"type": "text"}
    return body


class _SendAnswer(msgspec.Struct):
    messages: list[dict[str, Any]]


def sent_wamid(raw: bytes) -> str | None:
    """The wamid in a send answer; None when the answer does not hold one."""
    try:
        answer = msgspec.json.decode(raw, type=_SendAnswer)
    except msgspec.DecodeError:
        return None
    wamid = answer.messages[0].get("id") if answer.messages else None
    return wamid if isinstance(wamid, str) and wamid else None


def failure(http_status: int, raw: bytes) -> GraphFailure:
    """What an error answer says: Graph's `{"error": {...}}`, or a stand-in for a
    body that is not one (a proxy's HTML page, an empty 502)."""
    try:
        error = msgspec.json.decode(raw).get("error")
    except (msgspec.DecodeError, AttributeError):
        error = None
    if not isinstance(error, dict) or not isinstance(error.get("code"), int):
        code = 131016 if http_status >= 500 or http_status == 429 else 131000
        return GraphFailure(http_status, code, "Service unavailable", f"Meta answered HTTP {http_status}")
    message = str(error.get("message", ""))
    # "(#131009) Parameter value is not valid": the title is what follows the code.
    title = message.split(") ", 1)[1] if message.startswith("(#") and ") " in message else message
    data = error.get("error_data")
    details = str(data.get("details", "")) if isinstance(data, dict) else ""
    return GraphFailure(http_status, error["code"], title or "Unknown error", details or message)

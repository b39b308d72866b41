"""Operations of openwaba's sandbox: act as a simulated WhatsApp user, shape what the
simulated network does (scenarios, scripted users) and move the clock."""

from __future__ import annotations

import mimetypes
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from openwaba.client.exchange import Operation, Request, Upload
from openwaba.client.messaging import Json, call
from openwaba.client.target import Target


def users(target: Target, /) -> Operation[list[Json]]:
    """The number's simulated users (`wa_id`, `name`, `user_id`)."""
    return cast(list[Json], (yield from call(target, "GET", "sandbox_users"))["users"])


# --- what a simulated user does -------------------------------------------------------------------


def user_acts(target: Target, /, wa_id: str, action: Mapping[str, Any]) -> Operation[str]:
    """A simulated user does anything the sandbox knows, as its JSON action; the inbound message's wamid.

    `{"text": "hi"}`, `{"type": "contacts", "contacts": [card]}`, a tap, a reaction…
    (see the convenience methods below for the common ones).
    """
    answer = yield from call(target, "POST", "sandbox_user_messages", json=dict(action), wa_id=wa_id)
    return str(answer["messages"][0]["id"])


def user_says(target: Target, /, wa_id: str, text: str, *, reply_to: str | None = None) -> Operation[str]:
    """A simulated user writes to the business; the inbound message's wamid (its webhook follows)."""
    body: Json = {"text": text}
    if reply_to:
        body["context"] = {"message_id": reply_to}
    return (yield from user_acts(target, wa_id, body))


def user_taps(target: Target, /, wa_id: str, message_id: str, button_id: str) -> Operation[str]:
    """The user taps the reply button `button_id` of the business's interactive message `message_id`."""
    return (yield from user_acts(target, wa_id, {"type": "button_reply", "message_id": message_id, "id": button_id}))


def user_picks(target: Target, /, wa_id: str, message_id: str, row_id: str) -> Operation[str]:
    """The user picks the row `row_id` of the business's list message `message_id`."""
    return (yield from user_acts(target, wa_id, {"type": "list_reply", "message_id": message_id, "id": row_id}))


def user_taps_template_button(target: Target, /, wa_id: str, message_id: str, index: int) -> Operation[str]:
    """The user taps the quick-reply button at `index` (0 for the first) of the template message `message_id`."""
    return (yield from user_acts(target, wa_id, {"type": "button", "message_id": message_id, "index": index}))


def user_reacts(target: Target, /, wa_id: str, message_id: str, emoji: str) -> Operation[str]:
    """The user reacts to a business message with `emoji`; an empty emoji removes the reaction."""
    reaction = {"message_id": message_id, "emoji": emoji}
    return (yield from user_acts(target, wa_id, {"type": "reaction", "reaction": reaction}))


def user_shares_location(
    target: Target,
    /,
    wa_id: str,
    latitude: float,
    longitude: float,
    name: str | None = None,
    address: str | None = None,
) -> Operation[str]:
    """The user shares a location (optionally a named place with its address)."""
    location: Json = {"latitude": latitude, "longitude": longitude}
    location.update({k: v for k, v in (("name", name), ("address", address)) if v is not None})
    return (yield from user_acts(target, wa_id, {"type": "location", "location": location}))


def user_sends_file(
    target: Target, /, wa_id: str, file: bytes | str | Path, mime_type: str | None = None, *, caption: str | None = None
) -> Operation[str]:
    """A simulated user sends a file; it arrives as an image/audio/video/document/sticker webhook."""
    content, name = (file, "file") if isinstance(file, bytes) else (Path(file).read_bytes(), Path(file).name)
    mime = mime_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
    url = target.url("sandbox_user_messages", wa_id=wa_id)
    form = {"caption": caption} if caption else {}
    reply = yield Request("POST", url, target.headers, data=form, upload=Upload("file", name, content, mime))
    return str(reply.json()["messages"][0]["id"])


def user_phone(target: Target, /, wa_id: str) -> Operation[Json]:
    """What the user's phone shows: the conversation, newest first, with statuses."""
    return (yield from call(target, "GET", "sandbox_user_messages", wa_id=wa_id))


# --- scenarios: what the simulated network does -----------------------------------------------------


def _layer(target: Target, method: str, wa_id: str | None, body: Json | None = None) -> Operation[Json]:
    """A call on the number's layer, or on one user's (which wins over the number's, field by field)."""
    if wa_id is None:
        return call(target, method, "sandbox_scenario", json=body)
    return call(target, method, "sandbox_user_scenario", json=body, wa_id=wa_id)


def scenario(target: Target, /, wa_id: str | None = None) -> Operation[Json]:
    """The scenario as set: `{"scenario": {...}}`; for a user also `"effective"` (their layer over the number's)."""
    return (yield from _layer(target, "GET", wa_id))


def set_scenario(target: Target, /, scenario: Mapping[str, Any], wa_id: str | None = None) -> Operation[Json]:
    """Replace the number's scenario (or a user's layer); the scenario as the gateway stored it.

    e.g. `{"delays": {"read": [1, 3]}, "drop": ["delivered"], "fail": {"code": 131026, "next": 1}}`.
    """
    return cast(Json, (yield from _layer(target, "PUT", wa_id, dict(scenario)))["scenario"])


def clear_scenario(target: Target, /, wa_id: str | None = None) -> Operation[None]:
    """Remove the number's scenario (or a user's layer): messages fare as usual again."""
    yield from _layer(target, "DELETE", wa_id)


def script_progress(target: Target, /, wa_id: str) -> Operation[Json]:
    """How far a scripted user got: `{"steps", "done", "finished", "mismatches": [...]}`."""
    return (yield from call(target, "GET", "sandbox_user_script", wa_id=wa_id))


# --- the clock ---------------------------------------------------------------------------------------


def clock(target: Target, /) -> Operation[float]:
    """The gateway's current time (Unix seconds)."""
    return float((yield from call(target, "GET", "sandbox_clock"))["now"])


def advance_clock(target: Target, /, seconds: float) -> Operation[float]:
    """Move a manual clock (`OPENWABA_CLOCK=manual`) forward; due retries and statuses run."""
    body: dict[str, Any] = {"advance_seconds": seconds}
    return float((yield from call(target, "POST", "sandbox_clock", json=body))["now"])


def set_clock(target: Target, /, at: float | datetime) -> Operation[float]:
    """Move a manual clock forward to `at` (Unix seconds, or a timezone-aware datetime); the new time."""
    if isinstance(at, datetime) and at.utcoffset() is None:
        # A naive time means a different instant on every machine; refuse it rather than guess.
        raise ValueError("set_clock needs a timezone-aware datetime, e.g. datetime(2030, 1, 1, tzinfo=UTC)")
    body: dict[str, Any] = {"set": at.isoformat() if isinstance(at, datetime) else at}
    return float((yield from call(target, "POST", "sandbox_clock", json=body))["now"])

"""Helpers for the receiver tests: payload builders (through openwaba's own
renderers), an in-process ASGI client, an injectable clock, bounded waiting."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from openwaba.domain.payloads import render_cloud, render_on_premise
from openwaba.receiver import Receiver

T = TypeVar("T")
WABA_ID = "102290129340398"
PHONE_NUMBER_ID = "106540352242922"
DISPLAY = "15550783881"
USER = "16505551234"
USER_NAME = "Sheena Nelson"


class FakeClock:
    """Time that moves only when told to."""

    def __init__(self, now: float = 1_750_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def value(
    items: dict[str, list[dict[str, Any]]], contacts: Iterable[tuple[str, str]] = ((USER, USER_NAME),)
) -> dict[str, Any]:
    """A Cloud `value` with metadata, the given contacts and item lists."""
    result: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": DISPLAY, "phone_number_id": PHONE_NUMBER_ID},
    }
    if contacts:
        result["contacts"] = [{"profile": {"name": name}, "wa_id": wa_id} for wa_id, name in contacts]
    result.update(items)
    return result


def cloud(items: dict[str, list[dict[str, Any]]], **kwargs: Any) -> bytes:
    return render_cloud(WABA_ID, value(items, **kwargs))


def on_premise(items: dict[str, list[dict[str, Any]]], **kwargs: Any) -> bytes:
    return render_on_premise(value(items, **kwargs))


def message(
    wamid: str, type_name: str = "text", content: Any = None, sender: str = USER, **extra: Any
) -> dict[str, Any]:
    item: dict[str, Any] = {"from": sender, "id": wamid, "timestamp": "1749416383", "type": type_name}
    item[type_name] = {"body": f"hello {wamid}"} if content is None else content
    item.update(extra)
    return item


def status(wamid: str, name: str, recipient: str = USER, **extra: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"id": wamid, "status": name, "timestamp": "1750857384", "recipient_id": recipient}
    item.update(extra)
    return item


@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict[bytes, bytes] = field(default_factory=dict)


async def call(
    receiver: Receiver, method: str = "POST", body: bytes = b"", headers: dict[str, str] | None = None, query: str = ""
) -> Reply:
    """One request through the ASGI app, in process."""
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "path": "/webhook",
        "query_string": query.encode(),
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
    }
    await receiver(scope, receive, send)
    return Reply(sent[0]["status"], sent[1]["body"], dict(sent[0]["headers"]))


def wait_until(check: Callable[[], T | None], timeout: float = 15.0, what: str = "condition") -> T:
    """Poll `check()` every 20 ms until it returns something truthy; AssertionError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.02)

"""Helpers for the console's tests that need no browser: numbers of their own, messages
the business sends, a small image, and a reader for `GET /console/stream`."""

from __future__ import annotations

import http.client
import itertools
import json
import struct
import time
import zlib
from typing import Any

from e2e.routing_support import Number, new_number
from e2e.support import HOST, Server

WAIT = 15.0  # seconds: only reached when something is broken
_users = itertools.count(1)


def fresh_user() -> str:
    """A simulated user's wa_id no other test of this process used."""
    return f"1555880{next(_users):04d}"


def number_with_user(srv: Server) -> tuple[Number, str]:
    """A sandbox number of the test's own (partner API) with one simulated user."""
    wa_id = fresh_user()
    return new_number(srv, sandbox_users=[wa_id]), wa_id


# --- media ----------------------------------------------------------------------------------


def png(width: int = 8, height: int = 8, rgb: tuple[int, int, int] = (37, 211, 102)) -> bytes:
    """A small valid PNG image (one colour)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


# --- messages the business sends --------------------------------------------------------------


def buttons_message(to: str, body: str, buttons: list[tuple[str, str]]) -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp", "to": to, "type": "interactive",
        "interactive": {"type": "button", "body": {"text": body}, "action": {
            "buttons": [{"type": "reply", "reply": {"id": i, "title": t}} for i, t in buttons]}},
    }


def list_message(to: str, body: str, rows: list[tuple[str, str, str]]) -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp", "to": to, "type": "interactive",
        "interactive": {"type": "list", "body": {"text": body}, "action": {
            "button": "Menu", "sections": [{"title": "Drinks", "rows": [
                {"id": i, "title": t, "description": d} for i, t, d in rows]}]}},
    }


# --- the event stream, read as the page reads it ----------------------------------------------


class EventStream:
    """`GET /console/stream` over a plain HTTP connection: `next_change()` returns the next
    `event: change`'s data (comments are skipped); a read times out after WAIT seconds."""

    def __init__(self, srv: Server, headers: dict[str, str]) -> None:
        self.connection = http.client.HTTPConnection(HOST, srv.port, timeout=WAIT)
        self.connection.request("GET", "/console/stream", headers=headers)
        self.response = self.connection.getresponse()
        self.comments: list[str] = []

    def next_change(self, timeout: float = WAIT) -> Any:
        """The next change event; AssertionError after `timeout` s without one (keep-alives do not count)."""
        deadline = time.monotonic() + timeout
        event, data = None, None
        while True:
            if time.monotonic() > deadline:
                raise AssertionError(f"no change event within {timeout:g} s (comments: {self.comments[-3:]})")
            line = self.response.readline().decode()
            if not line:
                raise AssertionError("the stream ended")
            line = line.rstrip("\r\n")
            if line.startswith(":"):
                self.comments.append(line)
            elif line.startswith("event:"):
                event = line.partition(":")[2].strip()
            elif line.startswith("data:"):
                data = line.partition(":")[2].strip()
            elif line == "" and event == "change" and data is not None:
                return json.loads(data)

    def until(self, expected: Any, timeout: float = WAIT) -> list[Any]:
        """Read changes until `expected` comes, for at most `timeout` s; all read, in order."""
        deadline = time.monotonic() + timeout
        seen: list[Any] = []
        while expected not in seen:
            remaining = deadline - time.monotonic()
            try:
                seen.append(self.next_change(max(remaining, 0.0)))
            except AssertionError:
                raise AssertionError(f"no {expected} within {timeout:g} s; changes seen: {seen}") from None
        return seen

    def first_comment(self) -> str:
        while not self.comments:
            line = self.response.readline().decode()
            if line.startswith(":"):
                self.comments.append(line.rstrip("\r\n"))
            elif not line:
                raise AssertionError("the stream ended before its first comment")
        return self.comments[0]

    def close(self) -> None:
        self.connection.close()

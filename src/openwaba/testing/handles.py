"""What a test holds: its own sandbox number (`Gateway`), the number's simulated users
(`SimulatedUser`) and the gateway's manual clock (`TestClock`).

Each test gets a number of its own through the Partner API, so webhooks, users,
scenarios and deliveries never leak between tests that share one gateway process.
Calls are blocking (they are quick HTTP calls); the waits that can take a while
have an awaitable twin that waits in a thread.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from openwaba.client import Client, messages
from openwaba.client.messages import Message
from openwaba.client.results import Sent
from openwaba.client.target import Target

DEFAULT_TIMEOUT = 10.0
_POLL = 0.02
_numbers = itertools.count(1)


class TestClock:
    """The gateway's manual clock: `advance(hours=25)` moves 24-hour windows, template reviews,
    status timing and retry schedules at once (every number shares it)."""

    __test__ = False  # not a test class, whatever pytest's name pattern says

    def __init__(self, client: Client) -> None:
        self._client = client

    def now(self) -> float:
        return self._client.clock()

    def advance(self, *, days: float = 0, hours: float = 0, minutes: float = 0, seconds: float = 0) -> float:
        step = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds).total_seconds()
        return self._client.advance_clock(step)

    def set(self, when: datetime | float) -> float:
        """Jump to a moment (a timezone-aware datetime or Unix seconds); the clock only moves forward."""
        return self._client.set_clock(when)


class SimulatedUser:
    """A WhatsApp user of the sandbox: acts (`say`, `tap`, `pick`, `send_file`, …) and reads
    the business's messages on their phone (`wait_for_message`, `await expect_message`)."""

    def __init__(self, client: Client, wa_id: str, name: str) -> None:
        self._client = client
        self.wa_id = wa_id
        self.name = name
        self._returned = 0  # business messages already handed out by wait_for_message

    def say(self, text: str, *, reply_to: str | None = None) -> str:
        """Write to the business; the inbound message's wamid (its webhook follows)."""
        return self._client.user_says(self.wa_id, text, reply_to=reply_to)

    def act(self, action: Mapping[str, Any]) -> str:
        """Any action of `POST /sandbox/users/{wa_id}/messages` (location, contacts, reaction, taps …)."""
        return self._client.user_acts(self.wa_id, dict(action))

    def tap(self, message_id: str, button_id: str) -> str:
        """Tap the reply button `button_id` of the business's interactive message."""
        return self.act({"type": "button_reply", "message_id": message_id, "id": button_id})

    def pick(self, message_id: str, row_id: str) -> str:
        """Choose the row `row_id` of the business's list message."""
        return self.act({"type": "list_reply", "message_id": message_id, "id": row_id})

    def tap_template_button(self, message_id: str, index: int) -> str:
        """Tap the quick-reply button at `index` of a template the business sent."""
        return self.act({"type": "button", "message_id": message_id, "index": index})

    def react(self, message_id: str, emoji: str) -> str:
        return self.act({"type": "reaction", "reaction": {"message_id": message_id, "emoji": emoji}})

    def share_location(self, latitude: float, longitude: float, name: str | None = None) -> str:
        location: dict[str, Any] = {"latitude": latitude, "longitude": longitude}
        if name:
            location["name"] = name
        return self.act({"type": "location", "location": location})

    def send_file(self, file: bytes | str | Path, mime_type: str | None = None, *, caption: str | None = None) -> str:
        return self._client.user_sends_file(self.wa_id, file, mime_type, caption=caption)

    def scenario(self, **fields: Any) -> dict[str, Any]:
        """Set this user's scenario layer (e.g. `never_reads=True`, `script=[…]`); it wins over the number's."""
        return self._client.set_scenario(fields, wa_id=self.wa_id)

    def script_progress(self) -> dict[str, Any]:
        return self._client.script_progress(self.wa_id)

    def wait_for_script(self, timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
        """Wait until the user's script is finished; its progress (check `mismatches`)."""
        deadline = time.monotonic() + timeout
        while not (progress := self.script_progress())["finished"]:
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.wa_id}'s script did not finish within {timeout:g} s: {progress}")
            time.sleep(_POLL)
        return progress

    def phone(self) -> list[dict[str, Any]]:
        """The chat as the user's phone shows it, oldest first."""
        return list(reversed(self._client.user_phone(self.wa_id)["messages"]))

    def received(self) -> list[dict[str, Any]]:
        """The business's messages in this chat, oldest first."""
        return [m for m in self.phone() if m["direction"] == "outbound"]

    def wait_for_message(self, *, contains: str | None = None, type: str | None = None,  # noqa: A002
                         timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
        """The next business message after those already returned that has `type` and whose text
        contains `contains` (any case)."""
        start = self._returned
        deadline = time.monotonic() + timeout
        while True:
            arrived = self.received()
            for position, message in enumerate(arrived[start:], start):
                if _matches(message, contains, type):
                    self._returned = position + 1
                    return message
            if time.monotonic() > deadline:
                shown = "\n".join(f"  {m['type']}: {shown_text(m)!r}" for m in arrived) or "  (nothing)"
                raise AssertionError(f"{self.wa_id} got no message with type={type} contains={contains!r} "
                                     f"within {timeout:g} s; the chat has:\n{shown}")
            time.sleep(_POLL)

    async def expect_message(self, *, contains: str | None = None, type: str | None = None,  # noqa: A002
                             timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
        """`wait_for_message` for async tests."""
        return await asyncio.to_thread(lambda: self.wait_for_message(contains=contains, type=type, timeout=timeout))


class Gateway:
    """A test's own sandbox number on the session's gateway: `url`, `api_key`, `client`,
    `users`, and shortcuts for webhooks and scenarios."""

    def __init__(self, url: str, api_key: str, phone_number: str, users: list[SimulatedUser], client: Client) -> None:
        self.url = url
        self.api_key = api_key
        self.phone_number = phone_number
        self.users = users
        self.client = client
        self._main: str | None = None  # the webhook as this handle set it
        self._watchers: list[str] = []
        self._copies: list[str] = []  # watchers currently served as multi-webhook destinations

    @classmethod
    def create(cls, url: str, partner_key: str, partner_id: str, waba_id: str, user_count: int = 3) -> Gateway:
        """A new number with `user_count` simulated users, through the Partner API."""
        serial = next(_numbers)
        number = f"1444{serial:07d}"  # apart from the demo number (1555…) and its users
        wa_ids = [f"1666{serial:05d}{n:02d}" for n in range(1, user_count + 1)]
        with Client(Target.partner(partner_key, partner_id, url)) as partner:
            channel = partner.create_channel(waba_id, number, sandbox_users=wa_ids)
            api_key = str(partner.create_api_key(str(channel["id"]))["api_key"])
        client = Client.openwaba(api_key, url)
        users = [SimulatedUser(client, str(u["wa_id"]), str(u["name"])) for u in client.sandbox_users()]
        return cls(url, api_key, number, users, client)

    @property
    def user(self) -> SimulatedUser:
        return self.users[0]

    def send(self, message: Message) -> Sent:
        return self.client.send(message)

    def send_text(self, to: str, text: str) -> Sent:
        return self.client.send(messages.text(to, text))

    def set_webhook(self, url: str, **settings: Any) -> None:
        """The number's webhook (`secret=`, `app_secret=`, `fifo=` as on `POST /v1/configs/webhook`);
        watchers (the `inbox`) keep receiving a copy of every event."""
        self.client.set_webhook(url, **settings)
        self._main = url
        self._route_watchers()

    def watch(self, url: str) -> None:
        """Deliver every event to `url` too: as the webhook while there is none, else as a copy
        (a multi-webhook destination independent of the main webhook)."""
        self._watchers.append(url)
        if self._main is None:
            self.client.set_webhook(url)
            self._main = url
        self._route_watchers()

    def _route_watchers(self) -> None:
        copies = [url for url in self._watchers if url != self._main]
        if copies == self._copies:
            return
        if self._copies:
            self.client.disable_multi_webhook()
        if copies:
            destinations = [{"name": f"watcher-{n}", "url": url} for n, url in enumerate(copies, 1)]
            self.client.enable_multi_webhook(destinations, fanout="independent")
        self._copies = copies

    def scenario(self, **fields: Any) -> dict[str, Any]:
        """Set the number's scenario (e.g. `duplicates=1`, `fail={"code": 131026, "next": 1}`, `seed=7`)."""
        return self.client.set_scenario(fields)

    def deliveries(self, **filters: Any) -> list[dict[str, Any]]:
        """The newest page of the delivery log (`state=`, `destination=`, …); injected faults say so."""
        return list(self.client.deliveries(**filters)["deliveries"])

    def close(self) -> None:
        self.client.close()


def shown_text(message: Mapping[str, Any]) -> str:
    """The text a user reads in a message of the phone view."""
    if isinstance(message.get("text"), str):  # templates come with their rendered body
        return str(message["text"])
    content = message.get(str(message.get("type"))) or {}
    if isinstance(content, dict):
        body = content.get("body")
        if isinstance(body, dict):  # interactive
            return str(body.get("text", ""))
        return str(body or content.get("caption") or "")
    return ""


def _matches(message: Mapping[str, Any], contains: str | None, type_name: str | None) -> bool:
    if type_name is not None and message.get("type") != type_name:
        return False
    return contains is None or contains.lower() in shown_text(message).lower()


"""The sandbox connector: simulated users who receive, read and write.

It plays WhatsApp's part for sandbox numbers, with WhatsApp's rules:

- an outbound message to a simulated user produces `sent`, `delivered` and
  `read` at the configured delays after acceptance (a reaction only `sent`);
  to anyone else, a `failed` status with 131026;
- a free-form message to a user who has not written in the last 24 hours
  fails with 131047; templates always go;
- media ids must be the number's own, templates must exist, be approved and
  get the right parameters (answered at once, as Meta does); template
  parameter text with new lines fails later with 132018, as Meta reports it.

Statuses are ingested at once, each dated at the moment it happens, so they
are durable immediately and the delivery engine posts each when its time
comes (a crash cannot lose a pending status).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from openwaba.clock import Clock
from openwaba.connectors.base import Connector, EventSink
from openwaba.connectors.sandbox.notifications import inbound_item, notification, status_item
from openwaba.domain import ids
from openwaba.domain.accounts import Channel, ChannelFormat, SandboxUser
from openwaba.domain.errors import CATALOGUE, NotFoundError, RequestError, webhook_error
from openwaba.domain.media import MediaKind
from openwaba.domain.messages import OutgoingMessage, media_references
from openwaba.domain.scenarios import STEPS, Scenario, auto_reply, plan_statuses
from openwaba.domain.template_send import check_template_send, render_body, template_delivery_error
from openwaba.domain.templates import find_component
from openwaba.domain.user_actions import TAPS, UserAction, tapped_reply, tapped_template_button
from openwaba.services.media import Media
from openwaba.services.scenarios import Scenarios
from openwaba.services.templates import Templates
from openwaba.storage.base import ConversationEntry, MediaFile, QueuedMessage, Storage

WINDOW = 24 * 3600.0  # the customer-service window, seconds after the user's last message
TYPING_LIFETIME = 25.0  # a typing indicator disappears after this, or at the reply
_ANSWER_DELAY = 0.5  # seconds a rule-following user takes to answer after the last status
_PHONE_VIEW_LIMIT = 100  # messages shown in a user's view of the chat

INJECTED_NOTE = "(injected by the sandbox scenario)"
_UNDELIVERABLE = (
    "Message failed to send because the recipient is not a WhatsApp user of this sandbox "
    "(not one of its simulated users)."
)
_WINDOW_CLOSED = (
    "Message failed to send because more than 24 hours have passed since the customer last replied to this number."
)


class SandboxConnector(Connector):
    name = "sandbox"

    def __init__(
        self,
        storage: Storage,
        sink: EventSink,
        clock: Clock,
        status_delays: tuple[float, float, float],
        media: Media,
        templates: Templates,
        scenarios: Scenarios,
        statuses: bool = True,
    ):
        self._statuses = statuses  # False: messages are taken and nothing is reported about them
        self._scenarios = scenarios
        self._storage = storage
        self._sink = sink
        self._clock = clock
        self._delays = status_delays
        self._media = media
        self._templates = templates
        self._users: dict[int, dict[str, SandboxUser]] = {}
        self._conversations: dict[tuple[int, str], str] = {}
        self._typing_until: dict[tuple[int, str], float] = {}
        # When each simulated user last wrote: read from storage once, then kept
        # current here, since every message a sandbox user writes passes through
        # this connector. Saves a storage round trip per hand-over.
        self._last_inbound: dict[tuple[int, str], float | None] = {}

    async def users(self, channel: Channel) -> dict[str, SandboxUser]:
        users = self._users.get(channel.id)
        if users is None:
            users = {u.wa_id: u for u in await self._storage.sandbox_users(channel.id)}
            self._users[channel.id] = users
        return users

    async def user(self, channel: Channel, wa_id: str) -> SandboxUser:
        user = (await self.users(channel)).get(wa_id)
        if user is None:
            raise NotFoundError(f"{wa_id} is not a simulated user of this sandbox number")
        return user

    async def resolve(self, channel: Channel, message: OutgoingMessage) -> OutgoingMessage:
        if message.recipient is None:
            return message
        for user in (await self.users(channel)).values():
            if user.user_id == message.recipient:
                return replace(message, wa_id=user.wa_id)
        raise RequestError(131009, f"'recipient' {message.recipient} is not a user of this sandbox number")

    async def check(self, channel: Channel, message: OutgoingMessage) -> None:
        failure = await self._scenarios.failure(channel, message.wa_id, synchronous=True)
        if failure is not None:
            raise RequestError(failure.code, f"{CATALOGUE[failure.code].title} {INJECTED_NOTE}")
        missing = await self._media.missing(channel, media_references(message))
        if missing:
            raise RequestError(100, f"Param id '{missing[0]}' is not a valid media id of this phone number")
        if message.type == "template":
            language = str(message.content["language"]["code"])
            template = await self._templates.find(channel, str(message.content["name"]), language)
            check_template_send(message.content, template, language)

    async def send(self, channel: Channel, queued: QueuedMessage) -> None:
        message = queued.message
        self._typing_until.pop((channel.id, message.wa_id), None)  # replying ends "typing…"
        if not self._statuses:
            return
        user = (await self.users(channel)).get(message.wa_id)
        last = await self._last_inbound_at(channel, user.wa_id, queued.created_at) if user else None
        in_window = last is not None and queued.created_at - last <= WINDOW
        error = self._failure(message, in_window) if user else None
        injected: tuple[str, ...] = ()
        if user is not None and error is None:
            failure = await self._scenarios.failure(channel, user.wa_id, synchronous=False)
            if failure is not None:
                error, injected = webhook_error(failure.code, INJECTED_NOTE), ("failure",)
        at = queued.created_at + self._delays[0]
        if user is None or error is not None:
            failed = status_item(
                queued.wamid,
                "failed",
                at,
                message.wa_id,
                errors=[error or webhook_error(131026, _UNDELIVERABLE)],
                biz_opaque_callback_data=message.biz_opaque_callback_data,
            )
            # SDKs read `contacts[0]` of every Cloud status; On-Premise statuses carry none.
            stranger = [_stranger(message.wa_id)] if channel.format is ChannelFormat.CLOUD else []
            contacts = [user.contact()] if user else stranger
            await self._sink.ingest([(notification(channel, {"statuses": [failed]}, contacts), at)], [injected])
            return
        await self._deliver(channel, queued, user, in_window)

    async def _deliver(self, channel: Channel, queued: QueuedMessage, user: SandboxUser, in_window: bool) -> None:
        """The status webhooks of a delivered message, as the number's scenario has them."""
        message = queued.message
        # A reaction is only ever `sent`, never delivered or read (360dialog documents this).
        steps = ("sent",) if message.type == "reaction" else STEPS
        scenario = await self._scenarios.effective(channel, user.wa_id)
        planned = plan_statuses(scenario, self._delays, steps, self._scenarios.rng(channel))
        pricing = await self._pricing(channel, message, in_window)
        start = queued.created_at
        # A duplicate is the original webhook posted again: the same payload, its time included.
        original = {step.status: start + step.delay for step in planned if "duplicate" not in step.injected}
        await self._sink.ingest(
            [
                self._status(channel, queued, user, step.status, start + step.delay, pricing, original[step.status])
                for step in planned
            ],
            [step.injected for step in planned],
        )
        if scenario.script or scenario.rules:  # else nobody reads the text: spare a template's look-up
            seen = start + max(step.delay for step in planned) + _ANSWER_DELAY
            await self._answer(channel, queued, user, scenario, seen)

    async def _answer(
        self, channel: Channel, queued: QueuedMessage, user: SandboxUser, scenario: Scenario, seen: float
    ) -> None:
        """The user answers once they have seen the message: as the script says, else by the first matching rule."""
        message = queued.message
        text = await self._shown_text(channel, message.type, message.content)
        action, matched = await self._scenarios.script_turn(
            channel, user.wa_id, scenario.script or (), queued.wamid, message.type, text
        )
        if action is not None:
            try:
                await self.user_acts(channel, user.wa_id, action, at=seen)
            except (RequestError, NotFoundError) as exc:  # e.g. the script taps a button the message lacks
                await self._scenarios.script_failed(channel, user.wa_id, queued.wamid, str(exc))
            return
        rule_answer = None if matched else auto_reply(scenario, text)
        if rule_answer is not None:
            await self._user_sends(channel, user.wa_id, "text", {"body": rule_answer}, queued.wamid, seen)

    async def _pricing(self, channel: Channel, message: OutgoingMessage, in_window: bool) -> dict[str, Any]:
        """Per-message pricing: free-form messages and utility templates inside the window are free;
        any other template is billed in its category."""
        category = "service"
        if message.type == "template":
            language = str(message.content["language"]["code"])
            template = await self._templates.find(channel, str(message.content["name"]), language)
            category = template.category.lower() if template is not None else "utility"
        free = in_window and category in ("service", "utility")
        kind = "free_customer_service" if free else "regular"
        return {"billable": not free, "pricing_model": "PMP", "type": kind, "category": category}

    def _status(
        self,
        channel: Channel,
        queued: QueuedMessage,
        user: SandboxUser,
        status: str,
        at: float,
        pricing: dict[str, Any],
        shown_at: float,
    ) -> tuple[dict[str, Any], float]:
        """The status notification, posted at `at`, saying it happened at `shown_at`."""
        key = (channel.id, user.wa_id)
        conversation_id = self._conversations.get(key)
        if conversation_id is None:  # generated on a miss only: it draws from the OS's random source
            conversation_id = self._conversations[key] = ids.conversation_id()
        conversation: dict[str, object] = {"id": conversation_id, "origin": {"type": pricing["category"]}}
        if status == "sent":
            conversation["expiration_timestamp"] = str(int(shown_at + WINDOW))
        item = status_item(
            queued.wamid,
            status,
            shown_at,
            user.wa_id,
            conversation=conversation,
            biz_opaque_callback_data=queued.message.biz_opaque_callback_data,
            pricing=pricing,
        )
        return notification(channel, {"statuses": [item]}, [user.contact()]), at

    def _failure(self, message: OutgoingMessage, in_window: bool) -> dict[str, object] | None:
        """The error WhatsApp reports in a failed status for this message, if any."""
        if message.type == "template":
            found = template_delivery_error(message.content)
            return webhook_error(*found) if found else None
        return None if in_window else webhook_error(131047, _WINDOW_CLOSED)

    async def user_says(self, channel: Channel, wa_id: str, text: str, context: str | None = None) -> str:
        """A simulated user writes a text message to the business number; returns its wamid."""
        return await self._user_sends(channel, wa_id, "text", {"body": text}, context)

    async def user_acts(self, channel: Channel, wa_id: str, action: UserAction, at: float | None = None) -> str:
        """A simulated user sends a message of any type, or taps a button or list row; returns its wamid."""
        if action.type not in TAPS:
            return await self._user_sends(channel, wa_id, action.type, action.content, action.reply_to, at)
        reply_to = str(action.reply_to)
        tapped = await self._storage.conversation_message(channel.id, wa_id, reply_to)
        if tapped is None or tapped.direction != "out":
            raise NotFoundError(f"{reply_to} is not a message this number sent to {wa_id}")
        if action.type != "button":
            reply = tapped_reply(action, tapped.type, tapped.content)
            return await self._user_sends(channel, wa_id, "interactive", reply, reply_to, at)
        template = None
        if tapped.type == "template":
            language = tapped.content.get("language")
            code = str(language.get("code")) if isinstance(language, dict) else ""
            template = await self._templates.find(channel, str(tapped.content.get("name")), code)
        if template is None:
            raise RequestError(100, f"Message {reply_to} is not a template with buttons")
        buttons = (find_component(template.components, "BUTTONS") or {}).get("buttons") or []
        button = tapped_template_button(action, tapped.content, list(buttons))
        return await self._user_sends(channel, wa_id, "button", button, reply_to, at)

    async def user_sends_media(
        self, channel: Channel, wa_id: str, media: MediaFile, kind: MediaKind, caption: str | None
    ) -> str:
        """A simulated user sends a file; the webhook carries a media id the business can download."""
        content: dict[str, Any] = {"id": media.id, "mime_type": media.mime_type, "sha256": media.sha256}
        if caption and kind.name in ("image", "video", "document"):
            content["caption"] = caption
        if kind.name == "document" and media.filename:
            content["filename"] = media.filename
        if kind.name == "sticker":
            content["animated"] = kind.animated
        return await self._user_sends(channel, wa_id, kind.name, content, None)

    async def _user_sends(
        self, channel: Channel, wa_id: str, type_name: str, content: Any, context: str | None, at: float | None = None
    ) -> str:
        user = await self.user(channel, wa_id)
        now = self._clock.now() if at is None else at
        wamid = ids.wamid(wa_id, outbound=False)
        item = inbound_item(user, wamid, now, type_name, content)
        if context:
            item["context"] = {"from": channel.phone_number, "id": context}
        # A `duplicates` scenario posts inbound messages again too: the bot must answer once per wamid.
        copies = (await self._scenarios.effective(channel, wa_id)).duplicates or 0
        posted = notification(channel, {"messages": [item]}, [user.contact()])
        await self._sink.ingest(
            [(posted, now + 0.002 * n) for n in range(copies + 1)], [()] + [("duplicate",)] * copies
        )
        self._last_inbound[(channel.id, wa_id)] = now
        return wamid

    def forget(self) -> None:
        """Drop cached users (another process sharing the store may have added some)."""
        self._users.clear()

    async def _last_inbound_at(self, channel: Channel, wa_id: str, at: float) -> float | None:
        key = (channel.id, wa_id)
        cached = self._last_inbound.get(key)
        # A window known to be open at `at` stays open: later messages only extend it.
        # Otherwise ask storage: the user may have written through another process.
        if cached is None or at - cached > WINDOW:
            stored = await self._storage.last_inbound_at(channel.id, wa_id)
            # The user may have written while storage answered: keep the later time.
            known = [t for t in (stored, self._last_inbound.get(key)) if t is not None]
            self._last_inbound[key] = max(known, default=None)
        return self._last_inbound[key]

    async def mark_read(self, channel: Channel, message_id: str, wa_id: str, typing: bool) -> None:
        """The business shows "typing…" to the user until it replies or 25 s pass."""
        if typing:
            self._typing_until[(channel.id, wa_id)] = self._clock.now() + TYPING_LIFETIME

    def is_typing(self, channel: Channel, wa_id: str) -> bool:
        return self._typing_until.get((channel.id, wa_id), 0.0) > self._clock.now()

    async def phone_view(self, channel: Channel, wa_id: str) -> dict[str, Any]:
        """What the user's phone shows: the newest messages with their ticks, templates
        as the text the user reads, and whether the business is typing."""
        await self.user(channel, wa_id)
        # Statuses are stored ahead of time: the phone shows each once it has happened.
        entries = await self._storage.conversation(channel.id, wa_id, _PHONE_VIEW_LIMIT, self._clock.now())
        messages = [await self._shown(channel, wa_id, entry) for entry in entries]
        return {"wa_id": wa_id, "business_typing": self.is_typing(channel, wa_id), "messages": messages}

    async def _shown_text(self, channel: Channel, type_name: str, content: dict[str, Any]) -> str:
        """The text a user reads in a business message (rules match on it)."""
        if type_name == "template":
            return await self._template_text(channel, content) or ""
        if type_name == "interactive":
            return str((content.get("body") or {}).get("text", ""))
        return str(content.get("body") or content.get("caption") or "")

    async def _shown(self, channel: Channel, wa_id: str, entry: ConversationEntry) -> dict[str, Any]:
        inbound = entry.direction == "in"
        shown: dict[str, Any] = {
            "id": entry.wamid,
            "from": wa_id if inbound else channel.phone_number,
            "direction": "inbound" if inbound else "outbound",
            "type": entry.type,
            entry.type: entry.content,
            "status": entry.status,
            "timestamp": str(int(entry.created_at)),
        }
        if entry.context_message_id:
            shown["context"] = {"id": entry.context_message_id}
        if entry.type == "template":
            text = await self._template_text(channel, entry.content)
            if text is not None:
                shown["text"] = text
        return shown

    async def _template_text(self, channel: Channel, content: dict[str, Any]) -> str | None:
        """A sent template's body as the user reads it; None when the template is gone."""
        language = content.get("language")
        code = str(language.get("code")) if isinstance(language, dict) else ""
        template = await self._templates.find(channel, str(content.get("name")), code)
        return render_body(template, content) if template is not None else None


def _stranger(wa_id: str) -> dict[str, object]:
    """`contacts[]` for someone who is not a simulated user: a failed status still
    names its recipient (SDKs such as pywa read `contacts[0]` of every status)."""
    return {"wa_id": wa_id, "user_id": ids.stable_business_scoped_user_id(wa_id)}

"""Message templates: create, list, delete, and the sandbox's review.

Templates belong to the channel's WABA. The sandbox reviews a template when
it is created: the decision is stored with the moment it takes effect, and
the template-status webhook is ingested dated at that moment, so the review
needs no timer, survives a restart, and follows the injected clock.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import re
import uuid
from typing import TYPE_CHECKING

from openwaba.clock import Clock
from openwaba.connectors.base import EventSink
from openwaba.domain import ids
from openwaba.domain.accounts import Channel
from openwaba.domain.errors import ConflictError, NotFoundError, RequestError
from openwaba.domain.payloads import TEMPLATE_FIELD
from openwaba.domain.templates import Template, TemplateStatus, parse_template_create, review
from openwaba.storage.base import Storage, StoredTemplate

if TYPE_CHECKING:  # accounts stores starter templates with each new WABA: no import cycle
    from openwaba.services.accounts import Accounts

# Every new WABA on WhatsApp comes with this template, approved.
_HELLO_WORLD = StoredTemplate(
    id="",
    name="hello_world",
    language="en_US",
    category="UTILITY",
    components=[
        {"type": "HEADER", "format": "TEXT", "text": "Hello World"},
        {
            "type": "BODY",
            "text": "Welcome and congratulations!! This message demonstrates your ability to send a WhatsApp "
            "message notification from the Cloud API, hosted by Meta. Thank you for taking the time to test with us.",
        },
        {"type": "FOOTER", "text": "WhatsApp Business Platform sample message"},
    ],
    decision=TemplateStatus.APPROVED.value,
    rejected_reason=None,
    decided_at=0.0,
    created_at=0.0,
)
_BACKFILLED = "templates.starters_backfilled"


def starter_templates(now: float) -> list[StoredTemplate]:
    """The templates a new WABA starts with, ready to store beside it."""
    return [dataclasses.replace(_HELLO_WORLD, id=ids.numeric_id(), created_at=now)]


class Templates:
    def __init__(
        self,
        storage: Storage,
        accounts: Accounts,
        clock: Clock,
        sink: EventSink,
        review_delay: float,
        reject: re.Pattern[str] | None,
    ) -> None:
        self._storage = storage
        self._accounts = accounts
        self._clock = clock
        self._sink = sink
        self._review_delay = review_delay
        self._reject = reject

    async def create(self, channel: Channel, document: dict[str, object]) -> Template:
        draft = parse_template_create(document)
        decision, reason = review(draft, self._reject)
        now = self._clock.now()
        stored = StoredTemplate(
            id=ids.numeric_id(),
            name=draft.name,
            language=draft.language,
            category=draft.category,
            components=draft.components,
            decision=decision.value,
            rejected_reason=reason,
            decided_at=now + self._review_delay,
            created_at=now,
        )
        try:
            await self._storage.insert_template(channel.waba_id, stored)
        except ConflictError:
            raise RequestError(
                100, f"A template named '{draft.name}' already exists in language {draft.language}"
            ) from None
        await self._sink.ingest([(_status_notification(channel.waba_id, stored), stored.decided_at)])
        return self._view(channel.waba_id, stored)

    async def list(self, channel: Channel) -> list[Template]:
        return [self._view(channel.waba_id, t) for t in await self._storage.templates(channel.waba_id)]

    async def find(self, channel: Channel, name: str, language: str) -> Template | None:
        stored = await self._storage.template(channel.waba_id, name, language)
        return None if stored is None else self._view(channel.waba_id, stored)

    async def delete(self, channel: Channel, name: str) -> int:
        deleted = await self._storage.delete_templates(channel.waba_id, name)
        if not deleted:
            raise NotFoundError(f"No template named '{name}'")
        # A review that has not come out yet must not be announced for a template that is gone.
        now = self._clock.now()
        target = await self._accounts.first_of_waba(channel.waba_id)
        for t in deleted:
            if t.decided_at > now:
                await self._storage.withdraw_event(ids.template_status_event_id(target.id, t.id, t.decision))
        return len(deleted)

    async def backfill_starters(self) -> None:
        """Once: give WABAs created before templates existed their starter templates.
        (New WABAs get them in the transaction that creates them.)"""
        if await self._storage.get_value(_BACKFILLED):
            return
        for waba in await self._storage.wabas():
            if await self._storage.template(waba.id, _HELLO_WORLD.name, _HELLO_WORLD.language) is None:
                for starter in starter_templates(self._clock.now()):
                    with contextlib.suppress(ConflictError):  # a half-done earlier backfill
                        await self._storage.insert_template(waba.id, starter)
        await self._storage.set_value(_BACKFILLED, "1")

    def _view(self, waba_id: str, stored: StoredTemplate) -> Template:
        decided = self._clock.now() >= stored.decided_at
        status = TemplateStatus(stored.decision) if decided else TemplateStatus.PENDING
        return Template(
            id=stored.id,
            name=stored.name,
            language=stored.language,
            category=stored.category,
            components=stored.components,
            status=status,
            rejected_reason=stored.rejected_reason if decided else None,
            namespace=namespace_of(waba_id),
        )


def namespace_of(waba_id: str) -> str:
    """A WABA's template namespace (On-Premise sends name it): stable, uuid-shaped."""
    digest = hashlib.sha256(f"namespace:{waba_id}".encode()).digest()[:16]
    return str(uuid.UUID(bytes=digest)).replace("-", "_")


def _status_notification(waba_id: str, stored: StoredTemplate) -> dict[str, object]:
    value = {
        "event": stored.decision,
        "message_template_id": int(stored.id),
        "message_template_name": stored.name,
        "message_template_language": stored.language,
        "reason": stored.rejected_reason,
    }
    change = {"field": TEMPLATE_FIELD, "value": value}
    return {"object": "whatsapp_business_account", "entry": [{"id": waba_id, "changes": [change]}]}

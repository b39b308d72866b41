"""Rows to domain objects and back, shared by the storage implementations.

Both stores select the same columns in the same order, so one function serves
SQLite's tuples and asyncpg's records alike.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from openwaba.domain.accounts import Channel, ChannelFormat, ChannelMode
from openwaba.domain.deliveries import AttemptOutcome, AttemptView, Destination, DueDelivery
from openwaba.domain.messages import OutgoingMessage
from openwaba.storage.base import ConversationEntry, QueuedMessage, StoredTemplate


class Row(Protocol):
    def __getitem__(self, index: int, /) -> Any: ...


def channel(row: Row) -> Channel:
    return Channel(row[0], row[1], row[2], row[3], ChannelFormat(row[4]), row[5], ChannelMode(row[6]))


def destination(r: Row) -> Destination:
    return Destination(r[0], r[1], r[2], r[3], json.loads(r[4]), bool(r[5]), tuple(json.loads(r[6])), r[7], bool(r[8]))


def queued_message(r: Row) -> QueuedMessage:
    """From (wamid, channel_id, wa_id, type, content, context_message_id, biz_opaque_callback_data, created_at)."""
    return QueuedMessage(
        wamid=r[0],
        channel_id=r[1],
        created_at=r[7],
        message=OutgoingMessage(
            input=r[2],
            wa_id=r[2],
            type=r[3],
            content=json.loads(r[4]),
            context_message_id=r[5],
            biz_opaque_callback_data=r[6],
        ),
    )


def due_delivery(r: Row) -> DueDelivery:
    return DueDelivery(
        id=r[0],
        event_id=r[1],
        order_key=r[2],
        created_at=r[3],
        deadline=r[4],
        attempts=r[5],
        destination_id=r[6],
        url=r[7],
        headers=json.loads(r[8]),
        secrets=tuple(json.loads(r[9])),
        app_secret=r[10],
        body=bytes(r[11]),
    )


def template(row: Row) -> StoredTemplate:
    return StoredTemplate(row[0], row[1], row[2], row[3], json.loads(row[4]), row[5], row[6], row[7], row[8])


def template_row(waba_id: str, t: StoredTemplate) -> tuple[Any, ...]:
    return (
        t.id,
        waba_id,
        t.name,
        t.language,
        t.category,
        json.dumps(t.components),
        t.decision,
        t.rejected_reason,
        t.decided_at,
        t.created_at,
    )


def conversation_entry(r: Row) -> ConversationEntry:
    return ConversationEntry(r[0], r[1], r[2], json.loads(r[3]), r[4], r[5], r[6])



def attempt_row(o: AttemptOutcome) -> tuple[object, ...]:
    """(delivery_id, started_at, duration_ms, status_code, error, response_excerpt, headers) of an attempt."""
    headers = None if o.headers is None else json.dumps(o.headers)
    return (o.delivery_id, o.started_at, o.duration_ms, o.status_code, o.error, o.response_excerpt, headers)


def attempt_view(r: Row) -> AttemptView:
    """From (started_at, duration_ms, status_code, error, response_excerpt, headers)."""
    return AttemptView(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]) if r[5] else None)

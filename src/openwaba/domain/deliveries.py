"""Webhook destinations, deliveries and attempts: the delivery engine's model."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class DeliveryState(enum.Enum):
    HELD = "held"  # waits for the primary destination to answer 200 (multi-webhook)
    PENDING = "pending"  # waiting for its next attempt (or its first)
    DELIVERED = "delivered"  # a receiver answered HTTP 200
    DEAD = "dead"  # the retry horizon passed without a 200


@dataclass(frozen=True, slots=True)
class Destination:
    """Where a channel's events are posted."""

    id: int
    kind: str  # main (phone-number webhook) | waba | multi
    name: str
    url: str
    headers: dict[str, str]
    override_all: bool = False  # WABA webhooks only
    secrets: tuple[str, ...] = ()  # Standard Webhooks signing secrets, newest first
    app_secret: str | None = None  # signs X-Hub-Signature-256 when set
    fifo: bool = False  # a conversation's events strictly in order, each waiting for the previous


def order_key(channel_id: int, wa_id: str | None) -> str:
    """What keeps a conversation's deliveries in order: the channel and the user."""
    return f"{channel_id}:{wa_id or ''}"


def conversation_of(key: str) -> tuple[int | None, str | None]:
    """The (channel id, wa_id) an order key was made of (None where it names none)."""
    channel_id, _, wa_id = key.partition(":")
    return (int(channel_id) if channel_id.isdigit() else None), (wa_id or None)


@dataclass(frozen=True, slots=True)
class DueDelivery:
    """A delivery claimed for an attempt, with everything needed to make it."""

    id: int
    event_id: str
    order_key: str  # deliveries with the same key and destination go one at a time
    created_at: float  # when the event happened
    deadline: float  # no attempt after this (the retry horizon)
    attempts: int  # attempts already made (since the last replay): where the retry schedule stands
    destination_id: int
    url: str
    headers: dict[str, str]
    secrets: tuple[str, ...]
    app_secret: str | None
    body: bytes


@dataclass(frozen=True, slots=True)
class AttemptOutcome:
    """What one HTTP attempt produced; success means exactly HTTP 200."""

    delivery_id: int
    started_at: float
    duration_ms: float
    status_code: int | None
    error: str | None
    response_excerpt: str
    retry_after: float | None = None  # seconds the receiver asked us to wait (429/503)
    headers: dict[str, str] | None = None  # the request headers, as sent

    @property
    def succeeded(self) -> bool:
        return self.status_code == 200


@dataclass(frozen=True, slots=True)
class DeliveryView:
    """A delivery as the delivery log shows it."""

    id: int
    event_id: str
    event_kind: str
    wamid: str | None
    destination_kind: str
    destination_name: str
    url: str
    state: str
    attempts: int
    created_at: float
    next_attempt_at: float | None
    deadline: float
    last_status: int | None
    last_error: str | None
    injected: str | None = None  # comma-separated labels of what a sandbox scenario made up

    @property
    def injected_labels(self) -> list[str]:
        return self.injected.split(",") if self.injected else []


@dataclass(frozen=True, slots=True)
class AttemptView:
    started_at: float
    duration_ms: float
    status_code: int | None
    error: str | None
    response_excerpt: str
    headers: dict[str, str] | None = None  # as sent (None for attempts recorded before they were kept)


@dataclass(frozen=True, slots=True)
class DeliveryFilter:
    """Which deliveries of a channel to list or replay; None means any."""

    state: str | None = None
    destination: str | None = None
    event_id: str | None = None
    since: float | None = None
    until: float | None = None
    delivery_id: int | None = None

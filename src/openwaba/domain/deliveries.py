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


@dataclass(frozen=True, slots=True)
class DueDelivery:
    """A delivery claimed for an attempt, with everything needed to make it."""

    id: int
    event_id: str
    order_key: str  # deliveries with the same key and destination go one at a time
    created_at: float  # when the event happened: the retry horizon counts from here
    attempts: int  # attempts already made
    url: str
    headers: dict[str, str]
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

    @property
    def succeeded(self) -> bool:
        return self.status_code == 200

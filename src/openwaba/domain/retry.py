"""When a failed webhook delivery is tried again.

The schedule is a list of growing delays (after the first attempt, which is
immediate), repeated at its last value until the horizon. Each delay gets a
bounded random jitter so that many deliveries failing together do not retry
in lock-step. No attempt is ever scheduled after the horizon: when the next
delay would overshoot, one final attempt is made at the horizon itself.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import UTC
from email.utils import parsedate_to_datetime

DEFAULT_DELAYS: tuple[float, ...] = (5, 30, 120, 600, 1800, 3600, 7200, 14400, 28800)
DEFAULT_HORIZON = 24 * 3600.0
DEFAULT_JITTER = 0.1


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """`delays[i]` is the wait after the (i+1)-th failed attempt."""

    delays: tuple[float, ...] = DEFAULT_DELAYS
    horizon: float = DEFAULT_HORIZON
    jitter: float = DEFAULT_JITTER  # fraction of the delay, added on top: [d, d * (1 + jitter)]
    _rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.delays or not all(math.isfinite(d) and d >= 0 for d in self.delays):
            raise ValueError("retry delays must be a non-empty list of non-negative seconds")
        if self.delays[-1] <= 0:
            raise ValueError("the last retry delay repeats until the horizon, so it must be positive")
        if any(b < a for a, b in zip(self.delays, self.delays[1:])):
            raise ValueError("retry delays must not shrink")
        if not (math.isfinite(self.horizon) and self.horizon > 0) or not 0 <= self.jitter <= 1:
            raise ValueError("horizon must be positive and jitter within [0, 1]")

    def base_delay(self, failed_attempts: int) -> float:
        """The un-jittered wait after `failed_attempts` failures (>= 1)."""
        if failed_attempts < 1:
            raise ValueError("a retry follows at least one failed attempt")
        index = min(failed_attempts, len(self.delays)) - 1
        return self.delays[index]

    def next_attempt_at(
        self, created_at: float, failed_attempts: int, now: float, deadline: float | None = None
    ) -> float | None:
        """When to try again after the `failed_attempts`-th failure, or None: dead-letter.

        `deadline` overrides `created_at + horizon` (per-channel horizons, replays).
        """
        if deadline is None:
            deadline = created_at + self.horizon
        if now >= deadline:
            return None
        delay = self.base_delay(failed_attempts)
        delay += delay * self.jitter * self._rng.random()
        return min(now + delay, deadline)


def honour_retry_after(scheduled: float | None, now: float, retry_after: float, deadline: float) -> float | None:
    """A receiver's `Retry-After`: never earlier than asked, never past the deadline."""
    not_before = now + retry_after
    if scheduled is None or not_before > deadline:
        return None
    return max(scheduled, not_before)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds from a `Retry-After` header (delta-seconds or an HTTP date); None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment.tzinfo is None:  # the asctime form carries no zone: HTTP dates are GMT
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, moment.timestamp() - now)


def parse_delays(text: str) -> tuple[float, ...]:
    """`"5,30,120"` -> (5.0, 30.0, 120.0); used for settings."""
    return tuple(float(part) for part in text.split(",") if part.strip())

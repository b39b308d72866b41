"""Rate limiting, WhatsApp's way: a steady rate with a bounded burst.

Implemented as GCRA (the generic cell rate algorithm): each sender keeps one
number, the theoretical time its next message is due at the steady rate. A
message is allowed while that time is no further ahead of now than the burst
allows. Memory is one float per sender; no timers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

THROUGHPUT_DEFAULT = 80.0  # messages per second per business number (Meta's default tier)
PAIR_INTERVAL = 6.0  # one message every 6 s to the same user ...
PAIR_BURST = 45  # ... with bursts of up to 45 borrowed from future quota
SLACK = 1e-6  # seconds: float rounding of accumulated due times must not refuse an on-time sender


@dataclass(frozen=True, slots=True)
class Rate:
    interval: float  # seconds between messages at the steady rate
    burst: int  # messages allowed back to back

    @classmethod
    def per_second(cls, rate: float, burst_seconds: float = 1.0) -> Rate:
        return cls(1.0 / rate, max(1, int(rate * burst_seconds)))

    def admit(self, due: float | None, now: float) -> float | None:
        """The sender's new due time if a message is allowed now, else None."""
        start = now if due is None or due < now else due
        if start - now > self.interval * (self.burst - 1) + SLACK:
            return None
        return start + self.interval

    def retry_after(self, due: float, now: float) -> float:
        """Seconds until the next message would be allowed."""
        return max(0.0, due - now - self.interval * (self.burst - 1))


PAIR_RATE = Rate(PAIR_INTERVAL, PAIR_BURST)


class Buckets:
    """Many senders' GCRA due times, in memory: for a store only one process uses."""

    def __init__(self, prune_at: int = 100_000) -> None:
        self._due: dict[str, float] = {}
        self._prune_at = prune_at  # tracked senders; past this, the ones back at rest are forgotten

    def admit(self, buckets: Sequence[tuple[str, Rate]], now: float) -> tuple[int, float] | None:
        """Count one message against every bucket, all or nothing. None when
        admitted; else the index of the first bucket over its limit and its due time."""
        refused, dues = admit_all(buckets, self._due, now)
        if refused is not None:
            return refused
        self._due.update(dues)
        if len(self._due) > self._prune_at:
            self._due = {k: due for k, due in self._due.items() if due > now}
        return None


def admit_all(
    buckets: Sequence[tuple[str, Rate]], dues: Mapping[str, float], now: float
) -> tuple[tuple[int, float] | None, dict[str, float]]:
    """Count one message against every bucket, all or nothing, given the buckets'
    current due times: (None, the new due times) when admitted, else the index of
    the first bucket over its limit and its due time (and nothing to store)."""
    new: dict[str, float] = {}
    for index, (key, rate) in enumerate(buckets):
        current = dues.get(key)
        due = rate.admit(current, now)
        if due is None:
            return (index, current if current is not None else now), {}
        new[key] = due
    return None, new

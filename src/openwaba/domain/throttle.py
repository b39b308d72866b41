"""Rate limiting, WhatsApp's way: a steady rate with a bounded burst.

Implemented as GCRA (the generic cell rate algorithm): each sender keeps one
number, the theoretical time its next message is due at the steady rate. A
message is allowed while that time is no further ahead of now than the burst
allows. Memory is one float per sender; no timers.
"""

from __future__ import annotations

from dataclasses import dataclass

THROUGHPUT_DEFAULT = 80.0  # messages per second per business number (Meta's default tier)
PAIR_INTERVAL = 6.0  # one message every 6 s to the same user ...
PAIR_BURST = 45  # ... with bursts of up to 45 borrowed from future quota
_SLACK = 1e-6  # seconds: float rounding of accumulated due times must not refuse an on-time sender


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
        if start - now > self.interval * (self.burst - 1) + _SLACK:
            return None
        return start + self.interval

    def retry_after(self, due: float, now: float) -> float:
        """Seconds until the next message would be allowed."""
        return max(0.0, due - now - self.interval * (self.burst - 1))


PAIR_RATE = Rate(PAIR_INTERVAL, PAIR_BURST)

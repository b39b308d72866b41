"""Time, injected. Everything that schedules (status simulation, retries)
asks a Clock for `now()`, so tests and the sandbox can move time forward
instead of waiting for it.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class Clock:
    """Wall-clock time."""

    def __init__(self) -> None:
        self._listeners: list[Callable[[], None]] = []

    def now(self) -> float:
        return time.time()

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call `listener` whenever time jumps (never, for the wall clock)."""
        self._listeners.append(listener)

    def _changed(self) -> None:
        for listener in self._listeners:
            listener()


class ManualClock(Clock):
    """Wall-clock time plus an offset that only grows when told to.

    Time keeps flowing (so near-instant delays still happen by themselves), and
    `advance()` jumps it forward, waking everything that waits on a due time.
    """

    def __init__(self, offset: float = 0.0) -> None:
        super().__init__()
        self.offset = offset

    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        self.offset += seconds
        self._changed()

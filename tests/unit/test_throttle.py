"""GCRA rate limiting: burst, steady rate, and that it never admits more than allowed."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openwaba.domain.throttle import PAIR_RATE, Rate


def admit_all(rate: Rate, times: list[float]) -> list[float]:
    due: float | None = None
    admitted = []
    for now in times:
        new_due = rate.admit(due, now)
        if new_due is not None:
            due = new_due
            admitted.append(now)
    return admitted


@pytest.mark.parametrize(
    ("rate", "burst"),
    [(Rate.per_second(80), 80), (Rate.per_second(5), 5), (Rate.per_second(0.5), 1), (PAIR_RATE, 45)],
    ids=["80/s", "5/s", "0.5/s", "pair"],
)
def test_a_burst_at_one_instant_admits_exactly_the_burst(rate: Rate, burst: int) -> None:
    assert len(admit_all(rate, [100.0] * (burst + 10))) == burst


def test_pair_rate_after_a_burst_admits_one_message_per_interval() -> None:
    due: float | None = None
    for _ in range(45):
        due = PAIR_RATE.admit(due, 0.0)
    assert due is not None
    assert PAIR_RATE.admit(due, 0.0) is None
    assert PAIR_RATE.retry_after(due, 0.0) == pytest.approx(6.0)
    assert PAIR_RATE.admit(due, 5.9) is None
    assert PAIR_RATE.admit(due, 6.0) is not None


@settings(max_examples=300, deadline=None)
@given(
    per_second=st.floats(min_value=0.5, max_value=200),
    gaps=st.lists(st.floats(min_value=0, max_value=2), min_size=1, max_size=300),
)
def test_never_more_than_burst_plus_rate_times_window(per_second: float, gaps: list[float]) -> None:
    """In any window of length w, at most burst + w * rate messages are admitted."""
    rate = Rate.per_second(per_second)
    times = []
    now = 0.0
    for gap in gaps:
        now += gap
        times.append(now)
    admitted = admit_all(rate, times)
    for i, start in enumerate(admitted):
        for j in range(i, len(admitted)):
            window = admitted[j] - start
            assert j - i + 1 <= rate.burst + math.floor(window / rate.interval + 1e-6)


@settings(max_examples=200, deadline=None)
@given(per_second=st.floats(min_value=0.5, max_value=200), start=st.floats(min_value=0, max_value=1e6))
def test_a_sender_at_the_steady_rate_is_always_admitted(per_second: float, start: float) -> None:
    rate = Rate.per_second(per_second)
    times = [start + i * rate.interval for i in range(50)]
    assert admit_all(rate, times) == times

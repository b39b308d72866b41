"""A receiver's `Retry-After` (429/503): `parse_retry_after` turns the header into
seconds, `honour_retry_after` merges it with the retry schedule.

The README: "429 and 503 with Retry-After (seconds or an HTTP date) are never
retried earlier than asked; if that is past the horizon the delivery is
dead-lettered."
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Iterator
from email.utils import formatdate

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from openwaba.domain.retry import RetryPolicy, honour_retry_after, parse_retry_after

NOW = 784_111_777.0  # Sun, 06 Nov 1994 08:49:37 GMT (RFC 9110's example date)


# --- parse_retry_after ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "seconds"), [
    ("120", 120.0),
    ("0", 0.0),
    (" 30 ", 30.0),
    ("007", 7.0),
    ("86400", 86400.0),
])
def test_delta_seconds(value: str, seconds: float) -> None:
    assert parse_retry_after(value, NOW) == seconds


@pytest.mark.parametrize("value", [
    "Sun, 06 Nov 1994 08:51:17 GMT",  # IMF-fixdate, the preferred form
    "Sunday, 06-Nov-94 08:51:17 GMT",  # obsolete RFC 850 form
])
def test_http_dates_are_seconds_from_now(value: str) -> None:
    assert parse_retry_after(value, NOW) == 100.0


def test_an_http_date_in_the_past_means_now() -> None:
    assert parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", NOW) == 0.0


@pytest.mark.parametrize("value", [
    None, "", "   ", "soon", "-5", "+5", "1.5", "1e3", "0x10", "12abc", "120 seconds",
    "²", "①", "١٢٠", "１２０",  # Unicode digits: str.isdigit() says yes, float() (or HTTP) says no
    "Sun, 99 Foo 1994 08:49:37 GMT", "Sun, 06 Nov 1994 25:61:61 GMT", "Mon, 32 Jan 2024 00:00:00 GMT",
])
def test_garbage_is_none(value: str | None) -> None:
    assert parse_retry_after(value, NOW) is None


@settings(max_examples=500)
@given(st.text(max_size=40))
@example("²")
@example("9" * 400)
@example("Sun, 06 Nov 99999 08:49:37 GMT")
def test_never_raises_and_never_negative(value: str) -> None:
    seconds = parse_retry_after(value, NOW)
    assert seconds is None or seconds >= 0


@given(st.integers(min_value=0, max_value=10**12))
def test_any_delta_seconds(n: int) -> None:
    assert parse_retry_after(str(n), NOW) == float(n)


@given(ahead=st.integers(min_value=-10**6, max_value=10**8), now=st.integers(min_value=10**8, max_value=4 * 10**9))
def test_any_imf_fixdate(ahead: int, now: int) -> None:
    header = formatdate(now + ahead, usegmt=True)
    assert parse_retry_after(header, float(now)) == max(0.0, float(ahead))


@pytest.fixture
def new_york() -> Iterator[None]:
    if not hasattr(time, "tzset"):
        pytest.skip("needs time.tzset")
    mp = pytest.MonkeyPatch()
    mp.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        yield
    finally:
        mp.undo()
        time.tzset()


def test_imf_fixdate_does_not_depend_on_the_local_time_zone(new_york: None) -> None:
    assert parse_retry_after("Sun, 06 Nov 1994 08:51:17 GMT", NOW) == 100.0


def test_asctime_http_date_is_gmt(new_york: None) -> None:
    assert parse_retry_after("Sun Nov  6 08:51:17 1994", NOW) == 100.0


# --- honour_retry_after --------------------------------------------------------------------------------------


def test_a_later_retry_after_wins_over_the_schedule() -> None:
    assert honour_retry_after(105.0, 100.0, 120.0, 10_000.0) == 220.0


def test_an_earlier_retry_after_keeps_the_schedule() -> None:
    assert honour_retry_after(700.0, 100.0, 5.0, 10_000.0) == 700.0


def test_retry_after_past_the_deadline_dead_letters() -> None:
    assert honour_retry_after(105.0, 100.0, 120.0, 160.0) is None


def test_retry_after_exactly_at_the_deadline_is_allowed() -> None:
    assert honour_retry_after(105.0, 100.0, 60.0, 160.0) == 160.0


def test_already_dead_stays_dead() -> None:
    assert honour_retry_after(None, 100.0, 0.0, 10_000.0) is None


finite = st.floats(min_value=0, max_value=1e7, allow_nan=False, allow_infinity=False)


@settings(max_examples=500)
@given(now=st.floats(min_value=0, max_value=4e9, allow_nan=False), scheduled_in=finite, asked=finite,
       horizon_left=finite)
def test_never_earlier_than_asked_and_never_past_the_deadline(now: float, scheduled_in: float, asked: float,
                                                             horizon_left: float) -> None:
    deadline = now + horizon_left
    scheduled = min(now + scheduled_in, deadline)  # what RetryPolicy.next_attempt_at answers
    result = honour_retry_after(scheduled, now, asked, deadline)
    if now + asked > deadline:
        assert result is None
    else:
        assert result is not None
        assert result >= now + asked  # never earlier than asked
        assert result >= scheduled  # never earlier than the schedule either
        assert result <= deadline  # never past the deadline
        assert result in (scheduled, now + asked)


@settings(max_examples=300, deadline=None)
@given(
    created=st.floats(min_value=0, max_value=2e9, allow_nan=False),
    answers=st.lists(st.one_of(st.none(), st.integers(min_value=0, max_value=20_000)), min_size=1, max_size=60),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_a_delivery_pushed_back_again_and_again_is_never_attempted_past_its_horizon(
        created: float, answers: list[int | None], seed: int) -> None:
    """The dispatcher's decision (schedule, then Retry-After) over a run of 429s."""
    policy = RetryPolicy(horizon=86_400.0, jitter=0.1, _rng=random.Random(seed))
    deadline = created + policy.horizon
    now = created
    for failures, retry_after in enumerate(answers, 1):
        next_at = policy.next_attempt_at(created, failures, now, deadline)
        if next_at is not None and retry_after is not None:
            wanted = now + retry_after
            next_at = honour_retry_after(next_at, now, float(retry_after), deadline)
            assert next_at is None or next_at >= wanted
            assert next_at is not None or wanted > deadline
        if next_at is None:
            return
        assert now <= next_at <= deadline and math.isfinite(next_at)
        now = next_at

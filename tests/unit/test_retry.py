"""The webhook retry schedule: `openwaba.domain.retry.RetryPolicy`.

The property tests replay what the dispatcher does for a delivery that always
fails: the first attempt is at `created_at`, and after the n-th failure the
next attempt is at `next_attempt_at(created_at, n, now)` where `now` is the
time of the failed attempt (the dispatcher's `_decide`).
"""

from __future__ import annotations

import math
import random
from email.utils import formatdate

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from openwaba.domain.retry import (
    DEFAULT_DELAYS,
    DEFAULT_HORIZON,
    DEFAULT_JITTER,
    RetryPolicy,
    honour_retry_after,
    parse_delays,
    parse_retry_after,
)

# Relative slack for float rounding in `now + delay` at Unix-epoch magnitudes.
_EPS = 1e-6


@st.composite
def policies(draw: st.DrawFn) -> RetryPolicy:
    """Valid policies whose delays are not so small that a simulation never ends."""
    steps = draw(st.lists(st.floats(min_value=0, max_value=5_000), min_size=0, max_size=8))
    first = draw(st.floats(min_value=0.5, max_value=5_000))
    delays: list[float] = []
    total = first
    for step in steps:  # growing: each delay is the previous one plus a step
        delays.append(total)
        total += step
    delays.append(total)
    # keep the number of attempts bounded (a few hundred) so simulations stay fast
    horizon = draw(st.floats(min_value=1, max_value=max(1.0, total * 300)))
    jitter = draw(st.floats(min_value=0, max_value=1))
    seed = draw(st.integers(min_value=0, max_value=2**32 - 1))
    return RetryPolicy(tuple(delays), horizon, jitter, random.Random(seed))


created_ats = st.floats(min_value=0, max_value=2_000_000_000)


def simulate(policy: RetryPolicy, created_at: float) -> list[tuple[float, float | None]]:
    """Attempt times of an always-failing delivery, each with its base delay (None for the first)."""
    attempts: list[tuple[float, float | None]] = [(created_at, None)]
    now = created_at
    failures = 0
    while True:
        failures += 1
        assert failures < 100_000, "the schedule does not end"
        next_at = policy.next_attempt_at(created_at, failures, now)
        if next_at is None:
            return attempts
        attempts.append((next_at, policy.base_delay(failures)))
        now = next_at


@settings(max_examples=300, deadline=None)
@given(policy=policies(), created_at=created_ats)
def test_always_failing_delivery_follows_the_schedule(policy: RetryPolicy, created_at: float) -> None:
    deadline = created_at + policy.horizon
    attempts = simulate(policy, created_at)
    times = [t for t, _ in attempts]
    bases = [b for _, b in attempts[1:]]
    slack = _EPS * max(1.0, abs(deadline))

    # the base delays never shrink
    assert bases == sorted(bases)
    # no attempt after the horizon, and time moves forward
    assert all(t <= deadline for t in times)
    assert times == sorted(times)
    # each gap is the base delay plus at most `jitter` of it; only the last may be cut short by the horizon
    for index, ((previous, _), (current, base)) in enumerate(zip(attempts, attempts[1:])):
        assert base is not None
        gap = current - previous
        assert gap <= base * (1 + policy.jitter) + slack
        clipped = current == deadline
        if not clipped:
            assert gap >= base - slack
        else:
            assert index == len(attempts) - 2, "only the final attempt can sit on the horizon"
            assert gap <= base * (1 + policy.jitter) + slack
    # the schedule ends with one attempt at the horizon itself
    assert times[-1] == deadline
    # and once now >= deadline, there is nothing more
    assert policy.next_attempt_at(created_at, len(attempts), deadline) is None
    assert policy.next_attempt_at(created_at, len(attempts), deadline + 1) is None


@settings(max_examples=300)
@given(
    policy=policies(),
    created_at=created_ats,
    failures=st.integers(min_value=1, max_value=50),
    elapsed=st.floats(min_value=0, max_value=1, exclude_max=True),
)
def test_next_attempt_lies_in_the_jitter_window(
    policy: RetryPolicy, created_at: float, failures: int, elapsed: float
) -> None:
    deadline = created_at + policy.horizon
    now = created_at + elapsed * policy.horizon
    assume(now < deadline)
    base = policy.base_delay(failures)
    next_at = policy.next_attempt_at(created_at, failures, now)
    assert next_at is not None
    slack = _EPS * max(1.0, abs(deadline))
    assert next_at <= deadline
    assert next_at >= min(now + base, deadline) - slack
    assert next_at <= now + base * (1 + policy.jitter) + slack


@given(policy=policies(), created_at=created_ats, past=st.floats(min_value=0, max_value=1e6))
def test_nothing_after_the_deadline(policy: RetryPolicy, created_at: float, past: float) -> None:
    now = created_at + policy.horizon + past
    for failures in (1, 2, len(policy.delays), len(policy.delays) + 5):
        assert policy.next_attempt_at(created_at, failures, now) is None


@given(policy=policies(), failures=st.integers(min_value=1, max_value=200))
def test_base_delays_never_shrink_and_repeat_the_last(policy: RetryPolicy, failures: int) -> None:
    assert policy.base_delay(failures) <= policy.base_delay(failures + 1)
    if failures >= len(policy.delays):
        assert policy.base_delay(failures) == policy.delays[-1]
    else:
        assert policy.base_delay(failures) == policy.delays[failures - 1]


@given(
    delays=st.lists(st.floats(min_value=0, max_value=1e5), min_size=1, max_size=6)
    .map(sorted)
    .filter(lambda ds: ds[-1] > 0),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_zero_jitter_is_deterministic(delays: list[float], seed: int) -> None:
    policy = RetryPolicy(tuple(delays), 1e9, 0.0, random.Random(seed))
    for failures in range(1, len(delays) + 3):
        assert policy.next_attempt_at(1_000.0, failures, 1_000.0) == 1_000.0 + policy.base_delay(failures)


@settings(max_examples=50)
@given(jitter=st.floats(min_value=0.05, max_value=1), seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_jitter_spreads_retries(jitter: float, seed: int) -> None:
    policy = RetryPolicy((100.0,), 1e9, jitter, random.Random(seed))
    times = {policy.next_attempt_at(0.0, 1, 0.0) for _ in range(50)}
    assert len(times) > 1
    assert all(100.0 <= t <= 100.0 * (1 + jitter) for t in times if t is not None)


# --- examples -----------------------------------------------------------------------------


def test_default_policy_values() -> None:
    policy = RetryPolicy()
    assert policy.delays == DEFAULT_DELAYS
    assert policy.horizon == DEFAULT_HORIZON == 86_400
    assert policy.jitter == DEFAULT_JITTER


def test_default_schedule_starts_5_30_120_seconds() -> None:
    policy = RetryPolicy(jitter=0)
    created = 1_700_000_000.0
    first = policy.next_attempt_at(created, 1, created)
    assert first == created + 5
    second = policy.next_attempt_at(created, 2, first)
    assert second == first + 30
    third = policy.next_attempt_at(created, 3, second)
    assert third == second + 120
    assert [policy.base_delay(n) for n in range(1, 4)] == [5, 30, 120]


def test_default_schedule_ends_at_the_24h_horizon() -> None:
    policy = RetryPolicy(jitter=0)
    attempts = simulate(policy, 0.0)
    times = [t for t, _ in attempts]
    assert times[:5] == [0, 5, 35, 155, 755]
    assert times[-1] == DEFAULT_HORIZON
    # 5 + 30 + 120 + 600 + 1800 + 3600 + 7200 + 14400 = 27755; then 28800 repeats
    assert times[9] == 27_755 + 28_800
    assert len(times) == 12  # first try, 9 scheduled, one more at 85355, one at the horizon
    assert policy.next_attempt_at(0.0, len(times), DEFAULT_HORIZON) is None


def test_final_attempt_is_clipped_to_the_horizon() -> None:
    policy = RetryPolicy((10,), horizon=25, jitter=0)
    assert policy.next_attempt_at(0, 1, 0) == 10
    assert policy.next_attempt_at(0, 2, 10) == 20
    assert policy.next_attempt_at(0, 3, 20) == 25  # 30 would overshoot
    assert policy.next_attempt_at(0, 4, 25) is None


def test_late_attempt_gets_no_retry() -> None:
    """An attempt that finishes after the horizon (slow receiver) is the last one."""
    policy = RetryPolicy((10,), horizon=25, jitter=0)
    assert policy.next_attempt_at(0, 3, 25.5) is None


def test_equal_delays_are_allowed() -> None:
    RetryPolicy((5, 5, 5))
    RetryPolicy((0, 0, 1))


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param(dict(delays=(30, 5)), id="shrinking"),
        pytest.param(dict(delays=(5, 30, 120, 60)), id="shrinking-later"),
        pytest.param(dict(delays=(-1, 5)), id="negative"),
        pytest.param(dict(delays=(5, -30)), id="negative-later"),
        pytest.param(dict(delays=()), id="empty"),
        pytest.param(dict(jitter=1.01), id="jitter-above-1"),
        pytest.param(dict(jitter=2), id="jitter-2"),
        pytest.param(dict(jitter=-0.1), id="jitter-negative"),
        pytest.param(dict(jitter=math.nan), id="jitter-nan"),
        pytest.param(dict(horizon=0), id="horizon-zero"),
        pytest.param(dict(horizon=-5), id="horizon-negative"),
        pytest.param(dict(delays=(0.0, 0.0)), id="only-zero-delays"),
    ],
)
def test_invalid_policies_raise(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


@given(
    delays=st.lists(st.floats(min_value=-1e6, max_value=1e6), min_size=2, max_size=6),
)
@example(delays=[1.0, 0.5])
def test_any_shrinking_or_negative_delays_raise(delays: list[float]) -> None:
    # the last delay repeats until the horizon, so it must be positive (no busy retry loop)
    valid = all(d >= 0 for d in delays) and delays == sorted(delays) and delays[-1] > 0
    if valid:
        RetryPolicy(tuple(delays))
    else:
        with pytest.raises(ValueError):
            RetryPolicy(tuple(delays))


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param(dict(horizon=math.nan), id="horizon-nan"),
        pytest.param(dict(delays=(5, math.nan)), id="delay-nan"),
        pytest.param(dict(delays=(math.nan, 5)), id="delay-nan-first"),
        pytest.param(dict(delays=(5, math.inf)), id="delay-inf"),
        pytest.param(dict(horizon=math.inf), id="horizon-inf"),
    ],
)
def test_degenerate_policies_raise(kwargs: dict[str, object]) -> None:
    """NaN compares False with everything, so it once slipped through (e.g. parse_delays('5,nan')):
    a NaN horizon never dead-letters, a NaN delay stores a NULL next_attempt_at that is never due."""
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("5,30,120", (5.0, 30.0, 120.0), id="plain"),
        pytest.param(" 5 , 30 ,", (5.0, 30.0), id="spaces-trailing-comma"),
        pytest.param("0.5", (0.5,), id="fraction"),
        pytest.param("", (), id="empty"),
    ],
)
def test_parse_delays(text: str, expected: tuple[float, ...]) -> None:
    assert parse_delays(text) == expected


# --- explicit deadlines and Retry-After -------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(policy=policies(), created_at=created_ats, fraction=st.floats(min_value=0.001, max_value=1))
def test_an_explicit_deadline_replaces_the_horizon(policy: RetryPolicy, created_at: float, fraction: float) -> None:
    """Per-channel horizons and replays pass `deadline`; the schedule then ends there instead."""
    deadline = created_at + fraction * policy.delays[-1] * 300  # a few hundred attempts at most
    now, failures = created_at, 0
    while True:
        failures += 1
        assert failures < 100_000
        next_at = policy.next_attempt_at(created_at, failures, now, deadline)
        if next_at is None:
            break
        assert now < next_at <= deadline
        now = next_at
    assert now == deadline


def test_replay_deadline_may_lie_past_the_horizon() -> None:
    policy = RetryPolicy((10,), horizon=25, jitter=0)
    assert policy.next_attempt_at(0, 1, 100, deadline=200) == 110
    assert policy.next_attempt_at(0, 1, 195, deadline=200) == 200
    assert policy.next_attempt_at(0, 1, 200, deadline=200) is None


@pytest.mark.parametrize(
    ("scheduled", "now", "retry_after", "deadline", "expected"),
    [
        pytest.param(105.0, 100.0, 60.0, 1000.0, 160.0, id="later-than-scheduled"),
        pytest.param(200.0, 100.0, 60.0, 1000.0, 200.0, id="scheduled-already-later"),
        pytest.param(105.0, 100.0, 0.0, 1000.0, 105.0, id="zero"),
        pytest.param(105.0, 100.0, 900.0, 1000.0, 1000.0, id="exactly-the-deadline"),
        pytest.param(105.0, 100.0, 901.0, 1000.0, None, id="past-the-deadline-dead-letters"),
        pytest.param(None, 100.0, 5.0, 1000.0, None, id="already-dead"),
        pytest.param(105.0, 100.0, math.inf, 1000.0, None, id="infinite"),
    ],
)
def test_honour_retry_after(
    scheduled: float | None, now: float, retry_after: float, deadline: float, expected: float | None
) -> None:
    assert honour_retry_after(scheduled, now, retry_after, deadline) == expected


@given(
    scheduled=st.one_of(st.none(), st.floats(min_value=0, max_value=1e6)),
    now=st.floats(min_value=0, max_value=1e6),
    retry_after=st.floats(min_value=0, max_value=1e6),
    deadline=st.floats(min_value=0, max_value=2e6),
)
def test_honour_retry_after_never_earlier_than_asked_nor_past_the_deadline(
    scheduled: float | None, now: float, retry_after: float, deadline: float
) -> None:
    result = honour_retry_after(scheduled, now, retry_after, deadline)
    if result is not None:
        assert result >= now + retry_after
        assert scheduled is not None and result >= scheduled
        assert result <= max(deadline, scheduled)


NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("120", 120.0, id="seconds"),
        pytest.param(" 5 ", 5.0, id="spaces"),
        pytest.param("0", 0.0, id="zero"),
        pytest.param(formatdate(NOW + 90, usegmt=True), 90.0, id="http-date"),
        pytest.param("Wed, 21 Oct 2015 07:28:00 GMT", 0.0, id="http-date-in-the-past"),
        pytest.param(None, None, id="absent"),
        pytest.param("", None, id="empty"),
        pytest.param("soon", None, id="garbage"),
        pytest.param("-1", None, id="negative"),
        pytest.param("1.5", None, id="fraction"),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    result = parse_retry_after(value, NOW)
    if expected is None:
        assert result is None
    else:
        assert result == pytest.approx(expected)


@given(value=st.text(max_size=40))
@example(value="²")
@example(value="¹²³")
def test_parse_retry_after_never_raises(value: str) -> None:
    """'²'.isdigit() is True but float('²') fails; a ValueError here would escape Dispatcher._attempt."""
    result = parse_retry_after(value, NOW)
    assert result is None or result >= 0


def test_base_delay_needs_a_failure() -> None:
    with pytest.raises(ValueError):
        RetryPolicy().base_delay(0)

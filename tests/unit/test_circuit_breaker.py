"""The dispatcher's circuit breaker (`openwaba.services.delivery.CircuitBreaker`).

`admit(destination, now)` answers None ("attempt it now") or the time to
postpone the delivery to; `record(destination, succeeded, now)` notes an
outcome and answers True when a success closed an open circuit.

The property tests drive it with arbitrary interleavings of admits and
outcomes over several destinations, and check it against the rules the README
states: a destination failing without a break for `open_after` seconds is
paused; while paused, at most one probe per `probe_every` seconds; the first
success resumes everything.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openwaba.services.delivery import CircuitBreaker

OPEN_AFTER, PROBE_EVERY = 60.0, 30.0
DEST, OTHER = 1, 2


@pytest.fixture
def breaker() -> CircuitBreaker:
    return CircuitBreaker(OPEN_AFTER, PROBE_EVERY)


# --- the state machine, step by step ----------------------------------------------------------------


def test_a_fresh_destination_is_always_admitted(breaker: CircuitBreaker) -> None:
    for now in (0.0, 1.0, 1e9):
        assert not breaker.is_open(DEST, now)
        assert breaker.admit(DEST, now) is None


def test_failures_shorter_than_open_after_do_not_pause(breaker: CircuitBreaker) -> None:
    breaker.record(DEST, False, 100.0)
    breaker.record(DEST, False, 130.0)
    assert breaker.admit(DEST, 159.9) is None
    assert not breaker.is_open(DEST, 159.9)


def test_open_after_continuous_failure_then_one_probe_per_interval(breaker: CircuitBreaker) -> None:
    assert breaker.record(DEST, False, 100.0) is False
    assert breaker.is_open(DEST, 160.0)
    assert breaker.admit(DEST, 160.0) is None  # the probe
    assert breaker.admit(DEST, 160.0) == 190.0  # everything else waits for the next probe
    assert breaker.admit(DEST, 175.0) == 190.0
    breaker.record(DEST, False, 161.0)  # the probe failed: no extra probe
    assert breaker.admit(DEST, 189.9) == 190.0
    assert breaker.admit(DEST, 190.0) is None  # the next probe
    assert breaker.admit(DEST, 190.0) == 220.0
    # A probe slot that nobody used does not accumulate: one probe, then wait again.
    assert breaker.admit(DEST, 300.0) is None
    assert breaker.admit(DEST, 300.0) == 330.0


def test_failures_while_open_do_not_restart_the_failure_period(breaker: CircuitBreaker) -> None:
    breaker.record(DEST, False, 0.0)
    for t in range(1, 200, 7):
        breaker.record(DEST, False, float(t))
    assert breaker.is_open(DEST, 60.0)


def test_a_success_closes_and_resumes_everything(breaker: CircuitBreaker) -> None:
    breaker.record(DEST, False, 0.0)
    assert breaker.admit(DEST, 70.0) is None
    assert breaker.admit(DEST, 70.0) == 100.0
    assert breaker.record(DEST, True, 71.0) is True  # it was open: the caller resumes the postponed ones
    assert not breaker.is_open(DEST, 71.0)
    assert [breaker.admit(DEST, 71.0) for _ in range(5)] == [None] * 5


def test_a_success_before_opening_resets_the_failure_period(breaker: CircuitBreaker) -> None:
    breaker.record(DEST, False, 0.0)
    assert breaker.record(DEST, True, 50.0) is False  # was failing, never open
    breaker.record(DEST, False, 55.0)
    assert breaker.admit(DEST, 100.0) is None and breaker.admit(DEST, 100.0) is None  # 45 s < 60 s
    assert breaker.is_open(DEST, 115.0)


def test_a_circuit_that_opens_again_gets_a_probe_at_once(breaker: CircuitBreaker) -> None:
    breaker.record(DEST, False, 0.0)
    assert breaker.admit(DEST, 60.0) is None
    breaker.record(DEST, True, 61.0)
    breaker.record(DEST, False, 62.0)
    assert breaker.admit(DEST, 122.0) is None  # no stale "next probe" from the previous outage
    assert breaker.admit(DEST, 122.0) == 152.0


def test_destinations_are_independent(breaker: CircuitBreaker) -> None:
    breaker.record(DEST, False, 0.0)
    assert breaker.admit(DEST, 100.0) is None
    assert breaker.admit(DEST, 100.0) == 130.0
    assert breaker.admit(OTHER, 100.0) is None and breaker.admit(OTHER, 100.0) is None
    breaker.record(OTHER, True, 100.0)
    assert breaker.admit(DEST, 101.0) == 130.0
    breaker.record(DEST, True, 101.0)
    assert breaker.admit(DEST, 101.0) is None


def test_the_defaults_are_the_documented_ones() -> None:
    breaker = CircuitBreaker()
    breaker.record(DEST, False, 0.0)
    assert not breaker.is_open(DEST, 1799.0)
    assert breaker.admit(DEST, 1800.0) is None
    assert breaker.admit(DEST, 1800.0) == 1860.0


# --- properties over arbitrary event sequences ---------------------------------------------------------


@dataclass
class Spec:
    """The README's rules, per destination, written independently of the implementation."""

    open_after: float
    probe_every: float
    failing_since: dict[int, float] = field(default_factory=dict)
    last_probe: dict[int, float] = field(default_factory=dict)  # in the current outage

    def is_open(self, dest: int, now: float) -> bool:
        return dest in self.failing_since and now - self.failing_since[dest] >= self.open_after

    def admit(self, dest: int, now: float) -> bool:
        if not self.is_open(dest, now):
            return True
        last = self.last_probe.get(dest)
        if last is None or now - last >= self.probe_every:
            self.last_probe[dest] = now
            return True
        return False

    def record(self, dest: int, succeeded: bool, now: float) -> bool:
        if not succeeded:
            self.failing_since.setdefault(dest, now)
            return False
        was_open = self.is_open(dest, now)
        self.failing_since.pop(dest, None)
        self.last_probe.pop(dest, None)
        return was_open


steps = st.lists(
    st.tuples(
        st.sampled_from(["admit", "admit", "admit", "fail", "fail", "succeed"]),
        st.integers(min_value=1, max_value=3),  # destination
        st.integers(min_value=0, max_value=40) | st.just(0),  # seconds since the previous step
    ),
    max_size=200,
)


@settings(max_examples=300, deadline=None)
@given(
    open_after=st.integers(min_value=0, max_value=120),
    probe_every=st.integers(min_value=1, max_value=90),
    ops=steps,
)
def test_breaker_follows_the_rules(open_after: int, probe_every: int, ops: list[tuple[str, int, int]]) -> None:
    breaker = CircuitBreaker(float(open_after), float(probe_every))
    spec = Spec(float(open_after), float(probe_every))
    now = 1_700_000_000.0  # integers at this magnitude are exact in floats
    probes: dict[int, list[float]] = {}  # admits while open, per destination, in the current outage
    for op, dest, dt in ops:
        now += dt
        if op == "admit":
            was_open = breaker.is_open(dest, now)
            assert was_open == spec.is_open(dest, now)
            answer = breaker.admit(dest, now)
            assert (answer is None) == spec.admit(dest, now), (op, dest, now)
            if answer is not None:
                # postponed: only ever while open, to a later time, at most one interval away
                assert was_open
                assert now < answer <= now + probe_every
            elif was_open:
                earlier = probes.setdefault(dest, [])
                # never more than one probe per probe interval while open
                assert not earlier or now - earlier[-1] >= probe_every, (earlier, now)
                earlier.append(now)
        else:
            succeeded = op == "succeed"
            closed = breaker.record(dest, succeeded, now)
            assert closed == spec.record(dest, succeeded, now)
            if succeeded:
                # a success always closes: everything is admitted again, at once
                probes.pop(dest, None)
                assert not breaker.is_open(dest, now)
                assert breaker.admit(dest, now) is None and breaker.admit(dest, now) is None
                spec.admit(dest, now)
                spec.admit(dest, now)


@settings(max_examples=200, deadline=None)
@given(
    open_after=st.floats(min_value=0, max_value=4000, allow_nan=False),
    probe_every=st.floats(min_value=0.001, max_value=600, allow_nan=False),
    start=st.floats(min_value=0, max_value=2e9, allow_nan=False),
    gaps=st.lists(st.floats(min_value=0, max_value=100, allow_nan=False), min_size=1, max_size=300),
)
def test_a_batch_of_due_deliveries_yields_a_single_probe(open_after: float, probe_every: float, start: float,
                                                         gaps: list[float]) -> None:
    """Whatever the timing, many deliveries claimed at the same instant while open get one probe between them."""
    breaker = CircuitBreaker(open_after, probe_every)
    breaker.record(DEST, False, start)
    now = start + open_after + 0.001  # (clear of float rounding in `now - since`)
    assert breaker.is_open(DEST, now)
    admitted_at: list[float] = []
    for gap in gaps:
        now += gap
        batch = [breaker.admit(DEST, now) for _ in range(5)]
        assert batch.count(None) <= 1
        if None in batch:
            assert batch[0] is None  # the first of the batch is the probe
            admitted_at.append(now)
        for answer in batch:
            assert answer is None or answer > now
        breaker.record(DEST, False, now)
    spacing = [b - a for a, b in zip(admitted_at, admitted_at[1:])]
    assert all(s >= probe_every * (1 - 1e-9) - 1e-6 for s in spacing), spacing

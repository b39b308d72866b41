"""Sandbox scenarios: what the simulated WhatsApp network does to a number's messages.

A scenario reproduces on demand what bites integrations in production: statuses
late, missing, out of order or posted twice, messages that fail with a chosen
WhatsApp error, users who never read. It is set per number and per simulated user
(the user's settings win, field by field). Random choices draw from a generator
seeded per number, so a seed makes a run repeatable.

Everything here is pure: parsing, merging and planning one message's fate.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from openwaba.domain.errors import CATALOGUE, RequestError
from openwaba.domain.scripts import ScriptStep, parse_script

STEPS = ("sent", "delivered", "read")
_WEEK = 7 * 86400

# Codes WhatsApp answers in the HTTP response; every other code arrives in a failed status webhook.
SYNCHRONOUS_CODES = frozenset({130429, 131056, 131048, 131031, 131042, 131000, 131016, 131057, 368})
# What a scenario may inject: delivery outcomes and the errors integrations must handle.
INJECTABLE_CODES = frozenset({131026, 131047, 131049, 131050, 130472, 131053, 132018, 130403}) | SYNCHRONOUS_CODES


@dataclass(frozen=True, slots=True)
class Delay:
    """Seconds after acceptance: fixed when low == high, else uniform within [low, high]."""

    low: float
    high: float

    def draw(self, rng: random.Random) -> float:
        return self.low if self.low == self.high else rng.uniform(self.low, self.high)


@dataclass(frozen=True, slots=True)
class Failure:
    """Outbound messages fail with `code`: always, with a probability, or for the next `remaining` messages."""

    code: int
    probability: float = 1.0
    remaining: int | None = None  # None: no count, the probability decides

    @property
    def synchronous(self) -> bool:
        return self.code in SYNCHRONOUS_CODES


@dataclass(frozen=True, slots=True)
class Rule:
    """The simulated user answers a business message containing `contains` (any case) with `reply`."""

    contains: str
    reply: str


@dataclass(frozen=True, slots=True)
class Scenario:
    """One layer of settings; None means "not set here" so layers can be merged."""

    delays: Mapping[str, Delay] | None = None
    drop: frozenset[str] | None = None  # statuses that never come
    out_of_order: bool | None = None  # `read` is posted before `delivered`
    duplicates: int | None = None  # each status webhook is posted this many extra times
    failure: Failure | None = None
    seed: int | None = None
    rules: tuple[Rule, ...] | None = None  # the user's automatic answers, first match wins
    script: tuple[ScriptStep, ...] | None = None  # the business messages the user expects, in order

    def over(self, base: Scenario) -> Scenario:
        """This layer on top of `base`: each field set here wins."""
        given = {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}
        return replace(base, **given)

    def view(self) -> dict[str, Any]:
        """The JSON form, as accepted by :func:`parse_scenario` (unset fields left out)."""
        out: dict[str, Any] = {}
        if self.delays is not None:
            out["delays"] = {k: d.low if d.low == d.high else [d.low, d.high] for k, d in self.delays.items()}
        if self.drop is not None:
            out["drop"] = sorted(self.drop, key=STEPS.index)
        for name in ("out_of_order", "duplicates", "seed"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        if self.rules is not None:
            out["rules"] = [{"contains": r.contains, "reply": r.reply} for r in self.rules]
        if self.script is not None:
            out["script"] = [step.view() for step in self.script]
        if self.failure is not None:
            fail: dict[str, Any] = {"code": self.failure.code}
            if self.failure.remaining is not None:
                fail["next"] = self.failure.remaining
            else:
                fail["probability"] = self.failure.probability
            out["fail"] = fail
        return out


@dataclass(frozen=True, slots=True)
class StatusStep:
    """One status webhook to produce: which, when (seconds after acceptance), and what was injected."""

    status: str
    delay: float
    injected: tuple[str, ...] = field(default=())


def parse_scenario(body: Any) -> Scenario:
    """A scenario from its JSON form; RequestError (100) naming the field otherwise."""
    if not isinstance(body, dict):
        raise RequestError(100, "A scenario is a JSON object, e.g. {\"drop\": [\"read\"]}")
    known = {"delays", "drop", "never_reads", "skip_delivered", "out_of_order", "duplicates", "fail", "seed"}
    known |= {"rules", "script"}
    unknown = sorted(set(body) - known)
    if unknown:
        raise RequestError(100, f"Unknown scenario field '{unknown[0]}'; known fields: {', '.join(sorted(known))}")
    drop = _drop(body)
    return Scenario(
        delays=_delays(body["delays"]) if body.get("delays") is not None else None,
        drop=drop,
        out_of_order=_flag(body, "out_of_order"),
        duplicates=_count(body, "duplicates", 0, 5),
        failure=_failure(body["fail"]) if body.get("fail") is not None else None,
        seed=_count(body, "seed", 0, 2**63 - 1),
        rules=_rules(body["rules"]) if body.get("rules") is not None else None,
        script=parse_script(body["script"]) if body.get("script") is not None else None,
    )


def auto_reply(scenario: Scenario, text: str) -> str | None:
    """The user's answer to a business message reading `text`, if a rule matches."""
    lowered = text.lower()
    return next((r.reply for r in scenario.rules or () if r.contains.lower() in lowered), None)


def plan_statuses(
    scenario: Scenario, base_delays: tuple[float, ...], steps: tuple[str, ...], rng: random.Random
) -> list[StatusStep]:
    """The status webhooks of one delivered message, in posting order."""
    delays = scenario.delays or {}
    times = {step: (delays[step].draw(rng) if step in delays else base) for step, base in zip(steps, base_delays)}
    ordered = sorted(times.values())  # a status never happens before the one it follows
    planned = [StatusStep(step, ordered[i], ("delay",) if step in delays else ()) for i, step in enumerate(steps)]
    dropped = scenario.drop or frozenset()
    kept = [s for s in planned if s.status not in dropped or s.status == "sent"]
    if scenario.out_of_order and {"delivered", "read"} <= {s.status for s in kept}:
        kept = _swap_delivered_and_read(kept)
    copies = scenario.duplicates or 0
    # A duplicate is the same webhook posted again just after the original, as WhatsApp occasionally does.
    extra = [
        replace(s, delay=s.delay + 0.002 * n, injected=(*s.injected, "duplicate"))
        for s in kept
        for n in range(1, copies + 1)
    ]
    return sorted(kept + extra, key=lambda s: s.delay)


def draw_failure(failure: Failure | None, rng: random.Random) -> tuple[bool, Failure | None]:
    """Whether this message fails, and the failure setting to keep (a `next` count goes down)."""
    if failure is None:
        return False, None
    if failure.remaining is not None:
        if failure.remaining <= 0:
            return False, None
        left = failure.remaining - 1
        return True, (replace(failure, remaining=left) if left else None)
    return (failure.probability >= 1.0 or rng.random() < failure.probability), failure


def _swap_delivered_and_read(steps: list[StatusStep]) -> list[StatusStep]:
    by_status = {s.status: s for s in steps}
    delivered, read = by_status["delivered"], by_status["read"]
    # `read` goes out at delivered's time and `delivered` just after it: the receiver sees read first.
    swapped = {
        "read": replace(read, delay=delivered.delay, injected=(*read.injected, "out_of_order")),
        "delivered": replace(delivered, delay=delivered.delay + 0.001, injected=(*delivered.injected, "out_of_order")),
    }
    return sorted((swapped.get(s.status, s) for s in steps), key=lambda s: s.delay)


def _delays(raw: Any) -> dict[str, Delay]:
    if not isinstance(raw, dict) or not set(raw) <= set(STEPS):
        raise RequestError(100, "'delays' maps sent/delivered/read to seconds or [low, high]")
    out: dict[str, Delay] = {}
    for step, value in raw.items():
        if _number(value):
            low = high = float(value)
        elif _pair(value):
            low, high = float(value[0]), float(value[1])
        else:
            low, high = -1.0, -1.0
        if not 0 <= low <= high <= _WEEK:
            raise RequestError(100, f"'delays.{step}' must be seconds (0 to {_WEEK}) or [low, high] with low <= high")
        out[step] = Delay(low, high)
    return out


def _rules(raw: Any) -> tuple[Rule, ...]:
    shape = "'rules' is a list of {\"contains\": \"price\", \"reply\": \"How much is it?\"}"
    if not isinstance(raw, list) or len(raw) > 100:
        raise RequestError(100, shape + " (at most 100)")
    rules = []
    for rule in raw:
        if not isinstance(rule, dict) or set(rule) != {"contains", "reply"}:
            raise RequestError(100, shape)
        contains, reply = rule["contains"], rule["reply"]
        if not isinstance(contains, str) or not isinstance(reply, str) or not reply or len(reply) > 4096:
            raise RequestError(100, "'rules[].contains' is a string ('' matches every message); 'reply' 1-4096 chars")
        rules.append(Rule(contains, reply))
    return tuple(rules)


def _drop(body: dict[str, Any]) -> frozenset[str] | None:
    raw = body.get("drop")
    # Checked item by item: set() would raise on unhashable items such as {}.
    if raw is not None and (not isinstance(raw, list) or not all(s in ("delivered", "read") for s in raw)):
        raise RequestError(100, "'drop' lists statuses that never come: \"delivered\" and/or \"read\"")
    drop = set(raw or ())
    if _flag(body, "never_reads"):
        drop.add("read")
    if _flag(body, "skip_delivered"):
        drop.add("delivered")
    given = raw is not None or body.get("never_reads") is not None or body.get("skip_delivered") is not None
    return frozenset(drop) if given else None


def _failure(raw: Any) -> Failure:
    if not isinstance(raw, dict) or not set(raw) <= {"code", "probability", "next"}:
        raise RequestError(100, "'fail' is {\"code\": 131026} with optional \"probability\" (0-1) or \"next\" (count)")
    code = raw.get("code")
    if not isinstance(code, int) or code not in INJECTABLE_CODES or code not in CATALOGUE:
        allowed = ", ".join(str(c) for c in sorted(INJECTABLE_CODES & CATALOGUE.keys()))
        raise RequestError(100, f"'fail.code' must be one of {allowed}")
    probability = raw.get("probability", 1.0)
    if not _number(probability) or not 0 <= probability <= 1:
        raise RequestError(100, "'fail.probability' must be a number from 0 to 1")
    if "next" in raw and "probability" in raw:
        raise RequestError(100, "'fail' takes either 'probability' or 'next', not both")
    remaining = _count(raw, "next", 1, 10**6, label="fail.next")
    return Failure(code, float(probability), remaining)


def _flag(body: dict[str, Any], name: str) -> bool | None:
    value = body.get(name)
    if value is not None and not isinstance(value, bool):
        raise RequestError(100, f"'{name}' must be true or false")
    return value


def _count(body: dict[str, Any], name: str, low: int, high: int, label: str | None = None) -> int | None:
    value = body.get(name)
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high):
        raise RequestError(100, f"'{label or name}' must be a whole number from {low} to {high}")
    return value


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _pair(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and all(_number(v) for v in value)

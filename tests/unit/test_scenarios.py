"""Sandbox scenarios (`openwaba.domain.scenarios`): parsing, layering, and planning one message's fate.

Validation is table-driven: every field, valid and invalid, with the WhatsApp
error code and a message naming the field. The property tests check the promises
the README makes: a scenario's JSON view parses back to it; planned statuses keep
their order in time (unless `out_of_order`, which swaps only read and delivered),
lose exactly the dropped ones, come 1 + duplicates times each, at delays within
the configured bounds, the same for the same seed; a `next: N` failure hits N
times then never, a probability p hits about p of the messages.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openwaba.domain.errors import RequestError
from openwaba.domain.scenarios import (
    INJECTABLE_CODES,
    STEPS,
    SYNCHRONOUS_CODES,
    Delay,
    Failure,
    Rule,
    Scenario,
    StatusStep,
    auto_reply,
    draw_failure,
    parse_scenario,
    plan_statuses,
)
from openwaba.domain.scripts import ScriptStep

WEEK = 7 * 86400
BASE = (1.0, 2.0, 3.0)  # the sandbox's default sent/delivered/read delays, as configured
# The codes the README documents, split by how they reach the integration.
DOCUMENTED_SYNCHRONOUS = (130429, 131056, 131048, 131031, 131042, 131000, 131016, 131057, 368)
DOCUMENTED_WEBHOOK = (131026, 131047, 131049, 131050, 130472, 131053, 132018, 130403)


def refused(body: Any) -> RequestError:
    with pytest.raises(RequestError) as info:
        parse_scenario(body)
    return info.value


# --- validation: accepted forms --------------------------------------------------------------------

VALID: list[tuple[str, dict[str, Any], Scenario]] = [
    ("empty", {}, Scenario()),
    ("delay-fixed-int", {"delays": {"sent": 5}}, Scenario(delays={"sent": Delay(5.0, 5.0)})),
    ("delay-fixed-float", {"delays": {"read": 0.5}}, Scenario(delays={"read": Delay(0.5, 0.5)})),
    ("delay-range", {"delays": {"delivered": [1, 3.5]}}, Scenario(delays={"delivered": Delay(1.0, 3.5)})),
    ("delay-degenerate-range", {"delays": {"read": [2, 2]}}, Scenario(delays={"read": Delay(2.0, 2.0)})),
    ("delay-zero", {"delays": {"sent": 0}}, Scenario(delays={"sent": Delay(0.0, 0.0)})),
    ("delay-a-week", {"delays": {"read": [0, WEEK]}}, Scenario(delays={"read": Delay(0.0, float(WEEK))})),
    ("delays-all-steps", {"delays": {"sent": 1, "delivered": 2, "read": [3, 4]}},
     Scenario(delays={"sent": Delay(1.0, 1.0), "delivered": Delay(2.0, 2.0), "read": Delay(3.0, 4.0)})),
    ("delays-empty", {"delays": {}}, Scenario(delays={})),
    ("drop-read", {"drop": ["read"]}, Scenario(drop=frozenset({"read"}))),
    ("drop-delivered", {"drop": ["delivered"]}, Scenario(drop=frozenset({"delivered"}))),
    ("drop-both", {"drop": ["read", "delivered"]}, Scenario(drop=frozenset({"delivered", "read"}))),
    ("drop-empty", {"drop": []}, Scenario(drop=frozenset())),
    ("never-reads", {"never_reads": True}, Scenario(drop=frozenset({"read"}))),
    ("never-reads-false-means-reads", {"never_reads": False}, Scenario(drop=frozenset())),
    ("skip-delivered", {"skip_delivered": True}, Scenario(drop=frozenset({"delivered"}))),
    ("drop-flags-add-up", {"drop": ["delivered"], "never_reads": True},
     Scenario(drop=frozenset({"delivered", "read"}))),
    ("flags-add-to-drop", {"never_reads": True, "skip_delivered": True},
     Scenario(drop=frozenset({"delivered", "read"}))),
    ("out-of-order", {"out_of_order": True}, Scenario(out_of_order=True)),
    ("in-order", {"out_of_order": False}, Scenario(out_of_order=False)),
    ("duplicates-0", {"duplicates": 0}, Scenario(duplicates=0)),
    ("duplicates-5", {"duplicates": 5}, Scenario(duplicates=5)),
    ("fail-code-only", {"fail": {"code": 131026}}, Scenario(failure=Failure(131026, 1.0, None))),
    ("fail-probability-0", {"fail": {"code": 131047, "probability": 0}}, Scenario(failure=Failure(131047, 0.0))),
    ("fail-probability-half", {"fail": {"code": 130429, "probability": 0.5}}, Scenario(failure=Failure(130429, 0.5))),
    ("fail-probability-1", {"fail": {"code": 368, "probability": 1}}, Scenario(failure=Failure(368, 1.0))),
    ("fail-next-1", {"fail": {"code": 131026, "next": 1}}, Scenario(failure=Failure(131026, 1.0, 1))),
    ("fail-next-max", {"fail": {"code": 131026, "next": 10**6}}, Scenario(failure=Failure(131026, 1.0, 10**6))),
    ("seed-0", {"seed": 0}, Scenario(seed=0)),
    ("seed-max", {"seed": 2**63 - 1}, Scenario(seed=2**63 - 1)),
    ("rules", {"rules": [{"contains": "price", "reply": "How much?"}, {"contains": "", "reply": "ok"}]},
     Scenario(rules=(Rule("price", "How much?"), Rule("", "ok")))),
    ("rules-empty", {"rules": []}, Scenario(rules=())),
    ("rules-longest-reply", {"rules": [{"contains": "x", "reply": "r" * 4096}]},
     Scenario(rules=(Rule("x", "r" * 4096),))),
    ("rules-100", {"rules": [{"contains": "x", "reply": "y"}] * 100}, Scenario(rules=(Rule("x", "y"),) * 100)),
    ("script", {"script": [{"expect": "menu", "reply": "2"}, {"expect": {"type": "interactive", "contains": ""}}]},
     Scenario(script=(ScriptStep("menu", None, "2"), ScriptStep("", "interactive")))),
    ("script-empty", {"script": []}, Scenario(script=())),
]


@pytest.mark.parametrize(("body", "expected"), [pytest.param(b, e, id=i) for i, b, e in VALID])
def test_accepted_scenarios(body: dict[str, Any], expected: Scenario) -> None:
    assert parse_scenario(body) == expected


@pytest.mark.parametrize("code", DOCUMENTED_SYNCHRONOUS + DOCUMENTED_WEBHOOK)
def test_every_documented_failure_code_is_accepted(code: int) -> None:
    failure = parse_scenario({"fail": {"code": code}}).failure
    assert failure == Failure(code, 1.0, None)
    # Refused in the HTTP response, or reported later in a `failed` status webhook, as documented.
    assert failure.synchronous == (code in DOCUMENTED_SYNCHRONOUS)


def test_the_documented_codes_are_exactly_the_injectable_ones() -> None:
    assert set(DOCUMENTED_SYNCHRONOUS) == SYNCHRONOUS_CODES
    assert set(DOCUMENTED_SYNCHRONOUS + DOCUMENTED_WEBHOOK) == INJECTABLE_CODES


NULL_MEANS_UNSET = ["drop", "out_of_order", "duplicates", "fail", "seed", "rules", "script", "delays", "never_reads",
                    "skip_delivered"]


@pytest.mark.parametrize("name", NULL_MEANS_UNSET)
def test_null_means_not_set(name: str) -> None:
    assert parse_scenario({name: None}) == Scenario()


# --- validation: refused forms ---------------------------------------------------------------------

# (id, body, WhatsApp error code, text the message must contain: the field it is about)
INVALID: list[tuple[str, Any, int, str]] = [
    ("not-an-object", [], 100, "scenario"),
    ("a-string", "drop read", 100, "scenario"),
    ("unknown-field", {"delay": 1}, 100, "'delay'"),
    ("unknown-field-among-known", {"drop": ["read"], "fails": {}}, 100, "'fails'"),
    ("delays-list", {"delays": [1, 2, 3]}, 100, "'delays'"),
    ("delays-number", {"delays": 5}, 100, "'delays'"),
    ("delays-unknown-status", {"delays": {"failed": 1}}, 100, "'delays'"),
    ("delay-negative", {"delays": {"sent": -1}}, 100, "'delays.sent'"),
    ("delay-over-a-week", {"delays": {"read": WEEK + 1}}, 100, "'delays.read'"),
    ("delay-range-reversed", {"delays": {"delivered": [5, 1]}}, 100, "'delays.delivered'"),
    ("delay-range-negative", {"delays": {"delivered": [-1, 1]}}, 100, "'delays.delivered'"),
    ("delay-range-over-a-week", {"delays": {"read": [1, WEEK + 1]}}, 100, "'delays.read'"),
    ("delay-range-three", {"delays": {"sent": [1, 2, 3]}}, 100, "'delays.sent'"),
    ("delay-range-one", {"delays": {"sent": [1]}}, 100, "'delays.sent'"),
    ("delay-range-string", {"delays": {"sent": [1, "2"]}}, 100, "'delays.sent'"),
    ("delay-range-bool", {"delays": {"sent": [0, True]}}, 100, "'delays.sent'"),
    ("delay-string", {"delays": {"read": "5"}}, 100, "'delays.read'"),
    ("delay-bool", {"delays": {"read": True}}, 100, "'delays.read'"),
    ("delay-null", {"delays": {"read": None}}, 100, "'delays.read'"),
    ("delay-nan", {"delays": {"read": float("nan")}}, 100, "'delays.read'"),
    ("delay-infinite", {"delays": {"read": float("inf")}}, 100, "'delays.read'"),
    ("drop-string", {"drop": "read"}, 100, "'drop'"),
    ("drop-sent", {"drop": ["sent"]}, 100, "'drop'"),
    ("drop-failed", {"drop": ["failed"]}, 100, "'drop'"),
    ("drop-mixed", {"drop": ["read", "seen"]}, 100, "'drop'"),
    ("drop-object", {"drop": {"read": True}}, 100, "'drop'"),
    ("never-reads-string", {"never_reads": "yes"}, 100, "'never_reads'"),
    ("never-reads-int", {"never_reads": 1}, 100, "'never_reads'"),
    ("skip-delivered-string", {"skip_delivered": "true"}, 100, "'skip_delivered'"),
    ("skip-delivered-int", {"skip_delivered": 0}, 100, "'skip_delivered'"),
    ("out-of-order-int", {"out_of_order": 1}, 100, "'out_of_order'"),
    ("out-of-order-string", {"out_of_order": "true"}, 100, "'out_of_order'"),
    ("duplicates-negative", {"duplicates": -1}, 100, "'duplicates'"),
    ("duplicates-6", {"duplicates": 6}, 100, "'duplicates'"),
    ("duplicates-float", {"duplicates": 1.0}, 100, "'duplicates'"),
    ("duplicates-bool", {"duplicates": True}, 100, "'duplicates'"),
    ("duplicates-string", {"duplicates": "2"}, 100, "'duplicates'"),
    ("seed-negative", {"seed": -1}, 100, "'seed'"),
    ("seed-too-big", {"seed": 2**63}, 100, "'seed'"),
    ("seed-float", {"seed": 1.5}, 100, "'seed'"),
    ("seed-bool", {"seed": False}, 100, "'seed'"),
    ("seed-string", {"seed": "42"}, 100, "'seed'"),
    ("fail-code-alone", {"fail": 131026}, 100, "'fail'"),
    ("fail-list", {"fail": [131026]}, 100, "'fail'"),
    ("fail-unknown-key", {"fail": {"code": 131026, "after": 2}}, 100, "'fail'"),
    ("fail-no-code", {"fail": {}}, 100, "'fail.code'"),
    ("fail-code-not-injectable", {"fail": {"code": 100}}, 100, "'fail.code'"),
    ("fail-code-unknown", {"fail": {"code": 999999}}, 100, "'fail.code'"),
    ("fail-code-string", {"fail": {"code": "131026"}}, 100, "'fail.code'"),
    ("fail-code-float", {"fail": {"code": 131026.0}}, 100, "'fail.code'"),
    ("fail-code-bool", {"fail": {"code": True}}, 100, "'fail.code'"),
    ("fail-probability-above-1", {"fail": {"code": 131026, "probability": 1.5}}, 100, "'fail.probability'"),
    ("fail-probability-negative", {"fail": {"code": 131026, "probability": -0.1}}, 100, "'fail.probability'"),
    ("fail-probability-string", {"fail": {"code": 131026, "probability": "0.5"}}, 100, "'fail.probability'"),
    ("fail-probability-bool", {"fail": {"code": 131026, "probability": True}}, 100, "'fail.probability'"),
    ("fail-probability-nan", {"fail": {"code": 131026, "probability": float("nan")}}, 100, "'fail.probability'"),
    ("fail-probability-null", {"fail": {"code": 131026, "probability": None}}, 100, "'fail.probability'"),
    ("drop-unhashable-item", {"drop": [{}]}, 100, "'drop'"),
    ("fail-next-0", {"fail": {"code": 131026, "next": 0}}, 100, "'fail.next'"),
    ("fail-next-negative", {"fail": {"code": 131026, "next": -3}}, 100, "'fail.next'"),
    ("fail-next-too-big", {"fail": {"code": 131026, "next": 10**6 + 1}}, 100, "'fail.next'"),
    ("fail-next-float", {"fail": {"code": 131026, "next": 2.0}}, 100, "'fail.next'"),
    ("fail-next-bool", {"fail": {"code": 131026, "next": True}}, 100, "'fail.next'"),
    ("fail-next-and-probability", {"fail": {"code": 131026, "next": 2, "probability": 0.5}}, 100, "not both"),
    ("rules-object", {"rules": {"contains": "a", "reply": "b"}}, 100, "'rules'"),
    ("rules-too-many", {"rules": [{"contains": "a", "reply": "b"}] * 101}, 100, "'rules'"),
    ("rule-string", {"rules": ["price"]}, 100, "'rules'"),
    ("rule-no-reply", {"rules": [{"contains": "a"}]}, 100, "'rules'"),
    ("rule-no-contains", {"rules": [{"reply": "b"}]}, 100, "'rules'"),
    ("rule-extra-key", {"rules": [{"contains": "a", "reply": "b", "delay": 1}]}, 100, "'rules'"),
    ("rule-contains-number", {"rules": [{"contains": 1, "reply": "b"}]}, 100, "'rules[].contains'"),
    ("rule-contains-null", {"rules": [{"contains": None, "reply": "b"}]}, 100, "'rules[].contains'"),
    ("rule-reply-empty", {"rules": [{"contains": "a", "reply": ""}]}, 100, "'reply'"),
    ("rule-reply-too-long", {"rules": [{"contains": "a", "reply": "r" * 4097}]}, 100, "'reply'"),
    ("rule-reply-object", {"rules": [{"contains": "a", "reply": {"text": "b"}}]}, 100, "'reply'"),
    ("script-object", {"script": {"expect": "menu"}}, 100, "script"),
    ("script-too-long", {"script": [{"expect": "x"}] * 201}, 100, "script"),
    ("script-bad-step", {"script": [{"expect": "a"}, {"expect": 5}]}, 100, "'script[1].expect'"),
    ("script-bad-reply", {"script": [{"expect": "a", "reply": 5}]}, 100, "'script[0].reply'"),
]


@pytest.mark.parametrize(("body", "code", "names"), [pytest.param(b, c, n, id=i) for i, b, c, n in INVALID])
def test_refused_scenarios(body: Any, code: int, names: str) -> None:
    error = refused(body)
    assert error.code == code
    assert names in error.details


def test_a_bad_fail_next_names_the_full_field() -> None:
    assert "'fail.next'" in refused({"fail": {"code": 131026, "next": 0}}).details


def test_unknown_field_lists_the_known_ones() -> None:
    details = refused({"colour": "red"}).details
    for name in ("delays", "drop", "never_reads", "skip_delivered", "out_of_order", "duplicates", "fail", "seed",
                 "rules", "script"):
        assert name in details


# --- the JSON view parses back ---------------------------------------------------------------------

texts = st.text(max_size=20)
delays = st.floats(0, WEEK).flatmap(lambda low: st.one_of(
    st.just(Delay(low, low)), st.floats(low, WEEK).map(lambda high: Delay(low, high))))
# A failure is either "with a probability" or "the next N" (then every one of the N fails).
failures = st.one_of(
    st.builds(Failure, st.sampled_from(sorted(INJECTABLE_CODES)), st.floats(0, 1)),
    st.builds(lambda code, n: Failure(code, 1.0, n), st.sampled_from(sorted(INJECTABLE_CODES)), st.integers(1, 10**6)),
)
actions = st.one_of(
    st.builds(lambda t: {"text": t}, texts.filter(bool)),
    st.builds(lambda i: {"type": "button_reply", "id": i}, texts),
    st.builds(lambda i: {"type": "list_reply", "id": i, "message_id": "wamid.other"}, texts),
    st.builds(lambda n: {"type": "button", "index": n}, st.integers(0, 9)),
    st.builds(lambda la, lo: {"type": "location", "location": {"latitude": la, "longitude": lo}},
              st.floats(-90, 90), st.floats(-180, 180)),
)
script_steps = st.builds(
    ScriptStep,
    texts,
    st.one_of(st.none(), st.sampled_from(["text", "interactive", "template", "image"])),
    st.one_of(st.none(), texts.filter(bool), actions),
)
scenarios = st.builds(
    Scenario,
    delays=st.one_of(st.none(), st.dictionaries(st.sampled_from(STEPS), delays)),
    drop=st.one_of(st.none(), st.frozensets(st.sampled_from(["delivered", "read"]))),
    out_of_order=st.one_of(st.none(), st.booleans()),
    duplicates=st.one_of(st.none(), st.integers(0, 5)),
    failure=st.one_of(st.none(), failures),
    seed=st.one_of(st.none(), st.integers(0, 2**63 - 1)),
    rules=st.one_of(st.none(), st.lists(st.builds(Rule, texts, texts.filter(bool)), max_size=4).map(tuple)),
    script=st.one_of(st.none(), st.lists(script_steps, max_size=4).map(tuple)),
)


@settings(max_examples=300, deadline=None)
@given(scenarios)
def test_the_view_parses_back_to_the_scenario(scenario: Scenario) -> None:
    assert parse_scenario(scenario.view()) == scenario
    # And through the wire: what GET returns can be PUT back as is.
    assert parse_scenario(json.loads(json.dumps(scenario.view()))) == scenario


@pytest.mark.parametrize(("body", "view"), [
    pytest.param({"never_reads": True, "skip_delivered": True}, {"drop": ["delivered", "read"]}, id="flags-as-drop"),
    pytest.param({"drop": ["read", "delivered"]}, {"drop": ["delivered", "read"]}, id="drop-in-status-order"),
    pytest.param({"delays": {"read": [2, 2]}}, {"delays": {"read": 2.0}}, id="degenerate-range-as-number"),
    pytest.param({"fail": {"code": 131026, "next": 3}}, {"fail": {"code": 131026, "next": 3}},
                 id="fail-with-defaults"),
    pytest.param({"fail": None, "rules": None}, {}, id="nulls-left-out"),
])
def test_the_view_is_canonical(body: dict[str, Any], view: dict[str, Any]) -> None:
    assert parse_scenario(body).view() == view


# --- layers --------------------------------------------------------------------------------------

NUMBER = Scenario(drop=frozenset({"read"}), duplicates=2, seed=7, failure=Failure(131026))


@pytest.mark.parametrize(("user", "expected"), [
    pytest.param(Scenario(), NUMBER, id="empty-user-layer"),
    pytest.param(Scenario(drop=frozenset()), Scenario(drop=frozenset(), duplicates=2, seed=7,
                                                      failure=Failure(131026)), id="user-reads-after-all"),
    pytest.param(Scenario(duplicates=0, out_of_order=True),
                 Scenario(drop=frozenset({"read"}), duplicates=0, out_of_order=True, seed=7, failure=Failure(131026)),
                 id="user-fields-win-field-by-field"),
    pytest.param(Scenario(failure=Failure(368, 0.5)),
                 Scenario(drop=frozenset({"read"}), duplicates=2, seed=7, failure=Failure(368, 0.5)),
                 id="user-failure-replaces-whole"),
])
def test_user_layer_over_number_layer(user: Scenario, expected: Scenario) -> None:
    assert user.over(NUMBER) == expected


@given(scenarios, scenarios)
def test_over_takes_each_set_field_from_the_top_layer(top: Scenario, base: Scenario) -> None:
    merged = top.over(base)
    for name in Scenario.__dataclass_fields__:
        mine = getattr(top, name)
        assert getattr(merged, name) == (getattr(base, name) if mine is None else mine)
    assert Scenario().over(base) == base
    assert top.over(Scenario()) == top


# --- automatic answers -----------------------------------------------------------------------------

RULES = Scenario(rules=(Rule("price", "How much?"), Rule("PRICE list", "never: first match wins"), Rule("", "ok")))


@pytest.mark.parametrize(("scenario", "text", "expected"), [
    pytest.param(RULES, "Our price list", "How much?", id="first-match-wins"),
    pytest.param(RULES, "Today's PRICES", "How much?", id="any-case"),
    pytest.param(RULES, "Hello", "ok", id="empty-contains-matches-all"),
    pytest.param(RULES, "", "ok", id="empty-message"),
    pytest.param(Scenario(rules=(Rule("price", "?"),)), "hello", None, id="no-match"),
    pytest.param(Scenario(rules=()), "hello", None, id="no-rules"),
    pytest.param(Scenario(), "hello", None, id="rules-unset"),
])
def test_auto_reply(scenario: Scenario, text: str, expected: str | None) -> None:
    assert auto_reply(scenario, text) == expected


# --- planning statuses: examples -------------------------------------------------------------------


Planned = list[tuple[str, float, tuple[str, ...]]]


def plan(scenario: Scenario, steps: tuple[str, ...] = STEPS, seed: int = 1) -> Planned:
    planned = plan_statuses(scenario, BASE, steps, random.Random(seed))
    return [(s.status, round(s.delay, 6), s.injected) for s in planned]


PLANS: list[tuple[str, Scenario, tuple[str, ...], Planned]] = [
    ("nothing-set", Scenario(), STEPS, [("sent", 1, ()), ("delivered", 2, ()), ("read", 3, ())]),
    ("reaction-only-sent", Scenario(drop=frozenset({"read"})), ("sent",), [("sent", 1, ())]),
    ("drop-read", Scenario(drop=frozenset({"read"})), STEPS, [("sent", 1, ()), ("delivered", 2, ())]),
    ("drop-delivered", Scenario(drop=frozenset({"delivered"})), STEPS, [("sent", 1, ()), ("read", 3, ())]),
    ("never-drops-sent", Scenario(drop=frozenset(STEPS)), STEPS, [("sent", 1, ())]),
    ("fixed-delay", Scenario(delays={"read": Delay(60, 60)}), STEPS,
     [("sent", 1, ()), ("delivered", 2, ()), ("read", 60, ("delay",))]),
    ("delay-keeps-order", Scenario(delays={"delivered": Delay(10, 10)}), STEPS,
     [("sent", 1, ()), ("delivered", 3, ("delay",)), ("read", 10, ())]),
    ("out-of-order", Scenario(out_of_order=True), STEPS,
     [("sent", 1, ()), ("read", 2, ("out_of_order",)), ("delivered", 2.001, ("out_of_order",))]),
    ("out-of-order-needs-both", Scenario(out_of_order=True, drop=frozenset({"delivered"})), STEPS,
     [("sent", 1, ()), ("read", 3, ())]),
    ("duplicates", Scenario(duplicates=2), ("sent",),
     [("sent", 1, ()), ("sent", 1.002, ("duplicate",)), ("sent", 1.004, ("duplicate",))]),
    ("duplicates-with-out-of-order", Scenario(duplicates=1, out_of_order=True, drop=frozenset()), STEPS, [
        ("sent", 1, ()), ("sent", 1.002, ("duplicate",)), ("read", 2, ("out_of_order",)),
        ("delivered", 2.001, ("out_of_order",)), ("read", 2.002, ("out_of_order", "duplicate")),
        ("delivered", 2.003, ("out_of_order", "duplicate"))]),
]


@pytest.mark.parametrize(("scenario", "steps", "expected"), [pytest.param(*p[1:], id=p[0]) for p in PLANS])
def test_plan_statuses(scenario: Scenario, steps: tuple[str, ...], expected: Planned) -> None:
    assert plan(scenario, steps) == expected


def test_a_delay_range_is_drawn_from_the_seeded_rng() -> None:
    scenario = Scenario(delays={"read": Delay(10, 20)})
    first, again, other = plan(scenario, seed=3), plan(scenario, seed=3), plan(scenario, seed=4)
    assert first == again
    assert first[2][1] != other[2][1]
    assert all(10 <= p[2][1] <= 20 for p in (first, other))


# --- planning statuses: properties ---------------------------------------------------------------

base_delays = st.tuples(*[st.floats(0, 3600)] * 3)
status_scenarios = st.builds(
    Scenario,
    delays=st.one_of(st.none(), st.dictionaries(st.sampled_from(STEPS), delays)),
    drop=st.one_of(st.none(), st.frozensets(st.sampled_from(STEPS))),  # `sent` too: it must still come
    out_of_order=st.one_of(st.none(), st.booleans()),
    duplicates=st.one_of(st.none(), st.integers(0, 5)),
)
step_lists = st.sampled_from([STEPS, ("sent",)])
OUT_OF_ORDER_OFFSET, DUPLICATE_OFFSET = 0.001, 0.002
EPSILON = 1e-6


def originals(planned: list[StatusStep]) -> list[StatusStep]:
    return [s for s in planned if "duplicate" not in s.injected]


def swapped(scenario: Scenario, kept: set[str]) -> bool:
    return bool(scenario.out_of_order) and {"delivered", "read"} <= kept


@settings(max_examples=300, deadline=None)
@given(status_scenarios, base_delays, step_lists, st.integers())
def test_planned_statuses_follow_their_order(
    scenario: Scenario, base: tuple[float, float, float], steps: tuple[str, ...], seed: int
) -> None:
    planned = plan_statuses(scenario, base, steps, random.Random(seed))
    assert [s.delay for s in planned] == sorted(s.delay for s in planned), "posting order is time order"
    first_seen = list(dict.fromkeys(s.status for s in planned))
    in_order = [s for s in steps if s in first_seen]
    if swapped(scenario, set(first_seen)):
        assert first_seen == ["sent", "read", "delivered"]
    else:
        assert first_seen == in_order


@settings(max_examples=300, deadline=None)
@given(status_scenarios, base_delays, step_lists, st.integers())
def test_planned_statuses_drop_exactly_the_dropped_and_duplicate_the_rest(
    scenario: Scenario, base: tuple[float, float, float], steps: tuple[str, ...], seed: int
) -> None:
    planned = plan_statuses(scenario, base, steps, random.Random(seed))
    dropped = scenario.drop or frozenset()
    kept = [s for s in steps if s == "sent" or s not in dropped]
    copies = 1 + (scenario.duplicates or 0)
    assert Counter(s.status for s in planned) == {s: copies for s in kept}
    assert Counter(s.status for s in originals(planned)) == {s: 1 for s in kept}


@settings(max_examples=300, deadline=None)
@given(status_scenarios, base_delays, step_lists, st.integers())
def test_planned_delays_stay_within_the_configured_bounds(
    scenario: Scenario, base: tuple[float, float, float], steps: tuple[str, ...], seed: int
) -> None:
    planned = plan_statuses(scenario, base, steps, random.Random(seed))
    configured = scenario.delays or {}
    bounds = [(configured[s].low, configured[s].high) if s in configured else (b, b) for s, b in zip(steps, base)]
    # Times are drawn per status then sorted, so the k-th status lies between the k-th lowest low and high.
    lows, highs = sorted(b[0] for b in bounds), sorted(b[1] for b in bounds)
    position = {s: k for k, s in enumerate(steps)}
    out_of_order = swapped(scenario, {s.status for s in planned})
    for step in originals(planned):
        k = position[step.status]
        low, high = lows[k], highs[k]
        if out_of_order and step.status == "read":
            low = lows[position["delivered"]]  # read goes out at delivered's time
        if out_of_order and step.status == "delivered":
            low, high = low + OUT_OF_ORDER_OFFSET, high + OUT_OF_ORDER_OFFSET
        assert low - EPSILON <= step.delay <= high + EPSILON, (step, bounds)
    latest = max(highs) + OUT_OF_ORDER_OFFSET + DUPLICATE_OFFSET * (scenario.duplicates or 0)
    for step in planned:
        assert min(lows) - EPSILON <= step.delay <= latest + EPSILON


@settings(max_examples=200, deadline=None)
@given(status_scenarios, base_delays, step_lists, st.integers())
def test_planned_statuses_are_repeatable_with_a_seed(
    scenario: Scenario, base: tuple[float, float, float], steps: tuple[str, ...], seed: int
) -> None:
    first = plan_statuses(scenario, base, steps, random.Random(seed))
    assert plan_statuses(scenario, base, steps, random.Random(seed)) == first


@settings(max_examples=200, deadline=None)
@given(status_scenarios, base_delays, st.integers())
def test_injected_labels_say_what_was_done(
    scenario: Scenario, base: tuple[float, float, float], seed: int
) -> None:
    planned = plan_statuses(scenario, base, STEPS, random.Random(seed))
    configured = scenario.delays or {}
    out_of_order = swapped(scenario, {s.status for s in planned})
    for step in planned:
        assert ("delay" in step.injected) == (step.status in configured)
        assert ("out_of_order" in step.injected) == (out_of_order and step.status != "sent")
        assert step.injected.count("duplicate") <= 1


# --- failures ------------------------------------------------------------------------------------


def test_no_failure_set_never_fails() -> None:
    assert draw_failure(None, random.Random(0)) == (False, None)


def test_an_exhausted_count_never_fails() -> None:
    assert draw_failure(Failure(131026, remaining=0), random.Random(0)) == (False, None)


@given(st.integers(1, 50), st.floats(0, 1), st.integers())
def test_next_n_fails_exactly_n_times_then_never(n: int, probability: float, seed: int) -> None:
    rng = random.Random(seed)
    failure: Failure | None = Failure(131047, probability, n)
    hits = []
    for _ in range(n + 10):
        before = failure
        hit, failure = draw_failure(failure, rng)
        hits.append(hit)
        if hit and failure is not None:
            assert before is not None and failure.remaining == (before.remaining or 0) - 1
    # `next` counts messages regardless of the probability, and the setting is gone once used up.
    assert hits == [True] * n + [False] * 10
    assert failure is None


@pytest.mark.parametrize("probability", [0.0, 1.0])
def test_probability_bounds_are_never_and_always(probability: float) -> None:
    rng, failure = random.Random(5), Failure(130429, probability)
    outcomes = {draw_failure(failure, rng) for _ in range(500)}
    assert outcomes == {(probability == 1.0, failure)}


@settings(max_examples=40, deadline=None)
@given(st.floats(0, 1), st.integers())
def test_probability_p_fails_about_p_of_the_messages(probability: float, seed: int) -> None:
    rng, failure, draws = random.Random(seed), Failure(131026, probability), 4000
    results = [draw_failure(failure, rng) for _ in range(draws)]
    assert all(kept is failure for _, kept in results), "a probability is never used up"
    rate = sum(hit for hit, _ in results) / draws
    # Four thousand draws: the standard error is at most 0.008, so 0.05 is six of them.
    assert abs(rate - probability) < 0.05


def test_failures_are_repeatable_with_a_seed() -> None:
    failure = Failure(131026, 0.3)
    runs = [[draw_failure(failure, rng)[0] for _ in range(200)] for rng in (random.Random(9), random.Random(9))]
    assert runs[0] == runs[1]

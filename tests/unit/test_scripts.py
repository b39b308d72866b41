"""Scripted users (`openwaba.domain.scripts`): parsing a script, matching business messages, progress.

Validation is table-driven (every field of a step, with the error code and a
message naming `script[i].field`). The property tests drive `advance` with
arbitrary scripts and message streams: `done` never goes backwards nor past the
number of steps, a matching message advances exactly one step and yields the
step's answer, anything else is a mismatch that leaves `done` alone.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openwaba.domain.errors import RequestError
from openwaba.domain.scripts import MAX_MISMATCHES, MAX_STEPS, Progress, ScriptStep, advance, answer, parse_script
from openwaba.domain.user_actions import UserAction


def refused(raw: Any) -> RequestError:
    with pytest.raises(RequestError) as info:
        parse_script(raw)
    return info.value


# --- validation ------------------------------------------------------------------------------------

VALID: list[tuple[str, Any, tuple[ScriptStep, ...]]] = [
    ("empty", [], ()),
    ("expect-text", [{"expect": "menu"}], (ScriptStep("menu"),)),
    ("expect-empty-matches-all", [{"expect": ""}], (ScriptStep(""),)),
    ("expect-typed", [{"expect": {"type": "interactive", "contains": "Pick"}}], (ScriptStep("Pick", "interactive"),)),
    ("expect-contains-only", [{"expect": {"contains": "hi"}}], (ScriptStep("hi"),)),
    ("expect-type-null", [{"expect": {"type": None, "contains": "hi"}}], (ScriptStep("hi"),)),
    ("reply-text", [{"expect": "menu", "reply": "2"}], (ScriptStep("menu", None, "2"),)),
    ("reply-null", [{"expect": "menu", "reply": None}], (ScriptStep("menu"),)),
    ("reply-text-action", [{"expect": "a", "reply": {"text": "hi"}}], (ScriptStep("a", None, {"text": "hi"}),)),
    ("reply-tap-this-message", [{"expect": "a", "reply": {"type": "button_reply", "id": "yes"}}],
     (ScriptStep("a", None, {"type": "button_reply", "id": "yes"}),)),
    ("reply-list-pick", [{"expect": "a", "reply": {"type": "list_reply", "id": "r1"}}],
     (ScriptStep("a", None, {"type": "list_reply", "id": "r1"}),)),
    ("reply-template-button", [{"expect": "a", "reply": {"type": "button", "index": 0}}],
     (ScriptStep("a", None, {"type": "button", "index": 0}),)),
    ("reply-location", [{"expect": "where", "reply": {"type": "location", "location": {"latitude": 1,
                                                                                       "longitude": 2}}}],
     (ScriptStep("where", None, {"type": "location", "location": {"latitude": 1, "longitude": 2}}),)),
    ("max-steps", [{"expect": "x"}] * MAX_STEPS, (ScriptStep("x"),) * MAX_STEPS),
]


@pytest.mark.parametrize(("raw", "expected"), [pytest.param(r, e, id=i) for i, r, e in VALID])
def test_accepted_scripts(raw: Any, expected: tuple[ScriptStep, ...]) -> None:
    assert parse_script(raw) == expected


# (id, script, error code, text the message must contain)
INVALID: list[tuple[str, Any, int, str]] = [
    ("not-a-list", {"expect": "menu"}, 100, "script is a list"),
    ("a-string", "menu", 100, "script is a list"),
    ("too-many-steps", [{"expect": "x"}] * (MAX_STEPS + 1), 100, f"at most {MAX_STEPS}"),
    ("step-a-string", ["menu"], 100, "script is a list"),
    ("step-without-expect", [{"reply": "hi"}], 100, "expect"),
    ("step-unknown-key", [{"expect": "a", "delay": 1}], 100, "script is a list"),
    ("expect-number", [{"expect": 5}], 100, "'script[0].expect'"),
    ("expect-null", [{"expect": None}], 100, "'script[0].expect'"),
    ("expect-list", [{"expect": ["menu"]}], 100, "'script[0].expect'"),
    ("expect-object-without-contains", [{"expect": {"type": "text"}}], 100, "'script[0].expect'"),
    ("expect-contains-number", [{"expect": {"contains": 1}}], 100, "'script[0].expect'"),
    ("expect-unknown-key", [{"expect": {"contains": "a", "text": "b"}}], 100, "'script[0].expect'"),
    ("expect-type-number", [{"expect": {"type": 1, "contains": "a"}}], 100, "'script[0].expect.type'"),
    ("index-of-the-bad-step", [{"expect": "a"}, {"expect": "b"}, {"expect": 3}], 100, "'script[2].expect'"),
    ("reply-empty", [{"expect": "a", "reply": ""}], 100, "'script[0].reply'"),
    ("reply-number", [{"expect": "a", "reply": 2}], 100, "'script[0].reply'"),
    ("reply-list", [{"expect": "a", "reply": ["hi"]}], 100, "'script[0].reply'"),
    ("reply-bool", [{"expect": "a", "reply": True}], 100, "'script[0].reply'"),
    # A reply the user could never send is refused when the script is set, with the action's own code.
    ("reply-action-without-text", [{"expect": "a", "reply": {}}], 131008, "'script[0].reply'"),
    ("reply-empty-text-action", [{"expect": "a", "reply": {"text": ""}}], 131008, "'script[0].reply'"),
    ("reply-unsupported-type", [{"expect": "a", "reply": {"type": "sticker"}}], 131051, "'script[0].reply'"),
    ("reply-tap-without-id", [{"expect": "a", "reply": {"type": "button_reply"}}], 100, "'script[0].reply'"),
    ("reply-tap-bad-message-id", [{"expect": "a", "reply": {"type": "list_reply", "id": "r", "message_id": 5}}],
     100, "'script[0].reply'"),
    ("reply-template-button-index-string", [{"expect": "a", "reply": {"type": "button", "index": "0"}}],
     100, "'script[0].reply'"),
    ("reply-bad-location", [{"expect": "a", "reply": {"type": "location", "location": {"latitude": 91,
                                                                                       "longitude": 0}}}],
     100, "'script[0].reply'"),
    ("reply-index-of-the-bad-step", [{"expect": "a"}, {"expect": "b", "reply": {"type": "contacts"}}],
     100, "'script[1].reply'"),
]


@pytest.mark.parametrize(("raw", "code", "names"), [pytest.param(r, c, n, id=i) for i, r, c, n in INVALID])
def test_refused_scripts(raw: Any, code: int, names: str) -> None:
    error = refused(raw)
    assert error.code == code
    assert names in error.details


def test_a_refused_reply_says_why() -> None:
    details = refused([{"expect": "a", "reply": {"type": "location", "location": {}}}]).details
    assert "latitude" in details  # the action's own explanation follows the field


# --- matching and views ----------------------------------------------------------------------------


@pytest.mark.parametrize(("step", "type_name", "text", "matches"), [
    pytest.param(ScriptStep("menu"), "text", "Here is our MENU", True, id="any-case"),
    pytest.param(ScriptStep("menu"), "interactive", "menu", True, id="any-type"),
    pytest.param(ScriptStep("menu"), "text", "men", False, id="not-contained"),
    pytest.param(ScriptStep(""), "image", "", True, id="empty-matches-all"),
    pytest.param(ScriptStep("pick", "interactive"), "interactive", "Pick one", True, id="typed"),
    pytest.param(ScriptStep("pick", "interactive"), "text", "Pick one", False, id="wrong-type"),
    pytest.param(ScriptStep("", "template"), "template", "anything", True, id="type-only"),
])
def test_step_matches(step: ScriptStep, type_name: str, text: str, matches: bool) -> None:
    assert step.matches(type_name, text) is matches


@pytest.mark.parametrize(("step", "view"), [
    pytest.param(ScriptStep("menu"), {"expect": "menu"}, id="text"),
    pytest.param(ScriptStep("m", "interactive"), {"expect": {"type": "interactive", "contains": "m"}}, id="typed"),
    pytest.param(ScriptStep("m", None, "2"), {"expect": "m", "reply": "2"}, id="reply"),
    pytest.param(ScriptStep("m", None, {"type": "button", "index": 1}),
                 {"expect": "m", "reply": {"type": "button", "index": 1}}, id="action"),
])
def test_step_view_parses_back(step: ScriptStep, view: dict[str, Any]) -> None:
    assert step.view() == view
    assert parse_script([view]) == (step,)


def test_progress_view() -> None:
    miss = {"step": 0, "expected": "menu", "got": {"id": "wamid.1", "type": "text", "text": "hi"}}
    progress = Progress(1, (miss,))
    assert progress.view(3) == {"steps": 3, "done": 1, "finished": False, "mismatches": [miss]}
    assert Progress(3).view(3)["finished"] is True
    assert Progress().view(0) == {"steps": 0, "done": 0, "finished": True, "mismatches": []}
    assert Progress.from_view(json.loads(json.dumps(progress.view(3)))) == progress
    assert Progress.from_view({}) == Progress()


# --- answers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("reply", "expected"), [
    pytest.param(None, None, id="just-expect"),
    pytest.param("2", UserAction("text", {"body": "2"}), id="text"),
    pytest.param({"text": "hi", "context": {"message_id": "wamid.old"}},
                 UserAction("text", {"body": "hi"}, "wamid.old"), id="text-action-keeps-its-context"),
    pytest.param({"type": "button_reply", "id": "yes"}, UserAction("button_reply", "yes", "wamid.M"),
                 id="tap-taps-the-matched-message"),
    pytest.param({"type": "list_reply", "id": "r2"}, UserAction("list_reply", "r2", "wamid.M"), id="list-pick"),
    pytest.param({"type": "button", "index": 1}, UserAction("button", 1, "wamid.M"), id="template-button"),
    pytest.param({"type": "button_reply", "id": "yes", "message_id": "wamid.other"},
                 UserAction("button_reply", "yes", "wamid.other"), id="tap-on-another-message"),
    pytest.param({"type": "reaction", "reaction": {"message_id": "wamid.X", "emoji": "👍"}},
                 UserAction("reaction", {"message_id": "wamid.X", "emoji": "👍"}), id="reaction-is-no-tap"),
])
def test_answer(reply: Any, expected: UserAction | None) -> None:
    assert answer(reply, "wamid.M") == expected


def test_answer_leaves_the_script_untouched() -> None:
    reply = {"type": "button_reply", "id": "yes"}
    answer(reply, "wamid.M")
    assert reply == {"type": "button_reply", "id": "yes"}, "the next run must tap its own message again"


# --- advancing: examples ---------------------------------------------------------------------------

MENU = (
    ScriptStep("welcome"),
    ScriptStep("pick", "interactive", {"type": "button_reply", "id": "yes"}),
    ScriptStep("thanks", None, "bye"),
)


def test_a_script_played_in_order() -> None:
    progress = Progress()
    progress, action, matched = advance(MENU, progress, "wamid.1", "text", "Welcome!")
    assert (progress, action, matched) == (Progress(1), None, True)
    progress, action, matched = advance(MENU, progress, "wamid.2", "interactive", "Pick one")
    assert (progress, action, matched) == (Progress(2), UserAction("button_reply", "yes", "wamid.2"), True)
    progress, action, matched = advance(MENU, progress, "wamid.3", "text", "Thanks")
    assert (progress, action, matched) == (Progress(3), UserAction("text", {"body": "bye"}), True)
    assert progress.view(len(MENU))["finished"] is True
    # Once finished, further messages change nothing and are not mismatches.
    assert advance(MENU, progress, "wamid.4", "text", "welcome") == (progress, None, False)


def test_a_mismatch_is_recorded_and_the_script_waits() -> None:
    progress, action, matched = advance(MENU, Progress(1), "wamid.9", "text", "Pick one")
    assert (action, matched, progress.done) == (None, False, 1)
    assert progress.mismatches == ({
        "step": 1, "expected": {"type": "interactive", "contains": "pick"},
        "got": {"id": "wamid.9", "type": "text", "text": "Pick one"},
    },)
    # The right message still advances the script afterwards.
    assert advance(MENU, progress, "wamid.10", "interactive", "pick")[0] == Progress(2, progress.mismatches)


def test_mismatches_are_capped() -> None:
    progress = Progress()
    for n in range(MAX_MISMATCHES + 5):
        progress, _, _ = advance(MENU, progress, f"wamid.{n}", "text", "nope")
    assert len(progress.mismatches) == MAX_MISMATCHES
    assert [m["got"]["id"] for m in progress.mismatches] == [f"wamid.{n}" for n in range(MAX_MISMATCHES)]


def test_an_empty_script_is_finished_at_once() -> None:
    assert advance((), Progress(), "wamid.1", "text", "hi") == (Progress(), None, False)


# --- advancing: properties -------------------------------------------------------------------------

words = st.sampled_from(["", "menu", "pick", "yes", "Menu", "PICK one"])
types = st.sampled_from(["text", "interactive", "template"])
replies = st.one_of(st.none(), st.just("ok"), st.just({"type": "button_reply", "id": "yes"}))
steps_st = st.lists(st.builds(ScriptStep, words, st.one_of(st.none(), types), replies), max_size=6).map(tuple)
messages = st.lists(st.tuples(types, st.text(alphabet="menupickyesMENUPICK ", max_size=12)), max_size=30)


@settings(max_examples=300, deadline=None)
@given(steps_st, messages)
def test_done_only_moves_forward_one_step_at_a_time(
    steps: tuple[ScriptStep, ...], stream: list[tuple[str, str]]
) -> None:
    progress = Progress()
    for n, (type_name, text) in enumerate(stream):
        wamid = f"wamid.{n}"
        after, action, matched = advance(steps, progress, wamid, type_name, text)
        expected_match = progress.done < len(steps) and steps[progress.done].matches(type_name, text)
        assert matched is expected_match
        assert after.done == progress.done + (1 if matched else 0)
        assert after.done <= len(steps)
        if matched:
            assert action == answer(steps[progress.done].reply, wamid)
            assert after.mismatches == progress.mismatches
        else:
            assert action is None
            grew = progress.done < len(steps) and len(progress.mismatches) < MAX_MISMATCHES
            assert len(after.mismatches) == len(progress.mismatches) + (1 if grew else 0)
        progress = after


@settings(max_examples=300, deadline=None)
@given(steps_st.filter(bool), st.data())
def test_a_matching_message_always_advances_by_one(steps: tuple[ScriptStep, ...], data: st.DataObject) -> None:
    done = data.draw(st.integers(0, len(steps) - 1))
    step = steps[done]
    # Any message of the step's type (any type if none) whose text contains the expected text, in any case.
    type_name = step.type or data.draw(types)
    padding = data.draw(st.text(max_size=5))
    cases: list[Callable[[str], str]] = [str.lower, str.upper, str.title, str]
    case = data.draw(st.sampled_from(cases))
    text = padding + case(step.contains) + padding
    mismatches = tuple({"step": i} for i in range(data.draw(st.integers(0, MAX_MISMATCHES))))
    progress, action, matched = advance(steps, Progress(done, mismatches), "wamid.M", type_name, text)
    assert matched
    assert progress == Progress(done + 1, mismatches)
    assert action == answer(step.reply, "wamid.M")

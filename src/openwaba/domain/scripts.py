"""Scripted users: a simulated user who expects the business's messages in order and answers each.

A script is a list of steps. Each step describes the next business message the
user expects (a text it contains, optionally its type) and what the user does
when it arrives: write a text, or any user action (tap a reply button of that
very message, pick a list row, share a location...). A business message that
does not match the next step is recorded as a mismatch and the script waits, so
a test can ask where the conversation went off track.

Pure: parsing, matching and the progress record.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from openwaba.domain.errors import RequestError
from openwaba.domain.user_actions import TAPS, UserAction, parse_user_action

MAX_STEPS = 200
MAX_MISMATCHES = 20  # the first ones tell the story; the rest would only grow the record


@dataclass(frozen=True, slots=True)
class ScriptStep:
    """Expect a business message containing `contains` (any case; of `type` if given), then `reply`."""

    contains: str
    type: str | None = None
    reply: Any = None  # None: just expect; a str: a text; a dict: a user action (taps default to this message)

    def matches(self, type_name: str, text: str) -> bool:
        return (self.type is None or self.type == type_name) and self.contains.lower() in text.lower()

    def view(self) -> dict[str, Any]:
        expect = self.contains if self.type is None else {"type": self.type, "contains": self.contains}
        out: dict[str, Any] = {"expect": expect}
        if self.reply is not None:
            out["reply"] = self.reply
        return out


@dataclass(frozen=True, slots=True)
class Progress:
    """How far a user got through the script, and what arrived instead of the expected message."""

    done: int = 0
    mismatches: tuple[dict[str, Any], ...] = field(default=())

    def view(self, steps: int) -> dict[str, Any]:
        return {"steps": steps, "done": self.done, "finished": self.done >= steps, "mismatches": list(self.mismatches)}

    @classmethod
    def from_view(cls, raw: dict[str, Any]) -> Progress:
        return cls(int(raw.get("done", 0)), tuple(raw.get("mismatches") or ()))


def advance(
    steps: tuple[ScriptStep, ...], progress: Progress, wamid: str, type_name: str, text: str
) -> tuple[Progress, UserAction | None, bool]:
    """The user reads business message `wamid`: the new progress, the user's answer and whether a step matched."""
    if progress.done >= len(steps):
        return progress, None, False
    step = steps[progress.done]
    if not step.matches(type_name, text):
        got = {"id": wamid, "type": type_name, "text": text}
        miss = {"step": progress.done, "expected": step.view()["expect"], "got": got}
        kept = (*progress.mismatches, miss)[:MAX_MISMATCHES]
        return replace(progress, mismatches=kept), None, False
    return replace(progress, done=progress.done + 1), answer(step.reply, wamid), True


def answer(reply: Any, wamid: str) -> UserAction | None:
    """The user action a step's reply stands for; taps without `message_id` tap the matched message."""
    if reply is None:
        return None
    if isinstance(reply, str):
        return parse_user_action({"text": reply})
    body = dict(reply)
    if body.get("type") in TAPS:
        body.setdefault("message_id", wamid)
    return parse_user_action(body)


def parse_script(raw: Any) -> tuple[ScriptStep, ...]:
    shape = 'script is a list of {"expect": "menu" or {"type": "interactive", "contains": "menu"}, "reply": ...}'
    if not isinstance(raw, list) or len(raw) > MAX_STEPS:
        raise RequestError(100, f"{shape} (at most {MAX_STEPS} steps)")
    return tuple(_step(i, step, shape) for i, step in enumerate(raw))


def _step(index: int, raw: Any, shape: str) -> ScriptStep:
    if not isinstance(raw, dict) or "expect" not in raw or not set(raw) <= {"expect", "reply"}:
        raise RequestError(100, shape)
    expect = raw["expect"]
    if isinstance(expect, str):
        contains, type_name = expect, None
    elif isinstance(expect, dict) and set(expect) <= {"type", "contains"} and isinstance(expect.get("contains"), str):
        contains, type_name = expect["contains"], expect.get("type")
        if type_name is not None and not isinstance(type_name, str):
            raise RequestError(100, f"'script[{index}].expect.type' is a message type such as text or interactive")
    else:
        raise RequestError(100, f"'script[{index}].expect' is a text the message contains, or {{type, contains}}")
    reply = raw.get("reply")
    if reply is not None:
        _check_reply(index, reply)
    return ScriptStep(contains, type_name, reply)


def _check_reply(index: int, reply: Any) -> None:
    """Refuse a reply the user could never send, when the script is set rather than when it runs."""
    if not isinstance(reply, str | dict) or reply == "":
        raise RequestError(100, f"'script[{index}].reply' is a text or a user action object")
    try:
        answer(reply, "wamid.placeholder")
    except RequestError as exc:
        raise RequestError(exc.code, f"'script[{index}].reply': {exc.details}") from None

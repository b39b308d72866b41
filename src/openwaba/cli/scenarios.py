"""Sandbox scenarios: `openwaba sandbox scenario show|set|clear` (what the simulated network does
to the number's messages) and `openwaba sandbox script` (how far a scripted user got)."""

from __future__ import annotations

import json
import math
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from openwaba.cli import output
from openwaba.cli.connection import DEFAULT_URL, ApiKeyOption, UrlOption, number
from openwaba.cli.messaging import finite
from openwaba.cli.output import JsonOption

STEPS = ("sent", "delivered", "read")
EMPTY = "(none: messages fare as usual)"
USER_EMPTY = "(none: the number's scenario applies)"

UserOption = Annotated[
    str | None,
    typer.Option(
        "--user",
        help="A simulated user's layer (it wins over the number's, field by field); the number's when left out.",
        show_default=False,
    ),
]


class Dropped(StrEnum):
    delivered = "delivered"
    read = "read"


def show(
    user: UserOption = None, url: UrlOption = DEFAULT_URL, api_key: ApiKeyOption = "", as_json: JsonOption = False
) -> None:
    """Show the number's scenario, or a user's layer and what applies to them (the effective scenario)."""
    with number(url, api_key) as client:
        view = client.scenario(user)
    if as_json:
        output.data(view)
    elif user is None:
        _print(view.get("scenario") or {})
    else:
        output.line(f"user {user}:")
        _print(view.get("scenario") or {}, "  ", USER_EMPTY)
        output.line("effective (the user's settings over the number's):")
        _print(view.get("effective") or {}, "  ")


def set_(
    document: Annotated[
        str | None, typer.Argument(help='The scenario as JSON, e.g. \'{"drop": ["read"]}\'.', show_default=False)
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option("--file", exists=True, dir_okay=False, readable=True, help="Read the scenario from a JSON file."),
    ] = None,
    delay: Annotated[
        list[str] | None,
        typer.Option(help="STATUS=SECONDS or STATUS=LOW:HIGH after acceptance (sent, delivered, read); repeatable."),
    ] = None,
    drop: Annotated[list[Dropped] | None, typer.Option(help="A status that never comes; repeatable.")] = None,
    out_of_order: Annotated[bool, typer.Option("--out-of-order", help="Post read before delivered.")] = False,
    duplicates: Annotated[int | None, typer.Option(help="Post each status webhook N extra times (0-5).")] = None,
    fail: Annotated[int | None, typer.Option(help="Fail outbound messages with this WhatsApp error code.")] = None,
    probability: Annotated[float | None, typer.Option(help="With --fail: the chance (0-1) a message fails.")] = None,
    next_: Annotated[int | None, typer.Option("--next", help="With --fail: fail only the next N messages.")] = None,
    seed: Annotated[int | None, typer.Option(help="Make every random choice repeatable (the number only).")] = None,
    rule: Annotated[
        list[str] | None, typer.Option(help="'CONTAINS=>REPLY': the user answers such messages; repeatable.")
    ] = None,
    user: UserOption = None,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = "",
    as_json: JsonOption = False,
) -> None:
    """Replace the number's scenario (or a user's layer with --user): from JSON, a file, or flags.

    openwaba sandbox scenario set --delay read=1:3 --drop delivered --duplicates 1

    openwaba sandbox scenario set --fail 131026 --next 2 --user 15551230001

    openwaba sandbox scenario set --file scenario.json --seed 7

    Flags win over the document's fields (--delay per status; --rule adds to its rules).
    """
    scenario = _document(document, file)
    flags = _flags(delay, drop, out_of_order, duplicates, _failure(fail, probability, next_), seed, rule)
    if document is None and file is None and not flags:
        hint = "to remove one: openwaba sandbox scenario clear"
        output.usage_error("give the scenario as JSON, --file or flags", hint)
    scenario = _merge(scenario, flags)
    with number(url, api_key) as client:
        stored = client.set_scenario(scenario, user)
    if as_json:
        output.data({"scenario": stored})
    else:
        output.note(f"scenario of {_whose(user)} set:")
        _print(stored, empty=EMPTY if user is None else USER_EMPTY)


def clear(
    user: UserOption = None, url: UrlOption = DEFAULT_URL, api_key: ApiKeyOption = "", as_json: JsonOption = False
) -> None:
    """Remove the number's scenario (or a user's layer with --user)."""
    with number(url, api_key) as client:
        client.clear_scenario(user)
    if as_json:
        output.data({"scenario": {}})
    elif user is None:
        output.line("cleared the number's scenario: messages fare as usual")
    else:
        output.line(f"cleared the layer of user {user}: the number's scenario applies to them")


def script(
    user: Annotated[str, typer.Option("--user", help="The scripted user's wa_id.", show_default=False)],
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = "",
    as_json: JsonOption = False,
) -> None:
    """How far a scripted user got through their script, and what arrived instead of what they expected."""
    with number(url, api_key) as client:
        progress = client.script_progress(user)
    if as_json:
        output.data(progress)
        return
    steps, done = int(progress.get("steps", 0)), int(progress.get("done", 0))
    if not steps:
        output.line(f"{user} has no script (openwaba sandbox scenario set --user {user} --file script.json)")
        return
    output.line(f"{user}: {done} of {steps} steps done" + (", finished" if progress.get("finished") else ""))
    for miss in progress.get("mismatches") or []:
        output.line("  " + _mismatch(miss))


# --- building the document ------------------------------------------------------------------------


def _document(document: str | None, file: Path | None) -> dict[str, Any]:
    if document is not None and file is not None:
        output.usage_error("give the scenario as JSON or with --file, not both")
    if file is not None:
        return _parse(file.read_bytes(), str(file))
    return {} if document is None else _parse(document, "the JSON argument")


def _parse(text: str | bytes, where: str) -> dict[str, Any]:
    try:
        parsed = json.loads(text)
    except ValueError as exc:  # also a file that is not UTF-8
        output.usage_error(f"{where} is not valid JSON: {exc}")
    if not isinstance(parsed, dict):
        output.usage_error(f'{where} must be a JSON object, e.g. {{"drop": ["read"]}}')
    return parsed


def _flags(
    delay: list[str] | None,
    drop: list[Dropped] | None,
    out_of_order: bool,
    duplicates: int | None,
    failure: dict[str, Any] | None,
    seed: int | None,
    rule: list[str] | None,
) -> dict[str, Any]:
    """The fields the flags give (a flag left out gives nothing, so the document's field stays)."""
    given: dict[str, Any] = {
        "delays": dict(_delay(d) for d in delay) if delay else None,
        "drop": [d.value for d in drop] if drop else None,
        "out_of_order": True if out_of_order else None,
        "duplicates": duplicates,
        "fail": failure,
        "seed": seed,
        "rules": [_rule(r) for r in rule] if rule else None,
    }
    return {k: v for k, v in given.items() if v is not None}


def _merge(document: dict[str, Any], flags: dict[str, Any]) -> dict[str, Any]:
    merged = {**document, **flags}
    if "delays" in flags and isinstance(document.get("delays"), dict):
        merged["delays"] = {**document["delays"], **flags["delays"]}
    if "rules" in flags and isinstance(document.get("rules"), list):
        merged["rules"] = [*document["rules"], *flags["rules"]]
    return merged


def _delay(raw: str) -> tuple[str, float | list[float]]:
    """`read=2` → ("read", 2.0); `read=1:3` → ("read", [1.0, 3.0])."""
    step, _, value = raw.partition("=")
    if step not in STEPS:
        output.usage_error(f"--delay {raw}: say which status, e.g. read=2 or read=1:3 ({', '.join(STEPS)})")
    try:
        bounds = [float(v) for v in value.split(":")]
    except ValueError:
        bounds = []
    if len(bounds) not in (1, 2) or not all(math.isfinite(b) for b in bounds):
        output.usage_error(f"--delay {raw}: the delay is SECONDS or LOW:HIGH, e.g. {step}=2 or {step}=1:3")
    return step, bounds[0] if len(bounds) == 1 else bounds


def _rule(raw: str) -> dict[str, str]:
    contains, arrow, reply = raw.partition("=>")
    if not arrow:
        output.usage_error(f"--rule {raw!r}: write it CONTAINS=>REPLY, e.g. 'price=>How much is it?'")
    return {"contains": contains, "reply": reply}


def _failure(code: int | None, probability: float | None, next_: int | None) -> dict[str, Any] | None:
    if code is None:
        if probability is not None or next_ is not None:
            output.usage_error("--probability and --next go with --fail CODE")
        return None
    if probability is not None and next_ is not None:
        output.usage_error("give --probability or --next, not both")
    failure: dict[str, Any] = {"code": code}
    if probability is not None:
        failure["probability"] = finite(probability, "--probability")
    if next_ is not None:
        failure["next"] = next_
    return failure


# --- printing ---------------------------------------------------------------------------------------


def _whose(user: str | None) -> str:
    return "the number" if user is None else f"user {user}"


def _print(scenario: dict[str, Any], indent: str = "", empty: str = EMPTY) -> None:
    for text in describe(scenario) or [empty]:
        output.line(indent + text)


def describe(scenario: dict[str, Any]) -> list[str]:
    """A scenario (as the gateway returns it) in words, one setting a line."""
    lines = []
    if scenario.get("delays"):
        delays = scenario["delays"]
        lines.append("delays: " + " · ".join(f"{step} {_seconds(delays[step])}" for step in STEPS if step in delays))
    if scenario.get("drop"):
        lines.append(f"never posted: {', '.join(scenario['drop'])}")
    if scenario.get("out_of_order"):
        lines.append("out of order: read is posted before delivered")
    if scenario.get("duplicates"):
        lines.append(f"duplicates: each status webhook posted {scenario['duplicates']} more time(s)")
    if scenario.get("fail"):
        lines.append("fail: " + _fail(scenario["fail"]))
    if scenario.get("seed") is not None:
        lines.append(f"seed: {scenario['seed']}")
    lines += [f"rule: {r['contains']!r} → replies {r['reply']!r}" for r in scenario.get("rules") or []]
    for number_, step in enumerate(scenario.get("script") or [], 1):
        lines.append(f"script {number_}: " + _step(step))
    return lines


def _seconds(value: Any) -> str:
    return f"{value[0]:g}-{value[1]:g} s" if isinstance(value, list) else f"{value:g} s"


def _fail(failure: dict[str, Any]) -> str:
    text = f"#{failure.get('code')}"
    if failure.get("next") is not None:
        return text + f" for the next {failure['next']} message(s)"
    probability = failure.get("probability", 1)
    return text + (" for every message" if probability >= 1 else f" with probability {probability:g}")


def _step(step: dict[str, Any]) -> str:
    expect = step.get("expect")
    if isinstance(expect, dict):
        kind = f"{expect['type']} " if expect.get("type") else ""
        text = f"expects {kind}containing {expect.get('contains', '')!r}"
    else:
        text = f"expects {expect!r}"
    reply = step.get("reply")
    if reply is None:
        return text
    shown = repr(reply) if isinstance(reply, str) else json.dumps(reply, ensure_ascii=False)
    return f"{text} → replies {shown}"


def _mismatch(miss: dict[str, Any]) -> str:
    got = miss.get("got") or {}
    where = f"step {int(miss.get('step', 0)) + 1}"
    if "error" in miss:
        return f"{where}: the answer to {got.get('id')} failed: {miss['error']}"
    expected = miss.get("expected")
    expected_text = repr(expected) if isinstance(expected, str) else json.dumps(expected, ensure_ascii=False)
    return f"{where}: expected {expected_text}, got {got.get('type')} {got.get('text', '')!r} ({got.get('id')})"

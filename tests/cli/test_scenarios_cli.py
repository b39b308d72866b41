"""`openwaba sandbox scenario|script|clock --set|tap|pick|react|location` against a real gateway,
through `main(argv)`: what each prints, as text and as `--json`, and how it fails (2: the command
line is wrong, nothing is sent; 1: the gateway refused, with its reason)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from e2e.routing_support import Number, new_number
from e2e.support import ALICE, BRUNO, Receiver, Server, wait_until
from openwaba.client import Client, Row, Section
from openwaba.client import messages as m

from .conftest import Cli

pytestmark = pytest.mark.e2e

WAMID = re.compile(r"^wamid\.\S+$")
NOBODY = "15550000000"  # not a simulated user of any number
MENU_SCRIPT = [
    {"expect": {"type": "interactive", "contains": "menu"}, "reply": {"type": "button_reply", "id": "hours"}},
    {"expect": "9 to 5", "reply": "Thanks!"},
]


@pytest.fixture
def users_number(gateway: Server) -> Number:
    """A number of its own with two simulated users, so its scenario is the test's alone."""
    return new_number(gateway, sandbox_users=[ALICE, BRUNO])


@pytest.fixture
def business(users_number: Number) -> Iterator[Client]:
    """The number as the business: sends what the users then tap, pick and react to."""
    with Client.openwaba(users_number.key, users_number.srv.url, timeout=10) as client:
        yield client


def opts(number: Number) -> list[str]:
    return ["--url", number.srv.url, "--api-key", number.key]


def scenario_of(number: Number, wa_id: str | None = None) -> Any:
    path = "/sandbox/scenario" if wa_id is None else f"/sandbox/users/{wa_id}/scenario"
    return number.ok("GET", path)["scenario"]


def inbound(hook: Receiver, wamid: str) -> dict[str, Any]:
    """The message webhook of the user's action `wamid`."""
    got = hook.wait_for(lambda rs: next((r.message for r in rs if r.message and r.message["id"] == wamid), None),
                        what=f"the webhook of {wamid}")
    return dict(got)


# --- scenario show / set / clear --------------------------------------------------------------------


FLAGS = ["--delay", "sent=0.5", "--delay", "read=1:3", "--drop", "delivered", "--out-of-order", "--duplicates", "2",
         "--fail", "131026", "--probability", "0.3", "--seed", "7", "--rule", "price=>How much?"]
FLAGGED = {
    "delays": {"sent": 0.5, "read": [1, 3]}, "drop": ["delivered"], "out_of_order": True, "duplicates": 2,
    "fail": {"code": 131026, "probability": 0.3}, "seed": 7, "rules": [{"contains": "price", "reply": "How much?"}],
}
FLAGGED_TEXT = [
    "delays: sent 0.5 s · read 1-3 s",
    "never posted: delivered",
    "out of order: read is posted before delivered",
    "duplicates: each status webhook posted 2 more time(s)",
    "fail: #131026 with probability 0.3",
    "seed: 7",
    "rule: 'price' → replies 'How much?'",
]
NEXT_TWO = "fail: #131026 for the next 2 message(s)"


def test_show_set_and_clear_the_number_and_a_user(cli: Cli, users_number: Number) -> None:
    number = users_number
    empty = cli("sandbox", "scenario", "show", *opts(number))
    assert (empty.code, empty.out) == (0, "(none: messages fare as usual)\n"), empty
    assert cli("sandbox", "scenario", "show", "--json", *opts(number)).json() == {"scenario": {}}

    flagged = cli("sandbox", "scenario", "set", *FLAGS, "--json", *opts(number))
    assert flagged.code == 0, flagged
    assert flagged.json() == {"scenario": FLAGGED}
    assert scenario_of(number) == FLAGGED
    shown = cli("sandbox", "scenario", "show", *opts(number))
    assert shown.out.splitlines() == FLAGGED_TEXT, shown

    layer = cli("sandbox", "scenario", "set", "--user", ALICE, "--fail", "131026", "--next", "2", *opts(number))
    assert layer.code == 0, layer
    assert layer.out.splitlines() == [NEXT_TWO]
    assert f"scenario of user {ALICE} set" in layer.err
    user_view = cli("sandbox", "scenario", "show", "--user", ALICE, *opts(number))
    effective = ["  " + (NEXT_TWO if line.startswith("fail") else line) for line in FLAGGED_TEXT]  # the user's wins
    assert user_view.out.splitlines() == [
        f"user {ALICE}:", "  " + NEXT_TWO, "effective (the user's settings over the number's):", *effective,
    ], user_view
    other = cli("sandbox", "scenario", "show", "--user", BRUNO, "--json", *opts(number)).json()
    assert other == {"scenario": {}, "effective": FLAGGED}
    bruno_text = cli("sandbox", "scenario", "show", "--user", BRUNO, *opts(number)).out.splitlines()
    assert bruno_text[:2] == [f"user {BRUNO}:", "  (none: the number's scenario applies)"]

    cleared_user = cli("sandbox", "scenario", "clear", "--user", ALICE, *opts(number))
    assert cleared_user.code == 0 and f"cleared the layer of user {ALICE}" in cleared_user.out, cleared_user
    assert scenario_of(number, ALICE) == {} and scenario_of(number) == FLAGGED
    cleared = cli("sandbox", "scenario", "clear", "--json", *opts(number))
    assert (cleared.code, cleared.json()) == (0, {"scenario": {}}), cleared
    assert scenario_of(number) == {}
    again = cli("sandbox", "scenario", "clear", *opts(number))
    assert again.out == "cleared the number's scenario: messages fare as usual\n", again


def test_set_from_a_json_argument_and_a_file(cli: Cli, users_number: Number, tmp_path: Path) -> None:
    number = users_number
    from_json = cli("sandbox", "scenario", "set", '{"never_reads": true}', "--json", *opts(number))
    assert from_json.json() == {"scenario": {"drop": ["read"]}}, from_json

    document = {"delays": {"sent": 1, "read": 4}, "rules": [{"contains": "hi", "reply": "hello"}],
                "script": MENU_SCRIPT}
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps(document))
    # The flags win over the file: one delay replaced, one rule added; the rest is the file's.
    merged = cli("sandbox", "scenario", "set", "--file", str(path), "--user", ALICE, "--delay", "read=2",
                 "--rule", "price=>How much?", *opts(number))
    assert merged.code == 0, merged
    assert scenario_of(number, ALICE) == {
        "delays": {"sent": 1, "read": 2}, "script": MENU_SCRIPT,
        "rules": [{"contains": "hi", "reply": "hello"}, {"contains": "price", "reply": "How much?"}]}
    assert merged.out.splitlines() == [
        "delays: sent 1 s · read 2 s",
        "rule: 'hi' → replies 'hello'",
        "rule: 'price' → replies 'How much?'",
        """script 1: expects interactive containing 'menu' → replies {"type": "button_reply", "id": "hours"}""",
        "script 2: expects '9 to 5' → replies 'Thanks!'",
    ], merged
    assert scenario_of(number) == {"drop": ["read"]}  # the number's layer is untouched


# --- what the command line refuses (2) and what the gateway refuses (1) -----------------------------

USAGE_ERRORS = {
    "set-nothing": (["scenario", "set"], "give the scenario as JSON, --file or flags"),
    "set-json-and-file": (["scenario", "set", "{}", "--file", "@ok.json"], "not both"),
    "set-bad-json": (["scenario", "set", "{nope"], "not valid JSON"),
    "set-bad-json-file": (["scenario", "set", "--file", "@bad.json"], "not valid JSON"),
    "set-not-an-object": (["scenario", "set", "[1]"], "must be a JSON object"),
    "set-missing-file": (["scenario", "set", "--file", "@missing.json"], "does not exist"),
    "delay-without-status": (["scenario", "set", "--delay", "2"], "say which status"),
    "delay-unknown-status": (["scenario", "set", "--delay", "seen=2"], "say which status"),
    "delay-not-seconds": (["scenario", "set", "--delay", "read=soon"], "SECONDS or LOW:HIGH"),
    "delay-three-bounds": (["scenario", "set", "--delay", "read=1:2:3"], "SECONDS or LOW:HIGH"),
    "drop-sent": (["scenario", "set", "--drop", "sent"], "'sent' is not one of"),
    "duplicates-not-a-number": (["scenario", "set", "--duplicates", "two"], "Invalid value for '--duplicates'"),
    "probability-without-fail": (["scenario", "set", "--probability", "0.5"], "go with --fail CODE"),
    "next-without-fail": (["scenario", "set", "--next", "1"], "go with --fail CODE"),
    "next-and-probability": (["scenario", "set", "--fail", "131026", "--next", "1", "--probability", "1"],
                             "not both"),
    "delay-not-finite": (["scenario", "set", "--delay", "read=nan"], "SECONDS or LOW:HIGH"),
    "probability-not-finite": (["scenario", "set", "--fail", "131026", "--probability", "nan"], "finite number"),
    "rule-without-arrow": (["scenario", "set", "--rule", "price"], "CONTAINS=>REPLY"),
    "set-unknown-flag": (["scenario", "set", "--never-ever"], "No such option"),
    "show-unknown-flag": (["scenario", "show", "--everything"], "No such option"),
    "script-without-user": (["script"], "Missing option '--user'"),
    "clock-advance-and-set": (["clock", "--advance", "1", "--set", "2030-01-01T00:00:00Z"], "not both"),
    "clock-naive-time": (["clock", "--set", "2030-01-01T00:00:00"], "add the offset"),
    "clock-advance-not-finite": (["clock", "--advance", "inf"], "finite number"),
    "clock-set-not-finite": (["clock", "--set", "nan"], "finite number"),
    "location-not-finite": (["location", "--from", ALICE, "--lat", "nan", "--lon", "1"], "finite number"),
    "clock-not-a-time": (["clock", "--set", "tomorrow"], "not a time"),
    "tap-nothing": (["tap", "--from", ALICE, "wamid.x"], "exactly one"),
    "tap-both": (["tap", "--from", ALICE, "wamid.x", "yes", "--index", "0"], "exactly one"),
    "tap-without-from": (["tap", "wamid.x", "yes"], "Missing option '--from'"),
    "location-without-longitude": (["location", "--from", ALICE, "--lat", "1"], "Missing option '--lon'"),
    "location-not-a-number": (["location", "--from", ALICE, "--lat", "north", "--lon", "1"],
                              "Invalid value for '--lat'"),
}


@pytest.mark.parametrize("case", USAGE_ERRORS, ids=list(USAGE_ERRORS))
def test_usage_errors_exit_2_and_send_nothing(cli: Cli, users_number: Number, tmp_path: Path, case: str) -> None:
    args, message = USAGE_ERRORS[case]
    (tmp_path / "ok.json").write_text("{}")
    (tmp_path / "bad.json").write_bytes(b"\xff{")
    argv = [str(tmp_path / a[1:]) if a.startswith("@") else a for a in args]  # @name: a file in tmp_path
    run = cli("sandbox", *argv, *opts(users_number))
    assert run.code == 2, run
    assert run.out == "" and message in re.sub(r"[\s│]+", " ", run.err), run
    assert scenario_of(users_number) == {}


REFUSED = {
    "unknown-field": (["scenario", "set", '{"colour": "red"}'], "Unknown scenario field 'colour'"),
    "fail-code": (["scenario", "set", "--fail", "1"], "'fail.code' must be one of"),
    "probability-range": (["scenario", "set", "--fail", "131026", "--probability", "2"], "'fail.probability'"),
    "duplicates-range": (["scenario", "set", "--duplicates", "9"], "'duplicates' must be a whole number from 0 to 5"),
    "delay-backwards": (["scenario", "set", "--delay", "read=5:1"], "'delays.read'"),
    "seed-for-a-user": (["scenario", "set", "--user", ALICE, "--seed", "3"], "'seed' is set for the whole number"),
    "bad-script": (["scenario", "set", '{"script": [{"reply": "hi"}]}'], "script is a list of"),
    "unknown-user-set": (["scenario", "set", "--user", NOBODY, "--drop", "read"], "NotFoundError"),
    "unknown-user-show": (["scenario", "show", "--user", NOBODY], "not a simulated user"),
    "unknown-user-script": (["script", "--user", NOBODY], "NotFoundError"),
    "clock-backwards": (["clock", "--set", "2001-01-01T00:00:00Z"], "the clock only moves forward"),
    "tap-unknown-message": (["tap", "--from", ALICE, "wamid.nothing", "yes"], "NotFoundError"),
}


@pytest.mark.parametrize("case", REFUSED, ids=list(REFUSED))
def test_refused_requests_exit_1_with_the_gateways_reason(cli: Cli, users_number: Number, case: str) -> None:
    args, message = REFUSED[case]
    run = cli("sandbox", *args, *opts(users_number))
    assert run.code == 1, run
    assert run.out == "" and run.err.startswith("error: ") and message in run.err, run
    with_json = cli("sandbox", *args, "--json", *opts(users_number))
    assert (with_json.code, with_json.out) == (1, ""), with_json  # errors never reach stdout
    assert scenario_of(users_number) == {}


# --- a scripted user -----------------------------------------------------------------------------------


def test_script_progress(cli: Cli, users_number: Number, business: Client, hook: Receiver,
                         tmp_path: Path) -> None:
    number = users_number
    number.set_webhook(hook.url)
    none = cli("sandbox", "script", "--user", ALICE, *opts(number))
    assert none.code == 0 and none.out.startswith(f"{ALICE} has no script"), none
    path = tmp_path / "script.json"
    path.write_text(json.dumps({"script": MENU_SCRIPT}))
    assert cli("sandbox", "scenario", "set", "--user", ALICE, "--file", str(path), *opts(number)).code == 0
    assert cli("sandbox", "script", "--user", ALICE, "--json", *opts(number)).json() == {
        "steps": 2, "done": 0, "finished": False, "mismatches": []}

    business.user_says(ALICE, "hi")  # opens the 24-hour window
    menu = business.send(m.buttons(ALICE, "Our menu", [("hours", "Opening hours"), ("prices", "Prices")]))
    off_track = business.send_text(ALICE, "Something else").message_id
    assert cli("sandbox", "clock", "--advance", "1", *opts(number)).code == 0  # the user answers after reading
    hook.wait_for(lambda rs: any(r.message and r.message.get("context", {}).get("id") == menu.message_id
                                 for r in rs), what="the scripted tap")
    wait_until(lambda: cli("sandbox", "script", "--user", ALICE, "--json", *opts(number)).json()["mismatches"],
               what="the mismatch recorded")
    halfway = cli("sandbox", "script", "--user", ALICE, *opts(number))
    assert halfway.out.splitlines() == [
        f"{ALICE}: 1 of 2 steps done", f"  step 2: expected '9 to 5', got text 'Something else' ({off_track})"
    ], halfway

    business.send_text(ALICE, "We are open 9 to 5")
    assert cli("sandbox", "clock", "--advance", "1", *opts(number)).code == 0
    hook.wait_for(lambda rs: any(r.message and r.message.get("text") == {"body": "Thanks!"} for r in rs),
                  what="the scripted answer")
    done = cli("sandbox", "script", "--user", ALICE, *opts(number))
    assert done.out.splitlines()[0] == f"{ALICE}: 2 of 2 steps done, finished", done
    progress = cli("sandbox", "script", "--user", ALICE, "--json", *opts(number)).json()
    assert (progress["done"], progress["finished"], len(progress["mismatches"])) == (2, True, 1)


# --- acting as a user ------------------------------------------------------------------------------------


def test_tap_pick_react_and_share_a_location(cli: Cli, users_number: Number, business: Client,
                                              hook: Receiver) -> None:
    number = users_number
    number.set_webhook(hook.url)
    business.user_says(BRUNO, "options please")
    buttons = business.send(m.buttons(BRUNO, "Pick one", [("yes", "Yes"), ("no", "No")])).message_id
    tapped = cli("sandbox", "tap", "--from", BRUNO, buttons, "yes", *opts(number))
    assert tapped.code == 0 and WAMID.match(tapped.out.strip()), tapped
    assert inbound(hook, tapped.out.strip())["interactive"] == {
        "type": "button_reply", "button_reply": {"id": "yes", "title": "Yes"}}

    listed = business.send(m.list_message(BRUNO, "Choose", "Options", [
        Section("Drinks", rows=[Row("tea", "Tea"), Row("juice", "Juice")])])).message_id
    picked = cli("sandbox", "pick", "--from", BRUNO, listed, "juice", "--json", *opts(number))
    assert picked.code == 0, picked
    assert inbound(hook, picked.json()["message_id"])["interactive"]["list_reply"] == {"id": "juice", "title": "Juice"}

    reacted = cli("sandbox", "react", "--from", BRUNO, buttons, "\U0001f44d", *opts(number))
    assert inbound(hook, reacted.out.strip())["reaction"] == {"message_id": buttons, "emoji": "\U0001f44d"}
    removed = cli("sandbox", "react", "--from", BRUNO, buttons, *opts(number))
    assert inbound(hook, removed.out.strip())["reaction"] == {"message_id": buttons, "emoji": ""}

    located = cli("sandbox", "location", "--from", BRUNO, "--lat", "37.4833", "--lon", "-122.149",
                  "--name", "Meta HQ", "--address", "1 Hacker Way", *opts(number))
    assert located.code == 0, located
    assert inbound(hook, located.out.strip())["location"] == {
        "latitude": 37.4833, "longitude": -122.149, "name": "Meta HQ", "address": "1 Hacker Way"}

    not_a_template = cli("sandbox", "tap", "--from", BRUNO, buttons, "--index", "0", *opts(number))
    assert not_a_template.code == 1 and "is not a template with buttons" in not_a_template.err, not_a_template
    wrong_button = cli("sandbox", "tap", "--from", BRUNO, buttons, "maybe", *opts(number))
    assert wrong_button.code == 1 and "no choice with id 'maybe'" in wrong_button.err, wrong_button
    far_away = cli("sandbox", "location", "--from", BRUNO, "--lat", "91", "--lon", "0", *opts(number))
    assert far_away.code == 1 and "latitude" in far_away.err, far_away


# --- the clock -------------------------------------------------------------------------------------------


def test_clock_set_to_a_time(cli: Cli, users_number: Number) -> None:
    number = users_number
    now = cli("sandbox", "clock", "--json", *opts(number)).json()["now"]
    target = datetime.fromtimestamp(now + 60, tz=UTC).isoformat().replace("+00:00", "Z")
    moved = cli("sandbox", "clock", "--set", target, "--json", *opts(number))
    assert moved.code == 0, moved
    assert moved.json()["now"] == pytest.approx(now + 60, abs=1)
    unix = cli("sandbox", "clock", "--set", f"{now + 120:.3f}", *opts(number))
    assert unix.code == 0, unix
    assert re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d  \((\d+\.\d{3})\)$", unix.out.strip()), unix
    assert float(unix.out.strip().split("(")[1].rstrip(")")) == pytest.approx(now + 120, abs=1)


# --- injected faults in the delivery log ---------------------------------------------------------------


def test_the_delivery_log_says_what_the_scenario_injected(cli: Cli, users_number: Number, hook: Receiver,
                                                          business: Client) -> None:
    users_number.set_webhook(hook.url)
    assert cli("sandbox", "say", "--from", ALICE, "hi", *opts(users_number)).code == 0  # opens the window
    assert cli("sandbox", "scenario", "set", "--fail", "131026", "--next", "1", *opts(users_number)).code == 0
    failed = business.send(m.text(ALICE, "injected failure")).message_id

    def logged() -> list[dict[str, Any]]:
        page = cli("deliveries", "ls", "--json", *opts(users_number)).json()["deliveries"]
        return [d for d in page if d["event"]["wamid"] == failed and d["state"] == "delivered"]

    [entry] = wait_until(logged, what="the injected failure's delivery")
    assert entry["injected"] == ["failure"]
    listed = cli("deliveries", "ls", *opts(users_number))
    [row] = [line for line in listed.out.splitlines() if entry["event_id"] in line]
    assert "(injected: failure)" in row, listed
    shown = cli("deliveries", "show", str(entry["id"]), *opts(users_number))
    assert "injected   failure (by the sandbox scenario)" in shown.out, shown
    real = [line for line in listed.out.splitlines() if "message" in line and entry["event_id"] not in line]
    assert real and not any("injected" in line for line in real), listed  # the user's real message is not

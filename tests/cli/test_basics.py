"""The command line without a gateway: help, exit codes, colour, the base install, and the
pieces behind `tail` and the error messages."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from e2e.support import free_port
from openwaba.cli import INSTALL_HINT, main, output
from openwaba.cli.messaging import media_kind
from openwaba.cli.tail import Follower
from openwaba.client import (
    AuthenticationError,
    NotFoundError,
    RateLimitError,
    ReengagementError,
    ServerError,
    TransportError,
    UnsupportedError,
)
from openwaba.receiver import parse_document

from .conftest import Cli, script

COMMANDS = [
    [], ["serve"], ["migrate"], ["send"], ["tail"], ["receive"], ["bench"],
    ["sandbox", "say"], ["sandbox", "send-file"], ["sandbox", "users"], ["sandbox", "phone"], ["sandbox", "clock"],
    ["channels", "create"], ["channels", "list"], ["keys", "rotate"], ["keys", "list"],
    ["webhooks", "get"], ["webhooks", "set"], ["deliveries", "ls"], ["deliveries", "show"], ["deliveries", "replay"],
]


# --- help, usage and exit codes ------------------------------------------------------------------


def test_help_as_a_user_sees_it() -> None:
    shown = script("--help", env={"COLUMNS": "120"})
    assert shown.code == 0, shown
    for word in ("serve", "send", "sandbox", "tail", "receive", "bench", "channels", "keys", "webhooks", "deliveries"):
        assert word in shown.out
    assert "Exit codes: 0 ok · 1 the API refused the request · 2 usage or configuration error · 3 cannot reach" in (
        " ".join(shown.out.split())
    )
    assert "\x1b[" not in shown.out + shown.err


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "openwaba")
def test_every_command_has_help(cli: Cli, command: list[str]) -> None:
    shown = cli(*command, "--help")
    assert shown.code == 0, shown
    assert "Usage: openwaba" in shown.out


def test_bench_help_points_to_the_full_suite(cli: Cli) -> None:
    assert "bench/run.py" in " ".join(cli("bench", "--help").out.split())


def test_usage_errors_exit_2(cli: Cli) -> None:
    assert cli().code == 2  # no command: the help, as a usage error
    unknown = cli("sned")
    assert unknown.code == 2 and "sned" in unknown.err
    no_key = cli("webhooks", "get", "--url", "http://127.0.0.1:9")
    assert no_key.code == 2 and "no API key" in no_key.err and no_key.out == ""
    bad_option = cli("tail", "--interval", "0", "--api-key", "k")
    assert bad_option.code == 2


def test_unreachable_gateway_exits_3() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    run = script("sandbox", "users", "--url", url, "--api-key", "k", env={"NO_COLOR": "1"})
    assert run.code == 3, run
    assert run.out == ""
    assert f"cannot reach openwaba at {url}" in run.err and "is `openwaba serve` running" in run.err
    assert "\x1b[" not in run.err


def test_colour_only_on_a_terminal(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    plain = cli("sandbox", "users", "--url", url, "--api-key", "k")
    assert plain.code == 3 and "\x1b[" not in plain.err  # captured: not a terminal
    monkeypatch.setenv("FORCE_COLOR", "1")  # as if on a terminal
    coloured = cli("sandbox", "users", "--url", url, "--api-key", "k")
    assert "\x1b[1;31merror: " in coloured.err
    monkeypatch.setenv("NO_COLOR", "1")
    no_color = cli("sandbox", "users", "--url", url, "--api-key", "k")
    assert "\x1b[1;31m" not in no_color.err and "\x1b[33m" not in no_color.err, no_color


def test_a_base_install_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in [m for m in sys.modules if m.startswith("openwaba.cli.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "typer", None)  # `import typer` now fails, as without the [cli] extra
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 2
    assert capsys.readouterr().err.strip() == INSTALL_HINT
    assert INSTALL_HINT == "openwaba's command line needs: pip install 'openwaba[cli]'"


# --- error messages ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "code", "hint"),
    [
        (ReengagementError(400, 131047, "Re-engagement message", ""), 1, "24-hour window is closed: send a template"),
        (AuthenticationError(401, None, "Invalid API key", ""), 1, "check --api-key / OPENWABA_API_KEY"),
        (RateLimitError(400, 130429, "Rate limit hit", ""), 1, "retry later"),
        (RateLimitError(429, None, "Too many requests", ""), 1, "retry later"),
        (NotFoundError(404, None, "no such delivery", ""), 1, "nothing with that id"),
        (ServerError(503, None, "Service Unavailable", ""), 3, "failed temporarily"),
        (TransportError("GET x got no answer"), 3, "is `openwaba serve` running at http://gw:8080?"),
        (UnsupportedError("no such endpoint"), 2, None),
    ],
)
def test_errors_map_to_exit_codes_and_hints(error: Any, code: int, hint: str | None) -> None:
    assert output.exit_code(error) == code
    shown = output.hint(error, "http://gw:8080", "--api-key / OPENWABA_API_KEY")
    assert (shown is None) if hint is None else (shown is not None and hint in shown), shown


def test_api_errors_show_class_code_status_and_details() -> None:
    error = ReengagementError(400, 131047, "Re-engagement message", "More than 24 hours have passed")
    assert output.describe(error, "http://gw") == (
        "ReengagementError (#131047, HTTP 400): Re-engagement message\n  details: More than 24 hours have passed"
    )


@pytest.mark.parametrize(
    ("mime", "kind"),
    [("image/jpeg", "image"), ("image/png", "image"), ("image/webp", "sticker"), ("video/mp4", "video"),
     ("audio/ogg", "audio"), ("application/pdf", "document"), ("text/plain", "document")],
)
def test_files_are_sent_as_the_type_their_mime_type_says(mime: str, kind: str) -> None:
    assert media_kind(mime) == kind


# --- tail's cursor -------------------------------------------------------------------------------------


class FakeLog:
    """The delivery log as `Client.deliveries`/`Client.delivery` page it: newest first, `before` cursors."""

    def __init__(self) -> None:
        self.rows: dict[int, dict[str, Any]] = {}
        self.pages = 0

    def put(self, id_: int, state: str, attempts: int) -> None:
        self.rows[id_] = {"id": id_, "state": state, "attempts_made": attempts}

    def deliveries(self, *, limit: int = 100, before: int | None = None) -> dict[str, Any]:
        self.pages += 1
        ids = sorted((i for i in self.rows if before is None or i < before), reverse=True)[:limit]
        return {"deliveries": [dict(self.rows[i]) for i in ids],
                "paging": {"before": ids[-1]} if len(ids) == limit else {}}

    def delivery(self, id_: int) -> dict[str, Any]:
        return {**self.rows[id_], "attempts": [{"at": float(id_ * 10 + self.rows[id_]["attempts_made"])}]}


def outcomes(details: list[dict[str, Any]]) -> list[tuple[int, str, int]]:
    return [(d["id"], d["state"], d["attempts_made"]) for d in details]


def test_tail_prints_each_outcome_once_and_follows_retries() -> None:
    log = FakeLog()
    log.put(1, "delivered", 1)
    log.put(2, "pending", 1)  # failed once, will be retried
    log.put(3, "held", 0)
    follower = Follower(log)  # type: ignore[arg-type]
    assert outcomes(follower.start(last=0)) == []
    assert outcomes(follower.poll()) == []  # nothing changed

    log.put(2, "delivered", 2)  # the retry succeeded
    log.put(3, "delivered", 1)
    log.put(4, "pending", 0)  # new, not attempted yet: nothing to show
    log.put(5, "dead", 0)  # dead-lettered without an attempt (its primary never succeeded)
    assert outcomes(follower.poll()) == [(2, "delivered", 2), (3, "delivered", 1), (5, "dead", 0)]
    log.put(4, "pending", 1)
    assert outcomes(follower.poll()) == [(4, "pending", 1)]
    log.put(4, "pending", 2)
    assert outcomes(follower.poll()) == [(4, "pending", 2)]
    assert outcomes(follower.poll()) == []


def test_tail_last_shows_recent_outcomes_oldest_first() -> None:
    log = FakeLog()
    for i in range(1, 8):
        log.put(i, "delivered", 1)
    log.put(8, "pending", 0)
    follower = Follower(log)  # type: ignore[arg-type]
    assert [d["id"] for d in follower.start(last=3)] == [5, 6, 7]


def test_tail_pages_down_to_the_oldest_delivery_it_follows() -> None:
    log = FakeLog()
    log.put(1, "pending", 1)
    follower = Follower(log)  # type: ignore[arg-type]
    follower.start(last=0)
    for i in range(2, 302):  # three pages of newer deliveries arrive at once
        log.put(i, "delivered", 1)
    log.put(1, "delivered", 2)
    log.pages = 0
    shown = follower.poll()
    assert len(shown) == 301 and shown[0]["id"] == 1
    assert log.pages == 4  # 100 + 100 + 100 + the page with #1
    log.pages = 0
    assert follower.poll() == [] and log.pages == 1  # nothing left to follow: the newest page only


# --- summaries -------------------------------------------------------------------------------------------


def test_event_summaries() -> None:
    from openwaba.cli import events

    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001234", "phone_number_id": "1"},
        "contacts": [{"profile": {"name": "Alice"}, "wa_id": "15551230001"}],
        "messages": [
            {"from": "15551230001", "id": "wamid.in1", "timestamp": "1", "type": "text", "text": {"body": "hi"}},
            {"from": "15551230001", "id": "wamid.in2", "timestamp": "1", "type": "image",
             "image": {"id": "9", "mime_type": "image/png", "caption": "look"}},
        ],
        "statuses": [
            {"id": "wamid.out", "status": "failed", "timestamp": "1", "recipient_id": "15551230001",
             "errors": [{"code": 131047, "title": "Re-engagement message"}]},
        ],
    }
    document = {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [
        {"field": "messages", "value": value},
        {"field": "message_template_status_update",
         "value": {"event": "APPROVED", "message_template_id": 7, "message_template_name": "promo",
                   "message_template_language": "en_US", "reason": None}},
    ]}]}
    summaries = sorted(events.summary(item) for item in parse_document(document))
    assert summaries == sorted([
        "text from 15551230001 (Alice): hi",
        "image from 15551230001 (Alice): look",
        "failed → 15551230001  wamid.out  #131047 Re-engagement message",
        "promo (en_US) approved",
    ])
    [status] = [item for item in parse_document(document) if item.kind == "status"]
    as_json = events.as_json(status)
    assert as_json["recipient_id"] == "15551230001" and as_json["errors"][0]["code"] == 131047
    assert as_json["raw"]["status"] == "failed"

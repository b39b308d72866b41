"""The commands that watch or load a gateway: `tail`, `receive`, `bench`."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from e2e.routing_support import Number, new_number, wait_for_event
from e2e.support import ALICE, API_KEY, USER_NAMES, Receiver, Server, free_port, http, wait_until

from .conftest import Background, Cli

pytestmark = pytest.mark.e2e

UNKNOWN = "15559990001"  # not a simulated user: a send to it ends in a `failed` status at once
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def as_number(number: Number) -> list[str]:
    return ["--url", number.srv.url, "--api-key", number.key]


def attempts_of(cli: Cli, number: Number, event_id: str) -> tuple[int, str] | None:
    page = cli("deliveries", "ls", "--json", *as_number(number)).json()["deliveries"]
    found = [(d["attempts_made"], d["state"]) for d in page if d["event_id"] == event_id]
    return found[0] if found and found[0][0] else None


# --- tail ------------------------------------------------------------------------------------------


def test_tail_shows_a_sent_message_s_status(cli: Cli, number: Number, hook: Receiver) -> None:
    number.set_webhook(hook.url)
    wamid = number.send_text(UNKNOWN, "where does this go?")
    event_id = wait_for_event(number.srv, wamid)
    wait_until(lambda: attempts_of(cli, number, event_id), what="the delivery's attempt in the log")

    lines = cli("tail", "--last", "5", "--max-events", "1", "--json", *as_number(number))
    assert lines.code == 0, lines
    [line] = lines.json_lines()
    assert line["event_id"] == event_id and line["event"] == "status" and line["wamid"] == wamid
    assert (line["state"], line["attempts"], line["status_code"]) == ("delivered", 1, 200)
    assert line["destination"] == "main" and line["url"] == hook.url and line["latency_ms"] > 0
    assert line["summary"].startswith(f"failed → {UNKNOWN}  {wamid}") and "#131026" in line["summary"]

    readable = cli("tail", "--last", "5", "--max-events", "1", *as_number(number))
    assert readable.code == 0, readable
    [text] = readable.out.splitlines()
    assert "✓ delivered" in text and " main " in text and " status " in text, text
    assert f"failed → {UNKNOWN}  {wamid}" in text and "HTTP 200 · " in text and text.endswith("#1"), text
    assert "watching" in readable.err


def test_tail_stops_at_its_timeout(cli: Cli, number: Number) -> None:
    started = time.monotonic()
    quiet = cli("tail", "--timeout", "0.3", "--interval", "0.1", *as_number(number))
    assert quiet.code == 0 and quiet.out == "", quiet
    assert time.monotonic() - started < 5


def test_tail_follows_a_retry_live(background: Callable[..., Background], number: Number, hook: Receiver) -> None:
    number.set_webhook(hook.url)
    hook.respond_with(503)
    tail = background("tail", "--json", "--interval", "0.1", "--max-events", "2", "--timeout", "20",
                      *as_number(number))
    tail.wait_for_line("err", lambda line: "watching" in line)
    wamid = number.send_text(UNKNOWN, "retried")
    first = json.loads(tail.wait_for_line("out", lambda line: wamid in line))
    assert (first["state"], first["attempts"], first["status_code"]) == ("pending", 1, 503)
    number.srv.advance_clock(10)  # past the first retry delay (5 s)
    second = json.loads(tail.wait_for_line("out", lambda line: wamid in line))
    assert (second["state"], second["attempts"], second["status_code"]) == ("delivered", 2, 200)
    assert second["delivery_id"] == first["delivery_id"]
    assert tail.process.wait(timeout=10) == 0


def test_tail_ctrl_c_exits_0(background: Callable[..., Background], number: Number) -> None:
    tail = background("tail", "--interval", "0.1", *as_number(number))
    tail.wait_for_line("err", lambda line: "watching" in line)
    assert tail.stop() == 0


# --- receive ---------------------------------------------------------------------------------------


def wait_listening(port: int) -> None:
    def answers() -> bool:
        try:
            return http("GET", f"http://127.0.0.1:{port}/webhook", timeout=1).status == 403
        except OSError:
            return False

    wait_until(answers, what=f"the receiver on port {port}")


def cloud_message(wa_id: str, text: str, wamid: str = "wamid.cli-test-1") -> dict[str, Any]:
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001234", "phone_number_id": "123"},
        "contacts": [{"profile": {"name": USER_NAMES[wa_id]}, "wa_id": wa_id}],
        "messages": [{"from": wa_id, "id": wamid, "timestamp": str(int(time.time())), "type": "text",
                      "text": {"body": text}}],
    }
    return {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages",
                                                                                       "value": value}]}]}


def signed(body: bytes, secret: str, msg_id: str = "evt_cli_1") -> dict[str, str]:
    """Standard Webhooks headers for `body`."""
    timestamp = str(int(time.time()))
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return {"webhook-id": msg_id, "webhook-timestamp": timestamp,
            "webhook-signature": "v1," + base64.b64encode(digest).decode(), "Content-Type": "application/json"}


def test_receive_shows_what_the_gateway_posts(background: Callable[..., Background], gateway: Server,
                                              tmp_path: Path) -> None:
    port = free_port()
    receiver = background("receive", "--port", str(port), "--db", str(tmp_path / "hooks.db"))
    wait_listening(port)
    number = new_number(gateway, sandbox_users=[ALICE])
    number.set_webhook(f"http://127.0.0.1:{port}/webhook")
    number.user_says(ALICE, "hi there")
    line = receiver.wait_for_line("out", lambda line: "hi there" in line)
    assert re.search(rf"^\d\d:\d\d:\d\d\.\d{{3}} message +text from {ALICE} \(.+\): hi there$", line), line
    wamid = number.send_text(UNKNOWN, "to nobody")
    status = receiver.wait_for_line("out", lambda line: wamid in line)
    assert f"status          failed → {UNKNOWN}  {wamid}  #131026" in status, status
    assert "\x1b[" not in line + status
    assert receiver.stop() == 0


def test_receive_checks_signatures_and_prints_json_lines(background: Callable[..., Background],
                                                         tmp_path: Path) -> None:
    port = free_port()
    receiver = background("receive", "--port", str(port), "--db", str(tmp_path / "hooks.db"), "--secret", SECRET,
                          "--json")
    wait_listening(port)
    body = json.dumps(cloud_message(ALICE, "signed hello")).encode()
    url = f"http://127.0.0.1:{port}/webhook"
    assert http("POST", url, data=body, headers={"Content-Type": "application/json"}).status == 401
    assert http("POST", url, data=body, headers=signed(body, SECRET)).status == 200
    item = json.loads(receiver.wait_for_line("out", lambda line: "signed hello" in line))
    assert (item["kind"], item["from"], item["text"], item["id"]) == ("message", ALICE, "signed hello",
                                                                      "wamid.cli-test-1")
    assert item["summary"] == f"text from {ALICE} ({USER_NAMES[ALICE]}): signed hello"
    assert item["raw"]["text"] == {"body": "signed hello"}
    assert http("POST", url, data=body, headers=signed(body, SECRET, "evt_cli_2")).status == 200  # a duplicate
    assert receiver.stop() == 0
    assert len([line for line in receiver.seen["out"] if "signed hello" in line]) == 1


def test_receive_runs_your_own_receiver(background: Callable[..., Background], tmp_path: Path) -> None:
    (tmp_path / "mybot.py").write_text(
        "from openwaba.receiver import Message, Receiver\n"
        "receiver = Receiver('bot.db')\n"
        "@receiver.on_message\n"
        "def handle(message: Message) -> None:\n"
        "    print('bot got', message.text, flush=True)\n"
    )
    port = free_port()
    receiver = background("receive", "--app", "mybot:receiver", "--port", str(port), cwd=tmp_path)
    wait_listening(port)
    body = json.dumps(cloud_message(ALICE, "for the bot")).encode()
    assert http("POST", f"http://127.0.0.1:{port}/", data=body).status == 200
    assert receiver.wait_for_line("out", lambda line: "bot got" in line) == "bot got for the bot"
    assert receiver.stop() == 0
    assert (tmp_path / "bot.db").exists()


def test_receive_usage_errors(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notabot.py").write_text("receiver = 42\n")
    for args, says in (
        (["--app", "notabot:receiver", "--secret", SECRET], "cannot be used with --app"),
        (["--app", "notabot:receiver"], "is not an openwaba.receiver.Receiver"),
        (["--app", "no_such_module_here:receiver"], "cannot import"),
        (["--app", "notabot"], "module:attribute"),
        (["--basic", "nopassword"], "user:password"),
    ):
        run = cli("receive", "--port", "0", *args)
        assert run.code == 2 and says in run.err, (args, run)


# --- bench -----------------------------------------------------------------------------------------


def test_bench_reports_rate_and_latency(cli: Cli, gateway: Server) -> None:
    options = ["--url", gateway.url, "--api-key", API_KEY]
    report = cli("bench", "--messages", "20", "--concurrency", "4", "--to", UNKNOWN, "--json", *options)
    assert report.code == 0, report
    result = report.json()
    assert (result["messages"], result["accepted"], result["errors"], result["to"]) == (20, 20, {}, UNKNOWN)
    assert result["sends_per_second"] > 0
    p50, p90, p99 = (result["latency_ms"][p] for p in ("p50", "p90", "p99"))
    assert 0 < p50 <= p90 <= p99

    readable = cli("bench", "--messages", "5", "--concurrency", "2", *options)  # to the first simulated user
    assert readable.code == 0, readable
    assert "5 to 15551230001" in readable.out and "sends/s" in readable.out and "p99" in readable.out
    assert "errors      none" in readable.out, readable

    refused = cli("bench", "--messages", "3", "--to", UNKNOWN, "--url", gateway.url, "--api-key", "wrong")
    assert refused.code == 1 and "AuthenticationError" in refused.err, refused
    down = cli("bench", "--messages", "3", "--to", UNKNOWN, "--url", f"http://127.0.0.1:{free_port()}",
               "--api-key", API_KEY)
    assert down.code == 3 and "cannot reach" in down.err, down

"""Every command against a real gateway, through `main(argv)`: what it prints, as text and
as `--json`, and the exit codes of the failures people run into."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from e2e.routing_support import PARTNER_KEY, Number, new_number, wait_for_event
from e2e.support import ALICE, API_KEY, BRUNO, CHEN, USER_NAMES, Receiver, Server, free_port, wait_until

from .conftest import Cli, script

pytestmark = pytest.mark.e2e

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
WAMID = re.compile(r"^wamid\.\S+$")


def demo(gateway: Server) -> list[str]:
    """The options that act as the seeded demo number (its users wrote "Hi! 👋" at first start)."""
    return ["--url", gateway.url, "--api-key", API_KEY]


def as_number(number: Number) -> list[str]:
    return ["--url", number.srv.url, "--api-key", number.key]


def partner_options(gateway: Server) -> list[str]:
    return ["--url", gateway.url, "--partner-key", PARTNER_KEY]


# --- send --------------------------------------------------------------------------------------


def test_send_text_prints_the_wamid_and_json_the_result(cli: Cli, gateway: Server) -> None:
    sent = cli("send", ALICE, "Hello from the CLI", *demo(gateway))
    assert sent.code == 0, sent
    assert WAMID.match(sent.out.strip()), sent
    assert sent.err == ""

    as_json = cli("send", ALICE, "again", "--reply-to", sent.out.strip(), "--json", *demo(gateway))
    assert as_json.code == 0, as_json
    result = as_json.json()
    assert result["wa_id"] == ALICE and result["input"] == ALICE and WAMID.match(result["message_id"])
    chat = gateway.ok("GET", f"/sandbox/users/{ALICE}/messages")["messages"]
    shown = {m["id"]: m for m in chat}
    assert shown[result["message_id"]]["context"] == {"id": sent.out.strip()}


def test_send_a_template_with_parameters(cli: Cli, gateway: Server) -> None:
    plain = cli("send", BRUNO, "--template", "hello_world", *demo(gateway))
    assert plain.code == 0, plain
    wrong = cli("send", BRUNO, "--template", "hello_world", "--param", "surplus", *demo(gateway))
    assert wrong.code == 1, wrong
    assert "TemplateError" in wrong.err and "#132000" in wrong.err, wrong
    assert "hint:" in wrong.err
    missing = cli("send", BRUNO, "--template", "no_such_template", "--language", "de", *demo(gateway))
    assert missing.code == 1 and "132001" in missing.err, missing


def test_send_files_by_their_type(cli: Cli, gateway: Server, tmp_path: Path) -> None:
    picture = tmp_path / "shop.png"
    picture.write_bytes(PNG)
    notes = tmp_path / "notes.txt"
    notes.write_text("opening hours: 9-17\n")
    image = cli("send", CHEN, "--file", str(picture), "--caption", "Our shop", "--json", *demo(gateway))
    assert image.code == 0, image
    document = cli("send", CHEN, "--file", str(notes), "--json", *demo(gateway))
    assert document.code == 0, document
    chat = {m["id"]: m for m in gateway.ok("GET", f"/sandbox/users/{CHEN}/messages")["messages"]}
    shown_image = chat[image.json()["message_id"]]
    assert shown_image["type"] == "image" and shown_image["image"]["caption"] == "Our shop"
    assert shown_image["image"]["id"] == image.json()["media_id"]
    shown_document = chat[document.json()["message_id"]]
    assert shown_document["type"] == "document" and shown_document["document"]["filename"] == "notes.txt"

    unsupported = tmp_path / "clip.gif"
    unsupported.write_bytes(b"GIF89a")
    refused = cli("send", CHEN, "--file", str(unsupported), *demo(gateway))
    assert refused.code == 1 and "MediaError" in refused.err and "131053" in refused.err, refused


def test_send_usage_errors_exit_2(cli: Cli, gateway: Server, tmp_path: Path) -> None:
    for args in (
        [ALICE],  # nothing to send
        [ALICE, "text", "--template", "hello_world"],  # two things
        [ALICE, "text", "--param", "x"],
        [ALICE, "--file", str(tmp_path / "missing.png")],
        ["send-to-nobody-because-this-is-not-a-command-option", "--no-such-option"],
    ):
        run = cli("send", *args, *demo(gateway))
        assert run.code == 2, (args, run)
        assert run.out == "", (args, run)


def test_errors_name_the_class_code_and_a_hint(cli: Cli, gateway: Server) -> None:
    wrong_key = cli("send", ALICE, "hi", "--url", gateway.url, "--api-key", "wrong")
    assert wrong_key.code == 1, wrong_key
    assert "AuthenticationError" in wrong_key.err and "401" in wrong_key.err
    assert "--api-key / OPENWABA_API_KEY" in wrong_key.err
    assert wrong_key.out == ""

    no_key = cli("send", ALICE, "hi", "--url", gateway.url)
    assert no_key.code == 2 and "no API key" in no_key.err, no_key

    nobody = f"http://127.0.0.1:{free_port()}"
    down = cli("send", ALICE, "hi", "--url", nobody, "--api-key", API_KEY)
    assert down.code == 3, down
    assert "cannot reach" in down.err and f"is `openwaba serve` running at {nobody}?" in down.err

    wrong_partner = cli("channels", "list", "--url", gateway.url, "--partner-key", "wrong")
    assert wrong_partner.code == 1 and "--partner-key / OPENWABA_PARTNER_API_KEY" in wrong_partner.err


def test_key_and_url_from_the_environment(cli: Cli, gateway: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENWABA_URL", gateway.url)
    monkeypatch.setenv("OPENWABA_SANDBOX_API_KEY", API_KEY)  # the fallback of OPENWABA_API_KEY
    assert cli("sandbox", "users").code == 0
    monkeypatch.setenv("OPENWABA_API_KEY", "wrong")  # wins over the sandbox key
    assert cli("sandbox", "users").code == 1


# --- the sandbox --------------------------------------------------------------------------------


def test_sandbox_users_say_send_file_phone(cli: Cli, gateway: Server, hook: Receiver, tmp_path: Path) -> None:
    number = new_number(gateway, sandbox_users=[ALICE])
    number.set_webhook(hook.url)
    users = cli("sandbox", "users", *as_number(number))
    assert users.code == 0 and ALICE in users.out, users
    assert [u["wa_id"] for u in cli("sandbox", "users", "--json", *as_number(number)).json()["users"]] == [ALICE]

    said = cli("sandbox", "say", "--from", ALICE, "Is the shop open?", *as_number(number))
    assert said.code == 0, said
    wamid = said.out.strip()
    [inbound] = hook.wait_for_count(lambda r: r.message is not None and r.message["id"] == wamid, 1)
    assert inbound.message is not None and inbound.message["text"] == {"body": "Is the shop open?"}

    reply = cli("send", ALICE, "Yes, until 17:00", "--reply-to", wamid, *as_number(number))
    assert reply.code == 0, reply
    answer = cli("sandbox", "say", "--from", ALICE, "Thanks", "--reply-to", reply.out.strip(), "--json",
                 *as_number(number))
    assert answer.code == 0 and WAMID.match(answer.json()["message_id"]), answer

    picture = tmp_path / "receipt.png"
    picture.write_bytes(PNG)
    sent_file = cli("sandbox", "send-file", "--from", ALICE, str(picture), "--caption", "my receipt",
                    *as_number(number))
    assert sent_file.code == 0, sent_file
    file_wamid = sent_file.out.strip()
    [media] = hook.wait_for_count(lambda r: r.message is not None and r.message["id"] == file_wamid, 1)
    assert media.message is not None and media.message["type"] == "image"
    assert media.message["image"]["caption"] == "my receipt"

    phone = cli("sandbox", "phone", ALICE, *as_number(number))
    assert phone.code == 0, phone
    lines = phone.out.splitlines()
    assert [line.split("  ", 1)[1].split()[0] for line in lines[:3]] == ["you", "business", "you"], phone
    assert lines[0].endswith("Is the shop open?") and lines[2].endswith("Thanks")
    assert "↪ Yes, until 17:00  ✓" in lines[1]  # a reply, with its ticks
    assert "[image] my receipt" in lines[3]
    assert "chat of" in phone.err
    view = cli("sandbox", "phone", ALICE, "--json", *as_number(number)).json()
    assert view["wa_id"] == ALICE and view["messages"][0]["id"] == file_wamid  # newest first


def test_sandbox_clock(cli: Cli, gateway: Server) -> None:
    before = cli("sandbox", "clock", "--json", *demo(gateway))
    assert before.code == 0, before
    moved = cli("sandbox", "clock", "--advance", "1", "--json", *demo(gateway))
    assert moved.json()["now"] >= before.json()["now"] + 1
    shown = cli("sandbox", "clock", *demo(gateway))
    assert re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d  \(\d+\.\d{3}\)$", shown.out.strip()), shown
    refused = cli("sandbox", "clock", "--advance", "-5", *demo(gateway))
    assert refused.code == 1 and "InvalidRequestError" in refused.err, refused
    not_sandbox = cli("sandbox", "say", "--from", "15550000000", "hi", *demo(gateway))
    assert not_sandbox.code == 1 and "NotFoundError" in not_sandbox.err, not_sandbox


# --- channels, keys, webhooks --------------------------------------------------------------------


def test_channels_create_list_and_keys(cli: Cli, gateway: Server) -> None:
    created = cli("channels", "create", "+15557770001", *partner_options(gateway))
    assert created.code == 0, created
    match = re.search(r"channel (\d+): \+15557770001 \(cloud, sandbox\) in WABA (\d+)", created.out)
    assert match, created
    channel_id, waba_id = match.groups()
    key = re.search(r"D360-API-KEY: (\S+)", created.out)
    assert key, created
    assert gateway.call("GET", "/phone_number", key=key.group(1)).json()["phone_number"] == "15557770001"

    second = cli("channels", "create", "+15557770002", "--waba", waba_id, "--type", "on_premise", "--json",
                 *partner_options(gateway))
    assert second.code == 0, second
    assert (second.json()["waba_id"], second.json()["type"]) == (waba_id, "on_premise")

    listed = cli("channels", "list", *partner_options(gateway))
    assert "+15557770001" in listed.out and "on_premise" in listed.out, listed
    as_json = cli("channels", "list", "--json", *partner_options(gateway)).json()
    assert {"15557770001", "15557770002"} <= {c["phone_number"] for c in as_json["channels"]}

    taken = cli("channels", "create", "+15557770001", *partner_options(gateway))
    assert taken.code == 1 and "ConflictError" in taken.err and "409" in taken.err, taken
    bad_type = cli("channels", "create", "+15557770003", "--type", "fax", *partner_options(gateway))
    assert bad_type.code == 2, bad_type
    no_key = cli("channels", "list", "--url", gateway.url)
    assert no_key.code == 2 and "partner" in no_key.err, no_key

    keys = cli("keys", "list", channel_id, "--json", *partner_options(gateway))
    assert keys.code == 0 and keys.json()["api_keys"][0]["api_key"].endswith("*" * 28), keys
    rotated = cli("keys", "rotate", channel_id, *partner_options(gateway))
    assert rotated.code == 0 and "webhook" in rotated.err.lower(), rotated
    new_key = re.search(r"D360-API-KEY: (\S+)", rotated.out)
    assert new_key and new_key.group(1) != key.group(1)
    assert gateway.call("GET", "/phone_number", key=key.group(1)).status == 401
    rotated_json = cli("keys", "rotate", channel_id, "--json", *partner_options(gateway)).json()
    assert rotated_json["id"] == channel_id and rotated_json["api_key"]
    listed_keys = cli("keys", "list", channel_id, *partner_options(gateway))
    assert listed_keys.code == 0 and "****" in listed_keys.out, listed_keys


def test_webhooks_set_and_get(cli: Cli, number: Number, hook: Receiver) -> None:
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    shown = cli("webhooks", "set", hook.url, "--header", "Authorization: Basic eDp5", "--secret", secret,
                "--app-secret", "meta-app-secret", *as_number(number))
    assert shown.code == 0, shown
    assert shown.out.splitlines() == [f"url: {hook.url}", "header: Authorization: Basic eDp5"]
    got = cli("webhooks", "get", "--json", *as_number(number))
    assert got.json() == {"url": hook.url, "headers": {"Authorization": "Basic eDp5"}}

    wamid = number.send_text("15559990001", "signed")
    event_id = wait_for_event(number.srv, wamid)
    [delivered] = hook.wait_for_count(lambda r: r.webhook_id == event_id, 1)
    assert delivered.headers["authorization"] == "Basic eDp5"
    assert delivered.headers["webhook-signature"].startswith("v1,")
    assert delivered.headers["x-hub-signature-256"].startswith("sha256=")

    bad_header = cli("webhooks", "set", hook.url, "--header", "NoColon", *as_number(number))
    assert bad_header.code == 2, bad_header
    refused = cli("webhooks", "set", "ftp://example.com/x", *as_number(number))
    assert refused.code == 1 and "400" in refused.err, refused
    removed = cli("webhooks", "set", "", "--json", *as_number(number))
    assert removed.json() == {"url": "", "headers": {}}
    assert cli("webhooks", "get", *as_number(number)).out.strip() == "url: (none)"


# --- deliveries ------------------------------------------------------------------------------------


def test_deliveries_ls_show_replay(cli: Cli, number: Number, hook: Receiver) -> None:
    number.set_webhook(hook.url)
    hook.respond_with(500)
    wamid = number.send_text("15559990001", "to be replayed")
    event_id = wait_for_event(number.srv, wamid)
    hook.wait_for_count(lambda r: r.webhook_id == event_id, 1)

    def first_attempt_recorded() -> bool:
        page = cli("deliveries", "ls", "--json", *as_number(number)).json()["deliveries"]
        return bool(page) and page[0]["attempts_made"] == 1

    wait_until(first_attempt_recorded, what="the failed attempt in the log")
    listed = cli("deliveries", "ls", *as_number(number))
    assert listed.code == 0, listed
    [row] = [line for line in listed.out.splitlines() if event_id in line]
    delivery_id = int(row.split()[1])
    assert "pending" in row and "500" in row, listed

    pending = cli("deliveries", "ls", "--state", "pending", "--json", *as_number(number)).json()
    assert [d["id"] for d in pending["deliveries"]] == [delivery_id]
    assert cli("deliveries", "ls", "--state", "dead", "--json", *as_number(number)).json()["deliveries"] == []

    shown = cli("deliveries", "show", str(delivery_id), *as_number(number))
    assert shown.code == 0, shown
    assert f"delivery {delivery_id}  pending" in shown.out
    assert f"failed → 15559990001  {wamid}" in shown.out and "#131026" in shown.out
    assert '"object": "whatsapp_business_account"' in shown.out
    detail = cli("deliveries", "show", str(delivery_id), "--json", *as_number(number)).json()
    assert detail["attempts"][0]["status_code"] == 500 and detail["payload"] == hook.requests[0].json

    pending_replay = cli("deliveries", "replay", str(delivery_id), *as_number(number))
    assert pending_replay.code == 1 and "replayed 0 deliveries" in pending_replay.out, "already due"
    assert cli("sandbox", "clock", "--advance", "10", *as_number(number)).code == 0  # past the 5 s retry
    hook.wait_for_count(lambda r: r.webhook_id == event_id, 2)
    wait_until(lambda: cli("deliveries", "show", str(delivery_id), "--json", *as_number(number)).json()["state"]
               == "delivered", what="the retry's success in the log")
    replayed = cli("deliveries", "replay", str(delivery_id), *as_number(number))
    assert replayed.code == 0 and "replayed 1 deliveries" in replayed.out, replayed
    hook.wait_for_count(lambda r: r.webhook_id == event_id, 3)
    nothing = cli("deliveries", "replay", "--json", *as_number(number))
    assert nothing.code == 1 and nothing.json() == {"replayed": 0}, nothing
    missing = cli("deliveries", "show", "999999", *as_number(number))
    assert missing.code == 1 and "NotFoundError" in missing.err, missing


def test_user_names_show_in_the_readable_output(cli: Cli, gateway: Server) -> None:
    users = cli("sandbox", "users", *demo(gateway))
    for wa_id, name in USER_NAMES.items():
        assert re.search(rf"{wa_id}\s+│\s+{name}", users.out), users


def test_the_installed_script_sends_and_fails_in_plain_text(gateway: Server) -> None:
    options = ["--url", gateway.url, "--api-key", API_KEY]
    sent = script("send", ALICE, "from the script", *options)
    assert sent.code == 0, sent
    assert WAMID.match(sent.out.strip()) and sent.err == "", sent
    users = script("sandbox", "users", *options, env={"NO_COLOR": "1"})
    assert users.code == 0 and ALICE in users.out, users
    refused = script("send", ALICE, "hi", "--url", gateway.url, "--api-key", "wrong", env={"NO_COLOR": "1"})
    assert refused.code == 1 and refused.out == "", refused
    assert refused.err.startswith("error: AuthenticationError (HTTP 401)"), refused
    for run in (sent, users, refused):
        assert "\x1b[" not in run.out + run.err, run

"""End-to-end: the partner API, API-key rotation (a new key revokes the old ones
and removes the number's webhook URL), isolation between numbers, and the CLI
commands that wrap them.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from .routing_support import (
    PARTNER_ENV,
    PARTNER_KEY,
    UNKNOWN_USER,
    Number,
    all_delivered,
    assert_flat_error,
    assert_meta_error,
    demo_number,
    got_event,
    module_partner_server,
    new_number,
    new_waba,
    partner,
    partner_ok,
    routes_of,
    wait_for_event,
    wait_for_routes,
    wait_for_webhook,
)
from .support import (
    ALICE,
    API_KEY,
    BRUNO,
    KEY_HEADER,
    Receiver,
    Server,
    ServerFactory,
    clean_env,
    http,
    openwaba_executable,
    text_message,
)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def partner_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from module_partner_server(tmp_path_factory)

U = "http://127.0.0.1:9/hook"

# Every endpoint a number's key opens, with a body that would be accepted.
KEYED_ENDPOINTS: list[tuple[str, str, Any]] = [
    ("GET", "/phone_number", None),
    ("GET", "/v1/configs/phone_number", None),
    ("GET", "/health_status", None),
    ("POST", "/messages", text_message(ALICE, "hello")),
    ("GET", "/v1/configs/webhook", None),
    ("POST", "/v1/configs/webhook", {"url": U}),
    ("GET", "/waba_webhook", None),
    ("POST", "/waba_webhook", {"url": U, "override_all": False}),
    ("GET", "/multi_webhook", None),
    ("POST", "/multi_webhook", {"enabled": True}),
    ("PUT", "/multi_webhook", {"destinations": [{"name": "x", "url": U}]}),
    ("PATCH", "/multi_webhook", {"name": "x", "url": U}),
    ("DELETE", "/multi_webhook/x", None),
    ("GET", "/deliveries", None),
    ("GET", "/deliveries/1", None),
    ("POST", "/deliveries/1/replay", None),
    ("POST", "/deliveries/replay", {}),
    ("GET", "/sandbox/users", None),
    ("POST", f"/sandbox/users/{ALICE}/messages", {"text": "hi"}),
    ("GET", "/sandbox/clock", None),
    ("POST", "/sandbox/clock", {"advance_seconds": 0}),
]


def inbound(number: Number, wa_id: str, text: str) -> str:
    return wait_for_event(number.srv, number.user_says(wa_id, text))


def rotate(srv: Server, number: Number) -> str:
    """A new key through the partner API; returns it (and makes `number` use it)."""
    created = partner_ok(srv, "POST", f"/channels/{number.id}/api_keys", None, 201)
    assert set(created) >= {"id", "address", "api_key", "app_id"}
    assert created["id"] == number.id
    assert created["app_id"] == number.phone_number_id
    assert created["address"] == srv.url
    assert isinstance(created["api_key"], str) and len(created["api_key"]) >= 16
    assert created["api_key"] != number.key
    number.key = created["api_key"]
    return str(created["api_key"])


def assert_key_revoked(srv: Server, key: str) -> None:
    for method, path, body in KEYED_ENDPOINTS:
        reply = srv.call(method, path, body, key=key)
        assert reply.status == 401, f"{method} {path} with a revoked key answered {reply.status}: {reply.body!r}"
        assert isinstance(reply.json().get("error"), str), reply.body


# 4. key rotation (a new key revokes every earlier one and removes the webhook URL) ---------------


def test_key_rotation_revokes_the_old_key_and_removes_the_webhook(server: ServerFactory) -> None:
    srv = server(PARTNER_ENV)
    old_rx, new_rx = Receiver(path="/old"), Receiver(path="/new")
    old_rx.start()
    new_rx.start()
    try:
        demo = demo_number(srv)
        old_key = demo.key
        demo.set_webhook(old_rx.url, {"Authorization": "Basic b2xkOm9sZA=="})
        first = inbound(demo, ALICE, "before the rotation")
        wait_for_routes(srv, first, all_delivered, "the first event delivered")

        old_rx.stop()  # the next event cannot be delivered: it waits for a retry to the old URL
        pending = inbound(demo, BRUNO, "pending while the key changes")
        wait_for_routes(srv, pending, lambda rows: rows[0]["attempts"] >= 1, "a failed attempt to the old URL")

        new_key = rotate(srv, demo)
        assert_key_revoked(srv, old_key)

        # The new key works, and the number's webhook URL is gone.
        assert demo.ok("GET", "/phone_number")["phone_number_id"] == demo.phone_number_id
        assert demo.ok("GET", "/v1/configs/webhook") == {"url": "", "headers": {}}
        [row] = routes_of(srv, pending)
        assert row["state"] == "dead", "what was waiting for the removed URL is not posted to it any more"

        # Nothing is posted to the old URL, even once it answers again and retries are due.
        old_rx.start()
        srv.call("POST", "/sandbox/clock", {"advance_seconds": 3600}, key=new_key)
        after = inbound(demo, ALICE, "after the rotation")
        assert routes_of(srv, after) == [], "no webhook: the event goes nowhere"

        # Set again with the new key: events flow to the new URL only.
        demo.set_webhook(new_rx.url)
        barrier = inbound(demo, ALICE, "new webhook")
        wait_for_webhook(new_rx, barrier)
        wait_for_routes(srv, barrier, all_delivered, "the barrier delivered")
        assert [r.webhook_id for r in old_rx.requests] == [first], "the old URL got nothing after the rotation"

        # The partner sees one key, masked.
        keys = partner_ok(srv, "GET", f"/channels/{demo.id}/api_keys")["api_keys"]
        assert len(keys) == 1
        [shown] = keys
        assert shown["api_key"] != new_key and new_key not in json.dumps(keys)
        assert shown["api_key"].startswith(new_key[:4]) and shown["api_key"].endswith("*")
        assert shown["app_id"] == demo.phone_number_id and shown["id"] == demo.id

        # Rotating again revokes the second key too, and removes the new webhook.
        rotate(srv, demo)
        assert_key_revoked(srv, new_key)
        assert demo.ok("GET", "/v1/configs/webhook")["url"] == ""
    finally:
        old_rx.stop()
        new_rx.stop()


def test_rotation_keeps_the_waba_and_multi_webhooks(server: ServerFactory, receiver: Receiver) -> None:
    """Only the number's own URL is removed (360dialog: "the webhook URL for that number")."""
    srv = server(PARTNER_ENV)
    number = new_number(srv)
    number.set_webhook(U)
    number.set_waba_webhook(receiver.url, override_all=False)
    number.ok("POST", "/multi_webhook", {"enabled": True, "destinations": [{"name": "m", "url": U}]})
    before = number.snapshot()
    rotate(srv, number)
    after = number.snapshot()
    assert after["webhook"] == {"url": "", "headers": {}}
    assert after["waba"] == before["waba"] and after["multi"] == before["multi"]
    # With no number webhook left, the WABA webhook takes the number's events.
    wamid = number.send_text(UNKNOWN_USER, "to the WABA webhook")
    event = wait_for_event(srv, wamid)
    [got] = wait_for_webhook(receiver, event)
    assert got.status is not None and got.status["id"] == wamid


def test_rotated_key_survives_a_restart(server: ServerFactory) -> None:
    srv = server(PARTNER_ENV)
    number = new_number(srv)
    old_key = number.key
    new_key = rotate(srv, number)
    srv.restart()
    assert srv.call("GET", "/phone_number", key=old_key).status == 401
    assert number.ok("GET", "/phone_number")["phone_number"] == number.phone_number
    assert number.key == new_key


def test_a_new_number_key_works_only_for_that_number(server: ServerFactory) -> None:
    srv = server(PARTNER_ENV)
    number = new_number(srv)
    assert number.ok("GET", "/phone_number") == {"phone_number": number.phone_number,
                                                  "phone_number_id": number.phone_number_id}
    health = number.ok("GET", "/health_status")
    assert health["id"] == number.phone_number_id
    assert {e["entity_type"]: e["id"] for e in health["health_status"]["entities"]}["WABA"] == number.waba_id


# 5. isolation between numbers ---------------------------------------------------------------


def test_one_numbers_key_never_sees_or_changes_another_numbers_data(server: ServerFactory) -> None:
    srv = server(PARTNER_ENV)
    rx_a, rx_b = Receiver(path="/a"), Receiver(path="/b")
    rx_a.start()
    rx_b.start()
    try:
        a = demo_number(srv)
        b = new_number(srv)  # another WABA
        a.set_webhook(rx_a.url, {"Authorization": "Basic YTph"})
        a.set_waba_webhook(rx_a.url + "?waba", override_all=False, headers={"X-A": "1"})
        a.ok("POST", "/multi_webhook", {"enabled": True, "destinations": [
            {"name": "a-dest", "url": "http://127.0.0.1:9/a-multi", "headers": {"X-A": "2"}}]})
        a_event = inbound(a, ALICE, "A's event")
        [a_delivery] = [r for r in routes_of(srv, a_event) if r["kind"] == "main"]
        wait_for_routes(srv, a_event, lambda rows: any(r["state"] == "delivered" for r in rows), "A's event")
        a_view = a.snapshot()
        a_deliveries = a.ok("GET", "/deliveries")["deliveries"]
        assert a_deliveries

        # B reads only its own data.
        assert b.ok("GET", "/v1/configs/webhook") == {"url": "", "headers": {}}
        assert b.ok("GET", "/waba_webhook") == {"url": "", "headers": {}, "override_all": False,
                                                "waba_id": int(b.waba_id),
                                                "numbers_on_this_waba": [b.phone_number_id]}
        assert b.ok("GET", "/multi_webhook") == {"enabled": False, "fanout": "after_main", "destinations": []}
        assert b.ok("GET", "/phone_number")["phone_number_id"] == b.phone_number_id
        assert b.ok("GET", "/health_status")["id"] == b.phone_number_id
        assert b.ok("GET", "/deliveries")["deliveries"] == []
        assert b.ok("GET", "/sandbox/users") == {"users": []}
        assert_flat_error(b.call("GET", f"/deliveries/{a_delivery['id']}"), 404, 404)
        replay = b.call("POST", f"/deliveries/{a_delivery['id']}/replay")
        assert replay.status == 404 or replay.json() == {"replayed": 0}, replay.body
        assert b.ok("POST", "/deliveries/replay", {"state": "delivered"}) == {"replayed": 0}

        # B cannot reach A's destinations by name, enabled or not.
        assert_flat_error(b.call("PATCH", "/multi_webhook", {"name": "a-dest", "url": U}))
        assert_flat_error(b.call("DELETE", "/multi_webhook/a-dest"))
        b.ok("POST", "/multi_webhook", {"enabled": True})
        assert_flat_error(b.call("PATCH", "/multi_webhook", {"name": "a-dest", "url": U}), 404, 404)
        assert_flat_error(b.call("DELETE", "/multi_webhook/a-dest"), 404, 404)
        # B cannot speak as A's simulated users.
        assert_flat_error(b.call("POST", f"/sandbox/users/{ALICE}/messages", {"text": "I am Alice"}), 404, 404)

        # B changes only B's configuration.
        b.set_webhook(rx_b.url, {"Authorization": "Basic Yjpi"})
        b.set_waba_webhook(rx_b.url + "?waba", override_all=True)
        b.ok("PUT", "/multi_webhook", {"destinations": [{"name": "a-dest", "url": "http://127.0.0.1:9/b-multi"}]})
        b.ok("DELETE", "/multi_webhook/a-dest")
        b.ok("POST", "/multi_webhook", {"enabled": False})
        assert a.snapshot() == a_view
        assert a.ok("GET", "/deliveries")["deliveries"] == a_deliveries

        # B's sends are B's: its event reaches B's WABA webhook only, with B's metadata.
        wamid = b.send_text(ALICE, "sent as B")  # Alice is A's simulated user, not B's
        b_event = wait_for_event(srv, wamid)
        [row] = srv.query("SELECT channel_id FROM events WHERE id = ?", b_event)
        assert str(row["channel_id"]) == b.id
        rows = wait_for_routes(srv, b_event, all_delivered, "B's event delivered")
        assert [r["url"] for r in rows] == [rx_b.url + "?waba"]
        [got] = got_event(rx_b, b_event)
        assert got.value["metadata"] == {"display_phone_number": b.phone_number, "phone_number_id": b.phone_number_id}
        assert got.json["entry"][0]["id"] == b.waba_id
        assert got.status is not None and got.status["status"] == "failed"
        assert not got_event(rx_a, b_event)
        assert [d["event_id"] for d in b.ok("GET", "/deliveries")["deliveries"]] == [b_event]

        # A's events still go to A's receivers only.
        a_event2 = inbound(a, BRUNO, "A again")
        rows = wait_for_routes(srv, a_event2, lambda rows: any(r["kind"] == "main" and r["state"] == "delivered"
                                                                for r in rows), "A's second event")
        assert sorted(r["url"] for r in rows) == sorted([rx_a.url, "http://127.0.0.1:9/a-multi"])
        assert not got_event(rx_b, a_event2)

        # Rotating B's key changes nothing for A.
        rotate(srv, b)
        assert a.ok("GET", "/phone_number")["phone_number_id"] == a.phone_number_id
        assert a.snapshot() == a_view
        assert len(partner_ok(srv, "GET", f"/channels/{a.id}/api_keys")["api_keys"]) == 1
    finally:
        rx_a.stop()
        rx_b.stop()


# 5. the partner API's own authentication --------------------------------------------------------

PARTNER_ENDPOINTS: list[tuple[str, str, Any]] = [
    ("GET", "/wabas", None),
    ("POST", "/wabas", {"name": "sneaky"}),
    ("GET", "/channels", None),
    ("POST", "/channels", {"waba_id": "1", "phone_number": "+15550001111"}),
    ("POST", "/channels/1/api_keys", None),
    ("GET", "/channels/1/api_keys", None),
    ("PATCH", "/channels/1", {"retry_horizon_seconds": 600}),
]
PARTNER_IDS = [f"{m} {p}" for m, p, _ in PARTNER_ENDPOINTS]


def _partner_state(srv: Server) -> Any:
    return (partner_ok(srv, "GET", "/wabas"), partner_ok(srv, "GET", "/channels"),
            partner_ok(srv, "GET", "/channels/1/api_keys"), srv.call("GET", "/phone_number").status)


@pytest.mark.parametrize(("method", "path", "body"), PARTNER_ENDPOINTS, ids=PARTNER_IDS)
def test_partner_api_refuses_a_wrong_or_missing_key(partner_server: Server, method: str, path: str,
                                                    body: Any) -> None:
    before = _partner_state(partner_server)
    assert_meta_error(partner(partner_server, method, path, body, key="not-the-partner-key"), 401)
    assert_meta_error(partner(partner_server, method, path, body, key=None), 401)
    assert_meta_error(partner(partner_server, method, path, body, key=PARTNER_KEY + "x"), 401)
    # A number's key is not a partner key.
    reply = http(method, f"{partner_server.url}/api/v2/partners/openwaba{path}", json_body=body,
                 headers={KEY_HEADER: API_KEY})
    assert_meta_error(reply, 401)
    assert _partner_state(partner_server) == before


@pytest.mark.parametrize(("method", "path", "body"), PARTNER_ENDPOINTS, ids=PARTNER_IDS)
def test_partner_api_refuses_another_partner_id(partner_server: Server, method: str, path: str, body: Any) -> None:
    before = _partner_state(partner_server)
    meta = assert_meta_error(partner(partner_server, method, path, body, partner_id="someone-else"), 403)
    assert "someone-else" in meta["developer_message"]
    assert _partner_state(partner_server) == before


@pytest.mark.parametrize(("method", "path", "body"), PARTNER_ENDPOINTS, ids=PARTNER_IDS)
def test_partner_api_is_off_without_a_partner_key(shared_server: Server, method: str, path: str, body: Any) -> None:
    for key in (PARTNER_KEY, "", None):
        meta = assert_meta_error(partner(shared_server, method, path, body, key=key), 403)
        assert "OPENWABA_PARTNER_API_KEY" in meta["developer_message"]
    assert shared_server.call("GET", "/phone_number").status == 200  # the number's key is unaffected


@pytest.mark.parametrize(("method", "path", "body", "status"), [
    ("POST", "/wabas", {"name": ""}, 400),
    ("POST", "/wabas", {"name": 5}, 400),
    ("POST", "/wabas", [], 400),
    ("POST", "/channels", {"waba_id": "999999999", "phone_number": "+15557770000"}, 404),
    ("POST", "/channels", {"phone_number": "+15557770000"}, 400),
    ("POST", "/channels", {"waba_id": "{waba}", "phone_number": 15557770000}, 400),
    ("POST", "/channels", {"waba_id": "{waba}", "phone_number": "not a number"}, 400),
    ("POST", "/channels", {"waba_id": "{waba}", "phone_number": "+15557770000", "type": "onprem"}, 400),
    ("POST", "/channels", {"waba_id": "{waba}", "phone_number": "+15557770000", "mode": "live"}, 400),
    ("POST", "/channels", {"waba_id": "{waba}", "phone_number": "{taken}"}, 409),
    ("POST", "/channels/424242/api_keys", None, 404),
    ("GET", "/channels/424242/api_keys", None, 404),
    ("GET", "/channels/abc/api_keys", None, 404),
], ids=["waba-empty-name", "waba-name-not-string", "waba-body-list", "channel-unknown-waba",
        "channel-no-waba", "channel-number-not-string", "channel-bad-number", "channel-bad-type",
        "channel-bad-mode", "channel-number-taken", "key-unknown-channel", "keys-unknown-channel",
        "keys-channel-not-a-number"])
def test_partner_api_validation(partner_server: Server, method: str, path: str, body: Any, status: int) -> None:
    waba = new_waba(partner_server, "validation")
    taken = new_number(partner_server, waba_id=waba)
    if isinstance(body, dict):
        body = {k: (v.replace("{waba}", waba).replace("{taken}", "+" + taken.phone_number)
                    if isinstance(v, str) else v) for k, v in body.items()}
    before = partner_ok(partner_server, "GET", "/channels")
    assert_meta_error(partner(partner_server, method, path, body), status)
    assert partner_ok(partner_server, "GET", "/channels") == before


def test_partner_api_lists_what_it_created(partner_server: Server) -> None:
    waba = new_waba(partner_server, "listing")
    cloud = new_number(partner_server, waba_id=waba)
    legacy = new_number(partner_server, waba_id=waba, type="on_premise", mode="production")
    wabas = partner_ok(partner_server, "GET", "/wabas")
    assert {"id": waba, "name": "listing"} in wabas["wabas"] and wabas["count"] == len(wabas["wabas"])
    channels = {c["id"]: c for c in partner_ok(partner_server, "GET", "/channels")["channels"]}
    assert channels[cloud.id] == {"id": cloud.id, "waba_id": waba, "phone_number": cloud.phone_number,
                                  "phone_number_id": cloud.phone_number_id, "type": "cloud", "mode": "sandbox",
                                  "connector": "sandbox"}
    assert channels[legacy.id]["type"] == "on_premise" and channels[legacy.id]["mode"] == "production"
    assert cloud.phone_number_id != legacy.phone_number_id
    # The same number, written differently, is still the same number.
    digits = cloud.phone_number
    spaced = f"+{digits[0]} {digits[1:4]}-{digits[4:7]} {digits[7:]}"
    assert_meta_error(partner(partner_server, "POST", "/channels", {"waba_id": waba, "phone_number": spaced}), 409)


# 7. the CLI ----------------------------------------------------------------------------------


def cli(*args: str, env: dict[str, str | None] | None = None, ok: bool = True) -> subprocess.CompletedProcess[str]:
    run = subprocess.run([openwaba_executable(), *args], capture_output=True, text=True, timeout=20,
                         env=clean_env({"COLUMNS": "200", "NO_COLOR": "1", **(env or {})}), stdin=subprocess.DEVNULL)
    if ok:
        assert run.returncode == 0, f"openwaba {' '.join(args)} exited {run.returncode}\n{run.stdout}\n{run.stderr}"
    return run


def _printed_key(output: str) -> str:
    match = re.search(r"D360-API-KEY:\s*(\S+)", output)
    assert match, output
    return match.group(1)


def test_cli_channels_create_and_list(server: ServerFactory) -> None:
    srv = server(PARTNER_ENV)
    partner_args = ["--partner-key", PARTNER_KEY, "--url", srv.url]

    created = cli("channels", "create", "+15550009999", *partner_args)
    match = re.search(r"channel (\d+): \+15550009999 \(cloud, sandbox\) in WABA (\d+)", created.stdout)
    assert match, created.stdout
    channel_id, waba_id = match.groups()
    key = _printed_key(created.stdout)
    assert srv.call("GET", "/phone_number", key=key).json()["phone_number"] == "15550009999"
    assert srv.call("GET", "/phone_number", key=API_KEY).json()["phone_number"] == "15550001234"

    # A second number in the same WABA, On-Premise and production, as JSON.
    second = json.loads(cli("channels", "create", "+15550008888", "--waba", waba_id, "--type", "on_premise",
                            "--mode", "production", "--json", *partner_args).stdout)
    assert (second["waba_id"], second["type"], second["mode"]) == (waba_id, "on_premise", "production")
    assert srv.call("GET", "/phone_number", key=second["api_key"]).json()["phone_number"] == "15550008888"

    listed = cli("channels", "list", *partner_args).stdout
    assert "+15550009999" in listed and "+15550008888" in listed and "on_premise" in listed
    as_json = json.loads(cli("channels", "list", "--json", *partner_args).stdout)
    assert {c["phone_number"]: c["id"] for c in as_json["channels"]} == {
        "15550001234": "1", "15550009999": channel_id, "15550008888": second["id"]}


def test_cli_webhooks_set_and_get(server: ServerFactory, receiver: Receiver) -> None:
    srv = server(PARTNER_ENV)
    number = new_number(srv)
    number_args = ["--api-key", number.key, "--url", srv.url]
    shown = json.loads(cli("webhooks", "set", receiver.url, "--header", "Authorization: Basic x", "--json",
                           *number_args).stdout)
    assert shown == {"url": receiver.url, "headers": {"Authorization": "Basic x"}}
    assert json.loads(cli("webhooks", "get", "--json", *number_args).stdout) == shown
    assert number.ok("GET", "/v1/configs/webhook") == shown
    wamid = number.send_text(UNKNOWN_USER, "through the CLI's webhook")
    [got] = wait_for_webhook(receiver, wait_for_event(srv, wamid))
    assert got.headers.get("authorization") == "Basic x"

    bad_header = cli("webhooks", "set", "http://127.0.0.1:9/x", "--header", "NoColonHere", *number_args, ok=False)
    assert bad_header.returncode == 2
    refused = cli("webhooks", "set", "ftp://example.com/x", *number_args, ok=False)
    assert refused.returncode == 1 and "400" in refused.stderr
    assert number.ok("GET", "/v1/configs/webhook") == shown, "refused commands change nothing"


def test_cli_keys_rotate(server: ServerFactory, receiver: Receiver) -> None:
    srv = server(PARTNER_ENV)
    number = new_number(srv)
    number.set_webhook(receiver.url)
    old_key = number.key
    rotated = cli("keys", "rotate", number.id, "--partner-key", PARTNER_KEY, "--url", srv.url)
    new_key = _printed_key(rotated.stdout)
    assert new_key != old_key and "webhook" in rotated.stderr.lower()
    assert srv.call("GET", "/phone_number", key=old_key).status == 401
    assert srv.call("GET", "/v1/configs/webhook", key=new_key).json() == {"url": "", "headers": {}}
    failed = cli("webhooks", "get", "--api-key", old_key, "--url", srv.url, ok=False)
    assert failed.returncode == 1 and "401" in failed.stderr


def test_cli_reads_url_and_keys_from_the_environment(server: ServerFactory, receiver: Receiver) -> None:
    srv = server(PARTNER_ENV)
    number = new_number(srv)
    env: dict[str, str | None] = {"OPENWABA_URL": srv.url, "OPENWABA_PARTNER_API_KEY": PARTNER_KEY,
                                  "OPENWABA_API_KEY": number.key}
    listed = json.loads(cli("channels", "list", "--json", env=env).stdout)
    assert number.id in {c["id"] for c in listed["channels"]}
    cli("webhooks", "set", receiver.url, env=env)
    assert number.ok("GET", "/v1/configs/webhook")["url"] == receiver.url
    cli("webhooks", "set", "", env=env)  # '' removes it
    assert number.ok("GET", "/v1/configs/webhook")["url"] == ""


def test_cli_errors(server: ServerFactory) -> None:
    srv = server(PARTNER_ENV)
    wrong = cli("channels", "list", "--partner-key", "wrong", "--url", srv.url, ok=False)
    assert wrong.returncode == 1 and "401" in wrong.stderr
    taken = cli("channels", "create", "+15550001234", "--partner-key", PARTNER_KEY, "--url", srv.url, ok=False)
    assert taken.returncode == 1 and "409" in taken.stderr, "the demo number is already a channel"
    missing = cli("channels", "list", "--url", srv.url, ok=False)
    assert missing.returncode == 2 and "partner" in missing.stderr.lower()
    down = cli("channels", "list", "--partner-key", PARTNER_KEY, "--url", "http://127.0.0.1:9", ok=False)
    assert down.returncode == 3 and "cannot reach" in down.stderr
    numbers = {c["phone_number"] for c in partner_ok(srv, "GET", "/channels")["channels"]}
    assert numbers == {"15550001234"}, "failed commands created no number"

"""End-to-end tests of the webhook delivery engine: signatures, Retry-After,
410 Gone, the circuit breaker, FIFO and default ordering, the retry horizon,
the delivery log with replay (HTTP and CLI), and the Prometheus metrics.

Every test runs the real `openwaba serve` process and real receivers on
127.0.0.1. Retries are reached by moving the server's manual clock
(`POST /sandbox/clock`); the tests only poll for things to arrive. Absence
("nothing was posted") is proven with a *barrier*: a later event whose arrival
shows that the dispatcher has already claimed everything that was due, plus
the database (a claimed delivery carries a lease or an attempt).

Tests introduced by a "Regression:" comment pin down a bug that was found
(and fixed) while writing them. A test marked `xfail(strict=True)` describes
documented behaviour the code does not have yet (the reason names the bug); it
turns into a failure (XPASS) once the bug is fixed, so the marker can go.
"""

from __future__ import annotations

import base64
import collections
import hashlib
import hmac
import json
import os
import re
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from .support import (
    ALICE,
    API_KEY,
    BRUNO,
    CHEN,
    Received,
    Receiver,
    Server,
    ServerFactory,
    clean_env,
    http,
    openwaba_executable,
    wait_until,
)

pytestmark = pytest.mark.e2e

PARTNER_KEY = "e2e-delivery-partner-key-7d1c"
DEMO_CHANNEL = "1"
FAR_AWAY = "999999"  # a Retry-After (seconds) past every horizon used here
TIMING_SLACK = 2.0  # seconds between "due" and "attempted" on the manual clock, which keeps flowing


# --- a receiver whose answers carry headers and are chosen per request ------------------------


@dataclass
class Answer:
    """How the hook answers one request."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    raw_header_lines: bytes = b""  # sent verbatim (e.g. bytes that are not latin-1 text)
    hold: threading.Event | None = None  # answer only once this is set
    delay: float = 0.0  # seconds to wait before answering (a slow receiver)


@dataclass
class Incoming:
    """A request as a rule sees it, before it is answered."""

    headers: dict[str, str]
    body: bytes
    json: Any

    @property
    def event_id(self) -> str | None:
        return self.headers.get("webhook-id")

    @property
    def value(self) -> dict[str, Any]:
        try:
            return dict(self.json["entry"][0]["changes"][0]["value"])
        except (KeyError, IndexError, TypeError):
            return {}

    @property
    def wa_id(self) -> str | None:
        """The user of the conversation (sender of a message, recipient of a status)."""
        value = self.value
        if value.get("messages"):
            return str(value["messages"][0].get("from"))
        if value.get("statuses"):
            return str(value["statuses"][0].get("recipient_id"))
        return None

    @property
    def status(self) -> str | None:
        statuses = self.value.get("statuses") or [{}]
        found = statuses[0].get("status")
        return str(found) if found is not None else None


Rule = Callable[[Incoming], "Answer | int | None"]


class Hook(Receiver):
    """A `support.Receiver` that can answer with headers (Retry-After), hold an
    answer back, and pick answers per request with rules.

    Answers come from the first rule that returns one, then from the per-user
    scripts (`script(wa_id, ...)`), then from `answer` (200 unless changed).
    Requests are recorded when they *arrive* (before the answer), so the
    recorded order is the order in which openwaba posted them.
    """

    def __init__(self) -> None:
        super().__init__()
        self.answer: Answer = Answer(200)
        self.rules: list[Rule] = []
        self._scripts: dict[str, collections.deque[Answer]] = collections.defaultdict(collections.deque)

    def script(self, wa_id: str, *answers: Answer | int) -> None:
        """The next requests of `wa_id`'s conversation get these answers (then the default)."""
        with self._lock:
            self._scripts[wa_id].extend(_as_answer(a) for a in answers)

    def fail_all(self, status: int = 500) -> None:
        self.answer = Answer(status)

    def recover(self) -> None:
        self.answer = Answer(200)

    def choose(self, incoming: Incoming) -> Answer:
        for rule in list(self.rules):
            chosen = rule(incoming)
            if chosen is not None:
                return _as_answer(chosen)
        with self._lock:
            queue = self._scripts.get(incoming.wa_id or "")
            if queue:
                return queue.popleft()
        return self.answer

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        return _hook_handler(self)

    # questions about what arrived ------------------------------------------------------------
    def of(self, event_id: str) -> list[Received]:
        return [r for r in self.requests if r.webhook_id == event_id]

    def wait_arrivals(self, event_id: str, count: int, timeout: float = 10.0) -> list[Received]:
        return self.wait_for_count(lambda r: r.webhook_id == event_id, count, timeout, f"posts of {event_id}")


def _as_answer(value: Answer | int) -> Answer:
    return value if isinstance(value, Answer) else Answer(value)


def _hook_handler(hook: Hook) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            try:
                parsed = json.loads(body) if body else None
            except ValueError:
                parsed = None
            headers = {k.lower(): v for k, v in self.headers.items()}
            answer = hook.choose(Incoming(headers, body, parsed))
            hook._record(method=self.command, path=self.path, headers=headers, body=body, json=parsed,
                         at=time.monotonic(), answered=answer.status)
            if answer.hold is not None:
                answer.hold.wait(15)
            if answer.delay:
                time.sleep(answer.delay)
            payload = b'{"ok":true}' if answer.status == 200 else b'{"error":"scripted failure"}'
            self.send_response(answer.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in answer.headers.items():
                self.send_header(name, value)
            if answer.raw_header_lines:
                self._headers_buffer.append(answer.raw_header_lines)  # type: ignore[attr-defined]
            self.end_headers()
            self.wfile.write(payload)
            self.wfile.flush()

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    return Handler


@pytest.fixture
def hook(request: pytest.FixtureRequest) -> Any:
    made: list[Hook] = []

    def make() -> Hook:
        h = Hook()
        h.start()
        made.append(h)
        return h

    try:
        yield make
    finally:
        for h in made:
            h.stop()
        failed = any(getattr(request.node, f"rep_{w}", None) is not None and getattr(request.node, f"rep_{w}").failed
                     for w in ("setup", "call"))
        if failed:
            for number, h in enumerate(made, 1):
                print(f"hook {number} ({h.url}): {h.describe()}")


# --- talking to openwaba ------------------------------------------------------------------------


def new_secret(size: int = 32) -> str:
    return "whsec_" + base64.b64encode(os.urandom(size)).decode()


def configure(srv: Server, url: str, **fields: Any) -> None:
    srv.ok("POST", "/v1/configs/webhook", {"url": url, "headers": {}, **fields})


def partner_patch_channel(srv: Server, body: dict[str, Any]) -> Any:
    reply = http("PATCH", f"{srv.url}/api/v2/partners/openwaba/channels/{DEMO_CHANNEL}", json_body=body,
                 headers={"X-API-Key": PARTNER_KEY})
    assert reply.status == 200, reply.body
    return reply.json()


def event_of(srv: Server, wamid: str, kind: str = "message", status: str | None = None) -> str:
    """The id of the event stored for an inbound message (or a status of an outbound one)."""
    def find() -> str | None:
        rows = srv.query("SELECT id, body FROM events WHERE wamid = ? AND kind = ? ORDER BY created_at", wamid, kind)
        for row in rows:
            if status is None or f'"status":"{status}"' in bytes(row["body"]).decode():
                return str(row["id"])
        return None
    return str(wait_until(find, 10, f"the {kind} event of {wamid}"))


def delivery_rows(srv: Server, event_id: str) -> list[dict[str, Any]]:
    return srv.query(
        "SELECT d.id, d.state, d.attempts, d.created_at, d.next_attempt_at, d.deadline, d.lease_until, "
        "d.last_status, d.last_error, t.name AS destination FROM deliveries d "
        "JOIN destinations t ON t.id = d.destination_id WHERE d.event_id = ? ORDER BY d.id", event_id)


def delivery_row(srv: Server, event_id: str, destination: str = "main") -> dict[str, Any]:
    rows = [r for r in delivery_rows(srv, event_id) if r["destination"] == destination]
    assert len(rows) == 1, f"deliveries of {event_id}: {delivery_rows(srv, event_id)}"
    return rows[0]


def wait_row(srv: Server, event_id: str, check: Callable[[dict[str, Any]], bool], what: str,
             destination: str = "main", timeout: float = 10.0) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        row = delivery_row(srv, event_id, destination)
        return row if check(row) else None
    found = wait_until(probe, timeout, what, lambda: f"deliveries of {event_id}: {delivery_rows(srv, event_id)}")
    assert found is not None
    return found


def wait_state(srv: Server, event_id: str, state: str, destination: str = "main",
               timeout: float = 10.0) -> dict[str, Any]:
    return wait_row(srv, event_id, lambda r: r["state"] == state, f"{event_id} -> {destination} {state}",
                    destination, timeout)


def settled(row: dict[str, Any]) -> bool:
    """The attempt in flight (if any) is over: its outcome is committed."""
    return row["lease_until"] is None


def attempts_settled(n: int) -> Callable[[dict[str, Any]], bool]:
    """`n` attempts made, the last one's outcome committed."""
    return lambda row: bool(row["attempts"] == n and settled(row))


def detail(srv: Server, delivery_id: int) -> dict[str, Any]:
    return dict(srv.ok("GET", f"/deliveries/{delivery_id}"))


def log(srv: Server, **query: Any) -> list[dict[str, Any]]:
    qs = "&".join(f"{k}={v}" for k, v in query.items())
    return list(srv.ok("GET", "/deliveries" + (f"?{qs}" if qs else ""))["deliveries"])


def now_of(srv: Server) -> float:
    return float(srv.ok("GET", "/sandbox/clock")["now"])


def barrier(srv: Server, witness: Hook, wa_id: str = CHEN) -> str:
    """An event that `witness` answers 200 to, waited for: every delivery that was due
    before it has been claimed by the time it arrives."""
    wamid = srv.user_says(wa_id, f"barrier {time.monotonic_ns()}")
    event_id = event_of(srv, wamid)
    witness.wait_arrivals(event_id, 1)
    return event_id


# --- 1. signatures ------------------------------------------------------------------------------------


def assert_meta_signature(app_secret: str, request: Received) -> None:
    expected = "sha256=" + hmac.new(app_secret.encode(), request.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(request.headers.get("x-hub-signature-256", ""), expected), request.headers


def test_signatures_verify_with_standardwebhooks_across_a_rotation(server: ServerFactory, hook: Any) -> None:
    srv = server()
    h = hook()
    first, app_secret = new_secret(), "meta-app-secret-0f3a9c"
    configure(srv, h.url, secret=first, app_secret=app_secret)
    # Move the manual clock far ahead: signatures must still carry wall-clock time,
    # or standardwebhooks (5 minutes of tolerance) would reject them.
    srv.advance_clock(7200)

    wamid = srv.user_says(ALICE, "signed once")
    event_id = event_of(srv, wamid)
    [got] = h.wait_arrivals(event_id, 1)
    assert got.headers["webhook-id"] == event_id
    assert abs(int(got.headers["webhook-timestamp"]) - time.time()) < 60
    assert re.fullmatch(r"v1,[A-Za-z0-9+/]+=*", got.headers["webhook-signature"]), got.headers
    assert Webhook(first).verify(got.body, got.headers) == got.json
    assert_meta_signature(app_secret, got)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(got.body, got.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(first).verify(got.body.replace(b"signed once", b"signed twice"), got.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(first).verify(got.body, {**got.headers, "webhook-id": "evt_someone_else"})

    # Rotation: the new secret goes in front, the previous one stays valid.
    second = new_secret(24)
    configure(srv, h.url, secret=second)
    wamid = srv.user_says(ALICE, "signed during the rotation")
    event_id = event_of(srv, wamid)
    [got] = h.wait_arrivals(event_id, 1)
    signatures = got.headers["webhook-signature"].split(" ")
    assert len(signatures) == 2 and all(s.startswith("v1,") for s in signatures), signatures
    assert Webhook(second).verify(got.body, got.headers) == got.json
    assert Webhook(first).verify(got.body, got.headers) == got.json
    assert_meta_signature(app_secret, got)  # not given again: kept

    # A third secret retires the oldest one.
    third = new_secret(64)
    configure(srv, h.url, secret=third)
    wamid = srv.user_says(ALICE, "signed after the rotation")
    event_id = event_of(srv, wamid)
    [got] = h.wait_arrivals(event_id, 1)
    assert Webhook(third).verify(got.body, got.headers) == got.json
    assert Webhook(second).verify(got.body, got.headers) == got.json
    with pytest.raises(WebhookVerificationError):
        Webhook(first).verify(got.body, got.headers)

    # "" removes the signing secret: no signature header any more.
    configure(srv, h.url, secret="", app_secret="")
    wamid = srv.user_says(ALICE, "unsigned")
    [got] = h.wait_arrivals(event_of(srv, wamid), 1)
    assert "webhook-signature" not in got.headers and "x-hub-signature-256" not in got.headers
    assert got.headers["webhook-id"] == event_of(srv, wamid)


def test_a_retry_is_signed_afresh_with_the_same_webhook_id(server: ServerFactory, hook: Any) -> None:
    srv = server()
    h = hook()
    secret, app_secret = new_secret(), "meta-app-secret-retry"
    configure(srv, h.url, secret=secret, app_secret=app_secret)
    h.script(ALICE, 500)
    event_id = event_of(srv, srv.user_says(ALICE, "retry me"))
    h.wait_arrivals(event_id, 1)
    wait_row(srv, event_id, attempts_settled(1), "the failed attempt recorded")
    srv.advance_clock(5)
    first, second = h.wait_arrivals(event_id, 2)
    assert first.body == second.body and first.webhook_id == second.webhook_id == event_id
    for got in (first, second):
        Webhook(secret).verify(got.body, got.headers)
        assert_meta_signature(app_secret, got)


def test_multi_webhook_destinations_are_signed_too(server: ServerFactory, hook: Any) -> None:
    srv = server()
    main, extra = hook(), hook()
    configure(srv, main.url)
    old, app_secret = new_secret(), "meta-app-secret-multi"
    srv.ok("POST", "/multi_webhook", {"enabled": True, "fanout": "independent", "destinations": [
        {"name": "signed", "url": extra.url, "headers": {}, "secret": old, "app_secret": app_secret}]})
    event_id = event_of(srv, srv.user_says(BRUNO, "to both"))
    [got] = extra.wait_arrivals(event_id, 1)
    Webhook(old).verify(got.body, got.headers)
    assert_meta_signature(app_secret, got)
    [plain] = main.wait_arrivals(event_id, 1)
    assert "webhook-signature" not in plain.headers and "x-hub-signature-256" not in plain.headers

    new = new_secret()
    srv.ok("PATCH", "/multi_webhook", {"name": "signed", "secret": new})
    event_id = event_of(srv, srv.user_says(BRUNO, "rotated"))
    [got] = extra.wait_arrivals(event_id, 1)
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    Webhook(new).verify(got.body, got.headers)
    Webhook(old).verify(got.body, got.headers)
    assert_meta_signature(app_secret, got)


@pytest.mark.parametrize("secret", [
    "whsec_not base64!",
    "whsec_" + base64.b64encode(b"x" * 23).decode(),  # too short
    "whsec_" + base64.b64encode(b"x" * 65).decode(),  # too long
    "whsec_",
])
def test_bad_signing_secrets_are_refused(shared_server: Server, secret: str) -> None:
    reply = shared_server.call("POST", "/v1/configs/webhook", {"url": "http://127.0.0.1:9/hook", "secret": secret})
    assert reply.status == 400, reply.body
    assert "secret" in reply.json()["error"]


# --- 2. Retry-After -------------------------------------------------------------------------------------


def attempt_times(srv: Server, event_id: str, destination: str = "main") -> list[float]:
    return [a["at"] for a in detail(srv, delivery_row(srv, event_id, destination)["id"])["attempts"]]


def test_retry_after_seconds_is_honoured(server: ServerFactory, hook: Any) -> None:
    srv = server()
    h = hook()
    configure(srv, h.url)
    h.script(ALICE, Answer(429, {"Retry-After": "120"}))
    event_id = event_of(srv, srv.user_says(ALICE, "slow down"))
    h.wait_arrivals(event_id, 1)
    row = wait_row(srv, event_id, attempts_settled(1), "the 429 recorded")
    assert row["state"] == "pending" and row["last_status"] == 429
    [first_at] = attempt_times(srv, event_id)
    assert row["next_attempt_at"] >= first_at + 120  # not the schedule's 5 s

    # 60 s later (past the schedule's 5 s and 30 s): still not retried.
    srv.advance_clock(60)
    barrier(srv, h, BRUNO)
    row = delivery_row(srv, event_id)
    assert len(h.of(event_id)) == 1 and row["attempts"] == 1 and settled(row), row

    srv.advance_clock(61)
    second = h.wait_arrivals(event_id, 2)[1]
    assert second.webhook_id == event_id
    wait_state(srv, event_id, "delivered")
    first, again = attempt_times(srv, event_id)
    assert again - first >= 120


def test_retry_after_http_date_on_503_is_honoured(server: ServerFactory, hook: Any) -> None:
    srv = server()
    h = hook()
    configure(srv, h.url)
    h.script(ALICE, Answer(503, {"Retry-After": formatdate(time.time() + 120, usegmt=True)}))
    event_id = event_of(srv, srv.user_says(ALICE, "maintenance"))
    h.wait_arrivals(event_id, 1)
    row = wait_row(srv, event_id, attempts_settled(1), "the 503 recorded")
    assert row["last_status"] == 503 and row["state"] == "pending"
    srv.advance_clock(60)
    barrier(srv, h, BRUNO)
    assert len(h.of(event_id)) == 1 and delivery_row(srv, event_id)["attempts"] == 1
    srv.advance_clock(61)
    h.wait_arrivals(event_id, 2)
    wait_state(srv, event_id, "delivered")


def test_retry_after_past_the_channel_horizon_dead_letters(server: ServerFactory, hook: Any) -> None:
    srv = server({"OPENWABA_PARTNER_API_KEY": PARTNER_KEY})
    h = hook()
    configure(srv, h.url)
    changed = partner_patch_channel(srv, {"retry_horizon_seconds": 60})
    assert changed["retry_horizon_seconds"] == 60
    h.script(ALICE, Answer(429, {"Retry-After": "120"}))
    event_id = event_of(srv, srv.user_says(ALICE, "too late"))
    h.wait_arrivals(event_id, 1)
    row = wait_state(srv, event_id, "dead")
    assert row["attempts"] == 1 and row["last_status"] == 429
    assert row["deadline"] == pytest.approx(row["created_at"] + 60)
    [shown] = log(srv, event_id=event_id)
    assert shown["state"] == "dead" and shown["next_attempt_at"] is None

    # A Retry-After that fits in the horizon is honoured as usual.
    h.script(BRUNO, Answer(429, {"Retry-After": "30"}))
    event_id = event_of(srv, srv.user_says(BRUNO, "fits"))
    h.wait_arrivals(event_id, 1)
    row = wait_row(srv, event_id, attempts_settled(1), "the 429 recorded")
    assert row["state"] == "pending"
    srv.advance_clock(31)
    h.wait_arrivals(event_id, 2)
    wait_state(srv, event_id, "delivered")

    # null restores the deployment's horizon (24 h): 120 s fits again.
    partner_patch_channel(srv, {"retry_horizon_seconds": None})
    h.script(CHEN, Answer(429, {"Retry-After": "120"}))
    event_id = event_of(srv, srv.user_says(CHEN, "fits again"))
    h.wait_arrivals(event_id, 1)
    row = wait_row(srv, event_id, attempts_settled(1), "the 429 recorded")
    assert row["state"] == "pending" and row["deadline"] == pytest.approx(row["created_at"] + 86400)


def test_a_429_without_retry_after_follows_the_schedule(server: ServerFactory, hook: Any) -> None:
    srv = server()
    h = hook()
    configure(srv, h.url)
    h.script(ALICE, 429, Answer(503, {"Retry-After": "soon, maybe"}))
    event_id = event_of(srv, srv.user_says(ALICE, "no header"))
    h.wait_arrivals(event_id, 1)
    wait_row(srv, event_id, attempts_settled(1), "the 429 recorded")
    srv.advance_clock(5)
    h.wait_arrivals(event_id, 2)  # the schedule's first delay, 5 s
    wait_row(srv, event_id, lambda r: r["attempts"] == 2 and settled(r), "the 503 recorded")
    srv.advance_clock(30)
    h.wait_arrivals(event_id, 3)  # unparseable Retry-After: the schedule's 30 s
    wait_state(srv, event_id, "delivered")


# Regression: an HTTP-date Retry-After was compared with the (manual) delivery clock instead of wall-clock
# time (Dispatcher._attempt passed started_at to parse_retry_after); once the manual clock has been moved,
# the receiver's date looked past and was ignored
def test_retry_after_http_date_after_the_clock_was_moved(server: ServerFactory, hook: Any) -> None:
    srv = server()
    h = hook()
    configure(srv, h.url)
    srv.advance_clock(3600)
    h.script(ALICE, Answer(503, {"Retry-After": formatdate(time.time() + 120, usegmt=True)}))
    event_id = event_of(srv, srv.user_says(ALICE, "maintenance"))
    h.wait_arrivals(event_id, 1)
    wait_row(srv, event_id, attempts_settled(1), "the 503 recorded")
    srv.advance_clock(60)
    barrier(srv, h, BRUNO)
    assert len(h.of(event_id)) == 1, "retried before the Retry-After date"


def test_a_garbage_unicode_retry_after_is_a_normal_failure(server: ServerFactory, hook: Any) -> None:
    srv = server()
    h = hook()
    configure(srv, h.url)
    # UTF-8 "²": str.isdigit() is true for it, float() refuses it.
    h.script(ALICE, Answer(503, raw_header_lines="Retry-After: ²\r\n".encode()))
    event_id = event_of(srv, srv.user_says(ALICE, "odd header"))
    h.wait_arrivals(event_id, 1)
    row = wait_row(srv, event_id, attempts_settled(1), "the 503 recorded", timeout=5)
    assert row["last_status"] == 503 and row["state"] == "pending"
    srv.advance_clock(5)  # the schedule's first delay
    h.wait_arrivals(event_id, 2)
    wait_state(srv, event_id, "delivered")


# --- 3. 410 Gone ------------------------------------------------------------------------------------------


def with_witness(srv: Server, witness: Hook) -> None:
    """A multi-webhook destination "witness", delivered independently of the main webhook."""
    srv.ok("POST", "/multi_webhook", {"enabled": True, "fanout": "independent",
                                      "destinations": [{"name": "witness", "url": witness.url, "headers": {}}]})


GONE = "destination disabled: the receiver answered 410 Gone"


def test_410_disables_the_destination_and_dead_letters_what_waits_for_it(server: ServerFactory, hook: Any) -> None:
    srv = server()
    main, witness = hook(), hook()
    configure(srv, main.url)
    with_witness(srv, witness)
    main.script(ALICE, 500)
    main.script(BRUNO, 500)
    waiting = [event_of(srv, srv.user_says(ALICE, "a")), event_of(srv, srv.user_says(BRUNO, "b"))]
    for event_id in waiting:
        main.wait_arrivals(event_id, 1)
        wait_row(srv, event_id, attempts_settled(1), "the 500 recorded")

    main.script(CHEN, 410)
    gone = event_of(srv, srv.user_says(CHEN, "c"))
    main.wait_arrivals(gone, 1)
    row = wait_state(srv, gone, "dead")
    assert row["last_status"] == 410 and row["attempts"] == 1
    for event_id in waiting:
        row = wait_state(srv, event_id, "dead")
        assert row["last_error"] == GONE and row["attempts"] == 1 and row["next_attempt_at"] is None, row

    # The delivery log says so.
    dead = {d["event_id"]: d for d in log(srv, destination="main", state="dead")}
    assert set(dead) == {*waiting, gone}
    assert dead[gone]["last_status"] == 410 and dead[gone]["attempts_made"] == 1
    assert all(dead[e]["last_error"] == GONE for e in waiting)
    assert log(srv, destination="main", state="pending") == []
    # ... and so does the notice for the operator.
    [notice] = srv.query("SELECT channel_id, kind, detail FROM notices")
    assert notice["kind"] == "destination_disabled" and notice["channel_id"] == 1
    assert main.url in notice["detail"] and "410" in notice["detail"]
    # The other destination is unaffected.
    for event_id in (*waiting, gone):
        assert wait_state(srv, event_id, "delivered", "witness")

    # Nothing is posted there any more: not the retries, not new events.
    srv.advance_clock(3600)
    later = barrier(srv, witness, ALICE)
    assert [r["destination"] for r in delivery_rows(srv, later)] == ["witness"]
    assert len(main.requests) == 3, main.describe()
    assert srv.ok("POST", "/deliveries/replay", {"destination": "main"}) == {"replayed": 0}

    # Setting the webhook again enables it again.
    configure(srv, main.url)
    again = event_of(srv, srv.user_says(BRUNO, "welcome back"))
    main.wait_arrivals(again, 1)
    wait_state(srv, again, "delivered")


def test_an_attempt_in_flight_when_the_destination_answers_410_stays_dead(server: ServerFactory, hook: Any) -> None:
    srv = server()
    main, witness = hook(), hook()
    configure(srv, main.url)
    with_witness(srv, witness)
    gate = threading.Event()
    held: list[str] = []

    def hold_alice_once(incoming: Incoming) -> Answer | None:
        if incoming.wa_id == ALICE and not held:
            held.append(incoming.event_id or "")
            return Answer(500, hold=gate)
        return None

    main.rules.append(hold_alice_once)
    try:
        slow = event_of(srv, srv.user_says(ALICE, "slow"))
        main.wait_arrivals(slow, 1)  # in flight, its answer held back
        main.script(BRUNO, 410)
        gone = event_of(srv, srv.user_says(BRUNO, "gone"))
        main.wait_arrivals(gone, 1)
        wait_state(srv, gone, "dead")
        assert wait_state(srv, slow, "dead")["last_error"] == GONE
    finally:
        gate.set()
    # The late 500 is logged as an attempt but does not bring the delivery back.
    wait_until(lambda: len(detail(srv, delivery_row(srv, slow)["id"])["attempts"]) == 1, 10, "the late attempt logged")
    assert delivery_row(srv, slow)["state"] == "dead"
    srv.advance_clock(3600)
    barrier(srv, witness, CHEN)
    assert len(main.of(slow)) == 1 and len(main.requests) == 2, main.describe()


# --- 4. the circuit breaker ---------------------------------------------------------------------------------

BREAKER_ENV: dict[str, str | None] = {
    "OPENWABA_CIRCUIT_OPEN_AFTER": "60",
    "OPENWABA_CIRCUIT_PROBE_EVERY": "30",
    "OPENWABA_RETRY_DELAYS": "10",
}


def fail_until_open(srv: Server, h: Hook) -> str:
    """Fail one event every 10 s for 60 s (7 attempts, the last one the first probe)."""
    h.fail_all(500)
    first = event_of(srv, srv.user_says(ALICE, "failing"))
    h.wait_arrivals(first, 1)
    wait_row(srv, first, attempts_settled(1), "attempt 1 recorded")
    for n in range(2, 8):
        srv.advance_clock(10)
        h.wait_arrivals(first, n)
        wait_row(srv, first, attempts_settled(n), f"attempt {n} recorded")
    return first


def test_circuit_breaker_pauses_probes_and_resumes_without_losing_anything(server: ServerFactory,
                                                                          hook: Any) -> None:
    srv = server(BREAKER_ENV)
    h = hook()
    configure(srv, h.url)
    first = fail_until_open(srv, h)
    seen = len(h.requests)

    # Open: new events are postponed to the next probe, not attempted.
    queued = [event_of(srv, srv.user_says(wa_id, f"while open {wa_id}")) for wa_id in (BRUNO, CHEN, ALICE)]
    rows = [wait_row(srv, e, lambda r: settled(r) and r["next_attempt_at"] > r["created_at"] + 20,
                     "postponed to the next probe") for e in queued]
    assert all(r["attempts"] == 0 and r["state"] == "pending" for r in rows), rows
    probe_at = rows[0]["next_attempt_at"]
    assert all(r["next_attempt_at"] == probe_at for r in rows)
    # The failing event's own retry (10 s later) waits for the probe too.
    srv.advance_clock(10)
    wait_row(srv, first, lambda r: r["next_attempt_at"] == probe_at and settled(r), "the retry postponed")
    assert len(h.requests) == seen

    # At the probe time exactly one of them is attempted; the rest wait for the next probe.
    srv.advance_clock(20)
    h.wait_for(lambda reqs: len(reqs) > seen, what="the probe")
    everything = [first, *queued]
    rows = [wait_row(srv, e, lambda r: settled(r) and r["next_attempt_at"] > probe_at, "re-postponed")
            for e in everything]
    assert len(h.requests) == seen + 1, h.describe()
    probed = h.requests[-1].webhook_id
    assert probed in everything
    next_probe = max(r["next_attempt_at"] for r in rows)
    assert next_probe == pytest.approx(probe_at + 30, abs=TIMING_SLACK)
    seen += 1

    # The receiver recovers: the next probe succeeds and everything that waited follows.
    h.recover()
    srv.advance_clock(30)
    for event_id in everything:
        wait_state(srv, event_id, "delivered")
        oks = [r for r in h.of(event_id) if r.answered == 200]
        assert len(oks) == 1, h.describe()
    assert len(h.requests) == seen + len(everything)
    assert log(srv, state="pending") == []

    # Closed again: a new event goes straight through.
    fresh = event_of(srv, srv.user_says(BRUNO, "back to normal"))
    h.wait_arrivals(fresh, 1)
    wait_state(srv, fresh, "delivered")


def test_circuit_breaker_is_per_destination(server: ServerFactory, hook: Any) -> None:
    srv = server(BREAKER_ENV)
    h, witness = hook(), hook()
    configure(srv, h.url)
    with_witness(srv, witness)
    fail_until_open(srv, h)
    event_id = event_of(srv, srv.user_says(BRUNO, "witness still gets it"))
    witness.wait_arrivals(event_id, 1)
    wait_state(srv, event_id, "delivered", "witness")
    row = wait_row(srv, event_id, lambda r: settled(r) and r["next_attempt_at"] > r["created_at"] + 20, "postponed")
    assert row["attempts"] == 0 and h.of(event_id) == []


# --- 5. order ---------------------------------------------------------------------------------------------------


def status_events(srv: Server, wamid: str) -> list[str]:
    return [event_of(srv, wamid, "status", status) for status in ("sent", "delivered", "read")]


def fail_once(match: Callable[[Incoming], bool], answer: Answer | int) -> Rule:
    used: list[bool] = []

    def rule(incoming: Incoming) -> Answer | int | None:
        if not used and match(incoming):
            used.append(True)
            return answer
        return None
    return rule


def test_fifo_destination_holds_a_conversation_behind_its_failing_event(server: ServerFactory, hook: Any) -> None:
    srv = server()
    h = hook()
    configure(srv, h.url, fifo=True)
    h.rules.append(fail_once(lambda i: i.wa_id == ALICE and i.status == "sent", 500))
    one = status_events(srv, srv.send_text(ALICE, "one"))
    h.wait_arrivals(one[0], 1)
    wait_row(srv, one[0], attempts_settled(1), "the failed `sent` recorded")
    two = status_events(srv, srv.send_text(ALICE, "two"))
    waiting = one[1:] + two
    # Let all of them fall due (not the retry: that is 5 s away), then a later event of
    # another conversation proves the dispatcher claimed everything it was allowed to.
    srv.advance_clock(1)
    barrier(srv, h, BRUNO)
    for event_id in waiting:
        row = delivery_row(srv, event_id)
        assert row["attempts"] == 0 and row["lease_until"] is None and row["state"] == "pending", row
        assert h.of(event_id) == []

    srv.advance_clock(5)  # the retry of `sent` succeeds, the rest follow one by one
    for event_id in one + two:
        wait_state(srv, event_id, "delivered")
    order = [r.webhook_id for r in h.requests if r.webhook_id in one + two]
    assert order == [one[0], *one, *two[0:]], h.describe()


def test_fifo_moves_on_when_the_blocking_event_is_dead(server: ServerFactory, hook: Any) -> None:
    srv = server()
    h = hook()
    configure(srv, h.url, fifo=True)
    h.rules.append(fail_once(lambda i: i.wa_id == BRUNO and i.status == "sent",
                             Answer(429, {"Retry-After": FAR_AWAY})))
    sent, delivered, read = status_events(srv, srv.send_text(BRUNO, "doomed sent"))
    wait_state(srv, sent, "dead")
    wait_state(srv, delivered, "delivered")
    wait_state(srv, read, "delivered")
    assert [r.webhook_id for r in h.requests] == [sent, delivered, read]


def test_fifo_is_per_conversation(server: ServerFactory, hook: Any) -> None:
    srv = server()
    h = hook()
    configure(srv, h.url, fifo=True)
    h.script(ALICE, 500)
    stuck = event_of(srv, srv.user_says(ALICE, "stuck"))
    h.wait_arrivals(stuck, 1)
    behind = event_of(srv, srv.user_says(ALICE, "behind"))
    others = [event_of(srv, srv.user_says(u, "free")) for u in (BRUNO, CHEN)]
    for event_id in others:
        h.wait_arrivals(event_id, 1)
    assert h.of(behind) == [] and delivery_row(srv, behind)["lease_until"] is None
    srv.advance_clock(5)
    wait_state(srv, behind, "delivered")
    assert [r.webhook_id for r in h.requests if r.webhook_id in (stuck, behind)] == [stuck, stuck, behind]


def test_default_mode_never_reverses_a_message_s_statuses(server: ServerFactory, hook: Any) -> None:
    # All three statuses due at the same instant, receivers answering at uneven speeds.
    srv = server({"OPENWABA_SANDBOX_STATUS_DELAYS": "0,0,0"})
    h = hook()
    configure(srv, h.url)
    rng = __import__("random").Random(7)
    h.rules.append(lambda i: Answer(200, delay=rng.choice((0, 0, 0.01, 0.03))))
    wamids = [srv.send_text(user, f"burst {n}") for n in range(5) for user in (ALICE, BRUNO, CHEN)]
    h.wait_for_count(lambda r: r.status is not None, 3 * len(wamids), timeout=15, what="all statuses")
    for wamid in wamids:
        order = [r.status["status"] for r in h.statuses_of(wamid) if r.status]
        assert order == ["sent", "delivered", "read"], (wamid, order)


# --- 6. the retry horizon -------------------------------------------------------------------------------------


def test_no_attempt_after_the_retry_horizon(server: ServerFactory, hook: Any) -> None:
    srv = server({"OPENWABA_RETRY_HORIZON": "100"})
    h = hook()
    configure(srv, h.url)
    h.fail_all(500)
    h.rules.append(lambda i: 200 if i.wa_id == CHEN else None)  # the barrier's conversation
    event_id = event_of(srv, srv.user_says(ALICE, "never answered"))
    h.wait_arrivals(event_id, 1)
    wait_row(srv, event_id, attempts_settled(1), "attempt 1 recorded")
    # 5 s and 30 s from the schedule; the next one (120 s) would overshoot, so the last is at the horizon.
    for n, step in ((2, 5), (3, 30), (4, 65)):
        srv.advance_clock(step)
        h.wait_arrivals(event_id, n)
        wait_row(srv, event_id, attempts_settled(n), f"attempt {n} recorded")
    row = wait_state(srv, event_id, "dead")
    shown = detail(srv, row["id"])
    assert shown["state"] == "dead" and shown["attempts_made"] == 4 and shown["next_attempt_at"] is None
    assert shown["deadline"] == pytest.approx(shown["created_at"] + 100)
    times = [a["at"] for a in shown["attempts"]]
    assert times == sorted(times) and len(times) == 4
    assert times[-1] >= shown["deadline"]  # the final attempt is made at the horizon itself ...
    assert all(t <= shown["created_at"] + 100 + TIMING_SLACK for t in times), times  # ... and none after it

    srv.advance_clock(3600)
    barrier(srv, h, CHEN)
    assert len(h.of(event_id)) == 4


# Regression: claim_due ignored the deadline: a retry that falls due while the dispatcher could not run it
# (clock jump, process down, busy) was attempted after the horizon before being dead-lettered
def test_a_retry_overdue_past_the_horizon_is_dead_lettered_without_an_attempt(server: ServerFactory,
                                                                             hook: Any) -> None:
    srv = server({"OPENWABA_RETRY_HORIZON": "100"})
    h = hook()
    configure(srv, h.url)
    h.fail_all(500)
    h.rules.append(lambda i: 200 if i.wa_id == CHEN else None)
    event_id = event_of(srv, srv.user_says(ALICE, "overdue"))
    h.wait_arrivals(event_id, 1)
    wait_row(srv, event_id, attempts_settled(1), "attempt 1 recorded")
    srv.advance_clock(1000)
    barrier(srv, h, CHEN)
    row = wait_state(srv, event_id, "dead")
    assert all(t <= row["deadline"] + TIMING_SLACK for t in attempt_times(srv, event_id)), h.describe()


# Regression: while a circuit is open, a delivery due at its deadline was deferred to min(next probe,
# deadline) = its deadline, i.e. to now: the dispatcher claims and defers it again at once, in a hot loop,
# until the next probe, which then posted it after the horizon
def test_a_paused_delivery_reaching_its_horizon_is_dead_lettered(server: ServerFactory, hook: Any) -> None:
    srv = server({**BREAKER_ENV, "OPENWABA_RETRY_HORIZON": "100"})
    h = hook()
    configure(srv, h.url)
    first = fail_until_open(srv, h)  # 7 attempts, t0 .. t0+60; the last is a probe (next one at ~t0+90)
    srv.advance_clock(10)  # its retry (t0+70) is postponed to the probe
    wait_row(srv, first, lambda r: settled(r) and r["next_attempt_at"] > now_of(srv), "postponed")
    srv.advance_clock(20)  # the probe: attempt 8 fails; next retry capped at the deadline t0+100
    h.wait_arrivals(first, 8)
    wait_row(srv, first, attempts_settled(8), "attempt 8 recorded")
    srv.advance_clock(12)  # past the deadline (and its grace); the next probe is still ~18 s away
    row = wait_state(srv, first, "dead")  # dead-lettered without a further attempt
    assert len(h.of(first)) == 8
    assert all(t <= row["deadline"] + TIMING_SLACK for t in attempt_times(srv, first))


# --- 7. the delivery log and replay ------------------------------------------------------------------------------

DELIVERY_FIELDS = {"id", "event_id", "event", "destination", "state", "attempts_made", "created_at",
                   "next_attempt_at", "deadline", "last_status", "last_error", "injected"}


def dies_at_once() -> Answer:
    """A 429 asking for more time than the horizon leaves: dead-lettered after one attempt."""
    return Answer(429, {"Retry-After": FAR_AWAY})


def test_delivery_log_filters_paging_and_detail(server: ServerFactory, hook: Any) -> None:
    srv = server()
    h = hook()
    configure(srv, h.url)
    h.script(ALICE, dies_at_once())
    dead = event_of(srv, srv.user_says(ALICE, "will die"))
    early = event_of(srv, srv.user_says(BRUNO, "early"))
    wait_state(srv, dead, "dead")
    wait_state(srv, early, "delivered")
    srv.advance_clock(100)
    middle = now_of(srv)
    late = event_of(srv, srv.user_says(CHEN, "late"))
    wait_state(srv, late, "delivered")

    everything = log(srv)
    assert [d["event_id"] for d in everything] == [late, early, dead]  # newest first
    assert [d["id"] for d in everything] == sorted((d["id"] for d in everything), reverse=True)
    for entry in everything:
        assert set(entry) == DELIVERY_FIELDS, entry
        assert entry["destination"] == {"kind": "main", "name": "main", "url": h.url}
        assert entry["event"]["kind"] == "message" and entry["event"]["wamid"].startswith("wamid.")
        assert entry["injected"] == []  # real events: nothing injected
    assert [d["event_id"] for d in log(srv, state="dead")] == [dead]
    assert [d["event_id"] for d in log(srv, state="delivered")] == [late, early]
    assert log(srv, state="pending") == [] and log(srv, state="held") == []
    assert [d["event_id"] for d in log(srv, event_id=early)] == [early]
    assert len(log(srv, destination="main")) == 3 and log(srv, destination="nowhere") == []
    assert [d["event_id"] for d in log(srv, since=middle)] == [late]
    assert [d["event_id"] for d in log(srv, until=middle)] == [early, dead]
    assert [d["event_id"] for d in log(srv, state="delivered", since=middle)] == [late]

    page = srv.ok("GET", "/deliveries?limit=2")
    assert [d["event_id"] for d in page["deliveries"]] == [late, early]
    assert page["paging"] == {"before": page["deliveries"][-1]["id"]}
    rest = srv.ok("GET", f"/deliveries?limit=2&before={page['paging']['before']}")
    assert [d["event_id"] for d in rest["deliveries"]] == [dead] and rest["paging"] == {}

    for query in ("state=gone", "limit=501", "since=yesterday", "colour=blue", "before=x"):
        reply = srv.call("GET", f"/deliveries?{query}")
        assert reply.status == 400 and isinstance(reply.json()["error"], str), (query, reply.body)

    dead_id = log(srv, state="dead")[0]["id"]
    shown = detail(srv, dead_id)
    assert shown["id"] == dead_id and shown["event_id"] == dead and shown["state"] == "dead"
    [attempt] = shown["attempts"]
    assert attempt["status_code"] == 429 and attempt["error"] == "HTTP 429"
    assert attempt["latency_ms"] >= 0 and "scripted failure" in attempt["response_excerpt"]
    assert attempt["at"] >= shown["created_at"]
    assert shown["payload"] == h.of(dead)[0].json
    assert srv.call("GET", "/deliveries/999999").status == 404
    assert srv.call("GET", "/deliveries", key="not-a-key").status == 401
    assert srv.call("GET", f"/deliveries/{dead_id}", key=None).status == 401


def test_delivery_log_is_per_number(server: ServerFactory, hook: Any) -> None:
    srv = server({"OPENWABA_PARTNER_API_KEY": PARTNER_KEY})
    h = hook()
    configure(srv, h.url)
    h.script(ALICE, dies_at_once())
    dead = event_of(srv, srv.user_says(ALICE, "mine"))
    dead_id = wait_state(srv, dead, "dead")["id"]
    partner = {"X-API-Key": PARTNER_KEY}
    base = f"{srv.url}/api/v2/partners/openwaba"
    waba = http("POST", f"{base}/wabas", json_body={"name": "other"}, headers=partner).json()
    channel = http("POST", f"{base}/channels", json_body={"waba_id": waba["id"], "phone_number": "+15557770001"},
                   headers=partner).json()
    other_key = http("POST", f"{base}/channels/{channel['id']}/api_keys", headers=partner).json()["api_key"]
    assert srv.call("GET", "/deliveries", key=other_key).json()["deliveries"] == []
    assert srv.call("GET", f"/deliveries/{dead_id}", key=other_key).status == 404
    reply = srv.call("POST", f"/deliveries/{dead_id}/replay", key=other_key)
    assert reply.status in (200, 404) and (reply.status == 404 or reply.json() == {"replayed": 0}), reply.body
    assert srv.call("POST", "/deliveries/replay", {}, key=other_key).json() == {"replayed": 0}
    assert delivery_row(srv, dead)["state"] == "dead" and len(h.of(dead)) == 1


def test_replay_reposts_with_the_same_webhook_id(server: ServerFactory, hook: Any) -> None:
    srv = server()
    main, backup = hook(), hook()
    secret = new_secret()
    configure(srv, main.url, secret=secret)
    srv.ok("POST", "/multi_webhook", {"enabled": True, "fanout": "independent",
                                      "destinations": [{"name": "backup", "url": backup.url, "headers": {}}]})
    main.script(ALICE, dies_at_once())
    backup.script(BRUNO, dies_at_once())
    backup.script(CHEN, dies_at_once())
    a, b, c = (event_of(srv, srv.user_says(u, f"replay me {u}")) for u in (ALICE, BRUNO, CHEN))
    before = wait_state(srv, a, "dead")
    for event_id in (b, c):
        wait_state(srv, event_id, "dead", "backup")
        wait_state(srv, event_id, "delivered")
    wait_state(srv, a, "delivered", "backup")

    srv.advance_clock(600)
    assert srv.ok("POST", f"/deliveries/{before['id']}/replay") == {"replayed": 1}
    first, again = main.wait_arrivals(a, 2)
    assert again.webhook_id == first.webhook_id == a and again.body == first.body
    Webhook(secret).verify(again.body, again.headers)
    after = wait_state(srv, a, "delivered")
    assert after["id"] == before["id"] and after["attempts"] == 2
    assert after["deadline"] > before["deadline"]  # a fresh horizon, counted from the replay
    assert len(detail(srv, after["id"])["attempts"]) == 2

    # By filter: only the backup destination's dead deliveries.
    assert srv.ok("POST", "/deliveries/replay", {"state": "dead", "destination": "backup"}) == {"replayed": 2}
    for event_id in (b, c):
        backup.wait_arrivals(event_id, 2)
        wait_state(srv, event_id, "delivered", "backup")
        assert len(main.of(event_id)) == 1
    assert log(srv, state="dead") == []
    assert srv.ok("POST", "/deliveries/replay", {}) == {"replayed": 0}
    reply = srv.call("POST", "/deliveries/replay", {"state": "pending"})
    assert reply.status == 400, reply.body


def test_replay_by_time_window(server: ServerFactory, hook: Any) -> None:
    srv = server()
    h = hook()
    configure(srv, h.url)
    h.script(ALICE, dies_at_once())
    h.script(BRUNO, dies_at_once())
    old = event_of(srv, srv.user_says(ALICE, "old"))
    wait_state(srv, old, "dead")
    srv.advance_clock(100)
    cut = now_of(srv)
    new = event_of(srv, srv.user_says(BRUNO, "new"))
    wait_state(srv, new, "dead")
    assert srv.ok("POST", "/deliveries/replay", {"since": cut}) == {"replayed": 1}
    h.wait_arrivals(new, 2)
    wait_state(srv, new, "delivered")
    assert delivery_row(srv, old)["state"] == "dead"
    assert srv.ok("POST", "/deliveries/replay", {"until": cut}) == {"replayed": 1}
    wait_state(srv, old, "delivered")


# Regression: POST /deliveries/replay accepted an `event_id` filter but SQLiteStorage.replay dropped it
# (params.pop('event_id'); replay_deliveries had no event_id condition): every dead delivery of the number
# was replayed instead of that event's
def test_replay_by_event_id_replays_only_that_event(server: ServerFactory, hook: Any) -> None:
    srv = server()
    h = hook()
    configure(srv, h.url)
    h.script(ALICE, dies_at_once())
    h.script(BRUNO, dies_at_once())
    a, b = (event_of(srv, srv.user_says(u, "dead")) for u in (ALICE, BRUNO))
    wait_state(srv, a, "dead")
    wait_state(srv, b, "dead")
    reply = srv.call("POST", "/deliveries/replay", {"event_id": a})
    assert reply.status == 400 or reply.json() == {"replayed": 1}, reply.body
    assert delivery_row(srv, b)["state"] == "dead"


def run_cli(srv: Server, *args: str, columns: int = 200) -> subprocess.CompletedProcess[str]:
    command = [openwaba_executable(), "deliveries", *args, "--url", srv.url, "--api-key", API_KEY]
    return subprocess.run(command, capture_output=True, text=True, timeout=30,
                          env=clean_env({"COLUMNS": str(columns), "NO_COLOR": "1"}))


def test_cli_lists_shows_and_replays(server: ServerFactory, hook: Any) -> None:
    srv = server()
    h = hook()
    configure(srv, h.url)
    h.script(ALICE, dies_at_once())
    dead = event_of(srv, srv.user_says(ALICE, "cli dead"))
    ok = event_of(srv, srv.user_says(BRUNO, "cli ok"))
    dead_id = wait_state(srv, dead, "dead")["id"]
    ok_id = wait_state(srv, ok, "delivered")["id"]

    listed = run_cli(srv, "ls")
    assert listed.returncode == 0, listed.stderr
    lines = {line.split()[1]: line for line in listed.stdout.splitlines()
             if len(line.split()) > 1 and line.split()[1].isdigit()}
    assert str(dead_id) in lines and str(ok_id) in lines, listed.stdout
    assert dead in lines[str(dead_id)] and "dead" in lines[str(dead_id)]
    assert ok in lines[str(ok_id)] and "delivered" in lines[str(ok_id)]

    only_dead = run_cli(srv, "ls", "--state", "dead", "--json")
    assert only_dead.returncode == 0, only_dead.stderr
    assert [d["id"] for d in json.loads(only_dead.stdout)["deliveries"]] == [dead_id]

    shown = run_cli(srv, "show", str(dead_id), "--json")
    assert shown.returncode == 0, shown.stderr
    parsed = json.loads(shown.stdout)
    assert parsed["id"] == dead_id and parsed["event_id"] == dead and parsed["attempts"][0]["status_code"] == 429

    replayed = run_cli(srv, "replay", str(dead_id))
    assert replayed.returncode == 0, replayed.stderr
    assert "replayed 1" in replayed.stdout
    first, again = h.wait_arrivals(dead, 2)
    assert again.webhook_id == first.webhook_id == dead
    wait_state(srv, dead, "delivered")

    nothing = run_cli(srv, "replay", "--destination", "main")
    assert nothing.returncode == 1 and "replayed 0" in nothing.stdout


def test_cli_json_output_survives_a_narrow_terminal(server: ServerFactory, hook: Any) -> None:
    srv = server()
    h = hook()
    configure(srv, h.url)
    event_id = event_of(srv, srv.user_says(ALICE, "a message long enough to need wrapping " * 4))
    delivery_id = wait_state(srv, event_id, "delivered")["id"]
    listed = run_cli(srv, "ls", "--json", columns=40)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)["deliveries"][0]["event_id"] == event_id
    shown = run_cli(srv, "show", str(delivery_id), "--json", columns=40)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["payload"] == h.of(event_id)[0].json


# --- 8. metrics ----------------------------------------------------------------------------------------------------


def metrics(srv: Server) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    reply = http("GET", srv.url + "/metrics")
    assert reply.status == 200 and reply.headers["content-type"].startswith("text/plain"), reply
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for line in reply.body.decode().splitlines():
        if not line or line.startswith("#"):
            continue
        match = re.fullmatch(r'([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)', line)
        assert match, line
        labels = tuple(sorted(re.findall(r'(\w+)="([^"]*)"', match.group(2) or "")))
        samples[(match.group(1), labels)] = float(match.group(3))
    return samples


def test_metrics_follow_attempts_and_the_queue(server: ServerFactory, hook: Any) -> None:
    srv = server()
    h = hook()
    configure(srv, h.url)
    [dest] = srv.query("SELECT id FROM destinations WHERE kind = 'main'")
    label = str(dest["id"])

    def attempts(outcome: str) -> float:
        return metrics(srv).get(("openwaba_delivery_attempts_total",
                                 (("destination", label), ("outcome", outcome))), 0.0)

    h.script(ALICE, 500)
    h.script(BRUNO, 503)
    failing = [event_of(srv, srv.user_says(u, "fails")) for u in (ALICE, BRUNO)]
    passing = [event_of(srv, srv.user_says(CHEN, f"passes {n}")) for n in range(3)]
    for event_id in failing:
        wait_row(srv, event_id, attempts_settled(1), "the failure recorded")
    for event_id in passing:
        wait_state(srv, event_id, "delivered")
    wait_until(lambda: attempts("failed") == 2 and attempts("succeeded") == 3, 5, "the counters",
               lambda: str(metrics(srv)))

    srv.advance_clock(3)  # not yet time for the retries (5 s)
    m = metrics(srv)
    assert m[("openwaba_deliveries_pending", ())] == 2
    created = min(delivery_row(srv, e)["created_at"] for e in failing)
    age = m[("openwaba_oldest_pending_delivery_age_seconds", ())]
    assert now_of(srv) - created >= age >= 3, age
    assert m[("openwaba_delivery_attempt_seconds_count", (("destination", label),))] == 5
    assert m[("openwaba_delivery_attempt_seconds_bucket", (("destination", label), ("le", "+Inf")))] == 5
    assert m[("openwaba_delivery_attempt_seconds_sum", (("destination", label),))] > 0

    srv.advance_clock(5)  # the retries succeed
    for event_id in failing:
        wait_state(srv, event_id, "delivered")
    wait_until(lambda: attempts("succeeded") == 5, 5, "the counters", lambda: str(metrics(srv)))
    m = metrics(srv)
    assert attempts("failed") == 2
    assert m[("openwaba_deliveries_pending", ())] == 0
    assert m[("openwaba_oldest_pending_delivery_age_seconds", ())] == 0
    assert m[("openwaba_delivery_attempt_seconds_count", (("destination", label),))] == 7


# Regression: resuming a paused destination moved every pending delivery to now, Retry-After included.
def test_resuming_a_paused_destination_still_honours_retry_after(server: ServerFactory, hook: Any) -> None:
    srv = server(BREAKER_ENV)
    h = hook()
    configure(srv, h.url)
    h.script(BRUNO, Answer(429, {"Retry-After": "3600"}))
    asked = event_of(srv, srv.user_says(BRUNO, "come back in an hour"))
    h.wait_arrivals(asked, 1)
    not_before = wait_row(srv, asked, attempts_settled(1), "the 429 recorded")["next_attempt_at"]
    first = fail_until_open(srv, h)
    h.recover()
    srv.advance_clock(30)  # the next probe succeeds and closes the circuit
    wait_state(srv, first, "delivered")
    barrier(srv, h, CHEN)
    row = delivery_row(srv, asked)
    assert len(h.of(asked)) == 1 and row["next_attempt_at"] >= not_before, row

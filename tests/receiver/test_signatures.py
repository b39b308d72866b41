"""Authentication of the ack path: Standard Webhooks (valid, invalid, expired, rotated
secrets), Meta's X-Hub-Signature-256, Basic auth, and the GET verify-token handshake."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from openwaba.domain.signing import meta_signature, standard_signature
from openwaba.receiver import Receiver

from .support import FakeClock, Reply, call, cloud, message

OLD = "whsec_" + base64.b64encode(b"o" * 32).decode()
NEW = "whsec_" + base64.b64encode(b"n" * 32).decode()
BODY = cloud({"messages": [message("wamid.SIG")]})


def exchange(tmp_path: Path, requests: Callable[[Receiver, FakeClock], Awaitable[Any]], **options: Any) -> Any:
    """Run `requests(receiver, clock)` against a fresh receiver (queue open, no workers)."""
    clock = FakeClock()

    async def scenario() -> Any:
        receiver = Receiver(tmp_path / "q.db", clock=clock, **options)
        await receiver.open()
        try:
            return await requests(receiver, clock)
        finally:
            await receiver.stop()

    return asyncio.run(scenario())


def standard_headers(secrets_: list[str], at: float, body: bytes = BODY, msg_id: str = "evt_1") -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at)),
        "webhook-signature": standard_signature(secrets_, msg_id, int(at), body),
    }


def error_of(reply: Reply) -> str:
    assert reply.headers[b"content-type"] == b"application/json"
    return str(json.loads(reply.body)["error"])


def test_standard_webhooks_signatures(tmp_path: Path) -> None:
    async def requests(receiver: Receiver, clock: FakeClock) -> list[tuple[int, str | None]]:
        now = clock()
        third_party = Webhook(NEW).sign("evt_9", dt.datetime.fromtimestamp(int(now), dt.UTC), BODY.decode())
        cases = [
            standard_headers([NEW], now),  # valid
            standard_headers([OLD, NEW], now - 299, msg_id="evt_2"),  # a sender mid-rotation, just inside 5 minutes
            {"webhook-id": "evt_9", "webhook-timestamp": str(int(now)), "webhook-signature": third_party},
            standard_headers([NEW], now - 301),  # expired
            standard_headers([NEW], now + 301),  # from the future
            standard_headers([NEW], now, body=BODY + b" "),  # signed other bytes
            standard_headers(["whsec_" + base64.b64encode(b"x" * 32).decode()], now),  # unknown secret
            {"webhook-id": "evt_1", "webhook-timestamp": "yesterday", "webhook-signature": "v1,AAAA"},
            {"webhook-id": "evt_1", "webhook-timestamp": str(int(now)), "webhook-signature": "v2,abc v1,%%%"},
            {},
        ]
        replies = [await call(receiver, body=BODY, headers=h) for h in cases]
        return [(r.status, error_of(r) if r.status != 200 else None) for r in replies]

    results = exchange(tmp_path, requests, secret=[OLD, NEW])
    assert [status for status, _ in results] == [200, 200, 200, 401, 401, 401, 401, 401, 401, 401]
    assert results[3][1] == "webhook-timestamp outside the tolerance"
    assert results[5][1] == "invalid webhook-signature"
    assert results[9][1] == "missing webhook signature headers"


def test_a_rotated_out_secret_is_refused(tmp_path: Path) -> None:
    async def requests(receiver: Receiver, clock: FakeClock) -> list[int]:
        return [(await call(receiver, body=BODY, headers=standard_headers(s, clock()))).status for s in ([OLD], [NEW])]

    assert exchange(tmp_path, requests, secret=NEW) == [401, 200]


def test_x_hub_signature_256(tmp_path: Path) -> None:
    async def requests(receiver: Receiver, clock: FakeClock) -> list[int]:
        bodies_and_headers = [
            (BODY, {"X-Hub-Signature-256": meta_signature("app-secret", BODY)}),
            (BODY, {"X-Hub-Signature-256": meta_signature("app-secret", BODY).upper().replace("SHA256", "sha256")}),
            (BODY, {"X-Hub-Signature-256": meta_signature("other-secret", BODY)}),
            (BODY, {"X-Hub-Signature-256": meta_signature("app-secret", BODY.replace(b"hello", b"HELLO"))}),
            (BODY, {}),
        ]
        return [(await call(receiver, body=b, headers=h)).status for b, h in bodies_and_headers]

    assert exchange(tmp_path, requests, app_secret="app-secret") == [200, 200, 401, 401, 401]


def test_non_ascii_bodies_are_verified_on_their_raw_bytes(tmp_path: Path) -> None:
    raw = '{"messages":[{"from":"1","id":"wamid.E","timestamp":"1","type":"text","text":{"body":"olé 😮"}}]}'.encode()

    async def requests(receiver: Receiver, clock: FakeClock) -> int:
        return (await call(receiver, body=raw, headers={"X-Hub-Signature-256": meta_signature("s", raw)})).status

    assert exchange(tmp_path, requests, app_secret="s") == 200


def test_basic_auth(tmp_path: Path) -> None:
    def basic(user: str, password: str) -> dict[str, str]:
        return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}

    async def requests(receiver: Receiver, clock: FakeClock) -> list[int]:
        headers = [basic("hook", "s3cret"), basic("hook", "wrong"), basic("other", "s3cret"), {}]
        return [(await call(receiver, body=BODY, headers=h)).status for h in headers]

    assert exchange(tmp_path, requests, basic_auth=("hook", "s3cret")) == [200, 401, 401, 401]


def test_every_configured_check_must_pass(tmp_path: Path) -> None:
    async def requests(receiver: Receiver, clock: FakeClock) -> list[int]:
        auth = {"Authorization": "Basic " + base64.b64encode(b"u:p").decode()}
        signed = {**standard_headers([NEW], clock()), "X-Hub-Signature-256": meta_signature("app", BODY)}
        return [(await call(receiver, body=BODY, headers=h)).status for h in ({**auth, **signed}, signed, auth)]

    assert exchange(tmp_path, requests, secret=NEW, app_secret="app", basic_auth=("u", "p")) == [200, 401, 401]


def test_get_verify_token_handshake(tmp_path: Path) -> None:
    async def requests(receiver: Receiver, clock: FakeClock) -> list[tuple[int, bytes]]:
        queries = [
            "hub.mode=subscribe&hub.verify_token=tok-en&hub.challenge=1158201444",
            "hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1158201444",
            "hub.mode=unsubscribe&hub.verify_token=tok-en&hub.challenge=1",
            "",
        ]
        replies = [await call(receiver, "GET", query=q) for q in queries]
        return [(r.status, r.body) for r in replies]

    results = exchange(tmp_path, requests, verify_token="tok-en")
    assert results[0] == (200, b"1158201444")
    assert [status for status, _ in results[1:]] == [403, 403, 403]


def test_no_verify_token_refuses_the_handshake_and_other_methods_are_not_allowed(tmp_path: Path) -> None:
    async def requests(receiver: Receiver, clock: FakeClock) -> list[int]:
        handshake = await call(receiver, "GET", query="hub.mode=subscribe&hub.verify_token=&hub.challenge=1")
        return [handshake.status, (await call(receiver, "PUT", body=BODY)).status]

    assert exchange(tmp_path, requests) == [403, 405]


def test_bad_secrets_are_refused_at_construction(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="whsec_"):
        Receiver(tmp_path / "q.db", secret="not-a-secret")

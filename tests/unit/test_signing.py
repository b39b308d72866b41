"""Webhook signatures (`openwaba.domain.signing`): Standard Webhooks and Meta's
`X-Hub-Signature-256`, checked against hand-computed HMACs, the Standard
Webhooks reference vector and the independent `standardwebhooks` package."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from openwaba.domain.errors import RequestError
from openwaba.domain.signing import meta_signature, secret_key, standard_signature

KEY = bytes(range(32))
SECRET = "whsec_" + base64.b64encode(KEY).decode()
EVENT_ID = "evt_01J0000000000000000000000"
TIMESTAMP = 1_700_000_000
BODY = b'{"object":"whatsapp_business_account","entry":[]}'


def by_hand(key: bytes, event_id: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(key, f"{event_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


# --- Standard Webhooks ------------------------------------------------------------------------------------


def test_matches_a_hand_computed_hmac() -> None:
    assert standard_signature([SECRET], EVENT_ID, TIMESTAMP, BODY) == by_hand(KEY, EVENT_ID, TIMESTAMP, BODY)


def test_the_standard_webhooks_reference_vector() -> None:
    # The example of the Standard Webhooks specification and its reference libraries.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    signature = standard_signature([secret], "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}')
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_one_signature_per_secret_newest_first() -> None:
    old = "whsec_" + base64.b64encode(b"o" * 24).decode()
    new = "whsec_" + base64.b64encode(b"n" * 64).decode()
    header = standard_signature([new, old], EVENT_ID, TIMESTAMP, BODY)
    assert header.split(" ") == [by_hand(b"n" * 64, EVENT_ID, TIMESTAMP, BODY),
                                 by_hand(b"o" * 24, EVENT_ID, TIMESTAMP, BODY)]


def test_no_secret_no_signature() -> None:
    assert standard_signature([], EVENT_ID, TIMESTAMP, BODY) == ""


def test_the_signature_covers_id_timestamp_and_body() -> None:
    reference = standard_signature([SECRET], EVENT_ID, TIMESTAMP, BODY)
    assert standard_signature([SECRET], EVENT_ID + "x", TIMESTAMP, BODY) != reference
    assert standard_signature([SECRET], EVENT_ID, TIMESTAMP + 1, BODY) != reference
    assert standard_signature([SECRET], EVENT_ID, TIMESTAMP, BODY + b" ") != reference


secrets_bytes = st.binary(min_size=24, max_size=64)


@settings(max_examples=200)
@given(keys=st.lists(secrets_bytes, min_size=1, max_size=3),
       event_id=st.from_regex(r"evt_[0-9A-Z]{1,26}", fullmatch=True),
       body=st.binary(max_size=2000).map(base64.b64encode))  # text: verify() decodes the body
def test_standardwebhooks_verifies_with_each_secret(keys: list[bytes], event_id: str, body: bytes) -> None:
    secrets = ["whsec_" + base64.b64encode(k).decode() for k in keys]
    timestamp = int(time.time())
    headers = {"webhook-id": event_id, "webhook-timestamp": str(timestamp),
               "webhook-signature": standard_signature(secrets, event_id, timestamp, body)}
    for secret in secrets:
        Webhook(secret).verify(body, headers, json_parse=False)
    wrong = b"\xa5" * 32
    # (HMAC pads keys with zero bytes: keys that differ only in trailing zeros are the same key)
    assume(all(k.rstrip(b"\0") != wrong for k in keys))
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + base64.b64encode(wrong).decode()).verify(body, headers, json_parse=False)


# --- secrets -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [24, 32, 64])
def test_secret_key_is_the_decoded_base64(size: int) -> None:
    key = bytes(range(size))
    assert secret_key("whsec_" + base64.b64encode(key).decode()) == key


@pytest.mark.parametrize("secret", [
    "whsec_",
    "whsec_not base64!",
    "whsec_" + base64.b64encode(b"k" * 32).decode().rstrip("="),  # padding missing (32 bytes -> 1 "=")
    "whsec_" + base64.urlsafe_b64encode(b"\xfb\xff" * 16).decode(),  # URL-safe alphabet
    "whsec_ " + base64.b64encode(b"k" * 32).decode(),
    "whsec_" + base64.b64encode(b"k" * 23).decode(),  # 23 bytes: too short
    "whsec_" + base64.b64encode(b"k" * 65).decode(),  # 65 bytes: too long
    "whsec_" + base64.b64encode(b"k" * 32).decode() + "\n",
])
def test_bad_secrets_are_refused(secret: str) -> None:
    with pytest.raises(RequestError):
        secret_key(secret)
    with pytest.raises(RequestError):
        standard_signature([secret], EVENT_ID, TIMESTAMP, BODY)


# --- Meta ---------------------------------------------------------------------------------------------------------


def test_meta_signature_matches_a_hand_computed_hmac() -> None:
    app_secret = "0123456789abcdef0123456789abcdef"
    expected = "sha256=" + hmac.new(app_secret.encode(), BODY, hashlib.sha256).hexdigest()
    assert meta_signature(app_secret, BODY) == expected


def test_meta_signature_known_answer() -> None:
    # HMAC-SHA256 test case 2 of RFC 4231: key "Jefe".
    assert meta_signature("Jefe", b"what do ya want for nothing?") == (
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")


@given(app_secret=st.text(min_size=1, max_size=64), body=st.binary(max_size=2000))
def test_meta_signature_is_a_plain_hmac_of_the_raw_body(app_secret: str, body: bytes) -> None:
    header = meta_signature(app_secret, body)
    assert header.startswith("sha256=") and len(header) == len("sha256=") + 64
    assert hmac.compare_digest(header[7:], hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest())

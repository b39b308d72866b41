"""Checking that a webhook comes from whoever holds the shared secrets.

Three independent checks, each on when configured, all on the raw body bytes
(never a re-serialised JSON: Meta escapes non-ASCII, so re-encoding would
break signatures on emoji):

- HTTP Basic auth (360dialog's `headers: {"Authorization": "Basic …"}`);
- Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`
  with `v1,<base64>` entries, several during a rotation), keyed by `whsec_…`
  secrets, the timestamp within a tolerance so a captured request cannot be
  replayed later;
- Meta's `X-Hub-Signature-256: sha256=<hex>`, keyed by the app secret.

Comparisons are constant-time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Sequence

from openwaba.domain.errors import RequestError
from openwaba.domain.signing import secret_key

TOLERANCE_SECONDS = 300
Headers = dict[bytes, bytes]  # lower-cased names, as ASGI gives them


class Verifier:
    """The checks one receiver applies; `check` answers None (accepted) or why not."""

    def __init__(
        self,
        secret: str | Sequence[str] | None = None,
        app_secret: str | None = None,
        basic_auth: tuple[str, str] | None = None,
        tolerance: int = TOLERANCE_SECONDS,
    ) -> None:
        secrets_ = [secret] if isinstance(secret, str) else list(secret or ())
        try:
            # Keyed once and copied per request: keying HMAC anew costs more than hashing the body (OpenSSL 3).
            self._keys = [hmac.new(secret_key(s), digestmod=hashlib.sha256) for s in secrets_]
        except RequestError as exc:
            raise ValueError(str(exc)) from None
        self._app_key = hmac.new(app_secret.encode(), digestmod=hashlib.sha256) if app_secret else None
        self._basic = None
        if basic_auth is not None:
            user, password = basic_auth
            self._basic = b"Basic " + base64.b64encode(f"{user}:{password}".encode())
        self._tolerance = tolerance

    @property
    def header_names(self) -> frozenset[bytes]:
        """The request headers the configured checks read."""
        names = {b"webhook-id"}
        if self._basic is not None:
            names.add(b"authorization")
        if self._keys:
            names.update((b"webhook-timestamp", b"webhook-signature"))
        if self._app_key is not None:
            names.add(b"x-hub-signature-256")
        return frozenset(names)

    def check(self, headers: Headers, body: bytes, now: float) -> str | None:
        if self._basic is not None and not hmac.compare_digest(headers.get(b"authorization", b""), self._basic):
            return "invalid credentials"
        if self._keys:
            problem = self._standard(headers, body, now)
            if problem:
                return problem
        if self._app_key is not None:
            return self._meta(headers.get(b"x-hub-signature-256", b""), body)
        return None

    def _standard(self, headers: Headers, body: bytes, now: float) -> str | None:
        msg_id = headers.get(b"webhook-id")
        timestamp = headers.get(b"webhook-timestamp")
        signatures = headers.get(b"webhook-signature")
        if not msg_id or not timestamp or not signatures:
            return "missing webhook signature headers"
        try:
            sent_at = int(timestamp)
        except ValueError:
            return "invalid webhook-timestamp"
        if abs(now - sent_at) > self._tolerance:
            return "webhook-timestamp outside the tolerance"
        signed = msg_id + b"." + timestamp + b"." + body
        offered = [_v1(entry) for entry in signatures.split()]
        for key in self._keys:
            expected = _digest(key, signed)
            if any(sig is not None and hmac.compare_digest(sig, expected) for sig in offered):
                return None
        return "invalid webhook-signature"

    def _meta(self, header: bytes, body: bytes) -> str | None:
        assert self._app_key is not None
        expected = b"sha256=" + _digest(self._app_key, body).hex().encode()
        if not hmac.compare_digest(header.strip().lower(), expected):
            return "invalid X-Hub-Signature-256"
        return None


def _digest(keyed: hmac.HMAC, data: bytes) -> bytes:
    mac = keyed.copy()
    mac.update(data)
    return mac.digest()


def _v1(entry: bytes) -> bytes | None:
    """The signature of a `v1,<base64>` entry; None for other versions or bad base64."""
    version, _, encoded = entry.partition(b",")
    if version != b"v1":
        return None
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return None

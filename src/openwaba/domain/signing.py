"""Webhook signatures receivers can verify with off-the-shelf code.

- Standard Webhooks: `webhook-id`, `webhook-timestamp` and
  `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, keyed by
  the base64 part of a `whsec_…` secret. During a rotation several signatures are
  sent, space-separated, so receivers holding either secret accept the delivery.
- Meta: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`, keyed by
  the app secret, as Meta signs its own webhooks.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Sequence

from openwaba.domain.errors import RequestError

SECRET_PREFIX = "whsec_"


def secret_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_…` secret; RequestError when it is not one."""
    if not secret.startswith(SECRET_PREFIX):
        raise RequestError(100, "A signing secret must look like 'whsec_' followed by base64")
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise RequestError(100, "A signing secret must look like 'whsec_' followed by base64") from None
    if not 24 <= len(key) <= 64:
        raise RequestError(100, "A signing secret must hold 24 to 64 bytes of key material")
    return key


def standard_signature(secrets_: Sequence[str], event_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value: one `v1,<sig>` per secret."""
    signed = f"{event_id}.{timestamp}.".encode() + body
    signatures = []
    for secret in secrets_:
        digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
        signatures.append("v1," + base64.b64encode(digest).decode())
    return " ".join(signatures)


def meta_signature(app_secret: str, body: bytes) -> str:
    """The `X-Hub-Signature-256` header value."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()

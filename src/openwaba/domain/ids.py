"""Identifier formats: wamids, event ids, conversation ids, API keys.

wamids are built the way WhatsApp's look when decoded (a compact struct holding
the user's wa_id, a direction flag and a random key, base64-encoded), so
clients that log or pattern-match them see realistic values. They stay opaque.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32, sortable
_FROM_RFC4648 = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", _ALPHABET.encode())


def wamid(wa_id: str, *, outbound: bool) -> str:
    """A new message id for a message to or from `wa_id`."""
    digits = wa_id.encode()
    key = secrets.token_hex(9 if outbound else 10).upper().encode()
    raw = (
        b"\x1c\x18"
        + bytes([len(digits)])
        + digits
        + b"\x15\x02\x00"
        + (b"\x11" if outbound else b"\x12")
        + b"\x18"
        + bytes([len(key)])
        + key
        + b"\x00"
    )
    return "wamid." + base64.b64encode(raw).decode()


def event_id() -> str:
    """A time-sortable unique id (`evt_` + 26 chars), stable across retries."""
    millis = int(time.time() * 1000)
    return "evt_" + base32_130((millis << 80) | secrets.randbits(80))


def stable_event_id(*parts: object) -> str:
    """An event id derived from what the event is (e.g. channel, wamid, status).

    The same notification ingested twice (Meta re-posting it, or a hand-over
    repeated after a crash) gets the same id, so it is stored and delivered once.
    """
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return "evt_" + base32_130(int.from_bytes(digest[:17], "big") >> 6)


def base32_130(value: int) -> str:
    """A 130-bit number as 26 Crockford base32 digits, most significant first.

    Shifted to 160 bits it is 20 bytes, whose RFC 4648 encoding starts with
    exactly those 26 digits: one C call instead of a Python loop per event.
    """
    encoded = base64.b32encode((value << 30).to_bytes(20, "big"))[:26]
    return encoded.translate(_FROM_RFC4648).decode()


def numeric_id(digits: int = 15) -> str:
    """A Meta-style numeric id (WABA, phone number id, media id)."""
    first = secrets.choice("123456789")
    return first + "".join(secrets.choice("0123456789") for _ in range(digits - 1))


def conversation_id() -> str:
    return secrets.token_hex(16)


def business_scoped_user_id(country: str = "US") -> str:
    """A BSUID as Meta adds to webhooks since 2026 (`US.1349...`)."""
    return f"{country}.{numeric_id(20)}"


def stable_business_scoped_user_id(wa_id: str, country: str = "US") -> str:
    """The same BSUID for the same number every time (for numbers nobody registered)."""
    digest = int.from_bytes(hashlib.sha256(f"bsuid:{wa_id}".encode()).digest()[:9], "big")
    return f"{country}.{digest % 10**20:020d}"


def new_api_key() -> str:
    return secrets.token_urlsafe(24)


def hash_api_key(key: str) -> str:
    """Keys are stored as SHA-256 digests; a key is 144 random bits, so no salt is needed."""
    return hashlib.sha256(key.encode()).hexdigest()


def template_status_event_id(channel_id: int, template_id: str, event: str) -> str:
    """The id of a template's status event: known in advance, so a pending
    review can be withdrawn when its template is deleted."""
    return stable_event_id(channel_id, "template_status", template_id, event)

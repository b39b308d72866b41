"""Identifier formats: wamids, event ids, API keys."""

from __future__ import annotations

import base64
import binascii
import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openwaba.domain import ids
from openwaba.domain.deliveries import conversation_of, order_key

_CROCKFORD = set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")


@pytest.mark.parametrize("outbound", [True, False], ids=["outbound", "inbound"])
@pytest.mark.parametrize("wa_id", ["4915112345678", "15550001234", "12345", "1" * 20])
def test_wamid_format(wa_id: str, outbound: bool) -> None:
    value = ids.wamid(wa_id, outbound=outbound)
    assert value.startswith("wamid.")
    raw = base64.b64decode(value.removeprefix("wamid."), validate=True)
    assert wa_id.encode() in raw
    # length-prefixed wa_id right after the 2-byte header
    assert raw[2] == len(wa_id)
    assert raw[3 : 3 + len(wa_id)] == wa_id.encode()
    assert raw[-1:] == b"\x00"
    assert (b"\x15\x02\x00\x11" in raw) is outbound
    assert (b"\x15\x02\x00\x12" in raw) is not outbound


@given(wa_id=st.from_regex(r"\A[0-9]{5,20}\Z"), outbound=st.booleans())
def test_wamid_decodes_for_any_wa_id(wa_id: str, outbound: bool) -> None:
    value = ids.wamid(wa_id, outbound=outbound)
    assert re.fullmatch(r"wamid\.[A-Za-z0-9+/]+=*", value)
    try:
        raw = base64.b64decode(value[len("wamid.") :], validate=True)
    except binascii.Error as exc:  # pragma: no cover - assertion message only
        pytest.fail(f"wamid is not base64: {exc}")
    assert raw[3 : 3 + len(wa_id)] == wa_id.encode()


def test_wamids_are_unique() -> None:
    values = {ids.wamid("4915112345678", outbound=True) for _ in range(2000)}
    assert len(values) == 2000


def test_event_id_format() -> None:
    value = ids.event_id()
    assert value.startswith("evt_")
    assert len(value) == 4 + 26
    assert set(value[4:]) <= _CROCKFORD


def test_event_ids_are_unique() -> None:
    values = [ids.event_id() for _ in range(5000)]
    assert len(set(values)) == len(values)


def _next_millisecond() -> None:
    start = int(time.time() * 1000)
    while int(time.time() * 1000) == start:
        time.sleep(0.0002)


def test_event_ids_sort_by_creation_time_across_milliseconds() -> None:
    batches: list[list[str]] = []
    for _ in range(4):
        _next_millisecond()
        batches.append([ids.event_id() for _ in range(20)])
    # every id of an earlier millisecond sorts before every id of a later one
    for earlier, later in zip(batches, batches[1:]):
        assert max(earlier) < min(later)
    flat = [value for batch in batches for value in batch]
    assert sorted(flat)[0] in batches[0]
    assert sorted(flat)[-1] in batches[-1]


def test_event_id_prefix_encodes_milliseconds(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two ids one millisecond apart differ in the time part, whatever their random part."""
    monkeypatch.setattr(ids.time, "time", lambda: 1_700_000_000.000)
    monkeypatch.setattr(ids.secrets, "randbits", lambda bits: (1 << bits) - 1)
    earlier = ids.event_id()
    monkeypatch.setattr(ids.time, "time", lambda: 1_700_000_000.001)
    monkeypatch.setattr(ids.secrets, "randbits", lambda bits: 0)
    later = ids.event_id()
    assert earlier < later


def test_numeric_id() -> None:
    for digits in (15, 20, 1):
        value = ids.numeric_id(digits)
        assert len(value) == digits
        assert value.isdigit()
        assert value[0] != "0"


def test_business_scoped_user_id() -> None:
    assert re.fullmatch(r"US\.[1-9][0-9]{19}", ids.business_scoped_user_id())
    assert ids.business_scoped_user_id("DE").startswith("DE.")


def test_api_keys_and_hashes() -> None:
    key = ids.new_api_key()
    assert len(key) >= 32
    assert key != ids.new_api_key()
    digest = ids.hash_api_key(key)
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert digest == ids.hash_api_key(key)
    assert digest != ids.hash_api_key(key + "x")


def test_conversation_id() -> None:
    assert re.fullmatch(r"[0-9a-f]{32}", ids.conversation_id())


@settings(max_examples=500)
@given(st.integers(min_value=0, max_value=2**130 - 1))
def test_base32_130_is_crockford_digits_most_significant_first(value: int) -> None:
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    expected = "".join(alphabet[(value >> (5 * (25 - i))) & 31] for i in range(26))
    assert ids.base32_130(value) == expected


@given(st.integers(min_value=1, max_value=2**40), st.one_of(st.none(), st.text(alphabet="0123456789", min_size=1)))
def test_an_order_key_names_its_conversation(channel_id: int, wa_id: str | None) -> None:
    assert conversation_of(order_key(channel_id, wa_id)) == (channel_id, wa_id)

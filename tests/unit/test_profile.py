"""Business profile: `openwaba.domain.profile`.

Each field is set once validly and each limit broken once, for both request
dialects; the view is checked for its defaults. Hypothesis checks that any JSON
object only ever produces RequestError.
"""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openwaba.domain.errors import RequestError
from openwaba.domain.profile import DEFAULT_ABOUT, VERTICALS, parse_profile_update, profile_view


def cloud(**fields: Any) -> dict[str, Any]:
    return {"messaging_product": "whatsapp", **fields}


VALID_CLOUD = [
    pytest.param(cloud(), {}, id="nothing-to-change"),
    pytest.param(cloud(about="Open 9-5"), {"about": "Open 9-5"}, id="about"),
    pytest.param(cloud(about="a" * 139), {"about": "a" * 139}, id="about-139"),
    pytest.param(cloud(address="1 Main St"), {"address": "1 Main St"}, id="address"),
    pytest.param(cloud(address="a" * 256), {"address": "a" * 256}, id="address-256"),
    pytest.param(cloud(address=""), {"address": ""}, id="address-cleared"),
    pytest.param(cloud(description="d" * 512), {"description": "d" * 512}, id="description-512"),
    pytest.param(cloud(email="shop@example.com"), {"email": "shop@example.com"}, id="email"),
    pytest.param(cloud(email=""), {"email": ""}, id="email-cleared"),
    pytest.param(
        cloud(websites=["https://example.com", "http://example.org/shop"]),
        {"websites": ["https://example.com", "http://example.org/shop"]},
        id="websites-two",
    ),
    pytest.param(cloud(websites=[]), {"websites": []}, id="websites-cleared"),
    pytest.param(cloud(websites=["https://" + "a" * 248]), {"websites": ["https://" + "a" * 248]}, id="website-256"),
    pytest.param(cloud(vertical="RETAIL"), {"vertical": "RETAIL"}, id="vertical"),
    pytest.param(cloud(profile_picture_handle="4::aW1hZ2U="), {"profile_picture_handle": "4::aW1hZ2U="}, id="picture"),
    pytest.param(
        cloud(about="Hi", vertical="OTHER", email="a@b.co"),
        {"about": "Hi", "vertical": "OTHER", "email": "a@b.co"},
        id="several",
    ),
]


@pytest.mark.parametrize(("document", "expected"), VALID_CLOUD)
def test_valid_cloud(document: dict[str, Any], expected: dict[str, Any]) -> None:
    assert parse_profile_update(document, on_premise=False) == expected


@pytest.mark.parametrize("vertical", VERTICALS)
def test_every_vertical(vertical: str) -> None:
    assert parse_profile_update(cloud(vertical=vertical), on_premise=False) == {"vertical": vertical}


VALID_ON_PREMISE = [
    pytest.param({}, {}, id="nothing-to-change"),
    pytest.param({"vertical": "HOTEL"}, {"vertical": "HOTEL"}, id="vertical"),
    pytest.param(
        {"address": "1 Main St", "description": "Shop", "email": "a@b.co", "websites": ["https://x.org"]},
        {"address": "1 Main St", "description": "Shop", "email": "a@b.co", "websites": ["https://x.org"]},
        id="all-fields",
    ),
]


@pytest.mark.parametrize(("document", "expected"), VALID_ON_PREMISE)
def test_valid_on_premise(document: dict[str, Any], expected: dict[str, Any]) -> None:
    assert parse_profile_update(document, on_premise=True) == expected


INVALID = [
    pytest.param({"about": "x"}, False, 131008, "messaging_product", id="messaging-product-missing"),
    pytest.param(cloud(messaging_product="sms"), False, 131009, "messaging_product", id="messaging-product-wrong"),
    pytest.param(cloud(name="Shop"), False, 100, "name", id="unknown-key"),
    pytest.param(cloud(about=""), False, 131009, "about", id="about-empty"),
    pytest.param(cloud(about="a" * 140), False, 131009, "about", id="about-too-long"),
    pytest.param(cloud(about=7), False, 100, "about", id="about-not-string"),
    pytest.param(cloud(about=None), False, 100, "about", id="about-null"),
    pytest.param(cloud(address="a" * 257), False, 131009, "address", id="address-too-long"),
    pytest.param(cloud(description="d" * 513), False, 131009, "description", id="description-too-long"),
    pytest.param(cloud(email="a" * 120 + "@exam.com"), False, 131009, "email", id="email-too-long"),
    pytest.param(cloud(email="not-an-email"), False, 131009, "email", id="email-malformed"),
    pytest.param(cloud(email="a b@c.de"), False, 131009, "email", id="email-space"),
    pytest.param(cloud(websites="https://x.org"), False, 100, "websites", id="websites-not-array"),
    pytest.param(cloud(websites=["https://a.org"] * 3), False, 131009, "websites", id="websites-three"),
    pytest.param(cloud(websites=["https://" + "a" * 249]), False, 131009, "websites[0]", id="website-too-long"),
    pytest.param(cloud(websites=["example.com"]), False, 131009, "websites[0]", id="website-no-scheme"),
    pytest.param(cloud(websites=["ftp://x.org"]), False, 131009, "websites[0]", id="website-ftp"),
    pytest.param(cloud(websites=["https://"]), False, 131009, "websites[0]", id="website-scheme-only"),
    pytest.param(cloud(websites=[1]), False, 100, "websites[0]", id="website-not-string"),
    pytest.param(cloud(vertical=""), False, 131009, "vertical", id="vertical-empty"),
    pytest.param(cloud(vertical="SPACE"), False, 131009, "vertical", id="vertical-unknown"),
    pytest.param(cloud(vertical="retail"), False, 131009, "vertical", id="vertical-case"),
    pytest.param(cloud(vertical=["RETAIL"]), False, 100, "vertical", id="vertical-not-string"),
    pytest.param(cloud(profile_picture_handle=""), False, 131008, "profile_picture_handle", id="picture-empty"),
    pytest.param({"messaging_product": "whatsapp"}, True, 100, "messaging_product", id="on-premise-product"),
    pytest.param({"about": "x"}, True, 100, "about", id="on-premise-about"),
    pytest.param({"profile_picture_handle": "h"}, True, 100, "profile_picture_handle", id="on-premise-picture"),
    pytest.param({"vertical": "SPACE"}, True, 131009, "vertical", id="on-premise-vertical"),
    pytest.param({"websites": ["x"] * 3}, True, 131009, "websites", id="on-premise-websites"),
]


@pytest.mark.parametrize(("document", "on_premise", "code", "names"), INVALID)
def test_invalid(document: dict[str, Any], on_premise: bool, code: int, names: str) -> None:
    with pytest.raises(RequestError) as caught:
        parse_profile_update(document, on_premise)
    assert caught.value.code == code, caught.value
    assert names in caught.value.details, caught.value.details


def test_view_defaults() -> None:
    assert profile_view({}) == {
        "about": DEFAULT_ABOUT,
        "address": "",
        "description": "",
        "email": "",
        "profile_picture_url": "",
        "websites": [],
        "vertical": "UNDEFINED",
        "messaging_product": "whatsapp",
    }


def test_view_stored_values() -> None:
    stored = {"about": "Open", "websites": ["https://x.org"], "vertical": "RETAIL", "email": None, "extra": 1}
    view = profile_view(stored)
    assert view["about"] == "Open"
    assert view["websites"] == ["https://x.org"]
    assert view["vertical"] == "RETAIL"
    assert view["email"] == ""  # None means unset
    assert "extra" not in view
    view["websites"].append("https://y.org")
    assert stored["websites"] == ["https://x.org"]  # the view is a copy
    assert profile_view({})["websites"] == []  # and the default is not shared


_KEYS = st.sampled_from(
    ["messaging_product", "about", "address", "description", "email", "websites", "vertical", "profile_picture_handle"]
)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10) | st.sampled_from(["whatsapp", "RETAIL"]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3),
    max_leaves=10,
)


@settings(max_examples=150, deadline=None)
@given(document=st.dictionaries(_KEYS | st.text(max_size=5), _JSON, max_size=5), on_premise=st.booleans())
def test_raises_only_request_error(document: dict[str, Any], on_premise: bool) -> None:
    with contextlib.suppress(RequestError):
        parse_profile_update(document, on_premise)

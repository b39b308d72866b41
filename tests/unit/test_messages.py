"""Send-request parsing: `openwaba.domain.messages.parse_send_request`.

Each rule of WhatsApp's validation is broken once, with everything else valid,
and the resulting RequestError is checked for its code, HTTP status and the
field it names.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openwaba.domain.errors import RequestError
from openwaba.domain.messages import (
    BODY_LIMIT,
    CALLBACK_DATA_LIMIT,
    Dialect,
    OutgoingMessage,
    parse_send_request,
)

CLOUD = Dialect.CLOUD
ON_PREMISE = Dialect.ON_PREMISE

_DELETE = object()  # marker: remove the key from the base request


def cloud_text(**changes: Any) -> dict[str, Any]:
    """A valid Cloud API text request, with top-level keys changed or deleted."""
    body: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "4915112345678",
        "type": "text",
        "text": {"body": "hello"},
    }
    for key, value in changes.items():
        if value is _DELETE:
            body.pop(key, None)
        else:
            body[key] = value
    return body


def encode(document: Any) -> bytes:
    return json.dumps(document).encode()


# --- valid requests ---------------------------------------------------------------

VALID_CLOUD = [
    pytest.param(
        cloud_text(),
        dict(
            input="4915112345678",
            wa_id="4915112345678",
            content={"body": "hello", "preview_url": False},
            context_message_id=None,
            biz_opaque_callback_data=None,
        ),
        id="plain-text",
    ),
    pytest.param(
        cloud_text(text={"body": "see https://example.org", "preview_url": True}),
        dict(content={"body": "see https://example.org", "preview_url": True}),
        id="preview-url-true",
    ),
    pytest.param(
        cloud_text(text={"body": "no preview", "preview_url": False}),
        dict(content={"body": "no preview", "preview_url": False}),
        id="preview-url-false",
    ),
    pytest.param(
        cloud_text(context={"message_id": "wamid.HBgLNDkxNTExMjM0NTY3OBUCABIYFDNBMDAA"}),
        dict(context_message_id="wamid.HBgLNDkxNTExMjM0NTY3OBUCABIYFDNBMDAA"),
        id="reply-context",
    ),
    pytest.param(
        cloud_text(biz_opaque_callback_data="order-42"),
        dict(biz_opaque_callback_data="order-42"),
        id="callback-data",
    ),
    pytest.param(
        cloud_text(biz_opaque_callback_data="x" * CALLBACK_DATA_LIMIT),
        dict(biz_opaque_callback_data="x" * CALLBACK_DATA_LIMIT),
        id="callback-data-at-limit",
    ),
    pytest.param(
        cloud_text(to="+4915112345678"),
        dict(input="+4915112345678", wa_id="4915112345678"),
        id="to-leading-plus",
    ),
    pytest.param(
        cloud_text(to="+1 555-000 1234"),
        dict(input="+1 555-000 1234", wa_id="15550001234"),
        id="to-spaces-dashes",
    ),
    pytest.param(
        cloud_text(to="12345"),
        dict(wa_id="12345"),
        id="to-5-digits-min",
    ),
    pytest.param(
        cloud_text(to="1" * 20),
        dict(wa_id="1" * 20),
        id="to-20-digits-max",
    ),
    pytest.param(
        cloud_text(text={"body": "x" * BODY_LIMIT}),
        dict(content={"body": "x" * BODY_LIMIT, "preview_url": False}),
        id="body-4096-chars",
    ),
    pytest.param(
        cloud_text(text={"body": "😀" * BODY_LIMIT}),
        dict(content={"body": "😀" * BODY_LIMIT, "preview_url": False}),
        id="body-4096-emoji-counted-as-chars",
    ),
    pytest.param(
        cloud_text(type=_DELETE),
        dict(type="text"),
        id="type-omitted-defaults-to-text",
    ),
    pytest.param(
        cloud_text(recipient_type=_DELETE),
        dict(type="text"),
        id="recipient-type-omitted",
    ),
]


@pytest.mark.parametrize(("request_body", "expected"), VALID_CLOUD)
def test_valid_cloud_requests(request_body: dict[str, Any], expected: dict[str, Any]) -> None:
    message = parse_send_request(encode(request_body), CLOUD)
    assert isinstance(message, OutgoingMessage)
    assert message.type == "text"
    for field, value in expected.items():
        assert getattr(message, field) == value, field


def test_content_is_plain_builtins() -> None:
    message = parse_send_request(encode(cloud_text()), CLOUD)
    assert type(message.content) is dict
    assert json.loads(json.dumps(message.content)) == message.content


# --- rules broken once --------------------------------------------------------------

INVALID_CLOUD = [
    # (raw body bytes, expected code, substring expected in details)
    pytest.param(b"not json", 100, "JSON", id="not-json"),
    pytest.param(b"", 100, "JSON", id="empty-body"),
    pytest.param(b'{"to": "12345",', 100, "JSON", id="truncated-json"),
    pytest.param(b"\xff\xfe", 100, "JSON", id="binary"),
    pytest.param(encode([cloud_text()]), 100, "object", id="json-array"),
    pytest.param(encode("hello"), 100, "object", id="json-string"),
    pytest.param(encode(None), 100, "object", id="json-null"),
    pytest.param(
        encode(cloud_text(messaging_product=_DELETE)), 131008, "messaging_product", id="missing-messaging-product"
    ),
    pytest.param(encode(cloud_text(messaging_product="sms")), 131009, "messaging_product", id="messaging-product-sms"),
    pytest.param(encode(cloud_text(messaging_product=1)), 100, "messaging_product", id="messaging-product-not-string"),
    pytest.param(encode(cloud_text(to=_DELETE)), 131008, "to", id="missing-to"),
    pytest.param(encode(cloud_text(to="abc")), 131009, "phone number", id="to-letters"),
    pytest.param(encode(cloud_text(to="12")), 131009, "phone number", id="to-too-short"),
    pytest.param(encode(cloud_text(to="1" * 25)), 131009, "phone number", id="to-25-digits"),
    pytest.param(encode(cloud_text(to="1" * 21)), 131009, "phone number", id="to-21-digits"),
    pytest.param(encode(cloud_text(to="")), 131009, "phone number", id="to-empty"),
    pytest.param(encode(cloud_text(to="١٢٣٤٥٦٧")), 131009, "phone number", id="to-non-ascii-digits"),
    pytest.param(encode(cloud_text(to=4915112345678)), 100, "to", id="to-not-string"),
    pytest.param(encode(cloud_text(type="hologram", hologram={})), 131051, "hologram", id="unknown-type"),
    pytest.param(encode(cloud_text(type=7)), 100, "type", id="type-not-string"),
    pytest.param(encode(cloud_text(text=_DELETE)), 131008, "text", id="type-text-without-text"),
    pytest.param(encode(cloud_text(text=None)), 131008, "text", id="text-null"),
    pytest.param(encode(cloud_text(text="hello")), 100, "text", id="text-not-object"),
    pytest.param(encode(cloud_text(text={})), 131008, "text.body", id="text-body-missing"),
    pytest.param(
        encode(cloud_text(text={"preview_url": True})), 131008, "text.body", id="text-body-missing-with-preview"
    ),
    pytest.param(encode(cloud_text(text={"body": ""})), 131008, "text.body", id="text-body-empty"),
    pytest.param(
        encode(cloud_text(text={"body": "x" * (BODY_LIMIT + 1)})), 131009, "text.body", id="text-body-4097-chars"
    ),
    pytest.param(encode(cloud_text(text={"body": 42})), 100, "text.body", id="text-body-not-string"),
    pytest.param(encode(cloud_text(text={"body": None})), 100, "text.body", id="text-body-null"),
    pytest.param(
        encode(cloud_text(text={"body": "hi", "preview_url": "yes"})),
        100,
        "text.preview_url",
        id="preview-url-not-bool",
    ),
    pytest.param(
        encode(cloud_text(text={"body": "hi", "preview_url": 1})), 100, "text.preview_url", id="preview-url-int"
    ),
    pytest.param(encode(cloud_text(text={"body": "hi", "footer": "x"})), 100, "text.footer", id="unknown-key-in-text"),
    pytest.param(encode(cloud_text(colour="red")), 100, "colour", id="unknown-top-level-key"),
    pytest.param(encode(cloud_text(preview_url=True)), 100, "preview_url", id="cloud-top-level-preview-url"),
    pytest.param(
        encode(cloud_text(biz_opaque_callback_data="x" * (CALLBACK_DATA_LIMIT + 1))),
        131009,
        "biz_opaque_callback_data",
        id="callback-data-513-chars",
    ),
    pytest.param(encode(cloud_text(recipient_type="group")), 131009, "recipient_type", id="recipient-type-group"),
    pytest.param(encode(cloud_text(context={})), 131008, "context.message_id", id="context-without-message-id"),
    pytest.param(
        encode(cloud_text(context={"message_id": ""})), 131008, "context.message_id", id="context-message-id-empty"
    ),
    pytest.param(
        encode(cloud_text(context={"message_id": "wamid.x", "from": "1"})),
        100,
        "context.from",
        id="unknown-key-in-context",
    ),
]


@pytest.mark.parametrize(("raw", "code", "names"), INVALID_CLOUD)
def test_invalid_cloud_requests(raw: bytes, code: int, names: str) -> None:
    with pytest.raises(RequestError) as info:
        parse_send_request(raw, CLOUD)
    error = info.value
    assert error.code == code, error.details
    assert error.http_status == 400
    assert names in error.details
    assert str(code) in str(error)


@pytest.mark.parametrize(
    ("request_body", "field"),
    [
        pytest.param(cloud_text(text={}), "'text.body'", id="missing"),
        pytest.param(cloud_text(text={"body": ""}), "'text.body'", id="empty"),
        pytest.param(cloud_text(text={"body": "x" * (BODY_LIMIT + 1)}), "'text.body'", id="too-long"),
        pytest.param(cloud_text(text={"body": 1}), "'text.body'", id="wrong-type"),
        pytest.param(cloud_text(text={"body": "x", "extra": 1}), "'text.extra'", id="unknown"),
        pytest.param(cloud_text(to=_DELETE), "'to'", id="top-level-missing"),
        pytest.param(cloud_text(colour=1), "'colour'", id="top-level-unknown"),
        pytest.param(cloud_text(recipient_type="group"), "'recipient_type'", id="top-level-enum"),
    ],
)
def test_details_name_the_offending_field_exactly(request_body: dict[str, Any], field: str) -> None:
    """The quoted path is exactly the field, without a `$` or leading dot."""
    with pytest.raises(RequestError) as info:
        parse_send_request(encode(request_body), CLOUD)
    assert field in info.value.details


# --- On-Premise dialect -------------------------------------------------------------


def on_premise_text(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"to": "4915112345678", "text": {"body": "hello"}}
    for key, value in changes.items():
        if value is _DELETE:
            body.pop(key, None)
        else:
            body[key] = value
    return body


VALID_ON_PREMISE = [
    pytest.param(on_premise_text(), {"body": "hello", "preview_url": False}, id="minimal-no-product-no-type"),
    pytest.param(on_premise_text(type="text"), {"body": "hello", "preview_url": False}, id="explicit-type"),
    pytest.param(
        on_premise_text(messaging_product="whatsapp"),
        {"body": "hello", "preview_url": False},
        id="messaging-product-tolerated",
    ),
    pytest.param(
        on_premise_text(preview_url=True), {"body": "hello", "preview_url": True}, id="top-level-preview-url-moved"
    ),
    pytest.param(
        on_premise_text(preview_url=False, text={"body": "hello", "preview_url": True}),
        {"body": "hello", "preview_url": False},
        id="top-level-preview-url-wins",
    ),
    pytest.param(
        on_premise_text(text={"body": "hello", "preview_url": True}),
        {"body": "hello", "preview_url": True},
        id="nested-preview-url",
    ),
]


@pytest.mark.parametrize(("request_body", "content"), VALID_ON_PREMISE)
def test_valid_on_premise_requests(request_body: dict[str, Any], content: dict[str, Any]) -> None:
    message = parse_send_request(encode(request_body), ON_PREMISE)
    assert message.type == "text"
    assert message.wa_id == "4915112345678"
    assert message.content == content


INVALID_ON_PREMISE = [
    pytest.param(on_premise_text(preview_url="yes"), 100, "preview_url", id="top-level-preview-url-not-bool"),
    pytest.param(on_premise_text(text=_DELETE), 131008, "text", id="no-text-object"),
    pytest.param(on_premise_text(messaging_product="sms"), 131009, "messaging_product", id="messaging-product-sms"),
    pytest.param(on_premise_text(to="12"), 131009, "phone number", id="to-too-short"),
    pytest.param(on_premise_text(text={"body": "x" * (BODY_LIMIT + 1)}), 131009, "text.body", id="body-too-long"),
]


@pytest.mark.parametrize(("request_body", "code", "names"), INVALID_ON_PREMISE)
def test_invalid_on_premise_requests(request_body: dict[str, Any], code: int, names: str) -> None:
    with pytest.raises(RequestError) as info:
        parse_send_request(encode(request_body), ON_PREMISE)
    assert info.value.code == code
    assert info.value.http_status == 400
    assert names in info.value.details


def test_cloud_rejects_what_on_premise_accepts() -> None:
    raw = encode(on_premise_text(preview_url=True))
    assert parse_send_request(raw, ON_PREMISE).content["preview_url"] is True
    with pytest.raises(RequestError) as info:
        parse_send_request(raw, CLOUD)
    assert info.value.code == 131008  # messaging_product is checked first


# --- never anything but OutgoingMessage or RequestError ----------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=30,
)

# Documents that look like send requests, so the fuzzing also reaches the later rules.
_field_values = st.one_of(json_values, st.sampled_from(["whatsapp", "text", "individual", "+4915112345678", ""]))
request_like = st.fixed_dictionaries(
    {},
    optional={
        "messaging_product": _field_values,
        "recipient_type": _field_values,
        "to": st.one_of(st.from_regex(r"\A\+?[0-9 \-]{0,26}\Z"), _field_values),
        "type": _field_values,
        "text": st.one_of(
            st.fixed_dictionaries({}, optional={"body": _field_values, "preview_url": _field_values}),
            json_values,
        ),
        "context": st.one_of(st.fixed_dictionaries({}, optional={"message_id": _field_values}), json_values),
        "biz_opaque_callback_data": _field_values,
        "preview_url": _field_values,
    },
)


def _check_total(raw: bytes, dialect: Dialect) -> None:
    try:
        result = parse_send_request(raw, dialect)
    except RequestError as error:
        assert error.http_status == 400
        assert error.details
    else:
        assert isinstance(result, OutgoingMessage)
        assert result.wa_id.isdigit()


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(document=st.one_of(json_values, request_like), dialect=st.sampled_from(Dialect))
def test_any_json_yields_message_or_request_error(document: Any, dialect: Dialect) -> None:
    _check_total(json.dumps(document).encode(), dialect)


@settings(max_examples=200)
@given(raw=st.binary(max_size=200), dialect=st.sampled_from(Dialect))
def test_any_bytes_yield_message_or_request_error(raw: bytes, dialect: Dialect) -> None:
    _check_total(raw, dialect)


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"1" * 400, id="huge-int"),
        pytest.param(b'{"to": 1e999}', id="float-overflow"),
        pytest.param(b'{"to": "\\ud800"}', id="lone-surrogate"),
        pytest.param(b"[" * 500 + b"]" * 500, id="nested-500"),
    ],
)
def test_edge_json_yields_request_error(raw: bytes) -> None:
    with pytest.raises(RequestError):
        parse_send_request(raw, CLOUD)


@pytest.mark.parametrize("depth", [1_000, 5_000, 100_000])
def test_deeply_nested_json_is_a_request_error(depth: int) -> None:
    """msgspec raises RecursionError (not DecodeError) past ~1000 levels; a 2 KB body must not be a 500."""
    for dialect in Dialect:
        with pytest.raises(RequestError) as info:
            parse_send_request(b"[" * depth + b"]" * depth, dialect)
        assert info.value.code == 100
        with pytest.raises(RequestError):
            parse_send_request(b'{"to":' + b'{"a":' * depth + b"1" + b"}" * depth + b"}", dialect)

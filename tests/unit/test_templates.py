"""Message templates: `openwaba.domain.templates`.

Create rules: one valid example per construct, then each rule broken once with
everything else valid, checking the WhatsApp code and that the details name
the offending path. The send check is exercised the same way against stored
templates. Hypothesis covers the asynchronous 132018 rule and that arbitrary
JSON only ever produces RequestError.
"""

from __future__ import annotations

import contextlib
import copy
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openwaba.domain.errors import RequestError
from openwaba.domain.template_send import check_template_send, render_body, template_delivery_error
from openwaba.domain.templates import (
    AUTHENTICATION_BODY,
    PARAM_TEXT_ERROR,
    Template,
    TemplateDraft,
    TemplateStatus,
    parse_template_create,
    review,
    variables,
)

_DELETE = object()  # marker: remove the key

BODY: dict[str, Any] = {
    "type": "BODY",
    "text": "Hi {{1}}, your order {{2}} is ready.",
    "example": {"body_text": [["Ann", "A-17"]]},
}
NAMED_BODY: dict[str, Any] = {
    "type": "BODY",
    "text": "Hi {{first_name}}, order {{order_id}} is ready.",
    "example": {
        "body_text_named_params": [
            {"param_name": "first_name", "example": "Ann"},
            {"param_name": "order_id", "example": "A-17"},
        ]
    },
}
PLAIN_BODY: dict[str, Any] = {"type": "BODY", "text": "Your order is ready."}


def create(*components: Any, **changes: Any) -> dict[str, Any]:
    """A valid create request; components default to BODY, top-level keys changed or deleted."""
    document: dict[str, Any] = {
        "name": "order_update",
        "language": "en_US",
        "category": "UTILITY",
        "components": copy.deepcopy(list(components) or [BODY]),
    }
    for key, value in changes.items():
        if value is _DELETE:
            document.pop(key, None)
        else:
            document[key] = value
    return document


def buttons(*items: Any) -> dict[str, Any]:
    return {"type": "BUTTONS", "buttons": list(items)}


QUICK_REPLY = {"type": "QUICK_REPLY", "text": "Stop"}
URL_STATIC = {"type": "URL", "text": "Track", "url": "https://example.com/track"}
URL_VARIABLE = {
    "type": "URL",
    "text": "Track",
    "url": "https://example.com/track/{{1}}",
    "example": ["https://example.com/track/A-17"],
}
PHONE = {"type": "PHONE_NUMBER", "text": "Call us", "phone_number": "+4915112345678"}
COPY_CODE = {"type": "COPY_CODE", "example": "SAVE10"}


def raises(document: Any, code: int, names: str) -> None:
    with pytest.raises(RequestError) as caught:
        parse_template_create(document)
    assert caught.value.code == code, caught.value
    assert names in caught.value.details, caught.value.details


# --- create: valid ----------------------------------------------------------------

VALID_CREATE = [
    pytest.param(create(PLAIN_BODY), id="body-without-variables"),
    pytest.param(create(BODY), id="body-positional"),
    pytest.param(create(NAMED_BODY, parameter_format="NAMED"), id="body-named"),
    pytest.param(create(NAMED_BODY, parameter_format="named"), id="parameter-format-any-case"),
    pytest.param(create(BODY, parameter_format="POSITIONAL"), id="parameter-format-positional"),
    pytest.param(
        create({"type": "body", "text": "Order {{1}} ready.", "example": {"body_text": [["1"]]}}, category="utility"),
        id="lower-case-type-and-category",
    ),
    pytest.param(
        create({"type": "HEADER", "format": "TEXT", "text": "Order {{1}}", "example": {"header_text": ["A-17"]}}, BODY),
        id="header-text-variable",
    ),
    pytest.param(create({"type": "HEADER", "format": "TEXT", "text": "Your order"}, BODY), id="header-text-plain"),
    pytest.param(create({"type": "HEADER", "format": "IMAGE"}, BODY), id="header-image-no-example"),
    pytest.param(
        create({"type": "HEADER", "format": "DOCUMENT", "example": {"header_handle": ["4::aW=="]}}, BODY),
        id="header-document-handle",
    ),
    pytest.param(create({"type": "HEADER", "format": "location"}, BODY), id="header-location"),
    pytest.param(
        create(
            {
                "type": "HEADER",
                "format": "TEXT",
                "text": "Hi {{first_name}}",
                "example": {"header_text_named_params": [{"param_name": "first_name", "example": "Ann"}]},
            },
            NAMED_BODY,
        ),
        id="header-named",
    ),
    pytest.param(create(BODY, {"type": "FOOTER", "text": "Reply STOP to opt out"}), id="footer"),
    pytest.param(create(BODY, buttons(QUICK_REPLY)), id="button-quick-reply"),
    pytest.param(create(BODY, buttons(URL_STATIC)), id="button-url-static"),
    pytest.param(create(BODY, buttons(URL_VARIABLE)), id="button-url-variable"),
    pytest.param(create(BODY, buttons(PHONE)), id="button-phone-number"),
    pytest.param(create(BODY, buttons(COPY_CODE), category="MARKETING"), id="button-copy-code"),
    pytest.param(create(BODY, buttons({"type": "FLOW", "text": "Book", "flow_id": "123"})), id="button-flow"),
    pytest.param(create(BODY, buttons({"type": "CATALOG", "text": "View catalog"})), id="button-catalog"),
    pytest.param(create(BODY, buttons(*[QUICK_REPLY] * 10)), id="ten-buttons"),
    pytest.param(create(BODY, buttons(URL_STATIC, URL_VARIABLE, PHONE, QUICK_REPLY)), id="mixed-buttons"),
    pytest.param(
        create(
            {"type": "BODY", "add_security_recommendation": True},
            {"type": "FOOTER", "code_expiration_minutes": 10},
            buttons({"type": "OTP", "otp_type": "COPY_CODE", "text": "Copy code"}),
            category="AUTHENTICATION",
        ),
        id="authentication",
    ),
    pytest.param(create(BODY, language="en"), id="language-two-letters"),
    pytest.param(create(BODY, language="pt_BR"), id="language-region"),
    pytest.param(create(BODY, language="fil"), id="language-three-letters"),
    pytest.param(create(BODY, language="prs_AF"), id="language-three-letters-region"),
    pytest.param(create(BODY, name="a" * 512), id="name-512"),
    pytest.param(create(BODY, name="order_update_2"), id="name-digits"),
    pytest.param(create(BODY, allow_category_change=True), id="allow-category-change"),
    pytest.param(create({"type": "BODY", "text": "x" * 1024}), id="body-1024"),
    pytest.param(
        create({"type": "BODY", "text": "Hi {{1}} and {{1}} again.", "example": {"body_text": [["Ann"]]}}),
        id="repeated-variable",
    ),
]


@pytest.mark.parametrize("document", VALID_CREATE)
def test_valid_create(document: dict[str, Any]) -> None:
    draft = parse_template_create(document)
    assert isinstance(draft, TemplateDraft)
    assert draft.name == document["name"]
    assert draft.category == document["category"].upper()
    assert [c["type"] for c in draft.components] == [c["type"].upper() for c in document["components"]]


def test_create_normalises() -> None:
    draft = parse_template_create(
        create(
            {"type": "header", "format": "image"},
            {"type": "body", "text": "Hi {{1}}!", "example": {"body_text": [["Ann"]]}},
            {"type": "buttons", "buttons": [{"type": "quick_reply", "text": "Stop"}]},
            category="marketing",
            allow_category_change=True,
        )
    )
    assert draft == TemplateDraft(
        name="order_update",
        language="en_US",
        category="MARKETING",
        components=[
            {"type": "HEADER", "format": "IMAGE"},
            {"type": "BODY", "text": "Hi {{1}}!", "example": {"body_text": [["Ann"]]}},
            {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Stop"}]},
        ],
        allow_category_change=True,
    )


def test_authentication_gets_meta_wording() -> None:
    draft = parse_template_create(
        create({"type": "BODY"}, {"type": "FOOTER", "code_expiration_minutes": 5}, category="AUTHENTICATION")
    )
    assert draft.components[0]["text"] == AUTHENTICATION_BODY
    assert draft.components[1]["text"] == "This code expires in 5 minutes."


# --- create: each rule broken once ------------------------------------------------


def body_with(text: Any, example: Any = _DELETE) -> dict[str, Any]:
    component: dict[str, Any] = {"type": "BODY", "text": text}
    if example is not _DELETE:
        component["example"] = example
    return component


INVALID_CREATE = [
    # top level
    pytest.param(create(name=_DELETE), 131008, "name", id="name-missing"),
    pytest.param(create(name=""), 131008, "name", id="name-empty"),
    pytest.param(create(name=7), 100, "name", id="name-not-string"),
    pytest.param(create(name="Order_update"), 131009, "name", id="name-upper-case"),
    pytest.param(create(name="order-update"), 131009, "name", id="name-hyphen"),
    pytest.param(create(name="a" * 513), 131009, "name", id="name-too-long"),
    pytest.param(create(language=_DELETE), 131008, "language", id="language-missing"),
    pytest.param(create(language="en-US"), 131009, "language", id="language-hyphen"),
    pytest.param(create(language="english"), 131009, "language", id="language-word"),
    pytest.param(create(language="EN_us"), 131009, "language", id="language-case"),
    pytest.param(create(category=_DELETE), 131008, "category", id="category-missing"),
    pytest.param(create(category="PROMOTION"), 131009, "category", id="category-unknown"),
    pytest.param(create(allow_category_change="yes"), 100, "allow_category_change", id="allow-change-not-bool"),
    pytest.param(create(parameter_format="FANCY"), 131009, "parameter_format", id="parameter-format-unknown"),
    pytest.param(create(parameter_format="NAMED"), 131009, "parameter_format", id="parameter-format-mismatch"),
    pytest.param(create(tags=["x"]), 100, "tags", id="unknown-key"),
    pytest.param(create(components=_DELETE), 131008, "components", id="components-missing"),
    pytest.param(create(components={"type": "BODY"}), 100, "components", id="components-not-array"),
    pytest.param(create(components=[]), 131008, "components", id="components-empty"),
    pytest.param(create({"type": "FOOTER", "text": "x"}), 131008, "BODY", id="body-missing"),
    pytest.param(create(BODY, PLAIN_BODY), 131009, "components[1]", id="body-twice"),
    pytest.param(create("BODY"), 100, "components[0]", id="component-not-object"),
    pytest.param(create({"text": "x"}), 131008, "components[0].type", id="component-type-missing"),
    pytest.param(create({"type": "CAROUSEL"}), 131009, "components[0].type", id="component-type-unknown"),
    pytest.param(create({**PLAIN_BODY, "format": "TEXT"}), 100, "components[0].format", id="component-unknown-key"),
    # body
    pytest.param(create({"type": "BODY"}), 131008, "components[0].text", id="body-text-missing"),
    pytest.param(create(body_with("x" * 1025)), 131009, "components[0].text", id="body-text-too-long"),
    pytest.param(create(body_with(["Hi"])), 100, "components[0].text", id="body-text-not-string"),
    pytest.param(
        create(body_with("a {{1}} b {{3}} c", {"body_text": [["x", "y"]]})),
        131009,
        "components[0].text",
        id="variables-gap",
    ),
    pytest.param(
        create(body_with("a {{2}} b", {"body_text": [["x"]]})), 131009, "components[0].text", id="variables-not-from-1"
    ),
    pytest.param(create(body_with("a {{0}} b")), 131009, "components[0].text", id="variable-zero"),
    pytest.param(create(body_with("a {{ 1 }} b")), 131009, "components[0].text", id="variable-spaces"),
    pytest.param(create(body_with("a {{Name}} b")), 131009, "components[0].text", id="variable-upper-case"),
    pytest.param(create(body_with("a {{1}} b {{name}} c")), 131009, "components[0].text", id="variables-mixed"),
    pytest.param(create(body_with("a {{1}} b")), 131008, "components[0].example", id="example-missing"),
    pytest.param(
        create(body_with("a {{1}} b", {"body_text": [["x", "y"]]})),
        131009,
        "components[0].example.body_text[0]",
        id="example-count",
    ),
    pytest.param(
        create(body_with("a {{1}} b", {"body_text": ["x"]})),
        100,
        "components[0].example.body_text[0]",
        id="example-not-nested",
    ),
    pytest.param(
        create(body_with("a {{1}} b", {"body_text": []})),
        131008,
        "components[0].example.body_text",
        id="example-empty",
    ),
    pytest.param(
        create(body_with("a {{1}} b", {"header_text": ["x"]})),
        100,
        "components[0].example.header_text",
        id="example-wrong-key",
    ),
    pytest.param(
        create(body_with("a {{1}} b", {"body_text_named_params": []})),
        131008,
        "components[0].example.body_text",
        id="positional-with-named-example",
    ),
    pytest.param(
        create(body_with("a {{name}} b", {"body_text": [["x"]]})),
        131008,
        "components[0].example.body_text_named_params",
        id="named-with-positional-example",
    ),
    pytest.param(
        create(body_with("a {{name}} b", {"body_text_named_params": [{"param_name": "other", "example": "x"}]})),
        131009,
        "components[0].example.body_text_named_params",
        id="named-example-wrong-name",
    ),
    pytest.param(
        create(body_with("a {{name}} b", {"body_text_named_params": [{"param_name": "name"}]})),
        131008,
        "body_text_named_params[0].example",
        id="named-example-value-missing",
    ),
    # header
    pytest.param(create({"type": "HEADER"}, BODY), 131008, "components[0].format", id="header-format-missing"),
    pytest.param(
        create({"type": "HEADER", "format": "AUDIO"}, BODY), 131009, "components[0].format", id="header-format-unknown"
    ),
    pytest.param(
        create({"type": "HEADER", "format": "TEXT"}, BODY), 131008, "components[0].text", id="header-text-missing"
    ),
    pytest.param(
        create({"type": "HEADER", "format": "TEXT", "text": "x" * 61}, BODY),
        131009,
        "components[0].text",
        id="header-text-too-long",
    ),
    pytest.param(
        create(
            {"type": "HEADER", "format": "TEXT", "text": "{{1}} {{2}}", "example": {"header_text": ["a", "b"]}}, BODY
        ),
        131009,
        "components[0].text",
        id="header-two-variables",
    ),
    pytest.param(
        create({"type": "HEADER", "format": "TEXT", "text": "Order {{1}}"}, BODY),
        131008,
        "components[0].example",
        id="header-example-missing",
    ),
    pytest.param(
        create({"type": "HEADER", "format": "TEXT", "text": "Order {{1}}", "example": {"header_text": []}}, BODY),
        131009,
        "components[0].example.header_text",
        id="header-example-count",
    ),
    pytest.param(
        create({"type": "HEADER", "format": "IMAGE", "text": "x"}, BODY),
        100,
        "components[0].text",
        id="header-media-with-text",
    ),
    pytest.param(
        create({"type": "HEADER", "format": "IMAGE", "example": {"header_handle": "h"}}, BODY),
        100,
        "components[0].example.header_handle",
        id="header-handle-not-array",
    ),
    pytest.param(
        create(
            {
                "type": "HEADER",
                "format": "TEXT",
                "text": "Hi {{name}}",
                "example": {"header_text_named_params": [{"param_name": "name", "example": "Ann"}]},
            },
            BODY,
        ),
        131009,
        "components' mixes numbered and named variables across header and body",
        id="header-body-styles-mixed",
    ),
    # footer
    pytest.param(create(BODY, {"type": "FOOTER"}), 131008, "components[1].text", id="footer-text-missing"),
    pytest.param(
        create(BODY, {"type": "FOOTER", "text": "x" * 61}), 131009, "components[1].text", id="footer-text-too-long"
    ),
    pytest.param(
        create(BODY, {"type": "FOOTER", "text": "Ref {{1}}"}), 131009, "components[1].text", id="footer-variable"
    ),
    pytest.param(
        create(BODY, {"type": "FOOTER", "code_expiration_minutes": 91}),
        131009,
        "components[1].code_expiration_minutes",
        id="code-expiration-too-long",
    ),
    pytest.param(
        create(BODY, {"type": "FOOTER", "code_expiration_minutes": "10"}),
        100,
        "components[1].code_expiration_minutes",
        id="code-expiration-not-int",
    ),
    # buttons
    pytest.param(create(BODY, {"type": "BUTTONS"}), 131008, "components[1].buttons", id="buttons-missing"),
    pytest.param(create(BODY, buttons()), 131008, "components[1].buttons", id="buttons-empty"),
    pytest.param(create(BODY, buttons(*[QUICK_REPLY] * 11)), 131009, "components[1].buttons", id="buttons-eleven"),
    pytest.param(create(BODY, buttons(URL_STATIC, URL_STATIC, URL_VARIABLE)), 131009, "URL", id="buttons-three-urls"),
    pytest.param(create(BODY, buttons(PHONE, PHONE)), 131009, "PHONE_NUMBER", id="buttons-two-phones"),
    pytest.param(create(BODY, buttons("x")), 100, "components[1].buttons[0]", id="button-not-object"),
    pytest.param(
        create(BODY, buttons({"type": "VOICE", "text": "x"})),
        131009,
        "components[1].buttons[0].type",
        id="button-type-unknown",
    ),
    pytest.param(
        create(BODY, buttons({"type": "QUICK_REPLY"})),
        131008,
        "components[1].buttons[0].text",
        id="quick-reply-text-missing",
    ),
    pytest.param(
        create(BODY, buttons({"type": "QUICK_REPLY", "text": "x" * 26})),
        131009,
        "components[1].buttons[0].text",
        id="quick-reply-text-too-long",
    ),
    pytest.param(
        create(BODY, buttons({"type": "QUICK_REPLY", "text": "Stop {{1}}"})),
        131009,
        "components[1].buttons[0].text",
        id="button-text-variable",
    ),
    pytest.param(
        create(BODY, buttons({**QUICK_REPLY, "url": "https://x.org"})),
        100,
        "components[1].buttons[0].url",
        id="quick-reply-unknown-key",
    ),
    pytest.param(
        create(BODY, buttons({"type": "URL", "text": "Go"})), 131008, "components[1].buttons[0].url", id="url-missing"
    ),
    pytest.param(
        create(BODY, buttons({**URL_STATIC, "url": "ftp://example.com"})),
        131009,
        "components[1].buttons[0].url",
        id="url-scheme",
    ),
    pytest.param(
        create(BODY, buttons({**URL_VARIABLE, "url": "https://example.com/{{1}}/track"})),
        131009,
        "components[1].buttons[0].url",
        id="url-variable-not-at-end",
    ),
    pytest.param(
        create(BODY, buttons({**URL_VARIABLE, "url": "https://example.com/{{1}}/{{2}}"})),
        131009,
        "components[1].buttons[0].url",
        id="url-two-variables",
    ),
    pytest.param(
        create(BODY, buttons({k: v for k, v in URL_VARIABLE.items() if k != "example"})),
        131008,
        "components[1].buttons[0].example",
        id="url-example-missing",
    ),
    pytest.param(
        create(BODY, buttons({"type": "PHONE_NUMBER", "text": "Call"})),
        131008,
        "components[1].buttons[0].phone_number",
        id="phone-number-missing",
    ),
    pytest.param(
        create(BODY, buttons({**PHONE, "phone_number": "call me"})),
        131009,
        "components[1].buttons[0].phone_number",
        id="phone-number-malformed",
    ),
    pytest.param(
        create(BODY, buttons({"type": "COPY_CODE"})),
        131008,
        "components[1].buttons[0].example",
        id="copy-code-example-missing",
    ),
    pytest.param(
        create(BODY, buttons({"type": "COPY_CODE", "example": "X" * 16})),
        131009,
        "components[1].buttons[0].example",
        id="copy-code-too-long",
    ),
    pytest.param(
        create(BODY, buttons({"type": "OTP", "otp_type": "COPY_CODE"})),
        131009,
        "components[1].buttons[0].type",
        id="otp-outside-authentication",
    ),
    pytest.param(
        create(BODY, buttons({"type": "OTP", "otp_type": "SMS"}), category="AUTHENTICATION"),
        131009,
        "components[1].buttons[0].otp_type",
        id="otp-type-unknown",
    ),
    pytest.param(
        create(BODY, buttons({"type": "FLOW", "text": "Book"})),
        131008,
        "components[1].buttons[0].flow_id",
        id="flow-without-flow",
    ),
]


@pytest.mark.parametrize(("document", "code", "names"), INVALID_CREATE)
def test_invalid_create(document: dict[str, Any], code: int, names: str) -> None:
    raises(document, code, names)


# --- review -----------------------------------------------------------------------


def draft(text: str, name: str = "order_update", category: str = "UTILITY") -> TemplateDraft:
    return TemplateDraft(name, "en_US", category, [{"type": "BODY", "text": text}], False)


REVIEWS = [
    pytest.param(draft("Your order is ready."), None, TemplateStatus.APPROVED, None, id="plain"),
    pytest.param(draft("Hi {{1}}, thanks."), None, TemplateStatus.APPROVED, None, id="variable-inside"),
    pytest.param(draft("{{1}} is ready."), None, TemplateStatus.REJECTED, "INVALID_FORMAT", id="variable-at-start"),
    pytest.param(draft("Ready for {{1}}"), None, TemplateStatus.REJECTED, "INVALID_FORMAT", id="variable-at-end"),
    pytest.param(draft("  Ready {{name}} \n"), None, TemplateStatus.REJECTED, "INVALID_FORMAT", id="end-space"),
    pytest.param(
        draft(AUTHENTICATION_BODY, category="AUTHENTICATION"), None, TemplateStatus.APPROVED, None, id="auth-exempt"
    ),
    pytest.param(
        draft("Plain.", name="promo_reject_me"),
        re.compile("reject"),
        TemplateStatus.REJECTED,
        "TAG_CONTENT_MISMATCH",
        id="reject-pattern",
    ),
    pytest.param(draft("Plain."), re.compile("reject"), TemplateStatus.APPROVED, None, id="reject-pattern-no-match"),
]


@pytest.mark.parametrize(("template_draft", "pattern", "status", "reason"), REVIEWS)
def test_review(
    template_draft: TemplateDraft, pattern: re.Pattern[str] | None, status: TemplateStatus, reason: str | None
) -> None:
    assert review(template_draft, pattern) == (status, reason)


# --- stored templates and the send check ------------------------------------------


def stored(
    *components: dict[str, Any],
    status: TemplateStatus = TemplateStatus.APPROVED,
    name: str = "order_update",
    language: str = "en_US",
) -> Template:
    return Template(
        id="1",
        name=name,
        language=language,
        category="UTILITY",
        components=copy.deepcopy(list(components)),
        status=status,
        rejected_reason=None,
        namespace="c8ae5f90_307a_ca4c_b8f6_d1e2f1d0b1e2",
    )


HEADER_TEXT = {"type": "HEADER", "format": "TEXT", "text": "Order {{1}}"}
FULL = stored(
    HEADER_TEXT,
    {"type": "BODY", "text": "Hi {{1}}, order {{2}} ships today."},
    {"type": "FOOTER", "text": "Thanks"},
    buttons(QUICK_REPLY, URL_VARIABLE, COPY_CODE, PHONE),
)
NAMED = stored(
    {"type": "HEADER", "format": "TEXT", "text": "Hi {{first_name}}"},
    {"type": "BODY", "text": "Hi {{first_name}}, order {{order_id}} ships."},
)
IMAGE = stored({"type": "HEADER", "format": "IMAGE"}, {"type": "BODY", "text": "See the picture, {{1}}."})
ONLY_BODY = stored({"type": "BODY", "text": "Note: {{1}}."})
FLOW = stored({"type": "BODY", "text": "Book now."}, buttons({"type": "FLOW", "text": "Book", "flow_id": "1"}))
OTP = stored({"type": "BODY", "text": AUTHENTICATION_BODY}, buttons({"type": "OTP", "otp_type": "COPY_CODE"}))


def text(value: str, name: str | None = None) -> dict[str, Any]:
    parameter: dict[str, Any] = {"type": "text", "text": value}
    if name is not None:
        parameter["parameter_name"] = name
    return parameter


def button(index: Any, sub_type: str, *parameters: dict[str, Any]) -> dict[str, Any]:
    return {"type": "button", "sub_type": sub_type, "index": index, "parameters": list(parameters)}


def header(*parameters: dict[str, Any]) -> dict[str, Any]:
    return {"type": "header", "parameters": list(parameters)}


def body(*parameters: dict[str, Any]) -> dict[str, Any]:
    return {"type": "body", "parameters": list(parameters)}


def send(*components: dict[str, Any], name: str = "order_update") -> dict[str, Any]:
    return {"name": name, "language": {"code": "en_US"}, "components": list(components)}


URL_PARAM = button("1", "url", text("A-17"))
COUPON = button("2", "copy_code", {"type": "coupon_code", "coupon_code": "SAVE10"})
FULL_SEND = send(header(text("A-17")), body(text("Ann"), text("A-17")), URL_PARAM, COUPON)


def full_send(*replace: dict[str, Any], drop: tuple[str, ...] = ()) -> dict[str, Any]:
    """FULL_SEND with components of the same type (and index, for buttons) replaced or dropped."""
    components = copy.deepcopy(FULL_SEND["components"])

    def key(component: dict[str, Any]) -> str:
        return f"{component['type'].lower()}{component.get('index', '')}"

    by_key = {key(c): c for c in components}
    for component in replace:
        by_key[key(component)] = component
    return send(*(c for k, c in by_key.items() if k not in drop))


VALID_SENDS = [
    pytest.param(FULL_SEND, FULL, id="full"),
    pytest.param(full_send(button(0, "quick_reply", {"type": "payload", "payload": "STOP"})), FULL, id="quick-reply"),
    pytest.param(full_send(button(1, "url", text("A-17"))), FULL, id="index-int"),
    pytest.param(
        send(*({**c, "type": c["type"].upper()} for c in FULL_SEND["components"])), FULL, id="upper-case-types"
    ),
    pytest.param(full_send(button("1", "URL", text("A-17"))), FULL, id="sub-type-any-case"),
    pytest.param(
        send(header(text("Ann", "first_name")), body(text("A-17", "order_id"), text("Ann", "first_name"))),
        NAMED,
        id="named-any-order",
    ),
    pytest.param(
        send(header({"type": "image", "image": {"link": "https://x.org/a.jpg"}}), body(text("Ann"))),
        IMAGE,
        id="image-header",
    ),
    pytest.param(send(body(text("x" * 32768))), ONLY_BODY, id="only-body-long-param"),
    pytest.param(
        full_send(body({"type": "currency", "currency": {"fallback_value": "$1"}}, {"type": "date_time"})),
        FULL,
        id="currency-date-time",
    ),
    pytest.param(full_send(header(text("x" * 60))), FULL, id="header-param-60"),
    pytest.param(full_send(body(text("x" * 1024), text("y"))), FULL, id="body-param-1024"),
    pytest.param(send(), FLOW, id="flow-button-optional"),
    pytest.param(send(button("0", "flow", {"type": "action", "action": {"flow_token": "t"}})), FLOW, id="flow-action"),
    pytest.param(send(body(text("123456")), button("0", "url", text("123456"))), OTP, id="otp-code"),
]


@pytest.mark.parametrize(("content", "template"), VALID_SENDS)
def test_valid_send(content: dict[str, Any], template: Template) -> None:
    check_template_send(content, template, "en_US")


PAUSED = stored(*FULL.components, status=TemplateStatus.PAUSED)


def counts(part: str, got: int, expected: int) -> str:
    return f"{part}: number of localizable_params ({got}) does not match the expected number of params ({expected})"


INVALID_SENDS = [
    # existence and status
    pytest.param(
        FULL_SEND, None, "en_US", 132001, "template name (order_update) does not exist in en_US", id="not-found"
    ),
    pytest.param(FULL_SEND, FULL, "de", 132001, "does not exist in de", id="language-mismatch"),
    pytest.param({**FULL_SEND, "name": "other"}, FULL, "en_US", 132001, "template name (other)", id="name-mismatch"),
    pytest.param(FULL_SEND, stored(status=TemplateStatus.PENDING), "en_US", 132001, "PENDING", id="pending"),
    pytest.param(FULL_SEND, stored(status=TemplateStatus.REJECTED), "en_US", 132001, "REJECTED", id="rejected"),
    pytest.param(FULL_SEND, PAUSED, "en_US", 132015, "order_update", id="paused"),
    pytest.param(
        FULL_SEND,
        stored(*FULL.components, status=TemplateStatus.DISABLED),
        "en_US",
        132016,
        "order_update",
        id="disabled",
    ),
    # parameter counts
    pytest.param(full_send(body(text("Ann"))), FULL, "en_US", 132000, counts("body", 1, 2), id="body-too-few"),
    pytest.param(
        full_send(body(text("a"), text("b"), text("c"))),
        FULL,
        "en_US",
        132000,
        counts("body", 3, 2),
        id="body-too-many",
    ),
    pytest.param(full_send(drop=("body",)), FULL, "en_US", 132000, counts("body", 0, 2), id="body-missing"),
    pytest.param(full_send(drop=("header",)), FULL, "en_US", 132000, counts("header", 0, 1), id="header-missing"),
    pytest.param(
        full_send(header(text("a"), text("b"))), FULL, "en_US", 132000, counts("header", 2, 1), id="header-too-many"
    ),
    pytest.param(
        full_send(header(text("a"))),
        stored({"type": "HEADER", "format": "TEXT", "text": "Your order"}, *FULL.components[1:]),
        "en_US",
        132000,
        counts("header", 1, 0),
        id="header-without-variable",
    ),
    pytest.param(
        send(body(text("Ann"))),
        IMAGE,
        "en_US",
        132012,
        "header: Format mismatch, expected IMAGE, received UNKNOWN",
        id="image-missing",
    ),
    pytest.param(
        send(header({"type": "image", "image": {"id": "1"}}, {"type": "image", "image": {"id": "2"}}), body(text("A"))),
        IMAGE,
        "en_US",
        132000,
        counts("header", 2, 1),
        id="image-twice",
    ),
    # formats
    pytest.param(
        send(header(text("a.jpg")), body(text("Ann"))),
        IMAGE,
        "en_US",
        132012,
        "header: Format mismatch, expected IMAGE, received TEXT",
        id="header-format-mismatch",
    ),
    pytest.param(
        full_send(body(text("Ann"), {"type": "image", "image": {"id": "1"}})),
        FULL,
        "en_US",
        132012,
        "body: Format mismatch, expected TEXT, received IMAGE",
        id="body-parameter-type",
    ),
    # named parameters
    pytest.param(
        send(header(text("Ann", "first_name")), body(text("A-17"), text("Ann", "first_name"))),
        NAMED,
        "en_US",
        131008,
        "parameters[0].parameter_name",
        id="named-missing-name",
    ),
    pytest.param(
        send(header(text("Ann", "first_name")), body(text("A-17", "order"), text("Ann", "first_name"))),
        NAMED,
        "en_US",
        132000,
        "do not match the template's variables (first_name, order_id)",
        id="named-wrong-name",
    ),
    pytest.param(
        full_send(body(text("Ann", "first_name"), text("A-17"))),
        FULL,
        "en_US",
        131009,
        "parameter_name",
        id="positional-with-name",
    ),
    # buttons
    pytest.param(
        full_send(button("9", "quick_reply")), FULL, "en_US", 131009, "components[4].index", id="button-index-range"
    ),
    pytest.param(
        full_send(button("one", "quick_reply")), FULL, "en_US", 131009, ".index", id="button-index-not-number"
    ),
    pytest.param(
        send(*FULL_SEND["components"], URL_PARAM), FULL, "en_US", 131009, "given twice", id="button-index-twice"
    ),
    pytest.param(
        full_send(button("1", "quick_reply", text("A-17"))),
        FULL,
        "en_US",
        131009,
        "components[2].sub_type",
        id="button-sub-type",
    ),
    pytest.param(
        full_send(button("3", "url", text("x"))), FULL, "en_US", 131009, "PHONE_NUMBER", id="phone-button-parameters"
    ),
    pytest.param(
        full_send(drop=("button1",)),
        FULL,
        "en_US",
        131008,
        "buttons: Button at index 1 of type Url requires a parameter",
        id="url-parameter-missing",
    ),
    pytest.param(
        full_send(button("1", "url", text("a"), text("b"))),
        FULL,
        "en_US",
        132000,
        counts("buttons", 2, 1),
        id="url-two-parameters",
    ),
    pytest.param(
        full_send(button("1", "url", {"type": "payload", "payload": "x"})),
        FULL,
        "en_US",
        132012,
        "buttons: Format mismatch, expected TEXT, received PAYLOAD",
        id="url-parameter-type",
    ),
    pytest.param(
        full_send(drop=("button2",)), FULL, "en_US", 131008, "Button at index 2 of type CopyCode", id="coupon-missing"
    ),
    pytest.param(
        full_send(button("2", "copy_code")),
        FULL,
        "en_US",
        131008,
        "Button at index 2 of type CopyCode",
        id="coupon-empty",
    ),
    pytest.param(
        full_send(button("0", "quick_reply", {"type": "payload", "payload": "a"}, {"type": "payload", "payload": "b"})),
        FULL,
        "en_US",
        132000,
        counts("buttons", 2, 1),
        id="quick-reply-two-payloads",
    ),
    pytest.param(
        full_send(button("2", "copy_code", {"type": "coupon_code", "coupon_code": "X" * 16})),
        FULL,
        "en_US",
        131009,
        "coupon_code",
        id="coupon-too-long",
    ),
    pytest.param(
        send(body(text("123456"))), OTP, "en_US", 131008, "Button at index 0 of type Url", id="otp-code-missing"
    ),
    pytest.param(
        send(body(text("1")), button("0", "url", text("1"))),
        stored({"type": "BODY", "text": "Go {{1}} now."}, buttons(URL_STATIC)),
        "en_US",
        132000,
        counts("buttons", 1, 0),
        id="static-url-parameter",
    ),
    # lengths
    pytest.param(
        full_send(body(text("x" * 1025), text("y"))), FULL, "en_US", 131009, "parameters[0].text", id="body-too-long"
    ),
    pytest.param(
        send(body(text("x" * 32769))), ONLY_BODY, "en_US", 131009, "parameters[0].text", id="only-body-too-long"
    ),
    pytest.param(full_send(header(text("x" * 61))), FULL, "en_US", 131009, "parameters[0].text", id="header-too-long"),
    # component shape
    pytest.param(
        send(*FULL_SEND["components"], {"type": "footer"}),
        FULL,
        "en_US",
        131009,
        "components[4].type",
        id="footer-component",
    ),
]


@pytest.mark.parametrize(("content", "template", "language", "code", "names"), INVALID_SENDS)
def test_invalid_send(content: dict[str, Any], template: Template | None, language: str, code: int, names: str) -> None:
    with pytest.raises(RequestError) as caught:
        check_template_send(content, template, language)
    assert caught.value.code == code, caught.value
    assert names in caught.value.details, caught.value.details


def test_count_error_wording() -> None:
    """WhatsApp's own words, as seen in real 132000 responses."""
    with pytest.raises(RequestError) as caught:
        check_template_send(full_send(body(text("Ann"))), FULL, "en_US")
    assert (
        caught.value.details
        == "body: number of localizable_params (1) does not match the expected number of params (2)"
    )
    assert caught.value.title == "Number of parameters does not match the expected number of params"


def test_header_component_the_template_lacks_is_ignored() -> None:
    check_template_send(send(header(text("a")), body(text("x"))), ONLY_BODY, "en_US")


# --- variables and rendering ------------------------------------------------------


def test_variables() -> None:
    template = stored(
        {"type": "HEADER", "format": "TEXT", "text": "{{1}}"},
        {"type": "BODY", "text": "{{2}} then {{1}}, {{2}} again"},
        buttons(URL_VARIABLE, QUICK_REPLY),
    )
    assert variables(template) == {"header": ["1"], "body": ["1", "2"], "buttons[0]": ["1"], "buttons[1]": []}
    assert variables(NAMED) == {"header": ["first_name"], "body": ["first_name", "order_id"]}


RENDERS = [
    pytest.param(FULL, FULL_SEND, "Hi Ann, order A-17 ships today.", id="positional"),
    pytest.param(
        NAMED, send(body(text("A-17", "order_id"), text("Ann", "first_name"))), "Hi Ann, order A-17 ships.", id="named"
    ),
    pytest.param(
        FULL,
        send(body({"type": "currency", "currency": {"fallback_value": "$10"}}, text("A-17"))),
        "Hi $10, order A-17 ships today.",
        id="currency",
    ),
    pytest.param(FULL, send(body(text("Ann"))), "Hi Ann, order {{2}} ships today.", id="unfilled-stays"),
]


@pytest.mark.parametrize(("template", "content", "expected"), RENDERS)
def test_render_body(template: Template, content: dict[str, Any], expected: str) -> None:
    assert render_body(template, content) == expected


# --- the asynchronous 132018 rule -------------------------------------------------

DELIVERY = [
    pytest.param(send(body(text("Ann"), text("A-17"))), None, id="clean"),
    pytest.param(send(body(text("Ann\nB"))), (132018, PARAM_TEXT_ERROR), id="newline"),
    pytest.param(send(body(text("a\tb"))), (132018, PARAM_TEXT_ERROR), id="tab"),
    pytest.param(send(body(text("a     b"))), (132018, PARAM_TEXT_ERROR), id="five-spaces"),
    pytest.param(send(body(text("a    b"))), None, id="four-spaces"),
    pytest.param(send(header(text("a\nb"))), (132018, PARAM_TEXT_ERROR), id="header"),
    pytest.param(send(button("1", "url", text("a\tb"))), (132018, PARAM_TEXT_ERROR), id="button"),
    pytest.param({"name": "x"}, None, id="no-components"),
]


@pytest.mark.parametrize(("content", "expected"), DELIVERY)
def test_template_delivery_error(content: dict[str, Any], expected: tuple[int, str] | None) -> None:
    assert template_delivery_error(content) == expected


_BAD = st.sampled_from(["\n", "\t", "     "])
_CLEAN_TEXT = st.text(alphabet=st.characters(exclude_characters="\n\t"), max_size=40).filter(
    lambda value: "     " not in value
)


@settings(max_examples=60, deadline=None)
@given(before=st.text(max_size=20), bad=_BAD, after=st.text(max_size=20), where=st.sampled_from(["header", "body"]))
def test_bad_parameter_text_fails_later(before: str, bad: str, after: str, where: str) -> None:
    content = send({"type": where, "parameters": [text("ok"), text(before + bad + after)]})
    assert template_delivery_error(content) == (132018, PARAM_TEXT_ERROR)


@settings(max_examples=60, deadline=None)
@given(values=st.lists(_CLEAN_TEXT, max_size=4))
def test_clean_parameter_text_passes(values: list[str]) -> None:
    assert template_delivery_error(send(body(*(text(value) for value in values)))) is None


# --- arbitrary JSON only ever gives RequestError ------------------------------------

_WORDS = st.sampled_from(
    ["BODY", "HEADER", "FOOTER", "BUTTONS", "TEXT", "IMAGE", "URL", "QUICK_REPLY", "OTP", "COPY_CODE", "FLOW"]
    + ["UTILITY", "AUTHENTICATION", "en_US", "order_update", "Hi {{1}}", "{{name}} x", "https://x.org/{{1}}", "1"]
)
_KEYS = st.sampled_from(
    ["name", "language", "category", "components", "type", "format", "text", "example", "buttons", "url"]
    + ["body_text", "header_text", "body_text_named_params", "param_name", "parameter_format", "phone_number"]
    + ["otp_type", "code_expiration_minutes", "parameters", "index", "sub_type", "parameter_name", "coupon_code"]
)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8) | _WORDS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(_KEYS | st.text(max_size=4), children, max_size=5)
    ),
    max_leaves=25,
)
_OBJECTS = st.dictionaries(_KEYS, _JSON, max_size=6)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=_OBJECTS)
def test_create_raises_only_request_error(document: dict[str, Any]) -> None:
    with contextlib.suppress(RequestError):
        parse_template_create(document)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content=_OBJECTS, template=st.sampled_from([FULL, NAMED, IMAGE, OTP, FLOW]))
def test_send_check_raises_only_request_error(content: dict[str, Any], template: Template) -> None:
    with contextlib.suppress(RequestError):
        check_template_send({**content, "name": template.name}, template, "en_US")
    template_delivery_error(content)
    render_body(template, {"components": []})

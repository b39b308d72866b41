"""Sending a template: the request checked against the stored template.

:func:`check_template_send` compares the `template` object of a send request
(its *shape* is checked by :mod:`openwaba.domain.messages`) with the stored
:class:`~openwaba.domain.templates.Template`; :func:`template_delivery_error`
gives the error WhatsApp only reports later, in a `failed` status webhook;
:func:`render_body` shows the text the user receives.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from openwaba.domain.errors import RequestError
from openwaba.domain.templates import (
    BAD_PARAM_TEXT,
    BODY_ONLY_PARAM_LIMIT,
    BODY_PARAM_LIMIT,
    COUPON_CODE_LIMIT,
    HEADER_PARAM_LIMIT,
    PARAM_TEXT_ERROR,
    TOKEN,
    Template,
    TemplateStatus,
    body_text,
    button_variables,
    check_limit,
    find_component,
    is_named,
    variables,
)


def _available(template: Template | None, name: str, language: str) -> Template:
    if template is None or template.name != name or template.language != language:
        raise RequestError(132001, f"template name ({name}) does not exist in {language}")
    if template.status is TemplateStatus.PAUSED:
        raise RequestError(132015, f"template name ({name}) in {language} is paused")
    if template.status is TemplateStatus.DISABLED:
        raise RequestError(132016, f"template name ({name}) in {language} is disabled")
    if template.status is not TemplateStatus.APPROVED:
        raise RequestError(
            132001, f"template name ({name}) does not exist in {language}: its status is {template.status.value}"
        )
    return template


@dataclass(frozen=True, slots=True)
class _Sent:
    """One component of the send request, with the path used in error details."""

    path: str
    component: dict[str, Any]

    @property
    def parameters(self) -> list[dict[str, Any]]:
        raw = self.component.get("parameters")
        return [p for p in raw if isinstance(p, dict)] if isinstance(raw, list) else []


def _sent_components(content: dict[str, Any]) -> tuple[_Sent | None, _Sent | None, list[_Sent]]:
    """(header, body, buttons) of a send request; component types in any case."""
    header = body = None
    buttons: list[_Sent] = []
    raw = content.get("components")
    for index, component in enumerate(raw if isinstance(raw, list) else []):
        sent = _Sent(f"template.components[{index}]", component)
        kind = str(component.get("type", "")).lower() if isinstance(component, dict) else ""
        if kind == "button":
            buttons.append(sent)
        elif kind == "header" and header is None:
            header = sent
        elif kind == "body" and body is None:
            body = sent
        else:
            raise RequestError(131009, f"Parameter '{sent.path}.type' must be header, body or button, once each")
    return header, body, buttons


def _count(part: str, expected: int, got: int) -> None:
    if expected != got:
        raise RequestError(
            132000,
            f"{part}: number of localizable_params ({got}) does not match the expected number of params ({expected})",
        )


def _check_types(sent: _Sent, allowed: tuple[str, ...], part: str, expected: str) -> None:
    for parameter in sent.parameters:
        received = str(parameter.get("type", "unknown"))
        if received not in allowed:
            raise RequestError(132012, f"{part}: Format mismatch, expected {expected}, received {received.upper()}")


def _check_names(sent: _Sent, names: list[str], named: bool) -> None:
    given = [parameter.get("parameter_name") for parameter in sent.parameters]
    if not named:
        if any(name is not None for name in given):
            raise RequestError(
                131009, f"Parameter '{sent.path}': the template has numbered variables; remove parameter_name"
            )
        return
    missing = next((index for index, name in enumerate(given) if not isinstance(name, str)), None)
    if missing is not None:
        raise RequestError(131008, f"Required parameter '{sent.path}.parameters[{missing}].parameter_name' is missing")
    if sorted(map(str, given)) != sorted(names):
        raise RequestError(
            132000,
            f"{sent.path}: the parameter names ({', '.join(map(str, given))}) do not match "
            f"the template's variables ({', '.join(names)})",
        )


def _check_lengths(sent: _Sent, limit: int) -> None:
    for index, parameter in enumerate(sent.parameters):
        text = parameter.get("text")
        if isinstance(text, str):
            check_limit(text, limit, f"{sent.path}.parameters[{index}].text")


def _check_header(template: Template, header: _Sent | None, named: bool) -> None:
    definition = find_component(template.components, "HEADER")
    if definition is None:
        return  # WhatsApp ignores a header component the template does not have
    fmt = str(definition.get("format", "TEXT")).upper()
    sent = header or _Sent("template.components", {})
    if fmt != "TEXT":
        # A media header is filled at send time; without it WhatsApp sees an UNKNOWN format.
        if not sent.parameters:
            raise RequestError(132012, f"header: Format mismatch, expected {fmt}, received UNKNOWN")
        _check_types(sent, (fmt.lower(),), "header", fmt)
        _count("header", 1, len(sent.parameters))
        return
    names = variables(template).get("header", [])
    _check_types(sent, ("text",), "header", fmt)
    _count("header", len(names), len(sent.parameters))
    _check_names(sent, names, named)
    _check_lengths(sent, HEADER_PARAM_LIMIT)


def _check_body(template: Template, body: _Sent | None, named: bool) -> None:
    names = variables(template).get("body", [])
    sent = body or _Sent("template.components", {})
    _check_types(sent, ("text", "currency", "date_time"), "body", "TEXT")
    _count("body", len(names), len(sent.parameters))
    _check_names(sent, names, named)
    only_body = all(str(c.get("type", "")).upper() == "BODY" for c in template.components)
    _check_lengths(sent, BODY_ONLY_PARAM_LIMIT if only_body else BODY_PARAM_LIMIT)


# Template button type -> (send sub_type, parameter type, whether a parameter is required).
# A URL button needs one only when its url has a variable; PHONE_NUMBER buttons take none.
_BUTTON_SEND: dict[str, tuple[str, str, bool]] = {
    "QUICK_REPLY": ("quick_reply", "payload", False),
    "URL": ("url", "text", False),
    "OTP": ("url", "text", True),  # the one-time code travels as a URL-button parameter
    "COPY_CODE": ("copy_code", "coupon_code", True),
    "FLOW": ("flow", "action", False),
    "CATALOG": ("catalog", "action", False),
    "MPM": ("mpm", "action", True),
}
# How WhatsApp names button types in its errors ("Button at index 0 of type Url ...").
_BUTTON_ERROR_NAMES = {"URL": "Url", "OTP": "Url", "COPY_CODE": "CopyCode", "MPM": "Mpm"}


def _button_rule(button: dict[str, Any]) -> tuple[str, str, bool] | None:
    kind = str(button.get("type", "")).upper()
    rule = _BUTTON_SEND.get(kind)
    if rule and kind == "URL" and button_variables(button):
        return rule[0], rule[1], True
    return rule


def _requires_parameter(index: int, button: dict[str, Any]) -> RequestError:
    kind = str(button.get("type", "")).upper()
    name = _BUTTON_ERROR_NAMES.get(kind, kind.title())
    return RequestError(131008, f"buttons: Button at index {index} of type {name} requires a parameter")


def _button_index(sent: _Sent, count: int) -> int:
    raw = sent.component.get("index")
    index = raw if isinstance(raw, int) and not isinstance(raw, bool) else None
    if isinstance(raw, str) and raw.isascii() and raw.isdigit():
        index = int(raw)
    if index is None or not 0 <= index < count:
        raise RequestError(
            131009, f"Parameter '{sent.path}.index' must point at one of the template's {count} button(s); got {raw!r}"
        )
    return index


def _check_button(sent: _Sent, index: int, button: dict[str, Any]) -> None:
    kind = str(button.get("type", "")).upper()
    rule = _button_rule(button)
    if rule is None:
        raise RequestError(131009, f"Parameter '{sent.path}': button {index} is a {kind} button; it takes no component")
    sub_type, parameter_type, required = rule
    if str(sent.component.get("sub_type", "")).lower() != sub_type:
        raise RequestError(131009, f"Parameter '{sent.path}.sub_type' must be '{sub_type}' for {kind} button {index}")
    if required and not sent.parameters:
        raise _requires_parameter(index, button)
    most = 0 if kind == "URL" and not required else 1  # a static URL has nothing to fill in
    if len(sent.parameters) > most:
        _count("buttons", most, len(sent.parameters))
    _check_types(sent, (parameter_type,), "buttons", parameter_type.upper())
    for position, parameter in enumerate(sent.parameters):
        code = parameter.get("coupon_code")
        if isinstance(code, str):
            check_limit(code, COUPON_CODE_LIMIT, f"{sent.path}.parameters[{position}].coupon_code")


def _check_buttons(template: Template, sent_buttons: list[_Sent]) -> None:
    definition = find_component(template.components, "BUTTONS")
    buttons: list[dict[str, Any]] = list(definition.get("buttons") or []) if definition else []
    seen: set[int] = set()
    for sent in sent_buttons:
        index = _button_index(sent, len(buttons))
        if index in seen:
            raise RequestError(131009, f"Parameter '{sent.path}.index': button {index} is given twice")
        seen.add(index)
        _check_button(sent, index, buttons[index])
    for index, button in enumerate(buttons):
        rule = _button_rule(button)
        if index not in seen and rule is not None and rule[2]:
            raise _requires_parameter(index, button)


def check_template_send(content: dict[str, Any], template: Template | None, language: str) -> None:
    """Check a send request's `template` object against the stored template; raise :class:`RequestError`."""
    stored = _available(template, str(content.get("name", "")), language)
    header, body, buttons = _sent_components(content)
    named = is_named(stored.components)
    _check_header(stored, header, named)
    _check_body(stored, body, named)
    _check_buttons(stored, buttons)


def _text_parameters(content: dict[str, Any]) -> list[str]:
    texts: list[str] = []
    components = content.get("components")
    for component in components if isinstance(components, list) else []:
        parameters = component.get("parameters") if isinstance(component, dict) else None
        for parameter in parameters if isinstance(parameters, list) else []:
            if isinstance(parameter, dict) and isinstance(parameter.get("text"), str):
                texts.append(parameter["text"])
    return texts


def template_delivery_error(content: dict[str, Any]) -> tuple[int, str] | None:
    """The error WhatsApp reports later, in a `failed` status, for an accepted template send."""
    if any(BAD_PARAM_TEXT.search(text) for text in _text_parameters(content)):
        return 132018, PARAM_TEXT_ERROR
    return None


def _parameter_value(parameter: dict[str, Any]) -> str:
    kind = parameter.get("type")
    value = parameter.get(kind) if isinstance(kind, str) else None
    if isinstance(value, dict):  # currency and date_time carry a fallback_value
        value = value.get("fallback_value")
    return value if isinstance(value, str) else ""


def render_body(template: Template, content: dict[str, Any]) -> str:
    """The body text with the request's parameters in place; unfilled variables stay as written."""
    _, body, _ = _sent_components(content)
    parameters = body.parameters if body else []
    values: dict[str, str] = {}
    for position, parameter in enumerate(parameters, start=1):
        name = parameter.get("parameter_name")
        values[name if isinstance(name, str) else str(position)] = _parameter_value(parameter)
    return TOKEN.sub(lambda match: values.get(match[1], match[0]), body_text(template.components))

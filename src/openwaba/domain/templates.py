"""Message templates: the create rules and the sandbox's review.

Everything here is pure. Three moments in a template's life are covered (the
third in :mod:`openwaba.domain.template_send`):

* **create** (`POST /v1/configs/templates`): :func:`parse_template_create` applies
  Meta's structural rules and returns a normalised :class:`TemplateDraft`;
* **review**: :func:`review` is the sandbox's stand-in for Meta's reviewers;
* **send**: :func:`check_template_send` compares the `template` object of a send
  request (its *shape* is checked by :mod:`openwaba.domain.messages`) with the
  stored :class:`Template`; :func:`template_delivery_error` gives the error
  WhatsApp only reports later, in a `failed` status webhook.

Error codes, as in :mod:`openwaba.domain.messages`: a missing field is 131008,
a value outside its rules 131009, an unknown key or a wrong JSON type 100.
Choices where Meta's behaviour is not documented:

* Examples are required wherever Meta requires them: body and TEXT header
  variables, and a URL button whose url has a variable. Media headers need no
  `header_handle`, because the sandbox has no resumable-upload API to get one.
* A language is checked for its form only (`en`, `en_US`, `fil`, `prs_AF`):
  Meta keeps adding regional codes, and refusing a new one would be worse than
  storing a code Meta does not know yet.
* AUTHENTICATION templates may leave out the body text (and the footer text
  when `code_expiration_minutes` is given); Meta's fixed wording is filled in.
* Send-check details use the words WhatsApp was seen answering with: "body:
  number of localizable_params (1) does not match the expected number of
  params (2)" (132000), "header: Format mismatch, expected IMAGE, received
  UNKNOWN" (132012, a media header left out) and "buttons: Button at index 0
  of type Url requires a parameter" (131008). A header component sent for a
  template without a header is ignored, as WhatsApp was seen to do.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from openwaba.domain.errors import RequestError

NAME_LIMIT = 512
BODY_TEXT_LIMIT = 1024
HEADER_TEXT_LIMIT = 60
FOOTER_TEXT_LIMIT = 60
BUTTON_TEXT_LIMIT = 25
BUTTONS_LIMIT = 10
URL_LIMIT = 2000
COUPON_CODE_LIMIT = 15
BODY_PARAM_LIMIT = 1024
BODY_ONLY_PARAM_LIMIT = 32768  # when the template has nothing but a body
HEADER_PARAM_LIMIT = 60
CODE_EXPIRATION_MAX = 90

CATEGORIES = ("AUTHENTICATION", "MARKETING", "UTILITY")
HEADER_FORMATS = ("TEXT", "IMAGE", "VIDEO", "DOCUMENT", "LOCATION")
AUTHENTICATION_BODY = "{{1}} is your verification code."
PARAM_TEXT_ERROR = "Param text cannot have new-line/tab characters or more than 4 consecutive spaces"

_NAME = re.compile(r"[a-z0-9_]+")
_LANGUAGE = re.compile(r"[a-z]{2,3}(?:_[A-Z]{2})?")
TOKEN = re.compile(r"\{\{([^{}]*)\}\}")
_POSITIONAL = re.compile(r"[1-9][0-9]*")
_NAMED = re.compile(r"[a-z_]{1,20}")  # what a send request may put in `parameter_name`
_PHONE = re.compile(r"\+?[0-9][0-9 -]{4,19}")
BAD_PARAM_TEXT = re.compile(r"[\n\t]| {5,}")


class TemplateStatus(enum.Enum):
    PENDING = "PENDING"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    PAUSED = "PAUSED"
    DISABLED = "DISABLED"


@dataclass(frozen=True, slots=True)
class TemplateDraft:
    """A create request that passed every rule; components are normalised (upper-case types)."""

    name: str
    language: str
    category: str
    components: list[dict[str, Any]]
    allow_category_change: bool


@dataclass(frozen=True, slots=True)
class Template:
    """A stored template, as the send check sees it."""

    id: str
    name: str
    language: str
    category: str
    components: list[dict[str, Any]]
    status: TemplateStatus
    rejected_reason: str | None
    namespace: str


# --- reading JSON with paths ------------------------------------------------------


def _at(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise RequestError(100, f"Param '{path}' must be a JSON object")
    return value


def _array(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise RequestError(100, f"Param '{path}' must be an array")
    return value


def _only_keys(document: dict[str, Any], allowed: frozenset[str], path: str) -> None:
    for key in document:
        if key not in allowed:
            raise RequestError(100, f"Unexpected key '{_at(path, key)}'; remove it")


def _string(document: dict[str, Any], key: str, path: str, *, required: bool = True) -> str | None:
    """The string at `key`; None when absent and optional. An empty string counts as missing."""
    where = _at(path, key)
    value = document.get(key)
    if value is None:
        if required:
            raise RequestError(131008, f"Required parameter '{where}' is missing")
        return None
    if not isinstance(value, str):
        raise RequestError(100, f"Param '{where}' must be a string")
    if not value:
        raise RequestError(131008, f"Required parameter '{where}' is empty")
    return value


def _required(document: dict[str, Any], key: str, path: str) -> str:
    value = _string(document, key, path)
    assert value is not None  # _string raises for a missing required value
    return value


def _bool(document: dict[str, Any], key: str, path: str) -> bool:
    value = document.get(key, False)
    if not isinstance(value, bool):
        raise RequestError(100, f"Param '{_at(path, key)}' must be a boolean")
    return value


def check_limit(value: str, limit: int, where: str) -> str:
    if len(value) > limit:
        raise RequestError(131009, f"Parameter '{where}' must have length <={limit}")
    return value


def _choice(value: str, choices: tuple[str, ...], where: str) -> str:
    upper = value.upper()
    if upper not in choices:
        raise RequestError(131009, f"Parameter '{where}' must be one of {', '.join(choices)}; got '{value}'")
    return upper


# --- variables --------------------------------------------------------------------


def _ordered(tokens: list[str]) -> list[str]:
    """Distinct variable names: 1, 2, ... for positional ones, first appearance for named ones."""
    distinct = list(dict.fromkeys(tokens))
    if distinct and all(token.isdigit() for token in distinct):
        return sorted(distinct, key=int)
    return distinct


def _scan(text: str, where: str) -> tuple[list[str], bool]:
    """The variables of a text, validated: (names in order, named?)."""
    tokens = TOKEN.findall(text)
    for token in tokens:
        if not (_POSITIONAL.fullmatch(token) or _NAMED.fullmatch(token)):
            raise RequestError(
                131009, f"Parameter '{where}' has a malformed variable '{{{{{token}}}}}': use {{{{1}}}} or {{{{name}}}}"
            )
    styles = {token.isdigit() for token in tokens}
    if len(styles) > 1:
        raise RequestError(131009, f"Parameter '{where}' mixes numbered and named variables")
    names = _ordered(tokens)
    named = False in styles
    if names and not named and names != [str(n) for n in range(1, len(names) + 1)]:
        raise RequestError(131009, f"Parameter '{where}' must number its variables 1, 2, 3... without gaps")
    return names, named


def button_variables(button: dict[str, Any]) -> list[str]:
    url = button.get("url")
    return _ordered(TOKEN.findall(url)) if isinstance(url, str) else []


def _variables_of(components: list[dict[str, Any]]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for component in components:
        kind = str(component.get("type", "")).upper()
        if kind in ("HEADER", "BODY"):
            text = component.get("text")
            found[kind.lower()] = _ordered(TOKEN.findall(text)) if isinstance(text, str) else []
        elif kind == "BUTTONS":
            for index, button in enumerate(component.get("buttons") or []):
                found[f"buttons[{index}]"] = button_variables(button)
    return found


def variables(template: Template) -> dict[str, list[str]]:
    """Variable names per component: `header`, `body`, `buttons[i]` (a URL button's suffix is `1`)."""
    return _variables_of(template.components)


def is_named(components: list[dict[str, Any]]) -> bool:
    found = _variables_of(components)
    return any(not name.isdigit() for key in ("header", "body") for name in found.get(key, []))


# --- examples ---------------------------------------------------------------------


def _strings(value: Any, where: str) -> list[str]:
    items = _array(value, where)
    if not all(isinstance(item, str) for item in items):
        raise RequestError(100, f"Param '{where}' must be an array of strings")
    return items


def _named_examples(example: dict[str, Any], key: str, names: list[str], path: str) -> None:
    where = _at(path, key)
    if key not in example:
        raise RequestError(131008, f"Required parameter '{where}' is missing")
    given: list[str] = []
    for index, item in enumerate(_array(example[key], where)):
        entry = _object(item, f"{where}[{index}]")
        _only_keys(entry, frozenset({"param_name", "example"}), f"{where}[{index}]")
        given.append(_required(entry, "param_name", f"{where}[{index}]"))
        _required(entry, "example", f"{where}[{index}]")
    if sorted(given) != sorted(names):
        raise RequestError(131009, f"Parameter '{where}' must give one example for each of: {', '.join(names)}")


def _positional_examples(example: dict[str, Any], key: str, count: int, path: str) -> None:
    where = _at(path, key)
    if key not in example:
        raise RequestError(131008, f"Required parameter '{where}' is missing")
    # body_text is a list of sample sets ([["Ann", "A-17"]]); header_text is one sample set.
    sets = _array(example[key], where) if key == "body_text" else [example[key]]
    if not sets:
        raise RequestError(131008, f"Required parameter '{where}' is empty")
    for index, values in enumerate(sets):
        at = f"{where}[{index}]" if key == "body_text" else where
        if len(_strings(values, at)) != count:
            raise RequestError(131009, f"Parameter '{at}' must have {count} example value(s), one per variable")


_EXAMPLE_KEYS = {
    "header": frozenset({"header_text", "header_text_named_params", "header_handle"}),
    "body": frozenset({"body_text", "body_text_named_params"}),
}


def _example(component: dict[str, Any], path: str, part: str, names: list[str], named: bool) -> dict[str, Any] | None:
    where = _at(path, "example")
    if component.get("example") is None:
        if names:
            raise RequestError(131008, f"Required parameter '{where}' is missing: the {part} text has variables")
        return None
    example = _object(component["example"], where)
    _only_keys(example, _EXAMPLE_KEYS[part], where)
    if "header_handle" in example:
        _strings(example["header_handle"], _at(where, "header_handle"))
    if names and named:
        _named_examples(example, f"{part}_text_named_params", names, where)
    elif names:
        _positional_examples(example, f"{part}_text", len(names), where)
    return example


# --- components -------------------------------------------------------------------


def _text(component: dict[str, Any], path: str, limit: int, *, variables_allowed: bool = True) -> str:
    where = _at(path, "text")
    text = check_limit(_required(component, "text", path), limit, where)
    if not variables_allowed and TOKEN.search(text):
        raise RequestError(131009, f"Parameter '{where}' cannot contain variables")
    return text


def _header(component: dict[str, Any], path: str, category: str) -> dict[str, Any]:
    _only_keys(component, frozenset({"type", "format", "text", "example"}), path)
    header: dict[str, Any] = {"type": "HEADER"}
    header["format"] = fmt = _choice(_required(component, "format", path), HEADER_FORMATS, _at(path, "format"))
    names: list[str] = []
    named = False
    if fmt == "TEXT":
        header["text"] = _text(component, path, HEADER_TEXT_LIMIT)
        names, named = _scan(header["text"], _at(path, "text"))
        if len(names) > 1:
            raise RequestError(131009, f"Parameter '{_at(path, 'text')}' can have at most one variable")
    elif "text" in component:
        raise RequestError(100, f"Param '{_at(path, 'text')}' applies to format TEXT only")
    if (example := _example(component, path, "header", names, named)) is not None:
        header["example"] = example
    return header


def _body(component: dict[str, Any], path: str, category: str) -> dict[str, Any]:
    _only_keys(component, frozenset({"type", "text", "example", "add_security_recommendation"}), path)
    body: dict[str, Any] = {"type": "BODY"}
    if category == "AUTHENTICATION" and "text" not in component:
        body["text"] = AUTHENTICATION_BODY  # Meta writes authentication bodies itself
    else:
        body["text"] = _text(component, path, BODY_TEXT_LIMIT)
        names, named = _scan(body["text"], _at(path, "text"))
        if (example := _example(component, path, "body", names, named)) is not None:
            body["example"] = example
    if "add_security_recommendation" in component:
        body["add_security_recommendation"] = _bool(component, "add_security_recommendation", path)
    return body


def _footer(component: dict[str, Any], path: str, category: str) -> dict[str, Any]:
    _only_keys(component, frozenset({"type", "text", "code_expiration_minutes"}), path)
    footer: dict[str, Any] = {"type": "FOOTER"}
    minutes = component.get("code_expiration_minutes")
    if minutes is not None:
        where = _at(path, "code_expiration_minutes")
        if not isinstance(minutes, int) or isinstance(minutes, bool):
            raise RequestError(100, f"Param '{where}' must be an integer")
        if not 1 <= minutes <= CODE_EXPIRATION_MAX:
            raise RequestError(131009, f"Parameter '{where}' must be between 1 and {CODE_EXPIRATION_MAX}")
        footer["code_expiration_minutes"] = minutes
    if "text" not in component and minutes is not None:
        footer["text"] = f"This code expires in {minutes} minutes."
    else:
        footer["text"] = _text(component, path, FOOTER_TEXT_LIMIT, variables_allowed=False)
    return footer


_BUTTON_KEYS: dict[str, frozenset[str]] = {
    "QUICK_REPLY": frozenset({"type", "text"}),
    "URL": frozenset({"type", "text", "url", "example"}),
    "PHONE_NUMBER": frozenset({"type", "text", "phone_number"}),
    "COPY_CODE": frozenset({"type", "text", "example"}),
    "OTP": frozenset(
        {"type", "otp_type", "text", "autofill_text", "package_name", "signature_hash", "supported_apps"}
        | {"zero_tap_terms_accepted"}
    ),
    "FLOW": frozenset({"type", "text", "flow_id", "flow_name", "flow_json", "flow_action", "navigate_screen", "icon"}),
    "CATALOG": frozenset({"type", "text"}),
    "MPM": frozenset({"type", "text"}),
}
_BUTTON_TYPES = tuple(_BUTTON_KEYS)
# How many buttons of one type a template may have (Meta's limits); others: up to BUTTONS_LIMIT.
_BUTTON_MAX = {"URL": 2, "PHONE_NUMBER": 1, "COPY_CODE": 1, "OTP": 1, "CATALOG": 1, "MPM": 1}


def _url_button(button: dict[str, Any], path: str) -> None:
    where = _at(path, "url")
    url = check_limit(_required(button, "url", path), URL_LIMIT, where)
    if not url.lower().startswith(("https://", "http://")):
        raise RequestError(131009, f"Parameter '{where}' must start with http:// or https://")
    tokens = TOKEN.findall(url)
    if tokens and (tokens != ["1"] or not url.endswith("{{1}}")):
        raise RequestError(131009, f"Parameter '{where}' can have one variable, {{{{1}}}}, at its end only")
    if tokens:
        example = button.get("example")
        if example is None:
            raise RequestError(
                131008, f"Required parameter '{_at(path, 'example')}' is missing: the url has a variable"
            )
        if len(_strings(example, _at(path, "example"))) != 1:
            raise RequestError(131009, f"Parameter '{_at(path, 'example')}' must hold one example url")


def _button_details(kind: str, button: dict[str, Any], path: str, category: str) -> None:
    """The rules particular to one button type."""
    if kind == "URL":
        _url_button(button, path)
    elif kind == "PHONE_NUMBER" and not _PHONE.fullmatch(_required(button, "phone_number", path)):
        raise RequestError(131009, f"Parameter '{_at(path, 'phone_number')}' is not a phone number")
    elif kind == "COPY_CODE":
        check_limit(_required(button, "example", path), COUPON_CODE_LIMIT, _at(path, "example"))
    elif kind == "OTP":
        if category != "AUTHENTICATION":
            raise RequestError(131009, f"Parameter '{_at(path, 'type')}': OTP buttons need category AUTHENTICATION")
        _choice(_required(button, "otp_type", path), ("COPY_CODE", "ONE_TAP", "ZERO_TAP"), _at(path, "otp_type"))
    elif kind == "FLOW" and not any(key in button for key in ("flow_id", "flow_name", "flow_json")):
        raise RequestError(131008, f"Required parameter '{_at(path, 'flow_id')}' is missing (or flow_name, flow_json)")


def _button(item: Any, path: str, category: str) -> dict[str, Any]:
    button = _object(item, path)
    kind = _choice(_required(button, "type", path), _BUTTON_TYPES, _at(path, "type"))
    _only_keys(button, _BUTTON_KEYS[kind], path)
    # Copy-code and OTP buttons get their label from WhatsApp when none is given.
    if "text" in button or kind not in ("COPY_CODE", "OTP"):
        _text(button, path, BUTTON_TEXT_LIMIT, variables_allowed=False)
    _button_details(kind, button, path, category)
    return {**button, "type": kind}


def _buttons(component: dict[str, Any], path: str, category: str) -> dict[str, Any]:
    _only_keys(component, frozenset({"type", "buttons"}), path)
    where = _at(path, "buttons")
    if component.get("buttons") is None:
        raise RequestError(131008, f"Required parameter '{where}' is missing")
    items = _array(component["buttons"], where)
    if not items:
        raise RequestError(131008, f"Required parameter '{where}' is empty")
    if len(items) > BUTTONS_LIMIT:
        raise RequestError(131009, f"Parameter '{where}' can have at most {BUTTONS_LIMIT} buttons")
    buttons = [_button(item, f"{where}[{index}]", category) for index, item in enumerate(items)]
    for kind, most in _BUTTON_MAX.items():
        if sum(button["type"] == kind for button in buttons) > most:
            raise RequestError(131009, f"Parameter '{where}' can have at most {most} {kind} button(s)")
    return {"type": "BUTTONS", "buttons": buttons}


_COMPONENTS: dict[str, Callable[[dict[str, Any], str, str], dict[str, Any]]] = {
    "HEADER": _header,
    "BODY": _body,
    "FOOTER": _footer,
    "BUTTONS": _buttons,
}


def _components(document: dict[str, Any], category: str) -> list[dict[str, Any]]:
    if document.get("components") is None:
        raise RequestError(131008, "Required parameter 'components' is missing")
    components: list[dict[str, Any]] = []
    for index, item in enumerate(_array(document["components"], "components")):
        path = f"components[{index}]"
        component = _object(item, path)
        kind = _choice(_required(component, "type", path), tuple(_COMPONENTS), _at(path, "type"))
        if any(seen["type"] == kind for seen in components):
            raise RequestError(131009, f"Parameter '{path}': a template has at most one {kind} component")
        components.append(_COMPONENTS[kind](component, path, category))
    if not any(component["type"] == "BODY" for component in components):
        raise RequestError(131008, "Required parameter 'components' has no BODY component")
    return components


def _check_parameter_format(document: dict[str, Any], components: list[dict[str, Any]]) -> None:
    """Header and body use one style; `parameter_format`, when given, must name it."""
    found = _variables_of(components)
    styles = {name.isdigit() for key in ("header", "body") for name in found.get(key, [])}
    if len(styles) > 1:
        raise RequestError(131009, "Parameter 'components' mixes numbered and named variables across header and body")
    declared = _string(document, "parameter_format", "", required=False)
    if declared is None:
        return
    declared = _choice(declared, ("POSITIONAL", "NAMED"), "parameter_format")
    if styles and (declared == "NAMED") != (False in styles):
        raise RequestError(131009, f"Parameter 'parameter_format' is {declared} but the variables are not")


_CREATE_KEYS = frozenset({"name", "language", "category", "components", "allow_category_change", "parameter_format"})


def parse_template_create(document: dict[str, Any]) -> TemplateDraft:
    """Validate a create request body; raise :class:`RequestError` naming the path to fix."""
    _object(document, "request body")
    _only_keys(document, _CREATE_KEYS, "")
    name = check_limit(_required(document, "name", ""), NAME_LIMIT, "name")
    if not _NAME.fullmatch(name):
        raise RequestError(131009, "Parameter 'name' may contain only lowercase letters, digits and underscores")
    language = _required(document, "language", "")
    if not _LANGUAGE.fullmatch(language):
        raise RequestError(131009, f"Parameter 'language' must be a language code like en or en_US; got '{language}'")
    category = _choice(_required(document, "category", ""), CATEGORIES, "category")
    allow_category_change = _bool(document, "allow_category_change", "")
    components = _components(document, category)
    _check_parameter_format(document, components)
    return TemplateDraft(name, language, category, components, allow_category_change)


# --- review -----------------------------------------------------------------------


def find_component(components: list[dict[str, Any]], kind: str) -> dict[str, Any] | None:
    return next((c for c in components if str(c.get("type", "")).upper() == kind), None)


def body_text(components: list[dict[str, Any]]) -> str:
    body = find_component(components, "BODY")
    text = body.get("text") if body else None
    return text if isinstance(text, str) else ""


def review(draft: TemplateDraft, reject_pattern: re.Pattern[str] | None) -> tuple[TemplateStatus, str | None]:
    """The sandbox's reviewer: (status, rejected_reason).

    * REJECTED, ``INVALID_FORMAT``: a variable opens or closes the body text
      (surrounding white space ignored). Meta rejects these for real.
      AUTHENTICATION templates are exempt: their body is Meta's own wording.
    * REJECTED, ``TAG_CONTENT_MISMATCH``: `reject_pattern` matches anywhere in
      the name, so a sandbox user can provoke a rejection on purpose.
    * APPROVED otherwise.
    """
    text = body_text(draft.components).strip()
    tokens = list(TOKEN.finditer(text))
    at_edge = bool(tokens) and (tokens[0].start() == 0 or tokens[-1].end() == len(text))
    if at_edge and draft.category != "AUTHENTICATION":
        return TemplateStatus.REJECTED, "INVALID_FORMAT"
    if reject_pattern is not None and reject_pattern.search(draft.name):
        return TemplateStatus.REJECTED, "TAG_CONTENT_MISMATCH"
    return TemplateStatus.APPROVED, None

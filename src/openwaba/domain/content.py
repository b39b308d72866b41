"""The objects a send request carries, one msgspec Struct per object, with WhatsApp's rules.

msgspec checks the shape (required keys, JSON types, unknown keys, lengths and
enums). Rules it cannot express, such as "exactly one of `id` or `link`",
uniqueness or counts across sections, live in each Struct's :meth:`Strict.check`.
:func:`check_tree` calls them for every Struct in a converted object, naming
each by its path in the request (`interactive.action.buttons[1].reply.title`).

Interactive objects are in :mod:`openwaba.domain.interactive`.
"""

from __future__ import annotations

import datetime
import enum
import math
import re
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import urlsplit

import msgspec

from openwaba.domain.errors import RequestError

BODY_LIMIT = 4096
CAPTION_LIMIT = 1024
_PARAMETER_NAME = re.compile(r"[a-z_]{1,20}")
_BUTTONS_MAX = 10  # templates have at most 10 buttons
_CURRENCY_CODE = re.compile(r"[A-Z]{3}")
_BIRTHDAY = re.compile(r"\d{4}-\d{2}-\d{2}")

NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]


class Dialect(enum.Enum):
    """Which request format a face speaks."""

    CLOUD = "cloud"  # waba-v2: Meta Cloud API bodies, `messaging_product` required
    ON_PREMISE = "on_premise"  # waba /v1: no `messaging_product`, `type` defaults to text


# --- errors, worded the same way wherever they are raised ----------------------------


def missing(path: str, when: str = "") -> RequestError:
    return RequestError(131008, f"Required parameter '{path}' is missing{when}")


def empty(path: str) -> RequestError:
    return RequestError(131008, f"Required parameter '{path}' is empty")


def invalid(path: str, rule: str) -> RequestError:
    return RequestError(131009, f"Parameter '{path}' is invalid: {rule}")


def unexpected(path: str) -> RequestError:
    return RequestError(100, f"Unexpected key '{path}'; remove it")


def wrong_type(path: str, detail: str) -> RequestError:
    return RequestError(100, f"Invalid parameter '{path}': {detail}")


# --- the Struct base and the walk over a converted object ----------------------------


class Strict(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Base for request objects.

    Unknown keys are errors, as on WhatsApp; `omit_defaults` keeps absent
    optional fields out of the normalised content instead of writing `null`s.
    """

    # Fields only the On-Premise API knows; the Cloud API rejects them as unknown keys.
    on_premise_only: ClassVar[frozenset[str]] = frozenset()

    def check(self, path: str, dialect: Dialect) -> None:
        """Rules msgspec cannot express; raise :class:`RequestError`. Children are checked by :func:`check_tree`."""


def check_tree(node: object, path: str, dialect: Dialect) -> None:
    """Check `node` and every Struct below it, parents before children."""
    if isinstance(node, Strict):
        if dialect is Dialect.CLOUD:
            for name in node.on_premise_only:
                if getattr(node, name) is not None:
                    raise unexpected(f"{path}.{name}")
        node.check(path, dialect)
        for name in node.__struct_fields__:
            value = getattr(node, name)
            if isinstance(value, (Strict, list)):  # scalars have no rules left; skip building their paths
                check_tree(value, f"{path}.{name}", dialect)
    elif isinstance(node, list):
        for index, item in enumerate(node):
            if isinstance(item, (Strict, list)):
                check_tree(item, f"{path}[{index}]", dialect)


def check_url(url: str, path: str) -> None:
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unbalanced IPv6 bracket
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise invalid(path, "It must be an http:// or https:// URL")


def first_duplicate(values: list[str]) -> int | None:
    """Index of the first value that already occurred, or None."""
    seen: set[str] = set()
    for index, value in enumerate(values):
        if value in seen:
            return index
        seen.add(value)
    return None


# Extended_Pictographic, approximated by the blocks emoji live in (regional
# indicators excluded: they only count in pairs, as flags).
_PICTOGRAPHIC = (
    "\u00a9\u00ae\u203c\u2049\u2122\u2139\u2194-\u2199\u21a9\u21aa\u231a\u231b\u2328\u23cf\u23e9-\u23f3"
    "\u23f8-\u23fa\u24c2\u25aa\u25ab\u25b6\u25c0\u25fb-\u25fe\u2600-\u27bf\u2934\u2935\u2b05-\u2b07"
    "\u2b1b\u2b1c\u2b50\u2b55\u3030\u303d\u3297\u3299\U0001f000-\U0001f1e5\U0001f200-\U0001faff"
)
_EMOJI_ELEMENT = (
    "(?:[0-9#*]\ufe0f?\u20e3"  # keycap
    "|[\U0001f1e6-\U0001f1ff]{2}"  # flag
    f"|[{_PICTOGRAPHIC}][\ufe0e\ufe0f]?[\U0001f3fb-\U0001f3ff]?"  # pictograph, presentation, skin tone
    "(?:[\U000e0020-\U000e007e]+\U000e007f)?)"  # subdivision flag tags
)
_SINGLE_EMOJI = re.compile(f"{_EMOJI_ELEMENT}(?:\u200d{_EMOJI_ELEMENT})*")
PICTOGRAPH = re.compile(f"[{_PICTOGRAPHIC}]")


# --- text, media, location, reaction ----------------------------------------------


class TextContent(Strict, omit_defaults=False):  # `preview_url: false` stays in the content
    body: Annotated[str, msgspec.Meta(min_length=1, max_length=BODY_LIMIT)]
    preview_url: bool = False


class Basic(Strict):
    username: str
    password: str


class Bearer(Strict):
    bearer: str


class ProviderConfig(Strict):
    basic: Basic | None = None
    bearer: Bearer | None = None


class Provider(Strict):
    """On-Premise: credentials for fetching a `link` (a media provider)."""

    name: NonEmpty
    type: str | None = None
    config: ProviderConfig | None = None


class MediaRef(Strict):
    """A media object without caption: interactive headers, template parameters, stickers."""

    id: NonEmpty | None = None
    link: NonEmpty | None = None
    provider: Provider | None = None
    on_premise_only = frozenset({"provider"})

    def check(self, path: str, dialect: Dialect) -> None:
        if self.id is not None and self.link is not None:
            raise invalid(path, "Use either 'id' or 'link', not both")
        if self.link is not None:
            check_url(self.link, f"{path}.link")
        elif self.id is None:
            raise invalid(path, "One of 'id' or 'link' is required")


class DocumentRef(MediaRef):
    filename: str | None = None


Caption = Annotated[str, msgspec.Meta(max_length=CAPTION_LIMIT)]


class ImageContent(MediaRef):
    caption: Caption | None = None


class VideoContent(MediaRef):
    caption: Caption | None = None


class DocumentContent(DocumentRef):
    caption: Caption | None = None


class AudioContent(MediaRef):
    voice: bool | None = None  # OGG/OPUS shown as a voice note


class LocationContent(Strict):
    latitude: Annotated[float, msgspec.Meta(ge=-90, le=90)]
    longitude: Annotated[float, msgspec.Meta(ge=-180, le=180)]
    name: str | None = None
    address: str | None = None


class ReactionContent(Strict):
    message_id: NonEmpty
    emoji: str  # "" removes the reaction

    def check(self, path: str, dialect: Dialect) -> None:
        if self.emoji and not _SINGLE_EMOJI.fullmatch(self.emoji):
            raise invalid(f"{path}.emoji", 'It must be a single emoji, or "" to remove the reaction')


# --- contacts ----------------------------------------------------------------------

HomeOrWork = Literal["HOME", "WORK"]


class ContactName(Strict):
    formatted_name: NonEmpty
    first_name: str | None = None
    last_name: str | None = None
    middle_name: str | None = None
    suffix: str | None = None
    prefix: str | None = None


class ContactAddress(Strict):
    street: str | None = None
    city: str | None = None
    state: str | None = None
    zip: str | None = None
    country: str | None = None
    country_code: str | None = None
    type: HomeOrWork | None = None


class ContactEmail(Strict):
    email: str | None = None
    type: HomeOrWork | None = None


class ContactOrg(Strict):
    company: str | None = None
    department: str | None = None
    title: str | None = None


class ContactPhone(Strict):
    phone: str | None = None
    type: Literal["CELL", "MAIN", "IPHONE", "HOME", "WORK"] | None = None
    wa_id: str | None = None


class ContactUrl(Strict):
    url: str | None = None
    type: HomeOrWork | None = None


class ContactIm(Strict):
    service: str | None = None
    user_id: str | None = None


class ContactCard(Strict, kw_only=True):
    name: ContactName
    addresses: list[ContactAddress] | None = None
    birthday: str | None = None
    emails: list[ContactEmail] | None = None
    org: ContactOrg | None = None
    phones: list[ContactPhone] | None = None
    urls: list[ContactUrl] | None = None
    ims: list[ContactIm] | None = None
    on_premise_only = frozenset({"ims"})

    def check(self, path: str, dialect: Dialect) -> None:
        if self.birthday is not None and not _is_date(self.birthday):
            raise invalid(f"{path}.birthday", "It must be a date in the format YYYY-MM-DD")


def _is_date(value: str) -> bool:
    if not _BIRTHDAY.fullmatch(value):
        return False
    try:
        datetime.date.fromisoformat(value)
    except ValueError:
        return False
    return True


ContactsContent = Annotated[list[ContactCard], msgspec.Meta(min_length=1)]


# --- commerce: shared by interactive product_list and template mpm buttons ----------


class ProductItem(Strict):
    product_retailer_id: NonEmpty


class ProductSection(Strict):
    product_items: Annotated[list[ProductItem], msgspec.Meta(min_length=1)]
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=24)] | None = None


def require_section_titles(titles: list[str | None], path: str) -> None:
    """With more than one section, every section needs a title."""
    if len(titles) > 1:
        for index, title in enumerate(titles):
            if title is None:
                raise missing(f"{path}[{index}].title", " (required when there is more than one section)")


# --- template (shape only; whether it matches an approved template is checked elsewhere)


class TemplateLanguage(Strict):
    code: NonEmpty
    policy: Literal["deterministic"] | None = None


class Currency(Strict):
    fallback_value: NonEmpty
    code: str
    amount_1000: int

    def check(self, path: str, dialect: Dialect) -> None:
        if not _CURRENCY_CODE.fullmatch(self.code):
            raise invalid(f"{path}.code", "It must be an ISO 4217 currency code such as USD")


class DateTime(Strict):
    fallback_value: NonEmpty


class TemplateLocation(Strict):
    """Template location headers: coordinates as numbers or, as many clients send them, numeric strings."""

    latitude: float | str
    longitude: float | str
    name: str | None = None
    address: str | None = None

    def check(self, path: str, dialect: Dialect) -> None:
        _check_coordinate(self.latitude, 90, f"{path}.latitude")
        _check_coordinate(self.longitude, 180, f"{path}.longitude")


def _check_coordinate(value: float | str, limit: int, path: str) -> None:
    try:
        number = float(value)
    except ValueError:
        raise invalid(path, "It must be a number") from None
    if not (math.isfinite(number) and -limit <= number <= limit):
        raise invalid(path, f"It must be between -{limit} and {limit}")


class TemplateButtonAction(Strict):
    """The `action` of a flow, catalog or multi-product template button."""

    flow_token: str | None = None
    flow_action_data: dict[str, Any] | None = None
    thumbnail_product_retailer_id: str | None = None
    sections: list[ProductSection] | None = None


class Parameter(Strict, tag_field="type"):
    """Base of template parameters; the tag is the parameter's `type`."""


class _NamedParameter(Parameter):
    """Header and body parameters may name the template variable they fill."""

    parameter_name: str | None = None

    def check(self, path: str, dialect: Dialect) -> None:
        if self.parameter_name is not None and not _PARAMETER_NAME.fullmatch(self.parameter_name):
            raise invalid(
                f"{path}.parameter_name", "It must be 1 to 20 characters of lowercase letters a-z and underscores"
            )


class TextParameter(_NamedParameter, tag="text", kw_only=True):
    text: NonEmpty


class CurrencyParameter(_NamedParameter, tag="currency", kw_only=True):
    currency: Currency


class DateTimeParameter(_NamedParameter, tag="date_time", kw_only=True):
    date_time: DateTime


class ImageParameter(Parameter, tag="image"):
    image: MediaRef


class VideoParameter(Parameter, tag="video"):
    video: MediaRef


class DocumentParameter(Parameter, tag="document"):
    document: DocumentRef


class LocationParameter(Parameter, tag="location"):
    location: TemplateLocation


class PayloadParameter(Parameter, tag="payload"):
    payload: NonEmpty


class CouponCodeParameter(Parameter, tag="coupon_code"):
    coupon_code: NonEmpty


class ActionParameter(Parameter, tag="action"):
    action: TemplateButtonAction


AnyParameter = (
    TextParameter
    | CurrencyParameter
    | DateTimeParameter
    | ImageParameter
    | VideoParameter
    | DocumentParameter
    | LocationParameter
    | PayloadParameter
    | CouponCodeParameter
    | ActionParameter
)


def _tag(struct: msgspec.Struct) -> str:
    return str(struct.__struct_config__.tag)


def check_parameter_types(parameters: list[AnyParameter], allowed: frozenset[str], where: str, path: str) -> None:
    for index, parameter in enumerate(parameters):
        if _tag(parameter) not in allowed:
            names = ", ".join(sorted(allowed))
            raise invalid(
                f"{path}[{index}].type",
                f"Parameter type '{_tag(parameter)}' is not allowed in {where}; allowed: {names}",
            )


class Component(Strict, tag_field="type"):
    """Base of template components; the tag is the component's `type`."""

    parameters: list[AnyParameter] | None = None


_HEADER_PARAMETERS = frozenset({"text", "image", "video", "document", "location"})
_BODY_PARAMETERS = frozenset({"text", "currency", "date_time"})


class HeaderComponent(Component, tag="header"):
    def check(self, path: str, dialect: Dialect) -> None:
        check_parameter_types(self.parameters or [], _HEADER_PARAMETERS, "a header component", f"{path}.parameters")


class BodyComponent(Component, tag="body"):
    def check(self, path: str, dialect: Dialect) -> None:
        check_parameter_types(self.parameters or [], _BODY_PARAMETERS, "a body component", f"{path}.parameters")


# Which parameter type each button sub_type takes.
_BUTTON_PARAMETER = {
    "quick_reply": frozenset({"payload"}),
    "url": frozenset({"text"}),
    "copy_code": frozenset({"coupon_code"}),
    "flow": frozenset({"action"}),
    "catalog": frozenset({"action"}),
    "mpm": frozenset({"action"}),
}


class ButtonComponent(Component, tag="button", kw_only=True):
    sub_type: Literal["quick_reply", "url", "copy_code", "flow", "catalog", "mpm"]
    index: str | int  # a string on the Cloud API; On-Premise also takes an integer

    def check(self, path: str, dialect: Dialect) -> None:
        if isinstance(self.index, int) and dialect is Dialect.CLOUD:
            raise wrong_type(f"{path}.index", "Expected `str`, got `int`")
        position = str(self.index)
        if not (len(position) <= 2 and position.isascii() and position.isdecimal()) or int(position) >= _BUTTONS_MAX:
            raise invalid(f"{path}.index", f"It must be a button position from 0 to {_BUTTONS_MAX - 1}")
        allowed = _BUTTON_PARAMETER[self.sub_type]
        check_parameter_types(self.parameters or [], allowed, f"a {self.sub_type} button", f"{path}.parameters")


AnyComponent = HeaderComponent | BodyComponent | ButtonComponent


class TemplateContent(Strict, kw_only=True):
    name: NonEmpty
    language: TemplateLanguage
    components: list[AnyComponent] | None = None
    namespace: NonEmpty | None = None
    on_premise_only = frozenset({"namespace"})

    def check(self, path: str, dialect: Dialect) -> None:
        components = self.components or []
        for kind in ("header", "body"):
            found = [index for index, component in enumerate(components) if _tag(component) == kind]
            if len(found) > 1:
                raise invalid(f"{path}.components[{found[1]}]", f"A template has at most one {kind} component")
        self._check_parameter_style(components, f"{path}.components")

    @staticmethod
    def _check_parameter_style(components: list[AnyComponent], path: str) -> None:
        """Header and body parameters are either all named or all positional."""
        named: bool | None = None
        for c_index, component in enumerate(components):
            if isinstance(component, ButtonComponent):
                continue
            for p_index, parameter in enumerate(component.parameters or []):
                if not isinstance(parameter, _NamedParameter):
                    continue  # media and location parameters fill the header itself, not a variable
                is_named = parameter.parameter_name is not None
                if named is None:
                    named = is_named
                elif named != is_named:
                    rule = "Header and body parameters must either all have a 'parameter_name' or none"
                    raise invalid(f"{path}[{c_index}].parameters[{p_index}]", rule)

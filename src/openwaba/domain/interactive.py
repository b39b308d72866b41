"""Interactive messages: one Struct per `interactive.type`, a tagged union over that field.

An unknown `interactive.type` fails msgspec's tag lookup and is answered with
131009 (a bad value of a known field), not 131051, which WhatsApp keeps for an
unknown top-level `type`.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

import msgspec

from openwaba.domain.content import (
    PICTOGRAPH,
    Dialect,
    DocumentRef,
    MediaRef,
    NonEmpty,
    ProductSection,
    Strict,
    check_url,
    first_duplicate,
    invalid,
    missing,
    require_section_titles,
)

BUTTONS_MAX = 3
BUTTON_TITLE_LIMIT = 20
BUTTON_ID_LIMIT = 256
LIST_BUTTON_LIMIT = 20
ROWS_MAX = 10
PRODUCTS_MAX = 30

_ALL_HEADERS = frozenset({"text", "image", "video", "document"})
_TEXT_HEADER = frozenset({"text"})
_NO_HEADER: frozenset[str] = frozenset()


_Text20 = Annotated[str, msgspec.Meta(min_length=1, max_length=20)]
_Text24 = Annotated[str, msgspec.Meta(min_length=1, max_length=24)]


class Header(Strict):
    type: Literal["text", "image", "video", "document"]
    text: Annotated[str, msgspec.Meta(min_length=1, max_length=60)] | None = None
    image: MediaRef | None = None  # media headers carry no caption
    video: MediaRef | None = None
    document: DocumentRef | None = None

    def check(self, path: str, dialect: Dialect) -> None:
        if getattr(self, self.type) is None:
            raise missing(f"{path}.{self.type}", f" for header type '{self.type}'")
        for name in ("text", "image", "video", "document"):
            if name != self.type and getattr(self, name) is not None:
                raise invalid(f"{path}.{name}", f"Not allowed with header type '{self.type}'")


class Body(Strict):
    text: Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]


class Footer(Strict):
    text: Annotated[str, msgspec.Meta(min_length=1, max_length=60)]


class Interactive(Strict, tag_field="type"):
    """Fields every interactive type shares; the class attributes say how each type uses them."""

    header: Header | None = None
    body: Body | None = None
    footer: Footer | None = None
    header_types: ClassVar[frozenset[str]] = _ALL_HEADERS
    header_required: ClassVar[bool] = False
    body_required: ClassVar[bool] = True

    def check(self, path: str, dialect: Dialect) -> None:
        kind = self.__struct_config__.tag
        if self.body is None and self.body_required:
            raise missing(f"{path}.body", f" for interactive type '{kind}'")
        if self.header is None:
            if self.header_required:
                raise missing(f"{path}.header", f" for interactive type '{kind}'; it must be a text header")
        elif not self.header_types:
            raise invalid(f"{path}.header", f"Interactive type '{kind}' does not take a header")
        elif self.header.type not in self.header_types:
            allowed = ", ".join(sorted(self.header_types))
            raise invalid(f"{path}.header.type", f"Interactive type '{kind}' takes a header of type {allowed}")


# --- button ------------------------------------------------------------------------


class Reply(Strict):
    id: NonEmpty
    title: NonEmpty

    def check(self, path: str, dialect: Dialect) -> None:
        if len(self.title) > BUTTON_TITLE_LIMIT:
            raise invalid(f"{path}.title", f"Button title exceeds {BUTTON_TITLE_LIMIT} characters")
        if len(self.id) > BUTTON_ID_LIMIT:
            raise invalid(f"{path}.id", f"Button id exceeds {BUTTON_ID_LIMIT} characters")
        if self.id != self.id.strip():
            raise invalid(f"{path}.id", "Button id must not have leading or trailing spaces")


class ReplyButton(Strict):
    type: Literal["reply"]
    reply: Reply


class ButtonAction(Strict):
    buttons: list[ReplyButton]

    def check(self, path: str, dialect: Dialect) -> None:
        if not 1 <= len(self.buttons) <= BUTTONS_MAX:
            rule = f"Invalid buttons count. Min allowed buttons: 1, Max allowed buttons: {BUTTONS_MAX}"
            raise invalid(f"{path}.buttons", rule)
        for field in ("id", "title"):
            duplicate = first_duplicate([getattr(button.reply, field) for button in self.buttons])
            if duplicate is not None:
                raise invalid(f"{path}.buttons[{duplicate}].reply.{field}", f"Button {field}s must be unique")


class ButtonMessage(Interactive, tag="button", kw_only=True):
    action: ButtonAction


# --- list --------------------------------------------------------------------------


class Row(Strict, kw_only=True):
    id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    title: _Text24
    description: Annotated[str, msgspec.Meta(max_length=72)] | None = None


class Section(Strict, kw_only=True):
    title: _Text24 | None = None
    rows: Annotated[list[Row], msgspec.Meta(min_length=1)]


class ListAction(Strict):
    button: NonEmpty
    sections: Annotated[list[Section], msgspec.Meta(min_length=1, max_length=10)]

    def check(self, path: str, dialect: Dialect) -> None:
        if len(self.button) > LIST_BUTTON_LIMIT:
            raise invalid(f"{path}.button", f"Button label is too long. Max length is {LIST_BUTTON_LIMIT}")
        require_section_titles([section.title for section in self.sections], f"{path}.sections")
        rows = [
            (f"{path}.sections[{s_index}].rows[{r_index}]", row)
            for s_index, section in enumerate(self.sections)
            for r_index, row in enumerate(section.rows)
        ]
        if len(rows) > ROWS_MAX:
            raise invalid(f"{path}.sections", f"Total rows across all sections exceed {ROWS_MAX}")
        duplicate = first_duplicate([row.id for _, row in rows])
        if duplicate is not None:
            raise invalid(f"{rows[duplicate][0]}.id", "Row ids must be unique")


class ListMessage(Interactive, tag="list", kw_only=True):
    action: ListAction
    header_types = _TEXT_HEADER


# --- cta_url and flow --------------------------------------------------------------


class CtaUrlParameters(Strict):
    display_text: _Text20
    url: NonEmpty

    def check(self, path: str, dialect: Dialect) -> None:
        check_url(self.url, f"{path}.url")


class CtaUrlAction(Strict):
    name: Literal["cta_url"]
    parameters: CtaUrlParameters


class CtaUrlMessage(Interactive, tag="cta_url", kw_only=True):
    action: CtaUrlAction


class FlowPayload(Strict):
    screen: NonEmpty
    data: Annotated[dict[str, Any], msgspec.Meta(min_length=1)] | None = None


class FlowParameters(Strict, kw_only=True):
    flow_message_version: Literal["3"]
    flow_cta: _Text20
    flow_token: NonEmpty | None = None
    flow_id: NonEmpty | None = None
    flow_name: NonEmpty | None = None
    flow_action: Literal["navigate", "data_exchange"] | None = None  # WhatsApp's default: navigate
    flow_action_payload: FlowPayload | None = None
    mode: Literal["draft", "published"] | None = None

    def check(self, path: str, dialect: Dialect) -> None:
        if (self.flow_id is None) == (self.flow_name is None):
            raise invalid(path, "Use exactly one of 'flow_id' or 'flow_name'")
        if PICTOGRAPH.search(self.flow_cta):
            raise invalid(f"{path}.flow_cta", "It must not contain emoji")
        if self.flow_action == "data_exchange":
            if self.flow_action_payload is not None:
                raise invalid(f"{path}.flow_action_payload", "Leave it out when flow_action is 'data_exchange'")
        elif self.flow_action_payload is None:
            raise missing(f"{path}.flow_action_payload", " (required when flow_action is 'navigate')")


class FlowAction(Strict):
    name: Literal["flow"]
    parameters: FlowParameters


class FlowMessage(Interactive, tag="flow", kw_only=True):
    """The references do not say which headers a flow takes; every type is accepted rather than guessed away."""

    action: FlowAction


# --- commerce ----------------------------------------------------------------------


class ProductAction(Strict):
    catalog_id: NonEmpty
    product_retailer_id: NonEmpty


class ProductMessage(Interactive, tag="product", kw_only=True):
    action: ProductAction
    header_types = _NO_HEADER
    body_required = False


class ProductListAction(Strict):
    catalog_id: NonEmpty
    sections: Annotated[list[ProductSection], msgspec.Meta(min_length=1, max_length=10)]

    def check(self, path: str, dialect: Dialect) -> None:
        require_section_titles([section.title for section in self.sections], f"{path}.sections")
        if sum(len(section.product_items) for section in self.sections) > PRODUCTS_MAX:
            raise invalid(f"{path}.sections", f"Total products across all sections exceed {PRODUCTS_MAX}")


class ProductListMessage(Interactive, tag="product_list", kw_only=True):
    action: ProductListAction
    header_types = _TEXT_HEADER
    header_required = True


class CatalogParameters(Strict):
    thumbnail_product_retailer_id: NonEmpty | None = None


class CatalogAction(Strict):
    name: Literal["catalog_message"]
    parameters: CatalogParameters | None = None


class CatalogMessage(Interactive, tag="catalog_message", kw_only=True):
    action: CatalogAction
    header_types = _NO_HEADER  # the thumbnail product stands in for a header


InteractiveContent = (
    ButtonMessage | ListMessage | CtaUrlMessage | FlowMessage | ProductMessage | ProductListMessage | CatalogMessage
)

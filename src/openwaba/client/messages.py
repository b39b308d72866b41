"""Typed builders for every outgoing message type, in the Cloud API's wire format.

Each builder returns a :class:`Message`; `client.send(message)` posts it. The
builders catch what a type checker cannot (exactly one of `id`/`link`, 1–3
buttons) with a ValueError before anything goes over the wire; the API checks
the rest (lengths, templates) and answers with WhatsApp's error codes.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

MediaKind = Literal["image", "audio", "video", "document", "sticker"]
Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Message:
    """One outgoing message: the recipient, the type and the type's object."""

    to: str
    type: str
    content: Mapping[str, Any]
    reply_to: str | None = None
    biz_opaque_callback_data: str | None = None

    def replying_to(self, message_id: str) -> Message:
        """The same message, quoting `message_id` (the user sees it as a reply)."""
        return dataclasses.replace(self, reply_to=message_id)

    def tracked(self, data: str) -> Message:
        """The same message with `biz_opaque_callback_data`, echoed in its status webhooks."""
        return dataclasses.replace(self, biz_opaque_callback_data=data)

    def body(self) -> Json:
        """The JSON body of `POST /messages`."""
        body: Json = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": self.to,
            "type": self.type,
            self.type: copy.deepcopy(dict(self.content)),
        }
        if self.reply_to:
            body["context"] = {"message_id": self.reply_to}
        if self.biz_opaque_callback_data is not None:
            body["biz_opaque_callback_data"] = self.biz_opaque_callback_data
        return body


@dataclass(frozen=True, slots=True)
class Row:
    """A row of a list message; its id comes back in the `list_reply` webhook."""

    id: str
    title: str
    description: str | None = None

    def wire(self) -> Json:
        return _compact({"id": self.id, "title": self.title, "description": self.description})


@dataclass(frozen=True, slots=True)
class Section:
    """A titled group of rows (list messages) or of product ids (product lists)."""

    title: str | None
    rows: Sequence[Row] = ()
    product_ids: Sequence[str] = ()

    def wire(self) -> Json:
        section: Json = _compact({"title": self.title})
        if self.product_ids:
            section["product_items"] = [{"product_retailer_id": pid} for pid in self.product_ids]
        else:
            section["rows"] = [row.wire() for row in self.rows]
        return section


def text(to: str, body: str, *, preview_url: bool = False) -> Message:
    content: Json = {"body": body}
    if preview_url:
        content["preview_url"] = True
    return Message(to, "text", content)


def media(
    to: str,
    kind: MediaKind,
    *,
    id: str | None = None,  # noqa: A002 - the wire name
    link: str | None = None,
    caption: str | None = None,
    filename: str | None = None,
    voice: bool = False,
) -> Message:
    """An image, audio, video, document or sticker, by uploaded media `id` or public `link`."""
    return Message(to, kind, _media_object(id, link, caption=caption, filename=filename, voice=voice or None))


def image(to: str, *, id: str | None = None, link: str | None = None, caption: str | None = None) -> Message:  # noqa: A002
    return media(to, "image", id=id, link=link, caption=caption)


def video(to: str, *, id: str | None = None, link: str | None = None, caption: str | None = None) -> Message:  # noqa: A002
    return media(to, "video", id=id, link=link, caption=caption)


def audio(to: str, *, id: str | None = None, link: str | None = None, voice: bool = False) -> Message:  # noqa: A002
    return media(to, "audio", id=id, link=link, voice=voice)


def sticker(to: str, *, id: str | None = None, link: str | None = None) -> Message:  # noqa: A002
    return media(to, "sticker", id=id, link=link)


def document(
    to: str,
    *,
    id: str | None = None,  # noqa: A002
    link: str | None = None,
    caption: str | None = None,
    filename: str | None = None,
) -> Message:
    return media(to, "document", id=id, link=link, caption=caption, filename=filename)


def location(
    to: str, latitude: float, longitude: float, *, name: str | None = None, address: str | None = None
) -> Message:
    content = _compact({"latitude": latitude, "longitude": longitude, "name": name, "address": address})
    return Message(to, "location", content)


def contact(
    formatted_name: str,
    *,
    phones: Sequence[str] = (),
    first_name: str | None = None,
    last_name: str | None = None,
    emails: Sequence[str] = (),
    company: str | None = None,
) -> Json:
    """A contact card for :func:`contacts`; a phone's `wa_id` is the number without `+`."""
    name = {"formatted_name": formatted_name, "first_name": first_name, "last_name": last_name}
    card: Json = {"name": _compact(name)}
    if phones:
        card["phones"] = [{"phone": p, "type": "CELL", "wa_id": "".join(c for c in p if c.isdigit())} for p in phones]
    if emails:
        card["emails"] = [{"email": e, "type": "WORK"} for e in emails]
    if company:
        card["org"] = {"company": company}
    return card


def contacts(to: str, cards: Sequence[Mapping[str, Any]]) -> Message:
    # The body of a contacts message is a list, not an object; `Message.body` copies a mapping, so it is wrapped.
    return _ListMessage(to, "contacts", {"items": [dict(card) for card in cards]})


def reaction(to: str, message_id: str, emoji: str) -> Message:
    """React to a message; an empty emoji removes the reaction."""
    return Message(to, "reaction", {"message_id": message_id, "emoji": emoji})


def buttons(
    to: str,
    body: str,
    choices: Sequence[tuple[str, str]],
    *,
    header: str | Mapping[str, Any] | None = None,
    footer: str | None = None,
) -> Message:
    """Up to three reply buttons, given as (id, title) pairs; the id comes back in `button_reply`."""
    if not 1 <= len(choices) <= 3:
        raise ValueError("a button message has 1 to 3 buttons")
    action = {"buttons": [{"type": "reply", "reply": {"id": bid, "title": title}} for bid, title in choices]}
    return _interactive(to, "button", action, body=body, header=header, footer=footer)


def list_message(
    to: str,
    body: str,
    button: str,
    sections: Sequence[Section],
    *,
    header: str | None = None,
    footer: str | None = None,
) -> Message:
    """A list: `button` opens it, the user picks one row (`list_reply`)."""
    action = {"button": button, "sections": [s.wire() for s in sections]}
    return _interactive(to, "list", action, body=body, header=header, footer=footer)


def cta_url(
    to: str,
    body: str,
    display_text: str,
    url: str,
    *,
    header: str | Mapping[str, Any] | None = None,
    footer: str | None = None,
) -> Message:
    action = {"name": "cta_url", "parameters": {"display_text": display_text, "url": url}}
    return _interactive(to, "cta_url", action, body=body, header=header, footer=footer)


def flow(
    to: str,
    body: str,
    cta: str,
    *,
    flow_id: str | None = None,
    flow_name: str | None = None,
    flow_token: str | None = None,
    screen: str | None = None,
    data: Mapping[str, Any] | None = None,
    mode: Literal["draft", "published"] | None = None,
    header: str | None = None,
    footer: str | None = None,
) -> Message:
    """A WhatsApp Flow by id or name; `screen` (and `data`) navigate to a screen, none means data exchange."""
    if (flow_id is None) == (flow_name is None):
        raise ValueError("give flow_id or flow_name, not both")
    parameters: Json = _compact(
        {"flow_message_version": "3", "flow_id": flow_id, "flow_name": flow_name, "flow_cta": cta}
    )
    parameters.update(_compact({"flow_token": flow_token, "mode": mode}))
    if screen is not None:
        parameters["flow_action"] = "navigate"
        parameters["flow_action_payload"] = _compact({"screen": screen, "data": dict(data) if data else None})
    else:
        parameters["flow_action"] = "data_exchange"
    action = {"name": "flow", "parameters": parameters}
    return _interactive(to, "flow", action, body=body, header=header, footer=footer)


def product(
    to: str, catalog_id: str, product_id: str, *, body: str | None = None, footer: str | None = None
) -> Message:
    action = {"catalog_id": catalog_id, "product_retailer_id": product_id}
    return _interactive(to, "product", action, body=body, footer=footer)


def product_list(
    to: str, catalog_id: str, header: str, body: str, sections: Sequence[Section], *, footer: str | None = None
) -> Message:
    action = {"catalog_id": catalog_id, "sections": [s.wire() for s in sections]}
    return _interactive(to, "product_list", action, body=body, header=header, footer=footer)


def catalog(to: str, body: str, *, thumbnail_product_id: str | None = None, footer: str | None = None) -> Message:
    parameters = _compact({"thumbnail_product_retailer_id": thumbnail_product_id})
    action = {"name": "catalog_message", "parameters": parameters}
    return _interactive(to, "catalog_message", action, body=body, footer=footer)


def template(to: str, name: str, language: str = "en_US", components: Sequence[Mapping[str, Any]] = ()) -> Message:
    """An approved template; build its components with :func:`body`, :func:`header`, :func:`button`."""
    content: Json = {"name": name, "language": {"code": language}}
    if components:
        content["components"] = [dict(c) for c in components]
    return Message(to, "template", content)


def body(*parameters: str | Mapping[str, Any]) -> Json:
    """The body component of a template: its {{1}}, {{2}}… as strings or parameter objects."""
    return {"type": "body", "parameters": [_parameter(p) for p in parameters]}


def header(parameter: str | Mapping[str, Any]) -> Json:
    """The header component of a template: a text, or a media parameter from :func:`media_parameter`."""
    return {"type": "header", "parameters": [_parameter(parameter)]}


def button(index: int, sub_type: str, value: str) -> Json:
    """A template button: `quick_reply` (payload), `url` (URL suffix) or `copy_code` (coupon code)."""
    kind = {"quick_reply": "payload", "copy_code": "coupon_code"}.get(sub_type, "text")
    return {"type": "button", "sub_type": sub_type, "index": str(index), "parameters": [{"type": kind, kind: value}]}


def media_parameter(kind: MediaKind, *, id: str | None = None, link: str | None = None) -> Json:  # noqa: A002
    """A media header parameter of a template."""
    return {"type": kind, kind: _media_object(id, link)}


def currency(fallback: str, code: str, amount_1000: int) -> Json:
    return {"type": "currency", "currency": {"fallback_value": fallback, "code": code, "amount_1000": amount_1000}}


def date_time(fallback: str) -> Json:
    return {"type": "date_time", "date_time": {"fallback_value": fallback}}


@dataclass(frozen=True, slots=True)
class _ListMessage(Message):
    """A message whose type object is a list (contacts), kept under "items"."""

    def body(self) -> Json:
        wire = Message.body(self)
        wire[self.type] = copy.deepcopy(list(self.content["items"]))
        return wire


def _interactive(
    to: str,
    kind: str,
    action: Mapping[str, Any],
    *,
    body: str | None = None,
    header: str | Mapping[str, Any] | None = None,
    footer: str | None = None,
) -> Message:
    content: Json = {"type": kind}
    if header is not None:
        content["header"] = {"type": "text", "text": header} if isinstance(header, str) else dict(header)
    if body is not None:
        content["body"] = {"text": body}
    if footer is not None:
        content["footer"] = {"text": footer}
    content["action"] = dict(action)
    return Message(to, "interactive", content)


def _media_object(id_: str | None, link: str | None, **extra: Any) -> Json:
    if (id_ is None) == (link is None):
        raise ValueError("give exactly one of id (an uploaded media id) or link (a public URL)")
    return _compact({"id": id_, "link": link, **extra})


def _parameter(value: str | Mapping[str, Any]) -> Json:
    return {"type": "text", "text": value} if isinstance(value, str) else dict(value)


def _compact(values: Mapping[str, Any]) -> Json:
    return {k: v for k, v in values.items() if v is not None}

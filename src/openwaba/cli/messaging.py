"""Messages: `openwaba send` (as the business) and `openwaba sandbox …` (as a simulated user)."""

from __future__ import annotations

import dataclasses
import math
import mimetypes
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from openwaba.cli import output
from openwaba.cli.connection import DEFAULT_URL, ApiKeyOption, UrlOption, number
from openwaba.cli.output import JsonOption
from openwaba.client import Client, messages
from openwaba.client.messages import MediaKind, Message

ToArgument = Annotated[str, typer.Argument(help="The recipient's wa_id, e.g. 15551230001.", show_default=False)]
FromOption = Annotated[str, typer.Option("--from", help="The simulated user's wa_id.", show_default=False)]
ReplyToOption = Annotated[str | None, typer.Option("--reply-to", help="Quote this message (its wamid).")]
FileArgument = Annotated[
    Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="The file to send.", show_default=False)
]


def send(
    to: ToArgument,
    text: Annotated[str | None, typer.Argument(help="The text to send.", show_default=False)] = None,
    template: Annotated[str | None, typer.Option(help="Send this approved template instead of text.")] = None,
    language: Annotated[str, typer.Option(help="The template's language.")] = "en_US",
    param: Annotated[
        list[str] | None, typer.Option(help="A body parameter of the template ({{1}}, {{2}}, …); repeatable.")
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, readable=True, help="Upload this file and send it (type by MIME)."),
    ] = None,
    caption: Annotated[str | None, typer.Option(help="The file's caption (images, videos, documents).")] = None,
    reply_to: ReplyToOption = None,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = "",
    as_json: JsonOption = False,
) -> None:
    """Send a message as the business: a text, a template or a file. Prints its wamid.

    openwaba send 15551230001 "Hello!"

    openwaba send 15551230001 --template hello_world

    openwaba send 15551230001 --file photo.jpg --caption "Our shop"
    """
    if sum(x is not None for x in (text, template, file)) != 1:
        output.usage_error("give exactly one of TEXT, --template NAME or --file PATH")
    if param and template is None:
        output.usage_error("--param goes with --template")
    if caption is not None and file is None:
        output.usage_error("--caption goes with --file")
    with number(url, api_key) as client:
        media_id = None
        if file is not None:
            media_id, message = _file_message(client, to, file, caption)
        elif template is not None:
            components = [messages.body(*param)] if param else []
            message = messages.template(to, template, language, components)
        else:
            message = messages.text(to, text or "")
        sent = client.send(message.replying_to(reply_to) if reply_to else message)
    if as_json:
        output.data({**dataclasses.asdict(sent), **({"media_id": media_id} if media_id else {})})
    else:
        output.line(sent.message_id)


def media_kind(mime_type: str) -> MediaKind:
    """The message type WhatsApp sends a file of this MIME type as."""
    if mime_type == "image/webp":
        return "sticker"
    major = mime_type.split("/", 1)[0]
    if major == "image":
        return "image"
    if major == "video":
        return "video"
    if major == "audio":
        return "audio"
    return "document"


def _file_message(client: Client, to: str, file: Path, caption: str | None) -> tuple[str, Message]:
    mime_type = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
    kind = media_kind(mime_type)
    if caption is not None and kind in ("audio", "sticker"):
        output.usage_error(f"{kind} messages have no caption")
    media_id = client.upload_media(file, mime_type)
    if kind == "document":
        return media_id, messages.document(to, id=media_id, caption=caption, filename=file.name)
    return media_id, messages.media(to, kind, id=media_id, caption=caption)


# --- the sandbox: act as a simulated user ---------------------------------------------------------


def say(
    text: Annotated[str, typer.Argument(help="What the user writes.", show_default=False)],
    from_: FromOption,
    reply_to: ReplyToOption = None,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = "",
    as_json: JsonOption = False,
) -> None:
    """A simulated user writes to the business; prints the inbound wamid (its webhook follows)."""
    with number(url, api_key) as client:
        wamid = client.user_says(from_, text, reply_to=reply_to)
    _print_wamid(wamid, as_json)


def send_file(
    path: FileArgument,
    from_: FromOption,
    caption: Annotated[str | None, typer.Option(help="A caption for the file.")] = None,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = "",
    as_json: JsonOption = False,
) -> None:
    """A simulated user sends a file: it arrives as an image/audio/video/document/sticker webhook."""
    mime_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    with number(url, api_key) as client:
        wamid = client.user_sends_file(from_, path, mime_type, caption=caption)
    _print_wamid(wamid, as_json)


def users(url: UrlOption = DEFAULT_URL, api_key: ApiKeyOption = "", as_json: JsonOption = False) -> None:
    """The number's simulated users."""
    with number(url, api_key) as client:
        found = client.sandbox_users()
    if as_json:
        output.data({"users": found})
        return
    table = Table("wa_id", "name", "user_id")
    for user in found:
        table.add_row(str(user.get("wa_id", "")), str(user.get("name", "")), str(user.get("user_id", "")))
    output.out().print(table)


def phone(
    wa_id: Annotated[str, typer.Argument(help="The simulated user's wa_id.", show_default=False)],
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = "",
    as_json: JsonOption = False,
) -> None:
    """What the user's phone shows: the chat with the business, oldest first, with ticks."""
    with number(url, api_key) as client:
        view = client.user_phone(wa_id)
    if as_json:
        output.data(view)
        return
    shown = list(reversed(view.get("messages") or []))
    output.note(f"chat of {wa_id} with the business ({len(shown)} messages, oldest first)")
    for message in shown:
        output.line(_bubble(message))
    if view.get("business_typing"):
        output.line(Text("business is typing…", style="italic cyan"))


MessageIdArgument = Annotated[
    str, typer.Argument(help="The business message (its wamid) the user acts on.", show_default=False)
]


def tap(
    message_id: MessageIdArgument,
    from_: FromOption,
    button_id: Annotated[
        str | None, typer.Argument(help="The reply button's id (interactive buttons).", show_default=False)
    ] = None,
    index: Annotated[
        int | None, typer.Option(help="Tap a template's quick-reply button instead: its position (0 first).")
    ] = None,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = "",
    as_json: JsonOption = False,
) -> None:
    """A simulated user taps a reply button (BUTTON_ID) or a template's quick-reply button (--index N).

    openwaba sandbox tap --from 15551230001 wamid.HBg… yes

    openwaba sandbox tap --from 15551230001 wamid.HBg… --index 0
    """
    if (button_id is None) == (index is None):
        output.usage_error("give the reply button's BUTTON_ID or a template button's --index, exactly one")
    with number(url, api_key) as client:
        if index is not None:
            wamid = client.user_taps_template_button(from_, message_id, index)
        else:
            wamid = client.user_taps(from_, message_id, str(button_id))
    _print_wamid(wamid, as_json)


def pick(
    message_id: MessageIdArgument,
    row_id: Annotated[str, typer.Argument(help="The list row's id.", show_default=False)],
    from_: FromOption,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = "",
    as_json: JsonOption = False,
) -> None:
    """A simulated user picks a row of the business's list message."""
    with number(url, api_key) as client:
        wamid = client.user_picks(from_, message_id, row_id)
    _print_wamid(wamid, as_json)


def react(
    message_id: MessageIdArgument,
    from_: FromOption,
    emoji: Annotated[str, typer.Argument(help="The emoji; leave it out to remove the user's reaction.")] = "",
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = "",
    as_json: JsonOption = False,
) -> None:
    """A simulated user reacts to a business message with an emoji (or removes their reaction)."""
    with number(url, api_key) as client:
        wamid = client.user_reacts(from_, message_id, emoji)
    _print_wamid(wamid, as_json)


def location(
    latitude: Annotated[float, typer.Option("--lat", "--latitude", help="-90 to 90.", show_default=False)],
    longitude: Annotated[float, typer.Option("--lon", "--longitude", help="-180 to 180.", show_default=False)],
    from_: FromOption,
    name: Annotated[str | None, typer.Option(help="The place's name.")] = None,
    address: Annotated[str | None, typer.Option(help="The place's address.")] = None,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = "",
    as_json: JsonOption = False,
) -> None:
    """A simulated user shares a location (--lat/--lon are options, so negative numbers read as numbers).

    openwaba sandbox location --from 15551230001 --lat 37.4833 --lon -122.149 --name "Meta HQ"
    """
    latitude, longitude = finite(latitude, "--lat"), finite(longitude, "--lon")
    with number(url, api_key) as client:
        wamid = client.user_shares_location(from_, latitude, longitude, name=name, address=address)
    _print_wamid(wamid, as_json)


def clock(
    advance: Annotated[float | None, typer.Option(help="Move a manual clock forward by SECONDS.")] = None,
    set_: Annotated[
        str | None,
        typer.Option(
            "--set",
            help="Move a manual clock forward to a time: ISO-8601 with its offset (2030-01-01T00:00:00Z) "
            "or Unix seconds.",
        ),
    ] = None,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = "",
    as_json: JsonOption = False,
) -> None:
    """Show the gateway's time, or move it (OPENWABA_CLOCK=manual) to run due retries and statuses now."""
    if advance is not None and set_ is not None:
        output.usage_error("give --advance or --set, not both")
    advance = None if advance is None else finite(advance, "--advance")
    at = None if set_ is None else _instant(set_)
    with number(url, api_key) as client:
        if at is not None:
            now = client.set_clock(at)
        else:
            now = client.clock() if advance is None else client.advance_clock(advance)
    if as_json:
        output.data({"now": now})
    else:
        output.line(f"{output.moment(now)}  ({now:.3f})")


def _instant(raw: str) -> float | datetime:
    """Unix seconds, or an ISO-8601 time that says its offset (a bare local time would be a guess)."""
    try:
        return finite(float(raw), "--set")
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(raw)
    except ValueError:
        output.usage_error(f"--set {raw}: not a time; write it like 2030-01-01T00:00:00Z or as Unix seconds")
    if when.utcoffset() is None:
        output.usage_error(f"--set {raw}: add the offset, e.g. {raw}Z for UTC")
    return when


def finite(value: float, flag: str) -> float:
    """Click reads "nan" and "inf" as floats; JSON has no such numbers, so stop here with a usage error."""
    if not math.isfinite(value):
        output.usage_error(f"{flag} {value}: give a finite number")
    return value


def _print_wamid(wamid: str, as_json: bool) -> None:
    if as_json:
        output.data({"message_id": wamid})
    else:
        output.line(wamid)


_TICKS = {
    "sent": ("✓", "dim"),
    "delivered": ("✓✓", "dim"),
    "read": ("✓✓ read", "bold blue"),
    "played": ("✓✓ played", "bold blue"),
    "failed": ("✗ failed", "bold red"),
}


def _bubble(message: dict[str, Any]) -> Text:
    """One message as the phone shows it: time, who wrote it, what, and its ticks."""
    inbound = message.get("direction") == "inbound"
    at = _number(message.get("timestamp"))
    text = Text(output.clock(at)[:8] + "  ")
    text.append("you      " if inbound else "business ", style="green" if inbound else "cyan")
    text.append(_content(message))
    status = str(message.get("status") or "")
    tick, style = _TICKS.get(status, (status, "dim"))
    if tick and not inbound:
        text.append("  " + tick, style=style)
    return text


def _content(message: dict[str, Any]) -> str:
    kind = str(message.get("type", ""))
    content = message.get(kind)
    content = content if isinstance(content, dict) else {}
    reply = "↪ " if message.get("context") else ""
    if kind == "text":
        return reply + str(content.get("body", ""))
    if kind == "template":
        return reply + str(message.get("text") or f"[template {content.get('name', '')}]")
    if kind in ("image", "video", "audio", "document", "sticker"):
        caption = content.get("caption") or content.get("filename") or ""
        return reply + f"[{kind}] {caption}".rstrip()
    if kind == "reaction":
        return f"[reaction] {content.get('emoji') or '(removed)'}"
    if kind == "interactive":
        body = content.get("body")
        shown = body.get("text", "") if isinstance(body, dict) else ""
        return reply + f"[{content.get('type', 'interactive')}] {shown}"
    if kind == "location":
        return f"[location] {content.get('name') or ''} ({content.get('latitude')}, {content.get('longitude')})"
    return reply + f"[{kind}]"


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None

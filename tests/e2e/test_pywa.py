"""End-to-end with a real third-party SDK: pywa (https://github.com/david-lev/pywa)
against openwaba's sandbox through the Graph-compatible face, changing only the
base URL and the token (see `pywa_support.start_bot`).

Every message type is sent with pywa's own methods; the resulting status webhooks
and what simulated users send (text, files, taps on buttons and list rows,
reactions, locations, contacts) arrive at pywa's own webhook handler, signed with
X-Hub-Signature-256 that pywa checks, and must come out as pywa's typed objects
with nothing logged as a warning or an error. Media goes both ways through pywa's
upload, URL and download calls.

pywa's reply shortcuts address users by their business-scoped user id (`recipient`),
as pywa does by default.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pywa.errors import MessageUndeliverable, ReEngagementMessage, WhatsAppError
from pywa.types.callback import (
    Button,
    CallbackButton,
    CallbackSelection,
    Section,
    SectionList,
    SectionRow,
    URLButton,
)
from pywa.types.media import Media
from pywa.types.message import Message
from pywa.types.message_status import MessageStatus, MessageStatusType
from pywa.types.others import Contact, MessageType
from pywa.types.sent_update import SentMessage
from pywa.types.templates import (
    BodyText,
    FooterText,
    HeaderText,
    ParamFormat,
    TemplateCategory,
    TemplateLanguage,
    TemplateStatus,
)

from .messaging_support import MEDIA_FILES, UNKNOWN_RECIPIENT, multipart, status_events, user_view
from .pywa_support import Bot, Updates, start_bot
from .support import ALICE, USER_NAMES, ServerFactory

pytestmark = pytest.mark.e2e

ALL_THREE = {"sent", "delivered", "read"}
ORDER = [MessageStatusType.SENT, MessageStatusType.DELIVERED, MessageStatusType.READ]


@pytest.fixture
def bot(server: ServerFactory) -> Iterator[Bot]:
    """A fresh openwaba (each store) with a pywa bot set as its number's webhook."""
    started = start_bot(server())
    try:
        yield started
    finally:
        started.close()


def assert_everything_typed(bot: Bot) -> None:
    """Every webhook pywa got became exactly one typed update, and pywa logged no warning or error.

    pywa answers 200 before it parses, so a payload it cannot type only shows as a
    raw update without a typed one, and in its log.
    """

    def settled(updates: Updates) -> bool:
        return len(updates.raw) == len(updates.typed) > 0

    bot.wait_for(settled, "one typed update per raw update")
    assert bot.log.problems == [], bot.describe()


def uploaded(bot: Bot) -> dict[str, Media]:
    """Each sample file uploaded with pywa's `upload_media` (multipart `POST /{phone_id}/media`)."""
    media: dict[str, Media] = {}
    for kind, (mime_type, data, filename) in MEDIA_FILES.items():
        media[kind] = bot.wa.upload_media(media=data, mime_type=mime_type, filename=filename)
        assert media[kind].id.isdigit(), media[kind]
    return media


def send_every_type(bot: Bot, inbound: str) -> dict[str, SentMessage]:
    """One message of each type through pywa's send methods, each with a tracker; by name."""
    wa, media = bot.wa, uploaded(bot)
    image_bytes = MEDIA_FILES["image"][1]
    contact = Contact(
        name=Contact.Name(formatted_name="Jane Doe", first_name="Jane", last_name="Doe"),
        phones=[Contact.Phone(phone="+1 555 0100", type="CELL")],
        emails=[Contact.Email(email="jane@example.com", type="WORK")],
    )
    list_message = SectionList(
        "Options",
        sections=[
            Section("Drinks", rows=[SectionRow("Tea", "tea", description="Hot")]),
            Section("Food", rows=[SectionRow("Cake", "cake")]),
        ],
    )
    sends: dict[str, Any] = {
        "text": lambda t: wa.send_message(ALICE, "see https://example.com", preview_url=True, tracker=t),
        # bytes: pywa uploads them first (POST /{phone_id}/media), then sends the new id
        "image-bytes": lambda t: wa.send_image(
            ALICE, image_bytes, caption="a picture", mime_type="image/jpeg", tracker=t
        ),
        "image-id": lambda t: wa.send_image(ALICE, media["image"].id, caption="by id", tracker=t),
        "video": lambda t: wa.send_video(ALICE, media["video"], caption="a film", tracker=t),
        "audio": lambda t: wa.send_audio(ALICE, media["audio"], tracker=t),
        "voice": lambda t: wa.send_voice(ALICE, media["audio"], tracker=t),
        "document": lambda t: wa.send_document(
            ALICE, media["document"], filename="invoice.pdf", caption="a file", tracker=t
        ),
        "sticker": lambda t: wa.send_sticker(ALICE, media["sticker"], tracker=t),
        "location": lambda t: wa.send_location(
            ALICE, 37.483307, -122.148981, name="Meta HQ", address="1 Hacker Way", tracker=t
        ),
        "contacts": lambda t: wa.send_contact(ALICE, contact, tracker=t),
        "buttons": lambda t: wa.send_message(
            ALICE,
            "Pick one",
            header="Question",
            footer="e2e",
            buttons=[Button("Yes", "yes"), Button("No", "no")],
            tracker=t,
        ),
        "list": lambda t: wa.send_message(ALICE, "Choose", buttons=list_message, tracker=t),
        "cta_url": lambda t: wa.send_message(
            ALICE, "Tap to see dates", buttons=URLButton("See Dates", "https://example.com/x"), tracker=t
        ),
        "template": lambda t: wa.send_template(
            ALICE, name="hello_world", language=TemplateLanguage.ENGLISH_US, tracker=t
        ),
        "reply": lambda t: wa.send_message(ALICE, "replying to you", reply_to_message_id=inbound, tracker=t),
        "reaction": lambda t: wa.send_reaction(ALICE, "\U0001f44d", inbound, tracker=t),
        "reaction-removed": lambda t: wa.remove_reaction(ALICE, inbound, tracker=t),
    }
    sent: dict[str, SentMessage] = {}
    for name, send in sends.items():
        sent[name] = send(f"pywa:{name}")
        assert sent[name].id.startswith("wamid."), (name, sent[name])
        assert sent[name].input == ALICE and sent[name].chat.id == ALICE, (name, sent[name])
        assert sent[name].from_phone_id == bot.phone_id
    return sent


def assert_status(bot: Bot, status: MessageStatus[str], wamid: str, tracker: str) -> None:
    assert status.id == wamid
    assert status.waba_id == bot.waba_id
    assert status.metadata.phone_number_id == bot.phone_id
    assert status.from_user.wa_id == ALICE and status.from_user.name == USER_NAMES[ALICE], status.from_user
    assert status.tracker == tracker, status
    assert status.error is None, status


# --- outbound: every type pywa sends comes back as MessageStatus -------------------------------


def test_every_message_type_sent_with_pywa_reaches_pywa_as_sent_delivered_read(bot: Bot) -> None:
    srv = bot.srv
    inbound = srv.user_says(ALICE, "hello business")  # opens the window; reactions and the reply point at it
    sent = send_every_type(bot, inbound)

    for name, message in sent.items():
        expected = {"sent"} if name.startswith("reaction") else ALL_THREE  # a reaction only gets `sent`
        got = bot.wait_for_statuses(message.id, expected)
        for status in got.values():
            assert_status(bot, status, message.id, f"pywa:{name}")
        stamps = [got[s.value].timestamp for s in ORDER if s.value in got]
        assert stamps == sorted(stamps), (name, stamps)
        # The sandbox stores all statuses of a message at once: these are all there will ever be.
        assert len(status_events(srv, message.id)) == len(expected), (name, status_events(srv, message.id))
        assert len(bot.updates.statuses(message.id)) == len(expected), (name, bot.updates.statuses(message.id))

    # The user's phone shows each message with the type pywa sent.
    shown = {m["id"]: m for m in user_view(srv, ALICE)["messages"]}
    for name, message in sent.items():
        kind = name.split("-")[0]
        expected_type = {
            "buttons": "interactive",
            "list": "interactive",
            "cta_url": "interactive",
            "voice": "audio",
            "reply": "text",
        }.get(kind, kind)
        assert shown[message.id]["type"] == expected_type, (name, shown[message.id])
    assert shown[sent["reply"].id]["context"] == {"id": inbound}
    assert_everything_typed(bot)


def assert_failed_status_typed(bot: Bot, wamid: str, tracker: str, error: type[WhatsAppError], code: int) -> None:
    """pywa typed the `failed` status of `wamid` as a MessageStatus carrying its error class."""
    bot.wait_for_raw(wamid)  # typed handlers run before raw ones: the typed update is in by now
    typed = bot.updates.statuses(wamid)
    assert typed, f"pywa could not type the failed status of {wamid}\n{bot.describe()}"
    [failed] = typed
    assert failed.status == MessageStatusType.FAILED and failed.tracker == tracker, failed
    assert isinstance(failed.error, error) and failed.error.code == code, failed.error
    assert_everything_typed(bot)


def test_a_message_outside_the_window_fails_as_a_typed_status_with_its_error(bot: Bot) -> None:
    bot.srv.advance_clock(25 * 3600)  # the user's last message is now over 24 hours old
    sent = bot.wa.send_message(ALICE, "still there?", tracker="pywa:late")
    assert_failed_status_typed(bot, sent.id, "pywa:late", ReEngagementMessage, 131047)


def test_a_message_to_an_unknown_number_fails_as_a_typed_status_with_its_error(bot: Bot) -> None:
    sent = bot.wa.send_message(UNKNOWN_RECIPIENT, "anyone there?", tracker="pywa:unknown")
    assert_failed_status_typed(bot, sent.id, "pywa:unknown", MessageUndeliverable, 131026)


def test_a_refused_request_raises_pywa_s_error_with_the_graph_code(bot: Bot) -> None:
    with pytest.raises(WhatsAppError) as refused:
        bot.wa.send_image(ALICE, "424242424242")  # a media id the number never uploaded
    assert refused.value.code == 100, refused.value
    assert "media" in str(refused.value.details or refused.value.message).lower(), refused.value
    assert isinstance(refused.value.fbtrace_id, str) and refused.value.fbtrace_id


# --- inbound: what users do arrives as pywa's typed updates -------------------------------------


def user_acts(bot: Bot, body: dict[str, Any]) -> str:
    """A simulated user acts (sandbox control endpoint); returns the inbound wamid."""
    return str(bot.srv.ok("POST", f"/sandbox/users/{ALICE}/messages", body)["messages"][0]["id"])


def user_sends_file(bot: Bot, kind: str, caption: str) -> str:
    mime_type, data, filename = MEDIA_FILES[kind]
    body, content_type = multipart({"caption": caption}, (filename, mime_type, data))
    reply = bot.srv.call("POST", f"/sandbox/users/{ALICE}/messages", data=body, headers={"Content-Type": content_type})
    assert reply.status == 200, reply.body
    return str(reply.json()["messages"][0]["id"])


def assert_from_alice(bot: Bot, update: Message | CallbackButton[str] | CallbackSelection[str]) -> None:
    assert update.from_user.wa_id == ALICE and update.from_user.name == USER_NAMES[ALICE], update.from_user
    assert update.from_user.bsuid.startswith("US."), update.from_user
    assert update.metadata.phone_number_id == bot.phone_id and update.waba_id == bot.waba_id


def test_what_users_write_send_tap_and_react_reaches_pywa_typed(bot: Bot) -> None:
    wa = bot.wa
    text = bot.wait_for_message(user_acts(bot, {"text": "hello business"}))
    assert text.type == MessageType.TEXT and text.text == "hello business", text
    assert_from_alice(bot, text)

    buttons = wa.send_message(ALICE, "Pick one", buttons=[Button("Yes", "yes"), Button("No", "no")])
    rows = SectionList("Options", sections=[Section("Drinks", rows=[SectionRow("Tea", "tea", description="Hot")])])
    menu = wa.send_message(ALICE, "Choose", buttons=rows)

    reply = bot.wait_for_message(user_acts(bot, {"text": "about that", "context": {"message_id": buttons.id}}))
    assert reply.reply_to_message is not None and reply.reply_to_message.id == buttons.id, reply

    tap = bot.wait_for_update(
        user_acts(bot, {"type": "button_reply", "message_id": buttons.id, "id": "yes"}), CallbackButton
    )
    assert (tap.data, tap.title, tap.type) == ("yes", "Yes", MessageType.INTERACTIVE), tap
    assert tap.reply_to_message is not None and tap.reply_to_message.id == buttons.id
    assert_from_alice(bot, tap)

    pick = bot.wait_for_update(
        user_acts(bot, {"type": "list_reply", "message_id": menu.id, "id": "tea"}), CallbackSelection
    )
    assert (pick.data, pick.title, pick.description) == ("tea", "Tea", "Hot"), pick
    assert pick.reply_to_message is not None and pick.reply_to_message.id == menu.id
    assert_from_alice(bot, pick)

    reaction = bot.wait_for_message(
        user_acts(bot, {"type": "reaction", "reaction": {"message_id": buttons.id, "emoji": "\u2764"}})
    )
    assert reaction.type == MessageType.REACTION and reaction.reaction is not None, reaction
    assert (reaction.reaction.message_id, reaction.reaction.emoji) == (buttons.id, "\u2764")

    place = {"latitude": 52.52, "longitude": 13.405, "name": "Alexanderplatz", "address": "Berlin"}
    location = bot.wait_for_message(user_acts(bot, {"type": "location", "location": place}))
    assert location.type == MessageType.LOCATION and location.location is not None, location
    assert (location.location.latitude, location.location.longitude) == (52.52, 13.405)
    assert (location.location.name, location.location.address) == ("Alexanderplatz", "Berlin")

    card = {"name": {"formatted_name": "Ann Other"}, "phones": [{"phone": "+1 555 0199", "type": "CELL"}]}
    contacts = bot.wait_for_message(user_acts(bot, {"type": "contacts", "contacts": [card]}))
    assert contacts.type == MessageType.CONTACTS and contacts.contacts, contacts
    [shared] = contacts.contacts
    assert shared.name is not None and shared.name.formatted_name == "Ann Other"
    assert [p.phone for p in shared.phones] == ["+1 555 0199"]
    assert_everything_typed(bot)


@pytest.mark.parametrize("kind", ["image", "document"])
def test_a_file_a_user_sends_downloads_with_pywa(bot: Bot, kind: str, tmp_path: Path) -> None:
    mime_type, data, filename = MEDIA_FILES[kind]
    message = bot.wait_for_message(user_sends_file(bot, kind, f"my {kind}"))
    assert message.type == MessageType(kind) and message.has_media, message
    media = message.media
    assert media is not None
    assert media.mime_type == mime_type and media.sha256 == hashlib.sha256(data).hexdigest(), media
    assert getattr(media, "caption", None) == f"my {kind}"
    if kind == "document":
        assert media.filename == filename, media

    # pywa asks GET /{media_id} for the URL, then downloads it with its Bearer token.
    assert media.get_bytes() == data
    saved = media.download(path=tmp_path, filename=f"copy-{filename}")
    assert saved.read_bytes() == data
    assert_everything_typed(bot)


# --- read receipts, typing, replies --------------------------------------------------------------


def _inbound_status(bot: Bot, wamid: str) -> str:
    [shown] = [m for m in user_view(bot.srv, ALICE)["messages"] if m["id"] == wamid]
    return str(shown["status"])


def test_pywa_marks_read_and_shows_typing(bot: Bot) -> None:
    first = bot.srv.user_says(ALICE, "first")
    second = bot.srv.user_says(ALICE, "second")
    assert _inbound_status(bot, first) == "received"

    assert bot.wa.mark_message_as_read(first).success is True
    assert _inbound_status(bot, first) == "read" and _inbound_status(bot, second) == "received"
    assert user_view(bot.srv, ALICE)["business_typing"] is False

    assert bot.wa.indicate_typing(second).success is True
    assert _inbound_status(bot, second) == "read"
    assert user_view(bot.srv, ALICE)["business_typing"] is True


def answer_with_shortcuts(bot: Bot) -> None:
    """A pywa bot's usual answer: `message.reply_text(...)` and `message.react(...)` on what it got."""
    message = bot.wait_for_message(bot.srv.user_says(ALICE, "hi bot"))
    try:
        answer, reaction = message.reply_text("hello, human", quote=True), message.react("\U0001f44b")
    except WhatsAppError as exc:
        # Reported here: pywa's errors are frozen slotted dataclasses, and the generator context
        # managers they would pass through in pytest turn them into a TypeError on the way up.
        pytest.fail(f"openwaba refused pywa's answer: {exc!r}")
    bot.wait_for_statuses(answer.id, ALL_THREE)
    bot.wait_for_statuses(reaction.id, {"sent"})
    [shown] = [m for m in user_view(bot.srv, ALICE)["messages"] if m["id"] == answer.id]
    assert shown["context"] == {"id": message.id}, shown
    assert_everything_typed(bot)


def test_pywa_answers_with_its_reply_shortcuts(bot: Bot) -> None:
    answer_with_shortcuts(bot)


# --- media and templates through pywa's API calls -----------------------------------------------


def test_pywa_uploads_reads_downloads_and_deletes_media(bot: Bot) -> None:
    wa = bot.wa
    mime_type, data, filename = MEDIA_FILES["document"]
    media = wa.upload_media(media=data, mime_type=mime_type, filename=filename)
    info = wa.get_media_url(media.id)
    assert info.id == media.id and info.mime_type == mime_type, info
    assert info.file_size == len(data) and info.sha256 == hashlib.sha256(data).hexdigest(), info
    assert wa.get_media_bytes(info.url) == data
    assert wa.delete_media(media.id).success is True
    with pytest.raises(WhatsAppError) as gone:
        wa.get_media_url(media.id)
    assert gone.value.code == 100, gone.value


def test_a_graph_call_openwaba_does_not_serve_raises_pywa_s_error(bot: Bot) -> None:
    with pytest.raises(WhatsAppError):
        bot.wa.block_users([ALICE])


def test_pywa_lists_the_sandbox_templates(bot: Bot) -> None:
    templates = bot.wa.get_templates()
    assert not templates.has_next and templates.total_count == len(templates) >= 1, templates
    hello = {t.name: t for t in templates}["hello_world"]
    assert hello.id.isdigit() and hello.category == TemplateCategory.UTILITY, hello
    assert hello.status == TemplateStatus.APPROVED and hello.language == TemplateLanguage.ENGLISH_US, hello
    assert hello.parameter_format == ParamFormat.POSITIONAL, hello
    assert [type(c) for c in hello.components] == [HeaderText, BodyText, FooterText], hello.components

    approved = bot.wa.get_templates(statuses=[TemplateStatus.APPROVED], languages=[TemplateLanguage.ENGLISH_US])
    assert "hello_world" in {t.name for t in approved}
    assert len(bot.wa.get_templates(statuses=[TemplateStatus.REJECTED])) == 0

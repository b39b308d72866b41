"""The menu bot, tested end to end with openwaba's pytest plugin: a real gateway,
a simulated WhatsApp user, and the bot served on a real port."""

from __future__ import annotations

from pathlib import Path

import pytest
from bot import create_app

from openwaba.testing import Gateway, Inbox, ServeApp, SimulatedUser, TestClock


@pytest.fixture
def bot(gateway: Gateway, serve_app: ServeApp, tmp_path: Path) -> str:
    """The bot, running and set as the number's webhook."""
    url = serve_app(create_app(gateway.api_key, gateway.url, str(tmp_path / "bot.db")))
    gateway.set_webhook(url + "/webhook")
    return url


def test_the_user_gets_the_menu_and_an_answer(bot: str, user: SimulatedUser) -> None:
    user.say("hi")
    menu = user.wait_for_message(type="interactive")
    user.tap(menu["id"], "hours")
    answer = user.wait_for_message(contains="we are open")
    assert answer["context"]["id"]  # it quotes the tap


def test_a_duplicated_webhook_is_answered_once(bot: str, gateway: Gateway, user: SimulatedUser) -> None:
    gateway.scenario(duplicates=1)  # WhatsApp sometimes posts the same message twice
    user.say("hi")
    menu = user.wait_for_message(type="interactive")
    user.tap(menu["id"], "prices")
    user.wait_for_message(contains="coffee")
    assert [m["type"] for m in user.received()] == ["interactive", "text"]


def test_a_scripted_user_walks_through_the_menu(bot: str, user: SimulatedUser) -> None:
    user.scenario(script=[
        {"expect": "what would you like", "reply": {"type": "button_reply", "id": "prices"}},
        {"expect": "coffee", "reply": "thanks!"},
        {"expect": "what would you like"},  # a free text gets the menu again
    ])
    user.say("hello")
    assert user.wait_for_script()["mismatches"] == []


def test_a_day_later_the_window_is_closed(bot: str, gateway: Gateway, user: SimulatedUser, inbox: Inbox,
                                          clock: TestClock) -> None:
    """The bot answers the user; the inbox sees every event (statuses too) next to the bot."""
    user.say("hi")
    user.wait_for_message(type="interactive")
    clock.advance(hours=25)
    late = gateway.send_text(user.wa_id, "Still there?").message_id
    failed = inbox.wait_for(status="failed", message_id=late)
    assert failed.errors[0].code == 131047  # outside the 24-hour window only templates go through

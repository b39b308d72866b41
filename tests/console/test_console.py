"""The web console end to end, in a real headless Chromium driven by Selenium against
a real `openwaba serve`: chats with live ticks, the user's side (typing, taps, list
picks, files, reactions) reaching a real webhook receiver, failed deliveries replayed,
a phone-sized window, and access (wrong keys, another number's data, the partner key).

Nothing here reloads the page to see a change (the page's event stream brings it) and
nothing sleeps: every wait is a bounded WebDriverWait or receiver poll. Screenshots of
the main views are written to test-output/screenshots/.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from e2e.routing_support import PARTNER_KEY, partner_ok
from e2e.support import ALICE, API_KEY, Received, Receiver, Server, wait_until

from .conftest import PHONE, require_selenium
from .support import buttons_message, list_message, number_with_user, png

require_selenium()  # else the module fails to collect, saying why (or is skipped with OPENWABA_ALLOW_NO_BROWSER=1)

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402

from .page import Console, tid  # noqa: E402

pytestmark = pytest.mark.e2e


@pytest.fixture
def ui(page: WebDriver, console_server: Server) -> Console:
    return Console(page, console_server)


def inbound(receiver: Receiver, check: Any, what: str) -> Received:
    """The first webhook carrying a user's message that satisfies `check(message)`."""
    def found(requests: list[Received]) -> Received | None:
        return next((r for r in requests if r.message is not None and check(r.message)), None)
    return receiver.wait_for(found, what=what)


# --- (a) a message sent through the API, live, with its ticks ---------------------------------


def test_a_message_sent_through_the_api_appears_live_and_its_ticks_move_to_read(
    ui: Console, console_server: Server
) -> None:
    # The demo number: its three users said hello on first start, so their windows are open.
    # Delivered after 10 minutes and read after 20, on the server's manual clock: each step is seen.
    console_server.ok("PUT", f"/sandbox/users/{ALICE}/scenario", {"delays": {"delivered": 600, "read": 1200}})
    ui.login(API_KEY)
    for user in ("15551230001", "15551230002", "15551230003"):
        ui.shown(tid(f"chat-{user}"))
    ui.open_chat(ALICE)
    ui.message_with_text("Hi!")
    ui.mark()

    wamid = console_server.send_text(ALICE, "Your order #1042 has shipped and arrives tomorrow.")
    ui.message(wamid)  # appeared without a reload
    ui.status_of(wamid, "sent")
    console_server.advance_clock(600)
    ui.status_of(wamid, "delivered")
    console_server.advance_clock(600)
    bubble = ui.status_of(wamid, "read")
    ticks = bubble.find_element(By.CSS_SELECTOR, tid("ticks"))
    assert ticks.text == "✓✓" and "read" in (ticks.get_attribute("class") or "")
    assert ui.still_same_page()
    ui.screenshot("thread-ticks")

    ui.click(tid("nav-chats"))
    ui.wait(lambda d: "Your order #1042" in ui.find(tid(f"chat-{ALICE}")).text, "the chat list's preview")
    ui.screenshot("chats")
    console_server.ok("DELETE", f"/sandbox/users/{ALICE}/scenario")


# --- (b) the user's side, and the webhooks it produces -----------------------------------------


def test_what_the_user_does_in_the_console_reaches_the_webhook(
    ui: Console, console_server: Server, receiver: Receiver, tmp_path: Path
) -> None:
    number, wa_id = number_with_user(console_server)
    ui.login(number.key)

    # The number's webhook, set in Settings.
    ui.click(tid("nav-settings"))
    ui.type_into(tid("webhook-url"), receiver.url)
    ui.click(tid("webhook-save"))
    wait_until(lambda: number.ok("GET", "/v1/configs/webhook").get("url") == receiver.url, what="the webhook saved")
    ui.screenshot("settings")

    # The user types.
    ui.click(tid("nav-chats"))
    ui.open_chat(wa_id)
    ui.type_into(tid("composer-input"), "Hello from the console, is the shop open?")
    ui.click(tid("send"))
    said = inbound(receiver, lambda m: m.get("text", {}).get("body") == "Hello from the console, is the shop open?",
                   "the user's text")
    assert said.message is not None and said.message["from"] == wa_id
    ui.message_with_text("is the shop open?")

    # The user taps a reply button of the business's interactive message.
    asked = number.ok("POST", "/messages", buttons_message(wa_id, "Yes! Coffee or tea?",
                                                           [("coffee", "Coffee"), ("tea", "Tea")]))
    buttons_wamid = asked["messages"][0]["id"]
    ui.message(buttons_wamid)
    ui.click(tid("reply-button", id="tea"))
    tap = inbound(receiver, lambda m: m.get("type") == "interactive", "the button_reply webhook")
    assert tap.message is not None
    assert tap.message["interactive"] == {"type": "button_reply", "button_reply": {"id": "tea", "title": "Tea"}}
    assert tap.message["context"]["id"] == buttons_wamid

    # ... picks a row of a list message ...
    listed = number.ok("POST", "/messages", list_message(wa_id, "Which tea?", [
        ("green", "Green tea", "Sencha"), ("chai", "Chai latte", "Spiced, with milk")]))
    list_wamid = listed["messages"][0]["id"]
    ui.message(list_wamid)
    ui.click(tid("list-open"))
    ui.click(tid("list-row", id="chai"))
    pick = inbound(receiver, lambda m: (m.get("interactive") or {}).get("type") == "list_reply",
                   "the list_reply webhook")
    assert pick.message is not None
    assert pick.message["interactive"]["list_reply"] == {"id": "chai", "title": "Chai latte",
                                                         "description": "Spiced, with milk"}
    assert pick.message["context"]["id"] == list_wamid

    # ... reacts to the list message ...
    react = (f'//*[@data-wamid="{list_wamid}"]/ancestor::div[contains(concat(" ", @class, " "), " row ")][1]'
             '//*[@data-testid="react"]')
    ui.click(react, "the react button beside the list message", by=By.XPATH)
    ui.click(tid("emoji", emoji="👍"))
    reaction = inbound(receiver, lambda m: m.get("type") == "reaction", "the reaction webhook")
    assert reaction.message is not None
    assert reaction.message["reaction"] == {"message_id": list_wamid, "emoji": "👍"}
    ui.shown(tid("reaction"))

    # ... and sends a photo with a caption.
    photo = tmp_path / "menu.png"
    photo.write_bytes(png(64, 48))
    ui.find(tid("attach-input")).send_keys(str(photo))
    ui.type_into(tid("composer-input"), "the menu board")
    ui.click(tid("send"))
    image = inbound(receiver, lambda m: m.get("type") == "image", "the image webhook")
    assert image.message is not None
    assert image.message["image"]["caption"] == "the menu board"
    assert image.message["image"]["mime_type"] == "image/png"
    preview = '[data-testid="msg"][data-type="image"] img'
    ui.wait(lambda d: d.execute_script("const i = document.querySelector(arguments[0]); "
                                       "return i && i.complete && i.naturalWidth", preview) == 64,
            "the photo's preview (its bytes fetched with the key)")
    ui.screenshot("thread")


# --- (c) a failing receiver: attempts, fix, replay -----------------------------------------------


def test_failed_deliveries_are_shown_and_replayed_once_the_receiver_is_fixed(
    ui: Console, console_server: Server, receiver: Receiver
) -> None:
    number, wa_id = number_with_user(console_server)
    partner_ok(console_server, "PATCH", f"/channels/{number.id}", {"retry_horizon_seconds": 60})
    number.set_webhook(receiver.url)
    receiver.default_status = 500  # the receiver is broken
    first = number.user_says(wa_id, "first order")
    second = number.user_says(wa_id, "second order")
    receiver.wait_for(lambda rs: {r.message["id"] for r in rs if r.message and r.answered == 500} >= {first, second},
                      what="both messages refused with 500")
    deliveries = {d["event"]["wamid"]: d for d in number.ok("GET", "/deliveries")["deliveries"]}
    first_id, second_id = str(deliveries[first]["id"]), str(deliveries[second]["id"])
    destination = deliveries[first]["destination"]["name"]

    ui.login(number.key)
    ui.click(tid("nav-webhooks"))
    ui.shown(tid("delivery", id=first_id))
    console_server.advance_clock(61)  # past the number's 60 s horizon: dead-lettered
    ui.shown(tid("delivery", id=first_id, state="dead"), "the first delivery dead-lettered (live)")
    ui.shown(tid("delivery", id=second_id, state="dead"), "the second delivery dead-lettered (live)")
    ui.screenshot("webhooks")

    ui.click(tid("delivery", id=first_id))
    ui.shown(tid("attempt", status="500"), "the failed attempt with its status 500")
    assert not ui.find_all(tid("attempt", status="200"))
    assert first in ui.shown(tid("payload")).text
    ui.shown(tid("headers"))
    ui.screenshot("delivery")

    receiver.default_status = 200  # fixed
    ui.click(tid("replay"))
    ui.wait(lambda d: d.find_element(By.CSS_SELECTOR, tid("delivery-state")).text == "delivered",
            "the replayed delivery delivered")
    ui.shown(tid("attempt", status="200"))
    assert any(r.message and r.message["id"] == first and r.answered == 200 for r in receiver.requests)

    # Every dead delivery of the destination at once.
    ui.click(tid("nav-webhooks"))
    ui.shown(tid("delivery", id=second_id, state="dead"))
    ui.click(tid("replay-dead", destination=destination))
    ui.shown(tid("delivery", id=second_id, state="delivered"), "the other dead delivery replayed")
    assert any(r.message and r.message["id"] == second and r.answered == 200 for r in receiver.requests)


# --- (d) a phone-sized window ----------------------------------------------------------------------


def test_a_phone_sized_window_shows_the_chat_list_then_the_thread_with_a_back_button(
    ui: Console, console_server: Server, page: WebDriver
) -> None:
    number, wa_id = number_with_user(console_server)
    number.user_says(wa_id, "Hi, written on my phone")
    page.set_window_size(*PHONE)
    ui.login(number.key)
    ui.shown(tid(f"chat-{wa_id}"))
    assert_fits_the_width(page)
    ui.screenshot("phone-chats")

    ui.open_chat(wa_id)
    ui.message_with_text("written on my phone")
    ui.gone(tid(f"chat-{wa_id}"), "the chat list to give the screen to the thread")
    ui.shown(tid("composer-input"))
    assert_fits_the_width(page)
    ui.screenshot("phone-thread")

    ui.click(tid("back"))
    ui.shown(tid(f"chat-{wa_id}"), "the chat list again")
    ui.gone(tid("thread"))


def assert_fits_the_width(page: WebDriver) -> None:
    overflow = page.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow}px wider than the phone's screen"


# --- (e) access -------------------------------------------------------------------------------------


def test_a_wrong_key_is_refused(ui: Console) -> None:
    ui.open()
    ui.type_into(tid("key-input"), "definitely-not-a-key")
    ui.click(tid("login"))
    assert ui.error_text()
    assert not ui.find_all(tid("nav-chats"))
    ui.shown(tid("key-input"))


def test_another_numbers_data_never_appears(ui: Console, console_server: Server, receiver: Receiver) -> None:
    mine, my_user = number_with_user(console_server)
    theirs, their_user = number_with_user(console_server)
    mine.set_webhook(receiver.url)
    theirs.set_webhook(receiver.url)
    theirs.user_says(their_user, "their secret 7c1e")
    mine.user_says(my_user, "my own hello")
    their_ids = {str(d["id"]) for d in theirs.ok("GET", "/deliveries")["deliveries"]}
    assert their_ids

    ui.login(mine.key)
    ui.shown(tid(f"chat-{my_user}"))
    assert not ui.find_all(tid(f"chat-{their_user}"))
    ui.open_chat(my_user)
    ui.message_with_text("my own hello")

    ui.click(tid("nav-webhooks"))
    ui.wait(lambda d: d.find_elements(By.CSS_SELECTOR, tid("delivery")), "my deliveries")
    shown = {row.get_attribute("data-id") for row in ui.find_all(tid("delivery"))}
    my_ids = {str(d["id"]) for d in mine.ok("GET", "/deliveries")["deliveries"]}
    assert shown and shown <= my_ids and not shown & their_ids

    # Asking for their user or their delivery by URL shows an error, never their data.
    ui.driver.get(f"{console_server.url}/console#/chats/{their_user}")
    assert ui.error_text()
    ui.driver.get(f"{console_server.url}/console#/webhooks/{min(their_ids)}")
    assert ui.error_text()
    assert "their secret" not in ui.driver.page_source


def test_the_partner_key_picks_a_number_and_acts_as_it(ui: Console, console_server: Server) -> None:
    number, wa_id = number_with_user(console_server)
    number.user_says(wa_id, "Hello to whoever manages this number")
    ui.open()
    ui.type_into(tid("key-input"), PARTNER_KEY)
    ui.click(tid("login"))
    ui.click(tid(f"channel-{number.id}"), "the number in the partner's list")
    ui.shown(tid("nav-chats"))
    ui.live()
    ui.open_chat(wa_id)
    ui.message_with_text("whoever manages this number")
    ui.type_into(tid("composer-input"), "Answered through the partner key")
    ui.click(tid("send"))
    wait_until(lambda: any(m.get("text", {}).get("body") == "Answered through the partner key"
                           for m in number.ok("GET", f"/sandbox/users/{wa_id}/messages")["messages"]),
               what="the user's message, sent as the partner")


# --- settings: the sandbox's behaviour ------------------------------------------------------------


def test_failure_injection_switched_on_in_settings_fails_the_next_message(
    ui: Console, console_server: Server
) -> None:
    number, wa_id = number_with_user(console_server)
    number.user_says(wa_id, "hi")
    ui.login(number.key)
    ui.click(tid("nav-settings"))
    Select(ui.shown(tid("fail-code"))).select_by_value("131026")
    Select(ui.shown(tid("fail-mode"))).select_by_value("always")
    ui.click(tid("scenario-save"))
    wait_until(lambda: (number.ok("GET", "/sandbox/scenario")["scenario"].get("fail") or {}).get("code") == 131026,
               what="the scenario saved")

    ui.click(tid("nav-chats"))
    ui.open_chat(wa_id)
    wamid = number.send_text(wa_id, "This one will not arrive")
    ui.status_of(wamid, "failed")
    assert "Not delivered" in ui.shown(tid("msg-error")).text
    number.ok("DELETE", "/sandbox/scenario")

"""The console page in a real browser, driven through its `data-testid`s with bounded
waits (WebDriverWait polls; nothing sleeps)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException, TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from e2e.support import Server

from .conftest import SCREENSHOTS
from .support import WAIT

T = TypeVar("T")


def tid(name: str, **data: str) -> str:
    """A CSS selector for `data-testid=name` with `data-<key>=value` attributes."""
    extra = "".join(f'[data-{key}="{value}"]' for key, value in data.items())
    return f'[data-testid="{name}"]{extra}'


class Console:
    """The console page in the module's browser."""

    def __init__(self, driver: WebDriver, srv: Server) -> None:
        self.driver = driver
        self.srv = srv

    # --- waiting and finding ----------------------------------------------------------------
    def wait(self, check: Callable[[WebDriver], T | None], what: str, timeout: float = WAIT) -> T:
        """`check(driver)`'s first truthy answer, polled every 50 ms for at most `timeout` seconds."""
        waiter = WebDriverWait(self.driver, timeout, poll_frequency=0.05,
                               ignored_exceptions=(NoSuchElementException, StaleElementReferenceException))
        try:
            result = waiter.until(check)
        except TimeoutException:
            # Selenium's own message is a page of driver stack addresses: say what was awaited instead.
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what} (page {self.driver.current_url})") \
                from None
        assert result is not None  # until() only returns a truthy answer
        return result

    def find(self, selector: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, selector)

    def find_all(self, selector: str) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, selector)

    def shown(self, selector: str, what: str | None = None) -> WebElement:
        """The element, once it is on the page and visible."""
        def visible(d: WebDriver) -> WebElement | None:
            element = d.find_element(By.CSS_SELECTOR, selector)
            return element if element.is_displayed() else None
        return self.wait(visible, what or selector)

    def gone(self, selector: str, what: str | None = None) -> None:
        """Wait until no visible element matches."""
        self.wait(lambda d: not any(e.is_displayed() for e in d.find_elements(By.CSS_SELECTOR, selector)),
                  what or f"{selector} to disappear")

    def click(self, selector: str, what: str | None = None, by: str = By.CSS_SELECTOR) -> None:
        """Click the element once it is visible and enabled (retrying if it is redrawn meanwhile)."""
        def clicked(d: WebDriver) -> bool:
            element = d.find_element(by, selector)
            if not (element.is_displayed() and element.is_enabled()):
                return False
            element.click()
            return True
        self.wait(clicked, what or f"{selector} to click")

    def type_into(self, selector: str, text: str) -> None:
        element = self.shown(selector)
        element.clear()
        element.send_keys(text)

    def attribute(self, selector: str, name: str) -> str | None:
        return self.find(selector).get_attribute(name)

    # --- the page ---------------------------------------------------------------------------
    def open(self, path: str = "/console") -> None:
        """The console afresh: signed out (the key lives in sessionStorage), at the login form."""
        self.driver.get(self.srv.url + path)
        self.driver.execute_script("sessionStorage.clear()")
        self.driver.get(self.srv.url + path)
        self.shown(tid("key-input"), "the login form")

    def login(self, key: str) -> None:
        self.open()
        self.type_into(tid("key-input"), key)
        self.click(tid("login"))
        self.shown(tid("nav-chats"), "the console after signing in")
        self.live()

    def live(self) -> None:
        """The page's event stream is connected (changes from now on reach it)."""
        self.shown(tid("live", state="on"), "the live stream to connect")

    def mark(self) -> None:
        """Remember this document: `still_same_page()` proves no reload happened since."""
        self.driver.execute_script("window.__openwabaTestMark = 'kept'")

    def still_same_page(self) -> bool:
        return bool(self.driver.execute_script("return window.__openwabaTestMark === 'kept'"))

    def open_chat(self, wa_id: str) -> None:
        self.click(tid(f"chat-{wa_id}"), f"the chat with {wa_id}")
        self.shown(tid("thread"), f"the thread with {wa_id}")

    def message(self, wamid: str) -> WebElement:
        return self.shown(tid("msg", wamid=wamid), f"message {wamid} in the thread")

    def message_with_text(self, text: str) -> WebElement:
        def found(d: WebDriver) -> WebElement | None:
            return next((m for m in d.find_elements(By.CSS_SELECTOR, tid("msg")) if text in m.text), None)
        return self.wait(found, f"a message saying {text!r}")

    def status_of(self, wamid: str, status: str) -> WebElement:
        return self.shown(tid("msg", wamid=wamid, status=status), f"message {wamid} to be {status}")

    def error_text(self) -> str:
        return self.shown(tid("error"), "the error banner").text

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path

"""Fixtures for the web console's tests: one real `openwaba serve` (SQLite, manual
clock, partner API on) and one headless Chromium driven by Selenium per module.

The browser is Debian's `chromium` + `chromium-driver` (scripts/test installs them),
started from fixed paths: Selenium Manager never runs, so nothing is downloaded.
Without them the tests fail, unless OPENWABA_ALLOW_NO_BROWSER=1 (then they skip).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from e2e.conftest import DEFAULT_ENV, failed, receiver  # noqa: F401  (receiver: the e2e fixture, shared)
from e2e.routing_support import PARTNER_ENV
from e2e.support import Server, ServerFactory

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "test-output" / "screenshots"
DESKTOP = (1280, 900)
PHONE = (390, 844)
CHROMIUM = ("/usr/bin/chromium", "chromium", "chromium-browser")
CHROMEDRIVER = ("/usr/bin/chromedriver", "chromedriver")


@pytest.fixture(scope="module")
def console_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One gateway for the module; each test makes numbers of its own through the partner API."""
    factory = ServerFactory(tmp_path_factory.mktemp("console"), {**DEFAULT_ENV, **PARTNER_ENV})
    try:
        yield factory()
    finally:
        factory.close()


def _find(override: str, candidates: tuple[str, ...]) -> str | None:
    if os.environ.get(override):  # an explicit path is the only one tried
        candidates = (os.environ[override],)
    for candidate in candidates:
        found = shutil.which(candidate)
        if found:
            return found
    return None


def _missing(what: list[str]) -> None:
    reason = (f"the console's browser tests need {', '.join(what)}: scripts/test installs them "
              "(apt-get install chromium chromium-driver; pip install -e '.[test]')")
    if os.environ.get("OPENWABA_ALLOW_NO_BROWSER") == "1":
        pytest.skip(reason, allow_module_level=True)
    pytest.fail(reason)


def require_selenium() -> None:
    """At a browser test module's import: Selenium is there, or the module is skipped
    (OPENWABA_ALLOW_NO_BROWSER=1) or fails to collect, saying why."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        _missing(["selenium (PyPI)"])


def browser_paths() -> tuple[str, str]:
    """Chromium and chromedriver, or a failure (a skip with OPENWABA_ALLOW_NO_BROWSER=1) saying how to get them."""
    chromium = _find("OPENWABA_CHROMIUM", CHROMIUM)
    driver = _find("OPENWABA_CHROMEDRIVER", CHROMEDRIVER)
    missing = [name for name, path in (("chromium", chromium), ("chromedriver", driver)) if not path]
    if missing or not chromium or not driver:
        _missing(missing)
    assert chromium and driver
    return chromium, driver


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    """A headless Chromium for the module (window 1280x900), with its console log kept."""
    chromium, driver_path = browser_paths()
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must never fetch a driver or a browser
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    profile = tempfile.mkdtemp(prefix="openwaba-chromium-")
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--no-first-run", "--disable-extensions", "--disable-background-networking",
                     f"--window-size={DESKTOP[0]},{DESKTOP[1]}", f"--user-data-dir={profile}", "--lang=en-US"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    driver.set_window_size(*DESKTOP)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def page(browser: WebDriver, request: pytest.FixtureRequest) -> Iterator[WebDriver]:
    """The module's browser, desktop-sized; on failure the page's console log and a screenshot are kept."""
    browser.set_window_size(*DESKTOP)
    failure_shot = SCREENSHOTS / f"failed-{request.node.name}.png"
    failure_shot.unlink(missing_ok=True)  # from an earlier run
    yield browser
    if failed(request):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(failure_shot))
        print("--- browser console ---\n" + "\n".join(_log_lines(browser)))
        print(f"--- page at failure ({browser.current_url}) ---\n{browser.page_source[:20000]}")


def _log_lines(browser: Any) -> list[str]:
    try:
        return [f"{e.get('level')} {e.get('message')}" for e in browser.get_log("browser")]
    except Exception as exc:  # a driver without logs must not hide the test's own failure
        return [f"(no browser log: {exc})"]

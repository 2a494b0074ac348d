"""The dashboard in a real browser (Debian's headless Chromium through Selenium and chromium-driver),
against sparkd in the test bed with fake engines: what a person sees and clicks.

Screenshots of each page land in docs/dashboard/, for docs/dashboard.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from testbed import PrivateSystemd

from tests.system.conftest import ROOT
from tests.system.page import bars, choose, chromium, press, row_of, text, until
from tests.system.sparkd_bed import KEY, URL, chat

SHOTS = ROOT / "docs" / "dashboard"


@pytest.fixture(scope="module")
def browser(sparkd: PrivateSystemd) -> Iterator[WebDriver]:
    with chromium() as driver:
        yield driver


def shot(driver: WebDriver, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SHOTS / f"{name}.png"))


def sign_in(driver: WebDriver, key: str) -> None:
    field = driver.find_element(By.ID, "login-key")
    field.clear()
    field.send_keys(key)
    press(driver, "#login-form button", "the sign-in button")


def tab(driver: WebDriver, name: str) -> None:
    press(driver, f'#tabs [data-tab="{name}"]', f"the {name} tab")


def test_a_person_signs_in_watches_models_start_chats_and_signs_out(browser: WebDriver) -> None:
    browser.get(URL + "/ui/")
    until(browser, "the login form", lambda d: d.find_element(By.ID, "login").is_displayed())
    shot(browser, "login")
    sign_in(browser, "not-a-key")
    until(browser, "the refusal", lambda d: "not an API key" in text(d, "#login-error"))

    sign_in(browser, KEY)
    until(browser, "the models", lambda d: "fake-a" in row_of(d, "fake-a"))
    assert browser.get_cookie("sparkd_session")["httpOnly"] is True  # type: ignore[index]

    # Start a model and watch its state change, as the events arrive.
    press(browser, '#model-rows tr[data-model="fake-b"] button', "fake-b's Start button")
    until(browser, "fake-b ready", lambda d: "ready" in row_of(d, "fake-b"), 60)
    shot(browser, "models")

    # Its log lines arrive on the logs page.
    tab(browser, "logs")
    choose(browser, "#logs-unit", "fake-b", "fake-b among the log units")
    until(browser, "fake-b's log lines", lambda d: "sparkd-fake-b" in text(d, "#log-lines"))
    shot(browser, "logs")

    # A playground message gets a streamed answer.
    tab(browser, "playground")
    choose(browser, "#chat-model", "fake-b", "fake-b among the playground's models")
    # Another client's request swaps the tenant: the page redraws, and the pick stays.
    chat("fake-a")
    until(browser, "fake-a ready", lambda d: "ready" in row_of(d, "fake-a"), 60)
    assert browser.execute_script("return document.getElementById('chat-model').value") == "fake-b"
    browser.find_element(By.ID, "chat-input").send_keys("Hello there")
    press(browser, "#chat-form button", "the Send button")
    until(browser, "the answer", lambda d: text(d, "#chat-answer").strip() != "")
    shot(browser, "playground")

    # The activity chart gains the requests, and the table lists them.
    tab(browser, "activity")
    until(browser, "a bar for the requests", lambda d: any(bar > 0 for bar in bars(d)))
    until(browser, "fake-a in the last requests", lambda d: "fake-a" in text(d, "#request-rows"))
    shot(browser, "activity")
    tab(browser, "memory")
    shot(browser, "memory")

    press(browser, "#logout", "the sign-out button")
    until(browser, "the login again", lambda d: d.find_element(By.ID, "login").is_displayed())
    assert browser.get_cookie("sparkd_session") is None
    browser.get(URL + "/sparkd/status")
    assert "invalid_api_key" in browser.page_source


def test_the_screenshots_are_what_docs_dashboard_md_shows() -> None:
    text = (ROOT / "docs" / "dashboard.md").read_text()
    for name in ("login", "models", "activity", "logs", "memory", "playground"):
        assert f"dashboard/{name}.png" in text
        assert Path(SHOTS / f"{name}.png").is_file()

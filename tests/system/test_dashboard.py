"""The dashboard in a real browser (Debian's headless Chromium through Selenium and chromium-driver),
against sparkd in the test bed with fake engines: what a person sees and clicks.

Screenshots of each page land in docs/dashboard/, for docs/dashboard.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select, WebDriverWait
from testbed import PrivateSystemd

from tests.system.conftest import ROOT
from tests.system.sparkd_bed import KEY, URL, chat

SHOTS = ROOT / "docs" / "dashboard"


@pytest.fixture(scope="module")
def browser(sparkd: PrivateSystemd) -> Iterator[WebDriver]:
    options = Options()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def until(driver: WebDriver, what: str, condition: object, timeout: float = 30) -> object:
    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(condition, message=what)  # type: ignore[arg-type]


def row_of(driver: WebDriver, model: str) -> str:
    rows = driver.find_elements(By.CSS_SELECTOR, f'#model-rows tr[data-model="{model}"]')
    return rows[0].text if rows else ""


def shot(driver: WebDriver, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SHOTS / f"{name}.png"))


def bars(driver: WebDriver) -> list[int]:
    found = driver.find_elements(By.CSS_SELECTOR, "#requests-chart rect")
    return [int(b.get_attribute("data-count") or 0) for b in found]


def text_of(driver: WebDriver, element_id: str) -> str:
    return str(driver.find_element(By.ID, element_id).text)


def sign_in(driver: WebDriver, key: str) -> None:
    field = driver.find_element(By.ID, "login-key")
    field.clear()
    field.send_keys(key)
    driver.find_element(By.CSS_SELECTOR, "#login-form button").click()


def tab(driver: WebDriver, name: str) -> None:
    driver.find_element(By.CSS_SELECTOR, f'#tabs [data-tab="{name}"]').click()


def test_a_person_signs_in_watches_models_start_chats_and_signs_out(browser: WebDriver) -> None:
    browser.get(URL + "/ui/")
    until(browser, "the login form", lambda d: d.find_element(By.ID, "login").is_displayed())
    shot(browser, "login")
    sign_in(browser, "not-a-key")
    until(browser, "the refusal", lambda d: "not an API key" in d.find_element(By.ID, "login-error").text)

    sign_in(browser, KEY)
    until(browser, "the models", lambda d: "fake-a" in row_of(d, "fake-a"))
    assert browser.get_cookie("sparkd_session")["httpOnly"] is True  # type: ignore[index]

    # Start a model and watch its state change, as the events arrive.
    browser.find_element(By.CSS_SELECTOR, '#model-rows tr[data-model="fake-b"] button').click()
    until(browser, "fake-b ready", lambda d: "ready" in row_of(d, "fake-b"), 60)
    shot(browser, "models")

    # Its log lines arrive on the logs page.
    tab(browser, "logs")
    Select(browser.find_element(By.ID, "logs-unit")).select_by_value("fake-b")
    until(browser, "fake-b's log lines", lambda d: "sparkd-fake-b" in d.find_element(By.ID, "log-lines").text)
    shot(browser, "logs")

    # A playground message gets a streamed answer.
    tab(browser, "playground")
    Select(browser.find_element(By.ID, "chat-model")).select_by_value("fake-b")
    browser.find_element(By.ID, "chat-input").send_keys("Hello there")
    browser.find_element(By.CSS_SELECTOR, "#chat-form button").click()
    until(browser, "the answer", lambda d: d.find_element(By.ID, "chat-answer").text.strip() != "")
    shot(browser, "playground")

    # The activity chart gains the requests, and the table lists them.
    chat("fake-a")
    tab(browser, "activity")
    until(browser, "a bar for the requests", lambda d: any(bar > 0 for bar in bars(d)))
    until(browser, "fake-a in the last requests", lambda d: "fake-a" in text_of(d, "request-rows"))
    shot(browser, "activity")
    tab(browser, "memory")
    shot(browser, "memory")

    browser.find_element(By.ID, "logout").click()
    until(browser, "the login again", lambda d: d.find_element(By.ID, "login").is_displayed())
    assert browser.get_cookie("sparkd_session") is None
    browser.get(URL + "/sparkd/status")
    assert "invalid_api_key" in browser.page_source


def test_the_screenshots_are_what_docs_dashboard_md_shows() -> None:
    text = (ROOT / "docs" / "dashboard.md").read_text()
    for name in ("login", "models", "activity", "logs", "memory", "playground"):
        assert f"dashboard/{name}.png" in text
        assert Path(SHOTS / f"{name}.png").is_file()

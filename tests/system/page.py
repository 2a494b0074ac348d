"""Reading and working a live page in Debian's headless Chromium, the way a person would.

The dashboard redraws its tables and charts as events arrive, so an element found in one
WebDriver round trip may be gone by the next. Every read here is one script, which the
page cannot interleave with its own redraws (a page runs one script at a time). A click
goes where the element shows, as a person's does, not to an element found earlier.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.actions.action_builder import ActionBuilder
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait


@contextmanager
def chromium() -> Iterator[WebDriver]:
    options = Options()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def until(
    driver: WebDriver, what: str, condition: Callable[[WebDriver], object], timeout: float = 30
) -> object:
    """Waits for `condition` to be truthy; a timeout fails with `what`."""
    return WebDriverWait(
        driver, timeout, poll_frequency=0.1, ignored_exceptions=(StaleElementReferenceException,)
    ).until(condition, message=what)


def text(driver: WebDriver, css: str) -> str:
    """The visible text of the first element matching `css`, or "" when there is none."""
    found = driver.execute_script(
        "const e = document.querySelector(arguments[0]); return e ? e.innerText : '';", css
    )
    return str(found)


def row_of(driver: WebDriver, model: str) -> str:
    return text(driver, f'#model-rows tr[data-model="{model}"]')


def bars(driver: WebDriver) -> list[int]:
    """The request counts the activity chart draws, one per bar."""
    counts = driver.execute_script(
        "return [...document.querySelectorAll('#requests-chart rect')]"
        ".map((bar) => Number(bar.getAttribute('data-count') || 0));"
    )
    return [int(count) for count in counts]


def press(driver: WebDriver, css: str, what: str) -> None:
    """Clicks, with the pointer, where the element matching `css` shows on screen.

    Where it shows is read in one script; the click then lands on whatever the page has
    there, as a person's does, so a redraw that put a new button in the same place is
    no failure."""
    where = until(driver, f"{what} on screen", lambda d: d.execute_script(_ON_SCREEN, css))
    assert isinstance(where, list)
    x, y = (int(v) for v in where)
    actions = ActionBuilder(driver)
    actions.pointer_action.move_to_location(x, y).click()  # type: ignore[no-untyped-call]
    actions.perform()


# The element's centre in the viewport, scrolled into view first; null while absent or hidden.
_ON_SCREEN = """
const element = document.querySelector(arguments[0]);
if (!element || element.getClientRects().length === 0) return null;
element.scrollIntoView({ block: "center", inline: "center" });
const box = element.getBoundingClientRect();
return [Math.floor(box.left + box.width / 2), Math.floor(box.top + box.height / 2)];
"""


def choose(driver: WebDriver, css: str, value: str, what: str) -> None:
    """Picks `value` in the <select> matching `css` and tells the page, as picking from the list does."""
    until(driver, what, lambda d: d.execute_script(_CHOOSE, css, value))


_CHOOSE = """
const select = document.querySelector(arguments[0]);
if (!select || ![...select.options].some((option) => option.value === arguments[1])) return false;
select.value = arguments[1];
select.dispatchEvent(new Event("input", { bubbles: true }));
select.dispatchEvent(new Event("change", { bubbles: true }));
return true;
"""

"""The page helpers hold up against a page that redraws all the time, as the dashboard does
while events arrive: reads never see a replaced element, and actions land."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions

from tests.system.page import bars, choose, chromium, press, row_of, until

# Redraws the table, the chart and the <select> in a tight loop of tasks, each time with
# new elements, and counts clicks on the (ever new) Start button.
RESTLESS = """<!doctype html><html><body>
<table><tbody id="model-rows"></tbody></table><svg id="requests-chart"></svg><select id="pick"></select>
<script>
let clicks = 0, draws = 0;
const channel = new MessageChannel();
function draw() {
  draws += 1;
  const row = document.createElement("tr");
  row.dataset.model = "m";
  row.innerHTML = "<td>m</td><td>ready</td><td><button>Start</button></td>";
  row.querySelector("button").onclick = () => { clicks += 1; };
  document.getElementById("model-rows").replaceChildren(row);
  const chart = document.getElementById("requests-chart");
  chart.innerHTML = '<rect data-count="3"></rect><rect data-count="0"></rect>';
  const pick = document.getElementById("pick"), picked = pick.value;
  pick.innerHTML = '<option value="a">a</option><option value="b">b</option>';
  if (picked) pick.value = picked;
  channel.port2.postMessage(0);
}
channel.port1.onmessage = draw;
draw();
</script></body></html>"""


@pytest.fixture(scope="module")
def restless() -> Iterator[WebDriver]:
    with chromium() as driver:
        driver.get("data:text/html;charset=utf-8," + quote(RESTLESS))
        yield driver


def test_the_page_really_replaces_what_a_round_trip_found(restless: WebDriver) -> None:
    found = restless.find_element(By.CSS_SELECTOR, '#model-rows tr[data-model="m"]')
    until(restless, "the row replaced", expected_conditions.staleness_of(found), 5)


def test_reads_see_whole_elements_however_often_the_page_redraws(restless: WebDriver) -> None:
    for _ in range(200):
        assert row_of(restless, "m").split() == ["m", "ready", "Start"]
        assert bars(restless) == [3, 0]
    assert row_of(restless, "absent") == ""


def test_actions_land_on_the_element_the_redraw_put_in_place(restless: WebDriver) -> None:
    for _ in range(20):
        press(restless, '#model-rows tr[data-model="m"] button', "the Start button")
    assert restless.execute_script("return clicks;") == 20
    choose(restless, "#pick", "b", "b among the choices")
    assert restless.execute_script("return document.getElementById('pick').value;") == "b"

"""Every page of the explorer passes axe-core with no serious or critical violation, in headless
Chromium, on the bundled corpus: the explorer as it opens and with a paper's details and its tag
editor open, the reproductions page, the gaps and clusters page and the reader study's start."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By

from tests import axe
from tests.browser import LiveServer, bundled_copy, wait_for
from tests.conftest import entry

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    live = LiveServer([bundled_copy(tmp_path_factory.mktemp("accessibility"))])
    yield live
    live.stop()


def settled(driver, selector: str) -> None:
    """The page has drawn ``selector`` and Dash has no callback left in flight."""
    wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, selector), timeout=30, message=selector)
    wait_for(lambda: driver.execute_script("return !document.querySelector('[data-dash-is-loading=\"true\"]')"),
             message="the callbacks")


PAGES = {"explorer": ("/", "#ex-graph .js-plotly-plot"),
         "explorer with a paper's details": ("/?paper=Chuquicusma2018Fool", "#ex-details-title"),
         "reproductions": ("/reproductions", "#repro-summary"),
         "gaps and clusters": ("/gaps", "#gp-heatmap .js-plotly-plot"),
         "reader study": ("/reader-study", "#rs-study")}


@pytest.mark.parametrize("name", list(PAGES))
def test_no_serious_or_critical_violation(driver, server, name):
    path, ready = PAGES[name]
    driver.set_window_size(1400, 900)
    driver.get(server.url + path)
    settled(driver, ready)
    found = axe.violations(driver)
    assert not axe.blocking(found), "\n".join(axe.blocking(found))


def test_no_serious_or_critical_violation_with_an_upload_preview_and_an_open_dropdown(driver, server):
    driver.set_window_size(1400, 900)
    driver.get(server.url + "/")
    settled(driver, "#ex-graph .js-plotly-plot")
    driver.find_element(By.ID, "ex-paste").send_keys(entry("Preview2026Axe", "A paper to preview", 2026))
    driver.find_element(By.ID, "ex-preview").click()
    settled(driver, "#ex-add-result table.preview")
    driver.find_element(By.ID, "ex-edges").click()  # the edge mode's dropdown, open
    settled(driver, ".dash-dropdown-content, [role=listbox] [role=option]")
    found = axe.violations(driver)
    assert not axe.blocking(found), "\n".join(axe.blocking(found))


def test_the_check_is_the_pinned_axe_and_finds_a_violation_where_there_is_one(driver, server):
    """The check is live: the pinned axe-core runs, and an image without alternative text and a button
    without a name fail it."""
    driver.get(server.url + "/")
    settled(driver, "#ex-graph .js-plotly-plot")
    axe.violations(driver)  # injects it
    assert driver.execute_script("return axe.version") == axe.pinned()
    driver.execute_script("document.body.insertAdjacentHTML('beforeend', "
                          "'<img src=\"data:,\" id=\"bad-img\"><button id=\"bad-button\"></button>')")
    ids = {v["id"] for v in axe.violations(driver) if v["impact"] in axe.BLOCKING}
    assert {"image-alt", "button-name"} <= ids

"""Every page of the explorer passes axe-core with no serious or critical violation, in headless
Chromium, on the bundled corpus: the explorer as it opens and with a paper's details and its tag
editor open, the tag editor warning of a typo with an unsaved draft and its suggestions, the reproductions
page, the gaps and clusters page, and the reader study at its start and half way, with an answer refused."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By

from tests import axe
from tests.browser import LiveServer, bundled_copy, wait_for
from tests.conftest import entry
from tests.test_app_reader_study import answer_one

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


def test_no_serious_or_critical_violation_in_the_tag_editor_with_a_warning_a_draft_and_suggestions(driver, server):
    driver.set_window_size(1400, 900)
    driver.get(server.url + "/?paper=Beck2016SurVis")
    settled(driver, "#ex-tags-input")
    box = driver.find_element(By.ID, "ex-tags-input")
    box.send_keys(", modalty:CT")  # never saved (no Enter): the corpus stays as it is for the other tests
    wait_for(lambda: "did you mean" in driver.find_element(By.ID, "ex-tags-check").text, message="the warning")
    driver.get(server.url + "/?paper=Yi2019GANReview")
    settled(driver, "#ex-details-title")
    driver.get(server.url + "/?paper=Beck2016SurVis")  # back: the unsaved edit is kept, and said so
    wait_for(lambda: "Unsaved edits" in driver.find_element(By.ID, "ex-tags-draft").text, message="the draft")
    driver.find_element(By.ID, "ex-tags-input").send_keys(", modality:")  # the declared values offered
    wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "#ex-tags-options option"), message="the suggestions")
    wait_for(lambda: "did you mean" in driver.find_element(By.ID, "ex-tags-check").text, message="the warning")
    found = axe.violations(driver)
    assert not axe.blocking(found), "\n".join(axe.blocking(found))
    driver.execute_script("sessionStorage.clear()")


def test_no_serious_or_critical_violation_half_way_through_the_reader_study(driver, server, study):
    from app import reader_study_views as rv

    key = next(f.key for f in rv.find_studies() if f.folder == study.folder)
    driver.set_window_size(1400, 900)
    driver.get(server.url + f"/reader-study?study={key}")
    wait_for(lambda: driver.find_element(By.ID, "rs-reader"), message="the name box").send_keys("Reader A\n")
    wait_for(lambda: driver.find_element(By.ID, "rs-begin").is_displayed(), message="the instructions")
    driver.find_element(By.ID, "rs-begin").click()
    for n in range(1, 4):
        answer_one(driver, study, f"{n} of 6")
    wait_for(lambda: driver.find_element(By.ID, "rs-progress").text == "4 of 6", message="the fourth image")
    driver.find_element(By.ID, "rs-next").click()  # no answer given: refused, in an alert
    wait_for(lambda: "both questions" in driver.find_element(By.ID, "rs-answer-error").text, message="the refusal")
    found = axe.violations(driver)
    assert not axe.blocking(found), "\n".join(axe.blocking(found))

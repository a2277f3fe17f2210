"""The reader study page in headless Chromium: one reader answers a tiny study, leaves, comes back, finishes."""

from __future__ import annotations

import base64
import json
import shutil

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from reproductions.common import reader_study as rs
from tests.browser import LiveServer, chrome, wait_for
from tests.conftest import REPO

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("reader-study-corpus") / "bib"
    shutil.copytree(REPO / "bib", folder, ignore=shutil.ignore_patterns("*.lock", "*.bak"))
    live = LiveServer([folder / "corpus.bib"])
    yield live
    live.stop()


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    browser = chrome(tmp_path_factory.mktemp("reader-study-downloads"))
    yield browser
    browser.quit()


def shown_item(d, study) -> str:
    """Which item the page shows, found by its PNG bytes (the page itself never says)."""
    src = d.find_element(By.ID, "rs-image").get_attribute("src")
    data = base64.b64decode(src.split(",", 1)[1])
    return next(i for i in study.ids if study.image_path(i).read_bytes() == data)


def judge(study, item) -> bool:
    """The reader's rule: every real patch judged real, and the first generated one (by id) too."""
    return item.source == "real" or item.id == min(i.id for i in study.items if i.source == "generated")


def answer_one(d, study, progress: str) -> str:
    wait_for(lambda: d.find_element(By.ID, "rs-progress").text == progress, message=f"progress {progress}")
    item = study.item(shown_item(d, study))
    real = judge(study, item)
    d.find_element(By.CSS_SELECTOR, f"#rs-real input[value={'real' if real else 'generated'}]").click()
    d.find_element(By.CSS_SELECTOR, f"#rs-label input[value={item.label}]").click()
    d.find_element(By.ID, "rs-next").click()
    return item.id


def test_a_reader_answers_every_image_and_sees_frr_and_trr(driver, server, study, tmp_path):
    page = driver
    page.get(server.url + "/reproductions")
    wait_for(lambda: page.find_element(By.ID, "repro-reader-study"), message="the link in paper2's section").click()
    wait_for(lambda: page.find_element(By.ID, "rs-study"), message="the reader study page")
    assert "/reader-study" in page.current_url
    # pick the test's study (committed studies may come first)
    from app import reader_study_views as rv

    key = next(f.key for f in rv.find_studies() if f.folder == study.folder)
    page.get(server.url + f"/reader-study?study={key}")
    box = wait_for(lambda: page.find_element(By.ID, "rs-reader"), message="the name box")
    box.send_keys("../evil")
    page.find_element(By.ID, "rs-start").click()
    wait_for(lambda: "only letters" in page.find_element(By.ID, "rs-setup-error").text, message="the name error")
    box.send_keys(Keys.CONTROL, "a", Keys.DELETE)  # clear() would bypass React's onChange
    box.send_keys("Reader 1")
    page.find_element(By.ID, "rs-start").click()

    intro = wait_for(lambda: page.find_element(By.ID, "rs-instructions").text, message="the instructions")
    assert "phantom (simulated) nodules" in intro and "blinded" in intro and "6 images" in intro
    page.find_element(By.ID, "rs-begin").click()
    order = rs.reading_order(study, "Reader 1")
    wait_for(lambda: page.find_element(By.ID, "rs-image").is_displayed(), message="the first image")
    # nothing in the page says which is which: no item id, no truth field
    source = page.page_source
    assert '"source"' not in source and "true_label" not in source and order[0] not in source
    assert page.find_element(By.ID, "rs-image").value_of_css_property("image-rendering") == "pixelated"

    # Next without both answers is refused
    page.find_element(By.CSS_SELECTOR, "#rs-real input[value=real]").click()
    page.find_element(By.ID, "rs-next").click()
    wait_for(lambda: "both questions" in page.find_element(By.ID, "rs-answer-error").text, message="refusal")
    page.find_element(By.CSS_SELECTOR, "#rs-real input[value=real]").click()

    seen = [answer_one(page, study, "1 of 6"), answer_one(page, study, "2 of 6")]
    answers_file = tmp_path / "answers" / "paper2" / "Reader 1.json"
    wait_for(lambda: len(json.loads(answers_file.read_text())["answers"]) == 2, message="two saved answers")

    # the reader leaves and comes back: the same order, resumed at the third image
    page.get(server.url + f"/reader-study?study={key}")
    wait_for(lambda: page.find_element(By.ID, "rs-reader"), message="the name box").send_keys("Reader 1\n")
    welcome = wait_for(lambda: page.find_element(By.ID, "rs-welcome").text, message="the welcome back")
    assert "answered 2 of 6" in welcome
    page.find_element(By.ID, "rs-begin").click()
    for n in range(3, 7):
        seen.append(answer_one(page, study, f"{n} of 6"))
    assert seen == order
    done = wait_for(lambda: page.find_element(By.ID, "rs-done-text").text, message="the end")
    assert "all 6 images" in done

    record = json.loads(answers_file.read_text())
    assert record["reader"] == "Reader 1" and record["study"] == "paper2"
    assert [a["id"] for a in record["answers"]] == order
    assert all(a["real"] == judge(study, study.item(a["id"])) for a in record["answers"])
    assert all(a["label"] == study.item(a["id"]).label and a["seconds"] >= 0 for a in record["answers"])

    page.find_element(By.ID, "rs-to-results").click()
    table = wait_for(lambda: page.find_element(By.ID, "rs-scores"), message="the results table")
    assert page.find_element(By.CSS_SELECTOR, "#rs-scores .rs-reader").text == "Reader 1"
    assert page.find_element(By.CSS_SELECTOR, "#rs-scores .rs-frr").text == "33.3% (1 of 3)"
    assert page.find_element(By.CSS_SELECTOR, "#rs-scores .rs-trr").text == "100.0% (3 of 3)"
    assert page.find_element(By.CSS_SELECTOR, "#rs-scores .rs-accuracy").text == "83.3%"
    assert page.find_element(By.CSS_SELECTOR, "#rs-scores .rs-label-accuracy").text == "100.0%"
    assert "finished" in table.text
    severe = [e for e in page.get_log("browser") if e["level"] == "SEVERE"]
    assert not severe, severe


def test_the_navigation_links_to_the_page_and_a_partial_reader_shows_no_scores(driver, server, study, tmp_path):
    from app import reader_study_views as rv

    rs.record_answer(study, "Half", rs.reading_order(study, "Half")[0], True, "benign", 1.0)
    driver.get(server.url + "/")
    wait_for(lambda: driver.find_element(By.ID, "nav-reader-study"), message="the navigation").click()
    wait_for(lambda: driver.find_element(By.ID, "rs-study"), message="the page")
    key = next(f.key for f in rv.find_studies() if f.folder == study.folder)
    driver.get(server.url + f"/reader-study?study={key}&view=results")
    row = wait_for(lambda: driver.find_element(By.CSS_SELECTOR, "#rs-scores tr.partial"), message="the partial row")
    assert "1 of 6" in row.text and "in progress" in row.text and "%" not in row.text

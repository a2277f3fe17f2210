"""The detail panel's tag editor: it warns about what bib/tags.toml does not declare, offers the
declared categories and values as one types, saves on Enter, and keeps an unsaved edit when
another paper is opened; the pure parts, then in headless Chromium."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from app import views
from app.filters import FilterState
from app.interactions import drafts_after_typing, render, unsaved_draft
from app.state import ExplorerState
from survey.corpus import load_corpus
from survey.tags import Vocabulary, parse_keywords
from survey.validate import validate_table
from tests.browser import LiveServer, bundled_copy, chrome, wait_for
from tests.conftest import REPO, SEED_BIB, entry

VOCABULARY = Vocabulary.load(REPO / "bib" / "tags.toml")


def test_undeclared_categories_and_values_are_named_with_the_closest_declared_one():
    found = VOCABULARY.unknown(parse_keywords("modalty:CT, modality:CTT, method:GAN, modality:MRI")[0])
    assert [code for code, _ in found] == ["unknown-category", "unknown-tag"]
    assert "'modalty' is not declared in tags.toml (did you mean 'modality'?)" in found[0][1]
    assert "'modality:CTT' is not in the vocabulary of 'modality' (did you mean 'CT'?)" in found[1][1]
    assert VOCABULARY.unknown(parse_keywords("colour:red")[0])[0][1].count("did you mean") == 0
    assert Vocabulary().unknown({"anything": ["goes"]}) == []  # no vocabulary: nothing to check against


def test_validate_says_the_same_as_the_editor(tmp_path):
    (tmp_path / "tags.toml").write_bytes((REPO / "bib" / "tags.toml").read_bytes())
    bib = tmp_path / "refs.bib"
    bib.write_text(entry("A2020", "One", keywords="{modalty:CT}"), encoding="utf-8")
    corpus = load_corpus([bib])
    issues = [i for i in validate_table(corpus.table, corpus.vocabulary) if i.code == "unknown-category"]
    assert len(issues) == 1 and "did you mean 'modality'?" in issues[0].message


def test_completions_finish_the_tag_being_typed():
    assert VOCABULARY.completions("type:method, mod") == ["type:method, modality:"]
    offered = VOCABULARY.completions("type:method; modality:M")
    assert offered == ["type:method; modality:MRI"]  # the user's own separator kept
    assert "modality:CT, modality:CT" not in VOCABULARY.completions("modality:CT, modality:")  # already there
    assert len(VOCABULARY.completions("")) == len(VOCABULARY.categories)
    assert VOCABULARY.completions("nothing:like this") == []


def test_the_editor_holds_a_draft_and_says_so():
    snap = ExplorerState([SEED_BIB]).snapshot()
    row = snap.by_key.loc["Beck2016SurVis"]
    saved = views.saved_tags(row)
    assert unsaved_draft(row, saved) is None and unsaved_draft(row, None) is None
    reordered = ", ".join(reversed(saved.split(", ")))
    assert unsaved_draft(row, reordered) is None  # the same tags: nothing unsaved
    edited = saved + ", modalty:CT"
    drafts = drafts_after_typing({"Other": "x"}, "Beck2016SurVis", row, edited)
    assert drafts == {"Other": "x", "Beck2016SurVis": edited}
    assert drafts_after_typing(drafts, "Beck2016SurVis", row, saved) == {"Other": "x"}
    panel = str(render(snap, FilterState(paper="Beck2016SurVis"), drafts=drafts)["details"])
    assert edited in panel and "Unsaved edits of these tags" in panel and "did you mean 'modality'?" in panel
    clean = str(render(snap, FilterState(paper="Beck2016SurVis"))["details"])
    assert "Unsaved edits" not in clean and "did you mean" not in clean


@pytest.mark.browser
def test_the_tag_editor_in_the_browser(tmp_path):
    bib = bundled_copy(tmp_path)
    server = LiveServer([bib])
    driver = chrome()
    try:
        driver.get(server.url + "/?paper=Beck2016SurVis")
        box = wait_for(lambda: driver.find_element(By.ID, "ex-tags-input"), message="the tag editor")
        saved = box.get_attribute("value")
        box.send_keys(", modalty:CT")
        check = lambda: driver.find_element(By.ID, "ex-tags-check").text  # noqa: E731
        wait_for(lambda: "did you mean 'modality'?" in check(), message="the warning about a typo")
        box.send_keys(Keys.BACKSPACE * len("modalty:CT") + "modality:")
        options = lambda: [o.get_attribute("value") for o in driver.find_elements(By.CSS_SELECTOR, "#ex-tags-options option")]  # noqa: E731
        wait_for(lambda: f"{saved}, modality:CT" in options(), message="the declared values offered")
        wait_for(lambda: check() == "" or "modality:" not in check(), message="no warning for a category being typed")
        box.send_keys("CT")
        wait_for(lambda: "modality:CT" in (driver.execute_script("return sessionStorage.getItem('ex-tags-drafts')") or ""),
                 message="the edit kept as a draft")
        # another paper, and back: the unsaved edit is kept and said so
        driver.get(server.url + "/?paper=Yi2019GANReview")
        wait_for(lambda: driver.find_element(By.ID, "ex-details-title").text.startswith("Generative"), message="another paper")
        driver.get(server.url + "/?paper=Beck2016SurVis")
        box = wait_for(lambda: driver.find_element(By.ID, "ex-tags-input"), message="the editor again")
        wait_for(lambda: box.get_attribute("value") == f"{saved}, modality:CT", message="the draft kept")
        assert "Unsaved edits" in driver.find_element(By.ID, "ex-tags-draft").text
        box.send_keys(Keys.ENTER)  # Enter saves
        wait_for(lambda: driver.find_element(By.ID, "ex-tags-status").text == "Saved the tags of [Beck2016SurVis].",
                 message="the save on Enter")
        assert load_corpus([bib]).table.set_index("key").at["Beck2016SurVis", "tags"]["modality"] == ["CT"]
        wait_for(lambda: not driver.find_elements(By.CSS_SELECTOR, "#ex-tags-draft") or
                 driver.find_element(By.ID, "ex-tags-draft").text == "", message="no draft once saved")
        # a typo saved all the same, said in the status; Revert brings the saved tags back
        box = driver.find_element(By.ID, "ex-tags-input")
        box.send_keys(", tsk:x")
        wait_for(lambda: driver.find_element(By.ID, "ex-tags-revert").is_displayed(), message="Revert offered")
        driver.find_element(By.ID, "ex-tags-revert").click()
        wait_for(lambda: driver.find_element(By.ID, "ex-tags-input").get_attribute("value") == f"{saved}, modality:CT",
                 message="the saved tags back")
        assert not [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    finally:
        driver.quit()
        server.stop()

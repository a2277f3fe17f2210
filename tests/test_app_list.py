"""The explorer's paper list (dash-ag-grid) in headless Chromium: sorting by its headers, column
filters, the column chooser kept in the URL, the keyboard, and 10k papers scrolled with only a
window of rows in the page."""

from __future__ import annotations

import random
import sys
import time
from urllib.parse import urlsplit

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from app.filters import FilterState
from tests.browser import LiveServer, bundled_copy, chrome, wait_for
from tests.conftest import REPO
from tests.test_app_browser import count, list_column, list_keys

pytestmark = pytest.mark.browser

JS_API = "return dash_ag_grid.getApi('ex-list')"
JS_HEADING = """const grid = document.querySelector('#ex-list [role=grid], #ex-list [role=treegrid]');
const label = grid && document.getElementById(grid.getAttribute('aria-labelledby'));
return label && label.textContent;"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    live = LiveServer([bundled_copy(tmp_path_factory.mktemp("list"))])
    yield live
    live.stop()


@pytest.fixture
def page(driver, server):
    driver.get(server.url + "/")
    wait_for(lambda: len(list_keys(driver)) == 11, message="the list's rows")
    return driver


def header(d, column: str):
    return d.find_element(By.CSS_SELECTOR, f'#ex-list [role=columnheader][col-id="{column}"] .ag-header-cell-label')


def column_filter(d, column: str):
    """The filter box under a column's header (its floating filter)."""
    return d.find_element(By.CSS_SELECTOR, f'#ex-list .ag-floating-filter[col-id="{column}"] input')


def headers(d) -> list[str]:
    return [h.get_attribute("col-id") for h in d.find_elements(By.CSS_SELECTOR, "#ex-list [role=columnheader][col-id]")]


def test_the_list_is_a_labelled_grid_of_every_paper(page):
    assert count(page) == "11 of 11 papers"
    assert list_keys(page)[:2] == ["Yi2019GANReview", "Chuquicusma2018Fool"]  # the review's order
    wait_for(lambda: page.execute_script(JS_HEADING) == "Papers", message="the grid named by its heading")
    assert headers(page) == ["selection", "year", "title", "authors", "venue", "category", "key"]  # tags: hidden
    assert not [e for e in page.get_log("browser") if e["level"] == "SEVERE"]


def test_sorting_by_year_by_clicking_its_header_and_by_two_columns(page):
    header(page, "year").click()
    wait_for(lambda: list_column(page, "year") == sorted(list_column(page, "year")), message="years ascending")
    assert list_keys(page)[0] == "Beck2016SurVis"
    header(page, "year").click()
    wait_for(lambda: list_column(page, "year") == sorted(list_column(page, "year"), reverse=True),
             message="years descending")
    header(page, "year").click()  # a third click: the review's order again
    wait_for(lambda: list_keys(page)[0] == "Yi2019GANReview", message="no sort")
    header(page, "category").click()
    ActionChains(page).key_down(Keys.SHIFT).click(header(page, "year")).key_up(Keys.SHIFT).perform()

    def by_category_then_year():
        pairs = list(zip(list_column(page, "category"), map(int, list_column(page, "year"))))
        return pairs == sorted(pairs) and pairs
    pairs = wait_for(by_category_then_year, message="sorted by category, then year")
    assert pairs[0][0] == ""  # Beck2016SurVis, outside the review's categories, first
    assert count(page) == "11 of 11 papers"  # sorting is the grid's own: the filter is untouched


def test_a_column_filter_narrows_the_rows(page):
    column_filter(page, "year").send_keys("2018")
    wait_for(lambda: sorted(list_keys(page)) == ["Chuquicusma2018Fool", "FridAdar2018Synthetic"],
             message="the year filter")
    box = column_filter(page, "year")
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(Keys.BACKSPACE)
    wait_for(lambda: len(list_keys(page)) == 11, message="the year filter cleared")
    column_filter(page, "title").send_keys("diffusion")
    wait_for(lambda: sorted(list_keys(page)) == ["Hung2023MedcDiff", "UsmanAkbar2024BrainTumor"],
             message="the title filter")
    column_filter(page, "venue").send_keys("data")  # and a second column's: both apply
    wait_for(lambda: list_keys(page) == ["UsmanAkbar2024BrainTumor"], message="title and venue filters")
    wait_for(lambda: page.execute_script(JS_HEADING) == "Papers: 1 of 11 after the column filters",
             message="the heading's count")
    assert count(page) == "11 of 11 papers"  # the filter's own count is untouched


def test_the_url_keeps_the_lists_sort_and_column_filters_and_clear_drops_the_filters(page, server):
    header(page, "year").click()
    header(page, "year").click()  # newest first
    wait_for(lambda: "sort=year%3Adesc" in page.current_url, message="the sort in the URL")
    column_filter(page, "title").send_keys("GAN")
    wait_for(lambda: "listfilter=" in page.current_url, message="the column filter in the URL")
    kept = wait_for(lambda: len(list_keys(page)) < 11 and list_keys(page), message="the filtered rows")
    state = FilterState.from_url(urlsplit(page.current_url).query)
    assert state.list_sort == (("year", "desc"),) and state.list_filter_model["title"]["filter"] == "GAN"
    page.get(page.current_url)  # the link opened again: the same rows in the same order
    wait_for(lambda: list_keys(page) == kept, message="the same rows, sorted and filtered")
    assert column_filter(page, "title").get_attribute("value") == "GAN"
    years = [int(y) for y in list_column(page, "year")]
    assert years == sorted(years, reverse=True)
    page.find_element(By.ID, "ex-clear").click()  # clears the list's filters too, keeps its sort
    wait_for(lambda: len(list_keys(page)) == 11, message="every row again")
    wait_for(lambda: "listfilter" not in page.current_url, message="the filter gone from the URL")
    assert "sort=year%3Adesc" in page.current_url and column_filter(page, "title").get_attribute("value") == ""


def test_hiding_a_column_removes_it_and_the_url_keeps_the_choice(page, server):
    page.find_element(By.CSS_SELECTOR, "#ex-columns input[value='key']").click()
    wait_for(lambda: "key" not in headers(page), message="the Key column hidden")
    assert list_column(page, "key") == [None] * 11
    page.find_element(By.CSS_SELECTOR, "#ex-columns input[value='tags']").click()
    wait_for(lambda: "tags" in headers(page), message="the Tags column shown")
    wait_for(lambda: any(list_column(page, "tags")), message="its values, sent when it is shown")
    wait_for(lambda: "cols=" in page.current_url, message="the choice in the URL")
    column_filter(page, "tags").send_keys("DCGAN")  # a shown column filters as the others do
    wait_for(lambda: sorted(list_keys(page)) == ["Chuquicusma2018Fool", "FridAdar2018Synthetic"],
             message="the tag filter")
    wait_for(lambda: "listfilter=" in page.current_url, message="the tag filter in the URL")
    page.get(page.current_url)  # the link opened again: the same columns, and the same column filter
    wait_for(lambda: sorted(list_keys(page)) == ["Chuquicusma2018Fool", "FridAdar2018Synthetic"],
             message="the page again")
    assert "key" not in headers(page) and "tags" in headers(page)
    assert not page.find_element(By.CSS_SELECTOR, "#ex-columns input[value='key']").is_selected()


def test_the_keyboard_walks_the_list_and_enter_opens_a_paper(page):
    first, second = list_keys(page)[:2]
    page.find_element(By.CSS_SELECTOR, f'#ex-list .ag-row[row-id="{first}"] .ag-cell[col-id="title"]').click()
    wait_for(lambda: f"paper={first}" in page.current_url, message="a click opening the first paper")
    title = page.find_element(By.ID, "ex-details-title").text
    wait_for(lambda: page.find_elements(By.CSS_SELECTOR, f'#ex-list .ag-row.ex-current[row-id="{first}"]'),
             message="the opened paper's row marked")
    ActionChains(page).send_keys(Keys.ARROW_DOWN).perform()  # the focus moves down a row; nothing opens
    focused = page.execute_script("return document.activeElement.closest('.ag-row').getAttribute('row-id')")
    assert focused == second and page.find_element(By.ID, "ex-details-title").text == title
    ActionChains(page).send_keys(Keys.ENTER).perform()
    wait_for(lambda: f"paper={second}" in page.current_url, message="Enter opening the second paper")
    wait_for(lambda: page.find_element(By.ID, "ex-details-title").text != title, message="its details")
    wait_for(lambda: page.find_elements(By.CSS_SELECTOR, f'#ex-list .ag-row.ex-current[row-id="{second}"]')
             and not page.find_elements(By.CSS_SELECTOR, f'#ex-list .ag-row.ex-current[row-id="{first}"]'),
             message="the mark moved to the second row")
    assert page.execute_script("return document.activeElement.closest('.ag-row').getAttribute('row-id')") == second


@pytest.mark.slow
def test_ten_thousand_papers_scroll_with_only_a_window_of_rows_drawn(tmp_path):
    sys.path.insert(0, str(REPO / "tests" / "benchmarks"))
    from bench_corpus import synthetic_entry

    rng = random.Random(10000)
    bib = tmp_path / "synthetic-10000.bib"
    bib.write_text("\n".join(synthetic_entry(i, rng) for i in range(10000)), encoding="utf-8")
    server = LiveServer([bib])
    browser = chrome()
    try:
        start = time.perf_counter()
        browser.get(server.url + "/")
        wait_for(lambda: list_keys(browser), timeout=60, message="the first rows")
        ready = time.perf_counter() - start
        assert count(browser) == "10000 of 10000 papers"
        assert browser.execute_script(JS_API + ".getDisplayedRowCount()") == 10000
        drawn = len(list_keys(browser))
        assert 0 < drawn <= 60, drawn  # the rows in view and a buffer, not 10000
        browser.execute_script(JS_API + ".ensureIndexVisible(9999, 'bottom')")
        wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, '#ex-list .ag-row[row-index="9999"]'),
                 message="the last row after scrolling")
        assert len(list_keys(browser)) <= 60
        browser.execute_script(JS_API + ".ensureIndexVisible(0, 'top')")
        start = time.perf_counter()
        header(browser, "year").click()
        wait_for(lambda: list_column(browser, "year")[0] == "2000", timeout=30, message="10k rows sorted by year")
        sorting = time.perf_counter() - start
        years = list_column(browser, "year")
        assert years == sorted(years) and len(years) <= 60
        print(f"\n10k papers: page ready {ready:.2f} s, {drawn} rows drawn, sorted by year in {sorting:.2f} s")
    finally:
        browser.quit()
        server.stop()

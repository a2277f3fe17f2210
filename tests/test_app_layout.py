"""The explorer at a reviewer's desk, in headless Chromium at 1400x900 and 1024x700: the header with
the search and counts stays on top, the three columns stay in view and scroll on their own, nothing
is cut off or spills out of its column, a chosen paper's details are in view, and the upload
preview is readable. Element boxes are measured in the page."""

from __future__ import annotations


import pytest
from selenium.webdriver.common.by import By

from tests.browser import LiveServer, bundled_copy, wait_for
from tests.conftest import entry

pytestmark = pytest.mark.browser

JS_BOX = "const r = arguments[0].getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom];"
JS_SPILL = "const e = arguments[0]; return e.scrollWidth - e.clientWidth;"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    live = LiveServer([bundled_copy(tmp_path_factory.mktemp("layout"))])
    yield live
    live.stop()


def viewport(d) -> tuple[int, int]:
    return d.execute_script("return [window.innerWidth, window.innerHeight]")


def within(d, element, margin: float = 1) -> bool:
    left, top, right, bottom = d.execute_script(JS_BOX, element)
    width, height = viewport(d)
    return left >= -margin and top >= -margin and right <= width + margin and bottom <= height + margin


@pytest.mark.parametrize("size", [(1400, 900), (1024, 700)], ids=["1400x900", "1024x700"])
def test_columns_stay_in_view_and_nothing_spills(driver, server, size):
    driver.set_window_size(*size)
    driver.get(server.url + "/")
    wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "#ex-graph .js-plotly-plot"), message="the page")
    # the page itself does not scroll: the columns do, each on its own
    assert driver.execute_script("return document.documentElement.scrollHeight - window.innerHeight") <= 1
    columns = [driver.find_element(By.CSS_SELECTOR, f".explorer .{name}") for name in ("clouds", "centre", "side")]
    for column in columns:
        assert within(driver, column), (column.get_attribute("class"), driver.execute_script(JS_BOX, column))
        assert driver.execute_script(JS_SPILL, column) <= 1, column.get_attribute("class")  # no hidden overflow
    table = driver.find_element(By.ID, "ex-list")
    assert driver.execute_script(JS_BOX, table)[2] <= driver.execute_script(JS_BOX, columns[1])[2] + 1
    header = driver.find_element(By.TAG_NAME, "header")
    search = driver.find_element(By.ID, "ex-search")
    # the list at the bottom of the centre column: scrolled to, a row chosen, the details in view
    centre = columns[1]
    driver.execute_script("arguments[0].scrollTop = arguments[0].scrollHeight", centre)
    assert driver.execute_script("return arguments[0].scrollTop", centre) > 0  # it does scroll on its own
    cells = driver.find_elements(By.CSS_SELECTOR, '#ex-list .ag-row .ag-cell[col-id="title"]')
    cells[-1].click()
    title = wait_for(lambda: driver.find_element(By.ID, "ex-details-title"), message="the details")
    assert within(driver, title)
    assert within(driver, header) and within(driver, search)  # the search and counts still on top
    # the list, scrolled to, fills most of the column's view and fits in it: taller screens show more rows
    grid, view = driver.execute_script(JS_BOX, table), driver.execute_script(JS_BOX, centre)
    assert 0.5 * (view[3] - view[1]) <= grid[3] - grid[1] and view[1] - 1 <= grid[1] and grid[3] <= view[3] + 1
    assert driver.execute_script(JS_BOX, header)[1] == 0


@pytest.mark.parametrize("size", [(1400, 900), (1024, 700)], ids=["1400x900", "1024x700"])
def test_the_upload_preview_is_readable_in_its_column(driver, server, size):
    driver.set_window_size(*size)
    driver.get(server.url + "/")
    paste = wait_for(lambda: driver.find_element(By.ID, "ex-paste"), message="the paste box")
    paste.send_keys(entry("Preview2026Layout", "A rather long title of a paper about generative models in "
                          "medical imaging, to fill the preview's table", doi="10.5555/a-long-doi-of-the-paper-2026"))
    driver.find_element(By.ID, "ex-preview").click()
    preview = wait_for(lambda: driver.find_element(By.CSS_SELECTOR, "#ex-add-result table.preview"),
                       message="the preview")
    side = driver.find_element(By.CSS_SELECTOR, ".explorer .side")
    driver.execute_script("arguments[0].scrollIntoView({block: 'nearest'})", preview)
    assert driver.execute_script(JS_BOX, preview)[2] <= driver.execute_script(JS_BOX, side)[2] + 1
    assert driver.execute_script(JS_SPILL, side) <= 1
    assert "Preview2026Layout" in preview.text

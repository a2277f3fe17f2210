"""The explorer in headless Chromium: linked views, selection, adding papers, hostile titles."""

from __future__ import annotations

import shutil
import time

import pytest
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from tests.browser import LiveServer, chrome, wait_for
from tests.conftest import REPO, entry

pytestmark = pytest.mark.browser
ARTIFACTS = REPO / "tests" / "artifacts"

JS_PLOT = "return document.querySelector('#' + arguments[0] + ' .js-plotly-plot')"
JS_POINT = """
const gd = document.querySelector('#ex-graph .js-plotly-plot');
for (const t of gd._fullData) {  // decoded: x and y arrive as typed arrays
  const i = (t.customdata || []).indexOf(arguments[0]);
  if (i >= 0) {
    const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
    return [xa._offset + xa.l2p(t.x[i]), ya._offset + ya.l2p(t.y[i]), gd.offsetWidth, gd.offsetHeight];
  }
}
return null;"""


@pytest.fixture(scope="module")
def corpus_copy(tmp_path_factory):
    folder = tmp_path_factory.mktemp("explorer") / "bib"
    shutil.copytree(REPO / "bib", folder, ignore=shutil.ignore_patterns("*.lock", "*.bak"))
    return folder / "corpus.bib"


@pytest.fixture(scope="module")
def server(corpus_copy):
    live = LiveServer([corpus_copy])
    yield live
    live.stop()


@pytest.fixture(scope="module")
def downloads(tmp_path_factory):
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def driver(downloads):
    browser = chrome(downloads)
    yield browser
    browser.quit()


@pytest.fixture
def page(driver, server):
    driver.get(server.url + "/")
    wait_for(lambda: driver.execute_script(JS_PLOT, "ex-graph"), message="the graph")
    wait_for(lambda: driver.execute_script(JS_PLOT, "ex-years"), message="the histogram")
    return driver


def count(d) -> str:
    return d.find_element(By.ID, "ex-count").text


JS_LIST = """
const rows = Array.from(document.querySelectorAll('#ex-list .ag-center-cols-container .ag-row'))
    .sort((a, b) => a.getAttribute('row-index') - b.getAttribute('row-index'));
if (!arguments[0]) { return rows.map(r => r.getAttribute('row-id')); }
const cell = r => r.querySelector('.ag-cell[col-id="' + arguments[0] + '"]');
return rows.map(r => cell(r) && cell(r).textContent);"""


def list_keys(d) -> list[str]:
    """The keys of the paper list's rows drawn in the page, in the order shown (the grid's row ids)."""
    return d.execute_script(JS_LIST, None)


def list_column(d, column: str) -> list[str | None]:
    """The text of one column's cells in the rows drawn, in the order shown (None: the column is hidden)."""
    return d.execute_script(JS_LIST, column)


def traces(d, graph_id: str) -> list[dict]:
    return d.execute_script(f"return document.querySelector('#{graph_id} .js-plotly-plot').data")


def papers_per_bar_trace(d) -> dict[str, int]:
    return {t["name"]: sum(t["y"]) for t in traces(d, "ex-years")}


def matching_nodes(d) -> int:
    """Papers lit on the map: all of a trace without a selection, else its selected points."""
    return d.execute_script("""
        return document.querySelector('#ex-graph .js-plotly-plot').data
            .filter(t => t.customdata && t.name !== 'Works outside the corpus')
            .reduce((n, t) => n + (t.selectedpoints == null ? t.customdata.length : t.selectedpoints.length), 0);""")


def tag_button(d, tag: str):
    return d.find_element(By.XPATH, f"""//button[@id='{{"tag":"{tag}","type":"ex-tag"}}']""")


def test_the_page_loads_with_every_view(page):
    assert count(page) == "11 of 11 papers"
    assert len(list_keys(page)) == 11
    assert matching_nodes(page) == 11
    assert page.find_elements(By.CSS_SELECTOR, "#ex-clouds .cloud-section")
    assert page.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"  # for screen readers
    ARTIFACTS.mkdir(exist_ok=True)
    page.save_screenshot(str(ARTIFACTS / "explorer.png"))
    severe = [e for e in page.get_log("browser") if e["level"] == "SEVERE"]
    assert not severe, severe


def test_a_tag_click_filters_every_view_and_a_second_excludes(page):
    assert papers_per_bar_trace(page) == {"GAN-based Models": 4, "Diffusion Models": 3, "Transformers and LoRA": 3,
                                          "Not in the review's categories": 1}
    tag_button(page, "method:DCGAN").click()
    wait_for(lambda: count(page) == "2 of 11 papers", message="the count after a tag click")
    wait_for(lambda: sorted(list_keys(page)) == ["Chuquicusma2018Fool", "FridAdar2018Synthetic"], message="list")
    wait_for(lambda: matching_nodes(page) == 2, message="the graph to highlight two papers")
    assert papers_per_bar_trace(page) == {"GAN-based Models": 2, "Filtered out": 9}
    assert "tag=method%3ADCGAN" in page.current_url
    assert [c.text for c in page.find_elements(By.CSS_SELECTOR, "#ex-chips .chip")] == ["method:DCGAN ×"]

    tag_button(page, "method:DCGAN").click()
    wait_for(lambda: count(page) == "9 of 11 papers", message="the tag to be excluded")
    page.find_element(By.CSS_SELECTOR, "#ex-chips .chip").click()
    wait_for(lambda: count(page) == "11 of 11 papers", message="the chip to remove the filter")


# Holds the page's callback requests to the server (``arguments[0]``: hold, or let them all go).
JS_HOLD = """
if (!window.__held) {
    window.__held = [];
    const send = window.fetch;
    window.fetch = function (url, options) {
        if (window.__holding && String(url).includes('_dash-update-component')) {
            return new Promise(resolve => window.__held.push(() => resolve(send(url, options))));
        }
        return send(url, options);
    };
}
window.__holding = arguments[0];
if (!arguments[0]) { window.__held.splice(0).forEach(go => go()); }
return window.__held.length;"""


JS_COUNT_WHEN_DRAWN = """
const count = () => document.getElementById('ex-count').textContent;
document.querySelector('#ex-graph .js-plotly-plot')
    .once('plotly_restyle', () => { window.__countWhenDrawn = count(); });
arguments[0].addEventListener('click', () => { window.__countAtClick = count(); }, {once: true});"""


def test_a_filter_click_is_answered_in_the_browser_and_the_server_draws_the_rest(page):
    wait_for(lambda: page.execute_script("return document.querySelector('.explorer').dataset.filterIndex"),
             message="the index the browser filters on")  # it arrives after the first drawing
    page.execute_script(JS_HOLD, True)
    page.execute_script(JS_COUNT_WHEN_DRAWN, tag_button(page, "method:DCGAN"))
    try:
        tag_button(page, "method:DCGAN").click()
        wait_for(lambda: count(page) == "2 of 11 papers", message="the count, with the server held")
        # written with the graphs, in the same task: not a frame later, when Dash sets it too; and drawn from the
        # click's DOM event, before the button's own handlers (Dash's among them) have run
        assert page.execute_script("return window.__countWhenDrawn") == "2 of 11 papers"
        assert page.execute_script("return window.__countAtClick") == "2 of 11 papers"
        assert matching_nodes(page) == 2
        assert papers_per_bar_trace(page) == {"GAN-based Models": 2, "Filtered out": 9}
        assert "tag=method%3ADCGAN" in page.current_url
        wait_for(lambda: sorted(list_keys(page)) == ["Chuquicusma2018Fool", "FridAdar2018Synthetic"],
                 message="the list, with the server held")
        assert list_column(page, "selection") == ["1", "1"]  # the list's Sel.: in selection 1, method:DCGAN
        assert not page.find_elements(By.CSS_SELECTOR, "#ex-chips .chip")  # the server's part, not drawn yet
        assert page.execute_script("return window.__held.length") >= 1
        page.find_element(By.ID, "ex-clear").click()  # and again, before the server answered the first
        wait_for(lambda: count(page) == "11 of 11 papers", message="the count after Clear filters")
        assert matching_nodes(page) == 11 and "tag=" not in page.current_url
        tag_button(page, "method:DCGAN").click()
        wait_for(lambda: count(page) == "2 of 11 papers", message="the count after a third click")
    finally:
        page.execute_script(JS_HOLD, False)
    wait_for(lambda: [c.text for c in page.find_elements(By.CSS_SELECTOR, "#ex-chips .chip")] == ["method:DCGAN ×"],
             message="the server's chips for the last click")
    wait_for(lambda: sorted(list_keys(page)) == ["Chuquicusma2018Fool", "FridAdar2018Synthetic"], message="list")
    assert count(page) == "2 of 11 papers" and matching_nodes(page) == 2
    severe = [e for e in page.get_log("browser") if e["level"] == "SEVERE"]
    assert not severe, severe


def test_a_tag_chosen_by_keyboard_keeps_the_focus(page):
    button = tag_button(page, "method:DDPM")
    button_id = button.get_attribute("id")
    page.execute_script("arguments[0].focus()", button)
    button.send_keys(Keys.ENTER)
    wait_for(lambda: count(page) == "2 of 11 papers", message="the tag to filter")
    wait_for(lambda: page.execute_script("return document.activeElement.id") == button_id,
             message="the focus back on the redrawn tag")
    page.switch_to.active_element.send_keys(Keys.ENTER)  # and on from there: a second Enter excludes it
    wait_for(lambda: count(page) == "9 of 11 papers", message="the second Enter")


def test_search_runs_as_the_user_types_and_keeps_the_typing(page):
    search = page.find_element(By.ID, "ex-search")
    search.send_keys("diffusion ")  # no Enter: the pause runs it
    wait_for(lambda: "q=diffusion" in page.current_url, message="the search to run without Enter")
    time.sleep(0.5)  # the server's answer must not strip the trailing space being typed
    search.send_keys("mri")
    wait_for(lambda: "q=diffusion+mri" in page.current_url, message="the second word to join the first")
    assert search.get_attribute("value") == "diffusion mri"
    wait_for(lambda: 0 < len(list_keys(page)) < 11, message="the list's rows, which come after the count")
    titles = '#ex-list .ag-cell[col-id="title"] strong'
    bold = wait_for(lambda: {b.get_attribute("textContent").lower()  # (a long title is cut in its cell)
                             for b in page.find_elements(By.CSS_SELECTOR, titles)}, message="the matched words bold")
    assert "diffusion" in bold  # the matched words are marked in the list


def test_the_url_restores_a_view(driver, server):
    driver.get(server.url + "/?tag=modality%3AMRI&years=2023-2025")
    wait_for(lambda: count(driver) == "2 of 11 papers", message="the state from the URL")
    assert sorted(list_keys(driver)) == ["Hung2023MedcDiff", "UsmanAkbar2024BrainTumor"]
    assert "required" in tag_button(driver, "modality:MRI").get_attribute("class")


def test_brushing_years_filters_the_list(page):
    plot = page.execute_script(JS_PLOT, "ex-years")
    xa = page.execute_script("const gd = arguments[0]; const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;"
                             "return [xa._offset + xa.l2p(2022.6), xa._offset + xa.l2p(2024.4),"
                             " ya._offset + ya._length / 2, gd.offsetWidth, gd.offsetHeight];", plot)
    x0, x1, y, width, height = xa
    drag = page.find_element(By.CSS_SELECTOR, "#ex-years .nsewdrag")
    ActionChains(page).move_to_element_with_offset(plot, x0 - width / 2, y - height / 2).click_and_hold() \
        .move_by_offset((x1 - x0) / 2, 0).move_by_offset((x1 - x0) / 2, 0).release().perform()
    assert drag is not None
    wait_for(lambda: count(page) == "3 of 11 papers", message="the brushed years 2023-2024")
    assert "years=2023-2024" in page.current_url


def test_clicking_a_node_shows_its_details(page):
    x, y, width, height = page.execute_script(JS_POINT, "Sortino2023Transformer")
    plot = page.execute_script(JS_PLOT, "ex-graph")
    ActionChains(page).move_to_element_with_offset(plot, x - width / 2, y - height / 2).click().perform()
    title = wait_for(lambda: page.find_element(By.ID, "ex-details-title").text, message="the detail panel")
    assert title == "Transformer-Based Image Generation from Scene Graphs"
    details = page.find_element(By.ID, "ex-details").text
    assert "10.1016/j.cviu.2023.103721" in details and "paper8" in details
    assert "paper=Sortino2023Transformer" in page.current_url


def test_uploading_a_bib_file_adds_the_paper_to_every_view(page, tmp_path, corpus_copy):
    upload = tmp_path / "new.bib"
    upload.write_text(entry("Upload2025Diff", "Uploaded latent diffusion for chest X-ray", 2025,
                            "10.5555/upload.2025", keywords="{method:DDPM, modality:X-ray}"))
    page.find_element(By.CSS_SELECTOR, "#ex-upload input[type=file]").send_keys(str(upload))
    wait_for(lambda: "1 new" in page.find_element(By.ID, "ex-add-summary").text, message="the upload preview")
    assert "Upload2025Diff" not in corpus_copy.read_text()  # a preview writes nothing
    page.find_element(By.ID, "ex-add").click()
    wait_for(lambda: "Written to" in page.find_element(By.ID, "ex-add-summary").text, message="the write")
    wait_for(lambda: count(page) == "12 of 12 papers", message="the views to include the new paper")
    search = page.find_element(By.ID, "ex-search")
    search.send_keys("uploaded latent\n")
    wait_for(lambda: list_keys(page) == ["Upload2025Diff"], message="search to find the new paper")
    assert "Upload2025Diff" in corpus_copy.read_text()


def test_an_upload_in_cp1252_with_a_possible_duplicate_is_converted_and_added_once_confirmed(page, tmp_path,
                                                                                           corpus_copy):
    upload = tmp_path / "legacy.bib"
    twin = "Generative Adversarial Network in Medical Imaging: A Review"  # Yi2019GANReview's title
    upload.write_bytes((entry("Caf2025", "Caf\xe9 imaging with GANs", 2025) + entry("Twin2025", twin, 2025))
                       .encode("cp1252"))
    page.find_element(By.CSS_SELECTOR, "#ex-upload input[type=file]").send_keys(str(upload))
    summary = wait_for(lambda: page.find_element(By.ID, "ex-add-result").text, message="the upload preview")
    assert "1 new" in summary and "1 possible duplicate" in summary and "cp1252" in summary
    page.find_element(By.CSS_SELECTOR, "#ex-confirm input[value=Twin2025]").click()
    page.find_element(By.ID, "ex-add").click()
    wait_for(lambda: "Written to" in page.find_element(By.ID, "ex-add-summary").text, message="the write")
    written = corpus_copy.read_bytes().decode("utf-8")  # still UTF-8: the upload was converted
    assert "Café imaging" in written and "Twin2025" in written
    assert "% added from legacy.bib" in written  # the provenance line names the uploaded file


def test_a_malformed_paste_names_its_line(page, corpus_copy):
    before = corpus_copy.read_bytes()
    box = page.find_element(By.ID, "ex-paste")
    box.send_keys("@article{Fine2024,\n  title = {Fine},\n  author = {A, B},\n  journal = {J},\n  year = 2024\n}\n\n"
                  "@article{Broken2024,\n  title = {Never closed,\n  year = 2024\n}\n")
    page.find_element(By.ID, "ex-preview").click()
    table = wait_for(lambda: page.find_element(By.CSS_SELECTOR, "#ex-add-result table.preview").text,
                     message="the preview table")
    assert "line 8" in table and "Broken2024" in table and "invalid" in table
    assert "Fine2024" in table and "would add" in table
    assert corpus_copy.read_bytes() == before


def test_a_script_tag_in_a_title_is_shown_as_text(page, server):
    box = page.find_element(By.ID, "ex-paste")
    box.send_keys(entry("Xss2024", "<script>window.xss = 1; alert('x')</script> in a title", 2024))
    page.find_element(By.ID, "ex-add").click()
    wait_for(lambda: "Written to" in page.find_element(By.ID, "ex-add-summary").text, message="the write")
    page.get(server.url + "/?paper=Xss2024")
    title = wait_for(lambda: page.find_element(By.ID, "ex-details-title").text, message="the detail panel")
    assert title == "<script>window.xss = 1; alert('x')</script> in a title"
    assert page.execute_script("return window.xss") is None
    with pytest.raises(NoAlertPresentException):
        page.switch_to.alert.text
    assert "<script>window.xss" in " ".join(list_column(page, "title"))


def test_details_link_to_the_reproduction_and_back(driver, server):
    driver.get(server.url + "/?paper=Wu2022GCML")
    wait_for(lambda: driver.find_element(By.ID, "ex-details-repro"), message="the reproduction link").click()
    section = wait_for(lambda: driver.find_element(By.ID, "paper10"), message="the reproductions page")
    assert "not run yet" in section.text or "profile ·" in section.text
    # the link's #paper10 scrolls to the section once the page is drawn
    in_view = "const r = arguments[0].getBoundingClientRect(); return r.top >= -1 && r.top < window.innerHeight / 2;"
    wait_for(lambda: driver.execute_script(in_view, driver.find_element(By.ID, "paper10")), message="#paper10 in view")
    assert driver.find_element(By.ID, "repro-summary").find_element(By.LINK_TEXT, "paper10")
    heads = [th.text for th in driver.find_elements(By.CSS_SELECTOR, "#repro-summary th")]
    assert heads[-4:] == ["held", "did not hold", "inconclusive", "not testable here"]  # the tally per paper
    claims = driver.find_element(By.ID, "repro-claims")  # every claim with its number, above the sections
    assert claims.location["y"] < driver.find_element(By.ID, "paper2").location["y"]
    assert "paper2" in claims.text and "interval" in claims.text + " ".join(
        td.text for td in claims.find_elements(By.TAG_NAME, "th"))
    assert "FridAdar2018Synthetic" in driver.find_element(By.ID, "paper3").text
    section.find_element(By.LINK_TEXT, "[Wu2022GCML] in the explorer").click()
    title = wait_for(lambda: driver.find_element(By.ID, "ex-details-title").text, message="the explorer again")
    assert title.startswith("Generalized Clustering and Multi-Manifold Learning")
    driver.get(server.url + "/reproductions#paper5")  # an address opened afresh
    wait_for(lambda: driver.find_elements(By.ID, "paper5") and
             driver.execute_script(in_view, driver.find_element(By.ID, "paper5")), message="#paper5 in view")


def test_a_lost_server_shows_a_notice_with_how_to_restart(driver, corpus_copy):
    live = LiveServer([corpus_copy])
    driver.get(live.url + "/")
    wait_for(lambda: count(driver) and tag_button(driver, "method:DCGAN"), message="the page")
    assert not driver.find_elements(By.ID, "lost-server")
    live.stop()
    tag_button(driver, "method:DCGAN").click()
    notice = wait_for(lambda: next((e for e in driver.find_elements(By.ID, "lost-server") if e.is_displayed()), None),
                      message="the notice")
    assert "not answering" in notice.text and "survey serve" in notice.text


def test_editing_tags_in_the_detail_panel_saves_them(driver, server, corpus_copy):
    driver.get(server.url + "/?paper=Beck2016SurVis")
    box = wait_for(lambda: driver.find_element(By.ID, "ex-tags-input"), message="the tag editor")
    box.send_keys(Keys.CONTROL, "a")  # select all and type over it, as a user does (React sees each key)
    box.send_keys("type:tool, method:visual analytics, task:literature analysis, evaluation:user study")
    driver.find_element(By.ID, "ex-tags-save").click()
    # "user study" is no value tags.toml declares for evaluation: saved all the same, and said
    wait_for(lambda: driver.find_element(By.ID, "ex-tags-status").text == "Saved the tags of [Beck2016SurVis]. 1 of them "
             "not declared in tags.toml (see above).", message="the save")
    wait_for(lambda: "'evaluation:user study' is not in the vocabulary" in driver.find_element(By.ID, "ex-tags-check").text,
             message="the warning beside the editor (redrawn with the saved file)")
    assert "evaluation:user study}" in corpus_copy.read_text()
    wait_for(lambda: tag_button(driver, "evaluation:user study"), message="the new tag in the cloud")


def test_exports_download_the_filtered_corpus_and_the_figures(driver, server, downloads):
    driver.get(server.url + "/?tag=method%3ALoRA")
    wait_for(lambda: count(driver).startswith("2 of "), message="the filtered page")  # earlier tests add papers
    driver.find_element(By.ID, "ex-export-bib").click()
    bib = wait_for(lambda: (downloads / "papers.bib").exists() and (downloads / "papers.bib").read_text(),
                   message="papers.bib")
    assert bib.count("@article{") == 2 and "Lin2025MTMed" in bib and "Izhar2025Engaging" in bib
    driver.find_element(By.XPATH, """//button[@id='{"format":"svg","graph":"ex-years","type":"ex-image"}']""").click()
    svg = wait_for(lambda: (downloads / "years.svg").exists() and (downloads / "years.svg").read_text(),
                   message="years.svg")
    assert svg.startswith("<svg")
    # the map, drawn with WebGL on the page, as a true vector: its points and labels, no embedded bitmap
    driver.find_element(By.XPATH, """//button[@id='{"format":"svg","graph":"ex-graph","type":"ex-image"}']""").click()
    graph = wait_for(lambda: (downloads / "graph.svg").exists() and (downloads / "graph.svg").read_text(),
                     message="graph.svg")
    assert graph.startswith("<svg") and "<image" not in graph
    assert graph.count('class="point"') >= 11 and "Lin 2025" in graph and "Izhar 2025" in graph
    # the CSV names each entry's file as the corpus folder holds it, never by the server's path
    driver.find_element(By.ID, "ex-export-csv").click()
    csv = wait_for(lambda: (downloads / "papers.csv").exists() and (downloads / "papers.csv").read_text(),
                   message="papers.csv")
    assert ",corpus.bib," in csv and str(server.paths[0].parent) not in csv
    # the list's column filters narrow what the page shows, and so what it exports; the heading says so
    driver.find_element(By.CSS_SELECTOR, '#ex-list .ag-floating-filter[col-id="key"] input').send_keys("Izhar")
    wait_for(lambda: driver.find_element(By.ID, "ex-list-heading").text == "Papers: 1 of 2 after the column filters",
             message="the list's heading")
    driver.find_element(By.ID, "ex-export-bib").click()
    narrowed = wait_for(lambda: (downloads / "papers (1).bib").exists() and (downloads / "papers (1).bib").read_text(),
                        message="the second papers.bib")
    assert narrowed.count("@article{") == 1 and "Izhar2025Engaging" in narrowed and "Lin2025MTMed" not in narrowed

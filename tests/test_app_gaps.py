"""The gaps and clusters page (/gaps) and its pure builders (app.gaps_views): the heat map of tag
combinations and its gaps, the clusters, the works outside the corpus; on small hand-made corpora,
the bundled corpus offline, a corpus enriched with the invented OpenAlex records of tests/test_enrich.py,
the real recorded records of ../shared, an empty corpus, and in headless Chromium."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from dash.development.base_component import Component
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By

from app import gaps_views as gv
from app.filters import FilterState
from app.main import create_app
from survey import neighbourhood as nb
from survey.corpus import load_corpus
from survey.graph import corpus_graph
from survey.openalex.cache import WorksCache, cache_folder
from tests.browser import LiveServer, chrome, wait_for
from tests.conftest import REPO, entry
from tests.test_enrich import work
from tests.test_neighbourhood import NEEDS_REAL, real  # noqa: F401  (real: the recorded records as a corpus)

AT = "2025-01-01T00:00:00+00:00"


# --- helpers -------------------------------------------------------------------------------------------------
def page(paths: list[Path]):
    """The page module, its explorer pointed at ``paths`` (``create_app`` imports the pages as ``pages.*``)."""
    create_app(paths)
    return sys.modules["pages.gaps"]


def walk(component):
    if isinstance(component, (list, tuple)):
        for item in component:
            yield from walk(item)
    elif isinstance(component, Component):
        yield component
        yield from walk(getattr(component, "children", None))


def text(component) -> str:
    """Every string the component tree shows, joined."""
    parts = []
    for c in walk(component):
        children = getattr(c, "children", None)
        for child in children if isinstance(children, (list, tuple)) else [children]:
            if isinstance(child, (str, int)):
                parts.append(str(child))
    return " ".join(parts)


def by_id(component, wanted: str):
    return next(c for c in walk(component) if getattr(c, "id", None) == wanted)


def hrefs(component) -> list[str]:
    return [c.href for c in walk(component) if getattr(c, "href", None)]


def small_corpus(tmp_path, *entries: str, vocabulary: str | None = None) -> Path:
    bib = tmp_path / "small.bib"
    bib.write_text("".join(entries), encoding="utf-8")
    if vocabulary is not None:
        (tmp_path / "tags.toml").write_text(vocabulary, encoding="utf-8")
    return bib


VOCABULARY = """
[categories.type]
values = ["survey", "method"]
[categories.task]
values = ["synthesis", "segmentation"]
[categories.modality]
values = ["CT", "MRI", "ultrasound"]
"""


@pytest.fixture
def small(tmp_path):
    """Synthesis on CT (twice) and MRI, segmentation on MRI; a survey tagged with everything; nobody on
    ultrasound (declared, never used) or segmentation on CT (both used, never together)."""
    bib = small_corpus(
        tmp_path,
        entry("A", "Synthesis on CT", keywords="{type:method, task:synthesis, modality:CT}"),
        entry("B", "More synthesis on CT", keywords="{type:method, task:synthesis, modality:CT}"),
        entry("C", "Synthesis on MRI", keywords="{type:method, task:synthesis, modality:MRI}"),
        entry("D", "Segmentation on MRI", keywords="{type:method, task:segmentation, modality:MRI}"),
        entry("S", "A survey of it all", keywords="{type:survey, task:segmentation, task:synthesis, modality:CT, "
                                               "modality:ultrasound}"),
        entry("U", "Untagged modality", keywords="{type:method, task:synthesis}"),
        vocabulary=VOCABULARY)
    return load_corpus([bib])


@pytest.fixture
def enriched_seed(seed_copy):
    """The bundled corpus with the invented records of tests/test_enrich.py in its OpenAlex cache, as
    `survey enrich` leaves it: its ten papers with a DOI matched (the first three cite W01 and W02,
    the fourth W01); W01 (with a DOI) and W02 (without, citing W01) fetched as candidates."""
    corpus = load_corpus([seed_copy])
    dois = [d for d in corpus.table["doi"] if d]
    works = [work(10 + i, doi, refs=(1, 2) if i < 3 else (1,) if i == 3 else ()) for i, doi in enumerate(dois)]
    cache = WorksCache.open(cache_folder(seed_copy))
    cache.record(works, {f"doi:{d}": {"id": f"W90000000{10 + i:02d}", "at": AT} for i, d in enumerate(dois)})
    cache.record([work(1, "10.5555/outside.1", "An outside work cited by four"),
                  work(2, None, "An outside work cited by three", refs=(1,))],
                 {f"id:W90000000{n:02d}": {"id": f"W90000000{n:02d}", "at": AT} for n in (1, 2)})
    cache.compact()
    return seed_copy


# --- 1. pure builders ------------------------------------------------------------------------------------------
def test_the_axes_default_to_the_reviews_question_and_fall_back():
    everything = ["type", "method", "modality", "task"]
    assert nb.gap_axes(everything) == ("task", "modality")
    assert nb.gap_axes(everything, "method", "modality") == ("method", "modality")
    assert nb.gap_axes(everything, "colour", "modality") == ("task", "modality")  # unknown: the default
    assert nb.gap_axes(everything, "modality", "modality") == ("modality", "type")  # never twice the same
    assert nb.gap_axes(["method", "modality"]) == ("method", "modality")
    assert nb.gap_axes(["a", "b", "c"]) == ("a", "b")
    assert nb.gap_axes(["only"]) == ("only", None) and nb.gap_axes([]) == (None, None)


def test_a_cell_links_to_the_explorer_filtered_to_its_two_tags():
    url = gv.cell_url("task", "modality", "segmentation", "ultrasound")
    assert url == "/" + FilterState.with_tags(require=("task:segmentation", "modality:ultrasound"),
                                    exclude=("type:survey",)).to_url()
    state = FilterState.from_url(urlsplit(url).query)
    assert state.require == ("task:segmentation", "modality:ultrasound") and state.exclude == ("type:survey",)
    included = FilterState.from_url(urlsplit(gv.cell_url("task", "modality", "x y", "a&b", True)).query)
    assert included.require == ("task:x y", "modality:a&b") and included.exclude == ()
    assert gv.paper_url("Yi2019GANReview") == "/?paper=Yi2019GANReview"
    # this page's address keeps the explorer's filter, not its selection
    kept = gv.page_url("method", "modality", True, FilterState.with_tags(require=("modality:CT",), paper="X", edges="coupling"))
    query = parse_qs(urlsplit(kept).query)
    assert urlsplit(kept).path == "/gaps" and query == {"rows": ["method"], "columns": ["modality"],
                                                         "surveys": ["include"], "tag": ["modality:CT"]}
    assert gv.is_filtered(FilterState(year_min=2019)) and not gv.is_filtered(FilterState(paper="X", colour="year"))


def test_the_heat_map_counts_each_combination_and_marks_the_gaps(small):
    gaps = nb.tag_gaps(small, "task", "modality")
    figure = gv.heatmap_figure(gaps)
    trace = figure["data"][0]
    assert trace["type"] == "heatmap" and trace["y"] == ["synthesis", "segmentation"]
    assert trace["x"] == ["CT", "MRI", "ultrasound"]
    assert trace["z"] == [[2, 1, 0], [0, 1, 0]]  # the survey is not counted, U has no modality
    assert trace["zmin"] == 0 and trace["zmax"] == 2
    low, below_one = trace["colorscale"][0], trace["colorscale"][1]
    assert low[1] == below_one[1] == gv.GAP_COLOUR and below_one[0] < 1 / 2  # 0 papers: the gaps' colour
    assert trace["colorscale"][2][1] != gv.GAP_COLOUR  # 1 paper is not a gap
    assert "no paper: a gap" in trace["customdata"][1][0] and "2 paper(s)" in trace["customdata"][0][0]
    surveyed = gv.heatmap_figure(nb.tag_gaps(small, "task", "modality", exclude=()))["data"][0]
    assert surveyed["z"] == [[3, 1, 1], [1, 1, 1]]


def test_the_gap_list_says_which_pairs_were_never_studied_together(small):
    gaps = nb.tag_gaps(small, "task", "modality")
    summary = gv.summarise(gaps)
    assert summary.pairs == [("segmentation", "CT")]  # both studied, never together
    assert summary.unused_rows == [] and summary.unused_columns == ["ultrasound"]
    listed = text(gv.gap_list(gaps))
    assert "3 of 6 combinations have no paper" in listed
    assert gv.gap_line("segmentation", "CT") == "no paper on segmentation × CT" and gv.gap_line(
        "segmentation", "CT") in listed
    assert "No paper at all on modality:" in listed and "ultrasound" in listed
    note = gv.counting_note(gaps, include_surveys=False)
    assert "5 paper(s) counted" in note and "type:survey" in note and "1 of them lack" in note
    assert "surveys included" in gv.counting_note(nb.tag_gaps(small, "task", "modality", exclude=()), True)


def test_a_value_is_shown_as_it_is_written(tmp_path):
    corpus = load_corpus([small_corpus(tmp_path, entry("X", "Odd", keywords="{task:<b>bold</b>, modality:CT}"))])
    figure = gv.heatmap_figure(nb.tag_gaps(corpus, "task", "modality"))
    assert "&lt;b&gt;bold&lt;/b&gt;" in figure["data"][0]["customdata"][0][0]
    assert figure["data"][0]["y"] == ["<b>bold</b>"]  # an axis label is text already


def test_outside_works_rank_by_citing_papers_or_by_coupling(enriched_seed):
    graph = corpus_graph(load_corpus([enriched_seed]))
    works = nb.outside_works(graph)
    assert list(gv.rank_outside(works, "cited")["key"]) == ["W9000000001", "W9000000002"]
    by_coupling = gv.rank_outside(works, "coupling")
    assert list(by_coupling["key"]) == ["W9000000002", "W9000000001"] and list(by_coupling["coupling"]) == [4, 0]
    with pytest.raises(ValueError, match="unknown ranking"):
        gv.rank_outside(works, "fame")
    assert gv.outside_status(graph, works, None) is None


def test_why_no_outside_work_is_listed(tmp_path, seed_copy, enriched_seed):
    plain = corpus_graph(load_corpus([seed_copy]), works=[])
    assert "`survey enrich`" in gv.outside_status(plain, nb.outside_works(plain), None)
    empty = corpus_graph(load_corpus([small_corpus(tmp_path, "")]))
    assert "holds no paper" in gv.outside_status(empty, nb.outside_works(empty), None)
    enriched = corpus_graph(load_corpus([enriched_seed]))
    works = nb.outside_works(enriched, ["Beck2016SurVis"])
    assert works.empty and "None of the 1 paper(s) the filter keeps" in gv.outside_status(enriched, works,
                                                                                        ["Beck2016SurVis"])


# --- 2. the page ----------------------------------------------------------------------------------------------
def test_the_page_on_the_bundled_corpus_offline(seed_copy):
    gaps = page([seed_copy])
    layout = gaps.layout()
    assert by_id(layout, "gp-rows").value == "task" and by_id(layout, "gp-columns").value == "modality"
    heat = by_id(layout, "gp-heatmap").figure["data"][0]
    counts = nb.tag_gaps(load_corpus([seed_copy]), "task", "modality").counts
    assert heat["z"] == counts.to_numpy().tolist() and heat["x"] == list(counts.columns)
    listed = text(by_id(layout, "gp-gaps"))
    assert "no paper on segmentation × ultrasound" in listed and "no paper on synthesis × X-ray" in listed
    assert "type:survey" in by_id(layout, "gp-note").children and by_id(layout, "gp-surveys").value == []
    # the review's two questions are one click away
    assert {"gp-preset-task-modality", "gp-preset-method-modality"} <= {c.id for c in walk(layout) if
                                                                       isinstance(getattr(c, "id", None), str)}
    clusters = by_id(layout, "gp-clusters")
    shown = text(clusters)
    assert "Cluster 1: 6 papers" in shown and "Cluster 2: 4 papers" in shown and "shared tags" in shown
    table = load_corpus([seed_copy]).table
    assert {gv.paper_url(k) for k in table["key"]} <= set(hrefs(clusters))  # every paper, each in one cluster
    assert "/?tag=modality%3AMRI" in hrefs(clusters)  # a telling tag opens the explorer on it
    assert "run `survey enrich`" in text(by_id(layout, "gp-outside"))
    # the callbacks: another pair of categories, the surveys counted, a cell clicked
    figure, listed, note, search = gaps.regap("method", "modality", ["include"], "?tag=modality%3ACT")
    assert "DCGAN" in figure["data"][0]["y"] and "surveys included" in note
    assert "no paper on" in text(listed)
    # the address keeps the question and the explorer's filter (to share, or to come back to)
    assert search == "?rows=method&columns=modality&surveys=include&tag=modality%3ACT"
    figure, listed, note, _ = gaps.regap("task", "task", [], "")
    assert figure["data"] == [] and "two different categories" in note
    go = gaps.open_cell({"points": [{"x": "CT", "y": "DCGAN", "z": 2}]}, "method", "modality", [])
    assert go == gv.cell_url("method", "modality", "DCGAN", "CT")


def test_only_the_largest_clusters_are_listed(seed_copy, monkeypatch):
    from app.state import ExplorerState

    snap = ExplorerState([seed_copy]).snapshot()
    monkeypatch.setattr(gv, "CLUSTER_LIMIT", 1)
    shown = text(gv.cluster_parts(snap))
    assert "Cluster 1: 6 papers" in shown and "Cluster 2" not in shown
    assert "2 smaller cluster(s), holding 5 paper(s), are not listed" in shown


def test_the_page_reads_its_question_and_the_explorers_filter_from_the_url(seed_copy):
    gaps = page([seed_copy])
    layout = gaps.layout(rows="method", columns="modality", surveys="include", tag="modality:CT")
    assert (by_id(layout, "gp-rows").value, by_id(layout, "gp-columns").value) == ("method", "modality")
    assert by_id(layout, "gp-surveys").value == ["include"]
    note = text(by_id(layout, "gp-filter-note"))
    assert "6 of 11 papers" in note and "modality:CT" in note
    assert by_id(layout, "gp-filter").data == FilterState.with_tags(require=("modality:CT",)).to_url()
    assert gaps.layout(rows=["method", "task"], columns="nope").children  # a repeated or unknown one: no crash


def test_the_page_follows_changes_to_the_bib_file(seed_copy):
    gaps = page([seed_copy])
    assert "no paper on segmentation × ultrasound" in text(by_id(gaps.layout(), "gp-gaps"))
    with seed_copy.open("a", encoding="utf-8") as f:
        f.write("\n" + entry("New2025Echo", "Segmenting echocardiograms", 2025,
                             keywords="{type:method, task:segmentation, modality:ultrasound}"))
    layout = gaps.layout()
    assert "no paper on segmentation × ultrasound" not in text(by_id(layout, "gp-gaps"))
    assert gv.paper_url("New2025Echo") in hrefs(by_id(layout, "gp-clusters"))
    _, listed, _, _ = gaps.regap("task", "modality", [], "")
    assert "no paper on segmentation × ultrasound" not in text(listed)


def test_the_page_on_an_enriched_corpus(enriched_seed):
    gaps = page([enriched_seed])
    layout = gaps.layout()
    outside = by_id(layout, "gp-outside")
    rows = [c for c in walk(outside) if getattr(c, "className", "") == "gp-work"]
    assert [getattr(r, "data-key") for r in rows] == ["W9000000001", "W9000000002"]
    first = text(rows[0])
    assert "An outside work cited by four" in first and "cited by 4: " in first
    assert "https://doi.org/10.5555/outside.1" in hrefs(rows[0])
    assert "survey add --doi 10.5555/outside.1" in first
    assert "https://openalex.org/W9000000002" in hrefs(rows[1])  # no DOI: its OpenAlex page
    assert "shares references with" in text(rows[1]) and gv.paper_url("Yi2019GANReview") in hrefs(rows[1])
    assert "citation, coupling and co-citation" in text(by_id(layout, "gp-clusters"))
    reranked = gaps.rerank("coupling", "")
    assert [getattr(r, "data-key") for r in walk(reranked) if getattr(r, "className", "") == "gp-work"] == [
        "W9000000002", "W9000000001"]
    # restricted to the papers a filter keeps
    only = gaps.layout(tag="type:tool")
    assert "None of the 1 paper(s) the filter keeps" in text(by_id(only, "gp-outside"))
    assert "None of the 1" in text(gaps.rerank("cited", "?tag=type%3Atool"))


@NEEDS_REAL
def test_the_page_on_real_openalex_records(real):  # noqa: F811
    corpus, graph, records, key = real
    gaps = page([corpus.files[0].path])
    layout = gaps.layout()
    works = nb.outside_works(graph)
    rows = [c for c in walk(by_id(layout, "gp-outside")) if getattr(c, "className", "") == "gp-work"]
    assert len(rows) == min(len(works), gv.OUTSIDE_LIMIT) and len(works) > 0
    assert getattr(rows[0], "data-key") == works["key"].iloc[0]
    assert f"cited by {works['cited_by_n'].iloc[0]}: " in text(rows[0])
    listed = nb.clusters(corpus, graph, largest=gv.CLUSTER_LIMIT)
    shown = text(by_id(layout, "gp-clusters"))
    assert f"Cluster 1: {len(listed[0].papers)} papers" in shown and len(listed[0].papers) >= 2
    alone = [k for c in listed if len(c.papers) == 1 for k in c.papers][:gv.ALONE_LIMIT]
    papers = {gv.paper_url(k) for c in listed if len(c.papers) >= 2 for k in c.papers} | set(map(gv.paper_url, alone))
    assert papers == {h for h in hrefs(by_id(layout, "gp-clusters")) if "paper=" in h}
    communities = graph.nodes["community"].nunique()
    if communities > gv.CLUSTER_LIMIT:  # the rest are counted, not listed
        beyond = graph.nodes[graph.nodes["community"] >= gv.CLUSTER_LIMIT]
        assert (f"{communities - gv.CLUSTER_LIMIT} smaller cluster(s), holding {(beyond['kind'] == 'paper').sum()} "
                "paper(s)") in shown
    # the records carry no SurVis tags: no category to cross, said so
    assert "two tag categories" in by_id(layout, "gp-note").children


@pytest.mark.parametrize("vocabulary", [None, VOCABULARY], ids=["bare", "with-vocabulary"])
def test_the_page_on_an_empty_corpus(tmp_path, vocabulary):
    gaps = page([small_corpus(tmp_path, "", vocabulary=vocabulary)])
    layout = gaps.layout()
    assert "holds no paper" in text(by_id(layout, "gp-clusters"))
    assert "holds no paper" in text(by_id(layout, "gp-outside"))
    if vocabulary:
        assert by_id(layout, "gp-heatmap").figure["data"][0]["z"] == [[0, 0, 0], [0, 0, 0]]
        assert "0 paper(s) counted" in by_id(layout, "gp-note").children
    else:
        assert by_id(layout, "gp-heatmap").figure["data"] == []
        assert "two tag categories" in text(by_id(layout, "gp-gaps"))
        assert gaps.regap(None, None, [], "")[3] == "" and gaps.rerank("coupling", "")
        assert gaps.layout(tag="type:survey", q="gan").children


# --- 3. in the browser ----------------------------------------------------------------------------------------
# A cell's place from the centre of the plot's part in view, where Selenium's offsets start (the heat map
# of method x modality is taller than the window).
JS_CELL = """
const gd = document.querySelector('#gp-heatmap .js-plotly-plot');
const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
const r = gd.getBoundingClientRect();
const x = r.left + xa._offset + xa.d2p(arguments[0]), y = r.top + ya._offset + ya.d2p(arguments[1]);
const left = Math.max(r.left, 0), right = Math.min(r.right, window.innerWidth);
const top = Math.max(r.top, 0), bottom = Math.min(r.bottom, window.innerHeight);
return [Math.round(x - (left + right) / 2), Math.round(y - (top + bottom) / 2)];"""
JS_ROWS = "return Array.from(document.querySelector('#gp-heatmap .js-plotly-plot').data[0].y)"


@pytest.mark.browser
def test_the_page_in_the_browser(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gaps") / "bib"
    shutil.copytree(REPO / "bib", folder, ignore=shutil.ignore_patterns("*.lock", "*.bak"))
    live = LiveServer([folder / "corpus.bib"])
    driver = chrome()
    try:
        driver.get(live.url + "/")
        wait_for(lambda: driver.find_element(By.ID, "nav-gaps"), message="the navigation").click()
        wait_for(lambda: "DCGAN" not in driver.execute_script(JS_ROWS) and "segmentation" in
                 driver.execute_script(JS_ROWS), message="the task x modality heat map")
        assert "no paper on segmentation × ultrasound" in driver.find_element(By.ID, "gp-gaps").text
        # another question: method x modality
        driver.find_element(By.ID, "gp-rows").click()
        wait_for(lambda: next((o for o in driver.find_elements(By.CSS_SELECTOR, ".dash-dropdown-option")
                               if o.text == "method"), None), message="the rows' options").click()
        wait_for(lambda: "DCGAN" in driver.execute_script(JS_ROWS), message="the method x modality heat map")
        wait_for(lambda: "no paper on DCGAN × MRI" in driver.find_element(By.ID, "gp-gaps").text,
                 message="the method x modality gaps")
        wait_for(lambda: "rows=method&columns=modality" in driver.current_url, message="the question in the URL")
        driver.get(driver.current_url)  # the address shared: the same question
        wait_for(lambda: "DCGAN" in driver.execute_script(JS_ROWS), message="method x modality from the URL")
        # a cell: the explorer filtered to its two tags (DCGAN on CT: two papers, no survey among them)
        plot = driver.find_element(By.CSS_SELECTOR, "#gp-heatmap .js-plotly-plot")
        driver.execute_script("arguments[0].scrollIntoView({block: 'start'})", plot)
        dx, dy = driver.execute_script(JS_CELL, "CT", "DCGAN")
        ActionChains(driver).move_to_element_with_offset(plot, dx, dy).click().perform()
        wait_for(lambda: driver.find_elements(By.ID, "ex-count"), message="the explorer")
        state = FilterState.from_url(urlsplit(driver.current_url).query)
        assert state.require == ("method:DCGAN", "modality:CT") and state.exclude == ("type:survey",)
        wait_for(lambda: driver.find_element(By.ID, "ex-count").text.startswith("2 "), message="the cell's papers")
        # a cluster's paper: the explorer with its detail panel
        driver.get(live.url + "/gaps")
        link = wait_for(lambda: next((a for a in driver.find_elements(By.CSS_SELECTOR, "#gp-clusters a.gp-paper")
                                     if "Fool" in a.get_attribute("href")), None), message="a cluster's papers")
        link.click()
        wait_for(lambda: "paper=Chuquicusma2018Fool" in driver.current_url, message="the explorer's URL")
        wait_for(lambda: driver.find_element(By.ID, "ex-details-title").text, message="the detail panel")
        severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert not severe, severe
    finally:
        driver.quit()
        live.stop()

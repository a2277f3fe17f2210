"""The detail panel's neighbourhood: a corpus paper's references, citers, similar papers and OpenAlex
facts; a work outside the corpus and "Add to the corpus"; "select similar" as a filter in the URL;
computed for the selected paper only. On the bundled corpus offline, on a small enriched corpus made
of this project's own invented records (tests.test_enrich.work), on the real OpenAlex records of
../shared (skipped where absent), and in headless Chromium."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By

from app import views
from app.filters import FilterState
from app.interactions import detail_panel, next_state, render, work_bibtex
from app.main import create_app
from app.state import ExplorerState
from survey import neighbourhood as nb
from survey.openalex.cache import WorksCache, cache_folder
from tests.browser import TOKEN, LiveServer, browser_access, wait_for
from tests.conftest import SEED_BIB, entry
from tests.test_app_browser import JS_PLOT, JS_POINT
from tests.test_enrich import work
from tests.test_neighbourhood import NEEDS_REAL, real  # noqa: F401 (the fixture of the real records)

AT = "2026-02-03T04:05:06+00:00"
TITLES = {"P1": "Denoising diffusion for lung CT synthesis", "P2": "Diffusion models synthesise lung CT",
          "P3": "Adversarial networks for brain MRI", "P4": "A paper OpenAlex lacks",
          "P5": "Speech recognition with recurrent networks"}


def W(n: int) -> str:
    """The short id of ``tests.test_enrich.work(n)``."""
    return f"W90000000{n:02d}"


def enriched_bib(folder: Path) -> Path:
    """P1..P3 matched by DOI, P4 not (its `references` name P1 and a key that is no entry); P5 near
    nothing (no reference, tag or word in common with P1 or P2).

    P1 cites W01, W02, W03, W05 and P2; P2 cites W01, W02, W05; P3 cites W01. Candidates (cited by two
    or more papers): W01 (cached, no DOI, cites P2), W02 (never fetched), W05 (cached, with a DOI);
    W03, cited by P1 only, is cached with a DOI but is no node of the map.
    """
    folder.mkdir(parents=True, exist_ok=True)
    bib = folder / "enriched.bib"
    bib.write_text(
        entry("P1", TITLES["P1"], doi="10.5555/p1", keywords="{method:DDPM, modality:CT}",
              abstract="{A diffusion model synthesises lung nodules in CT.}")
        + entry("P2", TITLES["P2"], doi="10.5555/p2", keywords="{method:DDPM, modality:CT}")
        + entry("P3", TITLES["P3"], doi="10.5555/p3", keywords="{method:GAN, modality:MRI}")
        + entry("P4", TITLES["P4"], references="{P1 Ghost2020}", keywords="{method:GAN, modality:CT}")
        + entry("P5", TITLES["P5"], keywords="{method:RNN, modality:audio}"))
    cache = WorksCache.open(cache_folder(bib))
    cache.record([work(11, "10.5555/p1", refs=(1, 2, 3, 5, 12)), work(12, "10.5555/p2", refs=(1, 2, 5)),
                  work(13, "10.5555/p3", refs=(1,), cited=40)],
                 {f"doi:10.5555/p{i}": {"id": W(10 + i), "at": AT} for i in (1, 2, 3)})
    cache.record([work(1, None, "Outside one", refs=(12,)),
                  work(5, "10.5555/outside.5", "Outside five", year=2021, refs=(1,))],
                 {f"id:{W(1)}": {"id": W(1), "at": AT}, f"id:{W(2)}": {"id": None, "at": AT},
                  f"id:{W(5)}": {"id": W(5), "at": AT}})
    cache.record([work(3, "10.5555/outside.3", "Outside three", year=2019, refs=(1, 2))],
                 {"doi:10.5555/outside.3": {"id": W(3), "at": AT}})
    cache.compact()
    return bib


@pytest.fixture(scope="module")
def snap(tmp_path_factory):
    return ExplorerState([enriched_bib(tmp_path_factory.mktemp("enriched"))]).snapshot()


@pytest.fixture(scope="module")
def seed():
    return ExplorerState([SEED_BIB]).snapshot()


# --- walking the components --------------------------------------------------------------------------------
def walk(component):
    if isinstance(component, (list, tuple)):
        for c in component:
            yield from walk(c)
        return
    yield component
    children = getattr(component, "children", None)
    for child in children if isinstance(children, (list, tuple)) else [children]:
        if child is not None and not isinstance(child, (str, int, float)):
            yield from walk(child)


def part(parts: list, part_id: str):
    found = [c for p in parts for c in walk(p) if getattr(c, "id", None) == part_id]
    assert len(found) == 1, f"{part_id}: {len(found)} found"
    return found[0]


def ids(parts: list) -> set:
    return {c.id if isinstance(c.id, str) else repr(sorted(c.id.items()))
            for p in parts for c in walk(p) if getattr(c, "id", None) is not None}


def opens(component) -> list[str]:
    """The papers and works the links of ``component`` open, in order."""
    return [c.id["key"] for c in walk(component) if isinstance(getattr(c, "id", None), dict)
            and c.id.get("type") == "ex-open"]


def text(component) -> str:
    if component is None:
        return ""
    if isinstance(component, (str, int, float)):
        return str(component)
    if isinstance(component, (list, tuple)):
        return " ".join(text(c) for c in component)
    return text(getattr(component, "children", None))


def hrefs(component) -> list[str]:
    return [c.href for c in walk(component) if getattr(c, "href", None)]


def scores(component) -> list[float]:
    """The numbers the similar-paper list shows beside its links."""
    return [float(re.search(r"[\d.]+", c.children).group()) for c in walk(component)
            if "score" in (getattr(c, "className", "") or "")]


# --- 1. a corpus paper's neighbourhood ------------------------------------------------------------------------
def test_a_papers_panel_shows_its_references_citers_similar_papers_and_openalex_facts(snap):
    parts = render(snap, FilterState(paper="P1"), full_graph=False)["details"]
    near = nb.neighbourhood(snap.corpus, snap.graph, "P1")
    assert part(parts, "ex-details-title").children == TITLES["P1"]
    assert opens(part(parts, "ex-nb-refs-in")) == near.references_in == ["P2"]
    outside = part(parts, "ex-nb-refs-out")
    assert opens(outside) == list(near.references_out["id"]) and set(opens(outside)) == {W(1), W(2), W(3), W(5)}
    shown = text(outside)
    assert "Outside three (2019)" in shown and "Outside five (2021)" in shown and W(2) in shown  # uncached: its id
    assert "https://doi.org/10.5555/outside.3" in hrefs(outside)
    assert opens(part(parts, "ex-nb-cited-by")) == near.cited_by == ["P4"]
    for method in nb.SIMILARITY_METHODS:  # each a link with its score, as survey.neighbourhood ranks them
        section = part(parts, f"ex-nb-similar-{method}")
        frame = snap.neighbourhood("P1").similar[method]
        assert opens(section) == list(frame["key"])
        assert scores(section) == pytest.approx(list(frame["score"]), abs=0.006)
    assert opens(part(parts, "ex-nb-similar-coupling")) == ["P2", "P3"]
    assert scores(part(parts, "ex-nb-similar-coupling")) == [3, 1]  # W01, W02, W05 shared with P2; W01 with P3
    assert nb.TEXT_METHOD in text(part(parts, "ex-nb-similar-text"))
    facts = part(parts, "ex-nb-openalex")
    assert "fetched 2026-02-03" in text(facts) and "5" in text(facts) and "Invented Topic" in text(facts)
    assert {"https://example.org/11.pdf", f"https://openalex.org/{W(11)}"} <= set(hrefs(facts))
    assert "Invented abstract 11" in text(facts)  # OpenAlex's abstract, beside the entry's own
    assert repr(sorted({"type": "ex-select-similar", "key": "P1"}.items())) in ids(parts)

    p2 = render(snap, FilterState(paper="P2"), full_graph=False)["details"]
    assert opens(part(p2, "ex-nb-cited-by")) == ["P1"]
    assert opens(part(p2, "ex-nb-cited-by-out")) == [W(1)] and "Outside one" in text(part(p2, "ex-nb-cited-by-out"))
    p4 = render(snap, FilterState(paper="P4"), full_graph=False)["details"]
    assert opens(part(p4, "ex-nb-refs-in")) == ["P1"] and "Ghost2020" in text(part(p4, "ex-nb-refs-unresolved"))
    assert "survey enrich" in text(part(p4, "ex-nb-openalex"))  # not matched: says what would fill it


def test_a_link_of_the_panel_opens_that_paper_in_the_url_as_the_map_does():
    state = FilterState.with_tags(require=("method:DDPM",), paper="P1")
    opened = next_state(state, {"type": "ex-open", "key": "P2", "where": "cites"}, 1)
    assert opened == state.replace(paper="P2") == next_state(state, "ex-graph", {"points": [{"customdata": "P2"}]})
    assert "paper=P2" in opened.to_url() and "tag=method%3ADDPM" in opened.to_url()
    assert next_state(state, {"type": "ex-open", "key": "P2", "where": "cites"}, 0) == state  # redrawn, not clicked
    assert next_state(state, {"type": "ex-open", "key": W(5), "where": "cites-out"}, 1).paper == W(5)


def test_offline_the_sections_say_what_is_missing_and_similar_papers_still_come_from_tags_and_text(seed):
    for key in seed.table["key"]:
        parts = render(seed, FilterState(paper=key), full_graph=False)["details"]
        assert "survey enrich" in text(part(parts, "ex-nb-refs"))  # no references known: the command that finds them
        for quiet in ("ex-nb-cited-by", "ex-nb-similar-coupling", "ex-nb-similar-cocitation"):
            assert not opens(part(parts, quiet))
        assert "survey enrich" in text(part(parts, "ex-nb-openalex"))
    parts = render(seed, FilterState(paper="Chuquicusma2018Fool"), full_graph=False)["details"]
    tags = seed.neighbourhood("Chuquicusma2018Fool").similar["tags"]
    assert opens(part(parts, "ex-nb-similar-tags")) == list(tags["key"]) and len(tags) >= 2
    assert scores(part(parts, "ex-nb-similar-tags")) == pytest.approx(list(tags["score"]), abs=0.006)
    assert opens(part(parts, "ex-nb-similar-text"))
    assert views.details(seed.by_key.loc["Chuquicusma2018Fool"], False)  # the panel without a neighbourhood still draws


def test_facts_link_only_to_web_addresses():
    facts = nb.Facts(openalex_id=W(7), abstract=None, cited_by_count=None, oa_url="javascript:alert(1)", topics=(),
                     fetched_at=None)
    parts = views.facts_parts(facts, "", "")
    assert "javascript:alert(1)" in text(parts) and hrefs(parts) == [f"https://openalex.org/{W(7)}"]


# --- 2. a work outside the corpus -----------------------------------------------------------------------------
def test_a_candidate_on_the_map_opens_the_same_panel(snap):
    state = next_state(FilterState(), "ex-graph", {"points": [{"customdata": W(5)}]})
    assert state.paper == W(5)
    v = render(snap, state, full_graph=False)
    parts = v["details"]
    assert part(parts, "ex-details-title").children == "Outside five"
    assert "https://doi.org/10.5555/outside.5" in hrefs(parts[1]) + hrefs(parts[2])
    assert opens(part(parts, "ex-nb-cited-by")) == ["P1", "P2"]
    assert opens(part(parts, "ex-nb-similar-coupling")) == ["P1", "P2", "P3"]  # all cite W01, which W05 cites
    assert "fetched 2026-02-03" in text(part(parts, "ex-nb-openalex"))
    assert "ex-work-add" in ids(parts)
    ring = [c for i, c in v["graph_changes"].items() if isinstance(i, int) and "x" in c]
    assert len(ring) == 1 and len(ring[0]["x"]) == 1  # the selection ring is on the work

    one = render(snap, FilterState(paper=f"https://openalex.org/{W(1)}"), full_graph=False)["details"]
    assert part(one, "ex-details-title").children == "Outside one" and "ex-work-add" not in ids(one)  # no DOI
    assert opens(part(one, "ex-nb-refs-in")) == ["P2"]
    two = render(snap, FilterState(paper=W(2)), full_graph=False)["details"]
    assert "ex-nb-not-cached" in ids(two) and "ex-work-add" not in ids(two)
    assert opens(part(two, "ex-nb-cited-by")) == ["P1", "P2"]
    own = render(snap, FilterState(paper=W(12)), full_graph=False)["details"]  # P2's own OpenAlex id
    assert "P2" in opens(own) and "ex-work-add" not in ids(own)
    assert "nobody" in text(render(snap, FilterState(paper="nobody"), full_graph=False)["details"])


def test_add_to_the_corpus_goes_through_the_knowledge_base_from_the_cached_record(tmp_path):
    state = ExplorerState([enriched_bib(tmp_path / "bib")])
    snap = state.snapshot()
    text_ = work_bibtex(snap, W(5))
    assert text_.count("@") == 1 and "10.5555/outside.5" in text_ and "Outside five" in text_
    assert work_bibtex(snap, W(2)) is None  # never fetched: the explorer asks no one
    before = state.target.read_bytes()
    preview = state.add(text_, f"OpenAlex {W(5)}", dry_run=True)
    assert [o.status for o in preview.outcomes] == ["added"] and state.target.read_bytes() == before
    key = preview.outcomes[0].key
    assert key not in TITLES
    assert "would add" in text(views.merge_preview(preview, True))
    twin = state.add(work_bibtex(snap, W(11)), f"OpenAlex {W(11)}", dry_run=True)  # P1's own record
    assert [o.status for o in twin.outcomes] == ["duplicate"]

    added = state.add(text_, f"OpenAlex {W(5)}", dry_run=False)
    assert added.written and f"% added from OpenAlex {W(5)}" in state.target.read_text()
    after = state.snapshot()
    assert key in after.by_key.index and after.outside_work(W(5)).corpus_key == key
    panel = detail_panel(after, W(5))
    assert key in opens(panel) and "ex-work-add" not in ids(panel)
    assert "P1" in opens(part(detail_panel(after, key), "ex-nb-cited-by"))  # now a paper P1 and P2 cite


def test_the_add_button_is_only_offered_to_who_may_write(tmp_path):
    bib = enriched_bib(tmp_path / "bib")
    for settings, cookie, shown in ((browser_access(), True, True), (browser_access(), False, False),
                                    (browser_access(read_only=True), True, False)):
        dash_app = create_app([bib], settings)
        explorer = sys.modules["pages.explorer"]  # create_app imports the pages as pages.*
        headers = {"Cookie": f"{settings.cookie_name}={TOKEN}"} if cookie else {}
        with dash_app.server.test_request_context("/", headers=headers):
            snap = ExplorerState([bib]).snapshot()
            parts = explorer._details(detail_panel(snap, W(5)))
            assert ("ex-work-add" in ids(parts)) is shown
            assert "ex-nb-cited-by" in ids(parts) and "ex-details-title" in ids(parts)  # the rest stays


# --- 3. select similar ----------------------------------------------------------------------------------------
def test_select_similar_is_a_filter_of_the_url_with_a_chip(snap, seed):
    state = next_state(FilterState(paper="P1"), {"type": "ex-select-similar", "key": "P1"}, 1)
    assert state == FilterState(paper="P1", similar="P1")
    assert FilterState.from_url(state.to_url()) == state and "similar=P1" in state.to_url()
    assert ("similar", "similar to P1") in state.chips()
    assert state.without_chip("similar") == FilterState(paper="P1")
    assert next_state(state, "ex-clear", 1).similar is None
    with pytest.raises(ValueError, match="nearest"):
        state.query()
    assert state.query(lambda key: ["P2"]).keys == frozenset({"P1", "P2"})

    near = snap.similar_to("P1")
    assert list(near) == nb.select_similar(snap.corpus, snap.graph, "P1", k=len(near)) and near
    assert "P5" not in near
    v = render(snap, state)
    kept = {r["key"] for r in v["rows"] if not r.get("out")}
    assert kept == {"P1", *near} and v["count"] == f"{1 + len(near)} of 5 papers"
    assert any("similar to P1" in text(chip) for chip in v["chips"])
    both = render(snap, state.cycle_tag("method:DDPM"))  # with the other filters, as any filter
    assert {r["key"] for r in both["rows"] if not r.get("out")} == {"P1", *near} & {"P1", "P2"}
    assert render(snap, FilterState(similar="nobody"))["count"] == "0 of 5 papers"

    chuq = seed.similar_to("Chuquicusma2018Fool")
    assert 0 < len(chuq) < len(seed.table) - 1
    assert render(seed, FilterState(similar="Chuquicusma2018Fool"))["count"] == f"{1 + len(chuq)} of 11 papers"


# --- 4. computed for the selected paper only, from what the graph derives once ---------------------------------
def test_the_neighbourhood_is_computed_for_the_selected_paper_once(monkeypatch, tmp_path):
    snap = ExplorerState([enriched_bib(tmp_path / "bib")]).snapshot()
    snap.prepare_panels()  # what the snapshot starts in the background after its load
    derived = nb._derived(snap.graph)
    text_vectors = derived.text
    assert text_vectors is not None
    asked = []
    real_neighbourhood = nb.neighbourhood
    monkeypatch.setattr(nb, "neighbourhood", lambda c, g, key, k=10: asked.append(key) or real_neighbourhood(c, g, key, k))
    render(snap, FilterState())
    assert asked == []  # nothing selected: nothing computed
    for state in (FilterState(paper="P1"), FilterState.with_tags(paper="P1", require=("method:DDPM",)),
                  FilterState(paper="P1", text="lung"), FilterState(paper="P3"), FilterState(paper="P1")):
        render(snap, state, full_graph=False)
    assert asked == ["P1", "P3"]
    assert nb._derived(snap.graph) is derived and derived.text is text_vectors  # derived once per graph


# --- real OpenAlex records ----------------------------------------------------------------------------------
@NEEDS_REAL
def test_real_records_fill_the_panel(real):  # noqa: F811
    corpus, graph, records, key = real
    snap = ExplorerState([corpus.files[0].path]).snapshot()
    paper = key["W2077467872"]
    parts = render(snap, FilterState(paper=paper), full_graph=False)["details"]
    near = snap.neighbourhood(paper)
    assert opens(part(parts, "ex-nb-refs-in")) == near.references_in and len(near.references_in) == 2
    assert len(opens(part(parts, "ex-nb-refs-out"))) == len(near.references_out) == 42
    assert opens(part(parts, "ex-nb-similar-coupling"))[0] == key["W1606984725"]
    facts = snap.graph.paper_works[paper][1]
    assert f"{facts['cited_by_count']:,}" in text(part(parts, "ex-nb-openalex"))
    top = nb.outside_works(snap.graph).iloc[0]
    work_parts = render(snap, FilterState(paper=top["key"]), full_graph=False)["details"]
    assert sorted(opens(part(work_parts, "ex-nb-cited-by"))) == sorted(top["cited_by_corpus"])


# --- in headless Chromium -------------------------------------------------------------------------------------
def title(d) -> str:
    return d.find_element(By.ID, "ex-details-title").text


def count(d) -> str:
    return d.find_element(By.ID, "ex-count").text


@pytest.mark.browser
def test_in_the_browser_a_paper_opens_onto_its_neighbourhood_and_a_work_outside_can_be_added(driver,
                                                                                           tmp_path_factory):
    bib = enriched_bib(tmp_path_factory.mktemp("browser") / "bib")
    near = ExplorerState([bib]).snapshot().similar_to("P2")
    live = LiveServer([bib])
    try:
        driver.get_log("browser")
        driver.get(live.url + "/?paper=P1")
        wait_for(lambda: title(driver) == TITLES["P1"], message="P1's panel")
        assert "Outside five (2021)" in driver.find_element(By.ID, "ex-nb-refs-out").text
        assert "fetched 2026-02-03" in driver.find_element(By.ID, "ex-nb-openalex").text
        # a reference in the corpus: a link that opens it, as a click on the map does
        driver.find_element(By.CSS_SELECTOR, "#ex-nb-refs-in button.link").click()
        wait_for(lambda: title(driver) == TITLES["P2"], message="the link to open P2")
        assert "paper=P2" in driver.current_url
        assert "P1" in driver.find_element(By.ID, "ex-nb-cited-by").text or \
            TITLES["P1"] in driver.find_element(By.ID, "ex-nb-cited-by").text

        # select similar: a chip, a filter in the URL, removable
        next(b for b in driver.find_elements(By.CSS_SELECTOR, "#ex-neighbourhood button")
             if b.text == "Select similar").click()
        assert "P5" not in near
        wait_for(lambda: count(driver) == f"{1 + len(near)} of 5 papers", message="the similar papers selected")
        assert "similar=P2" in driver.current_url
        chip = wait_for(lambda: next((c for c in driver.find_elements(By.CSS_SELECTOR, "#ex-chips .chip")
                                      if "similar to P2" in c.text), None), message="the chip")
        chip.click()
        wait_for(lambda: count(driver) == "5 of 5 papers", message="the chip to remove the selection")
        assert "similar=" not in driver.current_url

        # a work outside the corpus, clicked on the map
        wait_for(lambda: driver.execute_script(JS_POINT, W(5)), message="the candidate on the map")
        x, y, width, height = driver.execute_script(JS_POINT, W(5))
        plot = driver.execute_script(JS_PLOT, "ex-graph")
        ActionChains(driver).move_to_element_with_offset(plot, x - width / 2, y - height / 2).click().perform()
        wait_for(lambda: title(driver) == "Outside five", message="the work's panel")
        assert f"paper={W(5)}" in driver.current_url
        cited = driver.find_element(By.ID, "ex-nb-cited-by").text
        assert TITLES["P1"] in cited and TITLES["P2"] in cited
        before = bib.read_bytes()
        driver.find_element(By.ID, "ex-work-add").click()
        wait_for(lambda: "10.5555/outside.5" in driver.find_element(By.ID, "ex-paste").get_attribute("value"),
                 message="the work's BibTeX in the paste box")
        wait_for(lambda: "1 new" in driver.find_element(By.ID, "ex-add-summary").text, message="the preview")
        assert bib.read_bytes() == before  # a preview writes nothing
        driver.find_element(By.ID, "ex-add").click()
        wait_for(lambda: "Written to" in driver.find_element(By.ID, "ex-add-summary").text, message="the write")
        assert "10.5555/outside.5" in bib.read_text() and f"% added from OpenAlex {W(5)}" in bib.read_text()
        wait_for(lambda: count(driver) == "6 of 6 papers", message="the views to include the new paper")
        wait_for(lambda: not driver.find_elements(By.ID, "ex-work-add"), message="the work to be a corpus paper")
        severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert not severe, severe
    finally:
        live.stop()


@pytest.mark.browser
def test_in_the_browser_read_only_offers_no_add_button(driver, tmp_path_factory):
    bib = enriched_bib(tmp_path_factory.mktemp("read-only") / "bib")
    live = LiveServer([bib], browser_access(read_only=True))
    try:
        driver.get(live.url + f"/?paper={W(5)}")
        wait_for(lambda: title(driver) == "Outside five", message="the work's panel")
        assert driver.find_element(By.ID, "ex-nb-cited-by") and not driver.find_elements(By.ID, "ex-work-add")
        driver.find_element(By.CSS_SELECTOR, "#ex-nb-cited-by button.link").click()
        wait_for(lambda: title(driver) == TITLES["P1"], message="a link, which reading allows")
    finally:
        live.stop()

"""Selections as SurVis has them, and better: tags, authors and venues combined with AND, OR and
NOT, author and venue clouds, and up to six selections coloured at once in the histogram, the map
and the list, all in the URL; on the bundled corpus, on odd names and in headless Chromium."""

from __future__ import annotations

import base64

import numpy as np
import pandas as pd
import pytest
from selenium.webdriver.common.by import By

from app import figures, views
from app.filters import SELECTION_COLOURS, FilterState
from app.interactions import next_state, render
from app.state import ExplorerState
from survey.corpus import load_corpus
from survey.export import author_tally, venue_tally
from survey.query import Query, Selector, combine, first_matching
from tests.browser import LiveServer, bundled_copy, chrome, wait_for
from tests.conftest import SEED_BIB, entry
from tests.test_neighbourhood import NEEDS_REAL, real  # noqa: F401  (real: the recorded records as a corpus)

ISBI = "2018 IEEE 15th International Symposium on Biomedical Imaging (ISBI 2018)"


@pytest.fixture(scope="module")
def snap():
    return ExplorerState([SEED_BIB]).snapshot()


def keys(table, mask) -> set[str]:
    return set(table["key"][np.asarray(mask, dtype=bool)])


def test_and_or_not_combine_as_a_formula_reads(snap):
    table = snap.table
    ct, mri = Selector("and", "tag", "modality:CT"), Selector("and", "tag", "modality:MRI")
    with_ct, with_mri = keys(table, ct.matches(table)), keys(table, mri.matches(table))
    assert len(with_ct) == 6 and len(with_mri) == 4
    assert keys(table, combine((ct, mri), table)) == with_ct & with_mri
    either = (Selector("or", "tag", "modality:CT"), Selector("or", "tag", "modality:MRI"))
    assert keys(table, combine(either, table)) == with_ct | with_mri
    survey = Selector("not", "tag", "type:survey")
    surveys = keys(table, survey.matches(table))
    assert keys(table, combine((*either, survey), table)) == (with_ct | with_mri) - surveys
    assert keys(table, combine((survey,), table)) == set(table["key"]) - surveys  # NOT alone: the rest
    # an AND beside ORs: the AND and one of the ORs at least
    gan = Selector("and", "tag", "method:GAN")
    assert keys(table, combine((gan, *either), table)) == keys(table, gan.matches(table)) & (with_ct | with_mri)


def test_authors_match_however_accents_and_case_are_written(tmp_path):
    bib = tmp_path / "refs.bib"
    bib.write_text(entry("A1", author="{Sébastien Ourselin and Rachel Sparks}", title="One", year="2019")
                   + entry("A2", author="{Ourselin, Sebastien and others}", title="Two", year="2020")
                   + entry("A3", author="{SEBASTIEN OURSELIN}", title="Three", year="2021", journal="{Epilepsia}")
                   + entry("A4", author="{Rachel Sparks and Sebastien Ourselin}", title="Four", year="2021",
                           journal="{Epilepsia}"),
                   encoding="utf-8")
    table = load_corpus([bib]).table
    tally = author_tally(table)
    # one author, named by the spelling most papers use; "others" (et al.) is no author
    assert tally.counts() == {"Sebastien Ourselin": 4, "Rachel Sparks": 2}
    assert keys(table, Selector("and", "author", "Sebastien Ourselin").matches(table)) == {"A1", "A2", "A3", "A4"}
    assert venue_tally(table).counts() == {"Epilepsia": 2, "Medical Image Analysis": 2}
    # a filter's counts: the papers it keeps
    assert tally.counts(table["year"].eq(2021).to_numpy(), top=1) == {"Sebastien Ourselin": 2}


def test_first_matching_gives_each_paper_its_first_selection(snap):
    table = snap.table
    chosen = (Selector("or", "venue", ISBI), Selector("or", "tag", "modality:CT"))
    groups = first_matching(chosen, table)
    by_key = dict(zip(table["key"], groups))
    assert by_key["FridAdar2018Synthetic"] == 0  # in ISBI and on CT: the first wins
    assert {k for k, g in by_key.items() if g == 1} == keys(table, chosen[1].matches(table)) - keys(
        table, chosen[0].matches(table))
    assert (groups == -1).sum() == len(table) - len(keys(table, combine(chosen, table)))


def test_the_url_keeps_every_selector_with_its_operator_in_formula_order():
    state = FilterState.from_url("?or=modality:CT&tag=method:GAN&not-author=A+B&or-venue=Medical+Image+Analysis"
                                 "&author=Salome+Kazeminia&or=modality:MRI&tag=method:GAN&or-bogus=x&colour=selection")
    assert [(s.op, s.kind, s.value) for s in state.selectors] == [
        ("and", "tag", "method:GAN"), ("and", "author", "Salome Kazeminia"), ("or", "tag", "modality:CT"),
        ("or", "tag", "modality:MRI"), ("or", "venue", "Medical Image Analysis"), ("not", "author", "A B")]
    assert state.colour == "selection"
    assert FilterState.from_url(state.to_url()) == state
    # a page rebuilt by Dash sees each parameter's values in order, not how parameters interleave
    grouped = "?" + "&".join(sorted(state.to_url().lstrip("?").split("&"), key=lambda p: p.split("=")[0]))
    assert FilterState.from_url(grouped) == state
    assert state.require == ("method:GAN",) and state.exclude == ()
    assert state.query().selectors == state.selectors


def test_clicks_cycle_a_selector_and_its_chip_sets_the_operator():
    state = FilterState().cycle_selector("author", "Salome Kazeminia")
    assert state.selectors == (Selector("and", "author", "Salome Kazeminia"),)
    assert state.cycle_selector("author", "Salome Kazeminia").selectors == (Selector("not", "author", "Salome Kazeminia"),)
    assert state.cycle_selector("author", "Salome Kazeminia").cycle_selector("author", "Salome Kazeminia") == FilterState()
    either = state.next_op("author=Salome Kazeminia")
    assert either.selectors == (Selector("or", "author", "Salome Kazeminia"),) and "or-author=Salome+Kazeminia" in either.to_url()
    assert either.next_op("or-author=Salome Kazeminia").selectors == (Selector("not", "author", "Salome Kazeminia"),)
    assert either.next_op("author=Salome Kazeminia") == either  # a chip of another state: nothing
    assert either.without_chip("or-author=Salome Kazeminia") == FilterState()
    # the callbacks' triggers
    assert next_state(FilterState(), {"type": "ex-selector", "kind": "venue", "value": ISBI}, 1).selectors == (
        Selector("and", "venue", ISBI),)
    assert next_state(state, {"type": "ex-op", "chip": "author=Salome Kazeminia"}, 1) == either
    assert next_state(state, {"type": "ex-op", "chip": "author=Salome Kazeminia"}, 0) == state  # redrawn, not clicked


def test_chips_show_the_operator_and_the_selection_number_in_its_colour():
    state = FilterState.from_url("?tag=method:GAN&or-author=Salome+Kazeminia&not=type:tool")
    parts = views.chips(state)
    text = [str(p) for p in parts]
    assert len(parts) == 3
    assert "'1'" in text[0] and SELECTION_COLOURS[0] in text[0] and "'AND'" in text[0]
    assert "'2'" in text[1] and SELECTION_COLOURS[1] in text[1] and "'OR'" in text[1] and "author: Salome Kazeminia" in text[1]
    assert "'NOT'" in text[2] and "swatch" not in text[2]  # NOT selects nothing to colour


def test_author_and_venue_clouds_sit_beside_the_tag_clouds(snap):
    state = FilterState.from_url(f"?venue={ISBI}")
    v = render(snap, state)
    sections = {s.children[0].children: s for s in v["clouds"]}
    assert {"Authors", "Venues"} <= set(sections) and "method" in sections
    venue_buttons = {b.id["value"]: b for b in sections["Venues"].children[1].children}
    assert "required" in venue_buttons[ISBI].className and venue_buttons[ISBI].id["type"] == "ex-selector"
    assert venue_buttons[ISBI].children[1].children == "2"  # its papers within the filter
    assert v["count"] == "2 of 11 papers"
    assert "9 more authors not shown" in str(sections["Authors"])  # 40 of the seed's 49 authors


def test_colour_by_selection_paints_the_histogram_the_map_and_the_list(snap):
    state = FilterState.from_url(f"?or=modality:CT&or=modality:MRI&or-venue={ISBI}&colour=selection")
    v = render(snap, state)
    table = snap.table
    ct = keys(table, Selector("or", "tag", "modality:CT").matches(table))
    mri_only = keys(table, Selector("or", "tag", "modality:MRI").matches(table)) - ct
    bars = {t["name"]: (sum(t["y"]), t["marker"]["color"]) for t in v["years"]["data"]}
    assert bars["1 · modality:CT"] == (len(ct), SELECTION_COLOURS[0])
    assert bars["2 · modality:MRI"] == (len(mri_only), SELECTION_COLOURS[1])
    assert "3 · venue: " + ISBI not in bars  # both ISBI papers are on CT, which comes first

    papers = next(t for t in v["graph"]["data"] if t["name"] == "Papers")
    codes = np.frombuffer(base64.b64decode(papers["marker"]["color"]["bdata"]), dtype="<f4")
    colour_of = dict(zip(papers["customdata"], codes))
    assert {k for k, c in colour_of.items() if c == 0} == ct
    assert {k for k, c in colour_of.items() if c == 1} == mri_only
    assert {k for k, c in colour_of.items() if c == len(SELECTION_COLOURS)} == set(table["key"]) - ct - mri_only
    legend = [t["name"] for t in v["graph"]["data"] if t.get("visible") is True]
    assert legend == ["1 · modality:CT", "2 · modality:MRI", "3 · venue: " + ISBI, figures.NO_SELECTION]

    rows = {r["key"]: r["selection"] for r in v["rows"] if "selection" in r}
    assert rows["FridAdar2018Synthetic"] == "1 3" and all(rows[k].startswith("1") for k in ct)
    shades = {r["key"]: r["shade"] for r in v["rows"] if "shade" in r}  # "Sel." in its first selection's colour
    assert {shades[k] for k in ct} == {0} and {shades[k] for k in mri_only} == {1} and set(shades) == ct | mri_only
    sel = next(c for c in v["columns"] if c["field"] == "selection")["cellStyle"]["styleConditions"]
    assert [(c["condition"], c["style"]["backgroundColor"]) for c in sel[:2]] == [
        ("selectionShade(params) === 0", SELECTION_COLOURS[0]), ("selectionShade(params) === 1", SELECTION_COLOURS[1])]

    patch = render(snap, state, full_graph=False)["graph_changes"]  # a filter change patches the colours
    assert any("marker.color" in change for change in patch.values() if isinstance(change, dict))


def test_only_six_selections_are_coloured_and_the_rest_still_filter(snap):
    tags = ["modality:CT", "modality:MRI", "modality:X-ray", "modality:pathology", "modality:ultrasound",
            "modality:PET", "modality:fundus"]
    state = FilterState(selectors=tuple(Selector("or", "tag", t) for t in tags), colour="selection")
    v = render(snap, state)
    assert len([t for t in v["graph"]["data"] if t.get("visible") is True]) == len(SELECTION_COLOURS) + 1
    assert len([c for c in views.chips(state) if "swatch" in str(c)]) == len(SELECTION_COLOURS)
    seventh = Selector("or", "tag", "modality:fundus").matches(snap.table)
    assert keys(snap.table, Query(selectors=state.selectors).mask(snap.table)) >= keys(snap.table, seventh)


def test_selections_draw_on_odd_names(tmp_path):
    bib = tmp_path / "odd.bib"
    bib.write_text(entry("O1", author="{{Barnes and Noble} and Ünal, Özgür}", title="<b>x</b>", year="2020",
                         journal="{J. {\\&} Co., Ltd.}") + entry("O2", author="{}", title="No author", year="{}"),
                   encoding="utf-8")
    snap = ExplorerState([bib]).snapshot()
    names = snap.authors.names
    assert set(names) == {"Barnes and Noble", "Özgür Ünal"}
    state = FilterState(selectors=(Selector("or", "author", "Özgür Ünal"), Selector("or", "venue", "J. & Co., Ltd.")),
                        colour="selection")
    state = FilterState.from_url(state.to_url())
    v = render(snap, state)
    assert v["count"] == "1 of 2 papers"
    assert [r["selection"] for r in v["rows"] if not r.get("out")] == ["1 2"]


@NEEDS_REAL
def test_selections_on_real_openalex_records(real):  # noqa: F811
    """The recorded OpenAlex works as a corpus: its authors (OpenAlex's display names) and venues in the
    clouds, and an author OR a venue coloured on the enriched map."""
    corpus = real[0]
    snap = ExplorerState([corpus.files[0].path]).snapshot()
    author, venue = snap.authors.names[0], snap.venues.names[0]
    assert snap.authors.counts(top=1)[author] >= 2  # someone wrote several of the 177 works
    state = FilterState(selectors=(Selector("or", "author", author), Selector("or", "venue", venue)),
                        colour="selection")
    v = render(snap, state)
    by_author = keys(snap.table, Selector("or", "author", author).matches(snap.table))
    by_venue = keys(snap.table, Selector("or", "venue", venue).matches(snap.table))
    assert v["count"] == f"{len(by_author | by_venue)} of {len(snap.table)} papers"
    bars = {t["name"]: sum(t["y"]) for t in v["years"]["data"]}
    assert bars[f"1 · author: {author}"] == len([k for k in by_author if pd.notna(snap.by_key.at[k, "year"])])
    sections = {s.children[0].children: s for s in v["clouds"]}
    assert author in str(sections["Authors"]) and venue in str(sections["Venues"])


@pytest.mark.browser
def test_selections_in_the_browser(tmp_path):
    """Click an author, make it OR, add a venue as OR, colour by selection: the map, the histogram and the
    list take the colours and the URL keeps them; the URL opened again draws the same."""
    server = LiveServer([bundled_copy(tmp_path)])
    driver = chrome()
    try:
        driver.get(server.url + "/")
        count = lambda: driver.find_element(By.ID, "ex-count").text  # noqa: E731
        wait_for(lambda: count() == "11 of 11 papers", message="the page")

        def click(kind, value):
            driver.find_element(By.XPATH, f"""//button[@id='{{"kind":"{kind}","type":"ex-selector","value":"{value}"}}']""").click()

        click("venue", ISBI)
        wait_for(lambda: count() == "2 of 11 papers", message="a venue click to filter")
        driver.find_element(By.CSS_SELECTOR, "#ex-chips .op").click()  # AND -> OR
        wait_for(lambda: "or-venue=" in driver.current_url, message="the chip to make the venue OR")
        click("author", "Salome Kazeminia")
        wait_for(lambda: count() == "0 of 11 papers", message="an AND author beside the OR venue: none has both")
        driver.find_elements(By.CSS_SELECTOR, "#ex-chips .op")[0].click()  # the author, first as AND: -> OR
        wait_for(lambda: count() == "3 of 11 papers", message="two ORs: either")
        driver.find_element(By.CSS_SELECTOR, "#ex-colour input[value='selection']").click()
        wait_for(lambda: "colour=selection" in driver.current_url, message="colour by selection")

        def shown():
            graph = driver.execute_script("return document.querySelector('#ex-graph .js-plotly-plot').data")
            years = driver.execute_script("return document.querySelector('#ex-years .js-plotly-plot').data")
            cells = driver.find_elements(By.CSS_SELECTOR, '#ex-list .ag-cell[col-id="selection"]')
            return ([t["name"] for t in graph if t.get("visible") is True], sorted(t["name"] for t in years),
                    sorted((c.text, c.value_of_css_property("background-color")) for c in cells if c.text))
        # ORs are read as written, authors before venues: the author is selection 1
        wait_for(lambda: shown()[0] == ["1 · author: Salome Kazeminia", "2 · venue: " + ISBI, "In no selection"],
                 message="the map's legend")
        legend, bars, cells = wait_for(shown, message="the views")  # (a redrawn cell is read again)
        assert bars == ["1 · author: Salome Kazeminia", "2 · venue: " + ISBI, "Filtered out"]
        assert [text for text, _ in cells] == ["1", "2", "2"]
        assert cells[0][1] != cells[2][1]  # each in its selection's colour
        url = driver.current_url
        driver.get(url)  # opened again (a shared link): the same selections, colours and count
        wait_for(lambda: count() == "3 of 11 papers", message="the shared URL")
        wait_for(lambda: shown() == (legend, bars, cells), message="the same colours from the URL")
        assert not [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    finally:
        driver.quit()
        server.stop()

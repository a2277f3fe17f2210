"""The explorer's callbacks and builders as plain functions, on the bundled corpus."""

from __future__ import annotations

import base64
import warnings

import dash
import numpy as np
import pytest

from app import figures, views
from app.filters import DEFAULT_COLUMNS, LIST_COLUMNS, FilterState
from app.interactions import decode_upload, next_state, render
from app.main import create_app
from app.state import ExplorerState
from tests.conftest import SEED_BIB, entry


@pytest.fixture(scope="module")
def snap():
    return ExplorerState([SEED_BIB]).snapshot()


def test_render_draws_every_view_from_one_state(snap):
    state = FilterState.with_tags(require=("modality:MRI",), paper="Hung2023MedcDiff")
    v = render(snap, state)
    assert v["count"] == "4 of 11 papers"
    assert {r["key"] for r in v["rows"] if not r.get("out")} == {"Yi2019GANReview", "Kazeminia2020GANs", "UsmanAkbar2024BrainTumor",
                                             "Hung2023MedcDiff"}
    bars = {t["name"]: sum(t["y"]) for t in v["years"]["data"]}
    assert bars["Filtered out"] == 7 and sum(bars.values()) == 11
    papers = [t for t in v["graph"]["data"] if t.get("customdata") and t["name"] != "Works outside the corpus"]
    lit = [key for t in papers for i, key in enumerate(t["customdata"])
           if t["selectedpoints"] is None or i in t["selectedpoints"]]
    assert sorted(lit) == sorted(r["key"] for r in v["rows"] if not r.get("out"))
    assert len(v["rows"]) == 11  # every paper: the grid leaves out those the filter does not keep
    ring = v["graph"]["data"][-1]
    assert ring["name"] == "Selected" and len(ring["x"]) == 1
    assert render(snap, state, full_graph=False)["graph"] is None  # a patch is enough
    assert "Med-cDiff" in str(v["details"])


def test_next_state_for_each_kind_of_interaction():
    s = FilterState()
    assert next_state(s, {"type": "ex-tag", "tag": "method:GAN"}, 1).require == ("method:GAN",)
    assert next_state(s, {"type": "ex-tag", "tag": "method:GAN"}, 0) == s  # a re-rendered button, not a click
    assert next_state(s, "ex-search", "  lung  ").text == "lung"
    brushed = next_state(s, "ex-years", None, years_selected={"range": {"x": [2017.6, 2020.2]}})
    assert (brushed.year_min, brushed.year_max) == (2018, 2020)
    clicked = next_state(s, "ex-years", None, years_clicked={"points": [{"x": 2019}]})
    assert (clicked.year_min, clicked.year_max) == (2019, 2019)
    assert next_state(s, "ex-graph", {"points": [{"customdata": "Wu2022GCML"}]}).paper == "Wu2022GCML"
    assert next_state(s, "ex-list", {"rowIndex": 3, "rowId": "Yi2019GANReview"}).paper == "Yi2019GANReview"
    assert next_state(s, "ex-list", None) == s
    assert next_state(s, "ex-columns", ["key", "year"]).columns == ("year", "key")  # in the list's order
    assert next_state(s, "ex-edges", "coupling").edges == "coupling"
    busy = FilterState.with_tags(text="x", require=("a:b",), colour="year")
    assert next_state(busy, "ex-clear", 1) == FilterState(colour="year")


def test_years_figure_shades_the_range_and_keeps_every_year(snap):
    mask = np.ones(len(snap.table), dtype=bool)
    fig = figures.years_figure(snap.table, mask, 2018, 2020)
    assert fig["data"][0]["x"] == list(range(2016, 2026))
    assert fig["layout"]["shapes"][0]["x0"] == 2017.5 and fig["layout"]["shapes"][0]["x1"] == 2020.5


def test_hover_text_escapes_titles(snap):
    nodes = snap.nodes.assign(title="<script>alert(1)</script>")
    fig = figures.graph_figure(nodes, snap.positions("tags"), snap.graph.edges("tags"), "category")
    texts = [t for trace in fig["data"] for t in trace.get("text", [])]
    assert texts and all("<script>" not in t and "&lt;script&gt;" in t for t in texts)


def test_the_list_holds_every_kept_paper_in_the_review_order(snap):
    rows = views.list_rows(snap.table)
    assert len(rows) == 11 and [r["key"] for r in rows[:2]] == ["Yi2019GANReview", "Chuquicusma2018Fool"]
    assert [r["key"] for r in rows[-2:]] == ["Wu2022GCML", "Beck2016SurVis"]  # the review's last, then the rest
    yi = rows[0]
    assert yi["year"] == 2019 and yi["authors"].startswith("Xin Yi, ") and yi["category"] == "GAN-based Models"
    assert "method:GAN" in yi["tags"] and not {"selection", "shade", "marks"} & set(yi)  # none of those: left out
    mask = FilterState.with_tags(require=("method:DCGAN",)).query().mask(snap.table).to_numpy(dtype=bool)
    kept = {r["key"] for r in views.list_rows(snap.table, mask=mask) if not r.get("out")}
    assert kept == {"Chuquicusma2018Fool", "FridAdar2018Synthetic"}
    columns = views.list_columns(("year", "title"))
    assert [c["field"] for c in columns] == list(LIST_COLUMNS) and {c["field"] for c in columns} - set(yi) == {
        "selection"}
    assert [c["field"] for c in columns if not c["hide"]] == ["year", "title"]
    assert next(c for c in columns if c["field"] == "year")["filter"] == "agNumberColumnFilter"


def test_the_lists_rows_carry_only_the_columns_shown_or_filtered(snap):
    from app.interactions import list_fields, list_rows, same_rows
    from survey.query import Selector

    state = FilterState(text="gan", selectors=(Selector("and", "tag", "method:GAN"),), columns=("year",))
    rows = list_rows(snap, state)
    assert rows and all(set(row) - {"out"} == {"key", "year"} for row in rows)  # no title: no marks; no Sel.: no shade
    shown = state.replace(columns=("selection", "title"), list_filter='{"tags":{"filter":"CT"}}')
    assert list_fields(shown) == {"selection", "title", "tags"}
    wide = list_rows(snap, shown)
    assert {"key", "title", "tags", "selection", "shade", "marks"} <= set().union(*wide) and "year" not in wide[0]
    assert same_rows(state.replace(columns=()), state) and not same_rows(shown, state)  # hidden: the rows serve


def test_an_export_of_the_narrowed_list_keeps_its_papers_in_its_order(snap):
    keys = ["Wu2022GCML", "Gone2020Deleted", 7, "Yi2019GANReview"]  # a vanished key and a non-string: left out
    assert views.in_list_order(snap.table, keys)["key"].tolist() == ["Wu2022GCML", "Yi2019GANReview"]
    assert views.in_list_order(snap.table, []).empty


def test_the_list_marks_its_row_and_the_url_keeps_its_columns():
    rule = views.list_row_classes('Odd"Key\\</script>')["ex-current"]
    assert rule == 'params.data.key === "Odd\\"Key\\\\</script>"'  # a JSON string literal, whatever the key holds
    assert views.list_row_classes(None) == {"ex-current": "params.data.key === null"}  # no row
    assert FilterState().to_url() == "" and FilterState().columns == DEFAULT_COLUMNS
    some = FilterState(columns=("key", "year"))
    assert some.to_url() == "?cols=year%2Ckey" and FilterState.from_url(some.to_url()) == some
    assert FilterState.from_url("?cols=").columns == () and FilterState.from_url("?cols=").to_url() == "?cols="
    assert FilterState.from_url("?cols=nope,title").columns == ("title",)
    assert next_state(some, "ex-clear", 1).columns == ("year", "key")  # a view setting, as the map's


def test_tag_clouds_mark_required_and_excluded_tags(snap):
    from survey.export import tag_counts, tag_name, tag_tally
    state = FilterState.with_tags(require=("method:DCGAN",), exclude=("type:tool",))
    counts = tag_counts(snap.table, snap.corpus.tag_categories())
    clouds = views.tag_clouds(counts, tag_tally(snap.table, snap.corpus.tag_categories()).counts(), state)
    buttons = {b.id["tag"]: b for section in clouds for b in section.children[1].children}
    assert "required" in buttons["method:DCGAN"].className and "excluded" in buttons["type:tool"].className
    assert buttons["method:GAN"].className == "tag"
    # the tally counts as tag_counts walks: every tag, "?" for none in a category
    assert {tag: b.children[1].children for tag, b in buttons.items()} == {
        tag_name(c, v): str(n) for c, values in counts.items() for v, n in values.items()}


def test_merge_preview_lists_each_outcome(tmp_path):
    target = tmp_path / "c.bib"
    target.write_text(entry("Old2020", "An old paper"))
    state = ExplorerState([target])
    report = state.add(entry("New2021", "A new paper") + entry("Dup2020", "An old paper")
                       + "@article{Bad,\n title = {x\n", "paste", dry_run=True)
    text = str(views.merge_preview(report, dry_run=True))
    assert "would add" in text and "duplicate" in text and "invalid" in text
    assert "line 13" in text  # the broken block's line in the pasted text


def test_decode_upload_reads_data_urls_in_any_encoding():
    assert decode_upload("data:application/x-bibtex;base64,QGFydGljbGV7", "a.bib") == ("@article{", "")
    latin = base64.b64encode("\ufeff@article{k, title={Caf\xe9}}".encode("utf-8")[3:].replace(b"\xc3\xa9", b"\xe9"))
    text, note = decode_upload("data:;base64," + latin.decode(), "old.bib")
    assert "Café" in text and "old.bib" in note and "cp1252" in note  # decoded, and said so
    bom = base64.b64encode("\ufeff@article{k,}".encode("utf-8")).decode()
    assert decode_upload("data:;base64," + bom, "b.bib") == ("@article{k,}", "")
    assert decode_upload(None, "x.bib") is None


def test_hover_line_names_the_paper(snap):
    assert views.hover_line(snap, "Yi2019GANReview") == ("Generative Adversarial Network in Medical Imaging: "
                                                         "A Review (Xin Yi et al., 2019) [Yi2019GANReview]")
    assert views.hover_line(snap, None) == ""


def test_large_maps_leave_titles_out_of_hover_labels(snap, monkeypatch):
    monkeypatch.setattr(figures, "HOVER_TITLES_MAX", 5)
    fig = figures.graph_figure(snap.nodes, snap.positions("tags"), snap.graph.edges("tags"), "category")
    labels = [t for trace in fig["data"] for t in trace.get("text", [])]
    assert labels and all("<br>" not in t for t in labels) and "Yi2019GANReview (2019)" in labels


def test_the_list_marks_the_searched_words_where_the_browser_counts_them():
    titles = ["U-Net GANs for organ images", "Müller's review", "\U0001d49c GAN", "<b>x</b>", None]
    assert views.title_marks(titles, "unet gan muller") == [[[0, 5], [6, 10]], [[0, 6]], [[3, 6]], [], []]
    assert views.title_marks(titles, "") == [[]] * 5  # (the astral character above: two UTF-16 units)
    rows = views.list_rows(ExplorerState([SEED_BIB]).snapshot().table, "diffusion")
    marked = [r for r in rows if "marks" in r]
    assert marked and all(r["title"][a:b].lower().startswith("diffusion") for r in marked for a, b in r["marks"])


def test_the_csv_download_names_files_relative_to_the_corpus_folder(tmp_path):
    import csv
    import io

    from survey.export import to_csv

    folder = tmp_path / "library"
    (folder / "more").mkdir(parents=True)
    (folder / "main.bib").write_text(entry("A2020", "One"), encoding="utf-8")
    (folder / "more" / "extra.bib").write_text(entry("B2021", "Two"), encoding="utf-8")
    state = ExplorerState([folder / "main.bib", folder / "more" / "extra.bib"])
    table = state.snapshot().table
    files = {row["key"]: row["file"] for row in csv.DictReader(io.StringIO(to_csv(table, root=state.root)))}
    assert files == {"A2020": "main.bib", "B2021": "more/extra.bib"}
    elsewhere = {row["file"] for row in csv.DictReader(io.StringIO(to_csv(table, root=folder / "more")))}
    assert elsewhere == {"main.bib", "extra.bib"}  # outside the root: the name alone, never the path
    assert str(tmp_path) in to_csv(table)  # the CLI's export, on the user's own machine, keeps the path


def test_every_page_builds_without_a_deprecation_warning():
    """Each page's layout as a first request builds it (the explorer with its paper list, which was a
    dash_table.DataTable, deprecated in Dash 4), with a DeprecationWarning made an error."""
    app = create_app([SEED_BIB])
    with app.server.test_request_context("/"), warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        built = {page["path"]: page["layout"]() for page in dash.page_registry.values()}
    assert set(built) >= {"/", "/reproductions", "/reader-study", "/gaps"} and all(built.values())
    assert "AgGrid" in str(built["/"]) and "DataTable" not in str(built["/"])

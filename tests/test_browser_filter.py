"""The filter the browser runs (app/assets/explorer-filter.js), in Node, against the Python it stands in for:
the state's URL and transitions (``FilterState``, ``next_state``), the papers kept (``Query.mask``), the
histogram (``figures.years_figure``), the map's lit points and colours (``figures.graph_highlight``) and
the list's selections (``views.list_rows``), on the bundled corpus, a real library and generated states."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app import browser_filter, figures
from app.filters import COLOUR_MODES, SELECTION_COLOURS, FilterState
from app.interactions import list_rows, render
from app.state import ExplorerState
from survey.query import SELECTOR_KINDS, SELECTOR_OPS, Selector
from tests.browser import unavailable
from tests.conftest import REPO

SCRIPT = REPO / "app" / "assets" / "explorer-filter.js"
REAL = REPO.parent / "shared" / "realworld-bib"

# One Node process per module, answering a JSON line per question (so that hypothesis pays no start-up).
DRIVER = r"""
const filter = require(process.argv[1]);
const readline = require('readline');
let index = null;
readline.createInterface({input: process.stdin}).on('line', line => {
    const q = JSON.parse(line);
    let out;
    if (q.op === 'load') { index = q.index; out = true; }
    if (q.op === 'url') { out = filter.toUrl(filter.parseState(q.search)); }
    if (q.op === 'next') {
        out = filter.toUrl(filter.next(filter.parseState(q.search), q.trigger, q.value, q.selected, q.clicked));
    }
    if (q.op === 'views') {
        const state = filter.parseState(q.search), drawn = filter.views(index, state, q.match);
        out = drawn && {count: drawn.count, keep: Array.from(drawn.keep), numbers: Array.from(drawn.coloured.numbers),
                        years: filter.yearsFigure(index, drawn.keep, state, drawn.selection, {}),
                        map: filter.mapChanges(index, q.data, drawn.keep, drawn.selection)};
    }
    process.stdout.write(JSON.stringify(out === undefined ? null : out) + '\n');
});
"""


class Node:
    def __init__(self):
        node = shutil.which("node")
        if node is None:
            unavailable("Node.js is not installed (apt-get install nodejs; CI has it for axe-core)")
        self.process = subprocess.Popen([node, "-e", DRIVER, str(SCRIPT)], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, encoding="utf-8")

    def ask(self, **question):
        self.process.stdin.write(json.dumps(question) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        assert line, "the Node driver stopped"
        return json.loads(line)

    def close(self):
        self.process.stdin.close()
        self.process.wait(timeout=10)


@pytest.fixture(scope="module")
def node():
    driver = Node()
    yield driver
    driver.close()


def _snapshot(paths):
    return ExplorerState(paths).snapshot()


@pytest.fixture(scope="module")
def bundled():
    return _snapshot([REPO / "bib" / "corpus.bib"])


# ------------------------------------------------------------------ states and their URLs

VALUES = st.one_of(st.sampled_from(["method:GAN", "modality:?", "Xin Yi", "Müller", "a&b=c", "x+y", "100%",
                                    "*~!'()", "tag=x", " lead", "ﬁ"]), st.text(min_size=1, max_size=8))
SELECTORS = st.builds(Selector, st.sampled_from(SELECTOR_OPS), st.sampled_from(SELECTOR_KINDS), VALUES)
YEARS = st.one_of(st.none(), st.integers(1900, 2030))
STATES = st.builds(
    FilterState, text=st.one_of(st.just(""), st.text(max_size=8)), selectors=st.lists(SELECTORS, max_size=5).map(
        lambda s: tuple({(t.kind, t.value): t for t in s}.values())),
    year_min=YEARS, year_max=YEARS, paper=st.one_of(st.none(), VALUES), similar=st.one_of(st.none(), VALUES),
    colour=st.sampled_from(COLOUR_MODES), edges=st.sampled_from(["tags", "citations"]),
    columns=st.sampled_from([("year", "title"), ("selection", "year", "title", "authors", "venue", "category", "key")]),
    list_sort=st.sampled_from([(), (("year", "desc"),)]),
    list_filter=st.sampled_from(["", '{"title":{"filter":"a&b"}}']))


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(state=STATES)
def test_the_browser_writes_the_url_python_writes(node, state):
    url = state.to_url()
    assert node.ask(op="url", search=url) == url


def _clicks(state: FilterState):
    """Every click of the filter the browser answers on ``state``: (trigger, value, selectedData, clickData)."""
    chips = [chip for chip, _ in state.chips()] + ["years", "similar", "q", "nothing=here"]
    out = [({"type": "ex-tag", "tag": "method:GAN"}, 1), ({"type": "ex-tag", "tag": "method:GAN"}, 0),
           ({"type": "ex-selector", "kind": "author", "value": "Müller"}, 2), ("ex-clear", 1)]
    out += [({"type": "ex-tag", "tag": s.value}, 1) for s in state.selectors if s.kind == "tag"]
    out += [({"type": "ex-selector", "kind": s.kind, "value": s.value}, 3) for s in state.selectors]
    out += [({"type": kind, "chip": chip}, 1) for chip in chips for kind in ("ex-op", "ex-chip")]
    out = [(trigger, value, None, None) for trigger, value in out]
    return out + [("ex-years", None, {"range": {"x": [2016.6, 2019.4]}}, None),
                  ("ex-years", None, {"range": {"x": [2019.6, 2019.4]}}, None),
                  ("ex-years", None, {"points": [{"x": 2021}, {"x": 2017}]}, {"points": [{"x": 2001}]}),
                  ("ex-years", None, None, {"points": [{"x": 2001}]}), ("ex-years", None, None, None)]


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(state=STATES)
def test_each_click_gives_the_url_the_server_would_give(node, state):
    from app.interactions import next_state

    for trigger, value, selected, clicked in _clicks(state):
        expected = next_state(state, trigger, value, selected, clicked).to_url()
        got = node.ask(op="next", search=state.to_url(), trigger=trigger, value=value, selected=selected,
                       clicked=clicked)
        assert got == expected, (trigger, value)


@pytest.mark.parametrize("search", ["?tag=method:GAN&tag=method:GAN&not=method:GAN", "??q=a+b&q=c&q=",
                                    "?years=2018&years=2019", "?years=soon", "?years=-2019", "?years=2017-",
                                    "?years=%E2%80%892018", "?years=2_018-2019", "?tag=%ZZ&or=%C3%28",
                                    "?cols=&cols=year", "?colour=purple&paper=&paper=Yi", "?and=x&tag",
                                    "?tag=a&listfilter=&sort=year:desc&edges=coupling&q=z"])
def test_odd_urls_are_read_as_python_reads_them(node, search):
    """The state of a hand-written URL: the browser's URL is one the server reads as the same state
    (it writes the canonical URL back when the page draws it)."""
    got = node.ask(op="url", search=search)
    assert FilterState.from_url(got) == FilterState.from_url(search)


# ------------------------------------------------------------------ the papers kept, and their views

def _python_views(snap, state: FilterState) -> dict:
    v = render(snap, state, full_graph=True, with_rows=False)
    return {"count": v["count"], "years": v["years"], "graph": v["graph"]}


def _decoded(value):
    """A figure's number array, decoded where it is a plotly.js typed array."""
    if isinstance(value, dict) and "bdata" in value:
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"]).tolist()
    return value


def _compare(node, snap, state: FilterState, must_draw: bool = True):
    """The browser's count, histogram and map changes for ``state`` equal the server's; False when
    the browser leaves them to the server."""
    graph = snap.graph_figure(state.edges, state.colour, state.size)
    data = [{"name": t.get("name"), "customdata": t.get("customdata")} for t in graph["data"]]
    match = browser_filter.match(snap.table, state, snap.similar_to)
    got = node.ask(op="views", search=state.to_url(), match=match, data=data)
    if got is None:
        assert not must_draw, state.to_url()
        return False
    expected = _python_views(snap, state)
    mask = state.query(snap.similar_to).mask(snap.table).to_numpy(dtype=bool)
    assert got["keep"] == mask.astype(int).tolist()
    rows = {row["key"]: row for row in list_rows(snap, state)}  # the list's Sel. column, and what it leaves out
    assert got["numbers"] == [rows[key].get("selection") for key in snap.table["key"]]
    assert [not rows[key].get("out") for key in snap.table["key"]] == mask.tolist()
    assert got["count"] == expected["count"]
    assert got["years"]["data"] == expected["years"]["data"]
    assert got["years"]["layout"]["shapes"] == expected["years"]["layout"]["shapes"]
    traces, changes = got["map"]["traces"], got["map"]["changes"]
    if state.colour != "selection":  # only the lit points change: nothing else is redrawn
        assert list(changes) == ["selectedpoints"]
    changes = {name: changes.get(name, [None] * len(traces)) for name in ("selectedpoints", "marker.color", "name",
                                                                           "visible")}
    for j, i in enumerate(traces):
        trace = expected["graph"]["data"][i]
        if changes["selectedpoints"][j] is not None or "customdata" in trace:
            assert changes["selectedpoints"][j] == trace.get("selectedpoints"), trace["name"]
        if changes["marker.color"][j] is not None:
            assert changes["marker.color"][j] == _decoded(trace["marker"]["color"])
        if changes["name"][j] is not None:
            assert (changes["name"][j], changes["visible"][j]) == (trace["name"], trace["visible"])
    return True


def _states(snap, rng: np.random.Generator, n: int):
    """``n`` states over the corpus's own tags, authors and venues (and a few it lacks)."""
    index = snap.filter_index
    values = [(kind, name) for kind, part in index["kinds"].items() for name in part["names"]]
    years = [y for y in index["years"] if y is not None]
    for _ in range(n):
        picked = [values[i] for i in rng.choice(len(values), size=rng.integers(0, 5), replace=True)]
        selectors = tuple({(k, v): Selector(str(rng.choice(SELECTOR_OPS)), k, v) for k, v in picked}.values())
        low, high = (sorted(rng.choice(years, 2).tolist()) if years and rng.random() < 0.4 else (None, None))
        yield FilterState(selectors=selectors, year_min=low, year_max=high if rng.random() < 0.7 else None,
                          colour=str(rng.choice(COLOUR_MODES)), text=str(rng.choice(["", "", "gan", "ct OR mri"])),
                          similar=str(rng.choice(index["keys"])) if rng.random() < 0.15 else None)


def test_the_browser_keeps_and_draws_what_the_server_does_on_the_bundled_corpus(node, bundled):
    node.ask(op="load", index=bundled.filter_index)
    for state in _states(bundled, np.random.default_rng(0), 150):
        _compare(node, bundled, state)


def test_on_a_real_library_authors_are_found_however_the_cloud_spells_them(node):
    paths = sorted(REAL.glob("*.bib")) if REAL.is_dir() else []
    if not paths:
        pytest.skip(f"{REAL} is absent (the real BibTeX libraries of ../shared)")
    snap = _snapshot([max(paths, key=lambda p: p.stat().st_size if p.stat().st_size < 3_000_000 else 0)])
    node.ask(op="load", index=snap.filter_index)
    for state in _states(snap, np.random.default_rng(1), 40):
        _compare(node, snap, state)


def test_what_the_index_cannot_resolve_is_left_to_the_server(node, bundled):
    node.ask(op="load", index=bundled.filter_index)
    author = bundled.filter_index["kinds"]["author"]["names"][0]
    for state in [FilterState(selectors=(Selector("and", "tag", "method:NoSuchThing"),)),
                  FilterState(selectors=(Selector("or", "author", author.upper() + " "),))]:
        assert not _compare(node, bundled, state, must_draw=False)
    arabic = "?years=%D9%A2%D9%A0%D9%A1%D9%A8"  # Python's int() reads these digits: the browser does not guess
    assert FilterState.from_url(arabic).year_min == 2018
    assert node.ask(op="views", search=arabic, match=None, data=[]) is None
    stale = browser_filter.match(bundled.table, FilterState(text="gan"), bundled.similar_to)
    assert node.ask(op="views", search="?q=lora", match=stale, data=[]) is None  # a search it has no answer for


def test_selection_colours_follow_the_first_six_selections(node, bundled):
    node.ask(op="load", index=bundled.filter_index)
    tags = bundled.filter_index["kinds"]["tag"]["names"][:len(SELECTION_COLOURS) + 2]
    assert _compare(node, bundled, FilterState(selectors=tuple(Selector("or", "tag", t) for t in tags),
                                               colour="selection"))


def test_the_index_travels_as_json_and_names_the_maps_traces(bundled):
    index = bundled.filter_index
    assert json.loads(json.dumps(index)) == index
    assert index["traces"]["nodes"] == figures.NODE_TRACES and len(index["keys"]) == len(bundled.table)

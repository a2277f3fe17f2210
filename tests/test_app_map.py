"""The map explains itself: node labels, the line under the map, edge hover labels, edge widths by
weight, why a mode has no edge, node size by a chosen measure, colour by cluster, and positions that
stay when a paper is added. Pure functions first, then the explorer in headless Chromium."""

from __future__ import annotations

import base64
import shutil

import numpy as np
import pandas as pd
import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By

from app import figures, map_text
from app.filters import DEFAULT_SIZE, FilterState
from app.interactions import next_state, render
from app.state import ExplorerState
from survey import neighbourhood as nb
from survey.graph import EDGE_MODES, SIMILARITY_NEIGHBOURS, TAG_NEIGHBOURS
from tests.browser import LiveServer, wait_for
from tests.conftest import REPO, SEED_BIB, entry

# P1 and P2 both cite P3 and P4 (coupling 2; P3 and P4 co-cited twice); P5 cites P1; P6 cites
# nothing and shares no tag; P7 and P8 share a rare tag.
LINKED = [
    entry("P1", "Diffusion for lung CT", 2021, author="{Yi, Xin and Walia, Ekta}",
          keywords="{method:DDPM, modality:CT}", references="{P3 P4}"),
    entry("P2", "Latent diffusion for CT", 2022, author="{{Usman Akbar}, Muhammad and Larsson, M{\\aa}ns}",
          keywords="{method:DDPM, modality:CT}", references="{P3 P4}"),
    entry("P3", "A GAN for MRI", 2018, author="{Frid-Adar, Maayan}", keywords="{method:GAN, modality:MRI}"),
    entry("P4", "Another GAN for MRI", 2019, author="{Anna M{\\\"u}ller}", keywords="{method:GAN, modality:MRI}"),
    entry("P5", "Citing P1", 2023, author="{van Ginneken, Bram}", keywords="{method:DDPM, modality:X-ray}",
          references="{P1}"),
    entry("P6", "Alone", author="{}", keywords="{method:lonely}"),
    entry("P7", "Rare one", 2020, author="{Beck, Fabian}", keywords="{method:VAE, task:rare}"),
    entry("P8", "Rare two", 2020, author="{Koch, Sebastian}", keywords="{method:VAE, task:rare}"),
]


def write(folder, *entries: str):
    folder.mkdir(parents=True, exist_ok=True)
    bib = folder / "linked.bib"
    bib.write_text("".join(entries), encoding="utf-8")
    return bib


@pytest.fixture(scope="module")
def linked(tmp_path_factory):
    return ExplorerState([write(tmp_path_factory.mktemp("linked"), *LINKED)]).snapshot()


@pytest.fixture(scope="module")
def seed():
    return ExplorerState([SEED_BIB]).snapshot()


def decoded(array) -> np.ndarray:
    """A plotly typed array of ``figures._f4`` as floats."""
    return np.frombuffer(base64.b64decode(array["bdata"]), dtype="<f4").astype(float)


def node_xy(figure: dict) -> dict[str, tuple[float, float]]:
    """Node key -> its coordinates in the figure, from the node traces."""
    out = {}
    for trace in figure["data"]:
        if trace.get("customdata"):
            out.update(zip(trace["customdata"], zip(decoded(trace["x"]), decoded(trace["y"]))))
    return out


def labels_of(figure: dict) -> list[str]:
    return [a["text"] for a in figure["layout"]["annotations"] if a.get("name") == "label"]


# --- labels ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("field, family", [
    ("Yi, Xin and Walia, Ekta", "Yi"), ("Xin Yi and Ekta Walia", "Yi"), ("{Usman Akbar}, Muhammad", "Usman Akbar"),
    ("van Ginneken, Bram", "van Ginneken"), ("{Barnes and Noble}", "Barnes and Noble"),
    ("M{\\\"u}ller, Anna", "Müller"), ("Anna M{\\\"u}ller", "Müller"), ("Frid-Adar, Maayan", "Frid-Adar"),
    ("", ""), ("   ", ""),
])
def test_family_name_reads_the_first_author_as_bibtex_does(field, family):
    assert map_text.family_name(field) == family


def test_labels_are_family_name_and_year(seed, linked):
    assert seed.labels["Yi2019GANReview"] == "Yi 2019"
    assert seed.labels["UsmanAkbar2024BrainTumor"] == "Usman Akbar 2024"
    assert linked.labels["P4"] == "Müller 2019" and linked.labels["P5"] == "van Ginneken 2023"
    assert linked.labels["P6"] == "P6"  # no author: the key


def test_a_small_map_labels_every_node(seed):
    figure = render(seed, FilterState())["graph"]
    assert sorted(labels_of(figure)) == sorted(seed.labels.values())
    selected = labels_of(render(seed, FilterState(paper="Wu2022GCML"))["graph"])
    assert "<b>Wu 2022</b>" in selected and len(selected) == len(seed.labels)


def big_nodes(n: int) -> pd.DataFrame:
    return pd.DataFrame({"key": [f"K{i}" for i in range(n)], "kind": "paper", "label": [f"L{i}" for i in range(n)],
                         "score": np.arange(n, dtype=float)})


def test_a_large_map_labels_the_largest_papers_and_the_selection_with_its_neighbours():
    nodes = big_nodes(figures.LABELS_ALL_MAX + 1)
    assert len(figures.labelled(nodes.head(figures.LABELS_ALL_MAX), None)) == figures.LABELS_ALL_MAX
    top = figures.labelled(nodes, None)
    assert top == [f"K{i}" for i in range(len(nodes) - 1, len(nodes) - 1 - figures.LABELS_TOP, -1)]
    edges = pd.DataFrame({"source": ["K0", "K1", "K2", "K5"], "target": ["K1", "K3", "K0", "K6"],
                          "weight": [0.2, 0.9, 0.7, 1.0]})
    find = figures.neighbour_finder(edges)
    assert find("K0") == ["K2", "K1"] and find("K6") == ["K5"] and find("K40") == []  # strongest link first
    picked = figures.labelled(nodes, "K0", find("K0"))
    assert picked[:len(top)] == top and picked[len(top):] == ["K0", "K2", "K1"]
    assert figures.labelled(nodes.assign(score=1.0), None) == []  # one size for all: no "largest"
    assert figures.labelled(nodes, "nobody", ["K1"]) == top
    many = figures.neighbour_finder(pd.DataFrame({"source": "K0", "target": [f"K{i}" for i in range(1, 61)],
                                                  "weight": 1.0}))
    assert len(figures.labelled(nodes.assign(score=1.0), "K0", many("K0"))) == 1 + figures.LABEL_NEIGHBOURS


def test_labels_are_escaped(linked):
    nodes = linked.map_nodes().assign(label="<a href='x'>bad</a>")
    notes = figures.label_annotations(nodes, linked.positions("tags"), None)
    assert notes and all("<a" not in n["text"] and "&lt;a" in n["text"] for n in notes)


# --- the line under the map ---------------------------------------------------------------------------------
def test_the_legend_says_what_an_edge_is_with_the_graphs_numbers(linked):
    for mode in EDGE_MODES:
        line = linked.map_legend(FilterState(edges=mode))
        assert map_text.EDGE_MEANING[mode] in line and map_text.SIZE_MEANING[DEFAULT_SIZE] in line
    assert str(TAG_NEIGHBOURS) in map_text.EDGE_MEANING["tags"]
    assert str(SIMILARITY_NEIGHBOURS) in map_text.EDGE_MEANING["coupling"]
    assert str(SIMILARITY_NEIGHBOURS) in map_text.EDGE_MEANING["cocitation"]
    line = map_text.legend("tags", nb.SIZE_PAGERANK, "cluster", 50_000, figures.EDGE_LIMIT, figures.EDGE_HOVER_MAX, "")
    assert f"{figures.EDGE_LIMIT:,}" in line and "50,000" in line and f"{figures.EDGE_HOVER_MAX:,}" in line
    assert map_text.SIZE_MEANING[nb.SIZE_PAGERANK] in line and map_text.CLUSTER_MEANING in line


# --- edges: hover, widths, none -----------------------------------------------------------------------------
def test_every_drawn_edge_has_a_hover_marker_at_its_middle_saying_why(linked):
    for mode in EDGE_MODES:
        figure = linked.graph_figure(mode, "category")
        markers = figure["data"][figures.EDGE_HOVER_TRACE]
        edges = linked.hover_edges(mode)
        assert len(edges) == len(linked.graph.edges(mode)) and len(markers["hovertext"]) == len(edges)
        assert "customdata" not in markers and "text" not in markers  # not taken for nodes
        xy = linked.positions(mode)
        middle = [((xy[s][0] + xy[t][0]) / 2, (xy[s][1] + xy[t][1]) / 2) for s, t in zip(edges.source, edges.target)]
        assert np.allclose(decoded(markers["x"]), [m[0] for m in middle], atol=1e-6)
        assert np.allclose(decoded(markers["y"]), [m[1] for m in middle], atol=1e-6)
        for (s, t, w), text in zip(edges.itertuples(index=False), markers["hovertext"]):
            why = nb.explain_edge(linked.corpus, linked.graph, mode, s, t)
            assert linked.labels[s] in text and linked.labels[t] in text and f"weight {why.weight:.3g}" in text
    texts = dict(zip(zip(linked.hover_edges("coupling").source, linked.hover_edges("coupling").target),
                     linked.graph_figure("coupling", "category")["data"][figures.EDGE_HOVER_TRACE]["hovertext"]))
    assert "2" in texts["P1", "P2"].split("<br>")[1]  # both cite P3 and P4
    tags = dict(zip(zip(linked.hover_edges("tags").source, linked.hover_edges("tags").target),
                    linked.graph_figure("tags", "category")["data"][figures.EDGE_HOVER_TRACE]["hovertext"]))
    assert "method:VAE" in tags["P7", "P8"] and "task:rare" in tags["P7", "P8"]


def test_the_line_under_the_map_explains_a_hovered_edge_in_full(linked):
    edges = linked.hover_edges("coupling")
    point = next(i for i, (s, t) in enumerate(zip(edges.source, edges.target)) if {s, t} == {"P1", "P2"})
    line = linked.edge_line("coupling", point)
    assert "[P1]" in line and "[P2]" in line and "A GAN for MRI (2018)" in line and "Another GAN for MRI" in line
    cited = linked.hover_edges("citations")
    point = next(i for i, (s, t) in enumerate(zip(cited.source, cited.target)) if (s, t) == ("P5", "P1"))
    assert "P5 cites P1" in linked.edge_line("citations", point)
    assert linked.edge_line("coupling", len(edges)) == "" and linked.edge_line("coupling", None) == ""


def test_large_maps_cap_the_hover_markers_and_keep_them_short(linked, monkeypatch):
    monkeypatch.setattr(figures, "EDGE_HOVER_MAX", 2)
    edges = linked.graph.edges("tags")
    figure = figures.graph_figure(linked.map_nodes(), linked.positions("tags"), edges, "category")
    markers = figure["data"][figures.EDGE_HOVER_TRACE]
    strongest = edges.nlargest(2, "weight")["weight"]
    assert markers["hovertext"] == [f"weight {w:.3g}" for w in strongest]


def test_edge_width_follows_weight():
    assert list(figures.edge_buckets(np.ones(5))) == [figures.EDGE_BUCKETS // 2] * 5
    weights = np.array([0.1, 0.2, 0.3, 0.5, 0.6, 0.7, 0.9, 1.0, 1.1])
    buckets = figures.edge_buckets(weights)
    assert list(buckets) == sorted(buckets) and set(buckets) == set(range(figures.EDGE_BUCKETS))
    assert list(figures.EDGE_WIDTHS) == sorted(figures.EDGE_WIDTHS) and len(figures.edge_buckets(np.zeros(0))) == 0


def test_the_map_draws_edges_in_traces_by_weight(linked):
    edges = linked.graph.edges("tags")
    figure = linked.graph_figure("tags", "category")
    lines = figure["data"][:figures.EDGE_BUCKETS]
    assert [t["line"]["width"] for t in lines] == list(figures.EDGE_WIDTHS)
    per_trace = [len(decoded(t["x"])) // 3 for t in lines]  # start, end, gap per edge
    assert sum(per_trace) == len(edges)
    buckets = figures.edge_buckets(edges["weight"].to_numpy())
    assert per_trace == [int((buckets == b).sum()) for b in range(figures.EDGE_BUCKETS)]


def test_a_mode_without_edges_says_why_and_what_to_do(seed, linked):
    v = render(seed, FilterState(edges="citations"))
    notes = [a["text"] for a in v["graph"]["layout"]["annotations"] if a.get("name") == "no-edges"]
    found = nb.no_edges(seed.corpus, seed.graph, "citations")
    assert found.cause == nb.NOT_ENRICHED and len(notes) == 1 and "survey enrich" in notes[0]
    assert found.message in v["map_legend"]
    patch = render(seed, FilterState(edges="citations", paper="Wu2022GCML"), full_graph=False)["graph_changes"]
    assert [a for a in patch["layout"]["annotations"] if a.get("name") == "no-edges"]  # kept by a patch
    assert not [a for a in render(seed, FilterState())["graph"]["layout"]["annotations"] if a.get("name") == "no-edges"]
    assert seed.empty_message("tags") == "" and linked.empty_message("citations") == ""


# --- sizes -----------------------------------------------------------------------------------------------------
def test_size_is_kept_in_the_url_and_by_clearing():
    state = FilterState(size=nb.SIZE_PAGERANK)
    assert state.to_url() == "?size=pagerank" and FilterState.from_url("?size=pagerank") == state
    assert FilterState.from_url("?size=area").size == DEFAULT_SIZE == nb.SIZE_CITED_BY
    assert FilterState().to_url() == ""
    assert next_state(FilterState(), "ex-size", nb.SIZE_IN_DEGREE).size == nb.SIZE_IN_DEGREE
    assert next_state(FilterState(text="x", size="none"), "ex-clear", 1) == FilterState(size="none")


def test_node_size_by_each_measure(linked):
    default = linked.map_nodes().set_index("key")
    # no OpenAlex counts here: the default fills cited-by with the citations inside the graph
    assert default.loc["P1", "score"] == 1 and default.loc["P3", "score"] == 2 and default.loc["P6", "score"] == 0
    assert np.allclose(default["size"], figures.node_sizes(default["in_degree"].astype(float)))
    assert default.loc["P3", "size"] > default.loc["P1", "size"] > default.loc["P6", "size"]
    rank = linked.map_nodes(nb.SIZE_PAGERANK).set_index("key")
    assert rank["size"].idxmax() in {"P3", "P4"} and rank["size"].nunique() > 2
    assert linked.map_nodes(nb.SIZE_NONE)["size"].nunique() == 1
    degree = linked.map_nodes(nb.SIZE_IN_DEGREE).set_index("key")
    assert np.allclose(degree["score"], degree["in_degree"])
    figure = render(linked, FilterState(size=nb.SIZE_PAGERANK))["graph"]
    sizes = {k: s for t in figure["data"][figures.NODE_TRACES:] if t.get("customdata") and isinstance(
        t["marker"].get("size"), dict) for k, s in zip(t["customdata"], decoded(t["marker"]["size"]))}
    assert np.allclose([sizes[k] for k in rank.index], rank["size"], atol=1e-4)


# --- clusters -------------------------------------------------------------------------------------------------------
def test_colour_by_cluster_names_each_cluster_by_its_tags(linked, seed):
    for snap in (linked, seed):
        figure = render(snap, FilterState(colour="cluster"))["graph"]
        groups = figure["data"][figures.NODE_TRACES + 1:-1]  # after the works outside the corpus, before the ring
        found = nb.clusters(snap.corpus, snap.graph, top=map_text.CLUSTER_TAGS)
        named = {c.number: c for c in found}
        for trace in groups:
            number = int(trace["name"].split(":")[0].removeprefix("Cluster ")) - 1
            assert all(tag in trace["name"] for tag in named[number].tags["tag"])
            members = set(named[number].papers)
            assert set(trace["customdata"]) == members
        colours = [t["marker"]["color"] for t in groups]
        assert len(set(colours)) == len(colours)
    assert FilterState.from_url("?colour=cluster").colour == "cluster"
    v = render(seed, FilterState.with_tags(colour="cluster", require=("method:DCGAN",)))
    lit = [k for t in v["graph"]["data"][figures.NODE_TRACES + 1:-1]
           for i, k in enumerate(t["customdata"]) if t["selectedpoints"] is None or i in t["selectedpoints"]]
    assert sorted(lit) == ["Chuquicusma2018Fool", "FridAdar2018Synthetic"]


def test_clusters_beyond_the_coloured_ones_share_one_trace(linked, monkeypatch):
    monkeypatch.setattr(figures, "CLUSTER_COLOURS", figures.CLUSTER_COLOURS[:1])
    snap = ExplorerState([linked.corpus.files[0].path]).snapshot()  # cluster names are kept per snapshot
    names = [t["name"] for t in render(snap, FilterState(colour="cluster"))["graph"]["data"][figures.NODE_TRACES + 1:-1]]
    assert names[0].startswith("Cluster 1") and names[-1] == figures.OTHER_CLUSTERS and len(names) == 2


def test_clusters_can_stop_at_the_largest(linked):
    every = nb.clusters(linked.corpus, linked.graph, top=2)
    two = nb.clusters(linked.corpus, linked.graph, top=2, largest=2)
    assert [c.number for c in two] == [0, 1] and [c.members for c in two] == [c.members for c in every[:2]]


# --- odd corpora ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("entries", [
    [],  # an empty corpus
    ["@article{A,\n  title = {No year, no author}\n}\n", "@misc{B,\n  title = {Bare}\n}\n"],
    [entry(f"K{i}", f"Paper {i}", 2000 + i % 5, author=f"{{Author{i}, A}}", keywords="{method:GAN}",
           references=f"{{K{(i + 1) % 70}}}") for i in range(70)],  # more nodes than LABELS_ALL_MAX
])
def test_every_map_option_draws_on_odd_corpora(tmp_path, entries):
    snap = ExplorerState([write(tmp_path, *entries)]).snapshot()
    keys = list(snap.table["key"])
    for mode in EDGE_MODES:
        for colour in ("category", "year", "cluster"):
            for size in nb.SIZE_MEASURES:
                state = FilterState(edges=mode, colour=colour, size=size, paper=keys[0] if keys else None)
                v = render(snap, state)
                assert v["map_legend"] and v["graph"]["data"][-1]["name"] == "Selected"
                render(snap, state, full_graph=False)
    if len(keys) > figures.LABELS_ALL_MAX:
        shown = labels_of(render(snap, FilterState(edges="citations", paper="K10"))["graph"])
        # every paper is cited once: no "largest" to label, only the selection and its neighbours
        assert sorted(shown) == sorted(["<b>Author10 2000</b>", "Author9 2004", "Author11 2001"])


# --- positions stay -----------------------------------------------------------------------------------------------------
def test_adding_a_paper_keeps_the_other_nodes_where_they_were(tmp_path):
    """Through the explorer: a paper added with ExplorerState.add moves no node whose links it leaves alone."""
    papers = [entry(f"P{i}", f"Paper {i}", 2020, keywords=f"{{method:M{i % 4}}}",
                    references="{" + f"P{(i + 1) % 30} P{(i + 7) % 30}" + "}") for i in range(30)]
    state = ExplorerState([write(tmp_path, *papers)])
    before = {mode: node_xy(render(state.snapshot(), FilterState(edges=mode))["graph"]) for mode in ("citations", "tags")}
    report = state.add(entry("NEW", "New paper", 2024, keywords="{method:M3}", references="{P3}"), "pasted text",
                       dry_run=False)
    assert report.written
    snap = state.snapshot()
    after = {mode: node_xy(render(snap, FilterState(edges=mode))["graph"]) for mode in ("citations", "tags")}
    assert "NEW" in after["citations"] and "NEW" not in before["citations"]
    moved = {k for k in before["citations"] if after["citations"][k] != before["citations"][k]}
    assert moved <= {"P3"}  # it gained a citing paper; no other paper's links changed
    moved = {k for k in before["tags"] if after["tags"][k] != before["tags"][k]}
    assert moved <= {f"P{i}" for i in range(3, 30, 4)}  # only papers tagged method:M3 gain a neighbour


# --- in the browser ---------------------------------------------------------------------------------------------------
JS_PLOT = "return document.querySelector('#ex-graph .js-plotly-plot')"
JS_MARKER = """
const gd = document.querySelector('#ex-graph .js-plotly-plot');
const t = gd._fullData[arguments[0]], i = arguments[1];
const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
return [xa._offset + xa.l2p(t.x[i]), ya._offset + ya.l2p(t.y[i]), gd.offsetWidth, gd.offsetHeight];"""


@pytest.fixture
def server(tmp_path_factory):
    """A live explorer on LINKED, one per test: the explorer's state is one per process, so a test
    that starts another server (on another corpus) takes it over."""
    folder = tmp_path_factory.mktemp("map-browser")
    shutil.copy(REPO / "bib" / "tags.toml", folder / "tags.toml")
    live = LiveServer([write(folder, *LINKED)])
    yield live
    live.stop()


def plot_state(d, script: str):
    return d.execute_script("const gd = document.querySelector('#ex-graph .js-plotly-plot'); " + script)


def drawn_labels(d) -> list[str]:
    return [e.text for e in d.find_elements(By.CSS_SELECTOR, "#ex-graph .annotation-text")]


def option(d, text: str):
    """An option of the open Dash dropdown."""
    return d.find_element(By.XPATH, f"//label[contains(@class, 'dash-dropdown-option')][contains(., '{text}')]")


def legend_line(d) -> str:
    return d.find_element(By.ID, "ex-map-legend").text


@pytest.mark.browser
def test_the_map_shows_labels_a_legend_line_and_edges_by_weight(driver, server):
    driver.get(server.url + "/?edges=coupling")
    wait_for(lambda: driver.execute_script(JS_PLOT), message="the map")
    labels = wait_for(lambda: drawn_labels(driver), message="the labels")
    assert {"Yi 2021", "Usman Akbar 2022", "Müller 2019", "P6"} <= set(labels)
    assert str(SIMILARITY_NEIGHBOURS) in legend_line(driver)
    widths = plot_state(driver, f"return gd.data.slice(0, {figures.EDGE_BUCKETS}).map(t => t.line.width);")
    assert widths == list(figures.EDGE_WIDTHS)
    driver.find_element(By.ID, "ex-edges").click()
    wait_for(lambda: option(driver, "edges: tags"), message="the edge modes").click()
    wait_for(lambda: str(TAG_NEIGHBOURS) in legend_line(driver), message="the legend of the tag edges")
    assert "edges=coupling" not in driver.current_url
    severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert not severe, severe


@pytest.mark.browser
def test_hovering_an_edge_says_why_the_two_are_linked(driver, server):
    driver.get(server.url + "/?edges=citations")
    wait_for(lambda: driver.execute_script(JS_PLOT), message="the map")
    snap = ExplorerState([server.paths[0]]).snapshot()
    edges = snap.hover_edges("citations")
    point = next(i for i, (s, t) in enumerate(zip(edges.source, edges.target)) if (s, t) == ("P5", "P1"))
    x, y, width, height = wait_for(lambda: driver.execute_script(JS_MARKER, figures.EDGE_HOVER_TRACE, point),
                                   message="the edge markers")
    plot = driver.execute_script(JS_PLOT)
    ActionChains(driver).move_to_element_with_offset(plot, x - width / 2, y - height / 2).perform()
    label = wait_for(lambda: " ".join(e.text for e in driver.find_elements(By.CSS_SELECTOR, "#ex-graph .hovertext")),
                     message="the edge's hover label")
    assert "P5 cites P1" in label and "weight 1" in label
    wait_for(lambda: "[P5]" in driver.find_element(By.ID, "ex-hover").text, message="the line under the map")


@pytest.mark.browser
def test_a_mode_without_edges_says_why_on_the_map(driver, tmp_path_factory):
    live = LiveServer([shutil.copy(SEED_BIB, tmp_path_factory.mktemp("seed-map") / "corpus.bib")])
    try:
        driver.get(live.url + "/?edges=cocitation")
        wait_for(lambda: driver.execute_script(JS_PLOT), message="the map")
        note = wait_for(lambda: " ".join(e.text for e in driver.find_elements(By.CSS_SELECTOR, "#ex-graph .annotation")
                                         if "survey enrich" in e.text), message="the note on the map")
        assert "references" in note and "survey enrich" in legend_line(driver)
    finally:
        live.stop()


@pytest.mark.browser
def test_size_and_cluster_colour_are_chosen_and_kept_in_the_url(driver, server):
    driver.get(server.url + "/?edges=citations")
    wait_for(lambda: driver.execute_script(JS_PLOT), message="the map")
    sizes = "return gd._fullData.filter(t => t.marker && t.customdata && t.name !== 'Works outside the corpus')" \
            ".map(t => Array.from(t.marker.size)).flat();"  # decoded: the sizes arrive as typed arrays
    before = plot_state(driver, sizes)
    driver.find_element(By.ID, "ex-size").click()
    wait_for(lambda: option(driver, "size: PageRank"), message="the size choices").click()
    wait_for(lambda: "size=pagerank" in driver.current_url, message="the size in the URL")
    wait_for(lambda: map_text.SIZE_MEANING[nb.SIZE_PAGERANK] in legend_line(driver), message="the size's legend")
    after = wait_for(lambda: (s := plot_state(driver, sizes)) != before and s, message="new marker sizes")
    assert max(after) > max(before)
    driver.find_element(By.XPATH, "//label[contains(., 'by cluster')]").click()
    wait_for(lambda: "colour=cluster" in driver.current_url, message="colour by cluster")
    names = wait_for(lambda: [n for n in plot_state(driver, "return gd.data.map(t => t.name);") if
                              n.startswith("Cluster ")], message="the clusters' traces")
    assert any("method:" in n for n in names)
    driver.refresh()  # the URL brings both back
    wait_for(lambda: driver.execute_script(JS_PLOT), message="the map again")
    assert "size: PageRank" in driver.find_element(By.ID, "ex-size").text
    assert any(n.startswith("Cluster ") for n in plot_state(driver, "return gd.data.map(t => t.name);"))

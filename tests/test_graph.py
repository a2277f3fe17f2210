"""The corpus graph: edges of each mode, node metrics, communities, and cached positions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from survey.corpus import cache_dir, load_corpus
from survey.graph import EDGE_MODES, corpus_graph, label_propagation, tag_neighbours
from survey.layout import layout
from tests.conftest import SEED_BIB, entry


@pytest.fixture
def cited(tmp_path):
    """A cites B and C; D cites B and C; B cites C. So B, C are co-cited twice; A, D coupled by two."""
    bib = tmp_path / "cited.bib"
    bib.write_text(entry("A", "Paper A", references="{B C}", keywords="{method:GAN, modality:CT}")
                   + entry("B", "Paper B", references="{C}", keywords="{method:GAN}")
                   + entry("C", "Paper C", keywords="{method:DDPM}")
                   + entry("D", "Paper D", references="{B, C}", keywords="{method:GAN, modality:CT}"))
    return load_corpus([bib])


def test_the_offline_seed_corpus_has_tag_edges_only():
    graph = corpus_graph(load_corpus([SEED_BIB]))
    nodes = graph.nodes
    assert list(nodes.columns) == ["key", "kind", "title", "year", "in_degree", "pagerank", "community",
                                   "cited_by_count"]
    assert len(nodes) == 11 and set(nodes["kind"]) == {"paper"}
    assert str(nodes["cited_by_count"].dtype) == "Int64" and nodes["cited_by_count"].isna().all()
    assert (nodes["in_degree"] == 0).all() and np.allclose(nodes["pagerank"], 1 / 11)
    for mode in ("citations", "coupling", "cocitation"):
        assert graph.edges(mode).empty
    tags = graph.edges("tags")
    assert len(tags) > 0 and (tags["weight"] > 0).all() and (tags["weight"] <= 1 + 1e-6).all()
    # the two DCGAN lung/liver papers share more (and rarer) tags than a survey and a tool do
    weight = {frozenset((s, t)): w for s, t, w in tags.itertuples(index=False)}
    assert weight[frozenset(("Chuquicusma2018Fool", "FridAdar2018Synthetic"))] > weight.get(
        frozenset(("Beck2016SurVis", "Chuquicusma2018Fool")), 0)
    with pytest.raises(ValueError, match="unknown edge mode 'nope'"):
        graph.edges("nope")


def test_citations_coupling_and_cocitation(cited):
    graph = corpus_graph(cited, works=[])
    citations = {(s, t) for s, t, _ in graph.edges("citations").itertuples(index=False)}
    assert citations == {("A", "B"), ("A", "C"), ("B", "C"), ("D", "B"), ("D", "C")}
    nodes = graph.nodes.set_index("key")
    assert nodes.loc["C", "in_degree"] == 3 and nodes.loc["A", "in_degree"] == 0
    assert nodes["pagerank"].idxmax() == "C"
    coupling = {frozenset((s, t)): w for s, t, w in graph.edges("coupling").itertuples(index=False)}
    assert coupling[frozenset("AD")] == 2 and coupling[frozenset("AB")] == 1
    cocitation = {frozenset((s, t)): w for s, t, w in graph.edges("cocitation").itertuples(index=False)}
    assert cocitation == {frozenset("BC"): 2}


def test_outside_works_cited_twice_become_candidates(cited):
    works = [{"id": "https://openalex.org/W1", "doi": "https://doi.org/10.5555/a", "cited_by_count": 9,
              "referenced_works": ["https://openalex.org/W100", "https://openalex.org/W101"]},
             {"id": "https://openalex.org/W4", "doi": "https://doi.org/10.5555/d",
              "referenced_works": ["https://openalex.org/W100"]}]
    table = cited.table
    table.loc[table["key"] == "A", "doi"] = "10.5555/a"
    table.loc[table["key"] == "D", "doi"] = "10.5555/d"
    graph = corpus_graph(cited, works=works)
    nodes = graph.nodes.set_index("key")
    assert list(nodes.index[nodes["kind"] == "candidate"]) == ["W100"]  # W101 is cited once only
    assert nodes.loc["W100", "in_degree"] == 2 and nodes.loc["A", "cited_by_count"] == 9
    assert pd.isna(nodes.loc["B", "cited_by_count"])


def test_positions_are_in_the_box_and_cached_by_content(cited):
    graph = corpus_graph(cited, works=[])
    before = set(cache_dir().glob("layout-*.npy"))
    for mode in EDGE_MODES:
        xy = np.array(list(graph.positions(mode).values()))
        assert xy.shape == (4, 2) and np.abs(xy).max() <= 1 + 1e-9
    written = set(cache_dir().glob("layout-*.npy")) - before
    assert len(written) == len(EDGE_MODES)
    again = corpus_graph(cited, works=[])
    assert again.positions("citations") == graph.positions("citations")
    assert set(cache_dir().glob("layout-*.npy")) - before == written  # read back, not computed anew


def test_adding_a_paper_moves_only_what_it_touches(tmp_path):
    """The map a user knows stays: after an addition, papers whose links did not change keep their
    exact places; the new paper lands beside what it cites."""
    bib = tmp_path / "growing.bib"
    papers = [entry(f"P{i}", f"Paper {i}", references="{" + f"P{(i + 1) % 30} P{(i + 7) % 30}" + "}")
              for i in range(30)]
    bib.write_text("".join(papers))
    before = corpus_graph(load_corpus([bib]), works=[]).positions("citations")
    bib.write_text("".join(papers) + entry("NEW", "New paper", references="{P3}"))
    after = corpus_graph(load_corpus([bib]), works=[]).positions("citations")
    moved = {k for k in before if after[k] != before[k]}
    assert moved <= {"P3"}  # P3 gained a citing paper; no other paper's links changed
    assert np.hypot(after["NEW"][0] - after["P3"][0], after["NEW"][1] - after["P3"][1]) < 0.5
    assert all(abs(c) <= 1 for xy in after.values() for c in xy)


def test_layout_places_only_the_missing_nodes_of_a_start():
    rng = np.random.default_rng(2)
    source, target = rng.integers(0, 100, 300), rng.integers(0, 100, 300)
    xy = layout(100, source, target)
    start = xy.copy()
    start[[4, 40]] = np.nan
    again = layout(100, source, target, start=start)
    assert np.array_equal(np.delete(again, [4, 40], axis=0), np.delete(xy, [4, 40], axis=0))
    assert not np.isnan(again).any() and np.abs(again).max() <= 1


def test_layout_separates_two_clusters():
    rng = np.random.default_rng(1)
    half = 200
    edges = [(i, j) for i in range(2 * half) for j in rng.choice(half, 6) + (i // half) * half if i != j]
    edges.append((0, half))  # one bridge
    source, target = np.array(edges).T
    xy = layout(2 * half, source, target)
    a, b = xy[:half].mean(axis=0), xy[half:].mean(axis=0)
    spread = max(xy[:half].std(axis=0).max(), xy[half:].std(axis=0).max())
    assert np.linalg.norm(a - b) > 2 * spread
    assert np.abs(xy).max() <= 1 + 1e-9 and np.array_equal(xy, layout(2 * half, source, target))


def test_label_propagation_finds_two_cliques():
    clique = [(i, j) for i in range(10) for j in range(i + 1, 10)]
    edges = clique + [(i + 10, j + 10) for i, j in clique] + [(0, 10)]
    source, target = np.array(edges).T
    labels = label_propagation(20, source, target, np.ones(len(edges)))
    assert len(set(labels[:10])) == 1 and len(set(labels[10:])) == 1 and labels[0] != labels[10]


def test_tag_neighbours_stay_sparse():
    tagsets = [frozenset({"type:method", f"method:m{i % 7}"}) for i in range(500)] + [frozenset()]
    source, target, weight = tag_neighbours(tagsets, 8)
    assert (source < target).all() and target.max() < 500  # the paper with no tag has no edge
    degree = np.bincount(np.r_[source, target], minlength=501)
    assert degree[:500].min() >= 1 and degree.max() <= 4 * 8
    same = (np.array([t for t in range(500)]) % 7)
    assert np.all(weight[same[source] == same[target]] == 1.0)

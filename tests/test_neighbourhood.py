"""survey.neighbourhood: a paper's and an outside work's panel data, OpenAlex facts, edge explanations,
why a mode is empty, node sizes, clusters, "select similar", outside works and tag gaps; on small
hand-made corpora, on the bundled corpus offline, and on real OpenAlex records (../shared)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from survey import neighbourhood as nb
from survey.corpus import load_corpus
from survey.graph import EDGE_MODES, corpus_graph, suggestions
from survey.openalex.bibtex import work_to_bibtex
from survey.openalex.cache import WorksCache, cache_folder
from survey.openalex.enrich import enrichment_table
from tests.conftest import SEED_BIB, entry
from tests.test_enrich import work

REAL = Path(__file__).resolve().parents[2] / "shared" / "reference" / "openalex-real"
NEEDS_REAL = pytest.mark.skipif(not REAL.is_dir(), reason=f"recorded OpenAlex answers not found at {REAL}")


def W(n: int) -> str:
    """The short id of ``tests.test_enrich.work(n)``."""
    return f"W90000000{n:02d}"


def at(day: int) -> str:
    return f"2025-01-{day:02d}T00:00:00+00:00"


@pytest.fixture
def enriched(tmp_path):
    """P1..P3 matched by DOI, P4 not (its `references` name P1 and a key that is no entry).

    P1 cites W01, W02, W03 and P2; P2 cites W01, W02; P3 cites W01. W01 (a cached candidate) cites P2;
    W02 is a candidate nobody fetched; W03, cited by P1 only, was fetched by `add --doi`.
    """
    bib = tmp_path / "enriched.bib"
    bib.write_text(
        entry("P1", "Denoising diffusion for lung CT synthesis", doi="10.5555/p1", keywords="{method:DDPM, modality:CT}",
              abstract="{A diffusion model synthesises lung nodules in CT.}")
        + entry("P2", "Diffusion models synthesise lung CT", doi="10.5555/p2", keywords="{method:DDPM, modality:CT}")
        + entry("P3", "Adversarial networks for brain MRI", doi="10.5555/p3", keywords="{method:GAN, modality:MRI}")
        + entry("P4", "A paper OpenAlex lacks", references="{P1 Ghost2020}", keywords="{method:GAN, modality:CT}"))
    cache = WorksCache.open(cache_folder(bib))
    cache.record([work(11, "10.5555/p1", refs=(1, 2, 3, 12)), work(12, "10.5555/p2", refs=(1, 2)),
                  work(13, "10.5555/p3", refs=(1,), cited=40)],
                 {f"doi:10.5555/p{i}": {"id": W(10 + i), "at": at(i)} for i in (1, 2, 3)})
    cache.record([work(1, None, "Outside one", refs=(12,))],
                 {f"id:{W(1)}": {"id": W(1), "at": at(4)}, f"id:{W(2)}": {"id": None, "at": at(4)}})
    cache.record([work(3, "10.5555/outside.3", "Outside three", year=2019, refs=(1, 2))],
                 {"doi:10.5555/outside.3": {"id": W(3), "at": at(5)}})
    cache.compact()
    corpus = load_corpus([bib])
    return corpus, corpus_graph(corpus)  # reads the cache beside the corpus


@pytest.fixture(scope="module")
def seed():
    corpus = load_corpus([SEED_BIB])
    return corpus, corpus_graph(corpus, works=[])


def corpus_of(tmp_path, *entries: str, name: str = "c.bib"):
    bib = tmp_path / name
    bib.write_text("".join(entries))
    return load_corpus([bib])


def pair_weights(edges: pd.DataFrame) -> dict[frozenset, float]:
    """{a, b} -> the summed weight of the edges between them (citations: one per direction)."""
    out: dict[frozenset, float] = {}
    for s, t, w in edges.itertuples(index=False):
        out[frozenset((s, t))] = out.get(frozenset((s, t)), 0.0) + w
    return out


# --- 1. neighbourhoods -------------------------------------------------------------------------------
def test_a_papers_references_citers_and_similar_papers(enriched):
    corpus, graph = enriched
    n = nb.neighbourhood(corpus, graph, "P1", k=5)
    assert (n.title, n.year, n.doi) == ("Denoising diffusion for lung CT synthesis", 2020, "10.5555/p1")
    assert n.references_in == ["P2"] and n.references_unresolved == []
    out = n.references_out.set_index("id")
    assert list(out.index) == [W(1), W(2), W(3)]
    assert list(out["kind"]) == ["candidate", "candidate", "outside"]
    assert list(out["cached"]) == [True, False, True]
    assert out.loc[W(1), "title"] == "Outside one" and out.loc[W(2), "title"] == "" and pd.isna(out.loc[W(2), "year"])
    assert out.loc[W(3), "doi"] == "10.5555/outside.3" and out.loc[W(3), "year"] == 2019
    assert n.cited_by == ["P4"] and n.cited_by_outside == []
    coupling = n.similar["coupling"]
    assert list(coupling["key"]) == ["P2", "P3"] and list(coupling["score"]) == [2.0, 1.0]
    assert n.similar["cocitation"].empty  # only P4 cites P1, and it cites nothing else of the graph
    tags = n.similar["tags"]
    assert list(tags["key"])[:2] == ["P2", "P4"] and tags["score"].iloc[0] == pytest.approx(1.0)
    assert n.similar["text"]["key"].iloc[0] == "P2" and n.text_method == nb.TEXT_METHOD == "TF-IDF of title and abstract"
    assert set(n.similar) == set(nb.SIMILARITY_METHODS)

    p2 = nb.neighbourhood(corpus, graph, "P2")
    assert p2.cited_by == ["P1"] and p2.cited_by_outside == [W(1)]
    assert list(p2.similar["cocitation"]["key"]) == []  # co-cited only with candidates, which are not papers
    p4 = nb.neighbourhood(corpus, graph, "P4")
    assert p4.references_in == ["P1"] and p4.references_unresolved == ["Ghost2020"] and p4.references_out.empty
    assert p4.facts is None
    with pytest.raises(ValueError, match="no paper 'Nope'"):
        nb.neighbourhood(corpus, graph, "Nope")


def test_an_outside_work_has_the_same_panel_data(enriched):
    corpus, graph = enriched
    three = nb.outside_work(corpus, graph, W(3))
    assert (three.title, three.year, three.doi) == ("Outside three", 2019, "10.5555/outside.3")
    assert three.cached and not three.candidate and three.addable and three.corpus_key is None
    assert three.cited_by == ["P1"] and three.references_in == []
    # it cites W01 and W02: P1 and P2 cite both, P3 cites W01
    assert list(three.coupled_with["key"]) == ["P1", "P2", "P3"] and list(three.coupled_with["score"]) == [2, 2, 1]
    assert three.facts.fetched_at == at(5) and three.facts.abstract == "Invented abstract 3"

    one = nb.outside_work(corpus, graph, f"https://openalex.org/{W(1)}")
    assert one.candidate and one.cached and not one.addable  # no DOI: `add --doi` cannot add it
    assert one.cited_by == ["P1", "P2", "P3"] and one.references_in == ["P2"]
    assert list(one.coupled_with["key"]) == ["P1"] and one.coupled_with["score"].iloc[0] == 1  # both cite P2

    two = nb.outside_work(corpus, graph, W(2))
    assert two.candidate and not two.cached and two.title == "" and two.year is None and two.facts is None
    assert two.cited_by == ["P1", "P2"] and two.coupled_with.empty
    assert nb.outside_work(corpus, graph, W(12)).corpus_key == "P2"  # P2's own id: not outside after all


# --- 2. OpenAlex facts -----------------------------------------------------------------------------------
def test_facts_come_from_the_cache_or_not_at_all(enriched):
    corpus, graph = enriched
    facts = nb.paper_facts(corpus, graph, "P1")
    assert facts == nb.Facts(openalex_id=W(11), abstract="Invented abstract 11", cited_by_count=5,
                             oa_url="https://example.org/11.pdf", topics=("Invented Topic",), fetched_at=at(1),
                             matched_by="doi")
    assert nb.paper_facts(corpus, graph, "P3").cited_by_count == 40
    assert nb.paper_facts(corpus, graph, "P3").fetched_at == at(3)
    assert nb.paper_facts(corpus, graph, "P4") is None
    assert nb.work_facts(graph.cache, W(1)).fetched_at == at(4)
    assert nb.work_facts(graph.cache, W(2)) is None  # looked up, not found: nothing to say
    bare = nb.record_facts({"id": "https://openalex.org/W5", "abstract_inverted_index": None,
                            "best_oa_location": {"pdf_url": "https://example.org/5.pdf"}})
    assert (bare.abstract, bare.cited_by_count, bare.topics, bare.fetched_at) == (None, None, (), None)
    assert bare.oa_url == "https://example.org/5.pdf"  # open_access.oa_url absent: the best location's


def test_a_title_match_reports_when_its_search_ran(tmp_path):
    corpus = corpus_of(tmp_path, entry("T", "A paper found by title", year=2021))
    found = work(7, None, "A paper found by title", year=2021)
    cache = WorksCache(tmp_path)
    cache.works[W(7)] = found
    cache.lookups["title:a paper found by title|2021"] = {"status": "matched", "id": W(7), "at": at(9)}
    graph = corpus_graph(corpus, cache)
    facts = nb.paper_facts(corpus, graph, "T")
    assert facts.matched_by == "title" and facts.fetched_at == at(9) and facts.abstract == "Invented abstract 7"


# --- 3. edge explanations -------------------------------------------------------------------------------------
def test_explanations_say_why_and_agree_with_the_graph(enriched):
    corpus, graph = enriched
    cites = nb.explain_edge(corpus, graph, "citations", "P2", W(1))
    assert cites.citations == [("P2", W(1)), (W(1), "P2")] and cites.weight == 2 and cites.drawn
    coupling = nb.explain_edge(corpus, graph, "coupling", "P1", "P2")
    assert list(coupling.shared_references["id"]) == [W(1), W(2)] and coupling.weight == 2
    assert list(coupling.shared_references["title"]) == ["Outside one", ""]
    cocited = nb.explain_edge(corpus, graph, "cocitation", W(1), W(2))
    assert list(cocited.citing_both["id"]) == ["P1", "P2"] and cocited.weight == 2
    tags = nb.explain_edge(corpus, graph, "tags", "P1", "P2")
    assert tags.shared_tags == ["method:DDPM", "modality:CT"] and tags.weight == pytest.approx(1.0)  # rarest first
    unlinked = nb.explain_edge(corpus, graph, "coupling", "P1", "P4")
    assert unlinked.weight == 0 and not unlinked.drawn and unlinked.shared_references.empty
    for mode in EDGE_MODES:
        edges = graph.edges(mode)
        assert len(edges)
        for pair, weight in pair_weights(edges).items():
            explained = nb.explain_edge(corpus, graph, mode, *sorted(pair))
            assert explained.drawn and explained.weight == pytest.approx(weight, abs=1e-5)
    with pytest.raises(ValueError, match="unknown edge mode"):
        nb.explain_edge(corpus, graph, "nope", "P1", "P2")
    with pytest.raises(ValueError, match="not a node"):
        nb.explain_edge(corpus, graph, "tags", "P1", W(3))


# --- 4. why a mode has no edges -----------------------------------------------------------------------------------
def causes(corpus, works) -> dict[str, str | None]:
    graph = corpus_graph(corpus, works)
    return {m: (gap.cause if (gap := nb.no_edges(corpus, graph, m)) else None) for m in EDGE_MODES}


def test_no_edges_says_why_from_the_data(tmp_path):
    two = [entry("A", "Paper A", doi="10.5555/a"), entry("B", "Paper B", doi="10.5555/b")]
    corpus = corpus_of(tmp_path, *two)
    assert causes(corpus, []) == {**dict.fromkeys(EDGE_MODES[:3], nb.NOT_ENRICHED), "tags": nb.NO_TAGS}
    asked = WorksCache(tmp_path)
    asked.lookups.update({"doi:10.5555/a": {"id": None, "at": at(1)}, "doi:10.5555/b": {"id": None, "at": at(1)}})
    assert causes(corpus, asked)["citations"] == nb.NOT_MATCHED
    assert causes(corpus, [work(1, "10.5555/a"), work(2, "10.5555/b")])["coupling"] == nb.NO_REFERENCES
    apart = [work(1, "10.5555/a", refs=(50,)), work(2, "10.5555/b", refs=(51,))]
    assert causes(corpus, apart) == {"citations": nb.NO_LINKS_INSIDE, "coupling": nb.NO_SHARED_REFERENCES,
                                     "cocitation": nb.NO_COCITING_WORK, "tags": nb.NO_TAGS}
    together = [work(1, "10.5555/a", refs=(50,)), work(2, "10.5555/b", refs=(50,))]  # W50 becomes a candidate
    assert causes(corpus, together) == {"citations": None, "coupling": None, "cocitation": nb.NO_COCITING_WORK,
                                        "tags": nb.NO_TAGS}
    listed = corpus_of(tmp_path, entry("A", "Paper A", references="{Ghost}", keywords="{method:GAN}"),
                       entry("B", "Paper B", keywords="{method:DDPM}"), name="listed.bib")
    assert causes(listed, []) == {"citations": nb.NO_LINKS_INSIDE, "coupling": nb.NO_SHARED_REFERENCES,
                                  "cocitation": nb.NO_COCITING_WORK, "tags": nb.NO_SHARED_TAGS}
    empty = corpus_of(tmp_path, "% no entry\n", name="empty.bib")
    assert set(causes(empty, []).values()) == {nb.EMPTY_CORPUS}
    message = nb.no_edges(corpus, corpus_graph(corpus, []), "citations").message
    assert "survey enrich" in message and "references" in message


# --- 5. node sizes --------------------------------------------------------------------------------------------------
def test_node_sizes_by_each_measure(enriched):
    _, graph = enriched
    cited = nb.node_sizes(graph, nb.SIZE_CITED_BY)
    assert list(cited.index) == graph.keys
    assert cited[["P1", "P3", W(1)]].tolist() == [5.0, 40.0, 5.0] and cited[["P4", W(2)]].isna().all()
    degree = nb.node_sizes(graph, nb.SIZE_IN_DEGREE)
    assert degree.to_dict() == {"P1": 1, "P2": 2, "P3": 0, "P4": 0, W(1): 3, W(2): 2}
    rank = nb.node_sizes(graph, nb.SIZE_PAGERANK)
    assert rank.sum() == pytest.approx(1.0) and rank.idxmax() in {"P2", W(1)} and rank["P4"] < rank["P2"]
    assert (nb.node_sizes(graph, nb.SIZE_NONE) == 1).all()
    assert set(nb.SIZE_MEASURES) == {"none", "cited_by_count", "pagerank", "in_degree"}
    with pytest.raises(ValueError, match="unknown size measure 'area'"):
        nb.node_sizes(graph, "area")


# --- 6. clusters ---------------------------------------------------------------------------------------------------
def test_clusters_have_their_members_and_telling_tags(tmp_path):
    corpus = corpus_of(tmp_path,
                       entry("A", "Paper A", references="{B}", keywords="{method:GAN, modality:CT}"),
                       entry("B", "Paper B", references="{A}", keywords="{method:GAN, modality:CT}"),
                       entry("C", "Paper C", references="{D}", keywords="{method:DDPM, modality:MRI}"),
                       entry("D", "Paper D", references="{C}", keywords="{method:DDPM, modality:MRI}"),
                       entry("E", "Paper E", keywords="{method:GAN, modality:CT}"))
    found = nb.clusters(corpus, corpus_graph(corpus, []))
    assert [(c.number, c.size, c.members) for c in found] == [(0, 2, ["A", "B"]), (1, 2, ["C", "D"]), (2, 1, ["E"])]
    ddpm = found[1].tags
    assert list(ddpm["tag"]) == ["method:DDPM", "modality:MRI"]
    assert ddpm.iloc[0][["count", "corpus_count"]].tolist() == [2, 2] and ddpm["lift"].tolist() == [2.5, 2.5]
    gan = found[0].tags  # GAN and CT: 2 of 2 here, 3 of 5 in the corpus
    assert list(gan["tag"]) == ["method:GAN", "modality:CT"] and gan["lift"].iloc[0] == pytest.approx(5 / 3)
    # one cluster holding every paper: nothing stands out, so the most common tags
    whole = corpus_of(tmp_path, entry("A", "Paper A", references="{B}", keywords="{method:GAN, modality:CT}"),
                      entry("B", "Paper B", keywords="{method:GAN}"), name="whole.bib")
    (only,) = nb.clusters(whole, corpus_graph(whole, []))
    assert only.papers == ["A", "B"] and list(only.tags["tag"]) == ["method:GAN", "modality:CT"]
    assert list(only.tags["count"]) == [2, 1]


# --- 7. select similar ------------------------------------------------------------------------------------------------
def test_select_similar_is_the_union_of_the_measures(enriched, tmp_path):
    corpus, graph = enriched
    near = nb.select_similar(corpus, graph, "P1", k=3)
    assert near[0] == "P2" and "P1" not in near and len(near) == 3 and set(near) <= {"P2", "P3", "P4"}
    assert nb.select_similar(corpus, graph, "P1", k=1) == ["P2"]
    lonely = corpus_of(tmp_path, entry("X", "Alpha"), entry("Y", "Beta"), name="lonely.bib")
    assert nb.select_similar(lonely, corpus_graph(lonely, []), "X") == []


# --- 8. outside works for the review's questions -------------------------------------------------------------------------
def test_outside_works_ranked_with_why(enriched):
    corpus, graph = enriched
    ranked = nb.outside_works(graph)
    assert list(ranked["key"]) == [W(1), W(2)]
    first = ranked.iloc[0]
    assert first["cited_by_corpus"] == ["P1", "P2", "P3"] and first["cited_by_n"] == 3
    assert first["coupled_with"] == {"P1": 1} and first["coupling"] == 1 and "P1, P2, P3" in first["why"]
    assert ranked["score"].tolist() == pytest.approx([3.1, 2.0])
    assert ranked.drop(columns=["cited_by_n", "coupling", "why"]).equals(suggestions(graph))  # `survey suggest`'s
    p3 = nb.outside_works(graph, among=["P3"])
    assert list(p3["key"]) == [W(1)] and p3.iloc[0]["cited_by_corpus"] == ["P3"] and p3.iloc[0]["coupled_with"] == {}
    assert nb.outside_works(graph, among=["P4"]).empty


# --- 9. gaps ---------------------------------------------------------------------------------------------------------
def test_tag_gaps_on_the_bundled_corpus(seed):
    corpus, _ = seed
    gaps = nb.tag_gaps(corpus, "task", "modality")
    assert list(gaps.counts.index) == list(corpus.vocabulary.categories["task"])
    assert list(gaps.counts.columns) == list(corpus.vocabulary.categories["modality"])
    assert gaps.counts.loc["synthesis", "CT"] == 1 and gaps.counts.loc["report generation", "X-ray"] == 2
    assert ("reconstruction", "MRI") in gaps.gaps and ("synthesis", "CT") not in gaps.gaps
    assert len(gaps.gaps) == int((gaps.counts == 0).sum().sum())
    assert gaps.papers == 9 and gaps.untagged == 1  # two surveys left out; the SurVis tool has no modality
    everything = nb.tag_gaps(corpus, "task", "modality", exclude=())
    assert everything.counts.loc["synthesis", "CT"] == 3 and everything.counts.loc["reconstruction", "MRI"] == 2
    method = nb.tag_gaps(corpus, "method", "modality")
    assert method.counts.loc["DCGAN", "CT"] == 2 and method.counts.loc["DDPM", "CT"] == 0
    with pytest.raises(ValueError, match="unknown tag category 'colour'"):
        nb.tag_gaps(corpus, "colour", "modality")


def test_tag_gaps_add_values_the_vocabulary_lacks(tmp_path):
    corpus = corpus_of(tmp_path, entry("A", "Paper A", keywords="{task:segmentation, modality:OCT}"),
                       entry("B", "Paper B", keywords="{task:synthesis, modality:CT}"))
    gaps = nb.tag_gaps(corpus)
    assert gaps.counts.to_dict() == {"CT": {"segmentation": 0, "synthesis": 1}, "OCT": {"segmentation": 1, "synthesis": 0}}
    assert gaps.gaps == [("segmentation", "CT"), ("synthesis", "OCT")]
    with pytest.raises(ValueError, match="two different"):
        nb.tag_gaps(corpus, "task", "task")


# --- the bundled corpus, offline -----------------------------------------------------------------------------------------
def test_every_function_answers_on_the_offline_bundled_corpus(seed):
    corpus, graph = seed
    keys = list(corpus.table["key"])
    for key in keys:
        n = nb.neighbourhood(corpus, graph, key)
        assert n.references_in == n.cited_by == n.references_unresolved == [] and n.references_out.empty
        assert n.similar["coupling"].empty and n.similar["cocitation"].empty and n.facts is None
        assert key not in set(n.similar["tags"]["key"]) | set(n.similar["text"]["key"])
    fool = nb.neighbourhood(corpus, graph, "Chuquicusma2018Fool")
    assert fool.similar["tags"]["key"].iloc[0] == "FridAdar2018Synthetic"  # both DCGAN on CT
    assert fool.similar["text"]["key"].iloc[0] == "Yi2019GANReview"  # "generative adversarial networks"
    gaps = {m: nb.no_edges(corpus, graph, m) for m in EDGE_MODES}
    assert gaps["tags"] is None and {gaps[m].cause for m in EDGE_MODES[:3]} == {nb.NOT_ENRICHED}
    assert all("survey enrich" in gaps[m].message for m in EDGE_MODES[:3])
    assert nb.node_sizes(graph, nb.SIZE_CITED_BY).isna().all()
    assert np.allclose(nb.node_sizes(graph, nb.SIZE_PAGERANK), 1 / 11) and (nb.node_sizes(graph, nb.SIZE_IN_DEGREE) == 0).all()
    found = nb.clusters(corpus, graph)
    assert sorted(k for c in found for k in c.members) == sorted(keys) and sum(c.size for c in found) == 11
    assert all(len(c.tags) and (c.tags["count"] > 0).all() for c in found)
    near = nb.select_similar(corpus, graph, "Chuquicusma2018Fool", k=3)
    assert set(near[:2]) == {"FridAdar2018Synthetic", "Yi2019GANReview"} and len(near) == 3  # best by tags, by text
    assert nb.outside_works(graph).empty and "why" in nb.outside_works(graph).columns
    for s, t, w in graph.edges("tags").itertuples(index=False):
        assert nb.explain_edge(corpus, graph, "tags", s, t).weight == pytest.approx(w, abs=1e-5)
    assert nb.explain_edge(corpus, graph, "coupling", keys[0], keys[1]).weight == 0
    assert nb.work_facts(graph.cache, "W1") is None


# --- real OpenAlex records ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def real(tmp_path_factory):
    """The recorded /works pages as a corpus (entries made by `work_to_bibtex`, as `add --doi` makes
    them) whose papers were all fetched by DOI into a WorksCache on disk."""
    records = {}
    for path in sorted(REAL.glob("openalexPro_*.json")):
        for w in json.loads(path.read_text(encoding="utf-8"))["results"]:
            records.setdefault(w["id"].rsplit("/", 1)[-1], w)
    folder = tmp_path_factory.mktemp("real")
    taken, texts = set(), []
    for w in records.values():
        texts.append(work_to_bibtex(w, taken))
        taken.add(texts[-1].split("{", 1)[1].split(",", 1)[0])
    bib = folder / "real.bib"
    bib.write_text("".join(texts), encoding="utf-8")
    cache = WorksCache.open(cache_folder(bib))
    cache.record(list(records.values()), {f"doi:{w['doi'].removeprefix('https://doi.org/').lower()}":
                                          {"id": i, "at": at(20)} for i, w in records.items()})
    cache.compact()
    corpus = load_corpus([bib])
    graph = corpus_graph(corpus)
    key = {w["id"].rsplit("/", 1)[-1]: k for k, (_, w) in graph.paper_works.items()}
    return corpus, graph, records, key


@NEEDS_REAL
def test_real_records_give_facts(real):
    corpus, graph, records, key = real
    assert len(corpus) == len(records) == 177 and len(graph.paper_works) == 177
    facts = nb.paper_facts(corpus, graph, key["W1934649023"])
    assert facts.cited_by_count == 1589 and facts.fetched_at == at(20) and facts.matched_by == "doi"
    assert facts.oa_url.startswith("https://openknowledge.worldbank.org/bitstreams/4397d2b6")
    assert facts.topics[0] == "Corruption and Economic Development" and len(facts.topics) == 3
    assert facts.abstract.startswith("No AccessPolicy Research Working Papers21 Jun 2013Governance Matters IV")
    assert nb.paper_facts(corpus, graph, key["W2041234663"]).abstract is None  # OpenAlex has none
    table = enrichment_table(corpus, graph.cache).set_index("key")
    for wid, w in records.items():
        f = nb.paper_facts(corpus, graph, key[wid])
        index = w.get("abstract_inverted_index")
        if index:  # every word at its place: as many words as positions, the first where 0 is
            words = f.abstract.split(" ")
            assert len(words) == sum(len(p) for p in index.values())
            assert words[0] == next(word for word, places in index.items() if 0 in places)
        assert f.cited_by_count == w["cited_by_count"] and list(f.topics) == [t["display_name"] for t in w["topics"]]
        assert f.oa_url == (w["open_access"]["oa_url"] or (w.get("best_oa_location") or {}).get("pdf_url")
                            or (w.get("best_oa_location") or {}).get("landing_page_url") or None)
        row = table.loc[key[wid]]  # the same as survey.openalex.enrich's table says
        assert (f.abstract or "", f.oa_url or "", list(f.topics), f.cited_by_count) == (
            row["abstract"], row["oa_url"], row["topics"], row["cited_by_count"])


@NEEDS_REAL
def test_real_references_resolve(real):
    corpus, graph, records, key = real
    n = nb.neighbourhood(corpus, graph, key["W2077467872"])
    assert n.references_in == sorted([key["W1570712754"], key["W1606984725"]], key=graph.keys.index)
    outside = {r.rsplit("/", 1)[-1] for r in records["W2077467872"]["referenced_works"]} - set(key)
    assert set(n.references_out["id"]) == outside and len(n.references_out) == len(outside) == 42
    assert not n.references_out["cached"].any()  # only the corpus's own works were fetched
    cited = nb.neighbourhood(corpus, graph, key["W1570712754"]).cited_by
    assert {key["W1540100396"], key["W2077467872"]} <= set(cited)
    # its nearest by text (both on payments for environmental services) is a paper it cites
    assert n.similar["text"]["key"].iloc[0] == key["W1606984725"] == n.similar["coupling"]["key"].iloc[0]
    # W1980631102 lists itself among its references: no self-citation
    selfish = nb.neighbourhood(corpus, graph, key["W1980631102"])
    assert key["W1980631102"] not in selfish.references_in + selfish.cited_by
    citations = graph.edges("citations")
    assert not (citations["source"] == citations["target"]).any()
    # a candidate's citers are exactly the corpus papers whose records list it
    top = nb.outside_works(graph).iloc[0]
    listing = sorted(key[i] for i, w in records.items()
                     if f"https://openalex.org/{top['key']}" in (w.get("referenced_works") or []))
    assert top["cited_by_corpus"] == listing and top["cited_by_n"] == len(listing) >= 2
    assert nb.outside_work(corpus, graph, top["key"]).cited_by == sorted(listing, key=graph.keys.index)
    for mode in ("citations", "coupling", "cocitation"):
        edges = graph.edges(mode)
        assert len(edges) > 100
        for pair, weight in pair_weights(edges).items():
            assert nb.explain_edge(corpus, graph, mode, *sorted(pair)).weight == weight
    assert nb.no_edges(corpus, graph, "coupling") is None and nb.no_edges(corpus, graph, "tags").cause == nb.NO_TAGS

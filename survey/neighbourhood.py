"""What the explorer shows around one paper, one edge, one cluster: pure functions over the corpus,
its graph (``survey.graph.CorpusGraph``) and the OpenAlex cache the graph was built with.

- ``neighbourhood``: one corpus paper's references (in the corpus, outside it, unresolved), the corpus
  papers citing it, and its most similar papers by coupling, co-citation, tags and text
  (``TEXT_METHOD``); ``outside_work``: the same for a work outside the corpus.
- ``paper_facts`` / ``work_facts``: what OpenAlex says (abstract, cited-by count, open-access URL,
  topics, when it was fetched); None when the record is not cached, never guessed.
- ``explain_edge``: why two nodes are linked in a mode, with the weight ``survey.graph`` gives it.
- ``no_edges``: why a mode has no edges, and what to do.
- ``node_sizes``, ``clusters``, ``select_similar``, ``outside_works``, ``tag_gaps``.

The weights are the graph's: coupling = shared references, co-citation = works citing both, tags =
cosine of IDF-weighted tag vectors. Lists of similar papers are computed for the paper itself, so
they are not cut by the graph's per-node edge limit; ``EdgeExplanation.drawn`` says whether the graph
keeps the edge. What is derived from a graph once (who cites what, tag and text vectors) is kept
with that graph and dropped with it.
"""

from __future__ import annotations

import heapq
import math
import re
import weakref
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from survey.corpus import Corpus
from survey.graph import CorpusGraph, suggestions, tag_idf
from survey.openalex.bibtex import abstract_of, open_access_url
from survey.openalex.cache import WorksCache, short_id, work_title
from survey.openalex.enrich import doi_key, title_key
from survey.records import as_int, normalise_doi

TEXT_METHOD = "TF-IDF of title and abstract"
SIMILARITY_METHODS = ("coupling", "cocitation", "tags", "text")

SIZE_NONE = "none"
SIZE_CITED_BY = "cited_by_count"
SIZE_PAGERANK = "pagerank"
SIZE_IN_DEGREE = "in_degree"
SIZE_MEASURES = (SIZE_NONE, SIZE_CITED_BY, SIZE_PAGERANK, SIZE_IN_DEGREE)

# Why a mode has no edges (NoEdges.cause)
EMPTY_CORPUS = "empty-corpus"
NOT_ENRICHED = "not-enriched"  # no `references` field, and `survey enrich` never ran
NOT_MATCHED = "not-matched"  # enrichment ran, no paper was found in OpenAlex, no `references` field
NO_REFERENCES = "no-references"  # papers are known, but none lists a reference
NO_LINKS_INSIDE = "no-links-inside"  # references are known, none of them is a node
NO_SHARED_REFERENCES = "no-shared-references"
NO_COCITING_WORK = "no-cociting-work"
NO_TAGS = "no-tags"
NO_SHARED_TAGS = "no-shared-tags"

WORK_COLUMNS = ["id", "kind", "title", "year", "doi", "cached"]  # kind: paper, candidate, outside, unknown
SIMILAR_COLUMNS = ["key", "title", "year", "score"]
OPENALEX_ID = re.compile(r"^W\d+$")


# --- OpenAlex facts ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Facts:
    """What the cached OpenAlex record says; None or empty where it says nothing."""
    openalex_id: str
    abstract: str | None
    cited_by_count: int | None
    oa_url: str | None
    topics: tuple[str, ...]
    fetched_at: str | None  # ISO time of the look-up that fetched the record (the cache's "at")
    matched_by: str = ""  # "doi" or "title" for a corpus paper, "" for a work outside the corpus


def record_facts(record: dict, fetched_at: str | None = None, matched_by: str = "") -> Facts:
    """The facts of one raw OpenAlex record (the abstract rebuilt from its inverted index)."""
    cited = record.get("cited_by_count")
    return Facts(openalex_id=short_id(record["id"]), abstract=abstract_of(record) or None,
                 cited_by_count=int(cited) if cited is not None else None,
                 oa_url=open_access_url(record) or None,
                 topics=tuple(t["display_name"] for t in record.get("topics") or [] if t.get("display_name")),
                 fetched_at=fetched_at, matched_by=matched_by)


def work_facts(cache: WorksCache, openalex_id: str) -> Facts | None:
    """The facts of a cached work, by OpenAlex id; None when it is not cached."""
    record = cache.works.get(short_id(openalex_id))
    return record_facts(record, fetched_at(cache, record)) if record else None


def paper_facts(corpus: Corpus, graph: CorpusGraph, key: str) -> Facts | None:
    """The facts of a corpus paper matched in OpenAlex (as the graph matched it); None otherwise."""
    if key not in graph.paper_works:
        return None
    by, record = graph.paper_works[key]
    asked = None
    if by == "title":
        row = _row(corpus, key)
        asked = title_key(row["title"], row["year"])
    return record_facts(record, fetched_at(graph.cache, record, asked), by)


def fetched_at(cache: WorksCache, record: dict, asked: str | None = None) -> str | None:
    """When ``record`` was fetched: the time of the cache's look-up that found it (by DOI, by id, or
    the look-up ``asked``), the latest if several did; None when no look-up records it."""
    wid = short_id(record["id"])
    doi = normalise_doi(record.get("doi") or "")
    keys = [k for k in (asked, doi_key(doi) if doi else None, f"id:{wid}") if k]
    times = [a["at"] for k in keys if (a := cache.lookups.get(k)) and a.get("id") == wid and a.get("at")]
    if not times:  # found by a look-up of another kind (a title search)
        times = [a["at"] for a in cache.lookups.values() if a.get("id") == wid and a.get("at")]
    return max(times) if times else None


# --- what is derived from a graph once ------------------------------------------------------------
class _Derived:
    """Who cites what, the tag vectors and the text vectors of one graph (and its corpus table)."""

    def __init__(self, graph: CorpusGraph):
        self.refs = {node: frozenset(graph.references(node)) for node in graph.keys}
        citers: dict[str, list[str]] = {}
        for node in graph.keys:
            for item in self.refs[node]:
                citers.setdefault(item, []).append(node)
        self.citers = citers
        self.nodes = graph.nodes.set_index("key")
        self.papers = list(graph.nodes.loc[graph.nodes["kind"] == "paper", "key"])
        self.paper_set = set(self.papers)
        self.order = {k: i for i, k in enumerate(graph.keys)}
        self.id_to_key = {short_id(w["id"]): key for key, (_, w) in graph.paper_works.items()}
        self.table = None  # the corpus table the tag and text parts below were made from
        self.tagsets: dict[str, frozenset] = {}
        self.entries: dict[str, tuple[str, int | None, str]] = {}  # key -> title, year, doi
        self.idf: dict[str, float] = {}
        self.tag_norms: dict[str, float] = {}  # key -> length of its IDF-weighted tag vector
        self.tag_papers: dict[str, list[str]] = {}
        self.text: tuple[dict[str, int], sp.csr_matrix] | None = None
        self.drawn: dict[str, dict[frozenset, float]] = {}  # mode -> {a, b} -> summed weight of its edges

    def drawn_weight(self, graph: CorpusGraph, mode: str, a: str, b: str) -> float | None:
        """The summed weight of the graph's edges between ``a`` and ``b`` in ``mode``; None when it has none."""
        if mode not in self.drawn:
            pairs: dict[frozenset, float] = {}
            for s, t, w in graph.edges(mode).itertuples(index=False):
                pairs[frozenset((s, t))] = pairs.get(frozenset((s, t)), 0.0) + w
            self.drawn[mode] = pairs
        return self.drawn[mode].get(frozenset((a, b)))

    def for_table(self, corpus: Corpus) -> "_Derived":
        table = corpus.table
        if self.table is not table:  # built whole, then swapped in: another thread may be reading
            tagsets = dict(zip(table["key"], table["tagset"]))
            entries = {k: (t, as_int(y), doi) for k, t, y, doi in zip(table["key"], table["title"], table["year"],
                                                                     table["doi"])}
            counts = Counter(t for tags in tagsets.values() for t in tags)
            n = len(table)
            idf = {t: float(tag_idf(n, c)) for t, c in counts.items()}
            tag_papers: dict[str, list[str]] = {}
            for key, tags in tagsets.items():
                for t in tags:
                    tag_papers.setdefault(t, []).append(key)
            self.tagsets, self.entries, self.idf, self.tag_papers = tagsets, entries, idf, tag_papers
            self.tag_norms = {key: math.sqrt(sum(idf[t] ** 2 for t in tags)) for key, tags in tagsets.items()}
            self.text = None
            self.table = table
        return self


_DERIVED: "weakref.WeakKeyDictionary[CorpusGraph, _Derived]" = weakref.WeakKeyDictionary()


def _derived(graph: CorpusGraph, corpus: Corpus | None = None) -> _Derived:
    if graph not in _DERIVED:
        _DERIVED[graph] = _Derived(graph)
    derived = _DERIVED[graph]
    return derived.for_table(corpus) if corpus is not None else derived


# --- similarity, exactly as the graph weighs it ------------------------------------------------------
def _coupled(d: _Derived, refs: Iterable[str], skip: str) -> Counter:
    """Node -> how many of ``refs`` it cites too."""
    out: Counter = Counter()
    for item in refs:
        out.update(n for n in d.citers.get(item, ()) if n != skip)
    return out


def _cocited(d: _Derived, node: str) -> Counter:
    """Node -> how many works (papers and candidates) cite it together with ``node``."""
    out: Counter = Counter()
    for citer in d.citers.get(node, ()):
        out.update(n for n in d.refs[citer] if n in d.order and n != node)
    return out


def _tag_similar(d: _Derived, key: str) -> Counter:
    """Paper -> cosine of the IDF-weighted tag vectors, for the papers sharing a tag with ``key``."""
    mine = d.tagsets.get(key, frozenset())
    dot: Counter = Counter()
    for t in mine:
        dot.update({other: d.idf[t] ** 2 for other in d.tag_papers[t] if other != key})
    return Counter({other: v / (_tag_norm(d, key) * _tag_norm(d, other)) for other, v in dot.items()})


def _tag_norm(d: _Derived, key: str) -> float:
    return d.tag_norms.get(key, 0.0)


def _tag_cosine(d: _Derived, a: str, b: str) -> float:
    shared = d.tagsets.get(a, frozenset()) & d.tagsets.get(b, frozenset())
    if not shared:
        return 0.0
    return sum(d.idf[t] ** 2 for t in shared) / (_tag_norm(d, a) * _tag_norm(d, b))


def _text(d: _Derived, corpus: Corpus, graph: CorpusGraph) -> tuple[dict[str, int], sp.csr_matrix]:
    """The corpus papers' TF-IDF vectors (rows l2-normalised) of title and abstract: the entry's
    abstract, else the one OpenAlex has when the paper is matched."""
    if d.text is None:
        table = corpus.table
        documents = []
        for key, title, abstract in zip(table["key"], table["title"], table["abstract"]):
            if not abstract and key in graph.paper_works:
                abstract = abstract_of(graph.paper_works[key][1])
            documents.append(f"{title or ''} {abstract or ''}")
        vectorizer = TfidfVectorizer(stop_words="english", sublinear_tf=True, strip_accents="unicode")
        try:
            matrix = vectorizer.fit_transform(documents).tocsr()
        except ValueError:  # no word left (no paper, or titles of stop words only)
            matrix = sp.csr_matrix((len(documents), 0))
        d.text = ({k: i for i, k in enumerate(table["key"])}, matrix)
    return d.text


def _text_similar(d: _Derived, corpus: Corpus, graph: CorpusGraph, key: str) -> Counter:
    rows, matrix = _text(d, corpus, graph)
    if key not in rows or matrix.shape[1] == 0:
        return Counter()
    keys = list(rows)
    scores = np.asarray((matrix @ matrix[rows[key]].T).todense()).ravel()
    return Counter({keys[i]: float(scores[i]) for i in np.flatnonzero(scores > 1e-12) if keys[i] != key})


def _similar_scores(corpus: Corpus, graph: CorpusGraph, key: str) -> dict[str, Counter]:
    """Method -> corpus paper -> score, for every paper with a positive score."""
    d = _derived(graph, corpus)
    keep = d.paper_set
    scores = {"coupling": _coupled(d, d.refs.get(key, ()), key), "cocitation": _cocited(d, key),
              "tags": _tag_similar(d, key), "text": _text_similar(d, corpus, graph, key)}
    return {m: Counter({k: v for k, v in s.items() if k in keep and k != key and v > 0}) for m, s in scores.items()}


def _top(d: _Derived, scores: Counter, k: int | None) -> pd.DataFrame:
    def rank(kv):
        return -kv[1], d.order.get(kv[0], 0)
    # text scores nearly every paper: the k best without sorting them all
    ranked = sorted(scores.items(), key=rank) if k is None else heapq.nsmallest(k, scores.items(), key=rank)
    return pd.DataFrame({"key": pd.Series([r for r, _ in ranked], dtype=object),
                         "title": pd.Series([d.nodes.at[r, "title"] for r, _ in ranked], dtype=object),
                         "year": pd.array([d.nodes.at[r, "year"] for r, _ in ranked], dtype="Int64"),
                         "score": pd.Series([float(s) for _, s in ranked], dtype=float)}, columns=SIMILAR_COLUMNS)


def prepare(corpus: Corpus, graph: CorpusGraph) -> None:
    """Derive now what every panel of ``graph`` needs (who cites what, the tag and text vectors),
    e.g. in the background after a load, so that the first paper opened does not wait for it."""
    _text(_derived(graph, corpus), corpus, graph)


# --- one paper, one outside work ---------------------------------------------------------------------
@dataclass
class Neighbourhood:
    key: str
    title: str
    year: int | None
    doi: str
    references_in: list[str]  # the corpus papers it cites
    references_out: pd.DataFrame  # WORK_COLUMNS: the works outside the corpus it cites
    references_unresolved: list[str]  # keys of its `references` field that name no entry
    cited_by: list[str]  # the corpus papers that cite it
    cited_by_outside: list[str]  # cached works outside the corpus (candidates) that cite it
    similar: dict[str, pd.DataFrame]  # SIMILARITY_METHODS -> SIMILAR_COLUMNS, best first
    text_method: str  # how "text" similarity is computed: TEXT_METHOD
    facts: Facts | None  # None when the paper is not matched in OpenAlex


def neighbourhood(corpus: Corpus, graph: CorpusGraph, key: str, k: int = 10) -> Neighbourhood:
    """One corpus paper: what it cites, who cites it, and its ``k`` most similar corpus papers by each
    of SIMILARITY_METHODS (text: the entry's title and abstract, OpenAlex's abstract where the entry
    has none and the paper is matched)."""
    row = _row(corpus, key)
    d = _derived(graph, corpus)
    cited = sorted(d.refs[key], key=lambda r: (d.order.get(r, len(d.order)), r))
    inside = [r for r in cited if r in d.paper_set]
    outside = [r for r in cited if r not in d.paper_set and (r in d.order or OPENALEX_ID.match(r))]
    citing = sorted(d.citers.get(key, ()), key=d.order.get)
    return Neighbourhood(
        key=key, title=row["title"], year=as_int(row["year"]), doi=row["doi"],
        references_in=inside, references_out=works_frame(corpus, graph, outside),
        references_unresolved=[r for r in cited if r not in inside and r not in outside],
        cited_by=[c for c in citing if c in d.paper_set], cited_by_outside=[c for c in citing if c not in d.paper_set],
        similar={m: _top(d, s, k) for m, s in _similar_scores(corpus, graph, key).items()},
        text_method=TEXT_METHOD, facts=paper_facts(corpus, graph, key))


@dataclass
class OutsideWork:
    openalex_id: str
    title: str  # "" when the work is not cached
    year: int | None
    doi: str  # normalised; "" when unknown
    cached: bool  # its OpenAlex record is in the cache
    candidate: bool  # a node of the graph (cited by two or more corpus papers)
    corpus_key: str | None  # the corpus paper this id is matched to, if it is not outside after all
    addable: bool  # `survey add --doi` can add it (it has a DOI)
    cited_by: list[str]  # the corpus papers that cite it
    references_in: list[str]  # the corpus papers it cites (known when cached)
    coupled_with: pd.DataFrame  # SIMILAR_COLUMNS: corpus papers sharing references with it, score = how many
    facts: Facts | None


def outside_work(corpus: Corpus, graph: CorpusGraph, openalex_id: str, k: int | None = 10) -> OutsideWork:
    """A work outside the corpus (an OpenAlex id the corpus cites), with what a panel shows of it."""
    wid = short_id(openalex_id)
    d = _derived(graph, corpus)
    record = graph.cache.works.get(wid)
    if wid in d.refs:  # a candidate: its references as the graph counts them
        refs = d.refs[wid]
    else:
        cited = [d.id_to_key.get(short_id(r), short_id(r)) for r in (record or {}).get("referenced_works") or []]
        refs = frozenset(cited) - {wid}
    facts = work_facts(graph.cache, wid)
    doi = normalise_doi((record or {}).get("doi") or "")
    return OutsideWork(
        openalex_id=wid, title=work_title(record or {}),
        year=as_int((record or {}).get("publication_year")), doi=doi, cached=record is not None,
        candidate=wid in d.order, corpus_key=d.id_to_key.get(wid), addable=bool(doi),
        cited_by=sorted((c for c in d.citers.get(wid, ()) if c in d.paper_set), key=d.order.get),
        references_in=sorted((r for r in refs if r in d.paper_set), key=d.order.get),
        coupled_with=_top(d, Counter({n: v for n, v in _coupled(d, refs, wid).items() if n in d.paper_set}), k),
        facts=facts)


def works_frame(corpus: Corpus, graph: CorpusGraph, ids: Iterable[str]) -> pd.DataFrame:
    """WORK_COLUMNS for node keys and OpenAlex ids: a corpus paper's title, year and DOI from the
    corpus; a work outside it from the cache when cached, else its id only."""
    d = _derived(graph, corpus)
    rows = []
    for i in ids:
        record = graph.cache.works.get(i)
        if i in d.paper_set:
            title, year, doi = d.entries[i]
            rows.append((i, "paper", title, year, doi, i in graph.paper_works))
        elif record is not None:
            rows.append((i, "candidate" if i in d.order else "outside",
                         work_title(record), record.get("publication_year"),
                         normalise_doi(record.get("doi") or ""), True))
        else:
            rows.append((i, "candidate" if i in d.order else "outside" if OPENALEX_ID.match(i) else "unknown",
                         "", None, "", False))
    columns = list(zip(*rows)) if rows else [()] * len(WORK_COLUMNS)
    return pd.DataFrame({"id": pd.Series(columns[0], dtype=object), "kind": pd.Series(columns[1], dtype=object),
                         "title": pd.Series(columns[2], dtype=object), "year": pd.array(columns[3], dtype="Int64"),
                         "doi": pd.Series(columns[4], dtype=object), "cached": pd.Series(columns[5], dtype=bool)},
                        columns=WORK_COLUMNS)


# --- edges ---------------------------------------------------------------------------------------------
@dataclass
class EdgeExplanation:
    mode: str
    a: str
    b: str
    weight: float  # as survey.graph weighs the mode (0 when the two are not linked in it)
    drawn: bool  # the graph has this edge (coupling, co-citation and tags keep each node's strongest)
    summary: str
    shared_tags: list[str] = field(default_factory=list)  # tags: the tags both have, rarest first
    citations: list[tuple[str, str]] = field(default_factory=list)  # citations: (citing, cited)
    shared_references: pd.DataFrame | None = None  # coupling: WORK_COLUMNS
    citing_both: pd.DataFrame | None = None  # cocitation: WORK_COLUMNS


def explain_edge(corpus: Corpus, graph: CorpusGraph, mode: str, a: str, b: str) -> EdgeExplanation:
    """Why nodes ``a`` and ``b`` are linked in ``mode``, and the weight the graph gives the link."""
    graph.edges(mode)  # refuses an unknown mode
    d = _derived(graph, corpus)
    for node in (a, b):
        if node not in d.order:
            raise ValueError(f"'{node}' is not a node of the graph (a corpus key, or a candidate's OpenAlex id)")
    if a == b:
        raise ValueError("an edge joins two different nodes")
    out = EdgeExplanation(mode, a, b, 0.0, d.drawn_weight(graph, mode, a, b) is not None, "")
    if mode == "citations":
        out.citations = [(s, t) for s, t in ((a, b), (b, a)) if t in d.refs[s]]
        out.weight = float(len(out.citations))
        out.summary = "; ".join(f"{s} cites {t}" for s, t in out.citations) or "neither cites the other"
    elif mode == "coupling":
        shared = sorted(d.refs[a] & d.refs[b], key=lambda r: (d.order.get(r, len(d.order)), r))
        out.shared_references = works_frame(corpus, graph, shared)
        out.weight = float(len(shared))
        out.summary = f"both cite {len(shared)} work(s)" if shared else "they cite no work in common"
    elif mode == "cocitation":
        both = sorted(set(d.citers.get(a, ())) & set(d.citers.get(b, ())), key=d.order.get)
        out.citing_both = works_frame(corpus, graph, both)
        out.weight = float(len(both))
        out.summary = f"cited together by {len(both)} work(s)" if both else "no work cites both"
    else:
        shared = sorted(d.tagsets.get(a, frozenset()) & d.tagsets.get(b, frozenset()), key=lambda t: (-d.idf[t], t))
        out.shared_tags = shared
        out.weight = _tag_cosine(d, a, b)
        out.summary = (f"{len(shared)} shared tag(s): {', '.join(shared)}; similarity {out.weight:.2f}" if shared
                       else "no tag in common")
    return out


@dataclass(frozen=True)
class NoEdges:
    mode: str
    cause: str  # one of the causes above (NOT_ENRICHED, NO_SHARED_TAGS, ...)
    message: str  # what is missing and what to do


def no_edges(corpus: Corpus, graph: CorpusGraph, mode: str) -> NoEdges | None:
    """Why ``mode`` has no edge, from the data; None when it has edges."""
    if not graph.edges(mode).empty:
        return None
    table = corpus.table
    if table.empty:
        return NoEdges(mode, EMPTY_CORPUS, "The corpus holds no paper: add entries to the .bib files (`survey add`).")
    if mode == "tags":
        tagged = int(table["tagset"].map(bool).sum())
        if not tagged:
            return NoEdges(mode, NO_TAGS, "No paper has tags: add SurVis keywords to the entries, e.g. "
                                          "keywords = {method:GAN, modality:CT, task:synthesis}.")
        return NoEdges(mode, NO_SHARED_TAGS, f"{tagged} paper(s) have tags, but no two share one: give papers "
                                             "that belong together a common tag (see bib/tags.toml).")
    listed = int(table["references"].map(bool).sum())
    matched = len(graph.paper_works)
    if not listed and not matched:
        if not graph.cache.lookups:
            return NoEdges(mode, NOT_ENRICHED, "No citation is known: run `survey enrich` to fetch the papers' "
                                               "references from OpenAlex, or add `references = {KeyA KeyB}` to the "
                                               "entries.")
        return NoEdges(mode, NOT_MATCHED, f"`survey enrich` ran, but none of the {len(table)} papers was found in "
                                          "OpenAlex, and no entry has a `references` field: add DOIs to the entries "
                                          "and run `survey enrich` again, or add `references = {KeyA KeyB}`.")
    d = _derived(graph, corpus)
    known = sum(1 for k in d.papers if d.refs[k])
    where = f"{matched} paper(s) matched in OpenAlex, {listed} with a `references` field"
    if not known:
        return NoEdges(mode, NO_REFERENCES, f"{where}, but none lists a reference: add `references = {{KeyA KeyB}}` "
                                            "to the entries, or DOIs so that `survey enrich` finds their references.")
    if mode == "citations":
        return NoEdges(mode, NO_LINKS_INSIDE, f"{where}; {known} list references, but none is a paper of the corpus "
                                              "or a work that two corpus papers cite: add the works they cite "
                                              "(`survey suggest`, `survey add --doi DOI`).")
    if mode == "coupling":
        return NoEdges(mode, NO_SHARED_REFERENCES, f"{where}; {known} list references, but no two cite the same work: "
                                                   "coupling needs papers that share references.")
    return NoEdges(mode, NO_COCITING_WORK, f"{where}; {known} list references, but no work cites two papers of the "
                                           "graph: co-citation needs works that cite corpus papers together (add "
                                           "them with `survey add --doi DOI`, or enrich the papers that cite them).")


# --- nodes, clusters, selection ------------------------------------------------------------------------------
def node_sizes(graph: CorpusGraph, measure: str) -> pd.Series:
    """Node key -> size by ``measure`` (one of SIZE_MEASURES), as floats: OpenAlex's cited-by count
    (NaN where not cached), PageRank on the citations, the in-corpus citation in-degree, or 1 for all."""
    nodes = graph.nodes
    index = pd.Index(nodes["key"], name="key")
    if measure == SIZE_NONE:
        values = np.ones(len(nodes))
    elif measure == SIZE_CITED_BY:
        values = nodes["cited_by_count"].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    elif measure in (SIZE_PAGERANK, SIZE_IN_DEGREE):
        values = nodes[measure].to_numpy(dtype=float)
    else:
        raise ValueError(f"unknown size measure '{measure}'; choose one of {', '.join(SIZE_MEASURES)}")
    return pd.Series(values, index=index, name=measure, dtype=float)


@dataclass
class Cluster:
    number: int  # the graph's community number (0 is the largest)
    size: int  # nodes, candidates included
    members: list[str]  # node keys, in node order
    papers: list[str]  # the corpus papers among them
    tags: pd.DataFrame  # tag, count (papers of the cluster), share, corpus_count, corpus_share, lift


TAG_COLUMNS = ["tag", "count", "share", "corpus_count", "corpus_share", "lift"]


def clusters(corpus: Corpus, graph: CorpusGraph, top: int = 5, largest: int | None = None) -> list[Cluster]:
    """The graph's communities, largest first, each with its ``top`` most telling tags: those more
    common in its papers than in the corpus (lift > 1), ranked by count x log(lift); a cluster
    holding every paper, where no tag stands out, gets its most common tags. ``largest``: only that
    many of the largest (a large graph has a thousand communities, most of them a few nodes)."""
    d = _derived(graph, corpus)
    nodes = graph.nodes if largest is None else graph.nodes[graph.nodes["community"] < largest]
    n_papers = len(d.papers)
    corpus_counts = Counter(t for k in d.papers for t in d.tagsets.get(k, ()))
    out = []
    for number, group in nodes.groupby("community", sort=True):
        members = list(group["key"])
        papers = [k for k in members if k in d.paper_set]
        counts = Counter(t for k in papers for t in d.tagsets.get(k, ()))
        rows = []
        for tag, count in counts.items():
            share, corpus_share = count / len(papers), corpus_counts[tag] / n_papers
            rows.append((tag, count, share, corpus_counts[tag], corpus_share, share / corpus_share))
        frame = pd.DataFrame(rows, columns=TAG_COLUMNS)
        telling = frame[frame["lift"] > 1 + 1e-9]
        if telling.empty:
            frame = frame.sort_values(["count", "tag"], ascending=[False, True])
        else:
            frame = telling.assign(_score=telling["count"] * np.log(telling["lift"]))
            frame = frame.sort_values(["_score", "count", "tag"], ascending=[False, False, True]).drop(columns="_score")
        out.append(Cluster(int(number), len(members), members, papers, frame.head(top).reset_index(drop=True)))
    return out


def select_similar(corpus: Corpus, graph: CorpusGraph, key: str, k: int = 10) -> list[str]:
    """The ``k`` corpus papers nearest to ``key`` by any of SIMILARITY_METHODS: each method's scores
    divided by its best for this paper, a paper ranked by its best such score (then their sum)."""
    _row(corpus, key)
    d = _derived(graph, corpus)
    best: Counter = Counter()
    total: Counter = Counter()
    for scores in _similar_scores(corpus, graph, key).values():
        if scores:
            top = max(scores.values())
            for other, v in scores.items():
                best[other] = max(best[other], v / top)
                total[other] += v / top
    return sorted(best, key=lambda o: (-best[o], -total[o], d.order[o]))[:k]


def outside_works(graph: CorpusGraph, among: Iterable[str] | None = None) -> pd.DataFrame:
    """Works outside the corpus for the review's questions: ``survey.graph.suggestions`` (candidates
    most cited by the corpus first, then most coupled to it; ``among``: only these corpus papers
    count, e.g. the keys a ``survey.query.Query`` keeps), with ``cited_by_n``, ``coupling`` (the
    summed shared references) and ``why`` (one line naming the corpus papers that cite it)."""
    table = suggestions(graph, among)
    table["cited_by_n"] = table["cited_by_corpus"].map(len).astype(int)
    table["coupling"] = table["coupled_with"].map(lambda c: int(sum(c.values()))).astype(int)
    table["why"] = [_why(cited, coupled) for cited, coupled in zip(table["cited_by_corpus"], table["coupled_with"])]
    return table


def _why(cited: list[str], coupled: dict[str, int]) -> str:
    parts = []
    if cited:
        parts.append(f"cited by {len(cited)} corpus paper(s): {', '.join(cited)}")
    if coupled:
        parts.append("shares references with " + ", ".join(f"{k} ({n})" for k, n in list(coupled.items())[:5]))
    return "; ".join(parts)


# --- gaps ---------------------------------------------------------------------------------------------------
@dataclass
class TagGaps:
    rows: str  # the category of the rows (e.g. task)
    columns: str  # the category of the columns (e.g. modality)
    counts: pd.DataFrame  # row value x column value -> papers with both tags
    gaps: list[tuple[str, str]]  # the empty cells, in the matrix's order
    papers: int  # papers counted (not excluded)
    untagged: int  # of them, papers with no tag in one of the two categories (counted nowhere)


GAP_AXES = ("task", "modality")  # the review's first question: which task on which modality
CATEGORIES_NAMED = 12  # an unknown category's message names this many of the corpus's


def gap_axes(categories: list[str], rows: str | None = None,
             columns: str | None = None) -> tuple[str | None, str | None]:
    """The two categories to cross: those asked for when the corpus has them (and they differ), else
    GAP_AXES, else the first two categories; None where the corpus has too few."""
    def pick(wanted: str | None, preferred: str, taken: str | None) -> str | None:
        for choice in (wanted, preferred):
            if choice in categories and choice != taken:
                return choice
        return next((c for c in categories if c != taken), None)

    first = pick(rows, GAP_AXES[0], None)
    return first, pick(columns, GAP_AXES[1], first) if first else None


def tag_gaps(corpus: Corpus, rows: str = GAP_AXES[0], columns: str = GAP_AXES[1],
             exclude: Iterable[str] = ("type:survey",)) -> TagGaps:
    """Papers per combination of a value of ``rows`` and one of ``columns`` (the vocabulary's values,
    then any others the entries use); zero cells are the gaps. Papers with a tag of ``exclude`` are
    not counted (a survey's tags list everything it covers, not combinations anyone studied)."""
    known = corpus.tag_categories()
    for category in (rows, columns):
        if category not in known:
            named = ", ".join(known[:CATEGORIES_NAMED]) + (f" and {len(known) - CATEGORIES_NAMED} more"
                                                           if len(known) > CATEGORIES_NAMED else "")
            raise ValueError(f"unknown tag category '{category}'; the corpus has {named} (`survey stats` lists them)")
    if rows == columns:
        raise ValueError("choose two different categories")
    excluded = set(exclude)
    # a boolean mask even when the table is empty (an empty object Series would select columns)
    table = corpus.table[~corpus.table["tagset"].map(lambda tags: bool(tags & excluded)).astype(bool)]

    def values(category: str) -> list[str]:
        declared = list(corpus.vocabulary.categories.get(category, ()))
        used = sorted({v for tags in corpus.table["tags"] for v in tags.get(category, ())} - set(declared))
        return declared + used

    row_values, column_values = values(rows), values(columns)
    counts = pd.DataFrame(0, index=pd.Index(row_values, name=rows), columns=pd.Index(column_values, name=columns))
    untagged = 0
    for tags in table["tags"]:
        mine, theirs = tags.get(rows, []), tags.get(columns, [])
        untagged += not (mine and theirs)
        for r in mine:
            for c in theirs:
                counts.loc[r, c] += 1
    gaps = [(r, c) for r in row_values for c in column_values if counts.loc[r, c] == 0]
    return TagGaps(rows, columns, counts, gaps, len(table), untagged)


# --- small helpers ---------------------------------------------------------------------------------------------
def _row(corpus: Corpus, key: str) -> pd.Series:
    table = corpus.table
    found = table.index[table["key"] == key]
    if not len(found):
        raise ValueError(f"no paper '{key}' in the corpus")
    return table.loc[found[0]]


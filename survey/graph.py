"""The corpus as a graph: papers, the works outside the corpus that it keeps citing, and four kinds
of edges between them.

- citations: A cites B, from SurVis's ``references`` field and from OpenAlex's referenced works
  that resolve to a node (never guessed: only these two sources).
- coupling: A and B cite the same works (bibliographic coupling; weight = shared references).
- cocitation: A and B are cited together (weight = how many known works cite both).
- tags: A and B share SurVis tags, weighted by rarity (cosine of IDF-weighted tag vectors), each
  paper keeping its ``TAG_NEIGHBOURS`` most similar; this still says something offline, where no
  citation is known.

Candidates are works outside the corpus cited by two or more corpus papers (Connected Papers'
idea). Node metrics: citation in-degree, PageRank on the citations, and communities (Louvain,
or fast label propagation on large graphs) on the citation, coupling and co-citation edges, or
on the tag edges when there are none.
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Iterable
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import scipy.sparse as sp

from survey.corpus import Corpus, cache_dir
from survey.layout import layout
from survey.openalex.cache import WorksCache, cache_folder, short_id, work_title
from survey.openalex.enrich import MIN_CITING, paper_works
from survey.records import normalise_doi
from survey.storage import atomic_write

log = logging.getLogger(__name__)

EDGE_MODES = ("citations", "coupling", "cocitation", "tags")
TAG_NEIGHBOURS = 8
SIMILARITY_NEIGHBOURS = 15  # coupling and co-citation keep each node's strongest links only
LOUVAIN_MAX_EDGES = 20_000  # beyond this, Louvain in pure Python takes seconds: label propagation instead
LAYOUT_VERSION = 1  # bump when the layout changes, to invalidate cached positions
_EDGE_COLUMNS = ["source", "target", "weight"]


def corpus_graph(corpus: Corpus, works: WorksCache | Iterable[dict] | None = None) -> "CorpusGraph":
    """The graph of ``corpus``. ``works``: the OpenAlex cache (or a list of its raw records, matched
    by DOI); None reads the cache beside the corpus's first .bib file if there is one."""
    return CorpusGraph(corpus, _as_cache(corpus, works))


class CorpusGraph:
    def __init__(self, corpus: Corpus, cache: WorksCache):
        table = corpus.table
        matched = paper_works(corpus, cache)
        papers = list(table["key"])
        id_to_key = {short_id(w["id"]): key for key, (_, w) in matched.items()}
        refs: dict[str, list[str]] = {}  # node -> what it cites (node keys, or OpenAlex ids outside)
        for key, listed in zip(papers, table["references"]):
            out = list(listed)
            if key in matched:
                out += [id_to_key.get(short_id(r), short_id(r)) for r in matched[key][1].get("referenced_works") or []]
            refs[key] = [r for r in dict.fromkeys(out) if r != key]  # OpenAlex records can list themselves
        known = set(papers)
        citing = pd.Series([r for key in papers for r in refs[key] if r not in known]).value_counts()
        candidates = sorted(citing[citing >= MIN_CITING].index, key=lambda w: (-citing[w], w))
        for wid in candidates:  # a candidate's own references count for coupling and co-citation
            record = cache.works.get(wid) or {}
            cited = [id_to_key.get(short_id(r), short_id(r)) for r in record.get("referenced_works") or []]
            refs[wid] = [r for r in dict.fromkeys(cited) if r != wid]
        self.keys = papers + candidates
        self.paper_works = matched  # corpus key -> (how it was matched, its OpenAlex record)
        self._index = {k: i for i, k in enumerate(self.keys)}
        self._refs = refs
        self._table = table
        self.cache = cache
        self._edges: dict[str, pd.DataFrame] = {}
        self._positions: dict[str, dict[str, tuple[float, float]]] = {}
        self.nodes = self._node_table(table, matched, cache, candidates)

    def references(self, node: str) -> list[str]:
        """What ``node`` cites, as the edges count it: node keys, or OpenAlex ids of works outside the
        graph (and any ``references`` key that names no entry); empty for what is not a node."""
        return list(self._refs.get(node, ()))

    # --- edges -------------------------------------------------------------------------------
    def edges(self, mode: str) -> pd.DataFrame:
        """``source, target, weight`` (node keys); citations are directed (source cites target),
        the other modes undirected with source < target in node order."""
        if mode not in EDGE_MODES:
            raise ValueError(f"unknown edge mode '{mode}'; choose one of {', '.join(EDGE_MODES)}")
        if mode not in self._edges:
            self._edges[mode] = getattr(self, f"_{mode}")()
        return self._edges[mode]

    def _citations(self) -> pd.DataFrame:
        pairs = [(s, t) for s, cited in self._refs.items() for t in cited if t in self._index]
        return pd.DataFrame([(s, t, 1.0) for s, t in pairs], columns=_EDGE_COLUMNS)

    def _reference_matrix(self) -> tuple[sp.csr_matrix, list[str]]:
        """Citing node x cited item (a node or an outside work), one where it cites it."""
        items: dict[str, int] = {}
        rows, cols = [], []
        for node, cited in self._refs.items():
            for item in cited:
                rows.append(self._index[node])
                cols.append(items.setdefault(item, len(items)))
        matrix = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(self.keys), len(items)))
        return matrix, list(items)

    def _coupling(self) -> pd.DataFrame:
        matrix, _ = self._reference_matrix()
        return self._similarity_edges(matrix @ matrix.T, SIMILARITY_NEIGHBOURS)

    def _cocitation(self) -> pd.DataFrame:
        matrix, items = self._reference_matrix()
        # only the cited items that are nodes; keep the node order
        nodes = [(self._index[item], j) for j, item in enumerate(items) if item in self._index]
        select = sp.csr_matrix((np.ones(len(nodes)), ([j for _, j in nodes], [i for i, _ in nodes])),
                               shape=(len(items), len(self.keys)))
        cited = matrix @ select  # citing node x cited node
        return self._similarity_edges(cited.T @ cited, SIMILARITY_NEIGHBOURS)

    def _tags(self) -> pd.DataFrame:
        source, target, weight = tag_neighbours(list(self._table["tagset"]), TAG_NEIGHBOURS)
        return self._frame(source, target, weight)

    def _similarity_edges(self, similarity: sp.spmatrix, keep: int) -> pd.DataFrame:
        similarity = sp.triu(similarity, k=1).tocoo()
        source, target, weight = strongest(similarity.row, similarity.col, similarity.data, keep)
        return self._frame(source, target, weight)

    def _frame(self, source, target, weight) -> pd.DataFrame:
        keys = np.array(self.keys, dtype=object)
        return pd.DataFrame({"source": keys[source], "target": keys[target],
                             "weight": np.asarray(weight, dtype=float)}, columns=_EDGE_COLUMNS)

    # --- nodes -------------------------------------------------------------------------------
    def _node_table(self, table, matched, cache: WorksCache, candidates: list[str]) -> pd.DataFrame:
        outside = [cache.works.get(w) or {} for w in candidates]
        n = len(self.keys)
        citations = self.edges("citations")
        digraph = nx.DiGraph()
        digraph.add_nodes_from(range(n))
        digraph.add_edges_from(zip(citations["source"].map(self._index), citations["target"].map(self._index)))
        in_degree = np.bincount(citations["target"].map(self._index).to_numpy(dtype=np.int64), minlength=n)
        pagerank = nx.pagerank(digraph) if len(citations) else {i: 1.0 / max(n, 1) for i in range(n)}
        cited_by = [matched[k][1].get("cited_by_count") if k in matched else None for k in table["key"]]
        return pd.DataFrame({
            "key": pd.Series(self.keys, dtype=object),  # object even when empty, as the corpus table's
            "kind": pd.Series(["paper"] * len(table) + ["candidate"] * len(candidates), dtype=object),
            "title": pd.Series(list(table["title"]) + [work_title(w) for w in outside],
                               dtype=object),
            "year": pd.array(list(table["year"]) + [w.get("publication_year") for w in outside], dtype="Int64"),
            "in_degree": in_degree.astype(int),
            "pagerank": [float(pagerank[i]) for i in range(n)],
            "community": self._communities(),
            "cited_by_count": pd.array(cited_by + [w.get("cited_by_count") for w in outside], dtype="Int64"),
        })

    def _communities(self) -> np.ndarray:
        """Communities of the citation-based edges, or of the tag edges when there are none."""
        frames = [self.edges(m) for m in ("citations", "coupling", "cocitation")]
        structure = pd.concat([f for f in frames if len(f)]) if any(len(f) for f in frames) else self.edges("tags")
        source = structure["source"].map(self._index).to_numpy(dtype=np.int64)
        target = structure["target"].map(self._index).to_numpy(dtype=np.int64)
        weight = structure["weight"].to_numpy(dtype=float)
        n = len(self.keys)
        if len(structure) <= LOUVAIN_MAX_EDGES:
            graph = nx.Graph()
            graph.add_nodes_from(range(n))
            graph.add_weighted_edges_from(zip(source, target, weight))
            labels = np.zeros(n, dtype=np.int64)
            for number, group in enumerate(nx.community.louvain_communities(graph, weight="weight", seed=0)):
                labels[list(group)] = number
        else:
            labels = label_propagation(n, source, target, weight)
        # numbered largest first, ties by first member, so that the numbers are stable
        _, first, inverse, counts = np.unique(labels, return_index=True, return_inverse=True, return_counts=True)
        order = np.lexsort((first, -counts))
        number = np.empty(len(order), dtype=np.int64)
        number[order] = np.arange(len(order))
        return number[inverse]

    # --- positions ---------------------------------------------------------------------------
    def positions(self, mode: str) -> dict[str, tuple[float, float]]:
        """Node key -> (x, y) in [-1, 1] for the edges of ``mode``; computed once, then read from a
        file in the cache folder named by the graph's content."""
        if mode in self._positions:
            return self._positions[mode]
        edges = self.edges(mode)
        source = edges["source"].map(self._index).to_numpy(dtype=np.int64)
        target = edges["target"].map(self._index).to_numpy(dtype=np.int64)
        weight = edges["weight"].to_numpy(dtype=float)
        digest = hashlib.sha256(f"layout{LAYOUT_VERSION}:{mode}:".encode())
        digest.update("\0".join(self.keys).encode("utf-8", "surrogateescape"))
        for array in (source, target, weight):
            digest.update(array.tobytes())
        path = cache_dir() / f"layout-{digest.hexdigest()[:32]}.npy"
        xy = _read_positions(path, len(self.keys))
        if xy is None:
            links = _link_signatures(len(self.keys), source, target)
            last = cache_dir() / f"layout-last-{self._identity()}-{mode}.npz"
            xy = layout(len(self.keys), source, target, weight, start=_kept_positions(last, self.keys, links))
            _save(path, lambda buffer: np.save(buffer, xy.astype(np.float64)))
            _save(last, lambda buffer: np.savez(buffer, keys=np.array(self.keys, dtype=str),
                                                xy=xy.astype(np.float64), links=links))
        self._positions[mode] = {k: (float(x), float(y)) for k, (x, y) in zip(self.keys, xy)}
        return self._positions[mode]

    def _identity(self) -> str:
        """The corpus's files, by path: where the previous layout of the same corpus is kept."""
        files = sorted({str(f) for f in self._table["file"]}) if "file" in self._table else []
        return hashlib.sha256("\0".join(files).encode("utf-8", "surrogateescape")).hexdigest()[:16]


def tag_neighbours(tagsets: list[frozenset], k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each paper's ``k`` most similar papers by shared tags (cosine of IDF-weighted tag vectors),
    as undirected index pairs ``i < j`` with their similarity.

    Papers with the same tag set form a group: within a group each paper is linked to the next
    ``k // 2`` in corpus order (similarity 1: a band, not m^2 edges); across groups the
    similarity is computed once per pair of groups, in chunks, and each group links to its ``k``
    most similar groups, member i to member i mod m of the other, so that no paper gathers
    thousands of links.
    """
    groups: dict[frozenset, list[int]] = {}
    for i, tags in enumerate(tagsets):
        if tags:
            groups.setdefault(tags, []).append(i)
    sets = list(groups)
    flat = np.array([i for members in groups.values() for i in members], dtype=np.int64)
    size = np.array([len(m) for m in groups.values()], dtype=np.int64)
    first = np.r_[0, np.cumsum(size)[:-1]].astype(np.int64)
    group_of = np.repeat(np.arange(len(sets)), size)
    rank = np.arange(len(flat)) - first[group_of]  # position of each paper within its group
    source, target, weight = [], [], []
    for offset in range(1, k // 2 + 1):  # the band within each group
        inside = rank + offset < size[group_of]
        source.append(flat[inside]), target.append(flat[np.flatnonzero(inside) + offset])
        weight.append(np.ones(inside.sum()))
    pairs_g, pairs_o, pairs_w = (_similar_groups(sets, size, len(tagsets), min(k, len(sets) - 1))
                                 if len(sets) > 1 else ([], [], []))
    if len(pairs_g):  # empty when no two tag sets share a tag
        repeat = np.repeat(np.arange(len(pairs_g)), size[pairs_g])
        within = np.arange(len(repeat)) - np.repeat(np.r_[0, np.cumsum(size[pairs_g])[:-1]], size[pairs_g])
        source.append(flat[first[pairs_g][repeat] + within])
        target.append(flat[first[pairs_o][repeat] + within % size[pairs_o][repeat]])
        weight.append(pairs_w[repeat])
    if not source:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    source, target, weight = np.concatenate(source), np.concatenate(target), np.concatenate(weight)
    return strongest(np.minimum(source, target), np.maximum(source, target), weight, None)


def tag_idf(papers: int, papers_with):
    """The weight of a tag that ``papers_with`` of ``papers`` papers have (a number or an array);
    a tag every paper has still counts a little."""
    return np.log((1 + papers) / (1 + papers_with)) + 1


def _similar_groups(sets: list[frozenset], size: np.ndarray, n: int, top: int):
    """For each tag set, its ``top`` most similar other sets with a positive similarity."""
    vocabulary = {t: j for j, t in enumerate(sorted({t for s in sets for t in s}))}
    rows = np.repeat(np.arange(len(sets)), [len(s) for s in sets])
    cols = np.array([vocabulary[t] for s in sets for t in sorted(s)])
    papers_with = np.bincount(cols, weights=size[rows], minlength=len(vocabulary))
    idf = tag_idf(n, papers_with)
    vectors = sp.csr_matrix((idf[cols], (rows, cols)), shape=(len(sets), len(vocabulary)))
    norms = np.sqrt(np.asarray(vectors.multiply(vectors).sum(axis=1)).ravel())
    vectors = (sp.diags(1 / norms) @ vectors).tocsr().astype(np.float32)
    # Distinct values: equal similarities resolve by set order (argpartition also degrades on ties).
    # The tie-breaker rides along as one more column, so the product needs no extra pass.
    tie = (np.arange(len(sets)) * 1e-7).astype(np.float32)
    right = sp.vstack([vectors.T, sp.csr_matrix(-tie[None, :])]).tocsr()
    left = sp.hstack([vectors, sp.csr_matrix(np.ones((len(sets), 1), np.float32))]).tocsr()
    dense = right.shape[0] <= 1024  # a small vocabulary: BLAS on dense blocks is much faster
    right = right.toarray() if dense else right
    sample = np.random.default_rng(0).permutation(len(sets))[:max(4 * top, 512)]
    out_g, out_o, out_w = [], [], []
    for start in range(0, len(sets), 1024):
        chunk = left[start:start + 1024]
        block = chunk.toarray() @ right if dense else (chunk @ right).toarray()  # sets in chunk x all sets
        here = np.arange(start, min(start + 1024, len(sets)))
        block[here - start, here] = -np.inf
        # The top-th best of a sample is at most the top-th best of all: only values above it
        # can make the top, and they are few, so a full partition of each row is not needed.
        floor = -np.partition(-block[:, sample], top - 1, axis=1)[:, top - 1]
        row, col = np.nonzero(block >= floor[:, None])
        value = block[row, col]
        order = np.lexsort((-value, row))
        row, col, value = row[order], col[order], value[order]
        starts = np.r_[0, np.flatnonzero(np.diff(row)) + 1]
        rank = np.arange(len(row)) - np.repeat(starts, np.diff(np.r_[starts, len(row)]))
        chosen = (rank < top) & (value + tie[col] > 1e-6)
        out_g.append(here[row[chosen]]), out_o.append(col[chosen]), out_w.append(value[chosen] + tie[col[chosen]])
    return np.concatenate(out_g), np.concatenate(out_o), np.concatenate(out_w)


def label_propagation(n: int, source, target, weight, seed: int = 0, rounds: int = 30) -> np.ndarray:
    """Communities by label propagation (Raghavan et al. 2007), vectorised over all nodes: each
    round, a random half of the nodes (seeded) takes the label with the most weight among its
    neighbours, keeping its own on a tie, else the smallest. networkx's version needs ~1 s at
    10k nodes / 50k edges here, Louvain several; this one about a tenth of that."""
    rng = np.random.default_rng(seed)
    rows, cols = np.r_[source, target, np.arange(n)], np.r_[target, source, np.arange(n)]
    w = np.r_[weight, weight, np.full(n, 1e-6)]  # a node's own label wins ties
    adjacency = sp.csr_matrix((w, (rows, cols)), shape=(n, n))
    labels = np.arange(n, dtype=np.int64)
    for _ in range(rounds):
        votes = adjacency @ sp.csr_matrix((np.ones(n), (np.arange(n), labels)), shape=(n, n))
        votes.sort_indices()
        row = np.repeat(np.arange(n), np.diff(votes.indptr))
        best = np.maximum.reduceat(votes.data, votes.indptr[:-1])  # every row has its own vote
        top = np.flatnonzero(votes.data >= best[row])
        top = top[np.r_[True, np.diff(row[top]) != 0]]  # the smallest label among equals
        winner = votes.indices[top]
        if np.array_equal(winner, labels):
            break
        move = rng.random(n) < 0.5
        labels[move] = winner[move]
    return labels


def strongest(source, target, weight, keep: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Undirected pairs made unique (highest weight kept), each node keeping at most its ``keep``
    strongest links (an edge stays when either end keeps it); sorted by (source, target)."""
    source, target, weight = (np.asarray(a) for a in (source, target, weight))
    if len(source) == 0:
        return source.astype(np.int64), target.astype(np.int64), weight.astype(float)
    order = np.lexsort((-weight, target, source))
    source, target, weight = source[order], target[order], weight[order]
    first = np.r_[True, (np.diff(source) != 0) | (np.diff(target) != 0)]
    source, target, weight = source[first], target[first], weight[first]
    if keep is not None:
        kept = np.zeros(len(source), dtype=bool)
        for ends in (source, target):
            by_strength = np.lexsort((-weight, ends))
            sorted_ends = ends[by_strength]
            starts = np.r_[0, np.flatnonzero(np.diff(sorted_ends)) + 1]
            rank = np.arange(len(ends)) - np.repeat(starts, np.diff(np.r_[starts, len(ends)]))
            kept[by_strength[rank < keep]] = True
        source, target, weight = source[kept], target[kept], weight[kept]
    return source.astype(np.int64), target.astype(np.int64), weight.astype(float)


def _as_cache(corpus: Corpus, works) -> WorksCache:
    if isinstance(works, WorksCache):
        return works
    if works is None:
        folder = cache_folder(corpus.files[0].path) if corpus.files else None
        return WorksCache.open(folder) if folder and folder.exists() else WorksCache(Path("."))
    cache = WorksCache(Path("."))
    for w in works:
        cache.works[short_id(w["id"])] = w
        if w.get("doi"):
            cache.lookups[f"doi:{normalise_doi(w['doi'])}"] = {"id": short_id(w["id"])}
    return cache


def _link_signatures(n: int, source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per node, a 64-bit digest of the set of nodes it is linked to (either direction): a node
    whose digest is unchanged since the last layout keeps its place."""
    ends = np.r_[source, target].astype(np.uint64)
    others = np.r_[target, source].astype(np.uint64)
    # an order-free set digest: the sum of a mixing of each neighbour index (wraps around mod 2**64)
    mixed = (others + np.uint64(0x9E3779B97F4A7C15)) * np.uint64(0xBF58476D1CE4E5B9)
    mixed ^= mixed >> np.uint64(31)
    sums = np.zeros(n, dtype=np.uint64)
    np.add.at(sums, ends.astype(np.int64), mixed)
    return sums


def _kept_positions(path: Path, keys: list[str], links: np.ndarray) -> np.ndarray | None:
    """(n, 2) start for ``layout``: the previous position of each node whose links are unchanged,
    NaN for the others; None when there is no previous layout."""
    try:
        with np.load(path, allow_pickle=False) as last:
            old = {k: (xy, sig) for k, xy, sig in zip(last["keys"].tolist(), last["xy"], last["links"])}
    except (OSError, ValueError, KeyError):
        return None
    start = np.full((len(keys), 2), np.nan)
    for i, key in enumerate(keys):
        if key in old and old[key][1] == links[i]:
            start[i] = old[key][0]
    return start


def _save(path: Path, write) -> None:
    buffer = io.BytesIO()
    write(buffer)
    try:
        atomic_write(path, buffer.getvalue(), backup=False)
    except Exception as err:  # a read-only cache folder must not stop the explorer
        log.info("could not cache positions in %s: %s", path, err)


def _read_positions(path: Path, n: int) -> np.ndarray | None:
    try:
        xy = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        return None
    except Exception as err:  # a damaged cache file only costs a new layout
        log.info("ignoring unreadable positions %s: %s", path, err)
        return None
    return xy if xy.shape == (n, 2) else None


def suggestions(graph: CorpusGraph, among: Iterable[str] | None = None) -> pd.DataFrame:
    """The candidates, most cited by the corpus first, then most coupled to it, with why: which
    corpus papers cite each, and which share references with it (and how many). ``among``: only
    these corpus papers count (those a filter keeps, for one question of the review), and a
    candidate that none of them cites or shares a reference with is left out."""
    citations = graph.edges("citations")
    papers = set(graph.nodes.loc[graph.nodes["kind"] == "paper", "key"])
    if among is not None:
        papers &= set(among)
    citing = citations[citations["source"].isin(papers)].groupby("target")["source"].apply(list)
    coupling = graph.edges("coupling")
    rows = []
    for node in graph.nodes[graph.nodes["kind"] == "candidate"].itertuples(index=False):
        links = coupling[(coupling["source"] == node.key) | (coupling["target"] == node.key)]
        shared = {(s if t == node.key else t): int(w) for s, t, w in links.itertuples(index=False)}
        shared = {k: n for k, n in sorted(shared.items(), key=lambda kv: (-kv[1], kv[0])) if k in papers}
        if among is not None and not shared and node.key not in citing.index:
            continue
        doi = normalise_doi((graph.cache.works.get(node.key) or {}).get("doi") or "")
        rows.append({"key": node.key, "title": node.title, "year": node.year, "doi": doi,
                     "cited_by_corpus": sorted(citing.get(node.key, [])), "coupled_with": shared,
                     "cited_by_count": node.cited_by_count})
    table = pd.DataFrame(rows, columns=["key", "title", "year", "doi", "cited_by_corpus", "coupled_with", "cited_by_count"])
    if table.empty:
        return table
    table["score"] = table["cited_by_corpus"].map(len) + 0.1 * table["coupled_with"].map(lambda d: sum(d.values()))
    return table.sort_values(["score", "key"], ascending=[False, True]).reset_index(drop=True)

"""What the explorer shows: the corpus and its graph, reloaded when a .bib file changes.

Writes (adding papers, editing tags) go through the knowledge base (``survey.merge``,
``survey.edit``: atomic and locked), after which the next request sees the new files.
"""

from __future__ import annotations

import functools
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from survey import edit, merge
from survey.corpus import Corpus, bib_paths, load_corpus
from survey.graph import CorpusGraph, corpus_graph
from survey import neighbourhood as nb

from app import browser_filter, figures, map_text
from app.filters import DEFAULT_SIZE, FilterState
from survey.export import Tally, author_tally, tag_counts, tag_tally, venue_tally


PANEL_SIMILAR = 8  # similar papers listed per method in the detail panel
SELECT_SIMILAR = 5  # papers "select similar" keeps beside the paper itself (its nearest by any method)
PANEL_CACHE = 64  # panels kept per snapshot


@dataclass
class Snapshot:
    """One loaded version of the corpus; ``version`` changes whenever a file does."""
    version: str
    corpus: Corpus
    graph: CorpusGraph
    nodes: pd.DataFrame  # graph nodes with review_category, label, and marker size and score by DEFAULT_SIZE
    _positions: dict[str, dict] = field(default_factory=dict)
    _figures: dict[tuple[str, str, str], dict] = field(default_factory=dict)
    # the map's parts that depend on the size measure, the colouring or the edge mode, each computed once
    _map_nodes: dict[tuple[str, bool], pd.DataFrame] = field(default_factory=dict)
    _node_groups: dict[tuple[str, str, str], figures.NodeGroups] = field(default_factory=dict)
    _map: dict[tuple[str, str], object] = field(default_factory=dict)  # (what, mode) -> drawn edges, hover texts...
    # the detail panel's data, per selected key or OpenAlex id (what survey.neighbourhood derives from the
    # graph, who cites what and the tag and text vectors, it keeps once per graph, so once per snapshot)
    _panels: dict[str, object] = field(default_factory=dict)
    _panel_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def table(self) -> pd.DataFrame:
        return self.corpus.table

    def neighbourhood(self, key: str) -> nb.Neighbourhood:
        """A corpus paper's references, citers and most similar papers (computed for it alone)."""
        return self._panel(f"paper:{key}", lambda: nb.neighbourhood(self.corpus, self.graph, key, k=PANEL_SIMILAR))

    def outside_work(self, openalex_id: str) -> nb.OutsideWork:
        """A work outside the corpus, as the detail panel shows it."""
        return self._panel(f"work:{openalex_id}", lambda: nb.outside_work(self.corpus, self.graph, openalex_id,
                                                                          k=PANEL_SIMILAR))

    def similar_to(self, key: str) -> tuple[str, ...]:
        """The papers "select similar" keeps beside ``key``; none when ``key`` is no corpus paper."""
        def nearest():
            if key not in self.by_key.index:
                return ()
            return tuple(nb.select_similar(self.corpus, self.graph, key, k=SELECT_SIMILAR))
        return self._panel(f"similar:{key}", nearest)

    def prepare_panels(self) -> None:
        """Derive what every panel needs (who cites what, tag and text vectors: a second or two at 10k
        papers) before the first paper is opened; run in the background after a load."""
        with self._panel_lock:
            nb.prepare(self.corpus, self.graph)

    def _panel(self, name: str, compute):
        with self._panel_lock:  # one computation at a time: none waits for a second copy of the same work
            if name not in self._panels:
                if len(self._panels) >= PANEL_CACHE:  # the oldest first: a session walks from paper to paper
                    self._panels.pop(next(iter(self._panels)))
                self._panels[name] = compute()
            return self._panels[name]

    def positions(self, mode: str) -> dict[str, tuple[float, float]]:
        if mode not in self._positions:
            self._positions[mode] = self.graph.positions(mode)
        return self._positions[mode]

    @functools.cached_property
    def by_key(self) -> pd.DataFrame:
        return self.table.set_index("key", drop=False)

    @functools.cached_property
    def categories(self) -> list[str]:
        return self.corpus.tag_categories()

    @functools.cached_property
    def tag_counts(self) -> dict[str, dict[str, int]]:
        """Tags over the whole corpus: the clouds' sizes."""
        return tag_counts(self.table, self.categories)

    @functools.cached_property
    def tags(self) -> Tally:
        """Which paper carries which tag: the tag clouds' counts within a filter."""
        return tag_tally(self.table, self.categories)

    @functools.cached_property
    def authors(self) -> Tally:
        """Who wrote which paper: the author cloud's counts, for the corpus and for any filter."""
        return author_tally(self.table)

    @functools.cached_property
    def venues(self) -> Tally:
        return venue_tally(self.table)

    @functools.cached_property
    def filter_index(self) -> dict:
        """The corpus as the browser filters it (``app.browser_filter.index``), sent once per snapshot."""
        return browser_filter.index(self.table, self.tags, self.authors, self.venues, self.version)

    def graph_figure(self, mode: str, colour: str, size: str = DEFAULT_SIZE) -> dict:
        """The map with every node and no highlight, built once per edge mode, colouring and size
        measure; a copy that ``figures.apply_highlight`` may change."""
        if (mode, colour, size) not in self._figures:
            self._figures[mode, colour, size] = figures.graph_figure(
                self.map_nodes(size, colour), self.positions(mode), self.graph.edges(mode), colour,
                hover=self.edge_hover(mode), empty=self.empty_message(mode))
        figure = self._figures[mode, colour, size]
        return {"data": [dict(trace) for trace in figure["data"]], "layout": figure["layout"]}

    def map_nodes(self, size: str = DEFAULT_SIZE, colour: str = "category") -> pd.DataFrame:
        """The nodes as the map draws them: marker ``size`` and label rank ``score`` by ``size`` (one of
        survey.neighbourhood.SIZE_MEASURES), and for colour by cluster the ``cluster`` names."""
        key = (size, colour == "cluster")
        if key not in self._map_nodes:
            nodes = self.nodes if size == DEFAULT_SIZE else self.nodes.assign(**_sizes(self.nodes, self.graph, size))
            if colour == "cluster":
                names = self._map_part("clusters", "", lambda: map_text.cluster_names(
                    self.corpus, self.graph, len(figures.CLUSTER_COLOURS)))
                nodes = nodes.assign(cluster=nodes["community"].map(names).fillna(figures.OTHER_CLUSTERS))
            self._map_nodes[key] = nodes
        return self._map_nodes[key]

    def node_groups(self, mode: str, size: str, colour: str) -> figures.NodeGroups:
        """The map's node traces for an edge mode, size measure and colouring, as every highlight uses them."""
        if (mode, size, colour) not in self._node_groups:
            self._node_groups[mode, size, colour] = figures.node_groups(self.map_nodes(size, colour),
                                                                        self.positions(mode), colour)
        return self._node_groups[mode, size, colour]

    def drawn_edges(self, mode: str) -> pd.DataFrame:
        return self._map_part("drawn", mode, lambda: figures.drawn_edges(self.graph.edges(mode)))

    def neighbours(self, mode: str, key: str | None) -> list[str]:
        """The nodes the drawn edges of ``mode`` link to ``key``, strongest first."""
        if key is None:
            return []
        return self._map_part("neighbours", mode, lambda: figures.neighbour_finder(self.drawn_edges(mode)))(key)

    def hover_edges(self, mode: str) -> pd.DataFrame:
        """The edges with a hover marker, in the marker trace's order (its point numbers)."""
        return self._map_part("hover", mode, lambda: figures.hover_edges(self.drawn_edges(mode)))

    def edge_hover(self, mode: str) -> list[str] | None:
        """Each hover marker's label: why the two are linked; None above HOVER_TITLES_MAX nodes, where
        the label gives the weight and the line under the map the reason."""
        def explain():
            if len(self.nodes) > figures.HOVER_TITLES_MAX:
                return None
            edges = self.hover_edges(mode)
            return [map_text.edge_hover(self.corpus, self.graph, mode, a, b, self.labels)
                    for a, b in zip(edges["source"], edges["target"])]
        return self._map_part("hover-text", mode, explain)

    def empty_message(self, mode: str) -> str:
        """Why ``mode`` has no edge and what to do; "" when it has edges."""
        return self._map_part("empty", mode, lambda: map_text.empty_message(self.corpus, self.graph, mode))

    @functools.cached_property
    def labels(self) -> dict[str, str]:
        """Node key -> its label on the map ("Yi 2019")."""
        return dict(zip(self.nodes["key"], self.nodes["label"]))

    def map_legend(self, state: FilterState) -> str:
        """The line under the map for ``state``: what an edge is, how many are drawn, what size and colour mean."""
        mode = state.edges
        return map_text.legend(mode, state.size, state.colour, len(self.graph.edges(mode)),
                               len(self.drawn_edges(mode)), len(self.hover_edges(mode)), self.empty_message(mode))

    def edge_line(self, mode: str, point) -> str:
        """The line under the map for hover marker number ``point`` of ``mode``; "" for no such marker."""
        edges = self.hover_edges(mode)
        if not isinstance(point, int) or not 0 <= point < len(edges):
            return ""
        source, target = edges["source"].iloc[point], edges["target"].iloc[point]
        return map_text.edge_line(self.corpus, self.graph, mode, source, target, self.labels)

    def _map_part(self, what: str, mode: str, compute):
        if (what, mode) not in self._map:
            self._map[what, mode] = compute()
        return self._map[what, mode]


class ExplorerState:
    def __init__(self, paths: list[Path] | None = None):
        self.paths = bib_paths(paths)
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._stamp: tuple | None = None

    @property
    def root(self) -> Path:
        """The folder holding the corpus's files: what the explorer's downloads name them relative to."""
        return Path(os.path.commonpath([p.resolve().parent for p in self.paths])) if self.paths else Path.cwd()

    def _files_stamp(self) -> tuple:
        return tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in self.paths)

    def snapshot(self) -> Snapshot:
        """The current corpus, reloaded (from the content-keyed cache when it can) if a file changed."""
        with self._lock:
            stamp = self._files_stamp()
            if self._snapshot is None or stamp != self._stamp:
                corpus = load_corpus(self.paths)
                graph = corpus_graph(corpus)
                self._snapshot = Snapshot(_version(corpus), corpus, graph, _node_table(corpus, graph))
                threading.Thread(target=self._snapshot.prepare_panels, name="prepare-panels", daemon=True).start()
                self._stamp = stamp
            return self._snapshot

    @property
    def target(self) -> Path:
        """Where added papers go: the first .bib file of the corpus."""
        return self.paths[0]

    def add(self, text: str, source: str, dry_run: bool, confirm: frozenset[str] = frozenset()) -> merge.MergeReport:
        """Add ``text`` (named ``source``: the uploaded file's name, or "pasted text") to the target;
        ``confirm``: keys of possible duplicates the user chose to add."""
        return merge.add_text(text, source, self.target, self.paths, dry_run=dry_run, confirm=confirm)

    def set_tags(self, key: str, keywords: str) -> bool:
        """Save paper ``key``'s tags; False, with nothing written, when they are the tags it has."""
        row = self.snapshot().by_key.loc[key]
        return edit.set_keywords(Path(row["file"]), key, keywords)


def _version(corpus: Corpus) -> str:
    return "-".join(f.sha256[:12] for f in corpus.files)


def _node_table(corpus: Corpus, graph: CorpusGraph) -> pd.DataFrame:
    nodes = graph.nodes.merge(corpus.table[["key", "review_category"]], on="key", how="left")
    labels = map_text.node_labels(corpus, graph)
    nodes = nodes.assign(label=nodes["key"].map(dict(zip(labels.index, labels))).fillna(nodes["key"]))
    return nodes.assign(**_sizes(nodes, graph, DEFAULT_SIZE))


def _sizes(nodes: pd.DataFrame, graph: CorpusGraph, measure: str) -> dict[str, np.ndarray]:
    """``size`` (marker pixels) and ``score`` (the measure, which ranks the labels) by ``measure``.
    Cited-by counts: without OpenAlex's count, the citations inside the corpus give the size."""
    values = nb.node_sizes(graph, measure)
    values = pd.Series(nodes["key"].map(dict(zip(values.index, values))), dtype=float).reset_index(drop=True)
    if measure == nb.SIZE_CITED_BY:
        values = values.fillna(nodes["in_degree"].astype(float).reset_index(drop=True))
    if measure == nb.SIZE_PAGERANK:
        size = figures.spread_sizes(values)
    elif measure == nb.SIZE_NONE:
        size = figures.node_sizes(values * 0)
    else:
        size = figures.node_sizes(values)
    return {"size": size.to_numpy(dtype=np.float64), "score": values.to_numpy(dtype=np.float64)}

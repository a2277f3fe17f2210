"""What the explorer shows: the corpus and its graph, reloaded when a .bib file changes.

Writes (adding papers, editing tags) go through the knowledge base (``survey.merge``,
``survey.edit``: atomic and locked), after which the next request sees the new files.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from survey import edit, merge
from survey.corpus import Corpus, bib_paths, load_corpus
from survey.graph import CorpusGraph, corpus_graph

from app import figures
from survey.export import tag_counts


@dataclass
class Snapshot:
    """One loaded version of the corpus; ``version`` changes whenever a file does."""
    version: str
    corpus: Corpus
    graph: CorpusGraph
    nodes: pd.DataFrame  # graph nodes with review_category and marker size
    _positions: dict[str, dict] = field(default_factory=dict)
    _figures: dict[tuple[str, str], dict] = field(default_factory=dict)

    @property
    def table(self) -> pd.DataFrame:
        return self.corpus.table

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

    def graph_figure(self, mode: str, colour: str) -> dict:
        """The map with every node and no highlight, built once per edge mode and colouring;
        a copy that ``figures.apply_highlight`` may change."""
        if (mode, colour) not in self._figures:
            self._figures[mode, colour] = figures.graph_figure(self.nodes, self.positions(mode),
                                                                self.graph.edges(mode), colour)
        figure = self._figures[mode, colour]
        return {"data": [dict(trace) for trace in figure["data"]], "layout": figure["layout"]}


class ExplorerState:
    def __init__(self, paths: list[Path] | None = None):
        self.paths = bib_paths(paths)
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._stamp: tuple | None = None

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
    citations = nodes["cited_by_count"].astype("Float64")
    # without OpenAlex counts, the citations inside the corpus give the size
    citations = citations.fillna(nodes["in_degree"].astype(float))
    return nodes.assign(size=figures.node_sizes(citations.astype(float)).to_numpy(dtype=np.float64))

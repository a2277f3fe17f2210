"""What the map says in words: each node's label, what an edge is in each mode, why two papers are
linked (``survey.neighbourhood.explain_edge``), why a mode has no edge (``no_edges``), what sizes and
colours mean, and the clusters' names. Pure functions; ``app.figures`` draws what they return.

Texts meant for plotly (hover texts, legend names) are HTML-escaped here, since plotly renders a few
tags in them; the line under the map is a Dash component's text, which Dash escapes itself.
"""

from __future__ import annotations

import html
import textwrap

import pandas as pd
from bibtexparser.middlewares.names import parse_single_name_into_parts

from app.filters import DEFAULT_SIZE
from survey import latex
from survey import neighbourhood as nb
from survey.corpus import Corpus
from survey.graph import EDGE_MODES, SIMILARITY_NEIGHBOURS, TAG_NEIGHBOURS, CorpusGraph
from survey.records import as_int, split_authors

SIZE_CHOICES = {nb.SIZE_CITED_BY: "size: citations", nb.SIZE_PAGERANK: "size: PageRank",
                nb.SIZE_IN_DEGREE: "size: cited in the graph", nb.SIZE_NONE: "size: all the same"}
EDGE_MEANING = {
    "citations": "An edge means that one paper cites the other (A cites B), from the entries' `references` "
                 "fields and OpenAlex's referenced works.",
    "coupling": "An edge joins two papers that share references, weighted by how many they share; each paper "
                f"keeps its {SIMILARITY_NEIGHBOURS} strongest.",
    "cocitation": "An edge joins two papers that are cited together, weighted by how many works cite both; each "
                  f"paper keeps its {SIMILARITY_NEIGHBOURS} strongest.",
    "tags": "An edge joins two papers that share tags, weighted by how rare the tags are; each paper keeps its "
            f"{TAG_NEIGHBOURS} most similar.",
}
SIZE_MEANING = {
    nb.SIZE_CITED_BY: "Size: citations (OpenAlex's cited-by count; where OpenAlex has none, the citations from "
                      "inside the graph).",
    nb.SIZE_PAGERANK: "Size: PageRank on the citations inside the graph.",
    nb.SIZE_IN_DEGREE: "Size: how many papers of the graph cite it.",
    nb.SIZE_NONE: "Every paper is drawn the same size.",
}
CLUSTER_MEANING = ("Colour: the graph's clusters (communities of its citation, coupling and co-citation edges, or "
                   "of its tag edges where it has none), each named by its most telling tags.")
CLUSTER_TAGS = 3  # tags in a cluster's name
HOVER_TEXT_MAX = 160  # characters of an edge's reason in its hover label; the line under the map has all
HOVER_LINE = 60  # characters per line of a hover label
WORKS_LISTED = 5  # shared references (or citing works) the line under the map names


# --- labels ------------------------------------------------------------------------------------------
def family_name(author_field: str) -> str:
    """The first author's family name as BibTeX reads the ``author`` field (bibtexparser's name
    parts): its von and last parts ("van Ginneken" of "van Ginneken, Bram"; a braced group is one word)."""
    names = split_authors(author_field or "")
    if not names:
        return ""
    parts = parse_single_name_into_parts(names[0], strict=False)
    return latex.to_text(" ".join(parts.von + parts.last)).strip()


def node_labels(corpus: Corpus, graph: CorpusGraph) -> pd.Series:
    """Node key -> its label on the map: first author's family name and year ("Yi 2019"); the key for
    a paper without authors; for a work outside the corpus, its first author as OpenAlex names it, or
    the start of its title."""
    table = corpus.table
    labels = {key: _label(family_name(fields.get("author", "")), year) or key
              for key, fields, year in zip(table["key"], table["fields"], table["year"])}
    outside = graph.nodes[graph.nodes["kind"] != "paper"]
    for key, title, year in zip(outside["key"], outside["title"], outside["year"]):
        authors = (graph.cache.works.get(key) or {}).get("authorships") or []
        name = ((authors[0] or {}).get("author") or {}).get("display_name") or "" if authors else ""
        short = str(title or "")
        short = short if len(short) <= 24 else short[:23] + "…"
        labels[key] = _label(name.split()[-1] if name.split() else short, year) or key
    return pd.Series([labels.get(k, k) for k in graph.nodes["key"]], index=graph.nodes["key"], dtype=object)


def _label(name: str, year) -> str:
    year = as_int(year)
    return f"{name} {year}" if name and year is not None else name


# --- edges -----------------------------------------------------------------------------------------------
def edge_hover(corpus: Corpus, graph: CorpusGraph, mode: str, a: str, b: str, labels) -> str:
    """The hover label of the edge between ``a`` and ``b``: the two papers, why they are linked, the
    weight (HTML-escaped); ``labels``: node key -> label."""
    why = nb.explain_edge(corpus, graph, mode, a, b)
    reason = why.summary if len(why.summary) <= HOVER_TEXT_MAX else why.summary[:HOVER_TEXT_MAX - 1] + "…"
    reason = "<br>".join(_esc(line) for line in textwrap.wrap(reason, HOVER_LINE))
    return (f"{_esc(labels.get(a, a))} – {_esc(labels.get(b, b))}<br>{reason}"
            f"<br>weight {why.weight:.3g}")


def edge_line(corpus: Corpus, graph: CorpusGraph, mode: str, a: str, b: str, labels) -> str:
    """The line under the map for a hovered edge: what ``explain_edge`` says, with the first
    ``WORKS_LISTED`` shared references (coupling) or works citing both (co-citation) named."""
    why = nb.explain_edge(corpus, graph, mode, a, b)
    works = why.shared_references if mode == "coupling" else why.citing_both if mode == "cocitation" else None
    listed = ""
    if works is not None and len(works):
        names = [_work(row) for row in works.head(WORKS_LISTED).itertuples(index=False)]
        more = f" and {len(works) - WORKS_LISTED} more" if len(works) > WORKS_LISTED else ""
        listed = ": " + "; ".join(names) + more
    drawn = "" if why.drawn else " (not drawn: neither keeps it among its strongest)"
    return (f"{labels.get(a, a)} [{a}] – {labels.get(b, b)} [{b}]: {why.summary}{listed}; "
            f"weight {why.weight:.3g}{drawn}")


def _work(row) -> str:
    year = as_int(row.year)
    return f"{row.title or row.id}" + (f" ({year})" if year is not None else "")


def empty_message(corpus: Corpus, graph: CorpusGraph, mode: str) -> str:
    """Why ``mode`` has no edge and what to do (``survey.neighbourhood.no_edges``); "" when it has edges."""
    found = nb.no_edges(corpus, graph, mode)
    return found.message if found else ""


# --- clusters --------------------------------------------------------------------------------------------
def cluster_names(corpus: Corpus, graph: CorpusGraph, largest: int) -> dict[int, str]:
    """Community number -> legend name ("Cluster 1: method:GAN, modality:CT", HTML-escaped) of the
    ``largest`` largest clusters, named by their most telling tags (``survey.neighbourhood.clusters``)."""
    names = {}
    for cluster in nb.clusters(corpus, graph, top=CLUSTER_TAGS, largest=largest):
        tags = ", ".join(cluster.tags["tag"])
        names[cluster.number] = _esc(f"Cluster {cluster.number + 1}" + (f": {tags}" if tags else ""))
    return names


# --- the line under the map ---------------------------------------------------------------------------------
def legend(mode: str, size: str, colour: str, edges: int, drawn: int, hover: int, empty: str) -> str:
    """What the map shows, in a few sentences: what an edge is in ``mode`` (or why there is none),
    how many are drawn (``edges`` in all, ``drawn`` drawn, ``hover`` of them with a hover label),
    what the size and (for clusters) the colour mean."""
    if mode not in EDGE_MODES:
        raise ValueError(f"unknown edge mode '{mode}'")
    parts = [EDGE_MEANING[mode]]
    if empty:
        parts.append(f"This map has none. {empty}")
    else:
        if drawn < edges:
            parts.append(f"The strongest {drawn:,} of its {edges:,} edges are drawn.")
        hovered = "" if hover >= drawn else f" (of the strongest {hover:,})"
        parts.append(f"Thicker lines weigh more; point at the middle of a line{hovered} to see why the two are "
                     "linked.")
    parts.append(SIZE_MEANING.get(size, SIZE_MEANING[DEFAULT_SIZE]))
    if colour == "cluster":
        parts.append(CLUSTER_MEANING)
    return " ".join(parts)


def _esc(text: str) -> str:
    """``text`` safe in plotly's hover labels and legend (which render a few HTML tags)."""
    return html.escape(str(text), quote=False)

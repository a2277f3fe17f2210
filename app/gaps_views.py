"""Pure builders of the gaps and clusters page (``app.pages.gaps``): the review's own questions
answered from the corpus and its graph.

- Which combinations of two tag categories has no paper studied? A heat map of papers per pair of
  values (``survey.neighbourhood.tag_gaps``), its empty cells listed beside it; a cell links to the
  explorer filtered to its two tags.
- Which papers belong together? The graph's communities (``survey.neighbourhood.clusters``) with
  their most telling tags and their papers, each linked to the explorer.
- Which works outside the corpus does it keep citing? ``survey.neighbourhood.outside_works``,
  ranked by the corpus papers citing them or by coupling, with why and a DOI link.

Each function takes a snapshot of the explorer (``app.state.Snapshot``: the corpus and its graph) or
what ``survey.neighbourhood`` computes from one, and returns a figure (a dict), a string or Dash
components; none reads a file or the server's state.
"""

from __future__ import annotations

import html as html_text
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlencode

import pandas as pd
from dash import dcc, html

from app.filters import FilterState
from survey import neighbourhood as nb
from survey.graph import CorpusGraph
from survey.neighbourhood import Cluster, TagGaps

if TYPE_CHECKING:
    from app.state import Snapshot

PAGE = "/gaps"
SURVEY_TAG = "type:survey"
PRESETS = (nb.GAP_AXES, ("method", "modality"))  # the review's questions; the first is the default
GAP_COLOUR = "#f6c5c0"  # an empty cell
SCALE_LOW, SCALE_HIGH = "#deebf7", "#08519c"  # one paper .. the most papers in a cell
RANKINGS = {"cited": "by the corpus papers citing them", "coupling": "by coupling strength"}
OUTSIDE_LIMIT = 50  # rows of the outside works shown; `survey suggest --limit N` lists more
TEXT_CELLS = 2500  # a heat map of more cells shows no count in each (hovering still does)
CLUSTER_TAGS = 5
CLUSTER_LIMIT = 30  # communities listed, the largest; a large graph has a thousand, most of a few nodes
ALONE_LIMIT = 50  # papers listed that are a cluster of their own


# --- the page's address, with the explorer's filter ---------------------------------------------------------
def filter_only(state: FilterState) -> FilterState:
    """The explorer's filter of ``state`` (text, tags, years), without its selection or map settings."""
    return FilterState(text=state.text, selectors=state.selectors, year_min=state.year_min, year_max=state.year_max)


def is_filtered(state: FilterState) -> bool:
    return filter_only(state) != FilterState()


def page_url(rows: str, columns: str, include_surveys: bool = False, state: FilterState | None = None) -> str:
    """This page crossing ``rows`` and ``columns``, keeping the explorer's filter of ``state``."""
    params = [("rows", rows), ("columns", columns)] + ([("surveys", "include")] if include_surveys else [])
    kept = filter_only(state).to_url().lstrip("?") if state else ""
    return f"{PAGE}?{urlencode(params)}" + (f"&{kept}" if kept else "")


def cell_url(rows: str, columns: str, row_value: str, column_value: str, include_surveys: bool = False) -> str:
    """The explorer showing the papers of one cell: both tags required, surveys excluded as in the count."""
    state = FilterState.with_tags(require=(f"{rows}:{row_value}", f"{columns}:{column_value}"),
                                  exclude=() if include_surveys else (SURVEY_TAG,))
    return "/" + state.to_url()


def paper_url(key: str) -> str:
    return "/" + FilterState(paper=key).to_url()


def tag_url(tag: str) -> str:
    return "/" + FilterState.with_tags(require=(tag,)).to_url()


# --- the page's three parts, from one snapshot ---------------------------------------------------------------
def gap_parts(snap: "Snapshot", rows: str | None, columns: str | None, include_surveys: bool) -> tuple[dict, list, str]:
    """The heat map, the list of gaps and what is counted, for one pair of categories."""
    if rows is None or columns is None:
        message = ("The corpus needs two tag categories to cross: declare them in tags.toml beside the .bib "
                   "file, or tag the entries, e.g. keywords = {task:synthesis, modality:CT}.")
        return empty_figure("no two tag categories"), [html.P(message, id="gp-gap-count")], message
    try:
        gaps = nb.tag_gaps(snap.corpus, rows, columns, exclude=() if include_surveys else (SURVEY_TAG,))
    except ValueError as err:
        return empty_figure(str(err)), [html.P(str(err), className="error", id="gp-gap-count")], str(err)
    return heatmap_figure(gaps), gap_list(gaps), counting_note(gaps, include_surveys)


def cluster_parts(snap: "Snapshot") -> list:
    """The graph's ``CLUSTER_LIMIT`` largest communities with their telling tags and papers."""
    found = nb.clusters(snap.corpus, snap.graph, top=CLUSTER_TAGS, largest=CLUSTER_LIMIT)
    nodes = snap.graph.nodes
    beyond = nodes[nodes["community"] >= CLUSTER_LIMIT]
    rest = (int(beyond["community"].nunique()), int((beyond["kind"] == "paper").sum()))
    return cluster_sections(found, snap.table, community_source(snap.graph), rest)


def outside_parts(snap: "Snapshot", state: FilterState, by: str) -> list:
    """The works outside the corpus, ranked ``by``; only the papers the explorer's filter of ``state``
    keeps count when it filters anything."""
    among = list(state.query(snap.similar_to).apply(snap.table)["key"]) if is_filtered(state) else None
    works = nb.outside_works(snap.graph, among)
    status = outside_status(snap.graph, works, among)
    if status:
        return [html.P(status, className="muted", id="gp-outside-none")]
    what = (f"Works outside the corpus that two or more of its papers cite, or that share references with "
            f"them ({len(works)}), ranked {RANKINGS[by]}.")
    return [html.P(what, className="muted"), *outside_table(rank_outside(works, by))]


# --- the gaps -----------------------------------------------------------------------------------------------
def heatmap_figure(gaps: TagGaps) -> dict:
    """Papers per pair of values, rows x columns; an empty cell (a gap) in its own colour."""
    counts = gaps.counts
    rows, columns = [str(v) for v in counts.index], [str(v) for v in counts.columns]
    if not rows or not columns:
        return empty_figure(f"no value of {gaps.rows if not rows else gaps.columns} is declared or used")
    z = counts.to_numpy(dtype=int).tolist()
    top = max(1, max(max(line) for line in z))
    edge = 0.5 / top  # below half a paper: the gaps' colour
    hover = [[f"{_escape(gaps.rows)}:{_escape(r)} × {_escape(gaps.columns)}:{_escape(c)}<br>"
              + (f"{n} paper(s): click to open them in the explorer" if n else "no paper: a gap")
              for c, n in zip(columns, line)] for r, line in zip(rows, z)]
    trace = {"type": "heatmap", "z": z, "x": columns, "y": rows, "zmin": 0, "zmax": top,
             "colorscale": [[0, GAP_COLOUR], [edge, GAP_COLOUR], [edge, SCALE_LOW], [1, SCALE_HIGH]],
             "customdata": hover, "hovertemplate": "%{customdata}<extra></extra>",
             "texttemplate": "%{z}" if len(rows) * len(columns) <= TEXT_CELLS else "",
             "xgap": 2, "ygap": 2,
             "colorbar": {"title": {"text": "papers"}, "thickness": 12, "dtick": max(1, top // 5)}}
    layout = {"template": "plotly_white", "margin": {"l": 10, "r": 10, "t": 10, "b": 10},
              "height": 160 + 28 * len(rows),
              "xaxis": {"type": "category", "side": "top", "tickangle": -35, "automargin": True,
                        "title": {"text": gaps.columns}},
              "yaxis": {"type": "category", "autorange": "reversed", "automargin": True,
                        "title": {"text": gaps.rows}}}
    return {"data": [trace], "layout": layout}


def empty_figure(message: str) -> dict:
    return {"data": [], "layout": {"template": "plotly_white", "height": 200, "xaxis": {"visible": False},
                                   "yaxis": {"visible": False},
                                   "annotations": [{"text": _escape(message), "showarrow": False,
                                                    "xref": "paper", "yref": "paper", "x": 0.5, "y": 0.5}]}}


@dataclass(frozen=True)
class GapSummary:
    pairs: list[tuple[str, str]]  # empty cells whose two values each have papers in other cells
    unused_rows: list[str]  # values of the rows' category that no counted paper has with any column value
    unused_columns: list[str]

    @property
    def cells(self) -> int:
        return len(self.pairs)


def summarise(gaps: TagGaps) -> GapSummary:
    """The gaps that say most (two values studied, never together) apart from values nobody used."""
    counts = gaps.counts
    row_used, column_used = counts.sum(axis=1) > 0, counts.sum(axis=0) > 0
    return GapSummary(pairs=[(r, c) for r, c in gaps.gaps if row_used[r] and column_used[c]],
                      unused_rows=[str(r) for r in counts.index if not row_used[r]],
                      unused_columns=[str(c) for c in counts.columns if not column_used[c]])


def gap_line(row_value: str, column_value: str) -> str:
    return f"no paper on {row_value} × {column_value}"


def gap_list(gaps: TagGaps) -> list:
    """The empty cells as sentences: first the pairs of values studied apart but never together,
    then the values no counted paper has at all."""
    summary = summarise(gaps)
    cells = gaps.counts.size
    parts = [html.P(f"{len(gaps.gaps)} of {cells} combinations have no paper.", id="gp-gap-count")]
    if summary.pairs:
        parts += [html.H4(f"Studied apart, never together ({len(summary.pairs)})"),
                  html.Ul([html.Li(gap_line(r, c)) for r, c in summary.pairs], id="gp-gap-pairs")]
    elif cells:
        parts.append(html.P("Every value studied meets every other at least once.", className="muted"))
    for category, unused in ((gaps.rows, summary.unused_rows), (gaps.columns, summary.unused_columns)):
        if unused:
            parts.append(html.P([html.B(f"No paper at all on {category}: "), ", ".join(unused)],
                                className="gp-unused"))
    return parts


def counting_note(gaps: TagGaps, include_surveys: bool) -> str:
    """What the counts count: papers, surveys or not, and those in no cell."""
    counted = (f"{gaps.papers} paper(s) counted, surveys included." if include_surveys else
               f"{gaps.papers} paper(s) counted; surveys ({SURVEY_TAG}) are not, since a survey's tags list "
               "everything it covers rather than a combination anyone studied.")
    untagged = (f" {gaps.untagged} of them lack a {gaps.rows} or a {gaps.columns} tag and are in no cell."
                if gaps.untagged else "")
    return counted + untagged + " Click a cell to open its papers in the explorer."


# --- the clusters -------------------------------------------------------------------------------------------
def community_source(graph: CorpusGraph) -> str:
    """What the communities are found on, as ``survey.graph`` finds them."""
    if any(len(graph.edges(m)) for m in ("citations", "coupling", "cocitation")):
        return "the citation, coupling and co-citation links"
    return "the shared tags (no citation is known; `survey enrich` fetches them)"


def cluster_sections(found: list[Cluster], table: pd.DataFrame, source: str, rest: tuple[int, int] = (0, 0)) -> list:
    """Each community with two papers or more: its size, most telling tags and papers; then the
    papers that are a cluster of their own; then how many smaller communities (and papers in them)
    ``rest`` counts that are not listed."""
    if not found or table.empty:
        return [html.P("No cluster: the corpus holds no paper.", className="muted", id="gp-no-clusters")]
    entries = {k: (t, _year(y)) for k, t, y in zip(table["key"], table["title"], table["year"])}
    parts = [html.P(f"Communities of the map's graph (Louvain on {source}), largest first.", className="muted")]
    groups = [c for c in found if len(c.papers) >= 2]
    parts += [_cluster(c, entries) for c in groups]
    alone = [k for c in found if len(c.papers) == 1 for k in c.papers]
    if alone:
        more = len(alone) - ALONE_LIMIT
        parts.append(html.Div([html.P(f"{len(alone)} paper(s) in a cluster of their own:"),
                               html.Ul([html.Li(_paper_link(k, entries)) for k in alone[:ALONE_LIMIT]]),
                               html.P(f"and {more} more", className="muted") if more > 0 else None],
                              className="panel gp-cluster", id="gp-cluster-alone"))
    clusters_left, papers_left = rest
    if clusters_left:
        parts.append(html.P(f"{clusters_left} smaller cluster(s), holding {papers_left} paper(s), are not listed.",
                            className="muted", id="gp-clusters-rest"))
    if not groups and not alone and not clusters_left:
        parts.append(html.P("No cluster holds a paper of the corpus.", className="muted"))
    return parts


def _cluster(c: Cluster, entries: dict) -> html.Section:
    outside = c.size - len(c.papers)
    head = f"Cluster {c.number + 1}: {len(c.papers)} papers" + (
        f" and {outside} work(s) outside the corpus" if outside else "")
    telling = bool(len(c.tags)) and bool((c.tags["lift"] > 1 + 1e-9).any())
    tags = [html.Li([dcc.Link(t.tag, href=tag_url(t.tag), className="gp-tag"),
                     f" {t.count} of {len(c.papers)} papers ({t.share:.0%}; corpus {t.corpus_share:.0%}"
                     + (f", lift {t.lift:.1f})" if telling else ")")]) for t in c.tags.itertuples(index=False)]
    label = ("Most telling tags (more common here than in the corpus)" if telling
             else "Most common tags (none is more common here than in the corpus)")
    papers = html.Ol([html.Li(_paper_link(k, entries)) for k in c.papers], className="gp-papers")
    return html.Section([
        html.H4(head),
        html.Div([html.Span(label + ":", className="muted"), html.Ul(tags, className="gp-tags")]
                 if tags else html.P("Its papers have no tags.", className="muted")),
        papers if len(c.papers) <= 12 else html.Details([html.Summary(f"its {len(c.papers)} papers"), papers]),
    ], className="panel gp-cluster", id=f"gp-cluster-{c.number}")


def _paper_link(key: str, entries: dict) -> list:
    title, year = entries.get(key, ("", None))
    return [dcc.Link(title or key, href=paper_url(key), className="gp-paper"),
            f" ({year})" if year else "", html.Span(f" [{key}]", className="muted small")]


# --- the works outside the corpus ---------------------------------------------------------------------------
def rank_outside(works: pd.DataFrame, by: str) -> pd.DataFrame:
    """``works`` (``outside_works``) ranked ``by`` "cited" (its own order: the corpus papers citing a
    work, then a tenth of its coupling, as `survey suggest` ranks) or "coupling" (summed shared
    references, then citing papers)."""
    if by not in RANKINGS:
        raise ValueError(f"unknown ranking '{by}'; choose one of {', '.join(RANKINGS)}")
    if by == "cited" or works.empty:
        return works.reset_index(drop=True)
    return works.sort_values(["coupling", "cited_by_n", "key"], ascending=[False, False, True]).reset_index(drop=True)


def outside_status(graph: CorpusGraph, works: pd.DataFrame, among: list[str] | None) -> str | None:
    """Why no outside work is listed, and what to do; None when some are."""
    if not works.empty:
        return None
    if graph.nodes.empty:
        return "The corpus holds no paper: add entries to the .bib files (`survey add`)."
    candidates = bool((graph.nodes["kind"] == "candidate").any())
    if not graph.cache.lookups and not candidates:
        return ("No work outside the corpus is known yet: run `survey enrich` to fetch the papers' references "
                "from OpenAlex (cached under bib/openalex/, so the page works offline afterwards). Works that two "
                "or more corpus papers cite then appear here; `survey suggest` lists the same.")
    if among is not None and candidates:
        return (f"None of the {len(among)} paper(s) the filter keeps cites a work outside the corpus that two "
                "corpus papers cite, nor shares references with one.")
    return ("`survey enrich` ran, but no work outside the corpus is cited by two or more of its papers: add the "
            "papers' DOIs and enrich again, or add `references = {KeyA KeyB}` to the entries.")


def outside_table(works: pd.DataFrame, limit: int = OUTSIDE_LIMIT) -> list:
    """The ranked works: title with its DOI (or OpenAlex) link, year, citing corpus papers, coupling,
    and why: which corpus papers cite it and which share references with it."""
    shown = works.head(limit)
    rows = [html.Tr([html.Td(str(i + 1)), html.Td(_work_cell(w)), html.Td(str(_year(w.year) or "")),
                     html.Td(str(w.cited_by_n)), html.Td(str(w.coupling)), html.Td(_why(w))],
                    className="gp-work", **{"data-key": w.key})
            for i, w in enumerate(shown.itertuples(index=False))]
    parts = [html.Table([html.Thead(html.Tr([html.Th(h) for h in
                                             ("#", "Work", "Year", "Cited by (corpus)", "Coupling", "Why")])),
                         html.Tbody(rows)], className="preview gp-works", id="gp-works")]
    if len(works) > limit:
        parts.append(html.P(f"{len(works) - limit} more: `survey suggest --limit {len(works)}` lists them all.",
                            className="muted"))
    return parts


def _work_cell(w) -> list:
    title = w.title or f"(title not fetched) {w.key}"
    href = f"https://doi.org/{w.doi}" if w.doi else f"https://openalex.org/{w.key}"
    parts = [html.A(title, href=href, target="_blank", rel="noopener noreferrer", className="gp-work-link")]
    if w.doi:
        parts.append(html.Div([f"doi:{w.doi} · add it: ", html.Code(f"survey add --doi {w.doi}")],
                              className="muted small"))
    else:
        parts.append(html.Div(f"{w.key} (no DOI known)", className="muted small"))
    return parts


def _why(w) -> list:
    parts: list = []
    if w.cited_by_corpus:
        parts.append(f"cited by {len(w.cited_by_corpus)}: ")
        parts += _joined([dcc.Link(k, href=paper_url(k)) for k in w.cited_by_corpus])
    if w.coupled_with:
        if parts:
            parts.append("; ")
        parts.append("shares references with ")
        parts += _joined([[dcc.Link(k, href=paper_url(k)), f" ({n})"] for k, n in list(w.coupled_with.items())[:5]])
        if len(w.coupled_with) > 5:
            parts.append(f" and {len(w.coupled_with) - 5} more")
    return parts


def _joined(items: list) -> list:
    out: list = []
    for i, item in enumerate(items):
        out += ([", "] if i else []) + (item if isinstance(item, list) else [item])
    return out


# --- small helpers ---------------------------------------------------------------------------------------------
def query_string(query: dict) -> str:
    """Dash pages hand the URL's query over as keyword arguments (lists for repeated ones)."""
    pairs = [(k, item) for k, value in query.items() for item in (value if isinstance(value, list) else [value])]
    return "?" + urlencode(pairs)


def _year(value) -> int | None:
    return None if value is None or pd.isna(value) else int(value)


def _escape(text: str) -> str:
    """Plotly reads a few HTML tags in hover and annotation text: a value is shown as it is written."""
    return html_text.escape(str(text), quote=False)

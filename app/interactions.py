"""What the explorer does, as plain functions: the callbacks only wire these to components.

Every interaction goes through ``next_state`` (which state does this click produce?) and every
view is drawn by ``render`` (what does this state look like?).
"""

from __future__ import annotations

import base64
import binascii

import numpy as np
import pandas as pd

from app import figures, views
from app.filters import SELECTION_COLOURS, FilterState, selector_label
from app.results import has_results
from app.state import Snapshot
from survey.bibfile import decode_bytes
from survey.edit import tags_in_order
from survey.neighbourhood import OPENALEX_ID
from survey.openalex.bibtex import work_to_bibtex
from survey.openalex.cache import short_id, work_title
from survey.query import first_matching


def render(snap: Snapshot, state: FilterState, full_graph: bool = True, drafts: dict[str, str] | None = None,
           with_rows: bool = True) -> dict:
    """Every view of the page for one filter state.

    The map's nodes and edges do not depend on the filter, so unless ``full_graph`` is asked for
    only what changes (lit points, the selection ring, the labels) is returned, as ``graph_changes``.
    The paper list's rows (all the filter keeps: at 10k papers the largest part of an answer) are
    left out (None) unless ``with_rows``: a page whose filter did not change has them already
    (``same_rows``). ``drafts``: paper key -> the user's unsaved tag edit, which the tag editor keeps showing.
    """
    table = snap.table
    mask = state.query(snap.similar_to).mask(table).to_numpy(dtype=bool)
    coloured = state.selecting()[:len(SELECTION_COLOURS)]  # the selections, each in its colour
    rows = list_rows(snap, state, mask) if with_rows else None
    groups = names = selection = None
    if state.colour == "selection":
        groups = first_matching(coloured, table)
        names = [f"{i + 1} · {selector_label(selector)}" for i, selector in enumerate(coloured)]
        selection = pd.Series(groups, index=table["key"].to_numpy())
    changes = figures.graph_highlight(snap.node_groups(state.edges, state.size, state.colour),
                                      snap.positions(state.edges), state.colour, table["key"].to_numpy()[mask],
                                      state.paper, snap.neighbours(state.edges, state.paper),
                                      figures.empty_notes(snap.empty_message(state.edges)), selection, names or [])
    graph = snap.graph_figure(state.edges, state.colour, state.size) if full_graph else None
    return {
        "years": figures.years_figure(table, mask, state.year_min, state.year_max, groups, names or []),
        "graph": figures.apply_highlight(graph, changes) if full_graph else None,
        "graph_changes": changes,
        "map_legend": snap.map_legend(state),
        "clouds": [*views.tag_clouds(snap.tag_counts, snap.tags.counts(mask), state),
                   *views.people_clouds(snap.authors, snap.venues, mask, state)],
        "chips": views.chips(state),
        "count": f"{mask.sum()} of {len(table)} papers",
        "rows": rows, "columns": views.list_columns(state.columns, state.list_sort),
        "row_classes": views.list_row_classes(state.paper),
        "details": detail_panel(snap, state.paper, drafts),
    }


def list_rows(snap: Snapshot, state: FilterState, mask: np.ndarray | None = None) -> list[dict]:
    """The paper list's rows for ``state``: the papers its filter keeps (``mask``, computed when not
    given), its search marks and the numbers of the coloured selections."""
    if mask is None:
        mask = state.query(snap.similar_to).mask(snap.table).to_numpy(dtype=bool)
    return views.list_rows(snap.table, state.text, state.selecting()[:len(SELECTION_COLOURS)], mask,
                           list_fields(state))


def list_fields(state: FilterState) -> frozenset[str]:
    """The list's columns whose values its rows carry: those shown, and those the list is filtered by."""
    return frozenset(state.columns) | frozenset(state.list_filter_model)


def same_rows(a: FilterState, b: FilterState) -> bool:
    """Whether the paper list drawn for ``b`` serves ``a``: its rows hang on the filter and its selections,
    not on the selected paper or the map's settings, and they hold the values of every column ``a`` shows."""
    return ((a.text, a.selectors, a.year_min, a.year_max, a.similar) == (b.text, b.selectors, b.year_min, b.year_max,
                                                                        b.similar)
            and list_fields(a) <= list_fields(b))


def detail_panel(snap: Snapshot, paper: str | None, drafts: dict[str, str] | None = None) -> list:
    """The panel of the selected corpus paper or work outside the corpus (an OpenAlex id), with its
    neighbourhood, computed for it alone; a hint when nothing is selected."""
    if paper in snap.by_key.index:
        row = snap.by_key.loc[paper]
        near = snap.neighbourhood(paper)
        return views.details(row, has_results(row["reproduction"]), near,
                             _titles(snap, near.references_in + near.cited_by + near.cited_by_outside),
                             snap.corpus.vocabulary, unsaved_draft(row, (drafts or {}).get(paper)))
    if paper and OPENALEX_ID.match(short_id(paper)):
        work = snap.outside_work(short_id(paper))
        return views.outside_details(work, _titles(snap, [*work.cited_by, *work.references_in, work.corpus_key]))
    if paper:
        return views.not_found(paper)
    return views.details(None, False)


def _titles(snap: Snapshot, keys) -> dict[str, str]:
    """Key -> "title (year)" of the corpus papers and cached works outside it among ``keys``."""
    out = {}
    for k in dict.fromkeys(keys):
        if k in snap.by_key.index:
            out[k] = views.title_year(snap.by_key.at[k, "title"], snap.by_key.at[k, "year"])
        elif k and (record := snap.graph.cache.works.get(k)):
            out[k] = views.title_year(work_title(record) or k, record.get("publication_year"))
    return out


def unsaved_draft(row, draft: str | None) -> str | None:
    """``draft`` when it holds other tags than the paper has (compared as the saving compares them)."""
    if draft is None or set(tags_in_order(draft)) == set(tags_in_order(views.saved_tags(row))):
        return None
    return draft


def drafts_after_typing(drafts: dict | None, paper: str | None, row, text: str) -> dict:
    """The unsaved tag edits after the user typed ``text`` in ``paper``'s editor (its draft dropped
    when it is back to the saved tags)."""
    kept = {k: v for k, v in (drafts or {}).items() if k != paper}
    if paper and row is not None and unsaved_draft(row, text) is not None:
        kept[paper] = text
    return kept


def work_bibtex(snap: Snapshot, openalex_id: str) -> str | None:
    """The BibTeX entry of a work outside the corpus, made from its cached OpenAlex record as `survey
    add --doi` makes it (its key one the corpus has not taken); None when the record is not cached.
    The explorer never asks OpenAlex itself."""
    record = snap.graph.cache.works.get(short_id(openalex_id))
    return work_to_bibtex(record, set(snap.table["key"])) if record else None


def next_state(state: FilterState, trigger, value, years_selected=None, years_clicked=None) -> FilterState:
    """The state after one interaction; ``trigger`` is the id of what the user touched. The filter's
    clicks (clouds, chips, histogram, "Clear filters") are answered in the browser by
    app/assets/explorer-filter.js, which tests/test_browser_filter.py holds to what this answers."""
    if isinstance(trigger, dict) and trigger.get("type") == "ex-tag":
        return state.cycle_tag(trigger["tag"]) if value else state
    if isinstance(trigger, dict) and trigger.get("type") == "ex-selector":  # an author or a venue in its cloud
        return state.cycle_selector(trigger["kind"], trigger["value"]) if value else state
    if isinstance(trigger, dict) and trigger.get("type") == "ex-op":  # a chip's AND / OR / NOT
        return state.next_op(trigger["chip"]) if value else state
    if isinstance(trigger, dict) and trigger.get("type") == "ex-chip":
        return state.without_chip(trigger["chip"]) if value else state
    if isinstance(trigger, dict) and trigger.get("type") == "ex-open":  # a link of the detail panel
        return state.replace(paper=trigger["key"]) if value else state
    if isinstance(trigger, dict) and trigger.get("type") == "ex-select-similar":
        return state.replace(similar=trigger["key"], paper=trigger["key"]) if value else state
    if trigger == "ex-search":
        return state.replace(text=(value or "").strip())
    if trigger == "ex-years":
        picked = figures.year_range_from_selection(years_selected, years_clicked)
        return state.with_years(*picked) if picked else state
    if trigger == "ex-graph":
        points = (value or {}).get("points") or []
        key = points[0].get("customdata") if points else None
        return state.replace(paper=key) if isinstance(key, str) and key else state  # not an edge's marker
    if trigger == "ex-list":  # a cell clicked (or Enter on it): the grid's row id is the paper's key
        return state.replace(paper=value["rowId"]) if value and value.get("rowId") else state
    if trigger == "ex-columns":
        return state.replace(columns=tuple(value or ()))
    if trigger == "ex-colour":
        return state.replace(colour=value)
    if trigger == "ex-edges":
        return state.replace(edges=value)
    if trigger == "ex-size":
        return state.replace(size=value)
    if trigger == "ex-clear":
        return FilterState(colour=state.colour, edges=state.edges, size=state.size, columns=state.columns,
                           list_sort=state.list_sort)  # the view stays; the list's column filters go too
    return state



def decode_upload(contents: str | None, filename: str | None) -> tuple[str, str] | None:
    """The text of a dcc.Upload data URL, decoded as the knowledge base decodes files (UTF-8, else
    the encoding it declares, else cp1252), and a note when it was not UTF-8; None if unreadable."""
    try:
        data = base64.b64decode(contents.split(",", 1)[1], validate=False)
    except (AttributeError, IndexError, binascii.Error):
        return None
    decoded = decode_bytes(data, filename or "upload")
    note = f"{filename}: {decoded.issues[0].message}; it will be added as UTF-8 text" if decoded.issues else ""
    return decoded.text.lstrip("\ufeff"), note

"""What the explorer does, as plain functions: the callbacks only wire these to components.

Every interaction goes through ``next_state`` (which state does this click produce?) and every
view is drawn by ``render`` (what does this state look like?).
"""

from __future__ import annotations

import base64
import binascii

from app import figures, views
from app.filters import FilterState
from app.results import has_results
from app.state import Snapshot
from survey.bibfile import decode_bytes
from survey.export import tag_counts


def render(snap: Snapshot, state: FilterState, sort_by=None, page: int = 0, full_graph: bool = True) -> dict:
    """Every view of the page for one filter state.

    The map's nodes and edges do not depend on the filter, so unless ``full_graph`` is asked for
    only what changes (lit points, the selection ring) is returned, as ``graph_changes``.
    """
    table = snap.table
    mask = state.query().mask(table).to_numpy(dtype=bool)
    filtered = table[mask]
    rows, pages = views.list_page(filtered, sort_by, page)
    selected = state.paper if state.paper in snap.by_key.index else None
    changes = figures.graph_highlight(snap.nodes, snap.positions(state.edges), state.colour,
                                      filtered["key"].to_numpy(), selected)
    return {
        "years": figures.years_figure(table, mask, state.year_min, state.year_max),
        "graph": figures.apply_highlight(snap.graph_figure(state.edges, state.colour), changes) if full_graph else None,
        "graph_changes": changes,
        "clouds": views.tag_clouds(snap.tag_counts, tag_counts(filtered, snap.categories), state),
        "chips": views.chips(state),
        "count": f"{mask.sum()} of {len(table)} papers",
        "rows": rows, "pages": pages,
        "details": views.details(snap.by_key.loc[selected] if selected else None,
                                 bool(selected) and has_results(snap.by_key.loc[selected]["reproduction"])),
    }


def next_state(state: FilterState, trigger, value, years_selected=None, years_clicked=None) -> FilterState:
    """The state after one interaction; ``trigger`` is the id of what the user touched."""
    if isinstance(trigger, dict) and trigger.get("type") == "ex-tag":
        return state.cycle_tag(trigger["tag"]) if value else state
    if isinstance(trigger, dict) and trigger.get("type") == "ex-chip":
        return state.without_chip(trigger["chip"]) if value else state
    if trigger == "ex-search":
        return state.replace(text=(value or "").strip())
    if trigger == "ex-years":
        picked = figures.year_range_from_selection(years_selected, years_clicked)
        return state.with_years(*picked) if picked else state
    if trigger == "ex-graph":
        points = (value or {}).get("points") or []
        key = points[0].get("customdata") if points else None
        return state.replace(paper=key) if key else state
    if trigger == "ex-list":
        return state.replace(paper=value["row_id"]) if value and value.get("row_id") else state
    if trigger == "ex-colour":
        return state.replace(colour=value)
    if trigger == "ex-edges":
        return state.replace(edges=value)
    if trigger == "ex-clear":
        return FilterState(colour=state.colour, edges=state.edges)
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

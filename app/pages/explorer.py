"""The explorer page: its layout and the callbacks that wire it to ``app.interactions``.

The page's first render is done by ``layout`` from the URL, so no callback has to run before
the page is usable; after that the filter's clicks become a new URL in the browser, which draws the
count, the histogram and the map for it at once (app/assets/explorer-filter.js, on the index of
``filter_index``), and ``update`` turns the URL and every other interaction into the views.
"""

from __future__ import annotations

from urllib.parse import urlencode

import dash
import dash_ag_grid as dag
from dash import ALL, Input, Output, Patch, State, callback, ctx, dcc, html, no_update

from app import browser_filter, figures, map_text, security, views
from app.filters import LIST_COLUMNS, FilterState, list_filter_json
from app.interactions import (decode_upload, drafts_after_typing, list_rows, next_state, render, same_rows,
                              work_bibtex)
from app.runtime import explorer_state
from survey.export import to_bibtex, to_csv
from survey.graph import EDGE_MODES
from survey.openalex.cache import short_id
from survey.tags import parse_keywords

dash.register_page(__name__, path="/", title="Survey explorer", name="Explorer")


def layout(**query) -> html.Div:
    snap = explorer_state().snapshot()
    state = FilterState.from_url(_query_string(query))
    v = render(snap, state)
    return html.Div([
        dcc.Location(id="ex-url", refresh=False),
        dcc.Store(id="ex-version", data=snap.version),
        dcc.Store(id="ex-rendered", data=state.to_url()),  # the state the views show now
        dcc.Store(id="ex-image-done"),
        dcc.Store(id="ex-tags-drafts", data={}, storage_type="session"),  # paper -> unsaved tag edit
        dcc.Store(id="ex-filter-index"),  # the corpus as the browser filters it, once per snapshot
        dcc.Store(id="ex-match", data=browser_filter.match(snap.table, state, snap.similar_to)),
        dcc.Store(id="ex-fast"),  # the URL whose count, histogram and map the browser drew
        dcc.Store(id="ex-filter-ready"),
        html.Div([
            dcc.Input(id="ex-search", type="search", value=state.text, debounce=SEARCH_PAUSE,
                      placeholder="Search titles, "
                      "authors, venues, tags and abstracts", className="search"),
            html.Span(v["count"], id="ex-count", className="count-label"),
            html.Button("Clear filters", id="ex-clear", n_clicks=0),
            html.Button("Export BibTeX", id="ex-export-bib", n_clicks=0),
            html.Button("Export CSV", id="ex-export-csv", n_clicks=0),
            dcc.Download(id="ex-download"),
        ], className="toolbar"),
        html.Div(v["chips"], id="ex-chips", className="chips"),
        html.Div([
            html.Aside(v["clouds"], id="ex-clouds", className="clouds"),
            html.Main([
                html.Div([
                    html.H4("Papers per year (click a bar or brush a range)"),
                    _figure_export_buttons("ex-years"),
                    dcc.Graph(id="ex-years", figure=v["years"], config={"displaylogo": False},
                              style={"height": "260px"}),
                ], className="panel"),
                html.Div([
                    html.H4("Map of the corpus"),
                    html.Div([
                        dcc.RadioItems(id="ex-colour", value=state.colour, inline=True,
                                       options=[{"label": "colour by category", "value": "category"},
                                                {"label": "by year", "value": "year"},
                                                {"label": "by cluster", "value": "cluster"},
                                                {"label": "by selection", "value": "selection"}]),
                        dcc.Dropdown(id="ex-edges", value=state.edges, clearable=False, searchable=False,
                                     options=[{"label": f"edges: {m}", "value": m} for m in EDGE_MODES],
                                     style={"width": "220px"}),
                        dcc.Dropdown(id="ex-size", value=state.size, clearable=False, searchable=False,
                                     options=[{"label": label, "value": m} for m, label in map_text.SIZE_CHOICES.items()],
                                     style={"width": "200px"}),
                        _figure_export_buttons("ex-graph"),
                    ], className="row"),
                    dcc.Graph(id="ex-graph", figure=v["graph"], config={"displaylogo": False, "scrollZoom": True},
                              style={"height": "460px"}),
                    html.Div(v["map_legend"], id="ex-map-legend", className="muted small"),
                    html.Div("Hover over a paper to see its title; click it for its details.", id="ex-hover",
                             className="muted small"),
                ], className="panel"),
                html.Div([
                    html.Div([
                        html.H4("Papers", id="ex-list-heading"),
                        dcc.Checklist(id="ex-columns", value=list(state.columns), inline=True, className="choices",
                                      options=[{"label": name, "value": c} for c, name in LIST_COLUMNS.items()]),
                    ], className="row"),
                    # every paper the filter keeps: the grid sorts (shift-click: by several columns), filters
                    # and scrolls them itself, drawing only the rows in view; a click or Enter on a row opens it
                    html.Div(dag.AgGrid(
                        id="ex-list", rowData=v["rows"], columnDefs=v["columns"], defaultColDef=views.LIST_DEFAULTS,
                        getRowId="params.data.key", rowClassRules=v["row_classes"],
                        dashGridOptions={"ensureDomOrder": True, "tooltipShowDelay": 500, "animateRows": False,
                                         "isExternalFilterPresent": {"function": "true"},
                                         "doesExternalFilterPass": {"function": "listKeeps(params)"}},
                        eventListeners={"cellKeyDown": ["openOnEnter(params, setGridProps)"],
                                        "sortChanged": ["listViewChanged(params)"],
                                        "filterChanged": ["listViewChanged(params)"]},
                        style={"height": LIST_HEIGHT}, **_list_filter(state)), className="paper-list",
                        **{"data-grid-label": "ex-list-heading"}),
                    dcc.Store(id="ex-list-shown"),  # the keys the list's column filters keep (None: all rows)
                    dcc.Store(id="ex-list-drawn", data={"version": snap.version, "state": state.to_url()}),
                    dcc.Store(id="ex-list-view"),  # the list's sort and filter model, set by paper-list.js
                ], className="panel"),
            ], className="centre"),
            html.Aside([
                html.Div(_details(v["details"]), id="ex-details", className="details"),
                # outside the panel, which is redrawn when the saved file reloads
                html.Div(id="ex-tags-status", role="status"),
                _add_papers(),
            ], className="side"),
        ], className="columns"),
        dcc.Store(id="ex-scrolled"),
    ], className="explorer")


def _list_filter(state: FilterState) -> dict:
    """The grid's filter model from the URL, when it has one (an empty one is left to the grid)."""
    return {"filterModel": state.list_filter_model} if state.list_filter else {}


def _query_string(query: dict) -> str:
    """Dash pages hand the URL's query over as keyword arguments (lists for repeated ones)."""
    pairs = [(k, item) for k, value in query.items() for item in (value if isinstance(value, list) else [value])]
    return "?" + urlencode(pairs)


def _figure_export_buttons(graph_id: str) -> html.Div:
    return html.Div([html.Button("PNG", id={"type": "ex-image", "graph": graph_id, "format": "png"}, n_clicks=0,
                                 className="small", title="Download this figure as PNG"),
                     html.Button("SVG", id={"type": "ex-image", "graph": graph_id, "format": "svg"}, n_clicks=0,
                                 className="small", title="Download this figure as SVG")], className="image-export")


# the paper list fills the centre column's view once scrolled to (below the header and its own heading), and
# scrolls its rows within that; never under 360 px
LIST_HEIGHT = "max(360px, calc(100vh - 230px))"
SEARCH_PAUSE = 0.3  # seconds without a keystroke before the search runs (Enter runs it at once)
TAG_EDITOR = frozenset({"ex-tags-input", "ex-tags-save", "ex-tags-revert", "ex-tags-options", "ex-tags-draft",
                        "ex-tags-check"})
PANEL_WRITES = TAG_EDITOR | {"ex-work-add-row", "ex-work-add"}  # and a work outside's "Add to the corpus"


def _details(parts: list) -> list:
    """The detail panel, without the tag editor (or "Add to the corpus") for a visitor who may not write."""
    if security.write_refusal() is None:
        return parts
    return [part for part in parts if not _holds(part, PANEL_WRITES)]


def _holds(component, ids: frozenset[str]) -> bool:
    """Whether ``component`` is, labels or contains one of the components ``ids``."""
    names = (getattr(component, "id", None), getattr(component, "htmlFor", None))
    if any(isinstance(name, str) and name in ids for name in names):  # a pattern id is a dict
        return True
    children = getattr(component, "children", None)
    return any(_holds(child, ids) for child in (children if isinstance(children, list) else [children])
               if child is not None and not isinstance(child, str))


def _add_papers() -> html.Div:
    refusal = security.write_refusal()
    if refusal:
        return html.Div([html.H4("Add papers"), html.P(refusal, id="ex-write-refused", className="muted")],
                        className="panel add")
    return html.Div([
        html.H4("Add papers"),
        dcc.Upload(id="ex-upload", children=html.Div(["Drop a .bib file here or ", html.A("choose one")]),
                   className="upload", multiple=False, accept=".bib,.txt"),
        dcc.Textarea(id="ex-paste", placeholder="…or paste BibTeX here", style={"width": "100%", "height": "120px"}),
        html.Div([html.Button("Preview", id="ex-preview", n_clicks=0),
                  html.Button("Add to the corpus", id="ex-add", n_clicks=0)], className="row"),
        html.Div(id="ex-add-result", role="status"),
        # possible duplicates of the last preview: ticked ones are added by "Add to the corpus"
        dcc.Checklist(id="ex-confirm", options=[], value=[], className="confirm"),
        dcc.Store(id="ex-upload-source"),
        dcc.Store(id="ex-upload-limit", data=security.access().max_upload),
    ], className="panel add")


@callback(
    Output("ex-url", "search"), Output("ex-search", "value"), Output("ex-count", "children"),
    Output("ex-chips", "children"), Output("ex-clouds", "children"), Output("ex-years", "figure"),
    Output("ex-graph", "figure"), Output("ex-list", "columnDefs"),
    Output("ex-list", "rowClassRules"), Output("ex-details", "children"), Output("ex-colour", "value"),
    Output("ex-edges", "value"), Output("ex-rendered", "data"), Output("ex-size", "value"),
    Output("ex-map-legend", "children"), Output("ex-columns", "value"), Output("ex-list", "filterModel"),
    Output("ex-match", "data"), Output("ex-fast", "data", allow_duplicate=True),
    Input("ex-url", "search"), Input("ex-version", "data"), Input("ex-search", "value"), Input("ex-graph", "clickData"),
    Input("ex-list", "cellClicked"), Input("ex-colour", "value"), Input("ex-edges", "value"), Input("ex-size", "value"),
    Input("ex-columns", "value"),
    State("ex-rendered", "data"), State("ex-tags-drafts", "data"), State("ex-fast", "data"),
    prevent_initial_call=True,
)
def update(search, version, text, graph_click, cell, colour, edges, size, columns, rendered, drafts, fast):
    """Every view for a new URL or an interaction that needs the server. The filter's clicks (clouds,
    chips, histogram, "Clear filters") are turned into a URL in the browser (``filter_clicked``), which
    has drawn the count, the histogram and the map for it when ``fast`` is that URL: those are left as
    they are, and ``fast`` is cleared."""
    trigger = ctx.triggered_id
    if trigger == "ex-url" and FilterState.from_url(search).to_url() == rendered:
        raise dash.exceptions.PreventUpdate  # the location reporting the URL the page was drawn from
    state = FilterState.from_url(search)
    inputs = {"ex-search": text, "ex-graph": graph_click, "ex-list": cell, "ex-colour": colour, "ex-edges": edges,
              "ex-size": size, "ex-columns": columns}
    new = next_state(state, trigger, inputs.get(trigger))
    # the whole map only when its nodes or edges change; otherwise a patch of what is lit
    # (a new URL: the map the page holds is that of the state it was drawn for)
    drawn = FilterState.from_url(rendered) if trigger == "ex-url" else state
    full = trigger == "ex-version" or (new.colour, new.edges, new.size) != (drawn.colour, drawn.edges, drawn.size)
    # the list's rows come in an answer of their own (``list_rows_of``), so that the count, the histogram
    # and the map, which are small, are not held up by them
    snap = explorer_state().snapshot()
    v = render(snap, new, full_graph=full, drafts=drafts, with_rows=False)
    changes = dict(v["graph_changes"])
    if new.paper == drawn.paper:  # the labels (and the note of a map without edges) are those drawn
        changes.pop("layout", None)
    graph = v["graph"] if full else _patch(changes)
    in_browser = trigger == "ex-url" and fast is not None and FilterState.from_url(fast).to_url() == new.to_url()
    count, years = (no_update, no_update) if in_browser else (v["count"], v["years"])
    graph = no_update if in_browser and not full else graph
    match = no_update
    if trigger == "ex-version" or (new.text, new.similar) != (drawn.text, drawn.similar):
        match = browser_filter.match(snap.table, new, snap.similar_to)
    # the box keeps what is being typed (a trailing space included); other changes set it
    typed = no_update if trigger == "ex-search" else new.text
    # new column definitions only for another choice of columns: the grid keeps the widths the user gave them
    # (and for a URL, or "Clear filters", that sorts or filters the list otherwise than the grid does now)
    column_defs = v["columns"] if (new.columns, new.list_sort) != (drawn.columns, drawn.list_sort) else no_update
    list_filter = new.list_filter_model if new.list_filter != drawn.list_filter else no_update
    return (new.to_url(), typed, count, v["chips"], v["clouds"], years, graph,
            column_defs, v["row_classes"], _details(v["details"]), new.colour,
            new.edges, new.to_url(), new.size, v["map_legend"], list(new.columns), list_filter, match,
            None)  # drawn: a later visit to the same URL (the browser's back button) is drawn afresh


@callback(Output("ex-filter-index", "data"), Input("ex-version", "data"))
def filter_index(version):
    """The index the browser filters on, after the page is drawn (it is not needed for the first view)
    and again for every new corpus version."""
    snap = explorer_state().snapshot()
    if snap.version != version:  # the corpus changed again meanwhile: its version comes next
        raise dash.exceptions.PreventUpdate
    return snap.filter_index


# New list rows, a search's answer or a new index: the list shows the page's state by the browser's answer
# (explorer-filter.js) where it has one, else by the rows' own (``views.list_rows``).
dash.clientside_callback(
    dash.ClientsideFunction(namespace="explorer", function_name="relisted"),
    Output("ex-filter-ready", "data"), Input("ex-list", "rowData"), Input("ex-match", "data"),
    Input("ex-filter-index", "data"), State("ex-url", "search"), State("ex-version", "data"),
    prevent_initial_call=True,
)


# A click in a cloud, on a chip, in the histogram or on "Clear filters": the new URL, and the count, the
# histogram, the map and the list for it, drawn in the browser (app/assets/explorer-filter.js) without
# waiting for the server, which draws the clouds, chips and panel for that URL (``update``).
dash.clientside_callback(
    dash.ClientsideFunction(namespace="explorer", function_name="clicked"),
    Output("ex-url", "search", allow_duplicate=True), Output("ex-count", "children", allow_duplicate=True),
    Output("ex-fast", "data"), Output("ex-list-drawn", "data", allow_duplicate=True),
    Input({"type": "ex-tag", "tag": ALL}, "n_clicks"), Input({"type": "ex-chip", "chip": ALL}, "n_clicks"),
    Input({"type": "ex-selector", "kind": ALL, "value": ALL}, "n_clicks"),
    Input({"type": "ex-op", "chip": ALL}, "n_clicks"),
    Input("ex-years", "selectedData"), Input("ex-years", "clickData"), Input("ex-clear", "n_clicks"),
    State("ex-url", "search"), State("ex-filter-index", "data"), State("ex-match", "data"), State("ex-version", "data"),
    prevent_initial_call=True,
)


@callback(Output("ex-list", "rowData"), Output("ex-list-drawn", "data"),
          Input("ex-rendered", "data"), Input("ex-version", "data"), State("ex-list-drawn", "data"),
          prevent_initial_call=True)
def list_rows_of(rendered, version, drawn):
    """The list's rows for the state the page now shows, only when they change: a paper picked, a column
    hidden or the list sorted keeps them (and the grid its scroll); a column shown whose values the rows
    lack (they carry only those of the columns shown, ``list_fields``) or another corpus version does not."""
    state = FilterState.from_url(rendered)
    if drawn and drawn.get("version") == version and same_rows(state, FilterState.from_url(drawn.get("state"))):
        raise dash.exceptions.PreventUpdate
    return list_rows(explorer_state().snapshot(), state), {"version": version, "state": rendered}


@callback(Output("ex-url", "search", allow_duplicate=True), Output("ex-rendered", "data", allow_duplicate=True),
          Input("ex-list-view", "data"), State("ex-url", "search"), prevent_initial_call=True)
def list_view(view, search):
    """The list sorted or filtered in the grid: the URL says so (the views are already drawn)."""
    state = FilterState.from_url(search)
    view = view if isinstance(view, dict) else {}
    new = state.replace(list_sort=tuple(view.get("sort") or ()), list_filter=list_filter_json(view.get("filter")))
    if new == state:
        raise dash.exceptions.PreventUpdate
    return new.to_url(), new.to_url()


def _patch(changes: dict) -> Patch:
    """``figures.graph_highlight``'s changes as a Patch of the map (a name ``a.b`` sets b within a)."""
    patch = Patch()
    for i, change in changes.items():
        for name, value in change.items():
            if i == "layout":
                patch["layout"][name] = value
                continue
            outer, _, inner = name.partition(".")
            if inner:
                patch["data"][i][outer][inner] = value
            else:
                patch["data"][i][outer] = value
    return patch


@callback(Output("ex-hover", "children"), Input("ex-graph", "hoverData"), State("ex-url", "search"),
          prevent_initial_call=True)
def hovered(hover, search):
    points = (hover or {}).get("points") or []
    if points and points[0].get("curveNumber") == figures.EDGE_HOVER_TRACE:  # the middle of an edge
        return explorer_state().snapshot().edge_line(FilterState.from_url(search).edges, points[0].get("pointNumber"))
    return views.hover_line(explorer_state().snapshot(), points[0].get("customdata") if points else None)


@callback(Output("ex-download", "data"), Input("ex-export-bib", "n_clicks"), Input("ex-export-csv", "n_clicks"),
          State("ex-url", "search"), State("ex-list-shown", "data"), prevent_initial_call=True)
def export(_bib, _csv, search, shown):
    """The papers the page shows: those of the filter, narrowed by the list's column filters (in the
    list's order) when they are on."""
    snap = explorer_state().snapshot()
    filtered = FilterState.from_url(search).query(snap.similar_to).apply(snap.table)
    if shown is not None:
        filtered = views.in_list_order(filtered, shown)
    if ctx.triggered_id == "ex-export-csv":
        return dcc.send_string(to_csv(filtered, root=explorer_state().root), "papers.csv")
    return dcc.send_string(to_bibtex(snap.corpus, filtered), "papers.bib")


@callback(Output("ex-add-result", "children"), Output("ex-version", "data"), Output("ex-paste", "value"),
          Output("ex-upload-source", "data"), Output("ex-confirm", "options"), Output("ex-confirm", "value"),
          Input("ex-preview", "n_clicks"), Input("ex-add", "n_clicks"), Input("ex-upload", "contents"),
          State("ex-upload", "filename"), State("ex-paste", "value"), State("ex-upload-source", "data"),
          State("ex-confirm", "value"), prevent_initial_call=True)
def add_papers(_preview, _add, upload, filename, pasted, uploaded, confirmed):
    """Preview (a dry run) or add what was uploaded or pasted; an upload is shown in the paste box
    and keeps its file name (and encoding note) for as long as the box holds its text unchanged.
    A preview writes nothing, so only adding needs write access."""
    if ctx.triggered_id == "ex-upload":
        security.require_upload_size(upload or "")
        decoded = decode_upload(upload, filename)
        if decoded is None:
            return ([html.P(f"{filename}: could not read the file", className="error")],
                    no_update, no_update, None, [], [])
        pasted, note = decoded
        uploaded = {"name": filename, "text": pasted, "note": note}
    if not (pasted or "").strip():
        return [html.P("Paste BibTeX or choose a .bib file first.", className="error")], *[no_update] * 5
    from_upload = bool(uploaded) and uploaded.get("text") == pasted
    source, note = (uploaded["name"], uploaded["note"]) if from_upload else ("pasted text", "")
    dry_run = ctx.triggered_id != "ex-add"
    if not dry_run:
        security.require_write_access()
    try:
        report = explorer_state().add(pasted, source, dry_run=dry_run, confirm=frozenset(confirmed or ()))
    except (OSError, ValueError) as err:
        return [html.P(str(err), className="error")], *[no_update] * 5
    version = explorer_state().snapshot().version if report.written else no_update
    possible = [o.key for o in report.outcomes if o.status == "possible-duplicate"]
    options = [{"label": f"add {k} anyway", "value": k} for k in possible]
    return (views.merge_preview(report, dry_run, note), version, pasted if dry_run else "",
            uploaded if dry_run else None, options, [k for k in confirmed or () if k in possible])


@callback(Output("ex-tags-status", "children"), Output("ex-version", "data", allow_duplicate=True),
          Output("ex-tags-drafts", "data", allow_duplicate=True),
          Input("ex-tags-save", "n_clicks"), Input("ex-tags-input", "n_submit"), State("ex-tags-input", "value"),
          State("ex-url", "search"), State("ex-tags-drafts", "data"), prevent_initial_call=True)
def save_tags(clicks, submits, keywords, search, drafts):
    """Save tags (the button or Enter): the knowledge base writes them; what tags.toml does not
    declare is said beside the editor and again here, and saved all the same."""
    paper = FilterState.from_url(search).paper
    if not (clicks or submits) or not paper:
        raise dash.exceptions.PreventUpdate
    security.require_write_access()
    try:
        explorer_state().set_tags(paper, keywords or "")
    except (OSError, ValueError, KeyError) as err:
        return html.Span(str(err), className="error"), no_update, no_update
    snap = explorer_state().snapshot()
    unknown = snap.corpus.vocabulary.unknown(parse_keywords(keywords or "")[0])
    note = f" {len(unknown)} of them not declared in tags.toml (see above)." if unknown else ""
    return (html.Span(f"Saved the tags of [{paper}].{note}", className="ok"), snap.version,
            {k: v for k, v in (drafts or {}).items() if k != paper})


@callback(Output("ex-tags-options", "children"), Output("ex-tags-check", "children"),
          Output("ex-tags-drafts", "data", allow_duplicate=True), Output("ex-tags-revert", "hidden"),
          Input("ex-tags-input", "value"), State("ex-url", "search"), State("ex-tags-drafts", "data"),
          prevent_initial_call=True)
def tags_typed(text, search, drafts):
    """As the user types: the declared categories and values that complete the tag at the end, the
    warnings of what is not declared, and the edit kept as a draft until it is saved or reverted."""
    snap = explorer_state().snapshot()
    paper = FilterState.from_url(search).paper
    row = snap.by_key.loc[paper] if paper in snap.by_key.index else None
    kept = drafts_after_typing(drafts, paper, row, text or "")
    vocabulary = snap.corpus.vocabulary
    return views.tag_options(text or "", vocabulary), views.tag_warnings(text or "", vocabulary), kept, paper not in kept


@callback(Output("ex-tags-input", "value", allow_duplicate=True), Output("ex-tags-draft", "children", allow_duplicate=True),
          Output("ex-tags-revert", "hidden", allow_duplicate=True), Input("ex-tags-drafts", "data"),
          State("ex-url", "search"), State("ex-tags-input", "value"), prevent_initial_call="initial_duplicate")
def restore_draft(drafts, search, shown):
    """A page opened afresh (a reload, a shared link) is drawn by the server, which cannot see the
    session's drafts: when the editor shows the saved tags of a paper that has a draft, the draft
    goes back in. (While the user types, the editor already shows the draft it keeps.)"""
    paper = FilterState.from_url(search).paper
    snap = explorer_state().snapshot()
    if not drafts or paper not in drafts or paper not in snap.by_key.index \
            or shown != views.saved_tags(snap.by_key.loc[paper]):
        raise dash.exceptions.PreventUpdate
    return drafts[paper], views.DRAFT_NOTE, False


@callback(Output("ex-tags-input", "value"), Output("ex-tags-drafts", "data", allow_duplicate=True),
          Output("ex-tags-draft", "children"), Input("ex-tags-revert", "n_clicks"), State("ex-url", "search"),
          State("ex-tags-drafts", "data"), prevent_initial_call=True)
def revert_tags(clicks, search, drafts):
    paper = FilterState.from_url(search).paper
    snap = explorer_state().snapshot()
    if not clicks or paper not in snap.by_key.index:
        raise dash.exceptions.PreventUpdate
    return views.saved_tags(snap.by_key.loc[paper]), {k: v for k, v in (drafts or {}).items() if k != paper}, ""


@callback(Output("ex-url", "search", allow_duplicate=True),
          Input({"type": "ex-open", "key": ALL, "where": ALL}, "n_clicks"),
          Input({"type": "ex-select-similar", "key": ALL}, "n_clicks"), State("ex-url", "search"),
          prevent_initial_call=True)
def panel_link(_opened, _similar, search):
    """A link of the detail panel (a paper or a work to open) or its "Select similar": the new URL,
    which ``update`` then draws, as it draws any URL."""
    value = ctx.triggered[0]["value"] if ctx.triggered else None
    if not value:  # the panel was redrawn, nothing was clicked
        raise dash.exceptions.PreventUpdate
    return next_state(FilterState.from_url(search), ctx.triggered_id, value).to_url()


@callback(Output("ex-paste", "value", allow_duplicate=True), Output("ex-upload-source", "data", allow_duplicate=True),
          Output("ex-preview", "n_clicks"), Input("ex-work-add", "n_clicks"), State("ex-url", "search"),
          State("ex-preview", "n_clicks"), prevent_initial_call=True)
def add_work(clicks, search, previews):
    """"Add to the corpus" in the panel of a work outside: its BibTeX, made from the cached OpenAlex
    record, goes into the paste box and is previewed there (``add_papers``, with the duplicate check),
    and is added when the user confirms: one path for every write."""
    work = FilterState.from_url(search).paper
    text = work_bibtex(explorer_state().snapshot(), work) if clicks and work else None
    if text is None:
        raise dash.exceptions.PreventUpdate
    return text, {"name": f"OpenAlex {short_id(work)}", "text": text, "note": ""}, (previews or 0) + 1


# The server refuses an upload over the limit with 413, which Dash shows nowhere: the page says why itself.
dash.clientside_callback(
    """function(contents, filename, limit) {
        const size = contents ? contents.split(',', 2)[1].length * 3 / 4 : 0;
        if (size <= limit) { return dash_clientside.no_update; }
        const mb = n => +(n / 1048576).toPrecision(3) + ' MB';
        return {namespace: 'dash_html_components', type: 'P', props: {id: 'ex-upload-too-large',
                className: 'error', children: filename + ' is ' + mb(size) + ': this explorer takes files of up to ' +
                mb(limit) + ' (survey serve --max-upload MB).'}};
    }""",
    Output("ex-add-result", "children", allow_duplicate=True),
    Input("ex-upload", "contents"), State("ex-upload", "filename"), State("ex-upload-limit", "data"),
    prevent_initial_call=True,
)


# The list's column filters narrow the filter's papers in the browser: its heading says how many they keep
# of those, and the exports take only those (their keys, kept here; None when nothing is narrowed).
dash.clientside_callback(
    """function(shown, rows) {
        const keeps = window.dashAgGridFunctions.listKeeps;
        const all = (rows || []).filter(r => keeps({data: r})).length, kept = (shown || []).length;
        if (!shown || kept === all) { return [null, 'Papers']; }
        return [shown.map(r => r.key), 'Papers: ' + kept + ' of ' + all + ' after the column filters'];
    }""",
    Output("ex-list-shown", "data"), Output("ex-list-heading", "children"),
    Input("ex-list", "virtualRowData"), State("ex-list", "rowData"), prevent_initial_call=True,
)


# The details column scrolls on its own: a newly chosen paper's details start at its top, in view.
dash.clientside_callback(
    """function(children) {
        const side = document.querySelector('.explorer .side');
        if (side) { side.scrollTop = 0; }
        return dash_clientside.no_update;
    }""",
    Output("ex-scrolled", "data"), Input("ex-details", "children"), prevent_initial_call=True,
)


# The map draws with WebGL (scattergl), which an SVG can only hold as a bitmap: for SVG it is drawn
# again as SVG traces (the same points, lit points, labels and legend), so the file is a true vector.
dash.clientside_callback(
    """function(clicks) {
        const id = dash_clientside.callback_context.triggered_id;
        if (!id || !clicks.some(Boolean)) { return dash_clientside.no_update; }
        const plot = document.querySelector('#' + id.graph + ' .js-plotly-plot');
        const options = {format: id.format, filename: id.graph.replace('ex-', ''),
                         width: plot.offsetWidth, height: plot.offsetHeight};
        const vector = id.format !== 'svg' ? plot : {
            data: plot.data.map(t => t.type === 'scattergl' ? Object.assign({}, t, {type: 'scatter'}) : t),
            layout: plot.layout};
        Plotly.downloadImage(vector, options);
        return dash_clientside.no_update;
    }""",
    Output("ex-image-done", "data"),
    Input({"type": "ex-image", "graph": ALL, "format": ALL}, "n_clicks"),
    prevent_initial_call=True,
)

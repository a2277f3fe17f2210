"""The gaps and clusters page: the review's own questions answered from the corpus and its map.

``/gaps?rows=task&columns=modality`` crosses two tag categories (``surveys=include`` counts the surveys
too); the explorer's filter in the same query string (``tag=``, ``not=``, ``q=``, ``years=``) limits
the works outside the corpus to those the papers it keeps cite. Every part is drawn from the
explorer's current snapshot, so the page follows changes to the .bib files.
"""

from __future__ import annotations

import dash
from dash import Input, Output, State, callback, dcc, html

from app import gaps_views as gv
from app.filters import FilterState
from app.runtime import explorer_state
from app.state import Snapshot
from survey import neighbourhood as nb

dash.register_page(__name__, path=gv.PAGE, title="Gaps and clusters", name="Gaps and clusters")

INCLUDE = "include"


def layout(rows: str | None = None, columns: str | None = None, surveys: str | None = None, **query) -> html.Div:
    snap = explorer_state().snapshot()
    rows, columns = nb.gap_axes(snap.categories, _one(rows), _one(columns))
    include = _one(surveys) == INCLUDE
    state = gv.filter_only(FilterState.from_url(gv.query_string(query)))
    figure, gaps, note = gv.gap_parts(snap, rows, columns, include)
    options = [{"label": c, "value": c} for c in snap.categories]
    presets = [dcc.Link(f"{r} × {c}", href=gv.page_url(r, c, include, state), id=f"gp-preset-{r}-{c}")
               for r, c in gv.PRESETS if r in snap.categories and c in snap.categories]
    return html.Div([
        dcc.Location(id="gp-go", refresh="callback-nav"),
        dcc.Location(id="gp-url", refresh=False),  # keeps the chosen question in the address, to share
        dcc.Store(id="gp-filter", data=state.to_url()),
        html.H2("Gaps and clusters"),
        html.P("The review's own questions, answered by the corpus: which combinations no paper has studied, "
               "which papers belong together, and which works outside the corpus it keeps citing.",
               className="muted"),
        _filter_note(snap, state),
        html.Section([
            html.H3("Which combinations has no paper studied?"),
            html.Div([
                html.Label("Rows", htmlFor="gp-rows"),
                dcc.Dropdown(id="gp-rows", options=options, value=rows, clearable=False, style={"width": "190px"}),
                html.Label("Columns", htmlFor="gp-columns"),
                dcc.Dropdown(id="gp-columns", options=options, value=columns, clearable=False,
                             style={"width": "190px"}),
                html.Span(["Questions of the review: ", *_separated(presets)] if presets else [], className="muted"),
                dcc.Checklist(id="gp-surveys", value=[INCLUDE] if include else [],
                              options=[{"label": " count surveys too", "value": INCLUDE}]),
            ], className="row gp-controls"),
            html.P(note, id="gp-note", className="muted small"),
            html.Div([
                dcc.Graph(id="gp-heatmap", figure=figure, config={"displaylogo": False}, className="gp-heatmap"),
                html.Div(gaps, id="gp-gaps", className="gp-gaps", tabIndex=0),  # it scrolls: keyboard users too
            ], className="gp-split"),
        ], className="panel", id="gp-gaps-section"),
        html.Section([
            html.H3("Which papers belong together?"),
            html.Div(gv.cluster_parts(snap), id="gp-clusters"),
        ], className="panel", id="gp-clusters-section"),
        html.Section([
            html.H3("Which works outside the corpus does it keep citing?"),
            dcc.RadioItems(id="gp-rank", value="cited", inline=True,
                           options=[{"label": f" {label}", "value": by} for by, label in gv.RANKINGS.items()]),
            html.Div(gv.outside_parts(snap, state, "cited"), id="gp-outside"),
        ], className="panel", id="gp-outside-section"),
    ], className="gaps-page")


def _filter_note(snap: Snapshot, state: FilterState):
    if not gv.is_filtered(state):
        return None
    kept = state.query(snap.similar_to).apply(snap.table)
    labels = ", ".join(label for _, label in state.chips())
    return html.P([f"The works outside the corpus count only the {len(kept)} of {len(snap.table)} papers the "
                   f"explorer's filter keeps ({labels}); the gaps and the clusters cover the whole corpus. ",
                   dcc.Link("Open this filter in the explorer", href="/" + state.to_url()), " · ",
                   dcc.Link("count every paper", href=gv.PAGE, id="gp-unfilter")], id="gp-filter-note")


def _one(value):
    """A query parameter given twice arrives as a list: the first counts."""
    return value[0] if isinstance(value, list) else value


def _separated(links: list) -> list:
    out: list = []
    for i, link in enumerate(links):
        out += ([" · "] if i else []) + [link]
    return out


@callback(Output("gp-heatmap", "figure"), Output("gp-gaps", "children"), Output("gp-note", "children"),
          Output("gp-url", "search"),
          Input("gp-rows", "value"), Input("gp-columns", "value"), Input("gp-surveys", "value"),
          State("gp-filter", "data"), prevent_initial_call=True)
def regap(rows, columns, surveys, search):
    include = INCLUDE in (surveys or [])
    url = gv.page_url(rows, columns, include, FilterState.from_url(search)) if rows and columns else gv.PAGE
    return (*gv.gap_parts(explorer_state().snapshot(), rows, columns, include), url[len(gv.PAGE):])


@callback(Output("gp-outside", "children"), Input("gp-rank", "value"), State("gp-filter", "data"),
          prevent_initial_call=True)
def rerank(by, search):
    return gv.outside_parts(explorer_state().snapshot(), FilterState.from_url(search),
                         by if by in gv.RANKINGS else "cited")


@callback(Output("gp-go", "href"), Input("gp-heatmap", "clickData"), State("gp-rows", "value"),
          State("gp-columns", "value"), State("gp-surveys", "value"), prevent_initial_call=True)
def open_cell(click, rows, columns, surveys):
    """A click on a cell opens the explorer filtered to the cell's two tags."""
    points = (click or {}).get("points") or []
    if not points or rows is None or columns is None:
        raise dash.exceptions.PreventUpdate
    return gv.cell_url(rows, columns, str(points[0]["y"]), str(points[0]["x"]), INCLUDE in (surveys or []))

"""Pure builders: a corpus table, a filter mask and a state in, a plotly figure (a plain dict) out.

Figures are returned as dicts, not ``go.Figure``: building and validating a graph object of
10k points costs more than the whole filter round trip may take. Titles go into hover text
escaped, since plotly renders a few HTML tags there.
"""

from __future__ import annotations

import base64
import html
import math

import numpy as np
import pandas as pd

from survey.records import as_int
from survey.review import CATEGORY_COLOURS, OTHER_COLOUR

NO_CATEGORY = "Not in the review's categories"
FADED = "#d9d9d9"
BASE_LAYOUT = {"template": "plotly_white", "margin": {"l": 40, "r": 10, "t": 30, "b": 30},
               "uirevision": "keep"}  # keep the user's zoom and pan across updates


def _category(table: pd.DataFrame) -> pd.Series:
    return table["review_category"].fillna(NO_CATEGORY)


def years_figure(table: pd.DataFrame, mask: np.ndarray, year_min: int | None, year_max: int | None) -> dict:
    """Papers per year stacked by review category; the papers the filter leaves out in grey.

    Bars can be clicked (one year) or brushed (a range); the active range is shaded.
    """
    dated = table["year"].notna().to_numpy()
    years = table["year"].to_numpy(dtype=float, na_value=np.nan)
    if not dated.any():
        return {"data": [], "layout": {**BASE_LAYOUT, "title": {"text": "No paper has a year"}}}
    first, last = int(np.nanmin(years)), int(np.nanmax(years))
    xs = list(range(first, last + 1))
    categories = _category(table).to_numpy()
    traces = []
    for group in [*CATEGORY_COLOURS, NO_CATEGORY]:
        in_group = dated & mask & (categories == group)
        if in_group.any():
            counts = np.bincount(years[in_group].astype(int) - first, minlength=len(xs))
            traces.append(_bar(xs, counts, group, CATEGORY_COLOURS.get(group, OTHER_COLOUR)))
    rest = dated & ~mask
    if rest.any():
        counts = np.bincount(years[rest].astype(int) - first, minlength=len(xs))
        traces.append(_bar(xs, counts, "Filtered out", FADED))
    shapes = []
    if year_min is not None or year_max is not None:
        low = (year_min if year_min is not None else first) - 0.5
        high = (year_max if year_max is not None else last) + 0.5
        shapes.append({"type": "rect", "xref": "x", "yref": "paper", "x0": low, "x1": high, "y0": 0, "y1": 1,
                       "fillcolor": "rgba(255, 200, 0, 0.15)", "line": {"width": 0}, "layer": "below"})
    layout = {**BASE_LAYOUT, "barmode": "stack", "bargap": 0.1, "dragmode": "select", "selectdirection": "h",
              "clickmode": "event", "shapes": shapes, "showlegend": True,
              "legend": {"orientation": "h", "y": -0.25, "font": {"size": 10}},
              "xaxis": {"dtick": 1 if len(xs) <= 15 else 5, "fixedrange": True},
              "yaxis": {"title": {"text": "Papers"}, "rangemode": "tozero", "fixedrange": True}}
    return {"data": traces, "layout": layout}


def _bar(xs: list[int], counts: np.ndarray, name: str, colour: str) -> dict:
    return {"type": "bar", "x": xs, "y": counts.tolist(), "name": name, "marker": {"color": colour},
            "hovertemplate": "%{x}: %{y} paper(s)<extra>" + html.escape(name) + "</extra>"}


def year_range_from_selection(selected: dict | None, clicked: dict | None) -> tuple[int, int] | None:
    """The years a brush (``selectedData``) or a bar click (``clickData``) picks."""
    if selected and selected.get("range", {}).get("x"):
        low, high = selected["range"]["x"]
        low, high = math.ceil(low - 0.5), math.floor(high + 0.5)
        return (low, high) if low <= high else None
    if selected and selected.get("points"):
        xs = [int(p["x"]) for p in selected["points"]]
        return min(xs), max(xs)
    if clicked and clicked.get("points"):
        year = int(clicked["points"][0]["x"])
        return year, year
    return None


EDGE_LIMIT = 20_000  # more lines than this only hide the nodes (and slow the browser down)
# Above this many nodes, hover labels carry the key and year only (titles are half of a 10k map's
# bytes and a quarter of its load time); the line under the map names the hovered paper instead.
HOVER_TITLES_MAX = 3_000


def graph_groups(nodes: pd.DataFrame, colour: str) -> list[tuple[str, pd.DataFrame]]:
    """The node traces of the map, in order: works outside the corpus, then papers by colour group."""
    papers = nodes[nodes["kind"] == "paper"]
    groups = [("Works outside the corpus", nodes[nodes["kind"] != "paper"])]
    if colour == "year":
        return groups + [("Papers", papers)]
    categories = _category(papers)
    return groups + [(group, papers[categories == group]) for group in [*CATEGORY_COLOURS, NO_CATEGORY]]


def graph_figure(nodes: pd.DataFrame, positions: dict[str, tuple[float, float]], edges: pd.DataFrame,
                 colour: str) -> dict:
    """The corpus map with every node; the filter and the selection are applied by ``graph_highlight``.

    Trace 0 holds the edges, then one trace per group of ``graph_groups``, and last the ring of
    the selected paper. Coordinates travel as base64 typed arrays, which plotly.js decodes: a
    tenth of the size of JSON numbers at 10k nodes. ``nodes`` has key, kind, title, year,
    review_category and size columns.
    """
    placed = nodes[nodes["key"].isin(positions.keys())]
    drawn = edges.nlargest(EDGE_LIMIT, "weight") if len(edges) > EDGE_LIMIT else edges
    traces = [_edge_trace(drawn, positions)]
    titles = len(placed) <= HOVER_TITLES_MAX
    for name, part in graph_groups(placed, colour):
        if name == "Works outside the corpus":
            marker = {"color": FADED, "size": 5, "symbol": "diamond"}
        elif name == "Papers":
            marker = {"color": _f4(part["year"].astype(float).fillna(np.nan)), "colorscale": "Viridis",
                      "showscale": True, "colorbar": {"title": {"text": "Year"}, "thickness": 10},
                      "size": _f4(part["size"])}
        else:
            marker = {"color": CATEGORY_COLOURS.get(name, OTHER_COLOUR), "size": _f4(part["size"])}
        traces.append(_node_trace(part, positions, name, marker, titles))
    traces.append({"type": "scatter", "mode": "markers", "x": [], "y": [], "name": "Selected",
                   "hoverinfo": "skip", "showlegend": False,
                   "marker": {"size": 22, "color": "rgba(0,0,0,0)", "line": {"width": 3, "color": "#d62728"}}})
    note = f"strongest {len(drawn):,} of {len(edges):,} edges drawn" if len(drawn) < len(edges) else ""
    layout = {**BASE_LAYOUT, "showlegend": True, "hovermode": "closest", "clickmode": "event",
              "dragmode": "pan", "legend": {"orientation": "h", "y": -0.05, "font": {"size": 10}},
              "xaxis": {"visible": False}, "yaxis": {"visible": False, "scaleanchor": "x"},
              "annotations": [{"text": note, "showarrow": False, "xref": "paper", "yref": "paper", "x": 1,
                               "y": 1, "xanchor": "right", "font": {"size": 10, "color": "#777"}}] if note else []}
    return {"data": traces, "layout": layout}


def graph_highlight(nodes: pd.DataFrame, positions: dict[str, tuple[float, float]], colour: str,
                    matching: np.ndarray, selected: str | None) -> dict[int, dict]:
    """Per trace index of ``graph_figure``, what changes with the filter: which points stay lit
    (``selectedpoints``; None = all) and where the selection ring is."""
    placed = nodes[nodes["key"].isin(positions.keys())]
    lit = placed["key"].isin(matching).to_numpy()
    changes: dict[int, dict] = {}
    for i, (name, part) in enumerate(graph_groups(placed, colour), start=1):
        in_part = lit[placed.index.get_indexer(part.index)]
        if name == "Works outside the corpus" or in_part.all():
            changes[i] = {"selectedpoints": None}
        else:
            changes[i] = {"selectedpoints": np.flatnonzero(in_part).tolist()}
    ring = [positions[selected]] if selected in positions else []
    changes[len(changes) + 1] = {"x": [p[0] for p in ring], "y": [p[1] for p in ring]}
    return changes


def apply_highlight(figure: dict, changes: dict[int, dict]) -> dict:
    for i, change in changes.items():
        figure["data"][i].update(change)
    return figure


def _f4(values) -> dict:
    """A plotly.js typed array: float32 as base64 (NaN where a value is missing)."""
    return {"dtype": "f4", "bdata": base64.b64encode(np.asarray(values, dtype="<f4").tobytes()).decode()}


def _edge_trace(edges: pd.DataFrame, positions: dict[str, tuple[float, float]]) -> dict:
    keys = list(positions)
    index = {k: i for i, k in enumerate(keys)}
    xy = np.array([positions[k] for k in keys], dtype=np.float32).reshape(-1, 2)
    pairs = [(index[s], index[t]) for s, t in zip(edges["source"], edges["target"]) if s in index and t in index]
    ends = np.array(pairs, dtype=np.int64).reshape(-1, 2)
    # each edge: start, end, NaN (a gap), so one trace draws them all
    xs = np.stack([xy[ends[:, 0], 0], xy[ends[:, 1], 0], np.full(len(ends), np.nan, np.float32)], axis=1)
    ys = np.stack([xy[ends[:, 0], 1], xy[ends[:, 1], 1], np.full(len(ends), np.nan, np.float32)], axis=1)
    return {"type": "scattergl", "mode": "lines", "x": _f4(xs.ravel()), "y": _f4(ys.ravel()), "name": "Edges",
            "hoverinfo": "skip", "showlegend": False, "connectgaps": False,
            "line": {"width": 0.5, "color": "rgba(120,120,120,0.35)"}}


def _node_trace(part: pd.DataFrame, positions: dict[str, tuple[float, float]], name: str, marker: dict,
                titles: bool) -> dict:
    xy = np.array([positions[k] for k in part["key"]], dtype=np.float32).reshape(-1, 2)
    labels = [(f"{html.escape(str(t)[:100])}<br>" if titles else "")
              + f"{html.escape(str(k))} ({as_int(y) or ''})"
              for t, k, y in zip(part["title"], part["key"], part["year"].astype(object))]
    return {"type": "scattergl", "mode": "markers", "x": _f4(xy[:, 0]), "y": _f4(xy[:, 1]), "name": name,
            "customdata": part["key"].tolist(), "text": labels, "hovertemplate": "%{text}<extra></extra>",
            "selectedpoints": None, "unselected": {"marker": {"opacity": 0.12}},
            "marker": {"line": {"width": 0}, **marker}}


def node_sizes(citations: pd.Series) -> pd.Series:
    """Marker sizes from citation counts: a base that shrinks as the map fills (14 px for a review's
    dozen papers, 6 px at thousands), plus a step per order of magnitude of citations."""
    base = 14 if len(citations) <= 200 else 9 if len(citations) <= 2000 else 6
    return base + 4 * np.log1p(citations.fillna(0).astype(float))

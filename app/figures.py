"""Pure builders: a corpus table, a filter mask and a state in, a plotly figure (a plain dict) out.

Figures are returned as dicts, not ``go.Figure``: building and validating a graph object of
10k points costs more than the whole filter round trip may take. Titles go into hover text
escaped, since plotly renders a few HTML tags there.
"""

from __future__ import annotations

import html
import math

import numpy as np
import pandas as pd

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


def graph_figure(nodes: pd.DataFrame, positions: dict[str, tuple[float, float]], edges: pd.DataFrame,
                 matching: set[str], colour: str, selected: str | None) -> dict:
    """The corpus map: edges in grey, matching papers coloured, the rest faded, the selection ringed.

    ``nodes`` has key, kind, title, year, review_category and size columns.
    """
    placed = nodes[nodes["key"].isin(positions.keys())]
    xy = np.array([positions[k] for k in placed["key"]]) if len(placed) else np.zeros((0, 2))
    placed = placed.assign(x=xy[:, 0], y=xy[:, 1])
    traces = [_edge_trace(edges, positions)]
    is_match = placed["key"].isin(matching).to_numpy() & (placed["kind"] == "paper").to_numpy()
    others = placed[~is_match]
    if len(others):
        traces.append(_node_trace(others, "Other papers and works", {"color": FADED, "size": 5}))
    hits = placed[is_match]
    if colour == "year" and len(hits):
        traces.append(_node_trace(hits, "Matching papers", {
            "color": hits["year"].astype(float).fillna(np.nan).tolist(), "colorscale": "Viridis",
            "showscale": True, "colorbar": {"title": {"text": "Year"}, "thickness": 10},
            "size": hits["size"].tolist()}))
    else:
        categories = _category(hits)
        for group in [*CATEGORY_COLOURS, NO_CATEGORY]:
            part = hits[categories == group]
            if len(part):
                traces.append(_node_trace(part, group, {"color": CATEGORY_COLOURS.get(group, OTHER_COLOUR),
                                                        "size": part["size"].tolist()}))
    if selected and selected in positions:
        x, y = positions[selected]
        traces.append({"type": "scatter", "mode": "markers", "x": [x], "y": [y], "name": "Selected",
                       "hoverinfo": "skip", "showlegend": False,
                       "marker": {"size": 22, "color": "rgba(0,0,0,0)", "line": {"width": 3, "color": "#d62728"}}})
    layout = {**BASE_LAYOUT, "showlegend": True, "hovermode": "closest", "clickmode": "event",
              "dragmode": "pan", "legend": {"orientation": "h", "y": -0.05, "font": {"size": 10}},
              "xaxis": {"visible": False}, "yaxis": {"visible": False, "scaleanchor": "x"}}
    return {"data": traces, "layout": layout}


def _edge_trace(edges: pd.DataFrame, positions: dict[str, tuple[float, float]]) -> dict:
    xs: list[float | None] = []
    ys: list[float | None] = []
    for source, target in zip(edges["source"], edges["target"]):
        if source in positions and target in positions:
            (x0, y0), (x1, y1) = positions[source], positions[target]
            xs += [x0, x1, None]
            ys += [y0, y1, None]
    return {"type": "scattergl", "mode": "lines", "x": xs, "y": ys, "name": "Edges", "hoverinfo": "skip",
            "showlegend": False, "line": {"width": 0.5, "color": "rgba(120,120,120,0.35)"}}


def _node_trace(part: pd.DataFrame, name: str, marker: dict) -> dict:
    labels = [f"{html.escape(str(t))}<br>{html.escape(str(k))} ({'' if y is None or y != y else int(y)})"
              for t, k, y in zip(part["title"], part["key"], part["year"].astype(object))]
    return {"type": "scattergl", "mode": "markers", "x": part["x"].tolist(), "y": part["y"].tolist(),
            "name": name, "customdata": part["key"].tolist(), "text": labels,
            "hovertemplate": "%{text}<extra></extra>", "marker": {"line": {"width": 0}, **marker}}


def node_sizes(citations: pd.Series) -> pd.Series:
    """Marker sizes from citation counts: 6 px, plus a step per order of magnitude."""
    return 6 + 4 * np.log1p(citations.fillna(0).astype(float))

"""Pure builders: a corpus table, a filter mask and a state in, a plotly figure (a plain dict) out.

Figures are returned as dicts, not ``go.Figure``: building and validating a graph object of
10k points costs more than the whole filter round trip may take. Titles go into hover text
escaped, since plotly renders a few HTML tags there.
"""

from __future__ import annotations

import base64
import html
import math
import textwrap
from dataclasses import dataclass

import numpy as np
import pandas as pd

from app.filters import SELECTION_COLOURS
from survey.records import as_int
from survey.review import CATEGORY_COLOURS, OTHER_COLOUR

NO_CATEGORY = "Not in the review's categories"
FADED = "#d9d9d9"
BASE_LAYOUT = {"template": "plotly_white", "margin": {"l": 40, "r": 10, "t": 30, "b": 30},
               "uirevision": "keep"}  # keep the user's zoom and pan across updates


def category_column(table: pd.DataFrame) -> pd.Series:
    """Each row's review category, NO_CATEGORY where it has none."""
    return table["review_category"].fillna(NO_CATEGORY)


def years_figure(table: pd.DataFrame, mask: np.ndarray, year_min: int | None, year_max: int | None,
                 groups: np.ndarray | None = None, names: list[str] = ()) -> dict:
    """Papers per year stacked by review category, or with ``groups`` (per row, the index in
    ``names`` of its selection, -1 for none) by selection in SELECTION_COLOURS; the papers the
    filter leaves out in grey.

    Bars can be clicked (one year) or brushed (a range); the active range is shaded.
    """
    dated = table["year"].notna().to_numpy()
    years = table["year"].to_numpy(dtype=float, na_value=np.nan)
    if not dated.any():
        return {"data": [], "layout": {**BASE_LAYOUT, "title": {"text": "No paper has a year"}}}
    first, last = int(np.nanmin(years)), int(np.nanmax(years))
    xs = list(range(first, last + 1))
    if groups is None:
        categories = category_column(table).to_numpy()
        stacks = [(categories == group, group, CATEGORY_COLOURS.get(group, OTHER_COLOUR))
                  for group in [*CATEGORY_COLOURS, NO_CATEGORY]]
    else:
        stacks = [(groups == i, name, colour) for i, (name, colour) in enumerate(zip(names, SELECTION_COLOURS))]
        stacks.append((groups < 0, NO_SELECTION, OTHER_COLOUR))
    traces = []
    for in_stack, name, colour in stacks:
        in_group = dated & mask & in_stack
        if in_group.any():
            counts = np.bincount(years[in_group].astype(int) - first, minlength=len(xs))
            traces.append(_bar(xs, counts, name, colour))
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
# Edge hover labels likewise say only the weight, and the line under the map says why.
HOVER_TITLES_MAX = 3_000
# A scattergl line trace has one width: the edges go in EDGE_BUCKETS traces by weight third.
EDGE_BUCKETS = 3
EDGE_WIDTHS = (0.5, 1.3, 2.6)
EDGE_COLOURS = ("rgba(120,120,120,0.25)", "rgba(100,100,100,0.4)", "rgba(80,80,80,0.55)")
# Plotly cannot hover along a line: an invisible marker at the middle of each of the strongest
# EDGE_HOVER_MAX drawn edges carries its hover label (a few thousand stay light on a 10k map).
EDGE_HOVER_MAX = 2_000
EDGE_HOVER_TRACE = EDGE_BUCKETS  # the trace index of those markers
NODE_TRACES = EDGE_BUCKETS + 1  # the trace index of the first node trace
# Node labels: all of them on a map of at most LABELS_ALL_MAX nodes; on a larger one the
# LABELS_TOP papers largest by the size measure, the selected paper and its LABEL_NEIGHBOURS
# strongest neighbours in the current mode.
LABELS_ALL_MAX = 60
LABELS_TOP = 20
LABEL_NEIGHBOURS = 30
# The largest clusters get a colour each (the Tableau 10 palette); the rest share OTHER_COLOUR.
CLUSTER_COLOURS = ("#4E79A7", "#F28E2B", "#E15759", "#76B7B2", "#59A14F", "#EDC948", "#B07AA1", "#FF9DA7",
                   "#9C755F", "#79706E")
OTHER_CLUSTERS = "Other clusters"
NO_SELECTION = "In no selection"
# Colour by selection: one trace of all papers whose colours (each paper's selection number,
# len(SELECTION_COLOURS) for none) a patch changes, and one legend entry per selection after the ring.
SELECTION_SCALE = [*SELECTION_COLOURS, OTHER_COLOUR]
EMPTY_MARGIN = 80  # px above a map without edges, for the note that says why


def graph_groups(nodes: pd.DataFrame, colour: str) -> list[tuple[str, pd.DataFrame]]:
    """The node traces of the map, in order: works outside the corpus, then papers by colour group
    (by cluster: the ``cluster`` column's names, largest cluster first, OTHER_CLUSTERS last)."""
    papers = nodes[nodes["kind"] == "paper"]
    groups = [("Works outside the corpus", nodes[nodes["kind"] != "paper"])]
    if colour in ("year", "selection"):
        return groups + [("Papers", papers)]
    if colour == "cluster":
        names = papers["cluster"] if "cluster" in papers else "Cluster " + (papers["community"] + 1).astype(str)
        first = papers["community"].groupby(names, sort=False).min()
        order = sorted(first.index, key=lambda name: (name == OTHER_CLUSTERS, first[name], name))
        return groups + [(name, papers[names == name]) for name in order]
    categories = category_column(papers)
    return groups + [(group, papers[categories == group]) for group in [*CATEGORY_COLOURS, NO_CATEGORY]]


def graph_figure(nodes: pd.DataFrame, positions: dict[str, tuple[float, float]], edges: pd.DataFrame,
                 colour: str, hover: list[str] | None = None, empty: str = "") -> dict:
    """The corpus map with every node; the filter, the selection and the labels are applied by
    ``graph_highlight``.

    Traces 0 to EDGE_BUCKETS - 1 hold the edges, thin to thick by weight; then the invisible
    markers at the middle of the strongest edges (``hover_edges``), whose hover labels are
    ``hover`` (one per such edge, HTML-escaped; None: the weight only); then one trace per group
    of ``graph_groups``, and last the ring of the selected paper. ``empty``: why there is no edge
    (shown on the map; ``empty_notes``). Coordinates travel as base64 typed arrays, which
    plotly.js decodes: a tenth of the size of JSON numbers at 10k nodes. ``nodes`` has key, kind,
    title, year, review_category and size columns (cluster and community to colour by cluster).
    """
    placed = nodes[nodes["key"].isin(positions.keys())]
    index, xy = _coordinates(positions)
    drawn = drawn_edges(edges)
    bucket = edge_buckets(drawn["weight"].to_numpy(dtype=float))
    traces = [_edge_trace(drawn[bucket == b], index, xy, EDGE_WIDTHS[b], EDGE_COLOURS[b]) for b in range(EDGE_BUCKETS)]
    traces.append(_edge_hover_trace(hover_edges(drawn), index, xy, hover))
    titles = len(placed) <= HOVER_TITLES_MAX
    clusters = 0
    for name, part in graph_groups(placed, colour):
        if name == "Works outside the corpus":
            marker = {"color": FADED, "size": 5, "symbol": "diamond"}
        elif colour == "selection":
            marker = {"color": _f4(np.full(len(part), len(SELECTION_COLOURS))), "size": _f4(part["size"]),
                      **_discrete_scale(SELECTION_SCALE)}
        elif name == "Papers":
            marker = {"color": _f4(part["year"].astype(float).fillna(np.nan)), "colorscale": "Viridis",
                      "showscale": True, "colorbar": {"title": {"text": "Year"}, "thickness": 10},
                      "size": _f4(part["size"])}
        elif colour == "cluster":
            shade = OTHER_COLOUR if name == OTHER_CLUSTERS else CLUSTER_COLOURS[clusters % len(CLUSTER_COLOURS)]
            clusters += name != OTHER_CLUSTERS
            marker = {"color": shade, "size": _f4(part["size"])}
        else:
            marker = {"color": CATEGORY_COLOURS.get(name, OTHER_COLOUR), "size": _f4(part["size"])}
        traces.append(_node_trace(part, positions, name, marker, titles))
        if colour == "selection" and name == "Papers":
            traces[-1]["showlegend"] = False  # the entries after the ring name the colours
    traces.append({"type": "scatter", "mode": "markers", "x": [], "y": [], "name": "Selected",
                   "hoverinfo": "skip", "showlegend": False,
                   "marker": {"size": 22, "color": "rgba(0,0,0,0)", "line": {"width": 3, "color": "#d62728"}}})
    if colour == "selection":
        traces += [{"type": "scatter", "mode": "markers", "x": [None], "y": [None], "name": NO_SELECTION,
                    "hoverinfo": "skip", "visible": shade == OTHER_COLOUR, "marker": {"color": shade, "size": 10}}
                   for shade in SELECTION_SCALE]
    layout = {**BASE_LAYOUT, "showlegend": True, "hovermode": "closest", "clickmode": "event",
              "dragmode": "pan", "legend": {"orientation": "h", "y": -0.05, "font": {"size": 10}},
              "xaxis": {"visible": False}, "yaxis": {"visible": False, "scaleanchor": "x"},
              "annotations": empty_notes(empty)}
    if empty:
        layout["margin"] = {**BASE_LAYOUT["margin"], "t": EMPTY_MARGIN}
    return {"data": traces, "layout": layout}


def drawn_edges(edges: pd.DataFrame) -> pd.DataFrame:
    """The edges the map draws: all, or the strongest EDGE_LIMIT."""
    return edges.nlargest(EDGE_LIMIT, "weight") if len(edges) > EDGE_LIMIT else edges


def hover_edges(drawn: pd.DataFrame) -> pd.DataFrame:
    """The drawn edges with a hover marker, in the marker trace's order: all, or the strongest EDGE_HOVER_MAX."""
    return drawn.nlargest(EDGE_HOVER_MAX, "weight") if len(drawn) > EDGE_HOVER_MAX else drawn


def edge_buckets(weights: np.ndarray) -> np.ndarray:
    """Each edge's line trace, 0 (thin) to EDGE_BUCKETS - 1 (thick), by the thirds of the weights;
    all in the middle one when every weight is the same (citations)."""
    weights = np.asarray(weights, dtype=float)
    if len(weights) == 0 or weights.min() == weights.max():
        return np.full(len(weights), EDGE_BUCKETS // 2, dtype=np.int64)
    cuts = np.quantile(weights, np.arange(1, EDGE_BUCKETS) / EDGE_BUCKETS)
    return np.searchsorted(cuts, weights, side="left").astype(np.int64)


def empty_notes(message: str) -> list[dict]:
    """The annotation over a map without edges saying why and what to do (none when ``message`` is
    ""), in the top margin (``EMPTY_MARGIN``) so that it hides no node."""
    if not message:
        return []
    return [{"text": "<br>".join(html.escape(line, quote=False) for line in textwrap.wrap(message, 90)),
             "showarrow": False, "xref": "paper", "yref": "paper", "x": 0.5, "y": 1, "yanchor": "bottom",
             "align": "left", "name": "no-edges", "bgcolor": "#fff8e1", "bordercolor": "#e0c060", "borderpad": 4,
             "font": {"size": 11, "color": "#444"}}]


@dataclass(frozen=True)
class NodeGroups:
    """The map's placed nodes and its node traces (``graph_groups``) for one node table, edge mode and
    colouring, with each trace's rows in ``placed``: what every highlight of that map reuses."""
    placed: pd.DataFrame
    groups: list[tuple[str, pd.DataFrame]]
    rows: list[np.ndarray]


def node_groups(nodes: pd.DataFrame, positions: dict[str, tuple[float, float]], colour: str) -> NodeGroups:
    placed = nodes[nodes["key"].isin(positions.keys())]
    groups = graph_groups(placed, colour)
    return NodeGroups(placed, groups, [placed.index.get_indexer(part.index) for _, part in groups])


def graph_highlight(nodes: NodeGroups, positions: dict[str, tuple[float, float]], colour: str,
                    matching: np.ndarray, selected: str | None, neighbours: list[str] = (),
                    notes: list[dict] = (), selection: pd.Series | None = None, names: list[str] = ()) -> dict:
    """Per trace index of ``graph_figure`` (``nodes``: its ``node_groups``), what changes with the
    filter and the selection: which
    points stay lit (``selectedpoints``; None = all) and where the selection ring is; and under
    "layout", the annotations: ``notes`` (``empty_notes``), then the labels of ``labelled``
    (``neighbours``: the selected paper's in the current mode, strongest first; ``neighbour_finder``).
    Coloured by selection, also each paper's colour (``selection``: key -> index in ``names``, -1
    for none; a ``marker.color`` change) and the legend's names."""
    placed, groups = nodes.placed, nodes.groups
    lit = placed["key"].isin(matching).to_numpy()
    changes: dict = {}
    for i, ((name, part), rows) in enumerate(zip(groups, nodes.rows), start=NODE_TRACES):
        in_part = lit[rows]
        if name == "Works outside the corpus" or in_part.all():
            changes[i] = {"selectedpoints": None}
        else:
            changes[i] = {"selectedpoints": np.flatnonzero(in_part).tolist()}
        if colour == "selection" and name == "Papers":
            codes = part["key"].map(selection).fillna(-1).to_numpy() if selection is not None else np.full(len(part), -1)
            changes[i]["marker.color"] = _f4(np.where(codes < 0, len(SELECTION_COLOURS), codes))
    ring_index = NODE_TRACES + len(groups)
    ring = [positions[selected]] if selected in positions else []
    changes[ring_index] = {"x": [p[0] for p in ring], "y": [p[1] for p in ring]}
    if colour == "selection":
        for j in range(len(SELECTION_COLOURS)):
            changes[ring_index + 1 + j] = {"name": names[j] if j < len(names) else "", "visible": j < len(names)}
    changes["layout"] = {"annotations": [*notes, *label_annotations(placed, positions, selected, neighbours)]}
    return changes


def labelled(nodes: pd.DataFrame, selected: str | None, neighbours: list[str] = ()) -> list[str]:
    """The nodes whose label fits: every node of a map of at most LABELS_ALL_MAX; otherwise the
    LABELS_TOP papers with the highest ``score`` (the size measure; none when all are equal), the
    selected node and the first LABEL_NEIGHBOURS of its ``neighbours``."""
    keys = nodes["key"].to_numpy()
    if len(nodes) <= LABELS_ALL_MAX:
        return keys.tolist()
    score = nodes["score"].to_numpy(dtype=float)
    papers = np.flatnonzero((nodes["kind"] == "paper").to_numpy() & ~np.isnan(score))
    top = []
    if len(np.unique(score[papers])) > 1:
        top = keys[papers[np.argsort(-score[papers], kind="stable")[:LABELS_TOP]]].tolist()
    chosen = [selected, *list(neighbours)[:LABEL_NEIGHBOURS]] if selected is not None and (keys == selected).any() else []
    return list(dict.fromkeys(top + chosen))


def neighbour_finder(edges: pd.DataFrame):
    """A function of a node key to the nodes linked to it in ``edges``, strongest link first; the
    ends are coded as integers once, so that each question costs a comparison of integers."""
    ends = pd.concat([edges["source"], edges["target"]], ignore_index=True)
    codes, names = pd.factorize(ends)
    source, target = codes[:len(edges)], codes[len(edges):]
    order = np.argsort(-edges["weight"].to_numpy(dtype=float), kind="stable")
    source, target = source[order], target[order]
    position = {name: i for i, name in enumerate(names)}

    def neighbours(key: str) -> list[str]:
        code = position.get(key)
        if code is None:
            return []
        touching = (source == code) | (target == code)
        others = np.where(source[touching] == code, target[touching], source[touching])
        return [names[i] for i in dict.fromkeys(others.tolist())]
    return neighbours


def label_annotations(nodes: pd.DataFrame, positions: dict[str, tuple[float, float]], selected: str | None,
                      neighbours: list[str] = ()) -> list[dict]:
    """One annotation per node of ``labelled``: its ``label`` (HTML-escaped) just above it, the
    selected paper's in bold. Annotations, not a text trace: a few dozen cost nothing to draw."""
    keys = [k for k in labelled(nodes, selected, neighbours) if k in positions]
    shown = nodes[nodes["key"].isin(keys)] if len(keys) < len(nodes) else nodes
    label = dict(zip(shown["key"], shown["label"])) if "label" in nodes else {}
    out = []
    for key in keys:
        text = html.escape(str(label.get(key) or key), quote=False)
        out.append({"x": positions[key][0], "y": positions[key][1], "xref": "x", "yref": "y", "showarrow": False,
                    "text": f"<b>{text}</b>" if key == selected else text, "yshift": 11, "name": "label",
                    "font": {"size": 10, "color": "#333"}})
    return out


def apply_highlight(figure: dict, changes: dict) -> dict:
    """``figure`` with ``changes`` (``graph_highlight``; a name ``a.b`` sets b within a) in place of
    what they name; the snapshot's layout and markers are shared, so those are copied, not changed."""
    for i, change in changes.items():
        if i == "layout":
            figure["layout"] = {**figure["layout"], **change}
            continue
        for name, value in change.items():
            outer, _, inner = name.partition(".")
            trace = figure["data"][i]
            trace[outer] = {**trace[outer], inner: value} if inner else value
    return figure


def _discrete_scale(colours: list[str]) -> dict:
    """Marker settings that paint the value k in ``colours[k]`` (k = 0 .. len - 1): a colour scale
    of flat steps, so that a change of colours is an array of numbers, not of strings."""
    n = len(colours)
    scale = [[edge / n, colour] for k, colour in enumerate(colours) for edge in (k, k + 1)]
    return {"colorscale": scale, "cmin": -0.5, "cmax": n - 0.5, "showscale": False}


def _f4(values) -> dict:
    """A plotly.js typed array: float32 as base64 (NaN where a value is missing)."""
    return {"dtype": "f4", "bdata": base64.b64encode(np.asarray(values, dtype="<f4").tobytes()).decode()}


def _coordinates(positions: dict[str, tuple[float, float]]) -> tuple[pd.Index, np.ndarray]:
    """The node keys as an index (their rows), and the (n, 2) float32 coordinates in that order."""
    return pd.Index(list(positions), dtype=object), np.array(list(positions.values()), dtype=np.float32).reshape(-1, 2)


def _edge_ends(edges: pd.DataFrame, index: pd.Index) -> tuple[np.ndarray, np.ndarray]:
    """(m, 2) rows of the two ends of each edge with both ends placed, and which edges those are."""
    ends = np.column_stack([index.get_indexer(edges["source"]), index.get_indexer(edges["target"])]).reshape(-1, 2)
    placed = (ends >= 0).all(axis=1)
    return ends[placed].astype(np.int64), placed


def _edge_trace(edges: pd.DataFrame, index: pd.Index, xy: np.ndarray, width: float, colour: str) -> dict:
    ends, _ = _edge_ends(edges, index)
    # each edge: start, end, NaN (a gap), so one trace draws them all
    xs = np.stack([xy[ends[:, 0], 0], xy[ends[:, 1], 0], np.full(len(ends), np.nan, np.float32)], axis=1)
    ys = np.stack([xy[ends[:, 0], 1], xy[ends[:, 1], 1], np.full(len(ends), np.nan, np.float32)], axis=1)
    return {"type": "scattergl", "mode": "lines", "x": _f4(xs.ravel()), "y": _f4(ys.ravel()), "name": "Edges",
            "hoverinfo": "skip", "showlegend": False, "connectgaps": False,
            "line": {"width": width, "color": colour}}


def _edge_hover_trace(edges: pd.DataFrame, index: pd.Index, xy: np.ndarray, hover: list[str] | None) -> dict:
    """Invisible markers at the middle of ``edges`` (``hover_edges``), each with its hover label: a
    line trace cannot be hovered along. Their text is ``hovertext``, never ``text`` or ``customdata``,
    which name the nodes."""
    ends, keep = _edge_ends(edges, index)
    middle = (xy[ends[:, 0]] + xy[ends[:, 1]]) / 2
    weights = edges["weight"].to_numpy(dtype=float)[keep]
    texts = ([t for t, k in zip(hover, keep) if k] if hover is not None
             else [f"weight {w:.3g}" for w in weights])  # a large map: the line under it says why
    return {"type": "scattergl", "mode": "markers", "x": _f4(middle[:, 0]), "y": _f4(middle[:, 1]),
            "name": "Edge labels", "hovertext": texts, "hovertemplate": "%{hovertext}<extra></extra>",
            "showlegend": False, "marker": {"size": 7, "color": "rgba(0,0,0,0)"}}


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
    return _base_size(len(citations)) + 4 * np.log1p(citations.fillna(0).astype(float))


def spread_sizes(values: pd.Series) -> pd.Series:
    """Marker sizes from a measure without a natural unit (PageRank): the same base, plus up to 16 px
    by the square root of the value's place between the smallest and the largest."""
    values = values.astype(float)
    low, high = values.min(), values.max()
    place = (values - low) / (high - low) if high > low else values * 0
    return _base_size(len(values)) + 16 * np.sqrt(place.fillna(0))


def _base_size(n: int) -> int:
    return 14 if n <= 200 else 9 if n <= 2000 else 6

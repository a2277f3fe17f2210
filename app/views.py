"""Pure builders of the explorer's HTML parts: tag clouds, chips, the paper list, the detail panel
(a corpus paper's or a work outside the corpus's, with its neighbourhood).

Dash components escape text, so a title holding ``<script>`` is shown as those characters.
"""

from __future__ import annotations

import functools
import json

import numpy as np
import pandas as pd
from dash import dcc, html

from app.filters import LIST_COLUMNS, NEXT_OP, SELECTION_COLOURS, FilterState, selector_label
from survey.export import Tally, tag_name
from survey.neighbourhood import TEXT_METHOD, Facts, Neighbourhood, OutsideWork
from survey.records import as_int
from survey.search import highlight_ranges
from survey.tags import MISSING, Vocabulary, parse_keywords

CLOUD_SIZE = 40  # tags shown per category; the rest are reachable through the URL and search


def tag_clouds(corpus_counts: dict[str, dict[str, int]], filtered_counts: dict[str, int],
               state: FilterState) -> list:
    """One cloud per category (``corpus_counts``: ``survey.export.tag_counts``): size by the tag's share
    of the corpus, count within the filter (``filtered_counts``: tag -> papers, ``Tally.counts``).

    A click requires the tag, a second click excludes it, a third clears it.
    """
    return [_cloud(category, counts, filtered_counts, state, "tag", functools.partial(tag_name, category), "tags")
            for category, counts in corpus_counts.items()]


def people_clouds(authors: Tally, venues: Tally, mask, state: FilterState) -> list:
    """The author and venue clouds (SurVis has them beside its keywords): the CLOUD_SIZE most
    frequent of each, with their papers within the filter ``mask``, clicked as tags are."""
    return [_cloud("Authors", authors.counts(top=CLOUD_SIZE), authors.counts(mask, CLOUD_SIZE), state, "author",
                   str, "authors", len(authors.names)),
            _cloud("Venues", venues.counts(top=CLOUD_SIZE), venues.counts(mask, CLOUD_SIZE), state, "venue",
                   str, "venues", len(venues.names))]


def _cloud(title: str, counts: dict[str, int], filtered: dict[str, int], state: FilterState, kind: str,
           selector_value, what: str, items: int | None = None) -> html.Section:
    """A cloud of ``counts``' first CLOUD_SIZE items (of ``items``, if ``counts`` holds only those);
    ``selector_value(item)``: the value of its selector, and its key in ``filtered``."""
    shown = list(counts.items())[:CLOUD_SIZE]
    most = max(counts.values(), default=1)
    buttons = []
    for item, total in shown:
        value = selector_value(item)
        n = filtered.get(value, 0)
        selector = state.selector(kind, value)
        status = {"and": "required", "or": "either", "not": "excluded"}[selector.op] if selector else ""
        # tags keep the id they have always had (the pages and benchmarks that click them know it)
        button_id = {"type": "ex-tag", "tag": value} if kind == "tag" else {"type": "ex-selector", "kind": kind,
                                                                              "value": value}
        buttons.append(html.Button(
            [item, html.Span(str(n), className="count")], id=button_id, n_clicks=0,
            title=_selector_title(kind, value, status),
            className=" ".join(c for c in ["tag", status, "none" if not n else ""] if c),
            style={"fontSize": f"{0.75 + 0.5 * total / most:.2f}em"}))
    more = (items or len(counts)) - len(shown)
    return html.Section([
        html.H4(title),
        html.Div(buttons, className="cloud"),
        html.Small(f"{more} more {what} not shown", className="muted") if more > 0 else None,
    ], className="cloud-section", **{"data-category": title if kind == "tag" else kind})


def _selector_title(kind: str, value: str, status: str) -> str:
    if kind == "tag":
        what = "papers without a tag in this category" if value.endswith(":" + MISSING) else value
    else:
        what = f"papers by {value}" if kind == "author" else f"papers in {value}"
    if status in ("required", "either"):
        return f"Showing {'only ' if status == 'required' else 'also '}{what}; click to exclude them"
    if status == "excluded":
        return f"Hiding {what}; click to clear"
    return f"Click to show only {what}"


def chips(state: FilterState) -> list:
    """A removable chip per filter; a selector's chip has its operator first (a click: AND -> OR -> NOT),
    in its selection colour when it has one."""
    colour = dict(zip(state.selecting(), SELECTION_COLOURS))
    out = []
    for chip, label in state.chips():
        selector = state.chip_selector(chip)
        remove = html.Button([selector_label(selector) if selector else label, html.Span(" ×", className="x")],
                             id={"type": "ex-chip", "chip": chip}, n_clicks=0, className="chip",
                             title="Remove this filter")
        if selector is None:
            out.append(remove)
            continue
        shade = colour.get(selector)
        number = state.selecting().index(selector) + 1 if shade else None
        out.append(html.Span([
            html.Span(str(number), className="swatch", style={"background": shade},
                      title=f"selection {number}: its colour on the map, in the histogram and the list")
            if shade else None,
            html.Button(selector.op.upper(), id={"type": "ex-op", "chip": chip}, n_clicks=0, className="op",
                        title=f"{OP_TITLES[selector.op]}; click for {NEXT_OP[selector.op].upper()}"),
            remove], className=f"selector {selector.op}"))
    return out


OP_TITLES = {"and": "Papers must have this", "or": "Papers may have this or another OR selector",
             "not": "Papers must not have this"}


# every column of the paper list: sorted by a click on its header (shift-click: by several) and filtered in
# the box under it (the button beside the box offers the other conditions)
LIST_DEFAULTS = {"sortable": True, "resizable": True, "filter": "agTextColumnFilter", "floatingFilter": True,
                 "suppressHeaderMenuButton": True, "suppressHeaderFilterButton": True, "minWidth": 80}
_LIST_COLUMN = {  # each column's own settings, besides its header, its field and whether it is shown
    # its value and colour (the first selection's) as the browser has them for the page's state (paper-list.js)
    "selection": {"width": 64, "minWidth": 56, "valueGetter": {"function": "selectionNumbers(params)"},
                  "cellStyle": {"styleConditions": [
                      {"condition": f"selectionShade(params) === {i}",
                       "style": {"backgroundColor": colour, "color": "#fff", "fontWeight": "600"}}
                      for i, colour in enumerate(SELECTION_COLOURS)]}},
    "year": {"width": 84, "minWidth": 72, "filter": "agNumberColumnFilter"},
    # a row's marks change with the search while its title does not: "never equal" redraws the cell
    "title": {"flex": 3, "minWidth": 180, "cellRenderer": "MarkedTitle", "tooltipField": "title",
              "equals": {"function": "false"}},
    "authors": {"flex": 1.5, "tooltipField": "authors"},
    "venue": {"flex": 1, "tooltipField": "venue"},
    "category": {"flex": 1, "tooltipField": "category"},
    "tags": {"flex": 1.5, "tooltipField": "tags"},
    "key": {"width": 130, "tooltipField": "key"},
}


def list_columns(shown: tuple[str, ...], sort: tuple[tuple[str, str], ...] = ()) -> list[dict]:
    """The paper list's column definitions, those not in ``shown`` hidden (the column chooser), sorted
    as ``sort`` says ((column, "asc" or "desc"), first key first: the URL's ``sort``)."""
    order = {column: (i, direction) for i, (column, direction) in enumerate(sort)}
    return [{"field": column, "headerName": name, "hide": column not in shown, **_LIST_COLUMN[column],
             **({"sort": order[column][1], "sortIndex": order[column][0]} if column in order else {})}
            for column, name in LIST_COLUMNS.items()]


def list_row_classes(paper: str | None) -> dict:
    """The list's row class rules: the selected paper's row is ``ex-current`` (style.css). The key is
    a JSON string, which the grid's expression parser reads as a string literal whatever it holds."""
    return {"ex-current": f"params.data.key === {json.dumps(paper)}"}


def list_rows(table: pd.DataFrame, search: str = "", selectors: tuple = (),
              mask: np.ndarray | None = None, fields: frozenset[str] | None = None) -> list[dict]:
    """Every paper of ``table`` as a row of the paper list, in the review's order, then the newest first
    (numbers and years missing last); the grid sorts, filters and scrolls them itself, and leaves out
    those the filter does not keep (``out``, for the papers ``mask`` leaves out; the browser keeps
    its own answer once it has the index: app/assets/explorer-filter.js). A row has the fields of
    LIST_COLUMNS, "selection" (Sel.) and ``shade`` only for a paper in one of the coloured ``selectors``
    (the selections): their numbers, and the first one's colour as an index of SELECTION_COLOURS; and
    ``marks``, only on a title with words that ``search`` matches: where they are (``title_marks``).
    ``fields``: the columns whose values are sent (None: all; the key always is): those hidden are
    left out, as they are a good part of the bytes."""
    number = table["review_number"].to_numpy(dtype=float, na_value=np.nan)
    year = table["year"].to_numpy(dtype=float, na_value=np.nan)
    order = np.lexsort((np.nan_to_num(-year, nan=np.inf), np.nan_to_num(number, nan=np.inf)))
    rows = table.iloc[order]
    out_of_filter = (~np.asarray(mask, dtype=bool))[order] if mask is not None else np.zeros(len(rows), dtype=bool)
    numbers = _selection_numbers(rows, selectors)
    tags = [tags_text(t, f) for t, f in zip(rows["tags"], rows["free_tags"])]
    titles = rows["title"].tolist()  # (plain lists: a pandas column of strings is slow to walk item by item)
    marks = title_marks(titles, search) if search else [[]] * len(rows)
    out = []
    for key, title, authors, venue, category, year, tagged, has, marked, left_out in zip(
            rows["key"].tolist(), titles, rows["authors"].tolist(), rows["venue"].tolist(),
            rows["review_category"].tolist(), rows["year"].tolist(), tags, numbers, marks, out_of_filter.tolist()):
        row = {"key": key, "year": None if pd.isna(year) else int(year), "title": title,
               "authors": ", ".join(authors), "venue": venue, "category": category if isinstance(category, str) else "",
               "tags": tagged}
        if has:  # (a field left out is an empty cell: at 10k rows every byte counts ten thousand times)
            row.update(selection=" ".join(map(str, has)), shade=has[0] - 1)
        if marked:
            row["marks"] = marked
        if left_out:
            row["out"] = 1
        out.append(row if fields is None else {name: value for name, value in row.items()
                                               if _ROW_FIELD.get(name, name) in fields or name in ("key", "out")})
    return out


_ROW_FIELD = {"shade": "selection", "marks": "title"}  # the column a row's extra field goes with


def in_list_order(table: pd.DataFrame, keys: list) -> pd.DataFrame:
    """The papers of ``table`` whose keys are in ``keys`` (what the list shows), in that order; keys
    the table does not hold (a list drawn before the corpus changed) are left out."""
    position = {key: i for i, key in enumerate(keys) if isinstance(key, str)}
    kept = table[table["key"].isin(position)]
    return kept.iloc[kept["key"].map(position).to_numpy().argsort(kind="stable")]


def _selection_numbers(table: pd.DataFrame, selectors: tuple) -> list[list[int]]:
    """Per row, the numbers of the ``selectors`` it has ([1, 3]), as the list's "Sel." column shows them."""
    has = [selector.matches(table).to_numpy(dtype=bool) for selector in selectors]
    return [[i + 1 for i, h in enumerate(has) if h[row]] for row in range(len(table))]


def title_marks(titles, search: str) -> list[list[list[int]]]:
    """Per title, where the words that ``search`` matches are: ``[start, end)`` of each, counted in
    UTF-16 code units as the browser counts them (the list's MarkedTitle, in app/assets, draws them bold)."""
    return [[[_utf16(title, start), _utf16(title, end)] for start, end in ranges] if ranges else []
            for title, ranges in zip(titles, highlight_ranges(titles, search))]


def _utf16(text: str, at: int) -> int:
    """Where character ``at`` of ``text`` is in UTF-16 code units (a character past U+FFFF takes two)."""
    return at if text.isascii() else len(text[:at].encode("utf-16-le")) // 2


def hover_line(snap, key: str | None) -> str:
    """Title, first author and year of the paper under the pointer (works outside: their title)."""
    if key in snap.by_key.index:
        row = snap.by_key.loc[key]
        author = row["authors"][0] + (" et al." if len(row["authors"]) > 1 else "") if row["authors"] else ""
        year = f", {int(row['year'])}" if pd.notna(row["year"]) else ""
        return f"{row['title']} ({author}{year}) [{key}]"
    node = snap.nodes[snap.nodes["key"] == key]
    return f"{node['title'].iloc[0]} [{key}, outside the corpus]" if len(node) else ""


def details(row: pd.Series | None, has_results: bool, near: Neighbourhood | None = None,
            titles: dict[str, str] | None = None, vocabulary: Vocabulary | None = None,
            draft: str | None = None) -> list:
    """The detail panel of the selected paper (or a hint when none is selected); with ``near``, its
    neighbourhood too (``titles``: key -> the label of each corpus paper it names). The tag editor
    checks the tags against ``vocabulary`` and holds ``draft``, the user's unsaved edit, if any."""
    if row is None:
        return [html.P("Click a paper in the list or the graph to see its details.", className="muted")]
    parts = [html.H3(row["title"], id="ex-details-title"),
             html.P(", ".join(row["authors"]) or "(no authors)"),
             html.P([f"{row['venue'] or '(no venue)'}", f" · {row['location']}" if row["location"] else "",
                     f" · {int(row['year'])}" if pd.notna(row["year"]) else "", f" · {row['entry_type']}"],
                    className="muted")]
    if row["doi"]:
        parts.append(html.P(["DOI: ", _doi_link(row["doi"])]))
    if pd.notna(row["review_number"]):
        parts.append(html.P(f"Review: paper {int(row['review_number'])}, {row['review_category']}: "
                            f"{row['review_topic']}", className="review"))
        for part in ("what", "why", "how", "evaluation"):
            if isinstance(row[f"review_{part}"], str):
                parts.append(html.P([html.B(part.capitalize() + ": "), row[f"review_{part}"]]))
    if isinstance(row["reproduction"], str):
        state = "results" if has_results else "not run yet"
        parts.append(html.P(["Reproduction: ", dcc.Link(f"{row['reproduction']} ({state})",
                                                         href=f"/reproductions#{row['reproduction']}",
                                                         id="ex-details-repro")]))
    parts += tag_editor(saved_tags(row), vocabulary or Vocabulary(), draft)
    if row["abstract"]:
        parts.append(html.Details([html.Summary("Abstract"), html.P(row["abstract"])]))
    if near is not None:
        parts += neighbourhood_parts(near, titles or {}, row["abstract"])
    parts.append(html.Details([html.Summary("BibTeX"),
                               dcc.Clipboard(target_id="ex-details-bibtex", title="Copy the BibTeX"),
                               html.Pre(row["raw"], id="ex-details-bibtex")], open=False))
    parts.append(html.P(f"{row['file']}:{row['line']}", className="muted small"))
    return parts


PANEL_OPEN = 5  # a list of the panel this long or shorter is shown open, a longer one folded
SIMILARITY_NAMES = {"coupling": "coupling (shared references)", "cocitation": "co-citation (works citing both)",
                    "tags": "shared tags (cosine of IDF-weighted tags)", "text": f"text ({TEXT_METHOD})"}
NOTHING_SIMILAR = {"coupling": "no reference in common is known", "cocitation": "no work is known to cite it "
                   "together with another corpus paper", "tags": "it shares no tag with another paper",
                   "text": "no word of its title and abstract is shared with another paper"}
ENRICH_HINT = "run `survey enrich` (or add `references = {KeyA KeyB}` to the entries)"


def neighbourhood_parts(near: Neighbourhood, titles: dict[str, str], own_abstract: str = "") -> list:
    """A corpus paper's references (inside the corpus, outside it), the corpus papers citing it, its
    most similar papers by each method with their scores, and what OpenAlex says of it. Every paper
    or work named is a link that opens it in this panel (``paper=`` in the URL); an empty part says
    so, and what would fill it."""
    known = bool(near.references_in or len(near.references_out) or near.references_unresolved)
    if known:
        refs = [_section("Cites corpus papers", [_paper(k, titles, "cites") for k in near.references_in],
                         "none of its references is a corpus paper", "ex-nb-refs-in"),
                _section("Cites works outside the corpus",
                         [_work(w, "cites-out") for w in near.references_out.itertuples(index=False)],
                         "none known", "ex-nb-refs-out")]
    else:
        refs = [html.P([html.B("References: "), "OpenAlex lists none for it" if near.facts is not None
                        else f"none known: {ENRICH_HINT}"], className="muted small", id="ex-nb-refs")]
    if near.references_unresolved:
        refs.append(html.P(f"Its references field names {len(near.references_unresolved)} key(s) that are no "
                           f"entry: {', '.join(near.references_unresolved)}", className="muted small",
                           id="ex-nb-refs-unresolved"))
    cited = [_section("Cited by corpus papers", [_paper(k, titles, "cited-by") for k in near.cited_by],
                      "none known", "ex-nb-cited-by")]
    if near.cited_by_outside:
        cited.append(_section("Cited by works outside the corpus (on the map)",
                              [_paper(w, titles, "cited-by-out") for w in near.cited_by_outside], "",
                              "ex-nb-cited-by-out"))
    similar = [_similar_section(method, frame) for method, frame in near.similar.items()]
    select = html.Button("Select similar", id={"type": "ex-select-similar", "key": near.key}, n_clicks=0,
                         title="Keep only this paper and its nearest papers (by coupling, co-citation, tags and "
                               "text) in every view")
    facts = facts_parts(near.facts, own_abstract, "no record cached for this paper: run `survey enrich` (it "
                                                  "finds papers by DOI or exact title)")
    return [html.Section([html.H4("Neighbourhood"), *refs, *cited,
                          html.Div([html.H5("Most similar"), select], className="row"), *similar, *facts],
                         id="ex-neighbourhood", className="neighbourhood")]


def not_found(paper: str) -> list:
    return [html.P(f"[{paper}] is neither a paper of the corpus nor an OpenAlex work.", className="muted")]


def outside_details(work: OutsideWork, titles: dict[str, str]) -> list:
    """The detail panel of a work outside the corpus (an OpenAlex id): what is known of it, which
    corpus papers cite it and share references with it, and a button that takes its BibTeX (from
    the cached record) to "Add papers" when it has a DOI."""
    wid = work.openalex_id
    parts = [html.H3(work.title or f"Work {wid}", id="ex-details-title"),
             html.P(["Outside the corpus · ", _external(f"OpenAlex {wid}", f"https://openalex.org/{wid}"),
                     f" · {work.year}" if work.year is not None else "",
                     " · on the map (cited by two or more corpus papers)" if work.candidate else ""],
                    className="muted")]
    if work.doi:
        parts.append(html.P(["DOI: ", _doi_link(work.doi)]))
    if work.corpus_key:  # its neighbourhood is that paper's
        return parts + [html.P(["This is a corpus paper: ", _paper(work.corpus_key, titles, "self")],
                               id="ex-nb-in-corpus")]
    if not work.cached:
        parts.append(html.P("Not in the OpenAlex cache, so only its id is known: `survey enrich` fetches the "
                            "works the corpus cites most.", className="muted small", id="ex-nb-not-cached"))
    parts += [_section("Cited by corpus papers", [_paper(k, titles, "cited-by") for k in work.cited_by],
                       "none known", "ex-nb-cited-by"),
              _section("Cites corpus papers", [_paper(k, titles, "cites") for k in work.references_in],
                       "it cites no corpus paper" if work.cached else "its references are not known",
                       "ex-nb-refs-in"),
              _similar_section("coupling", work.coupled_with),
              *facts_parts(work.facts, "", "no record cached")]
    if work.addable:
        parts.append(html.Div([
            html.Button("Add to the corpus…", id="ex-work-add", n_clicks=0,
                        title="Preview its BibTeX (made from the cached OpenAlex record) in Add papers"),
            html.Small(" Its BibTeX, made from the cached OpenAlex record, goes to Add papers for a preview "
                       "with the duplicate check; confirm there (or `survey add --doi " + work.doi + "`).",
                       className="muted")], id="ex-work-add-row", className="add-work"))
    elif work.cached and not work.doi:
        parts.append(html.P("It has no DOI, so it cannot be added from OpenAlex: paste its BibTeX in Add papers.",
                            className="muted small"))
    return parts


def facts_parts(facts: Facts | None, own_abstract: str, missing: str) -> list:
    """What OpenAlex says (cited-by count, open-access link, topics, abstract) and when it was fetched."""
    if facts is None:
        return [html.P([html.B("OpenAlex: "), missing], className="muted small", id="ex-nb-openalex")]
    when = f", fetched {facts.fetched_at[:10]}" if facts.fetched_at else ""
    how = " (matched by title)" if facts.matched_by == "title" else ""
    items = [html.Li(f"cited by {facts.cited_by_count:,} works") if facts.cited_by_count is not None else None,
             html.Li(["open access: ", _external(facts.oa_url, facts.oa_url)]) if facts.oa_url else None,
             html.Li("topics: " + "; ".join(facts.topics)) if facts.topics else None]
    parts = [html.P([html.B("OpenAlex"), f"{how}{when}: ",
                     _external(facts.openalex_id, f"https://openalex.org/{facts.openalex_id}")], className="small"),
             html.Ul([i for i in items if i is not None], className="small")]
    if facts.abstract and facts.abstract != (own_abstract or ""):
        parts.append(html.Details([html.Summary("Abstract (OpenAlex)"), html.P(facts.abstract)]))
    return [html.Div(parts, id="ex-nb-openalex", className="openalex")]


def _section(summary: str, items: list, empty: str, section_id: str):
    if not items:
        return html.P([html.B(summary + ": "), empty], className="muted small", id=section_id)
    return html.Details([html.Summary(f"{summary} ({len(items)})"), html.Ul([html.Li(i) for i in items])],
                        open=len(items) <= PANEL_OPEN, id=section_id)


def _similar_section(method: str, frame: pd.DataFrame):
    """The papers of ``frame`` (SIMILAR_COLUMNS) most similar by ``method``, each a link with its score."""
    items = [html.Span([_paper(r.key, {r.key: title_year(r.title, r.year)}, f"similar-{method}"),
                        html.Span(_score(method, r.score), className="score muted")])
             for r in frame.itertuples(index=False)]
    return _section(f"Similar by {SIMILARITY_NAMES[method]}", items, NOTHING_SIMILAR[method],
                    f"ex-nb-similar-{method}")


def _open(key: str, where: str, label: str):
    """A link that opens ``key`` (a corpus key, or a work's OpenAlex id) in the panel: ``paper=key``
    in the URL, as a click on the map does; ``where`` keeps two links to one paper apart."""
    return html.Button(label, id={"type": "ex-open", "key": key, "where": where}, n_clicks=0, className="link",
                       title=f"Open [{key}] in this panel")


def _paper(key: str, titles: dict[str, str], where: str):
    return _open(key, where, titles.get(key) or key)


def _work(work, where: str) -> list:
    """A work a paper cites: its title and year when the cache has it, else its id; and its DOI."""
    label = title_year(work.title, work.year) if work.title else work.id
    doi = [" · ", _doi_link(work.doi)] if work.doi else []
    return [_open(work.id, where, label) if work.kind != "unknown" else work.id, *doi]


def title_year(title: str, year) -> str:
    year = as_int(year)
    return f"{title or '(no title)'} ({year})" if year is not None else title or "(no title)"


def _score(method: str, score: float) -> str:
    if method == "coupling":
        return f" {score:g} shared"
    if method == "cocitation":
        return f" cited together {score:g}×"
    return f" {score:.2f}"


def saved_tags(row: pd.Series) -> str:
    """A paper's tags as the tag editor (and the list's Tags column) shows them: ``category:value, ...``,
    then the free tags."""
    return tags_text(row["tags"], row["free_tags"])


def tags_text(tags: dict[str, list[str]], free: list[str]) -> str:
    return ", ".join(filter(None, [", ".join(f"{c}:{v}" for c, values in tags.items() for v in values), *free]))


DRAFT_NOTE = "Unsaved edits of these tags, kept from before: Save tags or Revert."


def tag_editor(saved: str, vocabulary: Vocabulary, draft: str | None = None) -> list:
    """The tag editor: the tags (or the unsaved ``draft`` of them, said so, with Revert), the
    declared categories and values offered as one types, and what the vocabulary does not declare.
    Enter saves, as the button does."""
    text = saved if draft is None else draft
    return [
        html.Label("Tags (category:value, comma separated; Enter saves)", htmlFor="ex-tags-input"),
        html.Div([dcc.Input(id="ex-tags-input", value=text, debounce=False, list="ex-tags-options",
                            autoComplete="off", style={"width": "100%"}),
                  html.Button("Save tags", id="ex-tags-save", n_clicks=0),
                  html.Button("Revert", id="ex-tags-revert", n_clicks=0, title="Back to the saved tags",
                              hidden=draft is None)], className="row"),
        html.Datalist(tag_options(text, vocabulary), id="ex-tags-options"),
        html.P(DRAFT_NOTE if draft is not None else "",
               id="ex-tags-draft", className="muted small"),
        html.Div(tag_warnings(text, vocabulary), id="ex-tags-check", role="status"),
    ]


def tag_options(text: str, vocabulary: Vocabulary) -> list:
    return [html.Option(value=option) for option in vocabulary.completions(text)]


def tag_warnings(text: str, vocabulary: Vocabulary) -> list:
    """Each tag of ``text`` that ``bib/tags.toml`` does not declare, said as a warning (saving still works)."""
    return [html.P(message, className="warning small") for _, message in vocabulary.unknown(parse_keywords(text)[0])]


def _doi_link(doi: str):
    return _external(doi, f"https://doi.org/{doi}")


def _external(text: str, href: str):
    """A link that opens in a new tab; a URL of the cache that is not http(s) stays text."""
    if not href.lower().startswith(("https://", "http://")):
        return text
    return html.A(text, href=href, target="_blank", rel="noopener noreferrer")


def merge_preview(report, dry_run: bool, note: str = "") -> list:
    """Per entry of a paste or an upload: added (or would be), duplicate of which, possible
    duplicate (added only when ticked in the confirm list), or invalid and why."""
    rows = []
    for o in report.outcomes:
        status = "would add" if dry_run and o.status == "added" else o.status.replace("-", " ")
        why = o.reason + ("; " if o.reason and o.warnings else "") + "; ".join(o.warnings)
        rows.append(html.Tr([html.Td(f"line {o.line}" if o.line else ""), html.Td(o.key or "(no key)"),
                             html.Td(status, className=f"status-{o.status}"), html.Td(why)]))
    if not rows:
        return [html.P("No BibTeX entry found in the input.", className="error")]
    counts = (f"{report.count('added')} new, {report.count('duplicate')} duplicate, "
              f"{report.count('possible-duplicate')} possible duplicate, {report.count('invalid')} invalid")
    written = f" Written to {report.target}." if report.written else ""
    notes = [note] if note else []
    return [html.P(counts + "." + written, id="ex-add-summary"),
            *[html.P(n, className="muted small") for n in notes + report.notes],
            html.Table([html.Thead(html.Tr([html.Th("Where"), html.Th("Key"), html.Th("Outcome"), html.Th("Why")])),
                        html.Tbody(rows)], className="preview")]

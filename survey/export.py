"""The corpus out again: BibTeX (raw blocks, nothing re-serialised), CSV, and statistics."""

from __future__ import annotations

import io

import pandas as pd

from survey.corpus import Corpus
from survey.tags import MISSING

CSV_COLUMNS = ["key", "entry_type", "title", "authors", "year", "venue", "doi", "url", "keywords",
               "review_category", "review_number", "review_topic", "reproduction", "file", "line"]


def to_bibtex(corpus: Corpus, table: pd.DataFrame) -> str:
    """The selected entries exactly as written, after the @preamble and @string blocks of their
    files (every file before them in load order, whose macros they may use), followed by the
    crossref and xdata parents they name that the selection left out (BibTeX wants those last)."""
    parents = _parents(corpus.table, table)
    files = set(table["file"]) | set(parents["file"])
    last = max((i for i, f in enumerate(corpus.files) if str(f.path) in files), default=-1)
    head = [p for f in corpus.files if str(f.path) in files for p in f.preambles]
    head += [raw for f in corpus.files[:last + 1] for raw in f.string_raw.values()]
    return "\n\n".join(head + list(table["raw"]) + list(parents["raw"])) + "\n"


def _parents(everything: pd.DataFrame, selected: pd.DataFrame) -> pd.DataFrame:
    """Rows of ``everything`` that ``selected`` names in crossref or xdata, and does not hold,
    with their own parents in turn (lower-case keys, as BibTeX compares them)."""
    held = set(selected["key"].str.lower())
    wanted: list[str] = []
    frontier = selected
    while len(frontier):
        names = {k.strip().lower() for f in frontier["fields"] for name in ("crossref", "xdata")
                 for k in f.get(name, "").split(",") if k.strip()} - held - set(wanted)
        wanted += sorted(names)
        frontier = everything[everything["key"].str.lower().isin(names)]
    return everything[everything["key"].str.lower().isin(wanted)]


def to_csv(table: pd.DataFrame) -> str:
    out = table.assign(
        authors=table["authors"].map("; ".join),
        keywords=table["fields"].map(lambda f: f.get("keywords", "")),
    )[CSV_COLUMNS]
    buffer = io.StringIO()
    out.to_csv(buffer, index=False)
    return buffer.getvalue()


def author_counts(table: pd.DataFrame) -> dict[str, int]:
    """How many papers each author (as the list shows the name) is on, most first, then by name."""
    return _ranked(table["authors"].explode().dropna())


def venue_counts(table: pd.DataFrame) -> dict[str, int]:
    """How many papers each venue holds, most first, then by name (papers without a venue left out)."""
    return _ranked(table["venue"][table["venue"].fillna("").str.strip() != ""])


def _ranked(values: pd.Series) -> dict[str, int]:
    counts = values.value_counts()
    return {name: int(n) for name, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))}


def papers_per_year(table: pd.DataFrame, by: str = "review_category") -> pd.DataFrame:
    """A year x group count table (rows: years with papers, in order; no year left out between)."""
    dated = table[table["year"].notna()]
    if dated.empty:
        return pd.DataFrame()
    groups = dated[by].fillna("Not in the review's categories") if by else "papers"
    counts = pd.crosstab(dated["year"].astype(int), groups)
    years = range(int(counts.index.min()), int(counts.index.max()) + 1)
    return counts.reindex(years, fill_value=0)


def tag_counts(table: pd.DataFrame, categories: list[str]) -> dict[str, dict[str, int]]:
    """Per category, how many papers carry each tag (``?`` for none in that category)."""
    out = {}
    for category in categories:
        counts: dict[str, int] = {}
        for tags in table["tags"]:
            for value in tags.get(category) or [MISSING]:
                counts[value] = counts.get(value, 0) + 1
        out[category] = dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    free: dict[str, int] = {}
    for tags in table["free_tags"]:
        for value in tags:
            free[value] = free.get(value, 0) + 1
    if free:
        out["(free tags)"] = dict(sorted(free.items(), key=lambda kv: (-kv[1], kv[0])))
    return out

"""The corpus out again: BibTeX (raw blocks, nothing re-serialised), CSV, and statistics."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from survey.corpus import Corpus
from survey.search import fold
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


def to_csv(table: pd.DataFrame, root: Path | None = None) -> str:
    """The papers as CSV (CSV_COLUMNS); with ``root``, each entry's ``file`` relative to that folder
    (its name alone when outside it), so that a download from the explorer names no server path."""
    files = table["file"] if root is None else table["file"].map(lambda f: _relative(f, root))
    out = table.assign(
        authors=table["authors"].map("; ".join),
        keywords=table["fields"].map(lambda f: f.get("keywords", "")),
        file=files,
    )[CSV_COLUMNS]
    buffer = io.StringIO()
    out.to_csv(buffer, index=False)
    return buffer.getvalue()


def _relative(file: str, root: Path) -> str:
    path = Path(file)
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else path.name


@dataclass(frozen=True)
class Tally:
    """Which papers carry which author or venue: ``rows`` (positions in the table) and ``codes``
    (into ``names``) pair up, one pair per paper and name; ``names`` is ranked, most papers first,
    then by name. Built once per table, so that counting the papers of a filter (``counts``) is a
    count of integers."""
    rows: np.ndarray
    codes: np.ndarray
    names: tuple[str, ...]

    def counts(self, mask: np.ndarray | None = None, top: int | None = None) -> dict[str, int]:
        """Name -> papers among the rows ``mask`` keeps (all: None), in rank order; ``top``: the first only."""
        codes = self.codes if mask is None else self.codes[np.asarray(mask, dtype=bool)[self.rows]]
        n = np.bincount(codes, minlength=len(self.names))
        return {name: int(c) for name, c in zip(self.names[:top], n[:top].tolist())}


NOT_AUTHORS = ("others", "et al.", "et al", "al., et")  # BibTeX's "and others", Mendeley's "Et Al."


def author_tally(table: pd.DataFrame) -> Tally:
    """The authors of a table's papers; spellings that differ only in accents and case are one
    author (as ``survey.query.Selector`` matches them), named by the most frequent spelling."""
    lists = table["authors"]
    names = pd.Series([n for a in lists for n in a], dtype=object)
    rows = np.repeat(np.arange(len(lists)), lists.map(len).to_numpy(dtype=np.int64) if len(lists) else 0)
    folded = names.map(fold)
    keep = ~folded.isin(NOT_AUTHORS).to_numpy()
    return _tally(rows[keep], names[keep].to_numpy(), folded[keep].to_numpy())


def venue_tally(table: pd.DataFrame) -> Tally:
    """The venues of a table's papers, as written (papers without one left out)."""
    venues = table["venue"].fillna("").astype(str).to_numpy()
    rows = np.flatnonzero(np.char.strip(venues.astype(str)) != "") if len(venues) else np.zeros(0, np.int64)
    return _tally(rows, venues[rows], venues[rows])


def _tally(rows: np.ndarray, names: np.ndarray, same: np.ndarray) -> Tally:
    """Pairs of row and name, names that are ``same`` counted as one, shown as their most frequent form."""
    if not len(rows):
        return Tally(np.zeros(0, np.int64), np.zeros(0, np.int64), ())
    spellings = (pd.DataFrame({"same": same, "name": names}).value_counts()
                 .reset_index(name="n").sort_values(["n", "name"], ascending=[False, True]))
    ranked = pd.DataFrame({"name": spellings.drop_duplicates("same").set_index("same")["name"],
                           "n": spellings.groupby("same")["n"].sum()}).sort_values(["n", "name"], ascending=[False, True])
    codes = pd.Index(ranked.index).get_indexer(same)
    return Tally(np.asarray(rows, dtype=np.int64), codes.astype(np.int64), tuple(ranked["name"]))


def papers_per_year(table: pd.DataFrame, by: str = "review_category") -> pd.DataFrame:
    """A year x group count table (rows: years with papers, in order; no year left out between)."""
    dated = table[table["year"].notna()]
    if dated.empty:
        return pd.DataFrame()
    groups = dated[by].fillna("Not in the review's categories") if by else "papers"
    counts = pd.crosstab(dated["year"].astype(int), groups)
    years = range(int(counts.index.min()), int(counts.index.max()) + 1)
    return counts.reindex(years, fill_value=0)


FREE_TAGS = "(free tags)"  # tag_counts' category of the tags without one


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
        out[FREE_TAGS] = dict(sorted(free.items(), key=lambda kv: (-kv[1], kv[0])))
    return out


def tag_name(category: str, value: str) -> str:
    """The tag a value of ``tag_counts`` stands for (``category:value``; a free tag as it is)."""
    return value if category == FREE_TAGS else f"{category}:{value}"


def tag_tally(table: pd.DataFrame, categories: list[str]) -> Tally:
    """Which papers carry which tag (``tag_name``; ``category:?`` for none in a category), so that the
    tag clouds count a filter's papers as integers, not by walking every paper's tags again."""
    rows: list[int] = []
    names: list[str] = []
    for row, (tags, free) in enumerate(zip(table["tags"], table["free_tags"])):
        for category in categories:
            for value in tags.get(category) or [MISSING]:
                rows.append(row)
                names.append(f"{category}:{value}")
        rows += [row] * len(free)
        names += list(free)
    names_array = np.array(names, dtype=object)
    return _tally(np.array(rows, dtype=np.int64), names_array, names_array)

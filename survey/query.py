"""One filter state for the CLI and the explorer: text, required and excluded tags, years,
selectors that combine with AND, OR and NOT (``Selector``: a tag, an author or a venue), and
optionally a set of keys to keep (the explorer's "select similar").

A tag is ``category:value``, a free tag, or ``category:?`` for papers with no tag in that
category, as in SurVis. The text is a search query (``survey.search``: words at word starts,
"phrases", OR, -not, field:value), answered by the table's full-text index, built at the
first search of a table and kept while it lives.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from survey.search import fold, index_for
from survey.tags import MISSING
from survey.issues import UserError


SELECTOR_KINDS = ("tag", "author", "venue")
SELECTOR_OPS = ("and", "or", "not")


@dataclass(frozen=True)
class Selector:
    """One selector, as SurVis has them: a tag, an author or a venue, and how it combines with the
    others: a paper passes with every ``and`` selector, at least one ``or`` selector (when there is
    one) and no ``not`` selector. An author matches however the name's accents and case are
    written (Sébastien Ourselin is Sebastien Ourselin); a venue as it is written."""
    op: str
    kind: str
    value: str

    def __post_init__(self):
        if self.op not in SELECTOR_OPS or self.kind not in SELECTOR_KINDS:
            raise ValueError(f"a selector is one of {SELECTOR_OPS} and one of {SELECTOR_KINDS}, "
                             f"not {self.op!r} {self.kind!r}")

    def matches(self, table: pd.DataFrame) -> pd.Series:
        """Which rows of a corpus table carry the selector (whatever its ``op``)."""
        if self.kind == "tag":
            return _has_tag(table, self.value)
        if self.kind == "author":
            name = fold(self.value)
            return table["authors"].map(lambda names: any(fold(n) == name for n in names)).astype(bool)
        return table["venue"].eq(self.value).fillna(False).astype(bool)


def combine(selectors: tuple[Selector, ...], table: pd.DataFrame) -> pd.Series:
    """The rows that pass ``selectors`` (every AND, one OR at least when there is one, no NOT)."""
    keep = pd.Series(True, index=table.index)
    either = [s for s in selectors if s.op == "or"]
    for selector in selectors:
        if selector.op == "and":
            keep &= selector.matches(table)
        elif selector.op == "not":
            keep &= ~selector.matches(table)
    if either:
        keep &= np.logical_or.reduce([s.matches(table).to_numpy() for s in either])
    return keep


def first_matching(selectors: tuple[Selector, ...], table: pd.DataFrame) -> np.ndarray:
    """Per row, the index in ``selectors`` of the first one it carries (-1: none): which selection
    colours it."""
    out = np.full(len(table), -1, dtype=np.int64)
    for i, selector in reversed(list(enumerate(selectors))):  # the first, written last, wins
        out[selector.matches(table).to_numpy(dtype=bool)] = i
    return out


@dataclass(frozen=True)
class Query:
    text: str = ""
    require: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    year_min: int | None = None
    year_max: int | None = None
    keys: frozenset[str] | None = None  # only these papers (by key); None: every paper
    selectors: tuple[Selector, ...] = ()  # selectors combined with AND, OR and NOT (``combine``)

    def mask(self, table: pd.DataFrame) -> pd.Series:
        """Which rows of a corpus table pass every part of the filter."""
        keep = pd.Series(True, index=table.index)
        if self.text.strip():
            keep &= index_for(table).match(self.text)  # a boolean array in the table's row order
        for tag in self.require:
            keep &= _has_tag(table, tag)
        for tag in self.exclude:
            keep &= ~_has_tag(table, tag)
        if self.selectors:
            keep &= combine(self.selectors, table)
        if self.year_min is not None:
            keep &= table["year"].ge(self.year_min).fillna(False).astype(bool)
        if self.year_max is not None:
            keep &= table["year"].le(self.year_max).fillna(False).astype(bool)
        if self.keys is not None:
            keep &= table["key"].isin(self.keys)
        return keep

    def apply(self, table: pd.DataFrame) -> pd.DataFrame:
        return table[self.mask(table)]


def _has_tag(table: pd.DataFrame, tag: str) -> pd.Series:
    category, _, value = tag.partition(":")
    if value == MISSING:
        return table["tags"].map(lambda tags: not tags.get(category))
    return table["tagset"].map(lambda tags: tag in tags)


def parse_years(text: str) -> tuple[int | None, int | None]:
    """``2018``, ``2018-2020``, ``2018-`` or ``-2020`` as an inclusive range."""
    low, sep, high = text.partition("-")
    try:
        if not sep:
            return int(low), int(low)
        return (int(low) if low.strip() else None), (int(high) if high.strip() else None)
    except ValueError:
        raise UserError(f"years '{text}': expected YEAR, FROM-TO, FROM- or -TO") from None

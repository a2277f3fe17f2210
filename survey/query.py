"""One filter state for the CLI and the explorer: text, required and excluded tags, years, and
optionally a set of keys to keep (the explorer's "select similar").

A tag is ``category:value``, a free tag, or ``category:?`` for papers with no tag in that
category, as in SurVis. The text is a search query (``survey.search``: words at word starts,
"phrases", OR, -not, field:value), answered by the table's full-text index, built at the
first search of a table and kept while it lives.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from survey.search import index_for
from survey.tags import MISSING
from survey.issues import UserError


@dataclass(frozen=True)
class Query:
    text: str = ""
    require: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    year_min: int | None = None
    year_max: int | None = None
    keys: frozenset[str] | None = None  # only these papers (by key); None: every paper

    def mask(self, table: pd.DataFrame) -> pd.Series:
        """Which rows of a corpus table pass every part of the filter."""
        keep = pd.Series(True, index=table.index)
        if self.text.strip():
            keep &= index_for(table).match(self.text)  # a boolean array in the table's row order
        for tag in self.require:
            keep &= _has_tag(table, tag)
        for tag in self.exclude:
            keep &= ~_has_tag(table, tag)
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

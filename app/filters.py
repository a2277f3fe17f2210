"""The explorer's one filter state, kept in the page's URL so that a view can be shared.

``?q=gan+ct&tag=method:DCGAN&not=type:tool&years=2018-2020&paper=Yi2019GANReview&colour=year&edges=tags&size=pagerank``
Every view is drawn from this state alone; every click produces a new state. ``similar=KEY`` keeps
only KEY and its nearest papers; which those are is the graph's to say, so ``query`` is handed a
function that answers it (``Snapshot.similar_to``), and the state itself stays plain data.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode

from survey.graph import EDGE_MODES
from survey.neighbourhood import SIZE_CITED_BY, SIZE_MEASURES
from survey.query import Query, parse_years

COLOUR_MODES = ("category", "year", "cluster")
DEFAULT_SIZE = SIZE_CITED_BY  # the map's node size measure unless the URL names another


@dataclass(frozen=True)
class FilterState:
    text: str = ""
    require: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    year_min: int | None = None
    year_max: int | None = None
    paper: str | None = None  # the selected paper (or a work outside the corpus: its OpenAlex id)
    similar: str | None = None  # keep only this paper and its nearest papers ("select similar")
    colour: str = "category"
    edges: str = "tags"
    size: str = DEFAULT_SIZE  # one of survey.neighbourhood.SIZE_MEASURES

    @classmethod
    def from_url(cls, search: str | None) -> "FilterState":
        """The state of a URL's query string; parts that do not parse are left out."""
        params = parse_qs((search or "").lstrip("?"))
        first = {k: v[0] for k, v in params.items() if v}
        try:
            low, high = parse_years(first["years"]) if "years" in first else (None, None)
        except ValueError:
            low = high = None
        return cls(text=first.get("q", ""), require=tuple(params.get("tag", [])),
                   exclude=tuple(params.get("not", [])), year_min=low, year_max=high,
                   paper=first.get("paper"), similar=first.get("similar"),
                   colour=first["colour"] if first.get("colour") in COLOUR_MODES else "category",
                   edges=first["edges"] if first.get("edges") in EDGE_MODES else "tags",
                   size=first["size"] if first.get("size") in SIZE_MEASURES else DEFAULT_SIZE)

    def to_url(self) -> str:
        params: list[tuple[str, str]] = []
        if self.text:
            params.append(("q", self.text))
        params += [("tag", t) for t in self.require] + [("not", t) for t in self.exclude]
        if self.year_min is not None or self.year_max is not None:
            params.append(("years", f"{self.year_min or ''}-{self.year_max or ''}"))
        if self.similar:
            params.append(("similar", self.similar))
        if self.paper:
            params.append(("paper", self.paper))
        if self.colour != "category":
            params.append(("colour", self.colour))
        if self.edges != "tags":
            params.append(("edges", self.edges))
        if self.size != DEFAULT_SIZE:
            params.append(("size", self.size))
        return "?" + urlencode(params) if params else ""

    def query(self, nearest: Callable[[str], Iterable[str]] | None = None) -> Query:
        """The filter as a ``Query``; ``nearest(key)``: the papers nearest to ``key``, needed (and
        asked once) when ``similar`` is set."""
        keys = None
        if self.similar:
            if nearest is None:
                raise ValueError("a state with `similar` needs `nearest` to know which papers are near")
            keys = frozenset([self.similar, *nearest(self.similar)])
        return Query(text=self.text, require=self.require, exclude=self.exclude,
                     year_min=self.year_min, year_max=self.year_max, keys=keys)

    def cycle_tag(self, tag: str) -> "FilterState":
        """A tag click: not used -> required -> excluded -> not used."""
        if tag in self.require:
            return self.replace(require=_without(self.require, tag), exclude=self.exclude + (tag,))
        if tag in self.exclude:
            return self.replace(exclude=_without(self.exclude, tag))
        return self.replace(require=self.require + (tag,))

    def with_years(self, low: int | None, high: int | None) -> "FilterState":
        return self.replace(year_min=low, year_max=high)

    def chips(self) -> list[tuple[str, str]]:
        """``(chip id, label)`` of every active filter, for removable chips."""
        chips = [("q", f"text: {self.text}")] if self.text else []
        chips += [(f"tag={t}", t) for t in self.require] + [(f"not={t}", f"not {t}") for t in self.exclude]
        if self.year_min is not None or self.year_max is not None:
            chips.append(("years", f"years: {self.year_min or '…'}–{self.year_max or '…'}"))
        if self.similar:
            chips.append(("similar", f"similar to {self.similar}"))
        return chips

    def without_chip(self, chip: str) -> "FilterState":
        kind, _, value = chip.partition("=")
        if kind == "q":
            return self.replace(text="")
        if kind == "tag":
            return self.replace(require=_without(self.require, value))
        if kind == "not":
            return self.replace(exclude=_without(self.exclude, value))
        if kind == "years":
            return self.with_years(None, None)
        if kind == "similar":
            return self.replace(similar=None)
        return self

    def replace(self, **changes) -> "FilterState":
        return dataclasses.replace(self, **changes)


def _without(values: tuple[str, ...], value: str) -> tuple[str, ...]:
    return tuple(v for v in values if v != value)

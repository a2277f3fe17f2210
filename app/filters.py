"""The explorer's one filter state, kept in the page's URL so that a view can be shared.

``?q=gan+ct&tag=method:DCGAN&not=type:tool&years=2018-2020&paper=Yi2019GANReview&colour=year&edges=tags``
Every view is drawn from this state alone; every click produces a new state.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode

from survey.graph import EDGE_MODES
from survey.query import Query, parse_years

COLOUR_MODES = ("category", "year")


@dataclass(frozen=True)
class FilterState:
    text: str = ""
    require: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    year_min: int | None = None
    year_max: int | None = None
    paper: str | None = None  # the selected paper, shown in the detail panel
    colour: str = "category"
    edges: str = "tags"

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
                   paper=first.get("paper"),
                   colour=first["colour"] if first.get("colour") in COLOUR_MODES else "category",
                   edges=first["edges"] if first.get("edges") in EDGE_MODES else "tags")

    def to_url(self) -> str:
        params: list[tuple[str, str]] = []
        if self.text:
            params.append(("q", self.text))
        params += [("tag", t) for t in self.require] + [("not", t) for t in self.exclude]
        if self.year_min is not None or self.year_max is not None:
            params.append(("years", f"{self.year_min or ''}-{self.year_max or ''}"))
        if self.paper:
            params.append(("paper", self.paper))
        if self.colour != "category":
            params.append(("colour", self.colour))
        if self.edges != "tags":
            params.append(("edges", self.edges))
        return "?" + urlencode(params) if params else ""

    def query(self) -> Query:
        return Query(text=self.text, require=self.require, exclude=self.exclude,
                     year_min=self.year_min, year_max=self.year_max)

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
        return self

    def replace(self, **changes) -> "FilterState":
        return dataclasses.replace(self, **changes)


def _without(values: tuple[str, ...], value: str) -> tuple[str, ...]:
    return tuple(v for v in values if v != value)

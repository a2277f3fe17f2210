"""The explorer's one filter state, kept in the page's URL so that a view can be shared.

``?q=gan+ct&tag=method:DCGAN&or-author=Xin+Yi&not=type:tool&years=2018-2020&paper=Yi2019GANReview&colour=year``
(and ``cols=year,title,key``: the paper list's columns, when they are not the default ones; ``sort=year:desc``
and ``listfilter={...}``: the list's own sort and column filters, the grid's filter model as JSON)
Every view is drawn from this state alone; every click produces a new state. The selectors (tags,
authors, venues: ``survey.query.Selector``) are kept as a formula reads, AND selectors, then OR, then NOT,
each in the order they were added: the URL's order (a page rebuilt from its URL sees each
parameter's values in order, not how the parameters interleave), and the order in which the
first SELECTION_COLOURS selectors that select (AND or OR) get their colours. ``similar=KEY`` keeps
only KEY and its nearest papers; which those are is the graph's to say, so ``query`` is handed a
function that answers it (``Snapshot.similar_to``), and the state itself stays plain data.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import parse_qs, parse_qsl, urlencode

from survey.graph import EDGE_MODES
from survey.neighbourhood import SIZE_CITED_BY, SIZE_MEASURES
from survey.query import SELECTOR_KINDS, SELECTOR_OPS, Query, Selector, parse_years

COLOUR_MODES = ("category", "year", "cluster", "selection")
DEFAULT_SIZE = SIZE_CITED_BY  # the map's node size measure unless the URL names another
# Colours of the selectors that select (AND, OR), in their order (Okabe-Ito, told apart with colour-blindness too);
# those past the sixth still filter, uncoloured.
SELECTION_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9")
# The URL parameter of each (op, kind), in the selectors' order; tags keep the names they have always had.
_URL_KEYS = {(op, kind): {"and": kind, "or": f"or-{kind}", "not": f"not-{kind}"}[op]
             for op in SELECTOR_OPS for kind in SELECTOR_KINDS}
_URL_KEYS.update({("and", "tag"): "tag", ("or", "tag"): "or", ("not", "tag"): "not"})
_URL_SELECTORS = {name: pair for pair, name in _URL_KEYS.items()}
_RANK = {pair: i for i, pair in enumerate(_URL_KEYS)}
NEXT_OP = {"and": "or", "or": "not", "not": "and"}  # a chip's operator button
# The paper list's columns (id -> header), in their order, and those shown unless the URL names others
LIST_COLUMNS = {"selection": "Sel.", "year": "Year", "title": "Title", "authors": "Authors", "venue": "Venue",
                "category": "Review category", "tags": "Tags", "key": "Key"}
DEFAULT_COLUMNS = tuple(column for column in LIST_COLUMNS if column != "tags")
SORT_DIRECTIONS = ("asc", "desc")
MAX_LIST_FILTER = 4000  # characters of the list's filter model in a URL: more is not typed by hand


def list_filter_json(model) -> str:
    """The paper list's filter model (AG Grid's: column -> its filter's state) as canonical JSON, only
    the columns of LIST_COLUMNS with a filter state each; "" for none, or for anything else."""
    if not isinstance(model, dict):
        return ""
    kept = {column: state for column, state in model.items() if column in LIST_COLUMNS and isinstance(state, dict)}
    text = json.dumps(kept, sort_keys=True, separators=(",", ":"), ensure_ascii=False) if kept else ""
    return text if len(text) <= MAX_LIST_FILTER else ""


def _list_sort(pairs) -> tuple[tuple[str, str], ...]:
    """(column, direction) pairs of LIST_COLUMNS and SORT_DIRECTIONS, each column once, in their order;
    anything else (from a URL or the browser) is left out."""
    out: dict[str, str] = {}
    for pair in pairs:
        if (isinstance(pair, (list, tuple)) and len(pair) == 2 and all(isinstance(p, str) for p in pair)
                and pair[0] in LIST_COLUMNS and pair[1] in SORT_DIRECTIONS):
            out.setdefault(pair[0], pair[1])
    return tuple(out.items())


@dataclass(frozen=True)
class FilterState:
    text: str = ""
    selectors: tuple[Selector, ...] = ()  # tags, authors and venues with AND, OR or NOT, in formula order
    year_min: int | None = None
    year_max: int | None = None
    paper: str | None = None  # the selected paper (or a work outside the corpus: its OpenAlex id)
    similar: str | None = None  # keep only this paper and its nearest papers ("select similar")
    colour: str = "category"
    edges: str = "tags"
    size: str = DEFAULT_SIZE  # one of survey.neighbourhood.SIZE_MEASURES
    columns: tuple[str, ...] = DEFAULT_COLUMNS  # the paper list's columns shown (of LIST_COLUMNS, in its order)
    list_sort: tuple[tuple[str, str], ...] = ()  # the list's sort: (column, "asc" or "desc"), first key first
    list_filter: str = ""  # the list's column filters: ``list_filter_json`` of the grid's filter model

    def __post_init__(self):  # AND, OR, NOT (tags, authors, venues within each), as added within those
        object.__setattr__(self, "selectors", tuple(sorted(self.selectors, key=lambda t: _RANK[t.op, t.kind])))
        object.__setattr__(self, "columns", tuple(column for column in LIST_COLUMNS if column in self.columns))
        object.__setattr__(self, "list_sort", _list_sort(self.list_sort))

    @classmethod
    def from_url(cls, search: str | None) -> "FilterState":
        """The state of a URL's query string; parts that do not parse are left out."""
        params = parse_qs((search or "").lstrip("?"))
        first = {k: v[0] for k, v in params.items() if v}
        try:
            low, high = parse_years(first["years"]) if "years" in first else (None, None)
        except ValueError:
            low = high = None
        selectors: dict[tuple[str, str], Selector] = {}  # one selector per (kind, value): the first word of the URL wins
        for name, value in parse_qsl((search or "").lstrip("?")):
            if name in _URL_SELECTORS and value:
                op, kind = _URL_SELECTORS[name]
                selectors.setdefault((kind, value), Selector(op, kind, value))
        shown = parse_qs((search or "").lstrip("?"), keep_blank_values=True).get("cols")  # blank: none shown
        try:
            model = json.loads(first.get("listfilter", ""))
        except ValueError:
            model = None
        return cls(text=first.get("q", ""), selectors=tuple(selectors.values()), year_min=low, year_max=high,
                   paper=first.get("paper"), similar=first.get("similar"),
                   colour=first["colour"] if first.get("colour") in COLOUR_MODES else "category",
                   edges=first["edges"] if first.get("edges") in EDGE_MODES else "tags",
                   size=first["size"] if first.get("size") in SIZE_MEASURES else DEFAULT_SIZE,
                   columns=tuple(shown[0].split(",")) if shown else DEFAULT_COLUMNS,
                   list_sort=tuple(tuple(part.split(":", 1)) for part in first.get("sort", "").split(",") if part),
                   list_filter=list_filter_json(model))

    def to_url(self) -> str:
        params: list[tuple[str, str]] = []
        if self.text:
            params.append(("q", self.text))
        params += [(_URL_KEYS[selector.op, selector.kind], selector.value) for selector in self.selectors]
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
        if self.columns != DEFAULT_COLUMNS:
            params.append(("cols", ",".join(self.columns)))
        if self.list_sort:
            params.append(("sort", ",".join(f"{column}:{direction}" for column, direction in self.list_sort)))
        if self.list_filter:
            params.append(("listfilter", self.list_filter))
        return "?" + urlencode(params) if params else ""

    @property
    def list_filter_model(self) -> dict:
        """The list's filter model, as the grid takes it."""
        return json.loads(self.list_filter) if self.list_filter else {}

    def query(self, nearest: Callable[[str], Iterable[str]] | None = None) -> Query:
        """The filter as a ``Query``; ``nearest(key)``: the papers nearest to ``key``, needed (and
        asked once) when ``similar`` is set."""
        keys = None
        if self.similar:
            if nearest is None:
                raise ValueError("a state with `similar` needs `nearest` to know which papers are near")
            keys = frozenset([self.similar, *nearest(self.similar)])
        return Query(text=self.text, selectors=self.selectors, year_min=self.year_min, year_max=self.year_max, keys=keys)

    @classmethod
    def with_tags(cls, require: tuple[str, ...] = (), exclude: tuple[str, ...] = (), **fields) -> "FilterState":
        """A state requiring the tags ``require`` and excluding ``exclude`` (AND and NOT selectors)."""
        selectors = tuple(Selector("and", "tag", t) for t in require) + tuple(Selector("not", "tag", t) for t in exclude)
        return cls(selectors=selectors, **fields)

    @property
    def require(self) -> tuple[str, ...]:
        """The tags of the AND selectors."""
        return tuple(t.value for t in self.selectors if t.kind == "tag" and t.op == "and")

    @property
    def exclude(self) -> tuple[str, ...]:
        """The tags of the NOT selectors."""
        return tuple(t.value for t in self.selectors if t.kind == "tag" and t.op == "not")

    def selector(self, kind: str, value: str) -> Selector | None:
        return next((t for t in self.selectors if (t.kind, t.value) == (kind, value)), None)

    def selecting(self) -> tuple[Selector, ...]:
        """The selectors that select (AND and OR), in order; the first SELECTION_COLOURS get a colour each."""
        return tuple(t for t in self.selectors if t.op != "not")

    def cycle_selector(self, kind: str, value: str) -> "FilterState":
        """A click in a cloud: not used -> AND (required) -> NOT (excluded) -> not used; an OR selector
        (set with its chip's operator) goes to NOT too."""
        selector = self.selector(kind, value)
        if selector is None:
            return self.replace(selectors=self.selectors + (Selector("and", kind, value),))
        if selector.op == "not":
            return self.replace(selectors=tuple(t for t in self.selectors if t != selector))
        return self._with_op(selector, "not")

    def cycle_tag(self, tag: str) -> "FilterState":
        return self.cycle_selector("tag", tag)

    def next_op(self, chip: str) -> "FilterState":
        """A chip's operator button: AND -> OR -> NOT -> AND (the selector joins those of its new operator,
        which keep their order)."""
        selector = self.chip_selector(chip)
        return self._with_op(selector, NEXT_OP[selector.op]) if selector else self

    def _with_op(self, selector: Selector, op: str) -> "FilterState":
        return self.replace(selectors=tuple(Selector(op, t.kind, t.value) if t == selector else t for t in self.selectors))

    def chip_selector(self, chip: str) -> Selector | None:
        """The selector a chip id names (``chip_id``); None for other chips."""
        name, _, value = chip.partition("=")
        selector = Selector(*_URL_SELECTORS[name], value) if name in _URL_SELECTORS else None
        return selector if selector in self.selectors else None

    def with_years(self, low: int | None, high: int | None) -> "FilterState":
        return self.replace(year_min=low, year_max=high)

    def chips(self) -> list[tuple[str, str]]:
        """``(chip id, label)`` of every active filter, for removable chips; a selector's id is its URL
        parameter (``tag=method:GAN``, ``or-author=Xin Yi``)."""
        chips = [("q", f"text: {self.text}")] if self.text else []
        chips += [(chip_id(t), selector_label(t) if t.op == "and" else f"{t.op} {selector_label(t)}") for t in self.selectors]
        if self.year_min is not None or self.year_max is not None:
            chips.append(("years", f"years: {self.year_min or '…'}–{self.year_max or '…'}"))
        if self.similar:
            chips.append(("similar", f"similar to {self.similar}"))
        return chips

    def without_chip(self, chip: str) -> "FilterState":
        kind, _, value = chip.partition("=")
        if kind == "q":
            return self.replace(text="")
        if (selector := self.chip_selector(chip)) is not None:
            return self.replace(selectors=tuple(t for t in self.selectors if t != selector))
        if kind == "years":
            return self.with_years(None, None)
        if kind == "similar":
            return self.replace(similar=None)
        return self

    def replace(self, **changes) -> "FilterState":
        return dataclasses.replace(self, **changes)


def chip_id(selector: Selector) -> str:
    return f"{_URL_KEYS[selector.op, selector.kind]}={selector.value}"


def selector_label(selector: Selector) -> str:
    """A selector as its chip names it (beside its operator): ``method:GAN``, ``author: Xin Yi``."""
    return selector.value if selector.kind == "tag" else f"{selector.kind}: {selector.value}"

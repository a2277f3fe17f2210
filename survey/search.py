"""Search over the corpus: a full-text index (SQLite FTS5, in memory) and a small query language.

The query language, as the explorer's search box and ``survey list --search`` read it:
  gan                words match at word starts: GAN, GANs, GAN-based; not organ, began
  Muller             accents and case do not matter: Müller, MÜLLER
  unet, u-net        hyphens and spaces are equal, and may be left out: U-Net, U Net, UNet
  "scene graph"      a phrase: these words in this order; quoted words match whole ("gan" is not GANs,
                     "gan"* is)
  gan OR diffusion   either; OR (or |) binds closer than the implicit AND between terms
  -survey            not (also NOT survey)
  author:, title:, venue:, year:, tag:, key:, abstract:
                     a term in one field only: author:muller, title:"image synthesis",
                     year:2019, year:2018-2020, year:2020-, tag:CT, tag:modality:CT
A query is never an error: user text is never passed raw to FTS5 (every term is quoted), and
what cannot be read as the language (a stray quote, a dangling OR, ``field:`` with no value)
is read as plain words or left out.

How the index makes "unet" find "U-Net" and "U Net" (and "u-net" find "UNet"): besides each
field as written, it holds the field's *joined* forms in a column ``FIELD_j``. A hyphenated
compound (``U-Net-based``: parts joined by a hyphen or an apostrophe) gives every join from
each part to its end (``unetbased``, ``netbased``), which a word matches at its start like any
other token: "unet" finds U-Net, U-Nets and U-Net-based. Two words apart by white space
(``U Net``) give their join, marked (``JOIN_MARK + "unet"``) so that a word's prefix never
reaches it and only the whole word does: a space is weak evidence of a compound, and "into"
must not find "in tomography". Space joins are made in the short fields (title, authors,
venue, tags), not in abstracts, where they would double the index and be mostly noise. A query
word with inner punctuation (``u-net``) matches its parts as a phrase or its join as one word.
The marks (and the barrier between authors or tags, and the token every row holds) are
private-use characters, which ``fold`` removes from queries: no user term can reach them.

Folding: text and query go through the same ``fold`` (compatibility decomposition, combining
accents dropped, case folded) before FTS5's own unicode61 tokenizer with ``remove_diacritics 2``
sees them; LaTeX accents are decoded when the corpus is loaded (``{\\"u}`` is already ü).
"""

from __future__ import annotations

import functools
import logging
import re
import sqlite3
import threading
import unicodedata
import weakref
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from survey.records import as_int

log = logging.getLogger(__name__)

__all__ = ["SearchIndex", "SearchUnavailable", "index_for", "parse", "to_match", "highlight_terms",
           "highlight_spans", "highlight_ranges", "fold", "Term", "ParsedQuery"]

# query field -> the index field it searches
FIELD_NAMES = {"author": "authors", "authors": "authors", "title": "title", "venue": "venue",
               "journal": "venue", "booktitle": "venue", "year": "year", "tag": "tags", "tags": "tags",
               "keyword": "tags", "keywords": "tags", "key": "key", "abstract": "abstract"}
# index fields with a column of joined forms (FIELD_j); key and year have none
_JOINED_FIELDS = ("title", "authors", "venue", "tags", "abstract")
_SPACE_JOINED_FIELDS = ("title", "authors", "venue", "tags")
_COLUMNS = ("key", "year", *(f"{f}{s}" for f in _JOINED_FIELDS for s in ("", "_j")), "everything")
JOIN_MARK = "\ue001"  # before a space join: a token that only the whole word reaches
_EVERY_ROW = "\ue002"  # the token of column "everything": the universe for a query of only NOTs
_UNIVERSE = f'"{_EVERY_ROW}"'

_PREFIX = "1 2 3"  # prefix indexes: a word of 1-3 letters (as one types) reads one list, not many
MAX_TERMS = 64  # a query's terms beyond this (a pasted abstract) are left out: each costs a lookup

_HYPHENS = "-\u2010\u2011'\u2019"  # links of a compound: hyphen, Unicode hyphens, apostrophes
_WORD = re.compile(r"[^\W_]+")
_TO_HYPHEN = str.maketrans({h: "-" for h in _HYPHENS[1:]})
_CHAIN = re.compile(r"(?<![^\W_])[^\W_]++(?:-[^\W_]++)+")  # possessive: no backtracking
# the combining accents that decomposition leaves (Latin, Greek, Cyrillic and their extensions)
_MARKS = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")
_PRIVATE = re.compile("[\ue000-\uf8ff\U000f0000-\U0010ffff]")
_BARRIER = " \ue000 "  # between authors and between tags, so that no phrase spans two of them
# a token of original text, accents written as combining marks included (for highlighting)
_RAW_TOKEN = re.compile("(?:[^\\W_]|[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f])+")
_FIELD_PREFIX = re.compile(r"([A-Za-z]+):")
_YEARS = re.compile(r"^\s*(\d{1,4})?\s*(?:(-|–|\.\.)\s*(\d{1,4})?)?\s*$")


class SearchUnavailable(RuntimeError):
    """This Python's SQLite cannot build the index (no FTS5, or one too old for its options)."""


def fold(text: str) -> str:
    """Text as the index compares it: case folded, compatibility-decomposed (ﬁ -> fi, ² -> 2),
    combining accents dropped (Müller -> muller), private-use characters made spaces."""
    if text.isascii():
        return text.lower()
    text = unicodedata.normalize("NFKD", text.casefold())
    text = _PRIVATE.sub(" ", _MARKS.sub("", text))
    return unicodedata.normalize("NFC", text)


# --------------------------------------------------------------------------------- the query language


@dataclass(frozen=True)
class Term:
    """One term of a query: words (``parts``, folded) or a year range, in one field or all
    (``field`` None); ``exact``: quoted, so its last word must match whole."""
    parts: tuple[str, ...] = ()
    field: str | None = None  # an index field name (see FIELD_NAMES)
    exact: bool = False
    negated: bool = False
    years: tuple[int, int] | None = None


@dataclass(frozen=True)
class ParsedQuery:
    """The AND of OR-groups of terms; no group: the query matches everything."""
    groups: tuple[tuple[Term, ...], ...] = ()

    def terms(self) -> list[Term]:
        return [t for group in self.groups for t in group]


@dataclass(frozen=True)
class _Token:
    text: str
    quoted: bool = False
    negated: bool = False
    field: str | None = None
    star: bool = False


def _lex(query: str, plain: bool) -> list[_Token]:
    """The query's tokens; ``plain``: every chunk a plain word (no quotes, fields or minus)."""
    if plain:
        return [_Token(chunk) for chunk in query.replace('"', " ").split()]
    tokens, i, n = [], 0, len(query)
    while i < n:
        if query[i].isspace():
            i += 1
            continue
        negated = False
        if query[i] == "-" and i + 1 < n and not query[i + 1].isspace():
            negated, i = True, i + 1
        field = None
        m = _FIELD_PREFIX.match(query, i)
        if m and m.group(1).lower() in FIELD_NAMES:
            i = m.end()
            if i >= n or query[i].isspace():  # "author:" still being typed: nothing yet
                continue
            field = FIELD_NAMES[m.group(1).lower()]
        if query[i] == '"':
            close = query.find('"', i + 1)
            if close >= 0:
                text, i = query[i + 1:close], close + 1
                star = i < n and query[i] == "*"
                tokens.append(_Token(text, True, negated, field, star))
                i += star
                continue
            i += 1  # an unbalanced quote: left out, what follows read as words
        j = i
        while j < n and not query[j].isspace() and query[j] != '"':
            j += 1
        tokens.append(_Token(query[i:j], False, negated, field))
        i = j
    return tokens


def _parts(text: str, word_char: Callable[[str], bool] | None) -> tuple[str, ...]:
    """The words of folded text: runs of word characters (``word_char``: the index's tokenizer's
    own test of a non-ASCII character; by default, letters and digits)."""
    if word_char is None or text.isascii():
        return tuple(_WORD.findall(text))
    parts, current = [], []
    for c in text:
        if c.isalnum() if c.isascii() else word_char(c):
            current.append(c)
        elif current:
            parts.append("".join(current))
            current = []
    return tuple(parts + (["".join(current)] if current else []))


def _year_range(text: str) -> tuple[int, int] | None:
    m = _YEARS.match(text)
    if not m or not (m.group(1) or m.group(3)):
        return None
    low = int(m.group(1)) if m.group(1) else 0
    high = int(m.group(3)) if m.group(3) else (9999 if m.group(2) else low)
    return (min(low, high), max(low, high))


def _term(token: _Token, word_char) -> Term | None:
    if token.field == "year":
        if years := _year_range(token.text):
            return Term(field="year", negated=token.negated, years=years)
        token = _Token(f"year {token.text}", token.quoted, token.negated)  # not a year: plain words
    parts = _parts(fold(token.text), word_char)
    if not parts:
        return None
    return Term(parts, token.field, exact=token.quoted and not token.star, negated=token.negated)


_OR, _AND, _NOT = ("OR", "|"), ("AND", "&&", "&"), ("NOT",)


def parse(query: str, word_char: Callable[[str], bool] | None = None, plain: bool = False) -> ParsedQuery:
    """The terms of a query, grouped; pure. ``word_char``: which (folded) characters the index
    counts as word characters (default: letters and digits); ``plain``: read every chunk as
    plain words, as a query that the language cannot read is."""
    tokens = _lex(query or "", plain)
    groups: list[list[Term]] = []
    join_next = negate_next = False
    for token in tokens:
        bare = not (token.quoted or token.negated or token.field or plain)
        if bare and token.text in _OR:
            join_next = bool(groups)  # a leading OR joins nothing
            continue
        if bare and token.text in _AND:
            continue
        if bare and token.text in _NOT:
            negate_next = True
            continue
        term = _term(token, word_char)
        if term is None:
            continue
        if negate_next:
            term, negate_next = Term(term.parts, term.field, term.exact, not term.negated, term.years), False
        if join_next and groups:
            groups[-1].append(term)
        else:
            groups.append([term])
        join_next = False
    if not groups and any(t.text in _OR + _AND + _NOT for t in tokens) and not plain:
        return parse(query, word_char, plain=True)  # only operators: they were words ("OR": operating room)
    kept, count = [], 0
    for group in groups:
        if count + len(group) > MAX_TERMS:
            break
        kept.append(tuple(group))
        count += len(group)
    return ParsedQuery(tuple(kept))


def _quoted(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _columns(field: str | None) -> list[str] | None:
    """The columns of one index field (as written, and its joins); None: every column (no user
    term reaches the private-use tokens of column "everything")."""
    if field is None:
        return None
    return [field, f"{field}_j"] if field in _JOINED_FIELDS else [field]


def _in(columns: list[str] | None, expression: str) -> str:
    return expression if columns is None else "{" + " ".join(columns) + "} : " + expression


def _year_prefixes(low: int, high: int) -> list[str]:
    """Prefixes of four-digit years that together cover ``low..high`` exactly: 2018-2020 ->
    2018, 2019, 202 would be too much, so 2018, 2019, 2020; 1990-2019 -> 199, 200, 201."""
    low, high = max(low, 0), min(high, 9999)

    def cover(prefix: str, start: int, size: int) -> list[str]:
        end = start + size - 1
        if high < start or low > end:
            return []
        if low <= start and end <= high and prefix:
            return [prefix]
        step = size // 10
        return [p for d in range(10) for p in cover(prefix + str(d), start + d * step, step)]

    return cover("", 0, 10000)


def _term_match(term: Term) -> str:
    if term.years is not None:
        prefixes = _year_prefixes(*term.years)
        return _in(["year"], "(" + " OR ".join(_quoted(p) + ("" if len(p) == 4 else "*") for p in prefixes) + ")")
    star = "" if term.exact else "*"
    joined = "".join(term.parts)
    options = [_quoted(" ".join(term.parts)) + star]  # the words (a phrase), or hyphen joins: U-Net for unet
    if len(term.parts) > 1:  # u-net: also UNet, and the hyphen join of U-Net
        options.append(_quoted(joined) + star)
    if len(term.parts) > 1 or not term.exact:  # unet, u-net: the space join of U Net
        options.append(_quoted(JOIN_MARK + joined))
    return _in(_columns(term.field), options[0] if len(options) == 1 else "(" + " OR ".join(options) + ")")


def to_match(query: str | ParsedQuery) -> str | None:
    """The FTS5 MATCH expression of a query (None: it matches everything); pure."""
    parsed = parse(query) if isinstance(query, str) else query
    everything = _UNIVERSE
    positive, negative = [], []
    for group in parsed.groups:
        if len(group) == 1 and group[0].negated:
            negative.append(_term_match(group[0]))
            continue
        options = [f"({everything} NOT {_term_match(t)})" if t.negated else _term_match(t) for t in group]
        positive.append(options[0] if len(options) == 1 else "(" + " OR ".join(options) + ")")
    if not positive and not negative:
        return None
    expression = " AND ".join(positive) if positive else everything
    if negative:
        expression = f"({expression}) NOT ({' OR '.join(negative)})"
    return expression


# --------------------------------------------------------------------------------- highlighting


def highlight_terms(query: str, field: str = "title") -> list[str]:
    """The words a query looks for in ``field`` (title, author, venue, tag, abstract, key), folded,
    a phrase as one string: what the list can show as matched. Negated terms are not matched."""
    seen: list[str] = []
    for term in _shown_terms(query, field):
        words = " ".join(term.parts)
        if words not in seen:
            seen.append(words)
    return seen


def highlight_spans(text: str, query: str, field: str = "title") -> list[tuple[str, bool]]:
    """``text`` cut into ``(piece, matched)`` spans, in order (the pieces join to ``text``): which
    words of it the query's terms for ``field`` match, by the index's rules (word starts, joined
    compounds, phrases, exact quoted words)."""
    terms = _shown_terms(query, field)
    if not text or not terms:
        return [(text, False)] if text else []
    marked = [False] * len(text)
    for start, end in _places(text, terms):
        marked[start:end] = [True] * (end - start)
    spans, start = [], 0
    for i in range(1, len(text) + 1):
        if i == len(text) or marked[i] != marked[start]:
            spans.append((text[start:i], marked[start]))
            start = i
    return spans


def highlight_ranges(texts, query: str, field: str = "title") -> list[list[tuple[int, int]]]:
    """For each of ``texts``, the ``(start, end)`` of each matched piece of ``highlight_spans``, in
    order: the query read once, and a text that cannot hold any of its terms passed over, so that
    the thousands of titles of a list are marked in a fraction of a second."""
    terms = _shown_terms(query, field)
    out = []
    for text in texts:
        places = sorted(_places(text, terms)) if terms and isinstance(text, str) and text else []
        merged: list[tuple[int, int]] = []
        for start, end in places:  # overlapping or touching places are one piece
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
            else:
                merged.append((start, end))
        out.append(merged)
    return out


def _places(text: str, terms: list[Term]) -> list[tuple[int, int]]:
    """``(start, end)`` of each place in ``text`` where one of ``terms`` matches (they may overlap)."""
    tokens, links, run = _text_tokens(text)
    if not any("".join(term.parts) in run for term in terms):  # every kind of match lies within the run
        return []
    return [(tokens[first][0], tokens[last][1]) for term in terms for first, last in _term_spans(term, tokens, links)]


@functools.lru_cache(maxsize=1 << 16)
def _text_tokens(text: str) -> tuple[tuple[tuple[int, int, str], ...], tuple[str, ...], str]:
    """``text``'s tokens (start, end, folded word), the links between neighbours (``links[k]``:
    tokens k and k+1) and the words run together; kept, as a list marks the same titles again as
    the user types."""
    tokens = tuple((m.start(), m.end(), "".join(_WORD.findall(fold(m.group())))) for m in _RAW_TOKEN.finditer(text))
    links = tuple(_link(text[a[1]:b[0]]) for a, b in zip(tokens, tokens[1:]))
    return tokens, links, "".join(word for _, _, word in tokens)


def _shown_terms(query: str, field: str) -> list[Term]:
    """The terms of ``query`` that a match in ``field`` shows: not negated, no year range, for
    that field or any."""
    wanted = FIELD_NAMES.get(field, field)
    return [t for t in parse(query).terms() if not t.negated and t.years is None and t.field in (None, wanted)]


def _link(separator: str) -> str:
    if len(separator) == 1 and separator in _HYPHENS:
        return "h"
    return "s" if separator and separator.isspace() else ""


def _term_spans(term: Term, tokens: list[tuple[int, int, str]], links: list[str]):
    """(first, last) token numbers of each place where ``term`` matches."""
    words, parts, exact = [t[2] for t in tokens], term.parts, term.exact
    joined = "".join(parts)

    def fits(word: str, part: str, last: bool) -> bool:
        return word == part if (exact or not last) else word.startswith(part)

    for i, word in enumerate(words):
        if not (word.startswith(joined) or joined.startswith(word)):  # every match below begins so
            continue
        # the parts as a phrase (one word: the word itself)
        if i + len(parts) <= len(words) and all(
                fits(words[i + k], p, k == len(parts) - 1) for k, p in enumerate(parts)):
            yield i, i + len(parts) - 1
            continue
        if len(parts) > 1 and fits(words[i], joined, True):  # u-net: UNet
            yield i, i
            continue
        # a hyphenated compound from word i on, joined, begins with (or, quoted, is) the term
        j, chain = i, words[i]
        while len(chain) < len(joined) and j < len(links) and links[j] == "h":
            j += 1
            chain += words[j]
        end = j
        while exact and end < len(links) and links[end] == "h":
            end += 1
            chain += words[end]
        if j > i and (chain == joined if exact else chain.startswith(joined)):
            yield i, end if exact else j
            continue
        # two words apart by white space, joined, are the term (not for one quoted word: see _term_match)
        if (len(parts) > 1 or not exact) and i < len(links) and links[i] == "s" and words[i] + words[i + 1] == joined:
            yield i, i + 1


# --------------------------------------------------------------------------------- the index


class SearchIndex:
    """The full-text index of one corpus table, built once; ``match`` answers a query with a
    row mask. The table must not be changed after (the explorer's snapshots never are). Safe to
    query from several threads."""

    def __init__(self, table: pd.DataFrame):
        self._lock = threading.RLock()
        self._connection = _connect()
        self.size = len(table)
        self.keys = np.asarray(table["key"].tolist() if "key" in table else [""] * len(table), dtype=object)
        names = ", ".join(_COLUMNS)
        placeholders = ", ".join("?" * (len(_COLUMNS) + 1))
        with self._connection:
            self._connection.executemany(f"INSERT INTO papers(rowid, {names}) VALUES ({placeholders})",
                                         _rows(table))
        self._separators: dict[str, bool] = {}

    def match(self, query: str) -> np.ndarray:
        """Which rows (in table order) the query matches, as a boolean array; never an error."""
        with self._lock:
            expression = to_match(parse(query, self._word_char))
            if expression is None:
                return np.ones(self.size, dtype=bool)
            try:
                return self.execute(expression)
            except sqlite3.OperationalError as err:  # a bug of to_match; the query's plain words meanwhile
                log.warning("search %r: %s; searching its plain words", query, err)
                expression = to_match(parse(query, self._word_char, plain=True))
                return np.ones(self.size, dtype=bool) if expression is None else self.execute(expression)

    def execute(self, expression: str) -> np.ndarray:
        """The rows an FTS5 MATCH expression (``to_match``'s) matches; sqlite3.OperationalError if
        it is not valid FTS5."""
        with self._lock:
            # one string of rowids made in SQLite: a Python row per match would cost 3x (4 ms at 10k)
            found = self._connection.execute("SELECT group_concat(rowid) FROM papers WHERE papers MATCH ?",
                                             (expression,)).fetchone()[0]
        mask = np.zeros(self.size, dtype=bool)
        if found:
            mask[np.fromstring(found, dtype=np.int64, sep=",") - 1] = True
        return mask

    def mask(self, query: str, index: pd.Index | None = None) -> pd.Series:
        """``match`` as a Series over the table's index (or ``index``)."""
        return pd.Series(self.match(query), index=index if index is not None else pd.RangeIndex(self.size))

    def matching_keys(self, query: str) -> list[str]:
        """The keys of the papers the query matches, in table order."""
        return self.keys[self.match(query)].tolist()

    def _word_char(self, c: str) -> bool:
        """Whether FTS5's tokenizer counts the (folded, non-ASCII) character as part of a word: its
        Unicode tables are older than Python's, and a letter it does not know is a separator."""
        known = self._separators.get(c)
        if known is None:
            with self._connection:
                self._connection.execute("DELETE FROM probe")
                self._connection.execute("INSERT INTO probe(rowid, t) VALUES (1, ?)", (f"q{c}q",))
            known = bool(self._connection.execute("SELECT 1 FROM probe WHERE probe MATCH '\"q q\"'").fetchall())
            self._separators[c] = known
        return not known


def _connect() -> sqlite3.Connection:
    connection = sqlite3.connect(":memory:", check_same_thread=False)
    options = "tokenize='unicode61 remove_diacritics 2', columnsize=0"
    try:
        connection.execute(f"CREATE VIRTUAL TABLE papers USING fts5({', '.join(_COLUMNS)}, {options}, "
                           f"prefix='{_PREFIX}')")
        connection.execute(f"CREATE VIRTUAL TABLE probe USING fts5(t, {options})")
    except sqlite3.OperationalError as err:
        connection.close()
        raise SearchUnavailable(
            f"the search index needs SQLite's FTS5 extension with unicode61 remove_diacritics 2 (SQLite 3.27 "
            f"or later), but this Python's sqlite3 has SQLite {sqlite3.sqlite_version}: {err}. Use a Python "
            f"built with FTS5 (the python.org, Debian/Ubuntu and conda builds are)") from err
    return connection


def _rows(table: pd.DataFrame):
    """One row of index columns per paper, rowid = position + 1."""
    n = len(table)

    def column(name: str, default) -> list:
        return table[name].tolist() if name in table else [default] * n

    keys, titles, venues = column("key", ""), column("title", ""), column("venue", "")
    authors, years, abstracts = column("authors", []), column("year", None), column("abstract", "")
    tags, free, tagset = column("tags", None), column("free_tags", None), column("tagset", ())
    for i in range(n):
        paper_tags = _tag_texts(tags[i], free[i], tagset[i])
        fields = {"title": [_text(titles[i])], "authors": [_text(a) for a in (authors[i] or ())],
                  "venue": [_text(venues[i])], "tags": paper_tags, "abstract": [_text(abstracts[i])]}
        values = [fold(_text(keys[i])), _year(years[i])]
        for name in _JOINED_FIELDS:
            pieces = [fold(p) for p in fields[name]]
            values += [_BARRIER.join(pieces), _joins(pieces, name in _SPACE_JOINED_FIELDS)]
        values.append(_EVERY_ROW)
        yield (i + 1, *values)


def _joins(pieces: list[str], spaces: bool) -> str:
    """The hyphen joins (and, ``spaces``, the marked space joins) of a field's folded pieces."""
    joins = []
    for piece in pieces:
        linked = piece.translate(_TO_HYPHEN) if not piece.isascii() else piece.replace("'", "-")
        if "-" in linked:  # str methods first: a regular expression over every abstract costs 4x
            chains = _CHAIN.findall(" ".join([chunk for chunk in linked.split() if "-" in chunk]))
            joins += [chain.replace("-", "") for chain in chains]
            for chain in chains:  # U-Net-based: netbased too
                if chain.count("-") > 1:
                    parts = chain.split("-")
                    joins += ["".join(parts[k:]) for k in range(1, len(parts) - 1)]
        if spaces:
            joins += _space_joins(piece)
    return " ".join(joins)


def _space_joins(piece: str) -> list[str]:
    """The marked join of each two words apart by white space only (str methods: a regular
    expression over every title costs 4x)."""
    chunks = piece.split()
    joins = []
    for a, b in zip(chunks, chunks[1:]):
        if a[-1].isalnum() and b[0].isalnum():
            if not (a.isalnum() and b.isalnum()):  # "(U Net)": the words next to the space
                a, b = _WORD.findall(a)[-1], _WORD.findall(b)[0]
            joins.append(JOIN_MARK + a + b)
    return joins


def _tag_texts(tags, free, tagset) -> list[str]:
    """``category value`` of each tag, and each free tag."""
    if isinstance(tags, dict):
        out = [f"{c} {v}" for c, values in tags.items() for v in values]
        return out + [str(t) for t in (free or ())]
    return [str(t).replace(":", " ", 1) for t in (tagset or ())]


def _text(value) -> str:
    if isinstance(value, str):
        return value
    try:
        missing = value is None or bool(pd.isna(value))
    except (TypeError, ValueError):  # a list or an array: not a missing scalar
        missing = False
    return "" if missing else str(value)


def _year(value) -> str:
    year = as_int(value)
    return "" if year is None else str(year).zfill(4)


# one index per table object, for as long as the table lives
_INDEXES: dict[int, tuple[weakref.ref, int, SearchIndex]] = {}
_INDEXES_LOCK = threading.Lock()


def index_for(table: pd.DataFrame) -> SearchIndex:
    """The index of ``table``, built at the first call and kept while the table lives (the explorer's
    snapshot table: one build per corpus version)."""
    with _INDEXES_LOCK:
        found = _INDEXES.get(id(table))
        if found and found[0]() is table and found[1] == len(table):
            return found[2]
        index = SearchIndex(table)
        key = id(table)
        _INDEXES[key] = (weakref.ref(table, lambda _ref: _forget(key, _ref)), len(table), index)
        return index


def _forget(key: int, ref: weakref.ref) -> None:
    # no lock: a collection inside index_for (which holds it) may call this; dict steps are atomic
    if _INDEXES.get(key, (None,))[0] is ref:
        _INDEXES.pop(key, None)

"""One BibTeX entry as one row of the corpus table: decoded, typed and ready to search.

Kept free of pandas so that the worker processes that parse a large file in parts start fast.
"""

from __future__ import annotations

import functools
import hashlib
import re
import urllib.parse

from survey import latex
from survey.bibfile import (Block, EntryBlock, entry_block, macro_lookups, parse_segment, segments,
                            undefined_macro_issues)
from survey.tags import parse_keywords

REVIEW_FIELDS = ("review-category", "review-number", "review-topic", "review-what",
                 "review-why", "review-how", "review-evaluation", "reproduction")

_REVIEW_COLUMNS = tuple((name, name.replace("-", "_")) for name in REVIEW_FIELDS)

# The first four-digit number: "2020", "{2020}", "1982--1983", "2019a", "c. 1781"; not "n.d.".
_YEAR = re.compile(r"(?<!\d)(\d{4})(?!\d)")
# biblatex's date (ISO 8601 / EDTF): "2019", "2019-05", "2019-05-03", "1984/1986", "2019-05/2019-06"
_DATE = re.compile(r"^\s*(\d{4})(?:-(\d{2}))?")
_MONTH_NAMES = {name: i for i, name in enumerate(
    "jan feb mar apr may jun jul aug sep oct nov dec".split(), start=1)}
# doi:, https://doi.org/, dx.doi.org, doi.acm.org, wiley's and others' resolvers, in any case
_DOI_PREFIX = re.compile(r"^(?:doi:\s*|(?:https?://)?(?:dx\.)?doi(?:\.acm|\.wiley)?\.(?:org|com)/)",
                         re.IGNORECASE)


def entry_row(e: EntryBlock, file: str) -> dict:
    """The table row of one entry (the columns of ``corpus.COLUMNS``)."""
    f = e.fields
    tags, free = parse_keywords(f.get("keywords", ""))
    title = latex.to_text(f.get("title", ""))
    authors = [_author(a) for a in split_authors(f.get("author", ""))]
    year, month = year_and_month(f)
    venue = latex.to_text(next((f[name] for name in VENUE_FIELDS if f.get(name, "").strip()), ""))
    review = {column: latex.to_text(f[name]) if name in f else None for name, column in _REVIEW_COLUMNS}
    number = review["review_number"]
    review["review_number"] = int(number) if number and number.isdigit() else None
    abstract = latex.to_text(f["abstract"]) if "abstract" in f else ""
    return {
        "key": e.key, "entry_type": e.entry_type, "title": title, "authors": authors,
        "year": year, "month": month, "venue": venue,
        "location": latex.to_text(f.get("location") or f.get("address") or ""), "doi": normalise_doi(f.get("doi", "")), "url": f.get("url", "").strip(),
        "abstract": abstract, "tags": tags, "free_tags": free,
        "tagset": frozenset([f"{c}:{v}" for c, vs in tags.items() for v in vs] + free),
        "references": f.get("references", "").replace(",", " ").split(),
        **review, "file": file, "line": e.line, "raw": e.raw, "fields": f,
    }


# where a paper appeared, in the order a reader looks for it (biblatex's names beside BibTeX's)
VENUE_FIELDS = ("journal", "journaltitle", "booktitle", "eventtitle", "series", "howpublished",
                "school", "institution", "organization", "publisher", "eprinttype")


def year_and_month(fields: dict[str, str]) -> tuple[int | None, int | None]:
    """Year and month from BibTeX's ``year``/``month`` or biblatex's ``date`` (a range: its start)."""
    year = month = None
    if m := _YEAR.search(fields.get("year", "")):
        year = int(m.group(1))
    date = _DATE.match(fields.get("date", ""))
    if year is None and date:
        year = int(date.group(1))
    text = fields.get("month", "").strip().lower()
    if text.isdigit() and 1 <= int(text) <= 12:
        month = int(text)
    elif text[:3] in _MONTH_NAMES:
        month = _MONTH_NAMES[text[:3]]
    elif date and date.group(2) and 1 <= int(date.group(2)) <= 12 and int(date.group(1)) == year:
        month = int(date.group(2))
    return year, month


_AND = re.compile(r"\s+and\s+", re.IGNORECASE)


def split_authors(value: str) -> list[str]:
    """Names of an author field, split on ``and`` outside braces (``{Barnes and Noble}`` is one)."""
    if not value.strip():
        return []
    value = value.strip()
    if "{" not in value:  # every "and" splits
        return [name.strip() for name in _AND.split(value) if name.strip()]
    cuts = [m for m in _AND.finditer(value)
            if value.count("{", 0, m.start()) == value.count("}", 0, m.start())]  # not inside braces
    starts = [0] + [m.end() for m in cuts]
    ends = [m.start() for m in cuts] + [len(value)]
    return [value[a:b].strip() for a, b in zip(starts, ends) if value[a:b].strip()]


@functools.lru_cache(maxsize=65536)
def _author(name: str) -> str:
    """One author as shown; names recur across a library, and a row shares the one string."""
    return latex.to_text(display_name(name))


def display_name(name: str) -> str:
    """``Last, First`` as ``First Last``; other forms unchanged."""
    parts = [p.strip() for p in _split_top_level_commas(name)]
    if len(parts) == 2:
        return f"{parts[1]} {parts[0]}".strip()
    if len(parts) == 3:  # Last, Jr, First
        return f"{parts[2]} {parts[0]} {parts[1]}".strip()
    return name.strip()


def _split_top_level_commas(name: str) -> list[str]:
    if "{" not in name:
        return name.split(",")
    parts, depth, start = [], 0, 0
    for i, c in enumerate(name):
        depth += (c == "{") - (c == "}")
        if c == "," and depth == 0:
            parts.append(name[start:i])
            start = i + 1
    return parts + [name[start:]]


def as_int(value) -> int | None:
    """A nullable number cell (year, review number) as an int, or None where it is missing.

    pandas' ``NA`` has no truth value, so ``x != x`` is no test for it; ``int()`` refuses NA,
    NaN and None alike.
    """
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def normalise_doi(doi: str) -> str:
    """A DOI in one form, so that two spellings compare equal: no resolver prefix, lower case
    (DOIs are case-insensitive), percent-escapes decoded, no trailing punctuation."""
    doi = urllib.parse.unquote(_DOI_PREFIX.sub("", doi.strip()))
    return doi.strip().rstrip(".,;").lower()


def entry_record(block: Block, segment: str, strings: dict[str, str], source: str) -> list:
    """What the load cache keeps of an entry of ``segment``: ``[lookups, row, issues, raw, checks]``,
    the @string values it was read with (it holds while they do, see ``record_holds``), its row,
    its undefined-macro issues as ``(line, field, message)`` with lines from the segment's start,
    where its raw text is in the segment (the row keeps none: the segment has it), and its own
    validation issues once they are known (see ``corpus._EntryChecks``)."""
    row = entry_row(entry_block(block, strings), source)
    row["raw"] = None
    lookups, issues = macro_lookups(block), ()
    if lookups:  # else every value is enclosed: no macro, none undefined
        issues = tuple((i.line - 1, i.field, i.message) for i in undefined_macro_issues(block, strings, source))
        lookups = tuple((name, strings.get(name)) for name in lookups)
    return [lookups, row, issues, (segment.find(block.raw), len(block.raw)), None]


def placed_row(row: dict, source: str, line: int, raw: str) -> dict:
    """A cached row (one per segment text) for this file and line: a copy, as rows are changed later."""
    row = dict(row)
    row["file"], row["line"], row["raw"] = source, line, raw
    return row


def record_holds(record: list, strings: dict[str, str]) -> bool:
    return all(strings.get(name) == value for name, value in record[0])


def parse_piece(piece: str, source: str, strings: dict[str, str]) -> list[tuple[bytes, list]]:
    """``(digest, segment record)`` for each segment of a piece of a file (see ``segment_record``).

    Runs in a worker process; the piece holds no @string, so ``strings`` hold throughout.
    """
    return [(segment_digest(segment), segment_record(segment, strings, source))
            for _, _, segment in segments(piece)]


def segment_record(segment: str, strings: dict[str, str], source: str) -> list:
    """The blocks of a segment as the load cache keeps them: ``[block, entry record or None]``
    each, an entry's fields dropped where its record holds them."""
    items = []
    for block in parse_segment(segment):
        if block.kind == "entry" and block.key.strip():
            items.append([tuple(block._replace(fields=(), raw="")), entry_record(block, segment, strings, source)])
        else:
            items.append([tuple(block), None])
    return items


def segment_digest(segment: str) -> bytes:
    return hashlib.sha1(segment.encode("utf-8", "surrogatepass"), usedforsecurity=False).digest()

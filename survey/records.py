"""One BibTeX entry as one row of the corpus table: decoded, typed and ready to search.

Kept free of pandas so that the worker processes that parse a large file in parts start fast.
"""

from __future__ import annotations

import dataclasses
import re
import urllib.parse

from survey import latex
from survey.bibfile import EntryBlock, parse_text
from survey.issues import Issue
from survey.tags import parse_keywords

REVIEW_FIELDS = ("review-category", "review-number", "review-topic", "review-what",
                 "review-why", "review-how", "review-evaluation", "reproduction")


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
    authors = [latex.to_text(display_name(a)) for a in split_authors(f.get("author", ""))]
    year, month = year_and_month(f)
    venue = latex.to_text(next((f[name] for name in VENUE_FIELDS if f.get(name, "").strip()), ""))
    review = {name.replace("-", "_"): latex.to_text(f[name]) if name in f else None for name in REVIEW_FIELDS}
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
        # what the search box matches against, lower-cased once
        "search": " ".join([e.key, title, " ".join(authors), venue, f.get("keywords", ""), abstract]).lower(),
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
    cuts = [m for m in _AND.finditer(value)
            if value.count("{", 0, m.start()) == value.count("}", 0, m.start())]  # not inside braces
    starts = [0] + [m.end() for m in cuts]
    ends = [m.start() for m in cuts] + [len(value)]
    return [value[a:b].strip() for a, b in zip(starts, ends) if value[a:b].strip()]


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


def parse_piece(piece: str, source: str, first_line: int, offset: int,
                strings: dict[str, str]) -> tuple[list[dict], list[Issue], list[str]]:
    """Rows, issues and @preambles of a piece of a file that starts at ``first_line`` and ``offset``.

    Runs in a worker process. What goes back is pickled, so each row's raw text, which the
    parent has already, is sent as its ``(start, end)`` in the whole file (see ``complete_row``).
    """
    bib = parse_text(piece, source, strings)
    shift = first_line - 1
    rows, cursor = [], 0
    for e in bib.entries:
        e.line += shift
        row = entry_row(e, source)
        start = piece.find(e.raw, cursor)  # blocks come in order, so this finds the next one
        cursor = start + len(e.raw)
        row["raw"] = (offset + start, offset + cursor)
        rows.append(row)
    issues = [dataclasses.replace(i, line=i.line + shift) if i.line else i for i in bib.issues]
    return rows, issues, bib.preambles


def complete_row(row: dict, text: str) -> dict:
    """A row from ``parse_piece`` made whole again, given the file's text."""
    start, end = row["raw"]
    row["raw"] = text[start:end]
    return row

"""Checks on a corpus table: required fields, DOI syntax, years, tags, duplicates.

Everything here reads the table that ``survey.corpus`` builds and returns ``Issue``s; nothing
is changed or dropped. Errors are only what makes an entry unusable: no key, a block that does
not parse (both found by ``survey.bibfile``) and a key that the corpus already uses. Everything
else is a warning that a careful reviewer would look at: a missing field, an odd year, a DOI
that is not one, a tag outside the vocabulary, a possible duplicate. Real libraries are full
of those, and none of them stops a paper from being listed, searched or imported.
"""

from __future__ import annotations

import datetime
import itertools
import re
from collections import defaultdict
from typing import NamedTuple

import numpy as np
import pandas as pd
from rapidfuzz import fuzz, process

from survey.issues import Issue
from survey.tags import Vocabulary

# Required fields per entry type and dialect; "a|b" means either will do. BibTeX's are those of
# its standard styles (btxdoc); biblatex's those of its manual (section 2.1.1), with the aliases
# it accepts (journal for journaltitle, school for institution, year for date).
REQUIRED_BIBTEX = {
    "article": ("author", "title", "journal", "year"),
    "inproceedings": ("author", "title", "booktitle", "year"),
    "conference": ("author", "title", "booktitle", "year"),
    "book": ("author|editor", "title", "publisher", "year"),
    "incollection": ("author", "title", "booktitle", "publisher", "year"),
    "inbook": ("author|editor", "title", "chapter|pages", "publisher", "year"),
    "phdthesis": ("author", "title", "school", "year"),
    "mastersthesis": ("author", "title", "school", "year"),
    "techreport": ("author", "title", "institution", "year"),
    "proceedings": ("title", "year"),
    "unpublished": ("author", "title", "note"),
}
_DATED = "year|date"
REQUIRED_BIBLATEX = {
    "article": ("author", "title", "journaltitle|journal", _DATED),
    "book": ("author|editor", "title", _DATED), "mvbook": ("author|editor", "title", _DATED),
    "inbook": ("author", "title", "booktitle", _DATED), "bookinbook": ("author", "title", "booktitle", _DATED),
    "booklet": ("author|editor", "title", _DATED),
    "collection": ("editor", "title", _DATED), "mvcollection": ("editor", "title", _DATED),
    "incollection": ("author", "title", "booktitle", _DATED),
    "manual": ("author|editor", "title", _DATED), "misc": ("author|editor", "title", _DATED),
    "online": ("author|editor", "title", _DATED, "url|doi|eprint"),
    "patent": ("author", "title", "number", _DATED), "periodical": ("editor", "title", _DATED),
    "proceedings": ("title", _DATED), "mvproceedings": ("title", _DATED),
    "inproceedings": ("author", "title", "booktitle", _DATED),
    "report": ("author", "title", "institution|school", _DATED),
    "thesis": ("author", "title", "institution|school", _DATED),
    "phdthesis": ("author", "title", "institution|school", _DATED),
    "mastersthesis": ("author", "title", "institution|school", _DATED),
    "techreport": ("author", "title", "institution|school", _DATED),
    "unpublished": ("author", "title", _DATED),
}
DEFAULT_REQUIRED = ("title",)
# What marks a file as biblatex: fields and entry types that BibTeX's standard styles do not know.
BIBLATEX_FIELDS = frozenset({"date", "journaltitle", "eventtitle", "maintitle", "origdate", "eventdate",
                             "xdata", "entryset", "shortjournal"})
BIBLATEX_SHARE = 0.1
BIBLATEX_TYPES = frozenset({"online", "thesis", "report", "software", "dataset", "mvbook", "collection",
                            "mvcollection", "periodical", "patent", "set", "xdata", "mvproceedings",
                            "bookinbook", "suppbook", "reference", "inreference"})
DOI_SYNTAX = re.compile(r"^10\.\d{4,9}/\S+$")
FIRST_YEAR = 1450  # printed books: anything earlier is a typo more likely than a source
NEAR_DUPLICATE_SCORE = 90
_LARGE_GROUP = 64  # titles in a group scored as a matrix of its own (64 give 2,016 pairs)
_PREPRINT = re.compile(r"arxiv|biorxiv|medrxiv|ssrn|preprint", re.IGNORECASE)


def file_dialects(table: pd.DataFrame) -> dict[str, str]:
    """Per file, "biblatex" when at least a tenth of its entries use a biblatex field or type
    (a stray ``location`` from a reference manager does not make a BibTeX file biblatex), else "bibtex"."""
    marked = [t in BIBLATEX_TYPES or not BIBLATEX_FIELDS.isdisjoint(f) for t, f in zip(table["entry_type"], table["fields"])]
    share = pd.Series(marked, index=table.index, dtype=float).groupby(table["file"]).mean()
    return {file: "biblatex" if s >= BIBLATEX_SHARE else "bibtex" for file, s in share.items()}


def validate_table(table: pd.DataFrame, vocabulary: Vocabulary) -> list[Issue]:
    issues: list[Issue] = []
    last_year = datetime.date.today().year + 1
    # plain lists: iterating pandas' nullable columns row by row costs ten times more
    columns = ["key", "entry_type", "file", "line", "year", "doi", "tags", "fields", "dialect"]
    for values in zip(*(table[c].tolist() for c in columns)):
        issues.extend(entry_issues(EntryView(*values), vocabulary, last_year))
    return issues + across_entries(table)


def across_entries(table: pd.DataFrame) -> list[Issue]:
    """The checks that compare entries with each other: shared DOIs, near-duplicate titles, citations of
    keys the corpus lacks. Their messages name the other entry's line, so they are never cached."""
    return _duplicate_dois(table[table["doi"] != ""]) + near_duplicate_titles(table) + _dangling_references(table)


class EntryView(NamedTuple):
    """The columns of one table row that the per-entry checks read."""
    key: str
    entry_type: str
    file: str
    line: int
    year: int | None
    doi: str
    tags: dict[str, list[str]]
    fields: dict[str, str]
    dialect: str = "bibtex"


def required_fields(entry_type: str, dialect: str) -> tuple[str, ...]:
    table = REQUIRED_BIBLATEX if dialect == "biblatex" else REQUIRED_BIBTEX
    return table.get(entry_type, DEFAULT_REQUIRED)


def entry_issues(row: EntryView, vocabulary: Vocabulary, last_year: int) -> list[Issue]:
    """Problems of one entry on its own: all of them warnings (see the module's docstring)."""
    out = []

    def warn(code, field, message):
        out.append(Issue("warning", code, row.file, row.line, row.key, field, message))

    fields = row.fields
    for need in required_fields(row.entry_type, row.dialect):
        if not any(fields.get(name, "").strip() for name in need.split("|")):
            if need.startswith("journal") and _PREPRINT.search(" ".join(fields.get(n, "") for n in (
                    "eprint", "eprinttype", "archiveprefix", "arxivid", "url", "note", "publisher"))):
                warn("preprint", "journal", "no journal: a preprint (BibTeX styles print it without one)")
                continue
            known = row.entry_type in (REQUIRED_BIBLATEX if row.dialect == "biblatex" else REQUIRED_BIBTEX)
            why = f"{row.dialect}'s @{row.entry_type} asks for it" if known else "it is listed untitled"
            warn("missing-field", need.split("|")[0], f"{' or '.join(need.split('|'))} missing or empty ({why})")
    for name in ("year", "date"):
        text = fields.get(name, "").strip()
        if text and (pd.isna(row.year) or not FIRST_YEAR <= row.year <= last_year):
            warn("bad-year", name, f"'{text}' gives no year from {FIRST_YEAR} to {last_year}; "
                                   "the paper is listed without a year")
            break
    if fields.get("doi", "").strip() and not DOI_SYNTAX.match(row.doi):
        warn("bad-doi", "doi", f"'{fields['doi'].strip()}' is not a DOI (expected 10.NNNN/suffix)")
    number = fields.get("review-number", "").strip()
    if number and not number.isdigit():
        warn("bad-number", "review-number", f"'{number}' is not a whole number")
    for code, message in vocabulary.unknown(row.tags):
        warn(code, "keywords", message)
    return out


def _duplicate_dois(table: pd.DataFrame) -> list[Issue]:
    out = []
    repeated = table[table.duplicated("doi", keep=False)]
    for value, group in repeated.groupby("doi", sort=False):
        first = group.iloc[0]
        for row in group.iloc[1:].itertuples(index=False):
            out.append(Issue("warning", "duplicate-doi", row.file, int(row.line), row.key, "doi",
                             f"DOI '{value}' is also used by [{first.key}] at {first.file}:{first.line}: "
                             "a possible duplicate"))
    return out


_NON_WORD = re.compile(r"[\W_]+")
_ASCII_NON_WORD = bytes(c if chr(c).isalnum() else 32 for c in range(128)).ljust(256, b" ")  # to a space


def normalise_title(title: str) -> str:
    """Lower case, each run of non-word characters one space; an ASCII title (most) through a
    byte table, which gives what the pattern gives at a quarter of its cost."""
    if title.isascii():
        return " ".join(title.lower().encode().translate(_ASCII_NON_WORD).decode().split())
    return _NON_WORD.sub(" ", title.lower()).strip()


def near_duplicate_titles(table: pd.DataFrame) -> list[Issue]:
    """Titles equal after normalising, or nearly equal (rapidfuzz ratio >= 90) with the same
    numbers in them (so "STOC 2023" and "STOC 2024", or "Part I" and "Part II", are not flagged).

    Comparing every pair is quadratic (50M pairs at 10k entries), so only titles that share
    their first or their last 20 characters, and their numbers, are compared: a typo changes one
    end at most, and titles that differ in a number are never flagged (3,000 numbered "Report N"
    titles would otherwise give 4.5M pairs to score and drop).
    The pairs of small groups are scored in one call (one per group cost 0.1 s at 10k entries);
    a large group (many "Introduction" chapters) gets its own matrix, as its pairs would not fit.
    """
    titles = [normalise_title(t) for t in table["title"].tolist()]
    blocks: dict[tuple[str, tuple[str, ...]], list[int]] = defaultdict(list)
    for i, t in enumerate(titles):
        if len(t) >= 10:
            compact, numbers = t.replace(" ", ""), tuple(_NUMBERS.findall(t))
            blocks["<" + compact[:20], numbers].append(i)
            blocks[">" + compact[-20:], numbers].append(i)
    pairs, candidates = set(), set()
    for members in blocks.values():
        if len(members) > _LARGE_GROUP:
            scores = process.cdist([titles[i] for i in members], [titles[i] for i in members],
                                   scorer=fuzz.ratio, score_cutoff=NEAR_DUPLICATE_SCORE, dtype=np.uint8)
            pairs.update((members[a], members[b]) for a, b in zip(*np.nonzero(np.triu(scores, k=1))))
        elif len(members) > 1:
            candidates.update(itertools.combinations(members, 2))  # members ascend: (low, high)
    candidates = sorted(candidates - pairs)
    if candidates:
        scores = process.cpdist([titles[a] for a, _ in candidates], [titles[b] for _, b in candidates],
                                scorer=fuzz.ratio, score_cutoff=NEAR_DUPLICATE_SCORE, dtype=np.uint8)
        pairs.update(candidates[k] for k in np.flatnonzero(scores))
    keys, files, lines, shown = (table[c].tolist() for c in ("key", "file", "line", "title"))
    return [Issue("warning", "near-duplicate-title", files[b], int(lines[b]), keys[b], "title",
                  f"title nearly the same as [{keys[a]}] at {files[a]}:{lines[a]}: '{shown[a]}'")
            for a, b in sorted(pairs)]


_NUMBERS = re.compile(r"\d+|\b[ivx]+\b")  # digits and roman numerals (normalised titles are lower case)


def _dangling_references(table: pd.DataFrame) -> list[Issue]:
    keys = set(table["key"])
    out = []
    for row in table[table["references"].map(bool)].itertuples(index=False):
        missing = [k for k in row.references if k not in keys]
        if missing:
            out.append(Issue("warning", "unknown-reference", row.file, row.line, row.key, "references",
                             f"cites {', '.join(missing)}, not in the corpus; that citation is not drawn"))
    return out

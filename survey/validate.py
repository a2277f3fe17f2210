"""Checks on a corpus table: required fields, DOI syntax, years, tags, duplicates.

Everything here reads the table that ``survey.corpus`` builds and returns ``Issue``s; nothing
is changed or dropped. Errors are what makes an entry wrong (a missing title, a DOI used
twice); warnings are what a careful reviewer would look at (a tag outside the vocabulary,
two titles that differ by a typo).
"""

from __future__ import annotations

import datetime
import re
from collections import defaultdict
from typing import NamedTuple

import numpy as np
import pandas as pd
from rapidfuzz import fuzz, process

from survey.issues import Issue
from survey.tags import Vocabulary

# BibTeX's required fields per entry type; "a|b" means either will do.
REQUIRED = {
    "article": ("author", "title", "journal|journaltitle", "year|date"),
    "inproceedings": ("author", "title", "booktitle", "year|date"),
    "conference": ("author", "title", "booktitle", "year|date"),
    "book": ("author|editor", "title", "publisher", "year|date"),
    "incollection": ("author", "title", "booktitle", "publisher", "year|date"),
    "inbook": ("author|editor", "title", "chapter|pages", "publisher", "year|date"),
    "phdthesis": ("author", "title", "school", "year|date"),
    "mastersthesis": ("author", "title", "school", "year|date"),
    "techreport": ("author", "title", "institution", "year|date"),
    "proceedings": ("title", "year|date"),
    "unpublished": ("author", "title", "note"),
}
DEFAULT_REQUIRED = ("title",)
DOI_SYNTAX = re.compile(r"^10\.\d{4,9}/\S+$")
FIRST_YEAR = 1800
NEAR_DUPLICATE_SCORE = 90


def validate_table(table: pd.DataFrame, vocabulary: Vocabulary) -> list[Issue]:
    issues: list[Issue] = []
    last_year = datetime.date.today().year + 1
    # plain lists: iterating pandas' nullable columns row by row costs ten times more
    columns = ["key", "entry_type", "file", "line", "year", "doi", "tags", "fields"]
    for values in zip(*(table[c].tolist() for c in columns)):
        issues.extend(entry_issues(EntryView(*values), vocabulary, last_year))
    issues.extend(_duplicates(table, "key", "duplicate-key", "entry key"))
    issues.extend(_duplicates(table[table["doi"] != ""], "doi", "duplicate-doi", "DOI"))
    issues.extend(near_duplicate_titles(table))
    issues.extend(_dangling_references(table))
    return issues


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


def entry_issues(row: EntryView, vocabulary: Vocabulary, last_year: int) -> list[Issue]:
    """Problems of one entry on its own."""
    out = []

    def issue(severity, code, field, message):
        out.append(Issue(severity, code, row.file, row.line, row.key, field, message))

    fields = row.fields
    for need in REQUIRED.get(row.entry_type, DEFAULT_REQUIRED):
        if not any(fields.get(name, "").strip() for name in need.split("|")):
            issue("error", "missing-field", need.split("|")[0],
                  f"required for @{row.entry_type} but missing or empty")
    year = fields.get("year", "").strip()
    if year and (pd.isna(row.year) or not FIRST_YEAR <= row.year <= last_year):
        issue("error", "bad-year", "year", f"'{year}' is not a plausible year ({FIRST_YEAR}-{last_year})")
    if fields.get("doi", "").strip() and not DOI_SYNTAX.match(row.doi):
        issue("error", "bad-doi", "doi", f"'{fields['doi'].strip()}' is not a DOI (expected 10.NNNN/suffix)")
    number = fields.get("review-number", "").strip()
    if number and not number.isdigit():
        issue("error", "bad-number", "review-number", f"'{number}' is not a whole number")
    if vocabulary.categories:
        for category, values in row.tags.items():
            known = vocabulary.categories.get(category)
            if known is None:
                issue("warning", "unknown-category", "keywords",
                      f"tag category '{category}' is not declared in tags.toml "
                      f"(declared: {', '.join(vocabulary.categories)})")
            else:
                for value in values:
                    if value not in known:
                        issue("warning", "unknown-tag", "keywords",
                              f"'{category}:{value}' is not in the vocabulary of '{category}'")
    return out


def _duplicates(table: pd.DataFrame, column: str, code: str, label: str) -> list[Issue]:
    out = []
    repeated = table[table.duplicated(column, keep=False)]
    for value, group in repeated.groupby(column, sort=False):
        first = group.iloc[0]
        for row in group.iloc[1:].itertuples(index=False):
            out.append(Issue("error", code, row.file, row.line, row.key, column,
                             f"{label} '{value}' is also used by [{first.key}] at {first.file}:{first.line}"))
    return out


_NON_WORD = re.compile(r"[\W_]+")


def normalise_title(title: str) -> str:
    return _NON_WORD.sub(" ", title.lower()).strip()


def near_duplicate_titles(table: pd.DataFrame) -> list[Issue]:
    """Titles equal after normalising, or nearly equal (rapidfuzz ratio >= 90).

    Comparing every pair is quadratic (50M pairs at 10k entries), so only titles that share
    their first or their last 20 characters are compared: a typo changes one end at most.
    """
    titles = [normalise_title(t) for t in table["title"]]
    blocks: dict[str, list[int]] = defaultdict(list)
    for i, t in enumerate(titles):
        if len(t) >= 10:
            compact = t.replace(" ", "")
            blocks["<" + compact[:20]].append(i)
            blocks[">" + compact[-20:]].append(i)
    pairs = set()
    for members in blocks.values():
        if len(members) < 2:
            continue
        scores = process.cdist([titles[i] for i in members], [titles[i] for i in members],
                               scorer=fuzz.ratio, score_cutoff=NEAR_DUPLICATE_SCORE, dtype=np.uint8)
        for a, b in zip(*np.nonzero(np.triu(scores, k=1))):
            pairs.add((min(members[a], members[b]), max(members[a], members[b])))
    out = []
    for first_i, second_i in sorted(pairs):
        first, second = table.iloc[first_i], table.iloc[second_i]
        if first.key != second.key:  # same key is reported as a duplicate key already
            out.append(Issue("warning", "near-duplicate-title", second.file, second.line, second.key, "title",
                             f"title nearly the same as [{first.key}] at {first.file}:{first.line}: "
                             f"'{first.title}'"))
    return out


def _dangling_references(table: pd.DataFrame) -> list[Issue]:
    keys = set(table["key"])
    out = []
    for row in table[table["references"].map(bool)].itertuples(index=False):
        missing = [k for k in row.references if k not in keys]
        if missing:
            out.append(Issue("warning", "unknown-reference", row.file, row.line, row.key, "references",
                             f"cites {', '.join(missing)}, not in the corpus; that citation is not drawn"))
    return out

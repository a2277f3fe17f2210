"""Fields an entry takes from the entries it names in ``crossref`` (BibTeX, biblatex) or ``xdata``
(biblatex), for display, search and validation; the file itself is never changed.

dblp writes each conference paper as an ``@inproceedings`` with ``crossref = {DBLP:conf/x/2024}``
and the proceedings' year, booktitle and publisher only in that parent, at the end of the file.
A child keeps every field it has; it takes the parent's others, and for a part of a
proceedings, collection or book the parent's ``title`` becomes its ``booktitle`` (biblatex's
default inheritance; BibTeX parents such as dblp's carry ``booktitle`` themselves).
"""

from __future__ import annotations

from survey.bibfile import EntryBlock
from survey.issues import Issue
from survey.records import entry_row

# never inherited: they identify or describe the parent itself (biblatex's "noinherit" set)
OWN_FIELDS = frozenset({"crossref", "xdata", "xref", "ids", "entryset", "label", "shorthand", "sortkey",
                        "options", "related", "keywords", "references"} | {
    # this project's own fields belong to one paper
    "review-category", "review-number", "review-topic", "review-what", "review-why", "review-how",
    "review-evaluation", "reproduction"})
PART_TYPES = frozenset({"inproceedings", "incollection", "inbook", "bookinbook", "suppbook",
                        "suppcollection", "conference", "inreference"})
MAX_DEPTH = 8  # a chain longer than this is a cycle or a mistake; stop there


def inherit(rows: list[dict], parents: list[dict] = ()) -> list[Issue]:
    """Replace each row of ``rows`` that names a crossref or xdata parent by the row of its
    completed fields (its raw text unchanged); parents are looked up among ``rows`` and
    ``parents`` (say, the corpus an input is added to) by lower-case key, as BibTeX does. A
    warning for each parent that is not there."""
    by_key = {r["key"].lower(): r for r in [*parents, *rows]}
    issues = []
    for i, row in enumerate(rows):
        if "crossref" in row["fields"] or "xdata" in row["fields"]:
            fields, missing = _resolved_fields(row, by_key)
            issues += [Issue("warning", "unknown-crossref", row["file"], row["line"], row["key"], name,
                             f"names [{key}], which is not in the corpus; the fields it would give are missing")
                       for name, key in missing]
            block = EntryBlock(row["key"], row["entry_type"], fields, {}, row["line"], row["raw"])
            rows[i] = entry_row(block, row["file"])
    return issues


def _resolved_fields(row: dict, by_key: dict[str, dict]) -> tuple[dict, list[tuple[str, str]]]:
    """The row's fields completed from its parents, and the (field, key) of each parent not found."""
    fields, missing, seen = dict(row["fields"]), [], {row["key"].lower()}
    pending = [(row, 0)]
    while pending:
        child, depth = pending.pop(0)
        for name in ("xdata", "crossref"):
            for key in _keys(child["fields"].get(name, "")):
                parent = by_key.get(key.lower())
                if parent is None:
                    if child is row:
                        missing.append((name, key))
                elif key.lower() not in seen and depth < MAX_DEPTH:
                    seen.add(key.lower())
                    _inherit(fields, parent["fields"], row["entry_type"])
                    pending.append((parent, depth + 1))
    return fields, missing


def _keys(value: str) -> list[str]:
    return [k.strip() for k in value.split(",") if k.strip()]


def _inherit(fields: dict[str, str], parent: dict[str, str], child_type: str) -> None:
    for name, value in parent.items():
        if name in OWN_FIELDS or name in fields:
            continue
        if name == "title" and child_type in PART_TYPES:
            continue  # the parent's title is the child's booktitle, not its title
        fields[name] = value
    if child_type in PART_TYPES and "booktitle" not in fields and parent.get("title"):
        fields["booktitle"] = parent["title"]  # biblatex's mapping, where the parent has no booktitle

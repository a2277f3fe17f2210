"""Adding entries to a .bib file without losing anything, theirs or ours.

Each new entry is reported as added, a duplicate (of which entry, and why), a possible
duplicate (added only when the user confirms it) or invalid (why, with its line in the input).
Added entries are appended as their raw text, so fields this project does not know survive;
the @string macros they use, the input's @preamble and @comment blocks come along, and the
report says what was left out. Input in another encoding is converted to the target's. The
target is re-read inside its lock, so two writers adding at once both land.
"""

from __future__ import annotations

import datetime
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import NamedTuple

from survey import bibfile, corpus as corpus_mod, validate
from survey.bibfile import BibFile
from survey.records import as_int
from survey.storage import atomic_write, check_writable, locked

STATUSES = ("added", "duplicate", "possible-duplicate", "invalid")


@dataclass
class Outcome:
    key: str | None
    line: int | None  # in the input
    status: str  # one of STATUSES ("would be added" in a dry run is "added")
    reason: str = ""
    duplicate_of: str | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass
class MergeReport:
    source: str
    target: str
    outcomes: list[Outcome]
    written: bool = False
    notes: list[str] = field(default_factory=list)  # the input's encoding, what was carried or left out

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)

    def to_dict(self) -> dict:
        return {"source": self.source, "target": self.target, "written": self.written, "notes": self.notes,
                "outcomes": [asdict(o) for o in self.outcomes]}


def add_bytes(data: bytes, source: str, target: Path, corpus_paths: list[Path] | None = None,
              dry_run: bool = False, confirm: frozenset[str] | bool = frozenset()) -> MergeReport:
    """``add_text`` of raw input: UTF-8 (BOM or not), or a legacy encoding, converted and said so."""
    decoded = bibfile.decode_bytes(data, source)
    report = add_text(decoded.text.lstrip("\ufeff"), source, target, corpus_paths, dry_run, confirm)
    if decoded.encoding != "utf-8" or decoded.issues:
        report.notes.insert(0, f"{Path(source).name}: {decoded.issues[0].message}" if decoded.issues else "")
    return report


def add_text(text: str, source: str, target: Path, corpus_paths: list[Path] | None = None,
             dry_run: bool = False, confirm: frozenset[str] | bool = frozenset()) -> MergeReport:
    """Add the entries of BibTeX ``text`` (named ``source`` in messages) to ``target``.

    Duplicates are looked for in ``corpus_paths`` (all .bib files of the corpus) and the
    target, which are read inside the target's lock. ``confirm``: the input keys of possible
    duplicates to add anyway, or True for all of them. A dry run takes no lock and writes nothing.
    """
    target = Path(target)
    if not dry_run:
        check_writable(target)
    new = bibfile.parse_text(text, source)
    with locked(target, create=not dry_run):
        paths = [Path(p) for p in corpus_paths or []]
        if not any(p.resolve() == target.resolve() for p in paths):
            paths.append(target)
        # A target that does not exist yet is created; it has nothing to be a duplicate of.
        paths = [p for p in paths if p.exists()]
        existing = (corpus_mod.load_corpus(paths) if paths
                    else corpus_mod.build_corpus([], corpus_mod.vocabulary_for([target])[0]))
        current = bibfile.read_decoded(target) if target.exists() else bibfile.Decoded("", "utf-8", [])
        target_strings = next((f.strings for f in existing.files if f.path.resolve() == target.resolve()), {})
        outcomes, blocks = plan(new, existing, target_strings, confirm)
        report = MergeReport(source, str(target), outcomes)
        carried, report.notes = _carried_blocks(new, current.text, blocks) if blocks else ([], [])
        if blocks and not dry_run:
            atomic_write(target, bibfile.encode(appended(current, carried + blocks, source), current.encoding))
            report.written = True
    return report


def plan(new: BibFile, existing: corpus_mod.Corpus, target_strings: dict[str, str],
         confirm: frozenset[str] | bool = frozenset()) -> tuple[list[Outcome], list[str]]:
    """Outcomes per input block and the raw blocks to append (macros first, then entries).

    ``target_strings`` are the @string macros the target file defines already.
    """
    table = existing.table
    by_key = {k: (t, f, line) for k, t, f, line in zip(table["key"], table["title"], table["file"], table["line"])}
    by_doi = {d: k for d, k in zip(table["doi"], table["key"]) if d}
    by_title: dict[str, list[Paper]] = {}
    for title, *paper in zip(table["title"], table["key"], table["entry_type"], table["year"], table["doi"],
                             table["authors"]):
        by_title.setdefault(validate.normalise_title(title), []).append(Paper(*paper))
    known_strings = dict(target_strings)
    outcomes: list[Outcome] = [Outcome(i.key, i.line, "invalid", i.message) for i in new.issues
                               if i.severity == "error"]
    macro_blocks: list[str] = []
    entry_blocks: list[str] = []
    last_year = datetime.date.today().year + 1
    batch = corpus_mod.build_corpus([new], existing.vocabulary, parents=_parent_rows(table)).table
    for entry, row in zip(new.entries, batch.itertuples(index=False)):
        outcome = Outcome(entry.key, entry.line, "added")
        view = validate.EntryView(row.key, row.entry_type, new.path.name, entry.line, row.year, row.doi,
                                  row.tags, row.fields, row.dialect)
        outcome.warnings = [p.message for p in validate.entry_issues(view, existing.vocabulary, last_year)]
        title = validate.normalise_title(row.title)
        paper = Paper(row.key, row.entry_type, row.year, row.doi, row.authors)
        same_title = [(other, differs(paper, other)) for other in by_title.get(title, [])] if title else []
        if row.doi and row.doi in by_doi:
            outcome.status, outcome.duplicate_of = "duplicate", by_doi[row.doi]
            outcome.reason = f"same DOI {row.doi} as [{by_doi[row.doi]}]"
        elif any(not why for _, why in same_title):
            other = next(o for o, why in same_title if not why)
            outcome.status, outcome.duplicate_of = "duplicate", other.key
            outcome.reason = f"same title, first author, type and year as [{other.key}]"
        elif entry.key in by_key:
            other_title, other_file, other_line = by_key[entry.key]
            outcome.status = "invalid"
            outcome.reason = (f"key '{entry.key}' is already used by a different paper "
                              f"('{other_title}', {other_file}:{other_line}); give this entry another key")
        elif same_title and not (confirm is True or entry.key in confirm):
            other, why = same_title[0]
            outcome.status, outcome.duplicate_of = "possible-duplicate", other.key
            outcome.reason = (f"same title as [{other.key}] but {why}; not added unless confirmed "
                              "(a new version, or another paper of that title?)")
        else:
            missing = _macro_conflicts(entry, new, known_strings, macro_blocks)
            if missing:
                outcome.status, outcome.reason = "invalid", missing
            else:
                entry_blocks.append(entry.raw)
                by_key[entry.key] = (row.title, new.path.name, entry.line)
                if row.doi:
                    by_doi[row.doi] = entry.key
                if title:
                    by_title.setdefault(title, []).append(paper)
        outcomes.append(outcome)
    outcomes.sort(key=lambda o: o.line or 0)
    return outcomes, macro_blocks + entry_blocks


class Paper(NamedTuple):
    """What tells two papers of one title apart."""
    key: str
    entry_type: str
    year: int | None
    doi: str
    authors: list[str]


def differs(new: Paper, old: Paper) -> str:
    """Why two papers with the same title may still be different ones ("" when nothing does)."""
    if new.doi and old.doi and new.doi != old.doi:
        return f"a different DOI ({new.doi}, not {old.doi})"
    first, other = _surname(new.authors), _surname(old.authors)
    if first and other and validate.normalise_title(first) != validate.normalise_title(other):
        return f"a different first author ({first}, not {other})"
    if new.entry_type != old.entry_type:
        return f"a different entry type (@{new.entry_type}, not @{old.entry_type})"
    if as_int(new.year) and as_int(old.year) and abs(as_int(new.year) - as_int(old.year)) > 1:
        return f"a different year ({as_int(new.year)}, not {as_int(old.year)})"
    return ""


def _surname(authors: list[str]) -> str:
    """The first author's last word (names are shown as "First Last")."""
    return authors[0].split()[-1] if authors and authors[0].split() else ""


def _parent_rows(table) -> list[dict]:
    """The corpus's entries as rows that an input's crossref may name."""
    return [{"key": k, "fields": f} for k, f in zip(table["key"], table["fields"])]


def _macro_conflicts(entry, new: BibFile, known: dict[str, str], macro_blocks: list[str]) -> str:
    """Bring the @string definitions an entry uses; say why not if the target defines them otherwise."""
    for name in entry.macros:
        if name in known:
            if name in new.strings and new.strings[name] != known[name]:
                return (f"@string '{name}' means '{new.strings[name]}' here but '{known[name]}' in the "
                        "target file; rename the macro or write the value out")
        elif name in new.string_raw:
            known[name] = new.strings[name]
            macro_blocks.append(new.string_raw[name])
    return ""


def _carried_blocks(new: BibFile, target_text: str, blocks: list[str]) -> tuple[list[str], list[str]]:
    """The input's @preamble and @comment blocks that go along (those not in the target already),
    and notes of what was carried and what left out."""
    carried, notes = [], []
    preambles = [p for p in new.preambles if p not in target_text]
    comments = [c for c in new.comments if c not in target_text and not _is_tool_metadata(c)]
    tool_metadata = [c for c in new.comments if _is_tool_metadata(c)]
    carried = preambles + comments
    if carried:
        notes.append(f"carried {len(preambles)} @preamble and {len(comments)} @comment block(s)")
    if tool_metadata:
        notes.append(f"left out {len(tool_metadata)} @comment block(s) of JabRef's settings (jabref-meta): "
                     "they describe the input library's groups, not the target's")
    added = set(blocks)
    unused = sorted(set(new.string_raw) - {m for e in new.entries if e.raw in added for m in e.macros})
    if unused:
        notes.append(f"left out {len(unused)} @string macro(s) that no added entry uses: {', '.join(unused)}")
    return carried, notes


def _is_tool_metadata(comment: str) -> bool:
    return comment.lstrip("@ \t").lower().startswith(("comment{jabref-meta", "comment(jabref-meta"))


def appended(current: bibfile.Decoded, blocks: list[str], source: str) -> str:
    """The target's text with ``blocks`` after it, under a line naming where they came from, in
    the target's own line endings."""
    stamp = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M")
    newline = current.newline
    head = current.text.rstrip("\r\n") + newline * 2 if current.text.strip() else current.text
    body = f"% added from {Path(source).name} on {stamp}\n" + "\n\n".join(b.replace("\r\n", "\n") for b in blocks)
    return head + (body + "\n").replace("\n", newline)

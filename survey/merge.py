"""Adding entries to a .bib file without losing anything, theirs or ours.

Each new entry is reported as added, a duplicate (of which entry, and why) or invalid (why,
with its line in the input). Added entries are appended as their raw text, so fields this
project does not know survive; the @string macros they use come along. The target is
re-read inside its lock, so two writers adding at once both land.
"""

from __future__ import annotations

import datetime
from dataclasses import asdict, dataclass, field
from pathlib import Path

from survey import bibfile, corpus as corpus_mod, validate
from survey.bibfile import BibFile
from survey.storage import atomic_write, locked


@dataclass
class Outcome:
    key: str | None
    line: int | None  # in the input
    status: str  # "added", "duplicate" or "invalid" ("would be added" in a dry run is "added")
    reason: str = ""
    duplicate_of: str | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass
class MergeReport:
    source: str
    target: str
    outcomes: list[Outcome]
    written: bool = False

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)

    def to_dict(self) -> dict:
        return {"source": self.source, "target": self.target, "written": self.written,
                "outcomes": [asdict(o) for o in self.outcomes]}


def add_text(text: str, source: str, target: Path, corpus_paths: list[Path] | None = None,
             dry_run: bool = False) -> MergeReport:
    """Add the entries of BibTeX ``text`` (named ``source`` in messages) to ``target``.

    Duplicates are looked for in ``corpus_paths`` (all .bib files of the corpus) and the
    target, which are read inside the target's lock.
    """
    target = Path(target)
    new = bibfile.parse_text(text, source)
    with locked(target):
        paths = [Path(p) for p in corpus_paths or []]
        if not any(p.resolve() == target.resolve() for p in paths):
            paths.append(target)
        # A target that does not exist yet is created; it has nothing to be a duplicate of.
        paths = [p for p in paths if p.exists()]
        existing = (corpus_mod.load_corpus(paths) if paths
                    else corpus_mod.build_corpus([], corpus_mod.vocabulary_for([target])[0]))
        current_text = bibfile.read_text(target)[0] if target.exists() else ""
        target_strings = next((f.strings for f in existing.files if f.path.resolve() == target.resolve()), {})
        outcomes, blocks = plan(new, existing, target_strings)
        report = MergeReport(source, str(target), outcomes)
        if blocks and not dry_run:
            atomic_write(target, bibfile.encode(appended(current_text, blocks, source)))
            report.written = True
    return report


def plan(new: BibFile, existing: corpus_mod.Corpus,
         target_strings: dict[str, str]) -> tuple[list[Outcome], list[str]]:
    """Outcomes per input block and the raw blocks to append (macros first, then entries).

    ``target_strings`` are the @string macros the target file defines already.
    """
    table = existing.table
    by_key = {k: (t, f, line) for k, t, f, line in zip(table["key"], table["title"], table["file"], table["line"])}
    by_doi = {d: k for d, k in zip(table["doi"], table["key"]) if d}
    by_title = {validate.normalise_title(t): (k, y) for t, k, y in zip(table["title"], table["key"], table["year"])}
    known_strings = dict(target_strings)
    outcomes: list[Outcome] = [Outcome(i.key, i.line, "invalid", i.message) for i in new.issues
                               if i.severity == "error"]
    macro_blocks: list[str] = []
    entry_blocks: list[str] = []
    last_year = datetime.date.today().year + 1
    batch = corpus_mod.build_corpus([new], existing.vocabulary).table
    for entry, row in zip(new.entries, batch.itertuples(index=False)):
        outcome = Outcome(entry.key, entry.line, "added")
        view = validate.EntryView(row.key, row.entry_type, new.path.name, entry.line, row.year, row.doi,
                                  row.tags, row.fields)
        problems = validate.entry_issues(view, existing.vocabulary, last_year)
        errors = [p for p in problems if p.severity == "error"]
        outcome.warnings = [p.message for p in problems if p.severity == "warning"]
        title = validate.normalise_title(row.title)
        if row.doi and row.doi in by_doi:
            outcome.status, outcome.duplicate_of = "duplicate", by_doi[row.doi]
            outcome.reason = f"same DOI {row.doi} as [{by_doi[row.doi]}]"
        elif title and title in by_title and _years_close(row.year, by_title[title][1]):
            outcome.status, outcome.duplicate_of = "duplicate", by_title[title][0]
            outcome.reason = f"same title as [{by_title[title][0]}]"
        elif entry.key in by_key:
            other_title, other_file, other_line = by_key[entry.key]
            outcome.status = "invalid"
            outcome.reason = (f"key '{entry.key}' is already used by a different paper "
                              f"('{other_title}', {other_file}:{other_line}); give this entry another key")
        elif errors:
            outcome.status = "invalid"
            outcome.reason = "; ".join(f"{p.field}: {p.message}" if p.field else p.message for p in errors)
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
                    by_title[title] = (entry.key, row.year)
        outcomes.append(outcome)
    outcomes.sort(key=lambda o: o.line or 0)
    return outcomes, macro_blocks + entry_blocks


def _years_close(a, b) -> bool:
    try:
        return abs(int(a) - int(b)) <= 1
    except (TypeError, ValueError):
        return True  # a missing year does not make two equal titles different papers


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


def appended(text: str, blocks: list[str], source: str) -> str:
    stamp = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M")
    head = text.rstrip("\n") + "\n\n" if text.strip() else ""
    note = f"% added from {Path(source).name} on {stamp}\n"
    return head + note + "\n\n".join(blocks) + "\n"

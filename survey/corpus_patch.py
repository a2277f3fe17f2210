"""A reload after a few entries changed, patched onto the last whole-corpus cache.

A full load notes, per file, an outline of its segments (``FileOutline``): each one's digest,
first line, rows and issues, and whether it is *plain*: entry or comment blocks only, none
with anything to report. A later load of changed files reads their segments, keeps the rows
of the segments it finds in the outline (their lines moved) and parses only the new ones.
Only plain segments may come, go or move: a @string, @preamble, an unparsable block, a
repeated key or an undefined macro changes what other entries read or report, and so does a
crossref, so then (and when the vocabulary, the year or a file's dialect changed) ``patched``
gives None and the load reads the files as usual. The checks across entries (duplicates,
near-duplicate titles, references) are always done anew: their messages name other entries'
lines. A patch gives exactly what parsing everything gives (tests/test_load_patch.py).
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from survey import validate
from survey.bibfile import decode_bytes, parse_segment, segments
from survey.issues import Issue
from survey.records import entry_record, placed_row, segment_digest

_PARENT_FIELDS = ("crossref", "xdata")


@dataclass
class FileOutline:
    """One file's segments in order, as the load that cached the corpus read them: per segment
    (digest, first line (0-based), table rows it gave, issues of its own, plain), one tuple each,
    as a load appends them (a tenth of the cost of a list per column)."""
    segments: list[tuple[bytes, int, int, int, bool]] = field(default_factory=list)
    decoded: int = 0  # decoding issues, which open the file's issues

    def columns(self) -> tuple[tuple, tuple, tuple, tuple, tuple]:
        """Digests, first lines, rows, issues and plain, each a tuple in the segments' order."""
        return tuple(zip(*self.segments)) if self.segments else ((), (), (), (), ())

    @property
    def rows(self) -> int:
        return sum(segment[2] for segment in self.segments)

    @property
    def issues(self) -> int:
        """The file's own issues: decoding, then its segments'."""
        return self.decoded + sum(segment[3] for segment in self.segments)


@dataclass
class CorpusIndex:
    """What a patch needs of a cached corpus besides the corpus itself: its issues are, in order,
    each file's (decoding, then its segments'), each row's own (``entry_issues`` per row), then
    the checks across entries."""
    files: list[FileOutline]
    entry_issues: list[int]
    context: tuple  # (code digest, vocabulary digest, last year) the rows' own issues were found with
    dialects: dict[str, str]


def index_of(corpus, outlines: list[FileOutline], entry_issues: list[int], context: tuple) -> CorpusIndex | None:
    """The index of a corpus just loaded, or None when no patch could start from it."""
    table = corpus.table
    if (any(i.code == "duplicate-key" for i in corpus.issues) or sum(o.rows for o in outlines) != len(table)
            or any(not o.segments or len({s[0] for s in o.segments}) < len(o.segments) for o in outlines)
            or any(name in f for f in table["fields"] for name in _PARENT_FIELDS)):
        return None
    dialects = dict(zip(table["file"], table["dialect"]))
    return CorpusIndex(outlines, entry_issues, context, dialects)


@dataclass
class _Patch:
    """The corpus being rebuilt: per row, its position in the cached table (or a new row's
    number among ``new``, from ``len(base)``) and how far its line moved."""
    base_rows: int
    order: list[int] = field(default_factory=list)
    moved: list[int] = field(default_factory=list)
    new: list[dict] = field(default_factory=list)
    bib_issues: list[Issue] = field(default_factory=list)
    parsed: int = 0

    def keep(self, first: int, count: int, moved: int) -> None:
        self.order.extend(range(first, first + count))
        self.moved.extend([moved] * count)

    def add(self, row: dict) -> None:
        self.order.append(self.base_rows + len(self.new))
        self.moved.append(0)
        self.new.append(row)


def patched(base, index: CorpusIndex, paths: list[Path], contents: list[bytes], shas: list[str],
            context: tuple, vocabulary) -> tuple[object, CorpusIndex, int] | None:
    """``base`` (the cached Corpus) brought to the files' contents now, its index, and how many
    segments were parsed; None where only a full load gives the right corpus (see above)."""
    if context != index.context or [f.path for f in base.files] != list(paths):
        return None
    patch, outlines, files = _Patch(len(base.table)), [], []
    row = position = 0  # where each file's rows and issues start in the base
    for info, outline, data, sha in zip(base.files, index.files, contents, shas):
        count, own = outline.rows, outline.issues
        mine = base.issues[position:position + own]
        if sha == info.sha256:
            patch.keep(row, count, 0)
            patch.bib_issues += mine
        elif (outline := _patch_file(patch, info, outline, data, row, mine)) is None:
            return None
        outlines.append(outline)
        files.append(dataclasses.replace(info, sha256=sha))
        row, position = row + count, position + own
    table = _table(base.table, patch, index.dialects)
    if not table["key"].is_unique or validate.file_dialects(table) != index.dialects:
        return None
    found, counts = _own_issues(base.issues, position, index.entry_issues, patch, vocabulary, context[-1],
                                index.dialects)
    across = validate.across_entries(table)
    corpus = dataclasses.replace(base, table=table, files=files, issues=patch.bib_issues + found + across,
                                 vocabulary=vocabulary)
    return corpus, CorpusIndex(outlines, counts, context, index.dialects), patch.parsed


def _patch_file(patch: _Patch, info, outline: FileOutline, data: bytes, first_row: int,
                own_issues: list[Issue]) -> FileOutline | None:
    """Add a changed file's rows and issues to ``patch``; its new outline, or None.
    ``own_issues``: the file's issues in the base (decoding, then its segments')."""
    decoded = decode_bytes(data, str(info.path))
    if (decoded.encoding != info.encoding or decoded.issues != own_issues[:outline.decoded]
            or not decoded.text.strip()):
        return None
    source = str(info.path)
    digests, shifts, rows_of, issues_of, plain = outline.columns()
    rows_at = list(itertools.accumulate(rows_of, initial=first_row))
    issues_at = list(itertools.accumulate(issues_of, initial=outline.decoded))
    fixed_before = list(itertools.accumulate((not p for p in plain), initial=0))
    old = {digest: k for k, digest in enumerate(digests)}
    new, fixed, first_macro_user = FileOutline(decoded=outline.decoded), [], None
    patch.bib_issues += own_issues[:outline.decoded]
    for number, (shift, _, segment) in enumerate(segments(decoded.text)):
        digest = segment_digest(segment)
        k = old.pop(digest, None)
        if k is None:  # new: parsed, if it is plain
            rows = _plain_rows(segment, shift, source, info.strings)
            if rows is None:
                return None
            patch.parsed += 1
            for row in rows:
                if row.pop("_macros") and first_macro_user is None:
                    first_macro_user = number
                patch.add(row)
            new.segments.append((digest, shift, len(rows), 0, True))
            continue
        moved = shift - shifts[k]
        if not plain[k]:
            fixed.append((k, number))
            mine = own_issues[issues_at[k]:issues_at[k + 1]]
            patch.bib_issues += _moved(mine, moved)
        elif fixed_before[k] != len(fixed):  # now after other @strings (and such) than before
            return None
        patch.keep(rows_at[k], rows_of[k], moved)
        new.segments.append((digest, shift, rows_of[k], issues_of[k], plain[k]))
    if [k for k, _ in fixed] != [k for k, is_plain in enumerate(plain) if not is_plain]:
        return None  # a segment that is not plain went, or moved past another
    if first_macro_user is not None and fixed and fixed[-1][1] > first_macro_user:
        return None  # a new entry's macros were read with values defined after it
    return new


def _plain_rows(segment: str, shift: int, source: str, strings: dict[str, str]) -> list[dict] | None:
    """The rows of a new segment when it is plain, each marked ``_macros`` when it uses @string
    values (those of the file's end: the caller checks they hold where it is); else None."""
    rows = []
    for block in parse_segment(segment):
        if block.kind == "comment":
            continue
        if block.kind != "entry" or not block.key.strip():
            return None
        lookups, row, issues, (start, length), _ = entry_record(block, segment, strings, source)
        if issues or any(name in row["fields"] for name in _PARENT_FIELDS):
            return None
        row = placed_row(row, source, shift + block.line + 1, segment[start:start + length])
        row["_macros"] = bool(lookups)
        rows.append(row)
    return rows


def _table(base: pd.DataFrame, patch: _Patch, dialects: dict[str, str]) -> pd.DataFrame:
    """The base table's rows in the patch's order, new rows typed alike, lines moved."""
    frame = base
    if patch.new:
        new = pd.DataFrame(patch.new, columns=base.columns).astype(base.dtypes.to_dict())
        new["dialect"] = new["file"].map(dialects)
        frame = pd.concat([base, new], ignore_index=True)
    table = frame.take(patch.order).reset_index(drop=True)
    if any(patch.moved):
        table["line"] = table["line"].to_numpy() + np.asarray(patch.moved, dtype=table["line"].dtype)
    return table


def _own_issues(issues: list[Issue], start: int, counts: list[int], patch: _Patch, vocabulary,
                last_year: int, dialects: dict[str, str]) -> tuple[list[Issue], list[int]]:
    """Each row's own issues in the patched order, and their counts: a kept row's from the base
    (``counts`` of them per base row, from ``start``), lines moved; a new row's found anew."""
    firsts = list(itertools.accumulate(counts, initial=start))
    found, own = [], []
    for at, moved in zip(patch.order, patch.moved):
        if at < patch.base_rows:
            mine = _moved(issues[firsts[at]:firsts[at + 1]], moved)
        else:
            row = patch.new[at - patch.base_rows]
            view = validate.EntryView(*(row[c] for c in validate.EntryView._fields[:-1]), dialects[row["file"]])
            mine = validate.entry_issues(view, vocabulary, last_year)
        found += mine
        own.append(len(mine))
    return found, own


def _moved(issues: list[Issue], lines: int) -> list[Issue]:
    """``issues`` of a segment or row that moved down ``lines`` lines (up, when negative)."""
    return [dataclasses.replace(i, line=i.line + lines) for i in issues] if lines else issues

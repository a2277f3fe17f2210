"""One .bib file read as blocks, with nothing dropped.

The file's text is the source of truth: every block keeps its raw text and line, so writing
back only ever appends or replaces whole blocks and everything else stays byte for byte.
bibtexparser's splitter finds the blocks; macro references and concatenation (``ISBI #
" 2018"``) are resolved here because its interpolation middleware leaves concatenations as
they are.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from bibtexparser import model
from bibtexparser.splitter import Splitter

from survey.issues import Issue

MONTHS = {m: str(i) for i, m in enumerate(
    "jan feb mar apr may jun jul aug sep oct nov dec".split(), start=1)}


@dataclass
class EntryBlock:
    key: str
    entry_type: str
    fields: dict[str, str]  # lower-case name -> value with macros resolved, enclosing removed
    field_lines: dict[str, int]
    line: int  # 1-based
    raw: str
    macros: list[str] = field(default_factory=list)  # @string names its values use (lower case)


@dataclass
class BibFile:
    path: Path
    text: str
    entries: list[EntryBlock] = field(default_factory=list)
    strings: dict[str, str] = field(default_factory=dict)  # macro name (lower) -> resolved value
    string_raw: dict[str, str] = field(default_factory=dict)  # macro name (lower) -> its @string block
    preambles: list[str] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)


def read_text(path: Path) -> tuple[str, list[Issue]]:
    """The file's text and any encoding issues (see ``decode``)."""
    return decode(Path(path).read_bytes(), str(path))


def decode(data: bytes, source: str) -> tuple[str, list[Issue]]:
    """The text of ``data``; bytes that are not UTF-8 are kept (surrogate escapes) and reported."""
    try:
        return data.decode("utf-8"), []
    except UnicodeDecodeError:
        text = data.decode("utf-8", errors="surrogateescape")
    issues = []
    for number, line in enumerate(text.splitlines(), start=1):
        bad = [c for c in line if "\udc80" <= c <= "\udcff"]
        if bad:
            column = next(i for i, c in enumerate(line, start=1) if "\udc80" <= c <= "\udcff")
            issues.append(Issue(
                "error", "encoding", source, number, None, None,
                f"byte 0x{ord(bad[0]) - 0xDC00:02X} at column {column} is not UTF-8 "
                f"({len(bad)} such byte(s) on this line); kept unchanged, but re-save the file as UTF-8"))
    return text, issues


def encode(text: str) -> bytes:
    """Bytes of ``text`` with any undecodable input bytes restored exactly."""
    return text.encode("utf-8", errors="surrogateescape")


def parse_text(text: str, source: str) -> BibFile:
    """Split ``text`` into blocks; ``source`` names it in messages (a path, or "<stdin>")."""
    bib = BibFile(Path(source), text)
    if not text.strip():
        bib.issues.append(Issue("warning", "empty", source, None, None, None, "the file holds no BibTeX"))
        return bib
    library = Splitter(text).split()
    for block in library.blocks:
        line = (block.start_line or 0) + 1
        if isinstance(block, model.String):
            bib.strings[block.key.lower()] = resolve(block.value, bib.strings)
            bib.string_raw[block.key.lower()] = block.raw
        elif isinstance(block, model.Preamble):
            bib.preambles.append(block.raw)
        elif isinstance(block, model.Entry):
            bib.entries.append(_entry(block, bib.strings, line))
            bib.issues.extend(_undefined_macro_issues(block, bib.strings, source))
        elif isinstance(block, model.ParsingFailedBlock):
            bib.issues.append(_failed(block, source, line))
    return bib


def _entry(block: model.Entry, strings: dict[str, str], line: int) -> EntryBlock:
    fields, lines, macros = {}, {}, []
    for f in block.fields:
        name, value = sys.intern(f.key.lower()), f.value  # interned: pickled once per file, not per entry
        lines[name] = f.start_line + 1
        if value[:1] == "{" and value[-1:] == "}" and "#" not in value:
            fields[name] = value[1:-1]  # the common case: one braced value, no macro
            continue
        fields[name] = resolve(value, strings)
        macros.extend(m.lower() for m in macro_names(value))
    return EntryBlock(block.key, block.entry_type.lower(), fields, lines, line, block.raw, macros)


def _undefined_macro_issues(block: model.Entry, strings: dict[str, str], source: str) -> list[Issue]:
    return [
        Issue("warning", "undefined-macro", source, f.start_line + 1, block.key, f.key.lower(),
              f"@string macro '{name}' is not defined before this entry; its name is used as the text")
        for f in block.fields if f.value[:1] != "{"
        for name in macro_names(f.value) if name.lower() not in strings]


def duplicate_key_issue(source: str, line: int, key: str) -> Issue:
    return Issue("error", "duplicate-key", source, line, key, None,
                 f"entry key '{key}' is used twice in this file; this block is kept in the "
                 "file but left out of the corpus until its key is changed")


def _failed(block: model.ParsingFailedBlock, source: str, line: int) -> Issue:
    key = _raw_key(block.raw or "")
    if isinstance(block, model.DuplicateBlockKeyBlock):
        return duplicate_key_issue(source, line, block.key)
    if isinstance(block, model.DuplicateFieldKeyBlock):
        names = ", ".join(sorted(block.duplicate_keys))
        return Issue("error", "duplicate-field", source, line, key, names,
                     f"field(s) {names} given twice; the entry is kept in the file but left out of "
                     "the corpus until one of them is removed")
    reason = str(block.error).strip() if block.error else ""
    return Issue("error", "unparsable", source, line, key, None,
                 f"block could not be parsed ({reason or 'unbalanced braces or quotes'}); "
                 "it is kept in the file as it is")


# any "@string", even inside a value: a false alarm only costs the parallel parse
_STRING_BLOCK = re.compile(r"@[ \t]*string[ \t]*[{(]", re.IGNORECASE)
# the same block start as bibtexparser's splitter (@type then { or (), at the start of a line
_BLOCK_START = re.compile(r"^[ \t]*@\w*[ \t]*(?=[{(])", re.MULTILINE)


def split_into_parts(text: str, parts: int) -> list[tuple[int, int, str]] | None:
    """``text`` cut into about ``parts`` pieces of whole blocks, as ``(first line, offset, piece)``.

    Cuts fall only before an ``@`` at the start of a line, where bibtexparser's splitter starts
    a new block anyway, so each piece splits exactly as it would within the whole text. None
    when the text defines @string macros: entries would need macros from earlier pieces.
    """
    if _STRING_BLOCK.search(text):
        return None
    cuts = [0]
    for i in range(1, parts):
        m = _BLOCK_START.search(text, max(cuts[-1] + 1, len(text) * i // parts))
        if m is None:
            break
        cuts.append(m.start())
    cuts.append(len(text))
    lines = 1
    pieces = []
    for a, b in zip(cuts, cuts[1:]):
        pieces.append((lines, a, text[a:b]))
        lines += text.count("\n", a, b)
    return pieces


_RAW_KEY = re.compile(r"@\s*\w+\s*[{(]\s*([^,\s]+)\s*,")


def _raw_key(raw: str) -> str | None:
    m = _RAW_KEY.match(raw.lstrip())
    return m.group(1) if m else None


def resolve(value: str, strings: dict[str, str]) -> str:
    """A field value as written (``{...}``, ``"..."``, a number, a macro, or ``a # b``) as text."""
    parts = _split_concatenation(value)
    out = []
    for part in parts:
        part = part.strip()
        if len(part) >= 2 and ((part[0] == "{" and part[-1] == "}") or (part[0] == '"' and part[-1] == '"')):
            out.append(part[1:-1])
        elif part.lower() in strings:
            out.append(strings[part.lower()])
        elif part.lower() in MONTHS:
            out.append(MONTHS[part.lower()])
        else:
            out.append(part)  # a number, or an undefined macro kept as its name
    return "".join(out)


def _split_concatenation(value: str) -> list[str]:
    if "#" not in value:
        return [value]
    parts, depth, quoted, start = [], 0, False, 0
    for i, c in enumerate(value):
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        elif c == '"' and depth == 0:
            quoted = not quoted
        elif c == "#" and depth == 0 and not quoted:
            parts.append(value[start:i])
            start = i + 1
    parts.append(value[start:])
    return parts


def macro_names(value: str) -> list[str]:
    """@string macro names that a raw field value uses (BibTeX's month names excluded)."""
    names = []
    for part in _split_concatenation(value):
        part = part.strip()
        if part and part[0] not in '{"' and not part.isdigit() and part.lower() not in MONTHS:
            names.append(part)
    return names

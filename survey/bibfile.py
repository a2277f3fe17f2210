"""One .bib file read as blocks, with nothing dropped.

The file's text is the source of truth: every block keeps its raw text and line, so writing
back only ever appends or replaces whole blocks and everything else stays byte for byte.
bibtexparser's splitter finds the blocks; macro references and concatenation (``ISBI #
" 2018"``) are resolved here because its interpolation middleware leaves concatenations as
they are.
"""

from __future__ import annotations

import codecs
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from bibtexparser import model
from bibtexparser.splitter import Splitter

from survey.issues import Issue, UserError

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
    comments: list[str] = field(default_factory=list)  # raw @comment blocks
    encoding: str = "utf-8"
    issues: list[Issue] = field(default_factory=list)


@dataclass(frozen=True)
class Decoded:
    text: str
    encoding: str  # "utf-8", or the legacy codec the bytes were read with (writes use it too)
    issues: list[Issue]

    @property
    def newline(self) -> str:
        """The line ending the text uses most ("\r\n" or "\n"): what appended text must use."""
        crlf = self.text.count("\r\n")
        return "\r\n" if crlf and crlf >= self.text.count("\n") - crlf else "\n"


def read_decoded(path: Path) -> Decoded:
    return decode_bytes(Path(path).read_bytes(), str(path))


_UTF8_SEQUENCE = re.compile(rb"[\xc2-\xf4][\x80-\xbf]{1,3}")
# JabRef writes "% Encoding: ISO-8859-1" as its first line; BibDesk and others similar headers
_DECLARED = re.compile(rb"^\s*%\s*encoding\s*:\s*([A-Za-z0-9_.:-]+)", re.IGNORECASE | re.MULTILINE)


def decode_bytes(data: bytes, source: str) -> Decoded:
    """The text of ``data``: UTF-8 (a BOM stays in the text, so a write gives it back), else the
    encoding the file declares, else cp1252 (Windows' latin-1), else latin-1, which reads any byte.

    Every such fallback decodes and encodes byte for byte, and is reported as a warning.
    """
    try:
        return Decoded(data.decode("utf-8"), "utf-8", [])
    except UnicodeDecodeError as err:
        bad = err.start
    line = data.count(b"\n", 0, bad) + 1
    if _UTF8_SEQUENCE.search(data):  # UTF-8 with a few stray bytes: keep those bytes as they are
        return Decoded(data.decode("utf-8", errors="surrogateescape"), "utf-8", [Issue(
            "warning", "encoding", source, line, None, None,
            f"byte 0x{data[bad]:02X} is not UTF-8, in a file that is UTF-8 elsewhere; it is kept as it "
            "is and shown as the cp1252 character it would be; re-save the file as UTF-8")])
    declared = _DECLARED.search(data[:4096])
    candidates = ([declared.group(1).decode("ascii")] if declared else []) + ["cp1252", "latin-1"]
    for name in candidates:
        try:
            codec = codecs.lookup(name).name
            text = data.decode(codec)
        except (LookupError, UnicodeDecodeError):
            continue
        how = "as it declares" if declared and name == candidates[0] else "detected"
        return Decoded(text, codec, [Issue(
            "warning", "encoding", source, line, None, None,
            f"not UTF-8 (byte 0x{data[bad]:02X} first); read as {codec} ({how}); "
            "text added to this file is written in the same encoding")])
    raise AssertionError("latin-1 decodes any bytes")  # pragma: no cover


def encode(text: str, encoding: str = "utf-8") -> bytes:
    """Bytes of ``text`` in the file's ``encoding``; a character it cannot hold is a ValueError."""
    try:  # surrogate escapes are the stray bytes of a mostly UTF-8 file, restored exactly
        return text.encode(encoding, errors="surrogateescape" if encoding == "utf-8" else "strict")
    except UnicodeEncodeError as err:
        raise UserError(f"'{err.object[err.start:err.end]}' cannot be written in {encoding}, the "
                         "encoding of the file; re-save the file as UTF-8 first") from err


def parse_text(text: str, source: str, strings: dict[str, str] | None = None) -> BibFile:
    """Split ``text`` into blocks; ``source`` names it in messages (a path, or "<stdin>").

    ``strings``: @string macros defined before this text (by the earlier files of a corpus, as
    in ``\\bibliography{IEEEabrv,refs}``); the file's own definitions are added to a copy.
    """
    bib = BibFile(Path(source), text)
    bib.strings.update(strings or {})
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
        elif isinstance(block, model.ExplicitComment):
            bib.comments.append(block.raw)
        elif isinstance(block, model.Entry) and not block.key.strip():
            bib.issues.append(missing_key_issue(source, line))
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
            fields[name] = shown(value[1:-1])  # the common case: one braced value, no macro
            continue
        fields[name] = shown(resolve(value, strings))
        macros.extend(m.lower() for m in macro_names(value))
    return EntryBlock(block.key, block.entry_type.lower(), fields, lines, line, block.raw, macros)


_STRAY = re.compile("[\udc80-\udcff]")


def shown(value: str) -> str:
    """A value for display and checks: a stray non-UTF-8 byte (kept in the raw text as a surrogate
    escape, see ``decode_bytes``) shown as the cp1252 character it most likely is."""
    if not _STRAY.search(value):
        return value
    return _STRAY.sub(lambda m: bytes([ord(m.group()) - 0xDC00]).decode("cp1252", errors="replace"), value)


def _undefined_macro_issues(block: model.Entry, strings: dict[str, str], source: str) -> list[Issue]:
    return [
        Issue("warning", "undefined-macro", source, f.start_line + 1, block.key, f.key.lower(),
              f"@string macro '{name}' is not defined before this entry; its name is used as the text")
        for f in block.fields if f.value[:1] != "{"
        for name in macro_names(f.value) if name.lower() not in strings]


def missing_key_issue(source: str, line: int) -> Issue:
    return Issue("error", "missing-key", source, line, None, None,
                 "entry has no key (as in '@article{,'); it is kept in the file but left out of the "
                 "corpus until it is given one")


def duplicate_key_issue(source: str, line: int, key: str) -> Issue:
    if not key.strip():
        return missing_key_issue(source, line)
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

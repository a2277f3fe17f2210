"""One .bib file read as blocks, with nothing dropped.

The file's text is the source of truth: every block keeps its raw text and line, so writing
back only ever appends or replaces whole blocks and everything else stays byte for byte.
Blocks are found as bibtexparser's splitter finds them: the text is cut into segments where a
line starts a block (the splitter starts one there whatever came before); a segment that is one
plain entry is read here, exactly as the splitter would read it and three times faster, and
any other by the splitter itself. Macro references and concatenation (``ISBI # " 2018"``) are
resolved here because its interpolation middleware leaves concatenations as they are.
"""

from __future__ import annotations

import codecs
import logging
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

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
        bib.issues.append(empty_file_issue(source))
        return bib
    reader = BlockReader(bib, source)
    for shift, _, segment in segments(text):
        for block in parse_segment(segment):
            reader.add(block, shift)
    return bib


class Block(NamedTuple):
    """One block as bibtexparser's splitter reads it, in plain values (cheap to cache)."""
    kind: str  # "entry", "string", "preamble", "comment", "failed" or "duplicate-field"
    line: int  # 0-based, counted as the splitter counts, from the first line of its segment
    key: str | None = None
    entry_type: str = ""
    fields: tuple[tuple[str, str, int], ...] = ()  # an entry's (name, value, line) as written
    value: str = ""  # a @string's value as written
    raw: str = ""
    note: str = ""  # "failed": the splitter's reason; "duplicate-field": the names given twice


class BlockReader:
    """The blocks of one file taken in order, as ``parse_text`` does: what bibtexparser's Library
    keeps across blocks (the keys seen: a repeated one is an error) and the @string macros
    defined so far. ``shift`` is the line where a block's segment starts (0-based)."""

    def __init__(self, bib: BibFile, source: str):
        self.bib, self.source = bib, source
        self._keys: dict[str, set[str]] = {"entry": set(), "string": set()}

    def add(self, block: Block, shift: int) -> EntryBlock | None:
        """Take one block; an entry with a key of its own is kept in ``bib.entries`` and returned."""
        if not self.accepts(block, shift):
            return None
        bib, line = self.bib, shift + block.line + 1
        if block.kind == "entry":
            entry = entry_block(block, bib.strings, shift)
            bib.entries.append(entry)
            bib.issues.extend(undefined_macro_issues(block, bib.strings, self.source, shift))
            return entry
        if block.kind == "string":
            bib.strings[block.key.lower()] = resolve(block.value, bib.strings)
            bib.string_raw[block.key.lower()] = block.raw
        elif block.kind == "preamble":
            bib.preambles.append(block.raw)
        elif block.kind == "comment":
            bib.comments.append(block.raw)
        elif block.kind == "duplicate-field":
            bib.issues.append(Issue("error", "duplicate-field", self.source, line, block.key, block.note,
                                    f"field(s) {block.note} given twice; the entry is kept in the file but "
                                    "left out of the corpus until one of them is removed"))
        else:
            bib.issues.append(Issue("error", "unparsable", self.source, line, block.key, None,
                                    f"block could not be parsed ({block.note or 'unbalanced braces or quotes'}); "
                                    "it is kept in the file as it is"))
        return None

    def accepts(self, block: Block, shift: int) -> bool:
        """False, with its error, for an entry or @string whose key an earlier one has (the
        Library's duplicate) and for an entry without a key."""
        keys = self._keys.get(block.kind)
        if keys is None:
            return True
        if block.key in keys:
            self.bib.issues.append(duplicate_key_issue(self.source, shift + block.line + 1, block.key))
            return False
        keys.add(block.key)
        if block.kind == "entry" and not block.key.strip():
            self.bib.issues.append(missing_key_issue(self.source, shift + block.line + 1))
            return False
        return True


def entry_block(block: Block, strings: dict[str, str], shift: int = 0) -> EntryBlock:
    """An entry's fields by lower-case name, enclosing removed and macros resolved."""
    fields, lines, macros = {}, {}, []
    for key, value, line in block.fields:
        name = sys.intern(key.lower())  # interned: cached once per file, not per entry
        lines[name] = shift + line + 1
        if is_braced(value):
            fields[name] = shown(value[1:-1])  # the common case: one braced value, no macro
            continue
        fields[name] = shown(resolve(value, strings))
        macros.extend(m.lower() for m in macro_names(value))
    return EntryBlock(block.key, block.entry_type.lower(), fields, lines, shift + block.line + 1, block.raw, macros)


def is_braced(value: str) -> bool:
    """Whether a value as written is one braced part, which needs no macro."""
    return value[:1] == "{" and value[-1:] == "}" and "#" not in value


def macro_lookups(block: Block) -> tuple[str, ...]:
    """The @string names (lower case) that an entry's fields were resolved with: every bare part
    of a value that is not one braced part, numbers and month names too (``resolve`` looks each
    up), so an entry needs reading again only when one of these changes."""
    words: list[str] = []
    for _, value, _ in block.fields:
        if not is_braced(value):
            words += [p.strip().lower() for p in _split_concatenation(value) if not _enclosed(p.strip())]
    return tuple(words)


_STRAY = re.compile("[\udc80-\udcff]")


def shown(value: str) -> str:
    """A value for display and checks: a stray non-UTF-8 byte (kept in the raw text as a surrogate
    escape, see ``decode_bytes``) shown as the cp1252 character it most likely is."""
    if value.isascii() or not _STRAY.search(value):  # isascii costs nothing: str knows it
        return value
    return _STRAY.sub(lambda m: bytes([ord(m.group()) - 0xDC00]).decode("cp1252", errors="replace"), value)


def undefined_macro_issues(block: Block, strings: dict[str, str], source: str, shift: int = 0) -> list[Issue]:
    return [
        Issue("warning", "undefined-macro", source, shift + line + 1, block.key, key.lower(),
              f"@string macro '{name}' is not defined before this entry; its name is used as the text")
        for key, value, line in block.fields if value[:1] != "{"
        for name in macro_names(value) if name.lower() not in strings]


def empty_file_issue(source: str) -> Issue:
    return Issue("warning", "empty", source, None, None, None, "the file holds no BibTeX")


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


# Segments. bibtexparser's splitter starts a new block at every "@type{" or "@type(" at the start
# of a line, whatever it was reading (an unclosed block is cut off there), and counts lines by
# the newlines it sees (one after a backslash it does not see). So the text between two such
# line starts splits alone as it does within the whole text, and can be parsed, cached and
# compared on its own; a block cut off there is "unparsable" either way.
_LINE_BLOCK_START = re.compile(r"\n[ \t]*@\w*[ \t]*(?=[{(])")
# any "@string", even inside a value: a false alarm only costs the parallel parse
_STRING_BLOCK = re.compile(r"@[ \t]*string[ \t]*[{(]", re.IGNORECASE)


def segment_starts(text: str) -> list[int]:
    """Offsets of the lines that start a block, after 0 (where the text before the first one starts)."""
    return [0] + [m.start() + 1 for m in _LINE_BLOCK_START.finditer(text)]


def splitter_lines(text: str, start: int, end: int) -> int:
    """Newlines in ``text[start:end]`` as the splitter counts them (none after a backslash)."""
    return text.count("\n", start, end) - text.count("\\\n", start, end)


def segments(text: str) -> Iterator[tuple[int, int, str]]:
    """``(line, offset, segment)`` for each segment of ``text``; ``line`` is 0-based."""
    starts = [*segment_starts(text), len(text)]
    escaped = "\\\n" in text  # mostly not: then counting newlines is enough
    line = 0
    for start, end in zip(starts, starts[1:]):
        yield line, start, text[start:end]
        line += splitter_lines(text, start, end) if escaped else text.count("\n", start, end)


def split_into_parts(text: str, parts: int) -> list[tuple[int, int, str]] | None:
    """``text`` cut into about ``parts`` pieces of whole segments, as ``(first line, offset, piece)``.

    Each piece splits exactly as it would within the whole text (see ``segments``). None when
    the text defines @string macros: entries would need macros from earlier pieces.
    """
    if _STRING_BLOCK.search(text):
        return None
    cuts = [0]
    for i in range(1, parts):
        m = _LINE_BLOCK_START.search(text, max(cuts[-1], len(text) * i // parts - 1))
        if m is None:
            break
        cuts.append(m.start() + 1)
    cuts.append(len(text))
    line, pieces = 1, []
    for start, end in zip(cuts, cuts[1:]):
        pieces.append((line, start, text[start:end]))
        line += splitter_lines(text, start, end)
    return pieces


def _not_a_segment_warning(record: logging.LogRecord) -> bool:
    # The splitter warns of each block it gives up on, with lines counted from the segment's start;
    # every such block is reported as an issue with its line in the file instead.
    return record.levelno >= logging.ERROR


logging.getLogger("bibtexparser.splitter").addFilter(_not_a_segment_warning)


def parse_segment(segment: str) -> list[Block]:
    """The blocks of one segment, as bibtexparser's splitter reads them: a plain entry directly,
    anything else by the splitter itself."""
    entry = _plain_entry(segment)
    if entry is not None:
        return [entry]
    if "@" not in segment:
        return []  # text between blocks: an implicit comment
    return [b for b in map(_block_of, Splitter(segment).split().blocks) if b is not None]


def _block_of(block: model.Block) -> Block | None:
    if isinstance(block, model.DuplicateBlockKeyBlock):
        block = block.ignore_error_block  # keys repeat across segments: the reader finds them
    line = block.start_line
    if isinstance(block, model.String):
        return Block("string", line, block.key, value=block.value, raw=block.raw)
    if isinstance(block, model.Preamble):
        return Block("preamble", line, raw=block.raw)
    if isinstance(block, model.ExplicitComment):
        return Block("comment", line, raw=block.raw)
    if isinstance(block, model.Entry):
        fields = tuple((f.key, f.value, f.start_line) for f in block.fields)
        return Block("entry", line, block.key, block.entry_type, fields, raw=block.raw)
    if isinstance(block, model.DuplicateFieldKeyBlock):
        return Block("duplicate-field", line, _raw_key(block.raw or ""), raw=block.raw,
                     note=", ".join(sorted(block.duplicate_keys)))
    if isinstance(block, model.ParsingFailedBlock):
        reason = str(block.error).strip() if block.error else ""
        if block.error is not None:
            # its traceback holds the splitter's frame, which holds the block: a cycle through
            # the callers' frames that only the collector would free; its text is all we keep
            block.error.__traceback__ = None
        return Block("failed", line, _raw_key(block.raw or ""), raw=block.raw, note=reason)
    return None  # an implicit comment


# The splitter's marks, in the states that read them: a field name ends at "=" (any other mark
# is an error), a value at "," or the entry's "}" outside braces and quotes; within braces only
# braces count, within quotes only a quote. A mark after a backslash is none. Long stretches are
# crossed with str.find: a regular expression reads a character class ten times slower.
_ENTRY_HEAD = re.compile(r"[ \t]*(@\w*[ \t]*)\{")
_ANY_BLOCK_START = re.compile(r"@\w*[ \t]*[{(]")
_NAME_END = re.compile(r'[{}",=]')
_VALUE_MARK = re.compile(r'[{}",]')
_BRACED_FIELD = re.compile(r'([^{}",=\\]*)=\s*\{')  # a name without marks, "=", an opening brace
# ... and a value up to the first "}" (a plain one when it holds no "{" and that "}" is unescaped),
# then the "," or "}" after it ([^}]* is read at memchr speed)
_PLAIN_FIELD = re.compile(r'([^{}",=\\]*)=\s*\{([^}]*)\}\s*([,}])')
_AFTER_VALUE = re.compile(r"\s*[,}]")
_SPECIAL_BLOCKS = ("@comment", "@preamble", "@string")


def _plain_entry(segment: str) -> Block | None:
    """The entry of a segment that holds one ``@type{key, name = value, ...}`` with distinct
    field names and no other block start, read as the splitter reads it; None for anything
    else (the splitter reads that)."""
    head = _ENTRY_HEAD.match(segment)
    if head is None or head.group(1).lower().startswith(_SPECIAL_BLOCKS) or \
            _ANY_BLOCK_START.search(segment, head.end()):
        return None
    comma = _mark(segment, _NAME_END, head.end())
    if comma is None or segment[comma] != ",":
        return None
    escaped_newlines = "\\\n" in segment
    fields, names, pos, line, counted = [], set(), comma + 1, 0, 0
    while True:
        plain = _PLAIN_FIELD.match(segment, pos)  # the usual field, read in one step
        if plain and segment.find("{", plain.start(2), plain.end(2)) < 0 and segment[plain.end(2) - 1] != "\\":
            equals, end = plain.end(1), plain.start(3)
        else:
            braced = _BRACED_FIELD.match(segment, pos)
            equals = braced.end(1) if braced else _mark(segment, _NAME_END, pos)
            if equals is None:
                return None
            if segment[equals] == "}":
                if segment[pos:equals].strip():
                    return None  # a name without "= value"
                break
            if segment[equals] != "=":
                return None
            end = _value_end(segment, equals + 1, braced and braced.end())
        name = segment[pos:equals].strip()
        if end is None or name in names:
            return None
        names.add(name)
        line += segment.count("\n", counted, equals)
        if escaped_newlines:
            line -= segment.count("\\\n", counted, equals)
        counted = equals
        fields.append((name, segment[equals + 1:end].strip(), line))
        pos = end + 1 if segment[end] == "," else end
    return Block("entry", 0, segment[head.end():comma].strip(), head.group(1)[1:].strip().lower(),
                 tuple(fields), raw=segment[head.start(1):equals + 1])


def _mark(segment: str, pattern: re.Pattern, pos: int) -> int | None:
    """Where the first unescaped character of ``pattern`` is from ``pos``."""
    while m := pattern.search(segment, pos):
        i = m.start()
        if segment[i - 1] != "\\":  # i > 0: the entry's head comes first
            return i
        pos = i + 1
    return None


def _value_end(segment: str, pos: int, brace: int | None = None) -> int | None:
    """Where the field value from ``pos`` ends (its "," or the entry's "}"); None at the end.
    ``brace``: the position after its opening brace, when that is known already."""
    if brace is not None:
        pos = _braced_end(segment, brace)
        after = pos is not None and _AFTER_VALUE.match(segment, pos)
        if after:
            return after.end() - 1
    while pos is not None and (i := _mark(segment, _VALUE_MARK, pos)) is not None:
        c = segment[i]
        if c in ",}":
            return i
        pos = (_braced_end if c == "{" else _quoted_end)(segment, i + 1)
    return None


def _braced_end(segment: str, pos: int) -> int | None:
    """The position after the "}" that closes the "{" before ``pos``."""
    depth = 1
    while (close := segment.find("}", pos)) >= 0:
        opened = segment.find("{", pos, close)
        i = close if opened < 0 else opened
        pos = i + 1
        if segment[i - 1] == "\\":
            continue
        depth += 1 if i == opened else -1
        if not depth:
            return pos
    return None


def _quoted_end(segment: str, pos: int) -> int | None:
    """The position after the quote that closes the one before ``pos``."""
    while (i := segment.find('"', pos)) >= 0:
        pos = i + 1
        if segment[i - 1] == "\\":
            continue
        # {"} is a quote within a quoted value (the splitter's check, to the letter)
        if not (i + 2 < len(segment) and segment[i - 1] == "{" and segment[i + 1] == "}"):
            return pos
    return None


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
        if _enclosed(part):
            out.append(part[1:-1])
        elif part.lower() in strings:
            out.append(strings[part.lower()])
        elif part.lower() in MONTHS:
            out.append(MONTHS[part.lower()])
        else:
            out.append(part)  # a number, or an undefined macro kept as its name
    return "".join(out)


def _enclosed(part: str) -> bool:
    return len(part) >= 2 and ((part[0] == "{" and part[-1] == "}") or (part[0] == '"' and part[-1] == '"'))


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

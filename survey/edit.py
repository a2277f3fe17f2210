"""Changing one field of one entry in place, leaving every other byte of the file as it was.

Used by the explorer's tag editor: the entry's block is found by its key, only the field's
value is rewritten (or the field appended when the entry lacks it), and the file is written
atomically inside its lock, like every other write (through a symlink to the real file).
An edit that changes nothing writes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from survey import bibfile
from survey.bibfile import EntryBlock
from survey.storage import atomic_write, locked
from survey.tags import parse_keywords


class EditError(ValueError):
    """An edit that cannot be made; the message says which file, entry and field."""


def set_field(path: Path, key: str, name: str, value: str) -> None:
    """Set field ``name`` of entry ``key`` in ``path`` to ``{value}``."""
    path = Path(path)
    _refuse_unbalanced(path, key, name, value)
    _edit_entry(path, key, lambda entry, newline: _with_field(entry.raw, name, value, newline))


def set_keywords(path: Path, key: str, new_text: str) -> bool:
    """Give entry ``key`` the tags of ``new_text``; False, with nothing written, when those are
    the tags it already has (compared as sets, as ``parse_keywords`` reads them).

    Otherwise the entry keeps its own separator (``;`` or ``,``, with or without a space) and
    the order of the tags it keeps; removed tags go, new tags are appended in the order given.
    """
    path = Path(path)
    _refuse_unbalanced(path, key, "keywords", new_text)

    def rewrite(entry: EntryBlock, newline: str) -> str:
        value = merged_keywords(entry.fields.get("keywords", ""), new_text)
        if value is None:
            return entry.raw
        _refuse_unbalanced(path, key, "keywords", value)
        return _with_field(entry.raw, "keywords", value, newline)

    return _edit_entry(path, key, rewrite)


def merged_keywords(old: str, new_text: str) -> str | None:
    """The keywords value that turns ``old`` into the tags of ``new_text`` in ``old``'s style,
    or None when both hold the same tags."""
    kept, wanted = tags_in_order(old), tags_in_order(new_text)
    if set(kept) == set(wanted):
        return None
    tags = [t for t in kept if t in wanted] + [t for t in wanted if t not in kept]
    return _separator(old, new_text).join(tags)


def tags_in_order(value: str) -> list[str]:
    """The tags of a keywords value as written, each (``category:value`` or free) spelled as
    ``parse_keywords`` reads it, without repeats."""
    tags: list[str] = []
    for word in re.split(r"[;,]", value):
        categories, free = parse_keywords(word)
        for tag in [f"{c}:{v}" for c, values in categories.items() for v in values] + free:
            if tag not in tags:
                tags.append(tag)
    return tags


def _separator(*values: str) -> str:
    """The first separator written in ``values``, with one space when whitespace follows it."""
    for value in values:
        found = re.search(r"([;,])(\s?)", value)
        if found:
            return found.group(1) + (" " if found.group(2) else "")
    return ", "


def _edit_entry(path: Path, key: str, rewrite: Callable[[EntryBlock, str], str]) -> bool:
    """Replace entry ``key``'s block with ``rewrite(block, newline)``; False when that is the
    block as it was, and then nothing is written."""
    # Checked before locking as well, so that an unchanged save creates not even a lock file
    # (and works in a folder the user may not write to); reading unlocked is safe because
    # every write is an atomic rename.
    if _edited_bytes(path, key, rewrite) is None:
        return False
    with locked(path):
        data = _edited_bytes(path, key, rewrite)  # again: another writer may have been first
        if data is None:
            return False
        atomic_write(path, data)
    return True


def _edited_bytes(path: Path, key: str, rewrite: Callable[[EntryBlock, str], str]) -> bytes | None:
    """The file with entry ``key`` rewritten, in the file's own encoding; None if unchanged."""
    decoded = bibfile.read_decoded(path)
    text = decoded.text
    matches = [e for e in bibfile.parse_text(text, str(path)).entries if e.key == key]
    if len(matches) != 1:
        raise EditError(f"{path}: no entry [{key}]" if not matches else
                        f"{path}: entry [{key}] appears {len(matches)} times; fix the duplicate first")
    entry = matches[0]
    new_raw = rewrite(entry, decoded.newline)
    if new_raw == entry.raw:
        return None
    start = text.find(entry.raw, _offset_of_line(text, entry.line))
    try:
        return bibfile.encode(text[:start] + new_raw + text[start + len(entry.raw):], decoded.encoding)
    except ValueError as err:
        raise EditError(f"{path}: [{key}] {err}") from err


def _refuse_unbalanced(path: Path, key: str, name: str, value: str) -> None:
    if _unbalanced(value):
        raise EditError(f"{path}: [{key}] {name}: the new value has unbalanced braces: {value!r}")


def _unbalanced(value: str) -> bool:
    depth = 0
    for c in value:
        depth += (c == "{") - (c == "}")
        if depth < 0:
            return True
    return depth != 0


def _offset_of_line(text: str, line: int) -> int:
    offset = 0
    for _ in range(line - 1):
        offset = text.index("\n", offset) + 1
    return offset


def _with_field(raw: str, name: str, value: str, newline: str) -> str:
    """``raw`` with field ``name`` set to ``{value}``; the rest of the block unchanged (an appended
    field ends its line with ``newline``, the file's own)."""
    head = re.search(r"[{(]\s*[^,\s]+\s*,", raw)  # "{key," after the entry type
    for m in re.finditer(rf"(?<![\w-]){re.escape(name)}\s*=\s*", raw, re.IGNORECASE):
        if m.start() < head.end() or _depth(raw, m.start()) != 1:
            continue  # the key, or text inside another field's value
        end = _value_end(raw, m.end())
        while raw[end - 1].isspace():  # keep the layout that follows the value
            end -= 1
        return raw[:m.end()] + "{" + value + "}" + raw[end:]
    # No such field: append it after the last one, in the block's own indentation.
    close = len(raw.rstrip()) - 1  # the entry's closing } or )
    body = raw[:close].rstrip()
    indented = re.search(r"\n([ \t]+)\S", raw)
    indent = indented.group(1) if indented else "  "
    separator = "" if body.endswith(",") else ","
    return f"{body}{separator}{newline}{indent}{name} = {{{value}}}{newline}{raw[close:]}"


def _depth(raw: str, position: int) -> int:
    """Brace depth at ``position`` (1 = between the fields of the entry), quotes ignored."""
    depth, quoted = 0, False
    for c in raw[:position]:
        if c == '"' and depth == 1:
            quoted = not quoted
        elif c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        elif c == "(" and depth == 0:
            depth = 1
    return depth + quoted


def _value_end(raw: str, start: int) -> int:
    """Where a field value that starts at ``start`` ends (braced, quoted, or a bare word/macro)."""
    depth, quoted = 0, False
    for i in range(start, len(raw)):
        c = raw[i]
        if c == "{":
            depth += 1
        elif c == "}":
            if depth == 0:
                return i  # the entry's closing brace
            depth -= 1
        elif c == '"' and depth == 0:
            quoted = not quoted
        elif c == "," and depth == 0 and not quoted:
            return i
        elif c == ")" and depth == 0 and not quoted:
            return i
    return len(raw)

"""Changing one field of one entry in place, leaving every other byte of the file as it was.

Used by the explorer's tag editor: the entry's block is found by its key, only the field's
value is rewritten (or the field appended when the entry lacks it), and the file is written
atomically inside its lock, like every other write.
"""

from __future__ import annotations

import re
from pathlib import Path

from survey import bibfile
from survey.storage import atomic_write, locked


class EditError(ValueError):
    """An edit that cannot be made; the message says which file, entry and field."""


def set_field(path: Path, key: str, name: str, value: str) -> None:
    """Set field ``name`` of entry ``key`` in ``path`` to ``{value}``."""
    path = Path(path)
    if _unbalanced(value):
        raise EditError(f"{path}: [{key}] {name}: the new value has unbalanced braces: {value!r}")
    with locked(path):
        text, _ = bibfile.read_text(path)
        matches = [e for e in bibfile.parse_text(text, str(path)).entries if e.key == key]
        if len(matches) != 1:
            raise EditError(f"{path}: no entry [{key}]" if not matches else
                            f"{path}: entry [{key}] appears {len(matches)} times; fix the duplicate first")
        entry = matches[0]
        start = text.find(entry.raw, _offset_of_line(text, entry.line))
        new_raw = _with_field(entry.raw, name, value)
        atomic_write(path, bibfile.encode(text[:start] + new_raw + text[start + len(entry.raw):]))


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


def _with_field(raw: str, name: str, value: str) -> str:
    """``raw`` with field ``name`` set to ``{value}``; the rest of the block unchanged."""
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
    indent = re.search(r"\n([ \t]+)\S", raw)
    separator = "" if body.endswith(",") else ","
    return f"{body}{separator}\n{indent.group(1) if indent else '  '}{name} = {{{value}}}\n{raw[close:]}"


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

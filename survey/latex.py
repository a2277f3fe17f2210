"""LaTeX to plain text for display and search, fast for the common cases.

pylatexenc is the reference decoder but costs 0.5-1.5 ms a call (30 s for 10k entries with
the bibtexparser middleware). Most values hold no LaTeX at all, or only accents such as
``{\\"u}`` and escaped symbols; those are decoded here with a few regular expressions and
Unicode combining marks, and only what is left (math, other commands) goes to pylatexenc,
once per distinct value.
"""

from __future__ import annotations

import functools
import re
import unicodedata

from pylatexenc.latex2text import LatexNodes2Text

# accent command -> Unicode combining mark
_ACCENTS = {'"': "\u0308", "'": "\u0301", "`": "\u0300", "^": "\u0302", "~": "\u0303", "=": "\u0304",
            ".": "\u0307", "u": "\u0306", "v": "\u030c", "H": "\u030b", "c": "\u0327", "k": "\u0328",
            "r": "\u030a"}
_SYMBOLS = {"aa": "å", "AA": "Å", "o": "ø", "O": "Ø", "ss": "ß", "ae": "æ", "AE": "Æ", "oe": "œ",
            "OE": "Œ", "l": "ł", "L": "Ł", "i": "ı", "j": "ȷ"}
# {\"u}, \"{u}, \"u, \c{c}, \v s; the letter may itself be \i
_ACCENT = re.compile(r"""\{?\\(?:(["'`^~=.])|([uvHckr])(?=[\s{]))\s*\{?(\\[ij]|[A-Za-z])\}?\}?""")
_SYMBOL = re.compile(r"\{?\\(aa|AA|ss|ae|AE|oe|OE|o|O|l|L)(?![A-Za-z])\s*\}?")
_FONT = re.compile(r"\\(?:emph|textit|textbf|textsc|textrm|textsf|texttt|mathrm|it|bf|em|sc|rm)(?![A-Za-z])\s*")
_MATH = re.compile(r"(?<!\\)\$[^$]*\$")
_ESCAPED = re.compile(r"\\([&%$#_{}])")
# escaped braces and dollars survive brace stripping as placeholders
_HIDE = {"{": "\x01", "}": "\x02", "$": "\x03", "%": "\x04"}
_HIDE_TABLE = str.maketrans(_HIDE)
_SHOW = str.maketrans({v: k for k, v in _HIDE.items()})
_SHOW_LATEX = str.maketrans({v: "\\" + k for k, v in _HIDE.items()})


def to_text(value: str) -> str:
    """Plain text of a BibTeX field value (braces removed, accents and math decoded)."""
    if _is_plain(value):
        return value
    if "\\" in value:
        value = _ESCAPED.sub(lambda m: _HIDE.get(m.group(1), m.group(1)), value)
        value = _ACCENT.sub(_accent, value)
        value = _SYMBOL.sub(lambda m: _SYMBOLS[m.group(1)], value)
        value = _FONT.sub("", value)
    if "$" in value:  # math is decoded a formula at a time: the same few recur across titles
        value = _MATH.sub(lambda m: _decode(m.group(0)).translate(_HIDE_TABLE), value)
    if "\\" in value or "$" in value:
        return _decode(value.translate(_SHOW_LATEX))
    text = value.replace("{", "").replace("}", "").translate(_SHOW)
    text = unicodedata.normalize("NFC", " ".join(text.split()))
    return value if text == value else text  # the same object, so a pickle holds it once


def _is_plain(value: str) -> bool:
    """Whether ``to_text`` gives ``value`` back as it is: no LaTeX, no braces, no placeholder
    characters, single spaces only (``isprintable`` is False for every other white space), NFC.
    Most abstracts are; str methods tell in a few microseconds what the full path takes 50 for."""
    return (value.isprintable() and "  " not in value and value[:1] != " " and value[-1:] != " "
            and "\\" not in value and "$" not in value and "{" not in value and "}" not in value
            and (value.isascii() or unicodedata.is_normalized("NFC", value)))


def _accent(m: re.Match) -> str:
    letter = m.group(3)
    base = {"\\i": "i", "\\j": "j"}.get(letter, letter)
    return base + _ACCENTS[m.group(1) or m.group(2)]


@functools.lru_cache(maxsize=65536)
def _decode(value: str) -> str:
    text = next(_decoded(value))
    return unicodedata.normalize("NFC", " ".join(text.split()))


def _decoded(value: str):
    # pylatexenc keeps the exception that ends each parse in a frame of its own: a reference cycle,
    # freed only by the collector, and through its frames' callers it would hold on to all that a
    # whole load holds. Run from a generator, its frames reach back to the generator's only.
    yield _decoder().latex_to_text(value)


@functools.lru_cache(maxsize=1)
def _decoder() -> LatexNodes2Text:
    return LatexNodes2Text(math_mode="text", strict_latex_spaces=False)

"""An OpenAlex work record as a BibTeX entry, for ``survey add --doi``."""

from __future__ import annotations

import re
import unicodedata

from pyalex import invert_abstract

from survey.openalex.cache import short_id
from survey.records import normalise_doi

_SPECIAL = re.compile(r"([&%$#_])")
_WORD = re.compile(r"[A-Za-z0-9]+")
_SHORT_WORDS = {"a", "an", "the", "on", "of", "in", "for", "and", "to", "with", "via", "from", "by", "at"}


def escape(text: str) -> str:
    """Plain text made safe inside a braced BibTeX value (LaTeX specials escaped, braces dropped)."""
    text = " ".join(str(text).replace("{", "").replace("}", "").replace("\\", "").split())
    return _SPECIAL.sub(r"\\\1", text)


def citation_key(work: dict, taken: set[str]) -> str:
    """``Surname2019FirstWord`` as in the bundled corpus, with a, b, ... when taken."""
    authors = work.get("authorships") or []
    name = ((authors[0].get("author") or {}).get("display_name") or "") if authors else ""
    surname = _ascii_word(name.split()[-1] if name.split() else "Anon")
    year = work.get("publication_year") or ""
    words = [w for w in _WORD.findall(_ascii(work.get("display_name") or work.get("title") or ""))
             if w.lower() not in _SHORT_WORDS]
    base = f"{surname}{year}{(words[0].capitalize() if words else '')}"
    key, suffix = base, 0
    while key in taken:
        key = base + "abcdefghijklmnopqrstuvwxyz"[suffix % 26] * (suffix // 26 + 1)
        suffix += 1
    return key


def work_to_bibtex(work: dict, taken: set[str]) -> str:
    """The entry of one work: @article (journal), @inproceedings (conference) or @misc (anything else)."""
    location = work.get("primary_location") or {}
    source = location.get("source") or {}
    venue = source.get("display_name") or ""
    kind = {"journal": "article", "conference": "inproceedings"}.get(source.get("type") or "", "misc")
    if not venue:
        kind = "misc"
    biblio = work.get("biblio") or {}
    pages = "--".join(p for p in (biblio.get("first_page"), biblio.get("last_page")) if p)
    authors = [(a.get("author") or {}).get("display_name") for a in work.get("authorships") or []]
    oa = work.get("open_access") or {}
    fields = {
        "author": " and ".join(escape(a) for a in authors if a),
        "title": escape(work.get("display_name") or work.get("title") or ""),
        {"article": "journal", "inproceedings": "booktitle", "misc": "howpublished"}[kind]: escape(venue),
        "year": str(work.get("publication_year") or ""),
        "volume": escape(biblio.get("volume") or ""),
        "number": escape(biblio.get("issue") or ""),
        "pages": escape(pages),
        "doi": normalise_doi(work.get("doi") or ""),
        "url": oa.get("oa_url") or "",
        "abstract": escape(invert_abstract(work.get("abstract_inverted_index")) or ""),
        "openalex": short_id(work["id"]),
    }
    width = max(len(k) for k in fields)
    body = ",\n".join(f"  {k:<{width}} = {{{v}}}" for k, v in fields.items() if v)
    return f"@{kind}{{{citation_key(work, taken)},\n{body}\n}}\n"


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def _ascii_word(text: str) -> str:
    return "".join(_WORD.findall(_ascii(text))) or "Anon"

"""An OpenAlex work record as a BibTeX entry, for ``survey add --doi``.

The entry type follows OpenAlex's ``type`` (and ``type_crossref``, where the record has it) and
the type of the work's source. When OpenAlex lacks a field that the chosen type requires (a
thesis without its school, a book without its publisher), the entry becomes an @misc rather
than an incomplete entry of the more specific type. Values are plain text (OpenAlex's HTML
markup and entities removed) with only LaTeX's special characters escaped: other letters stay
UTF-8. bibtexparser writes the entry.
"""

from __future__ import annotations

import html
import re
import unicodedata

import bibtexparser
from bibtexparser.middlewares.names import parse_single_name_into_parts
from bibtexparser.model import Entry, Field
from pylatexenc.latexencode import RULE_DICT, UnicodeToLatexConversionRule, UnicodeToLatexEncoder
from pyalex import invert_abstract

from survey.openalex.cache import short_id
from survey.records import normalise_doi
from survey.validate import REQUIRED_BIBTEX

_WORD = re.compile(r"[A-Za-z0-9]+")
_SHORT_WORDS = {"a", "an", "the", "on", "of", "in", "for", "and", "to", "with", "via", "from", "by", "at"}

# Only what BibTeX or LaTeX would misread; every other character is kept as it is (UTF-8).
_LATEX_SPECIALS = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
                   "~": r"\textasciitilde", "^": r"\textasciicircum", "\\": r"\textbackslash"}
_ENCODER = UnicodeToLatexEncoder(
    conversion_rules=[UnicodeToLatexConversionRule(RULE_DICT, {ord(c): r for c, r in _LATEX_SPECIALS.items()})],
    replacement_latex_protection="braces-after-macro", unknown_char_policy="keep", unknown_char_warning=False)

# A tag starts with a letter right after "<", so "p < 0.05" is left alone.
_HTML_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9:-]*(?:\s[^<>]*)?/?>")

# OpenAlex's own types; older records (and Crossref-style values) are mapped onto them first.
_CROSSREF_TYPES = {"journal-article": "article", "proceedings-article": "article", "posted-content": "preprint",
                   "monograph": "book", "edited-book": "book", "reference-book": "book",
                   "book-section": "book-chapter", "book-part": "book-chapter"}
_JOURNAL_ITEMS = {"article", "review", "letter", "editorial", "erratum", "preprint"}
_SPECIFIC_TYPES = {"book": "book", "book-chapter": "incollection", "dissertation": "phdthesis",
                   "report": "techreport"}
# What an @misc says it is when it has no venue of its own to name.
_MISC_KIND = {"dissertation": "Dissertation", "report": "Report"}

_ORGANISATION_WORDS = re.compile(
    r"\b(?:bank|consortium|collaboration|group|organi[sz]ation|institute|institution|university|agency|"
    r"association|society|council|committee|commission|foundation|ministry|department|office|programme|"
    r"program|network|initiative|centre|center|fund|union|forum|team|corporation|company|inc|ltd)\b",
    re.IGNORECASE)
_AND = re.compile(r"\sand\s", re.IGNORECASE)
_SUFFIX = re.compile(r",?\s+(Jr\.?|Sr\.?|II|III|IV)$")
_MONTHS = "jan feb mar apr may jun jul aug sep oct nov dec".split()
_ISBN_CANDIDATE = re.compile(r"[0-9][0-9-]{8,16}[0-9Xx]")


def work_to_bibtex(work: dict, taken: set[str]) -> str:
    """The text of the BibTeX entry of one OpenAlex work, its key not in ``taken``."""
    source = work_source(work)
    entry_type = choose_entry_type(work, source)
    fields = entry_fields(work, source, entry_type)
    if not has_required_fields(entry_type, fields):
        entry_type = "misc"
        fields = entry_fields(work, source, entry_type)
    bib_fields = [Field("month", value, enclosing="no-enclosing") if name == "month" else Field(name, value)
                  for name, value in fields.items() if value]
    layout = bibtexparser.BibtexFormat()
    layout.indent, layout.value_column = "  ", "auto"
    entry = Entry(entry_type, citation_key(work, taken), bib_fields)
    return bibtexparser.write_string(bibtexparser.Library([entry]), bibtex_format=layout)


def work_source(work: dict) -> dict:
    """The venue of the work: its primary location's source, completed from the legacy ``host_venue``."""
    source = (work.get("primary_location") or {}).get("source") or {}
    legacy = work.get("host_venue") or {}
    return {**{k: v for k, v in legacy.items() if v}, **{k: v for k, v in source.items() if v}}


def work_kind(work: dict) -> str:
    kind = work.get("type") or work.get("type_crossref") or ""
    return _CROSSREF_TYPES.get(kind, kind)


def choose_entry_type(work: dict, source: dict) -> str:
    """The BibTeX type OpenAlex's description asks for, before checking that its fields are known."""
    kind = work_kind(work)
    if kind in _SPECIFIC_TYPES:
        return _SPECIFIC_TYPES[kind]
    if kind not in _JOURNAL_ITEMS:
        return "misc"  # paratext, datasets, peer reviews, ...
    if source.get("type") == "conference" or "proceedings-article" in (work.get("type"), work.get("type_crossref")):
        return "inproceedings"
    return "article"  # a preprint's server (arXiv, medRxiv) stands as its journal


def has_required_fields(entry_type: str, fields: dict[str, str]) -> bool:
    required = REQUIRED_BIBTEX.get(entry_type, ())
    return all(any(fields.get(name) for name in need.split("|")) for need in required)


def entry_fields(work: dict, source: dict, entry_type: str) -> dict[str, str]:
    """Field name -> value as written in BibTeX (empty when unknown), in the order they are written."""
    biblio = work.get("biblio") or {}
    venue = plain_text(source.get("display_name"))
    publisher = publisher_of(source)
    serial = bool(source.get("issn_l") or source.get("issn")) or source.get("type") == "book series"
    doi = normalise_doi(work.get("doi") or (work.get("ids") or {}).get("doi") or "")
    placed = {
        "article": {"journal": venue},
        "inproceedings": {"booktitle": venue},
        "incollection": {"booktitle": venue},
        "book": {"series": venue if serial else ""},
        "phdthesis": {"school": first_affiliation(work)},
        "techreport": {"institution": publisher or first_affiliation(work)},
        "misc": {"howpublished": venue or _MISC_KIND.get(work_kind(work), "")},
    }[entry_type]
    return {
        "author": author_field(work.get("authorships") or []),
        "title": latex(plain_text(work.get("display_name") or work.get("title"))),
        **{name: latex(value) for name, value in placed.items()},
        "publisher": latex(publisher),
        "year": str(work.get("publication_year") or ""),
        "month": month_of(work.get("publication_date") or ""),
        "volume": latex(plain_text(biblio.get("volume"))),
        "number": latex(plain_text(biblio.get("issue"))),
        "pages": latex(page_range(biblio.get("first_page"), biblio.get("last_page"))),
        "issn": latex(plain_text(source.get("issn_l") or next(iter(source.get("issn") or []), ""))),
        "isbn": isbn_in_doi(doi) if work_kind(work) in ("book", "book-chapter") else "",
        "doi": verbatim(doi),
        "pmid": verbatim(last_segment((work.get("ids") or {}).get("pmid"))),
        "pmcid": verbatim(pmcid_of((work.get("ids") or {}).get("pmcid"))),
        "url": verbatim(open_access_url(work)),
        "abstract": latex(plain_text(abstract_of(work))),
        "openalex": short_id(work["id"]) if work.get("id") else "",
    }


def plain_text(value) -> str:
    """OpenAlex's text without HTML: tags removed, entities decoded (twice-escaped ones too), spaces
    collapsed."""
    text = str(value or "")
    for _ in range(3):  # markup escaped twice ("&amp;lt;i&amp;gt;") is gone after the second round
        stripped = _HTML_TAG.sub("", html.unescape(_HTML_TAG.sub("", text)))
        if stripped == text:
            break
        text = stripped
    return " ".join(text.split())


def latex(text: str) -> str:
    return _ENCODER.unicode_to_latex(text)


def verbatim(value: str) -> str:
    """A DOI or URL as written, its braces percent-encoded so that they cannot unbalance the entry."""
    return value.strip().replace("{", "%7B").replace("}", "%7D")


def publisher_of(source: dict) -> str:
    """The source's host organisation (``publisher`` in legacy records); for an OpenAlex e-book
    platform, which is named after its publisher ("Cambridge University Press eBooks"), that name."""
    name = source.get("host_organization_name") or source.get("publisher")
    platform = source.get("display_name") or ""
    if not name and source.get("type") == "ebook platform" and platform.endswith(" eBooks"):
        name = platform.removesuffix(" eBooks")
    return plain_text(name)


def first_affiliation(work: dict) -> str:
    """The first author's first institution: the awarding school of a thesis, the best OpenAlex
    knows of a report's institution."""
    authors = work.get("authorships") or []
    institutions = (authors[0].get("institutions") or []) if authors else []
    return plain_text(institutions[0].get("display_name")) if institutions else ""


def author_field(authorships: list[dict]) -> str:
    names = [plain_text((a.get("author") or {}).get("display_name") or a.get("raw_author_name"))
             for a in authorships]
    return " and ".join(bibtex_name(name.replace("{", "").replace("}", ""), authorship)
                        for name, authorship in zip(names, authorships) if name)


def bibtex_name(name: str, authorship: dict) -> str:
    """``von Last, Jr, First`` for a person; one braced name for an organisation, and for a name that
    holds the word "and", which BibTeX would otherwise read as two authors."""
    if is_organisation(name, authorship) or _AND.search(name):
        return "{" + latex(name) + "}"
    suffix = _SUFFIX.search(name)
    parts = parse_single_name_into_parts(name[:suffix.start()] if suffix else name, strict=False)
    last = " ".join(parts.von + parts.last)
    pieces = [last] + ([suffix.group(1)] if suffix else []) + ([" ".join(parts.first)] if parts.first else [])
    return ", ".join(latex(p) for p in pieces)


def is_organisation(name: str, authorship: dict) -> bool:
    """OpenAlex lists the author as one of the authorship's institutions, or the name has no
    person's shape (one word, digits, "&", an organisation's word such as Bank or Consortium)."""
    institutions = {(i.get("display_name") or "").casefold() for i in authorship.get("institutions") or []}
    return (name.casefold() in institutions or " " not in name or any(c.isdigit() for c in name) or "&" in name
            or name.startswith("The ") or bool(_ORGANISATION_WORDS.search(name)))


def page_range(first, last) -> str:
    first, last = plain_text(first), plain_text(last)
    return f"{first}--{last}" if first and last and last != first else first or last


def month_of(date: str) -> str:
    """BibTeX's month macro (``jun``) of an ISO date."""
    match = re.match(r"\d{4}-(\d{2})", date)
    return _MONTHS[int(match.group(1)) - 1] if match and 1 <= int(match.group(1)) <= 12 else ""


def last_segment(url) -> str:
    return str(url or "").rstrip("/").rsplit("/", 1)[-1]


def pmcid_of(url) -> str:
    """``PMC123``: OpenAlex writes PubMed Central ids as URLs, sometimes without the PMC."""
    number = last_segment(url)
    return f"PMC{number}" if number.isdigit() else number


def open_access_url(work: dict) -> str:
    best = work.get("best_oa_location") or {}
    return (work.get("open_access") or {}).get("oa_url") or best.get("pdf_url") or best.get("landing_page_url") or ""


def abstract_of(work: dict) -> str:
    """The abstract from OpenAlex's inverted index (the older key first, then ``_v3``); none when null
    or not an index."""
    for key in ("abstract_inverted_index", "abstract_inverted_index_v3"):
        index = work.get(key)
        if isinstance(index, dict) and index and all(isinstance(p, list) for p in index.values()):
            return invert_abstract(index)
    return ""


def isbn_in_doi(doi: str) -> str:
    """The ISBN that many book DOIs carry (``10.1017/cbo9780511754920``), when its check digit holds:
    OpenAlex has no ISBN field of its own."""
    for candidate in _ISBN_CANDIDATE.findall(doi.partition("/")[2]):
        digits = candidate.replace("-", "").upper()
        if _isbn_checks(digits):
            return candidate.upper()
    return ""


def _isbn_checks(digits: str) -> bool:
    if len(digits) == 13 and digits.isdigit() and digits[:3] in ("978", "979"):
        return sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(digits)) % 10 == 0
    if len(digits) == 10 and digits[:9].isdigit() and (digits[9].isdigit() or digits[9] == "X"):
        return sum((10 - i) * (10 if d == "X" else int(d)) for i, d in enumerate(digits)) % 11 == 0
    return False


def citation_key(work: dict, taken: set[str]) -> str:
    """``Surname2019FirstWord`` as in the bundled corpus, with a, b, ... when taken."""
    authors = work.get("authorships") or []
    name = plain_text((authors[0].get("author") or {}).get("display_name")) if authors else ""
    surname = _ascii_word(name.split()[-1] if name.split() else "Anon")
    year = work.get("publication_year") or ""
    words = [w for w in _WORD.findall(_ascii(plain_text(work.get("display_name") or work.get("title"))))
             if w.lower() not in _SHORT_WORDS]
    base = f"{surname}{year}{(words[0].capitalize() if words else '')}"
    key, suffix = base, 0
    while key in taken:
        key = base + "abcdefghijklmnopqrstuvwxyz"[suffix % 26] * (suffix // 26 + 1)
        suffix += 1
    return key


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def _ascii_word(text: str) -> str:
    return "".join(_WORD.findall(_ascii(text))) or "Anon"

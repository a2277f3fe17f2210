"""The corpus: every entry of one or more .bib files as a typed pandas table, plus its issues.

Loading 10k entries means splitting, decoding LaTeX and validating; the result is cached
under the user's cache folder keyed by the files' bytes (and the vocabulary's, and this
module's schema), so an unchanged corpus loads from one pickle.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from survey import latex, validate
from survey.bibfile import BibFile, EntryBlock, parse_file
from survey.issues import Issue
from survey.storage import atomic_write
from survey.tags import MISSING, Vocabulary, parse_keywords

log = logging.getLogger(__name__)

SCHEMA = 1  # bump when the table's columns or meaning change, to invalidate caches
REPO_ROOT = Path(__file__).resolve().parents[1]
BUNDLED_BIB = REPO_ROOT / "bib"
VOCABULARY_NAME = "tags.toml"

REVIEW_FIELDS = ("review-category", "review-number", "review-topic", "review-what",
                 "review-why", "review-how", "review-evaluation", "reproduction")
COLUMNS = ["key", "entry_type", "title", "authors", "year", "venue", "doi", "url", "abstract",
           "tags", "free_tags", "tagset", "references",
           *[f.replace("-", "_") for f in REVIEW_FIELDS], "file", "line", "raw", "fields", "search"]


@dataclass
class FileInfo:
    """What a write or an export needs to know of a file without re-reading it."""
    path: Path
    sha256: str
    string_raw: dict[str, str] = field(default_factory=dict)
    strings: dict[str, str] = field(default_factory=dict)
    preambles: list[str] = field(default_factory=list)


@dataclass
class Corpus:
    table: pd.DataFrame
    files: list[FileInfo]
    issues: list[Issue]
    vocabulary: Vocabulary

    def __len__(self) -> int:
        return len(self.table)

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "error"]

    def tag_categories(self) -> list[str]:
        """Declared categories first, then any others that entries use."""
        seen = list(self.vocabulary.categories)
        for tags in self.table["tags"]:
            seen.extend(c for c in tags if c not in seen)
        return seen


def bib_paths(paths: list[Path] | None = None) -> list[Path]:
    """The .bib files named, with folders expanded; the bundled corpus by default."""
    if not paths:
        env = os.environ.get("SURVEY_BIB")
        paths = [Path(p) for p in env.split(os.pathsep)] if env else [BUNDLED_BIB]
    out = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(p.glob("*.bib"))
            if not found:
                raise FileNotFoundError(f"{p}: folder holds no .bib file")
            out.extend(found)
        elif p.exists():
            out.append(p)
        else:
            raise FileNotFoundError(f"{p}: no such file or folder")
    return out


def vocabulary_for(paths: list[Path]) -> tuple[Vocabulary, bytes]:
    """The vocabulary beside the first .bib file (empty if there is none) and its bytes."""
    candidate = paths[0].parent / VOCABULARY_NAME if paths else None
    if candidate and candidate.exists():
        return Vocabulary.load(candidate), candidate.read_bytes()
    return Vocabulary(), b""


def load_corpus(paths: list[Path] | None = None, use_cache: bool = True) -> Corpus:
    paths = bib_paths(paths)
    vocabulary, vocabulary_bytes = vocabulary_for(paths)
    digest = hashlib.sha256(f"schema{SCHEMA}".encode() + vocabulary_bytes)
    shas = []
    for p in paths:
        file_sha = hashlib.sha256(p.read_bytes()).hexdigest()
        shas.append(file_sha)
        digest.update(str(p.resolve()).encode() + file_sha.encode())
    cache_file = cache_dir() / f"corpus-{digest.hexdigest()[:32]}.pkl"
    if use_cache:
        cached = _read_cache(cache_file)
        if cached is not None:
            return cached
    corpus = build_corpus([parse_file(p) for p in paths], vocabulary, shas)
    if use_cache:
        _write_cache(cache_file, corpus)
    return corpus


def build_corpus(bibs: list[BibFile], vocabulary: Vocabulary, shas: list[str] | None = None) -> Corpus:
    rows = [entry_row(e, str(b.path)) for b in bibs for e in b.entries]
    table = pd.DataFrame(rows, columns=COLUMNS)
    table["year"] = table["year"].astype("Int64")
    table["review_number"] = table["review_number"].astype("Int64")
    files = [FileInfo(b.path, (shas or [""] * len(bibs))[i], b.string_raw, b.strings, b.preambles)
             for i, b in enumerate(bibs)]
    issues = [i for b in bibs for i in b.issues] + validate.validate_table(table, vocabulary)
    return Corpus(table, files, issues, vocabulary)


_YEAR = re.compile(r"\d{4}")
_DOI_PREFIX = re.compile(r"^(https?://(dx\.)?doi\.org/|doi:\s*)", re.IGNORECASE)


def entry_row(e: EntryBlock, file: str) -> dict:
    f = e.fields
    tags, free = parse_keywords(f.get("keywords", ""))
    title = latex.to_text(f.get("title", ""))
    authors = [latex.to_text(display_name(a)) for a in split_authors(f.get("author", ""))]
    year_text = f.get("year", "").strip()
    venue = latex.to_text(f.get("journal") or f.get("booktitle") or f.get("publisher")
                          or f.get("howpublished") or "")
    review = {name.replace("-", "_"): latex.to_text(f[name]) if name in f else None for name in REVIEW_FIELDS}
    number = review["review_number"]
    review["review_number"] = int(number) if number and number.isdigit() else None
    abstract = latex.to_text(f["abstract"]) if "abstract" in f else ""
    return {
        "key": e.key, "entry_type": e.entry_type, "title": title, "authors": authors,
        "year": int(year_text) if _YEAR.fullmatch(year_text) else None,
        "venue": venue, "doi": normalise_doi(f.get("doi", "")), "url": f.get("url", "").strip(),
        "abstract": abstract, "tags": tags, "free_tags": free,
        "tagset": frozenset([f"{c}:{v}" for c, vs in tags.items() for v in vs] + free),
        "references": f.get("references", "").replace(",", " ").split(),
        **review, "file": file, "line": e.line, "raw": e.raw, "fields": f,
        "search": " ".join([e.key, title, " ".join(authors), venue, f.get("keywords", ""),
                            abstract]).lower(),
    }


_AND = re.compile(r"\s+and\s+", re.IGNORECASE)


def split_authors(value: str) -> list[str]:
    """Names of an author field, split on ``and`` outside braces (``{Barnes and Noble}`` is one)."""
    if not value.strip():
        return []
    value = value.strip()
    cuts = [m for m in _AND.finditer(value)
            if value.count("{", 0, m.start()) == value.count("}", 0, m.start())]  # not inside braces
    starts = [0] + [m.end() for m in cuts]
    ends = [m.start() for m in cuts] + [len(value)]
    return [value[a:b].strip() for a, b in zip(starts, ends) if value[a:b].strip()]


def display_name(name: str) -> str:
    """``Last, First`` as ``First Last``; other forms unchanged."""
    parts = [p.strip() for p in _split_top_level_commas(name)]
    if len(parts) == 2:
        return f"{parts[1]} {parts[0]}".strip()
    if len(parts) == 3:  # Last, Jr, First
        return f"{parts[2]} {parts[0]} {parts[1]}".strip()
    return name.strip()


def _split_top_level_commas(name: str) -> list[str]:
    if "{" not in name:
        return name.split(",")
    parts, depth, start = [], 0, 0
    for i, c in enumerate(name):
        depth += (c == "{") - (c == "}")
        if c == "," and depth == 0:
            parts.append(name[start:i])
            start = i + 1
    return parts + [name[start:]]


def normalise_doi(doi: str) -> str:
    return _DOI_PREFIX.sub("", doi.strip()).strip().lower()


def tags_in(tags: dict[str, list[str]], category: str) -> list[str]:
    """The tags of one category, or ``[?]`` when the paper has none there."""
    return tags.get(category) or [MISSING]


def cache_dir() -> Path:
    if os.environ.get("SURVEY_CACHE_DIR"):
        return Path(os.environ["SURVEY_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "survey-explorer"


def _read_cache(path: Path) -> Corpus | None:
    try:
        with open(path, "rb") as f:
            corpus = pickle.load(f)
        return corpus if isinstance(corpus, Corpus) else None
    except FileNotFoundError:
        return None
    except Exception as err:  # a stale or truncated cache only costs a rebuild
        log.info("ignoring unreadable cache %s: %s", path, err)
        return None


def _write_cache(path: Path, corpus: Corpus) -> None:
    try:
        atomic_write(path, pickle.dumps(corpus, protocol=pickle.HIGHEST_PROTOCOL), backup=False)
    except Exception as err:  # a read-only or full cache folder must not stop the user
        log.info("could not write cache %s: %s", path, err)

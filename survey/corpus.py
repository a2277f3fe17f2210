"""The corpus: every entry of one or more .bib files as a typed pandas table, plus its issues.

Loading 10k entries means splitting, decoding LaTeX and validating; the result is cached
under the user's cache folder keyed by the files' bytes (and the vocabulary's, and this
module's schema), so an unchanged corpus loads from one pickle.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import logging
import multiprocessing
import os
import pickle
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from survey import crossref, validate
from survey.bibfile import BibFile, decode_bytes, duplicate_key_issue, parse_text, split_into_parts
from survey.issues import Issue
from survey.records import REVIEW_FIELDS, complete_row, entry_row, parse_piece
from survey.storage import atomic_write
from survey.tags import MISSING, Vocabulary

log = logging.getLogger(__name__)

# Below this many characters a file is parsed in-process: starting workers would cost more.
PARALLEL_MIN_CHARS = 4_000_000
SCHEMA = 2  # bump when the table's columns or meaning change, to invalidate caches
REPO_ROOT = Path(__file__).resolve().parents[1]
# The bundled corpus is bib/ in a checkout; a wheel installs the same files as survey/bib/ (pyproject.toml).
_INSTALLED_BIB = Path(__file__).resolve().parent / "bib"
BUNDLED_BIB = _INSTALLED_BIB if _INSTALLED_BIB.is_dir() else REPO_ROOT / "bib"
VOCABULARY_NAME = "tags.toml"

COLUMNS = ["key", "entry_type", "title", "authors", "year", "month", "venue", "location", "doi", "url",
           "abstract", "tags", "free_tags", "tagset", "references",
           *[f.replace("-", "_") for f in REVIEW_FIELDS], "file", "line", "raw", "fields", "search", "dialect"]


@dataclass
class FileInfo:
    """What a write or an export needs to know of a file without re-reading it."""
    path: Path
    sha256: str
    string_raw: dict[str, str] = field(default_factory=dict)
    strings: dict[str, str] = field(default_factory=dict)
    preambles: list[str] = field(default_factory=list)
    encoding: str = "utf-8"  # what the file was read with, and is written back with


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
    """The corpus of ``paths`` (default: ``bib_paths()``), from the cache when nothing changed."""
    paths = bib_paths(paths)
    vocabulary, vocabulary_bytes = vocabulary_for(paths)
    contents = [p.read_bytes() for p in paths]
    shas = [hashlib.sha256(data).hexdigest() for data in contents]
    digest = hashlib.sha256(f"schema{SCHEMA}".encode() + vocabulary_bytes)
    for p, sha in zip(paths, shas):
        digest.update(str(p.resolve()).encode() + sha.encode())
    cache_file = cache_dir() / f"corpus-{digest.hexdigest()[:32]}.pkl"
    if use_cache:
        cached = _read_cache(cache_file)
        if cached is not None:
            return cached
    with _no_gc():
        parsed, strings = [], {}
        for p, data in zip(paths, contents):  # in order: a file may use the macros of the files before it
            parsed.append(read_rows(p, data, strings))
            strings = parsed[-1][0].strings
        corpus = build_corpus([b for b, _ in parsed], vocabulary, shas, [r for _, rows in parsed for r in rows])
    if use_cache:
        _write_cache(cache_file, corpus)
    return corpus


def read_rows(path: Path, data: bytes, strings: dict[str, str] | None = None) -> tuple[BibFile, list[dict]]:
    """A file's blocks and issues, and its entries as table rows; ``strings`` are the @string
    macros of the files loaded before it. The BibFile's ``strings`` include them.

    A large file is cut into pieces of whole blocks that worker processes parse at once; the
    result is the same as parsing it whole (see ``split_into_parts``).
    """
    decoded = decode_bytes(data, str(path))
    text = decoded.text
    pieces = split_into_parts(text, _workers()) if len(text) >= PARALLEL_MIN_CHARS else None
    parsed = None
    if pieces and len(pieces) > 1:
        try:
            parsed = _parse_in_pieces(Path(path), text, pieces, strings or {})
        except (BrokenProcessPool, OSError) as err:  # a worker killed, or no fork: do it here
            log.warning("%s: parallel parse failed (%s); parsing in one process", path, err)
    if parsed is None:
        bib = parse_text(text, str(path), strings)
        bib.path = Path(path)
        parsed = bib, [entry_row(e, str(path)) for e in bib.entries]
    parsed[0].issues[:0] = decoded.issues
    parsed[0].encoding = decoded.encoding
    return parsed


def _parse_in_pieces(path: Path, text: str, pieces: list[tuple[int, int, str]],
                     strings: dict[str, str]) -> tuple[BibFile, list[dict]]:
    bib, rows = BibFile(path, text, strings=dict(strings)), []
    with ProcessPoolExecutor(len(pieces) - 1, mp_context=multiprocessing.get_context("fork")) as pool:
        futures = [pool.submit(parse_piece, piece, str(path), line, offset, strings)
                   for line, offset, piece in pieces[1:]]
        line, offset, piece = pieces[0]
        parts = [parse_piece(piece, str(path), line, offset, strings)]  # this process takes a piece too
        parts += [f.result() for f in futures]
    seen: set[str] = set()
    for part_rows, part_issues, preambles in parts:
        bib.issues.extend(part_issues)
        bib.preambles.extend(preambles)
        for row in part_rows:
            if row["key"] in seen:  # the splitter only sees duplicates within its own piece
                bib.issues.append(duplicate_key_issue(str(path), row["line"], row["key"]))
            else:
                seen.add(row["key"])
                rows.append(complete_row(row, text))
    bib.issues.sort(key=lambda i: i.line or 0)
    return bib, rows


@contextlib.contextmanager
def _no_gc():
    """The cyclic collector paused: a load creates ~50 containers per entry and frees none of them,
    so collections in between only cost time (0.3 s of a cold load, 0.2 s of a warm one, at 10k)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _workers() -> int:
    """Processes that parse a large file: one per usable core (``SURVEY_PARSE_WORKERS`` to cap
    it), or just this one (1) where forking is unsafe.

    Forking copies the parsed modules for free, where spawning would re-run the caller's main
    script; but forking a process that runs threads (the explorer's server) can deadlock the
    child, so such a process parses in-process.
    """
    if threading.active_count() > 1 or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    cap = os.environ.get("SURVEY_PARSE_WORKERS", "")
    return max(1, min(cores, int(cap))) if cap.isdigit() else cores


def build_corpus(bibs: list[BibFile], vocabulary: Vocabulary, shas: list[str] | None = None,
                 rows: list[dict] | None = None, parents: list[dict] = ()) -> Corpus:
    """The corpus of parsed files; ``rows`` are their entries' rows when already built;
    ``parents``: rows of other entries that crossrefs may name (the corpus an input joins)."""
    if rows is None:
        rows = [entry_row(e, str(b.path)) for b in bibs for e in b.entries]
    rows, issues = _unique_keys(rows)
    issues += crossref.inherit(rows, parents)
    table = pd.DataFrame(rows, columns=COLUMNS)
    for column in ("year", "month", "review_number"):
        table[column] = table[column].astype("Int64")
    table["dialect"] = table["file"].map(validate.file_dialects(table))
    files = [FileInfo(b.path, (shas or [""] * len(bibs))[i], b.string_raw, b.strings, b.preambles, b.encoding)
             for i, b in enumerate(bibs)]
    issues = [i for b in bibs for i in b.issues] + issues + validate.validate_table(table, vocabulary)
    return Corpus(table, files, issues, vocabulary)


def _unique_keys(rows: list[dict]) -> tuple[list[dict], list[Issue]]:
    """The rows with a key not used before in the corpus (a file repeating its own key is caught
    by the splitter already), and an error for each later one: keys name papers everywhere."""
    first: dict[str, dict] = {}
    kept, issues = [], []
    for row in rows:
        other = first.setdefault(row["key"], row)
        if other is row:
            kept.append(row)
        else:
            issues.append(Issue("error", "duplicate-key", row["file"], row["line"], row["key"], None,
                                f"entry key '{row['key']}' is already used by {other['file']}:{other['line']}; "
                                "this entry is kept in its file but left out of the corpus until one is renamed"))
    return kept, issues


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
        with open(path, "rb") as f, _no_gc():
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

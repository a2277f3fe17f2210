"""The corpus: every entry of one or more .bib files as a typed pandas table, plus its issues.

Loading 10k entries means splitting, decoding LaTeX and validating, so two caches live under
the user's cache folder, both keyed also by the code that made them (``_code_digest``):
- per file, its segments (the text from one block start to the next, see
  ``bibfile.segments``) by the digest of their text: each entry's row, the @string values it
  was read with, its issues (lines from the segment's start) and its own validation issues
  with the vocabulary, dialect and year they hold for. A load parses only the segments it
  does not find there, and appends them; so a reload after editing one entry parses one.
- per corpus, the whole Corpus as one pickle, keyed by every file's bytes and the
  vocabulary's: an unchanged corpus loads from it. A load of changed files starts from it
  where it can (``corpus_patch``): it keeps the rows of the segments the files still hold and
  parses only the new ones, without the segment cache. The pickle is written by the second load
  of the same text (one that parsed nothing) and by any later load that a patch can start from
  but that no patch did: not by the first load (which may be a one-off, and pays for the segment
  cache), nor by each patched edit (a patch of many segments is cached, though).
A load from caches gives exactly what parsing everything gives (tests/test_load_cache.py).
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import gc
import hashlib
import logging
import marshal
import multiprocessing
import os
import pickle
import struct
import sys
import tempfile
import threading
import zlib
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

import bibtexparser
import pandas as pd
import pylatexenc

from survey import bibfile, corpus_patch, crossref, latex, records, tags, validate
from survey.bibfile import (BibFile, Block, BlockReader, decode_bytes, empty_file_issue, parse_segment, segments,
                            split_into_parts)
from survey.corpus_patch import CorpusIndex, FileOutline
from survey.issues import Issue
from survey.records import REVIEW_FIELDS, entry_record, entry_row, parse_piece, placed_row, record_holds, segment_digest
from survey.storage import new_file_mode
from survey.tags import MISSING, Vocabulary

log = logging.getLogger(__name__)

# Below this many characters a file is parsed in-process: on two free cores, two processes
# break even at about 2 MB (1,000 entries with abstracts); with the cores busy they never do.
PARALLEL_MIN_CHARS = 2_000_000
SCHEMA = 3  # bump when the table's columns or meaning change, to invalidate caches
REPO_ROOT = Path(__file__).resolve().parents[1]
# The bundled corpus is bib/ in a checkout; a wheel installs the same files as survey/bib/ (pyproject.toml).
_INSTALLED_BIB = Path(__file__).resolve().parent / "bib"
BUNDLED_BIB = _INSTALLED_BIB if _INSTALLED_BIB.is_dir() else REPO_ROOT / "bib"
VOCABULARY_NAME = "tags.toml"
PATCH_CACHED_AFTER = 64  # segments parsed by a patch (see _patched)

COLUMNS = ["key", "entry_type", "title", "authors", "year", "month", "venue", "location", "doi", "url",
           "abstract", "tags", "free_tags", "tagset", "references",
           *[f.replace("-", "_") for f in REVIEW_FIELDS], "file", "line", "raw", "fields", "dialect"]


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
        for paper_tags in self.table["tags"]:
            seen.extend(c for c in paper_tags if c not in seen)
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
    """The corpus of ``paths`` (default: ``bib_paths()``): from the whole-corpus cache when nothing
    changed, else parsing only the segments of each file that its segment cache does not hold."""
    paths = bib_paths(paths)
    vocabulary, vocabulary_bytes = vocabulary_for(paths)
    contents = [p.read_bytes() for p in paths]
    shas = [hashlib.sha256(data).hexdigest() for data in contents]
    digest = hashlib.sha256(f"schema{SCHEMA}{_code_digest()}".encode() + vocabulary_bytes)
    for p, sha in zip(paths, shas):
        digest.update(str(p.resolve()).encode() + sha.encode())
    cache_file = cache_dir() / f"corpus-{_key(*(p.resolve() for p in paths))}-{digest.hexdigest()[:32]}.pkl"
    context = (_code_digest(), hashlib.sha256(vocabulary_bytes).hexdigest(), datetime.date.today().year + 1)
    if use_cache and (cached := _read_cache(cache_file)) is not None:
        return cached[1]
    bases = _siblings(cache_file) if use_cache else []
    if bases and (patched := _patched(bases, paths, contents, shas, context, vocabulary, cache_file)) is not None:
        return patched
    with _no_gc():
        journals = [_Journal.open(p) if use_cache else _Journal(None) for p in paths]
        parsed, strings = [], {}
        # in order: a file may use the macros of the files before it
        for p, data, journal in zip(paths, contents, journals):
            parsed.append(read_rows(p, data, strings, journal))
            strings = parsed[-1][0].strings
        checks = _EntryChecks(vocabulary, context, journals) if use_cache else None
        corpus = build_corpus([b for b, _ in parsed], vocabulary, shas, [r for _, rows in parsed for r in rows],
                              checks=checks)
    if use_cache:
        loaded_before = bool(bases) or any(journal.stored for journal in journals)
        parsed_anew = [journal.save() for journal in journals]
        # the same text loaded again, or files loaded again since they changed: worth the whole-corpus
        # cache, and for the latter, the base of the patches to come (a first load may be a one-off)
        if not any(parsed_anew) or loaded_before:
            index = corpus_patch.index_of(corpus, [j.outline for j in journals], checks.counts, context)
            if not any(parsed_anew) or index is not None:
                _write_cache(cache_file, corpus, index)
    return corpus


def _patched(bases: list[Path], paths: list[Path], contents: list[bytes], shas: list[str], context: tuple,
             vocabulary: Vocabulary, cache_file: Path) -> Corpus | None:
    """The corpus patched onto a cached version of the same files (``bases``; see ``corpus_patch``), or
    None. A patch that parsed many segments is cached as ``cache_file``, so that patches stay small."""
    for base_file in bases:
        if (cached := _read_cache(base_file, need_index=True)) is None:
            continue
        with _no_gc():
            result = corpus_patch.patched(cached[1], cached[0], paths, contents, shas, context, vocabulary)
        if result is not None:
            corpus, index, parsed = result
            if parsed > PATCH_CACHED_AFTER:
                _write_cache(cache_file, corpus, index)
            return corpus
    return None


def read_rows(path: Path, data: bytes, strings: dict[str, str] | None = None,
              journal: _Journal | None = None) -> tuple[BibFile, list[dict]]:
    """A file's blocks and issues, and its entries as table rows; ``strings`` are the @string
    macros of the files loaded before it. The BibFile's ``strings`` include them. ``journal``:
    the file's segment cache, which what is parsed here is added to.

    A large file that nothing is cached of is cut into pieces of whole segments that worker
    processes parse at once; the result is the same as parsing it whole (see ``split_into_parts``).
    """
    decoded = decode_bytes(data, str(path))
    text, strings, journal = decoded.text, strings or {}, journal or _Journal(None)
    pieces = split_into_parts(text, _workers()) if not journal.records and len(text) >= PARALLEL_MIN_CHARS else None
    if pieces and len(pieces) > 1:
        try:
            journal.add(_parse_in_pieces(Path(path), pieces, strings))
        except (BrokenProcessPool, OSError) as err:  # a worker killed, or no fork: do it here
            log.warning("%s: parallel parse failed (%s); parsing in one process", path, err)
    bib, rows = _assemble(Path(path), text, strings, journal)
    bib.issues[:0] = decoded.issues
    journal.outline.decoded = len(decoded.issues)
    bib.encoding = decoded.encoding
    return bib, rows


def _parse_in_pieces(path: Path, pieces: list[tuple[int, int, str]],
                     strings: dict[str, str]) -> list[tuple[bytes, list]]:
    with ProcessPoolExecutor(len(pieces) - 1, mp_context=multiprocessing.get_context("fork")) as pool:
        futures = [pool.submit(parse_piece, piece, str(path), strings) for _, _, piece in pieces[1:]]
        records = parse_piece(pieces[0][2], str(path), strings)  # this process takes a piece too
        for future in futures:
            records += future.result()
    return records


def _assemble(path: Path, text: str, strings: dict[str, str], journal: _Journal) -> tuple[BibFile, list[dict]]:
    """What ``parse_text`` and ``entry_row`` give for ``text``, segment by segment, each from the
    journal when it holds that segment's text (and the @string values its entries were read with)."""
    source = str(path)
    bib = BibFile(path, text, strings=dict(strings))
    if not text.strip():
        bib.issues.append(empty_file_issue(source))
        return bib, []
    reader, rows = BlockReader(bib, source), []
    for shift, _, segment in segments(text):
        digest = segment_digest(segment)
        record = journal.get(digest)
        if record is None:
            record = [[tuple(block), None] for block in parse_segment(segment)]
            journal.put(digest, record)
        rows_before, issues_before, plain = len(rows), len(bib.issues), True
        for index, item in enumerate(record):
            block = Block._make(item[0])
            if block.kind != "entry":
                plain = plain and block.kind == "comment"
                reader.add(block, shift)
            elif reader.accepts(block, shift):
                if _read_again(item, index, segment, bib.strings, source):
                    journal.put(digest, record)
                _, row, issues, (start, length), _ = item[1]
                rows.append(placed_row(row, source, shift + block.line + 1, segment[start:start + length]))
                journal.slots[id(rows[-1])] = rows[-1], digest, item[1]
                if issues:
                    bib.issues += [Issue("warning", "undefined-macro", source, shift + line + 1, block.key, name,
                                         message) for line, name, message in issues]
        found = len(bib.issues) - issues_before
        journal.outline.segments.append((digest, shift, len(rows) - rows_before, found, plain and not found))
    return bib, rows


def _read_again(item: list, index: int, segment: str, strings: dict[str, str], source: str) -> bool:
    """Give a segment's ``index``-th block (``item``: ``[block, entry record]``) a record that holds
    for the @string values in effect; whether it needed a new one (it was never read, or read
    with other values of its macros)."""
    if item[1] is not None and record_holds(item[1], strings):
        return False
    block = Block._make(item[0])
    full = block if block.raw else parse_segment(segment)[index]  # a cached entry keeps no fields
    item[:] = [tuple(full._replace(fields=(), raw="")), entry_record(full, segment, strings, source)]
    return True


@contextlib.contextmanager
def _no_gc():
    """The cyclic collector paused: a load creates ~50 containers per entry and frees none of them,
    so collections in between only cost time (0.3 s of a cold load, 0.2 s of a warm one, at 10k).
    What the load made lives on, so it joins the oldest generation at once (freeze, unfreeze):
    else the young generation's next collection would go through every row (0.1 s at 10k)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.freeze()
            gc.unfreeze()
            gc.enable()


def _workers() -> int:
    """Processes that parse a large file: one per usable core that others leave idle
    (``SURVEY_PARSE_WORKERS`` to set it), or just this one (1) where forking is unsafe.

    Forking copies the parsed modules for free, where spawning would re-run the caller's main
    script; but forking a process that runs threads (the explorer's server) can deadlock the
    child, so such a process parses in-process. A worker on a core that another program keeps
    busy only waits for it, and costs its start and the pickling of its rows: on a busy 2-core
    machine two processes took 1.3x the time of one.
    """
    if threading.active_count() > 1 or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    cap = os.environ.get("SURVEY_PARSE_WORKERS", "")
    if cap.isdigit():
        return max(1, min(cores, int(cap)))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    return max(1, min(cores, int(cores + 1 - load)))  # the load average counts this process (up to 1) too


def build_corpus(bibs: list[BibFile], vocabulary: Vocabulary, shas: list[str] | None = None,
                 rows: list[dict] | None = None, parents: list[dict] = (),
                 checks: _EntryChecks | None = None) -> Corpus:
    """The corpus of parsed files; ``rows`` are their entries' rows when already built;
    ``parents``: rows of other entries that crossrefs may name (the corpus an input joins);
    ``checks``: the entries' own issues as the segment caches keep them."""
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
    found = checks.validate_table(table, rows) if checks else validate.validate_table(table, vocabulary)
    issues = [i for b in bibs for i in b.issues] + issues + found
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


def _read_cache(path: Path, need_index: bool = False) -> tuple[CorpusIndex | None, Corpus] | None:
    """A whole-corpus cache: its index (what a patch needs, or None), then the corpus itself;
    None if it is not there, unreadable, or (``need_index``) no patch can start from it."""
    try:
        with open(path, "rb") as f, _no_gc():
            index = pickle.load(f)
            if need_index and not isinstance(index, CorpusIndex):
                return None
            corpus = pickle.load(f)
        return (index, corpus) if isinstance(corpus, Corpus) else None
    except FileNotFoundError:
        return None
    except Exception as err:  # a stale or truncated cache only costs a rebuild
        log.info("ignoring unreadable cache %s: %s", path, err)
        return None


def _write_cache(path: Path, corpus: Corpus, index: CorpusIndex | None) -> None:
    _write_file(path, pickle.dumps(index, protocol=pickle.HIGHEST_PROTOCOL)
                + pickle.dumps(corpus, protocol=pickle.HIGHEST_PROTOCOL))
    _remove_siblings(path)


def _siblings(path: Path) -> list[Path]:
    """The caches of other versions of what ``path`` caches (``NAME-KEY-VERSION.ext``)."""
    kind, key, _ = path.stem.split("-")
    return [other for other in path.parent.glob(f"{kind}-{key}-*{path.suffix}") if other != path]


def _key(*parts: object) -> str:
    return hashlib.sha256(" ".join(map(str, parts)).encode()).hexdigest()[:16]


def _remove_siblings(path: Path) -> None:
    """Remove the caches of other versions of what ``path`` caches (``NAME-KEY-VERSION.ext``):
    only the latest is read again, and a whole-corpus pickle per edit would fill the disk."""
    for other in _siblings(path):
        with contextlib.suppress(OSError):
            other.unlink()


def _write_file(path: Path, data: bytes, append: bool = False) -> None:
    """A cache file written whole by rename (or appended to in one write), without the fsync of
    ``atomic_write``: a cache lost in a crash only costs a parse. Failing to write is no error:
    a read-only or full cache folder must not stop the user."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if append:
            with open(path, "ab") as f:
                f.write(data)
            return
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.fchmod(fd, new_file_mode())  # the umask's mode, as the user's other new files (mkstemp gives 0600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError as err:
        log.info("could not write cache %s: %s", path, err)
        if tmp:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


@functools.lru_cache(maxsize=1)
def _code_digest() -> str:
    """What cached rows and issues were made by: this code and the parsers it uses, so that
    neither an upgrade nor an edit of the code is served rows made by an older one."""
    digest = hashlib.sha256(f"{sys.version_info[:2]} marshal{marshal.version} bibtexparser{bibtexparser.__version__} "
                            f"pylatexenc{pylatexenc.__version__}".encode())
    for module in (bibfile, corpus_patch, crossref, latex, records, tags, validate, sys.modules[Issue.__module__],
                   sys.modules[__name__]):
        digest.update(Path(module.__file__).read_bytes())
    return digest.hexdigest()[:32]


class _EntryChecks:
    """What ``validate.validate_table`` gives, with each entry's own issues (``validate.entry_issues``)
    kept in the segment cache beside its row: they depend on nothing but the row, the vocabulary,
    the file's dialect and this year, which are kept with them. Rows that crossref changed, and
    the checks across entries (duplicates, near-duplicate titles, references), are done anew."""

    def __init__(self, vocabulary: Vocabulary, context: tuple, journals: list[_Journal]):
        """``context``: the load's (code digest, vocabulary digest, last year)."""
        self.vocabulary, self.journals = vocabulary, journals
        _, self.vocabulary_digest, self.last_year = context
        self.counts: list[int] = []  # each row's own issues, in the table's order

    def validate_table(self, table: pd.DataFrame, rows: list[dict]) -> list[Issue]:
        """``rows``: the table's rows, in its order."""
        last_year = self.last_year
        slots = {k: (journal, *slot) for journal in self.journals for k, slot in journal.slots.items()}
        columns = ["key", "entry_type", "file", "line", "year", "doi", "tags", "fields", "dialect"]
        issues: list[Issue] = []
        for row, values in zip(rows, zip(*(table[c].tolist() for c in columns))):
            view = validate.EntryView(*values)
            journal, same, digest, entry = slots.get(id(row), (None, None, None, None))
            context = (self.vocabulary_digest, view.dialect, last_year)
            if same is row and entry[4] and entry[4][0] == context:
                issues += [Issue(severity, code, view.file, view.line, view.key, name, message)
                           for severity, code, name, message in entry[4][1]]
                self.counts.append(len(entry[4][1]))
                continue
            found = validate.entry_issues(view, self.vocabulary, last_year)
            if same is row:
                entry[4] = (context, tuple((i.severity, i.code, i.field, i.message) for i in found))
                journal.changed(digest)
            issues += found
            self.counts.append(len(found))
        return issues + validate.across_entries(table)


class _Journal:
    """One file's segments as parsed (segment digest -> record, see ``segment_record``), kept in
    ``cache_dir()`` as checksummed frames of marshal data: a load reads every frame and appends
    one with what it parsed anew; the file is written afresh once most of it is stale. A frame
    that does not check out (a torn or corrupt file) makes the whole file ignored and rewritten."""

    def __init__(self, path: Path | None, records: dict | None = None, stored: int = 0):
        self.path = path  # None: kept for one load only
        self.records = records or {}
        self.stored = stored  # records in the file, superseded ones too
        self.fresh: dict[bytes, list] = {}  # parsed, or read again, in this load
        self.live: set[bytes] = set()  # the segments of the file as it is now
        self.slots: dict[int, tuple[dict, bytes, list]] = {}  # id(row) -> (row, digest, its entry record)
        self.outline = FileOutline()  # of the file as this load read it

    @classmethod
    def open(cls, source: Path) -> _Journal:
        path = cache_dir() / f"segments-{_key(source.resolve())}-{_code_digest()[:16]}.bin"
        try:
            data = memoryview(path.read_bytes())
        except OSError:  # none yet, or unreadable: parse
            return cls(path)
        records, stored = {}, 0
        try:
            for frame in _frames(data):
                records.update(frame)
                stored += len(frame)
        except (ValueError, EOFError, TypeError) as err:
            log.info("ignoring corrupt segment cache %s: %s", path, err)
            return cls(path, stored=sys.maxsize)  # rewritten whole at the next save
        return cls(path, records, stored)

    def get(self, digest: bytes) -> list | None:
        self.live.add(digest)
        return self.records.get(digest)

    def put(self, digest: bytes, record: list) -> None:
        self.records[digest] = self.fresh[digest] = record

    def changed(self, digest: bytes) -> None:
        self.fresh[digest] = self.records[digest]

    def add(self, records: list[tuple[bytes, list]]) -> None:
        for digest, record in records:
            self.put(digest, record)

    def save(self) -> int:
        """Keep what this load parsed; how many segments that was."""
        if self.path is not None and self.fresh:
            if self.stored + len(self.fresh) > 2 * len(self.live) + 64:  # mostly stale: only what the file has now
                self.stored, frame = 0, {d: self.records[d] for d in self.live}
            else:
                frame = self.fresh
            payload = marshal.dumps(frame)
            _write_file(self.path, _FRAME_HEAD.pack(len(payload), zlib.crc32(payload)) + payload,
                        append=self.stored > 0)
            if not self.stored:
                _remove_siblings(self.path)
            self.stored += len(frame)
        return len(self.fresh)


_FRAME_HEAD = struct.Struct("<II")  # a frame's length and CRC-32


def _frames(data: memoryview) -> Iterator[dict]:
    pos = 0
    while pos < len(data):
        if pos + _FRAME_HEAD.size > len(data):
            raise ValueError("truncated frame head")
        size, checksum = _FRAME_HEAD.unpack_from(data, pos)
        frame = data[pos + _FRAME_HEAD.size:pos + _FRAME_HEAD.size + size]
        if len(frame) != size or zlib.crc32(frame) != checksum:
            raise ValueError("frame does not match its checksum")
        yield marshal.loads(frame)
        pos += _FRAME_HEAD.size + size

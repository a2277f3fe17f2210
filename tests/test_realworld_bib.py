"""Conformance: every real BibTeX / biblatex file of ``../shared/realworld-bib/`` through the CLI and the explorer.

The 16 files (see that folder's SOURCES.md) were written by Zotero, Better BibLaTeX, JabRef, Mendeley,
dblp, Citavi, BibDesk, Google Scholar, biblatex's examples and by hand. Files that belong together are
one corpus, loaded in the order given: ``ieee-tmi-paper_IEEEabrv.bib`` (only @string macros) before
``ieee-tmi-paper_bibliog.bib`` (whose ``journal = IEEE_J_MI`` uses them).

Everything runs on copies in a temporary folder; nothing under ``/work/shared`` is written. Every
assertion names the file and the first offending entry.

How blocks are counted (``header_lines``): a block starts where a line begins with optional blanks, ``@``,
a word and ``{`` or ``(``; this is also where bibtexparser's splitter, BibTeX and biber start a new block.
@string, @preamble and @comment blocks are not entries. A UTF-8 BOM before the first ``@`` is ignored.
The counts below are those of SOURCES.md and were checked with this rule.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import io
import json
import re
import shutil
import traceback
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from survey import bibfile, merge
from survey.cli import main
from survey.corpus import Corpus, load_corpus
from survey.storage import atomic_write

BIB_DIR = Path(__file__).resolve().parents[2] / "shared" / "realworld-bib"
REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(not BIB_DIR.is_dir(), reason=f"{BIB_DIR} is absent: the real-world .bib "
                                "files (../shared/realworld-bib/) are not checked out next to this repository")

# Entry blocks (@type{ or @type( at the start of a line, not @string/@preamble/@comment) per file.
# Each must end up either as a row of the corpus table or as a block reported with an error
# (unparsable, duplicate key, ...): table rows + error blocks = this number.
EXPECTED_BLOCKS = {
    "acl-anthology-style_thammegowda-dissertation.bib": 233,  # 5 of them reuse a key (duplicate-key errors)
    "bibdesk_contextlab-cdl.bib": 6315,
    "biblatex-examples.bib": 92,
    "citavi-utf8bom_fabian-k-literatur.bib": 48,  # the first one after the BOM
    "dblp-withcrossref_nutanlimaye.bib": 157,  # 118 papers + 39 @proceedings parents
    "google-scholar_l-fedts-refs.bib": 51,
    "handmaintained-crlf_crcox-ttr.bib": 1293,  # 2 duplicate keys; 48 of them are @type( ... ) blocks
    "ieee-tmi-paper_IEEEabrv.bib": 0,  # 202 @STRING only
    "ieee-tmi-paper_bibliog.bib": 133,  # incl. @IEEEtranBSTCTL, @proceeding, @conference
    "jabref-legacy-groupstree_bbt-1730-3.bib": 4,
    "jabref5_hotsmartsandwich-cyrillic.bib": 30,
    "mendeley_05michaelallen-library.bib": 281,
    # 933 headers. Schwanhausser2011 never closes its url value; under strict brace matching it would swallow
    # the 229 entries after it (704 left). The expected reading ends the broken block at the next line that
    # starts with @type{, as BibTeX's own recovery and bibtexparser's splitter do: 1 unparsable block, and
    # the 229 entries after it read normally. 16 entries have an empty key (@article{, / @misc{,).
    "mendeley_aurinabmh-library.bib": 933,
    "zotero-betterbiblatex_dastersociety.bib": 238,
    "zotero-native_crcox-2014.bib": 687,  # incl. the junk @book{__????\n}, without fields
    "zotero-native_fepegar-phd-thesis.bib": 383,
}
GROUPS = [("ieee-tmi-paper_IEEEabrv.bib", "ieee-tmi-paper_bibliog.bib")]  # loaded as one corpus, in this order
CORPORA = [g for g in GROUPS] + [(n,) for n in sorted(EXPECTED_BLOCKS) if not any(n in g for g in GROUPS)]
IDS = ["+".join(names) for names in CORPORA]

# The only error codes an entry may get: the entry cannot be used at all. Missing fields, odd years,
# malformed DOIs, duplicate DOIs are things to look at (warnings), not reasons to reject a real library.
UNUSABLE = {"unparsable", "duplicate-key", "duplicate-field", "missing-key", "empty-key", "encoding"}
STATUSES = set(getattr(merge, "STATUSES", ("added", "duplicate", "invalid")))  # what `add` may report
CRLF_ONLY = {"handmaintained-crlf_crcox-ttr.bib", "jabref-legacy-groupstree_bbt-1730-3.bib"}

_HEADER = re.compile(r"^[ \t]*@[ \t]*(\w+)[ \t]*[{(]\s*([^,\s]*)", re.MULTILINE)
_NOT_ENTRIES = {"string", "preamble", "comment"}


def header_lines(data: bytes) -> dict[int, str]:
    """1-based line -> key as written, of every entry block of a file (see the module docstring)."""
    text = data.decode("utf-8", errors="surrogateescape").removeprefix("\ufeff")
    out, line, last = {}, 1, 0
    for m in _HEADER.finditer(text):
        line += text.count("\n", last, m.start())
        last = m.start()
        if m.group(1).lower() not in _NOT_ENTRIES:
            out[line] = m.group(2)
    return out


@dataclasses.dataclass
class Real:
    """One corpus of real files: their copies in a temporary folder, loaded once."""
    id: str
    names: tuple[str, ...]
    copies: list[Path]
    corpus: Corpus

    @property
    def table(self) -> pd.DataFrame:
        return self.corpus.table

    def bib_args(self) -> list[str]:
        return [a for p in self.copies for a in ("--bib", str(p))]

    def entry(self, row) -> str:
        """Where an entry is, for messages: file:line [key]."""
        return f"{Path(row['file']).name}:{row['line']} [{row['key']}]"

    @functools.cached_property
    def snapshot(self):
        from app.state import ExplorerState
        return ExplorerState(self.copies).snapshot()


def decode(data: bytes, name: str) -> tuple[str, str]:
    """The file's text as the knowledge base reads it, and the encoding that writes it back."""
    if hasattr(bibfile, "decode_bytes"):
        decoded = bibfile.decode_bytes(data, name)
        return decoded.text, decoded.encoding
    return bibfile.decode(data, name)[0], "utf-8"


def encode(text: str, encoding: str = "utf-8") -> bytes:
    return bibfile.encode(text, encoding) if encoding != "utf-8" else bibfile.encode(text)


def invoke(real: Real, *args: str, bib: list[str] | None = None):
    """``survey --bib ... ARGS`` through click's runner; a traceback fails the test, naming the corpus."""
    full = [*(real.bib_args() if bib is None else bib), *args]
    result = CliRunner().invoke(main, full)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        tb = "".join(traceback.format_exception(*result.exc_info))
        pytest.fail(f"{real.id}: `survey {' '.join(args)}` raised {type(result.exception).__name__}: "
                    f"{result.exception}\n{tb}")
    return result


@pytest.fixture(scope="module")
def load_real(tmp_path_factory):
    """A function: names -> the loaded Real corpus of copies of those files (each loaded once per module)."""
    cache: dict[tuple[str, ...], Real] = {}

    def load(names: tuple[str, ...]) -> Real:
        if names not in cache:
            folder = tmp_path_factory.mktemp("realworld")
            copies = [Path(shutil.copy2(BIB_DIR / n, folder / n)) for n in names]
            cache[names] = Real("+".join(names), names, copies, load_corpus(copies))
        return cache[names]
    return load


@pytest.fixture(scope="module", params=CORPORA, ids=IDS)
def real(request, load_real) -> Real:
    return load_real(request.param)


def test_the_folder_holds_the_files_of_sources_md():
    found = sorted(p.name for p in BIB_DIR.glob("*.bib"))
    assert found == sorted(EXPECTED_BLOCKS), f"{BIB_DIR}: files differ from SOURCES.md: {found}"
    for name, expected in EXPECTED_BLOCKS.items():
        got = len(header_lines((BIB_DIR / name).read_bytes()))
        assert got == expected, f"{name}: {got} entry blocks by the counting rule, SOURCES.md says {expected}"


# ---------------------------------------------------------------------------------------------- nothing lost

def test_every_entry_block_is_in_the_table_or_reported(real):
    """Table rows + blocks reported with an error = entry blocks in the files; no row at a line with no block."""
    table = real.table
    for path, name in zip(real.copies, real.names):
        headers = header_lines(path.read_bytes())
        rows = table[table["file"] == str(path)]
        row_lines = list(rows["line"])
        assert len(row_lines) == len(set(row_lines)), (
            f"{name}: two table rows at one line, first at line "
            f"{next(n for n in row_lines if row_lines.count(n) > 1)}")
        error_lines = {i.line for i in real.corpus.errors if i.file == str(path) and i.line in headers}
        lost = sorted(set(headers) - set(row_lines) - error_lines)
        assert not lost, (f"{name}: {len(lost)} entry block(s) neither in the table nor reported as an error; "
                          f"first: line {lost[0]} [{headers[lost[0]]}]")
        invented = sorted(set(row_lines) - set(headers))
        assert not invented, (f"{name}: {len(invented)} table row(s) at a line where no block starts; first: "
                              f"line {invented[0]} [{rows[rows['line'] == invented[0]]['key'].iloc[0]}]")
        left_out = error_lines - set(row_lines)
        assert len(row_lines) + len(left_out) == EXPECTED_BLOCKS[name], (
            f"{name}: {len(row_lines)} rows + {len(left_out)} error blocks != {EXPECTED_BLOCKS[name]}")


def test_empty_keys_are_each_reported(load_real):
    """mendeley_aurinabmh: each of the 16 ``@article{,`` / ``@misc{,`` blocks gets an error of its own (not just
    15 of them reported as duplicates of the first, which then passes as a paper with key ''). SOURCES.md says
    13: the 13 before the unbalanced Schwanhausser2011; 3 more follow it."""
    real = load_real(("mendeley_aurinabmh-library.bib",))
    path = real.copies[0]
    empty = [line for line, key in header_lines(path.read_bytes()).items() if key == ""]
    assert len(empty) == 16, f"{path.name}: {len(empty)} entries with an empty key, expected 16: {empty}"
    error_lines = {i.line for i in real.corpus.errors if i.code in UNUSABLE}
    unreported = [line for line in empty if line not in error_lines]
    assert not unreported, (f"{path.name}: {len(unreported)} of 16 entries with an empty key have no error; "
                            f"first: line {unreported[0]}")


# ------------------------------------------------------------------------------------------------------- CLI

def test_list(real):
    result = invoke(real, "list")
    assert result.exit_code == 0, f"{real.id}: `list` exited {result.exit_code}: {result.output[-2000:]}"
    lines = result.stdout.splitlines()
    keys = list(real.table["key"])
    assert lines and lines[0].split()[:2] == ["key", "year"], f"{real.id}: `list` header is {lines[:1]}"
    bad = next((i for i, (line, key) in enumerate(zip(lines[1:], keys)) if not line.startswith(key)), None)
    assert bad is None, (f"{real.id}: `list` line {bad + 2} is {lines[bad + 1]!r}; expected the entry "
                         f"{real.entry(real.table.iloc[bad])} (a line break inside a title or key?)")
    assert len(lines) == len(keys) + 1, (f"{real.id}: `list` printed {len(lines) - 1} lines for {len(keys)} entries"
                                         + (f"; first entry without a line: {real.entry(real.table.iloc[len(lines) - 1])}"
                                            if len(lines) - 1 < len(keys) else ""))


def test_list_json(real):
    result = invoke(real, "list", "--format", "json")
    assert result.exit_code == 0, f"{real.id}: `list --format json` exited {result.exit_code}: {result.output[-2000:]}"
    records = json.loads(result.stdout)
    keys = list(real.table["key"])
    assert isinstance(records, list) and len(records) == len(keys), (
        f"{real.id}: `list --format json` gave {len(records)} records for {len(keys)} entries")
    got = [r["key"] for r in records]
    bad = next((i for i, (a, b) in enumerate(zip(got, keys)) if a != b), None)
    assert bad is None, f"{real.id}: record {bad} is [{got[bad]}], expected {real.entry(real.table.iloc[bad])}"


def test_validate(real):
    result = invoke(real, "validate")
    assert result.exit_code in (0, 1), f"{real.id}: `validate` exited {result.exit_code}: {result.output[-2000:]}"
    result = invoke(real, "validate", "--format", "json")
    assert result.exit_code in (0, 1), f"{real.id}: `validate --format json` exited {result.exit_code}"
    issues = json.loads(result.stdout)
    assert isinstance(issues, list), f"{real.id}: `validate --format json` is not a list"
    has_errors = any(i["severity"] == "error" for i in issues)
    assert result.exit_code == int(has_errors), (
        f"{real.id}: `validate` exited {result.exit_code} with {'some' if has_errors else 'no'} errors")


def test_only_unusable_entries_are_errors(real):
    """Errors are for entries that cannot be used (unparsable, duplicate key, no key, bad bytes); a missing
    field, an odd year, a DOI in another form or a DOI used twice is a warning."""
    issues = [i.to_dict() for i in real.corpus.issues]  # the library's, so that a crash of the CLI hides nothing
    wrong = [i for i in issues if i["severity"] == "error" and i["code"] not in UNUSABLE]
    if wrong:
        codes = sorted({i["code"] for i in wrong})
        first = wrong[0]
        pytest.fail(f"{real.id}: {len(wrong)} error(s) of codes {codes} that should be warnings; first: "
                    f"{Path(first['file']).name}:{first['line']} [{first['key']}] {first['code']} "
                    f"{first['field']}: {first['message']}")


def test_stats(real):
    result = invoke(real, "stats")
    assert result.exit_code == 0, f"{real.id}: `stats` exited {result.exit_code}: {result.output[-2000:]}"
    result = invoke(real, "stats", "--format", "json")
    assert result.exit_code == 0, f"{real.id}: `stats --format json` exited {result.exit_code}"
    stats = json.loads(result.stdout)
    assert stats["papers"] == len(real.table), f"{real.id}: stats counts {stats['papers']} of {len(real.table)}"
    dated = int(real.table["year"].notna().sum())
    assert sum(stats["per_year"].values()) == dated, (
        f"{real.id}: papers per year sum to {sum(stats['per_year'].values())}, {dated} entries have a year")


def test_export_csv(real):
    result = invoke(real, "export", "--format", "csv")
    assert result.exit_code == 0, f"{real.id}: `export --format csv` exited {result.exit_code}: {result.output[-2000:]}"
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    keys = list(real.table["key"])
    assert len(rows) == len(keys), f"{real.id}: CSV has {len(rows)} rows for {len(keys)} entries"
    bad = next((i for i, (r, k) in enumerate(zip(rows, keys)) if r["key"] != k), None)
    assert bad is None, f"{real.id}: CSV row {bad} is [{rows[bad]['key']}], expected {real.entry(real.table.iloc[bad])}"


def _export_and_reload(real: Real, tmp_path: Path) -> Corpus:
    result = invoke(real, "export", "--format", "bibtex")
    assert result.exit_code == 0, f"{real.id}: `export` exited {result.exit_code}: {result.output[-2000:]}"
    out = tmp_path / "exported.bib"
    out.write_bytes(encode(result.stdout))
    return load_corpus([out], use_cache=False)


def test_export_bibtex_parses_back(real, tmp_path):
    again = _export_and_reload(real, tmp_path)
    keys, back = list(real.table["key"]), list(again.table["key"])
    assert len(back) == len(keys), (
        f"{real.id}: the BibTeX export reads back as {len(back)} entries, not {len(keys)}; first missing: "
        + next((real.entry(r) for _, r in real.table.iterrows() if r["key"] not in set(back)), "(none)"))
    broken = [i for i in again.errors if i.code in ("unparsable", "duplicate-key", "duplicate-field")]
    assert not broken, f"{real.id}: the export reads back with errors; first: {broken[0]}"


def _same(a, b) -> bool:
    if isinstance(a, list) or isinstance(b, list):
        return isinstance(a, list) and isinstance(b, list) and a == b
    if pd.isna(a) or pd.isna(b):
        return bool(pd.isna(a) and pd.isna(b))
    return a == b


def test_export_bibtex_keeps_what_each_entry_says(real, tmp_path):
    """Read back, every exported entry has the same title, authors, year and venue (macros included)."""
    again = _export_and_reload(real, tmp_path).table.drop_duplicates("key").set_index("key")
    for _, row in real.table.drop_duplicates("key").iterrows():
        if row["key"] not in again.index:
            continue  # test_export_bibtex_parses_back says so
        other = again.loc[row["key"]]
        for column in ("title", "authors", "year", "venue"):
            a, b = row[column], other[column]
            assert _same(a, b), (f"{real.id}: {real.entry(row)}: {column} is {a!r} in the corpus but {b!r} in its "
                          "BibTeX export (an @string of another file left out?)")


def test_add_dry_run_then_for_real(real, tmp_path):
    """``add`` of each file into a copy of the bundled corpus: one outcome per entry; nothing of the
    target lost; every entry reported as added is there afterwards."""
    folder = tmp_path / "bib"
    shutil.copytree(REPO / "bib", folder, ignore=shutil.ignore_patterns("*.lock", "*.bak", "openalex"))
    target = folder / "corpus.bib"
    bib = ["--bib", str(target)]
    old_keys = set(load_corpus([target], use_cache=False).table["key"])
    for source, name in zip(real.copies, real.names):
        entries = EXPECTED_BLOCKS[name]
        for dry in (True, False):
            before = target.read_bytes()
            args = ["add", str(source), "--json"] + (["--dry-run"] if dry else [])
            result = invoke(real, *args, bib=bib)
            what = f"{name}: `add{' --dry-run' if dry else ''}`"
            assert result.exit_code in (0, 1), f"{what} exited {result.exit_code}: {result.output[-2000:]}"
            report = json.loads(result.stdout)
            outcomes = report["outcomes"]
            statuses = {o["status"] for o in outcomes}
            assert statuses <= STATUSES, f"{what}: outcomes {statuses - STATUSES} are none of {sorted(STATUSES)}"
            lines = [o["line"] for o in outcomes]
            headers = header_lines(source.read_bytes())
            missing = sorted(set(headers) - set(lines))
            assert len(outcomes) == entries, (
                f"{what}: {len(outcomes)} outcomes for {entries} entries" +
                (f"; first entry without one: line {missing[0]} [{headers[missing[0]]}]" if missing else ""))
            assert result.exit_code == int("invalid" in statuses), (
                f"{what}: exit {result.exit_code} with outcomes {sorted(statuses)}")
            after = target.read_bytes()
            if dry:
                assert after == before, f"{what} changed the target"
                continue
            assert after.startswith(before.rstrip(b"\n")), f"{what}: the target's old text is no longer its start"
            new_keys = set(load_corpus([target], use_cache=False).table["key"])
            lost = sorted(old_keys - new_keys)
            assert not lost, f"{what}: entries of the target lost, first [{lost[0]}]"
            added = [o for o in outcomes if o["status"] == "added"]
            absent = [o for o in added if o["key"] not in new_keys]
            assert not absent, (f"{what}: {len(absent)} entries reported added are not in the target; first: "
                                f"line {absent[0]['line']} [{absent[0]['key']}]")
            old_keys = new_keys


# --------------------------------------------------------------------------------------------- round trips

def _first_difference(a: bytes, b: bytes) -> str:
    i = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    line = a.count(b"\n", 0, i) + 1
    return f"first difference at byte {i} (line {line}): {a[i:i + 20]!r} vs {b[i:i + 20]!r}"


def test_decode_encode_is_byte_identical(real, tmp_path):
    for source, name in zip(real.copies, real.names):
        data = source.read_bytes()
        text, encoding = decode(data, name)
        again = encode(text, encoding)
        assert again == data, f"{name}: decode+encode is not lossless; {_first_difference(data, again)}"
        out = tmp_path / name
        atomic_write(out, again)
        assert out.read_bytes() == data, f"{name}: atomic_write changed the bytes; " \
                                         f"{_first_difference(data, out.read_bytes())}"


_BRACED_TITLE = re.compile(r"^[ \t]*title[ \t]*=[ \t]*\{", re.IGNORECASE | re.MULTILINE)


def _editable(real: Real, path: Path):
    """The first entry of ``path`` with a braced title and a key of its own, or None."""
    rows = real.table[real.table["file"] == str(path)]
    counts = rows["key"].value_counts()
    for _, row in rows.iterrows():
        if row["key"] and counts[row["key"]] == 1 and _BRACED_TITLE.search(row["raw"]) and "title" in row["fields"]:
            return row
    return None


def test_set_field_and_back_is_byte_identical(real, tmp_path):
    from survey.edit import set_field

    for source, name in zip(real.copies, real.names):
        row = _editable(real, source)
        if row is None:
            continue  # a file of @string only
        copy = Path(shutil.copy2(source, tmp_path / name))
        original = copy.read_bytes()
        old = row["fields"]["title"]
        set_field(copy, row["key"], "title", "A title set by the round-trip test")
        changed = load_corpus([copy], use_cache=False).table
        assert len(changed) == int((real.table["file"] == str(source)).sum()), (
            f"{name}: setting the title of {real.entry(row)} changed the number of entries")
        assert list(changed[changed["key"] == row["key"]]["title"]) == ["A title set by the round-trip test"], (
            f"{name}: the new title of {real.entry(row)} is not read back")
        set_field(copy, row["key"], "title", old)
        assert copy.read_bytes() == original, (f"{name}: title of {real.entry(row)} set and set back, but the file "
                                               f"changed; {_first_difference(original, copy.read_bytes())}")


def test_an_edit_changes_only_its_entry_and_keeps_line_endings(real, tmp_path):
    """The tag editor's write: bytes outside the edited block unchanged; a CRLF file stays CRLF."""
    from survey.edit import set_field

    for source, name in zip(real.copies, real.names):
        row = _editable(real, source)
        if row is None:
            continue
        copy = Path(shutil.copy2(source, tmp_path / name))
        original = copy.read_bytes()
        raw = encode(row["raw"])
        start = original.find(raw)
        assert start >= 0, f"{name}: the raw text of {real.entry(row)} is not in the file as it is"
        set_field(copy, row["key"], "keywords", "type:method, round trip")
        after = copy.read_bytes()
        tail = original[start + len(raw):]
        assert after.startswith(original[:start]) and after.endswith(tail), (
            f"{name}: editing {real.entry(row)} changed bytes outside its block")
        if name in CRLF_ONLY:
            bare = re.search(rb"(?<!\r)\n", after)
            assert bare is None, (f"{name}: editing {real.entry(row)} wrote a bare LF into a CRLF file "
                                  f"at byte {bare.start()}: {after[max(0, bare.start() - 30):bare.start() + 5]!r}")


# ---------------------------------------------------------------------------------------------- explorer

def test_explorer_renders(real):
    from app.filters import FilterState
    from app.interactions import render

    snap = real.snapshot
    table = snap.table
    n = len(table)
    page = render(snap, FilterState())
    assert page["count"].startswith(f"{n} of {n}"), f"{real.id}: the page says {page['count']!r} for {n} entries"
    title = next((t for t in table["title"] if t.strip()), "")
    words = sorted((w for w in re.findall(r"[^\W\d_]{3,}", title)), key=len, reverse=True)
    if words:
        found = render(snap, FilterState(text=words[0]))
        assert not found["count"].startswith("0 "), f"{real.id}: search {words[0]!r} (from a title) finds nothing"
    tag = next((value if category == "(free tags)" else f"{category}:{value}"
                for category, counts in snap.tag_counts.items() for value in counts if value != "?"), "type:?")
    tagged = render(snap, FilterState.with_tags(require=(tag,)))
    assert not tagged["count"].startswith("0 "), f"{real.id}: tag {tag!r} (from the corpus) selects nothing"
    if n:
        key = table["key"].iloc[0]
        selected = render(snap, FilterState(paper=key, text=words[0] if words else ""))
        assert selected["details"], f"{real.id}: no detail panel for [{key}]"


# --------------------------------------------------------------------------------------- per-file facts

_DATE_YEAR = re.compile(r"^\s*\{?\s*(\d{4})(?:[-/]|\s*\}?\s*$)")


def test_biblatex_date_gives_the_year(real):
    """An entry with no year but a biblatex ``date`` (2019, 2019-05, 2019-05-04, 1984/1986) has that year."""
    for _, row in real.table.iterrows():
        fields = row["fields"]
        if fields.get("year", "").strip() or not fields.get("date"):
            continue
        m = _DATE_YEAR.match(fields["date"])
        if m:
            assert row["year"] == int(m.group(1)), (
                f"{real.entry(row)}: date = {fields['date']!r} but the year is {row['year']!r}")


@pytest.mark.parametrize("name, at_least", [("zotero-betterbiblatex_dastersociety.bib", 220),
                                            ("biblatex-examples.bib", 85)])
def test_biblatex_files_have_years(load_real, name, at_least):
    """SOURCES.md: 229 of 238 Better BibLaTeX entries carry a date (never a year); 89 of 92 of biblatex's
    examples carry a year or a date."""
    real = load_real((name,))
    table = real.table
    dated = int(table["year"].notna().sum())
    first = next((real.entry(r) for _, r in table.iterrows() if pd.isna(r["year"]) and r["fields"].get("date")), "")
    assert dated >= at_least, f"{name}: only {dated} of {len(table)} entries have a year; first with a date but none: {first}"


_PARENT_TITLE_TYPES = {"proceedings", "book", "collection", "mvbook", "mvcollection", "mvproceedings", "reference"}


def _provides(parent: pd.Series, name: str) -> bool:
    f = parent["fields"]
    if name == "year":
        return bool(f.get("year", "").strip() or f.get("date", "").strip())
    if name == "booktitle":  # biblatex: a @proceedings/@collection parent's title is the child's booktitle
        return bool(f.get("booktitle", "").strip() or (parent["entry_type"] in _PARENT_TITLE_TYPES
                                                       and f.get("title", "").strip()))
    return bool(f.get(name, "").strip())


def test_crossref_children_inherit_from_their_parent(real):
    """An entry with ``crossref`` takes the fields it lacks from its parent, for display and validation."""
    table = real.table
    by_key = {k.lower(): r for k, (_, r) in zip(table["key"], table.iterrows())}
    issues = [i for i in real.corpus.issues if i.code == "missing-field"]
    for _, row in table.iterrows():
        parent_key = row["fields"].get("crossref", "").strip().strip('{}"').strip().lower()
        if not parent_key or parent_key not in by_key:
            continue
        parent = by_key[parent_key]
        wrong = [i for i in issues if i.key == row["key"] and i.line == row["line"] and _provides(parent, i.field)]
        assert not wrong, (f"{real.entry(row)}: missing-field {wrong[0].field!r} ({wrong[0].severity}) although "
                           f"its crossref parent [{parent['key']}] gives it")
        if _provides(parent, "year"):
            assert not pd.isna(row["year"]), f"{real.entry(row)}: no year although [{parent['key']}] has one"
        if _provides(parent, "booktitle") and not any(row["fields"].get(f, "").strip() for f in ("journal", "journaltitle")):
            assert row["venue"], f"{real.entry(row)}: no venue although [{parent['key']}] has a booktitle/title"


def test_dblp_crossref_children(load_real):
    real = load_real(("dblp-withcrossref_nutanlimaye.bib",))
    table = real.table
    children = table[table["fields"].map(lambda f: "crossref" in f)]
    assert len(children) == 41, f"dblp: {len(children)} entries with crossref, SOURCES.md says 41"
    keyed = {(i.key, i.line) for i in real.corpus.issues if i.code == "missing-field" and i.field in ("booktitle", "year")}
    for _, row in children.iterrows():
        assert (row["key"], row["line"]) not in keyed, f"{real.entry(row)}: missing booktitle/year reported"
        assert row["venue"] and not pd.isna(row["year"]), f"{real.entry(row)}: venue {row['venue']!r}, year {row['year']!r}"


_IEEE = ("ieee-tmi-paper_IEEEabrv.bib", "ieee-tmi-paper_bibliog.bib")
_MACRO_NAME = re.compile(r"'([^']+)'")


def test_ieee_macros_of_the_abbreviations_file_resolve(load_real):
    real = load_real(_IEEE)
    abbrv = (BIB_DIR / _IEEE[0]).read_text(encoding="utf-8")
    defined = {m.lower() for m in re.findall(r"@STRING\s*\{\s*(\w+)\s*=", abbrv, re.IGNORECASE)}
    assert len(defined) >= 190 and "ieee_j_mi" in defined
    table = real.table
    users = table[table["raw"].str.contains(r"journal\s*=\s*IEEE_J_MI\b", regex=True)]
    assert len(users) >= 4, f"{_IEEE[1]}: {len(users)} entries with journal = IEEE_J_MI, expected 4"
    for _, row in users.iterrows():
        assert row["venue"] == "IEEE Trans. Med. Imag.", (
            f"{real.entry(row)}: journal = IEEE_J_MI shows as {row['venue']!r}, not 'IEEE Trans. Med. Imag.'")
    wrong = [i for i in real.corpus.issues if i.code == "undefined-macro"
             and any(n.lower() in defined for n in _MACRO_NAME.findall(i.message))]
    assert not wrong, (f"{_IEEE[1]}: {len(wrong)} undefined-macro warnings for macros that {_IEEE[0]} defines; "
                       f"first: {Path(wrong[0].file).name}:{wrong[0].line} [{wrong[0].key}] {wrong[0].message}")
    result = invoke(real, "list", "--search", "Trans. Med. Imag.", "--format", "json")
    assert len(json.loads(result.stdout)) >= len(users), f"{real.id}: search for the resolved journal misses entries"


def test_macros_defined_nowhere_are_still_reported(load_real):
    """handmaintained-crlf: AckleyD, HintonG, ... live in a file that is not included: a warning each."""
    real = load_real(("handmaintained-crlf_crcox-ttr.bib",))
    undefined = [i for i in real.corpus.issues if i.code == "undefined-macro"]
    assert any("AckleyD" in i.message for i in undefined), "handmaintained-crlf: no undefined-macro for AckleyD"
    assert all(i.severity == "warning" for i in undefined), "handmaintained-crlf: an undefined macro is an error"


def test_citavi_bom_is_not_part_of_the_first_key(load_real):
    real = load_real(("citavi-utf8bom_fabian-k-literatur.bib",))
    table = real.table
    assert len(table) and table["key"].iloc[0] == "ATOM.07", (
        f"citavi: the first entry's key is {table['key'].iloc[0]!r}, expected 'ATOM.07' (BOM not stripped?)")
    with_bom = [real.entry(r) for _, r in table.iterrows()
                if "\ufeff" in r["key"] or "\ufeff" in r["entry_type"] or any("\ufeff" in f for f in r["fields"])]
    assert not with_bom, f"citavi: a BOM inside a key, type or field name; first: {with_bom[0]}"
    assert table["entry_type"].iloc[0] == "www", f"citavi: first entry type {table['entry_type'].iloc[0]!r}"

"""The load cache: an incremental load equals a full parse exactly, a broken cache is ignored, the
vocabulary is never served stale, the fast entry reader reads as bibtexparser's splitter does, and
``survey --help`` starts without pandas."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import pandas as pd
import pytest
from bibtexparser.splitter import Splitter
from hypothesis import given, settings

from survey import bibfile
from survey import corpus as corpus_mod
from survey.bibfile import parse_text
from survey.records import entry_row
from tests.conftest import REPO, entry
from tests.test_property_corpus import corpora

VOCABULARY = '[categories.method]\nvalues = ["GAN", "DDPM"]\n\n[categories.modality]\nvalues = ["CT", "MRI"]\n'


def library(n: int = 30) -> str:
    """A file with what a load must get right: macros used later, bare numbers and months, an
    unknown tag, a duplicate key, an unparsable block, an undefined macro, a crossref pair."""
    blocks = ['% a library\n@string{MIA = "Medical Image Analysis"}\n@preamble{"\\newcommand{\\x}{}"}\n']
    for i in range(n):
        journal = "MIA" if i % 3 == 0 else "{IEEE TMI}"
        blocks.append(entry(f"K{i:03d}", f"Paper {i} on M{{\\\"u}}ller's lesions", 2000 + i, f"10.1/k.{i}",
                            journal=journal, month="jun", keywords="{method:GAN, modality:CT}"))
    blocks[6] = entry("K004", "A second use of a key")
    blocks[9] = "@article{Broken,\n  title = {never closed,\n  year = {2020}\n}\n"
    blocks[12] = entry("Undef", "Undefined macro", journal="NOSUCH", keywords="{method:VAE}")
    blocks.append("@proceedings{Proc2020,\n  title = {Proceedings of Things},\n  year = {2020},\n"
                  "  publisher = {ACM}\n}\n")
    blocks.append(entry("Child", "A part", crossref="{Proc2020}").replace("@article", "@inproceedings"))
    return "\n".join(blocks)


def assert_same_corpus(got, expected):
    """Equal column by column (values and dtypes), issue by issue, file by file."""
    assert list(got.table.columns) == list(expected.table.columns)
    for column in expected.table.columns:
        a, b = got.table[column], expected.table[column]
        assert a.dtype == b.dtype, column
        assert [_comparable(x) for x in a] == [_comparable(x) for x in b], column
    assert got.issues == expected.issues
    assert [(f.path, f.sha256, f.strings, f.string_raw, f.preambles, f.encoding) for f in got.files] == \
        [(f.path, f.sha256, f.strings, f.string_raw, f.preambles, f.encoding) for f in expected.files]


def _comparable(value):
    if value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "<missing>"
    return value


@pytest.fixture
def cached(tmp_path, monkeypatch):
    """A library with its vocabulary, a cache folder of its own, and a count of parsed segments."""
    monkeypatch.setenv("SURVEY_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "tags.toml").write_text(VOCABULARY)
    path = tmp_path / "lib.bib"
    path.write_text(library())
    parsed = []
    real = corpus_mod.parse_segment
    monkeypatch.setattr(corpus_mod, "parse_segment", lambda segment: parsed.append(segment) or real(segment))
    return path, parsed


def reload_matches_full_parse(path, parsed) -> int:
    """Load from the cache, check it against a parse without one; how many segments it parsed."""
    parsed.clear()
    incremental = corpus_mod.load_corpus([path])
    count = len(parsed)
    assert_same_corpus(incremental, corpus_mod.load_corpus([path], use_cache=False))
    return count


def test_an_incremental_load_equals_a_full_parse(cached):
    path, parsed = cached
    first = corpus_mod.load_corpus([path])
    assert {"K004", "Child"} <= set(first.table["key"]) and first.errors
    assert reload_matches_full_parse(path, parsed) == 0  # the same text: nothing parsed again

    text = path.read_text()
    path.write_text(text.replace("Paper 7 on", "Paper 7, edited, on"))
    assert reload_matches_full_parse(path, parsed) == 1

    path.write_text(path.read_text() + "\n" + entry("Added", "An added paper with a longer\ntitle", journal="MIA"))
    assert reload_matches_full_parse(path, parsed) <= 2  # the new entry (and the end of the file it follows)

    path.write_text(path.read_text().replace(entry("K020", "Paper 20 on M{\\\"u}ller's lesions", 2020, "10.1/k.20",
                                                    journal="{IEEE TMI}", month="jun",
                                                    keywords="{method:GAN, modality:CT}"), ""))
    assert reload_matches_full_parse(path, parsed) <= 1
    assert "K020" not in set(corpus_mod.load_corpus([path]).table["key"])

    # a macro defined anew half way (its key in another case: not a duplicate): the entries after it
    # that use it are read again, and only they
    text = path.read_text()
    path.write_text(text.replace("@article{K015", '@string{mia = "Med. Image Anal."}\n@article{K015'))
    users = [f"K{i:03d}" for i in range(15, 30, 3)] + ["Added"]
    assert reload_matches_full_parse(path, parsed) == 1 + len(users)
    venues = corpus_mod.load_corpus([path]).table.set_index("key")["venue"]
    assert venues["K003"] == "Medical Image Analysis" and set(venues[users]) == {"Med. Image Anal."}

    path.write_text(path.read_text().replace('@string{MIA = "Medical Image Analysis"}', '@string{MIA = "MedIA"}'))
    reload_matches_full_parse(path, parsed)
    venues = corpus_mod.load_corpus([path]).table.set_index("key")["venue"]
    assert venues["K003"] == "MedIA" and venues["K018"] == "Med. Image Anal."


def test_segments_parsed_by_worker_processes_are_cached_alike(cached, monkeypatch):
    path, parsed = cached
    path.write_text("".join(entry(f"P{i:03d}", f"Paper {i}", 2000 + i % 20, f"10.2/p.{i}", month="may")
                            for i in range(200)))
    monkeypatch.setattr(corpus_mod, "PARALLEL_MIN_CHARS", 1000)
    monkeypatch.setattr(corpus_mod, "_workers", lambda: 3)
    expected = corpus_mod.load_corpus([path], use_cache=False)
    assert_same_corpus(corpus_mod.load_corpus([path]), expected)  # parsed in pieces, and cached
    assert reload_matches_full_parse(path, parsed) == 0


def test_a_macro_changed_in_an_earlier_file_reads_its_users_again(cached, tmp_path):
    path, parsed = cached
    macros = tmp_path / "abbrev.bib"
    macros.write_text('@string{TMI = "IEEE Transactions on Medical Imaging"}\n\n' + entry("K001", "In both files"))
    path.write_text(library() + "\n" + entry("UsesTmi", "Uses a macro of the other file", journal="TMI"))
    corpus_mod.load_corpus([macros, path])
    macros.write_text(macros.read_text().replace("IEEE Transactions on Medical Imaging", "IEEE Trans. Med. Imaging"))
    parsed.clear()
    got = corpus_mod.load_corpus([macros, path])
    assert len(parsed) == 2  # the macro's segment, and the one entry that uses it
    assert_same_corpus(got, corpus_mod.load_corpus([macros, path], use_cache=False))
    assert got.table.set_index("key")["venue"]["UsesTmi"] == "IEEE Trans. Med. Imaging"
    assert any(i.code == "duplicate-key" and i.key == "K001" and i.file == str(path) for i in got.errors)


@pytest.mark.parametrize("damage", ["truncate", "garble", "empty"])
def test_a_corrupt_or_truncated_cache_is_ignored_and_rebuilt(cached, damage):
    path, parsed = cached
    expected = corpus_mod.load_corpus([path], use_cache=False)
    corpus_mod.load_corpus([path])
    corpus_mod.load_corpus([path])  # the second load of the same text writes the whole-corpus cache too
    folder = corpus_mod.cache_dir()
    files = sorted(folder.glob("segments-*.bin")) + sorted(folder.glob("corpus-*.pkl"))
    assert len(files) == 2
    for f in files:
        data = f.read_bytes()
        f.write_bytes({"truncate": data[:len(data) // 2], "empty": b"",
                       "garble": data[:100] + bytes(255 - b for b in data[100:300]) + data[300:]}[damage])
    assert_same_corpus(corpus_mod.load_corpus([path]), expected)
    parsed.clear()
    assert_same_corpus(corpus_mod.load_corpus([path]), expected)  # rebuilt: read, not parsed
    assert not parsed


def test_the_cache_keeps_one_version_of_each_file_and_corpus(cached):
    path, _ = cached
    for i in range(3):
        path.write_text(library().replace("Paper 7 on", f"Paper 7, version {i}, on"))
        corpus_mod.load_corpus([path])
        corpus_mod.load_corpus([path])  # each version is loaded twice: a whole-corpus pickle each time
    folder = corpus_mod.cache_dir()
    assert len(list(folder.glob("corpus-*.pkl"))) == 1 and len(list(folder.glob("segments-*.bin"))) == 1


def test_cache_files_get_the_mode_the_users_umask_gives(cached):
    path, _ = cached
    old = os.umask(0o027)
    try:
        corpus_mod.load_corpus([path])
        path.write_text(library().replace("Paper 7 on", "Paper 7, edited, on"))
        corpus_mod.load_corpus([path])  # the segment cache appended to
        corpus_mod.load_corpus([path])  # the same text again: the whole-corpus cache
    finally:
        os.umask(old)
    files = list(corpus_mod.cache_dir().glob("*-*"))
    assert {f.name.split("-")[0] for f in files} == {"segments", "corpus"}
    assert {oct(f.stat().st_mode & 0o777) for f in files} == {oct(0o640)}


def test_a_changed_vocabulary_is_never_served_stale(cached, tmp_path):
    path, _ = cached
    before = corpus_mod.load_corpus([path])
    corpus_mod.load_corpus([path])
    assert not any(i.code == "unknown-tag" and i.key == "K001" for i in before.issues)
    (tmp_path / "tags.toml").write_text(VOCABULARY.replace('"CT", ', ""))
    after = corpus_mod.load_corpus([path])
    assert any(i.code == "unknown-tag" and i.key == "K001" for i in after.issues)
    assert_same_corpus(after, corpus_mod.load_corpus([path], use_cache=False))


def test_a_load_gives_what_parse_text_and_entry_row_give(tmp_path):
    text = library() + '\n@misc{Paren2020(\n  title = "Quoted {"} value",\n  year = 2020\n)\n@misc{NoFields}\n'
    path = tmp_path / "c.bib"
    path.write_text(text)
    loaded = corpus_mod.load_corpus([path], use_cache=False)
    bib = parse_text(text, str(path))
    expected = corpus_mod.build_corpus([bib], corpus_mod.vocabulary_for([path])[0], [loaded.files[0].sha256],
                                       [entry_row(e, str(path)) for e in bib.entries])
    assert_same_corpus(loaded, expected)


TRICKY_ENTRIES = [
    '@article{A,\n  title = {One {nested {deeply}} value},\n  author = "Quoted, {"}Name{"}",\n  year = 2020\n}',
    '@article{B,\n  title = {Escaped \\} and \\{ braces},\n  note = {a line\\\nafter a backslash},\n  x = {1}}',
    '@article{C, title = {LeQua @ {CLEF}}, year = {2022}, }  trailing comment text\n',
    '@article{D,\n  title = {T},\n  title = {Twice}\n}',
    '@ARTICLE  {E,\n  Journal = MIA # " 2020" # {x},\n  month = jan\n}',
    '@article{F,\n  title = {Unclosed,\n  year = {2020}\n',
    '@article{G,\n  dangling\n}',
    '@article{H\n}',
    '@misc{I, a = {1}, b = "2", c = 3, d = {4} # "5"}',
    '  @book{J,\n  title = {x}}',
]


@pytest.mark.parametrize("text", TRICKY_ENTRIES)
def test_the_fast_entry_reader_reads_as_the_splitter_does(text):
    blocks = bibfile.parse_segment(text)
    expected = [b for b in map(bibfile._block_of, Splitter(text).split().blocks) if b is not None]
    assert blocks == expected


def test_help_imports_no_pandas():
    """``survey --help`` and every ``survey COMMAND --help`` (the installed entry point, serve included)
    start without pandas, the corpus or Dash."""
    script = """
import sys
import click
from app.cli import main

def helps(group, path=()):
    for name, command in group.commands.items():
        yield [*path, name, "--help"]
        if isinstance(command, click.Group):
            yield from helps(command, (*path, name))

for args in [["--help"], *helps(main)]:
    try:
        main(args)
    except SystemExit:
        pass
print(sorted(m for m in ("pandas", "numpy", "survey.corpus", "dash", "flask") if m in sys.modules))
"""
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True)
    assert "Usage:" in result.stdout and result.stdout.count("Usage:") > 10
    assert result.stdout.strip().splitlines()[-1] == "[]"


@settings(max_examples=200, deadline=None)
@given(generated=corpora())
def test_the_fast_entry_reader_agrees_with_the_splitter_on_generated_corpora(generated):
    """The fast path reads plain entries itself; on every segment of odd generated text it must give
    exactly the blocks that bibtexparser's splitter gives."""
    for _, _, segment in bibfile.segments(generated.text):
        expected = [b for b in map(bibfile._block_of, Splitter(segment).split().blocks) if b is not None]
        assert bibfile.parse_segment(segment) == expected, segment

"""Editing one field of one entry leaves every other byte of the file as it was."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from survey import bibfile, load_corpus
from survey.edit import EditError, set_field, set_keywords
from survey.tags import parse_keywords
from tests.conftest import entry

HEAD = "% my comment\n@string{MIA = {Medical Image Analysis}}\n\n"


def test_replacing_a_multiline_value_changes_only_that_value(tmp_path):
    path = tmp_path / "c.bib"
    first = entry("A2020", "First", keywords="{method:GAN,\n    modality:CT}", note='"a, b"')
    second = entry("B2021", "Second", keywords="{method:GAN}")
    path.write_text(HEAD + first + "\n" + second)
    set_field(path, "A2020", "keywords", "method:DDPM, task:synthesis")
    text = path.read_text()
    assert text == HEAD + first.replace("{method:GAN,\n    modality:CT}", "{method:DDPM, task:synthesis}") \
        + "\n" + second
    table = load_corpus([path], use_cache=False).table.set_index("key")
    assert table.loc["A2020"].tags == {"method": ["DDPM"], "task": ["synthesis"]}
    assert (tmp_path / "c.bib.bak").read_text() == HEAD + first + "\n" + second


def test_a_missing_field_is_appended_in_the_entry(tmp_path):
    path = tmp_path / "c.bib"
    path.write_text(entry("A2020", "First"))
    set_field(path, "A2020", "keywords", "type:method")
    corpus = load_corpus([path], use_cache=False)
    assert corpus.table.iloc[0].tags == {"type": ["method"]} and not corpus.issues
    assert path.read_text().endswith("year = 2020,\n  keywords = {type:method}\n}\n")


def test_a_field_name_inside_another_value_is_not_touched(tmp_path):
    path = tmp_path / "c.bib"
    path.write_text(entry("A2020", "About keywords = x", abstract="{keywords = {not this}}",
                          keywords="{method:GAN}"))
    set_field(path, "A2020", "keywords", "method:LoRA")
    row = load_corpus([path], use_cache=False).table.iloc[0]
    assert row.title == "About keywords = x" and row.abstract == "keywords = not this"
    assert row.tags == {"method": ["LoRA"]}


def test_errors_name_the_file_entry_and_field(tmp_path):
    path = tmp_path / "c.bib"
    path.write_text(entry("A2020", "First"))
    before = path.read_bytes()
    with pytest.raises(EditError, match=r"c\.bib: no entry \[Nope\]"):
        set_field(path, "Nope", "keywords", "x")
    with pytest.raises(EditError, match=r"\[A2020\] keywords: the new value has unbalanced braces"):
        set_field(path, "A2020", "keywords", "method:{GAN")
    assert path.read_bytes() == before


def keywords_of(path: Path, key: str = "A2020") -> str:
    entries = bibfile.parse_text(path.read_text(), str(path)).entries
    return next(e for e in entries if e.key == key).fields["keywords"]


def test_saving_the_same_tags_writes_nothing(tmp_path):
    path = tmp_path / "c.bib"
    path.write_text(entry("A2020", "First", keywords="{method:GAN; modality:CT;free tag}"))
    before, stamp = path.read_bytes(), path.stat().st_mtime_ns
    assert set_keywords(path, "A2020", "free tag, modality:CT,  method : GAN, method:GAN") is False
    assert path.read_bytes() == before and path.stat().st_mtime_ns == stamp
    assert [p.name for p in tmp_path.iterdir()] == ["c.bib"]  # no backup, not even a lock file


@pytest.mark.parametrize(("old", "new"), [
    ("method:GAN; modality:CT", "method:GAN; modality:CT; task:synthesis"),
    ("method:GAN;modality:CT", "method:GAN;modality:CT;task:synthesis"),
    ("method:GAN,modality:CT", "method:GAN,modality:CT,task:synthesis"),
    ("method:GAN,\n    modality:CT", "method:GAN, modality:CT, task:synthesis"),
])
def test_the_entry_keeps_its_own_separator(tmp_path, old, new):
    path = tmp_path / "c.bib"
    path.write_text(entry("A2020", "First", keywords="{" + old + "}"))
    assert set_keywords(path, "A2020", "task:synthesis, modality:CT, method:GAN") is True
    assert keywords_of(path) == new


def test_kept_tags_keep_their_order_removed_go_and_new_come_last(tmp_path):
    path = tmp_path / "c.bib"
    path.write_text(entry("A2020", "First", keywords="{task:b, method:a, free, type:c}"))
    assert set_keywords(path, "A2020", "new:d, type:c, method:a, other")
    assert keywords_of(path) == "method:a, type:c, new:d, other"


def test_a_crlf_file_stays_crlf(tmp_path):
    path = tmp_path / "c.bib"
    path.write_bytes((entry("A2020", "First") + "\n" + entry("B2021", "Second", keywords="{x}"))
                     .replace("\n", "\r\n").encode())
    set_keywords(path, "A2020", "type:method")
    set_field(path, "B2021", "note", "appended")
    data = path.read_bytes()
    assert data.count(b"\n") == data.count(b"\r\n") and b"keywords = {type:method}\r\n}" in data
    assert keywords_of(path) == "type:method"


def test_a_latin1_file_is_edited_in_latin1(tmp_path):
    path = tmp_path / "c.bib"
    path.write_bytes(entry("A2020", "Caf\xe9 imaging", keywords="{method:GAN}").encode("latin-1"))
    assert set_keywords(path, "A2020", "method:GAN, r\xe9sum\xe9")
    data = path.read_bytes()
    assert b"Caf\xe9 imaging" in data and b"keywords = {method:GAN, r\xe9sum\xe9}" in data
    with pytest.raises(EditError, match=r"c\.bib: \[A2020\] .*cannot be written in"):
        set_keywords(path, "A2020", "method:\u03b1")
    assert path.read_bytes() == data


def test_a_symlinked_file_is_updated_through_the_link(tmp_path):
    real = tmp_path / "zotero" / "export.bib"
    real.parent.mkdir()
    real.write_text(entry("A2020", "First", keywords="{method:GAN}"))
    link = tmp_path / "c.bib"
    link.symlink_to(real)
    assert set_keywords(link, "A2020", "method:GAN, modality:MRI")
    assert link.is_symlink() and keywords_of(real) == "method:GAN, modality:MRI"
    assert (real.parent / "export.bib.bak").exists() and not (tmp_path / "c.bib.bak").exists()


def test_the_explorer_save_reports_whether_it_wrote(tmp_path):
    from app.state import ExplorerState

    path = tmp_path / "c.bib"
    path.write_text(entry("A2020", "First", keywords="{method:GAN; modality:CT}"))
    state = ExplorerState([path])
    assert state.set_tags("A2020", "modality:CT, method:GAN") is False
    assert state.set_tags("A2020", "modality:CT") is True
    assert keywords_of(path) == "modality:CT"


def tag_set(value: str) -> tuple[set[tuple[str, str]], set[str]]:
    tags, free = parse_keywords(value)
    return {(c, v) for c, values in tags.items() for v in values}, set(free)


words = st.text("abcxyz019-_ ", min_size=1, max_size=6).map(lambda w: " ".join(w.split())).filter(bool)
tags = st.one_of(words, st.tuples(st.sampled_from(["method", "modality", "task"]), words).map(":".join))
separators = st.sampled_from([",", ", ", ";", "; "])


@settings(max_examples=40, deadline=None)
@given(written=st.lists(tags, unique=True, max_size=6), separator=separators, data=st.data())
def test_same_tags_in_any_order_write_nothing_and_an_added_tag_is_written(written, separator, data):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "c.bib"
        path.write_text(entry("A2020", "First", keywords="{" + separator.join(written) + "}"))
        before = path.read_bytes()
        shuffled = data.draw(st.permutations(written))
        assert set_keywords(path, "A2020", data.draw(separators).join(shuffled)) is False
        assert path.read_bytes() == before
        added = data.draw(tags.filter(lambda t: t not in written))
        new_text = separator.join(shuffled + [added])
        assert set_keywords(path, "A2020", new_text) is True
        assert tag_set(keywords_of(path)) == tag_set(new_text)
        if len(written) > 1:
            assert separator in keywords_of(path)

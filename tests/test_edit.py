"""Editing one field of one entry leaves every other byte of the file as it was."""

from __future__ import annotations

import pytest

from survey import load_corpus
from survey.edit import EditError, set_field
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

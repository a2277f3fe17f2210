"""Hostile .bib input: each case gives a clear message and loses nothing that was in the file."""

from __future__ import annotations

import pytest

from survey import load_corpus
from survey.bibfile import parse_text
from survey.merge import add_text
from tests.conftest import entry


def load(path):
    return load_corpus([path], use_cache=False)


def codes(corpus):
    return {(i.code, i.key, i.line) for i in corpus.issues}


def add_one_and_check_kept(path, original: bytes, key="Zz2024New"):
    """Adding an entry keeps every original byte, in place, at the start of the file."""
    report = add_text(entry(key, "A new paper about diffusion"), "new.bib", path)
    assert report.count("added") == 1, report.outcomes
    assert path.read_bytes().startswith(original.rstrip(b"\n"))
    return report


def test_unbalanced_braces_are_reported_with_their_line_and_kept(tmp_path):
    path = tmp_path / "c.bib"
    text = entry("Good2020", "Good") + "\n@article{Broken2021,\n  title = {Unbalanced {brace,\n  year = {2021}\n}\n\n" \
        + entry("After2022", "After the broken one", 2022)
    path.write_text(text)
    corpus = load(path)
    assert list(corpus.table["key"]) == ["Good2020", "After2022"]
    (issue,) = corpus.errors
    assert issue.code == "unparsable" and issue.key == "Broken2021" and issue.line == 8
    assert "c.bib:8" in str(issue)
    add_one_and_check_kept(path, text.encode())


def test_duplicate_keys_in_a_file_and_across_files(tmp_path):
    one, two = tmp_path / "one.bib", tmp_path / "two.bib"
    one.write_text(entry("Same2020", "First paper") + "\n" + entry("Same2020", "Second paper"))
    two.write_text(entry("Same2020", "Third paper in another file"))
    corpus = load_corpus([one, two], use_cache=False)
    found = [(i.code, i.file.rsplit("/", 1)[-1], i.line) for i in corpus.errors]
    assert ("duplicate-key", "one.bib", 8) in found  # the second block, left out of the table
    assert ("duplicate-key", "two.bib", 1) in found  # the same key in another file
    assert "Same2020" in str(corpus.errors[0])


def test_duplicate_fields_name_the_field(tmp_path):
    path = tmp_path / "c.bib"
    path.write_text("@article{Twice2020,\n  title = {One},\n  title = {Two},\n  year = {2020}\n}\n")
    corpus = load(path)
    (issue,) = corpus.errors
    assert (issue.code, issue.field, issue.line) == ("duplicate-field", "title", 1)
    assert len(corpus) == 0


def test_missing_title_is_a_warning_naming_the_field_and_never_blocks_an_import(tmp_path):
    path = tmp_path / "c.bib"
    path.write_text("@article{NoTitle2020,\n  author = {Doe, Jane},\n  journal = {J},\n  year = {2020}\n}\n")
    corpus = load(path)
    assert ("missing-field", "NoTitle2020", 1) in codes(corpus)
    assert not corpus.errors and any(i.field == "title" for i in corpus.issues)
    report = add_text(path.read_text().replace("NoTitle2020", "NoTitle2021"), "in.bib", tmp_path / "t.bib")
    assert report.outcomes[0].status == "added" and any("title" in w for w in report.outcomes[0].warnings)


def test_non_utf8_bytes_are_reported_and_survive_a_write(tmp_path):
    path = tmp_path / "c.bib"
    original = entry("Latin2020", "Caf\xe9 imaging").encode("latin-1")
    path.write_bytes(original)
    corpus = load(path)
    (issue,) = [i for i in corpus.issues if i.code == "encoding"]
    assert issue.line == 3 and "0xE9" in issue.message
    add_one_and_check_kept(path, original)
    assert b"Caf\xe9 imaging" in path.read_bytes()


def test_latex_accents_and_math_in_titles_are_decoded(tmp_path):
    path = tmp_path / "c.bib"
    path.write_text(entry("Acc2020", r"M{\"u}ller's {GAN} for $\alpha$-synthesis \& {\aa}ngstr\"{o}m 50\%",
                          author=r'{Larsson, M{\aa}ns and G{\"o}del, Kurt and Fran\c{c}ois, Ren\'e}'))
    row = load(path).table.iloc[0]
    assert row.title == "Müller's GAN for α-synthesis & ångström 50%"
    assert row.authors == ["Måns Larsson", "Kurt Gödel", "René François"]


def test_string_macros_resolve_and_travel_with_added_entries(tmp_path):
    target = tmp_path / "c.bib"
    target.write_text('@string{MIA = "Medical Image Analysis"}\n\n'
                      + entry("Mac2020", "Macro paper", journal='MIA # " (special issue)"'))
    corpus = load(target)
    assert corpus.table.iloc[0].venue == "Medical Image Analysis (special issue)"
    new = '@string{TMI = "IEEE Transactions on Medical Imaging"}\n' + entry("Tmi2021", "Uses TMI", journal="TMI")
    add_text(new, "new.bib", target)
    after = load(target)
    assert after.table.set_index("key").loc["Tmi2021"].venue == "IEEE Transactions on Medical Imaging"
    clash = '@string{MIA = "Something Else"}\n' + entry("Clash2022", "Clashing macro", journal="MIA")
    outcome = add_text(clash, "clash.bib", target).outcomes[0]
    assert outcome.status == "invalid" and "mia" in outcome.reason.lower()


def test_undefined_macro_is_a_warning_with_its_field(tmp_path):
    path = tmp_path / "c.bib"
    path.write_text(entry("Undef2020", "Undefined macro", journal="NOSUCH"))
    (issue,) = load(path).issues
    assert (issue.code, issue.field, issue.line) == ("undefined-macro", "journal", 4)


@pytest.mark.slow
def test_a_20_mb_file_loads_whole(tmp_path):
    path = tmp_path / "big.bib"
    abstract = "{" + " ".join(["generative adversarial networks for medical image synthesis"] * 20) + "}"
    blocks = [entry(f"Big{i}", f"Paper number {i} on lesion synthesis", 2000 + i % 25, f"10.1000/big.{i}",
                    abstract=abstract) for i in range(16000)]
    path.write_text("\n".join(blocks))
    assert path.stat().st_size > 20_000_000
    corpus = load(path)
    assert len(corpus) == 16000 and not corpus.errors


def test_an_empty_file_is_an_empty_corpus_and_can_be_added_to(tmp_path):
    path = tmp_path / "empty.bib"
    path.write_text("")
    corpus = load(path)
    assert len(corpus) == 0
    assert [i.code for i in corpus.issues] == ["empty"]
    add_text(entry("First2020", "The first paper"), "in.bib", path)
    assert list(load(path).table["key"]) == ["First2020"]


def test_a_script_tag_in_a_title_is_kept_as_text(tmp_path):
    path = tmp_path / "c.bib"
    path.write_text(entry("Xss2020", "<script>alert('x')</script> in a title"))
    assert load(path).table.iloc[0].title == "<script>alert('x')</script> in a title"


def test_comments_preambles_and_unknown_fields_survive_a_round_trip(tmp_path):
    path = tmp_path / "c.bib"
    text = ("% a line comment\n@comment{jabref-meta: databaseType:bibtex;}\n"
            '@preamble{"\\newcommand{\\noop}[1]{}"}\n\n'
            + entry("Keep2020", "Keep everything", file="{:paper.pdf:PDF}", groups="{mine}", owner="{me}"))
    path.write_text(text)
    add_one_and_check_kept(path, text.encode())
    assert path.read_text().count("file = {:paper.pdf:PDF}") == 1


def test_parse_text_keeps_line_numbers_of_every_block():
    bib = parse_text("\n\n" + entry("A2020", "A") + "\n" + entry("B2021", "B"), "<paste>")
    assert [(e.key, e.line) for e in bib.entries] == [("A2020", 3), ("B2021", 10)]

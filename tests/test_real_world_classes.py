"""One small fixture per class of failure that real libraries showed (see tests/test_realworld_bib.py
for the real files): biblatex dialect, crossref, macros across files, DOIs and years in the wild,
what validation may call an error, encodings, and what `survey add` carries along."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from survey.cli import main as survey
from survey.corpus import load_corpus
from survey.merge import add_bytes, add_text
from survey.records import normalise_doi
from survey.search import SearchIndex
from tests.conftest import entry


def write(path, text: str, encoding: str = "utf-8"):
    path.write_bytes(text.encode(encoding))
    return path


def row(corpus, key: str):
    return corpus.table.set_index("key").loc[key]


def codes(corpus, severity: str | None = None) -> set[tuple[str, str | None]]:
    return {(i.code, i.key) for i in corpus.issues if severity in (None, i.severity)}


def test_biblatex_date_journaltitle_location_and_types_are_read(tmp_path):
    path = write(tmp_path / "bbt.bib", """
@article{Day2019, author = {Day, Ann}, title = {Dated}, journaltitle = {NeuroImage}, date = {2019-05-03}}
@online{Web2021, author = {Web, Wes}, title = {A page}, date = {2021-11}, url = {https://example.org}}
@thesis{Thes1984, author = {Doe, Jo}, title = {Thesis}, institution = {UCL}, location = {London},
        date = {1984/1986}, type = {phdthesis}}
""")
    corpus = load_corpus([path], use_cache=False)
    assert (row(corpus, "Day2019")["year"], row(corpus, "Day2019")["month"]) == (2019, 5)
    assert row(corpus, "Day2019")["venue"] == "NeuroImage"
    assert (row(corpus, "Web2021")["year"], row(corpus, "Web2021")["month"]) == (2021, 11)
    assert row(corpus, "Thes1984")["year"] == 1984  # a range gives its first year
    assert row(corpus, "Thes1984")["location"] == "London" and row(corpus, "Thes1984")["venue"] == "UCL"
    assert set(corpus.table["dialect"]) == {"biblatex"}
    assert not [i for i in corpus.issues if i.code == "missing-field"]  # biblatex's own required fields


def test_bibtex_required_fields_follow_bibtex(tmp_path):
    path = write(tmp_path / "classic.bib", "@article{A2020, author = {A, B}, title = {T}, year = 2020}\n")
    corpus = load_corpus([path], use_cache=False)
    assert row(corpus, "A2020")["dialect"] == "bibtex"
    assert [(i.code, i.field, i.severity) for i in corpus.issues] == [("missing-field", "journal", "warning")]


def test_crossref_parent_gives_booktitle_year_and_publisher_and_the_file_is_unchanged(tmp_path):
    text = """@inproceedings{DBLP:conf/x/Paper24,
  author = {Lim, Ann},
  title = {A Paper},
  crossref = {DBLP:conf/x/2024}
}

@proceedings{DBLP:conf/x/2024,
  title = {Proceedings of the X Symposium},
  booktitle = {X 2024},
  year = {2024},
  publisher = {ACM}
}
"""
    path = write(tmp_path / "dblp.bib", text)
    corpus = load_corpus([path], use_cache=False)
    paper = row(corpus, "DBLP:conf/x/Paper24")
    assert (paper["year"], paper["venue"], paper["title"]) == (2024, "X 2024", "A Paper")
    assert SearchIndex(corpus.table).matching_keys('title:paper venue:"x 2024"') == ["DBLP:conf/x/Paper24"]  # inherited fields are searched
    assert not corpus.issues
    assert paper["raw"].count("\n") == 4  # written back as it was: the raw block is the child's own
    exported = CliRunner().invoke(survey, ["--bib", str(path), "export", "--search", "a paper"]).stdout
    assert exported.index("DBLP:conf/x/Paper24") < exported.index("@proceedings{DBLP:conf/x/2024")


def test_a_biblatex_part_takes_its_parents_title_as_booktitle_and_a_missing_parent_is_a_warning(tmp_path):
    path = write(tmp_path / "bl.bib", """
@incollection{Part, author = {P, Q}, title = {Chapter}, crossref = {Coll}, date = {2001}}
@collection{Coll, editor = {E, F}, title = {The Collection}, date = {2001}}
@incollection{Orphan, author = {O, P}, title = {Alone}, crossref = {Nowhere}, date = {2001}}
""")
    corpus = load_corpus([path], use_cache=False)
    assert row(corpus, "Part")["venue"] == "The Collection" and row(corpus, "Part")["title"] == "Chapter"
    assert ("unknown-crossref", "Orphan") in codes(corpus, "warning") and not corpus.errors


def test_string_macros_resolve_across_the_files_of_one_corpus_in_load_order(tmp_path):
    abbrev = write(tmp_path / "IEEEabrv.bib", '@STRING{IEEE_J_MI = "{IEEE} Trans. Med. Imag."}\n')
    refs = write(tmp_path / "refs.bib", "@article{N2014, author = {N, A}, title = {T}, journal = IEEE_J_MI, "
                                        "year = 2014}\n")
    corpus = load_corpus([abbrev, refs], use_cache=False)
    assert row(corpus, "N2014")["venue"] == "IEEE Trans. Med. Imag." and not corpus.issues
    alone = load_corpus([refs], use_cache=False)
    assert ("undefined-macro", "N2014") in codes(alone, "warning")


@pytest.mark.parametrize("written", ["10.1145/1234.5678", "doi:10.1145/1234.5678", "DOI: 10.1145/1234.5678",
                                     "https://doi.org/10.1145/1234.5678", "http://dx.doi.org/10.1145/1234.5678",
                                     "http://doi.acm.org/10.1145/1234.5678", "10.1145%2F1234.5678",
                                     "https://DOI.ORG/10.1145/1234.5678."])
def test_dois_in_every_common_form_normalise_alike(written):
    assert normalise_doi(written) == "10.1145/1234.5678"


def test_only_unusable_entries_are_errors(tmp_path):
    path = write(tmp_path / "odd.bib", """
@book{Old1781, author = {Kant, I.}, title = {Kritik der reinen Vernunft}, publisher = {Hartknoch}, year = 1781}
@article{Range1982, author = {A, B}, title = {Range}, journal = {J}, year = {1982--1983}}
@article{Acm2001, author = {A, B}, title = {ACM}, journal = {J}, year = 2001, doi = {http://doi.acm.org/10.1145/1.2}}
@misc{NoTitle2020, author = {A, B}, year = 2020}
@article{Arxiv2020, author = {A, B}, title = {Preprint}, year = 2020, eprint = {2001.00001}, archiveprefix = {arXiv}}
@article{Early1300, author = {A, B}, title = {Too early}, journal = {J}, year = 1300}
@article{,
  title = {No key}}
@article{Broken, title = {never closed, year = 2020}
""")
    corpus = load_corpus([path], use_cache=False)
    assert {(r.key, int(r.year)) for r in corpus.table.itertuples() if r.key in ("Old1781", "Range1982")} == {
        ("Old1781", 1781), ("Range1982", 1982)}
    assert row(corpus, "Acm2001")["doi"] == "10.1145/1.2"
    assert {i.code for i in corpus.errors} == {"missing-key", "unparsable"}
    warnings = codes(corpus, "warning")
    assert {("missing-field", "NoTitle2020"), ("preprint", "Arxiv2020"), ("bad-year", "Early1300")} <= warnings
    assert not {k for _, k in warnings} & {"Old1781", "Range1982", "Acm2001"}


def test_a_key_used_in_two_files_is_an_error_and_the_second_is_left_out(tmp_path):
    one = write(tmp_path / "a.bib", entry("Same2020", "First"))
    two = write(tmp_path / "b.bib", entry("Same2020", "Second"))
    corpus = load_corpus([one, two], use_cache=False)
    assert list(corpus.table["title"]) == ["First"]
    (error,) = corpus.errors
    assert (error.code, error.file, error.key) == ("duplicate-key", str(two), "Same2020") and str(one) in error.message


def test_a_latin1_input_is_converted_to_the_utf8_target_and_said_so(tmp_path):
    target = write(tmp_path / "c.bib", entry("Old2020", "Old"))
    report = add_bytes(entry("Caf2021", "Caf\xe9 au lait").encode("latin-1"), "legacy.bib", target)
    assert report.written and any("cp1252" in n for n in report.notes)
    assert "Café au lait" in target.read_bytes().decode("utf-8")


def test_a_bom_is_handled_on_load_and_on_add(tmp_path):
    path = write(tmp_path / "citavi.bib", "\ufeff" + entry("Bar.08", "With a BOM"))
    assert list(load_corpus([path], use_cache=False).table["key"]) == ["Bar.08"]
    target = write(tmp_path / "t.bib", "")
    add_bytes(("\ufeff" + entry("Bom2021", "Added")).encode("utf-8"), "in.bib", target)
    assert "\ufeff" not in target.read_text(encoding="utf-8")


def test_a_legacy_target_keeps_its_encoding_and_a_crlf_target_its_line_endings(tmp_path):
    latin = write(tmp_path / "latin.bib", entry("Caf2020", "Caf\xe9"), "latin-1")
    add_text(entry("Na2021", "Na\xefve"), "in.bib", latin)
    assert "Naïve".encode("latin-1") in latin.read_bytes()
    crlf = write(tmp_path / "crlf.bib", entry("Win2020", "Windows").replace("\n", "\r\n"))
    add_text(entry("Unix2021", "Unix"), "in.bib", crlf)
    data = crlf.read_bytes()
    assert b"Unix2021" in data and data.count(b"\n") == data.count(b"\r\n")


def test_add_carries_preamble_comment_and_used_strings_and_names_what_it_left_out(tmp_path):
    target = write(tmp_path / "c.bib", entry("Old2020", "Old"))
    text = ('@preamble{"\\newcommand{\\noop}[1]{}"}\n@comment{Kept as a note}\n'
            '@comment{jabref-meta: databaseType:bibtex;}\n'
            '@string{used = "Journal of Used"}\n@string{unused = "Never"}\n'
            '@article{New2021, author = {A, B}, title = {New}, journal = used, year = 2021}\n')
    report = add_text(text, "in.bib", target)
    written = target.read_text()
    assert '@preamble{"\\newcommand' in written and "@comment{Kept as a note}" in written
    assert "@string{used" in written and "unused" not in written and "jabref-meta" not in written
    notes = " ".join(report.notes)
    assert "unused" in notes and "jabref-meta" in notes
    assert "% added from in.bib" in written


def test_an_entry_without_a_key_is_refused_with_its_line(tmp_path):
    target = write(tmp_path / "c.bib", "")
    report = add_text("@article{,\n  title = {No key}\n}\n", "in.bib", target)
    (outcome,) = report.outcomes
    assert (outcome.status, outcome.line) == ("invalid", 1) and not report.written


def test_list_json_and_validate_json_on_entries_without_year_and_near_duplicates(tmp_path):
    path = write(tmp_path / "c.bib", entry("A2020", "Generative models in imaging") + "@misc{NoYear, title = "
                 "{Generative models in imaging!}}\n")
    listed = CliRunner().invoke(survey, ["list", "--bib", str(path), "--format", "json"])
    assert listed.exit_code == 0 and [r["year"] for r in json.loads(listed.stdout)] == [2020, None]
    checked = CliRunner().invoke(survey, ["--bib", str(path), "validate", "--format", "json"])
    assert checked.exit_code == 0
    assert {i["code"] for i in json.loads(checked.stdout)} >= {"near-duplicate-title"}

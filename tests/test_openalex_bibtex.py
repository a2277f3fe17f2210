"""`work_to_bibtex` on real OpenAlex records (recorded by other projects, see the SOURCES.md beside
them) and on hand-made records for the odd cases; `survey add --doi` replayed at the HTTP layer."""

from __future__ import annotations

import functools
import html
import json
import re
import unicodedata
from collections import Counter
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import responses
from bibtexparser.middlewares.names import parse_single_name_into_parts
from click.testing import CliRunner

from survey.bibfile import parse_text
from survey.cli import main as survey
from survey.corpus import build_corpus, load_corpus
from survey.latex import to_text
from survey.openalex.bibtex import work_to_bibtex
from survey.records import split_authors
from survey.tags import Vocabulary
from survey.validate import REQUIRED_BIBTEX as REQUIRED  # the fields BibTeX's standard styles require

REAL = Path(__file__).resolve().parents[2] / "shared" / "reference" / "openalex-real"
# a tag's name follows "<" at once and ends at a space, "/" or ">": "<http://x.org/>" in a text is no tag
HTML_TAG = re.compile(r"</?[A-Za-z][\w:-]*(?:\s[^<>]*)?/?>")
NEEDS_REAL = pytest.mark.skipif(not REAL.is_dir(), reason=f"recorded OpenAlex answers not found at {REAL}")


def recorded_works() -> dict[str, dict]:
    """Short OpenAlex id -> record, from `/works` pages (`results`) and single-work files."""
    works = {}
    for path in sorted(REAL.glob("*.json")) if REAL.is_dir() else []:
        data = json.loads(path.read_text(encoding="utf-8"))
        for work in data.get("results", [data]):
            works[work["id"].rsplit("/", 1)[-1]] = work
    return works


WORKS = recorded_works()


def converted(work: dict, taken=frozenset()):
    """The entry's text, its parsed entry, and the issues the validator finds in it alone."""
    text = work_to_bibtex(work, set(taken))
    bib = parse_text(text, "<openalex>")
    corpus = build_corpus([bib], Vocabulary())
    assert len(bib.entries) == 1, text
    return text, bib.entries[0], corpus


@functools.cache
def recorded_entry(wid: str):
    """``converted`` of a recorded work, once per session: three tests read every one."""
    return converted(WORKS[wid])


def errors(corpus) -> list[str]:
    return [f"{i.code} {i.field}: {i.message}" for i in corpus.issues if i.severity == "error"]


def missing_required(entry) -> list[str]:
    return [need for need in REQUIRED.get(entry.entry_type, ("title",))
            if not any(entry.fields.get(name, "").strip() for name in need.split("|"))]


def html_free(text: str) -> str:
    text = html.unescape(re.sub(r"<[^>]+>", "", text or ""))
    return unicodedata.normalize("NFC", " ".join(text.split()))


def source_of(work: dict) -> dict:
    return (work.get("primary_location") or {}).get("source") or work.get("host_venue") or {}


def test_the_recorded_answers_hold_177_distinct_works():
    if not WORKS:
        pytest.skip(f"recorded OpenAlex answers not found at {REAL}")
    assert len(WORKS) == 177


@NEEDS_REAL
@pytest.mark.parametrize("wid", sorted(WORKS))
def test_a_recorded_work_becomes_one_valid_entry(wid):
    work = WORKS[wid]
    text, entry, corpus = recorded_entry(wid)
    assert not errors(corpus), text
    assert not missing_required(entry), text
    for name, value in entry.fields.items():
        assert not HTML_TAG.search(value), (name, value)
        assert not re.search(r"&(?:[A-Za-z]+|#\d+|#x[0-9A-Fa-f]+);", value), (name, value)
    assert to_text(entry.fields["title"]) == html_free(work["display_name"])
    assert len(split_authors(entry.fields.get("author", ""))) == len(work.get("authorships") or [])
    assert entry.fields["openalex"] == wid
    assert entry.fields.get("doi") == work["doi"].removeprefix("https://doi.org/").lower()
    date = work.get("publication_date") or ""
    if re.match(r"\d{4}-\d{2}", date):
        assert entry.fields["month"] == str(int(date[5:7]))
    ids = work.get("ids") or {}
    if ids.get("pmid"):
        assert entry.fields["pmid"] == ids["pmid"].rsplit("/", 1)[-1]
    if ids.get("pmcid"):
        assert entry.fields["pmcid"].startswith("PMC")
    biblio = work.get("biblio") or {}
    if biblio.get("first_page") and biblio.get("last_page") in (None, biblio["first_page"]):
        assert entry.fields["pages"] == biblio["first_page"]


@NEEDS_REAL
def test_recorded_works_get_the_entry_type_their_openalex_type_asks_for():
    produced = {wid: recorded_entry(wid)[1] for wid in WORKS}
    counts = Counter((WORKS[wid]["type"], entry.entry_type) for wid, entry in produced.items())
    for wid, entry in produced.items():
        work, source = WORKS[wid], source_of(WORKS[wid])
        authored = bool(work.get("authorships"))
        kind = work["type"]
        if kind in ("article", "review", "letter", "editorial") and source.get("display_name") and authored:
            assert entry.entry_type == ("inproceedings" if work.get("type_crossref") == "proceedings-article"
                                        else "article"), wid
        if kind == "preprint":
            assert entry.entry_type == ("article" if source.get("display_name") else "misc"), wid
        if kind == "paratext":
            assert entry.entry_type == "misc", wid
        # the specific type whenever OpenAlex knows its required fields, else @misc
        specific = {"book": "book", "book-chapter": "incollection", "dissertation": "phdthesis",
                    "report": "techreport"}.get(kind)
        if specific:
            assert entry.entry_type in (specific, "misc"), wid
    assert counts == {
        ("article", "article"): 98, ("article", "inproceedings"): 1, ("article", "misc"): 10,
        ("book", "book"): 10, ("book", "misc"): 17, ("book-chapter", "incollection"): 15,
        ("book-chapter", "misc"): 1, ("dissertation", "phdthesis"): 1, ("dissertation", "misc"): 2,
        ("editorial", "article"): 4, ("letter", "article"): 1, ("paratext", "misc"): 3,
        ("preprint", "article"): 5, ("report", "techreport"): 1, ("report", "misc"): 3,
        ("review", "article"): 5}


@NEEDS_REAL
def test_books_and_chapters_carry_their_publisher_and_isbn():
    entries = {wid: recorded_entry(wid)[1] for wid in WORKS}
    books = [e for wid, e in entries.items() if WORKS[wid]["type"] == "book" and e.entry_type == "book"]
    chapters = [e for wid, e in entries.items() if WORKS[wid]["type"] == "book-chapter"
                and e.entry_type == "incollection"]
    assert books and all(e.fields["publisher"] for e in books)
    assert chapters and all(e.fields["publisher"] and e.fields["booktitle"] for e in chapters)
    report = entries["W100927044"]  # the IDB report: its first author is at the IDB
    assert report.entry_type == "techreport" and report.fields["institution"] == "Inter-American Development Bank"
    thesis = entries["W1926314100"]
    assert thesis.entry_type == "phdthesis" and thesis.fields["school"] == r"Wageningen University \& Research"
    assert entries["W4235431033"].fields["isbn"] == "978-0-1952-0876-4"  # in the DOI, check digit holds
    assert entries["W2741809807"].fields["pmcid"] == "PMC5815332"


# --- hand-made records for the odd cases -------------------------------------------------------------

def record(**changes) -> dict:
    """A small journal article in OpenAlex's shape, with ``changes`` applied."""
    work = {
        "id": "https://openalex.org/W9100000001", "doi": "https://doi.org/10.5555/odd.1",
        "display_name": "A plain title", "publication_year": 2021, "publication_date": "2021-07-14",
        "type": "article", "authorships": [{"author": {"display_name": "Jane Doe"}, "institutions": []}],
        "primary_location": {"source": {"display_name": "Journal of Odd Cases", "type": "journal",
                                        "host_organization_name": "Odd Press", "issn_l": "1234-5678"}},
        "biblio": {"volume": "3", "issue": "2", "first_page": "e101", "last_page": "e101"},
        "abstract_inverted_index": {"An": [0], "abstract.": [1]},
        "ids": {"pmid": "https://pubmed.ncbi.nlm.nih.gov/12345"},
    }
    work.update(changes)
    return work


def authorship(name: str, *institutions: str) -> dict:
    return {"author": {"display_name": name}, "institutions": [{"display_name": i} for i in institutions]}


def test_an_ordinary_article_has_every_field_openalex_gives():
    text, entry, corpus = converted(record())
    assert entry.entry_type == "article" and not errors(corpus)
    f = entry.fields
    assert (f["author"], f["journal"], f["publisher"], f["issn"]) == ("Doe, Jane", "Journal of Odd Cases",
                                                                     "Odd Press", "1234-5678")
    assert (f["year"], f["month"], f["pages"], f["pmid"], f["abstract"]) == ("2021", "7", "e101", "12345",
                                                                             "An abstract.")
    assert "month     = jul," in text  # BibTeX's month macro, not a braced string


def test_an_organisation_is_one_braced_name():
    work = record(authorships=[authorship("World Health Organization"), authorship("World Bank"),
                               authorship("Geological Survey", "Geological Survey"), authorship("Jane Doe")])
    _, entry, corpus = converted(work)
    names = split_authors(entry.fields["author"])
    assert names == ["{World Health Organization}", "{World Bank}", "{Geological Survey}", "Doe, Jane"]
    assert parse_single_name_into_parts(names[1]).first == []  # BibTeX sees no first name "World"
    assert corpus.table.iloc[0]["authors"] == ["World Health Organization", "World Bank", "Geological Survey",
                                               "Jane Doe"]


def test_a_name_with_and_is_not_split_into_two_authors():
    _, entry, _ = converted(record(authorships=[authorship("Barnes and Noble"), authorship("Ann Smith")]))
    assert split_authors(entry.fields["author"]) == ["{Barnes and Noble}", "Smith, Ann"]


def test_person_names_keep_their_particles_and_suffixes():
    work = record(authorships=[authorship("Cherryl André de la Porte"), authorship("Martin Luther King Jr.")])
    _, entry, corpus = converted(work)
    assert split_authors(entry.fields["author"]) == ["de la Porte, Cherryl André", "King, Jr., Martin Luther"]
    assert corpus.table.iloc[0]["authors"][0] == "Cherryl André de la Porte"


def test_html_in_titles_becomes_plain_text():
    title = "<i>In vivo</i> CO<sub>2</sub> imaging &amp; p &lt; 0.05 in &lt;i&gt;Drosophila&lt;/i&gt;"
    text, entry, corpus = converted(record(display_name=title, title=title))
    assert entry.fields["title"] == r"In vivo CO2 imaging \& p < 0.05 in Drosophila"
    assert to_text(entry.fields["title"]) == "In vivo CO2 imaging & p < 0.05 in Drosophila"
    assert "<i>" not in text and "&amp;" not in text and not errors(corpus)


def test_latex_specials_are_escaped_and_other_letters_stay_utf8():
    title = "100% of $5 & #1_a {b} for Zoë Ångström"
    _, entry, corpus = converted(record(display_name=title))
    assert entry.fields["title"] == r"100\% of \$5 \& \#1\_a \{b\} for Zoë Ångström"
    assert to_text(entry.fields["title"]) == title and not errors(corpus)


def test_without_authorships_the_entry_is_a_misc_that_validates():
    _, entry, corpus = converted(record(authorships=[]))
    assert entry.entry_type == "misc" and "author" not in entry.fields
    assert entry.fields["howpublished"] == "Journal of Odd Cases"
    assert not errors(corpus) and not missing_required(entry)
    assert entry.key == "Anon2021Plain"


def test_without_a_source_an_article_or_preprint_is_a_misc():
    for kind in ("article", "preprint"):
        _, entry, corpus = converted(record(type=kind, primary_location={"source": None}))
        assert entry.entry_type == "misc" and "journal" not in entry.fields and not errors(corpus)


def test_a_preprint_on_a_server_is_an_article_of_that_server():
    server = {"source": {"display_name": "arXiv (Cornell University)", "type": "repository"}}
    _, entry, _ = converted(record(type="preprint", primary_location=server))
    assert entry.entry_type == "article" and entry.fields["journal"] == "arXiv (Cornell University)"


def test_a_legacy_host_venue_record_is_an_article_of_that_venue():
    work = record(primary_location=None, host_venue={"display_name": "Physical Review Letters", "type": "journal",
                                                    "publisher": "American Physical Society",
                                                    "issn_l": "0031-9007", "issn": ["0031-9007", "1079-7114"]})
    _, entry, corpus = converted(work)
    assert entry.entry_type == "article" and not errors(corpus)
    assert (entry.fields["journal"], entry.fields["publisher"], entry.fields["issn"]) == (
        "Physical Review Letters", "American Physical Society", "0031-9007")


def test_a_conference_paper_is_inproceedings():
    venue = {"source": {"display_name": "MICCAI", "type": "conference"}}
    _, entry, _ = converted(record(primary_location=venue))
    assert entry.entry_type == "inproceedings" and entry.fields["booktitle"] == "MICCAI"


def test_a_thesis_names_its_school_or_becomes_a_misc():
    work = record(type="dissertation", primary_location=None,
                  authorships=[authorship("Daan Vreugdenhil", "Wageningen University")])
    _, entry, _ = converted(work)
    assert entry.entry_type == "phdthesis" and entry.fields["school"] == "Wageningen University"
    work["authorships"] = [authorship("Daan Vreugdenhil")]
    _, entry, corpus = converted(work)
    assert entry.entry_type == "misc" and entry.fields["howpublished"] == "Dissertation" and not errors(corpus)


def test_a_book_and_a_chapter_take_the_publisher_of_their_source():
    platform = {"source": {"display_name": "Cambridge University Press eBooks", "type": "ebook platform",
                           "host_organization_name": "Cambridge University Press"}}
    book_doi = "https://doi.org/10.1017/cbo9780511754920"  # Cambridge's book DOIs hold the ISBN
    _, book, _ = converted(record(type="book", primary_location=platform, doi=book_doi))
    assert book.entry_type == "book" and book.fields["publisher"] == "Cambridge University Press"
    assert book.fields["isbn"] == "9780511754920"
    _, chapter, _ = converted(record(type="book-chapter", primary_location=platform,
                                     biblio={"first_page": "263", "last_page": "280"}))
    assert chapter.entry_type == "incollection" and chapter.fields["pages"] == "263--280"
    assert chapter.fields["booktitle"] == "Cambridge University Press eBooks"
    _, untold, corpus = converted(record(type="book", primary_location=None))
    assert untold.entry_type == "misc" and not errors(corpus)  # no publisher known


def test_abstracts_come_from_either_index_key_or_are_left_out():
    _, entry, _ = converted(record(abstract_inverted_index=None,
                                   abstract_inverted_index_v3={"Newer": [0], "index.": [1]}))
    assert entry.fields["abstract"] == "Newer index."
    _, entry, _ = converted(record(abstract_inverted_index=None, abstract_inverted_index_v3=None))
    assert "abstract" not in entry.fields


def test_the_key_is_ascii_never_empty_and_not_taken():
    work = record(authorships=[], display_name="Ωμέγα", publication_year=None, publication_date=None)
    assert converted(work)[1].key == "Anon"
    taken = {"Doe2021Plain", "Doe2021Plaina"}
    assert converted(record(), taken)[1].key == "Doe2021Plainb"
    assert converted(record(authorships=[authorship("Zoë Ångström")]))[1].key == "Angstrom2021Plain"


# --- `survey add --doi` with OpenAlex's answer replayed ----------------------------------------------

@NEEDS_REAL
@responses.activate
def test_add_doi_appends_the_entry_built_from_openalexs_answer(seed_copy, tmp_path):
    work = WORKS["W2741809807"]
    doi = work["doi"].removeprefix("https://doi.org/")
    asked = []

    def singleton(request):
        """OpenAlex's /works/doi:... answer, cut to the fields the client selects."""
        parts = urlsplit(request.url)
        asked.append(unquote(parts.path))
        query = parse_qs(parts.query)
        assert query["api_key"] == ["test-key"]
        selected = query["select"][0].split(",")
        return 200, {}, json.dumps({k: work[k] for k in selected if k in work})

    responses.add_callback(responses.GET, re.compile(r"https://api\.openalex\.org/works/doi.*"), callback=singleton)
    result = CliRunner(env={"OPENALEX_API_KEY": "test-key", "SURVEY_CACHE_DIR": str(tmp_path / "cache")}).invoke(
        survey, ["--bib", str(seed_copy), "add", "--doi", f"https://doi.org/{doi.upper()}"])
    assert result.exit_code == 0, result.output
    assert asked == [f"/works/doi:{doi}"] and "1 added" in result.output
    added = load_corpus([seed_copy], use_cache=False).table.set_index("key").loc["Piwowar2018State"]
    assert added["entry_type"] == "article" and added["venue"] == "PeerJ" and added["doi"] == doi
    assert added["fields"]["openalex"] == "W2741809807" and added["fields"]["pages"] == "e4375"
    assert len(added["authors"]) == len(work["authorships"])

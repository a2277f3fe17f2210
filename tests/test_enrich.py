"""`survey enrich`, `suggest` and `add --doi` against OpenAlex answers replayed at the HTTP layer.

The answers are hand-written test data (see tests/fixtures/openalex/README.md); no test sends a
request anywhere: `responses` refuses any URL it was not given.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import requests
import responses
from click.testing import CliRunner

from survey.cli import main as survey
from survey.corpus import load_corpus
from survey.graph import corpus_graph, suggestions
from survey.openalex.bibtex import work_to_bibtex
from survey.openalex.cache import WorksCache, cache_folder
from survey.openalex.client import Client, OpenAlexError, Settings
from survey.openalex.enrich import enrich, enrichment_table, title_decision
from survey.validate import normalise_title
from tests.conftest import entry

FIXTURES = Path(__file__).parent / "fixtures" / "openalex"
WORKS = "https://api.openalex.org/works"


def work(n: int, doi: str | None = None, title: str = "", year: int = 2020, refs=(), cited=5) -> dict:
    """An invented work record in OpenAlex's shape."""
    return {"id": f"https://openalex.org/W90000000{n:02d}", "doi": f"https://doi.org/{doi}" if doi else None,
            "display_name": title or f"Test work {n}", "title": title or f"Test work {n}",
            "publication_year": year, "cited_by_count": cited,
            "referenced_works": [f"https://openalex.org/W90000000{r:02d}" for r in refs],
            "abstract_inverted_index": {"Invented": [0], "abstract": [1], str(n): [2]},
            "open_access": {"oa_url": f"https://example.org/{n}.pdf"},
            "topics": [{"display_name": "Invented Topic"}], "authorships": [{"author": {"display_name": "Ann Test"}}],
            "primary_location": {"source": {"display_name": "Journal of Test Data", "type": "journal"}}}


def filter_values(request, name: str) -> list[str]:
    query = parse_qs(urlsplit(request.url).query)
    assert query["api_key"] == ["test-key"]
    field, _, values = query["filter"][0].partition(":")
    assert field == name
    return [unquote(v) for v in values.split("|")]


class FakeOpenAlex:
    """Answers /works filters from a dict of works, and counts what it was asked."""

    def __init__(self, works: list[dict]):
        self.works = works
        self.asked: list[list[str]] = []

    def __call__(self, request):
        query = parse_qs(urlsplit(request.url).query)["filter"][0]
        field, _, values = query.partition(":")
        wanted = [unquote(v) for v in values.split("|")]
        self.asked.append(wanted)
        if field == "doi":
            found = [w for w in self.works if w["doi"] and w["doi"].removeprefix("https://doi.org/") in wanted]
        elif field == "openalex_id":
            found = [w for w in self.works if w["id"].rsplit("/", 1)[-1] in wanted]
        else:  # title.search
            words = wanted[0].replace("+", " ")
            found = [w for w in self.works if words in normalise_title(w["display_name"])]
        return 200, {}, json.dumps({"meta": {"count": len(found)}, "results": found})


@pytest.fixture
def client():
    return Client(Settings(api_key="test-key", retries=2, backoff_s=0))


@pytest.fixture
def seed_works(seed_copy):
    """Invented records for the ten seed papers with a DOI (two cite W01 and W02), plus W01 and W02."""
    corpus = load_corpus([seed_copy])
    dois = [d for d in corpus.table["doi"] if d]
    works = [work(10 + i, doi, refs=(1, 2) if i < 3 else (1,) if i == 3 else ()) for i, doi in enumerate(dois)]
    works += [work(1, "10.5555/outside.1", "An outside work cited by four"),
              work(2, None, "An outside work cited by three", refs=(1,))]
    return corpus, works


@responses.activate
def test_enrich_fetches_in_batches_then_works_offline(seed_copy, seed_works, client):
    corpus, works = seed_works
    title_answer = work(30, None, corpus.table.set_index("key").loc["Wu2022GCML", "title"],
                        year=int(corpus.table.set_index("key").loc["Wu2022GCML", "year"]))
    fake = FakeOpenAlex(works + [title_answer])
    responses.add_callback(responses.GET, WORKS, callback=fake)
    cache = WorksCache.open(cache_folder(seed_copy))
    report = enrich(corpus, cache, client, progress=False)
    assert [len(a) for a in fake.asked] == [10, 1, 2]  # 10 DOIs in one request, one title, two candidates
    assert report.count("matched") == 11 and report.requests == 3
    assert (cache.folder / "works.json").exists() and not list(cache.folder.glob("batch-*.json"))
    table = enrichment_table(corpus, WorksCache.open(cache.folder)).set_index("key")
    assert table.loc["Wu2022GCML", "matched_by"] == "title"
    assert table.loc["Yi2019GANReview", "abstract"] == "Invented abstract 10"
    assert table.loc["Yi2019GANReview", "referenced_works"] == ["W9000000001", "W9000000002"]
    assert table.loc["Yi2019GANReview", "oa_url"] == "https://example.org/10.pdf"
    # offline: the cache alone answers, and responses would refuse any request
    responses.reset()
    again = enrich(corpus, WorksCache.open(cache.folder), None)
    assert again.count("matched") == 11 and again.requests == 0
    # a second online run asks nothing it knows
    responses.add_callback(responses.GET, WORKS, callback=fake)
    assert enrich(corpus, WorksCache.open(cache.folder), client, progress=False).requests == 0


@responses.activate
def test_the_graph_and_suggest_read_the_cache(seed_copy, seed_works, client):
    corpus, works = seed_works
    responses.add_callback(responses.GET, WORKS, callback=FakeOpenAlex(works))
    enrich(corpus, WorksCache.open(cache_folder(seed_copy)), client, progress=False)
    graph = corpus_graph(corpus)  # finds bib/openalex/ beside the corpus
    nodes = graph.nodes.set_index("key")
    assert set(nodes.index[nodes["kind"] == "candidate"]) == {"W9000000001", "W9000000002"}
    assert nodes.loc["W9000000001", "in_degree"] == 5  # four corpus papers and the other candidate
    assert nodes.loc["Yi2019GANReview", "cited_by_count"] == 5
    top = suggestions(graph).iloc[0]
    assert top["key"] == "W9000000001" and top["doi"] == "10.5555/outside.1"
    assert len(top["cited_by_corpus"]) == 4
    result = CliRunner().invoke(survey, ["--bib", str(seed_copy), "suggest"])
    assert result.exit_code == 0 and "cited by 4 corpus paper(s)" in result.output
    # add --doi builds the entry from the cache: no request (responses has none left to give)
    responses.reset()
    result = CliRunner().invoke(survey, ["--bib", str(seed_copy), "add", "--doi", "10.5555/outside.1"])
    assert result.exit_code == 0, result.output
    assert "1 added" in result.output and re.search(r"doi\s+= \{10\.5555/outside\.1\}", seed_copy.read_text())


@responses.activate
def test_more_than_100_dois_go_in_batches_of_100(tmp_path, client):
    bib = tmp_path / "big.bib"
    bib.write_text("".join(entry(f"P{i}", f"Paper number {i}", doi=f"10.5555/p.{i}") for i in range(250)))
    corpus = load_corpus([bib])
    fake = FakeOpenAlex([work(i % 100, f"10.5555/p.{i}") for i in range(0, 250, 7)])
    responses.add_callback(responses.GET, WORKS, callback=fake)
    report = enrich(corpus, WorksCache.open(cache_folder(bib)), client, candidates=False, progress=False)
    assert [len(a) for a in fake.asked] == [100, 100, 50]
    assert report.count("not-found") == 250 - len(fake.works)


@responses.activate
def test_429_then_success_is_retried(seed_copy, seed_works):
    corpus, works = seed_works
    waits = []
    client = Client(Settings(api_key="test-key", retries=2, backoff_s=0.5), sleep=waits.append)
    responses.add(responses.GET, WORKS, status=429, headers={"Retry-After": "2"})
    responses.add_callback(responses.GET, WORKS, callback=FakeOpenAlex(works))
    report = enrich(corpus, WorksCache.open(cache_folder(seed_copy)), client, candidates=False, progress=False)
    assert report.count("matched") == 10 and waits[0] == 2.0  # OpenAlex's Retry-After is honoured


@pytest.mark.parametrize("answer, kind, words", [
    (dict(status=500), "server", "HTTP 500"),
    (dict(status=429), "rate-limit", "HTTP 429"),
    (dict(body=requests.Timeout("read timed out")), "timeout", "no answer within"),
    (dict(body=requests.ConnectionError("no route")), "network", "could not connect"),
    (dict(body='{"meta": {"count": 10}, "results": [{"id": "https://openalex.org/W1", "ti'), "malformed",
     "not valid JSON"),
])
@responses.activate
def test_failures_give_a_clear_message_and_leave_the_cache_as_it_was(seed_copy, client, answer, kind, words):
    folder = cache_folder(seed_copy)
    responses.add(responses.GET, WORKS, **answer)
    result = CliRunner(env={"OPENALEX_API_KEY": "test-key"}).invoke(
        survey, ["--bib", str(seed_copy), "enrich", "--retries", "1", "--timeout", "1"])
    assert result.exit_code == 1
    assert words in result.output and "is as it was" in result.output
    assert "test-key" not in result.output  # the key never appears in a message
    assert not list(folder.glob("*.json")) and not list(folder.glob("batch-*"))
    with pytest.raises(OpenAlexError) as err:
        enrich(load_corpus([seed_copy]), WorksCache.open(folder), client, progress=False)
    assert err.value.kind == kind


@responses.activate
def test_an_interrupted_enrichment_resumes(tmp_path, client):
    bib = tmp_path / "big.bib"
    bib.write_text("".join(entry(f"P{i}", f"Paper number {i}", doi=f"10.5555/p.{i}") for i in range(150)))
    corpus = load_corpus([bib])
    works = [work(i % 100, f"10.5555/p.{i}") for i in range(150)]
    for i, w in enumerate(works):
        w["id"] = f"https://openalex.org/W8{i:05d}"
    # the first batch is answered; then OpenAlex fails on every try of the second
    calls = iter([FakeOpenAlex(works), *[lambda r: (503, {}, "")] * 5])
    responses.add_callback(responses.GET, WORKS, callback=lambda r: next(calls)(r))
    folder = cache_folder(bib)
    with pytest.raises(OpenAlexError):
        enrich(corpus, WorksCache.open(folder), client, candidates=False, progress=False)
    assert len(list(folder.glob("batch-*.json"))) == 1 and not (folder / "works.json").exists()
    resumed = FakeOpenAlex(works)
    responses.reset()
    responses.add_callback(responses.GET, WORKS, callback=resumed)
    report = enrich(corpus, WorksCache.open(folder), client, candidates=False, progress=False)
    assert [len(a) for a in resumed.asked] == [50]  # only what the first run did not get
    assert report.count("matched") == 150 and not list(folder.glob("batch-*.json"))


@responses.activate
def test_an_unknown_doi_is_reported_and_not_asked_again(tmp_path, client):
    bib = tmp_path / "one.bib"
    bib.write_text(entry("Ghost2020", "A paper OpenAlex lacks", doi="10.5555/ghost"))
    corpus = load_corpus([bib])
    fake = FakeOpenAlex([])
    responses.add_callback(responses.GET, WORKS, callback=fake)
    report = enrich(corpus, WorksCache.open(cache_folder(bib)), client, progress=False)
    assert report.papers[0].status == "not-found"
    enrich(corpus, WorksCache.open(cache_folder(bib)), client, progress=False)
    assert len(fake.asked) == 1


def test_title_matches_only_when_unambiguous():
    title = "Generative Models: A Test"
    same = [work(1, title=title, year=2020), work(2, title="Generative models - a test", year=2021)]
    assert title_decision(title, 2020, same)["status"] == "ambiguous"  # two equal titles, years within one
    assert title_decision(title, 2020, same[:1])["status"] == "matched"
    assert title_decision(title, 2017, same[:1])["status"] == "no-match"  # year too far
    other = title_decision(title, 2020, [work(3, title="Something else")])
    assert other["status"] == "no-match" and other["candidates"][0]["id"] == "W9000000003"


def test_without_a_key_the_message_says_how_to_set_it(seed_copy, monkeypatch):
    monkeypatch.delenv("OPENALEX_API_KEY", raising=False)
    result = CliRunner().invoke(survey, ["--bib", str(seed_copy), "enrich"])
    assert result.exit_code == 1 and "export OPENALEX_API_KEY=" in result.output and "--offline" in result.output
    assert not cache_folder(seed_copy).exists()
    result = CliRunner().invoke(survey, ["--bib", str(seed_copy), "enrich", "--offline"])
    assert result.exit_code == 0 and "0 of 11 papers matched" in result.output


def test_a_work_becomes_a_valid_bibtex_entry(tmp_path):
    record = json.loads((FIXTURES / "work_full.json").read_text())
    text = work_to_bibtex(record, {"Angstrom2024Test"})
    assert text.startswith("@article{Angstrom2024Testa,")
    assert r"Diffusion \& Synthesis of 100\% Synthetic\_CT" in text and re.search(r"pages\s+= \{101--110\}", text)
    bib = tmp_path / "new.bib"
    bib.write_text(text, encoding="utf-8")
    corpus = load_corpus([bib])
    row = corpus.table.iloc[0]
    assert row["authors"] == ["Zoë Ångström", "Test Author"] and row["year"] == 2024
    assert row["venue"] == "Journal of Test Data" and row["doi"] == "10.5555/test.full.99"
    assert not corpus.errors

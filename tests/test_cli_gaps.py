"""`survey gaps` (papers per combination of two tag categories, and the empty ones) and `survey suggest`
(the works outside the corpus, ranked, with why), through click's runner."""

from __future__ import annotations

import json
import re

from click.testing import CliRunner

from survey import neighbourhood as nb
from survey.cli import main as survey
from survey.corpus import load_corpus
from survey.graph import corpus_graph
from survey.openalex.cache import WorksCache, cache_folder
from tests.conftest import SEED_BIB, entry
from tests.test_app_gaps import AT, enriched_seed  # noqa: F401  (a fixture)
from tests.test_enrich import work


def run(bib, *args):
    return CliRunner().invoke(survey, ["--bib", str(bib), *args])


# --- survey gaps --------------------------------------------------------------------------------------------
def table_rows(output: str, rows: str, columns: str) -> dict[str, list[int]]:
    """The printed table: row value -> its counts."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{rows} \\ {columns}"))
    out = {}
    for line in lines[start + 1:]:
        if not line.strip():
            break
        value, counts = re.match(r"^(.*?)\s+((?:\d+\s*)+)$", line).groups()
        out[value] = [int(n) for n in counts.split()]
    return out


def test_gaps_prints_the_counts_and_every_empty_combination():
    result = run(SEED_BIB, "gaps")
    assert result.exit_code == 0, result.output
    expected = nb.tag_gaps(load_corpus([SEED_BIB]), "task", "modality")
    assert "9 paper(s) counted" in result.output and "type:survey" in result.output
    assert table_rows(result.output, "task", "modality") == {
        r: list(map(int, line)) for r, line in expected.counts.iterrows()}
    listed = re.findall(r"^  no paper on (.+) × (.+)$", result.output, re.M)
    assert listed == expected.gaps and ("segmentation", "ultrasound") in listed
    assert f"{len(expected.gaps)} of {expected.counts.size} combinations have no paper" in result.output


def test_gaps_crosses_other_categories_and_counts_surveys_when_asked():
    method = run(SEED_BIB, "gaps", "--rows", "method", "--columns", "modality")
    assert method.exit_code == 0 and table_rows(method.output, "method", "modality")["DCGAN"][1] == 2  # on CT
    surveys = run(SEED_BIB, "gaps", "--include-surveys")
    assert "11 paper(s) counted, surveys included" in surveys.output
    parsed = json.loads(run(SEED_BIB, "gaps", "--rows", "method", "--format", "json").stdout)
    expected = nb.tag_gaps(load_corpus([SEED_BIB]), "method", "modality")
    assert parsed["counts"]["DCGAN"]["CT"] == 2 and parsed["papers"] == expected.papers
    assert [tuple(g) for g in parsed["gaps"]] == expected.gaps and parsed["surveys_counted"] is False


def test_gaps_refuses_unknown_or_equal_categories_and_a_corpus_without_them(tmp_path):
    unknown = run(SEED_BIB, "gaps", "--rows", "colour")
    assert unknown.exit_code == 2 and "unknown tag category 'colour'" in unknown.output and "modality" in unknown.output
    same = run(SEED_BIB, "gaps", "--rows", "modality", "--columns", "modality")
    assert same.exit_code == 2 and "two different categories" in same.output
    alone = run(SEED_BIB, "gaps", "--rows", "modality")  # the columns not asked for: another category
    assert alone.exit_code == 0 and "Crossing modality x type" in alone.stderr
    empty = tmp_path / "empty.bib"
    empty.write_text("")
    bare = run(empty, "gaps")
    assert bare.exit_code == 2 and "fewer than two tag categories" in bare.output and "Traceback" not in bare.output


def test_gaps_on_a_library_without_task_and_modality_crosses_what_it_has(tmp_path):
    """A library tagged in its own words: the first two categories, said so; an unknown one named in
    a message that lists a dozen of its categories, not all of them."""
    own = tmp_path / "own.bib"
    own.write_text(entry("A", "One", keywords="{organ:liver, stage:early}")
                   + entry("B", "Two", keywords="{organ:lung, stage:late}"), encoding="utf-8")
    result = run(own, "gaps")
    assert result.exit_code == 0, result.output
    assert "Crossing organ x stage" in result.stderr and table_rows(result.stdout, "organ", "stage") == {
        "liver": [1, 0], "lung": [0, 1]}
    many = tmp_path / "many.bib"
    many.write_text(entry("A", "One", keywords="{" + ", ".join(f"c{i:03}:v" for i in range(100)) + "}"),
                    encoding="utf-8")
    unknown = run(many, "gaps", "--rows", "colour")
    assert unknown.exit_code == 2 and "and 88 more" in unknown.output and "c011" in unknown.output
    assert "c050" not in unknown.output


# --- survey suggest -----------------------------------------------------------------------------------------
def test_suggest_ranks_the_outside_works_with_why(enriched_seed):  # noqa: F811
    result = run(enriched_seed, "suggest")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "1. W9000000001 (2020) An outside work cited by four  doi:10.5555/outside.1"
    works = nb.outside_works(corpus_graph(load_corpus([enriched_seed]))).set_index("key")
    citing = works.loc["W9000000001", "cited_by_corpus"]
    assert lines[1] == f"    cited by 4 corpus paper(s): {', '.join(citing)}"
    assert lines[2].startswith("2. W9000000002 (2020) An outside work cited by three")
    coupled = works.loc["W9000000002", "coupled_with"]
    assert lines[4] == (f"    shares references with {len(coupled)} corpus paper(s), coupling "
                        f"{works.loc['W9000000002', 'coupling']}: " + ", ".join(f"{k} ({n})" for k, n in coupled.items()))
    assert len(run(enriched_seed, "suggest", "--limit", "1").stdout.splitlines()) == 2
    records = json.loads(run(enriched_seed, "suggest", "--format", "json").stdout)
    assert [r["key"] for r in records] == ["W9000000001", "W9000000002"]
    assert records[1]["cited_by_n"] == 3 and records[1]["coupling"] == 4 and "cited by 3" in records[1]["why"]


def test_suggest_counts_only_the_papers_a_filter_keeps(enriched_seed):  # noqa: F811
    corpus = load_corpus([enriched_seed])
    graph = corpus_graph(corpus)
    keys = list(corpus.table.loc[corpus.table["tagset"].map(lambda t: "modality:MRI" in t), "key"])
    expected = nb.outside_works(graph, keys)
    result = run(enriched_seed, "suggest", "--tag", "modality:MRI")
    assert result.exit_code == 0 and f"counting the {len(keys)} of 11 papers the filter keeps" in result.stderr
    for w in expected.itertuples(index=False):
        if w.cited_by_corpus:
            assert f"cited by {w.cited_by_n} corpus paper(s): {', '.join(w.cited_by_corpus)}" in result.stdout
        assert set(w.cited_by_corpus) <= set(keys)
    none = run(enriched_seed, "suggest", "--tag", "type:tool")
    assert none.exit_code == 0 and "no suggestions among the 1 paper(s) the filter keeps" in none.stdout


def test_suggest_says_why_it_has_nothing(seed_copy):
    assert "run `survey enrich` first" in run(seed_copy, "suggest").stdout
    cache = WorksCache.open(cache_folder(seed_copy))  # enriched, but no two papers cite the same work
    doi = next(d for d in load_corpus([seed_copy]).table["doi"] if d)
    cache.record([work(10, doi, refs=(1,))], {f"doi:{doi}": {"id": "W9000000010", "at": AT}})
    cache.compact()
    assert "`survey enrich` ran, but no work outside the corpus is cited by two" in run(seed_copy, "suggest").stdout
    empty = seed_copy.with_name("empty.bib")
    empty.write_text(entry("Only", "A lonely paper"))
    assert run(empty, "suggest", "--tag", "type:survey").exit_code == 0

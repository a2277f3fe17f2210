"""The reproductions page reads committed results in the side-by-side schema, and says when there are none."""

from __future__ import annotations

import json

import pytest

from app import results
from app.reproduction_views import side_by_side
from reproductions import sidebyside
from reproductions.outcome import NOT_REPORTED, Claim
from reproductions.verdict import Rule, interval


@pytest.fixture
def results_root(tmp_path, monkeypatch):
    monkeypatch.setattr(results, "RESULTS", tmp_path)
    return tmp_path


def claim(text: str, held: bool | None, seeds: int | None = 1) -> dict:
    """A claim as results.json holds it: decided by a yes/no rule on ``seeds`` seeds."""
    return Claim(text, "the review", held, "e", seeds=seeds).as_dict()


def record(**changes) -> dict:
    base = {"schema": sidebyside.SCHEMA, "paper": "paper10", "bib_key": "Wu2022GCML", "method": "GCML",
            "profile": "full",
            "status": "completed",
            "run": {"id": "r", "started": "2026-11-25T06:00:00Z", "wall_time_s": 300.0, "device": "cuda",
                    "device_name": "NVIDIA H100", "seed": 0, "git_commit": "abc123"},
            "data": [{"name": "digits", "kind": "real", "detail": "scikit-learn"}],
            "rows": [{"metric": "ACC", "setting": "digits", "ours": 0.71, "paper": None,
                      "paper_text": NOT_REPORTED, "source": "reported-results.md", "higher_is_better": True,
                      "note": ""}],
            "claims": [claim("GCML clusters best", False, seeds=None)],
            "differences": ["digits instead of MNIST"], "figures": []}
    return base | changes


def test_a_paper_without_results_reads_not_run_yet(results_root):
    assert results.load("paper3") is None and not results.has_results("paper3")
    assert not results.has_results(float("nan"))


def test_committed_results_are_shown_side_by_side(results_root):
    (results_root / "paper10").mkdir()
    (results_root / "paper10" / "results.json").write_text(json.dumps(record()))
    assert results.has_results("paper10")
    text = str(side_by_side("paper10", results.load("paper10")))
    assert "not reported" in text and "0.71" in text and "did not hold" in text and "NVIDIA H100" in text
    assert "weaker evidence" not in text
    cpu = str(side_by_side("paper10", record(profile="cpu")))
    assert "cpu profile" in cpu and "weaker evidence than a full run" in cpu


def test_a_broken_results_file_is_named(results_root):
    (results_root / "paper10").mkdir()
    (results_root / "paper10" / "results.json").write_text("{")
    assert "paper10/results.json: unreadable" in results.load("paper10")["error"]
    (results_root / "paper10" / "results.json").write_text(json.dumps(record(schema=7)))
    assert "not a results file of schema 1 or 2" in results.load("paper10")["error"]


def test_a_schema_1_file_reads_with_one_seed_verdicts_as_inconclusive(results_root):
    """Committed before the four outcomes: each claim was a yes/no on one seed, which now points to
    an outcome without deciding it; a claim without a yes/no stays not testable."""
    old = record(schema=1, claims=[{"text": "a", "source": "s", "held": False, "evidence": "0.71 < 0.79"},
                                   {"text": "b", "source": "s", "held": None, "evidence": "no readers"}])
    (results_root / "paper10").mkdir()
    (results_root / "paper10" / "results.json").write_text(json.dumps(old))
    first, second = results.load("paper10")["claims"]
    assert first["outcome"] == "inconclusive" and "'did not hold'" in first["reason"] and first["seeds"] == 1
    assert second["outcome"] == "not testable here" and second["reason"] == ""
    assert sidebyside.tally(results.load("paper10")["claims"]) == {
        "held": 0, "did not hold": 0, "inconclusive": 1, "not testable here": 1}


def test_the_report_is_served_when_it_exists(results_root):
    import flask

    from app.main import REPORT_URL, reproduction_report

    server = flask.Flask(__name__)
    server.add_url_rule(REPORT_URL, view_func=reproduction_report)
    client = server.test_client()
    assert client.get(REPORT_URL).status_code == 404
    (results_root / "report.html").write_text("<!doctype html><h1>Reproductions</h1>")
    response = client.get(REPORT_URL)
    assert response.status_code == 200 and b"<h1>Reproductions</h1>" in response.data


def test_a_reader_study_is_offered_where_the_results_name_one(results_root):
    for name, study in (("paper2", "reader_study"), ("paper10", None)):
        (results_root / name).mkdir()
        (results_root / name / "results.json").write_text(json.dumps(record(paper=name, reader_study=study)))
    assert results.has_reader_study("paper2") and not results.has_reader_study("paper10")
    assert not results.has_reader_study("paper3")  # no results at all


def test_every_committed_result_says_whether_it_holds_a_reader_study():
    from reproductions.run import RESULTS_DIR

    for path in RESULTS_DIR.glob("*/results.json"):
        doc = json.loads(path.read_text())
        assert "reader_study" in doc, path
        assert doc["reader_study"] is None or (path.parent / doc["reader_study"] / "study.json").is_file(), path


def test_the_page_opens_with_a_summary_and_each_section_with_its_verdicts(results_root):
    from dash import html

    from app import reproduction_views as rv

    rows = [{"metric": f"m{i}", "setting": "s", "ours": 0.5, "paper": None, "paper_text": NOT_REPORTED,
             "source": "x", "higher_is_better": True, "note": ""} for i in range(rv.TABLE_SHOWN + 3)]
    rows.append({"metric": "reported", "setting": "s", "ours": 0.5, "paper": 0.7, "paper_text": "0.7", "source": "x",
                 "higher_is_better": True, "note": ""})
    decided = Claim.decided("c", "s", Rule("c's score minus the rival's", "better", 0.01),
                            interval([0.05, 0.06, 0.07]), "e")
    ours = Claim.decided("d", "s", Rule("d", "better"), interval([-0.05, -0.06, -0.07]), "e", addition=True)
    long = record(profile="cpu", rows=rows, claims=[claim("a", True, seeds=None), claim("b", None),
                                                    decided.as_dict(), ours.as_dict()])
    (results_root / "paper10").mkdir()
    (results_root / "paper10" / "results.json").write_text(json.dumps(long))
    papers = [{"reproduction": "paper10", "review_topic": "GCML", "title": "T", "key": "Wu2022GCML"},
              {"reproduction": "paper3", "review_topic": "GAN augmentation", "title": "U", "key": "F2018"}]
    table = str(rv.summary(papers))
    assert "cpu profile · NVIDIA H100" in table and "href='#paper10'" in table
    assert "Td(children=2, className='tally outcome-held')" in table  # ours did not hold: not counted
    assert "Td(children=1, className='tally outcome-not-testable-here')" in table
    assert "Td(children=0, className='tally')" in table
    claims = str(rv.claims_table(papers))
    assert "0.06 [0.0352, 0.0848] (95% t interval, 3 seeds)" in claims and "d (our addition)" in claims
    assert "exact count" in claims and "not measured" in claims
    assert "not run yet" in table  # paper3 has no committed run
    parts = rv.side_by_side("paper10", long)
    text = [str(p) for p in parts]
    verdicts = next(i for i, t in enumerate(text) if "verdicts" in t)
    first_table = next(i for i, p in enumerate(parts) if isinstance(p, html.Table))
    assert verdicts < first_table  # the verdicts before the numbers
    assert "held (our addition, context only)" not in text[verdicts] and "did not hold (our addition" in text[verdicts]
    assert "Rule (fixed before the run): c's score minus the rival's: held if" in text[verdicts]
    assert "badge-reduced" in text[0] and "weaker evidence" in text[1]
    assert "'reported'" in text[first_table] and "m0" not in text[first_table]  # the paper's numbers first
    fold = next(p for p in parts if isinstance(p, html.Details) and "more rows" in str(p))
    assert f"{rv.TABLE_SHOWN + 3} more rows" in str(fold)
    (results_root / "paper10" / "curve.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    pictured = rv.side_by_side("paper10", record(figures=["curve.png"]))
    assert [p.alt for p in pictured if isinstance(p, html.Img)] == ["paper10: figure curve.png"]  # read aloud
    short = rv.side_by_side("paper10", record())
    assert not any(isinstance(p, html.Details) and "more rows" in str(p) for p in short)

"""reproduce compare: a rerun of the same paper, profile and seed against the committed results,
claim by claim (the same outcome, the estimate inside the committed interval)."""

from __future__ import annotations

import copy
import json
import shutil

import pytest
from click.testing import CliRunner

from reproductions import rerun_check
from reproductions.cli import main
from reproductions.run import RESULTS_DIR

COMMITTED = RESULTS_DIR / "paper5" / "results.json"  # three decided claims with intervals, and more


def write(folder, doc):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(json.dumps(doc), encoding="utf-8")
    return folder


@pytest.fixture
def committed(tmp_path):
    results = tmp_path / "results"
    (results / "paper5").mkdir(parents=True)
    shutil.copy(COMMITTED, results / "paper5" / "results.json")
    return results, json.loads(COMMITTED.read_text(encoding="utf-8"))


def decided(doc):
    return [k for k, c in enumerate(doc["claims"]) if c["estimate"] and c["estimate"]["low"] is not None]


def test_a_rerun_with_the_same_numbers_agrees_and_one_outside_an_interval_does_not(committed, tmp_path):
    results, doc = committed
    same = rerun_check.compare(write(tmp_path / "same", doc), results)
    assert same.agrees and not same.problems and len(same.claims) == len(doc["claims"])
    assert all(c.inside for c in same.claims if c.committed and c.committed.low == c.committed.low)

    k = decided(doc)[0]
    moved = copy.deepcopy(doc)
    estimate = moved["claims"][k]["estimate"]
    estimate["mean"] = estimate["high"] + 0.01  # outside, though the outcome is kept
    out = rerun_check.compare(write(tmp_path / "moved", moved), results)
    assert not out.agrees and out.claims[k].same_outcome and out.claims[k].inside is False
    assert "OUTSIDE the committed interval" in rerun_check.render(out)

    flipped = copy.deepcopy(doc)
    flipped["claims"][k]["outcome"] = "inconclusive" if doc["claims"][k]["outcome"] != "inconclusive" else "held"
    out = rerun_check.compare(write(tmp_path / "flipped", flipped), results)
    assert not out.agrees and not out.claims[k].same_outcome
    assert f"{doc['claims'][k]['outcome']} -> {flipped['claims'][k]['outcome']}" in rerun_check.render(out)


def test_another_seed_profile_or_code_is_not_a_rerun(committed, tmp_path):
    results, doc = committed
    other = copy.deepcopy(doc)
    other["run"]["seed"] += 1
    other["claims"][0]["text"] += " (changed)"
    out = rerun_check.compare(write(tmp_path / "other", other), results)
    assert not out.agrees and out.claims == ()
    assert any(p.startswith("seed:") for p in out.problems) and any("claims differ" in p for p in out.problems)


def test_the_command_exits_1_on_disagreement_and_names_a_missing_file(committed, tmp_path):
    results, doc = committed
    runner = CliRunner()
    ok = runner.invoke(main, ["compare", str(write(tmp_path / "same", doc)), "--results", str(results)])
    assert ok.exit_code == 0 and "paper5: agrees" in ok.output
    moved = copy.deepcopy(doc)
    moved["claims"][decided(doc)[0]]["estimate"]["mean"] = 1e9
    bad = runner.invoke(main, ["compare", str(write(tmp_path / "moved", moved)), "--results", str(results)])
    assert bad.exit_code == 1 and "does not agree" in bad.output
    (tmp_path / "empty").mkdir()
    missing = runner.invoke(main, ["compare", str(tmp_path / "empty"), "--results", str(results)])
    assert missing.exit_code == 1 and "empty: holds no run" in missing.output


def test_an_out_folder_gives_its_newest_run_and_several_papers_are_ambiguous(tmp_path):
    out = tmp_path / "out"
    old, new = (write(out / "paper5" / f"20261202T0{h}0000Z-cpu-seed0", {}) for h in (1, 2))
    assert rerun_check.run_folder(out) == rerun_check.run_folder(out / "paper5") == new
    assert rerun_check.run_folder(old) == old
    write(out / "paper6" / "20261202T030000Z-cpu-seed0", {})
    with pytest.raises(ValueError, match="holds runs of paper5, paper6"):
        rerun_check.run_folder(out)


RERUNS = sorted(RESULTS_DIR.glob("*/rerun-*"))


@pytest.mark.parametrize("folder", RERUNS, ids=[f"{f.parent.name}/{f.name}" for f in RERUNS])
def test_each_committed_rerun_says_what_compare_says_of_it_today(folder):
    """A committed rerun (reproductions/results/paperN/rerun-*/: its results.json, run_info.json and the
    comparison printed) still compares as printed with the committed result; publishing a new result
    replaces the paper's folder, and the rerun with it."""
    comparison = rerun_check.compare(folder)
    assert (folder / "comparison.txt").read_text(encoding="utf-8").rstrip("\n") == rerun_check.render(comparison)
    assert comparison.agrees

"""The reproduction framework: typed overrides, the registry, run records, publishing, the
side-by-side writer and the CLI (without running a model)."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from reproductions import cli as repro_cli
from reproductions import run, sidebyside
from reproductions.cli import main as reproduce
from reproductions.config import ConfigError, apply_overrides
from reproductions.outcome import Claim, DataNote, Outcome, Reported, Row
from reproductions.paper10_gcml import PRESETS
from reproductions.registry import Registry, RegistryError, build, default_registry
from survey.corpus import load_corpus


def test_overrides_are_typed_and_unknown_keys_name_the_known_ones():
    config = apply_overrides(PRESETS["smoke"], ["epochs=3", "lr=0.01", "ablation=false",
                                                "datasets=digits,fashion-mnist", "hidden=8,4"])
    assert (config.epochs, config.lr, config.ablation) == (3, 0.01, False)
    assert config.datasets == ("digits", "fashion-mnist") and config.hidden == (8, 4)
    with pytest.raises(ConfigError, match="known keys: .*epochs"):
        apply_overrides(PRESETS["smoke"], ["epoch=3"])
    with pytest.raises(ConfigError, match="epochs: expected int, got 'many'"):
        apply_overrides(PRESETS["smoke"], ["epochs=many"])
    with pytest.raises(ConfigError, match="datasets: choose from"):
        apply_overrides(PRESETS["smoke"], ["datasets=mnist"])
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides(PRESETS["smoke"], ["epochs"])


def test_the_registry_refuses_keys_outside_the_corpus_and_duplicates():
    registry = Registry({"Wu2022GCML"})
    registry.register("paper10", "Wu2022GCML", "m", "reproductions.paper10_gcml")
    with pytest.raises(RegistryError, match="not in the corpus"):
        registry.register("paper99", "Nobody2030", "m", "x")
    with pytest.raises(RegistryError, match="twice"):
        registry.register("paper10", "Wu2022GCML", "m", "x")
    assert default_registry()["paper10"].bib_key == "Wu2022GCML"
    assert hasattr(default_registry()["paper10"].load(), "PRESETS")


def test_run_info_marks_interrupted_and_failed_runs(tmp_path):
    for error, status in ((KeyboardInterrupt(), "interrupted"), (ValueError("boom"), "failed")):
        info = {"paper": "paperX"}
        with pytest.raises(type(error)):
            with run.recorded(tmp_path, info):
                assert json.loads((tmp_path / "run_info.json").read_text())["status"] == "running"
                raise error
        written = json.loads((tmp_path / "run_info.json").read_text())
        assert written["status"] == status and written["wall_time_s"] >= 0
    assert "boom" in written["error"]


def test_smoke_runs_never_write_or_publish_into_results(tmp_path, monkeypatch):
    with pytest.raises(run.RunError, match="smoke runs never write"):
        run.new_run_folder(run.RESULTS_DIR / "paper10", "paper10", "smoke", 0)
    folder = run.new_run_folder(tmp_path / "out", "paper10", "smoke", 3)
    assert folder.name.endswith("-smoke-seed3") and folder.parent.name == "paper10"
    run.write_json(folder / "run_info.json", {"profile": "smoke", "status": "completed"})
    results = tmp_path / "results"
    with pytest.raises(run.RunError, match="only a completed cpu or full run"):
        run.publish(folder, "paper10", results)
    run.write_json(folder / "run_info.json", {"profile": "full", "status": "completed"})
    (results / "paper10").mkdir(parents=True)
    (results / "paper10" / "stale.txt").write_text("old")
    target = run.publish(folder, "paper10", results)
    assert (target / "run_info.json").exists() and not (target / "stale.txt").exists()
    assert sorted(p.name for p in results.iterdir()) == ["paper10"]
    run.write_json(folder / "run_info.json", {"profile": "cpu", "status": "completed"})
    with pytest.raises(run.RunError, match="does not replace"):
        run.publish(folder, "paper10", results)  # the committed full result stays
    assert json.loads((results / "paper10" / "run_info.json").read_text())["profile"] == "full"


def test_the_speed_anchor_measures_the_device():
    gflops = run.speed_anchor(torch.device("cpu"))
    assert 0.1 < gflops < 1e5  # a 2-core CPU gives tens; a real number, not a placeholder


def test_device_choice_is_explicit():
    assert run.choose_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(run.RunError, match="no CUDA device"):
            run.choose_device("cuda")


def test_side_by_side_writes_not_reported_and_names_phantoms(tmp_path):
    outcome = Outcome(
        {"acc": 0.5},
        rows=[Row("ACC", "liver / GAN", 0.857, Reported(85.7, "Frid-Adar 2018, abstract")),
              Row("FRR", "reader 1", 0.4, Reported.missing("table not found"))],
        claims=[Claim("GANs help", "abstract", True, "0.857 > 0.786")],
        data=[DataNote("liver lesions", "phantom", "synthetic lesions on real CT")],
        differences=["smaller"])
    info = {"paper": "paper3", "bib_key": "FridAdar2018Synthetic", "method": "m", "profile": "smoke",
            "status": "completed", "id": "r1", "started": "2026-01-01T00:00:00+00:00", "wall_time_s": 1.5,
            "device": "cpu", "device_name": "CPU", "seed": 0, "git_commit": None}
    doc = sidebyside.write(tmp_path, outcome, info)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved == doc and saved["schema"] == sidebyside.SCHEMA
    claim = saved["claims"][0]  # a yes/no on one seed: what it points to, not a verdict
    assert claim["outcome"] == "inconclusive" and "1 seed" in claim["reason"] and "'held'" in claim["reason"]
    assert saved["rows"][1]["paper"] is None and saved["rows"][1]["paper_text"] == "not reported"
    assert saved["rows"][0]["paper_text"] == "85.7"
    md = (tmp_path / "results.md").read_text()
    assert "| FRR | reader 1 | 0.4 | not reported |" in md and "phantom" in md and "smoke run" in md
    assert "Tally of the paper's claims: 1 inconclusive." in md and "**inconclusive**: GANs help" in md
    assert saved["run"]["speed_anchor_gflops"] is None and "speed anchor" not in md  # a run that did not measure it
    doc = sidebyside.write(tmp_path, outcome, info | {"speed_anchor_gflops": 41.5})
    assert doc["run"]["speed_anchor_gflops"] == 41.5
    assert "wall time 1.5 s (speed anchor 41.5 GFLOP/s)" in (tmp_path / "results.md").read_text()
    with pytest.raises(ValueError, match="data kind"):
        DataNote("x", "fake", "")


def test_reproduce_list_and_refusals(tmp_path, monkeypatch):
    registry = build(set(load_corpus().table["key"]))
    del registry.entries["paper3"]  # as if its module were not written yet
    monkeypatch.setattr(repro_cli, "default_registry", lambda: registry)
    listing = CliRunner().invoke(reproduce, ["list"])
    assert listing.exit_code == 0
    lines = {line.split()[0]: line for line in listing.stdout.splitlines()}
    assert "Wu2022GCML" in lines["paper10"] and "GCML" in lines["paper10"]
    assert "not implemented yet" in lines["paper3"]
    bad = CliRunner().invoke(reproduce, ["paper10", "--set", "nope=1", "--out", str(tmp_path)])
    assert bad.exit_code == 1 and "known keys" in bad.output
    smoke_in_results = CliRunner().invoke(reproduce, ["paper10", "--out", str(run.RESULTS_DIR)])
    assert smoke_in_results.exit_code == 1 and "smoke runs never write" in smoke_in_results.output


def test_reproduce_data_lists_sets_and_refuses_unknown_ones(tmp_path):
    listing = CliRunner().invoke(reproduce, ["data", "--list", "--cache", str(tmp_path)])
    assert listing.exit_code == 0 and "chest-ct" in listing.output and "not prepared" in listing.output
    bad = CliRunner().invoke(reproduce, ["data", "--only", "imagenet", "--cache", str(tmp_path)])
    assert bad.exit_code == 1 and "unknown data set" in bad.output

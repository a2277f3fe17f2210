"""The typed Run: random streams by name, seeded layer initialisation, autocast, the metrics log, and
the summary a run ends with."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from reproductions import sidebyside
from reproductions.outcome import Claim, DataNote, Outcome, Reported, Row
from reproductions.run import METRICS_LOG, Run, RunError
from reproductions.summary import render, summarise
from reproductions.verdict import Rule, interval

SMALL = range(4)
NAMES = ("x", "y", "gan-init", "1", "10")


def make_run(tmp_path, seed: int = 0) -> Run:
    return Run("paperX", "smoke", seed, torch.device("cpu"), tmp_path, {})


def draws(run: Run, stream: str) -> list[int]:
    return run.rng(stream).integers(0, 2**62, 4).tolist()


def test_each_name_is_its_own_stream_and_the_same_name_the_same_stream(tmp_path):
    run = make_run(tmp_path)
    assert draws(run, "gan-init") == draws(run, "gan-init") == draws(make_run(tmp_path), "gan-init")
    assert len({tuple(draws(run, name)) for name in NAMES}) == len(NAMES)
    a, b = run.torch_generator("batches"), run.torch_generator("batches")
    assert torch.equal(torch.randperm(50, generator=a), torch.randperm(50, generator=b))
    assert not torch.equal(torch.rand(8, generator=run.torch_generator("a")),
                           torch.rand(8, generator=run.torch_generator("b")))


def test_a_new_seed_changes_every_stream(tmp_path):
    for name in NAMES:
        assert draws(make_run(tmp_path, 0), name) != draws(make_run(tmp_path, 1), name), name
        assert not torch.equal(torch.rand(8, generator=make_run(tmp_path, 0).torch_generator(name)),
                               torch.rand(8, generator=make_run(tmp_path, 1).torch_generator(name)))


def test_no_seed_and_stream_pair_aliases_another(tmp_path):
    # seed + offset would make seed 1's stream 0 seed 0's stream 1; named streams never coincide
    streams = {}
    for seed in SMALL:
        run = make_run(tmp_path, seed)
        for name in (*NAMES, *map(str, SMALL)):
            streams[seed, name] = tuple(draws(run, name))
    assert len(set(streams.values())) == len(streams)


def test_replicas_draw_apart_and_replica_0_is_the_run_itself(tmp_path):
    run = make_run(tmp_path)
    first, second, third = run.replicas(3)
    assert draws(first, "gan-init") == draws(run, "gan-init")  # a one-seed run is its replica 0
    assert len({tuple(draws(r, name)) for r in (first, second, third) for name in NAMES}) == 3 * len(NAMES)
    assert draws(second, "gan-init") == draws(make_run(tmp_path).replicas(2)[1], "gan-init")  # fixed by the seed
    assert draws(second, "gan-init") != draws(make_run(tmp_path, 1).replicas(2)[1], "gan-init")
    with second.seeded("init"):
        a = torch.rand(3)
    with first.seeded("init"):
        b = torch.rand(3)
    assert not torch.equal(a, b)
    second.log("loss", 0.5)
    first.log("loss", 0.7)
    assert run.logged == {"replica1/loss": [(0, 0.5)], "loss": [(0, 0.7)]}  # one log, named apart


def test_seeded_builds_the_same_layers_twice_and_leaves_the_global_generator_alone(tmp_path):
    run = make_run(tmp_path)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    weights = []
    for _ in range(2):
        with run.seeded("cnn-init"):
            weights.append(torch.nn.Linear(6, 3).weight.detach().clone())
    assert torch.equal(weights[0], weights[1])
    assert torch.equal(torch.get_rng_state(), before)
    with run.seeded("other-init"):
        assert not torch.equal(torch.nn.Linear(6, 3).weight, weights[0])


def test_autocast_is_a_no_op_on_cpu(tmp_path):
    run = make_run(tmp_path)
    layer = torch.nn.Linear(4, 2)
    with run.autocast():
        out = layer(torch.ones(1, 4))
        assert not torch.is_autocast_enabled("cpu")
    assert out.dtype == torch.float32 and run.dtype == torch.float32


def test_a_negative_seed_is_refused(tmp_path):
    with pytest.raises(RunError, match="--seed -1"):
        make_run(tmp_path, -1)


def test_log_keeps_each_series_and_appends_it_to_the_metrics_log(tmp_path):
    run = make_run(tmp_path)
    run.log("d_loss", 0.5)
    run.log("d_loss", torch.tensor(0.25))
    run.log("fid", float("nan"), step=10)
    assert run.logged == {"d_loss": [(0, 0.5), (1, 0.25)], "fid": [(10, None)]}
    lines = [json.loads(line) for line in (tmp_path / METRICS_LOG).read_text().splitlines()]
    assert lines[-1] == {"name": "fid", "step": 10, "value": None} and len(lines) == 3


def finished_run(tmp_path) -> tuple:
    folder = tmp_path / "run"
    (folder / "figures").mkdir(parents=True)
    outcome = Outcome({"fid": 12.5}, rows=[Row("FID", "DCGAN", 12.5, Reported(30.0, "Table 2"), False)],
                      claims=[Claim("GAN beats DDPM", "Sec. 4", True, "Rule: held if FID is lower. FID 12.5 vs 20.1.",
                                    seeds=None),
                              Claim("DDPM memorises", "Sec. 5", False, "excess correlation -0.01", seeds=None),
                              Claim("Readers are fooled", "Sec. 6", None, "no readers here"),
                              Claim.decided("Small wins", "Sec. 7", Rule("Dice gain", "better", 0.02),
                                            interval([0.01, 0.03, 0.05]), "Dice 0.81 vs 0.78", addition=True)],
                      data=[DataNote("phantom", "phantom", "made here")],
                      figures=["figures/samples.png", "figures/curves.png"])
    info = {"paper": "paper5", "bib_key": "K", "method": "m", "profile": "smoke", "status": "completed",
            "id": "20260101T000000Z-smoke-seed0", "started": "2026-01-01T00:00:00+00:00", "wall_time_s": 61.0,
            "device": "cpu", "device_name": "CPU", "seed": 0, "git_commit": None}
    sidebyside.write(folder, outcome, info)
    return folder, info


def test_the_summary_lists_each_claims_outcome_and_the_figures(tmp_path):
    folder, info = finished_run(tmp_path)
    summary = summarise(folder, tmp_path / "results")
    assert [(c.text, c.outcome) for c in summary.claims] == [
        ("GAN beats DDPM", "held"), ("DDPM memorises", "did not hold"), ("Readers are fooled", "not testable here"),
        ("Small wins", "inconclusive (our addition)")]
    assert summary.claims[0].evidence == "FID 12.5 vs 20.1."  # the numbers, not the rule
    assert summary.claims[3].evidence == "0.03 [-0.0197, 0.0797] (95% t interval, 3 seeds)"  # the interval first
    assert summary.tally == "1 held, 1 did not hold, 1 not testable here"  # ours does not count
    assert summary.figures == (folder / "figures/samples.png", folder / "figures/curves.png")
    assert summary.results_page == folder / "results.md" and summary.published is None
    assert summary.explorer_page.endswith("/reproductions#paper5")
    text = render(summary)
    assert all(str(f) in text for f in summary.figures) and str(summary.results_page) in text


def test_the_summary_names_the_published_results_when_this_run_is_them(tmp_path):
    folder, info = finished_run(tmp_path)
    results = tmp_path / "results"
    (results / "paper5").mkdir(parents=True)
    (results / "paper5" / "run_info.json").write_text(json.dumps({"id": info["id"]}))
    assert summarise(folder, results).published == results / "paper5"
    (results / "paper5" / "run_info.json").write_text(json.dumps({"id": "another run"}))
    assert summarise(folder, results).published is None


def test_draws_do_not_depend_on_the_global_generators(tmp_path):
    run = make_run(tmp_path)
    first = draws(run, "x")
    np.random.seed(99)
    torch.manual_seed(99)
    assert draws(run, "x") == first

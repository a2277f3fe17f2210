"""paper7 (report generation benchmark: three encoder families, a LoRA decoder, in- and cross-modality):
the smoke profile end to end through the CLI into a temporary folder, and its pieces."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch

from reproductions.outcome import NOT_REPORTED
from reproductions.paper7_peft_report_benchmark import FAMILIES, MODALITIES, PRESETS, Config, model, patches, report
from reproductions.run import Run
from tests.conftest import needs_data, smoke_run

METRICS = ("bertscore", "rouge_l", "bleu1", "cider", "meteor")


def cpu_run(tmp_path, seed: int = 0) -> Run:
    return Run("paper7", "smoke", seed, torch.device("cpu"), tmp_path, {})


@pytest.mark.slow
@needs_data("chest-ct", "dicom-images", "fid-inception", "minilm", "smollm2")
def test_paper7_smoke_run_writes_a_complete_run_folder(tmp_path):
    folder, info = smoke_run("paper7", tmp_path)
    assert info["wall_time_s"] > 0
    mods = PRESETS["smoke"].modalities

    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["seeds"] == 1 and len(metrics["per_seed"]) == 1
    for split in ("in-modality", "cross-modality"):
        assert set(metrics[split]) == set(FAMILIES)
        for family, per_modality in metrics[split].items():
            assert set(per_modality) == set(mods), (split, family)
            for scores in per_modality.values():
                assert all(0 <= scores[k] <= 1 for k in ("bertscore", "rouge_l", "bleu1", "meteor")), scores
                assert 0 <= scores["cider"] <= 10
        ranks = metrics["ranks"][split]  # mean ranks of three families over the same cells sum to 1 + 2 + 3
        assert set(ranks) == set(FAMILIES) and all(1 <= r <= 3 for r in ranks.values())
        assert sum(ranks.values()) == pytest.approx(6)
    # the Inception experiment is shared by both splits: the same numbers
    assert metrics["in-modality"]["natural"] == metrics["cross-modality"]["natural"]
    assert set(metrics["floor"]) == set(mods) and all(0 <= s["bleu1"] <= 1 for s in metrics["floor"].values())
    seed = metrics["per_seed"][0]
    assert len(seed["experiments"]) == 2 * 3 * len(mods)
    for e in seed["experiments"]:  # the decoder learns the test modality's words; cross: its images unseen
        assert e["trained_on"] == [e["test"]]
        assert (e["test"] in e["encoder_saw"]) == (e["split"] == "in-modality" and e["family"] != "natural")
        assert len(e["losses"]) == PRESETS["smoke"].steps and all(math.isfinite(v) for v in e["losses"])
        assert e["examples"][0]["reference"].startswith(tuple(t["exam"] for t in patches.TEMPLATES.values()))
    accuracy = seed["encoder_accuracy"]
    assert set(accuracy) == {f"specific:{m}" for m in mods} | {"foundation"}
    assert all(0 <= accuracy[f"specific:{m}"] <= 1 and 0 <= accuracy["foundation"][m] <= 1 for m in mods)

    doc = json.loads((folder / "results.json").read_text())
    assert len(doc["rows"]) == 2 * 3 * len(mods) * 5 + 5  # the X-ray modality-specific row twice
    reported = {(r["setting"], r["metric"]): r["paper"] for r in doc["rows"] if r["paper"] is not None}
    assert len(reported) == 10
    assert reported[("in-modality / modality-specific (CNN) / X-ray (paper: R2GenGPT)", "ROUGE-L")] == 0.195
    assert reported[("in-modality / modality-specific (CNN) / X-ray (paper: XrayGPT)", "CIDEr")] == 0.174
    others = [r for r in doc["rows"] if r["paper"] is None]
    assert others and {r["paper_text"] for r in others} == {NOT_REPORTED}
    assert all(0 <= r["ours"] <= 10 for r in doc["rows"])

    # one seed: no interval, so both claims are inconclusive; the gates were read
    assert [c["outcome"] for c in doc["claims"]] == ["inconclusive", "inconclusive"]
    assert all(c["seeds"] == 1 and c["gates"] for c in doc["claims"])
    kinds = {d["name"]: d["kind"] for d in doc["data"]}
    assert kinds == {"CT patches": "real", "X-ray patches": "real", "Pathology patches": "real",
                     "reports": "synthetic", "decoder weights": "substitute"}
    assert doc["differences"] and len(doc["figures"]) == 3
    for figure in doc["figures"]:
        assert (folder / figure).read_bytes()[:4] == b"\x89PNG"
    table = [line for line in (folder / "table_fig10_layout.md").read_text().splitlines() if line.startswith("|")]
    assert len(table) == 2 + 2 + 2 * 3 and all(line.count("|") == 1 + 1 + len(mods) * 5 for line in table)


# ---- configuration and plan ---------------------------------------------------------------------

@pytest.mark.parametrize("change, field", [
    ({"modalities": ("ultrasound",)}, "modalities"), ({"modalities": ("ct", "ct")}, "modalities"),
    ({"splits": ("leave-one-out",)}, "splits"), ({"modalities": ("ct", "xray")}, "cross-modality"),
    ({"steps": 0}, "steps"), ({"seeds": 0}, "seeds"), ({"decode_on": ("mr",)}, "decode_on"),
    ({"test_per_modality": 6, "patches_per_class": 2}, "test_per_modality"),
    ({"lr": 0.0}, "lr"), ({"image_size": 8}, "image_size"),
])
def test_config_rejects_bad_values_naming_the_field(change, field):
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(PRESETS["smoke"], **change)


def test_every_preset_is_valid_and_the_cpu_profile_decides_on_three_seeds():
    assert set(PRESETS) == {"smoke", "cpu", "full"}
    assert Config(modalities=("ct",), splits=("in-modality",)).modalities == ("ct",)
    assert PRESETS["cpu"].seeds >= 3 and PRESETS["full"].seeds >= 3


def test_the_plan_holds_out_images_not_words_in_cross_modality_runs():
    config = Config()
    plan = model.experiments(config)
    assert len(plan) == 2 * 4 * 3
    for split, family, test, encoder in plan:
        saw = model.encoder_saw(encoder, config.modalities)
        if split == "in-modality":
            assert encoder == {"natural": "natural", "specific": f"specific:{test}", "foundation": "foundation"}[family]
            assert (test in saw) == (family != "natural")
        else:
            assert test not in saw  # no encoder saw the test modality's images
            assert len(saw) == {"natural": 0, "specific": 1, "foundation": 3}[family]
    assert ("cross-modality", "specific", "pathology", "specific:ct") in plan
    assert ("cross-modality", "foundation", "mr", "foundation-without:mr") in plan
    assert model.encoder_saw("foundation", config.modalities) == list(config.modalities)


def test_decode_on_keeps_the_other_modalities_for_the_encoders_only():
    config = dataclasses.replace(PRESETS["cpu"])
    plan = model.experiments(config)
    assert {test for _, _, test, _ in plan} == {"xray"} and len(plan) == 2 * 3
    assert ("cross-modality", "specific", "xray", "specific:pathology") in plan
    assert model.encoder_saw("foundation-without:xray", config.modalities) == ["ct", "pathology"]


def test_the_floor_is_the_most_common_training_report():
    assert model.most_common_report(["a", "b", "b", "c", "a", "b"]) == "b"
    assert model.most_common_report(["x", "y"]) == "x"  # ties: the first seen


# ---- data ---------------------------------------------------------------------------------------

def test_reports_follow_the_template_of_their_labels():
    rng = np.random.default_rng(0)
    text = patches.report("ct", "liver", "high", rng)
    assert text.startswith("CT, liver. High attenuation. Homogeneous hepatic parenchyma.")
    assert text.endswith(patches.TEMPLATES["ct"]["closing"])
    for modality, template in patches.TEMPLATES.items():  # every region has a finding sentence
        for region in template["findings"]:
            assert region in patches.report(modality, region, "low", rng)


def test_pathology_patches_are_real_stain_labelled_and_split_by_class():
    found = patches.load_modality("pathology", 5, 32, np.random.default_rng(0), np.random.default_rng(1))
    assert found.images.shape == (20, 3, 32, 32) and 0 <= found.images.min() and found.images.max() <= 1
    assert np.bincount(found.labels).tolist() == [5] * 4 and len(found.reports) == 20
    epithelium, stroma = found.images[found.labels == 0], found.images[found.labels == 1]
    assert epithelium[:, 2].mean() < stroma[:, 2].mean()  # brown DAB absorbs blue: darker blue channel
    train, test = patches.split(found, 6, np.random.default_rng(0))
    assert len(test) == 6 and len(train) == 14 and np.bincount(test.labels).tolist() == [2, 2, 1, 1]
    assert set(test.reports) <= set(found.reports)


def test_patches_come_from_named_streams_of_the_run(tmp_path):
    config = dataclasses.replace(PRESETS["smoke"], modalities=("pathology",), splits=("in-modality",))
    train, test = model.load_patches(config, cpu_run(tmp_path))
    again, _ = model.load_patches(config, cpu_run(tmp_path))
    assert np.array_equal(train["pathology"].images, again["pathology"].images)
    other, _ = model.load_patches(config, cpu_run(tmp_path, seed=1))
    assert not np.array_equal(train["pathology"].images, other["pathology"].images)
    assert len(test["pathology"]) == config.test_per_modality


@needs_data("dicom-images", "mni152")
def test_xray_and_mr_patches_carry_their_zone_and_tissue():
    xray = patches.load_modality("xray", 3, 64, np.random.default_rng(1), np.random.default_rng(2))
    assert xray.images.shape == (21, 3, 64, 64) and xray.classes == tuple(patches.XRAY_ZONES)
    lungs = xray.images[xray.labels == 0].mean()  # right upper zone: aerated lung is darker than the heart
    heart = xray.images[xray.labels == xray.classes.index("cardiac silhouette")].mean()
    assert lungs < heart
    mr = patches.load_modality("mr", 4, 64, np.random.default_rng(1), np.random.default_rng(2))
    assert mr.classes == ("white matter", "grey matter", "cerebrospinal fluid") and len(mr) == 12
    means = [mr.images[mr.labels == c, :, 28:36, 28:36].mean() for c in range(3)]
    assert means[0] > means[1] > means[2]  # T1: white matter brightest, CSF darkest


# ---- models -------------------------------------------------------------------------------------

def test_the_shared_cnn_has_paper7s_shape_and_the_prefix_the_token_scale(tmp_path):
    from reproductions.common.classifier import SmallCNN, embed

    cnn = SmallCNN(5, in_channels=3, widths=(8, 16, 32, 32), downsample="stride", feature_dim=16)
    assert cnn(torch.rand(3, 3, 64, 64)).shape == (3, 5)
    assert embed(cnn.eval(), np.random.rand(3, 3, 64, 64).astype(np.float32), cpu_run(tmp_path)).shape == (3, 16)
    prefix = model.Prefix(16, prefix_tokens=4, hidden=24, scale=0.5)
    out = prefix(torch.randn(2, 16))
    assert out.shape == (2, 4, 24)
    assert torch.allclose(out.pow(2).mean(-1).sqrt(), torch.full((2, 4), 0.5), atol=1e-3)  # token-embedding scale


@needs_data("smollm2")
def test_report_decoder_learns_a_report_and_resets_its_lora(tmp_path):
    from reproductions.common import smollm

    run = cpu_run(tmp_path)
    lm, tokenizer = smollm.load("cpu")
    decoder = model.ReportDecoder(lm, tokenizer, rank=8, alpha=16, run=run)
    features = torch.randn(4, 10, generator=torch.Generator().manual_seed(0))
    reports = ["CT, liver. Low attenuation."] * 4
    prefix, losses = decoder.train(features, reports, 2, 20, 4, 3e-3, run, "decoder-test")
    assert losses[-1] < 0.5 * losses[0]
    assert any(not torch.equal(p, p0) for p, p0 in zip(decoder.lora, decoder.initial))
    texts = decoder.generate(prefix, features[:2], max_new_tokens=10, run=run)
    assert len(texts) == 2 and all(isinstance(t, str) for t in texts)
    decoder.reset()
    assert all(torch.equal(p, p0) for p, p0 in zip(decoder.lora, decoder.initial))
    _, again = decoder.train(features, reports, 2, 1, 4, 3e-3, run, "decoder-test")
    assert again[0] == losses[0]  # the same stream and a reset LoRA: the same projection, batch and loss


# ---- claims, rows and the table -----------------------------------------------------------------

def _scores(best: str, modalities=MODALITIES, low: float = 0.2) -> dict:
    return {f: {m: dict.fromkeys(METRICS, 0.5 if f == best else low + 0.1 * FAMILIES.index(f) / 10)
                for m in modalities} for f in FAMILIES}


def _seed(best_in: str, best_cross: str, steps: int = 40, flat: bool = True, floor: float = 0.1) -> dict:
    """One seed's metrics as ``trial`` writes them: scores, the floor and one record per experiment."""
    losses = [1.0] * steps if flat else list(np.linspace(2, 0.5, steps))
    experiments = [{"split": s, "family": f, "test": m, "losses": losses, "steps_per_epoch": 2}
                   for s in ("in-modality", "cross-modality") for f in FAMILIES for m in MODALITIES]
    return {"scores": {"in-modality": _scores(best_in), "cross-modality": _scores(best_cross)},
            "floor": {m: dict.fromkeys(METRICS, floor) for m in MODALITIES}, "experiments": experiments,
            "test_sizes": dict.fromkeys(MODALITIES, 16),
            "encoder_accuracy": {**{f"specific:{m}": 0.5 for m in MODALITIES},
                                 "foundation": dict.fromkeys(MODALITIES, 0.4)}}


def _outcomes(*seeds) -> list[str]:
    return [c.outcome for c in report.claims({"per_seed": list(seeds)})]


def test_claims_follow_the_rank_margin_rule_over_three_seeds():
    wins = [_seed("foundation", "natural") for _ in range(3)]
    assert _outcomes(*wins) == ["held", "held"]
    claims = report.claims({"per_seed": wins})
    assert claims[0].estimate.n == 3 and claims[0].estimate.mean == pytest.approx(1.0)  # rival rank 2, ours 1
    assert report.mean_ranks(wins[0]["scores"]["in-modality"]) == {"natural": 3.0, "specific": 2.0, "foundation": 1.0}
    losses = [_seed("natural", "foundation") for _ in range(3)]
    assert _outcomes(*losses) == ["did not hold", "did not hold"]


def test_claims_are_inconclusive_on_one_seed_or_a_split_seed_set():
    assert _outcomes(_seed("foundation", "natural")) == ["inconclusive", "inconclusive"]
    mixed = [_seed("foundation", "natural"), _seed("specific", "specific"), _seed("foundation", "natural")]
    assert _outcomes(*mixed) == ["inconclusive", "inconclusive"]


def test_rank_margins_take_the_best_rival_of_each_seed():
    seeds = [_seed("foundation", "natural"), _seed("specific", "natural")]
    margins, rivals = report.rank_margins(seeds, "in-modality", "foundation")
    assert margins == [1.0, -1.0] and rivals == ["specific", "specific"]  # seed 1: specific first, ours second


def test_gates_make_claims_inconclusive_when_decoders_still_learn_or_sit_at_the_floor():
    falling = [_seed("foundation", "natural", flat=False) for _ in range(3)]
    assert _outcomes(*falling) == ["inconclusive", "inconclusive"]
    at_floor = [_seed("foundation", "natural", floor=0.6) for _ in range(3)]  # every family below the floor
    assert _outcomes(*at_floor) == ["inconclusive", "inconclusive"]
    claim = report.claims({"per_seed": at_floor})[0]
    assert [g.passed for g in claim.gates] == [True, False, False]


def test_smoothed_losses_are_running_means_of_an_epoch():
    assert report.smoothed([4.0, 2.0, 0.0, 2.0], 2) == [3.0, 1.0, 1.0]
    assert report.smoothed([1.0, 2.0], 5) == [1.5]
    assert report.smoothed([1.0, 3.0], 1) == [1.0, 3.0]


def test_a_split_that_did_not_run_is_not_testable():
    seed = _seed("foundation", "natural")
    seed["scores"].pop("cross-modality")
    assert _outcomes(seed, seed, seed) == ["held", "not testable here"]


def test_the_cross_modality_rule_follows_reported_results_not_the_review_summary():
    # the review's summary says foundation models are best across modalities; the rule does not count that
    assert _outcomes(*[_seed("natural", "foundation") for _ in range(3)])[1] == "did not hold"


def _metrics(best_in: str, best_cross: str) -> dict:
    return {"in-modality": _scores(best_in), "cross-modality": _scores(best_cross)}


def test_rows_set_the_papers_xray_numbers_beside_ours_and_nothing_else():
    rows = report.rows(_metrics("specific", "natural"), seeds=3)
    assert len(rows) == 2 * 3 * 4 * 5 + 5
    reported = [r for r in rows if r.paper.value is not None]
    assert sorted(r.paper.value for r in reported) == sorted(v for m in report.PAPER_XRAY.values() for v in m.values())
    assert all(r.ours == 0.5 for r in reported)  # our in-modality modality-specific X-ray scores, set to 0.5 here
    assert all(r.higher_is_better for r in rows)


def test_table_has_the_papers_layout_and_only_its_xray_numbers():
    header, body = report.table(_metrics("foundation", "natural"), MODALITIES)
    assert len(header) == 1 + 4 * 5 and header[1:6] == ["CT BS", "CT R", "CT B1", "CT C", "CT M"]
    assert len(body) == 2 + 2 * 3 and all(len(r) == len(header) for r in body)
    r2gen = body[0]
    assert r2gen[6:11] == ["0.630", "0.195", "0.229", "0.166", "0.091"]
    assert set(r2gen[1:6] + r2gen[11:]) == {"n.r."}

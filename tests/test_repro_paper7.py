"""paper7 (report generation benchmark: three encoder families, a LoRA decoder, in- and cross-modality):
the smoke profile end to end through the CLI into a temporary folder, and its pieces."""

from __future__ import annotations

import contextlib
import dataclasses
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from reproductions.paper7_peft_report_benchmark import (FAMILIES, FAMILY_TITLES, PRESETS, Config, data, experiments,
                                                       models, scoring)
from tests.conftest import needs_data, smoke_run

METRICS = ("bertscore", "rouge_l", "bleu1", "cider", "meteor")


@pytest.mark.slow
@needs_data("chest-ct", "dicom-images", "mni152", "fid-inception", "minilm", "smollm2")
def test_paper7_smoke_run_writes_a_complete_run_folder(tmp_path):
    folder, info = smoke_run("paper7", tmp_path)
    assert info["wall_time_s"] > 0

    metrics = json.loads((folder / "metrics.json").read_text())
    for split in ("in-modality", "cross-modality"):
        assert set(metrics[split]) == set(FAMILIES)
        for family, per_modality in metrics[split].items():
            assert set(per_modality) == set(data.MODALITIES), (split, family)
            for scores in per_modality.values():
                assert all(0 <= scores[k] <= 1 for k in ("bertscore", "rouge_l", "bleu1", "meteor")), scores
                assert 0 <= scores["cider"] <= 10
    assert len(metrics["experiments"]) == 24
    for e in metrics["experiments"]:  # cross-modality decoders never see the test modality's reports
        assert (e["trained_on"] == [e["test"]]) == (e["split"] == "in-modality")
        assert e["split"] == "in-modality" or e["test"] not in e["trained_on"]
        assert e["examples"] and e["examples"][0]["reference"].startswith(("CT", "Chest", "Brain", "Colon"))

    doc = json.loads((folder / "results.json").read_text())
    assert len(doc["rows"]) == 2 * 3 * 4 * 5 + 5  # the X-ray modality-specific row twice: R2GenGPT and XrayGPT
    reported = {(r["setting"], r["metric"]): r["paper"] for r in doc["rows"] if r["paper"] is not None}
    assert len(reported) == 10
    assert reported[("in-modality / modality-specific (CNN) / X-ray (paper: R2GenGPT)", "ROUGE-L")] == 0.195
    assert reported[("in-modality / modality-specific (CNN) / X-ray (paper: XrayGPT)", "CIDEr")] == 0.174
    assert reported[("in-modality / modality-specific (CNN) / X-ray (paper: XrayGPT)", "BERTScore (MiniLM-L6) F1")] == 0.632
    others = [r for r in doc["rows"] if r["paper"] is None]
    assert others and {r["paper_text"] for r in others} == {"not reported"}
    assert all("not comparable" in r["note"] for r in doc["rows"] if r["metric"].startswith("BERTScore"))

    assert len(doc["claims"]) == 2 and all("Mean ranks" in c["evidence"] for c in doc["claims"])
    assert metrics["test_sizes"] == dict.fromkeys(data.MODALITIES, 2)  # too few to decide: not testable
    assert [c["held"] for c in doc["claims"]] == [None, None]
    assert all("Not testable here" in c["evidence"] and "classification accuracy" in c["evidence"] for c in doc["claims"])
    kinds = {d["name"]: d["kind"] for d in doc["data"]}
    assert kinds["reports"] == "synthetic" and kinds["MR patches"] == "substitute" and kinds["CT patches"] == "real"
    page = (folder / "results.md").read_text()
    assert "smoke run" in page and "SmolLM2-135M-Instruct from its 4-bit GGUF release" in page
    assert "label-conditioned templates" in page
    for figure in doc["figures"]:
        assert (folder / figure).read_bytes()[:4] == b"\x89PNG"
    table = (folder / "table_fig10_layout.md").read_text()
    assert "| paper: R2GenGPT (X-ray-specific) | n.r. |" in table and "0.630" in table and "MR stands in" in table


# ---- configuration and plan ---------------------------------------------------------------------

@pytest.mark.parametrize("change, field", [
    ({"modalities": ("ultrasound",)}, "modalities"), ({"modalities": ("ct", "ct")}, "modalities"),
    ({"splits": ("leave-one-out",)}, "splits"), ({"modalities": ("ct",)}, "cross-modality"),
    ({"steps": 0}, "steps"), ({"test_per_modality": 6, "patches_per_class": 2}, "test_per_modality"),
    ({"lr": 0.0}, "lr"), ({"image_size": 8}, "image_size"),
])
def test_config_rejects_bad_values_naming_the_field(change, field):
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(PRESETS["smoke"], **change)


def test_every_preset_is_valid_and_one_modality_runs_in_modality_only():
    assert set(PRESETS) == {"smoke", "cpu", "full"}
    assert Config(modalities=("ct",), splits=("in-modality",)).modalities == ("ct",)


def test_the_plan_holds_out_the_test_modality_in_cross_modality_runs():
    plan = experiments(Config())
    assert len(plan) == 2 * 4 * 3
    for split, family, test, trained, encoder in plan:
        if split == "in-modality":
            assert trained == (test,)
            assert encoder == (f"specific:{test}" if family == "specific" else family)
        else:
            assert test not in trained and len(trained) == 3
            assert encoder != f"specific:{test}"  # a modality-specific encoder of a training modality
    assert ("cross-modality", "specific", "pathology", ("ct", "xray", "mr"), "specific:ct") in plan


# ---- data ---------------------------------------------------------------------------------------

def test_reports_follow_the_template_of_their_labels():
    rng = np.random.default_rng(0)
    text = data.report("ct", "liver", "high", rng)
    assert text.startswith("CT, liver. High attenuation. Homogeneous hepatic parenchyma.")
    assert text.endswith(data.TEMPLATES["ct"]["closing"])
    for modality, template in data.TEMPLATES.items():  # every region has a finding sentence
        for region in template["findings"]:
            assert region in data.report(modality, region, "low", rng)


def test_pathology_patches_are_real_stain_labelled_and_split_by_class():
    patches = data.load_modality("pathology", 5, 32, seed=0)
    assert patches.images.shape == (20, 3, 32, 32) and 0 <= patches.images.min() and patches.images.max() <= 1
    assert np.bincount(patches.labels).tolist() == [5] * 4 and "immunohistochemistry" in patches.source
    epithelium, stroma = patches.images[patches.labels == 0], patches.images[patches.labels == 1]
    assert epithelium[:, 2].mean() < stroma[:, 2].mean()  # brown DAB absorbs blue: darker blue channel
    train, test = data.split(patches, 6, np.random.default_rng(0))
    assert len(test) == 6 and len(train) == 14 and np.bincount(test.labels).tolist() == [2, 2, 1, 1]
    assert set(test.reports) <= set(patches.reports)


@needs_data("dicom-images", "mni152")
def test_xray_and_mr_patches_carry_their_zone_and_tissue():
    xray = data.load_modality("xray", 3, 64, seed=1)
    assert xray.images.shape == (21, 3, 64, 64) and xray.classes == tuple(data.XRAY_ZONES)
    lungs = xray.images[xray.labels == 0].mean()  # right upper zone: aerated lung is darker than the heart
    heart = xray.images[xray.labels == xray.classes.index("cardiac silhouette")].mean()
    assert lungs < heart
    mr = data.load_modality("mr", 4, 64, seed=1)
    assert mr.classes == ("white matter", "grey matter", "cerebrospinal fluid") and len(mr) == 12
    means = [mr.images[mr.labels == c, :, 28:36, 28:36].mean() for c in range(3)]
    assert means[0] > means[1] > means[2]  # T1: white matter brightest, CSF darkest


# ---- models -------------------------------------------------------------------------------------

def test_small_cnn_and_prefix_shapes():
    cnn = models.SmallCNN(n_classes=5, width=8, feature_dim=16)
    assert cnn(torch.rand(3, 3, 64, 64)).shape == (3, 5)
    assert models.cnn_features(cnn.eval(), np.random.rand(3, 3, 64, 64).astype(np.float32), "cpu").shape == (3, 16)
    prefix = models.Prefix(16, prefix_tokens=4, hidden=24, scale=0.5)
    out = prefix(torch.randn(2, 16))
    assert out.shape == (2, 4, 24)
    assert torch.allclose(out.pow(2).mean(-1).sqrt(), torch.full((2, 4), 0.5), atol=1e-3)  # token-embedding scale


@needs_data("smollm2")
def test_report_decoder_learns_a_report_and_resets_its_lora():
    from reproductions.common import smollm

    model, tokenizer = smollm.load("cpu")
    decoder = models.ReportDecoder(model, tokenizer, rank=8, alpha=16, device="cpu")
    run = SimpleNamespace(device=torch.device("cpu"), autocast=contextlib.nullcontext)
    features = torch.randn(4, 10)
    reports = ["CT, liver. Low attenuation."] * 4
    prefix, losses = decoder.train(features, reports, 2, 20, 4, 3e-3, torch.Generator().manual_seed(0), run)
    assert losses[-1] < 0.5 * losses[0]
    assert any(not torch.equal(p, p0) for p, p0 in zip(decoder.lora, decoder.initial))
    texts = decoder.generate(prefix, features[:2], max_new_tokens=10, run=run)
    assert len(texts) == 2 and all(isinstance(t, str) for t in texts)
    decoder.reset()
    assert all(torch.equal(p, p0) for p, p0 in zip(decoder.lora, decoder.initial))


# ---- scoring and claims -------------------------------------------------------------------------

def _metrics(best_in: str, best_cross: str) -> dict:
    def split(best):
        return {f: {m: dict.fromkeys(METRICS, 0.5 if f == best else 0.2 + 0.1 * FAMILIES.index(f) / 10)
                    for m in data.MODALITIES} for f in FAMILIES}
    return {"in-modality": split(best_in), "cross-modality": split(best_cross)}


ENOUGH = dict.fromkeys(data.MODALITIES, scoring.MIN_TEST_PATCHES)


def test_claims_follow_the_mean_rank_rule():
    held = scoring.claims(_metrics("foundation", "natural"), FAMILIES, FAMILY_TITLES, ENOUGH)
    assert [c.held for c in held] == [True, True] and "foundation (multi-modality CNN) 1.00" in held[0].evidence
    reversed_ = scoring.claims(_metrics("natural", "foundation"), FAMILIES, FAMILY_TITLES, ENOUGH)
    assert [c.held for c in reversed_] == [False, False]
    tied = _metrics("foundation", "natural")
    tied["in-modality"]["specific"] = tied["in-modality"]["foundation"]
    assert scoring.claims(tied, FAMILIES, FAMILY_TITLES, ENOUGH)[0].held is False  # a shared first place is no win
    only_in = {"in-modality": _metrics("foundation", "natural")["in-modality"]}
    assert [c.held for c in scoring.claims(only_in, FAMILIES, FAMILY_TITLES, ENOUGH)] == [True, None]


def test_claims_are_not_testable_on_too_few_test_patches_but_show_the_ranks():
    small = {**ENOUGH, "mr": scoring.MIN_TEST_PATCHES - 1}
    verdicts = scoring.claims(_metrics("foundation", "natural"), FAMILIES, FAMILY_TITLES, small)
    assert [c.held for c in verdicts] == [None, None]
    for claim in verdicts:
        assert "Not testable here" in claim.evidence and f"{scoring.MIN_TEST_PATCHES - 1} test patches" in claim.evidence
        assert "Mean ranks: natural-domain (Inception-v3)" in claim.evidence


def test_cross_modality_evidence_names_the_conflicting_sources_and_the_foundation_rank():
    natural_best = scoring.claims(_metrics("foundation", "natural"), FAMILIES, FAMILY_TITLES, ENOUGH)[1]
    assert "review's summary" in natural_best.source and "reported-results.md" in natural_best.source
    assert "Sources conflict" in natural_best.evidence and "particularly in cross-modal tasks" in natural_best.evidence
    assert "foundation family did not have the lowest cross-modality mean rank" in natural_best.evidence
    foundation_best = scoring.claims(_metrics("natural", "foundation"), FAMILIES, FAMILY_TITLES, ENOUGH)[1]
    assert foundation_best.held is False  # the rule stays reported-results.md's
    assert "foundation family had the strictly lowest cross-modality mean rank (1.00" in foundation_best.evidence
    in_modality = scoring.claims(_metrics("foundation", "natural"), FAMILIES, FAMILY_TITLES, ENOUGH)[0]
    assert "Sources conflict" not in in_modality.evidence and "review's summary" not in in_modality.source


def test_claims_show_the_encoders_classification_accuracy():
    accuracy = {"specific:ct": 0.5, "specific:xray": 0.25, "specific:mr": 1.0, "specific:pathology": 0.75,
                "foundation": {"ct": 0.125, "xray": 0.5, "mr": 0.375, "pathology": 1.0}}
    classes = {"ct": 7, "xray": 7, "mr": 3, "pathology": 4}
    claim = scoring.claims(_metrics("foundation", "natural"), FAMILIES, FAMILY_TITLES, ENOUGH, accuracy, data.TITLES,
                           classes)[0]
    assert "modality-specific CNNs CT 0.50 (chance 0.14), X-ray 0.25 (chance 0.14), MR 1.00 (chance 0.33)" in claim.evidence
    assert "foundation CNN (chance 0.05) CT 0.12, X-ray 0.50, MR 0.38, Pathology 1.00" in claim.evidence
    assert "accuracy" not in scoring.claims(_metrics("foundation", "natural"), FAMILIES, FAMILY_TITLES, ENOUGH)[0].evidence


def test_table_has_the_papers_layout_and_only_its_xray_numbers():
    header, body = scoring.table(_metrics("foundation", "natural"), FAMILIES, FAMILY_TITLES, data.MODALITIES,
                                 data.TITLES)
    assert len(header) == 1 + 4 * 5 and header[1:6] == ["CT BS", "CT R", "CT B1", "CT C", "CT M"]
    assert len(body) == 2 + 2 * 3 and all(len(r) == len(header) for r in body)
    r2gen = body[0]
    assert r2gen[6:11] == ["0.630", "0.195", "0.229", "0.166", "0.091"]
    assert set(r2gen[1:6] + r2gen[11:]) == {"n.r."}

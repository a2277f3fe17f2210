"""paper9 (LoRA + ORPO report generation): the smoke profile end to end through the CLI, and its pieces:
ORPO's loss against a hand computation of its formula, the response log-likelihoods, the finding
extractor, the rejected reports, the simulated stage 1, the named streams they draw from, the real
stage-1 image model on files the test writes, the claims' rules and the config's validation."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from reproductions.config import ConfigError, apply_overrides
from reproductions.paper9_lora_orpo_reports import PRESETS, Config, model
from reproductions.paper9_lora_orpo_reports.findings import extract, finding_scores, mentions
from reproductions.paper9_lora_orpo_reports.model import (Example, donor_sentences, encode, orpo_loss, rejected_report,
                                                          token_logps)
from reproductions.paper9_lora_orpo_reports.report import MIN_CORRECT_FINDINGS, claims, orpo_is_short
from reproductions.paper9_lora_orpo_reports.stage1 import image_stage1, noisy_tags, tag_errors, tag_text
from reproductions.run import Run
from tests.conftest import needs_data, smoke_run


def cpu_run(tmp_path, seed: int = 0) -> Run:
    return Run("paper9", "smoke", seed, torch.device("cpu"), tmp_path, {})


@pytest.mark.slow
@needs_data("iu-xray-reports", "smollm2", "minilm")
def test_paper9_smoke_run_writes_a_complete_run_folder(tmp_path):
    folder, info = smoke_run("paper9", tmp_path, seed=3)
    metrics = json.loads((folder / "metrics.json").read_text())
    for stage in ("sft", "orpo"):
        scores = metrics[stage]
        for key in ("bleu1", "bleu4", "meteor", "rouge_l", "cider", "bertscore_f1", "finding_f1"):
            assert 0 <= scores[key] <= (10 if key == "cider" else 1), (stage, key)
        assert scores["bleu1"] >= scores["bleu4"] and scores["bertscore_f1"] > 0.2
        assert 0 <= scores["hallucinated_per_report"] < 20 and 0 < scores["test_nll"] < 15
    assert metrics["sizes"] == {"train_split": metrics["sizes"]["train_split"], "sft": 16, "orpo_pairs": 8, "test": 4}
    assert sum(metrics["training"]["rejected_kinds"].values()) == 8
    assert len(metrics["training"]["sft_loss"]) == 4 and len(metrics["training"]["orpo_loss"]) == 2
    assert set(metrics["continual"]) == {"task1_after", "task2", "task2_loss"}
    assert set(metrics["sweep"]) == {"8", "64"} and metrics["sweep"]["64"]["trainable"] == 8 * metrics["sweep"]["8"]["trainable"]
    assert metrics["parameters"]["64"]["trainable"] == 19_537_920 and metrics["stage1"]["simulated"] is True
    assert len(metrics["examples"]) == 4 and all(e["orpo"] is not None for e in metrics["examples"])

    doc = json.loads((folder / "results.json").read_text())
    paper = {(r["metric"], r["setting"]): r for r in doc["rows"]}
    orpo = "IU X-ray FINDINGS, SFT + ORPO"
    assert paper[("BLEU (mean of BLEU-1..4)", orpo)]["paper"] == 0.375
    assert paper[("METEOR", orpo)]["paper"] == 0.495 and paper[("ROUGE-L", orpo)]["paper"] == 0.483
    assert paper[("finding-level F1 (paper: F1-RadGraph, not like for like)", orpo)]["paper"] == 0.488
    assert paper[("BLEU-4", orpo)]["paper"] is None and paper[("METEOR", "IU X-ray FINDINGS, SFT")]["paper"] is None
    assert sum(r["paper"] is not None for r in doc["rows"]) == 4 + 3 * 3  # 4 IU-Xray averages, 3 parameter rows
    rank64 = [r for r in doc["rows"] if r["setting"].startswith("stage 2, LoRA rank 64")]
    assert {r["metric"]: r["paper"] for r in rank64} == {"total parameters (M)": 3800, "trainable parameters (M)": 100,
                                                          "trainable % of total": 2.63}
    assert abs({r["metric"]: r["ours"] for r in rank64}["trainable % of total"] - 14.52) < 0.01
    stage1 = [r for r in doc["rows"] if r["setting"].startswith("stage 1 (")]
    assert [r["paper"] for r in stage1] == [321, 18, 5.61] and all(r["ours"] is None for r in stage1)
    assert len(doc["claims"]) == 3 and {c["held"] for c in doc["claims"]} <= {True, False, None}
    few = min(metrics[s]["correct_findings"] for s in ("sft", "orpo")) < MIN_CORRECT_FINDINGS
    for claim in doc["claims"][:2]:  # too few correct findings: not testable
        assert (claim["held"] is None) == few
    assert doc["claims"][2]["held"] is not None  # the continual rule falls back on ROUGE-L, so it always decides
    kinds = {d["name"]: d["kind"] for d in doc["data"]}
    assert kinds == {"stage-1 findings (simulated)": "synthetic", "IU X-ray reports": "real",
                     "SmolLM2-135M-Instruct": "substitute", "ORPO rejected reports": "synthetic"}
    assert doc["differences"] and len(doc["figures"]) == 2
    for figure in doc["figures"]:
        assert (folder / figure).read_bytes()[:4] == b"\x89PNG"


def test_orpo_loss_matches_a_hand_computation_of_its_formula():
    chosen, rejected, nll, lam = [-0.5, -1.0], [-1.2, -0.9], 0.7, 0.25

    def log_odds(mean_logp):
        p = math.exp(mean_logp)
        return math.log(p / (1 - p))
    ratios = [log_odds(c) - log_odds(r) for c, r in zip(chosen, rejected)]
    expected = nll + lam * sum(-math.log(1 / (1 + math.exp(-z))) for z in ratios) / 2
    loss, ratio = orpo_loss(torch.tensor(chosen), torch.tensor(rejected), torch.tensor(nll), lam)
    assert loss.item() == pytest.approx(expected, rel=1e-5) and ratio.item() == pytest.approx(sum(ratios) / 2, rel=1e-5)
    # lambda 0 leaves the SFT loss; a chosen response far likelier than the rejected one costs almost nothing more
    assert orpo_loss(torch.tensor(chosen), torch.tensor(rejected), torch.tensor(nll), 0.0)[0].item() == pytest.approx(nll)
    assert orpo_loss(torch.tensor([-0.01]), torch.tensor([-5.0]), torch.tensor(0.0), 1.0)[0].item() < 0.01


def test_token_logps_scores_only_the_response_tokens():
    logits = torch.randn(2, 5, 7, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([[-100, -100, 3, 4, 1], [-100, 2, 5, -100, -100]])
    total, count = token_logps(logits, labels)
    logp = logits.log_softmax(-1)
    assert count.tolist() == [3, 2]
    assert total[0].item() == pytest.approx((logp[0, 1, 3] + logp[0, 2, 4] + logp[0, 3, 1]).item(), rel=1e-5)
    assert total[1].item() == pytest.approx((logp[1, 0, 2] + logp[1, 1, 5]).item(), rel=1e-5)


def test_the_finding_extractor_handles_negation_and_synonyms():
    text = ("Heart size is mildly enlarged. No pneumothorax or pleural effusion. Lungs are hyperinflated but clear "
            "of focal airspace disease. Stable calcified granuloma in the right upper lobe. Degenerative changes of "
            "the spine.")
    positive, negated = mentions(text)
    assert positive == {"cardiomegaly", "emphysema", "granuloma", "calcification", "degenerative spine"}
    assert negated == {"pneumothorax", "pleural effusion", "opacity"}
    assert extract("The lungs are clear, without evidence of infiltrate. There is a small right effusion.") == \
        {"pleural effusion"}
    assert extract("The heart is normal in size. The lungs are clear.") == set()


def test_finding_scores_count_hallucinated_and_omitted_findings():
    refs = ["Cardiomegaly. No effusion.", "The lungs are clear."]
    cands = ["Cardiomegaly with a small pleural effusion.", "Right lower lobe atelectasis and a nodule."]
    scores = finding_scores(refs, cands)
    # TP 1 (cardiomegaly); FP 3 (effusion, atelectasis, nodule); FN 0
    assert (scores["correct_findings"], scores["false_findings"], scores["missed_findings"]) == (1, 3, 0)
    assert scores["finding_f1"] == pytest.approx(2 / 5) and scores["finding_precision"] == pytest.approx(0.25)
    assert scores["hallucinated_per_report"] == 1.5 and scores["omitted_per_report"] == 0
    with pytest.raises(ValueError, match="as many candidates"):
        finding_scores(refs, cands[:1])


def _scores(correct: int, false: int, missed: int, rouge_l: float) -> dict:
    """A model's scores from ``finding_scores`` on reports built to give these counts."""
    refs = ["Cardiomegaly."] * (correct + missed) + ["The lungs are clear."] * false
    cands = ["Cardiomegaly."] * correct + ["The lungs are clear."] * missed + ["A nodule."] * false
    return {**finding_scores(refs, cands), "rouge_l": rouge_l, "bleu4": rouge_l / 2}


def _metrics(sft: dict, orpo: dict, after: dict, sft_steps: int = 40, orpo_steps: int = 12) -> dict:
    return {"sft": sft, "orpo": orpo, "continual": {"task1_after": after},
            "training": {"sft_loss": [1.0] * sft_steps, "orpo_loss": [1.0] * orpo_steps},
            "sizes": {"test": 24, "orpo_pairs": 4 * orpo_steps}}


def test_finding_claims_are_not_testable_when_the_models_affirm_too_few_correct_findings():
    # the collapse the cpu profile showed: generic normal reports, 1 hit for SFT and none for ORPO
    collapsed = _metrics(_scores(1, 4, 45, 0.26), _scores(0, 1, 46, 0.30), _scores(0, 0, 46, 0.29))
    assert collapsed["sft"]["finding_precision"] == pytest.approx(0.2)  # 1 correct, 4 false
    hallucination, f1, continual = claims(collapsed)
    assert hallucination.held is None and f1.held is None
    # the continual rule falls back on ROUGE-L: kept here (0.29 >= 0.9 * 0.30) although the F1 fell to 0,
    # lost when ROUGE-L drops
    assert continual.held is True
    forgot = _metrics(_scores(1, 4, 45, 0.26), _scores(0, 1, 46, 0.30), _scores(0, 0, 46, 0.1))
    assert claims(forgot)[2].held is False


def test_finding_claims_are_decided_when_both_models_affirm_enough_correct_findings():
    n = MIN_CORRECT_FINDINGS
    better = _metrics(_scores(n, 6, 20, 0.3), _scores(n + 6, 1, 14, 0.3), _scores(n + 6, 1, 14, 0.3),
                      orpo_steps=40)
    hallucination, f1, continual = claims(better)
    assert (hallucination.held, f1.held, continual.held) == (True, True, True)
    worse = _metrics(better["orpo"], better["sft"], better["sft"], orpo_steps=40)
    assert [c.held for c in claims(worse)[:2]] == [False, False]
    # with enough findings before, the F1 half counts: ROUGE-L kept but the findings forgotten
    forgot = _metrics(better["sft"], better["orpo"], _scores(1, 0, 24, 0.3))
    assert claims(forgot)[2].held is False


def test_orpo_counts_as_short_below_half_of_the_sft_steps():
    sft, orpo = _scores(5, 1, 5, 0.3), _scores(5, 1, 5, 0.3)
    assert orpo_is_short(_metrics(sft, orpo, orpo, sft_steps=40, orpo_steps=12))  # the cpu profile: 12 after 40
    assert not orpo_is_short(_metrics(sft, orpo, orpo, sft_steps=40, orpo_steps=20))
    assert not orpo_is_short(_metrics(sft, orpo, orpo, sft_steps=0, orpo_steps=0))


def test_rejected_reports_add_or_drop_a_finding():
    donors = donor_sentences(["There is a large right pleural effusion. No pneumothorax.", "Mild cardiomegaly."])
    assert [s for s, _ in donors] == ["Mild cardiomegaly.", "There is a large right pleural effusion."]
    chosen = "Mild cardiomegaly. The lungs are clear. No pneumothorax."
    rng = np.random.default_rng(0)
    added, kind = rejected_report(chosen, donors, ("add",), rng)
    assert kind == "add" and extract(added) == {"cardiomegaly", "pleural effusion"}
    dropped, kind = rejected_report(chosen, donors, ("drop",), rng)
    assert kind == "drop" and dropped == "The lungs are clear. No pneumothorax."
    normal, kind = rejected_report("The lungs are clear.", donors, ("drop",), rng)  # nothing to drop: add instead
    assert kind == "add" and extract(normal)


def test_simulated_stage1_misses_and_adds_tags_at_the_configured_rates():
    rng = np.random.default_rng(0)
    tags = ("Cardiomegaly/mild", "Opacity/lung/base/left")
    pool = ["Nodule/lung/right"] * 3 + ["Cardiomegaly"]
    assert noisy_tags(tags, pool, 0.0, 0.0, rng) == tags
    assert noisy_tags(tags, pool, 0.999, 0.0, rng) == ("normal",)
    assert noisy_tags(("normal",), pool, 0.0, 0.999, rng) in {("Nodule/lung/right",), ("Cardiomegaly",)}
    assert noisy_tags(tags, pool, 0.0, 0.999, rng) == (*tags, "Nodule/lung/right")  # never a finding it has
    many = [noisy_tags(tags, pool, 0.3, 0.0, rng) for _ in range(2000)]
    errors = tag_errors([tags] * 2000, many)
    assert errors["missed_per_report"] == pytest.approx(0.6, abs=0.06) and errors["added_per_report"] == 0
    assert tag_text(tags) == "cardiomegaly (mild); opacity (lung, base, left)" and tag_text(("normal",)) == "normal"


def test_stage1_errors_and_rejected_reports_come_from_named_streams(tmp_path):
    from types import SimpleNamespace

    reports = [SimpleNamespace(id=f"CXR{i}", mesh=("Cardiomegaly/mild", "Nodule/lung/right") if i % 2 else ("normal",))
               for i in range(40)]
    config = Config(stage1_miss_rate=0.5, stage1_false_rate=0.5, orpo_reports=4)
    runs = cpu_run(tmp_path), cpu_run(tmp_path), cpu_run(tmp_path, seed=1)
    tags = [model.stage1(config, run, reports[:20], reports[20:])[1] for run in runs]
    assert tags[0] == tags[1] and tags[0] != tags[2] and len(tags[0]) == 20
    texts = ["Mild cardiomegaly. The lungs are clear. No pneumothorax.", "The lungs are clear.",
             "There is a large right pleural effusion. No pneumothorax.", "Calcified granuloma in the left apex."]
    train = [Example(f"CXR{i}", "normal", text, "findings") for i, text in enumerate(texts)]
    pairs = [model.preference_pairs(config, run, train) for run in runs[:2]]
    assert pairs[0] == pairs[1] and len(pairs[0][1]) == 4 and set(pairs[0][2]) <= {"add", "drop"}


def test_config_validation_names_the_field():
    with pytest.raises(ValueError, match="stage1_miss_rate"):
        Config(stage1_miss_rate=1.5)
    with pytest.raises(ValueError, match="rejected"):
        Config(rejected=("swap",))
    with pytest.raises(ValueError, match="sweep_ranks"):
        Config(sweep_ranks=(0,))
    with pytest.raises(ValueError, match="images"):
        Config(images="/no/such/folder")
    with pytest.raises(ConfigError, match="train_reports"):
        apply_overrides(PRESETS["smoke"], ["train_reports=-1"])
    assert apply_overrides(PRESETS["cpu"], ["sweep_ranks=8,16", "continual=false"]).sweep_ranks == (8, 16)


@needs_data("smollm2")
def test_encode_puts_labels_on_the_response_and_its_end_token_only():
    from reproductions.common.smollm import converted
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(converted())
    examples = [Example("CXR1", "cardiomegaly (mild)", "Mild cardiomegaly.", "findings"),
                Example("CXR2", "normal", "The lungs are clear. No effusion.", "impression")]
    batch = encode(tokenizer, examples)
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    for row, example in zip(range(2), examples):
        labels = batch["labels"][row][batch["labels"][row] != -100].tolist()
        assert tokenizer.decode(labels[:-1]) == example.target and labels[-1] == end
    mask = batch["attention_mask"]
    assert mask.sum(1).min() < mask.shape[1]  # one row is padded, and on the right
    assert all(m[:int(m.sum())].all() and not m[int(m.sum()):].any() for m in mask)
    assert "IMPRESSION" in tokenizer.decode(batch["input_ids"][1]) and "<|im_start|>assistant" in tokenizer.decode(
        batch["input_ids"][0])


REPORT_XML = """<?xml version="1.0" encoding="utf-8"?>
<eCitation><uId id="CXR{n}"/><MedlineCitation><Article><Abstract>
<AbstractText Label="FINDINGS">{findings}</AbstractText>
<AbstractText Label="IMPRESSION">No acute disease.</AbstractText>
</Abstract></Article></MedlineCitation>
<MeSH><major>{mesh}</major></MeSH>
<parentImage id="CXR{n}_IM-0001-1001"><figureId>F1</figureId></parentImage>
</eCitation>"""


def test_the_real_stage1_image_model_trains_and_predicts_tags(tmp_path):
    reports, images = tmp_path / "ecgen-radiology", tmp_path / "png"
    reports.mkdir()
    images.mkdir()
    rng = np.random.default_rng(0)
    for n in range(1, 9):
        mesh = "Cardiomegaly/mild" if n % 2 else "normal"
        (reports / f"{n}.xml").write_text(REPORT_XML.format(n=n, findings="Heart.", mesh=mesh))
        Image.fromarray(rng.integers(0, 255, (40, 40), dtype=np.uint8)).save(images / f"CXR{n}_IM-0001-1001.png")
    train, test = [f"CXR{n}" for n in range(1, 7)], ["CXR7", "CXR8", "CXR99"]
    predicted, counts = image_stage1(train, test, images, reports, size=32, epochs=1, n_tags=5,
                                     run=cpu_run(tmp_path))
    assert set(predicted) == {"CXR7", "CXR8"}  # CXR99 has no image
    assert all(tags in {("normal",), ("Cardiomegaly/mild",)} for tags in predicted.values())
    assert counts["tags"] == 1 and counts["total"] == counts["trainable"] > 1e6

"""paper9 (LoRA + ORPO report generation): the smoke profile end to end through the CLI, and its pieces:
ORPO's loss against a hand computation of its formula, the preference accuracy and log odds ratio on
pairs whose answer is known, the response log-likelihoods, the finding extractor, the rejected reports
and preference pairs (abnormal, short), the simulated stage 1, the named streams they draw from, the
real stage-1 image model on files the test writes, the claims' rules and gates, and the config's
validation."""

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
from reproductions.paper9_lora_orpo_reports.model import (Example, donor_sentences, encode, log_odds,
                                                          mean_log_odds_ratio, orpo_loss, preference_accuracy,
                                                          preference_pairs, preference_scores, rejected_report,
                                                          token_logps)
from reproductions.paper9_lora_orpo_reports.report import MIN_CORRECT_FINDINGS, claims
from reproductions.paper9_lora_orpo_reports.stage1 import image_stage1, noisy_tags, tag_errors, tag_text
from reproductions.run import Run
from reproductions.verdict import HELD, INCONCLUSIVE, NOT_HELD, NOT_TESTABLE
from tests.conftest import needs_data, smoke_run


def cpu_run(tmp_path, seed: int = 0) -> Run:
    return Run("paper9", "smoke", seed, torch.device("cpu"), tmp_path, {})


@pytest.mark.slow
@needs_data("iu-xray-reports", "smollm2", "minilm")
def test_paper9_smoke_run_writes_a_complete_run_folder(tmp_path):
    folder, info = smoke_run("paper9", tmp_path, seed=3)
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["seeds"] == 1 and len(metrics["per_seed"]) == 1
    seed = metrics["per_seed"][0]
    for arm in ("orpo", "control"):
        scores = seed[arm]
        for key in ("bleu1", "bleu4", "meteor", "rouge_l", "cider", "bertscore_f1", "finding_f1"):
            assert 0 <= scores[key] <= (10 if key == "cider" else 1), (arm, key)
        assert scores["bleu1"] >= scores["bleu4"] and 0 <= scores["hallucinated_per_report"] < 20
        assert 0 < scores["test_nll"] < 15
        pref = seed["preference"][arm]
        assert 0 <= pref["accuracy"] <= 1 and math.isfinite(pref["log_odds_ratio"])
    base = metrics["base_preference"]
    assert 0 <= base["accuracy"] <= 1 and base["chosen_mean_logp"] < 0 and base["rejected_mean_logp"] < 0
    assert metrics["sizes"] == {**metrics["sizes"], "sft": 8, "orpo_pairs": 4, "heldout_pairs": 4, "generated": 2}
    assert [sum(metrics["rejected_kinds"][part].values()) for part in ("orpo", "heldout")] == [4, 4]
    # SFT: 8 reports at batch 2; ORPO and the control: exactly as many steps on the 4 pairs
    assert len(seed["sft_loss"]) == 4 and len(seed["orpo_loss"]) == len(seed["control_loss"]) == 2
    assert set(seed["continual"]) == {"task1_after", "task2"}
    assert set(metrics["sweep"]) == {"8"} and metrics["parameters"]["64"]["trainable"] == 19_537_920
    assert metrics["stage1"]["simulated"] is True and len(seed["examples"]) == 2

    doc = json.loads((folder / "results.json").read_text())
    orpo = [r for r in doc["rows"] if r["setting"].startswith("IU X-ray FINDINGS, SFT + ORPO")]
    assert {r["metric"]: r["paper"] for r in orpo if r["paper"] is not None} == {
        "BLEU (mean of BLEU-1..4)": 0.375, "METEOR": 0.495, "ROUGE-L": 0.483,
        "finding-level F1 (paper: F1-RadGraph, not like for like)": 0.488}
    assert sum(r["paper"] is not None for r in doc["rows"]) == 4 + 3 * 3  # 4 IU-Xray averages, 3 parameter rows
    assert sum(r["metric"].startswith("preference accuracy") for r in doc["rows"]) == 3  # base, ORPO, control
    rank64 = [r for r in doc["rows"] if r["setting"].startswith("stage 2, LoRA rank 64")]
    assert {r["metric"]: r["paper"] for r in rank64} == {"total parameters (M)": 3800, "trainable parameters (M)": 100,
                                                          "trainable % of total": 2.63}
    assert abs({r["metric"]: r["ours"] for r in rank64}["trainable % of total"] - 14.52) < 0.01
    stage1 = [r for r in doc["rows"] if r["setting"].startswith("stage 1 (")]
    assert [r["paper"] for r in stage1] == [321, 18, 5.61] and all(r["ours"] is None for r in stage1)
    outcomes = [c["outcome"] for c in doc["claims"]]
    # two preference claims (one seed: inconclusive), two finding claims, the paper's continual (not testable),
    # our forgetting test (an addition, inconclusive on one seed)
    assert len(outcomes) == 6 and outcomes[:2] == [INCONCLUSIVE, INCONCLUSIVE] and outcomes[4] == NOT_TESTABLE
    assert set(outcomes[2:4]) <= {INCONCLUSIVE, NOT_TESTABLE} and outcomes[5] == INCONCLUSIVE
    assert [c["addition"] for c in doc["claims"]] == [False] * 5 + [True]
    kinds = {d["name"]: d["kind"] for d in doc["data"]}
    assert kinds == {"stage-1 findings (simulated)": "synthetic", "IU X-ray reports": "real",
                     "SmolLM2-135M-Instruct": "substitute", "rejected (hallucinated) reports": "synthetic"}
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


def test_preference_accuracy_and_log_odds_ratio_on_pairs_whose_answer_is_known():
    chosen, rejected = [-0.5, -1.0, -2.0, -0.7], [-1.0, -0.5, -3.0, -0.7]
    # chosen likelier in pairs 1 and 3; pair 2 the other way; pair 4 a tie (a miss)
    assert preference_accuracy(chosen, rejected) == 0.5
    assert preference_accuracy([-0.1], [-0.2]) == 1.0 and preference_accuracy([-0.3], [-0.2]) == 0.0

    def odds(mean_logp):  # log(p / (1 - p)) by hand
        p = math.exp(mean_logp)
        return math.log(p / (1 - p))
    expected = sum(odds(c) - odds(r) for c, r in zip(chosen, rejected)) / 4
    assert mean_log_odds_ratio(chosen, rejected) == pytest.approx(expected, rel=1e-9)
    # p = 1/2 has log odds 0; p = e^-1 has log odds -1 - log(1 - e^-1)
    assert mean_log_odds_ratio([math.log(0.5)], [-1.0]) == pytest.approx(1 + math.log(1 - math.exp(-1)))
    assert log_odds(torch.tensor([math.log(0.5)])).item() == pytest.approx(0.0, abs=1e-7)
    # swapping chosen and rejected flips the sign; identical responses give 0
    assert mean_log_odds_ratio(rejected, chosen) == pytest.approx(-expected)
    assert mean_log_odds_ratio(chosen, chosen) == 0.0
    # the same ratio as ORPO's loss reports
    assert orpo_loss(torch.tensor(chosen), torch.tensor(rejected), torch.tensor(0.0), 0.1)[1].item() == \
        pytest.approx(expected, rel=1e-5)
    scores = preference_scores(chosen, rejected, ["add", "drop", "add", "drop"])
    assert scores["accuracy"] == 0.5 and scores["add"] == {"accuracy": 1.0, "pairs": 2,
                                                           "log_odds_ratio": pytest.approx(
                                                               (odds(-0.5) - odds(-1) + odds(-2) - odds(-3)) / 2)}
    assert scores["drop"]["accuracy"] == 0.0 and scores["chosen_mean_logp"] == pytest.approx(-1.05)


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


def _pref(accuracy: float, ratio: float) -> dict:
    return {"accuracy": accuracy, "log_odds_ratio": ratio, "add": {"accuracy": accuracy, "log_odds_ratio": ratio},
            "drop": {"accuracy": accuracy, "log_odds_ratio": ratio}}


def _metrics(orpo_pref: list[tuple[float, float]], control_pref: list[tuple[float, float]], base=(0.5, 0.0),
             orpo=None, control=None, sft_loss=None) -> dict:
    """Metrics of len(orpo_pref) seeds: preference (accuracy, log odds ratio) per seed and arm; generated-report
    scores ``orpo`` and ``control`` (one dict per seed) when given."""
    sft_loss = sft_loss or [1.0] * 40
    per_seed = []
    for k, (o, c) in enumerate(zip(orpo_pref, control_pref)):
        seed = {"sft_loss": sft_loss, "orpo_loss": [1.0] * 12, "control_loss": [1.0] * 12,
                "preference": {"orpo": _pref(*o), "control": _pref(*c)}}
        if orpo:
            seed |= {"orpo": orpo[k], "control": control[k]}
        per_seed.append(seed)
    mean = {"preference": {arm: _pref(*(float(np.mean([s["preference"][arm][key] for s in per_seed]))
                                        for key in ("accuracy", "log_odds_ratio"))) for arm in ("orpo", "control")}}
    if orpo:
        mean |= {arm: {key: float(np.mean([s[arm][key] for s in per_seed])) for key in per_seed[0][arm]}
                 for arm in ("orpo", "control")}
    return {"seeds": len(per_seed), "per_seed": per_seed, "mean": mean, "base_preference": _pref(*base),
            "sizes": {"sft": 80, "orpo_pairs": 48, "heldout_pairs": 48, "generated": 24},
            "rejected_kinds": {"heldout": {"add": 24, "drop": 24}}}


def test_preference_claims_hold_fail_or_stay_inconclusive_by_the_paired_interval():
    config = Config(generate=False)  # no generated reports in these metrics
    held = _metrics([(0.80, 0.60), (0.82, 0.55), (0.78, 0.65)], [(0.60, 0.20), (0.61, 0.25), (0.59, 0.18)])
    accuracy, ratio = claims(held, config)[:2]
    assert (accuracy.outcome, ratio.outcome) == (HELD, HELD)
    assert accuracy.estimate.mean == pytest.approx(0.2) and accuracy.estimate.n == 3
    assert ratio.estimate.mean == pytest.approx(0.39) and ratio.estimate.low > 0
    # ORPO no better than as many SFT steps: the interval lies below the tolerances
    tied = _metrics([(0.700, 0.300), (0.705, 0.302), (0.698, 0.299)], [(0.700, 0.300), (0.700, 0.300), (0.700, 0.300)])
    assert [c.outcome for c in claims(tied, config)[:2]] == [NOT_HELD, NOT_HELD]
    # a spread that straddles the line
    noisy = _metrics([(0.9, 0.9), (0.5, 0.0), (0.7, 0.6)], [(0.6, 0.3), (0.7, 0.5), (0.7, 0.3)])
    assert [c.outcome for c in claims(noisy, config)[:2]] == [INCONCLUSIVE, INCONCLUSIVE]
    # fewer than 3 seeds decide nothing
    two = _metrics([(0.80, 0.60), (0.82, 0.55)], [(0.60, 0.20), (0.61, 0.25)])
    assert [c.outcome for c in claims(two, config)[:2]] == [INCONCLUSIVE, INCONCLUSIVE]


def test_preference_claims_are_gated_on_sft_convergence_and_on_beating_the_base_model():
    config = Config(generate=False)  # no generated reports in these metrics
    orpo, control = [(0.80, 0.60), (0.82, 0.55), (0.78, 0.65)], [(0.60, 0.20), (0.61, 0.25), (0.59, 0.18)]
    falling = list(np.linspace(3.0, 1.0, 40))  # still falling by a fifth over its last tenth
    gated = claims(_metrics(orpo, control, sft_loss=falling), config)[:2]
    assert [c.outcome for c in gated] == [INCONCLUSIVE, INCONCLUSIVE]
    assert not gated[0].gates[0].passed and gated[0].gates[1].passed
    # a base model already as good on both scores: ORPO learnt nothing the pairs can read
    worse = claims(_metrics(orpo, control, base=(0.9, 0.9)), config)[:2]
    assert [c.outcome for c in worse] == [INCONCLUSIVE, INCONCLUSIVE] and not worse[0].gates[1].passed
    # beating the base on one of the two scores suffices
    assert claims(_metrics(orpo, control, base=(0.9, 0.1)), config)[0].outcome == HELD


def test_finding_claims_are_not_testable_when_the_models_affirm_too_few_correct_findings():
    config = Config()
    pref = [(0.8, 0.6)] * 3, [(0.6, 0.2)] * 3
    # the collapse the first cpu run showed: generic normal reports, 1 hit for one model and none for the other
    collapsed = _metrics(*pref, orpo=[_scores(0, 1, 46, 0.30)] * 3, control=[_scores(1, 4, 45, 0.26)] * 3)
    hallucination, f1 = claims(collapsed, config)[2:4]
    assert hallucination.outcome == f1.outcome == NOT_TESTABLE
    # no generated reports at all (the cpu profile)
    assert {c.outcome for c in claims(_metrics(*pref), Config(generate=False))[2:4]} == {NOT_TESTABLE}


def test_finding_claims_are_decided_against_the_step_matched_control_when_findings_suffice():
    config = Config()
    n = MIN_CORRECT_FINDINGS
    pref = [(0.8, 0.6)] * 3, [(0.6, 0.2)] * 3
    orpo = [_scores(n + 6, 1, 14, 0.3), _scores(n + 5, 1, 15, 0.3), _scores(n + 6, 2, 14, 0.3)]
    control = [_scores(n, 6, 20, 0.3), _scores(n, 7, 20, 0.3), _scores(n + 1, 6, 19, 0.3)]
    hallucination, f1 = claims(_metrics(*pref, orpo=orpo, control=control), config)[2:4]
    assert (hallucination.outcome, f1.outcome) == (HELD, HELD)
    assert hallucination.estimate.mean > 0 and f1.estimate.mean > 0
    worse = claims(_metrics(*pref, orpo=control, control=orpo), config)[2:4]
    assert [c.outcome for c in worse] == [NOT_HELD, NOT_HELD]


def test_the_papers_continual_claim_is_not_testable_and_forgetting_is_only_our_addition():
    out = claims(_metrics([(0.8, 0.6)] * 3, [(0.6, 0.2)] * 3), Config(generate=False))
    assert len(out) == 5 and out[4].outcome == NOT_TESTABLE and not out[4].addition
    assert not any(c.addition for c in out)


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


def test_preference_pairs_keep_abnormal_reports_with_short_responses(tmp_path):
    texts = ["Mild cardiomegaly. The lungs are clear. No pneumothorax.", "The lungs are clear.",
             "There is a large right pleural effusion. No pneumothorax.", "Calcified granuloma in the left apex.",
             "Heart size normal. No effusion."]
    train = [Example(f"CXR{i}", "normal", text, "findings") for i, text in enumerate(texts)]
    config = Config()
    pairs = preference_pairs(train, texts, 0, config, np.random.default_rng(0))
    assert [e.id for e in pairs.chosen] == ["CXR0", "CXR2", "CXR3"]  # the normal reports are left out
    assert len(pairs.rejected) == len(pairs.kinds) == 3 and all(r != e.target for r, e in zip(pairs.rejected,
                                                                                             pairs.chosen))
    assert len(preference_pairs(train, texts, 2, config, np.random.default_rng(0))) == 2

    class Words:  # a tokenizer of one token per word
        def __call__(self, text, add_special_tokens=False):
            from types import SimpleNamespace
            return SimpleNamespace(input_ids=text.split())
    short = preference_pairs(train, texts, 0, Config(pair_tokens=8), np.random.default_rng(0), Words())
    assert all(len(t.split()) <= 8 for e, r in zip(short.chosen, short.rejected) for t in (e.target, r))
    assert {e.id for e in short.chosen} <= {"CXR0", "CXR3"}  # CXR2 has 9 words


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
    pairs = [preference_pairs(train, texts, 4, config, run.rng("rejected-reports")) for run in runs[:2]]
    assert pairs[0] == pairs[1] and len(pairs[0]) == 3 and set(pairs[0].kinds) <= {"add", "drop"}


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
    with pytest.raises(ValueError, match="pair_tokens"):
        Config(max_response_tokens=32, pair_tokens=64)
    with pytest.raises(ValueError, match="continual"):
        Config(generate=False, continual=True)
    with pytest.raises(ValueError, match="seeds"):
        Config(seeds=0)
    assert apply_overrides(PRESETS["cpu"], ["sweep_ranks=8,16", "continual=false"]).sweep_ranks == (8, 16)
    cpu = PRESETS["cpu"]
    assert cpu.seeds >= 3 and cpu.pair_tokens == 64 and cpu.max_response_tokens >= cpu.pair_tokens


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

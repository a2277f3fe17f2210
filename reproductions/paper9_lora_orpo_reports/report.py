"""Paper 9's numbers with their source, our rows beside them, the verdicts on its claims, the data
notes and the figures."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

import numpy as np

from reproductions.common import smollm
from reproductions.common.plotting import plt, save
from reproductions.metrics.text import BERTSCORE_NAME
from reproductions.outcome import Claim, DataNote, Reported, Row
from reproductions.run import Run
from reproductions.verdict import Gate, Rule, all_converged, interval, paired

if TYPE_CHECKING:
    from . import Config

# ---- the paper's numbers ------------------------------------------------------------------------

PAPER = "reported-results.md, Paper 9"
PAPER_IU = {"bleu": 0.375, "meteor": 0.495, "rouge_l": 0.483, "f1_radgraph": 0.488}  # IU-Xray averages
PAPER_PARAMS = {  # (total M, trainable M, percent) from the paper's parameter table
    "stage 2, LoRA rank 32": (3800.0, 50.0, 1.32), "stage 2, LoRA rank 64": (3800.0, 100.0, 2.63),
    "stage 1": (321.0, 18.0, 5.61)}
CLAIM_SOURCE = "the review's summary of paper 9"


# ---- rows ---------------------------------------------------------------------------------------

TEXT_METRICS = [("bleu1", "BLEU-1"), ("bleu2", "BLEU-2"), ("bleu3", "BLEU-3"), ("bleu4", "BLEU-4"),
                ("bleu_mean", "BLEU (mean of BLEU-1..4)"), ("meteor", "METEOR"), ("rouge_l", "ROUGE-L"),
                ("cider", "CIDEr"), ("bertscore_f1", f"{BERTSCORE_NAME} F1"),
                ("finding_f1", "finding-level F1 (paper: F1-RadGraph, not like for like)"),
                ("finding_precision", "finding-level precision"), ("finding_recall", "finding-level recall"),
                ("hallucinated_per_report", "hallucinated findings per report"),
                ("omitted_per_report", "omitted findings per report"), ("test_nll", "test NLL per token")]
LOWER_IS_BETTER = {"hallucinated_per_report", "omitted_per_report", "test_nll"}
PAPER_KEY = {"bleu_mean": "bleu", "meteor": "meteor", "rouge_l": "rouge_l", "finding_f1": "f1_radgraph"}


ARMS = (("orpo", "IU X-ray FINDINGS, SFT + ORPO"), ("control", "IU X-ray FINDINGS, SFT + as many SFT steps (control)"))
PREFERENCE_ARMS = (("base", "untrained (base) model"), ("orpo", "SFT + ORPO"),
                   ("control", "SFT + as many SFT steps (control)"))


def preference_of(metrics: dict, arm: str) -> dict:
    """One model's held-out preference scores: the base model's, or the mean over the seeds."""
    return metrics["base_preference"] if arm == "base" else metrics["mean"]["preference"][arm]


def rows(metrics: dict) -> list[Row]:
    missing = Reported.missing(f"{PAPER}: not reported")
    seeds = metrics["seeds"]
    out = []
    for arm, name in PREFERENCE_ARMS:
        scores = preference_of(metrics, arm)
        setting = (f"held-out hallucination pairs ({metrics['sizes']['heldout_pairs']}), {name}"
                   + ("" if arm == "base" else f", mean of {seeds} seeds"))
        out.append(Row("preference accuracy (chosen likelier, length-normalised)", setting, scores["accuracy"],
                       missing))
        out.append(Row("mean log odds ratio, chosen over rejected", setting, scores["log_odds_ratio"], missing))
    for arm, setting in ARMS:
        if arm not in metrics["mean"]:
            continue
        for key, name in TEXT_METRICS:
            if key not in metrics["mean"][arm]:
                continue
            paper = missing
            if arm == "orpo" and key in PAPER_KEY:
                paper = Reported(PAPER_IU[PAPER_KEY[key]], f"{PAPER}: IU-Xray average "
                                 f"{'F1-RadGraph' if key == 'finding_f1' else name.split(' (')[0]}")
            out.append(Row(name, f"{setting}, {metrics['sizes']['generated']} abnormal test reports, mean of {seeds} "
                           f"seeds", metrics["mean"][arm][key], paper, key not in LOWER_IS_BETTER,
                           "paper: Phi-3-mini-4k with its own stage 1 on the whole test set; ours: SmolLM2-135M, "
                           "simulated stage 1, abnormal reports only" if paper is not missing else ""))
    if "continual" in metrics["mean"]:
        for key in ("meteor", "rouge_l", "bertscore_f1", "finding_f1", "test_nll"):
            name = dict(TEXT_METRICS)[key]
            for part, setting in (("task1_after", "our addition: task 1 (FINDINGS) after learning task 2"),
                                  ("task2", "our addition: task 2 (IMPRESSION)")):
                out.append(Row(name, setting, metrics["mean"]["continual"][part][key], missing,
                               key not in LOWER_IS_BETTER))
    for rank, scores in metrics["sweep"].items():
        for key in ("test_nll", "finding_f1", "rouge_l"):
            if key in scores:
                out.append(Row(dict(TEXT_METRICS)[key], f"rank sweep: SFT only, LoRA rank {rank}", scores[key],
                               missing, key not in LOWER_IS_BETTER))
    for rank, counts in metrics["parameters"].items():
        paper = PAPER_PARAMS.get(f"stage 2, LoRA rank {rank}")
        setting = f"stage 2, LoRA rank {rank} (ours: {smollm.NAME}; paper: Phi-3-mini-4k)"
        for i, (key, name) in enumerate((("total", "total parameters (M)"), ("trainable", "trainable parameters (M)"),
                                         ("percent", "trainable % of total"))):
            value = counts[key] if key == "percent" else counts[key] / 1e6
            out.append(Row(name, setting, value, Reported(paper[i], f"{PAPER}: parameter table") if paper else missing,
                           None))
    ours = metrics["stage1"]
    for i, (key, name) in enumerate((("total", "total parameters (M)"), ("trainable", "trainable parameters (M)"),
                                     ("percent", "trainable % of total"))):
        value = None
        if "total" in ours:
            value = 100.0 if key == "percent" else ours[key] / 1e6
        out.append(Row(name, "stage 1 (ours: simulated, no model, unless images are given; paper: PKATransNet)",
                       value, Reported(PAPER_PARAMS["stage 1"][i], f"{PAPER}: parameter table"), None))
    for key, name in (("tag_f1", "stage-1 tag F1"), ("missed_per_report", "stage-1 missed tags per report"),
                      ("added_per_report", "stage-1 false tags per report")):
        out.append(Row(name, "stage 1 output on the test reports", ours[key], missing, key == "tag_f1"))
    return out


# ---- claims -------------------------------------------------------------------------------------

# A finding-level comparison needs findings to compare. Below this many correct affirmed findings (over
# the generated test reports) a model's finding precision, recall and F1 rest on one or two hits, and
# "fewer hallucinated findings" can only mean "affirms nothing abnormal" (the first cpu run's 24 test
# reports gave SFT 1 correct and 4 false findings, SFT + ORPO 0 and 1: both had collapsed to generic
# normal reports). The finding claims are not testable unless every seed's models reach it.
MIN_CORRECT_FINDINGS = 5
MECHANISM_SOURCE = "the paper's method (ORPO: Hong et al. 2024) and the review's summary of paper 9"
CONTINUAL_SOURCE = "the paper's abstract (continual: refining a report with the patient's earlier studies)"


def sft_gate(metrics: dict) -> Gate:
    """Every seed's SFT loss levelled off before the two branches."""
    return all_converged("SFT", {f"seed {k}": seed["sft_loss"] for k, seed in enumerate(metrics["per_seed"])})


def beats_base_gate(metrics: dict) -> Gate:
    """SFT + ORPO beats the untrained model's preference accuracy or its mean log odds ratio (means over
    the seeds): a model that does neither has learnt nothing the pairs can read."""
    base, orpo = metrics["base_preference"], metrics["mean"]["preference"]["orpo"]
    passed = orpo["accuracy"] > base["accuracy"] or orpo["log_odds_ratio"] > base["log_odds_ratio"]
    return Gate("SFT + ORPO beats the untrained model", bool(passed),
                f"preference accuracy {orpo['accuracy']:.3f} against the base model's {base['accuracy']:.3f}, "
                f"log odds ratio {orpo['log_odds_ratio']:.3f} against {base['log_odds_ratio']:.3f}")


def steps_text(metrics: dict) -> str:
    first = metrics["per_seed"][0]
    return (f"Per seed: {len(first['sft_loss'])} SFT steps on {metrics['sizes']['sft']} reports, then from that "
            f"checkpoint {len(first['orpo_loss'])} ORPO steps on {metrics['sizes']['orpo_pairs']} training pairs "
            f"against {len(first['control_loss'])} SFT steps on their chosen reports (same batches).")


def per_seed_text(values: list[float]) -> str:
    return ", ".join(f"{v:+.3f}" for v in values)


def preference_claims(metrics: dict, config: Config) -> list[Claim]:
    gates = (sft_gate(metrics), beats_base_gate(metrics))
    out = []
    for key, name, tolerance in (("accuracy", "held-out preference accuracy", config.accuracy_tolerance),
                                 ("log_odds_ratio", "mean log odds ratio of chosen over rejected",
                                  config.log_odds_tolerance)):
        orpo = [seed["preference"]["orpo"][key] for seed in metrics["per_seed"]]
        control = [seed["preference"]["control"][key] for seed in metrics["per_seed"]]
        estimate = paired(orpo, control)
        base = metrics["base_preference"][key]
        kinds = "; ".join(f"{kind}: ORPO {metrics['mean']['preference']['orpo'][kind][key]:.3f}, control "
                          f"{metrics['mean']['preference']['control'][kind][key]:.3f} "
                          f"({metrics['rejected_kinds']['heldout'][kind]} pairs)"
                          for kind in sorted(metrics["rejected_kinds"]["heldout"]))
        evidence = (f"{name} on {metrics['sizes']['heldout_pairs']} held-out pairs (abnormal test reports, "
                    f"responses of at most {config.pair_tokens} tokens, prompted with the reference tags): "
                    f"base {base:.3f}, SFT + ORPO {np.mean(orpo):.3f}, step-matched SFT control "
                    f"{np.mean(control):.3f}; ORPO minus control per seed {per_seed_text(np.subtract(orpo, control))}, "
                    f"mean {estimate.text()}. By kind of rejected report: {kinds}. " + steps_text(metrics))
        out.append(Claim.decided(
            f"ORPO makes the model prefer the reference report over a hallucinated one ({name}) more than as many "
            f"further SFT steps do", MECHANISM_SOURCE,
            Rule(f"SFT + ORPO's {name} minus the step-matched SFT control's, per seed", "better", tolerance),
            estimate, evidence, gates))
    return out


def finding_counts(scores: dict) -> str:
    """The raw finding counts behind one model's precision, recall and F1 (seed means), in words."""
    return (f"{scores['correct_findings']:.3g} correct and {scores['false_findings']:.3g} false affirmed findings, "
            f"{scores['missed_findings']:.3g} reference findings missed (precision {scores['finding_precision']:.3f}, "
            f"recall {scores['finding_recall']:.3f}, F1 {scores['finding_f1']:.3f})")


def finding_claims(metrics: dict, config: Config) -> list[Claim]:
    texts = ("ORPO alignment gives fewer hallucinated findings than as many further SFT steps",
             "ORPO alignment gives more clinically accurate reports (here: a higher finding-level F1) than as many "
             "further SFT steps")
    if not config.generate:
        return [Claim.untestable(t, CLAIM_SOURCE, "Not tested: generate=false in this run") for t in texts]
    seeds = metrics["per_seed"]
    fewest = min(min(seed["orpo"]["correct_findings"], seed["control"]["correct_findings"]) for seed in seeds)
    n = metrics["sizes"]["generated"]
    counts = (f"Seed means over {n} abnormal test reports: SFT + ORPO {finding_counts(metrics['mean']['orpo'])}; "
              f"control {finding_counts(metrics['mean']['control'])}.")
    if fewest < MIN_CORRECT_FINDINGS:
        why = (f"Not testable here: a model affirms fewer than {MIN_CORRECT_FINDINGS} correct findings (fewest over "
               f"the seeds and both arms: {fewest}), so the finding scores rest on a handful of hits and fewer false "
               f"findings may only mean fewer findings at all. ")
        return [Claim.untestable(t, CLAIM_SOURCE, why + counts) for t in texts]
    gates = (sft_gate(metrics),)
    halluc = paired([s["control"]["hallucinated_per_report"] for s in seeds],
                    [s["orpo"]["hallucinated_per_report"] for s in seeds])
    f1 = paired([s["orpo"]["finding_f1"] for s in seeds], [s["control"]["finding_f1"] for s in seeds])
    return [Claim.decided(texts[0], CLAIM_SOURCE, Rule("the step-matched SFT control's hallucinated findings per "
                                                       "report minus SFT + ORPO's, per seed", "better",
                                                       config.hallucination_tolerance),
                          halluc, f"control minus ORPO {halluc.text()}. " + counts + " " + steps_text(metrics), gates),
            Claim.decided(texts[1], CLAIM_SOURCE, Rule("SFT + ORPO's finding F1 minus the step-matched SFT control's, "
                                                       "per seed", "better", config.f1_tolerance),
                          f1, f"ORPO minus control {f1.text()}. " + counts + " " + steps_text(metrics), gates)]


def continual_claims(metrics: dict) -> list[Claim]:
    out = [Claim.untestable(
        "Continual report generation: a report refined with the patient's earlier studies", CONTINUAL_SOURCE,
        "Not testable here: IU X-ray has one study per patient and no follow-up studies, so there is no earlier "
        "report to refine a new one with.")]
    if "continual" in metrics["mean"]:
        ratios = [s["continual"]["task1_after"]["rouge_l"] / max(s["orpo"]["rouge_l"], 1e-9) - 1
                  for s in metrics["per_seed"]]
        estimate = interval(ratios)
        out.append(Claim.decided(
            "Our addition (not the paper's sense of continual): learning a second task (IMPRESSION) with the same "
            "adapter keeps the first task's ROUGE-L", "our addition",
            Rule("task-1 ROUGE-L after task 2 over before, minus 1, per seed", "no worse", 0.1), estimate,
            f"relative change {estimate.text()}: ROUGE-L {metrics['mean']['orpo']['rouge_l']:.3f} -> "
            f"{metrics['mean']['continual']['task1_after']['rouge_l']:.3f} (seed means).", (sft_gate(metrics),),
            addition=True))
    return out


def claims(metrics: dict, config: Config) -> list[Claim]:
    return preference_claims(metrics, config) + finding_claims(metrics, config) + continual_claims(metrics)


# ---- data notes ---------------------------------------------------------------------------------

def data_notes(metrics: dict, config: Config) -> list[DataNote]:
    """What each data set of the run is: real reports, a simulated (or real) stage 1, rule-built rejected
    reports, and the substitute decoder."""
    sizes, stage1 = metrics["sizes"], metrics["stage1"]
    if config.images:
        notes = [DataNote("IU X-ray images", "real", f"stage 1: MONAI DenseNet-121 trained on the images in "
                          f"{config.images} over the {stage1['tags']} most frequent MeSH tags")]
    else:
        notes = [DataNote("stage-1 findings (simulated)", "synthetic",
                          f"each test report's reference MeSH tags with controlled errors standing in for "
                          f"PKATransNet (IU X-ray images are not obtainable offline): each abnormal tag missed "
                          f"with p = {config.stage1_miss_rate}, one false tag of another report added with "
                          f"p = {config.stage1_false_rate}")]
    def kinds(part):
        return ", ".join(f"{n} {k}" for k, n in sorted(Counter(metrics["rejected_kinds"][part]).items()))
    return notes + [
        DataNote("IU X-ray reports", "real",
                 f"Indiana University chest X-ray reports (FINDINGS, IMPRESSION, MeSH tags), split by report with a "
                 f"seeded shuffle into {sizes['train_split']} training and {sizes['test_split']} test reports: "
                 f"{sizes['sft']} SFT reports; {sizes['heldout_pairs']} held-out pairs and {sizes['generated']} "
                 f"generated reports from the abnormal test reports"),
        DataNote(smollm.NAME, "substitute", f"{smollm.NOTE}; stands in for Phi-3-mini-4k (3.8B)"),
        DataNote("rejected (hallucinated) reports", "synthetic",
                 f"abnormal references (at least one affirmed finding) with a finding added (a sentence of another "
                 f"training report affirming a finding the report lacks) or dropped (a sentence affirming one "
                 f"removed), chosen and rejected at most {config.pair_tokens} tokens: {sizes['orpo_pairs']} ORPO "
                 f"training pairs ({kinds('orpo')}), {sizes['heldout_pairs']} held-out pairs ({kinds('heldout')})")]


# ---- figures ------------------------------------------------------------------------------------

def figures(metrics: dict, config: Config, run: Run) -> list[str]:
    return [plot_preference_and_scores(metrics, config, run), plot_training(metrics, run)]


def plot_preference_and_scores(metrics: dict, config: Config, run: Run) -> str:
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), gridspec_kw={"width_ratios": [1, 1, 2]})
    names = [name.replace(" (control)", "\n(control)").replace("untrained (base) model", "base")
             for _, name in PREFERENCE_ARMS]
    for ax, key, title in ((axes[0], "accuracy", "held-out preference accuracy"),
                           (axes[1], "log_odds_ratio", "mean log odds ratio, chosen over rejected")):
        means = [preference_of(metrics, arm)[key] for arm, _ in PREFERENCE_ARMS]
        ax.bar(range(len(means)), means, color=["0.6", "C1", "C2"])
        for x, (arm, _) in enumerate(PREFERENCE_ARMS[1:], start=1):
            ax.plot([x] * metrics["seeds"], [seed["preference"][arm][key] for seed in metrics["per_seed"]], "k.")
        ax.set_xticks(range(len(means)), names, fontsize=8)
        ax.set_title(title, fontsize=10)
    axes[0].axhline(0.5, color="0.3", lw=0.8, ls=":")
    axes[0].set_ylim(0, 1)
    bx = axes[2]
    keys = ["bleu1", "bleu4", "meteor", "rouge_l", "bertscore_f1", "finding_f1", "hallucinated_per_report"]
    labels = ["BLEU-1", "BLEU-4", "METEOR", "ROUGE-L", "BERTScore\n(MiniLM-L6)", "finding F1",
              "hallucinated\nper report"]
    arms = [(arm, name) for arm, name in ARMS if arm in metrics["mean"]]
    for i, (arm, name) in enumerate(arms):
        x = np.arange(len(keys)) + (i - (len(arms) - 1) / 2) * 0.38
        bx.bar(x, [metrics["mean"][arm].get(k, np.nan) for k in keys], 0.38,
               label=name.replace("IU X-ray FINDINGS, ", ""), color=f"C{i + 1}")
    bx.set_xticks(np.arange(len(keys)), labels, fontsize=8)
    bx.set_title(f"generated FINDINGS, {metrics['sizes']['generated']} abnormal test reports (seed means)"
                 if arms else "no reports generated (generate=false)", fontsize=10)
    if arms:
        bx.legend(fontsize=8)
    stage = "real stage 1 (images)" if config.images else "simulated stage 1 (synthetic: reference tags + noise)"
    fig.suptitle(f"IU X-ray reports; {metrics['sizes']['heldout_pairs']} held-out hallucination pairs (synthetic "
                 f"rejected reports); {stage}; {smollm.NAME} (substitute for Phi-3) + LoRA r {config.rank}; "
                 f"{metrics['seeds']} seeds (dots)", fontsize=9)
    fig.tight_layout()
    return save(fig, run, "preference_and_scores.png", dpi=90, tight=False)


def plot_training(metrics: dict, run: Run) -> str:
    fig, (ax, bx, cx) = plt.subplots(1, 3, figsize=(14, 4))
    for k, seed in enumerate(metrics["per_seed"]):
        steps = len(seed["sft_loss"])
        ax.plot(seed["sft_loss"], color="C0", alpha=0.7, label="SFT" if k == 0 else None)
        extra = range(steps, steps + len(seed["orpo_loss"]))
        ax.plot(extra, seed["orpo_loss"], color="C1", alpha=0.7, label="ORPO loss" if k == 0 else None)
        ax.plot(extra, seed["control_loss"], color="C2", alpha=0.7, label="SFT control" if k == 0 else None)
        bx.plot(seed["orpo_log_odds_ratio"], color="C1", alpha=0.7, label="ORPO, training batches" if k == 0 else None)
    ax.set_xlabel("step")
    ax.set_title("training loss per seed (the branches start at SFT's end)", fontsize=10)
    ax.legend(fontsize=8)
    bx.axhline(metrics["mean"]["preference"]["control"]["log_odds_ratio"], color="C2", ls="--",
               label="control, held-out (seed mean)")
    bx.axhline(metrics["mean"]["preference"]["orpo"]["log_odds_ratio"], color="C1", ls="--",
               label="ORPO, held-out (seed mean)")
    bx.set_xlabel("ORPO step")
    bx.set_title("log odds ratio, chosen over rejected", fontsize=10)
    bx.legend(fontsize=8)
    table = metrics["parameters"]
    ranks = sorted(table, key=int)
    cx.plot([int(r) for r in ranks], [table[r]["percent"] for r in ranks], "o-", label=f"ours ({smollm.NAME}, 134.5M)")
    cx.plot([32, 64], [PAPER_PARAMS[f"stage 2, LoRA rank {r}"][2] for r in (32, 64)], "s--",
            label="paper (Phi-3-mini-4k, 3.8B)")
    cx.set_xscale("log", base=2)
    cx.set_xticks([int(r) for r in ranks], [str(r) for r in ranks])
    cx.set_xlabel("LoRA rank (all linear layers)")
    cx.set_ylabel("trainable parameters, % of the base model")
    cx.set_title("parameter table", fontsize=10)
    cx.legend(fontsize=8)
    fig.suptitle("Stage 2 training on the real IU X-ray reports (simulated stage 1 unless images are given)",
                 fontsize=10)
    fig.tight_layout()
    return save(fig, run, "training.png", dpi=90, tight=False)

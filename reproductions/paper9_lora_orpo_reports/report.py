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


def rows(metrics: dict) -> list[Row]:
    missing = Reported.missing(f"{PAPER}: not reported")
    out = []
    for stage, setting in (("sft", "IU X-ray FINDINGS, SFT"), ("orpo", "IU X-ray FINDINGS, SFT + ORPO")):
        for key, name in TEXT_METRICS:
            if key not in metrics[stage]:
                continue
            paper = missing
            if stage == "orpo" and key in PAPER_KEY:
                paper = Reported(PAPER_IU[PAPER_KEY[key]], f"{PAPER}: IU-Xray average "
                                 f"{'F1-RadGraph' if key == 'finding_f1' else name.split(' (')[0]}")
            out.append(Row(name, setting, metrics[stage][key], paper, key not in LOWER_IS_BETTER,
                           "paper: Phi-3-mini-4k with its own stage 1; ours: SmolLM2-135M, simulated stage 1"
                           if paper is not missing else ""))
    if metrics["continual"]:
        for key, name in TEXT_METRICS:
            if key in ("bleu1", "bleu2", "bleu3", "bleu_mean", "cider", "omitted_per_report"):
                continue
            out.append(Row(name, "task 1 (FINDINGS) after learning task 2", metrics["continual"]["task1_after"][key],
                           missing, key not in LOWER_IS_BETTER))
            out.append(Row(name, "task 2 (IMPRESSION)", metrics["continual"]["task2"][key], missing,
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
# the whole test set) a model's finding precision, recall and F1 rest on one or two hits, and "fewer
# hallucinated findings" can only mean "affirms nothing abnormal" (the cpu profile's 24 test reports gave
# SFT 1 correct and 4 false findings, SFT + ORPO 0 and 1: both had collapsed to generic normal reports).
MIN_CORRECT_FINDINGS = 5
# ORPO steps below this share of the SFT steps make SFT + ORPO close to SFT plus a few more steps.
SMALL_ORPO_SHARE = 0.5


def finding_counts(scores: dict) -> str:
    """The raw finding counts behind one model's precision, recall and F1, in words."""
    return (f"{scores['correct_findings']} correct and {scores['false_findings']} false affirmed findings, "
            f"{scores['missed_findings']} reference findings missed (precision {scores['finding_precision']:.3f}, recall "
            f"{scores['finding_recall']:.3f}, F1 {scores['finding_f1']:.3f})")


def orpo_steps(metrics: dict) -> tuple[int, int]:
    """(SFT steps, ORPO steps) of the FINDINGS adapter, as trained."""
    return len(metrics["training"]["sft_loss"]), len(metrics["training"]["orpo_loss"])


def orpo_is_short(metrics: dict) -> bool:
    """Whether ORPO trained fewer than ``SMALL_ORPO_SHARE`` of the SFT steps."""
    sft_steps, steps = orpo_steps(metrics)
    return bool(sft_steps) and steps < SMALL_ORPO_SHARE * sft_steps


def orpo_note(metrics: dict) -> str:
    """A sentence when ORPO trained few steps next to SFT (else empty)."""
    sft_steps, steps = orpo_steps(metrics)
    if orpo_is_short(metrics):
        return (f" ORPO ran {steps} steps ({metrics['sizes']['orpo_pairs']} pairs) after {sft_steps} SFT steps, so "
                f"SFT + ORPO is close to SFT plus a few more steps on the same adapter.")
    return ""


def claims(metrics: dict) -> list[Claim]:
    sft, orpo = metrics["sft"], metrics["orpo"]
    n_test = metrics["sizes"]["test"]
    counts = f"SFT: {finding_counts(sft)}; SFT + ORPO: {finding_counts(orpo)}; over {n_test} test reports."
    note = orpo_note(metrics)
    testable = min(sft["correct_findings"], orpo["correct_findings"]) >= MIN_CORRECT_FINDINGS
    untestable = (f"Not testable here: a model affirms fewer than {MIN_CORRECT_FINDINGS} correct findings "
                  f"(SFT {sft['correct_findings']}, SFT + ORPO {orpo['correct_findings']}), so the finding scores "
                  f"rest on a handful of hits and fewer false findings may only mean fewer findings at all. ")
    hallucinated = (f"hallucinated findings per report: SFT {sft['hallucinated_per_report']:.3f}, SFT + ORPO "
                    f"{orpo['hallucinated_per_report']:.3f}. ")
    f1 = (f"finding-level F1: SFT {sft['finding_f1']:.3f}, SFT + ORPO {orpo['finding_f1']:.3f}; ROUGE-L "
          f"{sft['rouge_l']:.3f} -> {orpo['rouge_l']:.3f}. ")
    out = [Claim("ORPO alignment gives fewer hallucinated findings than SFT alone", CLAIM_SOURCE,
                 orpo["hallucinated_per_report"] < sft["hallucinated_per_report"] if testable else None,
                 ("" if testable else untestable) + hallucinated + counts + note),
           Claim("ORPO alignment gives more clinically accurate reports (here: a higher finding-level F1 than SFT)",
                 CLAIM_SOURCE, orpo["finding_f1"] > sft["finding_f1"] if testable else None,
                 ("" if testable else untestable) + f1 + counts + note)]
    text = ("Continual learning: a second task learnt after the first keeps the first task's scores (rule: task-1 "
            f"finding F1 and ROUGE-L after task 2 at least 90% of before; ROUGE-L alone when the F1 before rests on "
            f"fewer than {MIN_CORRECT_FINDINGS} correct findings)")
    if metrics["continual"]:
        after = metrics["continual"]["task1_after"]
        use_f1 = orpo["correct_findings"] >= MIN_CORRECT_FINDINGS
        held = after["rouge_l"] >= 0.9 * orpo["rouge_l"] and (not use_f1 or after["finding_f1"] >= 0.9 * orpo["finding_f1"])
        rule = ("judged on finding F1 and ROUGE-L. " if use_f1 else
                f"judged on ROUGE-L alone: the F1 before rests on {orpo['correct_findings']} correct findings "
                f"(fewer than {MIN_CORRECT_FINDINGS}). ")
        out.append(Claim(text, "the paper's title and reported-results.md, Paper 9", held,
                         f"task 1 before -> after learning IMPRESSION with the same adapter: finding F1 "
                         f"{orpo['finding_f1']:.3f} -> {after['finding_f1']:.3f}, ROUGE-L {orpo['rouge_l']:.3f} -> "
                         f"{after['rouge_l']:.3f}, BLEU-4 {orpo['bleu4']:.3f} -> {after['bleu4']:.3f}; " + rule
                         + f"Before: {finding_counts(orpo)}; after: {finding_counts(after)}."))
    else:
        out.append(Claim(text, "the paper's title and reported-results.md, Paper 9", None,
                         "not tested: continual=false in this run"))
    return out


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
    kinds = Counter(metrics["training"]["rejected_kinds"])
    return notes + [
        DataNote("IU X-ray reports", "real",
                 f"Indiana University chest X-ray reports (FINDINGS, IMPRESSION, MeSH tags): {sizes['sft']} "
                 f"SFT training and {sizes['test']} test reports, split by report with a seeded shuffle"),
        DataNote(smollm.NAME, "substitute", f"{smollm.NOTE}; stands in for Phi-3-mini-4k (3.8B)"),
        DataNote("ORPO rejected reports", "synthetic",
                 f"{sizes['orpo_pairs']} references with a finding added (a sentence of another training report "
                 f"affirming a finding the report lacks) or dropped (a sentence affirming one removed): "
                 + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())))]


# ---- figures ------------------------------------------------------------------------------------

def figures(metrics: dict, config: Config, run: Run) -> list[str]:
    return [plot_scores(metrics, config, run), plot_training_and_sweep(metrics, run)]


def plot_scores(metrics: dict, config: Config, run: Run) -> str:
    keys = ["bleu1", "bleu4", "meteor", "rouge_l", "bertscore_f1", "finding_f1"]
    names = ["BLEU-1", "BLEU-4", "METEOR", "ROUGE-L", "BERTScore\n(MiniLM-L6)", "finding F1"]
    series = {"SFT": metrics["sft"], "SFT + ORPO": metrics["orpo"]}
    if metrics["continual"]:
        series["after task 2"] = metrics["continual"]["task1_after"]
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(12, 4.2), gridspec_kw={"width_ratios": [3, 1.3]})
    width = 0.8 / len(series)
    for i, (label, scores) in enumerate(series.items()):
        x = np.arange(len(keys)) + (i - (len(series) - 1) / 2) * width
        ax.bar(x, [scores.get(k, np.nan) for k in keys], width, label=label)
        bx.bar(np.arange(2) + (i - (len(series) - 1) / 2) * width,
               [scores["hallucinated_per_report"], scores["omitted_per_report"]], width, label=label)
    ax.set_xticks(np.arange(len(keys)), names)
    ax.set_ylabel("score")
    ax.set_title("FINDINGS on the test reports (task 1)")
    ax.legend()
    bx.set_xticks(np.arange(2), ["hallucinated", "omitted"])
    bx.set_ylabel("findings per report")
    bx.set_title("finding errors")
    stage = "real stage 1 (images)" if config.images else "simulated stage 1 (synthetic: reference tags + noise)"
    fig.suptitle(f"IU X-ray reports, {stage}; stage 2 {smollm.NAME} (substitute for Phi-3) + LoRA r {config.rank}; "
                 f"{metrics['sizes']['test']} test reports", fontsize=10)
    fig.tight_layout()
    return save(fig, run, "scores.png", dpi=90, tight=False)


def plot_training_and_sweep(metrics: dict, run: Run) -> str:
    fig, (ax, bx, cx) = plt.subplots(1, 3, figsize=(14, 4))
    training = metrics["training"]
    ax.plot(training["sft_loss"], label="SFT loss (FINDINGS)")
    steps = len(training["sft_loss"])
    ax.plot(range(steps, steps + len(training["orpo_loss"])), training["orpo_loss"], label="ORPO loss")
    ax.plot(range(steps, steps + len(training["orpo_loss"])), training["orpo_log_odds_ratio"],
            label="ORPO log odds ratio")
    if metrics["continual"]:
        start = steps + len(training["orpo_loss"])
        ax.plot(range(start, start + len(metrics["continual"]["task2_loss"])), metrics["continual"]["task2_loss"],
                label="SFT loss (IMPRESSION, task 2)")
    ax.set_xlabel("step")
    ax.set_title("training (one adapter throughout)")
    ax.legend(fontsize=8)
    sweep = metrics["sweep"]
    if sweep:
        ranks = sorted(sweep)
        bx.plot(ranks, [sweep[r]["test_nll"] for r in ranks], "o-")
        bx.set_xscale("log", base=2)
        bx.set_xticks(ranks, [str(r) for r in ranks])
    bx.set_xlabel("LoRA rank")
    bx.set_ylabel("test NLL per token")
    bx.set_title("rank sweep (SFT only)" if sweep else "rank sweep (switched off)")
    table = metrics["parameters"]
    ranks = sorted(table)
    cx.plot(ranks, [table[r]["percent"] for r in ranks], "o-", label=f"ours ({smollm.NAME}, 134.5M)")
    cx.plot([32, 64], [PAPER_PARAMS[f"stage 2, LoRA rank {r}"][2] for r in (32, 64)], "s--",
            label="paper (Phi-3-mini-4k, 3.8B)")
    cx.set_xscale("log", base=2)
    cx.set_xticks(ranks, [str(r) for r in ranks])
    cx.set_xlabel("LoRA rank (all linear layers)")
    cx.set_ylabel("trainable parameters, % of the base model")
    cx.set_title("parameter table")
    cx.legend(fontsize=8)
    fig.suptitle("Stage 2 training, rank sweep and trainable share (real IU X-ray reports; simulated stage 1 unless "
                 "images are given)", fontsize=10)
    fig.tight_layout()
    return save(fig, run, "training_and_sweep.png", dpi=90, tight=False)

"""Scores, the paper's numbers, the table in the paper's layout (the review's Figure 10) and the
verdicts on the paper's two claims.

Text metrics: BLEU-1, ROUGE-L and CIDEr from ``metrics.text.caption_scores``; METEOR from the same
pycocoevalcap jar, one Java process for the whole run (``text.meteor_score`` starts one per call,
a few seconds each on a small CPU); BERTScore F1 with the bundled MiniLM-L6 through one
``text.bertscore_scorer`` passed to ``text.bertscore``, so that the model loads once.
"""

from __future__ import annotations

import shutil

import numpy as np

from reproductions.metrics import text
from reproductions.outcome import Claim, Reported, Row

# The five columns of the paper's table, in its order: BS, R, B1, C, M.
COLUMNS = (("bertscore", "BS"), ("rouge_l", "R"), ("bleu1", "B1"), ("cider", "C"), ("meteor", "M"))
METRIC_NAMES = {"bertscore": text.BERTSCORE_NAME + " F1", "rouge_l": "ROUGE-L", "bleu1": "BLEU-1",
                "cider": "CIDEr", "meteor": "METEOR"}

SOURCE = "reported-results.md, Paper 7"
# Only the X-ray rows of two modality-specific models are given (reported-results.md, Paper 7).
PAPER_XRAY = {
    "R2GenGPT": {"bertscore": 0.630, "rouge_l": 0.195, "bleu1": 0.229, "cider": 0.166, "meteor": 0.091},
    "XrayGPT": {"bertscore": 0.632, "rouge_l": 0.207, "bleu1": 0.231, "cider": 0.174, "meteor": 0.098},
}
CLAIMS = {
    "in-modality": ("foundation", "Medical foundation models are best within a task (in-modality)"),
    "cross-modality": ("natural", "Natural-domain models are best across modalities (cross-modality)"),
}


def paper_value(model: str, metric: str) -> Reported:
    return Reported(PAPER_XRAY[model][metric], f"{SOURCE}: {model}, X-ray, {dict(COLUMNS)[metric]}")


def not_reported(what: str) -> Reported:
    return Reported.missing(f"{SOURCE}: {what} not reported (only R2GenGPT and XrayGPT on X-ray are given)")


# ---- scoring ------------------------------------------------------------------------------------

class Scorer:
    """Scores groups of (references, candidates): one METEOR process and one BERTScore model per run."""

    def __init__(self, device):
        from pycocoevalcap.meteor.meteor import Meteor

        if shutil.which("java") is None:
            raise RuntimeError("METEOR runs pycocoevalcap's METEOR 1.5 jar and needs Java: "
                               "apt-get install default-jre-headless")
        self.bert = text.bertscore_scorer(device=device)
        self.meteor = Meteor()

    def score(self, references: list[str], candidates: list[str]) -> dict[str, float]:
        scores = text.caption_scores(references, candidates, meteor=False)
        refs = {i: [text.tokenize(r) or text.EMPTY] for i, r in enumerate(references)}
        cands = {i: [text.tokenize(c) or text.EMPTY] for i, c in enumerate(candidates)}
        scores["meteor"] = float(self.meteor.compute_score(refs, cands)[0])
        scores["bertscore"] = text.bertscore(references, candidates, scorer=self.bert)["f1"]  # empty ones guarded there
        return scores

    def close(self) -> None:
        del self.meteor  # its __del__ ends the Java process


# ---- claims -------------------------------------------------------------------------------------

def mean_ranks(results: dict, families: tuple[str, ...]) -> dict[str, float]:
    """Mean rank (1 = best, ties share the mean rank) of each family over every (modality, metric) cell."""
    from scipy.stats import rankdata

    ranks = {f: [] for f in families}
    modalities = results[families[0]].keys()
    for m in modalities:
        for metric, _ in COLUMNS:
            r = rankdata([-results[f][m][metric] for f in families])
            for f, value in zip(families, r):
                ranks[f].append(value)
    return {f: float(np.mean(v)) for f, v in ranks.items()}


def claims(metrics: dict, families: tuple[str, ...], titles: dict[str, str]) -> list[Claim]:
    """One claim per split: held when the claimed family has the strictly lowest mean rank over the
    split's (modality x metric) cells; not testable when the split did not run or had one modality."""
    out = []
    for split, (family, claim) in CLAIMS.items():
        results = metrics.get(split)
        if not results or family not in families or len(families) < 2:
            out.append(Claim(claim, SOURCE, None, f"{split} did not run with this family in this configuration"))
            continue
        ranks = mean_ranks(results, families)
        best = min(ranks.values())
        held = ranks[family] == best and sum(v == best for v in ranks.values()) == 1
        n = len(next(iter(results.values())))
        means = {f: {metric: np.mean([results[f][m][metric] for m in results[f]]) for metric, _ in COLUMNS}
                 for f in families}
        evidence = (f"Rule: the {titles[family]} family has the lowest mean rank over {n} modalities x 5 metrics. "
                    "Mean ranks: " + ", ".join(f"{titles[f]} {ranks[f]:.2f}" for f in families) + ". Means (BS/R/B1/C/M): "
                    + "; ".join(f"{titles[f]} " + "/".join(f"{means[f][k]:.3f}" for k, _ in COLUMNS) for f in families))
        out.append(Claim(claim, SOURCE, held, evidence))
    return out


# ---- rows and the table in the paper's layout ----------------------------------------------------

def rows(metrics: dict, families: tuple[str, ...], titles: dict[str, str], modality_titles: dict[str, str]) -> list[Row]:
    out = []
    for split, results in metrics.items():
        for family in families:
            for modality, scores in results[family].items():
                setting = f"{split} / {titles[family]} / {modality_titles[modality]}"
                for metric, label in COLUMNS:
                    note = "BERTScore with MiniLM-L6: not comparable with the paper's BS" if metric == "bertscore" else ""
                    if split == "in-modality" and family == "specific" and modality == "xray":
                        for model in PAPER_XRAY:  # the paper's two X-ray-specific models beside ours
                            out.append(Row(METRIC_NAMES[metric], f"{setting} (paper: {model})", scores[metric],
                                           paper_value(model, metric), True,
                                           "; ".join(filter(None, [note, "the paper's split for these numbers is "
                                                                   "not stated in reported-results.md"]))))
                    else:
                        out.append(Row(METRIC_NAMES[metric], setting, scores[metric],
                                       not_reported(f"{titles[family]} {split} {modality_titles[modality]}"), True, note))
    return out


def table(metrics: dict, families: tuple[str, ...], titles: dict[str, str], modalities: tuple[str, ...],
          modality_titles: dict[str, str]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the paper's layout: one row per method, per modality BS R B1 C M."""
    header = ["method"] + [f"{modality_titles[m]} {label}" for m in modalities for _, label in COLUMNS]
    body = []
    for model, values in PAPER_XRAY.items():
        body.append([f"paper: {model} (X-ray-specific)"] + [f"{values[k]:.3f}" if m == "xray" else "n.r."
                                                            for m in modalities for k, _ in COLUMNS])
    for split, results in metrics.items():
        for family in families:
            body.append([f"ours {split}: {titles[family]}"] +
                        [f"{results[family][m][k]:.3f}" if m in results[family] else "-"
                         for m in modalities for k, _ in COLUMNS])
    return header, body


def table_markdown(header: list[str], body: list[list[str]], notes: list[str]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in body]
    return "\n".join(lines + [""] + [f"- {n}" for n in notes]) + "\n"

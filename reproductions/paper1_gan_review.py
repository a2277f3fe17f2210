"""Paper 1: Yi, Walia and Babyn 2019, "Generative adversarial network in medical imaging: a review"
(Medical Image Analysis 58), bib key Yi2019GANReview.

What is reproduced: the shape of the review's Figure 4, the share of GAN papers per task, computed
from the knowledge base (the task tags of whatever corpus the user loads), beside a proxy for the
review's own shares.

How it differs from the paper, and why:
- The review's percentages were not readable, so the comparison column is a proxy: the first
  author's public companion list at its 2019-09-03 revision (172 entries), as recorded in
  reported-results.md. It is labelled a proxy in every output.
- The review files each paper under one task; a knowledge-base paper may carry several task tags.
  "papers" counts a paper once in each of its tasks; "share" splits each paper's weight evenly over
  its tasks, so that shares sum to 100% as the proxy's do.
- The proxy's "low-dose CT denoising" is compared with every GAN paper tagged denoising.
- Pure computation on the corpus: the smoke, cpu and full profiles do the same work, on a CPU.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from reproductions.common.bibliometrics import OTHERS, TASKS, gan_papers, task_groups
from reproductions.common.plotting import plt, save
from reproductions.outcome import Claim, DataNote, Outcome, Reported, Row
from reproductions.run import Run

CATEGORIES = (*TASKS, OTHERS)
PROXY_SOURCE = ("proxy, not the paper's figure: Yi's companion list at 2019-09-03 (172 entries), "
                "reported-results.md, Paper 1")
PROXY = {"synthesis": (82, 47.7), "reconstruction": (25, 14.5), "denoising": (8, 4.7), "segmentation": (23, 13.4),
         "classification": (13, 7.6), "detection": (6, 3.5), "registration": (6, 3.5), OTHERS: (9, 5.2)}
CLAIM_SOURCE = "reported-results.md, Paper 1 (the review's Fig. 4)"


@dataclass(frozen=True)
class Config:
    bib: tuple[str, ...] = ()  # .bib files or folders; empty: $SURVEY_BIB or the bundled corpus
    include_surveys: bool = False
    min_papers: int = 10  # below this many GAN papers a ranking of tasks says nothing: claims not testable

    def __post_init__(self):
        if self.min_papers < 1:
            raise ValueError("min_papers must be at least 1")


PRESETS = {"smoke": Config(), "cpu": Config(), "full": Config()}  # the same computation: nothing to scale down


def distribution(task_lists: list[list[str]]) -> tuple[dict[str, int], dict[str, float]]:
    """Papers per category, and each category's share (%) with a paper's weight split over its tasks."""
    counts = Counter(t for tasks in task_lists for t in tasks)
    weights = Counter()
    for tasks in task_lists:
        for t in tasks:
            weights[t] += 1 / len(tasks)
    total = sum(weights.values())
    return ({c: counts[c] for c in CATEGORIES},
            {c: (100 * weights[c] / total if total else 0.0) for c in CATEGORIES})


def claims(shares: dict[str, float], n: int, config: Config) -> list[Claim]:
    ranking = sorted(CATEGORIES, key=lambda c: -shares[c])
    evidence = (f"{n} tagged GAN papers; shares: "
                + ", ".join(f"{c} {shares[c]:.1f}%" for c in ranking if shares[c] > 0) + ".")
    if n < config.min_papers:
        why = f" Not testable: fewer than {config.min_papers} GAN papers in the knowledge base."
        return [Claim.untestable(text, CLAIM_SOURCE, evidence + why) for text in
                ("Image synthesis is by far the most common GAN application",
                 "Reconstruction and segmentation come next")]
    others = [shares[c] for c in CATEGORIES if c != "synthesis"]
    top = shares["synthesis"] > max(others)
    rest = [shares[c] for c in CATEGORIES if c not in ("synthesis", "reconstruction", "segmentation")]
    next_two = min(shares["reconstruction"], shares["segmentation"]) > max(rest)
    return [Claim("Image synthesis is by far the most common GAN application (here: the largest share)",
                  CLAIM_SOURCE, top, evidence, seeds=None),  # counts over the corpus: nothing random
            Claim("Reconstruction and segmentation come next (here: both above every other task but synthesis)",
                  CLAIM_SOURCE, next_two, evidence, seeds=None)]


def plot(counts: dict[str, int], shares: dict[str, float], n: int, run: Run) -> list[str]:
    colours = dict(zip(CATEGORIES, plt.get_cmap("tab10").colors))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
    for ax, (title, part) in zip(axes, ((f"Knowledge base: {n} GAN papers", shares),
                                        ("Proxy: Yi's companion list, 172 entries", {c: PROXY[c][1] for c in CATEGORIES}))):
        shown = [c for c in CATEGORIES if part[c] > 0]
        if shown:
            ax.pie([part[c] for c in shown], labels=[f"{c} {part[c]:.1f}%" for c in shown],
                   colors=[colours[c] for c in shown], startangle=90, counterclock=False,
                   wedgeprops={"linewidth": 1, "edgecolor": "white"}, textprops={"fontsize": 8})
        else:
            ax.text(0.5, 0.5, "no tagged GAN papers", ha="center", va="center")
            ax.axis("off")
        ax.set_title(title, fontsize=10)
    fig.suptitle("GAN papers by task (shape of Yi et al. 2019, Fig. 4); right: a proxy, not the paper's figure")
    pie = save(fig, run, "task_shares.png")

    fig, ax = plt.subplots(figsize=(8, 4))
    y = np.arange(len(CATEGORIES))
    ax.barh(y - 0.2, [shares[c] for c in CATEGORIES], 0.4, label=f"knowledge base (n = {n})")
    ax.barh(y + 0.2, [PROXY[c][1] for c in CATEGORIES], 0.4, label="proxy (companion list, n = 172)", alpha=0.7)
    for i, c in enumerate(CATEGORIES):
        ax.text(shares[c] + 0.5, i - 0.2, str(counts[c]), va="center", fontsize=8)
    ax.set_yticks(y, CATEGORIES)
    ax.invert_yaxis()
    ax.set_xlabel("share of GAN papers (%); numbers: papers tagged with the task")
    ax.legend(fontsize=8)
    return [pie, save(fig, run, "task_shares_vs_proxy.png")]


def main(config: Config, run: Run) -> Outcome:
    selection = gan_papers(config.bib, config.include_surveys)
    task_lists = [task_groups(tags) for tags in selection.papers["tags"]]
    tagged = [tasks for tasks in task_lists if tasks]
    counts, shares = distribution(tagged)
    metrics = {"gan_papers": len(task_lists), "gan_papers_with_task_tags": len(tagged),
               "corpus_entries": selection.corpus_size, "papers": counts, "share_percent": shares,
               "papers_by_key": dict(zip(selection.papers["key"], task_lists))}
    rows = []
    for c in CATEGORIES:
        rows.append(Row("papers", c, counts[c], Reported(PROXY[c][0], PROXY_SOURCE), None, "paper column: proxy"))
        rows.append(Row("share (%)", c, shares[c], Reported(PROXY[c][1], PROXY_SOURCE), None, "paper column: proxy"))
    data = [selection.note,
            DataNote("proxy task counts", "substitute",
                     "Yi's public companion list (2019-09-03, 172 entries) stands in for the review's Fig. 4, "
                     "whose percentages were not readable; every 'paper' number here is this proxy")]
    differences = [
        "The comparison column is a proxy (the first author's companion list), not the review's Figure 4.",
        "Counted from the knowledge base's task tags, not from the papers the review read; the corpus decides n.",
        "A paper with several task tags counts in each ('papers'); its weight is split over them ('share').",
        "Augmentation is counted as synthesis, super-resolution and inpainting as reconstruction.",
        "Surveys are " + ("included" if config.include_surveys else "left out") + " (--set include_surveys=...).",
    ]
    return Outcome(metrics, rows, claims(shares, len(tagged), config), data, plot(counts, shares, len(tagged), run),
                   differences)

"""Paper 4: Kazeminia et al. 2020, "GANs for medical image analysis" (Artificial Intelligence in
Medicine 109), bib key Kazeminia2020GANs.

What is reproduced: the review's layout, regenerated from the knowledge base (whatever corpus the
user loads): GAN papers organised by task (synthesis, segmentation, reconstruction, detection,
de-noising, registration, classification), one table per task with method, modality, data set and
code columns, and the task x modality x code-availability cross-table.

How it differs from the paper, and why:
- The review read 63 papers (to July 2018, arXiv v1); this counts the knowledge base's GAN papers,
  so n is the corpus's. The review's per-task counts were not found: those cells read "not reported".
- The review's loss and performance columns have no counterpart in the knowledge base's tags; they
  are left out of the regenerated tables rather than filled by guesswork.
- Pure computation on the corpus: the smoke, cpu and full profiles do the same work, on a CPU.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import pandas as pd

from reproductions.common.bibliometrics import OTHERS, TASKS, gan_papers, task_groups
from reproductions.common.plotting import plt, save
from reproductions.outcome import Claim, Outcome, Reported, Row
from reproductions.run import Run
from survey.corpus import tags_in
from survey.tags import MISSING as UNTAGGED  # a paper without a tag in a category

CODE_STATES = ("official", "announced", "none found", UNTAGGED)
REVIEWED = Reported(63, "reported-results.md, Paper 4: 63 papers up to July 2018 (arXiv v1)")
PER_TASK = Reported.missing("reported-results.md, Paper 4: per-task counts not found")
CLAIM_SOURCE = "reported-results.md, Paper 4"


@dataclass(frozen=True)
class Config:
    bib: tuple[str, ...] = ()  # .bib files or folders; empty: $SURVEY_BIB or the bundled corpus
    include_surveys: bool = False
    min_papers: int = 10  # below this many GAN papers, "covers every task" says nothing: not testable

    def __post_init__(self):
        if self.min_papers < 1:
            raise ValueError("min_papers must be at least 1")


PRESETS = {"smoke": Config(), "cpu": Config(), "full": Config()}  # the same computation: nothing to scale down


def cross_table(papers) -> Counter:
    """``{(task, modality, code): papers}``; a paper counts once in each of its tasks and modalities."""
    cells = Counter()
    for tags in papers["tags"]:
        code = tags_in(tags, "code")[0]
        for task in task_groups(tags) or [UNTAGGED]:
            for modality in tags_in(tags, "modality"):
                cells[task, modality, code] += 1
    return cells


def task_papers(papers) -> dict[str, list[dict]]:
    """Per task, the rows of the review's per-task table."""
    out = {task: [] for task in (*TASKS, OTHERS, UNTAGGED)}
    for r in papers.itertuples():
        row = {"key": r.key, "year": None if pd.isna(r.year) else int(r.year), "title": r.title,
               **{c: ", ".join(tags_in(r.tags, c)) for c in ("method", "modality", "dataset", "code")}}
        for task in task_groups(r.tags) or [UNTAGGED]:
            out[task].append(row)
    return {task: rows for task, rows in out.items() if rows or task in TASKS}


def markdown_tables(cells: Counter, per_task: dict[str, list[dict]]) -> str:
    modalities = sorted({m for _, m, _ in cells}, key=lambda m: (m == UNTAGGED, m))
    lines = ["# GAN papers of the knowledge base in the layout of Kazeminia et al. 2020", "",
             "## Task x modality (papers; in brackets: with official code)", "",
             "| task | " + " | ".join(modalities) + " | all |", "|---" * (len(modalities) + 2) + "|"]
    for task in per_task:
        row = [sum(n for (t, m2, _), n in cells.items() if t == task and m2 == m) for m in modalities]
        code = [cells[task, m, "official"] for m in modalities]
        lines.append(f"| {task} | " + " | ".join(f"{n} ({c})" if n else "" for n, c in zip(row, code))
                     + f" | {len(per_task[task])} |")
    lines += ["", "## Task x code availability (papers)", "",
              "| task | " + " | ".join(CODE_STATES) + " |", "|---" * (len(CODE_STATES) + 1) + "|"]
    for task, rows in per_task.items():
        found = Counter(r["code"] for r in rows)
        lines.append(f"| {task} | " + " | ".join(str(found[c]) for c in CODE_STATES) + " |")
    for task, rows in per_task.items():
        lines += ["", f"## {task.capitalize()}", ""]
        if not rows:
            lines.append("No GAN paper of the knowledge base has this task.")
            continue
        lines += ["| reference | method | modality | data set | code |", "|---|---|---|---|---|"]
        lines += [f"| {r['key']} ({r['year'] or '?'}) | {r['method']} | {r['modality']} | {r['dataset']} | {r['code']} |"
                  for r in rows]
    return "\n".join(lines) + "\n"


def plot(cells: Counter, tasks: list[str], n: int, run: Run) -> str:
    modalities = sorted({m for _, m, _ in cells}, key=lambda m: (m == UNTAGGED, m)) or [UNTAGGED]
    total = np.array([[sum(cells[t, m, c] for c in CODE_STATES) for m in modalities] for t in tasks])
    code = np.array([[cells[t, m, "official"] for m in modalities] for t in tasks])
    fig, ax = plt.subplots(figsize=(1.2 * len(modalities) + 3, 0.5 * len(tasks) + 1.5))
    ax.imshow(total, cmap="Blues", vmin=0, vmax=max(1, total.max()), aspect="auto")
    for i in range(len(tasks)):
        for j in range(len(modalities)):
            if total[i, j]:
                ax.text(j, i, f"{total[i, j]} ({code[i, j]})", ha="center", va="center", fontsize=8,
                        color="white" if total[i, j] > total.max() / 2 else "black")
    ax.set_xticks(range(len(modalities)), modalities, rotation=30, ha="right")
    ax.set_yticks(range(len(tasks)), tasks)
    ax.set_title(f"{n} GAN papers of the knowledge base: task x modality (in brackets: with official code)",
                 fontsize=9)
    return save(fig, run, "task_modality_code.png")


def main(config: Config, run: Run) -> Outcome:
    selection = gan_papers(config.bib, config.include_surveys)
    papers = selection.papers
    cells = cross_table(papers)
    per_task = task_papers(papers)
    tables = run.folder / "tables.md"
    tables.write_text(markdown_tables(cells, per_task))
    covered = [t for t in TASKS if per_task[t]]
    metrics = {"gan_papers": len(papers), "corpus_entries": selection.corpus_size,
               "papers_per_task": {t: len(rows) for t, rows in per_task.items()},
               "official_code_per_task": {t: sum(r["code"] == "official" for r in rows) for t, rows in per_task.items()},
               "cells": [{"task": t, "modality": m, "code": c, "papers": k} for (t, m, c), k in sorted(cells.items())],
               "tables": tables.name}
    rows = [Row("GAN papers", "all tasks", len(papers), REVIEWED, None,
                "the review's own count of the papers it read; ours counts the knowledge base")]
    for task, task_rows in per_task.items():
        rows.append(Row("papers", task, len(task_rows), PER_TASK, None))
        rows.append(Row("with official code", task, metrics["official_code_per_task"][task], PER_TASK, None))
    evidence = (f"{len(papers)} GAN papers; tasks with at least one: {', '.join(covered) or 'none'}; "
                f"without: {', '.join(t for t in TASKS if t not in covered) or 'none'}.")
    testable = len(papers) >= config.min_papers
    claim = Claim("GANs are applied across all seven tasks the review organises them by",
                  CLAIM_SOURCE, len(covered) == len(TASKS) if testable else None,
                  evidence + ("" if testable else f" Not testable: fewer than {config.min_papers} GAN papers."),
                  seeds=None)  # counts over the corpus: nothing random
    differences = [
        f"Counts the knowledge base's GAN papers ({len(papers)}), not the 63 papers the review read.",
        "Loss and performance columns are left out: the knowledge base has no tags for them.",
        "Augmentation is counted as synthesis, super-resolution and inpainting as reconstruction.",
        "Surveys are " + ("included" if config.include_surveys else "left out") + " (--set include_surveys=...).",
        "The per-task tables of the review's layout are in tables.md beside results.md.",
    ]
    figure = plot(cells, list(per_task), len(papers), run)
    return Outcome(metrics, rows, [claim], [selection.note], [figure], differences)

"""The knowledge base as data for the two bibliometric reproductions (paper1 and paper4).

Both count GAN papers by task from the SurVis tags of whatever corpus the user loads, so they
grow with it. A "GAN paper" carries a ``method`` tag naming a GAN (GAN, DCGAN, CycleGAN, pix2pix, a
user's SAGAN ...); surveys are left out by default because the reviews count primary papers.
Task tags finer than the reviews' categories are folded into them: augmentation by synthesised
images is synthesis, super-resolution and inpainting are reconstruction (as both reviews file them).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from reproductions.outcome import DataNote
from survey.corpus import bib_paths, load_corpus

# The seven tasks both reviews organise GAN papers by, in Kazeminia et al.'s order.
TASKS = ("synthesis", "segmentation", "reconstruction", "detection", "denoising", "registration",
         "classification")
OTHERS = "others"
FOLDED = {"augmentation": "synthesis", "super-resolution": "reconstruction", "inpainting": "reconstruction"}
REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Selection:
    papers: pd.DataFrame  # the GAN papers: key, year, title, tags
    corpus_size: int
    note: DataNote


def task_groups(tags: dict) -> list[str]:
    """The review categories of one paper's task tags, each once, in TASKS order then others."""
    groups = {FOLDED.get(t, t) for t in tags.get("task", [])}
    return [t for t in TASKS if t in groups] + ([OTHERS] if groups - set(TASKS) else [])


GAN_WITHOUT_THE_NAME = {"pix2pix", "pix2pixhd"}  # GANs whose names do not say so


def is_gan(tags: dict) -> bool:
    return any("GAN" in m or "adversarial" in m.lower() or m.lower() in GAN_WITHOUT_THE_NAME
               for m in tags.get("method", []))


def gan_papers(bib: tuple[str, ...] = (), include_surveys: bool = False) -> Selection:
    """The GAN papers of the corpus in ``bib`` (default: $SURVEY_BIB or the bundled corpus)."""

    paths = bib_paths([Path(p) for p in bib] or None)
    corpus = load_corpus(paths)
    table = corpus.table
    keep = table["tags"].map(is_gan)
    if not include_surveys:
        keep &= ~table["tags"].map(lambda tags: "survey" in tags.get("type", []))
    papers = table.loc[keep, ["key", "year", "title", "tags"]].reset_index(drop=True)
    shown = [str(p.resolve().relative_to(REPO)) if p.resolve().is_relative_to(REPO) else str(p) for p in paths]
    digests = ", ".join(f"{f.path.name} sha256 {f.sha256[:12]}" for f in corpus.files)
    note = DataNote("knowledge base", "real",
                    f"{len(table)} entries from {', '.join(shown)} ({digests}); "
                    f"{len(papers)} GAN papers{'' if include_surveys else ' (surveys left out)'}")
    return Selection(papers, len(table), note)

"""Paper 9: Izhar, Idris and Japar 2025, "Engaging Preference Optimization Alignment in Large Language
Model for Continual Radiology Report Generation: A Hybrid Approach" (Cognitive Computation), bib key
Izhar2025Engaging.

What is reproduced: the paper's hybrid pipeline on the real Indiana University chest X-ray reports.
Stage 1 predicts findings (the MeSH tags); stage 2, a small instruction-tuned decoder with LoRA on all
linear layers, writes the FINDINGS section from them: supervised fine-tuning (SFT), then odds ratio
preference optimisation (ORPO) with rejected reports that add a finding (a hallucination) or drop one.
Continual learning: a second task (the IMPRESSION section) is learnt after the first with the same
adapter, and the first task is scored before and after. Metrics: BLEU-1..4, METEOR, ROUGE-L, CIDEr,
BERTScore (MiniLM-L6), a finding-level F1 and the hallucinated findings per report (before and after
ORPO); a LoRA rank sweep (8, 16, 32, 64) and the paper's parameter table regenerated for our model.

Parts: ``model.py`` (reports, stage 1, stage 2's losses and training, generation, scores, the sweep;
its helpers ``stage1.py``, the stage-1 models, and ``findings.py``, the finding extractor) and
``report.py`` (the paper's numbers, rows, claims, figures).

How it differs from the paper, and why:
- Stage 1 is simulated by default: IU X-ray's images are not obtainable offline, so stage 1's output is
  each test report's reference MeSH tags with controlled errors (``stage1_miss_rate``,
  ``stage1_false_rate``) standing in for PKATransNet's. With ``--set images=DIR`` (the IU X-ray PNGs),
  a real image model (MONAI DenseNet-121, trained from scratch, not PKATransNet) is trained and used.
  Stage 2 learns from the reference tags (what a near-perfect stage 1 gives on its own training images).
- Stage 2 is SmolLM2-135M-Instruct (the bundled 4-bit release, dequantised) instead of Phi-3-mini-4k
  (3.8B): the only instruction-tuned decoder obtainable offline, and one that trains on a CPU; its
  trainable percentages are larger than the paper's for the same rank.
- ORPO's loss is implemented here (not trl's trainer, which would add heavy dependencies); lambda 0.1
  (trl's default). Rejected reports are built by rule from the references (a finding added or
  dropped), not sampled from the model.
- The official scripts' LoRA settings (r 64, alpha 32, dropout 0.1, all linear layers, one epoch) are
  kept; lr 5e-5 in ``full`` but larger in ``smoke``/``cpu``, which see a few dozen steps; the seed is the
  run's (``--seed 1234`` gives the official one). Subsets of the reports in ``smoke``/``cpu``, where ORPO
  trains on fewer pairs than SFT's reports, so SFT + ORPO is close to SFT plus a few more steps (the
  claims' evidence says so when ORPO ran under half of SFT's steps).
- Finding-level claims (fewer hallucinations, higher F1; the F1 half of the continual rule) are decided
  only when each model compared affirms at least ``report.MIN_CORRECT_FINDINGS`` (5) correct findings on
  the test set; else they are not testable here, and the continual rule uses ROUGE-L alone.
- Continual learning continues the same LoRA adapter on task 2 (IMPRESSION), so forgetting can show;
  separate adapters per task would leave task 1 unchanged by construction.
- The rank sweep fine-tunes (SFT only) a fresh adapter per rank on ``sweep_reports`` reports and scores
  the teacher-forced test NLL (and, with ``sweep_generate``, the generation metrics).
- The F1 is finding-level (a rule-based extractor with negation, ``findings.py``), not F1-RadGraph; the
  paper's BLEU (an average) stands beside our mean of BLEU-1..4. BERTScore uses MiniLM-L6 rather than
  roberta-large; METEOR, BLEU, ROUGE-L and CIDEr use pycocoevalcap on our tokenisation.
- Greedy decoding (with ``repetition_penalty``, 1 by default) of at most ``max_new_tokens`` tokens.
- ``full`` is sized for one GPU in under ten minutes but was not timed on one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from reproductions.common.docstring import differences
from reproductions.outcome import Outcome
from reproductions.run import Run

from . import model, report
from .model import REJECTED_KINDS, TABLE_RANKS

__all__ = ["PRESETS", "Config", "main"]


@dataclass(frozen=True)
class Config:
    train_reports: int = 0  # stage-2 training reports (0: the whole training split)
    test_reports: int = 0  # test reports scored (0: the whole test split)
    test_fraction: float = 0.2  # of the reports with FINDINGS and IMPRESSION, split by report, seeded
    stage1_miss_rate: float = 0.1  # simulated stage 1: probability that each abnormal tag is missed
    stage1_false_rate: float = 0.1  # ... and that a report gets one false tag
    images: str = ""  # folder of IU X-ray PNGs: train a real stage-1 image model instead of simulating it
    image_size: int = 224
    image_epochs: int = 10
    image_tags: int = 40  # the image model predicts the most frequent tags
    rank: int = 64  # official scripts: r 64, alpha 32, dropout 0.1, all linear layers
    lora_alpha: int = 32
    lora_dropout: float = 0.1
    lr: float = 5e-5
    batch_size: int = 4
    max_response_tokens: int = 128  # training responses are cut to this many tokens
    orpo_reports: int = 0  # preference pairs (0: every training report)
    orpo_lambda: float = 0.1
    rejected: tuple[str, ...] = REJECTED_KINDS
    max_new_tokens: int = 96
    eval_batch_size: int = 16
    repetition_penalty: float = 1.0
    meteor: bool = True  # needs Java
    continual: bool = True
    continual_reports: int = 0  # task-2 (IMPRESSION) training reports (0: every training report)
    sweep_ranks: tuple[int, ...] = TABLE_RANKS  # () switches the sweep off
    sweep_reports: int = 0  # SFT reports per sweep rank (0: every training report)
    sweep_generate: bool = True  # also score generated reports per rank (else only the test NLL)

    def __post_init__(self):
        for name in ("train_reports", "test_reports", "orpo_reports", "continual_reports", "sweep_reports"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be 0 (all) or a positive count")
        for name in ("image_size", "image_epochs", "image_tags", "rank", "lora_alpha", "batch_size",
                     "max_response_tokens", "max_new_tokens", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if not 0 < self.test_fraction < 1:
            raise ValueError("test_fraction must lie between 0 and 1")
        for name in ("stage1_miss_rate", "stage1_false_rate", "lora_dropout"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name} must lie in [0, 1)")
        if self.lr <= 0 or self.orpo_lambda < 0 or self.repetition_penalty <= 0:
            raise ValueError("lr and repetition_penalty must be positive, orpo_lambda not negative")
        if not self.rejected or set(self.rejected) - set(REJECTED_KINDS):
            raise ValueError(f"rejected: choose from {', '.join(REJECTED_KINDS)} (got {', '.join(self.rejected)})")
        if any(r < 1 for r in self.sweep_ranks):
            raise ValueError("sweep_ranks: LoRA ranks must be at least 1")
        if self.images and not Path(self.images).is_dir():
            raise ValueError(f"images: {self.images} is not a folder of IU X-ray PNGs")


PRESETS = {
    # a few dozen steps, 4 test reports, short generations; every part switched on at toy size.
    "smoke": Config(train_reports=16, test_reports=4, lr=3e-4, batch_size=4, max_response_tokens=48,
                    orpo_reports=8, max_new_tokens=24, eval_batch_size=4, continual_reports=8,
                    sweep_ranks=(8, 64), sweep_reports=4, sweep_generate=False),
    # a machine without a GPU: 160 SFT reports, 48 preference pairs, 24 test reports, sweep by test NLL.
    "cpu": Config(train_reports=160, test_reports=24, lr=2e-4, batch_size=4, max_response_tokens=96,
                  orpo_reports=48, max_new_tokens=64, eval_batch_size=8, continual_reports=64,
                  sweep_reports=48, sweep_generate=False),
    # the whole split with the official LoRA settings (meant for one GPU in under ten minutes; not timed).
    "full": Config(test_reports=400, batch_size=8, eval_batch_size=64, sweep_reports=1000),
}


def main(config: Config, run: Run) -> Outcome:
    """Split the reports, run stage 1, train stage 2 (SFT, ORPO, the second task) on one adapter, sweep
    the LoRA rank, count the parameters, then report them beside the paper's numbers."""
    train, test = model.load_reports(config, run)
    test, test_tags, stage1 = model.stage1(config, run, train, test)
    stage2 = model.stage2(config, run, train, test, test_tags)
    sweep = model.rank_sweep(config, run, train, test, test_tags) if config.sweep_ranks else {}
    metrics = {"stage1": stage1, **stage2, "sweep": sweep, "parameters": model.parameter_table()}
    return Outcome(metrics, report.rows(metrics), report.claims(metrics), report.data_notes(metrics, config),
                   report.figures(metrics, config, run), differences(__doc__))

"""Paper 9: Izhar, Idris and Japar 2025, "Engaging Preference Optimization Alignment in Large Language
Model for Continual Radiology Report Generation: A Hybrid Approach" (Cognitive Computation), bib key
Izhar2025Engaging.

What is reproduced: the paper's hybrid pipeline on the real Indiana University chest X-ray reports.
Stage 1 predicts findings (the MeSH tags); stage 2, a small instruction-tuned decoder with LoRA on all
linear layers, writes the FINDINGS section from them: supervised fine-tuning (SFT), then odds ratio
preference optimisation (ORPO) with rejected reports that add a finding (a hallucination) or drop one.
ORPO's mechanism is tested directly, against a step-matched control: from the same SFT checkpoint, per
seed, ORPO on the training pairs and SFT on their chosen reports for exactly as many steps (the same
batches); both are scored on held-out hallucination pairs by the preference accuracy (the share of pairs
whose chosen report has the higher length-normalised log-likelihood) and the mean log odds ratio of
chosen over rejected, and the untrained model is scored alike. Generated reports (where the profile
generates them) give BLEU-1..4, METEOR, ROUGE-L, CIDEr, BERTScore (MiniLM-L6), a finding-level F1 and the
hallucinated findings per report; the paper's parameter table is regenerated for our model, and a LoRA
rank sweep and a forgetting test (our addition) run where the profile has room.

Parts: ``model.py`` (reports, stage 1, stage 2's losses and training, the preference scores, generation,
scores, the sweep; its helpers ``stage1.py``, the stage-1 models, and ``findings.py``, the finding
extractor) and ``report.py`` (the paper's numbers, rows, claims, figures).

How it differs from the paper, and why:
- Stage 1 is simulated by default: IU X-ray's images are not obtainable offline, so stage 1's output is
  each test report's reference MeSH tags with controlled errors (``stage1_miss_rate``,
  ``stage1_false_rate``) standing in for PKATransNet's. With ``--set images=DIR`` (the IU X-ray PNGs),
  a real image model (MONAI DenseNet-121, trained from scratch, not PKATransNet) is trained and used.
  Stage 2 learns from the reference tags (what a near-perfect stage 1 gives on its own training images).
- Stage 2 is SmolLM2-135M-Instruct (the bundled 4-bit release, dequantised) instead of Phi-3-mini-4k
  (3.8B): the only instruction-tuned decoder obtainable offline, and one that trains on a CPU; its
  trainable percentages are larger than the paper's for the same rank. The prompt is one user turn
  (the tags and the section asked for), without a system prompt, to keep CPU sequences short.
- ORPO's loss is implemented here (not trl's trainer, which would add heavy dependencies); lambda 0.1
  (trl's default). Rejected reports are built by rule from abnormal references (a finding added or
  dropped), not sampled from the model; chosen and rejected are at most ``pair_tokens`` (64) tokens.
- The paper compares SFT + ORPO with SFT alone, which gives ORPO extra steps. Here every comparison is
  against a step-matched control: SFT continued on the chosen reports from the same checkpoint for as
  many steps as ORPO ran, on the same batches. ORPO's mechanism is tested directly on held-out pairs
  (abnormal test reports prompted with their reference tags, so stage 2 alone is tested): preference
  accuracy and mean log odds ratio, ORPO minus control per seed with a 95% paired t interval over
  ``seeds`` (3) seeds, tolerances 0.02 and 0.05 fixed before the run; gated on every seed's SFT loss
  having levelled off and on SFT + ORPO beating the untrained model on one of the two scores.
- The official scripts' LoRA settings (r 64, alpha 32, dropout 0.1, all linear layers, one epoch) are
  kept; lr 5e-5 in ``full`` but larger in ``smoke``/``cpu``, which see a few dozen steps; the seed is the
  run's (``--seed 1234`` gives the official one). ``cpu`` trains on 48 SFT reports and 24 pairs per seed
  (batch 2) and scores 48 held-out pairs: a step of SmolLM2 takes seconds on 2 cores.
- Finding-level claims (fewer hallucinations, higher F1 than the step-matched control) are decided over
  the seeds only when every seed's models affirm at least ``report.MIN_CORRECT_FINDINGS`` (5) correct
  findings on the generated reports (abnormal test reports only, from stage 1's tags); else, and in
  ``cpu``, which generates no reports (15 minutes on 2 cores do not hold it), they are not testable here.
- Continual: the paper means refining a report with the patient's earlier studies; IU X-ray has no
  follow-up studies, so that claim is not testable here. Our addition (not counted): a forgetting test
  that trains the ORPO adapter on a second task (IMPRESSION) and scores FINDINGS again (``continual``,
  on in ``smoke`` and ``full``).
- The rank sweep fine-tunes (SFT only) a fresh adapter per rank on ``sweep_reports`` reports and scores
  the teacher-forced test NLL (and, with ``sweep_generate``, the generation metrics); off in ``cpu``.
- The F1 is finding-level (a rule-based extractor with negation, ``findings.py``), not F1-RadGraph; the
  paper's BLEU (an average) stands beside our mean of BLEU-1..4. BERTScore uses MiniLM-L6 rather than
  roberta-large; METEOR, BLEU, ROUGE-L and CIDEr use pycocoevalcap on our tokenisation.
- Greedy decoding (with ``repetition_penalty``, 1 by default) of at most ``max_new_tokens`` tokens.
- ``full`` is sized for one GPU but was not timed on one.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from reproductions.common.docstring import differences
from reproductions.common.numbers import mean_of_trees
from reproductions.outcome import Outcome
from reproductions.run import Run

from . import model, report
from .model import REJECTED_KINDS, TABLE_RANKS

__all__ = ["PRESETS", "Config", "main"]


@dataclass(frozen=True)
class Config:
    train_reports: int = 0  # stage-2 SFT reports (0: the whole training split)
    test_reports: int = 0  # abnormal test reports generated for the finding claims (0: all of them)
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
    orpo_reports: int = 0  # ORPO's training pairs (0: every abnormal training report short enough)
    heldout_pairs: int = 0  # held-out pairs of test reports (0: every abnormal test report short enough)
    pair_tokens: int = 64  # a pair's chosen and rejected responses are at most this many tokens
    orpo_lambda: float = 0.1
    rejected: tuple[str, ...] = REJECTED_KINDS
    seeds: int = 3  # trainings (adapter, batches, dropout) the claims are decided over
    accuracy_tolerance: float = 0.02  # "better" preference accuracy: at least 2 points above the control
    log_odds_tolerance: float = 0.05  # "better" mean log odds ratio: at least 0.05 above the control
    hallucination_tolerance: float = 0.05  # fewer hallucinated findings per report by at least this
    f1_tolerance: float = 0.02  # a finding F1 higher by at least this
    generate: bool = True  # generate reports for the finding (hallucination, F1) claims
    max_new_tokens: int = 96
    eval_batch_size: int = 16
    repetition_penalty: float = 1.0
    meteor: bool = True  # needs Java
    continual: bool = False  # our addition: forgetting of FINDINGS after IMPRESSION on the ORPO adapter
    continual_reports: int = 0  # task-2 (IMPRESSION) training reports (0: every training report)
    sweep_ranks: tuple[int, ...] = TABLE_RANKS  # () switches the sweep off
    sweep_reports: int = 0  # SFT reports per sweep rank (0: every training report)
    sweep_generate: bool = True  # also score generated reports per rank (else only the test NLL)

    def __post_init__(self):
        for name in ("train_reports", "test_reports", "orpo_reports", "heldout_pairs", "continual_reports",
                     "sweep_reports"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be 0 (all) or a positive count")
        for name in ("image_size", "image_epochs", "image_tags", "rank", "lora_alpha", "batch_size",
                     "max_response_tokens", "max_new_tokens", "eval_batch_size", "pair_tokens", "seeds"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.max_response_tokens < self.pair_tokens:
            raise ValueError("max_response_tokens must be at least pair_tokens (pairs are never cut)")
        if not 0 < self.test_fraction < 1:
            raise ValueError("test_fraction must lie between 0 and 1")
        for name in ("stage1_miss_rate", "stage1_false_rate", "lora_dropout"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name} must lie in [0, 1)")
        if self.lr <= 0 or self.orpo_lambda < 0 or self.repetition_penalty <= 0:
            raise ValueError("lr and repetition_penalty must be positive, orpo_lambda not negative")
        for name in ("accuracy_tolerance", "log_odds_tolerance", "hallucination_tolerance", "f1_tolerance"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if not self.rejected or set(self.rejected) - set(REJECTED_KINDS):
            raise ValueError(f"rejected: choose from {', '.join(REJECTED_KINDS)} (got {', '.join(self.rejected)})")
        if self.continual and not self.generate:
            raise ValueError("continual: scores generated reports; set generate=true or continual=false")
        if any(r < 1 for r in self.sweep_ranks):
            raise ValueError("sweep_ranks: LoRA ranks must be at least 1")
        if self.images and not Path(self.images).is_dir():
            raise ValueError(f"images: {self.images} is not a folder of IU X-ray PNGs")


PRESETS = {
    # a few steps, 2 generated reports, short generations, one seed (decides nothing); every part at toy size.
    "smoke": Config(train_reports=8, test_reports=2, lr=3e-4, batch_size=2, max_response_tokens=64, orpo_reports=4,
                    heldout_pairs=4, seeds=1, max_new_tokens=16, eval_batch_size=8, continual=True,
                    continual_reports=4, sweep_ranks=(8,), sweep_reports=2, sweep_generate=False),
    # a machine without a GPU, 3 seeds in 15 minutes on 2 cores (a step of 2 reports takes about 3 s): per seed SFT
    # on 48 reports (24 steps), ORPO and the step-matched SFT control on 24 pairs (12 steps each), both scored on
    # 48 held-out pairs. No generated reports (the finding claims are not testable on it), no forgetting test,
    # no rank sweep.
    "cpu": Config(train_reports=48, lr=3e-4, batch_size=2, max_response_tokens=64, orpo_reports=24, heldout_pairs=48,
                  generate=False, eval_batch_size=16, sweep_ranks=()),
    # the whole split with the official LoRA settings, 200 abnormal test reports generated (meant for one GPU; not
    # timed).
    "full": Config(test_reports=200, batch_size=8, eval_batch_size=64, continual=True, sweep_reports=1000),
}


def main(config: Config, run: Run) -> Outcome:
    """Split the reports, run stage 1, draw stage 2's sets once, score the untrained model on the held-out
    pairs, then per seed train SFT and branch it into ORPO and the step-matched SFT control; sweep the LoRA
    rank, count the parameters, and report them beside the paper's numbers."""
    train, test = model.load_reports(config, run)
    test, test_tags, stage1 = model.stage1(config, run, train, test)
    data = model.stage2_data(config, run, train, test, test_tags)
    bert = model.bert_scorer(config, run)
    base = model.base_preference(config, run, data)
    per_seed = [model.trial(config, replica, data, bert) for replica in run.replicas(config.seeds)]
    sweep = model.rank_sweep(config, run, data, bert) if config.sweep_ranks else {}
    metrics = {"stage1": stage1, "base_preference": base, "seeds": config.seeds, "per_seed": per_seed,
               "mean": mean_of_trees([{k: v for k, v in seed.items() if isinstance(v, dict)} for seed in per_seed]),
               "sizes": {"train_split": len(train), "test_split": len(test), "sft": len(data.sft),
                         "orpo_pairs": len(data.orpo), "heldout_pairs": len(data.heldout),
                         "generated": len(data.generate)},
               "rejected_kinds": {"orpo": dict(Counter(data.orpo.kinds)), "heldout": dict(Counter(data.heldout.kinds))},
               "sweep": sweep, "parameters": model.parameter_table()}
    return Outcome(metrics, report.rows(metrics), report.claims(metrics, config), report.data_notes(metrics, config),
                   report.figures(metrics, config, run), differences(__doc__))

"""Report-generation metrics: BLEU-1..4, METEOR, ROUGE-L and CIDEr from pycocoevalcap (the
captioning code that report-generation papers use), and BERTScore from bert-score.

Text is lower-cased and split into words and punctuation here rather than by pycocoevalcap's
PTB tokenizer (a Stanford CoreNLP jar); METEOR 1.5 runs its bundled jar and needs a Java runtime.
Scores are corpus-level as pycocoevalcap computes them; CIDEr's document frequencies come from
the evaluated references, so it needs several reports to mean anything.

BERTScore uses the bundled all-MiniLM-L6-v2 (layer 6, no idf, no baseline rescaling), since the
default roberta-large cannot be downloaded: it is reported as "BERTScore (MiniLM-L6)" and is
not comparable with papers' roberta-large BERTScores.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from bert_score import BERTScorer
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.meteor.meteor import Meteor
from pycocoevalcap.rouge.rouge import Rouge

from reproductions.data.offline import MINILM, require

BERTSCORE_NAME = "BERTScore (MiniLM-L6)"
EMPTY = "<empty>"  # what an empty report is scored as, by every metric here
_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[^\sa-z0-9]")


def tokenize(text: str) -> str:
    return " ".join(_TOKEN.findall(text.lower()))


def caption_scores(references: list[str], candidates: list[str], meteor: bool = True) -> dict[str, float]:
    """BLEU-1..4, ROUGE-L, CIDEr and (with Java) METEOR of ``candidates`` against one reference each."""

    if len(references) != len(candidates) or not references:
        raise ValueError(f"need as many candidates as references (got {len(candidates)} and {len(references)})")
    refs = {i: [tokenize(r) or EMPTY] for i, r in enumerate(references)}
    cands = {i: [tokenize(c) or EMPTY] for i, c in enumerate(candidates)}
    bleu, _ = Bleu(4).compute_score(refs, cands, verbose=0)
    scores = {f"bleu{n + 1}": float(b) for n, b in enumerate(bleu)}
    scores["rouge_l"] = float(Rouge().compute_score(refs, cands)[0])
    scores["cider"] = float(Cider().compute_score(refs, cands)[0])
    if meteor:
        scores["meteor"] = meteor_score(refs, cands)
    return scores


def meteor_score(refs: dict, cands: dict) -> float:
    if shutil.which("java") is None:
        raise RuntimeError("METEOR runs pycocoevalcap's METEOR 1.5 jar and needs Java: "
                           "apt-get install default-jre-headless (or pass meteor=False)")

    scorer = Meteor()
    try:
        return float(scorer.compute_score(refs, cands)[0])
    finally:
        del scorer  # its __del__ ends the Java process


def placeholder(texts: list[str]) -> list[str]:
    """``texts`` with each empty or whitespace-only one replaced by ``EMPTY`` (bert-score fails on an
    empty string: its tokenizer then has no ``build_inputs_with_special_tokens``)."""
    return [t if t.strip() else EMPTY for t in texts]


def bertscore_scorer(model_dir: Path | None = None, num_layers: int = 6, device=None):
    """A ``BERTScorer`` with this module's settings; ``model_dir`` defaults to the prepared MiniLM."""

    if model_dir is None:
        model_dir = require("minilm") / MINILM
    return BERTScorer(model_type=str(model_dir), num_layers=num_layers, idf=False, rescale_with_baseline=False,
                      device=None if device is None else str(device))


def bertscore(references: list[str], candidates: list[str], model_dir: Path | None = None,
              num_layers: int = 6, scorer=None) -> dict[str, float]:
    """Mean BERTScore precision, recall and F1; ``model_dir`` defaults to the prepared MiniLM, ``scorer``
    (from ``bertscore_scorer``) reuses a loaded model. Empty candidates and references are scored as the
    placeholder ``EMPTY``, as pycocoevalcap's scores see them."""
    if len(references) != len(candidates) or not references:
        raise ValueError(f"need as many candidates as references (got {len(candidates)} and {len(references)})")
    if scorer is None:
        scorer = bertscore_scorer(model_dir, num_layers)
    p, r, f = scorer.score(placeholder(candidates), placeholder(references))
    return {"precision": float(p.mean()), "recall": float(r.mean()), "f1": float(f.mean())}

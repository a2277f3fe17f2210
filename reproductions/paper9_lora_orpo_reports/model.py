"""Paper 9's hybrid pipeline, top to bottom: the IU X-ray reports and their split, stage 1 (the
findings a report is written from), stage 2 (a small decoder with LoRA: supervised fine-tuning,
then ORPO, then a second task on the same adapter), greedy generation, the scores, the rank sweep
and the parameter table.

1. Data: the real IU X-ray reports with FINDINGS and IMPRESSION, split by report.
2. Stage 1 (``stage1.py``): the paper's is PKATransNet, an image model. IU X-ray's images are not
   obtainable offline, so by default stage 1 is simulated: each test report's reference MeSH tags
   with controlled errors (missed and false tags); with the images, a MONAI DenseNet-121.
3. Stage 2: prompts use the tokenizer's chat template; the loss covers the response tokens only
   (the report section and the closing ``<|im_end|>``). Training is a plain loop over LoRA
   parameters: supervised fine-tuning (SFT), then ORPO (Hong et al. 2024), whose loss is
   implemented here:
       L = L_SFT(chosen) + lambda * -log sigmoid(log odds(chosen) - log odds(rejected)),
       log odds(y) = log P(y|x) - log(1 - P(y|x)),  log P(y|x) = mean over response tokens of log p(token)

   (the length-normalised likelihood, as in the ORPO paper and trl's ORPOTrainer). Rejected
   reports are the references with a finding added or dropped, by rule.
4. Evaluation: greedy reports scored with BLEU-1..4, METEOR, ROUGE-L, CIDEr, BERTScore (MiniLM-L6),
   the finding-level scores of ``findings.py`` and the teacher-forced test NLL.
"""

from __future__ import annotations

import gc
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from peft import LoraConfig, get_peft_model
from transformers import AutoConfig, AutoModelForCausalLM

from reproductions.common import smollm
from reproductions.common.quiet import quiet_known_warnings
from reproductions.data.offline import require
from reproductions.data.reports import bundled_reports
from reproductions.metrics.text import bertscore, bertscore_scorer, caption_scores
from reproductions.run import Run

from .findings import extract, finding_scores, mentions, sentences
from .stage1 import image_stage1, simulated_stage1, tag_errors, tag_text

if TYPE_CHECKING:
    from . import Config

REJECTED_KINDS = ("add", "drop")
TABLE_RANKS = (8, 16, 32, 64)
SYSTEM = "You are a radiologist writing chest X-ray reports."
SECTIONS = {"findings": "FINDINGS", "impression": "IMPRESSION"}


@dataclass(frozen=True)
class Example:
    id: str
    tags: str  # stage 1's output as prompt text
    target: str  # the reference section
    task: str  # "findings" or "impression"


# ---- 1. data ------------------------------------------------------------------------------------

def split(reports, config: Config, rng: np.random.Generator):
    """Reports with both sections, shuffled and split by report into (train, test)."""
    pool = [r for r in reports if r.findings and r.impression]
    order = rng.permutation(len(pool))
    n_test = max(1, round(config.test_fraction * len(pool)))
    test = [pool[i] for i in order[:n_test]]
    train = [pool[i] for i in order[n_test:]]
    return train, test[:config.test_reports or None]


def load_reports(config: Config, run: Run):
    """``(train, test)`` reports of the bundled IU X-ray set, split in the stream "report-split"."""

    return split(bundled_reports(), config, run.rng("report-split"))


def first(items: list, n: int) -> list:
    return items[:n or None]


def examples(reports, tags: list[tuple[str, ...]], task: str) -> list[Example]:
    """One prompt per report: its (stage-1) tags as text and the section ``task`` as the target."""
    return [Example(r.id, tag_text(t), getattr(r, task), task) for r, t in zip(reports, tags)]


# ---- 2. stage 1 (its models in stage1.py) -------------------------------------------------------

def stage1(config: Config, run: Run, train_reports: list, test_reports: list) -> tuple[list, list, dict]:
    """``(test reports, their stage-1 tags, stage 1's scores)``: the image model when ``config.images``
    names a folder (test reports without an image are left out), else the simulated stage 1 with its
    errors drawn in the stream "stage1-errors"."""
    info = {}
    if config.images:
        archive = require("iu-xray-reports") / "torchxrayvision/data/NLMCXR_reports.tgz"
        predicted, info = image_stage1([r.id for r in train_reports], [r.id for r in test_reports],
                                       Path(config.images), archive, config.image_size, config.image_epochs,
                                       config.image_tags, run)
        test_reports = [r for r in test_reports if r.id in predicted]
        test_tags = [predicted[r.id] for r in test_reports]
    else:
        test_tags = simulated_stage1([r.mesh for r in test_reports], [r.mesh for r in train_reports],
                                     config.stage1_miss_rate, config.stage1_false_rate, run.rng("stage1-errors"))
    scores = tag_errors([r.mesh for r in test_reports], test_tags)
    return test_reports, test_tags, {**scores, **info, "simulated": not config.images}


# ---- 3. stage 2: prompts, losses, rejected reports ----------------------------------------------

def prompt(tokenizer, example: Example) -> str:
    user = (f"Findings predicted from the chest X-ray (MeSH tags): {example.tags}.\n"
            f"Write the {SECTIONS[example.task]} section of the report.")
    return tokenizer.apply_chat_template([{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}],
                                         tokenize=False, add_generation_prompt=True)


def encode(tokenizer, examples: list[Example], responses: list[str] | None = None, max_response: int = 128):
    """Right-padded ``input_ids``, ``attention_mask`` and ``labels`` (-100 outside the response tokens),
    each (B, T) with T the longest prompt + response."""
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    rows = []
    for example, response in zip(examples, responses or [e.target for e in examples]):
        p = tokenizer(prompt(tokenizer, example), add_special_tokens=False).input_ids
        r = tokenizer(response, add_special_tokens=False).input_ids[:max_response] + [end]
        rows.append((p + r, [-100] * len(p) + r))
    width = max(len(ids) for ids, _ in rows)
    pad = tokenizer.pad_token_id
    ids = torch.tensor([i + [pad] * (width - len(i)) for i, _ in rows])
    labels = torch.tensor([lab + [-100] * (width - len(lab)) for _, lab in rows])
    mask = torch.tensor([[1] * len(i) + [0] * (width - len(i)) for i, _ in rows])
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def token_logps(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per sequence, the sum of log p of the response tokens and their count: (B,), (B,).

    logits (B, T, V) predict the next token, so position t scores labels[t + 1]."""
    labels = labels[:, 1:]  # (B, T - 1): the tokens to predict
    logits = logits[:, :-1].float()  # (B, T - 1, V): the predictions for them
    mask = labels != -100
    # (B, T - 1) -> (B, T - 1, 1) to gather each token's log p from (B, T - 1, V), then back to (B, T - 1)
    logp = torch.gather(logits.log_softmax(-1), 2, labels.clamp_min(0)[..., None])[..., 0]
    return (logp * mask).sum(-1), mask.sum(-1)


def orpo_loss(chosen_mean_logp: torch.Tensor, rejected_mean_logp: torch.Tensor, sft_nll: torch.Tensor,
              lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    """ORPO's loss from the length-normalised log-likelihoods (B,) of the chosen and rejected responses and
    the chosen responses' NLL; returns (loss, mean log odds ratio)."""
    def log_odds(mean_logp):  # log p - log(1 - p), with p = exp(mean_logp) < 1
        return mean_logp - torch.log1p(-torch.exp(mean_logp).clamp(max=1 - 1e-7))
    ratio = log_odds(chosen_mean_logp) - log_odds(rejected_mean_logp)
    return sft_nll + lam * -F.logsigmoid(ratio).mean(), ratio.mean()


def donor_sentences(texts: list[str]) -> list[tuple[str, frozenset[str]]]:
    """Sentences of ``texts`` that affirm at least one finding (and deny none), with those findings."""
    out = {}
    for text in texts:
        for s in sentences(text):
            positive, negated = mentions(s)
            if positive and not negated and "xxxx" not in s.lower():
                out[s] = frozenset(positive)
    return sorted(out.items())


def rejected_report(text: str, donors: list[tuple[str, frozenset[str]]], kinds: tuple[str, ...],
                    rng: np.random.Generator) -> tuple[str, str]:
    """The chosen report with a finding added (a sentence of another report affirming a finding this one
    lacks, at a random place) or dropped (a sentence affirming a finding removed); returns (text, kind).
    "drop" falls back to "add" when the report affirms no finding."""
    parts = sentences(text)
    kind = kinds[rng.integers(len(kinds))]
    droppable = [i for i, s in enumerate(parts) if extract(s)]
    if kind == "drop" and droppable and len(parts) > 1:
        i = droppable[rng.integers(len(droppable))]
        return " ".join(parts[:i] + parts[i + 1:]), "drop"
    present = extract(text)
    candidates = [s for s, found in donors if not found & present]
    if not candidates:
        raise ValueError("no donor sentence adds a finding this report lacks; give more training reports")
    i = int(rng.integers(len(parts) + 1))
    return " ".join(parts[:i] + [candidates[rng.integers(len(candidates))]] + parts[i:]), "add"


def preference_pairs(config: Config, run: Run, train: list[Example]) -> tuple[list[Example], list[str], list[str]]:
    """The first ``orpo_reports`` training examples with a rejected report each (kinds drawn in the
    stream "rejected-reports"): ``(chosen, rejected texts, kinds)``."""
    pairs = first(train, config.orpo_reports)
    donors = donor_sentences([e.target for e in train])
    rng = run.rng("rejected-reports")
    rejected, kinds = zip(*(rejected_report(e.target, donors, config.rejected, rng) for e in pairs))
    return pairs, list(rejected), list(kinds)


# ---- 3. stage 2: LoRA and training --------------------------------------------------------------

def add_lora(model, rank: int, alpha: int, dropout: float):
    """``model`` with LoRA on all linear layers; LoRA's A matrices are drawn from torch's global
    generator, so callers build it inside ``run.seeded(...)``."""
    config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules="all-linear",
                        task_type="CAUSAL_LM")
    with quiet_known_warnings("peft-gradient-checkpointing"):
        return get_peft_model(model, config)


def decoder(config: Config, run: Run, rank: int, stream: str):
    """``(SmolLM2 with a fresh LoRA adapter of ``rank``, tokenizer)``, the adapter initialised in ``stream``."""
    lm, tokenizer = smollm.load(run.device)
    with run.seeded(stream):
        lm = add_lora(lm, rank, config.lora_alpha, config.lora_dropout)
    return lm, tokenizer


def parameter_counts(model) -> dict[str, float]:
    """Total parameters of the base model, LoRA's trainable ones, and trainable as a percentage of the base
    (the paper's convention: 50M of 3.8B is its 1.32%)."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters()) - trainable
    return {"total": total, "trainable": trainable, "percent": 100 * trainable / total}


def batches(n: int, batch_size: int, gen: torch.Generator) -> list[torch.Tensor]:
    """One epoch of shuffled index batches."""
    return list(torch.randperm(n, generator=gen).split(batch_size))


def train_sft(lm, tokenizer, examples: list[Example], config: Config, run: Run, stream: str,
              desc: str) -> list[float]:
    """One epoch of supervised fine-tuning of the trainable (LoRA) parameters; returns the step losses.
    Batches come from the stream "<stream>/batches", LoRA's dropout from "<stream>/dropout"."""
    optimiser = torch.optim.AdamW([p for p in lm.parameters() if p.requires_grad], lr=config.lr)
    lm.train()
    losses = []
    order = batches(len(examples), config.batch_size, run.torch_generator(f"{stream}/batches"))
    with run.seeded(f"{stream}/dropout"):
        for batch in run.progress(order, desc):
            inputs = {k: v.to(run.device) for k, v in encode(tokenizer, [examples[i] for i in batch],
                                                            max_response=config.max_response_tokens).items()}
            with run.autocast():
                loss = lm(**inputs).loss
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            losses.append(loss.item())
    return losses


def train_orpo(lm, tokenizer, examples: list[Example], rejected: list[str], config: Config, run: Run,
               stream: str = "orpo") -> dict[str, list[float]]:
    """One epoch of ORPO over (chosen = reference, rejected) pairs; chosen and rejected share a forward pass.
    Batches come from the stream "<stream>/batches", LoRA's dropout from "<stream>/dropout"."""
    optimiser = torch.optim.AdamW([p for p in lm.parameters() if p.requires_grad], lr=config.lr)
    lm.train()
    log = {"loss": [], "log_odds_ratio": []}
    order = batches(len(examples), config.batch_size, run.torch_generator(f"{stream}/batches"))
    with run.seeded(f"{stream}/dropout"):
        for batch in run.progress(order, "ORPO"):
            chosen = [examples[i] for i in batch]
            inputs = encode(tokenizer, chosen + chosen, [e.target for e in chosen] + [rejected[i] for i in batch],
                            config.max_response_tokens)  # (2B, T): the chosen rows, then the rejected ones
            inputs = {k: v.to(run.device) for k, v in inputs.items()}
            with run.autocast():
                logits = lm(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).logits
            total, count = token_logps(logits, inputs["labels"])  # (2B,), (2B,)
            mean = total / count.clamp_min(1)
            b = len(batch)
            sft_nll = -total[:b].sum() / count[:b].sum()  # token-averaged NLL of the chosen responses
            loss, ratio = orpo_loss(mean[:b], mean[b:], sft_nll, config.orpo_lambda)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            log["loss"].append(loss.item())
            log["log_odds_ratio"].append(ratio.item())
    return log


# ---- 4. generation and evaluation ---------------------------------------------------------------

@torch.no_grad()
def generate(lm, tokenizer, examples: list[Example], config: Config, run: Run, desc: str) -> list[str]:
    """Greedy decoding of each example's section (left-padded batches)."""
    lm.eval()
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    tokenizer.padding_side = "left"
    out = []
    try:
        for start in run.progress(range(0, len(examples), config.eval_batch_size), desc,
                                  total=-(-len(examples) // config.eval_batch_size)):
            chunk = examples[start:start + config.eval_batch_size]
            # 1. the prompts, left-padded so that every row's response starts at the same position, (B, T)
            inputs = tokenizer([prompt(tokenizer, e) for e in chunk], return_tensors="pt", padding=True,
                               add_special_tokens=False).to(run.device)
            # 2. greedy decoding up to max_new_tokens or <|im_end|>
            with run.autocast():
                ids = lm.generate(**inputs, max_new_tokens=config.max_new_tokens, do_sample=False, eos_token_id=end,
                                  pad_token_id=tokenizer.pad_token_id, repetition_penalty=config.repetition_penalty)
            # 3. the new tokens, (B, T + new) -> (B, new), as text
            out += [t.strip() for t in tokenizer.batch_decode(ids[:, inputs["input_ids"].shape[1]:],
                                                              skip_special_tokens=True)]
    finally:
        tokenizer.padding_side = "right"
    return out


@torch.no_grad()
def mean_nll(lm, tokenizer, examples: list[Example], config: Config, run: Run) -> float:
    """Teacher-forced negative log-likelihood per response token of the reference sections."""
    lm.eval()
    total = count = 0.0
    for start in range(0, len(examples), config.eval_batch_size):
        inputs = {k: v.to(run.device) for k, v in encode(tokenizer, examples[start:start + config.eval_batch_size],
                                                        max_response=config.max_response_tokens).items()}
        with run.autocast():
            logits = lm(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).logits
        s, c = token_logps(logits, inputs["labels"])
        total, count = total - s.sum().item(), count + c.sum().item()
    return total / count


def evaluate(lm, tokenizer, examples: list[Example], config: Config, run: Run, desc: str, bert) -> tuple[dict, list]:
    """(scores, generated texts) of one model on one task; ``bert`` is a loaded ``bertscore_scorer``."""
    texts = generate(lm, tokenizer, examples, config, run, desc)
    refs = [e.target for e in examples]
    scores = caption_scores(refs, texts, meteor=config.meteor)
    scores["bleu_mean"] = float(np.mean([scores[f"bleu{n}"] for n in range(1, 5)]))
    scores["bertscore_f1"] = bertscore(refs, texts, scorer=bert)["f1"]
    scores.update(finding_scores(refs, texts))
    scores["test_nll"] = mean_nll(lm, tokenizer, examples, config, run)
    return scores, texts


# ---- the stages main calls ----------------------------------------------------------------------

def stage2(config: Config, run: Run, train_reports: list, test_reports: list, test_tags: list) -> dict:
    """Stage 2 on one adapter: SFT on FINDINGS, scored; ORPO, scored; then (``continual``) SFT on
    IMPRESSION and FINDINGS scored again. Returns the metrics of these steps as metrics.json holds them."""
    train1 = examples(train_reports, [r.mesh for r in train_reports], "findings")  # trained on the reference tags
    test1 = examples(test_reports, test_tags, "findings")
    sft_train = first(train1, config.train_reports)
    bert = bertscore_scorer(device=run.device)
    lm, tokenizer = decoder(config, run, config.rank, "lora-init")

    sft_losses = train_sft(lm, tokenizer, sft_train, config, run, "sft", "SFT (FINDINGS)")
    sft, sft_texts = evaluate(lm, tokenizer, test1, config, run, "generate after SFT", bert)
    pairs, rejected, kinds = preference_pairs(config, run, train1)
    orpo_log = train_orpo(lm, tokenizer, pairs, rejected, config, run)
    orpo, orpo_texts = evaluate(lm, tokenizer, test1, config, run, "generate after ORPO", bert)

    continual, after_texts = {}, orpo_texts
    if config.continual:  # task 2 (IMPRESSION) learnt by the same adapter, then task 1 scored again
        train2 = first(examples(train_reports, [r.mesh for r in train_reports], "impression"),
                       config.continual_reports)
        task2_loss = train_sft(lm, tokenizer, train2, config, run, "task2", "SFT (IMPRESSION)")
        continual["task2"], _ = evaluate(lm, tokenizer, examples(test_reports, test_tags, "impression"), config,
                                         run, "generate task 2", bert)
        continual["task1_after"], after_texts = evaluate(lm, tokenizer, test1, config, run, "task 1 again", bert)
        continual["task2_loss"] = task2_loss
    del lm
    gc.collect()
    shown = [{"id": e.id, "stage1_tags": e.tags, "reference": e.target, "sft": s, "orpo": o,
              **({"after_task2": a} if config.continual else {})}
             for e, s, o, a in zip(test1, sft_texts, orpo_texts, after_texts)][:5]
    return {"sft": sft, "orpo": orpo, "continual": continual,
            "training": {"sft_loss": sft_losses, **{f"orpo_{k}": v for k, v in orpo_log.items()},
                         "rejected_kinds": dict(Counter(kinds))},
            "sizes": {"train_split": len(train1), "sft": len(sft_train), "orpo_pairs": len(pairs), "test": len(test1)},
            "examples": shown}


def rank_sweep(config: Config, run: Run, train_reports: list, test_reports: list, test_tags: list) -> dict:
    """A fresh adapter per rank (initialised in "sweep-r<rank>/lora-init"), SFT only on ``sweep_reports``
    reports (stream "sweep-r<rank>"), scored on the test set."""
    train = examples(train_reports, [r.mesh for r in train_reports], "findings")
    test = examples(test_reports, test_tags, "findings")
    bert = bertscore_scorer(device=run.device) if config.sweep_generate else None
    out = {}
    for rank in config.sweep_ranks:
        lm, tokenizer = decoder(config, run, rank, f"sweep-r{rank}/lora-init")
        losses = train_sft(lm, tokenizer, first(train, config.sweep_reports), config, run, f"sweep-r{rank}",
                           f"sweep SFT rank {rank}")
        if config.sweep_generate:
            scores, _ = evaluate(lm, tokenizer, test, config, run, f"sweep rank {rank}", bert)
        else:
            scores = {"test_nll": mean_nll(lm, tokenizer, test, config, run)}
        out[rank] = {**scores, **parameter_counts(lm), "final_train_loss": losses[-1]}
        del lm
        gc.collect()
    return out


def parameter_table() -> dict[int, dict]:
    """Our model's parameter counts per LoRA rank (alpha 32, dropout 0.1, as in the official scripts),
    on the meta device: no weights are loaded and nothing is drawn."""

    model_config = AutoConfig.from_pretrained(smollm.converted())
    table = {}
    for rank in TABLE_RANKS:
        with torch.device("meta"):
            base = AutoModelForCausalLM.from_config(model_config)
        table[rank] = parameter_counts(add_lora(base, rank, 32, 0.1))
    return table

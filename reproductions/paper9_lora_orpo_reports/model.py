"""Paper 9's hybrid pipeline, top to bottom: the IU X-ray reports and their split, stage 1 (the
findings a report is written from), stage 2 (a small decoder with LoRA: supervised fine-tuning,
then from that checkpoint either ORPO or as many more SFT steps, the step-matched control), the
held-out preference scores, greedy generation, the scores, the rank sweep and the parameter table.

1. Data: the real IU X-ray reports with FINDINGS and IMPRESSION, split by report.
2. Stage 1 (``stage1.py``): the paper's is PKATransNet, an image model. IU X-ray's images are not
   obtainable offline, so by default stage 1 is simulated: each test report's reference MeSH tags
   with controlled errors (missed and false tags); with the images, a MONAI DenseNet-121.
3. Stage 2: the prompt is a user turn in SmolLM2's chat format; the loss covers the response tokens
   only (the report section and the closing ``<|im_end|>``). Training is a plain loop over LoRA
   parameters: supervised fine-tuning (SFT), then ORPO (Hong et al. 2024), whose loss is
   implemented here:
       L = L_SFT(chosen) + lambda * -log sigmoid(log odds(chosen) - log odds(rejected)),
       log odds(y) = log P(y|x) - log(1 - P(y|x)),  log P(y|x) = mean over response tokens of log p(token)

   (the length-normalised likelihood, as in the ORPO paper and trl's ORPOTrainer). Rejected
   reports are abnormal references with a finding added or dropped, by rule. The control continues
   SFT from the same checkpoint on the chosen reports, on the same batches, for as many steps.
4. Evaluation: on held-out pairs, the preference accuracy (chosen likelier than rejected, length-
   normalised) and the mean log odds ratio; greedy reports scored with BLEU-1..4, METEOR, ROUGE-L,
   CIDEr, BERTScore (MiniLM-L6), the finding-level scores of ``findings.py`` and the test NLL.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from peft import LoraConfig, get_peft_model
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

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
    return train, test


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
    """The user turn alone in SmolLM2's chat format (its template would add a default system prompt of 20
    tokens, a sixth of a training sequence on a CPU)."""
    return (f"<|im_start|>user\nChest X-ray MeSH tags: {example.tags}.\nWrite the {SECTIONS[example.task]} "
            f"section.<|im_end|>\n<|im_start|>assistant\n")


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


def log_odds(mean_logp: torch.Tensor) -> torch.Tensor:
    """ORPO's log odds of a response from its length-normalised log-likelihood: log p - log(1 - p), with
    p = exp(mean_logp) < 1."""
    return mean_logp - torch.log1p(-torch.exp(mean_logp).clamp(max=1 - 1e-7))


def orpo_loss(chosen_mean_logp: torch.Tensor, rejected_mean_logp: torch.Tensor, sft_nll: torch.Tensor,
              lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    """ORPO's loss from the length-normalised log-likelihoods (B,) of the chosen and rejected responses and
    the chosen responses' NLL; returns (loss, mean log odds ratio)."""
    ratio = log_odds(chosen_mean_logp) - log_odds(rejected_mean_logp)
    return sft_nll + lam * -F.logsigmoid(ratio).mean(), ratio.mean()


def preference_accuracy(chosen_mean_logp, rejected_mean_logp) -> float:
    """The share of pairs whose chosen response has the higher length-normalised log-likelihood (a tie
    counts as a miss)."""
    chosen, rejected = np.asarray(chosen_mean_logp, float), np.asarray(rejected_mean_logp, float)
    return float(np.mean(chosen > rejected))


def mean_log_odds_ratio(chosen_mean_logp, rejected_mean_logp) -> float:
    """The mean over pairs of log odds(chosen) - log odds(rejected), the quantity ORPO's loss raises."""
    chosen, rejected = (torch.as_tensor(np.asarray(v, float), dtype=torch.float64)
                        for v in (chosen_mean_logp, rejected_mean_logp))
    return float((log_odds(chosen) - log_odds(rejected)).mean())


def preference_scores(chosen_mean_logp, rejected_mean_logp, kinds: list[str]) -> dict:
    """Preference accuracy and mean log odds ratio over the pairs, and per kind of rejected report."""
    chosen, rejected = np.asarray(chosen_mean_logp, float), np.asarray(rejected_mean_logp, float)
    out = {"accuracy": preference_accuracy(chosen, rejected), "log_odds_ratio": mean_log_odds_ratio(chosen, rejected),
           "chosen_mean_logp": float(chosen.mean()), "rejected_mean_logp": float(rejected.mean())}
    for kind in sorted(set(kinds)):
        pick = np.asarray(kinds) == kind
        out[kind] = {"accuracy": preference_accuracy(chosen[pick], rejected[pick]),
                     "log_odds_ratio": mean_log_odds_ratio(chosen[pick], rejected[pick]), "pairs": int(pick.sum())}
    return out


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


@dataclass(frozen=True)
class Pairs:
    """Preference pairs: the chosen examples (the reference reports), the rejected texts and their kinds."""
    chosen: list[Example]
    rejected: list[str]
    kinds: list[str]

    def __len__(self):
        return len(self.chosen)


def response_tokens(tokenizer, text: str) -> int:
    """The tokens of ``text`` as a response (its closing ``<|im_end|>`` not counted)."""
    return len(tokenizer(text, add_special_tokens=False).input_ids)


def preference_pairs(candidates: list[Example], donor_texts: list[str], n: int, config: Config,
                     rng: np.random.Generator, tokenizer=None) -> Pairs:
    """Up to ``n`` (0: all) pairs from ``candidates`` in order: abnormal reports only (those affirming at least
    one finding), each with a rejected report (kinds drawn from ``rng``), kept only when chosen and rejected
    are at most ``config.pair_tokens`` tokens (with ``tokenizer``; without one nothing is cut)."""
    donors = donor_sentences(donor_texts)
    chosen, rejected, kinds = [], [], []
    for example in candidates:
        if n and len(chosen) == n:
            break
        if not extract(example.target):
            continue
        text, kind = rejected_report(example.target, donors, config.rejected, rng)
        if tokenizer is not None and max(response_tokens(tokenizer, t) for t in (example.target, text)) > \
                config.pair_tokens:
            continue
        chosen.append(example)
        rejected.append(text)
        kinds.append(kind)
    return Pairs(chosen, rejected, kinds)


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


def train_orpo(lm, tokenizer, pairs: Pairs, config: Config, run: Run, stream: str) -> dict[str, list[float]]:
    """One epoch of ORPO over (chosen = reference, rejected) pairs; chosen and rejected share a forward pass.
    Batches come from the stream "<stream>/batches", LoRA's dropout from "<stream>/dropout" (the same
    streams as ``train_sft`` on the chosen reports, so a step-matched SFT control sees the same batches)."""
    optimiser = torch.optim.AdamW([p for p in lm.parameters() if p.requires_grad], lr=config.lr)
    lm.train()
    log = {"loss": [], "log_odds_ratio": []}
    order = batches(len(pairs), config.batch_size, run.torch_generator(f"{stream}/batches"))
    with run.seeded(f"{stream}/dropout"):
        for batch in run.progress(order, "ORPO"):
            chosen = [pairs.chosen[i] for i in batch]
            inputs = encode(tokenizer, chosen + chosen, [e.target for e in chosen] + [pairs.rejected[i] for i in batch],
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


@torch.no_grad()
def pair_logps(lm, tokenizer, pairs: Pairs, config: Config, run: Run) -> tuple[np.ndarray, np.ndarray]:
    """Teacher-forced length-normalised log-likelihoods (mean log p per response token, the closing
    ``<|im_end|>`` included) of the chosen and of the rejected responses: (N,), (N,)."""
    lm.eval()
    texts = [e.target for e in pairs.chosen] + pairs.rejected
    examples = pairs.chosen + pairs.chosen
    out = []
    for start in range(0, len(texts), config.eval_batch_size):
        inputs = encode(tokenizer, examples[start:start + config.eval_batch_size],
                        texts[start:start + config.eval_batch_size], config.max_response_tokens)
        inputs = {k: v.to(run.device) for k, v in inputs.items()}
        with run.autocast():
            logits = lm(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).logits
        total, count = token_logps(logits, inputs["labels"])  # (B,), (B,)
        out.append((total / count.clamp_min(1)).cpu().numpy())
    means = np.concatenate(out)  # (2N,): the chosen, then the rejected
    return means[:len(pairs)], means[len(pairs):]


def preference(lm, tokenizer, pairs: Pairs, config: Config, run: Run) -> dict:
    """``preference_scores`` of one model on held-out pairs."""
    return preference_scores(*pair_logps(lm, tokenizer, pairs, config, run), pairs.kinds)


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

@dataclass(frozen=True)
class Data:
    """What every seed trains and is scored on: SFT reports, ORPO's training pairs, the held-out pairs (test
    reports, reference tags) and the test reports generated from their stage-1 tags."""
    sft: list[Example]
    orpo: Pairs
    heldout: Pairs
    generate: list[Example]
    generate_reports: list  # the test reports of ``generate``
    train_reports: list


def stage2_data(config: Config, run: Run, train_reports: list, test_reports: list, test_tags: list) -> Data:
    """The training and held-out sets of stage 2, drawn once for every seed: rejected reports of the
    training pairs in the stream "rejected-reports", of the held-out pairs in "heldout-rejected" (donor
    sentences from the training reports in both). Held-out pairs are prompted with the reference tags, so
    they test stage 2 alone; the generated reports start from stage 1's tags."""
    train = examples(train_reports, [r.mesh for r in train_reports], "findings")  # trained on the reference tags
    tokenizer = smollm_tokenizer()
    donors = [e.target for e in train]
    orpo = preference_pairs(train, donors, config.orpo_reports, config, run.rng("rejected-reports"), tokenizer)
    heldout = preference_pairs(examples(test_reports, [r.mesh for r in test_reports], "findings"), donors,
                               config.heldout_pairs, config, run.rng("heldout-rejected"), tokenizer)
    abnormal = [i for i, r in enumerate(test_reports) if extract(r.findings)]
    pick = abnormal[:config.test_reports or None]
    generate_on = examples([test_reports[i] for i in pick], [test_tags[i] for i in pick], "findings")
    return Data(first(train, config.train_reports), orpo, heldout, generate_on, [test_reports[i] for i in pick],
                train_reports)


def smollm_tokenizer():
    """SmolLM2's tokenizer alone (to count tokens before any model is loaded)."""
    return AutoTokenizer.from_pretrained(smollm.converted())


def bert_scorer(config: Config, run: Run):
    """The BERTScore (MiniLM-L6) scorer when reports are generated, else None."""
    return bertscore_scorer(device=run.device) if config.generate or config.sweep_generate else None


def base_preference(config: Config, run: Run, data: Data) -> dict:
    """The untrained model's preference scores on the held-out pairs (a fresh adapter's B is zero, so this
    is every seed's model before training)."""
    lm, tokenizer = smollm.load(run.device)
    scores = preference(lm, tokenizer, data.heldout, config, run)
    del lm
    gc.collect()
    return scores


def trainable_state(lm) -> dict[str, torch.Tensor]:
    """A copy of the trainable (LoRA) parameters, to branch two trainings from one checkpoint."""
    return {name: p.detach().clone() for name, p in lm.named_parameters() if p.requires_grad}


def restore(lm, state: dict[str, torch.Tensor]) -> None:
    with torch.no_grad():
        for name, p in lm.named_parameters():
            if name in state:
                p.copy_(state[name])


def trial(config: Config, run: Run, data: Data, bert) -> dict:
    """One seed: a fresh adapter ("lora-init"), SFT on the FINDINGS reports ("sft"), then from that checkpoint
    two branches of exactly as many steps on the same batches (stream "extra"): ORPO on the training pairs,
    and the step-matched control, SFT on their chosen reports. Each is scored on the held-out pairs and (when
    ``generate``) on generated reports; our addition (``continual``) then trains the ORPO adapter on
    IMPRESSION and scores FINDINGS again."""
    lm, tokenizer = decoder(config, run, config.rank, "lora-init")
    out = {"sft_loss": train_sft(lm, tokenizer, data.sft, config, run, "sft", "SFT (FINDINGS)"), "preference": {}}
    checkpoint = trainable_state(lm)
    texts = {}

    orpo_log = train_orpo(lm, tokenizer, data.orpo, config, run, "extra")
    out["orpo_loss"], out["orpo_log_odds_ratio"] = orpo_log["loss"], orpo_log["log_odds_ratio"]
    out["preference"]["orpo"] = preference(lm, tokenizer, data.heldout, config, run)
    if config.generate:
        out["orpo"], texts["orpo"] = evaluate(lm, tokenizer, data.generate, config, run, "generate after ORPO", bert)
    after_orpo = trainable_state(lm) if config.continual else None

    restore(lm, checkpoint)
    out["control_loss"] = train_sft(lm, tokenizer, data.orpo.chosen, config, run, "extra",
                                    "SFT control (as many steps)")
    if len(out["control_loss"]) != len(out["orpo_loss"]):
        raise RuntimeError("the SFT control must run as many steps as ORPO")
    out["preference"]["control"] = preference(lm, tokenizer, data.heldout, config, run)
    if config.generate:
        out["control"], texts["control"] = evaluate(lm, tokenizer, data.generate, config, run,
                                                    "generate after the SFT control", bert)

    if config.continual:  # our addition: task 2 (IMPRESSION) learnt by the ORPO adapter, then task 1 again
        restore(lm, after_orpo)
        train2 = first(examples(data.train_reports, [r.mesh for r in data.train_reports], "impression"),
                       config.continual_reports)
        out["task2_loss"] = train_sft(lm, tokenizer, train2, config, run, "task2", "SFT (IMPRESSION)")
        task2 = [Example(e.id, e.tags, report.impression, "impression")
                 for e, report in zip(data.generate, data.generate_reports)]
        out["continual"] = {"task2": evaluate(lm, tokenizer, task2, config, run, "generate task 2", bert)[0],
                            "task1_after": evaluate(lm, tokenizer, data.generate, config, run, "task 1 again", bert)[0]}
    del lm
    gc.collect()
    out["examples"] = [{"id": e.id, "stage1_tags": e.tags, "reference": e.target, "orpo": o, "control": c}
                       for e, o, c in zip(data.generate, texts.get("orpo", []), texts.get("control", []))][:5]
    return out


def rank_sweep(config: Config, run: Run, data: Data, bert) -> dict:
    """A fresh adapter per rank (initialised in "sweep-r<rank>/lora-init"), SFT only on ``sweep_reports``
    reports (stream "sweep-r<rank>"), scored on the generated test reports."""
    train = examples(data.train_reports, [r.mesh for r in data.train_reports], "findings")
    test = data.generate
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

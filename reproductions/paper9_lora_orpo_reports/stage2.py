"""Stage 2: a small instruction-tuned decoder with LoRA writes a report section from stage 1's tags.

Prompts use the tokenizer's chat template; the loss covers the response tokens only (the report
section and the closing ``<|im_end|>``). Training is a plain loop over LoRA parameters: supervised
fine-tuning (SFT), then ORPO (Hong et al. 2024), whose loss is implemented here:

    L = L_SFT(chosen) + lambda * -log sigmoid(log odds(chosen) - log odds(rejected)),
    log odds(y) = log P(y|x) - log(1 - P(y|x)),  log P(y|x) = mean over response tokens of log p(token)

(the length-normalised likelihood, as in the ORPO paper and trl's ORPOTrainer).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from reproductions.paper9_lora_orpo_reports.findings import extract, sentences

SYSTEM = "You are a radiologist writing chest X-ray reports."
SECTIONS = {"findings": "FINDINGS", "impression": "IMPRESSION"}


@dataclass(frozen=True)
class Example:
    id: str
    tags: str  # stage 1's output as prompt text
    target: str  # the reference section
    task: str  # "findings" or "impression"


def prompt(tokenizer, example: Example) -> str:
    user = (f"Findings predicted from the chest X-ray (MeSH tags): {example.tags}.\n"
            f"Write the {SECTIONS[example.task]} section of the report.")
    return tokenizer.apply_chat_template([{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}],
                                         tokenize=False, add_generation_prompt=True)


def encode(tokenizer, examples: list[Example], responses: list[str] | None = None, max_response: int = 128):
    """Right-padded ``input_ids``, ``attention_mask`` and ``labels`` (-100 outside the response tokens)."""
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
    labels = labels[:, 1:]
    logits = logits[:, :-1].float()
    mask = labels != -100
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


# ---- rejected reports ---------------------------------------------------------------------------

def donor_sentences(texts: list[str]) -> list[tuple[str, frozenset[str]]]:
    """Sentences of ``texts`` that affirm at least one finding (and deny none), with those findings."""
    from reproductions.paper9_lora_orpo_reports.findings import mentions

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


# ---- LoRA and training ----------------------------------------------------------------------------

def add_lora(model, rank: int, alpha: int, dropout: float):
    from peft import LoraConfig, get_peft_model

    return get_peft_model(model, LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules="all-linear",
                                            task_type="CAUSAL_LM"))


def parameter_counts(model) -> dict[str, float]:
    """Total parameters of the base model, LoRA's trainable ones, and trainable as a percentage of the base
    (the paper's convention: 50M of 3.8B is its 1.32%)."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters()) - trainable
    return {"total": total, "trainable": trainable, "percent": 100 * trainable / total}


def batches(n: int, batch_size: int, gen: torch.Generator) -> list[torch.Tensor]:
    """One epoch of shuffled index batches."""
    return list(torch.randperm(n, generator=gen).split(batch_size))


def train_sft(model, tokenizer, examples: list[Example], lr: float, batch_size: int, max_response: int, run,
              gen: torch.Generator, desc: str) -> list[float]:
    """One epoch of supervised fine-tuning of the trainable (LoRA) parameters; returns the step losses."""
    optimiser = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    model.train()
    losses = []
    for batch in run.progress(batches(len(examples), batch_size, gen), desc):
        inputs = {k: v.to(run.device) for k, v in encode(tokenizer, [examples[i] for i in batch],
                                                        max_response=max_response).items()}
        with run.autocast():
            loss = model(**inputs).loss
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    return losses


def train_orpo(model, tokenizer, examples: list[Example], rejected: list[str], lam: float, lr: float,
               batch_size: int, max_response: int, run, gen: torch.Generator) -> dict[str, list[float]]:
    """One epoch of ORPO over (chosen = reference, rejected) pairs; chosen and rejected share a forward pass."""
    optimiser = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    model.train()
    log = {"loss": [], "log_odds_ratio": []}
    for batch in run.progress(batches(len(examples), batch_size, gen), "ORPO"):
        chosen = [examples[i] for i in batch]
        inputs = encode(tokenizer, chosen + chosen, [e.target for e in chosen] + [rejected[i] for i in batch],
                        max_response)
        inputs = {k: v.to(run.device) for k, v in inputs.items()}
        with run.autocast():
            logits = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).logits
        total, count = token_logps(logits, inputs["labels"])
        mean = total / count.clamp_min(1)
        b = len(batch)
        sft_nll = -total[:b].sum() / count[:b].sum()  # token-averaged NLL of the chosen responses
        loss, ratio = orpo_loss(mean[:b], mean[b:], sft_nll, lam)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        log["loss"].append(loss.item())
        log["log_odds_ratio"].append(ratio.item())
    return log


# ---- inference --------------------------------------------------------------------------------------

@torch.no_grad()
def generate(model, tokenizer, examples: list[Example], max_new_tokens: int, batch_size: int, repetition_penalty: float,
             run, desc: str) -> list[str]:
    """Greedy decoding of each example's section (left-padded batches)."""
    model.eval()
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    tokenizer.padding_side = "left"
    out = []
    try:
        for start in run.progress(range(0, len(examples), batch_size), desc,
                                  total=-(-len(examples) // batch_size)):
            chunk = examples[start:start + batch_size]
            inputs = tokenizer([prompt(tokenizer, e) for e in chunk], return_tensors="pt", padding=True,
                               add_special_tokens=False).to(run.device)
            with run.autocast():
                ids = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=end,
                                     pad_token_id=tokenizer.pad_token_id, repetition_penalty=repetition_penalty)
            out += [t.strip() for t in tokenizer.batch_decode(ids[:, inputs["input_ids"].shape[1]:],
                                                              skip_special_tokens=True)]
    finally:
        tokenizer.padding_side = "right"
    return out


@torch.no_grad()
def mean_nll(model, tokenizer, examples: list[Example], batch_size: int, max_response: int, run) -> float:
    """Teacher-forced negative log-likelihood per response token of the reference sections."""
    model.eval()
    total = count = 0.0
    for start in range(0, len(examples), batch_size):
        inputs = {k: v.to(run.device) for k, v in encode(tokenizer, examples[start:start + batch_size],
                                                        max_response=max_response).items()}
        with run.autocast():
            logits = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).logits
        s, c = token_logps(logits, inputs["labels"])
        total, count = total - s.sum().item(), count + c.sum().item()
    return total / count

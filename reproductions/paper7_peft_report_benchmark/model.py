"""Paper 7's benchmark, top to bottom: the patches, the three encoder families, the LoRA-tuned
decoder with image prefix tokens, its training, greedy generation and the text scores.

1. Data: labelled patches of four modalities with template reports (``patches.py``), split into
   training and test patches per modality, each draw from a named stream of the run.
2. Encoders (frozen while the decoder trains; their features are computed once):
   - natural-domain pretrained: the standard FID Inception-v3 (ImageNet weights), 2048-d pool
     features through the shared ``FidFeatures``;
   - modality-specific: the shared ``SmallCNN`` (four stride-2 blocks) trained here on one
     modality's patch labels;
   - multi-modality "foundation": the same CNN trained here on all four modalities' labels.
3. Decoder: SmolLM2-135M-Instruct with peft LoRA on its attention projections. An image feature
   (d) goes through LayerNorm and a linear map to ``prefix_tokens`` embeddings (each rescaled to
   the RMS of the model's token embeddings); the sequence is [image prefix] [prompt] [report], and
   the loss is the report tokens' cross-entropy. LoRA and the projection train together; the
   language model's own weights stay frozen. Every experiment starts from the same LoRA
   initialisation, and the three families of one (split, modality) share the projection's
   initialisation and the batch order.
4. Evaluation: greedy reports for the test patches, scored with BLEU-1, ROUGE-L, CIDEr, METEOR
   and BERTScore (MiniLM-L6).
"""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from peft import LoraConfig, get_peft_model
from pycocoevalcap.meteor.meteor import Meteor
from torch import nn

from reproductions.common import smollm
from reproductions.common.classifier import embed, predict, train_cnn
from reproductions.common.quiet import quiet_known_warnings
from reproductions.metrics import text
from reproductions.metrics.images import FidFeatures
from reproductions.run import Run

from .patches import ModalitySet, load_modality, split

if TYPE_CHECKING:
    from . import Config

FAMILIES = ("natural", "specific", "foundation")
SPLITS = ("in-modality", "cross-modality")
PROMPT = "Report:"


# ---- 1. data ------------------------------------------------------------------------------------

def load_patches(config: Config, run: Run) -> tuple[dict[str, ModalitySet], dict[str, ModalitySet]]:
    """``(train, test)``, each ``{modality: ModalitySet}``: where the patches are cut, which closing
    phrase each report gets and which patches are held out come from streams named by the modality."""
    train, test = {}, {}
    for m in run.progress(config.modalities, "load patches"):
        patches = load_modality(m, config.patches_per_class, config.image_size, run.rng(f"{m}-patches"),
                                run.rng(f"{m}-closings"))
        train[m], test[m] = split(patches, config.test_per_modality, run.rng(f"{m}-split"))
    return train, test


def experiments(config: Config) -> list[tuple[str, str, str, tuple[str, ...], str]]:
    """(split, family, test modality, training modalities, encoder) for every experiment. In the
    cross-modality split the modality-specific encoder is the next training modality's."""
    mods = config.modalities
    plan = []
    for split_name in config.splits:
        for j, m in enumerate(mods):
            trained = (m,) if split_name == "in-modality" else tuple(o for o in mods if o != m)
            source = m if split_name == "in-modality" else mods[(j + 1) % len(mods)]
            for family in FAMILIES:
                plan.append((split_name, family, m, trained, f"specific:{source}" if family == "specific" else family))
    return plan


# ---- 2. encoders --------------------------------------------------------------------------------

def encode(config: Config, run: Run, train: dict, test: dict) -> tuple[dict, dict]:
    """Features ``{encoder: {modality: (train (N, d), test (M, d))}}`` and the CNNs' test accuracies.

    Encoders: "natural" (2048-d), "foundation" and "specific:<modality>" (``cnn_features``-d)."""
    features, accuracy = {}, {}
    inception = FidFeatures(run.device, batch_size=16)
    features["natural"] = {m: (inception(train[m].images, f"{m}-train"), inception(test[m].images, f"{m}-test"))
                           for m in run.progress(config.modalities, "Inception features")}
    del inception
    cnn = dict(epochs=config.cnn_epochs, lr=config.cnn_lr, batch_size=32, downsample="stride",
               widths=(config.cnn_width, 2 * config.cnn_width, 4 * config.cnn_width, 4 * config.cnn_width),
               feature_dim=config.cnn_features)

    def features_of(net) -> dict:
        return {o: (embed(net, train[o].images, run), embed(net, test[o].images, run)) for o in config.modalities}

    for m in run.progress(config.modalities, "modality-specific CNNs"):
        net = train_cnn(train[m].images, train[m].labels, len(train[m].classes), run, f"cnn-{m}", **cnn)
        features[f"specific:{m}"] = features_of(net)
        accuracy[f"specific:{m}"] = float((predict(net, test[m].images, run) == test[m].labels).mean())
    # the foundation CNN classifies every modality's classes: modality i's labels follow the earlier ones'
    offsets = dict(zip(config.modalities, np.cumsum([0] + [len(train[m].classes) for m in config.modalities])))
    images = np.concatenate([train[m].images for m in config.modalities])
    labels = np.concatenate([train[m].labels + offsets[m] for m in config.modalities])
    net = train_cnn(images, labels, sum(len(train[m].classes) for m in config.modalities), run, "cnn-foundation",
                    **cnn)
    features["foundation"] = features_of(net)
    accuracy["foundation"] = {m: float((predict(net, test[m].images, run) == test[m].labels + offsets[m]).mean())
                              for m in config.modalities}
    return features, accuracy


# ---- 3. decoder ---------------------------------------------------------------------------------

class Prefix(nn.Module):
    """Image feature (B, d) -> (B, prefix_tokens, hidden) embeddings at the scale of token embeddings."""

    def __init__(self, feature_dim: int, prefix_tokens: int, hidden: int, scale: float):
        super().__init__()
        self.norm = nn.LayerNorm(feature_dim)
        self.proj = nn.Linear(feature_dim, prefix_tokens * hidden)
        self.shape = (prefix_tokens, hidden)
        self.scale = scale

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        z = self.proj(self.norm(features)).view(len(features), *self.shape)  # (B, P * H) -> (B, P, H)
        return F.layer_norm(z, self.shape[1:]) * self.scale


class ReportDecoder:
    """SmolLM2 with LoRA adapters (initialised in the stream "lora-init"), reset to that
    initialisation before each experiment."""

    def __init__(self, model, tokenizer, rank: int, alpha: int, run: Run):
        self.tokenizer = tokenizer
        self.device = run.device
        config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=0.0,
                            target_modules=["q_proj", "k_proj", "v_proj", "o_proj"])
        with run.seeded("lora-init"), quiet_known_warnings("peft-gradient-checkpointing"):
            self.lm = get_peft_model(model, config).eval()  # LoRA's A drawn, B zero; eval: no dropout anywhere
        self.lora = [p for n, p in self.lm.named_parameters() if "lora_" in n]
        self.initial = [p.detach().clone() for p in self.lora]
        self.embed = self.lm.get_input_embeddings()
        self.hidden = self.embed.weight.shape[1]
        self.scale = float(self.embed.weight.detach().pow(2).mean(dim=1).sqrt().mean())
        self.prompt = torch.tensor(tokenizer(PROMPT, add_special_tokens=False)["input_ids"], device=self.device)

    def reset(self) -> None:
        with torch.no_grad():
            for p, p0 in zip(self.lora, self.initial):
                p.copy_(p0)

    def _context(self, prefix: Prefix, features: torch.Tensor) -> torch.Tensor:
        """(B, prefix_tokens + prompt, hidden): the image prefix followed by the prompt's embeddings."""
        image = prefix(features.to(self.device))
        prompt = self.embed(self.prompt)[None].expand(len(features), -1, -1)  # (T, H) -> (1, T, H) -> (B, T, H)
        return torch.cat([image, prompt.to(image.dtype)], dim=1)

    def loss(self, prefix: Prefix, features: torch.Tensor, reports: list[str]) -> torch.Tensor:
        """Cross-entropy of the report tokens (and the closing end-of-sequence token) after the context."""
        tok = self.tokenizer([r + self.tokenizer.eos_token for r in reports], add_special_tokens=False,
                             return_tensors="pt", padding=True)
        ids, mask = tok["input_ids"].to(self.device), tok["attention_mask"].to(self.device)  # (B, R)
        context = self._context(prefix, features)  # (B, C, H)
        inputs = torch.cat([context, self.embed(ids)], dim=1)  # (B, C + R, H)
        attention = torch.cat([torch.ones(context.shape[:2], dtype=mask.dtype, device=self.device), mask], dim=1)
        labels = torch.cat([torch.full(context.shape[:2], -100, device=self.device), ids.masked_fill(mask == 0, -100)],
                           dim=1)  # the context and the padding are not scored
        return self.lm(inputs_embeds=inputs, attention_mask=attention, labels=labels).loss

    def train(self, features: torch.Tensor, reports: list[str], prefix_tokens: int, steps: int, batch_size: int,
              lr: float, run: Run, stream: str) -> tuple[Prefix, list[float]]:
        """Reset LoRA, train it with a new projection on (features, reports); returns it and the losses.
        The projection is initialised in the stream "<stream>/init", the batches drawn from "<stream>/batches"."""
        self.reset()
        with run.seeded(f"{stream}/init"):
            prefix = Prefix(features.shape[1], prefix_tokens, self.hidden, self.scale).to(self.device)
        gen = run.torch_generator(f"{stream}/batches")
        optimiser = torch.optim.AdamW([*self.lora, *prefix.parameters()], lr=lr, weight_decay=0.0)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda s: min(1.0, (s + 1) / max(1, steps // 10)))
        losses, order = [], torch.empty(0, dtype=torch.long)
        for _ in range(steps):
            if len(order) < batch_size:  # epochs of a fresh permutation, batches never straddle two
                order = torch.randperm(len(features), generator=gen)
            batch, order = order[:batch_size], order[batch_size:]
            with run.autocast():
                loss = self.loss(prefix, features[batch], [reports[i] for i in batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            losses.append(float(loss.detach()))
        return prefix.eval(), losses

    @torch.no_grad()
    def generate(self, prefix: Prefix, features: torch.Tensor, max_new_tokens: int, run: Run,
                 batch_size: int = 32) -> list[str]:
        """Greedy reports, one per feature row (every context has the same length: no padding)."""
        out = []
        for chunk in features.split(batch_size):
            with run.autocast():
                # 1. the context: image prefix tokens, then the prompt, (B, C, H)
                context = self._context(prefix, chunk)
                # 2. greedy decoding after the context, up to max_new_tokens or the end-of-sequence token
                ids = self.lm.generate(inputs_embeds=context,
                                       attention_mask=torch.ones(context.shape[:2], dtype=torch.long, device=self.device),
                                       max_new_tokens=max_new_tokens, do_sample=False,
                                       pad_token_id=self.tokenizer.pad_token_id, eos_token_id=self.tokenizer.eos_token_id)
            # 3. the new tokens as text (generate from embeddings returns only the new ones)
            out += [t.strip() for t in self.tokenizer.batch_decode(ids, skip_special_tokens=True)]
        return out


# ---- 4. evaluation ------------------------------------------------------------------------------

class Scorer:
    """Scores groups of (references, candidates): BLEU-1..4, ROUGE-L and CIDEr from
    ``metrics.text.caption_scores``; METEOR from the same pycocoevalcap jar, one Java process for the
    whole run (``text.meteor_score`` starts one per call, a few seconds each on a small CPU); BERTScore
    F1 with the bundled MiniLM-L6 through one ``text.bertscore_scorer``, so that the model loads once."""

    def __init__(self, device):
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


def benchmark(config: Config, run: Run, train: dict, test: dict, features: dict) -> tuple[dict, list, dict]:
    """Every experiment of the plan: a decoder trained on the training modalities' reports, greedy reports
    for the test modality's patches, their scores. Returns ``{split: {family: {modality: scores}}}``, one
    record per experiment (losses and examples) and the generated texts by (split, family, modality)."""

    model, tokenizer = smollm.load(run.device)
    decoder = ReportDecoder(model, tokenizer, config.lora_rank, config.lora_alpha, run)
    scorer = Scorer(run.device)
    scores = {split_name: {f: {} for f in FAMILIES} for split_name in config.splits}
    details, generated = [], {}
    try:
        for split_name, family, m, trained, encoder in run.progress(experiments(config), "train and generate"):
            feats = torch.cat([features[encoder][o][0] for o in trained])  # (N, d): every training modality's
            reports = [r for o in trained for r in train[o].reports]
            # the stream is shared by the three families of one (split, modality): same projection init and batches
            prefix, losses = decoder.train(feats, reports, config.prefix_tokens, config.steps, config.batch_size,
                                           config.lr, run, f"decoder-{split_name}-{m}")
            texts = decoder.generate(prefix, features[encoder][m][1], config.max_new_tokens, run)
            scores[split_name][family][m] = scorer.score(list(test[m].reports), texts)
            generated[(split_name, family, m)] = texts
            details.append({"split": split_name, "family": family, "test": m, "trained_on": list(trained),
                            "encoder": encoder, "first_loss": losses[0], "last_loss": losses[-1],
                            "examples": [{"reference": r, "generated": t}
                                         for r, t in zip(test[m].reports[:config.examples], texts)]})
    finally:
        scorer.close()
    return scores, details, generated

"""Paper 7's benchmark, top to bottom: the patches, the three encoder families, the LoRA-tuned
decoder with image prefix tokens, its training, greedy generation and the text scores, for one seed
(``trial``; ``__init__.main`` runs it for every seed).

1. Data: labelled patches of the configured modalities with template reports (``patches.py``), split
   into training and test patches per modality, each draw from a named stream of the seed.
2. Encoders, all stand-ins trained or chosen here (not the paper's pretrained models), frozen while
   the decoder trains; their features are computed once per seed:
   - natural-domain pretrained: the standard FID Inception-v3 (ImageNet weights), 2048-d pool
     features through the shared ``FidFeatures``; it has seen none of these modalities;
   - modality-specific: the shared ``SmallCNN`` (four stride-2 blocks) trained here on one
     modality's patch labels ("specific:<modality>");
   - multi-modality "foundation": the same CNN trained here on every modality's labels
     ("foundation"), and, for the cross-modality split, on every modality's but the held-out one's
     ("foundation-without:<modality>").
3. Decoder: SmolLM2-135M-Instruct with peft
   LoRA on its attention projections. An image feature (d) goes through LayerNorm and a linear map to
   ``prefix_tokens`` embeddings (each rescaled to the RMS of the model's token embeddings); the
   sequence is [image prefix] [prompt] [report], and the loss is the report tokens' cross-entropy.
   LoRA and the projection train together; the language model's own weights stay frozen. Every
   decoder is trained on the test modality's own training (feature, report) pairs, so it always
   sees the words of the modality it is tested on; what the splits change is the encoder:
   - in-modality: the modality-specific encoder is the test modality's own, the foundation one saw
     every modality;
   - cross-modality: no encoder has seen the test modality's images (hold out images, not words):
     the modality-specific encoder is the next modality's, the foundation one was trained without the
     test modality, and the natural-domain one is the same Inception (that experiment is the
     in-modality one, run once and counted in both splits).
   Every experiment starts from the same LoRA initialisation; every family of one test modality
   shares the projection's initialisation and the batch order (streams named by the modality).
4. Evaluation: greedy reports for the test patches, scored with BLEU-1, ROUGE-L, CIDEr, METEOR
   and BERTScore (MiniLM-L6); the floor is the modality's most common training report written for
   every test patch.
"""

from __future__ import annotations

import shutil
from collections import Counter
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


def experiments(config: Config) -> list[tuple[str, str, str, str]]:
    """(split, family, test modality, encoder) for every experiment; the decoder always trains on the
    test modality's own training pairs. In-modality: the test modality's own specific CNN and the
    foundation CNN of every modality. Cross-modality: encoders that never saw the test modality's
    images: the next modality's specific CNN, the foundation CNN trained without the test modality and
    the Inception (the in-modality experiment's encoder, so ``benchmark`` runs that one once)."""
    mods = config.modalities
    plan = []
    for split_name in config.splits:
        for j, m in enumerate(mods):
            if config.decode_on and m not in config.decode_on:
                continue
            own = split_name == "in-modality"
            encoders = {"natural": "natural",
                        "specific": f"specific:{m if own else mods[(j + 1) % len(mods)]}",
                        "foundation": "foundation" if own else f"foundation-without:{m}"}
            plan += [(split_name, family, m, encoders[family]) for family in FAMILIES]
    return plan


def encoder_saw(encoder: str, modalities: tuple[str, ...]) -> list[str]:
    """The modalities whose training images (and labels) an encoder was trained on."""
    if encoder == "natural":
        return []
    kind, _, m = encoder.partition(":")
    if kind == "specific":
        return [m]
    return [o for o in modalities if o != m]  # "foundation" (m empty): all; "foundation-without:m": all but m


def most_common_report(reports) -> str:
    """The trivial floor: the modality's most frequent training report (the first seen among ties)."""
    return Counter(reports).most_common(1)[0][0]


# ---- 2. encoders --------------------------------------------------------------------------------

def encode(config: Config, run: Run, train: dict, test: dict, inception: FidFeatures) -> tuple[dict, dict]:
    """Features ``{encoder: {modality: (train (N, d), test (M, d))}}`` and the CNNs' test accuracies.

    Encoders: "natural" (2048-d), "foundation", "specific:<modality>" and, with the cross-modality
    split, "foundation-without:<modality>" (``cnn_features``-d)."""
    features, accuracy = {}, {}
    decoded = config.decode_on or config.modalities  # the Inception's features serve only the decoders
    features["natural"] = {m: (inception(train[m].images), inception(test[m].images))
                           for m in run.progress(decoded, "Inception features")}
    cnn = dict(epochs=config.cnn_epochs, lr=config.cnn_lr, batch_size=32, downsample="stride",
               widths=(config.cnn_width, 2 * config.cnn_width, 4 * config.cnn_width, 4 * config.cnn_width),
               feature_dim=config.cnn_features)

    def features_of(net) -> dict:
        return {o: (embed(net, train[o].images, run), embed(net, test[o].images, run)) for o in config.modalities}

    def multi_modality(mods: tuple[str, ...], stream: str):
        """The CNN that classifies every class of ``mods``: modality i's labels follow the earlier ones'."""
        offsets = dict(zip(mods, np.cumsum([0] + [len(train[m].classes) for m in mods])))
        images = np.concatenate([train[m].images for m in mods])
        labels = np.concatenate([train[m].labels + offsets[m] for m in mods])
        net = train_cnn(images, labels, sum(len(train[m].classes) for m in mods), run, stream, **cnn)
        return net, offsets

    for m in run.progress(config.modalities, "modality-specific CNNs"):
        net = train_cnn(train[m].images, train[m].labels, len(train[m].classes), run, f"cnn-{m}", **cnn)
        features[f"specific:{m}"] = features_of(net)
        accuracy[f"specific:{m}"] = float((predict(net, test[m].images, run) == test[m].labels).mean())
    net, offsets = multi_modality(config.modalities, "cnn-foundation")
    features["foundation"] = features_of(net)
    accuracy["foundation"] = {m: float((predict(net, test[m].images, run) == test[m].labels + offsets[m]).mean())
                              for m in config.modalities}
    if "cross-modality" in config.splits:
        for m in run.progress(config.modalities, "foundation CNNs without one modality"):
            net, _ = multi_modality(tuple(o for o in config.modalities if o != m), f"cnn-foundation-without-{m}")
            features[f"foundation-without:{m}"] = features_of(net)
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


def load_decoder(config: Config, run: Run) -> ReportDecoder:
    """SmolLM2 with LoRA of the configured rank."""
    lm, tokenizer = smollm.load(run.device)
    return ReportDecoder(lm, tokenizer, config.lora_rank, config.lora_alpha, run)


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


def benchmark(config: Config, run: Run, train: dict, test: dict, features: dict, decoder: ReportDecoder,
              scorer: Scorer) -> tuple[dict, list, dict]:
    """Every experiment of the plan for one seed: a decoder trained on the test modality's training
    pairs through the experiment's encoder, greedy reports for its test patches, their scores. An
    (encoder, modality) pair that two splits share (the Inception) is trained once and counted in both.
    Returns ``{split: {family: {modality: scores}}}``, one record per experiment (losses, examples) and
    the generated texts by (split, family, modality)."""
    scores = {split_name: {f: {} for f in FAMILIES} for split_name in config.splits}
    details, generated, done = [], {}, {}
    for split_name, family, m, encoder in run.progress(experiments(config), "train and generate"):
        if (encoder, m) not in done:
            # the stream is shared by every family and split of one test modality: same projection init, batches
            prefix, losses = decoder.train(features[encoder][m][0], list(train[m].reports), config.prefix_tokens,
                                           config.steps, config.batch_size, config.lr, run, f"decoder-{m}")
            texts = decoder.generate(prefix, features[encoder][m][1], config.max_new_tokens, run)
            done[encoder, m] = scorer.score(list(test[m].reports), texts), texts, losses
        scores[split_name][family][m], texts, losses = done[encoder, m]
        generated[(split_name, family, m)] = texts
        details.append({"split": split_name, "family": family, "test": m, "trained_on": [m], "encoder": encoder,
                        "encoder_saw": encoder_saw(encoder, config.modalities), "losses": losses,
                        "steps_per_epoch": -(-len(train[m]) // config.batch_size),
                        "examples": [{"reference": r, "generated": t}
                                     for r, t in zip(test[m].reports[:config.examples], texts)]})
    return scores, details, generated


def trial(config: Config, run: Run, inception: FidFeatures, decoder: ReportDecoder, scorer: Scorer):
    """One seed: its own patches, split, encoders, decoders and scores. Returns its metrics ({"scores",
    "floor", "encoder_accuracy", "test_sizes", "experiments"}) and (test patches, generated texts)."""
    train, test = load_patches(config, run)
    features, accuracy = encode(config, run, train, test, inception)
    scores, details, generated = benchmark(config, run, train, test, features, decoder, scorer)
    floor = {m: scorer.score(list(test[m].reports), [most_common_report(train[m].reports)] * len(test[m]))
             for m in config.decode_on or config.modalities}
    metrics = {"scores": scores, "floor": floor, "encoder_accuracy": accuracy,
               "test_sizes": {m: len(test[m]) for m in config.modalities},
               "train_sizes": {m: len(train[m]) for m in config.modalities}, "experiments": details}
    return metrics, (train, test, generated)

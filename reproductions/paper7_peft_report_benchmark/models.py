"""The three encoder families and the LoRA-tuned decoder with image prefix tokens.

Encoders (all frozen while the decoder trains; their features are computed once):
- natural-domain pretrained: the standard FID Inception-v3 (ImageNet weights), 2048-d pool features;
- modality-specific: ``SmallCNN`` trained here to classify one modality's patch labels;
- multi-modality "foundation": the same ``SmallCNN`` trained here on all four modalities' labels.

Decoder: SmolLM2-135M-Instruct with LoRA on its attention projections. An image feature (d) goes
through LayerNorm and a linear map to ``prefix_tokens`` embeddings (each rescaled to the RMS of
the model's token embeddings); the sequence is [image prefix] [prompt] [report], and the loss is
the report tokens' cross-entropy. LoRA and the projection train together; the language model's
own weights stay frozen. Every experiment starts from the same LoRA initialisation.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

PROMPT = "Report:"


# ---- encoders -----------------------------------------------------------------------------------

class SmallCNN(nn.Module):
    """(B, 3, S, S) in [0, 1] -> (B, feature_dim): four stride-2 conv blocks and global pooling."""

    def __init__(self, n_classes: int, width: int = 32, feature_dim: int = 128):
        super().__init__()
        chans = [3, width, 2 * width, 4 * width, 4 * width]
        blocks = []
        for a, b in zip(chans, chans[1:]):
            blocks += [nn.Conv2d(a, b, 3, stride=2, padding=1), nn.BatchNorm2d(b), nn.ReLU()]
        self.features = nn.Sequential(*blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(chans[-1], feature_dim))
        self.head = nn.Linear(feature_dim, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(F.relu(self.features(x)))


def train_cnn(images: np.ndarray, labels: np.ndarray, n_classes: int, width: int, feature_dim: int, epochs: int,
              lr: float, batch_size: int, gen: torch.Generator, run) -> SmallCNN:
    """A ``SmallCNN`` trained with cross-entropy on (images, labels); returned in eval mode."""
    with torch.random.fork_rng(devices=[]):  # the weights' initialisation, drawn from ``gen``
        torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))
        model = SmallCNN(n_classes, width, feature_dim).to(run.device)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    x, y = torch.as_tensor(images), torch.as_tensor(labels, dtype=torch.long)
    model.train()
    for _ in range(epochs):
        for batch in torch.randperm(len(x), generator=gen).split(batch_size):
            if len(batch) < 2:  # BatchNorm needs two samples
                continue
            with run.autocast():
                loss = F.cross_entropy(model(x[batch].to(run.device)).float(), y[batch].to(run.device))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    return model.eval()


@torch.no_grad()
def cnn_features(model: SmallCNN, images: np.ndarray, device, batch: int = 64) -> torch.Tensor:
    x = torch.as_tensor(images)
    return torch.cat([F.relu(model.features(b.to(device))).float().cpu() for b in x.split(batch)])


@torch.no_grad()
def inception_features(inception, images: np.ndarray, device, batch: int = 16) -> torch.Tensor:
    """2048-d pool features of the FID Inception (images in [0, 1], resized to 299 inside)."""
    x = torch.as_tensor(images)
    return torch.cat([inception(b.to(device)).float().cpu() for b in x.split(batch)])


# ---- decoder ------------------------------------------------------------------------------------

class Prefix(nn.Module):
    """Image feature (B, d) -> (B, prefix_tokens, hidden) embeddings at the scale of token embeddings."""

    def __init__(self, feature_dim: int, prefix_tokens: int, hidden: int, scale: float):
        super().__init__()
        self.norm = nn.LayerNorm(feature_dim)
        self.proj = nn.Linear(feature_dim, prefix_tokens * hidden)
        self.shape = (prefix_tokens, hidden)
        self.scale = scale

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        z = self.proj(self.norm(features)).view(len(features), *self.shape)
        return F.layer_norm(z, self.shape[1:]) * self.scale


class ReportDecoder:
    """SmolLM2 with LoRA adapters, reset to one initialisation before each experiment."""

    def __init__(self, model, tokenizer, rank: int, alpha: int, device):
        from peft import LoraConfig, get_peft_model

        self.tokenizer = tokenizer
        self.device = device
        config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=0.0,
                            target_modules=["q_proj", "k_proj", "v_proj", "o_proj"])
        self.lm = get_peft_model(model, config).eval()  # eval: no dropout anywhere
        self.lora = [p for n, p in self.lm.named_parameters() if "lora_" in n]
        self.initial = [p.detach().clone() for p in self.lora]
        self.embed = self.lm.get_input_embeddings()
        self.hidden = self.embed.weight.shape[1]
        self.scale = float(self.embed.weight.detach().pow(2).mean(dim=1).sqrt().mean())
        self.prompt = torch.tensor(tokenizer(PROMPT, add_special_tokens=False)["input_ids"], device=device)

    def reset(self) -> None:
        with torch.no_grad():
            for p, p0 in zip(self.lora, self.initial):
                p.copy_(p0)

    def _context(self, prefix: Prefix, features: torch.Tensor) -> torch.Tensor:
        """(B, prefix_tokens + prompt, hidden): the image prefix followed by the prompt's embeddings."""
        image = prefix(features.to(self.device))
        prompt = self.embed(self.prompt)[None].expand(len(features), -1, -1)
        return torch.cat([image, prompt.to(image.dtype)], dim=1)

    def loss(self, prefix: Prefix, features: torch.Tensor, reports: list[str]) -> torch.Tensor:
        tok = self.tokenizer([r + self.tokenizer.eos_token for r in reports], add_special_tokens=False,
                             return_tensors="pt", padding=True)
        ids, mask = tok["input_ids"].to(self.device), tok["attention_mask"].to(self.device)
        context = self._context(prefix, features)
        inputs = torch.cat([context, self.embed(ids)], dim=1)
        attention = torch.cat([torch.ones(context.shape[:2], dtype=mask.dtype, device=self.device), mask], dim=1)
        labels = torch.cat([torch.full(context.shape[:2], -100, device=self.device), ids.masked_fill(mask == 0, -100)],
                           dim=1)
        return self.lm(inputs_embeds=inputs, attention_mask=attention, labels=labels).loss

    def train(self, features: torch.Tensor, reports: list[str], prefix_tokens: int, steps: int, batch_size: int,
              lr: float, gen: torch.Generator, run) -> tuple[Prefix, list[float]]:
        """Reset LoRA, train it with a new projection on (features, reports); returns it and the losses."""
        self.reset()
        with torch.random.fork_rng(devices=[]):  # the projection's initialisation, drawn from ``gen``
            torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))
            prefix = Prefix(features.shape[1], prefix_tokens, self.hidden, self.scale).to(self.device)
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
    def generate(self, prefix: Prefix, features: torch.Tensor, max_new_tokens: int, run,
                 batch_size: int = 32) -> list[str]:
        """Greedy reports, one per feature row (every context has the same length: no padding)."""
        out = []
        for chunk in features.split(batch_size):
            with run.autocast():
                context = self._context(prefix, chunk)
                ids = self.lm.generate(inputs_embeds=context,
                                       attention_mask=torch.ones(context.shape[:2], dtype=torch.long, device=self.device),
                                       max_new_tokens=max_new_tokens, do_sample=False,
                                       pad_token_id=self.tokenizer.pad_token_id, eos_token_id=self.tokenizer.eos_token_id)
            out += [t.strip() for t in self.tokenizer.batch_decode(ids, skip_special_tokens=True)]
        return out

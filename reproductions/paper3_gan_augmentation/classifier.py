"""Paper 3's classifier: three conv + max-pool pairs, two dense layers, softmax, dropout, SGD with
Nesterov momentum (about 1.3M parameters at 64x64 with the default widths)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from reproductions.paper3_gan_augmentation.lesions import CLASSES

if TYPE_CHECKING:
    from reproductions.paper3_gan_augmentation import Config


class LesionCNN(nn.Module):
    """(B, 1, S, S) -> class logits (B, 3): conv + ReLU + max-pool three times, dense, dense."""

    def __init__(self, config: Config, generator: torch.Generator | None = None):
        super().__init__()
        layers, c_in = [], 1
        for width in config.widths:
            layers += [nn.Conv2d(c_in, width, config.kernel, padding=config.kernel // 2), nn.ReLU(), nn.MaxPool2d(2)]
            c_in = width
        side = config.size // 2 ** len(config.widths)  # 64 px -> 8 after three pools
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(config.dropout), nn.Linear(c_in * side * side, config.dense),
                                  nn.ReLU(), nn.Dropout(config.dropout), nn.Linear(config.dense, len(CLASSES)))
        for m in self.modules():  # He init from an explicit generator
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_uniform_(m.weight, nonlinearity="relu", generator=generator)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))  # softmax lives in the cross-entropy loss


def parameter_count(config: Config) -> int:
    return sum(p.numel() for p in LesionCNN(config).parameters())


def training_steps(n: int, config: Config) -> int:
    steps = math.ceil(config.epochs * n / config.batch_size)
    steps = max(steps, config.min_steps)
    return min(steps, config.max_steps) if config.max_steps else steps


def train_classifier(x: torch.Tensor, y: torch.Tensor, config: Config, run, gen: torch.Generator) -> LesionCNN:
    """SGD with Nesterov momentum on ``x`` (N, 1, S, S) in [-1, 1] and labels ``y`` (N,)."""
    model = LesionCNN(config, gen).to(run.device)
    optimiser = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum, nesterov=True)
    x, y = x.to(run.device), y.to(run.device)
    batch = min(config.batch_size, len(x))
    order = torch.empty(0, dtype=torch.long)
    model.train()
    for _ in range(training_steps(len(x), config)):
        if len(order) < batch:  # a fresh pass over the set
            order = torch.cat([order, torch.randperm(len(x), generator=gen)])
        idx, order = order[:batch].to(run.device), order[batch:]
        with run.autocast():
            loss = F.cross_entropy(model(x[idx]).float(), y[idx])
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
    return model.eval()


@torch.no_grad()
def predict(model: LesionCNN, x: torch.Tensor, run) -> np.ndarray:
    with run.autocast():
        return torch.cat([model(b.to(run.device)).float().argmax(1).cpu() for b in x.split(512)]).numpy()



"""A small CNN classifier, its training and its predictions: the core that papers 2, 3 and 7 share.

``SmallCNN`` stacks 3x3 convolution blocks that halve the side (max-pooling, like paper 2's CNN
observer, or stride 2, like paper 7's encoders), pools globally, optionally maps the pooled vector
to an embedding, and ends in a linear head. ``fit`` trains any classifier with cross-entropy on
mini-batches shuffled by an explicit generator; ``predict`` and ``embed`` run one in batches.
``train_cnn`` is the usual recipe: a ``SmallCNN`` initialised and shuffled from named streams.
What a paper specifies itself (paper 3's LesionCNN and its SGD schedule, paper 2's input range)
stays in the paper, which can still use ``fit`` and ``predict``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from reproductions.common.batches import as_batch, in_batches

DOWNSAMPLING = ("pool", "stride")


class SmallCNN(nn.Module):
    """(B, in_channels, S, S) -> class logits (B, n_classes); ``features`` gives (B, feature_dim or widths[-1])."""

    def __init__(self, n_classes: int, in_channels: int = 1, widths: tuple[int, ...] = (16, 32, 64),
                 downsample: str = "pool", feature_dim: int | None = None):
        super().__init__()
        if downsample not in DOWNSAMPLING:
            raise ValueError(f"downsample: {downsample!r} is not one of {DOWNSAMPLING}")
        blocks = []
        for c_in, c_out in zip((in_channels, *widths), widths):  # each block halves the side
            if downsample == "pool":
                blocks += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(), nn.MaxPool2d(2)]
            else:
                blocks += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]
        self.body = nn.Sequential(*blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten())  # (B, widths[-1])
        self.embedding = (nn.Sequential(nn.Linear(widths[-1], feature_dim), nn.ReLU()) if feature_dim
                          else nn.Identity())
        self.head = nn.Linear(feature_dim or widths[-1], n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.embedding(self.body(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def fit(model: nn.Module, images, labels, run, generator: torch.Generator, epochs: int, lr: float = 1e-3,
        batch_size: int = 32, optimiser: torch.optim.Optimizer | None = None, desc: str | None = None) -> nn.Module:
    """Train ``model`` (on ``run.device``) with cross-entropy on ``images`` (N, [C,] H, W) and integer
    ``labels`` (N,); Adam at ``lr`` unless an ``optimiser`` is given. Returns it in eval mode."""
    x, y = as_batch(images), torch.as_tensor(labels, dtype=torch.long)
    optimiser = optimiser or torch.optim.Adam(model.parameters(), lr=lr)
    epochs_seen = run.progress(range(epochs), desc) if desc else range(epochs)
    model.train()
    for _ in epochs_seen:
        for batch in torch.randperm(len(x), generator=generator).split(batch_size):
            if len(batch) < 2:  # batch norm needs two samples
                continue
            with run.autocast():
                loss = F.cross_entropy(model(x[batch].to(run.device)).float(), y[batch].to(run.device))
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
    return model.eval()


def train_cnn(images, labels, n_classes: int, run, stream: str, epochs: int, lr: float = 1e-3,
              batch_size: int = 32, desc: str | None = None, **network) -> SmallCNN:
    """A ``SmallCNN`` (``network``: its widths, downsample, feature_dim) fitted to ``images``; its initial
    weights come from the stream "<stream>/init", its batch order from "<stream>/batches"."""
    x = as_batch(images)
    with run.seeded(f"{stream}/init"):
        model = SmallCNN(n_classes, in_channels=x.shape[1], **network)
    return fit(model.to(run.device), x, labels, run, run.torch_generator(f"{stream}/batches"), epochs, lr,
               batch_size, desc=desc)


def predict(model: nn.Module, images, run, batch_size: int = 256) -> np.ndarray:
    """The most likely class of each image, (N,) int."""
    def classify(x):
        with run.autocast():
            return model(x).float().argmax(1)
    return in_batches(classify, as_batch(images), batch_size, run.device).numpy()


def embed(model: SmallCNN, images, run, batch_size: int = 64) -> torch.Tensor:
    """The features of each image, (N, D) float32 on the CPU."""
    return in_batches(lambda x: model.features(x).float(), as_batch(images), batch_size, run.device)

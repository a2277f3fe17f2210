"""Image batches as the networks take them, and a network applied to a large set a batch at a time."""

from __future__ import annotations

import torch


def as_batch(images) -> torch.Tensor:
    """NumPy or torch images as float32: grey (N, H, W) gains its channel, (N, 1, H, W); a batch with
    channels (N, C, H, W) keeps its shape (as does anything else a network takes, e.g. features (N, D))."""
    x = torch.as_tensor(images, dtype=torch.float32)
    return x[:, None] if x.ndim == 3 else x


@torch.no_grad()
def in_batches(fn, x: torch.Tensor, batch_size: int, device) -> torch.Tensor:
    """``fn`` on ``x`` (N, ...) ``batch_size`` rows at a time on ``device``, the outputs joined on the CPU."""
    return torch.cat([fn(chunk.to(device)).cpu() for chunk in x.split(batch_size)])

"""DCGAN (Radford et al. 2016) as the GAN papers of the review use it (papers 2, 3 and 5).

Paper 3 gives the settings this module defaults to: z of 100 uniform values, a projection to
4x4x1024 and four 5x5 fractionally-strided convolutions up to 64x64; a discriminator of four
strided 5x5 convolutions with LeakyReLU 0.2; Adam (lr 0.0002, beta1 0.5), batch 64, weights from
N(0, 0.02). ``width`` scales every layer (64 gives the paper's 1024 at 4x4 for 64 px), so the smoke
profiles can train a narrow copy of the same network.

Class conditioning (``num_classes`` > 0) feeds a one-hot label to both networks (a conditional
DCGAN); with ``auxiliary`` the discriminator also classifies (ACGAN, paper 3's extended variant).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

SIZES = (32, 64)


@dataclass(frozen=True)
class DCGANConfig:
    z_dim: int = 100
    width: int = 64  # the generator's 4x4 projection has width * 2**levels channels (1024 at 64 px)
    size: int = 64
    channels: int = 1
    num_classes: int = 0  # 0: unconditional
    auxiliary: bool = False  # ACGAN: the discriminator also predicts the class
    epochs: int = 70
    batch_size: int = 64
    lr: float = 2e-4
    beta1: float = 0.5

    def __post_init__(self):
        if self.size not in SIZES:
            raise ValueError(f"size: DCGAN here makes {' or '.join(map(str, SIZES))} px images, not {self.size}")
        for name in ("z_dim", "width", "channels", "epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.auxiliary and self.num_classes < 2:
            raise ValueError("auxiliary (ACGAN) needs num_classes of 2 or more")

    @property
    def levels(self) -> int:  # upsamplings from 4x4: 3 for 32 px, 4 for 64 px
        return int(math.log2(self.size // 4))


def init_weights(module: nn.Module) -> None:
    """N(0, 0.02) for convolutions and linear layers, N(1, 0.02) for batch-norm scales (DCGAN)."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class Generator(nn.Module):
    """z (B, z_dim) [+ one-hot class] -> image (B, channels, size, size) in [-1, 1]."""

    def __init__(self, config: DCGANConfig):
        super().__init__()
        self.config = config
        top = config.width * 2 ** config.levels
        self.project = nn.Sequential(nn.Linear(config.z_dim + config.num_classes, top * 16, bias=False),
                                     nn.Unflatten(1, (top, 4, 4)), nn.BatchNorm2d(top), nn.ReLU(True))
        layers = []
        for level in range(config.levels):
            c_in = top // 2 ** level
            last = level == config.levels - 1
            c_out = config.channels if last else c_in // 2
            # 5x5, stride 2: padding 2 and output_padding 1 double the side exactly.
            layers.append(nn.ConvTranspose2d(c_in, c_out, 5, 2, padding=2, output_padding=1, bias=last))
            layers += [nn.Tanh()] if last else [nn.BatchNorm2d(c_out), nn.ReLU(True)]
        self.net = nn.Sequential(*layers)
        self.apply(init_weights)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.config.num_classes:
            z = torch.cat([z, F.one_hot(labels, self.config.num_classes).to(z.dtype)], dim=1)
        return self.net(self.project(z))


class Discriminator(nn.Module):
    """image [+ class maps] -> real/fake logit (B,) and, for ACGAN, class logits (B, num_classes)."""

    def __init__(self, config: DCGANConfig):
        super().__init__()
        self.config = config
        conditional = config.num_classes if not config.auxiliary else 0
        layers, c_in = [], config.channels + conditional
        for level in range(config.levels):
            c_out = config.width * 2 ** level
            layers.append(nn.Conv2d(c_in, c_out, 5, 2, padding=2, bias=level == 0))
            layers += ([] if level == 0 else [nn.BatchNorm2d(c_out)]) + [nn.LeakyReLU(0.2, True)]
            c_in = c_out
        self.net = nn.Sequential(*layers, nn.Flatten())
        features = c_in * 16
        self.real_fake = nn.Linear(features, 1)
        self.classify = nn.Linear(features, config.num_classes) if config.auxiliary else None
        self.apply(init_weights)

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None):
        if self.config.num_classes and not self.config.auxiliary:
            maps = F.one_hot(labels, self.config.num_classes).to(images.dtype)[:, :, None, None]
            images = torch.cat([images, maps.expand(-1, -1, *images.shape[2:])], dim=1)
        h = self.net(images)
        return self.real_fake(h).squeeze(1), (self.classify(h) if self.classify is not None else None)


def noise(n: int, config: DCGANConfig, generator: torch.Generator) -> torch.Tensor:
    """z ~ U(-1, 1), as paper 3 specifies."""
    return torch.rand(n, config.z_dim, generator=generator) * 2 - 1


def train_dcgan(images: torch.Tensor, labels: torch.Tensor | None, config: DCGANConfig, run, stream: str):
    """Train on ``images`` (N, C, H, W) in [-1, 1]; returns (generator in eval mode, per-epoch history).

    Randomness from the run's named streams: the initial weights from "<stream>/init", batch order
    and noise from "<stream>/batches".

    The history holds the mean discriminator and generator losses and the discriminator's mean
    probability on real and on generated batches: the training curves of the figures."""
    if images.shape[1:] != (config.channels, config.size, config.size):
        raise ValueError(f"images of shape {tuple(images.shape[1:])} do not match the DCGAN's "
                         f"({config.channels}, {config.size}, {config.size})")
    if config.num_classes and labels is None:
        raise ValueError("a class-conditional DCGAN needs labels")
    device, gen = run.device, run.torch_generator(f"{stream}/batches")
    with run.seeded(f"{stream}/init"):
        G, D = Generator(config).to(device), Discriminator(config).to(device)
    opt_g = torch.optim.Adam(G.parameters(), lr=config.lr, betas=(config.beta1, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=config.lr, betas=(config.beta1, 0.999))
    labels = labels if labels is not None else torch.zeros(len(images), dtype=torch.long)
    history = {key: [] for key in ("d_loss", "g_loss", "d_real", "d_fake")}
    batch = min(config.batch_size, len(images))
    for _ in run.progress(range(config.epochs), "DCGAN epochs"):
        sums = dict.fromkeys(history, 0.0)
        order = torch.randperm(len(images), generator=gen)
        steps = len(images) // batch  # whole batches only: batch norm on a batch of one breaks
        for step in range(steps):
            idx = order[step * batch:(step + 1) * batch]
            real, y = images[idx].to(device), labels[idx].to(device)
            z = noise(len(idx), config, gen).to(device)
            with run.autocast():
                fake = G(z, y)
                logit_real, class_real = D(real, y)
                logit_fake, class_fake = D(fake.detach(), y)
                d_loss = (F.binary_cross_entropy_with_logits(logit_real, torch.ones_like(logit_real))
                          + F.binary_cross_entropy_with_logits(logit_fake, torch.zeros_like(logit_fake)))
                if config.auxiliary:
                    d_loss = d_loss + F.cross_entropy(class_real, y) + F.cross_entropy(class_fake, y)
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            with run.autocast():
                logit_gen, class_gen = D(fake, y)
                g_loss = F.binary_cross_entropy_with_logits(logit_gen, torch.ones_like(logit_gen))
                if config.auxiliary:
                    g_loss = g_loss + F.cross_entropy(class_gen, y)
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()
            sums["d_loss"] += d_loss.item()
            sums["g_loss"] += g_loss.item()
            sums["d_real"] += torch.sigmoid(logit_real.float()).mean().item()
            sums["d_fake"] += torch.sigmoid(logit_fake.float()).mean().item()
        for key in history:
            history[key].append(sums[key] / max(steps, 1))
    return G.eval(), history


@torch.no_grad()
def sample(G: Generator, n: int, config: DCGANConfig, device, generator: torch.Generator,
           labels: torch.Tensor | None = None, batch: int = 256) -> torch.Tensor:
    """``n`` images (n, C, H, W) in [-1, 1] on the CPU; ``labels`` (n,) for a conditional DCGAN."""
    if config.num_classes and labels is None:
        raise ValueError("a class-conditional DCGAN needs labels to sample")
    out = []
    for start in range(0, n, batch):
        z = noise(min(batch, n - start), config, generator).to(device)
        y = labels[start:start + len(z)].to(device) if labels is not None else None
        out.append(G(z, y).float().cpu())
    return torch.cat(out) if out else torch.empty(0, config.channels, config.size, config.size)

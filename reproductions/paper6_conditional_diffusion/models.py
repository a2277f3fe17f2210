"""Networks, training loops and samplers of paper 6, kept apart as in diffusers.

- The conditional DDPM: a diffusers ``UNet2DModel`` whose input is the noisy target concatenated
  with the condition, (B, 1 + 2, H, W) = [x_t, degraded image, mask of lost pixels]; trained with
  a ``DDPMScheduler`` (1000 steps); sampled with a ``DDIMScheduler`` (eta = 0, "trailing" spacing so
  that a few steps still start from pure noise) or, as a reference, the 1000-step DDPM sampler.
- The regression U-Net: the same architecture on the condition alone, (B, 2, H, W), with the
  timestep fixed at 0, trained with MSE to output the clean image.
- pix2pix: the same U-Net as generator, a PatchGAN discriminator on (condition, image) pairs,
  vanilla GAN loss plus lambda * L1 (lambda = 100 as in Isola et al. 2017).
Targets are in [-1, 1] (the clean image, or the residual clean - degraded); conditions in [-1, 1];
every random draw uses an explicit ``torch.Generator``.
"""

from __future__ import annotations

import time

import torch
from diffusers import DDIMScheduler, DDPMScheduler, UNet2DModel
from torch import nn
from torch.nn import functional as F

CONDITION_CHANNELS = 2  # degraded image + mask of lost pixels
TRAIN_TIMESTEPS = 1000


def unet(channels: tuple[int, ...], size: int, in_channels: int, layers_per_block: int = 1) -> UNet2DModel:
    """A diffusers U-Net: plain ResNet blocks, self-attention at the lowest resolution only."""
    depth = len(channels)
    return UNet2DModel(
        sample_size=size, in_channels=in_channels, out_channels=1, block_out_channels=channels,
        layers_per_block=layers_per_block, norm_num_groups=min(8, channels[0]), attention_head_dim=8,
        down_block_types=("DownBlock2D",) * (depth - 1) + ("AttnDownBlock2D",),
        up_block_types=("AttnUpBlock2D",) + ("UpBlock2D",) * (depth - 1))


def build(config, in_channels: int, seed: int, device) -> UNet2DModel:
    """A fresh U-Net for ``config``; its weight initialisation is seeded by ``seed`` (torch draws it from
    the global generator, so it is reseeded here rather than left to the order of construction)."""
    torch.manual_seed(seed)
    return unet(config.channels, config.patch_size, in_channels, config.layers_per_block).to(device)


def noise_scheduler(prediction_type: str) -> DDPMScheduler:
    return DDPMScheduler(num_train_timesteps=TRAIN_TIMESTEPS, beta_schedule="linear", prediction_type=prediction_type,
                         clip_sample=True)


class PatchDiscriminator(nn.Module):
    """pix2pix's PatchGAN, shortened for small patches: (B, 3, H, W) -> (B, 1, H/4, W/4) real/fake logits.

    Input: condition (2 channels) and a clean or generated image (1 channel)."""

    def __init__(self, width: int = 32, in_channels: int = CONDITION_CHANNELS + 1):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, width, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 4, 2, 1), nn.InstanceNorm2d(2 * width), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * width, 4 * width, 3, 1, 1), nn.InstanceNorm2d(4 * width), nn.LeakyReLU(0.2),
            nn.Conv2d(4 * width, 1, 3, 1, 1))

    def forward(self, condition: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([condition, image], dim=1))


def count(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def batches(n: int, size: int, steps: int, gen: torch.Generator):
    """``steps`` index batches drawn by epochs of seeded permutations."""
    order = torch.empty(0, dtype=torch.long)
    for _ in range(steps):
        if len(order) < size:
            order = torch.cat([order, torch.randperm(n, generator=gen)])
        yield order[:size]
        order = order[size:]


def regress(model: UNet2DModel, condition: torch.Tensor) -> torch.Tensor:
    """The regression U-Net and the pix2pix generator: the condition in, the clean image out, t = 0."""
    zero = torch.zeros(len(condition), dtype=torch.long, device=condition.device)
    return model(condition, zero).sample


def diffusion_loss(model, scheduler: DDPMScheduler, target, condition, gen: torch.Generator, run) -> torch.Tensor:
    """DDPM training loss: MSE between the U-Net's output and the scheduler's target for random t."""
    noise = torch.randn(target.shape, generator=gen).to(target.device)
    t = torch.randint(0, TRAIN_TIMESTEPS, (len(target),), generator=gen).to(target.device)
    noisy = scheduler.add_noise(target, noise, t)
    with run.autocast():
        out = model(torch.cat([noisy, condition], dim=1), t).sample.float()
    kind = scheduler.config.prediction_type
    goal = {"epsilon": noise, "sample": target}.get(kind)
    if goal is None:  # v_prediction
        goal = scheduler.get_velocity(target, noise, t)
    return F.mse_loss(out, goal)


def train_loop(model, loss_fn, data_n: int, steps: int, batch_size: int, lr: float, gen, run, desc: str,
               parameters=None) -> float:
    """AdamW on ``loss_fn(index batch)`` for ``steps``; returns the wall time in seconds."""
    params = [p for p in (parameters or model.parameters()) if p.requires_grad]
    optimiser = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    model.train()
    start = time.perf_counter()
    for idx in run.progress(batches(data_n, batch_size, steps, gen), desc, total=steps):
        loss = loss_fn(idx)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimiser.step()
    if run.device.type == "cuda":
        torch.cuda.synchronize(run.device)
    model.eval()
    return time.perf_counter() - start


def train_ddpm(model, target, condition, config, run, gen, desc: str, steps: int | None = None,
               lr: float | None = None) -> float:
    scheduler = noise_scheduler(config.prediction_type)
    target, condition = target.to(run.device), condition.to(run.device)
    return train_loop(model, lambda idx: diffusion_loss(model, scheduler, target[idx], condition[idx], gen, run),
                      len(target), steps or config.train_steps, config.batch_size, lr or config.lr, gen, run, desc)


def train_regression(model, target, condition, config, run, gen, desc: str = "U-Net regression") -> float:
    target, condition = target.to(run.device), condition.to(run.device)

    def loss(idx):
        with run.autocast():
            out = regress(model, condition[idx]).float()
        return F.mse_loss(out, target[idx])

    return train_loop(model, loss, len(target), config.train_steps, config.batch_size, config.lr, gen, run, desc)


def train_pix2pix(generator, target, condition, config, run, gen, desc: str = "pix2pix GAN") -> float:
    """Alternate one discriminator and one generator step (Adam 2e-4, betas 0.5 / 0.999 as in pix2pix)."""
    torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))  # the discriminator's initialisation
    disc = PatchDiscriminator(config.channels[0]).to(run.device)
    opt_g = torch.optim.Adam(generator.parameters(), lr=config.gan_lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(disc.parameters(), lr=config.gan_lr, betas=(0.5, 0.999))
    target, condition = target.to(run.device), condition.to(run.device)
    bce = nn.BCEWithLogitsLoss()
    generator.train()
    start = time.perf_counter()
    for idx in run.progress(batches(len(target), config.batch_size, config.train_steps, gen), desc,
                            total=config.train_steps):
        cond, real = condition[idx], target[idx]
        with run.autocast():
            fake = regress(generator, cond)
            d_real, d_fake = disc(cond, real).float(), disc(cond, fake.detach()).float()
        loss_d = 0.5 * (bce(d_real, torch.ones_like(d_real)) + bce(d_fake, torch.zeros_like(d_fake)))
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        with run.autocast():
            d_fake = disc(cond, fake).float()
        loss_g = bce(d_fake, torch.ones_like(d_fake)) + config.gan_l1_weight * F.l1_loss(fake.float(), real)
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
    if run.device.type == "cuda":
        torch.cuda.synchronize(run.device)
    generator.eval()
    return time.perf_counter() - start


@torch.no_grad()
def predict(model, condition: torch.Tensor, run, batch: int = 64) -> torch.Tensor:
    """Regression U-Net or pix2pix generator outputs, (N, 1, H, W) on the CPU, clamped to [-1, 1]."""
    outs = []
    for chunk in condition.split(batch):
        with run.autocast():
            outs.append(regress(model, chunk.to(run.device)).float().clamp(-1, 1).cpu())
    return torch.cat(outs)


@torch.no_grad()
def sample(model, condition: torch.Tensor, steps: int, config, run, gen: torch.Generator, sampler: str = "ddim",
           batch: int = 128) -> tuple[torch.Tensor, float]:
    """Conditional samples (N, 1, H, W) in [-1, 1] and the wall time per sample in seconds.

    ``sampler`` "ddim": ``steps`` deterministic DDIM steps; "ddpm": ancestral DDPM over ``steps``."""
    train = noise_scheduler(config.prediction_type)
    if sampler == "ddim":
        scheduler = DDIMScheduler.from_config(train.config, timestep_spacing="trailing")
    else:
        scheduler = DDPMScheduler.from_config(train.config, timestep_spacing="trailing")
    scheduler.set_timesteps(steps)
    outs = []
    start = time.perf_counter()
    for chunk in condition.split(batch):
        chunk = chunk.to(run.device)
        x = torch.randn((len(chunk), 1, *chunk.shape[2:]), generator=gen).to(run.device)
        for t in scheduler.timesteps:
            with run.autocast():
                out = model(torch.cat([x, chunk], dim=1), t).sample.float()
            x = scheduler.step(out, t, x, generator=gen).prev_sample if sampler == "ddpm" else \
                scheduler.step(out, t, x, eta=0.0).prev_sample
        outs.append(x.clamp(-1, 1).cpu())
    if run.device.type == "cuda":
        torch.cuda.synchronize(run.device)
    return torch.cat(outs), (time.perf_counter() - start) / len(condition)

"""Paper 6's pipeline, top to bottom: paired patches of real images, the three networks (the
conditional DDPM, a regression U-Net and pix2pix), their training loops, the samplers, the
evaluation per task setting, and the LoRA adaptation of the DDPM's U-Net.

- Data: paired patches of real images with simulated degradations, train and test cut from
  disjoint parts of each image (``patches.py``, the helper that says where each task's images come
  from); ``load`` draws them from the run's named streams.
- The conditional DDPM: a diffusers ``UNet2DModel`` whose input is the noisy target concatenated
  with the condition, (B, 1 + 2, H, W) = [x_t, degraded image, mask of lost pixels]; trained with a
  ``DDPMScheduler`` (1000 steps); sampled with a ``DDIMScheduler`` (eta = 0, "trailing" spacing so
  that a few steps still start from pure noise) or, as a reference, the 1000-step DDPM sampler.
- The regression U-Net: the same architecture on the condition alone, (B, 2, H, W), with the
  timestep fixed at 0, trained with MSE. pix2pix: the same U-Net as generator, a PatchGAN
  discriminator on (condition, image) pairs, vanilla GAN loss plus lambda * L1 (Isola et al. 2017).
- LoRA (peft) on the X-ray denoising DDPM against full fine-tuning and training from scratch, in a
  low-resource adaptation to brain-MR denoising. Peak GPU memory counts only what a variant itself
  allocates: ``torch.cuda.max_memory_allocated`` after its adaptation minus
  ``torch.cuda.memory_allocated`` just before its model is made (its U-Net with adapters,
  gradients, optimiser state and activations, not the base model or the FID Inception left
  resident). Not measured on a CPU.

Every random draw comes from a named stream of the run: ``run.rng`` for the patches and their
degradations, ``run.torch_generator`` for batches, noise and timesteps, ``run.seeded`` around
building a network (its initial weights and LoRA's).
"""

from __future__ import annotations

import copy
import functools
import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch
from diffusers import DDIMScheduler, DDPMScheduler, UNet2DModel
from peft import LoraConfig, get_peft_model
from torch import nn
from torch.nn import functional as F

from reproductions.common.early_stopping import EarlyStopping
from reproductions.metrics.images import FidFeatures, psnr, psnr_each, ssim, ssim_each
from reproductions.outcome import DataNote
from reproductions.paper6_conditional_diffusion.patches import (
    BRAIN_BACKGROUND,
    BRAIN_TASKS,
    Pairs,
    cut_patches,
    make_pairs,
    sources,
)
from reproductions.run import Run

if TYPE_CHECKING:
    from reproductions.paper6_conditional_diffusion import Config

METHODS = ("U-Net regression", "pix2pix GAN", "conditional DDPM")
CONDITION_CHANNELS = 2  # degraded image + mask of lost pixels
TRAIN_TIMESTEPS = 1000
ADAPT_TASK = BRAIN_TASKS[1]  # "brain-denoise", the LoRA experiment's target
BASE, SCRATCH, FULL = "base, no adaptation", "from scratch", "full fine-tuning"


# ---- data ----------------------------------------------------------------------------------------

def load(task: str, n_train: int, config: Config, run: Run) -> tuple[Pairs, dict[str, Pairs], DataNote]:
    """``n_train`` training pairs, ``config.n_test`` test pairs per evaluated setting (``sr`` gives ``sr2``
    and ``sr4``, on the same clean patches), and the data note; streams "<task>-train-patches" and so on."""
    train_images, test_images, note = sources(task, config.patch_size)
    background = BRAIN_BACKGROUND if task in BRAIN_TASKS else 1.0
    clean_train = cut_patches(train_images, n_train, config.patch_size, run.rng(f"{task}-train-patches"), background)
    train = make_pairs(clean_train, task, run.rng(f"{task}-train-degrade"), config.noise_sigma)
    clean_test = cut_patches(test_images, config.n_test, config.patch_size, run.rng(f"{task}-test-patches"), background)
    settings = ("sr2", "sr4") if task == "sr" else (task,)
    tests = {s: make_pairs(clean_test, s, run.rng(f"{s}-test-degrade"), config.noise_sigma) for s in settings}
    return train, tests, note


# ---- networks -----------------------------------------------------------------------------------

def unet(channels: tuple[int, ...], size: int, in_channels: int, layers_per_block: int = 1) -> UNet2DModel:
    """A diffusers U-Net: plain ResNet blocks, self-attention at the lowest resolution only."""
    depth = len(channels)
    return UNet2DModel(
        sample_size=size, in_channels=in_channels, out_channels=1, block_out_channels=channels,
        layers_per_block=layers_per_block, norm_num_groups=min(8, channels[0]), attention_head_dim=8,
        down_block_types=("DownBlock2D",) * (depth - 1) + ("AttnDownBlock2D",),
        up_block_types=("AttnUpBlock2D",) + ("UpBlock2D",) * (depth - 1))


def build(config: Config, in_channels: int, run: Run, stream: str) -> UNet2DModel:
    """A fresh U-Net for ``config`` on the run's device, its initial weights from the stream ``stream``."""
    with run.seeded(stream):
        return unet(config.channels, config.patch_size, in_channels, config.layers_per_block).to(run.device)


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
        return self.net(torch.cat([condition, image], dim=1))  # (B, 2, H, W) + (B, 1, H, W) -> (B, 3, H, W)


def count(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def regress(model: UNet2DModel, condition: torch.Tensor) -> torch.Tensor:
    """The regression U-Net and the pix2pix generator: the condition (B, 2, H, W) in, (B, 1, H, W) out, t = 0."""
    zero = torch.zeros(len(condition), dtype=torch.long, device=condition.device)
    return model(condition, zero).sample


# ---- training -----------------------------------------------------------------------------------

def batches(n: int, size: int, steps: int, gen: torch.Generator):
    """``steps`` index batches drawn by epochs of permutations from ``gen``."""
    order = torch.empty(0, dtype=torch.long)
    for _ in range(steps):
        if len(order) < size:
            order = torch.cat([order, torch.randperm(n, generator=gen)])
        yield order[:size]
        order = order[size:]


def split_validation(pairs: Pairs, share: float) -> tuple[Pairs, Pairs]:
    """The training pairs less their last ``share`` (at least two), and those held out for early stopping;
    the patches sit at random places, so the last ones are as good a draw as any."""
    n_val = max(2, round(share * len(pairs)))
    return pairs.part(0, len(pairs) - n_val), pairs.part(len(pairs) - n_val, len(pairs))


def target_scale(target: torch.Tensor) -> float:
    """1 / the training targets' standard deviation: the DDPM diffuses targets of unit spread, as its noise
    schedule assumes (a residual of noise sigma 0.1 would otherwise drown in the first steps)."""
    return 1.0 / max(float(target.std()), 1e-6)


def noise_scheduler(prediction_type: str, scale: float = 1.0) -> DDPMScheduler:
    """The training schedule; x0 estimates are clipped to the range of targets in [-1, 1] times ``scale``."""
    return DDPMScheduler(num_train_timesteps=TRAIN_TIMESTEPS, beta_schedule="linear", prediction_type=prediction_type,
                         clip_sample=True, clip_sample_range=scale)


def diffusion_loss_at(model, scheduler: DDPMScheduler, target, condition, noise, t, run: Run) -> torch.Tensor:
    """MSE between the U-Net's output and the scheduler's target for the given noise and timesteps (B,)."""
    noisy = scheduler.add_noise(target, noise, t)
    with run.autocast():
        out = model(torch.cat([noisy, condition], dim=1), t).sample.float()  # input (B, 1 + 2, H, W)
    kind = scheduler.config.prediction_type
    goal = {"epsilon": noise, "sample": target}.get(kind)
    if goal is None:  # v_prediction
        goal = scheduler.get_velocity(target, noise, t)
    return F.mse_loss(out, goal)


def diffusion_draws(target: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Noise like ``target`` and one timestep per item, drawn on the CPU and moved to its device."""
    noise = torch.randn(target.shape, generator=gen).to(target.device)
    t = torch.randint(0, TRAIN_TIMESTEPS, (len(target),), generator=gen).to(target.device)  # (B,)
    return noise, t


def diffusion_loss(model, scheduler: DDPMScheduler, target, condition, gen: torch.Generator, run: Run) -> torch.Tensor:
    """DDPM training loss: the loss at fresh noise and random timesteps."""
    return diffusion_loss_at(model, scheduler, target, condition, *diffusion_draws(target, gen), run)


@dataclass
class Training:
    """What one training gives: its wall time, the training loss per step, the validation reads (one per
    ``val_every`` steps, as losses) and whether it stopped on them before its step cap."""
    seconds: float
    losses: list[float]
    reads: list[float] = field(default_factory=list)
    stopped: bool = False


def run_steps(model, step, val_loss, data_n: int, steps: int, config: Config, gen, run: Run, desc: str) -> Training:
    """``step(index batch) -> loss`` up to ``steps`` times. With ``val_loss`` (a held-out loss, lower is
    better) it is read every ``config.val_every`` steps; a read counts as a gain when it falls by more than
    ``config.min_gain_db`` in decibels (10 log10 of the loss), training stops after ``config.patience``
    reads without one, and the best read's weights are kept."""
    stopper = EarlyStopping(config.patience, higher_is_better=True, min_gain=config.min_gain_db)
    out = Training(0.0, [])
    model.train()
    start = time.perf_counter()
    for k, idx in enumerate(run.progress(batches(data_n, config.batch_size, steps, gen), desc, total=steps), 1):
        out.losses.append(step(idx))
        if val_loss is not None and k % config.val_every == 0 and k < steps:
            model.eval()
            with torch.no_grad():
                out.reads.append(float(val_loss()))
            model.train()
            if stopper.read(-10 * math.log10(max(out.reads[-1], 1e-12)), model):
                out.stopped = True
                break
    if val_loss is not None:
        stopper.restore(model)
    if run.device.type == "cuda":
        torch.cuda.synchronize(run.device)
    out.seconds = time.perf_counter() - start
    model.eval()
    return out


def adamw_step(model, loss_fn, lr: float):
    """One AdamW step on ``loss_fn(index batch)`` (gradients clipped to norm 1) per call; returns the loss."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)

    def step(idx) -> float:
        loss = loss_fn(idx)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimiser.step()
        return loss.item()
    return step


def on_device(pairs: Pairs, config: Config, run: Run, scale: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """``pairs`` as (target times ``scale``, condition) tensors on the run's device."""
    return pairs.target(config.residual).to(run.device) * scale, pairs.condition().to(run.device)


def train_ddpm(model, train: Pairs, val: Pairs | None, scale: float, config: Config, run: Run, gen, desc: str,
               steps: int | None = None, lr: float | None = None) -> Training:
    """The DDPM on ``train``'s targets times ``scale``; with ``val``, stopped early on the diffusion loss of
    its pairs at noise and timesteps drawn once (from ``gen`` before training), so reads differ only by
    the weights."""
    scheduler = noise_scheduler(config.prediction_type, scale)
    target, condition = on_device(train, config, run, scale)
    val_loss = None
    if val is not None:
        val_target, val_condition = on_device(val, config, run, scale)
        val_loss = functools.partial(diffusion_loss_at, model, scheduler, val_target, val_condition,
                                     *diffusion_draws(val_target, gen), run)
    step = adamw_step(model, lambda idx: diffusion_loss(model, scheduler, target[idx], condition[idx], gen, run),
                      lr or config.lr)
    return run_steps(model, step, val_loss, len(target), steps or config.train_steps, config, gen, run, desc)


def regression_loss(model, target, condition, run: Run, loss=F.mse_loss) -> torch.Tensor:
    with run.autocast():
        out = regress(model, condition).float()
    return loss(out, target)


def train_regression(model, train: Pairs, val: Pairs, config: Config, run: Run, gen,
                     desc: str = "U-Net regression") -> Training:
    """The regression U-Net with MSE, stopped early on the MSE of the held-out pairs."""
    (target, condition), (val_target, val_condition) = on_device(train, config, run), on_device(val, config, run)
    step = adamw_step(model, lambda idx: regression_loss(model, target[idx], condition[idx], run), config.lr)
    return run_steps(model, step, lambda: regression_loss(model, val_target, val_condition, run), len(target),
                     config.train_steps, config, gen, run, desc)


def train_pix2pix(generator, disc: PatchDiscriminator, train: Pairs, val: Pairs, config: Config, run: Run, gen,
                  desc: str = "pix2pix GAN") -> Training:
    """Alternate one discriminator and one generator step (Adam, betas 0.5 / 0.999 as in pix2pix); the
    losses are the generator's L1 term per step (its adversarial part does not settle by design), and it
    is stopped early on the generator's L1 on the held-out pairs."""
    opt_g = torch.optim.Adam(generator.parameters(), lr=config.gan_lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(disc.parameters(), lr=config.gan_lr, betas=(0.5, 0.999))
    (target, condition), (val_target, val_condition) = on_device(train, config, run), on_device(val, config, run)
    bce = nn.BCEWithLogitsLoss()

    def step(idx) -> float:
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
        l1 = F.l1_loss(fake.float(), real)
        loss_g = bce(d_fake, torch.ones_like(d_fake)) + config.gan_l1_weight * l1
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        return l1.item()

    return run_steps(generator, step, lambda: regression_loss(generator, val_target, val_condition, run, F.l1_loss),
                     len(target), config.train_steps, config, gen, run, desc)


@dataclass
class TaskModels:
    """One task's three trained models (by method), their trainings, and the DDPM's target scale."""
    models: dict[str, nn.Module]
    trainings: dict[str, Training]
    scale: float


def train_task(task: str, train: Pairs, config: Config, run: Run) -> TaskModels:
    """The three models of one task, each from streams of its own, every one stopped early on the same
    held-out share of the training pairs."""
    fit, val = split_validation(train, config.val_share)
    scale = target_scale(fit.target(config.residual))
    models, trainings = {}, {}
    models["conditional DDPM"] = build(config, 1 + CONDITION_CHANNELS, run, f"{task}-ddpm-init")
    trainings["conditional DDPM"] = train_ddpm(models["conditional DDPM"], fit, val, scale, config, run,
                                               run.torch_generator(f"{task}-ddpm-train"), f"{task}: conditional DDPM")
    models["U-Net regression"] = build(config, CONDITION_CHANNELS, run, f"{task}-unet-init")
    trainings["U-Net regression"] = train_regression(models["U-Net regression"], fit, val, config, run,
                                                     run.torch_generator(f"{task}-unet-train"),
                                                     f"{task}: U-Net regression")
    models["pix2pix GAN"] = build(config, CONDITION_CHANNELS, run, f"{task}-pix2pix-init")
    with run.seeded(f"{task}-patchgan-init"):
        disc = PatchDiscriminator(config.channels[0]).to(run.device)
    trainings["pix2pix GAN"] = train_pix2pix(models["pix2pix GAN"], disc, fit, val, config, run,
                                             run.torch_generator(f"{task}-pix2pix-train"), f"{task}: pix2pix GAN")
    return TaskModels(models, trainings, scale)


# ---- sampling -----------------------------------------------------------------------------------

@torch.no_grad()
def predict(model, condition: torch.Tensor, run: Run, batch: int = 64) -> torch.Tensor:
    """Regression U-Net or pix2pix generator outputs, (N, 1, H, W) on the CPU, clamped to [-1, 1]."""
    outs = []
    for chunk in condition.split(batch):
        with run.autocast():
            outs.append(regress(model, chunk.to(run.device)).float().clamp(-1, 1).cpu())
    return torch.cat(outs)


@torch.no_grad()
def sample(model, condition: torch.Tensor, steps: int, scale: float, config: Config, run: Run, gen: torch.Generator,
           sampler: str = "ddim", batch: int = 128) -> tuple[torch.Tensor, float]:
    """Conditional samples (N, 1, H, W) in [-1, 1] for ``condition`` (N, 2, H, W) from a DDPM trained on
    targets times ``scale``, and the wall time per sample in seconds. ``sampler`` "ddim": ``steps``
    deterministic DDIM steps; "ddpm": ancestral DDPM."""
    train = noise_scheduler(config.prediction_type, scale)
    if sampler == "ddim":
        scheduler = DDIMScheduler.from_config(train.config, timestep_spacing="trailing")
    else:
        scheduler = DDPMScheduler.from_config(train.config, timestep_spacing="trailing")
    scheduler.set_timesteps(steps)
    outs = []
    start = time.perf_counter()
    for chunk in condition.split(batch):
        chunk = chunk.to(run.device)
        # 1. start from pure noise (b, 1, H, W), drawn on the CPU from the sampler's stream
        x = torch.randn((len(chunk), 1, *chunk.shape[2:]), generator=gen).to(run.device)
        for t in scheduler.timesteps:
            # 2. predict the scheduler's target from x_t and the condition: input (b, 1 + 2, H, W)
            with run.autocast():
                out = model(torch.cat([x, chunk], dim=1), t).sample.float()
            # 3. step from x_t to the previous timestep: DDPM draws fresh noise, DDIM (eta 0) none
            x = scheduler.step(out, t, x, generator=gen).prev_sample if sampler == "ddpm" else \
                scheduler.step(out, t, x, eta=0.0).prev_sample
        # 4. keep the finished batch, back in the target's units and range, on the CPU
        outs.append((x / scale).clamp(-1, 1).cpu())
    if run.device.type == "cuda":
        torch.cuda.synchronize(run.device)
    return torch.cat(outs), (time.perf_counter() - start) / len(condition)


# ---- evaluation ---------------------------------------------------------------------------------

def fid_features(config: Config, run: Run) -> FidFeatures | None:
    """The FID Inception on the run's device, or None when the config switches FID off."""
    return FidFeatures(run.device) if config.fid else None


def to_image(x: torch.Tensor, test: Pairs, setting: str, config: Config) -> np.ndarray:
    """A model's output (N, 1, H, W) -> (N, H, W) in [0, 1]; inpainting keeps the known pixels of the input."""
    image = test.restore(x, config.residual)
    return np.where(test.mask.astype(bool), image, test.degraded) if setting == "inpaint" else image


def patch_scores(clean: np.ndarray, image: np.ndarray) -> dict[str, list[float]]:
    """PSNR and SSIM of each test patch, in the test set's order (what the paired comparisons pair)."""
    return {"psnr": psnr_each(clean, image).tolist(), "ssim": ssim_each(clean, image).tolist()}


def scores(clean: np.ndarray, image: np.ndarray) -> dict[str, float]:
    return {"psnr": psnr(clean, image), "ssim": ssim(clean, image)}


def evaluate_setting(setting: str, test: Pairs, trained: TaskModels, config: Config, run: Run,
                     features: FidFeatures | None):
    """Scores of every method on one task setting, the DDIM step sweep, the outputs for the grid and
    every method's per-patch scores. Every step count draws the same starting noise; the real test
    set is embedded once for FID."""
    cond, models = test.condition(), trained.models
    sweep, main = {}, None
    for steps in run.progress(sorted(config.sampling_steps), f"{setting}: DDIM sweep"):
        x, per_sample = sample(models["conditional DDPM"], cond, steps, trained.scale, config, run,
                               run.torch_generator(f"{setting}-ddim-noise"))
        main = to_image(x, test, setting, config)
        sweep[f"ddim_{steps}"] = {**scores(test.clean, main), "s_per_sample": per_sample}
    if config.ddpm_reference:
        x, per_sample = sample(models["conditional DDPM"], cond, TRAIN_TIMESTEPS, trained.scale, config, run,
                               run.torch_generator(f"{setting}-ddpm-noise"), sampler="ddpm")
        sweep["ddpm_1000"] = {**scores(test.clean, to_image(x, test, setting, config)), "s_per_sample": per_sample}
    outputs = {"input": test.degraded,
               "U-Net regression": to_image(predict(models["U-Net regression"], cond, run), test, setting, config),
               "pix2pix GAN": to_image(predict(models["pix2pix GAN"], cond, run), test, setting, config),
               "conditional DDPM": main}
    patches = {name: patch_scores(test.clean, image) for name, image in outputs.items()}
    results = {name: {k: float(np.mean(v)) for k, v in p.items()} for name, p in patches.items()}
    if features is not None:
        for name in METHODS:
            results[name].update(features.fid_kid(test.clean, outputs[name], real_key=f"{setting} test",
                                                  kid_subset=min(50, len(test)),
                                                  generator=run.torch_generator("kid-subsets")))
    return results, sweep, outputs, patches


def fewest_steps(sweep: dict, tolerance_db: float) -> int:
    """The fewest DDIM steps whose PSNR is within ``tolerance_db`` of the most steps measured."""
    ddim = {int(k.split("_")[1]): v["psnr"] for k, v in sweep.items() if k.startswith("ddim_")}
    best = ddim[max(ddim)]
    return min(s for s, p in ddim.items() if p >= best - tolerance_db)


# ---- LoRA adaptation ----------------------------------------------------------------------------

def lora_name(rank: int) -> str:
    return f"LoRA r={rank}"


def variants(config: Config) -> list[str]:
    """The adaptation variants in the order they run and are shown."""
    return [BASE, SCRATCH, *(lora_name(r) for r in config.lora_ranks), FULL]


def variant_stream(variant: str) -> str:
    """The stream prefix of an adaptation variant: "LoRA r=4" -> "adapt-lora-r4", "from scratch" -> "adapt-scratch"."""
    short = {BASE: "base", SCRATCH: "scratch", FULL: "full"}
    return "adapt-" + short.get(variant, variant.lower().replace(" ", "-").replace("=", ""))


def with_lora(model, rank: int, targets: tuple[str, ...]):
    """A peft ``PeftModel`` around ``model`` with rank-``rank`` adapters (alpha = rank) on ``targets``."""

    return get_peft_model(model, LoraConfig(r=rank, lora_alpha=rank, target_modules=list(targets), lora_dropout=0.0))


def check_targets(model, targets: tuple[str, ...]) -> None:
    """Fail loudly when a LoRA target names no module of the U-Net (peft matches by suffix)."""
    names = [name for name, _ in model.named_modules()]
    missing = [t for t in targets if not any(n == t or n.endswith("." + t) for n in names)]
    if missing:
        raise ValueError(f"lora_targets: {', '.join(missing)} match no module of UNet2DModel "
                         "(e.g. to_q, to_k, to_v, to_out.0, conv1, conv2, time_emb_proj, conv_shortcut)")


def memory_baseline(device) -> int | None:
    """Reset the peak statistics of ``device`` and return the bytes allocated now (None off a GPU)."""
    if torch.device(device).type != "cuda":
        return None
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)
    return torch.cuda.memory_allocated(device)


def peak_above(device, baseline: int | None) -> float | None:
    """Peak allocated MiB on ``device`` since ``memory_baseline``, above that baseline (None off a GPU)."""
    if baseline is None:
        return None
    return (torch.cuda.max_memory_allocated(device) - baseline) / 2**20


def adapted_model(variant: str, base, config: Config, run: Run):
    """The model a variant starts its adaptation from: a fresh U-Net, or a copy of the base (with LoRA)."""
    if variant == SCRATCH:
        return build(config, 1 + CONDITION_CHANNELS, run, f"{variant_stream(variant)}-init")
    model = copy.deepcopy(base)
    if variant.startswith("LoRA"):
        with run.seeded(f"{variant_stream(variant)}-init"):  # peft draws LoRA's A matrices
            model = with_lora(model, int(variant.split("=")[1]), config.lora_targets)
    return model


def adapt(base, scale: float, data: tuple[Pairs, dict[str, Pairs], DataNote], config: Config,
          run: Run) -> tuple[dict, dict]:
    """Every adaptation variant of the DDPM ``base`` (trained on targets times ``scale``, which every
    variant keeps) at the same number of steps on a small brain-MR set (``data``, from
    ``load(ADAPT_TASK, ...)``), without early stopping; returns ({variant: trainable parameters, wall time, peak memory,
    quality}, {variant: per-patch scores})."""
    train, tests, _ = data
    test = tests[ADAPT_TASK]
    check_targets(base, config.lora_targets)
    total = count(base)
    results, patches = {}, {}
    for variant in variants(config):
        baseline = memory_baseline(run.device) if variant != BASE else None
        model = adapted_model(variant, base, config, run)
        trainable = count(model, trainable_only=True) if variant != BASE else 0
        wall = 0.0
        if variant != BASE:
            lr = config.lora_lr if variant.startswith("LoRA") else config.lr
            wall = train_ddpm(model, train, None, scale, config, run,
                              run.torch_generator(f"{variant_stream(variant)}-train"), f"adapt: {variant}",
                              steps=config.adapt_steps, lr=lr).seconds
        peak = peak_above(run.device, baseline)
        out, per_sample = sample(model, test.condition(), max(config.sampling_steps), scale, config, run,
                                 run.torch_generator("adapt-ddim-noise"))  # the same noise for every variant
        image = test.restore(out, config.residual)
        patches[variant] = patch_scores(test.clean, image)
        results[variant] = {"trainable_params": trainable, "trainable_percent": 100 * trainable / total,
                            "wall_time_s": wall, "peak_memory_mib": peak, **scores(test.clean, image),
                            "s_per_sample": per_sample}
        del model
    results["input (noisy)"] = scores(test.clean, test.degraded)
    return results, patches

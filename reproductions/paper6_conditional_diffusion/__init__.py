"""Paper 6: Hung et al. 2023, "Med-cDiff: Conditional medical image generation with diffusion
models", bib key Hung2023MedcDiff.

What is reproduced: one conditional DDPM design (the condition image concatenated to the noisy
input of a diffusers ``UNet2DModel``) trained per task for chest X-ray denoising, MRI
super-resolution (one model for x2 and x4) and brain MRI inpainting, against a pix2pix-style GAN
(U-Net generator + PatchGAN, L1 + adversarial) and a plain U-Net regression (the same U-Net, timestep
fixed at 0, MSE); PSNR, SSIM and FID (the standard FID Inception) per task, and sample grids. The
DDPM is sampled with DDIM at several step counts, measured for quality and time per sample (and,
in the full profile, with the 1000-step DDPM sampler as the reference). Then, beyond the paper and
after the review's case for parameter-efficient methods in low-resource settings: the X-ray
denoising DDPM adapted to brain-MR denoising from a small training set with peft LoRA at ranks 4, 8
and 16 against full fine-tuning and training from scratch: trainable parameters, wall time, peak
GPU memory and quality side by side. Every model is trained afresh for each of ``seeds`` seeds on
the same patches, and each claim is decided over the seeds with a paired bootstrap over seeds and
test patches: the DDPM against the GAN, the rival the paper names (the U-Net as our context).

The parts: ``model.py`` (data loading, networks, training, sampling, evaluation, the LoRA
adaptation), its helper ``patches.py`` (where each task's patches come from) and ``report.py``
(the rows, the claims, the figures).

How it differs from the paper, and why:
- reported-results.md found no numbers and no code for Med-cDiff: every paper cell reads "not
  reported" and the verdicts test its qualitative claims.
- Data: the paper's data sets are not available offline. Patches of one real chest radiograph
  (denoising), two real MR slices (super-resolution) and the MNI152 template as a substitute for
  single-subject brain MRI (inpainting), with simulated degradations (Gaussian noise, area
  downsampling then bicubic upsampling, one zero-filled rectangle). Train and test patches come
  from disjoint halves of each image (the brain: inferior vs superior slices 10 mm apart).
- Scale: small U-Nets (one ResNet block per level, attention at the lowest) instead of the paper's
  scale; the sizes are in config.json. Every main model trains until its loss on held-out training
  pairs (an eighth of them, from the same half of the image) stops falling by more than 0.05 dB
  over 4 reads 50 steps apart, the best read's weights kept, up to a cap of ``train_steps``: the
  DDPM's diffusion loss at noise and timesteps drawn once, the U-Net's MSE, the GAN generator's L1.
  A training that reaches the cap was still improving and makes its claims inconclusive.
- The condition is the degraded image plus a mask of lost pixels (zeros except for inpainting),
  concatenated to the noisy target (3 input channels); for inpainting every method's output keeps
  the known pixels. Super-resolution: one model per method for both x2 and x4 (half of the
  training pairs each).
- Sampling: deterministic DDIM (trailing spacing) at several step counts, the most of them giving
  the main result; the 1000-step DDPM sampler runs only in the full profile (too slow on a CPU).
  The DDPM predicts v (Salimans and Ho 2022), not x0: an x0-predicting DDPM sampled with
  deterministic DDIM behaves like a regression and would not test a diffusion model. It diffuses
  its target divided by the training targets' standard deviation (unit spread, as the noise
  schedule assumes; the residual of sigma-0.1 noise would otherwise be lost in the first steps),
  and its samples are scaled back. A DDIM sample is one draw from the model's posterior, not its
  mean, so at a perfect fit its PSNR lies about 3 dB below a regression's (twice the MSE): PSNR and
  SSIM favour the regression-like rivals by construction, which the paper's claim must overcome.
- Baselines: a pix2pix GAN (U-Net generator, PatchGAN discriminator, BCE + 100 L1) and a
  regression U-Net (MSE), both the DDPM's U-Net architecture with the timestep fixed at 0; the
  paper compares GANs and a VAE (no VAE here). The GAN's Adam rate is raised above pix2pix's 2e-4
  for the short smoke and cpu schedules.
- Metrics: PSNR, SSIM and FID (standard FID Inception via torchmetrics; KID in metrics.json). FID
  on fewer than 1,000 patches is biased, so the realism claim is not testable on fewer (the cpu
  profile has 256 and switches FID off). LPIPS, the paper's perceptual metric, is not computed:
  its AlexNet / VGG weights cannot be had offline, and no other metric is called LPIPS. No
  downstream accuracy / Dice and no 2AFC reader test.
- LoRA is not part of Med-cDiff: the adaptation experiment tests the review's case for
  parameter-efficient fine-tuning, shown as our addition. Its cost is judged by peak GPU memory
  only: the wall time of a small model on a CPU says nothing of it, so it is not testable on a
  CPU. Base: the X-ray denoising DDPM; target: brain-MR denoising from a small set, the same
  number of steps for every variant; peft LoRA (alpha = rank), full fine-tuning and training from
  scratch; quality from DDIM samples at the most steps; judged at the smallest rank.
- bf16 autocast on a GPU only; CPU runs are fp32, and peak GPU memory is not measured on a CPU. On
  a GPU it is each variant's own peak: the maximum allocated during its adaptation minus what was
  allocated before its model was made (not the base model or the FID Inception left resident).
- Profiles: smoke (about a minute on a 2-core CPU, the tested one, FID off, one seed: decides
  nothing); cpu (the committed results of a machine without a GPU: chest X-ray denoising only, the
  one task on a real image whose DDPM is also the LoRA base, 24 px patches, 256 test patches, three
  seeds, LoRA at rank 4 only, FID off: it can decide the DDPM against the GAN on PSNR and SSIM, not
  realism, and not LoRA's memory);
  full (every task, 64 px patches, larger U-Nets, longer training, bf16 autocast, 1,000 test
  patches for FID, the 1000-step DDPM reference; sized for one GPU, not timed on one).
"""

from __future__ import annotations

from dataclasses import dataclass

from reproductions.common.docstring import differences
from reproductions.common.numbers import mean_of_trees
from reproductions.outcome import Outcome
from reproductions.paper6_conditional_diffusion import model, report
from reproductions.run import Run

TASKS = ("denoise", "sr", "inpaint")
PREDICTION_TYPES = ("epsilon", "v_prediction", "sample")


@dataclass(frozen=True)
class Config:
    tasks: tuple[str, ...] = TASKS
    patch_size: int = 32
    n_train: int = 512  # training patches per task (sr: half paired with x2, half with x4 inputs)
    n_test: int = 32  # test patches per task setting; FID uses all of them
    noise_sigma: float = 0.1  # std of the Gaussian noise of the denoising tasks, images in [0, 1]
    channels: tuple[int, ...] = (32, 64, 64)  # U-Net widths per resolution; attention at the lowest
    layers_per_block: int = 1
    prediction_type: str = "v_prediction"  # what the DDPM's U-Net predicts (Ho et al. 2020: epsilon)
    residual: bool = True  # every method learns clean - degraded rather than the clean image
    train_steps: int = 400  # the most optimiser steps of every main model (DDPM, GAN, U-Net) per task
    val_share: float = 0.125  # of the training pairs held out for early stopping
    val_every: int = 50  # steps between held-out reads
    patience: int = 4  # reads without a gain before a training stops
    min_gain_db: float = 0.05  # a gain: the held-out loss falls by more than this in dB (about 1.2%)
    batch_size: int = 16
    lr: float = 1e-3
    gan_lr: float = 2e-4  # pix2pix's Adam rate (beta1 0.5)
    gan_l1_weight: float = 100.0  # pix2pix's lambda
    sampling_steps: tuple[int, ...] = (5, 10, 25)  # DDIM step counts measured; the largest is the main result
    ddpm_reference: bool = False  # also sample with the 1000-step ancestral DDPM sampler
    fid: bool = True
    grid_examples: int = 4
    lora: bool = True  # run the adaptation experiment (needs the denoise task: its DDPM is the base)
    lora_ranks: tuple[int, ...] = (4, 8, 16)
    lora_targets: tuple[str, ...] = ("to_q", "to_k", "to_v", "to_out.0", "conv2")
    lora_lr: float = 2e-3  # LoRA's B starts at zero, so it takes a larger rate than full fine-tuning
    adapt_train: int = 64  # the low-resource target set: brain-MR patches for adaptation
    adapt_steps: int = 150
    tolerance_db: float = 0.5  # "quality holds": within this PSNR of the reference
    seeds: int = 3  # trainings of every model (and adaptation) the claims are decided over

    def __post_init__(self):
        unknown = set(self.tasks) - set(TASKS)
        if not self.tasks or unknown:
            raise ValueError(f"tasks: choose from {', '.join(TASKS)} (got {', '.join(self.tasks) or 'none'})")
        for name in ("patch_size", "n_train", "n_test", "train_steps", "batch_size", "adapt_train", "adapt_steps",
                     "layers_per_block", "grid_examples", "seeds", "val_every", "patience"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if not 0 < self.val_share < 0.5 or self.min_gain_db < 0:
            raise ValueError("val_share must lie between 0 and 0.5 and min_gain_db must not be negative")
        if self.n_test < 2 or self.n_train < 2:
            raise ValueError("n_train and n_test must be at least 2 (FID needs two images a side)")
        if len(self.channels) < 2 or min(self.channels) < 1:
            raise ValueError("channels: give two or more positive widths")
        groups = min(8, self.channels[0])
        if any(c % groups for c in self.channels):
            raise ValueError(f"channels: every width must be divisible by {groups} (the GroupNorm groups)")
        step = max(4, 2 ** (len(self.channels) - 1))
        if self.patch_size % step:
            raise ValueError(f"patch_size: must be a multiple of {step} (x4 downsampling and "
                             f"{len(self.channels) - 1} halvings of the U-Net)")
        if self.prediction_type not in PREDICTION_TYPES:
            raise ValueError(f"prediction_type: choose from {', '.join(PREDICTION_TYPES)}")
        if not self.sampling_steps or min(self.sampling_steps) < 1 or max(self.sampling_steps) > model.TRAIN_TIMESTEPS:
            raise ValueError(f"sampling_steps: give step counts between 1 and {model.TRAIN_TIMESTEPS}")
        if self.lora and "denoise" not in self.tasks:
            raise ValueError("lora: the adaptation starts from the denoise DDPM; add denoise to tasks "
                             "or set lora=false")
        if self.lora and (not self.lora_ranks or min(self.lora_ranks) < 1 or not self.lora_targets):
            raise ValueError("lora_ranks / lora_targets: give positive ranks and at least one target module")
        if min(self.noise_sigma, self.lr, self.gan_lr, self.lora_lr, self.gan_l1_weight, self.tolerance_db) <= 0:
            raise ValueError("noise_sigma, lr, gan_lr, lora_lr, gan_l1_weight and tolerance_db must be positive")


PRESETS = {
    # every piece once, tiny: about a minute on an idle 2-core CPU. FID is off: each FID costs seconds of
    # 2048 x 2048 matrix algebra whatever the number of images (the tests check the FID path on its own).
    "smoke": Config(n_train=64, n_test=6, channels=(16, 32), train_steps=12, batch_size=8, gan_lr=1e-3, fid=False,
                    sampling_steps=(2, 4), grid_examples=3, lora_ranks=(4, 8, 16), adapt_train=16, adapt_steps=6,
                    seeds=1, val_every=4, patience=2),
    # the committed results without a GPU: chest X-ray denoising alone (a real image, and the LoRA base),
    # 24 px patches, a 0.28M-parameter U-Net, every model stopped early within 1500 steps (3 methods x 3 seeds),
    # 256 test patches, DDIM at 5 and 10 steps, LoRA at rank 4 only (the rank its claim is judged at) with 150
    # adaptation steps per variant, no FID (biased on fewer than 1,000 patches).
    "cpu": Config(tasks=("denoise",), patch_size=24, n_test=256, channels=(16, 32, 32), train_steps=1500,
                  gan_lr=1e-3, fid=False, sampling_steps=(5, 10), lora_ranks=(4,), adapt_train=64),
    # one H100, bf16: 64 px patches, a 12.6M-parameter U-Net, at most 2500 steps per model (9 models) at batch 64, 500
    # adaptation steps per variant (5 variants), the 1000-step DDPM reference. An estimate, not timed on a GPU:
    # 4000 and 1000 steps were estimated at 10-13 minutes, so the steps were cut to fit about ten minutes.
    "full": Config(patch_size=64, n_train=4096, n_test=1000, channels=(64, 128, 128, 256), train_steps=2500,
                   batch_size=64, lr=2e-4, sampling_steps=(5, 10, 25, 50, 100), ddpm_reference=True,
                   adapt_train=256, adapt_steps=500, lora_lr=1e-3),
}


def main(config: Config, run: Run) -> Outcome:
    """Load every task's patches once, then per seed train the three models of each task, evaluate
    each setting and adapt the X-ray DDPM with LoRA; then report over the seeds."""
    features = model.fid_features(config, run)
    data = {task: model.load(task, config.n_train, config, run) for task in config.tasks}  # one set for all seeds
    adapt_data = model.load(model.ADAPT_TASK, config.adapt_train, config, run) if config.lora else None
    trials = [trial(data, adapt_data, config, replica, features) for replica in run.replicas(config.seeds)]
    per_seed = [metrics for metrics, _ in trials]
    metrics = {"seeds": config.seeds, "tasks": mean_of_trees([m["tasks"] for m in per_seed]),
               "sampling": mean_of_trees([m["sampling"] for m in per_seed]), "per_seed": per_seed,
               "n_train": config.n_train, "n_test": config.n_test}
    metrics["fewest_steps"] = {s: model.fewest_steps(sweep, config.tolerance_db)
                               for s, sweep in metrics["sampling"].items()}
    notes = {task: note for task, (_, _, note) in data.items()}
    outputs = trials[0][1]  # the grids show the first seed
    figures = [report.sample_grid(setting, out, tests[setting].clean, metrics["tasks"][setting], notes[task], config,
                                  run)
               for task, (_, tests, _) in data.items() for setting, out in outputs.items() if setting in tests]
    figures += [report.steps_curves(metrics["sampling"], run), report.training_curves(per_seed, config, run)]
    if config.lora:
        metrics["lora"] = mean_of_trees([m["lora"] for m in per_seed])
        notes[model.ADAPT_TASK] = adapt_data[2]
        figures.append(report.lora_panel(metrics["lora"], notes[model.ADAPT_TASK], config, run))
    notes_shown = list({note.name: note for note in notes.values()}.values())  # inpaint and the LoRA target share one
    return Outcome(metrics, report.rows(metrics, config, str(run.device)), report.claims(metrics, config), notes_shown,
                   figures, differences(__doc__))


def trial(data: dict, adapt_data, config: Config, run: Run, features) -> tuple[dict, dict]:
    """One seed: every task's three models trained and evaluated, then the LoRA adaptation; returns
    its metrics ({"tasks", "sampling", "train_time_s", "curves" (training loss per step), "val_reads"
    (held-out loss per read), "stopped" (early, before the cap), "ddpm_scale", "patches", "lora",
    "lora_patches"}) and the outputs of each setting for the sample grids."""
    keys = ("tasks", "sampling", "train_time_s", "curves", "val_reads", "stopped", "ddpm_scale", "patches")
    metrics = {key: {} for key in keys}
    outputs, base = {}, None
    for task, (train, tests, _) in data.items():
        trained = model.train_task(task, train, config, run)
        for name, values in (("train_time_s", "seconds"), ("curves", "losses"), ("val_reads", "reads"),
                             ("stopped", "stopped")):
            metrics[name][task] = {method: getattr(t, values) for method, t in trained.trainings.items()}
        metrics["ddpm_scale"][task] = trained.scale
        for setting, test in tests.items():
            (metrics["tasks"][setting], metrics["sampling"][setting], outputs[setting],
             metrics["patches"][setting]) = model.evaluate_setting(setting, test, trained, config, run, features)
        base = trained if task == "denoise" else base
        del trained
    if config.lora:
        metrics["lora"], metrics["lora_patches"] = model.adapt(base.models["conditional DDPM"], base.scale,
                                                               adapt_data, config, run)
    return metrics, outputs

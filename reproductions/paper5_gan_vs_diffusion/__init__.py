"""Paper 5: Usman Akbar et al. 2024, GANs vs diffusion models for brain tumour MRI (bib key
UsmanAkbar2024BrainTumor).

What is reproduced: the paper's central comparison, on 3 seeds (each seed trains every generator
and U-Net afresh). Two generators learn image and tumour mask together (one tensor, image
channels + mask channel): a DCGAN (``reproductions.common.dcgan``) and a DDPM (diffusers
``UNet2DModel`` trained with ``DDPMScheduler``, sampled with ``DDIMScheduler`` in fewer steps).
The same U-Net (MONAI ``UNet``, the same initial weights for every source of a seed) is trained on
real pairs and on each generator's synthetic pairs (with ``mixed``, also on real plus synthetic),
stopped early on held-out pairs of its own source, and evaluated on held-out real slices: Dice,
Hausdorff distance (the maximum, as the paper reports, and HD95) and the synthetic/real Dice ratio
against the paper's 80-90%, decided on the per-seed ratios with a t interval. Memorisation: both
generators trained as long on a small set of 16 slices as on the larger one; each sample's
distance to its nearest training tumour mask (1 - Dice), against the same distance of new real
slices (the held-out baseline): the paper says diffusion copies when data are few. FID per
generator and DDIM at a few step counts against the full chain (with ``fid``) are context.

The parts: ``model.py`` (the pairs, both generators, the segmenter, FID and memorisation) and
``report.py`` (the paper's numbers with their source, the rows, the claims and the figures).
Profiles: smoke (one seed of everything, tiny); cpu (the committed results: 32 px, 3 seeds, the
DDPM 1500 steps on each set, the U-Net on real, GAN and DDPM pairs, no FID); full (64 px, larger
sets and networks, the mixes and FID; sized for one GPU, not timed on one).

How it differs from the paper, and why:
- Data: without BraTS offline, the pairs are a phantom: tumours (core, oedema, enhancing rim)
  drawn on axial slices of the real MNI152 T1 template (``reproductions.data.phantoms``), one T1
  channel + mask, 32 px (smoke, cpu) or 64 px (full) instead of four sequences at 256 px. Every
  slice shows the same template brain, so held-out slices share anatomy with training slices and
  only the tumours are new; the drawn tumour is more conspicuous than a real one, so every Dice
  here is higher than BraTS would give. ``--set brats=/path`` uses real BraTS 2020/2021 subject
  folders (four sequences + mask: the paper's five channels), split by subject.
- Generators: one DCGAN instead of progressive GAN and StyleGAN 1-3; a small DDPM with a cosine
  schedule of 50-1000 steps (by profile) instead of 4000 steps, its synthetic pairs sampled by
  DDIM in fewer steps; learning rates raised above the paper's 1e-4 for the short CPU trainings.
  Both sizes of training set get the same number of optimisation steps, so the small set is seen
  many more times (the regime where copying shows).
- The segmentation target is the whole tumour (all BraTS labels > 0), binary; one U-Net with
  Adam and early stopping instead of the paper's U-Net (lr 2e-2) and Swin transformer; 3 seeds
  instead of 10.
- Hausdorff distances are in pixels of the working size, not millimetres; an empty prediction on
  a slice with tumour (a missed tumour) scores the image diagonal rather than being left out; a
  slice without tumour and a non-empty prediction has no defined distance and is left out.
- Whether FID tracks segmentation is not tested: two generators give one ordering per seed, where
  the paper ranks five. FID on tens to hundreds of images is biased high (and noisy); the
  real-vs-real FID at the same count is its floor. No Inception Score (its weights are not
  obtainable offline).
- Memorisation is read on the mask channel alone, since every phantom slice shows one brain.
- The full profile is sized for one H100 with bf16 autocast but was not timed on a GPU.
"""

from __future__ import annotations

from dataclasses import dataclass

from reproductions.common import dcgan
from reproductions.common.docstring import differences
from reproductions.metrics.images import FidFeatures
from reproductions.outcome import Outcome
from reproductions.paper5_gan_vs_diffusion import model, report
from reproductions.run import Run

PREDICTIONS = ("v_prediction", "epsilon")


@dataclass(frozen=True)
class Config:
    brats: str = ""  # BraTS subject folders; empty: the brain MRI phantom
    size: int = 32  # px; the DCGAN makes 32 or 64
    n_train: int = 256  # real training pairs (the larger set)
    n_small: int = 16  # the small set (a subset of the training pairs), for memorisation
    n_test: int = 96  # held-out real slices for the segmenters
    n_synthetic: int = 256  # pairs sampled from each generator to train a U-Net on
    seeds: int = 3  # trainings of every generator and U-Net the claims are decided over
    # DCGAN (image + mask as channels); epochs on the larger set, the small set gets as many steps
    gan_width: int = 16
    gan_epochs: int = 60
    gan_batch: int = 32
    # DDPM
    ddpm_channels: tuple[int, ...] = (16, 32, 32)
    ddpm_attention: bool = False  # self-attention in the lowest-resolution block
    ddpm_steps: int = 1500  # optimisation steps, for each training set
    ddpm_batch: int = 8
    ddpm_lr: float = 1e-3
    ddpm_prediction: str = "v_prediction"  # or "epsilon" (the original DDPM's); v trains faster on short budgets
    timesteps: int = 250  # the DDPM chain (cosine schedule); the paper uses 4000
    ddim_steps: int = 25  # the step count that makes the DDPM's synthetic pairs
    compare_steps: tuple[int, ...] = (10, 25, 50)  # DDIM step counts measured against the full chain (with fid)
    # segmenter (the same U-Net for every training source), stopped early on the source's own validation pairs
    seg_channels: tuple[int, ...] = (8, 16, 32, 64)
    seg_max_steps: int = 1000
    seg_eval_every: int = 50  # steps between validation reads
    seg_patience: int = 4  # reads without a gain before it stops
    seg_val_share: float = 0.15  # of each source's pairs, held out for stopping
    seg_batch: int = 32
    seg_lr: float = 3e-3
    mixed: bool = True  # also train on real + each generator's pairs (context: the paper's claims need no mix)
    # evaluation
    fid: bool = True  # FID of each generator and the DDIM step sweep (context: two generators rank nothing)
    fid_samples: int = 64
    memorisation_samples: int = 64

    def __post_init__(self):
        if self.size not in dcgan.SIZES:
            raise ValueError(f"size: choose {' or '.join(map(str, dcgan.SIZES))} (the DCGAN's sizes), not {self.size}")
        for name in ("n_train", "n_small", "n_test", "n_synthetic", "seeds", "gan_width", "gan_epochs", "gan_batch",
                     "ddpm_steps", "ddpm_batch", "timesteps", "ddim_steps", "seg_max_steps", "seg_eval_every",
                     "seg_patience", "seg_batch", "memorisation_samples"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.n_small >= self.n_train:
            raise ValueError(f"n_small ({self.n_small}) must be smaller than n_train ({self.n_train})")
        if self.fid_samples < 2:
            raise ValueError("fid_samples must be at least 2 (FID needs a covariance)")
        if max(self.ddim_steps, *self.compare_steps, 0) > self.timesteps:
            raise ValueError(f"ddim_steps and compare_steps must not exceed timesteps ({self.timesteps})")
        if not self.ddpm_channels or min(self.ddpm_channels) < 8 or any(c % 8 for c in self.ddpm_channels):
            raise ValueError("ddpm_channels: give multiples of 8 (group norm uses 8 groups)")
        if len(self.seg_channels) < 2 or min(self.seg_channels) < 1:
            raise ValueError("seg_channels: give two or more positive widths")
        if self.size % 2 ** (len(self.ddpm_channels) - 1) or self.size % 2 ** (len(self.seg_channels) - 1):
            raise ValueError("ddpm_channels / seg_channels: too many levels for this size")
        if self.ddpm_prediction not in PREDICTIONS:
            raise ValueError(f"ddpm_prediction: choose {' or '.join(PREDICTIONS)}, not {self.ddpm_prediction!r}")
        if min(self.ddpm_lr, self.seg_lr) <= 0:
            raise ValueError("ddpm_lr and seg_lr must be positive")
        if not 0 < self.seg_val_share < 0.5:
            raise ValueError("seg_val_share: give a share between 0 and 0.5 of each source held out for stopping")


PRESETS = {
    # the whole pipeline once on a few dozen 32 px pairs: about a minute on a 2-core CPU.
    "smoke": Config(n_train=48, n_small=12, n_test=24, n_synthetic=48, seeds=1, gan_width=8, gan_epochs=8,
                    gan_batch=16, ddpm_channels=(16, 32, 32), ddpm_steps=60, ddpm_batch=16, timesteps=50, ddim_steps=5,
                    compare_steps=(5,), seg_channels=(8, 16, 32), seg_max_steps=40, seg_eval_every=10, seg_patience=2,
                    seg_batch=16, fid_samples=12, memorisation_samples=16),
    # the committed results without a GPU: 32 px, 3 seeds of a 0.27M-parameter DDPM trained 1500 steps on
    # 256 pairs and 1500 on 16 (memorisation), the U-Net stopped early on real, GAN and DDPM pairs; no
    # real + synthetic mix and no FID (neither decides a claim).
    "cpu": Config(mixed=False, fid=False),
    # 64 px on one GPU with bf16 (not timed on a GPU): larger sets and networks, the 1000-step chain.
    "full": Config(size=64, n_train=2000, n_small=16, n_test=400, n_synthetic=2000, seeds=3, gan_width=32,
                   gan_epochs=60, gan_batch=64, ddpm_channels=(64, 128, 128, 256), ddpm_attention=True,
                   ddpm_steps=6000, ddpm_batch=64, ddpm_lr=2e-4, timesteps=1000, ddim_steps=50,
                   compare_steps=(10, 25, 50, 100), seg_channels=(16, 32, 64, 128, 256), seg_max_steps=3000,
                   seg_batch=64, seg_lr=1e-3, fid_samples=400, memorisation_samples=400),
}


def main(config: Config, run: Run) -> Outcome:
    """Load the pairs once, then per seed train both generators on both set sizes, sample, train and
    score the U-Nets, FID and memorisation; then report over the seeds."""
    train, test, note = model.load_data(config, run)
    features = FidFeatures(run.device) if config.fid else None
    trials = [trial(train, test, config, replica, features) for replica in run.replicas(config.seeds)]
    per_seed = [metrics for metrics, _ in trials]
    metrics = report.metrics(config, note, train, test, per_seed)
    figures = report.figures(train, trials[0][1], per_seed, note, config, run)  # samples of the first seed
    return Outcome(metrics, report.rows(metrics, config), report.claims(metrics),
                   report.data_notes(note, config), figures, differences(__doc__))


def trial(train: model.Pairs, test: model.Pairs, config: Config, run: Run, features) -> tuple[dict, dict]:
    """One seed: both generators on both sets, their synthetic pairs, the U-Nets, memorisation and FID;
    returns its metrics and its synthetic pairs (for the sample figure)."""
    generators = model.train_generators(train, config, run)
    synthetic, timing = model.sample_synthetic(generators, config, run)
    seg, seg_histories = model.evaluate_sources(train, test, synthetic, config, run)
    mem = model.evaluate_memorisation(train, test, generators, config, run)
    fid, sampling = (model.evaluate_fid(train, test, synthetic, generators["DDPM", "large"][0], features, config, run)
                     if features else ({}, {}))
    real = seg["real"]["dice"]
    metrics = {"segmentation": seg, "ratio": {g: seg[g]["dice"] / real if real > 0 else None for g in model.GENERATORS},
               "memorisation": mem, "fid": fid, "sampling": sampling, "sampling_s_per_image": timing,
               "synthetic_tumour_fraction": {g: float(synthetic[g].masks.mean()) for g in model.GENERATORS},
               "curves": {"DDPM": {label: generators["DDPM", label][1] for label in ("large", "small")},
                          "GAN": {label: generators["GAN", label][1] for label in ("large", "small")},
                          "U-Net": seg_histories}}
    return metrics, synthetic

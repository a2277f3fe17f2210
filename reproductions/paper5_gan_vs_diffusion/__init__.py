"""Paper 5: Usman Akbar et al. 2024, GANs vs diffusion models for brain tumour MRI (bib key
UsmanAkbar2024BrainTumor).

What is reproduced: the paper's central comparison. Two generators learn image and tumour mask
together (one tensor, image channels + mask channel): a DCGAN (``reproductions.common.dcgan``) and
a DDPM (diffusers ``UNet2DModel`` trained with ``DDPMScheduler``, sampled with ``DDIMScheduler``
in fewer steps). The same U-Net (MONAI ``UNet``, same initial weights per seed) is trained on real
pairs, on each generator's synthetic pairs and on real plus synthetic pairs, and evaluated on
held-out real slices: Dice, Hausdorff distance (the maximum, as the paper reports, and HD95) and
the synthetic/real Dice ratio beside the paper's 80-90%. FID per generator (the standard FID
Inception) and whether its ordering follows Dice's. Memorisation: each sample's highest
correlation with any training pair, for both generators trained on a small and a larger set (the
paper: diffusion memorises when data are few), judged by its excess over held-out real slices
against the same training set, since a larger pool raises the highest correlation by itself.
DDIM at a few step counts against the full DDPM chain, FID and seconds per image (every sampler
timed on the same number of images), to pick a step count where quality holds.

The parts: ``model.py`` (the pairs, both generators, the segmenter, FID and memorisation) and
``report.py`` (the paper's numbers with their source, the rows, the claims and the figures).

How it differs from the paper, and why:
- Data: without BraTS offline, the pairs are a phantom: tumours (core, oedema, enhancing rim)
  drawn on axial slices of the real MNI152 T1 template (``reproductions.data.phantoms``), one T1
  channel + mask, 32 px (smoke, cpu) or 64 px (full) instead of four sequences at 256 px. Every
  slice shows the same template brain, so held-out slices share anatomy with training slices and
  only the tumours are new. ``--set brats=/path`` uses real BraTS 2020/2021 subject folders
  (four sequences + mask: the paper's five channels), split by subject.
- Generators: one DCGAN instead of progressive GAN and StyleGAN 1-3; a small DDPM with a cosine
  schedule of 50-1000 steps (by profile) instead of 4000 steps, its synthetic pairs sampled by
  DDIM in fewer steps; learning rates raised above the paper's 1e-4 for the short CPU trainings.
  Both sizes of training set get the same number of optimisation steps, so the small set is seen
  many more times (the regime where copying shows).
- The segmentation target is the whole tumour (all BraTS labels > 0), binary; one U-Net with
  Adam instead of the paper's U-Net (lr 2e-2) and Swin transformer; 1-5 seeds instead of 10.
- Hausdorff distances are in pixels of the working size, not millimetres; an empty prediction on
  a slice with tumour (a missed tumour) scores the image diagonal rather than being left out; a
  slice without tumour and a non-empty prediction has no defined distance and is left out.
- FID on tens to hundreds of images is biased high (and noisy); the real-vs-real FID at the same
  count is reported as its floor. No Inception Score (its weights are not obtainable offline).
- Memorisation is the Pearson correlation over the whole image+mask pair, beside the same
  statistic for held-out real pairs (which is high here because all phantom slices share one brain).
- The full profile is sized for one H100 with bf16 autocast but was not timed on a GPU.
"""

from __future__ import annotations

from dataclasses import dataclass

from reproductions.common import dcgan
from reproductions.common.docstring import differences
from reproductions.outcome import Outcome
from reproductions.paper5_gan_vs_diffusion import model, report
from reproductions.run import Run

PREDICTIONS = ("v_prediction", "epsilon")


@dataclass(frozen=True)
class Config:
    brats: str = ""  # BraTS subject folders; empty: the brain MRI phantom
    size: int = 32  # px; the DCGAN makes 32 or 64
    n_train: int = 256  # real training pairs (the larger set)
    n_small: int = 32  # the small set (a subset of the training pairs), for memorisation
    n_test: int = 96  # held-out real slices for the segmenters
    n_synthetic: int = 256  # pairs sampled from each generator to train a U-Net on
    # DCGAN (image + mask as channels); epochs on the larger set, the small set gets as many steps
    gan_width: int = 16
    gan_epochs: int = 60
    gan_batch: int = 32
    # DDPM
    ddpm_channels: tuple[int, ...] = (32, 64, 64)
    ddpm_attention: bool = False  # self-attention in the lowest-resolution block
    ddpm_steps: int = 1500  # optimisation steps, for each training set
    ddpm_batch: int = 32
    ddpm_lr: float = 1e-3
    ddpm_prediction: str = "v_prediction"  # or "epsilon" (the original DDPM's); v trains faster on short budgets
    timesteps: int = 250  # the DDPM chain (cosine schedule); the paper uses 4000
    ddim_steps: int = 25  # the step count that makes the DDPM's synthetic pairs
    compare_steps: tuple[int, ...] = (10, 25, 50)  # DDIM step counts measured against the full chain
    # segmenter (the same U-Net for every training source)
    seg_channels: tuple[int, ...] = (16, 32, 64, 128)
    seg_steps: int = 400  # optimisation steps per training source
    seg_batch: int = 32
    seg_lr: float = 1e-3
    seg_seeds: int = 2
    # evaluation
    fid_samples: int = 64
    memorisation_samples: int = 128

    def __post_init__(self):
        if self.size not in dcgan.SIZES:
            raise ValueError(f"size: choose {' or '.join(map(str, dcgan.SIZES))} (the DCGAN's sizes), not {self.size}")
        for name in ("n_train", "n_small", "n_test", "n_synthetic", "gan_width", "gan_epochs", "gan_batch",
                     "ddpm_steps", "ddpm_batch", "timesteps", "ddim_steps", "seg_steps", "seg_batch", "seg_seeds",
                     "memorisation_samples"):
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


PRESETS = {
    # the whole pipeline on a few dozen 32 px pairs: about a minute on a 2-core CPU.
    "smoke": Config(n_train=48, n_small=12, n_test=24, n_synthetic=48, gan_width=8, gan_epochs=8, gan_batch=16,
                    ddpm_channels=(16, 32, 32), ddpm_steps=60, ddpm_batch=16, timesteps=50, ddim_steps=5,
                    compare_steps=(5,), seg_channels=(8, 16, 32), seg_steps=40, seg_batch=16, seg_seeds=1,
                    fid_samples=12, memorisation_samples=16),
    # reduced for a machine without a GPU: 32 px, a few hundred pairs, short trainings (600 DDPM steps
    # at about 3 steps/s on an idle 2-core CPU, for each of the two training sets).
    "cpu": Config(ddpm_steps=600),
    # 64 px on one GPU with bf16 (not timed on a GPU): larger sets and networks, the 1000-step chain.
    "full": Config(size=64, n_train=2000, n_small=100, n_test=400, n_synthetic=2000, gan_width=32, gan_epochs=60,
                   gan_batch=64, ddpm_channels=(64, 128, 128, 256), ddpm_attention=True, ddpm_steps=6000,
                   ddpm_batch=64, ddpm_lr=2e-4, timesteps=1000, ddim_steps=50, compare_steps=(10, 25, 50, 100),
                   seg_channels=(16, 32, 64, 128, 256), seg_steps=1500, seg_batch=64, seg_seeds=5,
                   fid_samples=400, memorisation_samples=400),
}


def main(config: Config, run: Run) -> Outcome:
    """Load the pairs, train both generators on both set sizes, sample, score the segmenters, FID,
    the samplers and memorisation, then report."""
    train, test, note = model.load_data(config, run)
    generators = model.train_generators(train, config, run)
    synthetic, timing = model.sample_synthetic(generators, config, run)
    seg, seg_curves = model.evaluate_sources(train, test, synthetic, config, run)
    fid, sampling = model.evaluate_fid(train, test, synthetic, generators["DDPM", "large"][0], config, run)
    mem = model.evaluate_memorisation(train, test, generators, config, run)
    metrics = report.metrics(config, note, train, test, synthetic, timing, seg, fid, sampling, mem, generators)
    figures = report.figures(train, synthetic, seg, mem, generators, seg_curves, sampling, note, config, run)
    return Outcome(metrics, report.rows(metrics, config), report.claims(metrics), report.data_notes(note, metrics),
                   figures, differences(__doc__))

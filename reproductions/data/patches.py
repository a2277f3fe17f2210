"""Patches cut from volumes: the ``PatchSet`` every data set of the reproductions is, and the
cutting and windowing that the phantoms and the real organ patches share."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage


@dataclass(frozen=True)
class PatchSet:
    images: np.ndarray  # (N, H, W) float32 in [0, 1]
    labels: np.ndarray  # (N,) int class index
    classes: tuple[str, ...]
    cases: np.ndarray  # (N,) int: lesions of one case stay in one cross-validation fold
    source: str
    masks: np.ndarray | None = None  # (N, H, W) uint8 lesion (or tumour sub-region) labels


def centres(mask: np.ndarray, half: int, rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` (z, y, x) points whose whole in-plane patch of half-width ``half`` lies inside ``mask``."""
    inner = ndimage.binary_erosion(mask, structure=np.ones((1, 3, 3), bool), iterations=half)
    points = np.argwhere(inner)
    if len(points) == 0:
        inner = ndimage.binary_erosion(mask, structure=np.ones((1, 3, 3), bool), iterations=max(1, half // 3))
        points = np.argwhere(inner)
    if len(points) == 0:
        raise ValueError("the organ mask is too small for patches of this size")
    return points[rng.choice(len(points), n, replace=len(points) < n)]


def crop(volume: np.ndarray, point, half: int) -> np.ndarray:
    z, y, x = point
    padded = np.pad(volume[z], half, mode="edge")
    return padded[y:y + 2 * half, x:x + 2 * half].astype(np.float32)


def window(hu: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    lo, hi = window
    return np.clip((hu - lo) / (hi - lo), 0, 1).astype(np.float32)

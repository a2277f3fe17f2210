"""Memorisation: each generated sample's highest normalised correlation with any training image.

The normalised (Pearson) correlation of two images is the dot product of their z-scored pixels
divided by the pixel count: 1 for a copy up to brightness and contrast, about 0 for unrelated
images. A histogram of the per-sample maxima shows whether a generator copies its training set.
"""

from __future__ import annotations

import numpy as np


def _zscored(images: np.ndarray) -> np.ndarray:
    flat = np.asarray(images, dtype=np.float64).reshape(len(images), -1)
    flat = flat - flat.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(flat, axis=1, keepdims=True)
    return np.divide(flat, norm, out=np.zeros_like(flat), where=norm > 0)


def max_correlation(samples: np.ndarray, training: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """(N,) for samples (N, ...) against training images (M, ...) of the same shape."""
    train = _zscored(training)
    out = []
    for start in range(0, len(samples), chunk):
        out.append((_zscored(samples[start:start + chunk]) @ train.T).max(axis=1))
    return np.concatenate(out)

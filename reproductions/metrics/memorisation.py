"""Memorisation: how close each generated tumour mask lies to its nearest training mask.

The distance of two binary masks is 1 - Dice (0 for the same mask, 1 for masks that do not
overlap; two empty masks count as the same). A generator that copies its training set puts its
samples' nearest distances near 0; new real tumours show how near a sample would lie by chance.
The mask channel alone is compared because every phantom slice shows the same template brain, so
the image channel of any two pairs is alike whether or not one was copied.
"""

from __future__ import annotations

import numpy as np


def nearest_mask_distance(samples: np.ndarray, training: np.ndarray, chunk: int = 512) -> np.ndarray:
    """(N,) 1 - the highest Dice of each mask of ``samples`` (N, H, W) with any of ``training`` (M, H, W)."""
    train = np.asarray(training, bool).reshape(len(training), -1).astype(np.float32)  # (M, P)
    train_area = train.sum(axis=1)  # (M,)
    out = []
    for start in range(0, len(samples), chunk):
        part = np.asarray(samples[start:start + chunk], bool).reshape(-1, train.shape[1]).astype(np.float32)
        overlap = part @ train.T  # (n, M) shared pixels
        total = part.sum(axis=1)[:, None] + train_area[None]  # (n, M)
        dice = np.divide(2 * overlap, total, out=np.ones_like(overlap), where=total > 0)  # both empty: the same
        out.append(1 - dice.max(axis=1))
    return np.concatenate(out)

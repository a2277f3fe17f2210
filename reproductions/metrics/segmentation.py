"""Dice and Hausdorff distance (maximum and 95th percentile) from MONAI, per image, for binary masks.

Distances are in pixels unless ``spacing`` is given. An image whose reference and prediction are
both empty has Dice 1 and distance 0; when only one is empty the distance is undefined (NaN)
and is left out of the means, which ``undefined`` counts.
"""

from __future__ import annotations

import numpy as np
import torch
from monai.metrics import compute_dice, compute_hausdorff_distance


def _one_channel(masks: np.ndarray) -> torch.Tensor:
    masks = np.asarray(masks).astype(bool)
    if masks.ndim == 2:
        masks = masks[None]
    return torch.as_tensor(masks[:, None], dtype=torch.float32)  # (N, 1, H, W)


def dice(reference: np.ndarray, prediction: np.ndarray) -> np.ndarray:
    """Dice per image (N,) for binary masks (N, H, W)."""
    return compute_dice(_one_channel(prediction), _one_channel(reference), include_background=True,
                        ignore_empty=False).numpy().ravel()


def hausdorff(reference: np.ndarray, prediction: np.ndarray, percentile: float | None = None,
              spacing: float | tuple[float, float] | None = None) -> np.ndarray:
    """Hausdorff distance per image (N,): the maximum, or the given percentile (95 for HD95)."""
    ref, pred = _one_channel(reference), _one_channel(prediction)
    out = compute_hausdorff_distance(pred, ref, include_background=True, percentile=percentile,
                                     spacing=spacing).numpy().ravel().astype(float)
    both_empty = (ref.sum(dim=(1, 2, 3)) == 0) & (pred.sum(dim=(1, 2, 3)) == 0)
    out[both_empty.numpy()] = 0.0
    out[~np.isfinite(out)] = np.nan
    return out


def segmentation_scores(reference: np.ndarray, prediction: np.ndarray, spacing=None) -> dict[str, float]:
    d, hd, hd95 = dice(reference, prediction), hausdorff(reference, prediction, spacing=spacing), \
        hausdorff(reference, prediction, 95, spacing=spacing)
    return {"dice": float(np.mean(d)), "hausdorff_max": float(np.nanmean(hd)) if np.isfinite(hd).any() else float("nan"),
            "hausdorff_95": float(np.nanmean(hd95)) if np.isfinite(hd95).any() else float("nan"),
            "undefined": int(np.isnan(hd).sum())}

"""Dice and Hausdorff distance (maximum and 95th percentile) from MONAI, per image, for binary masks.

Distances are in pixels unless ``spacing`` is given. An image whose reference and prediction are
both empty has Dice 1 and distance 0. A missed tumour (an empty prediction, a non-empty reference)
has no boundary to measure from, so it scores a fixed penalty: the image diagonal (in pixels, or in
the units of ``spacing``), the largest distance two points of the image can have; dropping it would
let a segmenter that finds nothing look better than one that finds something. ``missed`` counts
these. When only the reference is empty (a false alarm on a slice without tumour) the distance is
undefined (NaN) and left out of the means, which ``undefined`` counts.
"""

from __future__ import annotations

import numpy as np
import torch
from monai.metrics import compute_dice, compute_hausdorff_distance

from reproductions.common.quiet import quiet_known_warnings


def _one_channel(masks: np.ndarray) -> torch.Tensor:
    masks = np.asarray(masks).astype(bool)
    if masks.ndim == 2:
        masks = masks[None]
    return torch.as_tensor(masks[:, None], dtype=torch.float32)  # (N, 1, H, W)


def dice(reference: np.ndarray, prediction: np.ndarray) -> np.ndarray:
    """Dice per image (N,) for binary masks (N, H, W)."""
    return compute_dice(_one_channel(prediction), _one_channel(reference), include_background=True,
                        ignore_empty=False).numpy().ravel()


def diagonal(shape: tuple[int, ...], spacing: float | tuple[float, float] | None = None) -> float:
    """The diagonal of an image of ``shape`` (..., H, W): the penalty for a missed tumour."""
    sy, sx = (1.0, 1.0) if spacing is None else np.broadcast_to(np.asarray(spacing, float), (2,))
    return float(np.hypot(shape[-2] * sy, shape[-1] * sx))


def missed(reference: np.ndarray, prediction: np.ndarray) -> np.ndarray:
    """(N,) bool: the reference has a tumour and the prediction is empty."""
    ref, pred = _one_channel(reference), _one_channel(prediction)
    return ((ref.sum(dim=(1, 2, 3)) > 0) & (pred.sum(dim=(1, 2, 3)) == 0)).numpy()


def hausdorff(reference: np.ndarray, prediction: np.ndarray, percentile: float | None = None,
              spacing: float | tuple[float, float] | None = None) -> np.ndarray:
    """Hausdorff distance per image (N,): the maximum, or the given percentile (95 for HD95); a missed
    tumour scores the image diagonal, an empty reference with a non-empty prediction NaN."""
    ref, pred = _one_channel(reference), _one_channel(prediction)
    with quiet_known_warnings("monai-empty-mask", "monai-always-return-as-numpy"):  # empty masks: handled below
        out = compute_hausdorff_distance(pred, ref, include_background=True, percentile=percentile,
                                         spacing=spacing).numpy().ravel().astype(float)
    both_empty = (ref.sum(dim=(1, 2, 3)) == 0) & (pred.sum(dim=(1, 2, 3)) == 0)
    out[both_empty.numpy()] = 0.0
    out[~np.isfinite(out)] = np.nan
    out[missed(reference, prediction)] = diagonal(ref.shape, spacing)
    return out


def segmentation_scores(reference: np.ndarray, prediction: np.ndarray, spacing=None) -> dict[str, float]:
    """Mean Dice, Hausdorff (max) and HD95 over images; ``missed``: images scored at the diagonal
    penalty; ``undefined``: images left out of the distance means (empty reference only)."""
    d, hd, hd95 = dice(reference, prediction), hausdorff(reference, prediction, spacing=spacing), \
        hausdorff(reference, prediction, 95, spacing=spacing)
    return {"dice": float(np.mean(d)), "hausdorff_max": float(np.nanmean(hd)) if np.isfinite(hd).any() else float("nan"),
            "hausdorff_95": float(np.nanmean(hd95)) if np.isfinite(hd95).any() else float("nan"),
            "missed": int(missed(reference, prediction).sum()), "undefined": int(np.isnan(hd).sum())}

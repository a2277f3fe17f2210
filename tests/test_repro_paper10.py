"""paper10 (GCML) end to end in its smoke profile on CPU, through the CLI, into a temporary folder,
and its data sets: Fashion-MNIST and organ patches from the chest CT."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from sklearn.manifold import trustworthiness

from reproductions.data import loaders
from reproductions.metrics import clustering
from reproductions.paper10_gcml import ABLATION_MARGIN, LOSSES, PRESETS, claims, load
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


def test_trust_and_cont_from_ranks_computed_once_equal_scikit_learn():
    rng = np.random.default_rng(3)
    data = rng.normal(size=(70, 12))
    embedding = data[:, :2] + 0.5 * rng.normal(size=(70, 2))  # partly faithful, so neither score is 0 or 1
    scores = clustering.trust_cont(data, embedding, range(3, 8))
    for k, (trust, cont) in scores.items():
        assert trust == pytest.approx(trustworthiness(data, embedding, n_neighbors=k), abs=1e-12), k
        assert cont == pytest.approx(trustworthiness(embedding, data, n_neighbors=k), abs=1e-12), k
        assert 0.5 < trust < 1 and 0.5 < cont < 1 and trust != cont
    mean = clustering.structure_scores(data, embedding)
    assert mean["trust"] == pytest.approx(np.mean([t for t, _ in scores.values()]))
    assert mean["cont"] == pytest.approx(np.mean([c for _, c in scores.values()]))
    with pytest.raises(ValueError, match="n_samples / 2"):
        clustering.trust_cont(data[:10], embedding[:10], [5])


def scored(acc, trust, cont):
    return {"acc": acc, "nmi": 0.5, "trust": trust, "cont": cont}


def toy_metrics(gcml=(0.8, 0.95, 0.95), pca=(0.6, 0.90, 0.90), ablated=0.0):
    """One data set: GCML, the baselines and its ablations (each loss removed costs ``ablated`` in ACC)."""
    results = {"k-means": {"acc": 0.5, "nmi": 0.4}, "PCA + k-means": scored(*pca), "AE + k-means": scored(0.6, 0.9, 0.9),
               "DEC": scored(0.7, 0.8, 0.8), "GCML": scored(*gcml)}
    for loss in LOSSES:
        results[f"GCML without {loss}"] = scored(gcml[0] - ablated, gcml[1], gcml[2])
    return {"digits": results}


def claim(metrics, word):
    return next(c for c in claims(metrics) if word in c.text)


def test_structure_claim_compares_with_the_best_embedding_baseline_not_only_dec():
    assert claim(toy_metrics(), "structure").held
    beaten = claim(toy_metrics(pca=(0.6, 0.99, 0.99)), "structure")  # PCA beats GCML, DEC does not
    assert beaten.held is False
    assert all(f"{b} " in beaten.evidence for b in ("PCA + k-means", "AE + k-means", "DEC"))
    assert "0.990 / 0.990 (0.990)" in beaten.evidence and "GCML 0.950 / 0.950 (0.950)" in beaten.evidence


def test_ablation_needs_a_drop_of_the_margin_and_shows_trust_and_cont():
    held = claim(toy_metrics(ablated=ABLATION_MARGIN + 0.001), "Ablation")
    assert held.held and "Trust/Cont mean 0.950" in held.evidence and "no role" not in held.evidence
    noise = claim(toy_metrics(ablated=ABLATION_MARGIN / 10), "Ablation")  # e.g. 0.497 vs 0.496
    assert noise.held is False and noise.evidence.count("no role") == len(LOSSES)
    structure_only = toy_metrics()
    structure_only["digits"]["GCML without ranking"]["trust"] -= 3 * ABLATION_MARGIN  # mean drops by 1.5 margins
    verdict = claim(structure_only, "Ablation")
    assert "without ranking: ACC 0.800, Trust/Cont mean 0.935 (GCML 0.800, 0.950);" in verdict.evidence

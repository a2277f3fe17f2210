"""paper10 (GCML) end to end in its smoke profile on CPU, through the CLI, into a temporary folder,
and its data sets: Fashion-MNIST and organ patches from the chest CT."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from sklearn.manifold import trustworthiness

from reproductions import paper10_gcml as paper10
from reproductions.common.docstring import differences
from reproductions.data import loaders
from reproductions.metrics import clustering
from reproductions.paper10_gcml import PRESETS, model, report
from reproductions.paper10_gcml.model import LOSSES
from reproductions.paper10_gcml.report import claims
from reproductions.run import Run
from tests.conftest import needs_data, smoke_run


def cpu_run(tmp_path, seed=0):
    return Run("paper10", "smoke", seed, torch.device("cpu"), tmp_path, {})


@pytest.mark.slow
def test_paper10_smoke_run_writes_a_complete_run_folder(tmp_path):
    folder, info = smoke_run("paper10", tmp_path, "--set", "epochs=20", seed=1)
    assert info["device"] == "cpu" and "torch" in info["versions"] and info["wall_time_s"] > 0
    assert json.loads((folder / "config.json").read_text())["epochs"] == 20
    (metrics,) = json.loads((folder / "metrics.json").read_text())["digits"]  # smoke: one seed
    curves = metrics.pop("curves")
    assert set(metrics) == {"k-means", "PCA + k-means", "AE + k-means", "DEC", "GCML",
                            *(f"GCML without {loss}" for loss in ("clustering", "isometric", "ranking", "alignment"))}
    assert set(curves) == {"pretrain", *metrics} - {"k-means", "PCA + k-means", "AE + k-means"}
    assert len(curves["pretrain"]) == PRESETS["smoke"].pretrain_epochs and len(curves["GCML"]) == 20
    assert curves["pretrain"][-1] < curves["pretrain"][0]  # the autoencoder learnt something
    for method, scores in metrics.items():
        assert 0.1 < scores["acc"] <= 1 and 0 < scores["nmi"] <= 1, method  # 10 classes: chance is 0.1
    assert 0.5 < metrics["GCML"]["trust"] <= 1 and 0.5 < metrics["GCML"]["cont"] <= 1
    doc = json.loads((folder / "results.json").read_text())
    assert doc["status"] == "completed" and doc["profile"] == "smoke"
    assert all(r["paper"] is None for r in doc["rows"])  # the paper's per-data-set numbers were not found
    assert len(doc["rows"]) == 2 + 4 * 4  # k-means: ACC, NMI; PCA, AE, DEC and GCML also Trust, Cont
    assert all(np.isfinite(r["ours"]) for r in doc["rows"])
    # accuracy, structure against DEC, the two context comparisons (ours), the ablation
    assert len(doc["claims"]) == 5 and [c["addition"] for c in doc["claims"]] == [False, False, True, True, False]
    assert [c["outcome"] for c in doc["claims"]] == [c.outcome for c in claims(json.loads(
        (folder / "metrics.json").read_text()))]  # the rules decide, from the numbers in metrics.json
    assert all(c["outcome"] == "inconclusive" and c["estimate"]["n"] == 1 for c in doc["claims"])  # one seed
    assert doc["differences"] == differences(paper10.__doc__) and doc["differences"]
    assert doc["figures"] == ["figures/embeddings_digits.png", "figures/training_curves.png"]
    assert all((folder / f).read_bytes()[:4] == b"\x89PNG" for f in doc["figures"])


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
def test_paper10_loads_real_organ_patches_from_the_chest_ct(tmp_path):
    data = model.load("organs", dataclasses.replace(PRESETS["smoke"], organ_patches=4), cpu_run(tmp_path))
    assert data.x.shape == (4 * len(data.classes), 16 * 16) and 0 <= data.x.min() and data.x.max() <= 1
    assert np.bincount(data.y).tolist() == [4] * len(data.classes) and data.note.kind == "real"


@pytest.mark.skipif(not loaders.FASHION_MNIST.is_dir(), reason="apt-get install dataset-fashion-mnist")
def test_paper10_loads_fashion_mnist_from_the_debian_package(tmp_path):
    data = model.load("fashion-mnist", dataclasses.replace(PRESETS["full"], max_samples=500), cpu_run(tmp_path))
    assert data.x.shape == (500, 784) and len(data.classes) == 10 and set(data.y) <= set(range(10))


def test_subsets_and_scored_points_come_from_named_streams(tmp_path):
    config = dataclasses.replace(PRESETS["smoke"], max_samples=300, eval_points=100)
    first, again = (model.load("digits", config, cpu_run(tmp_path)) for _ in range(2))
    other = model.load("digits", config, cpu_run(tmp_path, seed=1))
    assert first.x.shape == (300, 64) and len(first.eval_idx) == 100 and first.eval_idx.max() < 300
    assert np.array_equal(first.x, again.x) and np.array_equal(first.eval_idx, again.eval_idx)
    assert not np.array_equal(first.x, other.x)


def test_the_losses_against_their_definitions():
    z, centres = torch.tensor([[0.0, 0.0], [2.0, 0.0]]), torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    q = model.soft_assignment(z, centres)  # Student-t: 1 / (1 + d^2), rows normalised
    assert torch.allclose(q, torch.tensor([[1 / 1.5, 0.5 / 1.5], [0.2 / 0.7, 0.5 / 0.7]]))
    p = model.target_distribution(q)
    expected = q ** 2 / q.sum(0)
    assert torch.allclose(p, expected / expected.sum(1, keepdim=True))
    x = torch.randn(6, 5, generator=torch.Generator().manual_seed(0))
    x_nb = x[torch.tensor([[1, 2], [0, 2], [0, 1], [4, 5], [3, 5], [3, 4]])]  # (6, 2, 5)
    same = torch.ones(6, 2, dtype=torch.bool)
    scale = (x[:, None] - x_nb).norm(dim=-1).mean()
    assert model.isometric_loss(x, 3 * x, x_nb, 3 * x_nb, same, scale) < 1e-10  # a scaled copy is isometric
    assert model.isometric_loss(x, x[:, :1], x_nb, x_nb[..., :1], same, scale) > 0.01
    line = torch.tensor([[0.0], [1.0], [3.0]])  # pair distances 1, 3, 2 in the input
    assert model.ranking_loss(line, 2 * line, margin=0.0) == 0  # the order of the distances is kept
    assert model.ranking_loss(line, torch.tensor([[0.0], [3.0], [4.0]]), margin=0.0) > 0  # now 3, 4, 1


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


FLAT = [1.0] * 30 + [0.5] * 20  # a loss that has levelled off


def toy_metrics(gcml=(0.8, 0.95, 0.95), pca=(0.6, 0.90, 0.90), ablated=0.0, noise=0.002, seeds=3, gcml_curve=FLAT):
    """One data set over ``seeds`` seeds: GCML, the baselines and its ablations (each loss removed costs
    ``ablated`` in ACC); every GCML score of seed k is shifted by ``noise`` * (k - 1), so the seeds differ."""
    per_seed = []
    for k in range(seeds):
        shift = noise * (k - 1)
        g = (gcml[0] + shift, gcml[1] + shift, gcml[2] + shift)
        results = {"k-means": {"acc": 0.5, "nmi": 0.4}, "PCA + k-means": scored(*pca),
                   "AE + k-means": scored(0.6, 0.9, 0.9), "DEC": scored(0.7, 0.8, 0.8), "GCML": scored(*g)}
        for loss in LOSSES:
            results[f"GCML without {loss}"] = scored(g[0] - ablated, g[1], g[2])
        results["curves"] = {"pretrain": FLAT, "GCML": gcml_curve}
        per_seed.append(results)
    return {"digits": per_seed}


def outcomes(metrics) -> dict[str, str]:
    return {("ours: " if c.addition else "") + c.text[:30]: c.outcome for c in claims(metrics)}


def test_accuracy_is_decided_against_the_strongest_baseline_over_the_seeds():
    assert report.accuracy_claim(toy_metrics(), []).outcome == "held"  # 0.8 against DEC's 0.7
    tie = report.accuracy_claim(toy_metrics(gcml=(0.7, 0.95, 0.95)), [])
    assert tie.outcome == "did not hold" and "digits DEC" in tie.evidence  # a tie is not "superior"
    assert report.accuracy_claim(toy_metrics(gcml=(0.72, 0.95, 0.95), noise=0.05), []).outcome == "inconclusive"
    assert report.accuracy_claim(toy_metrics(seeds=2), []).outcome == "inconclusive"  # too few seeds


def test_structure_is_judged_against_dec_and_pca_is_context_that_never_decides():
    pca_wins = toy_metrics(pca=(0.6, 0.99, 0.99))  # PCA's trustworthiness is near 1 by construction
    dec, pca, ae = report.structure_claims(pca_wins, [])
    assert (dec.outcome, dec.addition) == ("held", False)
    assert (pca.outcome, pca.addition) == ("did not hold", True) and ae.addition
    assert all("near 1" not in c.text for c in (dec, pca, ae))
    from reproductions.sidebyside import tally
    assert tally([c.as_dict() for c in claims(pca_wins)])["did not hold"] == 1  # the tie on the ablation only


def test_the_ablation_is_the_average_effect_of_removing_a_loss():
    assert report.ablation_claim(toy_metrics(ablated=0.05), []).outcome == "held"  # combined score -0.025 per loss
    assert report.ablation_claim(toy_metrics(ablated=0.001), []).outcome == "did not hold"  # below the margin
    one_loss = toy_metrics()
    for r in one_loss["digits"]:
        r["GCML without ranking"]["acc"] -= 0.2  # ranking alone matters: 0.1 / 4 losses on average
    claim = report.ablation_claim(one_loss, [])
    assert claim.outcome == "held" and "ranking 0.1" in claim.evidence and "isometric 0 " in claim.evidence


def test_a_gcml_still_training_makes_every_claim_inconclusive():
    falling = list(np.linspace(1.0, 0.2, 50))
    got = claims(toy_metrics(gcml_curve=falling))
    assert {c.outcome for c in got} == {"inconclusive"}
    assert all("GCML fine-tuning converged: 3 of 3 trainings still falling" in c.reason for c in got)

"""paper2 (DCGAN lung nodules, observer panel, reader study) end to end in its smoke profile on CPU
through the CLI into a temporary folder, and its pieces: the case split, the observers, the
features, the named streams, config validation and the LIDC-IDRI loader path."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

import reproductions.paper2_dcgan_nodules as paper2
from reproductions.common import reader_study
from reproductions.common.docstring import differences
from reproductions.config import ConfigError, apply_overrides
from reproductions.paper2_dcgan_nodules import PRESETS, Config
from reproductions.paper2_dcgan_nodules.model import (CLASS_OBSERVERS, CLASSES, OBSERVERS, coarse, generate,
                                                      load_patches, observer_panel, quantise, split_cases,
                                                      texture_features)
from reproductions.run import Run
from tests.conftest import needs_data, smoke_run


@pytest.mark.slow
@needs_data("chest-ct", "fid-inception")
def test_paper2_smoke_run_writes_results_figures_and_a_reader_study(tmp_path):
    folder, info = smoke_run("paper2", tmp_path, seed=3)
    smoke = PRESETS["smoke"]

    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["seeds"] == smoke.seeds == len(metrics["observers"]) == len(metrics["control"])
    panel, control = metrics["observers"][0], metrics["control"][0]
    assert set(control["readers"]) == set(OBSERVERS) and control["n_train"] + control["n_test"] == len_held(metrics)
    assert set(panel["readers"]) == set(OBSERVERS)
    for name, r in panel["readers"].items():
        assert 0 <= r["frr"] <= 1 and 0 <= r["trr"] <= 1, name
        # accuracy is the share of correct calls: TRR on the reals and 1 - FRR on the generated
        expected = (r["trr"] * r["real_shown"] + (1 - r["frr"]) * r["generated_shown"]) / r["n"]
        assert r["accuracy"] == pytest.approx(expected) and r["n"] == panel["n_test"]
    assert len(panel["kappa"]) == len(OBSERVERS) * (len(OBSERVERS) - 1) // 2
    assert panel["n_train"] + panel["n_test"] == 2 * metrics["data"]["held_out"]
    assert metrics["data"]["train"] + metrics["data"]["held_out"] == 2 * smoke.patches_per_class
    assert metrics["data"]["generated_for_observers"] == metrics["data"]["held_out"]
    assert np.isfinite(metrics["fid"]["fid"]) and metrics["fid"]["fid"] > 0 and metrics["fid"]["n"] == 8
    assert "fid_real_vs_real" not in metrics["fid"]  # the smoke profile skips the reference FID
    assert set(metrics["class_agreement"]) == set(CLASS_OBSERVERS)
    for name, agree in metrics["class_agreement"].items():
        assert 0 <= agree["generated"] <= 1 and 0 <= agree["real_heldout"] <= 1, name
        assert set(agree["generated_called_malignant"]) == set(CLASSES), name
    assert set(metrics["training"][0]) == {"d_loss", "g_loss", "d_real", "d_fake"}
    assert all(np.isfinite(v) for v in metrics["training"][0].values())

    doc = json.loads((folder / "results.json").read_text())
    assert all(r["paper"] is None for r in doc["rows"])  # no per-reader table was found
    frr_rows = [r for r in doc["rows"] if r["metric"].startswith("FRR")]
    assert {r["setting"] for r in frr_rows} == {f"observer: {name}" for name in OBSERVERS}
    # 3 rows per observer and its control accuracy, the mean kappa, FID + KID, 2 per class classifier
    assert len(doc["rows"]) == 4 * len(OBSERVERS) + 1 + 2 + 2 * len(CLASS_OBSERVERS)
    assert [d["kind"] for d in doc["data"]] == ["phantom"]
    human, machine = doc["claims"]
    assert human["outcome"] == "not testable here" and not human["addition"]  # no readers in a fresh run
    assert machine["addition"] and machine["estimate"]["n"] == 1 and machine["estimate"]["method"] == "paired t"
    control_acc = np.mean([r["accuracy"] for r in control["readers"].values()])
    rvg_acc = np.mean([r["accuracy"] for r in panel["readers"].values()])
    assert machine["estimate"]["mean"] == pytest.approx(control_acc - rvg_acc)
    assert machine["outcome"] == "inconclusive" and "1 seeds" in machine["reason"]  # smoke: one seed decides nothing
    assert doc["differences"] == differences(paper2.__doc__) and doc["differences"]
    assert len(doc["figures"]) == 3
    for figure in doc["figures"]:
        assert (folder / figure).read_bytes()[:4] == b"\x89PNG"

    assert metrics["reader_study"] == {"folder": "reader_study", "items": 4 * smoke.reader_per_class}
    study = reader_study.load_study(folder / "reader_study")  # what the explorer's page opens
    assert study.name == "paper2" and study.data_kind == "phantom" and study.classes == CLASSES
    sources = [item.source for item in study.items]
    assert sources.count("real") == sources.count("generated") == 2 * smoke.reader_per_class
    assert sorted(item.label for item in study.items) == sorted(CLASSES * (2 * smoke.reader_per_class))
    assert not any(word in item.image for item in study.items for word in ("real", "generated", *CLASSES))


def len_held(metrics: dict) -> int:
    return metrics["data"]["held_out"]


def panels(accuracies: list[float]) -> list[dict]:
    """One observer panel per seed whose every observer scored ``accuracy``."""
    return [{"readers": {name: {"accuracy": a} for name in OBSERVERS}, "mean_kappa": 0.5, "n_test": 300}
            for a in accuracies]


def test_machine_detectability_is_decided_against_the_control_and_never_counts_for_the_paper():
    from reproductions.paper2_dcgan_nodules.report import claims

    config = PRESETS["cpu"]
    study = {"items": 40}

    def machine(rvg, control):
        return claims({"observers": panels(rvg), "control": panels(control), "reader_study": study}, config)[1]

    assert machine([0.55, 0.56, 0.54], [0.5, 0.49, 0.51]).outcome == "held"  # within the 0.1 allowed
    assert machine([1.0, 1.0, 0.99], [0.5, 0.52, 0.48]).outcome == "did not hold"
    assert machine([0.5, 0.9, 0.7], [0.5, 0.5, 0.5]).outcome == "inconclusive"  # the seeds disagree
    human = claims({"observers": panels([1.0] * 3), "control": panels([0.5] * 3), "reader_study": study}, config)[0]
    assert human.outcome == "not testable here" and "readers answer" in human.evidence and not human.addition
    assert machine([1.0] * 3, [0.5] * 3).addition


def test_the_control_panel_cannot_tell_two_halves_of_the_same_reals_apart(tmp_path):
    from reproductions.paper2_dcgan_nodules.model import Nodules, control_panel, mean_accuracy
    from reproductions.outcome import DataNote

    rng = np.random.default_rng(2)
    real = quantise(rng.uniform(0.2, 0.4, (80, 16, 16)))
    labels, cases = np.repeat([0, 1], 40), np.arange(80) // 2  # two patches per case
    data = Nodules(real[:4], labels[:4], real, labels, cases, DataNote("noise", "synthetic", ""))
    scores = control_panel(data, dataclasses.replace(PRESETS["smoke"], observer_epochs=2), cpu_run(tmp_path))
    assert mean_accuracy(scores) < 0.7 and scores["n_train"] + scores["n_test"] == 80


def test_split_cases_keeps_cases_whole_and_both_classes_on_both_sides():
    labels = np.repeat([0, 1], 30)
    cases = np.repeat(np.arange(20), 3)  # three patches per case, one class per case
    held = split_cases(labels, cases, 0.3, np.random.default_rng(0))
    for c in (0, 1):
        assert 0 < held[labels == c].sum() < (labels == c).sum()
        assert held[labels == c].sum() == pytest.approx(9, abs=3)
    for case in np.unique(cases):
        assert len(set(held[cases == case])) == 1
    with pytest.raises(ValueError, match="at least two cases"):
        split_cases(np.zeros(4, int), np.zeros(4, int), 0.3, np.random.default_rng(0))


def cpu_run(tmp_path, seed: int = 0) -> Run:
    return Run("paper2", "smoke", seed, torch.device("cpu"), tmp_path, {})


def test_observers_tell_plainly_different_patches_apart_and_cannot_tell_identical_ones(tmp_path):
    rng = np.random.default_rng(0)
    real = quantise(rng.uniform(0.2, 0.4, (40, 16, 16)))
    labels = np.repeat([0, 1], 20)
    cases = np.arange(40)
    config = dataclasses.replace(PRESETS["smoke"], observer_epochs=3)
    bright = quantise(rng.uniform(0.6, 0.8, (40, 16, 16)))
    easy = observer_panel(real, labels, cases, bright, labels, config, cpu_run(tmp_path))
    for name in ("logistic regression (pixels)", "random forest (features)", "RBF SVM (PCA 32)"):
        r = easy["readers"][name]
        assert r["accuracy"] == 1 and r["frr"] == 0 and r["trr"] == 1, name
    same = quantise(rng.uniform(0.2, 0.4, (40, 16, 16)))  # the same distribution as the reals
    hard = observer_panel(real, labels, cases, same, labels, config, cpu_run(tmp_path))
    assert np.mean([r["accuracy"] for r in hard["readers"].values()]) < 0.75


def test_the_observer_panel_is_the_same_for_a_seed_and_its_streams(tmp_path):
    rng = np.random.default_rng(1)
    real, fake = quantise(rng.uniform(0.2, 0.5, (24, 16, 16))), quantise(rng.uniform(0.25, 0.55, (24, 16, 16)))
    labels, cases = np.repeat([0, 1], 12), np.arange(24)
    config = dataclasses.replace(PRESETS["smoke"], observer_epochs=2)
    first, again = (observer_panel(real, labels, cases, fake, labels, config, cpu_run(tmp_path, seed=5))
                    for _ in range(2))
    assert first == again


def test_generated_patches_are_8_bit_and_follow_their_stream(tmp_path):
    from reproductions.common import dcgan

    run = cpu_run(tmp_path)
    with run.seeded("gan-init"):
        G = dcgan.Generator(dcgan.DCGANConfig(width=4, size=32, num_classes=2)).eval()
    labels = np.array([0, 1, 1, 0])
    a, b = generate(G, labels, run, "observer-samples"), generate(G, labels, run, "observer-samples")
    assert a.shape == (4, 32, 32) and np.array_equal(a, b)
    assert np.array_equal(a, quantise(a)) and 0 <= a.min() and a.max() <= 1
    assert not np.array_equal(a, generate(G, labels, run, "fid-samples"))  # another stream, other noise


def test_texture_features_coarse_grid_and_quantisation():
    images = np.random.default_rng(1).uniform(0, 1, (5, 32, 32)).astype(np.float32)
    features = texture_features(images)
    assert features.shape == (5, 35) and np.isfinite(features).all()
    assert np.allclose(features[:, :16].sum(axis=1), 1)  # the histogram sums to one
    assert coarse(images).shape == (5, 256) and np.allclose(coarse(images)[:, 0], images[:, :2, :2].mean(axis=(1, 2)))
    assert np.array_equal(quantise(np.array([0.0, 0.5, 1.2, -1])), np.array([0, 128 / 255, 1, 0], np.float32))


@pytest.mark.parametrize("key,value", [("size", "48"), ("holdout", "0.95"), ("detectability_tolerance", "0.5"),
                                       ("fid_images", "1"), ("patches_per_class", "3"), ("epochs", "0"),
                                       ("seeds", "0")])
def test_config_validation_names_the_field(key, value):
    with pytest.raises(ConfigError, match=key):
        apply_overrides(PRESETS["smoke"], [f"{key}={value}"])


def test_lidc_folder_loads_as_real_data(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    lidc = tmp_path / "lidc"
    for name in CLASSES:
        (lidc / name).mkdir(parents=True)
        for case in range(3):
            pixels = (rng.uniform(0, 255, (40, 40))).astype(np.uint8)
            Image.fromarray(pixels).save(lidc / name / f"LIDC{case:04d}_{name}.png")
    run = cpu_run(tmp_path)
    patches, note = load_patches(Config(lidc=str(lidc), size=32, patches_per_class=2), run)
    assert patches.images.shape == (4, 32, 32) and np.bincount(patches.labels).tolist() == [2, 2]
    assert note.kind == "real"
    from reproductions.data.offline import DataError

    (lidc / "malignant").rename(lidc / "other")
    with pytest.raises(DataError, match="malignant"):
        load_patches(Config(lidc=str(lidc), size=32), run)

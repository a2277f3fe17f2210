"""paper3 (GAN augmentation for liver lesion classification): the smoke profile end to end through
the CLI into a temporary folder, and its pieces: the classifier's size, classic augmentation, the
case-grouped folds and the inner split, class-balanced synthetic steps and the matched-count control,
the named streams, the plateau rule, the claims on constructed folds and config validation."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

import reproductions.paper3_gan_augmentation as paper3
from reproductions.common.docstring import differences
from reproductions.config import ConfigError, apply_overrides
from reproductions.data.offline import DataError
from reproductions.data.phantoms import PatchSet
from reproductions.paper3_gan_augmentation import PRESETS, Config
from reproductions.paper3_gan_augmentation.model import (CLASSES, CLASSIC_PLATEAU, NO_AUGMENTATION, LesionCNN,
                                                         acquisition_variation, arm_sets, arms, balanced,
                                                         classic_augment, cross_validation, folds, inner_split,
                                                         load_lesions, matched_arm, parameter_count, plateau_amount,
                                                         synthetic_arm, synthetic_set, train_classifier,
                                                         training_steps, validation_loss)
from reproductions.paper3_gan_augmentation.report import claims
from reproductions.run import Run
from reproductions.verdict import HELD, INCONCLUSIVE, NOT_HELD, NOT_TESTABLE
from tests.conftest import needs_data, smoke_run


def cpu_run(tmp_path, seed: int = 0) -> Run:
    return Run("paper3", "smoke", seed, torch.device("cpu"), tmp_path, {})


@pytest.mark.slow
@needs_data("chest-ct")
def test_paper3_smoke_run_writes_a_complete_run_folder(tmp_path):
    folder, info = smoke_run("paper3", tmp_path, seed=1)
    smoke = PRESETS["smoke"]

    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["classifier_parameters"] == parameter_count(smoke)
    assert metrics["lesions"] == 3 * smoke.lesions_per_class
    n_folds = smoke.folds * smoke.repeats
    assert len(metrics["plateaus"]) == n_folds and set(metrics["plateaus"]) <= set(smoke.classic_amounts[1:])
    for curve, plateau in zip(metrics["inner_curves"], metrics["plateaus"]):  # chosen on the inner split
        assert [int(a) for a in curve] == list(smoke.classic_amounts[1:]) and str(plateau) in curve
    settings = metrics["settings"]
    assert list(settings) == arms(smoke) == [NO_AUGMENTATION, CLASSIC_PLATEAU, "classic plateau + DCGAN 36",
                                             "classic plateau + DCGAN 72", "classic plateau + 36 more classic",
                                             "classic plateau + 72 more classic"]
    for name, s in settings.items():
        assert len(s["folds"]) == n_folds and len(metrics["histories"][name]) == n_folds, name
        for h in metrics["histories"][name]:  # stopped early or at the cap, read every val_every steps
            assert len(h["loss"]) == h["steps"] <= smoke.max_steps and h["early"] == (h["steps"] < smoke.max_steps)
            assert len(h["val_loss"]) == h["steps"] // smoke.val_every
        assert 0 <= s["mean"]["accuracy"] <= 1 and 0 <= s["mean"]["mean_specificity"] <= 1
        matrix = np.array(s["pooled"]["confusion_matrix"])
        assert matrix.shape == (3, 3) and matrix.sum() == metrics["lesions"] * smoke.repeats  # each lesion once
        assert s["pooled"]["accuracy"] == pytest.approx(np.trace(matrix) / matrix.sum())

    doc = json.loads((folder / "results.json").read_text())
    rows = {(r["metric"], r["setting"]): r for r in doc["rows"]}
    top = synthetic_arm("DCGAN", smoke.gan_amounts[-1])
    assert rows[("total accuracy (%)", NO_AUGMENTATION)]["paper"] == 57
    assert rows[("total accuracy (%)", CLASSIC_PLATEAU)]["paper"] == 78.6
    assert rows[("total accuracy (%)", top)]["paper"] == 85.7
    assert rows[("mean sensitivity (%)", CLASSIC_PLATEAU)]["paper"] == 78.6
    assert rows[("mean specificity (%)", CLASSIC_PLATEAU)]["paper"] == 88.4
    assert (rows[("mean sensitivity (%)", top)]["paper"], rows[("mean specificity (%)", top)]["paper"]) == (85.7, 92.4)
    assert rows[("total accuracy (%)", matched_arm(72))]["paper_text"] == "not reported"  # our control
    acgan = rows[("mean sensitivity (%)", "classic + ACGAN")]
    assert acgan["paper"] == 81.3 and acgan["ours"] is None  # ACGAN is an option the smoke run leaves off
    assert rows[("total accuracy (%)", top)]["ours"] == pytest.approx(100 * settings[top]["mean"]["accuracy"])
    per_class = [r for r in doc["rows"] if r["setting"].endswith(CLASSES)]
    assert len(per_class) == 4 * 3 * 2 and {r["paper_text"] for r in per_class} == {"not reported"}
    assert all(r["source"] for r in doc["rows"])  # every paper cell says where it was read
    # 3 metrics x 4 settings, 2 ACGAN rows left empty, 4 settings x 3 classes x 2 per-class, 3 sizes
    assert len(doc["rows"]) == 12 + 2 + 24 + 3
    assert rows[("classic samples added per fold at the plateau", CLASSIC_PLATEAU)]["ours"] == \
        pytest.approx(np.mean(metrics["plateaus"]))

    # three folds decide nothing here: 15-step trainings and noise-level differences
    assert [c["outcome"] for c in doc["claims"]] == [INCONCLUSIVE] * 4 + [NOT_TESTABLE]
    assert all(c["evidence"] and c["rule"] for c in doc["claims"][:4])
    assert [d["kind"] for d in doc["data"]] == ["phantom"]
    assert doc["differences"] == differences(paper3.__doc__) and doc["differences"]
    assert len(doc["figures"]) == 5
    for figure in doc["figures"]:
        assert (folder / figure).read_bytes()[:4] == b"\x89PNG"


def test_the_classifier_has_the_papers_size_and_layout():
    config = Config()  # the paper's 64 px ROIs
    assert 1.25e6 < parameter_count(config) < 1.35e6  # "about 1.3M parameters"
    model = LesionCNN(config)
    assert sum(isinstance(m, torch.nn.MaxPool2d) for m in model.modules()) == 3
    assert sum(isinstance(m, torch.nn.Linear) for m in model.modules()) == 2
    assert model.eval()(torch.zeros(2, 1, 64, 64)).shape == (2, 3)


def test_a_training_follows_its_streams(tmp_path):
    run = cpu_run(tmp_path)
    with run.seeded("cnn-init"):
        first = LesionCNN(Config(size=32)).head[-1].weight
    with run.seeded("cnn-init"):
        again = LesionCNN(Config(size=32)).head[-1].weight
    assert torch.equal(first, again)  # the same initial weights from the same stream
    config = Config(size=32, widths=(4, 8, 8), dense=8, epochs=1, batch_size=8, min_steps=3, max_steps=3)
    x, y = torch.rand(12, 1, 32, 32) * 2 - 1, torch.arange(12) % 3
    (a, history), (b, _), (c, _) = (train_classifier(x, y, config, run, s) for s in ("cnn/a", "cnn/a", "cnn/b"))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))  # init, batches and dropout
    assert len(history["loss"]) == 3 and all(np.isfinite(history["loss"])) and not history["early"]
    assert not torch.equal(a.head[-1].weight, c.head[-1].weight)


def test_a_training_stops_when_its_validation_loss_stops_falling(tmp_path):
    run = cpu_run(tmp_path)
    config = Config(size=32, widths=(4, 8, 8), dense=8, batch_size=8, lr=0.05, min_steps=400, max_steps=400,
                    val_every=5, patience=3)
    y = torch.arange(30) % 3
    x = (y.float()[:, None, None, None] - 1).expand(30, 1, 32, 32).clone()  # each class one flat grey level
    model, history = train_classifier(x, y, config, run, "cnn/easy", (x[:9], y[:9]))
    assert history["early"] and history["steps"] < 400 and len(history["val_loss"]) == history["steps"] // 5
    assert min(history["val_loss"]) < history["val_loss"][0]  # the best read's weights are the ones kept
    assert validation_loss(model, (x[:9], y[:9]), run) == pytest.approx(min(history["val_loss"]), rel=1e-4)


def test_training_steps_follow_epochs_within_the_bounds():
    config = Config(epochs=10, batch_size=64)
    assert training_steps(640, config) == 100
    assert training_steps(640, dataclasses.replace(config, max_steps=30)) == 30
    assert training_steps(64, dataclasses.replace(config, min_steps=50)) == 50


@pytest.mark.parametrize("profile", ["smoke", "cpu", "full"])
def test_every_training_of_a_profile_gets_the_same_step_cap(profile):
    """A cap that only the larger sets hit would flatten the curve by itself: every set size, from the
    real lesions alone to the largest classic plateau plus the largest synthetic amount, has one cap."""
    config = PRESETS[profile]
    real = 3 * config.lesions_per_class * (config.folds - 1) // config.folds  # a fold's training lesions
    sizes = [real + a for a in config.classic_amounts]
    sizes += [real + config.classic_amounts[-1] + g for g in config.gan_amounts]  # the matched control too
    assert len({training_steps(n, config) for n in sizes}) == 1
    assert training_steps(real, config) == config.max_steps == config.min_steps


def test_classic_augmentation_spreads_over_lesions_and_keeps_content():
    images = torch.rand(5, 1, 32, 32) * 2 - 1
    config = Config(size=32, rotation=0, translation=0, scale=0)  # flips only: exact mirror images
    out, source = classic_augment(images, 12, config, torch.Generator().manual_seed(0))
    assert out.shape == (12, 1, 32, 32) and source.tolist() == [i % 5 for i in range(12)]
    for image, s in zip(out, source):
        mirrors = [images[s].flip(dims) for dims in ((), (-1,), (-2,), (-2, -1))]
        assert any(torch.allclose(image, m, atol=1e-5) for m in mirrors)
    full = Config(size=32)
    a, _ = classic_augment(images, 8, full, torch.Generator().manual_seed(1))
    b, _ = classic_augment(images, 8, full, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.min() >= -1 - 1e-5 and a.max() <= 1 + 1e-5  # seeded, no new intensities
    assert not torch.allclose(a, images[torch.arange(8) % 5])


def test_acquisition_variation_scales_contrast_per_case_and_adds_noise():
    images = np.full((4, 16, 16), 0.5, np.float32)
    images[:, 6:10, 6:10] = 0.2  # a dark lesion in liver of 0.5
    cases = np.array([0, 0, 1, 1])
    same = acquisition_variation(images, cases, Config(noise_hu=0, contrast_jitter=0), 350.0, np.random.default_rng(0))
    assert np.allclose(same, images)
    varied = acquisition_variation(images, cases, Config(noise_hu=0, contrast_jitter=0.5), 350.0,
                                   np.random.default_rng(0))
    contrast = 0.5 - varied[:, 8, 8]
    assert np.allclose(contrast[0], contrast[1]) and np.allclose(contrast[2], contrast[3])  # one gain per case
    assert (0.15 - 1e-6 <= contrast).all() and (contrast <= 0.3 + 1e-6).all()  # 0.3 scaled by U(0.5, 1)
    noisy = acquisition_variation(images, cases, Config(noise_hu=35, contrast_jitter=0), 350.0,
                                  np.random.default_rng(0))
    assert np.std(noisy - images) == pytest.approx(0.1, rel=0.05)  # 35 HU in a 350 HU window


def toy_rois(per_class: int = 9, per_case: int = 3) -> PatchSet:
    labels = np.repeat(np.arange(3), per_class)
    cases = labels * per_class + np.tile(np.arange(per_class) // per_case, 3)
    return PatchSet(np.zeros((len(labels), 8, 8), np.float32), labels, CLASSES, cases, "test")


def test_folds_keep_each_case_in_one_test_fold():
    rois = toy_rois()
    splits = folds(rois, Config(), np.random.default_rng(0))
    tested = np.concatenate([test for _, test in splits])
    assert sorted(tested) == list(range(len(rois.labels)))  # each lesion tested once
    for train, test in splits:
        assert not set(rois.cases[train]) & set(rois.cases[test])
        assert set(rois.labels[test]) == {0, 1, 2}  # stratified: every class in every test fold
    with pytest.raises(ValueError, match="folds"):
        folds(toy_rois(per_class=1, per_case=1), Config(folds=5), np.random.default_rng(0))


def test_synthetic_steps_are_class_balanced_and_nested():
    assert balanced(10) == [4, 3, 3] and sum(balanced(3000)) == 3000
    pool = [torch.full((6, 1, 4, 4), float(c)) for c in range(3)]
    small, small_y = synthetic_set(pool, 6)
    large, large_y = synthetic_set(pool, 15)
    assert np.bincount(small_y.numpy()).tolist() == [2, 2, 2] and np.bincount(large_y.numpy()).tolist() == [5, 5, 5]
    assert (small[:, 0, 0, 0] == small_y.float()).all()  # each image carries its class's label
    for c in range(3):
        assert torch.equal(large[large_y == c][:2], small[small_y == c])  # a larger step holds the smaller


def constructed(per_arm: dict[str, list[float]], early: bool = True) -> dict:
    """metrics.json as the claims read it: each arm's accuracy per outer fold (sensitivity and
    specificity the same), and whether every training stopped early (before its cap)."""
    settings = {arm: {"folds": [{"accuracy": a, "mean_sensitivity": a, "mean_specificity": a} for a in values],
                      "mean": {k: float(np.mean(values)) for k in ("accuracy", "mean_sensitivity",
                                                                   "mean_specificity")}}
                for arm, values in per_arm.items()}
    return {"settings": settings, "plateaus": [300] * len(per_arm[NO_AUGMENTATION]),
            "histories": {arm: [{"early": early}] * len(values) for arm, values in per_arm.items()}}


def test_claims_are_decided_on_the_folds_with_a_corrected_interval_and_gates():
    config = PRESETS["cpu"]
    gan, matched = synthetic_arm("DCGAN", 1200), matched_arm(1200)
    arms_ = {NO_AUGMENTATION: [0.50, 0.55, 0.60], CLASSIC_PLATEAU: [0.75, 0.78, 0.80], gan: [0.86, 0.88, 0.90],
             matched: [0.76, 0.78, 0.79]}
    assert [c.outcome for c in claims(constructed(arms_), config)] == [HELD] * 4 + [NOT_TESTABLE]
    # synthetic lesions no better than as many more classic ones: the step claim did not hold
    tie = {**arms_, matched: [0.86, 0.88, 0.90]}
    assert claims(constructed(tie), config)[3].outcome == NOT_HELD
    # a noisy rise whose corrected interval straddles the 2-point tolerance
    noisy = {**arms_, CLASSIC_PLATEAU: [0.40, 0.80, 0.90]}
    first = claims(constructed(noisy), config)[0]
    assert first.outcome == INCONCLUSIVE and first.estimate.method == "corrected resampled t"
    # a classifier that reached its cap still improving: nothing is decided
    still = claims(constructed(arms_, early=False), config)
    assert [c.outcome for c in still[:4]] == [INCONCLUSIVE] * 4 and "classifier converged" in still[0].reason
    # a baseline at the ceiling leaves no room to rise
    perfect = {**arms_, NO_AUGMENTATION: [1.0, 1.0, 1.0]}
    assert "room to rise" in claims(constructed(perfect), config)[0].reason


def test_the_plateau_is_the_smallest_amount_near_the_best():
    curve = {100: 0.7, 200: 0.795, 400: 0.8}
    assert plateau_amount(curve, Config(plateau_tolerance=0.01)) == 200
    assert plateau_amount(curve, Config(plateau_tolerance=0.0)) == 400


def test_the_inner_split_holds_out_cases_of_the_outer_training_part_only(tmp_path):
    rois = toy_rois(per_class=18)  # 6 cases per class: 4 in each outer training part, split again
    config = Config(size=32, repeats=2)
    run = cpu_run(tmp_path)
    cv = cross_validation(rois, config, run)
    assert len(cv.splits) == config.folds * 2 and not np.array_equal(cv.splits[0][1], cv.splits[3][1])  # fresh splits
    for fold, (train, test) in enumerate(cv.splits):
        inner_train, inner_val = inner_split(cv, train, config, run, fold)
        assert set(inner_train) | set(inner_val) == set(train) and not set(inner_val) & set(test)
        assert not set(rois.cases[inner_train]) & set(rois.cases[inner_val])  # whole cases on each side


def test_the_matched_control_adds_as_many_classic_samples_as_the_synthetic_step():
    config = dataclasses.replace(PRESETS["smoke"], gan_amounts=(6,))
    x, y = torch.zeros(9, 1, 4, 4), torch.arange(9) % 3
    pool = (torch.ones(20, 1, 4, 4), torch.arange(20) % 3)
    synthetic = {"DCGAN": [torch.full((6, 1, 4, 4), 2.0 + c) for c in range(3)]}
    sets = arm_sets(x, y, pool, 4, synthetic, config)
    sizes = {arm: len(images) for arm, (images, _) in sets.items()}
    assert sizes == {NO_AUGMENTATION: 9, CLASSIC_PLATEAU: 13, synthetic_arm("DCGAN", 6): 19, matched_arm(6): 19}
    gan_images = sets[synthetic_arm("DCGAN", 6)][0]
    assert (gan_images[13:] >= 2).all() and (sets[matched_arm(6)][0][9:] == 1).all()  # synthetic vs more classic


def test_config_validation_names_the_field():
    for pairs, field in ((["classic_amounts=100,200"], "classic_amounts"), (["gan_amounts=300,200"], "gan_amounts"),
                         (["size=48"], "size"), (["kernel=4"], "kernel"), (["folds=1"], "folds"),
                         (["min_steps=10", "max_steps=5"], "min_steps")):
        with pytest.raises(ConfigError, match=field):
            apply_overrides(PRESETS["smoke"], pairs)
    assert apply_overrides(PRESETS["smoke"], ["acgan=true"]).acgan is True


def test_the_users_rois_are_real_data_grouped_by_case(tmp_path):
    rng = np.random.default_rng(0)
    for name in CLASSES:
        (tmp_path / name).mkdir()
        for patient in range(3):
            for lesion in range(2):
                np.save(tmp_path / name / f"{name}{patient}_{lesion}.npy", rng.random((40, 40)))
    rois, note = load_lesions(Config(roi_folder=str(tmp_path), size=32), cpu_run(tmp_path))
    assert rois.images.shape == (18, 32, 32) and note.kind == "real"
    assert len(set(rois.cases)) == 9
    for path in (tmp_path / "hemangioma").iterdir():
        path.unlink()
    with pytest.raises(DataError, match="hemangioma"):
        load_lesions(Config(roi_folder=str(tmp_path), size=32), cpu_run(tmp_path))

"""paper5 (GAN vs DDPM for brain tumour MRI) end to end in its smoke profile on CPU, through the
CLI, into a temporary folder; and its pieces: the config's checks, the image + mask pairs, the
BraTS split by subject, the DDPM and DDIM samplers, the U-Net's early stopping, the memorisation
statistic and the claims' outcomes on constructed numbers."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from reproductions import paper5_gan_vs_diffusion as paper5
from reproductions.common.docstring import differences
from reproductions.common.numbers import is_missing
from reproductions.config import ConfigError, apply_overrides
from reproductions.data.offline import DataError
from reproductions.paper5_gan_vs_diffusion import PRESETS, Config, model
from reproductions.paper5_gan_vs_diffusion.model import (GENERATORS, SOURCES, Pairs, compare_samplers, gan_config,
                                                         load_data, memorisation, sample_ddpm, train_ddpm,
                                                         train_segmenter)
from reproductions.paper5_gan_vs_diffusion.report import RATIO_BAND, claims
from reproductions.run import Run
from reproductions.verdict import HELD, INCONCLUSIVE, NOT_HELD, NOT_TESTABLE
from tests.conftest import needs_data, smoke_run


def cpu_run(tmp_path, seed: int = 0) -> Run:
    return Run("paper5", "smoke", seed, torch.device("cpu"), tmp_path, {})


@pytest.mark.slow
@needs_data("mni152", "fid-inception")
def test_paper5_smoke_run_writes_a_complete_run_folder(tmp_path):
    folder, info = smoke_run("paper5", tmp_path, seed=3)
    config = json.loads((folder / "config.json").read_text())
    assert config["brats"] == "" and config["size"] == 32

    metrics = json.loads((folder / "metrics.json").read_text())
    seg = metrics["segmentation"]
    assert set(seg) == set(SOURCES) and len(metrics["per_seed"]) == 1  # smoke: the mixes too, one seed
    for source, scores in seg.items():
        assert 0 <= scores["dice"] <= 1, source
        assert is_missing(scores["hausdorff_max"]) or scores["hausdorff_max"] >= scores["hausdorff_95"] >= 0
        assert 0 <= scores["missed"] <= metrics["data"]["n_test"]
        if scores["missed"]:  # a missed tumour is penalised, so the mean cannot be NaN
            assert np.isfinite(scores["hausdorff_max"])
    seed = metrics["per_seed"][0]
    for g in GENERATORS:
        assert metrics["ratio"][g] == pytest.approx(seg[g]["dice"] / seg["real"]["dice"])
        assert metrics["fid"][g]["fid"] > 0
    smoke = PRESETS["smoke"]
    for source, history in seed["curves"]["U-Net"].items():  # stopped early or at the cap, read every 10 steps
        assert history["steps"] <= smoke.seg_max_steps and len(history["loss"]) == history["steps"], source
        assert len(history["val_dice"]) == history["steps"] // smoke.seg_eval_every
    assert {len(c) for c in seed["curves"]["DDPM"].values()} == {smoke.ddpm_steps}  # as many steps on both sets
    full_chain, ddim = f"DDPM {smoke.timesteps}", f"DDIM {smoke.ddim_steps}"
    assert set(metrics["sampling"]) == {full_chain, ddim}  # the full chain and the DDIM step count
    assert {v["images"] for v in metrics["sampling"].values()} == {metrics["fid_images"]}  # timed like for like
    for label in ("small", "large"):
        for g in GENERATORS:
            mem = seed["memorisation"][label][g]
            assert len(mem["values"]) == smoke.memorisation_samples and all(0 <= v <= 1 for v in mem["values"])
            assert mem["excess"] == pytest.approx(mem["real_median"] - mem["median"])

    doc = json.loads((folder / "results.json").read_text())
    ratio_rows = [r for r in doc["rows"] if r["metric"] == "Synthetic/real Dice ratio"]
    assert len(ratio_rows) == 2 and all(r["paper"] == RATIO_BAND[0] for r in ratio_rows)
    assert [r["ours"] for r in ratio_rows] == [pytest.approx(metrics["ratio"][g]) for g in GENERATORS]
    others = [r for r in doc["rows"] if r["metric"] != "Synthetic/real Dice ratio"]
    assert others and {r["paper_text"] for r in others} == {"not reported"}
    assert {r["metric"] for r in others} >= {"Dice", "Hausdorff (max, px)", "Hausdorff 95 (px)", "FID"}
    assert len([r for r in others if r["metric"].startswith("Hausdorff")]) == 2 * len(SOURCES)
    assert doc["differences"] == differences(paper5.__doc__) and len(doc["differences"]) >= 5  # the docstring's
    # the ratio per generator, memorisation with two additions, FID vs Dice: one seed decides nothing
    outcomes = [(c["outcome"], c["addition"]) for c in doc["claims"]]
    assert outcomes == [(INCONCLUSIVE, False)] * 3 + [(INCONCLUSIVE, True)] * 2 + [(NOT_TESTABLE, False)]
    assert all(c["estimate"]["n"] == 1 and c["reason"] for c in doc["claims"][:5])
    assert {d["kind"] for d in doc["data"]} == {"phantom", "synthetic"}
    assert [f.split("/")[-1] for f in doc["figures"]] == ["samples.png", "dice_per_source.png", "memorisation.png",
                                                          "training_curves.png", "sampling_steps.png"]
    for figure in doc["figures"]:
        assert (folder / figure).read_bytes()[:4] == b"\x89PNG"


def test_config_checks_name_the_field():
    with pytest.raises(ValueError, match="size"):
        Config(size=48)
    with pytest.raises(ValueError, match="n_small"):
        Config(n_small=300, n_train=256)
    with pytest.raises(ValueError, match="compare_steps"):
        Config(timesteps=20, compare_steps=(50,))
    with pytest.raises(ConfigError, match="fid_samples"):
        apply_overrides(PRESETS["smoke"], ["fid_samples=1"])
    with pytest.raises(ValueError, match="seg_val_share"):
        Config(seg_val_share=0.6)
    assert PRESETS["cpu"].seeds >= 3 and PRESETS["full"].seeds >= 3  # the profiles that decide claims
    assert PRESETS["cpu"].ddpm_steps >= 1500 and 8 <= PRESETS["cpu"].n_small <= 16
    assert apply_overrides(PRESETS["cpu"], ["brats=/data/brats"]).brats == "/data/brats"
    for profile in ("smoke", "cpu", "full"):
        assert PRESETS[profile].brats == ""


def test_pairs_round_trip_through_the_generators_tensor():
    rng = np.random.default_rng(0)
    pairs = Pairs(rng.random((3, 1, 8, 8), dtype=np.float32), rng.random((3, 8, 8)) > 0.7)
    x = pairs.tensor()
    assert x.shape == (3, 2, 8, 8) and x.min() >= -1 and x.max() <= 1
    back = Pairs.from_tensor(x)
    assert np.allclose(back.images, pairs.images, atol=1e-6) and (back.masks == pairs.masks).all()
    noisy = x.clone()
    noisy[:, -1] += 0.4 * torch.sign(-noisy[:, -1])  # a generated mask channel is not exactly +-1
    assert (Pairs.from_tensor(noisy).masks == pairs.masks).all()


def test_the_small_set_gets_as_many_gan_steps_as_the_larger():
    config = PRESETS["cpu"]
    large, small = gan_config(config, 2, config.n_train), gan_config(config, 2, config.n_small)
    assert large.epochs == config.gan_epochs and large.channels == 2
    def steps(gan, n):  # the DCGAN takes whole batches of at most the set's size
        return gan.epochs * (n // min(gan.batch_size, n))
    assert steps(large, config.n_train) == steps(small, config.n_small) == 480


def test_memorisation_finds_copied_masks_and_not_new_ones():
    rng = np.random.default_rng(1)
    training = Pairs(rng.random((10, 1, 8, 8), dtype=np.float32), rng.random((10, 8, 8)) > 0.5)
    held_out = Pairs(rng.random((5, 1, 8, 8), dtype=np.float32), rng.random((5, 8, 8)) > 0.5)
    copies = memorisation(training.take(slice(4)), training, held_out)
    assert copies["median"] == 0.0 and copies["near_copies"] == 1.0 and copies["real_near_copies"] == 0.0
    assert copies["excess"] == pytest.approx(copies["real_median"]) and copies["excess"] > 0.2
    new = memorisation(held_out, training, held_out)
    assert new["median"] > 0.2 and new["excess"] == pytest.approx(0.0)


def _brats_subject(folder: Path, name: str, tumour_slices: range, rng) -> None:
    import nibabel as nib

    subject = folder / name
    subject.mkdir(parents=True)
    for seq in ("t1", "t1ce", "t2", "flair"):
        image = nib.Nifti1Image(rng.random((40, 40, 6)).astype(np.float32), np.eye(4))
        nib.save(image, subject / f"{name}_{seq}.nii.gz")
    seg = np.zeros((40, 40, 6), np.uint8)
    for z in tumour_slices:
        seg[10:20, 12:22, z] = 2
    nib.save(nib.Nifti1Image(seg, np.eye(4)), subject / f"{name}_seg.nii.gz")


def test_brats_folders_are_split_by_subject(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(6):
        _brats_subject(tmp_path, f"BraTS20_Training_{i:03d}", range(1, 5), rng)
    config = Config(brats=str(tmp_path), n_train=12, n_small=4, n_test=8)
    run = cpu_run(tmp_path / "run")
    train, test, note = load_data(config, run)
    assert note.kind == "real"
    assert train.images.shape == (12, 4, 32, 32) and test.masks.shape == (8, 32, 32)
    assert train.masks.any(axis=(1, 2)).all()
    # each subject has its own random intensities: no slice of a test subject is among the training slices
    train_keys = {img.tobytes() for img in train.images}
    assert not any(img.tobytes() in train_keys for img in test.images)
    with pytest.raises(DataError, match="too few"):
        load_data(dataclasses.replace(config, n_train=20), run)


def test_ddpm_trains_and_samples_by_the_full_chain_and_by_ddim(tmp_path):
    config = dataclasses.replace(PRESETS["smoke"], ddpm_steps=2, ddpm_batch=2, timesteps=10, ddim_steps=3)
    run = cpu_run(tmp_path)
    x = torch.rand(4, 2, 32, 32) * 2 - 1
    global_state = torch.get_rng_state()
    ddpm, losses = train_ddpm(x, config, run, "ddpm-test")
    assert torch.equal(torch.get_rng_state(), global_state)  # named streams only: torch's global generator untouched
    assert len(losses) == 2 and all(np.isfinite(losses))
    again, _ = train_ddpm(x, config, run, "ddpm-test")  # the same streams give the same network
    assert all(torch.equal(a, b) for a, b in zip(ddpm.state_dict().values(), again.state_dict().values()))
    for steps in (None, 3):
        a = sample_ddpm(ddpm, 2, steps, config, run, run.torch_generator("noise"))
        b = sample_ddpm(ddpm, 2, steps, config, run, run.torch_generator("noise"))
        assert a.shape == (2, 2, 32, 32) and a.abs().max() <= 1 and torch.equal(a, b)  # seeded, clipped


def constructed(ratios: dict, excess: dict, curve: list[float], early: bool = True) -> dict:
    """metrics.json as the claims read it, from per-seed numbers: ``ratios`` {generator: per-seed Dice
    ratios}, ``excess`` {(generator, set): per-seed memorisation excess}; every DDPM loss ``curve``."""
    n = len(ratios["GAN"])
    mean = {key: float(np.mean(values)) for key, values in excess.items()}
    mem = {label: {g: {"median": 0.2, "real_median": 0.2 + mean[g, label], "excess": mean[g, label],
                       "near_copies": 0.0, "real_near_copies": 0.0} for g in GENERATORS}
           for label in ("small", "large")}
    per_seed = [{"ratio": {g: ratios[g][k] for g in GENERATORS},
                 "segmentation": {s: {"dice": 0.8 * ((ratios[s][k] or 0) if s in ratios else 1)}
                                  for s in SOURCES[:3]},
                 "memorisation": {label: {g: {"excess": excess[g, label][k]} for g in GENERATORS}
                                  for label in ("small", "large")},
                 "curves": {"DDPM": {"large": curve, "small": curve},
                            "U-Net": {s: {"early": early} for s in SOURCES[:3]}}} for k in range(n)]
    return {"per_seed": per_seed, "memorisation": mem, "fid": {}, "data": {"n_small": 16, "n_train": 256},
            "segmentation": {s: {"dice": 0.8} for s in SOURCES[:3]}}


def outcomes(metrics: dict) -> list[str]:
    return [c.outcome for c in claims(metrics)]


def test_claims_are_decided_over_the_seeds_with_their_gates():
    flat = [1.0] * 100  # a DDPM loss that levelled off
    mem = {("DDPM", "small"): [0.20, 0.25, 0.22], ("DDPM", "large"): [0.0, 0.01, -0.01],
           ("GAN", "small"): [0.0, 0.02, 0.01], ("GAN", "large"): [0.0, 0.0, 0.01]}
    ratios = {"GAN": [0.90, 0.92, 0.88], "DDPM": [0.50, 0.55, 0.60]}  # GAN above 0.8 on every seed, DDPM below
    assert outcomes(constructed(ratios, mem, flat)) == [HELD, NOT_HELD, HELD, HELD, HELD, NOT_TESTABLE]
    # a U-Net that reached its step cap while still improving: no ratio verdict either way
    assert outcomes(constructed(ratios, mem, flat, early=False))[:2] == [INCONCLUSIVE, INCONCLUSIVE]
    # a DDPM still training: no DDPM ratio verdict; memorisation may still hold (it only grows with training) ...
    falling = list(np.linspace(2.0, 1.0, 100))
    assert outcomes(constructed(ratios, mem, falling))[:3] == [HELD, INCONCLUSIVE, HELD]
    # ... but cannot be refuted while the DDPM is still learning
    no_copies = {**mem, ("DDPM", "small"): [0.0, 0.01, -0.01]}
    assert outcomes(constructed(ratios, no_copies, flat))[2] == NOT_HELD
    refuted = claims(constructed(ratios, no_copies, falling))[2]
    assert refuted.outcome == INCONCLUSIVE and "DDPM (small set) converged" in refuted.reason
    # the ratio straddling 0.8 over the seeds is inconclusive; a seed whose real-trained U-Net found nothing too
    assert outcomes(constructed({**ratios, "GAN": [0.70, 0.85, 0.90]}, mem, flat))[0] == INCONCLUSIVE
    lost = claims(constructed({**ratios, "GAN": [0.90, None, 0.88]}, mem, flat))[0]
    assert lost.outcome == INCONCLUSIVE and "a seed gave no number" in lost.reason
    assert [c.addition for c in claims(constructed(ratios, mem, flat))] == [False, False, False, True, True, False]


def test_the_unet_stops_when_its_validation_dice_stops_rising(tmp_path):
    config = dataclasses.replace(PRESETS["smoke"], seg_max_steps=200, seg_eval_every=5, seg_patience=2, seg_batch=8)
    run = cpu_run(tmp_path)
    rng = np.random.default_rng(0)
    masks = np.zeros((40, 32, 32), bool)
    masks[:, 8:20, 8:20] = True  # the same square everywhere: learnt in a few reads, then no gain
    pairs = Pairs((masks[:, None] + 0.1 * rng.random((40, 1, 32, 32))).astype(np.float32), masks)
    _, history = train_segmenter(pairs, config, run, "init", run.torch_generator("batches"))
    assert history["early"] and history["steps"] < 200 and len(history["loss"]) == history["steps"]
    assert len(history["val_dice"]) == history["steps"] // 5 and max(history["val_dice"]) > 0.9
    capped = dataclasses.replace(config, seg_max_steps=10, seg_patience=50)
    _, history = train_segmenter(pairs, capped, run, "init", run.torch_generator("batches"))
    assert not history["early"] and history["steps"] == 10


def test_every_sampler_in_the_comparison_is_timed_on_the_same_images(tmp_path, monkeypatch):
    config = dataclasses.replace(PRESETS["smoke"], ddpm_steps=1, ddpm_batch=2, timesteps=10, ddim_steps=3,
                                 compare_steps=(2, 3, 5))
    run = cpu_run(tmp_path)
    ddpm, _ = train_ddpm(torch.rand(4, 2, 32, 32) * 2 - 1, config, run, "ddpm-test")
    calls = []

    def recording(network, n, steps, *args, **kwargs):
        calls.append((steps, n))
        return sample_ddpm(network, n, steps, *args, **kwargs)

    monkeypatch.setattr(model, "sample_ddpm", recording)
    out = compare_samplers(ddpm, 3, config, run)
    assert list(out) == ["DDPM 10", "DDIM 5", "DDIM 3", "DDIM 2"]  # the ddim_steps sampler is among them once
    assert sorted(calls, key=str) == sorted([(None, 3), (5, 3), (3, 3), (2, 3)], key=str)  # each drawn on 3 pairs
    for label, (steps, pairs, seconds) in out.items():
        assert len(pairs) == 3 and seconds > 0 and steps == (10 if label == "DDPM 10" else int(label.split()[1]))

"""paper6 (Med-cDiff: conditional DDPM, pix2pix and U-Net baselines, LoRA) end to end in its smoke profile on
CPU through the CLI, and its pieces: config validation, paired data, the diffusion loss, the samplers, LoRA
parameter counts, the FID path, the verdict rules and the U-Net sizes of the presets."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from reproductions import paper6_conditional_diffusion as paper6
from reproductions.common.docstring import differences
from reproductions.config import ConfigError, apply_overrides
from reproductions.metrics.images import FidFeatures
from reproductions.paper6_conditional_diffusion import PRESETS, model, patches, report
from reproductions.run import Run
from tests.conftest import needs_data, smoke_run

SMOKE = PRESETS["smoke"]
TINY = dataclasses.replace(SMOKE, patch_size=16, channels=(8, 16), batch_size=4, sampling_steps=(1, 3))


def cpu_run(tmp_path, seed: int = 0) -> Run:
    run = Run("paper6", "smoke", seed, torch.device("cpu"), tmp_path, {})
    run.progress = lambda iterable, desc, total=None: iterable
    return run


def pairs(n: int = 6, size: int = 16, task: str = "denoise", seed: int = 0) -> patches.Pairs:
    yy, xx = np.mgrid[:size, :size] / size
    clean = np.stack([(0.5 + 0.4 * np.sin(6 * (yy + k / n)) * np.cos(4 * xx)).astype(np.float32) for k in range(n)])
    return patches.make_pairs(clean, task, np.random.default_rng(seed), noise_sigma=0.1)


@pytest.mark.slow
@needs_data("dicom-images", "mni152")
def test_paper6_smoke_run_writes_a_complete_run_folder(tmp_path):
    folder, info = smoke_run("paper6", tmp_path, seed=1)
    assert info["device"] == "cpu" and {"diffusers", "peft"} <= set(info["versions"])
    metrics = json.loads((folder / "metrics.json").read_text())
    assert set(metrics["tasks"]) == {"denoise", "sr2", "sr4", "inpaint"}
    assert metrics["seeds"] == len(metrics["per_seed"]) == SMOKE.seeds
    seed = metrics["per_seed"][0]
    for method in model.METHODS:  # early stopping reads every val_every steps, not at the cap
        curve, reads = seed["curves"]["denoise"][method], seed["val_reads"]["denoise"][method]
        stopped = seed["stopped"]["denoise"][method]
        assert len(curve) == SMOKE.train_steps or stopped
        assert len(reads) == (len(curve) if stopped else len(curve) - 1) // SMOKE.val_every > 0
    assert seed["ddpm_scale"]["denoise"] > 1  # the residual's spread is well under 1
    assert len(seed["patches"]["sr2"]["pix2pix GAN"]["psnr"]) == SMOKE.n_test
    assert np.mean(seed["patches"]["sr2"]["pix2pix GAN"]["psnr"]) == pytest.approx(
        metrics["tasks"]["sr2"]["pix2pix GAN"]["psnr"])  # one seed: the mean is that seed's
    for setting, results in metrics["tasks"].items():
        assert set(results) == {"input", "U-Net regression", "pix2pix GAN", "conditional DDPM"}, setting
        for method, values in results.items():
            assert 8 < values["psnr"] < 60 and -0.2 < values["ssim"] <= 1, (setting, method, values)
        assert set(metrics["sampling"][setting]) == {"ddim_2", "ddim_4"}
        assert all(v["s_per_sample"] > 0 for v in metrics["sampling"][setting].values())
        assert metrics["fewest_steps"][setting] in (2, 4)
    assert metrics["tasks"]["sr2"]["input"]["psnr"] > metrics["tasks"]["sr4"]["input"]["psnr"]  # x4 loses more
    adapted = metrics["lora"]
    counts = [adapted[v]["trainable_params"] for v in ("LoRA r=4", "LoRA r=8", "LoRA r=16", "full fine-tuning")]
    assert 0 < counts[0] < counts[1] < counts[2] < counts[3] == adapted["from scratch"]["trainable_params"]
    assert counts[1] == 2 * counts[0] and adapted["full fine-tuning"]["trainable_percent"] == 100
    assert adapted["base, no adaptation"]["trainable_params"] == 0
    assert all(v.get("peak_memory_mib") is None for v in adapted.values())  # a CPU run measures no GPU memory

    doc = json.loads((folder / "results.json").read_text())
    assert doc["status"] == "completed" and {r["paper_text"] for r in doc["rows"]} == {"not reported"}
    peak_rows = [r for r in doc["rows"] if r["metric"] == "peak GPU memory (MiB)"]
    assert len(peak_rows) == 5 and all(r["ours"] is None for r in peak_rows)
    # in order: fidelity against the GAN (PSNR, SSIM), against the U-Net (ours), FID, downstream, LoRA (ours)
    claims = doc["claims"]
    assert [c["addition"] for c in claims] == [False, False, True, True, False, False, True, True]
    assert [c["outcome"] for c in claims[4:6]] == ["not testable here"] * 2  # FID off in smoke; no downstream data
    assert all(c["outcome"] == "inconclusive" for c in claims[:4] + claims[6:7])  # one seed decides nothing
    assert claims[0]["estimate"]["method"] == "paired bootstrap" and claims[0]["estimate"]["n"] == 1
    assert claims[7]["outcome"] == "not testable here" and "CPU" in claims[7]["evidence"]  # LoRA's memory
    kinds = {d["name"]: d["kind"] for d in doc["data"]}
    assert kinds == {"chest X-ray (RG1_UNCI)": "real", "MR slices (MR2_UNCI, Siemens abdomen)": "real",
                     "MNI152 2009a T1 template": "substitute"}
    assert doc["differences"] == differences(paper6.__doc__) and len(doc["differences"]) >= 5  # the docstring's
    names = [f.split("/")[-1] for f in doc["figures"]]
    assert names == ["samples_denoise.png", "samples_sr2.png", "samples_sr4.png", "samples_inpaint.png",
                     "sampling_steps.png", "training_curves.png", "lora_ranks.png"]
    assert all((folder / f).read_bytes()[:4] == b"\x89PNG" for f in doc["figures"])


def test_config_validation_names_the_field():
    for override, field in (("patch_size=30", "patch_size"), ("prediction_type=noise", "prediction_type"),
                            ("tasks=denoise,colourise", "tasks"), ("channels=12,16", "channels"),
                            ("sampling_steps=0,5", "sampling_steps"), ("lora_lr=0", "lora_lr")):
        with pytest.raises(ConfigError, match=field):
            apply_overrides(SMOKE, [override])
    with pytest.raises(ConfigError, match="lora"):
        apply_overrides(SMOKE, ["tasks=sr,inpaint"])
    assert apply_overrides(SMOKE, ["tasks=sr,inpaint", "lora=false"]).tasks == ("sr", "inpaint")
    assert PRESETS["full"].ddpm_reference and PRESETS["full"].fid and not SMOKE.fid


def test_pairs_degrade_per_task_and_the_residual_target_restores_the_clean_image():
    sr = pairs(8, task="sr")
    x2, x4 = sr.part(0, 8).degraded[:4], sr.degraded[4:]
    assert np.abs(x4 - sr.clean[4:]).mean() > np.abs(x2 - sr.clean[:4]).mean()  # half x2, half x4
    hole = pairs(4, task="inpaint")
    assert hole.mask.any() and np.all(hole.degraded[hole.mask == 1] == 0)
    condition = hole.condition()
    assert condition.shape == (4, 2, 16, 16) and condition[:, 1].sum() == hole.mask.sum()
    assert -1 <= float(condition[:, 0].min()) and float(condition[:, 0].max()) <= 1
    for residual in (True, False):
        assert np.allclose(hole.restore(hole.target(residual), residual), hole.clean, atol=1e-6)
    assert torch.allclose(hole.target(False), torch.from_numpy(hole.clean[:, None] * 2 - 1))


@needs_data("dicom-images", "mni152")
def test_train_and_test_patches_come_from_disjoint_parts_of_each_image(tmp_path):
    for task in ("denoise", "sr"):
        train, test, note = patches.sources(task, 32)
        assert note.kind == "real" and len(train) == len(test)
        for a, b in zip(train, test):  # the two halves of one image
            assert a.shape[0] == b.shape[0] and abs(a.shape[1] - b.shape[1]) <= 1
    train_slices, test_slices = patches.brain_slabs(32)
    assert len(train_slices) > len(test_slices) > 10
    config = dataclasses.replace(SMOKE, n_test=4)
    train, tests, note = model.load("inpaint", 8, config, cpu_run(tmp_path))
    assert note.kind == "substitute" and train.clean.shape == (8, 32, 32) and set(tests) == {"inpaint"}
    assert (tests["inpaint"].clean < 0.05).mean(axis=(1, 2)).max() <= patches.BRAIN_BACKGROUND
    again, _, _ = model.load("inpaint", 8, config, cpu_run(tmp_path))  # the same seed and streams: the same patches
    other, _, _ = model.load("inpaint", 8, config, cpu_run(tmp_path, seed=1))
    assert np.array_equal(again.degraded, train.degraded) and not np.array_equal(other.clean, train.clean)


def test_diffusion_loss_matches_its_formula_for_each_prediction_type(tmp_path):
    run = cpu_run(tmp_path)
    unet = model.unet((8, 16), 16, 3).eval()
    target, condition = torch.rand(3, 1, 16, 16) * 2 - 1, torch.rand(3, 2, 16, 16)
    for kind in ("epsilon", "sample", "v_prediction"):
        scheduler = model.noise_scheduler(kind)
        loss = model.diffusion_loss(unet, scheduler, target, condition, torch.Generator().manual_seed(3), run)
        gen = torch.Generator().manual_seed(3)  # the same draws, in the same order
        noise = torch.randn(target.shape, generator=gen)
        t = torch.randint(0, model.TRAIN_TIMESTEPS, (3,), generator=gen)
        abar = scheduler.alphas_cumprod[t].view(-1, 1, 1, 1)
        noisy = abar.sqrt() * target + (1 - abar).sqrt() * noise
        goal = {"epsilon": noise, "sample": target, "v_prediction": abar.sqrt() * noise - (1 - abar).sqrt() * target}[kind]
        with torch.no_grad():
            expected = ((unet(torch.cat([noisy, condition], 1), t).sample - goal) ** 2).mean()
        assert torch.isclose(loss.detach(), expected, rtol=1e-4), kind


def test_samplers_and_networks_give_the_expected_shapes(tmp_path):
    run = cpu_run(tmp_path)
    condition = pairs(3).condition()
    global_state = torch.get_rng_state()
    ddpm = model.build(TINY, 3, run, "ddpm-init")
    x, per_sample = model.sample(ddpm, condition, 3, 4.0, TINY, run, run.torch_generator("noise"))
    again, _ = model.sample(ddpm, condition, 3, 4.0, TINY, run, run.torch_generator("noise"))
    assert x.shape == (3, 1, 16, 16) and x.abs().max() <= 1 and per_sample > 0 and torch.equal(x, again)
    ddim = model.DDIMScheduler.from_config(model.noise_scheduler("sample").config, timestep_spacing="trailing")
    ddim.set_timesteps(4)
    assert ddim.timesteps[0] == model.TRAIN_TIMESTEPS - 1 and len(ddim.timesteps) == 4  # few steps start at pure noise
    unet = model.build(TINY, 2, run, "unet-init")
    assert model.predict(unet, condition, run).shape == (3, 1, 16, 16)
    assert model.build(TINY, 2, run, "unet-init").state_dict()["conv_in.weight"].equal(unet.conv_in.weight)
    assert not model.build(TINY, 2, run, "other-init").state_dict()["conv_in.weight"].equal(unet.conv_in.weight)
    assert torch.equal(torch.get_rng_state(), global_state)  # named streams only: torch's global generator untouched
    assert model.PatchDiscriminator(8)(condition, x).shape == (3, 1, 4, 4)


def test_lora_counts_rank_times_fan_in_plus_fan_out_and_refuses_unknown_targets():
    base = model.unet((8, 16), 16, 3)
    attention = [m for n, m in base.named_modules() if n.endswith(("to_q", "to_k", "to_v", "to_out.0"))]
    for rank in (2, 4):
        adapted = model.with_lora(model.unet((8, 16), 16, 3), rank, ("to_q", "to_k", "to_v", "to_out.0"))
        expected = sum(rank * (m.in_features + m.out_features) for m in attention)
        assert model.count(adapted, trainable_only=True) == expected
    with pytest.raises(ValueError, match="lora_targets: to_query"):
        model.check_targets(base, ("to_q", "to_query"))


def test_every_adaptation_variant_draws_from_a_stream_of_its_own():
    streams = [model.variant_stream(v) for v in model.variants(SMOKE)]
    assert len(set(streams)) == len(streams) == 2 + len(SMOKE.lora_ranks) + 1


class TinyFeatures(torch.nn.Module):
    """A small stand-in feature net (so not FID) that counts its calls."""
    num_features = 4

    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, images):
        self.calls += 1
        pooled = torch.nn.functional.adaptive_avg_pool2d(images.float().mean(1, keepdim=True), 2)
        return pooled.flatten(1)


def test_the_fid_path_runs_real_images_through_the_network_once_and_feeds_the_claims(tmp_path):
    run = cpu_run(tmp_path)
    test = pairs(6)
    trained = model.TaskModels({"conditional DDPM": model.build(TINY, 3, run, "ddpm-init"),
                                "U-Net regression": model.build(TINY, 2, run, "unet-init"),
                                "pix2pix GAN": model.build(TINY, 2, run, "pix2pix-init")}, {}, 10.0)
    net = TinyFeatures()
    features = FidFeatures("cpu", network=net, weights="a tiny stand-in feature net (not FID)")
    results, sweep, outputs, per_patch = model.evaluate_setting("denoise", test, trained, TINY, run, features)
    assert set(sweep) == {"ddim_1", "ddim_3"} and outputs["input"] is test.degraded
    assert "fid" not in results["input"] and all(results[m]["fid"] >= 0 for m in outputs if m != "input")
    assert net.calls == 1 + 3  # the real test set once, each method once, although FID and KID both read them
    assert len(per_patch["conditional DDPM"]["ssim"]) == 6
    assert results["pix2pix GAN"]["psnr"] == pytest.approx(np.mean(per_patch["pix2pix GAN"]["psnr"]))


def seeded_metrics(ddpm=30.0, gan=29.0, unet=30.5, noise=0.3, seeds=3, patches=64, inp=25.0, stopped=True,
                   peak=None) -> dict:
    """Constructed denoise results over ``seeds`` seeds: per-patch PSNR around each method's level
    (SSIM = PSNR / 40), the means that go with them, whether the trainings stopped early (all alike) and
    a LoRA table."""
    rng = np.random.default_rng(0)
    per_seed = []
    levels = {"input": inp, "conditional DDPM": ddpm, "pix2pix GAN": gan, "U-Net regression": unet}
    for _ in range(seeds):
        psnr = {m: v + noise * rng.standard_normal(patches) for m, v in levels.items()}
        table = {m: {"psnr": p.tolist(), "ssim": (p / 40).tolist()} for m, p in psnr.items()}
        lora = {v: {"psnr": 28.0, "ssim": 0.8, "trainable_percent": 5.0, "peak_memory_mib": peak}
                for v in model.variants(SMOKE)}
        lora_patches = {v: {"psnr": (28.0 + noise * rng.standard_normal(patches)).tolist()} for v in lora}
        per_seed.append({"tasks": {"denoise": {m: {"psnr": float(np.mean(p)), "ssim": float(np.mean(p / 40))}
                                               for m, p in psnr.items()}},
                         "patches": {"denoise": table}, "stopped": {"denoise": dict.fromkeys(levels, stopped)},
                         "lora": lora, "lora_patches": lora_patches})
    return {"seeds": seeds, "per_seed": per_seed, "n_test": patches,
            "tasks": {"denoise": {m: {"psnr": v, "ssim": v / 40} for m, v in levels.items()}},
            "lora": per_seed[0]["lora"]}


def outcomes(metrics, config=SMOKE) -> list[str]:
    return [c.outcome for c in report.claims(metrics, config)]


def test_the_ddpm_is_judged_against_the_gan_and_the_u_net_is_context():
    got = report.claims(seeded_metrics(), SMOKE)
    psnr, ssim, unet_psnr, _, fid, downstream, quality, cost = got
    assert (psnr.outcome, ssim.outcome) == ("held", "held") and not psnr.addition  # 1 dB over the GAN
    assert unet_psnr.addition and unet_psnr.outcome == "did not hold"  # the U-Net is better: context only
    assert psnr.estimate.method == "paired bootstrap" and psnr.estimate.low > 0.9
    assert fid.outcome == downstream.outcome == "not testable here"
    assert quality.outcome == "held" and quality.addition  # the same PSNR as full fine-tuning
    assert cost.outcome == "not testable here" and cost.addition  # no GPU memory measured
    assert outcomes(seeded_metrics(gan=30.0, noise=0.05))[0] == "did not hold"  # a tie is not "outperforms"
    assert outcomes(seeded_metrics(seeds=2))[0] == "inconclusive"


def test_a_restoration_below_its_input_or_a_ddpm_still_training_decides_nothing():
    below = report.claims(seeded_metrics(ddpm=24.0, gan=23.0, unet=23.5), SMOKE)[0]
    assert below.outcome == "inconclusive" and "beats its input" in below.reason
    training = report.claims(seeded_metrics(stopped=False), SMOKE)[0]
    assert training.outcome == "inconclusive" and "conditional DDPM converged: 3 of 3 trainings" in training.reason
    assert "pix2pix GAN converged" in training.reason and "(first: denoise, seed 0)" in training.reason


def test_fid_needs_a_thousand_patches_and_lora_memory_a_gpu():
    metrics = seeded_metrics(patches=8, peak=100.0)
    for seed, (gan, ddpm) in zip(metrics["per_seed"], ((60.0, 50.0), (61.0, 50.5), (59.0, 49.0))):
        seed["tasks"]["denoise"]["pix2pix GAN"]["fid"], seed["tasks"]["denoise"]["conditional DDPM"]["fid"] = gan, ddpm
    with_fid = dataclasses.replace(SMOKE, fid=True)
    assert report.claims(metrics, with_fid)[4].outcome == "not testable here"  # only 8 patches
    metrics["n_test"] = report.FID_MIN_PATCHES
    assert report.claims(metrics, dataclasses.replace(with_fid, n_test=report.FID_MIN_PATCHES))[4].outcome == "held"
    for seed in metrics["per_seed"]:
        seed["lora"]["LoRA r=4"]["peak_memory_mib"] = 50.0  # half of full fine-tuning's 100 MiB
    assert report.claims(metrics, SMOKE)[-1].outcome == "held"


def test_fewest_steps_within_the_tolerance():
    sweep = {"ddim_5": {"psnr": 29.6}, "ddim_10": {"psnr": 29.9}, "ddim_25": {"psnr": 30.0}}
    assert model.fewest_steps(sweep, 0.5) == 5 and model.fewest_steps(sweep, 0.2) == 10


def test_peak_memory_counts_only_what_the_adaptation_allocates(monkeypatch):
    assert model.memory_baseline("cpu") is None and model.peak_above("cpu", None) is None  # not measured on a CPU
    resident, peak = 90 * 2**20, 150 * 2**20  # e.g. the FID Inception left on the GPU, then training on top
    calls = []
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda device=None: calls.append("reset"))
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device=None: resident)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device=None: peak)
    baseline = model.memory_baseline(torch.device("cuda"))
    assert calls == ["reset"] and baseline == resident
    assert model.peak_above(torch.device("cuda"), baseline) == pytest.approx(60.0)


def test_the_presets_build_u_nets_of_the_sizes_their_comments_give(tmp_path):
    """The cpu and full presets' comments give their U-Nets' sizes (0.28M and 12.6M parameters)."""
    run = cpu_run(tmp_path)
    built = {name: model.count(model.build(PRESETS[name], 1 + model.CONDITION_CHANNELS, run, "size-check")) / 1e6
             for name in ("cpu", "full")}
    assert built == {"cpu": pytest.approx(0.28, rel=0.05), "full": pytest.approx(12.6, rel=0.05)}


def test_training_stops_on_its_held_out_loss_and_keeps_the_best_weights(tmp_path):
    """Reads every val_every steps; a gain is a fall of more than min_gain_db; after patience reads
    without one it stops and restores the weights of the best read. Without reads it runs every step."""
    config = dataclasses.replace(SMOKE, val_every=2, patience=2, min_gain_db=0.1, batch_size=1)
    net = torch.nn.Linear(1, 1)
    start = net.bias.item()
    held_out = iter([1.0, 0.5, 0.499, 0.6, 0.1])  # the third read falls by only 0.01 dB: no gain

    def step(idx):
        with torch.no_grad():
            net.bias.add_(1.0)  # the bias counts the steps taken
        return 0.0

    out = model.run_steps(net, step, lambda: next(held_out), 8, 20, config, torch.Generator(), cpu_run(tmp_path), "t")
    assert out.stopped and out.reads == [1.0, 0.5, 0.499, 0.6] and len(out.losses) == 8
    assert net.bias.item() == pytest.approx(start + 4)  # the weights of the best read, after step 4
    again = model.run_steps(torch.nn.Linear(1, 1), lambda idx: 0.0, None, 8, 5, config, torch.Generator(),
                            cpu_run(tmp_path), "t")
    assert not again.stopped and again.reads == [] and len(again.losses) == 5

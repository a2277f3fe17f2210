"""paper6 (Med-cDiff: conditional DDPM, pix2pix and U-Net baselines, LoRA) end to end in its smoke profile on
CPU through the CLI, and its pieces: config validation, paired data, the diffusion loss, the samplers, LoRA
parameter counts, the FID path and the verdict rules."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from reproductions.config import ConfigError, apply_overrides
from reproductions.paper6_conditional_diffusion import (PRESETS, CachedFeatures, claims, data, evaluate_setting,
                                                         fewest_steps, lora, models)
from reproductions.runs import Run
from tests.conftest import needs_data, smoke_run

SMOKE = PRESETS["smoke"]
TINY = dataclasses.replace(SMOKE, patch_size=16, channels=(8, 16), batch_size=4, sampling_steps=(1, 3))


def cpu_run(tmp_path, seed: int = 0) -> Run:
    run = Run("paper6", "smoke", seed, torch.device("cpu"), tmp_path, {})
    run.progress = lambda iterable, desc, total=None: iterable
    return run


def pairs(n: int = 6, size: int = 16, task: str = "denoise", seed: int = 0) -> data.Pairs:
    yy, xx = np.mgrid[:size, :size] / size
    clean = np.stack([(0.5 + 0.4 * np.sin(6 * (yy + k / n)) * np.cos(4 * xx)).astype(np.float32) for k in range(n)])
    return data.make_pairs(clean, task, seed, noise_sigma=0.1)


@pytest.mark.slow
@needs_data("dicom-images", "mni152")
def test_paper6_smoke_run_writes_a_complete_run_folder(tmp_path):
    folder, info = smoke_run("paper6", tmp_path, seed=1)
    assert info["device"] == "cpu" and {"diffusers", "peft"} <= set(info["versions"])
    metrics = json.loads((folder / "metrics.json").read_text())
    assert set(metrics["tasks"]) == {"denoise", "sr2", "sr4", "inpaint"}
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
    assert len(peak_rows) == 5 and all(r["ours"] is None and "not measured" in r["note"] for r in peak_rows)
    claims = doc["claims"]
    assert len(claims) == 5 and all(c["evidence"] for c in claims)

    def claim(word):
        return next(c for c in claims if word in c["text"])

    fidelity = claim("PSNR and SSIM")
    assert fidelity["held"] in (True, False) and "denoise PSNR: DDPM" in fidelity["evidence"]
    assert claim("lower FID")["held"] is None  # FID is off in smoke
    assert claim("downstream")["held"] is None
    assert claim("fraction of the trainable parameters")["held"] in (True, False)
    cost = claim("lowers the cost")  # wall time only on a CPU: within the margin it is not testable
    assert cost["held"] in (True, False, None) and "peak GPU memory not measured" in cost["evidence"]
    kinds = {d["name"]: d["kind"] for d in doc["data"]}
    assert kinds["MNI152 2009a T1 template"] == "substitute" and kinds["chest X-ray (RG1_UNCI)"] == "real"
    assert any("LPIPS" in d for d in doc["differences"])
    names = {f.split("/")[-1] for f in doc["figures"]}
    assert names == {"samples_denoise.png", "samples_sr2.png", "samples_sr4.png", "samples_inpaint.png",
                     "sampling_steps.png", "lora_ranks.png"}
    assert all((folder / f).read_bytes()[:4] == b"\x89PNG" for f in doc["figures"])
    assert "smoke run" in (folder / "results.md").read_text()


def test_config_validation_names_the_field():
    for override, field in (("patch_size=30", "patch_size"), ("prediction_type=noise", "prediction_type"),
                            ("tasks=denoise,colourise", "tasks"), ("channels=12,16", "channels"),
                            ("sampling_steps=0,5", "sampling_steps"), ("lora_lr=0", "lora_lr")):
        with pytest.raises(ConfigError, match=field):
            apply_overrides(SMOKE, [override])
    with pytest.raises(ConfigError, match="lora: the adaptation starts from the denoise DDPM"):
        apply_overrides(SMOKE, ["tasks=sr,inpaint"])
    assert apply_overrides(SMOKE, ["tasks=sr,inpaint", "lora=false"]).tasks == ("sr", "inpaint")
    assert PRESETS["full"].ddpm_reference and PRESETS["full"].fid and not SMOKE.fid


def test_pairs_degrade_per_task_and_the_residual_target_restores_the_clean_image():
    sr = pairs(8, task="sr")
    x2, x4 = sr.subset(8).degraded[:4], sr.degraded[4:]
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
def test_train_and_test_patches_come_from_disjoint_parts_of_each_image():
    for task in ("denoise", "sr"):
        train, test, note = data.sources(task, 32)
        assert note.kind == "real" and len(train) == len(test)
        for a, b in zip(train, test):  # the two halves of one image
            assert a.shape[0] == b.shape[0] and abs(a.shape[1] - b.shape[1]) <= 1
    train_slices, test_slices = data.brain_slabs(32)
    assert len(train_slices) > len(test_slices) > 10
    train, tests, note = data.load("inpaint", 8, 4, 32, 0, 0.1)
    assert note.kind == "substitute" and train.clean.shape == (8, 32, 32) and set(tests) == {"inpaint"}
    assert (tests["inpaint"].clean < 0.05).mean(axis=(1, 2)).max() <= data.BRAIN_BACKGROUND


def test_diffusion_loss_matches_its_formula_for_each_prediction_type(tmp_path):
    run = cpu_run(tmp_path)
    model = models.unet((8, 16), 16, 3).eval()
    target, condition = torch.rand(3, 1, 16, 16) * 2 - 1, torch.rand(3, 2, 16, 16)
    for kind in ("epsilon", "sample", "v_prediction"):
        scheduler = models.noise_scheduler(kind)
        loss = models.diffusion_loss(model, scheduler, target, condition, torch.Generator().manual_seed(3), run)
        gen = torch.Generator().manual_seed(3)  # the same draws, in the same order
        noise = torch.randn(target.shape, generator=gen)
        t = torch.randint(0, models.TRAIN_TIMESTEPS, (3,), generator=gen)
        abar = scheduler.alphas_cumprod[t].view(-1, 1, 1, 1)
        noisy = abar.sqrt() * target + (1 - abar).sqrt() * noise
        goal = {"epsilon": noise, "sample": target, "v_prediction": abar.sqrt() * noise - (1 - abar).sqrt() * target}[kind]
        with torch.no_grad():
            expected = ((model(torch.cat([noisy, condition], 1), t).sample - goal) ** 2).mean()
        assert torch.isclose(loss.detach(), expected, rtol=1e-4), kind


def test_samplers_and_networks_give_the_expected_shapes(tmp_path):
    run = cpu_run(tmp_path)
    condition = pairs(3).condition()
    ddpm = models.build(TINY, 3, seed=0, device="cpu")
    x, per_sample = models.sample(ddpm, condition, 3, TINY, run, torch.Generator().manual_seed(0))
    again, _ = models.sample(ddpm, condition, 3, TINY, run, torch.Generator().manual_seed(0))
    assert x.shape == (3, 1, 16, 16) and x.abs().max() <= 1 and per_sample > 0 and torch.equal(x, again)
    ddim = models.DDIMScheduler.from_config(models.noise_scheduler("sample").config, timestep_spacing="trailing")
    ddim.set_timesteps(4)
    assert ddim.timesteps[0] == models.TRAIN_TIMESTEPS - 1 and len(ddim.timesteps) == 4  # few steps start at pure noise
    unet = models.build(TINY, 2, seed=1, device="cpu")
    assert models.predict(unet, condition, run).shape == (3, 1, 16, 16)
    assert models.PatchDiscriminator(8)(condition, x).shape == (3, 1, 4, 4)
    assert models.build(TINY, 2, seed=1, device="cpu").state_dict()["conv_in.weight"].equal(unet.conv_in.weight)


def test_lora_counts_rank_times_fan_in_plus_fan_out_and_refuses_unknown_targets():
    base = models.unet((8, 16), 16, 3)
    attention = [m for n, m in base.named_modules() if n.endswith(("to_q", "to_k", "to_v", "to_out.0"))]
    for rank in (2, 4):
        adapted = lora.with_lora(models.unet((8, 16), 16, 3), rank, ("to_q", "to_k", "to_v", "to_out.0"))
        expected = sum(rank * (m.in_features + m.out_features) for m in attention)
        assert models.count(adapted, trainable_only=True) == expected
    with pytest.raises(ValueError, match="lora_targets: to_query"):
        lora.check_targets(base, ("to_q", "to_query"))


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
    trained = {"conditional DDPM": models.build(TINY, 3, 0, "cpu"), "U-Net regression": models.build(TINY, 2, 1, "cpu"),
               "pix2pix GAN": models.build(TINY, 2, 2, "cpu")}
    net = TinyFeatures()
    features = CachedFeatures(net)
    results, sweep, outputs = evaluate_setting("denoise", test, trained, TINY, run, features, 0)
    assert set(sweep) == {"ddim_1", "ddim_3"} and outputs["input"] is test.degraded
    assert "fid" not in results["input"] and all(results[m]["fid"] >= 0 for m in outputs if m != "input")
    assert net.calls == 1 + 3  # the real test set once, each method once, although FID and KID both read them
    metrics = {"tasks": {"denoise": results}}
    fid_claim = claims(metrics, dataclasses.replace(TINY, fid=True, lora=False))[1]
    assert "FID" in fid_claim.text and fid_claim.held in (True, False) and "denoise: FID DDPM" in fid_claim.evidence


def test_verdict_rules():
    sweep = {"ddim_5": {"psnr": 29.6}, "ddim_10": {"psnr": 29.9}, "ddim_25": {"psnr": 30.0}}
    assert fewest_steps(sweep, 0.5) == 5 and fewest_steps(sweep, 0.2) == 10
    result = {lora.BASE: {"psnr": 20.0}, lora.FULL: {"psnr": 25.0, "ssim": 0.8, "wall_time_s": 10.0, "peak_memory_mib": None}}
    for rank, value in ((4, 23.0), (8, 24.6)):
        result[lora.lora_name(rank)] = {"psnr": value, "ssim": 0.7, "trainable_percent": rank, "wall_time_s": 8.0,
                                        "peak_memory_mib": None}
    assert lora.verdict(result, (4, 8), 0.5)[0] and not lora.verdict(result, (4,), 0.5)[0]
    held, evidence = lora.cost_verdict(result, (4, 8))
    assert held and "not measured" in evidence and "r=4 8.00 s (80%)" in evidence


def lora_costs(full: float, *ranks: float, key: str = "wall_time_s", other: float | None = None) -> dict:
    """Results with full fine-tuning at ``full`` and LoRA r=1, 2, ... at ``ranks`` in ``key``."""
    other_key = "peak_memory_mib" if key == "wall_time_s" else "wall_time_s"
    out = {lora.FULL: {key: full, other_key: other}}
    for r, value in enumerate(ranks, 1):
        out[lora.lora_name(r)] = {key: value, other_key: other}
    return out


def test_the_cost_claim_needs_every_rank_a_margin_below_full_fine_tuning():
    m = lora.COST_MARGIN
    ranks = (1, 2)
    # CPU (no memory): clearly faster holds, clearly slower does not, a gap within the margin is not testable
    assert lora.cost_verdict(lora_costs(10.0, 10 * (1 - m) - 0.1, 5.0), ranks)[0] is True
    assert lora.cost_verdict(lora_costs(10.0, 10 * (1 + m) + 0.1, 5.0), ranks)[0] is False
    held, evidence = lora.cost_verdict(lora_costs(10.8, 10.58, 5.0), ranks)
    assert held is None and "timing noise" in evidence and "10.58 s (98%)" in evidence and f"{m:.0%}" in evidence
    # GPU: memory decides, and every rank must be the margin below
    gpu = lora_costs(100.0, 100 * (1 - m) - 1, 50.0, key="peak_memory_mib", other=10.0)
    held, evidence = lora.cost_verdict(gpu, ranks)
    assert held is True and "MiB" in evidence and "50 MiB (50%)" in evidence
    gpu[lora.lora_name(1)]["peak_memory_mib"] = 100 * (1 - m) + 1
    assert lora.cost_verdict(gpu, ranks)[0] is False


def test_peak_memory_counts_only_what_the_adaptation_allocates(monkeypatch):
    assert lora.memory_baseline("cpu") is None and lora.peak_above("cpu", None) is None  # not measured on a CPU
    resident, peak = 90 * 2**20, 150 * 2**20  # e.g. the FID Inception left on the GPU, then training on top
    calls = []
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda device=None: calls.append("reset"))
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device=None: resident)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device=None: peak)
    baseline = lora.memory_baseline(torch.device("cuda"))
    assert calls == ["reset"] and baseline == resident
    assert lora.peak_above(torch.device("cuda"), baseline) == pytest.approx(60.0)


def test_preset_comments_state_the_real_u_net_sizes():
    import inspect
    import re

    from reproductions import paper6_conditional_diffusion as paper6

    source = inspect.getsource(paper6)
    for name in ("cpu", "full"):
        before = source[:source.index(f'"{name}": Config(')]
        comment = before[before.rindex("),\n"):]  # from the end of the previous preset to this one
        stated = float(re.search(r"([\d.]+)M-parameter U-Net", comment).group(1))
        built = models.count(models.build(PRESETS[name], 1 + models.CONDITION_CHANNELS, 0, "cpu")) / 1e6
        assert stated == pytest.approx(built, rel=0.05), name
        assert f"{PRESETS[name].train_steps} steps per model" in comment, name

"""LoRA (peft) on the conditional DDPM's U-Net against full fine-tuning, in a low-resource adaptation.

The base is the chest X-ray denoising DDPM of the main experiment; the target is denoising brain
MR (the MNI152 template) from a small training set. Compared at the same number of adaptation
steps: the base as is, a U-Net trained from scratch on the small set, LoRA at each rank, and full
fine-tuning; for each the trainable parameters, the wall time of adaptation, the peak GPU memory
of the adaptation and the quality of DDIM samples.

Peak GPU memory counts only what the variant itself allocates: ``torch.cuda.max_memory_allocated``
after the adaptation minus ``torch.cuda.memory_allocated`` just before the variant's model is made,
so it covers the variant's U-Net (with its adapters), gradients, optimiser state and activations,
and excludes whatever else stays resident on the GPU (the base model, the FID Inception, test
tensors). Not measured on a CPU.
"""

from __future__ import annotations

import copy

import torch
from peft import LoraConfig, get_peft_model

from reproductions.metrics.images import psnr, ssim
from reproductions.paper6_conditional_diffusion import data, models

TARGET_TASK = "brain-denoise"
BASE = "base, no adaptation"
SCRATCH = "from scratch"
FULL = "full fine-tuning"
COST_MARGIN = 0.10  # LoRA "lowers the cost" only if every rank is at least this fraction below full fine-tuning


def lora_name(rank: int) -> str:
    return f"LoRA r={rank}"


def with_lora(model, rank: int, targets: tuple[str, ...]):
    """A peft ``PeftModel`` around ``model`` with rank-``rank`` adapters (alpha = rank) on ``targets``."""
    return get_peft_model(model, LoraConfig(r=rank, lora_alpha=rank, target_modules=list(targets), lora_dropout=0.0))


def check_targets(model, targets: tuple[str, ...]) -> None:
    """Fail loudly when a LoRA target names no module of the U-Net (peft matches by suffix)."""
    names = [name for name, _ in model.named_modules()]
    missing = [t for t in targets if not any(n == t or n.endswith("." + t) for n in names)]
    if missing:
        raise ValueError(f"lora_targets: {', '.join(missing)} match no module of UNet2DModel "
                         "(e.g. to_q, to_k, to_v, to_out.0, conv1, conv2, time_emb_proj, conv_shortcut)")


def memory_baseline(device) -> int | None:
    """Reset the peak statistics of ``device`` and return the bytes allocated now (None off a GPU)."""
    if torch.device(device).type != "cuda":
        return None
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)
    return torch.cuda.memory_allocated(device)


def peak_above(device, baseline: int | None) -> float | None:
    """Peak allocated MiB on ``device`` since ``memory_baseline``, above that baseline (None off a GPU)."""
    if baseline is None:
        return None
    return (torch.cuda.max_memory_allocated(device) - baseline) / 2**20


def adapt(base, config, run):
    """Run every adaptation variant; returns ({variant: scores}, test pairs, {variant: samples}, data note)."""
    train, tests, note = data.load(TARGET_TASK, config.adapt_train, config.n_test, config.patch_size,
                                   run.seed + 50, config.noise_sigma)
    test = tests[TARGET_TASK]
    check_targets(base, config.lora_targets)
    total = models.count(base)
    variants = [BASE, SCRATCH, *(lora_name(r) for r in config.lora_ranks), FULL]
    results, samples = {}, {}
    for i, variant in enumerate(variants):
        baseline = memory_baseline(run.device) if variant != BASE else None
        if variant == SCRATCH:
            model = models.build(config, 1 + models.CONDITION_CHANNELS, run.seed + 60, run.device)
        else:
            model = copy.deepcopy(base)
        if variant.startswith("LoRA"):
            model = with_lora(model, int(variant.split("=")[1]), config.lora_targets)
        trainable = models.count(model, trainable_only=True) if variant != BASE else 0
        wall = 0.0
        if variant != BASE:
            lr = config.lora_lr if variant.startswith("LoRA") else config.lr
            wall = models.train_ddpm(model, train.target(config.residual), train.condition(), config, run, run.generator(300 + i),
                                     f"adapt: {variant}", steps=config.adapt_steps, lr=lr)
        peak = peak_above(run.device, baseline)
        out, per_sample = models.sample(model, test.condition(), max(config.sampling_steps), config, run,
                                        run.generator(400))
        image = test.restore(out, config.residual)
        samples[variant] = image
        results[variant] = {"trainable_params": trainable, "trainable_percent": 100 * trainable / total,
                            "wall_time_s": wall, "peak_memory_mib": peak, "psnr": psnr(test.clean, image),
                            "ssim": ssim(test.clean, image), "s_per_sample": per_sample}
        del model
    results["input (noisy)"] = {"psnr": psnr(test.clean, test.degraded), "ssim": ssim(test.clean, test.degraded)}
    return results, test, samples, note


def verdict(results: dict, ranks: tuple[int, ...], tolerance_db: float) -> tuple[bool, str]:
    """LoRA holds if some rank comes within ``tolerance_db`` PSNR of full fine-tuning."""
    full = results[FULL]
    close = [r for r in ranks if results[lora_name(r)]["psnr"] >= full["psnr"] - tolerance_db]
    evidence = "; ".join(f"{lora_name(r)}: PSNR {results[lora_name(r)]['psnr']:.2f} dB, SSIM "
                         f"{results[lora_name(r)]['ssim']:.3f}, {results[lora_name(r)]['trainable_percent']:.1f}% "
                         "of the parameters trained" for r in ranks)
    evidence += (f"; full fine-tuning: PSNR {full['psnr']:.2f} dB, SSIM {full['ssim']:.3f}, 100% trained; "
                 f"base without adaptation: PSNR {results[BASE]['psnr']:.2f} dB. Rule: some rank within "
                 f"{tolerance_db} dB of full fine-tuning")
    return bool(close), evidence


def cost_verdict(results: dict, ranks: tuple[int, ...], margin: float = COST_MARGIN) -> tuple[bool | None, str]:
    """LoRA's training cost against full fine-tuning, with a declared ``margin``.

    Peak GPU memory measured: held if every rank's peak is at least ``margin`` below full fine-tuning's,
    otherwise not held. Not measured (a CPU run): wall time decides, held if every rank is at least
    ``margin`` faster, not held if some rank is more than ``margin`` slower, and otherwise (some rank
    within the margin, timing noise) not testable here (None)."""
    full = results[FULL]

    def ratio(rank, key):
        return results[lora_name(rank)][key] / full[key]

    walls = ", ".join(f"r={r} {results[lora_name(r)]['wall_time_s']:.2f} s ({ratio(r, 'wall_time_s'):.0%})"
                      for r in ranks)
    evidence = f"adaptation wall time: {walls} of full fine-tuning's {full['wall_time_s']:.2f} s"
    if full["peak_memory_mib"] is None:
        time = [ratio(r, "wall_time_s") for r in ranks]
        held = True if max(time) <= 1 - margin else False if max(time) > 1 + margin else None
        rule = (f"; peak GPU memory not measured (CPU run), so wall time decides. Rule: every rank at least "
                f"{margin:.0%} below full fine-tuning's time holds, some rank more than {margin:.0%} above it does "
                "not, anything else is within timing noise (not testable here)")
        return held, evidence + rule
    mems = ", ".join(f"r={r} {results[lora_name(r)]['peak_memory_mib']:.0f} MiB ({ratio(r, 'peak_memory_mib'):.0%})"
                     for r in ranks)
    held = all(ratio(r, "peak_memory_mib") <= 1 - margin for r in ranks)
    return held, evidence + f"; peak GPU memory above what was resident before: {mems} of full fine-tuning's " \
                            f"{full['peak_memory_mib']:.0f} MiB. Rule: every rank's peak memory at least {margin:.0%} " \
                            "below full fine-tuning's"

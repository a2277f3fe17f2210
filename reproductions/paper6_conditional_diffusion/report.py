"""Paper 6's report: where the paper's numbers were looked for (none were found), the rows of ours,
the claims with their rules (the paper's qualitative ones, and the review's case for LoRA), and the
figures: sample grids per task, quality against sampling steps, LoRA rank against quality."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from reproductions.common.numbers import is_missing
from reproductions.common.plotting import plt, save
from reproductions.outcome import Claim, DataNote, Reported, Row
from reproductions.paper6_conditional_diffusion.model import BASE, FULL, METHODS, lora_name, variants
from reproductions.run import Run

if TYPE_CHECKING:
    from reproductions.paper6_conditional_diffusion import Config

PAPER_SOURCE = "reported-results.md, Paper 6: no numbers and no code were found"
CLAIM_SOURCE = "Med-cDiff as summarised in the review (reported-results.md, Paper 6)"
LORA_SOURCE = "the review's case for parameter-efficient methods in low-resource settings (not a claim of Med-cDiff)"
COST_MARGIN = 0.10  # LoRA "lowers the cost" only if every rank is at least this fraction below full fine-tuning
RIVALS = ("U-Net regression", "pix2pix GAN")
TITLES = {"denoise": "chest X-ray denoising (real radiograph, simulated noise)",
          "sr2": "MRI super-resolution x2 (real MR slices, simulated downsampling)",
          "sr4": "MRI super-resolution x4 (real MR slices, simulated downsampling)",
          "inpaint": "brain MRI inpainting (MNI152 template as substitute, simulated holes)"}


# ---- rows ---------------------------------------------------------------------------------------

def rows(metrics: dict, config: Config, device: str) -> list[Row]:
    missing = Reported.missing(PAPER_SOURCE)
    out = []
    fid_note = f"on {config.n_test} test patches (32 px upsampled to 299 px): biased, compare within this run only"
    for setting, results in metrics["tasks"].items():
        for method in ("input", *METHODS):
            out.append(Row("PSNR (dB)", f"{setting} / {method}", results[method]["psnr"], missing))
            out.append(Row("SSIM", f"{setting} / {method}", results[method]["ssim"], missing))
            if "fid" in results[method]:
                out.append(Row("FID", f"{setting} / {method}", results[method]["fid"], missing, False, fid_note))
    for setting, sweep in metrics["sampling"].items():
        for key, values in sweep.items():
            label = key.replace("ddim_", "DDIM ").replace("ddpm_", "DDPM ") + " steps"
            out.append(Row("PSNR (dB)", f"{setting} / conditional DDPM, {label}", values["psnr"], missing))
            out.append(Row("SSIM", f"{setting} / conditional DDPM, {label}", values["ssim"], missing))
            out.append(Row("seconds per sample", f"{setting} / conditional DDPM, {label}", values["s_per_sample"],
                           missing, False, f"on {device}"))
        out.append(Row("fewest DDIM steps within tolerance", f"{setting} / conditional DDPM",
                       metrics["fewest_steps"][setting], missing, False,
                       f"PSNR within {config.tolerance_db} dB of {max(config.sampling_steps)} steps"))
    for variant, values in metrics.get("lora", {}).items():
        setting = f"brain-MR denoising / {variant}"
        out.append(Row("PSNR (dB)", setting, values["psnr"], missing))
        out.append(Row("SSIM", setting, values["ssim"], missing))
        if "wall_time_s" in values and variant != BASE:
            out.append(Row("trainable parameters", setting, values["trainable_params"], missing, None))
            out.append(Row("trainable parameters (%)", setting, values["trainable_percent"], missing, None))
            out.append(Row("adaptation wall time (s)", setting, values["wall_time_s"], missing, False, f"on {device}"))
            out.append(Row("peak GPU memory (MiB)", setting, values["peak_memory_mib"], missing, False,
                           "not measured: CPU run" if is_missing(values["peak_memory_mib"]) else ""))
    return out


# ---- claims -------------------------------------------------------------------------------------

def fidelity_claim(settings: dict) -> Claim:
    """Held if the DDPM's PSNR and SSIM are at least both rivals' on every setting."""
    fidelity = [(s, key, r["conditional DDPM"][key], *(r[m][key] for m in RIVALS))
                for key in ("psnr", "ssim") for s, r in settings.items()]
    return Claim("The conditional DDPM outperforms the GAN (and here also a regression U-Net) on denoising, "
                 "super-resolution and inpainting; tested on PSNR and SSIM, which the paper did not report",
                 CLAIM_SOURCE, all(d >= max(u, g) for _, _, d, u, g in fidelity),
                 "; ".join(f"{s} {m.upper()}: DDPM {d:.3g}, U-Net {u:.3g}, GAN {g:.3g}" for s, m, d, u, g in fidelity)
                 + ". Rule: the DDPM at least as high as both on every setting and both metrics")


def fid_claim(settings: dict, config: Config) -> Claim:
    """Held if the DDPM's FID is the lowest on every setting; not testable with FID switched off."""
    if not config.fid:
        return Claim("The conditional DDPM gives more realistic images than the GAN: lower FID / LPIPS",
                     CLAIM_SOURCE, None, "FID switched off in this run (fid=false); LPIPS not available offline")
    fid = [(s, r["conditional DDPM"]["fid"], *(r[m]["fid"] for m in RIVALS)) for s, r in settings.items()]
    return Claim("The conditional DDPM gives more realistic images than the GAN (and the U-Net): lower FID "
                 "(the paper also used LPIPS, not available offline)", CLAIM_SOURCE,
                 all(d <= min(u, g) for _, d, u, g in fid),
                 "; ".join(f"{s}: FID DDPM {d:.1f}, U-Net {u:.1f}, GAN {g:.1f}" for s, d, u, g in fid)
                 + f". FID on {config.n_test} patches per setting is biased; rule: the DDPM lowest on every setting")


def lora_verdict(results: dict, ranks: tuple[int, ...], tolerance_db: float) -> tuple[bool, str]:
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
    if is_missing(full["peak_memory_mib"]):
        time = [ratio(r, "wall_time_s") for r in ranks]
        held = True if max(time) <= 1 - margin else False if max(time) > 1 + margin else None
        rule = (f"; peak GPU memory not measured (CPU run), so wall time decides. Rule: every rank at least "
                f"{margin:.0%} below full fine-tuning's time holds, some rank more than {margin:.0%} above it does "
                "not, anything else is within timing noise (not testable here)")
        return held, evidence + rule
    mems = ", ".join(f"r={r} {results[lora_name(r)]['peak_memory_mib']:.0f} MiB ({ratio(r, 'peak_memory_mib'):.0%})"
                     for r in ranks)
    held = all(ratio(r, "peak_memory_mib") <= 1 - margin for r in ranks)
    return held, (f"{evidence}; peak GPU memory above what was resident before: {mems} of full fine-tuning's "
                  f"{full['peak_memory_mib']:.0f} MiB. Rule: every rank's peak memory at least {margin:.0%} "
                  "below full fine-tuning's")


def claims(metrics: dict, config: Config) -> list[Claim]:
    """Fidelity, realism (FID), downstream use (not testable here) and, with the LoRA experiment, LoRA's
    quality and its cost: in that order."""
    out = [fidelity_claim(metrics["tasks"]), fid_claim(metrics["tasks"], config),
           Claim("Med-cDiff's outputs serve downstream tasks (classification accuracy, segmentation Dice) and "
                 "pass a two-alternative forced-choice perception test", CLAIM_SOURCE, None,
                 "not testable here: no labelled downstream data offline and no human readers")]
    if "lora" in metrics:
        held, evidence = lora_verdict(metrics["lora"], config.lora_ranks, config.tolerance_db)
        out.append(Claim("LoRA reaches the quality of full fine-tuning with a fraction of the trainable parameters",
                         LORA_SOURCE, held, evidence))
        held, evidence = cost_verdict(metrics["lora"], config.lora_ranks)
        out.append(Claim(f"LoRA lowers the cost of adaptation (memory, time) against full fine-tuning, every rank by "
                         f"at least {COST_MARGIN:.0%}", LORA_SOURCE, held, evidence))
    return out


# ---- figures ------------------------------------------------------------------------------------

def sample_grid(setting: str, columns: dict[str, np.ndarray], clean: np.ndarray, scores: dict, note: DataNote,
                config: Config, run: Run) -> str:
    """Rows: test examples; columns: the condition, each method's output and the target."""
    title = f"{TITLES[setting]}: {note.name} ({note.kind}), DDPM with {max(config.sampling_steps)} DDIM steps"
    panels = {**columns, "target": clean}
    n = min(config.grid_examples, len(clean))
    fig, axes = plt.subplots(n, len(panels), figsize=(1.7 * len(panels), 1.7 * n + 0.6), squeeze=False)
    for col, (name, images) in enumerate(panels.items()):
        for row in range(n):
            ax = axes[row, col]
            ax.imshow(images[row], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        label = name if name not in scores else f"{name}\n{scores[name]['psnr']:.1f} dB / {scores[name]['ssim']:.2f}"
        axes[0, col].set_title(label, fontsize=8)
    fig.suptitle(f"{title}\n(column titles: mean PSNR / SSIM over the test set)", fontsize=9)
    return save(fig, run, f"samples_{setting}.png")


def steps_curves(sampling: dict, run: Run) -> str:
    """PSNR, SSIM and time per sample against the number of DDIM steps, one line per task setting."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for setting, by_steps in sampling.items():
        ddim = {int(k.split("_")[1]): v for k, v in by_steps.items() if k.startswith("ddim_")}
        steps = sorted(ddim)
        for ax, key in zip(axes, ("psnr", "ssim", "s_per_sample")):
            line, = ax.plot(steps, [ddim[s][key] for s in steps], marker="o", label=setting)
            if "ddpm_1000" in by_steps:
                ax.scatter([1000], [by_steps["ddpm_1000"][key]], marker="*", s=80, color=line.get_color())
    for ax, label in zip(axes, ("PSNR (dB)", "SSIM", "seconds per sample")):
        ax.set_xscale("log")
        ax.set_xlabel("sampling steps (DDIM; star: 1000-step DDPM where run)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[2].set_yscale("log")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"Conditional DDPM: quality and cost against sampling steps ({run.device.type})")
    fig.tight_layout()
    return save(fig, run, "sampling_steps.png")


def lora_panel(results: dict, note: DataNote, config: Config, run: Run) -> str:
    """Trainable parameters, quality (PSNR, SSIM) and wall time of each adaptation variant."""
    shown = variants(config)
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.8))
    x = np.arange(len(shown))
    colours = ["0.6" if v.startswith(("base", "from")) else ("C0" if v.startswith("LoRA") else "C3") for v in shown]
    panels = (("trainable_params", "trainable parameters", True), ("psnr", "PSNR (dB)", False),
              ("ssim", "SSIM", False), ("wall_time_s", "adaptation wall time (s)", False))
    for ax, (key, label, log) in zip(axes, panels):
        values = [results[v][key] for v in shown]
        ax.bar(x, [max(v, 1) if log else v for v in values], color=colours)
        if log:
            ax.set_yscale("log")
            for xi, v in zip(x, values):
                ax.text(xi, max(v, 1), f"{results[shown[xi]]['trainable_percent']:.1f}%", ha="center",
                        va="bottom", fontsize=7)
        elif key != "wall_time_s":
            low, high = min(values), max(values)
            ax.set_ylim(low - 0.15 * (high - low + 1e-6), high + 0.1 * (high - low + 1e-6))
        ax.set_xticks(x, shown, rotation=35, ha="right", fontsize=8)
        ax.set_title(label, fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    measured = [v for v in shown if not is_missing(results[v]["peak_memory_mib"])]
    memory = ("peak GPU memory (MiB): " + ", ".join(f"{v} {results[v]['peak_memory_mib']:.0f}" for v in measured)
              if measured else "peak GPU memory not measured (CPU run)")
    fig.suptitle(f"X-ray denoising DDPM adapted to brain-MR denoising ({note.name}, {note.kind}) from "
                 f"{config.adapt_train} patches, {config.adapt_steps} steps\n{memory}", fontsize=9)
    fig.tight_layout()
    return save(fig, run, "lora_ranks.png")

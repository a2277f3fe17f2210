"""Figures of paper 6: sample grids per task, quality against sampling steps, LoRA rank against quality."""

from __future__ import annotations

import numpy as np

from reproductions.common.plotting import pyplot, save


def sample_grid(setting: str, columns: dict[str, np.ndarray], clean: np.ndarray, scores: dict, title: str,
                run, n: int) -> str:
    """Rows: test examples; columns: the condition, each method's output and the target."""
    plt = pyplot()
    panels = {**columns, "target": clean}
    n = min(n, len(clean))
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


def steps_curves(sampling: dict, run) -> str:
    """PSNR, SSIM and time per sample against the number of DDIM steps, one line per task setting."""
    plt = pyplot()
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


def lora_panel(results: dict, variants: list[str], run, title: str) -> str:
    """Trainable parameters, quality (PSNR, SSIM) and wall time of each adaptation variant."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.8))
    x = np.arange(len(variants))
    colours = ["0.6" if v.startswith(("base", "from")) else ("C0" if v.startswith("LoRA") else "C3") for v in variants]
    panels = (("trainable_params", "trainable parameters", True), ("psnr", "PSNR (dB)", False),
              ("ssim", "SSIM", False), ("wall_time_s", "adaptation wall time (s)", False))
    for ax, (key, label, log) in zip(axes, panels):
        values = [results[v][key] for v in variants]
        ax.bar(x, [max(v, 1) if log else v for v in values], color=colours)
        if log:
            ax.set_yscale("log")
            for xi, v in zip(x, values):
                ax.text(xi, max(v, 1), f"{results[variants[xi]]['trainable_percent']:.1f}%", ha="center",
                        va="bottom", fontsize=7)
        else:
            low, high = min(values), max(values)
            ax.set_ylim(low - 0.15 * (high - low + 1e-6), high + 0.1 * (high - low + 1e-6)) if key != "wall_time_s" else None
        ax.set_xticks(x, variants, rotation=35, ha="right", fontsize=8)
        ax.set_title(label, fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    peaks = [results[v]["peak_memory_mib"] for v in variants if not v.startswith("base")]
    memory = "peak GPU memory not measured (CPU run)" if all(p is None for p in peaks) else \
        "peak GPU memory (MiB): " + ", ".join(f"{v} {results[v]['peak_memory_mib']:.0f}" for v in variants
                                             if results[v]["peak_memory_mib"] is not None)
    fig.suptitle(f"{title}\n{memory}", fontsize=9)
    fig.tight_layout()
    return save(fig, run, "lora_ranks.png")

"""Paper 6's report: where the paper's numbers were looked for (none were found), the rows of ours,
the claims with their rules (the paper's qualitative ones, and the review's case for LoRA), and the
figures: sample grids per task, quality against sampling steps, LoRA rank against quality."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from reproductions.common.numbers import is_missing
from reproductions.common.plotting import plt, save
from reproductions.outcome import Claim, DataNote, Reported, Row
from reproductions.paper6_conditional_diffusion.model import ADAPT_TASK, BASE, FULL, METHODS, lora_name, variants
from reproductions.run import Run
from reproductions.verdict import Gate, Rule, beats_input, interval, paired, paired_bootstrap, stopped_early

if TYPE_CHECKING:
    from reproductions.paper6_conditional_diffusion import Config

PAPER_SOURCE = "reported-results.md, Paper 6: no numbers and no code were found"
CLAIM_SOURCE = "Med-cDiff as summarised in the review (reported-results.md, Paper 6)"
LORA_SOURCE = "the review's case for parameter-efficient methods in low-resource settings (not a claim of Med-cDiff)"
COST_MARGIN = 0.10  # LoRA "lowers the cost" only if its peak memory is at least this fraction below full fine-tuning's
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
    mean = f"mean of {metrics['seeds']} seeds"
    for setting, results in metrics["tasks"].items():
        for method in ("input", *METHODS):
            out.append(Row("PSNR (dB)", f"{setting} / {method}", results[method]["psnr"], missing, note=mean))
            out.append(Row("SSIM", f"{setting} / {method}", results[method]["ssim"], missing, note=mean))
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

# fixed before the run: the smallest mean difference per test patch that counts
PSNR_TOLERANCE_DB = 0.1
SSIM_TOLERANCE = 0.005
FID_TOLERANCE = 1.0
FID_MIN_PATCHES = 1000  # FID on fewer test patches is biased: the realism claim is not testable below this
LORA_RANK_TESTED = 0  # index into lora_ranks: the smallest rank, the strictest test of "a fraction of the parameters"


def paired_patches(tables: list[dict], a: str, b: str, key: str) -> tuple[np.ndarray, np.ndarray]:
    """(seeds, patches) arrays of ``key`` for methods ``a`` and ``b`` from one {setting: {method: {key:
    per-patch list}}} table per seed, every setting's patches side by side."""
    def stack(method):
        return np.array([np.concatenate([table[s][method][key] for s in sorted(table)]) for table in tables])
    return stack(a), stack(b)


def gates(metrics: dict, methods: tuple[str, ...]) -> list[Gate]:
    """Each of ``methods`` stopped on its held-out loss before its step cap on every task and seed (one
    that reached the cap was still improving), and beats the degraded input on every setting (a
    restoration that does not cannot be ranked)."""
    out = [stopped_early(method, {f"{task}, seed {k}": seed["stopped"][task][method]
                                  for k, seed in enumerate(metrics["per_seed"]) for task in seed["stopped"]})
           for method in methods]
    for setting in metrics["tasks"]:
        per_seed = [seed["tasks"][setting] for seed in metrics["per_seed"]]
        for method in methods:
            out.append(beats_input(f"{method} on {setting}", interval([r[method]["psnr"] for r in per_seed]),
                                   interval([r["input"]["psnr"] for r in per_seed])))
    return out


def fidelity_claims(metrics: dict, rng: np.random.Generator) -> list[Claim]:
    """The DDPM against the GAN (the paper's rival) on PSNR and SSIM, and against the U-Net as context."""
    out = []
    for rival, addition in (("pix2pix GAN", False), ("U-Net regression", True)):
        checks = gates(metrics, ("conditional DDPM", rival))
        for key, unit, tolerance in (("psnr", "dB", PSNR_TOLERANCE_DB), ("ssim", "", SSIM_TOLERANCE)):
            ddpm, other = paired_patches([seed["patches"] for seed in metrics["per_seed"]], "conditional DDPM", rival,
                                         key)
            per_setting = "; ".join(
                f"{s}: DDPM {r['conditional DDPM'][key]:.4g}, {rival} {r[rival][key]:.4g}, input {r['input'][key]:.4g}"
                for s, r in metrics["tasks"].items())
            rule = Rule(f"the DDPM's {key.upper()} minus the {rival}'s on the same test patch ({unit or 'unitless'}), "
                        "averaged over seeds and every setting's patches", "better", tolerance)
            text = (f"The conditional DDPM outperforms the GAN on {', '.join(metrics['tasks'])}: {key.upper()}"
                    if not addition else f"Context: the conditional DDPM against a regression U-Net, {key.upper()}")
            out.append(Claim.decided(text, CLAIM_SOURCE if not addition else "our addition", rule,
                                     paired_bootstrap(ddpm, other, rng),
                                     f"Means over {metrics['seeds']} seeds and {metrics['n_test']} test patches per "
                                     f"setting: {per_setting}. The paper reports no PSNR or SSIM.", tuple(checks),
                                     addition=addition))
    return out


def fid_claim(metrics: dict, config: Config) -> Claim:
    text = "The conditional DDPM gives more realistic images than the GAN: lower FID (and LPIPS, not available offline)"
    if not config.fid or config.n_test < FID_MIN_PATCHES:
        why = "FID is switched off in this profile" if not config.fid else f"only {config.n_test} test patches"
        return Claim.untestable(text, CLAIM_SOURCE, f"Not testable here: {why}; FID on fewer than {FID_MIN_PATCHES} "
                                "patches is biased, and LPIPS' weights cannot be had offline.")
    def fid(method):  # per seed, averaged over the settings
        return [np.mean([seed["tasks"][s][method]["fid"] for s in seed["tasks"]]) for seed in metrics["per_seed"]]

    gan, ddpm = fid("pix2pix GAN"), fid("conditional DDPM")
    rule = Rule("the GAN's FID minus the DDPM's, averaged over the settings, per seed", "better", FID_TOLERANCE)
    return Claim.decided(text, CLAIM_SOURCE, rule, paired(gan, ddpm),
                         f"FID averaged over {', '.join(metrics['tasks'])}, per seed: DDPM "
                         + ", ".join(f"{v:.1f}" for v in ddpm) + "; GAN " + ", ".join(f"{v:.1f}" for v in gan) + ".")


def lora_claims(metrics: dict, config: Config, rng: np.random.Generator) -> list[Claim]:
    """The review's case for LoRA (not Med-cDiff's claim, so our addition): quality at the smallest rank
    against full fine-tuning, and the cost by peak GPU memory, which a CPU cannot measure."""
    rank = config.lora_ranks[LORA_RANK_TESTED]
    lora, full = paired_patches([{ADAPT_TASK: seed["lora_patches"]} for seed in metrics["per_seed"]],
                                lora_name(rank), FULL, "psnr")
    results = metrics["lora"]
    evidence = ("; ".join(f"{v}: PSNR {results[v]['psnr']:.2f} dB, SSIM {results[v]['ssim']:.3f}, "
                          f"{results[v]['trainable_percent']:.1f}% of the parameters trained" for v in variants(config))
                + f" (means over {metrics['seeds']} seeds).")
    quality = Claim.decided(
        f"LoRA (rank {rank}) reaches the quality of full fine-tuning with a fraction of the trainable parameters",
        LORA_SOURCE, Rule(f"LoRA r={rank}'s PSNR minus full fine-tuning's on the same brain-MR test patch (dB)",
                          "no worse", config.tolerance_db), paired_bootstrap(lora, full, rng), evidence, addition=True)
    text = f"LoRA lowers the memory of adaptation against full fine-tuning by at least {COST_MARGIN:.0%}"
    peaks = [[seed["lora"][v]["peak_memory_mib"] for v in (lora_name(rank), FULL)] for seed in metrics["per_seed"]]
    if any(is_missing(p) for pair in peaks for p in pair):
        cost = Claim.untestable(text, LORA_SOURCE, "Not testable on a CPU: peak GPU memory is what LoRA saves, and "
                                "the wall time of a small model on a CPU says nothing of it.", addition=True)
    else:
        saved = [1 - lo / hi for lo, hi in peaks]
        cost = Claim.decided(text, LORA_SOURCE, Rule(f"1 - LoRA r={rank}'s peak GPU memory / full fine-tuning's, per "
                                                     "seed", "better", COST_MARGIN), interval(saved),
                             "Peak MiB above what was resident, LoRA vs full, per seed: "
                             + ", ".join(f"{lo:.0f} vs {hi:.0f}" for lo, hi in peaks) + ".", addition=True)
    return [quality, cost]


def claims(metrics: dict, config: Config) -> list[Claim]:
    """Fidelity against the GAN (the U-Net as context), realism (FID), downstream use (not testable
    here) and, with the LoRA experiment, the review's case for LoRA: in that order."""
    rng = np.random.default_rng(0)  # the bootstrap's draws: fixed, so the report is the same from the same metrics
    out = [*fidelity_claims(metrics, rng), fid_claim(metrics, config),
           Claim.untestable("Med-cDiff's outputs serve downstream tasks (classification accuracy, segmentation Dice) "
                            "and pass a two-alternative forced-choice perception test", CLAIM_SOURCE,
                            "Not testable here: no labelled downstream data offline and no human readers.")]
    if "lora" in metrics:
        out += lora_claims(metrics, config, rng)
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


def training_curves(per_seed: list[dict], config: Config, run: Run) -> str:
    """Per task (columns), every seed: the training loss per step smoothed over 20 steps (top: the
    DDPM's, the U-Net's MSE, the GAN generator's L1) and the held-out loss that early stopping reads
    (bottom), relative to its first read; a cross marks a training that reached its step cap."""
    tasks = list(per_seed[0]["curves"])
    fig, axes = plt.subplots(2, len(tasks), figsize=(4.5 * len(tasks), 6.4), squeeze=False)
    for col, task in enumerate(tasks):
        top, bottom = axes[0, col], axes[1, col]
        for m, method in enumerate(METHODS):
            for k, seed in enumerate(per_seed):
                curve = np.asarray(seed["curves"][task][method])
                smooth = np.convolve(curve, np.ones(20) / 20, mode="valid") if len(curve) >= 20 else curve
                top.plot(smooth, color=f"C{m}", lw=1, alpha=0.8, label=method if k == 0 else None)
                reads = np.asarray(seed["val_reads"][task][method])
                if len(reads):
                    steps = config.val_every * np.arange(1, len(reads) + 1)
                    bottom.plot(steps, reads / reads[0], color=f"C{m}", lw=1, marker=".",
                                label=method if k == 0 else None)
                    if not seed["stopped"][task][method]:
                        bottom.scatter(steps[-1:], reads[-1:] / reads[0], marker="x", color=f"C{m}", s=40)
        top.set(yscale="log", xlabel="step", ylabel="training loss (20-step mean)", title=task)
        bottom.set(yscale="log", xlabel="step", ylabel="held-out loss / first read")
        top.legend(fontsize=7)
    fig.suptitle(f"Training and held-out losses, {len(per_seed)} seeds (GAN: the generator's L1 term); early "
                 f"stopping after {config.patience} reads without a {config.min_gain_db} dB fall", fontsize=9)
    fig.tight_layout()
    return save(fig, run, "training_curves.png")


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

"""Paper 5's report: the paper's numbers with where they were read, the metrics of a run, the rows
of ours beside the paper's, the claims with their rules, and the figures."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from reproductions.common.numbers import is_missing
from reproductions.common.plotting import plt, save
from reproductions.metrics.segmentation import diagonal
from reproductions.outcome import Claim, DataNote, Reported, Row
from reproductions.paper5_gan_vs_diffusion.model import GENERATORS, SOURCES, Pairs, fid_images
from reproductions.run import Run

if TYPE_CHECKING:
    from reproductions.paper5_gan_vs_diffusion import Config

SOURCE = "reported-results.md, Paper 5"
NOT_REPORTED = Reported.missing(f"{SOURCE}: per-model tables not found")
RATIO_BAND = (0.8, 0.9)
RATIO_LOW = Reported(RATIO_BAND[0], f"{SOURCE}: synthetic-trained Dice is '80-90% of those trained on real "
                                     "images' (the band's lower end; upper end 0.9)")


# ---- metrics ------------------------------------------------------------------------------------

def metrics(config: Config, note: DataNote, train: Pairs, test: Pairs, synthetic: dict, timing: dict, seg: dict,
            fid: dict, sampling: dict, mem: dict, models: dict) -> dict:
    """metrics.json: the data, the segmenters, the Dice ratios, FID, the samplers, memorisation, training ends."""
    real = seg["real"]["dice"]
    ratios = {g: seg[g]["dice"] / real if real > 0 else float("nan") for g in GENERATORS}
    better_fid = min(GENERATORS, key=lambda g: fid[g]["fid"])
    better_dice = max(GENERATORS, key=lambda g: seg[g]["dice"])
    return {
        "data": {"kind": note.kind, "size": config.size, "n_train": len(train), "n_small": config.n_small,
                 "n_test": len(test), "tumour_fraction": float(train.masks.mean()),
                 "synthetic_tumour_fraction": {g: float(synthetic[g].masks.mean()) for g in GENERATORS}},
        "segmentation": seg, "ratio": ratios, "fid": fid, "fid_images": fid_images(config),
        "fid_tracks_dice": better_fid == better_dice,
        "sampling": sampling, "sampling_s_per_image": timing,
        "memorisation": {label: {g: {k: v for k, v in m.items() if not k.endswith("values")} for g, m in group.items()}
                         for label, group in mem.items()},
        "gan_final": {label: {k: v[-1] for k, v in models["GAN", label][1].items()} for label in ("small", "large")},
        "ddpm_final_loss": {label: float(np.mean(models["DDPM", label][1][-50:])) for label in ("small", "large")},
    }


# ---- rows ---------------------------------------------------------------------------------------

def rows(metrics: dict, config: Config) -> list[Row]:
    seg, out = metrics["segmentation"], []
    seeds = f"mean of {config.seg_seeds} seed(s)"
    size, n_test = metrics["data"]["size"], metrics["data"]["n_test"]
    for source in SOURCES:
        penalty = (f"an empty prediction scores the image diagonal ({diagonal((size, size)):.0f} px): "
                   f"{seg[source]['missed']:.1f} of {n_test} test slices on average over seeds")
        out += [Row("Dice", f"U-Net trained on {source}", seg[source]["dice"], NOT_REPORTED, True, seeds),
                Row("Hausdorff (max, px)", f"U-Net trained on {source}", seg[source]["hausdorff_max"], NOT_REPORTED,
                    False, f"the paper's Hausdorff is the maximum; px at the working size; {penalty}"),
                Row("Hausdorff 95 (px)", f"U-Net trained on {source}", seg[source]["hausdorff_95"], NOT_REPORTED,
                    False, penalty)]
    for g in GENERATORS:
        out.append(Row("Synthetic/real Dice ratio", f"U-Net trained on {g} pairs", metrics["ratio"][g], RATIO_LOW, True,
                       "paper's band 0.8-0.9"))
    n = metrics["fid_images"]
    for name, values in metrics["fid"].items():
        note = "real held-out: the floor at this count" if name == "real held-out" else "biased high at this count"
        out.append(Row("FID", f"{name} vs real training ({n} images)", values["fid"], NOT_REPORTED, False, note))
    for label, values in metrics["sampling"].items():
        out += [Row("FID", f"DDPM sampled by {label} steps ({n} images)", values["fid"], NOT_REPORTED, False),
                Row("Sampling time (ms per pair)", f"DDPM sampled by {label} steps", 1000 * values["s_per_image"],
                    NOT_REPORTED, False, f"every sampler timed on the same {values['images']} pairs")]
    for label, group in metrics["memorisation"].items():
        n_pairs = metrics["data"]["n_small" if label == "small" else "n_train"]
        for g, values in group.items():
            out.append(Row("Mean max correlation with training", f"{g} trained on {n_pairs} pairs", values["mean"],
                           NOT_REPORTED, False, f"held-out real pairs: {values['real_mean']:.3f} (excess "
                           f"{values['excess']:+.3f})"))
    return out


def data_notes(note: DataNote, metrics: dict) -> list[DataNote]:
    return [note, DataNote("generated pairs", "synthetic", "image + mask pairs sampled from the DCGAN and the DDPM; "
                           f"FID on {metrics['fid_images']} images per set is biased high and noisy (its real-vs-real "
                           "floor is shown)")]


# ---- claims -------------------------------------------------------------------------------------

def seed_spread(scores: dict) -> str:
    """'Dice per seed 0.812, 0.034 (std 0.389)': one collapsed seed shows."""
    per_seed = scores["dice_per_seed"]
    return f"Dice per seed {', '.join(f'{d:.3f}' for d in per_seed)} (std {scores['dice_std']:.3f})"


def ratio_claim(name: str, seg: dict, ratio: float) -> Claim:
    """Held if the synthetic/real Dice ratio reaches the band's lower end; not testable when the real-trained
    U-Net found nothing (Dice 0: no ratio)."""
    held = None if is_missing(ratio) else bool(ratio >= RATIO_BAND[0])
    return Claim(f"Segmenters trained on synthetic images reach Dice scores that are 80-90% of those trained "
                 f"on real images ({name}; held if the ratio is 0.8 or more)", SOURCE, held,
                 f"U-Net Dice trained on {name} pairs {seg[name]['dice']:.3f} vs real {seg['real']['dice']:.3f}: "
                 f"ratio {ratio:.2f} (paper's band 0.80-0.90); over {len(seg[name]['dice_per_seed'])} "
                 f"seed(s), {name} {seed_spread(seg[name])}, real {seed_spread(seg['real'])}")


def memorisation_claim(mem: dict, sizes: dict) -> Claim:
    small, large = mem["small"], mem["large"]
    # memorising means samples closer to the training set than new real slices are: a positive excess
    held = (small["DDPM"]["excess"] > 0 and small["DDPM"]["excess"] > large["DDPM"]["excess"]
            and small["DDPM"]["excess"] > small["GAN"]["excess"])
    return Claim("Diffusion models memorise training images when the data set is small (held if the DDPM's "
                 "excess over held-out real slices - the mean highest correlation with the training set of its "
                 "samples minus that of held-out real slices with the same set - is positive on the small set, "
                 "larger there than on the larger set, and larger than the GAN's on the small set)",
                 SOURCE, bool(held),
                 f"excess of the mean max correlation over held-out real slices, DDPM: "
                 f"{small['DDPM']['excess']:+.3f} on {sizes['small']} pairs vs {large['DDPM']['excess']:+.3f} on "
                 f"{sizes['large']}; GAN: {small['GAN']['excess']:+.3f} vs {large['GAN']['excess']:+.3f} "
                 f"(means, DDPM {small['DDPM']['mean']:.3f} vs {large['DDPM']['mean']:.3f}, GAN "
                 f"{small['GAN']['mean']:.3f} vs {large['GAN']['mean']:.3f}; held-out real "
                 f"{small['DDPM']['real_mean']:.3f} vs {large['DDPM']['real_mean']:.3f}). Samples closer to a "
                 f"training pair than any held-out real slice, small set: DDPM "
                 f"{small['DDPM']['above_real_max']:.0%}, GAN {small['GAN']['above_real_max']:.0%}")


def fid_claim(seg: dict, fid: dict) -> Claim:
    better_fid = min(GENERATORS, key=lambda g: fid[g]["fid"])
    better_dice = max(GENERATORS, key=lambda g: seg[g]["dice"])
    gap = abs(seg["GAN"]["dice"] - seg["DDPM"]["dice"])
    spread = max(seg[g]["dice_std"] for g in GENERATORS)  # a Dice gap inside the seed spread ranks nothing
    evidence = (f"FID GAN {fid['GAN']['fid']:.1f}, DDPM {fid['DDPM']['fid']:.1f} (real vs real floor "
                f"{fid['real held-out']['fid']:.1f}); synthetic-trained Dice GAN {seg['GAN']['dice']:.3f}, "
                f"DDPM {seg['DDPM']['dice']:.3f} (gap {gap:.3f}, largest seed std {spread:.3f})")
    decided = gap > spread
    return Claim("FID does not track segmentation performance (held if the generator with the better FID is not "
                 "the one whose synthetic pairs train the better U-Net; not testable when the two Dice scores "
                 "differ by no more than the seed spread; two generators: a weak test)", SOURCE,
                 better_fid != better_dice if decided else None,
                 (f"{evidence}: better FID {better_fid}, better Dice {better_dice}" if decided else
                  f"Not testable here: the Dice gap is within the seed spread. {evidence}"))


def claims(metrics: dict) -> list[Claim]:
    """The ratio claim per generator, memorisation, and whether FID tracks Dice: four claims, in that order."""
    seg, sizes = metrics["segmentation"], {"small": metrics["data"]["n_small"], "large": metrics["data"]["n_train"]}
    return [*(ratio_claim(g, seg, metrics["ratio"][g]) for g in GENERATORS),
            memorisation_claim(metrics["memorisation"], sizes), fid_claim(seg, metrics["fid"])]


# ---- figures ------------------------------------------------------------------------------------

def figures(train: Pairs, synthetic: dict, seg: dict, mem: dict, models: dict, seg_curves: dict, sampling: dict,
            note: DataNote, config: Config, run: Run) -> list[str]:
    kind = "phantom" if note.kind == "phantom" else "BraTS"
    sizes = {"small": config.n_small, "large": config.n_train}
    return [plot_samples({f"real ({kind})": train, **synthetic}, kind, run), plot_dice(seg, kind, run),
            plot_memorisation(mem, sizes, kind, run), plot_curves(models, seg_curves, sampling, run)]


def plot_samples(sets: dict[str, Pairs], kind: str, run: Run) -> str:
    n = 6
    fig, axes = plt.subplots(len(sets), n, figsize=(1.6 * n, 1.75 * len(sets)), squeeze=False)
    for row, (name, pairs) in zip(axes, sets.items()):
        for i, ax in enumerate(row):
            ax.imshow(pairs.images[i, 0], cmap="gray", vmin=0, vmax=1)
            if pairs.masks[i].any():
                ax.contour(pairs.masks[i], levels=[0.5], colors="red", linewidths=0.8)
            ax.set_xticks([])
            ax.set_yticks([])
        row[0].set_ylabel(name, fontsize=9)
    fig.suptitle(f"Image + tumour mask (red contour): {kind} pairs and generated pairs", fontsize=10)
    return save(fig, run, "samples.png")


def plot_dice(seg: dict, kind: str, run: Run) -> str:
    """The counterpart of the paper's Figure 8: Dice of the same U-Net per training source."""
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    colours = ["#444444", "#d95f02", "#1b9e77", "#fc8d62", "#66c2a5"]
    means = [seg[s]["dice"] for s in SOURCES]
    ax.bar(SOURCES, means, yerr=[seg[s]["dice_std"] for s in SOURCES], color=colours, capsize=4)
    for s_index, s in enumerate(SOURCES):
        ax.scatter([s_index] * len(seg[s]["dice_per_seed"]), seg[s]["dice_per_seed"], color="black", s=8, zorder=3)
        ax.text(s_index, means[s_index] + 0.02, f"{means[s_index]:.2f}", ha="center", fontsize=8)
    real = seg["real"]["dice"]
    ax.axhspan(RATIO_BAND[0] * real, RATIO_BAND[1] * real, color="grey", alpha=0.2,
               label="paper: synthetic reaches 80-90% of real")
    ax.set_ylim(0, 1)
    ax.set_ylabel("Dice on held-out real slices")
    ax.set_title(f"U-Net trained on each source ({kind} data; mean and seeds)", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    return save(fig, run, "dice_per_source.png")


def plot_memorisation(mem: dict, sizes: dict, kind: str, run: Run) -> str:
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5), sharey=True)
    bins = np.linspace(min(min(m["values"] + m["real_values"]) for g in mem.values() for m in g.values()), 1, 30)
    for ax, label in zip(axes, ("small", "large")):
        ax.hist(mem[label]["GAN"]["real_values"], bins, color="grey", alpha=0.5, density=True, label="held-out real")
        for name, colour in zip(GENERATORS, ("#d95f02", "#1b9e77")):
            ax.hist(mem[label][name]["values"], bins, histtype="step", linewidth=1.6, color=colour, density=True,
                    label=name)
        ax.set_title(f"trained on {sizes[label]} {kind} pairs", fontsize=10)
        ax.set_xlabel("highest correlation with any training pair")
    axes[0].set_ylabel("density")
    axes[0].legend(fontsize=8)
    fig.suptitle("Memorisation: near 1 means a copy of a training image + mask", fontsize=10)
    return save(fig, run, "memorisation.png")


def smoothed(values, window: int) -> np.ndarray:
    """A running mean over ``window`` values (the values themselves when there are too few)."""
    values = np.asarray(values, dtype=float)
    return np.convolve(values, np.ones(window) / window, "valid") if len(values) > window else values


def plot_curves(models: dict, seg_curves: dict, sampling: dict, run: Run) -> str:
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.4))
    for label, style in (("large", "-"), ("small", ":")):
        history = models["GAN", label][1]
        axes[0].plot(history["d_loss"], style, color="#d95f02", label=f"D, {label} set")
        axes[0].plot(history["g_loss"], style, color="#7570b3", label=f"G, {label} set")
        losses = models["DDPM", label][1]
        axes[1].plot(smoothed(losses, max(1, len(losses) // 50)), style, color="#1b9e77", label=f"{label} set")
    axes[0].set(title="DCGAN losses", xlabel="epoch")
    axes[1].set(title="DDPM noise-prediction MSE (smoothed)", xlabel="step", yscale="log")
    for source, losses in seg_curves.items():
        axes[2].plot(smoothed(losses, 10), label=source)
    axes[2].set(title="U-Net Dice + BCE loss (first seed)", xlabel="step")
    names = list(sampling)
    axes[3].plot(range(len(names)), [sampling[n]["fid"] for n in names], "o-", color="#1b9e77")
    axes[3].set_xticks(range(len(names)), names, rotation=20, fontsize=8)
    axes[3].set(title="DDPM sampling: FID by step count", ylabel="FID (few images: biased high)")
    for i, n in enumerate(names):
        axes[3].annotate(f"{sampling[n]['s_per_image'] * 1000:.0f} ms/img", (i, sampling[n]["fid"]), fontsize=7,
                         textcoords="offset points", xytext=(0, 6), ha="center")
    for ax in axes[:3]:
        ax.legend(fontsize=7)
    return save(fig, run, "training_curves.png")

"""Paper 3's reported numbers (reported-results.md, Paper 3) with where they were read, the rows of ours
beside them, the claims with the rule that decides them, and the figures: accuracy against added
samples, confusion matrices, per-class sensitivity and specificity, real beside synthetic lesions, and
the DCGAN training curves."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from reproductions.common.plotting import plt, save
from reproductions.outcome import Claim, DataNote, Reported, Row
from reproductions.paper3_gan_augmentation.model import CLASSES, name_of
from reproductions.run import Run

if TYPE_CHECKING:
    from reproductions.paper3_gan_augmentation import Config

SOURCE = "reported-results.md, Paper 3"
CLASSIC, GAN, ACGAN_SOURCE = (f"{SOURCE}: classic augmentation alone (ISBI abstract and extended version)",
                              f"{SOURCE}: adding GAN-synthesised lesions (ISBI abstract and extended version)",
                              f"{SOURCE}: extended version, ACGAN augmentation")
PAPER = {  # (metric, setting) -> the paper's number in %, with where it was read
    ("accuracy", "none"): Reported(57, f"{SOURCE}: total accuracy (extended version), no augmentation 57%"),
    ("accuracy", "classic"): Reported(78.6, f"{SOURCE}: total accuracy (extended version), classic augmentation "
                                            "plateaus at 78.6% (from 5000 samples per fold)"),
    ("accuracy", "gan"): Reported(85.7, f"{SOURCE}: total accuracy (extended version), classic 5000 + synthetic "
                                        "3000 per fold gives 85.7%"),
    ("sensitivity", "classic"): Reported(78.6, f"{CLASSIC}: sensitivity 78.6%"),
    ("specificity", "classic"): Reported(88.4, f"{CLASSIC}: specificity 88.4%"),
    ("sensitivity", "gan"): Reported(85.7, f"{GAN}: sensitivity 85.7%"),
    ("specificity", "gan"): Reported(92.4, f"{GAN}: specificity 92.4%"),
    ("sensitivity", "acgan"): Reported(81.3, f"{ACGAN_SOURCE}: 81.3% / 90.0%"),
    ("specificity", "acgan"): Reported(90.0, f"{ACGAN_SOURCE}: 81.3% / 90.0%"),
    ("parameters", ""): Reported(1.3, f"{SOURCE}: classifier of about 1.3M parameters"),
    ("plateau", ""): Reported(5000, f"{SOURCE}: classic augmentation plateaus from 5000 samples per fold"),
    ("synthetic", ""): Reported(3000, f"{SOURCE}: classic 5000 + synthetic 3000 per fold"),
}


CEILING = 0.99  # a baseline this close to perfect leaves no room to show a rise


def paired_rise(before: dict, after: dict, key: str) -> tuple[bool | None, str]:
    """Held when the mean rise over folds is above 0 and above the fold-to-fold spread (the sample
    standard deviation of the per-fold rises); None when ``before`` is already at the ceiling."""
    rises = np.array([a[key] - b[key] for a, b in zip(after["folds"], before["folds"])])
    spread = float(rises.std(ddof=1)) if len(rises) > 1 else 0.0
    text = (f"{key.replace('_', ' ')} {100 * before['mean'][key]:.1f}% -> {100 * after['mean'][key]:.1f}% "
            f"(mean rise {100 * rises.mean():+.1f} points, fold spread {100 * spread:.1f})")
    if before["mean"][key] >= CEILING:
        return None, text + "; the baseline is at the ceiling, so a rise cannot show"
    return bool(rises.mean() > 0 and rises.mean() > spread), text


def claims(settings: dict, plateau: int, config: Config) -> list[Claim]:
    none, classic = settings["no augmentation"], settings[name_of("classic", plateau, 0)]
    gan = settings[name_of("DCGAN", plateau, config.gan_amounts[-1])]
    rule = " Rule: held when the mean rise over folds is positive and larger than its fold-to-fold spread."
    held, text = paired_rise(none, classic, "accuracy")
    out = [Claim("Classic augmentation raises total accuracy over no augmentation (57% -> 78.6%)", SOURCE, held,
                 f"none -> classic {plateau}: {text}.{rule}")]
    verdicts = [paired_rise(classic, gan, k) for k in ("mean_sensitivity", "mean_specificity")]
    held = None if None in (v for v, _ in verdicts) else all(v for v, _ in verdicts)
    out.append(Claim("Adding DCGAN lesions on top of the classic plateau raises sensitivity and specificity "
                     "(78.6/88.4 -> 85.7/92.4)", SOURCE, held,
                     f"classic {plateau} -> + DCGAN {config.gan_amounts[-1]}: "
                     + "; ".join(t for _, t in verdicts) + "." + rule))
    step, step_text = paired_rise(classic, gan, "accuracy")
    flat = plateau < config.classic_amounts[-1]
    shape = None if step is None else bool(flat and step)
    out.append(Claim("Accuracy plateaus under classic augmentation, then steps up with synthetic lesions", SOURCE,
                     shape, f"classic plateau at {plateau} added samples per fold (rule: smallest amount within "
                     f"{100 * config.plateau_tolerance:.1f} points of the best classic mean accuracy on the test "
                     f"folds; the curve "
                     f"{'flattens before' if flat else 'is still rising at'} its largest amount, "
                     f"{config.classic_amounts[-1]}); then the synthetic step: {step_text}.{rule}"))
    if config.acgan:
        acgan = settings[name_of("ACGAN", plateau, config.gan_amounts[-1])]
        held, text = paired_rise(acgan, gan, "mean_sensitivity")
        out.append(Claim("One DCGAN per class helps more than one ACGAN (sensitivity 85.7% vs 81.3%)",
                         f"{SOURCE}: extended version", held, f"ACGAN -> DCGAN: {text}.{rule}"))
    else:
        out.append(Claim("One DCGAN per class helps more than one ACGAN (sensitivity 85.7% vs 81.3%)",
                         f"{SOURCE}: extended version", None, "ACGAN not run in this profile (--set acgan=true)."))
    return out


# ---- rows ---------------------------------------------------------------------------------------


def rows(settings: dict, plateau: int, config: Config, params: int) -> list[Row]:
    top = config.gan_amounts[-1]
    chosen = {"none": "no augmentation", "classic": name_of("classic", plateau, 0),
              "gan": name_of("DCGAN", plateau, top)}
    if config.acgan:
        chosen["acgan"] = name_of("ACGAN", plateau, top)
    missing = Reported.missing(f"{SOURCE}: not reported")
    out = []
    for metric, key in (("accuracy", "accuracy"), ("sensitivity", "mean_sensitivity"),
                        ("specificity", "mean_specificity")):
        for setting, name in chosen.items():
            s = settings[name]
            out.append(Row("total accuracy (%)" if metric == "accuracy" else f"mean {metric} (%)", name,
                           100 * s["mean"][key], PAPER.get((metric, setting), missing),
                           note=f"mean over {config.folds} folds, std {100 * s['std'][key]:.1f}"))
    if not config.acgan:
        out += [Row(f"mean {m} (%)", "classic + ACGAN", None, PAPER[(m, "acgan")], note="run with --set acgan=true")
                for m in ("sensitivity", "specificity")]
    for setting, name in chosen.items():
        for cls, values in settings[name]["pooled"]["per_class"].items():
            for metric in ("sensitivity", "specificity"):
                out.append(Row(f"{metric} (%)", f"{name} / {cls}", 100 * values[metric], missing,
                               note="pooled over the folds' test lesions"))
    out += [Row("classifier parameters (millions)", f"{config.size} px, widths {config.widths}", params / 1e6,
                PAPER[("parameters", "")], None),
            Row("classic samples added per fold at the plateau", "classic", plateau, PAPER[("plateau", "")], None),
            Row("synthetic samples added per fold", "classic + DCGAN", top, PAPER[("synthetic", "")], None)]
    return out


# ---- figures ------------------------------------------------------------------------------------

def figures(settings: dict, extras: dict, plateau: int, config: Config, note: DataNote, run: Run) -> list[str]:
    label = "phantom" if note.kind == "phantom" else "real ROIs"
    top = config.gan_amounts[-1]
    shown = ["no augmentation", name_of("classic", plateau, 0), name_of("DCGAN", plateau, top)]
    shown += [name_of("ACGAN", plateau, top)] if config.acgan else []
    return [plot_curve(settings, plateau, label, run), plot_confusions(settings, shown, label, run),
            plot_sens_spec(settings, shown, label, run), plot_samples(extras, label, run),
            plot_gan_training(extras, run)]


def plot_curve(settings: dict, plateau: int, label: str, run: Run) -> str:
    fig, (ax, ref) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [3, 2]})
    styles = {"classic": ("tab:blue", "classic augmentation"), "DCGAN": ("tab:red", "classic plateau + DCGAN"),
              "ACGAN": ("tab:orange", "classic plateau + ACGAN")}
    for kind, (colour, text) in styles.items():
        points = [s for s in settings.values() if s["kind"] == kind]
        if not points:
            continue
        xs = np.array([s["classic_added"] + s["synthetic_added"] for s in points])
        ys = np.array([100 * s["mean"]["accuracy"] for s in points])
        err = np.array([100 * s["std"]["accuracy"] for s in points])
        if kind != "classic":  # the synthetic steps start from the classic plateau
            base = next(s for s in settings.values() if s["kind"] == "classic" and s["classic_added"] == plateau)
            xs, ys = np.r_[plateau, xs], np.r_[100 * base["mean"]["accuracy"], ys]
            err = np.r_[100 * base["std"]["accuracy"], err]
        ax.errorbar(xs, ys, yerr=err, color=colour, marker="o", capsize=3, label=text)
        for s in points:
            x0 = s["classic_added"] + s["synthetic_added"]
            ax.scatter([x0] * len(s["folds"]), [100 * f["accuracy"] for f in s["folds"]], color=colour, s=8, alpha=0.4)
    ax.axvline(plateau, color="grey", ls=":", lw=1)
    ax.set_xlabel("samples added per fold (classic, then classic plateau + synthetic)")
    ax.set_ylabel("total accuracy (%)")
    ax.set_title(f"Ours: mean over folds, bars = fold std, dots = folds ({label})", fontsize=9)
    ax.legend(fontsize=8)
    plateau_paper, synthetic_paper = PAPER[("plateau", "")].value, PAPER[("synthetic", "")].value
    none_acc, classic_acc, gan_acc = (PAPER[("accuracy", k)].value for k in ("none", "classic", "gan"))
    ref.plot([0, plateau_paper], [none_acc, classic_acc], "o-", color="tab:blue", label="classic (reported points)")
    ref.plot([plateau_paper, plateau_paper + synthetic_paper], [classic_acc, gan_acc], "o-", color="tab:red",
             label=f"+ DCGAN {synthetic_paper:g} (reported point)")
    ref.set_xlabel("samples added per fold")
    ref.set_title("Paper (extended version): the three reported accuracies", fontsize=9)
    ref.set_ylim(50, 100)
    ref.legend(fontsize=8)
    fig.suptitle("Liver lesion classification: accuracy against added samples")
    return save(fig, run, "accuracy_vs_added_samples.png")


def plot_confusions(settings: dict, names: list[str], label: str, run: Run) -> str:
    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3.8))
    for ax, name in zip(np.atleast_1d(axes), names):
        matrix = np.array(settings[name]["pooled"]["confusion_matrix"])
        rates = matrix / np.maximum(matrix.sum(1, keepdims=True), 1)
        ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
        for i in range(len(CLASSES)):
            for j in range(len(CLASSES)):
                ax.text(j, i, f"{matrix[i, j]}\n{100 * rates[i, j]:.0f}%", ha="center", va="center", fontsize=8,
                        color="white" if rates[i, j] > 0.6 else "black")
        ax.set_xticks(range(len(CLASSES)), CLASSES, fontsize=8)
        ax.set_yticks(range(len(CLASSES)), CLASSES, fontsize=8)
        ax.set_xlabel("predicted")
        ax.set_title(f"{name}\naccuracy {100 * settings[name]['pooled']['accuracy']:.1f}%", fontsize=9)
    np.atleast_1d(axes)[0].set_ylabel("true")
    fig.suptitle(f"Confusion matrices, test lesions pooled over folds ({label})")
    return save(fig, run, "confusion_matrices.png")


def plot_sens_spec(settings: dict, names: list[str], label: str, run: Run) -> str:
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharey=True)
    width = 0.8 / len(names)
    for ax, metric in zip(axes, ("sensitivity", "specificity")):
        for k, name in enumerate(names):
            values = [100 * settings[name]["pooled"]["per_class"][c][metric] for c in CLASSES]
            ax.bar(np.arange(len(CLASSES)) + (k - (len(names) - 1) / 2) * width, values, width, label=name)
        for key, ls in (("classic", "--"), ("gan", "-")):
            ax.axhline(PAPER[(metric, key)].value, color="k", ls=ls, lw=1,
                       label=f"paper mean, {'classic' if key == 'classic' else 'classic + DCGAN'}")
        ax.set_xticks(range(len(CLASSES)), CLASSES)
        ax.set_title(f"per-class {metric}")
    axes[0].set_ylabel("%")
    axes[1].legend(fontsize=7, loc="lower right")
    fig.suptitle(f"Per-class sensitivity and specificity, pooled over folds ({label})")
    return save(fig, run, "sensitivity_specificity.png")


def plot_samples(extras: dict, label: str, run: Run, n: int = 6) -> str:
    kinds = list(extras["samples"])
    fig, axes = plt.subplots(len(CLASSES), n * (1 + len(kinds)), figsize=(1.1 * n * (1 + len(kinds)), 3.6),
                             squeeze=False)
    for c, name in enumerate(CLASSES):
        shown = [extras["real"][c][:n]] + [extras["samples"][k][c][:n] for k in kinds]
        for block, images in enumerate(shown):
            for i in range(n):
                ax = axes[c, block * n + i]
                ax.axis("off")
                if i < len(images):
                    ax.imshow(images[i, 0].numpy(), cmap="gray", vmin=-1, vmax=1)
        axes[c, 0].set_title(name, fontsize=8, loc="left")
    titles = [f"real ({label})"] + [f"{k} synthetic" for k in kinds]
    fig.suptitle("Fold 1 training lesions beside generated ones, per class (rows: " + ", ".join(CLASSES)
                 + "); blocks: " + " | ".join(titles), fontsize=9)
    return save(fig, run, "real_vs_synthetic.png")


def plot_gan_training(extras: dict, run: Run) -> str:
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    colours = dict(zip([*CLASSES, "ACGAN"], ["tab:blue", "tab:green", "tab:red", "tab:orange"]))
    for fold, histories in enumerate(extras["histories"]):
        for name, h in histories.items():
            kw = {"color": colours[name], "alpha": 1.0 if fold == 0 else 0.35, "lw": 1.2 if fold == 0 else 0.8}
            first = fold == 0
            axes[0].plot(h["d_loss"], label=f"{name} D" if first else None, **kw)
            axes[0].plot(h["g_loss"], ls="--", label=f"{name} G" if first else None, **kw)
            axes[1].plot(h["d_real"], label=f"{name} D(real)" if first else None, **kw)
            axes[1].plot(h["d_fake"], ls="--", label=f"{name} D(fake)" if first else None, **kw)
    axes[0].set_title("losses (fold 1 solid colours, other folds faint)", fontsize=9)
    axes[1].set_title("discriminator's mean probability of 'real'", fontsize=9)
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.legend(fontsize=6, ncol=2)
    fig.suptitle("DCGAN training per class (one GAN per class and fold)")
    return save(fig, run, "dcgan_training.png")



"""Paper 3's reported numbers (reported-results.md, Paper 3) with where they were read, the rows of ours
beside them, the claims decided on the outer folds with their rules and gates, and the figures: the
inner validation curves and each arm's accuracy, confusion matrices, per-class sensitivity and
specificity, real beside synthetic lesions, and the DCGAN training curves."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from reproductions.common.plotting import plt, save
from reproductions.outcome import Claim, DataNote, Reported, Row
from reproductions.paper3_gan_augmentation.model import (CLASSES, CLASSIC_PLATEAU, NO_AUGMENTATION, matched_arm,
                                                         synthetic_arm)
from reproductions.run import Run
from reproductions.verdict import Gate, Rule, cv_interval, stopped_early

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
TOLERANCE = 0.02  # fixed before the cpu run: a rise of 2 points is the smallest that matters (the paper's: 7-22)


def fold_values(metrics: dict, arm: str, key: str) -> list[float]:
    return [f[key] for f in metrics["settings"][arm]["folds"]]


def rise_claim(text: str, source: str, metrics: dict, before: str, after: str, key: str, config: Config,
               addition: bool = False) -> Claim:
    """``after`` minus ``before`` on ``key`` per outer fold, with the corrected resampled t interval;
    gated by the classifiers' early stopping (one that reached its cap was still improving) and by
    room above the baseline."""
    rises = np.subtract(fold_values(metrics, after, key), fold_values(metrics, before, key))
    base = metrics["settings"][before]["mean"][key]
    gates = (stopped_early("classifier", {f"{arm}, fold {k}": h["early"] for arm in (before, after)
                                          for k, h in enumerate(metrics["histories"][arm])}),
             Gate("room to rise", bool(base < CEILING), f"{before}: {100 * base:.1f}% (ceiling {100 * CEILING:g}%)"))
    rule = Rule(f"{key.replace('_', ' ')} of '{after}' minus that of '{before}', per outer fold (fraction)", "better",
                TOLERANCE)
    estimate = cv_interval(rises, 1 / (config.folds - 1))
    evidence = (f"{key.replace('_', ' ')} {100 * base:.1f}% -> {100 * metrics['settings'][after]['mean'][key]:.1f}% "
                f"(means over {len(rises)} folds; per fold: {', '.join(f'{100 * r:+.1f}' for r in rises)} points)")
    return Claim.decided(text, source, rule, estimate, evidence, gates, addition=addition)


def claims(metrics: dict, config: Config) -> list[Claim]:
    top = config.gan_amounts[-1]
    gan, matched = synthetic_arm("DCGAN", top), matched_arm(top)
    plateaus = ", ".join(map(str, metrics["plateaus"]))
    out = [rise_claim("Classic augmentation raises total accuracy over no augmentation (57% -> 78.6%)", SOURCE,
                      metrics, NO_AUGMENTATION, CLASSIC_PLATEAU, "accuracy", config),
           *(rise_claim(f"Adding DCGAN lesions on top of the classic plateau raises {name} ({paper})", SOURCE,
                        metrics, CLASSIC_PLATEAU, gan, key, config)
             for key, name, paper in (("mean_sensitivity", "sensitivity", "78.6% -> 85.7%"),
                                      ("mean_specificity", "specificity", "88.4% -> 92.4%"))),
           rise_claim(f"Accuracy plateaus under classic augmentation, then steps up with synthetic lesions: "
                      f"{top} synthetic lesions beat {top} more classic ones (plateaus per fold, chosen on inner "
                      f"validation: {plateaus})", SOURCE, metrics, matched, gan, "accuracy", config)]
    text = "One DCGAN per class helps more than one ACGAN (sensitivity 85.7% vs 81.3%)"
    if config.acgan:
        out.append(rise_claim(text, f"{SOURCE}: extended version", metrics, synthetic_arm("ACGAN", top), gan,
                              "mean_sensitivity", config))
    else:
        out.append(Claim.untestable(text, f"{SOURCE}: extended version",
                                    "Not run in this profile: the ACGAN is an option (--set acgan=true)."))
    return out


# ---- rows ---------------------------------------------------------------------------------------


def reported_arms(config: Config) -> dict[str, str]:
    """The arms the rows and figures show, by their key in PAPER: the largest synthetic amount's."""
    top = config.gan_amounts[-1]
    arms = {"none": NO_AUGMENTATION, "classic": CLASSIC_PLATEAU, "gan": synthetic_arm("DCGAN", top),
            "matched": matched_arm(top)}
    return arms | ({"acgan": synthetic_arm("ACGAN", top)} if config.acgan else {})


def rows(metrics: dict, config: Config, params: int) -> list[Row]:
    top = config.gan_amounts[-1]
    chosen = reported_arms(config)
    settings, n_folds = metrics["settings"], len(metrics["plateaus"])
    missing = Reported.missing(f"{SOURCE}: not reported")
    out = []
    for metric, key in (("accuracy", "accuracy"), ("sensitivity", "mean_sensitivity"),
                        ("specificity", "mean_specificity")):
        for setting, name in chosen.items():
            s = settings[name]
            out.append(Row("total accuracy (%)" if metric == "accuracy" else f"mean {metric} (%)", name,
                           100 * s["mean"][key], PAPER.get((metric, setting), missing),
                           note=f"mean over {n_folds} outer folds, std {100 * s['std'][key]:.1f}"))
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
            Row("classic samples added per fold at the plateau", CLASSIC_PLATEAU, float(np.mean(metrics["plateaus"])),
                PAPER[("plateau", "")], None, f"chosen on inner validation, per fold: "
                f"{', '.join(map(str, metrics['plateaus']))}"),
            Row("synthetic samples added per fold", synthetic_arm("DCGAN", top), top, PAPER[("synthetic", "")], None)]
    return out


# ---- figures ------------------------------------------------------------------------------------

def figures(metrics: dict, extras: dict, config: Config, note: DataNote, run: Run) -> list[str]:
    label = "phantom" if note.kind == "phantom" else "real ROIs"
    shown = reported_arms(config)
    settings = metrics["settings"]
    return [plot_curve(metrics, shown, label, run), plot_confusions(settings, list(shown.values()), label, run),
            plot_sens_spec(settings, list(shown.values()), label, run), plot_samples(extras, label, run),
            plot_gan_training(extras, run)]


def plot_curve(metrics: dict, shown: dict[str, str], label: str, run: Run) -> str:
    """Left: the inner validation accuracy against the classic amount per outer fold (where each plateau
    was chosen). Right: each arm's outer test accuracy per fold (dots) and mean (bar), the paper's beside."""
    fig, (inner, ax) = plt.subplots(1, 2, figsize=(12, 4), gridspec_kw={"width_ratios": [2, 3]})
    for k, (curve, plateau) in enumerate(zip(metrics["inner_curves"], metrics["plateaus"])):
        amounts = [int(a) for a in curve]
        inner.plot(amounts, [100 * v for v in curve.values()], "o-", color=f"C{k}", alpha=0.7, label=f"fold {k + 1}")
        inner.plot([plateau], [100 * curve[str(plateau)]], "*", color=f"C{k}", ms=12)
    inner.set(xlabel="classic samples added", ylabel="inner validation accuracy (%)",
              title="Choosing the plateau (star) on inner validation")
    inner.title.set_fontsize(9)
    inner.legend(fontsize=7)
    paper = {arm: PAPER[("accuracy", key)].value for key, arm in shown.items() if ("accuracy", key) in PAPER}
    for i, arm in enumerate(shown.values()):
        values = [100 * f["accuracy"] for f in metrics["settings"][arm]["folds"]]
        ax.bar(i, np.mean(values), color="tab:red" if "DCGAN" in arm or "ACGAN" in arm else "tab:blue", alpha=0.6)
        ax.scatter([i] * len(values), values, color="black", s=10, zorder=3)
        if arm in paper:
            ax.plot([i - 0.4, i + 0.4], [paper[arm]] * 2, "k--", lw=1, label="paper" if i == 0 else None)
    ax.set_xticks(range(len(shown)), [a.replace("classic plateau + ", "plateau +\n") for a in shown.values()],
                  fontsize=8)
    ax.set_ylabel("total accuracy on the outer test folds (%)")
    ax.set_ylim(0, 100)
    ax.set_title(f"Arms: mean over {len(metrics['plateaus'])} outer folds (bars), folds (dots); {label}", fontsize=9)
    ax.legend(fontsize=8)
    fig.suptitle("Liver lesion classification: classic plateau, synthetic lesions and the matched-count control")
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



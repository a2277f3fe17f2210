"""Paper 3's figures: accuracy against added samples, confusion matrices, per-class sensitivity and
specificity, real beside synthetic lesions, and the DCGAN training curves."""

from __future__ import annotations

import numpy as np

from reproductions.common.plotting import pyplot, save
from reproductions.paper3_gan_augmentation.lesions import CLASSES
from reproductions.paper3_gan_augmentation.verdicts import PAPER


def plot_curve(settings: dict, plateau: int, label: str, run) -> str:
    plt = pyplot()
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
    ref.plot([0, 5000], [57, 78.6], "o-", color="tab:blue", label="classic (reported points)")
    ref.plot([5000, 8000], [78.6, 85.7], "o-", color="tab:red", label="+ DCGAN 3000 (reported point)")
    ref.set_xlabel("samples added per fold")
    ref.set_title("Paper (extended version): the three reported accuracies", fontsize=9)
    ref.set_ylim(50, 100)
    ref.legend(fontsize=8)
    fig.suptitle("Liver lesion classification: accuracy against added samples")
    return save(fig, run, "accuracy_vs_added_samples.png")


def plot_confusions(settings: dict, names: list[str], label: str, run) -> str:
    plt = pyplot()
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


def plot_sens_spec(settings: dict, names: list[str], label: str, run) -> str:
    plt = pyplot()
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


def plot_samples(extras: dict, label: str, run, n: int = 6) -> str:
    plt = pyplot()
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


def plot_gan_training(extras: dict, run) -> str:
    plt = pyplot()
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



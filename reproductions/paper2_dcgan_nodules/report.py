"""Paper 2's numbers (none found), the rows of ours beside them, the claims with their rule, the figures."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from reproductions.common.plotting import plt, save
from reproductions.outcome import Claim, Reported, Row
from reproductions.paper2_dcgan_nodules.model import CLASSES, Nodules
from reproductions.run import Run

if TYPE_CHECKING:
    from reproductions.paper2_dcgan_nodules import Config

PAPER_SOURCE = "reported-results.md, Paper 2: per-reader FRR/TRR table not found"
CLAIM_SOURCE = "reported-results.md, Paper 2"


# ---- claims -------------------------------------------------------------------------------------

def claims(metrics: dict, config: Config) -> list[Claim]:
    panel, study_items = metrics["observers"], metrics["reader_study"]["items"]
    readers = panel["readers"]
    accuracies = {n: r["accuracy"] for n, r in readers.items()}
    mean_acc = float(np.mean(list(accuracies.values())))
    best = max(accuracies, key=accuracies.get)
    kappa = panel["mean_kappa"]
    evidence = (f"Rule: held if the automatic observers' mean real-vs-generated accuracy on held-out patches is below "
                f"{config.accuracy_bound:g} (chance is 0.5). Mean accuracy {mean_acc:.3f}; "
                + "; ".join(f"{n}: accuracy {r['accuracy']:.3f}, FRR {r['frr']:.3f}, TRR {r['trr']:.3f}"
                            for n, r in readers.items())
                + f"; best observer {best} ({accuracies[best]:.3f}); mean pairwise Cohen's kappa "
                + ("n/a" if kappa is None else f"{kappa:.3f}") + f"; {panel['n_test']} test patches.")
    return [
        Claim("Experts were mostly unable to tell generated nodules from real ones; here automatic observers "
              "(four real-vs-generated classifiers) stand in for the radiologists", CLAIM_SOURCE,
              mean_acc < config.accuracy_bound, evidence),
        Claim("The same claim judged by human readers in the paper's visual Turing test", CLAIM_SOURCE, None,
              f"Not testable in this run: no readers. A blinded study of {study_items} patches is in reader_study/; "
              "open it in the explorer at /reader-study, where FRR, TRR, accuracy and Cohen's kappa are computed "
              "from the readers' answers."),
    ]


# ---- rows ---------------------------------------------------------------------------------------

def rows(metrics: dict) -> list[Row]:
    missing = Reported.missing(PAPER_SOURCE)
    panel = metrics["observers"]
    out = []
    for name, r in panel["readers"].items():
        out += [Row("FRR (generated judged real)", f"observer: {name}", r["frr"], missing, True,
                    "higher: the generator fools this observer more often"),
                Row("TRR (real judged real)", f"observer: {name}", r["trr"], missing, None),
                Row("accuracy (real vs generated)", f"observer: {name}", r["accuracy"], missing, False,
                    "0.5 is chance: lower means harder to tell apart")]
    out.append(Row("Cohen's kappa, mean over observer pairs", "observer panel", panel["mean_kappa"], missing, None))
    for pair, k in panel["kappa"].items():
        out.append(Row("Cohen's kappa", pair, k, missing, None))
    if "fid" in metrics:
        fid = metrics["fid"]
        out += [Row("FID", f"real held-out vs generated, {fid['n']} each", fid["fid"], missing, False,
                    "biased upwards on few images: compare with the real-vs-real FID"),
                Row("KID", f"real held-out vs generated, {fid['n']} each", fid["kid_mean"], missing, False)]
        if "fid_real_vs_real" in fid:
            out.append(Row("FID", f"real training vs real held-out, {fid['n']} each (reference)",
                           fid["fid_real_vs_real"], missing, False, "what two samples of the same data give"))
    for name, agree in metrics["class_agreement"].items():
        called = agree["generated_called_malignant"]
        out += [Row("benign/malignant agreement with the intended class", f"generated; classifier: {name}",
                    agree["generated"], missing, True,
                    f"trained on the real training patches; called {called['benign']:.0%} of generated benign and "
                    f"{called['malignant']:.0%} of generated malignant patches malignant"),
                Row("benign/malignant accuracy", f"real held-out (reference); classifier: {name}",
                    agree["real_heldout"], missing, True)]
    return out


# ---- figures ------------------------------------------------------------------------------------

def figures(data: Nodules, fake: np.ndarray, fake_labels: np.ndarray, history: dict, metrics: dict,
            run: Run) -> list[str]:
    kind = data.note.kind
    return [plot_samples(data.real, data.real_labels, fake, fake_labels, kind, run), plot_training(history, run),
            plot_observers(metrics["observers"], kind, run)]


def mosaic(images: np.ndarray, columns: int) -> np.ndarray:
    """Patches (N, s, s) tiled ``columns`` wide with 1 px white gaps: (rows * (s + 1) - 1, columns * (s + 1) - 1)."""
    rows_ = -(-len(images) // columns)
    s = images.shape[-1]
    out = np.ones((rows_ * (s + 1) - 1, columns * (s + 1) - 1), np.float32)
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        out[r * (s + 1):r * (s + 1) + s, c * (s + 1):c * (s + 1) + s] = image
    return out


def plot_samples(real, real_labels, fake, fake_labels, data_kind: str, run: Run, columns: int = 6) -> str:
    fig, axes = plt.subplots(2, 2, figsize=(10, 7.5))
    for row, name in enumerate(CLASSES):
        for col, (title, images, labels) in enumerate((("real (held out)", real, real_labels),
                                                        ("DCGAN-generated", fake, fake_labels))):
            chosen = images[labels == row][:columns * columns]
            axes[row, col].imshow(mosaic(chosen, columns), cmap="gray", vmin=0, vmax=1)
            axes[row, col].set_title(f"{name}: {title}")
            axes[row, col].axis("off")
    fig.suptitle(f"Lung nodule patches ({data_kind}): real beside generated by the class-conditional DCGAN")
    return save(fig, run, "samples_real_vs_generated.png")


def plot_training(history: dict, run: Run) -> str:
    epochs = np.arange(1, len(history["d_loss"]) + 1)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    ax1.plot(epochs, history["d_loss"], label="discriminator")
    ax1.plot(epochs, history["g_loss"], label="generator")
    ax1.set(xlabel="epoch", ylabel="mean loss (BCE)", title="DCGAN losses")
    ax1.legend()
    ax2.plot(epochs, history["d_real"], label="D(real)")
    ax2.plot(epochs, history["d_fake"], label="D(generated)")
    ax2.axhline(0.5, color="grey", ls=":", lw=1)
    ax2.set(xlabel="epoch", ylabel="mean discriminator probability", ylim=(0, 1),
            title="Discriminator on real and generated batches")
    ax2.legend()
    return save(fig, run, "training_curves.png")


def plot_observers(panel: dict, data_kind: str, run: Run) -> str:
    names = list(panel["readers"])
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(10, 4.5))
    for k, (key, label) in enumerate((("frr", "FRR: generated judged real"), ("trr", "TRR: real judged real"),
                                      ("accuracy", "accuracy (real vs generated)"))):
        values = [panel["readers"][n][key] or 0.0 for n in names]
        bars = ax.bar(x + (k - 1) * 0.27, values, 0.27, label=label)
        ax.bar_label(bars, fmt="%.2f", fontsize=8)
    ax.axhline(0.5, color="grey", ls=":", lw=1, label="chance accuracy")
    ax.set_xticks(x, names, fontsize=9)
    ax.set(ylim=(0, 1.12), ylabel="rate")
    kappa = panel["mean_kappa"]
    ax.set_title(f"Automatic observers on {panel['n_test']} held-out patches ({data_kind}); "
                 f"mean Cohen's kappa {'n/a' if kappa is None else f'{kappa:.2f}'}")
    ax.legend(fontsize=8, loc="upper left", ncols=4)
    return save(fig, run, "observers_frr_trr.png")

"""Paper 2's numbers (none found), the rows of ours beside them, the claims with their rule, the figures."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from reproductions.common.plotting import plt, save
from reproductions.outcome import Claim, Reported, Row
from reproductions.paper2_dcgan_nodules.model import CLASSES, Nodules, Trial, mean_accuracy
from reproductions.verdict import Rule, interval, paired
from reproductions.run import Run

if TYPE_CHECKING:
    from reproductions.paper2_dcgan_nodules import Config

PAPER_SOURCE = "reported-results.md, Paper 2: per-reader FRR/TRR table not found"
CLAIM_SOURCE = "reported-results.md, Paper 2"


# ---- claims -------------------------------------------------------------------------------------

DETECTABILITY_SOURCE = "our addition: automatic observers against a real-vs-real control"


def claims(metrics: dict, config: Config) -> list[Claim]:
    rvg = [mean_accuracy(p) for p in metrics["observers"]]  # one per seed
    control = [mean_accuracy(p) for p in metrics["control"]]
    rule = Rule("the real-vs-real control's mean observer accuracy minus the real-vs-generated one, per seed",
                "no worse", config.detectability_tolerance)
    per_observer = {name: interval([p["readers"][name]["accuracy"] for p in metrics["observers"]])
                    for name in metrics["observers"][0]["readers"]}
    kappas = [p["mean_kappa"] for p in metrics["observers"]]
    evidence = (f"Real vs generated: mean observer accuracy {interval(rvg).text()}; real vs real (control): "
                f"{interval(control).text()}; per observer (real vs generated): "
                + "; ".join(f"{n} {i.text()}" for n, i in per_observer.items())
                + "; mean pairwise Cohen's kappa per seed: "
                + ", ".join("n/a" if k is None else f"{k:.2f}" for k in kappas)
                + f"; {metrics['observers'][0]['n_test']} real-vs-generated and {metrics['control'][0]['n_test']} "
                "control test patches per seed.")
    study_items = metrics["reader_study"]["items"]
    return [
        Claim.untestable(
            "Experts (two radiologists in a visual Turing test) were mostly unable to tell generated nodules from "
            "real ones", CLAIM_SOURCE,
            f"Not testable until readers answer: a blinded study of {study_items} patches is in reader_study/; "
            "open it in the explorer at /reader-study, where FRR, TRR, accuracy and Cohen's kappa are computed "
            "from the readers' answers."),
        Claim.decided(
            "Machine detectability: automatic observers (four real-vs-generated classifiers) tell the DCGAN's "
            "nodules from real ones no better than they tell two halves of the real patches apart",
            # paired: both panels of a seed see the same held-out reals
            DETECTABILITY_SOURCE, rule, paired(control, rvg), evidence, addition=True),
    ]


# ---- rows ---------------------------------------------------------------------------------------

def _mean(values: list) -> float | None:
    """The mean over seeds, None if a seed gave no number."""
    return None if any(v is None for v in values) else float(np.mean(values))


def _seeds_note(values: list) -> str:
    return f"mean of {len(values)} seeds: " + ", ".join("n/a" if v is None else f"{v:.3f}" for v in values)


def rows(metrics: dict) -> list[Row]:
    missing = Reported.missing(PAPER_SOURCE)
    out = []
    for name in metrics["observers"][0]["readers"]:
        for key, label, better, note in (
                ("frr", "FRR (generated judged real)", True, "higher: the generator fools this observer more often"),
                ("trr", "TRR (real judged real)", None, ""),
                ("accuracy", "accuracy (real vs generated)", False, "0.5 is chance: lower means harder to tell")):
            values = [p["readers"][name][key] for p in metrics["observers"]]
            out.append(Row(label, f"observer: {name}", _mean(values), missing, better,
                           "; ".join(filter(None, (note, _seeds_note(values))))))
        values = [p["readers"][name]["accuracy"] for p in metrics["control"]]
        out.append(Row("accuracy (real vs real: the control)", f"observer: {name}", _mean(values), missing, None,
                       "two halves of the held-out reals: what 'cannot tell' reads for this observer; "
                       + _seeds_note(values)))
    kappas = [p["mean_kappa"] for p in metrics["observers"]]
    out.append(Row("Cohen's kappa, mean over observer pairs", "observer panel", _mean(kappas), missing, None,
                   _seeds_note(kappas)))
    if "fid" in metrics:
        fid = metrics["fid"]
        out += [Row("FID", f"real held-out vs generated, {fid['n']} each (first seed)", fid["fid"], missing, False,
                    "biased upwards on few images: compare with the real-vs-real FID"),
                Row("KID", f"real held-out vs generated, {fid['n']} each (first seed)", fid["kid_mean"], missing,
                    False)]
        if "fid_real_vs_real" in fid:
            out.append(Row("FID", f"real training vs real held-out, {fid['n']} each (reference)",
                           fid["fid_real_vs_real"], missing, False, "what two samples of the same data give"))
    for name, agree in metrics["class_agreement"].items():
        called = agree["generated_called_malignant"]
        out += [Row("benign/malignant agreement with the intended class", f"generated (first seed); classifier: {name}",
                    agree["generated"], missing, True,
                    f"trained on the real training patches; called {called['benign']:.0%} of generated benign and "
                    f"{called['malignant']:.0%} of generated malignant patches malignant"),
                Row("benign/malignant accuracy", f"real held-out (reference); classifier: {name}",
                    agree["real_heldout"], missing, True)]
    return out


# ---- figures ------------------------------------------------------------------------------------

def figures(data: Nodules, trials: list[Trial], metrics: dict, run: Run) -> list[str]:
    kind, first = data.note.kind, trials[0]
    return [plot_samples(data.real, data.real_labels, first.fake, first.fake_labels, kind, run),
            plot_training([t.history for t in trials], run), plot_observers(metrics, kind, run)]


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


def plot_training(histories: list[dict], run: Run) -> str:
    """Each seed's DCGAN losses and discriminator probabilities per epoch."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for k, history in enumerate(histories):
        epochs = np.arange(1, len(history["d_loss"]) + 1)
        ax1.plot(epochs, history["d_loss"], color="C0", alpha=0.8, label="discriminator" if k == 0 else None)
        ax1.plot(epochs, history["g_loss"], color="C1", alpha=0.8, label="generator" if k == 0 else None)
        ax2.plot(epochs, history["d_real"], color="C2", alpha=0.8, label="D(real)" if k == 0 else None)
        ax2.plot(epochs, history["d_fake"], color="C3", alpha=0.8, label="D(generated)" if k == 0 else None)
    ax1.set(xlabel="epoch", ylabel="mean loss (BCE)", title=f"DCGAN losses, {len(histories)} seeds")
    ax1.legend()
    ax2.axhline(0.5, color="grey", ls=":", lw=1)
    ax2.set(xlabel="epoch", ylabel="mean discriminator probability", ylim=(0, 1),
            title="Discriminator on real and generated batches")
    ax2.legend()
    return save(fig, run, "training_curves.png")


def plot_observers(metrics: dict, data_kind: str, run: Run) -> str:
    """Per observer: mean accuracy over seeds with its 95% interval, real vs generated beside the
    real-vs-real control, and the mean FRR and TRR."""
    names = list(metrics["observers"][0]["readers"])
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(10, 4.8))
    series = (("observers", "accuracy", "accuracy: real vs generated"),
              ("control", "accuracy", "accuracy: real vs real (control)"),
              ("observers", "frr", "FRR: generated judged real"), ("observers", "trr", "TRR: real judged real"))
    for k, (panel, key, label) in enumerate(series):
        stats = [interval([p["readers"][n][key] or 0.0 for p in metrics[panel]]) for n in names]
        means = np.array([i.mean for i in stats])
        errors = np.array([[i.mean - i.low, i.high - i.mean] if i.complete else [0, 0] for i in stats]).T
        bars = ax.bar(x + (k - 1.5) * 0.2, means, 0.2, yerr=errors, capsize=3, label=label)
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.axhline(0.5, color="grey", ls=":", lw=1, label="chance accuracy")
    ax.set_xticks(x, names, fontsize=9)
    ax.set(ylim=(0, 1.15), ylabel="rate (mean over seeds, 95% interval)")
    ax.set_title(f"Automatic observers, {metrics['seeds']} seeds, {metrics['observers'][0]['n_test']} held-out "
                 f"patches per seed ({data_kind}): machine detectability, not a reader study")
    ax.legend(fontsize=8, loc="upper left", ncols=3)
    return save(fig, run, "observers_frr_trr.png")

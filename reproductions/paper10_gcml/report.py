"""GCML beside the paper: its numbers (not found, so every paper cell reads "not reported"), the rows,
the claims with their rules, and the embedding figures."""

from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA

from reproductions.common.plotting import plt, save
from reproductions.outcome import Claim, Reported, Row
from reproductions.paper10_gcml.model import LOSSES, Dataset
from reproductions.run import Run

PAPER_SOURCE = "reported-results.md, Paper 10: per-data-set numbers not found"
CLAIM_SOURCE = "the review's summary of paper 10"
BASELINES = ("k-means", "PCA + k-means", "AE + k-means", "DEC")
EMBEDDED = ("PCA + k-means", "AE + k-means", "DEC")  # the baselines with an embedding to score Trust and Cont on
ABLATION_MARGIN = 0.01  # a loss plays a role if removing it lowers ACC or mean(Trust, Cont) by at least this


def structure(scores: dict) -> float:
    """The mean of trustworthiness and continuity."""
    return (scores["trust"] + scores["cont"]) / 2


# ---- claims -------------------------------------------------------------------------------------

def accuracy_claim(metrics: dict) -> Claim:
    acc = [(d, r["GCML"]["acc"], max(r[b]["acc"] for b in BASELINES)) for d, r in metrics.items()]
    return Claim("GCML achieves superior clustering accuracy", CLAIM_SOURCE, all(g >= b for _, g, b in acc),
                 "; ".join(f"{d}: GCML {g:.3f} vs best baseline {b:.3f}" for d, g, b in acc))


def structure_claim(metrics: dict) -> Claim:
    rivals = {d: {b: structure(r[b]) for b in EMBEDDED if b in r and "trust" in r[b]} for d, r in metrics.items()}
    kept = [(d, structure(r["GCML"]), max(rivals[d].values())) for d, r in metrics.items()]
    return Claim("GCML preserves local and global structure (here: mean of Trust and Cont at least that of the best "
                 f"baseline with an embedding: {', '.join(EMBEDDED)})", CLAIM_SOURCE, all(g >= b for _, g, b in kept),
                 "; ".join(f"{d}: Trust / Cont (mean) GCML {metrics[d]['GCML']['trust']:.3f} / "
                           f"{metrics[d]['GCML']['cont']:.3f} ({g:.3f}), "
                           + ", ".join(f"{b} {metrics[d][b]['trust']:.3f} / {metrics[d][b]['cont']:.3f} ({v:.3f})"
                                       for b, v in rivals[d].items())
                           for d, g, _ in kept)
                 + ". Rule: GCML's mean at least the best baseline's on every data set")


def plays_a_role(full: dict, less: dict) -> bool:
    """Removing a loss (``less``) lowers ACC or the mean of Trust and Cont by at least the margin."""
    return full["acc"] >= less["acc"] + ABLATION_MARGIN or structure(full) >= structure(less) + ABLATION_MARGIN


def ablation_claim(metrics: dict) -> Claim | None:
    ablated = [(d, loss, r["GCML"], r[f"GCML without {loss}"]) for d, r in metrics.items() for loss in LOSSES
               if f"GCML without {loss}" in r]
    if not ablated:
        return None
    return Claim(f"Ablation: each loss plays a role (removing it lowers ACC or the mean of Trust and Cont by "
                 f"at least {ABLATION_MARGIN})", CLAIM_SOURCE, all(plays_a_role(full, less) for *_, full, less in ablated),
                 "; ".join(f"{d} without {loss}: ACC {less['acc']:.3f}, Trust/Cont mean {structure(less):.3f} "
                           f"(GCML {full['acc']:.3f}, {structure(full):.3f})"
                           + ("" if plays_a_role(full, less) else ": no role")
                           for d, loss, full, less in ablated)
                 + f". Rule: a drop of at least {ABLATION_MARGIN} in either, for every loss on every data set")


def claims(metrics: dict) -> list[Claim]:
    return [c for c in (accuracy_claim(metrics), structure_claim(metrics), ablation_claim(metrics)) if c]


# ---- rows ---------------------------------------------------------------------------------------

def rows(metrics: dict) -> list[Row]:
    missing = Reported.missing(PAPER_SOURCE)
    return [Row(metric.upper() if metric in ("acc", "nmi") else metric.capitalize(), f"{dataset} / {method}",
                value, missing)
            for dataset, results in metrics.items() for method in (*BASELINES, "GCML")
            for metric, value in results[method].items()]


# ---- figures ------------------------------------------------------------------------------------

def embeddings_figure(data: Dataset, embeddings: dict[str, np.ndarray], run: Run) -> str:
    """The first two principal components of the AE, DEC and GCML embeddings, coloured by true class."""
    methods = [m for m in ("AE + k-means", "DEC", "GCML") if m in embeddings]
    fig, axes = plt.subplots(1, len(methods), figsize=(4 * len(methods), 4))
    seed = run.int_seed(f"{data.name}/plot-pca")
    for ax, method in zip(np.atleast_1d(axes), methods):
        xy = PCA(2, random_state=seed).fit_transform(embeddings[method])  # (N, latent) -> (N, 2)
        for label, name in enumerate(data.classes):
            ax.scatter(*xy[data.y == label].T, color=plt.get_cmap("tab10")(label % 10), s=3, label=name)
        ax.set_title(f"{method} ({data.name})")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.legend(*np.atleast_1d(axes)[0].get_legend_handles_labels(), loc="center left", bbox_to_anchor=(1, 0.5),
               markerscale=4, fontsize=8, title="true class")
    fig.suptitle("Embeddings (first two principal components), coloured by true class")
    return save(fig, run, f"embeddings_{data.name}.png", dpi=90)

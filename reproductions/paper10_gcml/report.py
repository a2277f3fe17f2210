"""GCML beside the paper: its numbers (not found, so every paper cell reads "not reported"), the rows
(means over seeds), the claims decided over the seeds with their rules and gates, and the figures.

``metrics`` is {data set: [one dict per seed: {method: scores, "curves": {"pretrain" | method: losses}}]}."""

from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA

from reproductions.common.plotting import plt, save
from reproductions.outcome import Claim, Reported, Row
from reproductions.paper10_gcml.model import LOSSES, Dataset
from reproductions.run import Run
from reproductions.verdict import Gate, Rule, all_converged, interval

PAPER_SOURCE = "reported-results.md, Paper 10: per-data-set numbers not found"
CLAIM_SOURCE = "the review's summary of paper 10"
BASELINES = ("k-means", "PCA + k-means", "AE + k-means", "DEC")
EMBEDDED = ("PCA + k-means", "AE + k-means", "DEC")  # the baselines with an embedding to score Trust and Cont on
# fixed before the run, in the scores' units (0..1): the smallest mean difference that counts
ACCURACY_TOLERANCE = 0.01  # one point of clustering accuracy
STRUCTURE_TOLERANCE = 0.01  # mean of Trust and Cont
ABLATION_MARGIN = 0.01  # a loss plays a role if removing it lowers the mean of ACC and mean(Trust, Cont) by this


def structure(scores: dict) -> float:
    """The mean of trustworthiness and continuity."""
    return (scores["trust"] + scores["cont"]) / 2


# ---- claims -------------------------------------------------------------------------------------

def seeds_of(metrics: dict) -> int:
    return min(len(per_seed) for per_seed in metrics.values())


def across_sets(metrics: dict, difference) -> tuple[list[float], dict[str, list[float]]]:
    """Per seed, ``difference(data set, results of one seed there)`` averaged over the data sets, and
    the per-set values behind it: ([seed values], {data set: [seed values]})."""
    per_set = {d: [difference(d, r) for r in per_seed[:seeds_of(metrics)]] for d, per_seed in metrics.items()}
    return list(np.mean(list(per_set.values()), axis=0)), per_set


def per_set_text(per_set: dict[str, list[float]]) -> str:
    return "; ".join(f"{d}: {interval(v).text()}" for d, v in per_set.items())


def strongest_baseline(per_seed: list[dict], score) -> str:
    """The baseline with the highest mean of ``score`` over the seeds: GCML's strongest rival there."""
    return max(BASELINES, key=lambda b: np.mean([score(r[b]) for r in per_seed]))


def convergence_gates(metrics: dict) -> list[Gate]:
    """The autoencoder's pretraining and GCML's fine-tuning levelled off on every data set and seed."""
    return [all_converged(name, {f"{d}, seed {k}": r["curves"][key] for d, per_seed in metrics.items()
                                 for k, r in enumerate(per_seed)})
            for key, name in (("pretrain", "autoencoder pretraining"), ("GCML", "GCML fine-tuning"))]


def accuracy_claim(metrics: dict, gates: list[Gate]) -> Claim:
    rivals = {d: strongest_baseline(per_seed, lambda s: s["acc"]) for d, per_seed in metrics.items()}
    values, per_set = across_sets(metrics, lambda d, r: r["GCML"]["acc"] - r[rivals[d]]["acc"])
    rule = Rule("GCML's clustering accuracy minus the strongest baseline's (the one with the best mean on each "
                "data set), per seed, averaged over the data sets", "better", ACCURACY_TOLERANCE)
    return Claim.decided("GCML achieves superior clustering accuracy", CLAIM_SOURCE, rule, interval(values),
                         "Strongest baseline per data set: " + ", ".join(f"{d} {b}" for d, b in rivals.items())
                         + ". GCML minus it, per data set: " + per_set_text(per_set) + ".", tuple(gates))


def structure_claims(metrics: dict, gates: list[Gate]) -> list[Claim]:
    """Against DEC, the clustering rival the paper names; against PCA and the plain autoencoder as
    context (our addition: no clustering there, and PCA's trustworthiness is near 1 by construction)."""
    out = []
    for rival, addition in (("DEC", False), ("PCA + k-means", True), ("AE + k-means", True)):
        values, per_set = across_sets(metrics, lambda _, r, b=rival: structure(r["GCML"]) - structure(r[b]))
        rule = Rule(f"GCML's mean of Trust and Cont minus {rival}'s, per seed, averaged over the data sets",
                    "better", STRUCTURE_TOLERANCE)
        text = ("GCML preserves local and global structure better than DEC" if not addition else
                f"Trade-off context: GCML's structure (mean of Trust and Cont) against {rival}'s embedding")
        out.append(Claim.decided(text, CLAIM_SOURCE if not addition else "our addition", rule, interval(values),
                                 "GCML minus " + rival + ", per data set: " + per_set_text(per_set) + ".",
                                 tuple(gates), addition=addition))
    return out


def combined(scores: dict) -> float:
    """The mean of clustering accuracy and the structure score: what the ablation's effect is measured on."""
    return (scores["acc"] + structure(scores)) / 2


def ablation_claim(metrics: dict, gates: list[Gate]) -> Claim | None:
    losses = [loss for loss in LOSSES if all(f"GCML without {loss}" in r for ps in metrics.values() for r in ps)]
    if not losses:
        return None

    def effect(loss):  # per seed: GCML's combined score minus that of GCML without ``loss``
        return across_sets(metrics, lambda _, r: combined(r["GCML"]) - combined(r[f"GCML without {loss}"]))[0]

    effects = {loss: effect(loss) for loss in losses}
    average = list(np.mean(list(effects.values()), axis=0))  # per seed: the mean effect of removing one loss
    rule = Rule("the mean of ACC and mean(Trust, Cont) of GCML minus that of GCML without one loss, averaged "
                "over the losses and the data sets, per seed", "better", ABLATION_MARGIN)
    return Claim.decided("Ablation: the losses play a role (removing one lowers accuracy and structure on average)",
                         CLAIM_SOURCE, rule, interval(average),
                         "Effect of removing each loss (averaged over the data sets): "
                         + "; ".join(f"{loss} {interval(v).text()}" for loss, v in effects.items()) + ".",
                         tuple(gates))


def claims(metrics: dict) -> list[Claim]:
    gates = convergence_gates(metrics)
    ablation = ablation_claim(metrics, gates)
    return [accuracy_claim(metrics, gates), *structure_claims(metrics, gates), *([ablation] if ablation else [])]


# ---- rows ---------------------------------------------------------------------------------------

def rows(metrics: dict) -> list[Row]:
    """Each method's scores on each data set: the mean over the seeds, its interval in the note."""
    missing = Reported.missing(PAPER_SOURCE)
    out = []
    for dataset, per_seed in metrics.items():
        for method in (*BASELINES, "GCML"):
            for metric in per_seed[0][method]:
                spread = interval([r[method][metric] for r in per_seed])
                out.append(Row(metric.upper() if metric in ("acc", "nmi") else metric.capitalize(),
                               f"{dataset} / {method}", spread.mean, missing, note=f"over seeds: {spread.text()}"))
    return out


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


def curves_figure(metrics: dict, run: Run) -> str:
    """The autoencoder's pretraining loss and GCML's fine-tuning loss per epoch, every seed, each data set."""
    fig, axes = plt.subplots(2, len(metrics), figsize=(4 * len(metrics), 6.5), squeeze=False)
    for col, (dataset, per_seed) in enumerate(metrics.items()):
        for row, (method, label) in enumerate((("pretrain", "autoencoder pretraining (MSE)"),
                                               ("GCML", "GCML fine-tuning (all losses)"))):
            ax = axes[row, col]
            for k, r in enumerate(per_seed):
                ax.plot(np.arange(1, len(r["curves"][method]) + 1), r["curves"][method], lw=1, label=f"seed {k}")
            ax.set(title=f"{dataset}: {label}", xlabel="epoch", ylabel="mean loss")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle("Training curves: the convergence gate reads the last tenth of each")
    return save(fig, run, "training_curves.png", dpi=90)

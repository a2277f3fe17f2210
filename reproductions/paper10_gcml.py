"""Paper 10: Wu et al. 2022, "Generalized clustering and multi-manifold learning with geometric
structure preservation" (GCML), bib key Wu2022GCML.

What is reproduced: GCML, a denoising autoencoder whose embedding is trained with four losses
(clustering, isometric, ranking, alignment), against k-means, PCA + k-means, autoencoder +
k-means and DEC, on real image sets available offline: scikit-learn's digits, Fashion-MNIST
(one of the paper's own data sets, from Debian's dataset-fashion-mnist) and a medical set of
organ patches cut from the bundled chest CT, labelled by its organ label map. Metrics: clustering
accuracy (Hungarian), NMI, and trustworthiness and continuity averaged over k = 3..7, as in
the paper; plus an ablation that removes each loss in turn.

How it differs from the paper, and why:
- The losses follow the paper's description, in this module's own formulation (the official
  code was not available offline): clustering = DEC's KL(P || Q) with Student-t soft assignments;
  isometric = scale-free squared difference of input and embedding distances between each point
  and its k = 5 input-space neighbours of the same cluster (local structure); ranking = hinge
  loss keeping the order of distances between cluster centres of the input in the distances
  between the embedding's centres (global structure); alignment = pulling each learnt centre to
  the mean embedding of its cluster.
- Smaller networks and fewer epochs than d-500-500-2000-10 for hundreds of epochs in the smoke
  profile (the full profile uses the paper's widths); Fashion-MNIST is subsampled in full.
- Four baselines instead of twelve; no classifier-transfer experiment.
- The organ patches are not one of the paper's data sets: a medical test of the same method, from
  one scan (patches of one patient are not independent samples of a population).
- The paper's per-data-set numbers were not found (see reported-results.md), so every paper cell
  reads "not reported" and the verdicts test the paper's qualitative claims.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.neighbors import NearestNeighbors
from torch import nn

from reproductions.data import loaders
from reproductions.metrics.clustering import cluster_accuracy, nmi, structure_scores
from reproductions.outcome import Claim, DataNote, Outcome, Reported, Row

LOSSES = ("clustering", "isometric", "ranking", "alignment")
DATASETS = ("digits", "fashion-mnist", "organs")
FASHION_CLASSES = ("T-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
                   "ankle boot")


@dataclass(frozen=True)
class Config:
    datasets: tuple[str, ...] = ("digits",)
    max_samples: int = 0  # 0: every sample; otherwise a seeded stratified subset
    hidden: tuple[int, ...] = (500, 500, 2000)  # encoder widths; the decoder mirrors them
    latent_dim: int = 10
    noise: float = 0.2  # std of the Gaussian corruption of the denoising autoencoder's input
    pretrain_epochs: int = 100
    epochs: int = 100
    batch_size: int = 256
    lr: float = 1e-3
    knn: int = 5
    clustering: float = 1.0  # loss weights
    isometric: float = 1.0
    ranking: float = 0.1
    alignment: float = 0.1
    ablation: bool = True
    eval_points: int = 2000  # points used for trustworthiness / continuity (O(n^2) in memory)
    organ_patches: int = 300  # per organ, from the chest CT
    organ_patch_size: int = 16  # px at 0.7 mm: 11 mm, small enough to fit inside the aorta

    def __post_init__(self):
        unknown = set(self.datasets) - set(DATASETS)
        if not self.datasets or unknown:
            raise ValueError(f"datasets: choose from {', '.join(DATASETS)} (got {', '.join(self.datasets) or 'none'})")
        for name in ("latent_dim", "pretrain_epochs", "epochs", "batch_size", "knn", "eval_points",
                     "organ_patches", "organ_patch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if not self.hidden or min(self.hidden) < 1:
            raise ValueError("hidden: give one or more positive layer widths")
        if min(self.clustering, self.isometric, self.ranking, self.alignment, self.noise, self.lr) < 0:
            raise ValueError("loss weights, noise and lr must not be negative")


PRESETS = {
    # digits only, a narrow network, a few epochs: about a minute on a 2-core CPU.
    "smoke": Config(datasets=("digits",), hidden=(128, 128, 256), pretrain_epochs=40, epochs=25,
                    eval_points=800),
    # all three sets for a machine without a GPU: narrower network, Fashion-MNIST subsampled to 4000.
    "cpu": Config(datasets=DATASETS, max_samples=4000, hidden=(256, 256, 512), pretrain_epochs=60, epochs=40,
                  eval_points=1500),
    # the paper's widths on all three sets; Fashion-MNIST subsampled so that six trainings per set are
    # meant to fit ten minutes on one GPU (not yet timed on one).
    "full": Config(datasets=DATASETS, max_samples=20000, pretrain_epochs=150, epochs=150, eval_points=3000),
}

PAPER_SOURCE = "reported-results.md, Paper 10: per-data-set numbers not found"
CLAIM_SOURCE = "the review's summary of paper 10"


# ---- model -------------------------------------------------------------------------------------

def mlp(widths: list[int]) -> nn.Sequential:
    layers = []
    for i, (a, b) in enumerate(zip(widths, widths[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class Autoencoder(nn.Module):
    def __init__(self, dim: int, hidden: tuple[int, ...], latent: int):
        super().__init__()
        self.encoder = mlp([dim, *hidden, latent])
        self.decoder = mlp([latent, *reversed(hidden), dim])


def soft_assignment(z: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """Student-t (one degree of freedom) similarity of embeddings (B, d) to centres (K, d): (B, K)."""
    q = 1.0 / (1.0 + torch.cdist(z, centres) ** 2)
    return q / q.sum(dim=1, keepdim=True)


def target_distribution(q: torch.Tensor) -> torch.Tensor:
    """DEC's sharpened targets: q^2 / cluster frequency, renormalised per sample."""
    p = q ** 2 / q.sum(dim=0)
    return p / p.sum(dim=1, keepdim=True)


# ---- losses -------------------------------------------------------------------------------------

def isometric_loss(x, z, x_nb, z_nb, same_cluster, input_scale):
    """Local isometry: neighbour distances in the embedding match those of the input, up to scale.

    x, z: (B, D), (B, d); x_nb, z_nb: (B, k, D), (B, k, d); same_cluster: (B, k) bool."""
    if not same_cluster.any():
        return z.sum() * 0
    dx = (x[:, None] - x_nb).norm(dim=-1)[same_cluster] / input_scale
    dz = (z[:, None] - z_nb).norm(dim=-1)[same_cluster]
    return ((dz / dz.mean().clamp_min(1e-8) - dx) ** 2).mean()


def ranking_loss(input_centres: torch.Tensor, centres: torch.Tensor, margin: float = 0.1):
    """Global structure: if centres a, b are farther apart than c, d in the input, keep it so."""
    k = len(centres)
    pairs = torch.triu_indices(k, k, offset=1)
    dx = torch.cdist(input_centres, input_centres)[pairs[0], pairs[1]]
    dz = torch.cdist(centres, centres)[pairs[0], pairs[1]]
    dz = dz / dz.mean().clamp_min(1e-8)
    farther = (dx[:, None] > dx[None, :]).float()  # (P, P): pair i is farther than pair j in the input
    return (torch.relu(margin + dz[None, :] - dz[:, None]) * farther).sum() / farther.sum().clamp_min(1)


def alignment_loss(z, centres, assignment):
    """Each learnt centre sits at the mean embedding of the batch points assigned to it."""
    losses = [(centres[c] - z[assignment == c].mean(dim=0)).pow(2).sum() for c in assignment.unique()]
    return torch.stack(losses).mean()


# ---- training -----------------------------------------------------------------------------------

def pretrain(x: torch.Tensor, config: Config, run, gen: torch.Generator) -> Autoencoder:
    model = Autoencoder(x.shape[1], config.hidden, config.latent_dim).to(run.device)
    optimiser = torch.optim.Adam(model.parameters(), lr=config.lr)
    for _ in run.progress(range(config.pretrain_epochs), "pretrain autoencoder"):
        for batch in torch.randperm(len(x), generator=gen).split(config.batch_size):
            xb = x[batch].to(run.device)
            noisy = xb + config.noise * torch.randn(xb.shape, generator=gen).to(run.device)
            with run.autocast():
                loss = nn.functional.mse_loss(model.decoder(model.encoder(noisy)).float(), xb)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    return model


@torch.no_grad()
def embed(model: Autoencoder, x: torch.Tensor, device) -> torch.Tensor:
    return torch.cat([model.encoder(b.to(device)).float().cpu() for b in x.split(4096)])


def train_clustering(base: Autoencoder, x: torch.Tensor, n_clusters: int, config: Config, run,
                     gen: torch.Generator, weights: dict[str, float], reconstruct: bool, seed: int):
    """Fine-tune a copy of ``base`` with the weighted losses; returns (clusters, embedding)."""
    model = Autoencoder(x.shape[1], config.hidden, config.latent_dim).to(run.device)
    model.load_state_dict(base.state_dict())
    z0 = embed(model, x, run.device).numpy()
    kmeans = KMeans(n_clusters, n_init=10, random_state=seed).fit(z0)
    centres = nn.Parameter(torch.tensor(kmeans.cluster_centers_, dtype=torch.float32, device=run.device))
    optimiser = torch.optim.Adam([*model.parameters(), centres], lr=config.lr)
    x_np = x.numpy()
    neighbours = torch.as_tensor(NearestNeighbors(n_neighbors=config.knn + 1).fit(x_np).kneighbors(x_np)[1][:, 1:])
    input_scale = (x[:, None] - x[neighbours]).norm(dim=-1).mean().item()
    for _ in run.progress(range(config.epochs), "fine-tune"):
        with torch.no_grad():
            q_all = soft_assignment(embed(model, x, run.device).to(run.device), centres)
            p_all = target_distribution(q_all)
            assignment = p_all.argmax(dim=1).cpu()
            input_centres = torch.stack([x[assignment == c].mean(0) if (assignment == c).any() else x.mean(0)
                                         for c in range(n_clusters)]).to(run.device)
        for batch in torch.randperm(len(x), generator=gen).split(config.batch_size):
            xb = x[batch].to(run.device)
            noisy = xb + config.noise * torch.randn(xb.shape, generator=gen).to(run.device)
            with run.autocast():
                z = model.encoder(noisy).float()
                loss = nn.functional.mse_loss(model.decoder(z).float(), xb) if reconstruct else z.sum() * 0
                q = soft_assignment(z, centres)
                if weights["clustering"]:
                    loss = loss + weights["clustering"] * nn.functional.kl_div(
                        q.log(), p_all[batch.to(run.device)], reduction="batchmean")
                if weights["isometric"]:
                    nb = neighbours[batch]
                    x_nb = x[nb].to(run.device)
                    z_nb = model.encoder(x_nb.reshape(-1, x.shape[1])).float().reshape(*nb.shape, -1)
                    same = (assignment[nb] == assignment[batch][:, None]).to(run.device)
                    loss = loss + weights["isometric"] * isometric_loss(xb, z, x_nb, z_nb, same, input_scale)
                if weights["ranking"]:
                    loss = loss + weights["ranking"] * ranking_loss(input_centres, centres)
                if weights["alignment"]:
                    loss = loss + weights["alignment"] * alignment_loss(z, centres, assignment[batch].to(run.device))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    embedding = embed(model, x, run.device)
    clusters = soft_assignment(embedding.to(run.device), centres).argmax(dim=1).cpu().numpy()
    return clusters, embedding.numpy()


# ---- evaluation ---------------------------------------------------------------------------------

def load(name: str, config: Config, seed: int) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], DataNote]:
    """Samples (N, D) in [0, 1], labels, class names and a note on the data."""
    if name == "digits":
        x, y = loaders.digits()
        classes = tuple(map(str, range(10)))
        note = DataNote("digits", "real", "scikit-learn's 1797 8x8 handwritten digits")
    elif name == "fashion-mnist":
        xs, ys = zip(*(loaders.fashion_mnist(split=s) for s in ("train", "test")))
        x, y, classes = np.concatenate(xs), np.concatenate(ys), FASHION_CLASSES
        note = DataNote("fashion-mnist", "real", "Fashion-MNIST 70k 28x28 (Debian dataset-fashion-mnist)")
    else:
        from reproductions.data.anatomy import chest_ct, organ_patches

        patches = organ_patches(chest_ct(), config.organ_patches, config.organ_patch_size, seed)
        x, y, classes = patches.images.reshape(len(patches.images), -1), patches.labels, patches.classes
        note = DataNote("organs", "real", f"{len(x)} {patches.source.removeprefix('real: ')}, "
                        f"{config.organ_patches} per organ "
                        f"({', '.join(classes)}), labelled by the scan's organ label map")
    if config.max_samples and len(x) > config.max_samples:
        keep = np.sort(np.random.default_rng(seed).choice(len(x), config.max_samples, replace=False))
        x, y = x[keep], y[keep]
        note = dataclasses.replace(note, detail=f"{note.detail}, seeded subset of {len(x)}")
    return x, y, classes, note


def scores(x, y, clusters, embedding, eval_idx) -> dict[str, float]:
    out = {"acc": cluster_accuracy(y, clusters), "nmi": nmi(y, clusters)}
    if embedding is not None:
        out.update(structure_scores(x[eval_idx], embedding[eval_idx]))
    return out


def evaluate_dataset(name: str, config: Config, run) -> tuple[dict, DataNote, tuple]:
    x_np, y, classes, note = load(name, config, run.seed)
    k = len(np.unique(y))
    eval_idx = np.sort(run.rng(1).choice(len(x_np), min(config.eval_points, len(x_np)), replace=False))
    x = torch.as_tensor(x_np)
    results, embeddings = {}, {}
    kmeans = KMeans(k, n_init=10, random_state=run.seed)
    results["k-means"] = scores(x_np, y, kmeans.fit_predict(x_np), None, eval_idx)
    pca = PCA(config.latent_dim, random_state=run.seed).fit_transform(x_np)
    results["PCA + k-means"] = scores(x_np, y, kmeans.fit_predict(pca), pca, eval_idx)
    base = pretrain(x, config, run, run.generator(10))
    z = embed(base, x, run.device).numpy()
    results["AE + k-means"] = scores(x_np, y, kmeans.fit_predict(z), z, eval_idx)
    embeddings["AE + k-means"] = z
    full = {loss: getattr(config, loss) for loss in LOSSES}
    variants = {"DEC": ({**dict.fromkeys(LOSSES, 0.0), "clustering": config.clustering}, False), "GCML": (full, True)}
    if config.ablation:
        variants.update({f"GCML without {loss}": ({**full, loss: 0.0}, True) for loss in LOSSES})
    for i, (method, (weights, reconstruct)) in enumerate(variants.items()):
        clusters, emb = train_clustering(base, x, k, config, run, run.generator(20 + i), weights, reconstruct, run.seed)
        results[method] = scores(x_np, y, clusters, emb, eval_idx)
        embeddings[method] = emb
    return results, note, (y, classes, embeddings)


def plot_embeddings(dataset: str, y, classes: tuple[str, ...], embeddings: dict, run) -> str:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = [m for m in ("AE + k-means", "DEC", "GCML") if m in embeddings]
    fig, axes = plt.subplots(1, len(methods), figsize=(4 * len(methods), 4))
    for ax, method in zip(np.atleast_1d(axes), methods):
        xy = PCA(2, random_state=0).fit_transform(embeddings[method])
        for label, name in enumerate(classes):
            ax.scatter(*xy[y == label].T, color=plt.get_cmap("tab10")(label % 10), s=3, label=name)
        ax.set_title(f"{method} ({dataset})")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.legend(*np.atleast_1d(axes)[0].get_legend_handles_labels(), loc="center left", bbox_to_anchor=(1, 0.5),
               markerscale=4, fontsize=8, title="true class")
    fig.suptitle("Embeddings (first two principal components), coloured by true class")
    path, rel = run.figure(f"embeddings_{dataset}.png")
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)
    return rel


# ---- verdicts -----------------------------------------------------------------------------------

BASELINES = ("k-means", "PCA + k-means", "AE + k-means", "DEC")
EMBEDDED = ("PCA + k-means", "AE + k-means", "DEC")  # the baselines with an embedding to score Trust and Cont on
ABLATION_MARGIN = 0.01  # a loss plays a role if removing it lowers ACC or mean(Trust, Cont) by at least this


def structure(scores: dict) -> float:
    """The mean of trustworthiness and continuity."""
    return (scores["trust"] + scores["cont"]) / 2


def claims(metrics: dict) -> list[Claim]:
    acc = [(d, r["GCML"]["acc"], max(r[b]["acc"] for b in BASELINES)) for d, r in metrics.items()]
    rivals = {d: {b: structure(r[b]) for b in EMBEDDED if b in r and "trust" in r[b]} for d, r in metrics.items()}
    kept = [(d, structure(r["GCML"]), max(rivals[d].values())) for d, r in metrics.items()]
    out = [Claim("GCML achieves superior clustering accuracy", CLAIM_SOURCE, all(g >= b for _, g, b in acc),
                 "; ".join(f"{d}: GCML {g:.3f} vs best baseline {b:.3f}" for d, g, b in acc)),
           Claim("GCML preserves local and global structure (here: mean of Trust and Cont at least that of the best "
                 f"baseline with an embedding: {', '.join(EMBEDDED)})", CLAIM_SOURCE, all(g >= b for _, g, b in kept),
                 "; ".join(f"{d}: Trust / Cont (mean) GCML {metrics[d]['GCML']['trust']:.3f} / "
                           f"{metrics[d]['GCML']['cont']:.3f} ({g:.3f}), "
                           + ", ".join(f"{b} {metrics[d][b]['trust']:.3f} / {metrics[d][b]['cont']:.3f} ({v:.3f})"
                                       for b, v in rivals[d].items())
                           for d, g, _ in kept)
                 + ". Rule: GCML's mean at least the best baseline's on every data set")]
    ablated = [(d, loss) for d, r in metrics.items() for loss in LOSSES if f"GCML without {loss}" in r]
    if ablated:
        helped = [(d, loss, metrics[d]["GCML"], metrics[d][f"GCML without {loss}"]) for d, loss in ablated]
        useful = [(d, loss) for d, loss, full, less in helped
                  if full["acc"] >= less["acc"] + ABLATION_MARGIN or structure(full) >= structure(less) + ABLATION_MARGIN]
        out.append(Claim(f"Ablation: each loss plays a role (removing it lowers ACC or the mean of Trust and Cont by "
                         f"at least {ABLATION_MARGIN})", CLAIM_SOURCE, len(useful) == len(helped),
                         "; ".join(f"{d} without {loss}: ACC {less['acc']:.3f}, Trust/Cont mean {structure(less):.3f} "
                                   f"(GCML {full['acc']:.3f}, {structure(full):.3f})"
                                   + ("" if (d, loss) in useful else ": no role")
                                   for d, loss, full, less in helped)
                         + f". Rule: a drop of at least {ABLATION_MARGIN} in either, for every loss on every data set"))
    return out


def run(config: Config, run) -> Outcome:
    metrics, data, figures = {}, [], []
    for name in config.datasets:
        results, note, (y, classes, embeddings) = evaluate_dataset(name, config, run)
        metrics[name] = results
        data.append(note)
        figures.append(plot_embeddings(name, y, classes, embeddings, run))
    missing = Reported.missing(PAPER_SOURCE)
    rows = [Row(metric.upper() if metric in ("acc", "nmi") else metric.capitalize(), f"{dataset} / {method}",
                value, missing)
            for dataset, results in metrics.items() for method in (*BASELINES, "GCML")
            for metric, value in results[method].items()]
    differences = [
        "Losses in this module's own formulation of the paper's description (official code not available offline).",
        f"Encoder widths {config.hidden}, latent {config.latent_dim}, {config.pretrain_epochs} pretraining and "
        f"{config.epochs} fine-tuning epochs; the paper uses d-500-500-2000-10 and longer training.",
        "Four baselines (k-means, PCA + k-means, AE + k-means, DEC) instead of the paper's twelve.",
        f"Trust and Cont computed on {config.eval_points} seeded points per data set.",
    ]
    return Outcome(metrics, rows, claims(metrics), data, figures, differences)

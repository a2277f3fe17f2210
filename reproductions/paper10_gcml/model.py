"""GCML from data to scores, top to bottom: the data sets, the denoising autoencoder, DEC's soft
assignments, the four losses, pretraining, fine-tuning with the weighted losses, the baselines and
the scores (clustering accuracy, NMI, trustworthiness and continuity).

Every random draw comes from a named stream of the run, prefixed by the data set ("digits/pca"):
the subset, the points scored for Trust / Cont, the autoencoder's initial weights, batches and
input noise, and the ``random_state`` of every scikit-learn estimator.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.neighbors import NearestNeighbors
from torch import nn

from reproductions.data import loaders
from reproductions.data.anatomy import chest_ct, organ_patches
from reproductions.metrics.clustering import cluster_accuracy, nmi, structure_scores
from reproductions.outcome import DataNote
from reproductions.run import Run

LOSSES = ("clustering", "isometric", "ranking", "alignment")
FASHION_CLASSES = ("T-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
                   "ankle boot")


# ---- data ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Dataset:
    name: str
    x: np.ndarray  # (N, D) float32 in [0, 1]
    y: np.ndarray  # (N,) class labels
    classes: tuple[str, ...]
    note: DataNote
    eval_idx: np.ndarray  # the points Trust and Cont are computed on (O(n^2) memory)

    @property
    def n_clusters(self) -> int:
        return len(np.unique(self.y))


def load(name: str, config, run: Run) -> Dataset:
    """One data set: digits, Fashion-MNIST or organ patches from the chest CT, subsampled if asked."""
    if name == "digits":
        x, y = loaders.digits()
        classes = tuple(map(str, range(10)))
        note = DataNote("digits", "real", "scikit-learn's 1797 8x8 handwritten digits")
    elif name == "fashion-mnist":
        xs, ys = zip(*(loaders.fashion_mnist(split=s) for s in ("train", "test")))
        x, y, classes = np.concatenate(xs), np.concatenate(ys), FASHION_CLASSES
        note = DataNote("fashion-mnist", "real", "Fashion-MNIST 70k 28x28 (Debian dataset-fashion-mnist)")
    else:
        patches = organ_patches(chest_ct(), config.organ_patches, config.organ_patch_size,
                                run.int_seed(f"{name}/patches"))  # takes an int seed, not a generator
        x = patches.images.reshape(len(patches.images), -1)  # (N, size, size) -> (N, size * size)
        y, classes = patches.labels, patches.classes
        note = DataNote("organs", "real", f"{len(x)} {patches.source.removeprefix('real: ')}, "
                        f"{config.organ_patches} per organ "
                        f"({', '.join(classes)}), labelled by the scan's organ label map")
    if config.max_samples and len(x) > config.max_samples:
        keep = np.sort(run.rng(f"{name}/subset").choice(len(x), config.max_samples, replace=False))
        x, y = x[keep], y[keep]
        note = dataclasses.replace(note, detail=f"{note.detail}, seeded subset of {len(x)}")
    eval_idx = np.sort(run.rng(f"{name}/eval-points").choice(len(x), min(config.eval_points, len(x)), replace=False))
    return Dataset(name, x, y, classes, note, eval_idx)


# ---- the network --------------------------------------------------------------------------------

def mlp(widths: list[int]) -> nn.Sequential:
    layers = []
    for i, (a, b) in enumerate(zip(widths, widths[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class Autoencoder(nn.Module):
    """(B, D) -> embedding (B, latent) -> reconstruction (B, D); the decoder mirrors the encoder."""

    def __init__(self, dim: int, hidden: tuple[int, ...], latent: int):
        super().__init__()
        self.encoder = mlp([dim, *hidden, latent])
        self.decoder = mlp([latent, *reversed(hidden), dim])


@torch.no_grad()
def embed(model: Autoencoder, x: torch.Tensor, device) -> torch.Tensor:
    """(N, D) -> (N, latent) float32 on the CPU."""
    return torch.cat([model.encoder(b.to(device)).float().cpu() for b in x.split(4096)])


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
    dx = (x[:, None] - x_nb).norm(dim=-1)[same_cluster] / input_scale  # (pairs,)
    dz = (z[:, None] - z_nb).norm(dim=-1)[same_cluster]
    return ((dz / dz.mean().clamp_min(1e-8) - dx) ** 2).mean()


def ranking_loss(input_centres: torch.Tensor, centres: torch.Tensor, margin: float = 0.1):
    """Global structure: if centres a, b are farther apart than c, d in the input, keep it so."""
    k = len(centres)
    pairs = torch.triu_indices(k, k, offset=1)
    dx = torch.cdist(input_centres, input_centres)[pairs[0], pairs[1]]  # (P,) with P = K (K - 1) / 2
    dz = torch.cdist(centres, centres)[pairs[0], pairs[1]]
    dz = dz / dz.mean().clamp_min(1e-8)
    farther = (dx[:, None] > dx[None, :]).float()  # (P, P): pair i is farther than pair j in the input
    return (torch.relu(margin + dz[None, :] - dz[:, None]) * farther).sum() / farther.sum().clamp_min(1)


def alignment_loss(z, centres, assignment):
    """Each learnt centre sits at the mean embedding of the batch points assigned to it."""
    losses = [(centres[c] - z[assignment == c].mean(dim=0)).pow(2).sum() for c in assignment.unique()]
    return torch.stack(losses).mean()


# ---- training -----------------------------------------------------------------------------------

def pretrain(data: Dataset, config, run: Run) -> tuple[Autoencoder, list[float]]:
    """The denoising autoencoder every deep method starts from: MSE on inputs with Gaussian noise;
    returns it with its mean loss per epoch."""
    x = torch.as_tensor(data.x)
    with run.seeded(f"{data.name}/ae-init"):
        model = Autoencoder(x.shape[1], config.hidden, config.latent_dim).to(run.device)
    optimiser = torch.optim.Adam(model.parameters(), lr=config.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, config.pretrain_epochs)
    batches, noise = run.torch_generator(f"{data.name}/pretrain-batches"), run.torch_generator(f"{data.name}/pretrain-noise")
    curve = []
    for _ in run.progress(range(config.pretrain_epochs), f"{data.name}: pretrain autoencoder"):
        total = 0.0
        for batch in torch.randperm(len(x), generator=batches).split(config.batch_size):
            xb = x[batch].to(run.device)
            noisy = xb + config.noise * torch.randn(xb.shape, generator=noise).to(run.device)
            with run.autocast():
                loss = nn.functional.mse_loss(model.decoder(model.encoder(noisy)).float(), xb)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += loss.item() * len(batch)
        curve.append(total / len(x))
        schedule.step()
    return model, curve


def variants(config) -> dict[str, tuple[dict[str, float], bool]]:
    """The fine-tuned methods: {name: (loss weights, with the reconstruction loss)}; DEC is the
    clustering loss alone, GCML all four, and the ablations GCML less one."""
    full = {loss: getattr(config, loss) for loss in LOSSES}
    out = {"DEC": ({**dict.fromkeys(LOSSES, 0.0), "clustering": config.clustering}, False), "GCML": (full, True)}
    if config.ablation:
        out.update({f"GCML without {loss}": ({**full, loss: 0.0}, True) for loss in LOSSES})
    return out


def stream_slug(method: str) -> str:
    """"GCML without ranking" -> "gcml-without-ranking", the method's part of its streams' names."""
    return method.lower().replace(" ", "-")


def train_clustering(base: Autoencoder, data: Dataset, method: str, weights: dict[str, float], reconstruct: bool,
                     config, run: Run) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """Fine-tune a copy of ``base`` with the weighted losses; returns (clusters (N,), embedding (N, latent),
    the mean loss per epoch)."""
    x, k = torch.as_tensor(data.x), data.n_clusters
    model = copy.deepcopy(base)
    z0 = embed(model, x, run.device).numpy()
    # every variant starts from the same centres (one stream): the comparison between them is paired
    kmeans = KMeans(k, n_init=10, random_state=run.int_seed(f"{data.name}/centres")).fit(z0)
    centres = nn.Parameter(torch.tensor(kmeans.cluster_centers_, dtype=torch.float32, device=run.device))
    optimiser = torch.optim.Adam([*model.parameters(), centres], lr=config.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, config.epochs)
    neighbours = torch.as_tensor(NearestNeighbors(n_neighbors=config.knn + 1).fit(data.x).kneighbors(data.x)[1][:, 1:])
    input_scale = (x[:, None] - x[neighbours]).norm(dim=-1).mean().item()  # (N, 1, D) - (N, knn, D): mean distance
    slug = stream_slug(method)
    batches, noise = run.torch_generator(f"{data.name}/{slug}/batches"), run.torch_generator(f"{data.name}/{slug}/noise")
    curve = []
    for _ in run.progress(range(config.epochs), f"{data.name}: fine-tune {method}"):
        total = 0.0
        # 1. the targets of this epoch: DEC's sharpened assignments and the input-space cluster centres
        with torch.no_grad():
            q_all = soft_assignment(embed(model, x, run.device).to(run.device), centres)  # (N, K)
            p_all = target_distribution(q_all)
            assignment = p_all.argmax(dim=1).cpu()
            input_centres = torch.stack([x[assignment == c].mean(0) if (assignment == c).any() else x.mean(0)
                                         for c in range(k)]).to(run.device)  # (K, D)
        # 2. mini-batches of noisy inputs against the weighted losses
        for batch in torch.randperm(len(x), generator=batches).split(config.batch_size):
            xb = x[batch].to(run.device)
            noisy = xb + config.noise * torch.randn(xb.shape, generator=noise).to(run.device)
            with run.autocast():
                z = model.encoder(noisy).float()
                loss = nn.functional.mse_loss(model.decoder(z).float(), xb) if reconstruct else z.sum() * 0
                q = soft_assignment(z, centres)
                if weights["clustering"]:
                    loss = loss + weights["clustering"] * nn.functional.kl_div(
                        q.log(), p_all[batch.to(run.device)], reduction="batchmean")
                if weights["isometric"]:
                    nb = neighbours[batch]  # (B, knn)
                    x_nb = x[nb].to(run.device)  # (B, knn, D)
                    # (B, knn, D) -> (B * knn, D) through the encoder -> (B * knn, d) -> (B, knn, d)
                    z_nb = model.encoder(x_nb.reshape(-1, x.shape[1])).float().reshape(*nb.shape, -1)
                    same = (assignment[nb] == assignment[batch][:, None]).to(run.device)  # (B, knn)
                    loss = loss + weights["isometric"] * isometric_loss(xb, z, x_nb, z_nb, same, input_scale)
                if weights["ranking"]:
                    loss = loss + weights["ranking"] * ranking_loss(input_centres, centres)
                if weights["alignment"]:
                    loss = loss + weights["alignment"] * alignment_loss(z, centres, assignment[batch].to(run.device))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += loss.item() * len(batch)
        curve.append(total / len(x))
        schedule.step()
    embedding = embed(model, x, run.device)
    clusters = soft_assignment(embedding.to(run.device), centres).argmax(dim=1).cpu().numpy()
    return clusters, embedding.numpy(), curve


# ---- baselines and scores -----------------------------------------------------------------------

def scores(data: Dataset, clusters: np.ndarray, embedding: np.ndarray | None) -> dict[str, float]:
    """ACC and NMI of the clusters; Trust and Cont (mean over k = 3..7) of the embedding, if any."""
    out = {"acc": cluster_accuracy(data.y, clusters), "nmi": nmi(data.y, clusters)}
    if embedding is not None:
        out.update(structure_scores(data.x[data.eval_idx], embedding[data.eval_idx]))
    return out


def baselines(data: Dataset, base: Autoencoder, config, run: Run) -> tuple[dict[str, dict], dict[str, np.ndarray]]:
    """k-means on the inputs, on their PCA and on the pretrained autoencoder's embedding (one k-means
    seed for all three); returns their scores and the autoencoder's embedding."""
    kmeans = KMeans(data.n_clusters, n_init=10, random_state=run.int_seed(f"{data.name}/kmeans"))
    pca = PCA(config.latent_dim, random_state=run.int_seed(f"{data.name}/pca")).fit_transform(data.x)
    z = embed(base, torch.as_tensor(data.x), run.device).numpy()
    results = {"k-means": scores(data, kmeans.fit_predict(data.x), None),
               "PCA + k-means": scores(data, kmeans.fit_predict(pca), pca),
               "AE + k-means": scores(data, kmeans.fit_predict(z), z)}
    return results, {"AE + k-means": z}

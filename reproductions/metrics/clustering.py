"""Clustering accuracy (best one-to-one match of clusters to classes, Hungarian method, SciPy),
NMI (scikit-learn), and trustworthiness and continuity of an embedding.

Trustworthiness is scikit-learn's ``sklearn.manifold.trustworthiness`` (Venna and Kaski 2001), here
computed from the distance ranks of each space once, for every k at a time: scikit-learn recomputes
the full distance matrix and its argsort on every call, which made k = 3..7 for both scores ten
O(n^2 log n) passes per embedding. The values are the same (see the tests). Continuity is
trustworthiness with the two spaces swapped: it penalises input-space neighbours that the embedding
pulls apart, where trustworthiness penalises embedding neighbours that were not neighbours in the input."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import normalized_mutual_info_score, pairwise_distances
from sklearn.neighbors import NearestNeighbors


def cluster_accuracy(truth, clusters) -> float:
    truth, clusters = np.asarray(truth), np.asarray(clusters)
    size = max(truth.max(), clusters.max()) + 1
    counts = np.zeros((size, size), dtype=np.int64)
    np.add.at(counts, (clusters, truth), 1)
    rows, cols = linear_sum_assignment(-counts)
    return float(counts[rows, cols].sum() / len(truth))


def nmi(truth, clusters) -> float:
    return float(normalized_mutual_info_score(truth, clusters))


class Neighbourhoods:
    """One space's neighbourhoods, computed once: ``rank[i, j]`` is the rank (from 1) of point j among
    point i's neighbours by Euclidean distance, ``nearest[i]`` point i's ``k_max`` nearest neighbours
    (as scikit-learn's trustworthiness finds them: ``NearestNeighbors.kneighbors``)."""

    def __init__(self, points: np.ndarray, k_max: int):
        n = len(points)
        if k_max >= n / 2:
            raise ValueError(f"n_neighbors ({k_max}) should be less than n_samples / 2 ({n / 2})")
        distances = pairwise_distances(points)
        np.fill_diagonal(distances, np.inf)  # a point is not its own neighbour
        order = np.argsort(distances, axis=1)
        del distances
        self.rank = np.empty((n, n), dtype=np.int32)
        self.rank[np.arange(n)[:, None], order] = np.arange(1, n + 1, dtype=np.int32)
        self.nearest = NearestNeighbors(n_neighbors=k_max).fit(points).kneighbors(return_distance=False)


def _trust(ranks_in: Neighbourhoods, neighbours_of: Neighbourhoods, k: int) -> float:
    """Trustworthiness at ``k``: penalise the k nearest of ``neighbours_of``'s space by their rank in
    ``ranks_in``'s space beyond k."""
    n = len(ranks_in.rank)
    excess = np.take_along_axis(ranks_in.rank, neighbours_of.nearest[:, :k], axis=1).astype(np.int64) - k
    penalty = excess[excess > 0].sum()
    return float(1.0 - penalty * (2.0 / (n * k * (2.0 * n - 3.0 * k - 1.0))))


def trust_cont(data: np.ndarray, embedding: np.ndarray, ks=range(3, 8)) -> dict[int, tuple[float, float]]:
    """{k: (trustworthiness, continuity)} for every k in ``ks``, from one pass over each space."""
    ks = list(ks)
    source, target = Neighbourhoods(data, max(ks)), Neighbourhoods(embedding, max(ks))
    return {k: (_trust(source, target, k), _trust(target, source, k)) for k in ks}


def structure_scores(data: np.ndarray, embedding: np.ndarray, ks=range(3, 8)) -> dict[str, float]:
    """Trustworthiness and continuity averaged over k = 3..7, as GCML reports them."""
    scores = trust_cont(data, embedding, ks)
    return {"trust": float(np.mean([t for t, _ in scores.values()])),
            "cont": float(np.mean([c for _, c in scores.values()]))}

"""Clustering accuracy (best one-to-one match of clusters to classes, Hungarian method, SciPy),
NMI (scikit-learn), and trustworthiness and continuity of an embedding (scikit-learn).

Continuity is trustworthiness with the two spaces swapped (Venna and Kaski 2001): it penalises
input-space neighbours that the embedding pulls apart, where trustworthiness penalises
embedding neighbours that were not neighbours in the input."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.manifold import trustworthiness
from sklearn.metrics import normalized_mutual_info_score


def cluster_accuracy(truth, clusters) -> float:
    truth, clusters = np.asarray(truth), np.asarray(clusters)
    size = max(truth.max(), clusters.max()) + 1
    counts = np.zeros((size, size), dtype=np.int64)
    np.add.at(counts, (clusters, truth), 1)
    rows, cols = linear_sum_assignment(-counts)
    return float(counts[rows, cols].sum() / len(truth))


def nmi(truth, clusters) -> float:
    return float(normalized_mutual_info_score(truth, clusters))


def continuity(data: np.ndarray, embedding: np.ndarray, k: int) -> float:
    return float(trustworthiness(embedding, data, n_neighbors=k))


def structure_scores(data: np.ndarray, embedding: np.ndarray, ks=range(3, 8)) -> dict[str, float]:
    """Trustworthiness and continuity averaged over k = 3..7, as GCML reports them."""
    return {"trust": float(np.mean([trustworthiness(data, embedding, n_neighbors=k) for k in ks])),
            "cont": float(np.mean([continuity(data, embedding, k) for k in ks]))}

"""Node positions for large graphs in about a second: a spectral start, then force iterations.

networkx's spring_layout computes all n^2 repulsions each step in Python-level loops (25-39 s at
3,000 nodes on the 2-core target). Here:

1. Spectral start: the two leading non-trivial eigenvectors of the regularised, normalised
   adjacency (Amini et al. 2013: adding tau/n to every entry lets disconnected pieces and lone
   nodes have a place instead of breaking the eigen-solver). Sparse, so O(edges) per step.
2. Fruchterman-Reingold iterations, vectorised: attraction along every edge exactly;
   repulsion by particle-mesh (as in FIt-SNE): the nodes' masses spread on a G x G grid, the
   field of all of them at once by one FFT convolution, read back at each node. The cost per
   step is O(edges + n + G^2 log G) instead of O(n^2), without the cell artefacts of a
   coarse Barnes-Hut.

Deterministic: the only randomness is a seeded generator.

Stable: given the previous positions (``start``), the nodes that kept their place stay where they
were and only the others (new nodes, nodes whose links changed) are moved, from the mean of their
placed neighbours, by the same forces, so that adding or editing a paper does not redraw the map.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.signal import fftconvolve
from scipy.sparse.linalg import ArpackError, ArpackNoConvergence, LinearOperator, eigsh

GRID = 96  # grid points per side for the repulsion field: finer than the ideal edge length at 5k nodes
ITERATIONS = 60
STEP = 0.1  # largest move in the first iteration, in units of the [-1, 1] box
GRAVITY = 1.0


def layout(n: int, source: np.ndarray, target: np.ndarray, weight: np.ndarray | None = None,
           seed: int = 0, iterations: int = ITERATIONS, start: np.ndarray | None = None) -> np.ndarray:
    """Positions ``(n, 2)`` in [-1, 1] for an undirected graph given as index arrays. ``start``:
    ``(n, 2)`` previous positions, NaN for the nodes to place; the others do not move."""
    rng = np.random.default_rng(seed)
    if n == 0:
        return np.zeros((0, 2))
    if start is not None and not np.isnan(start).all():
        return _place_new(np.asarray(start, dtype=float), source, target, weight, rng, iterations)
    if n <= 3:
        angle = 2 * np.pi * np.arange(n) / n
        return np.column_stack([np.cos(angle), np.sin(angle)]) * (0.5 if n > 1 else 0.0)
    source, target = np.asarray(source, dtype=np.int64), np.asarray(target, dtype=np.int64)
    w = np.ones(len(source)) if weight is None else np.asarray(weight, dtype=float)
    keep = source != target
    source, target, w = source[keep], target[keep], w[keep]
    adjacency = sp.coo_matrix((np.r_[w, w], (np.r_[source, target], np.r_[target, source])), shape=(n, n)).tocsr()
    pos = spectral_start(adjacency, rng)
    pos = _forces(pos, source, target, w / w.max() if len(w) else w, rng, iterations)
    return _normalise(pos)


def _place_new(start: np.ndarray, source, target, weight, rng, iterations: int) -> np.ndarray:
    """Move only the NaN rows of ``start`` (n, 2): each begins at the mean of its placed
    neighbours (near the centre when it has none) and feels the forces of all nodes, while the
    placed ones stay fixed; the result is clipped to the box, never rescaled (which would move all)."""
    free = np.isnan(start).any(axis=1)
    source, target = np.asarray(source, dtype=np.int64), np.asarray(target, dtype=np.int64)
    w = np.ones(len(source)) if weight is None else np.asarray(weight, dtype=float)
    keep = source != target
    source, target, w = source[keep], target[keep], w[keep]
    pos = np.where(free[:, None], 0.0, start)
    placed_end = np.r_[~free[target], ~free[source]]  # each edge seen from both ends
    ends, others = np.r_[source, target][placed_end], np.r_[target, source][placed_end]
    counts = np.bincount(ends, minlength=len(pos))
    for axis in range(2):
        sums = np.bincount(ends, pos[others, axis], minlength=len(pos))
        pos[:, axis] = np.where(free & (counts > 0), sums / np.maximum(counts, 1), pos[:, axis])
    pos[free] += rng.normal(scale=0.02, size=(int(free.sum()), 2))
    pos = _forces(pos, source, target, w / w.max() if len(w) else w, rng, iterations, movable=free)
    return np.clip(pos, -1.0, 1.0)


def spectral_start(adjacency: sp.csr_matrix, rng: np.random.Generator) -> np.ndarray:
    """Two leading non-trivial eigenvectors of D^-1/2 (A + tau/n) D^-1/2, scaled to the unit box."""
    n = adjacency.shape[0]
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    tau = max(degree.mean(), 1e-9)
    inv_sqrt = 1.0 / np.sqrt(degree + tau)

    def apply(x):
        x = x.reshape(n, -1) * inv_sqrt[:, None]
        return (adjacency @ x + tau / n * x.sum(axis=0, keepdims=True)) * inv_sqrt[:, None]

    operator = LinearOperator((n, n), matvec=apply, matmat=apply, dtype=float)
    try:
        _, vectors = eigsh(operator, k=3, which="LA", tol=1e-3, maxiter=max(300, n),
                           v0=rng.standard_normal(n))
        pos = vectors[:, :2] * inv_sqrt[:, None]  # eigsh sorts ascending: the trivial one is last
    except (ArpackNoConvergence, ArpackError):
        pos = rng.standard_normal((n, 2))
    pos = pos - pos.mean(axis=0)
    pos /= np.abs(pos).max() or 1.0
    # nodes the spectrum cannot tell apart (lone nodes, twins) start from one point: spread them
    return pos + rng.normal(scale=0.01, size=pos.shape)


def _forces(pos: np.ndarray, source, target, w, rng, iterations: int,
            movable: np.ndarray | None = None) -> np.ndarray:
    """``iterations`` cooling steps; only the ``movable`` nodes (bool (n,), default all) move."""
    n = len(pos)
    k = 2.0 / np.sqrt(n)  # ideal edge length when n nodes share a 2 x 2 box
    kernel = _unit_kernel()
    for i in range(iterations):
        force = _repulsion(pos, k, kernel)
        delta = pos[source] - pos[target]
        dist = np.sqrt((delta ** 2).sum(axis=1)) + 1e-9
        pull = delta * (w * dist / k)[:, None]  # FR attraction d^2 / k along the edge
        for axis in range(2):
            force[:, axis] -= np.bincount(source, pull[:, axis], minlength=n)
            force[:, axis] += np.bincount(target, pull[:, axis], minlength=n)
        # pulls the whole to a disc of radius ~1 (the field of n masses there is n k^2 / r) and keeps
        # lone nodes and small pieces from drifting off
        force -= GRAVITY * k * k * n * pos
        length = np.sqrt((force ** 2).sum(axis=1)) + 1e-12
        limit = STEP * (1 - i / iterations) + 1e-3  # linear cooling
        step = force * (np.minimum(length, limit) / length)[:, None]
        pos = pos + (step if movable is None else step * movable[:, None])
    return pos


def _unit_kernel() -> tuple[np.ndarray, np.ndarray]:
    """The repulsion field r / |r|^2 of one unit mass, on grid offsets -(G-1)..G-1, in cell units."""
    offsets = np.arange(-GRID + 1, GRID)
    dx, dy = np.meshgrid(offsets, offsets, indexing="ij")
    r2 = (dx * dx + dy * dy).astype(float)
    r2[GRID - 1, GRID - 1] = np.inf  # no force of a mass on its own grid point
    return dx / r2, dy / r2


def _repulsion(pos: np.ndarray, k: float, kernel: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """FR repulsion k^2 / d of all nodes on each, by particle-mesh: masses spread bilinearly on a
    G x G grid, convolved with the field of a unit mass by FFT, read back bilinearly."""
    n = len(pos)
    low = pos.min(axis=0)
    h = (pos.max(axis=0) - low).max() / (GRID - 1) + 1e-12
    u = (pos - low) / h
    corner = np.minimum(u.astype(np.int64), GRID - 2)
    frac = u - corner
    weights, cells = [], []
    for ox in (0, 1):
        for oy in (0, 1):
            weights.append((frac[:, 0] if ox else 1 - frac[:, 0]) * (frac[:, 1] if oy else 1 - frac[:, 1]))
            cells.append((corner[:, 0] + ox) * GRID + corner[:, 1] + oy)
    cells, weights = np.concatenate(cells), np.concatenate(weights)
    density = np.bincount(cells, weights, minlength=GRID * GRID).reshape(GRID, GRID)
    force = np.empty((n, 2))
    for axis in range(2):
        field = fftconvolve(density, kernel[axis], mode="same").ravel() / h
        force[:, axis] = (field[cells] * weights).reshape(4, n).sum(axis=0)
    return force * k * k


def _normalise(pos: np.ndarray) -> np.ndarray:
    pos = pos - (pos.max(axis=0) + pos.min(axis=0)) / 2
    return pos / (np.abs(pos).max() or 1.0)

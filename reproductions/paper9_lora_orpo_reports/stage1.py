"""Stage 1: the findings (MeSH tags) that stage 2 writes a report from, simulated or predicted from
the images by an image model.

A helper of ``model.py``, kept apart because stage 1 is a model of its own (the paper's
PKATransNet; here a simulation of its errors, or a DenseNet-121 for users with the images) that
the report writer in ``model.py`` only reads the output of; ``model.stage1`` chooses between the
two and gives them the run's named streams.

IU X-ray's images are not obtainable offline, so by default stage 1 is simulated: each report's
reference MeSH tags, with controlled errors of the two kinds an image model makes, a missed tag
(each dropped with probability ``miss_rate``) and a false one (with probability ``false_rate`` per
report, one tag of another training report whose finding this report lacks). ``image_stage1``
trains a real multi-label image model (MONAI's DenseNet-121) on the training reports' images and
predicts the test tags.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from monai.networks.nets import DenseNet121

from reproductions.data import loaders
from reproductions.data.offline import DataError
from reproductions.run import Run

NORMAL = "normal"
UNINDEXED = {"normal", "no indexing"}


def finding_of(tag: str) -> str:
    """The finding a MeSH tag names: the part before the first slash, lower case."""
    return tag.split("/")[0].strip().lower()


def tag_text(tags: tuple[str, ...]) -> str:
    """Tags as prompt text: ``Opacity/lung/base/right`` -> ``opacity (lung, base, right)``."""
    parts = []
    for tag in tags:
        head, *where = [p.strip().lower() for p in tag.split("/")]
        parts.append(f"{head} ({', '.join(where)})" if where else head)
    return "; ".join(parts) or NORMAL


def tag_pool(tag_lists: list[tuple[str, ...]]) -> list[str]:
    """Every abnormal tag of the training reports, once per occurrence (so drawing is frequency-weighted)."""
    return [t for tags in tag_lists for t in tags if finding_of(t) not in UNINDEXED]


def noisy_tags(tags: tuple[str, ...], pool: list[str], miss_rate: float, false_rate: float,
               rng: np.random.Generator) -> tuple[str, ...]:
    """``tags`` as a stage-1 model with these error rates might output them."""
    kept = [t for t in tags if finding_of(t) in UNINDEXED or rng.random() >= miss_rate]
    if pool and rng.random() < false_rate:
        present = {finding_of(t) for t in kept}
        candidates = [t for t in pool if finding_of(t) not in present]
        if candidates:
            kept = [t for t in kept if finding_of(t) not in UNINDEXED] + [candidates[rng.integers(len(candidates))]]
    kept = [t for t in kept if finding_of(t) != NORMAL]
    return tuple(kept) or (NORMAL,)


def simulated_stage1(test_tags: list[tuple[str, ...]], train_tags: list[tuple[str, ...]], miss_rate: float,
                     false_rate: float, rng: np.random.Generator) -> list[tuple[str, ...]]:
    pool = tag_pool(train_tags)
    return [noisy_tags(t, pool, miss_rate, false_rate, rng) for t in test_tags]


def tag_errors(reference: list[tuple[str, ...]], predicted: list[tuple[str, ...]]) -> dict[str, float]:
    """Per report, the mean number of abnormal tags stage 1 missed and added, and its tag-level F1."""
    missed = added = hit = 0
    for ref, pred in zip(reference, predicted):
        r = {t for t in ref if finding_of(t) not in UNINDEXED}
        p = {t for t in pred if finding_of(t) not in UNINDEXED}
        missed, added, hit = missed + len(r - p), added + len(p - r), hit + len(r & p)
    n = max(len(reference), 1)
    return {"missed_per_report": missed / n, "added_per_report": added / n,
            "tag_f1": 2 * hit / (2 * hit + missed + added) if hit + missed + added else 1.0}


def image_stage1(train_ids: list[str], test_ids: list[str], images: Path, archive: Path, size: int, epochs: int,
                 n_tags: int, run: Run) -> tuple[dict[str, tuple[str, ...]], dict]:
    """Train a multi-label DenseNet-121 (from scratch, initialised in the stream "stage1-cnn/init",
    batches from "stage1-cnn/batches") on the images of the training reports, over the ``n_tags`` most
    frequent MeSH tags, and return predicted tags for the test reports with an image, and the model's
    parameter counts. Reports without an image are left out of the result."""


    found, pixels = loaders.iu_xray(archive, images, size=size)
    index = {r.id: i for i, r in enumerate(found)}
    train = [index[i] for i in train_ids if i in index]
    test = [index[i] for i in test_ids if i in index]
    if not train or not test:
        raise DataError(f"images={images}: need images of both training and test reports "
                        f"(found {len(train)} and {len(test)})")
    counts = Counter(t for i in train for t in found[i].mesh if finding_of(t) not in UNINDEXED)
    vocab = [t for t, _ in counts.most_common(n_tags)]
    if not vocab:
        raise DataError(f"images={images}: the training reports with images carry no abnormal tag")
    targets = torch.tensor([[t in found[i].mesh for t in vocab] for i in range(len(found))], dtype=torch.float32)
    x = torch.as_tensor(pixels)[:, None]  # (N, S, S) -> (N, 1, S, S)
    with run.seeded("stage1-cnn/init"):
        net = DenseNet121(spatial_dims=2, in_channels=1, out_channels=len(vocab)).to(run.device)
    gen = run.torch_generator("stage1-cnn/batches")
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-3)
    train_t = torch.tensor(train)
    net.train()
    for _ in run.progress(range(epochs), "stage 1 image model"):
        for batch in train_t[torch.randperm(len(train_t), generator=gen)].split(16):
            loss = F.binary_cross_entropy_with_logits(net(x[batch].to(run.device)), targets[batch].to(run.device))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    net.eval()
    with torch.no_grad():
        probs = torch.cat([torch.sigmoid(net(x[b].to(run.device))).cpu() for b in torch.tensor(test).split(32)])
    predicted = {found[i].id: tuple(t for t, p in zip(vocab, row) if p > 0.5) or (NORMAL,)
                 for i, row in zip(test, probs.tolist())}
    total = sum(p.numel() for p in net.parameters())
    return predicted, {"total": total, "trainable": total, "tags": len(vocab)}

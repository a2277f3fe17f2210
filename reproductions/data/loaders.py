"""Loaders for real data sets a user may have, and for the small real sets that ship with packages.

- ``class_folders``: patches in one sub-folder per class (LIDC-IDRI nodule patches as
  ``benign/`` and ``malignant/``, liver lesion ROIs as ``cyst/``, ``metastasis/``,
  ``hemangioma/``), as PNG, NPY or DICOM; the case id is the file name up to the first ``_``.
- ``brats``: BraTS 2020/2021 subject folders of NIfTI files (``*_t1``, ``*_t1ce``, ``*_t2``,
  ``*_flair``, ``*_seg``), cut into axial slices that show tumour.
- ``medmnist``: a MedMNIST ``.npz`` (``train_images``, ``train_labels``, ``val_*``, ``test_*``).
- ``iu_xray``: the NLMCXR report XML with the user's PNG images named by image id.
- ``digits`` (scikit-learn) and ``fashion_mnist`` (Debian's dataset-fashion-mnist).
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from PIL import Image
from skimage.transform import resize
from sklearn.datasets import load_digits

from reproductions.data.anatomy import read_dicom
from reproductions.data.offline import DataError
from reproductions.data.patches import PatchSet
from reproductions.data.reports import parse_archive

IMAGE_SUFFIXES = (".png", ".npy", ".dcm")


def _read_image(path: Path) -> np.ndarray:
    if path.suffix == ".npy":
        image = np.load(path).astype(np.float32)
    elif path.suffix == ".dcm":
        return read_dicom(path)
    else:
        image = np.asarray(Image.open(path).convert("F"), dtype=np.float32)
    lo, hi = float(image.min()), float(image.max())
    return (image - lo) / (hi - lo) if hi > lo else np.zeros_like(image)


def class_folders(folder: Path, classes: tuple[str, ...], size: int | None = None) -> PatchSet:
    """Every image under ``folder/<class>/``, scaled to [0, 1] and resized to ``size`` if given."""

    folder = Path(folder)
    missing = [c for c in classes if not (folder / c).is_dir()]
    if missing:
        raise DataError(f"{folder}: expected one sub-folder per class ({', '.join(classes)}); "
                        f"missing {', '.join(missing)}")
    images, labels, cases, case_ids = [], [], [], {}
    for label, name in enumerate(classes):
        files = sorted(p for p in (folder / name).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise DataError(f"{folder / name}: no {'/'.join(IMAGE_SUFFIXES)} images")
        for path in files:
            image = _read_image(path)
            if image.ndim != 2:
                raise DataError(f"{path}: expected a 2D grey image, got shape {image.shape}")
            images.append(resize(image, (size, size), order=1, anti_aliasing=True) if size else image)
            labels.append(label)
            cases.append(case_ids.setdefault(path.stem.split("_")[0], len(case_ids)))
    if len({i.shape for i in images}) > 1:
        raise DataError(f"{folder}: images differ in size; pass a patch size to resize them")
    return PatchSet(np.stack(images).astype(np.float32), np.array(labels), tuple(classes), np.array(cases),
                    f"real: {folder}")


BRATS_SEQUENCES = ("t1", "t1ce", "t2", "flair")


@dataclass(frozen=True)
class BratsSlices:
    images: np.ndarray  # (N, 4, H, W) float32, each sequence scaled to [0, 1] per subject
    masks: np.ndarray  # (N, H, W) uint8 BraTS labels 0, 1, 2, 4
    subjects: np.ndarray  # (N,) subject index, to keep a subject's slices in one split
    names: tuple[str, ...]


def _nifti(subject: Path, suffix: str) -> Path:
    for ext in (".nii.gz", ".nii"):
        found = sorted(subject.glob(f"*_{suffix}{ext}"))
        if found:
            return found[0]
    raise DataError(f"{subject}: no *_{suffix}.nii(.gz) file")


def brats(folder: Path, min_tumour_pixels: int = 1, max_subjects: int | None = None) -> BratsSlices:
    """Axial slices with at least ``min_tumour_pixels`` of tumour from BraTS subject folders."""

    subjects = sorted(p for p in Path(folder).iterdir() if p.is_dir())[:max_subjects]
    if not subjects:
        raise DataError(f"{folder}: no BraTS subject folders (e.g. BraTS20_Training_001/)")
    images, masks, owners = [], [], []
    for index, subject in enumerate(subjects):
        volumes = []
        for seq in BRATS_SEQUENCES:
            volume = np.asarray(nib.load(_nifti(subject, seq)).dataobj, dtype=np.float32)
            volumes.append(volume / max(float(np.percentile(volume, 99.5)), 1e-6))
        seg = np.asarray(nib.load(_nifti(subject, "seg")).dataobj).astype(np.uint8)
        for z in np.flatnonzero((seg > 0).sum(axis=(0, 1)) >= min_tumour_pixels):
            images.append(np.stack([np.clip(v[:, :, z], 0, 1) for v in volumes]))
            masks.append(seg[:, :, z])
            owners.append(index)
    if not images:
        raise DataError(f"{folder}: no slice with tumour in {len(subjects)} subject(s)")
    return BratsSlices(np.stack(images), np.stack(masks), np.array(owners), tuple(s.name for s in subjects))


def medmnist(path: Path, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Images scaled to [0, 1] and integer labels of one split of a MedMNIST ``.npz``."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such MedMNIST file (MedMNIST downloads are not possible offline; "
                        "pass the path of an .npz you have)")
    with np.load(path) as data:
        key = f"{split}_images"
        if key not in data:
            raise DataError(f"{path}: no {key}; it holds {', '.join(sorted(data.files))}")
        images, labels = data[key], data[f"{split}_labels"]
    return images.astype(np.float32) / 255.0, labels.reshape(len(labels), -1).squeeze(-1).astype(int)


def iu_xray(reports: Path, images: Path, size: int = 224) -> tuple[list, np.ndarray]:
    """Reports that have at least one image in ``images`` and, per report, its first image."""

    found, pixels = [], []
    for report in parse_archive(reports):
        files = [Path(images) / f"{i}.png" for i in report.images if (Path(images) / f"{i}.png").exists()]
        if files:
            found.append(report)
            pixels.append(resize(_read_image(files[0]), (size, size), anti_aliasing=True))
    if not found:
        raise DataError(f"{images}: no PNG named after an image id of the reports (e.g. CXR1_1_IM-0001-3001.png)")
    return found, np.stack(pixels).astype(np.float32)


def digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1797 handwritten digits (real, 8x8), flattened and scaled to [0, 1]."""

    data = load_digits()
    return (data.data / 16.0).astype(np.float32), data.target.astype(int)


FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def _idx(path: Path) -> np.ndarray:
    with gzip.open(path) if path.suffix == ".gz" else open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims))
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


def fashion_mnist(folder: Path = FASHION_MNIST, split: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST (one of GCML's own data sets) from its IDX files, flattened, in [0, 1]."""
    prefix = {"train": "train", "test": "t10k"}[split]
    folder = Path(folder)
    try:
        images = next(p for p in sorted(folder.glob(f"{prefix}-images-idx3-ubyte*")))
        labels = next(p for p in sorted(folder.glob(f"{prefix}-labels-idx1-ubyte*")))
    except (StopIteration, OSError):
        raise DataError(f"{folder}: Fashion-MNIST is not installed; run: apt-get install dataset-fashion-mnist") from None
    x = _idx(images)
    return (x.reshape(len(x), -1) / 255.0).astype(np.float32), _idx(labels).astype(int)

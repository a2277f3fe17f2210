"""The four modalities' labelled patches, cut from real bundled images, and a report for each
patch written from its labels by a template (synthetic text).

A helper of ``model.py``, kept apart because cutting four different images (a CT volume and its
label map, a radiograph with hand-drawn zones, a brain template's tissue maps, a stained slide's
colour deconvolution) is some 200 lines of image handling that the benchmark's model, training
and evaluation do not need in order to be read. ``model.load_patches`` calls ``load_modality``
and ``split`` with the run's named streams.

Every image is real; every label comes from a label map, a position or a stain measurement of
that image; every report is generated from those labels:
- CT: organ patches of the bundled chest CT (``anatomy.organ_patches``), class = the organ of the
  scan's label map; attribute = the patch's mean attenuation (tercile within the modality).
- X-ray: patches of the one bundled PA chest radiograph (RG1_UNCI.dcm), class = the anatomical
  zone its centre lies in (boxes drawn by hand on this image); attribute = mean density.
- MR: patches of axial slices of the MNI152 T1 template (this stands in for the paper's
  ultrasound, which has no offline source), class = the tissue of the patch's centre (grey
  matter, white matter from the template's maps; CSF = enclosed by them, neither); attribute = signal.
- Pathology: patches of scikit-image's immunohistochemistry image (colon, FHL2 protein shown
  with DAB, hematoxylin counterstain), class from colour deconvolution (``skimage.color.rgb2hed``):
  DAB-positive epithelium, DAB-negative stroma, pale area, gland border; attribute = hematoxylin.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from skimage import data as skimage_data
from skimage.color import rgb2hed

from reproductions.data.anatomy import ORGANS, chest_ct, dicom_image, mni152, organ_patches

MODALITIES = ("ct", "xray", "mr", "pathology")
TITLES = {"ct": "CT", "xray": "X-ray", "mr": "MR", "pathology": "Pathology"}
LEVELS = ("low", "intermediate", "high")


@dataclass(frozen=True)
class ModalitySet:
    """Patches of one modality: images (N, 3, S, S) in [0, 1], class labels, attributes, reports."""
    modality: str
    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]
    levels: np.ndarray  # (N,) index into LEVELS: the tercile of the patch's measured attribute
    reports: tuple[str, ...]
    source: str

    def subset(self, index: np.ndarray) -> ModalitySet:
        return ModalitySet(self.modality, self.images[index], self.labels[index], self.classes, self.levels[index],
                           tuple(self.reports[i] for i in index), self.source)

    def __len__(self) -> int:
        return len(self.labels)


# ---- report templates ----------------------------------------------------------------------------
# One skeleton for every modality ("<exam>, <region>. <Level> <quantity>. <finding>. <closing>"), so
# that a decoder trained on three modalities has something to carry to the fourth.
# The closing sentence has two phrasings drawn at random: no model can predict it from the image.

TEMPLATES = {
    "ct": dict(exam="CT", quantity="attenuation", closing=("No focal lesion.", "No abnormality is seen."),
               findings={"lung": "Aerated lung parenchyma",
                         "liver": "Homogeneous hepatic parenchyma",
                         "heart": "Cardiac blood pool",
                         "aorta": "Contrast-filled aortic lumen",
                         "spleen": "Homogeneous splenic parenchyma",
                         "kidney": "Enhancing renal parenchyma",
                         "stomach": "Gastric wall and contents"}),
    "xray": dict(exam="Chest radiograph", quantity="density",
                 closing=("No focal opacity.", "No abnormality is seen."),
                 findings={"right upper zone": "Aerated lung with vascular markings",
                           "left upper zone": "Aerated lung with vascular markings",
                           "right lower zone": "Aerated lung base",
                           "left lower zone": "Aerated lung base",
                           "upper mediastinum": "Mediastinal soft tissue",
                           "cardiac silhouette": "Cardiac soft tissue",
                           "upper abdomen": "Soft tissue below the diaphragm"}),
    "mr": dict(exam="Brain T1 MR", quantity="signal",
               closing=("No focal lesion.", "No abnormality is seen."),
               findings={"white matter": "Normal white matter",
                         "grey matter": "Normal cortical grey matter",
                         "cerebrospinal fluid": "Fluid in a ventricle"}),
    "pathology": dict(exam="Colon IHC", quantity="hematoxylin",
                      closing=("Hematoxylin counterstain.", "Counterstained with hematoxylin."),
                      findings={"glandular epithelium": "Strong DAB staining of epithelium",
                                "stroma": "DAB-negative stroma",
                                "pale area": "Lumen or loose stroma",
                                "gland border": "Gland and stroma border"}),
}


def report(modality: str, region: str, level: str, rng: np.random.Generator) -> str:
    t = TEMPLATES[modality]
    closing = t["closing"][int(rng.integers(len(t["closing"])))]
    return f"{t['exam']}, {region}. {level.capitalize()} {t['quantity']}. {t['findings'][region]}. {closing}"


# ---- patch sources ------------------------------------------------------------------------------

def _sample(candidates: np.ndarray, classes: np.ndarray, n_classes: int, n_per_class: int,
            rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n_per_class`` candidate points per class (with replacement when a class has too few)."""
    points, labels = [], []
    for c in range(n_classes):
        pool = candidates[classes == c]
        if len(pool) == 0:
            raise ValueError(f"no candidate patch of class {c}; the image is too small for this patch size")
        points.append(pool[rng.choice(len(pool), n_per_class, replace=len(pool) < n_per_class)])
        labels.append(np.full(n_per_class, c))
    return np.concatenate(points), np.concatenate(labels)


def _resize(patches: np.ndarray, size: int) -> np.ndarray:
    """(N, H, W) or (N, H, W, 3) in [0, 1] -> (N, 3, size, size) float32 (bilinear, antialiased)."""
    x = torch.as_tensor(np.asarray(patches, np.float32))
    # grey (N, H, W) -> (N, 1, H, W) -> (N, 3, H, W); colour (N, H, W, 3) -> (N, 3, H, W)
    x = x[:, None].expand(-1, 3, -1, -1) if x.ndim == 3 else x.permute(0, 3, 1, 2)
    if x.shape[-1] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return x.clamp(0, 1).numpy().astype(np.float32)


def ct_patches(n_per_class: int, size: int, rng: np.random.Generator):
    ct = chest_ct()
    # 32 px at 0.7 mm: 22 mm; organ_patches takes an int seed, drawn from this modality's stream
    patches = organ_patches(ct, n_per_class, size=32, seed=int(rng.integers(2**31)))
    source = (f"{patches.source.removeprefix('real: ')}, class = organ of the scan's label map "
              f"({', '.join(n for n, _ in ORGANS)})")
    return (_resize(patches.images, size), patches.labels, tuple(n for n, _ in ORGANS), patches.images.mean((1, 2)),
            source)


# Zones of the bundled PA radiograph (1955 x 1841 px, patient's right on the image's left) as
# boxes of patch centres (y0, y1, x0, x1), drawn by hand on this one image.
XRAY_ZONES = {"right upper zone": (350, 650, 350, 700), "left upper zone": (350, 650, 1150, 1500),
              "right lower zone": (900, 1250, 300, 650), "left lower zone": (950, 1250, 1350, 1600),
              "upper mediastinum": (300, 750, 830, 1010), "cardiac silhouette": (1000, 1350, 850, 1250),
              "upper abdomen": (1600, 1750, 400, 1400)}
XRAY_PATCH = 224  # px (about 3 cm at this detector's spacing), cut around each centre


def xray_patches(n_per_class: int, size: int, rng: np.random.Generator):
    image = dicom_image("chest-xray")
    half = XRAY_PATCH // 2
    padded = np.pad(image, half, mode="edge")
    crops, labels = [], []
    for label, (y0, y1, x0, x1) in enumerate(XRAY_ZONES.values()):
        for y, x in zip(rng.integers(y0, y1, n_per_class), rng.integers(x0, x1, n_per_class)):
            crops.append(padded[y:y + XRAY_PATCH, x:x + XRAY_PATCH])
            labels.append(label)
    crops = np.stack(crops)  # (N, XRAY_PATCH, XRAY_PATCH)
    source = ("the bundled real PA chest radiograph RG1_UNCI.dcm (pydicom-data, NEMA WG04), "
              f"{XRAY_PATCH} px patches, class = the hand-drawn zone of the patch centre")
    return _resize(crops, size), np.array(labels), tuple(XRAY_ZONES), crops.mean((1, 2)), source


MR_PATCH = 24  # px at 1 mm


def mr_patches(n_per_class: int, size: int, rng: np.random.Generator):
    brain = mni152()
    # CSF: holes of the grey + white matter mask in a slice (ventricles, deep sulci) that the
    # skull-stripped template does not set to zero
    inside = np.stack([ndimage.binary_fill_holes(s) for s in brain.labels > 0]) & (brain.image > 0.05)
    tissue = np.where(brain.labels == 2, 0, np.where(brain.labels == 1, 1, np.where(inside, 2, 3)))  # WM, GM, CSF
    half = MR_PATCH // 2
    zz, yy, xx = np.mgrid[40:150:3, half:tissue.shape[1] - half:3, half:tissue.shape[2] - half:3]
    candidates = np.stack([zz.ravel(), yy.ravel(), xx.ravel()], 1)  # 3 grids (Z, Y, X) -> (Z * Y * X, 3) points
    centre = ndimage.uniform_filter(np.eye(4, dtype=np.float32)[tissue], size=(1, 5, 5, 1))  # 5x5 class fractions
    share = centre[candidates[:, 0], candidates[:, 1], candidates[:, 2]]
    cls = np.where(share.max(1) >= 0.6, share.argmax(1), 3)
    keep = cls < 3
    points, labels = _sample(candidates[keep], cls[keep], 3, n_per_class, rng)
    crops = np.stack([brain.image[z, y - half:y + half, x - half:x + half] for z, y, x in points])
    source = ("the MNI152 2009a T1 template (nilearn 0.14.1), axial 24 mm patches, class = tissue of the "
              "patch centre from the template's grey/white matter maps (CSF: enclosed by them, neither)")
    return _resize(crops, size), labels, tuple(TEMPLATES["mr"]["findings"]), crops.mean((1, 2)), source


PATHOLOGY_PATCH = 64  # px of the 512 x 512 image


def pathology_patches(n_per_class: int, size: int, rng: np.random.Generator):
    rgb = skimage_data.immunohistochemistry().astype(np.float32) / 255
    hed = rgb2hed(rgb)
    pale = rgb.mean(-1) > 0.85
    dab = (hed[..., 2] > 0.06) & ~pale  # DAB optical density above 0.06: stained epithelium
    half = PATHOLOGY_PATCH // 2
    yy, xx = np.mgrid[half:512 - half + 1:4, half:512 - half + 1:4]
    candidates = np.stack([yy.ravel(), xx.ravel()], 1)  # 2 grids (Y, X) -> (Y * X, 2) points
    f_pale = ndimage.uniform_filter(pale.astype(np.float32), PATHOLOGY_PATCH)[candidates[:, 0], candidates[:, 1]]
    f_dab = ndimage.uniform_filter(dab.astype(np.float32), PATHOLOGY_PATCH)[candidates[:, 0], candidates[:, 1]]
    # classes in the order of TEMPLATES["pathology"]: epithelium, stroma, pale area, gland border
    cls = np.where(f_pale > 0.4, 2, np.where(f_dab > 0.6, 0, np.where(f_dab < 0.15, 1, 3)))
    points, labels = _sample(candidates, cls, 4, n_per_class, rng)
    crops = np.stack([rgb[y - half:y + half, x - half:x + half] for y, x in points])
    haem = np.stack([hed[y - half:y + half, x - half:x + half, 0].mean() for y, x in points])
    source = ("scikit-image's immunohistochemistry image (real colon tissue, FHL2 shown with DAB, hematoxylin "
              "counterstain), 64 px patches, class from colour deconvolution (rgb2hed): DAB-positive fraction "
              "and pale fraction of the patch")
    return _resize(crops, size), labels, tuple(TEMPLATES["pathology"]["findings"]), haem, source


SOURCES = {"ct": ct_patches, "xray": xray_patches, "mr": mr_patches, "pathology": pathology_patches}


def load_modality(modality: str, n_per_class: int, size: int, rng: np.random.Generator,
                  closings: np.random.Generator) -> ModalitySet:
    """Labelled patches of ``modality`` (where they are cut: ``rng``) with their template reports
    (which closing phrase each report gets: ``closings``)."""
    images, labels, classes, measure, source = SOURCES[modality](n_per_class, size, rng)
    cuts = np.quantile(measure, [1 / 3, 2 / 3])  # terciles of the measured attribute within this draw
    levels = np.searchsorted(cuts, measure, side="right").clip(0, 2)
    reports = tuple(report(modality, classes[c], LEVELS[v], closings) for c, v in zip(labels, levels))
    return ModalitySet(modality, images, labels, classes, levels, reports, source)


def split(data: ModalitySet, n_test: int, rng: np.random.Generator) -> tuple[ModalitySet, ModalitySet]:
    """(train, test): ``n_test`` patches, classes taken in turn, the rest for training."""
    order = [rng.permutation(np.flatnonzero(data.labels == c)) for c in range(len(data.classes))]
    k = len(order)
    test = np.array(sorted(order[i % k][i // k] for i in range(n_test) if i // k < len(order[i % k])), dtype=int)
    train = np.setdiff1d(np.arange(len(data)), test)
    if len(train) == 0 or len(test) == 0:
        raise ValueError(f"{data.modality}: {len(data)} patches cannot give {n_test} test patches and a training set")
    return data.subset(train), data.subset(test)

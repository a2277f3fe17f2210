"""The paired patches of paper 6: where each task's real images come from, how train and test
patches are cut from disjoint parts of them, and how they are degraded.

A helper of ``model.py``, which calls it through ``model.load`` with the run's named streams: kept
apart because the three image sources, their splits and the degradations are a page of their own,
and ``model.py`` reads better as networks, training, sampling and evaluation.

- denoise: the chest radiograph (NEMA WG04 RG1_UNCI), at a quarter of its resolution; training
  patches from the image's left half, test patches from its right half.
- sr (x2 and x4): the shoulder MR (MR2_UNCI, at half resolution) and the abdomen MR (Siemens
  WithOverlays); left halves for training, right halves for test.
- inpaint and brain-denoise (the LoRA target): axial slices of the MNI152 T1 template; inferior
  slices for training, superior slices for test, with a 10-slice (10 mm) gap between them. The
  template is left-right symmetric, so a hemisphere split would test on mirror images of the
  training patches.

Degradations come from ``phantoms.degrade`` (Gaussian noise, area downsampling then bicubic
upsampling, one zero-filled rectangle). Arrays are float32 in [0, 1]; models see the condition in
[-1, 1] and learn either the clean image in [-1, 1] or the residual clean - degraded. Every draw
comes from a NumPy generator the caller passes (a named stream of the run).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from skimage.transform import resize

from reproductions.data import anatomy, phantoms
from reproductions.outcome import DataNote

BRAIN_BACKGROUND = 0.2  # brain patches keep at most 20% air, so that holes and noise fall on tissue
BRAIN_GAP = 10  # slices (1 mm each) between the training and the test slabs of the brain template
XRAY_SCALE = 4  # the 1955 x 1841 radiograph at 1/4: a 32 px patch spans ribs and lung texture
SHOULDER_SCALE = 2  # the 1024 x 1024 shoulder MR at 1/2, close to the 484 px abdomen MR
BRAIN_TASKS = ("inpaint", "brain-denoise")  # the tasks cut from the brain template


@dataclass(frozen=True)
class Pairs:
    """Clean targets with their degraded inputs: (N, H, W) float32 in [0, 1]; mask 1 = lost pixel."""
    clean: np.ndarray
    degraded: np.ndarray
    mask: np.ndarray

    def __len__(self) -> int:
        return len(self.clean)

    def condition(self) -> torch.Tensor:
        """(N, 2, H, W): the degraded image in [-1, 1] and the mask of lost pixels (zeros but for inpainting)."""
        return torch.from_numpy(np.stack([self.degraded * 2 - 1, self.mask.astype(np.float32)], axis=1))

    def target(self, residual: bool) -> torch.Tensor:
        """(N, 1, H, W): the clean image in [-1, 1], or with ``residual`` what the degraded image lacks
        (clean - degraded, in [-1, 1])."""
        target = self.clean - self.degraded if residual else self.clean * 2 - 1
        return torch.from_numpy(target[:, None].astype(np.float32))  # (N, H, W) -> (N, 1, H, W)

    def restore(self, out: torch.Tensor, residual: bool) -> np.ndarray:
        """A model's output (N, 1, H, W) in the target's terms -> images (N, H, W) in [0, 1]."""
        out = out[:, 0].float().numpy()  # (N, 1, H, W) -> (N, H, W)
        image = self.degraded + out if residual else (out + 1) / 2
        return np.clip(image, 0, 1).astype(np.float32)

    def part(self, start: int, stop: int) -> Pairs:
        """Pairs ``start`` to ``stop`` (exclusive)."""
        return Pairs(self.clean[start:stop], self.degraded[start:stop], self.mask[start:stop])


def int_seed(rng: np.random.Generator) -> int:
    """An int seed for the data modules, which take one, drawn from a named stream."""
    return int(rng.integers(2**31))


def downscale(image: np.ndarray, factor: int) -> np.ndarray:
    if factor == 1:
        return image.astype(np.float32)
    h, w = image.shape
    return resize(image, (h // factor, w // factor), order=1, anti_aliasing=True).astype(np.float32)


def halves(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The left half (training) and the right half (test) of a 2D image."""
    mid = image.shape[1] // 2
    return image[:, :mid], image[:, mid:]


def cut_patches(images: list[np.ndarray], n: int, size: int, rng: np.random.Generator,
            max_background: float = 1.0) -> np.ndarray:
    """``n`` structured patches (n, size, size) spread evenly over ``images`` (each a 2D array), in an
    order drawn from ``rng``; patches with more than ``max_background`` of their pixels below 0.05 (air)
    are left out."""
    per = -(-n // len(images))
    draw = per if max_background >= 1 else 4 * per
    cut = np.concatenate([phantoms.image_patches(im, draw, size, int_seed(rng)) for im in images])
    cut = cut[(cut < 0.05).mean(axis=(1, 2)) <= max_background]
    if len(cut) < n:
        raise ValueError(f"patch_size: only {len(cut)} of {n} patches of {size} px lie mostly inside the anatomy")
    return cut[rng.permutation(len(cut))[:n]]


def brain_slabs(size: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Axial slices of the brain template: inferior (training) and superior (test), ``BRAIN_GAP`` apart."""
    brain = anatomy.mni152()
    area = (brain.labels > 0).sum(axis=(1, 2))
    slices = np.flatnonzero(area > 0.5 * area.max())  # slices that cut through most of the brain
    split = slices[0] + (len(slices) - BRAIN_GAP) * 2 // 3
    train = [brain.image[z] for z in slices if z < split]
    test = [brain.image[z] for z in slices if z >= split + BRAIN_GAP]
    if min(brain.image.shape[1:]) < size:
        raise ValueError(f"patch_size: {size} is larger than the brain slices ({brain.image.shape[1:]})")
    return train, test


def sources(task: str, size: int) -> tuple[list[np.ndarray], list[np.ndarray], DataNote]:
    """Training and test images (lists of 2D arrays) of the source behind ``task``, and its data note."""
    if task == "denoise":
        train, test = halves(downscale(anatomy.dicom_image("chest-xray"), XRAY_SCALE))
        return [train], [test], DataNote(
            "chest X-ray (RG1_UNCI)", "real",
            f"a real adult PA chest radiograph (NEMA WG04 test image, pydicom-data 1.0.0) at 1/{XRAY_SCALE} "
            "resolution; training patches from its left half, test patches from its right half")
    if task == "sr":
        shoulder = halves(downscale(anatomy.dicom_image("shoulder-mr"), SHOULDER_SCALE))
        abdomen = halves(downscale(anatomy.dicom_image("abdomen-mr"), 1))
        return [shoulder[0], abdomen[0]], [shoulder[1], abdomen[1]], DataNote(
            "MR slices (MR2_UNCI, Siemens abdomen)", "real",
            f"two real MR slices from pydicom-data 1.0.0: a shoulder (1024 px, used at 1/{SHOULDER_SCALE}) and "
            "an abdomen (484 px); left halves for training, right halves for test")
    if task in BRAIN_TASKS:
        train, test = brain_slabs(size)
        return train, test, DataNote(
            "MNI152 2009a T1 template", "substitute",
            "a population-average brain template (nilearn 0.14.1) standing in for single-subject brain MRI; it is "
            f"smoother and less noisy than a real scan; inferior axial slices for training, superior ones for "
            f"test, {BRAIN_GAP} mm apart")
    raise ValueError(f"unknown task {task!r}")


def make_pairs(clean: np.ndarray, task: str, rng: np.random.Generator, noise_sigma: float) -> Pairs:
    """Degrade ``clean`` (N, H, W) for ``task``; ``sr`` pairs half the patches with x2 and half with x4 inputs."""
    if task == "sr":
        half = len(clean) // 2
        parts = [make_pairs(clean[:half], "sr2", rng, noise_sigma), make_pairs(clean[half:], "sr4", rng, noise_sigma)]
        return Pairs(*(np.concatenate([getattr(p, k) for p in parts]) for k in ("clean", "degraded", "mask")))
    phantom_task = "denoise" if task == "brain-denoise" else task
    degraded, mask = phantoms.degrade(clean, phantom_task, seed=int_seed(rng), noise_sigma=noise_sigma)
    return Pairs(clean.astype(np.float32), degraded.astype(np.float32), mask)

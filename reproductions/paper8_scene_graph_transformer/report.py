"""Paper 8 beside ours: the paper's numbers with their source, the metrics of a run (means over the
seeds, each seed's under "per_seed"), the rows, the claims decided over the seeds with their rules
and gates, the data note, and the figures (sample grids, relation edits, training curves; every
title names the data as synthetic)."""

from __future__ import annotations

import numpy as np
from matplotlib.patches import Rectangle

from reproductions.common.numbers import mean_of_trees
from reproductions.common.plotting import plt, save
from reproductions.outcome import Claim, DataNote, Reported, Row
from reproductions.paper8_scene_graph_transformer.model import counts
from reproductions.paper8_scene_graph_transformer.scenes import (BACKGROUND, COLOUR_NAMES, COLOURS, PREDICATES, SHAPES,
                                                                 SIZES, Scene)
from reproductions.verdict import Gate, Rule, all_converged, interval, paired, per_seed

SOURCE = "reported-results.md, Paper 8"
CONTEXT = "context: different data set; not a like-for-like target"
REPORTED = {("COCO", "IS"): Reported(13.7, f"{SOURCE}: COCO IS"), ("COCO", "FID"): Reported(52.3, f"{SOURCE}: COCO FID"),
            ("Visual Genome", "IS"): Reported(12.8, f"{SOURCE}: Visual Genome IS"),
            ("Visual Genome", "FID"): Reported(60.3, f"{SOURCE}: Visual Genome FID")}
CLAIM_SOURCE = "Sortino et al. 2023, as summarised in the review (paper 8)"
DATA = "synthetic CLEVR-like scenes"

# Rules fixed before the cpu run: margins over the controls that a claim needs to hold.
LAYOUT_MIOU_MARGIN = 0.05  # mIoU over the best baseline
LAYOUT_RELATION_MARGIN = 0.2  # relations satisfied over the random layout
IMAGE_MARGIN = 0.2  # colour in box, relations read and shapes read, each over its mismatched control
EDIT_MARGIN = 0.3  # the new relation after the edit over before it
EDIT_MOVED = 0.6  # the subject moved the edited way in at least this fraction
FID_MARGIN = 5.0  # the GAN's FID over the transformer's
KID_MARGIN = 0.005  # the same for KID (our addition)
MODELS = ("transformer", "GAN")
CHECKS = {"colour_in_box": "colour in box", "relations_read": "relations read", "shape": "shape read"}


def missing(what: str) -> Reported:
    return Reported.missing(f"{SOURCE}: {what} not found")


# ---- metrics ------------------------------------------------------------------------------------

def metrics(scenes, per_seed: list[dict], floors: dict, config) -> dict:
    """metrics.json: the means over the seeds (the VQ ceiling from the first seed), the FID floors
    (the same real sets for every seed) and each seed's metrics with its training curves."""
    mean = {key: mean_of_trees([seed[key] for seed in per_seed])
            for key in ("layout", "vq", "images", "edits", "wall_s", "optimiser_steps")}
    fid = {}  # fid=false: none measured
    if floors:
        fid = (mean_of_trees([{m: seed["fid"][m] for m in MODELS} for seed in per_seed])
               | {"VQ reconstructions": per_seed[0]["fid"]["VQ reconstructions"]} | floors)
    return {**mean, "fid": fid, "seeds": config.seeds, "counts": counts(scenes), "per_seed": per_seed}


# ---- gates --------------------------------------------------------------------------------------

NAMES = {"layout": "graph -> layout", "vq": "VQ-VAE", "ar": "image transformer", "gan": "GAN (pixel L1)"}


def converged(m: dict, network: str) -> Gate:
    """Every seed's per-step training loss of ``network`` levelled off."""
    return all_converged(NAMES[network], {f"seed {k}": seed["training"][network]["steps"]
                                         for k, seed in enumerate(m["per_seed"])})


def beats_floor(m: dict) -> Gate:
    """Both generators' FID lies below that of the mean training image on every seed."""
    floor = m["fid"]["mean training image"]["fid"]
    worst = max(seed["fid"][model]["fid"] for seed in m["per_seed"] for model in MODELS)
    return Gate("generated images beat the trivial floor", bool(worst < floor),
                f"the worst FID of both generators over the seeds, {worst:.1f}, against the mean training image's "
                f"{floor:.1f}")


# ---- claims -------------------------------------------------------------------------------------

def _values(values: list[float]) -> str:
    return ", ".join(f"{v:.3f}" for v in values)


def layout_claim(m: dict) -> Claim:
    def margin(seed):
        lay = seed["layout"]
        ours, mean_b, rand_b = lay["SG transformer"], lay["mean position"], lay["random position"]
        return min(ours["miou"] - max(mean_b["miou"], rand_b["miou"]) - LAYOUT_MIOU_MARGIN,
                   ours["relations_satisfied"] - rand_b["relations_satisfied"] - LAYOUT_RELATION_MARGIN)

    lay = m["layout"]
    ours, mean_b, rand_b = lay["SG transformer"], lay["mean position"], lay["random position"]
    rule = Rule(f"the smaller of (held-out layout mIoU minus the best baseline's, minus {LAYOUT_MIOU_MARGIN}) and "
                f"(relations satisfied minus the random layout's, minus {LAYOUT_RELATION_MARGIN}), per seed", "better")
    return Claim.decided(
        "A transformer maps a scene graph to a layout that respects it (SGTransformer)", CLAIM_SOURCE, rule,
        interval(per_seed(m, margin)),
        f"means over seeds: held-out mIoU {ours['miou']:.3f} vs {mean_b['miou']:.3f} (mean position) and "
        f"{rand_b['miou']:.3f} (random position); relations satisfied {ours['relations_satisfied']:.3f} vs "
        f"{rand_b['relations_satisfied']:.3f} (random) and {mean_b['relations_satisfied']:.3f} (mean); mIoU per seed "
        f"{_values(per_seed(m, lambda s: s['layout']['SG transformer']['miou']))}", (converged(m, "layout"),))


def image_margin(seed: dict, model: str) -> float:
    """The smallest of the three read-back checks over its mismatched control, for one seed."""
    img = seed["images"][model]
    return min(img[check]["generated"] - img[check]["mismatched"] for check in CHECKS)


def image_claim(m: dict) -> Claim:
    img = m["images"]["transformer"]
    shown = "; ".join(f"{label} {img[check]['generated']:.2f} (mismatched {img[check]['mismatched']:.2f}, real "
                      f"{img[check]['real' if check == 'relations_read' else 'real (true boxes)']:.2f})"
                      for check, label in CHECKS.items())
    rule = Rule("the smallest of colour in box, relations read and shapes read from the transformer's images, each "
                "minus its mismatched control, per seed", "better", IMAGE_MARGIN)
    return Claim.decided(
        "Images generated from VQ tokens by the layout-conditioned transformer respect the scene graph",
        CLAIM_SOURCE, rule, interval(per_seed(m, lambda s: image_margin(s, "transformer"))),
        f"means over seeds, {m['counts']['eval_images']} generated images per seed: {shown}; "
        f"{img['relations_checked']:.0f} relations and {img['shapes_checked']:.0f} objects with unique colours",
        (converged(m, "vq"), converged(m, "ar")))


def edit_claim(m: dict) -> Claim:
    text = "Perturbing the scene graph (here: flipping one relation) changes the generated image accordingly"
    e = m["edits"]
    if not e or not e["n"]:
        return Claim.untestable(text, CLAIM_SOURCE, "no held-out scene had a relation whose objects' colours are unique")

    def margin(seed):
        s = seed["edits"]
        return min(s["image_new_relation_after"] - s["image_new_relation_before"] - EDIT_MARGIN,
                   s["image_subject_moved"] - EDIT_MOVED)

    rule = Rule(f"the smaller of (the edited relation holding in the image after the edit minus before, minus "
                f"{EDIT_MARGIN}) and (the share of subjects moved the edited way, minus {EDIT_MOVED}), per seed", "better")
    return Claim.decided(
        text, CLAIM_SOURCE, rule, interval(per_seed(m, margin)),
        f"{e['n']:.0f} held-out graphs per seed, one relation flipped each (means over seeds): the new relation holds "
        f"in {e['image_new_relation_after']:.2f} of the images after the edit against "
        f"{e['image_new_relation_before']:.2f} before; the subject moved the right way in {e['image_subject_moved']:.2f} "
        f"(layouts: {e['layout_new_relation_after']:.2f} after, {e['layout_new_relation_before']:.2f} before)",
        (converged(m, "layout"), converged(m, "ar")))


def fid_claims(m: dict) -> list[Claim]:
    """The transformer against the GAN baseline of the same budget, by FID (the paper's claim, like for
    like on synthetic scenes) and by KID (our addition); not testable where no FID was measured."""
    main_text = ("Better FID than GAN-based scene-graph-to-image methods (here: a layout-conditioned GAN of the same "
                 "budget, on synthetic scenes)")
    kid_text = "Context: lower KID than the GAN of the same budget"
    if not m["fid"]:
        why = ("not testable in this run: FID and KID were not measured (fid=false, as where the FID Inception is "
               "absent)")
        return [Claim.untestable(main_text, CLAIM_SOURCE, why),
                Claim.untestable(kid_text, "our addition", why, addition=True)]
    gates = (converged(m, "vq"), converged(m, "ar"), converged(m, "gan"), beats_floor(m))
    n, f = m["counts"]["eval_images"], m["fid"]
    steps, wall = m["optimiser_steps"], m["wall_s"]
    budget = (f"budget per seed: {steps['GAN']:.0f} GAN steps ({wall['GAN (training)']:.0f} s) against "
              f"{steps['VQ-VAE + image transformer']:.0f} VQ-VAE + transformer steps "
              f"({wall['VQ-VAE + image transformer (training)']:.0f} s), means over seeds")
    fid = {model: per_seed(m, lambda s, model=model: s["fid"][model]["fid"]) for model in MODELS}
    kid = {model: per_seed(m, lambda s, model=model: s["fid"][model]["kid_mean"]) for model in MODELS}
    setting = (f"on synthetic CLEVR-like scenes (a like-for-like test of ours, not COCO or Visual Genome), {n} images "
               f"per model and seed against the {n} real scenes of the same graphs")
    main = Claim.decided(
        main_text, CLAIM_SOURCE,
        Rule(f"the GAN's FID minus the transformer's, per seed, {setting}", "better", FID_MARGIN),
        paired(fid["GAN"], fid["transformer"]),
        f"FID per seed: transformer {_values(fid['transformer'])}, GAN {_values(fid['GAN'])}; a second real set "
        f"{f['second real set']['fid']:.1f} (the floor at this count), VQ reconstructions {f['VQ reconstructions']['fid']:.1f} "
        f"(the tokenizer's ceiling, first seed), mean training image {f['mean training image']['fid']:.1f}; {budget}. "
        f"The paper's COCO / VG FIDs ({REPORTED['COCO', 'FID'].text}, {REPORTED['Visual Genome', 'FID'].text}) are "
        f"not comparable", gates)
    by_kid = Claim.decided(
        kid_text, "our addition",
        Rule(f"the GAN's KID minus the transformer's, per seed, {setting}", "better", KID_MARGIN),
        paired(kid["GAN"], kid["transformer"]),
        f"KID per seed: transformer {', '.join(f'{v:.4f}' for v in kid['transformer'])}, GAN "
        f"{', '.join(f'{v:.4f}' for v in kid['GAN'])}; a second real set {f['second real set']['kid_mean']:.4f}",
        gates, addition=True)
    return [main, by_kid]


def claims(m: dict, config=None) -> list[Claim]:
    return [layout_claim(m), image_claim(m), edit_claim(m), *fid_claims(m),
            Claim.untestable("Better IS than GAN-based scene-graph-to-image methods, and better IS and FID on COCO and "
                             "Visual Genome", CLAIM_SOURCE,
                             "not testable here: the Inception Score cannot be computed (the bundled FID Inception "
                             "gives pool features, not classifier logits), and COCO and Visual Genome are not "
                             "available offline")]


# ---- rows ---------------------------------------------------------------------------------------

FID_NOTES = {"transformer": "the VQ transformer's images from predicted layouts vs real",
             "GAN": "the GAN baseline's images from the same predicted layouts vs real",
             "VQ reconstructions": "VQ reconstructions vs real (ceiling of this tokenizer; first seed)",
             "second real set": "a second real set vs real (floor at this sample size)",
             "mean training image": "the mean training image vs real (trivial floor)"}


def _spread(m: dict, value) -> str:
    return f"over seeds: {interval(per_seed(m, value)).text()}" if len(m["per_seed"]) > 1 else ""


def rows(m: dict, config) -> list[Row]:
    data = f"synthetic CLEVR-like, {config.image_size} px"
    out = []
    for name, values in m["layout"].items():
        setting = f"{data}, held-out / {name}" + ("" if name == "SG transformer" else " (baseline)")
        out.append(Row("Layout mIoU", setting, values["miou"], missing("layout mIoU"), True,
                       _spread(m, lambda s, name=name: s["layout"][name]["miou"])))
        out.append(Row("Relations satisfied by the layout", setting, values["relations_satisfied"],
                       missing("relation satisfaction"), True,
                       _spread(m, lambda s, name=name: s["layout"][name]["relations_satisfied"])))
    for name, note in FID_NOTES.items() if m["fid"] else ():  # none without FID (fid=false)
        for metric, key in (("FID", "fid"), ("KID", "kid_mean")):
            spread = _spread(m, lambda s, name=name, key=key: s["fid"][name][key]) if name in MODELS else ""
            out.append(Row(metric, f"{data}, {config.eval_images} images: {note}", m["fid"][name][key],
                           missing(f"CLEVR {metric}"), False,
                           "; ".join(x for x in (spread, "tiny upsampled images: comparable only within this run") if x)))
    out.append(Row("IS", f"{data}", None, missing("CLEVR IS"), True,
                   "not measured: the bundled FID Inception gives pool features, not classifier logits"))
    out.append(Row("VQ reconstruction PSNR (dB)", f"{data}, {config.grid}x{config.grid} tokens, {config.vq_codes} codes",
                   m["vq"]["psnr_db"], missing("VQ reconstruction PSNR")))
    out.append(Row("Codebook codes used", f"{data}, training tokens", m["vq"]["codes_used"], missing("codebook usage"), None))
    labels = {"colour_in_box": "Object colour inside its box", "relations_read": "Relations read from the image",
              "shape": "Object shape read from the image"}
    for check, label in labels.items():
        for model in MODELS:
            for name, value in m["images"][model][check].items():
                if name != "generated" and model != "transformer":
                    continue  # the real ceiling is the same for both; the mismatched floor shown once
                who = f"{model}'s images" if name == "generated" else name
                out.append(Row(label, f"{data}: {who}", value, missing(f"object-level {CHECKS[check]} check"), True,
                               _spread(m, lambda s, model=model, check=check, name=name:
                                       s["images"][model][check][name])))
    if m["edits"]["n"]:
        for when in ("before", "after"):
            out.append(Row("Edited relation holds in the image", f"{data}: {m['edits']['n']:.0f} edits, {when} the edit",
                           m["edits"][f"image_new_relation_{when}"], missing("edit test")))
        out.append(Row("Subject moved the edited way", f"{data}: {m['edits']['n']:.0f} edits",
                       m["edits"]["image_subject_moved"], missing("edit test")))
    for name, steps in m["optimiser_steps"].items():
        out.append(Row("Optimiser steps", f"{data}: {name}", steps, missing("training budget"), None))
    for name, seconds in m["wall_s"].items():
        out.append(Row("Wall time (s)", f"{data}: {name}", seconds, missing("training budget"), None, "mean over seeds"))
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


def samples_figure(evaluated, pred_boxes, recon, generated: dict, run, rows: int = 6) -> str:
    """Per held-out scene: its graph, the true image, true and predicted layouts, VQ reconstruction, and
    the images of the transformer and the GAN from the predicted layout."""
    rows = min(rows, len(evaluated.scenes))
    titles = ("true image", "true layout", "predicted layout", "VQ reconstruction", "transformer", "GAN baseline")
    fig, axes = plt.subplots(rows, 7, figsize=(12.5, 1.8 * rows), gridspec_kw={"width_ratios": [2.2] + [1] * 6})
    axes = np.atleast_2d(axes)
    for i in range(rows):
        scene = evaluated.scenes[i]
        _graph_text(axes[i, 0], scene.graph_text())
        _image(axes[i, 1], evaluated.images[i], titles[0])
        _layout(axes[i, 2], scene, evaluated.graphs.boxes[i], titles[1])
        _layout(axes[i, 3], scene, pred_boxes[i], titles[2])
        _image(axes[i, 4], recon[i], titles[3])
        _image(axes[i, 5], generated["transformer"][i], titles[4])
        _image(axes[i, 6], generated["GAN"][i], titles[5])
    fig.suptitle(f"Scene graph -> layout -> image on held-out {DATA}, first seed\n(layout labels: object index + shape "
                 "initial; transformer = VQ tokens sampled from the predicted layout; GAN = one pass from the same "
                 "layout)", fontsize=9)
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


def curves_figure(per_seed: list[dict], run) -> str:
    """Every seed's per-step training loss of each network, smoothed over 20 steps."""
    labels = {"layout": "graph -> layout: L1 + (1 - IoU)", "vq": "VQ-VAE: reconstruction MSE (images in [-1, 1])",
              "ar": "layout -> tokens: cross-entropy", "gan": "GAN: generator's pixel L1"}
    fig, axes = plt.subplots(1, len(labels), figsize=(4 * len(labels), 3))
    for ax, (name, label) in zip(np.atleast_1d(axes), labels.items()):
        for k, seed in enumerate(per_seed):
            steps = np.asarray(seed["training"][name]["steps"], float)
            width = min(20, len(steps))
            smooth = np.convolve(steps, np.ones(width) / width, mode="valid")
            ax.plot(np.arange(width, len(steps) + 1), smooth, label=f"seed {k}", lw=1)
        ax.set_title(label, fontsize=8)
        ax.set_xlabel("optimiser step")
        ax.legend(fontsize=7)
        if name == "vq":
            ax.set_yscale("log")
    fig.suptitle(f"Training curves, every seed ({DATA}; cosine learning-rate schedules)", fontsize=9)
    fig.tight_layout()
    return save(fig, run, "training_curves.png", dpi=110)


def figures(scenes, first: dict, per_seed: list[dict], run) -> list[str]:
    """The first seed's samples and edits, every seed's training curves."""
    n = len(scenes.evaluated.scenes)
    paths = [samples_figure(scenes.evaluated, first["boxes"][:n], first["recon"], first["generated"], run),
             edits_figure(first["edits"], run), curves_figure(per_seed, run)]
    return [p for p in paths if p]

"""Paper 8: Sortino et al. 2023, "Transformer-Based Image Generation from Scene Graphs", bib key
Sortino2023Transformer (CVIU 233, official code perceivelab/trf-sg2im).

What is reproduced: the paper's pipeline in small: a transformer maps a scene graph to a layout
(one box per object), a VQ-VAE (diffusers ``VQModel``) turns images into a grid of codebook
tokens, and an autoregressive transformer writes those tokens one by one conditioned on the
layout; the image is the VQ decoder's output. Data: CLEVR-like scenes rendered here (2-5 circles,
squares and triangles in six colours and two sizes on grey), whose scene graphs hold the objects
and one spatial relation (left of / right of / above / below) per pair, read off the positions.
Measured: layout mIoU and the fraction of relations the predicted boxes satisfy (against boxes at
the mean or at a random position), VQ reconstruction PSNR, FID of generated against real scenes,
what the generated images show (the colour inside each predicted box, the relations read back
from colour centroids), and edits: one relation of a graph turned into its opposite, the image
generated again with the same sampling seed, and whether the object moved.

How it differs from the paper, and why:
- Synthetic scenes instead of COCO and Visual Genome (not available offline; the paper's CLEVR
  numbers were not found either). The paper's COCO and Visual Genome IS and FID are shown as
  context only: a different data set, not a like-for-like target.
- Far smaller everything. The official configs use a 256 px VQGAN with 8192 codes on a 16x16
  token grid (ch 128, ch_mult 1-1-2-2-4), a 12-layer, 768-wide graph transformer and a 24-layer,
  1056-wide GPT. Here: 32 px images on an 8x8 grid with 128 codes (smoke, cpu) and 64 px on a
  16x16 grid with 512 codes (full); a few-layer transformer of width 32-256.
- The graph encoder is a plain ``nn.TransformerEncoder`` over object and relation tokens (each
  relation token carries projections of its subject's and object's tokens) instead of the
  paper's graph transformer with edge features and Laplacian positional encodings; the box loss is
  L1 + (1 - IoU) instead of 10 * L1 + complete-IoU + a label loss.
- The image transformer is a causal ``nn.TransformerDecoder`` that cross-attends to one token per
  object and adds a rendered layout map to each grid position, instead of a GPT reading the layout
  as a prefix of label and quantised-coordinate tokens: the map makes the small model learn where
  objects go within minutes on a CPU.
- The VQ-VAE is trained here with MSE + commitment (no GAN or perceptual loss; dead codes
  restarted) instead of using a pretrained VQGAN.
- The Inception Score is not measured: the bundled FID Inception gives pool features, not
  classifier logits. FID is computed on few, tiny (32 or 64 px) images upsampled to 299 px, so it
  is comparable only within this run; a second set of real scenes gives its floor at this sample
  size, and VQ reconstructions its ceiling for this tokenizer.
- The full profile was not timed on a GPU (this session had none); it is sized conservatively.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from skimage.metrics import peak_signal_noise_ratio

from reproductions.outcome import Claim, DataNote, Outcome, Reported, Row
from reproductions.paper8_scene_graph_transformer import evaluate, figures, models
from reproductions.paper8_scene_graph_transformer.scenes import (COLOUR_NAMES, PREDICATES, SHAPES, SIZES, edit_relation,
                                                                 make_scenes, to_batch)


@dataclass(frozen=True)
class Config:
    image_size: int = 32  # px; the VQ token grid is image_size / 2 ** (len(vq_channels) - 1)
    min_objects: int = 2
    max_objects: int = 5
    train_scenes: int = 3000
    test_scenes: int = 500  # held-out scenes for the layout metrics
    eval_images: int = 100  # of those, how many are generated (FID, colour and relation checks)
    edits: int = 48  # held-out graphs with one relation flipped
    batch_size: int = 64
    dropout: float = 0.1
    layout_d: int = 64
    layout_layers: int = 3
    layout_heads: int = 4
    layout_epochs: int = 12  # the held-out loss stops falling after about ten epochs
    layout_lr: float = 1e-3
    vq_channels: tuple[int, ...] = (16, 32, 32)  # diffusers VQModel block_out_channels
    vq_dim: int = 8  # codebook vector size
    vq_codes: int = 128
    vq_train_scenes: int = 2000  # 0: all training scenes
    vq_epochs: int = 4
    vq_batch_size: int = 12  # small batches: more steps for the same compute
    vq_lr: float = 1e-3
    vq_restart_every: int = 100  # steps between restarts of unused codes (none in the last epoch)
    ar_d: int = 128
    ar_layers: int = 4
    ar_heads: int = 4
    ar_epochs: int = 12
    ar_lr: float = 5e-4
    box_jitter: float = 0.01  # std of the noise on true boxes while training the image transformer
    temperature: float = 1.0
    top_k: int = 16  # 0: sample from every code

    def __post_init__(self):
        for name in ("image_size", "train_scenes", "test_scenes", "batch_size", "vq_batch_size", "layout_d", "layout_layers",
                     "layout_heads", "layout_epochs", "vq_dim", "vq_epochs", "vq_restart_every", "ar_d", "ar_layers",
                     "ar_heads", "ar_epochs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if not 2 <= self.min_objects <= self.max_objects <= 6:
            raise ValueError("min_objects, max_objects: need 2 <= min_objects <= max_objects <= 6 "
                             f"(got {self.min_objects}, {self.max_objects})")
        if not 2 <= self.eval_images <= self.test_scenes:
            raise ValueError(f"eval_images must lie in 2..test_scenes ({self.test_scenes}), got {self.eval_images}")
        if not 0 <= self.edits <= self.test_scenes:
            raise ValueError(f"edits must lie in 0..test_scenes ({self.test_scenes}), got {self.edits}")
        if not self.vq_channels or min(self.vq_channels) < 1:
            raise ValueError("vq_channels: give one or more positive widths")
        factor = 2 ** (len(self.vq_channels) - 1)
        if self.image_size % factor or self.image_size // factor < 2:
            raise ValueError(f"image_size {self.image_size} must be a multiple of {factor} (2 ** (len(vq_channels) - 1)) "
                             "and leave a token grid of at least 2x2")
        if self.vq_codes < 2 or self.vq_train_scenes < 0:
            raise ValueError("vq_codes must be at least 2 and vq_train_scenes not negative")
        for d, heads in (("layout_d", "layout_heads"), ("ar_d", "ar_heads")):
            if getattr(self, d) % getattr(self, heads):
                raise ValueError(f"{d} ({getattr(self, d)}) must be divisible by {heads} ({getattr(self, heads)})")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be positive, got {self.temperature}")
        if not 0 <= self.top_k <= self.vq_codes:
            raise ValueError(f"top_k must lie in 0..vq_codes ({self.vq_codes}), got {self.top_k}")
        if min(self.dropout, self.box_jitter) < 0 or self.dropout >= 1:
            raise ValueError("dropout must lie in [0, 1) and box_jitter must not be negative")
        if min(self.layout_lr, self.vq_lr, self.ar_lr) <= 0:
            raise ValueError("layout_lr, vq_lr and ar_lr must be positive")

    @property
    def grid(self) -> int:
        return self.image_size // 2 ** (len(self.vq_channels) - 1)


PRESETS = {
    # tiny networks, few scenes, 16 generated images: about a minute on a 2-core CPU.
    "smoke": Config(train_scenes=400, test_scenes=120, eval_images=16, edits=8, layout_d=32, layout_layers=2,
                    layout_epochs=12, vq_train_scenes=300, vq_epochs=2, vq_restart_every=10,
                    ar_d=64, ar_layers=2, ar_epochs=3),
    # for a machine without a GPU: 32 px scenes on an 8x8 token grid, 100 generated images.
    "cpu": Config(),
    # 64 px on a 16x16 grid (the paper's grid size) with 512 codes and wider, deeper transformers;
    # sized to fit ten minutes on one GPU, not timed on one.
    "full": Config(image_size=64, train_scenes=20000, test_scenes=2000, eval_images=1000, edits=200, batch_size=128,
                   layout_d=128, layout_layers=4, layout_epochs=30, vq_channels=(64, 128, 256), vq_dim=64,
                   vq_codes=512, vq_train_scenes=0, vq_epochs=12, vq_batch_size=64, vq_restart_every=100, ar_d=256,
                   ar_layers=8, ar_heads=8, ar_epochs=20, ar_lr=3e-4, top_k=32),
}

SOURCE = "reported-results.md, Paper 8"
CONTEXT = "context: different data set; not a like-for-like target"
REPORTED = {("COCO", "IS"): 13.7, ("COCO", "FID"): 52.3, ("Visual Genome", "IS"): 12.8, ("Visual Genome", "FID"): 60.3}
CLAIM_SOURCE = "Sortino et al. 2023, as summarised in the review (paper 8)"


# ---- the experiment -----------------------------------------------------------------------------

def choose_edits(scenes, n: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """(scene index, relation index) for up to ``n`` scenes with a relation readable from an image."""
    out = []
    for i in rng.permutation(len(scenes)):
        readable = [k for k in range(len(scenes[i].relations)) if evaluate.checkable(scenes[i], k)]
        if readable:
            out.append((int(i), int(rng.choice(readable))))
        if len(out) == n:
            break
    return out


def generate(ar, vq, graphs, boxes, config, run, offset: int):
    tokens = models.sample_tokens(ar, graphs.attrs, boxes, graphs.obj_mask, config, run, run.generator(offset))
    return models.decode_tokens(vq, tokens, config.grid, run)


def edit_experiment(layout, ar, vq, test, pred, config, run) -> tuple[dict, list[dict]]:
    chosen = choose_edits(test.scenes, config.edits, run.rng(5))
    if not chosen:
        return {"n": 0}, []
    idx, ks = [i for i, _ in chosen], [k for _, k in chosen]
    edited = [edit_relation(test.scenes[i], k) for i, k in chosen]
    before_graphs = test.graphs[torch.tensor(idx)]
    after_graphs = to_batch(edited, config.max_objects)
    boxes_before, boxes_after = pred[idx], models.predict_layout(layout, after_graphs, run)
    images_before = generate(ar, vq, before_graphs, boxes_before, config, run, 40)  # the same sampling stream
    images_after = generate(ar, vq, after_graphs, boxes_after, config, run, 40)
    pairs = [(j, scene, k) for j, (scene, k) in enumerate(zip(edited, ks))]
    centres = lambda b: torch.stack([(b[..., 0] + b[..., 2]) / 2, (b[..., 1] + b[..., 3]) / 2], -1)  # noqa: E731
    in_layout = lambda boxes: float(np.mean([evaluate.holds(centres(boxes[j, s]).tolist(), centres(boxes[j, o]).tolist(), p)  # noqa: E731
                                             for j, scene, k in pairs for s, p, o in [scene.relations[k]]]))
    metrics = {"n": len(chosen),
               "layout_new_relation_before": in_layout(boxes_before), "layout_new_relation_after": in_layout(boxes_after),
               "image_new_relation_before": evaluate.image_relations(images_before, edited, pairs)[0],
               "image_new_relation_after": evaluate.image_relations(images_after, edited, pairs)[0],
               "image_subject_moved": evaluate.edit_moves(images_before, images_after, edited, ks)}
    items = [{"scene": test.scenes[i], "edited": e, "k": k, "boxes_before": boxes_before[j], "boxes_after": boxes_after[j],
              "image_before": images_before[j], "image_after": images_after[j]}
             for j, (i, k, e) in enumerate(zip(idx, ks, edited))]
    return metrics, items


def experiment(config: Config, run) -> tuple[dict, dict, list[str]]:
    size, lo, hi = config.image_size, config.min_objects, config.max_objects
    train = make_scenes(config.train_scenes, size, run.rng(1), lo, hi)
    test = make_scenes(config.test_scenes, size, run.rng(2), lo, hi)
    second_real = make_scenes(config.eval_images, size, run.rng(3), lo, hi)
    ev = torch.arange(config.eval_images)
    ev_scenes, ev_graphs, real = test.scenes[:config.eval_images], test.graphs[ev], test.images[:config.eval_images]

    # scene graph -> layout
    layout = models.GraphToLayout(hi, config.layout_d, config.layout_layers, config.layout_heads, config.dropout).to(run.device)
    histories = {"layout": models.train_layout(layout, train.graphs, test.graphs, config, run, run.generator(10))}
    pred = models.predict_layout(layout, test.graphs, run)
    layouts = {"SG transformer": pred, **evaluate.baseline_layouts(train.graphs, test.graphs, run.rng(4))}
    metrics = {"layout": {name: {"miou": evaluate.miou(boxes, test.graphs),
                                 "iou_above_0.5": float((models.box_iou(boxes, test.graphs.boxes)[test.graphs.obj_mask] > 0.5)
                                                        .float().mean()),
                                 "relations_satisfied": evaluate.relation_satisfaction(boxes, test.graphs)}
                          for name, boxes in layouts.items()}}

    # image <-> tokens
    vq = models.vq_model(config).to(run.device)
    histories["vq"] = models.train_vq(vq, train.images[:config.vq_train_scenes or None], real, config, run,
                                      run.generator(20))
    recon = models.reconstruct(vq, real, run)
    train_tokens = models.encode_tokens(vq, train.images, run)
    eval_tokens = models.encode_tokens(vq, real, run)
    counts = torch.bincount(train_tokens.flatten(), minlength=config.vq_codes).double()
    probs = counts[counts > 0] / counts.sum()
    metrics["vq"] = {"psnr_db": float(np.mean([peak_signal_noise_ratio(r, t, data_range=1.0) for r, t in zip(real, recon)])),
                     "codes_used": int((counts > 0).sum()), "codes": config.vq_codes, "token_grid": config.grid,
                     "perplexity": float(torch.exp(-(probs * probs.log()).sum()))}

    # layout -> tokens -> image
    ar = models.LayoutToTokens(config.vq_codes, config.grid, config.ar_d, config.ar_layers, config.ar_heads,
                               config.dropout).to(run.device)
    histories["ar"] = models.train_ar(ar, train_tokens, train.graphs, eval_tokens, ev_graphs, config, run, run.generator(30))
    generated = generate(ar, vq, ev_graphs, pred[ev], config, run, 31)

    # what the images show; mismatched: each generated image judged against the next scene's graph
    mismatched = np.roll(generated, 1, axis=0)
    metrics["images"] = {
        "colour_in_box": {"generated": evaluate.colour_in_box(generated, ev_scenes, pred[ev]),
                          "real (true boxes)": evaluate.colour_in_box(real, ev_scenes, test.graphs.boxes[ev]),
                          "mismatched": evaluate.colour_in_box(mismatched, ev_scenes, pred[ev])},
        "relations_read": {}}
    for name, images in (("generated", generated), ("real", real), ("mismatched", mismatched)):
        value, n = evaluate.image_relations(images, ev_scenes)
        metrics["images"]["relations_read"][name] = value
    metrics["images"]["relations_checked"] = n
    metrics["edits"], edit_items = edit_experiment(layout, ar, vq, test, pred, config, run)

    # FID (features of each set computed once)
    features = evaluate.inception_features({"real": real, "generated": generated, "VQ reconstructions": recon,
                                            "second real set": second_real.images}, run)
    metrics["fid"] = {name: evaluate.fid(features, "real", name)
                      for name in ("generated", "VQ reconstructions", "second real set")}
    metrics["training"] = histories
    metrics["counts"] = {"train_scenes": len(train.scenes), "test_scenes": len(test.scenes),
                         "eval_images": config.eval_images, "test_objects": int(test.graphs.obj_mask.sum()),
                         "test_relations": int(test.graphs.rel_mask.sum())}

    figs = [figures.samples(ev_scenes, real, test.graphs.boxes[ev], pred[ev], recon, generated, run),
            figures.edits(edit_items, run), figures.curves(histories, run)]
    return metrics, {"train": train, "test": test}, [f for f in figs if f]


# ---- verdicts and the side-by-side ----------------------------------------------------------------

def claims(m: dict) -> list[Claim]:
    lay = m["layout"]
    ours, mean_b, rand_b = lay["SG transformer"], lay["mean position"], lay["random position"]
    best_miou = max(mean_b["miou"], rand_b["miou"])
    layout_held = ours["miou"] >= best_miou + 0.05 and ours["relations_satisfied"] >= rand_b["relations_satisfied"] + 0.2
    img = m["images"]
    colour, rel = img["colour_in_box"], img["relations_read"]
    image_held = (colour["generated"] >= colour["mismatched"] + 0.2 and rel["generated"] >= rel["mismatched"] + 0.2)
    e = m["edits"]
    if e["n"]:
        edit_held = (e["image_new_relation_after"] >= e["image_new_relation_before"] + 0.3
                     and e["image_subject_moved"] >= 0.6)
        edit_evidence = (f"{e['n']} held-out graphs, one relation flipped each: the new relation holds in "
                         f"{e['image_new_relation_after']:.2f} of the images generated after the edit against "
                         f"{e['image_new_relation_before']:.2f} before; the subject moved the right way in "
                         f"{e['image_subject_moved']:.2f} (layouts: {e['layout_new_relation_after']:.2f} after, "
                         f"{e['layout_new_relation_before']:.2f} before). Rule: after >= before + 0.3 and moved >= 0.6.")
    else:
        edit_held, edit_evidence = None, "no held-out scene had a relation whose objects' colours are unique"
    return [
        Claim("A transformer maps a scene graph to a layout that respects it (SGTransformer)", CLAIM_SOURCE, layout_held,
              f"held-out mIoU {ours['miou']:.3f} vs {mean_b['miou']:.3f} (mean position) and {rand_b['miou']:.3f} "
              f"(random position); relations satisfied {ours['relations_satisfied']:.3f} vs "
              f"{rand_b['relations_satisfied']:.3f} (random) and {mean_b['relations_satisfied']:.3f} (mean). "
              "Rule: mIoU >= best baseline + 0.05 and relations >= random + 0.2."),
        Claim("Images generated from VQ tokens by the layout-conditioned transformer respect the scene graph",
              CLAIM_SOURCE, image_held,
              f"on {m['counts']['eval_images']} generated images: the object's colour dominates its predicted box for "
              f"{colour['generated']:.2f} of objects ({colour['mismatched']:.2f} when judged against another scene's "
              f"graph; real images with true boxes {colour['real (true boxes)']:.2f}); relations read back from colour "
              f"centroids hold for {rel['generated']:.2f} ({rel['mismatched']:.2f} mismatched, {rel['real']:.2f} real; "
              f"{img['relations_checked']} relations whose objects' colours are unique). "
              "Rule: both >= mismatched + 0.2."),
        Claim("Perturbing the scene graph (here: flipping one relation) changes the generated image accordingly",
              CLAIM_SOURCE, edit_held, edit_evidence),
        Claim("Better IS and FID than GAN-based scene-graph-to-image methods (SG2IM, PasteGAN) on COCO and Visual Genome",
              CLAIM_SOURCE, None,
              f"not testable here: COCO and Visual Genome are not available offline, no GAN baseline is trained, and the "
              f"Inception Score cannot be computed (no classifier logits). Our FID on synthetic scenes, "
              f"{m['fid']['generated']['fid']:.1f}, is not comparable with the paper's 52.3 (COCO) or 60.3 (VG)."),
    ]


def rows(m: dict, config: Config) -> list[Row]:
    missing = lambda what: Reported.missing(f"{SOURCE}: {what} not found")  # noqa: E731
    data = f"synthetic CLEVR-like, {config.image_size} px"
    out = []
    for name, values in m["layout"].items():
        setting = f"{data}, held-out / {name}" + ("" if name == "SG transformer" else " (baseline)")
        out.append(Row("Layout mIoU", setting, values["miou"], missing("layout mIoU")))
        out.append(Row("Relations satisfied by the layout", setting, values["relations_satisfied"],
                       missing("relation satisfaction")))
    fid_notes = {"generated": "generated from predicted layouts vs real",
                 "VQ reconstructions": "VQ reconstructions vs real (ceiling of this tokenizer)",
                 "second real set": "a second real set vs real (floor at this sample size)"}
    for name, note in fid_notes.items():
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
    for (dataset, metric), value in REPORTED.items():
        out.append(Row(metric, f"{dataset} ({CONTEXT})", None, Reported(value, f"{SOURCE}: {dataset} {metric}"),
                       metric == "IS", "not measured here: " + CONTEXT))
    return out


def differences(config: Config) -> list[str]:
    return [
        "Synthetic CLEVR-like scenes rendered here instead of COCO and Visual Genome (not available offline); the "
        "paper's COCO / VG IS and FID are context rows, not targets, and its CLEVR numbers were not found.",
        f"Scaled down: {config.image_size} px images on a {config.grid}x{config.grid} token grid with {config.vq_codes} "
        "codes (the official configs: 256 px, 16x16 tokens, 8192 codes); transformers of width "
        f"{config.layout_d} (layout) and {config.ar_d} (image), {config.layout_layers} and {config.ar_layers} layers "
        "(official: 768-wide 12-layer graph transformer, 1056-wide 24-layer GPT).",
        "Graph encoder: a plain transformer encoder over object and relation tokens, not the paper's graph transformer "
        "with edge features and Laplacian positional encodings; box loss L1 + (1 - IoU), no label loss.",
        "Image transformer: a causal transformer decoder with cross-attention to object tokens and a rendered layout "
        "map added at each grid position, instead of a GPT reading layout tokens as a prefix.",
        "VQ-VAE: diffusers VQModel trained here with MSE + commitment loss and dead-code restarts; no GAN or "
        "perceptual loss, no pretrained VQGAN.",
        "Inception Score not measured (no classifier logits offline). FID on few, tiny, upsampled images is only "
        "comparable within this run; its floor (two real sets) and the VQ ceiling are reported beside it.",
        "Object-level checks read colours back from pixels (nearest palette colour), which only works because the "
        "scenes use six well-separated colours on grey; relations are checked only where both colours are unique.",
        "Edits flip one relation of a held-out graph; the flipped graph may contradict other relations of the same "
        "scene (e.g. by transitivity), which the layout model then has to trade off.",
    ]


def run(config: Config, run) -> Outcome:
    metrics, sets, figs = experiment(config, run)
    note = DataNote("CLEVR-like scenes", "synthetic",
                    f"{len(sets['train'].scenes)} training and {len(sets['test'].scenes)} held-out scenes rendered here "
                    f"(seeded), {config.image_size} px: {config.min_objects}-{config.max_objects} objects of "
                    f"{len(SHAPES)} shapes, {len(COLOUR_NAMES)} colours and {len(SIZES)} sizes on grey, placed without "
                    f"overlap; scene graph = objects + one relation ({', '.join(PREDICATES)}) per pair, from positions")
    return Outcome(metrics, rows(metrics, config), claims(metrics), [note], figs, differences(config))

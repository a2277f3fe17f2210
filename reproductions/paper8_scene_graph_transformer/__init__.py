"""Paper 8: Sortino et al. 2023, "Transformer-Based Image Generation from Scene Graphs", bib key
Sortino2023Transformer (CVIU 233, official code perceivelab/trf-sg2im).

What is reproduced: the paper's pipeline in small: a transformer maps a scene graph to a layout
(one box per object), a VQ-VAE (diffusers ``VQModel``) turns images into a grid of codebook
tokens, and an autoregressive transformer writes those tokens one by one conditioned on the
layout; the image is the VQ decoder's output. Data: CLEVR-like scenes rendered here (2-5 circles,
squares and triangles in six colours and two sizes on grey), whose scene graphs hold the objects
and one spatial relation (left of / right of / above / below) per pair, read off the positions.
A GAN baseline, SG2IM-like in spirit, maps the same predicted layouts to images in one pass: a
generator of noise + layout canvas (the boxes painted with one-hot object attributes, joined at
every scale) and a discriminator of image + canvas, trained with hinge loss and SG2IM's pixel L1
for as many optimiser steps as the VQ-VAE and the image transformer took together, on the same
training images. Every seed (3 in the cpu profile, ``run.replicas``) trains the layout model, the
VQ-VAE, the image transformer and the GAN afresh on the same scenes.
Measured per seed: layout mIoU and the fraction of relations the predicted boxes satisfy (against
boxes at the mean or at a random position), VQ reconstruction PSNR, FID and KID of the
transformer's and the GAN's images against the real held-out scenes of the same graphs, what the
generated images show (the colour inside each predicted box, the relations read back from colour
centroids, the shape read back by a classifier trained on crops of real scenes), and edits: one
relation of a graph turned into its opposite, the image generated again from the same sampling
stream, and whether the object moved. Every claim is decided on the per-seed values with a 95%
interval (``reproductions.verdict``), gated on the trainings having levelled off and on the
generated images beating a trivial floor.

The parts: ``model.py`` (data, the three networks, training, sampling, the measures), ``scenes.py``
(the synthetic data set: drawing scenes and reading them back from pixels) and ``report.py`` (the
paper's numbers, rows, claims and figures).

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
- The paper's "better FID than GAN-based scene-graph-to-image methods" is tested like for like on
  the synthetic scenes against one GAN of ours at the same budget (same training images, as many
  optimiser steps as the VQ-VAE and image transformer together, the same predicted layouts at test
  time), not against SG2IM or PasteGAN on COCO and Visual Genome. The GAN is SG2IM-like only in
  spirit: no graph convolution or mask regression (it gets the boxes), no object discriminator;
  adversarial weight 0.1 beside the L1 (our choice).
- The Inception Score is not measured: the bundled FID Inception gives pool features, not
  classifier logits. FID and KID are computed on tiny (32 or 64 px) images upsampled to 299 px
  and, in the cpu profile, on 170 generated images per model and seed (510 over the 3 seeds)
  against the 170 real scenes of the same graphs: the Inception takes about 0.3 s an image on 2
  cores, so 500 per model and seed would not fit 15 minutes. FID at this count is biased high, the
  same for both models of a seed (the difference is what is decided); KID is unbiased. A second
  real set gives FID's floor at this count, VQ reconstructions (first seed) the tokenizer's
  ceiling, and the mean training image a trivial floor every generator must beat.
- Object-level checks read colours back from pixels (nearest palette colour), which only works
  because the scenes use six well-separated colours on grey; relations and shapes are checked only
  where the objects' colours are unique in the scene. Shapes are read by a logistic regression on
  10x10 masks of the object's colour cropped to their extent, trained on real training scenes; its
  ceiling is real images with true boxes, its floor each crop judged against another object's shape.
- Edits flip one relation of a held-out graph; the flipped graph may contradict other relations of
  the same scene (e.g. by transitivity), which the layout model then has to trade off.
- Every training runs on a cosine learning-rate schedule to zero (the paper's schedules differ by
  model); the convergence gates read the per-step training losses.
- The cpu profile is smaller than the single-seed run before it (2000 training scenes instead of
  3000, fewer epochs of the VQ-VAE and image transformer) so that 3 seeds of four networks and the
  FID of 1000 images fit 15 minutes on 2 cores.
- The full profile was not timed on a GPU; it is sized conservatively.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from reproductions.common.docstring import differences
from reproductions.metrics.images import FidFeatures
from reproductions.outcome import Outcome
from reproductions.paper8_scene_graph_transformer import model, report
from reproductions.paper8_scene_graph_transformer.scenes import SceneSet, ShapeReader
from reproductions.run import Run


@dataclass(frozen=True)
class Config:
    image_size: int = 32  # px; the VQ token grid is image_size / 2 ** (len(vq_channels) - 1)
    min_objects: int = 2
    max_objects: int = 5
    train_scenes: int = 2000
    test_scenes: int = 400  # held-out scenes for the layout metrics
    eval_images: int = 170  # of those, how many are generated per model and seed (FID, KID, object checks)
    edits: int = 32  # held-out graphs with one relation flipped
    seeds: int = 3  # trainings of every network the claims are decided over
    shape_train_scenes: int = 1000  # training scenes whose object crops train the shape reader
    batch_size: int = 64
    dropout: float = 0.1
    layout_d: int = 64
    layout_layers: int = 3
    layout_heads: int = 4
    layout_epochs: int = 12
    layout_lr: float = 1e-3
    vq_channels: tuple[int, ...] = (16, 32, 32)  # diffusers VQModel block_out_channels
    vq_dim: int = 8  # codebook vector size
    vq_codes: int = 128
    vq_train_scenes: int = 1500  # 0: all training scenes
    vq_epochs: int = 3
    vq_batch_size: int = 12  # small batches: more steps for the same compute
    vq_lr: float = 1e-3
    vq_restart_every: int = 100  # steps between restarts of unused codes (none in the last epoch)
    ar_d: int = 128
    ar_layers: int = 4
    ar_heads: int = 4
    ar_epochs: int = 10
    ar_lr: float = 5e-4
    box_jitter: float = 0.01  # std of the noise on true boxes while training the image transformer and the GAN
    temperature: float = 1.0
    top_k: int = 16  # 0: sample from every code
    gan_z: int = 32
    gan_width: int = 16  # the generator's 4x4 features have gan_width * 2 ** levels channels
    gan_lr: float = 2e-4
    gan_adv: float = 0.1  # weight of the adversarial loss beside the pixel L1 (weight 1)
    fid: bool = True  # FID and KID, which need the bundled FID Inception; off: the FID claims are not testable

    def __post_init__(self):
        for name in ("image_size", "train_scenes", "test_scenes", "seeds", "shape_train_scenes", "batch_size",
                     "vq_batch_size", "layout_d", "layout_layers", "layout_heads", "layout_epochs", "vq_dim",
                     "vq_epochs", "vq_restart_every", "ar_d", "ar_layers", "ar_heads", "ar_epochs", "gan_z",
                     "gan_width"):
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
        if self.image_size < 8 or self.image_size & (self.image_size - 1):
            raise ValueError(f"image_size must be a power of 2 of at least 8 (the GAN doubles 4x4), got {self.image_size}")
        if self.vq_codes < 2 or self.vq_train_scenes < 0:
            raise ValueError("vq_codes must be at least 2 and vq_train_scenes not negative")
        for d, heads in (("layout_d", "layout_heads"), ("ar_d", "ar_heads")):
            if getattr(self, d) % getattr(self, heads):
                raise ValueError(f"{d} ({getattr(self, d)}) must be divisible by {heads} ({getattr(self, heads)})")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be positive, got {self.temperature}")
        if not 0 <= self.top_k <= self.vq_codes:
            raise ValueError(f"top_k must lie in 0..vq_codes ({self.vq_codes}), got {self.top_k}")
        if min(self.dropout, self.box_jitter, self.gan_adv) < 0 or self.dropout >= 1:
            raise ValueError("dropout must lie in [0, 1) and box_jitter and gan_adv must not be negative")
        if min(self.layout_lr, self.vq_lr, self.ar_lr, self.gan_lr) <= 0:
            raise ValueError("layout_lr, vq_lr, ar_lr and gan_lr must be positive")

    @property
    def grid(self) -> int:
        return self.image_size // 2 ** (len(self.vq_channels) - 1)


PRESETS = {
    # tiny networks, few scenes, one seed, 16 generated images per model: about a minute on a 2-core CPU.
    "smoke": Config(train_scenes=400, test_scenes=120, eval_images=16, edits=8, seeds=1, shape_train_scenes=200,
                    layout_d=32, layout_layers=2, layout_epochs=12, vq_train_scenes=300, vq_epochs=2,
                    vq_restart_every=10, ar_d=64, ar_layers=2, ar_epochs=3, gan_width=8),
    # for a machine without a GPU: 32 px scenes on an 8x8 token grid, 3 seeds, 170 generated images
    # per model and seed.
    "cpu": Config(),
    # 64 px on a 16x16 grid (the paper's grid size) with 512 codes and wider, deeper transformers;
    # sized to fit ten minutes on one GPU, not timed on one.
    "full": Config(image_size=64, train_scenes=20000, test_scenes=2000, eval_images=1000, edits=200, batch_size=128,
                   shape_train_scenes=3000, layout_d=128, layout_layers=4, layout_epochs=30, vq_channels=(64, 128, 256),
                   vq_dim=64, vq_codes=512, vq_train_scenes=0, vq_epochs=12, vq_batch_size=64, vq_restart_every=100,
                   ar_d=256, ar_layers=8, ar_heads=8, ar_epochs=20, ar_lr=3e-4, top_k=32, gan_z=64, gan_width=32),
}


def main(config: Config, run: Run) -> Outcome:
    """The scenes, the shape reader and the FID floors once; then per seed the four networks and what
    their layouts and images show; then the claims over the seeds."""
    scenes = model.load_scenes(config, run)  # training, held-out (and its evaluated part), a second real set
    train = scenes.train
    shapes = ShapeReader(SceneSet(train.scenes[:config.shape_train_scenes], train.images[:config.shape_train_scenes],
                                  train.graphs[:config.shape_train_scenes]))
    features = FidFeatures(run.device, batch_size=50) if config.fid else None
    floors = model.fid_scores(features, scenes.evaluated.images,
                              {"second real set": scenes.second_real.images,
                               "mean training image": model.mean_image_floor(train.images)},
                              run.torch_generator("kid-subsets-floors"),
                              {"second real set": "second real", "mean training image": "mean image"}
                              ) if features else {}
    trials = [trial(scenes, shapes, features, config, replica) for replica in run.replicas(config.seeds)]
    per_seed = [metrics for metrics, _ in trials]
    metrics = report.metrics(scenes, per_seed, floors, config)
    figures = report.figures(scenes, trials[0][1], per_seed, run)  # the first seed's samples and edits
    return Outcome(metrics, report.rows(metrics, config), report.claims(metrics, config),
                   [report.data_note(scenes, config)], figures, differences(__doc__))


def trial(scenes: model.Scenes, shapes: ShapeReader, features: FidFeatures | None, config: Config,
          run: Run) -> tuple[dict, dict]:
    """One seed: layout, VQ-VAE, image transformer and GAN trained afresh; returns its metrics and the
    images of the figures (no FID or KID without ``features``)."""
    evaluated, n = scenes.evaluated, config.eval_images
    wall = {}

    # 1. scene graph -> layout
    started = time.perf_counter()
    layout = model.build_layout(config, run)
    histories = {"layout": model.train_layout(layout, scenes.train.graphs, scenes.test.graphs, config, run)}
    boxes = model.predict_layout(layout, scenes.test.graphs, run)  # (test_scenes, max_objects, 4)
    wall["layout"] = time.perf_counter() - started

    # 2. image <-> VQ tokens, then layout -> tokens
    started = time.perf_counter()
    vq = model.build_vq(config, run)
    histories["vq"] = model.train_vq(vq, scenes.train.images[:config.vq_train_scenes or None], evaluated.images,
                                     config, run)
    train_tokens = model.encode_tokens(vq, scenes.train.images, run)  # (train_scenes, grid * grid)
    ar = model.build_ar(config, run)
    histories["ar"] = model.train_ar(ar, train_tokens, scenes.train.graphs, model.encode_tokens(vq, evaluated.images, run),
                                     evaluated.graphs, config, run)
    wall["VQ-VAE + image transformer (training)"] = time.perf_counter() - started
    started = time.perf_counter()
    generated = {"transformer": model.generate(ar, vq, evaluated.graphs, boxes[:n], config, run, "sampling")}
    wall["transformer (sampling)"] = time.perf_counter() - started

    # 3. the GAN baseline: same training images, as many optimiser steps, the same predicted layouts
    started = time.perf_counter()
    gan = model.build_gan(config, run)
    histories["gan"] = model.train_gan(gan, scenes.train.images, scenes.train.graphs, config, run)
    wall["GAN (training)"] = time.perf_counter() - started
    generated["GAN"] = model.generate_gan(gan, evaluated.graphs, boxes[:n], config, run, "gan-sampling")

    # 4. what the layouts, the tokens and the images show; edits; FID and KID
    recon = model.reconstruct(vq, evaluated.images, run)
    metrics = {"layout": model.layout_scores(boxes, scenes, run),
               "vq": model.vq_scores(evaluated.images, recon, train_tokens, config),
               "images": {name: model.image_scores(images, evaluated, boxes[:n], shapes, run.rng("shape-mismatch"))
                          for name, images in generated.items()}}
    metrics["edits"], edit_items = model.edit_experiment(layout, ar, vq, scenes.test, boxes, config, run)
    sets = generated | ({"VQ reconstructions": recon} if run.replica == 0 else {})  # the ceiling: first seed only
    metrics["fid"] = (model.fid_scores(features, evaluated.images, sets, run.torch_generator("kid-subsets"))
                      if features else {})
    metrics["training"], metrics["wall_s"] = histories, wall
    metrics["optimiser_steps"] = {"VQ-VAE + image transformer": len(histories["vq"]["steps"]) + len(histories["ar"]["steps"]),
                                  "GAN": len(histories["gan"]["steps"])}
    return metrics, {"boxes": boxes, "recon": recon, "generated": generated, "edits": edit_items}

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
generated again from the same sampling stream, and whether the object moved.

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
- The Inception Score is not measured: the bundled FID Inception gives pool features, not
  classifier logits. FID is computed on few, tiny (32 or 64 px) images upsampled to 299 px, so it
  is comparable only within this run; a second set of real scenes gives its floor at this sample
  size, and VQ reconstructions its ceiling for this tokenizer.
- Object-level checks read colours back from pixels (nearest palette colour), which only works
  because the scenes use six well-separated colours on grey; relations are checked only where both
  objects' colours are unique in the scene.
- Edits flip one relation of a held-out graph; the flipped graph may contradict other relations of
  the same scene (e.g. by transitivity), which the layout model then has to trade off.
- The full profile was not timed on a GPU (this session had none); it is sized conservatively.
"""

from __future__ import annotations

from dataclasses import dataclass

from reproductions.common.docstring import differences
from reproductions.metrics.images import FidFeatures
from reproductions.outcome import Outcome
from reproductions.paper8_scene_graph_transformer import model, report
from reproductions.run import Run


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


def main(config: Config, run: Run) -> Outcome:
    scenes = model.load_scenes(config, run)  # training, held-out (and its evaluated part), a second real set
    evaluated, n = scenes.evaluated, config.eval_images

    # 1. scene graph -> layout
    layout = model.build_layout(config, run)
    histories = {"layout": model.train_layout(layout, scenes.train.graphs, scenes.test.graphs, config, run)}
    boxes = model.predict_layout(layout, scenes.test.graphs, run)  # (test_scenes, max_objects, 4)

    # 2. image <-> VQ tokens
    vq = model.build_vq(config, run)
    histories["vq"] = model.train_vq(vq, scenes.train.images[:config.vq_train_scenes or None], evaluated.images,
                                     config, run)
    recon = model.reconstruct(vq, evaluated.images, run)
    train_tokens = model.encode_tokens(vq, scenes.train.images, run)  # (train_scenes, grid * grid)

    # 3. layout -> tokens -> image
    ar = model.build_ar(config, run)
    histories["ar"] = model.train_ar(ar, train_tokens, scenes.train.graphs, model.encode_tokens(vq, evaluated.images, run),
                                     evaluated.graphs, config, run)
    generated = model.generate(ar, vq, evaluated.graphs, boxes[:n], config, run, "sampling")

    # 4. what the layouts, the tokens and the images show; edits; FID
    metrics = {"layout": model.layout_scores(boxes, scenes, run),
               "vq": model.vq_scores(evaluated.images, recon, train_tokens, config),
               "images": model.image_scores(generated, evaluated, boxes[:n])}
    metrics["edits"], edit_items = model.edit_experiment(layout, ar, vq, scenes.test, boxes, config, run)
    metrics["fid"] = model.fid_scores(FidFeatures(run.device, batch_size=50), evaluated.images,
                                      {"generated": generated, "VQ reconstructions": recon,
                                       "second real set": scenes.second_real.images}, run.torch_generator("kid-subsets"))
    metrics["training"], metrics["counts"] = histories, model.counts(scenes)

    figures = report.figures(scenes, boxes, recon, generated, edit_items, histories, run)
    return Outcome(metrics, report.rows(metrics, config), report.claims(metrics), [report.data_note(scenes, config)],
                   figures, differences(__doc__))

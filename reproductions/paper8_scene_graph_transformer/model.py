"""Paper 8 from data to measures, top to bottom: the scenes, the three networks (scene graph ->
layout, image <-> VQ tokens, layout -> tokens), their training, sampling, and what is measured.

- ``GraphToLayout``: a transformer encoder over object tokens (shape + colour + size + slot) and
  relation tokens (predicate + projections of its subject's and object's tokens); each object's
  output predicts its box (centre, width, height through a sigmoid). Trained with L1 + (1 - IoU).
- ``build_vq``: diffusers' ``VQModel`` (VQGAN-style encoder / decoder with a codebook), trained with
  an MSE reconstruction loss plus its commitment loss (no GAN or perceptual loss), with the codebook
  started from encoder outputs and dead codes restarted (a common remedy for codebook collapse).
- ``LayoutToTokens``: a causal transformer decoder over the VQ token grid (raster order). It is
  conditioned on the layout twice: cross-attention to one token per object (attributes + box), and
  a rendered layout map added to every grid position (each object's attribute embedding weighted by
  how much of that cell its box covers). Sampling: temperature and top-k, from an explicit generator.
- Measures: layout mIoU and relation satisfaction (against boxes at the mean or a random position),
  VQ reconstruction PSNR and codebook use, the colour inside each predicted box and the relations
  read back from colour centroids of the generated images, graph edits, and FID.

The synthetic scenes themselves (drawing, scene graphs, reading colours and relations back from
pixels) are ``scenes.py``: a data set of its own that knows nothing of the networks, kept apart so
that this file stays one reading. Every random draw comes from a named stream of the run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import VQModel
from skimage.metrics import peak_signal_noise_ratio
from torch import nn

from reproductions.metrics.images import FidFeatures
from reproductions.paper8_scene_graph_transformer.scenes import (COLOURS, PREDICATES, SHAPES, SIZES, GraphBatch, Scene,
                                                                 SceneSet, ShapeReader, checkable, colour_in_box,
                                                                 count_checked_objects, edit_moves, edit_relation,
                                                                 holds, image_relations, make_scenes, to_batch)
from reproductions.run import Run

# ---- data ---------------------------------------------------------------------------------------


@dataclass
class Scenes:
    train: SceneSet
    test: SceneSet  # held out: the layout metrics
    evaluated: SceneSet  # the first eval_images of test: generated, FID, colour and relation checks
    second_real: SceneSet  # another real set of eval_images: FID's floor at this sample size


def load_scenes(config, run: Run) -> Scenes:
    size, lo, hi = config.image_size, config.min_objects, config.max_objects
    test = make_scenes(config.test_scenes, size, run.rng("test-scenes"), lo, hi)
    n = config.eval_images
    return Scenes(train=make_scenes(config.train_scenes, size, run.rng("train-scenes"), lo, hi), test=test,
                  evaluated=SceneSet(test.scenes[:n], test.images[:n], test.graphs[:n]),
                  second_real=make_scenes(n, size, run.rng("second-real-scenes"), lo, hi))


def counts(scenes: Scenes) -> dict[str, int]:
    test = scenes.test.graphs
    return {"train_scenes": len(scenes.train.scenes), "test_scenes": len(scenes.test.scenes),
            "eval_images": len(scenes.evaluated.scenes), "test_objects": int(test.obj_mask.sum()),
            "test_relations": int(test.rel_mask.sum())}


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of matching boxes (..., 4) as x0, y0, x1, y1 -> (...)."""
    w = (torch.minimum(a[..., 2], b[..., 2]) - torch.maximum(a[..., 0], b[..., 0])).clamp_min(0)
    h = (torch.minimum(a[..., 3], b[..., 3]) - torch.maximum(a[..., 1], b[..., 1])).clamp_min(0)
    inter = w * h
    return inter / (box_area(a) + box_area(b) - inter).clamp_min(1e-8)


def box_area(x: torch.Tensor) -> torch.Tensor:
    return (x[..., 2] - x[..., 0]).clamp_min(0) * (x[..., 3] - x[..., 1]).clamp_min(0)


def box_centres(boxes: torch.Tensor) -> torch.Tensor:
    """(..., 4) boxes -> (..., 2) centres (x, y)."""
    return torch.stack([(boxes[..., 0] + boxes[..., 2]) / 2, (boxes[..., 1] + boxes[..., 3]) / 2], -1)


class ObjectEmbedding(nn.Module):
    """shape + colour + size embeddings of (B, N, 3) attributes -> (B, N, d)."""

    def __init__(self, d: int):
        super().__init__()
        self.shape, self.colour, self.size = nn.Embedding(len(SHAPES), d), nn.Embedding(len(COLOURS), d), nn.Embedding(len(SIZES), d)

    def forward(self, attrs: torch.Tensor) -> torch.Tensor:
        return self.shape(attrs[..., 0]) + self.colour(attrs[..., 1]) + self.size(attrs[..., 2])


# ---- scene graph -> layout ----------------------------------------------------------------------

class GraphToLayout(nn.Module):
    def __init__(self, max_objects: int, d: int, layers: int, heads: int, dropout: float):
        super().__init__()
        self.objects = ObjectEmbedding(d)
        self.slot = nn.Embedding(max_objects, d)  # which object a relation token refers to
        self.predicate = nn.Embedding(len(PREDICATES), d)
        self.subject_proj, self.object_proj = nn.Linear(d, d, bias=False), nn.Linear(d, d, bias=False)
        self.kind = nn.Embedding(2, d)  # object token / relation token
        layer = nn.TransformerEncoderLayer(d, heads, 4 * d, dropout, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, 4))

    def forward(self, g: GraphBatch) -> torch.Tensor:
        """Boxes (B, N, 4) as x0, y0, x1, y1 in [0, 1] for graphs of N object slots and M relation slots."""
        n = g.attrs.shape[1]
        objs = self.objects(g.attrs) + self.slot(torch.arange(n, device=g.attrs.device))  # (B, N, d)

        def pick(index):  # (B, M) object indices -> their tokens (B, M, d)
            return torch.gather(objs, 1, index[..., None].expand(-1, -1, objs.shape[-1]))  # index (B, M, 1) -> (B, M, d)

        rels = self.predicate(g.rels[..., 1]) + self.subject_proj(pick(g.rels[..., 0])) + self.object_proj(pick(g.rels[..., 2]))
        tokens = torch.cat([objs + self.kind.weight[0], rels + self.kind.weight[1]], dim=1)  # (B, N + M, d)
        padding = ~torch.cat([g.obj_mask, g.rel_mask], dim=1)  # (B, N + M)
        out = self.encoder(tokens, src_key_padding_mask=padding)[:, :n]  # the object tokens, (B, N, d)
        cx, cy, w, h = torch.sigmoid(self.head(out).float()).unbind(-1)  # (B, N, 4) -> four (B, N)
        return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=-1)


def build_layout(config, run: Run) -> GraphToLayout:
    with run.seeded("layout-init"):
        return GraphToLayout(config.max_objects, config.layout_d, config.layout_layers, config.layout_heads,
                             config.dropout).to(run.device)


def layout_loss(pred: torch.Tensor, g: GraphBatch) -> torch.Tensor:
    m = g.obj_mask
    return F.l1_loss(pred[m], g.boxes[m]) + (1 - box_iou(pred[m], g.boxes[m])).mean()


def cosine(optimiser, steps: int):
    """The learning rate from its start down to 0 along a half cosine over ``steps`` steps."""
    return torch.optim.lr_scheduler.LambdaLR(optimiser, lambda k: 0.5 * (1 + np.cos(np.pi * min(k, steps) / steps)))


def steps_of(n: int, batch: int, epochs: int) -> int:
    return -(-n // batch) * epochs


def train_layout(model: GraphToLayout, train: GraphBatch, val: GraphBatch, config, run: Run) -> dict[str, list]:
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.layout_lr, weight_decay=0.01)
    schedule = cosine(optimiser, steps_of(len(train), config.batch_size, config.layout_epochs))
    batches = run.torch_generator("layout-batches")
    history = {"train": [], "val": [], "steps": []}
    with run.seeded("layout-dropout"):  # dropout draws from torch's global generator
        for _ in run.progress(range(config.layout_epochs), "graph -> layout"):
            model.train()
            losses = []
            for batch in torch.randperm(len(train), generator=batches).split(config.batch_size):
                g = train[batch].to(run.device)
                with run.autocast():
                    loss = layout_loss(model(g), g)
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                schedule.step()
                losses.append(loss.item())
            history["train"].append(sum(losses) / len(losses))
            history["steps"] += losses
            history["val"].append(layout_loss(predict_layout(model, val, run), val).item())
    return history


@torch.no_grad()
def predict_layout(model: GraphToLayout, graphs: GraphBatch, run: Run, batch: int = 512) -> torch.Tensor:
    """Boxes (B, N, 4) on the CPU."""
    model.eval()
    out = []
    for start in range(0, len(graphs), batch):
        with run.autocast():
            out.append(model(graphs[start:start + batch].to(run.device)).float().cpu())
    return torch.cat(out)


# ---- image <-> VQ tokens ------------------------------------------------------------------------

def build_vq(config, run: Run) -> VQModel:
    """A small VQModel: len(vq_channels) - 1 halvings of the image side, ``vq_codes`` codes."""
    n = len(config.vq_channels)
    with run.seeded("vq-init"):
        return VQModel(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * n,
                       up_block_types=("UpDecoderBlock2D",) * n, block_out_channels=config.vq_channels,
                       layers_per_block=1, latent_channels=config.vq_dim, num_vq_embeddings=config.vq_codes,
                       vq_embed_dim=config.vq_dim, norm_num_groups=min(8, config.vq_channels[0]),
                       sample_size=config.image_size).to(run.device)


def vq_forward(vq: VQModel, x: torch.Tensor):
    """(reconstruction (B, 3, H, W), commitment loss, code indices (B, h * w)) of images x in [-1, 1]."""
    h = vq.encode(x).latents  # (B, vq_dim, h, w)
    quant, commit, (_, _, idx) = vq.quantize(h)  # idx: (B * h * w,)
    return vq.decode(quant, force_not_quantize=True).sample, commit, idx.reshape(len(x), -1)  # idx -> (B, h * w)


def to_model_images(images) -> torch.Tensor:
    """(N, H, W, 3) in [0, 1] -> (N, 3, H, W) in [-1, 1]."""
    return torch.as_tensor(images).permute(0, 3, 1, 2) * 2 - 1  # (N, H, W, 3) -> (N, 3, H, W)


def from_model_images(x: torch.Tensor) -> np.ndarray:
    """(N, 3, H, W) in [-1, 1] -> (N, H, W, 3) in [0, 1] as numpy."""
    return ((x.clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).numpy()  # (N, 3, H, W) -> (N, H, W, 3)


def train_vq(vq: VQModel, images, val_images, config, run: Run) -> dict[str, list]:
    x_all = to_model_images(images)
    optimiser = torch.optim.Adam(vq.parameters(), lr=config.vq_lr)
    schedule = cosine(optimiser, steps_of(len(x_all), config.vq_batch_size, config.vq_epochs))
    batches, restarts = run.torch_generator("vq-batches"), run.torch_generator("vq-code-restarts")
    history = {"train": [], "val": [], "codes_used": [], "steps": []}
    usage = torch.zeros(config.vq_codes)
    step = 0
    for epoch in run.progress(range(config.vq_epochs), "VQ-VAE"):
        vq.train()
        losses = []
        restarting = epoch < config.vq_epochs - 1 or config.vq_epochs == 1  # the last epoch settles the codes in
        for batch in torch.randperm(len(x_all), generator=batches).split(config.vq_batch_size):
            x = x_all[batch].to(run.device)
            with run.autocast():
                if step == 0:  # start the codebook from encoder outputs instead of near-zero vectors
                    restart_codes(vq, x, torch.ones(config.vq_codes, dtype=torch.bool), restarts)
                recon, commit, idx = vq_forward(vq, x)
                mse = F.mse_loss(recon.float(), x)
                loss = mse + commit.float().mean()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            usage += torch.bincount(idx.flatten().cpu(), minlength=config.vq_codes)  # (B, h * w) -> (B * h * w,)
            step += 1
            if step % config.vq_restart_every == 0:
                if restarting:
                    with run.autocast():
                        restart_codes(vq, x, usage == 0, restarts)
                history["codes_used"].append(int((usage > 0).sum()))
                usage.zero_()
            losses.append(mse.item())
        history["train"].append(sum(losses) / len(losses))
        history["steps"] += losses
        recon = reconstruct(vq, val_images, run)
        history["val"].append(4 * float(((recon - val_images) ** 2).mean()))  # MSE in [-1, 1] units, as in training
    return history


@torch.no_grad()
def restart_codes(vq: VQModel, x: torch.Tensor, dead: torch.Tensor, generator: torch.Generator) -> None:
    """Move the codes flagged ``dead`` onto encoder outputs of the batch ``x``, picked at random."""
    if not dead.any():
        return
    latents = vq.encode(x).latents.float()  # (B, vq_dim, h, w)
    z = latents.permute(0, 2, 3, 1).reshape(-1, vq.quantize.vq_embed_dim)  # -> (B, h, w, vq_dim) -> (B * h * w, vq_dim)
    pick = torch.randint(len(z), (int(dead.sum()),), generator=generator)
    weight = vq.quantize.embedding.weight
    weight[dead.to(weight.device)] = z[pick.to(z.device)].to(weight.dtype)


@torch.no_grad()
def encode_tokens(vq: VQModel, images, run: Run, batch: int = 256) -> torch.Tensor:
    """Images (N, H, W, 3) in [0, 1] -> token grids (N, h * w) in raster order."""
    vq.eval()
    x_all = to_model_images(images)
    out = []
    for start in range(0, len(x_all), batch):
        with run.autocast():
            h = vq.encode(x_all[start:start + batch].to(run.device)).latents  # (B, vq_dim, h, w)
            out.append(vq.quantize(h)[2][2].reshape(len(h), -1).cpu())  # indices (B * h * w,) -> (B, h * w)
    return torch.cat(out)


@torch.no_grad()
def decode_tokens(vq: VQModel, tokens: torch.Tensor, grid: int, run: Run, batch: int = 256) -> np.ndarray:
    """Tokens (N, grid * grid) -> images (N, H, W, 3) in [0, 1] as numpy."""
    vq.eval()
    out = []
    for start in range(0, len(tokens), batch):
        t = tokens[start:start + batch].to(run.device)
        with run.autocast():
            # (B, grid * grid) -> (B * grid * grid,) indices -> codebook vectors (B, vq_dim, grid, grid)
            quant = vq.quantize.get_codebook_entry(t.flatten(), (len(t), grid, grid, vq.quantize.vq_embed_dim))
            out.append(vq.decode(quant, force_not_quantize=True).sample.float().cpu())
    return from_model_images(torch.cat(out))


@torch.no_grad()
def reconstruct(vq: VQModel, images, run: Run, batch: int = 256) -> np.ndarray:
    """Images (N, H, W, 3) in [0, 1] through the VQ-VAE and back."""
    vq.eval()
    x_all, out = to_model_images(images), []
    for start in range(0, len(x_all), batch):
        with run.autocast():
            out.append(vq_forward(vq, x_all[start:start + batch].to(run.device))[0].float().cpu())
    return from_model_images(torch.cat(out))


# ---- layout -> tokens ---------------------------------------------------------------------------

def cell_coverage(boxes: torch.Tensor, grid: int) -> torch.Tensor:
    """Fraction of each grid cell covered by each box: (B, N, 4) -> (B, N, grid * grid), raster order."""
    edges = torch.arange(grid + 1, device=boxes.device, dtype=boxes.dtype) / grid
    lo, hi = edges[:-1], edges[1:]

    def cover(a, b):  # 1-d overlap of [a, b] (B, N) with each cell, in cell widths: (B, N, grid)
        return (torch.minimum(b[..., None], hi) - torch.maximum(a[..., None], lo)).clamp_min(0) * grid

    cx, cy = cover(boxes[..., 0], boxes[..., 2]), cover(boxes[..., 1], boxes[..., 3])  # (B, N, grid) each
    return (cy[..., :, None] * cx[..., None, :]).flatten(-2)  # (B, N, grid, grid) -> (B, N, grid * grid)


class LayoutToTokens(nn.Module):
    def __init__(self, codes: int, grid: int, d: int, layers: int, heads: int, dropout: float):
        super().__init__()
        self.codes, self.grid = codes, grid
        self.objects = ObjectEmbedding(d)
        self.box = nn.Sequential(nn.Linear(4, d), nn.GELU(), nn.Linear(d, d))
        self.map_proj = nn.Linear(d, d)  # what an object paints into the cells its box covers
        self.memory_norm = nn.LayerNorm(d)
        self.token = nn.Embedding(codes + 1, d)  # the last index is the start token
        self.position = nn.Embedding(grid * grid, d)
        layer = nn.TransformerDecoderLayer(d, heads, 4 * d, dropout, batch_first=True, norm_first=True)
        self.decoder = nn.TransformerDecoder(layer, layers)
        self.head = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, codes))

    def condition(self, attrs, boxes, obj_mask):
        """(memory (B, N, d), layout map (B, T, d)) for the layout; T = grid * grid."""
        emb = self.objects(attrs)  # (B, N, d)
        memory = self.memory_norm(emb + self.box(boxes))
        coverage = cell_coverage(boxes, self.grid) * obj_mask[..., None]  # (B, N, T), padded objects cover nothing
        return memory, torch.einsum("bnt,bnd->btd", coverage, self.map_proj(emb))

    def forward(self, tokens, memory, layout_map, obj_mask) -> torch.Tensor:
        """Logits (B, L, codes) for positions 0..L-1 given tokens (B, L) (position i sees tokens < i)."""
        b, length = tokens.shape
        start = torch.full((b, 1), self.codes, dtype=torch.long, device=tokens.device)
        inputs = torch.cat([start, tokens[:, :-1]], dim=1)  # shifted right by the start token, (B, L)
        x = self.token(inputs) + self.position.weight[:length] + layout_map[:, :length]  # (B, L, d)
        causal = nn.Transformer.generate_square_subsequent_mask(length, device=tokens.device)
        out = self.decoder(x, memory, tgt_mask=causal, tgt_is_causal=True, memory_key_padding_mask=~obj_mask)
        return self.head(out)


def build_ar(config, run: Run) -> LayoutToTokens:
    with run.seeded("ar-init"):
        return LayoutToTokens(config.vq_codes, config.grid, config.ar_d, config.ar_layers, config.ar_heads,
                              config.dropout).to(run.device)


def ar_loss(model: LayoutToTokens, tokens, g: GraphBatch, boxes) -> torch.Tensor:
    memory, layout_map = model.condition(g.attrs, boxes, g.obj_mask)
    logits = model(tokens, memory, layout_map, g.obj_mask)  # (B, T, codes)
    return F.cross_entropy(logits.float().reshape(-1, model.codes), tokens.reshape(-1))  # (B * T, codes), (B * T,)


def train_ar(model: LayoutToTokens, tokens, graphs: GraphBatch, val_tokens, val_graphs, config, run: Run):
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.ar_lr, weight_decay=0.01)
    schedule = cosine(optimiser, steps_of(len(tokens), config.batch_size, config.ar_epochs))
    batches, jitter = run.torch_generator("ar-batches"), run.torch_generator("ar-box-jitter")
    history = {"train": [], "val": [], "steps": []}
    with run.seeded("ar-dropout"):  # dropout draws from torch's global generator
        for _ in run.progress(range(config.ar_epochs), "layout -> tokens"):
            model.train()
            losses = []
            for batch in torch.randperm(len(tokens), generator=batches).split(config.batch_size):
                g = graphs[batch].to(run.device)
                # jitter the true boxes a little: at test time the boxes come from the layout model
                boxes = g.boxes + config.box_jitter * torch.randn(g.boxes.shape, generator=jitter).to(run.device)
                with run.autocast():
                    loss = ar_loss(model, tokens[batch].to(run.device), g, boxes)
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                schedule.step()
                losses.append(loss.item())
            history["train"].append(sum(losses) / len(losses))
            history["steps"] += losses
            model.eval()
            with torch.no_grad(), run.autocast():
                g = val_graphs.to(run.device)
                history["val"].append(ar_loss(model, val_tokens.to(run.device), g, g.boxes).item())
    return history


@torch.no_grad()
def sample_tokens(model: LayoutToTokens, attrs, boxes, obj_mask, config, run: Run, generator: torch.Generator,
                  batch: int = 256) -> torch.Tensor:
    """Token grids (B, T) sampled position by position with ``temperature`` and ``top_k`` (0: all codes)."""
    model.eval()
    length = model.grid * model.grid
    out = []
    for start in range(0, len(attrs), batch):
        sl = slice(start, start + batch)
        a, bx, m = attrs[sl].to(run.device), boxes[sl].to(run.device), obj_mask[sl].to(run.device)
        with run.autocast():
            memory, layout_map = model.condition(a, bx, m)
        tokens = torch.zeros(len(a), length, dtype=torch.long, device=run.device)
        for t in range(length):
            # 1. the logits of position t from the start token and the tokens before t, (B, codes)
            with run.autocast():
                logits = model(tokens[:, :t + 1], memory, layout_map, m)[:, t].float() / config.temperature
            # 2. keep the top_k likeliest codes (0: every code)
            if config.top_k:
                kth = logits.topk(config.top_k, dim=-1).values[:, -1:]  # (B, 1)
                logits = logits.masked_fill(logits < kth, float("-inf"))
            # 3. draw code t on the CPU, so that a GPU run draws the same codes from the same stream
            probs = torch.softmax(logits, dim=-1).cpu()
            tokens[:, t] = torch.multinomial(probs, 1, generator=generator)[:, 0].to(run.device)
        out.append(tokens.cpu())
    return torch.cat(out)


def generate(ar: LayoutToTokens, vq: VQModel, graphs: GraphBatch, boxes, config, run: Run, stream: str) -> np.ndarray:
    """Images (B, H, W, 3) for graphs laid out as ``boxes``: tokens sampled from the named stream, then decoded."""
    tokens = sample_tokens(ar, graphs.attrs, boxes, graphs.obj_mask, config, run, run.torch_generator(stream))
    return decode_tokens(vq, tokens, config.grid, run)



# ---- the GAN baseline: layout -> image in one pass ------------------------------------------------

def layout_canvas(attrs: torch.Tensor, boxes: torch.Tensor, obj_mask: torch.Tensor, size: int) -> torch.Tensor:
    """The layout as an image of one-hot attributes: (B, shapes + colours + sizes, size, size); each
    pixel holds the attributes of the objects whose box covers it, weighted by how much it covers."""
    coverage = cell_coverage(boxes, size) * obj_mask[..., None]  # (B, N, size * size)
    onehot = torch.cat([F.one_hot(attrs[..., 0], len(SHAPES)), F.one_hot(attrs[..., 1], len(COLOURS)),
                        F.one_hot(attrs[..., 2], len(SIZES))], -1).to(boxes.dtype)  # (B, N, C)
    canvas = torch.einsum("bnt,bnc->bct", coverage, onehot)  # (B, C, size * size)
    return canvas.reshape(len(boxes), -1, size, size)  # -> (B, C, size, size)


CANVAS_CHANNELS = len(SHAPES) + len(COLOURS) + len(SIZES)


class LayoutGenerator(nn.Module):
    """SG2IM-like in spirit: noise z projected to 4x4, then doubled in side until the image size, the
    layout canvas (``layout_canvas``, resized) joined to the features at every scale (a cascaded
    refinement network in small); images in [-1, 1]."""

    def __init__(self, size: int, z_dim: int, width: int):
        super().__init__()
        self.size, self.z_dim = size, z_dim
        levels = int(np.log2(size // 4))
        top = width * 2 ** levels
        self.project = nn.Linear(z_dim, top * 16)
        self.blocks = nn.ModuleList()
        c_in = top
        for level in range(levels):
            c_out = top // 2 ** (level + 1)
            self.blocks.append(nn.Sequential(
                nn.Conv2d(c_in + CANVAS_CHANNELS, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2),
                nn.Conv2d(c_out, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2)))
            c_in = c_out
        self.out = nn.Conv2d(c_in + CANVAS_CHANNELS, 3, 3, padding=1)

    def forward(self, z: torch.Tensor, canvas: torch.Tensor) -> torch.Tensor:
        x = self.project(z).reshape(len(z), -1, 4, 4)  # (B, z_dim) -> (B, top, 4, 4)
        for block in self.blocks:
            x = F.interpolate(x, scale_factor=2, mode="nearest")  # (B, c, s, s) -> (B, c, 2s, 2s)
            x = block(torch.cat([x, F.interpolate(canvas, size=x.shape[-1], mode="area")], 1))
        return torch.tanh(self.out(torch.cat([x, canvas], 1)))  # (B, 3, size, size)


class LayoutDiscriminator(nn.Module):
    """Image and layout canvas together -> one logit per image; spectral norm on every layer."""

    def __init__(self, size: int, width: int):
        super().__init__()
        sn = nn.utils.parametrizations.spectral_norm
        layers, c_in, side = [], 3 + CANVAS_CHANNELS, size
        c_out = width
        while side > 4:
            layers += [sn(nn.Conv2d(c_in, c_out, 4, 2, 1)), nn.LeakyReLU(0.2)]
            c_in, c_out, side = c_out, c_out * 2, side // 2
        self.net = nn.Sequential(*layers, sn(nn.Conv2d(c_in, 1, 4)))  # (B, c, 4, 4) -> (B, 1, 1, 1)

    def forward(self, images: torch.Tensor, canvas: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([images, canvas], 1)).flatten()


def build_gan(config, run: Run) -> tuple[LayoutGenerator, LayoutDiscriminator]:
    with run.seeded("gan-init"):
        return (LayoutGenerator(config.image_size, config.gan_z, config.gan_width).to(run.device),
                LayoutDiscriminator(config.image_size, config.gan_width).to(run.device))


def gan_steps(config, train_scenes: int) -> int:
    """The GAN's optimiser steps: as many as the VQ-VAE and the image transformer took together."""
    vq_scenes = min(config.vq_train_scenes or train_scenes, train_scenes)
    return (steps_of(vq_scenes, config.vq_batch_size, config.vq_epochs)
            + steps_of(train_scenes, config.batch_size, config.ar_epochs))


def train_gan(gan, images, graphs: GraphBatch, config, run: Run) -> dict[str, list]:
    """Hinge loss for the discriminator; for the generator the adversarial loss (weight ``gan_adv``)
    plus the pixel L1 to the true image of the same layout (weight 1), as SG2IM trains; Adam
    (lr ``gan_lr``, betas 0.5 / 0.999) on a cosine schedule, for ``gan_steps`` steps on the true
    boxes jittered as for the image transformer."""
    generator, discriminator = gan
    x_all = to_model_images(images)
    steps = gan_steps(config, len(x_all))
    opt_g = torch.optim.Adam(generator.parameters(), lr=config.gan_lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=config.gan_lr, betas=(0.5, 0.999))
    schedules = [cosine(opt_g, steps), cosine(opt_d, steps)]
    batches, noise, jitter = (run.torch_generator(s) for s in ("gan-batches", "gan-noise", "gan-box-jitter"))
    history = {"steps": [], "d": [], "adv": []}
    order = torch.cat([torch.randperm(len(x_all), generator=batches) for _ in range(-(-steps * config.batch_size
                                                                                      // len(x_all)))])
    generator.train()
    discriminator.train()
    for step in run.progress(range(steps), "layout -> image GAN"):
        batch = order[step * config.batch_size:(step + 1) * config.batch_size]
        g = graphs[batch].to(run.device)
        boxes = g.boxes + config.box_jitter * torch.randn(g.boxes.shape, generator=jitter).to(run.device)
        canvas = layout_canvas(g.attrs, boxes, g.obj_mask, config.image_size)
        real = x_all[batch].to(run.device)
        z = torch.randn(len(batch), config.gan_z, generator=noise).to(run.device)
        with run.autocast():
            fake = generator(z, canvas)
            # 1. the discriminator: hinge loss on real and generated images of the same layouts
            d_loss = (F.relu(1 - discriminator(real, canvas).float()).mean()
                      + F.relu(1 + discriminator(fake.detach(), canvas).float()).mean())
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
        with run.autocast():
            # 2. the generator: fool the discriminator and match the true image in L1
            adv = -discriminator(fake, canvas).float().mean()
            l1 = F.l1_loss(fake.float(), real)
            g_loss = config.gan_adv * adv + l1
        opt_g.zero_grad()
        g_loss.backward()
        opt_g.step()
        for schedule in schedules:
            schedule.step()
        history["steps"].append(l1.item())
        history["d"].append(d_loss.item())
        history["adv"].append(adv.item())
    return history


@torch.no_grad()
def generate_gan(gan, graphs: GraphBatch, boxes, config, run: Run, stream: str, batch: int = 256) -> np.ndarray:
    """Images (B, H, W, 3) in [0, 1] from the generator for graphs laid out as ``boxes``, z from the named stream."""
    generator = gan[0].eval()
    noise, out = run.torch_generator(stream), []
    for start in range(0, len(graphs), batch):
        g = graphs[start:start + batch].to(run.device)
        canvas = layout_canvas(g.attrs, boxes[start:start + batch].to(run.device), g.obj_mask, config.image_size)
        z = torch.randn(len(g), config.gan_z, generator=noise).to(run.device)
        with run.autocast():
            out.append(generator(z, canvas).float().cpu())
    return from_model_images(torch.cat(out))


# ---- measures: layouts --------------------------------------------------------------------------

def miou(pred: torch.Tensor, g: GraphBatch) -> float:
    """Mean IoU of each real object's predicted box with its true box."""
    return float(box_iou(pred[g.obj_mask], g.boxes[g.obj_mask]).mean())


def relation_satisfaction(boxes: torch.Tensor, g: GraphBatch) -> float:
    """Fraction of the graphs' relations that the boxes' centres satisfy (strictly)."""
    centres = box_centres(boxes).numpy()  # (B, N, 2)
    ok = [holds(centres[b, s], centres[b, o], p)
          for b, r in torch.nonzero(g.rel_mask).tolist() for s, p, o in [g.rels[b, r].tolist()]]
    return float(np.mean(ok)) if ok else float("nan")


def baseline_layouts(train: GraphBatch, test: GraphBatch, rng: np.random.Generator) -> dict[str, torch.Tensor]:
    """Boxes that ignore the relations: every object at the training set's mean centre, or at a
    uniformly random centre; both with the mean width and height of its size class (known from the graph)."""
    boxes, attrs = train.boxes[train.obj_mask], train.attrs[train.obj_mask]  # (objects, 4), (objects, 3)
    centre = box_centres(boxes).mean(0)  # (2,)
    wh = torch.stack([(boxes[attrs[:, 2] == s][:, 2:] - boxes[attrs[:, 2] == s][:, :2]).mean(0)
                      for s in range(len(SIZES))])  # (sizes, 2)
    half = wh[test.attrs[..., 2]] / 2  # (B, N, 2)
    random_centre = torch.as_tensor(rng.uniform(half.numpy(), 1 - half.numpy()), dtype=torch.float32)
    return {"mean position": torch.cat([centre.expand_as(half) - half, centre.expand_as(half) + half], -1),
            "random position": torch.cat([random_centre - half, random_centre + half], -1)}


def layout_scores(boxes: torch.Tensor, scenes: Scenes, run: Run) -> dict[str, dict[str, float]]:
    """mIoU, IoU > 0.5 and relations satisfied on the held-out graphs, for ours and the two baselines."""
    test = scenes.test.graphs
    layouts = {"SG transformer": boxes, **baseline_layouts(scenes.train.graphs, test, run.rng("baseline-layout"))}
    return {name: {"miou": miou(b, test),
                   "iou_above_0.5": float((box_iou(b, test.boxes)[test.obj_mask] > 0.5).float().mean()),
                   "relations_satisfied": relation_satisfaction(b, test)}
            for name, b in layouts.items()}


# ---- measures: the tokenizer --------------------------------------------------------------------

def vq_scores(real: np.ndarray, recon: np.ndarray, train_tokens: torch.Tensor, config) -> dict:
    """Reconstruction PSNR (dB, mean over images) and how much of the codebook the training tokens use."""
    counts = torch.bincount(train_tokens.flatten(), minlength=config.vq_codes).double()  # (N, T) -> (N * T,)
    probs = counts[counts > 0] / counts.sum()
    return {"psnr_db": float(np.mean([peak_signal_noise_ratio(r, t, data_range=1.0) for r, t in zip(real, recon)])),
            "codes_used": int((counts > 0).sum()), "codes": config.vq_codes, "token_grid": config.grid,
            "perplexity": float(torch.exp(-(probs * probs.log()).sum()))}


# ---- measures: what the images show (read back by scenes.py) -----------------------------------

def image_scores(generated: np.ndarray, evaluated: SceneSet, boxes: torch.Tensor, shapes: ShapeReader,
                 rng: np.random.Generator) -> dict:
    """Colour in box, relations and shapes read back, for the generated images, the real ones and a
    mismatched control: for colour and relations each generated image judged against the next
    scene's graph; for shapes each object's crop judged against another object's shape (``rng``
    permutes the objects), whose accuracy is chance."""
    mismatched = np.roll(generated, 1, axis=0)
    colour = {"generated": colour_in_box(generated, evaluated.scenes, boxes),
              "real (true boxes)": colour_in_box(evaluated.images, evaluated.scenes, evaluated.graphs.boxes),
              "mismatched": colour_in_box(mismatched, evaluated.scenes, boxes)}
    relations, checked = {}, 0
    for name, images in (("generated", generated), ("real", evaluated.images), ("mismatched", mismatched)):
        relations[name], checked = image_relations(images, evaluated.scenes)
    objects = count_checked_objects(evaluated.scenes)
    shape = {"generated": shapes.accuracy(generated, evaluated.scenes, boxes),
             "real (true boxes)": shapes.accuracy(evaluated.images, evaluated.scenes, evaluated.graphs.boxes),
             "mismatched": shapes.accuracy(generated, evaluated.scenes, boxes, rng.permutation(objects))}
    return {"colour_in_box": colour, "relations_read": relations, "relations_checked": checked,
            "shape": shape, "shapes_checked": objects}


# ---- measures: graph edits ----------------------------------------------------------------------

def choose_edits(scenes: list[Scene], n: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """(scene index, relation index) for up to ``n`` scenes with a relation readable from an image."""
    out = []
    for i in rng.permutation(len(scenes)):
        readable = [k for k in range(len(scenes[i].relations)) if checkable(scenes[i], k)]
        if readable:
            out.append((int(i), int(rng.choice(readable))))
        if len(out) == n:
            break
    return out


def edit_experiment(layout, ar, vq, test: SceneSet, boxes: torch.Tensor, config, run: Run) -> tuple[dict, list[dict]]:
    """Flip one readable relation of held-out graphs, lay out and generate again from the same sampling
    stream, and measure whether the new relation holds and the subject moved; also the figure's items."""
    chosen = choose_edits(test.scenes, config.edits, run.rng("edit-choice"))
    if not chosen:
        return {"n": 0}, []
    idx, ks = [i for i, _ in chosen], [k for _, k in chosen]
    edited = [edit_relation(test.scenes[i], k) for i, k in chosen]
    before_graphs, after_graphs = test.graphs[torch.tensor(idx)], to_batch(edited, config.max_objects)
    boxes_before, boxes_after = boxes[idx], predict_layout(layout, after_graphs, run)
    images_before = generate(ar, vq, before_graphs, boxes_before, config, run, "edit-sampling")
    images_after = generate(ar, vq, after_graphs, boxes_after, config, run, "edit-sampling")  # the same stream
    pairs = [(j, scene, k) for j, (scene, k) in enumerate(zip(edited, ks))]

    def in_layout(b: torch.Tensor) -> float:  # the edited relation between the laid-out centres
        centres = box_centres(b)  # (edits, N, 2)
        return float(np.mean([holds(centres[j, s].tolist(), centres[j, o].tolist(), p)
                              for j, scene, k in pairs for s, p, o in [scene.relations[k]]]))

    metrics = {"n": len(chosen),
               "layout_new_relation_before": in_layout(boxes_before), "layout_new_relation_after": in_layout(boxes_after),
               "image_new_relation_before": image_relations(images_before, edited, pairs)[0],
               "image_new_relation_after": image_relations(images_after, edited, pairs)[0],
               "image_subject_moved": edit_moves(images_before, images_after, edited, ks)}
    items = [{"scene": test.scenes[i], "edited": e, "k": k, "boxes_before": boxes_before[j], "boxes_after": boxes_after[j],
              "image_before": images_before[j], "image_after": images_after[j]}
             for j, (i, k, e) in enumerate(zip(idx, ks, edited))]
    return metrics, items


# ---- measures: FID ------------------------------------------------------------------------------

def fid_scores(extractor: FidFeatures, real: np.ndarray, others: dict[str, np.ndarray],
               generator: torch.Generator, keys: dict[str, str] | None = None) -> dict[str, dict[str, float]]:
    """FID and KID of each set in ``others`` against ``real``, all (N, H, W, 3) in [0, 1]; the real
    set's features are computed once, KID's subsets drawn from ``generator``; a set named in ``keys``
    (a set shared by every seed) is embedded once under its key."""
    def channels_first(images):
        return torch.as_tensor(images).permute(0, 3, 1, 2)  # (N, H, W, 3) -> (N, 3, H, W)

    keys = keys or {}
    return {name: extractor.fid_kid(channels_first(real), channels_first(images), real_key="real",
                                    fake_key=keys.get(name), generator=generator)
            for name, images in others.items()}


def mean_image_floor(images: np.ndarray) -> np.ndarray:
    """The trivial floor for FID: the per-pixel mean of the training images, twice (FID needs two)."""
    return np.repeat(images.mean(0, keepdims=True), 2, axis=0)  # (N, H, W, 3) -> (2, H, W, 3)

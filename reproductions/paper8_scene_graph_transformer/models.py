"""The three networks and their training: scene graph -> layout, image <-> VQ tokens, layout -> tokens.

- ``GraphToLayout``: a transformer encoder over object tokens (shape + colour + size + slot) and
  relation tokens (predicate + projections of its subject's and object's tokens); each object's
  output predicts its box (centre, width, height through a sigmoid). Trained with L1 + (1 - IoU).
- ``vq_model``: diffusers' ``VQModel`` (VQGAN-style encoder / decoder with a codebook), trained with
  an MSE reconstruction loss plus its commitment loss (no GAN or perceptual loss), with the codebook
  started from encoder outputs and dead codes restarted (a common remedy for codebook collapse).
- ``LayoutToTokens``: a causal transformer decoder over the VQ token grid (raster order). It is
  conditioned on the layout twice: cross-attention to one token per object (attributes + box), and
  a rendered layout map added to every grid position (each object's attribute embedding weighted by
  how much of that cell its box covers). Sampling: temperature and top-k, from an explicit generator.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers import VQModel
from torch import nn

from reproductions.paper8_scene_graph_transformer.scenes import COLOURS, PREDICATES, SHAPES, SIZES, GraphBatch


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of matching boxes (..., 4) as x0, y0, x1, y1 -> (...)."""
    w = (torch.minimum(a[..., 2], b[..., 2]) - torch.maximum(a[..., 0], b[..., 0])).clamp_min(0)
    h = (torch.minimum(a[..., 3], b[..., 3]) - torch.maximum(a[..., 1], b[..., 1])).clamp_min(0)
    inter = w * h
    area = lambda x: (x[..., 2] - x[..., 0]).clamp_min(0) * (x[..., 3] - x[..., 1]).clamp_min(0)  # noqa: E731
    return inter / (area(a) + area(b) - inter).clamp_min(1e-8)


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
        """Boxes (B, N, 4) as x0, y0, x1, y1 in [0, 1] for graphs of N object slots."""
        n = g.attrs.shape[1]
        objs = self.objects(g.attrs) + self.slot(torch.arange(n, device=g.attrs.device))  # (B, N, d)
        pick = lambda idx: torch.gather(objs, 1, idx[..., None].expand(-1, -1, objs.shape[-1]))  # noqa: E731
        rels = self.predicate(g.rels[..., 1]) + self.subject_proj(pick(g.rels[..., 0])) + self.object_proj(pick(g.rels[..., 2]))
        tokens = torch.cat([objs + self.kind.weight[0], rels + self.kind.weight[1]], dim=1)
        padding = ~torch.cat([g.obj_mask, g.rel_mask], dim=1)
        out = self.encoder(tokens, src_key_padding_mask=padding)[:, :n]
        cx, cy, w, h = torch.sigmoid(self.head(out).float()).unbind(-1)
        return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=-1)


def layout_loss(pred: torch.Tensor, g: GraphBatch) -> torch.Tensor:
    m = g.obj_mask
    return F.l1_loss(pred[m], g.boxes[m]) + (1 - box_iou(pred[m], g.boxes[m])).mean()


def train_layout(model: GraphToLayout, train: GraphBatch, val: GraphBatch, config, run, gen) -> dict[str, list]:
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.layout_lr, weight_decay=0.01)
    history = {"train": [], "val": []}
    for _ in run.progress(range(config.layout_epochs), "graph -> layout"):
        model.train()
        losses = []
        for batch in torch.randperm(len(train), generator=gen).split(config.batch_size):
            g = train[batch].to(run.device)
            with run.autocast():
                loss = layout_loss(model(g), g)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            losses.append(loss.item())
        history["train"].append(sum(losses) / len(losses))
        history["val"].append(layout_loss(predict_layout(model, val, run), val).item())
    return history


@torch.no_grad()
def predict_layout(model: GraphToLayout, graphs: GraphBatch, run, batch: int = 512) -> torch.Tensor:
    model.eval()
    out = []
    for start in range(0, len(graphs), batch):
        with run.autocast():
            out.append(model(graphs[start:start + batch].to(run.device)).float().cpu())
    return torch.cat(out)


# ---- image <-> VQ tokens ------------------------------------------------------------------------

def vq_model(config) -> VQModel:
    """A small VQModel: len(vq_channels) - 1 halvings of the image side, ``vq_codes`` codes."""
    n = len(config.vq_channels)
    return VQModel(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * n,
                   up_block_types=("UpDecoderBlock2D",) * n, block_out_channels=config.vq_channels,
                   layers_per_block=1, latent_channels=config.vq_dim, num_vq_embeddings=config.vq_codes,
                   vq_embed_dim=config.vq_dim, norm_num_groups=min(8, config.vq_channels[0]),
                   sample_size=config.image_size)


def vq_forward(vq: VQModel, x: torch.Tensor):
    """(reconstruction, commitment loss, code indices (B, h*w)) of images x in [-1, 1]."""
    h = vq.encode(x).latents
    quant, commit, (_, _, idx) = vq.quantize(h)
    return vq.decode(quant, force_not_quantize=True).sample, commit, idx.reshape(len(x), -1)


def to_model_images(images) -> torch.Tensor:
    """(N, H, W, 3) in [0, 1] -> (N, 3, H, W) in [-1, 1]."""
    return torch.as_tensor(images).permute(0, 3, 1, 2) * 2 - 1


def train_vq(vq: VQModel, images, val_images, config, run, gen) -> dict[str, list]:
    x_all = to_model_images(images)
    optimiser = torch.optim.Adam(vq.parameters(), lr=config.vq_lr)
    history = {"train": [], "val": [], "codes_used": []}
    usage = torch.zeros(config.vq_codes)
    step = 0
    for epoch in run.progress(range(config.vq_epochs), "VQ-VAE"):
        vq.train()
        losses = []
        restarts = epoch < config.vq_epochs - 1 or config.vq_epochs == 1  # the last epoch settles the codes in
        for batch in torch.randperm(len(x_all), generator=gen).split(config.vq_batch_size):
            x = x_all[batch].to(run.device)
            with run.autocast():
                if step == 0:  # start the codebook from encoder outputs instead of near-zero vectors
                    restart_codes(vq, x, torch.ones(config.vq_codes, dtype=torch.bool), gen)
                recon, commit, idx = vq_forward(vq, x)
                mse = F.mse_loss(recon.float(), x)
                loss = mse + commit.float().mean()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            usage += torch.bincount(idx.flatten().cpu(), minlength=config.vq_codes)
            step += 1
            if step % config.vq_restart_every == 0:
                if restarts:
                    with run.autocast():
                        restart_codes(vq, x, usage == 0, gen)
                history["codes_used"].append(int((usage > 0).sum()))
                usage.zero_()
            losses.append(mse.item())
        history["train"].append(sum(losses) / len(losses))
        recon = reconstruct(vq, val_images, run)
        history["val"].append(4 * float(((recon - val_images) ** 2).mean()))  # MSE in [-1, 1] units, as in training
    return history


@torch.no_grad()
def restart_codes(vq: VQModel, x: torch.Tensor, dead: torch.Tensor, gen) -> None:
    """Move the codes flagged ``dead`` onto encoder outputs of the batch ``x``, picked at random."""
    if not dead.any():
        return
    z = vq.encode(x).latents.float().permute(0, 2, 3, 1).reshape(-1, vq.quantize.vq_embed_dim)
    pick = torch.randint(len(z), (int(dead.sum()),), generator=gen)
    weight = vq.quantize.embedding.weight
    weight[dead.to(weight.device)] = z[pick.to(z.device)].to(weight.dtype)


@torch.no_grad()
def encode_tokens(vq: VQModel, images, run, batch: int = 256) -> torch.Tensor:
    vq.eval()
    x_all = to_model_images(images)
    out = []
    for start in range(0, len(x_all), batch):
        with run.autocast():
            h = vq.encode(x_all[start:start + batch].to(run.device)).latents
            out.append(vq.quantize(h)[2][2].reshape(len(h), -1).cpu())
    return torch.cat(out)


@torch.no_grad()
def decode_tokens(vq: VQModel, tokens: torch.Tensor, grid: int, run, batch: int = 256):
    """Tokens (N, grid * grid) -> images (N, H, W, 3) in [0, 1] as numpy."""
    vq.eval()
    out = []
    for start in range(0, len(tokens), batch):
        t = tokens[start:start + batch].to(run.device)
        with run.autocast():
            quant = vq.quantize.get_codebook_entry(t.flatten(), (len(t), grid, grid, vq.quantize.vq_embed_dim))
            out.append(vq.decode(quant, force_not_quantize=True).sample.float().cpu())
    return ((torch.cat(out).clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).numpy()


@torch.no_grad()
def reconstruct(vq: VQModel, images, run, batch: int = 256):
    vq.eval()
    x_all, out = to_model_images(images), []
    for start in range(0, len(x_all), batch):
        with run.autocast():
            out.append(vq_forward(vq, x_all[start:start + batch].to(run.device))[0].float().cpu())
    return ((torch.cat(out).clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).numpy()


# ---- layout -> tokens ---------------------------------------------------------------------------

def cell_coverage(boxes: torch.Tensor, grid: int) -> torch.Tensor:
    """Fraction of each grid cell covered by each box: (B, N, 4) -> (B, N, grid * grid), raster order."""
    edges = torch.arange(grid + 1, device=boxes.device, dtype=boxes.dtype) / grid
    lo, hi = edges[:-1], edges[1:]
    cover = lambda a, b: ((torch.minimum(b[..., None], hi) - torch.maximum(a[..., None], lo)).clamp_min(0) * grid)  # noqa: E731
    cx, cy = cover(boxes[..., 0], boxes[..., 2]), cover(boxes[..., 1], boxes[..., 3])  # (B, N, grid) each
    return (cy[..., :, None] * cx[..., None, :]).flatten(-2)


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
        """(memory (B, N, d), layout map (B, T, d)) for the layout."""
        emb = self.objects(attrs)
        memory = self.memory_norm(emb + self.box(boxes))
        coverage = cell_coverage(boxes, self.grid) * obj_mask[..., None]  # (B, N, T)
        return memory, torch.einsum("bnt,bnd->btd", coverage, self.map_proj(emb))

    def forward(self, tokens, memory, layout_map, obj_mask) -> torch.Tensor:
        """Logits (B, L, codes) for positions 0..L-1 given tokens (B, L) (position i sees tokens < i)."""
        b, length = tokens.shape
        start = torch.full((b, 1), self.codes, dtype=torch.long, device=tokens.device)
        inputs = torch.cat([start, tokens[:, :-1]], dim=1)
        x = self.token(inputs) + self.position.weight[:length] + layout_map[:, :length]
        causal = nn.Transformer.generate_square_subsequent_mask(length, device=tokens.device)
        out = self.decoder(x, memory, tgt_mask=causal, tgt_is_causal=True, memory_key_padding_mask=~obj_mask)
        return self.head(out)


def ar_loss(model: LayoutToTokens, tokens, g: GraphBatch, boxes) -> torch.Tensor:
    memory, layout_map = model.condition(g.attrs, boxes, g.obj_mask)
    logits = model(tokens, memory, layout_map, g.obj_mask)
    return F.cross_entropy(logits.float().reshape(-1, model.codes), tokens.reshape(-1))


def train_ar(model: LayoutToTokens, tokens, graphs: GraphBatch, val_tokens, val_graphs, config, run, gen):
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.ar_lr, weight_decay=0.01)
    history = {"train": [], "val": []}
    for _ in run.progress(range(config.ar_epochs), "layout -> tokens"):
        model.train()
        losses = []
        for batch in torch.randperm(len(tokens), generator=gen).split(config.batch_size):
            g = graphs[batch].to(run.device)
            # jitter the true boxes a little: at test time the boxes come from the layout model
            boxes = g.boxes + config.box_jitter * torch.randn(g.boxes.shape, generator=gen).to(run.device)
            with run.autocast():
                loss = ar_loss(model, tokens[batch].to(run.device), g, boxes)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            losses.append(loss.item())
        history["train"].append(sum(losses) / len(losses))
        model.eval()
        with torch.no_grad(), run.autocast():
            g = val_graphs.to(run.device)
            history["val"].append(ar_loss(model, val_tokens.to(run.device), g, g.boxes).item())
    return history


@torch.no_grad()
def sample_tokens(model: LayoutToTokens, attrs, boxes, obj_mask, config, run, gen, batch: int = 256) -> torch.Tensor:
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
            with run.autocast():
                logits = model(tokens[:, :t + 1], memory, layout_map, m)[:, t].float() / config.temperature
            if config.top_k:
                kth = logits.topk(config.top_k, dim=-1).values[:, -1:]
                logits = logits.masked_fill(logits < kth, float("-inf"))
            probs = torch.softmax(logits, dim=-1).cpu()
            tokens[:, t] = torch.multinomial(probs, 1, generator=gen)[:, 0].to(run.device)
        out.append(tokens.cpu())
    return torch.cat(out)

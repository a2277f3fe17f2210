"""Measures: layout mIoU and relation satisfaction (boxes), colour and relations read back from
images, edit success, and FID on the standard FID Inception (features computed once per image set)."""

from __future__ import annotations

import numpy as np
import torch

from reproductions.metrics.images import fid_inception, fid_kid
from reproductions.paper8_scene_graph_transformer.models import box_iou
from reproductions.paper8_scene_graph_transformer.scenes import PREDICATES, SIZES, GraphBatch, Scene, colour_map


def miou(pred: torch.Tensor, g: GraphBatch) -> float:
    """Mean IoU of each real object's predicted box with its true box."""
    return float(box_iou(pred[g.obj_mask], g.boxes[g.obj_mask]).mean())


def holds(sub, obj, predicate: int) -> bool:
    """Whether centre ``sub`` stands in ``predicate`` to centre ``obj`` (x right, y down)."""
    name = PREDICATES[predicate]
    if name == "left of":
        return sub[0] < obj[0]
    if name == "right of":
        return sub[0] > obj[0]
    if name == "above":
        return sub[1] < obj[1]
    return sub[1] > obj[1]


def relation_satisfaction(boxes: torch.Tensor, g: GraphBatch) -> float:
    """Fraction of the graphs' relations that the boxes' centres satisfy (strictly)."""
    centres = torch.stack([(boxes[..., 0] + boxes[..., 2]) / 2, (boxes[..., 1] + boxes[..., 3]) / 2], -1).numpy()
    ok = [holds(centres[b, s], centres[b, o], p)
          for b, r in torch.nonzero(g.rel_mask).tolist() for s, p, o in [g.rels[b, r].tolist()]]
    return float(np.mean(ok)) if ok else float("nan")


def baseline_layouts(train: GraphBatch, test: GraphBatch, rng: np.random.Generator) -> dict[str, torch.Tensor]:
    """Boxes that ignore the relations: every object at the training set's mean centre, or at a
    uniformly random centre; both with the mean width and height of its size class (known from the graph)."""
    m = train.obj_mask
    centre = ((train.boxes[m][:, :2] + train.boxes[m][:, 2:]) / 2).mean(0)
    wh = torch.stack([(train.boxes[m][train.attrs[m][:, 2] == s][:, 2:] - train.boxes[m][train.attrs[m][:, 2] == s][:, :2]).mean(0)
                      for s in range(len(SIZES))])
    half = wh[test.attrs[..., 2]] / 2  # (B, N, 2)
    random_centre = torch.as_tensor(rng.uniform(half.numpy(), 1 - half.numpy()), dtype=torch.float32)
    as_boxes = lambda c: torch.cat([c - half, c + half], -1)  # noqa: E731
    return {"mean position": as_boxes(centre.expand_as(half)), "random position": as_boxes(random_centre)}


# ---- reading generated images -------------------------------------------------------------------

def colour_in_box(images: np.ndarray, scenes: list[Scene], boxes: torch.Tensor) -> float:
    """Fraction of objects whose box (here: the predicted one) holds mostly the object's colour.

    The most frequent palette colour among the coloured pixels inside the box must be the object's."""
    colours = colour_map(images)
    size = images.shape[1]
    hits = []
    for i, scene in enumerate(scenes):
        for j, obj in enumerate(scene.objects):
            x0, y0, x1, y1 = (int(round(float(v) * size)) for v in boxes[i, j].clamp(0, 1))
            patch = colours[i, y0:max(y1, y0 + 1), x0:max(x1, x0 + 1)]
            found = patch[patch >= 0]
            hits.append(bool(len(found)) and np.bincount(found).argmax() == obj.colour)
    return float(np.mean(hits))


def colour_centroids(colours: np.ndarray) -> dict[int, tuple[float, float]]:
    """Centre (x, y) in [0, 1] of the pixels of each palette colour present in one image's colour map."""
    size = colours.shape[0]
    out = {}
    for c in np.unique(colours[colours >= 0]):
        ys, xs = np.nonzero(colours == c)
        if len(xs) >= 2:  # a stray pixel is not an object
            out[int(c)] = ((xs.mean() + 0.5) / size, (ys.mean() + 0.5) / size)
    return out


def checkable(scene: Scene, k: int) -> bool:
    """Relation k can be read from an image when its subject's and object's colours are unique in the scene."""
    s, _, o = scene.relations[k]
    colours = [obj.colour for obj in scene.objects]
    return colours.count(colours[s]) == 1 and colours.count(colours[o]) == 1


def image_relations(images: np.ndarray, scenes: list[Scene], pairs=None) -> tuple[float, int]:
    """(fraction satisfied, count) of the checkable relations read back from the images by the
    centroids of the subject's and object's colours; a colour missing from the image counts as not
    satisfied. ``pairs`` (image index, scene, relation index) restricts the check."""
    colours = colour_map(images)
    if pairs is None:
        pairs = [(i, s, k) for i, s in enumerate(scenes) for k in range(len(s.relations)) if checkable(s, k)]
    ok = []
    for i, scene, k in pairs:
        s, p, o = scene.relations[k]
        found = colour_centroids(colours[i])
        a, b = found.get(scene.objects[s].colour), found.get(scene.objects[o].colour)
        ok.append(a is not None and b is not None and holds(a, b, p))
    return (float(np.mean(ok)) if ok else float("nan")), len(ok)


# ---- FID ----------------------------------------------------------------------------------------

class Precomputed(torch.nn.Module):
    """Hands FID Inception features computed beforehand to ``fid_kid`` (so each set is embedded once)."""

    def __init__(self, num_features: int = 2048):
        super().__init__()
        self.num_features = num_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


@torch.no_grad()
def inception_features(sets: dict[str, np.ndarray], run, batch: int = 50) -> dict[str, torch.Tensor]:
    """2048-d FID Inception features of each image set ((N, H, W, 3) in [0, 1])."""
    net = fid_inception().to(run.device)
    total = sum(len(v) for v in sets.values())
    bar = run.progress(range(total), "FID Inception features", total=total)
    out = {}
    for name, images in sets.items():
        x = torch.as_tensor(images).permute(0, 3, 1, 2)
        feats = []
        for chunk in x.split(batch):
            feats.append(net(chunk.to(run.device)).float().cpu())
            bar.update(len(chunk))
        out[name] = torch.cat(feats)
    bar.close()
    return out


def fid(features: dict[str, torch.Tensor], real: str, fake: str) -> dict[str, float]:
    return fid_kid(features[real].numpy(), features[fake].numpy(), features=Precomputed(), batch=4096)


def edit_moves(before: np.ndarray, after: np.ndarray, edited: list[Scene], ks: list[int]) -> float:
    """Fraction of edits after which the subject sits further in the new predicate's direction,
    relative to the object, than before (read from the colour centroids of the two images)."""
    sign = {"left of": (0, -1), "right of": (0, 1), "above": (1, -1), "below": (1, 1)}
    cb, ca = colour_map(before), colour_map(after)
    moved = []
    for i, (scene, k) in enumerate(zip(edited, ks)):
        s, p, o = scene.relations[k]
        axis, direction = sign[PREDICATES[p]]
        fb, fa = colour_centroids(cb[i]), colour_centroids(ca[i])
        cs, co = scene.objects[s].colour, scene.objects[o].colour
        if not all(c in f for c in (cs, co) for f in (fb, fa)):
            moved.append(False)
            continue
        offset = lambda f: f[cs][axis] - f[co][axis]  # noqa: E731
        moved.append(direction * (offset(fa) - offset(fb)) > 0)
    return float(np.mean(moved)) if moved else float("nan")

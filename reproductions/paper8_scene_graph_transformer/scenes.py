"""Paper 8's data set: CLEVR-like synthetic scenes, their scene graphs, and reading them back from pixels.

A scene is a list of objects (shape, colour, size, box) placed without overlap; its scene graph
is the objects' attributes plus one relation for every pair of objects, read off the positions:
the axis along which the two centres differ most decides between left of / right of and
above / below. Images are drawn with Pillow at 4x the size and downsampled (anti-aliased edges).
Everything is drawn from an explicit ``numpy.random.Generator``.

Reading back: each pixel is given its nearest palette colour (``colour_map``), from which the
measures of ``model.py`` tell whether an object's colour fills its box, where each colour's centroid
sits, and so whether a relation holds in an image; and what shape an object has (``ShapeReader``:
the pixels of the object's colour around its box, cropped to their own extent and resized to a
small square, classified by a logistic regression trained on crops of real rendered scenes).
A helper module of ``model.py`` rather than a part of it: it is a data set of its own (drawing and
reading the palette and the shapes) that knows nothing of the networks, and with it inside,
model.py would be too long to read in one sitting.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageDraw
from sklearn.linear_model import LogisticRegression

SHAPES = ("circle", "square", "triangle")
COLOURS = {  # RGB in [0, 1]; far apart so that a pixel's colour can be read back (see colour_map)
    "red": (0.90, 0.15, 0.15), "green": (0.15, 0.75, 0.20), "blue": (0.20, 0.30, 0.95),
    "yellow": (0.95, 0.85, 0.15), "purple": (0.65, 0.20, 0.80), "cyan": (0.10, 0.85, 0.85),
}
COLOUR_NAMES = tuple(COLOURS)
SIZES = {"small": 0.2, "large": 0.3}  # side of the object's box as a fraction of the image side
SIZE_NAMES = tuple(SIZES)
PREDICATES = ("left of", "right of", "above", "below")
OPPOSITE = {"left of": "right of", "right of": "left of", "above": "below", "below": "above"}
BACKGROUND = (0.45, 0.45, 0.45)
SUPERSAMPLE = 4


@dataclass(frozen=True)
class SceneObject:
    shape: int  # index into SHAPES
    colour: int  # index into COLOUR_NAMES
    size: int  # index into SIZE_NAMES
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in [0, 1], y downwards

    @property
    def centre(self) -> tuple[float, float]:
        return (self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2

    def describe(self) -> str:
        return f"{SIZE_NAMES[self.size]} {COLOUR_NAMES[self.colour]} {SHAPES[self.shape]}"


@dataclass(frozen=True)
class Scene:
    objects: tuple[SceneObject, ...]
    relations: tuple[tuple[int, int, int], ...]  # (subject index, predicate index, object index)

    def graph_text(self, per_line: int = 3) -> list[str]:
        """The scene graph as lines: objects, then the relations, ``per_line`` to a line."""
        lines = [f"{i}: {o.describe()}" for i, o in enumerate(self.objects)]
        rels = [f"{s} {PREDICATES[p]} {o}" for s, p, o in self.relations]
        return lines + ["; ".join(rels[i:i + per_line]) for i in range(0, len(rels), per_line)]


def relation(a: tuple[float, float], b: tuple[float, float]) -> int:
    """The predicate of ``a`` with respect to ``b`` (centres, y downwards)."""
    dx, dy = b[0] - a[0], b[1] - a[1]
    if abs(dx) >= abs(dy):
        return PREDICATES.index("left of" if dx > 0 else "right of")
    return PREDICATES.index("above" if dy > 0 else "below")


def relations_of(boxes) -> tuple[tuple[int, int, int], ...]:
    centres = [((b[0] + b[2]) / 2, (b[1] + b[3]) / 2) for b in boxes]
    return tuple((i, relation(centres[i], centres[j]), j)
                 for i in range(len(boxes)) for j in range(i + 1, len(boxes)))


def sample_scene(rng: np.random.Generator, min_objects: int = 2, max_objects: int = 5, gap: float = 0.03) -> Scene:
    """A scene of ``min_objects``..``max_objects`` objects whose boxes keep ``gap`` apart."""
    while True:  # a placement that fails restarts the whole scene (rare with at most 5 objects)
        n = int(rng.integers(min_objects, max_objects + 1))
        objects: list[SceneObject] = []
        for _ in range(n):
            shape, colour, size = int(rng.integers(len(SHAPES))), int(rng.integers(len(COLOURS))), int(rng.integers(2))
            side = SIZES[SIZE_NAMES[size]]
            for _attempt in range(100):
                x0, y0 = rng.uniform(0.02, 0.98 - side, size=2)
                box = (float(x0), float(y0), float(x0 + side), float(y0 + side))
                if all(box[0] > o.box[2] + gap or o.box[0] > box[2] + gap or box[1] > o.box[3] + gap
                       or o.box[1] > box[3] + gap for o in objects):
                    objects.append(SceneObject(shape, colour, size, box))
                    break
            else:
                break
        if len(objects) == n:
            return Scene(tuple(objects), relations_of([o.box for o in objects]))


def render(objects, size: int) -> np.ndarray:
    """An RGB image (size, size, 3) in [0, 1] of objects given by (shape, colour, box) attributes."""
    big = size * SUPERSAMPLE
    image = Image.new("RGB", (big, big), tuple(int(255 * c) for c in BACKGROUND))
    draw = ImageDraw.Draw(image)
    for o in objects:
        x0, y0, x1, y1 = (v * big for v in o.box)
        fill = tuple(int(255 * c) for c in COLOURS[COLOUR_NAMES[o.colour]])
        if SHAPES[o.shape] == "circle":
            draw.ellipse((x0, y0, x1, y1), fill=fill)
        elif SHAPES[o.shape] == "square":
            draw.rectangle((x0, y0, x1, y1), fill=fill)
        else:
            draw.polygon([((x0 + x1) / 2, y0), (x1, y1), (x0, y1)], fill=fill)
    image = image.resize((size, size), Image.Resampling.BOX)
    return np.asarray(image, dtype=np.float32) / 255.0


def edit_relation(scene: Scene, k: int) -> Scene:
    """The scene graph with relation ``k`` turned into its opposite (objects and boxes unchanged:
    only the graph is edited; the layout model then places the objects anew)."""
    s, p, o = scene.relations[k]
    flipped = PREDICATES.index(OPPOSITE[PREDICATES[p]])
    return Scene(scene.objects, scene.relations[:k] + ((s, flipped, o),) + scene.relations[k + 1:])


# ---- tensors ------------------------------------------------------------------------------------

@dataclass
class GraphBatch:
    """Scene graphs padded to ``max_objects`` objects and ``max_objects choose 2`` relations."""
    attrs: torch.Tensor  # (B, N, 3) long: shape, colour, size
    obj_mask: torch.Tensor  # (B, N) bool, True for a real object
    rels: torch.Tensor  # (B, M, 3) long: subject index, predicate, object index
    rel_mask: torch.Tensor  # (B, M) bool
    boxes: torch.Tensor  # (B, N, 4) float, the true boxes (zeros where padded)

    def __getitem__(self, index) -> GraphBatch:
        return GraphBatch(*(t[index] for t in (self.attrs, self.obj_mask, self.rels, self.rel_mask, self.boxes)))

    def __len__(self) -> int:
        return len(self.attrs)

    def to(self, device) -> GraphBatch:
        return GraphBatch(*(t.to(device) for t in (self.attrs, self.obj_mask, self.rels, self.rel_mask, self.boxes)))


def to_batch(scenes: list[Scene], max_objects: int) -> GraphBatch:
    b, n, m = len(scenes), max_objects, max_objects * (max_objects - 1) // 2
    attrs, obj_mask = torch.zeros(b, n, 3, dtype=torch.long), torch.zeros(b, n, dtype=torch.bool)
    rels, rel_mask = torch.zeros(b, m, 3, dtype=torch.long), torch.zeros(b, m, dtype=torch.bool)
    boxes = torch.zeros(b, n, 4)
    for i, scene in enumerate(scenes):
        for j, o in enumerate(scene.objects):
            attrs[i, j] = torch.tensor([o.shape, o.colour, o.size])
            boxes[i, j] = torch.tensor(o.box)
        obj_mask[i, :len(scene.objects)] = True
        if scene.relations:
            rels[i, :len(scene.relations)] = torch.tensor(scene.relations)
            rel_mask[i, :len(scene.relations)] = True
    return GraphBatch(attrs, obj_mask, rels, rel_mask, boxes)


@dataclass
class SceneSet:
    scenes: list[Scene]
    images: np.ndarray  # (N, size, size, 3) float32 in [0, 1]
    graphs: GraphBatch


def make_scenes(n: int, size: int, rng: np.random.Generator, min_objects: int, max_objects: int) -> SceneSet:
    scenes = [sample_scene(rng, min_objects, max_objects) for _ in range(n)]
    images = np.stack([render(s.objects, size) for s in scenes]) if scenes else np.zeros((0, size, size, 3), np.float32)
    return SceneSet(scenes, images, to_batch(scenes, max_objects))


# ---- reading scenes back from an image ----------------------------------------------------------

def colour_map(images: np.ndarray, threshold: float = 0.25) -> np.ndarray:
    """Per pixel, the index of the nearest palette colour, or -1 for background / unclear pixels.

    images: (N, H, W, 3) in [0, 1] -> (N, H, W) int. A pixel counts when it is nearer to a palette
    colour than ``threshold`` (Euclidean RGB) and nearer to it than to the background grey."""
    palette = np.array([COLOURS[c] for c in COLOUR_NAMES], np.float32)
    dist = np.linalg.norm(images[..., None, :] - palette, axis=-1)  # (N, H, W, C)
    nearest = dist.argmin(-1)
    best = dist.min(-1)
    background = np.linalg.norm(images - np.array(BACKGROUND, np.float32), axis=-1)
    return np.where((best < threshold) & (best < background), nearest, -1)


TIE = 1e-6  # centres closer than this along an axis are level: equal centres differ by float rounding alone


def holds(sub, obj, predicate: int) -> bool:
    """Whether centre ``sub`` stands in ``predicate`` to centre ``obj`` (x right, y down), strictly:
    centres level to within ``TIE`` satisfy no relation."""
    name = PREDICATES[predicate]
    if name == "left of":
        return sub[0] < obj[0] - TIE
    if name == "right of":
        return sub[0] > obj[0] + TIE
    if name == "above":
        return sub[1] < obj[1] - TIE
    return sub[1] > obj[1] + TIE


def colour_in_box(images: np.ndarray, scenes: list[Scene], boxes: torch.Tensor) -> float:
    """Fraction of objects whose box (here: the predicted one) holds mostly the object's colour.

    The most frequent palette colour among the coloured pixels inside the box must be the object's."""
    colours = colour_map(images)  # (N, H, W)
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
        moved.append(direction * ((fa[cs][axis] - fa[co][axis]) - (fb[cs][axis] - fb[co][axis])) > 0)
    return float(np.mean(moved)) if moved else float("nan")


# ---- reading shapes back ------------------------------------------------------------------------

CROP = 10  # side of the square an object's mask is resized to before it is classified
CROP_MARGIN = 0.25  # the box is widened by this share of its side on each side before the colour is looked for


def object_crops(images: np.ndarray, scenes: list[Scene], boxes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each object whose colour is unique in its scene, as (masks (K, CROP * CROP), shapes (K,), found (K,)).

    The object's box (here: the given one, true or predicted) is widened by ``CROP_MARGIN``; the
    pixels of the object's colour in it are cropped to their own extent (so that a box a little off
    or a little too large does not matter) and resized to CROP x CROP. Fewer than 3 such pixels: not
    found (a zero mask)."""
    colours = colour_map(images)  # (N, H, W)
    size = images.shape[1]
    masks, shapes, found = [], [], []
    for i, scene in enumerate(scenes):
        palette = [o.colour for o in scene.objects]
        for j, obj in enumerate(scene.objects):
            if palette.count(obj.colour) != 1:
                continue
            x0, y0, x1, y1 = (float(v) for v in boxes[i, j])
            pad = CROP_MARGIN * max(x1 - x0, y1 - y0)
            px0, py0 = (max(0, int(np.floor((v - pad) * size))) for v in (x0, y0))
            px1, py1 = (min(size, int(np.ceil((v + pad) * size))) for v in (x1, y1))
            mask = colours[i, py0:max(py1, py0 + 1), px0:max(px1, px0 + 1)] == obj.colour
            shapes.append(obj.shape)
            if mask.sum() < 3:
                masks.append(np.zeros(CROP * CROP, np.float32))
                found.append(False)
                continue
            ys, xs = np.nonzero(mask)
            tight = mask[ys.min():ys.max() + 1, xs.min():xs.max() + 1].astype(np.float32)
            resized = Image.fromarray(tight).resize((CROP, CROP), Image.Resampling.BILINEAR)
            masks.append(np.asarray(resized, np.float32).ravel())
            found.append(True)
    return (np.array(masks, np.float32).reshape(-1, CROP * CROP), np.array(shapes, int), np.array(found, bool))


class ShapeReader:
    """A logistic regression on object crops (``object_crops``) of real rendered scenes with their
    true boxes: the instrument that reads an object's shape back from an image."""

    def __init__(self, real: SceneSet):
        masks, shapes, found = object_crops(real.images, real.scenes, real.graphs.boxes)
        self.classifier = LogisticRegression(C=1.0, max_iter=2000).fit(masks[found], shapes[found])

    def accuracy(self, images: np.ndarray, scenes: list[Scene], boxes, permutation: np.ndarray | None = None) -> float:
        """Fraction of the objects (unique colour) read as their shape; an object not found counts as
        wrong. ``permutation`` (over the objects checked) judges each crop against another object's
        shape: the mismatched control, near chance."""
        masks, shapes, found = object_crops(images, scenes, boxes)
        if not len(shapes):
            return float("nan")
        if permutation is not None:
            shapes = shapes[permutation[:len(shapes)] % len(shapes)]
        return float(np.mean(found & (self.classifier.predict(masks) == shapes)))


def count_checked_objects(scenes: list[Scene]) -> int:
    """How many objects the shape check reads: those whose colour is unique in their scene."""
    return sum(1 for s in scenes for o in s.objects if [p.colour for p in s.objects].count(o.colour) == 1)

"""paper8 (scene graph -> layout -> VQ tokens -> image) end to end in its smoke profile on CPU, through
the CLI, into a temporary folder; and its pieces: scenes and their graphs, the colour read-back, box
IoU, the layout map, the causal image transformer, seeded sampling, edits and config validation."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from reproductions.config import ConfigError, apply_overrides
from reproductions.paper8_scene_graph_transformer import PRESETS, Config, choose_edits, evaluate, models
from reproductions.paper8_scene_graph_transformer.scenes import (COLOUR_NAMES, PREDICATES, SceneObject, colour_map,
                                                                 edit_relation, make_scenes, relations_of, render)
from tests.conftest import needs_data, smoke_run


@pytest.fixture
def one_thread():
    """One torch thread: on a shared 2-core machine, two OpenMP threads make small ops crawl."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.slow
@needs_data("fid-inception")
def test_paper8_smoke_run_writes_a_complete_run_folder(tmp_path, one_thread):
    folder, info = smoke_run("paper8", tmp_path, "--set", "top_k=8", seed=3)
    assert json.loads((folder / "config.json").read_text())["top_k"] == 8
    metrics = json.loads((folder / "metrics.json").read_text())
    layout = metrics["layout"]
    assert set(layout) == {"SG transformer", "mean position", "random position"}
    for scores in layout.values():
        assert 0 <= scores["miou"] <= 1 and 0 <= scores["relations_satisfied"] <= 1
    assert layout["mean position"]["relations_satisfied"] == 0  # every centre equal: no strict relation holds
    assert 5 < metrics["vq"]["psnr_db"] < 60 and 1 <= metrics["vq"]["codes_used"] <= 128
    assert metrics["images"]["colour_in_box"]["real (true boxes)"] > 0.95  # the read-back works on real scenes
    assert metrics["images"]["relations_read"]["real"] > 0.95
    fid = metrics["fid"]
    assert all(np.isfinite(v["fid"]) and v["fid"] >= 0 for v in fid.values())
    assert fid["second real set"]["fid"] < fid["generated"]["fid"]  # smoke models are far from real
    assert metrics["edits"]["n"] == PRESETS["smoke"].edits
    assert {len(h["train"]) for h in metrics["training"].values()} == {12, 2, 3}

    doc = json.loads((folder / "results.json").read_text())
    assert doc["status"] == "completed" and doc["data"][0]["kind"] == "synthetic"
    context = [r for r in doc["rows"] if "not a like-for-like target" in r["setting"]]
    assert {(r["metric"], r["setting"].split(" (")[0], r["paper"]) for r in context} == {
        ("IS", "COCO", 13.7), ("FID", "COCO", 52.3), ("IS", "Visual Genome", 12.8), ("FID", "Visual Genome", 60.3)}
    assert all(r["ours"] is None for r in context)
    ours = [r for r in doc["rows"] if r not in context]
    assert {r["paper_text"] for r in ours} == {"not reported"}
    assert any(r["metric"] == "Layout mIoU" and r["ours"] is not None for r in ours)
    assert [r["ours"] for r in ours if r["metric"] == "IS"] == [None]  # Inception Score not measured
    assert len(doc["claims"]) == 4 and all(c["evidence"] for c in doc["claims"])
    assert [c["held"] for c in doc["claims"]][3] is None  # COCO / VG comparison: not testable here
    assert {c["held"] for c in doc["claims"][:3]} <= {True, False}
    assert len(doc["figures"]) == 3
    for figure in doc["figures"]:
        assert (folder / figure).read_bytes()[:4] == b"\x89PNG"
    md = (folder / "results.md").read_text()
    assert "smoke run" in md and "synthetic" in md


# ---- scenes -------------------------------------------------------------------------------------

def test_scenes_are_seeded_non_overlapping_and_their_relations_follow_the_positions():
    a, b = (make_scenes(30, 32, np.random.default_rng(7), 2, 5) for _ in range(2))
    assert np.array_equal(a.images, b.images) and a.scenes == b.scenes
    assert a.images.shape == (30, 32, 32, 3) and 0 <= a.images.min() and a.images.max() <= 1
    for scene in a.scenes:
        assert 2 <= len(scene.objects) <= 5 and len(scene.relations) == len(scene.objects) * (len(scene.objects) - 1) // 2
        boxes = [o.box for o in scene.objects]
        for i, p in enumerate(boxes):
            assert 0 <= p[0] < p[2] <= 1 and 0 <= p[1] < p[3] <= 1
            for q in boxes[i + 1:]:  # no two boxes overlap
                assert p[2] < q[0] or q[2] < p[0] or p[3] < q[1] or q[3] < p[1]
        for s, pred, o in scene.relations:
            (sx, sy), (ox, oy) = scene.objects[s].centre, scene.objects[o].centre
            assert evaluate.holds((sx, sy), (ox, oy), pred)
            horizontal = PREDICATES[pred] in ("left of", "right of")
            assert horizontal == (abs(sx - ox) >= abs(sy - oy))


def test_relations_of_named_positions():
    left, right, top = (0.1, 0.4, 0.2, 0.5), (0.7, 0.4, 0.8, 0.5), (0.45, 0.0, 0.55, 0.1)
    assert [(s, PREDICATES[p], o) for s, p, o in relations_of([left, right, top])] == [
        (0, "left of", 1), (0, "below", 2), (1, "below", 2)]


def test_colour_read_back_finds_each_rendered_object_where_it_was_drawn():
    objects = [SceneObject(0, COLOUR_NAMES.index("red"), 1, (0.05, 0.05, 0.35, 0.35)),
               SceneObject(1, COLOUR_NAMES.index("blue"), 1, (0.6, 0.6, 0.9, 0.9))]
    image = render(objects, 32)[None]
    colours = colour_map(image)
    assert set(np.unique(colours)) == {-1, COLOUR_NAMES.index("red"), COLOUR_NAMES.index("blue")}
    found = evaluate.colour_centroids(colours[0])
    assert found[COLOUR_NAMES.index("red")][0] < 0.3 and found[COLOUR_NAMES.index("blue")][1] > 0.7
    scenes = make_scenes(10, 32, np.random.default_rng(1), 2, 5)
    assert evaluate.colour_in_box(scenes.images, scenes.scenes, scenes.graphs.boxes) == 1.0
    assert evaluate.image_relations(scenes.images, scenes.scenes)[0] == 1.0
    blank = np.full_like(scenes.images, 0.45)  # nothing drawn: no colour, no relation
    assert evaluate.colour_in_box(blank, scenes.scenes, scenes.graphs.boxes) == 0.0
    assert evaluate.image_relations(blank, scenes.scenes)[0] == 0.0


def test_edit_flips_one_relation_and_edits_are_readable():
    scenes = make_scenes(20, 32, np.random.default_rng(2), 3, 5).scenes
    edited = edit_relation(scenes[0], 1)
    assert edited.relations[0] == scenes[0].relations[0] and edited.relations[2:] == scenes[0].relations[2:]
    (s, p, o), (s2, p2, o2) = scenes[0].relations[1], edited.relations[1]
    assert (s, o) == (s2, o2) and {PREDICATES[p], PREDICATES[p2]} in ({"left of", "right of"}, {"above", "below"})
    chosen = choose_edits(scenes, 5, np.random.default_rng(0))
    assert len(chosen) == 5 and all(evaluate.checkable(scenes[i], k) for i, k in chosen)


# ---- boxes and layouts --------------------------------------------------------------------------

def test_box_iou_against_its_formula():
    a = torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 0.2, 0.2], [0.1, 0.1, 0.3, 0.4]])
    b = torch.tensor([[0.25, 0.25, 0.75, 0.75], [0.5, 0.5, 0.7, 0.7], [0.1, 0.1, 0.3, 0.4]])
    expected = torch.tensor([0.0625 / (0.25 + 0.25 - 0.0625), 0.0, 1.0])
    assert torch.allclose(models.box_iou(a, b), expected)


def test_baselines_and_relation_satisfaction():
    sets = make_scenes(40, 32, np.random.default_rng(3), 2, 5)
    g = sets.graphs
    assert evaluate.relation_satisfaction(g.boxes, g) == 1.0 and evaluate.miou(g.boxes, g) == pytest.approx(1.0)
    base = evaluate.baseline_layouts(g, g, np.random.default_rng(0))
    assert evaluate.relation_satisfaction(base["mean position"], g) == 0.0
    widths = base["random position"][..., 2] - base["random position"][..., 0]
    assert torch.allclose(widths[g.obj_mask], (g.boxes[..., 2] - g.boxes[..., 0])[g.obj_mask], atol=1e-5)
    assert base["random position"][g.obj_mask].min() >= 0 and base["random position"][g.obj_mask].max() <= 1


def test_layout_model_gives_valid_boxes_for_padded_graphs():
    sets = make_scenes(6, 32, np.random.default_rng(4), 2, 5)
    model = models.GraphToLayout(5, 32, 2, 4, 0.0)
    boxes = model(sets.graphs)
    assert boxes.shape == (6, 5, 4)
    assert (boxes[..., 2] >= boxes[..., 0]).all() and (boxes[..., 3] >= boxes[..., 1]).all()
    loss = models.layout_loss(boxes, sets.graphs)
    loss.backward()
    assert torch.isfinite(loss) and model.predicate.weight.grad.abs().sum() > 0  # relations reach the boxes


def test_cell_coverage_is_the_fraction_of_each_cell_a_box_covers():
    boxes = torch.tensor([[[0.0, 0.0, 0.5, 0.25], [0.125, 0.125, 0.375, 0.375]]])
    cover = models.cell_coverage(boxes, 4).reshape(1, 2, 4, 4)
    assert torch.allclose(cover[0, 0], torch.tensor([[1.0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]))
    assert torch.allclose(cover[0, 1][:2, :2], torch.full((2, 2), 0.25)) and cover[0, 1].sum() == pytest.approx(1.0)


# ---- the image transformer ------------------------------------------------------------------------

def _tiny_ar(codes=16, grid=4):
    torch.manual_seed(0)
    return models.LayoutToTokens(codes, grid, 32, 2, 4, 0.0).eval()


def test_image_transformer_is_causal():
    model = _tiny_ar()
    g = make_scenes(2, 32, np.random.default_rng(5), 2, 5).graphs
    memory, layout_map = model.condition(g.attrs, g.boxes, g.obj_mask)
    tokens = torch.randint(0, 16, (2, 16), generator=torch.Generator().manual_seed(0))
    changed = tokens.clone()
    changed[:, 9:] = (changed[:, 9:] + 1) % 16
    with torch.no_grad():
        a, b = (model(t, memory, layout_map, g.obj_mask) for t in (tokens, changed))
    assert a.shape == (2, 16, 16)
    assert torch.allclose(a[:, :10], b[:, :10], atol=1e-5)  # position i sees tokens < i only
    assert not torch.allclose(a[:, 10:], b[:, 10:])


def test_sampling_is_seeded_and_respects_top_k():
    model = _tiny_ar()
    with torch.no_grad():  # make code 3 by far the likeliest, then 5: top_k=1 must always pick 3
        model.head[1].bias.zero_()
        model.head[1].bias[3], model.head[1].bias[5] = 50.0, 40.0
    g = make_scenes(3, 32, np.random.default_rng(6), 2, 5).graphs
    run = type("R", (), {"device": torch.device("cpu"), "autocast": lambda self: torch.autocast("cpu", enabled=False)})()
    config = dataclasses.replace(PRESETS["smoke"], top_k=1, temperature=1.0)
    only = models.sample_tokens(model, g.attrs, g.boxes, g.obj_mask, config, run, torch.Generator().manual_seed(0))
    assert only.shape == (3, 16) and (only == 3).all()
    free = dataclasses.replace(config, top_k=0, temperature=30.0)
    x, y = (models.sample_tokens(model, g.attrs, g.boxes, g.obj_mask, free, run, torch.Generator().manual_seed(1))
            for _ in range(2))
    assert torch.equal(x, y) and len(x.unique()) > 2


def test_vq_model_round_trips_token_grids():
    config = dataclasses.replace(PRESETS["smoke"], vq_codes=32)
    vq = models.vq_model(config).eval()
    images = make_scenes(4, 32, np.random.default_rng(8), 2, 5).images
    run = type("R", (), {"device": torch.device("cpu"), "autocast": lambda self: torch.autocast("cpu", enabled=False)})()
    tokens = models.encode_tokens(vq, images, run)
    assert tokens.shape == (4, config.grid ** 2) and tokens.max() < 32
    decoded = models.decode_tokens(vq, tokens, config.grid, run)
    assert decoded.shape == images.shape
    assert np.allclose(decoded, models.reconstruct(vq, images, run), atol=1e-5)


def test_fid_from_precomputed_features_equals_fid_kid_on_images():
    from reproductions.metrics.images import fid_kid

    class Net(torch.nn.Module):  # a small fixed feature network standing in for the Inception
        num_features = 8

        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 8, 3)

        def forward(self, x):
            return self.conv(x.float()).mean(dim=(2, 3))

    torch.manual_seed(0)
    net = Net().eval()
    rng = np.random.default_rng(0)
    real, fake = rng.random((20, 3, 8, 8), dtype=np.float32), rng.random((20, 3, 8, 8), dtype=np.float32) ** 2
    direct = fid_kid(real, fake, features=net, kid_subset=10)
    with torch.no_grad():
        feats = {"real": net(torch.as_tensor(real)), "fake": net(torch.as_tensor(fake))}
    via = fid_kid(feats["real"].numpy(), feats["fake"].numpy(), features=evaluate.Precomputed(8), kid_subset=10)
    assert via["fid"] == pytest.approx(direct["fid"], rel=1e-4) and via["fid"] > 0


# ---- configuration --------------------------------------------------------------------------------

@pytest.mark.parametrize("pair, field", [("image_size=30", "image_size"), ("eval_images=1", "eval_images"),
                                         ("top_k=1000", "top_k"), ("temperature=0", "temperature"),
                                         ("max_objects=7", "max_objects"), ("ar_heads=3", "ar_d"),
                                         ("vq_batch_size=0", "vq_batch_size")])
def test_config_validation_names_the_field(pair, field):
    with pytest.raises(ConfigError, match=field):
        apply_overrides(PRESETS["smoke"], [pair])


def test_presets_and_token_grids():
    assert set(PRESETS) == {"smoke", "cpu", "full"}
    assert PRESETS["cpu"].grid == 8 and PRESETS["full"].grid == 16  # the paper's grid is 16x16
    assert Config(image_size=64, vq_channels=(8, 8, 8, 8)).grid == 8

"""paper8 (scene graph -> layout -> VQ tokens -> image, against a layout-conditioned GAN) end to end in
its smoke profile on CPU, through the CLI, into a temporary folder; and its pieces: scenes and their
graphs, the colour and shape read-back, box IoU, the layout map and canvas, the causal image
transformer, the GAN's shapes and budget, seeded sampling, edits, the claims over seeds and config
validation."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from reproductions import paper8_scene_graph_transformer as paper8
from reproductions.common.docstring import differences
from reproductions.common.numbers import mean_of_trees
from reproductions.config import ConfigError, apply_overrides
from reproductions.metrics.images import FidFeatures, fid_kid
from reproductions.paper8_scene_graph_transformer import PRESETS, Config, model, report, scenes
from reproductions.paper8_scene_graph_transformer.scenes import (COLOUR_NAMES, PREDICATES, SceneObject, colour_map,
                                                                 edit_relation, make_scenes, relations_of, render)
from reproductions.run import Run
from tests.conftest import needs_data, smoke_run


@pytest.fixture
def one_thread():
    """One torch thread: on a shared 2-core machine, two OpenMP threads make small ops crawl."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def cpu_run(tmp_path):
    """A real ``Run`` on the CPU for the pieces that take one (named streams, autocast, progress)."""
    return Run("paper8", "smoke", 0, torch.device("cpu"), tmp_path, {})


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
    for model_name in ("transformer", "GAN"):
        images = metrics["images"][model_name]
        assert images["colour_in_box"]["real (true boxes)"] > 0.95  # the read-back works on real scenes
        assert images["relations_read"]["real"] > 0.95
        assert images["shape"]["real (true boxes)"] > 0.9 and 0 <= images["shape"]["generated"] <= 1
    fid = metrics["fid"]
    assert set(fid) == {"transformer", "GAN", "VQ reconstructions", "second real set", "mean training image"}
    assert all(np.isfinite(v["fid"]) and v["fid"] >= 0 and np.isfinite(v["kid_mean"]) for v in fid.values())
    assert fid["second real set"]["fid"] < fid["transformer"]["fid"]  # smoke models are far from real
    assert fid["second real set"]["fid"] < fid["mean training image"]["fid"]
    assert metrics["edits"]["n"] == PRESETS["smoke"].edits
    (seed,) = metrics["per_seed"]  # the smoke profile trains one seed
    assert {len(h["train"]) for name, h in seed["training"].items() if name != "gan"} == {12, 2, 3}
    steps = seed["optimiser_steps"]
    assert steps["GAN"] == steps["VQ-VAE + image transformer"] == len(seed["training"]["gan"]["steps"])
    assert metrics["counts"]["eval_images"] == PRESETS["smoke"].eval_images

    doc = json.loads((folder / "results.json").read_text())
    assert doc["status"] == "completed" and doc["profile"] == "smoke" and doc["data"][0]["kind"] == "synthetic"
    context = [r for r in doc["rows"] if r["paper"] is not None]  # the paper's COCO / VG numbers, not measured here
    assert sorted((r["metric"], r["paper"]) for r in context) == [
        ("FID", 52.3), ("FID", 60.3), ("IS", 12.8), ("IS", 13.7)]
    assert all(r["ours"] is None for r in context)
    ours = [r for r in doc["rows"] if r["paper"] is None]
    assert any(r["metric"] == "Layout mIoU" and r["ours"] is not None for r in ours)
    assert [r["ours"] for r in ours if r["metric"] == "IS"] == [None]  # Inception Score not measured
    outcomes = [c["outcome"] for c in doc["claims"]]
    assert outcomes == [c.outcome for c in report.claims(metrics)]  # the rules decide
    assert len(outcomes) == 6 and outcomes[-1] == "not testable here"  # IS, COCO and VG
    assert set(outcomes[:5]) == {"inconclusive"}  # one seed decides nothing
    assert doc["claims"][4]["addition"] and not any(c["addition"] for i, c in enumerate(doc["claims"]) if i != 4)
    assert doc["differences"] == differences(paper8.__doc__) and doc["differences"]
    assert len(doc["figures"]) == 3
    for figure in doc["figures"]:
        assert (folder / figure).read_bytes()[:4] == b"\x89PNG"


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
            assert scenes.holds((sx, sy), (ox, oy), pred)
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
    found = scenes.colour_centroids(colours[0])
    assert found[COLOUR_NAMES.index("red")][0] < 0.3 and found[COLOUR_NAMES.index("blue")][1] > 0.7
    drawn = make_scenes(10, 32, np.random.default_rng(1), 2, 5)
    assert scenes.colour_in_box(drawn.images, drawn.scenes, drawn.graphs.boxes) == 1.0
    assert scenes.image_relations(drawn.images, drawn.scenes)[0] == 1.0
    blank = np.full_like(drawn.images, 0.45)  # nothing drawn: no colour, no relation
    assert scenes.colour_in_box(blank, drawn.scenes, drawn.graphs.boxes) == 0.0
    assert scenes.image_relations(blank, drawn.scenes)[0] == 0.0


def test_shape_reader_reads_real_crops_and_is_at_chance_when_mismatched():
    train, test = (make_scenes(n, 32, np.random.default_rng(seed), 2, 5) for n, seed in ((300, 11), (150, 12)))
    reader = scenes.ShapeReader(train)
    objects = scenes.count_checked_objects(test.scenes)
    masks, shapes, found = scenes.object_crops(test.images, test.scenes, test.graphs.boxes)
    assert masks.shape == (objects, scenes.CROP ** 2) and found.all() and len(shapes) == objects > 200
    assert reader.accuracy(test.images, test.scenes, test.graphs.boxes) > 0.95  # the real ceiling
    jittered = test.graphs.boxes + 0.02 * torch.randn(test.graphs.boxes.shape, generator=torch.Generator().manual_seed(0))
    assert reader.accuracy(test.images, test.scenes, jittered) > 0.9  # a box a little off does not matter
    mismatched = reader.accuracy(test.images, test.scenes, test.graphs.boxes, np.random.default_rng(0).permutation(objects))
    assert abs(mismatched - 1 / 3) < 0.12  # another object's shape: chance among three
    blank = np.full_like(test.images, 0.45)
    assert reader.accuracy(blank, test.scenes, test.graphs.boxes) == 0.0  # nothing drawn: nothing read


def test_edit_flips_one_relation_and_edits_are_readable():
    drawn = make_scenes(20, 32, np.random.default_rng(2), 3, 5).scenes
    edited = edit_relation(drawn[0], 1)
    assert edited.relations[0] == drawn[0].relations[0] and edited.relations[2:] == drawn[0].relations[2:]
    (s, p, o), (s2, p2, o2) = drawn[0].relations[1], edited.relations[1]
    assert (s, o) == (s2, o2) and {PREDICATES[p], PREDICATES[p2]} in ({"left of", "right of"}, {"above", "below"})
    chosen = model.choose_edits(drawn, 5, np.random.default_rng(0))
    assert len(chosen) == 5 and all(scenes.checkable(drawn[i], k) for i, k in chosen)


# ---- boxes and layouts --------------------------------------------------------------------------

def test_box_iou_against_its_formula():
    a = torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 0.2, 0.2], [0.1, 0.1, 0.3, 0.4]])
    b = torch.tensor([[0.25, 0.25, 0.75, 0.75], [0.5, 0.5, 0.7, 0.7], [0.1, 0.1, 0.3, 0.4]])
    expected = torch.tensor([0.0625 / (0.25 + 0.25 - 0.0625), 0.0, 1.0])
    assert torch.allclose(model.box_iou(a, b), expected)


def test_baselines_and_relation_satisfaction():
    sets = make_scenes(40, 32, np.random.default_rng(3), 2, 5)
    g = sets.graphs
    assert model.relation_satisfaction(g.boxes, g) == 1.0 and model.miou(g.boxes, g) == pytest.approx(1.0)
    base = model.baseline_layouts(g, g, np.random.default_rng(0))
    assert model.relation_satisfaction(base["mean position"], g) == 0.0
    widths = base["random position"][..., 2] - base["random position"][..., 0]
    assert torch.allclose(widths[g.obj_mask], (g.boxes[..., 2] - g.boxes[..., 0])[g.obj_mask], atol=1e-5)
    assert base["random position"][g.obj_mask].min() >= 0 and base["random position"][g.obj_mask].max() <= 1


def test_layout_model_gives_valid_boxes_for_padded_graphs():
    sets = make_scenes(6, 32, np.random.default_rng(4), 2, 5)
    layout = model.GraphToLayout(5, 32, 2, 4, 0.0)
    boxes = layout(sets.graphs)
    assert boxes.shape == (6, 5, 4)
    assert (boxes[..., 2] >= boxes[..., 0]).all() and (boxes[..., 3] >= boxes[..., 1]).all()
    loss = model.layout_loss(boxes, sets.graphs)
    loss.backward()
    assert torch.isfinite(loss) and layout.predicate.weight.grad.abs().sum() > 0  # relations reach the boxes


def test_cell_coverage_is_the_fraction_of_each_cell_a_box_covers():
    boxes = torch.tensor([[[0.0, 0.0, 0.5, 0.25], [0.125, 0.125, 0.375, 0.375]]])
    cover = model.cell_coverage(boxes, 4).reshape(1, 2, 4, 4)
    assert torch.allclose(cover[0, 0], torch.tensor([[1.0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]))
    assert torch.allclose(cover[0, 1][:2, :2], torch.full((2, 2), 0.25)) and cover[0, 1].sum() == pytest.approx(1.0)


# ---- the image transformer ------------------------------------------------------------------------

def _tiny_ar(run, codes=16, grid=4):
    with run.seeded("ar-init"):
        return model.LayoutToTokens(codes, grid, 32, 2, 4, 0.0).eval()


def test_image_transformer_is_causal(cpu_run):
    ar = _tiny_ar(cpu_run)
    g = make_scenes(2, 32, np.random.default_rng(5), 2, 5).graphs
    memory, layout_map = ar.condition(g.attrs, g.boxes, g.obj_mask)
    tokens = torch.randint(0, 16, (2, 16), generator=torch.Generator().manual_seed(0))
    changed = tokens.clone()
    changed[:, 9:] = (changed[:, 9:] + 1) % 16
    with torch.no_grad():
        a, b = (ar(t, memory, layout_map, g.obj_mask) for t in (tokens, changed))
    assert a.shape == (2, 16, 16)
    assert torch.allclose(a[:, :10], b[:, :10], atol=1e-5)  # position i sees tokens < i only
    assert not torch.allclose(a[:, 10:], b[:, 10:])


def test_sampling_is_seeded_and_respects_top_k(cpu_run):
    ar = _tiny_ar(cpu_run)
    with torch.no_grad():  # make code 3 by far the likeliest, then 5: top_k=1 must always pick 3
        ar.head[1].bias.zero_()
        ar.head[1].bias[3], ar.head[1].bias[5] = 50.0, 40.0
    g = make_scenes(3, 32, np.random.default_rng(6), 2, 5).graphs
    config = dataclasses.replace(PRESETS["smoke"], top_k=1, temperature=1.0)
    only = model.sample_tokens(ar, g.attrs, g.boxes, g.obj_mask, config, cpu_run, cpu_run.torch_generator("sampling"))
    assert only.shape == (3, 16) and (only == 3).all()
    free = dataclasses.replace(config, top_k=0, temperature=30.0)
    x, y = (model.sample_tokens(ar, g.attrs, g.boxes, g.obj_mask, free, cpu_run, cpu_run.torch_generator("sampling"))
            for _ in range(2))
    other = model.sample_tokens(ar, g.attrs, g.boxes, g.obj_mask, free, cpu_run, cpu_run.torch_generator("edit-sampling"))
    assert torch.equal(x, y) and len(x.unique()) > 2  # one stream, the same draws
    assert not torch.equal(x, other)  # another stream, other draws


def test_networks_start_from_their_named_streams(cpu_run):
    config = PRESETS["smoke"]
    first, second = model.build_layout(config, cpu_run), model.build_layout(config, cpu_run)
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values()))
    other = Run("paper8", "smoke", 1, torch.device("cpu"), cpu_run.folder, {})
    assert not torch.equal(model.build_layout(config, other).head[1].weight, first.head[1].weight)


def test_vq_model_round_trips_token_grids(cpu_run):
    config = dataclasses.replace(PRESETS["smoke"], vq_codes=32)
    vq = model.build_vq(config, cpu_run).eval()
    images = make_scenes(4, 32, np.random.default_rng(8), 2, 5).images
    tokens = model.encode_tokens(vq, images, cpu_run)
    assert tokens.shape == (4, config.grid ** 2) and tokens.max() < 32
    decoded = model.decode_tokens(vq, tokens, config.grid, cpu_run)
    assert decoded.shape == images.shape
    assert np.allclose(decoded, model.reconstruct(vq, images, cpu_run), atol=1e-5)


def test_layout_canvas_paints_each_objects_attributes_inside_its_box():
    attrs = torch.tensor([[[2, 4, 1], [0, 0, 0]]])  # a large purple triangle; the second slot is padding
    boxes = torch.tensor([[[0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0]]])
    canvas = model.layout_canvas(attrs, boxes, torch.tensor([[True, False]]), 8)
    assert canvas.shape == (1, model.CANVAS_CHANNELS, 8, 8)
    inside = canvas[0, :, :4, :4]
    assert (inside[2] == 1).all() and (inside[3 + 4] == 1).all() and (inside[3 + 6 + 1] == 1).all()
    assert inside.sum(0).eq(3).all() and canvas[0, :, 4:, :].sum() == 0 and canvas[0, :, :, 4:].sum() == 0


@pytest.mark.parametrize("size", [32, 64])
def test_gan_maps_noise_and_layout_to_images_and_logits(cpu_run, size):
    config = dataclasses.replace(PRESETS["smoke"], image_size=size, vq_channels=(8, 8))
    generator, discriminator = model.build_gan(config, cpu_run)
    g = make_scenes(3, size, np.random.default_rng(9), 2, 5).graphs
    canvas = model.layout_canvas(g.attrs, g.boxes, g.obj_mask, size)
    z = torch.randn(3, config.gan_z, generator=torch.Generator().manual_seed(0))
    images = generator(z, canvas)
    assert images.shape == (3, 3, size, size) and images.abs().max() <= 1
    logits = discriminator(images, canvas)
    assert logits.shape == (3,)
    logits.sum().backward()
    assert all(p.grad is not None for p in generator.parameters())  # the layout and z reach every layer


def test_gan_gets_the_transformers_budget_and_samples_from_its_stream(cpu_run):
    config = dataclasses.replace(PRESETS["smoke"], vq_train_scenes=30, vq_batch_size=8, vq_epochs=2, batch_size=16,
                                 ar_epochs=1)
    train = make_scenes(40, 32, np.random.default_rng(10), 2, 5)
    assert model.gan_steps(config, 40) == 2 * 4 + 3  # ceil(30 / 8) * 2 VQ steps + ceil(40 / 16) transformer steps
    gan = model.build_gan(config, cpu_run)
    history = model.train_gan(gan, train.images, train.graphs, config, cpu_run)
    assert len(history["steps"]) == 11 and all(np.isfinite(history["steps"]))
    a, b = (model.generate_gan(gan, train.graphs[:4], train.graphs.boxes[:4], config, cpu_run, "gan-sampling")
            for _ in range(2))
    assert a.shape == (4, 32, 32, 3) and 0 <= a.min() and a.max() <= 1 and np.array_equal(a, b)


class _FeatureNet(torch.nn.Module):
    """A small fixed feature network standing in for the FID Inception."""

    def __init__(self):
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            self.conv = torch.nn.Conv2d(3, 8, 3)

    def forward(self, x):
        return self.conv(x.float()).mean(dim=(2, 3))


def test_fid_scores_take_channel_last_images_and_equal_fid_kid():
    net = _FeatureNet().eval()
    rng = np.random.default_rng(0)
    real, fake = rng.random((20, 8, 8, 3), dtype=np.float32), rng.random((20, 8, 8, 3), dtype=np.float32) ** 2
    extractor = FidFeatures("cpu", 8, net, weights="a test network")
    scores = model.fid_scores(extractor, real, {"fake": fake, "same": real.copy()}, torch.Generator().manual_seed(0))
    direct = fid_kid(real.transpose(0, 3, 1, 2), fake.transpose(0, 3, 1, 2), features=net, kid_subset=20)
    assert scores["fake"]["fid"] == pytest.approx(direct["fid"], rel=1e-4) and scores["fake"]["fid"] > 0
    assert abs(scores["same"]["fid"]) < 1e-3 and set(scores["same"]) == {"fid", "kid_mean", "kid_std"}
    assert set(extractor.memo) == {"real"}  # the real set was embedded once


# ---- claims: the rules decide over seeds ------------------------------------------------------

def _curve(falling: bool = False) -> list[float]:
    return [1.0 + (100 - k) * 0.01 if falling else 1.0 for k in range(100)]


def _seed(k: int, miou=0.6, colour=0.8, shape=0.8, after=0.9, fid_gap=20.0, falling=False):
    """Toy metrics of seed ``k``: the baselines, the mismatched controls and the before-edit numbers
    stay fixed; a small per-seed wobble keeps the intervals finite."""
    w = 0.01 * k
    base = {"miou": 0.3, "relations_satisfied": 0.5}
    check = {"generated": 0.8 + w, "mismatched": 0.3, "real (true boxes)": 1.0, "real": 1.0}
    images = {"colour_in_box": {**check, "generated": colour + w}, "relations_read": check,
              "shape": {**check, "generated": shape + w}, "relations_checked": 40, "shapes_checked": 60}
    return {"layout": {"SG transformer": {"miou": miou + w, "relations_satisfied": 0.95},
                       "mean position": {**base, "relations_satisfied": 0.0}, "random position": base},
            "images": {"transformer": images, "GAN": images},
            "edits": {"n": 8, "image_new_relation_before": 0.1, "image_new_relation_after": after + w,
                      "image_subject_moved": 0.8, "layout_new_relation_before": 0.1, "layout_new_relation_after": 0.9},
            "fid": {"transformer": {"fid": 80.0 + w, "kid_mean": 0.05}, "GAN": {"fid": 80.0 + fid_gap + 3 * w,
                                                                           "kid_mean": 0.06 + w / 10}},
            "training": {name: {"steps": _curve(falling and name == "ar")} for name in ("layout", "vq", "ar", "gan")},
            "optimiser_steps": {"GAN": 100, "VQ-VAE + image transformer": 100},
            "wall_s": {"GAN (training)": 10.0, "VQ-VAE + image transformer (training)": 12.0}}


def _metrics(seeds=3, **kw):
    per_seed = [_seed(k, **kw) for k in range(seeds)]
    m = {key: mean_of_trees([s[key] for s in per_seed])
         for key in ("layout", "images", "edits", "fid", "optimiser_steps", "wall_s")}
    m["fid"] |= {"VQ reconstructions": {"fid": 60.0, "kid_mean": 0.03}, "second real set": {"fid": 20.0, "kid_mean": 0.0},
                 "mean training image": {"fid": 300.0, "kid_mean": 0.4}}
    return m | {"per_seed": per_seed, "counts": {"eval_images": 16}, "seeds": seeds}


def _outcomes(**kw) -> list[str]:
    return [c.outcome for c in report.claims(_metrics(**kw))]


def test_claims_follow_their_rules_over_seeds():
    assert _outcomes() == ["held"] * 5 + ["not testable here"]
    assert _outcomes(miou=0.3 + report.LAYOUT_MIOU_MARGIN - 0.06)[0] == "did not hold"
    assert _outcomes(shape=0.3 + report.IMAGE_MARGIN - 0.06)[1] == "did not hold"  # the shape check counts
    assert _outcomes(colour=0.3 + report.IMAGE_MARGIN - 0.06)[1] == "did not hold"
    assert _outcomes(after=0.1 + report.EDIT_MARGIN - 0.06)[2] == "did not hold"
    assert _outcomes(fid_gap=-10.0)[3] == "did not hold"  # the GAN's FID lower: the paper's claim fails here
    assert _outcomes(fid_gap=report.FID_MARGIN - 3.0)[3] == "did not hold"  # a gap under the margin is a tie
    assert set(_outcomes(seeds=2)[:5]) == {"inconclusive"}  # fewer than 3 seeds decide nothing


def test_gates_make_claims_inconclusive():
    falling = report.claims(_metrics(falling=True))  # the image transformer still training
    assert [c.outcome for c in falling][:5] == ["held", "inconclusive", "inconclusive", "inconclusive", "inconclusive"]
    m = _metrics()
    m["fid"]["mean training image"]["fid"] = 90.0  # the GAN's images no better than the mean image
    assert report.claims(m)[3].outcome == "inconclusive"


def test_without_fid_the_fid_claims_are_not_testable_and_no_fid_row_is_shown():
    m = _metrics() | {"fid": {}, "vq": {"psnr_db": 20.0, "codes_used": 50}}  # fid=false: the GPU check's switch
    claims = report.claims(m)
    assert [c.outcome for c in claims] == ["held"] * 3 + ["not testable here"] * 3
    assert "fid=false" in claims[3].evidence and claims[4].addition
    assert not [r for r in report.rows(m, PRESETS["smoke"]) if r.metric in ("FID", "KID") and r.ours is not None]


def test_rows_put_the_papers_numbers_beside_none_of_ours():
    m = _metrics() | {"vq": {"psnr_db": 20.0, "codes_used": 50}}
    rows = report.rows(m, PRESETS["smoke"])
    given = [r for r in rows if r.paper.value is not None]
    assert sorted(r.paper.value for r in given) == [12.8, 13.7, 52.3, 60.3] and all(r.ours is None for r in given)
    assert all(r.paper.value is None for r in rows if r.ours is not None)
    assert {r.ours for r in rows if r.metric == "Object shape read from the image"} >= {0.3, 1.0}


# ---- configuration --------------------------------------------------------------------------------

@pytest.mark.parametrize("pair, field", [("image_size=30", "image_size"), ("eval_images=1", "eval_images"),
                                         ("image_size=48", "image_size"), ("seeds=0", "seeds"),
                                         ("gan_lr=0", "gan_lr"),
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

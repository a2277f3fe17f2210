"""Every metric against values known in closed form or by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from reproductions.metrics import classification, clustering, images, memorisation, segmentation, text
from tests.conftest import needs_data


def test_psnr_and_ssim():
    ref = np.full((2, 16, 16), 0.5)
    test = ref + 0.1  # MSE 0.01 on a data range of 1: PSNR = 10 log10(1 / 0.01) = 20 dB
    assert images.psnr(ref, test) == pytest.approx(20.0)
    rng = np.random.default_rng(0).random((32, 32))
    assert images.ssim(rng, rng) == pytest.approx(1.0)
    assert images.ssim(rng, 1 - rng) < 0


def square(top, left, side=10, size=32):
    mask = np.zeros((size, size), bool)
    mask[top:top + side, left:left + side] = True
    return mask


def test_dice_and_hausdorff():
    a, b = square(5, 5), square(5, 10)  # 10x10 squares overlapping on 10x5: Dice = 2*50/200
    assert segmentation.dice(a[None], b[None])[0] == pytest.approx(0.5)
    shifted = square(5, 8)  # moved 3 px: every boundary point is at most 3 px away
    assert segmentation.hausdorff(a, shifted)[0] == pytest.approx(3.0)
    assert segmentation.hausdorff(a, shifted, percentile=95)[0] == pytest.approx(3.0)
    assert segmentation.hausdorff(a, shifted, spacing=0.5)[0] == pytest.approx(1.5)
    empty = np.zeros((1, 32, 32), bool)
    assert segmentation.dice(empty, empty)[0] == 1.0 and segmentation.hausdorff(empty, empty)[0] == 0.0


def test_a_missed_tumour_scores_the_image_diagonal_not_nothing():
    a, shifted, nothing = square(5, 5), square(5, 8), np.zeros((32, 32), bool)
    diagonal = np.hypot(32, 32)
    assert segmentation.hausdorff(a, nothing)[0] == pytest.approx(diagonal)
    assert segmentation.hausdorff(a, nothing, percentile=95)[0] == pytest.approx(diagonal)
    assert segmentation.hausdorff(a, nothing, spacing=0.5)[0] == pytest.approx(diagonal / 2)
    scores = segmentation.segmentation_scores(np.stack([a, a]), np.stack([a, nothing]))
    assert scores["dice"] == pytest.approx(0.5) and scores["missed"] == 1 and scores["undefined"] == 0
    assert scores["hausdorff_max"] == pytest.approx(diagonal / 2)  # (0 + diagonal) / 2, the miss is not dropped
    # a segmenter that finds nothing scores worse than one that finds the tumour 3 px off
    found = segmentation.segmentation_scores(np.stack([a, a]), np.stack([shifted, shifted]))
    lost = segmentation.segmentation_scores(np.stack([a, a]), np.stack([shifted, nothing]))
    assert lost["hausdorff_max"] > found["hausdorff_max"] and lost["hausdorff_95"] > found["hausdorff_95"]
    # an empty reference with a tumour predicted stays undefined and out of the means
    alarm = segmentation.segmentation_scores(np.stack([a, nothing]), np.stack([a, a]))
    assert alarm["undefined"] == 1 and alarm["missed"] == 0 and alarm["hausdorff_max"] == 0.0


def test_classification_scores():
    truth = [0, 0, 0, 1, 1, 2]
    predicted = [0, 0, 1, 1, 2, 2]
    s = classification.classification_scores(truth, predicted, ("cyst", "metastasis", "hemangioma"))
    assert s["accuracy"] == pytest.approx(4 / 6)
    assert s["confusion_matrix"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert s["per_class"]["cyst"] == {"sensitivity": pytest.approx(2 / 3), "specificity": 1.0}
    assert s["per_class"]["metastasis"]["specificity"] == pytest.approx(3 / 4)
    assert s["mean_sensitivity"] == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)


def test_clustering_scores():
    truth = np.array([0, 0, 1, 1, 2, 2])
    assert clustering.cluster_accuracy(truth, np.array([2, 2, 0, 0, 1, 1])) == 1.0  # a relabelling
    assert clustering.cluster_accuracy(truth, np.array([0, 0, 0, 1, 1, 1])) == pytest.approx(4 / 6)
    assert clustering.nmi(truth, np.array([1, 1, 2, 2, 0, 0])) == pytest.approx(1.0)
    data = np.random.default_rng(0).normal(size=(60, 5))
    same = clustering.structure_scores(data, data * 3.0)  # scaling keeps every neighbourhood
    assert same == {"trust": pytest.approx(1.0), "cont": pytest.approx(1.0)}
    scrambled = clustering.structure_scores(data, np.random.default_rng(1).normal(size=(60, 2)))
    assert scrambled["trust"] < 0.75 and scrambled["cont"] < 0.75


def test_memorisation_distance_is_zero_for_a_copied_mask_and_large_for_a_new_one():
    train = np.zeros((3, 8, 8), bool)
    train[0, :4, :4] = train[1, 4:, 4:] = True  # train[2] stays empty
    new = np.zeros((8, 8), bool)
    new[:4, 2:6] = True  # overlaps train[0] in half its pixels: Dice 0.5
    samples = np.stack([train[1], new, np.zeros((8, 8), bool), ~train[0] & ~train[1]])
    distance = memorisation.nearest_mask_distance(samples, train, chunk=3)  # two chunks
    assert distance[:3] == pytest.approx([0.0, 0.5, 0.0])  # a copy; half overlap; an empty mask matches an empty one
    assert distance[3] == 1.0  # the other two quadrants: no training tumour overlaps it


class Flatten(torch.nn.Module):
    """A stand-in feature network (pixels as features): FID in closed form, not Inception FID."""
    num_features = 4  # 2x2 one-channel images

    def forward(self, x):
        return x.flatten(1).double()


def test_fid_and_kid_in_closed_form():
    real = torch.rand(64, 1, 2, 2, generator=torch.Generator().manual_seed(0))
    shifted = real + 0.25  # same covariance, mean moved by 0.25 in 4 features: FID = 4 * 0.25^2
    scores = images.fid_kid(real, shifted, features=Flatten(), kid_subset=32)
    assert scores["fid"] == pytest.approx(0.25, abs=1e-4)
    same = images.fid_kid(real, real, features=Flatten(), kid_subset=64)
    # KID: unbiased MMD^2 with the kernel (x.y / d + 1)^3; with one subset of all n samples against
    # themselves it is 2 * (sum of K off the diagonal) / n(n-1) - 2 * (sum of K) / n^2
    x = real.flatten(1).double().numpy()
    k = (x @ x.T / 4 + 1) ** 3
    n = len(x)
    expected = 2 * (k.sum() - np.trace(k)) / (n * (n - 1)) - 2 * k.sum() / n ** 2
    assert abs(same["fid"]) < 1e-6 and same["kid_mean"] == pytest.approx(expected, rel=1e-6)


@needs_data("fid-inception")
def test_fid_on_the_standard_inception_when_prepared():
    rng = np.random.default_rng(0)
    a, b = rng.random((8, 32, 32)), rng.random((8, 32, 32))
    network = images.fid_inception()
    assert network(torch.as_tensor(a[:2, None], dtype=torch.float32)).shape == (2, 2048)
    assert images.fid_kid(a, a, network, kid_subset=8)["fid"] == pytest.approx(0, abs=1e-3)
    assert images.fid_kid(a, 1 - b ** 4, network, kid_subset=8)["fid"] > 1


def test_caption_metrics_match_hand_computed_values():
    s = text.caption_scores(["the cat is on the mat"], ["The cat sat on the mat"], meteor=False)
    # clipped n-gram precisions 5/6, 3/5, 1/4 on equal lengths (no brevity penalty); lower-cased first
    assert s["bleu1"] == pytest.approx(5 / 6, abs=1e-6)
    assert s["bleu2"] == pytest.approx(math.sqrt(5 / 6 * 3 / 5), abs=1e-6)
    assert s["bleu3"] == pytest.approx((5 / 6 * 3 / 5 * 1 / 4) ** (1 / 3), abs=1e-6)
    assert s["rouge_l"] == pytest.approx(5 / 6)  # LCS "the cat on the mat": 5 of 6 tokens both ways
    pair = text.caption_scores(["the heart is normal", "no pleural effusion is seen"],
                               ["the heart is normal", "no pleural effusion is seen"])
    assert pair["bleu4"] == pytest.approx(1.0, abs=1e-6) and pair["cider"] == pytest.approx(10.0)
    assert pair["meteor"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="as many candidates"):
        text.caption_scores(["a"], [])


def tiny_bert(folder, words: str) -> None:
    """A seeded two-layer BERT and its tokenizer over ``words`` (plus the special tokens), saved to ``folder``."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words.split()]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    BertTokenizerFast(vocab_file=str(folder / "vocab.txt"), model_max_length=64).save_pretrained(folder)
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=32)).save_pretrained(folder)


def test_bertscore_on_a_tiny_local_bert(tmp_path):
    tiny_bert(tmp_path, "the heart is normal no effusion")
    same = text.bertscore(["the heart is normal"], ["the heart is normal"], tmp_path, num_layers=2)
    assert same == {"precision": pytest.approx(1.0), "recall": pytest.approx(1.0), "f1": pytest.approx(1.0)}
    other = text.bertscore(["the heart is normal"], ["no effusion"], tmp_path, num_layers=2)
    assert other["f1"] < 0.999


def test_bertscore_scores_empty_reports_as_the_placeholder(tmp_path):
    tiny_bert(tmp_path, "the heart is normal < > empty")
    assert text.placeholder(["a", "", "  \n"]) == ["a", text.EMPTY, text.EMPTY]
    scorer = text.bertscore_scorer(tmp_path, num_layers=2, device="cpu")
    # bert-score alone fails on an empty string (AttributeError); the helper scores it as the placeholder
    empty = text.bertscore(["the heart is normal", ""], ["", " "], scorer=scorer)
    shown = text.bertscore(["the heart is normal", text.EMPTY], [text.EMPTY, text.EMPTY], scorer=scorer)
    assert empty == shown and 0 < empty["f1"] <= 1
    with pytest.raises(ValueError, match="as many candidates"):
        text.bertscore(["a"], [], scorer=scorer)

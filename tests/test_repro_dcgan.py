"""The shared DCGAN: the paper's layer sizes, conditioning, ACGAN, and refusals."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from reproductions.common import dcgan
from reproductions.run import Run


def cpu_run(tmp_path: Path) -> Run:
    return Run("test", "smoke", 0, torch.device("cpu"), tmp_path, {})


def test_the_paper_settings_give_a_4x4x1024_projection_and_64px_images():
    config = dcgan.DCGANConfig()
    G = dcgan.Generator(config)
    assert G.project[0].out_features == 1024 * 4 * 4
    z = dcgan.noise(3, config, torch.Generator().manual_seed(0))
    assert z.shape == (3, 100) and z.min() >= -1 and z.max() <= 1  # uniform, as paper 3 says
    assert G.eval()(z).shape == (3, 1, 64, 64)
    convs = [m for m in dcgan.Discriminator(config).modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(m.kernel_size, m.stride) for m in convs] == [((5, 5), (2, 2))] * 4


@pytest.mark.parametrize("size,classes,auxiliary", [(32, 0, False), (64, 2, False), (32, 3, True)])
def test_training_and_sampling_shapes(tmp_path, size, classes, auxiliary):
    config = dcgan.DCGANConfig(width=4, size=size, channels=2, num_classes=classes, auxiliary=auxiliary,
                               epochs=2, batch_size=8)
    images = torch.rand(20, 2, size, size) * 2 - 1
    labels = torch.arange(20) % classes if classes else None
    G, history = dcgan.train_dcgan(images, labels, config, cpu_run(tmp_path), "gan")
    assert set(history) == {"d_loss", "g_loss", "d_real", "d_fake"} and all(len(v) == 2 for v in history.values())
    assert all(0 <= p <= 1 for p in history["d_real"] + history["d_fake"])
    out = dcgan.sample(G, 5, config, "cpu", torch.Generator().manual_seed(1), labels[:5] if classes else None)
    assert out.shape == (5, 2, size, size) and out.abs().max() <= 1
    again = dcgan.sample(G, 5, config, "cpu", torch.Generator().manual_seed(1), labels[:5] if classes else None)
    assert torch.equal(out, again)  # seeded sampling repeats


def test_refusals_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="size"):
        dcgan.DCGANConfig(size=48)
    with pytest.raises(ValueError, match="auxiliary"):
        dcgan.DCGANConfig(auxiliary=True)
    config = dcgan.DCGANConfig(width=4, size=32, num_classes=2, epochs=1)
    with pytest.raises(ValueError, match="needs labels"):
        dcgan.train_dcgan(torch.zeros(4, 1, 32, 32), None, config, cpu_run(tmp_path), "gan")
    with pytest.raises(ValueError, match="do not match"):
        dcgan.train_dcgan(torch.zeros(4, 1, 64, 64), torch.zeros(4, dtype=torch.long), config, cpu_run(tmp_path), "gan")

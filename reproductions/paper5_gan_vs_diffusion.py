"""Paper 5: Usman Akbar et al. 2024, GANs vs diffusion models for brain tumour MRI (bib key
UsmanAkbar2024BrainTumor).

What is reproduced: the paper's central comparison. Two generators learn image and tumour mask
together (one tensor, image channels + mask channel): a DCGAN (``reproductions.common.dcgan``) and
a DDPM (diffusers ``UNet2DModel`` trained with ``DDPMScheduler``, sampled with ``DDIMScheduler``
in fewer steps). The same U-Net (MONAI ``UNet``, same initial weights per seed) is trained on real
pairs, on each generator's synthetic pairs and on real plus synthetic pairs, and evaluated on
held-out real slices: Dice, Hausdorff distance (the maximum, as the paper reports, and HD95) and
the synthetic/real Dice ratio beside the paper's 80-90%. FID per generator (the standard FID
Inception) and whether its ordering follows Dice's. Memorisation: each sample's highest
correlation with any training pair, for both generators trained on a small and a larger set (the
paper: diffusion memorises when data are few), judged by its excess over held-out real slices
against the same training set, since a larger pool raises the highest correlation by itself.
DDIM at a few step counts against the full DDPM chain, FID and seconds per image (every sampler
timed on the same number of images), to pick a step count where quality holds.

How it differs from the paper, and why:
- Data: without BraTS offline, the pairs are a phantom: tumours (core, oedema, enhancing rim)
  drawn on axial slices of the real MNI152 T1 template (``reproductions.data.phantoms``), one T1
  channel + mask, 32 px (smoke, cpu) or 64 px (full) instead of four sequences at 256 px. Every
  slice shows the same template brain, so held-out slices share anatomy with training slices and
  only the tumours are new. ``--set brats=/path`` uses real BraTS 2020/2021 subject folders
  (four sequences + mask: the paper's five channels), split by subject.
- Generators: one DCGAN instead of progressive GAN and StyleGAN 1-3; a small DDPM with a cosine
  schedule of 100-1000 steps (profile) instead of 4000 steps; learning rates raised above the
  paper's 1e-4 for the short CPU trainings. Both sizes of training set get the same number of
  optimisation steps, so the small set is seen many more times (the regime where copying shows).
- The segmentation target is the whole tumour (all BraTS labels > 0), binary; one U-Net with
  Adam instead of the paper's U-Net (lr 2e-2) and Swin transformer; 1-5 seeds instead of 10.
- Hausdorff distances are in pixels of the working size, not millimetres; an empty prediction on
  a slice with tumour (a missed tumour) scores the image diagonal rather than being left out.
- FID on tens to hundreds of images is biased high (and noisy); the real-vs-real FID at the same
  count is reported as its floor. No Inception Score (not obtainable offline).
- Memorisation is the Pearson correlation over the whole image+mask pair, beside the same
  statistic for held-out real pairs (which is high here because all phantom slices share one brain).
- The full profile is sized for one H100 with bf16 autocast but was not timed on a GPU.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from reproductions.common import dcgan
from reproductions.common.plotting import pyplot, save
from reproductions.data.offline import DataError
from reproductions.metrics.images import fid_inception, fid_kid
from reproductions.metrics.memorisation import max_correlation
from reproductions.metrics.segmentation import diagonal, segmentation_scores
from reproductions.outcome import Claim, DataNote, Outcome, Reported, Row

GENERATORS = ("GAN", "DDPM")
PREDICTIONS = ("v_prediction", "epsilon")
SOURCES = ("real", "GAN", "DDPM", "real+GAN", "real+DDPM")  # what the U-Net is trained on


@dataclass(frozen=True)
class Config:
    brats: str = ""  # BraTS subject folders; empty: the brain MRI phantom
    size: int = 32  # px; the DCGAN makes 32 or 64
    n_train: int = 256  # real training pairs (the larger set)
    n_small: int = 32  # the small set (a subset of the training pairs), for memorisation
    n_test: int = 96  # held-out real slices for the segmenters
    n_synthetic: int = 256  # pairs sampled from each generator to train a U-Net on
    # DCGAN (image + mask as channels); epochs on the larger set, the small set gets as many steps
    gan_width: int = 16
    gan_epochs: int = 60
    gan_batch: int = 32
    # DDPM
    ddpm_channels: tuple[int, ...] = (32, 64, 64)
    ddpm_attention: bool = False  # self-attention in the lowest-resolution block
    ddpm_steps: int = 1500  # optimisation steps, for each training set
    ddpm_batch: int = 32
    ddpm_lr: float = 1e-3
    ddpm_prediction: str = "v_prediction"  # or "epsilon" (the original DDPM's); v trains faster on short budgets
    timesteps: int = 250  # the DDPM chain (cosine schedule); the paper uses 4000
    ddim_steps: int = 25  # the step count that makes the DDPM's synthetic pairs
    compare_steps: tuple[int, ...] = (10, 25, 50)  # DDIM step counts measured against the full chain
    # segmenter (the same U-Net for every training source)
    seg_channels: tuple[int, ...] = (16, 32, 64, 128)
    seg_steps: int = 400  # optimisation steps per training source
    seg_batch: int = 32
    seg_lr: float = 1e-3
    seg_seeds: int = 2
    # evaluation
    fid_samples: int = 64
    memorisation_samples: int = 128

    def __post_init__(self):
        if self.size not in dcgan.SIZES:
            raise ValueError(f"size: choose {' or '.join(map(str, dcgan.SIZES))} (the DCGAN's sizes), not {self.size}")
        for name in ("n_train", "n_small", "n_test", "n_synthetic", "gan_width", "gan_epochs", "gan_batch",
                     "ddpm_steps", "ddpm_batch", "timesteps", "ddim_steps", "seg_steps", "seg_batch", "seg_seeds",
                     "memorisation_samples"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.n_small >= self.n_train:
            raise ValueError(f"n_small ({self.n_small}) must be smaller than n_train ({self.n_train})")
        if self.fid_samples < 2:
            raise ValueError("fid_samples must be at least 2 (FID needs a covariance)")
        if max(self.ddim_steps, *self.compare_steps, 0) > self.timesteps:
            raise ValueError(f"ddim_steps and compare_steps must not exceed timesteps ({self.timesteps})")
        if not self.ddpm_channels or min(self.ddpm_channels) < 8 or any(c % 8 for c in self.ddpm_channels):
            raise ValueError("ddpm_channels: give multiples of 8 (group norm uses 8 groups)")
        if len(self.seg_channels) < 2 or min(self.seg_channels) < 1:
            raise ValueError("seg_channels: give two or more positive widths")
        if self.size % 2 ** (len(self.ddpm_channels) - 1) or self.size % 2 ** (len(self.seg_channels) - 1):
            raise ValueError("ddpm_channels / seg_channels: too many levels for this size")
        if self.ddpm_prediction not in PREDICTIONS:
            raise ValueError(f"ddpm_prediction: choose {' or '.join(PREDICTIONS)}, not {self.ddpm_prediction!r}")
        if min(self.ddpm_lr, self.seg_lr) <= 0:
            raise ValueError("ddpm_lr and seg_lr must be positive")


PRESETS = {
    # the whole pipeline on a few dozen 32 px pairs: about a minute on a 2-core CPU.
    "smoke": Config(n_train=48, n_small=12, n_test=24, n_synthetic=48, gan_width=8, gan_epochs=8, gan_batch=16,
                    ddpm_channels=(16, 32, 32), ddpm_steps=60, ddpm_batch=16, timesteps=50, ddim_steps=5,
                    compare_steps=(5,), seg_channels=(8, 16, 32), seg_steps=40, seg_batch=16, seg_seeds=1,
                    fid_samples=12, memorisation_samples=16),
    # reduced for a machine without a GPU: 32 px, a few hundred pairs, short trainings (600 DDPM steps
    # at about 3 steps/s on an idle 2-core CPU, for each of the two training sets).
    "cpu": Config(ddpm_steps=600),
    # 64 px on one GPU with bf16 (not timed on a GPU): larger sets and networks, the 1000-step chain.
    "full": Config(size=64, n_train=2000, n_small=100, n_test=400, n_synthetic=2000, gan_width=32, gan_epochs=60,
                   gan_batch=64, ddpm_channels=(64, 128, 128, 256), ddpm_attention=True, ddpm_steps=6000,
                   ddpm_batch=64, ddpm_lr=2e-4, timesteps=1000, ddim_steps=50, compare_steps=(10, 25, 50, 100),
                   seg_channels=(16, 32, 64, 128, 256), seg_steps=1500, seg_batch=64, seg_seeds=5,
                   fid_samples=400, memorisation_samples=400),
}

SOURCE = "reported-results.md, Paper 5"
NOT_REPORTED = Reported.missing(f"{SOURCE}: per-model tables not found")
RATIO_BAND = (0.8, 0.9)
RATIO_LOW = Reported(RATIO_BAND[0], f"{SOURCE}: synthetic-trained Dice is '80-90% of those trained on real "
                                     "images' (the band's lower end; upper end 0.9)")


# ---- data ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Pairs:
    images: np.ndarray  # (N, C, H, W) float32 in [0, 1]: one T1 channel (phantom) or four BraTS sequences
    masks: np.ndarray  # (N, H, W) bool whole tumour

    def __len__(self):
        return len(self.masks)

    def take(self, index) -> Pairs:
        return Pairs(self.images[index], self.masks[index])

    def tensor(self) -> torch.Tensor:
        """(N, C + 1, H, W) in [-1, 1]: the image channels and the mask, what both generators learn."""
        both = np.concatenate([self.images, self.masks[:, None].astype(np.float32)], axis=1)
        return torch.from_numpy(both * 2 - 1)

    @classmethod
    def from_tensor(cls, x: torch.Tensor) -> Pairs:
        """Generated (N, C + 1, H, W) in [-1, 1] -> pairs; the mask channel is thresholded at its midpoint."""
        x = x.float().clamp(-1, 1).numpy()
        return cls(((x[:, :-1] + 1) / 2).astype(np.float32), x[:, -1] > 0)

    def flat(self) -> np.ndarray:
        """(N, C + 1, H, W) in [0, 1] for the memorisation statistic."""
        return np.concatenate([self.images, self.masks[:, None].astype(np.float32)], axis=1)


def load_brats(folder: str, size: int) -> tuple[Pairs, np.ndarray, DataNote]:
    from skimage.transform import resize

    from reproductions.data.loaders import brats

    if not Path(folder).is_dir():
        raise DataError(f"brats: {folder} is not a folder of BraTS subject folders")
    slices = brats(Path(folder), min_tumour_pixels=50)
    images = np.stack([resize(s, (s.shape[0], size, size), order=1, anti_aliasing=True) for s in slices.images])
    masks = np.stack([resize(m > 0, (size, size), order=0) for m in slices.masks]).astype(bool)
    note = DataNote("BraTS", "real", f"{len(images)} axial slices with tumour from {len(slices.names)} subjects in "
                    f"{folder}; T1, T1ce, T2, FLAIR at {size} px; whole tumour (labels > 0); split by subject")
    return Pairs(images.astype(np.float32), masks), slices.subjects, note


def load_data(config: Config, seed: int) -> tuple[Pairs, Pairs, DataNote]:
    """Training pairs (the first ``n_small`` are the small set) and held-out test pairs."""
    rng = np.random.default_rng(seed)
    if config.brats:
        pairs, groups, note = load_brats(config.brats, config.size)
    else:
        from reproductions.data.phantoms import brain_phantom

        phantom = brain_phantom(config.n_train + config.n_test, config.size, seed)
        pairs, groups = Pairs(phantom.images[:, None], phantom.masks > 0), np.arange(len(phantom.masks))
        note = DataNote("brain MRI phantom", "phantom", f"{len(pairs)} {phantom.source}: axial slices of the real "
                        f"template with a drawn tumour, at {config.size} px; whole tumour mask")
    order = rng.permutation(np.unique(groups))
    counts = np.array([np.sum(groups == g) for g in order])
    n_test_groups = int(np.searchsorted(np.cumsum(counts), config.n_test)) + 1
    test_pool = np.flatnonzero(np.isin(groups, order[:n_test_groups]))
    train_pool = np.flatnonzero(np.isin(groups, order[n_test_groups:]))
    if len(test_pool) < config.n_test or len(train_pool) < config.n_train:
        raise DataError(f"{note.name}: {len(groups)} slices are too few for n_train={config.n_train} and "
                        f"n_test={config.n_test}; lower them with --set")
    train = pairs.take(rng.choice(train_pool, config.n_train, replace=False))
    test = pairs.take(rng.choice(test_pool, config.n_test, replace=False))
    return train, test, note


@contextlib.contextmanager
def seeded(seed: int):
    """A block whose global CPU torch draws (layer initialisation) come from ``seed``; the state is restored."""
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        yield


# ---- generators ---------------------------------------------------------------------------------

def gan_config(config: Config, channels: int, n_images: int) -> dcgan.DCGANConfig:
    """The DCGAN for ``n_images`` pairs, with as many optimisation steps as on the larger set."""
    batch = min(config.gan_batch, config.n_train)
    steps = config.gan_epochs * (config.n_train // batch)
    per_epoch = max(n_images // min(batch, n_images), 1)
    return dcgan.DCGANConfig(width=config.gan_width, size=config.size, channels=channels,
                             epochs=max(1, round(steps / per_epoch)), batch_size=batch)


def ddpm_network(config: Config, channels: int):
    from diffusers import UNet2DModel

    levels = len(config.ddpm_channels)
    attention = config.ddpm_attention
    down = tuple("AttnDownBlock2D" if attention and i == levels - 1 else "DownBlock2D" for i in range(levels))
    up = tuple("AttnUpBlock2D" if attention and i == 0 else "UpBlock2D" for i in range(levels))
    return UNet2DModel(sample_size=config.size, in_channels=channels, out_channels=channels,
                       block_out_channels=config.ddpm_channels, layers_per_block=1, down_block_types=down,
                       up_block_types=up, norm_num_groups=8)


def noise_schedule(config: Config):
    from diffusers import DDPMScheduler

    # cosine betas reach pure noise at any chain length (linear betas need about 1000 steps)
    return DDPMScheduler(num_train_timesteps=config.timesteps, beta_schedule="squaredcos_cap_v2",
                         prediction_type=config.ddpm_prediction)


def train_ddpm(x: torch.Tensor, config: Config, run, offset: int):
    """A DDPM on pairs ``x`` (N, C, H, W) in [-1, 1], predicting the noise or v; returns (network, losses)."""
    gen, scheduler = run.generator(offset), noise_schedule(config)
    with seeded(run.seed + offset):
        model = ddpm_network(config, x.shape[1]).to(run.device)
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.ddpm_lr)
    losses = []
    for _ in run.progress(range(config.ddpm_steps), f"DDPM on {len(x)} pairs"):
        batch = x[torch.randint(0, len(x), (config.ddpm_batch,), generator=gen)]
        noise = torch.randn(batch.shape, generator=gen)
        t = torch.randint(0, config.timesteps, (len(batch),), generator=gen)
        noisy = scheduler.add_noise(batch, noise, t).to(run.device)
        with run.autocast():
            predicted = model(noisy, t.to(run.device)).sample
        target = noise if config.ddpm_prediction == "epsilon" else scheduler.get_velocity(batch, noise, t)
        loss = F.mse_loss(predicted.float(), target.to(run.device))
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    return model.eval(), losses


@torch.no_grad()
def sample_ddpm(model, n: int, steps: int | None, config: Config, run, gen: torch.Generator,
                batch: int = 256) -> torch.Tensor:
    """``n`` pairs (n, C, H, W) in [-1, 1] on the CPU: the full DDPM chain (``steps`` None) or DDIM (eta 0)."""
    from diffusers import DDIMScheduler

    schedule = noise_schedule(config)
    if steps is not None:  # trailing spacing starts DDIM at the last timestep, which few steps need
        schedule = DDIMScheduler.from_config(schedule.config, timestep_spacing="trailing")
    schedule.set_timesteps(steps or config.timesteps)
    channels = model.config.in_channels
    out = []
    for start in range(0, n, batch):
        x = torch.randn((min(batch, n - start), channels, config.size, config.size), generator=gen).to(run.device)
        for t in schedule.timesteps:
            with run.autocast():
                predicted = model(x, t.to(run.device)).sample.float()
            extra = {"generator": gen} if steps is None else {}  # the DDPM draws noise each step; DDIM (eta 0) not
            x = schedule.step(predicted, t, x, **extra).prev_sample
        out.append(x.float().cpu())
    return torch.cat(out)


def train_generators(train: Pairs, config: Config, run) -> dict:
    """Both generators on the larger and on the small set: {(name, size): (model, history)}."""
    models = {}
    for k, (label, pairs) in enumerate((("large", train), ("small", train.take(slice(config.n_small)))), start=1):
        x = pairs.tensor()
        gan = gan_config(config, x.shape[1], len(x))
        with seeded(run.seed + 100 * k):
            models["GAN", label] = dcgan.train_dcgan(x, None, gan, run, offset=100 * k + 1)
        models["DDPM", label] = train_ddpm(x, config, run, offset=100 * k + 2)
    return models


def compare_samplers(model, n: int, config: Config, run) -> dict[str, tuple[int, Pairs, float]]:
    """The full DDPM chain and DDIM at each compared step count (and ``ddim_steps``), each drawing the
    same ``n`` pairs from the same seed and timed the same way: {label: (steps, pairs, s per pair)}."""
    out = {}
    for steps in (None, *sorted(set(config.compare_steps) | {config.ddim_steps}, reverse=True)):
        start = time.perf_counter()
        pairs = Pairs.from_tensor(sample_ddpm(model, n, steps, config, run, run.generator(400)))
        out[f"DDPM {config.timesteps}" if steps is None else f"DDIM {steps}"] = \
            (steps or config.timesteps, pairs, (time.perf_counter() - start) / n)
    return out


def sample(name: str, model, n: int, config: Config, run, gen) -> torch.Tensor:
    """``n`` pairs from a generator: the DCGAN, or the DDPM by DDIM in ``ddim_steps``."""
    if name == "GAN":
        return dcgan.sample(model, n, model.config, run.device, gen)
    return sample_ddpm(model, n, config.ddim_steps, config, run, gen)


# ---- segmenter ----------------------------------------------------------------------------------

def segmenter(config: Config, in_channels: int):
    from monai.networks.nets import UNet

    return UNet(spatial_dims=2, in_channels=in_channels, out_channels=1, channels=config.seg_channels,
                strides=(2,) * (len(config.seg_channels) - 1), num_res_units=1)


def train_segmenter(pairs: Pairs, config: Config, run, init_seed: int, gen: torch.Generator):
    """The U-Net (initialised from ``init_seed``: the same weights for every source) with Dice + BCE."""
    from monai.losses import DiceCELoss

    with seeded(init_seed):
        model = segmenter(config, pairs.images.shape[1]).to(run.device)
    optimiser = torch.optim.Adam(model.parameters(), lr=config.seg_lr)
    loss_fn = DiceCELoss(sigmoid=True)
    images, masks = torch.from_numpy(pairs.images), torch.from_numpy(pairs.masks[:, None].astype(np.float32))
    losses = []
    for _ in range(config.seg_steps):
        idx = torch.randint(0, len(images), (config.seg_batch,), generator=gen)
        flip = torch.rand(len(idx), generator=gen) < 0.5  # left-right flips: brains are near-symmetric
        x, y = images[idx], masks[idx]
        flip = flip[:, None, None, None]
        x, y = torch.where(flip, x.flip(-1), x), torch.where(flip, y.flip(-1), y)
        with run.autocast():
            logits = model(x.to(run.device))
        loss = loss_fn(logits.float(), y.to(run.device))
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    return model.eval(), losses


@torch.no_grad()
def segment(model, images: np.ndarray, run) -> np.ndarray:
    x = torch.from_numpy(images)
    with run.autocast():
        logits = torch.cat([model(b.to(run.device)).float().cpu() for b in x.split(256)])
    return (logits[:, 0] > 0).numpy()


def evaluate_sources(train: Pairs, test: Pairs, synthetic: dict[str, Pairs], config: Config, run):
    """The same U-Net trained on each source, scored on the held-out real slices, per seed."""
    sets = {"real": train, **synthetic}
    sets.update({f"real+{g}": Pairs(np.concatenate([train.images, synthetic[g].images]),
                                    np.concatenate([train.masks, synthetic[g].masks])) for g in GENERATORS})
    per_seed, curves = {s: [] for s in SOURCES}, {}
    jobs = [(seed, source) for seed in range(config.seg_seeds) for source in SOURCES]
    for seed, source in run.progress(jobs, "U-Nets"):
        model, losses = train_segmenter(sets[source], config, run, init_seed=run.seed + 1000 + seed,
                                        gen=run.generator(2000 + 10 * seed + SOURCES.index(source)))
        per_seed[source].append(segmentation_scores(test.masks, segment(model, test.images, run)))
        curves.setdefault(source, losses)
    results = {}
    for source, scores in per_seed.items():
        results[source] = {k: float(np.nanmean([s[k] for s in scores])) for k in scores[0]}
        results[source]["dice_std"] = float(np.std([s["dice"] for s in scores]))
        results[source]["dice_per_seed"] = [s["dice"] for s in scores]
    return results, curves


# ---- FID and memorisation ---------------------------------------------------------------------------

class CachedInception(torch.nn.Module):
    """The standard FID Inception (on the run's device), remembering each image batch's features, so
    that the real set is embedded once however many generators it is compared with."""
    num_features = 2048

    def __init__(self, device):
        super().__init__()
        self.net, self.device, self.cache = fid_inception().to(device), device, {}

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        key = hashlib.sha1(images.detach().cpu().numpy().tobytes()).hexdigest() + str(tuple(images.shape))
        if key not in self.cache:
            self.cache[key] = self.net(images.to(self.device)).float().cpu()
        return self.cache[key]


def first_channel(pairs: Pairs, n: int) -> np.ndarray:
    return pairs.images[:n, 0]  # FID on the T1 (phantom) or first BraTS sequence, grey in [0, 1]


def memorisation(generated: Pairs, training: Pairs, held_out: Pairs) -> dict:
    """Max correlation with any training pair, for the samples and for held-out real pairs; ``excess``:
    the samples' mean minus the held-out mean, which corrects for the training set's size (more pairs
    give a higher maximum by themselves)."""
    ours = max_correlation(generated.flat(), training.flat())
    real = max_correlation(held_out.flat(), training.flat())
    return {"values": ours.tolist(), "real_values": real.tolist(), "mean": float(ours.mean()),
            "median": float(np.median(ours)), "real_mean": float(real.mean()),
            "excess": float(ours.mean() - real.mean()),  # above the held-out baseline for this training set
            "above_real_max": float(np.mean(ours > real.max()))}  # closer to a training pair than any real slice


# ---- figures ------------------------------------------------------------------------------------


def plot_samples(sets: dict[str, Pairs], kind: str, run) -> str:
    plt = pyplot()
    n = 6
    fig, axes = plt.subplots(len(sets), n, figsize=(1.6 * n, 1.75 * len(sets)), squeeze=False)
    for row, (name, pairs) in zip(axes, sets.items()):
        for i, ax in enumerate(row):
            ax.imshow(pairs.images[i, 0], cmap="gray", vmin=0, vmax=1)
            if pairs.masks[i].any():
                ax.contour(pairs.masks[i], levels=[0.5], colors="red", linewidths=0.8)
            ax.set_xticks([])
            ax.set_yticks([])
        row[0].set_ylabel(name, fontsize=9)
    fig.suptitle(f"Image + tumour mask (red contour): {kind} pairs and generated pairs", fontsize=10)
    return save(fig, run, "samples.png")


def plot_dice(seg: dict, kind: str, run) -> str:
    """The counterpart of the paper's Figure 8: Dice of the same U-Net per training source."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    colours = ["#444444", "#d95f02", "#1b9e77", "#fc8d62", "#66c2a5"]
    means = [seg[s]["dice"] for s in SOURCES]
    ax.bar(SOURCES, means, yerr=[seg[s]["dice_std"] for s in SOURCES], color=colours, capsize=4)
    for s_index, s in enumerate(SOURCES):
        ax.scatter([s_index] * len(seg[s]["dice_per_seed"]), seg[s]["dice_per_seed"], color="black", s=8, zorder=3)
        ax.text(s_index, means[s_index] + 0.02, f"{means[s_index]:.2f}", ha="center", fontsize=8)
    real = seg["real"]["dice"]
    ax.axhspan(RATIO_BAND[0] * real, RATIO_BAND[1] * real, color="grey", alpha=0.2,
               label="paper: synthetic reaches 80-90% of real")
    ax.set_ylim(0, 1)
    ax.set_ylabel("Dice on held-out real slices")
    ax.set_title(f"U-Net trained on each source ({kind} data; mean and seeds)", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    return save(fig, run, "dice_per_source.png")


def plot_memorisation(mem: dict, sizes: dict, kind: str, run) -> str:
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5), sharey=True)
    bins = np.linspace(min(min(m["values"] + m["real_values"]) for g in mem.values() for m in g.values()), 1, 30)
    for ax, label in zip(axes, ("small", "large")):
        ax.hist(mem[label]["GAN"]["real_values"], bins, color="grey", alpha=0.5, density=True, label="held-out real")
        for name, colour in zip(GENERATORS, ("#d95f02", "#1b9e77")):
            ax.hist(mem[label][name]["values"], bins, histtype="step", linewidth=1.6, color=colour, density=True,
                    label=name)
        ax.set_title(f"trained on {sizes[label]} {kind} pairs", fontsize=10)
        ax.set_xlabel("highest correlation with any training pair")
    axes[0].set_ylabel("density")
    axes[0].legend(fontsize=8)
    fig.suptitle("Memorisation: near 1 means a copy of a training image + mask", fontsize=10)
    return save(fig, run, "memorisation.png")


def plot_curves(models: dict, seg_curves: dict, sampling: dict, run) -> str:
    plt = pyplot()
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.4))
    for label, style in (("large", "-"), ("small", ":")):
        history = models["GAN", label][1]
        axes[0].plot(history["d_loss"], style, color="#d95f02", label=f"D, {label} set")
        axes[0].plot(history["g_loss"], style, color="#7570b3", label=f"G, {label} set")
        losses = np.array(models["DDPM", label][1])
        window = max(1, len(losses) // 50)
        axes[1].plot(np.convolve(losses, np.ones(window) / window, "valid"), style, color="#1b9e77",
                     label=f"{label} set")
    axes[0].set(title="DCGAN losses", xlabel="epoch")
    axes[1].set(title="DDPM noise-prediction MSE (smoothed)", xlabel="step", yscale="log")
    for source, losses in seg_curves.items():
        axes[2].plot(np.convolve(losses, np.ones(10) / 10, "valid") if len(losses) > 10 else losses, label=source)
    axes[2].set(title="U-Net Dice + BCE loss (first seed)", xlabel="step")
    names = list(sampling)
    axes[3].plot(range(len(names)), [sampling[n]["fid"] for n in names], "o-", color="#1b9e77")
    axes[3].set_xticks(range(len(names)), names, rotation=20, fontsize=8)
    axes[3].set(title="DDPM sampling: FID by step count", ylabel="FID (few images: biased high)")
    for i, n in enumerate(names):
        axes[3].annotate(f"{sampling[n]['s_per_image'] * 1000:.0f} ms/img", (i, sampling[n]["fid"]), fontsize=7,
                         textcoords="offset points", xytext=(0, 6), ha="center")
    for ax in axes[:3]:
        ax.legend(fontsize=7)
    return save(fig, run, "training_curves.png")


# ---- verdicts -----------------------------------------------------------------------------------

def seed_spread(scores: dict) -> str:
    """'Dice per seed 0.812, 0.034 (std 0.389)': one collapsed seed shows."""
    per_seed = scores["dice_per_seed"]
    return f"Dice per seed {', '.join(f'{d:.3f}' for d in per_seed)} (std {scores['dice_std']:.3f})"


def claims(seg: dict, ratios: dict, fid: dict, mem: dict, sizes: dict) -> list[Claim]:
    out = []
    for name in GENERATORS:
        out.append(Claim(f"Segmenters trained on synthetic images reach Dice scores that are 80-90% of those trained "
                         f"on real images ({name}; held if the ratio is 0.8 or more)", SOURCE,
                         ratios[name] >= RATIO_BAND[0],
                         f"U-Net Dice trained on {name} pairs {seg[name]['dice']:.3f} vs real {seg['real']['dice']:.3f}: "
                         f"ratio {ratios[name]:.2f} (paper's band 0.80-0.90); over {len(seg[name]['dice_per_seed'])} "
                         f"seed(s), {name} {seed_spread(seg[name])}, real {seed_spread(seg['real'])}"))
    small, large = mem["small"], mem["large"]
    # memorising means samples closer to the training set than new real slices are: a positive excess
    held = (small["DDPM"]["excess"] > 0 and small["DDPM"]["excess"] > large["DDPM"]["excess"]
            and small["DDPM"]["excess"] > small["GAN"]["excess"])
    out.append(Claim("Diffusion models memorise training images when the data set is small (held if the DDPM's "
                     "excess over held-out real slices - the mean highest correlation with the training set of its "
                     "samples minus that of held-out real slices with the same set - is positive on the small set, "
                     "larger there than on the larger set, and larger than the GAN's on the small set)",
                     SOURCE, held,
                     f"excess of the mean max correlation over held-out real slices, DDPM: "
                     f"{small['DDPM']['excess']:+.3f} on {sizes['small']} pairs vs {large['DDPM']['excess']:+.3f} on "
                     f"{sizes['large']}; GAN: {small['GAN']['excess']:+.3f} vs {large['GAN']['excess']:+.3f} "
                     f"(means, DDPM {small['DDPM']['mean']:.3f} vs {large['DDPM']['mean']:.3f}, GAN "
                     f"{small['GAN']['mean']:.3f} vs {large['GAN']['mean']:.3f}; held-out real "
                     f"{small['DDPM']['real_mean']:.3f} vs {large['DDPM']['real_mean']:.3f}). Samples closer to a "
                     f"training pair than any held-out real slice, small set: DDPM "
                     f"{small['DDPM']['above_real_max']:.0%}, GAN {small['GAN']['above_real_max']:.0%}"))
    better_fid = min(GENERATORS, key=lambda g: fid[g]["fid"])
    better_dice = max(GENERATORS, key=lambda g: seg[g]["dice"])
    gap = abs(seg["GAN"]["dice"] - seg["DDPM"]["dice"])
    spread = max(seg[g]["dice_std"] for g in GENERATORS)  # a Dice gap inside the seed spread ranks nothing
    evidence = (f"FID GAN {fid['GAN']['fid']:.1f}, DDPM {fid['DDPM']['fid']:.1f} (real vs real floor "
                f"{fid['real held-out']['fid']:.1f}); synthetic-trained Dice GAN {seg['GAN']['dice']:.3f}, "
                f"DDPM {seg['DDPM']['dice']:.3f} (gap {gap:.3f}, largest seed std {spread:.3f})")
    decided = gap > spread
    out.append(Claim("FID does not track segmentation performance (held if the generator with the better FID is not "
                     "the one whose synthetic pairs train the better U-Net; not testable when the two Dice scores "
                     "differ by no more than the seed spread; two generators: a weak test)", SOURCE,
                     better_fid != better_dice if decided else None,
                     (f"{evidence}: better FID {better_fid}, better Dice {better_dice}" if decided else
                      f"Not testable here: the Dice gap is within the seed spread. {evidence}")))
    return out


# ---- the run ------------------------------------------------------------------------------------

def run(config: Config, run) -> Outcome:
    train, test, note = load_data(config, run.seed)
    kind = "phantom" if note.kind == "phantom" else "BraTS"
    sizes = {"small": config.n_small, "large": config.n_train}
    models = train_generators(train, config, run)

    synthetic, timing = {}, {}
    for k, name in enumerate(GENERATORS):
        start = time.perf_counter()
        synthetic[name] = Pairs.from_tensor(sample(name, models[name, "large"][0], config.n_synthetic, config, run,
                                                   run.generator(300 + k)))
        timing[name] = (time.perf_counter() - start) / config.n_synthetic
    seg, seg_curves = evaluate_sources(train, test, synthetic, config, run)
    ratios = {g: seg[g]["dice"] / seg["real"]["dice"] if seg["real"]["dice"] > 0 else float("nan") for g in GENERATORS}

    inception = CachedInception(run.device)
    n_fid = min(config.fid_samples, config.n_train, config.n_test, config.n_synthetic)
    reference = first_channel(train, n_fid)
    fid = {"real held-out": fid_kid(reference, first_channel(test, n_fid), inception)}
    fid.update({g: fid_kid(reference, first_channel(synthetic[g], n_fid), inception) for g in GENERATORS})

    sampling = {}  # the full DDPM chain against DDIM with fewer steps, FID on as many images
    for label, (steps, pairs, seconds) in compare_samplers(models["DDPM", "large"][0], n_fid, config, run).items():
        sampling[label] = {"steps": steps, "images": len(pairs), "s_per_image": seconds,
                           **fid_kid(reference, first_channel(pairs, n_fid), inception)}
    chain = sampling[f"DDPM {config.timesteps}"]["fid"]
    for values in sampling.values():  # quality holds: FID no worse than the full chain's by more than 10%
        values["quality_holds"] = bool(values["fid"] <= 1.1 * chain)

    mem = {}
    for label in ("small", "large"):
        training = train.take(slice(sizes[label]))
        mem[label] = {g: memorisation(Pairs.from_tensor(sample(g, models[g, label][0], config.memorisation_samples,
                                                               config, run, run.generator(500 + k))), training, test)
                      for k, g in enumerate(GENERATORS)}

    figures = [plot_samples({f"real ({kind})": train, **{f"{g}": synthetic[g] for g in GENERATORS}}, kind, run),
               plot_dice(seg, kind, run), plot_memorisation(mem, sizes, kind, run),
               plot_curves(models, seg_curves, sampling, run)]
    metrics = {
        "data": {"kind": note.kind, "size": config.size, "n_train": len(train), "n_small": config.n_small,
                 "n_test": len(test), "tumour_fraction": float(train.masks.mean()),
                 "synthetic_tumour_fraction": {g: float(synthetic[g].masks.mean()) for g in GENERATORS}},
        "segmentation": seg, "ratio": ratios, "fid": fid, "fid_images": n_fid,
        "fid_tracks_dice": min(GENERATORS, key=lambda g: fid[g]["fid"]) == max(GENERATORS, key=lambda g: seg[g]["dice"]),
        "sampling": sampling, "sampling_s_per_image": timing,
        "memorisation": {label: {g: {k: v for k, v in m.items() if not k.endswith("values")} for g, m in group.items()}
                         for label, group in mem.items()},
        "gan_final": {label: {k: v[-1] for k, v in models["GAN", label][1].items()} for label in sizes},
        "ddpm_final_loss": {label: float(np.mean(models["DDPM", label][1][-50:])) for label in sizes},
    }
    return Outcome(metrics, rows(metrics, config), claims(seg, ratios, fid, mem, sizes), data_notes(note, n_fid),
                   figures, differences(config, note))


def rows(metrics: dict, config: Config) -> list[Row]:
    seg, out = metrics["segmentation"], []
    seeds = f"mean of {config.seg_seeds} seed(s)"
    size, n_test = metrics["data"]["size"], metrics["data"]["n_test"]
    for source in SOURCES:
        penalty = (f"an empty prediction scores the image diagonal ({diagonal((size, size)):.0f} px): "
                   f"{seg[source]['missed']:.1f} of {n_test} test slices on average over seeds")
        out += [Row("Dice", f"U-Net trained on {source}", seg[source]["dice"], NOT_REPORTED, True, seeds),
                Row("Hausdorff (max, px)", f"U-Net trained on {source}", seg[source]["hausdorff_max"], NOT_REPORTED,
                    False, f"the paper's Hausdorff is the maximum; px at the working size; {penalty}"),
                Row("Hausdorff 95 (px)", f"U-Net trained on {source}", seg[source]["hausdorff_95"], NOT_REPORTED,
                    False, penalty)]
    for g in GENERATORS:
        out.append(Row("Synthetic/real Dice ratio", f"U-Net trained on {g} pairs", metrics["ratio"][g], RATIO_LOW, True,
                       "paper's band 0.8-0.9"))
    n = metrics["fid_images"]
    for name, values in metrics["fid"].items():
        out.append(Row("FID", f"{name} vs real training ({n} images)", values["fid"], NOT_REPORTED, False,
                       "real held-out: the floor at this count" if name == "real held-out" else "biased high at this count"))
    for label, values in metrics["sampling"].items():
        out += [Row("FID", f"DDPM sampled by {label} steps ({n} images)", values["fid"], NOT_REPORTED, False),
                Row("Sampling time (ms per pair)", f"DDPM sampled by {label} steps", 1000 * values["s_per_image"],
                    NOT_REPORTED, False, f"every sampler timed on the same {values['images']} pairs")]
    for label, group in metrics["memorisation"].items():
        n_pairs = metrics["data"]["n_small" if label == "small" else "n_train"]
        for g, values in group.items():
            out.append(Row("Mean max correlation with training", f"{g} trained on {n_pairs} pairs", values["mean"],
                           NOT_REPORTED, False, f"held-out real pairs: {values['real_mean']:.3f} (excess "
                           f"{values['excess']:+.3f})"))
    return out


def data_notes(note: DataNote, n_fid: int) -> list[DataNote]:
    return [note, DataNote("generated pairs", "synthetic", "image + mask pairs sampled from the DCGAN and the DDPM; "
                           f"FID on {n_fid} images per set is biased high and noisy (its real-vs-real floor is shown)")]


def differences(config: Config, note: DataNote) -> list[str]:
    out = []
    if note.kind == "phantom":
        out.append("Phantom data: tumours drawn on slices of the real MNI152 T1 template, one T1 channel + mask, "
                   "instead of BraTS 2020/2021 (four sequences + annotation); no BraTS offline (--set brats=PATH).")
    out += [
        f"{config.size} px instead of 256 px; {config.n_train} training pairs (small set {config.n_small}) and "
        f"{config.n_test} held-out slices.",
        f"One DCGAN (width {config.gan_width}) instead of progressive GAN and StyleGAN 1-3.",
        f"A DDPM with a {config.timesteps}-step cosine chain (paper: 4000 steps), UNet2DModel widths "
        f"{config.ddpm_channels}, {config.ddpm_steps} steps at lr {config.ddpm_lr:g} (paper: 1e-4); its synthetic "
        f"pairs are sampled by DDIM in {config.ddim_steps} steps.",
        f"One U-Net (MONAI, widths {config.seg_channels}, Adam lr {config.seg_lr:g}, {config.seg_steps} steps) with "
        f"{config.seg_seeds} seed(s); the paper: U-Net (lr 2e-2) and Swin transformer over 10 seeds.",
        f"Whole-tumour binary masks; Hausdorff distances in pixels of the working size; an empty prediction scores "
        f"the image diagonal ({diagonal((config.size, config.size)):.0f} px) on a slice with tumour (a missed tumour "
        "is penalised, not dropped); a slice without tumour and a non-empty prediction has no defined distance "
        "and is left out.",
        "No Inception Score (its weights are not obtainable offline); FID on few images.",
        "Memorisation measured as the highest Pearson correlation of the image + mask pair with any training pair, "
        "judged by its excess over held-out real slices against the same training set (a larger set raises the "
        "highest correlation by itself).",
        "Sampling times: every sampler in the step-count comparison draws and is timed on the same number of pairs.",
    ]
    return out

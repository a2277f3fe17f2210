"""Paper 5's pipeline, top to bottom: the image + mask pairs, the two generators (DCGAN and DDPM)
trained on a larger and a small set, their samplers, the U-Net segmenter trained on each source
with early stopping, FID and the memorisation statistic. Everything from ``train_generators`` on
is one seed's training; ``trial`` in the package runs it once per seed.

Images are (N, C, H, W) float32 in [0, 1] with C = 1 (phantom T1) or 4 (BraTS sequences); masks
(N, H, W) bool. Both generators learn the pair as one tensor (N, C + 1, H, W) in [-1, 1]. Every
random draw comes from a named stream of the run (``run.rng``, ``run.torch_generator``,
``run.seeded`` around building a network).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from diffusers import DDIMScheduler, DDPMScheduler, UNet2DModel
from monai.losses import DiceCELoss
from monai.networks.nets import UNet
from skimage.transform import resize
from torch.nn import functional as F

from reproductions.common import dcgan
from reproductions.common.batches import in_batches
from reproductions.common.early_stopping import EarlyStopping
from reproductions.data.loaders import brats
from reproductions.data.offline import DataError
from reproductions.data.phantoms import brain_phantom
from reproductions.metrics.images import FidFeatures
from reproductions.metrics.memorisation import nearest_mask_distance
from reproductions.metrics.segmentation import dice, segmentation_scores
from reproductions.outcome import DataNote
from reproductions.run import Run

if TYPE_CHECKING:
    from reproductions.paper5_gan_vs_diffusion import Config

GENERATORS = ("GAN", "DDPM")
SOURCES = ("real", "GAN", "DDPM", "real+GAN", "real+DDPM")  # what the U-Net is trained on


def sources(config: Config) -> tuple[str, ...]:
    """The training sources of this config: real + synthetic mixes only with ``mixed``."""
    return SOURCES if config.mixed else SOURCES[:3]


def slug(name: str) -> str:
    """A source or generator as part of a stream name: "real+GAN" -> "real-gan"."""
    return name.lower().replace("+", "-")


# ---- data ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Pairs:
    images: np.ndarray  # (N, C, H, W) float32 in [0, 1]: one T1 channel (phantom) or four BraTS sequences
    masks: np.ndarray  # (N, H, W) bool whole tumour

    def __len__(self):
        return len(self.masks)

    def take(self, index) -> Pairs:
        return Pairs(self.images[index], self.masks[index])

    def flat(self) -> np.ndarray:
        """(N, C + 1, H, W) in [0, 1]: the image channels and the mask as one array."""
        masks = self.masks[:, None].astype(np.float32)  # (N, H, W) -> (N, 1, H, W)
        return np.concatenate([self.images, masks], axis=1)

    def tensor(self) -> torch.Tensor:
        """(N, C + 1, H, W) in [-1, 1]: what both generators learn."""
        return torch.from_numpy(self.flat() * 2 - 1)

    @classmethod
    def from_tensor(cls, x: torch.Tensor) -> Pairs:
        """Generated (N, C + 1, H, W) in [-1, 1] -> pairs; the mask channel is thresholded at its midpoint."""
        x = x.float().clamp(-1, 1).numpy()
        return cls(((x[:, :-1] + 1) / 2).astype(np.float32), x[:, -1] > 0)  # (N, C, H, W) and (N, H, W)


def load_brats(folder: str, size: int) -> tuple[Pairs, np.ndarray, DataNote]:
    """Real BraTS slices with tumour at ``size`` px, their subject of each slice (N,), and the data note."""


    if not Path(folder).is_dir():
        raise DataError(f"brats: {folder} is not a folder of BraTS subject folders")
    slices = brats(Path(folder), min_tumour_pixels=50)
    images = np.stack([resize(s, (s.shape[0], size, size), order=1, anti_aliasing=True) for s in slices.images])
    masks = np.stack([resize(m > 0, (size, size), order=0) for m in slices.masks]).astype(bool)
    note = DataNote("BraTS", "real", f"{len(images)} axial slices with tumour from {len(slices.names)} subjects in "
                    f"{folder}; T1, T1ce, T2, FLAIR at {size} px; whole tumour (labels > 0); split by subject")
    return Pairs(images.astype(np.float32), masks), slices.subjects, note


def load_phantom(config: Config, run: Run) -> tuple[Pairs, np.ndarray, DataNote]:
    """Phantom pairs (tumours drawn on MNI152 slices); every slice is its own group."""

    seed = int(run.rng("phantom").integers(2**31))  # the phantom module takes an int seed
    phantom = brain_phantom(config.n_train + config.n_test, config.size, seed)
    pairs = Pairs(phantom.images[:, None], phantom.masks > 0)  # (N, H, W) -> (N, 1, H, W)
    note = DataNote("brain MRI phantom", "phantom", f"{len(pairs)} {phantom.source}: axial slices of the real "
                    f"template with a drawn tumour, at {config.size} px; whole tumour mask")
    return pairs, np.arange(len(pairs)), note


def load_data(config: Config, run: Run) -> tuple[Pairs, Pairs, DataNote]:
    """Training pairs (the first ``n_small`` are the small set) and held-out test pairs, split by group
    (BraTS: subject) so that no test subject is seen in training."""
    pairs, groups, note = load_brats(config.brats, config.size) if config.brats else load_phantom(config, run)
    rng = run.rng("data-split")
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


# ---- the DCGAN ----------------------------------------------------------------------------------

def gan_config(config: Config, channels: int, n_images: int) -> dcgan.DCGANConfig:
    """The DCGAN for ``n_images`` pairs, with as many optimisation steps as on the larger set."""
    batch = min(config.gan_batch, config.n_train)
    steps = config.gan_epochs * (config.n_train // batch)
    per_epoch = max(n_images // min(batch, n_images), 1)
    return dcgan.DCGANConfig(width=config.gan_width, size=config.size, channels=channels,
                             epochs=max(1, round(steps / per_epoch)), batch_size=batch)


def train_gan(x: torch.Tensor, config: Config, run: Run, stream: str):
    """The DCGAN on pairs ``x`` (N, C + 1, H, W) in [-1, 1]; returns (generator, per-epoch history). Its
    weights come from the stream "<stream>/init", its batches and noise from "<stream>/batches"."""
    return dcgan.train_dcgan(x, None, gan_config(config, x.shape[1], len(x)), run, stream)


# ---- the DDPM -----------------------------------------------------------------------------------

def ddpm_network(config: Config, channels: int):
    levels = len(config.ddpm_channels)
    attention = config.ddpm_attention
    down = tuple("AttnDownBlock2D" if attention and i == levels - 1 else "DownBlock2D" for i in range(levels))
    up = tuple("AttnUpBlock2D" if attention and i == 0 else "UpBlock2D" for i in range(levels))
    return UNet2DModel(sample_size=config.size, in_channels=channels, out_channels=channels,
                       block_out_channels=config.ddpm_channels, layers_per_block=1, down_block_types=down,
                       up_block_types=up, norm_num_groups=8)


def noise_schedule(config: Config):
    # cosine betas reach pure noise at any chain length (linear betas need about 1000 steps)
    return DDPMScheduler(num_train_timesteps=config.timesteps, beta_schedule="squaredcos_cap_v2",
                         prediction_type=config.ddpm_prediction)


def train_ddpm(x: torch.Tensor, config: Config, run: Run, stream: str):
    """A DDPM on pairs ``x`` (N, C, H, W) in [-1, 1], predicting the noise or v; returns (network, losses).
    Its weights come from the stream "<stream>-init", its batches, noise and timesteps from "<stream>-train"."""
    gen, scheduler = run.torch_generator(f"{stream}-train"), noise_schedule(config)
    with run.seeded(f"{stream}-init"):
        model = ddpm_network(config, x.shape[1]).to(run.device)
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.ddpm_lr)
    losses = []
    for _ in run.progress(range(config.ddpm_steps), f"DDPM on {len(x)} pairs"):
        batch = x[torch.randint(0, len(x), (config.ddpm_batch,), generator=gen)]  # (B, C, H, W)
        noise = torch.randn(batch.shape, generator=gen)
        t = torch.randint(0, config.timesteps, (len(batch),), generator=gen)  # (B,)
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
def sample_ddpm(model, n: int, steps: int | None, config: Config, run: Run, gen: torch.Generator,
                batch: int = 256) -> torch.Tensor:
    """``n`` pairs (n, C, H, W) in [-1, 1] on the CPU: the full DDPM chain (``steps`` None) or DDIM (eta 0)."""

    schedule = noise_schedule(config)
    if steps is not None:  # trailing spacing starts DDIM at the last timestep, which few steps need
        schedule = DDIMScheduler.from_config(schedule.config, timestep_spacing="trailing")
    schedule.set_timesteps(steps or config.timesteps)
    channels = model.config.in_channels
    out = []
    for start in range(0, n, batch):
        # 1. start from pure noise, drawn on the CPU from the sampler's stream: (b, C, H, W)
        x = torch.randn((min(batch, n - start), channels, config.size, config.size), generator=gen).to(run.device)
        for t in schedule.timesteps:
            # 2. predict the noise (or v) at timestep t
            with run.autocast():
                predicted = model(x, t.to(run.device)).sample.float()
            # 3. step from x_t to x_{t-1}: the DDPM draws fresh noise each step, DDIM (eta 0) none
            extra = {"generator": gen} if steps is None else {}
            x = schedule.step(predicted, t, x, **extra).prev_sample
        # 4. keep the finished batch on the CPU
        out.append(x.float().cpu())
    return torch.cat(out)


# ---- both generators ----------------------------------------------------------------------------

def train_generators(train: Pairs, config: Config, run: Run) -> dict:
    """Both generators on the larger and on the small set: {(name, "large" | "small"): (model, history)}."""
    models = {}
    for label, pairs in (("large", train), ("small", train.take(slice(config.n_small)))):
        x = pairs.tensor()  # (N, C + 1, H, W) in [-1, 1]
        models["GAN", label] = train_gan(x, config, run, f"gan-{label}")
        models["DDPM", label] = train_ddpm(x, config, run, f"ddpm-{label}")
    return models


def sample(name: str, model, n: int, config: Config, run: Run, gen: torch.Generator) -> torch.Tensor:
    """``n`` pairs (n, C + 1, H, W) in [-1, 1] from a generator: the DCGAN, or the DDPM by DDIM in ``ddim_steps``."""
    if name == "GAN":
        return dcgan.sample(model, n, model.config, run.device, gen)
    return sample_ddpm(model, n, config.ddim_steps, config, run, gen)


def sample_synthetic(models: dict, config: Config, run: Run) -> tuple[dict[str, Pairs], dict[str, float]]:
    """``n_synthetic`` pairs from each generator trained on the larger set, and the seconds per pair."""
    synthetic, timing = {}, {}
    for name in GENERATORS:
        start = time.perf_counter()
        x = sample(name, models[name, "large"][0], config.n_synthetic, config, run,
                   run.torch_generator(f"{slug(name)}-synthetic"))
        synthetic[name] = Pairs.from_tensor(x)
        timing[name] = (time.perf_counter() - start) / config.n_synthetic
    return synthetic, timing


def compare_samplers(model, n: int, config: Config, run: Run) -> dict[str, tuple[int, Pairs, float]]:
    """The full DDPM chain and DDIM at each compared step count (and ``ddim_steps``), each drawing the
    same ``n`` pairs from the same stream and timed the same way: {label: (steps, pairs, s per pair)}."""
    out = {}
    for steps in (None, *sorted(set(config.compare_steps) | {config.ddim_steps}, reverse=True)):
        start = time.perf_counter()
        pairs = Pairs.from_tensor(sample_ddpm(model, n, steps, config, run, run.torch_generator("ddpm-compare")))
        out[f"DDPM {config.timesteps}" if steps is None else f"DDIM {steps}"] = \
            (steps or config.timesteps, pairs, (time.perf_counter() - start) / n)
    return out


# ---- the segmenter ------------------------------------------------------------------------------

def segmenter(config: Config, in_channels: int):
    return UNet(spatial_dims=2, in_channels=in_channels, out_channels=1, channels=config.seg_channels,
                strides=(2,) * (len(config.seg_channels) - 1), num_res_units=1)


def split_validation(pairs: Pairs, config: Config, gen: torch.Generator) -> tuple[Pairs, Pairs]:
    """(fitting, validation) parts of one training source: the U-Net stops on the source's own held-out
    pairs, so a synthetic-trained U-Net never sees a real slice."""
    order = torch.randperm(len(pairs), generator=gen).numpy()
    n_val = max(4, round(config.seg_val_share * len(pairs)))
    return pairs.take(order[n_val:]), pairs.take(order[:n_val])


def train_segmenter(pairs: Pairs, config: Config, run: Run, init: str, gen: torch.Generator):
    """The U-Net (initialised from the stream ``init``: the same weights for every source) with Dice + BCE,
    stopped early: every ``seg_eval_every`` steps its Dice on the source's validation pairs is read, and
    training ends after ``seg_patience`` reads without a gain (or at ``seg_max_steps``); the weights of
    the best read are kept. Returns (model, {"loss", "val_dice", "steps", "early"})."""
    fitting, validation = split_validation(pairs, config, gen)
    with run.seeded(init):
        model = segmenter(config, pairs.images.shape[1]).to(run.device)
    optimiser = torch.optim.Adam(model.parameters(), lr=config.seg_lr)
    loss_fn = DiceCELoss(sigmoid=True)
    images = torch.from_numpy(fitting.images)  # (N, C, H, W)
    masks = torch.from_numpy(fitting.masks[:, None].astype(np.float32))  # (N, H, W) -> (N, 1, H, W)
    history = {"loss": [], "val_dice": [], "steps": config.seg_max_steps, "early": False}
    stopping = EarlyStopping(config.seg_patience, higher_is_better=True, min_gain=1e-3)  # a smaller gain is noise
    for step in range(1, config.seg_max_steps + 1):
        model.train()
        idx = torch.randint(0, len(images), (config.seg_batch,), generator=gen)
        flip = torch.rand(len(idx), generator=gen) < 0.5  # left-right flips: brains are near-symmetric
        x, y = images[idx], masks[idx]
        flip = flip[:, None, None, None]  # (B,) -> (B, 1, 1, 1), to broadcast over the images
        x, y = torch.where(flip, x.flip(-1), x), torch.where(flip, y.flip(-1), y)
        with run.autocast():
            logits = model(x.to(run.device))
        loss = loss_fn(logits.float(), y.to(run.device))
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        history["loss"].append(loss.item())
        if step % config.seg_eval_every:
            continue
        predicted = segment(model.eval(), validation.images, run)
        history["val_dice"].append(float(np.mean(dice(validation.masks, predicted))))
        if stopping.read(history["val_dice"][-1], model):
            history["steps"], history["early"] = step, True
            break
    stopping.restore(model)
    return model.eval(), history


def segment(model, images: np.ndarray, run: Run) -> np.ndarray:
    """Tumour masks (N, H, W) bool predicted for images (N, C, H, W)."""
    def logits(x):
        with run.autocast():
            return model(x).float()
    with torch.no_grad():
        out = in_batches(logits, torch.from_numpy(images), 256, run.device)  # (N, 1, H, W)
    return (out[:, 0] > 0).numpy()  # (N, 1, H, W) -> (N, H, W)


def evaluate_sources(train: Pairs, test: Pairs, synthetic: dict[str, Pairs], config: Config, run: Run):
    """The same U-Net trained on each source and scored on the held-out real slices; returns
    ({source: scores}, {source: its training history})."""
    sets = {"real": train, **synthetic}
    sets.update({f"real+{g}": Pairs(np.concatenate([train.images, synthetic[g].images]),
                                    np.concatenate([train.masks, synthetic[g].masks])) for g in GENERATORS})
    scores, histories = {}, {}
    for source in run.progress(sources(config), "U-Nets"):
        model, histories[source] = train_segmenter(sets[source], config, run, init="unet-init",
                                                   gen=run.torch_generator(f"unet-batches-{slug(source)}"))
        scores[source] = segmentation_scores(test.masks, segment(model, test.images, run))
    return scores, histories


# ---- FID and memorisation -------------------------------------------------------------------------

def first_channel(pairs: Pairs, n: int) -> np.ndarray:
    return pairs.images[:n, 0]  # (N, C, H, W) -> (n, H, W): FID on the T1 (phantom) or first BraTS sequence


def fid_images(config: Config) -> int:
    """The number of images in every FID set: one count, so that the FIDs compare."""
    return min(config.fid_samples, config.n_train, config.n_test, config.n_synthetic)


def evaluate_fid(train: Pairs, test: Pairs, synthetic: dict[str, Pairs], ddpm, features: FidFeatures, config: Config,
                 run: Run):
    """FID and KID of held-out real slices (the floor), of each generator and of each DDPM sampler
    against the real training pairs; returns ({set: scores}, {sampler: steps, images, time, scores})."""
    n = fid_images(config)
    reference = first_channel(train, n)

    def against_training(images: np.ndarray, key: str | None = None) -> dict[str, float]:
        return features.fid_kid(reference, images, real_key="real training", fake_key=key,
                                generator=run.torch_generator("kid-subsets"))

    fid = {"real held-out": against_training(first_channel(test, n), "real held-out")}
    fid.update({g: against_training(first_channel(synthetic[g], n)) for g in GENERATORS})
    sampling = {}  # the full DDPM chain against DDIM with fewer steps, FID on as many images
    for label, (steps, pairs, seconds) in compare_samplers(ddpm, n, config, run).items():
        sampling[label] = {"steps": steps, "images": len(pairs), "s_per_image": seconds,
                           **against_training(first_channel(pairs, n))}
    chain = sampling[f"DDPM {config.timesteps}"]["fid"]
    for values in sampling.values():  # quality holds: FID no worse than the full chain's by more than 10%
        values["quality_holds"] = bool(values["fid"] <= 1.1 * chain)
    return fid, sampling


def memorisation(generated: Pairs, training: Pairs, held_out: Pairs) -> dict:
    """Each sample's and each held-out real slice's distance to its nearest training mask (1 - Dice);
    ``excess``: the held-out median minus the samples' (positive: samples lie nearer the training
    masks than new real tumours do, which is copying)."""
    ours = nearest_mask_distance(generated.masks, training.masks)
    real = nearest_mask_distance(held_out.masks, training.masks)
    return {"values": ours.tolist(), "real_values": real.tolist(), "median": float(np.median(ours)),
            "real_median": float(np.median(real)), "excess": float(np.median(real) - np.median(ours)),
            "near_copies": float(np.mean(ours < 0.1)),  # share of samples within 0.1 of a training mask
            "real_near_copies": float(np.mean(real < 0.1))}


def evaluate_memorisation(train: Pairs, test: Pairs, models: dict, config: Config, run: Run) -> dict:
    """{"small" | "large": {generator: memorisation}}; a generator draws the same noise at both set sizes."""
    sizes = {"small": config.n_small, "large": config.n_train}
    return {label: {g: memorisation(Pairs.from_tensor(sample(g, models[g, label][0], config.memorisation_samples,
                                                             config, run,
                                                             run.torch_generator(f"{slug(g)}-memorisation"))),
                                    train.take(slice(sizes[label])), test)
                    for g in GENERATORS}
            for label in ("small", "large")}

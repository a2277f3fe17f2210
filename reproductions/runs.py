"""Run plumbing: seeds, the device, the run folder and its records, and publishing results.

A run folder holds ``config.json``, ``run_info.json`` (status, versions, git commit, device,
seed, profile, wall time), ``metrics.json``, ``results.json`` / ``results.md`` and ``figures/``.
``run_info.json`` is written with status "running" first, so a run killed without a chance to
clean up still shows as unfinished; Ctrl-C marks it "interrupted", an error "failed".
Only a completed ``full`` or ``cpu`` run is published to ``reproductions/results/paperN/``: smoke
runs never touch what the explorer shows, and a ``cpu`` run (the reduced profile for machines
without a GPU) never replaces a committed ``full`` result.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.metadata
import json
import os
import platform
import random
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm.auto import tqdm

from survey.storage import atomic_write

if TYPE_CHECKING:  # torch is the repro extra: each function imports it, so `reproduce list` runs without it
    import torch

PACKAGE = Path(__file__).resolve().parent
RESULTS_DIR = PACKAGE / "results"
RUNS_DIR = PACKAGE / "runs"
PROFILES = ("smoke", "cpu", "full")
PUBLISHED = ("cpu", "full")  # the profiles whose completed runs become the committed results
PROFILE_LABELS = {
    "smoke": "smoke: about a minute on a CPU, to show that the pipeline works; never published",
    "cpu": "cpu: reduced sizes for a machine without a GPU (minutes on 2 cores); published, labelled as such",
    "full": "full: sized for one GPU in under ten minutes; published",
}
VERSIONED = ("torch", "numpy", "scipy", "scikit-learn", "diffusers", "peft", "transformers", "monai",
             "torchmetrics", "scikit-image", "nibabel", "pydicom", "pycocoevalcap", "bert-score")


class RunError(RuntimeError):
    """A run that cannot start as asked (bad device, protected folder); the message says why."""


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch; modules still pass explicit generators where they draw."""
    import torch
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


def choose_device(name: str) -> torch.device:
    import torch
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RunError("--device cuda: no CUDA device is visible to torch here; use --device cpu or auto")
    if name not in ("cpu", "cuda"):
        raise RunError(f"--device {name}: expected auto, cpu or cuda")
    return torch.device(name)


def device_name(device: torch.device) -> str:
    import torch
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in VERSIONED:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found[name] = importlib.metadata.version(name)
    return found


def git_commit() -> str | None:
    """HEAD of the checkout, with "+dirty" when tracked files changed; None outside git."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PACKAGE, capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=PACKAGE,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "")


def write_json(path: Path, data: dict) -> None:
    atomic_write(path, json.dumps(data, indent=2, default=str).encode(), backup=False)


@dataclass
class Run:
    """One run in progress: what a paper module's ``run(config, run)`` may use."""
    paper: str
    profile: str
    seed: int
    device: torch.device
    folder: Path
    info: dict

    def autocast(self):
        """bf16 autocast on a GPU; a no-op on CPU, where bf16 is slow and not what the paper used."""
        import torch
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def generator(self, offset: int = 0) -> torch.Generator:
        """A torch generator seeded from the run's seed (``offset`` separates independent streams)."""
        import torch
        return torch.Generator().manual_seed(self.seed + offset)

    def rng(self, offset: int = 0) -> np.random.Generator:
        return np.random.default_rng(self.seed + offset)

    def progress(self, iterable, desc: str, total: int | None = None):
        return tqdm(iterable, desc=f"{self.paper} {desc}", total=total, leave=False, dynamic_ncols=True)

    def figure(self, name: str) -> tuple[Path, str]:
        """Where to save figure ``name``, and the path to record in the outcome."""
        path = self.folder / "figures" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return path, f"figures/{name}"


def is_inside(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())


def new_run_folder(out: Path | None, paper: str, profile: str, seed: int) -> Path:
    """A fresh folder ``OUT/paperN/<UTC time>-<profile>-seed<S>``; smoke may not write into results/."""
    base = Path(out) if out else RUNS_DIR
    if profile == "smoke" and is_inside(base, RESULTS_DIR):
        raise RunError(f"--out {base}: smoke runs never write into {RESULTS_DIR}; "
                       "only a completed full run is published there")
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    folder = base / paper / f"{stamp}-{profile}-seed{seed}"
    suffix = 1
    while folder.exists():
        suffix += 1
        folder = base / paper / f"{stamp}-{profile}-seed{seed}-{suffix}"
    folder.mkdir(parents=True)
    return folder


@contextlib.contextmanager
def recorded(folder: Path, info: dict):
    """Keep ``run_info.json`` true to the run's state whatever happens inside the block."""
    start = time.perf_counter()
    info["status"] = "running"
    write_json(folder / "run_info.json", info)
    try:
        yield info
        info["status"] = "completed"
    except KeyboardInterrupt:
        info["status"] = "interrupted"
        raise
    except BaseException as err:
        info["status"] = "failed"
        info["error"] = f"{type(err).__name__}: {err}"
        raise
    finally:
        info["wall_time_s"] = round(time.perf_counter() - start, 2)
        info["finished"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        write_json(folder / "run_info.json", info)


def committed_profile(paper: str, results_dir: Path = RESULTS_DIR) -> str | None:
    info = results_dir / paper / "run_info.json"
    return json.loads(info.read_text()).get("profile") if info.exists() else None


def publish(run_folder: Path, paper: str, results_dir: Path = RESULTS_DIR) -> Path:
    """Replace ``results_dir/paper`` with a copy of a completed cpu or full run, in one rename."""
    info = json.loads((run_folder / "run_info.json").read_text())
    if info.get("profile") not in PUBLISHED or info.get("status") != "completed":
        raise RunError(f"{run_folder}: only a completed cpu or full run is published "
                       f"(this one: {info.get('profile')}, {info.get('status')})")
    if info["profile"] == "cpu" and committed_profile(paper, results_dir) == "full":
        raise RunError(f"{run_folder}: not published, since {results_dir / paper} holds a full (GPU-sized) "
                       "result that a reduced cpu run does not replace")
    target = results_dir / paper
    staging = results_dir / f".{paper}.new"
    old = results_dir / f".{paper}.old"
    for leftover in (staging, old):
        shutil.rmtree(leftover, ignore_errors=True)
    shutil.copytree(run_folder, staging)
    if target.exists():
        target.rename(old)
    staging.rename(target)
    shutil.rmtree(old, ignore_errors=True)
    return target

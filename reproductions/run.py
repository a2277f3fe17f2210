"""The typed ``Run`` that a paper's ``main(config, run)`` receives, and the run folder around it.

A ``Run`` carries what a paper may use while it runs: its name, profile and seed, the device with
its autocast dtype, the run folder and its figures, progress bars, a metrics log, random
streams by name, and replicas: the repeated trainings (seeds) a claim is decided on. A stream is
derived from the seed and its name alone (numpy's ``SeedSequence``: the seed is the entropy, a
SHA-256 of the name the spawn key), so adding a stream never shifts another and seed 1's stream
"x" is never seed 0's stream "y", as seed + offset would make it.

A run folder holds ``config.json``, ``run_info.json`` (status, versions, git commit, device,
seed, profile, wall time), ``metrics.json``, ``metrics.jsonl`` (what ``run.log`` recorded),
``results.json`` / ``results.md`` and ``figures/``. ``run_info.json`` is written with status
"running" first, so a run killed without a chance to clean up still shows as unfinished; Ctrl-C
marks it "interrupted", an error "failed". Only a completed ``full`` or ``cpu`` run is published
to ``reproductions/results/paperN/``: smoke runs never touch what the explorer shows, and a ``cpu``
run (the reduced profile for machines without a GPU) never replaces a committed ``full`` result.

torch is the repro extra: it is imported where it is used, so ``reproduce list`` runs without it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import importlib.metadata
import json
import os
import platform
import random
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm.auto import tqdm

from reproductions.common.numbers import is_missing
from survey.storage import atomic_write

if TYPE_CHECKING:
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
METRICS_LOG = "metrics.jsonl"


class RunError(RuntimeError):
    """A run that cannot start as asked (bad device, protected folder); the message says why."""


# ---- random streams ------------------------------------------------------------------------------

def stream_sequence(seed: int, stream: str) -> np.random.SeedSequence:
    """The seed sequence of ``stream`` in a run seeded ``seed``. The name is hashed with SHA-256, not
    Python's ``hash()``, which changes from one process to the next."""
    digest = hashlib.sha256(stream.encode()).digest()
    key = tuple(int.from_bytes(digest[i:i + 4], "little") for i in range(0, 16, 4))  # 128 bits as 4 words
    return np.random.SeedSequence(seed, spawn_key=key)


def stream_seed(seed: int, stream: str) -> int:
    """A 64-bit seed for torch drawn from the same sequence."""
    return int(stream_sequence(seed, stream).generate_state(1, np.uint64)[0])


# ---- the run -------------------------------------------------------------------------------------

@dataclass
class Run:
    """One run in progress: what a paper's ``main(config, run)`` may use."""
    paper: str
    profile: str
    seed: int
    device: torch.device
    folder: Path
    info: dict  # run_info.json as it will be written
    logged: dict[str, list[tuple[int, float | None]]] = field(default_factory=dict)  # run.log's series
    replica: int = 0  # which repeated training of the run this is; replica 0 draws exactly what the run draws

    def __post_init__(self):
        if self.seed < 0:
            raise RunError(f"--seed {self.seed}: a seed is a whole number of 0 or more")

    def replicas(self, n: int) -> list[Run]:
        """``n`` copies of this run whose random streams are independent of one another's (replica k's
        stream "x" is the run's stream "x/replica<k>"); they share the folder and the metrics log, where
        their series are named "replica<k>/<name>"."""
        return [dataclasses.replace(self, replica=k) for k in range(n)]

    def _stream(self, stream: str) -> str:
        return f"{stream}/replica{self.replica}" if self.replica else stream

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of ``autocast``: bf16 on a GPU, fp32 on CPU."""
        import torch
        return torch.bfloat16 if self.device.type == "cuda" else torch.float32

    def autocast(self):
        """bf16 autocast on a GPU; a no-op on CPU, where bf16 is slow and not what the paper used."""
        import torch
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=self.dtype)
        return contextlib.nullcontext()

    def rng(self, stream: str) -> np.random.Generator:
        """A NumPy generator for stream ``stream`` ("gan-init"); each call starts the stream afresh."""
        return np.random.default_rng(stream_sequence(self.seed, self._stream(stream)))

    def int_seed(self, stream: str) -> int:
        """An int seed from stream ``stream``, for what takes one (scikit-learn's ``random_state``, the
        phantoms); below 2**31, as some of them demand."""
        return int(self.rng(stream).integers(2**31))

    def torch_generator(self, stream: str) -> torch.Generator:
        """A CPU torch generator for stream ``stream``; draw on the CPU and move the tensor to the device."""
        import torch
        return torch.Generator().manual_seed(stream_seed(self.seed, self._stream(stream)))

    @contextlib.contextmanager
    def seeded(self, stream: str):
        """Inside the block torch's global generator follows stream ``stream``, so that layers built
        there get the same initial weights every run; outside it nothing changes, since the global
        state is saved before and restored after (``torch.random.fork_rng``). Give it a name of its
        own ("cnn-init"), not the one whose ``torch_generator`` shuffles the batches."""
        import torch
        seed = stream_seed(self.seed, self._stream(stream))
        if self.device.type == "cuda":  # fork and seed the CUDA generators as well as the CPU one
            with torch.random.fork_rng(devices=range(torch.cuda.device_count())):
                torch.manual_seed(seed)
                yield
        else:
            with torch.random.fork_rng(devices=[]):
                torch.default_generator.manual_seed(seed)
                yield

    def progress(self, iterable, desc: str, total: int | None = None):
        replica = f" (replica {self.replica})" if self.replica else ""
        return tqdm(iterable, desc=f"{self.paper} {desc}{replica}", total=total, leave=False, dynamic_ncols=True)

    def figure(self, name: str) -> tuple[Path, str]:
        """Where to save figure ``name``, and the path to record in the outcome (relative to the run folder)."""
        path = self.folder / "figures" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return path, f"figures/{name}"

    def log(self, name: str, value: float, step: int | None = None) -> None:
        """Record ``value`` of the series ``name`` ("d_loss") at ``step`` (default: the next one). Kept in
        ``run.logged`` and appended to ``metrics.jsonl`` at once, so a killed run keeps its curves."""
        name = f"replica{self.replica}/{name}" if self.replica else name
        series = self.logged.setdefault(name, [])
        step = len(series) if step is None else int(step)
        value = None if is_missing(value) else float(value)
        series.append((step, value))
        with open(self.folder / METRICS_LOG, "a", encoding="utf-8") as out:
            out.write(json.dumps({"name": name, "step": step, "value": value}) + "\n")


def seed_everything(seed: int) -> None:
    """A safety net at the start of a run for libraries that draw from the global generators (sklearn
    without a random_state, torchmetrics' KID subsets): papers draw from named streams, never from these."""
    import torch
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


# ---- device and provenance -----------------------------------------------------------------------

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


def determinism() -> dict:
    """What makes a rerun elsewhere give other numbers: torch's thread counts, its deterministic
    switches, the CPU kernels it chose (AVX-512 or AVX2 ones add in other orders), and the thread and
    kernel settings of the environment."""
    import torch
    return {"torch_threads": torch.get_num_threads(), "torch_interop_threads": torch.get_num_interop_threads(),
            "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
            "cudnn_deterministic": torch.backends.cudnn.deterministic,
            "cudnn_benchmark": torch.backends.cudnn.benchmark,
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "env": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "CUBLAS_WORKSPACE_CONFIG",
                                               "ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA") if k in os.environ}}


ANCHOR_SIZE, ANCHOR_PRODUCTS, ANCHOR_REPEATS = 512, 8, 5  # float32 matrix products of the speed anchor


def speed_anchor(device) -> float:
    """The device's speed on a fixed workload, in GFLOP/s: ``ANCHOR_PRODUCTS`` float32 products of two
    512 x 512 matrices with the run's threads, the best of ``ANCHOR_REPEATS`` (a few tenths of a second
    on 2 cores). Machines of one kind differ by 2x from day to day, so a wall time reads against it."""
    import torch
    a = torch.rand(ANCHOR_SIZE, ANCHOR_SIZE, generator=torch.Generator().manual_seed(0)).to(device)
    times = []
    for _ in range(ANCHOR_REPEATS):
        start = time.perf_counter()
        for _ in range(ANCHOR_PRODUCTS):
            b = a @ a
        if b.device.type == "cuda":
            torch.cuda.synchronize(b.device)
        times.append(time.perf_counter() - start)
    return round(2 * ANCHOR_SIZE ** 3 * ANCHOR_PRODUCTS / min(times) / 1e9, 1)


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


# ---- the run folder ------------------------------------------------------------------------------

def write_json(path: Path, data: dict) -> None:
    atomic_write(path, json.dumps(data, indent=2, default=str).encode(), backup=False)


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


# ---- publishing ----------------------------------------------------------------------------------

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

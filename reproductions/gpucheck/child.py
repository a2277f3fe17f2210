"""One job of the GPU check in a process of its own: ``python -m reproductions.gpucheck.child JOB.json``.

The job file says what to run (``probe``: the device and versions; ``smoke`` / ``steps``: a paper's
run through ``runner.execute``, into a scratch folder, never published) and where to write the result
(JSON). A steps job times the full preset's first optimiser steps with a global post-step hook on
every torch optimiser, so no paper is changed: each step's end is one JSON line in the step log
(written at once, so the parent still reads them when it has to kill this process), and once enough
steps are timed, or the job's time is nearly up, the hook ends the run.

An absent data set ends a run as partial (everything before the part that needs it ran), an absent
library as skipped; anything else is a failure, with its traceback on standard error.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
import traceback
from pathlib import Path

import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

from reproductions.cli import is_missing_library
from reproductions.data.offline import DataError
from reproductions.registry import default_registry
from reproductions.run import choose_device, device_name, versions
from reproductions.runner import execute

STOP_MARGIN_S = 3.0  # a steps run ends itself this long before the parent's kill, to write its result


class StepsTimed(BaseException):
    """Raised by the step hook to end a run whose steps are timed. A BaseException, so that no
    paper's ``except Exception`` carries on training."""


class StepTimer:
    """While active, every optimiser step of every torch optimiser appends ``{"t", "optimizer"}`` to
    ``log`` (t: seconds since the timer started, after the device has finished the step; an optimiser's
    first step also gives its class and parameter count), and the ``steps``-th step, or the first at or
    after ``stop_at`` (time.time()), raises StepsTimed."""

    def __init__(self, log: Path, steps: int, stop_at: float, device: torch.device):
        self.log, self.steps, self.stop_at, self.device = log, steps, stop_at, device
        self.optimizers: list[torch.optim.Optimizer] = []
        self.count = 0

    def __enter__(self) -> StepTimer:
        self.start = time.perf_counter()
        self.handle = register_optimizer_step_post_hook(self.hook)
        return self

    def __exit__(self, *exc) -> None:
        self.handle.remove()

    def hook(self, optimizer, args, kwargs) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)  # the step's kernels have run, not only been queued
        line = {"t": round(time.perf_counter() - self.start, 6)}
        known = [i for i, seen in enumerate(self.optimizers) if seen is optimizer]
        if known:
            line["optimizer"] = known[0]
        else:
            self.optimizers.append(optimizer)
            line.update(optimizer=len(self.optimizers) - 1, kind=type(optimizer).__name__,
                        parameters=sum(p.numel() for group in optimizer.param_groups for p in group["params"]))
        with open(self.log, "a", encoding="utf-8") as out:
            out.write(json.dumps(line) + "\n")
        self.count += 1
        if self.count >= self.steps or time.time() >= self.stop_at:
            raise StepsTimed


def outcome(err: BaseException | None) -> tuple[str, str]:
    """(status, detail) of a run that ended with ``err`` (None: it returned)."""
    if err is None:
        return "completed", ""
    if isinstance(err, StepsTimed):
        return "timed", ""
    if isinstance(err, DataError):
        what = f"{err.dataset} absent" if err.dataset else str(err)
        return "partial", f"skipped: {what} (the run stopped where it needs it)"
    if isinstance(err, ModuleNotFoundError) and is_missing_library(err):
        return "skipped", f"skipped: library {err.name} absent"
    return "failed", f"{type(err).__name__}: {err}"


def probe(device: torch.device) -> dict:
    """The device, the versions, and one small matrix product on the device (a CUDA that works)."""
    start = time.perf_counter()
    x = torch.randn(1024, 1024, device=device)
    float((x @ x).sum())
    info = {"status": "completed", "device": str(device), "device_name": device_name(device),
            "torch": torch.__version__, "cuda": torch.version.cuda, "versions": versions(),
            "matmul_s": round(time.perf_counter() - start, 4)}
    if device.type == "cuda":
        properties = torch.cuda.get_device_properties(device)
        info.update(capability=".".join(map(str, torch.cuda.get_device_capability(device))),
                    memory_gib=round(properties.total_memory / 2**30, 1), cudnn=torch.backends.cudnn.version())
    return info


def run_paper(job: dict, device: torch.device) -> dict:
    """The job's paper run (smoke to its end, or the full preset until its steps are timed)."""
    reproduction = default_registry()[job["paper"]]
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    timer = (StepTimer(Path(job["step_log"]), job["steps"], job["deadline"] - STOP_MARGIN_S, device)
             if job["mode"] == "steps" else contextlib.nullcontext())
    start, err = time.perf_counter(), None
    try:
        with timer:
            execute(reproduction, job["profile"], str(device), overrides=job["overrides"], out=Path(job["runs"]))
    except (Exception, StepsTimed) as caught:
        err = caught
    status, detail = outcome(err)
    if status == "failed":
        traceback.print_exception(err)
    result = {"status": status, "detail": detail, "run_s": round(time.perf_counter() - start, 2)}
    if device.type == "cuda":
        with contextlib.suppress(RuntimeError):  # after a CUDA error the device may answer nothing more
            result["peak_memory_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
    return result


def main(job_file: str) -> None:
    job = json.loads(Path(job_file).read_text())
    try:
        device = choose_device(job["device"])
        result = probe(device) if job["mode"] == "probe" else run_paper(job, device)
    except Exception as err:  # the device itself or the registry: nothing of the paper ran
        traceback.print_exc()
        result = {"status": "failed", "detail": f"{type(err).__name__}: {err}"}
    Path(job["result"]).write_text(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main(sys.argv[1])

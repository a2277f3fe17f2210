"""What the GPU check runs and how its budget is shared.

Every paper's smoke profile comes first (what has never run on CUDA), then every paper's ``full``
preset up to its first optimiser steps. A job runs for at most its own limit and, beyond its own
floor, never eats into the floors kept for the jobs after it, so that one slow smoke run cannot
leave the timings without time; a job whose floor no longer fits is skipped and says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from reproductions.data import offline

MODES = ("smoke", "steps")
PROFILE = {"smoke": "smoke", "steps": "full"}
LIMIT_S = {"smoke": 90.0, "steps": 60.0}  # smoke: about a minute on 2 CPU cores; steps: a full preset's set-up too
FLOOR_S = {"smoke": 20.0, "steps": 15.0}  # the least a job is started with: imports, data, a few steps
# Config switches that leave out the part of a paper needing an absent asset. Papers without one run
# until they need it and stop there, which the check records as partial.
SWITCHES = {"fid-inception": {"paper2": ("fid_images=0",), "paper5": ("fid=false",), "paper6": ("fid=false",),
                                   "paper8": ("fid=false",)}}


@dataclass(frozen=True)
class Job:
    paper: str
    mode: str  # "smoke": the smoke profile to its end; "steps": the full preset until its steps are timed
    overrides: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()  # what the overrides leave out, and why

    @property
    def profile(self) -> str:
        return PROFILE[self.mode]

    @property
    def limit_s(self) -> float:
        return LIMIT_S[self.mode]

    @property
    def floor_s(self) -> float:
        return FLOOR_S[self.mode]

    @property
    def name(self) -> str:
        return f"{self.paper} {self.mode}"


def absent_assets(root: Path | None = None) -> list[str]:
    """The offline data sets that are not prepared under ``root`` (default: the data root)."""
    return [name for name in offline.CATALOGUE if not offline.is_ready(name, root)]


def jobs(papers: list[str], absent: list[str], modes: tuple[str, ...] = MODES) -> list[Job]:
    """The smoke job of every paper, then its steps job, with the switches that the absent assets call for."""
    planned = []
    for mode in modes:
        for paper in papers:
            switches = [(asset, SWITCHES[asset][paper]) for asset in absent if paper in SWITCHES.get(asset, {})]
            planned.append(Job(paper, mode, tuple(s for _, pairs in switches for s in pairs),
                               tuple(f"skipped: {asset} absent ({', '.join(pairs)})" for asset, pairs in switches)))
    return planned


def allowance(job: Job, later: list[Job], left_s: float) -> float | None:
    """Seconds ``job`` may run when ``left_s`` of the budget remain and ``later`` jobs wait: its limit,
    less what their floors keep, but never less than its own floor (the jobs keep their order when the
    budget is short); None when not even that floor is left."""
    if left_s < job.floor_s:
        return None
    return min(job.limit_s, left_s, max(job.floor_s, left_s - sum(j.floor_s for j in later)))

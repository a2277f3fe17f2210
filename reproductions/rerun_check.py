"""Does a rerun agree with the committed result? ``reproduce compare RUN_FOLDER`` reads the rerun's
``results.json`` and the committed one of the same paper (``reproductions/results/paperN``) and says,
claim by claim, whether the outcome is the same and whether the rerun's estimate lies inside the
committed interval. A rerun of the same code and seed elsewhere (another CPU, other kernels, other
thread counts) gives other numbers in the last digits, which training amplifies; a verdict worth
signing survives that.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from reproductions import sidebyside
from reproductions.run import RESULTS_DIR
from reproductions.verdict import Interval

SETTINGS = ("profile", "seed")  # what must match for the two runs to be one experiment run twice


@dataclass(frozen=True)
class Agreement:
    """One claim in the committed run and in the rerun."""
    text: str
    committed_outcome: str
    outcome: str
    committed: Interval | None
    estimate: Interval | None

    @property
    def same_outcome(self) -> bool:
        return self.outcome == self.committed_outcome

    @property
    def inside(self) -> bool | None:
        """The rerun's mean within the committed interval; None where the claim has no interval."""
        if self.committed is None or self.estimate is None or math.isnan(self.committed.low):
            return None
        return self.committed.low <= self.estimate.mean <= self.committed.high

    @property
    def agrees(self) -> bool:
        return self.same_outcome and self.inside is not False


@dataclass(frozen=True)
class Comparison:
    paper: str
    committed_run: dict  # results.json's "run" of each
    rerun: dict
    problems: tuple[str, ...]  # why the two are not one experiment run twice (then nothing is compared)
    claims: tuple[Agreement, ...]

    @property
    def agrees(self) -> bool:
        return not self.problems and all(c.agrees for c in self.claims)


def _read(path: Path) -> dict:
    try:
        return sidebyside.read(path)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from err


def _setting(doc: dict, key: str):
    return doc[key] if key in doc else doc["run"][key]  # the profile is top-level, the seed in "run"


def _interval(claim: dict) -> Interval | None:
    return Interval.from_dict(claim["estimate"]) if claim["estimate"] else None


def run_folder(folder: Path) -> Path:
    """``folder`` itself when it is a run folder (it holds results.json), else the newest run under it
    (an ``--out`` folder, or its paperN folder: run ids begin with their UTC start time); a folder of
    several papers' runs is ambiguous."""
    if (folder / "results.json").is_file():
        return folder
    runs = [p.parent for pattern in ("*/results.json", "*/*/results.json") for p in folder.glob(pattern)]
    papers = sorted({run.parent.name for run in runs})
    if not runs:
        raise FileNotFoundError(f"{folder}: holds no run (no results.json in it or in its run folders)")
    if len(papers) > 1:
        raise ValueError(f"{folder}: holds runs of {', '.join(papers)}; give one paper's folder or run folder")
    return max(runs, key=lambda run: run.name)


def compare(rerun_folder: Path, results_dir: Path = RESULTS_DIR) -> Comparison:
    """The rerun in ``rerun_folder`` (see ``run_folder``) against the committed results of its paper."""
    rerun = _read(run_folder(rerun_folder) / "results.json")
    committed_file = results_dir / rerun["paper"] / "results.json"
    if not committed_file.is_file():
        raise FileNotFoundError(f"{committed_file}: no committed results of {rerun['paper']} to compare with")
    committed = _read(committed_file)
    problems = [f"{key}: committed {_setting(committed, key)}, rerun {_setting(rerun, key)}"
                for key in SETTINGS if _setting(committed, key) != _setting(rerun, key)]
    if rerun["status"] != "completed":
        problems.append(f"the rerun's status is {rerun['status']}")
    texts = [c["text"] for c in committed["claims"]], [c["text"] for c in rerun["claims"]]
    if texts[0] != texts[1]:
        problems.append("the claims differ (the code changed between the two runs)")
    claims = () if problems else tuple(
        Agreement(a["text"], a["outcome"], b["outcome"], _interval(a), _interval(b))
        for a, b in zip(committed["claims"], rerun["claims"]))
    return Comparison(rerun["paper"], committed["run"], rerun["run"], tuple(problems), claims)


def _machine(run: dict) -> str:
    det = run.get("determinism") or {}
    shown = {k: det[k] for k in ("torch_threads", "cpu_capability") if k in det}
    env = det.get("env") or {}
    return (f"{run['device_name']}, {', '.join(f'{k} {v}' for k, v in {**shown, **env}.items())}; "
            f"commit {(run.get('git_commit') or 'unknown')[:12]}, run {run['id']}")


def render(comparison: Comparison) -> str:
    lines = [f"{comparison.paper}: committed  {_machine(comparison.committed_run)}",
             f"{' ' * len(comparison.paper)}  rerun      {_machine(comparison.rerun)}"]
    if comparison.committed_run.get("git_commit") != comparison.rerun.get("git_commit"):
        lines.append("  note: the commits differ; the code of the two runs may differ")
    lines += [f"  not comparable: {p}" for p in comparison.problems]
    for c in comparison.claims:
        where = {None: "no interval", True: "inside the committed interval",
                 False: "OUTSIDE the committed interval"}[c.inside]
        numbers = (f"{c.estimate.mean:.4g} vs committed {c.committed.mean:.4g} "
                   f"[{c.committed.low:.4g}, {c.committed.high:.4g}], {where}" if c.inside is not None else where)
        outcome = (c.outcome if c.same_outcome else f"{c.committed_outcome} -> {c.outcome}")
        lines.append(f"  {'ok  ' if c.agrees else 'DIFF'} {outcome}: {c.text[:70]}: {numbers}")
    same = sum(c.agrees for c in comparison.claims)
    lines.append(f"{comparison.paper}: {'agrees' if comparison.agrees else 'does not agree'} "
                 f"({same} of {len(comparison.claims)} claims the same outcome, inside the committed interval)")
    return "\n".join(lines)

"""The GPU check's parent: the probe, then each planned job in a child process with its time limit,
and the report, rewritten after every job.

The children run in a scratch folder (their run folders, job files and logs): only ``gpu-check.json``,
``summary.md`` and ``jobs.log`` go into the output folder, which on a lent host is the few files that
come back. A child still running at its limit is killed with its whole process group; what its step
log holds by then is kept.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from reproductions.data import offline
from reproductions.gpucheck.plan import MODES, absent_assets, allowance, jobs
from reproductions.gpucheck.prepare import ARCHIVE, PROVENANCE
from reproductions.registry import default_registry
from reproductions.run import PACKAGE, git_commit, write_json

CHILD = (sys.executable, "-m", "reproductions.gpucheck.child")
REPORT, SUMMARY, LOG = "gpu-check.json", "summary.md", "jobs.log"
PROBE_LIMIT_S = 60.0  # importing torch and starting CUDA
WARMUP_STEPS = 5  # left out of the time per step: cuDNN's algorithm search, lazy initialisation
TAIL_CHARS = 1500  # of a failed job's output, kept in the report
QUIET_OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",  # no library tries the network there
                 "TQDM_DISABLE": "1", "PYTHONUNBUFFERED": "1", "MPLBACKEND": "Agg"}


def step_stats(lines: list[dict], warmup: int = WARMUP_STEPS) -> dict:
    """What a step log says: the steps timed, the time to the first step's end (data, networks, the
    step itself), the mean time per optimiser step after ``warmup`` steps (all optimisers together: a
    GAN's discriminator and generator steps alternate), and each optimiser with its step count."""
    times = [line["t"] for line in lines]
    optimizers = [{"kind": line["kind"], "parameters": line["parameters"], "steps": 0} for line in lines
                  if "kind" in line]
    for line in lines:
        optimizers[line["optimizer"]]["steps"] += 1
    stats = {"timed": len(times), "optimizers": optimizers}
    if not times:
        return stats
    kept = times[warmup:] if len(times) - warmup >= 2 else times
    stats["first_step_s"] = round(times[0], 3)
    if len(kept) >= 2:
        stats["per_step_s"] = round((kept[-1] - kept[0]) / (len(kept) - 1), 5)
        stats["warmup"] = len(times) - len(kept)
    return stats


def read_lines(path: Path) -> list[dict]:
    """The JSON lines of ``path``; a line cut off by a kill is left out."""
    if not path.exists():
        return []
    lines = []
    for text in path.read_text(encoding="utf-8").splitlines():
        try:
            lines.append(json.loads(text))
        except json.JSONDecodeError:
            continue
    return lines


def child_env(data_root: Path) -> dict[str, str]:
    env = {**os.environ, **QUIET_OFFLINE, "REPRODUCE_DATA": str(data_root)}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PACKAGE.parent), os.environ.get("PYTHONPATH")) if p)
    return env


def run_child(spec: dict, limit_s: float, scratch: Path, env: dict, child=CHILD) -> dict:
    """Run one job (``spec``) in a child process for at most ``limit_s``; its result with the wall time."""
    stem = spec.get("paper", "probe") + "-" + spec["mode"]
    files = {key: scratch / f"{stem}.{key}" for key in ("job", "result", "steps", "log")}
    spec = {**spec, "result": str(files["result"]), "step_log": str(files["steps"]),
            "deadline": time.time() + limit_s, "runs": str(scratch / "runs")}
    files["job"].write_text(json.dumps(spec))
    start, killed = time.monotonic(), False
    with open(files["log"], "wb") as log:
        child_process = subprocess.Popen([*child, str(files["job"])], stdout=log, stderr=subprocess.STDOUT, env=env,
                                         cwd=PACKAGE.parent, start_new_session=True)
        try:
            child_process.wait(timeout=limit_s)
        except subprocess.TimeoutExpired:
            os.killpg(child_process.pid, signal.SIGKILL)  # the child and whatever it started
            child_process.wait()
            killed = True
    wall_s = round(time.monotonic() - start, 1)
    if files["result"].exists():
        result = json.loads(files["result"].read_text())
    elif killed:
        result = {"status": "timed out", "detail": f"killed at its limit of {limit_s:.0f} s"}
    else:
        result = {"status": "failed", "detail": f"exit status {child_process.returncode} without a result"}
    result["wall_s"] = wall_s
    if spec["mode"] == "steps":
        result["steps"] = step_stats(read_lines(files["steps"]))
    output = files["log"].read_text(encoding="utf-8", errors="replace")
    if result["status"] in ("failed", "timed out"):
        result["output_tail"] = output[-TAIL_CHARS:]
    result["output"] = output
    return result


def run_check(out: Path, device: str = "cuda", budget_s: float = 420.0, papers: list[str] | None = None,
              steps: int = 25, prepared: Path | None = None, modes: tuple[str, ...] = MODES, child=CHILD) -> dict:
    """Probe ``device``, then run the planned jobs of ``papers`` (default: every registered one) within
    ``budget_s`` seconds, rewriting the report in ``out`` after each. ``prepared``: the folder that
    ``prepare`` made, whose data archive stands in for the data root."""
    start = time.monotonic()
    out.mkdir(parents=True, exist_ok=True)
    (out / LOG).write_text("")
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as folder:
        scratch = Path(folder)
        root, provenance = offline.data_root(), None
        if prepared is not None:
            root = scratch / "data"
            with tarfile.open(prepared / ARCHIVE) as archive:
                archive.extractall(root, filter="data")
            if (prepared / PROVENANCE).exists():
                provenance = json.loads((prepared / PROVENANCE).read_text())
        absent = absent_assets(root)
        planned = jobs(papers or list(default_registry().entries), absent, modes)
        env = child_env(root)
        report = {"started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "device": device,
                  "budget_s": budget_s, "steps": steps, "git_commit": git_commit(), "prepared": provenance,
                  "absent": absent, "jobs": []}
        report["probe"] = logged(out, "probe", run_child({"mode": "probe", "device": device}, PROBE_LIMIT_S, scratch,
                                                         env, child))
        write(out, report, start)
        unusable = report["probe"]["status"] != "completed"
        unrunnable = {}  # paper -> why its smoke run could not start (an absent library): its steps can't either
        for index, job in enumerate(planned):
            left = budget_s - (time.monotonic() - start)
            share = allowance(job, planned[index + 1:], left)
            if unusable:
                result = {"status": "skipped",
                          "detail": f"skipped: the device is unusable ({report['probe']['detail']})"}
            elif job.paper in unrunnable:
                result = {"status": "skipped", "detail": unrunnable[job.paper]}
            elif share is None:
                result = {"status": "skipped", "detail": f"skipped: out of time ({left:.0f} s of the budget left)"}
            else:
                spec = {"paper": job.paper, "mode": job.mode, "profile": job.profile, "device": device,
                        "overrides": list(job.overrides), "steps": steps}
                result = {"limit_s": round(share, 1), **run_child(spec, share, scratch, env, child)}
            if job.mode == "smoke" and result["status"] == "skipped" and not unusable:
                unrunnable[job.paper] = result["detail"]
            report["jobs"].append(logged(out, job.name, {"paper": job.paper, "mode": job.mode, "profile": job.profile,
                                                         "overrides": list(job.overrides), "notes": list(job.notes),
                                                         **result}))
            write(out, report, start)
    return report


def logged(out: Path, name: str, result: dict) -> dict:
    """``result`` without its output, which goes to the log under the job's name."""
    output = result.pop("output", "")
    with open(out / LOG, "a", encoding="utf-8") as log:
        log.write(f"===== {name}: {result['status']}\n{output}\n")
    return result


def write(out: Path, report: dict, start: float) -> None:
    report["wall_s"] = round(time.monotonic() - start, 1)
    write_json(out / REPORT, report)
    (out / SUMMARY).write_text(summary(report), encoding="utf-8")


def summary(report: dict) -> str:
    """The report as Markdown: what ran on which device, the smoke runs, the timed steps, what was left out."""
    probe = report["probe"]
    lines = [f"# GPU check on {probe.get('device_name', report['device'])}", "",
             f"torch {probe.get('torch', '?')}, CUDA {probe.get('cuda') or '-'}; commit {_commit(report)}; "
             f"started {report['started']}; {report['wall_s']:.0f} s of a {report['budget_s']:.0f} s budget.",
             f"Absent here: {', '.join(report['absent']) or 'nothing'}.", ""]
    if probe["status"] != "completed":
        lines += [f"The probe failed: {probe.get('detail', '')}", ""]
    smoke = [j for j in report["jobs"] if j["mode"] == "smoke"]
    timed = [j for j in report["jobs"] if j["mode"] == "steps"]
    if smoke:
        lines += ["## Smoke profiles", "", "| paper | status | wall s | run s | peak GiB |", "|---|---|---|---|---|"]
        lines += [f"| {j['paper']} | {j['status']} | {_num(j.get('wall_s'))} | {_num(j.get('run_s'))} | "
                  f"{_num(j.get('peak_memory_gib'), 2)} |" for j in smoke]
        lines.append("")
    if timed:
        lines += ["## First steps of each full preset", "",
                  f"Seconds per optimiser step: the mean after {WARMUP_STEPS} warm-up steps, all optimisers together; "
                  "1000 steps extrapolated from it.", "",
                  "| paper | status | steps | to first step s | s per step | 1000 steps s | optimisers | peak GiB |",
                  "|---|---|---|---|---|---|---|---|"]
        for j in timed:
            stats = j.get("steps", {})
            per_step = stats.get("per_step_s")
            optimizers = ", ".join(f"{o['kind']} {o['parameters'] / 1e6:.2f}M x{o['steps']}"
                                   for o in stats.get("optimizers", []))
            per_1000 = None if per_step is None else per_step * 1000
            lines.append(f"| {j['paper']} | {j['status']} | {stats.get('timed', 0)} | "
                         f"{_num(stats.get('first_step_s'))} | {_num(per_step, 4)} | {_num(per_1000)} | "
                         f"{optimizers or '-'} | {_num(j.get('peak_memory_gib'), 2)} |")
        lines.append("")
    notes = [f"- {j['paper']} {j['mode']} ({j['status']}): {'; '.join(filter(None, (*j['notes'], j.get('detail'))))}"
             for j in report["jobs"] if j["notes"] or j.get("detail")]
    if notes:
        lines += ["## Left out, stopped or failed", "", *notes, ""]
    return "\n".join(lines)


def _num(value, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _commit(report: dict) -> str:
    """The checkout's commit, or where it has no .git (a lent host) the one ``prepare`` ran at."""
    if report["git_commit"]:
        return report["git_commit"]
    prepared = (report["prepared"] or {}).get("git_commit")
    return f"{prepared} (where prepare ran; no .git here)" if prepared else "unknown"

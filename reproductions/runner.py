"""Run one reproduction: config from preset and overrides, a seeded run, its records, publishing.

Kept apart from ``reproductions.run`` (the ``Run`` and its folder) because this is the one place
that ties a registry entry, the command line's options and a paper's entry point together.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from reproductions import sidebyside
from reproductions.config import ConfigError, apply_overrides, as_dict
from reproductions.registry import Reproduction
from reproductions.run import (PROFILES, PUBLISHED, Run, choose_device, determinism, device_name, git_commit,
                               new_run_folder, publish, recorded, seed_everything, speed_anchor, versions, write_json)


def make_config(module, profile: str, overrides=()):
    if profile not in PROFILES:
        raise ConfigError(f"--profile {profile}: expected one of {', '.join(PROFILES)}")
    return apply_overrides(module.PRESETS[profile], list(overrides))


def execute(reproduction: Reproduction, profile: str = "smoke", device: str = "auto", seed: int = 0,
            overrides=(), out: Path | None = None, publish_results: bool = True) -> Path:
    """Run ``reproduction`` and return its run folder (published too when a cpu or full run completes)."""
    module = reproduction.load()
    config = make_config(module, profile, overrides)
    torch_device = choose_device(device)
    folder = new_run_folder(out, reproduction.name, profile, seed)
    write_json(folder / "config.json", {"profile": profile, "overrides": list(overrides), **as_dict(config)})
    info = {"paper": reproduction.name, "bib_key": reproduction.bib_key, "method": reproduction.method,
            "id": folder.name, "profile": profile, "seed": seed, "device": str(torch_device),
            "device_name": device_name(torch_device), "git_commit": git_commit(), "versions": versions(),
            "determinism": determinism(), "speed_anchor_gflops": speed_anchor(torch_device),
            "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    with recorded(folder, info):
        seed_everything(seed)  # the safety net for libraries that draw globally; papers use run.rng(name)
        outcome = module.main(config, Run(reproduction.name, profile, seed, torch_device, folder, info))
        write_json(folder / "metrics.json", outcome.metrics)
    sidebyside.write(folder, outcome, info)  # after recorded(): the status reads "completed"
    if publish_results and profile in PUBLISHED and out is None:
        publish(folder, reproduction.name)
    return folder


def committed_state(name: str, results_dir: Path) -> str:
    """One line on the committed results of ``name`` for ``reproduce list``."""
    info_file = results_dir / name / "run_info.json"
    if not info_file.exists():
        return "no committed results"
    info = json.loads(info_file.read_text())
    return f"results: {info.get('profile')} {info.get('status')} {info.get('started', '')[:10]} on {info.get('device')}"

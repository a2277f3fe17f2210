"""``reproduce gpu-check``: ``prepare`` here, with a network; ``run`` on a lent GPU host."""

from __future__ import annotations

import json
from pathlib import Path

import click

from reproductions.data.offline import DataError
from reproductions.gpucheck import check, prepare
from reproductions.gpucheck.plan import MODES
from reproductions.registry import default_registry


@click.group("gpu-check")
def gpu_check() -> None:
    """Every paper's smoke profile on CUDA, and the first optimiser steps of each full preset timed, in one
    command for a lent GPU host without a network."""


@gpu_check.command("prepare")
def prepare_command() -> None:
    """Fetch the wheels the GPU host lacks and pack the small data sets into .gpucheck/, check the size of
    what travels, and print the device tool's call."""
    try:
        lines, call = prepare.prepare()
    except (prepare.PrepareError, DataError) as err:
        raise click.ClickException(str(err)) from err
    for line in lines:
        click.echo(line)
    click.echo("On a lent GPU, call the device tool's run with:")
    click.echo(json.dumps(call, indent=1))


@gpu_check.command("run")
@click.argument("out", type=click.Path(path_type=Path, file_okay=False))
@click.option("--device", type=click.Choice(["cuda", "cpu"]), default="cuda", show_default=True,
              help="cpu tries the check itself on a machine without a GPU.")
@click.option("--budget", type=click.FloatRange(min=1), default=prepare.BUDGET_S, show_default=True,
              help="Seconds for everything together, the probe included.")
@click.option("--paper", "papers", multiple=True, metavar="NAME",
              help="Only this paper (repeatable; default: every registered one).")
@click.option("--only", type=click.Choice(MODES), default=None, help="Only the smoke runs, or only the timed steps.")
@click.option("--steps", type=click.IntRange(min=2), default=25, show_default=True,
              help="Optimiser steps timed in each full preset.")
@click.option("--prepared", type=click.Path(path_type=Path, file_okay=False, exists=True), default=None,
              help="The folder that prepare made: its data archive stands in for the data root.")
def run_command(out: Path, device: str, budget: float, papers: tuple[str, ...], only: str | None, steps: int,
                prepared: Path | None) -> None:
    """Run the check, rewriting gpu-check.json, summary.md and jobs.log in OUT after every job."""
    unknown = sorted(set(papers) - set(default_registry().entries))
    if unknown:
        raise click.ClickException(f"--paper: unknown {', '.join(unknown)}; registered: "
                                   f"{', '.join(default_registry().entries)}")
    report = check.run_check(out, device, budget, list(papers), steps, prepared, (only,) if only else MODES)
    click.echo((out / check.SUMMARY).read_text(encoding="utf-8"))
    if report["probe"]["status"] != "completed":
        raise click.ClickException(f"the probe failed: {report['probe'].get('detail')}")
    failed = [f"{j['paper']} {j['mode']}" for j in report["jobs"] if j["status"] == "failed"]
    if failed:
        raise click.ClickException(f"{len(failed)} job(s) failed: {', '.join(failed)} (see {out / check.LOG})")

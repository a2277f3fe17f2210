"""The ``survey`` and ``reproduce`` commands, driven through click's runner (a real process where a pipe is tested)."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from reproductions import cli as repro_cli
from reproductions.cli import main as reproduce
from reproductions.registry import build
from survey.cli import main as survey
from survey.corpus import load_corpus
from tests.conftest import SEED_BIB, entry


def walk(group: click.Group, prefix=()):
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        yield (*prefix, name), command
        if isinstance(command, click.Group):
            yield from walk(command, (*prefix, name))


@pytest.mark.parametrize("group", [survey, reproduce], ids=["survey", "reproduce"])
def test_every_command_has_help(group):
    assert group.help and group.help.strip()
    commands = list(walk(group))
    assert commands
    for path, command in commands:
        assert command.help and command.help.strip(), f"{' '.join(path)} has no help"
        result = CliRunner().invoke(group, [*path, "--help"])
        assert result.exit_code == 0 and "Usage:" in result.output, path


def test_the_survey_group_has_the_documented_commands():
    names = {" ".join(p) for p, _ in walk(survey)}
    assert {"add", "list", "stats", "validate", "export", "table1", "figure", "figure years", "suggest", "gaps"} <= names


def run(*args, input=None):
    result = CliRunner().invoke(survey, ["--bib", str(SEED_BIB), *args], input=input)
    return result


def test_list_filters_by_tag_years_and_text():
    result = run("list", "--tag", "method:DCGAN", "--format", "json")
    assert result.exit_code == 0, result.output
    keys = {r["key"] for r in json.loads(result.stdout)}
    assert keys == {"Chuquicusma2018Fool", "FridAdar2018Synthetic"}
    later = json.loads(run("list", "--years", "2023-2024", "--format", "json").stdout)
    assert {r["year"] for r in later} == {2023, 2024}
    text = run("list", "--search", "scene graphs")
    assert "Sortino2023Transformer" in text.stdout and "Yi2019GANReview" not in text.stdout
    assert "1 of 11 papers" in text.stderr
    missing = json.loads(run("list", "--tag", "dataset:?", "--exclude", "type:tool", "--format", "json").stdout)
    assert "Yi2019GANReview" in {r["key"] for r in missing} and all(not r["tags"].get("dataset") for r in missing)


def test_a_bad_year_range_is_a_clear_error():
    result = run("list", "--years", "soon")
    assert result.exit_code == 1 and "soon" in result.output


def test_stats_counts_years_categories_and_tags():
    data = json.loads(run("stats", "--format", "json").stdout)
    assert data["papers"] == 11
    assert data["per_year"]["2018"] == 2 and sum(data["per_year"].values()) == 11
    assert data["per_category"] == {"GAN-based Models": 4, "Diffusion Models": 3, "Transformers and LoRA": 3,
                                    "(none)": 1}
    assert data["per_tag"]["modality"]["CT"] >= 3
    assert "Papers per year" in run("stats").stdout


def test_validate_passes_on_the_seed_and_fails_on_errors(tmp_path):
    assert run("validate").exit_code == 0
    bad = tmp_path / "bad.bib"
    bad.write_text(entry("Bad2020", "Bad DOI", doi="not-a-doi") + entry("Bad2020", "Again"))
    result = CliRunner().invoke(survey, ["--bib", str(bad), "validate", "--format", "json"])
    assert result.exit_code == 1
    found = {(i["code"], i["field"], i["line"]) for i in json.loads(result.stdout)}
    assert ("bad-doi", "doi", 1) in found and ("duplicate-key", None, 8) in found


def test_export_bibtex_round_trips_and_csv_has_every_paper(tmp_path):
    out = tmp_path / "subset.bib"
    assert run("export", "--tag", "type:survey", "-o", str(out)).exit_code == 0
    again = CliRunner().invoke(survey, ["--bib", str(out), "list", "--format", "json"])
    assert {r["key"] for r in json.loads(again.stdout)} == {"Yi2019GANReview", "Kazeminia2020GANs"}
    assert "review-what" in out.read_text()  # our own fields travel with the entries
    rows = list(csv.DictReader(io.StringIO(run("export", "--format", "csv").stdout)))
    assert len(rows) == 11 and {"key", "title", "year", "doi"} <= set(rows[0])


def test_table1_in_markdown_and_latex():
    markdown = run("table1").stdout
    assert markdown.count("| Paper ") == 11  # the header's "Paper No." and ten rows and "Transformers and LoRA" in markdown
    latex = run("table1", "--format", "latex").stdout
    assert "\\begin{tabular}" in latex and "\\cite{Wu2022GCML}" in latex


def test_figure_years_writes_png_svg_and_html(tmp_path):
    result = run("figure", "years", "-o", str(tmp_path))
    assert result.exit_code == 0, result.output
    png, svg, html = (tmp_path / f"papers_per_year.{ext}" for ext in ("png", "svg", "html"))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in svg.read_text()[:500]
    assert "plotly" in html.read_text().lower()


def test_add_reports_each_entry_and_dry_run_writes_nothing(seed_copy):
    new = entry("New2025Diff", "A brand new diffusion paper", 2025, "10.1000/new.1")
    dup = entry("Copy2019", "Generative adversarial network in medical imaging: a review", 2019)
    bad = "@article{Broken,\n  title = {no end\n"
    args = ["--bib", str(seed_copy), "add", "-"]
    before = seed_copy.read_bytes()
    dry = CliRunner().invoke(survey, [*args, "--dry-run"], input=new + dup)
    assert dry.exit_code == 0 and "would add" in dry.stdout and seed_copy.read_bytes() == before
    result = CliRunner().invoke(survey, [*args, "--json"], input=new + dup + bad)
    assert result.exit_code == 1  # one entry was invalid
    report = json.loads(result.stdout)
    status = {o["key"]: (o["status"], o["duplicate_of"]) for o in report["outcomes"]}
    assert status["New2025Diff"] == ("added", None)
    # same title, another first author: not added until confirmed
    assert status["Copy2019"] == ("possible-duplicate", "Yi2019GANReview")
    assert status["Broken"][0] == "invalid"
    assert seed_copy.read_bytes().startswith(before.rstrip(b"\n"))


def test_a_missing_bib_file_is_named():
    result = CliRunner().invoke(survey, ["--bib", "/no/such.bib", "stats"])
    assert result.exit_code == 1 and "/no/such.bib" in result.output


def test_reproduce_lists_the_ten_papers_and_refuses_to_fake_a_run(monkeypatch):
    listing = CliRunner().invoke(reproduce, ["list"])
    assert listing.exit_code == 0
    assert [line.split()[0] for line in listing.stdout.splitlines()] == [f"paper{n}" for n in range(1, 11)]
    registry = build(set(load_corpus().table["key"]))
    del registry.entries["paper5"]  # as if its module were not written yet
    monkeypatch.setattr(repro_cli, "default_registry", lambda: registry)
    result = CliRunner().invoke(reproduce, ["paper5"])
    assert result.exit_code == 2 and "UsmanAkbar2024BrainTumor" in result.output


def test_a_reader_that_stops_early_ends_the_output_without_an_error(tmp_path):
    """`survey list | head -1`: the pipe closes before the output ends; the command stops, saying nothing."""
    bib = tmp_path / "many.bib"
    bib.write_text("".join(entry(f"K{i:04d}", f"A paper with a title long enough to fill a pipe {i}")
                           for i in range(3000)))
    command = Path(sys.executable).with_name("survey")
    reader = subprocess.Popen([str(command), "--bib", str(bib), "list"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env={**os.environ, "SURVEY_CACHE_DIR": str(tmp_path / "c")})
    assert reader.stdout.readline()
    reader.stdout.close()
    stderr = reader.stderr.read().decode()
    assert reader.wait(timeout=120) == 1
    assert stderr == "", stderr

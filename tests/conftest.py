"""Shared fixtures: an isolated load cache and small .bib files written by the tests."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SEED_BIB = REPO / "bib" / "corpus.bib"


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    # Never read or write the user's own cache from tests.
    os.environ["SURVEY_CACHE_DIR"] = str(tmp_path_factory.mktemp("survey-cache"))
    os.environ.pop("SURVEY_BIB", None)


@pytest.fixture(scope="module")
def driver():
    """One headless Chromium per browser-test module (a module that needs a download folder makes its own)."""
    from tests.browser import chrome
    browser = chrome()
    yield browser
    browser.quit()


@pytest.fixture
def study(tmp_path, monkeypatch):
    """A tiny reader study (``make_study``: six patches, three real, three generated) in tmp_path, found by
    the app through the environment, its answers kept in tmp_path too."""
    from tests.test_reader_study import make_study

    found = make_study(tmp_path / "run" / "reader_study")
    monkeypatch.setenv("SURVEY_READER_STUDIES", str(tmp_path / "run"))
    monkeypatch.setenv("SURVEY_READER_STUDY_DIR", str(tmp_path / "answers"))
    return found


@pytest.fixture
def seed_copy(tmp_path) -> Path:
    """A writable copy of the bundled corpus folder (corpus.bib and tags.toml)."""
    folder = tmp_path / "bib"
    shutil.copytree(REPO / "bib", folder, ignore=shutil.ignore_patterns("*.lock", "*.bak"))
    return folder / "corpus.bib"


def needs_data(*names: str):
    """Skip a test whose offline data sets are not prepared, unless ``REPRODUCE_REQUIRE_DATA=1`` (CI),
    where the test runs and fails with the ``reproduce data`` command in its message."""
    from reproductions.data import offline

    missing = [n for n in names if not offline.is_ready(n)]
    required = os.environ.get("REPRODUCE_REQUIRE_DATA") == "1"
    return pytest.mark.skipif(bool(missing) and not required,
                              reason=f"not prepared: {', '.join(missing)} (reproduce data --only {' --only '.join(missing)})")


def entry(key: str, title: str, year: int = 2020, doi: str | None = None, **extra: str) -> str:
    """A valid @article as text, with any extra fields."""
    fields = {"author": "{Doe, Jane and Roe, Richard}", "title": "{" + title + "}",
              "journal": "{Medical Image Analysis}", "year": str(year)}
    if doi:
        fields["doi"] = "{" + doi + "}"
    fields.update(extra)
    body = ",\n".join(f"  {k} = {v}" for k, v in fields.items())
    return f"@article{{{key},\n{body}\n}}\n"


def smoke_run(paper: str, out: Path, *extra: str, seed: int = 0) -> tuple[Path, dict]:
    """``reproduce PAPER --device cpu --seed SEED --out OUT EXTRA`` (the smoke profile) through the CLI
    runner: it must complete and leave the published results, which the explorer shows, untouched.
    Returns the run folder and its run_info."""
    from click.testing import CliRunner

    from reproductions.cli import main as reproduce
    from reproductions.run import RESULTS_DIR

    def published():
        return sorted(RESULTS_DIR.rglob("*")) if RESULTS_DIR.exists() else []

    before = published()
    result = CliRunner().invoke(reproduce, [paper, "--device", "cpu", "--seed", str(seed), "--out", str(out), *extra])
    assert result.exit_code == 0, result.output
    assert published() == before  # a smoke run is never published
    (folder,) = (out / paper).iterdir()
    info = json.loads((folder / "run_info.json").read_text())
    assert info["status"] == "completed" and info["profile"] == "smoke" and info["seed"] == seed
    assert info["speed_anchor_gflops"] > 0  # the machine's speed that day, beside the wall time
    return folder, info

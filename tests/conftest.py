"""Shared fixtures: an isolated load cache and small .bib files written by the tests."""

from __future__ import annotations

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


@pytest.fixture
def seed_copy(tmp_path) -> Path:
    """A writable copy of the bundled corpus folder (corpus.bib and tags.toml)."""
    folder = tmp_path / "bib"
    shutil.copytree(REPO / "bib", folder, ignore=shutil.ignore_patterns("*.lock", "*.bak"))
    return folder / "corpus.bib"


def entry(key: str, title: str, year: int = 2020, doi: str | None = None, **extra: str) -> str:
    """A valid @article as text, with any extra fields."""
    fields = {"author": "{Doe, Jane and Roe, Richard}", "title": "{" + title + "}",
              "journal": "{Medical Image Analysis}", "year": str(year)}
    if doi:
        fields["doi"] = "{" + doi + "}"
    fields.update(extra)
    body = ",\n".join(f"  {k} = {v}" for k, v in fields.items())
    return f"@article{{{key},\n{body}\n}}\n"

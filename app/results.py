"""The reproductions' committed results, as the explorer reads them (it never runs anything).

A committed result is ``reproductions/results/<name>/results.json`` in the schema that
``reproductions.sidebyside`` writes (its ``SCHEMA``; ``sidebyside.read`` brings older ones up to it).
"""

from __future__ import annotations

import base64
from pathlib import Path

from reproductions import sidebyside
from reproductions.run import RESULTS_DIR as RESULTS  # where reproduce publishes (the one setting)


def folder(name: str) -> Path:
    return RESULTS / name


def load(name: str | float | None) -> dict | None:
    """The committed record of reproduction ``name`` (``paper5``), or None if it was never run."""
    if not isinstance(name, str) or not name:  # None, or NaN from a pandas row
        return None
    path = folder(name) / "results.json"
    try:
        return sidebyside.read(path)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError) as err:
        return {"error": f"{path}: unreadable ({err})"}


def report_path() -> Path:
    """The all-papers report that ``reproduce all`` writes."""
    return RESULTS / "report.html"


def has_reader_study(name: str | float | None) -> bool:
    """Whether the committed results of ``name`` hold a blinded reader study (results.json names it)."""
    record = load(name)
    return bool(record) and "error" not in record and bool(record.get("reader_study"))


def has_results(name: str | float | None) -> bool:
    record = load(name)
    return bool(record) and "error" not in record


def figure_source(name: str, relative: str) -> str | None:
    """A committed figure as a data URL (the explorer serves no files of its own), or None."""
    path = folder(name) / relative
    if path.suffix.lower() not in (".png", ".svg") or not path.is_file():
        return None
    mime = "image/svg+xml" if path.suffix.lower() == ".svg" else "image/png"
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode()

"""The reproductions' committed results, as the explorer reads them (it never runs anything)."""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parents[1] / "reproductions" / "results"


def load(name: str | float | None) -> dict | None:
    """The side-by-side record of reproduction ``name`` (``paper5``), or None if it was never run."""
    if not isinstance(name, str) or not name:  # None, or NaN from a pandas row
        return None
    path = RESULTS / name / "side_by_side.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        return {"error": f"{path}: unreadable ({err})"}


def has_results(name: str | float | None) -> bool:
    record = load(name)
    return bool(record) and "error" not in record

"""Where the benchmarks leave their figures: a JSON file beside the printed table."""

from __future__ import annotations

import json
from pathlib import Path


def write(path: Path, figures: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"wrote {path}")

"""The side-by-side writer: ``results.json`` and ``results.md`` for one run of one reproduction.

The explorer reads ``reproductions/results/paperN/results.json`` (and shows ``results.md``).
Schema (``schema`` = 1), every key always present:

    {
      "schema": 1,
      "paper": "paper10",                   # reproduction name
      "bib_key": "Wu2022GCML",
      "method": "GCML: ...",                # one line
      "profile": "smoke" | "cpu" | "full",
      "status": "completed" | "interrupted" | "failed",
      "run": {"id": str, "started": ISO-8601 UTC, "wall_time_s": float, "device": str,
              "device_name": str, "seed": int, "git_commit": str | null},
      "data": [{"name": str, "kind": "real" | "phantom" | "synthetic" | "substitute", "detail": str}],
      "rows": [{"metric": str, "setting": str,
                "ours": float | null,       # null: this run did not measure it
                "paper": float | null,      # null: the paper gives no number
                "paper_text": str,          # the number as text, or "not reported"
                "source": str,              # where the paper number was read
                "higher_is_better": bool | null, "note": str}],
      "claims": [{"text": str, "source": str, "held": bool | null, "evidence": str}],  # see CLAIM_OUTCOMES
      "differences": [str],                 # how the reproduction departs from the paper, and why
      "figures": [str]                      # paths relative to the folder holding results.json
    }
"""

from __future__ import annotations

import json
from pathlib import Path

from reproductions.common.numbers import is_missing
from reproductions.outcome import Outcome
from survey.storage import atomic_write

SCHEMA = 1  # of results.json; the explorer (app/results.py) reads this number from here
CLAIM_OUTCOMES = {True: "held", False: "did not hold", None: "not testable here"}  # by a claim's "held"


def _number(value):
    return None if is_missing(value) else float(value)


def results_document(outcome: Outcome, info: dict) -> dict:
    """The JSON document for ``outcome``; ``info`` is the run's run_info.json."""
    return {
        "schema": SCHEMA,
        "paper": info["paper"],
        "bib_key": info["bib_key"],
        "method": info["method"],
        "profile": info["profile"],
        "status": info["status"],
        "run": {k: info.get(k) for k in ("id", "started", "wall_time_s", "device", "device_name", "seed",
                                         "git_commit")},
        "data": [vars(d) for d in outcome.data],
        "rows": [{"metric": r.metric, "setting": r.setting, "ours": _number(r.ours),
                  "paper": _number(r.paper.value), "paper_text": r.paper.text, "source": r.paper.source,
                  "higher_is_better": r.higher_is_better, "note": r.note} for r in outcome.rows],
        "claims": [vars(c) for c in outcome.claims],
        "differences": list(outcome.differences),
        "figures": list(outcome.figures),
        "reader_study": outcome.reader_study,
    }


def _cell(value) -> str:
    if value is None:
        return "not measured"
    return f"{value:.4g}"


def markdown(doc: dict) -> str:
    run = doc["run"]
    kinds = sorted({d["kind"] for d in doc["data"]} - {"real"})
    lines = [f"# {doc['paper']}: {doc['method']} [{doc['bib_key']}]", "",
             f"Profile **{doc['profile']}**, status **{doc['status']}**, device {run['device_name']}, "
             f"seed {run['seed']}, wall time {run['wall_time_s']:.1f} s, run {run['id']}."]
    if doc["profile"] == "smoke":
        lines.append("A smoke run: the quick profile, meant to show that the pipeline works rather than to match the paper.")
    elif doc["profile"] == "cpu":
        lines.append("A cpu run: the profile reduced to run without a GPU (smaller data, models or training than the "
                     "GPU-sized full profile), so its numbers are weaker evidence than a full run's.")
    if kinds:
        lines.append(f"Data that is not real: {', '.join(kinds)} (see Data).")
    lines += ["", "## Ours beside the paper", "", "| metric | setting | ours | paper | source |", "|---|---|---|---|---|"]
    for r in doc["rows"]:
        lines.append(f"| {r['metric']} | {r['setting']} | {_cell(r['ours'])} | {r['paper_text']} | {r['source']} |")
    lines += ["", "## Claims", ""]
    for c in doc["claims"]:
        lines.append(f"- **{CLAIM_OUTCOMES[c['held']]}**: {c['text']} ({c['source']}). {c['evidence']}")
    lines += ["", "## Data", ""] + [f"- {d['name']} ({d['kind']}): {d['detail']}" for d in doc["data"]]
    lines += ["", "## Differences from the paper", ""] + [f"- {d}" for d in doc["differences"]]
    if doc["figures"]:
        lines += ["", "## Figures", ""] + [f"![{Path(f).stem}]({f})" for f in doc["figures"]]
    return "\n".join(lines) + "\n"


def write(folder: Path, outcome: Outcome, info: dict) -> dict:
    """Write ``results.json`` and ``results.md`` into ``folder``; returns the JSON document."""
    doc = results_document(outcome, info)
    atomic_write(folder / "results.json", json.dumps(doc, indent=2).encode(), backup=False)
    atomic_write(folder / "results.md", markdown(doc).encode(), backup=False)
    return doc

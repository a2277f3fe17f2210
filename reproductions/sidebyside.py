"""The side-by-side writer: ``results.json`` and ``results.md`` for one run of one reproduction.

The explorer reads ``reproductions/results/paperN/results.json`` (and shows ``results.md``).
Schema (``schema`` = 2), every key always present:

    {
      "schema": 2,
      "paper": "paper10",                   # reproduction name
      "bib_key": "Wu2022GCML",
      "method": "GCML: ...",                # one line
      "profile": "smoke" | "cpu" | "full",
      "status": "completed" | "interrupted" | "failed",
      "run": {"id": str, "started": ISO-8601 UTC, "wall_time_s": float, "device": str,
              "device_name": str, "seed": int, "git_commit": str | null,
              "determinism": {...} | null,    # run.determinism(): threads and torch's switches
              "speed_anchor_gflops": float | null},  # run.speed_anchor(): the machine's speed that day
      "data": [{"name": str, "kind": "real" | "phantom" | "synthetic" | "substitute", "detail": str}],
      "rows": [{"metric": str, "setting": str,
                "ours": float | null,       # null: this run did not measure it
                "paper": float | null,      # null: the paper gives no number
                "paper_text": str,          # the number as text, or "not reported"
                "source": str,              # where the paper number was read
                "higher_is_better": bool | null, "note": str}],
      "claims": [{"text": str, "source": str,
                  "outcome": "held" | "did not hold" | "inconclusive" | "not testable here",
                  "reason": str,                # why it is inconclusive ("" otherwise)
                  "held": bool | null,          # a one-run rule's yes/no (its outcome then says whether it counts);
                                                # for a decided claim true / false when held / did not hold, else null
                  "evidence": str, "rule": str, # the rule as fixed before the run
                  "estimate": {"mean", "low", "high": float | null, "n": int, "method": str} | null,
                  "seeds": int | null,          # null: nothing random enters (counts over the corpus)
                  "gates": [{"name": str, "passed": bool, "detail": str,
                             "against_only": bool}],  # absent in older files: false
                  "addition": bool}],           # ours, shown as context; never counts in the paper's verdict
      "differences": [str],                 # how the reproduction departs from the paper, and why
      "figures": [str]                      # paths relative to the folder holding results.json
    }

Schema 1 files (claims with "held" alone, every one decided on one seed) are read by ``read``,
which gives each claim the outcome the four-outcome rule gives it (``verdict.single_run``).
"""

from __future__ import annotations

import json
from pathlib import Path

from reproductions.common.numbers import is_missing
from reproductions.outcome import Outcome
from reproductions.verdict import OUTCOMES, Interval, single_run
from survey.storage import atomic_write

SCHEMA = 2  # of results.json; the explorer (app/results.py) reads this number from here
READABLE = (1, SCHEMA)


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
                                         "git_commit", "determinism", "speed_anchor_gflops")},
        "data": [vars(d) for d in outcome.data],
        "rows": [{"metric": r.metric, "setting": r.setting, "ours": _number(r.ours),
                  "paper": _number(r.paper.value), "paper_text": r.paper.text, "source": r.paper.source,
                  "higher_is_better": r.higher_is_better, "note": r.note} for r in outcome.rows],
        "claims": [c.as_dict() for c in outcome.claims],
        "differences": list(outcome.differences),
        "figures": list(outcome.figures),
        "reader_study": outcome.reader_study,
    }


def upgrade(doc: dict) -> dict:
    """A schema 1 document in schema 2: every claim was decided on one run's numbers, so it gets the
    outcome ``verdict.single_run`` gives one seed."""
    if doc.get("schema") != 1:
        return doc
    claims = [{**c, **dict(zip(("outcome", "reason"), single_run(c["held"], 1))), "rule": "", "estimate": None,
               "seeds": 1, "gates": [], "addition": False} for c in doc["claims"]]
    return {**doc, "schema": SCHEMA, "claims": claims}


def read(path: Path) -> dict:
    """``results.json`` at ``path``, in the current schema; ValueError for a file of another schema."""
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(doc, dict) or doc.get("schema") not in READABLE:
        raise ValueError(f"not a results file of schema {' or '.join(map(str, READABLE))}")
    return upgrade(doc)


def tally(claims: list[dict]) -> dict[str, int]:
    """How many of the paper's claims (not our additions) reached each outcome, in OUTCOMES order."""
    counts = dict.fromkeys(OUTCOMES, 0)
    for c in claims:
        if not c.get("addition"):
            counts[c["outcome"]] += 1
    return counts


def tally_text(claims: list[dict]) -> str:
    counts = tally(claims)
    return ", ".join(f"{n} {outcome}" for outcome, n in counts.items() if n) or "no claim"


def claim_title(c: dict) -> str:
    """The claim's text, marked when it is our addition (for tables, where the outcome has its own column)."""
    return c["text"] + (" (our addition)" if c.get("addition") else "")


def claim_notes(c: dict) -> list[str]:
    """Why the claim is inconclusive and its rule, as sentences (none when empty)."""
    return ([f"Why inconclusive: {c['reason']}."] if c.get("reason") else []) + \
        ([f"Rule (fixed before the run): {c['rule']}."] if c.get("rule") else [])


def claim_label(c: dict) -> str:
    """The claim's outcome, marked when it is our addition (which never counts in the tally)."""
    return c["outcome"] + (" (our addition, context only)" if c.get("addition") else "")


def claim_parts(c: dict) -> tuple[str, str]:
    """A claim as its outcome label and the rest of its line: text, source, the decided number with
    its interval, why it is inconclusive, the rule, the evidence."""
    head = claim_label(c)
    estimate = [f"Estimate: {estimate_text(c)}."] if c.get("estimate") else []
    return head, " ".join([f"{c['text']} ({c['source']}).", *estimate, *claim_notes(c), c["evidence"]])


def claim_line(c: dict) -> str:
    head, rest = claim_parts(c)
    return f"**{head}**: {rest}"


def estimate_text(c: dict) -> str:
    """The claim's decided number with its interval, or what stands in its place."""
    if c.get("estimate"):
        return Interval.from_dict(c["estimate"]).text()
    if c["outcome"] == "not testable here":
        return "not measured"
    return "exact count" if c.get("seeds") is None else f"{c.get('seeds')} seed, no interval"


def anchor_text(run: dict) -> str:
    """" (speed anchor N GFLOP/s)" for a run that measured the machine's speed (none before 2026-12-03)."""
    gflops = run.get("speed_anchor_gflops")
    return f" (speed anchor {gflops:g} GFLOP/s)" if gflops else ""


def _cell(value) -> str:
    if value is None:
        return "not measured"
    return f"{value:.4g}"


def markdown(doc: dict) -> str:
    run = doc["run"]
    kinds = sorted({d["kind"] for d in doc["data"]} - {"real"})
    lines = [f"# {doc['paper']}: {doc['method']} [{doc['bib_key']}]", "",
             f"Profile **{doc['profile']}**, status **{doc['status']}**, device {run['device_name']}, "
             f"seed {run['seed']}, wall time {run['wall_time_s']:.1f} s{anchor_text(run)}, run {run['id']}."]
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
    lines += ["", "## Claims", "", f"Tally of the paper's claims: {tally_text(doc['claims'])}.", ""]
    lines += [f"- {claim_line(c)}" for c in doc["claims"]]
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

"""What ``reproduce paperN`` prints when a run ends: each claim's outcome and numbers, the figures
written, the results page, and where the explorer shows the paper's committed results.

``summarise`` reads what the run wrote (``results.json``), so the summary says what the files say;
``render`` turns it into a few lines for the terminal.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from reproductions import sidebyside
from reproductions.run import RESULTS_DIR
from reproductions.verdict import Interval

EXPLORER = "http://127.0.0.1:8050"  # survey serve's default address
TEXT_CHARS, EVIDENCE_CHARS = 80, 110  # a claim a line: its text and its numbers, shortened


@dataclass(frozen=True)
class ClaimLine:
    outcome: str  # one of verdict.OUTCOMES, "(our addition)" after it for ours
    text: str  # shortened; results.md has it whole
    evidence: str  # the evidence's first sentence of numbers, shortened


@dataclass(frozen=True)
class Summary:
    paper: str
    profile: str
    status: str
    wall_time_s: float
    folder: Path
    claims: tuple[ClaimLine, ...]
    tally: str  # the paper's claims counted by outcome
    figures: tuple[Path, ...]
    results_page: Path
    published: Path | None  # reproductions/results/paperN when this run is what the explorer shows

    @property
    def explorer_page(self) -> str:
        return f"{EXPLORER}/reproductions#{self.paper}"


def shorten(text: str, chars: int) -> str:
    text = text.strip().rstrip(";,")
    return text if len(text) <= chars else text[:chars].rsplit(" ", 1)[0].rstrip(";,(") + " ..."


def lead(claim: dict) -> str:
    """The decided number with its interval where there is one, else the first sentence of the
    evidence that reports a result (the rule, fixed before the run, is in results.md), shortened."""
    if claim["estimate"]:
        return shorten(Interval.from_dict(claim["estimate"]).text(), EVIDENCE_CHARS)
    evidence = claim["evidence"]
    sentences = [s for s in re.split(r"(?<=[.;])\s+", evidence.strip()) if s]
    results = [s for s in sentences if not s.startswith("Rule")] or sentences or [""]
    return shorten(results[0], EVIDENCE_CHARS)


def summarise(folder: Path, results_dir: Path = RESULTS_DIR) -> Summary:
    """The summary of the finished run in ``folder``."""
    doc = sidebyside.read(folder / "results.json")
    committed = results_dir / doc["paper"] / "run_info.json"
    published = (committed.parent if committed.is_file()
                 and json.loads(committed.read_text(encoding="utf-8")).get("id") == doc["run"]["id"] else None)
    return Summary(paper=doc["paper"], profile=doc["profile"], status=doc["status"],
                   wall_time_s=doc["run"]["wall_time_s"], folder=folder,
                   claims=tuple(ClaimLine(c["outcome"] + (" (our addition)" if c["addition"] else ""),
                                          shorten(c["text"], TEXT_CHARS), lead(c))
                                for c in doc["claims"]), tally=sidebyside.tally_text(doc["claims"]),
                   figures=tuple(folder / f for f in doc["figures"]), results_page=folder / "results.md",
                   published=published)


def render(summary: Summary) -> str:
    lines = [f"{summary.paper}: {summary.profile} run {summary.status} in {summary.wall_time_s:.0f} s, "
             f"run folder {summary.folder}", f"claims: {summary.tally}"]
    width = max((len(c.outcome) for c in summary.claims), default=0)
    lines += [f"  {c.outcome:<{width}}  {c.text}: {c.evidence}" for c in summary.claims]
    lines.append(f"figures: {len(summary.figures) or 'none'}")
    lines += [f"  {f}" for f in summary.figures]
    lines.append(f"results page: {summary.results_page}")
    if summary.published:
        lines.append(f"published to {summary.published}: see it with `survey serve`, then {summary.explorer_page}")
    else:
        lines.append(f"not published: the explorer (`survey serve`, then {summary.explorer_page}) shows the "
                     "committed results, not this run")
    return "\n".join(lines)

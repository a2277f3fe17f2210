"""One report over every reproduction: Markdown and a self-contained HTML page.

Each paper named in the corpus gets its side-by-side table, its figures, the tally of its claims'
outcomes (held / did not hold / inconclusive / not testable here), each claim's number with its
interval, and the device and wall time of its run; a paper without results says "not run yet". The
HTML page embeds its figures as data URLs, so it can be opened or served on its own (the explorer
links to ``reproductions/results/report.html``).
"""

from __future__ import annotations

import base64
import html
import os
from dataclasses import dataclass
from pathlib import Path

from reproductions.sidebyside import (anchor_text, claim_line, claim_parts, claim_title, estimate_text, read, tally,
                                     tally_text)
from reproductions.verdict import OUTCOMES
from survey.storage import atomic_write

NAMES = ("report.md", "report.html")


@dataclass(frozen=True)
class Entry:
    name: str
    bib_key: str
    topic: str
    folder: Path | None = None  # the run folder holding results.json; None: no results
    note: str = "not run yet"  # what to say when there are no results


def document(entry: Entry) -> dict | None:
    if entry.folder is None:
        return None
    try:
        return read(entry.folder / "results.json")
    except (OSError, ValueError):
        return None


def committed(planned: dict[str, tuple[str, str]], results_dir: Path) -> list[Entry]:
    """One entry per planned reproduction, from the committed results where there are some."""
    return [Entry(name, key, topic, results_dir / name if (results_dir / name / "results.json").exists() else None)
            for name, (key, topic) in planned.items()]


def verdict(doc: dict | None, note: str = "not run yet") -> str:
    """One line: how the paper's claims came out in this run."""
    if doc is None:
        return note
    if doc["status"] != "completed":
        return f"run {doc['status']}"
    line = tally_text(doc["claims"])
    caveat = {"smoke": " (smoke run, not the result to compare)", "cpu": " (reduced cpu profile)"}
    return line + caveat.get(doc["profile"], "")


SUMMARY_HEAD = ["paper", "bib key", *OUTCOMES, "profile", "device", "wall time (s)"]


def _summary(entry: Entry, doc: dict | None) -> list[str]:
    """The summary table's cells for one paper: the tally of its claims by outcome, then its run."""
    if doc is None or doc["status"] != "completed":
        return [entry.name, entry.bib_key, verdict(doc, entry.note)] + [""] * (len(SUMMARY_HEAD) - 3)
    run = doc["run"]
    counts = tally(doc["claims"])
    return [entry.name, entry.bib_key, *(str(counts[o]) for o in OUTCOMES), doc["profile"], run["device_name"],
            f"{run['wall_time_s']:.1f}{anchor_text(run)}"]


CLAIMS_HEAD = ["paper", "claim", "outcome", "number (95% interval)", "why inconclusive"]


def _claim_rows(entries: list[Entry], docs: list[dict | None]) -> list[list[str]]:
    """Every claim of every paper in one table: its outcome and its number with the interval."""
    return [[e.name, claim_title(c), c["outcome"], estimate_text(c), c["reason"]]
            for e, doc in zip(entries, docs) if doc for c in doc["claims"]]


def _run_line(doc: dict) -> str:
    run = doc["run"]
    return (f"{doc['profile']} profile, {doc['status']}, device {run['device_name']} ({run['device']}), "
            f"wall time {run['wall_time_s']:.1f} s{anchor_text(run)}, seed {run['seed']}, started {run['started']}, "
            f"commit {run['git_commit'] or 'unknown'}")


def _not_real(doc: dict) -> list[str]:
    return [f"{d['name']} ({d['kind']}): {d['detail']}" for d in doc["data"] if d["kind"] != "real"]


def _ours(value) -> str:
    return "not measured" if value is None else f"{value:.4g}"


def markdown(entries: list[Entry], base: Path) -> str:
    """The report; figure links are relative to ``base``, the folder the file is written to."""
    docs = [document(e) for e in entries]
    lines = ["# Reproductions: ours beside the papers", "", "| " + " | ".join(SUMMARY_HEAD) + " |",
             "|" + "---|" * len(SUMMARY_HEAD)]
    for e, doc in zip(entries, docs):
        lines.append("| " + " | ".join(_summary(e, doc)) + " |")
    lines += ["", "| " + " | ".join(CLAIMS_HEAD) + " |", "|" + "---|" * len(CLAIMS_HEAD)]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in _claim_rows(entries, docs)]
    for e, doc in zip(entries, docs):
        lines += ["", f"## {e.name}: {e.topic} [{e.bib_key}]", "", f"**Verdict:** {verdict(doc, e.note)}."]
        if doc is None:
            continue
        lines += ["", f"Run: {_run_line(doc)}.", f"Method: {doc['method']}."]
        lines += [f"Data that is not real: {line}." for line in _not_real(doc)]
        lines += ["", "| metric | setting | ours | paper | source |", "|---|---|---|---|---|"]
        lines += [f"| {r['metric']} | {r['setting']} | {_ours(r['ours'])} | {r['paper_text']} | {r['source']} |"
                  for r in doc["rows"]]
        lines += [""] + [f"- {claim_line(c)}" for c in doc["claims"]]
        rel = Path(os.path.relpath(e.folder, base))
        lines += [""] + [f"![{Path(f).stem}]({(rel / f).as_posix()})" for f in doc["figures"]]
    return "\n".join(lines) + "\n"


def _image(folder: Path, relative: str) -> str:
    path = folder / relative
    if path.suffix.lower() not in (".png", ".svg") or not path.is_file():
        return f"<p>figure {html.escape(relative)} is missing</p>"
    mime = "image/svg+xml" if path.suffix.lower() == ".svg" else "image/png"
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<figure><img alt="{html.escape(relative)}" src="data:{mime};base64,{data}"></figure>'


STYLE = """body{font-family:system-ui,sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ccc;padding:.2rem .5rem;text-align:left;
font-size:.9rem}th{background:#f3f3f3}img{max-width:100%}.verdict{font-weight:600}section{margin-top:2.5rem}"""


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _claim_html(claim: dict) -> str:
    head, rest = claim_parts(claim)
    return f"<b>{html.escape(head)}</b>: {html.escape(rest)}"


def html_page(entries: list[Entry]) -> str:
    docs = [document(e) for e in entries]
    summary = (_table(SUMMARY_HEAD, [_summary(e, d) for e, d in zip(entries, docs)])
               + _table(CLAIMS_HEAD, _claim_rows(entries, docs)))
    parts = ["<!doctype html><html lang='en'><head><meta charset='utf-8'>",
             "<title>Reproductions: ours beside the papers</title>", f"<style>{STYLE}</style></head><body>",
             "<h1>Reproductions: ours beside the papers</h1>", summary]
    for e, doc in zip(entries, docs):
        parts.append(f"<section id='{html.escape(e.name)}'><h2>{html.escape(f'{e.name}: {e.topic} [{e.bib_key}]')}</h2>")
        parts.append(f"<p class='verdict'>Verdict: {html.escape(verdict(doc, e.note))}.</p>")
        if doc is not None:
            parts.append(f"<p>Run: {html.escape(_run_line(doc))}.<br>Method: {html.escape(doc['method'])}.</p>")
            parts += [f"<p>Data that is not real: {html.escape(line)}.</p>" for line in _not_real(doc)]
            parts.append(_table(["metric", "setting", "ours", "paper", "source"],
                                [[r["metric"], r["setting"], _ours(r["ours"]), r["paper_text"], r["source"]]
                                 for r in doc["rows"]]))
            parts.append("<ul>" + "".join(f"<li>{_claim_html(c)}</li>" for c in doc["claims"]) + "</ul>")
            parts += [_image(e.folder, f) for f in doc["figures"]]
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write(entries: list[Entry], folder: Path) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.html`` into ``folder``; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    md, page = (folder / name for name in NAMES)
    atomic_write(md, markdown(entries, folder).encode(), backup=False)
    atomic_write(page, html_page(entries).encode(), backup=False)
    return md, page

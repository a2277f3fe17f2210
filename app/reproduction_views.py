"""Pure builders of the Reproductions page: a summary of every reviewed paper's committed run, then
one section per paper with its verdicts first, its figures, and its numbers beside the paper's.

A section's id is the reproduction's name (``paper5``), which the explorer links as
``/reproductions#paper5``; ``assets/hash-scroll.js`` scrolls there once Dash has drawn the page.
"""

from __future__ import annotations

from dash import dcc, html

from app import results
from reproductions.outcome import NOT_REPORTED
from reproductions.sidebyside import anchor_text, claim_label, claim_notes, claim_title, estimate_text, tally
from reproductions.verdict import OUTCOMES

PROFILE_CAVEATS = {
    "smoke": "A smoke run: the quick profile that shows the pipeline works, not a result to compare.",
    "cpu": "A cpu run: the profile reduced to run without a GPU (smaller data, models or training than the "
           "GPU-sized full profile), so its numbers are weaker evidence than a full run's.",
}
TABLE_SHOWN = 12  # rows of numbers shown open; past these the rows without a paper number are folded


def summary(rows: list[dict]) -> html.Table:
    """One line per reviewed paper (``rows``: corpus rows with a ``reproduction``): its method, the
    kind of data, profile and device, its claims counted by outcome (the paper's own; our additions
    do not count), and a link to its section."""
    lines = []
    for row in rows:
        name = row["reproduction"]
        record = results.load(name)
        link = html.A(name, href=f"#{name}")
        if record is None or "error" in record:
            lines.append(html.Tr([html.Td(link), html.Td(row["review_topic"] or ""),
                                  html.Td("not run yet" if record is None else "unreadable",
                                          colSpan=2 + len(OUTCOMES))]))
            continue
        counts = tally(record["claims"])
        lines.append(html.Tr([
            html.Td(link), html.Td(record["method"]),
            html.Td(", ".join(dict.fromkeys(d["kind"] for d in record["data"]))),
            html.Td(_badge(record)),
            *(html.Td(counts[o], className=f"tally outcome-{_slug(o)}" if counts[o] else "tally") for o in OUTCOMES)]))
    head = html.Thead(html.Tr([html.Th(h) for h in ("Paper", "Method", "Data", "Run", *OUTCOMES)]))
    return html.Table([head, html.Tbody(lines)], className="preview repro-summary", id="repro-summary")


def claims_table(rows: list[dict]) -> html.Table:
    """Every claim of every reviewed paper with a committed run: its outcome and its number with the
    95% interval (or what stands in its place: one seed, an exact count, not measured)."""
    lines = []
    for row in rows:
        record = results.load(row["reproduction"])
        if not record or "error" in record:
            continue
        lines += [html.Tr([html.Td(html.A(row["reproduction"], href=f"#{row['reproduction']}")),
                           html.Td(claim_title(c)),
                           html.Td(html.Span(c["outcome"], className=f"outcome outcome-{_slug(c['outcome'])}")),
                           html.Td(estimate_text(c)), html.Td(c["reason"], className="muted")])
                  for c in record["claims"]]
    head = html.Thead(html.Tr([html.Th(h) for h in ("Paper", "Claim", "Outcome", "Number (95% interval)",
                                                     "Why inconclusive")]))
    return html.Table([head, html.Tbody(lines)], className="preview repro-claims", id="repro-claims")


def section(row: dict) -> html.Section:
    name = row["reproduction"]
    record = results.load(name)
    head = [html.H3(f"{name}: {row['title']}"),
            html.P([dcc.Link(f"[{row['key']}] in the explorer", href=f"/?paper={row['key']}"),
                    f" · {row['review_topic'] or ''}"], className="muted")]
    if record is None:
        body = [html.P("not run yet", className="not-run")]
    elif "error" in record:
        body = [html.P(record["error"], className="error")]
    else:
        body = side_by_side(name, record)
    return html.Section(head + body, id=name, className="panel repro")


def side_by_side(name: str, record: dict) -> list:
    """A paper's committed run: the run as a badge (a reduced profile's warning beside it), the
    verdicts, the figures, the data, and the numbers beside the paper's, those the paper reports
    first (a long table folds the rest)."""
    run = record["run"]
    info = (f"{record['status']}, seed {run.get('seed')}, {str(run.get('started', ''))[:10]}, "
            f"commit {run.get('git_commit') or 'unknown'}, {run.get('wall_time_s', 0):.0f} s{anchor_text(run)}")
    caveat = PROFILE_CAVEATS.get(record["profile"])
    parts = [html.P([_badge(record), " ", html.Span(info, className="muted")]),
             *([html.P(caveat, className="caveat")] if caveat else [])]
    if record["claims"]:
        parts.append(html.Ul([_verdict(c) for c in record["claims"]], className="verdicts"))
    images = [(f, results.figure_source(name, f)) for f in record["figures"]]
    parts += [html.Img(src=src, alt=f"{name}: figure {figure}", style={"maxWidth": "100%"})
              for figure, src in images if src]
    parts.append(html.P("Data: " + "; ".join(f"{d['name']} ({d['kind']})" for d in record["data"])))
    parts += _numbers(record["rows"])
    if record["differences"]:
        parts.append(html.Details([html.Summary("How this differs from the paper"),
                                   html.Ul([html.Li(d) for d in record["differences"]])]))
    return parts


def _slug(outcome: str) -> str:
    return outcome.replace(" ", "-")


def _verdict(claim: dict) -> html.Li:
    """A claim: its outcome as a label, the claim, its number with the interval, then the reason,
    rule and evidence in grey."""
    return html.Li([html.Span(claim_label(claim), className=f"outcome outcome-{_slug(claim['outcome'])}"), " ", claim["text"],
                    html.Span(f" ({claim['source']})", className="muted"),
                    html.Div(["Estimate: ", html.B(estimate_text(claim))], className="estimate"),
                    html.Span(" ".join([*claim_notes(claim), claim["evidence"]]), className="muted")])


def _badge(record: dict) -> html.Span:
    run = record["run"]
    profile = record["profile"]
    return html.Span(f"{profile} profile · {run.get('device_name') or run.get('device')}",
                     className=f"badge {'badge-reduced' if profile in PROFILE_CAVEATS else 'badge-full'}")


def _numbers(rows: list[dict]) -> list:
    """The numbers table: the rows with a number from the paper first; when there are more than
    TABLE_SHOWN rows, those without one are folded, counted in the fold's summary."""
    reported = [r for r in rows if r["paper_text"] != NOT_REPORTED]
    others = [r for r in rows if r["paper_text"] == NOT_REPORTED]
    if len(rows) <= TABLE_SHOWN:
        return [_table(reported + others)]
    out = [_table(reported)] if reported else []
    out.append(html.Details([html.Summary(f"{len(others)} more rows: our numbers where the paper reports none"),
                             _table(others)], className="repro-more"))
    return out


def _table(rows: list[dict]) -> html.Table:
    lines = [html.Tr([html.Td(r["metric"]), html.Td(r["setting"]), html.Td(r["paper_text"]),
                      html.Td("not measured" if r["ours"] is None else f"{r['ours']:.4g}"),
                      html.Td(r["note"] or r["source"])]) for r in rows]
    return html.Table([html.Thead(html.Tr([html.Th(h) for h in ("Metric", "Setting", "Paper", "Ours", "Note")])),
                       html.Tbody(lines)], className="preview")

"""The reproductions page: each reviewed paper's reported numbers beside our committed results."""

from __future__ import annotations

import dash
from dash import dcc, html

from app import results
from app.runtime import explorer_state

dash.register_page(__name__, path="/reproductions", title="Reproductions", name="Reproductions")


def layout(**_query) -> html.Div:
    table = explorer_state().snapshot().table
    reviewed = table[table["reproduction"].notna()].sort_values("review_number", na_position="last")
    sections = [paper_section(row) for row in reviewed.to_dict("records")]
    if not sections:
        sections = [html.P("No paper of this corpus names a reproduction (field `reproduction`).")]
    return html.Div([html.H2("Reproductions"),
                     html.P("The paper's own numbers beside what our reimplementation measured. Only committed "
                            "runs are shown; a paper without one says so.", className="muted"),
                     *sections], className="reproductions")


def paper_section(row: dict) -> html.Section:
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
        body = side_by_side(record)
    return html.Section(head + body, id=name, className="panel repro")


def side_by_side(record: dict) -> list:
    run = record.get("run_info", {})
    rows = [html.Tr([html.Td(r.get("metric", "")), html.Td(_cell(r.get("paper"))), html.Td(_cell(r.get("ours"))),
                     html.Td(r.get("note", ""))]) for r in record.get("rows", [])]
    info = ", ".join(f"{k}: {run[k]}" for k in ("profile", "device", "seed", "date", "commit") if run.get(k))
    return [html.P(info, className="muted"),
            html.Table([html.Thead(html.Tr([html.Th("Metric"), html.Th("Paper"), html.Th("Ours"), html.Th("Note")])),
                        html.Tbody(rows)], className="preview")]


def _cell(value) -> str:
    return "not reported" if value is None else str(value)

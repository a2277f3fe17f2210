"""The reproductions page: each reviewed paper's reported numbers beside our committed results."""

from __future__ import annotations

import dash
from dash import html

from app import reader_study_views, reproduction_views, results
from app.runtime import explorer_state

dash.register_page(__name__, path="/reproductions", title="Reproductions", name="Reproductions")


def layout(**_query) -> html.Div:
    table = explorer_state().snapshot().table
    reviewed = table[table["reproduction"].notna()].sort_values("review_number", na_position="last")
    rows = reviewed.to_dict("records")
    sections = [reproduction_views.section(row) for row in rows]
    for section in sections:
        if results.has_reader_study(section.id):  # a visual Turing test, for readers of one's own
            section.children.insert(2, reader_study_views.reproductions_link())
    if not sections:
        sections = [html.P("No paper of this corpus names a reproduction (field `reproduction`).")]
    return html.Div([html.H2("Reproductions"),
                     html.P("Each paper's own numbers beside what our reimplementation measured in its "
                            "committed run. Smoke runs are never shown here.", className="muted"),
                     html.P(html.A("All papers in one report", href="/reports/reproductions.html", target="_blank",
                                   id="repro-report")) if results.report_path().is_file() else None,
                     reproduction_views.summary(rows) if rows else None,
                     html.Details([html.Summary("Every claim with its number"), reproduction_views.claims_table(rows)],
                                  open=True) if rows else None,
                     *sections], className="reproductions")

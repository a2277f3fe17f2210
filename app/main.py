"""The Dash application: a page shell (navigation and the shared URL) around the pages."""

from __future__ import annotations

from pathlib import Path

import dash
import flask
from dash import Dash, dcc, html

from app import results, runtime
from app.state import ExplorerState

HERE = Path(__file__).parent
REPORT_URL = "/reports/reproductions.html"


def create_app(paths: list[Path] | None = None) -> Dash:
    """The explorer on the corpus in ``paths`` (default: the bundled one, or $SURVEY_BIB)."""
    state = ExplorerState(paths)
    state.snapshot()  # load (and lay out) before the first request, not during it
    runtime.configure(state)
    app = Dash(__name__, use_pages=True, pages_folder=str(HERE / "pages"), assets_folder=str(HERE / "assets"),
               title="Survey explorer", suppress_callback_exceptions=True)
    app.server.add_url_rule(REPORT_URL, view_func=reproduction_report)
    app.layout = html.Div([
        html.Header([
            html.H1("Survey explorer"),
            html.Nav([dcc.Link("Explorer", href="/", id="nav-explorer"),
                      dcc.Link("Reproductions", href="/reproductions", id="nav-reproductions"),
                      dcc.Link("Reader study", href="/reader-study", id="nav-reader-study")]),
            html.Span(", ".join(p.name for p in state.paths), className="muted", title=" ".join(map(str, state.paths))),
        ]),
        dash.page_container,
    ])
    return app


def reproduction_report():
    """The report `reproduce all` writes: one self-contained page, figures embedded."""
    path = results.report_path()
    if not path.is_file():
        return "No report yet: `reproduce all` writes it.", 404, {"Content-Type": "text/plain; charset=utf-8"}
    return flask.send_file(path, mimetype="text/html")


def serve(paths: list[Path] | None, host: str, port: int, debug: bool = False) -> None:
    create_app(paths).run(host=host, port=port, debug=debug)

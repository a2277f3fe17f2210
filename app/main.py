"""The Dash application: a page shell (navigation and the shared URL) around the pages."""

from __future__ import annotations

from pathlib import Path

import dash
from dash import Dash, dcc, html

from app import runtime
from app.state import ExplorerState

HERE = Path(__file__).parent


def create_app(paths: list[Path] | None = None) -> Dash:
    """The explorer on the corpus in ``paths`` (default: the bundled one, or $SURVEY_BIB)."""
    state = ExplorerState(paths)
    state.snapshot()  # load (and lay out) before the first request, not during it
    runtime.configure(state)
    app = Dash(__name__, use_pages=True, pages_folder=str(HERE / "pages"), assets_folder=str(HERE / "assets"),
               title="Survey explorer", suppress_callback_exceptions=True)
    app.layout = html.Div([
        html.Header([
            html.H1("Survey explorer"),
            html.Nav([dcc.Link("Explorer", href="/", id="nav-explorer"),
                      dcc.Link("Reproductions", href="/reproductions", id="nav-reproductions")]),
            html.Span(", ".join(p.name for p in state.paths), className="muted", title=" ".join(map(str, state.paths))),
        ]),
        dash.page_container,
    ])
    return app


def serve(paths: list[Path] | None, host: str, port: int, debug: bool = False) -> None:
    create_app(paths).run(host=host, port=port, debug=debug)

"""The Dash application: a page shell (navigation and the shared URL) around the pages."""

from __future__ import annotations

import os
from pathlib import Path

import dash
import flask
import waitress
from dash import Dash, dcc, html

from app import results, runtime, security
from app.state import ExplorerState

HERE = Path(__file__).parent
REPORT_URL = "/reports/reproductions.html"


def create_app(paths: list[Path] | None = None, access: security.Access | None = None) -> Dash:
    """The explorer on the corpus in ``paths`` (default: the bundled one, or $SURVEY_BIB), guarded by
    ``access`` (default: served on loopback, with a random token for writes)."""
    state = ExplorerState(paths)
    state.snapshot()  # load (and lay out) before the first request, not during it
    runtime.configure(state)
    app = Dash(__name__, use_pages=True, pages_folder=str(HERE / "pages"), assets_folder=str(HERE / "assets"),
               title="Survey explorer", suppress_callback_exceptions=True,
               compress=True)  # zstd, brotli or gzip: Dash's scripts and a 10k-paper list are mostly repetition
    app.index_string = app.index_string.replace("<html>", '<html lang="en">', 1)  # screen readers read English
    app.server.add_url_rule(REPORT_URL, view_func=reproduction_report)
    app.layout = html.Div([
        html.Header([
            html.H1("Survey explorer"),
            html.Nav([dcc.Link("Explorer", href="/", id="nav-explorer"),
                      dcc.Link("Reproductions", href="/reproductions", id="nav-reproductions"),
                      dcc.Link("Reader study", href="/reader-study", id="nav-reader-study"),
                      dcc.Link("Gaps and clusters", href="/gaps", id="nav-gaps")]),
            html.Span(", ".join(p.name for p in state.paths), className="muted", title=" ".join(map(str, state.paths))),
        ]),
        dash.page_container,
    ])
    security.install(app, access or security.Access.for_bind("127.0.0.1"))
    return app


def reproduction_report():
    """The report `reproduce all` writes: one self-contained page, figures embedded."""
    path = results.report_path()
    if not path.is_file():
        return "No report yet: `reproduce all` writes it.", 404, {"Content-Type": "text/plain; charset=utf-8"}
    return flask.send_file(path, mimetype="text/html")


def wsgi_server(app: Dash, host: str, port: int):
    """Waitress, a production server in pure Python, listening on ``host``:``port`` (0: a free port).
    It refuses a body over the app's request limit before reading it (under --debug, Flask's
    MAX_CONTENT_LENGTH does)."""
    access = app.server.extensions[security.EXTENSION]
    return waitress.create_server(app.server, host=host, port=port, threads=8,
                                  max_request_body_size=access.request_limit)


def serve(paths: list[Path] | None, host: str, port: int, access: security.Access, debug: bool = False) -> None:
    app = create_app(paths, access)
    if debug:  # Flask's development server: reloads on code changes, tracebacks in the page
        os.environ["SURVEY_TOKEN"] = access.token  # the reloader starts `survey serve` again: same token
        app.run(host=host, port=port, debug=True)
    else:
        wsgi_server(app, host, port).run()

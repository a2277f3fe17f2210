"""The reader study page: a visual Turing test of real and generated patches, as in Chuquicusma et al. 2018.

A reader picks a study and types their name; the page then shows the instructions and one image at a
time, in an order shuffled for that reader, with two questions (real or generated; which class). Each
answer is written to the reader's answers file at once (``reproductions.common.reader_study``), so a reader who
comes back with the same name continues where they left off. ``?view=results`` shows the scores (FRR, TRR,
accuracy, Cohen's kappa) of the readers who have finished, and downloads every answer as CSV.

The truth of an item (real or generated, its class) never reaches the browser while anyone reads: the
reading view sends only the image's PNG bytes and an opaque id.
"""

from __future__ import annotations

import time

import dash
from dash import Input, Output, State, callback, dcc, html, no_update

from app import reader_study_views as rv
from app import security
from reproductions.common import reader_study as rs

dash.register_page(__name__, path=rv.PAGE, title="Reader study", name="Reader study")

HIDDEN, SHOWN = {"display": "none"}, {}


def layout(study: str | None = None, reader: str | None = None, view: str | None = None, **_query) -> html.Div:
    found = rv.find_studies()
    chosen = rv.find(study) if study else next((f for f in found if f.study), None)
    top = html.Div([
        html.H2("Reader study: a visual Turing test"),
        html.Nav([dcc.Link("Read", href=rv.page_link(chosen.key if chosen else None), id="rs-tab-read"),
                  dcc.Link("Results", href=rv.page_link(chosen.key if chosen else None, view="results"),
                           id="rs-tab-results")], className="rs-tabs"),
        dcc.Location(id="rs-url", refresh="callback-nav"),
    ])
    if view == "results":
        body = _results_page(found, chosen)
    elif refusal := security.write_refusal():  # reading means answering, and every answer is a write
        body = html.Div(html.P(refusal, id="rs-write-refused"), className="panel")
    elif chosen and chosen.study and reader:
        body = _reading_page(chosen, reader)
    else:
        body = _setup_page(found, chosen, reader)
    return html.Div([top, body], className="reader-study")


def _no_studies() -> html.Div:
    return html.Div([html.P("No reader study was found.", id="rs-none"),
                     html.P(["A reproduction writes one into its run folder as reader_study/ (paper2 does); "
                             "the page looks in reproductions/results, reproductions/runs and the folders named by "
                             f"${rv.ENV_STUDIES}."], className="muted")], className="panel")


def _setup_page(found: list[rv.Found], chosen: rv.Found | None, reader: str | None) -> html.Div:
    if not found:
        return _no_studies()
    return html.Div([
        html.P("Readers judge, one image at a time, whether a patch is real or made by a generative model, and "
               "its class. Each reader sees the images in an order of their own and no score before the end.",
               className="muted"),
        html.Label("Study", htmlFor="rs-study"),
        dcc.Dropdown(id="rs-study", options=rv.study_options(found), value=chosen.key if chosen else None,
                     clearable=False),
        html.Label("Your name (letters, digits, spaces, - _ .)", htmlFor="rs-reader"),
        dcc.Input(id="rs-reader", type="text", value=reader or "", maxLength=rs.READER_MAX, debounce=False,
                  placeholder="e.g. Reader 1", autoComplete="off"),
        html.Button("Start", id="rs-start", n_clicks=0),
        html.Div(id="rs-setup-error", role="alert", className="error"),
        *[html.P(f.error, className="error") for f in found if f.error],
    ], className="panel rs-setup")


def _reading_page(found: rv.Found, reader: str) -> html.Div:
    study = found.study
    try:
        reader = rs.validate_reader(reader)
    except rs.StudyError as err:
        return html.Div([html.P(str(err), className="error", id="rs-setup-error"),
                         dcc.Link("Back", href=rv.page_link(found.key))], className="panel")
    try:
        answered, item = rs.next_item(study, reader, rs.load_answers(study, reader))
    except rs.StudyError as err:
        return html.Div(html.P(str(err), className="error", id="rs-setup-error"), className="panel")
    total = len(study.items)
    session = {"study": found.key, "reader": reader, "item": item, "shown": time.time()}
    return html.Div([
        dcc.Store(id="rs-session", data=session),
        html.Div([*rv.instructions(study, reader, answered),
                  html.Button("Continue" if answered else "Begin", id="rs-begin", n_clicks=0)],
                 id="rs-instructions", className="panel", style=SHOWN if item else HIDDEN),
        html.Div([
            html.Div(_progress(answered, total), id="rs-progress", className="rs-progress"),
            html.Img(id="rs-image", src=rv.image_source(study, item) if item else "", alt="the image to judge",
                     className="rs-image"),
            html.Div([
                html.Fieldset([html.Legend("Is this image real or generated?"),
                               dcc.RadioItems(id="rs-real", value=None, options=[
                                   {"label": "Real", "value": "real"},
                                   {"label": "Generated", "value": "generated"}], className="rs-choice")]),
                html.Fieldset([html.Legend("Is the nodule " + " or ".join(study.classes) + "?"),
                               dcc.RadioItems(id="rs-label", value=None, className="rs-choice",
                                              options=[{"label": c.capitalize(), "value": c}
                                                       for c in study.classes])]),
                html.Button("Next", id="rs-next", n_clicks=0, className="rs-next"),
                html.Div(id="rs-answer-error", role="alert", className="error"),
            ], className="rs-questions"),
        ], id="rs-reading", className="panel rs-reading", style=HIDDEN),
        html.Div(_done(found, reader, total), id="rs-done", className="panel", style=HIDDEN if item else SHOWN),
    ])


def _progress(answered: int, total: int) -> str:
    return f"{min(answered + 1, total)} of {total}"


def _done(found: rv.Found, reader: str, total: int) -> list:
    return [html.H3("Thank you"),
            html.P(f"{reader}, you have answered all {total} images; your answers are saved.", id="rs-done-text"),
            dcc.Link("See the results", href=rv.page_link(found.key, view="results"), id="rs-to-results")]


def _results_page(found: list[rv.Found], chosen: rv.Found | None) -> html.Div:
    if not found:
        return _no_studies()
    return html.Div([
        dcc.Dropdown(id="rs-results-study", options=rv.study_options(found),
                     value=chosen.key if chosen else None, clearable=False),
        html.Div(_results_body(chosen), id="rs-results"),
        html.Button("Download all answers (CSV)", id="rs-csv", n_clicks=0),
        html.Span(" The truth columns are included once every reader who started has finished.",
                  className="muted small"),
        dcc.Download(id="rs-download"),
    ], className="panel rs-results")


def _results_body(found: rv.Found | None) -> list:
    if found is None or found.study is None:
        return [html.P(found.error if found else "Pick a study.", className="error" if found else "muted")]
    answers, problems = rs.collect(found.study)
    return rv.results_view(found.study, answers, problems)


@callback(Output("rs-url", "href"), Output("rs-setup-error", "children"),
          Input("rs-start", "n_clicks"), Input("rs-reader", "n_submit"), State("rs-study", "value"),
          State("rs-reader", "value"), prevent_initial_call=True)
def start(_clicks, _submit, key, reader):
    found = rv.find(key)
    if found is None or found.study is None:
        return no_update, "Pick a study first."
    try:
        reader = rs.validate_reader(reader)
    except rs.StudyError as err:
        return no_update, str(err)
    return rv.page_link(found.key, reader), ""


@callback(Output("rs-instructions", "style"), Output("rs-reading", "style"), Output("rs-session", "data"),
          Input("rs-begin", "n_clicks"), State("rs-session", "data"), prevent_initial_call=True)
def begin(_clicks, session):
    return HIDDEN, SHOWN, {**session, "shown": time.time()}  # the clock starts when the image shows


@callback(Output("rs-progress", "children"), Output("rs-image", "src"), Output("rs-real", "value"),
          Output("rs-label", "value"), Output("rs-session", "data", allow_duplicate=True),
          Output("rs-answer-error", "children"), Output("rs-reading", "style", allow_duplicate=True),
          Output("rs-done", "style"),
          Input("rs-next", "n_clicks"), State("rs-real", "value"), State("rs-label", "value"),
          State("rs-session", "data"), prevent_initial_call=True)
def answer(_clicks, real, label, session):
    keep = (no_update,) * 5
    if real not in ("real", "generated") or not label:
        return *keep[:4], no_update, "Answer both questions, then press Next.", no_update, no_update
    found = rv.find(session.get("study"))
    if found is None or found.study is None or not session.get("item"):
        return *keep, "This study is no longer available; reload the page.", no_update, no_update
    study, reader = found.study, session["reader"]
    security.require_write_access()
    try:
        rs.record_answer(study, reader, session["item"], real == "real", label,
                         seconds=max(0.0, time.time() - float(session.get("shown") or time.time())))
        answered, item = rs.next_item(study, reader, rs.load_answers(study, reader))
    except (rs.StudyError, rs.StorageError, OSError) as err:
        return *keep, f"Not saved: {err}", no_update, no_update
    total = len(study.items)
    if item is None:
        return _progress(answered, total), "", None, None, {**session, "item": None}, "", HIDDEN, SHOWN
    return (_progress(answered, total), rv.image_source(study, item), None, None,
            {**session, "item": item, "shown": time.time()}, "", no_update, no_update)


@callback(Output("rs-results", "children"), Input("rs-results-study", "value"), prevent_initial_call=True)
def show_results(key):
    return _results_body(rv.find(key))


@callback(Output("rs-download", "data"), Input("rs-csv", "n_clicks"), State("rs-results-study", "value"),
          prevent_initial_call=True)
def download(_clicks, key):
    found = rv.find(key)
    if found is None or found.study is None:
        raise dash.exceptions.PreventUpdate
    answers, _ = rs.collect(found.study)
    return dcc.send_string(rs.answers_csv(found.study, answers), f"reader-study-{found.study.name}-answers.csv")

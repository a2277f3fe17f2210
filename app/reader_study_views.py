"""The reader study page's pieces that need no browser: finding studies, and turning scores into tables.

Studies are looked for in the committed results (``reproductions/results/*/reader_study/``), in the run
folders (``reproductions/runs/<paper>/<run>/reader_study/``, newest first) and in every folder named by
``$SURVEY_READER_STUDIES`` (os.pathsep-separated; a study folder, or a folder holding study folders or
run folders). The browser only ever sees a study's key, a hash of its folder, never a path it could
send back to make the server read elsewhere.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from dash import dcc, html

from app import results
from reproductions.common import reader_study as rs

ENV_STUDIES = "SURVEY_READER_STUDIES"
PAGE = "/reader-study"


@dataclass(frozen=True)
class Found:
    """A study folder found on disk: its key for the URL, where it was found, and the study or its error."""
    key: str
    folder: Path
    origin: str  # "committed results", "run folder", "$SURVEY_READER_STUDIES"
    study: rs.Study | None
    error: str | None

    @property
    def label(self) -> str:
        if self.study is None:
            return f"{self.folder} (unreadable)"
        s = self.study
        return f"{s.title} · {len(s.items)} images · {s.data_kind} data · {self.origin}: {_short(self.folder)}"


def _short(folder: Path) -> str:
    parts = folder.parts
    return "/".join(parts[-3:-1] if folder.name == "reader_study" else parts[-2:])


def _key(folder: Path) -> str:
    return hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:12]


def _candidates() -> list[tuple[Path, str]]:
    root = results.RESULTS
    found = [(p.parent, "committed results") for p in sorted(root.glob("*/reader_study/study.json"))]
    runs = root.parent / "runs"
    made = sorted(runs.glob("*/*/reader_study/study.json"), key=lambda p: p.parent.parent.name, reverse=True)
    found += [(p.parent, "run folder") for p in made]
    for entry in filter(None, os.environ.get(ENV_STUDIES, "").split(os.pathsep)):
        folder = Path(entry).expanduser()
        inside = [folder / rs.STUDY_FILE] if (folder / rs.STUDY_FILE).is_file() else sorted(
            [*folder.glob(f"*/{rs.STUDY_FILE}"), *folder.glob(f"*/reader_study/{rs.STUDY_FILE}"),
             *folder.glob(f"*/*/reader_study/{rs.STUDY_FILE}")], key=lambda p: str(p), reverse=True)
        found += [(p.parent, f"${ENV_STUDIES}") for p in inside]
    return found


def find_studies() -> list[Found]:
    """Every study folder, committed ones first, then run folders newest first, then $SURVEY_READER_STUDIES."""
    out, seen = [], set()
    for folder, origin in _candidates():
        key = _key(folder)
        if key in seen:
            continue
        seen.add(key)
        try:
            out.append(Found(key, folder, origin, rs.load_study(folder), None))
        except rs.StudyError as err:
            out.append(Found(key, folder, origin, None, str(err)))
    return out


def find(key: str | None) -> Found | None:
    return next((f for f in find_studies() if f.key == key), None) if key else None


def study_options(found: list[Found]) -> list[dict]:
    return [{"label": f.label, "value": f.key, "disabled": f.study is None} for f in found]


def image_source(study: rs.Study, item_id: str) -> str:
    """The patch as a data URL: the PNG's bytes only (they hold no name, path or source)."""
    return "data:image/png;base64," + base64.b64encode(study.image_path(item_id).read_bytes()).decode()


def data_kind_text(study: rs.Study) -> str:
    return {"phantom": "phantom (simulated) nodules, not patient data",
            "synthetic": "synthetic images, not patient data",
            "substitute": "a substitute data set standing in for the paper's",
            "real": "real patient images"}.get(study.data_kind, study.data_kind)


def instructions(study: rs.Study, reader: str, answered: int) -> list:
    total = len(study.items)
    resume = (f"Welcome back, {reader}: you have answered {answered} of {total}; you continue where you left off."
              if answered else f"Reader: {reader}. {total} images.")
    return [html.H3(study.title),
            html.P(resume, id="rs-welcome"),
            html.Ul([
                html.Li(["The real images here are ", html.B(data_kind_text(study)), "."]),
                html.Li("Each image is either real or made by a generative model. The series is blinded and "
                        "shuffled for you alone: nothing on the page says which is which, and you see no score "
                        "until you have answered every image."),
                html.Li(["For each image answer two questions: ", html.B("real or generated"), ", and ",
                         html.B(" or ".join(study.classes)), ". Then press Next; an answer cannot be changed."]),
                html.Li("Every answer is saved at once: you can close the page and come back with the same name."),
            ]),
            html.P(study.note, className="muted") if study.note else None]


def _percent(value: float | None, part: int | None = None, whole: int | None = None) -> str:
    if value is None:
        return "–"
    counts = f" ({part} of {whole})" if whole else ""
    return f"{100 * value:.1f}%{counts}"


def _kappa(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.3f}"


def results_view(study: rs.Study, answers: dict, problems: list[str]) -> list:
    """Per-reader FRR, TRR, accuracy and class accuracy (finished readers only), and pairwise kappa."""
    s = rs.summary(study, answers)
    rows = []
    for name, progress in s["readers"].items():
        state = "finished" if progress["finished"] else "in progress: scores hidden until every image is answered"
        cells = [html.Td(name, className="rs-reader"), html.Td(f"{progress['answered']} of {s['total']}"),
                 html.Td(state)]
        if progress["finished"]:
            r, lab = s["scores"]["readers"][name], s["labels"]["readers"][name]
            frr_part = round((r["frr"] or 0) * r["generated_shown"])
            trr_part = round((r["trr"] or 0) * r["real_shown"])
            cells += [html.Td(_percent(r["frr"], frr_part, r["generated_shown"]), className="rs-frr"),
                      html.Td(_percent(r["trr"], trr_part, r["real_shown"]), className="rs-trr"),
                      html.Td(_percent(r["accuracy"]), className="rs-accuracy"),
                      html.Td(_percent(lab["accuracy"]), className="rs-label-accuracy")]
        else:
            cells += [html.Td("–") for _ in range(4)]
        rows.append(html.Tr(cells, className="finished" if progress["finished"] else "partial"))
    head = ("Reader", "Answered", "Status", "FRR (generated judged real)", "TRR (real judged real)",
            "Accuracy (real vs generated)", f"Accuracy ({' / '.join(study.classes)})")
    parts = [html.H3(study.title),
             html.P(f"{s['total']} images ({sum(i.source == 'real' for i in study.items)} real, "
                    f"{sum(i.source == 'generated' for i in study.items)} generated); {data_kind_text(study)}.",
                    className="muted")]
    if not rows:
        parts.append(html.P("No reader has answered yet.", id="rs-no-readers"))
    else:
        parts.append(html.Table([html.Thead(html.Tr([html.Th(h) for h in head])), html.Tbody(rows)],
                                className="preview", id="rs-scores"))
    kappas, label_kappas = s["scores"]["kappa"], s["labels"]["kappa"]
    if kappas:
        parts += [html.H4("Agreement between readers (Cohen's kappa, finished readers)"),
                  html.Table([html.Thead(html.Tr([html.Th("Readers"), html.Th("Real vs generated"),
                                                  html.Th(" vs ".join(study.classes))])),
                              html.Tbody([html.Tr([html.Td(pair), html.Td(_kappa(k)),
                                                   html.Td(_kappa(label_kappas.get(pair)))])
                                          for pair, k in kappas.items()]),
                              html.Tfoot(html.Tr([html.Td("mean"), html.Td(_kappa(s["scores"]["mean_kappa"])),
                                                  html.Td(_kappa(s["labels"]["mean_kappa"]))]))],
                             className="preview", id="rs-kappa")]
    elif len(s["finished"]) < 2:
        parts.append(html.P("Cohen's kappa needs two readers who have finished.", className="muted"))
    parts.append(html.P("FRR: the share of generated images a reader judged real (the paper's false recognition "
                        "rate); TRR: the share of real images judged real (true recognition rate). An FRR near "
                        "the TRR means the reader could not tell the two apart.", className="muted small"))
    parts += [html.P(p, className="error") for p in problems]
    return parts


def page_link(study_key: str | None = None, reader: str | None = None, view: str | None = None) -> str:
    query = {k: v for k, v in (("study", study_key), ("reader", reader), ("view", view)) if v}
    return PAGE + (("?" + urlencode(query)) if query else "")


def reproductions_link() -> html.P:
    """The line the reproductions page shows in the section of a paper whose results hold a reader study."""
    return html.P([dcc.Link("Run the reader study (visual Turing test) with your own readers", href=PAGE,
                            id="repro-reader-study"),
                   " · FRR, TRR and Cohen's kappa from what readers answer"], className="rs-link")

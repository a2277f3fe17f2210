"""The review's own artefacts regenerated from the corpus: Table 1 and Figure 3."""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go

from survey.export import papers_per_year
from survey.issues import UserError
from survey.storage import atomic_write

TABLE1_HEADER = ("Category", "Paper No.", "Summary Topic", "Reference")


def table1_rows(table: pd.DataFrame) -> list[tuple[str, str, str, str]]:
    """(category, "Paper N", topic, key) for the reviewed papers, in the review's order.

    The category is printed once per group, as in the review's table.
    """
    reviewed = table[table["review_number"].notna()].sort_values("review_number")
    rows, last = [], None
    for row in reviewed.itertuples(index=False):
        category = row.review_category or "(no category)"
        rows.append(("" if category == last else category, f"Paper {row.review_number}",
                     row.review_topic or row.title, row.key))
        last = category
    return rows


def table1_markdown(table: pd.DataFrame) -> str:
    lines = ["Table 1. Classification of Reviewed Papers", "",
             "| " + " | ".join(TABLE1_HEADER) + " |", "|" + "---|" * len(TABLE1_HEADER)]
    for category, number, topic, key in table1_rows(table):
        cells = [category, number, topic, f"[{key}]"]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def table1_latex(table: pd.DataFrame) -> str:
    lines = [r"\begin{table}[t]", r"\centering", r"\caption{Classification of Reviewed Papers}",
             r"\label{tab:classification}", r"\begin{tabular}{llp{0.55\linewidth}}", r"\toprule",
             r"Category & Paper No. & Summary Topic \\", r"\midrule"]
    rows = table1_rows(table)
    for i, (category, number, topic, key) in enumerate(rows):
        if category and i:
            lines.append(r"\midrule")
        lines.append(f"{_tex(category)} & {number} & {_tex(topic)}~\\cite{{{key}}} \\\\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


_TEX_SPECIAL = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
                "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}"}


def _tex(text: str) -> str:
    return "".join(_TEX_SPECIAL.get(c, c) for c in text)


# The review's three categories keep one colour each wherever they are drawn.
CATEGORY_COLOURS = {"GAN-based Models": "#4C72B0", "Diffusion Models": "#DD8452",
                    "Transformers and LoRA": "#55A868"}
OTHER_COLOUR = "#8C8C8C"


def years_figure(table: pd.DataFrame, title: str = "Papers per year") -> go.Figure:
    """The review's Figure 3: papers per year, stacked by the review's category."""
    counts = papers_per_year(table)
    fig = go.Figure()
    for group in counts.columns:
        fig.add_bar(x=list(counts.index), y=list(counts[group]), name=str(group),
                    marker_color=CATEGORY_COLOURS.get(group, OTHER_COLOUR),
                    hovertemplate="%{x}: %{y} paper(s)<extra>" + html.escape(str(group)) + "</extra>")
    fig.update_layout(barmode="stack", title=title, xaxis_title="Year", yaxis_title="Papers",
                      xaxis=dict(dtick=1), yaxis=dict(rangemode="tozero"), bargap=0.1,
                      legend_title_text="Category", template="plotly_white")
    return fig


def write_years_figure(table: pd.DataFrame, out_dir: Path, formats: list[str],
                       stem: str = "papers_per_year") -> list[Path]:
    """Figure 3 as HTML (plotly) and as PNG / SVG (matplotlib, so no browser is needed)."""
    out_dir = Path(out_dir)
    written = []
    counts = papers_per_year(table)
    if counts.empty:
        raise UserError("no entry has a year, so there is nothing to plot")
    for fmt in formats:
        path = out_dir / f"{stem}.{fmt}"
        if fmt == "html":
            data = years_figure(table).to_html(include_plotlyjs=True, full_html=True).encode()
        elif fmt in ("png", "svg"):
            data = _static_years(counts, fmt)
        else:
            raise UserError(f"unknown figure format '{fmt}' (use png, svg or html)")
        atomic_write(path, data, backup=False)
        written.append(path)
    return written


def _static_years(counts: pd.DataFrame, fmt: str) -> bytes:
    import io

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.6), dpi=150)
    bottom = [0] * len(counts)
    for group in counts.columns:
        values = list(counts[group])
        ax.bar(counts.index, values, bottom=bottom, label=str(group),
               color=CATEGORY_COLOURS.get(group, OTHER_COLOUR))
        bottom = [b + v for b, v in zip(bottom, values)]
    ax.set_xlabel("Year")
    ax.set_ylabel("Papers")
    ax.set_title("Papers per year")
    ax.set_xticks(list(counts.index))
    ax.tick_params(axis="x", labelrotation=45 if len(counts) > 12 else 0)
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, metadata={"Date": None} if fmt == "svg" else None)
    plt.close(fig)
    return buffer.getvalue()

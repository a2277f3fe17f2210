"""The ``survey`` command: one group, shared options, help on every command.

Commands import what they use (pandas, the corpus, OpenAlex) when they run, so that ``survey
--help`` and ``survey COMMAND --help`` answer at once.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from survey.issues import UserError

if TYPE_CHECKING:
    import pandas as pd

    from survey.corpus import Corpus
    from survey.openalex.enrich import EnrichReport
    from survey.query import Query


def _user_errors(func):
    """Turn expected failures (a missing or unreadable file, bad input, a locked file) into one
    clear line; anything else is a bug and keeps its traceback."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        from survey.storage import StorageError

        try:
            return func(*args, **kwargs)
        except (StorageError, UserError) as err:
            raise click.ClickException(str(err)) from err
        except BrokenPipeError:  # the reader went away (`survey list | head`): no more to say, and no error
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nor at the exit's flush
            sys.exit(1)
        except OSError as err:
            where = f"{err.filename}: " if err.filename and str(err.filename) not in str(err) else ""
            raise click.ClickException(f"{where}{err.strerror or err}") from err
    return wrapper


BIB_HELP = ("A .bib file or a folder of them (repeatable; before or after the command). Files are loaded "
            "in order, so an abbreviations file of @string macros goes first. Default: $SURVEY_BIB, "
            "else the bundled corpus in bib/.")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="survey-explorer", prog_name="survey")
@click.option("--bib", "bib", multiple=True, type=click.Path(path_type=Path), envvar="SURVEY_BIB", help=BIB_HELP)
@click.option("--no-cache", is_flag=True, help="Parse everything again instead of using the load cache.")
@click.pass_context
def main(ctx: click.Context, bib: tuple[Path, ...], no_cache: bool) -> None:
    """Knowledge base of a literature review: a BibTeX corpus with SurVis-style tags."""
    ctx.obj = {"bib": list(bib), "cache": not no_cache}


def _more_bib(ctx: click.Context, _param, value: tuple[Path, ...]) -> None:
    """``survey COMMAND --bib F``: the same as ``survey --bib F COMMAND``; it replaces $SURVEY_BIB."""
    if value:
        parent = ctx.find_root()
        from_env = parent.get_parameter_source("bib") == click.core.ParameterSource.ENVIRONMENT
        ctx.obj["bib"] = [*([] if from_env else ctx.obj["bib"]), *value]


def bib_option(func):
    return click.option("--bib", multiple=True, type=click.Path(path_type=Path), expose_value=False,
                        callback=_more_bib, help=BIB_HELP)(func)


def _corpus(ctx: click.Context) -> Corpus:
    from survey.corpus import load_corpus

    return load_corpus(ctx.obj["bib"] or None, use_cache=ctx.obj["cache"])


def _bib_paths(ctx: click.Context) -> list[Path]:
    from survey.corpus import bib_paths

    return bib_paths(ctx.obj["bib"] or None)


def filter_options(func):
    """--tag, --exclude, --years, --search: the same filter as the explorer's."""
    options = [
        click.option("--tag", "tags", multiple=True, metavar="CAT:VALUE",
                     help="Keep papers with this tag (repeatable; CAT:? = no tag in CAT)."),
        click.option("--exclude", "excludes", multiple=True, metavar="CAT:VALUE",
                     help="Drop papers with this tag (repeatable)."),
        click.option("--years", metavar="FROM-TO", help="Year range, e.g. 2018-2020, 2020- or 2019."),
        click.option("--search", default="", metavar="QUERY",
                     help="Papers that match a search: words at word starts in key, title, authors, venue, "
                          "year, tags or abstract (accents, case and hyphens do not matter: unet finds U-Net), "
                          '"a phrase", a OR b, -not, and author:, title:, venue:, year:2018-2020, tag:, key:.'),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _query(tags, excludes, years, search) -> Query:
    from survey.query import Query, parse_years

    low, high = parse_years(years) if years else (None, None)
    return Query(text=search, require=tuple(tags), exclude=tuple(excludes), year_min=low, year_max=high)


def _filtered(ctx, tags, excludes, years, search) -> tuple[Corpus, pd.DataFrame]:
    """The corpus, and its papers that pass the command's filter options."""
    corpus = _corpus(ctx)
    return corpus, _query(tags, excludes, years, search).apply(corpus.table)


def _emit(text: str, output: Path | None) -> None:
    from survey.storage import atomic_write

    if output:
        atomic_write(output, text.encode("utf-8"), backup=True)
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(text, nl=False)


@main.command()
@click.argument("source", type=click.Path(allow_dash=True, path_type=Path), required=False)
@click.option("--doi", help="Instead of SOURCE: fetch this DOI from OpenAlex (or its cache) as a BibTeX entry.")
@click.option("--to", "target", type=click.Path(path_type=Path),
              help="The .bib file to add to. Default: the first file of the corpus.")
@click.option("--dry-run", is_flag=True, help="Report what would happen; write nothing anywhere.")
@click.option("--confirm", "confirmed", multiple=True, metavar="KEY",
              help="Add this input entry although it may be a duplicate (repeatable).")
@click.option("--confirm-all", is_flag=True, help="Add every possible duplicate (same title, but another "
                                                  "DOI, first author, entry type or year).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@bib_option
@click.pass_context
@_user_errors
def add(ctx, source: Path | None, doi: str | None, target: Path | None, dry_run: bool,
        confirmed: tuple[str, ...], confirm_all: bool, as_json: bool) -> None:
    """Add the entries of SOURCE (a .bib file, or - for standard input), or one paper by --doi.

    Each entry is reported as added, duplicate (same DOI, or same title, first author, type and
    year as which entry), possible duplicate (same title but something differs: added only with
    --confirm KEY or --confirm-all) or invalid (why, with its line). Input that is not UTF-8 is
    converted, and said so. Exits with 1 when any entry is invalid. --doi builds the entry from
    OpenAlex's record, from the cache when it is there.
    """
    from survey.merge import add_bytes
    from survey.openalex.client import OpenAlexError
    from survey.openalex.commands import entry_for_doi

    if (source is None) == (doi is None):
        raise click.UsageError("give either SOURCE or --doi DOI")
    paths = _bib_paths(ctx)
    if doi:
        try:
            text = entry_for_doi(doi, paths, _corpus(ctx))
        except OpenAlexError as err:
            raise click.ClickException(str(err)) from err
        data, name = text.encode("utf-8"), f"OpenAlex {doi}"
    elif str(source) == "-":
        data, name = sys.stdin.buffer.read(), "<stdin>"
    else:
        data, name = source.read_bytes(), str(source)
    if doi and not as_json:
        click.echo(text.rstrip("\n"))
    report = add_bytes(data, name, target or paths[0], paths, dry_run=dry_run,
                       confirm=True if confirm_all else frozenset(confirmed))
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        _print_report(report, name, dry_run)
    if report.count("invalid"):
        ctx.exit(1)


def _print_report(report, name: str, dry_run: bool) -> None:
    for note in report.notes:
        click.echo(f"note: {note}")
    for o in report.outcomes:
        where = f"{name}:{o.line}" if o.line else name
        verb = "would add" if dry_run and o.status == "added" else o.status
        click.echo(f"{where}: {o.key or '(no key)'}: {verb}" + (f" ({o.reason})" if o.reason else ""))
        for w in o.warnings:
            click.echo(f"    warning: {w}")
    click.echo(f"{report.count('added')} {'to add' if dry_run else 'added'}, {report.count('duplicate')} duplicate, "
               f"{report.count('possible-duplicate')} possible duplicate, {report.count('invalid')} invalid"
               + (f"; {report.target} updated" if report.written else ""))
    if report.count("possible-duplicate"):
        click.echo("possible duplicates were not added: check them, then add again with --confirm KEY "
                   "(or --confirm-all)")


@main.command("list")
@filter_options
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@bib_option
@click.pass_context
@_user_errors
def list_(ctx, tags, excludes, years, search, fmt: str) -> None:
    """List papers, filtered by tag, year range and text."""
    from survey.records import as_int

    corpus, table = _filtered(ctx, tags, excludes, years, search)
    if fmt == "json":
        records = [{"key": r.key, "year": as_int(r.year),
                    "title": r.title, "authors": r.authors, "venue": r.venue, "doi": r.doi,
                    "tags": r.tags, "free_tags": r.free_tags, "review_category": r.review_category,
                    "review_number": as_int(r.review_number), "reproduction": r.reproduction}
                   for r in table.astype(object).itertuples(index=False)]
        click.echo(json.dumps(records, indent=2, ensure_ascii=False))
        return
    width = shutil.get_terminal_size((120, 20)).columns
    key_w = max([len("key")] + [len(k) for k in table["key"]])
    click.echo(f"{'key':<{key_w}}  year  title")
    for r in table.itertuples(index=False):
        year = str(as_int(r.year) or "")
        title = r.title if len(r.title) <= width - key_w - 8 else r.title[:max(10, width - key_w - 9)] + "…"
        click.echo(f"{r.key:<{key_w}}  {year:<4}  {title}")
    click.echo(f"{len(table)} of {len(corpus)} papers", err=True)


@main.command()
@filter_options
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@bib_option
@click.pass_context
@_user_errors
def stats(ctx, tags, excludes, years, search, fmt: str) -> None:
    """Papers per year, per review category and per tag."""
    from survey import export

    corpus, table = _filtered(ctx, tags, excludes, years, search)
    per_year = export.papers_per_year(table, by=None)
    per_year = {int(y): int(n) for y, n in per_year["papers"].items()} if not per_year.empty else {}
    per_category = table["review_category"].fillna("(none)").value_counts().to_dict()
    per_tag = export.tag_counts(table, corpus.tag_categories())
    if fmt == "json":
        click.echo(json.dumps({"papers": len(table), "per_year": per_year, "per_category": per_category,
                               "per_tag": per_tag}, indent=2, ensure_ascii=False))
        return
    click.echo(f"{len(table)} papers in {', '.join(str(f.path) for f in corpus.files)}")
    click.echo("\nPapers per year")
    most = max(per_year.values(), default=1)
    for year, n in per_year.items():
        click.echo(f"  {year}  {'#' * round(20 * n / most):<20} {n}")
    click.echo("\nPapers per review category")
    for category, n in per_category.items():
        click.echo(f"  {n:>4}  {category}")
    click.echo("\nPapers per tag")
    for category, counts in per_tag.items():
        click.echo(f"  {category}: " + ", ".join(f"{v} ({n})" for v, n in counts.items()))


@main.command()
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--strict", is_flag=True, help="Exit with 1 on warnings too.")
@bib_option
@click.pass_context
@_user_errors
def validate(ctx, fmt: str, strict: bool) -> None:
    """Check required fields, DOIs, years, tags and duplicates; exit with 1 on errors."""
    corpus = _corpus(ctx)
    if fmt == "json":
        click.echo(json.dumps([i.to_dict() for i in corpus.issues], indent=2, ensure_ascii=False))
    else:
        for issue in corpus.issues:
            click.echo(str(issue))
        warnings = len(corpus.issues) - len(corpus.errors)
        click.echo(f"{len(corpus)} entries: {len(corpus.errors)} error(s), {warnings} warning(s)")
    if corpus.errors or (strict and corpus.issues):
        ctx.exit(1)


@main.command("export")
@filter_options
@click.option("--format", "fmt", type=click.Choice(["bibtex", "csv"]), default="bibtex", show_default=True)
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Write to a file instead of stdout.")
@bib_option
@click.pass_context
@_user_errors
def export_(ctx, tags, excludes, years, search, fmt: str, output: Path | None) -> None:
    """Export the filtered corpus as BibTeX (entries exactly as written) or CSV."""
    from survey import export

    corpus, table = _filtered(ctx, tags, excludes, years, search)
    _emit(export.to_bibtex(corpus, table) if fmt == "bibtex" else export.to_csv(table), output)


@main.command()
@click.option("--format", "fmt", type=click.Choice(["markdown", "latex"]), default="markdown", show_default=True)
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Write to a file instead of stdout.")
@bib_option
@click.pass_context
@_user_errors
def table1(ctx, fmt: str, output: Path | None) -> None:
    """The review's Table 1 (classification of the reviewed papers) from the review-* fields."""
    from survey import review

    table = _corpus(ctx).table
    _emit(review.table1_markdown(table) if fmt == "markdown" else review.table1_latex(table), output)


@main.command()
@click.option("--offline", is_flag=True, help="Use the cache in bib/openalex/ only; send nothing.")
@click.option("--refresh", is_flag=True, help="Ask again about papers the cache already answers for.")
@click.option("--no-candidates", is_flag=True,
              help="Skip fetching the outside works that two or more corpus papers cite.")
@click.option("--timeout", type=float, default=30.0, show_default=True, help="Seconds to wait for one answer.")
@click.option("--retries", type=int, default=4, show_default=True, help="Retries of a failed request, with backoff.")
@click.option("--json", "as_json", is_flag=True, help="Print the per-paper report as JSON.")
@bib_option
@click.pass_context
@_user_errors
def enrich(ctx, offline: bool, refresh: bool, no_candidates: bool, timeout: float, retries: int,
           as_json: bool) -> None:
    """Look every paper up in OpenAlex and keep the raw records in bib/openalex/.

    Papers with a DOI are asked for 100 per request; a paper without one by its title, matched
    only when exactly one answer has the same title and a year within one (the others are listed
    to confirm). Needs OPENALEX_API_KEY (and OPENALEX_EMAIL) in the environment unless --offline.
    An interrupted run resumes where it stopped.
    """
    from survey.openalex.client import OpenAlexError
    from survey.openalex.commands import run_enrich

    corpus = _corpus(ctx)
    paths = _bib_paths(ctx)
    try:
        report = run_enrich(corpus, paths, offline=offline, refresh=refresh, candidates=not no_candidates,
                            timeout=timeout, retries=retries, progress=not as_json)
    except OpenAlexError as err:
        raise click.ClickException(str(err)) from err
    _print_enrich_report(report, as_json)


def _print_enrich_report(report: "EnrichReport", as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"requests": report.requests, "works_fetched": report.works_fetched,
                               "candidates_fetched": report.candidates_fetched,
                               "papers": [dataclasses.asdict(p) for p in report.papers]}, indent=2, ensure_ascii=False))
        return
    for p in report.papers:
        if p.status == "matched":
            continue
        click.echo(f"{p.key}: {p.status}" + (f" (by {p.by})" if p.by else ""))
        for c in p.candidates:
            click.echo(f"    confirm? {c['id']} ({c.get('year')}) {c.get('title')}"
                       + (f" doi:{c['doi']} (add `doi = {{{c['doi']}}}` to the entry)" if c.get("doi") else ""))
    statuses = {}
    for p in report.papers:
        statuses[p.status] = statuses.get(p.status, 0) + 1
    others = ", ".join(f"{n} {s}" for s, n in sorted(statuses.items()) if s != "matched")
    click.echo(f"{statuses.get('matched', 0)} of {len(report.papers)} papers matched in OpenAlex"
               + (f" ({others})" if others else "") + f"; {report.requests} request(s), {report.works_fetched} "
               f"work(s) and {report.candidates_fetched} candidate(s) fetched in {report.seconds:.1f} s")


def _suggestion_lines(corpus: Corpus, limit: int, fmt: str, among: list[str] | None = None) -> list[str]:
    """The works outside the corpus, ranked (the corpus papers citing each, then a tenth of its
    coupling), with why; ``among``: only these corpus papers count."""
    from survey.graph import corpus_graph
    from survey.neighbourhood import outside_works
    from survey.records import as_int

    graph = corpus_graph(corpus)
    table = outside_works(graph, among).head(limit)
    if fmt == "json":
        records = table.astype(object).where(table.notna(), None).to_dict(orient="records")
        return [json.dumps(records, indent=2, ensure_ascii=False, default=str)]
    if table.empty:
        candidates = bool((graph.nodes["kind"] == "candidate").any()) if len(graph.nodes) else False
        if among is not None and candidates:
            return [f"no suggestions among the {len(among)} paper(s) the filter keeps: none of them cites a work "
                    "outside the corpus that two corpus papers cite, nor shares references with one"]
        if graph.cache.lookups or candidates:
            return ["no suggestions: `survey enrich` ran, but no work outside the corpus is cited by two or more "
                    "of its papers"]
        return ["no suggestions: run `survey enrich` first (works outside the corpus appear once two "
                "corpus papers cite them)"]
    lines = []
    for rank, r in enumerate(table.itertuples(index=False), 1):
        year = f" ({as_int(r.year)})" if as_int(r.year) else ""
        lines.append(f"{rank}. {r.key}{year} {r.title}" + (f"  doi:{r.doi}" if r.doi else ""))
        if r.cited_by_corpus:
            lines.append(f"    cited by {r.cited_by_n} corpus paper(s): {', '.join(r.cited_by_corpus)}")
        if r.coupled_with:
            shown = ", ".join(f"{k} ({n})" for k, n in list(r.coupled_with.items())[:5])
            more = f" and {len(r.coupled_with) - 5} more" if len(r.coupled_with) > 5 else ""
            lines.append(f"    shares references with {len(r.coupled_with)} corpus paper(s), coupling "
                         f"{r.coupling}: {shown}{more}")
    return lines


@main.command()
@filter_options
@click.option("--limit", type=int, default=20, show_default=True, help="How many to show.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@bib_option
@click.pass_context
@_user_errors
def suggest(ctx, tags, excludes, years, search, limit: int, fmt: str) -> None:
    """Works outside the corpus that its papers cite together, or that share references with them.

    Ranked by how many corpus papers cite each (then by coupling: the references it shares with
    them), each with why: which corpus papers cite it and which share references with it, and how
    many. The filter options count only the papers they keep (one question of the review). Reads
    the OpenAlex cache (run `survey enrich` first); add one with `survey add --doi DOI`.
    """
    corpus, table = _filtered(ctx, tags, excludes, years, search)
    among = list(table["key"]) if (tags or excludes or years or search) else None
    if among is not None:
        click.echo(f"counting the {len(among)} of {len(corpus)} papers the filter keeps", err=True)
    for line in _suggestion_lines(corpus, limit, fmt, among):
        click.echo(line)


def _gap_lines(gaps, include_surveys: bool) -> list[str]:
    """The counts as a table (rows x columns) and the empty combinations, one a line."""
    counts = gaps.counts
    corner = f"{gaps.rows} \\ {gaps.columns}"
    first = max([len(corner)] + [len(str(v)) for v in counts.index])
    widths = [max(len(str(c)), len(str(int(counts[c].max()))) if len(counts) else 1) for c in counts.columns]
    surveys = ("surveys included" if include_surveys
               else "surveys (type:survey) not counted, --include-surveys counts them")
    lines = [f"Papers per {gaps.rows} × {gaps.columns}: {gaps.papers} paper(s) counted, {surveys}"
             + (f"; {gaps.untagged} of them, with no {gaps.rows} or no {gaps.columns} tag, in no cell"
                if gaps.untagged else ""), ""]
    lines.append(f"{corner:<{first}}  " + "  ".join(f"{str(c):>{w}}" for c, w in zip(counts.columns, widths)))
    for value, row in counts.iterrows():
        lines.append(f"{str(value):<{first}}  " + "  ".join(f"{int(n):>{w}}" for n, w in zip(row, widths)))
    lines += ["", f"{len(gaps.gaps)} of {counts.size} combinations have no paper:"]
    lines += [f"  no paper on {r} × {c}" for r, c in gaps.gaps]
    return lines


@main.command()
@click.option("--rows", metavar="CATEGORY",
              help="The tag category of the rows (one of the corpus's, e.g. method); default: task, or the "
                   "corpus's first category where it has none.")
@click.option("--columns", metavar="CATEGORY",
              help="The tag category of the columns; default: modality, or the corpus's next category.")
@click.option("--include-surveys", is_flag=True,
              help="Count the surveys too: their tags list everything they cover, not what anyone studied.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@bib_option
@click.pass_context
@_user_errors
def gaps(ctx, rows: str | None, columns: str | None, include_surveys: bool, fmt: str) -> None:
    """Papers per combination of two tag categories, and the combinations no paper has studied.

    The explorer's /gaps page shows the same as a heat map.
    """
    from survey.neighbourhood import gap_axes, tag_gaps

    corpus = _corpus(ctx)
    categories = corpus.tag_categories()
    if len(categories) < 2:
        raise click.UsageError("the corpus has fewer than two tag categories to cross: declare them in tags.toml "
                               "beside the .bib file, or tag the entries (keywords = {task:synthesis, modality:CT})")
    chosen = gap_axes(categories, rows, columns)  # what was not asked for: the default, or what the corpus has
    defaulted = rows is None or columns is None
    rows, columns = rows or chosen[0], columns or chosen[1]
    try:
        found = tag_gaps(corpus, rows, columns, exclude=() if include_surveys else ("type:survey",))
    except ValueError as err:
        raise click.UsageError(str(err)) from err
    if defaulted and fmt == "text":
        click.echo(f"Crossing {rows} x {columns} (choose others with --rows and --columns).", err=True)
    if fmt == "json":
        click.echo(json.dumps({"rows": found.rows, "columns": found.columns, "papers": found.papers,
                               "untagged": found.untagged, "surveys_counted": include_surveys,
                               "counts": {str(r): {str(c): int(n) for c, n in line.items()}
                                          for r, line in found.counts.iterrows()},
                               "gaps": [list(g) for g in found.gaps]}, indent=2, ensure_ascii=False))
        return
    for line in _gap_lines(found, include_surveys):
        click.echo(line)


@main.group()
def figure() -> None:
    """The review's figures, regenerated from the corpus."""


@figure.command()
@filter_options
@click.option("-o", "--out-dir", type=click.Path(path_type=Path), default=Path("figures"), show_default=True)
@click.option("--format", "formats", multiple=True, type=click.Choice(["png", "svg", "html"]),
              default=("png", "svg", "html"), show_default=True, help="Repeatable.")
@bib_option
@click.pass_context
@_user_errors
def years(ctx, tags, excludes, years, search, out_dir: Path, formats: tuple[str, ...]) -> None:
    """The review's Figure 3: papers per year, stacked by review category."""
    from survey import review

    _, table = _filtered(ctx, tags, excludes, years, search)
    for path in review.write_years_figure(table, out_dir, list(formats)):
        click.echo(f"wrote {path}")


if __name__ == "__main__":
    main()

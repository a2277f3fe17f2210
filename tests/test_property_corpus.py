"""Property-based tests: generated corpora with missing and odd fields never crash the CLI or the explorer.

A corpus is 0 to 8 BibTeX entries of random types (standard, biblatex, unknown) with random subsets of
fields in the forms real files hold: names with braces, ``and`` inside braces, accents and organisations;
titles absent, empty, braced or holding ``<script>``; years such as ``n.d.``, ``1982--1983`` or ``1781``;
biblatex dates (``2019-05``, ``1984/1986``); DOIs as ``doi:``, ``https://dx.doi.org/`` or ACM links, or
garbage; keywords as one category for all, free tags, ``;`` and ``,`` mixed, or ``cat:`` with no value;
crossref to another entry or to none; empty keys; sometimes duplicate keys, sometimes the same title with
different DOIs. Whatever comes in, every command exits normally (a user error is a SystemExit) and its
JSON parses, and every pure view of the explorer draws.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from survey.cli import main
from survey.corpus import load_corpus

REPO = Path(__file__).resolve().parents[1]

TYPES = ["article", "inproceedings", "book", "misc", "online", "thesis", "Article", "INPROCEEDINGS",
         "phdthesis", "proceedings", "software", "incollaction", "IEEEtranBSTCTL"]
AUTHORS = ["Doe, Jane and Roe, Richard", "{Barnes and Noble}", "M{\\\"u}ller, J{\\\"o}rg",
           "{World Health Organization}", "Jane Doe and others", "", "van der Berg, Jr, Piet",
           "{\\'E}mile Zola and {\\AA}ngstr{\\\"o}m, Anders", "{{MONAI Consortium}}", "Goodfellow, Ian and and Bengio",
           "Smith, J.~R. and {de la Fuente}, Ana", "{\\c{C}}elik, Ay{\\c{s}}e"]
TITLES = [None, "", "{GAN} for {CT} synthesis", "<script>alert(1)</script> GAN", "A plain gan title",
          "{{Double braced Title}}", "{\\\"U}ber diffusion", "Math $x^2$ and \\emph{style}", "   ",
          "A title\n   over two lines", "Medical image synthesis with GANs"]
YEARS = [None, "n.d.", "1982--1983", "1781", "2020", "2007", "forthcoming", "0", "99999", "2019a"]
DATES = [None, "2019-05", "1984/1986", "2021-03-04", "2018", "circa 1900", "2020-13-45"]
DOIS = [None, "doi:10.1/x", "https://dx.doi.org/10.1/X", "http://doi.acm.org/10.1145/1", "garbage",
        "10.1016/j.media.2019.101552", "10.1000/abc", "", "https://doi.org/10.1000/ABC"]
KEYWORDS = [None, "type:method", "alpha, beta", "type:method; gan, modality:CT", "cat:", "cat: , x",
            "gan;ct;mri", "method:DCGAN, method:DCGAN, type:survey", " , ; ", "Magnetic Resonance Imaging: methods"]
VENUES = [None, "Medical Image Analysis", "{MICCAI}", "", "Proc. of \\& Co"]
KEYS = ["Doe2020", "Roe2019", "K3", "k3", "DBLP:conf/x/1", "a/b:c", "2011", "Key with?mark", "Zz"]


@dataclass
class Generated:
    text: str
    tags: list[str]  # tags written in the keywords fields, as the CLI takes them


def _value(text: str, quoted: bool) -> str:
    if quoted and '"' not in text:
        return '"' + text + '"'
    return "{" + text + "}"


@st.composite
def corpora(draw) -> Generated:
    n = draw(st.integers(0, 8))
    keys = [draw(st.sampled_from(KEYS + [""])) for _ in range(n)]  # repeats: duplicate keys, "" an empty key
    blocks, tags = [], []
    for i, key in enumerate(keys):
        fields: list[tuple[str, str]] = []
        quoted = draw(st.booleans())

        def maybe(name, choices, quoted=quoted):
            value = draw(st.sampled_from(choices))
            if value is not None:
                fields.append((name, _value(value, quoted)))
            return value

        maybe("author", AUTHORS)
        title = maybe("title", TITLES)
        year = draw(st.sampled_from(YEARS))
        if year is not None:
            fields.append(("year", year if year.isdigit() and draw(st.booleans()) else _value(year, quoted)))
        maybe("date", DATES)
        maybe(draw(st.sampled_from(["journal", "booktitle", "journaltitle", "publisher"])), VENUES)
        doi = maybe("doi", DOIS)
        keywords = maybe("keywords", KEYWORDS)
        if keywords:
            for word in keywords.replace(";", ",").split(","):
                word = " ".join(word.split())
                category, sep, value = word.partition(":")
                if word and (not sep or (category.strip() and value.strip())):
                    tags.append(f"{category.strip()}:{value.strip()}" if sep else word)
        if keys and draw(st.integers(0, 4)) == 0:
            fields.append(("crossref", "{" + draw(st.sampled_from(keys + ["Missing2000"])) + "}"))
        if draw(st.integers(0, 5)) == 0:
            fields.append(("month", draw(st.sampled_from(["may", "{Aug}", "13"]))))
        fields = draw(st.permutations(fields))
        entry_type = draw(st.sampled_from(TYPES))
        body = ",\n".join(f"  {name} = {value}" for name, value in fields)
        trailing = "," if fields and draw(st.booleans()) else ""
        blocks.append(f"@{entry_type}{{{key},\n{body}{trailing}\n}}")
        if title and doi and draw(st.integers(0, 3)) == 0:  # the same title again, with another DOI
            blocks.append(f"@article{{{key}Again{i},\n  title = {{{title}}},\n  doi = {{10.9999/other.{i}}},\n"
                          "  year = {2021}\n}")
    separator = draw(st.sampled_from(["\n\n", "\n", "\n\n% a comment line\n\n", ",\n"]))  # ",\n": Zotero's "},"
    text = separator.join(blocks) + ("\n" if blocks else "")
    if draw(st.integers(0, 5)) == 0:
        text = "@string{mia = {Medical Image Analysis}}\n" + text.replace("{Medical Image Analysis}", "mia", 1)
    if draw(st.integers(0, 7)) == 0:
        text = text.replace("\n", "\r\n")
    return Generated(text, tags)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("generated")


def write_corpus(scratch: Path, generated: Generated, with_vocabulary: bool) -> Path:
    folder = Path(tempfile.mkdtemp(dir=scratch))
    path = folder / "generated.bib"
    path.write_bytes(generated.text.encode("utf-8"))
    if with_vocabulary:
        shutil.copy(REPO / "bib" / "tags.toml", folder / "tags.toml")
    return path


def run(path: Path, *args: str):
    """``survey --bib PATH ARGS``; an exception other than SystemExit is raised again, with the command."""
    result = CliRunner().invoke(main, ["--bib", str(path), *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        result.exception.add_note(f"command: survey --bib generated.bib {' '.join(args)}")
        raise result.exception
    return result


def parsed_json(result, command: str):
    try:
        return json.loads(result.stdout)
    except json.JSONDecodeError as err:
        raise AssertionError(f"`{command}` printed no JSON (exit {result.exit_code}): {result.output[-1500:]}") from err


CLI = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
EXPLORER = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@CLI
@given(generated=corpora(), with_vocabulary=st.booleans())
def test_cli_commands_never_crash(scratch, generated, with_vocabulary):
    note(f"corpus:\n{generated.text}")
    path = write_corpus(scratch, generated, with_vocabulary)
    tag = generated.tags[0] if generated.tags else "type:method"
    for args in (["list"], ["list", "--tag", tag], ["list", "--tag", "cat:?"], ["list", "--years", "2000-2020"],
                 ["list", "--search", "gan"], ["stats"], ["validate"], ["export", "--format", "csv"], ["export"],
                 ["table1"], ["table1", "--format", "latex"]):
        run(path, *args)
    for args in (["list", "--format", "json"], ["stats", "--format", "json"], ["validate", "--format", "json"],
                 ["list", "--tag", tag, "--format", "json"]):
        parsed_json(run(path, *args), " ".join(args))
    target = path.with_name("target.bib")
    shutil.copy(path, target)
    before = target.read_bytes()
    result = run(target, "add", str(path), "--dry-run")
    assert result.exit_code in (0, 1), f"`add --dry-run` exited {result.exit_code}: {result.output[-1500:]}"
    assert target.read_bytes() == before, "`add --dry-run` changed the target"
    parsed_json(run(target, "add", str(path), "--dry-run", "--json"), "add --dry-run --json")
    result = run(target, "add", str(path), "--confirm-all")  # for real: nothing of the target is lost
    assert result.exit_code in (0, 1) and target.read_bytes().startswith(before.rstrip(b"\n"))
    for args in (["figure", "years", "-o", str(scratch / "figures"), "--format", "svg"], ["enrich", "--offline"],
                 ["suggest"], ["suggest", "--format", "json"], ["suggest", "--tag", tag], ["gaps"],
                 ["gaps", "--rows", "type", "--columns", "method", "--include-surveys"]):
        run(path, *args)
    categories = load_corpus([path]).tag_categories()
    if len(categories) >= 2:
        parsed = parsed_json(run(path, "gaps", "--rows", categories[0], "--columns", categories[1], "--format", "json"),
                             "gaps --format json")
        assert len(parsed["counts"]) == len(set(parsed["counts"])), "a row of `gaps` twice"


@CLI
@given(generated=corpora())
def test_cli_outputs_agree(scratch, generated):
    """What the commands say about one corpus adds up: list = stats = export; add reports every block."""
    note(f"corpus:\n{generated.text}")
    path = write_corpus(scratch, generated, False)
    records = parsed_json(run(path, "list", "--format", "json"), "list --format json")
    stats = parsed_json(run(path, "stats", "--format", "json"), "stats --format json")
    assert stats["papers"] == len(records), f"stats counts {stats['papers']} papers, list {len(records)}"
    dated = sum(r["year"] is not None for r in records)
    assert sum(stats["per_year"].values()) == dated, f"per_year sums to {stats['per_year']}, {dated} have a year"
    table = run(path, "list")
    assert len(table.stdout.splitlines()) == len(records) + 1, f"`list` printed:\n{table.stdout}"
    tag = next(([f"{c}:{v[0]}" for c, v in r["tags"].items() if v] + r["free_tags"] for r in records
                if r["tags"] or r["free_tags"]), [None])[0]
    if tag:
        tagged = parsed_json(run(path, "list", "--tag", tag, "--format", "json"), "list --tag")
        assert tagged, f"--tag {tag!r} (a tag of a listed paper) selects nothing"
    exported = path.with_name("exported.bib")
    exported.write_text(run(path, "export").stdout, encoding="utf-8")
    again = parsed_json(run(exported, "list", "--format", "json"), "list of the export")
    assert sorted(r["key"] for r in again) == sorted(r["key"] for r in records), "the export reads back otherwise"
    blocks = generated.text.count("\n@") + generated.text.startswith("@") - generated.text.count("@string{")
    report = parsed_json(run(path, "add", str(path), "--dry-run", "--json"), "add --dry-run --json")
    assert len(report["outcomes"]) == blocks, f"{blocks} entries in, {len(report['outcomes'])} outcomes"


@EXPLORER
@given(generated=corpora(), with_vocabulary=st.booleans())
def test_explorer_views_draw(scratch, generated, with_vocabulary):
    from app import figures, views
    from app.filters import FilterState
    from app.interactions import render
    from app.state import ExplorerState
    from survey.query import Selector

    note(f"corpus:\n{generated.text}")
    path = write_corpus(scratch, generated, with_vocabulary)
    snap = ExplorerState([path]).snapshot()
    table = snap.table
    tag = generated.tags[0] if generated.tags else "type:?"
    states = [FilterState(), FilterState(text="gan"), FilterState.with_tags(require=(tag,)), FilterState.with_tags(exclude=(tag,)),
              FilterState(year_min=2000, year_max=2020), FilterState(year_min=1900),
              FilterState(colour="year", edges="citations"), FilterState(edges="coupling"),
              FilterState(edges="cocitation")]
    # every author and venue the clouds offer, as OR selections coloured at once, and one as NOT
    offered = [("author", a) for a in snap.authors.names[:3]] + [("venue", v) for v in snap.venues.names[:3]]
    either = tuple(Selector("or", kind, value) for kind, value in offered)
    states += [FilterState(selectors=either, colour="selection"),
               FilterState(selectors=either[:1] + tuple(Selector("not", k, v) for k, v in offered[1:2])),
               FilterState(columns=("key", "tags")), FilterState(columns=())]
    for state in states:
        render(snap, state)
        assert FilterState.from_url(state.to_url()) == state
    for key in table["key"]:
        render(snap, FilterState(paper=key), full_graph=False)
        views.details(snap.by_key.loc[key], False)
    rows = views.list_rows(table, "gan", either)  # every paper, as the grid gets them: plain JSON, no NaN
    assert len(rows) == len(table) and json.loads(json.dumps(rows, allow_nan=False)) == rows
    assert all(column["field"] in row for row in rows for column in views.list_columns(())
               if column["field"] != "selection" or "shade" in row)
    mask = FilterState(text="gan").query().mask(table).to_numpy(dtype=bool)
    figures.years_figure(table, mask, None, None)
    figures.years_figure(table, mask, 2000, 2020)
    # the gaps and clusters page
    from app import gaps_views
    from survey import neighbourhood as nb

    rows, columns = nb.gap_axes(snap.categories)
    for include in (False, True):
        gaps_views.gap_parts(snap, rows, columns, include)
    for first in snap.categories:
        for second in snap.categories[:3]:
            gaps_views.gap_parts(snap, first, second, False)
    gaps_views.cluster_parts(snap)
    for state in (FilterState(), FilterState.with_tags(require=(tag,)), FilterState(text="gan")):
        for by in gaps_views.RANKINGS:
            gaps_views.outside_parts(snap, state, by)

"""What ``survey enrich``, ``survey suggest`` and ``survey add --doi`` do, apart from option parsing."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import click

from survey.corpus import Corpus
from survey.openalex.bibtex import work_to_bibtex
from survey.openalex.cache import WorksCache, cache_folder, now, short_id
from survey.openalex.client import Client, OpenAlexError, Settings
from survey.issues import UserError
from survey.openalex.enrich import EnrichReport, doi_key, enrich
from survey.records import as_int, normalise_doi
from survey.storage import locked


def run_enrich(corpus: Corpus, paths: list[Path], offline: bool, refresh: bool, candidates: bool,
               timeout: float, retries: int, progress: bool) -> EnrichReport:
    folder = cache_folder(paths[0])
    if offline:  # reads only: no lock, and no folder made for one
        return enrich(corpus, WorksCache.open(folder), None)
    client = Client(Settings.from_env(timeout_s=timeout, retries=retries))
    folder.mkdir(parents=True, exist_ok=True)
    with locked(folder / "works.json"):
        cache = WorksCache.open(folder)
        before = len(cache.pending)
        try:
            return enrich(corpus, cache, client, refresh=refresh, candidates=candidates, progress=progress)
        except OpenAlexError as err:
            kept = len(cache.pending) - before
            note = (f" The {kept} batch(es) answered before it are kept in {folder}; run `survey enrich` again "
                    "to resume." if kept else f" The cache in {folder} is as it was.")
            raise OpenAlexError(err.kind, str(err) + note) from err


def print_enrich_report(report: EnrichReport, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"requests": report.requests, "works_fetched": report.works_fetched,
                               "candidates_fetched": report.candidates_fetched,
                               "papers": [asdict(p) for p in report.papers]}, indent=2, ensure_ascii=False))
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


def suggestion_lines(corpus: Corpus, limit: int, fmt: str) -> list[str]:
    from survey.graph import corpus_graph, suggestions  # the graph pulls scipy: only when asked
    table = suggestions(corpus_graph(corpus)).head(limit)
    if fmt == "json":
        records = table.astype(object).where(table.notna(), None).to_dict(orient="records")
        return [json.dumps(records, indent=2, ensure_ascii=False, default=str)]
    if table.empty:
        return ["no suggestions: run `survey enrich` first (works outside the corpus appear once two "
                "corpus papers cite them)"]
    lines = []
    for r in table.itertuples(index=False):
        year = f" ({as_int(r.year)})" if as_int(r.year) else ""
        lines.append(f"{r.key}{year} {r.title}" + (f"  doi:{r.doi}" if r.doi else ""))
        if r.cited_by_corpus:
            lines.append(f"    cited by {len(r.cited_by_corpus)} corpus paper(s): {', '.join(r.cited_by_corpus)}")
        if r.coupled_with:
            lines.append("    shares references with: "
                         + ", ".join(f"{k} ({n})" for k, n in list(r.coupled_with.items())[:5]))
    return lines


def entry_for_doi(doi: str, paths: list[Path], corpus: Corpus) -> str:
    """The BibTeX entry of ``doi`` from the cache, or from OpenAlex (then kept in the cache)."""
    wanted = normalise_doi(doi)
    if not wanted:
        raise UserError("--doi: empty DOI")
    folder = cache_folder(paths[0])
    cache = WorksCache.open(folder)
    wid = (cache.lookups.get(doi_key(wanted)) or {}).get("id") or cache.doi_index().get(wanted)
    work = cache.works.get(wid) if wid else None
    if work is None:
        client = Client(Settings.from_env())  # no key: the message says how to set one; nothing written
        work = client.work_by_doi(wanted)
        if work is None:
            raise OpenAlexError("rejected", f"OpenAlex does not know the DOI {wanted}; check it at "
                                            f"https://doi.org/{wanted}")
        folder.mkdir(parents=True, exist_ok=True)
        with locked(folder / "works.json"):
            cache = WorksCache.open(folder)  # again, inside the lock: another writer may have added
            cache.record([work], {doi_key(wanted): {"id": short_id(work["id"]), "at": now()}})
            cache.compact()
    return work_to_bibtex(work, set(corpus.table["key"]))

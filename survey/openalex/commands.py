"""What ``survey enrich`` and ``survey add --doi`` do, apart from option parsing and printing (those are
``survey.cli``'s): the locked cache around an enrichment, and one DOI as a BibTeX entry."""

from __future__ import annotations

from pathlib import Path

from survey.corpus import Corpus
from survey.openalex.bibtex import work_to_bibtex
from survey.openalex.cache import WorksCache, cache_folder, now, short_id
from survey.issues import UserError
from survey.openalex.client import Client, OpenAlexError, Settings
from survey.openalex.enrich import EnrichReport, doi_key, enrich
from survey.records import normalise_doi
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

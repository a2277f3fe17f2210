"""``survey enrich``: look every paper of the corpus up in OpenAlex, keep the answers in the cache,
and read back per paper what OpenAlex knows (id, cited-by count, references, abstract, open-access
link, topics).

Papers with a DOI are asked for 100 at a time. A paper without one is looked up by its title
and matched only when exactly one answer has the same normalised title and a year within one;
any other outcome is listed for the user to confirm (by adding the DOI). Then the works outside
the corpus that two or more corpus papers cite (the candidates of the graph and of ``survey
suggest``) are fetched too, so that they have titles offline.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

import pandas as pd
from pyalex import invert_abstract
from tqdm import tqdm

from survey.corpus import Corpus
from survey.openalex.cache import WorksCache, now, short_id, work_title
from survey.openalex.client import BATCH, Client
from survey.records import normalise_doi
from survey.validate import normalise_title

MIN_CITING = 2  # a work outside the corpus becomes a candidate when this many corpus papers cite it


@dataclass
class PaperOutcome:
    key: str
    status: str  # matched (by doi or title), not-found, ambiguous, no-match, not-looked-up, no-doi-or-title
    by: str = ""  # "doi" or "title"
    openalex_id: str | None = None
    candidates: list[dict] = field(default_factory=list)  # for the user to confirm: id, title, year, doi


@dataclass
class EnrichReport:
    papers: list[PaperOutcome]
    requests: int = 0
    works_fetched: int = 0
    candidates_fetched: int = 0
    seconds: float = 0.0

    def count(self, status: str) -> int:
        return sum(p.status == status for p in self.papers)


def doi_key(doi: str) -> str:
    return f"doi:{doi}"


def title_key(title: str, year) -> str:
    return f"title:{normalise_title(title)}|{'' if pd.isna(year) else int(year)}"


def enrich(corpus: Corpus, cache: WorksCache, client: Client | None, refresh: bool = False,
           candidates: bool = True, progress: bool = True) -> EnrichReport:
    """Ask OpenAlex (``client``; None = offline) what the cache does not know yet, then report.

    Each answered batch is in the cache before the next is asked, so an error or an interruption
    loses nothing already fetched; a finished run folds the batches into ``works.json``.
    """
    start, sent = time.perf_counter(), client.requests_sent if client else 0
    fetched = fetched_candidates = 0
    if client is not None:
        table = corpus.table
        dois = sorted({d for d in table["doi"] if d and (refresh or doi_key(d) not in cache.lookups)})
        titled = [(t, y) for d, t, y in zip(table["doi"], table["title"], table["year"])
                  if not d and t.strip() and (refresh or title_key(t, y) not in cache.lookups)]
        with tqdm(total=len(dois) + len(titled), desc="OpenAlex", unit="paper", disable=not progress,
                  leave=False) as bar:
            fetched += _fetch_dois(dois, cache, client, bar)
            fetched += _fetch_titles(titled, cache, client, bar)
        if candidates:
            wanted = [w for w in candidate_ids(corpus, cache) if refresh or f"id:{w}" not in cache.lookups]
            with tqdm(total=len(wanted), desc="candidates", unit="work", disable=not progress,
                      leave=False) as bar:
                fetched_candidates = _fetch_ids(wanted, cache, client, bar)
        cache.compact()
    report = EnrichReport(paper_outcomes(corpus, cache), (client.requests_sent - sent) if client else 0,
                          fetched, fetched_candidates)
    report.seconds = time.perf_counter() - start
    return report


def _fetch_dois(dois: list[str], cache: WorksCache, client: Client, bar) -> int:
    found = 0
    for i in range(0, len(dois), BATCH):
        batch = dois[i:i + BATCH]
        works = client.works_by_doi(batch)
        by_doi: dict[str, dict] = {}
        for w in works:
            doi = normalise_doi(w.get("doi") or "")
            # two records for one DOI happen (a preprint merged late): keep the more cited one
            if doi in batch and (doi not in by_doi or _cited(w) > _cited(by_doi[doi])):
                by_doi[doi] = w
        stamp = now()
        lookups = {doi_key(d): {"id": short_id(by_doi[d]["id"]) if d in by_doi else None, "at": stamp}
                   for d in batch}
        cache.record(list(by_doi.values()), lookups)
        found += len(by_doi)
        bar.update(len(batch))
    return found


def _fetch_titles(titled: list[tuple[str, object]], cache: WorksCache, client: Client, bar) -> int:
    found = 0
    for title, year in titled:
        answers = client.search_title(normalise_title(title))
        decision = title_decision(title, year, answers)
        kept = [w for w in answers if short_id(w["id"]) == decision["id"]]
        cache.record(kept, {title_key(title, year): {**decision, "at": now()}})
        found += len(kept)
        bar.update(1)
    return found


def _fetch_ids(ids: list[str], cache: WorksCache, client: Client, bar) -> int:
    found = 0
    for i in range(0, len(ids), BATCH):
        batch = ids[i:i + BATCH]
        works = [w for w in client.works_by_id(batch) if short_id(w["id"]) in batch]
        got = {short_id(w["id"]) for w in works}
        stamp = now()
        cache.record(works, {f"id:{w}": {"id": w if w in got else None, "at": stamp} for w in batch})
        found += len(works)
        bar.update(len(batch))
    return found


def title_decision(title: str, year, answers: list[dict]) -> dict:
    """Matched only when exactly one answer has the same normalised title and a year within one."""
    wanted = normalise_title(title)
    same = [w for w in answers if normalise_title(work_title(w)) == wanted
            and not pd.isna(year) and w.get("publication_year") is not None
            and abs(int(w["publication_year"]) - int(year)) <= 1]
    if len(same) == 1:
        return {"status": "matched", "id": short_id(same[0]["id"]), "candidates": []}
    shown = same or answers[:3]
    summary = [{"id": short_id(w["id"]), "title": w.get("display_name") or w.get("title"),
                "year": w.get("publication_year"), "doi": normalise_doi(w.get("doi") or "")} for w in shown]
    if pd.isna(year) and answers:
        return {"status": "ambiguous", "id": None, "candidates": summary, "why": "the entry has no year"}
    return {"status": "ambiguous" if same else "no-match", "id": None, "candidates": summary}


def paper_works(corpus: Corpus, cache: WorksCache) -> dict[str, tuple[str, dict]]:
    """Corpus key -> (how it was matched, its cached work record), for every matched paper."""
    out = {}
    by_doi = None
    for key, doi, title, year in zip(corpus.table["key"], corpus.table["doi"], corpus.table["title"],
                                     corpus.table["year"]):
        if doi:
            answer = cache.lookups.get(doi_key(doi))
            wid = answer.get("id") if answer else None
            if wid is None and answer is None:  # a record fetched for another reason (add --doi, a candidate)
                by_doi = by_doi if by_doi is not None else cache.doi_index()
                wid = by_doi.get(doi)
            if wid in cache.works:
                out[key] = ("doi", cache.works[wid])
        elif title.strip():
            answer = cache.lookups.get(title_key(title, year)) or {}
            if answer.get("status") == "matched" and answer.get("id") in cache.works:
                out[key] = ("title", cache.works[answer["id"]])
    return out


def paper_outcomes(corpus: Corpus, cache: WorksCache) -> list[PaperOutcome]:
    matched = paper_works(corpus, cache)
    out = []
    for key, doi, title, year in zip(corpus.table["key"], corpus.table["doi"], corpus.table["title"],
                                     corpus.table["year"]):
        if key in matched:
            by, work = matched[key]
            out.append(PaperOutcome(key, "matched", by, short_id(work["id"])))
        elif doi:
            status = "not-found" if doi_key(doi) in cache.lookups else "not-looked-up"
            out.append(PaperOutcome(key, status, "doi"))
        elif title.strip():
            answer = cache.lookups.get(title_key(title, year))
            out.append(PaperOutcome(key, answer["status"] if answer else "not-looked-up", "title",
                                    candidates=answer.get("candidates", []) if answer else []))
        else:
            out.append(PaperOutcome(key, "no-doi-or-title"))
    return out


def candidate_ids(corpus: Corpus, cache: WorksCache, min_citing: int = MIN_CITING) -> list[str]:
    """Works outside the corpus cited by at least ``min_citing`` corpus papers, most cited first."""
    works = paper_works(corpus, cache)
    inside = {short_id(w["id"]) for _, w in works.values()}
    counts = Counter(r for _, w in works.values() for r in {short_id(x) for x in w.get("referenced_works") or []})
    return [w for w, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
            if n >= min_citing and w not in inside]


def enrichment_table(corpus: Corpus, cache: WorksCache) -> pd.DataFrame:
    """What OpenAlex says of each matched paper: one row per corpus key."""
    rows = []
    for key, (by, w) in paper_works(corpus, cache).items():
        oa = w.get("open_access") or {}
        best = w.get("best_oa_location") or {}
        rows.append({
            "key": key, "openalex_id": short_id(w["id"]), "matched_by": by,
            "cited_by_count": w.get("cited_by_count"),
            "referenced_works": [short_id(r) for r in w.get("referenced_works") or []],
            "abstract": invert_abstract(w.get("abstract_inverted_index")) or "",
            "oa_url": oa.get("oa_url") or best.get("pdf_url") or best.get("landing_page_url") or "",
            "topics": [t.get("display_name", "") for t in w.get("topics") or []],
        })
    columns = ["key", "openalex_id", "matched_by", "cited_by_count", "referenced_works", "abstract", "oa_url",
               "topics"]
    table = pd.DataFrame(rows, columns=columns)
    table["cited_by_count"] = table["cited_by_count"].astype("Int64")
    return table


def _cited(work: dict) -> int:
    return int(work.get("cited_by_count") or 0)

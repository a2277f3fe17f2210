"""Benchmark of the explorer's detail panel on synthetic enriched corpora (prints figures; not a test).

For 1k and 10k synthetic papers (the entries of bench_corpus.py, each matched by DOI to an invented
OpenAlex record citing 25 works: 60% corpus papers of its field, 40% works outside from a pool of a
third as many, so that candidates, coupling and co-citation all exist) it measures, server side:
  load          ExplorerState.snapshot(): the corpus (cold cache), the graph and its layout
  prepare       what survey.neighbourhood derives once per graph (who cites what, tag vectors, the
                TF-IDF text vectors), which the snapshot starts in the background after the load:
                measured here from the load's end until it is done
  first open    the first paper's state drawn once that is done (the page's own first draw before)
  open          render() of a paper's state as the callback draws it after a click (list, clouds,
                histogram, map patch, panel), median and slowest of 30 papers, each opened once
  panel         the panel alone (detail_panel) of 30 other papers, median and slowest
  work          the panel of a candidate (a work outside the corpus), median of 10
  similar       a "select similar" state drawn (select_similar, then the filter), median of 10
Goal at 10k papers on a 2-core machine: opening a paper well under 1 s (first open included).
Usage: python tests/benchmarks/bench_neighbourhood.py [--sizes 1000 10000] [--out FILE]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import results_file

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO), str(REPO / "tests" / "benchmarks")]

from bench_corpus import synthetic_entry  # noqa: E402

REFERENCES = 25
FIELDS = 20


def wid(i: int) -> str:
    return f"W{8_000_000_000 + i}"


def enriched_corpus(n: int, folder: Path, seed: int = 0) -> Path:
    """``n`` synthetic entries and a WorksCache beside them with one record per entry."""
    from survey.openalex.cache import WorksCache, cache_folder

    rng = random.Random(seed)
    bib = folder / f"syn{n}.bib"
    bib.write_text("".join(synthetic_entry(i, rng) for i in range(n)), encoding="utf-8")
    field = [rng.randrange(FIELDS) for _ in range(n)]
    by_field = {f: [i for i in range(n) if field[i] == f] for f in range(FIELDS)}
    pool = max(n // 3, 10)
    works, lookups = [], {}
    for i in range(n):
        refs = set()
        while len(refs) < REFERENCES:
            if rng.random() < 0.6:
                refs.add(wid(rng.choice(by_field[field[i]])))
            else:  # outside: a field's share of the pool, so that works are cited more than once
                refs.add(wid(n + field[i] * (pool // FIELDS) + rng.randrange(pool // FIELDS)))
        refs.discard(wid(i))
        works.append({"id": f"https://openalex.org/{wid(i)}", "doi": f"https://doi.org/10.5555/syn.{i}",
                      "display_name": f"Synthetic work {i}", "publication_year": 2000 + i % 25,
                      "cited_by_count": rng.randrange(500), "referenced_works": [f"https://openalex.org/{r}"
                                                                                 for r in sorted(refs)],
                      "open_access": {"oa_url": None}, "topics": [{"display_name": f"Topic {field[i]}"}]})
        lookups[f"doi:10.5555/syn.{i}"] = {"id": wid(i), "at": "2026-01-01T00:00:00+00:00"}
    cache = WorksCache.open(cache_folder(bib))
    cache.record(works, lookups)
    cache.compact()
    return bib


def timed(func) -> tuple[float, object]:
    start = time.perf_counter()
    out = func()
    return time.perf_counter() - start, out


def bench(n: int, folder: Path) -> dict:
    from app.filters import FilterState
    from app.interactions import detail_panel, render
    from app.state import ExplorerState

    bib = enriched_corpus(n, folder)
    load, snap = timed(lambda: ExplorerState([bib]).snapshot())
    prepare, _ = timed(snap.prepare_panels)  # waits for the background one, then finds it done
    keys = list(snap.table["key"])
    rng = random.Random(1)
    picked = rng.sample(keys, 61)
    render(snap, FilterState(), full_graph=False)  # the page's own first draw (search index, clouds)
    # anchor: the same update with no paper selected, measured in this run (what a panel adds to it)
    bare = statistics.median(timed(lambda: render(snap, FilterState(), full_graph=False))[0] for _ in range(10))
    first, _ = timed(lambda: render(snap, FilterState(paper=picked[0]), full_graph=False))
    opens = [timed(lambda k=k: render(snap, FilterState(paper=k), full_graph=False))[0] for k in picked[1:31]]
    panels = [timed(lambda k=k: detail_panel(snap, k))[0] for k in picked[31:]]
    candidates = list(snap.nodes.loc[snap.nodes["kind"] != "paper", "key"])[:10]
    works = [timed(lambda w=w: detail_panel(snap, w))[0] for w in candidates]
    similar = [timed(lambda k=k: render(snap, FilterState(paper=k, similar=k), full_graph=False))[0]
               for k in picked[1:11]]
    row = {"papers": n, "candidates": int((snap.nodes["kind"] != "paper").sum()), "load_s": load, "prepare_s": prepare,
           "first_open_s": first, "open_median_s": statistics.median(opens), "open_max_s": max(opens),
           "panel_median_s": statistics.median(panels), "panel_max_s": max(panels),
           "work_median_s": statistics.median(works) if works else None,
           "similar_median_s": statistics.median(similar), "anchor_bare_update_s": bare}
    row["open_ratio_to_anchor"] = row["open_median_s"] / bare
    print(f"{n:>6} papers, {row['candidates']} candidates: load {load:.1f} s; prepare {prepare:.1f} s; first open {first * 1000:.0f} ms; "
          f"open median {row['open_median_s'] * 1000:.0f} ms (max {row['open_max_s'] * 1000:.0f}); "
          f"panel median {row['panel_median_s'] * 1000:.0f} ms (max {row['panel_max_s'] * 1000:.0f}); "
          f"work {row['work_median_s'] * 1000 if works else float('nan'):.0f} ms; "
          f"select similar {row['similar_median_s'] * 1000:.0f} ms\n"
          f"        anchor: the same update with no paper selected {bare * 1000:.0f} ms median; "
          f"opening a paper / anchor {row['open_ratio_to_anchor']:.2f}")
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--out", type=Path, default=REPO / "tests" / "benchmarks" / "results"
                        / "bench_neighbourhood.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["SURVEY_CACHE_DIR"] = str(Path(tmp) / "cache")  # a cold load, and never the user's cache
        rows = []
        for n in args.sizes:
            folder = Path(tmp) / str(n)
            folder.mkdir()
            rows.append(bench(n, folder))
    results_file.write(args.out, {"machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                                             f"Python {platform.python_version()}", "rows": rows})


if __name__ == "__main__":
    main()

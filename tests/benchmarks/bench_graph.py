"""Benchmark of the corpus graph (not a test: it prints figures and writes them to a JSON file).

  build     corpus_graph on a synthetic corpus whose papers cite 5 others each (a 1k- and a 5k-node
            graph with 5k and 25k citation edges; clustered: 90% of citations stay in one of 20 fields)
  layout    positions("citations") with an empty cache: the spectral start plus force iterations
  tags 10k  corpus_graph on 10k papers with SurVis tags and no citation (the offline case): tag
            edges, communities on them; then the layout of those edges

Goals (2-core machine): layout of 5k nodes / 25k edges <= 2 s; corpus_graph at 10k tags-only
well under 1 s plus the layout.
Usage: python tests/benchmarks/bench_graph.py [--repeat 2] [--out FILE]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

import results_file

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
os.environ["SURVEY_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench-graph-")  # never the user's cache

import pandas as pd  # noqa: E402

from survey.corpus import Corpus  # noqa: E402
from survey.graph import corpus_graph  # noqa: E402
from survey.tags import Vocabulary  # noqa: E402

CATEGORIES = {"type": ["method", "survey", "tool", "dataset"], "method": [f"method{i}" for i in range(30)],
              "modality": ["CT", "MRI", "X-ray", "PET", "ultrasound", "fundus", "pathology"],
              "task": [f"task{i}" for i in range(12)], "dataset": [f"dataset{i}" for i in range(40)]}


def synthetic_corpus(n: int, cites: int, seed: int = 0) -> Corpus:
    """n papers in 20 fields; each cites ``cites`` others (90% in its field); 0-2 tags per category."""
    rng = random.Random(seed)
    field = [rng.randrange(20) for _ in range(n)]
    by_field = {f: [i for i in range(n) if field[i] == f] for f in range(20)}
    rows = []
    for i in range(n):
        refs = set()
        while len(refs) < cites and n > 1:
            j = rng.choice(by_field[field[i]]) if rng.random() < 0.9 else rng.randrange(n)
            if j != i:
                refs.add(f"P{j}")
        tags = {f"{c}:{rng.choice(v)}" for c, v in CATEGORIES.items() for _ in range(rng.choice([0, 1, 1, 2]))}
        rows.append({"key": f"P{i}", "title": f"Paper {i}", "year": 2000 + i % 25, "doi": "",
                     "references": sorted(refs), "tagset": frozenset(tags)})
    table = pd.DataFrame(rows)
    table["year"] = table["year"].astype("Int64")
    return Corpus(table, [], [], Vocabulary())


def best_of(func, repeat: int) -> tuple[float, list[float], object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - start)
    return min(times), times, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO / "tests" / "benchmarks" / "results" / "bench_graph.json")
    args = parser.parse_args()
    figures = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                           "platform": platform.platform()}, "runs": []}
    for n in (1000, 5000):
        corpus = synthetic_corpus(n, 5)
        build, build_all, graph = best_of(lambda: corpus_graph(corpus, works=[]), args.repeat)
        edges = len(graph.edges("citations"))

        def fresh_layout():
            graph._positions.clear()
            os.environ["SURVEY_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench-graph-")
            return graph.positions("citations")

        lay, lay_all, _ = best_of(fresh_layout, args.repeat)
        row = {"case": f"citations {n}", "nodes": len(graph.nodes), "edges": edges, "build_s": build,
               "build_all_s": build_all, "layout_s": lay, "layout_all_s": lay_all,
               "communities": int(graph.nodes["community"].nunique())}
        figures["runs"].append(row)
        print(f"{n:>6} nodes {edges:>6} citation edges: build {build:.2f} s, layout {lay:.2f} s "
              f"(all runs: build {', '.join(f'{t:.2f}' for t in build_all)}; "
              f"layout {', '.join(f'{t:.2f}' for t in lay_all)}), {row['communities']} communities")
    corpus = synthetic_corpus(10000, 0)
    build, build_all, graph = best_of(lambda: corpus_graph(corpus, works=[]), args.repeat)
    os.environ["SURVEY_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench-graph-")
    start = time.perf_counter()
    graph.positions("tags")
    lay = time.perf_counter() - start
    start = time.perf_counter()
    corpus_graph(corpus, works=[]).positions("tags")
    warm = time.perf_counter() - start
    row = {"case": "tags 10000", "nodes": len(graph.nodes), "edges": len(graph.edges("tags")),
           "distinct_tag_sets": int(corpus.table["tagset"].nunique()), "build_s": build, "build_all_s": build_all,
           "layout_s": lay, "build_plus_cached_layout_s": warm}
    figures["runs"].append(row)
    print(f" 10000 papers, tags only ({row['distinct_tag_sets']} distinct tag sets, {row['edges']} tag edges): "
          f"corpus_graph {build:.2f} s (all runs {', '.join(f'{t:.2f}' for t in build_all)}), layout {lay:.2f} s; "
          f"build + layout from the position cache {warm:.2f} s")
    results_file.write(args.out, figures)


if __name__ == "__main__":
    main()

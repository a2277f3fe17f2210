"""Benchmark of `survey enrich` against a local stub server (not a test: it prints figures).

The stub speaks just enough of the OpenAlex API (``/works?filter=doi:a|b|...``) and answers with
invented records of a realistic size (40 references, a 150-word abstract, topics, authors), so the
figure is this program's own cost per paper: building queries, parsing, writing each batch to the
cache atomically, folding the batches, and reading the result back. Network latency is not in it.

Usage: python tests/benchmarks/bench_enrich.py [--papers 2000] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import results_file
from urllib.parse import parse_qs, unquote, urlsplit

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
os.environ["SURVEY_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench-enrich-")

from survey.corpus import load_corpus  # noqa: E402
from survey.openalex.cache import WorksCache, cache_folder  # noqa: E402
from survey.openalex.client import Client, Settings  # noqa: E402
from survey.openalex.enrich import enrich  # noqa: E402


def record(doi: str, n: int) -> dict:
    words = {f"word{i}": [i] for i in range(150)}
    return {"id": f"https://openalex.org/W7{n:08d}", "doi": f"https://doi.org/{doi}", "display_name": f"Paper {n}",
            "publication_year": 2020, "cited_by_count": n % 97, "abstract_inverted_index": words,
            "referenced_works": [f"https://openalex.org/W6{(n * 7 + i) % 5000:08d}" for i in range(40)],
            "topics": [{"display_name": "Invented topic"}] * 3,
            "authorships": [{"author": {"display_name": f"Author {i}"}} for i in range(6)]}


class Stub(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        query = parse_qs(urlsplit(self.path).query)
        dois = [unquote(v) for v in query["filter"][0].partition(":")[2].split("|")]
        body = json.dumps({"meta": {"count": len(dois)},
                           "results": [record(d, int(d.rsplit(".", 1)[1])) for d in dois]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=REPO / "tests" / "benchmarks" / "results" / "bench_enrich.json")
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Stub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    folder = Path(tempfile.mkdtemp(prefix="bench-enrich-bib-"))
    bib = folder / "corpus.bib"
    bib.write_text("".join(f"@article{{P{i},\n  author = {{Doe, Jane}},\n  title = {{Paper {i}}},\n"
                           f"  journal = {{J}},\n  year = {{2020}},\n  doi = {{10.5555/bench.{i}}}\n}}\n"
                           for i in range(args.papers)))
    corpus = load_corpus([bib])
    client = Client(Settings(api_key="stub", base_url=f"http://127.0.0.1:{server.server_port}"))
    start = time.perf_counter()
    report = enrich(corpus, WorksCache.open(cache_folder(bib)), client, candidates=False, progress=False)
    seconds = time.perf_counter() - start
    start = time.perf_counter()
    WorksCache.open(cache_folder(bib))
    reload = time.perf_counter() - start
    size = (cache_folder(bib) / "works.json").stat().st_size
    server.shutdown()
    figures = {"papers": args.papers, "requests": report.requests, "matched": report.count("matched"),
               "seconds": seconds, "papers_per_s": args.papers / seconds, "cache_bytes": size,
               "cache_reload_s": reload}
    print(f"{args.papers} papers in {report.requests} requests: {seconds:.2f} s "
          f"({args.papers / seconds:.0f} papers/s, stub server on this machine); cache {size / 1e6:.1f} MB, "
          f"read back in {reload:.2f} s")
    results_file.write(args.out, figures)


if __name__ == "__main__":
    main()

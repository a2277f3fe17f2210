"""Benchmark of the explorer in headless Chromium on synthetic corpora (prints figures; not a test).

For 1k and 10k synthetic papers (the generator of bench_corpus.py) it measures:
  server start  create_app: load the corpus (cold cache), build the graph, lay it out
  page ready    from navigation until the histogram and the graph are drawn (median of 5)
  filter round trip  from a tag click until the count, the histogram and the graph have all
                     been redrawn (median of 15 clicks, cycling require / exclude / clear)
Goal at 10k papers on a 2-core machine: ready <= 2 s, round trip <= 150 ms median.
Usage: python tests/benchmarks/bench_explorer.py [--sizes 1000 10000] [--out FILE]
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

JS_ARM = """
const t = window.__bench = {};
const watch = (sel, name) => document.querySelector(sel + ' .js-plotly-plot')
    .on('plotly_afterplot', () => { window.__bench[name] = performance.now(); });
if (!window.__armed) { watch('#ex-graph', 'graph'); watch('#ex-years', 'years'); window.__armed = true; }
new MutationObserver(() => { t.count = performance.now(); })
    .observe(document.getElementById('ex-count'), {childList: true, subtree: true, characterData: true});
t.click = performance.now();
document.getElementById(arguments[0]).click();
"""


def page_ready(driver, url: str) -> float:
    start = time.perf_counter()
    driver.get(url)
    while not driver.execute_script("return document.querySelectorAll('#ex-graph .js-plotly-plot .main-svg, "
                                    "#ex-years .js-plotly-plot .main-svg').length >= 2"):
        time.sleep(0.005)
    return time.perf_counter() - start


def round_trip(driver, button_id: str) -> float:
    driver.execute_script(JS_ARM, button_id)
    deadline = time.time() + 30
    while time.time() < deadline:
        t = driver.execute_script("return window.__bench")
        if all(k in t for k in ("count", "graph", "years")):
            return (max(t["count"], t["graph"], t["years"]) - t["click"]) / 1000
        time.sleep(0.005)
    raise RuntimeError(f"the views did not update within 30 s: {driver.execute_script('return window.__bench')}")


def bench(size: int, folder: Path, driver) -> dict:
    from tests.browser import LiveServer

    rng = random.Random(size)
    path = folder / f"synthetic-{size}.bib"
    path.write_text("\n".join(synthetic_entry(i, rng) for i in range(size)), encoding="utf-8")
    start = time.perf_counter()
    server = LiveServer([path])
    started = time.perf_counter() - start
    try:
        ready = [page_ready(driver, server.url + "/") for _ in range(5)]
        tag_id = '{"tag":"method:GAN","type":"ex-tag"}'
        round_trip(driver, tag_id)  # warm-up: the first click loads nothing new, but JIT-compiles the path
        trips = [round_trip(driver, tag_id) for _ in range(15)]
    finally:
        server.stop()
    return {"papers": size, "server_start_s": round(started, 2), "page_ready_s": round(statistics.median(ready), 3),
            "round_trip_median_s": round(statistics.median(trips), 3), "round_trip_max_s": round(max(trips), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--out", type=Path, default=REPO / "tests/benchmarks/results/bench_explorer.json")
    args = parser.parse_args()
    from tests.browser import chrome

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["SURVEY_CACHE_DIR"] = str(Path(tmp) / "cache")
        driver = chrome()
        try:
            rows = [bench(size, Path(tmp), driver) for size in args.sizes]
        finally:
            driver.quit()
    columns = list(rows[0])
    print("  ".join(f"{c:>20}" for c in columns))
    for row in rows:
        print("  ".join(f"{row[c]:>20}" for c in columns))
    machine = {"python": platform.python_version(), "cpus": os.cpu_count(), "date": time.strftime("%Y-%m-%d")}
    print("goal at 10k papers: page ready <= 2 s, round trip <= 0.15 s median;", machine)
    results_file.write(args.out, {"machine": machine, "results": rows})


if __name__ == "__main__":
    main()

"""Benchmark of the knowledge base on synthetic corpora (not a test: it prints figures).

For 1k and 10k synthetic entries (seeded; about 10% with LaTeX accents, 2% with math, every one
with an abstract and tags) it measures:
  cold load  parse + LaTeX decode + validate, no cache (large files are parsed in pieces, one
             process per core)
  cold 1proc the same in one process (SURVEY_PARSE_WORKERS=1)
  warm load  the same file again, from the content-keyed cache
  validate   validate_table alone
  add 100    survey add of 100 new entries (lock, reload, duplicate check, atomic write)
  write      one atomic write of the whole file

Goal (2-core machine): 10k cold <= 1.5 s, warm <= 0.2 s.
Usage: python tests/benchmarks/bench_corpus.py [--sizes 1000 10000] [--repeat 3] [--out FILE]
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
sys.path.insert(0, str(REPO))

SURNAMES = ["Smith", "Wang", "Garcia", "Nguyen", "Kim", "Rossi", "Novak", "Okafor", "Larsen", "Ito"]
ACCENTED = [r"M{\"u}ller", r"Fran{\c{c}}ois", r"Jos{\'e}", r"{\AA}str{\"o}m", r"Dvo{\v{r}}{\'a}k"]
GIVEN = ["Anna", "Ben", "Chen", "Dana", "Eli", "Fatima", "Goran", "Hana", "Ivan", "Julia"]
WORDS = ("generative adversarial network diffusion model transformer lesion synthesis segmentation "
         "MRI CT X-ray augmentation low-dose reconstruction denoising registration classification "
         "radiology report LoRA fine-tuning latent conditional anatomy tumour nodule").split()
TAGS = ["method:GAN", "method:DDPM", "method:transformer", "method:LoRA", "modality:CT", "modality:MRI",
        "modality:X-ray", "task:synthesis", "task:segmentation", "task:augmentation", "evaluation:FID"]


def synthetic_entry(i: int, rng: random.Random) -> str:
    authors = []
    for _ in range(rng.randint(2, 7)):
        surname = rng.choice(ACCENTED) if rng.random() < 0.1 else rng.choice(SURNAMES)
        authors.append(f"{surname}, {rng.choice(GIVEN)}")
    title = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 12))).capitalize()
    if rng.random() < 0.02:
        title += r" with $\alpha$-divergence and $O(n^2)$ cost"
    # sentences of 8-20 words with commas: real abstracts are full of the splitter's marks
    sentences = []
    for _ in range(rng.randint(8, 12)):
        words = [rng.choice(WORDS) + ("," if rng.random() < 0.08 else "") for _ in range(rng.randint(8, 20))]
        sentences.append(" ".join(words).capitalize().rstrip(",") + ".")
    abstract = " ".join(sentences)
    tags = ", ".join(rng.sample(TAGS, rng.randint(2, 5)))
    return (f"@article{{Syn{i:06d},\n"
            f"  author = {{{' and '.join(authors)}}},\n"
            f"  title = {{{title} {{GAN}} study {i}}},\n"
            f"  journal = {{Journal of Synthetic Imaging}},\n"
            f"  volume = {{{rng.randint(1, 60)}}},\n"
            f"  pages = {{{rng.randint(1, 900)}--{rng.randint(901, 999)}}},\n"
            f"  year = {{{rng.randint(2000, 2025)}}},\n"
            f"  month = {rng.choice(['jan', 'jun', 'oct'])},\n"
            f"  doi = {{10.5555/syn.{i}}},\n"
            f"  keywords = {{{tags}}},\n"
            f"  abstract = {{{abstract}}}\n}}\n")


def timed(func, repeat: int) -> tuple[float, object]:
    """Median seconds of ``repeat`` calls, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def bench(size: int, repeat: int, folder: Path) -> dict:
    from survey import load_corpus, validate
    from survey.merge import add_text
    from survey.storage import atomic_write

    rng = random.Random(size)
    path = folder / f"synthetic-{size}.bib"
    path.write_text("\n".join(synthetic_entry(i, rng) for i in range(size)), encoding="utf-8")
    figures = {"entries": size, "megabytes": round(path.stat().st_size / 1e6, 1)}

    figures["cold_load_s"], corpus = timed(lambda: load_corpus([path], use_cache=False), repeat)
    assert len(corpus) == size and not corpus.errors, corpus.errors[:3]
    os.environ["SURVEY_PARSE_WORKERS"] = "1"  # the same without worker processes, for comparison
    figures["cold_1proc_s"], _ = timed(lambda: load_corpus([path], use_cache=False), repeat)
    del os.environ["SURVEY_PARSE_WORKERS"]
    load_corpus([path])  # fill the cache
    figures["warm_load_s"], _ = timed(lambda: load_corpus([path]), repeat)
    figures["validate_s"], _ = timed(lambda: validate.validate_table(corpus.table, corpus.vocabulary), repeat)

    new = "\n".join(synthetic_entry(size + i, rng) for i in range(100))
    start = time.perf_counter()
    report = add_text(new, "new.bib", path)
    figures["add_100_s"] = time.perf_counter() - start
    assert report.count("added") == 100, [o for o in report.outcomes if o.status != "added"][:3]
    data = path.read_bytes()
    figures["write_s"], _ = timed(lambda: atomic_write(path, data), repeat)
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in figures.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO / "tests/benchmarks/results/bench_corpus.json")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["SURVEY_CACHE_DIR"] = str(Path(tmp) / "cache")  # never the user's cache
        rows = [bench(size, args.repeat, Path(tmp)) for size in args.sizes]

    columns = ["entries", "megabytes", "cold_load_s", "cold_1proc_s", "warm_load_s", "validate_s", "add_100_s", "write_s"]
    print("  ".join(f"{c:>11}" for c in columns))
    for row in rows:
        print("  ".join(f"{row[c]:>11}" for c in columns))
    machine = {"python": platform.python_version(), "machine": platform.machine(),
               "cpus": os.cpu_count(), "date": time.strftime("%Y-%m-%d")}
    print("goal at 10k entries: cold <= 1.5 s, warm <= 0.2 s;", machine)
    results_file.write(args.out, {"machine": machine, "results": rows})


if __name__ == "__main__":
    main()

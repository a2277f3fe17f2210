"""paper1 and paper4 (bibliometric reproductions) on a small corpus the test writes, and the
report of ``reproduce all`` / ``reproduce report``."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from reproductions import cli, report
from reproductions.cli import main as reproduce
from reproductions.registry import build
from reproductions.run import RESULTS_DIR
from tests.conftest import REPO, entry

# (key, method, task tags, code, modality): 12 GAN papers, one GAN survey, one diffusion paper.
PAPERS = [*[(f"Syn{i}", "DCGAN", "synthesis", "none found", "CT") for i in range(5)],
          ("Aug", "CycleGAN", "augmentation, task:classification", "official", "MRI"),
          ("Rec1", "GAN", "reconstruction", "official", "MRI"), ("Rec2", "WGAN", "reconstruction", "none found", "CT"),
          ("Sr", "GAN", "super-resolution", "none found", "MRI"),
          ("Seg1", "pix2pix", "segmentation", "official", "CT"), ("Seg2", "GAN", "segmentation", "announced", "X-ray"),
          ("Den", "GAN", "denoising", "none found", "CT")]


def write_corpus(folder):
    folder.mkdir()
    shutil.copy(REPO / "bib" / "tags.toml", folder / "tags.toml")
    text = "".join(entry(key, f"Paper {key}", 2019, keywords=f"{{type:method, method:{method}, task:{task}, "
                                                            f"code:{code}, modality:{modality}}}")
                   for key, method, task, code, modality in PAPERS)
    text += entry("Review", "A GAN review", 2019, keywords="{type:survey, method:GAN, task:registration}")
    text += entry("Diff", "A diffusion paper", 2023, keywords="{type:method, method:DDPM, task:synthesis}")
    (folder / "corpus.bib").write_text(text)
    return folder / "corpus.bib"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("kb") / "bib")


def run(name, out, *options):
    result = CliRunner().invoke(reproduce, [name, "--out", str(out), *options])
    assert result.exit_code == 0, result.output
    (folder,) = (out / name).iterdir()
    return folder, json.loads((folder / "metrics.json").read_text()), json.loads((folder / "results.json").read_text())


def test_paper1_counts_gan_papers_by_task_beside_the_labelled_proxy(corpus, tmp_path):
    folder, metrics, doc = run("paper1", tmp_path, "--set", f"bib={corpus}")
    assert metrics["gan_papers"] == 12 and metrics["corpus_entries"] == 14
    assert metrics["papers"] == {"synthesis": 6, "segmentation": 2, "reconstruction": 3, "detection": 0,
                                 "denoising": 1, "registration": 0, "classification": 1, "others": 0}
    assert metrics["share_percent"]["synthesis"] == pytest.approx(100 * 5.5 / 12)
    assert sum(metrics["share_percent"].values()) == pytest.approx(100)
    assert [c["held"] for c in doc["claims"]] == [True, True]
    synthesis = next(r for r in doc["rows"] if r["metric"] == "papers" and r["setting"] == "synthesis")
    assert synthesis["ours"] == 6 and synthesis["paper"] == 82  # the paper column is the companion list's count
    assert [d["kind"] for d in doc["data"]] == ["real", "substitute"]  # the knowledge base, and the proxy
    assert all((folder / f).read_bytes()[:4] == b"\x89PNG" for f in doc["figures"]) and len(doc["figures"]) == 2
    _, with_surveys, _ = run("paper1", tmp_path / "surveys", "--set", f"bib={corpus}", "--set", "include_surveys=true")
    assert with_surveys["gan_papers"] == 13 and with_surveys["papers"]["registration"] == 1
    _, _, strict = run("paper1", tmp_path / "strict", "--set", f"bib={corpus}", "--set", "min_papers=50")
    assert [c["held"] for c in strict["claims"]] == [None, None]


def test_paper4_regenerates_the_task_modality_code_table(corpus, tmp_path):
    folder, metrics, doc = run("paper4", tmp_path, "--set", f"bib={corpus}")
    assert metrics["papers_per_task"]["synthesis"] == 6 and metrics["papers_per_task"]["detection"] == 0
    assert metrics["official_code_per_task"] == {"synthesis": 1, "segmentation": 1, "reconstruction": 1,
                                                 "detection": 0, "denoising": 0, "registration": 0,
                                                 "classification": 1}
    cells = {(c["task"], c["modality"], c["code"]): c["papers"] for c in metrics["cells"]}
    assert cells[("synthesis", "CT", "none found")] == 5 and cells[("reconstruction", "MRI", "none found")] == 1
    assert doc["rows"][0]["ours"] == 12 and doc["rows"][0]["paper"] == 63
    assert all(r["paper"] is None for r in doc["rows"][1:])  # per-task counts not found
    assert doc["claims"][0]["held"] is False  # two of the seven tasks have no paper:
    assert [t for t, n in metrics["papers_per_task"].items() if n == 0] == ["detection", "registration"]
    tables = (folder / "tables.md").read_text()
    assert "| synthesis | 5 (0) | 1 (1) |  | 6 |" in tables  # columns CT, MRI, X-ray, all
    assert "| Seg2 (2019) | GAN | X-ray | ? | announced |" in tables


def test_verdicts_are_one_line_per_paper():
    def claims(*outcomes, addition=False):
        return [{"outcome": o, "addition": addition} for o in outcomes]

    doc = {"status": "completed", "profile": "full", "claims": claims("held", "did not hold", "not testable here")}
    assert report.verdict(doc) == "1 held, 1 did not hold, 1 not testable here"
    both = {**doc, "claims": claims("held", "held") + claims("did not hold", addition=True)}
    assert report.verdict(both) == "2 held"  # our additions never count
    smoke = {**doc, "profile": "smoke", "claims": claims("inconclusive")}
    assert report.verdict(smoke) == "1 inconclusive (smoke run, not the result to compare)"
    assert report.verdict({**doc, "status": "failed"}) == "run failed" and report.verdict(None) == "not run yet"


def test_reproduce_all_writes_one_report_with_every_paper(corpus, tmp_path, monkeypatch):
    from survey.corpus import load_corpus

    registry = build(set(load_corpus().table["key"]))
    # keep the test fast, the bibliometric papers only; the others read as not written yet
    registry.entries = {name: registry.entries[name] for name in ("paper1", "paper4")}
    monkeypatch.setattr(cli, "default_registry", lambda: registry)
    before = sorted(RESULTS_DIR.rglob("*")) if RESULTS_DIR.exists() else []
    result = CliRunner().invoke(reproduce, ["all", "--out", str(tmp_path), "--set", f"bib={corpus}"])
    assert result.exit_code == 0, result.output
    md, page = (tmp_path / "report.md").read_text(), (tmp_path / "report.html").read_text()
    assert "| paper1 | Yi2019GANReview | 2 | 0 | 0 | 0 | smoke |" in md  # counts: decided without seeds
    assert "| paper3 | FridAdar2018Synthetic | not run yet (no reproduction module) |" in md
    assert "| paper4 | Kazeminia2020GANs | 0 | 1 | 0 | 0 |" in md
    seven = "GANs are applied across all seven tasks the review organises them by"
    assert f"| paper4 | {seven} | did not hold | exact count |" in md
    assert md.count("wall time") >= 3 and "](paper1/" in md and "Data that is not real: proxy task counts" in md
    assert page.count("data:image/png;base64,") == 3 and "<td>not run yet (no reproduction module)</td>" in page
    assert (sorted(RESULTS_DIR.rglob("*")) if RESULTS_DIR.exists() else []) == before  # smoke: nothing published


def test_reproduce_report_reads_committed_results_only(tmp_path):
    folder, _, _ = run("paper4", tmp_path / "runs")
    results = tmp_path / "results"
    shutil.copytree(folder, results / "paper4")
    result = CliRunner().invoke(reproduce, ["report", "--results", str(results)])
    assert result.exit_code == 0, result.output
    md = (results / "report.md").read_text()
    assert "| paper1 | Yi2019GANReview | not run yet |" in md and "| paper4 | Kazeminia2020GANs | 0 | 0 | 0 | 1 |" in md
    assert "![task_modality_code](paper4/figures/task_modality_code.png)" in md


@pytest.mark.parametrize("name", ["paper1", "paper4"])
def test_committed_bibliometric_results_come_from_completed_full_runs(name):
    info_file = RESULTS_DIR / name / "run_info.json"
    if not info_file.exists():
        pytest.skip(f"no committed results for {name}")
    info = json.loads(info_file.read_text())
    assert info["profile"] == "full" and info["status"] == "completed" and info["device"] in ("cpu", "cuda")
    doc = json.loads((RESULTS_DIR / name / "results.json").read_text())
    assert doc["run"]["device"] == info["device"] and all((RESULTS_DIR / name / f).is_file() for f in doc["figures"])

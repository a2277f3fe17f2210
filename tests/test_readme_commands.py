"""Every command line in the README is run by a test.

``CASES`` maps each line of the README's ```bash blocks (comments stripped) to the check that runs it,
and a test fails when the two differ, so a new README line needs a case here. ``survey`` and
``reproduce`` lines run through click's runner in a scratch folder whose copy of bib/ they work on
($SURVEY_BIB). What cannot run here is run up to the step that can't: OpenAlex answers are replayed
at the HTTP layer, ``survey serve`` answers requests through the WSGI test client instead of
listening, ``reproduce data`` stops before the download, and the long trainings go through the real
CLI and runner (preset, typed overrides, device, run folder, records, publishing) with the paper's
training replaced by a recorder. The set-up and benchmark lines are checked for what they name.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shlex
import shutil
import subprocess
import tarfile
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest
import responses
import torch
from click.testing import CliRunner, Result

import app.main
from app import runtime
from reproductions import cli as repro_cli
from reproductions import run as runs
from reproductions import runner
from reproductions.common import reader_study
from reproductions.data import loaders, offline
from reproductions.gpucheck import check as gpu_check
from reproductions.gpucheck import prepare as gpu_prepare
from reproductions.outcome import Outcome
from reproductions.registry import Reproduction, default_registry
from app.cli import main as survey
from survey.corpus import load_corpus
from survey.query import Query
from tests import axe
from tests.conftest import entry
from tests.test_enrich import WORKS, FakeOpenAlex, work
from tests.test_reader_study import make_study

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
PROGRAMS = {"survey": survey, "reproduce": repro_cli.main}
AUTO_DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def readme_command_lines() -> list[str]:
    """Each command line of the README's ```bash blocks, without its comment."""
    blocks = re.findall(r"^```bash\n(.*?)^```", README.read_text(encoding="utf-8"), re.M | re.S)
    lines = (re.sub(r"(^|\s)#.*$", "", line).strip() for block in blocks for line in block.splitlines())
    return [line for line in lines if line]


@dataclass
class Workspace:
    """The working directory of one case, holding the copy of bib/ that every ``survey`` line works on."""
    root: Path
    bib: Path
    monkeypatch: pytest.MonkeyPatch

    @property
    def corpus_file(self) -> Path:
        return self.bib / "corpus.bib"

    def invoke(self, line: str, **env: str) -> Result:
        """Run a README line through click's runner; ``cat FILE | COMMAND`` feeds FILE to standard input and
        leading ``NAME=value`` words set the environment."""
        words, stdin = shlex.split(line), None
        while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):
            name, value = words.pop(0).split("=", 1)
            env[name] = value
        if "|" in words:
            cat, path, _ = words[:3]
            assert cat == "cat", line
            stdin, words = Path(path).read_bytes(), words[3:]
        program, *args = words
        return CliRunner(env=env).invoke(PROGRAMS[program], args, input=stdin)

    def write_bib(self, name: str, key: str) -> Path:
        path = self.root / name
        path.write_text(entry(key, f"A new paper called {key}", 2024, doi=f"10.5555/{key.lower()}"), encoding="utf-8")
        return path

    def redirect_runs(self) -> Path:
        """Run folders, the report of ``reproduce all`` and published results go under the workspace."""
        self.monkeypatch.setattr(runs, "RUNS_DIR", self.root / "runs")
        self.monkeypatch.setattr(repro_cli, "RUNS_DIR", self.root / "runs")
        published = self.root / "results"
        self.monkeypatch.setattr(runner, "publish", lambda folder, paper: runs.publish(folder, paper, published))
        return published

    def replace_training(self) -> list[dict]:
        """Every paper module loads for real, but its ``main`` records what it was given instead of training."""
        self.redirect_runs()
        calls, load = [], Reproduction.load

        def record(config, run) -> Outcome:
            calls.append({"paper": run.paper, "profile": run.profile, "device": run.device.type, "seed": run.seed,
                          "config": config})
            return Outcome({})

        def load_untrained(reproduction):
            module = load(reproduction)
            self.monkeypatch.setattr(module, "main", record)
            return module

        self.monkeypatch.setattr(Reproduction, "load", load_untrained)
        return calls

    def enrich_replayed(self, line: str = "survey enrich") -> Result:
        """``line`` against invented OpenAlex records of the corpus's DOIs, all citing one outside work."""
        dois = [doi for doi in load_corpus([self.bib]).table["doi"] if doi]
        works = [work(10 + i, doi, refs=(1,)) for i, doi in enumerate(dois)]
        works.append(work(1, "10.5555/outside.1", "An outside work that the corpus cites"))
        with responses.RequestsMock() as openalex:
            openalex.add_callback(responses.GET, WORKS, callback=FakeOpenAlex(works))
            return self.invoke(line, OPENALEX_API_KEY="test-key")


def succeeded(result: Result) -> Result:
    assert result.exit_code == 0, f"exit {result.exit_code}: {result.output}{result.exception!r}"
    return result


def refused_in_one_line(result: Result) -> str:
    """The message of a command that exits 1 with one line, as click prints a user error: no traceback."""
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), repr(result.exception)
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output, result.output
    return result.output


CASES: dict[str, Callable[[Workspace, str], None]] = {}  # README line -> the check that runs it


def case(*lines: str):
    def register(check):
        for line in lines:
            CASES[line] = check
        return check
    return register


# --- set-up ---------------------------------------------------------------------------------------------

def pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]


@case("python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/survey serve")
def explorer_set_up(ws, line):
    project = pyproject()  # a plain install is built and run in tests/test_install.py
    assert project["scripts"]["survey"] == "app.cli:main" and "serve" in survey.commands
    assert not any(re.match(r"torch\b", requirement) for requirement in project["dependencies"])


@case('python3 -m venv .venv && .venv/bin/pip install -e ".[test]" && .venv/bin/reproduce data && npm ci --prefix tests/a11y && .venv/bin/pytest')
def full_set_up(ws, line):
    assert "test" in pyproject()["optional-dependencies"] and "data" in repro_cli.main.commands
    assert line in (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()  # what CI runs, verbatim
    lock = json.loads((REPO / "tests" / "a11y" / "package-lock.json").read_text(encoding="utf-8"))
    assert lock["packages"][""]["dependencies"]["axe-core"] == axe.pinned()
    assert lock["packages"]["node_modules/axe-core"]["integrity"].startswith("sha512-")  # npm ci checks the hash


# --- the knowledge base ---------------------------------------------------------------------------------

@case("survey list --tag method:DCGAN --years 2018-2020")
def list_by_tag_and_years(ws, line):
    listing = succeeded(ws.invoke(line)).stdout
    assert "Chuquicusma2018Fool" in listing and "FridAdar2018Synthetic" in listing and "Yi2019GANReview" not in listing


@case("survey list --tag dataset:? --format json")
def list_untagged_as_json(ws, line):
    papers = json.loads(succeeded(ws.invoke(line)).stdout)
    assert papers and all(not paper["tags"].get("dataset") for paper in papers)


@case("survey stats")
def stats(ws, line):
    text = succeeded(ws.invoke(line)).stdout
    assert "Papers per year" in text and "Papers per review category" in text and "Papers per tag" in text


@case("survey validate")
def validate(ws, line):
    assert " 0 error(s)" in succeeded(ws.invoke(line)).stdout


@case("survey add new.bib --dry-run")
def add_dry_run(ws, line):
    ws.write_bib("new.bib", "New2024Paper")
    before = ws.corpus_file.read_bytes()
    assert "New2024Paper: would add" in succeeded(ws.invoke(line)).stdout
    assert ws.corpus_file.read_bytes() == before


@case("survey add new.bib --confirm Smith2020Gan")
def add_confirmed_possible_duplicate(ws, line):
    yi = "Generative Adversarial Network in Medical Imaging: A Review"  # a bundled paper's title, another author
    (ws.root / "new.bib").write_text(entry("Smith2020Gan", yi, 2020), encoding="utf-8")
    unconfirmed = succeeded(ws.invoke("survey add new.bib")).stdout
    assert "Smith2020Gan: possible-duplicate" in unconfirmed
    assert "Smith2020Gan" not in set(load_corpus([ws.bib], use_cache=False).table["key"])
    assert "1 added" in succeeded(ws.invoke(line)).stdout
    assert "Smith2020Gan" in set(load_corpus([ws.bib], use_cache=False).table["key"])


@case("cat pasted.bib | survey add -")
def add_from_stdin(ws, line):
    ws.write_bib("pasted.bib", "Pasted2024Paper")
    assert "1 added" in succeeded(ws.invoke(line)).stdout
    assert "Pasted2024Paper" in set(load_corpus([ws.bib], use_cache=False).table["key"])


@case("survey export --tag type:survey --format bibtex -o surveys.bib")
def export_surveys(ws, line):
    succeeded(ws.invoke(line))
    surveys = Query(require=("type:survey",)).apply(load_corpus([ws.bib]).table)
    assert not surveys.empty
    assert list(load_corpus([ws.root / "surveys.bib"]).table["key"]) == list(surveys["key"])


@case("survey table1 --format latex")
def table1_latex(ws, line):
    latex = succeeded(ws.invoke(line)).stdout
    assert latex.startswith(r"\begin{table}") and r"\cite{Yi2019GANReview}" in latex


@case("survey figure years -o figures/")
def figure_years(ws, line):
    succeeded(ws.invoke(line))
    assert {path.suffix for path in (ws.root / "figures").iterdir()} == {".png", ".svg", ".html"}


@case("survey enrich")
def enrich_online(ws, line):
    assert "10 of 11 papers matched in OpenAlex" in succeeded(ws.enrich_replayed(line)).stdout
    assert (ws.bib / "openalex" / "works.json").is_file()


@case("survey enrich --offline")
def enrich_offline(ws, line):
    succeeded(ws.enrich_replayed())
    with responses.RequestsMock():  # refuses any request
        report = succeeded(ws.invoke(line)).stdout
    assert "10 of 11 papers matched in OpenAlex" in report and "; 0 request(s)" in report


@case("survey suggest")
def suggest(ws, line):
    succeeded(ws.enrich_replayed())
    suggestions = succeeded(ws.invoke(line)).stdout
    assert "doi:10.5555/outside.1" in suggestions and "cited by 10 corpus paper(s)" in suggestions


@case("survey add --doi 10.1016/j.media.2019.101552")
def add_by_doi_from_the_cache(ws, line):
    succeeded(ws.enrich_replayed())
    before = ws.corpus_file.read_bytes()
    with responses.RequestsMock():  # the cache answers: no request
        added = succeeded(ws.invoke(line)).stdout
    assert re.search(r"doi\s*= \{10\.1016/j\.media\.2019\.101552\}", added)
    assert "duplicate" in added and "Yi2019GANReview" in added  # the README's example is a bundled paper
    assert ws.corpus_file.read_bytes() == before


@case("survey serve")
def serve(ws, line):
    served = serve_one_request(ws, line)
    assert (served["host"], served["port"], served["status"]) == ("127.0.0.1", 8050, (200, 200))
    assert served["paths"] == [ws.corpus_file]


def serve_one_request(ws: Workspace, line: str) -> dict:
    """Run ``line`` with the explorer built for real; instead of listening, it answers / and its layout."""
    served = {}

    def answer_instead_of_listening(explorer, host, port):
        client = explorer.server.test_client()
        page, layout = client.get("/"), client.get("/_dash-layout")
        served.update(host=host, port=port, status=(page.status_code, layout.status_code),
                      paths=[Path(p).resolve() for p in runtime.explorer_state().paths])
        return SimpleNamespace(run=lambda: None)

    ws.monkeypatch.setattr(app.main, "wsgi_server", answer_instead_of_listening)
    succeeded(ws.invoke(line))
    return served


# --- the reproductions ----------------------------------------------------------------------------------

@case("reproduce list")
def reproduce_list(ws, line):
    listing = succeeded(ws.invoke(line)).stdout
    assert {row.split()[0] for row in listing.splitlines()} == set(default_registry().entries)


@case("reproduce data")
def reproduce_data(ws, line):
    asked = []
    ws.monkeypatch.setattr(offline, "prepare", lambda name, root: asked.append((name, root)) or f"{root / name}")
    succeeded(ws.invoke(line))  # the download itself runs in .ci/run, the README's test set-up
    assert asked == [(name, ws.root / "repro-data") for name in offline.CATALOGUE]


def preset(paper: str, profile: str, **changes):
    return dataclasses.replace(default_registry()[paper].load().PRESETS[profile], **changes)


@case("reproduce paper5")
def paper5_smoke(ws, line):
    calls = ws.replace_training()  # the real smoke run is tests/test_repro_paper5.py's
    succeeded(ws.invoke(line))
    assert calls == [{"paper": "paper5", "profile": "smoke", "device": AUTO_DEVICE, "seed": 0,
                      "config": preset("paper5", "smoke")}]
    (folder,) = (ws.root / "runs" / "paper5").iterdir()
    assert json.loads((folder / "run_info.json").read_text())["status"] == "completed"


@case("reproduce paper5 --profile cpu")
def paper5_cpu(ws, line):
    calls = ws.replace_training()
    succeeded(ws.invoke(line))
    assert [(c["profile"], c["config"]) for c in calls] == [("cpu", preset("paper5", "cpu"))]
    assert (ws.root / "results" / "paper5" / "results.json").is_file()  # a completed cpu run is published


@case("reproduce paper5 --profile full --device cuda")
def paper5_full_on_cuda(ws, line):
    calls = ws.replace_training()
    result = ws.invoke(line)
    if torch.cuda.is_available():
        succeeded(result)
        assert [(c["profile"], c["device"], c["config"]) for c in calls] == [("full", "cuda", preset("paper5", "full"))]
    else:
        assert "--device cuda: no CUDA device" in refused_in_one_line(result) and not calls


@case("reproduce paper10 --profile full --set epochs=200")
def paper10_typed_override(ws, line):
    calls = ws.replace_training()
    succeeded(ws.invoke(line))
    assert [(c["profile"], c["config"]) for c in calls] == [("full", preset("paper10", "full", epochs=200))]
    assert "known keys" in refused_in_one_line(ws.invoke("reproduce paper10 --set epoch=200"))


@case("reproduce paper10 --set datasets=digits,fashion-mnist,organs")
def paper10_datasets(ws, line):
    calls = ws.replace_training()
    succeeded(ws.invoke(line))
    datasets = ("digits", "fashion-mnist", "organs")
    assert [c["config"] for c in calls] == [preset("paper10", "smoke", datasets=datasets)]
    if not loaders.FASHION_MNIST.exists():  # the README's comment is what a real run says without it
        with pytest.raises(offline.DataError, match="apt-get install dataset-fashion-mnist"):
            loaders.fashion_mnist()


@case("reproduce paper1 --profile full --set bib=my.bib")
def paper1_on_my_corpus(ws, line):
    published = ws.redirect_runs()  # a real run: counting a corpus takes a moment
    ws.write_bib("my.bib", "Mine2024Paper")
    succeeded(ws.invoke(line))
    config = json.loads((published / "paper1" / "config.json").read_text())
    assert config["profile"] == "full" and config["bib"] == ["my.bib"]
    assert json.loads((published / "paper1" / "results.json").read_text())["status"] == "completed"


@case("reproduce all")
def reproduce_all(ws, line):
    calls = ws.replace_training()
    succeeded(ws.invoke(line))
    assert [(c["paper"], c["profile"]) for c in calls] == [(name, "smoke") for name in default_registry().entries]
    assert (ws.root / "runs" / "report.md").is_file() and (ws.root / "runs" / "report.html").is_file()


@case("reproduce report")
def reproduce_report(ws, line):
    results = ws.root / "committed"
    shutil.copytree(runs.RESULTS_DIR, results, ignore=shutil.ignore_patterns("report.*"))
    ws.monkeypatch.setattr(repro_cli, "RESULTS_DIR", results)
    succeeded(ws.invoke(line))
    for name in ("report.md", "report.html"):  # the committed report is the one the committed results give
        assert (results / name).read_bytes() == (runs.RESULTS_DIR / name).read_bytes(), f"{name} is out of date"


@case("ATEN_CPU_CAPABILITY=avx2 reproduce paper6 --profile cpu --out rerun")
def paper6_rerun_with_other_kernels(ws, line):
    calls = ws.replace_training()  # torch reads the variable when it starts; here the line's wiring is checked
    succeeded(ws.invoke(line))
    assert [(c["paper"], c["profile"], c["seed"]) for c in calls] == [("paper6", "cpu", 0)]
    (folder,) = (ws.root / "rerun" / "paper6").iterdir()
    assert json.loads((folder / "run_info.json").read_text())["determinism"]["env"]["ATEN_CPU_CAPABILITY"] == "avx2"


@case("reproduce compare rerun")
def compare_a_rerun(ws, line):
    rerun = ws.root / "rerun" / "paper6" / "20261202T000000Z-cpu-seed0"
    rerun.mkdir(parents=True)
    shutil.copy(runs.RESULTS_DIR / "paper6" / "results.json", rerun)  # a rerun that gave the committed numbers
    assert "paper6: agrees" in succeeded(ws.invoke(line)).stdout


@case("reproduce reader-study score RUN/reader_study")
def reader_study_score(ws, line):
    study = make_study(ws.root / "RUN" / "reader_study")
    for item in study.ids:  # one reader calls everything real
        reader_study.record_answer(study, "ann", item, real=True, label=study.item(item).label, seconds=1.0)
    scores = succeeded(ws.invoke(line)).stdout
    assert "ann: FRR 100.0%  TRR 100.0%  accuracy 50.0%" in scores


@case("reproduce gpu-check prepare")
def gpu_check_prepare(ws, line):
    checkout = ws.root / "checkout"  # .gpucheck/ is written into a checkout of the case's own
    checkout.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=checkout, check=True)
    shutil.copy(REPO / ".gitignore", checkout)
    ws.monkeypatch.setattr(gpu_prepare, "REPO", checkout)
    asked = []  # the download itself stops here, as in `reproduce data`
    ws.monkeypatch.setattr(gpu_prepare, "install_for_host", lambda target, pins: asked.append(pins))
    for name in gpu_prepare.DATA:
        (ws.root / "repro-data" / name).mkdir(parents=True)
        (ws.root / "repro-data" / name / offline.DONE).write_text("a stand-in\n")
    printed = succeeded(ws.invoke(line)).stdout
    assert asked == [gpu_prepare.pins()]
    assert json.loads(printed[printed.index("{"):]) == gpu_prepare.device_call()
    with tarfile.open(checkout / gpu_prepare.FOLDER / gpu_prepare.ARCHIVE) as archive:
        assert {name.split("/")[0] for name in archive.getnames()} == set(gpu_prepare.DATA)
    provenance = json.loads((checkout / gpu_prepare.FOLDER / gpu_prepare.PROVENANCE).read_text())
    assert provenance["git_commit"] == runs.git_commit() and provenance["data"] == list(gpu_prepare.DATA)


@case("reproduce gpu-check run out --device cpu --paper paper1")
def gpu_check_on_the_cpu(ws, line):
    succeeded(ws.invoke(line))  # real runs in child processes: paper1's smoke profile, then its full preset
    report = json.loads((ws.root / "out" / gpu_check.REPORT).read_text())
    assert report["probe"]["device"] == "cpu"
    assert [(j["mode"], j["status"]) for j in report["jobs"]] == [("smoke", "completed"), ("steps", "completed")]
    assert report["jobs"][1]["steps"]["timed"] == 0  # bibliometric: its full preset takes no optimiser step


# --- development ----------------------------------------------------------------------------------------

@case(".venv/bin/python tests/benchmarks/bench_corpus.py", ".venv/bin/python tests/benchmarks/bench_graph.py",
      ".venv/bin/python tests/benchmarks/bench_enrich.py", ".venv/bin/python tests/benchmarks/bench_explorer.py",
      ".venv/bin/python tests/benchmarks/bench_neighbourhood.py")
def benchmark(ws, line):
    assert (REPO / shlex.split(line)[1]).is_file()


# --- running the table ----------------------------------------------------------------------------------

def checkout_state() -> dict[str, tuple[int, int]]:
    """Size and modification time of each file of the checkout's corpus and committed results: no case may
    change them."""
    files = sorted(p for folder in (REPO / "bib", runs.RESULTS_DIR) for p in folder.rglob("*") if p.is_file())
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in files}


@pytest.fixture(scope="module")
def checkout_before() -> dict[str, tuple[int, int]]:
    return checkout_state()


@pytest.fixture
def ws(seed_copy, tmp_path, monkeypatch, checkout_before) -> Iterator[Workspace]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SURVEY_BIB", str(seed_copy.parent))
    monkeypatch.setenv("SURVEY_READER_STUDY_DIR", str(tmp_path / "answers"))
    monkeypatch.setenv("REPRODUCE_DATA", str(tmp_path / "repro-data"))
    monkeypatch.delenv("OPENALEX_API_KEY", raising=False)
    yield Workspace(tmp_path, seed_copy.parent, monkeypatch)
    assert checkout_state() == checkout_before, "a README case changed the checkout's bib/ or committed results"


def test_every_readme_command_line_has_a_case():
    lines = readme_command_lines()
    assert len(lines) == len(set(lines)), "a README command line appears twice"
    assert set(lines) == set(CASES), (f"README lines without a case: {sorted(set(lines) - set(CASES))}; "
                                      f"cases for lines no longer in the README: {sorted(set(CASES) - set(lines))}")


@pytest.mark.parametrize("line", list(CASES))
def test_readme_line(line, ws):
    CASES[line](ws, line)


def test_serve_takes_the_corpus_after_the_command(ws):
    """The set-up notes' `survey serve --bib my.bib`, the explorer on one's own corpus."""
    my = ws.write_bib("my.bib", "Mine2024Paper")
    assert serve_one_request(ws, "survey serve --bib my.bib")["paths"] == [my.resolve()]

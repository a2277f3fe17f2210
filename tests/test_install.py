"""`pip install .` (a wheel, not editable) works outside the checkout, and the base install, without
the repro extra, runs `reproduce --help` and `reproduce list` and says which extra a run needs.

The wheel is built from a copy of the checkout's files (tracked and untracked, not ignored), so that
no stale build/ folder of the checkout leaks into it, and installed with --no-deps into a fresh venv
that sees the project's dependencies through a .pth file naming this environment's site-packages:
nothing comes from the network. The checkout is installed editable in this environment, so the test
checks that what runs is the wheel's copy.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from survey.corpus import load_corpus

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("survey", "app", "reproductions")
# The top-level modules of the repro extra (torch ships three); the base install has none of them.
REPRO_MODULES = ("torch", "functorch", "torchgen", "diffusers", "peft", "transformers", "accelerate",
                 "torchmetrics", "monai", "skimage", "pycocoevalcap", "bert_score", "gguf", "nibabel", "pydicom")
# Imports of those modules fail as if they were not installed. Putting None in sys.modules instead
# would confuse libraries that look for torch there (scipy's array API helpers do).
BLOCKER = '''"""Written by tests/test_install.py: the repro extra's modules are not installed here."""
import sys
from importlib.abc import MetaPathFinder


class NotInstalled(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {modules!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None


sys.meta_path.insert(0, NotInstalled())
'''
# Where the installed code finds its bundled files; every path must lie inside the fresh venv.
WHERE = """import json, survey, survey.corpus, app.main, app.results
print(json.dumps({"survey": survey.__file__, "bib": str(survey.corpus.BUNDLED_BIB),
                  "results": str(app.results.RESULTS), "assets": app.main.create_app().config.assets_folder}))"""


def run(args, cwd: Path, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    if check:
        assert result.returncode == 0, f"{args}: exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def outside_env() -> dict:
    """This environment without what would point a child process at the checkout or another corpus."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SURVEY_BIB", "VIRTUAL_ENV")}


def git_files(*options: str) -> list[str]:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("the checkout's file list comes from git, which is not available here")
    listed = subprocess.run(["git", "ls-files", "-z", *options], cwd=REPO, capture_output=True, text=True,
                            check=True).stdout
    return [name for name in listed.split("\0") if name and (REPO / name).is_file()]


def checkout_files() -> list[str]:
    """What a clone of the checkout would hold now: tracked and untracked files that git does not ignore."""
    return git_files("--cached", "--others", "--exclude-standard")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    pytest.importorskip("setuptools", reason="building the wheel offline needs setuptools in this environment")
    source = tmp_path_factory.mktemp("source")
    for name in checkout_files():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, source / name)
    out = tmp_path_factory.mktemp("wheel")
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", out, source],
        cwd=source)
    (built,) = out.glob("*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """The bin/ folder of a fresh venv holding the wheel, with this environment's packages visible."""
    root = tmp_path_factory.mktemp("venv")
    run([sys.executable, "-m", "venv", "--without-pip", root], cwd=root)
    python = root / "bin" / "python"
    run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", wheel], cwd=root)
    site = Path(run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], cwd=root).stdout.strip())
    dependencies = dict.fromkeys([sysconfig.get_path("purelib"), sysconfig.get_path("platlib")])
    (site / "project-dependencies.pth").write_text("\n".join(dependencies) + "\n")
    return root / "bin"


@pytest.mark.slow
def test_the_wheel_holds_every_package_and_bundled_file(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    code = {str(Path(f).parent) for f in checkout_files() if f.endswith(".py") and f.startswith(PACKAGES)}
    shipped = {str(Path(n).parent) for n in names if n.endswith(".py")}
    assert code <= shipped, f"packages missing from the wheel (list them in pyproject.toml): {sorted(code - shipped)}"
    tracked = git_files()
    corpus = {f"survey/{f}" for f in tracked if f.startswith("bib/")}
    committed = {f for f in tracked if f.startswith(("app/assets/", "reproductions/results/"))}
    assert "survey/bib/corpus.bib" in corpus and "reproductions/results/paper5/results.json" in committed
    assert corpus | committed <= names, f"missing from the wheel: {sorted((corpus | committed) - names)}"


@pytest.mark.slow
def test_a_plain_install_works_outside_the_checkout(installed, tmp_path):
    env, venv = outside_env(), installed.parent
    where = {k: Path(v) for k, v in json.loads(run([installed / "python", "-c", WHERE], tmp_path, env).stdout).items()}
    assert all(path.is_relative_to(venv) for path in where.values()), where
    assert (where["bib"] / "corpus.bib").is_file() and (where["bib"] / "tags.toml").is_file()
    assert (where["results"] / "paper5" / "results.json").is_file() and (where["results"] / "report.html").is_file()
    assert (where["assets"] / "style.css").is_file()

    papers = json.loads(run([installed / "survey", "list", "--format", "json"], tmp_path, env).stdout)
    keys = {paper["key"] for paper in papers}
    assert keys == set(load_corpus([REPO / "bib"], use_cache=False).table["key"])
    assert "Yi2019GANReview" in run([installed / "survey", "list"], tmp_path, env).stdout
    assert " 0 error(s)" in run([installed / "survey", "validate"], tmp_path, env).stdout
    assert "GAN-based Models" in run([installed / "survey", "table1"], tmp_path, env).stdout
    listing = run([installed / "reproduce", "list"], tmp_path, env).stdout
    assert "paper5" in listing and "no committed results" not in listing  # found in the wheel


@pytest.fixture(scope="module")
def without_repro_extra(tmp_path_factory) -> dict:
    """The environment of a child process that cannot import the repro extra's modules."""
    folder = tmp_path_factory.mktemp("no-repro-extra")
    (folder / "sitecustomize.py").write_text(BLOCKER.format(modules=set(REPRO_MODULES)))
    return outside_env() | {"PYTHONPATH": os.pathsep.join([str(folder), str(REPO)])}


def reproduce(*args, env: dict, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "reproductions.cli", *args], cwd, env, check)


@pytest.mark.parametrize("command", [["--help"], ["list"]], ids=" ".join)
def test_reproduce_helps_and_lists_without_the_repro_extra(command, without_repro_extra, tmp_path):
    assert "paper5" in reproduce(*command, env=without_repro_extra, cwd=tmp_path).stdout


def test_a_run_without_the_repro_extra_names_it_in_one_line(without_repro_extra, tmp_path):
    result = reproduce("paper5", "--out", tmp_path, env=without_repro_extra, cwd=tmp_path, check=False)
    assert result.returncode != 0
    assert 'pip install "survey-explorer[repro]"' in result.stderr and "'torch'" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_the_knowledge_base_and_explorer_import_without_the_repro_extra(without_repro_extra, tmp_path):
    run([sys.executable, "-c", "import survey.cli, app.main"], tmp_path, without_repro_extra)

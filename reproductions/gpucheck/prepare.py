"""Here, with a network: what the lent GPU host lacks, packed to travel with the checkout, the size
of what travels, and the device tool's call that runs the check there.

The host (Python 3.12, x86-64, no network) has torch, transformers, peft, torchmetrics,
scikit-learn, scikit-image, pandas and matplotlib (the device tool's KINDS.md lists its packages).
It lacks the libraries in ``LIBRARIES``, which travel as wheels of the versions installed here, and
the data sets in ``DATA``, which travel as one xz archive whose gzip members are stored at level 0,
so that xz compresses the voxels themselves (37 MB instead of the 50 of the gzip files). What cannot
travel within 64 MiB with the checkout stays here, and the check records what needs it as skipped:
the FID Inception (87 MB), MiniLM (91 MB), SmolLM2 (its GGUF alone about 100 MB) and pycocoevalcap
(a 104 MB wheel with its Java jars, needed by paper7 and paper9, which need SmolLM2 as well).
"""

from __future__ import annotations

import datetime as dt
import gzip
import importlib.metadata
import io
import re
import subprocess
import sys
import tarfile
from pathlib import Path

from reproductions.data import offline
from reproductions.run import PACKAGE, git_commit, write_json

REPO = PACKAGE.parent
FOLDER = ".gpucheck"  # at the checkout's root, ignored by git, named in the device tool's carry
WHEELS, ARCHIVE, PROVENANCE = "wheels", "data.tar.xz", "provenance.json"
# imported by the runs (the corpus behind the registry; diffusers' networks; MONAI's metrics; NIfTI and DICOM)
LIBRARIES = ("bibtexparser", "pylatexenc", "rapidfuzz", "diffusers", "monai", "nibabel", "pydicom")
DATA = ("chest-ct", "dicom-images", "mni152")  # the phantoms of paper2, paper3 and paper5; paper6's images
HOST_PYTHON = "3.12"
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
             "manylinux1_x86_64")
TRAVEL_LIMIT = 64 * 2**20  # the device tool's limit on the checkout and the carried paths together
COMMAND_LIMIT = 2000  # characters of one device command
BUDGET_S = 420  # the check's work, inside the 8 minutes a 15-minute lease leaves after the machine's start
TIMEOUT_S = 480  # the command's limit: the budget, the install and the unpacking, with a margin
INSTALL = ("python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "
           f"{FOLDER}/{WHEELS}/*.whl && export PYTHONPATH=/tmp/site || exit; ")


class PrepareError(RuntimeError):
    """Something the preparation needs is missing, or what would travel is too large."""


def pins(names: tuple[str, ...] = LIBRARIES) -> list[str]:
    """``name==version`` of each library as installed here: the versions the tests run against."""
    try:
        return [f"{name}=={importlib.metadata.version(name)}" for name in names]
    except importlib.metadata.PackageNotFoundError as err:
        raise PrepareError(f"{err.name} is not installed here; install the repro extra first: "
                           'pip install -e ".[repro]"') from None


def wheel_key(name: str) -> tuple[str, str]:
    """(normalised distribution name, version) of a wheel's file name or of a ``name==version`` pin."""
    dist, version = name.split("==") if "==" in name else name.split("-")[:2]
    return re.sub(r"[-_.]+", "_", dist).lower(), version


def download_wheels(folder: Path, wanted: list[str]) -> list[Path]:
    """The host's wheels of ``wanted`` pins in ``folder`` (pip download, no dependencies), and no other
    wheel: two versions of one package stop the host's install."""
    folder.mkdir(parents=True, exist_ok=True)
    platforms = [arg for platform in PLATFORMS for arg in ("--platform", platform)]
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
               "--python-version", HOST_PYTHON, "--implementation", "cp", *platforms, "-d", str(folder), *wanted]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise PrepareError(f"pip download failed: {done.stderr.strip()[-500:]}")
    keys = {wheel_key(pin) for pin in wanted}
    for stale in [w for w in folder.glob("*.whl") if wheel_key(w.name) not in keys]:
        stale.unlink()
    return sorted(folder.glob("*.whl"))


def pack_data(root: Path, names: tuple[str, ...], archive: Path) -> Path:
    """The prepared data sets ``names`` under ``root`` as one xz tar that unpacks into a data root."""
    staging = archive.with_name(archive.name + ".part")
    with tarfile.open(staging, "w:xz") as tar:
        for name in names:
            folder = offline.require(name, root)
            for path in sorted(p for p in folder.rglob("*") if p.is_file()):
                data = path.read_bytes()
                if path.suffix == ".gz":  # stored, not deflated: xz does better on the raw bytes
                    data = gzip.compress(gzip.decompress(data), compresslevel=0, mtime=0)
                info = tarfile.TarInfo(path.relative_to(root).as_posix())
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    staging.rename(archive)
    return archive


def size(path: Path) -> int:
    return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def checkout_size(repo: Path = REPO) -> int:
    """Bytes of what the device tool sends of the checkout: tracked and untracked files git does not ignore."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=repo,
                            capture_output=True, text=True, check=True).stdout
    return sum((repo / name).stat().st_size for name in listed.split("\0") if name and (repo / name).is_file())


def is_ignored(folder: Path, repo: Path = REPO) -> bool:
    """Whether git ignores ``folder`` (named with a slash: a folder that does not exist yet is one too)."""
    return subprocess.run(["git", "check-ignore", "-q", f"{folder}/"], cwd=repo).returncode == 0


def travel(checkout: int, carried: dict[str, int]) -> str:
    """One line on what travels; a PrepareError when it exceeds the device tool's limit."""
    parts = {"the checkout": checkout, **carried}
    total = sum(parts.values())
    line = (f"travels: {', '.join(f'{name} {n / 2**20:.1f} MiB' for name, n in parts.items())}; "
            f"{total / 2**20:.1f} of {TRAVEL_LIMIT / 2**20:.0f} MiB")
    if total > TRAVEL_LIMIT:
        raise PrepareError(f"{line}: too much; commit or ignore less, or carry fewer data sets")
    return line


def device_call(budget_s: int = BUDGET_S) -> dict:
    """The device tool's arguments that install the wheels and run the check on CUDA into $OUT."""
    command = (INSTALL + f'python3 -m reproductions.cli gpu-check run "$OUT" --device cuda '
                         f"--prepared {FOLDER} --budget {budget_s}")
    if len(command) > COMMAND_LIMIT:
        raise PrepareError(f"the device command has {len(command)} characters, more than {COMMAND_LIMIT}")
    return {"command": command, "carry": [FOLDER], "timeout_s": TIMEOUT_S}


def prepare(repo: Path | None = None, data_root: Path | None = None) -> tuple[list[str], dict]:
    """Fill ``repo/FOLDER`` with the wheels and the data archive (the archive only when absent: the data
    sets are pinned; delete it after changing ``DATA``); returns lines on what was done and the device
    tool's call."""
    repo = repo or REPO
    folder = repo / FOLDER
    if not is_ignored(folder, repo):
        raise PrepareError(f"{folder} is not ignored by git: it would travel twice (add /{FOLDER}/ to .gitignore)")
    wheels = download_wheels(folder / WHEELS, pins())
    archive = folder / ARCHIVE
    if not archive.exists():
        pack_data(Path(data_root or offline.data_root()), DATA, archive)
    # the host gets the working tree without .git: the check reports the commit prepared here
    write_json(folder / PROVENANCE, {"git_commit": git_commit(), "prepared": dt.datetime.now(dt.UTC).isoformat(
        timespec="seconds"), "wheels": [w.name for w in wheels], "data": list(DATA)})
    carried = {f"{FOLDER}/{WHEELS}": size(folder / WHEELS), f"{FOLDER}/{ARCHIVE}": size(archive)}
    lines = [f"wheels: {', '.join(w.name for w in wheels)}", f"data: {archive} ({', '.join(DATA)})",
             travel(checkout_size(repo), carried)]
    return lines, device_call()

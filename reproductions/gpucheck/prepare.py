"""Here, with a network: what the lent GPU host lacks, packed to travel with the checkout, the size
of what travels, and the device tool's call that runs the check there.

The host (Python 3.12, x86-64, no network) has torch, transformers, peft, torchmetrics,
scikit-learn, scikit-image, pandas and matplotlib (the device tool's KINDS.md lists its packages).
It lacks the libraries in ``LIBRARIES``: pip installs the versions installed here, built for the
host's Python and platform, into a folder that travels as an xz archive (9 MB, against 17 MB of
wheels). The data sets in ``DATA`` travel as a second xz archive whose gzip members are stored at
level 0, so that xz compresses the voxels themselves (38 MB against the 50 of the gzip files). What
cannot travel within 64 MiB with the checkout stays here, and the check records what needs it as
skipped: the FID Inception (87 MB), MiniLM (91 MB), SmolLM2 (its GGUF alone about 100 MB) and
pycocoevalcap (a 104 MB wheel with its Java jars, needed by paper7 and paper9, which need SmolLM2 too).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gzip
import importlib.metadata
import io
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from reproductions.data import offline
from reproductions.run import PACKAGE, git_commit, write_json

REPO = PACKAGE.parent
FOLDER = ".gpucheck"  # at the checkout's root, ignored by git, named in the device tool's carry
SITE, ARCHIVE, PROVENANCE = "site.tar.xz", "data.tar.xz", "provenance.json"
# imported by the runs (the corpus behind the registry; diffusers' networks; MONAI's metrics; NIfTI and DICOM)
LIBRARIES = ("bibtexparser", "pylatexenc", "rapidfuzz", "diffusers", "monai", "nibabel", "pydicom")
DATA = ("chest-ct", "dicom-images", "mni152")  # the phantoms of paper2, paper3 and paper5; paper6's images
HOST_PYTHON = "3.12"
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
             "manylinux1_x86_64")
TRAVEL_LIMIT = 64 * 2**20  # the device tool's limit on the checkout and the carried paths together
COMMAND_LIMIT = 2000  # characters of one device command
BUDGET_S = 420  # the check's work, inside the 8 minutes a 15-minute lease leaves after the machine's start
TIMEOUT_S = 480  # the command's limit: the budget and the unpacking, with a margin
# the libraries are unpacked before the check starts, since its own imports need them
UNPACK = (f"python3 -c \"import tarfile; tarfile.open('{FOLDER}/{SITE}').extractall('/tmp/site', filter='data')\" "
          "&& export PYTHONPATH=/tmp/site || exit; ")


class PrepareError(RuntimeError):
    """Something the preparation needs is missing, or what would travel is too large."""


def pins(names: tuple[str, ...] = LIBRARIES) -> list[str]:
    """``name==version`` of each library as installed here: the versions the tests run against."""
    try:
        return [f"{name}=={importlib.metadata.version(name)}" for name in names]
    except importlib.metadata.PackageNotFoundError as err:
        raise PrepareError(f"{err.name} is not installed here; install the repro extra first: "
                           'pip install -e ".[repro]"') from None


@contextlib.contextmanager
def xz_tar(archive: Path):
    """A tar being written to ``archive`` (xz), renamed into place only when complete."""
    staging = archive.with_name(archive.name + ".part")
    with tarfile.open(staging, "w:xz") as tar:
        yield tar
    staging.rename(archive)


def install_for_host(target: Path, wanted: list[str]) -> None:
    """pip installs the ``wanted`` pins, as built for the host (no dependencies: it has them), into ``target``."""
    platforms = [arg for platform in PLATFORMS for arg in ("--platform", platform)]
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-compile", "--only-binary=:all:",
               "--python-version", HOST_PYTHON, "--implementation", "cp", *platforms, "--target", str(target), *wanted]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise PrepareError(f"pip install for the host failed: {done.stderr.strip()[-500:]}")


def pack_libraries(wanted: list[str], archive: Path) -> Path:
    """The ``wanted`` libraries installed for the host, as an xz tar that unpacks into a PYTHONPATH folder."""
    with tempfile.TemporaryDirectory(prefix="gpu-check-site-") as folder, xz_tar(archive) as tar:
        install_for_host(Path(folder), wanted)
        for path in sorted(Path(folder).iterdir()):
            if path.name != "bin":  # console scripts, with this machine's interpreter in their first line
                tar.add(path, arcname=path.name)
    return archive


def pack_data(root: Path, names: tuple[str, ...], archive: Path) -> Path:
    """The prepared data sets ``names`` under ``root`` as one xz tar that unpacks into a data root."""
    with xz_tar(archive) as tar:
        for name in names:
            folder = offline.require(name, root)
            for path in sorted(p for p in folder.rglob("*") if p.is_file()):
                data = path.read_bytes()
                if path.suffix == ".gz":  # stored, not deflated: xz does better on the raw bytes
                    data = gzip.compress(gzip.decompress(data), compresslevel=0, mtime=0)
                info = tarfile.TarInfo(path.relative_to(root).as_posix())
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return archive


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
    """The device tool's arguments that unpack the libraries and run the check on CUDA into $OUT."""
    command = (UNPACK + f'python3 -m reproductions.cli gpu-check run "$OUT" --device cuda --prepared {FOLDER} '
                        f"--budget {budget_s}")
    if len(command) > COMMAND_LIMIT:
        raise PrepareError(f"the device command has {len(command)} characters, more than {COMMAND_LIMIT}")
    return {"command": command, "carry": [FOLDER], "timeout_s": TIMEOUT_S}


def prepare(repo: Path | None = None, data_root: Path | None = None) -> tuple[list[str], dict]:
    """Fill ``repo/FOLDER`` with the two archives and their provenance (each archive rebuilt only when
    what it holds changed) and nothing else, since all of it travels; returns lines on what was done
    and the device tool's call."""
    repo = repo or REPO
    folder = repo / FOLDER
    if not is_ignored(folder, repo):
        raise PrepareError(f"{folder} is not ignored by git: it would travel twice (add /{FOLDER}/ to .gitignore)")
    folder.mkdir(exist_ok=True)
    for stale in [p for p in folder.iterdir() if p.name not in (SITE, ARCHIVE, PROVENANCE)]:
        if stale.is_dir():
            shutil.rmtree(stale)
        else:
            stale.unlink()
    before = json.loads((folder / PROVENANCE).read_text()) if (folder / PROVENANCE).exists() else {}
    wanted, lines = pins(), []
    if before.get("libraries") != wanted or not (folder / SITE).exists():
        pack_libraries(wanted, folder / SITE)
        lines.append(f"libraries for Python {HOST_PYTHON} on x86-64: {', '.join(wanted)}")
    if before.get("data") != list(DATA) or not (folder / ARCHIVE).exists():
        pack_data(Path(data_root or offline.data_root()), DATA, folder / ARCHIVE)
        lines.append(f"data sets: {', '.join(DATA)}")
    # the host gets the working tree without .git: the check reports the commit prepared here
    write_json(folder / PROVENANCE, {"git_commit": git_commit(), "prepared": dt.datetime.now(dt.UTC).isoformat(
        timespec="seconds"), "libraries": wanted, "data": list(DATA)})
    carried = {f"{FOLDER}/{name}": (folder / name).stat().st_size for name in (SITE, ARCHIVE)}
    lines.append(travel(checkout_size(repo), carried))
    return lines, device_call()

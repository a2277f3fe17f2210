"""The Indiana University chest X-ray reports (NLMCXR XML): sections, MeSH tags and image ids.

The same parser reads the archive bundled in torchxrayvision's wheel and a user's own
``ecgen-radiology`` folder of XML files. MeSH "major" tags look like
``Calcified Granuloma/lung/upper lobe/right``; the finding is the part before the first slash,
and a report tagged ``normal`` has no finding.
"""

from __future__ import annotations

import json
import tarfile
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass
from pathlib import Path

from reproductions.data.offline import require
from survey.storage import atomic_write

SECTIONS = ("COMPARISON", "INDICATION", "FINDINGS", "IMPRESSION")


@dataclass(frozen=True)
class Report:
    id: str  # the report's uId, e.g. CXR10
    comparison: str
    indication: str
    findings: str
    impression: str
    mesh: tuple[str, ...]  # major MeSH tags as written
    images: tuple[str, ...]  # parentImage ids, e.g. CXR10_IM-0002-1001

    @property
    def finding_terms(self) -> tuple[str, ...]:
        """The findings named by the MeSH tags, lower case, without location; () for a normal study."""
        terms = {tag.split("/")[0].strip().lower() for tag in self.mesh}
        return tuple(sorted(terms - {"normal", ""}))


def parse_report(xml: bytes | str, name: str = "<xml>") -> Report:
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as err:
        raise ValueError(f"{name}: not an NLMCXR report ({err})") from None
    uid = root.find("uId")
    if root.tag != "eCitation" or uid is None:
        raise ValueError(f"{name}: not an NLMCXR report (no eCitation/uId)")
    sections = {s: "" for s in SECTIONS}
    for text in root.iter("AbstractText"):
        label = (text.get("Label") or "").upper()
        if label in sections:
            sections[label] = " ".join((text.text or "").split())
    mesh = tuple(" ".join((m.text or "").split()) for m in root.iterfind("MeSH/major"))
    images = tuple(i.get("id") for i in root.iterfind("parentImage") if i.get("id"))
    return Report(uid.get("id"), **{k.lower(): v for k, v in sections.items()}, mesh=mesh, images=images)


def parse_archive(path: Path) -> list[Report]:
    """Every report in an NLMCXR .tgz, or in a folder of its XML files, sorted by number."""
    path = Path(path)
    reports = []
    if path.is_dir():
        for file in path.rglob("*.xml"):
            reports.append(parse_report(file.read_bytes(), str(file)))
    else:
        with tarfile.open(path) as archive:
            for member in archive.getmembers():
                if member.isfile() and member.name.endswith(".xml"):
                    reports.append(parse_report(archive.extractfile(member).read(), f"{path}:{member.name}"))
    if not reports:
        raise ValueError(f"{path}: no NLMCXR report XML found")
    return sorted(reports, key=lambda r: (len(r.id), r.id))


def derive_reports_json(folder: Path) -> str:
    """``reproduce data``'s step after extracting the IU X-ray archive: its reports as reports.json."""
    reports = parse_archive(folder / "torchxrayvision/data/NLMCXR_reports.tgz")
    write_reports_json(reports, folder / "reports.json")
    return f"parsed {len(reports)} reports into reports.json"


def write_reports_json(reports: list[Report], path: Path) -> None:
    atomic_write(path, json.dumps([asdict(r) for r in reports]).encode(), backup=False)


def read_reports_json(path: Path) -> list[Report]:
    rows = json.loads(Path(path).read_text())
    return [Report(**{**r, "mesh": tuple(r["mesh"]), "images": tuple(r["images"])}) for r in rows]


def bundled_reports(root: Path | None = None) -> list[Report]:
    """The 3955 real IU X-ray reports (``reproduce data --only iu-xray-reports`` prepares them)."""
    return read_reports_json(require("iu-xray-reports", root) / "reports.json")

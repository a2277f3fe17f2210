"""Offline data preparation, phantoms on small synthetic anatomy, and the real-format loaders,
all on files the tests write themselves (no download)."""

from __future__ import annotations

import gzip
import io
import tarfile
import zipfile

import numpy as np
import pytest
from PIL import Image

from reproductions.data import loaders, offline, phantoms
from reproductions.data.reports import parse_archive, parse_report
from tests.conftest import needs_data

REPORT_XML = """<?xml version="1.0" encoding="utf-8"?>
<eCitation><uId id="CXR{n}"/><MedlineCitation><Article><Abstract>
<AbstractText Label="COMPARISON">None.</AbstractText>
<AbstractText Label="INDICATION">Cough</AbstractText>
<AbstractText Label="FINDINGS">{findings}</AbstractText>
<AbstractText Label="IMPRESSION">No acute disease.</AbstractText>
</Abstract></Article></MedlineCitation>
<MeSH><major>{mesh}</major></MeSH>
<parentImage id="CXR{n}_IM-0001-1001"><figureId>F1</figureId></parentImage>
</eCitation>"""


def report(n, findings="The heart is normal.", mesh="normal"):
    return REPORT_XML.format(n=n, findings=findings, mesh=mesh)


def test_a_missing_data_set_names_the_exact_command(tmp_path):
    with pytest.raises(offline.DataError, match=f"run: reproduce data --only chest-ct --cache {tmp_path}"):
        offline.require("chest-ct", tmp_path)


def test_prepare_extracts_verifies_and_derives_from_a_wheel(tmp_path, monkeypatch):
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        for n, xml in ((1, report(1)), (2, report(2, "Small calcified granuloma.", "Calcified Granuloma/lung/right"))):
            data = xml.encode()
            info = tarfile.TarInfo(f"ecgen-radiology/{n}.xml")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    member = "torchxrayvision/data/NLMCXR_reports.tgz"
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    with zipfile.ZipFile(wheels / "torchxrayvision-1.5.7-py3-none-any.whl", "w") as whl:
        whl.writestr(member, archive.getvalue())
    spec = offline.DataSpec("torchxrayvision", "1.5.7", "reports", {member: offline.sha256(archive.getvalue())},
                            derive=offline.CATALOGUE["iu-xray-reports"].derive)
    monkeypatch.setitem(offline.CATALOGUE, "iu-xray-reports", spec)
    said = offline.prepare("iu-xray-reports", tmp_path)
    assert "1 member(s) verified" in said and "parsed 2 reports" in said
    assert offline.is_ready("iu-xray-reports", tmp_path)
    assert offline.prepare("iu-xray-reports", tmp_path).startswith("already prepared")
    from reproductions.data.reports import bundled_reports
    reports = bundled_reports(tmp_path)
    assert [r.id for r in reports] == ["CXR1", "CXR2"] and reports[1].finding_terms == ("calcified granuloma",)
    # a damaged member is refused
    bad = offline.DataSpec("torchxrayvision", "1.5.7", "reports", {member: "0" * 64})
    with pytest.raises(offline.DataError, match="SHA-256"):
        offline.extract(bad, wheels / "torchxrayvision-1.5.7-py3-none-any.whl", tmp_path / "x")


def test_report_parser_reads_sections_tags_and_images():
    parsed = parse_report(report(7, "Mild   cardiomegaly.", "Cardiomegaly/mild"))
    assert parsed.id == "CXR7" and parsed.findings == "Mild cardiomegaly." and parsed.indication == "Cough"
    assert parsed.mesh == ("Cardiomegaly/mild",) and parsed.images == ("CXR7_IM-0001-1001",)
    assert parse_report(report(8)).finding_terms == ()
    with pytest.raises(ValueError, match="not an NLMCXR report"):
        parse_report("<html/>")


def ct_anatomy(size=96, slices=3):
    """A body of soft tissue (40 HU) holding an air-filled lung (-850 HU) and a liver (60 HU)."""
    yy, xx = np.mgrid[:size, :size]
    lung = (yy - size / 2) ** 2 + (xx - size / 3) ** 2 < (size / 3.2) ** 2
    ct = np.where(lung, -850.0, 60.0)
    rng = np.random.default_rng(0)
    ct = np.stack([ct + rng.normal(0, 10, ct.shape) for _ in range(slices)]).astype(np.float32)
    return ct, np.stack([lung] * slices), np.stack([~lung] * slices)


def test_phantoms_are_deterministic_labelled_and_named():
    ct, lung, liver = ct_anatomy()
    first = phantoms.lung_nodules(ct, lung, 6, size=32, seed=1)
    again = phantoms.lung_nodules(ct, lung, 6, size=32, seed=1)
    other = phantoms.lung_nodules(ct, lung, 6, size=32, seed=2)
    assert np.array_equal(first.images, again.images) and not np.array_equal(first.images, other.images)
    assert first.images.shape == (12, 32, 32) and list(np.bincount(first.labels)) == [6, 6]
    assert first.source.startswith("phantom") and 0 <= first.images.min() and first.images.max() <= 1
    # a nodule is denser than the lung around it, and malignant ones are more irregular
    centre = first.images[:, 14:18, 14:18].mean(axis=(1, 2))
    assert (centre > first.images[:, :3, :3].mean(axis=(1, 2))).all()

    def irregularity(mask):  # perimeter squared over area: 4*pi for a disc, more for spicules
        edge = mask ^ np.pad(mask[1:-1, 1:-1] & mask[:-2, 1:-1] & mask[2:, 1:-1] & mask[1:-1, :-2] & mask[1:-1, 2:], 1)
        return edge.sum() ** 2 / max(mask.sum(), 1)
    shape = [irregularity(m.astype(bool)) for m in first.masks]
    assert np.mean(shape[6:]) > np.mean(shape[:6])

    lesions = phantoms.liver_lesions(ct, liver, 4, size=32, seed=0)
    assert lesions.classes == ("cyst", "metastasis", "hemangioma") and lesions.source.startswith("phantom")
    inside = [lesions.images[lesions.labels == c][:, 15:17, 15:17].mean() for c in range(3)]
    assert inside[0] < inside[1] < inside[2]  # water < hypodense metastasis < hyperdense hemangioma
    assert len(np.unique(lesions.cases)) < len(lesions.cases)  # several lesions per case


def test_brain_tumour_phantom_has_the_brats_regions():
    size = 48
    yy, xx = np.mgrid[:size, :size]
    brain = ((yy - 24) ** 2 / 20 ** 2 + (xx - 24) ** 2 / 16 ** 2 < 1)
    t1 = np.stack([brain * 0.7] * 4).astype(np.float32)
    tissue = np.stack([brain * 2] * 4).astype(np.uint8)
    tumours = phantoms.brain_tumours(t1, tissue, 5, size=32, seed=0)
    assert tumours.images.shape == (5, 32, 32) and tumours.source.startswith("phantom")
    for image, mask in zip(tumours.images, tumours.masks):
        assert set(np.unique(mask)) <= {0, 1, 2, 4} and (mask == 1).any() and (mask == 4).any()
        assert image[mask == 1].mean() < image[mask == 4].mean()  # dark necrosis, bright rim


def test_restoration_degradations():
    clean = np.random.default_rng(0).random((3, 16, 16)).astype(np.float32)
    noisy, _ = phantoms.degrade(clean, "denoise", noise_sigma=0.1)
    assert 0.05 < np.std(noisy - clean) < 0.1  # clipping to [0, 1] shrinks it a little
    low, _ = phantoms.degrade(clean, "sr4")
    assert low.shape == clean.shape and np.abs(low - clean).mean() > 0.1
    holes, mask = phantoms.degrade(clean, "inpaint")
    assert mask.any() and (holes[mask == 1] == 0).all() and np.array_equal(holes[mask == 0], clean[mask == 0])
    with pytest.raises(ValueError, match="known: denoise"):
        phantoms.degrade(clean, "colourise")
    patches = phantoms.image_patches(np.random.default_rng(1).random((40, 40)), 4, size=16)
    assert patches.shape == (4, 16, 16)


def test_class_folder_loader_reads_png_and_npy_with_cases(tmp_path):
    for cls, value in (("benign", 50), ("malignant", 200)):
        (tmp_path / cls).mkdir()
        Image.fromarray(np.full((20, 20), value, np.uint8)).save(tmp_path / cls / f"LIDC-0001_{cls}.png")
        np.save(tmp_path / cls / f"LIDC-0002_{cls}.npy", np.linspace(0, 1, 400).reshape(20, 20))
    patches = loaders.class_folders(tmp_path, ("benign", "malignant"), size=16)
    assert patches.images.shape == (4, 16, 16) and list(patches.labels) == [0, 0, 1, 1]
    assert patches.source.startswith("real") and len(set(patches.cases)) == 2
    with pytest.raises(offline.DataError, match="missing cyst"):
        loaders.class_folders(tmp_path, ("benign", "cyst"))


def test_brats_loader_reads_nifti_subject_folders(tmp_path):
    import nibabel as nib

    subject = tmp_path / "BraTS20_Training_001"
    subject.mkdir()
    affine = np.eye(4)
    for seq in ("t1", "t1ce", "t2", "flair"):
        nib.save(nib.Nifti1Image(np.random.default_rng(0).random((8, 8, 4)).astype(np.float32), affine),
                 subject / f"BraTS20_Training_001_{seq}.nii.gz")
    seg = np.zeros((8, 8, 4), np.uint8)
    seg[2:4, 2:4, 1] = 4
    seg[3, 3, 2] = 2
    nib.save(nib.Nifti1Image(seg, affine), subject / "BraTS20_Training_001_seg.nii.gz")
    slices = loaders.brats(tmp_path)
    assert slices.images.shape == (2, 4, 8, 8) and set(np.unique(slices.masks)) == {0, 2, 4}
    assert slices.names == ("BraTS20_Training_001",)
    (subject / "BraTS20_Training_001_seg.nii.gz").unlink()
    with pytest.raises(offline.DataError, match="_seg.nii"):
        loaders.brats(tmp_path)


def test_medmnist_fashion_mnist_and_iu_xray_loaders(tmp_path):
    npz = tmp_path / "pneumoniamnist.npz"
    np.savez(npz, train_images=np.full((3, 28, 28), 255, np.uint8), train_labels=np.array([[0], [1], [1]]))
    images, labels = loaders.medmnist(npz)
    assert images.max() == 1.0 and list(labels) == [0, 1, 1]
    with pytest.raises(offline.DataError, match="no test_images"):
        loaders.medmnist(npz, "test")

    def idx(array, code):
        header = bytes([0, 0, code, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
        return gzip.compress(header + array.tobytes())
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(idx(np.full((2, 28, 28), 51, np.uint8), 8))
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(idx(np.array([3, 9], np.uint8), 8))
    x, y = loaders.fashion_mnist(tmp_path, "test")
    assert x.shape == (2, 784) and np.allclose(x, 0.2) and list(y) == [3, 9]
    with pytest.raises(offline.DataError, match="apt-get install dataset-fashion-mnist"):
        loaders.fashion_mnist(tmp_path / "none")

    reports = tmp_path / "ecgen-radiology"
    reports.mkdir()
    (reports / "1.xml").write_text(report(1))
    (reports / "2.xml").write_text(report(2))
    images_dir = tmp_path / "png"
    images_dir.mkdir()
    Image.fromarray(np.zeros((30, 30), np.uint8)).save(images_dir / "CXR2_IM-0001-1001.png")
    found, pixels = loaders.iu_xray(reports, images_dir, size=16)
    assert [r.id for r in found] == ["CXR2"] and pixels.shape == (1, 16, 16)
    assert len(parse_archive(reports)) == 2


@needs_data("chest-ct")
def test_the_real_ct_phantoms_when_prepared():
    lesions = phantoms.liver_phantom(2, size=32, seed=0)
    nodules = phantoms.lung_phantom(2, size=32, seed=0)
    assert lesions.images.shape == (6, 32, 32) and nodules.images.shape == (4, 32, 32)


@needs_data("iu-xray-reports")
def test_the_real_iu_xray_reports_when_prepared():
    from reproductions.data.reports import bundled_reports

    reports = bundled_reports()
    assert len(reports) == 3955 and sum(bool(r.findings) for r in reports) == 3425


@needs_data("mni152")
def test_the_real_brain_phantom_when_prepared():
    tumours = phantoms.brain_phantom(3, size=64, seed=0)
    assert tumours.images.shape == (3, 64, 64) and all((m == 4).any() for m in tumours.masks)

"""paper10 (GCML) end to end in its smoke profile on CPU, through the CLI, into a temporary folder."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from reproductions.cli import main as reproduce
from reproductions.runs import RESULTS_DIR


@pytest.mark.slow
def test_paper10_smoke_run_writes_a_complete_run_folder(tmp_path):
    before = sorted(RESULTS_DIR.rglob("*")) if RESULTS_DIR.exists() else []
    result = CliRunner().invoke(reproduce, ["paper10", "--device", "cpu", "--seed", "1", "--out", str(tmp_path),
                                            "--set", "epochs=20"])
    assert result.exit_code == 0, result.output
    (folder,) = (tmp_path / "paper10").iterdir()
    info = json.loads((folder / "run_info.json").read_text())
    assert info["status"] == "completed" and info["profile"] == "smoke" and info["seed"] == 1
    assert info["device"] == "cpu" and "torch" in info["versions"] and info["wall_time_s"] > 0
    assert json.loads((folder / "config.json").read_text())["epochs"] == 20
    metrics = json.loads((folder / "metrics.json").read_text())["digits"]
    assert set(metrics) == {"k-means", "PCA + k-means", "AE + k-means", "DEC", "GCML",
                            *(f"GCML without {loss}" for loss in ("clustering", "isometric", "ranking", "alignment"))}
    for method, scores in metrics.items():
        assert 0.1 < scores["acc"] <= 1 and 0 < scores["nmi"] <= 1, method  # 10 classes: chance is 0.1
    assert 0.5 < metrics["GCML"]["trust"] <= 1 and 0.5 < metrics["GCML"]["cont"] <= 1
    doc = json.loads((folder / "results.json").read_text())
    assert doc["status"] == "completed" and {r["paper_text"] for r in doc["rows"]} == {"not reported"}
    assert {c["held"] for c in doc["claims"]} <= {True, False} and len(doc["claims"]) == 3
    assert (folder / doc["figures"][0]).read_bytes()[:4] == b"\x89PNG"
    assert "smoke run" in (folder / "results.md").read_text()
    assert (sorted(RESULTS_DIR.rglob("*")) if RESULTS_DIR.exists() else []) == before  # never published

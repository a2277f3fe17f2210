"""A large file parsed in pieces by worker processes gives exactly what one process gives."""

from __future__ import annotations

from survey import corpus as corpus_mod
from survey.bibfile import split_into_parts
from tests.conftest import entry


def test_pieces_start_only_at_block_starts_and_cover_the_text():
    text = "% head\n" + "".join(entry(f"K{i}", f"Title {i}", abstract="{a @ b\n  @ c}") for i in range(50))
    pieces = split_into_parts(text, 3)
    assert len(pieces) == 3 and "".join(p for _, _, p in pieces) == text
    for line, offset, piece in pieces[1:]:
        assert piece.startswith("@article{") and text[offset:].startswith(piece)
        assert text[:offset].count("\n") + 1 == line
    assert split_into_parts('@string{A = "x"}\n' + text, 3) is None


def test_parallel_and_single_process_loads_agree(tmp_path, monkeypatch):
    blocks = [entry(f"Key{i}", f"Paper {i} on M{{\\\"u}}ller's lesions", 2000 + i % 20, f"10.1/x.{i}")
              for i in range(300)]
    blocks[120] = "@article{Broken120,\n  title = {never closed,\n  year = {2020}\n}\n"
    blocks[250] = entry("Key10", "A second use of a key from the first piece")
    blocks[260] = blocks[260].replace("Paper", "Caf\xe9 paper")
    path = tmp_path / "big.bib"
    path.write_bytes("% comment\n\n".join(blocks).encode("utf-8").replace("Caf\xe9".encode(), b"Caf\xe9"))
    monkeypatch.setattr(corpus_mod, "PARALLEL_MIN_CHARS", 1000)

    monkeypatch.setenv("SURVEY_PARSE_WORKERS", "1")
    single = corpus_mod.load_corpus([path], use_cache=False)
    # three pieces whatever this machine has (and whatever threads earlier tests left running)
    monkeypatch.setattr(corpus_mod, "_workers", lambda: 3)
    parallel = corpus_mod.load_corpus([path], use_cache=False)

    assert parallel.table.drop(columns=["tagset"]).equals(single.table.drop(columns=["tagset"]))
    assert list(parallel.table["tagset"]) == list(single.table["tagset"])
    assert parallel.issues == single.issues
    codes = {(i.code, i.key) for i in single.errors}
    assert {("unparsable", "Broken120"), ("duplicate-key", "Key10")} <= codes
    assert ("encoding", None) in {(i.code, i.key) for i in single.issues}


def test_a_failed_worker_falls_back_to_one_process(tmp_path, monkeypatch):
    path = tmp_path / "c.bib"
    path.write_text("".join(entry(f"K{i}", f"Paper {i}") for i in range(100)))
    monkeypatch.setattr(corpus_mod, "PARALLEL_MIN_CHARS", 1000)

    def broken(*args):
        raise corpus_mod.BrokenProcessPool("a worker was killed")
    monkeypatch.setattr(corpus_mod, "_parse_in_pieces", broken)
    monkeypatch.setattr(corpus_mod, "_workers", lambda: 2)
    loaded = corpus_mod.load_corpus([path], use_cache=False)
    assert len(loaded) == 100 and not loaded.issues

"""Adding entries: per-entry outcomes, atomic locked writes, backups, concurrent writers."""

from __future__ import annotations

import errno
import os
import subprocess
import sys

import pytest

from survey import load_corpus
from survey.merge import add_text
from survey.storage import StorageError, atomic_write, backup_path
from tests.conftest import REPO, entry


FOOL = "How to fool radiologists with generative adversarial networks? A visual Turing test for lung cancer diagnosis"


def test_outcomes_name_added_duplicate_possible_duplicate_and_invalid(seed_copy):
    text = "\n".join([
        entry("New2024", "A brand new paper on diffusion", doi="10.9999/new.1"),
        entry("DupDoi2019", "Another title", doi="https://doi.org/10.1016/J.MEDIA.2019.101552"),
        entry("DupTitle2018", FOOL, 2018, author="{Chuquicusma, Maria J. M. and Hussein, Sarfaraz}",
              booktitle="{ISBI}").replace("@article", "@inproceedings"),
        entry("OtherAuthor2018", FOOL.upper(), 2018),
        entry("BadDoi2020", "Bad DOI", doi="not-a-doi"),
        entry("Yi2019GANReview", "A different paper that reuses a key", 2021),
    ])
    report = add_text(text, "incoming.bib", seed_copy)
    by_key = {o.key: o for o in report.outcomes}
    assert by_key["New2024"].status == "added"
    assert (by_key["DupDoi2019"].status, by_key["DupDoi2019"].duplicate_of) == ("duplicate", "Yi2019GANReview")
    assert (by_key["DupTitle2018"].status, by_key["DupTitle2018"].duplicate_of) == ("duplicate", "Chuquicusma2018Fool")
    possible = by_key["OtherAuthor2018"]
    assert (possible.status, possible.duplicate_of) == ("possible-duplicate", "Chuquicusma2018Fool")
    assert "[Chuquicusma2018Fool]" in possible.reason  # the report names the entry it may duplicate
    # a DOI that is not one is a warning, not a reason to refuse the paper
    assert by_key["BadDoi2020"].status == "added" and any("not-a-doi" in w for w in by_key["BadDoi2020"].warnings)
    assert by_key["Yi2019GANReview"].status == "invalid" and "already used" in by_key["Yi2019GANReview"].reason
    assert [o.line for o in report.outcomes] == sorted(o.line for o in report.outcomes)
    keys = list(load_corpus([seed_copy]).table["key"])
    assert "OtherAuthor2018" not in keys and keys.count("New2024") == 1 and len(keys) == 13


def test_a_possible_duplicate_is_added_once_confirmed(seed_copy):
    text = entry("OtherAuthor2018", FOOL, 2018)
    assert add_text(text, "in.bib", seed_copy).outcomes[0].status == "possible-duplicate"
    report = add_text(text, "in.bib", seed_copy, confirm=frozenset({"OtherAuthor2018"}))
    assert report.outcomes[0].status == "added" and report.written
    assert "OtherAuthor2018" in set(load_corpus([seed_copy]).table["key"])


def test_dry_run_writes_nothing(seed_copy):
    before = seed_copy.read_bytes()
    report = add_text(entry("Dry2024", "Dry run paper"), "in.bib", seed_copy, dry_run=True)
    assert report.outcomes[0].status == "added" and not report.written
    assert seed_copy.read_bytes() == before


def test_adding_keeps_a_backup_and_adding_again_is_a_duplicate(seed_copy):
    before = seed_copy.read_bytes()
    add_text(entry("Once2024", "Added once"), "in.bib", seed_copy)
    assert backup_path(seed_copy).read_bytes() == before
    again = add_text(entry("Once2024", "Added once"), "in.bib", seed_copy)
    assert again.outcomes[0].status == "duplicate" and not again.written


def test_a_failed_write_leaves_the_file_as_it_was(tmp_path, monkeypatch):
    path = tmp_path / "c.bib"
    path.write_text("original\n")

    def disk_full(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(StorageError, match="c.bib.*No space left"):
        atomic_write(path, b"new content", backup=False)
    assert path.read_text() == "original\n"
    assert [p.name for p in tmp_path.iterdir()] == ["c.bib"]  # no temporary file left behind


def test_two_concurrent_survey_add_processes_both_land(seed_copy, tmp_path):
    sources = []
    for n in range(2):
        src = tmp_path / f"in{n}.bib"
        src.write_text("\n".join(entry(f"Conc{n}x{i}", f"Concurrent paper {n} {i} on lesions") for i in range(30)))
        sources.append(src)
    cmd = [sys.executable, "-m", "survey.cli", "--bib", str(seed_copy), "add"]
    procs = [subprocess.Popen(cmd + [str(s)], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for s in sources]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    corpus = load_corpus([seed_copy], use_cache=False)
    assert len(corpus) == 11 + 60 and not corpus.errors

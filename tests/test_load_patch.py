"""A reload of changed files patched onto the whole-corpus cache (survey/corpus_patch.py): it equals
a full parse on every edit, generated or chosen, parses only the new segments, and gives way to a
full load where a patch could be wrong (a @string, a repeated key, a crossref, another vocabulary)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from survey import bibfile
from survey import corpus as corpus_mod
from survey import corpus_patch
from tests.conftest import entry
from tests.test_load_cache import VOCABULARY, assert_same_corpus
from tests.test_property_corpus import corpora
from tests.test_realworld_bib import BIB_DIR as REAL_BIB_DIR
from tests.test_realworld_bib import CORPORA as REAL_CORPORA
from tests.test_realworld_bib import IDS as REAL_IDS


def plain_library(n: int = 40) -> str:
    """Entries only, some using a macro defined at the top, with tags outside the vocabulary
    (warnings of their own), two near-duplicate titles and a shared DOI (checks across entries)."""
    blocks = ['@string{MIA = "Medical Image Analysis"}\n']
    for i in range(n):
        blocks.append(entry(f"K{i:03d}", f"Paper number {i} on lesion synthesis", 2000 + i % 20,
                            "10.1/shared" if i in (5, 6) else f"10.1/k.{i}", journal="MIA" if i % 3 == 0 else "{TMI}",
                            keywords="{method:GAN, modality:XR}" if i % 4 == 0 else "{method:DDPM, modality:CT}"))
    return "\n".join(blocks)


@pytest.fixture
def library(tmp_path, monkeypatch):
    """A plain library loaded twice (which caches it as the base of patches), and what each later
    patch gives (``patch_results``)."""
    monkeypatch.setenv("SURVEY_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "tags.toml").write_text(VOCABULARY)
    path = tmp_path / "lib.bib"
    path.write_text(plain_library())
    corpus_mod.load_corpus([path])
    corpus_mod.load_corpus([path])  # loaded again: now the base of patches
    return path, patch_results(monkeypatch)


def patch_results(monkeypatch) -> list:
    """What each later call of ``corpus_patch.patched`` gives: None where it gave way to a full load,
    else (corpus, index, how many segments it parsed)."""
    results = []
    real = corpus_patch.patched
    monkeypatch.setattr(corpus_patch, "patched", lambda *args: results.append(r := real(*args)) or r)
    return results


def parsed_segments(monkeypatch) -> list[str]:
    """The segments that a full load parses from now on (not those a patch parses itself)."""
    parsed = []
    real = corpus_mod.parse_segment
    monkeypatch.setattr(corpus_mod, "parse_segment", lambda segment: parsed.append(segment) or real(segment))
    return parsed


def reload(path, outcomes, text: str, paths=None):
    """Write ``text``, reload; check against a full parse; the patch's outcome: how many segments it
    parsed, None where it gave way to a full load, "not tried" where there was no cache to patch."""
    path.write_text(text)
    outcomes.clear()
    got = corpus_mod.load_corpus(paths or [path])
    assert_same_corpus(got, corpus_mod.load_corpus(paths or [path], use_cache=False))
    return (None if outcomes[0] is None else outcomes[0][2]) if outcomes else "not tried"


def test_edits_of_entries_are_patched_and_parse_only_what_is_new(library, monkeypatch):
    path, outcomes = library
    parsed = parsed_segments(monkeypatch)
    text = path.read_text()
    path.write_text(text.replace("Paper number 7 ", "Paper number 7, edited, "))
    corpus_mod.load_corpus([path])
    assert [r[2] for r in outcomes] == [1] and not parsed  # the segment cache unread: the patch parsed one segment
    assert reload(path, outcomes, text.replace("Paper number 7 ", "Paper number 7, edited, ")) == 1
    # lines move after an entry that grew; an entry added at the end uses the macro
    grown = text.replace("Paper number 3 on", "Paper number 3\n  over\n  three lines, on")
    assert reload(path, outcomes, grown + "\n" + entry("New", "A new paper", journal="MIA")) == 3
    # the same title twice: a near-duplicate found across entries, with the other's line
    twin = text.replace("Paper number 9 on", "Paper number 8 on")
    assert reload(path, outcomes, twin) == 1
    assert any(i.code == "near-duplicate-title" for i in corpus_mod.load_corpus([path]).issues)
    segments = [s for _, _, s in bibfile.segments(text)]
    moved = segments[:1] + segments[30:] + segments[1:30]  # entries moved, none changed
    assert reload(path, outcomes, "".join(moved)) in (0, 1, 2)  # the old last entry (no trailing blank line)
    removed = segments[:10] + segments[12:]
    assert reload(path, outcomes, "".join(removed)) in (0, 1)
    assert {"K009", "K010"} - set(corpus_mod.load_corpus([path]).table["key"]) == {"K009", "K010"}


def test_the_base_of_patches_is_written_by_a_second_load_not_the_first(tmp_path, monkeypatch):
    """A first load (perhaps a one-off) pays for the segment cache alone; a load after an edit, which
    the segment cache serves, writes the whole-corpus cache, and the next edit is patched onto it."""
    monkeypatch.setenv("SURVEY_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "lib.bib"
    path.write_text(plain_library())
    pickles = lambda: list(corpus_mod.cache_dir().glob("corpus-*.pkl"))  # noqa: E731
    corpus_mod.load_corpus([path])
    assert not pickles() and list(corpus_mod.cache_dir().glob("segments-*.bin"))
    outcomes = patch_results(monkeypatch)
    text = path.read_text()
    path.write_text(text.replace("Paper number 7 ", "Paper number 7, edited, "))
    corpus_mod.load_corpus([path])
    assert not outcomes and len(pickles()) == 1
    path.write_text(text.replace("Paper number 8 ", "Paper number 8, edited, "))
    assert_same_corpus(corpus_mod.load_corpus([path]), corpus_mod.load_corpus([path], use_cache=False))
    assert outcomes and outcomes[0][2] == 2  # entries 7 (as it was) and 8


@pytest.mark.parametrize("edit, why", [
    (lambda t: t.replace('"Medical Image Analysis"', '"Med. Image Anal."'), "a @string changed"),
    (lambda t: t + "\n" + entry("K001", "The same key again"), "a repeated key"),
    (lambda t: t + "\n" + entry("Child", "A part", crossref="{K002}"), "a crossref"),
    (lambda t: t + "\n@comment{x}\n@string{NEW = {n}}\n", "a new @string"),
    (lambda t: t + "\n" + entry("Undef", "Undefined", journal="NOSUCH"), "an undefined macro"),
    (lambda t: t + "\n@article{Broken,\n  title = {never closed,\n", "an unparsable block"),
    (lambda t: t.replace("@string", '@article{First, title={Before the macro}, journal=MIA}\n@string'),
     "an entry before the @string now"),
])
def test_what_could_change_other_entries_gives_way_to_a_full_load(library, edit, why):
    path, outcomes = library
    assert reload(path, outcomes, edit(path.read_text())) is None, why


def test_where_no_patch_can_do_the_segment_cache_serves(library, monkeypatch):
    """A @string edited (no patch) is read through the segment cache, each time: only the entries that
    use the macro are read again."""
    path, outcomes = library
    parsed = parsed_segments(monkeypatch)
    text = path.read_text()
    assert reload(path, outcomes, text.replace('"Medical Image Analysis"', '"Med. Image Anal."')) is None
    parsed.clear()
    path.write_text(text.replace('"Medical Image Analysis"', '"MedIA"'))
    corpus_mod.load_corpus([path])
    users = len(range(0, 40, 3))  # plain_library's entries that use MIA, read again; the other 26 are not
    assert len(parsed) == 1 + users


def test_another_vocabulary_or_file_set_is_a_full_load(library, tmp_path):
    path, outcomes = library
    (tmp_path / "tags.toml").write_text(VOCABULARY.replace('"CT", ', ""))
    assert reload(path, outcomes, path.read_text().replace("Paper number 7 ", "Paper 7 ")) is None
    other = tmp_path / "other.bib"
    other.write_text(entry("Other", "In another file"))
    assert reload(path, outcomes, path.read_text(), paths=[path, other]) == "not tried"  # no cache of that set


def test_a_patch_of_many_segments_becomes_the_cache(library):
    path, outcomes = library
    text = path.read_text()
    many = text + "\n".join(entry(f"N{i}", f"New paper {i}") for i in range(corpus_mod.PATCH_CACHED_AFTER + 1))
    assert reload(path, outcomes, many) == corpus_mod.PATCH_CACHED_AFTER + 1
    assert reload(path, outcomes, many + "\n" + entry("One", "One more")) == 2  # from that cache


def test_a_second_file_patched_beside_an_unchanged_one(tmp_path, monkeypatch):
    monkeypatch.setenv("SURVEY_CACHE_DIR", str(tmp_path / "cache"))
    first, second = tmp_path / "a.bib", tmp_path / "b.bib"
    first.write_text('@string{TMI = "IEEE TMI"}\n' + entry("A1", "First file", journal="TMI"))
    second.write_text(plain_library(11).replace("@string", "@comment"))  # MIA undefined there: not plain
    corpus_mod.load_corpus([first, second])
    corpus_mod.load_corpus([first, second])
    outcomes = patch_results(monkeypatch)
    second.write_text(second.read_text() + "\n" + entry("B1", "Uses the first file's macro", journal="TMI"))
    got = corpus_mod.load_corpus([first, second])
    assert outcomes[0] is not None
    assert_same_corpus(got, corpus_mod.load_corpus([first, second], use_cache=False))
    assert got.table.set_index("key")["venue"]["B1"] == "IEEE TMI"


EDITS = st.sampled_from(["delete", "repeat", "swap", "insert text", "insert newline", "add generated"])


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(base=st.one_of(corpora(), st.integers(2, 12).map(lambda n: plain_library(n))),
       extra=corpora(), edits=st.lists(st.tuples(EDITS, st.integers(0, 10**6), st.integers(0, 10**6)),
                                       min_size=1, max_size=4))
def test_a_reload_after_any_edit_equals_a_full_parse(tmp_path_factory, base, extra, edits):
    """Generated corpora (odd fields, repeated keys, crossrefs) and plain ones, cut into segments and
    edited at random: whatever the patch decides, the load equals a full parse."""
    folder = tmp_path_factory.mktemp("patch")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SURVEY_CACHE_DIR", str(folder / "cache"))
        (folder / "tags.toml").write_text(VOCABULARY)
        path = folder / "lib.bib"
        text = base if isinstance(base, str) else base.text
        path.write_text(text)
        corpus_mod.load_corpus([path])
        corpus_mod.load_corpus([path])
        parts = [s for _, _, s in bibfile.segments(text)] or [""]
        others = [s for _, _, s in bibfile.segments(extra.text)] or ["@misc{X, title={x}}\n"]
        for kind, a, b in edits:
            i, j = a % len(parts), b % len(parts)
            if kind == "delete" and len(parts) > 1:
                del parts[i]
            elif kind == "repeat":
                parts.insert(j, parts[i])
            elif kind == "swap":
                parts[i], parts[j] = parts[j], parts[i]
            elif kind in ("insert text", "insert newline"):
                at = b % (len(parts[i]) + 1)
                parts[i] = parts[i][:at] + ("x" if kind == "insert text" else "\n") + parts[i][at:]
            else:
                parts.insert(j, others[a % len(others)])
        path.write_text("".join(parts))
        outcomes = patch_results(mp)
        assert_same_corpus(corpus_mod.load_corpus([path]), corpus_mod.load_corpus([path], use_cache=False))
        event("patched" if outcomes and outcomes[0] else "full load" if outcomes else "no patch tried")


@pytest.mark.parametrize("names", REAL_CORPORA, ids=REAL_IDS)
def test_edits_of_real_libraries_reload_as_a_full_parse_does(names, tmp_path, monkeypatch):
    """The real files of ../shared/realworld-bib (skipped where absent), their last file edited as a user
    does, one edit after another: a title changed, an entry deleted, one moved to the end, one added."""
    if not REAL_BIB_DIR.is_dir():
        pytest.skip(f"{REAL_BIB_DIR} is absent: the real-world .bib files are not checked out beside this one")
    monkeypatch.setenv("SURVEY_CACHE_DIR", str(tmp_path / "cache"))
    copies = []
    for name in names:
        copies.append(tmp_path / name)
        copies[-1].write_bytes((REAL_BIB_DIR / name).read_bytes())
    corpus_mod.load_corpus(copies)
    corpus_mod.load_corpus(copies)
    # a patch can start from the second load unless the files hold what makes patches wrong (a repeated key,
    # a crossref; see survey/corpus_patch.py): then every edit below must be patched
    patchable = any(corpus_mod._read_cache(f, need_index=True) for f in corpus_mod.cache_dir().glob("corpus-*"))
    outcomes = patch_results(monkeypatch)
    decoded = bibfile.decode_bytes(copies[-1].read_bytes(), str(copies[-1]))
    parts = [s for _, _, s in bibfile.segments(decoded.text)]
    entries = [k for k, s in enumerate(parts) if s.lstrip().startswith("@") and "title" in s.lower()]
    if not entries:
        pytest.skip(f"{names[-1]} has no entry with a title to edit")
    middle = entries[len(entries) // 2]
    at = parts[middle].lower().index("title") + len("title")
    edits = [lambda p: p.__setitem__(middle, p[middle][:at] + p[middle][at:].replace("{", "{Edited ", 1)),
             lambda p: p.pop(entries[0]),
             lambda p: p.append(p.pop(entries[-1] - 1) if len(p) > entries[-1] - 1 else "\n"),
             lambda p: p.append("\n" + entry("AddedByTheTest2026", "An added paper"))]
    for edit in edits:
        edit(parts)
        copies[-1].write_bytes("".join(parts).encode(decoded.encoding, "surrogateescape"))
        assert_same_corpus(corpus_mod.load_corpus(copies), corpus_mod.load_corpus(copies, use_cache=False))
    assert not patchable or (len(outcomes) == len(edits) and all(outcomes)), outcomes

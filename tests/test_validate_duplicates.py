"""Near-duplicate titles: the grouped, batched scoring finds what scoring each pair of a group alone finds."""

from __future__ import annotations

import itertools

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st
from rapidfuzz import fuzz

from survey import validate

WORDS = ["generative", "adversarial", "network", "lesion", "synthesis", "MRI", "CT", "Müller", "part", "ii", "2023"]


def table(titles: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"title": titles, "key": [f"k{i}" for i in range(len(titles))],
                         "file": "a.bib", "line": range(1, len(titles) + 1)})


def pairs_one_by_one(titles: list[str]) -> set[tuple[str, str]]:
    """(first key, second key) of every flagged pair, each pair of a group scored on its own."""
    norm = [validate.normalise_title(t) for t in titles]
    found = set()
    for a, b in itertools.combinations(range(len(titles)), 2):
        x, y = norm[a].replace(" ", ""), norm[b].replace(" ", "")
        grouped = len(norm[a]) >= 10 and len(norm[b]) >= 10 and (x[:20] == y[:20] or x[-20:] == y[-20:])
        if grouped and fuzz.ratio(norm[a], norm[b]) >= validate.NEAR_DUPLICATE_SCORE \
                and validate._NUMBERS.findall(norm[a]) == validate._NUMBERS.findall(norm[b]):
            found.add((f"k{a}", f"k{b}"))
    return found


def flagged(titles: list[str]) -> set[tuple[str, str]]:
    issues = validate.near_duplicate_titles(table(titles))
    return {(issue.message.split("[")[1].split("]")[0], issue.key) for issue in issues}


title = st.lists(st.sampled_from(WORDS), min_size=2, max_size=6).map(" ".join)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(title, title.map(lambda t: t + "s"), title.map(str.upper)), max_size=30))
def test_grouped_scoring_flags_what_pairwise_scoring_flags(titles):
    assert flagged(titles) == pairs_one_by_one(titles)


def test_a_group_too_large_for_batching_is_scored_as_a_matrix_with_the_same_answer():
    # 80 chapters "Introduction to topic i" share their first 20 characters: one group of 80 > _LARGE_GROUP
    titles = [f"Introduction to the field of {w} imaging" for w in map(str, range(80))]
    titles += ["Introduction to the field of lesion imaging", "Introduction to the field of lesion imagin"]
    assert len(titles) > validate._LARGE_GROUP
    assert flagged(titles) == pairs_one_by_one(titles) == {("k80", "k81")}


def test_ascii_titles_normalise_as_the_pattern_does():
    for text in ["A_b--c  {GAN}: x\t", "  ", "Part II, 2023!", "x" * 3]:
        assert validate.normalise_title(text) == validate._NON_WORD.sub(" ", text.lower()).strip()
    assert validate.normalise_title("Müller's  U-Net") == "müller s u net"


def test_titles_that_differ_in_a_number_are_not_even_scored(monkeypatch):
    """300 numbered reports share their first 20 characters, and would give 44,850 pairs to score and then
    drop (3,000 took minutes); only titles with the same numbers are compared."""
    titles = [f"Technical report of the imaging group, number {i}" for i in range(300)]
    titles += ["Technical report of the imaging group, number 7 (revised)"]
    scored = []
    for name in ("cdist", "cpdist"):
        real = getattr(validate.process, name)
        monkeypatch.setattr(validate.process, name, lambda a, b, real=real, **kw: scored.append(len(a) * len(b))
                            or real(a, b, **kw))
    assert flagged(titles) == pairs_one_by_one(titles) == {("k7", "k300")}
    assert sum(scored) <= 4

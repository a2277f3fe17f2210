"""The bundled corpus: the review's eleven references, valid, tagged and in the review's order."""

import re

from survey import load_corpus
from survey.review import table1_rows
from tests.conftest import SEED_BIB

REVIEW_CATEGORIES = {"GAN-based Models": [1, 2, 3, 4], "Diffusion Models": [5, 6, 7],
                     "Transformers and LoRA": [8, 9, 10]}


def test_seed_corpus_has_the_eleven_references_and_no_problem():
    corpus = load_corpus([SEED_BIB], use_cache=False)
    assert len(corpus) == 11
    assert corpus.issues == []
    assert corpus.table["doi"].str.len().gt(0).sum() >= 9


def test_reviewed_papers_follow_table1():
    table = load_corpus([SEED_BIB]).table
    reviewed = table[table["review_number"].notna()]
    assert sorted(reviewed["review_number"]) == list(range(1, 11))
    for category, numbers in REVIEW_CATEGORIES.items():
        assert sorted(reviewed[reviewed["review_category"] == category]["review_number"]) == numbers
    for row in reviewed.itertuples():
        assert row.reproduction == f"paper{row.review_number}"
        for part in ("review_topic", "review_what", "review_why", "review_how", "review_evaluation"):
            assert getattr(row, part), f"{row.key} lacks {part}"
    assert [r[1] for r in table1_rows(table)] == [f"Paper {n}" for n in range(1, 11)]


def test_every_paper_is_tagged_in_the_core_categories():
    corpus = load_corpus([SEED_BIB])
    for category in ("type", "method", "modality", "task", "evaluation", "dataset"):
        assert category in corpus.vocabulary.categories
    reviewed = corpus.table[corpus.table["review_number"].notna()]
    for row in reviewed.itertuples():
        for category in ("type", "method", "task"):
            assert row.tags.get(category), f"{row.key} has no {category} tag"


def test_no_citation_edge_is_shipped_unverified():
    text = SEED_BIB.read_text(encoding="utf-8")
    assert not re.search(r"^\s*(references|cites)\s*=", text, re.IGNORECASE | re.MULTILINE)

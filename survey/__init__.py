"""The knowledge base of a literature review: a BibTeX corpus as a validated, tagged table."""

from survey.corpus import Corpus, load_corpus

__all__ = ["Corpus", "load_corpus"]

"""The knowledge base of a literature review: a BibTeX corpus as a validated, tagged table."""

__all__ = ["Corpus", "load_corpus"]


def __getattr__(name: str):
    # Imported on first use: worker processes that parse a large file need no pandas.
    if name in __all__:
        from survey import corpus
        return getattr(corpus, name)
    raise AttributeError(f"module 'survey' has no attribute {name!r}")

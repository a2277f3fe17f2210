"""OpenAlex enrichment: a polite client (pyalex queries), a raw-JSON cache under ``bib/``, and
what the corpus learns from it (ids, citation counts, references, abstracts, topics).

Nothing here is imported by ``survey.corpus``: loading a corpus never touches the network.
"""

"""The one test for a number that was not measured (for ints from a table, see ``survey.records.as_int``)."""

from __future__ import annotations

import math


def is_missing(value) -> bool:
    """True for None and NaN (a Python, NumPy or 0-d torch float): a number that was not measured.

    Says what ``value != value`` means, and also catches None, which that idiom lets through."""
    return value is None or math.isnan(float(value))


def mean_of_trees(trees: list):
    """The leaf-by-leaf mean of nested dicts of one shape (one per seed): numbers are averaged, a
    None or NaN anywhere makes that leaf None, and anything else (text, lists) is taken from the first."""
    first = trees[0]
    if isinstance(first, dict):
        return {k: mean_of_trees([t[k] for t in trees]) for k in first}
    is_number = first is None or (isinstance(first, (int, float)) and not isinstance(first, bool))
    if not is_number:
        return first
    if any(is_missing(t) for t in trees):
        return None
    return sum(float(t) for t in trees) / len(trees)

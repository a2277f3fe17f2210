"""The one test for a number that was not measured (for ints from a table, see ``survey.records.as_int``)."""

from __future__ import annotations

import math


def is_missing(value) -> bool:
    """True for None and NaN (a Python, NumPy or 0-d torch float): a number that was not measured.

    Says what ``value != value`` means, and also catches None, which that idiom lets through."""
    return value is None or math.isnan(float(value))

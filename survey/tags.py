"""SurVis-style tags: ``keywords = {method:DCGAN, modality:CT, free tag}`` over a vocabulary.

A keyword with a colon is ``category:value``; one without is a free tag. A paper with no tag
in a category is shown as ``category:?``. The vocabulary (``bib/tags.toml``) declares the
categories and their known values, so that a typo such as ``modalty:CT`` is caught.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from survey.issues import UserError

MISSING = "?"


@dataclass(frozen=True)
class Vocabulary:
    categories: dict[str, tuple[str, ...]] = field(default_factory=dict)  # category -> known values
    descriptions: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> "Vocabulary":
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as err:
            raise UserError(f"{path}: not valid TOML ({err})") from err
        cats = data.get("categories")
        if not isinstance(cats, dict):
            raise UserError(f"{path}: expected [categories.NAME] tables with a 'values' list")
        categories, descriptions = {}, {}
        for name, spec in cats.items():
            values = spec.get("values", []) if isinstance(spec, dict) else None
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                raise UserError(f"{path}: categories.{name}.values must be a list of strings")
            categories[name] = tuple(values)
            descriptions[name] = str(spec.get("description", ""))
        return cls(categories, descriptions)


def parse_keywords(value: str) -> tuple[dict[str, list[str]], list[str]]:
    """``(tags by category, free tags)`` from a keywords field, in the order written."""
    tags: dict[str, list[str]] = {}
    free: list[str] = []
    for word in value.replace(";", ",").split(","):
        word = " ".join(word.split())
        if not word:
            continue
        category, sep, tag = word.partition(":")
        if sep and category.strip() and tag.strip():
            values = tags.setdefault(category.strip(), [])
            if tag.strip() not in values:
                values.append(tag.strip())
        elif word not in free:
            free.append(word)
    return tags, free

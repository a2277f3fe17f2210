"""SurVis-style tags: ``keywords = {method:DCGAN, modality:CT, free tag}`` over a vocabulary.

A keyword with a colon is ``category:value``; one without is a free tag. A paper with no tag
in a category is shown as ``category:?``. The vocabulary (``bib/tags.toml``) declares the
categories and their known values, so that a typo such as ``modalty:CT`` is caught.
"""

from __future__ import annotations

import difflib
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

    def unknown(self, tags: dict[str, list[str]]) -> list[tuple[str, str]]:
        """``(code, message)`` for each tag of ``tags`` that the vocabulary does not declare (none when
        it declares no category): a category it lacks (``unknown-category``) or a value its category
        lacks (``unknown-tag``), with the closest declared name when there is one (``modalty``)."""
        if not self.categories:
            return []
        out = []
        for category, values in tags.items():
            known = self.categories.get(category)
            if known is None:
                out.append(("unknown-category", f"tag category '{category}' is not declared in tags.toml"
                            f"{_closest(category, self.categories)} (declared: {', '.join(self.categories)})"))
                continue
            out += [("unknown-tag", f"'{category}:{value}' is not in the vocabulary of '{category}'"
                     f"{_closest(value, known)}") for value in values if value not in known]
        return out

    def completions(self, text: str, limit: int = 12) -> list[str]:
        """Whole-field texts that complete the tag being typed at the end of ``text`` (after its
        last comma) with a declared category (``modality:``) or one of its values, those already in
        ``text`` left out: what the tag editor offers as one types."""
        cut = max(text.rfind(","), text.rfind(";")) + 1  # the user's own separators stay as typed
        head, typed = text[:cut], text[cut:].strip()
        prefix = head + (" " if head else "")
        present = {f"{c}:{v}" for c, vs in parse_keywords(head)[0].items() for v in vs}
        category, colon, partial = typed.partition(":")
        if not colon:
            found = [f"{c}:" for c in self.categories if c.lower().startswith(typed.lower())]
        else:
            values = self.categories.get(category.strip(), ())
            found = [f"{category.strip()}:{v}" for v in values if v.lower().startswith(partial.strip().lower())]
        return [prefix + tag for tag in found if tag not in present][:limit]


def _closest(word: str, names) -> str:
    close = difflib.get_close_matches(word, list(names), n=1, cutoff=0.75)
    return f" (did you mean '{close[0]}'?)" if close else ""


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

"""A paper's "how it differs" written once, in its module docstring, and read from there by the
run's results (``Outcome.differences``) and so by the results page and the report.

The section starts at a line beginning "How it differs" and holds "- " bullets, each possibly
wrapped over several indented lines; it ends at the first blank line after a bullet or at the
end of the docstring.
"""

from __future__ import annotations

import re

_HEADING = re.compile(r"^How it differs\b.*$", re.MULTILINE)


def differences(doc: str | None) -> list[str]:
    """The bullets of ``doc``'s "How it differs ..." section, each as one line of text."""
    heading = _HEADING.search(doc or "")
    if heading is None:
        return []
    bullets: list[str] = []
    for line in doc[heading.end():].splitlines()[1:]:
        text = line.strip()
        if text.startswith("- "):
            bullets.append(text[2:])
        elif text and bullets:
            bullets[-1] += " " + text
        elif bullets:
            break  # the blank line that ends the section
    return bullets

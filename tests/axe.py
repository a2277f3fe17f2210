"""axe-core, the accessibility engine, from the npm registry, run in a page of the browser tests.

The README's test command installs it (``npm ci --prefix tests/a11y``: the version and its hash are
pinned in tests/a11y/package-lock.json), so the tests themselves stay offline. Where it is not
installed the accessibility tests are skipped, unless ``SURVEY_REQUIRE_BROWSER=1`` (set by CI),
which makes it a failure, as a missing browser is.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.browser import unavailable

FOLDER = Path(__file__).parent / "a11y"
SCRIPT = FOLDER / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING = ("serious", "critical")  # the impacts a page may not have; moderate and minor are reported, not failed


def pinned() -> str:
    """The axe-core version the lock file pins."""
    lock = json.loads((FOLDER / "package-lock.json").read_text(encoding="utf-8"))
    return lock["packages"]["node_modules/axe-core"]["version"]


def source() -> str:
    """The text of axe.min.js as installed by ``npm ci --prefix tests/a11y``."""
    if not SCRIPT.exists():
        unavailable("axe-core is not installed: run `npm ci --prefix tests/a11y` in the checkout")
    return SCRIPT.read_text(encoding="utf-8")


RUN = """
const done = arguments[arguments.length - 1];
axe.run(document, {resultTypes: ["violations"]})
   .then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                           nodes: v.nodes.slice(0, 5).map(n => n.target.join(" "))}))))
   .catch(e => done([{id: "axe-error", impact: "critical", help: String(e), nodes: []}]));
"""


def violations(driver) -> list[dict]:
    """Every violation axe-core finds in the page as it is now: id, impact, help and up to five nodes."""
    if not driver.execute_script("return typeof axe !== 'undefined'"):
        driver.execute_script(source())
    driver.set_script_timeout(60)
    return driver.execute_async_script(RUN)


def blocking(found: list[dict]) -> list[str]:
    """The serious and critical violations, one readable line each."""
    return [f"{v['impact']}: {v['id']} ({v['help']}) at {', '.join(v['nodes'])}"
            for v in found if v["impact"] in BLOCKING]

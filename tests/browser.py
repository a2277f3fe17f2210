"""Headless Chromium and a live explorer server for the browser tests.

Chromium and its driver come from the OS (Debian's ``chromium`` and ``chromium-driver``).
Where they are missing the browser tests are skipped, unless ``SURVEY_REQUIRE_BROWSER=1``
(set by CI), which makes a missing browser a failure. The live server runs on waitress, as
``survey serve`` does, with the token ``TOKEN``, whose cookie every browser of ``chrome`` holds
from the start, as if it had opened the address that ``survey serve`` prints.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
CHROMEDRIVER = shutil.which("chromedriver")
TOKEN = "browser-tests"


def unavailable(message: str):
    """A tool of the browser tests is missing: skip, or fail where CI requires it (SURVEY_REQUIRE_BROWSER=1)."""
    if os.environ.get("SURVEY_REQUIRE_BROWSER") == "1":
        pytest.fail(message)
    pytest.skip(message)


def chrome(downloads: Path | None = None):
    if not (CHROMIUM and CHROMEDRIVER):
        unavailable("headless Chromium is not installed (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1600,1200",
                "--enable-unsafe-swiftshader"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    if downloads:
        options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                                  "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.execute_cdp_cmd("Network.setCookie", {"url": "http://127.0.0.1/", "name": browser_access().cookie_name,
                                                 "value": TOKEN, "httpOnly": True, "sameSite": "Strict"})
    return driver


def bundled_copy(folder: Path) -> Path:
    """A copy of the bundled corpus (bib/, its vocabulary and OpenAlex cache; no lock or backup) in
    ``folder``/bib, for a test that may write to it: its corpus.bib."""
    from tests.conftest import REPO

    shutil.copytree(REPO / "bib", folder / "bib", ignore=shutil.ignore_patterns("*.lock", "*.bak"))
    return folder / "bib" / "corpus.bib"


def browser_access(**settings):
    from app.security import Access

    return Access.for_bind("127.0.0.1", token=TOKEN, **settings)


class LiveServer:
    """The Dash app of ``create_app(paths, access)`` served by waitress from a thread on a free port."""

    def __init__(self, paths: list[Path], access=None, host: str = "127.0.0.1"):
        from app.main import create_app, wsgi_server

        self.paths = paths
        self.app = create_app(paths, access or browser_access())
        self.server = wsgi_server(self.app, host, 0)
        self.url = f"http://127.0.0.1:{self.server.effective_port}"
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        # close the listening socket, its wake-up trigger and every kept-alive connection: the loop ends
        for channel in list(self.server._map.values()):
            channel.close()
        self.server.task_dispatcher.shutdown()
        self.thread.join(timeout=10)


def wait_for(condition, timeout: float = 15, interval: float = 0.05, message: str = "condition"):
    """Poll ``condition`` until it returns something truthy; fail with ``message`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            value = condition()
            if value:
                return value
            last = f"last result: {value!r}"
        except Exception as err:  # the page may be between two renders
            last = f"last error: {str(err).splitlines()[0]}"
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {message} ({last})")
